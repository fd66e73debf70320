//go:build integration

package interop_test

// Image interop: berth's image commands (pull, push, save, load, import,
// login, logout, rmi, image inspect, history, system df) against the image
// tools of Debian 12, all on 127.0.0.1 and without internet access:
//
//   - docker-registry 2.8.2+ds1 (github.com/docker/distribution), run as
//     `docker-registry serve CONFIG.yml` with filesystem storage in a
//     temporary directory, plain HTTP on a free port, optionally with
//     htpasswd authentication (file made by `htpasswd -Bbn`, apache2-utils);
//   - skopeo 1.9.3 (--insecure-policy, --tls-verify=false);
//   - podman 4.3.1 (--root/--runroot/--tmpdir private, --storage-driver vfs,
//     --runtime runc, --cgroup-manager cgroupfs, --events-backend file,
//     --tls-verify=false, a private accept-anything --signature-policy);
//   - dockerd 20.10.24 (docker.io) with a private containerd, data root,
//     exec root and socket, --insecure-registry 127.0.0.1:PORT.
//
// Every image is made here: a one-layer busybox-static root file system
// (buildLayer) with a random marker file, so that no two sub-tests share a
// layer, imported with `berth import --change`, `podman import --change` or
// `docker import --change`, or written as an OCI layout in Go. The identity
// that must survive every transfer is the image ID: the digest of the image
// configuration, which no tool may rewrite without changing the image.
//
// Each sub-test has its own berth root (and podman root); the registry and
// dockerd are shared by the sub-tests of one top-level test, under unique
// repository names.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	goruntime "runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// imageCmd is the CMD every test image gets through --change.
var imageCmd = []string{"/bin/sh", "-c", "echo berth-interop"}

// markerPath is the file that makes each test image's layer unique.
const markerPath = "etc/berth-interop-marker"

