package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// ttyProxy receives the container's pty master over a socketpair (the same
// protocol as --console-socket) and copies it to and from our own stdio,
// with our terminal in raw mode.
type ttyProxy struct {
	local   *os.File // our end of the socketpair
	remote  *os.File // passed to the runtime as the console socket
	master  *os.File
	restore *unix.Termios
	wg      sync.WaitGroup
}

func newTTYProxy() (*ttyProxy, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("console socketpair: %w", err)
	}
	return &ttyProxy{local: os.NewFile(uintptr(fds[0]), "console-local"), remote: os.NewFile(uintptr(fds[1]), "console-remote")}, nil
}

// receiveOr waits for the pty master, or for errc to report a failure.
func (t *ttyProxy) receiveOr(errc chan error) error {
	got := make(chan error, 1)
	go func() { got <- t.receive() }()
	select {
	case err := <-got:
		return err
	case err := <-errc:
		if err == nil {
			err = <-got
			if err == nil {
				errc <- nil
			}
			return err
		}
		errc <- err
		return nil
	}
}

func (t *ttyProxy) receive() error {
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(int(t.local.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return fmt.Errorf("receive pty master: %w", err)
	}
	if n == 0 && oobn == 0 {
		return errors.New("container exited before sending its terminal")
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) == 0 {
		return errors.New("receive pty master: no file descriptor")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) == 0 {
		return errors.New("receive pty master: no file descriptor")
	}
	t.master = os.NewFile(uintptr(fds[0]), "pty-master")
	if tio, err := unix.IoctlGetTermios(int(os.Stdin.Fd()), unix.TCGETS); err == nil {
		saved := *tio
		t.restore = &saved
		raw := *tio
		raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
		raw.Oflag &^= unix.OPOST
		raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		raw.Cflag &^= unix.CSIZE | unix.PARENB
		raw.Cflag |= unix.CS8
		raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
		_ = unix.IoctlSetTermios(int(os.Stdin.Fd()), unix.TCSETS, &raw)
		t.resize()
	}
	go func() { _, _ = io.Copy(t.master, os.Stdin) }()
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		_, _ = io.Copy(os.Stdout, t.master)
	}()
	return nil
}

func (t *ttyProxy) resize() {
	if t.master == nil {
		return
	}
	if ws, err := unix.IoctlGetWinsize(int(os.Stdin.Fd()), unix.TIOCGWINSZ); err == nil {
		_ = unix.IoctlSetWinsize(int(t.master.Fd()), unix.TIOCSWINSZ, ws)
	}
}

// drain waits for the output copy to reach EOF (the slave side closed).
func (t *ttyProxy) drain() {
	if t.master != nil {
		t.wg.Wait()
	}
}

func (t *ttyProxy) close() {
	if t.restore != nil {
		_ = unix.IoctlSetTermios(int(os.Stdin.Fd()), unix.TCSETS, t.restore)
	}
	t.local.Close()
	t.remote.Close()
	if t.master != nil {
		t.master.Close()
	}
}
