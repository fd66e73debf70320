package archive

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-engine/berth/content"
	"github.com/berth-engine/berth/image/manifest"
	"github.com/berth-engine/berth/image/reference"
	tararchive "github.com/berth-engine/berth/snapshot/archive"
)

// annotationImageName is containerd's index.json annotation carrying an
// image's full name; podman reads it too.
const annotationImageName = "io.containerd.image.name"

// Image is an image to save.
type Image struct {
	// Names are the image's references, normalised
	// ("docker.io/library/busybox:latest"); none for a dangling image.
	Names []string
	// Target is the image's manifest or index in the store.
	Target ocispec.Descriptor
	// Platform selects the manifest to save when Target is an index and
	// the format is FormatDocker, which holds one platform per image. Nil
	// means the only manifest of the index that is in the store. It is
	// ignored otherwise.
	Platform *ocispec.Platform
}

// Save writes the images, read from store, to w as an archive of the given
// format (see the package documentation). Blobs shared by images are written
// once. On error, what was written to w is not a usable archive.
func Save(ctx context.Context, w io.Writer, store *content.Store, images []Image, format Format) error {
	var err error
	switch format {
	case FormatDocker:
		err = saveDocker(ctx, w, store, images)
	case FormatOCI:
		err = saveOCI(ctx, w, store, images)
	default:
		err = fmt.Errorf("%w %v", ErrUnknownFormat, format)
	}
	if err != nil {
		return fmt.Errorf("save %s: %w", format, err)
	}
	return nil
}

// parseNames parses and normalises image names, refusing image IDs.
func parseNames(names []string) ([]reference.Ref, error) {
	refs := make([]reference.Ref, 0, len(names))
	for _, n := range names {
		r, err := reference.Parse(n)
		if err != nil {
			return nil, fmt.Errorf("image name %q: %w", n, err)
		}
		if r.IsID() {
			return nil, fmt.Errorf("image name %q is an image ID, not a name", n)
		}
		refs = append(refs, r)
	}
	return refs, nil
}

// targetDescriptor returns the index.json entry of a target named ref (nil:
// unnamed).
func targetDescriptor(target ocispec.Descriptor, name string, tag string) ocispec.Descriptor {
	d := ocispec.Descriptor{MediaType: target.MediaType, Digest: target.Digest, Size: target.Size, Platform: target.Platform}
	if name != "" {
		d.Annotations = map[string]string{annotationImageName: name}
		if tag != "" {
			d.Annotations[ocispec.AnnotationRefName] = tag
		}
	}
	return d
}

// writeIndex writes the layout's index.json listing entries.
func writeIndex(lw *layoutWriter, entries []ocispec.Descriptor) error {
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: entries}
	idx.SchemaVersion = 2
	if idx.Manifests == nil {
		idx.Manifests = []ocispec.Descriptor{}
	}
	data, err := json.Marshal(idx)
	if err != nil {
		return fmt.Errorf("encode index.json: %w", err)
	}
	return lw.writeFile(ocispec.ImageIndexFile, data)
}

// writeLayoutVersion writes the oci-layout file.
func writeLayoutVersion(lw *layoutWriter) error {
	data, err := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	if err != nil {
		return fmt.Errorf("encode oci-layout: %w", err)
	}
	return lw.writeFile(ocispec.ImageLayoutFile, data)
}

// saveOCI writes an oci-archive: the images' blobs as stored, and one
// index.json entry per name.
func saveOCI(ctx context.Context, w io.Writer, store *content.Store, images []Image) error {
	lw := newLayoutWriter(ctx, w)
	if err := writeLayoutVersion(lw); err != nil {
		return err
	}
	var entries []ocispec.Descriptor
	for _, img := range images {
		refs, err := parseNames(img.Names)
		if err != nil {
			return err
		}
		target := img.Target
		mediaType, err := copyTree(ctx, lw, store, target, 0)
		if err != nil {
			return fmt.Errorf("image %s: %w", target.Digest, err)
		}
		target.MediaType = mediaType
		if len(refs) == 0 {
			entries = append(entries, targetDescriptor(target, "", ""))
		}
		for _, r := range refs {
			entries = append(entries, targetDescriptor(target, r.String(), r.Tag()))
		}
	}
	if err := writeIndex(lw, entries); err != nil {
		return err
	}
	return lw.close()
}

