//go:build integration

package interop_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// cmdTimeout bounds every peer command that runs a container.
	cmdTimeout = 45 * time.Second
	// cleanupTimeout bounds every command run while cleaning up.
	cleanupTimeout = 30 * time.Second
	// defaultPeerBudget bounds one peer's whole test (daemon start, image
	// import, all subtests; about 10s when all is well);
	// BERTH_INTEROP_PEER_TIMEOUT overrides it.
	defaultPeerBudget = 90 * time.Second
	// defaultPackageBudget bounds all peers together (cleanups come on top,
	// each command in them bounded by cleanupTimeout);
	// BERTH_INTEROP_TIMEOUT overrides it.
	defaultPackageBudget = 3 * time.Minute
	// cgroupPrefix names every cgroup tree this package creates; nothing
	// outside such a tree is ever touched.
	cgroupPrefix = "berth-interop-"
)

// inCI reports whether a missing peer must fail rather than skip.
func inCI() bool {
	v := strings.ToLower(os.Getenv("CI"))
	return v != "" && v != "0" && v != "false"
}

// unavailable fails the test in CI and skips it elsewhere.
func unavailable(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if inCI() {
		t.Fatalf("%s (CI=%s: a missing peer is a failure)", msg, os.Getenv("CI"))
	}
	t.Skip(msg)
}

// requireRoot skips (or fails in CI) unless the test runs as root.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		unavailable(t, "interop tests run real containers and need root")
	}
}

// berthRuntime returns the absolute path of the runtime under test.
func berthRuntime(t *testing.T) string {
	t.Helper()
	p := os.Getenv("BERTH_RUNTIME")
	if p == "" {
		unavailable(t, "BERTH_RUNTIME is not set (make build; BERTH_RUNTIME=$PWD/bin/berth-runtime)")
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		t.Fatalf("BERTH_RUNTIME %q: %v", p, err)
	}
	if fi, err := os.Stat(abs); err != nil || fi.Mode()&0o111 == 0 {
		unavailable(t, "BERTH_RUNTIME %q is not an executable file (%v)", abs, err)
	}
	return abs
}

// berthCLI returns the absolute path of the berth command line under test:
// $BERTH, or ../../bin/berth (what `make build` writes, seen from this
// package's directory) when BERTH is not set.
func berthCLI(t *testing.T) string {
	t.Helper()
	p := os.Getenv("BERTH")
	if p == "" {
		p = filepath.Join("..", "..", "bin", "berth")
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		t.Fatalf("BERTH %q: %v", p, err)
	}
	if fi, err := os.Stat(abs); err != nil || fi.Mode()&0o111 == 0 {
		unavailable(t, "berth CLI %q is not an executable file (%v): run make build, or set BERTH", abs, err)
	}
	return abs
}

// lookBinary finds the first of the candidates (absolute paths or names on
// PATH) that exists, or reports the peer as unavailable.
func lookBinary(t *testing.T, pkg string, candidates ...string) string {
	t.Helper()
	for _, c := range candidates {
		if filepath.IsAbs(c) {
			if fi, err := os.Stat(c); err == nil && fi.Mode()&0o111 != 0 {
				return c
			}
			continue
		}
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	unavailable(t, "%s not found (apt-get install %s)", strings.Join(candidates, " or "), pkg)
	return ""
}

// packageDeadline is when every peer's budget ends, set by TestMain.
var packageDeadline time.Time

func durationEnv(name string, def time.Duration) time.Duration {
	if v := os.Getenv(name); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			panic(fmt.Sprintf("%s=%q: %v", name, v, err))
		}
		return d
	}
	return def
}

