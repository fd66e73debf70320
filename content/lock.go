package content

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-engine/berth/internal/lockfile"
)

const lockFileName = "lock"

// tryLockDir tries once to take the exclusive lock of the ingest directory
// dir. It returns the locked lock file, or nil if another holder has it.
// When create is false and dir does not exist it fails with ErrNotFound.
//
// The lock file is removed, with its directory, by the holder that finishes
// the ingest, so a lock obtained on a file that has since been unlinked is
// worthless: after locking, the open file is compared with what the path
// names now, and on a mismatch the attempt starts over.
func tryLockDir(dir string, create bool) (*os.File, error) {
	path := filepath.Join(dir, lockFileName)
	for {
		if create {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, err
			}
		}
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				if !create {
					return nil, ErrNotFound
				}
				continue // the directory was removed under us
			}
			return nil, err
		}
		ok, err := lockfile.TryFlock(int(f.Fd()), unix.LOCK_EX)
		if err != nil || !ok {
			f.Close()
			if err != nil {
				return nil, fmt.Errorf("flock %s: %w", path, err)
			}
			return nil, nil
		}
		held, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, err
		}
		now, err := os.Lstat(path)
		if err == nil && os.SameFile(held, now) {
			return f, nil
		}
		f.Close()
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		if !create {
			if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
				return nil, ErrNotFound
			}
		}
	}
}

// errPresent: lockDir stopped waiting because its caller's condition holds.
var errPresent = errors.New("condition met while waiting for the lock")

// lockDir takes the exclusive lock of the ingest directory dir, waiting while
// another holder has it. flock cannot be interrupted, so it polls, with a
// delay growing from 1ms to 50ms. When ctx ends first the error wraps both
// ErrLocked and ctx.Err(). If stop is not nil and returns true while it
// waits, lockDir gives up with errPresent.
func lockDir(ctx context.Context, dir string, create bool, stop func() bool) (*os.File, error) {
	delay := time.Millisecond
	for {
		f, err := tryLockDir(dir, create)
		if err != nil || f != nil {
			return f, err
		}
		if stop != nil && stop() {
			return nil, errPresent
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%w: %w", ErrLocked, ctx.Err())
		case <-t.C:
		}
		delay = min(2*delay, 50*time.Millisecond)
	}
}

// lockStripe takes the blocking exclusive lock at path (a lock file that is
// never removed). Holders keep it for a few file operations only.
func lockStripe(path string) (*os.File, error) {
	return lockfile.Lock(context.Background(), path, true)
}
