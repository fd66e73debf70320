package content

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// The test binary doubles as a helper process: with envHelper set, TestMain
// runs that scenario against the store at envRoot instead of the tests, with
// the failpoint hook armed by envCrashAt ("step" or "step:N", the Nth time
// the step is reached) to SIGKILL the process there.
const (
	envHelper  = "BERTH_CONTENT_TEST_HELPER"
	envRoot    = "BERTH_CONTENT_TEST_ROOT"
	envCrashAt = "BERTH_CONTENT_TEST_CRASH_AT"
	envRef     = "BERTH_CONTENT_TEST_REF"
	envSize    = "BERTH_CONTENT_TEST_SIZE"
	envAlg     = "BERTH_CONTENT_TEST_ALG"
	envSeed    = "BERTH_CONTENT_TEST_SEED"
	envLink    = "BERTH_CONTENT_TEST_LINK"
	envNoDgst  = "BERTH_CONTENT_TEST_NO_DIGEST"
	envSlow    = "BERTH_CONTENT_TEST_SLOW"
)

func TestMain(m *testing.M) {
	if h := os.Getenv(envHelper); h != "" {
		if err := runHelper(h); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// armFailpoint makes the failpoint hook kill the process at spec.
func armFailpoint(spec string) {
	name, nStr, _ := strings.Cut(spec, ":")
	n := int64(1)
	if nStr != "" {
		n, _ = strconv.ParseInt(nStr, 10, 64)
	}
	var hits atomic.Int64
	failpoint = func(step string) {
		if step == name && hits.Add(1) == n {
			// The crash model: no deferred call, no cleanup.
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
	}
}

// helperBlob describes the blob a helper writes, from the environment.
func helperBlob() (data []byte, dgst digest.Digest) {
	size, _ := strconv.Atoi(os.Getenv(envSize))
	seed, _ := strconv.ParseUint(os.Getenv(envSeed), 10, 64)
	alg := digest.Algorithm(os.Getenv(envAlg))
	if alg == "" {
		alg = digest.SHA256
	}
	data = testData(size, seed)
	return data, alg.FromBytes(data)
}

func runHelper(name string) error {
	if spec := os.Getenv(envCrashAt); spec != "" {
		armFailpoint(spec)
	}
	s, err := Open(os.Getenv(envRoot))
	if err != nil {
		return err
	}
	s.noRenameNoReplace = os.Getenv(envLink) != ""
	ctx := context.Background()
	ref := os.Getenv(envRef)
	data, dgst := helperBlob()
	switch name {
	case "ingest":
		expected, size := dgst, int64(len(data))
		if os.Getenv(envNoDgst) != "" {
			expected, size = "", UnknownSize
		}
		w, err := s.Writer(ctx, ref, expected, size)
		if err != nil {
			return err
		}
		for c := range slices.Chunk(data, 1<<20) {
			if _, err := w.Write(c); err != nil {
				return err
			}
		}
		return w.Commit(ctx, WithLabels(map[string]string{"a": "1"}))
	case "writeblob":
		var r io.Reader = bytes.NewReader(data)
		if os.Getenv(envSlow) != "" {
			r = &slowReader{r: r, chunk: 256 << 10, delay: 20 * time.Millisecond}
		}
		return WriteBlob(ctx, s, ref, r, dgst, int64(len(data)), WithLabels(map[string]string{"p" + strconv.Itoa(os.Getpid()): "1"}))
	case "short-write":
		// A write cut short by the file size limit (as by a full disk)
		// leaves the ingest consistent: the rest can follow and the digest
		// matches.
		var lim syscall.Rlimit
		if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
			return err
		}
		cut := uint64(len(data) / 2)
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: cut, Max: lim.Max}); err != nil {
			return err
		}
		w, err := s.Writer(ctx, ref, dgst, int64(len(data)))
		if err != nil {
			return err
		}
		n, err := w.Write(data)
		if !errors.Is(err, syscall.EFBIG) || n != int(cut) || w.Status().Offset != int64(cut) {
			return fmt.Errorf("short write: %d, %v (offset %d)", n, err, w.Status().Offset)
		}
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
			return err
		}
		if _, err := w.Write(data[n:]); err != nil {
			return err
		}
		return w.Commit(ctx)
	case "update":
		_, err := s.Update(ctx, Info{Digest: dgst, Labels: map[string]string{"b": "2"}})
		return err
	case "delete":
		return s.Delete(ctx, dgst)
	}
	return fmt.Errorf("unknown helper %q", name)
}

