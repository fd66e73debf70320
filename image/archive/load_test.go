package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-engine/berth/content"
	"github.com/berth-engine/berth/image/manifest"
	tararchive "github.com/berth-engine/berth/snapshot/archive"
)

// assertEmptyDir fails if dir has entries (Load left spool files).
func assertEmptyDir(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("%s not cleaned up: %v", dir, entries)
	}
}

// assertNoIngests fails if s has ingests left over.
func assertNoIngests(t *testing.T, s *content.Store) {
	t.Helper()
	ingests, err := s.ListIngests(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(ingests) != 0 {
		t.Errorf("ingests left in the store: %+v", ingests)
	}
}

// TestLoadLegacyDocker loads the layout of `docker save` before 25 and of
// `podman save`: <id>/layer.tar files (one a symlink to another, one
// gzip-compressed, one zstd), <hex>.json configs, entries in no particular
// order.
func TestLoadLegacyDocker(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(11, 12))
	l1 := randomLayer(t, rng, tararchive.Uncompressed)
	l2 := randomLayer(t, rng, tararchive.Gzip)
	l3 := randomLayer(t, rng, tararchive.Zstd)
	cfg1 := imageConfigJSON(t, hostPlatform(), []testLayer{l1, l2}, "one")
	cfg2 := imageConfigJSON(t, hostPlatform(), []testLayer{l1, l3}, "two")
	id := func(n int) string { return strings.Repeat(string(rune('a'+n)), 64) }
	manifestJSON := mustJSON(t, []dockerManifestEntry{
		{Config: digest.FromBytes(cfg1).Encoded() + ".json", RepoTags: []string{"busybox:latest", "example.com/a/b:v2"}, Layers: []string{id(1) + "/layer.tar", id(2) + "/layer.tar"}},
		{Config: "./" + digest.FromBytes(cfg2).Encoded() + ".json", Layers: []string{id(3) + "/layer.tar", id(4) + "/layer.tar"}},
	})
	archive := buildTar(t,
		tarEntry{name: "manifest.json", data: manifestJSON},
		tarEntry{name: id(1) + "/", typeflag: '5'},
		tarEntry{name: id(1) + "/VERSION", data: []byte("1.0")},
		tarEntry{name: id(1) + "/json", data: []byte(`{"id":"` + id(1) + `"}`)},
		tarEntry{name: id(1) + "/layer.tar", data: l1.blob},
		tarEntry{name: id(2) + "/layer.tar", data: l2.blob},
		tarEntry{name: id(3) + "/layer.tar", typeflag: '2', linkname: "../" + id(1) + "/layer.tar"},
		tarEntry{name: id(4) + "/layer.tar", data: l3.blob},
		tarEntry{name: digest.FromBytes(cfg1).Encoded() + ".json", data: cfg1},
		tarEntry{name: "./" + digest.FromBytes(cfg2).Encoded() + ".json", data: cfg2},
		tarEntry{name: "repositories", data: []byte(`{"busybox":{"latest":"` + id(2) + `"}}`)},
	)
	s := newStore(t)
	tmp := t.TempDir()
	loaded, err := Load(ctx, bytes.NewReader(archive), s, tmp)
	if err != nil {
		t.Fatal(err)
	}
	if len(loaded) != 2 {
		t.Fatalf("loaded %d images, want 2", len(loaded))
	}
	tests := []struct {
		names      []string
		mediaType  string
		config     []byte
		layers     []testLayer
		layerTypes []string
	}{
		{[]string{"docker.io/library/busybox:latest", "example.com/a/b:v2"}, manifest.MediaTypeDockerManifest, cfg1, []testLayer{l1, l2},
			[]string{manifest.MediaTypeDockerLayerUncompressed, manifest.MediaTypeDockerLayer}},
		{nil, manifest.MediaTypeOCIManifest, cfg2, []testLayer{l1, l3},
			[]string{manifest.MediaTypeOCILayer, manifest.MediaTypeOCILayerZstd}},
	}
	for i, tt := range tests {
		l := loaded[i]
		if !slices.Equal(l.Names, tt.names) || l.Target.MediaType != tt.mediaType {
			t.Errorf("image %d = %+v, want names %q, a %s", i, l, tt.names, tt.mediaType)
		}
		m := readManifest(t, s, l.Target)
		if m.Config.Digest != digest.FromBytes(tt.config) {
			t.Errorf("image %d config %s, want %s", i, m.Config.Digest, digest.FromBytes(tt.config))
		}
		for j, ld := range m.Layers {
			want := tt.layers[j]
			if ld.Digest != digest.FromBytes(want.blob) || ld.Size != int64(len(want.blob)) || ld.MediaType != tt.layerTypes[j] {
				t.Errorf("image %d layer %d = %+v, want the blob as it was (%s, %s)", i, j, ld, digest.FromBytes(want.blob), tt.layerTypes[j])
			}
		}
		checkComplete(t, s, l.Target)
	}
	assertEmptyDir(t, tmp)
	assertNoIngests(t, s)
}

