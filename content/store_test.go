package content

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

func TestRoundTrip(t *testing.T) {
	for _, alg := range []digest.Algorithm{digest.SHA256, digest.SHA512} {
		for _, size := range []int{0, 1, 4096, 3<<20 + 7} {
			for _, known := range []bool{true, false} {
				t.Run(fmt.Sprintf("%s/%d/knownsize=%v", alg, size, known), func(t *testing.T) {
					ctx := context.Background()
					s := newStore(t)
					data := testData(size, uint64(size))
					dgst := alg.FromBytes(data)
					total := int64(UnknownSize)
					if known {
						total = int64(size)
					}
					w, err := s.Writer(ctx, "ref", dgst, total)
					if err != nil {
						t.Fatal(err)
					}
					// Odd-sized writes, then the rest through io.Copy (ReadFrom).
					head := min(len(data), 12345)
					for c := range slices.Chunk(data[:head], 1000) {
						if _, err := w.Write(c); err != nil {
							t.Fatal(err)
						}
					}
					if _, err := io.Copy(w, bytes.NewReader(data[head:])); err != nil {
						t.Fatal(err)
					}
					if st := w.Status(); st.Offset != int64(size) || st.Ref != "ref" || st.Expected != dgst || st.Total != total {
						t.Fatalf("status %+v", st)
					}
					if err := w.Commit(ctx); err != nil {
						t.Fatal(err)
					}
					if w.Digest() != dgst {
						t.Fatalf("writer digest %s, want %s", w.Digest(), dgst)
					}
					if err := w.Close(); err != nil {
						t.Fatalf("close after commit: %v", err)
					}
					if _, err := w.Write([]byte("x")); err == nil {
						t.Fatal("write after commit succeeded")
					}
					if got := readAll(t, s, dgst); !bytes.Equal(got, data) {
						t.Fatal("content differs")
					}
					if got, err := ReadBlob(ctx, s, dgst); err != nil || !bytes.Equal(got, data) {
						t.Fatalf("ReadBlob: %v", err)
					}
					info, err := s.Info(ctx, dgst)
					if err != nil {
						t.Fatal(err)
					}
					if info.Digest != dgst || info.Size != int64(size) || info.Labels != nil || time.Since(info.CreatedAt) > time.Minute {
						t.Fatalf("info %+v", info)
					}
					if blobs := checkStore(t, s); len(blobs) != 1 || blobs[0] != dgst {
						t.Fatalf("blobs %v", blobs)
					}
					if d := ingestDirs(t, s); len(d) != 0 {
						t.Fatalf("ingest left: %v", d)
					}
				})
			}
		}
	}
}

func TestUnknownDigest(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data := testData(1000, 1)
	w, err := s.Writer(ctx, "build-output", "", UnknownSize)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	want := digest.FromBytes(data)
	if w.Digest() != want {
		t.Fatalf("digest %s, want %s", w.Digest(), want)
	}
	if !bytes.Equal(readAll(t, s, want), data) {
		t.Fatal("content differs")
	}
}

func TestMismatchLeavesNothing(t *testing.T) {
	data := testData(100000, 2)
	dgst := digest.FromBytes(data)
	other := append(bytes.Clone(data[:len(data)-1]), data[len(data)-1]^1)
	tests := []struct {
		name     string
		expected digest.Digest
		size     int64
		write    []byte
		// wantWrite fails at Write, wantCommit at Commit.
		wantWrite, wantCommit error
		ingestKept            bool
	}{
		{"wrong content", dgst, int64(len(data)), other, nil, ErrDigestMismatch, false},
		{"wrong content unknown size", dgst, UnknownSize, other, nil, ErrDigestMismatch, false},
		{"too long", dgst, int64(len(data)) - 1, data, ErrSizeMismatch, ErrSizeMismatch, true},
		{"too short", dgst, int64(len(data)), data[:len(data)-1], nil, ErrSizeMismatch, true},
		{"too short unknown size", dgst, UnknownSize, data[:len(data)-1], nil, ErrDigestMismatch, false},
		{"right size wrong digest alg", digest.SHA512.FromBytes(data), int64(len(data)), other, nil, ErrDigestMismatch, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s := newStore(t)
			w, err := s.Writer(ctx, "ref", tt.expected, tt.size)
			if err != nil {
				t.Fatal(err)
			}
			_, err = w.Write(tt.write)
			if !errors.Is(err, tt.wantWrite) || (tt.wantWrite == nil) != (err == nil) {
				t.Fatalf("write: %v, want %v", err, tt.wantWrite)
			}
			err = w.Commit(ctx)
			if !errors.Is(err, tt.wantCommit) {
				t.Fatalf("commit: %v, want %v", err, tt.wantCommit)
			}
			w.Close()
			if blobs := checkStore(t, s); len(blobs) != 0 {
				t.Fatalf("blobs after a failed commit: %v", blobs)
			}
			if got := len(ingestDirs(t, s)) == 1; got != tt.ingestKept {
				t.Fatalf("ingest kept: %v, want %v", got, tt.ingestKept)
			}
		})
	}
}

