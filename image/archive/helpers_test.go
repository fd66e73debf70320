package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-engine/berth/content"
	"github.com/berth-engine/berth/image/manifest"
	tararchive "github.com/berth-engine/berth/snapshot/archive"
)

// testLayer is a layer generated for a test.
type testLayer struct {
	tar    []byte        // the uncompressed tar
	diffID digest.Digest // its digest
	blob   []byte        // the stored bytes (compressed or not)
	comp   tararchive.Compression
}

// descriptor returns the layer's descriptor in an OCI manifest.
func (l testLayer) descriptor(t *testing.T) ocispec.Descriptor {
	mt, err := layerMediaType(l.comp, true)
	if err != nil {
		t.Fatal(err)
	}
	return ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(l.blob), Size: int64(len(l.blob))}
}

// randomLayer returns a layer of a few random files, compressed with c.
func randomLayer(t *testing.T, rng *rand.Rand, c tararchive.Compression) testLayer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i := range 1 + rng.IntN(4) {
		data := make([]byte, rng.IntN(64<<10))
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		name := fmt.Sprintf("dir%d/file-%d-%d", i, i, rng.Uint32())
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	l := testLayer{tar: buf.Bytes(), diffID: digest.FromBytes(buf.Bytes()), comp: c}
	l.blob = compress(t, l.tar, c)
	return l
}

// compress compresses data with c.
func compress(t *testing.T, data []byte, c tararchive.Compression) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.WriteCloser
	switch c {
	case tararchive.Uncompressed:
		return data
	case tararchive.Gzip:
		w = gzip.NewWriter(&buf)
	case tararchive.Zstd:
		zw, err := zstd.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		w = zw
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func newStore(t *testing.T) *content.Store {
	t.Helper()
	return newStoreTB(t)
}

func newStoreTB(t testing.TB) *content.Store {
	t.Helper()
	s, err := content.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// putBlob stores data and returns its digest.
func putBlob(t *testing.T, s *content.Store, data []byte) digest.Digest {
	t.Helper()
	d := digest.FromBytes(data)
	if err := content.WriteBlob(context.Background(), s, "test-"+d.String(), bytes.NewReader(data), d, int64(len(data))); err != nil {
		t.Fatal(err)
	}
	return d
}

// testImage is an image generated in a store.
type testImage struct {
	target ocispec.Descriptor // its manifest
	config []byte
	layers []testLayer
}

func (ti testImage) configDigest() digest.Digest { return digest.FromBytes(ti.config) }

// imageConfigJSON returns an image config with the layers' diff IDs.
func imageConfigJSON(t *testing.T, platform ocispec.Platform, layers []testLayer, salt string) []byte {
	t.Helper()
	cfg := ocispec.Image{Platform: platform, Config: ocispec.ImageConfig{Cmd: []string{"/bin/true"}, Labels: map[string]string{"salt": salt}}}
	cfg.RootFS.Type = "layers"
	cfg.RootFS.DiffIDs = []digest.Digest{}
	for _, l := range layers {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, l.diffID)
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// hostPlatform is the platform test images are built for.
func hostPlatform() ocispec.Platform {
	return ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
}

// storeImage stores an OCI image of the layers (and their blobs) for
// platform; salt makes its config unique.
func storeImage(t *testing.T, s *content.Store, platform ocispec.Platform, layers []testLayer, salt string) testImage {
	t.Helper()
	cfg := imageConfigJSON(t, platform, layers, salt)
	m := ocispec.Manifest{
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: putBlob(t, s, cfg), Size: int64(len(cfg))},
		Layers:    []ocispec.Descriptor{},
	}
	m.SchemaVersion = 2
	for _, l := range layers {
		putBlob(t, s, l.blob)
		m.Layers = append(m.Layers, l.descriptor(t))
	}
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	target := ocispec.Descriptor{MediaType: m.MediaType, Digest: putBlob(t, s, data), Size: int64(len(data))}
	return testImage{target: target, config: cfg, layers: layers}
}

// indexOf returns an OCI index of the manifests, stored in s (or not, when
// s is nil).
func indexOf(t *testing.T, s *content.Store, manifests ...ocispec.Descriptor) (ocispec.Descriptor, []byte) {
	t.Helper()
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: manifests}
	idx.SchemaVersion = 2
	data, err := json.Marshal(idx)
	if err != nil {
		t.Fatal(err)
	}
	if s != nil {
		putBlob(t, s, data)
	}
	return ocispec.Descriptor{MediaType: idx.MediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}, data
}

// withPlatform returns desc with a platform.
func withPlatform(desc ocispec.Descriptor, p ocispec.Platform) ocispec.Descriptor {
	desc.Platform = &p
	return desc
}

// tarEntry is a file of a hand-built tar.
type tarEntry struct {
	name     string
	data     []byte
	typeflag byte // 0: a regular file
	linkname string
}

// buildTar writes entries as a tar stream.
func buildTar(t testing.TB, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typeflag, Linkname: e.linkname, Mode: 0o644}
		if hdr.Typeflag == 0 {
			hdr.Typeflag = tar.TypeReg
			hdr.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if len(e.data) > 0 && hdr.Typeflag == tar.TypeReg {
			if _, err := tw.Write(e.data); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// readTar returns the regular files of a tar stream by name, failing on a
// duplicate name.
func readTar(t *testing.T, data []byte) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		if _, dup := files[hdr.Name]; dup {
			t.Fatalf("%s written twice", hdr.Name)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[hdr.Name] = b
	}
}

// mustJSON encodes v.
func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkComplete fails unless target and everything it needs are in s.
func checkComplete(t *testing.T, s *content.Store, target ocispec.Descriptor) {
	t.Helper()
	if err := checkTree(context.Background(), s, target, 0); err != nil {
		t.Fatalf("image %s incomplete: %v", target.Digest, err)
	}
}

// readManifest reads the manifest desc from s.
func readManifest(t *testing.T, s *content.Store, desc ocispec.Descriptor) *manifest.Manifest {
	t.Helper()
	doc, _, err := readDocument(context.Background(), s, desc)
	if err != nil {
		t.Fatal(err)
	}
	if doc.Manifest == nil {
		t.Fatalf("%s is not a manifest", desc.Digest)
	}
	return doc.Manifest
}