// TestImageRegistry moves images between berth, docker-registry, skopeo and
// podman.
func TestImageRegistry(t *testing.T) {
	requireRoot(t)
	berthCLI(t)
	staticBusybox(t)
	ctx := peerContext(t)
	reg := startRegistry(t, ctx, "")

	// berth push → registry → skopeo inspect, skopeo copy to an oci: dir.
	t.Run("BerthPushSkopeo", func(t *testing.T) {
		sk := newSkopeo(t, ctx)
		b := newBerth(t, ctx)
		id, _ := berthImport(t, b, "berth-interop/src:1")
		target := reg.host + "/berth-interop/" + uniqueName("skopeo") + ":v1"
		pushed := berthPush(t, b, "berth-interop/src:1", target)

		var info struct {
			Digest       string
			Architecture string
			Os           string
			Layers       []string
		}
		decodeJSON(t, sk.must(t, "inspect", "--tls-verify=false", "docker://"+target).Stdout, &info)
		if info.Digest != pushed.String() {
			t.Errorf("skopeo inspect: digest %s, berth pushed %s", info.Digest, pushed)
		}
		if info.Os != "linux" || info.Architecture != goruntime.GOARCH {
			t.Errorf("skopeo inspect: platform %s/%s, want linux/%s", info.Os, info.Architecture, goruntime.GOARCH)
		}
		raw := sk.must(t, "inspect", "--raw", "--tls-verify=false", "docker://"+target).Stdout
		if got := digest.FromString(raw); got != pushed {
			t.Errorf("manifest served by the registry has digest %s, berth pushed %s", got, pushed)
		}
		var m ocispec.Manifest
		decodeJSON(t, raw, &m)
		if m.Config.Digest.String() != id {
			t.Errorf("pushed manifest's config %s, berth's image ID %s", m.Config.Digest, id)
		}
		if got := digest.FromString(sk.must(t, "inspect", "--config", "--raw", "--tls-verify=false", "docker://"+target).Stdout); got.String() != id {
			t.Errorf("config served by the registry has digest %s, berth's image ID is %s", got, id)
		}

		layout := filepath.Join(tempDir(t, "oci"), "layout")
		sk.must(t, "copy", "--src-tls-verify=false", "docker://"+target, "oci:"+layout+":v1")
		if got := layoutConfigDigest(t, layout, "v1"); got.String() != id {
			t.Errorf("skopeo copy to oci: config %s, berth's image ID %s", got, id)
		}
	})

	// berth push → registry → podman pull.
	t.Run("BerthPushPodmanPull", func(t *testing.T) {
		p := newPodman(t, ctx)
		b := newBerth(t, ctx)
		id, _ := berthImport(t, b, "berth-interop/src:1")
		target := reg.host + "/berth-interop/" + uniqueName("podman") + ":v1"
		pushed := berthPush(t, b, "berth-interop/src:1", target)

		p.must(t, "pull", "--tls-verify=false", "--signature-policy", p.policy, target)
		if got := podmanImageID(t, p, target); got != id {
			t.Errorf("podman pulled image ID %s, berth's is %s", got, id)
		}
		if got := strings.TrimSpace(p.must(t, "image", "inspect", "--format", "{{.Digest}}", target).Stdout); got != pushed.String() {
			t.Errorf("podman pulled manifest %s, berth pushed %s", got, pushed)
		}
	})

	// podman import + push → registry → berth pull.
	t.Run("PodmanPushBerthPull", func(t *testing.T) {
		p := newPodman(t, ctx)
		b := newBerth(t, ctx)
		local := "localhost/berth-interop/" + uniqueName("podman") + ":1"
		tarball, marker := writeTestLayer(t, p.dir)
		p.must(t, "import", "-q", "--change", "CMD "+jsonArray(imageCmd), tarball, local)
		id := podmanImageID(t, p, local)
		var podmanLayers []string
		decodeJSON(t, p.must(t, "image", "inspect", "--format", "{{json .RootFS.Layers}}", local).Stdout, &podmanLayers)

		target := reg.host + "/berth-interop/" + uniqueName("from-podman") + ":1"
		p.must(t, "push", "--tls-verify=false", "--signature-policy", p.policy, local, target)

		out := b.must(t, "pull", target).Stdout
		if !strings.Contains(out, "Downloaded newer image for "+target) {
			t.Errorf("berth pull did not report the download:\n%s", out)
		}
		img := berthInspect(t, b, target)
		if img.ID != id {
			t.Errorf("berth pulled image ID %s, podman's is %s", img.ID, id)
		}
		if !slices.Equal(img.Config.Cmd, imageCmd) {
			t.Errorf("berth image inspect: Cmd %q, podman import set %q", img.Config.Cmd, imageCmd)
		}
		if !slices.Equal(img.RootFS.Layers, podmanLayers) {
			t.Errorf("berth image inspect: layers %v, podman's %v", img.RootFS.Layers, podmanLayers)
		}
		if len(img.RepoDigests) != 1 || !strings.HasPrefix(img.RepoDigests[0], strings.TrimSuffix(target, ":1")+"@sha256:") {
			t.Errorf("berth image inspect: RepoDigests %v, want one digest of %s", img.RepoDigests, target)
		}
		hist := strings.Fields(b.must(t, "history", "--no-trunc", "--format", "{{.ID}}", target).Stdout)
		if len(hist) == 0 || hist[0] != id {
			t.Errorf("berth history: IDs %v, want %s first", hist, id)
		}
		requireUnpacked(t, b, marker)
	})

	// An OCI layout with a two-platform index (written here) → skopeo
	// copy --all --preserve-digests → registry → berth pull by digest.
	t.Run("SkopeoIndexBerthPullByDigest", func(t *testing.T) {
		sk := newSkopeo(t, ctx)
		dir := tempDir(t, "index")
		layer, _ := testLayer(t)
		other := "arm64"
		if goruntime.GOARCH == other {
			other = "amd64"
		}
		idx := writeIndexLayout(t, filepath.Join(dir, "layout"), "multi", layer, []string{goruntime.GOARCH, other})
		repo := reg.host + "/berth-interop/" + uniqueName("index")
		sk.must(t, "copy", "--all", "--preserve-digests", "--dest-tls-verify=false",
			"oci:"+filepath.Join(dir, "layout")+":multi", "docker://"+repo+":multi")
		raw := sk.must(t, "inspect", "--raw", "--tls-verify=false", "docker://"+repo+":multi").Stdout
		if got := digest.FromString(raw); got != idx.index {
			t.Fatalf("registry serves index %s, the layout's is %s (skopeo rewrote it)", got, idx.index)
		}

		byDigest := repo + "@" + idx.index.String()
		b := newBerth(t, ctx)
		out := b.must(t, "pull", byDigest).Stdout
		if !strings.Contains(out, "Digest: "+idx.index.String()) {
			t.Errorf("berth pull did not report digest %s:\n%s", idx.index, out)
		}
		img := berthInspect(t, b, byDigest)
		if img.ID != idx.configs[goruntime.GOARCH].String() {
			t.Errorf("berth pulled image ID %s, the %s config is %s", img.ID, goruntime.GOARCH, idx.configs[goruntime.GOARCH])
		}
		if img.Architecture != goruntime.GOARCH || img.Os != "linux" {
			t.Errorf("berth pulled platform %s/%s, want linux/%s", img.Os, img.Architecture, goruntime.GOARCH)
		}

		// --platform selects the other manifest of the same index.
		b2 := newBerth(t, ctx)
		b2.must(t, "pull", "--platform", "linux/"+other, byDigest)
		img2 := berthInspect(t, b2, byDigest)
		if img2.ID != idx.configs[other].String() || img2.Architecture != other {
			t.Errorf("berth pull --platform linux/%s: image %s (%s), want %s", other, img2.ID, img2.Architecture, idx.configs[other])
		}
	})

	// rmi of a pulled image leaves nothing behind; it can be pulled again.
	t.Run("RepullAfterRmi", func(t *testing.T) {
		src := newBerth(t, ctx)
		id, _ := berthImport(t, src, "berth-interop/src:1")
		target := reg.host + "/berth-interop/" + uniqueName("repull") + ":1"
		berthPush(t, src, "berth-interop/src:1", target)

		b := newBerth(t, ctx)
		for round := 1; round <= 2; round++ {
			out := b.must(t, "pull", target).Stdout
			if !strings.Contains(out, "Downloaded newer image for "+target) {
				t.Errorf("pull %d: no download reported:\n%s", round, out)
			}
			if got := berthInspect(t, b, target).ID; got != id {
				t.Errorf("pull %d: image ID %s, want %s", round, got, id)
			}
			if n, _ := berthDiskUsage(t, b); n != 1 {
				t.Errorf("pull %d: system df counts %d images, want 1", round, n)
			}
			out = b.must(t, "rmi", target).Stdout
			if !strings.Contains(out, "Deleted: "+id) {
				t.Errorf("rmi %d: image %s not reported deleted:\n%s", round, id, out)
			}
			if n, size := berthDiskUsage(t, b); n != 0 || size != "0B" {
				t.Errorf("after rmi %d: system df reports %d images of %s, want 0 of 0B", round, n, size)
			}
			if ids := strings.TrimSpace(b.must(t, "images", "-q").Stdout); ids != "" {
				t.Errorf("after rmi %d: berth images -q lists %q", round, ids)
			}
			// system df counts what images reference; the layer's blob and
			// unpacked copy (2 MB each) must be gone from the disk too.
			if n := treeSize(t, b.root); n > 1<<20 {
				t.Errorf("after rmi %d: %d bytes of files left under %s", round, n, b.root)
			}
		}
	})

	// A registry that wants a password: login, push, pull, logout.
	t.Run("Auth", func(t *testing.T) {
		testRegistryAuth(t, ctx)
	})
}