// slowReader hands out at most chunk bytes per Read, sleeping first, so that
// concurrent writers really overlap.
type slowReader struct {
	r     io.Reader
	chunk int
	delay time.Duration
}

func (s *slowReader) Read(p []byte) (int, error) {
	time.Sleep(s.delay)
	if len(p) > s.chunk {
		p = p[:s.chunk]
	}
	return s.r.Read(p)
}

// startHelper starts the test binary as a helper process.
func startHelper(t *testing.T, scenario, root string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envHelper+"="+scenario, envRoot+"="+root)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// runHelperProc runs a helper process to completion and returns how it ended.
func runHelperProc(t *testing.T, scenario, root string, env ...string) *os.ProcessState {
	t.Helper()
	cmd := startHelper(t, scenario, root, env...)
	err := cmd.Wait()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return cmd.ProcessState
}

// killedBySIGKILL reports whether the helper died at its failpoint.
func killedBySIGKILL(ps *os.ProcessState) bool {
	ws, ok := ps.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// testData returns n deterministic pseudo-random bytes.
func testData(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

func newStore(t testing.TB) *Store {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// put writes data as a blob through Writer and Commit.
func put(t testing.TB, s *Store, data []byte, alg digest.Algorithm, opts ...CommitOpt) digest.Digest {
	t.Helper()
	dgst := alg.FromBytes(data)
	w, err := s.Writer(context.Background(), "put-"+string(dgst), dgst, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(context.Background(), opts...); err != nil {
		t.Fatal(err)
	}
	return dgst
}

// checkStore asserts the store's invariants: every name under blobs/ is a
// complete, read-only blob whose content hashes to its name; labels exist
// only for blobs; no temporary file is left. It returns the blob digests.
func checkStore(t *testing.T, s *Store) []digest.Digest {
	t.Helper()
	var blobs []digest.Digest
	for _, alg := range algorithms() {
		dir := filepath.Join(s.root, "blobs", string(alg))
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			path := filepath.Join(dir, e.Name())
			fi, err := os.Lstat(path)
			if err != nil {
				t.Fatal(err)
			}
			if !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o444 {
				t.Errorf("blob %s: mode %v, want a regular file with 0444", path, fi.Mode())
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			got, err := alg.FromReader(f)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			if want := digest.NewDigestFromEncoded(alg, e.Name()); got != want {
				t.Errorf("blob %s holds content hashing to %s", want, got)
			}
			blobs = append(blobs, got)
		}
		ldir := filepath.Join(s.root, "labels", string(alg))
		entries, err = os.ReadDir(ldir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			hex, _ := strings.CutSuffix(e.Name(), ".json")
			if _, err := os.Lstat(filepath.Join(dir, hex)); err != nil {
				t.Errorf("labels %s without a blob: %v", e.Name(), err)
			}
		}
	}
	entries, err := os.ReadDir(filepath.Join(s.root, "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("temporary file left: %s", e.Name())
	}
	return blobs
}

// ingestDirs lists the directories under <root>/ingest.
func ingestDirs(t *testing.T, s *Store) []string {
	t.Helper()
	var dirs []string
	entries, err := os.ReadDir(filepath.Join(s.root, "ingest"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		dirs = append(dirs, e.Name())
	}
	return dirs
}

// readAll reads the blob dgst through ReaderAt.
func readAll(t *testing.T, s *Store, dgst digest.Digest) []byte {
	t.Helper()
	ra, err := s.ReaderAt(context.Background(), dgst)
	if err != nil {
		t.Fatal(err)
	}
	defer ra.Close()
	b, err := io.ReadAll(io.NewSectionReader(ra, 0, ra.Size()))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
