package container

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-engine/berth/internal/atomicfile"
	"github.com/berth-engine/berth/runtime/cgroup"
	"github.com/berth-engine/berth/runtime/seccomp"
	"github.com/berth-engine/berth/runtime/specgen"
)

// CreateOpts are the inputs of Create (runc create's flags).
type CreateOpts struct {
	ID     string
	Bundle string
	// ConsoleSocket is the path of a unix socket that receives the pty
	// master when process.terminal is set.
	ConsoleSocket string
	// ConsoleConn overrides ConsoleSocket with an open socket (used by run).
	ConsoleConn  *os.File
	PidFile      string
	NoPivot      bool
	NoNewKeyring bool
	// PreserveFds passes this many fds, from fd 3 of the caller, on.
	PreserveFds int
	// Stdin, Stdout and Stderr are the container's stdio (nil: /dev/null).
	Stdin, Stdout, Stderr *os.File
	// CgroupParent places empty and relative cgroup paths (default /berth).
	CgroupParent string
	// Spec, when set, is the bundle's configuration already loaded with
	// LoadSpec (saves reading it twice).
	Spec *specs.Spec
}

// nsNames maps runtime-spec namespace types to kernel names and flags.
var nsNames = map[specs.LinuxNamespaceType]struct {
	name string
	flag uintptr
}{
	specs.PIDNamespace:     {"pid", unix.CLONE_NEWPID},
	specs.NetworkNamespace: {"net", unix.CLONE_NEWNET},
	specs.MountNamespace:   {"mnt", unix.CLONE_NEWNS},
	specs.IPCNamespace:     {"ipc", unix.CLONE_NEWIPC},
	specs.UTSNamespace:     {"uts", unix.CLONE_NEWUTS},
	specs.UserNamespace:    {"user", unix.CLONE_NEWUSER},
	specs.CgroupNamespace:  {"cgroup", unix.CLONE_NEWCGROUP},
	specs.TimeNamespace:    {"time", unix.CLONE_NEWTIME},
}

// LoadSpec reads and validates <bundle>/config.json.
func LoadSpec(bundle string) (*specs.Spec, error) {
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: JSON specification file config.json not found in bundle %s", ErrInvalidInput, bundle)
		}
		return nil, fmt.Errorf("read config.json: %w", err)
	}
	var spec specs.Spec
	dec := json.NewDecoder(strings.NewReader(string(data)))
	if err := dec.Decode(&spec); err != nil {
		return nil, fmt.Errorf("%w: config.json: %v", ErrInvalidInput, err)
	}
	if err := validateSpec(&spec); err != nil {
		return nil, err
	}
	return &spec, nil
}

func validateSpec(s *specs.Spec) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: config.json: %s", ErrInvalidInput, fmt.Sprintf(format, a...))
	}
	if s.Version == "" {
		return bad("ociVersion is empty")
	}
	if !strings.HasPrefix(s.Version, "1.") {
		return bad("unsupported ociVersion %q", s.Version)
	}
	if s.Root == nil || s.Root.Path == "" {
		return bad("root.path is required")
	}
	// process is optional until start (runtime spec); when present it
	// must be valid.
	if p := s.Process; p != nil {
		if len(p.Args) == 0 {
			return bad("process.args must not be empty")
		}
		if p.Cwd != "" && !filepath.IsAbs(p.Cwd) {
			return bad("process.cwd %q is not an absolute path", p.Cwd)
		}
		if err := validateRlimits(p.Rlimits); err != nil {
			return err
		}
		if err := validateCaps(p.Capabilities); err != nil {
			return err
		}
	}
	for _, m := range s.Mounts {
		if !filepath.IsAbs(m.Destination) {
			return bad("mount destination %q is not absolute", m.Destination)
		}
	}
	if s.Linux == nil {
		return bad("linux section is required on Linux")
	}
	seen := map[specs.LinuxNamespaceType]bool{}
	for _, ns := range s.Linux.Namespaces {
		if _, ok := nsNames[ns.Type]; !ok {
			return bad("unknown namespace type %q", ns.Type)
		}
		if seen[ns.Type] {
			return bad("namespace %q is listed twice", ns.Type)
		}
		seen[ns.Type] = true
	}
	newUser := false
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == specs.UserNamespace && ns.Path == "" {
			newUser = true
		}
	}
	if newUser && (len(s.Linux.UIDMappings) == 0 || len(s.Linux.GIDMappings) == 0) {
		return bad("a new user namespace needs linux.uidMappings and linux.gidMappings")
	}
	if !newUser && (len(s.Linux.UIDMappings) > 0 || len(s.Linux.GIDMappings) > 0) && !seen[specs.UserNamespace] {
		return bad("uid/gid mappings are given without a user namespace")
	}
	if s.Linux.Sysctl != nil {
		for k := range s.Linux.Sysctl {
			if err := checkSysctl(k, seen); err != nil {
				return bad("%v", err)
			}
		}
	}
	if s.Process != nil && s.Process.ConsoleSize != nil && s.Process.ConsoleSize.Height == 0 && s.Process.ConsoleSize.Width == 0 {
		s.Process.ConsoleSize = nil
	}
	if s.Process != nil && s.Process.SelinuxLabel != "" && !selinuxEnabled() {
		return fmt.Errorf("%w: selinux label is specified in config, but selinux is disabled or not supported", ErrInvalidInput)
	}
	if s.Linux.Seccomp != nil {
		if err := seccomp.Validate(s.Linux.Seccomp); err != nil {
			return bad("seccomp: %v", err)
		}
	}
	if s.Linux.RootfsPropagation != "" {
		if _, ok := specgen.PropagationFlags[s.Linux.RootfsPropagation]; !ok {
			return bad("invalid rootfsPropagation %q", s.Linux.RootfsPropagation)
		}
	}
	return nil
}

