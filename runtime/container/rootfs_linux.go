package container

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-engine/berth/runtime/specgen"
)

// rootfsSetup builds the container's mount tree inside its new mount
// namespace. Every destination inside the rootfs is resolved with
// RESOLVE_IN_ROOT semantics (pathrs-lite) and mounted through a
// /proc/self/fd handle, so a symlink in the image cannot redirect a mount
// to the host.
type rootfsSetup struct {
	cfg   *initConfig
	spec  *specs.Spec
	linux *specs.Linux
	root  *os.File
	// idmapFd is the prepared idmapped mount for the mount being set up,
	// or -1.
	idmapFd int
}

func fdPath(f *os.File) string { return "/proc/self/fd/" + strconv.Itoa(int(f.Fd())) }

func (rs *rootfsSetup) rootPropagation() (uintptr, error) {
	if rs.linux.RootfsPropagation == "" {
		return unix.MS_SLAVE | unix.MS_REC, nil
	}
	p, ok := specgen.PropagationFlags[rs.linux.RootfsPropagation]
	if !ok {
		return 0, fmt.Errorf("invalid rootfsPropagation %q", rs.linux.RootfsPropagation)
	}
	return p, nil
}

// prepare mounts everything under the rootfs (before pivot_root).
func (rs *rootfsSetup) prepare() error {
	rootfs := rs.cfg.Rootfs
	if rs.cfg.NewMountNS {
		prop, err := rs.rootPropagation()
		if err != nil {
			return err
		}
		if err := unix.Mount("", "/", "", prop, ""); err != nil {
			return fmt.Errorf("set propagation of / : %w", err)
		}
		if err := makeParentMountPrivate(rootfs); err != nil {
			return err
		}
		if err := unix.Mount(rootfs, rootfs, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind rootfs %s onto itself: %w", rootfs, err)
		}
	}
	// Without a mount namespace of its own the container shares the
	// runtime's: its mounts are made (visibly) under the rootfs, nothing
	// above it is changed, and the root is entered with chroot.
	var err error
	rs.root, err = os.OpenFile(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open rootfs: %w", err)
	}
	devIsBind := false
	for i := range rs.spec.Mounts {
		m := &rs.spec.Mounts[i]
		rs.idmapFd = -1
		if fd, ok := rs.cfg.IDMapFds[i]; ok {
			rs.idmapFd = fd
		}
		if err := rs.mount(m); err != nil {
			return fmt.Errorf("mount %s to %s: %w", m.Source, m.Destination, err)
		}
		if filepath.Clean(m.Destination) == "/dev" && isBind(m) {
			devIsBind = true
		}
	}
	if !devIsBind {
		if err := rs.createDevices(); err != nil {
			return err
		}
		if err := rs.devSymlinks(); err != nil {
			return err
		}
	}
	return nil
}

func isBind(m *specs.Mount) bool {
	if m.Type == "bind" {
		return true
	}
	for _, o := range m.Options {
		if o == "bind" || o == "rbind" {
			return true
		}
	}
	return false
}

// makeParentMountPrivate makes the mount containing path private:
// pivot_root refuses a new root whose parent mount is shared.
func makeParentMountPrivate(path string) error {
	mounts, err := readMountinfo()
	if err != nil {
		return err
	}
	best := ""
	for _, m := range mounts {
		if (path == m.mountpoint || strings.HasPrefix(path, strings.TrimSuffix(m.mountpoint, "/")+"/")) && len(m.mountpoint) > len(best) {
			best = m.mountpoint
		}
	}
	if best == "" {
		best = "/"
	}
	if err := unix.Mount("", best, "", unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make %s private: %w", best, err)
	}
	return nil
}

type mountEntry struct {
	mountpoint string
	fstype     string
	source     string
	root       string
	superOpts  string
}

func readMountinfo() ([]mountEntry, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	var out []mountEntry
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 10 {
			continue
		}
		sep := -1
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || sep+3 >= len(f) {
			continue
		}
		out = append(out, mountEntry{
			root:       unescapeMountinfo(f[3]),
			mountpoint: unescapeMountinfo(f[4]),
			fstype:     f[sep+1],
			source:     f[sep+2],
			superOpts:  f[sep+3],
		})
	}
	return out, nil
}