func TestShortCommitThenFinish(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data := testData(5000, 3)
	dgst := digest.FromBytes(data)
	w, err := s.Writer(ctx, "ref", dgst, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Write(data[:100])
	if err := w.Commit(ctx); !errors.Is(err, ErrSizeMismatch) {
		t.Fatalf("commit short: %v", err)
	}
	w.Write(data[100:])
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	checkStore(t, s)
}

func TestWriterBlobExists(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data := []byte("hello")
	dgst := put(t, s, data, digest.SHA256)
	_, err := s.Writer(ctx, "again", dgst, int64(len(data)))
	if !errors.Is(err, ErrAlreadyExists) {
		t.Fatalf("writer for an existing blob: %v", err)
	}
	if d := ingestDirs(t, s); len(d) != 0 {
		t.Fatalf("ingest left: %v", d)
	}
	if err := WriteBlob(ctx, s, "again", bytes.NewReader(data), dgst, 5, WithLabels(map[string]string{"x": "y"})); err != nil {
		t.Fatal(err)
	}
	if info, _ := s.Info(ctx, dgst); info.Labels["x"] != "y" {
		t.Fatalf("WriteBlob of an existing blob did not merge labels: %v", info.Labels)
	}
}

// Two refs committing the same content: both succeed, one blob, labels merged.
func TestCommitExisting(t *testing.T) {
	for _, link := range []bool{false, true} {
		t.Run(fmt.Sprintf("link=%v", link), func(t *testing.T) {
			ctx := context.Background()
			s := newStore(t)
			s.noRenameNoReplace = link
			data := testData(10000, 4)
			dgst := digest.FromBytes(data)
			w1, err := s.Writer(ctx, "one", dgst, int64(len(data)))
			if err != nil {
				t.Fatal(err)
			}
			w2, err := s.Writer(ctx, "two", dgst, int64(len(data)))
			if err != nil {
				t.Fatal(err)
			}
			w1.Write(data)
			w2.Write(data)
			if err := w1.Commit(ctx, WithLabels(map[string]string{"a": "1"})); err != nil {
				t.Fatal(err)
			}
			ra, err := s.ReaderAt(ctx, dgst)
			if err != nil {
				t.Fatal(err)
			}
			defer ra.Close()
			before, _ := os.Stat(s.blobPath(dgst))
			if err := w2.Commit(ctx, WithLabels(map[string]string{"b": "2"})); err != nil {
				t.Fatalf("second commit: %v", err)
			}
			after, _ := os.Stat(s.blobPath(dgst))
			if !os.SameFile(before, after) {
				t.Fatal("the existing blob was replaced")
			}
			info, err := s.Info(ctx, dgst)
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(info.Labels, map[string]string{"a": "1", "b": "2"}) {
				t.Fatalf("labels %v", info.Labels)
			}
			if blobs := checkStore(t, s); len(blobs) != 1 {
				t.Fatalf("blobs %v", blobs)
			}
			if d := ingestDirs(t, s); len(d) != 0 {
				t.Fatalf("ingests left: %v", d)
			}
		})
	}
}

// Goroutines writing the same blob, through one ref or each its own, all
// succeed and leave one blob; writers of different blobs run in parallel.
func TestConcurrentWriters(t *testing.T) {
	const n = 8
	data := testData(2<<20, 5)
	dgst := digest.FromBytes(data)
	for _, sameRef := range []bool{true, false} {
		t.Run(fmt.Sprintf("sameref=%v", sameRef), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			s := newStore(t)
			var wg sync.WaitGroup
			errs := make([]error, n)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ref := "layer"
					if !sameRef {
						ref += strconv.Itoa(i)
					}
					r := &slowReader{r: bytes.NewReader(data), chunk: 256 << 10, delay: time.Millisecond}
					errs[i] = WriteBlob(ctx, s, ref, r, dgst, int64(len(data)),
						WithLabels(map[string]string{"w" + strconv.Itoa(i): "1"}))
				}()
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("writer %d: %v", i, err)
				}
			}
			if blobs := checkStore(t, s); len(blobs) != 1 {
				t.Fatalf("blobs %v", blobs)
			}
			info, _ := s.Info(ctx, dgst)
			if len(info.Labels) != n {
				t.Fatalf("labels of every writer should be merged, got %v", info.Labels)
			}
			if d := ingestDirs(t, s); len(d) != 0 {
				t.Fatalf("ingests left: %v", d)
			}
		})
	}
	t.Run("distinct blobs in parallel", func(t *testing.T) {
		// Each writer takes >= 8 x 25ms of reading; serialised they would
		// take n times that.
		const per = 8 * 25 * time.Millisecond
		s := newStore(t)
		start := time.Now()
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d := testData(8<<10, uint64(100+i))
				r := &slowReader{r: bytes.NewReader(d), chunk: 1 << 10, delay: 25 * time.Millisecond}
				if err := WriteBlob(context.Background(), s, "blob"+strconv.Itoa(i), r, digest.FromBytes(d), int64(len(d))); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if el := time.Since(start); el > n*per/2 {
			t.Fatalf("%d independent writers took %v: serialised (one takes %v)", n, el, per)
		}
		if blobs := checkStore(t, s); len(blobs) != n {
			t.Fatalf("blobs %v", blobs)
		}
	})
}