// maxIndexDepth bounds the nesting of indexes.
const maxIndexDepth = 4

// copyTree writes the manifest or index desc and what it references that a
// manifest needs (config and layers, all required except non-distributable
// layers) or an index has in the store (manifests absent from the store are
// skipped, but at least one must be there). It returns the document's
// media type (desc's, or the detected one when desc has none).
func copyTree(ctx context.Context, lw *layoutWriter, store *content.Store, desc ocispec.Descriptor, depth int) (string, error) {
	if depth > maxIndexDepth {
		return "", fmt.Errorf("indexes nested more than %d deep", maxIndexDepth)
	}
	doc, data, err := readDocument(ctx, store, desc)
	if err != nil {
		return "", err
	}
	if lw.hasBlob(desc.Digest) {
		return doc.MediaType, nil
	}
	if doc.Kind.IsIndex() {
		found := 0
		for _, child := range doc.Index.Manifests {
			ok, err := present(ctx, store, child.Digest)
			if err != nil {
				return "", err
			}
			if !ok || !isDocument(child.MediaType) {
				continue
			}
			if _, err := copyTree(ctx, lw, store, child, depth+1); err != nil {
				return "", fmt.Errorf("index %s: %w", desc.Digest, err)
			}
			found++
		}
		if found == 0 {
			return "", fmt.Errorf("index %s: none of its manifests is in the store: %w", desc.Digest, content.ErrNotFound)
		}
	} else {
		if err := lw.copyBlob(store, doc.Manifest.Config); err != nil {
			return "", fmt.Errorf("manifest %s: config: %w", desc.Digest, err)
		}
		for _, l := range doc.Manifest.Layers {
			if err := copyLayer(ctx, lw, store, l); err != nil {
				return "", fmt.Errorf("manifest %s: %w", desc.Digest, err)
			}
		}
	}
	if err := lw.writeBlobBytes(desc.Digest, data); err != nil {
		return "", err
	}
	return doc.MediaType, nil
}

// copyLayer writes a layer blob, or nothing for a non-distributable layer
// that is not in the store (its descriptor says where to fetch it).
func copyLayer(ctx context.Context, lw *layoutWriter, store *content.Store, l ocispec.Descriptor) error {
	if info, err := manifest.ParseLayer(l); err == nil && info.NonDistributable {
		ok, err := present(ctx, store, l.Digest)
		if err != nil || !ok {
			return err
		}
	}
	if err := lw.copyBlob(store, l); err != nil {
		return fmt.Errorf("layer %s: %w", l.Digest, err)
	}
	return nil
}

// dockerImage is one image of a docker-archive: a config and its layers.
type dockerImage struct {
	config     ocispec.Descriptor
	configData []byte
	layers     []ocispec.Descriptor // the layer blobs in the store
	diffIDs    []digest.Digest
	names      []reference.Ref
}

