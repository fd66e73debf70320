package image

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/berth-engine/berth/content"
	"github.com/berth-engine/berth/image/manifest"
	"github.com/berth-engine/berth/image/reference"
	"github.com/berth-engine/berth/internal/failpoint"
	"github.com/berth-engine/berth/internal/progress"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
)

// maxConfigSize bounds an image configuration read into memory.
const maxConfigSize = 8 << 20

// maxParallelLayers is how many layers a pull downloads and unpacks at once.
const maxParallelLayers = 4

// labelSourcePrefix + registry host labels a blob with the repository it
// was pulled from, so that a push to the same registry can mount it from
// there instead of uploading it.
const labelSourcePrefix = "berth.source."

// PullOptions configure Pull.
type PullOptions struct {
	// Platform selects the manifest of a multi-platform image; nil means
	// the store's platform.
	Platform *manifest.Platform
	// Progress receives per-layer progress; nil pulls silently.
	Progress *progress.Progress
}

// PullResult describes a finished pull.
type PullResult struct {
	// Image is the local image now named by the reference.
	Image *Image
	// Digest is the digest the registry serves the reference as (an
	// index for multi-platform images).
	Digest digest.Digest
	// Downloaded reports whether anything new was fetched or the name
	// moved; false means the image was up to date.
	Downloaded bool
}

// Pull fetches ref from its registry (or a mirror), stores its blobs,
// unpacks its layers into snapshots and records the image under ref's
// name. Layers download in parallel and each is decompressed and unpacked
// while it downloads, its digests verified on the fly. A pull interrupted
// at any point (even by SIGKILL) leaves a store the next command uses, and
// a re-pull resumes partial downloads.
func (s *Store) Pull(ctx context.Context, ref reference.Ref, opts PullOptions) (*PullResult, error) {
	if ref.IsID() {
		return nil, fmt.Errorf("pull %s: %w: an image ID names no repository to pull from", ref.ID(), ErrInvalid)
	}
	res, err := s.pull(ctx, ref, opts)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", ref.Familiar(), err)
	}
	return res, nil
}

func (s *Store) pull(ctx context.Context, ref reference.Ref, opts PullOptions) (*PullResult, error) {
	rep := reporter{opts.Progress}
	platform := s.platform
	if opts.Platform != nil {
		platform = opts.Platform.Normalize()
	}
	l, err := s.newLease()
	if err != nil {
		return nil, err
	}
	defer l.release()

	target, err := s.remote.Resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	source := labelSourcePrefix + ref.Domain()
	labels := map[string]string{source: ref.Path()}
	fresh := false
	data, isNew, err := s.fetchManifest(ctx, l, ref, target, labels)
	if err != nil {
		return nil, err
	}
	fresh = fresh || isNew
	failpoint.Fire("image.pull.manifest-stored")
	dec, err := manifest.Decode(target.MediaType, data)
	if err != nil {
		return nil, err
	}
	mdesc := target
	if dec.Index != nil {
		child, err := manifest.Select(dec.Index, platform)
		if err != nil {
			return nil, err
		}
		data, isNew, err = s.fetchManifest(ctx, l, ref, child, labels)
		if err != nil {
			return nil, err
		}
		fresh = fresh || isNew
		if dec, err = manifest.Decode(child.MediaType, data); err != nil {
			return nil, err
		}
		if dec.Manifest == nil {
			return nil, fmt.Errorf("%w: index entry %s is not an image manifest", manifest.ErrInvalid, child.Digest)
		}
		mdesc = child
	}
	m := dec.Manifest
	cfgData, isNew, err := s.fetchSmallBlob(ctx, l, ref, m.Config, labels)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	fresh = fresh || isNew
	failpoint.Fire("image.pull.config-stored")
	var cfg ocispec.Image
	if err := json.Unmarshal(cfgData, &cfg); err != nil {
		return nil, fmt.Errorf("config %s: %w", m.Config.Digest, err)
	}
	if cfg.OS != "" && cfg.OS != platform.OS && dec.Index == nil {
		rep.printf("WARNING: The requested image's platform (%s/%s) does not match the detected host platform (%s)", cfg.OS, cfg.Architecture, platform)
	}
	jobs, err := layerJobs(m, cfg)
	if err != nil {
		return nil, err
	}
	fetchFor := func(j layerJob) fetchFunc {
		return func(ctx context.Context, offset int64) (io.ReadCloser, error) {
			return s.remote.FetchBlob(ctx, ref, j.desc, offset)
		}
	}
	downloaded, size, err := s.fetchLayers(ctx, l, jobs, fetchFor, labels, rep)
	if err != nil {
		return nil, err
	}
	fresh = fresh || downloaded
	img := Image{ID: m.Config.Digest, Manifest: mdesc, Size: size}
	var name string
	if ref.Tag() != "" {
		name = ref.String()
		if ref.Digest() != "" {
			// name:tag@digest: docker records the name with the tag only.
			if r, err := reference.Parse(ref.Repository() + ":" + ref.Tag()); err == nil {
				name = r.String()
			}
		}
	}
	failpoint.Fire("image.pull.before-record")
	prev, _ := s.Get(ctx, name)
	rec, err := s.record(ctx, img, name, target, ref.Repository()+"@"+target.Digest.String())
	if err != nil {
		return nil, err
	}
	failpoint.Fire("image.pull.recorded")
	if name != "" && (prev == nil || prev.ID != rec.ID) {
		fresh = true
	}
	return &PullResult{Image: rec, Digest: target.Digest, Downloaded: fresh}, nil
}

