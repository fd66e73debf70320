//go:build integration

package runtime_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// rtWith is c.rt for commands that need more than runOpts: setup adjusts
// the command (extra files, environment) before it starts. Output goes to
// files, as with invoke.
func (c *ctr) rtWith(o runOpts, setup func(cmd *exec.Cmd), args ...string) result {
	c.t.Helper()
	full := append([]string{"--root", c.root}, args...)
	r := result{args: full}
	ctx, cancel := context.WithTimeout(context.Background(), cmp.Or(o.timeout, cmdTimeout))
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, full...)
	cmd.Dir = cmp.Or(o.dir, c.bundle)
	cmd.Stdin = o.stdin
	cmd.WaitDelay = 2 * time.Second
	outF, errF := o.stdout, o.stderr
	var err error
	if outF == nil {
		if outF, err = os.CreateTemp(c.t.TempDir(), "out-"); err != nil {
			c.t.Fatal(err)
		}
		defer outF.Close()
	}
	if errF == nil {
		if errF, err = os.CreateTemp(c.t.TempDir(), "err-"); err != nil {
			c.t.Fatal(err)
		}
		defer errF.Close()
	}
	outStart, _ := outF.Seek(0, io.SeekEnd)
	errStart, _ := errF.Seek(0, io.SeekEnd)
	cmd.Stdout, cmd.Stderr = outF, errF
	if setup != nil {
		setup(cmd)
	}
	err = cmd.Run()
	r.timedOut = ctx.Err() != nil
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		r.code = exitErr.ExitCode()
	default:
		c.t.Fatalf("running berth-runtime %q: %v", full, err)
	}
	if r.stdout, err = readFrom(outF.Name(), outStart); err != nil {
		c.t.Fatal(err)
	}
	if r.stderr, err = readFrom(errF.Name(), errStart); err != nil {
		c.t.Fatal(err)
	}
	return r
}

// environWithout returns the test's environment less the variables named.
func environWithout(names ...string) []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool {
		name, _, _ := strings.Cut(kv, "=")
		return slices.Contains(names, name)
	})
}

// TestPreserveFds passes open files to create as descriptors 3, 4, ... and
// checks which of them the container's process holds: --preserve-fds N and
// $LISTEN_FDS in the runtime's environment each add that many, and no
// other descriptor reaches the container.
func TestPreserveFds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		flags  []string // create flags
		env    []string // added to the runtime's environment
		passed int      // files passed to the runtime as fd 3, 4, ...
		kept   int      // how many of them the container must hold
	}{
		{name: "preserve-fds 1", flags: []string{"--preserve-fds", "1"}, passed: 1, kept: 1},
		{name: "preserve-fds 1 of 2 passed", flags: []string{"--preserve-fds", "1"}, passed: 2, kept: 1},
		{name: "preserve-fds 2", flags: []string{"--preserve-fds", "2"}, passed: 2, kept: 2},
		{name: "LISTEN_FDS=1", env: []string{"LISTEN_FDS=1"}, passed: 2, kept: 1},
		{name: "LISTEN_FDS=1 and preserve-fds 1", flags: []string{"--preserve-fds", "1"}, env: []string{"LISTEN_FDS=1"}, passed: 3, kept: 2},
		{name: "none", passed: 1, kept: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newCtr(t).args("fds")
			c.spec.Process.Env = append(c.spec.Process.Env, noCgroupFds)
			dir := t.TempDir()
			var files []*os.File
			for i := range tt.passed {
				// Unique names, so that the container's readlink of the
				// descriptor identifies the file.
				name := filepath.Join(dir, fmt.Sprintf("preserved-%s-%d", c.id, i))
				if err := os.WriteFile(name, []byte("x"), 0o644); err != nil {
					t.Fatal(err)
				}
				f, err := os.Open(name)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				files = append(files, f)
			}
			c.writeSpec()
			args := append(append([]string{"create"}, tt.flags...), c.id)
			r := c.rtWith(c.stdio(), func(cmd *exec.Cmd) {
				cmd.ExtraFiles = files
				cmd.Env = append(environWithout("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"), tt.env...)
			}, args...)
			if r.code != 0 {
				t.Fatalf("%v\ncontainer stderr: %q", r, c.errOutput())
			}
			c.must("start")
			c.waitStatus("stopped")
			out := c.output()
			want := []int{0, 1, 2}
			for i := range tt.kept {
				want = append(want, 3+i)
			}
			if got := parseFds(out); !slices.Equal(got, want) {
				t.Errorf("descriptors of the container process %v, want %v:\n%s\nstderr: %q", got, want, out, c.errOutput())
			}
			for i := range tt.kept {
				base := filepath.Base(files[i].Name())
				prefix := strconv.Itoa(3+i) + " "
				found := false
				for line := range strings.Lines(out) {
					if strings.HasPrefix(line, prefix) && strings.HasSuffix(strings.TrimSpace(line), "/"+base) {
						found = true
					}
				}
				if !found {
					t.Errorf("fd %d in the container is not the file passed as fd %d (%s):\n%s", 3+i, 3+i, base, out)
				}
			}
		})
	}
}

