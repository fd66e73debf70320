//go:build integration

// Package runtime_test holds black-box integration tests of berth-runtime:
// they run the binary the way containerd or Podman would, with bundles
// built by internal/testfixture, and check from inside the containers
// (through the testbin applets) that each part of the spec was applied.
//
// The tests need root and cgroup v1. Every container gets a unique id, its
// own --root state directory and the cgroup path /berth-it/<id>; the
// cleanup deletes it and removes what it may have left behind.
//
// Run them with `make integration`, which sets BERTH_RUNTIME to the binary
// under test; without it, TestMain builds berth-runtime into a temporary
// directory.
package runtime_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-engine/berth/internal/testfixture"
)

// runtimeBin is the absolute path of the berth-runtime under test.
var runtimeBin string

// cgroupParent is the cgroup directory, below each v1 hierarchy, under which
// every test container gets its own cgroup (cgroupParent/<id>).
const cgroupParent = "berth-it"

// Default time bounds.
const (
	cmdTimeout  = 30 * time.Second // one runtime invocation
	waitTimeout = 15 * time.Second // polling for a state change
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	if p := os.Getenv("BERTH_RUNTIME"); p != "" {
		abs, err := filepath.Abs(p)
		if err == nil {
			_, err = os.Stat(abs)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "BERTH_RUNTIME=%s: %v\n", p, err)
			return 1
		}
		runtimeBin = abs
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "berth-it-runtime-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin, err := buildRuntime(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	runtimeBin = bin
	return m.Run()
}

// buildRuntime builds ./cmd/berth-runtime (with cgo, as the Makefile does)
// into dir and returns the binary's path.
func buildRuntime(dir string) (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	root := wd
	for {
		if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(root)
		if parent == root {
			return "", fmt.Errorf("no go.mod above %s", wd)
		}
		root = parent
	}
	out := filepath.Join(dir, "berth-runtime")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, "./cmd/berth-runtime")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if output, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building berth-runtime: %v\n%s", err, output)
	}
	return out, nil
}

// require fails (under CI=true) or skips the test when a prerequisite is
// missing.
func require(t *testing.T, ok bool, format string, args ...any) {
	t.Helper()
	if ok {
		return
	}
	msg := "missing prerequisite: " + fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true, so not skipping)")
	}
	t.Skip(msg)
}

// requireCgroupV1 checks for the v1 hierarchies the tests use.
func requireCgroupV1(t *testing.T, controllers ...string) {
	t.Helper()
	for _, c := range controllers {
		_, err := os.Stat(filepath.Join("/sys/fs/cgroup", c, "cgroup.procs"))
		require(t, err == nil, "cgroup v1 %s hierarchy at /sys/fs/cgroup/%s", c, c)
	}
}

// newID returns a fresh container id.
func newID() string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return "it-" + hex.EncodeToString(b)
}

// result is the outcome of one runtime invocation.
type result struct {
	args     []string
	code     int // exit status; -1 when killed by a signal
	stdout   string
	stderr   string
	timedOut bool
}

func (r result) String() string {
	s := fmt.Sprintf("berth-runtime %s: exit %d", strings.Join(r.args, " "), r.code)
	if r.timedOut {
		s += " (timed out)"
	}
	return fmt.Sprintf("%s\nstdout: %q\nstderr: %q", s, clip(r.stdout), clip(r.stderr))
}

// clip shortens long output for messages.
func clip(s string) string {
	const max = 2000
	if len(s) <= max {
		return s
	}
	return s[:max/2] + fmt.Sprintf(" [... %d bytes ...] ", len(s)-max) + s[len(s)-max/2:]
}

// runOpts tunes one runtime invocation.
type runOpts struct {
	timeout time.Duration // default cmdTimeout
	stdin   io.Reader     // default /dev/null
	// stdout and stderr, when set, receive the command's output instead of
	// the capture files; a container created by the command inherits them.
	stdout, stderr *os.File
	dir            string   // working directory
	env            []string // added to the test's environment
}

