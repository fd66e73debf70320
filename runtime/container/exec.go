package container

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// ExecOpts describe a process to run in an existing container.
type ExecOpts struct {
	Process       *specs.Process
	ConsoleSocket string
	ConsoleConn   *os.File
	PidFile       string
	PreserveFds   int
	// Stdin, Stdout and Stderr are the process's stdio (nil: /dev/null).
	Stdin, Stdout, Stderr *os.File
	// SubCgroups places the process in existing sub-cgroups of the
	// container's, per controller ("" for every controller).
	SubCgroups map[string]string
	// IgnorePaused allows exec into a paused container.
	IgnorePaused bool
}

// Exec starts a process in a running container's namespaces and cgroup,
// with the container's seccomp filter and the given process attributes.
// The returned pid is a child of the caller.
func (s *Store) Exec(ctx context.Context, id string, o ExecOpts) (int, error) {
	r, err := s.load(id)
	if err != nil {
		return 0, err
	}
	switch s.status(r) {
	case StatusRunning, StatusCreated:
	case StatusPaused:
		if !o.IgnorePaused {
			return 0, fmt.Errorf("cannot exec in a paused container (use resume first, or --ignore-paused)")
		}
	default:
		return 0, fmt.Errorf("cannot exec in a stopped container")
	}
	p := o.Process
	if p == nil || len(p.Args) == 0 {
		return 0, fmt.Errorf("%w: process args must not be empty", ErrInvalidInput)
	}
	if err := validateRlimits(p.Rlimits); err != nil {
		return 0, err
	}
	if err := validateCaps(p.Capabilities); err != nil {
		return 0, err
	}
	var console *os.File
	if p.Terminal {
		switch {
		case o.ConsoleConn != nil:
			console = o.ConsoleConn
		case o.ConsoleSocket != "":
			console, err = dialConsole(o.ConsoleSocket)
			if err != nil {
				return 0, err
			}
			defer console.Close()
		default:
			return 0, fmt.Errorf("%w: cannot allocate tty without a console socket", ErrInvalidInput)
		}
	}
	preserved, err := preservedFiles(o.PreserveFds)
	if err != nil {
		return 0, err
	}
	// The user namespace first; nsexec orders it, but only the container's
	// own namespaces are joined.
	var joins []nsJoin
	for _, ns := range r.Spec.Linux.Namespaces {
		n := nsNames[ns.Type]
		if path := r.NamespacePaths[n.name]; path != "" {
			joins = append(joins, nsJoin{Type: n.name, Path: path})
		}
	}
	m, cgErr := r.cgroup()
	spec := *r.Spec
	payload := &initConfig{Type: "exec", ID: id, Spec: &spec, Process: p}
	sc := &spawnConfig{
		joins:       joins,
		stdin:       o.Stdin,
		stdout:      o.Stdout,
		stderr:      o.Stderr,
		preserved:   preserved,
		consoleSock: console,
		payload:     payload,
		onSeccomp: func(pid int, fd int) error {
			return sendSeccompFd(r.Spec, r, fd)
		},
		filter: compileFilter(r.Spec.Linux.Seccomp),
	}
	if cgErr == nil {
		paths := m.Paths()
		if len(o.SubCgroups) > 0 {
			paths = subCgroupPaths(paths, o.SubCgroups)
		}
		sc.cgroup = planCgroup(paths, func() error { return nil })
	}
	pid, err := spawn(ctx, sc)
	if err != nil {
		return 0, fmt.Errorf("exec failed: %w", err)
	}
	if o.PidFile != "" {
		if err := writePidFile(o.PidFile, pid); err != nil {
			_ = unix.Kill(pid, unix.SIGKILL)
			return 0, err
		}
	}
	return pid, nil
}

// WaitPid waits for a child process and returns its exit code the way a
// shell reports it (128+signal for a killed process).
func WaitPid(pid int) (int, error) {
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, fmt.Errorf("wait for %d: %w", pid, err)
		}
		break
	}
	if ws.Signaled() {
		return 128 + int(ws.Signal()), nil
	}
	return ws.ExitStatus(), nil
}

// ParseSubCgroups parses runc's exec --cgroup value: "SUB" for every
// controller, or "CTRL:SUB[,CTRL:SUB...]".
func ParseSubCgroups(v string) (map[string]string, error) {
	out := map[string]string{}
	if !strings.Contains(v, ":") {
		out[""] = v
		return out, checkSub(v)
	}
	for _, part := range strings.Split(v, ",") {
		ctrl, sub, ok := strings.Cut(part, ":")
		if !ok || ctrl == "" {
			return nil, fmt.Errorf("%w: bad --cgroup value %q (want [CONTROLLER:]PATH)", ErrInvalidInput, part)
		}
		if err := checkSub(sub); err != nil {
			return nil, err
		}
		out[ctrl] = sub
	}
	return out, nil
}

func checkSub(sub string) error {
	if sub == "" || filepath.IsAbs(sub) || strings.Contains("/"+sub+"/", "/../") {
		return fmt.Errorf("%w: sub-cgroup %q must be a relative path inside the container's cgroup", ErrInvalidInput, sub)
	}
	return nil
}

// subCgroupPaths applies sub-cgroups to the container's cgroup paths.
func subCgroupPaths(paths, subs map[string]string) map[string]string {
	out := make(map[string]string, len(paths))
	for ctrl, base := range paths {
		sub, ok := subs[ctrl]
		if !ok {
			sub = subs[""]
		}
		out[ctrl] = filepath.Join(base, sub)
	}
	return out
}
