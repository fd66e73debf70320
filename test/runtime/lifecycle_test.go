//go:build integration

package runtime_test

import (
	"encoding/json"
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

// TestLifecycle walks create → start → kill → delete with each way of
// naming a signal, checking state, the pid file and the cleanup.
func TestLifecycle(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		args   []string // container process
		signal string
		ready  string // output that shows the process runs
		output string // output expected after the signal
	}{
		{name: "TERM", args: []string{"sigcatch", "60"}, signal: "TERM", ready: "ready\n", output: "signal SIGTERM\n"},
		{name: "9", args: []string{"sleep", "60"}, signal: "9"},
		{name: "SIGKILL", args: []string{"sleep", "60"}, signal: "SIGKILL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newCtr(t).args(tt.args...)
			pidFile := filepath.Join(t.TempDir(), "init.pid")
			c.createOK("--pid-file", pidFile)

			st := c.state()
			if st.Status != "created" || st.ID != c.id || st.Pid <= 0 || st.Bundle != c.bundle {
				t.Fatalf("state after create = %+v; want status created, id %s, a pid, bundle %s", st, c.id, c.bundle)
			}
			if st.OCIVersion == "" {
				t.Errorf("state has no ociVersion: %+v", st)
			}
			data, err := os.ReadFile(pidFile)
			if err != nil {
				t.Fatalf("pid file not written at create: %v", err)
			}
			if got := strings.TrimSpace(string(data)); got != strconv.Itoa(st.Pid) {
				t.Errorf("pid file = %q, state pid = %d", data, st.Pid)
			}
			if err := syscall.Kill(st.Pid, 0); err != nil {
				t.Errorf("init pid %d from state is not alive: %v", st.Pid, err)
			}
			if tt.ready != "" && strings.Contains(c.output(), tt.ready) {
				t.Errorf("the user process ran before start: output %q", c.output())
			}
			// The leftover detector must see the live init, or the
			// "nothing left" checks of the other tests prove nothing.
			if procs := leftoverProcs(c.id, c.bundle); len(procs) != 1 || !strings.HasPrefix(procs[0], "pid "+strconv.Itoa(st.Pid)+" ") {
				t.Errorf("leftoverProcs after create = %q, want just the init %d", procs, st.Pid)
			}
			if dirs := cgroupDirs(c.id); len(dirs) == 0 {
				t.Errorf("no cgroup under /sys/fs/cgroup/*/%s/%s after create", cgroupParent, c.id)
			}

			c.must("start")
			st2 := c.waitStatus("running")
			if st2.Pid != st.Pid {
				t.Errorf("pid changed from %d at create to %d after start", st.Pid, st2.Pid)
			}
			if tt.ready != "" {
				c.waitOutput(tt.ready)
			}
			if r := c.cmd("start"); r.code == 0 {
				t.Errorf("second start of a running container succeeded: %v", r)
			}

			c.must("kill", tt.signal)
			c.waitStatus("stopped")
			if tt.output != "" {
				c.waitOutput(tt.output)
			}

			c.must("delete")
			r := c.cmd("state")
			if r.code == 0 {
				t.Errorf("state after delete succeeded: %v", r)
			}
			matchStderr(t, r, `does not exist`)
			assertNothingLeft(t, c.root, c.id, c.bundle)
		})
	}
}

// listEntry is one element of `list --format json`.
type listEntry struct {
	ID     string `json:"id"`
	Pid    int    `json:"pid"`
	Status string `json:"status"`
	Bundle string `json:"bundle"`
}