// Two processes pulling the same layer end with one blob and no error.
func TestConcurrentProcesses(t *testing.T) {
	for _, sameRef := range []bool{true, false} {
		t.Run(fmt.Sprintf("sameref=%v", sameRef), func(t *testing.T) {
			s := newStore(t)
			env := []string{envSize + "=" + strconv.Itoa(4<<20), envSeed + "=6", envSlow + "=1"}
			var cmds []*exec.Cmd
			for i := range 2 {
				ref := "layer"
				if !sameRef {
					ref += strconv.Itoa(i)
				}
				cmds = append(cmds, startHelper(t, "writeblob", s.Root(), append(env, envRef+"="+ref)...))
			}
			for i, c := range cmds {
				if err := c.Wait(); err != nil {
					t.Errorf("process %d: %v", i, err)
				}
			}
			blobs := checkStore(t, s)
			if len(blobs) != 1 || blobs[0] != digest.FromBytes(testData(4<<20, 6)) {
				t.Fatalf("blobs %v", blobs)
			}
			if info, _ := s.Info(context.Background(), blobs[0]); len(info.Labels) != 2 {
				t.Fatalf("labels %v: want one per process", info.Labels)
			}
			if d := ingestDirs(t, s); len(d) != 0 {
				t.Fatalf("ingests left: %v", d)
			}
		})
	}
}

