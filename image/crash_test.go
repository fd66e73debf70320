package image

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/berth-engine/berth/content"
	"github.com/berth-engine/berth/internal/failpoint"
	"github.com/berth-engine/berth/internal/testimage"
	"github.com/berth-engine/berth/snapshot"
)

// Environment of the crash helper process.
const (
	envCrashRoot = "_BERTH_TEST_CRASH_ROOT"
	envCrashRef  = "_BERTH_TEST_CRASH_REF"
	envCrashOp   = "_BERTH_TEST_CRASH_OP"
)

// TestCrashHelper is not a test: TestPullCrash re-executes the test binary
// to run it, with a failpoint armed that SIGKILLs the process.
func TestCrashHelper(t *testing.T) {
	root := os.Getenv(envCrashRoot)
	if root == "" {
		t.Skip("helper process for TestPullCrash")
	}
	s, err := Open(root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	switch os.Getenv(envCrashOp) {
	case "gc":
		if _, err := s.Remove(ctx, os.Getenv(envCrashRef), true); err != nil {
			t.Fatal(err)
		}
		_, err = s.GC(ctx)
	default:
		_, err = s.Pull(ctx, mustRef(t, os.Getenv(envCrashRef)), PullOptions{})
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestPullCrash kills a pull (and a GC) with SIGKILL at each persistence
// step, then checks that the store is usable as it is: every committed
// blob matches its digest, a recorded image is complete, a GC succeeds
// and a re-pull completes.
func TestPullCrash(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	reg := testimage.StartRegistry(t)
	img := testimage.Build(testimage.Spec{Layers: []testimage.Layer{
		{RandomBytes: 1 << 20, Seed: 1},
		{Compression: "zstd", RandomBytes: 512 << 10, Seed: 2},
		{Files: []testimage.File{{Name: "etc/", Type: '5'}, {Name: "etc/hostname", Body: "crash\n"}}},
	}})
	if err := reg.PushImage(ctx, "crash", "1", img); err != nil {
		t.Fatal(err)
	}
	ref := reg.Host + "/crash:1"
	points := []struct {
		op, point string
	}{
		{"pull", "image.pull.manifest-stored"},
		{"pull", "image.pull.config-stored"},
		{"pull", "image.pull.layer-half"},
		{"pull", "image.pull.layer-half:3"},
		{"pull", "image.pull.blob-committed"},
		{"pull", "image.pull.blob-committed:2"},
		{"pull", "image.pull.snapshot-committed"},
		{"pull", "image.pull.snapshot-committed:3"},
		{"pull", "image.pull.before-record"},
		{"pull", "image.pull.recorded"},
		{"gc", "image.gc.blob-removed"},
		{"gc", "image.gc.blob-removed:3"},
	}
	for _, tc := range points {
		t.Run(tc.op+"/"+strings.ReplaceAll(tc.point, ":", "#"), func(t *testing.T) {
			root := t.TempDir()
			if tc.op == "gc" {
				s, err := Open(root, Options{})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := s.Pull(ctx, mustRef(t, ref), PullOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$", "-test.count=1")
			cmd.Env = append(os.Environ(), envCrashRoot+"="+root, envCrashRef+"="+ref, envCrashOp+"="+tc.op, failpoint.EnvVar+"="+tc.point)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("helper was not killed at %s: %v\n%s", tc.point, err, out)
			}
			s, err := Open(root, Options{})
			if err != nil {
				t.Fatalf("reopen after crash: %v", err)
			}
			verifyBlobs(t, s)
			if got, err := s.Get(ctx, ref); err == nil {
				// Recorded before the kill: it must be complete.
				checkComplete(t, s, got)
			}
			if _, err := s.GC(ctx); err != nil {
				t.Fatalf("GC after crash: %v", err)
			}
			verifyBlobs(t, s)
			res, err := s.Pull(ctx, mustRef(t, ref), PullOptions{})
			if err != nil {
				t.Fatalf("re-pull after crash: %v", err)
			}
			checkComplete(t, s, res.Image)
			if _, err := s.GC(ctx); err != nil {
				t.Fatal(err)
			}
			s.snaps.Walk(ctx, func(info snapshot.Info) error {
				if info.Kind != snapshot.KindCommitted && !strings.HasPrefix(info.Key, "view-") {
					t.Errorf("snapshot %s (%v) left after re-pull and GC", info.Key, info.Kind)
				}
				return nil
			})
		})
	}
}

// verifyBlobs re-hashes every committed blob.
func verifyBlobs(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	err := s.content.Walk(ctx, func(info content.Info) error {
		ra, err := s.content.ReaderAt(ctx, info.Digest)
		if err != nil {
			return err
		}
		defer ra.Close()
		h := info.Digest.Algorithm().Digester()
		if _, err := io.Copy(h.Hash(), io.NewSectionReader(ra, 0, ra.Size())); err != nil {
			return err
		}
		if h.Digest() != info.Digest {
			t.Errorf("blob %s holds %s", info.Digest, h.Digest())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// checkComplete checks that an image's blobs and layer snapshots exist and
// that its root filesystem mounts.
func checkComplete(t *testing.T, s *Store, img *Image) {
	t.Helper()
	ctx := context.Background()
	m, err := s.ReadManifest(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range m.Layers {
		if _, err := s.content.Info(ctx, l.Digest); err != nil {
			t.Errorf("layer blob %s: %v", l.Digest, err)
		}
	}
	data, err := os.ReadFile(rootfsOf(t, s, img) + "/etc/hostname")
	if err != nil || string(data) != "crash\n" {
		t.Errorf("etc/hostname = %q, %v", data, err)
	}
}
