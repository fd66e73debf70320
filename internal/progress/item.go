package progress

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	units "github.com/docker/go-units"
)

const (
	// maxBarWidth is the width of a progress bar between its brackets when
	// the terminal is wide enough, as docker's.
	maxBarWidth = 50
	// minBarWidth is the narrowest bar worth drawing; below it the bar is
	// left out.
	minBarWidth = 10
	// suffixRoom is the room kept right of a bar for the figures, enough
	// for "  999MB/999MB  99.9MB/s  ETA 1m05s"; longer figures are clipped
	// at the terminal's edge. Reserving room rather than measuring the
	// figures keeps the bar's width steady while they change.
	suffixRoom = 36
	// rateWindow is how far back the transfer rate looks, so a stall shows
	// within seconds rather than slowly dragging an average down.
	rateWindow = 5 * time.Second
	// minRateSpan is how long an item must have been observed before its
	// rate and ETA are shown; earlier figures are noise.
	minRateSpan = time.Second
	// maxETA is the longest ETA worth showing.
	maxETA = 100 * time.Hour
)

// state is where an item is in its life.
type state int

const (
	active state = iota
	done
	failed
)

// Item is one unit of work tracked by a Progress, such as one layer's
// download. Its methods are safe for concurrent use; Add and Set, the hot
// path, take no lock.
type Item struct {
	p  *Progress // nil: the item counts but shows nothing
	id string

	current atomic.Int64
	total   atomic.Int64

	mu sync.Mutex
	// Guarded by mu.
	action  string
	state   state
	final   string // done: the final status
	err     error  // failed: the reason
	samples []sample
}

// sample is the byte count of an item at one point in time.
type sample struct {
	at time.Time
	n  int64
}

// Add adds n bytes to the item's progress.
func (it *Item) Add(n int64) { it.current.Add(n) }

// Set sets the item's progress to n bytes.
func (it *Item) Set(n int64) { it.current.Store(n) }

// SetTotal sets the expected number of bytes, 0 or less when unknown. In
// Plain mode this shows nothing by itself.
func (it *Item) SetTotal(n int64) { it.total.Store(n) }

// SetAction starts a new phase of the item's work, e.g. "Extracting" after
// "Downloading". The rate and ETA start afresh; reset the byte count with
// Set(0) if the new phase counts from zero.
func (it *Item) SetAction(action string) {
	it.update(func() (string, bool) {
		it.action = action
		it.samples = it.samples[:0]
		return it.plainStart(), true
	})
}

// Done marks the item finished with a final status such as "Pull complete"
// or "Already exists". Only the first Done or Fail counts.
func (it *Item) Done(final string) {
	it.update(func() (string, bool) {
		it.state, it.final = done, final
		return it.id + ": " + final, true
	})
}

// Fail marks the item failed. Only the first Done or Fail counts.
func (it *Item) Fail(err error) {
	it.update(func() (string, bool) {
		it.state, it.err = failed, err
		return it.failedLine(), true
	})
}

// Writer returns a writer that discards what it is given and counts its
// length as progress, for use with io.TeeReader or io.MultiWriter.
func (it *Item) Writer() io.Writer { return countingWriter{it} }

// Reader returns a reader that reads from r and counts what it reads as
// progress.
func (it *Item) Reader(r io.Reader) io.Reader { return &countingReader{r: r, it: it} }

// update applies change to an active item and, in Plain mode, writes the
// line it returns. Locks are taken in the order draw takes them: the
// Progress's, then the item's.
func (it *Item) update(change func() (line string, show bool)) {
	p := it.p
	if p != nil {
		p.mu.Lock()
		defer p.mu.Unlock()
	}
	it.mu.Lock()
	if it.state != active {
		it.mu.Unlock()
		return
	}
	line, show := change()
	it.mu.Unlock()
	if show && p != nil && p.mode == Plain && !p.closed {
		p.writeLine(oneLine(line))
	}
}

// finished reports whether the item is done or failed.
func (it *Item) finished() bool {
	it.mu.Lock()
	defer it.mu.Unlock()
	return it.state != active
}

// plainStart is the Plain line announcing an action. Called with mu held
// or before the item is shared.
func (it *Item) plainStart() string {
	line := it.id + ": " + it.action
	if total := it.total.Load(); total > 0 {
		line += " " + humanSize(total)
	}
	return line
}

// failedLine describes a failed item. Called with mu held.
func (it *Item) failedLine() string {
	return fmt.Sprintf("%s: %s failed: %v", it.id, it.action, it.err)
}