func TestLockedRef(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data := testData(1000, 7)
	dgst := digest.FromBytes(data)
	w1, err := s.Writer(ctx, "ref", dgst, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	w1.Write(data[:400])

	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := s.Writer(short, "ref", dgst, int64(len(data))); !errors.Is(err, ErrLocked) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second writer: %v, want ErrLocked and DeadlineExceeded", err)
	}
	short2, cancel2 := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel2()
	if err := s.AbortIngest(short2, "ref"); !errors.Is(err, ErrLocked) {
		t.Fatalf("abort of a held ingest: %v, want ErrLocked", err)
	}

	// A waiting writer gets the ingest, resumed, once the first lets go.
	got := make(chan *Writer)
	go func() {
		w2, err := s.Writer(ctx, "ref", dgst, int64(len(data)))
		if err != nil {
			t.Error(err)
		}
		got <- w2
	}()
	time.Sleep(20 * time.Millisecond)
	if err := w1.Close(); err != nil {
		t.Fatal(err)
	}
	w2 := <-got
	if w2 == nil {
		t.FailNow()
	}
	if off := w2.Status().Offset; off != 400 {
		t.Fatalf("resumed offset %d, want 400", off)
	}
	w2.Write(data[400:])
	if err := w2.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	checkStore(t, s)
}

func TestResume(t *testing.T) {
	ctx := context.Background()
	data := testData(3<<20+5, 8)
	dgst := digest.SHA512.FromBytes(data)
	size := int64(len(data))

	t.Run("same expectations", func(t *testing.T) {
		s := newStore(t)
		w, _ := s.Writer(ctx, "ref", dgst, size)
		w.Write(data[:2<<20])
		st0 := w.Status()
		w.Close()
		sts, err := s.ListIngests(ctx)
		if err != nil || len(sts) != 1 || sts[0].Offset != 2<<20 || sts[0].Expected != dgst || sts[0].Total != size {
			t.Fatalf("ingests %+v, %v", sts, err)
		}
		if st, err := s.IngestStatus(ctx, "ref"); err != nil || st.Offset != 2<<20 {
			t.Fatalf("ingest status %+v, %v", st, err)
		}
		// Unknown expectations adopt the recorded ones.
		w, err = s.Writer(ctx, "ref", "", UnknownSize)
		if err != nil {
			t.Fatal(err)
		}
		st := w.Status()
		if st.Offset != 2<<20 || st.Expected != dgst || st.Total != size || !st.StartedAt.Equal(st0.StartedAt) {
			t.Fatalf("resumed status %+v (first %+v)", st, st0)
		}
		if _, err := w.Write(data[2<<20:]); err != nil {
			t.Fatal(err)
		}
		if err := w.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(readAll(t, s, dgst), data) {
			t.Fatal("content differs")
		}
		checkStore(t, s)
	})
	t.Run("different expectations restart", func(t *testing.T) {
		s := newStore(t)
		w, _ := s.Writer(ctx, "ref", digest.FromString("other"), 5)
		w.Write([]byte("oth"))
		w.Close()
		w, err := s.Writer(ctx, "ref", dgst, size)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		if off := w.Status().Offset; off != 0 {
			t.Fatalf("offset %d, want a restart", off)
		}
	})
	t.Run("WriteBlob skips what is there", func(t *testing.T) {
		s := newStore(t)
		w, _ := s.Writer(ctx, "ref", dgst, size)
		w.Write(data[:1<<20])
		w.Close()
		// A non-seekable reader: the first MiB is read and discarded.
		if err := WriteBlob(ctx, s, "ref", io.MultiReader(bytes.NewReader(data)), dgst, size); err != nil {
			t.Fatal(err)
		}
		checkStore(t, s)
	})
	t.Run("truncate", func(t *testing.T) {
		s := newStore(t)
		w, _ := s.Writer(ctx, "ref", dgst, size)
		defer w.Close()
		w.Write(data[:1000])
		w.Write([]byte("garbage"))
		if err := w.Truncate(1000); err != nil {
			t.Fatal(err)
		}
		if err := w.Truncate(2000); !errors.Is(err, ErrInvalidArgument) {
			t.Fatalf("truncate past offset: %v", err)
		}
		w.Write(data[1000:])
		if err := w.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		checkStore(t, s)
	})
}

