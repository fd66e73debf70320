package seccomp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// received is what a seccomp agent got on one connection.
type received struct {
	data []byte
	fds  []int
	err  error
}

// listenAgent listens on a unix socket at path and returns a channel that
// delivers what the first connection carried (data until EOF, SCM_RIGHTS
// fds).
func listenAgent(t *testing.T, path string) <-chan received {
	t.Helper()
	l, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(l, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(l)
		t.Fatal(err)
	}
	if err := unix.Listen(l, 1); err != nil {
		unix.Close(l)
		t.Fatal(err)
	}
	ch := make(chan received, 1)
	go func() {
		defer unix.Close(l)
		ch <- acceptOne(l)
	}()
	return ch
}

func acceptOne(l int) (r received) {
	c, _, err := unix.Accept4(l, unix.SOCK_CLOEXEC)
	if err != nil {
		r.err = fmt.Errorf("accept: %w", err)
		return r
	}
	defer unix.Close(c)
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4*4))
	for {
		n, oobn, _, _, err := unix.Recvmsg(c, buf, oob, unix.MSG_CMSG_CLOEXEC)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			r.err = fmt.Errorf("recvmsg: %w", err)
			return r
		}
		if oobn > 0 {
			msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
			if err != nil {
				r.err = err
				return r
			}
			for _, m := range msgs {
				fds, err := unix.ParseUnixRights(&m)
				if err != nil {
					r.err = err
					return r
				}
				r.fds = append(r.fds, fds...)
			}
		}
		if n == 0 {
			return r // EOF: the runtime closed the connection
		}
		r.data = append(r.data, buf[:n]...)
	}
}

func fdTarget(t *testing.T, fd int) string {
	t.Helper()
	s, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
	if err != nil {
		t.Fatalf("readlink fd %d: %v", fd, err)
	}
	return s
}

func TestMarshalProcessState(t *testing.T) {
	cfg := &specs.LinuxSeccomp{ListenerPath: "/x", ListenerMetadata: "MKNOD=/dev/null"}
	st := specs.State{Version: specs.Version, ID: "c1", Status: specs.StateCreating, Pid: 42, Bundle: "/b"}
	b, err := MarshalProcessState(cfg, 42, st)
	if err != nil {
		t.Fatal(err)
	}
	var got specs.ContainerProcessState
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Version != specs.Version || got.Pid != 42 || got.Metadata != cfg.ListenerMetadata ||
		len(got.Fds) != 1 || got.Fds[0] != "seccompFd" || got.State.ID != "c1" || got.State.Status != specs.StateCreating {
		t.Errorf("state = %+v", got)
	}
	if !bytes.Contains(b, []byte(`"fds":["seccompFd"]`)) {
		t.Errorf("JSON %s lacks the fds field", b)
	}
}

func TestSendListenerFd(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "agent.sock")
	agent := listenAgent(t, sock)

	// A pipe stands in for the seccomp notify fd.
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])

	// Large enough metadata that the state may need several writes.
	cfg := &specs.LinuxSeccomp{ListenerPath: sock, ListenerMetadata: strings.Repeat("m", 300000)}
	state, err := MarshalProcessState(cfg, os.Getpid(), specs.State{ID: "c1", Status: specs.StateCreating, Pid: os.Getpid()})
	if err != nil {
		t.Fatal(err)
	}
	if err := SendListenerFd(sock, p[1], state); err != nil {
		t.Fatalf("SendListenerFd: %v", err)
	}
	r := <-agent
	if r.err != nil {
		t.Fatal(r.err)
	}
	for _, fd := range r.fds {
		defer unix.Close(fd)
	}
	if len(r.fds) != 1 {
		t.Fatalf("received %d fds, want 1", len(r.fds))
	}
	if !bytes.Equal(r.data, state) {
		t.Fatalf("received %d bytes of state, want the %d sent", len(r.data), len(state))
	}
	var ps specs.ContainerProcessState
	if err := json.Unmarshal(r.data, &ps); err != nil || ps.Fds[0] != specs.SeccompFdName || ps.Metadata != cfg.ListenerMetadata {
		t.Fatalf("bad state (%v): fds %v", err, ps.Fds)
	}
	// The received fd is the write end of our pipe.
	if got, want := fdTarget(t, r.fds[0]), fdTarget(t, p[1]); got != want {
		t.Fatalf("received fd is %s, want %s", got, want)
	}
	if _, err := unix.Write(r.fds[0], []byte("hi")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2)
	if n, err := unix.Read(p[0], buf); err != nil || string(buf[:n]) != "hi" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
}

func TestSendListenerFdErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nobody-listens.sock")
	tests := []struct {
		name  string
		path  string
		fd    int
		state []byte
		want  error
	}{
		{name: "empty path", path: "", fd: 1, state: []byte("{}")},
		{name: "bad fd", path: missing, fd: -1, state: []byte("{}")},
		{name: "empty state", path: missing, fd: 1},
		{name: "no listener", path: missing, fd: 1, state: []byte("{}"), want: unix.ENOENT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := SendListenerFd(tt.path, tt.fd, tt.state)
			if err == nil {
				t.Fatal("SendListenerFd succeeded")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("SendListenerFd() = %v, want %v", err, tt.want)
			}
			if tt.path != "" && !strings.Contains(err.Error(), tt.path) {
				t.Errorf("error %q does not name the listener path", err)
			}
		})
	}
}
