package cgroup

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Helpers for the tests that use the real cgroupfs of this machine. They
// only ever create cgroups below a fresh "/berth-test-<random>" subtree of
// each hierarchy, remove that subtree when the test ends (even on failure)
// and only signal processes they started themselves, by PID.

const testPrefix = "berth-test-"

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

func requireV1(t *testing.T) {
	t.Helper()
	requireRoot(t)
	if m := Mode(); m != ModeV1 && m != ModeHybrid {
		t.Skipf("needs a cgroup v1 host, this one is %q", m)
	}
}

// testParent returns a fresh "/berth-test-<random>" cgroup parent and
// registers the removal of that subtree from every hierarchy.
func testParent(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	name := testPrefix + hex.EncodeToString(b)
	t.Cleanup(func() {
		var roots []string
		if mounts, err := v1Mounts(DefaultRoot); err == nil {
			for _, mnt := range mounts {
				roots = append(roots, mnt)
			}
		}
		if isCgroup2(filepath.Join(DefaultRoot, "unified")) {
			roots = append(roots, filepath.Join(DefaultRoot, "unified"))
		}
		if isCgroup2(DefaultRoot) {
			roots = append(roots, DefaultRoot)
		}
		for _, root := range roots {
			dir := filepath.Join(root, name)
			if filepath.Base(dir) != name || !strings.HasPrefix(name, testPrefix) {
				panic("refusing to remove " + dir)
			}
			if err := rmTree(dir); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	return "/" + name
}

// child is a process started by a test.
type child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
}

// startChild starts a command and registers its killing (by PID) and
// reaping. Cleanups run last-registered first, so a thaw registered after
// this one runs before the kill.
func startChild(t *testing.T, name string, args ...string) *child {
	t.Helper()
	cmd := exec.Command(name, args...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return &child{cmd: cmd, stdin: stdin, stdout: bufio.NewReader(stdout)}
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// kill kills the child and reaps it.
func (c *child) kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = c.cmd.Wait()
}

// probeScript waits for a line on stdin, then reports which of /dev/null
// and /dev/zero it may open for writing and for reading, and loops.
// Redirections on the regular built-in "true" only fail the command, they
// do not end the shell.
const probeScript = `while read x; do
  r=""
  for d in null zero; do
    if true >/dev/$d; then r="$r $d:w:ok"; else r="$r $d:w:denied"; fi
    if true </dev/$d; then r="$r $d:r:ok"; else r="$r $d:r:denied"; fi
  done
  echo "$r"
done`

// probe asks a probeScript child for its device access.
func (c *child) probe(t *testing.T) string {
	t.Helper()
	if _, err := io.WriteString(c.stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	type result struct {
		line string
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		line, err := c.stdout.ReadString('\n')
		ch <- result{line, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("probe: %v", r.err)
		}
		return strings.TrimSpace(r.line)
	case <-time.After(10 * time.Second):
		t.Fatal("probe: no answer")
		return ""
	}
}

func readTrim(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// procCgroups parses /proc/<pid>/cgroup into hierarchy -> path ("" for the
// unified hierarchy).
func procCgroups(t *testing.T, pid int) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cgroup"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for line := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for sub := range strings.SplitSeq(parts[1], ",") {
			out[sub] = parts[2]
		}
	}
	return out
}