// minimalDocker returns the files of a valid one-image docker-archive.
func minimalDocker(t testing.TB, layer []byte) (cfg []byte, files map[string][]byte) {
	cfg = mustJSON(t, map[string]any{"architecture": "amd64", "os": "linux",
		"rootfs": map[string]any{"type": "layers", "diff_ids": []digest.Digest{digest.FromBytes(layer)}}})
	files = map[string][]byte{
		"manifest.json": mustJSON(t, []dockerManifestEntry{{Config: "config.json", RepoTags: []string{"x:1"}, Layers: []string{"l/layer.tar"}}}),
		"config.json":   cfg,
		"l/layer.tar":   layer,
	}
	return cfg, files
}

// ociFixture is a valid one-image oci-archive's parts.
type ociFixture struct {
	layer, config, manifest []byte
	manifestDesc            ocispec.Descriptor
}

func newOCIFixture(t testing.TB, layer []byte, diffIDs int, layerSize int64) ociFixture {
	ids := []digest.Digest{}
	for range diffIDs {
		ids = append(ids, digest.FromBytes(layer))
	}
	cfg := mustJSON(t, map[string]any{"architecture": "amd64", "os": "linux",
		"rootfs": map[string]any{"type": "layers", "diff_ids": ids}})
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(cfg), Size: int64(len(cfg))},
		Layers: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(layer), Size: layerSize}}}
	m.SchemaVersion = 2
	md := mustJSON(t, m)
	return ociFixture{layer: layer, config: cfg, manifest: md,
		manifestDesc: ocispec.Descriptor{MediaType: m.MediaType, Digest: digest.FromBytes(md), Size: int64(len(md))}}
}

// entries returns the fixture's tar entries with index.json listing index.
func (f ociFixture) entries(t testing.TB, index ...ocispec.Descriptor) []tarEntry {
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: index}
	idx.SchemaVersion = 2
	return []tarEntry{
		{name: "oci-layout", data: []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{name: blobPath(digest.FromBytes(f.layer)), data: f.layer},
		{name: blobPath(digest.FromBytes(f.config)), data: f.config},
		{name: blobPath(f.manifestDesc.Digest), data: f.manifest},
		{name: "index.json", data: mustJSON(t, idx)},
	}
}

func dockerEntries(files map[string][]byte, skip string) []tarEntry {
	var out []tarEntry
	for _, name := range []string{"manifest.json", "config.json", "l/layer.tar"} {
		if name != skip {
			out = append(out, tarEntry{name: name, data: files[name]})
		}
	}
	return out
}