// testRegistryAuth runs berth against a docker-registry with htpasswd
// authentication.
func testRegistryAuth(t *testing.T, ctx context.Context) {
	// distribution's htpasswd needs bcrypt. golang.org/x/crypto is not in
	// go.mod, so the file comes from apache2-utils' htpasswd.
	htpasswd := lookBinary(t, "apache2-utils", "htpasswd")
	const user, password = "berth-interop", "pw-9c2d1f"
	dir := tempDir(t, "auth")
	r := runCmd(ctx, cmdTimeout, nil, htpasswd, "-Bbn", user, password)
	if !r.ok() {
		t.Fatalf("make the password file: %s", r)
	}
	pwFile := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(pwFile, []byte(r.Stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	reg := startRegistry(t, ctx, pwFile)
	b := newBerth(t, ctx)
	id, _ := berthImport(t, b, "berth-interop/src:1")
	target := reg.host + "/berth-interop/" + uniqueName("auth") + ":1"
	b.must(t, "tag", "berth-interop/src:1", target)

	needsLogin := func(what string, r result) {
		t.Helper()
		if r.Err != nil || r.Code != 1 {
			t.Errorf("%s without credentials: exit %d (%v), want 1", what, r.Code, r.Err)
		}
		if want := "berth login " + reg.host; !strings.Contains(r.Stderr, want) {
			t.Errorf("%s without credentials: the error does not say %q:\n%s", what, want, r.Stderr)
		}
	}
	needsLogin("push", b.do(t, "push", target))
	needsLogin("pull", b.do(t, "pull", target))

	login := func(pw string) result {
		r := runCmdInput(ctx, cmdTimeout, nil, strings.NewReader(pw+"\n"), b.bin,
			append(append([]string{}, b.global...), "login", "-u", user, "--password-stdin", reg.host)...)
		t.Logf("%s", r)
		return r
	}
	if r := login("wrong"); r.Err != nil || r.Code != 1 {
		t.Errorf("login with a wrong password: exit %d (%v), want 1", r.Code, r.Err)
	}
	if data, err := os.ReadFile(b.authfile); err == nil && strings.Contains(string(data), reg.host) {
		t.Errorf("a failed login stored credentials: %s", data)
	}
	if r := login(password); !r.ok() || !strings.Contains(r.Stdout, "Login Succeeded") {
		t.Fatalf("login failed")
	}
	if data, err := os.ReadFile(b.authfile); err != nil || !strings.Contains(string(data), reg.host) {
		t.Errorf("auth file after login: %q (%v), want an entry for %s", data, err, reg.host)
	}
	b.must(t, "push", target)
	b.must(t, "rmi", target)
	b.must(t, "rmi", "berth-interop/src:1")
	b.must(t, "pull", target)
	if got := berthInspect(t, b, target).ID; got != id {
		t.Errorf("pulled image ID %s, pushed %s", got, id)
	}

	if out := b.must(t, "logout", reg.host).Stdout; !strings.Contains(out, "Removing login credentials for "+reg.host) {
		t.Errorf("logout printed %q", out)
	}
	if data, err := os.ReadFile(b.authfile); err != nil || strings.Contains(string(data), reg.host) {
		t.Errorf("auth file after logout: %q (%v), want no entry for %s", data, err, reg.host)
	}
	b.must(t, "rmi", target)
	needsLogin("pull after logout", b.do(t, "pull", target))
}

// TestImageArchive moves images between berth and podman as docker-archive
// and oci-archive files (berth save → podman load, podman save → berth load).
func TestImageArchive(t *testing.T) {
	requireRoot(t)
	berthCLI(t)
	staticBusybox(t)
	lookBinary(t, "podman", "podman")
	ctx := peerContext(t)

	for _, tc := range []struct{ name, format string }{
		{"DockerArchive", "docker-archive"},
		{"OCIArchive", "oci-archive"},
	} {
		format := tc.format
		// berth save → podman load.
		t.Run("BerthSave"+tc.name+"PodmanLoad", func(t *testing.T) {
			p := newPodman(t, ctx)
			b := newBerth(t, ctx)
			name := "localhost/berth-interop/" + uniqueName("save") + ":1"
			id, _ := berthImport(t, b, name)
			archive := filepath.Join(p.dir, "image.tar")
			b.must(t, "save", "--format", format, "-o", archive, name)

			out := p.must(t, "load", "--signature-policy", p.policy, "-i", archive).Stdout
			if !strings.Contains(out, "Loaded image: "+name) {
				t.Errorf("podman load did not report %s:\n%s", name, out)
			}
			if got := podmanImageID(t, p, name); got != id {
				t.Errorf("podman loaded image ID %s, berth's is %s", got, id)
			}
		})

		// podman save → berth load.
		t.Run("PodmanSave"+tc.name+"BerthLoad", func(t *testing.T) {
			p := newPodman(t, ctx)
			b := newBerth(t, ctx)
			name := "localhost/berth-interop/" + uniqueName("save") + ":1"
			tarball, marker := writeTestLayer(t, p.dir)
			p.must(t, "import", "-q", "--change", "CMD "+jsonArray(imageCmd), tarball, name)
			id := podmanImageID(t, p, name)
			archive := filepath.Join(p.dir, "image.tar")
			p.must(t, "save", "--format", format, "-o", archive, name)

			out := b.must(t, "load", "-q", "-i", archive).Stdout
			if !strings.Contains(out, "Loaded image: "+name) {
				t.Errorf("berth load did not report %s:\n%s", name, out)
			}
			img := berthInspect(t, b, name)
			if img.ID != id {
				t.Errorf("berth loaded image ID %s, podman's is %s", img.ID, id)
			}
			if !slices.Equal(img.Config.Cmd, imageCmd) {
				t.Errorf("berth loaded Cmd %q, want %q", img.Config.Cmd, imageCmd)
			}
			requireUnpacked(t, b, marker)
		})
	}
}

// TestImageDocker moves images between berth and dockerd 20.10: through the
// registry (berth push → docker pull) and as docker-archive files (berth
// save → docker load, docker save → berth load).
func TestImageDocker(t *testing.T) {
	requireRoot(t)
	berthCLI(t)
	staticBusybox(t)
	ctx := peerContext(t)
	reg := startRegistry(t, ctx, "")
	d := startImageDockerd(t, ctx, reg.host)

	t.Run("BerthPushDockerPull", func(t *testing.T) {
		b := newBerth(t, ctx)
		id, _ := berthImport(t, b, "berth-interop/src:1")
		target := reg.host + "/berth-interop/" + uniqueName("docker") + ":v1"
		pushed := berthPush(t, b, "berth-interop/src:1", target)

		d.must(t, "pull", target)
		var got struct {
			ID          string `json:"Id"`
			RepoDigests []string
		}
		decodeJSON(t, d.must(t, "image", "inspect", "--format", "{{json .}}", target).Stdout, &got)
		if got.ID != id {
			t.Errorf("docker pulled image ID %s, berth's is %s", got.ID, id)
		}
		want := strings.TrimSuffix(target, ":v1") + "@" + pushed.String()
		if !slices.Equal(got.RepoDigests, []string{want}) {
			t.Errorf("docker RepoDigests %v, want [%s]", got.RepoDigests, want)
		}
	})

	// berth save (docker-archive) → docker load.
	t.Run("BerthSaveDockerLoad", func(t *testing.T) {
		b := newBerth(t, ctx)
		name := "berth-interop/" + uniqueName("save") + ":1"
		id, _ := berthImport(t, b, name)
		archive := filepath.Join(tempDir(t, "save"), "image.tar")
		b.must(t, "save", "-o", archive, name)
		out := d.must(t, "load", "-i", archive).Stdout
		if !strings.Contains(out, "Loaded image: "+name) {
			t.Errorf("docker load did not report %s:\n%s", name, out)
		}
		if got := strings.TrimSpace(d.must(t, "image", "inspect", "--format", "{{.Id}}", name).Stdout); got != id {
			t.Errorf("docker loaded image ID %s, berth's is %s", got, id)
		}
	})

	// docker import + save → berth load.
	t.Run("DockerSaveBerthLoad", func(t *testing.T) {
		b := newBerth(t, ctx)
		dir := tempDir(t, "dsave")
		name := "berth-interop/" + uniqueName("dsave") + ":1"
		tarball, marker := writeTestLayer(t, dir)
		d.must(t, "import", "--change", "CMD "+jsonArray(imageCmd), tarball, name)
		id := strings.TrimSpace(d.must(t, "image", "inspect", "--format", "{{.Id}}", name).Stdout)
		archive := filepath.Join(dir, "image.tar")
		d.must(t, "save", "-o", archive, name)

		out := b.must(t, "load", "-q", "-i", archive).Stdout
		if !strings.Contains(out, "Loaded image: "+name) {
			t.Errorf("berth load did not report %s:\n%s", name, out)
		}
		img := berthInspect(t, b, name)
		if img.ID != id {
			t.Errorf("berth loaded image ID %s, docker's is %s", img.ID, id)
		}
		if !slices.Equal(img.Config.Cmd, imageCmd) {
			t.Errorf("berth loaded Cmd %q, want %q", img.Config.Cmd, imageCmd)
		}
		requireUnpacked(t, b, marker)
	})
}

// berthInstance is a berth command line with a private root, run root,
// configuration file and credentials file.
type berthInstance struct {
	*engine
	root     string
	authfile string
}

// newBerth makes a berth instance whose state lives in a new temporary
// directory. Its configuration file is empty but for the version: a
// registry on 127.0.0.1 is insecure (plain HTTP) by default.
func newBerth(t *testing.T, ctx context.Context) *berthInstance {
	t.Helper()
	dir := tempDir(t, "berth")
	conf := filepath.Join(dir, "berth.toml")
	if err := os.WriteFile(conf, []byte("version = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b := &berthInstance{root: filepath.Join(dir, "root"), authfile: filepath.Join(dir, "auth.json")}
	b.engine = &engine{
		name: "berth",
		bin:  berthCLI(t),
		global: []string{
			"--root", b.root,
			"--run-root", filepath.Join(dir, "run"),
			"--config", conf,
			"--authfile", b.authfile,
		},
		ctx: ctx,
	}
	return b
}

// berthImport imports a new test layer with CMD imageCmd as name and
// returns the image ID and the layer's marker.
func berthImport(t *testing.T, b *berthInstance, name string) (id, marker string) {
	t.Helper()
	tarball, marker := writeTestLayer(t, filepath.Dir(b.root))
	out := b.must(t, "import", "--change", "CMD "+jsonArray(imageCmd), "--change", "LABEL org.example.marker="+marker, tarball, name).Stdout
	id = strings.TrimSpace(out)
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(id) {
		t.Fatalf("berth import printed %q, want an image ID", out)
	}
	// docker's template field names: {{.Id}}, not {{.ID}}.
	if got := strings.TrimSpace(b.must(t, "image", "inspect", "--format", "{{.Id}}", name).Stdout); got != id {
		t.Fatalf("berth image inspect --format {{.Id}} %s: %q, import printed %s", name, got, id)
	}
	return id, marker
}

var pushedDigest = regexp.MustCompile(`: digest: (sha256:[0-9a-f]{64}) size: [0-9]+`)

// berthPush tags local as target, pushes it and returns the pushed
// manifest's digest as berth reports it.
func berthPush(t *testing.T, b *berthInstance, local, target string) digest.Digest {
	t.Helper()
	b.must(t, "tag", local, target)
	out := b.must(t, "push", target).Stdout
	m := pushedDigest.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("berth push did not report the pushed digest:\n%s", out)
	}
	return digest.Digest(m[1])
}

// berthImageInspect is the part of `berth image inspect` the tests check.
type berthImageInspect struct {
	ID           string `json:"Id"`
	RepoTags     []string
	RepoDigests  []string
	Architecture string
	Os           string
	Config       struct {
		Cmd    []string
		Labels map[string]string
	}
	RootFS struct {
		Layers []string
	}
}

func berthInspect(t *testing.T, b *berthInstance, ref string) berthImageInspect {
	t.Helper()
	var imgs []berthImageInspect
	decodeJSON(t, b.must(t, "image", "inspect", ref).Stdout, &imgs)
	if len(imgs) != 1 {
		t.Fatalf("berth image inspect %s: %d images, want 1", ref, len(imgs))
	}
	return imgs[0]
}

// berthDiskUsage returns the image count and total size that `berth system
// df` reports.
func berthDiskUsage(t *testing.T, b *berthInstance) (int, string) {
	t.Helper()
	var row struct {
		Type       string
		TotalCount int
		Size       string
	}
	decodeJSON(t, b.must(t, "system", "df", "--format", "json").Stdout, &row)
	if row.Type != "Images" {
		t.Fatalf("berth system df: row %+v, want the Images row", row)
	}
	return row.TotalCount, row.Size
}

// requireUnpacked fails unless some directory under berth's root holds the
// layer whose marker file has the content marker: the layer was unpacked,
// not only downloaded.
func requireUnpacked(t *testing.T, b *berthInstance, marker string) {
	t.Helper()
	errFound := errors.New("found")
	err := filepath.WalkDir(b.root, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() || !strings.HasSuffix(p, "/"+markerPath) {
			return nil
		}
		if data, err := os.ReadFile(p); err == nil && string(data) == marker {
			if _, err := os.Stat(filepath.Join(strings.TrimSuffix(p, markerPath), "bin", "busybox")); err == nil {
				return errFound
			}
		}
		return nil
	})
	if !errors.Is(err, errFound) {
		t.Errorf("no unpacked layer with %s = %q and bin/busybox under %s (%v)", markerPath, marker, b.root, err)
	}
}

// treeSize returns the total size of the regular files under dir.
func treeSize(t *testing.T, dir string) int64 {
	t.Helper()
	var total int64
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		total += fi.Size()
		return nil
	})
	if err != nil {
		t.Fatalf("size of %s: %v", dir, err)
	}
	return total
}

