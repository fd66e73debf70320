//go:build linux

package archive

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Whiteout names defined by the OCI image-layer specification.
const (
	// WhiteoutPrefix marks a deletion: ".wh.NAME" deletes NAME.
	WhiteoutPrefix = ".wh."
	// WhiteoutMetaPrefix prefixes whiteout metadata names (aufs); such
	// entries other than WhiteoutOpaqueDir are skipped.
	WhiteoutMetaPrefix = WhiteoutPrefix + WhiteoutPrefix
	// WhiteoutOpaqueDir in a directory hides that directory's lower content.
	WhiteoutOpaqueDir = WhiteoutMetaPrefix + ".opq"
)

// Overlayfs extended attributes.
const (
	overlayOpaqueTrusted   = "trusted.overlay.opaque"
	overlayOpaqueUser      = "user.overlay.opaque"
	overlayWhiteoutTrusted = "trusted.overlay.whiteout"
	overlayWhiteoutUser    = "user.overlay.whiteout"
	paxXattrPrefix         = "SCHILY.xattr."
)

// WhiteoutMode selects how [Apply] represents whiteouts.
type WhiteoutMode int

const (
	// WhiteoutNative performs the deletions: ".wh.NAME" removes NAME from
	// root and ".wh..wh..opq" removes the directory's content that this
	// layer did not create. For a root that already holds the lower layers
	// (the native snapshotter).
	WhiteoutNative WhiteoutMode = iota
	// WhiteoutOverlay records the deletions the way overlayfs reads them in
	// an upper directory: ".wh.NAME" becomes a 0/0 character device NAME and
	// ".wh..wh..opq" sets the overlay opaque xattr on the directory (as
	// does a directory entry replacing a whiteout of the same layer). The
	// lower layers are not consulted: a parent directory that has no entry
	// in the archive is created 0755 and owned by (mapped) root in the
	// upper directory, hiding the lower directory's metadata, as docker's
	// and containerd's appliers do; layers written by docker, BuildKit and
	// Diff always carry their parent directories.
	WhiteoutOverlay
)

// String returns "native" or "overlay".
func (m WhiteoutMode) String() string {
	switch m {
	case WhiteoutNative:
		return "native"
	case WhiteoutOverlay:
		return "overlay"
	}
	return fmt.Sprintf("WhiteoutMode(%d)", int(m))
}

// IDMapFunc maps a uid/gid pair, for user namespaces. For [Apply] it maps
// the IDs in the archive to the IDs written on disk; for [Diff] the IDs on
// disk to the IDs written in the archive.
type IDMapFunc func(uid, gid int) (int, int, error)

// Limits bound what a single layer may ask for. A zero field takes its
// value from [DefaultLimits].
type Limits struct {
	// MaxPathLen bounds an entry's name and a hardlink's target, in bytes.
	MaxPathLen int
	// MaxDepth bounds the number of components of a name.
	MaxDepth int
	// MaxXattrsPerEntry bounds the extended attributes of one entry.
	MaxXattrsPerEntry int
	// MaxXattrBytesPerEntry bounds the names plus values of one entry's
	// extended attributes.
	MaxXattrBytesPerEntry int
	// MaxXattrBytes bounds the names plus values of all the extended
	// attributes applied from one layer.
	MaxXattrBytes int64
}

// DefaultLimits are the limits used for zero fields of [Limits]. PATH_MAX is
// 4096 on Linux, XATTR_SIZE_MAX (one value) 64 KiB.
var DefaultLimits = Limits{
	MaxPathLen:            4096,
	MaxDepth:              1024,
	MaxXattrsPerEntry:     128,
	MaxXattrBytesPerEntry: 256 << 10,
	MaxXattrBytes:         32 << 20,
}