func TestList(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	created := newCtrIn(t, root).args("sleep", "60")
	created.createOK()
	running := newCtrIn(t, root)
	running.startLong()

	want := map[string]*ctr{created.id: created, running.id: running}
	wantStatus := map[string]string{created.id: "created", running.id: "running"}

	t.Run("table", func(t *testing.T) {
		r := created.rt(runOpts{}, "list")
		if r.code != 0 {
			t.Fatalf("%v", r)
		}
		lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
		if len(lines) != 3 {
			t.Fatalf("list: want a header and 2 rows, got %q", r.stdout)
		}
		if h := strings.Fields(lines[0]); !slices.Equal(h, []string{"ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"}) {
			t.Errorf("list header = %q", lines[0])
		}
		for _, l := range lines[1:] {
			f := strings.Fields(l)
			if len(f) != 6 {
				t.Errorf("list row %q: want 6 columns", l)
				continue
			}
			c, ok := want[f[0]]
			if !ok {
				t.Errorf("list row for unknown container: %q", l)
				continue
			}
			if f[2] != wantStatus[f[0]] || f[3] != c.bundle || f[5] != "root" {
				t.Errorf("list row %q: want status %s, bundle %s, owner root", l, wantStatus[f[0]], c.bundle)
			}
			if _, err := time.Parse(time.RFC3339Nano, f[4]); err != nil {
				t.Errorf("list row %q: created: %v", l, err)
			}
			if pid, err := strconv.Atoi(f[1]); err != nil || pid <= 0 {
				t.Errorf("list row %q: bad pid", l)
			}
		}
	})
	t.Run("json", func(t *testing.T) {
		r := created.rt(runOpts{}, "list", "--format", "json")
		if r.code != 0 {
			t.Fatalf("%v", r)
		}
		var entries []listEntry
		if err := json.Unmarshal([]byte(r.stdout), &entries); err != nil {
			t.Fatalf("list --format json: %v\n%v", err, r)
		}
		if len(entries) != 2 {
			t.Fatalf("list --format json: want 2 entries, got %+v", entries)
		}
		for _, e := range entries {
			c, ok := want[e.ID]
			if !ok || e.Status != wantStatus[e.ID] || e.Bundle != c.bundle || e.Pid <= 0 {
				t.Errorf("list entry %+v: want status %s and bundle of %s", e, wantStatus[e.ID], e.ID)
			}
		}
	})
	t.Run("quiet", func(t *testing.T) {
		r := created.rt(runOpts{}, "list", "-q")
		if r.code != 0 {
			t.Fatalf("%v", r)
		}
		got := strings.Fields(r.stdout)
		slices.Sort(got)
		ids := []string{created.id, running.id}
		slices.Sort(ids)
		if !slices.Equal(got, ids) || strings.Count(r.stdout, "\n") != 2 {
			t.Errorf("list -q = %q; want exactly %q, one a line", r.stdout, ids)
		}
	})
	t.Run("empty", func(t *testing.T) {
		c := newCtr(t)
		r := c.rt(runOpts{}, "list", "--format", "json")
		if r.code != 0 || strings.TrimSpace(r.stdout) != "[]" {
			t.Errorf("list --format json of an empty root: want [], got %v", r)
		}
	})
}

// TestRunExitCode checks that run propagates the container's exit status,
// and 128+n when the process is killed by signal n.
func TestRunExitCode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		code int
	}{
		{[]string{"true"}, 0},
		{[]string{"false"}, 1},
		{[]string{"exitcode", "7"}, 7},
		{[]string{"exitcode", "255"}, 255},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, "_"), func(t *testing.T) {
			t.Parallel()
			// A process that exits at once races with run's own
			// bookkeeping: try several times.
			for range 5 {
				c := newCtr(t).args(tt.args...)
				r := c.run()
				if r.code != tt.code {
					t.Fatalf("run %q: exit %d, want %d\n%v", tt.args, r.code, tt.code, r)
				}
				assertNothingLeft(t, c.root, c.id, c.bundle)
			}
		})
	}

	signals := []struct {
		name   string
		pidNS  bool
		signal string
		code   int
	}{
		// From outside, only SIGKILL reaches a pid namespace's init that
		// has no handler.
		{"KILL_pidns", true, "KILL", 128 + 9},
		{"TERM_hostpid", false, "TERM", 128 + 15},
	}
	for _, tt := range signals {
		t.Run("signal_"+tt.name, func(t *testing.T) {
			t.Parallel()
			c := newCtr(t).args("sleep", "60")
			if !tt.pidNS {
				c.spec.Linux.Namespaces = slices.DeleteFunc(c.spec.Linux.Namespaces, func(n specs.LinuxNamespace) bool {
					return n.Type == specs.PIDNamespace
				})
			}
			c.writeSpec()
			done := c.rtAsync(runOpts{}, "run", c.id)
			ok := poll(waitTimeout, func() bool {
				r := c.cmd("state")
				return r.code == 0 && strings.Contains(r.stdout, `"running"`)
			})
			if !ok {
				t.Fatalf("container did not reach running")
			}
			// Give the process a moment to be the sleep applet, not the
			// runtime's init still executing it.
			time.Sleep(100 * time.Millisecond)
			c.must("kill", tt.signal)
			select {
			case r := <-done:
				if r.code != tt.code {
					t.Errorf("run killed by %s: exit %d, want %d\n%v", tt.signal, r.code, tt.code, r)
				}
			case <-time.After(cmdTimeout + 5*time.Second):
				t.Fatal("run did not return")
			}
			assertNothingLeft(t, c.root, c.id, c.bundle)
		})
	}
}

