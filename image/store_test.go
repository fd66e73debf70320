package image

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-engine/berth/content"
	imgarchive "github.com/berth-engine/berth/image/archive"
	"github.com/berth-engine/berth/image/manifest"
	"github.com/berth-engine/berth/image/reference"
	"github.com/berth-engine/berth/image/remote"
	"github.com/berth-engine/berth/internal/testimage"
	"github.com/berth-engine/berth/snapshot"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("image store tests need root (overlay mounts)")
		}
		t.Skip("needs root")
	}
}

func newStore(t *testing.T, driver string) *Store {
	t.Helper()
	requireRoot(t)
	s, err := Open(t.TempDir(), Options{Snapshotter: driver, Remote: remote.New(remote.Options{})})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustRef(t *testing.T, s string) reference.Ref {
	t.Helper()
	r, err := reference.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// threeLayers is a docker image whose layers use gzip, zstd and no
// compression, with a whiteout and an opaque directory in the top one.
func threeLayers(oci bool) *testimage.Image {
	return testimage.Build(testimage.Spec{
		OCI: oci,
		Cmd: []string{"/bin/sh"},
		Layers: []testimage.Layer{
			{Compression: "gzip", Files: []testimage.File{
				{Name: "etc/", Type: tar.TypeDir},
				{Name: "etc/os-release", Body: "ID=test\n"},
				{Name: "etc/gone", Body: "x"},
				{Name: "opq/", Type: tar.TypeDir},
				{Name: "opq/old", Body: "old"},
			}},
			{Compression: "zstd", Files: []testimage.File{
				{Name: "bin/", Type: tar.TypeDir},
				{Name: "bin/tool", Body: "#!/bin/true\n", Mode: 0o755},
				{Name: "bin/link", Type: tar.TypeSymlink, Linkname: "tool"},
			}},
			{Compression: "none", Files: []testimage.File{
				{Name: "etc/.wh.gone"},
				{Name: "opq/", Type: tar.TypeDir},
				{Name: "opq/.wh..wh..opq"},
				{Name: "opq/new", Body: "new"},
			}},
		},
	})
}

// rootfsOf mounts a read-only view of img's layers and returns its path.
func rootfsOf(t *testing.T, s *Store, img *Image) string {
	t.Helper()
	cfg, err := s.Config(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	key := "view-" + randomHex()
	mounts, err := s.snaps.View(context.Background(), key, identity.ChainID(cfg.RootFS.DiffIDs).String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := snapshot.MountAll(mounts, dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		snapshot.UnmountAll(dir)
		s.snaps.Remove(context.Background(), key)
	})
	return dir
}

func checkRootfs(t *testing.T, dir string) {
	t.Helper()
	for path, want := range map[string]string{"etc/os-release": "ID=test\n", "bin/tool": "#!/bin/true\n", "opq/new": "new"} {
		got, err := os.ReadFile(filepath.Join(dir, path))
		if err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", path, got, err, want)
		}
	}
	for _, gone := range []string{"etc/gone", "opq/old", "etc/.wh.gone", "opq/.wh..wh..opq"} {
		if _, err := os.Lstat(filepath.Join(dir, gone)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s exists (err %v); the whiteout should hide it", gone, err)
		}
	}
	if l, err := os.Readlink(filepath.Join(dir, "bin/link")); err != nil || l != "tool" {
		t.Errorf("bin/link -> %q, %v", l, err)
	}
}

func TestPullUnpacksLayers(t *testing.T) {
	for _, driver := range []string{"overlay", "native"} {
		for _, oci := range []bool{false, true} {
			name := driver + "/docker"
			if oci {
				name = driver + "/oci"
			}
			t.Run(name, func(t *testing.T) {
				ctx := context.Background()
				reg := testimage.StartRegistry(t)
				img := threeLayers(oci)
				if err := reg.PushImage(ctx, "test/app", "v1", img); err != nil {
					t.Fatal(err)
				}
				s := newStore(t, driver)
				ref := mustRef(t, reg.Host+"/test/app:v1")
				res, err := s.Pull(ctx, ref, PullOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if !res.Downloaded || res.Digest != img.Digest || res.Image.ID != img.ConfigDigest {
					t.Fatalf("result %+v; want digest %s id %s", res, img.Digest, img.ConfigDigest)
				}
				if want := reg.Host + "/test/app@" + img.Digest.String(); len(res.Image.RepoDigests) != 1 || res.Image.RepoDigests[0] != want {
					t.Errorf("repo digests %v, want %s", res.Image.RepoDigests, want)
				}
				checkRootfs(t, rootfsOf(t, s, res.Image))
				for d := range img.Blobs {
					if _, err := s.content.Info(ctx, d); err != nil {
						t.Errorf("blob %s not stored: %v", d, err)
					}
				}
				// Pulling again downloads nothing.
				res2, err := s.Pull(ctx, ref, PullOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if res2.Downloaded || res2.Image.ID != res.Image.ID {
					t.Errorf("second pull %+v: want up to date", res2)
				}
				got, err := s.Get(ctx, ref.String())
				if err != nil || got.ID != img.ConfigDigest {
					t.Fatalf("Get = %v, %v", got, err)
				}
				if got.Size != int64(len("ID=test\n")+len("x")+len("old")+len("#!/bin/true\n")+len("new")) {
					t.Errorf("size %d", got.Size)
				}
			})
		}
	}
}

func TestPullMultiPlatform(t *testing.T) {
	ctx := context.Background()
	reg := testimage.StartRegistry(t)
	amd := testimage.Build(testimage.Spec{OCI: true, Arch: "amd64", Layers: []testimage.Layer{{Files: []testimage.File{{Name: "arch", Body: "amd64"}}}}})
	arm := testimage.Build(testimage.Spec{OCI: true, Arch: "arm64", Variant: "v8", Layers: []testimage.Layer{{Files: []testimage.File{{Name: "arch", Body: "arm64"}}}}})
	idx := testimage.BuildIndex(true, amd, arm)
	if err := reg.PushIndex(ctx, "multi", "latest", idx); err != nil {
		t.Fatal(err)
	}
	s := newStore(t, "")
	ref := mustRef(t, reg.Host+"/multi")
	for _, tc := range []struct {
		platform string
		want     *testimage.Image
	}{{"linux/amd64", amd}, {"linux/arm64", arm}} {
		p, err := manifest.ParsePlatform(tc.platform)
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Pull(ctx, ref, PullOptions{Platform: &p})
		if err != nil {
			t.Fatal(err)
		}
		if res.Digest != idx.Digest || res.Image.ID != tc.want.ConfigDigest || res.Image.Manifest.Digest != tc.want.Digest {
			t.Errorf("%s: got %+v", tc.platform, res)
		}
		data, err := os.ReadFile(filepath.Join(rootfsOf(t, s, res.Image), "arch"))
		if err != nil || string(data) != tc.want.Platform.Architecture {
			t.Errorf("%s: arch file %q, %v", tc.platform, data, err)
		}
	}
	p, _ := manifest.ParsePlatform("linux/s390x")
	if _, err := s.Pull(ctx, ref, PullOptions{Platform: &p}); !errors.Is(err, manifest.ErrNoMatchingManifest) {
		t.Errorf("pull for s390x: %v, want ErrNoMatchingManifest", err)
	}
	// The arm64 pull moved the name: the amd64 image is now dangling.
	imgs, err := s.List(ctx)
	if err != nil || len(imgs) != 2 {
		t.Fatalf("List = %d images, %v", len(imgs), err)
	}
	// Push of a name whose index is incomplete pushes the local manifest.
	reg2 := testimage.StartRegistry(t)
	if err := s.Tag(ctx, ref.String(), reg2.Host+"/copy:1"); err != nil {
		t.Fatal(err)
	}
	// Both platforms are local (amd64 as a dangling image): the index goes.
	pr, err := s.Push(ctx, mustRef(t, reg2.Host+"/copy:1"), PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pr.Partial || pr.Digest != idx.Digest {
		t.Errorf("push result %+v, want the whole index", pr)
	}
	// A store that pulled only arm64 can push only its manifest.
	s3 := newStore(t, "")
	armP, _ := manifest.ParsePlatform("linux/arm64")
	if _, err := s3.Pull(ctx, ref, PullOptions{Platform: &armP}); err != nil {
		t.Fatal(err)
	}
	if err := s3.Tag(ctx, ref.String(), reg2.Host+"/copy:2"); err != nil {
		t.Fatal(err)
	}
	pr, err = s3.Push(ctx, mustRef(t, reg2.Host+"/copy:2"), PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !pr.Partial || pr.Digest != arm.Digest {
		t.Errorf("push result %+v, want the arm64 manifest alone", pr)
	}
}

func TestPullErrors(t *testing.T) {
	ctx := context.Background()
	reg := testimage.StartRegistry(t)
	img := threeLayers(false)
	if err := reg.PushImage(ctx, "app", "v1", img); err != nil {
		t.Fatal(err)
	}
	// A config whose diff IDs do not match the layers.
	bad := testimage.Build(testimage.Spec{Layers: []testimage.Layer{{Files: []testimage.File{{Name: "a", Body: "a"}}}}})
	other := testimage.Build(testimage.Spec{Layers: []testimage.Layer{{Files: []testimage.File{{Name: "b", Body: "b"}}}}})
	for d, b := range other.Blobs {
		bad.Blobs[d] = b
	}
	bad = retarget(bad, other.Config)
	if err := reg.PushImage(ctx, "bad", "v1", bad); err != nil {
		t.Fatal(err)
	}
	s := newStore(t, "")
	for _, tc := range []struct {
		ref  string
		want error
	}{
		{reg.Host + "/app:nope", remote.ErrNotFound},
		{reg.Host + "/missing:v1", remote.ErrNotFound},
		{reg.Host + "/bad:v1", content.ErrDigestMismatch},
	} {
		_, err := s.Pull(ctx, mustRef(t, tc.ref), PullOptions{})
		if !errors.Is(err, tc.want) {
			t.Errorf("pull %s: %v, want %v", tc.ref, err, tc.want)
		}
	}
	if _, err := s.Get(ctx, reg.Host+"/bad:v1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a failed pull recorded an image: %v", err)
	}
	// The failed pull left nothing a GC would keep.
	if _, err := s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	n := 0
	s.snaps.Walk(ctx, func(snapshot.Info) error { n++; return nil })
	if n != 0 {
		t.Errorf("%d snapshots left after a failed pull and GC", n)
	}
}

// retarget replaces img's config with cfg (whose diff IDs do not match).
func retarget(img *testimage.Image, cfg []byte) *testimage.Image {
	out := *img
	out.Config = cfg
	out.ConfigDigest = digest.FromBytes(cfg)
	out.Blobs = map[digest.Digest][]byte{}
	for d, b := range img.Blobs {
		out.Blobs[d] = b
	}
	out.Blobs[out.ConfigDigest] = cfg
	m := strings.Replace(string(img.Manifest), img.ConfigDigest.String(), out.ConfigDigest.String(), 1)
	m = strings.Replace(m, `"size":`+strconv.Itoa(len(img.Config)), `"size":`+strconv.Itoa(len(cfg)), 1)
	out.Manifest = []byte(m)
	out.Digest = digest.FromBytes(out.Manifest)
	return &out
}

func TestTagAndRemove(t *testing.T) {
	ctx := context.Background()
	reg := testimage.StartRegistry(t)
	img := threeLayers(false)
	if err := reg.PushImage(ctx, "app", "v1", img); err != nil {
		t.Fatal(err)
	}
	s := newStore(t, "")
	src := reg.Host + "/app:v1"
	if _, err := s.Pull(ctx, mustRef(t, src), PullOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Tag(ctx, src, "mine:1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Tag(ctx, src, "other/thing"); err != nil {
		t.Fatal(err)
	}
	if err := s.Tag(ctx, src, "x@sha256:"+strings.Repeat("a", 64)); !errors.Is(err, ErrInvalid) {
		t.Errorf("tag with digest: %v", err)
	}
	if err := s.Tag(ctx, "nosuch", "y"); !errors.Is(err, ErrNotFound) {
		t.Errorf("tag of missing image: %v", err)
	}
	got, err := s.Get(ctx, "docker.io/library/mine:1")
	if err != nil || got.ID != img.ConfigDigest || len(got.Names) != 3 {
		t.Fatalf("Get mine:1 = %+v, %v", got, err)
	}
	// ID prefix lookups.
	if g, err := s.Get(ctx, img.ConfigDigest.Encoded()[:12]); err != nil || g.ID != img.ConfigDigest {
		t.Errorf("Get by short ID: %v", err)
	}
	// By ID with names in several repositories: refused without force.
	if _, err := s.Remove(ctx, img.ConfigDigest.String(), false); !errors.Is(err, ErrConflict) {
		t.Errorf("remove by ID: %v, want conflict", err)
	}
	// By name: untag only.
	res, err := s.Remove(ctx, "mine:1", false)
	if err != nil || len(res.Untagged) != 1 || res.Untagged[0] != "mine:1" || len(res.Deleted) != 0 {
		t.Fatalf("remove mine:1 = %+v, %v", res, err)
	}
	// In use by a stopped container: refused, forced untags.
	s.inUse = func(context.Context) (map[digest.Digest]Usage, error) {
		return map[digest.Digest]Usage{img.ConfigDigest: {Containers: 1}}, nil
	}
	if _, err := s.Remove(ctx, "other/thing", false); err != nil {
		t.Fatalf("untag one of two names: %v", err)
	}
	if _, err := s.Remove(ctx, src, false); !errors.Is(err, ErrConflict) {
		t.Errorf("remove last name of used image: %v", err)
	}
	s.inUse = func(context.Context) (map[digest.Digest]Usage, error) {
		return map[digest.Digest]Usage{img.ConfigDigest: {Containers: 1, Running: 1}}, nil
	}
	if _, err := s.Remove(ctx, img.ConfigDigest.String(), true); !errors.Is(err, ErrConflict) {
		t.Errorf("forced remove of a running image: %v", err)
	}
	s.inUse = nil
	res, err = s.Remove(ctx, src, false)
	if err != nil || len(res.Deleted) != 1 || res.Deleted[0] != img.ConfigDigest {
		t.Fatalf("remove last name = %+v, %v", res, err)
	}
	gc, err := s.GC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if gc.Blobs != len(img.Blobs)+1 || gc.Snapshots != 3 || gc.Reclaimed == 0 {
		t.Errorf("GC = %+v; want %d blobs and 3 snapshots", gc, len(img.Blobs)+1)
	}
	if _, err := s.Remove(ctx, src, false); !errors.Is(err, ErrNotFound) {
		t.Errorf("remove again: %v", err)
	}
}

func TestGCKeepsSharedLayers(t *testing.T) {
	ctx := context.Background()
	reg := testimage.StartRegistry(t)
	base := testimage.Layer{Files: []testimage.File{{Name: "base", Body: "shared"}}}
	a := testimage.Build(testimage.Spec{Layers: []testimage.Layer{base, {Files: []testimage.File{{Name: "a", Body: "a"}}}}})
	b := testimage.Build(testimage.Spec{Layers: []testimage.Layer{base, {Files: []testimage.File{{Name: "b", Body: "b"}}}}})
	for name, img := range map[string]*testimage.Image{"a": a, "b": b} {
		if err := reg.PushImage(ctx, name, "latest", img); err != nil {
			t.Fatal(err)
		}
	}
	s := newStore(t, "")
	for _, n := range []string{"a", "b"} {
		res, err := s.Pull(ctx, mustRef(t, reg.Host+"/"+n), PullOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if n == "b" && !res.Downloaded {
			t.Error("b not downloaded")
		}
	}
	if _, err := s.Remove(ctx, reg.Host+"/a", false); err != nil {
		t.Fatal(err)
	}
	gc, err := s.GC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if gc.Snapshots != 1 {
		t.Errorf("GC removed %d snapshots, want only a's top layer", gc.Snapshots)
	}
	du, err := s.DiskUsage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(du.Images) != 1 || du.Total == 0 || du.Reclaimable != du.Total || du.Unreferenced != 0 {
		t.Errorf("disk usage %+v", du)
	}
	img, err := s.Get(ctx, reg.Host+"/b")
	if err != nil {
		t.Fatal(err)
	}
	dir := rootfsOf(t, s, img)
	for _, f := range []string{"base", "b"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("b lost %s: %v", f, err)
		}
	}
}

// TestGCDuringPulls runs garbage collections back to back while images
// are pulled: every pull must end with a complete image.
func TestGCDuringPulls(t *testing.T) {
	ctx := context.Background()
	reg := testimage.StartRegistry(t)
	var imgs []*testimage.Image
	for i := 0; i < 4; i++ {
		img := testimage.Build(testimage.Spec{Layers: []testimage.Layer{
			{RandomBytes: 1 << 20, Seed: int64(i)},
			{Files: []testimage.File{{Name: "n", Body: string(rune('a' + i))}}},
		}})
		imgs = append(imgs, img)
		if err := reg.PushImage(ctx, "gc", "t"+strconv.Itoa(i), img); err != nil {
			t.Fatal(err)
		}
	}
	// Slow the registry down so that the collections interleave.
	reg.Wrap = func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		time.Sleep(5 * time.Millisecond)
		next.ServeHTTP(w, r)
	}
	s := newStore(t, "")
	stop := make(chan struct{})
	var gcs atomic.Int32
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := s.GC(ctx); err != nil {
				t.Error(err)
				return
			}
			gcs.Add(1)
			time.Sleep(2 * time.Millisecond)
		}
	}()
	var pulls sync.WaitGroup
	for i := range imgs {
		pulls.Add(1)
		go func() {
			defer pulls.Done()
			if _, err := s.Pull(ctx, mustRef(t, reg.Host+"/gc:t"+strconv.Itoa(i)), PullOptions{}); err != nil {
				t.Error(err)
			}
		}()
	}
	pulls.Wait()
	close(stop)
	wg.Wait()
	if gcs.Load() == 0 {
		t.Fatal("no GC ran during the pulls")
	}
	if _, err := s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	for i, img := range imgs {
		got, err := s.Get(ctx, reg.Host+"/gc:t"+strconv.Itoa(i))
		if err != nil {
			t.Fatal(err)
		}
		for d := range img.Blobs {
			if _, err := s.content.Info(ctx, d); err != nil {
				t.Errorf("image %d lost blob %s", i, d)
			}
		}
		data, err := os.ReadFile(filepath.Join(rootfsOf(t, s, got), "n"))
		if err != nil || string(data) != string(rune('a'+i)) {
			t.Errorf("image %d: n = %q, %v", i, data, err)
		}
	}
}

func TestConcurrentPullsOfOneImage(t *testing.T) {
	ctx := context.Background()
	reg := testimage.StartRegistry(t)
	img := threeLayers(true)
	if err := reg.PushImage(ctx, "same", "1", img); err != nil {
		t.Fatal(err)
	}
	s := newStore(t, "")
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Pull(ctx, mustRef(t, reg.Host+"/same:1"), PullOptions{}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got, err := s.Get(ctx, reg.Host+"/same:1")
	if err != nil {
		t.Fatal(err)
	}
	checkRootfs(t, rootfsOf(t, s, got))
	n := 0
	s.snaps.Walk(ctx, func(info snapshot.Info) error {
		if strings.HasPrefix(info.Key, tmpSnapshotPrefix) {
			t.Errorf("temporary snapshot %s left behind", info.Key)
		}
		if info.Kind == snapshot.KindCommitted {
			n++
		}
		return nil
	})
	if n != 3 {
		t.Errorf("%d snapshots, want 3", n)
	}
}

func TestPullResumesPartialDownload(t *testing.T) {
	ctx := context.Background()
	reg := testimage.StartRegistry(t)
	img := testimage.Build(testimage.Spec{Layers: []testimage.Layer{{RandomBytes: 2 << 20, Seed: 7}}})
	if err := reg.PushImage(ctx, "big", "1", img); err != nil {
		t.Fatal(err)
	}
	layer := img.Layers[0]
	var served atomic.Int64
	var ranged atomic.Bool
	reg.Wrap = func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if strings.Contains(r.URL.Path, layer.Digest.String()) && r.Method == http.MethodGet {
			if r.Header.Get("Range") != "" {
				ranged.Store(true)
			}
			cw := &countingWriter{ResponseWriter: w}
			next.ServeHTTP(cw, r)
			served.Add(cw.n)
			return
		}
		next.ServeHTTP(w, r)
	}
	s := newStore(t, "")
	// Leave a partial ingest behind, as a killed pull does.
	w, err := s.content.Writer(ctx, ingestRef(layer.Digest), layer.Digest, layer.Size)
	if err != nil {
		t.Fatal(err)
	}
	half := layer.Size / 2
	if _, err := w.Write(img.Blobs[layer.Digest][:half]); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if _, err := s.Pull(ctx, mustRef(t, reg.Host+"/big:1"), PullOptions{}); err != nil {
		t.Fatal(err)
	}
	if !ranged.Load() {
		t.Error("the resumed download sent no Range request")
	}
	if got := served.Load(); got > layer.Size-half+4096 {
		t.Errorf("served %d bytes of the layer, want about %d", got, layer.Size-half)
	}
}

type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n += int64(n)
	return n, err
}

func TestPushMountsAndRoundTrips(t *testing.T) {
	ctx := context.Background()
	reg := testimage.StartRegistry(t)
	img := threeLayers(false)
	if err := reg.PushImage(ctx, "src/app", "1", img); err != nil {
		t.Fatal(err)
	}
	// The test registry shares blobs across repositories; make dst's
	// blob existence checks answer per repository so that the push has
	// to mount or upload.
	var mounts atomic.Int32
	var mu sync.Mutex
	inDst := map[string]bool{}
	reg.Wrap = func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if strings.HasPrefix(r.URL.Path, "/v2/dst/") {
			mu.Lock()
			defer mu.Unlock()
			if d := r.URL.Query().Get("mount"); r.Method == http.MethodPost && d != "" {
				mounts.Add(1)
				inDst[d] = true
			}
			if d := r.URL.Query().Get("digest"); r.Method == http.MethodPut && d != "" {
				inDst[d] = true
			}
			if i := strings.Index(r.URL.Path, "/blobs/sha256:"); i >= 0 && r.Method == http.MethodHead && !inDst[r.URL.Path[i+len("/blobs/"):]] {
				w.WriteHeader(http.StatusNotFound)
				return
			}
		}
		next.ServeHTTP(w, r)
	}
	s := newStore(t, "")
	if _, err := s.Pull(ctx, mustRef(t, reg.Host+"/src/app:1"), PullOptions{}); err != nil {
		t.Fatal(err)
	}
	dst := reg.Host + "/dst/app:2"
	if err := s.Tag(ctx, reg.Host+"/src/app:1", dst); err != nil {
		t.Fatal(err)
	}
	res, err := s.Push(ctx, mustRef(t, dst), PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Digest != img.Digest {
		t.Errorf("pushed digest %s, want the pulled manifest %s", res.Digest, img.Digest)
	}
	if mounts.Load() == 0 {
		t.Error("no blob was mounted from the source repository")
	}
	// Another store pulls it back.
	s2 := newStore(t, "")
	back, err := s2.Pull(ctx, mustRef(t, dst), PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if back.Image.ID != img.ConfigDigest {
		t.Errorf("pulled back %s", back.Image.ID)
	}
	checkRootfs(t, rootfsOf(t, s2, back.Image))
}

func TestSaveLoadImport(t *testing.T) {
	ctx := context.Background()
	reg := testimage.StartRegistry(t)
	img := threeLayers(true)
	if err := reg.PushImage(ctx, "app", "1", img); err != nil {
		t.Fatal(err)
	}
	s := newStore(t, "")
	name := reg.Host + "/app:1"
	if _, err := s.Pull(ctx, mustRef(t, name), PullOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []imgarchive.Format{imgarchive.FormatDocker, imgarchive.FormatOCI} {
		var buf bytes.Buffer
		if err := s.Save(ctx, &buf, []string{name}, SaveOptions{Format: f}); err != nil {
			t.Fatal(err)
		}
		s2 := newStore(t, "")
		res, err := s2.Load(ctx, &buf, LoadOptions{})
		if err != nil {
			t.Fatalf("format %v: %v", f, err)
		}
		if len(res) != 1 || res[0].Image.ID != img.ConfigDigest || len(res[0].Names) != 1 || res[0].Names[0] != mustRef(t, name).String() {
			t.Fatalf("format %v: loaded %+v", f, res)
		}
		checkRootfs(t, rootfsOf(t, s2, res[0].Image))
	}

	// Import: a plain tarball becomes a one-layer image.
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	tw.WriteHeader(&tar.Header{Name: "hello", Mode: 0o644, Size: 2, Typeflag: tar.TypeReg})
	tw.Write([]byte("hi"))
	tw.Close()
	imp, err := s.Import(ctx, bytes.NewReader(tb.Bytes()), ImportOptions{
		Name:    "imported:1",
		Changes: []string{`CMD ["/hello"]`, "ENV A=1 B=two", "EXPOSE 80", "WORKDIR /srv", "LABEL k=v"},
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := s.Config(ctx, imp)
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Config
	if strings.Join(c.Cmd, " ") != "/hello" || strings.Join(c.Env, ",") != "A=1,B=two" || c.WorkingDir != "/srv" || c.Labels["k"] != "v" {
		t.Errorf("imported config %+v", c)
	}
	if _, ok := c.ExposedPorts["80/tcp"]; !ok {
		t.Errorf("exposed ports %v", c.ExposedPorts)
	}
	if cfg.RootFS.DiffIDs[0] != digest.FromBytes(tb.Bytes()) || cfg.History[0].Comment != "Imported from -" {
		t.Errorf("imported rootfs %v history %+v", cfg.RootFS, cfg.History)
	}
	data, err := os.ReadFile(filepath.Join(rootfsOf(t, s, imp), "hello"))
	if err != nil || string(data) != "hi" {
		t.Errorf("imported file %q, %v", data, err)
	}
	if _, err := s.Import(ctx, bytes.NewReader(tb.Bytes()), ImportOptions{Changes: []string{"RUN true"}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("import with RUN change: %v", err)
	}
	hist, err := s.History(ctx, imp)
	if err != nil || len(hist) != 1 || hist[0].Size != 2 || hist[0].ID != imp.ID.String() {
		t.Errorf("history %+v, %v", hist, err)
	}
}