func (l Limits) withDefaults() Limits {
	if l.MaxPathLen <= 0 {
		l.MaxPathLen = DefaultLimits.MaxPathLen
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultLimits.MaxDepth
	}
	if l.MaxXattrsPerEntry <= 0 {
		l.MaxXattrsPerEntry = DefaultLimits.MaxXattrsPerEntry
	}
	if l.MaxXattrBytesPerEntry <= 0 {
		l.MaxXattrBytesPerEntry = DefaultLimits.MaxXattrBytesPerEntry
	}
	if l.MaxXattrBytes <= 0 {
		l.MaxXattrBytes = DefaultLimits.MaxXattrBytes
	}
	return l
}

// Warning is something [Apply] skipped rather than failed on.
type Warning struct {
	// Path is the entry's cleaned name, relative to the root.
	Path string
	// Err says what was skipped and why.
	Err error
}

func (w Warning) String() string { return w.Path + ": " + w.Err.Error() }

// ApplyOptions configure [Apply]. The zero value applies a layer for the
// native snapshotter with docker's defaults.
type ApplyOptions struct {
	// Whiteouts selects how whiteout entries are applied.
	Whiteouts WhiteoutMode
	// UserXattr uses user.overlay.opaque instead of trusted.overlay.opaque
	// for opaque directories (WhiteoutOverlay only), as overlayfs mounted
	// with the userxattr option in a user namespace expects. Whiteouts
	// are still 0/0 character devices (Linux allows creating those without
	// CAP_MKNOD since 5.8).
	UserXattr bool
	// NoDevices skips character and block devices and fifos (with a
	// warning). Whiteout devices of WhiteoutOverlay are not affected.
	NoDevices bool
	// StripSetuid clears the setuid and setgid bits. By default they are
	// preserved, as docker does.
	StripSetuid bool
	// IDMap, if set, maps the archive's uid/gid to the ones written on disk;
	// directories created implicitly get the mapping of 0/0.
	IDMap IDMapFunc
	// XattrFilter decides which extended attributes from the archive are
	// applied; nil means DefaultXattrFilter.
	XattrFilter func(name string) bool
	// Limits bound names and extended attributes; zero fields take their
	// value from DefaultLimits.
	Limits Limits
	// OnWarning, if set, receives every entry or attribute that was
	// skipped: devices under NoDevices or without permission, aufs metadata,
	// extended attributes the filesystem refused.
	OnWarning func(Warning)
}

// Errors returned (wrapped) by [Apply].
var (
	// ErrBreakout is returned for a name or hardlink target that climbs
	// above the root.
	ErrBreakout = errors.New("path escapes the root")
	// ErrLimit is returned when an entry exceeds one of the Limits.
	ErrLimit = errors.New("limit exceeded")
	// ErrInvalid is returned for an entry that cannot be applied as
	// described (bad whiteout name, IDs out of range, unknown type...).
	ErrInvalid = errors.New("invalid entry")
)

// DefaultXattrFilter is the extended attribute policy of [Apply] and
// [Diff]: user.* (but not user.overlay.*, which overlayfs interprets),
// security.capability (file capabilities) and the POSIX ACLs
// (system.posix_acl_access, system.posix_acl_default). trusted.*,
// security.selinux, security.ima and the rest are dropped: they either need
// host privilege or belong to the host, and trusted.overlay.* in a layer
// could forge overlayfs redirects.
func DefaultXattrFilter(name string) bool {
	switch {
	case strings.HasPrefix(name, "user.overlay."):
		return false
	case strings.HasPrefix(name, "user."):
		return true
	case name == "security.capability",
		name == "system.posix_acl_access",
		name == "system.posix_acl_default":
		return true
	}
	return false
}

// Membership of a path in applier.created.
const (
	createdEntry    = 1 // an entry of this layer
	createdAncestor = 2 // a parent directory of an entry of this layer
)

type dirTimes struct {
	rel          string
	atime, mtime unix.Timespec
}

type applier struct {
	ctx     context.Context
	opts    ApplyOptions
	lim     Limits
	filter  func(string) bool
	root    *os.File
	rootDev uint64
	// created holds what this layer extracted (and their parents), so
	// that whiteouts only ever hide lower content.
	created    map[string]uint8
	dirs       []dirTimes
	xattrTotal int64
	size       int64
	buf        []byte
	// implicitUID/GID own directories created without an entry.
	implicitUID, implicitGID int
}

