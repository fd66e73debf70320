package container

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestValidateID(t *testing.T) {
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"abc", true},
		{"a.b-c_d+e", true},
		{"0123456789abcdef", true},
		{"", false},
		{".", false},
		{"..", false},
		{"a/b", false},
		{"a b", false},
		{"../x", false},
		{strings.Repeat("a", 1025), false},
	} {
		err := ValidateID(tc.id)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateID(%q) = %v, want ok=%v", tc.id, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidID) {
			t.Errorf("ValidateID(%q) error %v is not ErrInvalidID", tc.id, err)
		}
	}
}

func minimalSpec() *specs.Spec {
	return &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: "rootfs"},
		Process: &specs.Process{Args: []string{"true"}, Cwd: "/"},
		Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{
			{Type: specs.MountNamespace}, {Type: specs.PIDNamespace},
		}},
	}
}

func TestValidateSpec(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*specs.Spec)
		want   string // substring of the error; "" = valid
	}{
		{"minimal", func(*specs.Spec) {}, ""},
		{"no process is allowed until start", func(s *specs.Spec) { s.Process = nil }, ""},
		{"empty version", func(s *specs.Spec) { s.Version = "" }, "ociVersion"},
		{"bad version", func(s *specs.Spec) { s.Version = "invalid" }, "unsupported ociVersion"},
		{"no root", func(s *specs.Spec) { s.Root = nil }, "root.path"},
		{"empty args", func(s *specs.Spec) { s.Process.Args = nil }, "process.args"},
		{"relative cwd", func(s *specs.Spec) { s.Process.Cwd = "tmp" }, "process.cwd"},
		{"relative mount", func(s *specs.Spec) { s.Mounts = []specs.Mount{{Destination: "proc", Type: "proc"}} }, "not absolute"},
		{"no linux", func(s *specs.Spec) { s.Linux = nil }, "linux section"},
		{"unknown ns", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: "bogus"})
		}, "unknown namespace"},
		{"duplicate ns", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.PIDNamespace})
		}, "listed twice"},
		{"userns without maps", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		}, "uidMappings"},
		{"maps without userns", func(s *specs.Spec) {
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{HostID: 1000, Size: 1}}
		}, "without a user namespace"},
		{"bad rlimit", func(s *specs.Spec) {
			s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_BOGUS"}}
		}, "unknown rlimit"},
		{"soft above hard", func(s *specs.Spec) {
			s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 10, Hard: 5}}
		}, "above hard"},
		{"unknown capability", func(s *specs.Spec) {
			s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: []string{"CAP_TEST"}}
		}, "unknown capability"},
		{"host net sysctl", func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"} }, "network namespace"},
		{"non-namespaced sysctl", func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"vm.swappiness": "1"} }, "not in a separate"},
		{"namespaced sysctl", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.IPCNamespace})
			s.Linux.Sysctl = map[string]string{"kernel.shmmax": "1"}
		}, ""},
		{"bad propagation", func(s *specs.Spec) { s.Linux.RootfsPropagation = "sideways" }, "rootfsPropagation"},
		{"bad seccomp", func(s *specs.Spec) {
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_BOGUS"}
		}, "seccomp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := minimalSpec()
			tc.mutate(s)
			err := validateSpec(s)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if !errors.Is(err, ErrInvalidInput) {
				t.Fatalf("error %v is not ErrInvalidInput", err)
			}
		})
	}
}

func TestLoadSpecErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadSpec(dir); err == nil || !strings.Contains(err.Error(), "config.json not found") {
		t.Fatalf("missing config: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSpec(dir); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("malformed config: %v", err)
	}
}

func TestNamespacePlan(t *testing.T) {
	l := &specs.Linux{Namespaces: []specs.LinuxNamespace{
		{Type: specs.PIDNamespace},
		{Type: specs.NetworkNamespace, Path: "/run/netns/x"},
		{Type: specs.MountNamespace},
		{Type: specs.UserNamespace, Path: "/proc/1/ns/user"},
	}}
	joins, flags := namespacePlan(l)
	if flags != unix.CLONE_NEWPID|unix.CLONE_NEWNS {
		t.Fatalf("flags %#x", flags)
	}
	want := []nsJoin{{"net", "/run/netns/x"}, {"user", "/proc/1/ns/user"}}
	if len(joins) != len(want) || joins[0] != want[0] || joins[1] != want[1] {
		t.Fatalf("joins %v, want %v", joins, want)
	}
}

