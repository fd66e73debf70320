package cgroup

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestV1Lifecycle(t *testing.T) {
	requireV1(t)
	parent := testParent(t)
	sleeper := startChild(t, "sleep", "60")
	pid := sleeper.pid()

	r := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: ptr[int64](64 << 20), Swap: ptr[int64](128 << 20), Reservation: ptr[int64](32 << 20)},
		CPU:    &specs.LinuxCPU{Shares: ptr[uint64](512), Quota: ptr[int64](50000), Period: ptr[uint64](100000), Cpus: "0"},
		Pids:   &specs.LinuxPids{Limit: ptr[int64](10)},
		Devices: []specs.LinuxDeviceCgroup{
			{Allow: false, Access: "rwm"},
			{Allow: true, Type: "c", Major: ptr[int64](1), Minor: ptr[int64](3), Access: "rwm"},
			{Allow: true, Type: "c", Major: ptr[int64](1), Minor: ptr[int64](5), Access: "r"},
		},
	}
	m, err := New("", "ctr", r, Options{Parent: parent})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Thaw() }) // runs before the kill: a frozen task cannot die

	paths := m.Paths()
	for _, sub := range []string{"devices", "memory", "cpu", "cpuacct", "freezer", "pids", "cpuset", "blkio"} {
		if want := filepath.Join(DefaultRoot, sub, parent, "ctr"); paths[sub] != want {
			t.Errorf("Paths()[%q] = %q, want %q", sub, paths[sub], want)
		}
	}
	if Mode() == ModeHybrid && paths[""] != filepath.Join(DefaultRoot, "unified", parent, "ctr") {
		t.Errorf("hybrid: Paths()[\"\"] = %q", paths[""])
	}
	if m.Exists() {
		t.Fatal("Exists() before Apply")
	}

	if err := m.Apply(pid); err != nil {
		t.Fatal(err)
	}
	if !m.Exists() {
		t.Fatal("Exists() after Apply")
	}
	own := procCgroups(t, pid)
	for _, sub := range []string{"memory", "cpu", "devices", "freezer", "pids"} {
		if own[sub] != parent+"/ctr" {
			t.Errorf("/proc/%d/cgroup: %s is %q, want %q", pid, sub, own[sub], parent+"/ctr")
		}
	}
	if Mode() == ModeHybrid && own[""] != parent+"/ctr" {
		t.Errorf("/proc/%d/cgroup: unified is %q", pid, own[""])
	}

	if err := m.Set(r); err != nil {
		t.Fatal(err)
	}
	read := func(sub, file string) string { return readTrim(t, filepath.Join(m.Path(sub), file)) }
	checks := []struct{ sub, file, want string }{
		{"memory", "memory.limit_in_bytes", "67108864"},
		{"memory", "memory.soft_limit_in_bytes", "33554432"},
		{"cpu", "cpu.shares", "512"},
		{"cpu", "cpu.cfs_quota_us", "50000"},
		{"cpu", "cpu.cfs_period_us", "100000"},
		{"cpuset", "cpuset.cpus", "0"},
		{"pids", "pids.max", "10"},
		{"devices", "devices.list", "c 1:3 rwm\nc 1:5 r"},
	}
	if _, err := os.Stat(filepath.Join(m.Path("memory"), "memory.memsw.limit_in_bytes")); err == nil {
		checks = append(checks, struct{ sub, file, want string }{"memory", "memory.memsw.limit_in_bytes", "134217728"})
	}
	for _, c := range checks {
		if got := read(c.sub, c.file); got != c.want {
			t.Errorf("%s/%s = %q, want %q", c.sub, c.file, got, c.want)
		}
	}

	if err := m.Freeze(); err != nil {
		t.Fatal(err)
	}
	if got := read("freezer", "freezer.state"); got != "FROZEN" {
		t.Errorf("freezer.state = %q after Freeze", got)
	}
	if frozen, err := m.State(); err != nil || !frozen {
		t.Errorf("State() = %v, %v after Freeze", frozen, err)
	}
	if err := m.Thaw(); err != nil {
		t.Fatal(err)
	}
	if got := read("freezer", "freezer.state"); got != "THAWED" {
		t.Errorf("freezer.state = %q after Thaw", got)
	}
	if frozen, err := m.State(); err != nil || frozen {
		t.Errorf("State() = %v, %v after Thaw", frozen, err)
	}

	if pids, err := m.Pids(); err != nil || !slices.Equal(pids, []int{pid}) {
		t.Errorf("Pids() = %v, %v; want [%d]", pids, err, pid)
	}

	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Memory.Usage.Limit != 64<<20 || len(st.Memory.Raw) == 0 {
		t.Errorf("memory stats = %+v", st.Memory)
	}
	if st.Pids.Current != 1 || st.Pids.Limit != 10 {
		t.Errorf("pids stats = %+v", st.Pids)
	}
	if len(st.CPU.Usage.Percpu) == 0 {
		t.Errorf("cpu stats = %+v", st.CPU)
	}
	js, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"cpu":{"usage":{`, `"throttling":{`, `"memory":{`, `"swap":{`, `"kernel":{`, `"kernelTCP":{`, `"raw":{`, `"pids":{"current":1,"limit":10}`, `"blkio":{`, `"hugetlb":{`} {
		if !strings.Contains(string(js), want) {
			t.Errorf("stats JSON lacks %s: %s", want, js)
		}
	}
	if n, err := m.OOMKillCount(); err != nil || n != 0 {
		t.Errorf("OOMKillCount() = %d, %v", n, err)
	}

	// update, the way the runtime does it: re-attach from the saved paths.
	m2, err := Load(m.Paths(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := m2.Set(&specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: ptr[int64](96 << 20)},
		Pids:   &specs.LinuxPids{Limit: ptr[int64](20)},
	}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ sub, file, want string }{
		{"memory", "memory.limit_in_bytes", "100663296"},
		{"pids", "pids.max", "20"},
		{"cpu", "cpu.shares", "512"},                      // untouched
		{"devices", "devices.list", "c 1:3 rwm\nc 1:5 r"}, // no rules: untouched
	} {
		if got := read(c.sub, c.file); got != c.want {
			t.Errorf("after update: %s/%s = %q, want %q", c.sub, c.file, got, c.want)
		}
	}
	if err := m2.Set(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](-1)}}); err != nil {
		t.Fatal(err)
	}
	if got := read("pids", "pids.max"); got != "max" {
		t.Errorf("pids.max = %q after limit -1", got)
	}

	// Destroy kills nothing: with the sleeper inside it must fail.
	if err := m2.Destroy(); err == nil {
		t.Fatal("Destroy succeeded with a live process inside")
	} else if !errors.Is(err, syscall.EBUSY) {
		t.Errorf("Destroy with a live process = %v, want EBUSY", err)
	}
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("Destroy harmed the process: %v", err)
	}

	sleeper.kill(t)
	if err := m2.Destroy(); err != nil {
		t.Fatal(err)
	}
	if m.Exists() {
		t.Fatal("Exists() after Destroy")
	}
	for sub, p := range paths {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: %s still there after Destroy (%v)", sub, p, err)
		}
	}
	if err := m.Destroy(); err != nil {
		t.Errorf("second Destroy: %v", err)
	}
}

func TestV1DevicesEnforced(t *testing.T) {
	requireV1(t)
	parent := testParent(t)
	sh := startChild(t, "sh", "-c", probeScript)

	if got := sh.probe(t); got != "null:w:ok null:r:ok zero:w:ok zero:r:ok" {
		t.Fatalf("before: %s", got)
	}
	m, err := New("", "ctr", nil, Options{Parent: parent})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(sh.pid()); err != nil {
		t.Fatal(err)
	}
	if err := m.Set(&specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: ptr[int64](1), Minor: ptr[int64](3), Access: "rwm"},
		{Allow: true, Type: "c", Major: ptr[int64](1), Minor: ptr[int64](5), Access: "r"},
	}}); err != nil {
		t.Fatal(err)
	}
	if got := sh.probe(t); got != "null:w:ok null:r:ok zero:w:denied zero:r:ok" {
		t.Fatalf("with rules: %s", got)
	}
	// An update changes the rules of the running container.
	if err := m.Set(&specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: ptr[int64](1), Minor: ptr[int64](5), Access: "rw"},
	}}); err != nil {
		t.Fatal(err)
	}
	if got := sh.probe(t); got != "null:w:denied null:r:denied zero:w:ok zero:r:ok" {
		t.Fatalf("after update: %s", got)
	}
	sh.kill(t)
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
}

func TestV1Errors(t *testing.T) {
	requireV1(t)
	if _, err := New("", "ctr", &specs.LinuxResources{Unified: map[string]string{"memory.high": "1"}}, Options{}); err == nil {
		t.Error("New accepted unified resources on v1")
	}
	if _, err := Load(map[string]string{"": "/sys/fs/cgroup/x"}, Options{}); err == nil {
		t.Error("Load accepted v2 paths on v1")
	}
}

func TestModeAndControllers(t *testing.T) {
	mode := Mode()
	if mode == "" {
		t.Skip("no cgroupfs at " + DefaultRoot)
	}
	ctrls := Controllers()
	t.Logf("mode %s, controllers %v", mode, ctrls)
	if !slices.IsSorted(ctrls) {
		t.Errorf("Controllers() not sorted: %v", ctrls)
	}
	if mode != ModeV2 {
		for _, c := range []string{"devices", "memory"} {
			if !slices.Contains(ctrls, c) {
				t.Errorf("Controllers() = %v lacks %s", ctrls, c)
			}
		}
		for _, c := range ctrls {
			if strings.HasPrefix(c, "name=") {
				t.Errorf("Controllers() lists named hierarchy %s", c)
			}
		}
	}
}