// Apply extracts the layer tar r into the existing directory root and
// returns the number of bytes of regular file content written. root may
// already hold the lower layers' content (WhiteoutNative) or be an empty
// overlay upper directory (WhiteoutOverlay). See the package documentation
// for how hostile entries are handled. Directory times are restored once
// the whole layer is extracted, and r is read to its end (so that a
// digesting reader sees every byte). On error, root holds a partial layer.
func Apply(ctx context.Context, root string, r io.Reader, opts ApplyOptions) (size int64, err error) {
	rootFile, err := os.OpenFile(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("archive: open root: %w", err)
	}
	defer rootFile.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(rootFile.Fd()), &st); err != nil {
		return 0, fmt.Errorf("archive: stat root %s: %w", root, err)
	}
	a := &applier{
		ctx:     ctx,
		opts:    opts,
		lim:     opts.Limits.withDefaults(),
		filter:  opts.XattrFilter,
		root:    rootFile,
		rootDev: st.Dev,
		created: make(map[string]uint8),
		buf:     make([]byte, 128<<10),
	}
	if a.filter == nil {
		a.filter = DefaultXattrFilter
	}
	if opts.IDMap != nil {
		a.implicitUID, a.implicitGID, err = opts.IDMap(0, 0)
		if err != nil {
			return 0, fmt.Errorf("archive: map root IDs: %w", err)
		}
	}
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return a.size, fmt.Errorf("archive: apply to %s: %w", root, err)
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil && !(errors.Is(err, tar.ErrInsecurePath) && hdr != nil) {
			return a.size, fmt.Errorf("archive: apply to %s: read tar header: %w", root, err)
		}
		if err := a.entry(hdr, tr); err != nil {
			return a.size, fmt.Errorf("archive: apply to %s: entry %q: %w", root, short(hdr.Name), err)
		}
	}
	if err := a.restoreDirTimes(); err != nil {
		return a.size, fmt.Errorf("archive: apply to %s: %w", root, err)
	}
	// Drain the end-of-archive padding (and anything after it).
	if _, err := io.CopyBuffer(io.Discard, r, a.buf); err != nil {
		return a.size, fmt.Errorf("archive: apply to %s: read trailer: %w", root, err)
	}
	return a.size, nil
}

// ctxReader stops a long copy when its context is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// short bounds a hostile name for error messages.
func short(s string) string {
	if len(s) > 256 {
		return s[:256] + "..."
	}
	return s
}

func (a *applier) warn(rel string, err error) {
	if a.opts.OnWarning != nil {
		a.opts.OnWarning(Warning{Path: rel, Err: err})
	}
}

// cleanName cleans and bounds a name or hardlink target from the archive.
func (a *applier) cleanName(name string) (string, error) {
	if len(name) > a.lim.MaxPathLen {
		return "", fmt.Errorf("%w: name of %d bytes (max %d)", ErrLimit, len(name), a.lim.MaxPathLen)
	}
	if strings.IndexByte(name, 0) >= 0 {
		return "", fmt.Errorf("%w: NUL byte in name", ErrInvalid)
	}
	rel, err := cleanRel(name)
	if err != nil {
		return "", err
	}
	if d := strings.Count(rel, "/") + 1; rel != "" && d > a.lim.MaxDepth {
		return "", fmt.Errorf("%w: name of depth %d (max %d)", ErrLimit, d, a.lim.MaxDepth)
	}
	return rel, nil
}

func (a *applier) markCreated(rel string) {
	a.created[rel] = createdEntry
	for p, _ := splitRel(rel); p != ""; p, _ = splitRel(p) {
		if _, ok := a.created[p]; ok {
			break
		}
		a.created[p] = createdAncestor
	}
}

