package archive

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-engine/berth/content"
	"github.com/berth-engine/berth/image/manifest"
	tararchive "github.com/berth-engine/berth/snapshot/archive"
)

// maxMetadataSize bounds every JSON document read from an archive or from
// the store while saving or loading: manifest.json, index.json, image
// configs, manifests and indexes.
const maxMetadataSize = 16 << 20

// layerContent describes what a layer blob holds.
type layerContent struct {
	compression tararchive.Compression
	diffID      digest.Digest // sha256 of the uncompressed tar
	size        int64         // length of the uncompressed tar
}

// inspectLayer reads the layer blob dgst and returns its compression, diff
// ID and uncompressed size. An uncompressed sha256 blob is its own diff ID,
// so only its first bytes are read; any other blob is decompressed and
// hashed in full.
func inspectLayer(ctx context.Context, store *content.Store, dgst digest.Digest) (layerContent, error) {
	ra, err := store.ReaderAt(ctx, dgst)
	if err != nil {
		return layerContent{}, err
	}
	defer ra.Close()
	head := make([]byte, 8)
	n, err := ra.ReadAt(head, 0)
	if err != nil && err != io.EOF {
		return layerContent{}, fmt.Errorf("read layer %s: %w", dgst, err)
	}
	c := tararchive.DetectCompression(head[:n])
	if c == tararchive.Uncompressed && dgst.Algorithm() == digest.SHA256 {
		return layerContent{compression: c, diffID: dgst, size: ra.Size()}, nil
	}
	rc, c, err := tararchive.DecompressStream(ctxReader{ctx, io.NewSectionReader(ra, 0, ra.Size())})
	if err != nil {
		return layerContent{}, fmt.Errorf("layer %s: %w", dgst, err)
	}
	defer rc.Close()
	h := sha256.New()
	size, err := io.Copy(h, rc)
	if err != nil {
		return layerContent{}, fmt.Errorf("decompress layer %s: %w", dgst, err)
	}
	return layerContent{compression: c, diffID: digest.NewDigest(digest.SHA256, h), size: size}, nil
}

// layerCache remembers inspectLayer's answers, for layers shared by images.
type layerCache map[digest.Digest]layerContent

func (lc layerCache) inspect(ctx context.Context, store *content.Store, dgst digest.Digest) (layerContent, error) {
	if l, ok := lc[dgst]; ok {
		return l, nil
	}
	l, err := inspectLayer(ctx, store, dgst)
	if err != nil {
		return layerContent{}, err
	}
	lc[dgst] = l
	return l, nil
}

// imageConfig holds the part of an image config this package needs.
type imageConfig struct {
	RootFS *struct {
		Type    string          `json:"type"`
		DiffIDs []digest.Digest `json:"diff_ids"`
	} `json:"rootfs"`
}

// parseDiffIDs returns the rootfs.diff_ids of an image config, checking
// that each is a sha256 digest.
func parseDiffIDs(data []byte) ([]digest.Digest, error) {
	var cfg imageConfig
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, fmt.Errorf("decode image config: %w", err)
	}
	if cfg.RootFS == nil {
		return nil, fmt.Errorf("image config has no rootfs")
	}
	if cfg.RootFS.Type != "layers" {
		return nil, fmt.Errorf("image config: rootfs type %q, want \"layers\"", cfg.RootFS.Type)
	}
	for _, d := range cfg.RootFS.DiffIDs {
		if err := d.Validate(); err != nil || d.Algorithm() != digest.SHA256 {
			return nil, fmt.Errorf("image config: diff ID %q is not a sha256 digest", d)
		}
	}
	return cfg.RootFS.DiffIDs, nil
}

// isImageConfig reports whether a config media type is that of an image
// config (whose rootfs must match the layers).
func isImageConfig(mediaType string) bool {
	return mediaType == manifest.MediaTypeOCIConfig || mediaType == manifest.MediaTypeDockerConfig
}

// layerBlob is a layer of a manifest being built.
type layerBlob struct {
	digest      digest.Digest
	size        int64
	compression tararchive.Compression
}

// buildManifest returns the manifest of an image made of the config (its
// bytes' digest and size) and the layer blobs: a Docker schema 2 manifest,
// or an OCI manifest when a layer is zstd, which schema 2 has no media
// type for. The output depends only on its input, so the same image always
// gets the same manifest digest.
func buildManifest(config ocispec.Descriptor, layers []layerBlob) ([]byte, ocispec.Descriptor, error) {
	oci := false
	for _, l := range layers {
		oci = oci || l.compression == tararchive.Zstd
	}
	m := ocispec.Manifest{
		MediaType: manifest.MediaTypeDockerManifest,
		Config: ocispec.Descriptor{
			MediaType: manifest.MediaTypeDockerConfig,
			Digest:    config.Digest,
			Size:      config.Size,
		},
		Layers: make([]ocispec.Descriptor, 0, len(layers)),
	}
	m.SchemaVersion = 2
	if oci {
		m.MediaType = manifest.MediaTypeOCIManifest
		m.Config.MediaType = manifest.MediaTypeOCIConfig
	}
	for _, l := range layers {
		mt, err := layerMediaType(l.compression, oci)
		if err != nil {
			return nil, ocispec.Descriptor{}, err
		}
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: mt, Digest: l.digest, Size: l.size})
	}
	data, err := json.Marshal(m)
	if err != nil {
		return nil, ocispec.Descriptor{}, fmt.Errorf("encode manifest: %w", err)
	}
	return data, ocispec.Descriptor{
		MediaType: m.MediaType,
		Digest:    digest.FromBytes(data),
		Size:      int64(len(data)),
	}, nil
}

// layerMediaType returns the media type of a layer blob with compression c
// in an OCI or a Docker schema 2 manifest.
func layerMediaType(c tararchive.Compression, oci bool) (string, error) {
	switch {
	case c == tararchive.Uncompressed && oci:
		return manifest.MediaTypeOCILayer, nil
	case c == tararchive.Gzip && oci:
		return manifest.MediaTypeOCILayerGzip, nil
	case c == tararchive.Zstd && oci:
		return manifest.MediaTypeOCILayerZstd, nil
	case c == tararchive.Uncompressed:
		return manifest.MediaTypeDockerLayerUncompressed, nil
	case c == tararchive.Gzip:
		return manifest.MediaTypeDockerLayer, nil
	}
	return "", fmt.Errorf("no Docker schema 2 media type for a %s layer", c)
}

// ctxReader fails reads once ctx is done, so long copies stop promptly.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
