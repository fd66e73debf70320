//go:build integration

package runtime_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// TestSeccompNotify runs a container whose mkdir calls go to a seccomp
// listener of the test's: it must receive the notify fd with the container
// state, and its answer (EXDEV) must be what the container's mkdir gets.
func TestSeccompNotify(t *testing.T) {
	t.Parallel()
	c := newCtr(t)
	sock := filepath.Join(t.TempDir(), "listener.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c.spec.Linux.Seccomp = &specs.LinuxSeccomp{
		DefaultAction:    specs.ActAllow,
		ListenerPath:     sock,
		ListenerMetadata: "berth-it",
		Syscalls:         []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActNotify}},
	}
	c.args("syscall", "mkdir", "/dev/shm/notified")

	type got struct {
		state specs.ContainerProcessState
		err   error
	}
	done := make(chan got, 1)
	go func() {
		var g got
		defer func() { done <- g }()
		_ = l.SetDeadline(time.Now().Add(20 * time.Second))
		conn, err := l.AcceptUnix()
		if err != nil {
			g.err = err
			return
		}
		defer conn.Close()
		buf := make([]byte, 64*1024)
		oob := make([]byte, unix.CmsgSpace(4))
		n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
		if err != nil {
			g.err = err
			return
		}
		if err := json.Unmarshal(buf[:n], &g.state); err != nil {
			g.err = err
			return
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) != 1 {
			g.err = errors.New("no file descriptor with the state")
			return
		}
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err != nil || len(fds) != 1 {
			g.err = errors.New("no file descriptor with the state")
			return
		}
		fd := libseccomp.ScmpFd(fds[0])
		defer unix.Close(fds[0])
		req, err := libseccomp.NotifReceive(fd)
		if err != nil {
			g.err = err
			return
		}
		g.err = libseccomp.NotifRespond(fd, &libseccomp.ScmpNotifResp{ID: req.ID, Error: int32(unix.EXDEV)})
	}()
	c.createOK()
	c.must("start")
	c.waitStatus("stopped")
	g := <-done
	if g.err != nil {
		t.Fatalf("listener: %v", g.err)
	}
	if g.state.Metadata != "berth-it" || g.state.State.ID != c.id || len(g.state.Fds) != 1 || g.state.Fds[0] != specs.SeccompFdName {
		t.Errorf("listener got state %+v", g.state)
	}
	if out := c.output(); !strings.Contains(out, "EXDEV") {
		t.Errorf("mkdir in the container: %q, want the listener's EXDEV", out)
	}
}

// TestTimeNamespace gives the container a boottime offset: its uptime
// must be that much larger than the host's.
func TestTimeNamespace(t *testing.T) {
	t.Parallel()
	c := newCtr(t)
	c.spec.Linux.Namespaces = append(c.spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace})
	c.spec.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"boottime": {Secs: 86400 * 365}}
	c.args("cat", "/proc/uptime")
	out := c.runToEnd()
	var up float64
	if _, err := fmt.Sscan(out, &up); err != nil {
		t.Fatalf("uptime %q: %v", out, err)
	}
	var info syscall.Sysinfo_t
	if err := syscall.Sysinfo(&info); err != nil {
		t.Fatal(err)
	}
	if diff := up - float64(info.Uptime); diff < 86400*365-60 || diff > 86400*365+60 {
		t.Errorf("uptime in the container %.0f s, host %d s: offset %.0f s, want a year", up, info.Uptime, diff)
	}
}

// TestIDMappedMount bind-mounts a host directory owned by root into a
// container whose root is host uid 100000: with idmap the files show as
// root's and files created inside belong to root on the host; without,
// they show as nobody's.
func TestIDMappedMount(t *testing.T) {
	t.Parallel()
	c := newCtr(t)
	data := t.TempDir()
	if err := os.WriteFile(filepath.Join(data, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(data, 0o777); err != nil {
		t.Fatal(err)
	}
	rootfs := filepath.Join(c.bundle, "rootfs")
	if err := chownTree(rootfs, 100000, 100000); err != nil {
		t.Fatal(err)
	}
	// The container's root (host uid 100000) must reach its rootfs.
	for _, d := range []string{filepath.Dir(c.bundle), c.bundle} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	c.spec.Linux.Namespaces = append(c.spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	c.spec.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	c.spec.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	c.spec.Mounts = append(c.spec.Mounts,
		specs.Mount{Destination: "/idmapped", Type: "bind", Source: data, Options: []string{"rbind", "rw", "idmap"}},
		specs.Mount{Destination: "/plain", Type: "bind", Source: data, Options: []string{"rbind", "ro"}},
	)
	c.args("sleep", "30")
	c.createOK()
	c.must("start")
	if out := c.execOK("stat", "/idmapped/f", "/plain/f"); !strings.Contains(out, "uid=0 gid=0") || !strings.Contains(out, "uid=65534") {
		t.Errorf("stat of the idmapped and plain mounts:\n%s", out)
	}
	c.execOK("touch", "/idmapped/new")
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(data, "new"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != 0 || st.Gid != 0 {
		t.Errorf("file created through the idmapped mount is owned by %d:%d on the host, want 0:0", st.Uid, st.Gid)
	}
}

// TestPersonality runs a container with the LINUX32 personality.
func TestPersonality(t *testing.T) {
	t.Parallel()
	c := newCtr(t)
	c.spec.Linux.Personality = &specs.LinuxPersonality{Domain: specs.PerLinux32}
	c.args("syscall", "personality")
	if out := c.runToEnd(); !strings.Contains(out, "0x8") {
		t.Errorf("personality in the container: %q, want 0x8 (PER_LINUX32)", out)
	}
}

func chownTree(root string, uid, gid int) error {
	return filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}
