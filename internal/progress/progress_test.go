package progress

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// syncBuffer is a bytes.Buffer safe for the redraw goroutine and the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// take returns what was written since the last call.
func (b *syncBuffer) take() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.String()
	b.buf.Reset()
	return s
}

// newTestTTY returns a TTY Progress of the given terminal size whose
// redraws happen only when the test calls redraw.
func newTestTTY(width, height int) (*Progress, *syncBuffer, *fakeClock) {
	out := &syncBuffer{}
	clock := newFakeClock()
	p := New(out, TTY)
	p.size = func() (int, int) { return width, height }
	p.now = clock.now
	p.interval = time.Hour
	return p, out, clock
}

func redraw(p *Progress) {
	p.mu.Lock()
	p.draw()
	p.mu.Unlock()
}

const (
	up1   = "\x1b[1A"
	up2   = "\x1b[2A"
	clear = "\x1b[2K"
)

func bar(filled, width int) string {
	if filled >= width {
		return strings.Repeat("=", width)
	}
	return strings.Repeat("=", filled) + ">" + strings.Repeat(" ", width-filled-1)
}

func TestParseMode(t *testing.T) {
	for _, m := range []Mode{Auto, TTY, Plain, Quiet} {
		got, err := ParseMode(m.String())
		if err != nil || got != m {
			t.Errorf("ParseMode(%q) = %v, %v", m.String(), got, err)
		}
	}
	if _, err := ParseMode("fancy"); err == nil {
		t.Error("ParseMode(fancy) succeeded")
	}
	if s := Mode(42).String(); s != "Mode(42)" {
		t.Errorf("Mode(42).String() = %q", s)
	}
}

