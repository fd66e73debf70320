package container

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// setupConsole creates a pseudo-terminal inside the container, sends its
// master to the console socket (SCM_RIGHTS, as runc's --console-socket
// protocol does) and makes the slave the process's stdio and controlling
// terminal. For the container init the slave is also bind-mounted on
// /dev/console.
func setupConsole(cfg *initConfig, mountConsole bool) error {
	if cfg.ConsoleFd < 0 {
		return errors.New("process.terminal is set but there is no console socket")
	}
	master, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /dev/ptmx: %w", err)
	}
	defer unix.Close(master)
	if err := unix.IoctlSetPointerInt(master, unix.TIOCSPTLCK, 0); err != nil {
		return fmt.Errorf("unlock pty: %w", err)
	}
	n, err := unix.IoctlGetInt(master, unix.TIOCGPTN)
	if err != nil {
		return fmt.Errorf("get pty number: %w", err)
	}
	slaveName := "/dev/pts/" + strconv.Itoa(n)
	// TIOCGPTPEER opens the slave through the master, immune to a
	// malicious /dev/pts in the container.
	slave, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(master), unix.TIOCGPTPEER, uintptr(unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC))
	if errno != 0 {
		return fmt.Errorf("open pty slave: %w", errno)
	}
	sfd := int(slave)
	defer unix.Close(sfd)
	if cs := cfg.Process.ConsoleSize; cs != nil {
		ws := &unix.Winsize{Row: uint16(cs.Height), Col: uint16(cs.Width)}
		if err := unix.IoctlSetWinsize(sfd, unix.TIOCSWINSZ, ws); err != nil {
			return fmt.Errorf("set console size: %w", err)
		}
	}
	if mountConsole {
		if err := mountOnConsole(sfd); err != nil {
			return err
		}
	}
	sock := cfg.ConsoleFd
	if err := unix.Sendmsg(sock, []byte(slaveName), unix.UnixRights(master), nil, 0); err != nil {
		return fmt.Errorf("send pty master to console socket: %w", err)
	}
	unix.Close(sock)
	for i := 0; i < 3; i++ {
		if err := unix.Dup3(sfd, i, 0); err != nil {
			return fmt.Errorf("dup pty to fd %d: %w", i, err)
		}
	}
	if err := unix.IoctlSetInt(0, unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("set controlling terminal: %w", err)
	}
	return nil
}

func mountOnConsole(slave int) error {
	f, err := os.OpenFile("/dev/console", os.O_CREATE|os.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o666)
	if err != nil {
		return fmt.Errorf("create /dev/console: %w", err)
	}
	defer f.Close()
	src := "/proc/self/fd/" + strconv.Itoa(slave)
	dst := "/proc/self/fd/" + strconv.Itoa(int(f.Fd()))
	if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind pty on /dev/console: %w", err)
	}
	return nil
}