func (a *applier) entry(hdr *tar.Header, tr io.Reader) error {
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader:
		return nil
	}
	rel, err := a.cleanName(hdr.Name)
	if err != nil {
		return err
	}
	parent, base := splitRel(rel)
	if strings.HasPrefix(base, WhiteoutPrefix) {
		return a.whiteout(parent, base)
	}
	xattrs, err := a.xattrs(hdr)
	if err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeCont,
		tar.TypeDir, tar.TypeSymlink, tar.TypeLink,
		tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
	default:
		// Including GNU sparse files: archive/tar expands their holes
		// into zeros, so a few bytes could fill the disk.
		return fmt.Errorf("%w: unsupported tar entry type %q", ErrInvalid, hdr.Typeflag)
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return fmt.Errorf("%w: sparse files are not supported", ErrInvalid)
		}
	}
	if rel == "" {
		if hdr.Typeflag != tar.TypeDir {
			return fmt.Errorf("%w: root must be a directory", ErrInvalid)
		}
		return a.rootDir(hdr, xattrs)
	}
	isDevice := hdr.Typeflag == tar.TypeChar || hdr.Typeflag == tar.TypeBlock || hdr.Typeflag == tar.TypeFifo
	if isDevice && a.opts.NoDevices {
		a.warn(rel, errors.New("device node or fifo skipped (NoDevices)"))
		return nil
	}
	linkParent := -1
	var linkBase string
	if hdr.Typeflag == tar.TypeLink {
		target, err := a.cleanName(hdr.Linkname)
		if err != nil {
			return fmt.Errorf("hardlink target: %w", err)
		}
		if target == "" {
			return fmt.Errorf("%w: hardlink to the root", ErrInvalid)
		}
		if target == rel {
			a.warn(rel, errors.New("hardlink to itself ignored"))
			return nil
		}
		var tparent string
		tparent, linkBase = splitRel(target)
		linkParent, err = resolveDir(a.root, tparent)
		if err != nil {
			return fmt.Errorf("hardlink target %q: %w", short(hdr.Linkname), err)
		}
		defer unix.Close(linkParent)
		if _, err := lstatat(linkParent, linkBase); err != nil {
			return fmt.Errorf("hardlink target %q: %w", short(hdr.Linkname), err)
		}
	}
	uid, gid, err := a.ids(hdr)
	if err != nil {
		return err
	}

	pfd, err := a.mkdirAll(parent)
	if err != nil {
		return fmt.Errorf("parent directory: %w", err)
	}
	defer unix.Close(pfd)
	var pst unix.Stat_t
	if err := unix.Fstat(pfd, &pst); err != nil {
		return fmt.Errorf("stat parent: %w", err)
	}

	// Replace what is there unless a directory meets a directory.
	wasWhiteout := false
	st, err := lstatat(pfd, base)
	switch {
	case err == nil:
		isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
		wasWhiteout = st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
		if !(isDir && hdr.Typeflag == tar.TypeDir) {
			if err := removeAllAt(pfd, base, pst.Dev); err != nil {
				return fmt.Errorf("replace existing: %w", err)
			}
		}
	case errors.Is(err, unix.ENOENT):
	default:
		return fmt.Errorf("stat: %w", err)
	}

	mode := uint32(hdr.Mode) & 0o7777
	if a.opts.StripSetuid {
		mode &^= unix.S_ISUID | unix.S_ISGID
	}
	atime, mtime := tarTimes(hdr)
	ts := []unix.Timespec{atime, mtime}

	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := unix.Mkdirat(pfd, base, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("mkdir: %w", err)
		}
		fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open directory: %w", err)
		}
		defer unix.Close(fd)
		if wasWhiteout && a.opts.Whiteouts == WhiteoutOverlay {
			// A directory replacing a whiteout hides the lower
			// directory, as overlayfs does after rmdir+mkdir.
			if err := unix.Fsetxattr(fd, a.opaqueXattr(), []byte("y"), 0); err != nil {
				return fmt.Errorf("set opaque xattr: %w", err)
			}
		}
		if err := a.fdMeta(rel, fd, uid, gid, mode, xattrs); err != nil {
			return err
		}
		a.dirs = append(a.dirs, dirTimes{rel: rel, atime: atime, mtime: mtime})

	case tar.TypeReg, tar.TypeCont:
		fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return fmt.Errorf("create: %w", err)
		}
		f := os.NewFile(uintptr(fd), rel)
		n, err := io.CopyBuffer(struct{ io.Writer }{f}, ctxReader{a.ctx, tr}, a.buf)
		a.size += n
		if err != nil {
			f.Close()
			return fmt.Errorf("write content: %w", err)
		}
		if err := a.fdMeta(rel, int(f.Fd()), uid, gid, mode, xattrs); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("close: %w", err)
		}
		if err := unix.UtimesNanoAt(pfd, base, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("set times: %w", err)
		}

	case tar.TypeSymlink:
		if err := unix.Symlinkat(hdr.Linkname, pfd, base); err != nil {
			return fmt.Errorf("symlink: %w", err)
		}
		if err := a.pathMeta(rel, pfd, base, uid, gid, 0, false, xattrs, ts); err != nil {
			return err
		}

	case tar.TypeLink:
		if err := unix.Linkat(linkParent, linkBase, pfd, base, 0); err != nil {
			return fmt.Errorf("hardlink to %q: %w", short(hdr.Linkname), err)
		}

	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		var typ uint32
		switch hdr.Typeflag {
		case tar.TypeChar:
			typ = unix.S_IFCHR
		case tar.TypeBlock:
			typ = unix.S_IFBLK
		default:
			typ = unix.S_IFIFO
		}
		if hdr.Devmajor < 0 || hdr.Devminor < 0 || hdr.Devmajor > 0xfffff || hdr.Devminor > 0xfffffff {
			return fmt.Errorf("%w: device number %d:%d", ErrInvalid, hdr.Devmajor, hdr.Devminor)
		}
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if err := unix.Mknodat(pfd, base, typ|(mode&0o777), int(dev)); err != nil {
			if errors.Is(err, unix.EPERM) {
				a.warn(rel, fmt.Errorf("device node or fifo skipped: %w", err))
				return nil
			}
			return fmt.Errorf("mknod: %w", err)
		}
		if err := a.pathMeta(rel, pfd, base, uid, gid, mode, true, xattrs, ts); err != nil {
			return err
		}
	}
	a.markCreated(rel)
	return nil
}