// checkSysctl allows only namespaced sysctls whose namespace the container
// owns, as runc does.
func checkSysctl(key string, ns map[specs.LinuxNamespaceType]bool) error {
	switch {
	case strings.HasPrefix(key, "fs.mqueue.") || strings.HasPrefix(key, "kernel.msg") ||
		strings.HasPrefix(key, "kernel.sem") || strings.HasPrefix(key, "kernel.shm"):
		if !ns[specs.IPCNamespace] {
			return fmt.Errorf("sysctl %q is not allowed in the host's ipc namespace", key)
		}
	case strings.HasPrefix(key, "net."):
		if !ns[specs.NetworkNamespace] {
			return fmt.Errorf("sysctl %q is not allowed in the host's network namespace", key)
		}
	case key == "kernel.hostname" || key == "kernel.domainname":
		if !ns[specs.UTSNamespace] {
			return fmt.Errorf("sysctl %q is not allowed in the host's uts namespace", key)
		}
	default:
		return fmt.Errorf("sysctl %q is not in a separate kernel namespace", key)
	}
	return nil
}

// namespacePlan splits the spec's namespaces into joins and new ones.
func namespacePlan(l *specs.Linux) (joins []nsJoin, flags uintptr) {
	for _, ns := range l.Namespaces {
		n := nsNames[ns.Type]
		if ns.Path != "" {
			joins = append(joins, nsJoin{Type: n.name, Path: ns.Path})
		} else {
			flags |= n.flag
		}
	}
	return joins, flags
}

func hasNewNS(l *specs.Linux, t specs.LinuxNamespaceType) bool {
	for _, ns := range l.Namespaces {
		if ns.Type == t && ns.Path == "" {
			return true
		}
	}
	return false
}

func timeOffsets(l *specs.Linux) string {
	var b strings.Builder
	for clock, off := range l.TimeOffsets {
		fmt.Fprintf(&b, "%s %d %d\n", clock, off.Secs, off.Nanosecs)
	}
	return b.String()
}

