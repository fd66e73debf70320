package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/berth-engine/berth/content"
	"github.com/berth-engine/berth/image/manifest"
	"github.com/berth-engine/berth/image/reference"
	"github.com/berth-engine/berth/internal/progress"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
)

// PushOptions configure Push.
type PushOptions struct {
	// Progress receives per-layer progress; nil pushes silently.
	Progress *progress.Progress
}

// PushResult describes a finished push.
type PushResult struct {
	// Digest and Size are the pushed top-level manifest's (or index's).
	Digest digest.Digest
	Size   int64
	// Partial is set when a multi-platform name was pushed as its local
	// platform's manifest only, because the other platforms were never
	// pulled.
	Partial bool
}

// Push uploads the image named ref to ref's registry: blobs first (in
// parallel; ones the registry has are skipped and ones pulled from another
// repository of the same registry are mounted), then manifests, the tag
// last. A multi-platform name whose every platform is in the store is
// pushed as the whole index; otherwise the local platform's manifest.
// Non-distributable layers are not uploaded (image-spec).
func (s *Store) Push(ctx context.Context, ref reference.Ref, opts PushOptions) (*PushResult, error) {
	res, err := s.push(ctx, ref, opts)
	if err != nil {
		return nil, fmt.Errorf("push %s: %w", ref.Familiar(), err)
	}
	return res, nil
}

func (s *Store) push(ctx context.Context, ref reference.Ref, opts PushOptions) (*PushResult, error) {
	if ref.IsID() {
		return nil, fmt.Errorf("%w: an image ID names no repository to push to", ErrInvalid)
	}
	rep := reporter{opts.Progress}
	img, err := s.Get(ctx, ref.String())
	if err != nil {
		return nil, err
	}
	target := img.Manifest
	for _, n := range img.Names {
		if n.Ref == ref.String() {
			target = n.Target
		}
	}
	l, err := s.newLease()
	if err != nil {
		return nil, err
	}
	defer l.release()
	res := &PushResult{}
	manifests := []ocispec.Descriptor{img.Manifest}
	if target.Digest != img.Manifest.Digest {
		children, complete, err := s.indexChildren(ctx, target)
		if err != nil {
			return nil, err
		}
		if complete {
			manifests = children
		} else {
			target = img.Manifest
			res.Partial = true
		}
	}
	if err := l.add(ctx, []digest.Digest{target.Digest}, nil); err != nil {
		return nil, err
	}
	for _, md := range manifests {
		m, err := s.readImageManifest(ctx, md)
		if err != nil {
			return nil, err
		}
		blobs := append([]ocispec.Descriptor{m.Config}, m.Layers...)
		var ds []digest.Digest
		for _, b := range blobs {
			ds = append(ds, b.Digest)
		}
		if err := l.add(ctx, append(ds, md.Digest), nil); err != nil {
			return nil, err
		}
		if err := s.pushBlobs(ctx, ref, blobs, rep); err != nil {
			return nil, err
		}
		if md.Digest != target.Digest {
			data, err := content.ReadBlob(ctx, s.content, md.Digest)
			if err != nil {
				return nil, err
			}
			byDigest, err := reference.Parse(ref.Repository() + "@" + md.Digest.String())
			if err != nil {
				return nil, err
			}
			if _, err := s.remote.PushManifest(ctx, byDigest, md.MediaType, data); err != nil {
				return nil, err
			}
		}
	}
	data, err := content.ReadBlob(ctx, s.content, target.Digest)
	if err != nil {
		return nil, err
	}
	if _, err := s.remote.PushManifest(ctx, ref, target.MediaType, data); err != nil {
		return nil, err
	}
	res.Digest, res.Size = target.Digest, target.Size
	if _, err := s.record(ctx, Image{ID: img.ID, Manifest: img.Manifest}, "", ocispec.Descriptor{}, ref.Repository()+"@"+target.Digest.String()); err != nil {
		return nil, err
	}
	return res, nil
}

// indexChildren returns the image manifests of the index desc and whether
// every one of them (with its config and layers) is in the store.
func (s *Store) indexChildren(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, bool, error) {
	data, err := content.ReadBlob(ctx, s.content, desc.Digest)
	if err != nil {
		return nil, false, err
	}
	dec, err := manifest.Decode(desc.MediaType, data)
	if err != nil {
		return nil, false, err
	}
	if dec.Index == nil {
		return []ocispec.Descriptor{desc}, true, nil
	}
	var out []ocispec.Descriptor
	for _, c := range dec.Index.Manifests {
		m, err := s.readImageManifest(ctx, c)
		if err != nil {
			if errors.Is(err, content.ErrNotFound) {
				return nil, false, nil
			}
			return nil, false, err
		}
		for _, b := range append([]ocispec.Descriptor{m.Config}, m.Layers...) {
			if _, err := s.content.Info(ctx, b.Digest); err != nil {
				if l, lerr := manifest.ParseLayer(b); lerr == nil && l.NonDistributable {
					continue
				}
				return nil, false, nil
			}
		}
		out = append(out, c)
	}
	return out, true, nil
}

func (s *Store) readImageManifest(ctx context.Context, desc ocispec.Descriptor) (*manifest.Manifest, error) {
	data, err := content.ReadBlob(ctx, s.content, desc.Digest)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", desc.Digest, err)
	}
	dec, err := manifest.Decode(desc.MediaType, data)
	if err != nil {
		return nil, err
	}
	if dec.Manifest == nil {
		return nil, fmt.Errorf("%w: %s is not an image manifest", manifest.ErrInvalid, desc.Digest)
	}
	return dec.Manifest, nil
}

// pushBlobs uploads blobs the registry lacks, several at a time.
func (s *Store) pushBlobs(ctx context.Context, ref reference.Ref, blobs []ocispec.Descriptor, rep reporter) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(maxParallelLayers)
	for _, b := range blobs {
		if l, err := manifest.ParseLayer(b); err == nil && l.NonDistributable {
			rep.item(b.Digest, "", b.Size).done("Skipped foreign layer")
			continue
		}
		it := rep.item(b.Digest, "Preparing", b.Size)
		g.Go(func() error {
			if err := s.pushBlob(gctx, ref, b, it); err != nil {
				it.fail(err)
				return fmt.Errorf("blob %s: %w", b.Digest, err)
			}
			return nil
		})
	}
	return g.Wait()
}

func (s *Store) pushBlob(ctx context.Context, ref reference.Ref, b ocispec.Descriptor, it *item) error {
	info, err := s.content.Info(ctx, b.Digest)
	if err != nil {
		return err
	}
	var mountFrom []string
	if repo, ok := info.Labels[labelSourcePrefix+ref.Domain()]; ok && repo != ref.Path() {
		mountFrom = append(mountFrom, repo)
	}
	open := func() (io.ReadCloser, error) {
		ra, err := s.content.ReaderAt(ctx, b.Digest)
		if err != nil {
			return nil, err
		}
		it.set(0)
		it.action("Pushing")
		return readCloser{Reader: it.reader(io.NewSectionReader(ra, 0, ra.Size())), Closer: ra}, nil
	}
	skipped, err := s.remote.PushBlob(ctx, ref, b, open, mountFrom)
	if err != nil {
		return err
	}
	switch {
	case skipped && len(mountFrom) > 0:
		it.done("Mounted from " + strings.TrimPrefix(mountFrom[0], "library/"))
	case skipped:
		it.done("Layer already exists")
	default:
		it.done("Pushed")
	}
	return nil
}

type readCloser struct {
	io.Reader
	io.Closer
}
