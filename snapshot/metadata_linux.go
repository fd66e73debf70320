package snapshot

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/berth-engine/berth/internal/lockfile"
)

// Metadata layout in metadata.db:
//
//	snapshots/<key>               JSON record (see record)
//	snapshots sequence            the last snapshot ID handed out
//	children/<parent>\x00<child>  empty: an index of the parent relation, so
//	                              that Remove finds children without a scan
const (
	bucketSnapshots = "snapshots"
	bucketChildren  = "children"
)

// dbLockTimeout bounds the wait for bbolt's own flock of metadata.db. The
// metadata lock file serialises berth's users of the database, so bbolt
// only waits here for a foreign process (a debugging tool) holding it.
const dbLockTimeout = 10 * time.Second

// Limits on names and labels, so that a record stays small.
const (
	maxKeyLen   = 4096
	maxLabelLen = 4096 // a label's key plus value
)

// record is the persisted form of a snapshot.
type record struct {
	// ID names the snapshot's directory, snapshots/<ID>. IDs are never
	// reused, and Commit keeps the ID of the active snapshot.
	ID      uint64            `json:"id"`
	Parent  string            `json:"parent,omitempty"`
	Kind    string            `json:"kind"`
	Created time.Time         `json:"created"`
	Updated time.Time         `json:"updated"`
	Labels  map[string]string `json:"labels,omitempty"`
}

func (r record) kind() Kind {
	k, _ := parseKind(r.Kind) // validated by txn.get
	return k
}

func (r record) info(key string) Info {
	return Info{
		Key:     key,
		Parent:  r.Parent,
		Kind:    r.kind(),
		Created: r.Created,
		Updated: r.Updated,
		Labels:  maps.Clone(r.Labels),
	}
}

// withDB runs fn with the metadata database open, holding the metadata lock
// exclusively (read-write database) or shared (read-only database) for the
// duration. fn must be short: every other operation on the root waits.
func (s *Snapshotter) withDB(ctx context.Context, exclusive bool, fn func(*bolt.DB) error) (err error) {
	lock, err := lockfile.Lock(ctx, s.path(lockFileName), exclusive)
	if err != nil {
		return err
	}
	defer lock.Close()
	db, err := bolt.Open(s.path(dbFileName), 0o600, &bolt.Options{Timeout: dbLockTimeout, ReadOnly: !exclusive})
	if err != nil {
		return fmt.Errorf("open metadata: %w", err)
	}
	defer func() {
		if cerr := db.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close metadata: %w", cerr)
		}
	}()
	return fn(db)
}

// update runs fn in a read-write transaction, committed if fn succeeds.
func (s *Snapshotter) update(ctx context.Context, fn func(*txn) error) error {
	return s.withDB(ctx, true, func(db *bolt.DB) error {
		return db.Update(func(tx *bolt.Tx) error {
			t, err := newTxn(tx)
			if err != nil {
				return err
			}
			return fn(t)
		})
	})
}

// view runs fn in a read-only transaction.
func (s *Snapshotter) view(ctx context.Context, fn func(*txn) error) error {
	return s.withDB(ctx, false, func(db *bolt.DB) error {
		return db.View(func(tx *bolt.Tx) error {
			t, err := newTxn(tx)
			if err != nil {
				return err
			}
			return fn(t)
		})
	})
}

