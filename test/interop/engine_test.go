//go:build integration

package interop_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// memoryLimit is the limit the memory subtest asks for: 64 MiB.
const memoryLimit = 64 << 20

// runOpts describes one container for an engine's command line.
type runOpts struct {
	name   string // container name (ID for ctr); always set
	tty    bool   // -i -t
	memory int64  // bytes; 0 for none
	cmd    []string
}

// engine is one peer's command line, enough to run the shared scenarios.
type engine struct {
	name   string
	bin    string
	global []string // flags before the subcommand
	env    []string
	ctx    context.Context // the peer's time budget
	cgroup string          // /berth-interop-<random>: every container's cgroup is below it

	// run returns the arguments of a foreground run that removes the
	// container when it exits; start those of a detached run.
	run   func(o runOpts) []string
	start func(o runOpts) []string
	// exec returns the arguments to run cmd in the running container name.
	exec func(name string, tty bool, cmd ...string) []string
	// remove returns the commands that force-remove the container name.
	remove func(name string) [][]string
	// cgroupfsInside: the engine's spec mounts /sys/fs/cgroup in the
	// container (Podman and Docker do; ctr's default spec does not).
	cgroupfsInside bool

	// Lifecycle: pause, resume and stop (SIGTERM, waiting for the exit)
	// the container name, and start it again once it has stopped.
	pause, resume, stop, restart func(name string) []string
	// status returns the container's state: running, paused or stopped.
	status func(t *testing.T, name string) string
	// exitCode returns the exit code of the stopped container name.
	exitCode func(t *testing.T, name string) int
	// update changes a running container's memory limit; nil when the
	// engine's CLI cannot (ctr).
	update func(name string, memory int64) []string
}

// do runs one engine command with the command timeout and logs it.
func (e *engine) do(t *testing.T, args ...string) result {
	t.Helper()
	r := runCmd(e.ctx, cmdTimeout, e.env, e.bin, append(append([]string{}, e.global...), args...)...)
	t.Logf("%s", r)
	return r
}

// must runs one engine command and fails the test unless it succeeds.
func (e *engine) must(t *testing.T, args ...string) result {
	t.Helper()
	r := e.do(t, args...)
	if !r.ok() {
		t.Fatalf("%s failed", e.name)
	}
	return r
}

// quiet runs one engine command without logging it (for polling).
func (e *engine) quiet(args ...string) result {
	return runCmd(e.ctx, cmdTimeout, e.env, e.bin, append(append([]string{}, e.global...), args...)...)
}

// removeNow force-removes a container, with a fresh timeout (it runs in
// cleanups, after the peer's budget may have run out).
func (e *engine) removeNow(t *testing.T, name string) {
	for _, args := range e.remove(name) {
		r := runCmd(context.Background(), cleanupTimeout, e.env, e.bin, append(append([]string{}, e.global...), args...)...)
		if r.Err != nil {
			t.Logf("cleanup: %s", r)
		}
	}
}

// startLong starts a detached container that sleeps, to exec into; it is
// removed when the test ends.
func (e *engine) startLong(t *testing.T, name string, memory int64) {
	t.Helper()
	t.Cleanup(func() { e.removeNow(t, name) })
	e.must(t, e.start(runOpts{name: name, memory: memory, cmd: []string{"sleep", "300"}})...)
}

func uniqueName(prefix string) string { return prefix + "-" + randHex(3) }

// scenarios runs the scenarios every peer must pass with berth-runtime.
func (e *engine) scenarios(t *testing.T) {
	t.Run("echo", e.testEcho)
	t.Run("exec", e.testExec)
	t.Run("tty", e.testTTY)
	t.Run("memory", e.testMemory)
	t.Run("lifecycle", e.testLifecycle)
}

// testEcho: a container's stdout, stderr and exit code reach the caller.
func (e *engine) testEcho(t *testing.T) {
	const msg = "hello from berth-runtime"
	r := e.do(t, e.run(runOpts{name: uniqueName("echo"), cmd: []string{"echo", msg}})...)
	if !r.ok() || r.Stdout != msg+"\n" {
		t.Errorf("%s run echo: got exit %d stdout %q, want exit 0 stdout %q", e.name, r.Code, r.Stdout, msg+"\n")
	}

	r = e.do(t, e.run(runOpts{name: uniqueName("exit"), cmd: []string{"sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 7"}})...)
	if r.Err != nil || r.Code != 7 {
		t.Errorf("%s run 'exit 7': got exit %d (%v), want 7", e.name, r.Code, r.Err)
	}
	if r.Stdout != "to-stdout\n" || !strings.Contains(r.Stderr, "to-stderr") {
		t.Errorf("%s run: stdout %q stderr %q, want to-stdout and to-stderr apart", e.name, r.Stdout, r.Stderr)
	}
}

