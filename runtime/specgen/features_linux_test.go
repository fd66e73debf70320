package specgen

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
)

var testSeccomp = SeccompInfo{
	Enabled:           true,
	Actions:           []string{"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO"},
	Operators:         []string{"SCMP_CMP_EQ"},
	Archs:             []string{"SCMP_ARCH_X86_64"},
	KnownFlags:        []string{"SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"},
	SupportedFlags:    []string{"SECCOMP_FILTER_FLAG_LOG"},
	LibseccompVersion: "2.5.4",
}

func TestFeatures(t *testing.T) {
	f := Features(testSeccomp)
	if f.OCIVersionMin != "1.0.0" || f.OCIVersionMax != specs.Version {
		t.Errorf("versions = %q..%q", f.OCIVersionMin, f.OCIVersionMax)
	}
	if !slices.Equal(f.MountOptions, KnownMountOptions()) {
		t.Errorf("mountOptions = %v", f.MountOptions)
	}
	wantNS := []string{"cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"}
	if !slices.Equal(f.Linux.Namespaces, wantNS) {
		t.Errorf("namespaces = %v, want %v", f.Linux.Namespaces, wantNS)
	}
	sec := f.Linux.Seccomp
	if sec == nil || sec.Enabled == nil || !*sec.Enabled ||
		!slices.Equal(sec.Actions, testSeccomp.Actions) ||
		!slices.Equal(sec.Operators, testSeccomp.Operators) ||
		!slices.Equal(sec.Archs, testSeccomp.Archs) ||
		!slices.Equal(sec.KnownFlags, testSeccomp.KnownFlags) ||
		!slices.Equal(sec.SupportedFlags, testSeccomp.SupportedFlags) {
		t.Errorf("seccomp = %+v", sec)
	}
	if got := f.Annotations[AnnotationLibseccompVersion]; got != "2.5.4" {
		t.Errorf("libseccomp version annotation = %q", got)
	}
	if f.Annotations[AnnotationVersion] == "" {
		t.Error("no version annotation")
	}

	// The result does not alias the caller's slices.
	sec.Actions[0] = "changed"
	if testSeccomp.Actions[0] != "SCMP_ACT_ALLOW" {
		t.Error("seccomp actions alias the argument")
	}

	// The JSON document, field by field.
	got := toJSONMap(t, f)
	want := map[string]any{
		"cgroup":          map[string]any{"v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": true},
		"apparmor":        map[string]any{"enabled": false},
		"selinux":         map[string]any{"enabled": false},
		"intelRdt":        map[string]any{"enabled": false},
		"mountExtensions": map[string]any{"idmap": map[string]any{"enabled": true}},
	}
	linux := got["linux"].(map[string]any)
	for k, v := range want {
		for _, d := range jsonDiff("linux."+k, linux[k], v) {
			t.Error(d)
		}
	}
	wantHooks := []any{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"}
	for _, d := range jsonDiff("hooks", got["hooks"], wantHooks) {
		t.Error(d)
	}
}

func TestFeaturesSeccompDisabled(t *testing.T) {
	f := Features(SeccompInfo{Actions: []string{"SCMP_ACT_ALLOW"}, LibseccompVersion: "2.5.4"})
	sec := f.Linux.Seccomp
	if sec == nil || sec.Enabled == nil || *sec.Enabled || sec.Actions != nil {
		t.Errorf("seccomp = %+v", sec)
	}
	if _, ok := f.Annotations[AnnotationLibseccompVersion]; ok {
		t.Error("libseccomp version reported with seccomp disabled")
	}
}

func TestFeaturesVersionOverride(t *testing.T) {
	oldV, oldC := Version, Commit
	t.Cleanup(func() { Version, Commit = oldV, oldC })
	Version, Commit = "1.2.3", "abcdef"
	f := Features(SeccompInfo{})
	if f.Annotations[AnnotationVersion] != "1.2.3" || f.Annotations[AnnotationCommit] != "abcdef" {
		t.Errorf("annotations = %v", f.Annotations)
	}
}

func TestFeaturesCapabilities(t *testing.T) {
	b, err := os.ReadFile(capLastCapFile)
	if err != nil {
		t.Skip(err)
	}
	last := readLastCap(capLastCapFile)
	if last < 0 {
		t.Fatalf("cannot parse %q", b)
	}
	got := Features(SeccompInfo{}).Linux.Capabilities
	if want := min(last+1, len(capNames)); len(got) != want {
		t.Errorf("%d capabilities, want %d", len(got), want)
	}
	if got[0] != "CAP_CHOWN" || !slices.Contains(got, "CAP_SYS_ADMIN") {
		t.Errorf("capabilities = %v", got)
	}
}

func TestCapabilities(t *testing.T) {
	all := capabilities(-1)
	if len(all) != 41 || all[40] != "CAP_CHECKPOINT_RESTORE" || all[21] != "CAP_SYS_ADMIN" {
		t.Errorf("capabilities(-1) = %v", all)
	}
	for i, name := range all {
		if name == "" {
			t.Errorf("no name for capability %d", i)
		}
	}
	if got := capabilities(2); !slices.Equal(got, []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH"}) {
		t.Errorf("capabilities(2) = %v", got)
	}
	if got := capabilities(63); !slices.Equal(got, all) {
		t.Errorf("capabilities(63) = %v", got)
	}
	got := capabilities(0)
	got[0] = "changed"
	if capNames[0] != "CAP_CHOWN" {
		t.Error("capabilities aliases the table")
	}
}

func TestReadLastCap(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		content string
		want    int
	}{
		{"40\n", 40},
		{"37", 37},
		{"", -1},
		{"x\n", -1},
		{"-3\n", -1},
	} {
		file := filepath.Join(dir, "cap_last_cap")
		if err := os.WriteFile(file, []byte(tt.content), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := readLastCap(file); got != tt.want {
			t.Errorf("readLastCap(%q) = %d, want %d", tt.content, got, tt.want)
		}
	}
	if got := readLastCap(filepath.Join(dir, "missing")); got != -1 {
		t.Errorf("readLastCap(missing) = %d", got)
	}
}

// runcOnlyMountOptions are the options "runc features" (1.1) lists that
// berth treats as filesystem-specific data instead: "acl" and "noacl" are
// not OCI mount options, and MS_POSIXACL is not meant to be passed by user
// space; filesystems that support ACLs take "acl"/"noacl" as data.
var runcOnlyMountOptions = []string{"acl", "noacl"}

func TestFeaturesComparedWithRunc(t *testing.T) {
	var runc features.Features
	b, err := json.Marshal(runcJSON(t, "", "features"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &runc); err != nil {
		t.Fatal(err)
	}
	f := Features(SeccompInfo{Enabled: true})

	if f.OCIVersionMin != runc.OCIVersionMin {
		t.Errorf("ociVersionMin = %q, runc %q", f.OCIVersionMin, runc.OCIVersionMin)
	}
	if !slices.Equal(f.Hooks, runc.Hooks) {
		t.Errorf("hooks = %v, runc %v", f.Hooks, runc.Hooks)
	}
	for _, o := range runc.MountOptions {
		if !slices.Contains(f.MountOptions, o) && !slices.Contains(runcOnlyMountOptions, o) {
			t.Errorf("runc mount option %q missing", o)
		}
	}
	for _, ns := range runc.Linux.Namespaces {
		if !slices.Contains(f.Linux.Namespaces, ns) {
			t.Errorf("runc namespace %q missing", ns)
		}
	}
	// Both list the capabilities they know up to the kernel's last one, in
	// numeric order; runc may know fewer.
	rc := runc.Linux.Capabilities
	if len(rc) > len(f.Linux.Capabilities) || !slices.Equal(rc, f.Linux.Capabilities[:len(rc)]) {
		t.Errorf("capabilities = %v, runc %v", f.Linux.Capabilities, rc)
	}
}
