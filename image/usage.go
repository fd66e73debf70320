package image

import (
	"context"
	"fmt"
	"time"

	"github.com/berth-engine/berth/content"
	"github.com/berth-engine/berth/snapshot"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// HistoryEntry is one line of `berth history`.
type HistoryEntry struct {
	// ID is the image ID for the newest entry and "<missing>" for the
	// others (their intermediate images are not local), as docker shows.
	ID         string
	Created    time.Time
	CreatedBy  string
	Comment    string
	Size       int64 // unpacked size of the layer the step made (0 for empty layers)
	EmptyLayer bool
	Tags       []string
}

// History returns the image's history, newest first, pairing the
// configuration's history entries with its layers.
func (s *Store) History(ctx context.Context, img *Image) ([]HistoryEntry, error) {
	cfg, err := s.Config(ctx, img)
	if err != nil {
		return nil, err
	}
	sizes := s.layerSizes(ctx, cfg.RootFS.DiffIDs)
	hist := cfg.History
	if len(hist) == 0 {
		// No history: one synthetic entry per layer.
		for range cfg.RootFS.DiffIDs {
			hist = append(hist, ocispec.History{Created: cfg.Created})
		}
	}
	var out []HistoryEntry
	layer := 0
	for _, h := range hist {
		e := HistoryEntry{ID: "<missing>", CreatedBy: h.CreatedBy, Comment: h.Comment, EmptyLayer: h.EmptyLayer}
		if h.Created != nil {
			e.Created = *h.Created
		}
		if !h.EmptyLayer && layer < len(sizes) {
			e.Size = sizes[layer]
			layer++
		}
		out = append(out, e)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	if len(out) > 0 {
		out[0].ID = img.ID.String()
		for _, n := range img.Names {
			out[0].Tags = append(out[0].Tags, familiar(n.Ref))
		}
	}
	return out, nil
}

// layerSizes returns each layer's unpacked size from its snapshot.
func (s *Store) layerSizes(ctx context.Context, diffIDs []digest.Digest) []int64 {
	sizes := make([]int64, len(diffIDs))
	for i := range diffIDs {
		if info, err := s.snaps.Stat(ctx, identity.ChainID(diffIDs[:i+1]).String()); err == nil {
			sizes[i] = sizeLabel(info)
		}
	}
	return sizes
}

// ImageDiskUsage is one image's share of the store, as `system df -v`
// shows it.
type ImageDiskUsage struct {
	Image      *Image
	Size       int64 // blobs and snapshots the image references
	SharedSize int64 // of which other images reference too
	Containers int
}

// DiskUsage is the store's disk usage, as `system df` shows it.
type DiskUsage struct {
	Images []ImageDiskUsage
	// Total is what the images take on disk: their blobs (compressed, as
	// pulled) plus their unpacked snapshots, each counted once.
	Total int64
	// Active is the number of images containers use.
	Active int
	// Reclaimable is what removing every image no container uses frees.
	Reclaimable int64
	// Unreferenced is what a GC would free now (leftovers no image holds).
	Unreferenced int64
}

// DiskUsage measures the store: real sizes from the blob files and the
// snapshots' directories.
func (s *Store) DiskUsage(ctx context.Context) (*DiskUsage, error) {
	imgs, err := s.List(ctx)
	if err != nil {
		return nil, err
	}
	usage, err := s.usage(ctx)
	if err != nil {
		return nil, err
	}
	blobSize := map[digest.Digest]int64{}
	var blobTotal int64
	if err := s.content.Walk(ctx, func(info content.Info) error {
		blobSize[info.Digest] = info.Size
		blobTotal += info.Size
		return nil
	}); err != nil {
		return nil, fmt.Errorf("disk usage: %w", err)
	}
	snapSize := map[string]int64{}
	var snapTotal int64
	if err := s.snaps.Walk(ctx, func(info snapshot.Info) error {
		u, err := s.snaps.Usage(ctx, info.Key)
		if err == nil {
			snapSize[info.Key] = u.Size
			snapTotal += u.Size
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("disk usage: %w", err)
	}
	type res struct {
		blobs map[digest.Digest]bool
		snaps map[string]bool
	}
	refs := make([]res, len(imgs))
	count := map[string]int{}
	for i, img := range imgs {
		r := res{map[digest.Digest]bool{}, map[string]bool{}}
		roots := []ocispec.Descriptor{img.Manifest}
		for _, n := range img.Names {
			roots = append(roots, n.Target)
		}
		r.blobs[img.ID] = true
		for _, d := range roots {
			if err := s.markDesc(ctx, d, r.blobs, r.snaps); err != nil {
				return nil, err
			}
		}
		refs[i] = r
		for d := range r.blobs {
			count["b"+d.String()]++
		}
		for k := range r.snaps {
			count["s"+k]++
		}
	}
	du := &DiskUsage{}
	referenced := map[string]bool{}
	activeSet := map[string]bool{}
	for i, img := range imgs {
		u := ImageDiskUsage{Image: img, Containers: usage[img.ID].Containers}
		if u.Containers > 0 {
			du.Active++
		}
		add := func(key string, n int64) {
			u.Size += n
			if count[key] > 1 {
				u.SharedSize += n
			}
			if !referenced[key] {
				referenced[key] = true
				du.Total += n
			}
			if u.Containers > 0 && !activeSet[key] {
				activeSet[key] = true
				du.Reclaimable -= n
			}
		}
		for d := range refs[i].blobs {
			add("b"+d.String(), blobSize[d])
		}
		for k := range refs[i].snaps {
			add("s"+k, snapSize[k])
		}
		du.Images = append(du.Images, u)
	}
	du.Reclaimable += du.Total
	du.Unreferenced = blobTotal + snapTotal - du.Total
	if du.Unreferenced < 0 {
		du.Unreferenced = 0
	}
	return du, nil
}