func TestPlain(t *testing.T) {
	var out bytes.Buffer
	p := New(&out, Plain)
	if p.Mode() != Plain {
		t.Fatalf("mode %v", p.Mode())
	}
	a := p.Item("a3ed95caeb02", "Downloading", 45_600_000)
	b := p.Item("b2c1", "Waiting", 0)
	for range 1000 {
		a.Add(1000) // byte progress is never printed
	}
	a.Set(45_600_000)
	p.Printf("pulling %s\n", "busybox")
	b.SetAction("Downloading")
	b.SetTotal(10) // shows nothing by itself
	a.SetAction("Extracting")
	a.Done("Pull complete")
	a.Done("Pull complete again")
	a.SetAction("Extracting again")
	b.Fail(errors.New("connection reset\nby peer"))
	b.Done("too late")
	p.Close()
	p.Close()
	p.Printf("after close")
	p.Item("c", "Downloading", 1).Done("x")

	want := "a3ed95caeb02: Downloading 45.6MB\n" +
		"b2c1: Waiting\n" +
		"pulling busybox\n" +
		"b2c1: Downloading\n" +
		"a3ed95caeb02: Extracting 45.6MB\n" +
		"a3ed95caeb02: Pull complete\n" +
		"b2c1: Downloading failed: connection reset by peer\n"
	if out.String() != want {
		t.Errorf("plain output:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestQuietCountsWithoutOutput(t *testing.T) {
	var out bytes.Buffer
	p := New(&out, Quiet)
	it := p.Item("x", "Downloading", 10)
	if _, err := io.Copy(io.Discard, it.Reader(strings.NewReader("hello"))); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(it.Writer(), strings.NewReader("world!")); err != nil {
		t.Fatal(err)
	}
	p.Printf("message")
	it.Done("Pull complete")
	p.Close()
	if got := it.current.Load(); got != 11 {
		t.Errorf("counted %d bytes, want 11", got)
	}
	if out.Len() != 0 {
		t.Errorf("quiet mode wrote %q", out.String())
	}
}

func TestNilProgress(t *testing.T) {
	var p *Progress
	it := p.Item("x", "Downloading", 10)
	it.Add(3)
	it.SetAction("Extracting")
	it.Fail(errors.New("boom"))
	p.Printf("nothing")
	p.Close()
	if p.Mode() != Quiet || it.current.Load() != 3 {
		t.Errorf("mode %v, count %d", p.Mode(), it.current.Load())
	}
}

func TestAutoIsPlainOffTerminal(t *testing.T) {
	if m := New(&bytes.Buffer{}, Auto).Mode(); m != Plain {
		t.Errorf("buffer: mode %v, want plain", m)
	}
	f, err := os.Create(t.TempDir() + "/out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if m := New(f, Auto).Mode(); m != Plain {
		t.Errorf("regular file: mode %v, want plain", m)
	}
	if m := New(f, Mode(99)).Mode(); m != Quiet {
		t.Errorf("unknown mode resolved to %v, want quiet", m)
	}
}

func TestTTYRedraw(t *testing.T) {
	p, out, clock := newTestTTY(120, 0)
	a := p.Item("a", "Downloading", 1_000_000)
	b := p.Item("b", "Waiting", 0)

	// First frame: nothing to move up over.
	redraw(p)
	want := "\r" +
		clear + "a: Downloading [" + bar(0, 50) + "]  0B/1MB\n" +
		clear + "b: Waiting\n"
	if got := out.take(); got != want {
		t.Fatalf("frame 1:\n%q\nwant\n%q", got, want)
	}

	// Nothing changed: nothing is written.
	redraw(p)
	if got := out.take(); got != "" {
		t.Fatalf("unchanged frame redrawn: %q", got)
	}

	// Two seconds later, half done: rate and ETA appear.
	clock.advance(2 * time.Second)
	a.Set(500_000)
	b.SetAction("Downloading")
	b.Add(2048)
	redraw(p)
	want = up2 + "\r" +
		clear + "a: Downloading [" + bar(25, 50) + "]  500kB/1MB  250kB/s  ETA 2s\n" +
		clear + "b: Downloading  2.05kB\n"
	if got := out.take(); got != want {
		t.Fatalf("frame 2:\n%q\nwant\n%q", got, want)
	}

	// b finishes below the active a: it stays in place.
	b.Done("Already exists")
	clock.advance(time.Second)
	a.Add(250_000)
	redraw(p)
	want = up2 + "\r" +
		clear + "a: Downloading [" + bar(37, 50) + "]  750kB/1MB  250kB/s  ETA 1s\n" +
		clear + "b: Already exists\n"
	if got := out.take(); got != want {
		t.Fatalf("frame 3:\n%q\nwant\n%q", got, want)
	}

	// A message goes above the items.
	p.Printf("note: %d", 1)
	want = up2 + "\r" +
		clear + "note: 1\n" +
		clear + "a: Downloading [" + bar(37, 50) + "]  750kB/1MB  250kB/s  ETA 1s\n" +
		clear + "b: Already exists\n"
	if got := out.take(); got != want {
		t.Fatalf("message frame:\n%q\nwant\n%q", got, want)
	}

	// Both finished: their lines are final and leave the redrawn block.
	a.Done("Pull complete")
	redraw(p)
	want = up2 + "\r" +
		clear + "a: Pull complete\n" +
		clear + "b: Already exists\n"
	if got := out.take(); got != want {
		t.Fatalf("final frame:\n%q\nwant\n%q", got, want)
	}
	c := p.Item("c", "Pushing", 0)
	redraw(p)
	if got, want := out.take(), "\r"+clear+"c: Pushing\n"; got != want {
		t.Fatalf("after retiring, new item frame %q, want %q", got, want)
	}

	// Close draws the last state of unfinished items, once.
	c.Add(10)
	p.Close()
	if got, want := out.take(), up1+"\r"+clear+"c: Pushing  10B\n"; got != want {
		t.Fatalf("close frame %q, want %q", got, want)
	}
	p.Close()
	c.Done("Pushed")
	p.Printf("late")
	redraw(p)
	if got := out.take(); got != "" {
		t.Fatalf("output after Close: %q", got)
	}
}

func TestTTYFailedItem(t *testing.T) {
	p, out, _ := newTestTTY(120, 0)
	it := p.Item("a", "Downloading", 100)
	it.Fail(fmt.Errorf("read: %w", io.ErrUnexpectedEOF))
	p.Close()
	if got, want := out.take(), "\r"+clear+"a: Downloading failed: read: unexpected EOF\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestTTYWidth(t *testing.T) {
	tests := []struct {
		width int
		cur   int64
		total int64
		want  string
	}{
		// 100 columns: the bar fills what is left after the reserved room.
		{100, 0, 1000, "a: Downloading [" + bar(0, 99-14-3-suffixRoom) + "]  0B/1kB"},
		// Too narrow for a bar: figures only, clipped at the edge.
		{50, 500, 1000, "a: Downloading  500B/1kB"},
		{20, 500, 1000, "a: Downloading  500"},
		// Unknown or zero total: no bar.
		{120, 0, 0, "a: Downloading"},
		{120, 1_500_000, 0, "a: Downloading  1.5MB"},
		{120, 0, -1, "a: Downloading"},
		// More than announced: a full bar.
		{120, 2000, 1000, "a: Downloading [" + bar(50, 50) + "]  2kB/1kB"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%d cols %d of %d", tc.width, tc.cur, tc.total), func(t *testing.T) {
			p, out, _ := newTestTTY(tc.width, 0)
			it := p.Item("a", "Downloading", tc.total)
			it.Set(tc.cur)
			redraw(p)
			want := "\r" + clear + tc.want + "\n"
			if got := out.take(); got != want {
				t.Errorf("got  %q\nwant %q", got, want)
			}
			if len(tc.want) > tc.width-1 {
				t.Errorf("line of %d characters on a %d-column terminal", len(tc.want), tc.width)
			}
			p.Close()
		})
	}
}

func TestTTYHeightLimit(t *testing.T) {
	p, out, _ := newTestTTY(80, 4)
	for i := range 5 {
		p.Item(fmt.Sprintf("item%d", i), "Waiting", 0)
	}
	redraw(p)
	want := "\r" +
		clear + "item0: Waiting\n" +
		clear + "item1: Waiting\n" +
		clear + "... and 3 more\n"
	if got := out.take(); got != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}

	// The terminal grows, then shrinks below the block: the old lines
	// left below the shorter block are cleared.
	p.size = func() (int, int) { return 80, 10 }
	redraw(p)
	out.take()
	p.size = func() (int, int) { return 80, 3 }
	redraw(p)
	want = "\x1b[5A\r" +
		clear + "item0: Waiting\n" +
		clear + "... and 4 more\n" +
		"\x1b[J"
	if got := out.take(); got != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	p.Close()
}