// fetchManifest returns a manifest's bytes, from the store or the
// registry (then stored); isNew says it was downloaded.
func (s *Store) fetchManifest(ctx context.Context, l *lease, ref reference.Ref, desc ocispec.Descriptor, labels map[string]string) ([]byte, bool, error) {
	if err := l.add(ctx, []digest.Digest{desc.Digest}, nil); err != nil {
		return nil, false, err
	}
	if data, err := content.ReadBlob(ctx, s.content, desc.Digest); err == nil {
		return data, false, nil
	}
	data, err := s.remote.FetchManifest(ctx, ref, desc)
	if err != nil {
		return nil, false, err
	}
	if err := s.putBlob(ctx, desc, data, labels); err != nil {
		return nil, false, err
	}
	return data, true, nil
}

// fetchSmallBlob returns a small blob (a config), from the store or the
// registry (then stored).
func (s *Store) fetchSmallBlob(ctx context.Context, l *lease, ref reference.Ref, desc ocispec.Descriptor, labels map[string]string) ([]byte, bool, error) {
	if err := l.add(ctx, []digest.Digest{desc.Digest}, nil); err != nil {
		return nil, false, err
	}
	if data, err := content.ReadBlob(ctx, s.content, desc.Digest); err == nil {
		return data, false, nil
	}
	if desc.Size > maxConfigSize {
		return nil, false, fmt.Errorf("%w: blob %s is %d bytes, more than the %d a configuration may have", manifest.ErrInvalid, desc.Digest, desc.Size, maxConfigSize)
	}
	rc, err := s.remote.FetchBlob(ctx, ref, desc, 0)
	if err != nil {
		return nil, false, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, desc.Size+1))
	if err != nil {
		return nil, false, fmt.Errorf("fetch %s: %w", desc.Digest, err)
	}
	if err := s.putBlob(ctx, desc, data, labels); err != nil {
		return nil, false, err
	}
	return data, true, nil
}

// putBlob stores data as desc (verifying it).
func (s *Store) putBlob(ctx context.Context, desc ocispec.Descriptor, data []byte, labels map[string]string) error {
	if int64(len(data)) != desc.Size {
		return fmt.Errorf("blob %s: %w: got %d bytes, want %d", desc.Digest, content.ErrSizeMismatch, len(data), desc.Size)
	}
	return content.WriteBlob(ctx, s.content, "put-"+desc.Digest.String(), bytes.NewReader(data), desc.Digest, desc.Size, content.WithLabels(labels))
}

