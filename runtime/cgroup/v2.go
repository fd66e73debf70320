package cgroup

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/cgroups"
	"golang.org/x/sys/unix"
)

// Indirections over the few operations that a fake cgroupfs tree (a plain
// directory in tests) cannot emulate: mkdir does not populate a cgroup's
// files, rmdir fails on a directory holding regular files, and enabling a
// controller does not make it appear in the children's cgroup.controllers.
var (
	mkdirCgroup         = func(dir string) error { return os.Mkdir(dir, 0o755) }
	removeCgroup        = rmTree
	writeSubtreeControl = func(dir, data string) error { return writeRetry(dir, "cgroup.subtree_control", data) }
	callerCgroup        = ownV2Cgroup
)

// readList reads a space separated cgroup list file (cgroup.controllers,
// cgroup.subtree_control, cgroup.procs). A leading '+' is dropped from the
// entries so that a fake tree holding what was written reads back right.
func readList(dir, file string) ([]string, error) {
	data, err := cgroups.ReadFile(dir, file)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, f := range strings.Fields(data) {
		out = append(out, strings.TrimPrefix(f, "+"))
	}
	return out, nil
}

// writeRetry writes a cgroup file, retrying for a while on EBUSY, which
// cgroup.subtree_control returns while a controller is still being torn
// down in a child that is going away.
func writeRetry(dir, file, data string) error {
	delay := 5 * time.Millisecond
	for i := 0; ; i++ {
		err := cgroups.WriteFile(dir, file, data)
		if err == nil || !errors.Is(err, unix.EBUSY) || i == 8 {
			return err
		}
		time.Sleep(delay)
		delay = min(2*delay, 200*time.Millisecond)
	}
}

// setupV2 walks from root down to root+rel. In every ancestor of the leaf
// (root included) it enables, in cgroup.subtree_control, the controllers of
// want (best effort) and need (required). With create, missing directories
// are created, and removed again if the setup fails.
func setupV2(root, rel string, want, need []string, create bool) (retErr error) {
	rootAvail, err := readList(root, "cgroup.controllers")
	if err != nil {
		return fmt.Errorf("not a cgroup v2 hierarchy: %w", err)
	}
	for _, c := range need {
		if !slices.Contains(rootAvail, c) {
			return fmt.Errorf("controller %q is not available in %s (cgroup.controllers: %q)", c, root, strings.Join(rootAvail, " "))
		}
	}
	var created []string
	defer func() {
		if retErr != nil {
			for i := len(created) - 1; i >= 0; i-- {
				_ = removeCgroup(created[i])
			}
		}
	}()
	cur := root
	for e := range strings.SplitSeq(strings.Trim(rel, "/"), "/") {
		if err := enableControllers(cur, cur == root, want, need); err != nil {
			return err
		}
		cur = filepath.Join(cur, e)
		if create {
			if err := mkdirCgroup(cur); err == nil {
				created = append(created, cur)
			} else if !errors.Is(err, os.ErrExist) {
				return fmt.Errorf("create %s: %w", cur, err)
			}
		}
		if err := checkDomain(cur); err != nil {
			return err
		}
	}
	return nil
}

// enableControllers enables, for the children of dir, the controllers of
// want and need that dir has and that are not enabled yet. It obeys the
// no-internal-process rule: a non-root cgroup with member processes cannot
// enable controllers, which is an error if one of need is missing and
// otherwise skips the best-effort ones.
func enableControllers(dir string, isRoot bool, want, need []string) error {
	avail, err := readList(dir, "cgroup.controllers")
	if err != nil {
		return fmt.Errorf("cgroup %s: %w", dir, err)
	}
	for _, c := range need {
		if !slices.Contains(avail, c) {
			return fmt.Errorf("cgroup %s: controller %q is not available (not enabled in the parent's cgroup.subtree_control)", dir, c)
		}
	}
	enabled, err := readList(dir, "cgroup.subtree_control")
	if err != nil {
		return fmt.Errorf("cgroup %s: %w", dir, err)
	}
	var toEnable, required []string
	for _, c := range append(slices.Clone(need), want...) {
		if slices.Contains(avail, c) && !slices.Contains(enabled, c) && !slices.Contains(toEnable, c) {
			toEnable = append(toEnable, c)
			if slices.Contains(need, c) {
				required = append(required, c)
			}
		}
	}
	if len(toEnable) == 0 {
		return nil
	}
	slices.Sort(toEnable)
	if !isRoot {
		procs, err := readList(dir, "cgroup.procs")
		if err != nil {
			return fmt.Errorf("cgroup %s: %w", dir, err)
		}
		if len(procs) > 0 {
			if len(required) > 0 {
				return fmt.Errorf("cgroup %s has member processes, so controllers %v cannot be enabled for its children (cgroup v2 no-internal-process rule)", dir, required)
			}
			return nil
		}
	}
	if err := writeSubtreeControl(dir, "+"+strings.Join(toEnable, " +")); err == nil {
		return nil
	}
	// The kernel applies all or nothing: retry one by one so that a
	// controller which cannot be enabled (say cpu with realtime tasks
	// around) only matters when it is needed.
	for _, c := range toEnable {
		if err := writeSubtreeControl(dir, "+"+c); err != nil && slices.Contains(required, c) {
			return fmt.Errorf("cgroup %s: enable controller %s: %w", dir, c, err)
		}
	}
	return nil
}

// checkDomain refuses threaded and invalid cgroups: a container needs a
// domain cgroup.
func checkDomain(dir string) error {
	t, err := cgroups.ReadFile(dir, "cgroup.type")
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil // root cgroup, or a kernel without threaded mode
		}
		return fmt.Errorf("cgroup %s: %w", dir, err)
	}
	switch t = strings.TrimSpace(t); t {
	case "domain", "domain threaded":
		return nil
	}
	return fmt.Errorf("cgroup %s is of type %q, a container needs a domain cgroup", dir, t)
}

// ownV2Cgroup returns the caller's cgroup in the unified hierarchy ("/" if
// unknown).
func ownV2Cgroup() string {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return "/"
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if p, ok := strings.CutPrefix(s.Text(), "0::"); ok && p != "" {
			return filepath.Clean(p)
		}
	}
	return "/"
}

// isWithin tells whether p is base or below it.
func isWithin(p, base string) bool {
	return p == base || strings.HasPrefix(p, strings.TrimSuffix(base, "/")+"/")
}

// rmTree removes the cgroup dir, its sub-cgroups first. Missing
// directories are fine; EBUSY (processes still inside) is returned as is
// for the caller to retry.
func rmTree(dir string) error {
	err := rmdir(dir)
	if err == nil || !errors.Is(err, unix.EBUSY) && !errors.Is(err, unix.ENOTEMPTY) {
		return err
	}
	entries, rerr := os.ReadDir(dir)
	if rerr != nil {
		if errors.Is(rerr, os.ErrNotExist) {
			return nil
		}
		return rerr
	}
	for _, e := range entries {
		if e.IsDir() {
			if err := rmTree(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return rmdir(dir)
}

// rmdir removes one directory; a missing one is not an error.
func rmdir(dir string) error {
	for {
		err := unix.Rmdir(dir)
		switch err {
		case nil, unix.ENOENT:
			return nil
		case unix.EINTR:
			continue
		}
		return &os.PathError{Op: "rmdir", Path: dir, Err: err}
	}
}
