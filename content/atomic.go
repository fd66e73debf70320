package content

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// writeAtomic replaces path with data so that readers (and a process that
// crashes) see the old or the new content, never a mix. The temporary file is
// created in <root>/tmp named "<pid>-<random>" so that Open can tell a
// crashed writer's leftovers (dead pid) from a live writer's file. With
// durable set the file is fsynced before the rename and the directory after
// it; without, the write is atomic against a killed process only.
func (s *Store) writeAtomic(path string, data []byte, durable bool) error {
	f, err := os.CreateTemp(filepath.Join(s.root, "tmp"), strconv.Itoa(os.Getpid())+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	if durable {
		if err := f.Sync(); err != nil {
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	fire("atomic-temp-written")
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	if durable {
		return syncDir(filepath.Dir(path))
	}
	return nil
}

// syncDir fsyncs a directory, making the names created or removed in it
// durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// cleanTmp removes the temporary files in <root>/tmp whose creating process
// no longer exists: atomic writes interrupted by a crash. A file of a live
// process (or of a process that reused a dead writer's pid, which only
// delays the cleanup) is left alone. Processes sharing a store must share a
// pid namespace for this to be safe.
func (s *Store) cleanTmp() error {
	dir := filepath.Join(s.root, "tmp")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		pidStr, _, found := strings.Cut(e.Name(), "-")
		pid, err := strconv.Atoi(pidStr)
		if !found || err != nil || pid <= 0 {
			continue // not ours
		}
		if pid == os.Getpid() || processAlive(pid) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// processAlive reports whether a process with the given pid exists.
func processAlive(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}
