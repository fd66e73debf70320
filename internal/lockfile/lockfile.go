// Package lockfile holds the flock(2) helpers berth's stores share: every
// store is used by several processes at once (there is no daemon), and each
// serialises its changes with advisory locks on files or directories under
// its root.
//
// flock(2) cannot be interrupted by a context, so a wait that must honour
// cancellation polls with LOCK_NB and a delay that grows from 200µs to
// 20ms; a context that can never be cancelled blocks in the kernel instead.
// Locks belong to the open file description: closing the returned *os.File
// releases them, and so does the death of the process.
package lockfile

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// ErrGone reports that the directory or file being locked was removed or
// replaced while the lock was awaited: a lock on it protects nothing.
var ErrGone = errors.New("lock target removed while waiting for its lock")

// Flock applies how (unix.LOCK_SH, LOCK_EX or LOCK_UN) to fd, waiting until
// the lock is granted or ctx is done (then the error wraps ctx.Err()).
func Flock(ctx context.Context, fd int, how int) error {
	if ctx.Done() == nil {
		for {
			err := unix.Flock(fd, how)
			if err != unix.EINTR {
				return err
			}
		}
	}
	delay := 200 * time.Microsecond
	for {
		ok, err := TryFlock(fd, how)
		if err != nil || ok {
			return err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		delay = min(2*delay, 20*time.Millisecond)
	}
}

// TryFlock applies how to fd without waiting and reports whether the lock
// was granted.
func TryFlock(fd int, how int) (bool, error) {
	for {
		err := unix.Flock(fd, how|unix.LOCK_NB)
		switch err {
		case nil:
			return true, nil
		case unix.EWOULDBLOCK:
			return false, nil
		case unix.EINTR:
			continue
		}
		return false, err
	}
}

// Lock opens the lock file at path, creating it (mode 0600) when missing,
// and locks it, shared or exclusive, waiting for ctx. The file is never
// removed by this package, so a lock taken on it stays meaningful. Closing
// the returned file releases the lock.
func Lock(ctx context.Context, path string, exclusive bool) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := Flock(ctx, int(f.Fd()), mode(exclusive)); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}

// LockDir opens the directory at path and locks it, shared or exclusive,
// waiting for ctx. Stores that delete a directory while holding its lock
// (renaming it away first) make a lock granted afterwards worthless, so
// LockDir checks that path still names the directory it locked and fails
// with ErrGone otherwise (with fs.ErrNotExist when path is missing to begin
// with).
func LockDir(ctx context.Context, path string, exclusive bool) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := Flock(ctx, int(f.Fd()), mode(exclusive)); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := stillNamed(f, path); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// TryLockDir is LockDir without waiting: it returns nil, nil when another
// holder has the lock or the directory is gone.
func TryLockDir(path string, exclusive bool) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	ok, err := TryFlock(int(f.Fd()), mode(exclusive))
	if err != nil || !ok {
		f.Close()
		return nil, err
	}
	if stillNamed(f, path) != nil {
		f.Close()
		return nil, nil
	}
	return f, nil
}

// stillNamed checks that path names the file f has open.
func stillNamed(f *os.File, path string) error {
	held, err := f.Stat()
	if err != nil {
		return err
	}
	now, err := os.Lstat(path)
	if err != nil || !os.SameFile(held, now) {
		return ErrGone
	}
	return nil
}

func mode(exclusive bool) int {
	if exclusive {
		return unix.LOCK_EX
	}
	return unix.LOCK_SH
}
