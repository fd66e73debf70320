package image

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berth-engine/berth/internal/atomicfile"
	"github.com/berth-engine/berth/internal/lockfile"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// A lease protects the blobs and snapshots an operation (pull, load,
// import, push) is about to create or use from a concurrent garbage
// collection, until the operation has recorded the image that references
// them, or failed.
//
// It is a file <root>/leases/<pid>-<random>.json listing the resources,
// flock(2)ed by its owner for its whole life: a lease whose lock is free
// belongs to a dead process and is ignored and removed by GC. Adding to a
// lease happens under a shared lock of <root>/gc.lock and GC's mark and
// sweep run under the exclusive lock, so a resource is either in a lease GC
// reads, or added after the sweep (and its owner then sees the sweep's
// result when it checks for the resource, which it does after adding it).
type lease struct {
	mu    sync.Mutex
	s     *Store
	path  string
	lock  *os.File
	state leaseState
}

type leaseState struct {
	Content   []digest.Digest `json:"content,omitempty"`
	Snapshots []string        `json:"snapshots,omitempty"`
}

func (s *Store) newLease() (*lease, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	path := filepath.Join(s.root, "leases", strconv.Itoa(os.Getpid())+"-"+hex.EncodeToString(b[:])+".json")
	// Lock under a temporary name, then rename: GC takes an unlocked
	// lease file for a dead owner's, so the file must never be visible
	// under its final name before it is locked.
	tmp := strings.TrimSuffix(path, ".json") + ".new"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create lease: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("lock lease: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		f.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("create lease: %w", err)
	}
	return &lease{s: s, path: path, lock: f}, nil
}

// add records resources in the lease (durably enough for a GC in another
// process to see them) before the caller creates or checks them.
func (l *lease) add(ctx context.Context, blobs []digest.Digest, snaps []string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	unlock, err := l.s.gcLock(ctx, false)
	if err != nil {
		return err
	}
	defer unlock()
	l.state.Content = append(l.state.Content, blobs...)
	l.state.Snapshots = append(l.state.Snapshots, snaps...)
	data, err := json.Marshal(l.state)
	if err != nil {
		return err
	}
	// The lock is on the lease file's inode; the data goes to a sibling
	// file so that a reader never sees a partial write.
	if err := atomicfile.WriteFile(l.path+".data", data, 0o600); err != nil {
		return fmt.Errorf("update lease: %w", err)
	}
	return nil
}

// release ends the lease.
func (l *lease) release() {
	os.Remove(l.path + ".data")
	os.Remove(l.path)
	l.lock.Close()
}

// liveLeases returns the union of the resources of leases whose owner is
// alive, and removes the files of dead ones. Called under the exclusive GC
// lock.
func (s *Store) liveLeases() (leaseState, error) {
	var all leaseState
	dir := filepath.Join(s.root, "leases")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return all, err
	}
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, ".json") {
			if info, err := e.Info(); err == nil && strings.HasSuffix(name, ".new") && time.Since(info.ModTime()) > time.Minute {
				// Left by a crash between creating and renaming a
				// lease (a young one may not be locked yet).
				removeIfUnlocked(filepath.Join(dir, name))
			}
			if strings.HasSuffix(name, ".data") {
				if _, err := os.Stat(filepath.Join(dir, strings.TrimSuffix(name, ".data"))); errors.Is(err, os.ErrNotExist) {
					os.Remove(filepath.Join(dir, name))
				}
			}
			continue
		}
		path := filepath.Join(dir, name)
		f, err := os.OpenFile(path, os.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			continue
		}
		if unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB) == nil {
			// Nobody holds it: the owner died.
			os.Remove(path + ".data")
			os.Remove(path)
			f.Close()
			continue
		}
		f.Close()
		data, err := os.ReadFile(path + ".data")
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return all, err
		}
		var st leaseState
		if err := json.Unmarshal(data, &st); err != nil {
			return all, fmt.Errorf("lease %s: %w", name, err)
		}
		all.Content = append(all.Content, st.Content...)
		all.Snapshots = append(all.Snapshots, st.Snapshots...)
	}
	return all, nil
}

// removeIfUnlocked removes path unless a process holds a lock on it.
func removeIfUnlocked(path string) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	defer f.Close()
	if unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB) == nil {
		os.Remove(path)
	}
}

// gcLock takes <root>/gc.lock, shared or exclusive, waiting for ctx.
func (s *Store) gcLock(ctx context.Context, exclusive bool) (func(), error) {
	f, err := lockfile.Lock(ctx, filepath.Join(s.root, "gc.lock"), exclusive)
	if err != nil {
		return nil, fmt.Errorf("gc lock: %w", err)
	}
	return func() { f.Close() }, nil
}
