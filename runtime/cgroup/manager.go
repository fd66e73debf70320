package cgroup

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/opencontainers/cgroups"
	// Imported for its side effect: it registers cgroups.DevicesSetV1 and
	// cgroups.DevicesSetV2, without which fs and fs2 refuse device rules.
	_ "github.com/opencontainers/cgroups/devices"
	"github.com/opencontainers/cgroups/fs"
	"github.com/opencontainers/cgroups/fs2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Options tunes New and Load.
type Options struct {
	// Root is the cgroupfs mount point; DefaultRoot when empty.
	Root string
	// Parent is berth's own subtree, the base of empty and relative
	// cgroupsPath values; DefaultParent when empty. It must be absolute.
	Parent string

	// mode forces the layout instead of detecting it from Root. Tests use
	// it to drive a fake v2 tree, or the hybrid unified hierarchy as v2.
	mode string
}

func (o Options) withDefaults() Options {
	if o.Root == "" {
		o.Root = DefaultRoot
	}
	o.Root = filepath.Clean(o.Root)
	if o.Parent == "" {
		o.Parent = DefaultParent
	}
	return o
}

func (o Options) detect() (string, error) {
	if o.mode != "" {
		return o.mode, nil
	}
	return detectMode(o.Root)
}

// v1Subsystems lists the v1 hierarchies a container joins, most useful
// first: the first one present is used to list pids and check existence.
var v1Subsystems = []string{
	"devices", "freezer", "pids", "memory", "cpu", "cpuacct", "cpuset",
	"blkio", "hugetlb", "net_cls", "net_prio", "perf_event", "rdma", "misc",
	"name=systemd",
}

// Manager drives the cgroup(s) of one container. It is safe for concurrent
// use.
type Manager struct {
	mu    sync.Mutex
	mode  string
	root  string
	path  string             // path inside the hierarchy, "" if unknown
	res   *cgroups.Resources // what Apply needs (v1 cpu/cpuset, v2 controllers)
	paths map[string]string
	dir   string // v2: the cgroup directory
	// loaded is set for a Manager from Load: Apply only joins.
	loaded bool
	v1     *fs.Manager
	v2     *fs2.Manager
}

// New prepares the cgroup of a container without touching the file
// system: cgroupsPath is the spec's linux.cgroupsPath (resolved as the
// package documentation describes), containerID names the cgroup when the
// path is empty, and r (may be nil) is used by Apply for what must be in
// place before a process joins (v1 realtime and cpuset settings, v2
// controllers to enable). Limits are applied by Set.
func New(cgroupsPath, containerID string, r *specs.LinuxResources, opts Options) (*Manager, error) {
	opts = opts.withDefaults()
	p, err := resolvePath(cgroupsPath, containerID, opts.Parent)
	if err != nil {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	mode, err := opts.detect()
	if err != nil {
		return nil, fmt.Errorf("cgroup %s: detect cgroup layout: %w", p, err)
	}
	res, err := convertResources(r, mode == ModeV2)
	if err != nil {
		return nil, fmt.Errorf("cgroup %s: convert resources: %w", p, err)
	}
	m := &Manager{mode: mode, root: opts.Root, path: p, res: res}

	if mode == ModeV2 {
		m.dir = filepath.Join(opts.Root, p)
		m.paths = map[string]string{"": m.dir}
		if m.v2, err = fs2.NewManager(&cgroups.Cgroup{Path: p, Resources: res}, m.dir); err != nil {
			return nil, fmt.Errorf("cgroup %s: %w", p, err)
		}
		return m, nil
	}

	mounts, err := v1Mounts(opts.Root)
	if err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", p, err)
	}
	if _, ok := mounts["devices"]; !ok {
		return nil, fmt.Errorf("cgroup %s: the devices controller is not mounted below %s", p, opts.Root)
	}
	m.paths = make(map[string]string)
	for _, sub := range v1Subsystems {
		if mnt, ok := mounts[sub]; ok {
			m.paths[sub] = filepath.Join(mnt, p)
		}
	}
	if mode == ModeHybrid {
		m.paths[""] = filepath.Join(opts.Root, "unified", p)
	}
	// Apply must join the devices hierarchy even when no rule is given
	// (SkipDevices would make fs skip it); it never writes rules.
	applyRes := *res
	applyRes.SkipDevices = false
	if m.v1, err = fs.NewManager(&cgroups.Cgroup{Path: p, Resources: &applyRes}, maps.Clone(m.paths)); err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", p, err)
	}
	return m, nil
}

