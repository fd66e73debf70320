package snapshot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// flock applies how (LOCK_SH, LOCK_EX or LOCK_UN) to fd, waiting until the
// lock is granted or ctx is done. flock(2) itself cannot be interrupted, so
// a cancellable ctx is served by polling with LOCK_NB, the delay growing from
// 200µs to 20ms; a ctx that can never be cancelled blocks in the kernel.
func flock(ctx context.Context, fd int, how int) error {
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
		ok, err := tryFlock(fd, how)
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

// tryFlock applies how to fd without waiting and reports whether the lock
// was granted.
func tryFlock(fd int, how int) (bool, error) {
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

// lockFile opens (creating it if needed) the lock file at path and locks it,
// shared or exclusive. Closing the returned file releases the lock.
func lockFile(ctx context.Context, path string, exclusive bool) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	if err := flock(ctx, int(f.Fd()), how); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}

// errDirGone: the directory was renamed or removed while lockDir waited.
var errDirGone = errors.New("directory removed while waiting for its lock")

// lockDir opens the directory at path and flocks it (LOCK_SH or LOCK_EX),
// waiting for the lock. A snapshot directory is locked by whoever creates,
// fills, commits or removes it, so that Cleanup never deletes work in
// progress. Remove renames a directory to the trash while holding its lock,
// so once the lock is granted lockDir checks that path still names the
// directory it locked, and fails with errDirGone otherwise (or
// fs.ErrNotExist when path does not exist to begin with).
func lockDir(ctx context.Context, path string, how int) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := flock(ctx, int(f.Fd()), how); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	held, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	now, err := os.Lstat(path)
	if err != nil || !os.SameFile(held, now) {
		f.Close()
		return nil, errDirGone
	}
	return f, nil
}

// tryLockDir is lockDir (exclusive) without waiting: it returns nil, nil
// when another holder has the lock or the directory is gone.
func tryLockDir(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	ok, err := tryFlock(int(f.Fd()), unix.LOCK_EX)
	if err != nil || !ok {
		f.Close()
		return nil, err
	}
	held, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if now, err := os.Lstat(path); err != nil || !os.SameFile(held, now) {
		f.Close()
		return nil, nil
	}
	return f, nil
}
