package archive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-engine/berth/content"
	"github.com/berth-engine/berth/image/manifest"
	"github.com/berth-engine/berth/image/reference"
)

// loadOCI loads the images of an OCI image layout's index.json. Its blobs
// are in the store already; loadOCI checks that each image is complete.
func (a *archiveFiles) loadOCI(ctx context.Context) ([]Loaded, error) {
	if a.files[ocispec.ImageLayoutFile] != nil {
		data, err := a.readMetadata(ctx, ocispec.ImageLayoutFile)
		if err != nil {
			return nil, err
		}
		var layout ocispec.ImageLayout
		if err := json.Unmarshal(data, &layout); err != nil {
			return nil, invalid("oci-layout: %v", err)
		}
		if layout.Version != ocispec.ImageLayoutVersion {
			return nil, invalid("oci-layout: unsupported version %q", layout.Version)
		}
	}
	data, err := a.readMetadata(ctx, ocispec.ImageIndexFile)
	if err != nil {
		return nil, err
	}
	doc, err := manifest.Decode(manifest.MediaTypeOCIIndex, data)
	if err != nil {
		return nil, invalid("index.json: %v", err)
	}
	var images []Loaded
	at := map[digest.Digest]int{} // index in images of a target
	for i, entry := range doc.Index.Manifests {
		name, err := entryName(entry.Annotations)
		if err != nil {
			return nil, fmt.Errorf("index.json entry %d: %w", i, err)
		}
		j, seen := at[entry.Digest]
		if !seen {
			if !isDocument(entry.MediaType) {
				return nil, invalid("index.json entry %d: %s is not an image manifest or index", i, entry.MediaType)
			}
			if err := checkTree(ctx, a.store, entry, 0); err != nil {
				return nil, fmt.Errorf("index.json entry %d: %w", i, err)
			}
			j = len(images)
			at[entry.Digest] = j
			target := ocispec.Descriptor{MediaType: entry.MediaType, Digest: entry.Digest, Size: entry.Size, Platform: entry.Platform}
			images = append(images, Loaded{Target: target})
		} else if images[j].Target.Size != entry.Size || images[j].Target.MediaType != entry.MediaType {
			return nil, invalid("index.json entry %d: %s described differently by another entry", i, entry.Digest)
		}
		if name != "" && !slices.Contains(images[j].Names, name) {
			images[j].Names = append(images[j].Names, name)
		}
	}
	return images, nil
}

// entryName returns the normalised name of an index.json entry: its
// io.containerd.image.name annotation, else its
// org.opencontainers.image.ref.name when that is a full reference (a bare
// tag names no repository), else "".
func entryName(annotations map[string]string) (string, error) {
	if n := annotations[annotationImageName]; n != "" {
		r, err := reference.Parse(n)
		if err != nil || r.IsID() {
			return "", invalid("%s %q is not an image name", annotationImageName, n)
		}
		return r.String(), nil
	}
	n := annotations[ocispec.AnnotationRefName]
	if !strings.ContainsAny(n, "/:@") {
		return "", nil
	}
	r, err := reference.Parse(n)
	if err != nil || r.IsID() {
		return "", nil
	}
	return r.String(), nil
}

// checkTree checks that the manifest or index desc is complete in the
// store: a manifest's config and layers (except non-distributable ones)
// are present with the sizes it gives, its image config lists as many diff
// IDs as it has layers, and at least one manifest of an index is present
// (and complete).
func checkTree(ctx context.Context, store *content.Store, desc ocispec.Descriptor, depth int) error {
	if depth > maxIndexDepth {
		return invalid("indexes nested more than %d deep", maxIndexDepth)
	}
	doc, _, err := readDocument(ctx, store, desc)
	if err != nil {
		return storeError(err)
	}
	if doc.Kind.IsIndex() {
		found := 0
		for _, child := range doc.Index.Manifests {
			if !isDocument(child.MediaType) {
				continue
			}
			ok, err := present(ctx, store, child.Digest)
			if err != nil {
				return err
			}
			if !ok {
				continue // not saved, as after a pull of one platform
			}
			if err := checkTree(ctx, store, child, depth+1); err != nil {
				return fmt.Errorf("index %s: %w", desc.Digest, err)
			}
			found++
		}
		if found == 0 {
			return invalid("index %s: none of its manifests is in the archive", desc.Digest)
		}
		return nil
	}
	m := doc.Manifest
	if isImageConfig(m.Config.MediaType) {
		cfg, err := readSmallBlob(ctx, store, m.Config)
		if err != nil {
			return fmt.Errorf("manifest %s: config: %w", desc.Digest, storeError(err))
		}
		diffIDs, err := parseDiffIDs(cfg)
		if err != nil {
			return invalid("manifest %s: config %s: %v", desc.Digest, m.Config.Digest, err)
		}
		if len(diffIDs) != len(m.Layers) {
			return invalid("manifest %s: %d layers but the config lists %d diff IDs", desc.Digest, len(m.Layers), len(diffIDs))
		}
	} else if err := checkBlob(ctx, store, m.Config); err != nil {
		return fmt.Errorf("manifest %s: config: %w", desc.Digest, err)
	}
	for _, l := range m.Layers {
		err := checkBlob(ctx, store, l)
		if errors.Is(err, content.ErrNotFound) {
			if info, perr := manifest.ParseLayer(l); perr == nil && info.NonDistributable {
				continue
			}
		}
		if err != nil {
			return fmt.Errorf("manifest %s: layer: %w", desc.Digest, err)
		}
	}
	return nil
}

// checkBlob checks that the blob desc is in the store with desc's size.
func checkBlob(ctx context.Context, store *content.Store, desc ocispec.Descriptor) error {
	info, err := store.Info(ctx, desc.Digest)
	if err != nil {
		return storeError(err)
	}
	if info.Size != desc.Size {
		return invalid("blob %s: descriptor says %d bytes, the blob has %d", desc.Digest, desc.Size, info.Size)
	}
	return nil
}

// storeError marks a blob missing from the store, or not matching its
// descriptor, as a fault of the archive.
func storeError(err error) error {
	if errors.Is(err, content.ErrNotFound) {
		return fmt.Errorf("%w: blob missing: %w", ErrInvalidArchive, err)
	}
	if errors.Is(err, content.ErrSizeMismatch) ||
		errors.Is(err, content.ErrInvalidDigest) || errors.Is(err, manifest.ErrInvalid) ||
		errors.Is(err, manifest.ErrUnsupportedMediaType) || errors.Is(err, manifest.ErrSchema1) ||
		errors.Is(err, errTooLarge) {
		return fmt.Errorf("%w: %w", ErrInvalidArchive, err)
	}
	return err
}
