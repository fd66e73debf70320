package snapshot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// Trees are walked with file descriptors (openat, fstatat, mkdirat...)
// rather than joined paths: no symbolic link is ever followed, whatever a
// layer put in the tree, and depth is not limited by PATH_MAX.

// openDirAt opens the directory name in dirfd without following a symlink.
func openDirAt(dirfd int, name string) (*os.File, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "openat", Path: name, Err: err}
	}
	return os.NewFile(uintptr(fd), name), nil
}

// openParent opens the parent directory of p and returns it with p's base
// name, so that p itself can be handled like any entry of a directory.
func openParent(p string) (*os.File, string, error) {
	dir, err := os.OpenFile(filepath.Dir(p), os.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, "", err
	}
	return dir, filepath.Base(p), nil
}

// inodeID identifies an inode, to find hard links.
type inodeID struct{ dev, ino uint64 }

// copyTree copies the tree at src into the existing, empty directory dst,
// preserving file types, content, owners, modes (setuid and sticky bits
// included), extended attributes, access and modification times, and hard
// links; device nodes, fifos and sockets are recreated with mknod. File
// content is cloned (reflink) where the filesystem can, else copied in the
// kernel with copy_file_range, else read and written. The metadata of src
// itself is copied onto dst.
func copyTree(ctx context.Context, src, dst string) error {
	srcParent, srcName, err := openParent(src)
	if err != nil {
		return err
	}
	defer srcParent.Close()
	dstParent, dstName, err := openParent(dst)
	if err != nil {
		return err
	}
	defer dstParent.Close()
	srcDir, err := openDirAt(int(srcParent.Fd()), srcName)
	if err != nil {
		return err
	}
	defer srcDir.Close()
	dstDir, err := openDirAt(int(dstParent.Fd()), dstName)
	if err != nil {
		return err
	}
	defer dstDir.Close()

	c := &treeCopier{
		ctx:       ctx,
		dstRoot:   int(dstDir.Fd()),
		links:     make(map[inodeID]string),
		buf:       make([]byte, 128<<10),
		clone:     true,
		copyRange: true,
	}
	if err := c.copyDir(srcDir, dstDir, ""); err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(srcDir.Fd()), &st); err != nil {
		return fmt.Errorf("stat %s: %w", src, err)
	}
	if err := c.copyMeta(int(srcParent.Fd()), int(dstParent.Fd()), srcName, dstName, int(srcDir.Fd()), int(dstDir.Fd()), &st); err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	return nil
}

type treeCopier struct {
	ctx context.Context
	// dstRoot is the destination root, which hard link targets are
	// relative to.
	dstRoot int
	// links maps a source inode with several links to the destination
	// path (relative to dstRoot) of its first copy.
	links map[inodeID]string
	buf   []byte
	// clone and copyRange turn false once the filesystem refused them.
	clone, copyRange bool
}

// copyDir copies the entries of the directory src (at rel, relative to the
// source root) into the directory dst.
func (c *treeCopier) copyDir(src, dst *os.File, rel string) error {
	names, err := src.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("read directory %q: %w", rel, err)
	}
	sfd, dfd := int(src.Fd()), int(dst.Fd())
	for _, name := range names {
		if err := c.ctx.Err(); err != nil {
			return err
		}
		entry := path.Join(rel, name)
		if err := c.copyEntry(sfd, dfd, name, entry); err != nil {
			return fmt.Errorf("%q: %w", entry, err)
		}
	}
	return nil
}

