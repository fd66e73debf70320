package container

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-engine/berth/runtime/nsexec"
)

// Init is the entry point of the runtime binary when it runs as a container
// init or exec'd process (argv[1] == InitArg). It never returns: it either
// execs the container process or exits after reporting an error to the
// runtime. The caller must have locked the main goroutine to the main
// thread (runtime.LockOSThread in an init function of package main).
func Init() {
	runtime.GOMAXPROCS(1)
	runtime.LockOSThread()
	sock, err := childSyncSock()
	if err != nil {
		fmt.Fprintln(os.Stderr, "berth-runtime init:", err)
		os.Exit(1)
	}
	err = runInit(sock)
	// Only failures come back here.
	if err == nil {
		err = errors.New("init returned without exec")
	}
	if sock.send(syncMsg{Type: msgError, Message: err.Error()}, -1) != nil {
		// The runtime is gone (the container was created and started):
		// the container's stderr is the only place left to say it.
		fmt.Fprintln(os.Stderr, "berth-runtime init:", err)
	}
	os.Exit(1)
}

func envFd(name string) (int, error) {
	v := os.Getenv(name)
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return -1, fmt.Errorf("bad %s=%q", name, v)
	}
	return fd, nil
}

func childSyncSock() (*syncSock, error) {
	fd, err := envFd(nsexec.EnvInitPipe)
	if err != nil {
		return nil, err
	}
	unix.CloseOnExec(fd)
	return &syncSock{os.NewFile(uintptr(fd), "sync")}, nil
}

func readInitConfig() (*initConfig, error) {
	fd, err := envFd(envConfigPipe)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "config")
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("read init config: %w", err)
	}
	cfg, err := decodeInitConfig(data)
	if err != nil {
		return nil, fmt.Errorf("decode init config: %w", err)
	}
	if cfg.Process == nil && cfg.Type == "exec" {
		return nil, errors.New("init config has no process")
	}
	return cfg, nil
}

func runInit(sock *syncSock) error {
	cfg, err := readInitConfig()
	if err != nil {
		return err
	}
	// The runtime tells the init its pid as the host sees it (for the
	// state given to hooks).
	m, _, err := sock.expect(msgCgroup)
	if err != nil {
		return fmt.Errorf("wait for the runtime: %w", err)
	}
	if cfg.State != nil {
		cfg.State.Pid = m.Pid
	}
	// Nothing else of ours may be inherited by the container process.
	for _, name := range []string{nsexec.EnvInitPipe, envConfigPipe, nsexec.EnvJoin, nsexec.EnvNew, nsexec.EnvTimensOffsets} {
		os.Unsetenv(name)
	}
	if cfg.Type == "exec" {
		return execInit(sock, cfg)
	}
	// The container init sets up its own /proc files (exec fifo, LSM
	// attributes) as the container's root, which in a user namespace only
	// works while dumpable. No other process exists in the container yet.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("set dumpable: %w", err)
	}
	return containerInit(sock, cfg)
}

// containerInit sets up a new container and waits for start.
func containerInit(sock *syncSock, cfg *initConfig) error {
	spec := cfg.Spec
	proc := cfg.Process
	if proc == nil {
		// A container without a process: its environment exists until
		// start, which it then survives by no more than an exit.
		proc = &specs.Process{Cwd: "/"}
		cfg.Process = proc
		cfg.NoProcess = true
	}
	if _, err := unix.Setsid(); err != nil {
		return fmt.Errorf("setsid: %w", err)
	}
	var linux specs.Linux
	if spec.Linux != nil {
		linux = *spec.Linux
	}

	if cfg.NewUTSNS {
		if spec.Hostname != "" {
			if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
				return fmt.Errorf("set hostname: %w", err)
			}
		}
		if spec.Domainname != "" {
			if err := unix.Setdomainname([]byte(spec.Domainname)); err != nil {
				return fmt.Errorf("set domainname: %w", err)
			}
		}
	}

	rs := &rootfsSetup{cfg: cfg, spec: spec, linux: &linux}
	if err := rs.prepare(); err != nil {
		return err
	}
	// createRuntime hooks run in the runtime's namespaces once the mounts
	// exist, before pivot_root. (The deprecated prestart hooks run at start.)
	if spec.Hooks != nil && len(spec.Hooks.CreateRuntime) > 0 {
		if err := sock.send(syncMsg{Type: msgHooks}, -1); err != nil {
			return err
		}
		if _, _, err := sock.expect(msgAck); err != nil {
			return err
		}
	}
	// createContainer hooks run in the container's namespaces, with paths
	// still resolved against the runtime's view (before pivot_root).
	if spec.Hooks != nil {
		if err := runHooks("createContainer", spec.Hooks.CreateContainer, cfg.State); err != nil {
			return err
		}
	}
	if err := rs.pivot(); err != nil {
		return err
	}
	if proc.Terminal {
		if err := setupConsole(cfg, true); err != nil {
			return err
		}
	}
	if err := rs.finalize(); err != nil {
		return err
	}
	if err := applySysctls(linux.Sysctl); err != nil {
		return err
	}
	if err := rs.maskAndReadonly(); err != nil {
		return err
	}
	if !cfg.NoNewKeyring {
		// A fresh session keyring, so the container does not share the
		// host's. Kernels without keyrings (or denying it) are not fatal.
		_, _ = unix.KeyctlJoinSessionKeyring("_ses." + cfg.ID)
	}
	if err := applyPersonality(linux.Personality); err != nil {
		return err
	}
	return finishAndExec(sock, cfg, &linux)
}