func TestContextCancel(t *testing.T) {
	s := newStore(t)
	data := testData(1000, 9)
	dgst := digest.FromBytes(data)
	ctx, cancel := context.WithCancel(context.Background())
	w, err := s.Writer(ctx, "ref", dgst, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data[:500])
	cancel()
	if _, err := w.Write(data[500:]); !errors.Is(err, context.Canceled) {
		t.Fatalf("write after cancel: %v", err)
	}
	if err := w.Commit(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("commit after cancel: %v", err)
	}
	w.Close()
	if err := s.Walk(ctx, func(Info) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("walk: %v", err)
	}
	if _, err := s.Writer(ctx, "ref", dgst, 1000); !errors.Is(err, context.Canceled) {
		t.Fatalf("writer: %v", err)
	}
	st, err := s.IngestStatus(context.Background(), "ref")
	if err != nil || st.Offset != 500 {
		t.Fatalf("ingest after cancel %+v, %v", st, err)
	}
}

func TestAbortIngest(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	w, _ := s.Writer(ctx, "ref", "", UnknownSize)
	w.Write([]byte("partial"))
	w.Close()
	if err := s.AbortIngest(ctx, "ref"); err != nil {
		t.Fatal(err)
	}
	if d := ingestDirs(t, s); len(d) != 0 {
		t.Fatalf("ingest left: %v", d)
	}
	if err := s.AbortIngest(ctx, "ref"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("abort missing: %v", err)
	}
	if _, err := s.IngestStatus(ctx, "ref"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("status missing: %v", err)
	}
}

func TestLabels(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	dgst := put(t, s, []byte("labelled"), digest.SHA256, WithLabels(map[string]string{"a": "1", "b": "2", "empty": ""}))
	check := func(s *Store, want map[string]string) {
		t.Helper()
		info, err := s.Info(ctx, dgst)
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(info.Labels, want) {
			t.Fatalf("labels %v, want %v", info.Labels, want)
		}
	}
	check(s, map[string]string{"a": "1", "b": "2"})

	info, err := s.Update(ctx, Info{Digest: dgst, Labels: map[string]string{"b": "", "c": "3", "ignored": "x"}}, "labels.b", "labels.c")
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"a": "1", "c": "3"}; !maps.Equal(info.Labels, want) {
		t.Fatalf("update returned %v, want %v", info.Labels, want)
	}
	check(s, map[string]string{"a": "1", "c": "3"})

	// Labels survive reopening the store.
	s2, err := Open(s.Root())
	if err != nil {
		t.Fatal(err)
	}
	check(s2, map[string]string{"a": "1", "c": "3"})

	if _, err := s2.Update(ctx, Info{Digest: dgst, Labels: map[string]string{"z": "26"}}); err != nil {
		t.Fatal(err)
	}
	check(s2, map[string]string{"z": "26"})
	if _, err := s2.Update(ctx, Info{Digest: dgst}, "labels"); err != nil {
		t.Fatal(err)
	}
	check(s2, nil)
	if _, err := os.Lstat(s.labelsPath(dgst)); !isNotExist(err) {
		t.Fatalf("empty labels should remove the sidecar: %v", err)
	}

	for _, tt := range []struct {
		name   string
		info   Info
		paths  []string
		target error
	}{
		{"missing blob", Info{Digest: digest.FromString("missing")}, nil, ErrNotFound},
		{"bad field path", Info{Digest: dgst}, []string{"size"}, ErrInvalidArgument},
		{"empty label key path", Info{Digest: dgst}, []string{"labels."}, ErrInvalidArgument},
		{"empty key", Info{Digest: dgst, Labels: map[string]string{"": "x"}}, nil, ErrInvalidArgument},
		{"huge label", Info{Digest: dgst, Labels: map[string]string{"k": strings.Repeat("v", maxLabelSize)}}, nil, ErrInvalidArgument},
		{"bad digest", Info{Digest: "sha256:nope"}, nil, ErrInvalidDigest},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s2.Update(ctx, tt.info, tt.paths...); !errors.Is(err, tt.target) {
				t.Fatalf("update: %v, want %v", err, tt.target)
			}
		})
	}
	checkStore(t, s2)
}

