package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-engine/berth/runtime/nsexec"
	"github.com/berth-engine/berth/runtime/seccomp"
)

// Environment names the Go side of the init reads.
const (
	envConfigPipe = "_BERTH_CONFIGPIPE"
	// InitArg is argv[1] of the runtime binary when it runs as the
	// container init (or an exec'd process) inside the container.
	InitArg = "init"
)

// initConfig is what the runtime sends the init process, in the compact
// form of wire.go: a field the init starts to use must be carried there too.
type initConfig struct {
	Type    string // "init" or "exec"
	ID      string
	Spec    *specs.Spec
	Process *specs.Process
	// NoProcess marks a container created without a process.
	NoProcess    bool
	Rootfs       string
	Bundle       string
	NoPivot      bool
	NoNewKeyring bool
	ConsoleFd    int
	FifoFd       int
	PreserveFds  int
	NewUserNS    bool
	NewMountNS   bool
	NewNetNS     bool
	NewCgroupNS  bool
	NewUTSNS     bool
	CgroupPaths  map[string]string
	// IDMapFds maps indexes of spec.Mounts to fds of prepared idmapped mounts.
	IDMapFds map[int]int
	// State is the container state passed to startContainer hooks.
	State *specs.State
}

type nsJoin struct {
	Type string // nsexec name: user ipc uts net pid mnt cgroup time
	Path string
}

// spawnConfig describes a process to start inside (new or existing)
// namespaces through the nsexec stage.
type spawnConfig struct {
	joins       []nsJoin
	newFlags    uintptr
	timeOffsets string
	uidMaps     []specs.LinuxIDMapping
	gidMaps     []specs.LinuxIDMapping
	// cgroup says how the processes get into the container's cgroup (nil:
	// they stay in the runtime's).
	cgroup *cgroupPlan
	// stdio of the process; nil means /dev/null.
	stdin, stdout, stderr *os.File
	preserved             []*os.File
	consoleSock           *os.File
	fifo                  *os.File
	idmaps                []idmapMount
	payload               *initConfig
	// onPid is called as soon as the final pid is known, so the caller can
	// kill it when a later step fails.
	onPid func(pid int) error
	// onHooks runs the createRuntime hooks when the child asks.
	onHooks func(pid int) error
	// onSeccomp forwards a seccomp notify fd to the listener.
	onSeccomp func(pid int, fd int) error
	// filter returns the compiled seccomp filter (compiled meanwhile).
	filter func() (*seccomp.Program, error)
}