// rootDir applies a directory entry naming the root itself.
func (a *applier) rootDir(hdr *tar.Header, xattrs [][2]string) error {
	uid, gid, err := a.ids(hdr)
	if err != nil {
		return err
	}
	fd, err := unix.Openat(int(a.root.Fd()), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open root: %w", err)
	}
	defer unix.Close(fd)
	mode := uint32(hdr.Mode) & 0o7777
	if a.opts.StripSetuid {
		mode &^= unix.S_ISUID | unix.S_ISGID
	}
	if err := a.fdMeta("", fd, uid, gid, mode, xattrs); err != nil {
		return err
	}
	atime, mtime := tarTimes(hdr)
	a.dirs = append(a.dirs, dirTimes{rel: "", atime: atime, mtime: mtime})
	return nil
}

// ids returns the entry's (mapped) uid and gid, checked to be real IDs.
func (a *applier) ids(hdr *tar.Header) (int, int, error) {
	uid, gid := hdr.Uid, hdr.Gid
	if a.opts.IDMap != nil {
		var err error
		uid, gid, err = a.opts.IDMap(uid, gid)
		if err != nil {
			return 0, 0, fmt.Errorf("map IDs %d:%d: %w", hdr.Uid, hdr.Gid, err)
		}
	}
	const maxID = 1<<32 - 2 // (uid_t)-1 means "unchanged" to chown
	if uid < 0 || gid < 0 || uid > maxID || gid > maxID {
		return 0, 0, fmt.Errorf("%w: uid/gid %d:%d out of range", ErrInvalid, uid, gid)
	}
	return uid, gid, nil
}

