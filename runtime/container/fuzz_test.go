package container

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoadSpec feeds arbitrary config.json content through decoding and
// validation: it must never panic, and what it accepts must be usable.
func FuzzLoadSpec(f *testing.F) {
	good, _ := json.Marshal(minimalSpec())
	f.Add(good)
	f.Add([]byte(`{"ociVersion":"1.0.0","root":{"path":"r"},"linux":{"namespaces":[{"type":"mount"}]}}`))
	f.Add([]byte(`{"ociVersion":"1.2.0","process":{"args":[]}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := LoadSpec(dir)
		if err != nil {
			return
		}
		if s.Root == nil || s.Root.Path == "" || s.Linux == nil || !strings.HasPrefix(s.Version, "1.") {
			t.Fatalf("accepted an unusable spec: %+v", s)
		}
		if s.Process != nil && len(s.Process.Args) == 0 {
			t.Fatal("accepted a process without args")
		}
		_, _ = namespacePlan(s.Linux)
	})
}

// FuzzUnescapeMountinfo checks the mountinfo unescaper on arbitrary input.
func FuzzUnescapeMountinfo(f *testing.F) {
	for _, s := range []string{`/a\040b`, `\`, `\0`, `\777`, `plain`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := unescapeMountinfo(s)
		if !strings.Contains(s, `\`) && out != s {
			t.Fatalf("changed a string without escapes: %q -> %q", s, out)
		}
		if len(out) > len(s) {
			t.Fatalf("unescaping grew %q to %q", s, out)
		}
	})
}

// FuzzParseSubCgroups: accepted sub-cgroups never escape the container's.
func FuzzParseSubCgroups(f *testing.F) {
	for _, s := range []string{"a", "memory:a,cpu:b", "../x", "a/./b", "cpu:/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		m, err := ParseSubCgroups(v)
		if err != nil {
			return
		}
		for _, sub := range m {
			base := "/sys/fs/cgroup/memory/berth/x"
			if p := filepath.Join(base, sub); p != base && !strings.HasPrefix(p, base+"/") {
				t.Fatalf("%q escapes to %s", v, p)
			}
		}
	})
}
