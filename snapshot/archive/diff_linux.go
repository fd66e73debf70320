//go:build linux

package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// DiffMode selects what [Diff] compares.
type DiffMode int

const (
	// DiffOverlay reads an overlayfs upper directory: every entry in it is
	// a change, 0/0 character devices (and files carrying the
	// overlay.whiteout xattr) are deletions and directories with
	// overlay.opaque=y hide their lower content. The lower directories are
	// not read. An upper directory written with redirect_dir or metacopy
	// is not a faithful diff: Diff then fails with ErrNotFaithful.
	DiffOverlay DiffMode = iota
	// DiffNaive compares two full trees: lowers holds at most one
	// directory (none for a base layer) and upper the whole new tree, as
	// for the native snapshotter or a mounted overlay fallback.
	DiffNaive
)

// DiffOptions configure [Diff].
type DiffOptions struct {
	// Mode selects an overlay upper-directory diff (the default) or a
	// naive two-tree comparison.
	Mode DiffMode
	// SourceDateEpoch, if set, clamps every modification time to at most
	// this time (see reproducible-builds.org), so that two diffs of the
	// same tree are byte-identical whenever they were made.
	SourceDateEpoch *time.Time
	// IDMap, if set, maps the uid/gid on disk to the ones written in the
	// archive (the reverse of ApplyOptions.IDMap).
	IDMap IDMapFunc
	// XattrFilter decides which extended attributes are written; nil means
	// DefaultXattrFilter. overlay.* attributes are never written.
	XattrFilter func(name string) bool
}

// ErrNotFaithful is returned (wrapped) by [Diff] in DiffOverlay mode for an
// upper directory that uses overlayfs redirects or metacopy; a naive diff
// of mounted trees is needed instead.
var ErrNotFaithful = errors.New("overlay upper directory uses redirect_dir or metacopy")

// Diff writes to w an OCI layer tar of the changes in upper (see DiffMode).
// The archive is deterministic: entries are sorted by name with each
// directory before its content, access and change times and user and group
// names are left out, modification times are truncated to seconds (and
// clamped by SourceDateEpoch), and a PAX header is used only when an entry
// needs one (long names, large IDs, extended attributes). Hardlinked files
// are written once, later names as hardlinks. Sockets are skipped.
func Diff(ctx context.Context, lowers []string, upper string, w io.Writer, opts DiffOptions) error {
	d := &differ{
		ctx:    ctx,
		opts:   opts,
		filter: opts.XattrFilter,
		tw:     tar.NewWriter(w),
		links:  make(map[[2]uint64]string),
		buf:    make([]byte, 128<<10),
	}
	if d.filter == nil {
		d.filter = DefaultXattrFilter
	}
	ufd, err := unix.Open(upper, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("archive: diff: open %s: %w", upper, err)
	}
	defer unix.Close(ufd)
	switch opts.Mode {
	case DiffOverlay:
		err = d.overlayRoot(ufd)
	case DiffNaive:
		lfd := -1
		switch len(lowers) {
		case 0:
		case 1:
			lfd, err = unix.Open(lowers[0], unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				return fmt.Errorf("archive: diff: open %s: %w", lowers[0], err)
			}
			defer unix.Close(lfd)
		default:
			return fmt.Errorf("archive: diff: naive mode takes at most one lower directory, got %d", len(lowers))
		}
		err = d.naive(lfd, ufd, "")
	default:
		return fmt.Errorf("archive: diff: unknown mode %d", opts.Mode)
	}
	if err != nil {
		return fmt.Errorf("archive: diff %s: %w", upper, err)
	}
	if err := d.tw.Close(); err != nil {
		return fmt.Errorf("archive: diff %s: finish tar: %w", upper, err)
	}
	return nil
}