// spawn starts the process and drives it until it reports ready. It returns
// the pid of the final process, which is a child of the caller.
func spawn(ctx context.Context, sc *spawnConfig) (pid int, err error) {

	parentSock, childSock, err := newSyncPair()
	if err != nil {
		return 0, err
	}
	defer parentSock.Close()
	defer childSock.Close()
	cfgR, cfgW, err := os.Pipe()
	if err != nil {
		return 0, fmt.Errorf("create config pipe: %w", err)
	}
	defer cfgR.Close()
	defer cfgW.Close()

	extra := append([]*os.File{}, sc.preserved...)
	fdOf := func(f *os.File) int {
		extra = append(extra, f)
		return 2 + len(extra)
	}
	syncFd := fdOf(childSock.f)
	cfgFd := fdOf(cfgR)
	sc.payload.FifoFd, sc.payload.ConsoleFd = -1, -1
	if sc.fifo != nil {
		sc.payload.FifoFd = fdOf(sc.fifo)
	}
	if sc.consoleSock != nil {
		sc.payload.ConsoleFd = fdOf(sc.consoleSock)
	}
	sc.payload.PreserveFds = len(sc.preserved)
	for _, m := range sc.idmaps {
		if sc.payload.IDMapFds == nil {
			sc.payload.IDMapFds = map[int]int{}
		}
		sc.payload.IDMapFds[m.index] = fdOf(m.file)
	}

	var joins []string
	for _, j := range sc.joins {
		if strings.ContainsAny(j.Path, ";") {
			return 0, fmt.Errorf("%w: namespace path %q contains ';'", ErrInvalidInput, j.Path)
		}
		joins = append(joins, j.Type+":"+j.Path)
	}
	env := []string{
		nsexec.EnvInitPipe + "=" + strconv.Itoa(syncFd),
		envConfigPipe + "=" + strconv.Itoa(cfgFd),
		nsexec.EnvJoin + "=" + strings.Join(joins, ";"),
		nsexec.EnvNew + "=" + strconv.FormatUint(uint64(sc.newFlags), 16),
	}
	// The final process is forked with a raw clone (for CLONE_PARENT),
	// behind glibc's back; glibc must not then try to register rseq for
	// the Go runtime's threads, which fails at random ("rseq registration
	// failed"). rseq is only an optimisation; the container process gets
	// its own environment at exec.
	env = append(env, "GLIBC_TUNABLES=glibc.pthread.rseq=0")
	// The init lives for milliseconds and allocates little: one P and no
	// garbage collector start it faster and leave fewer threads to stop at
	// exec. (The container process gets its own environment.)
	env = append(env, "GOMAXPROCS=1", "GOGC=off")
	if p := sc.cgroup; p != nil {
		if len(p.v1Tasks) > 0 {
			env = append(env, nsexec.EnvCgroupTasks+"="+strings.Join(p.v1Tasks, ";"))
		}
		if p.v2Dir != "" {
			env = append(env, nsexec.EnvCgroup2Dir+"="+p.v2Dir)
		}
	}
	if sc.timeOffsets != "" {
		env = append(env, nsexec.EnvTimensOffsets+"="+sc.timeOffsets)
	}
	files := append([]*os.File{sc.stdin, sc.stdout, sc.stderr}, extra...)
	// The configuration goes into the pipe right away (a goroutine, in
	// case it exceeds the pipe's buffer): the init reads it as soon as its
	// Go runtime is up, while the runtime still waits for the pid.
	payload := encodeInitConfig(sc.payload)
	werrc := make(chan error, 1)
	go func() {
		_, err := cfgW.Write(payload)
		cfgW.Close()
		werrc <- err
	}()
	stage1, err := startProtected(files, env)
	if err != nil {
		return 0, fmt.Errorf("start init process: %w", err)
	}
	childSock.Close()
	cfgR.Close()
	stage1Done := false
	defer func() {
		if !stage1Done {
			_ = unix.Kill(stage1, unix.SIGKILL)
			var ws unix.WaitStatus
			_, _ = unix.Wait4(stage1, &ws, 0, nil)
		}
		if err != nil && pid > 0 {
			_ = unix.Kill(pid, unix.SIGKILL)
			var ws unix.WaitStatus
			_, _ = unix.Wait4(pid, &ws, 0, nil)
			pid = 0
		}
	}()

	// Closing our copy of the config pipe's write end happens after the
	// payload is written; close it early if the context ends.
	stop := context.AfterFunc(ctx, func() { parentSock.f.Close() })
	defer stop()

	plan := sc.cgroup
	if plan != nil && (len(plan.v1Tasks) > 0 || plan.v2Dir != "") {
		// The child joins (or is created in) the cgroup once it exists.
		if err := plan.prepare(); err != nil {
			return 0, err
		}
		if err := parentSock.sendByte(); err != nil {
			return 0, childFailure(parentSock, err)
		}
	}
	if sc.newFlags&unix.CLONE_NEWUSER != 0 {
		m, _, err := parentSock.expect(msgUsermap)
		if err != nil {
			return 0, childFailure(parentSock, err)
		}
		if err := writeIDMaps(m.Pid, sc.uidMaps, sc.gidMaps); err != nil {
			return 0, err
		}
		if err := parentSock.sendByte(); err != nil {
			return 0, err
		}
	}
	if plan != nil && plan.move != nil {
		if err := plan.prepare(); err != nil {
			return 0, err
		}
		if err := plan.move(stage1); err != nil {
			return 0, err
		}
	}
	if err := parentSock.sendByte(); err != nil {
		return 0, childFailure(parentSock, err)
	}
	m, _, err := parentSock.expect(msgPid)
	if err != nil {
		return 0, childFailure(parentSock, err)
	}
	pid = m.Pid
	if plan != nil && plan.v2Dir != "" && !m.Joined {
		// clone3 could not create the process in its cgroup v2: move it.
		if err := writeCgroupProcs([]string{plan.v2Dir}, pid); err != nil {
			return pid, err
		}
		if err := parentSock.sendByte(); err != nil {
			return pid, childFailure(parentSock, err)
		}
	}
	// The init learns its pid as the host sees it.
	if err := parentSock.send(syncMsg{Type: msgCgroup, Pid: pid}, -1); err != nil {
		return pid, childFailure(parentSock, err)
	}
	stage1Done = true
	var ws unix.WaitStatus
	if _, werr := unix.Wait4(stage1, &ws, 0, nil); werr != nil {
		return pid, fmt.Errorf("wait for the intermediate process: %w", werr)
	}
	if !ws.Exited() || ws.ExitStatus() != 0 {
		return pid, fmt.Errorf("intermediate process ended with status %v", ws)
	}
	// oom_score_adj is written from here, with the host's view of the
	// process (its /proc files are not the container's to write).
	if p := sc.payload.Process; p != nil && p.OOMScoreAdj != nil {
		if err := os.WriteFile("/proc/"+strconv.Itoa(pid)+"/oom_score_adj", []byte(strconv.Itoa(*p.OOMScoreAdj)), 0); err != nil {
			return pid, fmt.Errorf("set oom_score_adj to %d: %w", *p.OOMScoreAdj, err)
		}
	}
	if sc.onPid != nil {
		if err := sc.onPid(pid); err != nil {
			return pid, err
		}
	}

	for {
		m, fd, err := parentSock.recv()
		if err != nil {
			if errors.Is(err, errPeerClosed) {
				how, reaped := describeExit(pid)
				err = fmt.Errorf("container init exited before it was ready%s", how)
				if reaped {
					// Gone and reaped: its pid may be reused, never kill it.
					return 0, err
				}
			}
			return pid, err
		}
		switch m.Type {
		case msgError:
			return pid, errors.New(m.Message)
		case msgHooks:
			if sc.onHooks != nil {
				if err := sc.onHooks(pid); err != nil {
					return pid, err
				}
			}
		case msgSeccomp:
			if fd < 0 {
				return pid, errors.New("seccomp message without a file descriptor")
			}
			var ferr error
			if sc.onSeccomp != nil {
				ferr = sc.onSeccomp(pid, fd)
			}
			unix.Close(fd)
			if ferr != nil {
				return pid, ferr
			}
		case msgFilter:
			if sc.filter == nil {
				return pid, errors.New("the init asked for a seccomp filter the container does not have")
			}
			p, err := sc.filter()
			if err != nil {
				return pid, err
			}
			if err := parentSock.send(syncMsg{Type: msgAck, Filter: p}, -1); err != nil {
				return pid, err
			}
			continue
		case msgReady:
			if sc.payload.Type == "exec" {
				if err := parentSock.send(syncMsg{Type: msgAck}, -1); err != nil {
					return pid, err
				}
			}
			if err := <-werrc; err != nil {
				return pid, fmt.Errorf("send init config: %w", err)
			}
			return pid, nil
		default:
			return pid, fmt.Errorf("unexpected sync message %q", m.Type)
		}
		if err := parentSock.send(syncMsg{Type: msgAck}, -1); err != nil {
			return pid, err
		}
	}
}