func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// target creates (if needed) and opens the mount destination inside the
// rootfs; dir says whether it must be a directory.
func (rs *rootfsSetup) target(dest string, dir bool) (*os.File, error) {
	if dir {
		f, err := pathrs.MkdirAllHandle(rs.root, dest, 0o755)
		if err != nil {
			return nil, fmt.Errorf("create mount point %s: %w", dest, err)
		}
		return f, nil
	}
	parent, err := pathrs.MkdirAllHandle(rs.root, filepath.Dir(dest), 0o755)
	if err != nil {
		return nil, fmt.Errorf("create parent of mount point %s: %w", dest, err)
	}
	defer parent.Close()
	base := filepath.Base(dest)
	fd, err := unix.Openat(int(parent.Fd()), base, unix.O_CREAT|unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil && !errors.Is(err, unix.ELOOP) && !errors.Is(err, unix.EISDIR) {
		return nil, fmt.Errorf("create mount point %s: %w", dest, err)
	}
	if err == nil {
		unix.Close(fd)
	}
	f, err := pathrs.OpenatInRoot(rs.root, dest)
	if err != nil {
		return nil, fmt.Errorf("open mount point %s: %w", dest, err)
	}
	return f, nil
}

func (rs *rootfsSetup) mount(m *specs.Mount) error {
	if !filepath.IsAbs(m.Destination) {
		return fmt.Errorf("mount destination %q is not absolute", m.Destination)
	}
	opts := specgen.ParseMountOptions(m.Options)
	for _, e := range opts.Extensions {
		switch {
		case e == "tmpcopyup" && m.Type == "tmpfs":
		case (e == "idmap" || e == "ridmap") && rs.idmapFd >= 0:
		default:
			return fmt.Errorf("mount option %q is not supported for this mount", e)
		}
	}
	if isBind(m) {
		return rs.bindMount(m, opts)
	}
	switch m.Type {
	case "cgroup", "cgroup2":
		return rs.mountCgroup(m, opts)
	}
	t, err := rs.target(m.Destination, true)
	if err != nil {
		return err
	}
	defer t.Close()
	if m.Type == "proc" || m.Type == "sysfs" {
		// Mounting procfs/sysfs over something that is not a plain
		// directory is a known escape vector.
		var st unix.Stat_t
		if err := unix.Fstat(int(t.Fd()), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return fmt.Errorf("%s must be mounted on a directory", m.Type)
		}
	}
	data := opts.Data
	if m.Type != "proc" && m.Type != "sysfs" {
		data = mountLabelData(data, rs.linux.MountLabel)
	}
	err = unix.Mount(m.Source, fdPath(t), m.Type, opts.Flags, data)
	if err != nil && m.Type == "sysfs" && (errors.Is(err, unix.EPERM) || errors.Is(err, unix.EBUSY)) {
		// A sysfs mount needs a network namespace owned by our user
		// namespace; otherwise expose the host's read-only, as runc does.
		if err = unix.Mount("/sys", fdPath(t), "", unix.MS_BIND|unix.MS_REC, ""); err == nil {
			t2, oerr := pathrs.OpenatInRoot(rs.root, m.Destination)
			if oerr != nil {
				return oerr
			}
			defer t2.Close()
			err = remountBind(t2, opts.Flags|unix.MS_RDONLY, 0)
		}
	}
	if err != nil {
		return err
	}
	copyUp := m.Type == "tmpfs" && opts.HasExtension("tmpcopyup")
	if !copyUp && len(opts.Propagation) == 0 {
		return nil
	}
	// t still names the directory under the new mount; reopen to reach it.
	mnt, err := pathrs.OpenatInRoot(rs.root, m.Destination)
	if err != nil {
		return fmt.Errorf("reopen %s: %w", m.Destination, err)
	}
	defer mnt.Close()
	if copyUp {
		if err := copyTree(fdPath(t), fdPath(mnt)); err != nil {
			return fmt.Errorf("tmpcopyup: %w", err)
		}
	}
	return applyPropagation(mnt, opts.Propagation)
}

// copyTree copies the content of src into dst (both directories),
// preserving modes, owners and symlinks; used for tmpcopyup.
func copyTree(src, dst string) error {
	// src is a /proc/self/fd magic link: walk through it, not the link.
	return filepath.WalkDir(src+"/.", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		st, _ := info.Sys().(*unix.Stat_t)
		switch {
		case d.IsDir():
			if err := os.Mkdir(target, info.Mode().Perm()); err != nil && !errors.Is(err, os.ErrExist) {
				return err
			}
		case info.Mode()&os.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			if err := os.Symlink(link, target); err != nil {
				return err
			}
		case info.Mode().IsRegular():
			if err := copyFile(path, target, info.Mode().Perm()); err != nil {
				return err
			}
		default:
			if st == nil {
				return nil
			}
			if err := unix.Mknod(target, st.Mode, int(st.Rdev)); err != nil {
				return err
			}
		}
		if st != nil {
			if err := unix.Lchown(target, int(st.Uid), int(st.Gid)); err != nil {
				return err
			}
			if info.Mode()&os.ModeSymlink == 0 {
				if err := unix.Chmod(target, st.Mode&0o7777); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

func copyFile(src, dst string, perm os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func remount(t *os.File, flags uintptr) error {
	if err := unix.Mount("", fdPath(t), "", flags|unix.MS_REMOUNT, ""); err != nil {
		return fmt.Errorf("remount with flags %#x: %w", flags, err)
	}
	return nil
}

func applyPropagation(t *os.File, props []uintptr) error {
	for _, p := range props {
		if err := unix.Mount("", fdPath(t), "", p, ""); err != nil {
			return fmt.Errorf("set propagation %#x: %w", p, err)
		}
	}
	return nil
}

func (rs *rootfsSetup) bindMount(m *specs.Mount, opts specgen.ParsedMount) error {
	src := m.Source
	if !filepath.IsAbs(src) {
		src = filepath.Join(rs.cfg.Bundle, src)
	}
	sf, err := os.OpenFile(src, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open bind source: %w", err)
	}
	defer sf.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(sf.Fd()), &st); err != nil {
		return fmt.Errorf("stat bind source: %w", err)
	}
	t, err := rs.target(m.Destination, st.Mode&unix.S_IFMT == unix.S_IFDIR)
	if err != nil {
		return err
	}
	defer t.Close()
	flags := uintptr(unix.MS_BIND)
	rec := false
	for _, o := range m.Options {
		if o == "rbind" {
			rec = true
		}
	}
	if rec {
		flags |= unix.MS_REC
	}
	if rs.idmapFd >= 0 {
		err = moveIDMapMount(rs.idmapFd, t)
		unix.Close(rs.idmapFd)
	} else {
		err = unix.Mount(fdPath(sf), fdPath(t), "", flags, "")
	}
	if err != nil {
		return err
	}
	// Reopen the target: it is now the mount's root.
	t2, err := pathrs.OpenatInRoot(rs.root, m.Destination)
	if err != nil {
		return fmt.Errorf("reopen %s: %w", m.Destination, err)
	}
	defer t2.Close()
	rflags := opts.Flags &^ (unix.MS_BIND | unix.MS_REC | unix.MS_REMOUNT)
	if rflags != 0 || opts.ClearFlags != 0 {
		if err := remountBind(t2, rflags, opts.ClearFlags); err != nil {
			return err
		}
	}
	if opts.RecAttrSet != 0 || opts.RecAttrClr != 0 {
		attr := unix.MountAttr{Attr_set: opts.RecAttrSet, Attr_clr: opts.RecAttrClr}
		if err := unix.MountSetattr(int(t2.Fd()), "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &attr); err != nil {
			return fmt.Errorf("set recursive mount attributes: %w", err)
		}
	}
	return applyPropagation(t2, opts.Propagation)
}

// remountBind applies flags to a bind mount, keeping the locked flags
// (nosuid, nodev, noexec, atime) the mount already has: a remount inside a
// user namespace that tried to clear them would fail.
func remountBind(t *os.File, set, clear uintptr) error {
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(int(t.Fd()), &sfs); err != nil {
		return fmt.Errorf("statfs bind mount: %w", err)
	}
	keep := uintptr(sfs.Flags) & (unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_RDONLY | unix.MS_NOATIME | unix.MS_NODIRATIME | unix.MS_RELATIME)
	flags := (keep | set) &^ clear
	return remount(t, flags|unix.MS_BIND)
}

func (rs *rootfsSetup) mountCgroup(m *specs.Mount, opts specgen.ParsedMount) error {
	t, err := rs.target(m.Destination, true)
	if err != nil {
		return err
	}
	defer t.Close()
	flags := opts.Flags &^ unix.MS_RDONLY
	if isUnified() {
		if rs.cfg.NewCgroupNS {
			if err := unix.Mount("cgroup2", fdPath(t), "cgroup2", flags, opts.Data); err != nil {
				return err
			}
		} else if p := rs.cfg.CgroupPaths[""]; p != "" {
			if err := unix.Mount(p, fdPath(t), "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
				return err
			}
			flags |= unix.MS_BIND
		}
		if opts.Flags&unix.MS_RDONLY != 0 {
			return remount(t, flags|unix.MS_RDONLY)
		}
		return nil
	}
	// cgroup v1: a tmpfs holding one bind mount per hierarchy, each
	// showing the container's own cgroup as its root.
	if err := unix.Mount("tmpfs", fdPath(t), "tmpfs", flags, "mode=755"); err != nil {
		return err
	}
	t2, err := pathrs.OpenatInRoot(rs.root, m.Destination)
	if err != nil {
		return err
	}
	defer t2.Close()
	byDir := map[string]string{}
	var links [][2]string
	for subsys, p := range rs.cfg.CgroupPaths {
		rel, ok := strings.CutPrefix(p, "/sys/fs/cgroup/")
		if !ok || subsys == "" {
			continue
		}
		dir, _, _ := strings.Cut(rel, "/")
		byDir[dir] = p
		name := strings.TrimPrefix(subsys, "name=")
		if name != dir {
			links = append(links, [2]string{name, dir})
		}
	}
	dirs := make([]string, 0, len(byDir))
	for d := range byDir {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	for _, d := range dirs {
		if err := unix.Mkdirat(int(t2.Fd()), d, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
			return err
		}
		sub, err := pathrs.OpenatInRoot(t2, d)
		if err != nil {
			return err
		}
		err = unix.Mount(byDir[d], fdPath(sub), "", unix.MS_BIND, "")
		sub.Close()
		if err != nil {
			return fmt.Errorf("bind cgroup %s: %w", byDir[d], err)
		}
	}
	for _, l := range links {
		if err := unix.Symlinkat(l[1], int(t2.Fd()), l[0]); err != nil && !errors.Is(err, unix.EEXIST) {
			return err
		}
	}
	// One call makes the tmpfs and every hierarchy below it nosuid, nodev,
	// noexec and, if asked, read-only.
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC}
	if opts.Flags&unix.MS_RDONLY != 0 {
		attr.Attr_set |= unix.MOUNT_ATTR_RDONLY
	}
	if err := unix.MountSetattr(int(t2.Fd()), "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &attr); err != nil {
		return fmt.Errorf("set cgroup mount attributes: %w", err)
	}
	return nil
}

func isUnified() bool {
	var st unix.Statfs_t
	return unix.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
}

// defaultDevices are created in every container whose /dev is not a bind
// mount of the host's, as the runtime spec requires.
var defaultDevices = []specs.LinuxDevice{
	{Path: "/dev/null", Type: "c", Major: 1, Minor: 3},
	{Path: "/dev/zero", Type: "c", Major: 1, Minor: 5},
	{Path: "/dev/full", Type: "c", Major: 1, Minor: 7},
	{Path: "/dev/random", Type: "c", Major: 1, Minor: 8},
	{Path: "/dev/urandom", Type: "c", Major: 1, Minor: 9},
	{Path: "/dev/tty", Type: "c", Major: 5, Minor: 0},
}

func (rs *rootfsSetup) createDevices() error {
	mode := os.FileMode(0o666)
	seen := map[string]bool{}
	all := append([]specs.LinuxDevice{}, rs.linux.Devices...)
	for _, d := range defaultDevices {
		d.FileMode = &mode
		all = append(all, d)
	}
	for _, d := range all {
		p := filepath.Clean(d.Path)
		if seen[p] {
			continue
		}
		seen[p] = true
		if err := rs.createDevice(d); err != nil {
			return fmt.Errorf("create device %s: %w", d.Path, err)
		}
	}
	return nil
}

func deviceMode(d specs.LinuxDevice) (uint32, error) {
	var t uint32
	switch d.Type {
	case "c", "u":
		t = unix.S_IFCHR
	case "b":
		t = unix.S_IFBLK
	case "p":
		t = unix.S_IFIFO
	default:
		return 0, fmt.Errorf("unknown device type %q", d.Type)
	}
	perm := uint32(0o666)
	if d.FileMode != nil {
		perm = uint32(d.FileMode.Perm())
	}
	return t | perm, nil
}

func (rs *rootfsSetup) createDevice(d specs.LinuxDevice) error {
	if !strings.HasPrefix(filepath.Clean(d.Path), "/dev/") {
		return fmt.Errorf("device path %q is not under /dev", d.Path)
	}
	mode, err := deviceMode(d)
	if err != nil {
		return err
	}
	parent, err := pathrs.MkdirAllHandle(rs.root, filepath.Dir(d.Path), 0o755)
	if err != nil {
		return err
	}
	defer parent.Close()
	base := filepath.Base(d.Path)
	_ = unix.Unlinkat(int(parent.Fd()), base, 0)
	if rs.cfg.NewUserNS {
		// mknod is not allowed in a user namespace: bind the host's node.
		fd, err := unix.Openat(int(parent.Fd()), base, unix.O_CREAT|unix.O_EXCL|unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
		if err != nil {
			return err
		}
		unix.Close(fd)
		t, err := pathrs.OpenatInRoot(parent, base)
		if err != nil {
			return err
		}
		defer t.Close()
		return unix.Mount(d.Path, fdPath(t), "", unix.MS_BIND, "")
	}
	dev := unix.Mkdev(uint32(d.Major), uint32(d.Minor))
	if err := unix.Mknodat(int(parent.Fd()), base, mode, int(dev)); err != nil {
		return err
	}
	// mknod applies the umask; set the exact mode.
	if err := unix.Fchmodat(int(parent.Fd()), base, mode&0o7777, 0); err != nil {
		return err
	}
	uid, gid := 0, 0
	if d.UID != nil {
		uid = int(*d.UID)
	}
	if d.GID != nil {
		gid = int(*d.GID)
	}
	return unix.Fchownat(int(parent.Fd()), base, uid, gid, unix.AT_SYMLINK_NOFOLLOW)
}

func (rs *rootfsSetup) devSymlinks() error {
	dev, err := pathrs.MkdirAllHandle(rs.root, "/dev", 0o755)
	if err != nil {
		return err
	}
	defer dev.Close()
	links := [][2]string{
		{"/proc/self/fd", "fd"},
		{"/proc/self/fd/0", "stdin"},
		{"/proc/self/fd/1", "stdout"},
		{"/proc/self/fd/2", "stderr"},
	}
	if _, err := os.Stat("/proc/kcore"); err == nil {
		links = append(links, [2]string{"/proc/kcore", "core"})
	}
	for _, l := range links {
		if err := unix.Symlinkat(l[0], int(dev.Fd()), l[1]); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("create /dev/%s: %w", l[1], err)
		}
	}
	// /dev/ptmx must be the devpts instance's own multiplexer.
	if err := unix.Unlinkat(int(dev.Fd()), "ptmx", 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove /dev/ptmx: %w", err)
	}
	if err := unix.Symlinkat("pts/ptmx", int(dev.Fd()), "ptmx"); err != nil {
		return fmt.Errorf("create /dev/ptmx: %w", err)
	}
	return nil
}

// pivot makes the rootfs the process's root.
func (rs *rootfsSetup) pivot() error {
	defer rs.root.Close()
	rootfs := rs.cfg.Rootfs
	if !rs.cfg.NewMountNS {
		if err := unix.Chroot(rootfs); err != nil {
			return fmt.Errorf("chroot: %w", err)
		}
		return unix.Chdir("/")
	}
	if rs.cfg.NoPivot {
		if err := unix.Chdir(rootfs); err != nil {
			return fmt.Errorf("chdir to rootfs: %w", err)
		}
		if err := unix.Mount(rootfs, "/", "", unix.MS_MOVE, ""); err != nil {
			return fmt.Errorf("move rootfs to /: %w", err)
		}
		if err := unix.Chroot("."); err != nil {
			return fmt.Errorf("chroot: %w", err)
		}
		return unix.Chdir("/")
	}
	oldroot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open old root: %w", err)
	}
	defer unix.Close(oldroot)
	newroot, err := unix.Open(rootfs, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open new root: %w", err)
	}
	defer unix.Close(newroot)
	if err := unix.Fchdir(newroot); err != nil {
		return fmt.Errorf("chdir to new root: %w", err)
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Fchdir(oldroot); err != nil {
		return fmt.Errorf("chdir to old root: %w", err)
	}
	// Keep the unmount from propagating to the host.
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make old root slave: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unmount old root: %w", err)
	}
	return unix.Chdir("/")
}

// finalize runs after pivot_root: read-only root and root propagation.
func (rs *rootfsSetup) finalize() error {
	if !rs.cfg.NewMountNS {
		// Remounting / here would change the host's root.
		if rs.spec.Root != nil && rs.spec.Root.Readonly {
			return errors.New("root.readonly needs a mount namespace")
		}
		return nil
	}
	if rs.linux.RootfsPropagation != "" {
		p, _ := rs.rootPropagation()
		if err := unix.Mount("", "/", "", p, ""); err != nil {
			return fmt.Errorf("set rootfs propagation: %w", err)
		}
	}
	if rs.spec.Root != nil && rs.spec.Root.Readonly {
		var sfs unix.Statfs_t
		if err := unix.Statfs("/", &sfs); err != nil {
			return fmt.Errorf("statfs /: %w", err)
		}
		keep := uintptr(sfs.Flags) & (unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
		if err := unix.Mount("", "/", "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|keep, ""); err != nil {
			return fmt.Errorf("make rootfs read-only: %w", err)
		}
	}
	return nil
}

// maskAndReadonly applies linux.readonlyPaths and linux.maskedPaths.
func (rs *rootfsSetup) maskAndReadonly() error {
	for _, p := range rs.linux.ReadonlyPaths {
		if err := readonlyPath(p); err != nil {
			return err
		}
	}
	if len(rs.linux.MaskedPaths) == 0 {
		return nil
	}
	null, err := os.OpenFile("/dev/null", unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /dev/null for masking: %w", err)
	}
	defer null.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(null.Fd()), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != unix.Mkdev(1, 3) {
		return errors.New("/dev/null in the container is not the null device; refusing to mask paths with it")
	}
	for _, p := range rs.linux.MaskedPaths {
		if err := maskPath(p, null); err != nil {
			return err
		}
	}
	return nil
}

func readonlyPath(p string) error {
	target, err := os.OpenFile(p, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("readonly path %s: %w", p, err)
	}
	defer target.Close()
	// A read-only clone of the path's mount tree, moved on top of it.
	clone, err := unix.OpenTree(int(target.Fd()), "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE|unix.AT_EMPTY_PATH)
	if err != nil {
		return fmt.Errorf("readonly path %s: %w", p, err)
	}
	defer unix.Close(clone)
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC}
	if err := unix.MountSetattr(clone, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &attr); err != nil {
		return fmt.Errorf("readonly path %s: %w", p, err)
	}
	if err := unix.MoveMount(clone, "", int(target.Fd()), "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("readonly path %s: %w", p, err)
	}
	return nil
}

func maskPath(p string, null *os.File) error {
	f, err := os.OpenFile(p, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("mask path %s: %w", p, err)
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return fmt.Errorf("mask path %s: %w", p, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		err = unix.Mount("tmpfs", fdPath(f), "tmpfs", unix.MS_RDONLY, "")
	} else {
		err = unix.Mount(fdPath(null), fdPath(f), "", unix.MS_BIND, "")
	}
	if err != nil {
		return fmt.Errorf("mask path %s: %w", p, err)
	}
	return nil
}