// xattrs returns the entry's extended attributes that pass the filter,
// sorted by name, after checking the limits.
func (a *applier) xattrs(hdr *tar.Header) ([][2]string, error) {
	var out [][2]string
	count, bytes := 0, 0
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, paxXattrPrefix)
		if !ok {
			continue
		}
		count++
		bytes += len(name) + len(v)
		if a.filter(name) {
			out = append(out, [2]string{name, v})
		}
	}
	if count > a.lim.MaxXattrsPerEntry {
		return nil, fmt.Errorf("%w: %d extended attributes (max %d)", ErrLimit, count, a.lim.MaxXattrsPerEntry)
	}
	if bytes > a.lim.MaxXattrBytesPerEntry {
		return nil, fmt.Errorf("%w: %d bytes of extended attributes (max %d)", ErrLimit, bytes, a.lim.MaxXattrBytesPerEntry)
	}
	for _, x := range out {
		a.xattrTotal += int64(len(x[0]) + len(x[1]))
	}
	if a.xattrTotal > a.lim.MaxXattrBytes {
		return nil, fmt.Errorf("%w: %d bytes of extended attributes in the layer (max %d)", ErrLimit, a.xattrTotal, a.lim.MaxXattrBytes)
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out, nil
}

// xattrSkippable reports errors after which an extended attribute is
// skipped with a warning rather than failing the layer (as docker does).
func xattrSkippable(err error) bool {
	return errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EPERM) ||
		errors.Is(err, unix.E2BIG) || errors.Is(err, unix.ENOSPC) ||
		errors.Is(err, unix.ERANGE) || errors.Is(err, unix.EINVAL)
}

// fdMeta sets owner, mode and extended attributes through an open
// descriptor (chown before chmod: chown clears setuid bits).
func (a *applier) fdMeta(rel string, fd, uid, gid int, mode uint32, xattrs [][2]string) error {
	if err := unix.Fchown(fd, uid, gid); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	if err := unix.Fchmod(fd, mode); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	for _, x := range xattrs {
		if err := unix.Fsetxattr(fd, x[0], []byte(x[1]), 0); err != nil {
			if xattrSkippable(err) {
				a.warn(rel, fmt.Errorf("extended attribute %s skipped: %w", x[0], err))
				continue
			}
			return fmt.Errorf("set xattr %s: %w", x[0], err)
		}
	}
	return nil
}

