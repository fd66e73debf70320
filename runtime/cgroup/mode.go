package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// The cgroup layouts reported by Mode.
const (
	// ModeV1 is the legacy layout: one cgroup v1 hierarchy per controller.
	ModeV1 = "v1"
	// ModeHybrid is the v1 layout plus a controller-less cgroup2 hierarchy
	// at <root>/unified. The v1 controllers are authoritative.
	ModeHybrid = "hybrid"
	// ModeV2 is the unified layout: a single cgroup2 hierarchy.
	ModeV2 = "v2"
)

// DefaultRoot is the usual cgroupfs mount point.
const DefaultRoot = "/sys/fs/cgroup"

// knownV1Controllers are the v1 controllers the fs manager knows about.
var knownV1Controllers = []string{
	"blkio", "cpu", "cpuacct", "cpuset", "devices", "freezer", "hugetlb",
	"memory", "misc", "net_cls", "net_prio", "perf_event", "pids", "rdma",
}

// Mode reports the cgroup layout of this host as seen at /sys/fs/cgroup:
// ModeV1, ModeHybrid or ModeV2. It returns "" when /sys/fs/cgroup cannot be
// examined.
func Mode() string {
	m, err := detectMode(DefaultRoot)
	if err != nil {
		return ""
	}
	return m
}

// detectMode classifies the cgroupfs mounted at root.
func detectMode(root string) (string, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(root, &st); err != nil {
		return "", &os.PathError{Op: "statfs", Path: root, Err: err}
	}
	if st.Type == unix.CGROUP2_SUPER_MAGIC {
		return ModeV2, nil
	}
	if isCgroup2(filepath.Join(root, "unified")) {
		return ModeHybrid, nil
	}
	return ModeV1, nil
}

// isCgroup2 tells whether path is on a cgroup2 file system.
func isCgroup2(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
}

// Controllers lists the controllers available at /sys/fs/cgroup, sorted:
// the mounted v1 controllers in the v1 and hybrid layouts (named
// hierarchies such as name=systemd are left out), or the content of the
// root's cgroup.controllers in the v2 layout (the "devices" and "freezer"
// pseudo-controllers of v2 are not listed there and are not added).
func Controllers() []string {
	ctrls, _ := controllersAt(DefaultRoot)
	return ctrls
}

func controllersAt(root string) ([]string, error) {
	mode, err := detectMode(root)
	if err != nil {
		return nil, err
	}
	if mode == ModeV2 {
		ctrls, err := readList(root, "cgroup.controllers")
		if err != nil {
			return nil, err
		}
		slices.Sort(ctrls)
		return ctrls, nil
	}
	mounts, err := v1Mounts(root)
	if err != nil {
		return nil, err
	}
	var ctrls []string
	for name := range mounts {
		if !strings.HasPrefix(name, "name=") {
			ctrls = append(ctrls, name)
		}
	}
	slices.Sort(ctrls)
	return ctrls, nil
}

// v1Mounts maps each cgroup v1 subsystem mounted directly below root to its
// mount point ("memory" -> "/sys/fs/cgroup/memory"; co-mounted controllers
// such as cpu,cpuacct map to the same directory). Named hierarchies are
// keyed "name=<name>", as the fs manager expects.
func v1Mounts(root string) (map[string]string, error) {
	infos, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup"))
	if err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	root = filepath.Clean(root)
	mounts := make(map[string]string)
	for _, mi := range infos {
		if filepath.Dir(mi.Mountpoint) != root {
			continue
		}
		for opt := range strings.SplitSeq(mi.VFSOptions, ",") {
			if !slices.Contains(knownV1Controllers, opt) && !strings.HasPrefix(opt, "name=") {
				continue
			}
			if _, seen := mounts[opt]; !seen {
				mounts[opt] = mi.Mountpoint
			}
		}
	}
	if len(mounts) == 0 {
		return nil, errors.New("no cgroup v1 hierarchy mounted below " + root)
	}
	return mounts, nil
}