// initBuckets creates the buckets of a new database.
func initBuckets(tx *bolt.Tx) error {
	for _, name := range []string{bucketSnapshots, bucketChildren} {
		if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	return nil
}

// txn wraps a bbolt transaction with the snapshot record operations.
type txn struct {
	snapshots *bolt.Bucket
	children  *bolt.Bucket
}

func newTxn(tx *bolt.Tx) (*txn, error) {
	t := &txn{
		snapshots: tx.Bucket([]byte(bucketSnapshots)),
		children:  tx.Bucket([]byte(bucketChildren)),
	}
	if t.snapshots == nil || t.children == nil {
		return nil, fmt.Errorf("metadata database lacks its buckets")
	}
	return t, nil
}

// get returns the record of key, or an error wrapping ErrNotFound.
func (t *txn) get(key string) (record, error) {
	v := t.snapshots.Get([]byte(key))
	if v == nil {
		return record{}, fmt.Errorf("%w: %q", ErrNotFound, key)
	}
	var r record
	if err := json.Unmarshal(v, &r); err != nil {
		return record{}, fmt.Errorf("decode record of %q: %w", key, err)
	}
	if _, err := parseKind(r.Kind); err != nil {
		return record{}, fmt.Errorf("decode record of %q: %w", key, err)
	}
	return r, nil
}

func (t *txn) exists(key string) bool {
	return t.snapshots.Get([]byte(key)) != nil
}

// put writes the record of key and, if it has a parent, its children index
// entry.
func (t *txn) put(key string, r record) error {
	v, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode record of %q: %w", key, err)
	}
	if err := t.snapshots.Put([]byte(key), v); err != nil {
		return fmt.Errorf("write record of %q: %w", key, err)
	}
	if r.Parent != "" {
		if err := t.children.Put(childKey(r.Parent, key), nil); err != nil {
			return fmt.Errorf("write children index of %q: %w", r.Parent, err)
		}
	}
	return nil
}

// delete removes the record of key and its children index entry.
func (t *txn) delete(key string, r record) error {
	if err := t.snapshots.Delete([]byte(key)); err != nil {
		return fmt.Errorf("delete record of %q: %w", key, err)
	}
	if r.Parent != "" {
		if err := t.children.Delete(childKey(r.Parent, key)); err != nil {
			return fmt.Errorf("delete children index of %q: %w", r.Parent, err)
		}
	}
	return nil
}

// hasChildren reports whether any snapshot has key as its parent.
func (t *txn) hasChildren(key string) bool {
	prefix := childKey(key, "")
	k, _ := t.children.Cursor().Seek(prefix)
	return k != nil && bytes.HasPrefix(k, prefix)
}

// nextID hands out a new snapshot ID. The sequence is persisted with the
// transaction, so an ID is never handed out twice.
func (t *txn) nextID() (uint64, error) {
	id, err := t.snapshots.NextSequence()
	if err != nil {
		return 0, fmt.Errorf("allocate snapshot ID: %w", err)
	}
	return id, nil
}

// lowerIDs returns the IDs of parent and its ancestors, nearest first.
func (t *txn) lowerIDs(parent string) ([]uint64, error) {
	var ids []uint64
	for key := parent; key != ""; {
		r, err := t.get(key)
		if err != nil {
			return nil, fmt.Errorf("ancestor of %q: %w", parent, err)
		}
		ids = append(ids, r.ID)
		key = r.Parent
	}
	return ids, nil
}

// each calls fn for every snapshot, in key order.
func (t *txn) each(fn func(key string, r record) error) error {
	return t.snapshots.ForEach(func(k, _ []byte) error {
		r, err := t.get(string(k))
		if err != nil {
			return err
		}
		return fn(string(k), r)
	})
}

func childKey(parent, child string) []byte {
	return []byte(parent + "\x00" + child)
}

// checkKey validates a snapshot key: non-empty, no NUL byte (the children
// index uses it as a separator), at most maxKeyLen bytes.
func checkKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: empty key", ErrInvalid)
	case len(key) > maxKeyLen:
		return fmt.Errorf("%w: key longer than %d bytes", ErrInvalid, maxKeyLen)
	case strings.IndexByte(key, 0) >= 0:
		return fmt.Errorf("%w: key %q contains a NUL byte", ErrInvalid, key)
	}
	return nil
}

// checkLabels validates labels: non-empty keys, key plus value at most
// maxLabelLen bytes.
func checkLabels(labels map[string]string) error {
	for k, v := range labels {
		if k == "" {
			return fmt.Errorf("%w: empty label key", ErrInvalid)
		}
		if len(k)+len(v) > maxLabelLen {
			return fmt.Errorf("%w: label %q longer than %d bytes", ErrInvalid, k, maxLabelLen)
		}
	}
	return nil
}
