package container

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-engine/berth/runtime/cgroup"
)

func (r *record) cgroup() (*cgroup.Manager, error) {
	if len(r.CgroupPaths) == 0 {
		return nil, errors.New("no cgroup recorded")
	}
	return cgroup.Load(r.CgroupPaths, cgroup.Options{})
}

// State returns a container's OCI state.
func (s *Store) State(id string) (*State, error) {
	r, err := s.load(id)
	if err != nil {
		return nil, err
	}
	return s.stateOf(r), nil
}

// InitPid returns the recorded pid of a container's init, even after it
// exited (a caller that is its parent reaps it with that pid).
func (s *Store) InitPid(id string) (int, error) {
	r, err := s.load(id)
	if err != nil {
		return 0, err
	}
	return r.InitPid, nil
}

// List returns the state of every container in the store.
func (s *Store) List() ([]*State, error) {
	ids, err := s.IDs()
	if err != nil {
		return nil, err
	}
	out := make([]*State, 0, len(ids))
	for _, id := range ids {
		r, err := s.load(id)
		if err != nil {
			continue // being created or deleted right now
		}
		out = append(out, s.stateOf(r))
	}
	return out, nil
}

// Start releases a created container's init to exec the user process and
// runs the poststart hooks. Hook failures are returned as warnings.
func (s *Store) Start(id string) (warnings []error, err error) {
	r, unlock, err := s.loadLocked(id)
	if err != nil {
		return nil, err
	}
	defer unlock()
	switch st := s.status(r); st {
	case StatusCreated:
	case StatusStopped:
		return nil, fmt.Errorf("cannot start a container that has stopped")
	default:
		return nil, fmt.Errorf("cannot start an already running container")
	}
	// prestart hooks (deprecated, still in use) run once start is called,
	// in the runtime's namespaces, before the user process executes.
	var prestart []specs.Hook
	if r.Spec.Hooks != nil {
		//lint:ignore SA1019 deprecated in the spec, still sent by engines
		prestart = r.Spec.Hooks.Prestart
	}
	if len(prestart) > 0 {
		if err := runHooks("prestart", prestart, r.hookState(StatusCreated)); err != nil {
			// The spec: stop the container and go on with delete.
			warns, derr := s.destroy(r)
			if derr != nil {
				warns = append(warns, derr)
			}
			return warns, err
		}
	}
	fifoPath := filepath.Join(s.dir(id), fifoName)
	if err := awaitFifo(fifoPath, r); err != nil {
		return nil, err
	}
	// Without the fifo the container counts as started; no state write.
	_ = os.Remove(fifoPath)
	if r.Spec.Hooks != nil && len(r.Spec.Hooks.Poststart) > 0 {
		// poststart hooks run after the user process is executed.
		r.awaitExec(time.Second)
		for i, h := range r.Spec.Hooks.Poststart {
			if err := runHooks("poststart", []specs.Hook{h}, r.hookState(StatusRunning)); err != nil {
				warnings = append(warnings, fmt.Errorf("poststart hook #%d: %w", i, err))
			}
		}
	}
	return warnings, nil
}

// awaitFifo opens the exec fifo for reading, which releases the init, and
// reads the byte it writes. A dead init is detected instead of blocking.
func awaitFifo(path string, r *record) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open exec fifo: %w", err)
	}
	defer unix.Close(fd)
	buf := make([]byte, 1)
	delay := 20 * time.Microsecond
	for {
		n, err := unix.Read(fd, buf)
		if n == 1 {
			return nil
		}
		if err != nil && !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("read exec fifo: %w", err)
		}
		if !r.initAlive() {
			// It may have written and exited since the read above.
			if n, _ := unix.Read(fd, buf); n == 1 {
				return nil
			}
			return errors.New("container init exited before start")
		}
		time.Sleep(delay)
		if delay < 5*time.Millisecond {
			delay *= 2
		}
	}
}