func TestTickerRedrawsUntilClose(t *testing.T) {
	out := &syncBuffer{}
	p := New(out, TTY)
	p.interval = 5 * time.Millisecond
	it := p.Item("a", "Downloading", 100)
	it.Set(42)

	deadline := time.Now().Add(10 * time.Second)
	var seen string
	for !strings.Contains(seen, "42B/100B") {
		if time.Now().After(deadline) {
			t.Fatalf("no redraw within 10s; output %q", seen)
		}
		time.Sleep(5 * time.Millisecond)
		seen += out.take()
	}
	p.Close()
	out.take()
	it.Set(99)
	time.Sleep(50 * time.Millisecond)
	if got := out.take(); got != "" {
		t.Fatalf("redrawn after Close: %q", got)
	}
}

func TestConcurrentUse(t *testing.T) {
	for _, mode := range []Mode{TTY, Plain} {
		t.Run(mode.String(), func(t *testing.T) {
			out := &syncBuffer{}
			p := New(out, mode)
			p.interval = time.Millisecond
			shared := p.Item("shared", "Downloading", 0)
			const workers, adds = 16, 2000
			var wg sync.WaitGroup
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					own := p.Item(fmt.Sprintf("w%02d", w), "Downloading", adds)
					for i := range adds {
						shared.Add(1)
						own.Add(1)
						if i%500 == 0 {
							shared.SetTotal(int64(workers * adds))
							p.Printf("worker %d at %d", w, i)
						}
					}
					own.Done("Download complete")
				}()
			}
			wg.Wait()
			shared.Done("Download complete")
			p.Close()
			if got := shared.current.Load(); got != workers*adds {
				t.Fatalf("shared count %d, want %d", got, workers*adds)
			}
			s := out.take()
			if mode == Plain && strings.Count(s, "Download complete") != workers+1 {
				t.Errorf("%d completion lines, want %d", strings.Count(s, "Download complete"), workers+1)
			}
			for w := range workers {
				if id := fmt.Sprintf("w%02d", w); !strings.Contains(s, id+": Download complete\n") {
					t.Errorf("%s never shown complete", id)
				}
			}
		})
	}
}

