package snapshot

import (
	"errors"
	"fmt"
	"time"
)

// Kind is the state of a snapshot.
type Kind int

const (
	// KindActive is a writable snapshot, prepared on top of a committed
	// parent, that can be committed once its content is complete.
	KindActive Kind = iota
	// KindView is a read-only snapshot of a committed parent.
	KindView
	// KindCommitted is an immutable snapshot that can be the parent of
	// others.
	KindCommitted
)

// String returns "active", "view" or "committed".
func (k Kind) String() string {
	switch k {
	case KindActive:
		return "active"
	case KindView:
		return "view"
	case KindCommitted:
		return "committed"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// parseKind is the inverse of Kind.String.
func parseKind(s string) (Kind, error) {
	for _, k := range []Kind{KindActive, KindView, KindCommitted} {
		if k.String() == s {
			return k, nil
		}
	}
	return 0, fmt.Errorf("unknown snapshot kind %q", s)
}

// Info describes a snapshot.
type Info struct {
	// Key names the snapshot; keys of all kinds share one namespace.
	Key string
	// Parent is the key of the committed snapshot this one is based on, or
	// "" for a snapshot of the empty tree.
	Parent string
	// Kind is the snapshot's state.
	Kind Kind
	// Created is when the snapshot was prepared, or committed for a
	// committed snapshot.
	Created time.Time
	// Updated is when the snapshot's metadata last changed.
	Updated time.Time
	// Labels are free-form metadata (garbage collection references, the
	// digest of the layer it holds...).
	Labels map[string]string
}

// Usage is the disk space a snapshot takes on its own, without its parents.
type Usage struct {
	// Size is the number of bytes allocated on disk (st_blocks, so sparse
	// files count for their allocated blocks only).
	Size int64
	// Inodes is the number of distinct inodes (hard links count once).
	Inodes int64
}

// Mount describes one mount(2) call that makes a snapshot's tree visible.
type Mount struct {
	// Type is the filesystem type: "overlay" or "bind".
	Type string
	// Source is the device or directory to mount.
	Source string
	// Options are mount flags ("ro", "rw", "bind"...) and filesystem
	// options ("lowerdir=...").
	Options []string
}

// Errors returned (wrapped) by the Snapshotter. Test them with errors.Is.
var (
	// ErrNotFound: the key (or the parent) does not exist.
	ErrNotFound = errors.New("snapshot not found")
	// ErrAlreadyExists: the key (or the name given to Commit) is taken.
	ErrAlreadyExists = errors.New("snapshot already exists")
	// ErrHasChildren: the snapshot is the parent of other snapshots and
	// cannot be removed before them.
	ErrHasChildren = errors.New("snapshot has children")
	// ErrInvalid: the operation does not fit the snapshot's kind (commit
	// of a view, parent that is not committed...) or an argument is
	// malformed (empty key, unknown driver or field path...).
	ErrInvalid = errors.New("invalid snapshot argument")
	// ErrDriverMismatch: the root was created with another driver than
	// the one asked for.
	ErrDriverMismatch = errors.New("snapshot root uses another driver")
	// ErrUnsupportedVersion: the root was written in an on-disk format
	// this version of berth does not know (a newer one).
	ErrUnsupportedVersion = errors.New("unsupported snapshot root format version")
)