// pathMeta sets owner, (mode), extended attributes and times of the entry
// base of the directory pfd, without following it: for symlinks, devices
// and fifos, which cannot be opened safely.
func (a *applier) pathMeta(rel string, pfd int, base string, uid, gid int, mode uint32, chmod bool, xattrs [][2]string, ts []unix.Timespec) error {
	if err := unix.Fchownat(pfd, base, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	if chmod {
		err := unix.Fchmodat(pfd, base, mode, unix.AT_SYMLINK_NOFOLLOW)
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
			// No fchmodat2: base is the node we just created, not a
			// symlink, so following it is the same.
			err = unix.Fchmodat(pfd, base, mode, 0)
		}
		if err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	for _, x := range xattrs {
		if err := unix.Lsetxattr(procPath(pfd, base), x[0], []byte(x[1]), 0); err != nil {
			if xattrSkippable(err) {
				a.warn(rel, fmt.Errorf("extended attribute %s skipped: %w", x[0], err))
				continue
			}
			return fmt.Errorf("set xattr %s: %w", x[0], err)
		}
	}
	if err := unix.UtimesNanoAt(pfd, base, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

// tarTimes returns the access and modification times of an entry, bounded
// as docker does: a time before the epoch or past what nanoseconds in an
// int64 hold becomes the epoch. A missing access time is the mtime.
func tarTimes(hdr *tar.Header) (atime, mtime unix.Timespec) {
	bound := func(t time.Time) unix.Timespec {
		if t.Before(time.Unix(0, 0)) || t.After(time.Unix(0, 1<<63-1)) {
			t = time.Unix(0, 0)
		}
		return unix.Timespec{Sec: t.Unix(), Nsec: int64(t.Nanosecond())}
	}
	mtime = bound(hdr.ModTime)
	atime = mtime
	if !hdr.AccessTime.IsZero() {
		atime = bound(hdr.AccessTime)
	}
	return atime, mtime
}

func (a *applier) opaqueXattr() string {
	if a.opts.UserXattr {
		return overlayOpaqueUser
	}
	return overlayOpaqueTrusted
}

// mkdirAll resolves the directory rel inside the root, creating missing
// components (mode 0755, owned by the mapped root) and returns an O_PATH
// descriptor of it. A component that exists but does not resolve to a
// directory inside the root (a file, a dangling symlink) is an error.
func (a *applier) mkdirAll(rel string) (int, error) {
	fd, err := resolveDir(a.root, rel)
	if err == nil || !errors.Is(err, unix.ENOENT) {
		return fd, err
	}
	cur, err := resolveDir(a.root, "")
	if err != nil {
		return -1, err
	}
	prefix := ""
	for _, c := range strings.Split(rel, "/") {
		prefix = joinRel(prefix, c)
		// One component at a time from the directory reached so far: a
		// real directory is entered directly; anything else (a symlink)
		// is resolved again from the root.
		next, err := unix.Openat(cur, c, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
			next, err = resolveDir(a.root, prefix)
		}
		if err == nil {
			unix.Close(cur)
			cur = next
			continue
		}
		if !errors.Is(err, unix.ENOENT) {
			unix.Close(cur)
			return -1, fmt.Errorf("%q: %w", short(prefix), err)
		}
		if err := unix.Mkdirat(cur, c, 0o755); err != nil {
			unix.Close(cur)
			if errors.Is(err, unix.EEXIST) {
				return -1, fmt.Errorf("%q exists and is not a directory inside the root (dangling symlink?): %w", short(prefix), unix.ENOTDIR)
			}
			return -1, fmt.Errorf("mkdir %q: %w", short(prefix), err)
		}
		dfd, err := unix.Openat(cur, c, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		unix.Close(cur)
		if err != nil {
			return -1, fmt.Errorf("open %q: %w", short(prefix), err)
		}
		if err := unix.Fchown(dfd, a.implicitUID, a.implicitGID); err != nil {
			unix.Close(dfd)
			return -1, fmt.Errorf("chown %q: %w", short(prefix), err)
		}
		if err := unix.Fchmod(dfd, 0o755); err != nil {
			unix.Close(dfd)
			return -1, fmt.Errorf("chmod %q: %w", short(prefix), err)
		}
		cur = dfd
		if _, ok := a.created[prefix]; !ok {
			a.created[prefix] = createdAncestor
		}
	}
	return cur, nil
}

// whiteout applies ".wh.NAME" or ".wh..wh..opq" found in directory parent.
func (a *applier) whiteout(parent, base string) error {
	if base == WhiteoutOpaqueDir {
		return a.opaque(parent)
	}
	if strings.HasPrefix(base, WhiteoutMetaPrefix) {
		a.warn(joinRel(parent, base), errors.New("whiteout metadata entry skipped"))
		return nil
	}
	name := base[len(WhiteoutPrefix):]
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("%w: whiteout name %q", ErrInvalid, base)
	}
	target := joinRel(parent, name)
	if _, ok := a.created[target]; ok {
		// Whiteouts only hide lower content, never this layer's.
		return nil
	}
	overlay := a.opts.Whiteouts == WhiteoutOverlay
	var pfd int
	var err error
	if overlay {
		// The 0/0 device is created even where no lower content exists.
		pfd, err = a.mkdirAll(parent)
	} else {
		pfd, err = resolveDir(a.root, parent)
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			return nil // nothing to delete
		}
	}
	if err != nil {
		return fmt.Errorf("whiteout parent: %w", err)
	}
	defer unix.Close(pfd)
	var pst unix.Stat_t
	if err := unix.Fstat(pfd, &pst); err != nil {
		return fmt.Errorf("stat whiteout parent: %w", err)
	}
	if err := removeAllAt(pfd, name, pst.Dev); err != nil {
		return fmt.Errorf("whiteout: %w", err)
	}
	if overlay {
		if err := unix.Mknodat(pfd, name, unix.S_IFCHR, 0); err != nil {
			return fmt.Errorf("create whiteout device: %w", err)
		}
	}
	return nil
}

// opaque applies ".wh..wh..opq" in directory rel.
func (a *applier) opaque(rel string) error {
	switch a.opts.Whiteouts {
	case WhiteoutOverlay:
		pfd, err := a.mkdirAll(rel)
		if err != nil {
			return fmt.Errorf("opaque directory: %w", err)
		}
		defer unix.Close(pfd)
		fd, err := unix.Openat(pfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open opaque directory: %w", err)
		}
		defer unix.Close(fd)
		if err := unix.Fsetxattr(fd, a.opaqueXattr(), []byte("y"), 0); err != nil {
			return fmt.Errorf("set opaque xattr: %w", err)
		}
		if rel != "" {
			if _, ok := a.created[rel]; !ok {
				a.markCreated(rel)
				a.created[rel] = createdAncestor
			}
		}
		return nil
	default:
		dfd, err := resolveDir(a.root, rel)
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("opaque directory: %w", err)
		}
		defer unix.Close(dfd)
		return a.removeLower(dfd, rel)
	}
}

// removeLower removes from directory dfd (the path rel) everything this
// layer did not create, recursing into directories that hold something it
// did.
func (a *applier) removeLower(dfd int, rel string) error {
	var st unix.Stat_t
	if err := unix.Fstat(dfd, &st); err != nil {
		return fmt.Errorf("stat %q: %w", short(rel), err)
	}
	names, err := readDirNames(dfd)
	if err != nil {
		return fmt.Errorf("%q: %w", short(rel), err)
	}
	for _, n := range names {
		child := joinRel(rel, n)
		if _, ok := a.created[child]; !ok {
			if err := removeAllAt(dfd, n, st.Dev); err != nil {
				return fmt.Errorf("opaque %q: %w", short(rel), err)
			}
			continue
		}
		cst, err := lstatat(dfd, n)
		if err != nil {
			return fmt.Errorf("stat %q: %w", short(child), err)
		}
		if cst.Mode&unix.S_IFMT != unix.S_IFDIR || cst.Dev != st.Dev {
			continue
		}
		cfd, err := unix.Openat(dfd, n, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %q: %w", short(child), err)
		}
		err = a.removeLower(cfd, child)
		unix.Close(cfd)
		if err != nil {
			return err
		}
	}
	return nil
}

// restoreDirTimes sets the times of the directory entries, once their
// content is in place. A directory replaced later in the layer is skipped.
func (a *applier) restoreDirTimes() error {
	for _, d := range a.dirs {
		if err := a.ctx.Err(); err != nil {
			return err
		}
		ts := []unix.Timespec{d.atime, d.mtime}
		if d.rel == "" {
			if err := unix.UtimesNanoAt(int(a.root.Fd()), ".", ts, 0); err != nil {
				return fmt.Errorf("set root times: %w", err)
			}
			continue
		}
		parent, base := splitRel(d.rel)
		pfd, err := resolveDir(a.root, parent)
		if err != nil {
			continue // replaced or removed later in the layer
		}
		st, err := lstatat(pfd, base)
		if err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			err = unix.UtimesNanoAt(pfd, base, ts, unix.AT_SYMLINK_NOFOLLOW)
			if err != nil {
				unix.Close(pfd)
				return fmt.Errorf("set times of %q: %w", short(d.rel), err)
			}
		}
		unix.Close(pfd)
	}
	return nil
}