// line renders the item's TTY line at time now, at most width characters
// wide. Called with the Progress's mu held.
func (p *Progress) line(it *Item, now time.Time, width int) string {
	it.mu.Lock()
	defer it.mu.Unlock()
	switch it.state {
	case done:
		return clip(oneLine(it.id+": "+it.final), width)
	case failed:
		return clip(oneLine(it.failedLine()), width)
	}

	cur, total := it.current.Load(), it.total.Load()
	rate := it.observe(now, cur)

	prefix := oneLine(it.id + ": " + it.action)
	var suffix strings.Builder
	switch {
	case total > 0:
		fmt.Fprintf(&suffix, "  %s/%s", humanSize(cur), humanSize(total))
	case cur > 0:
		fmt.Fprintf(&suffix, "  %s", humanSize(cur))
	}
	if rate > 0 {
		fmt.Fprintf(&suffix, "  %s/s", humanSize(int64(rate)))
		if total > cur {
			if eta := time.Duration(float64(total-cur) / rate * float64(time.Second)); eta < maxETA {
				fmt.Fprintf(&suffix, "  ETA %s", formatETA(eta))
			}
		}
	}

	bar := ""
	if total > 0 {
		// prefix + " [" + bar + "]" + suffix
		if avail := width - len(prefix) - 3 - suffixRoom; avail >= minBarWidth {
			bar = " [" + renderBar(cur, total, min(avail, maxBarWidth)) + "]"
		}
	}
	return clip(prefix+bar+suffix.String(), width)
}

// observe records the byte count n at time now and returns the transfer
// rate in bytes per second over the last rateWindow, or 0 while there is
// too little history. Called with mu held.
func (it *Item) observe(now time.Time, n int64) float64 {
	if len(it.samples) > 0 && n < it.samples[len(it.samples)-1].n {
		// The count went back: a new phase started counting afresh.
		it.samples = it.samples[:0]
	}
	it.samples = append(it.samples, sample{at: now, n: n})
	// Keep the newest sample at or before the window's start as the anchor.
	drop := 0
	for drop+1 < len(it.samples) && !it.samples[drop+1].at.After(now.Add(-rateWindow)) {
		drop++
	}
	it.samples = append(it.samples[:0], it.samples[drop:]...)

	first := it.samples[0]
	span := now.Sub(first.at)
	if span < minRateSpan || n <= first.n {
		return 0
	}
	return float64(n-first.n) / span.Seconds()
}

// renderBar draws a bar of width cells for cur out of total: "=====>    ",
// all "=" when complete.
func renderBar(cur, total int64, width int) string {
	if width <= 0 {
		return ""
	}
	filled := width
	if cur < total {
		filled = int(float64(width) * float64(max(cur, 0)) / float64(total))
	}
	if filled >= width {
		return strings.Repeat("=", width)
	}
	return strings.Repeat("=", filled) + ">" + strings.Repeat(" ", width-filled-1)
}

// humanSize formats n bytes with three significant digits, as docker does
// ("12.3MB"). go-units would print 999.5kB as "1e+03kB" at that precision,
// so one more digit is used where three are not enough.
func humanSize(n int64) string {
	s := units.HumanSizeWithPrecision(float64(n), 3)
	if strings.Contains(s, "e+") {
		s = units.HumanSizeWithPrecision(float64(n), 4)
	}
	return s
}

// formatETA formats a remaining time compactly: "6s", "2m05s", "1h02m".
func formatETA(d time.Duration) string {
	secs := int64(d.Round(time.Second) / time.Second)
	h, m, s := secs/3600, secs/60%60, secs%60
	switch {
	case h > 0:
		return fmt.Sprintf("%dh%02dm", h, m)
	case m > 0:
		return fmt.Sprintf("%dm%02ds", m, s)
	default:
		return fmt.Sprintf("%ds", s)
	}
}

// oneLine keeps a line from breaking the layout: line breaks become spaces.
func oneLine(s string) string {
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
}

// clip cuts s to at most width characters.
func clip(s string, width int) string {
	n := 0
	for i := range s {
		if n == width {
			return s[:i]
		}
		n++
	}
	return s
}

type countingWriter struct{ it *Item }

func (w countingWriter) Write(b []byte) (int, error) {
	w.it.Add(int64(len(b)))
	return len(b), nil
}

type countingReader struct {
	r  io.Reader
	it *Item
}

func (r *countingReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	r.it.Add(int64(n))
	return n, err
}