// podmanInstance is podman with private storage, configuration,
// credentials, temporary files and an accept-anything signature policy.
type podmanInstance struct {
	*engine
	dir    string
	policy string
}

func newPodman(t *testing.T, ctx context.Context) *podmanInstance {
	t.Helper()
	bin := lookBinary(t, "podman", "podman")
	dir := tempDir(t, "podman")
	p := &podmanInstance{dir: dir, policy: filepath.Join(dir, "policy.json")}
	p.engine = &engine{
		name: "podman",
		bin:  bin,
		global: []string{
			"--root", filepath.Join(dir, "root"),
			"--runroot", filepath.Join(dir, "runroot"),
			"--tmpdir", filepath.Join(dir, "tmp"),
			"--network-config-dir", filepath.Join(dir, "networks"),
			"--storage-driver", "vfs",
			"--runtime", "runc",
			"--cgroup-manager", "cgroupfs",
			"--events-backend", "file",
		},
		env: containersToolsEnv(t, dir),
		ctx: ctx,
	}
	writeFile(t, p.policy, `{"default": [{"type": "insecureAcceptAnything"}]}`+"\n")
	return p
}

// containersToolsEnv writes the configuration files that podman and skopeo
// read into dir and returns the environment that points them there, so
// that nothing of the host's (registries, mirrors, credentials) applies.
func containersToolsEnv(t *testing.T, dir string) []string {
	t.Helper()
	writeFile(t, filepath.Join(dir, "containers.conf"), "[containers]\n[engine]\n[network]\n")
	writeFile(t, filepath.Join(dir, "registries.conf"), "unqualified-search-registries = []\n")
	writeFile(t, filepath.Join(dir, "auth.json"), "{}\n")
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o700); err != nil {
		t.Fatal(err)
	}
	return []string{
		"CONTAINERS_CONF=" + filepath.Join(dir, "containers.conf"),
		"CONTAINERS_REGISTRIES_CONF=" + filepath.Join(dir, "registries.conf"),
		"REGISTRY_AUTH_FILE=" + filepath.Join(dir, "auth.json"),
		"XDG_CONFIG_HOME=" + filepath.Join(dir, "config"),
		"TMPDIR=" + filepath.Join(dir, "tmp"),
	}
}