// Create creates a container from a bundle and leaves its init waiting for
// Start. On failure nothing is left behind: no state, cgroup or process.
func (s *Store) Create(ctx context.Context, o CreateOpts) (retErr error) {
	if err := ValidateID(o.ID); err != nil {
		return err
	}
	bundle, err := filepath.Abs(o.Bundle)
	if err != nil {
		return fmt.Errorf("bundle path: %w", err)
	}
	spec := o.Spec
	if spec == nil {
		if spec, err = LoadSpec(bundle); err != nil {
			return err
		}
	}
	rootfs := spec.Root.Path
	if !filepath.IsAbs(rootfs) {
		rootfs = filepath.Join(bundle, rootfs)
	}
	if rootfs, err = filepath.EvalSymlinks(rootfs); err != nil {
		return fmt.Errorf("%w: rootfs: %v", ErrInvalidInput, err)
	}
	if st, err := os.Stat(rootfs); err != nil || !st.IsDir() {
		return fmt.Errorf("%w: rootfs %s is not a directory", ErrInvalidInput, rootfs)
	}

	if err := os.MkdirAll(s.Root, 0o700); err != nil {
		return fmt.Errorf("create state root: %w", err)
	}
	dir := s.dir(o.ID)
	if err := os.Mkdir(dir, 0o711); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s: %w", o.ID, ErrExist)
		}
		return fmt.Errorf("create state dir: %w", err)
	}
	unlock, err := s.lock(o.ID)
	if err != nil {
		os.RemoveAll(dir)
		return err
	}
	defer unlock()
	failpoint("create:dir")

	rec := &record{
		ID:      o.ID,
		Bundle:  bundle,
		Rootfs:  rootfs,
		Created: time.Now().UTC(),
		Spec:    spec,
	}
	var mgr *cgroup.Manager
	var cgPrepared func() error
	defer func() {
		if retErr == nil {
			return
		}
		if mgr != nil {
			_ = cgPrepared()
			_ = mgr.Destroy()
		}
		os.RemoveAll(dir)
	}()

	fifoPath := filepath.Join(dir, fifoName)
	if err := unix.Mkfifo(fifoPath, 0o622); err != nil {
		return fmt.Errorf("create exec fifo: %w", err)
	}
	// The container's root (maybe an unprivileged host uid in a user
	// namespace) opens the fifo for writing.
	rootUID, rootGID := hostID(spec.Linux.UIDMappings, 0), hostID(spec.Linux.GIDMappings, 0)
	if err := os.Chown(fifoPath, rootUID, rootGID); err != nil {
		return fmt.Errorf("chown exec fifo: %w", err)
	}
	if err := os.Chmod(fifoPath, 0o622); err != nil {
		return fmt.Errorf("chmod exec fifo: %w", err)
	}
	fifo, err := os.OpenFile(fifoPath, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open exec fifo: %w", err)
	}
	defer fifo.Close()

	resources := cgroupResources(spec.Linux.Resources)
	mgr, err = cgroup.New(spec.Linux.CgroupsPath, o.ID, resources, cgroup.Options{Parent: o.CgroupParent})
	if err != nil {
		return err
	}
	// Recorded before the cgroup exists: if this process dies from here on,
	// delete finds what to remove.
	rec.CgroupPaths = mgr.Paths()
	if err := s.save(rec); err != nil {
		return err
	}
	// The cgroup is created and configured while the init starts; only
	// joining it waits for the init's pid.
	cgErr := make(chan error, 1)
	go func() {
		err := mgr.Apply(-1)
		if err == nil {
			err = mgr.Set(resources)
		}
		if err == nil {
			failpoint("create:cgroup")
		}
		cgErr <- err
	}()
	cgPrepared = sync.OnceValue(func() error { return <-cgErr })

	var console *os.File
	if spec.Process != nil && spec.Process.Terminal {
		switch {
		case o.ConsoleConn != nil:
			console = o.ConsoleConn
		case o.ConsoleSocket != "":
			console, err = dialConsole(o.ConsoleSocket)
			if err != nil {
				return err
			}
			defer console.Close()
		default:
			return fmt.Errorf("%w: cannot allocate tty if runc will detach without setting console socket", ErrInvalidInput)
		}
	} else if o.ConsoleSocket != "" {
		return fmt.Errorf("%w: cannot use console socket if runc will not detach or allocate tty", ErrInvalidInput)
	}

	preserved, err := preservedFiles(o.PreserveFds)
	if err != nil {
		return err
	}
	idmaps, closeIDMaps, err := prepareIDMapMounts(spec, bundle)
	if err != nil {
		return err
	}
	defer closeIDMaps()
	joins, flags := namespacePlan(spec.Linux)
	// Hooks that run during create see the container as created: its
	// environment exists, the user process has not started.
	state := rec.hookState(StatusCreated)
	payload := &initConfig{
		Type:         "init",
		ID:           o.ID,
		Spec:         spec,
		Process:      spec.Process,
		Rootfs:       rootfs,
		Bundle:       bundle,
		NoPivot:      o.NoPivot,
		NoNewKeyring: o.NoNewKeyring,
		NewUserNS:    flags&unix.CLONE_NEWUSER != 0,
		NewMountNS:   flags&unix.CLONE_NEWNS != 0 || hasJoin(joins, "mnt"),
		NewNetNS:     flags&unix.CLONE_NEWNET != 0,
		NewCgroupNS:  flags&unix.CLONE_NEWCGROUP != 0,
		CgroupPaths:  mgr.Paths(),
		NewUTSNS:     hasNewNS(spec.Linux, specs.UTSNamespace) || hasJoin(joins, "uts"),
		State:        state,
	}
	sc := &spawnConfig{
		joins:       joins,
		newFlags:    flags,
		timeOffsets: timeOffsets(spec.Linux),
		uidMaps:     spec.Linux.UIDMappings,
		gidMaps:     spec.Linux.GIDMappings,
		stdin:       o.Stdin,
		stdout:      o.Stdout,
		stderr:      o.Stderr,
		preserved:   preserved,
		consoleSock: console,
		fifo:        fifo,
		idmaps:      idmaps,
		payload:     payload,
		cgroup:      planCgroup(mgr.Paths(), cgPrepared),
		onPid: func(pid int) error {
			_, start, err := procStat(pid)
			if err != nil {
				return fmt.Errorf("read init process start time: %w", err)
			}
			rec.InitPid, rec.InitStartTime = pid, start
			rec.CgroupPaths = mgr.Paths()
			rec.NamespacePaths = namespacePaths(pid, spec.Linux)
			state.Pid = pid
			if err := s.save(rec); err != nil {
				return err
			}
			failpoint("create:init")
			return nil
		},
		onHooks: func(pid int) error {
			return runHooks("createRuntime", spec.Hooks.CreateRuntime, state)
		},
		onSeccomp: func(pid int, fd int) error {
			return sendSeccompFd(spec, rec, fd)
		},
		filter: compileFilter(spec.Linux.Seccomp),
	}
	if _, err := spawn(ctx, sc); err != nil {
		return err
	}
	failpoint("create:ready")
	if o.PidFile != "" {
		if err := writePidFile(o.PidFile, rec.InitPid); err != nil {
			_ = unix.Kill(rec.InitPid, unix.SIGKILL)
			return err
		}
	}
	return nil
}

