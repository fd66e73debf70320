package progress

import (
	"fmt"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// openPTY returns the terminal side of a new pseudo-terminal of the given
// size.
func openPTY(t *testing.T, cols, rows uint16) *os.File {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open /dev/ptmx: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	tty, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open pty: %v", err)
	}
	t.Cleanup(func() { tty.Close() })
	if err := unix.IoctlSetWinsize(int(tty.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Col: cols, Row: rows}); err != nil {
		t.Fatalf("set pty size: %v", err)
	}
	return tty
}

func TestAutoOnTerminal(t *testing.T) {
	tty := openPTY(t, 132, 40)

	t.Setenv("TERM", "xterm")
	p := New(tty, Auto)
	if p.Mode() != TTY {
		t.Fatalf("mode %v on a terminal, want tty", p.Mode())
	}
	if w, h := p.size(); w != 132 || h != 40 {
		t.Errorf("terminal size %dx%d, want 132x40", w, h)
	}
	if w := p.lineWidth(); w != 131 {
		t.Errorf("line width %d, want 131", w)
	}

	t.Setenv("TERM", "dumb")
	if m := New(tty, Auto).Mode(); m != Plain {
		t.Errorf("mode %v with TERM=dumb, want plain", m)
	}
}