// podmanImageID returns podman's image ID of ref as "sha256:<hex>".
func podmanImageID(t *testing.T, p *podmanInstance, ref string) string {
	t.Helper()
	id := strings.TrimSpace(p.must(t, "image", "inspect", "--format", "{{.Id}}", ref).Stdout)
	if !strings.HasPrefix(id, "sha256:") {
		id = "sha256:" + id
	}
	return id
}

func newSkopeo(t *testing.T, ctx context.Context) *engine {
	t.Helper()
	bin := lookBinary(t, "skopeo", "skopeo")
	dir := tempDir(t, "skopeo")
	return &engine{
		name:   "skopeo",
		bin:    bin,
		global: []string{"--insecure-policy", "--tmpdir", filepath.Join(dir, "tmp")},
		env:    containersToolsEnv(t, dir),
		ctx:    ctx,
	}
}

// imageRegistry is a docker-registry serving plain HTTP on 127.0.0.1.
type imageRegistry struct {
	host string // 127.0.0.1:PORT
}

// startRegistry starts docker-registry on a free port of 127.0.0.1 with its
// storage in a temporary directory; with htpasswd set, every request needs
// a user of that file. It is stopped by its PID when the test ends.
func startRegistry(t *testing.T, ctx context.Context, htpasswd string) *imageRegistry {
	t.Helper()
	bin := lookBinary(t, "docker-registry", "docker-registry", "/usr/bin/docker-registry")
	dir := tempDir(t, "registry")
	ready := http.StatusOK
	auth := ""
	if htpasswd != "" {
		ready = http.StatusUnauthorized
		auth = fmt.Sprintf("auth:\n  htpasswd:\n    realm: berth-interop\n    path: %q\n", htpasswd)
	}
	// Another process may take the port between freePort and the
	// registry's listen; try again on a new port then.
	for attempt := 1; ; attempt++ {
		host := freePort(t)
		conf := filepath.Join(dir, fmt.Sprintf("config-%d.yml", attempt))
		writeFile(t, conf, fmt.Sprintf(`version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: %q
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
  secret: %s
%s`, filepath.Join(dir, "storage"), host, randHex(16), auth))
		d := startDaemon(t, "docker-registry", filepath.Join(dir, fmt.Sprintf("registry-%d.log", attempt)), bin, "serve", conf)
		t.Cleanup(func() {
			d.stop(t)
			if t.Failed() {
				t.Logf("docker-registry log (tail):\n%s", d.logTail(20))
			}
		})
		err := waitHTTP(ctx, d, "http://"+host+"/v2/", ready, 20*time.Second)
		if err == nil {
			t.Logf("docker-registry listening on %s", host)
			return &imageRegistry{host: host}
		}
		d.stop(t)
		if attempt < 3 && strings.Contains(d.logTail(5), "address already in use") {
			continue
		}
		t.Fatalf("docker-registry on %s: %v\nlog:\n%s", host, err, d.logTail(20))
	}
}

