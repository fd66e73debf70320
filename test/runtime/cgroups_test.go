//go:build integration

package runtime_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestMemoryLimit runs memhog past a 32 MiB limit: the kernel OOM-kills it
// and run reports 128+SIGKILL. The container is kept (run --keep) so that
// its cgroup can be read after the kill.
func TestMemoryLimit(t *testing.T) {
	t.Parallel()
	const limit = 32 << 20
	c := newCtr(t).args("memhog", "128", "5")
	c.spec.Linux.Resources.Memory = &specs.LinuxMemory{Limit: i64p(limit), Swap: i64p(limit)}
	r := c.run("--keep")
	if r.code != 128+9 {
		t.Errorf("memhog 128 MiB under a 32 MiB limit: exit %d, want %d (OOM kill)\n%v", r.code, 128+9, r)
	}
	if strings.Contains(r.stdout, "allocated 128 MiB") || strings.Contains(r.stdout, "allocated 40 MiB") {
		t.Errorf("memhog got past the limit: %q", lastLine(r.stdout))
	}
	if !strings.Contains(r.stdout, "allocated 1 MiB") {
		t.Errorf("memhog did not run: %v", r)
	}
	if got := c.readCgroup("memory", "memory.limit_in_bytes"); got != strconv.Itoa(limit) {
		t.Errorf("memory.limit_in_bytes = %s, want %d", got, limit)
	}
	if got := c.readCgroup("memory", "memory.memsw.limit_in_bytes"); got != strconv.Itoa(limit) {
		t.Errorf("memory.memsw.limit_in_bytes = %s, want %d", got, limit)
	}
	oom := parseFlatKV(c.readCgroup("memory", "memory.oom_control"))
	if n, _ := strconv.Atoi(oom["oom_kill"]); n < 1 {
		t.Errorf("memory.oom_control reports no OOM kill: %v", oom)
	}
}

// lastLine returns the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// parseFlatKV parses "key value" lines (memory.oom_control, memory.stat).
func parseFlatKV(s string) map[string]string {
	m := map[string]string{}
	for line := range strings.Lines(s) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), " "); ok {
			m[k] = v
		}
	}
	return m
}

// TestPidsLimit runs a bounded fork bomb under pids.limit 10.
func TestPidsLimit(t *testing.T) {
	t.Parallel()
	c := newCtr(t).args("forkbomb", "50", "5")
	c.spec.Linux.Resources.Pids = &specs.LinuxPids{Limit: i64p(10)}
	r := c.run("--keep")
	if r.code != 3 {
		t.Errorf("forkbomb 50 under pids.limit 10: exit %d, want 3\n%v", r.code, r)
	}
	var k, n int
	if _, err := fmtSscanf(r.stdout, "forked %d of %d", &k, &n); err != nil || n != 50 || k >= 10 || !strings.Contains(r.stdout, ":") {
		t.Errorf("forkbomb output %q: want \"forked K of 50: ERROR\" with K < 10", r.stdout)
	}
	if got := c.readCgroup("pids", "pids.max"); got != "10" {
		t.Errorf("pids.max = %s, want 10", got)
	}
}

// TestCPU checks the cpu and cpuset files.
func TestCPU(t *testing.T) {
	t.Parallel()
	requireCgroupV1(t, "cpuset")
	c := newCtr(t)
	c.spec.Linux.Resources.CPU = &specs.LinuxCPU{
		Shares: u64p(512),
		Quota:  i64p(50000),
		Period: u64p(100000),
		Cpus:   "0",
	}
	c.startLong()
	want := map[string]string{
		"cpu/cpu.shares":        "512",
		"cpu/cpu.cfs_quota_us":  "50000",
		"cpu/cpu.cfs_period_us": "100000",
		"cpuset/cpuset.cpus":    "0",
	}
	for f, v := range want {
		ctrl, name, _ := strings.Cut(f, "/")
		if got := c.readCgroup(ctrl, name); got != v {
			t.Errorf("%s = %s, want %s", f, got, v)
		}
	}
	if out := c.execOK("cgroup"); !strings.Contains(out, "/"+cgroupParent+"/"+c.id) {
		t.Errorf("process not in the container's cgroup: %q", out)
	}
}