func TestHostID(t *testing.T) {
	maps := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 1000}, {ContainerID: 1000, HostID: 5000, Size: 1}}
	for _, tc := range []struct {
		id   uint32
		want int
	}{{0, 100000}, {999, 100999}, {1000, 5000}, {1001, 1001}} {
		if got := hostID(maps, tc.id); got != tc.want {
			t.Errorf("hostID(%d) = %d, want %d", tc.id, got, tc.want)
		}
	}
	if got := hostID(nil, 7); got != 7 {
		t.Errorf("identity: %d", got)
	}
}

func TestFormatIDMap(t *testing.T) {
	got := formatIDMap([]specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}, {ContainerID: 1, HostID: 100000, Size: 65536}})
	if got != "0 1000 1\n1 100000 65536\n" {
		t.Fatalf("got %q", got)
	}
}

func TestUnescapeMountinfo(t *testing.T) {
	for in, want := range map[string]string{
		`/plain`:            "/plain",
		`/with\040space`:    "/with space",
		`/tab\011and\134bs`: "/tab\tand\\bs",
		`/trailing\`:        `/trailing\`,
	} {
		if got := unescapeMountinfo(in); got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestProcStatSelf(t *testing.T) {
	st, start, err := procStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st != 'R' && st != 'S' {
		t.Fatalf("state %c", st)
	}
	if start == 0 {
		t.Fatal("start time 0")
	}
	if _, _, err := procStat(-1); err == nil {
		t.Fatal("procStat(-1) succeeded")
	}
}

func TestDeviceMode(t *testing.T) {
	m := os.FileMode(0o600)
	for _, tc := range []struct {
		d    specs.LinuxDevice
		want uint32
		ok   bool
	}{
		{specs.LinuxDevice{Type: "c"}, unix.S_IFCHR | 0o666, true},
		{specs.LinuxDevice{Type: "u", FileMode: &m}, unix.S_IFCHR | 0o600, true},
		{specs.LinuxDevice{Type: "b"}, unix.S_IFBLK | 0o666, true},
		{specs.LinuxDevice{Type: "p"}, unix.S_IFIFO | 0o666, true},
		{specs.LinuxDevice{Type: "x"}, 0, false},
	} {
		got, err := deviceMode(tc.d)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("deviceMode(%+v) = %o, %v", tc.d, got, err)
		}
	}
}

func TestCgroupResourcesKeepsSpecRulesFirst(t *testing.T) {
	major := int64(10)
	in := &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}, {Allow: true, Type: "c", Major: &major, Access: "r"}}}
	out := cgroupResources(in)
	if len(out.Devices) != 2+len(defaultAllowedDevices) {
		t.Fatalf("%d rules", len(out.Devices))
	}
	if out.Devices[0].Allow || !out.Devices[1].Allow || *out.Devices[1].Major != 10 {
		t.Fatalf("spec rules not first: %+v", out.Devices[:2])
	}
	if len(in.Devices) != 2 {
		t.Fatal("input modified")
	}
	if len(cgroupResources(nil).Devices) != len(defaultAllowedDevices) {
		t.Fatal("nil resources")
	}
}

func TestStoreStateOfMissingAndStopped(t *testing.T) {
	s := &Store{Root: t.TempDir()}
	if _, err := s.State("nope"); !errors.Is(err, ErrNotExist) {
		t.Fatalf("State of missing: %v", err)
	}
	if _, err := s.State("../x"); !errors.Is(err, ErrInvalidID) {
		t.Fatalf("State of bad id: %v", err)
	}
	if err := os.Mkdir(s.dir("gone"), 0o700); err != nil {
		t.Fatal(err)
	}
	r := &record{ID: "gone", InitPid: 999999999, Spec: minimalSpec()}
	if err := s.save(r); err != nil {
		t.Fatal(err)
	}
	st, err := s.State("gone")
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != StatusStopped || st.Pid != 0 {
		t.Fatalf("state %+v", st)
	}
	ids, err := s.IDs()
	if err != nil || len(ids) != 1 || ids[0] != "gone" {
		t.Fatalf("IDs = %v, %v", ids, err)
	}
	// Delete of a stopped container with no cgroup removes it.
	if _, err := s.Delete("gone", false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.dir("gone")); !os.IsNotExist(err) {
		t.Fatal("state dir left behind")
	}
	if _, err := s.Delete("gone", true); err != nil {
		t.Fatalf("forced delete of a missing container: %v", err)
	}
	if _, err := s.Delete("gone", false); !errors.Is(err, ErrNotExist) {
		t.Fatalf("delete of a missing container: %v", err)
	}
}

func TestStateVersionTooNew(t *testing.T) {
	s := &Store{Root: t.TempDir()}
	if err := os.Mkdir(s.dir("new"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.dir("new"), stateFile), []byte(`{"version":99,"id":"new"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.State("new"); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("got %v", err)
	}
}

func TestCheckCwdAndLookPath(t *testing.T) {
	if err := checkCwd(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	exe := filepath.Join(dir, "tool")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if p, err := lookPath([]string{"tool"}, []string{"PATH=/nonexistent:" + dir}); err != nil || p != exe {
		t.Fatalf("lookPath = %q, %v", p, err)
	}
	if _, err := lookPath([]string{"tool"}, []string{"PATH=/nonexistent"}); err == nil {
		t.Fatal("found a missing executable")
	}
	if _, err := lookPath(nil, nil); err == nil {
		t.Fatal("empty args accepted")
	}
	if p, err := lookPath([]string{exe}, nil); err != nil || p != exe {
		t.Fatalf("absolute: %q, %v", p, err)
	}
}

func TestParseSubCgroups(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want map[string]string
		ok   bool
	}{
		{"sub", map[string]string{"": "sub"}, true},
		{"a/b", map[string]string{"": "a/b"}, true},
		{"memory:m,cpu:c", map[string]string{"memory": "m", "cpu": "c"}, true},
		{"../escape", nil, false},
		{"/abs", nil, false},
		{"memory:", nil, false},
		{":x", nil, false},
		{"memory:a/../../b", nil, false},
	} {
		got, err := ParseSubCgroups(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ParseSubCgroups(%q) error %v", tc.in, err)
			continue
		}
		if tc.ok && len(got) != len(tc.want) {
			t.Errorf("ParseSubCgroups(%q) = %v", tc.in, got)
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("ParseSubCgroups(%q)[%q] = %q, want %q", tc.in, k, got[k], v)
			}
		}
	}
}