// freePort returns 127.0.0.1:PORT for a port that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// waitHTTP polls url until it answers with status, the daemon exits, or
// the time is up.
func waitHTTP(ctx context.Context, d *daemon, url string, status int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	var last error
	for {
		if !d.alive() {
			return fmt.Errorf("%s exited during start-up", d.name)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == status {
				return nil
			}
			err = fmt.Errorf("GET %s: %s, want %d", url, resp.Status, status)
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready: %w (last: %v)", ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// startImageDockerd starts dockerd (with a private containerd, data root,
// exec root, socket and CLI configuration; no network; vfs storage) that
// may pull from the plain-HTTP registry insecureRegistry, and returns its
// command line. It runs no containers.
func startImageDockerd(t *testing.T, ctx context.Context, insecureRegistry string) *engine {
	t.Helper()
	dockerd := lookBinary(t, "docker.io", "dockerd")
	docker := lookBinary(t, "docker.io", "/usr/bin/docker", "docker")
	bins := needContainerd(t)
	dir := tempDir(t, "dockerd")
	cg := newCgroupParent(t)
	ctd := startContainerd(t, ctx, bins, filepath.Join(dir, "containerd"))
	confPath := filepath.Join(dir, "daemon.json")
	// dockerd 20.10 writes its trust key to /etc/docker by default.
	writeFile(t, confPath, fmt.Sprintf(`{"deprecated-key-path": %q, "exec-opts": ["native.cgroupdriver=cgroupfs"]}`+"\n", filepath.Join(dir, "key.json")))
	sock := filepath.Join(dir, "docker.sock")
	d := startDaemon(t, "dockerd", filepath.Join(dir, "dockerd.log"), dockerd,
		"--config-file", confPath,
		"--data-root", filepath.Join(dir, "data"),
		"--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "dockerd.pid"),
		"-H", "unix://"+sock,
		"--containerd", ctd.sock,
		"--containerd-namespace", "berth-interop-moby",
		"--containerd-plugins-namespace", "berth-interop-plugins",
		"--storage-driver", "vfs",
		"--cgroup-parent", cg,
		"--insecure-registry", insecureRegistry,
		"--bridge=none",
		"--iptables=false",
		"--ip6tables=false",
		"--ip-forward=false",
		"--ip-masq=false",
		"--userland-proxy=false",
	)
	// Registered after the containerd's shutdown, so it runs before it.
	t.Cleanup(func() {
		d.stop(t)
		if t.Failed() {
			t.Logf("dockerd log (tail):\n%s", d.logTail(30))
		}
	})
	e := &engine{
		name:   "docker",
		bin:    docker,
		global: []string{"-H", "unix://" + sock},
		env:    []string{"DOCKER_CONFIG=" + filepath.Join(dir, "cli")},
		ctx:    ctx,
	}
	d.waitReady(t, ctx, 60*time.Second, func() result {
		return runCmd(ctx, 10*time.Second, e.env, docker, "-H", "unix://"+sock, "version")
	})
	return e
}

// testLayer returns a new uncompressed layer: busybox-static (buildLayer)
// plus markerPath holding a random marker, returned too.
func testLayer(t *testing.T) (layer []byte, marker string) {
	t.Helper()
	base, err := buildLayer(staticBusybox(t))
	if err != nil {
		t.Fatalf("build image layer: %v", err)
	}
	marker = "berth-interop-" + randHex(8)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tr := tar.NewReader(bytes.NewReader(base))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("read base layer: %v", err)
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			t.Fatal(err)
		}
	}
	h := &tar.Header{Typeflag: tar.TypeReg, Name: markerPath, Mode: 0o644, Size: int64(len(marker)), ModTime: imageTime, Format: tar.FormatPAX}
	if err := tw.WriteHeader(h); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write([]byte(marker)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), marker
}

// writeTestLayer writes a new test layer as a root file system tarball
// into dir.
func writeTestLayer(t *testing.T, dir string) (tarball, marker string) {
	t.Helper()
	layer, marker := testLayer(t)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tarball = filepath.Join(dir, "rootfs-"+randHex(4)+".tar")
	if err := os.WriteFile(tarball, layer, 0o644); err != nil {
		t.Fatal(err)
	}
	return tarball, marker
}

// indexLayout is what writeIndexLayout wrote.
type indexLayout struct {
	index   digest.Digest
	configs map[string]digest.Digest // by architecture
}

// writeIndexLayout writes an OCI image layout at dir whose index.json names
// (ref.name tag) an image index with one linux manifest per architecture,
// all sharing layer (gzip-compressed).
func writeIndexLayout(t *testing.T, dir, tag string, layer []byte, archs []string) indexLayout {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		t.Fatal(err)
	}
	putBlob := func(mediaType string, data []byte) ocispec.Descriptor {
		d := digest.FromBytes(data)
		writeFile(t, filepath.Join(dir, "blobs", "sha256", d.Encoded()), string(data))
		return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(data))}
	}
	putJSON := func(mediaType string, v any) ocispec.Descriptor {
		data, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return putBlob(mediaType, data)
	}

	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(layer); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	layerDesc := putBlob(ocispec.MediaTypeImageLayerGzip, gz.Bytes())

	out := indexLayout{configs: map[string]digest.Digest{}}
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex}
	for _, arch := range archs {
		created := imageTime
		cfg := putJSON(ocispec.MediaTypeImageConfig, ocispec.Image{
			Created:  &created,
			Platform: ocispec.Platform{OS: "linux", Architecture: arch},
			Config:   ocispec.ImageConfig{Cmd: imageCmd},
			RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromBytes(layer)}},
			History:  []ocispec.History{{Created: &created, CreatedBy: "berth interop test: busybox-static for " + arch}},
		})
		out.configs[arch] = cfg.Digest
		m := putJSON(ocispec.MediaTypeImageManifest, ocispec.Manifest{
			Versioned: specs.Versioned{SchemaVersion: 2},
			MediaType: ocispec.MediaTypeImageManifest,
			Config:    cfg,
			Layers:    []ocispec.Descriptor{layerDesc},
		})
		m.Platform = &ocispec.Platform{OS: "linux", Architecture: arch}
		idx.Manifests = append(idx.Manifests, m)
	}
	top := putJSON(ocispec.MediaTypeImageIndex, idx)
	out.index = top.Digest
	top.Annotations = map[string]string{ocispec.AnnotationRefName: tag}
	data, err := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, Manifests: []ocispec.Descriptor{top}})
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "index.json"), string(data))
	writeFile(t, filepath.Join(dir, ocispec.ImageLayoutFile), `{"imageLayoutVersion":"1.0.0"}`)
	return out
}