// layerJob is one layer of an image being pulled, loaded or imported.
type layerJob struct {
	desc    ocispec.Descriptor
	diffID  digest.Digest
	chainID digest.Digest
	parent  digest.Digest // chain ID of the layer below ("" for the base)
}

// layerJobs pairs a manifest's layers with the configuration's diff IDs.
func layerJobs(m *manifest.Manifest, cfg ocispec.Image) ([]layerJob, error) {
	diffIDs := cfg.RootFS.DiffIDs
	if len(diffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("%w: the manifest has %d layers but the configuration %d diff IDs", manifest.ErrInvalid, len(m.Layers), len(diffIDs))
	}
	jobs := make([]layerJob, len(m.Layers))
	for i, d := range m.Layers {
		if _, err := manifest.ParseLayer(d); err != nil {
			return nil, err
		}
		if err := manifest.ValidateDigest(diffIDs[i]); err != nil {
			return nil, fmt.Errorf("%w: diff ID %d: %w", manifest.ErrInvalid, i, err)
		}
		jobs[i] = layerJob{desc: d, diffID: diffIDs[i], chainID: identity.ChainID(diffIDs[:i+1])}
		if i > 0 {
			jobs[i].parent = jobs[i-1].chainID
		}
	}
	return jobs, nil
}

// fetchLayers makes sure every layer's blob is in the content store and
// its snapshot is committed, downloading and unpacking what is missing,
// several layers at a time. It returns whether anything was downloaded and
// the image's unpacked size.
func (s *Store) fetchLayers(ctx context.Context, l *lease, jobs []layerJob, fetchFor func(layerJob) fetchFunc, labels map[string]string, rep reporter) (bool, int64, error) {
	var blobs []digest.Digest
	var snaps []string
	for _, j := range jobs {
		blobs = append(blobs, j.desc.Digest)
		snaps = append(snaps, j.chainID.String())
	}
	if err := l.add(ctx, blobs, snaps); err != nil {
		return false, 0, err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(maxParallelLayers)
	done := make([]chan struct{}, len(jobs))
	for i := range done {
		done[i] = make(chan struct{})
	}
	downloaded := make([]bool, len(jobs))
	sizes := make([]int64, len(jobs))
	items := make([]*item, len(jobs))
	for i := range jobs {
		items[i] = rep.item(jobs[i].desc.Digest, "Waiting", jobs[i].desc.Size)
	}
	for i := range jobs {
		var prev <-chan struct{}
		if i > 0 {
			prev = done[i-1]
		}
		g.Go(func() error {
			defer close(done[i])
			var fetch fetchFunc
			if fetchFor != nil {
				fetch = fetchFor(jobs[i])
			}
			d, size, err := s.ensureLayer(gctx, l, jobs[i], fetch, labels, prev, items[i])
			if err != nil {
				items[i].fail(err)
				return fmt.Errorf("layer %s: %w", jobs[i].desc.Digest, err)
			}
			downloaded[i], sizes[i] = d, size
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return false, 0, err
	}
	any, total := false, int64(0)
	for i := range jobs {
		any = any || downloaded[i]
		total += sizes[i]
	}
	return any, total, nil
}

// errParentFailed stops a layer whose parent layer failed.
var errParentFailed = errors.New("a lower layer failed")

// waitParent waits until the layer below has finished (prev closed) and
// checks that its snapshot exists.
func (s *Store) waitParent(ctx context.Context, prev <-chan struct{}, parent digest.Digest) error {
	if prev != nil {
		select {
		case <-prev:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if parent == "" {
		return nil
	}
	if _, err := s.snaps.Stat(ctx, parent.String()); err != nil {
		return fmt.Errorf("%w: %w", errParentFailed, err)
	}
	return nil
}