func TestLoadHostile(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	layer := randomLayer(t, rng, tararchive.Uncompressed).tar
	other := randomLayer(t, rng, tararchive.Uncompressed).tar
	_, files := minimalDocker(t, layer)
	valid := buildTar(t, dockerEntries(files, "")...)
	withManifest := func(entries ...dockerManifestEntry) []tarEntry {
		return append(dockerEntries(files, "manifest.json"), tarEntry{name: "manifest.json", data: mustJSON(t, entries)})
	}
	ok := dockerManifestEntry{Config: "config.json", Layers: []string{"l/layer.tar"}}
	twoDiffIDs := mustJSON(t, map[string]any{"rootfs": map[string]any{"type": "layers",
		"diff_ids": []digest.Digest{digest.FromBytes(layer), digest.FromBytes(layer)}}})
	oci := newOCIFixture(t, layer, 1, int64(len(layer)))
	ociBadCount := newOCIFixture(t, layer, 2, int64(len(layer)))
	ociBadSize := newOCIFixture(t, layer, 1, int64(len(layer))+1)
	absentIndex, absentIndexData := indexOf(t, nil, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("absent"), Size: 6})
	bigJSON := bytes.Repeat([]byte(" "), maxMetadataSize+1)

	tests := []struct {
		name    string
		archive []byte
		wantErr error // ErrInvalidArchive when nil
	}{
		{"absolute path", buildTar(t, append(dockerEntries(files, ""), tarEntry{name: "/etc/passwd", data: []byte("x")})...), nil},
		{"dotdot path", buildTar(t, append(dockerEntries(files, ""), tarEntry{name: "../evil", data: []byte("x")})...), nil},
		{"dotdot inside path", buildTar(t, append(dockerEntries(files, "manifest.json"), tarEntry{name: "a/../manifest.json", data: files["manifest.json"]})...), nil},
		{"config outside", buildTar(t, withManifest(dockerManifestEntry{Config: "../../etc/passwd", Layers: ok.Layers})...), nil},
		{"config absolute", buildTar(t, withManifest(dockerManifestEntry{Config: "/etc/passwd", Layers: ok.Layers})...), nil},
		{"layer outside", buildTar(t, withManifest(dockerManifestEntry{Config: ok.Config, Layers: []string{"l/../../layer.tar"}})...), nil},
		{"no config", buildTar(t, withManifest(dockerManifestEntry{Layers: ok.Layers})...), nil},
		{"missing config", buildTar(t, dockerEntries(files, "config.json")...), nil},
		{"missing layer", buildTar(t, dockerEntries(files, "l/layer.tar")...), nil},
		{"missing manifest.json file", buildTar(t, append(dockerEntries(files, "manifest.json"), tarEntry{name: "manifest.json", typeflag: '2', linkname: "nowhere.json"})...), nil},
		{"config not an image config", buildTar(t, append(dockerEntries(files, "config.json"), tarEntry{name: "config.json", data: []byte(`{"a":1}`)})...), nil},
		{"more diff IDs than layers", buildTar(t, append(dockerEntries(files, "config.json"), tarEntry{name: "config.json", data: twoDiffIDs})...), nil},
		{"more layers than diff IDs", buildTar(t, withManifest(dockerManifestEntry{Config: ok.Config, Layers: []string{"l/layer.tar", "l/layer.tar"}})...), nil},
		{"diff ID mismatch", buildTar(t, append(dockerEntries(files, "l/layer.tar"), tarEntry{name: "l/layer.tar", data: other})...), nil},
		{"corrupt gzip layer", buildTar(t, append(dockerEntries(files, "l/layer.tar"), tarEntry{name: "l/layer.tar", data: append([]byte{0x1f, 0x8b, 0x08}, other[:100]...)})...), nil},
		{"duplicate entry", buildTar(t, append(dockerEntries(files, ""), tarEntry{name: "config.json", data: files["config.json"]})...), nil},
		{"duplicate entry spelled differently", buildTar(t, append(dockerEntries(files, ""), tarEntry{name: "./l//layer.tar", data: other})...), nil},
		{"symlink escape", buildTar(t, append(dockerEntries(files, "l/layer.tar"), tarEntry{name: "l/layer.tar", typeflag: '2', linkname: "../../etc/passwd"})...), nil},
		{"absolute symlink", buildTar(t, append(dockerEntries(files, "l/layer.tar"), tarEntry{name: "l/layer.tar", typeflag: '2', linkname: "/etc/passwd"})...), nil},
		{"hard link escape", buildTar(t, append(dockerEntries(files, "l/layer.tar"), tarEntry{name: "l/layer.tar", typeflag: '1', linkname: "../x"})...), nil},
		{"symlink loop", buildTar(t, append(dockerEntries(files, "l/layer.tar"),
			tarEntry{name: "l/layer.tar", typeflag: '2', linkname: "other.tar"},
			tarEntry{name: "l/other.tar", typeflag: '2', linkname: "layer.tar"})...), nil},
		{"sparse file", sparseTar(t), nil},
		{"old GNU sparse file", buildTar(t, append(dockerEntries(files, ""), tarEntry{name: "sparse", typeflag: 'S'})...), nil},
		{"device entry", buildTar(t, append(dockerEntries(files, ""), tarEntry{name: "dev", typeflag: '3'})...), nil},
		{"oversized manifest.json", buildTar(t, append(dockerEntries(files, "manifest.json"), tarEntry{name: "manifest.json", data: bigJSON})...), nil},
		{"manifest.json not JSON", buildTar(t, append(dockerEntries(files, "manifest.json"), tarEntry{name: "manifest.json", data: []byte("[{")})...), nil},
		{"manifest.json empty", buildTar(t, withManifest()...), nil},
		{"invalid RepoTags", buildTar(t, withManifest(dockerManifestEntry{Config: ok.Config, RepoTags: []string{"UPPER:1"}, Layers: ok.Layers})...), nil},
		{"digest in RepoTags", buildTar(t, withManifest(dockerManifestEntry{Config: ok.Config, RepoTags: []string{"x@" + digest.FromString("x").String()}, Layers: ok.Layers})...), nil},
		{"blob digest mismatch", buildTar(t, append(dockerEntries(files, ""), tarEntry{name: blobPath(digest.FromBytes(layer)), data: other})...), nil},
		{"new blob digest mismatch", buildTar(t, append(dockerEntries(files, ""), tarEntry{name: blobPath(digest.FromBytes(other)), data: layer})...), nil},
		{"blob size mismatch", buildTar(t, append(dockerEntries(files, ""), tarEntry{name: blobPath(digest.FromBytes(layer)), data: layer[:len(layer)-1]})...), nil},
		{"blob name not a digest", buildTar(t, append(dockerEntries(files, ""), tarEntry{name: "blobs/sha256/notahexdigest", data: other})...), nil},
		{"blob unknown algorithm", buildTar(t, append(dockerEntries(files, ""), tarEntry{name: "blobs/md5/" + strings.Repeat("0", 32), data: other})...), nil},
		{"truncated", valid[:len(valid)/2], nil},
		{"not a tar", bytes.Repeat([]byte("not a tar at all "), 100), nil},
		{"empty tar", buildTar(t), ErrUnknownFormat},
		{"repositories only", buildTar(t, tarEntry{name: "repositories", data: []byte(`{}`)}), ErrUnknownFormat},

		{"oci valid control", buildTar(t, oci.entries(t, oci.manifestDesc)...), errNone},
		{"oci missing manifest", buildTar(t, oci.entries(t, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("absent"), Size: 6})...), nil},
		{"oci manifest size wrong", buildTar(t, oci.entries(t, ocispec.Descriptor{MediaType: oci.manifestDesc.MediaType, Digest: oci.manifestDesc.Digest, Size: oci.manifestDesc.Size + 1})...), nil},
		{"oci missing layer", buildTar(t, slices.Delete(oci.entries(t, oci.manifestDesc), 1, 2)...), nil},
		{"oci missing config", buildTar(t, slices.Delete(oci.entries(t, oci.manifestDesc), 2, 3)...), nil},
		{"oci layer size wrong", buildTar(t, ociBadSize.entries(t, ociBadSize.manifestDesc)...), nil},
		{"oci diff ID count", buildTar(t, ociBadCount.entries(t, ociBadCount.manifestDesc)...), nil},
		{"oci index with no manifest present", buildTar(t, append(oci.entries(t, absentIndex), tarEntry{name: blobPath(absentIndex.Digest), data: absentIndexData})...), nil},
		{"oci unsupported layout version", buildTar(t, append(slices.Delete(oci.entries(t, oci.manifestDesc), 0, 1), tarEntry{name: "oci-layout", data: []byte(`{"imageLayoutVersion":"9"}`)})...), nil},
		{"oci entry not a manifest", buildTar(t, oci.entries(t, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(layer), Size: int64(len(layer))})...), nil},
		{"oci manifest is not JSON", buildTar(t, oci.entries(t, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(layer), Size: int64(len(layer))})...), nil},
		{"oci bad image name", buildTar(t, oci.entries(t, ocispec.Descriptor{MediaType: oci.manifestDesc.MediaType, Digest: oci.manifestDesc.Digest, Size: oci.manifestDesc.Size,
			Annotations: map[string]string{annotationImageName: "Bad Name"}})...), nil},
		{"oci index.json invalid", buildTar(t, append(slices.Delete(oci.entries(t), 4, 5), tarEntry{name: "index.json", data: []byte(`{"schemaVersion":1}`)})...), nil},
		{"oci empty index", buildTar(t, oci.entries(t)...), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			tmp := t.TempDir()
			loaded, err := Load(context.Background(), bytes.NewReader(tt.archive), s, tmp)
			assertEmptyDir(t, tmp)
			assertNoIngests(t, s)
			if tt.wantErr == errNone {
				if err != nil || len(loaded) != 1 {
					t.Fatalf("Load = %+v, %v; want one image", loaded, err)
				}
				return
			}
			want := tt.wantErr
			if want == nil {
				want = ErrInvalidArchive
			}
			if !errors.Is(err, want) {
				t.Fatalf("Load = %+v, %v; want %v", loaded, err, want)
			}
			if loaded != nil {
				t.Errorf("Load returned images with its error: %+v", loaded)
			}
			t.Log(err)
		})
	}
}

