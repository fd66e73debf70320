package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-engine/berth/content"
	"github.com/berth-engine/berth/image/manifest"
	tararchive "github.com/berth-engine/berth/snapshot/archive"
)

func TestParseFormat(t *testing.T) {
	tests := []struct {
		in      string
		want    Format
		wantErr bool
	}{
		{"docker-archive", FormatDocker, false},
		{"docker", FormatDocker, false},
		{"oci-archive", FormatOCI, false},
		{"oci", FormatOCI, false},
		{"", 0, true},
		{"OCI", 0, true},
		{"docker-daemon", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseFormat(tt.in)
		if tt.wantErr {
			if !errors.Is(err, ErrUnknownFormat) {
				t.Errorf("ParseFormat(%q) = %v, %v; want ErrUnknownFormat", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseFormat(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
		if back, err := ParseFormat(got.String()); err != nil || back != got {
			t.Errorf("ParseFormat(%v.String()) = %v, %v", got, back, err)
		}
	}
}

// dockerFixture is two tagged images sharing a layer and an untagged one,
// with gzip, zstd and uncompressed layers.
func dockerFixture(t *testing.T, s *content.Store) (images []Image, a, b, c testImage) {
	rng := rand.New(rand.NewPCG(1, 2))
	shared := randomLayer(t, rng, tararchive.Gzip)
	a = storeImage(t, s, hostPlatform(), []testLayer{shared, randomLayer(t, rng, tararchive.Zstd), randomLayer(t, rng, tararchive.Uncompressed)}, "a")
	b = storeImage(t, s, hostPlatform(), []testLayer{shared, randomLayer(t, rng, tararchive.Gzip)}, "b")
	c = storeImage(t, s, hostPlatform(), []testLayer{randomLayer(t, rng, tararchive.Zstd)}, "c")
	images = []Image{
		{Names: []string{"docker.io/library/busybox:latest", "docker.io/library/busybox:1.36"}, Target: a.target},
		{Names: []string{"localhost:5000/x:1", "docker.io/library/busybox@" + b.target.Digest.String()}, Target: b.target},
		{Target: c.target},
	}
	return images, a, b, c
}

func TestSaveDockerLayout(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	images, a, b, c := dockerFixture(t, s)
	var buf bytes.Buffer
	if err := Save(ctx, &buf, s, images, FormatDocker); err != nil {
		t.Fatal(err)
	}
	files := readTar(t, buf.Bytes()) // fails on a blob written twice

	var entries []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(files["manifest.json"], &entries); err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 {
		t.Fatalf("manifest.json has %d entries, want 3", len(entries))
	}
	wantTags := [][]string{{"busybox:latest", "busybox:1.36"}, {"localhost:5000/x:1"}, nil}
	for i, ti := range []testImage{a, b, c} {
		e := entries[i]
		if !slices.Equal(e.RepoTags, wantTags[i]) {
			t.Errorf("entry %d RepoTags = %q, want %q", i, e.RepoTags, wantTags[i])
		}
		if e.Config != "blobs/sha256/"+ti.configDigest().Encoded() || !bytes.Equal(files[e.Config], ti.config) {
			t.Errorf("entry %d Config = %s: not the original config", i, e.Config)
		}
		if len(e.Layers) != len(ti.layers) {
			t.Fatalf("entry %d has %d layers, want %d", i, len(e.Layers), len(ti.layers))
		}
		for j, l := range ti.layers {
			if got := files[e.Layers[j]]; !bytes.Equal(got, l.tar) {
				t.Errorf("entry %d layer %d (%s): not the uncompressed tar", i, j, e.Layers[j])
			}
		}
	}
	if got := string(files["oci-layout"]); got != `{"imageLayoutVersion":"1.0.0"}` {
		t.Errorf("oci-layout = %s", got)
	}

	var idx ocispec.Index
	if err := json.Unmarshal(files["index.json"], &idx); err != nil {
		t.Fatal(err)
	}
	type named struct{ name, tag string }
	var got []named
	for _, d := range idx.Manifests {
		got = append(got, named{d.Annotations[annotationImageName], d.Annotations[ocispec.AnnotationRefName]})
		doc, err := manifest.Decode(d.MediaType, files[blobPath(d.Digest)])
		if err != nil {
			t.Fatalf("index.json entry %s: %v", d.Digest, err)
		}
		if doc.Kind != manifest.KindDockerManifest || doc.Manifest.Config.MediaType != manifest.MediaTypeDockerConfig {
			t.Errorf("index.json entry %s is a %v with config %s, want a docker manifest", d.Digest, doc.Kind, doc.Manifest.Config.MediaType)
		}
		for _, l := range doc.Manifest.Layers {
			if l.MediaType != manifest.MediaTypeDockerLayerUncompressed || int64(len(files[blobPath(l.Digest)])) != l.Size {
				t.Errorf("manifest %s layer %+v", d.Digest, l)
			}
		}
	}
	want := []named{
		{"docker.io/library/busybox:latest", "latest"},
		{"docker.io/library/busybox:1.36", "1.36"},
		{"localhost:5000/x:1", "1"},
		{"", ""},
	}
	if !slices.Equal(got, want) {
		t.Errorf("index.json names = %q, want %q", got, want)
	}
	var repos map[string]map[string]string
	if err := json.Unmarshal(files["repositories"], &repos); err != nil {
		t.Fatal(err)
	}
	if repos["busybox"]["latest"] != a.layers[2].diffID.Encoded() || repos["localhost:5000/x"]["1"] != b.layers[1].diffID.Encoded() {
		t.Errorf("repositories = %v", repos)
	}
}

func TestRoundTripDocker(t *testing.T) {
	ctx := context.Background()
	src := newStore(t)
	images, a, b, c := dockerFixture(t, src)
	// The same image under another name is one manifest.json entry.
	images = append(images, Image{Names: []string{"docker.io/library/alias:v1"}, Target: a.target})
	var buf bytes.Buffer
	if err := Save(ctx, &buf, src, images, FormatDocker); err != nil {
		t.Fatal(err)
	}
	files := readTar(t, buf.Bytes())
	var idx ocispec.Index
	if err := json.Unmarshal(files["index.json"], &idx); err != nil {
		t.Fatal(err)
	}

	dst := newStore(t)
	tmp := t.TempDir()
	loaded, err := Load(ctx, bytes.NewReader(buf.Bytes()), dst, tmp)
	if err != nil {
		t.Fatal(err)
	}
	wantNames := [][]string{
		{"docker.io/library/busybox:latest", "docker.io/library/busybox:1.36", "docker.io/library/alias:v1"},
		{"localhost:5000/x:1"},
		nil,
	}
	if len(loaded) != 3 {
		t.Fatalf("loaded %d images, want 3: %+v", len(loaded), loaded)
	}
	for i, ti := range []testImage{a, b, c} {
		l := loaded[i]
		if !slices.Equal(l.Names, wantNames[i]) {
			t.Errorf("image %d names = %q, want %q", i, l.Names, wantNames[i])
		}
		if l.Target.MediaType != manifest.MediaTypeDockerManifest {
			t.Errorf("image %d target is a %s", i, l.Target.MediaType)
		}
		if !slices.ContainsFunc(idx.Manifests, func(d ocispec.Descriptor) bool { return d.Digest == l.Target.Digest }) {
			t.Errorf("image %d: loaded manifest %s is not the one index.json lists", i, l.Target.Digest)
		}
		m := readManifest(t, dst, l.Target)
		if m.Config.Digest != ti.configDigest() {
			t.Errorf("image %d config = %s, want %s", i, m.Config.Digest, ti.configDigest())
		}
		for j, layer := range m.Layers {
			got, err := content.ReadBlob(ctx, dst, layer.Digest)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, ti.layers[j].tar) {
				t.Errorf("image %d layer %d: not the uncompressed tar", i, j)
			}
		}
		checkComplete(t, dst, l.Target)
	}
	assertEmptyDir(t, tmp)
	assertNoIngests(t, dst)
	assertResaveIdentical(t, dst, loaded, FormatDocker, buf.Bytes())
}

// assertResaveIdentical saves the loaded images again and expects the
// archive they were loaded from, byte for byte: Save and Load agree on
// every manifest, config, layer and name.
func assertResaveIdentical(t *testing.T, s *content.Store, loaded []Loaded, f Format, want []byte) {
	t.Helper()
	var images []Image
	for _, l := range loaded {
		images = append(images, Image{Names: l.Names, Target: l.Target})
	}
	var again bytes.Buffer
	if err := Save(context.Background(), &again, s, images, f); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.Bytes(), want) {
		t.Errorf("%v: saving the loaded images gives another archive", f)
	}
}

func TestRoundTripOCI(t *testing.T) {
	ctx := context.Background()
	src := newStore(t)
	rng := rand.New(rand.NewPCG(3, 4))
	shared := randomLayer(t, rng, tararchive.Zstd)
	amd := storeImage(t, src, ocispec.Platform{OS: "linux", Architecture: "amd64"}, []testLayer{shared, randomLayer(t, rng, tararchive.Gzip)}, "amd64")
	arm := storeImage(t, src, ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}, []testLayer{shared, randomLayer(t, rng, tararchive.Uncompressed)}, "arm64")
	// A platform that was never pulled: its manifest is not in the store.
	missing := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("never pulled"), Size: 42}
	index, _ := indexOf(t, src,
		withPlatform(amd.target, ocispec.Platform{OS: "linux", Architecture: "amd64"}),
		withPlatform(arm.target, ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}),
		withPlatform(missing, ocispec.Platform{OS: "linux", Architecture: "s390x"}))
	single := storeImage(t, src, hostPlatform(), []testLayer{shared, randomLayer(t, rng, tararchive.Zstd)}, "single")
	untagged := storeImage(t, src, hostPlatform(), []testLayer{randomLayer(t, rng, tararchive.Gzip)}, "untagged")
	images := []Image{
		{Names: []string{"docker.io/library/multi:latest", "registry.example:5000/team/multi:2"}, Target: index},
		{Names: []string{"docker.io/library/single:1"}, Target: single.target},
		{Target: untagged.target},
	}
	var buf bytes.Buffer
	if err := Save(ctx, &buf, src, images, FormatOCI); err != nil {
		t.Fatal(err)
	}
	files := readTar(t, buf.Bytes())
	if _, ok := files["manifest.json"]; ok {
		t.Error("an oci-archive has a manifest.json")
	}
	// Blobs are written as stored, and only those in the store.
	for _, ti := range []testImage{amd, arm, single, untagged} {
		for _, l := range ti.layers {
			if !bytes.Equal(files[blobPath(digest.FromBytes(l.blob))], l.blob) {
				t.Errorf("layer %s not written as stored", digest.FromBytes(l.blob))
			}
		}
	}
	if _, ok := files[blobPath(missing.Digest)]; ok {
		t.Error("a manifest not in the store was written")
	}
	var idx ocispec.Index
	if err := json.Unmarshal(files["index.json"], &idx); err != nil {
		t.Fatal(err)
	}
	if len(idx.Manifests) != 4 {
		t.Fatalf("index.json has %d entries, want 4", len(idx.Manifests))
	}
	if e := idx.Manifests[1]; e.Digest != index.Digest || e.Annotations[ocispec.AnnotationRefName] != "2" ||
		e.Annotations[annotationImageName] != "registry.example:5000/team/multi:2" {
		t.Errorf("index.json entry 1 = %+v", e)
	}
	if e := idx.Manifests[3]; e.Digest != untagged.target.Digest || e.Annotations != nil {
		t.Errorf("index.json entry 3 = %+v", e)
	}

	dst := newStore(t)
	loaded, err := Load(ctx, bytes.NewReader(buf.Bytes()), dst, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	want := []Loaded{
		{Names: []string{"docker.io/library/multi:latest", "registry.example:5000/team/multi:2"}, Target: index},
		{Names: []string{"docker.io/library/single:1"}, Target: single.target},
		{Target: untagged.target},
	}
	if len(loaded) != len(want) {
		t.Fatalf("loaded %+v, want %+v", loaded, want)
	}
	for i := range want {
		if !slices.Equal(loaded[i].Names, want[i].Names) || loaded[i].Target.Digest != want[i].Target.Digest ||
			loaded[i].Target.MediaType != want[i].Target.MediaType || loaded[i].Target.Size != want[i].Target.Size {
			t.Errorf("loaded[%d] = %+v, want %+v", i, loaded[i], want[i])
		}
		checkComplete(t, dst, loaded[i].Target)
	}
	for _, ti := range []testImage{amd, arm, single, untagged} {
		for _, l := range ti.layers {
			if _, err := dst.Info(ctx, digest.FromBytes(l.blob)); err != nil {
				t.Errorf("layer blob not loaded: %v", err)
			}
		}
	}
	assertNoIngests(t, dst)
	assertResaveIdentical(t, dst, loaded, FormatOCI, buf.Bytes())
}

func TestSaveDockerPlatform(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	rng := rand.New(rand.NewPCG(5, 6))
	amd := storeImage(t, s, ocispec.Platform{OS: "linux", Architecture: "amd64"}, []testLayer{randomLayer(t, rng, tararchive.Gzip)}, "amd64")
	arm := storeImage(t, s, ocispec.Platform{OS: "linux", Architecture: "arm64"}, []testLayer{randomLayer(t, rng, tararchive.Gzip)}, "arm64")
	attestation := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: putBlob(t, s, []byte("{}")), Size: 2,
		Platform: &ocispec.Platform{OS: "unknown", Architecture: "unknown"}}
	both, _ := indexOf(t, s,
		withPlatform(amd.target, ocispec.Platform{OS: "linux", Architecture: "amd64"}),
		withPlatform(arm.target, ocispec.Platform{OS: "linux", Architecture: "arm64"}))
	// One platform pulled (the other is not in the store), plus an
	// attestation, which is never an image.
	one, _ := indexOf(t, s,
		withPlatform(amd.target, ocispec.Platform{OS: "linux", Architecture: "amd64"}),
		withPlatform(ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("absent"), Size: 3}, ocispec.Platform{OS: "linux", Architecture: "arm64"}),
		attestation)
	none, _ := indexOf(t, s,
		withPlatform(ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("absent"), Size: 3}, ocispec.Platform{OS: "linux", Architecture: "arm64"}))

	tests := []struct {
		name       string
		target     ocispec.Descriptor
		platform   *ocispec.Platform
		wantConfig digest.Digest
		wantErr    error
	}{
		{"ambiguous", both, nil, "", ErrAmbiguousPlatform},
		{"chosen arm64", both, &ocispec.Platform{OS: "linux", Architecture: "arm64"}, arm.configDigest(), nil},
		{"chosen amd64", both, &ocispec.Platform{OS: "linux", Architecture: "amd64"}, amd.configDigest(), nil},
		{"no match", both, &ocispec.Platform{OS: "linux", Architecture: "s390x"}, "", manifest.ErrNoMatchingManifest},
		{"only one present", one, nil, amd.configDigest(), nil},
		{"chosen platform absent", one, &ocispec.Platform{OS: "linux", Architecture: "arm64"}, "", manifest.ErrNoMatchingManifest},
		{"none present", none, nil, "", content.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := Save(ctx, &buf, s, []Image{{Names: []string{"docker.io/library/x:1"}, Target: tt.target, Platform: tt.platform}}, FormatDocker)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Save = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var entries []dockerManifestEntry
			if err := json.Unmarshal(readTar(t, buf.Bytes())["manifest.json"], &entries); err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 || entries[0].Config != blobPath(tt.wantConfig) {
				t.Errorf("manifest.json = %+v, want config %s", entries, tt.wantConfig)
			}
		})
	}
}