// peerContext bounds one peer's test: its budget, the package's, and well
// before the go test deadline so that cleanups still run.
func peerContext(t *testing.T) context.Context {
	deadline := time.Now().Add(durationEnv("BERTH_INTEROP_PEER_TIMEOUT", defaultPeerBudget))
	if !packageDeadline.IsZero() && packageDeadline.Before(deadline) {
		deadline = packageDeadline
	}
	if d, ok := t.Deadline(); ok {
		if limit := d.Add(-60 * time.Second); limit.Before(deadline) {
			deadline = limit
		}
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	t.Cleanup(cancel)
	return ctx
}

func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// result is the outcome of one command.
type result struct {
	Cmd    string
	Stdout string
	Stderr string
	Code   int // exit code; -1 when the command did not exit normally
	Err    error
	Dur    time.Duration
}

func (r result) ok() bool { return r.Err == nil && r.Code == 0 }

func (r result) String() string {
	s := fmt.Sprintf("$ %s\n[exit %d after %s]", r.Cmd, r.Code, r.Dur.Round(time.Millisecond))
	if r.Err != nil {
		s += fmt.Sprintf(" error: %v", r.Err)
	}
	if r.Stdout != "" {
		s += "\nstdout: " + strings.TrimRight(r.Stdout, "\n")
	}
	if r.Stderr != "" {
		s += "\nstderr: " + strings.TrimRight(r.Stderr, "\n")
	}
	return s
}

// runCmd runs one command with a timeout derived from ctx. Its standard
// input is /dev/null.
func runCmd(ctx context.Context, timeout time.Duration, env []string, name string, args ...string) result {
	return runCmdInput(ctx, timeout, env, nil, name, args...)
}

// runCmdInput is runCmd with stdin as the command's standard input (nil
// for /dev/null).
func runCmdInput(ctx context.Context, timeout time.Duration, env []string, stdin io.Reader, name string, args ...string) result {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = stdin
	// A daemonized grandchild that keeps a pipe open must not hang the test.
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	r := result{
		Cmd:    strings.Join(append([]string{name}, args...), " "),
		Stdout: stdout.String(),
		Stderr: stderr.String(),
		Code:   -1,
		Dur:    time.Since(start),
	}
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		r.Err = fmt.Errorf("timed out or cancelled: %w (%v)", ctx.Err(), err)
	case err == nil:
		r.Code = 0
	case errors.As(err, &exitErr) && exitErr.Exited():
		r.Code = exitErr.ExitCode()
	default:
		r.Err = err
	}
	return r
}

// tempDir makes a private directory under the system temporary directory
// (short, so that socket paths stay within 108 bytes) and removes it when
// the test ends, after lazily unmounting anything left mounted below it.
func tempDir(t *testing.T, what string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", cgroupPrefix+what+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := removeTree(dir); err != nil {
			t.Errorf("cleanup %s: %v", dir, err)
		}
	})
	return dir
}

// mountsUnder lists the mount points at or below dir, deepest first.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountPath(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// removeTree lazily unmounts everything at or below dir (umount -l), then
// removes it without crossing into any file system still mounted there
// (rm -rf --one-file-system).
func removeTree(dir string) error {
	for pass := 0; pass < 8; pass++ {
		mps := mountsUnder(dir)
		if len(mps) == 0 {
			break
		}
		for _, mp := range mps {
			_ = unix.Unmount(mp, unix.MNT_DETACH)
		}
	}
	if left := mountsUnder(dir); len(left) > 0 {
		return fmt.Errorf("still mounted: %v", left)
	}
	rm := "/bin/rm"
	if p, err := exec.LookPath("rm"); err == nil {
		rm = p
	}
	r := runCmd(context.Background(), cleanupTimeout, nil, rm, "-rf", "--one-file-system", dir)
	if !r.ok() {
		return fmt.Errorf("%s", r)
	}
	return nil
}

// cgroupMount is one cgroup hierarchy mounted on the host.
type cgroupMount struct {
	path        string
	v2          bool
	controllers []string // v1 only: memory, cpu, name=systemd, ...
}

// cgroupMounts lists the host's cgroup hierarchies whose mount root is the
// hierarchy's root, so that a cgroup path maps to mountpoint+path.
func cgroupMounts() []cgroupMount {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []cgroupMount
	seen := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 3 || f[3] != "/" {
			continue
		}
		mp := unescapeMountPath(f[4])
		if seen[mp] {
			continue
		}
		switch g[0] {
		case "cgroup2":
			seen[mp] = true
			out = append(out, cgroupMount{path: mp, v2: true})
		case "cgroup":
			seen[mp] = true
			var ctrls []string
			for _, o := range strings.Split(g[2], ",") {
				switch o {
				case "rw", "ro", "relatime", "noatime", "nosuid", "nodev", "noexec", "clone_children", "xattr", "nsdelegate":
				default:
					ctrls = append(ctrls, o)
				}
			}
			out = append(out, cgroupMount{path: mp, controllers: ctrls})
		}
	}
	return out
}

