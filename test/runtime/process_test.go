//go:build integration

package runtime_test

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestProcess checks, from inside, that each process setting of the spec
// is applied.
func TestProcess(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		args  []string
		edit  func(p *specs.Process)
		lines []string // each must be a line of the output
		exact string   // if set, the whole output
	}{
		{
			name: "env",
			args: []string{"env"},
			edit: func(p *specs.Process) {
				p.Env = append(p.Env, "FOO=bar", "WITH_SPACE=a b  c", "EMPTY=")
			},
			lines: []string{"FOO=bar", "WITH_SPACE=a b  c", "EMPTY=", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		},
		{
			name:  "cwd",
			args:  []string{"pwd"},
			edit:  func(p *specs.Process) { p.Cwd = "/home/tester" },
			exact: "/home/tester\n",
		},
		{
			name: "user",
			args: []string{"id"},
			edit: func(p *specs.Process) {
				p.User = specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{2000, 100}}
			},
			exact: "uid=1000(tester) gid=1000(tester) groups=1000(tester),100(users),2000(extra)\n",
		},
		{
			name:  "user without additional gids",
			args:  []string{"id"},
			edit:  func(p *specs.Process) { p.User = specs.User{UID: 1, GID: 100} },
			exact: "uid=1(daemon) gid=100(users) groups=100(users)\n",
		},
		{
			name:  "umask",
			args:  []string{"umask"},
			edit:  func(p *specs.Process) { p.User.Umask = u32p(0o027) },
			exact: "0027\n",
		},
		{
			name:  "default umask",
			args:  []string{"umask"},
			exact: "0022\n",
		},
		{
			name: "rlimits",
			args: []string{"rlimits"},
			edit: func(p *specs.Process) {
				p.Rlimits = []specs.POSIXRlimit{
					{Type: "RLIMIT_NOFILE", Soft: 512, Hard: 4096},
					{Type: "RLIMIT_CORE", Soft: 0, Hard: 1 << 20},
					{Type: "RLIMIT_NPROC", Soft: 777, Hard: 888},
				}
			},
			lines: []string{"RLIMIT_NOFILE 512 4096", "RLIMIT_CORE 0 1048576", "RLIMIT_NPROC 777 888"},
		},
		{
			name: "rlimit at the host hard limit",
			args: []string{"rlimits"},
			edit: func(p *specs.Process) {
				p.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 20000, Hard: 20000}}
			},
			lines: []string{"RLIMIT_NOFILE 20000 20000"},
		},
		{
			name: "only CAP_CHOWN",
			args: []string{"caps"},
			edit: func(p *specs.Process) {
				only := []string{"CAP_CHOWN"}
				p.Capabilities = &specs.LinuxCapabilities{Bounding: only, Effective: only, Permitted: only, Inheritable: only, Ambient: only}
			},
			lines: []string{
				"CapInh:\t0000000000000001", "CapPrm:\t0000000000000001", "CapEff:\t0000000000000001",
				"CapBnd:\t0000000000000001", "CapAmb:\t0000000000000001",
			},
		},
		{
			// As a non-root user the kernel keeps the five sets apart:
			// after execve, permitted and effective are the ambient set.
			name: "distinct sets as non-root",
			args: []string{"caps"},
			edit: func(p *specs.Process) {
				p.User = specs.User{UID: 1000, GID: 1000}
				p.Capabilities = &specs.LinuxCapabilities{
					Bounding:    []string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"},
					Permitted:   []string{"CAP_CHOWN", "CAP_KILL"},
					Effective:   []string{"CAP_CHOWN", "CAP_KILL"},
					Inheritable: []string{"CAP_CHOWN", "CAP_KILL"},
					Ambient:     []string{"CAP_KILL"},
				}
			},
			lines: []string{
				"CapInh:\t0000000000000021", "CapPrm:\t0000000000000020", "CapEff:\t0000000000000020",
				"CapBnd:\t0000000000000421", "CapAmb:\t0000000000000020",
			},
		},
		{
			name: "no capabilities",
			args: []string{"caps"},
			edit: func(p *specs.Process) { p.Capabilities = &specs.LinuxCapabilities{} },
			lines: []string{
				"CapInh:\t0000000000000000", "CapPrm:\t0000000000000000", "CapEff:\t0000000000000000",
				"CapBnd:\t0000000000000000", "CapAmb:\t0000000000000000",
			},
		},
		{
			name:  "noNewPrivileges",
			args:  []string{"caps"},
			edit:  func(p *specs.Process) { p.NoNewPrivileges = true },
			lines: []string{"NoNewPrivs:\t1"},
		},
		{
			name:  "without noNewPrivileges",
			args:  []string{"caps"},
			edit:  func(p *specs.Process) { p.NoNewPrivileges = false },
			lines: []string{"NoNewPrivs:\t0"},
		},
		{
			name:  "oomScoreAdj",
			args:  []string{"oomscore"},
			edit:  func(p *specs.Process) { p.OOMScoreAdj = intp(500) },
			exact: "500\n",
		},
		{
			name:  "oomScoreAdj max",
			args:  []string{"oomscore"},
			edit:  func(p *specs.Process) { p.OOMScoreAdj = intp(1000) },
			exact: "1000\n",
		},
		{
			name:  "not a terminal",
			args:  []string{"tty"},
			exact: "not a tty\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newCtr(t).args(tt.args...)
			if tt.edit != nil {
				tt.edit(c.spec.Process)
			}
			out := c.runToEnd()
			if tt.exact != "" && out != tt.exact {
				t.Errorf("%s: output %q, want %q\nstderr: %q", tt.args[0], out, tt.exact, c.errOutput())
			}
			for _, l := range tt.lines {
				if !hasLine(out, l) {
					t.Errorf("%s: output lacks line %q:\n%s\nstderr: %q", tt.args[0], l, out, c.errOutput())
				}
			}
		})
	}
}