// overlayRoot writes the overlay upper directory ufd.
func (d *differ) overlayRoot(ufd int) error {
	rfd, err := unix.Openat(ufd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	x, err := d.xattrs(rfd, -1, ".")
	unix.Close(rfd)
	if err != nil {
		return err
	}
	if isOpaque(x) {
		st, err := lstatat(ufd, ".")
		if err != nil {
			return fmt.Errorf("stat: %w", err)
		}
		if err := d.write(d.marker(WhiteoutOpaqueDir, &st), nil); err != nil {
			return err
		}
	}
	return d.tree(ufd, "", true)
}

type differ struct {
	ctx    context.Context
	opts   DiffOptions
	filter func(string) bool
	tw     *tar.Writer
	// links maps (dev, ino) of a file already written to its name.
	links map[[2]uint64]string
	// pending are the directory headers (naive mode) not written yet:
	// an unchanged directory is written only if something below it is.
	pending []*tar.Header
	flushed int
	buf     []byte
}

func isOpaque(x map[string]string) bool {
	return x[overlayOpaqueTrusted] == "y" || x[overlayOpaqueUser] == "y"
}

// write writes hdr (after any pending parent directories) and, for a
// regular file, exactly hdr.Size bytes of content.
func (d *differ) write(hdr *tar.Header, content io.Reader) error {
	if err := d.flush(); err != nil {
		return err
	}
	if err := d.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("write header %q: %w", hdr.Name, err)
	}
	if content != nil && hdr.Size > 0 {
		n, err := io.CopyBuffer(d.tw, io.LimitReader(content, hdr.Size), d.buf)
		if err != nil {
			return fmt.Errorf("write %q: %w", hdr.Name, err)
		}
		if n != hdr.Size {
			return fmt.Errorf("write %q: file shrank while being read (%d of %d bytes)", hdr.Name, n, hdr.Size)
		}
	}
	return nil
}

// flush writes the pending directory headers.
func (d *differ) flush() error {
	for ; d.flushed < len(d.pending); d.flushed++ {
		if err := d.tw.WriteHeader(d.pending[d.flushed]); err != nil {
			return fmt.Errorf("write header %q: %w", d.pending[d.flushed].Name, err)
		}
	}
	return nil
}

// mtime returns a modification time truncated to seconds and clamped to
// SourceDateEpoch.
func (d *differ) mtime(st *unix.Stat_t) time.Time {
	t := time.Unix(st.Mtim.Sec, 0)
	if e := d.opts.SourceDateEpoch; e != nil {
		if ee := time.Unix(e.Unix(), 0); t.After(ee) {
			t = ee
		}
	}
	return t
}

// marker returns the header of a whiteout (or opaque marker) named rel.
func (d *differ) marker(rel string, st *unix.Stat_t) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeReg, Name: rel, Mode: 0, ModTime: d.mtime(st)}
}

// header returns the normalised header of the node rel described by st.
func (d *differ) header(rel string, st *unix.Stat_t, x map[string]string) (*tar.Header, error) {
	uid, gid := int(st.Uid), int(st.Gid)
	if d.opts.IDMap != nil {
		var err error
		if uid, gid, err = d.opts.IDMap(uid, gid); err != nil {
			return nil, fmt.Errorf("map IDs of %q: %w", rel, err)
		}
	}
	hdr := &tar.Header{
		Name:    rel,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     uid,
		Gid:     gid,
		ModTime: d.mtime(st),
	}
	for k, v := range x {
		if strings.Contains(k, ".overlay.") || !d.filter(k) {
			continue
		}
		if hdr.PAXRecords == nil {
			hdr.PAXRecords = make(map[string]string)
		}
		hdr.PAXRecords[paxXattrPrefix+k] = v
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		hdr.Typeflag = tar.TypeDir
		hdr.Name += "/"
	case unix.S_IFREG:
		hdr.Typeflag = tar.TypeReg
		hdr.Size = st.Size
	case unix.S_IFLNK:
		hdr.Typeflag = tar.TypeSymlink
	case unix.S_IFCHR, unix.S_IFBLK:
		hdr.Typeflag = tar.TypeChar
		if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor = int64(unix.Major(st.Rdev))
		hdr.Devminor = int64(unix.Minor(st.Rdev))
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	default:
		return nil, fmt.Errorf("%q: unsupported file type %#o", rel, st.Mode&unix.S_IFMT)
	}
	return hdr, nil
}

// xattrs lists the extended attributes of the node: through fd if it is
// not -1, else of name in dirfd without following it.
func (d *differ) xattrs(fd, dirfd int, name string) (map[string]string, error) {
	p := ""
	if fd < 0 {
		p = procPath(dirfd, name)
	}
	list := func(dest []byte) (int, error) {
		if fd >= 0 {
			return unix.Flistxattr(fd, dest)
		}
		return unix.Llistxattr(p, dest)
	}
	get := func(attr string, dest []byte) (int, error) {
		if fd >= 0 {
			return unix.Fgetxattr(fd, attr, dest)
		}
		return unix.Lgetxattr(p, attr, dest)
	}
	names, err := readXattr(list)
	if err != nil {
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		return nil, fmt.Errorf("list xattrs of %q: %w", name, err)
	}
	var out map[string]string
	for _, n := range bytes.Split(names, []byte{0}) {
		if len(n) == 0 {
			continue
		}
		attr := string(n)
		v, err := readXattr(func(dest []byte) (int, error) { return get(attr, dest) })
		if errors.Is(err, unix.ENODATA) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("get xattr %s of %q: %w", attr, name, err)
		}
		if out == nil {
			out = make(map[string]string)
		}
		out[attr] = string(v)
	}
	return out, nil
}

