package specgen

import (
	"os"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestDefaultMatchesRunc(t *testing.T) {
	runc := runcJSON(t, "config.json", "spec")
	applyDocumentedDifferences(t, runc)
	compareWithRunc(t, Default(), runc)
}

func TestToRootlessMatchesRunc(t *testing.T) {
	runc := runcJSON(t, "config.json", "spec", "--rootless")
	applyDocumentedDifferences(t, runc)
	s := Default()
	ToRootless(s)
	compareWithRunc(t, s, runc)
}

func TestDefault(t *testing.T) {
	s := Default()
	if s.Version != specs.Version || s.Version != "1.3.0" {
		t.Errorf("ociVersion = %q, want %q", s.Version, specs.Version)
	}
	if s.Hostname != "berth" {
		t.Errorf("hostname = %q", s.Hostname)
	}
	for _, p := range ExtraMaskedPaths {
		if !slices.Contains(s.Linux.MaskedPaths, p) {
			t.Errorf("%s not masked", p)
		}
	}
}

func TestDefaultIndependent(t *testing.T) {
	a, b := Default(), Default()
	a.Process.Capabilities.Bounding[0] = "CAP_SYS_ADMIN"
	a.Mounts[1].Options[0] = "x"
	a.Linux.MaskedPaths[0] = "x"
	if b.Process.Capabilities.Bounding[0] != "CAP_AUDIT_WRITE" ||
		b.Process.Capabilities.Effective[0] != "CAP_AUDIT_WRITE" ||
		a.Process.Capabilities.Effective[0] != "CAP_AUDIT_WRITE" {
		t.Error("capability sets are shared")
	}
	if b.Mounts[1].Options[0] != "nosuid" || b.Linux.MaskedPaths[0] != "/proc/acpi" {
		t.Error("results of Default share memory")
	}
}

func TestToRootless(t *testing.T) {
	s := Default()
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace, Path: "/proc/1/ns/user"})
	s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "tmpfs", Source: "tmpfs", Options: []string{"uid=1000", "mode=700", "gid=1000"}})
	ToRootless(s)

	var types []specs.LinuxNamespaceType
	for _, ns := range s.Linux.Namespaces {
		types = append(types, ns.Type)
		if ns.Type == specs.UserNamespace && ns.Path != "" {
			t.Errorf("user namespace path kept: %q", ns.Path)
		}
	}
	want := []specs.LinuxNamespaceType{specs.PIDNamespace, specs.IPCNamespace, specs.UTSNamespace, specs.MountNamespace, specs.UserNamespace}
	if !slices.Equal(types, want) {
		t.Errorf("namespaces = %v, want %v", types, want)
	}

	euid, egid := uint32(os.Geteuid()), uint32(os.Getegid())
	if m := s.Linux.UIDMappings; len(m) != 1 || m[0] != (specs.LinuxIDMapping{ContainerID: 0, HostID: euid, Size: 1}) {
		t.Errorf("uidMappings = %+v", m)
	}
	if m := s.Linux.GIDMappings; len(m) != 1 || m[0] != (specs.LinuxIDMapping{ContainerID: 0, HostID: egid, Size: 1}) {
		t.Errorf("gidMappings = %+v", m)
	}
	if s.Linux.Resources != nil {
		t.Errorf("resources kept: %+v", s.Linux.Resources)
	}
	for _, m := range s.Mounts {
		switch m.Destination {
		case "/sys":
			if m.Type != "none" || m.Source != "/sys" || !slices.Equal(m.Options, []string{"rbind", "nosuid", "noexec", "nodev", "ro"}) {
				t.Errorf("/sys mount = %+v", m)
			}
		case "/dev/pts":
			if slices.Contains(m.Options, "gid=5") {
				t.Errorf("gid=5 kept: %v", m.Options)
			}
		case "/data":
			if !slices.Equal(m.Options, []string{"mode=700"}) {
				t.Errorf("/data options = %v", m.Options)
			}
		}
	}
}

func TestToRootlessEdgeCases(t *testing.T) {
	ToRootless(nil) // must not panic

	s := &specs.Spec{Mounts: []specs.Mount{{Destination: "/sys/", Type: "sysfs", Source: "sysfs"}}}
	ToRootless(s)
	if s.Linux == nil || len(s.Linux.Namespaces) != 1 || s.Linux.Namespaces[0].Type != specs.UserNamespace {
		t.Fatalf("linux = %+v", s.Linux)
	}
	if len(s.Mounts) != 1 || s.Mounts[0].Type != "none" || s.Mounts[0].Destination != "/sys" {
		t.Errorf("mounts = %+v", s.Mounts)
	}
}
