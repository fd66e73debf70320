package seccomp

import (
	"encoding/json"
	"errors"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// MarshalProcessState returns the JSON container process state that
// [SendListenerFd] sends to the seccomp agent: state with the listener
// metadata of cfg, fds ["seccompFd"] and the container process pid as the
// runtime sees it.
func MarshalProcessState(cfg *specs.LinuxSeccomp, pid int, state specs.State) ([]byte, error) {
	ps := specs.ContainerProcessState{
		Version: specs.Version,
		Fds:     []string{specs.SeccompFdName},
		Pid:     pid,
		State:   state,
	}
	if cfg != nil {
		ps.Metadata = cfg.ListenerMetadata
	}
	b, err := json.Marshal(&ps)
	if err != nil {
		return nil, fmt.Errorf("seccomp: marshalling container process state: %w", err)
	}
	return b, nil
}

// SendListenerFd connects to the AF_UNIX SOCK_STREAM socket at listenerPath
// and sends the container process state (state, JSON as built by
// [MarshalProcessState]) with notifyFd attached as SCM_RIGHTS, then closes
// the connection: one state per connection, as the runtime specification
// requires. The fd rides on the first sendmsg(2) only; a short write is
// completed without it. notifyFd stays open; the caller closes it.
func SendListenerFd(listenerPath string, notifyFd int, state []byte) error {
	if listenerPath == "" {
		return errors.New("seccomp: sending notify fd: empty listener path")
	}
	if notifyFd < 0 {
		return fmt.Errorf("seccomp: sending notify fd to %s: invalid fd %d", listenerPath, notifyFd)
	}
	if len(state) == 0 {
		return fmt.Errorf("seccomp: sending notify fd to %s: empty container process state", listenerPath)
	}

	sock, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("seccomp: creating socket for %s: %w", listenerPath, err)
	}
	defer unix.Close(sock)

	if err := unix.Connect(sock, &unix.SockaddrUnix{Name: listenerPath}); err != nil {
		return fmt.Errorf("seccomp: connecting to listener %s: %w", listenerPath, err)
	}

	oob := unix.UnixRights(notifyFd)
	for len(state) > 0 {
		var n int
		err := retryEINTR(func() (err error) {
			n, err = unix.SendmsgN(sock, state, oob, nil, unix.MSG_NOSIGNAL)
			return err
		})
		if err != nil {
			return fmt.Errorf("seccomp: sending container process state to %s: %w", listenerPath, err)
		}
		state, oob = state[n:], nil
	}
	return nil
}

func retryEINTR(f func() error) error {
	for {
		if err := f(); !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}