// mountLine is the part of a /proc/PID/mountinfo line that the no-pivot
// checks use.
type mountLine struct {
	root  string // field 4: the mount's root within its file system
	point string // field 5: the mount point
	line  string
}

// parseMountLines parses /proc/PID/mountinfo text.
func parseMountLines(s string) []mountLine {
	var out []mountLine
	for line := range strings.Lines(s) {
		line = strings.TrimRight(line, "\n")
		if f := strings.Fields(line); len(f) >= 7 && slices.Index(f, "-") >= 6 {
			out = append(out, mountLine{root: f[3], point: f[4], line: line})
		}
	}
	return out
}

// rootMount returns the entry that is mounted on / last (the one a lookup
// of / sees), or false.
func rootMount(entries []mountLine) (mountLine, bool) {
	for i := len(entries) - 1; i >= 0; i-- {
		if entries[i].point == "/" {
			return entries[i], true
		}
	}
	return mountLine{}, false
}

// hostMountinfo reads the test process's mountinfo.
func hostMountinfo(t *testing.T) []mountLine {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	return parseMountLines(string(data))
}

// TestNoPivot creates containers with --no-pivot: the process (the init,
// and an exec'd one, which enters the root through the mount namespace)
// must still see the bundle's rootfs as /, and the host's mount table must
// not change.
func TestNoPivot(t *testing.T) {
	t.Parallel()
	// What a process sees, checked for the init and for exec.
	checks := []struct {
		name  string
		args  []string
		check func(t *testing.T, c *ctr, out string)
	}{
		{
			name: "ls /",
			args: []string{"ls", "/"},
			check: func(t *testing.T, c *ctr, out string) {
				entries, err := os.ReadDir(filepath.Join(c.bundle, "rootfs"))
				if err != nil {
					t.Fatal(err)
				}
				var want []string
				for _, e := range entries {
					want = append(want, e.Name())
				}
				got := strings.Fields(out)
				slices.Sort(got)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Errorf("ls / in the container: %q, want the rootfs's %q", got, want)
				}
				if !slices.Contains(got, "no-pivot-"+c.id) {
					t.Errorf("ls / does not show the marker file in the rootfs: %q", got)
				}
			},
		},
		{
			name: "mountinfo",
			args: []string{"mounts"},
			check: func(t *testing.T, c *ctr, out string) {
				entries := parseMountLines(out)
				root, ok := rootMount(entries)
				if !ok {
					t.Fatalf("no mount on / in the container's mountinfo:\n%s", out)
				}
				// The root is the bind mount of the bundle's rootfs.
				if !strings.HasSuffix(root.root, "/rootfs") || !strings.HasSuffix(c.bundle+"/rootfs", root.root) {
					t.Errorf("the container's / is mount %q, want the bundle's rootfs:\n%s", root.line, out)
				}
				for _, e := range entries {
					if strings.HasPrefix(e.point, c.bundle) {
						t.Errorf("the container sees the host's path of its bundle: %q", e.line)
					}
				}
			},
		},
		{
			name: "root link",
			args: []string{"readlink", "/proc/self/root", "/proc/self/cwd"},
			check: func(t *testing.T, c *ctr, out string) {
				if out != "/\n/\n" {
					t.Errorf("/proc/self/root and cwd: %q, want / and /", out)
				}
			},
		},
	}
	// setup makes a container for --no-pivot with a marker file in its
	// rootfs, and records the host's mount table before it runs.
	setup := func(t *testing.T) (*ctr, []mountLine) {
		c := newCtr(t)
		if err := os.WriteFile(filepath.Join(c.bundle, "rootfs", "no-pivot-"+c.id), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		return c, hostMountinfo(t)
	}
	// hostUnchanged checks that the host's / mount is as before and that
	// the host sees no mount under the bundle.
	hostUnchanged := func(t *testing.T, c *ctr, before []mountLine) {
		t.Helper()
		after := hostMountinfo(t)
		r0, _ := rootMount(before)
		r1, ok := rootMount(after)
		if !ok || r1.line != r0.line {
			t.Errorf("the host's / mount changed:\nbefore %q\nafter  %q", r0.line, r1.line)
		}
		for _, e := range after {
			if e.point == c.bundle || strings.HasPrefix(e.point, c.bundle+"/") {
				t.Errorf("a mount of the container shows on the host: %q", e.line)
			}
		}
	}
	for _, ck := range checks {
		t.Run("init "+ck.name, func(t *testing.T) {
			t.Parallel()
			c, before := setup(t)
			c.args(ck.args...)
			c.createOK("--no-pivot")
			hostUnchanged(t, c, before)
			c.must("start")
			c.waitStatus("stopped")
			ck.check(t, c, c.output())
			if e := c.errOutput(); e != "" {
				t.Errorf("container stderr: %q", e)
			}
			c.must("delete")
			hostUnchanged(t, c, before)
			assertNothingLeft(t, c.root, c.id, c.bundle)
		})
	}
	t.Run("exec", func(t *testing.T) {
		t.Parallel()
		c, before := setup(t)
		c.args("sleep", "120")
		c.createOK("--no-pivot")
		c.must("start")
		c.waitStatus("running")
		hostUnchanged(t, c, before)
		for _, ck := range checks {
			t.Run(ck.name, func(t *testing.T) {
				ck.check(t, c, c.execOK(ck.args...))
			})
		}
		if r := c.rt(runOpts{}, "delete", "-f", c.id); r.code != 0 {
			t.Fatalf("%v", r)
		}
		hostUnchanged(t, c, before)
		assertNothingLeft(t, c.root, c.id, c.bundle)
	})
}