// layoutConfigDigest returns the config digest of the image tagged tag in
// the OCI layout at dir.
func layoutConfigDigest(t *testing.T, dir, tag string) digest.Digest {
	t.Helper()
	readBlob := func(d digest.Digest) []byte {
		data, err := os.ReadFile(filepath.Join(dir, "blobs", d.Algorithm().String(), d.Encoded()))
		if err != nil {
			t.Fatalf("OCI layout %s: %v", dir, err)
		}
		if got := digest.FromBytes(data); got != d {
			t.Fatalf("OCI layout %s: blob %s has digest %s", dir, d, got)
		}
		return data
	}
	var idx ocispec.Index
	data, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	decodeJSON(t, string(data), &idx)
	for _, m := range idx.Manifests {
		if m.Annotations[ocispec.AnnotationRefName] != tag {
			continue
		}
		var man ocispec.Manifest
		decodeJSON(t, string(readBlob(m.Digest)), &man)
		readBlob(man.Config.Digest)
		for _, l := range man.Layers {
			readBlob(l.Digest)
		}
		return man.Config.Digest
	}
	t.Fatalf("OCI layout %s has no image tagged %s: %s", dir, tag, data)
	return ""
}

func decodeJSON(t *testing.T, data string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(data), v); err != nil {
		t.Fatalf("decode %T: %v\n%s", v, err, data)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// jsonArray formats args as a Dockerfile exec-form array.
func jsonArray(args []string) string {
	data, err := json.Marshal(args)
	if err != nil {
		panic(err)
	}
	return string(data)
}