// execInit runs a process inside an existing container's namespaces.
func execInit(sock *syncSock, cfg *initConfig) error {
	if cfg.Process.Terminal {
		if _, err := unix.Setsid(); err != nil {
			return fmt.Errorf("setsid: %w", err)
		}
		if err := setupConsole(cfg, false); err != nil {
			return err
		}
	}
	var linux specs.Linux
	if cfg.Spec != nil && cfg.Spec.Linux != nil {
		linux = *cfg.Spec.Linux
	}
	return finishAndExec(sock, cfg, &linux)
}

// finishAndExec applies the process attributes (rlimits, user, caps,
// seccomp), tells the runtime it is ready, waits for start (init only) and
// execs the container process.
func finishAndExec(sock *syncSock, cfg *initConfig, linux *specs.Linux) error {
	proc := cfg.Process
	if err := applyRlimits(proc.Rlimits); err != nil {
		return err
	}
	if proc.IOPriority != nil {
		if err := applyIOPriority(proc.IOPriority); err != nil {
			return err
		}
	}
	cwd := proc.Cwd
	if cwd == "" {
		cwd = "/"
	}
	if err := unix.Chdir(cwd); err != nil {
		return fmt.Errorf("chdir to cwd (%q) set in config.json failed: %w", cwd, err)
	}
	if err := checkCwd(); err != nil {
		return err
	}
	env := proc.Env
	// An exec'd process reports a missing executable as an error of exec;
	// the container's own process reports it when started (as the runtime
	// spec's lifecycle has it: create does not run the program).
	var path string
	if cfg.Type == "exec" {
		var err error
		if path, err = lookPath(proc.Args, env); err != nil {
			return err
		}
	}
	if err := applyAppArmor(proc.ApparmorProfile); err != nil {
		return err
	}
	if err := applySELinuxLabel(proc.SelinuxLabel); err != nil {
		return err
	}
	if proc.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("set no_new_privs: %w", err)
		}
	}
	// Without no_new_privs, loading a filter needs CAP_SYS_ADMIN, so it is
	// loaded before the capabilities are dropped.
	if linux.Seccomp != nil && !proc.NoNewPrivileges {
		if err := loadSeccomp(sock); err != nil {
			return err
		}
	}
	if err := applyUserAndCaps(proc); err != nil {
		return err
	}
	if linux.Seccomp != nil && proc.NoNewPrivileges {
		if err := loadSeccomp(sock); err != nil {
			return err
		}
	}
	if proc.User.Umask != nil {
		unix.Umask(int(*proc.User.Umask))
	} else {
		unix.Umask(0o022)
	}
	if err := sock.send(syncMsg{Type: msgReady}, -1); err != nil {
		return err
	}
	if cfg.Type == "exec" {
		// An exec'd process runs at once: wait until the runtime has
		// finished its cgroup membership. (The container init waits for
		// start instead, which comes after create returned.)
		if _, _, err := sock.expect(msgAck); err != nil {
			return err
		}
	}
	sock.Close()

	if cfg.Type == "init" {
		// Block until `start` opens the other end of the fifo.
		fifo, err := os.OpenFile("/proc/self/fd/"+strconv.Itoa(cfg.FifoFd), os.O_WRONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open exec fifo: %w", err)
		}
		if _, err := fifo.Write([]byte("0")); err != nil {
			return fmt.Errorf("write exec fifo: %w", err)
		}
		fifo.Close()
		unix.Close(cfg.FifoFd)
		if cfg.Spec.Hooks != nil && len(cfg.Spec.Hooks.StartContainer) > 0 {
			st := *cfg.State
			st.Status = specs.StateRunning
			if err := runHooks("startContainer", cfg.Spec.Hooks.StartContainer, &st); err != nil {
				return err
			}
		}
	}
	if cfg.NoProcess {
		os.Exit(0)
	}
	if err := closeExtraFds(3 + cfg.PreserveFds); err != nil {
		return err
	}
	if cfg.Type == "init" {
		var err error
		if path, err = lookPath(proc.Args, env); err != nil {
			startFailed(err)
		}
	}
	if err := unix.Exec(path, proc.Args, env); err != nil {
		err = fmt.Errorf("exec %q: %w", proc.Args[0], err)
		if cfg.Type == "init" {
			startFailed(err)
		}
		return err
	}
	return nil
}