// readXattr calls f with a buffer large enough for the value.
func readXattr(f func([]byte) (int, error)) ([]byte, error) {
	for range 8 {
		n, err := f(nil)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, nil
		}
		buf := make([]byte, n)
		n, err = f(buf)
		if errors.Is(err, unix.ERANGE) {
			continue // grew meanwhile
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
	return nil, unix.ERANGE
}

// tree writes every entry below the directory dirfd (path rel).
func (d *differ) tree(dirfd int, rel string, overlay bool) error {
	names, err := readDirNames(dirfd)
	if err != nil {
		return fmt.Errorf("%q: %w", rel, err)
	}
	for _, n := range names {
		if err := d.ctx.Err(); err != nil {
			return err
		}
		st, err := lstatat(dirfd, n)
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			return fmt.Errorf("stat %q: %w", joinRel(rel, n), err)
		}
		if err := d.node(dirfd, n, joinRel(rel, n), &st, overlay, true); err != nil {
			return err
		}
	}
	return nil
}

// node writes the entry name of dirfd (path rel), and with recurse,
// everything below it. With overlay, overlayfs markers become whiteouts.
func (d *differ) node(dirfd int, name, rel string, st *unix.Stat_t, overlay, recurse bool) error {
	parent, _ := splitRel(rel)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		fd, err := openSame(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY, st)
		if err != nil {
			return fmt.Errorf("open %q: %w", rel, err)
		}
		defer unix.Close(fd)
		x, err := d.xattrs(fd, -1, name)
		if err != nil {
			return err
		}
		if overlay && (x["trusted.overlay.redirect"] != "" || x["user.overlay.redirect"] != "") {
			return fmt.Errorf("%q: %w", rel, ErrNotFaithful)
		}
		hdr, err := d.header(rel, st, x)
		if err != nil {
			return err
		}
		if err := d.write(hdr, nil); err != nil {
			return err
		}
		if overlay && isOpaque(x) {
			if err := d.write(d.marker(joinRel(rel, WhiteoutOpaqueDir), st), nil); err != nil {
				return err
			}
		}
		if recurse {
			return d.tree(fd, rel, overlay)
		}
		return nil

	case unix.S_IFREG:
		// O_NONBLOCK: should the file be swapped for a fifo, do not hang.
		fd, err := openSame(dirfd, name, unix.O_RDONLY|unix.O_NONBLOCK, st)
		if err != nil {
			return fmt.Errorf("open %q: %w", rel, err)
		}
		f := os.NewFile(uintptr(fd), rel)
		defer f.Close()
		x, err := d.xattrs(fd, -1, name)
		if err != nil {
			return err
		}
		if overlay {
			if _, ok := x["trusted.overlay.metacopy"]; ok {
				return fmt.Errorf("%q: %w", rel, ErrNotFaithful)
			}
			if _, ok := x["user.overlay.metacopy"]; ok {
				return fmt.Errorf("%q: %w", rel, ErrNotFaithful)
			}
			_, w1 := x[overlayWhiteoutTrusted]
			_, w2 := x[overlayWhiteoutUser]
			if w1 || w2 {
				return d.write(d.marker(joinRel(parent, WhiteoutPrefix+name), st), nil)
			}
		}
		hdr, err := d.header(rel, st, x)
		if err != nil {
			return err
		}
		if st.Nlink > 1 {
			key := [2]uint64{st.Dev, st.Ino}
			if first, ok := d.links[key]; ok {
				hdr.Typeflag = tar.TypeLink
				hdr.Linkname = first
				hdr.Size = 0
				return d.write(hdr, nil)
			}
			d.links[key] = rel
		}
		return d.write(hdr, f)

	case unix.S_IFLNK:
		target, err := readlinkat(dirfd, name)
		if err != nil {
			return fmt.Errorf("readlink %q: %w", rel, err)
		}
		x, err := d.xattrs(-1, dirfd, name)
		if err != nil {
			return err
		}
		hdr, err := d.header(rel, st, x)
		if err != nil {
			return err
		}
		hdr.Linkname = target
		return d.write(hdr, nil)

	case unix.S_IFSOCK:
		return nil

	default:
		if overlay && st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0 {
			return d.write(d.marker(joinRel(parent, WhiteoutPrefix+name), st), nil)
		}
		x, err := d.xattrs(-1, dirfd, name)
		if err != nil {
			return err
		}
		hdr, err := d.header(rel, st, x)
		if err != nil {
			return err
		}
		return d.write(hdr, nil)
	}
}

