package snapshot

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// mounts returns the mounts of snapshot id of the given kind whose parents
// have the directory IDs lowers, nearest first.
func (s *Snapshotter) mounts(kind Kind, id uint64, lowers []uint64) []Mount {
	ro := kind != KindActive
	if s.driver == DriverNative {
		if ro && len(lowers) > 0 {
			return []Mount{bindMount(s.fsDir(lowers[0]), true)}
		}
		return []Mount{bindMount(s.fsDir(id), ro)}
	}
	switch {
	case len(lowers) == 0:
		return []Mount{bindMount(s.fsDir(id), ro)}
	case ro && len(lowers) == 1:
		return []Mount{bindMount(s.fsDir(lowers[0]), true)}
	}
	dirs := make([]string, len(lowers))
	for i, l := range lowers {
		dirs[i] = s.fsDir(l)
	}
	// index=off: an inode index would tie each lower directory to the
	// first overlay using it, and later mounts would fail with EBUSY.
	opts := []string{"index=off", "lowerdir=" + strings.Join(dirs, ":")}
	if ro {
		opts = append(opts, "ro")
	} else {
		opts = append(opts, "upperdir="+s.fsDir(id), "workdir="+s.workDir(id))
	}
	return []Mount{{Type: "overlay", Source: "overlay", Options: opts}}
}

func bindMount(source string, ro bool) Mount {
	mode := "rw"
	if ro {
		mode = "ro"
	}
	return Mount{Type: "bind", Source: source, Options: []string{"bind", mode}}
}

// MountAll mounts mounts, in order, onto the existing directory target.
// If one fails, those already mounted are detached again. An overlay whose
// options do not fit in the one page mount(2) accepts (many layers under a
// long root) is mounted through the file-descriptor based mount API,
// passing each layer on its own (Linux 6.8 or later).
func MountAll(mounts []Mount, target string) error {
	for i, m := range mounts {
		if err := m.mount(target); err != nil {
			for range i {
				_ = unix.Unmount(target, unix.MNT_DETACH)
			}
			return fmt.Errorf("snapshot: mount %s %s on %s: %w", m.Type, m.Source, target, err)
		}
	}
	return nil
}

// UnmountAll detaches every mount stacked on target (lazily, MNT_DETACH).
// Nothing mounted there, or no target at all, is not an error.
func UnmountAll(target string) error {
	for {
		err := unix.Unmount(target, unix.MNT_DETACH)
		switch err {
		case nil, unix.EINTR:
			continue
		case unix.EINVAL, unix.ENOENT:
			return nil
		}
		return fmt.Errorf("snapshot: unmount %s: %w", target, err)
	}
}

// mountFlag returns the mount(2) flag an option stands for, and whether
// the option sets or clears it; ok is false for filesystem data.
func mountFlag(option string) (flag uintptr, clear, ok bool) {
	switch option {
	case "ro":
		return unix.MS_RDONLY, false, true
	case "rw":
		return unix.MS_RDONLY, true, true
	case "bind":
		return unix.MS_BIND, false, true
	case "rbind":
		return unix.MS_BIND | unix.MS_REC, false, true
	case "nosuid":
		return unix.MS_NOSUID, false, true
	case "suid":
		return unix.MS_NOSUID, true, true
	case "nodev":
		return unix.MS_NODEV, false, true
	case "dev":
		return unix.MS_NODEV, true, true
	case "noexec":
		return unix.MS_NOEXEC, false, true
	case "exec":
		return unix.MS_NOEXEC, true, true
	case "noatime":
		return unix.MS_NOATIME, false, true
	case "relatime":
		return unix.MS_RELATIME, false, true
	case "strictatime":
		return unix.MS_STRICTATIME, false, true
	case "nodiratime":
		return unix.MS_NODIRATIME, false, true
	}
	return 0, false, false
}

// parseOptions splits options into mount(2) flags and filesystem data.
func parseOptions(options []string) (flags uintptr, data []string) {
	for _, o := range options {
		flag, clear, ok := mountFlag(o)
		switch {
		case !ok:
			data = append(data, o)
		case clear:
			flags &^= flag
		default:
			flags |= flag
		}
	}
	return flags, data
}

// perMountFlags are the flags a bind mount gets through a remount.
const perMountFlags = unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC |
	unix.MS_NOATIME | unix.MS_RELATIME | unix.MS_STRICTATIME | unix.MS_NODIRATIME

