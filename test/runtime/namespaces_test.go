//go:build integration

package runtime_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestPidNamespace(t *testing.T) {
	t.Parallel()
	c := newCtr(t).args("pid")
	if out := c.runToEnd(); out != "pid=1 ppid=0\n" {
		t.Errorf("pid in a new pid namespace: %q, want %q", out, "pid=1 ppid=0\n")
	}
}

func TestHostname(t *testing.T) {
	t.Parallel()
	c := newCtr(t).args("hostname")
	c.spec.Hostname = "it-host"
	if out := c.runToEnd(); out != "it-host\n" {
		t.Errorf("hostname = %q, want it-host", out)
	}
}

// TestNamespacesDiffer compares the container's namespaces with the host's:
// those the spec creates must differ, the others must be the host's.
func TestNamespacesDiffer(t *testing.T) {
	t.Parallel()
	// ns applet name → spec type.
	kinds := map[string]specs.LinuxNamespaceType{
		"pid_for_children": specs.PIDNamespace,
		"pid":              specs.PIDNamespace,
		"ipc":              specs.IPCNamespace,
		"mnt":              specs.MountNamespace,
		"net":              specs.NetworkNamespace,
		"uts":              specs.UTSNamespace,
		"cgroup":           specs.CgroupNamespace,
		"user":             specs.UserNamespace,
	}
	tests := []struct {
		name  string
		extra []specs.LinuxNamespaceType // added to the default spec's
	}{
		{name: "default"},
		{name: "with cgroup", extra: []specs.LinuxNamespaceType{specs.CgroupNamespace}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newCtr(t).args("ns")
			for _, typ := range tt.extra {
				c.spec.Linux.Namespaces = append(c.spec.Linux.Namespaces, specs.LinuxNamespace{Type: typ})
			}
			got := parseNS(c.runToEnd())
			for name, typ := range kinds {
				inSpec := slices.ContainsFunc(c.spec.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == typ })
				host := hostNS(t, name)
				switch {
				case got[name] == "":
					t.Errorf("ns output lacks %s: %v", name, got)
				case inSpec && got[name] == host:
					t.Errorf("%s namespace is the host's (%s), want a new one", name, host)
				case !inSpec && got[name] != host:
					t.Errorf("%s namespace is %s, want the host's %s", name, got[name], host)
				}
			}
		})
	}
}

// TestCgroupNamespace checks what /proc/self/cgroup shows with and without
// a cgroup namespace.
func TestCgroupNamespace(t *testing.T) {
	t.Parallel()
	for _, withNS := range []bool{false, true} {
		t.Run(fmt.Sprintf("cgroupns=%v", withNS), func(t *testing.T) {
			t.Parallel()
			c := newCtr(t).args("cgroup")
			if withNS {
				c.spec.Linux.Namespaces = append(c.spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.CgroupNamespace})
			}
			out := c.runToEnd()
			checked := 0
			for line := range strings.Lines(out) {
				f := strings.SplitN(strings.TrimSpace(line), ":", 3)
				if len(f) != 3 || !slices.Contains(strings.Split(f[1], ","), "memory") {
					continue
				}
				checked++
				want := "/" + cgroupParent + "/" + c.id
				if withNS {
					want = "/"
				}
				if f[2] != want {
					t.Errorf("memory cgroup seen inside: %q, want %q", f[2], want)
				}
			}
			if checked != 1 {
				t.Errorf("no memory line in /proc/self/cgroup: %q", out)
			}
		})
	}
}

// TestJoinNetNamespace creates a network namespace bound to a file and has
// the container join it by path.
func TestJoinNetNamespace(t *testing.T) {
	t.Parallel()
	_, err := exec.LookPath("unshare")
	require(t, err == nil, "unshare(1)")
	dir := t.TempDir()
	nsFile := filepath.Join(dir, "netns")
	if err := os.WriteFile(nsFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "unshare", "--net="+nsFile, "true").CombinedOutput(); err != nil {
		t.Fatalf("unshare --net=%s: %v\n%s", nsFile, err, out)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(nsFile, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmounting %s: %v", nsFile, err)
		}
	})
	var st syscall.Stat_t
	if err := syscall.Stat(nsFile, &st); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("net:[%d]", st.Ino)

	c := newCtr(t).args("ns")
	for i, n := range c.spec.Linux.Namespaces {
		if n.Type == specs.NetworkNamespace {
			c.spec.Linux.Namespaces[i].Path = nsFile
		}
	}
	got := parseNS(c.runToEnd())
	if got["net"] != want {
		t.Errorf("container net namespace = %q, want the joined %q", got["net"], want)
	}
	if got["net"] == hostNS(t, "net") {
		t.Errorf("container is in the host's net namespace")
	}
}

// TestUserNamespace maps container root to host uid/gid 100000.
func TestUserNamespace(t *testing.T) {
	t.Parallel()
	c := newCtr(t)
	// The container's root (host uid 100000) must be able to reach the
	// rootfs: open up the test's temporary directory above the bundle.
	if err := os.Chmod(filepath.Dir(c.bundle), 0o755); err != nil {
		t.Fatal(err)
	}
	c.spec.Linux.Namespaces = append(c.spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	c.spec.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	c.spec.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	c.spec.Root.Readonly = false
	// A cgroup v1 bind mount is not possible from a user namespace the
	// host's cgroupfs does not belong to.
	c.spec.Mounts = slices.DeleteFunc(c.spec.Mounts, func(m specs.Mount) bool { return m.Destination == "/sys/fs/cgroup" })
	c.startLong()

	if out := c.execOK("uidmap"); !hasLine(out, "uid_map 0 100000 65536") || !hasLine(out, "gid_map 0 100000 65536") {
		t.Errorf("uidmap = %q, want uid_map and gid_map 0 100000 65536", out)
	}
	if out := c.execOK("id"); !strings.HasPrefix(out, "uid=0(root) gid=0(root)") {
		t.Errorf("id inside = %q, want root", out)
	}
	if got := parseNS(c.execOK("ns"))["user"]; got == hostNS(t, "user") {
		t.Errorf("user namespace is the host's")
	}
	c.execOK("touch", "/tmp/created-by-container")
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(c.bundle, "rootfs/tmp/created-by-container"), &st); err != nil {
		t.Fatalf("file created in the container: %v", err)
	}
	if st.Uid != 100000 || st.Gid != 100000 {
		t.Errorf("file created by container root is owned by %d:%d on the host, want 100000:100000", st.Uid, st.Gid)
	}
	// Host root's files are unmapped inside: they belong to the overflow id.
	if out := c.execOK("stat", "/etc/passwd"); !strings.Contains(out, "uid=65534 gid=65534") {
		t.Errorf("stat of a host-root file inside = %q, want the overflow uid/gid 65534", out)
	}
}
