package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/berth-engine/berth/runtime/seccomp"
)

// Messages on the synchronisation socket between the runtime and the
// process it spawns. The socket is SOCK_SEQPACKET: one datagram per message,
// so file descriptors sent alongside stay attached to their message.
const (
	msgUsermap = "usermap" // child needs its uid/gid maps written
	msgPid     = "pid"     // pid of the final child process
	msgHooks   = "hooks"   // child asks the runtime to run createRuntime hooks
	msgSeccomp = "seccomp" // child passes the seccomp notify fd
	msgFilter  = "filter"  // child asks for its compiled seccomp filter
	msgReady   = "ready"   // child is ready (create: waiting for start)
	msgError   = "error"   // child failed
	msgAck     = "ack"     // runtime's reply
	msgCgroup  = "cgroup"  // runtime has joined the child to its cgroup; carries its host pid
)

type syncMsg struct {
	Type string `json:"type"`
	Pid  int    `json:"pid,omitempty"`
	// Joined reports that the final process was created in its cgroup v2.
	Joined  bool   `json:"joined,omitempty"`
	Message string `json:"message,omitempty"`
	// Filter answers msgFilter.
	Filter *seccomp.Program `json:"filter,omitempty"`
}

// maxSyncMsg bounds one message (a compiled seccomp filter is the largest:
// a few tens of KiB for the broadest profiles).
const maxSyncMsg = 1 << 20

// syncSock is one end of the synchronisation socket.
type syncSock struct {
	f *os.File
}

func newSyncPair() (parent, child *syncSock, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("create sync socket: %w", err)
	}
	// Room for the largest message in one datagram.
	for _, fd := range fds {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 2*maxSyncMsg)
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 2*maxSyncMsg)
	}
	return &syncSock{os.NewFile(uintptr(fds[0]), "sync-parent")}, &syncSock{os.NewFile(uintptr(fds[1]), "sync-child")}, nil
}

func (s *syncSock) Close() error { return s.f.Close() }

// send writes one message, with an optional file descriptor.
func (s *syncSock) send(m syncMsg, fd int) error {
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	var oob []byte
	if fd >= 0 {
		oob = unix.UnixRights(fd)
	}
	for {
		err = unix.Sendmsg(int(s.f.Fd()), data, oob, nil, 0)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("send %s message: %w", m.Type, err)
	}
	return nil
}

// sendByte writes a one-byte datagram, which is what the C stage reads.
func (s *syncSock) sendByte() error {
	for {
		_, err := unix.Write(int(s.f.Fd()), []byte{0})
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("sync with child: %w", err)
		}
		return nil
	}
}

// errPeerClosed means the other end went away without a message.
var errPeerClosed = errors.New("peer closed the sync socket")

// recv reads one message and the file descriptor sent with it (-1 if none).
func (s *syncSock) recv() (syncMsg, int, error) {
	buf := make([]byte, maxSyncMsg)
	oob := make([]byte, unix.CmsgSpace(4*4))
	var n, oobn, flags int
	var err error
	resets := 0
	for {
		n, oobn, flags, _, err = unix.Recvmsg(int(s.f.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
		// A peer that exits with bytes of ours unread makes the kernel
		// report ECONNRESET once, before the messages it sent: read on.
		if errors.Is(err, unix.ECONNRESET) && resets == 0 {
			resets++
			continue
		}
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		return syncMsg{}, -1, fmt.Errorf("read sync socket: %w", err)
	}
	if flags&unix.MSG_TRUNC != 0 {
		return syncMsg{}, -1, fmt.Errorf("sync message larger than %d bytes", maxSyncMsg)
	}
	fd := -1
	if oobn > 0 {
		cmsgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err == nil {
			for _, c := range cmsgs {
				fds, err := unix.ParseUnixRights(&c)
				if err != nil {
					continue
				}
				for _, f := range fds {
					if fd < 0 {
						fd = f
					} else {
						unix.Close(f)
					}
				}
			}
		}
	}
	if n == 0 {
		if fd >= 0 {
			unix.Close(fd)
		}
		return syncMsg{}, -1, errPeerClosed
	}
	var m syncMsg
	if err := json.Unmarshal(buf[:n], &m); err != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		return syncMsg{}, -1, fmt.Errorf("bad sync message %q: %w", buf[:n], err)
	}
	return m, fd, nil
}

// expect reads one message and checks its type; an error message from the
// child becomes an error.
func (s *syncSock) expect(typ string) (syncMsg, int, error) {
	m, fd, err := s.recv()
	if err != nil {
		return m, fd, err
	}
	if m.Type == msgError {
		return m, fd, errors.New(m.Message)
	}
	if m.Type != typ {
		if fd >= 0 {
			unix.Close(fd)
		}
		return m, -1, fmt.Errorf("unexpected sync message %q (want %q)", m.Type, typ)
	}
	return m, fd, nil
}