// TestConsoleSocket creates a container with a terminal: the runtime sends
// the pty master over --console-socket, and the process sees a terminal of
// the spec's consoleSize.
func TestConsoleSocket(t *testing.T) {
	t.Parallel()
	c := newCtr(t).args("tty")
	c.spec.Process.Terminal = true
	c.spec.Process.ConsoleSize = &specs.Box{Height: 37, Width: 123}

	// A short path: sun_path holds 108 bytes.
	sockDir, err := os.MkdirTemp("", "berth-it-cs-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	sock := filepath.Join(sockDir, "console.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	masterc := make(chan *os.File, 1)
	errc := make(chan error, 1)
	go func() {
		m, err := receiveMaster(ln, 20*time.Second)
		if err != nil {
			errc <- err
			return
		}
		masterc <- m
	}()

	c.createOK("--console-socket", sock)
	var master *os.File
	select {
	case master = <-masterc:
	case err := <-errc:
		t.Fatalf("receiving the pty master: %v", err)
	}
	defer master.Close()
	if _, err := master.Stat(); err != nil {
		t.Fatalf("received fd: %v", err)
	}
	c.must("start")

	// Read until a full line arrives, the slave side is closed (EIO) or
	// the deadline passes (the fd was made non-blocking, so os.File
	// supports deadlines).
	master.SetReadDeadline(time.Now().Add(waitTimeout))
	var buf strings.Builder
	b := make([]byte, 4096)
	for !strings.Contains(buf.String(), "\n") {
		n, err := master.Read(b)
		buf.Write(b[:n])
		if err != nil {
			break
		}
	}
	out := buf.String()
	if want := "tty rows=37 cols=123"; !strings.Contains(out, want) {
		t.Errorf("output on the pty master: %q, want %q", out, want)
	}
	c.waitStatus("stopped")
}

// receiveMaster accepts one connection on ln and returns the file
// descriptor it carries in an SCM_RIGHTS message.
func receiveMaster(ln *net.UnixListener, timeout time.Duration) (*os.File, error) {
	ln.SetDeadline(time.Now().Add(timeout))
	conn, err := ln.AcceptUnix()
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(timeout))
	buf := make([]byte, 4096)
	oob := make([]byte, syscall.CmsgSpace(4*4))
	_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	msgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return nil, err
	}
	for _, m := range msgs {
		fds, err := syscall.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		for _, fd := range fds[1:] {
			syscall.Close(fd)
		}
		if len(fds) > 0 {
			if err := syscall.SetNonblock(fds[0], true); err != nil {
				return nil, err
			}
			return os.NewFile(uintptr(fds[0]), "pty-master"), nil
		}
	}
	return nil, errors.New("no file descriptor in the message")
}

// TestOOMScoreAdjNegative documents the host restriction: lowering the OOM
// score needs CAP_SYS_RESOURCE, which the test host lacks, so the runtime
// must refuse with an error rather than ignore it.
func TestOOMScoreAdjNegative(t *testing.T) {
	t.Parallel()
	c := newCtr(t).args("oomscore")
	c.spec.Process.OOMScoreAdj = intp(-500)
	c.writeSpec()
	r := c.create()
	if r.code == 0 {
		// The host may allow it after all; then it must be applied.
		c.must("start")
		c.waitStatus("stopped")
		if out := c.output(); out != "-500\n" {
			t.Errorf("oomScoreAdj -500 accepted but the process sees %q", out)
		}
		return
	}
	r.stderr += c.errOutput()
	matchStderr(t, r, `(?i)oom`)
	assertNothingLeft(t, c.root, c.id, c.bundle)
}

// TestRlimitAboveHostHard checks that an rlimit above what the runtime may
// set fails cleanly (the host hard limit for RLIMIT_NOFILE is below this).
func TestRlimitAboveHostHard(t *testing.T) {
	t.Parallel()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	require(t, lim.Max < 1<<30, "a finite RLIMIT_NOFILE hard limit")
	c := newCtr(t).args("rlimits")
	c.spec.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: lim.Max + 1000, Hard: lim.Max + 1000}}
	c.writeSpec()
	r := c.create()
	if r.code == 0 {
		c.must("start")
		c.waitStatus("stopped")
		// Only possible with CAP_SYS_RESOURCE; then it must be applied.
		n := strconv.FormatUint(lim.Max+1000, 10)
		if out := c.output(); !slices.Contains(strings.Split(out, "\n"), "RLIMIT_NOFILE "+n+" "+n) {
			t.Errorf("rlimit above the host's hard limit accepted but not applied: %q", out)
		}
		return
	}
	r.stderr += c.errOutput()
	matchStderr(t, r, `(?i)rlimit|operation not permitted`)
	assertNothingLeft(t, c.root, c.id, c.bundle)
}
