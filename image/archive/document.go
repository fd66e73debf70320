package archive

import (
	"context"
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-engine/berth/content"
	"github.com/berth-engine/berth/image/manifest"
)

// errTooLarge: a manifest, index or config is larger than maxMetadataSize.
var errTooLarge = fmt.Errorf("larger than the %d bytes a manifest or config may have", maxMetadataSize)

// readSmallBlob returns the store's blob desc, at most maxMetadataSize
// bytes, checking its size against the descriptor's (and, as the store
// holds only verified blobs, nothing else).
func readSmallBlob(ctx context.Context, store *content.Store, desc ocispec.Descriptor) ([]byte, error) {
	info, err := store.Info(ctx, desc.Digest)
	if err != nil {
		return nil, err
	}
	if info.Size != desc.Size {
		return nil, fmt.Errorf("blob %s: descriptor says %d bytes, the blob has %d: %w", desc.Digest, desc.Size, info.Size, content.ErrSizeMismatch)
	}
	if info.Size > maxMetadataSize {
		return nil, fmt.Errorf("blob %s: %d bytes: %w", desc.Digest, info.Size, errTooLarge)
	}
	data, err := content.ReadBlob(ctx, store, desc.Digest)
	if err != nil {
		return nil, err
	}
	if got := desc.Digest.Algorithm().FromBytes(data); got != desc.Digest {
		return nil, fmt.Errorf("blob %s: content hashes to %s: %w", desc.Digest, got, content.ErrDigestMismatch)
	}
	return data, nil
}

// readDocument reads and decodes the manifest or index desc from the store.
// It returns the document's bytes too, the blob to write as is.
func readDocument(ctx context.Context, store *content.Store, desc ocispec.Descriptor) (*manifest.Decoded, []byte, error) {
	data, err := readSmallBlob(ctx, store, desc)
	if err != nil {
		return nil, nil, err
	}
	doc, err := manifest.Decode(desc.MediaType, data)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", desc.Digest, err)
	}
	return doc, data, nil
}

// isDocument reports whether a descriptor's media type is that of a
// manifest or an index.
func isDocument(mediaType string) bool {
	switch mediaType {
	case manifest.MediaTypeOCIManifest, manifest.MediaTypeOCIIndex,
		manifest.MediaTypeDockerManifest, manifest.MediaTypeDockerManifestList:
		return true
	}
	return false
}

// isManifest reports whether a descriptor's media type is that of an image
// manifest (not an index).
func isManifest(mediaType string) bool {
	return mediaType == manifest.MediaTypeOCIManifest || mediaType == manifest.MediaTypeDockerManifest
}

// present reports whether the blob dgst is in the store.
func present(ctx context.Context, store *content.Store, dgst digest.Digest) (bool, error) {
	_, err := store.Info(ctx, dgst)
	if errors.Is(err, content.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// isAttestation reports whether an index entry is a BuildKit attestation
// manifest rather than an image.
func isAttestation(desc ocispec.Descriptor) bool {
	if desc.Annotations["vnd.docker.reference.type"] == "attestation-manifest" {
		return true
	}
	p := desc.Platform
	return p != nil && p.OS == "unknown" && p.Architecture == "unknown"
}
