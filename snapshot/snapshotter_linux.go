package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/moby/sys/mountinfo"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/berth-engine/berth/internal/lockfile"
	"github.com/berth-engine/berth/snapshot/archive"
)

// Prepare creates the active snapshot key on top of the committed snapshot
// parent ("" for an empty tree) and returns the mounts of its writable tree.
func (s *Snapshotter) Prepare(ctx context.Context, key, parent string, labels map[string]string) ([]Mount, error) {
	m, err := s.createSnapshot(ctx, KindActive, key, parent, labels)
	if err != nil {
		return nil, fmt.Errorf("snapshot: prepare %q: %w", key, err)
	}
	return m, nil
}

// View creates the read-only snapshot key of the committed snapshot parent
// ("" for an empty tree) and returns its mounts.
func (s *Snapshotter) View(ctx context.Context, key, parent string, labels map[string]string) ([]Mount, error) {
	m, err := s.createSnapshot(ctx, KindView, key, parent, labels)
	if err != nil {
		return nil, fmt.Errorf("snapshot: view %q: %w", key, err)
	}
	return m, nil
}

// createSnapshot creates an active snapshot or a view. The steps, each
// safe to interrupt:
//
//  1. under the metadata lock: check key and parent, allocate an ID (the
//     sequence is persisted), create snapshots/<ID> and lock it;
//  2. fill the directory (and lock the parent shared, so that it cannot be
//     removed while the native driver copies it);
//  3. record the snapshot, checking again that the key is free and the
//     parent is the same.
//
// A crash before step 3 leaves an unreferenced directory, which Cleanup
// deletes; the lock held from its creation keeps Cleanup away meanwhile.
func (s *Snapshotter) createSnapshot(ctx context.Context, kind Kind, key, parent string, labels map[string]string) (_ []Mount, err error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	if parent != "" {
		if err := checkKey(parent); err != nil {
			return nil, fmt.Errorf("parent: %w", err)
		}
	}
	if err := checkLabels(labels); err != nil {
		return nil, err
	}

	var id, parentID uint64
	var lock *os.File
	err = s.withDB(ctx, true, func(db *bolt.DB) error {
		err := db.Update(func(tx *bolt.Tx) error {
			t, err := newTxn(tx)
			if err != nil {
				return err
			}
			if t.exists(key) {
				return fmt.Errorf("%w: %q", ErrAlreadyExists, key)
			}
			if parent != "" {
				p, err := t.get(parent)
				if err != nil {
					return fmt.Errorf("parent: %w", err)
				}
				if p.kind() != KindCommitted {
					return fmt.Errorf("%w: parent %q is %s, not committed", ErrInvalid, parent, p.kind())
				}
				parentID = p.ID
			}
			id, err = t.nextID()
			return err
		})
		if err != nil {
			return err
		}
		fail("create-reserved")
		dir := s.dir(id)
		if err := os.Mkdir(dir, 0o700); err != nil {
			return err
		}
		lock, err = lockfile.TryLockDir(dir, true)
		if err == nil && lock == nil {
			err = fmt.Errorf("new directory %s is locked by someone else", dir)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	defer func() {
		if err != nil {
			// Best effort; Cleanup deletes what is left.
			_ = removeTree(s.dir(id))
		}
	}()

	if parent != "" {
		plock, err := lockfile.LockDir(ctx, s.dir(parentID), false)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, lockfile.ErrGone) {
			return nil, fmt.Errorf("parent: %w: %q was removed", ErrNotFound, parent)
		}
		if err != nil {
			return nil, fmt.Errorf("parent: %w", err)
		}
		defer plock.Close()
	}
	if err := s.populate(ctx, kind, id, parentID); err != nil {
		return nil, err
	}
	fail("create-populated")

	var lowers []uint64
	err = s.update(ctx, func(t *txn) error {
		if t.exists(key) {
			return fmt.Errorf("%w: %q", ErrAlreadyExists, key)
		}
		if parent != "" {
			p, err := t.get(parent)
			if err != nil {
				return fmt.Errorf("parent: %w", err)
			}
			if p.ID != parentID {
				return fmt.Errorf("parent: %w: %q was removed", ErrNotFound, parent)
			}
		}
		var err error
		if lowers, err = t.lowerIDs(parent); err != nil {
			return err
		}
		now := time.Now().UTC()
		return t.put(key, record{
			ID:      id,
			Parent:  parent,
			Kind:    kind.String(),
			Created: now,
			Updated: now,
			Labels:  maps.Clone(labels),
		})
	})
	if err != nil {
		return nil, err
	}
	fail("create-recorded")
	return s.mounts(kind, id, lowers), nil
}

// populate fills the new directory of snapshot id: its tree (empty, or a
// copy of the parent's for an active native snapshot) and, for an active
// overlay snapshot, the work directory.
func (s *Snapshotter) populate(ctx context.Context, kind Kind, id, parentID uint64) error {
	tree := s.fsDir(id)
	if err := os.Mkdir(tree, 0o755); err != nil {
		return err
	}
	if err := os.Chmod(tree, 0o755); err != nil { // whatever the umask
		return err
	}
	switch {
	case kind != KindActive:
		// An overlay view stacks its parents; a native view binds its
		// parent's tree, immutable once committed.
	case s.driver == DriverOverlay:
		if err := os.Mkdir(s.workDir(id), 0o700); err != nil {
			return err
		}
	case parentID != 0:
		if err := copyTree(ctx, s.fsDir(parentID), tree); err != nil {
			return fmt.Errorf("copy parent tree: %w", err)
		}
	}
	return nil
}

// Mounts returns the mounts of the active snapshot or view key.
func (s *Snapshotter) Mounts(ctx context.Context, key string) ([]Mount, error) {
	var r record
	var lowers []uint64
	err := s.view(ctx, func(t *txn) error {
		var err error
		if r, err = t.get(key); err != nil {
			return err
		}
		if r.kind() == KindCommitted {
			return fmt.Errorf("%w: %q is committed; mount a view of it", ErrInvalid, key)
		}
		lowers, err = t.lowerIDs(r.Parent)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("snapshot: mounts of %q: %w", key, err)
	}
	return s.mounts(r.kind(), r.ID, lowers), nil
}

// Commit turns the active snapshot key into the committed snapshot name,
// with the given labels. It fails with ErrAlreadyExists if name exists (the
// caller then removes its active snapshot, the content being there
// already) and with ErrInvalid if key is not active. The snapshot's files
// are not flushed to disk (see the package's crash model). The caller
// unmounts key before: a
// committed snapshot is immutable.
func (s *Snapshotter) Commit(ctx context.Context, name, key string, labels map[string]string) error {
	if err := s.commit(ctx, name, key, nil, labels); err != nil {
		return fmt.Errorf("snapshot: commit %q as %q: %w", key, name, err)
	}
	return nil
}

// CommitWithParent is Commit that also sets the committed snapshot's
// parent. With the overlay driver an active snapshot prepared on the empty
// tree holds exactly the layer applied to it (ApplyLayer never looks at
// the parents), so the layers of an image can be extracted concurrently,
// each into its own snapshot of the empty tree, and stacked as they are
// committed in order. parent must be committed (ErrNotFound, ErrInvalid).
// Giving another parent than the one key was prepared on fails with
// ErrInvalid unless key was prepared on the empty tree with the overlay
// driver: a native snapshot's tree holds its parent's content.
func (s *Snapshotter) CommitWithParent(ctx context.Context, name, key, parent string, labels map[string]string) error {
	if err := s.commit(ctx, name, key, &parent, labels); err != nil {
		return fmt.Errorf("snapshot: commit %q as %q on %q: %w", key, name, parent, err)
	}
	return nil
}

// commit implements Commit, and CommitWithParent when parent is not nil.
func (s *Snapshotter) commit(ctx context.Context, name, key string, parent *string, labels map[string]string) error {
	if err := checkKey(name); err != nil {
		return err
	}
	if parent != nil && *parent != "" {
		if err := checkKey(*parent); err != nil {
			return fmt.Errorf("parent: %w", err)
		}
	}
	if err := checkLabels(labels); err != nil {
		return err
	}
	if err := checkKey(key); err != nil {
		return err
	}
	var r record
	err := s.view(ctx, func(t *txn) error {
		var err error
		if r, err = t.get(key); err != nil {
			return err
		}
		if r.kind() != KindActive {
			return fmt.Errorf("%w: %q is %s, not active", ErrInvalid, key, r.kind())
		}
		// Spare the loser of a race the sync; checked again below.
		if t.exists(name) {
			return fmt.Errorf("%w: %q", ErrAlreadyExists, name)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Wait for an ApplyLayer in progress.
	lock, err := s.lockSnapshot(ctx, key, r.ID)
	if err != nil {
		return err
	}
	defer lock.Close()
	// No syncfs here: the crash model is a killed process, whose writes
	// are in the page cache and reach the disk anyway; flushing a layer's
	// files would cost a pull seconds (DESIGN.md decision 5: fsync blobs
	// and metadata, not every unpacked file).
	fail("commit-locked")
	err = s.update(ctx, func(t *txn) error {
		cur, err := t.get(key)
		if err != nil {
			return err
		}
		if cur.ID != r.ID {
			return fmt.Errorf("%w: %q was removed", ErrNotFound, key)
		}
		if cur.kind() != KindActive {
			return fmt.Errorf("%w: %q is %s, not active", ErrInvalid, key, cur.kind())
		}
		if t.exists(name) {
			return fmt.Errorf("%w: %q", ErrAlreadyExists, name)
		}
		newParent, err := s.commitParent(t, key, cur, parent)
		if err != nil {
			return err
		}
		if err := t.delete(key, cur); err != nil {
			return err
		}
		now := time.Now().UTC()
		return t.put(name, record{
			ID:      cur.ID,
			Parent:  newParent,
			Kind:    KindCommitted.String(),
			Created: now,
			Updated: now,
			Labels:  maps.Clone(labels),
		})
	})
	if err != nil {
		return err
	}
	fail("commit-recorded")
	return nil
}

// commitParent returns the parent the active snapshot key (record cur)
// gets when committed: its own, or the one CommitWithParent asks for.
func (s *Snapshotter) commitParent(t *txn, key string, cur record, parent *string) (string, error) {
	if parent == nil || *parent == cur.Parent {
		return cur.Parent, nil
	}
	if cur.Parent != "" || s.driver != DriverOverlay {
		return "", fmt.Errorf("%w: %q was prepared on %q; only an overlay snapshot of the empty tree can take another parent", ErrInvalid, key, cur.Parent)
	}
	p, err := t.get(*parent)
	if err != nil {
		return "", fmt.Errorf("parent: %w", err)
	}
	if p.kind() != KindCommitted {
		return "", fmt.Errorf("%w: parent %q is %s, not committed", ErrInvalid, *parent, p.kind())
	}
	return *parent, nil
}

// Remove deletes the snapshot key. It fails with ErrHasChildren while
// other snapshots have it as their parent, and with an error wrapping
// unix.EBUSY if something is mounted inside its directory. The record is
// deleted first, then the directory is moved to the trash and deleted; if
// that last step fails the key is gone anyway, and Cleanup retries.
func (s *Snapshotter) Remove(ctx context.Context, key string) error {
	if err := s.remove(ctx, key); err != nil {
		return fmt.Errorf("snapshot: remove %q: %w", key, err)
	}
	return nil
}

func (s *Snapshotter) remove(ctx context.Context, key string) error {
	r, err := s.stat(ctx, key)
	if err != nil {
		return err
	}
	dir := s.dir(r.ID)
	// Wait for an ApplyLayer or Commit in progress; the lock also keeps
	// Cleanup from deleting the directory twice.
	lock, err := s.lockSnapshot(ctx, key, r.ID)
	if errors.Is(err, fs.ErrNotExist) {
		lock = nil // the directory vanished: remove the record alone
	} else if err != nil {
		return err
	} else {
		defer lock.Close()
		mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
		if err != nil {
			return err
		}
		if len(mounts) > 0 {
			return fmt.Errorf("%w: %s is mounted", unix.EBUSY, mounts[0].Mountpoint)
		}
	}
	err = s.update(ctx, func(t *txn) error {
		cur, err := t.get(key)
		if err != nil {
			return err
		}
		if cur.ID != r.ID {
			return fmt.Errorf("%w: %q was removed", ErrNotFound, key)
		}
		if t.hasChildren(key) {
			return fmt.Errorf("%w: %q", ErrHasChildren, key)
		}
		return t.delete(key, cur)
	})
	if err != nil {
		return err
	}
	fail("remove-unrecorded")
	if lock == nil {
		return nil
	}
	trash, err := s.moveToTrash(dir, strconv.FormatUint(r.ID, 10))
	if err != nil {
		return fmt.Errorf("delete data: %w", err)
	}
	fail("remove-trashed")
	if err := removeTree(trash); err != nil {
		return fmt.Errorf("delete data: %w", err)
	}
	return nil
}

// lockSnapshot locks the directory of snapshot key exclusively; its ID was
// id when the caller read it. It fails with ErrNotFound if the snapshot was removed
// while it waited, and with fs.ErrNotExist if the directory is missing.
func (s *Snapshotter) lockSnapshot(ctx context.Context, key string, id uint64) (*os.File, error) {
	lock, err := lockfile.LockDir(ctx, s.dir(id), true)
	if errors.Is(err, lockfile.ErrGone) {
		return nil, fmt.Errorf("%w: %q was removed", ErrNotFound, key)
	}
	if err != nil {
		return nil, fmt.Errorf("lock %q: %w", key, err)
	}
	return lock, nil
}

// Stat returns the snapshot key's information.
func (s *Snapshotter) Stat(ctx context.Context, key string) (Info, error) {
	r, err := s.stat(ctx, key)
	if err != nil {
		return Info{}, fmt.Errorf("snapshot: stat %q: %w", key, err)
	}
	return r.info(key), nil
}

func (s *Snapshotter) stat(ctx context.Context, key string) (record, error) {
	if err := checkKey(key); err != nil {
		return record{}, err
	}
	var r record
	err := s.view(ctx, func(t *txn) error {
		var err error
		r, err = t.get(key)
		return err
	})
	return r, err
}

// Update changes the labels of the snapshot info.Key (the only mutable
// field) and returns its new information. Without fieldpaths, or with
// "labels", the labels become info.Labels; "labels.<name>" sets that one
// label to its value in info.Labels, or deletes it if absent there.
func (s *Snapshotter) Update(ctx context.Context, info Info, fieldpaths ...string) (Info, error) {
	var out Info
	err := func() error {
		if err := checkKey(info.Key); err != nil {
			return err
		}
		if err := checkLabels(info.Labels); err != nil {
			return err
		}
		for _, fp := range fieldpaths {
			if fp != "labels" && (!strings.HasPrefix(fp, "labels.") || fp == "labels.") {
				return fmt.Errorf("%w: cannot update field %q", ErrInvalid, fp)
			}
		}
		return s.update(ctx, func(t *txn) error {
			r, err := t.get(info.Key)
			if err != nil {
				return err
			}
			labels := maps.Clone(r.Labels)
			if labels == nil {
				labels = make(map[string]string)
			}
			if len(fieldpaths) == 0 {
				labels = maps.Clone(info.Labels)
			}
			for _, fp := range fieldpaths {
				if fp == "labels" {
					labels = maps.Clone(info.Labels)
					if labels == nil {
						labels = make(map[string]string)
					}
					continue
				}
				name := strings.TrimPrefix(fp, "labels.")
				if v, ok := info.Labels[name]; ok {
					labels[name] = v
				} else {
					delete(labels, name)
				}
			}
			if len(labels) == 0 {
				labels = nil
			}
			r.Labels = labels
			r.Updated = time.Now().UTC()
			if err := t.put(info.Key, r); err != nil {
				return err
			}
			out = r.info(info.Key)
			return nil
		})
	}()
	if err != nil {
		return Info{}, fmt.Errorf("snapshot: update %q: %w", info.Key, err)
	}
	return out, nil
}

// Walk calls fn for every snapshot, in key order. fn runs after the
// metadata was read and released, so it may call the Snapshotter; an error
// from fn stops the walk and is returned as is.
func (s *Snapshotter) Walk(ctx context.Context, fn func(Info) error) error {
	var infos []Info
	err := s.view(ctx, func(t *txn) error {
		return t.each(func(key string, r record) error {
			infos = append(infos, r.info(key))
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("snapshot: walk: %w", err)
	}
	for _, info := range infos {
		if err := fn(info); err != nil {
			return err
		}
	}
	return nil
}

// Usage returns the disk space taken by the snapshot key's own directory:
// the overlay upper and work directories, or the native driver's full
// copy. Parents are not counted.
func (s *Snapshotter) Usage(ctx context.Context, key string) (Usage, error) {
	r, err := s.stat(ctx, key)
	if err != nil {
		return Usage{}, fmt.Errorf("snapshot: usage of %q: %w", key, err)
	}
	u, err := diskUsage(ctx, s.dir(r.ID))
	if err != nil {
		return Usage{}, fmt.Errorf("snapshot: usage of %q: %w", key, err)
	}
	return u, nil
}

// ApplyLayer extracts the uncompressed layer tar r into the active snapshot
// key and returns the number of bytes of file content written. With the
// overlay driver the layer goes into the upper directory with overlay
// whiteouts (nothing is mounted); with the native driver it is applied onto
// the full copy of the parent, deletions performed. Commit and Remove of
// key wait for it. On error the snapshot holds a partial layer: remove it.
func (s *Snapshotter) ApplyLayer(ctx context.Context, key string, r io.Reader) (int64, error) {
	n, err := s.applyLayer(ctx, key, r)
	if err != nil {
		return n, fmt.Errorf("snapshot: apply layer to %q: %w", key, err)
	}
	return n, nil
}

func (s *Snapshotter) applyLayer(ctx context.Context, key string, r io.Reader) (int64, error) {
	rec, err := s.stat(ctx, key)
	if err != nil {
		return 0, err
	}
	if rec.kind() != KindActive {
		return 0, fmt.Errorf("%w: %q is %s, not active", ErrInvalid, key, rec.kind())
	}
	lock, err := s.lockSnapshot(ctx, key, rec.ID)
	if err != nil {
		return 0, err
	}
	defer lock.Close()
	// It may have been committed while we waited for the lock.
	cur, err := s.stat(ctx, key)
	if err != nil {
		return 0, err
	}
	if cur.ID != rec.ID {
		return 0, fmt.Errorf("%w: %q was removed", ErrNotFound, key)
	}
	if cur.kind() != KindActive {
		return 0, fmt.Errorf("%w: %q is %s, not active", ErrInvalid, key, cur.kind())
	}
	opts := archive.ApplyOptions{Whiteouts: archive.WhiteoutNative}
	if s.driver == DriverOverlay {
		opts.Whiteouts = archive.WhiteoutOverlay
	}
	return archive.Apply(ctx, s.fsDir(rec.ID), r, opts)
}
