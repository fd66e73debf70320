//go:build integration

package runtime_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestExec checks exec's flags in one running container.
func TestExec(t *testing.T) {
	t.Parallel()
	c := newCtr(t)
	c.spec.Process.Env = append(c.spec.Process.Env, "FROM_SPEC=1")
	initPid := c.startLong()

	tests := []struct {
		name  string
		flags []string
		args  []string
		code  int
		exact string   // whole stdout
		lines []string // lines stdout must have
	}{
		{name: "env", flags: []string{"--env", "FOO=bar", "-e", "BAZ=qux quux"}, args: []string{"env"}, lines: []string{"FOO=bar", "BAZ=qux quux", "FROM_SPEC=1"}},
		{name: "default cwd", args: []string{"pwd"}, exact: "/\n"},
		{name: "cwd", flags: []string{"--cwd", "/home/tester"}, args: []string{"pwd"}, exact: "/home/tester\n"},
		{name: "user", flags: []string{"--user", "1000:1000"}, args: []string{"id"}, exact: "uid=1000(tester) gid=1000(tester) groups=1000(tester)\n"},
		{name: "user uid only", flags: []string{"-u", "1"}, args: []string{"id", "-u"}, exact: "1\n"},
		{name: "additional gids", flags: []string{"--user", "1000:1000", "--additional-gids", "2000", "-g", "100"}, args: []string{"id", "-G"}, exact: "1000 100 2000\n"},
		{name: "same pid namespace", args: []string{"readlink", "/proc/1/exe"}, lines: []string{"/bin/testbin"}},
		{name: "exit code", args: []string{"exitcode", "42"}, code: 42},
		{name: "exit code 1", args: []string{"false"}, code: 1},
		{name: "missing executable", args: []string{"/no/such/binary"}, code: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.exec(tt.flags, tt.args...)
			switch {
			case tt.code == -1:
				if r.code == 0 {
					t.Errorf("exec of a missing executable succeeded: %v", r)
				}
				matchStderr(t, r, `(?i)executable file not found|no such file`)
			case r.code != tt.code:
				t.Errorf("exit %d, want %d: %v", r.code, tt.code, r)
			}
			if tt.exact != "" && r.stdout != tt.exact {
				t.Errorf("stdout %q, want %q", r.stdout, tt.exact)
			}
			for _, l := range tt.lines {
				if !hasLine(r.stdout, l) {
					t.Errorf("stdout lacks line %q: %v", l, r)
				}
			}
		})
	}

	t.Run("process.json", func(t *testing.T) {
		p := specs.Process{
			Args: []string{"env"},
			Env:  []string{"PATH=/bin", "FROM_PROCESS_JSON=yes"},
			Cwd:  "/tmp",
			User: specs.User{UID: 1000, GID: 2000},
		}
		data, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "process.json")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		r := c.exec([]string{"-p", path})
		if r.code != 0 || !hasLine(r.stdout, "FROM_PROCESS_JSON=yes") || hasLine(r.stdout, "FROM_SPEC=1") {
			t.Errorf("exec -p: want the process.json env only: %v", r)
		}
		p.Args = []string{"id"}
		data, _ = json.Marshal(p)
		os.WriteFile(path, data, 0o644)
		if r := c.exec([]string{"--process", path}); r.stdout != "uid=1000(tester) gid=2000(extra) groups=2000(extra)\n" {
			t.Errorf("exec -p with user 1000:2000: %v", r)
		}
		p.Args = []string{"pwd"}
		data, _ = json.Marshal(p)
		os.WriteFile(path, data, 0o644)
		if r := c.exec([]string{"-p", path}); r.stdout != "/tmp\n" {
			t.Errorf("exec -p with cwd /tmp: %v", r)
		}
	})

	t.Run("detach and pid file", func(t *testing.T) {
		pidFile := filepath.Join(t.TempDir(), "exec.pid")
		start := time.Now()
		r := c.rt(c.stdio(), "exec", "--detach", "--pid-file", pidFile, c.id, "sleep", "60")
		if r.code != 0 {
			t.Fatalf("%v", r)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("exec --detach took %v", d)
		}
		data, err := os.ReadFile(pidFile)
		if err != nil {
			t.Fatalf("pid file: %v", err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil || pid <= 0 {
			t.Fatalf("pid file content %q", data)
		}
		if err := syscall.Kill(pid, 0); err != nil {
			t.Fatalf("detached exec pid %d not alive: %v", pid, err)
		}
		cg, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
		if !strings.Contains(string(cg), "/"+cgroupParent+"/"+c.id) {
			t.Errorf("detached exec process not in the container's cgroup: %s", cg)
		}
		ns1, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/pid")
		ns2, _ := os.Readlink("/proc/" + strconv.Itoa(initPid) + "/ns/pid")
		if ns1 == "" || ns1 != ns2 {
			t.Errorf("detached exec pid namespace %q, init's %q", ns1, ns2)
		}
	})
}

// TestExecStopped checks that exec into a stopped container fails.
func TestExecStopped(t *testing.T) {
	t.Parallel()
	c := newCtr(t).args("true")
	c.runToEnd()
	r := c.exec(nil, "true")
	if r.code == 0 {
		t.Fatalf("exec into a stopped container succeeded: %v", r)
	}
	matchStderr(t, r, `(?i)not running|stopped`)
	if r := c.exec(nil, "echo", "hi"); r.stdout != "" {
		t.Errorf("a process ran: %v", r)
	}
}

// TestExecCreated checks exec into a container that is created but not
// started: like runc, berth-runtime may run it (the namespaces exist).
func TestExecCreated(t *testing.T) {
	t.Parallel()
	c := newCtr(t).args("sigcatch", "60")
	c.createOK()
	r := c.exec(nil, "hostname")
	if r.code == 0 && r.stdout != "berth\n" {
		t.Errorf("exec into a created container ran outside its uts namespace: %v", r)
	}
	if strings.Contains(c.output(), "ready") {
		t.Errorf("exec started the user process")
	}
	if st := c.state(); st.Status != "created" {
		t.Errorf("status after exec into a created container: %q", st.Status)
	}
}