// TestRunTerminal runs containers with process.terminal and no console
// socket in the foreground, under a pseudo-terminal of the test's: run
// gives the container a terminal of its own, copies it to and from its
// stdio, passes the window size on and exits with the process's status.
func TestRunTerminal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		args       []string
		rows, cols uint16
		code       int
		output     string // must be in what the test's terminal receives
	}{
		{name: "window size", args: []string{"tty"}, rows: 41, cols: 137, output: "tty rows=41 cols=137"},
		{name: "other window size", args: []string{"tty"}, rows: 7, cols: 300, output: "tty rows=7 cols=300"},
		{name: "exit code", args: []string{"exitcode", "5"}, rows: 24, cols: 80, code: 5},
		{name: "output and exit code 0", args: []string{"echo", "hello from a tty"}, rows: 24, cols: 80, output: "hello from a tty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newCtr(t).args(tt.args...)
			c.spec.Process.Terminal = true
			c.writeSpec()
			code, out := runUnderPTY(t, c, tt.rows, tt.cols, "run", c.id)
			if code != tt.code {
				t.Errorf("run under a terminal: exit %d, want %d; terminal output %q", code, tt.code, out)
			}
			if !strings.Contains(out, tt.output) {
				t.Errorf("terminal output %q, want %q", out, tt.output)
			}
			assertNothingLeft(t, c.root, c.id, c.bundle)
		})
	}
}

// runUnderPTY runs the runtime with --root and args in a new session whose
// controlling terminal, stdin, stdout and stderr are the slave of a new
// pseudo-terminal of the given size. It returns the exit status (-1 for a
// signal) and everything read from the master.
func runUnderPTY(t *testing.T, c *ctr, rows, cols uint16, args ...string) (int, string) {
	t.Helper()
	master, slave, err := openTestPTY(rows, cols)
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, append([]string{"--root", c.root}, args...)...)
	cmd.Dir = c.bundle
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		slave.Close()
		t.Fatal(err)
	}
	slave.Close() // the runtime holds the only other copy
	var out bytes.Buffer
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		// Until EIO (every slave descriptor closed) or the deadline.
		master.SetReadDeadline(time.Now().Add(cmdTimeout))
		b := make([]byte, 4096)
		for {
			n, err := master.Read(b)
			out.Write(b[:n])
			if err != nil {
				return
			}
		}
	}()
	err = cmd.Wait()
	code := 0
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		code = exitErr.ExitCode()
	default:
		t.Errorf("running berth-runtime %q: %v", args, err)
	}
	if ctx.Err() != nil {
		t.Errorf("berth-runtime %q under a terminal did not finish within %v", args, cmdTimeout)
	}
	select {
	case <-readDone:
	case <-time.After(5 * time.Second):
		// Something still holds the slave open; stop reading.
		master.SetReadDeadline(time.Now())
		<-readDone
		t.Errorf("the terminal's slave side is still open after berth-runtime exited")
	}
	return code, out.String()
}