// invoke runs bin with args. Output goes to files, never pipes, so that a
// container that inherits the runtime's stdio cannot keep Wait blocked.
func invoke(t *testing.T, bin string, o runOpts, args ...string) result {
	t.Helper()
	r, err := invokeErr(bin, o, args...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// invokeErr is invoke for use outside the test goroutine: it returns
// unexpected errors instead of failing the test.
func invokeErr(bin string, o runOpts, args ...string) (result, error) {
	r := result{args: args}
	if o.timeout == 0 {
		o.timeout = cmdTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = o.dir
	if len(o.env) > 0 {
		cmd.Env = append(os.Environ(), o.env...)
	}
	cmd.Stdin = o.stdin
	cmd.WaitDelay = 2 * time.Second
	outF, errF := o.stdout, o.stderr
	var err error
	if outF == nil {
		if outF, err = os.CreateTemp("", "berth-it-out-"); err != nil {
			return r, err
		}
		defer os.Remove(outF.Name())
		defer outF.Close()
	}
	if errF == nil {
		if errF, err = os.CreateTemp("", "berth-it-err-"); err != nil {
			return r, err
		}
		defer os.Remove(errF.Name())
		defer errF.Close()
	}
	outStart, _ := outF.Seek(0, io.SeekEnd)
	errStart, _ := errF.Seek(0, io.SeekEnd)
	cmd.Stdout, cmd.Stderr = outF, errF
	err = cmd.Run()
	r.timedOut = ctx.Err() != nil
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		r.code = exitErr.ExitCode()
	default:
		return r, fmt.Errorf("running berth-runtime %q: %v", args, err)
	}
	if r.stdout, err = readFrom(outF.Name(), outStart); err != nil {
		return r, err
	}
	if r.stderr, err = readFrom(errF.Name(), errStart); err != nil {
		return r, err
	}
	return r, nil
}

// readFrom returns the content of the file at path from offset on.
func readFrom(path string, offset int64) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	if offset > int64(len(data)) {
		return "", nil
	}
	return string(data[offset:]), nil
}

// ctr is one test container: a bundle with a spec, a state root and the
// runtime binary to drive it with.
type ctr struct {
	t      *testing.T
	id     string
	root   string // --root
	bundle string
	spec   *specs.Spec
	bin    string
	// out and errOut receive the stdout and stderr of processes started
	// by create (and run --detach): the container's own output.
	out, errOut *os.File
}

// newCtr prepares a container with a default spec generated by
// `berth-runtime spec`, changed to be non-interactive and to use the
// cgroup /berth-it/<id>. Nothing runs yet; the caller edits c.spec.
func newCtr(t *testing.T) *ctr {
	t.Helper()
	return newCtrIn(t, t.TempDir())
}

// newCtrIn is newCtr with a given --root, for tests that need several
// containers in one state root.
func newCtrIn(t *testing.T, root string) *ctr {
	t.Helper()
	testfixture.RequireRoot(t)
	requireCgroupV1(t, "memory", "pids", "cpu", "devices", "freezer")
	c := &ctr{t: t, id: newID(), root: root, bundle: testfixture.Bundle(t), bin: runtimeBin}
	out, err := os.CreateTemp(t.TempDir(), "ctr-output-")
	if err != nil {
		t.Fatal(err)
	}
	c.out = out
	if c.errOut, err = os.CreateTemp(filepath.Dir(out.Name()), "ctr-stderr-"); err != nil {
		t.Fatal(err)
	}
	// Registered after the directories, so it runs before they are removed.
	t.Cleanup(c.cleanup)

	r := c.rt(runOpts{}, "spec", "--bundle", c.bundle)
	if r.code != 0 {
		t.Fatalf("generating the spec: %v", r)
	}
	data, err := os.ReadFile(filepath.Join(c.bundle, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	c.spec = new(specs.Spec)
	if err := json.Unmarshal(data, c.spec); err != nil {
		t.Fatalf("berth-runtime spec wrote invalid JSON: %v\n%s", err, data)
	}
	if c.spec.Process == nil || c.spec.Linux == nil || c.spec.Root == nil {
		t.Fatalf("berth-runtime spec lacks process, root or linux:\n%s", data)
	}
	c.spec.Process.Terminal = false
	c.spec.Linux.CgroupsPath = "/" + cgroupParent + "/" + c.id
	return c
}

// rt runs the container's runtime binary with --root and args (the caller
// includes the id where the command takes one).
func (c *ctr) rt(o runOpts, args ...string) result {
	c.t.Helper()
	if o.dir == "" {
		o.dir = c.bundle
	}
	return invoke(c.t, c.bin, o, append([]string{"--root", c.root}, args...)...)
}

// rtAsync starts the runtime with args in the background; the channel
// receives the result (code -2 and the error in stderr if it could not
// run).
func (c *ctr) rtAsync(o runOpts, args ...string) <-chan result {
	if o.dir == "" {
		o.dir = c.bundle
	}
	done := make(chan result, 1)
	full := append([]string{"--root", c.root}, args...)
	go func() {
		r, err := invokeErr(c.bin, o, full...)
		if err != nil {
			r.code, r.stderr = -2, err.Error()
		}
		done <- r
	}()
	return done
}

// cmd runs `berth-runtime --root R VERB ID ARGS...`.
func (c *ctr) cmd(verb string, args ...string) result {
	c.t.Helper()
	return c.rt(runOpts{}, append([]string{verb, c.id}, args...)...)
}

// must is cmd that fails the test unless the command exits 0.
func (c *ctr) must(verb string, args ...string) result {
	c.t.Helper()
	r := c.cmd(verb, args...)
	if r.code != 0 {
		c.t.Fatalf("%v", r)
	}
	return r
}

// writeSpec writes c.spec to the bundle's config.json.
func (c *ctr) writeSpec() {
	c.t.Helper()
	testfixture.WriteSpec(c.t, c.bundle, c.spec)
}

// args sets the container process's arguments.
func (c *ctr) args(args ...string) *ctr {
	c.spec.Process.Args = args
	return c
}

// run writes the spec and runs the container in the foreground, returning
// the exit status and output (stdout and stderr of the container process
// are the runtime's).
func (c *ctr) run(extra ...string) result {
	c.t.Helper()
	c.writeSpec()
	return c.rt(runOpts{}, append(append([]string{"run"}, extra...), c.id)...)
}

// runToEnd creates and starts the container, waits until its process has
// exited and returns what it wrote to stdout. It uses create and start
// (as containerd does) rather than run, so that checks of what the
// process sees do not depend on run's exit status handling; tests of exit
// statuses use run.
func (c *ctr) runToEnd() string {
	c.t.Helper()
	c.createOK()
	c.must("start")
	c.waitStatus("stopped")
	return c.output()
}

// create writes the spec and creates the container; the container's stdio
// is c.out. extra flags go before the id.
func (c *ctr) create(extra ...string) result {
	c.t.Helper()
	c.writeSpec()
	return c.rt(c.stdio(), append(append([]string{"create"}, extra...), c.id)...)
}

// stdio returns runOpts that give a command the container's output files.
func (c *ctr) stdio() runOpts {
	return runOpts{stdout: c.out, stderr: c.errOut}
}

// createOK is create that fails the test on error.
func (c *ctr) createOK(extra ...string) {
	c.t.Helper()
	if r := c.create(extra...); r.code != 0 {
		c.t.Fatalf("%v", r)
	}
}

// startLong creates and starts the container with a process that lives
// for the rest of the test (bounded by `sleep`), so that exec and the
// cgroup files can be used. It returns the init's host pid.
func (c *ctr) startLong() int {
	c.t.Helper()
	if len(c.spec.Process.Args) == 0 || c.spec.Process.Args[0] == "sh" {
		c.args("sleep", "120")
	}
	c.createOK()
	c.must("start")
	st := c.waitStatus("running")
	return st.Pid
}

// output returns what the container's processes wrote to c.out so far.
func (c *ctr) output() string {
	c.t.Helper()
	data, err := os.ReadFile(c.out.Name())
	if err != nil {
		c.t.Fatal(err)
	}
	return string(data)
}

// errOutput returns what the container's processes wrote to stderr.
func (c *ctr) errOutput() string {
	c.t.Helper()
	data, err := os.ReadFile(c.errOut.Name())
	if err != nil {
		c.t.Fatal(err)
	}
	return string(data)
}

// waitOutput waits until the container output contains s.
func (c *ctr) waitOutput(s string) string {
	c.t.Helper()
	var out string
	ok := poll(waitTimeout, func() bool {
		out = c.output()
		return strings.Contains(out, s)
	})
	if !ok {
		c.t.Fatalf("container output does not contain %q within %v: %q", s, waitTimeout, out)
	}
	return out
}

// exec runs `exec [flags] ID ARGS...` in the foreground.
func (c *ctr) exec(flags []string, args ...string) result {
	c.t.Helper()
	full := append(append([]string{"exec"}, flags...), c.id)
	return c.rt(runOpts{}, append(full, args...)...)
}

// execOK is exec without flags that fails the test unless the process
// exits 0, and returns its standard output.
func (c *ctr) execOK(args ...string) string {
	c.t.Helper()
	r := c.exec(nil, args...)
	if r.code != 0 {
		c.t.Fatalf("%v", r)
	}
	return r.stdout
}

// ociState is the JSON printed by `state`.
type ociState struct {
	OCIVersion  string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	Status      string            `json:"status"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	Owner       string            `json:"owner"`
	Annotations map[string]string `json:"annotations"`
}

// state runs `state` and decodes it; the test fails if the command fails.
func (c *ctr) state() ociState {
	c.t.Helper()
	r := c.must("state")
	var st ociState
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		c.t.Fatalf("state output is not JSON: %v\n%v", err, r)
	}
	return st
}

// waitStatus polls `state` until the status is want.
func (c *ctr) waitStatus(want string) ociState {
	c.t.Helper()
	var st ociState
	ok := poll(waitTimeout, func() bool {
		st = c.state()
		return st.Status == want
	})
	if !ok {
		c.t.Fatalf("container %s: status %q, want %q within %v", c.id, st.Status, want, waitTimeout)
	}
	return st
}

// cgroupFile returns the path of a file in the container's cgroup of the
// given v1 controller.
func (c *ctr) cgroupFile(controller, name string) string {
	return filepath.Join("/sys/fs/cgroup", controller, cgroupParent, c.id, name)
}

// readCgroup reads a cgroup file of the container, trimmed.
func (c *ctr) readCgroup(controller, name string) string {
	c.t.Helper()
	data, err := os.ReadFile(c.cgroupFile(controller, name))
	if err != nil {
		c.t.Fatalf("reading the container's cgroup file: %v", err)
	}
	return strings.TrimSpace(string(data))
}

// cleanup deletes the container and removes anything it left.
func (c *ctr) cleanup() {
	r := invoke(c.t, c.bin, runOpts{timeout: 20 * time.Second}, "--root", c.root, "delete", "-f", c.id)
	if r.code != 0 && !strings.Contains(r.stderr, "does not exist") {
		c.t.Logf("cleanup: %v", r)
	}
	c.out.Close()
	c.errOut.Close()
	removeCgroups(c.t, c.id)
}

// cgroupDirs lists the container's cgroup directories that exist.
func cgroupDirs(id string) []string {
	dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", cgroupParent, id))
	return dirs
}

// removeCgroups kills what is left in the container's cgroups (all of it
// started by this test) and removes the directories bottom-up, with rmdir
// only.
func removeCgroups(t *testing.T, id string) {
	dirs := cgroupDirs(id)
	if len(dirs) == 0 {
		return
	}
	t.Logf("cleanup: removing leftover cgroups %v", dirs)
	var all []string
	for _, d := range dirs {
		filepath.WalkDir(d, func(p string, e os.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				all = append(all, p)
			}
			return nil
		})
	}
	for _, d := range all {
		if strings.Contains(d, "/freezer/") {
			os.WriteFile(filepath.Join(d, "freezer.state"), []byte("THAWED"), 0)
		}
	}
	poll(5*time.Second, func() bool {
		busy := false
		for _, d := range all {
			for _, pid := range cgroupPids(d) {
				busy = true
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		return !busy
	})
	slices.Reverse(all) // children after parents in WalkDir order
	for _, d := range all {
		poll(5*time.Second, func() bool {
			err := syscall.Rmdir(d)
			return err == nil || errors.Is(err, syscall.ENOENT)
		})
		if _, err := os.Stat(d); err == nil {
			t.Errorf("cleanup: cannot remove cgroup %s", d)
		}
	}
}

// cgroupPids reads cgroup.procs of a v1 cgroup directory.
func cgroupPids(dir string) []int {
	data, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(string(data)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// poll calls f until it returns true or timeout passes.
func poll(timeout time.Duration, f func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if f() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// leftoverProcs lists the live processes that belong to container id: in
// one of its cgroups, with the id as a command-line argument (a runtime
// command), or with root or working directory under one of paths (such as
// its bundle: the container's processes, and hooks, which run in the
// bundle). Other processes' environments are not read.
func leftoverProcs(id string, paths ...string) []string {
	entries, _ := os.ReadDir("/proc")
	self := os.Getpid()
	var found []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self || pid == 1 {
			continue
		}
		dir := filepath.Join("/proc", e.Name())
		why := ""
		if cg, err := os.ReadFile(filepath.Join(dir, "cgroup")); err == nil {
			for line := range strings.Lines(string(cg)) {
				p := strings.TrimSpace(line[strings.LastIndexByte(line, ':')+1:])
				if p == "/"+cgroupParent+"/"+id || strings.HasPrefix(p, "/"+cgroupParent+"/"+id+"/") {
					why = "cgroup " + p
				}
			}
		}
		if cmdline, err := os.ReadFile(filepath.Join(dir, "cmdline")); err == nil {
			if slices.Contains(strings.Split(string(cmdline), "\x00"), id) {
				why = "command line " + strings.ReplaceAll(strings.TrimRight(string(cmdline), "\x00"), "\x00", " ")
			}
		}
		for _, link := range []string{"root", "cwd"} {
			target, err := os.Readlink(filepath.Join(dir, link))
			if err != nil {
				continue
			}
			for _, p := range paths {
				if target == p || strings.HasPrefix(target, p+"/") {
					why = link + " " + target
				}
			}
		}
		if why == "" {
			continue
		}
		if st, err := os.ReadFile(filepath.Join(dir, "stat")); err == nil && isZombie(string(st)) {
			continue
		}
		comm, _ := os.ReadFile(filepath.Join(dir, "comm"))
		found = append(found, fmt.Sprintf("pid %d (%s): %s", pid, strings.TrimSpace(string(comm)), why))
	}
	return found
}

// isZombie reports whether a /proc/PID/stat line is that of a zombie.
func isZombie(stat string) bool {
	i := strings.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}

// assertNothingLeft checks that container id has no state entry in root,
// no cgroup directory and no live process.
func assertNothingLeft(t *testing.T, root, id string, paths ...string) {
	t.Helper()
	if _, err := os.Lstat(filepath.Join(root, id)); !errors.Is(err, os.ErrNotExist) {
		entries, _ := os.ReadDir(filepath.Join(root, id))
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("state entry %s left in --root (lstat: %v; contents %q)", filepath.Join(root, id), err, names)
	}
	if dirs := cgroupDirs(id); len(dirs) > 0 {
		t.Errorf("cgroup directories left: %v", dirs)
	}
	var procs []string
	if !poll(3*time.Second, func() bool {
		procs = leftoverProcs(id, paths...)
		return len(procs) == 0
	}) {
		t.Errorf("processes left: %v", procs)
	}
}

// hostNS returns the target of the test process's /proc/self/ns/NAME link.
func hostNS(t *testing.T, name string) string {
	t.Helper()
	target, err := os.Readlink("/proc/self/ns/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return target
}

// parseNS parses the output of the ns applet into name → link target.
func parseNS(out string) map[string]string {
	m := map[string]string{}
	for line := range strings.Lines(out) {
		if name, target, ok := strings.Cut(strings.TrimSpace(line), " "); ok {
			m[name] = target
		}
	}
	return m
}

// hasLine reports whether out has a line equal to line.
func hasLine(out, line string) bool {
	for l := range strings.Lines(out) {
		if strings.TrimRight(l, "\r\n") == line {
			return true
		}
	}
	return false
}

// matchStderr fails the test unless the stderr of r matches the regular
// expression re.
func matchStderr(t *testing.T, r result, re string) {
	t.Helper()
	if !regexp.MustCompile(re).MatchString(r.stderr) {
		t.Errorf("stderr does not match %q:\n%v", re, r)
	}
}

// mount returns a spec mount.
func mount(dest, typ, src string, opts ...string) specs.Mount {
	return specs.Mount{Destination: dest, Type: typ, Source: src, Options: opts}
}

// intp and friends return pointers for spec fields.
func intp(v int) *int       { return &v }
func i64p(v int64) *int64   { return &v }
func u64p(v uint64) *uint64 { return &v }
func u32p(v uint32) *uint32 { return &v }