// TestDeviceRules checks the device cgroup: the defaults allow writing
// /dev/null, and a deny rule for c 1:3 w forbids it.
func TestDeviceRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		rules []specs.LinuxDeviceCgroup
		fail  bool
	}{
		{name: "default allows /dev/null"},
		{
			name: "deny c 1:3 w",
			rules: []specs.LinuxDeviceCgroup{
				{Allow: false, Type: "c", Major: i64p(1), Minor: i64p(3), Access: "w"},
			},
			fail: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newCtr(t)
			c.spec.Linux.Resources.Devices = append(c.spec.Linux.Resources.Devices, tt.rules...)
			c.startLong()
			r := c.exec(nil, "write", "/dev/null", "x")
			switch {
			case tt.fail && r.code == 0:
				t.Errorf("write /dev/null succeeded despite the deny rule: %v\ndevices.list:\n%s", r, c.readCgroup("devices", "devices.list"))
			case tt.fail && !strings.Contains(r.stderr, "operation not permitted"):
				t.Errorf("write /dev/null: want EPERM: %v", r)
			case !tt.fail && r.code != 0:
				t.Errorf("write /dev/null failed: %v", r)
			}
			list := c.readCgroup("devices", "devices.list")
			if hasLine(list, "a *:* rwm") {
				t.Errorf("devices.list allows everything:\n%s", list)
			}
			// Reading is still allowed with the write-only deny.
			if r := c.exec(nil, "cat", "/dev/null"); r.code != 0 {
				t.Errorf("cat /dev/null: %v", r)
			}
		})
	}
}

// TestUpdate changes the memory and pids limits of a running container.
func TestUpdate(t *testing.T) {
	t.Parallel()
	c := newCtr(t)
	c.spec.Linux.Resources.Memory = &specs.LinuxMemory{Limit: i64p(128 << 20)}
	c.startLong()
	if got := c.readCgroup("memory", "memory.limit_in_bytes"); got != strconv.Itoa(128<<20) {
		t.Fatalf("memory.limit_in_bytes before update = %s", got)
	}
	if r := c.rt(runOpts{}, "update", "--memory", "64m", "--pids-limit", "42", c.id); r.code != 0 {
		t.Fatalf("%v", r)
	}
	if got := c.readCgroup("memory", "memory.limit_in_bytes"); got != strconv.Itoa(64<<20) {
		t.Errorf("memory.limit_in_bytes after update --memory 64m = %s, want %d", got, 64<<20)
	}
	if got := c.readCgroup("pids", "pids.max"); got != "42" {
		t.Errorf("pids.max after update --pids-limit 42 = %s", got)
	}
	if r := c.rt(runOpts{}, "update", "--memory", "96m", "--cpu-shares", "256", c.id); r.code != 0 {
		t.Fatalf("%v", r)
	}
	if got := c.readCgroup("memory", "memory.limit_in_bytes"); got != strconv.Itoa(96<<20) {
		t.Errorf("memory.limit_in_bytes after update --memory 96m = %s", got)
	}
	if got := c.readCgroup("cpu", "cpu.shares"); got != "256" {
		t.Errorf("cpu.shares after update = %s, want 256", got)
	}
	// From a resources file on stdin.
	res := `{"pids": {"limit": 77}}`
	if r := c.rt(runOpts{stdin: strings.NewReader(res)}, "update", "-r", "-", c.id); r.code != 0 {
		t.Fatalf("%v", r)
	}
	if got := c.readCgroup("pids", "pids.max"); got != "77" {
		t.Errorf("pids.max after update -r - = %s, want 77", got)
	}
}