// memoryLimitFile returns the host file that holds the memory limit of the
// cgroup at path (as /proc/PID/cgroup names it).
func memoryLimitFile(path string) (string, error) {
	var v2 string
	for _, m := range cgroupMounts() {
		if m.v2 {
			v2 = m.path
			continue
		}
		for _, c := range m.controllers {
			if c == "memory" {
				return filepath.Join(m.path, path, "memory.limit_in_bytes"), nil
			}
		}
	}
	if v2 != "" {
		return filepath.Join(v2, path, "memory.max"), nil
	}
	return "", errors.New("no memory cgroup hierarchy mounted")
}

// newCgroupParent returns /berth-interop-<random> for a peer's containers
// and removes that tree from every hierarchy when the test ends, killing
// any process still in it (those are the test's containers).
func newCgroupParent(t *testing.T) string {
	t.Helper()
	name := cgroupPrefix + randHex(4)
	t.Cleanup(func() { removeCgroupTree(t, name) })
	return "/" + name
}

func removeCgroupTree(t *testing.T, name string) {
	if !strings.HasPrefix(name, cgroupPrefix) || strings.Contains(name, "/") {
		t.Errorf("refusing to remove cgroup %q", name)
		return
	}
	for _, m := range cgroupMounts() {
		root := filepath.Join(m.path, name)
		if _, err := os.Stat(root); err != nil {
			continue
		}
		deadline := time.Now().Add(15 * time.Second)
		for {
			var dirs []string
			_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
				if err == nil && d.IsDir() {
					dirs = append(dirs, p)
				}
				return nil
			})
			if len(dirs) == 0 {
				break
			}
			sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
			for _, d := range dirs {
				for _, pid := range cgroupPIDs(d) {
					t.Logf("cleanup: killing pid %d left in cgroup %s", pid, d)
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
				_ = unix.Rmdir(d)
			}
			if _, err := os.Stat(root); err != nil {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("cleanup: cannot remove cgroup %s", root)
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

func cgroupPIDs(dir string) []int {
	data, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(string(data)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	return pids
}

// procsWithArg returns the processes whose command line has arg as one of
// its words. It finds the shims that a private containerd started (their
// command line names its private socket), so that a failed test does not
// leave them behind.
func procsWithArg(arg string) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		for _, w := range strings.Split(string(data), "\x00") {
			if w == arg {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}

// daemon is a peer daemon started by a test; it is stopped by its PID.
type daemon struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
}

func startDaemon(t *testing.T, name, logPath string, bin string, args ...string) *daemon {
	t.Helper()
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	// If the test binary dies without its cleanups, the daemon goes too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	t.Logf("starting %s: %s %s", name, bin, strings.Join(args, " "))
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	d := &daemon{name: name, cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(d.exited)
	}()
	return d
}

func (d *daemon) alive() bool {
	select {
	case <-d.exited:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM to the daemon's PID, then SIGKILL if it lingers.
func (d *daemon) stop(t *testing.T) {
	if !d.alive() {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
		return
	case <-time.After(20 * time.Second):
	}
	t.Logf("%s (pid %d) ignored SIGTERM for 20s; sending SIGKILL", d.name, d.cmd.Process.Pid)
	_ = d.cmd.Process.Kill()
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		t.Errorf("%s (pid %d) did not exit", d.name, d.cmd.Process.Pid)
	}
}

// logTail returns the last lines of the daemon's log.
func (d *daemon) logTail(n int) string {
	data, err := os.ReadFile(d.logPath)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitReady polls probe until it succeeds, the daemon exits or the time is up.
func (d *daemon) waitReady(t *testing.T, ctx context.Context, timeout time.Duration, probe func() result) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last result
	for {
		if !d.alive() {
			t.Fatalf("%s exited during start-up; log:\n%s", d.name, d.logTail(40))
		}
		last = probe()
		if last.ok() {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("%s not ready after %s: %s\nlog:\n%s", d.name, timeout, last, d.logTail(40))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// ptySession runs a command whose standard streams and controlling
// terminal are the slave side of a new pseudo-terminal, as a person at a
// terminal would run `docker run -it`.
type ptySession struct {
	cmd      *exec.Cmd
	master   *os.File
	mu       sync.Mutex
	out      bytes.Buffer
	readDone chan struct{}
	waitDone chan struct{}
	waitErr  error
	start    time.Time
}

// openPTY allocates a pseudo-terminal pair with the given window size.
func openPTY(rows, cols uint16) (master, slave *os.File, err error) {
	mfd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open /dev/ptmx: %w", err)
	}
	if err := unix.IoctlSetPointerInt(mfd, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(mfd)
		return nil, nil, fmt.Errorf("unlockpt: %w", err)
	}
	n, err := unix.IoctlGetUint32(mfd, unix.TIOCGPTN)
	if err != nil {
		unix.Close(mfd)
		return nil, nil, fmt.Errorf("ptsname: %w", err)
	}
	name := fmt.Sprintf("/dev/pts/%d", n)
	sfd, err := unix.Open(name, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Close(mfd)
		return nil, nil, fmt.Errorf("open %s: %w", name, err)
	}
	if err := unix.IoctlSetWinsize(sfd, unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
		unix.Close(mfd)
		unix.Close(sfd)
		return nil, nil, fmt.Errorf("set window size: %w", err)
	}
	// Non-blocking, so that os.File reads go through the poller and Close
	// interrupts a pending Read.
	if err := unix.SetNonblock(mfd, true); err != nil {
		unix.Close(mfd)
		unix.Close(sfd)
		return nil, nil, err
	}
	return os.NewFile(uintptr(mfd), "/dev/ptmx"), os.NewFile(uintptr(sfd), name), nil
}

func startPTY(ctx context.Context, rows, cols uint16, env []string, name string, args ...string) (*ptySession, error) {
	master, slave, err := openPTY(rows, cols)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	s := &ptySession{cmd: cmd, master: master, readDone: make(chan struct{}), waitDone: make(chan struct{}), start: time.Now()}
	if err := cmd.Start(); err != nil {
		master.Close()
		slave.Close()
		return nil, err
	}
	slave.Close()
	go func() {
		defer close(s.readDone)
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			if n > 0 {
				s.mu.Lock()
				s.out.Write(buf[:n])
				s.mu.Unlock()
			}
			if err != nil {
				return
			}
		}
	}()
	go func() {
		s.waitErr = cmd.Wait()
		close(s.waitDone)
	}()
	return s, nil
}

// output returns what the terminal showed so far, without carriage returns.
func (s *ptySession) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.ReplaceAll(s.out.String(), "\r", "")
}

// waitFor waits until the terminal showed want.
func (s *ptySession) waitFor(want string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if strings.Contains(s.output(), want) {
			return true
		}
		select {
		case <-s.waitDone:
			// Let the reader drain what the command printed last.
			select {
			case <-s.readDone:
			case <-time.After(time.Second):
			}
			return strings.Contains(s.output(), want)
		case <-time.After(50 * time.Millisecond):
		}
	}
	return false
}

func (s *ptySession) write(text string) error {
	_, err := s.master.WriteString(text)
	return err
}

// finish waits for the command (killing it after timeout) and returns its
// exit code and everything the terminal showed.
func (s *ptySession) finish(timeout time.Duration) (int, string, error) {
	var err error
	select {
	case <-s.waitDone:
	case <-time.After(timeout):
		_ = s.cmd.Process.Kill()
		<-s.waitDone
		err = fmt.Errorf("still running after %s; killed", timeout)
	}
	select {
	case <-s.readDone:
	case <-time.After(3 * time.Second):
	}
	s.master.Close()
	<-s.readDone
	code := -1
	var exitErr *exec.ExitError
	switch {
	case s.waitErr == nil:
		code = 0
	case errors.As(s.waitErr, &exitErr) && exitErr.Exited():
		code = exitErr.ExitCode()
	case err == nil:
		err = s.waitErr
	}
	return code, s.output(), err
}