func TestWalk(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	a := put(t, s, []byte("a"), digest.SHA256, WithLabels(map[string]string{"kind": "layer", "root": "1"}))
	b := put(t, s, []byte("b"), digest.SHA256, WithLabels(map[string]string{"kind": "config"}))
	c := put(t, s, []byte("c"), digest.SHA512, WithLabels(map[string]string{"kind": "layer"}))
	d := put(t, s, []byte("d"), digest.SHA512)
	// Stray files in blobs/ are not blobs.
	os.WriteFile(filepath.Join(s.root, "blobs", "sha256", "README"), nil, 0o644)

	walk := func(filters ...Filter) map[digest.Digest]bool {
		t.Helper()
		got := map[digest.Digest]bool{}
		if err := s.Walk(ctx, func(i Info) error { got[i.Digest] = true; return nil }, filters...); err != nil {
			t.Fatal(err)
		}
		return got
	}
	set := func(ds ...digest.Digest) map[digest.Digest]bool {
		m := map[digest.Digest]bool{}
		for _, d := range ds {
			m[d] = true
		}
		return m
	}
	for _, tt := range []struct {
		name    string
		filters []Filter
		want    map[digest.Digest]bool
	}{
		{"all", nil, set(a, b, c, d)},
		{"label value", []Filter{WithLabel("kind", "layer")}, set(a, c)},
		{"has label", []Filter{HasLabel("kind")}, set(a, b, c)},
		{"and", []Filter{WithLabel("kind", "layer"), HasLabel("root")}, set(a)},
		{"or", []Filter{AnyOf(WithLabel("kind", "config"), HasLabel("root"))}, set(a, b)},
		{"algorithm", []Filter{WithAlgorithm(digest.SHA512)}, set(c, d)},
		{"none", []Filter{HasLabel("nope")}, set()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := walk(tt.filters...); !maps.Equal(got, tt.want) {
				t.Fatalf("walk %v, want %v", got, tt.want)
			}
		})
	}
	stop := errors.New("stop")
	n := 0
	if err := s.Walk(ctx, func(Info) error { n++; return stop }); err != stop || n != 1 {
		t.Fatalf("walk stopped with %v after %d", err, n)
	}
}

func TestDelete(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data := []byte("to delete")
	dgst := put(t, s, data, digest.SHA256, WithLabels(map[string]string{"a": "1"}))
	ra, err := s.ReaderAt(ctx, dgst)
	if err != nil {
		t.Fatal(err)
	}
	defer ra.Close()
	if err := s.Delete(ctx, dgst); err != nil {
		t.Fatal(err)
	}
	// An open reader keeps reading.
	b := make([]byte, len(data))
	if _, err := ra.ReadAt(b, 0); err != nil || !bytes.Equal(b, data) {
		t.Fatalf("read after delete: %v", err)
	}
	if _, err := s.ReaderAt(ctx, dgst); !errors.Is(err, ErrNotFound) {
		t.Fatalf("reader of a deleted blob: %v", err)
	}
	if _, err := s.Info(ctx, dgst); !errors.Is(err, ErrNotFound) {
		t.Fatalf("info of a deleted blob: %v", err)
	}
	if err := s.Delete(ctx, dgst); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if _, err := os.Lstat(s.labelsPath(dgst)); !isNotExist(err) {
		t.Fatalf("labels left: %v", err)
	}
	// Committing it again gets fresh labels.
	put(t, s, data, digest.SHA256)
	if info, _ := s.Info(ctx, dgst); info.Labels != nil {
		t.Fatalf("labels resurrected: %v", info.Labels)
	}
	checkStore(t, s)
}

func TestReadOnlyBlobs(t *testing.T) {
	s := newStore(t)
	dgst := put(t, s, []byte("ro"), digest.SHA256)
	fi, err := os.Stat(s.blobPath(dgst))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != 0o444 {
		t.Fatalf("mode %v, want -r--r--r--", fi.Mode())
	}
}