// awaitExec waits until the init has exec'd the user process (it no longer
// runs the runtime's binary) and then, briefly, until that
// process first blocks or exits, so poststart hooks observe a process that
// has really begun. Both waits are bounded.
func (r *record) awaitExec(timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	exe := "/proc/" + strconv.Itoa(r.InitPid) + "/exe"
	for time.Now().Before(deadline) && runsRuntime(exe) {
		time.Sleep(100 * time.Microsecond)
	}
	settle := time.Now().Add(50 * time.Millisecond)
	for time.Now().Before(settle) {
		st, _, err := procStat(r.InitPid)
		if err != nil || st != 'R' {
			return
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// runsRuntime reports whether the process whose /proc exe link is given
// still runs the runtime's binary: the same file as ours (executed through
// a read-only mount of it), or the sealed in-memory copy of the fallback.
func runsRuntime(exe string) bool {
	var their, ours unix.Stat_t
	if err := unix.Stat(exe, &their); err != nil {
		return false
	}
	if err := unix.Stat("/proc/self/exe", &ours); err == nil && their.Dev == ours.Dev && their.Ino == ours.Ino {
		return true
	}
	target, err := os.Readlink(exe)
	return err == nil && strings.HasPrefix(target, "/memfd:berth-runtime")
}

func (s *Store) loadLocked(id string) (*record, func(), error) {
	if err := ValidateID(id); err != nil {
		return nil, nil, err
	}
	if _, err := os.Stat(s.dir(id)); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", id, ErrNotExist)
	}
	unlock, err := s.lock(id)
	if err != nil {
		return nil, nil, err
	}
	r, err := s.load(id)
	if err != nil {
		unlock()
		return nil, nil, err
	}
	return r, unlock, nil
}

// signalInit sends sig to the init through a pidfd, so a recycled pid is
// never signalled.
func (r *record) signalInit(sig unix.Signal) error {
	pidfd, err := unix.PidfdOpen(r.InitPid, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return ErrNotRunning
		}
		return fmt.Errorf("pidfd_open %d: %w", r.InitPid, err)
	}
	defer unix.Close(pidfd)
	if !r.initAlive() {
		return ErrNotRunning
	}
	if err := unix.PidfdSendSignal(pidfd, sig, nil, 0); err != nil {
		if errors.Is(err, unix.ESRCH) {
			return ErrNotRunning
		}
		return fmt.Errorf("signal init: %w", err)
	}
	return nil
}

// Kill sends a signal to the container's init, or with all to every
// process in its cgroup.
func (s *Store) Kill(id string, sig unix.Signal, all bool) error {
	r, unlock, err := s.loadLocked(id)
	if err != nil {
		return err
	}
	defer unlock()
	if s.status(r) == StatusStopped && !all {
		return ErrNotRunning
	}
	if all {
		return r.signalAll(sig)
	}
	return r.signalInit(sig)
}

// signalAll signals every process of the container's cgroup, freezing it
// meanwhile so that nothing forks out of reach.
func (r *record) signalAll(sig unix.Signal) error {
	m, err := r.cgroup()
	if err != nil {
		if r.initAlive() {
			return r.signalInit(sig)
		}
		return ErrNotRunning
	}
	frozenBefore, _ := m.State()
	if sig != unix.SIGKILL {
		_ = m.Freeze()
	}
	pids, err := m.Pids()
	if err != nil {
		return err
	}
	for _, p := range pids {
		_ = unix.Kill(p, sig)
	}
	if sig == unix.SIGKILL || !frozenBefore {
		_ = m.Thaw()
	}
	return nil
}

// Delete removes a stopped (or, with force, any) container: it kills what
// is left, removes the cgroup, runs poststop hooks and deletes the state.
func (s *Store) Delete(id string, force bool) (warnings []error, err error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	dir := s.dir(id)
	if _, err := os.Stat(dir); err != nil {
		if force {
			return nil, nil
		}
		return nil, fmt.Errorf("%s: %w", id, ErrNotExist)
	}
	unlock, err := s.lock(id)
	if err != nil {
		return nil, err
	}
	defer unlock()
	r, err := s.load(id)
	if err != nil {
		if errors.Is(err, ErrNotExist) {
			// An aborted create left a directory without state.
			return nil, os.RemoveAll(dir)
		}
		return nil, err
	}
	switch st := s.status(r); st {
	case StatusStopped:
	default:
		if !force {
			return nil, fmt.Errorf("cannot delete container %s that is not stopped: %s", id, st)
		}
	}
	return s.destroy(r)
}

// destroy kills what is left of a container, removes its cgroup, runs the
// poststop hooks and removes its state. The caller holds the lock.
func (s *Store) destroy(r *record) (warnings []error, err error) {
	dir := s.dir(r.ID)
	if err := r.killAndWait(); err != nil {
		return nil, err
	}
	failpoint("delete:killed")
	if m, err := r.cgroup(); err == nil {
		if err := m.Destroy(); err != nil {
			warnings = append(warnings, fmt.Errorf("remove cgroup: %w", err))
		}
	}
	failpoint("delete:cgroup")
	if r.Spec != nil && r.Spec.Hooks != nil {
		for i, h := range r.Spec.Hooks.Poststop {
			if err := runHooks("poststop", []specs.Hook{h}, r.hookState(StatusStopped)); err != nil {
				warnings = append(warnings, fmt.Errorf("poststop hook #%d: %w", i, err))
			}
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return warnings, fmt.Errorf("remove state: %w", err)
	}
	return warnings, nil
}

// killAndWait kills every process of the container and waits for the
// init to be gone.
func (r *record) killAndWait() error {
	if m, err := r.cgroup(); err == nil {
		if pids, err := m.Pids(); err == nil && len(pids) > 0 {
			_ = r.signalAll(unix.SIGKILL)
		}
	}
	if r.initAlive() {
		_ = r.signalInit(unix.SIGKILL)
	}
	deadline := time.Now().Add(10 * time.Second)
	for r.initAlive() {
		if time.Now().After(deadline) {
			return fmt.Errorf("container init %d did not die after SIGKILL", r.InitPid)
		}
		// Reap it if it is our child (run, or a create in this process).
		var ws unix.WaitStatus
		_, _ = unix.Wait4(r.InitPid, &ws, unix.WNOHANG, nil)
		time.Sleep(time.Millisecond)
	}
	return nil
}

// Pause freezes every process of a running container.
func (s *Store) Pause(id string) error {
	r, unlock, err := s.loadLocked(id)
	if err != nil {
		return err
	}
	defer unlock()
	if st := s.status(r); st != StatusRunning && st != StatusCreated {
		return fmt.Errorf("%w: %s", ErrNotRunning, st)
	}
	m, err := r.cgroup()
	if err != nil {
		return err
	}
	return m.Freeze()
}

// Resume thaws a paused container.
func (s *Store) Resume(id string) error {
	r, unlock, err := s.loadLocked(id)
	if err != nil {
		return err
	}
	defer unlock()
	if s.status(r) != StatusPaused {
		return ErrNotPaused
	}
	m, err := r.cgroup()
	if err != nil {
		return err
	}
	return m.Thaw()
}

// liveCgroup returns the cgroup of a container that has not stopped.
func (s *Store) liveCgroup(id string) (*cgroup.Manager, error) {
	r, err := s.load(id)
	if err != nil {
		return nil, err
	}
	if s.status(r) == StatusStopped {
		return nil, ErrNotRunning
	}
	return r.cgroup()
}

// Pids lists the processes of a container (host pids).
func (s *Store) Pids(id string) ([]int, error) {
	m, err := s.liveCgroup(id)
	if err != nil {
		return nil, err
	}
	return m.Pids()
}

// Update changes a running container's resources; res is merged over the
// recorded ones (nil fields keep their value).
func (s *Store) Update(id string, apply func(*specs.LinuxResources) error) error {
	r, unlock, err := s.loadLocked(id)
	if err != nil {
		return err
	}
	defer unlock()
	if s.status(r) == StatusStopped {
		return ErrNotRunning
	}
	if r.Spec.Linux.Resources == nil {
		r.Spec.Linux.Resources = &specs.LinuxResources{}
	}
	if err := apply(r.Spec.Linux.Resources); err != nil {
		return err
	}
	m, err := r.cgroup()
	if err != nil {
		return err
	}
	if err := m.Set(cgroupResources(r.Spec.Linux.Resources)); err != nil {
		return err
	}
	return s.save(r)
}

// Stats returns the cgroup statistics of a container.
func (s *Store) Stats(id string) (*cgroup.Stats, error) {
	m, err := s.liveCgroup(id)
	if err != nil {
		return nil, err
	}
	return m.Stats()
}

// OOMKills returns how many processes of the container the kernel's OOM
// killer has killed so far.
func (s *Store) OOMKills(id string) (uint64, error) {
	r, err := s.load(id)
	if err != nil {
		return 0, err
	}
	m, err := r.cgroup()
	if err != nil {
		return 0, err
	}
	return m.OOMKillCount()
}