// openTestPTY allocates a pseudo-terminal pair with the given window size;
// the master is non-blocking, so reads honour deadlines.
func openTestPTY(rows, cols uint16) (master, slave *os.File, err error) {
	mfd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open /dev/ptmx: %w", err)
	}
	fail := func(err error, fds ...int) (*os.File, *os.File, error) {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, nil, err
	}
	if err := unix.IoctlSetPointerInt(mfd, unix.TIOCSPTLCK, 0); err != nil {
		return fail(fmt.Errorf("unlockpt: %w", err), mfd)
	}
	n, err := unix.IoctlGetUint32(mfd, unix.TIOCGPTN)
	if err != nil {
		return fail(fmt.Errorf("ptsname: %w", err), mfd)
	}
	name := fmt.Sprintf("/dev/pts/%d", n)
	sfd, err := unix.Open(name, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fail(fmt.Errorf("open %s: %w", name, err), mfd)
	}
	if err := unix.IoctlSetWinsize(sfd, unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
		return fail(fmt.Errorf("set window size: %w", err), mfd, sfd)
	}
	if err := unix.SetNonblock(mfd, true); err != nil {
		return fail(err, mfd, sfd)
	}
	return os.NewFile(uintptr(mfd), "/dev/ptmx"), os.NewFile(uintptr(sfd), name), nil
}

// TestHookTimeout gives a hook that sleeps 10 s a timeout of 1 s: create
// must fail within a few seconds, say that the hook timed out, and leave
// nothing behind (not even the hook's process).
func TestHookTimeout(t *testing.T) {
	t.Parallel()
	_, err := os.Stat("/bin/sleep")
	require(t, err == nil, "/bin/sleep on the host for the hook")
	sleep := specs.Hook{Path: "/bin/sleep", Args: []string{"sleep", "10"}, Timeout: intp(1)}
	tests := []struct {
		stage string
		set   func(h *specs.Hooks)
	}{
		{"createRuntime", func(h *specs.Hooks) { h.CreateRuntime = []specs.Hook{sleep} }},
		{"createContainer", func(h *specs.Hooks) { h.CreateContainer = []specs.Hook{sleep} }},
	}
	for _, tt := range tests {
		t.Run(tt.stage, func(t *testing.T) {
			t.Parallel()
			c := newCtr(t).args("sleep", "60")
			c.spec.Hooks = &specs.Hooks{}
			tt.set(c.spec.Hooks)
			start := time.Now()
			r := c.create()
			took := time.Since(start)
			if r.code == 0 {
				t.Fatalf("create with a hook that outlives its timeout succeeded after %v", took)
			}
			if took > 6*time.Second {
				t.Errorf("create with a 1 s hook timeout took %v", took)
			}
			r.stderr += c.errOutput()
			matchStderr(t, r, `(?i)tim(e|ed) ?out`)
			matchStderr(t, r, tt.stage)
			assertNothingLeft(t, c.root, c.id, c.bundle)
		})
	}
}

// eventLine is one line of `events` output.
type eventLine struct {
	Type string          `json:"type"`
	ID   string          `json:"id"`
	Data json.RawMessage `json:"data"`
}