func (m Mount) mount(target string) error {
	flags, data := parseOptions(m.Options)
	if m.Type == "bind" || flags&unix.MS_BIND != 0 {
		if err := unix.Mount(m.Source, target, "", flags&(unix.MS_BIND|unix.MS_REC)|unix.MS_BIND, ""); err != nil {
			return err
		}
		// A bind mount ignores the other flags: apply them by remounting.
		if extra := flags & perMountFlags; extra != 0 {
			if err := unix.Mount("", target, "", unix.MS_REMOUNT|unix.MS_BIND|extra, ""); err != nil {
				_ = unix.Unmount(target, unix.MNT_DETACH)
				return fmt.Errorf("remount: %w", err)
			}
		}
		return nil
	}
	joined := strings.Join(data, ",")
	// The data must fit in a page, its terminating NUL included.
	if m.Type == "overlay" && len(joined) >= os.Getpagesize() {
		return mountOverlayFD(m.Source, target, flags, data)
	}
	return unix.Mount(m.Source, target, m.Type, flags, joined)
}

// mountOverlayFD mounts an overlay through fsopen/fsconfig/fsmount, which
// take one layer per call ("lowerdir+", Linux 6.8), so that no option
// string has to hold all the layers. Each directory is passed as an
// O_PATH file descriptor (Linux 6.13), or else as its path, or as
// /proc/self/fd/N when the path is longer than the 255 bytes fsconfig
// accepts for a string.
func mountOverlayFD(source, target string, flags uintptr, data []string) (err error) {
	fsfd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("fsopen overlay: %w", err)
	}
	defer unix.Close(fsfd)
	// The kernel explains a failed fsconfig in the context's log.
	defer func() {
		if err != nil {
			if msg := fsContextLog(fsfd); msg != "" {
				err = fmt.Errorf("%w (%s)", err, msg)
			}
		}
	}()
	var fds []int
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	setFD := true
	setDir := func(key, path string) error {
		fd, err := unix.Open(path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %s: %w", path, err)
		}
		fds = append(fds, fd)
		if setFD {
			err := unix.FsconfigSetFd(fsfd, key, fd)
			if err != unix.EINVAL {
				if err != nil {
					return fmt.Errorf("fsconfig %s %s: %w", key, path, err)
				}
				return nil
			}
			setFD = false // this kernel takes layers as strings only
		}
		value := path
		if len(value) > 255 {
			value = fmt.Sprintf("/proc/self/fd/%d", fd)
		}
		if err := unix.FsconfigSetString(fsfd, key, value); err != nil {
			return fmt.Errorf("fsconfig %s %s: %w", key, path, err)
		}
		return nil
	}

	if source != "" {
		if err := unix.FsconfigSetString(fsfd, "source", source); err != nil {
			return fmt.Errorf("fsconfig source: %w", err)
		}
	}
	for _, o := range data {
		key, value, hasValue := strings.Cut(o, "=")
		switch {
		case key == "lowerdir":
			for _, dir := range strings.Split(value, ":") {
				if err := setDir("lowerdir+", dir); err != nil {
					return err
				}
			}
		case key == "upperdir" || key == "workdir":
			if err := setDir(key, value); err != nil {
				return err
			}
		case hasValue:
			if err := unix.FsconfigSetString(fsfd, key, value); err != nil {
				return fmt.Errorf("fsconfig %s: %w", o, err)
			}
		default:
			if err := unix.FsconfigSetFlag(fsfd, key); err != nil {
				return fmt.Errorf("fsconfig %s: %w", o, err)
			}
		}
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return fmt.Errorf("fsconfig create: %w", err)
	}
	var attrs int
	for _, fa := range []struct {
		flag uintptr
		attr int
	}{
		{unix.MS_RDONLY, unix.MOUNT_ATTR_RDONLY},
		{unix.MS_NOSUID, unix.MOUNT_ATTR_NOSUID},
		{unix.MS_NODEV, unix.MOUNT_ATTR_NODEV},
		{unix.MS_NOEXEC, unix.MOUNT_ATTR_NOEXEC},
		{unix.MS_NOATIME, unix.MOUNT_ATTR_NOATIME},
		{unix.MS_STRICTATIME, unix.MOUNT_ATTR_STRICTATIME},
		{unix.MS_NODIRATIME, unix.MOUNT_ATTR_NODIRATIME},
	} {
		if flags&fa.flag != 0 {
			attrs |= fa.attr
		}
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, attrs)
	if err != nil {
		return fmt.Errorf("fsmount: %w", err)
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("move_mount: %w", err)
	}
	return nil
}

// fsContextLog drains the messages the kernel logged on a filesystem
// context (lines starting with "e ", "w " or "i ").
func fsContextLog(fsfd int) string {
	var msgs []string
	buf := make([]byte, 4096)
	for range 32 {
		n, err := unix.Read(fsfd, buf)
		if err != nil || n <= 0 {
			break
		}
		msgs = append(msgs, strings.TrimSpace(string(buf[:n])))
	}
	return strings.Join(msgs, "; ")
}
