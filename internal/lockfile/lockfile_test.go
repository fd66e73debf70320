package lockfile

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestLockExcludes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	tests := []struct {
		name           string
		first, second  bool // exclusive?
		secondMustWait bool
	}{
		{"shared+shared", false, false, false},
		{"shared+exclusive", false, true, true},
		{"exclusive+shared", true, false, true},
		{"exclusive+exclusive", true, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := Lock(context.Background(), path, tt.first)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
			defer cancel()
			b, err := Lock(ctx, path, tt.second)
			if tt.secondMustWait {
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("second lock: err = %v, want a deadline error", err)
				}
			} else if err != nil {
				t.Fatalf("second lock: %v", err)
			} else {
				b.Close()
			}
			// Released by Close: now the second lock is granted at once.
			a.Close()
			b, err = Lock(context.Background(), path, tt.second)
			if err != nil {
				t.Fatal(err)
			}
			b.Close()
		})
	}
}

func TestLockWaitsThenGets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	a, err := Lock(context.Background(), path, true)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(20 * time.Millisecond)
		a.Close()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b, err := Lock(ctx, path, true)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	b.Close()
}

func TestLockDirGone(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "d")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	holder, err := LockDir(context.Background(), dir, true)
	if err != nil {
		t.Fatal(err)
	}
	if f, err := TryLockDir(dir, true); err != nil || f != nil {
		t.Fatalf("TryLockDir of a held directory = %v, %v; want nil, nil", f, err)
	}
	done := make(chan error, 1)
	go func() {
		f, err := LockDir(context.Background(), dir, true)
		if f != nil {
			f.Close()
		}
		done <- err
	}()
	time.Sleep(10 * time.Millisecond)
	// The holder renames the directory away and releases it: the waiter's
	// lock must not count.
	if err := os.Rename(dir, filepath.Join(root, "trash")); err != nil {
		t.Fatal(err)
	}
	holder.Close()
	if err := <-done; !errors.Is(err, ErrGone) {
		t.Fatalf("LockDir of a removed directory: %v, want ErrGone", err)
	}
	if _, err := LockDir(context.Background(), dir, false); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("LockDir of a missing directory: %v, want ErrNotExist", err)
	}
	if f, err := TryLockDir(dir, true); err != nil || f != nil {
		t.Fatalf("TryLockDir of a missing directory = %v, %v; want nil, nil", f, err)
	}
}