// childFailure prefers the child's own error message over a broken-pipe
// error from our side.
func childFailure(s *syncSock, err error) error {
	if errors.Is(err, unix.EPIPE) || errors.Is(err, errPeerClosed) {
		if m, _, rerr := s.recv(); rerr == nil && m.Type == msgError {
			return errors.New(m.Message)
		}
	}
	return err
}

func formatIDMap(maps []specs.LinuxIDMapping) string {
	var b strings.Builder
	for _, m := range maps {
		fmt.Fprintf(&b, "%d %d %d\n", m.ContainerID, m.HostID, m.Size)
	}
	return b.String()
}

func writeIDMaps(pid int, uids, gids []specs.LinuxIDMapping) error {
	base := "/proc/" + strconv.Itoa(pid) + "/"
	if err := os.WriteFile(base+"uid_map", []byte(formatIDMap(uids)), 0); err != nil {
		return fmt.Errorf("write uid_map: %w", err)
	}
	if err := os.WriteFile(base+"gid_map", []byte(formatIDMap(gids)), 0); err != nil {
		return fmt.Errorf("write gid_map: %w", err)
	}
	return nil
}

// startProtected starts cmd, which runs the runtime's own binary, so that
// no process in the container can write that binary through
// /proc/<pid>/exe (CVE-2019-5736). The binary is executed from a detached,
// read-only bind mount of itself (open_tree + mount_setattr): two syscalls,
// no copy, and the read-only mount stays attached to every reference to
// the executable. Where that is not possible (no CAP_SYS_ADMIN, an old
// kernel), a sealed in-memory copy is executed instead.
func startProtected(files []*os.File, env []string) (int, error) {
	exe, err := readOnlySelf()
	if err != nil {
		if exe, err = cloneSelf(); err != nil {
			return 0, err
		}
	}
	defer exe.Close()
	files = append(files, exe)
	fds := make([]uintptr, len(files))
	var devNull *os.File
	for i, f := range files {
		if f == nil {
			if devNull == nil {
				if devNull, err = os.OpenFile(os.DevNull, os.O_RDWR, 0); err != nil {
					return 0, err
				}
				defer devNull.Close()
			}
			f = devNull
		}
		fds[i] = f.Fd()
	}
	// syscall.ForkExec rather than os/exec: no pidfd probe (a throw-away
	// fork on first use) and no copying goroutines; the container's stdio
	// are files.
	pid, err := syscall.ForkExec("/proc/self/fd/"+strconv.Itoa(len(files)-1), []string{"berth-runtime", InitArg},
		&syscall.ProcAttr{Dir: "/", Env: env, Files: fds})
	runtime.KeepAlive(files)
	if err != nil {
		return 0, err
	}
	return pid, nil
}