// TestEventsOOM follows a container with `events --interval 200ms` while
// its process goes past its memory limit: events must report the OOM kill
// as {"type":"oom","id":ID} and end by itself when the container stops.
func TestEventsOOM(t *testing.T) {
	t.Parallel()
	const limit = 32 << 20
	c := newCtr(t).args("memhog", "128", "5")
	c.spec.Linux.Resources.Memory = &specs.LinuxMemory{Limit: i64p(limit), Swap: i64p(limit)}
	c.createOK()

	evOut, err := os.CreateTemp(t.TempDir(), "events-")
	if err != nil {
		t.Fatal(err)
	}
	defer evOut.Close()
	done := c.rtAsync(runOpts{stdout: evOut, timeout: 25 * time.Second}, "events", "--interval", "200ms", c.id)
	// Start the process only once events follows the container.
	var first string
	if !poll(waitTimeout, func() bool {
		data, _ := os.ReadFile(evOut.Name())
		first = string(data)
		return strings.Contains(first, "\n")
	}) {
		select {
		case r := <-done:
			t.Fatalf("events ended before the container ran: %v", r)
		default:
			t.Fatalf("events printed nothing within %v", waitTimeout)
		}
	}
	c.must("start")

	var r result
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("events did not return")
	}
	if r.timedOut || r.code != 0 {
		t.Errorf("events did not end by itself with status 0 when the container stopped: %v", r)
	}
	var types []string
	oom := false
	for line := range strings.Lines(r.stdout) {
		var ev eventLine
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Errorf("events line is not JSON: %q: %v", line, err)
			continue
		}
		if ev.ID != c.id {
			t.Errorf("event for id %q, want %s: %q", ev.ID, c.id, line)
		}
		types = append(types, ev.Type)
		if ev.Type == "oom" {
			oom = true
			if strings.TrimSpace(line) != `{"type":"oom","id":"`+c.id+`"}` {
				t.Errorf("oom event %q, want {\"type\":\"oom\",\"id\":\"%s\"}", strings.TrimSpace(line), c.id)
			}
		}
	}
	if !oom {
		t.Errorf("no oom event (event types %q); memory.oom_control:\n%s", types, c.readCgroup("memory", "memory.oom_control"))
	}
	if types == nil || types[0] != "stats" {
		t.Errorf("events did not start with a stats event: %q", types)
	}
	if st := c.state(); st.Status != "stopped" {
		t.Errorf("status after events ended: %q, want stopped", st.Status)
	}
}

// TestDeleteSeveral deletes several containers with one command: each id
// is handled on its own, an id that cannot be deleted makes the status
// non-zero and the others are still deleted.
func TestDeleteSeveral(t *testing.T) {
	t.Parallel()
	const (
		created = "created"
		stopped = "stopped"
		running = "running"
		unknown = "unknown"
	)
	tests := []struct {
		name  string
		force bool
		ctrs  []string // the kind of each id, in command-line order
		fail  bool     // want a non-zero exit status
		left  []int    // indexes of the containers that must still exist
	}{
		{name: "force two created", force: true, ctrs: []string{created, created}},
		{name: "force created and running", force: true, ctrs: []string{running, created}},
		{name: "two stopped", ctrs: []string{stopped, stopped}},
		{name: "stopped and unknown", ctrs: []string{stopped, unknown}, fail: true},
		{name: "unknown and stopped", ctrs: []string{unknown, stopped}, fail: true},
		// As with one id: forced deletion of an unknown id is no error.
		{name: "force unknown and created", force: true, ctrs: []string{unknown, created}},
		{name: "running without force and stopped", ctrs: []string{running, stopped}, fail: true, left: []int{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			var ctrs []*ctr
			var ids []string
			for _, kind := range tt.ctrs {
				c := newCtrIn(t, root)
				ctrs = append(ctrs, c)
				ids = append(ids, c.id)
				switch kind {
				case created:
					c.args("sleep", "60").createOK()
				case stopped:
					c.args("true").runToEnd()
				case running:
					c.startLong()
				}
			}
			args := []string{"delete"}
			if tt.force {
				args = append(args, "-f")
			}
			r := ctrs[0].rt(runOpts{}, append(args, ids...)...)
			if tt.fail && r.code == 0 {
				t.Errorf("delete succeeded: %v", r)
			}
			if !tt.fail && r.code != 0 {
				t.Errorf("delete failed: %v", r)
			}
			for i, c := range ctrs {
				if tt.ctrs[i] == unknown {
					continue
				}
				st := c.cmd("state")
				if slices.Contains(tt.left, i) {
					if st.code != 0 {
						t.Errorf("container %d (%s) was deleted: %v", i, tt.ctrs[i], st)
					}
					continue
				}
				if st.code == 0 {
					t.Errorf("container %d (%s) still exists: %v", i, tt.ctrs[i], st)
					continue
				}
				assertNothingLeft(t, c.root, c.id, c.bundle)
			}
			// With several ids, each error must say which one failed.
			for i, kind := range tt.ctrs {
				if (kind == unknown && !tt.force || slices.Contains(tt.left, i)) && !strings.Contains(r.stderr, ids[i]) {
					t.Errorf("the error for the %s id (argument %d of %d) does not name it:\n%v", kind, i+1, len(ids), r)
				}
			}
		})
	}
}

