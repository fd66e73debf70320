//go:build linux

package archive

import (
	"errors"
	"fmt"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// openat2 is tried first; if the kernel lacks it (ENOSYS), pathrs-lite's
// userspace resolver is used instead.
var (
	noOpenat2     bool
	noOpenat2Once sync.Once
)

// resolveDir opens rel (a cleaned, relative path; "" is the root) inside
// the directory root, following symlinks as if rootfd were "/", and
// returns an O_PATH descriptor of the directory it names. The errno (ENOENT,
// ENOTDIR, ELOOP, ...) is returned as is.
func resolveDir(root *os.File, rel string) (int, error) {
	rootfd := int(root.Fd())
	if rel == "" {
		return unix.Openat(rootfd, ".", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	}
	noOpenat2Once.Do(func() {
		_, err := unix.Openat2(-1, "", &unix.OpenHow{})
		noOpenat2 = errors.Is(err, unix.ENOSYS)
	})
	if !noOpenat2 {
		how := &unix.OpenHow{
			Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
		}
		for i := 0; ; i++ {
			fd, err := unix.Openat2(rootfd, rel, how)
			// EAGAIN: a concurrent rename somewhere on the
			// filesystem; the kernel asks us to retry.
			if errors.Is(err, unix.EAGAIN) && i < 32 {
				continue
			}
			return fd, err
		}
	}
	f, err := pathrs.OpenatInRoot(root, rel)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return -1, pe.Err
		}
		return -1, err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return -1, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return -1, unix.ENOTDIR
	}
	return unix.Dup(int(f.Fd()))
}

// splitRel splits a cleaned relative path into its parent ("" for the
// root) and its last component.
func splitRel(rel string) (parent, base string) {
	i := strings.LastIndexByte(rel, '/')
	if i < 0 {
		return "", rel
	}
	return rel[:i], rel[i+1:]
}

// joinRel joins a cleaned relative parent and a single component.
func joinRel(parent, base string) string {
	if parent == "" {
		return base
	}
	return parent + "/" + base
}

// readDirNames returns the sorted names in the directory dirfd (which may be
// an O_PATH descriptor), without "." and "..".
func readDirNames(dirfd int) ([]string, error) {
	fd, err := unix.Openat(dirfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open directory: %w", err)
	}
	f := os.NewFile(uintptr(fd), "dir")
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("read directory: %w", err)
	}
	sort.Strings(names)
	return names, nil
}

// removeAllAt removes name (and, for a directory, everything below it) from
// the directory dirfd, never following symlinks. parentDev is the st_dev of
// dirfd: a directory on another device is a mount point and is refused.
func removeAllAt(dirfd int, name string, parentDev uint64) error {
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("stat %q: %w", name, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		if err := unix.Unlinkat(dirfd, name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("unlink %q: %w", name, err)
		}
		return nil
	}
	if st.Dev != parentDev {
		return fmt.Errorf("remove %q: refusing to remove a mount point", name)
	}
	fd, err := unix.Openat(dirfd, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %q: %w", name, err)
	}
	defer unix.Close(fd)
	names, err := readDirNames(fd)
	if err != nil {
		return fmt.Errorf("%q: %w", name, err)
	}
	for _, n := range names {
		if err := removeAllAt(fd, n, st.Dev); err != nil {
			return fmt.Errorf("%q/%w", name, err)
		}
	}
	if err := unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("rmdir %q: %w", name, err)
	}
	return nil
}

// procPath names the entry name of the directory dirfd through
// /proc/self/fd, for the few system calls (lsetxattr, llistxattr,
// lgetxattr) that have no *at form. The final component is not followed by
// the l* calls.
func procPath(dirfd int, name string) string {
	return "/proc/self/fd/" + strconv.Itoa(dirfd) + "/" + name
}

// lstatat is unix.Fstatat without following the final component.
func lstatat(dirfd int, name string) (unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	return st, err
}

// cleanRel cleans a name from an archive into a path relative to the root.
// Absolute names are contained (treated as relative to the root); names
// that climb above the root are rejected with ErrBreakout. "" is the root.
func cleanRel(name string) (string, error) {
	if strings.HasPrefix(name, "/") {
		// A rooted path cannot climb above "/" once cleaned.
		p := path.Clean(name)
		return strings.TrimLeft(p, "/"), nil
	}
	p := path.Clean(name)
	if p == ".." || strings.HasPrefix(p, "../") {
		return "", ErrBreakout
	}
	if p == "." {
		return "", nil
	}
	return p, nil
}