// Load re-attaches to the cgroup(s) of a container from the map saved from
// Paths. Only opts.Root (used to tell the layout apart) matters.
func Load(paths map[string]string, opts Options) (*Manager, error) {
	if len(paths) == 0 {
		return nil, errors.New("cgroup: load: no saved paths")
	}
	for sub, p := range paths {
		if !filepath.IsAbs(p) || filepath.Clean(p) != p {
			return nil, fmt.Errorf("cgroup: load: path %q of %q is not a clean absolute path", p, sub)
		}
	}
	opts = opts.withDefaults()
	mode, err := opts.detect()
	if err != nil {
		return nil, fmt.Errorf("cgroup: load: detect cgroup layout: %w", err)
	}
	m := &Manager{mode: mode, root: opts.Root, res: &cgroups.Resources{}, paths: maps.Clone(paths), loaded: true}
	if mode == ModeV2 {
		dir, ok := paths[""]
		if !ok || len(paths) != 1 {
			return nil, fmt.Errorf("cgroup: load: saved paths %v are not those of a cgroup v2 container", paths)
		}
		m.dir = dir
		if rel, err := filepath.Rel(opts.Root, dir); err == nil && rel != "." && filepath.IsLocal(rel) {
			m.path = "/" + rel
		}
		if m.v2, err = fs2.NewManager(&cgroups.Cgroup{Path: m.path, Resources: m.res}, dir); err != nil {
			return nil, fmt.Errorf("cgroup %s: load: %w", dir, err)
		}
		return m, nil
	}
	if _, ok := paths[""]; ok && len(paths) == 1 {
		return nil, fmt.Errorf("cgroup: load: saved paths %v are those of a cgroup v2 container, the host is %s", paths, mode)
	}
	res := &cgroups.Resources{}
	if m.v1, err = fs.NewManager(&cgroups.Cgroup{Resources: res}, maps.Clone(paths)); err != nil {
		return nil, fmt.Errorf("cgroup: load: %w", err)
	}
	return m, nil
}

// name identifies the cgroup in error messages.
func (m *Manager) name() string {
	if m.path != "" {
		return m.path
	}
	if m.dir != "" {
		return m.dir
	}
	return m.primary()
}

// primary is the v1 directory used to list processes and check existence.
func (m *Manager) primary() string {
	for _, sub := range v1Subsystems {
		if p, ok := m.paths[sub]; ok {
			return p
		}
	}
	return m.paths[""]
}

