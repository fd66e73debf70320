// Package progress reports the progress of long operations (pull, push, save,
// load, build) to a user.
//
// A Progress tracks Items, one per unit of work such as a layer download.
// How they are shown depends on the Mode:
//
//   - TTY: one line per item, redrawn in place at most every 100 ms, like
//     docker pull:
//     "a3ed95caeb02: Downloading [=====>     ]  12.3MB/45.6MB  5.1MB/s  ETA 6s".
//   - Plain: one line per state change ("a3ed95caeb02: Downloading 45.6MB",
//     "a3ed95caeb02: Pull complete"), never one per byte; fit for logs and
//     pipes.
//   - Quiet: nothing.
//
// Byte counters are atomics, so any number of goroutines may report progress
// at once. Output errors are ignored: progress reporting must never fail the
// work it reports on. A nil *Progress is valid and shows nothing.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// Mode selects how progress is shown.
type Mode int

const (
	// Auto is TTY when the output is a terminal and Plain otherwise.
	Auto Mode = iota
	// TTY redraws one line per item in place with ANSI escape sequences.
	TTY
	// Plain writes one line per state change.
	Plain
	// Quiet writes nothing.
	Quiet
)

var modeNames = [...]string{Auto: "auto", TTY: "tty", Plain: "plain", Quiet: "quiet"}