// startFailed ends a started container whose program cannot be executed,
// with a shell's exit codes: 127 when it is missing, 126 otherwise.
func startFailed(err error) {
	fmt.Fprintf(os.Stderr, "berth-runtime: %v\n", err)
	code := 126
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
		code = 127
	}
	os.Exit(code)
}

// lookPath resolves argv[0] with the container's PATH, as execvp would.
func lookPath(args, env []string) (string, error) {
	if len(args) == 0 {
		return "", errors.New("process.args must not be empty")
	}
	name := args[0]
	if strings.Contains(name, "/") {
		if _, err := os.Stat(name); err != nil {
			return "", fmt.Errorf("exec: %q: %w", name, err)
		}
		return name, nil
	}
	pathEnv := ""
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			pathEnv = v
		}
	}
	if pathEnv == "" {
		pathEnv = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	for _, dir := range filepath.SplitList(pathEnv) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec: %q: %w", name, exec.ErrNotFound)
}

// checkCwd refuses a working directory outside the container's root, the
// symptom of a leaked host directory (CVE-2024-21626).
func checkCwd() error {
	wd, err := unix.Getwd()
	if err != nil {
		return fmt.Errorf("current working directory is outside of container mount namespace root -- possible container breakout detected: %w", err)
	}
	if !strings.HasPrefix(wd, "/") {
		return fmt.Errorf("current working directory %q is outside of container mount namespace root -- possible container breakout detected", wd)
	}
	return nil
}

// closeExtraFds marks every fd from minFd on close-on-exec.
func closeExtraFds(minFd int) error {
	if err := unix.CloseRange(uint(minFd), ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err == nil {
		return nil
	}
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("list fds: %w", err)
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err == nil && fd >= minFd {
			unix.CloseOnExec(fd)
		}
	}
	return nil
}

// loadSeccomp gets the filter the runtime compiled (while this process set
// up) and loads it; a notify fd goes back to the runtime for the listener.
func loadSeccomp(sock *syncSock) error {
	if err := sock.send(syncMsg{Type: msgFilter}, -1); err != nil {
		return err
	}
	m, _, err := sock.expect(msgAck)
	if err != nil {
		return err
	}
	if m.Filter == nil {
		return errors.New("the runtime sent no seccomp filter")
	}
	fd, err := m.Filter.Load()
	if err != nil {
		return fmt.Errorf("load seccomp filter: %w", err)
	}
	if fd < 0 {
		return nil
	}
	defer unix.Close(fd)
	if err := sock.send(syncMsg{Type: msgSeccomp}, fd); err != nil {
		return err
	}
	_, _, err = sock.expect(msgAck)
	return err
}

func applySysctls(sysctls map[string]string) error {
	for k, v := range sysctls {
		if strings.Contains(k, "..") || strings.HasPrefix(k, "/") {
			return fmt.Errorf("invalid sysctl %q", k)
		}
		p := filepath.Join("/proc/sys", strings.ReplaceAll(k, ".", "/"))
		if err := os.WriteFile(p, []byte(v), 0); err != nil {
			return fmt.Errorf("set sysctl %s=%s: %w", k, v, err)
		}
	}
	return nil
}

var personalities = map[specs.LinuxPersonalityDomain]uintptr{
	specs.PerLinux:   0x0000,
	specs.PerLinux32: 0x0008,
}

func applyPersonality(p *specs.LinuxPersonality) error {
	if p == nil {
		return nil
	}
	v, ok := personalities[p.Domain]
	if !ok {
		return fmt.Errorf("unknown personality domain %q", p.Domain)
	}
	if _, _, errno := unix.Syscall(unix.SYS_PERSONALITY, v, 0, 0); errno != 0 {
		return fmt.Errorf("set personality %s: %w", p.Domain, errno)
	}
	return nil
}

var ioprioClasses = map[specs.IOPriorityClass]int{
	specs.IOPRIO_CLASS_RT:   1,
	specs.IOPRIO_CLASS_BE:   2,
	specs.IOPRIO_CLASS_IDLE: 3,
}

func applyIOPriority(p *specs.LinuxIOPriority) error {
	class, ok := ioprioClasses[p.Class]
	if !ok {
		return fmt.Errorf("unknown ioPriority class %q", p.Class)
	}
	const whoProcess = 1
	prio := class<<13 | p.Priority
	if _, _, errno := unix.Syscall(unix.SYS_IOPRIO_SET, whoProcess, 0, uintptr(prio)); errno != 0 {
		return fmt.Errorf("set io priority: %w", errno)
	}
	return nil
}