// dockerManifestEntry is an entry of a docker-archive's manifest.json.
type dockerManifestEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// saveDocker writes a docker-archive.
func saveDocker(ctx context.Context, w io.Writer, store *content.Store, images []Image) error {
	// Resolve every image before writing anything: mistakes in the request
	// fail fast, and images with the same config become one.
	var planned []*dockerImage
	byConfig := map[digest.Digest]*dockerImage{}
	for _, img := range images {
		di, err := planDockerImage(ctx, store, img)
		if err != nil {
			return fmt.Errorf("image %s: %w", img.Target.Digest, err)
		}
		if prev, ok := byConfig[di.config.Digest]; ok {
			prev.names = append(prev.names, di.names...)
			continue
		}
		byConfig[di.config.Digest] = di
		planned = append(planned, di)
	}

	lw := newLayoutWriter(ctx, w)
	if err := writeLayoutVersion(lw); err != nil {
		return err
	}
	var (
		entries      []ocispec.Descriptor
		manifestJSON = []dockerManifestEntry{}
		repositories = map[string]map[string]string{}
		layers       = layerCache{}
	)
	for _, di := range planned {
		target, err := writeDockerImage(ctx, lw, store, di, layers)
		if err != nil {
			return fmt.Errorf("image %s: %w", di.config.Digest, err)
		}
		entry := dockerManifestEntry{Config: blobPath(di.config.Digest)}
		for _, d := range di.diffIDs {
			entry.Layers = append(entry.Layers, blobPath(d))
		}
		named := false
		for _, r := range di.names {
			if r.Tag() == "" {
				continue // a digest reference names the original manifest, not this one
			}
			tagged := r.FamiliarName() + ":" + r.Tag()
			if slices.Contains(entry.RepoTags, tagged) {
				continue
			}
			entry.RepoTags = append(entry.RepoTags, tagged)
			entries = append(entries, targetDescriptor(target, r.Repository()+":"+r.Tag(), r.Tag()))
			named = true
			if n := len(di.diffIDs); n > 0 {
				if repositories[r.FamiliarName()] == nil {
					repositories[r.FamiliarName()] = map[string]string{}
				}
				repositories[r.FamiliarName()][r.Tag()] = di.diffIDs[n-1].Encoded()
			}
		}
		if !named {
			entries = append(entries, targetDescriptor(target, "", ""))
		}
		manifestJSON = append(manifestJSON, entry)
	}
	if err := writeIndex(lw, entries); err != nil {
		return err
	}
	data, err := json.Marshal(manifestJSON)
	if err != nil {
		return fmt.Errorf("encode manifest.json: %w", err)
	}
	if err := lw.writeFile(dockerManifestFile, data); err != nil {
		return err
	}
	if len(repositories) > 0 {
		data, err := json.Marshal(repositories)
		if err != nil {
			return fmt.Errorf("encode repositories: %w", err)
		}
		if err := lw.writeFile(dockerRepositoriesFile, data); err != nil {
			return err
		}
	}
	return lw.close()
}

// Files of a docker-archive besides the OCI image layout.
const (
	dockerManifestFile     = "manifest.json"
	dockerRepositoriesFile = "repositories"
)

// planDockerImage resolves img to the manifest to save and reads its config.
func planDockerImage(ctx context.Context, store *content.Store, img Image) (*dockerImage, error) {
	refs, err := parseNames(img.Names)
	if err != nil {
		return nil, err
	}
	desc := img.Target
	doc, _, err := readDocument(ctx, store, desc)
	if err != nil {
		return nil, err
	}
	if doc.Kind.IsIndex() {
		desc, err = selectManifest(ctx, store, desc, doc.Index, img.Platform)
		if err != nil {
			return nil, err
		}
		if doc, _, err = readDocument(ctx, store, desc); err != nil {
			return nil, err
		}
		if doc.Kind.IsIndex() {
			return nil, fmt.Errorf("%s: an index inside an index cannot be saved as a docker-archive", desc.Digest)
		}
	}
	m := doc.Manifest
	cfg, err := readSmallBlob(ctx, store, m.Config)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: config: %w", desc.Digest, err)
	}
	diffIDs, err := parseDiffIDs(cfg)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: config %s: %w", desc.Digest, m.Config.Digest, err)
	}
	if len(diffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("manifest %s: %d layers but the config lists %d diff IDs", desc.Digest, len(m.Layers), len(diffIDs))
	}
	for _, l := range m.Layers {
		if _, err := manifest.ParseLayer(l); err != nil {
			return nil, fmt.Errorf("manifest %s: %w", desc.Digest, err)
		}
	}
	return &dockerImage{config: m.Config, configData: cfg, layers: m.Layers, diffIDs: diffIDs, names: refs}, nil
}