// TestKernelSettings checks, from inside, spec settings applied to the
// kernel: the NIS domain name, namespaced sysctls and the I/O priority;
// and that a sysctl of a namespace the container shares with the host is
// refused (given the host's own value, so that a runtime that applied it
// anyway would change nothing).
func TestKernelSettings(t *testing.T) {
	t.Parallel()
	// The host's values, read before any container runs.
	host := map[string]string{}
	for _, name := range []string{"kernel.shmmax", "net.ipv4.tcp_keepalive_time"} {
		data, err := os.ReadFile("/proc/sys/" + strings.ReplaceAll(name, ".", "/"))
		if err != nil {
			t.Fatal(err)
		}
		host[name] = strings.TrimSpace(string(data))
	}
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		t.Fatal(err)
	}
	hostDomain := unix.ByteSliceToString(uts.Domainname[:])
	withoutNS := func(typ specs.LinuxNamespaceType) func(s *specs.Spec) {
		return func(s *specs.Spec) {
			s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == typ })
		}
	}
	tests := []struct {
		name       string
		args       []string
		edit       func(s *specs.Spec)
		exact      string // whole output
		hostSysctl string // a sysctl of the host that must keep its value
		refuse     string // create must fail with stderr matching this
	}{
		{
			name:  "domainname",
			args:  []string{"domainname"},
			edit:  func(s *specs.Spec) { s.Domainname = "it-domain.example" },
			exact: "it-domain.example\n",
		},
		{
			// A new uts namespace starts as a copy of the runtime's.
			name:  "domainname not set",
			args:  []string{"domainname"},
			exact: hostDomain + "\n",
		},
		{
			name:       "kernel.shmmax in an ipc namespace",
			args:       []string{"sysctl", "kernel.shmmax"},
			edit:       func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"kernel.shmmax": "123456789"} },
			exact:      "kernel.shmmax = 123456789\n",
			hostSysctl: "kernel.shmmax",
		},
		{
			name:       "net sysctl in a network namespace",
			args:       []string{"sysctl", "net.ipv4.tcp_keepalive_time"},
			edit:       func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"net.ipv4.tcp_keepalive_time": "1234"} },
			exact:      "net.ipv4.tcp_keepalive_time = 1234\n",
			hostSysctl: "net.ipv4.tcp_keepalive_time",
		},
		{
			name: "kernel.shmmax without an ipc namespace",
			args: []string{"true"},
			edit: func(s *specs.Spec) {
				withoutNS(specs.IPCNamespace)(s)
				s.Linux.Sysctl = map[string]string{"kernel.shmmax": host["kernel.shmmax"]}
			},
			refuse: `kernel\.shmmax.*ipc`,
		},
		{
			name: "net sysctl without a network namespace",
			args: []string{"true"},
			edit: func(s *specs.Spec) {
				withoutNS(specs.NetworkNamespace)(s)
				s.Linux.Sysctl = map[string]string{"net.ipv4.tcp_keepalive_time": host["net.ipv4.tcp_keepalive_time"]}
			},
			refuse: `net\.ipv4\.tcp_keepalive_time.*network`,
		},
		{
			name: "ioPriority best effort 3",
			args: []string{"syscall", "ioprio_get"},
			edit: func(s *specs.Spec) {
				s.Process.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_BE, Priority: 3}
			},
			exact: "ok class=2 data=3\n",
		},
		{
			name: "ioPriority idle",
			args: []string{"syscall", "ioprio_get"},
			edit: func(s *specs.Spec) {
				s.Process.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_IDLE}
			},
			exact: "ok class=3 data=0\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newCtr(t).args(tt.args...)
			if tt.edit != nil {
				tt.edit(c.spec)
			}
			if tt.refuse != "" {
				r := c.create()
				if r.code == 0 {
					t.Fatalf("create succeeded: %v", r)
				}
				r.stderr += c.errOutput()
				matchStderr(t, r, tt.refuse)
				assertNothingLeft(t, c.root, c.id, c.bundle)
				return
			}
			out := c.runToEnd()
			if out != tt.exact {
				t.Errorf("%s: output %q, want %q\nstderr: %q", tt.args[0], out, tt.exact, c.errOutput())
			}
			if tt.hostSysctl != "" {
				data, err := os.ReadFile("/proc/sys/" + strings.ReplaceAll(tt.hostSysctl, ".", "/"))
				if err != nil {
					t.Fatal(err)
				}
				if got := strings.TrimSpace(string(data)); got != host[tt.hostSysctl] {
					t.Errorf("the host's %s changed from %s to %s", tt.hostSysctl, host[tt.hostSysctl], got)
				}
			}
		})
	}
}