// testExec: a process exec'd into a running container shares its PID
// namespace and cgroup, and its output and exit code reach the caller.
func (e *engine) testExec(t *testing.T) {
	name := uniqueName("exec")
	e.startLong(t, name, 0)

	r := e.do(t, e.exec(name, false, "sh", "-c", `echo exec-$((6*7)); tr '\0' ' ' </proc/1/cmdline; echo; test "$(cat /proc/self/cgroup)" = "$(cat /proc/1/cgroup)" && echo same-cgroup`)...)
	if !r.ok() {
		t.Fatalf("%s exec failed", e.name)
	}
	for _, want := range []string{"exec-42\n", "sleep 300", "same-cgroup"} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("%s exec: stdout %q lacks %q", e.name, r.Stdout, want)
		}
	}

	r = e.do(t, e.exec(name, false, "sh", "-c", "exit 5")...)
	if r.Err != nil || r.Code != 5 {
		t.Errorf("%s exec 'exit 5': got exit %d (%v), want 5", e.name, r.Code, r.Err)
	}

	// A second exec while the first ones are gone: the runtime's state of
	// the container must still be right.
	r = e.do(t, e.exec(name, false, "echo", "again")...)
	if !r.ok() || r.Stdout != "again\n" {
		t.Errorf("%s second exec: exit %d stdout %q", e.name, r.Code, r.Stdout)
	}
}

// ttyScript prints the terminal's name and size, then echoes one line that
// the test types. The engines resize the container's terminal right after
// starting it, so the size is polled for a while.
const ttyScript = `tty; i=0; while [ $i -lt 50 ]; do s=$(stty size 2>/dev/null); [ "$s" = "33 101" ] && break; sleep 0.1; i=$((i+1)); done; echo "size=$s"; [ -t 0 ] && [ -t 1 ] && echo stdio-is-tty; echo ready; read line; echo "got-$line"`

// testTTY: run -it and exec -it give the process a terminal of the
// caller's size whose input and output reach the caller.
func (e *engine) testTTY(t *testing.T) {
	t.Run("run", func(t *testing.T) {
		e.ttySession(t, e.run(runOpts{name: uniqueName("tty"), tty: true, cmd: []string{"sh", "-c", ttyScript}}))
	})
	t.Run("exec", func(t *testing.T) {
		name := uniqueName("ttyexec")
		e.startLong(t, name, 0)
		e.ttySession(t, e.exec(name, true, "sh", "-c", ttyScript))
	})
}

func (e *engine) ttySession(t *testing.T, args []string) {
	t.Helper()
	full := append(append([]string{}, e.global...), args...)
	t.Logf("$ %s %s   (on a 33x101 pseudo-terminal)", e.bin, strings.Join(full, " "))
	s, err := startPTY(e.ctx, 33, 101, e.env, e.bin, full...)
	if err != nil {
		t.Fatalf("start on a pty: %v", err)
	}
	ready := s.waitFor("ready\n", cmdTimeout)
	if ready {
		if err := s.write("ping\r"); err != nil {
			t.Errorf("type into the terminal: %v", err)
		}
	}
	code, out, err := s.finish(30 * time.Second)
	t.Logf("[exit %d after %s] terminal:\n%s", code, time.Since(s.start).Round(time.Millisecond), out)
	if !ready {
		t.Fatalf("%s with a tty never printed ready (err %v)", e.name, err)
	}
	if err != nil || code != 0 {
		t.Errorf("%s with a tty: exit %d, err %v", e.name, code, err)
	}
	for _, want := range []string{"/dev/pts/", "size=33 101", "stdio-is-tty", "got-ping"} {
		if !strings.Contains(out, want) {
			t.Errorf("%s with a tty: terminal output lacks %q", e.name, want)
		}
	}
}

// testMemory: the memory limit reaches the container's cgroup, which is
// below the cgroup parent the test gave the engine, and the engine's update
// command (the runtime's `update`) changes it.
func (e *engine) testMemory(t *testing.T) {
	name := uniqueName("mem")
	e.startLong(t, name, memoryLimit)
	file := e.checkMemoryLimit(t, name, memoryLimit)
	if e.update == nil {
		t.Logf("%s has no update command; the runtime's update is not exercised", e.name)
		return
	}
	const updated = 96 << 20
	e.must(t, e.update(name, updated)...)
	if file != "" {
		if got := readTrim(file); got != strconv.Itoa(updated) {
			t.Errorf("%s update: host %s = %s, want %d", e.name, file, got, updated)
		}
	}
	e.checkMemoryLimit(t, name, updated)
}

