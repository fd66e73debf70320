package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		want    string
		wantErr bool
	}{
		{[]string{"version"}, "berth version dev", false},
		{[]string{"version", "--format", "json"}, `"version":"dev"`, false},
		{[]string{"version", "--format", "yaml"}, "", true},
		{[]string{"version", "extra"}, "", true},
	} {
		cmd := newRootCommand()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetArgs(tc.args)
		err := cmd.Execute()
		if (err != nil) != tc.wantErr {
			t.Fatalf("%v: err = %v", tc.args, err)
		}
		if !strings.Contains(out.String(), tc.want) {
			t.Fatalf("%v: output %q lacks %q", tc.args, out.String(), tc.want)
		}
	}
}