// copyEntry copies the entry name of srcDir into dstDir; rel is its path
// relative to the roots.
func (c *treeCopier) copyEntry(srcDir, dstDir int, name, rel string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(srcDir, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("stat: %w", err)
	}
	typ := st.Mode & unix.S_IFMT
	if typ != unix.S_IFDIR && st.Nlink > 1 {
		id := inodeID{st.Dev, st.Ino}
		if first, ok := c.links[id]; ok {
			if err := unix.Linkat(c.dstRoot, first, dstDir, name, 0); err != nil {
				return fmt.Errorf("link to %q: %w", first, err)
			}
			return nil
		}
		c.links[id] = rel
	}
	switch typ {
	case unix.S_IFDIR:
		if err := unix.Mkdirat(dstDir, name, 0o700); err != nil {
			return fmt.Errorf("mkdir: %w", err)
		}
		s, err := openDirAt(srcDir, name)
		if err != nil {
			return err
		}
		defer s.Close()
		d, err := openDirAt(dstDir, name)
		if err != nil {
			return err
		}
		defer d.Close()
		if err := c.copyDir(s, d, rel); err != nil {
			return err
		}
		// Last, so that creating the entries does not change the times.
		return c.copyMeta(srcDir, dstDir, name, name, int(s.Fd()), int(d.Fd()), &st)
	case unix.S_IFREG:
		return c.copyFile(srcDir, dstDir, name, &st)
	case unix.S_IFLNK:
		target, err := readlinkAt(srcDir, name)
		if err != nil {
			return err
		}
		if err := unix.Symlinkat(target, dstDir, name); err != nil {
			return fmt.Errorf("symlink: %w", err)
		}
	case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO, unix.S_IFSOCK:
		if err := unix.Mknodat(dstDir, name, typ|0o600, int(st.Rdev)); err != nil {
			return fmt.Errorf("mknod: %w", err)
		}
	default:
		return fmt.Errorf("unknown file type %#o", typ)
	}
	return c.copyMeta(srcDir, dstDir, name, name, -1, -1, &st)
}