func TestRunDetach(t *testing.T) {
	t.Parallel()
	c := newCtr(t).args("sigcatch", "60")
	c.writeSpec()
	start := time.Now()
	r := c.rt(c.stdio(), "run", "--detach", c.id)
	if r.code != 0 {
		t.Fatalf("%v", r)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("run --detach took %v: did it wait for the container?", d)
	}
	st := c.state()
	if st.Status != "running" {
		t.Errorf("status after run --detach = %q, want running", st.Status)
	}
	c.waitOutput("ready\n")
	c.must("kill", "TERM")
	c.waitStatus("stopped")
	c.waitOutput("signal SIGTERM\n")
	c.must("delete")
	assertNothingLeft(t, c.root, c.id, c.bundle)
}

func TestDeleteRunning(t *testing.T) {
	t.Parallel()
	c := newCtr(t)
	pid := c.startLong()

	r := c.cmd("delete")
	if r.code == 0 {
		t.Fatalf("delete of a running container without -f succeeded: %v", r)
	}
	matchStderr(t, r, `(?i)running|not stopped|force`)
	if st := c.state(); st.Status != "running" {
		t.Errorf("after the refused delete: status %q, want running", st.Status)
	}

	if r := c.rt(runOpts{}, "delete", "-f", c.id); r.code != 0 {
		t.Fatalf("%v", r)
	}
	if r := c.cmd("state"); r.code == 0 {
		t.Errorf("state after delete -f succeeded: %v", r)
	}
	if !poll(5*time.Second, func() bool { return syscall.Kill(pid, 0) != nil || procZombie(pid) }) {
		t.Errorf("init %d still alive after delete -f", pid)
	}
	assertNothingLeft(t, c.root, c.id, c.bundle)
}

// procZombie reports whether pid is a zombie.
func procZombie(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return err == nil && isZombie(string(data))
}

// TestKillAll runs without a pid namespace, so that killing the init does
// not by itself end the other processes: kill --all must reach each.
func TestKillAll(t *testing.T) {
	t.Parallel()
	c := newCtr(t)
	c.spec.Linux.Namespaces = slices.DeleteFunc(c.spec.Linux.Namespaces, func(n specs.LinuxNamespace) bool {
		return n.Type == specs.PIDNamespace
	})
	initPid := c.startLong()
	var pids []int
	for i := range 2 {
		pidFile := filepath.Join(t.TempDir(), "exec.pid")
		r := c.rt(c.stdio(), "exec", "--detach", "--pid-file", pidFile, c.id, "sleep", "120")
		if r.code != 0 {
			t.Fatalf("exec %d: %v", i, r)
		}
		data, err := os.ReadFile(pidFile)
		if err != nil {
			t.Fatal(err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil {
			t.Fatalf("pid file %q: %v", data, err)
		}
		pids = append(pids, pid)
	}
	pids = append(pids, initPid)

	if r := c.rt(runOpts{}, "kill", "--all", c.id, "TERM"); r.code != 0 {
		t.Fatalf("%v", r)
	}
	for _, pid := range pids {
		if !poll(waitTimeout, func() bool { return syscall.Kill(pid, 0) != nil || procZombie(pid) }) {
			t.Errorf("pid %d still alive after kill --all TERM", pid)
		}
	}
	c.waitStatus("stopped")
	c.must("delete")
	assertNothingLeft(t, c.root, c.id, c.bundle)
}
