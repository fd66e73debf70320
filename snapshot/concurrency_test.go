package snapshot

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestCommitSameNameGoroutines: several goroutines extract a layer and
// commit it under the same name; one wins, the others get
// ErrAlreadyExists and remove their active snapshot.
func TestCommitSameNameGoroutines(t *testing.T) {
	ctx := context.Background()
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			s := newSnapshotter(t, driver)
			addLayer(t, s, "base", "", file("f", "base"))
			const n = 8
			results := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					key := "work-" + strconv.Itoa(i)
					results[i] = func() error {
						if _, err := s.Prepare(ctx, key, "base", nil); err != nil {
							return err
						}
						layer := mustLayer([]entry{file("who", strconv.Itoa(i))})
						if _, err := s.ApplyLayer(ctx, key, bytes.NewReader(layer)); err != nil {
							return err
						}
						err := s.Commit(ctx, "layer", key, map[string]string{"winner": strconv.Itoa(i)})
						if errors.Is(err, ErrAlreadyExists) {
							if rerr := s.Remove(ctx, key); rerr != nil {
								return rerr
							}
						}
						return err
					}()
				})
			}
			wg.Wait()
			winner := -1
			for i, err := range results {
				switch {
				case err == nil && winner >= 0:
					t.Errorf("both %d and %d committed", winner, i)
				case err == nil:
					winner = i
				case !errors.Is(err, ErrAlreadyExists):
					t.Errorf("goroutine %d: %v", i, err)
				}
			}
			checkCommitted(t, s, winner)
		})
	}
}

// TestCommitSameNameProcesses is the same race between processes.
func TestCommitSameNameProcesses(t *testing.T) {
	root := newRoot(t)
	openRoot(t, root, DriverOverlay)
	const n = 4
	outs := make([]bytes.Buffer, n)
	cmds := make([]*exec.Cmd, n)
	for i := range n {
		cmd := helperCmd("commit-race", root, DriverOverlay, envArg+"="+strconv.Itoa(i))
		cmd.Stdout = &outs[i]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[i] = cmd
	}
	winner := -1
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("helper %d: %v", i, err)
		}
		switch out := strings.TrimSpace(outs[i].String()); out {
		case "won":
			if winner >= 0 {
				t.Errorf("both %d and %d committed", winner, i)
			}
			winner = i
		case "lost":
		default:
			t.Errorf("helper %d said %q", i, out)
		}
	}
	checkCommitted(t, openRoot(t, root, DriverOverlay), winner)
}

// checkCommitted checks that "layer" holds the winner's content and labels
// and that no active snapshot is left.
func checkCommitted(t *testing.T, s *Snapshotter, winner int) {
	t.Helper()
	ctx := context.Background()
	if winner < 0 {
		t.Fatal("nobody committed")
	}
	info, err := s.Stat(ctx, "layer")
	if err != nil || info.Kind != KindCommitted || info.Labels["winner"] != strconv.Itoa(winner) {
		t.Fatalf("layer: %+v, %v (winner %d)", info, err, winner)
	}
	m, err := s.View(ctx, "check", "layer", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(mountTemp(t, m), "who")); got != strconv.Itoa(winner) {
		t.Fatalf("layer holds %q, the winner is %d", got, winner)
	}
	_ = s.Walk(ctx, func(i Info) error {
		if i.Kind == KindActive {
			t.Errorf("active snapshot left: %s", i.Key)
		}
		return nil
	})
	checkRoot(t, s)
}

