package testfixture

import (
	"debug/elf"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// runBin runs the binary at path with args on the host and returns its
// exit status and standard output.
func runBin(t *testing.T, path string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(path, args...)
	out, err := cmd.Output()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &exitErr):
		return exitErr.ExitCode(), string(out)
	default:
		t.Fatalf("running %s %q: %v", path, args, err)
		return 0, ""
	}
}

func TestBinaryIsStatic(t *testing.T) {
	f, err := elf.Open(Binary(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("testbin has an ELF interpreter: not statically linked")
		}
	}
}

func TestBinaryApplets(t *testing.T) {
	bin := Binary(t)
	tests := []struct {
		args []string
		code int
		out  string // exact standard output
	}{
		{args: []string{"echo", "hi"}, out: "hi\n"},
		{args: []string{"id", "-u"}, out: strconv.Itoa(os.Geteuid()) + "\n"},
		{args: []string{"true"}},
		{args: []string{"false"}, code: 1},
		{args: []string{"exitcode", "7"}, code: 7},
		{args: []string{"forkbomb", "3", "1"}, out: "forked 3 of 3\n"},
		{args: []string{"memhog", "2", "0"}, out: "allocated 1 MiB\nallocated 2 MiB\n"},
		{args: []string{"nosuchapplet"}, code: 127},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, "_"), func(t *testing.T) {
			code, out := runBin(t, bin, tt.args...)
			if code != tt.code || out != tt.out {
				t.Errorf("testbin %q: got status %d output %q; want %d %q", tt.args, code, out, tt.code, tt.out)
			}
		})
	}
}

func TestAppletListConsistent(t *testing.T) {
	if !sort.StringsAreSorted(Applets) {
		t.Errorf("Applets is not sorted: %q", Applets)
	}
	_, out := runBin(t, Binary(t), "--list")
	if got := strings.Fields(out); !slices.Equal(got, Applets) {
		t.Errorf("testbin --list = %q\nwant Applets = %q", got, Applets)
	}
}

func TestRootfs(t *testing.T) {
	root := Rootfs(t)
	for _, dir := range []string{"bin", "proc", "sys", "dev", "tmp", "etc", "root", "home"} {
		if fi, err := os.Stat(filepath.Join(root, dir)); err != nil || !fi.IsDir() {
			t.Errorf("/%s: not a directory (%v)", dir, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(root, "tmp")); err != nil || fi.Mode()&(os.ModePerm|os.ModeSticky) != 0o777|os.ModeSticky {
		t.Errorf("/tmp: want mode 1777, got %v (%v)", fi.Mode(), err)
	}
	for _, f := range []string{"etc/passwd", "etc/group", "etc/hostname", "bin/testbin"} {
		if fi, err := os.Stat(filepath.Join(root, f)); err != nil || !fi.Mode().IsRegular() {
			t.Errorf("/%s: not a regular file (%v)", f, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(root, "bin/sh")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("/bin/sh should not exist (lstat: %v)", err)
	}
	for _, name := range Applets {
		if target, err := os.Readlink(filepath.Join(root, "bin", name)); err != nil || target != "testbin" {
			t.Errorf("/bin/%s: readlink = %q, %v", name, target, err)
		}
	}
	passwd, err := os.ReadFile(filepath.Join(root, "etc/passwd"))
	if err != nil || !strings.Contains(string(passwd), "tester:x:1000:1000:") {
		t.Errorf("/etc/passwd lacks tester: %q (%v)", passwd, err)
	}
	group, err := os.ReadFile(filepath.Join(root, "etc/group"))
	if err != nil || !strings.Contains(string(group), "extra:x:2000:tester\n") {
		t.Errorf("/etc/group lacks extra: %q (%v)", group, err)
	}

	// argv[0] dispatch through the applet symlinks.
	if code, out := runBin(t, filepath.Join(root, "bin/echo"), "via", "link"); code != 0 || out != "via link\n" {
		t.Errorf("bin/echo: got %d %q", code, out)
	}
	if code, out := runBin(t, filepath.Join(root, "bin/stat"), "-L", filepath.Join(root, "tmp")); code != 0 || !strings.HasPrefix(out, "mode=1777 ") {
		t.Errorf("bin/stat /tmp: got %d %q", code, out)
	}
}

func TestBundleAndWriteSpec(t *testing.T) {
	bundle := Bundle(t)
	if _, err := os.Stat(filepath.Join(bundle, "rootfs/bin/testbin")); err != nil {
		t.Fatalf("bundle rootfs: %v", err)
	}
	spec := map[string]any{"ociVersion": "1.2.0", "root": map[string]any{"path": "rootfs"}}
	WriteSpec(t, bundle, spec)
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(data, &got); err != nil || got["ociVersion"] != "1.2.0" {
		t.Errorf("config.json = %s (%v)", data, err)
	}
	if fi, err := os.Stat(filepath.Join(bundle, "config.json")); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("config.json mode: %v (%v)", fi.Mode(), err)
	}
}

func TestRootfsBinaryIsPrivateCopy(t *testing.T) {
	root := Rootfs(t)
	shared, err := os.Stat(Binary(t))
	if err != nil {
		t.Fatal(err)
	}
	private, err := os.Stat(filepath.Join(root, "bin/testbin"))
	if err != nil {
		t.Fatal(err)
	}
	if os.SameFile(shared, private) {
		t.Fatal("rootfs /bin/testbin is a hard link to the shared binary; want a copy")
	}
	if private.Size() != shared.Size() || private.Mode().Perm() != 0o755 {
		t.Errorf("rootfs /bin/testbin: size %d mode %v; want size %d mode 0755", private.Size(), private.Mode(), shared.Size())
	}
}