func hasJoin(joins []nsJoin, name string) bool {
	for _, j := range joins {
		if j.Type == name {
			return true
		}
	}
	return false
}

// namespacePaths records where exec finds each of the container's
// namespaces: the given path for joined ones, /proc/<init>/ns/* otherwise.
func namespacePaths(pid int, l *specs.Linux) map[string]string {
	out := map[string]string{}
	for _, ns := range l.Namespaces {
		n := nsNames[ns.Type]
		out[n.name] = "/proc/" + strconv.Itoa(pid) + "/ns/" + n.name
	}
	return out
}

func sendSeccompFd(spec *specs.Spec, rec *record, fd int) error {
	sc := spec.Linux.Seccomp
	st := specs.ContainerProcessState{
		Version:  specs.Version,
		Fds:      []string{specs.SeccompFdName},
		Pid:      rec.InitPid,
		Metadata: sc.ListenerMetadata,
		State:    *rec.hookState(StatusCreating),
	}
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return seccomp.SendListenerFd(sc.ListenerPath, fd, data)
}

func dialConsole(path string) (*os.File, error) {
	conn, err := net.Dial("unix", path)
	if err != nil {
		return nil, fmt.Errorf("connect to console socket %s: %w", path, err)
	}
	defer conn.Close()
	f, err := conn.(*net.UnixConn).File()
	if err != nil {
		return nil, fmt.Errorf("console socket: %w", err)
	}
	return f, nil
}

func preservedFiles(n int) ([]*os.File, error) {
	if n < 0 {
		return nil, fmt.Errorf("%w: --preserve-fds must not be negative", ErrInvalidInput)
	}
	files := make([]*os.File, 0, n)
	for i := 0; i < n; i++ {
		fd := 3 + i
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
			return nil, fmt.Errorf("%w: preserved fd %d is not open", ErrInvalidInput, fd)
		}
		files = append(files, os.NewFile(uintptr(fd), "preserved-"+strconv.Itoa(fd)))
	}
	return files, nil
}

func writePidFile(path string, pid int) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(abs, []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return fmt.Errorf("write pid file: %w", err)
	}
	return nil
}

// hostID maps a container id to the host through the mappings (identity
// when there are none, or the id is not mapped).
func hostID(maps []specs.LinuxIDMapping, id uint32) int {
	for _, m := range maps {
		if id >= m.ContainerID && id < m.ContainerID+m.Size {
			return int(m.HostID + id - m.ContainerID)
		}
	}
	return int(id)
}