// TestRemoveRacesPrepare removes a parent while children are being
// prepared on it: either the removal fails with ErrHasChildren or the
// preparation with ErrNotFound, and the root stays consistent.
func TestRemoveRacesPrepare(t *testing.T) {
	ctx := context.Background()
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			s := newSnapshotter(t, driver)
			outcomes := make(map[string]int)
			for round := range 20 {
				parent := "p" + strconv.Itoa(round)
				addLayer(t, s, parent, "", bigLayer(4)...)
				child := "c" + strconv.Itoa(round)
				var prepErr, rmErr error
				var wg sync.WaitGroup
				wg.Go(func() { _, prepErr = s.Prepare(ctx, child, parent, nil) })
				wg.Go(func() {
					// Vary who is first.
					time.Sleep(time.Duration(round%4) * time.Millisecond)
					rmErr = s.Remove(ctx, parent)
				})
				wg.Wait()
				switch {
				case prepErr == nil && errors.Is(rmErr, ErrHasChildren):
					outcomes["child first"]++
					if got := mustStat(t, s, child); got.Parent != parent {
						t.Fatalf("child's parent %q", got.Parent)
					}
				case errors.Is(prepErr, ErrNotFound) && rmErr == nil:
					outcomes["removal first"]++
					if _, err := s.Stat(ctx, child); !errors.Is(err, ErrNotFound) {
						t.Fatalf("child of a removed parent: %v", err)
					}
				default:
					t.Fatalf("round %d: prepare: %v; remove: %v", round, prepErr, rmErr)
				}
			}
			t.Logf("outcomes: %v", outcomes)
			checkRoot(t, s)
		})
	}
}

// TestApplyInParallel: extracting layers into two snapshots overlaps, and
// other operations go on meanwhile: no lock is held across the extraction.
func TestApplyInParallel(t *testing.T) {
	ctx := context.Background()
	const delay = 400 * time.Millisecond
	s := newSnapshotter(t, DriverOverlay)
	for _, k := range []string{"a", "b"} {
		if _, err := s.Prepare(ctx, k, "", nil); err != nil {
			t.Fatal(err)
		}
	}
	// slow returns a layer that takes delay to read, and closes started
	// when ApplyLayer begins reading it (it then holds the snapshot).
	slow := func(started chan<- struct{}) io.Reader {
		layer := mustLayer([]entry{file("f", "x")})
		half := len(layer) / 2
		var once sync.Once
		return io.MultiReader(readerFunc(func([]byte) (int, error) {
			once.Do(func() { close(started) })
			return 0, io.EOF
		}), bytes.NewReader(layer[:half]), readerFunc(func([]byte) (int, error) {
			time.Sleep(delay)
			return 0, io.EOF
		}), bytes.NewReader(layer[half:]))
	}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, k := range []string{"a", "b"} {
		started := make(chan struct{})
		wg.Go(func() { _, errs[i] = s.ApplyLayer(ctx, k, slow(started)) })
		<-started
	}
	// While both extract: create, commit and remove other snapshots.
	opStart := time.Now()
	addLayer(t, s, "other", "", file("o", "o"))
	if err := s.Remove(ctx, "other"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(opStart); d > delay/2 {
		t.Errorf("other operations took %v while layers were extracted", d)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d > delay*3/2 {
		t.Errorf("two extractions of %v each took %v: they did not overlap", delay, d)
	}

	// Commit waits for an extraction in progress rather than committing a
	// partial layer.
	if _, err := s.Prepare(ctx, "c", "", nil); err != nil {
		t.Fatal(err)
	}
	applied := make(chan error, 1)
	started := make(chan struct{})
	go func() { _, err := s.ApplyLayer(ctx, "c", slow(started)); applied <- err }()
	<-started
	if err := s.Commit(ctx, "committed", "c", nil); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-applied:
		if err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatal("Commit returned before the extraction finished")
	}
	if got := readFile(t, filepath.Join(s.fsDir(mustStat(t, s, "committed").ID), "f")); got != "x" {
		t.Fatalf("committed f = %q", got)
	}
	// A context ends the wait for a busy snapshot.
	if _, err := s.Prepare(ctx, "d", "", nil); err != nil {
		t.Fatal(err)
	}
	started = make(chan struct{})
	go func() { _, err := s.ApplyLayer(ctx, "d", slow(started)); applied <- err }()
	<-started
	short, cancel := context.WithTimeout(ctx, delay/8)
	defer cancel()
	if err := s.Remove(short, "d"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("remove of a busy snapshot: %v, want DeadlineExceeded", err)
	}
	if err := <-applied; err != nil {
		t.Fatal(err)
	}
	checkRoot(t, s)
}
