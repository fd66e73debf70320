package image

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/berth-engine/berth/content"
	"github.com/berth-engine/berth/image/manifest"
	"github.com/berth-engine/berth/internal/failpoint"
	"github.com/berth-engine/berth/snapshot"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
)

// GCResult reports what a garbage collection removed.
type GCResult struct {
	Blobs     int   // content blobs removed
	Snapshots int   // snapshots removed
	Reclaimed int64 // bytes freed (blob sizes plus snapshot disk usage)
}

// GC removes every blob and snapshot that no image, no live lease and no
// extra root (containers) references. References are followed from the
// image records: index → manifests present → config and layers; config →
// diff IDs → chain IDs → snapshots and their parents. Nothing referenced is
// ever removed, and a pull, load or import running in another process is
// safe: its lease holds what it is creating.
func (s *Store) GC(ctx context.Context) (*GCResult, error) {
	unlock, err := s.gcLock(ctx, true)
	if err != nil {
		return nil, err
	}
	defer unlock()
	res := &GCResult{}
	blobs, snaps, err := s.mark(ctx)
	if err != nil {
		return nil, fmt.Errorf("gc: %w", err)
	}
	err = s.content.Walk(ctx, func(info content.Info) error {
		if blobs[info.Digest] {
			return nil
		}
		if err := s.content.Delete(ctx, info.Digest); err != nil && !errors.Is(err, content.ErrNotFound) {
			return err
		}
		res.Blobs++
		res.Reclaimed += info.Size
		failpoint.Fire("image.gc.blob-removed")
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("gc: remove blobs: %w", err)
	}
	if err := s.sweepSnapshots(ctx, snaps, res); err != nil {
		return nil, fmt.Errorf("gc: remove snapshots: %w", err)
	}
	return res, nil
}

// mark returns the referenced blobs and snapshot keys.
func (s *Store) mark(ctx context.Context) (map[digest.Digest]bool, map[string]bool, error) {
	blobs := map[digest.Digest]bool{}
	snaps := map[string]bool{}
	// Leases first: an operation records its image and then releases its
	// lease, so reading leases before images never misses both.
	ls, err := s.liveLeases()
	if err != nil {
		return nil, nil, err
	}
	for _, d := range ls.Content {
		blobs[d] = true
	}
	for _, k := range ls.Snapshots {
		snaps[k] = true
	}
	var imgs []*Image
	if err := s.db.view(func(tx *bolt.Tx) error {
		var err error
		imgs, err = allImages(tx)
		return err
	}); err != nil {
		return nil, nil, err
	}
	for _, img := range imgs {
		roots := []ocispec.Descriptor{img.Manifest}
		for _, n := range img.Names {
			roots = append(roots, n.Target)
		}
		blobs[img.ID] = true
		for _, d := range roots {
			if err := s.markDesc(ctx, d, blobs, snaps); err != nil {
				return nil, nil, err
			}
		}
	}
	return blobs, snaps, nil
}

// markDesc marks desc and, when it is a manifest or index present in the
// store, everything it references.
func (s *Store) markDesc(ctx context.Context, desc ocispec.Descriptor, blobs map[digest.Digest]bool, snaps map[string]bool) error {
	if blobs[desc.Digest] {
		return nil
	}
	blobs[desc.Digest] = true
	switch desc.MediaType {
	case manifest.MediaTypeOCIIndex, manifest.MediaTypeDockerManifestList,
		manifest.MediaTypeOCIManifest, manifest.MediaTypeDockerManifest:
	default:
		return nil
	}
	data, err := content.ReadBlob(ctx, s.content, desc.Digest)
	if errors.Is(err, content.ErrNotFound) {
		return nil // an index child of another platform, never fetched
	}
	if err != nil {
		return err
	}
	dec, err := manifest.Decode(desc.MediaType, data)
	if err != nil {
		return nil // unreadable: keep it, follow nothing
	}
	if dec.Index != nil {
		for _, c := range dec.Index.Manifests {
			if err := s.markDesc(ctx, c, blobs, snaps); err != nil {
				return err
			}
		}
		return nil
	}
	m := dec.Manifest
	blobs[m.Config.Digest] = true
	for _, l := range m.Layers {
		blobs[l.Digest] = true
	}
	if m.Subject != nil {
		blobs[m.Subject.Digest] = true
	}
	cfgData, err := content.ReadBlob(ctx, s.content, m.Config.Digest)
	if err != nil {
		return nil
	}
	cfg, err := decodeConfig(cfgData)
	if err != nil {
		return nil
	}
	for i := range cfg.RootFS.DiffIDs {
		snaps[identity.ChainID(cfg.RootFS.DiffIDs[:i+1]).String()] = true
	}
	return nil
}

// sweepSnapshots removes snapshots that are neither marked, nor a parent
// of a kept one, nor an active snapshot that is not berth's temporary
// (containers' snapshots are theirs), children first.
func (s *Store) sweepSnapshots(ctx context.Context, marked map[string]bool, res *GCResult) error {
	infos := map[string]snapshot.Info{}
	if err := s.snaps.Walk(ctx, func(info snapshot.Info) error {
		infos[info.Key] = info
		return nil
	}); err != nil {
		return err
	}
	keep := map[string]bool{}
	keepChain := func(k string) {
		for k != "" && !keep[k] {
			keep[k] = true
			k = infos[k].Parent
		}
	}
	for k, info := range infos {
		if marked[k] || info.Kind != snapshot.KindCommitted && !strings.HasPrefix(k, tmpSnapshotPrefix) {
			keepChain(k)
		}
	}
	for {
		removed := 0
		children := map[string]int{}
		for _, info := range infos {
			children[info.Parent]++
		}
		for k := range infos {
			if keep[k] || children[k] > 0 {
				continue
			}
			u, _ := s.snaps.Usage(ctx, k)
			if err := s.snaps.Remove(ctx, k); err != nil {
				if errors.Is(err, snapshot.ErrNotFound) || errors.Is(err, snapshot.ErrHasChildren) {
					delete(infos, k)
					continue
				}
				return err
			}
			delete(infos, k)
			res.Snapshots++
			res.Reclaimed += u.Size
			removed++
		}
		if removed == 0 {
			return nil
		}
	}
}

// Prune removes dangling images (all images no container uses when all is
// set) and then collects garbage.
func (s *Store) Prune(ctx context.Context, all bool, keep func(*Image) bool) ([]*RemoveResult, *GCResult, error) {
	usage, err := s.usage(ctx)
	if err != nil {
		return nil, nil, err
	}
	imgs, err := s.List(ctx)
	if err != nil {
		return nil, nil, err
	}
	var out []*RemoveResult
	for _, img := range imgs {
		if usage[img.ID].Containers > 0 || !all && !img.Dangling() || keep != nil && keep(img) {
			continue
		}
		r, err := s.Remove(ctx, img.ID.String(), true)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return out, nil, err
		}
		out = append(out, r)
	}
	gc, err := s.GC(ctx)
	if err != nil {
		return out, nil, err
	}
	return out, gc, nil
}