// TestExecSubCgroup runs exec --cgroup into a sub-cgroup the test creates
// under the container's memory cgroup: the process must be there (and in
// the container's own cgroup for the other controllers), and paths that
// leave the container's cgroup, or do not exist, must be refused. delete
// then removes the sub-cgroup with the container's.
func TestExecSubCgroup(t *testing.T) {
	t.Parallel()
	c := newCtr(t)
	c.startLong()
	sub := c.cgroupFile("memory", "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	// Registered after newCtr's cleanup, so it runs first: the sub-cgroup
	// goes before the container's own cgroup is removed.
	t.Cleanup(func() {
		if !poll(5*time.Second, func() bool {
			for _, pid := range cgroupPids(sub) {
				syscall.Kill(pid, syscall.SIGKILL)
			}
			err := syscall.Rmdir(sub)
			return err == nil || errors.Is(err, syscall.ENOENT)
		}) {
			t.Errorf("cleanup: cannot remove %s", sub)
		}
	})
	base := "/" + cgroupParent + "/" + c.id
	// cgroupsSeen parses the cgroup applet's output into hierarchy
	// (its controllers or name=, "" for the unified one) → path.
	cgroupsSeen := func(t *testing.T, out string) map[string]string {
		t.Helper()
		m := map[string]string{}
		for line := range strings.Lines(out) {
			if f := strings.SplitN(strings.TrimSpace(line), ":", 3); len(f) == 3 {
				m[f[1]] = f[2]
			}
		}
		if _, ok := m["memory"]; !ok {
			t.Fatalf("no memory line in /proc/self/cgroup: %q", out)
		}
		return m
	}
	tests := []struct {
		name   string
		cgroup string
		mem    string // the memory cgroup the process must be in
		refuse string // exec must fail with stderr matching this
	}{
		{name: "memory:sub", cgroup: "memory:sub", mem: base + "/sub"},
		{name: "without --cgroup", mem: base},
		{name: "../escape", cgroup: "../escape", refuse: `(?i)sub-cgroup|inside|invalid`},
		{name: "memory:../escape", cgroup: "memory:../escape", refuse: `(?i)sub-cgroup|inside|invalid`},
		{name: "memory:sub/../../escape", cgroup: "memory:sub/../../escape", refuse: `(?i)sub-cgroup|inside|invalid`},
		{name: "absolute", cgroup: "memory:/escape", refuse: `(?i)sub-cgroup|relative|invalid`},
		{name: "missing sub-cgroup", cgroup: "memory:nosuch", refuse: `(?i)nosuch|no such`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var flags []string
			if tt.cgroup != "" {
				flags = []string{"--cgroup", tt.cgroup}
			}
			r := c.exec(flags, "cgroup")
			if tt.refuse != "" {
				if r.code == 0 {
					t.Errorf("exec --cgroup %s succeeded: %v", tt.cgroup, r)
				}
				if strings.Contains(r.stderr, "connection reset by peer") {
					// The C stage wrote its error and exited with a
					// sync byte of the runtime's unread: the kernel
					// then reports ECONNRESET before the queued message.
					t.Errorf("the runtime lost the init's error message (ECONNRESET on the sync socket):\n%v", r)
				} else {
					matchStderr(t, r, tt.refuse)
				}
				if r.stdout != "" {
					t.Errorf("the process ran: %q", r.stdout)
				}
				for _, p := range []string{"escape", "nosuch"} {
					for _, d := range []string{filepath.Join("/sys/fs/cgroup/memory", cgroupParent, p), c.cgroupFile("memory", p)} {
						if _, err := os.Stat(d); err == nil {
							t.Errorf("exec --cgroup %s created %s", tt.cgroup, d)
						}
					}
				}
				return
			}
			if r.code != 0 {
				t.Fatalf("%v", r)
			}
			for h, path := range cgroupsSeen(t, r.stdout) {
				want := base
				if h == "memory" {
					want = tt.mem
				}
				if path != want {
					t.Errorf("exec'd process in %q of hierarchy %q, want %q\n%s", path, h, want, r.stdout)
				}
			}
		})
	}
	if pids := cgroupPids(sub); len(pids) != 0 {
		t.Errorf("processes left in the sub-cgroup after the execs: %v", pids)
	}
	// delete removes the container's cgroups, the sub-cgroup included.
	if r := c.rt(runOpts{}, "delete", "-f", c.id); r.code != 0 {
		t.Fatalf("%v", r)
	}
	if _, err := os.Stat(sub); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("delete left the sub-cgroup %s (stat: %v)", sub, err)
	}
	assertNothingLeft(t, c.root, c.id, c.bundle)
}