func TestSaveErrors(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	rng := rand.New(rand.NewPCG(7, 8))
	good := storeImage(t, s, hostPlatform(), []testLayer{randomLayer(t, rng, tararchive.Gzip)}, "good")

	// A manifest whose layer does not decompress to the config's diff ID.
	l1, l2 := randomLayer(t, rng, tararchive.Gzip), randomLayer(t, rng, tararchive.Gzip)
	lying := storeImage(t, s, hostPlatform(), []testLayer{l1}, "lying")
	m := readManifest(t, s, lying.target)
	putBlob(t, s, l2.blob)
	m.Layers[0] = l2.descriptor(t)
	data := mustJSON(t, m)
	badDiffID := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: putBlob(t, s, data), Size: int64(len(data))}

	// A manifest whose layer blob is not in the store.
	m.Layers[0] = randomLayer(t, rng, tararchive.Gzip).descriptor(t)
	data = mustJSON(t, m)
	missingLayer := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: putBlob(t, s, data), Size: int64(len(data))}

	wrongSize := good.target
	wrongSize.Size++

	tests := []struct {
		name    string
		images  []Image
		format  Format
		wantErr error
	}{
		{"unknown format", []Image{{Target: good.target}}, Format(7), ErrUnknownFormat},
		{"target not in store", []Image{{Target: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("x"), Size: 1}}}, FormatDocker, content.ErrNotFound},
		{"target size wrong", []Image{{Target: wrongSize}}, FormatOCI, content.ErrSizeMismatch},
		{"diff ID mismatch", []Image{{Target: badDiffID}}, FormatDocker, content.ErrDigestMismatch},
		{"missing layer docker", []Image{{Target: missingLayer}}, FormatDocker, content.ErrNotFound},
		{"missing layer oci", []Image{{Target: missingLayer}}, FormatOCI, content.ErrNotFound},
		{"invalid name", []Image{{Names: []string{"UPPER:1"}, Target: good.target}}, FormatOCI, nil},
		{"image ID as name", []Image{{Names: []string{good.configDigest().String()}, Target: good.target}}, FormatDocker, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Save(ctx, io.Discard, s, tt.images, tt.format)
			if err == nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("Save = %v, want %v", err, tt.wantErr)
			}
		})
	}

	t.Run("canceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := Save(ctx, io.Discard, s, []Image{{Target: good.target}}, FormatDocker); !errors.Is(err, context.Canceled) {
			t.Fatalf("Save = %v, want context.Canceled", err)
		}
	})
}

// TestSaveDeterministic: the same images give the same bytes.
func TestSaveDeterministic(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	images, _, _, _ := dockerFixture(t, s)
	for _, f := range []Format{FormatDocker, FormatOCI} {
		var b1, b2 bytes.Buffer
		if err := Save(ctx, &b1, s, images, f); err != nil {
			t.Fatal(err)
		}
		if err := Save(ctx, &b2, s, images, f); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b1.Bytes(), b2.Bytes()) {
			t.Errorf("%v: two saves differ", f)
		}
	}
}
