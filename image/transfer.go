package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/berth-engine/berth/content"
	imgarchive "github.com/berth-engine/berth/image/archive"
	"github.com/berth-engine/berth/image/manifest"
	"github.com/berth-engine/berth/image/reference"
	"github.com/berth-engine/berth/internal/progress"
	"github.com/berth-engine/berth/snapshot"
	"github.com/berth-engine/berth/snapshot/archive"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// LoadOptions configure Load.
type LoadOptions struct {
	// Platform selects what to unpack from multi-platform archives; nil
	// means the store's platform.
	Platform *manifest.Platform
	// Progress receives per-layer progress; nil loads silently.
	Progress *progress.Progress
}

// LoadResult is one image Load recorded.
type LoadResult struct {
	Image *Image
	// Names are the references now pointing at it (full form).
	Names []string
}

// Load reads a docker-archive or an oci-archive (the format is detected)
// from r, stores its blobs, unpacks each image for the platform and
// records the images under the names the archive gives them.
func (s *Store) Load(ctx context.Context, r io.Reader, opts LoadOptions) ([]LoadResult, error) {
	// The archive's blobs are unreferenced until the images are recorded:
	// keep GC out for the whole load.
	unlock, err := s.gcLock(ctx, false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	tmp, err := os.MkdirTemp(s.root, "load-")
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	defer os.RemoveAll(tmp)
	loaded, err := imgarchive.Load(ctx, r, s.content, tmp)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	var out []LoadResult
	for _, ld := range loaded {
		img, err := s.unpackTarget(ctx, ld.Target, opts.Platform, reporter{opts.Progress})
		if err != nil {
			return out, fmt.Errorf("load: %w", err)
		}
		res := LoadResult{}
		if len(ld.Names) == 0 {
			if img, err = s.record(ctx, *img, "", ld.Target, ""); err != nil {
				return out, fmt.Errorf("load: %w", err)
			}
		}
		for _, n := range ld.Names {
			r, err := reference.Parse(n)
			if err != nil || r.IsID() {
				return out, fmt.Errorf("load: archive names %q: %w: %w", n, ErrInvalid, err)
			}
			if img, err = s.record(ctx, *img, r.String(), ld.Target, ""); err != nil {
				return out, fmt.Errorf("load: %w", err)
			}
			res.Names = append(res.Names, r.String())
		}
		res.Image = img
		out = append(out, res)
	}
	return out, nil
}

// unpackTarget unpacks the platform's image of target (a manifest or an
// index), whose blobs are in the store, and returns its (unrecorded)
// image. The caller holds the GC lock.
func (s *Store) unpackTarget(ctx context.Context, target ocispec.Descriptor, platform *manifest.Platform, rep reporter) (*Image, error) {
	mdesc := target
	data, err := content.ReadBlob(ctx, s.content, target.Digest)
	if err != nil {
		return nil, err
	}
	dec, err := manifest.Decode(target.MediaType, data)
	if err != nil {
		return nil, err
	}
	if dec.Index != nil {
		want := s.platform
		if platform != nil {
			want = platform.Normalize()
		}
		// Only children present in the store can be chosen.
		present := *dec.Index
		present.Manifests = nil
		for _, c := range dec.Index.Manifests {
			if _, err := s.content.Info(ctx, c.Digest); err == nil {
				present.Manifests = append(present.Manifests, c)
			}
		}
		if mdesc, err = manifest.Select(&present, want); err != nil {
			return nil, err
		}
	}
	m, err := s.readImageManifest(ctx, mdesc)
	if err != nil {
		return nil, err
	}
	cfgData, err := content.ReadBlob(ctx, s.content, m.Config.Digest)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(cfgData, &cfg); err != nil {
		return nil, fmt.Errorf("config %s: %w", m.Config.Digest, err)
	}
	jobs, err := layerJobs(m, cfg)
	if err != nil {
		return nil, err
	}
	l, err := s.newLease()
	if err != nil {
		return nil, err
	}
	defer l.release()
	_, size, err := s.fetchLayers(ctx, l, jobs, nil, nil, rep)
	if err != nil {
		return nil, err
	}
	return &Image{ID: m.Config.Digest, Manifest: mdesc, Size: size}, nil
}

// SaveOptions configure Save.
type SaveOptions struct {
	// Format is the archive format (docker-archive by default).
	Format imgarchive.Format
}

// Save writes the images refs name to w as one archive. A reference by
// name saves that name; by ID, the image with all its names.
func (s *Store) Save(ctx context.Context, w io.Writer, refs []string, opts SaveOptions) error {
	l, err := s.newLease()
	if err != nil {
		return err
	}
	defer l.release()
	var entries []imgarchive.Image
	for _, ref := range refs {
		img, err := s.Get(ctx, ref)
		if err != nil {
			return fmt.Errorf("save: %w", err)
		}
		if err := l.add(ctx, []digest.Digest{img.ID, img.Manifest.Digest}, nil); err != nil {
			return err
		}
		e := imgarchive.Image{Target: img.Manifest}
		if r, err := reference.Parse(ref); err == nil && !r.IsID() && r.Digest() == "" {
			e.Names = []string{r.String()}
			for _, n := range img.Names {
				if n.Ref == r.String() && opts.Format == imgarchive.FormatOCI {
					e.Target = n.Target
				}
			}
		} else {
			e.Names = img.RefStrings()
		}
		if e.Target.Digest != img.Manifest.Digest {
			p := platformOf(img.Manifest, s.platform).OCI()
			e.Platform = &p
		}
		entries = append(entries, e)
	}
	if err := imgarchive.Save(ctx, w, s.content, entries, opts.Format); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	return nil
}

func platformOf(desc ocispec.Descriptor, def manifest.Platform) manifest.Platform {
	if desc.Platform != nil {
		return manifest.FromOCI(desc.Platform)
	}
	return def
}

// ImportOptions configure Import.
type ImportOptions struct {
	// Name is the reference to give the image; "" leaves it dangling.
	Name string
	// Changes are Dockerfile instructions applied to the configuration.
	Changes []string
	// Message is the history comment; default "Imported from SOURCE".
	Message string
	// Source names where the tarball came from ("-" for standard input).
	Source string
	// Platform is the image's platform; nil means the store's.
	Platform *manifest.Platform
}

// Import creates a one-layer image from a root filesystem tarball (plain,
// gzip or zstd), as `docker import` does. The layer is kept uncompressed
// (its digest is its diff ID) until pushed or saved.
func (s *Store) Import(ctx context.Context, r io.Reader, opts ImportOptions) (*Image, error) {
	img, err := s.importTar(ctx, r, opts)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	return img, nil
}

func (s *Store) importTar(ctx context.Context, r io.Reader, opts ImportOptions) (*Image, error) {
	var name string
	if opts.Name != "" {
		ref, err := reference.Parse(opts.Name)
		if err != nil || ref.IsID() || ref.Digest() != "" {
			return nil, fmt.Errorf("%w: %q is not a valid repository[:tag]", ErrInvalid, opts.Name)
		}
		name = ref.String()
	}
	var cc ContainerConfig
	if err := ApplyChanges(&cc, opts.Changes); err != nil {
		return nil, err
	}
	platform := s.platform
	if opts.Platform != nil {
		platform = opts.Platform.Normalize()
	}
	unlock, err := s.gcLock(ctx, false)
	if err != nil {
		return nil, err
	}
	defer unlock()

	key := tmpSnapshotPrefix + "import-" + randomHex()
	if _, err := s.snaps.Prepare(ctx, key, "", nil); err != nil {
		return nil, err
	}
	committed := false
	defer func() {
		if !committed {
			s.snaps.Remove(context.WithoutCancel(ctx), key)
		}
	}()
	dr, _, err := archive.DecompressStream(r)
	if err != nil {
		return nil, err
	}
	defer dr.Close()
	w, err := s.content.Writer(ctx, "import-"+randomHex(), "", content.UnknownSize)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	size, err := s.snaps.ApplyLayer(ctx, key, io.TeeReader(dr, w))
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(w, dr); err != nil {
		return nil, err
	}
	layerSize := w.Status().Offset
	if err := w.Commit(ctx); err != nil {
		return nil, err
	}
	diffID := w.Digest()
	err = s.snaps.Commit(ctx, diffID.String(), key, map[string]string{labelSize: strconv.FormatInt(size, 10)})
	switch {
	case errors.Is(err, snapshot.ErrAlreadyExists):
	case err != nil:
		return nil, err
	default:
		committed = true
	}

	now := time.Now().UTC()
	src := opts.Source
	if src == "" {
		src = "-"
	}
	comment := opts.Message
	if comment == "" {
		comment = "Imported from " + src
	}
	cfg := ConfigFile{Config: cc}
	cfg.Created = &now
	cfg.Architecture = platform.Architecture
	cfg.OS = platform.OS
	cfg.Variant = platform.Variant
	cfg.RootFS = ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{diffID}}
	cfg.History = []ocispec.History{{Created: &now, Comment: comment}}
	cfgData, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	cfgDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(cfgData), Size: int64(len(cfgData))}
	mf := ocispec.Manifest{
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    cfgDesc,
		Layers:    []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayer, Digest: diffID, Size: layerSize}},
	}
	mf.SchemaVersion = 2
	mData, err := json.Marshal(mf)
	if err != nil {
		return nil, err
	}
	mDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(mData), Size: int64(len(mData))}
	for _, b := range []struct {
		d    ocispec.Descriptor
		data []byte
	}{{cfgDesc, cfgData}, {mDesc, mData}} {
		if err := s.putBlob(ctx, b.d, b.data, nil); err != nil {
			return nil, err
		}
	}
	return s.record(ctx, Image{ID: cfgDesc.Digest, Manifest: mDesc, Size: size}, name, mDesc, "")
}