// selectManifest picks the manifest of index to save: the one for platform,
// or the only one in the store when platform is nil. Only manifests in the
// store are candidates, attestations never.
func selectManifest(ctx context.Context, store *content.Store, desc ocispec.Descriptor, index *manifest.Index, platform *ocispec.Platform) (ocispec.Descriptor, error) {
	candidates := manifest.Index{Manifests: []ocispec.Descriptor{}}
	for _, child := range index.Manifests {
		if !isManifest(child.MediaType) || isAttestation(child) {
			continue
		}
		ok, err := present(ctx, store, child.Digest)
		if err != nil {
			return ocispec.Descriptor{}, err
		}
		if ok {
			candidates.Manifests = append(candidates.Manifests, child)
		}
	}
	if platform != nil {
		child, err := manifest.Select(&candidates, manifest.FromOCI(platform))
		if err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("index %s (manifests in the store): %w", desc.Digest, err)
		}
		return child, nil
	}
	switch len(candidates.Manifests) {
	case 0:
		return ocispec.Descriptor{}, fmt.Errorf("index %s: none of its manifests is in the store: %w", desc.Digest, content.ErrNotFound)
	case 1:
		return candidates.Manifests[0], nil
	}
	var platforms []string
	for _, c := range candidates.Manifests {
		platforms = append(platforms, manifest.FromOCI(c.Platform).String())
	}
	return ocispec.Descriptor{}, fmt.Errorf("index %s: %w (%v): choose one", desc.Digest, ErrAmbiguousPlatform, platforms)
}

// writeDockerImage writes an image's uncompressed layers, config and Docker
// schema 2 manifest, returning the manifest's descriptor.
func writeDockerImage(ctx context.Context, lw *layoutWriter, store *content.Store, di *dockerImage, layers layerCache) (ocispec.Descriptor, error) {
	blobs := make([]layerBlob, len(di.layers))
	for i, l := range di.layers {
		diffID := di.diffIDs[i]
		lc, err := layers.inspect(ctx, store, l.Digest)
		if err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("layer %s: %w", l.Digest, err)
		}
		if lc.diffID != diffID {
			return ocispec.Descriptor{}, fmt.Errorf("layer %s: uncompressed content is %s, the config says %s: %w", l.Digest, lc.diffID, diffID, content.ErrDigestMismatch)
		}
		blobs[i] = layerBlob{digest: diffID, size: lc.size, compression: tararchive.Uncompressed}
		if lw.hasBlob(diffID) {
			continue
		}
		if err := writeUncompressed(ctx, lw, store, l.Digest, diffID, lc.size); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("layer %s: %w", l.Digest, err)
		}
	}
	if err := lw.writeBlobBytes(di.config.Digest, di.configData); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("config: %w", err)
	}
	data, target, err := buildManifest(ocispec.Descriptor{Digest: di.config.Digest, Size: int64(len(di.configData))}, blobs)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if err := lw.writeBlobBytes(target.Digest, data); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("manifest: %w", err)
	}
	return target, nil
}

// writeUncompressed writes the layer blob dgst decompressed, as the blob
// diffID of size bytes.
func writeUncompressed(ctx context.Context, lw *layoutWriter, store *content.Store, dgst, diffID digest.Digest, size int64) error {
	ra, err := store.ReaderAt(ctx, dgst)
	if err != nil {
		return err
	}
	defer ra.Close()
	rc, _, err := tararchive.DecompressStream(io.NewSectionReader(ra, 0, ra.Size()))
	if err != nil {
		return err
	}
	defer rc.Close()
	return lw.writeBlob(diffID, size, rc)
}