// sparseTar returns a tar holding a PAX GNU sparse file (format 0.1) of 5
// bytes of data and a logical size of 1 TB. Go's tar writer cannot write
// one, so it writes records of another name and renames them.
func sparseTar(t *testing.T) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: "GNUSparseFile.0/big.tar", Size: 5, Mode: 0o644, Format: tar.FormatPAX,
		PAXRecords: map[string]string{
			"XYZ.sparse.map":       "0,5",
			"XYZ.sparse.numblocks": "1",
			"XYZ.sparse.size":      "1000000000000",
			"XYZ.sparse.name":      "big.tar",
		}}
	if err := tw.WriteHeader(hdr); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	out := bytes.ReplaceAll(buf.Bytes(), []byte("XYZ.sparse."), []byte("GNU.sparse."))
	// The reader must see a sparse file of 1 TB, or the test proves nothing.
	tr := tar.NewReader(bytes.NewReader(out))
	if h, err := tr.Next(); err != nil || h.Size != 1000000000000 {
		t.Fatalf("sparse fixture: %+v, %v", h, err)
	}
	return out
}

// errNone marks a control case of TestLoadHostile that must load.
var errNone = errors.New("no error")

func TestLoadOCIRefName(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	layer := randomLayer(t, rng, tararchive.Uncompressed).tar
	oci := newOCIFixture(t, layer, 1, int64(len(layer)))
	entry := func(ann map[string]string) ocispec.Descriptor {
		d := oci.manifestDesc
		d.Annotations = ann
		return d
	}
	archive := buildTar(t, oci.entries(t,
		entry(map[string]string{ocispec.AnnotationRefName: "latest"}),                        // a bare tag names no repository
		entry(map[string]string{ocispec.AnnotationRefName: "quay.io/a/b:3"}),                 // a full reference
		entry(map[string]string{ocispec.AnnotationRefName: "1", annotationImageName: "c:1"}), // containerd's name wins
		entry(map[string]string{ocispec.AnnotationRefName: "Not:A/Reference"}),               // ignored
		entry(map[string]string{ocispec.AnnotationRefName: "quay.io/a/b:3"}),                 // a duplicate
	)...)
	loaded, err := Load(context.Background(), bytes.NewReader(archive), newStore(t), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"quay.io/a/b:3", "docker.io/library/c:1"}
	if len(loaded) != 1 || !slices.Equal(loaded[0].Names, want) || loaded[0].Target.Digest != oci.manifestDesc.Digest {
		t.Fatalf("loaded %+v, want one image named %q", loaded, want)
	}
}

