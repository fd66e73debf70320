package container

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-engine/berth/runtime/specgen"
)

// HoldArg is argv[1] of the runtime binary when it only holds a user
// namespace open for an idmapped mount: it waits for stdin to close.
const HoldArg = "_hold-userns"

// Hold is the entry point for HoldArg.
func Hold() {
	buf := make([]byte, 1)
	_, _ = os.Stdin.Read(buf)
	os.Exit(0)
}

// idmapMount is a detached, idmapped clone of a bind mount's source,
// prepared by the runtime (which has the privilege over the source's mount
// namespace) and moved into place by the container init.
type idmapMount struct {
	index int // in spec.Mounts
	file  *os.File
}

// needsIDMap reports whether a mount asks for an idmapped mount, and
// whether recursively.
func needsIDMap(m *specs.Mount) (idmap, recursive bool) {
	p := specgen.ParseMountOptions(m.Options)
	return p.HasExtension("idmap") || p.HasExtension("ridmap"), p.HasExtension("ridmap")
}

// prepareIDMapMounts creates the idmapped clones for every mount that asks
// for one. Mounts without their own mappings use the container's.
func prepareIDMapMounts(spec *specs.Spec, bundle string) (mounts []idmapMount, cleanup func(), err error) {
	holders := map[string]*userNSHolder{}
	cleanup = func() {
		for _, h := range holders {
			h.close()
		}
		for _, m := range mounts {
			m.file.Close()
		}
	}
	defer func() {
		if err != nil {
			cleanup()
			mounts = nil
		}
	}()
	for i := range spec.Mounts {
		m := &spec.Mounts[i]
		idmap, recursive := needsIDMap(m)
		if !idmap {
			continue
		}
		if !isBind(m) {
			return nil, nil, fmt.Errorf("%w: mount %s: idmap is only supported for bind mounts", ErrInvalidInput, m.Destination)
		}
		uids, gids := m.UIDMappings, m.GIDMappings
		if len(uids) == 0 && len(gids) == 0 {
			uids, gids = spec.Linux.UIDMappings, spec.Linux.GIDMappings
		}
		if len(uids) == 0 || len(gids) == 0 {
			return nil, nil, fmt.Errorf("%w: mount %s: idmap needs uid and gid mappings (on the mount or the container)", ErrInvalidInput, m.Destination)
		}
		key := formatIDMap(uids) + "|" + formatIDMap(gids)
		h := holders[key]
		if h == nil {
			if h, err = newUserNSHolder(uids, gids); err != nil {
				return nil, nil, fmt.Errorf("mount %s: %w", m.Destination, err)
			}
			holders[key] = h
		}
		src := m.Source
		if !filepath.IsAbs(src) {
			src = filepath.Join(bundle, src)
		}
		flags := uint(unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC)
		setFlags := unix.AT_EMPTY_PATH
		rec := recursive
		for _, o := range m.Options {
			if o == "rbind" {
				rec = true
			}
		}
		if rec {
			flags |= unix.AT_RECURSIVE
		}
		if recursive {
			setFlags |= unix.AT_RECURSIVE
		}
		fd, err := unix.OpenTree(unix.AT_FDCWD, src, flags)
		if err != nil {
			return nil, nil, fmt.Errorf("mount %s: clone %s: %w", m.Destination, src, err)
		}
		attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(h.fd.Fd())}
		if err := unix.MountSetattr(fd, "", uint(setFlags), &attr); err != nil {
			unix.Close(fd)
			return nil, nil, fmt.Errorf("mount %s: idmap %s: %w", m.Destination, src, err)
		}
		mounts = append(mounts, idmapMount{index: i, file: os.NewFile(uintptr(fd), "idmap-"+strconv.Itoa(i))})
	}
	for _, h := range holders {
		h.close()
	}
	holders = nil
	return mounts, cleanup, nil
}

// userNSHolder is a process parked in a new user namespace with the given
// mappings, and an fd of that namespace.
type userNSHolder struct {
	cmd   *exec.Cmd
	stdin *os.File
	fd    *os.File
}

func newUserNSHolder(uids, gids []specs.LinuxIDMapping) (*userNSHolder, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	toSys := func(maps []specs.LinuxIDMapping) []syscall.SysProcIDMap {
		out := make([]syscall.SysProcIDMap, 0, len(maps))
		for _, m := range maps {
			out = append(out, syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)})
		}
		return out
	}
	cmd := &exec.Cmd{
		Path:  "/proc/self/exe",
		Args:  []string{"berth-runtime", HoldArg},
		Stdin: r,
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags:  unix.CLONE_NEWUSER,
			UidMappings: toSys(uids),
			GidMappings: toSys(gids),
		},
	}
	if err := cmd.Start(); err != nil {
		w.Close()
		return nil, fmt.Errorf("start user namespace holder: %w", err)
	}
	h := &userNSHolder{cmd: cmd, stdin: w}
	h.fd, err = os.Open("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/ns/user")
	if err != nil {
		h.close()
		return nil, fmt.Errorf("open holder's user namespace: %w", err)
	}
	return h, nil
}

func (h *userNSHolder) close() {
	if h.fd != nil {
		h.fd.Close()
	}
	h.stdin.Close()
	_ = h.cmd.Wait()
}

// moveIDMapMount attaches a prepared idmapped mount at the target.
func moveIDMapMount(fd int, target *os.File) error {
	if err := unix.MoveMount(fd, "", int(target.Fd()), "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("attach idmapped mount: %w", err)
	}
	return nil
}