// openSame opens name in dirfd without following it and checks that it is
// still the node st describes.
func openSame(dirfd int, name string, flags int, st *unix.Stat_t) (int, error) {
	fd, err := unix.Openat(dirfd, name, flags|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	var st2 unix.Stat_t
	if err := unix.Fstat(fd, &st2); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if st2.Dev != st.Dev || st2.Ino != st.Ino || st2.Mode&unix.S_IFMT != st.Mode&unix.S_IFMT {
		unix.Close(fd)
		return -1, errors.New("changed while being read")
	}
	*st = st2
	return fd, nil
}

func readlinkat(dirfd int, name string) (string, error) {
	for size := 256; size <= 1<<16; size *= 4 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
	return "", unix.ENAMETOOLONG
}

// naive writes the differences between the directories lfd (-1: none) and
// ufd, both at path rel.
func (d *differ) naive(lfd, ufd int, rel string) error {
	var lnames []string
	var err error
	if lfd >= 0 {
		if lnames, err = readDirNames(lfd); err != nil {
			return fmt.Errorf("lower %q: %w", rel, err)
		}
	}
	unames, err := readDirNames(ufd)
	if err != nil {
		return fmt.Errorf("%q: %w", rel, err)
	}
	var ust0 *unix.Stat_t // the upper directory itself, for whiteout times
	i, j := 0, 0
	for i < len(lnames) || j < len(unames) {
		if err := d.ctx.Err(); err != nil {
			return err
		}
		var name string
		inL, inU := false, false
		switch {
		case j >= len(unames) || (i < len(lnames) && lnames[i] < unames[j]):
			name, inL = lnames[i], true
			i++
		case i >= len(lnames) || unames[j] < lnames[i]:
			name, inU = unames[j], true
			j++
		default:
			name, inL, inU = unames[j], true, true
			i++
			j++
		}
		child := joinRel(rel, name)
		if !inU {
			if ust0 == nil {
				st, err := lstatat(ufd, ".")
				if err != nil {
					return fmt.Errorf("stat %q: %w", rel, err)
				}
				ust0 = &st
			}
			if err := d.write(d.marker(joinRel(rel, WhiteoutPrefix+name), ust0), nil); err != nil {
				return err
			}
			continue
		}
		ust, err := lstatat(ufd, name)
		if err != nil {
			return fmt.Errorf("stat %q: %w", child, err)
		}
		if !inL {
			if err := d.node(ufd, name, child, &ust, false, true); err != nil {
				return err
			}
			continue
		}
		lst, err := lstatat(lfd, name)
		if err != nil {
			return fmt.Errorf("stat lower %q: %w", child, err)
		}
		if lst.Mode&unix.S_IFMT != ust.Mode&unix.S_IFMT {
			if err := d.node(ufd, name, child, &ust, false, true); err != nil {
				return err
			}
			continue
		}
		if ust.Mode&unix.S_IFMT == unix.S_IFDIR {
			if err := d.naiveDir(lfd, ufd, name, child, &lst, &ust); err != nil {
				return err
			}
			continue
		}
		changed, err := d.changed(lfd, ufd, name, &lst, &ust)
		if err != nil {
			return fmt.Errorf("compare %q: %w", child, err)
		}
		if changed {
			if err := d.node(ufd, name, child, &ust, false, false); err != nil {
				return err
			}
		}
	}
	return nil
}

// naiveDir handles a directory present in both trees: its header is
// written if its metadata changed or anything below it did.
func (d *differ) naiveDir(lfd, ufd int, name, rel string, lst, ust *unix.Stat_t) error {
	lcfd, err := openSame(lfd, name, unix.O_RDONLY|unix.O_DIRECTORY, lst)
	if err != nil {
		return fmt.Errorf("open lower %q: %w", rel, err)
	}
	defer unix.Close(lcfd)
	ucfd, err := openSame(ufd, name, unix.O_RDONLY|unix.O_DIRECTORY, ust)
	if err != nil {
		return fmt.Errorf("open %q: %w", rel, err)
	}
	defer unix.Close(ucfd)
	lx, err := d.xattrs(lcfd, -1, name)
	if err != nil {
		return err
	}
	ux, err := d.xattrs(ucfd, -1, name)
	if err != nil {
		return err
	}
	hdr, err := d.header(rel, ust, ux)
	if err != nil {
		return err
	}
	d.pending = append(d.pending, hdr)
	if metaChanged(lst, ust) || !d.sameXattrs(lx, ux) {
		if err := d.flush(); err != nil {
			return err
		}
	}
	err = d.naive(lcfd, ucfd, rel)
	d.pending = d.pending[:len(d.pending)-1]
	if d.flushed > len(d.pending) {
		d.flushed = len(d.pending)
	}
	return err
}

func metaChanged(a, b *unix.Stat_t) bool {
	return a.Mode != b.Mode || a.Uid != b.Uid || a.Gid != b.Gid || a.Rdev != b.Rdev
}

func (d *differ) sameXattrs(a, b map[string]string) bool {
	count := 0
	for k, v := range a {
		if strings.Contains(k, ".overlay.") || !d.filter(k) {
			continue
		}
		count++
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	for k := range b {
		if strings.Contains(k, ".overlay.") || !d.filter(k) {
			continue
		}
		count--
	}
	return count == 0
}

// changed compares two non-directories of the same type, as docker's naive
// differ does: metadata, size and mtime, then content when the mtimes are
// equal but whole seconds (such as after extraction from a tar), and
// symlink targets.
func (d *differ) changed(lfd, ufd int, name string, lst, ust *unix.Stat_t) (bool, error) {
	if metaChanged(lst, ust) || lst.Size != ust.Size || lst.Mtim != ust.Mtim {
		return true, nil
	}
	var lx, ux map[string]string
	var err error
	switch ust.Mode & unix.S_IFMT {
	case unix.S_IFLNK:
		lt, err := readlinkat(lfd, name)
		if err != nil {
			return false, err
		}
		ut, err := readlinkat(ufd, name)
		if err != nil {
			return false, err
		}
		if lt != ut {
			return true, nil
		}
		if lx, err = d.xattrs(-1, lfd, name); err != nil {
			return false, err
		}
		if ux, err = d.xattrs(-1, ufd, name); err != nil {
			return false, err
		}
	case unix.S_IFREG:
		lf, err := openSame(lfd, name, unix.O_RDONLY|unix.O_NONBLOCK, lst)
		if err != nil {
			return false, err
		}
		defer unix.Close(lf)
		uf, err := openSame(ufd, name, unix.O_RDONLY|unix.O_NONBLOCK, ust)
		if err != nil {
			return false, err
		}
		defer unix.Close(uf)
		if lx, err = d.xattrs(lf, -1, name); err != nil {
			return false, err
		}
		if ux, err = d.xattrs(uf, -1, name); err != nil {
			return false, err
		}
		if ust.Mtim.Nsec == 0 && d.sameXattrs(lx, ux) {
			same, err := sameContent(lf, uf)
			return !same, err
		}
	default:
		if lx, err = d.xattrs(-1, lfd, name); err != nil {
			return false, err
		}
		if ux, err = d.xattrs(-1, ufd, name); err != nil {
			return false, err
		}
	}
	return !d.sameXattrs(lx, ux), nil
}

// sameContent compares the content of two open files from their start.
func sameContent(a, b int) (bool, error) {
	ba := make([]byte, 64<<10)
	bb := make([]byte, 64<<10)
	var off int64
	for {
		na, err := preadFull(a, ba, off)
		if err != nil {
			return false, err
		}
		nb, err := preadFull(b, bb, off)
		if err != nil {
			return false, err
		}
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return false, nil
		}
		if na < len(ba) {
			return true, nil
		}
		off += int64(na)
	}
}

// preadFull reads from offset off until buf is full or the end of the file.
func preadFull(fd int, buf []byte, off int64) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := unix.Pread(fd, buf[n:], off+int64(n))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return n, err
		}
		if m == 0 {
			break
		}
		n += m
	}
	return n, nil
}
