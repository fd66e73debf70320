package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-engine/berth/internal/testfixture"
)

// runApplet runs argv in-process and returns the exit status and output.
func runApplet(t *testing.T, stdin string, argv ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(argv, strings.NewReader(stdin), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestAppletListMatchesFixture(t *testing.T) {
	if got := appletNames(); !slices.Equal(got, testfixture.Applets) {
		t.Errorf("dispatch table %v\ndiffers from testfixture.Applets %v", got, testfixture.Applets)
	}
}

func TestDispatch(t *testing.T) {
	tests := []struct {
		argv    []string
		name    string
		args    []string
		wantErr bool
	}{
		{argv: []string{"/bin/echo", "a"}, name: "echo", args: []string{"a"}},
		{argv: []string{"testbin", "cat", "-"}, name: "cat", args: []string{"-"}},
		{argv: []string{"/x/testbin", "true"}, name: "true", args: []string{}},
		{argv: []string{"testbin"}, wantErr: true},
		{argv: nil, wantErr: true},
	}
	for _, tt := range tests {
		name, args, err := dispatch(tt.argv)
		if tt.wantErr {
			if err == nil {
				t.Errorf("dispatch(%q): no error", tt.argv)
			}
			continue
		}
		if err != nil || name != tt.name || !slices.Equal(args, tt.args) {
			t.Errorf("dispatch(%q) = %q, %q, %v; want %q, %q", tt.argv, name, args, err, tt.name, tt.args)
		}
	}
}

func TestParseFlags(t *testing.T) {
	fl, rest, err := parseFlags([]string{"-rf", "-a", "x", "-l"}, "rfal")
	if err != nil || !fl['r'] || !fl['f'] || !fl['a'] || fl['l'] || !slices.Equal(rest, []string{"x", "-l"}) {
		t.Errorf("got %v %q %v", fl, rest, err)
	}
	_, rest, err = parseFlags([]string{"--", "-r"}, "r")
	if err != nil || !slices.Equal(rest, []string{"-r"}) {
		t.Errorf("after --: got %q %v", rest, err)
	}
	_, rest, _ = parseFlags([]string{"-", "a"}, "r")
	if !slices.Equal(rest, []string{"-", "a"}) {
		t.Errorf("lone -: got %q", rest)
	}
	if _, _, err := parseFlags([]string{"-x"}, "r"); err == nil {
		t.Error("unknown option accepted")
	}
}

func TestParseSeconds(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"0": 0, "1.5": 1500 * time.Millisecond, "2s": 2 * time.Second,
		"0.5m": 30 * time.Second, "1h": time.Hour, "1d": 24 * time.Hour,
	} {
		if got, err := parseSeconds(in); err != nil || got != want {
			t.Errorf("parseSeconds(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x", "-1", "s", "NaN"} {
		if _, err := parseSeconds(in); err == nil {
			t.Errorf("parseSeconds(%q): no error", in)
		}
	}
}

func TestEchoCatExitcode(t *testing.T) {
	tests := []struct {
		argv  []string
		stdin string
		code  int
		out   string
	}{
		{[]string{"echo", "a", "b"}, "", 0, "a b\n"},
		{[]string{"echo", "-n", "-nn", "a"}, "", 0, "a"},
		{[]string{"echo", "-x", "-n"}, "", 0, "-x -n\n"},
		{[]string{"testbin", "cat"}, "in", 0, "in"},
		{[]string{"cat", "-", "-"}, "in", 0, "in"},
		{[]string{"exitcode", "7"}, "", 7, ""},
		{[]string{"exitcode", "256"}, "", exitUsage, ""},
		{[]string{"false"}, "", 1, ""},
		{[]string{"nosuchapplet"}, "", exitUnknown, ""},
	}
	for _, tt := range tests {
		code, out, _ := runApplet(t, tt.stdin, tt.argv...)
		if code != tt.code || out != tt.out {
			t.Errorf("%q: got %d %q; want %d %q", tt.argv, code, out, tt.code, tt.out)
		}
	}
}

func TestGroupLists(t *testing.T) {
	if got := fullGroupList(10, []int{5, 10, 5, 7}); !slices.Equal(got, []int{10, 5, 7}) {
		t.Errorf("fullGroupList = %v", got)
	}
	if got := groupIDList(1, 2, []int{2, 3, 1}); !slices.Equal(got, []int{1, 2, 3}) {
		t.Errorf("groupIDList = %v", got)
	}
	names := map[int]string{0: "root"}
	if a, b := idWithName(0, names), idWithName(5, names); a != "0(root)" || b != "5" {
		t.Errorf("idWithName = %q, %q", a, b)
	}
}

func TestModeString(t *testing.T) {
	for mode, want := range map[uint32]string{
		0o040755:  "drwxr-xr-x",
		0o100644:  "-rw-r--r--",
		0o041777:  "drwxrwxrwt",
		0o104755:  "-rwsr-xr-x",
		0o102644:  "-rw-r-Sr--",
		0o120777:  "lrwxrwxrwx",
		0o020666:  "crw-rw-rw-",
		0o0041776: "drwxrwxrwT",
	} {
		if got := modeString(mode); got != want {
			t.Errorf("modeString(%o) = %q; want %q", mode, got, want)
		}
	}
}

func TestEnvAndSysctlHelpers(t *testing.T) {
	env := setEnv([]string{"A=1", "B=2"}, "A=3")
	if !slices.Equal(env, []string{"B=2", "A=3"}) {
		t.Errorf("setEnv = %q", env)
	}
	code, out, _ := runApplet(t, "", "env", "-i", "X=1", "Y=2", "X=3")
	if code != 0 || out != "Y=2\nX=3\n" {
		t.Errorf("env -i: got %d %q", code, out)
	}
	if got := sysctlPath("net.ipv4.ip_forward"); got != "/proc/sys/net/ipv4/ip_forward" {
		t.Errorf("sysctlPath = %q", got)
	}
}