func TestLoadCanceled(t *testing.T) {
	s := newStore(t)
	images, _, _, _ := dockerFixture(t, s)
	var buf bytes.Buffer
	if err := Save(context.Background(), &buf, s, images, FormatDocker); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tmp := t.TempDir()
	loaded, err := Load(ctx, bytes.NewReader(buf.Bytes()), newStore(t), tmp)
	if !errors.Is(err, context.Canceled) || loaded != nil {
		t.Fatalf("Load = %+v, %v; want context.Canceled", loaded, err)
	}
	assertEmptyDir(t, tmp)
}

// TestLoadKeepsExistingBlobs: loading into a store that has some of the
// blobs already works (they are not written again).
func TestLoadKeepsExistingBlobs(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	images, _, _, _ := dockerFixture(t, s)
	for _, f := range []Format{FormatDocker, FormatOCI} {
		var buf bytes.Buffer
		if err := Save(ctx, &buf, s, images, f); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			loaded, err := Load(ctx, bytes.NewReader(buf.Bytes()), s, t.TempDir())
			if err != nil || len(loaded) != 3 {
				t.Fatalf("%v: Load = %+v, %v", f, loaded, err)
			}
		}
	}
	assertNoIngests(t, s)
}

func FuzzLoad(f *testing.F) {
	layer := []byte("the bytes of a layer")
	_, files := minimalDocker(f, layer)
	f.Add(buildTar(f, dockerEntries(files, "")...))
	oci := newOCIFixture(f, layer, 1, int64(len(layer)))
	f.Add(buildTar(f, oci.entries(f, oci.manifestDesc)...))
	f.Add(buildTar(f, append(dockerEntries(files, "l/layer.tar"), tarEntry{name: "l/layer.tar", typeflag: '2', linkname: "../l/x"}, tarEntry{name: "l/x", data: layer})...))
	f.Add([]byte{})
	// One store for all inputs: opening one per input (fsyncs and all) would
	// dominate the run. An input's images must be complete in it all the
	// same.
	s := newStoreTB(f)
	tmp := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		loaded, err := Load(context.Background(), bytes.NewReader(data), s, tmp)
		assertEmptyDir(t, tmp)
		if err != nil {
			if loaded != nil {
				t.Fatalf("images returned with an error: %+v", loaded)
			}
			return
		}
		for _, l := range loaded {
			if err := checkTree(context.Background(), s, l.Target, 0); err != nil {
				t.Fatalf("loaded image %s is incomplete: %v", l.Target.Digest, err)
			}
		}
	})
}