// Apply creates the cgroup(s) and moves pid into them; a negative pid only
// creates them. In v2 the controllers needed by the resources given to New
// (plus cpu, io, memory and pids when available, for statistics and later
// updates) are enabled in the cgroup.subtree_control of every ancestor,
// the hierarchy root included, obeying the no-internal-process rule; the
// directories it created are removed again if that fails. In v1 a failed
// Apply may leave directories behind: call Destroy. On a Manager from
// Load, Apply only adds pid to the existing cgroup(s).
func (m *Manager) Apply(pid int) error {
	if pid == 0 {
		return fmt.Errorf("cgroup %s: apply: pid 0 would move the caller", m.name())
	}
	if pid < 0 {
		pid = -1
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.v2 == nil {
		if err := m.v1.Apply(pid); err != nil {
			return fmt.Errorf("cgroup %s: apply pid %d: %w", m.name(), pid, err)
		}
		return nil
	}
	if !m.loaded {
		if own := callerCgroup(); own != "/" && isWithin(m.path, own) {
			return fmt.Errorf("cgroup %s: apply: refusing to place a container inside the caller's own cgroup %s", m.path, own)
		}
		if err := setupV2(m.root, m.path, v2DefaultControllers, neededV2Controllers(m.res), true); err != nil {
			return fmt.Errorf("cgroup %s: apply: %w", m.path, err)
		}
	}
	if pid > 0 {
		if err := cgroups.WriteCgroupProc(m.dir, pid); err != nil {
			return fmt.Errorf("cgroup %s: apply pid %d: %w", m.name(), pid, err)
		}
	}
	return nil
}

// Set applies resources; it is also what `update` uses. Unset fields are
// left as they are, and so are the device rules when r has none. In v2 the
// controllers r needs are enabled in the ancestors first if they are not
// yet.
func (m *Manager) Set(r *specs.LinuxResources) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	res, err := convertResources(r, m.v2 != nil)
	if err != nil {
		return fmt.Errorf("cgroup %s: set: %w", m.name(), err)
	}
	pidsDir := m.paths["pids"]
	if m.v2 != nil {
		pidsDir = m.dir
		if _, err := os.Stat(m.dir); err != nil {
			return fmt.Errorf("cgroup %s: set: %w", m.name(), err)
		}
		if need := neededV2Controllers(res); len(need) > 0 && m.path != "" && !m.hasControllers(need) {
			if err := setupV2(m.root, m.path, nil, need, false); err != nil {
				return fmt.Errorf("cgroup %s: set: %w", m.name(), err)
			}
		}
		err = m.v2.Set(res)
	} else {
		// v1 device rules are written in the listed order (the runtime
		// spec asks for that, and devices.list then shows that order),
		// not through the library's minimal-diff emulator.
		skip := res.SkipDevices
		res.SkipDevices = true
		err = m.v1.Set(res)
		if err == nil && !skip {
			err = writeV1Devices(m.paths["devices"], r.Devices)
		}
	}
	if err != nil {
		return fmt.Errorf("cgroup %s: set resources: %w", m.name(), err)
	}
	// The runtime spec asks for 0 to be a real limit; the library writes 1.
	if res.PidsLimit != nil && *res.PidsLimit == 0 {
		if err := cgroups.WriteFile(pidsDir, "pids.max", "0"); err != nil {
			return fmt.Errorf("cgroup %s: set pids limit: %w", m.name(), err)
		}
	}
	return nil
}

// hasControllers tells whether every controller of need is available in
// the v2 cgroup itself.
func (m *Manager) hasControllers(need []string) bool {
	avail, err := readList(m.dir, "cgroup.controllers")
	if err != nil {
		return false
	}
	for _, c := range need {
		if !slices.Contains(avail, c) {
			return false
		}
	}
	return true
}

// Freeze freezes every process of the cgroup and waits until it is frozen.
func (m *Manager) Freeze() error {
	return m.setFreezer(cgroups.Frozen)
}

// Thaw thaws the cgroup.
func (m *Manager) Thaw() error {
	return m.setFreezer(cgroups.Thawed)
}

func (m *Manager) setFreezer(state cgroups.FreezerState) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var err error
	if m.v2 != nil {
		err = m.v2.Freeze(state)
	} else {
		err = m.v1.Freeze(state)
	}
	if err != nil {
		return fmt.Errorf("cgroup %s: set freezer to %s: %w", m.name(), state, err)
	}
	return nil
}

// State reports whether the cgroup itself is frozen (a cgroup frozen only
// through an ancestor reads as not frozen in v1).
func (m *Manager) State() (frozen bool, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var st cgroups.FreezerState
	if m.v2 != nil {
		st, err = m.v2.GetFreezerState()
	} else {
		st, err = m.v1.GetFreezerState()
	}
	if err != nil {
		return false, fmt.Errorf("cgroup %s: freezer state: %w", m.name(), err)
	}
	return st == cgroups.Frozen, nil
}

// Pids lists the processes of the cgroup and of its sub-cgroups.
func (m *Manager) Pids() ([]int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	dir := m.dir
	if m.v2 == nil {
		dir = m.primary()
	}
	pids, err := cgroups.GetAllPids(dir)
	if err != nil {
		return nil, fmt.Errorf("cgroup %s: list pids: %w", m.name(), err)
	}
	return pids, nil
}

// Stats collects the cgroup statistics.
func (m *Manager) Stats() (*Stats, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var (
		st  *cgroups.Stats
		err error
	)
	if m.v2 != nil {
		st, err = m.v2.GetStats()
	} else {
		st, err = m.v1.GetStats()
	}
	if err != nil {
		return nil, fmt.Errorf("cgroup %s: stats: %w", m.name(), err)
	}
	return convertStats(st), nil
}