func TestObserveRate(t *testing.T) {
	clock := newFakeClock()
	it := &Item{}
	step := func(d time.Duration, n int64) float64 {
		clock.advance(d)
		return it.observe(clock.now(), n)
	}
	if r := step(0, 0); r != 0 {
		t.Fatalf("first sample rate %v", r)
	}
	if r := step(500*time.Millisecond, 1000); r != 0 {
		t.Fatalf("rate %v before minRateSpan", r)
	}
	if r := step(500*time.Millisecond, 2000); r != 2000 {
		t.Fatalf("rate %v, want 2000", r)
	}
	// Ten seconds at 1000 B/s, sampled every second: the window forgets
	// the faster start.
	n := int64(2000)
	var r float64
	for range 10 {
		n += 1000
		r = step(time.Second, n)
	}
	if r != 1000 {
		t.Fatalf("windowed rate %v, want 1000", r)
	}
	if len(it.samples) > int(rateWindow/time.Second)+1 {
		t.Fatalf("%d samples kept", len(it.samples))
	}
	// A stall drives the rate to zero within the window.
	for range 6 {
		r = step(time.Second, n)
	}
	if r != 0 {
		t.Fatalf("rate %v after a stall, want 0", r)
	}
	// The count going back starts afresh.
	if r := step(time.Second, 10); r != 0 {
		t.Fatalf("rate %v right after a reset", r)
	}
	if len(it.samples) != 1 {
		t.Fatalf("%d samples after a reset", len(it.samples))
	}
}

func TestRenderBar(t *testing.T) {
	tests := []struct {
		cur, total int64
		width      int
		want       string
	}{
		{0, 100, 10, ">         "},
		{50, 100, 10, "=====>    "},
		{99, 100, 10, "=========>"},
		{100, 100, 10, "=========="},
		{150, 100, 10, "=========="},
		{-5, 100, 10, ">         "},
		{1, 3, 4, "=>  "},
		{5, 10, 0, ""},
	}
	for _, tc := range tests {
		if got := renderBar(tc.cur, tc.total, tc.width); got != tc.want {
			t.Errorf("renderBar(%d, %d, %d) = %q, want %q", tc.cur, tc.total, tc.width, got, tc.want)
		}
	}
}

func TestFormatETA(t *testing.T) {
	tests := map[time.Duration]string{
		0:                                     "0s",
		400 * time.Millisecond:                "0s",
		6 * time.Second:                       "6s",
		59*time.Second + 600*time.Millisecond: "1m00s",
		125 * time.Second:                     "2m05s",
		time.Hour + 2*time.Minute + 3*time.Second: "1h02m",
	}
	for d, want := range tests {
		if got := formatETA(d); got != want {
			t.Errorf("formatETA(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestHumanSize(t *testing.T) {
	tests := map[int64]string{
		0:          "0B",
		999:        "999B",
		1000:       "1kB",
		999_500:    "999.5kB",
		12_345_678: "12.3MB",
		45_600_000: "45.6MB",
	}
	for n, want := range tests {
		if got := humanSize(n); got != want {
			t.Errorf("humanSize(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestClip(t *testing.T) {
	if got := clip("héllo", 2); got != "hé" {
		t.Errorf("clip = %q", got)
	}
	if got := clip("abc", 5); got != "abc" {
		t.Errorf("clip = %q", got)
	}
}