// readOnlySelf returns an O_PATH handle of the running binary on a
// detached read-only mount.
func readOnlySelf() (*os.File, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, "/proc/self/exe", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("clone a mount of the runtime binary: %w", err)
	}
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &attr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("make the runtime binary's mount read-only: %w", err)
	}
	return os.NewFile(uintptr(fd), "berth-runtime"), nil
}

// cloneSelf returns a sealed, read-only in-memory copy of the running
// binary. The container init runs from it, so a process in the container
// cannot reach the host's binary through /proc/<pid>/exe (CVE-2019-5736).
func cloneSelf() (*os.File, error) {
	src, err := os.Open("/proc/self/exe")
	if err != nil {
		return nil, fmt.Errorf("open own binary: %w", err)
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat own binary: %w", err)
	}
	fd, err := unix.MemfdCreate("berth-runtime", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	dst := os.NewFile(uintptr(fd), "berth-runtime")
	size := st.Size()
	for off := int64(0); off < size; {
		n, err := unix.Sendfile(fd, int(src.Fd()), nil, int(size-off))
		if err != nil {
			dst.Close()
			return nil, fmt.Errorf("copy own binary: %w", err)
		}
		if n == 0 {
			break
		}
		off += int64(n)
	}
	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	// F_SEAL_WRITE fails with EBUSY while a write is still in flight in
	// the kernel; that passes.
	for attempt := 0; ; attempt++ {
		_, err = unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EBUSY) || attempt == 10 {
			dst.Close()
			return nil, fmt.Errorf("seal binary copy: %w", err)
		}
		time.Sleep(time.Millisecond)
	}
	return dst, nil
}

// compileFilter starts compiling a seccomp configuration in the background
// and returns a function that waits for the result (nil without one).
func compileFilter(cfg *specs.LinuxSeccomp) func() (*seccomp.Program, error) {
	if cfg == nil {
		return nil
	}
	done := make(chan struct{})
	var p *seccomp.Program
	var err error
	go func() {
		defer close(done)
		p, err = seccomp.Compile(cfg)
	}()
	return func() (*seccomp.Program, error) {
		<-done
		if err != nil {
			return nil, fmt.Errorf("compile seccomp filter: %w", err)
		}
		return p, nil
	}
}

// cgroupPlan says how the spawned processes get into the container's
// cgroup without waiting for the kernel: moving another process between
// cgroups (a cgroup.procs write) waits for an RCU grace period, milliseconds
// and more under load, while a process that moves its only thread itself
// (v1 tasks files) or is created in its cgroup (clone3 CLONE_INTO_CGROUP)
// does not.
type cgroupPlan struct {
	// prepare waits until the cgroup exists and is configured.
	prepare func() error
	// v1Tasks are the tasks files of the cgroup v1 hierarchies, which the
	// intermediate process joins itself to.
	v1Tasks []string
	// v2Dir is the cgroup v2 directory (the container's, or a hybrid
	// layout's unified one) the final process is created in.
	v2Dir string
	// move puts the intermediate process into the v1 hierarchies when
	// their paths cannot go through the environment.
	move func(pid int) error
}

// planCgroup makes the plan for a container's cgroup paths (as from
// cgroup.Manager.Paths, "" keying the v2 directory).
func planCgroup(paths map[string]string, prepare func() error) *cgroupPlan {
	p := &cgroupPlan{prepare: prepare, v2Dir: paths[""]}
	var v1 []string
	seen := map[string]bool{}
	for key, dir := range paths {
		if key == "" || seen[dir] {
			continue
		}
		seen[dir] = true
		v1 = append(v1, dir)
	}
	sort.Strings(v1)
	for _, dir := range v1 {
		if strings.ContainsRune(dir, ';') {
			p.move = func(pid int) error { return writeCgroupProcs(v1, pid) }
			return p
		}
		p.v1Tasks = append(p.v1Tasks, filepath.Join(dir, "tasks"))
	}
	return p
}

// writeCgroupProcs moves pid into each cgroup directory.
func writeCgroupProcs(dirs []string, pid int) error {
	for _, dir := range dirs {
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
			return fmt.Errorf("join cgroup %s: %w", dir, err)
		}
	}
	return nil
}

// describeExit reaps pid (our child, which closed the sync socket without a
// word) if it exits within a short while, and says how it ended.
func describeExit(pid int) (how string, reaped bool) {
	var ws unix.WaitStatus
	for i := 0; i < 100; i++ {
		got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		if err != nil {
			return "", false
		}
		if got == pid {
			switch {
			case ws.Signaled():
				return fmt.Sprintf(" (killed by %v)", ws.Signal()), true
			case ws.Exited():
				return fmt.Sprintf(" (exit status %d; see the container's stderr)", ws.ExitStatus()), true
			}
			return "", true
		}
		time.Sleep(time.Millisecond)
	}
	return "", false
}
