// Package container is berth's OCI runtime library: it creates, starts,
// signals, pauses and deletes containers from an OCI bundle, following the
// OCI runtime specification and runc's observable behaviour.
//
// A container's persistent record lives in <root>/<id>/state.json; the
// runtime keeps no other state, so any number of runtime processes can work
// on different containers at once, and operations on one container are
// serialised by a file lock.
package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-engine/berth/internal/atomicfile"
)

// Status values, as the OCI runtime spec names them.
const (
	StatusCreating = "creating"
	StatusCreated  = "created"
	StatusRunning  = "running"
	StatusPaused   = "paused"
	StatusStopped  = "stopped"
)

// stateVersion is the version of the on-disk record format.
const stateVersion = 1

// Sentinel errors; the command line maps them to messages and exit codes.
var (
	ErrNotExist     = errors.New("container does not exist")
	ErrExist        = errors.New("container with given ID already exists")
	ErrInvalidID    = errors.New("invalid container ID format")
	ErrNotRunning   = errors.New("container is not running")
	ErrNotCreated   = errors.New("container is not in created state")
	ErrNotStopped   = errors.New("container is not stopped")
	ErrNotPaused    = errors.New("container is not paused")
	ErrInvalidInput = errors.New("invalid input")
)

// ValidateID checks a container ID the way runc does: letters, digits and
// "_+-.", not "." or "..", at most 1024 bytes. (No regexp: compiling one
// at start-up costs every runtime process, the container init included.)
func ValidateID(id string) error {
	ok := id != "" && id != "." && id != ".." && len(id) <= 1024
	for i := 0; ok && i < len(id); i++ {
		c := id[i]
		ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '+' || c == '-' || c == '.'
	}
	if !ok {
		return fmt.Errorf("%w: %q", ErrInvalidID, id)
	}
	return nil
}

// record is what state.json holds.
type record struct {
	Version       int               `json:"version"`
	ID            string            `json:"id"`
	InitPid       int               `json:"init_pid"`
	InitStartTime uint64            `json:"init_start_time"`
	Bundle        string            `json:"bundle"`
	Rootfs        string            `json:"rootfs"`
	Created       time.Time         `json:"created"`
	Owner         string            `json:"owner,omitempty"`
	Spec          *specs.Spec       `json:"spec"`
	CgroupPaths   map[string]string `json:"cgroup_paths,omitempty"`
	// NamespacePaths maps namespace types to the paths exec joins.
	NamespacePaths map[string]string `json:"namespace_paths,omitempty"`
}

// State is the OCI state of a container, in runc's JSON shape (runc adds
// rootfs, created and owner to the spec's fields).
type State struct {
	OCIVersion  string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	Status      string            `json:"status"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	Owner       string            `json:"owner"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Store is a directory of container records (runc's --root).
type Store struct {
	Root string
}

func (s *Store) dir(id string) string { return filepath.Join(s.Root, id) }

const (
	stateFile = "state.json"
	fifoName  = "exec.fifo"
	lockName  = ".lock"
)

// lock takes an exclusive lock on a container directory.
func (s *Store) lock(id string) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(s.dir(id), lockName), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w", id, ErrNotExist)
		}
		return nil, fmt.Errorf("lock container %s: %w", id, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock container %s: %w", id, err)
	}
	return func() { f.Close() }, nil
}

// locked reports whether another process holds the container's lock.
func (s *Store) locked(id string) bool {
	f, err := os.OpenFile(filepath.Join(s.dir(id), lockName), os.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB); err != nil {
		return errors.Is(err, unix.EWOULDBLOCK)
	}
	return false
}

func (s *Store) load(id string) (*record, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(s.dir(id), stateFile))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w", id, ErrNotExist)
		}
		return nil, fmt.Errorf("load container %s: %w", id, err)
	}
	var r record
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("load container %s: corrupt state: %w", id, err)
	}
	if r.Version > stateVersion {
		return nil, fmt.Errorf("load container %s: state version %d is newer than this runtime's %d", id, r.Version, stateVersion)
	}
	return &r, nil
}

func (s *Store) save(r *record) error {
	r.Version = stateVersion
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("save container %s: %w", r.ID, err)
	}
	return atomicfile.WriteFile(filepath.Join(s.dir(r.ID), stateFile), data, 0o600)
}

// IDs lists the containers in the store, in directory order.
func (s *Store) IDs() ([]string, error) {
	entries, err := os.ReadDir(s.Root)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("list %s: %w", s.Root, err)
	}
	var ids []string
	for _, e := range entries {
		if e.IsDir() && ValidateID(e.Name()) == nil {
			if _, err := os.Stat(filepath.Join(s.Root, e.Name(), stateFile)); err == nil {
				ids = append(ids, e.Name())
			}
		}
	}
	return ids, nil
}

// procStat returns the state letter and start time (in clock ticks since
// boot) of pid, from /proc/<pid>/stat.
func procStat(pid int) (state byte, start uint64, err error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// The command name is in parentheses and may contain anything.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return 0, 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	fields := strings.Fields(s[i+2:])
	// fields[0] is field 3 (state); start time is field 22.
	if len(fields) < 20 {
		return 0, 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	start, err = strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("parse /proc/%d/stat: %w", pid, err)
	}
	return fields[0][0], start, nil
}

// initAlive reports whether the recorded init process still runs (and is
// the same process, not a recycled pid).
func (r *record) initAlive() bool {
	if r.InitPid <= 0 {
		return false
	}
	st, start, err := procStat(r.InitPid)
	if err != nil {
		return false
	}
	if st == 'Z' || st == 'X' {
		return false
	}
	return start == r.InitStartTime
}

func (s *Store) status(r *record) string {
	if r.InitPid == 0 && s.locked(r.ID) {
		// Recorded early by a create that is still running.
		return StatusCreating
	}
	if !r.initAlive() {
		return StatusStopped
	}
	// The exec fifo exists from create until start.
	if _, err := os.Stat(filepath.Join(s.dir(r.ID), fifoName)); err == nil {
		return StatusCreated
	}
	if m, err := r.cgroup(); err == nil {
		if frozen, err := m.State(); err == nil && frozen {
			return StatusPaused
		}
	}
	return StatusRunning
}

func (s *Store) stateOf(r *record) *State {
	st := &State{
		OCIVersion: specs.Version,
		ID:         r.ID,
		Status:     s.status(r),
		Bundle:     r.Bundle,
		Rootfs:     r.Rootfs,
		Created:    r.Created,
		Owner:      r.Owner,
	}
	if r.Spec != nil {
		st.Annotations = r.Spec.Annotations
	}
	if st.Status != StatusStopped {
		st.Pid = r.InitPid
	}
	return st
}

// hookState is the state passed to hooks on stdin.
func (r *record) hookState(status string) *specs.State {
	st := &specs.State{
		Version: specs.Version,
		ID:      r.ID,
		Status:  specs.ContainerState(status),
		Pid:     r.InitPid,
		Bundle:  r.Bundle,
	}
	if r.Spec != nil {
		st.Annotations = r.Spec.Annotations
	}
	return st
}

// EnvFailpoint names a step at which the runtime kills itself (SIGKILL):
// tests use it to check that every step of create and delete can be
// interrupted and cleaned up by a later delete. Unset, it costs an
// environment lookup per step.
const EnvFailpoint = "_BERTH_RUNTIME_FAILPOINT"

func failpoint(name string) {
	if os.Getenv(EnvFailpoint) == name {
		_ = unix.Kill(os.Getpid(), unix.SIGKILL)
		select {} // the signal is on its way
	}
}
