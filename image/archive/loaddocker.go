package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-engine/berth/content"
	"github.com/berth-engine/berth/image/reference"
)

// loadDocker loads the images of a docker-archive's manifest.json.
func (a *archiveFiles) loadDocker(ctx context.Context) ([]Loaded, error) {
	data, err := a.readMetadata(ctx, dockerManifestFile)
	if err != nil {
		return nil, err
	}
	var entries []dockerManifestEntry
	if err := json.Unmarshal(data, &entries); err != nil {
		return nil, invalid("manifest.json: %v", err)
	}
	layers := layerCache{}
	images := make([]Loaded, 0, len(entries))
	for i, e := range entries {
		img, err := a.loadDockerImage(ctx, e, layers)
		if err != nil {
			return nil, fmt.Errorf("manifest.json entry %d (%v): %w", i, e.RepoTags, err)
		}
		images = append(images, img)
	}
	return images, nil
}

// loadDockerImage stores the config of a manifest.json entry, checks its
// layers against the config's diff IDs and stores a manifest for them.
func (a *archiveFiles) loadDockerImage(ctx context.Context, e dockerManifestEntry, layers layerCache) (Loaded, error) {
	names, err := parseRepoTags(e.RepoTags)
	if err != nil {
		return Loaded{}, err
	}
	if e.Config == "" {
		return Loaded{}, invalid("no Config")
	}
	cfg, err := a.readMetadata(ctx, e.Config)
	if err != nil {
		return Loaded{}, fmt.Errorf("config: %w", err)
	}
	diffIDs, err := parseDiffIDs(cfg)
	if err != nil {
		return Loaded{}, invalid("config %s: %v", e.Config, err)
	}
	if len(diffIDs) != len(e.Layers) {
		return Loaded{}, invalid("%d layers but the config lists %d diff IDs", len(e.Layers), len(diffIDs))
	}
	config := ocispec.Descriptor{Digest: digest.FromBytes(cfg), Size: int64(len(cfg))}
	if err := a.storeBlob(ctx, config.Digest, config.Size, bytes.NewReader(cfg)); err != nil {
		return Loaded{}, fmt.Errorf("config: %w", err)
	}
	blobs := make([]layerBlob, len(e.Layers))
	for i, name := range e.Layers {
		dgst, size, err := a.blobOf(ctx, name)
		if err != nil {
			return Loaded{}, fmt.Errorf("layer %d: %w", i, err)
		}
		lc, err := layers.inspect(ctx, a.store, dgst)
		if err != nil {
			return Loaded{}, fmt.Errorf("%w: layer %s: %w", ErrInvalidArchive, name, err)
		}
		if lc.diffID != diffIDs[i] {
			return Loaded{}, invalid("layer %s: its uncompressed content is %s, the config says %s", name, lc.diffID, diffIDs[i])
		}
		blobs[i] = layerBlob{digest: dgst, size: size, compression: lc.compression}
	}
	data, target, err := buildManifest(config, blobs)
	if err != nil {
		return Loaded{}, err
	}
	if err := content.WriteBlob(ctx, a.store, ingestRef(target.Digest), bytes.NewReader(data), target.Digest, target.Size); err != nil {
		return Loaded{}, fmt.Errorf("store manifest: %w", err)
	}
	return Loaded{Names: names, Target: target}, nil
}

// parseRepoTags normalises a manifest.json entry's RepoTags, which must be
// tagged names ("busybox:latest").
func parseRepoTags(tags []string) ([]string, error) {
	var names []string
	for _, t := range tags {
		r, err := reference.Parse(t)
		if err != nil {
			return nil, invalid("RepoTags: %q: %v", t, err)
		}
		if r.IsID() || r.Digest() != "" {
			return nil, invalid("RepoTags: %q is not a tagged name", t)
		}
		if n := r.String(); !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	return names, nil
}
