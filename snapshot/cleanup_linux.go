package snapshot

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/moby/sys/mountinfo"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/berth-engine/berth/internal/lockfile"
)

// Cleanup removes what crashed operations left behind: snapshot
// directories that no record refers to, the trash of interrupted removals
// and temporary files. Directories that an operation in progress (in this
// or another process) holds locked are left alone, and so is anything with
// a mount point below it (reported as an error wrapping unix.EBUSY).
func (s *Snapshotter) Cleanup(ctx context.Context) error {
	var trash []trashEntry
	err := s.withDB(ctx, true, func(db *bolt.DB) error {
		used, err := usedIDs(db)
		if err != nil {
			return err
		}
		trash, err = s.sweep(used)
		return err
	})
	err = errors.Join(err, s.emptyTrash(ctx, trash))
	if err != nil {
		return fmt.Errorf("snapshot: cleanup %s: %w", s.root, err)
	}
	return nil
}

// trashEntry is a directory moved to the trash, still locked by its mover.
type trashEntry struct {
	path string
	lock *os.File
}

// usedIDs returns the directory names (IDs) of all recorded snapshots.
func usedIDs(db *bolt.DB) (map[string]bool, error) {
	used := make(map[string]bool)
	err := db.View(func(tx *bolt.Tx) error {
		t, err := newTxn(tx)
		if err != nil {
			return err
		}
		return t.each(func(_ string, r record) error {
			used[strconv.FormatUint(r.ID, 10)] = true
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read metadata: %w", err)
	}
	return used, nil
}

// sweep moves the snapshot directories that are not in used and that no
// operation holds locked to the trash, and empties tmp/. The caller holds
// the exclusive metadata lock, under which used was read: no snapshot
// directory is being created unlocked meanwhile (creators make and lock
// theirs under that lock) and nothing uses tmp/. The returned entries stay
// locked until emptyTrash deletes them, even when sweep fails.
func (s *Snapshotter) sweep(used map[string]bool) ([]trashEntry, error) {
	entries, err := os.ReadDir(s.path(snapshotsDir))
	if err != nil {
		return nil, err
	}
	var trash []trashEntry
	var errs []error
	for _, e := range entries {
		if used[e.Name()] {
			continue
		}
		path := s.path(snapshotsDir, e.Name())
		lock, err := lockfile.TryLockDir(path, true)
		if errors.Is(err, unix.ENOTDIR) { // nothing creates files here
			errs = append(errs, os.Remove(path))
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if lock == nil {
			continue // an operation in progress holds it
		}
		dst, err := s.moveToTrash(path, e.Name())
		if err != nil {
			lock.Close()
			errs = append(errs, err)
			continue
		}
		trash = append(trash, trashEntry{dst, lock})
	}
	if len(trash) > 0 {
		fail("cleanup-trashed")
	}
	errs = append(errs, s.clearTmp())
	stale, _ := filepath.Glob(s.path("." + layoutFileName + ".tmp-*"))
	for _, p := range stale {
		errs = append(errs, os.Remove(p))
	}
	return trash, errors.Join(errs...)
}

// moveToTrash renames the directory path into the trash under a unique
// name starting with name.
func (s *Snapshotter) moveToTrash(path, name string) (string, error) {
	dst := s.path(trashDir, name+"-"+strconv.FormatUint(rand.Uint64(), 36))
	if err := os.Rename(path, dst); err != nil {
		return "", err
	}
	return dst, nil
}

// emptyTrash deletes the given locked entries, then every trash entry no
// operation holds (left by a crash), and releases the locks.
func (s *Snapshotter) emptyTrash(ctx context.Context, held []trashEntry) error {
	var errs []error
	for _, e := range held {
		errs = append(errs, removeTree(e.path))
		e.lock.Close()
	}
	entries, err := os.ReadDir(s.path(trashDir))
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return errors.Join(append(errs, err)...)
		}
		path := s.path(trashDir, e.Name())
		lock, err := lockfile.TryLockDir(path, true)
		if errors.Is(err, unix.ENOTDIR) {
			errs = append(errs, os.Remove(path))
			continue
		}
		if err != nil || lock == nil {
			errs = append(errs, err)
			continue
		}
		errs = append(errs, removeTree(path))
		lock.Close()
	}
	return errors.Join(errs...)
}

// clearTmp empties tmp/, detaching what a crashed overlay probe left
// mounted there. The caller holds the exclusive metadata lock.
func (s *Snapshotter) clearTmp() error {
	dir := s.path(tmpDir)
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return err
	}
	// Deepest first.
	slices.SortFunc(mounts, func(a, b *mountinfo.Info) int { return len(b.Mountpoint) - len(a.Mountpoint) })
	for _, m := range mounts {
		if err := unix.Unmount(m.Mountpoint, unix.MNT_DETACH); err != nil && err != unix.EINVAL {
			return fmt.Errorf("unmount %s: %w", m.Mountpoint, err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		errs = append(errs, removeTree(filepath.Join(dir, e.Name())))
	}
	return errors.Join(errs...)
}

// removeTree deletes the file or directory tree at path, refusing when
// something is mounted at or below it: os.RemoveAll would descend into the
// mount and delete someone else's files.
func removeTree(path string) error {
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(path))
	if err != nil {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	if len(mounts) > 0 {
		return fmt.Errorf("remove %s: %w: %s is a mount point", path, unix.EBUSY, mounts[0].Mountpoint)
	}
	return os.RemoveAll(path)
}