// OOMKillCount returns the number of processes of the cgroup killed by the
// OOM killer (memory.oom_control in v1, memory.events in v2).
func (m *Manager) OOMKillCount() (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var (
		n   uint64
		err error
	)
	if m.v2 != nil {
		n, err = fs2.OOMKillCount(m.dir)
	} else {
		dir, ok := m.paths["memory"]
		if !ok {
			return 0, fmt.Errorf("cgroup %s: oom kill count: no memory cgroup", m.name())
		}
		n, err = fs.OOMKillCount(dir)
	}
	if err != nil {
		return 0, fmt.Errorf("cgroup %s: oom kill count: %w", m.name(), err)
	}
	return n, nil
}

// Destroy removes the cgroup directories (sub-cgroups included), retrying
// for up to two seconds while the kernel reports some of them busy (the
// last processes may take a moment to leave). It kills nothing: the
// processes must be gone already, or removal fails. Missing directories
// are not an error, so Destroy may be repeated.
func (m *Manager) Destroy() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var pending []string
	for _, sub := range slices.Sorted(maps.Keys(m.paths)) {
		if p := m.paths[sub]; !slices.Contains(pending, p) {
			pending = append(pending, p)
		}
	}
	deadline := time.Now().Add(destroyTimeout)
	delay := 5 * time.Millisecond
	var errs []error
	for {
		var busy []string
		var busyErrs []error
		for _, p := range pending {
			if err := removeCgroup(p); err != nil {
				if errors.Is(err, unix.EBUSY) {
					busy = append(busy, p)
					busyErrs = append(busyErrs, err)
				} else {
					errs = append(errs, err)
				}
			}
		}
		if len(busy) == 0 || time.Now().After(deadline) {
			errs = append(errs, busyErrs...)
			break
		}
		time.Sleep(delay)
		delay = min(2*delay, 200*time.Millisecond)
		pending = busy
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cgroup %s: destroy: %w", m.name(), err)
	}
	return nil
}

// destroyTimeout bounds the EBUSY retries of Destroy.
const destroyTimeout = 2 * time.Second

// Paths returns the cgroup directory of every hierarchy, keyed by
// subsystem ("memory", "name=systemd", ...; "" for the unified hierarchy
// in v2 and hybrid layouts). Save it to re-attach later with Load.
func (m *Manager) Paths() map[string]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.paths)
}

// Path returns the directory of the cgroup for subsystem ("" if the
// subsystem is not mounted). In v2 the single directory is returned for any
// subsystem.
func (m *Manager) Path(subsystem string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.v2 != nil {
		return m.dir
	}
	return m.paths[subsystem]
}

// Exists tells whether the cgroup exists (its devices cgroup in v1).
func (m *Manager) Exists() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	dir := m.dir
	if m.v2 == nil {
		dir = m.primary()
	}
	_, err := os.Stat(dir)
	return err == nil
}

// writeV1Devices applies OCI device rules to a v1 devices cgroup in order.
// A rule for all devices (no type, or type "a", with no major and minor)
// resets the cgroup to allow-all or deny-all.
func writeV1Devices(dir string, rules []specs.LinuxDeviceCgroup) error {
	if dir == "" {
		return nil
	}
	for _, r := range rules {
		typ := r.Type
		if typ == "" {
			typ = "a"
		}
		access := r.Access
		if access == "" {
			access = "rwm"
		}
		file := "devices.deny"
		if r.Allow {
			file = "devices.allow"
		}
		var line string
		if typ == "a" && r.Major == nil && r.Minor == nil {
			line = "a"
		} else {
			num := func(p *int64) string {
				if p == nil || *p < 0 {
					return "*"
				}
				return strconv.FormatInt(*p, 10)
			}
			line = fmt.Sprintf("%s %s:%s %s", typ, num(r.Major), num(r.Minor), access)
		}
		if err := cgroups.WriteFile(dir, file, line); err != nil {
			return fmt.Errorf("write %s %q: %w", file, line, err)
		}
	}
	return nil
}