// copyFile copies the regular file name of srcDir into dstDir.
func (c *treeCopier) copyFile(srcDir, dstDir int, name string, st *unix.Stat_t) error {
	// O_NOATIME: copying is not an access (root or the owner only).
	in, err := unix.Openat(srcDir, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NOATIME, 0)
	if err == unix.EPERM {
		in, err = unix.Openat(srcDir, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	defer unix.Close(in)
	out, err := unix.Openat(dstDir, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	defer unix.Close(out)
	if err := c.copyData(out, in, st.Size); err != nil {
		return fmt.Errorf("copy content: %w", err)
	}
	return c.copyMeta(srcDir, dstDir, name, name, in, out, st)
}

// copyData copies size bytes from in to out, both at offset 0.
func (c *treeCopier) copyData(out, in int, size int64) error {
	if size == 0 {
		return nil
	}
	if c.clone {
		err := unix.IoctlFileClone(out, in)
		if err == nil {
			return nil
		}
		if !unsupported(err) {
			return fmt.Errorf("clone: %w", err)
		}
		c.clone = false
	}
	var done int64
	if c.copyRange {
		for done < size {
			n, err := unix.CopyFileRange(in, nil, out, nil, int(min(size-done, 1<<30)), 0)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				if done == 0 && unsupported(err) {
					c.copyRange = false
					break
				}
				return fmt.Errorf("copy_file_range: %w", err)
			}
			if n == 0 {
				return nil // the source is shorter than it was: nothing to copy
			}
			done += int64(n)
		}
		if c.copyRange {
			return nil
		}
	}
	for {
		n, err := unix.Read(in, c.buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		if n == 0 {
			return nil
		}
		for w := c.buf[:n]; len(w) > 0; {
			m, err := unix.Write(out, w)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return fmt.Errorf("write: %w", err)
			}
			w = w[m:]
		}
	}
}

// unsupported reports whether err means the filesystem (or kernel) cannot
// clone or copy_file_range between these files.
func unsupported(err error) bool {
	switch err {
	case unix.EOPNOTSUPP, unix.ENOTTY, unix.EINVAL, unix.EXDEV, unix.ENOSYS, unix.EBADF:
		return true
	}
	return false
}

// copyMeta gives the entry dstName of dstDir the owner, mode, extended
// attributes and times of srcName in srcDir (whose stat is st). srcFd and
// dstFd are the open entries, or -1 for types that cannot be opened
// (symlinks, devices...). The order matters: chown clears the setuid bits
// and file capabilities, so the mode and the attributes come after it.
func (c *treeCopier) copyMeta(srcDir, dstDir int, srcName, dstName string, srcFd, dstFd int, st *unix.Stat_t) error {
	symlink := st.Mode&unix.S_IFMT == unix.S_IFLNK
	mode := st.Mode & 0o7777
	if dstFd >= 0 {
		if err := unix.Fchown(dstFd, int(st.Uid), int(st.Gid)); err != nil {
			return fmt.Errorf("chown: %w", err)
		}
		if err := unix.Fchmod(dstFd, mode); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	} else {
		if err := unix.Fchownat(dstDir, dstName, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("chown: %w", err)
		}
		if !symlink { // a symlink's mode is meaningless and cannot be set
			if err := unix.Fchmodat(dstDir, dstName, mode, 0); err != nil {
				return fmt.Errorf("chmod: %w", err)
			}
		}
	}
	if err := copyXattrs(srcDir, dstDir, srcName, dstName, srcFd, dstFd); err != nil {
		return err
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(dstDir, dstName, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

// copyXattrs copies every extended attribute, through the open files when
// given, else through /proc/self/fd/<dir>/<name> with the l* calls, which
// do not follow the final symlink.
func copyXattrs(srcDir, dstDir int, srcName, dstName string, srcFd, dstFd int) error {
	var (
		list func([]byte) (int, error)
		get  func(string, []byte) (int, error)
		set  func(string, []byte) error
	)
	if srcFd >= 0 && dstFd >= 0 {
		list = func(b []byte) (int, error) { return unix.Flistxattr(srcFd, b) }
		get = func(n string, b []byte) (int, error) { return unix.Fgetxattr(srcFd, n, b) }
		set = func(n string, v []byte) error { return unix.Fsetxattr(dstFd, n, v, 0) }
	} else {
		sp, dp := procPath(srcDir, srcName), procPath(dstDir, dstName)
		list = func(b []byte) (int, error) { return unix.Llistxattr(sp, b) }
		get = func(n string, b []byte) (int, error) { return unix.Lgetxattr(sp, n, b) }
		set = func(n string, v []byte) error { return unix.Lsetxattr(dp, n, v, 0) }
	}
	names, err := readXattr(list)
	if errors.Is(err, unix.ENOTSUP) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list xattrs: %w", err)
	}
	for _, name := range bytes.Split(names, []byte{0}) {
		if len(name) == 0 {
			continue
		}
		n := string(name)
		value, err := readXattr(func(b []byte) (int, error) { return get(n, b) })
		if err == unix.ENODATA {
			continue // removed meanwhile
		}
		if err != nil {
			return fmt.Errorf("get xattr %s: %w", n, err)
		}
		if err := set(n, value); err != nil {
			return fmt.Errorf("set xattr %s: %w", n, err)
		}
	}
	return nil
}

// readXattr calls an xattr getter with a buffer large enough for the value.
func readXattr(get func([]byte) (int, error)) ([]byte, error) {
	size, err := get(nil)
	for {
		if err != nil {
			return nil, err
		}
		if size == 0 {
			return nil, nil
		}
		buf := make([]byte, size)
		var n int
		n, err = get(buf)
		if err == unix.ERANGE { // grew between the two calls
			size, err = get(nil)
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

func procPath(dirfd int, name string) string {
	return "/proc/self/fd/" + strconv.Itoa(dirfd) + "/" + name
}

// readlinkAt returns the target of the symlink name in dirfd.
func readlinkAt(dirfd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", fmt.Errorf("readlink: %w", err)
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

// diskUsage adds up the blocks allocated to the tree at root and counts its
// inodes, each hard-linked inode once.
func diskUsage(ctx context.Context, root string) (Usage, error) {
	dir, err := os.OpenFile(root, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return Usage{}, err
	}
	defer dir.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(dir.Fd()), &st); err != nil {
		return Usage{}, fmt.Errorf("stat %s: %w", root, err)
	}
	u := usageCounter{ctx: ctx, seen: make(map[inodeID]bool)}
	u.add(&st)
	if err := u.dir(dir, ""); err != nil {
		return Usage{}, fmt.Errorf("%s: %w", root, err)
	}
	return u.total, nil
}

type usageCounter struct {
	ctx   context.Context
	seen  map[inodeID]bool
	total Usage
}

func (u *usageCounter) add(st *unix.Stat_t) {
	if st.Mode&unix.S_IFMT != unix.S_IFDIR && st.Nlink > 1 {
		id := inodeID{st.Dev, st.Ino}
		if u.seen[id] {
			return
		}
		u.seen[id] = true
	}
	u.total.Inodes++
	u.total.Size += st.Blocks * 512
}

func (u *usageCounter) dir(d *os.File, rel string) error {
	names, err := d.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("read directory %q: %w", rel, err)
	}
	for _, name := range names {
		if err := u.ctx.Err(); err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Fstatat(int(d.Fd()), name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("stat %q: %w", path.Join(rel, name), err)
		}
		u.add(&st)
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			continue
		}
		sub, err := openDirAt(int(d.Fd()), name)
		if err != nil {
			return err
		}
		err = u.dir(sub, path.Join(rel, name))
		sub.Close()
		if err != nil {
			return err
		}
	}
	return nil
}