func TestInvalidDigests(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	hex64 := strings.Repeat("a", 64)
	bad := []digest.Digest{
		"",
		"sha256",
		"sha256:",
		":" + digest.Digest(hex64),
		"sha256:abc",
		"sha256:" + digest.Digest(strings.ToUpper(hex64)),
		"SHA256:" + digest.Digest(hex64),
		"sha256:" + digest.Digest(hex64) + "\n",
		"sha256:" + digest.Digest(hex64[:63]) + "/",
		"sha256:" + digest.Digest(hex64) + "a",
		"sha256:../../../../../../etc/passwd",
		"sha256:" + digest.Digest(hex64[:60]) + "/../",
		"sha384:" + digest.Digest(strings.Repeat("a", 96)),
		"md5:d41d8cd98f00b204e9800998ecf8427e",
		"sha512:" + digest.Digest(hex64),
		"../sha256:" + digest.Digest(hex64),
		" sha256:" + digest.Digest(hex64),
	}
	for _, d := range bad {
		t.Run(strconv.Quote(string(d)), func(t *testing.T) {
			checks := map[string]error{}
			_, checks["ReaderAt"] = s.ReaderAt(ctx, d)
			_, checks["Info"] = s.Info(ctx, d)
			checks["Delete"] = s.Delete(ctx, d)
			_, checks["Update"] = s.Update(ctx, Info{Digest: d})
			if d != "" { // "" is the unknown digest to Writer
				_, checks["Writer"] = s.Writer(ctx, "ref", d, 1)
			}
			checks["WriteBlob"] = WriteBlob(ctx, s, "ref", strings.NewReader("x"), d, 1)
			for op, err := range checks {
				if !errors.Is(err, ErrInvalidDigest) {
					t.Errorf("%s: %v, want ErrInvalidDigest", op, err)
				}
			}
		})
	}
	for _, ref := range []string{"", strings.Repeat("r", maxRefLen+1), "\xff"} {
		if _, err := s.Writer(ctx, ref, "", UnknownSize); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("writer ref %q: %v", ref, err)
		}
	}
	if d := ingestDirs(t, s); len(d) != 0 {
		t.Fatalf("ingests created: %v", d)
	}
}

func TestOpenCleansStaleTemp(t *testing.T) {
	s := newStore(t)
	// A pid that certainly belongs to no process: a reaped child's.
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := filepath.Join(s.root, "tmp", strconv.Itoa(cmd.Process.Pid)+"-123")
	live := filepath.Join(s.root, "tmp", strconv.Itoa(os.Getpid())+"-456")
	foreign := filepath.Join(s.root, "tmp", "notours")
	for _, p := range []string{dead, live, foreign} {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Open(s.Root()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(dead); !isNotExist(err) {
		t.Errorf("dead writer's temp file kept: %v", err)
	}
	for _, p := range []string{live, foreign} {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s removed: %v", p, err)
		}
	}
}

func TestLayoutVersion(t *testing.T) {
	s := newStore(t)
	b, err := os.ReadFile(filepath.Join(s.root, "layout.json"))
	if err != nil || string(b) != `{"version":1}` {
		t.Fatalf("layout.json %q, %v", b, err)
	}
	os.WriteFile(filepath.Join(s.root, "layout.json"), []byte(`{"version":2}`), 0o644)
	if _, err := Open(s.Root()); err == nil {
		t.Fatal("opened a store of a newer layout")
	}
}

// A Writer waiting for a held ref stops waiting when its blob appears
// through another ref.
func TestWaitingWriterSeesBlob(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := newStore(t)
	data := testData(1000, 10)
	dgst := digest.FromBytes(data)
	held, err := s.Writer(ctx, "ref", dgst, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	errc := make(chan error)
	go func() {
		_, err := s.Writer(ctx, "ref", dgst, int64(len(data)))
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	if err := WriteBlob(ctx, s, "other", bytes.NewReader(data), dgst, int64(len(data))); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, ErrAlreadyExists) {
		t.Fatalf("waiting writer: %v, want ErrAlreadyExists", err)
	}
}

// A write cut short (EFBIG under a file size limit, like ENOSPC) hashes
// only what was written, so the ingest continues correctly.
func TestShortWrite(t *testing.T) {
	s := newStore(t)
	size := 3<<20 + 1
	ps := runHelperProc(t, "short-write", s.Root(), envRef+"=ref", envSize+"="+strconv.Itoa(size), envSeed+"=11")
	if !ps.Success() {
		t.Fatalf("helper: %v", ps)
	}
	if blobs := checkStore(t, s); len(blobs) != 1 || blobs[0] != digest.FromBytes(testData(size, 11)) {
		t.Fatalf("blobs %v", blobs)
	}
}