// TestPauseResume freezes and thaws a container.
func TestPauseResume(t *testing.T) {
	t.Parallel()
	c := newCtr(t)
	c.startLong()
	c.must("pause")
	if st := c.state(); st.Status != "paused" {
		t.Errorf("status after pause = %q", st.Status)
	}
	if got := c.readCgroup("freezer", "freezer.state"); got != "FROZEN" {
		t.Errorf("freezer.state after pause = %s", got)
	}
	if r := c.exec(nil, "true"); r.code == 0 {
		t.Errorf("exec into a paused container succeeded: %v", r)
	}
	c.must("resume")
	if st := c.state(); st.Status != "running" {
		t.Errorf("status after resume = %q", st.Status)
	}
	if got := c.readCgroup("freezer", "freezer.state"); got != "THAWED" {
		t.Errorf("freezer.state after resume = %s", got)
	}
	c.execOK("true")
	if r := c.cmd("resume"); r.code == 0 {
		t.Errorf("resume of a running container succeeded: %v", r)
	}
}

// TestEventsStats checks the JSON of events --stats.
func TestEventsStats(t *testing.T) {
	t.Parallel()
	c := newCtr(t).args("memhog", "8", "60")
	c.startLong()
	c.waitOutput("allocated 8 MiB")
	r := c.rt(runOpts{}, "events", "--stats", c.id)
	if r.code != 0 {
		t.Fatalf("%v", r)
	}
	var ev struct {
		Type string `json:"type"`
		ID   string `json:"id"`
		Data struct {
			Memory *struct {
				Usage *struct {
					Usage uint64 `json:"usage"`
					Limit uint64 `json:"limit"`
				} `json:"usage"`
			} `json:"memory"`
			Pids *struct {
				Current uint64 `json:"current"`
			} `json:"pids"`
			CPU *struct {
				Usage *struct {
					Total uint64 `json:"total"`
				} `json:"usage"`
			} `json:"cpu"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &ev); err != nil {
		t.Fatalf("events --stats output is not one JSON object: %v\n%v", err, r)
	}
	if ev.Type != "stats" || ev.ID != c.id {
		t.Errorf("event type %q id %q, want stats %s", ev.Type, ev.ID, c.id)
	}
	switch {
	case ev.Data.Memory == nil || ev.Data.Memory.Usage == nil:
		t.Errorf("no data.memory.usage: %s", r.stdout)
	case ev.Data.Memory.Usage.Usage < 8<<20:
		t.Errorf("data.memory.usage.usage = %d, want at least the 8 MiB memhog holds", ev.Data.Memory.Usage.Usage)
	}
	if ev.Data.Pids == nil || ev.Data.Pids.Current < 1 {
		t.Errorf("data.pids.current missing or 0: %s", r.stdout)
	}
	if ev.Data.CPU == nil || ev.Data.CPU.Usage == nil || ev.Data.CPU.Usage.Total == 0 {
		t.Errorf("data.cpu.usage.total missing or 0: %s", r.stdout)
	}
}

// TestPs lists the container's processes.
func TestPs(t *testing.T) {
	t.Parallel()
	c := newCtr(t)
	initPid := c.startLong()
	pidFile := filepath.Join(t.TempDir(), "exec.pid")
	if r := c.rt(c.stdio(), "exec", "--detach", "--pid-file", pidFile, c.id, "sleep", "60"); r.code != 0 {
		t.Fatalf("%v", r)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	execPid, _ := strconv.Atoi(strings.TrimSpace(string(data)))

	r := c.rt(runOpts{}, "ps", "--format", "json", c.id)
	if r.code != 0 {
		t.Fatalf("%v", r)
	}
	var pids []int
	if err := json.Unmarshal([]byte(r.stdout), &pids); err != nil {
		t.Fatalf("ps --format json: %v\n%v", err, r)
	}
	slices.Sort(pids)
	want := []int{initPid, execPid}
	slices.Sort(want)
	if !slices.Equal(pids, want) {
		t.Errorf("ps --format json = %v, want %v", pids, want)
	}

	r = c.must("ps")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "PID") {
		t.Errorf("ps table: want a header and 2 processes, got %q", r.stdout)
	}
}

// fmtSscanf is fmt.Sscanf on the first line of s.
func fmtSscanf(s, format string, args ...any) (int, error) {
	line, _, _ := strings.Cut(s, "\n")
	return fmt.Sscanf(line, format, args...)
}