// checkMemoryLimit reads the container's memory cgroup and limit from
// inside and its limit file on the host; it returns the host file.
func (e *engine) checkMemoryLimit(t *testing.T, name string, want int64) string {
	t.Helper()
	r := e.must(t, e.exec(name, false, "sh", "-c", "cat /proc/self/cgroup; echo ---; cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max 2>/dev/null || echo none")...)
	cgroups, inside, _ := strings.Cut(r.Stdout, "---\n")
	inside = strings.TrimSpace(inside)
	wantS := strconv.FormatInt(want, 10)

	path := memoryCgroupPath(cgroups)
	if path == "" {
		t.Fatalf("no memory cgroup in /proc/self/cgroup:\n%s", cgroups)
	}
	if !strings.HasPrefix(path, e.cgroup+"/") {
		t.Errorf("%s container's memory cgroup %q is not below %s", e.name, path, e.cgroup)
	}
	file, err := memoryLimitFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := readTrim(file); got != wantS {
		t.Errorf("%s: host %s = %s, want %s", e.name, file, got, wantS)
	} else {
		t.Logf("host %s = %s", file, got)
	}
	if e.cgroupfsInside && inside != wantS {
		t.Errorf("%s: limit read inside the container = %q, want %s", e.name, inside, wantS)
	}
	return file
}

func readTrim(file string) string {
	data, err := os.ReadFile(file)
	if err != nil {
		return "error: " + err.Error()
	}
	return strings.TrimSpace(string(data))
}

// lifecycleScript traps SIGTERM to exit 3, so a stop that delivers the
// signal through the runtime's kill is told from a SIGKILL.
const lifecycleScript = `trap 'exit 3' TERM; : > /tmp/ready; while :; do sleep 1 & wait $!; done`

// testLifecycle: pause and resume (the runtime's pause/resume), stop with
// SIGTERM (kill), the exit code, and a restart that creates the container
// again under the same ID (so delete must have removed its state).
func (e *engine) testLifecycle(t *testing.T) {
	name := uniqueName("life")
	t.Cleanup(func() { e.removeNow(t, name) })
	e.must(t, e.start(runOpts{name: name, cmd: []string{"sh", "-c", lifecycleScript}})...)
	e.waitExec(t, name, "test", "-f", "/tmp/ready")

	e.must(t, e.pause(name)...)
	if s := e.status(t, name); s != "paused" {
		t.Errorf("%s after pause: status %q, want paused", e.name, s)
	}
	e.must(t, e.resume(name)...)
	if s := e.status(t, name); s != "running" {
		t.Errorf("%s after resume: status %q, want running", e.name, s)
	}
	if r := e.do(t, e.exec(name, false, "echo", "resumed")...); !r.ok() || r.Stdout != "resumed\n" {
		t.Errorf("%s exec after resume: exit %d stdout %q", e.name, r.Code, r.Stdout)
	}

	start := time.Now()
	e.must(t, e.stop(name)...)
	e.waitStatus(t, name, "stopped", 20*time.Second)
	if took := time.Since(start); took > 9*time.Second {
		t.Errorf("%s stop took %s: SIGTERM was not delivered", e.name, took.Round(time.Millisecond))
	}
	if code := e.exitCode(t, name); code != 3 {
		t.Errorf("%s: exit code after stop %d, want 3 (the SIGTERM trap)", e.name, code)
	}

	e.must(t, e.restart(name)...)
	e.waitExec(t, name, "test", "-f", "/tmp/ready")
	if s := e.status(t, name); s != "running" {
		t.Errorf("%s after restart: status %q, want running", e.name, s)
	}
}

// waitExec retries an exec until it succeeds (10s at most).
func (e *engine) waitExec(t *testing.T, name string, cmd ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := e.quiet(e.exec(name, false, cmd...)...)
		if r.ok() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s never succeeded: %s", e.name, strings.Join(cmd, " "), r)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (e *engine) waitStatus(t *testing.T, name, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s := e.status(t, name)
		if s == want {
			t.Logf("%s is %s", name, s)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: status %q after %s, want %q", e.name, s, timeout, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// normalizeStatus maps the engines' words for a container's state onto
// running, paused and stopped.
func normalizeStatus(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	switch s {
	case "exited", "stopped", "dead":
		return "stopped"
	}
	return s
}

// inspectStatus and inspectExitCode serve Docker and Podman, whose
// inspect templates agree.
func (e *engine) inspectStatus(t *testing.T, name string) string {
	r := e.quiet("inspect", "--format", "{{.State.Status}}", name)
	if !r.ok() {
		t.Logf("%s", r)
		return "unknown"
	}
	return normalizeStatus(r.Stdout)
}

func (e *engine) inspectExitCode(t *testing.T, name string) int {
	r := e.do(t, "inspect", "--format", "{{.State.ExitCode}}", name)
	code, err := strconv.Atoi(strings.TrimSpace(r.Stdout))
	if !r.ok() || err != nil {
		return -1
	}
	return code
}

// memoryCgroupPath returns the memory cgroup (v1) or the unified cgroup
// (v2 only) named in a /proc/PID/cgroup listing.
func memoryCgroupPath(listing string) string {
	var unified string
	for _, line := range strings.Split(listing, "\n") {
		parts := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" && parts[0] == "0" {
			unified = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == "memory" {
				return parts[2]
			}
		}
	}
	return unified
}

func fmtBytes(n int64) string { return fmt.Sprintf("%dm", n>>20) }
