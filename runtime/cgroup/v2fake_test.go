package cgroup

// These tests drive the v2 code against a fake cgroupfs: a plain directory
// tree in t.TempDir(). Three things make that possible:
//
//   - the layout is forced to v2 through the unexported Options.mode;
//   - cgroups.TestMode is set while a test runs: the library's file helpers
//     then skip their "is this really cgroupfs?" statfs check for paths
//     outside /sys/fs/cgroup and create missing files on write (the tests
//     do not run in parallel, so toggling the global is race free);
//   - the hooks mkdirCgroup, removeCgroup and writeSubtreeControl are
//     replaced by a tiny "kernel" (fakeV2) that populates a new cgroup's
//     files, removes directories recursively and propagates enabled
//     controllers to the children's cgroup.controllers.

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/opencontainers/cgroups"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

const fakeAllControllers = "cpuset cpu io memory hugetlb pids rdma misc"

type fakeV2 struct {
	t         *testing.T
	root      string
	writes    []string // "<rel dir>: <data>" for each subtree_control write
	failMkdir string   // base name whose mkdir fails with EACCES
}

func newFakeV2(t *testing.T, controllers string) *fakeV2 {
	t.Helper()
	f := &fakeV2{t: t, root: t.TempDir()}
	oldTestMode, oldMkdir, oldRemove, oldWrite, oldCaller := cgroups.TestMode, mkdirCgroup, removeCgroup, writeSubtreeControl, callerCgroup
	t.Cleanup(func() {
		cgroups.TestMode, mkdirCgroup, removeCgroup, writeSubtreeControl, callerCgroup = oldTestMode, oldMkdir, oldRemove, oldWrite, oldCaller
	})
	cgroups.TestMode = true
	mkdirCgroup = f.mkdir
	removeCgroup = os.RemoveAll
	writeSubtreeControl = f.writeSubtree
	callerCgroup = func() string { return "/" }
	f.writeFiles(f.root, map[string]string{
		"cgroup.controllers":     controllers + "\n",
		"cgroup.subtree_control": "",
		"cgroup.procs":           "",
	})
	return f
}

func (f *fakeV2) opts() Options {
	return Options{Root: f.root, Parent: "/berth", mode: ModeV2}
}

func (f *fakeV2) writeFiles(dir string, files map[string]string) {
	f.t.Helper()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			f.t.Fatal(err)
		}
	}
}

// mkdir emulates the kernel creating a cgroup: the new directory gets the
// interface files, with cgroup.controllers taken from the parent's
// cgroup.subtree_control.
func (f *fakeV2) mkdir(dir string) error {
	if filepath.Base(dir) == f.failMkdir {
		return &os.PathError{Op: "mkdir", Path: dir, Err: unix.EACCES}
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	parentCtrls, err := os.ReadFile(filepath.Join(filepath.Dir(dir), "cgroup.subtree_control"))
	if err != nil {
		return err
	}
	f.writeFiles(dir, map[string]string{
		"cgroup.controllers":     string(parentCtrls),
		"cgroup.subtree_control": "",
		"cgroup.procs":           "",
		"cgroup.type":            "domain\n",
		"cgroup.freeze":          "0\n",
		"cgroup.events":          "populated 0\nfrozen 0\n",
		"memory.max":             "max\n",
		"memory.swap.max":        "max\n",
		"memory.low":             "0\n",
		"memory.current":         "0\n",
		"memory.swap.current":    "0\n",
		"memory.stat":            "anon 0\nfile 0\n",
		"memory.events":          "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n",
		"cpu.max":                "max 100000\n",
		"cpu.weight":             "100\n",
		"cpu.stat":               "usage_usec 0\nuser_usec 0\nsystem_usec 0\n",
		"pids.max":               "max\n",
		"pids.current":           "0\n",
		"io.weight":              "default 100\n",
		"io.stat":                "",
		"cpuset.cpus":            "",
		"cpuset.mems":            "",
	})
	return nil
}

// writeSubtree emulates a write to cgroup.subtree_control, including the
// kernel's refusal (EBUSY) for a non-root cgroup with member processes.
func (f *fakeV2) writeSubtree(dir, data string) error {
	rel, _ := filepath.Rel(f.root, dir)
	f.writes = append(f.writes, "/"+strings.TrimPrefix(rel, ".")+": "+data)
	if dir != f.root {
		if procs := f.read(dir, "cgroup.procs"); procs != "" {
			return &os.PathError{Op: "write", Path: dir, Err: unix.EBUSY}
		}
	}
	avail := strings.Fields(f.read(dir, "cgroup.controllers"))
	enabled := strings.Fields(f.read(dir, "cgroup.subtree_control"))
	for _, tok := range strings.Fields(data) {
		c := tok[1:]
		if !slices.Contains(avail, c) {
			return &os.PathError{Op: "write", Path: dir, Err: unix.ENOENT}
		}
		switch {
		case tok[0] == '+' && !slices.Contains(enabled, c):
			enabled = append(enabled, c)
		case tok[0] == '-':
			enabled = slices.DeleteFunc(enabled, func(e string) bool { return e == c })
		}
	}
	slices.Sort(enabled)
	content := strings.Join(enabled, " ") + "\n"
	f.writeFiles(dir, map[string]string{"cgroup.subtree_control": content})
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() {
			f.writeFiles(filepath.Join(dir, e.Name()), map[string]string{"cgroup.controllers": content})
		}
	}
	return nil
}

