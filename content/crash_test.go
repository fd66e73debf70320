package content

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/opencontainers/go-digest"
)

// TestCrash kills a helper process (SIGKILL, through the failpoint hook) at
// each persistence step, reopens the store and checks that no partial blob
// is visible, that the ingest can be resumed or aborted, and that writing
// the blob again completes.
func TestCrash(t *testing.T) {
	const ref = "layer"
	size := 3<<20 + 100
	data := testData(size, 42)
	dgst := digest.FromBytes(data)
	blobEnv := []string{envRef + "=" + ref, envSize + "=" + strconv.Itoa(size), envSeed + "=42"}
	ctx := context.Background()

	hasBlob := func(t *testing.T, s *Store, want bool) {
		t.Helper()
		_, err := s.Info(ctx, dgst)
		if got := err == nil; got != want {
			t.Fatalf("blob present: %v, want %v (%v)", got, want, err)
		}
	}
	labelsAre := func(t *testing.T, s *Store, want map[string]string) {
		t.Helper()
		info, err := s.Info(ctx, dgst)
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(info.Labels, want) {
			t.Fatalf("labels %v, want %v", info.Labels, want)
		}
	}
	noIngest := func(t *testing.T, s *Store) {
		t.Helper()
		if d := ingestDirs(t, s); len(d) != 0 {
			t.Fatalf("ingest dirs %v, want none", d)
		}
	}
	oneIngest := func(t *testing.T, s *Store, offset int64) {
		t.Helper()
		sts, err := s.ListIngests(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(sts) != 1 || sts[0].Ref != ref || sts[0].Offset != offset || sts[0].Expected != dgst || sts[0].Total != int64(size) {
			t.Fatalf("ingests %+v, want %q at offset %d", sts, ref, offset)
		}
	}
	// alreadyExists: the published blob is found by the next Writer, which
	// discards the leftover ingest.
	alreadyExists := func(t *testing.T, s *Store) {
		t.Helper()
		if _, err := s.Writer(ctx, ref, dgst, int64(size)); !errors.Is(err, ErrAlreadyExists) {
			t.Fatalf("writer after publication: %v, want ErrAlreadyExists", err)
		}
		noIngest(t, s)
	}
	// resume continues the ingest from where it was and commits.
	resume := func(t *testing.T, s *Store, offset int64) {
		t.Helper()
		w, err := s.Writer(ctx, ref, dgst, int64(size))
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		if got := w.Status().Offset; got != offset {
			t.Fatalf("resumed at %d, want %d", got, offset)
		}
		if _, err := w.Write(data[offset:]); err != nil {
			t.Fatal(err)
		}
		if err := w.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	putLabelled := func(t *testing.T, s *Store) {
		put(t, s, data, digest.SHA256, WithLabels(map[string]string{"a": "1"}))
	}

	tests := []struct {
		name     string
		scenario string
		crashAt  string
		env      []string
		setup    func(*testing.T, *Store)
		check    func(*testing.T, *Store)
	}{
		{name: "ingest locked", scenario: "ingest", crashAt: "ingest-locked",
			check: func(t *testing.T, s *Store) { hasBlob(t, s, false); noIngest(t, s) }},
		{name: "status temp written", scenario: "ingest", crashAt: "atomic-temp-written:1",
			check: func(t *testing.T, s *Store) { hasBlob(t, s, false); noIngest(t, s) }},
		{name: "data partly written", scenario: "ingest", crashAt: "ingest-data-written:2",
			check: func(t *testing.T, s *Store) {
				hasBlob(t, s, false)
				oneIngest(t, s, 2<<20)
				resume(t, s, 2<<20)
			}},
		{name: "before rename", scenario: "ingest", crashAt: "before-rename",
			check: func(t *testing.T, s *Store) {
				hasBlob(t, s, false)
				oneIngest(t, s, int64(size))
				resume(t, s, int64(size))
			}},
		{name: "before rename, aborted", scenario: "ingest", crashAt: "before-rename",
			check: func(t *testing.T, s *Store) {
				if err := s.AbortIngest(ctx, ref); err != nil {
					t.Fatal(err)
				}
				noIngest(t, s)
				hasBlob(t, s, false)
			}},
		{name: "after rename", scenario: "ingest", crashAt: "after-rename",
			check: func(t *testing.T, s *Store) {
				hasBlob(t, s, true)
				labelsAre(t, s, nil)
				alreadyExists(t, s)
			}},
		{name: "labels temp written", scenario: "ingest", crashAt: "atomic-temp-written:2",
			check: func(t *testing.T, s *Store) {
				hasBlob(t, s, true)
				labelsAre(t, s, nil)
				alreadyExists(t, s)
			}},
		{name: "labels written", scenario: "ingest", crashAt: "labels-written",
			check: func(t *testing.T, s *Store) {
				labelsAre(t, s, map[string]string{"a": "1"})
				alreadyExists(t, s)
			}},
		{name: "link fallback after link", scenario: "ingest", crashAt: "after-rename",
			env: []string{envLink + "=1"},
			check: func(t *testing.T, s *Store) {
				hasBlob(t, s, true)
				alreadyExists(t, s)
			}},
		{name: "link fallback after link, unknown digest", scenario: "ingest", crashAt: "after-rename",
			env: []string{envLink + "=1", envNoDgst + "=1"},
			check: func(t *testing.T, s *Store) {
				hasBlob(t, s, true)
				// The ingest's data file is a second name of the blob: a
				// resumed Writer must not write into it.
				w, err := s.Writer(ctx, ref, "", UnknownSize)
				if err != nil {
					t.Fatal(err)
				}
				defer w.Close()
				if off := w.Status().Offset; off != 0 {
					t.Fatalf("resumed into a published blob at %d", off)
				}
				w.Write([]byte("something else"))
				w.Close()
				var st syscall.Stat_t
				if err := syscall.Stat(s.blobPath(dgst), &st); err != nil || st.Nlink != 1 {
					t.Fatalf("blob nlink %d, %v", st.Nlink, err)
				}
				if err := s.AbortIngest(ctx, ref); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "update temp written", scenario: "update", crashAt: "atomic-temp-written", setup: putLabelled,
			check: func(t *testing.T, s *Store) { labelsAre(t, s, map[string]string{"a": "1"}) }},
		{name: "delete labels removed", scenario: "delete", crashAt: "delete-labels-removed", setup: putLabelled,
			check: func(t *testing.T, s *Store) {
				labelsAre(t, s, nil)
				if err := s.Delete(ctx, dgst); err != nil {
					t.Fatal(err)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			if tt.setup != nil {
				tt.setup(t, s)
			}
			env := append([]string{envCrashAt + "=" + tt.crashAt}, blobEnv...)
			ps := runHelperProc(t, tt.scenario, s.Root(), append(env, tt.env...)...)
			if !killedBySIGKILL(ps) {
				t.Fatalf("helper %s: %v, want killed at %s", tt.scenario, ps, tt.crashAt)
			}
			s, err := Open(s.Root())
			if err != nil {
				t.Fatal(err)
			}
			checkStore(t, s)
			tt.check(t, s)
			checkStore(t, s)

			// Whatever happened, the blob can be written (again) and the
			// store ends clean.
			if err := WriteBlob(ctx, s, ref, bytes.NewReader(data), dgst, int64(size)); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(readAll(t, s, dgst), data) {
				t.Fatal("content differs")
			}
			noIngest(t, s)
			if blobs := checkStore(t, s); len(blobs) != 1 {
				t.Fatalf("blobs %v", blobs)
			}
		})
	}
}

// TestCrashEveryWrite kills an ingest after each of its writes in turn and
// resumes it, so every offset a crash can leave is resumed correctly.
func TestCrashEveryWrite(t *testing.T) {
	const ref = "layer"
	size := 4<<20 + 1
	data := testData(size, 43)
	dgst := digest.SHA512.FromBytes(data)
	ctx := context.Background()
	for n := 1; n <= 5; n++ {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			s := newStore(t)
			ps := runHelperProc(t, "ingest", s.Root(), envCrashAt+"=ingest-data-written:"+strconv.Itoa(n),
				envRef+"="+ref, envSize+"="+strconv.Itoa(size), envSeed+"=43", envAlg+"=sha512")
			if !killedBySIGKILL(ps) {
				t.Fatalf("helper: %v", ps)
			}
			s, err := Open(s.Root())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Lstat(filepath.Join(s.ingestDir(ref), dataFileName)); err != nil {
				t.Fatal(err)
			}
			want := min(int64(n)<<20, int64(size))
			if st, err := s.IngestStatus(ctx, ref); err != nil || st.Offset != want {
				t.Fatalf("ingest %+v, %v: want offset %d", st, err, want)
			}
			if err := WriteBlob(ctx, s, ref, bytes.NewReader(data), dgst, int64(size)); err != nil {
				t.Fatal(err)
			}
			if blobs := checkStore(t, s); len(blobs) != 1 || blobs[0] != dgst {
				t.Fatalf("blobs %v (resumed from %d)", blobs, want)
			}
		})
	}
}