// String returns the mode's name as ParseMode accepts it.
func (m Mode) String() string {
	if m >= 0 && int(m) < len(modeNames) {
		return modeNames[m]
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// ParseMode parses a --progress flag value: "auto", "tty", "plain" or
// "quiet".
func ParseMode(s string) (Mode, error) {
	for m, name := range modeNames {
		if s == name {
			return Mode(m), nil
		}
	}
	return Auto, fmt.Errorf("invalid progress mode %q: want auto, tty, plain or quiet", s)
}

const (
	// redrawInterval bounds how often a TTY is redrawn.
	redrawInterval = 100 * time.Millisecond
	// defaultWidth is used when the terminal size cannot be read.
	defaultWidth = 80
)

// Progress shows the progress of a set of items on one writer. Create it
// with New and Close it when the work is done.
type Progress struct {
	w    io.Writer
	mode Mode // TTY, Plain or Quiet; never Auto

	// size returns the terminal's width and height (0 when unknown).
	size func() (width, height int)
	// now is the clock used for rates and ETAs.
	now func() time.Time
	// interval is the TTY redraw period.
	interval time.Duration

	mu sync.Mutex
	// Guarded by mu.
	live    []*Item  // TTY: items still redrawn, in creation order
	pending []string // TTY: finished lines not yet written above the items
	drawn   int      // TTY: number of item lines on the screen
	frame   string   // TTY: the last frame written, to skip identical ones
	ticking bool     // TTY: the redraw goroutine runs
	closed  bool
	stop    chan struct{}
	stopped chan struct{}
}

// New returns a Progress writing to w. In Auto mode it draws on a terminal
// (w is an *os.File that is a terminal, and $TERM is not "dumb") and writes
// plain lines otherwise. In TTY mode on something other than a terminal the
// width is taken as 80 columns.
func New(w io.Writer, mode Mode) *Progress {
	f, _ := w.(*os.File)
	isTerminal := f != nil && term.IsTerminal(int(f.Fd()))
	if mode == Auto {
		mode = Plain
		if isTerminal && os.Getenv("TERM") != "dumb" {
			mode = TTY
		}
	}
	if mode != TTY && mode != Plain {
		mode = Quiet
	}
	p := &Progress{
		w:        w,
		mode:     mode,
		size:     func() (int, int) { return 0, 0 },
		now:      time.Now,
		interval: redrawInterval,
	}
	if isTerminal {
		fd := int(f.Fd())
		p.size = func() (int, int) {
			w, h, err := term.GetSize(fd)
			if err != nil {
				return 0, 0
			}
			return w, h
		}
	}
	return p
}

// Mode returns the resolved mode: TTY, Plain or Quiet, never Auto.
func (p *Progress) Mode() Mode {
	if p == nil {
		return Quiet
	}
	return p.mode
}

// Item starts tracking one unit of work, e.g. id "a3ed95caeb02" (a short
// digest) and action "Downloading". total is the expected number of bytes,
// 0 or less when unknown.
func (p *Progress) Item(id, action string, total int64) *Item {
	it := &Item{p: p, id: id, action: action}
	it.total.Store(total)
	if p == nil {
		return it
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		it.p = nil
		return it
	}
	switch p.mode {
	case TTY:
		p.live = append(p.live, it)
		p.startTicker()
	case Plain:
		p.writeLine(oneLine(it.plainStart()))
	}
	return it
}

// Printf shows a message line. On a TTY it appears above the items' lines
// at once. A missing final newline is added.
func (p *Progress) Printf(format string, args ...any) {
	if p == nil {
		return
	}
	msg := strings.TrimSuffix(fmt.Sprintf(format, args...), "\n")
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	switch p.mode {
	case TTY:
		p.pending = append(p.pending, strings.Split(msg, "\n")...)
		p.draw()
	case Plain:
		p.writeLine(msg)
	}
}

// Close stops redrawing and draws the final state of every item. Items and
// Printf show nothing after Close. Close may be called more than once.
func (p *Progress) Close() {
	if p == nil {
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	ticking := p.ticking
	p.mu.Unlock()

	// Stop the redraw goroutine without holding mu, which it takes.
	if ticking {
		close(p.stop)
		<-p.stopped
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mode == TTY {
		for _, it := range p.live {
			p.pending = append(p.pending, p.line(it, p.now(), p.lineWidth()))
		}
		p.live = nil
		p.draw()
	}
}

// startTicker starts the TTY redraw goroutine once. Called with mu held.
func (p *Progress) startTicker() {
	if p.ticking {
		return
	}
	p.ticking = true
	p.stop = make(chan struct{})
	p.stopped = make(chan struct{})
	go p.tick()
}

func (p *Progress) tick() {
	defer close(p.stopped)
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.mu.Lock()
			p.draw()
			p.mu.Unlock()
		}
	}
}

// writeLine writes one plain line. Called with mu held, so lines from
// concurrent items never interleave.
func (p *Progress) writeLine(s string) {
	_, _ = io.WriteString(p.w, s+"\n")
}

// lineWidth returns the widest a TTY line may be without wrapping, which
// would break moving the cursor back up over the items' lines.
func (p *Progress) lineWidth() int {
	w, _ := p.size()
	if w <= 0 {
		w = defaultWidth
	}
	return max(w-1, 1)
}

// draw redraws the TTY: pending lines are written once above the items, then
// every live item's line replaces the one drawn before. Items that finished
// at the top of the list become pending lines, since they will not change
// any more. Called with mu held.
func (p *Progress) draw() {
	now := p.now()
	width := p.lineWidth()

	n := 0
	for n < len(p.live) && p.live[n].finished() {
		n++
	}
	for _, it := range p.live[:n] {
		p.pending = append(p.pending, p.line(it, now, width))
	}
	p.live = p.live[n:]

	lines := make([]string, 0, len(p.live))
	for _, it := range p.live {
		lines = append(lines, p.line(it, now, width))
	}
	// Cursor movement cannot reach above the top of the screen: show what
	// fits, and how much does not.
	if _, height := p.size(); height > 1 && len(lines) > height-1 {
		hidden := len(lines) - (height - 2)
		lines = append(lines[:height-2], clip(fmt.Sprintf("... and %d more", hidden), width))
	}

	if len(p.pending) == 0 && len(lines) == p.drawn {
		frame := strings.Join(lines, "\n")
		if frame == p.frame {
			return
		}
		p.frame = frame
	} else {
		p.frame = strings.Join(lines, "\n")
	}

	var b strings.Builder
	if p.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", p.drawn)
	}
	b.WriteString("\r")
	for _, l := range p.pending {
		b.WriteString("\x1b[2K" + l + "\n")
	}
	for _, l := range lines {
		b.WriteString("\x1b[2K" + l + "\n")
	}
	if len(p.pending)+len(lines) < p.drawn {
		// Fewer lines than before: clear what is left of the old ones.
		b.WriteString("\x1b[J")
	}
	p.pending = p.pending[:0]
	p.drawn = len(lines)
	_, _ = io.WriteString(p.w, b.String())
}