func (f *fakeV2) read(dir, file string) string {
	f.t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		f.t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func (f *fakeV2) expect(rel, file, want string) {
	f.t.Helper()
	if got := f.read(filepath.Join(f.root, rel), file); got != want {
		f.t.Errorf("%s/%s = %q, want %q", rel, file, got, want)
	}
}

func (f *fakeV2) expectWrites(want ...string) {
	f.t.Helper()
	if !reflect.DeepEqual(f.writes, want) && !(len(f.writes) == 0 && len(want) == 0) {
		f.t.Errorf("subtree_control writes = %q, want %q", f.writes, want)
	}
	f.writes = nil
}

func TestV2FakeLifecycle(t *testing.T) {
	f := newFakeV2(t, fakeAllControllers)
	r := &specs.LinuxResources{
		Memory:  &specs.LinuxMemory{Limit: ptr[int64](64 << 20), Swap: ptr[int64](96 << 20), Reservation: ptr[int64](32 << 20)},
		CPU:     &specs.LinuxCPU{Shares: ptr[uint64](512), Quota: ptr[int64](50000), Period: ptr[uint64](100000), Cpus: "0", Mems: "0"},
		Pids:    &specs.LinuxPids{Limit: ptr[int64](10)},
		BlockIO: &specs.LinuxBlockIO{Weight: ptr[uint16](500)},
		Unified: map[string]string{"memory.high": "50331648"},
	}
	m, err := New("", "ctr", r, f.opts())
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(f.root, "berth/ctr")
	if got, want := m.Paths(), map[string]string{"": dir}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Paths() = %v, want %v", got, want)
	}
	if m.Exists() {
		t.Fatal("Exists() before Apply")
	}

	if err := m.Apply(4242); err != nil {
		t.Fatal(err)
	}
	// cpuset is needed by the resources, the rest is the default set;
	// hugetlb, rdma and misc are available but not needed.
	f.expectWrites("/: +cpu +cpuset +io +memory +pids", "/berth: +cpu +cpuset +io +memory +pids")
	f.expect("berth/ctr", "cgroup.controllers", "cpu cpuset io memory pids")
	f.expect("berth/ctr", "cgroup.subtree_control", "") // the leaf keeps its processes
	f.expect("berth/ctr", "cgroup.procs", "4242")
	if !m.Exists() || m.Path("memory") != dir || m.Path("") != dir {
		t.Fatalf("Exists() = %v, Path(memory) = %q", m.Exists(), m.Path("memory"))
	}

	if err := m.Set(r); err != nil {
		t.Fatal(err)
	}
	f.expectWrites() // everything needed is enabled already
	f.expect("berth/ctr", "memory.max", "67108864")
	f.expect("berth/ctr", "memory.swap.max", "33554432") // swap - limit
	f.expect("berth/ctr", "memory.low", "33554432")
	f.expect("berth/ctr", "memory.high", "50331648")
	f.expect("berth/ctr", "cpu.weight", strconv.FormatUint(cgroups.ConvertCPUSharesToCgroupV2Value(512), 10))
	f.expect("berth/ctr", "cpu.max", "50000 100000")
	f.expect("berth/ctr", "pids.max", "10")
	f.expect("berth/ctr", "io.weight", strconv.FormatUint(cgroups.ConvertBlkIOToIOWeightValue(500), 10))
	f.expect("berth/ctr", "cpuset.cpus", "0")
	f.expect("berth/ctr", "cpuset.mems", "0")

	// Freeze waits for the kernel to report "frozen 1" in cgroup.events.
	f.writeFiles(dir, map[string]string{"cgroup.events": "populated 1\nfrozen 1\n"})
	if err := m.Freeze(); err != nil {
		t.Fatal(err)
	}
	f.expect("berth/ctr", "cgroup.freeze", "1")
	if frozen, err := m.State(); err != nil || !frozen {
		t.Fatalf("State() = %v, %v after Freeze", frozen, err)
	}
	if err := m.Thaw(); err != nil {
		t.Fatal(err)
	}
	f.expect("berth/ctr", "cgroup.freeze", "0")
	if frozen, err := m.State(); err != nil || frozen {
		t.Fatalf("State() = %v, %v after Thaw", frozen, err)
	}

	if pids, err := m.Pids(); err != nil || !reflect.DeepEqual(pids, []int{4242}) {
		t.Fatalf("Pids() = %v, %v", pids, err)
	}

	f.writeFiles(dir, map[string]string{
		"pids.current":   "3\n",
		"memory.current": "1234\n",
		"memory.stat":    "anon 1000\nfile 200\n",
		"memory.events":  "low 0\nhigh 0\nmax 1\noom 1\noom_kill 2\n",
		"cpu.stat":       "usage_usec 100\nuser_usec 60\nsystem_usec 40\nnr_periods 5\nnr_throttled 2\nthrottled_usec 7\n",
		"io.stat":        "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n",
	})
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Pids.Current != 3 || st.Pids.Limit != 10 {
		t.Errorf("pids stats = %+v", st.Pids)
	}
	if st.Memory.Usage.Usage != 1234 || st.Memory.Usage.Limit != 64<<20 || st.Memory.Raw["anon"] != 1000 || st.Memory.Cache != 200 {
		t.Errorf("memory stats = %+v", st.Memory)
	}
	if st.Memory.SwapOnly.Limit != 32<<20 || st.Memory.Swap.Limit != 96<<20 {
		t.Errorf("swap stats = %+v / %+v", st.Memory.Swap, st.Memory.SwapOnly)
	}
	if st.CPU.Usage.Total != 100000 || st.CPU.Usage.User != 60000 || st.CPU.Usage.Kernel != 40000 {
		t.Errorf("cpu usage = %+v", st.CPU.Usage)
	}
	if st.CPU.Throttling != (Throttling{Periods: 5, ThrottledPeriods: 2, ThrottledTime: 7000}) {
		t.Errorf("cpu throttling = %+v", st.CPU.Throttling)
	}
	if len(st.Blkio.IoServiceBytesRecursive) == 0 {
		t.Errorf("blkio stats = %+v", st.Blkio)
	}
	js, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"cpu":{"usage":{"total":100000,`, `"throttling":{"periods":5,"throttledPeriods":2,"throttledTime":7000}`, `"pids":{"current":3,"limit":10}`, `"memory":{"cache":200,"usage":{"limit":67108864,"usage":1234,`, `"ioServiceBytesRecursive":[`} {
		if !strings.Contains(string(js), want) {
			t.Errorf("stats JSON %s\nlacks %s", js, want)
		}
	}
	if n, err := m.OOMKillCount(); err != nil || n != 2 {
		t.Errorf("OOMKillCount() = %d, %v", n, err)
	}

	// Update through a manager re-attached from the saved paths.
	m2, err := Load(m.Paths(), f.opts())
	if err != nil {
		t.Fatal(err)
	}
	if err := m2.Set(&specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: ptr[int64](128 << 20)},
		Pids:   &specs.LinuxPids{Limit: ptr[int64](-1)},
	}); err != nil {
		t.Fatal(err)
	}
	f.expect("berth/ctr", "memory.max", "134217728")
	f.expect("berth/ctr", "memory.swap.max", "33554432") // unset swap: untouched
	f.expect("berth/ctr", "pids.max", "max")
	f.expect("berth/ctr", "cpu.max", "50000 100000") // untouched
	if err := m2.Set(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](0)}}); err != nil {
		t.Fatal(err)
	}
	f.expect("berth/ctr", "pids.max", "0") // 0 is a real limit per the runtime spec

	// exec: a re-attached manager only adds the pid.
	if err := m2.Apply(5555); err != nil {
		t.Fatal(err)
	}
	f.expectWrites()
	f.expect("berth/ctr", "cgroup.procs", "5555")

	if err := m2.Destroy(); err != nil {
		t.Fatal(err)
	}
	if m.Exists() || m2.Exists() {
		t.Fatal("cgroup still exists after Destroy")
	}
	if _, err := os.Stat(filepath.Join(f.root, "berth")); err != nil {
		t.Fatalf("Destroy removed the parent: %v", err)
	}
	if err := m.Destroy(); err != nil {
		t.Fatalf("second Destroy: %v", err)
	}
}

func TestV2FakeLazyControllerEnable(t *testing.T) {
	f := newFakeV2(t, fakeAllControllers)
	m, err := New("pod/ctr", "ignored", nil, f.opts())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(-1); err != nil {
		t.Fatal(err)
	}
	f.expectWrites("/: +cpu +io +memory +pids", "/berth: +cpu +io +memory +pids", "/berth/pod: +cpu +io +memory +pids")
	f.expect("berth/pod/ctr", "cgroup.procs", "") // negative pid: create only

	// An update needing cpuset and hugetlb enables them on the way down.
	if err := m.Set(&specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "1"}}); err != nil {
		t.Fatal(err)
	}
	f.expectWrites("/: +cpuset", "/berth: +cpuset", "/berth/pod: +cpuset")
	f.expect("berth/pod/ctr", "cgroup.controllers", "cpu cpuset io memory pids")
	f.expect("berth/pod/ctr", "cpuset.cpus", "1")
	if err := m.Set(&specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "0"}}); err != nil {
		t.Fatal(err)
	}
	f.expectWrites()
}

func TestV2FakeDefaultsOnlyWhenAvailable(t *testing.T) {
	f := newFakeV2(t, "memory")
	m, err := New("", "ctr", &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Access: "rwm"}}}, f.opts())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(-1); err != nil {
		t.Fatal(err)
	}
	f.expectWrites("/: +memory", "/berth: +memory")
	f.expect("berth/ctr", "cgroup.controllers", "memory")
}

func TestV2FakeNoInternalProcess(t *testing.T) {
	f := newFakeV2(t, fakeAllControllers)
	// A pre-existing intermediate cgroup with a process in it.
	if err := f.mkdir(filepath.Join(f.root, "berth")); err != nil {
		t.Fatal(err)
	}
	f.writeFiles(filepath.Join(f.root, "berth"), map[string]string{"cgroup.procs": "999\n"})

	m, err := New("", "ctr", &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](1 << 20)}}, f.opts())
	if err != nil {
		t.Fatal(err)
	}
	err = m.Apply(4242)
	if err == nil || !strings.Contains(err.Error(), "no-internal-process") || !strings.Contains(err.Error(), "[memory]") {
		t.Fatalf("Apply = %v, want a no-internal-process error about memory", err)
	}
	f.expectWrites("/: +cpu +io +memory +pids") // nothing written to /berth
	if _, err := os.Stat(filepath.Join(f.root, "berth/ctr")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("leaf created despite the error: %v", err)
	}
	if _, err := os.Stat(filepath.Join(f.root, "berth")); err != nil {
		t.Fatalf("pre-existing parent removed: %v", err)
	}

	// Without limits there is nothing required: the best-effort defaults
	// are skipped for the populated cgroup and the leaf is created.
	m, err = New("", "ctr2", nil, f.opts())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(4243); err != nil {
		t.Fatal(err)
	}
	f.expectWrites()
	f.expect("berth/ctr2", "cgroup.procs", "4243")
}

func TestV2FakeErrors(t *testing.T) {
	t.Run("controller not available", func(t *testing.T) {
		f := newFakeV2(t, "cpu memory pids")
		m, err := New("", "ctr", &specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 1 << 21}}}, f.opts())
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Apply(1234); err == nil || !strings.Contains(err.Error(), `controller "hugetlb" is not available`) {
			t.Fatalf("Apply = %v", err)
		}
		f.expectWrites()
		if _, err := os.Stat(filepath.Join(f.root, "berth")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("directories created: %v", err)
		}
	})
	t.Run("rollback of created directories", func(t *testing.T) {
		f := newFakeV2(t, fakeAllControllers)
		f.failMkdir = "ctr"
		m, err := New("", "ctr", nil, f.opts())
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Apply(1234); err == nil || !errors.Is(err, unix.EACCES) {
			t.Fatalf("Apply = %v, want EACCES", err)
		}
		if _, err := os.Stat(filepath.Join(f.root, "berth")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("created parent not rolled back: %v", err)
		}
	})
	t.Run("threaded parent", func(t *testing.T) {
		f := newFakeV2(t, fakeAllControllers)
		if err := f.mkdir(filepath.Join(f.root, "berth")); err != nil {
			t.Fatal(err)
		}
		f.writeFiles(filepath.Join(f.root, "berth"), map[string]string{"cgroup.type": "threaded\n"})
		m, err := New("", "ctr", nil, f.opts())
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Apply(1234); err == nil || !strings.Contains(err.Error(), `type "threaded"`) {
			t.Fatalf("Apply = %v", err)
		}
	})
	t.Run("inside the caller's cgroup", func(t *testing.T) {
		f := newFakeV2(t, fakeAllControllers)
		callerCgroup = func() string { return "/berth" }
		m, err := New("", "ctr", nil, f.opts())
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Apply(1234); err == nil || !strings.Contains(err.Error(), "caller's own cgroup") {
			t.Fatalf("Apply = %v", err)
		}
		f.expectWrites()
	})
	t.Run("pid 0", func(t *testing.T) {
		f := newFakeV2(t, fakeAllControllers)
		m, err := New("", "ctr", nil, f.opts())
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Apply(0); err == nil {
			t.Fatal("Apply(0) succeeded")
		}
	})
	t.Run("unified on v1 refused early", func(t *testing.T) {
		f := newFakeV2(t, fakeAllControllers)
		opts := f.opts()
		opts.mode = ModeV1
		if _, err := New("", "ctr", &specs.LinuxResources{Unified: map[string]string{"memory.high": "1"}}, opts); err == nil {
			t.Fatal("New accepted unified resources on v1")
		}
	})
	t.Run("set before apply", func(t *testing.T) {
		f := newFakeV2(t, fakeAllControllers)
		m, err := New("", "ctr", nil, f.opts())
		if err != nil {
			t.Fatal(err)
		}
		err = m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](1)}})
		if err == nil || !strings.Contains(err.Error(), "cgroup /berth/ctr: set") {
			t.Fatalf("Set = %v", err)
		}
		f.expectWrites()
	})
}

func TestV2FakeLoad(t *testing.T) {
	f := newFakeV2(t, fakeAllControllers)
	dir := filepath.Join(f.root, "berth/ctr")
	for _, tt := range []struct {
		name  string
		paths map[string]string
		ok    bool
	}{
		{"v2 paths", map[string]string{"": dir}, true},
		{"empty", nil, false},
		{"v1 paths on v2", map[string]string{"memory": "/sys/fs/cgroup/memory/x"}, false},
		{"relative", map[string]string{"": "berth/ctr"}, false},
		{"unclean", map[string]string{"": dir + "/../ctr"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Load(tt.paths, f.opts())
			if (err == nil) != tt.ok {
				t.Fatalf("Load(%v) = %v", tt.paths, err)
			}
			if tt.ok && m.path != "/berth/ctr" {
				t.Fatalf("loaded path = %q", m.path)
			}
		})
	}
	opts := f.opts()
	opts.mode = ModeV1
	if _, err := Load(map[string]string{"": dir}, opts); err == nil {
		t.Fatal("Load accepted v2 paths on a v1 host")
	}
}

// Example of the error wrapping: every error names the cgroup.
func TestV2FakeErrorContext(t *testing.T) {
	f := newFakeV2(t, fakeAllControllers)
	m, err := New("", "ctr", nil, f.opts())
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Pids()
	if err == nil || !strings.HasPrefix(err.Error(), fmt.Sprintf("cgroup %s: list pids: ", "/berth/ctr")) {
		t.Fatalf("Pids() on a missing cgroup = %v", err)
	}
}