// sigBit returns the mask of signal sig in a /proc/PID/status signal set.
func sigBit(sig int) uint64 { return 1 << (sig - 1) }

// signalMask reads a signal set of pid from /proc/PID/status: the line
// with the given prefix, such as "ShdPnd:" (shared pending) or "SigCgt:".
func signalMask(pid int, prefix string) (uint64, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	return 0, fmt.Errorf("no %s line in /proc/%d/status", prefix, pid)
}

// sharedPending reads the shared pending signal set (ShdPnd) of pid.
func sharedPending(pid int) (uint64, error) { return signalMask(pid, "ShdPnd:") }

// TestKillRealtime sends real-time signals by name. The testbin applets
// ignore them (the Go runtime drops signals nobody asked for), so the
// container is paused first: a frozen process cannot take a signal, which
// stays pending, and its ShdPnd set shows which one arrived. A signal the
// init does not catch (SigCgt) cannot be observed so: the kernel drops it
// for a pid namespace's init with the default action. Go leaves SIGRTMIN
// (34, musl's SIGSYNCCALL) so; then only kill's status is checked.
func TestKillRealtime(t *testing.T) {
	t.Parallel()
	c := newCtr(t)
	pid := c.startLong()
	tests := []struct {
		signal string
		num    int // 0: kill must fail
	}{
		{"SIGRTMIN+2", 36},
		{"RTMIN+2", 36},
		{"sigrtmin+2", 36},
		{"SIGRTMIN+1", 35},
		{"SIGRTMIN", 34},
		{"SIGRTMAX", 64},
		{"SIGRTMAX-3", 61},
		{"36", 36},
		{"SIGRTMAX+1", 0},
		{"SIGRTMIN-1", 0},
		{"SIGRTMIN+31", 0},
		{"SIGRTMAX-31", 0},
		{"SIGRTMIN+", 0},
	}
	for _, tt := range tests {
		t.Run(tt.signal, func(t *testing.T) {
			// Nothing pending from the case before.
			if !poll(waitTimeout, func() bool { p, err := sharedPending(pid); return err == nil && p == 0 }) {
				p, err := sharedPending(pid)
				t.Fatalf("signals still pending before the case: %#x (%v)", p, err)
			}
			// Whether the init catches the signal, so that it can be
			// seen pending.
			caught, err := signalMask(pid, "SigCgt:")
			if err != nil {
				t.Fatal(err)
			}
			observable := tt.num != 0 && caught&sigBit(tt.num) != 0
			c.must("pause")
			r := c.cmd("kill", tt.signal)
			var pending uint64
			if observable {
				// Delivery to the frozen process is done when kill(2)
				// returns, but poll briefly all the same.
				poll(2*time.Second, func() bool {
					pending, _ = sharedPending(pid)
					return pending != 0
				})
			} else {
				pending, _ = sharedPending(pid)
			}
			c.must("resume")
			if tt.num == 0 {
				if r.code == 0 {
					t.Errorf("kill %s succeeded: %v", tt.signal, r)
				}
				matchStderr(t, r, `(?i)unknown signal|invalid signal`)
				if pending != 0 {
					t.Errorf("a signal reached the container: pending %#x", pending)
				}
				return
			}
			if r.code != 0 {
				t.Fatalf("%v", r)
			}
			if !observable {
				t.Logf("the init does not catch signal %d (SigCgt %#x): only kill's status is checked", tt.num, caught)
				return
			}
			if pending != sigBit(tt.num) {
				t.Errorf("kill %s: pending signals of the init %#x, want %#x (signal %d)", tt.signal, pending, sigBit(tt.num), tt.num)
			}
		})
	}
	if st := c.state(); st.Status != "running" || st.Pid != pid {
		t.Errorf("after the real-time signals: state %+v, want running with pid %d", st, pid)
	}
}