func TestCgroupResourcesHonoursSpecDenies(t *testing.T) {
	one, three := int64(1), int64(3)
	in := &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: false, Type: "c", Major: &one, Minor: &three, Access: "w"},
	}}
	out := cgroupResources(in)
	var null *specs.LinuxDeviceCgroup
	for i, d := range out.Devices[2:] {
		if d.Type == "c" && d.Major != nil && *d.Major == 1 && d.Minor != nil && *d.Minor == 3 {
			null = &out.Devices[2+i]
		}
	}
	if null == nil || null.Access != "rm" {
		t.Fatalf("default /dev/null rule = %+v, want access rm", null)
	}
	// A deny of everything on major 1 drops those defaults entirely.
	in = &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Type: "c", Major: &one, Access: "rwm"}}}
	for _, d := range cgroupResources(in).Devices[1:] {
		if d.Major != nil && *d.Major == 1 {
			t.Fatalf("rule %+v survived a deny of c 1:*", d)
		}
	}
}

func TestRunsRuntime(t *testing.T) {
	if !runsRuntime("/proc/self/exe") {
		t.Fatal("our own binary is not recognised")
	}
	cmd := exec.Command("sleep", "10")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	if runsRuntime("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/exe") {
		t.Fatal("sleep taken for the runtime")
	}
	if runsRuntime("/proc/0/exe") {
		t.Fatal("a missing process taken for the runtime")
	}
}
