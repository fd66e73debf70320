package archive

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-engine/berth/content"
	tararchive "github.com/berth-engine/berth/snapshot/archive"
)

// podman runs podman with its storage (vfs) and state in a directory of its
// own, so the host's images are never touched.
type podman struct {
	t    *testing.T
	bin  string
	root string
}

// newPodman returns a podman runner, or skips the test when podman is
// missing or the test does not run as root, unless CI=true, where that is a
// failure.
func newPodman(t *testing.T) *podman {
	t.Helper()
	ci := os.Getenv("CI") == "true"
	bin, err := exec.LookPath("podman")
	if err == nil && os.Geteuid() != 0 {
		err = os.ErrPermission
	}
	if err != nil {
		if ci {
			t.Fatalf("podman interop test: %v", err)
		}
		t.Skipf("podman interop test needs podman and root: %v", err)
	}
	root := t.TempDir()
	for _, d := range []string{"root", "runroot", "tmp", "vartmp"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	return &podman{t: t, bin: bin, root: root}
}

// run runs podman with args and returns its standard output.
func (p *podman) run(args ...string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	global := []string{
		"--root", filepath.Join(p.root, "root"),
		"--runroot", filepath.Join(p.root, "runroot"),
		"--tmpdir", filepath.Join(p.root, "tmp"),
		"--storage-driver", "vfs",
		"--runtime", "runc",
		"--cgroup-manager", "cgroupfs",
		"--events-backend", "file",
	}
	cmd := exec.CommandContext(ctx, p.bin, append(global, args...)...)
	cmd.Env = append(os.Environ(), "TMPDIR="+filepath.Join(p.root, "vartmp"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		p.t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// imageID returns the ID podman gives the image name: its config digest.
func (p *podman) imageID(name string) string {
	p.t.Helper()
	return strings.TrimSpace(p.run("image", "inspect", "--format", "{{.Id}}", name))
}

// TestPodmanInterop: podman loads what berth saves (both formats, one and
// several images), and berth loads what podman saves, with the same image
// IDs (config digests) on both sides.
func TestPodmanInterop(t *testing.T) {
	p := newPodman(t)
	ctx := context.Background()
	s := newStore(t)
	rng := rand.New(rand.NewPCG(21, 22))
	base := randomLayer(t, rng, tararchive.Gzip)
	one := storeImage(t, s, hostPlatform(), []testLayer{base, randomLayer(t, rng, tararchive.Zstd)}, "one")
	two := storeImage(t, s, hostPlatform(), []testLayer{base, randomLayer(t, rng, tararchive.Uncompressed)}, "two")
	three := storeImage(t, s, hostPlatform(), []testLayer{randomLayer(t, rng, tararchive.Gzip)}, "three")
	dir := t.TempDir()

	save := func(name string, f Format, images ...Image) string {
		t.Helper()
		path := filepath.Join(dir, name)
		out, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		if err := Save(ctx, out, s, images, f); err != nil {
			t.Fatal(err)
		}
		if err := out.Close(); err != nil {
			t.Fatal(err)
		}
		return path
	}
	wantID := func(name string, ti testImage) {
		t.Helper()
		if got := p.imageID(name); got != ti.configDigest().Encoded() {
			t.Errorf("podman image %s has ID %s, want %s", name, got, ti.configDigest().Encoded())
		}
	}

	// Several images in a docker-archive: podman's docker-archive reader.
	p.run("load", "-q", "-i", save("multi.tar", FormatDocker,
		Image{Names: []string{"localhost:5000/berth/one:1", "docker.io/library/one:latest"}, Target: one.target},
		Image{Names: []string{"localhost:5000/berth/two:2"}, Target: two.target}))
	wantID("localhost:5000/berth/one:1", one)
	// RepoTags are in docker's familiar form ("one:latest"), which podman
	// qualifies with "localhost/" rather than docker.io (as it does for
	// archives of docker save).
	wantID("localhost/one:latest", one)
	wantID("localhost:5000/berth/two:2", two)

	// One image in a docker-archive: podman reads its OCI layout part.
	p.run("load", "-q", "-i", save("single.tar", FormatDocker, Image{Names: []string{"localhost:5000/berth/three:3"}, Target: three.target}))
	wantID("localhost:5000/berth/three:3", three)

	// An oci-archive, with the zstd layer as stored.
	p.run("rmi", "localhost:5000/berth/one:1", "localhost/one:latest")
	p.run("load", "-q", "-i", save("oci.tar", FormatOCI, Image{Names: []string{"localhost:5000/berth/one:1"}, Target: one.target}))
	wantID("localhost:5000/berth/one:1", one)

	// podman save, berth load.
	for _, tt := range []struct {
		format string
		args   []string
		names  []string
		images []testImage
	}{
		{"docker-archive", []string{"localhost:5000/berth/two:2"}, []string{"localhost:5000/berth/two:2"}, []testImage{two}},
		{"docker-archive", []string{"-m", "localhost:5000/berth/two:2", "localhost:5000/berth/three:3"},
			[]string{"localhost:5000/berth/two:2", "localhost:5000/berth/three:3"}, []testImage{two, three}},
		{"oci-archive", []string{"localhost:5000/berth/one:1"}, []string{"localhost:5000/berth/one:1"}, []testImage{one}},
	} {
		path := filepath.Join(dir, "podman-"+tt.format+".tar")
		os.Remove(path)
		p.run(append([]string{"save", "--format", tt.format, "-o", path}, tt.args...)...)
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		dst := newStore(t)
		loaded, err := Load(ctx, f, dst, t.TempDir())
		f.Close()
		if err != nil {
			t.Fatalf("load podman's %s of %v: %v", tt.format, tt.args, err)
		}
		if len(loaded) != len(tt.images) {
			t.Fatalf("load podman's %s of %v: %d images, want %d", tt.format, tt.args, len(loaded), len(tt.images))
		}
		for i, ti := range tt.images {
			l := loaded[i]
			checkComplete(t, dst, l.Target)
			m := readManifest(t, dst, l.Target)
			if m.Config.Digest != ti.configDigest() {
				t.Errorf("podman's %s image %d: config %s, want %s", tt.format, i, m.Config.Digest, ti.configDigest())
			}
			if !slices.Equal(l.Names, []string{tt.names[i]}) {
				t.Errorf("podman's %s image %d: names %q, want %q", tt.format, i, l.Names, tt.names[i])
			}
			checkLayerDiffIDs(t, dst, l.Target, ti)
		}
	}
}

// checkLayerDiffIDs checks that the layers of the loaded image target
// decompress to ti's layer tars.
func checkLayerDiffIDs(t *testing.T, s *content.Store, target ocispec.Descriptor, ti testImage) {
	t.Helper()
	m := readManifest(t, s, target)
	if len(m.Layers) != len(ti.layers) {
		t.Fatalf("image %s has %d layers, want %d", target.Digest, len(m.Layers), len(ti.layers))
	}
	for i, l := range m.Layers {
		blob, err := content.ReadBlob(context.Background(), s, l.Digest)
		if err != nil {
			t.Fatal(err)
		}
		rc, _, err := tararchive.DecompressStream(bytes.NewReader(blob))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if digest.FromBytes(got) != ti.layers[i].diffID {
			t.Errorf("image %s layer %d (%s) is not the layer saved", target.Digest, i, l.MediaType)
		}
	}
}
