// Package manifest decodes and validates image manifests and indexes: the
// OCI image manifest and index (image-spec v1.1) and the Docker image
// manifest v2 schema 2 and manifest list. Schema 1 is rejected. It also
// classifies layer media types ([ParseLayer]) and selects a platform's
// manifest from an index ([Select]).
//
// Docker's schema 2 documents have the same JSON shape as the OCI ones, so
// both decode into the image-spec Go types ([Manifest], [Index]).
package manifest

import (
	_ "crypto/sha256" // registers sha256 for go-digest
	_ "crypto/sha512" // registers sha512 for go-digest
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/url"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// Media types of manifests, indexes, configs and layers.
const (
	MediaTypeOCIManifest = v1.MediaTypeImageManifest // application/vnd.oci.image.manifest.v1+json
	MediaTypeOCIIndex    = v1.MediaTypeImageIndex    // application/vnd.oci.image.index.v1+json
	MediaTypeOCIConfig   = v1.MediaTypeImageConfig

	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerConfig       = "application/vnd.docker.container.image.v1+json"

	// Docker image manifest v2, schema 1 (plain and signed): rejected.
	MediaTypeDockerSchema1       = "application/vnd.docker.distribution.manifest.v1+json"
	MediaTypeDockerSchema1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws"

	MediaTypeOCILayer     = v1.MediaTypeImageLayer     // uncompressed tar
	MediaTypeOCILayerGzip = v1.MediaTypeImageLayerGzip // tar+gzip
	MediaTypeOCILayerZstd = v1.MediaTypeImageLayerZstd // tar+zstd
	// OCI non-distributable layers (deprecated by image-spec 1.1, still read).
	MediaTypeOCILayerNonDistributable     = "application/vnd.oci.image.layer.nondistributable.v1.tar"
	MediaTypeOCILayerNonDistributableGzip = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
	MediaTypeOCILayerNonDistributableZstd = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
	MediaTypeDockerLayer                  = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	// Docker's uncompressed layer: what docker save and the containerd
	// image store write for layers kept as plain tar.
	MediaTypeDockerLayerUncompressed = "application/vnd.docker.image.rootfs.diff.tar"
	// Docker's "foreign" layer (e.g. Windows base layers): non-distributable.
	MediaTypeDockerForeignLayer = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
)

// Descriptor, Manifest and Index of the OCI image-spec; the Docker
// schema 2 documents decode into them too.
type (
	Descriptor = v1.Descriptor
	Manifest   = v1.Manifest
	Index      = v1.Index
)

// Kind says which document a [Decoded] holds.
type Kind int

// Document kinds.
const (
	KindOCIManifest Kind = iota + 1
	KindOCIIndex
	KindDockerManifest
	KindDockerManifestList
)

// String returns the kind's media type.
func (k Kind) String() string {
	switch k {
	case KindOCIManifest:
		return MediaTypeOCIManifest
	case KindOCIIndex:
		return MediaTypeOCIIndex
	case KindDockerManifest:
		return MediaTypeDockerManifest
	case KindDockerManifestList:
		return MediaTypeDockerManifestList
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// IsIndex reports whether the kind is an OCI index or a Docker manifest list.
func (k Kind) IsIndex() bool { return k == KindOCIIndex || k == KindDockerManifestList }

// Errors returned (wrapped) by Decode and Select; test them with errors.Is.
var (
	// ErrSchema1 is returned for Docker image manifest v2 schema 1 documents.
	ErrSchema1 = errors.New("docker image manifest v2 schema 1 is not supported: re-push the image with a current client")
	// ErrUnsupportedMediaType is returned for a media type that is not a
	// manifest or index, or a document whose type cannot be detected.
	ErrUnsupportedMediaType = errors.New("unsupported manifest media type")
	// ErrInvalid is returned for a document that violates the specification.
	ErrInvalid = errors.New("invalid manifest")
	// ErrUnsupportedLayer is returned by ParseLayer for media types that are
	// not image layers.
	ErrUnsupportedLayer = errors.New("unsupported layer media type")
)

// Decoded is a validated manifest or index.
type Decoded struct {
	Kind      Kind
	MediaType string    // the effective media type (Kind.String())
	Manifest  *Manifest // set for KindOCIManifest and KindDockerManifest
	Index     *Index    // set for KindOCIIndex and KindDockerManifestList
}

// Encode returns the document as JSON (not the original bytes: digests are
// computed over the bytes as fetched, never over a re-encoding).
func (d *Decoded) Encode() ([]byte, error) {
	var v any = d.Index
	if d.Manifest != nil {
		v = d.Manifest
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", d.MediaType, err)
	}
	return b, nil
}

// generic media types say nothing about the document: detect from the JSON.
var generic = map[string]bool{
	"":                         true,
	"application/json":         true,
	"application/octet-stream": true,
	"text/plain":               true,
}

var kinds = map[string]Kind{
	MediaTypeOCIManifest:        KindOCIManifest,
	MediaTypeOCIIndex:           KindOCIIndex,
	MediaTypeDockerManifest:     KindDockerManifest,
	MediaTypeDockerManifestList: KindDockerManifestList,
}

// probe holds the fields that identify a document and those whose absence
// cannot be seen after decoding into the image-spec types.
type probe struct {
	SchemaVersion *int            `json:"schemaVersion"`
	MediaType     string          `json:"mediaType"`
	Config        *probeDesc      `json:"config"`
	Layers        []probeDesc     `json:"layers"`
	Manifests     []probeDesc     `json:"manifests"`
	Subject       *probeDesc      `json:"subject"`
	FSLayers      json.RawMessage `json:"fsLayers"` // schema 1
}

type probeDesc struct {
	Size *int64 `json:"size"`
}

// Decode parses and validates a manifest or index. mediaType is the type the
// document was served or referenced with (a Content-Type value; parameters
// are ignored). When it is empty or generic (application/json,
// application/octet-stream, text/plain) the type is detected from the
// document: its "mediaType" field, else "manifests" (an OCI index) or
// "config"/"layers" (an OCI manifest). A "mediaType" field that contradicts
// mediaType is an error, as is a manifest with "manifests" or an index with
// "config"/"layers" (the ambiguity the OCI spec warns about).
//
// Unknown media types of referenced descriptors (layers, configs, index
// entries) are not errors: the spec requires implementations to tolerate
// them. Use [ParseLayer] when unpacking.
func Decode(mediaType string, data []byte) (*Decoded, error) {
	mt, err := baseMediaType(mediaType)
	if err != nil {
		return nil, err
	}
	if mt == MediaTypeDockerSchema1 || mt == MediaTypeDockerSchema1Signed {
		return nil, fmt.Errorf("decode %s: %w", mt, ErrSchema1)
	}
	var p probe
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("decode manifest: %w: %w", ErrInvalid, err)
	}
	if p.SchemaVersion != nil && *p.SchemaVersion == 1 || p.FSLayers != nil ||
		p.MediaType == MediaTypeDockerSchema1 || p.MediaType == MediaTypeDockerSchema1Signed {
		return nil, fmt.Errorf("decode manifest: %w", ErrSchema1)
	}

	kind, ok := kinds[mt]
	switch {
	case ok:
		if p.MediaType != "" && p.MediaType != mt {
			return nil, fmt.Errorf("decode %s: %w: document has mediaType %q", mt, ErrInvalid, p.MediaType)
		}
	case !generic[mt]:
		return nil, fmt.Errorf("decode %q: %w", mt, ErrUnsupportedMediaType)
	case p.MediaType != "":
		if kind, ok = kinds[p.MediaType]; !ok {
			return nil, fmt.Errorf("decode %q: %w", p.MediaType, ErrUnsupportedMediaType)
		}
	case p.Manifests != nil && (p.Config != nil || p.Layers != nil):
		return nil, fmt.Errorf("decode manifest: %w: both manifests and config/layers, no mediaType", ErrUnsupportedMediaType)
	case p.Manifests != nil:
		kind = KindOCIIndex
	case p.Config != nil || p.Layers != nil:
		kind = KindOCIManifest
	default:
		return nil, fmt.Errorf("decode manifest: %w: no mediaType, manifests, config or layers", ErrUnsupportedMediaType)
	}

	d := &Decoded{Kind: kind, MediaType: kind.String()}
	if p.SchemaVersion == nil || *p.SchemaVersion != 2 {
		return nil, fmt.Errorf("decode %s: %w: schemaVersion must be 2", d.MediaType, ErrInvalid)
	}
	if kind.IsIndex() {
		err = d.decodeIndex(&p, data)
	} else {
		err = d.decodeManifest(&p, data)
	}
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", d.MediaType, err)
	}
	return d, nil
}

func baseMediaType(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	mt, _, err := mime.ParseMediaType(s)
	if err != nil {
		return "", fmt.Errorf("decode manifest: %w %q: %w", ErrUnsupportedMediaType, s, err)
	}
	return mt, nil
}

func (d *Decoded) decodeManifest(p *probe, data []byte) error {
	if p.Manifests != nil {
		return fmt.Errorf("%w: a manifest must not have \"manifests\"", ErrInvalid)
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if p.Config == nil {
		return fmt.Errorf("%w: missing config", ErrInvalid)
	}
	if err := validateDescriptor(&m.Config, p.Config); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	for i := range m.Layers {
		if err := validateDescriptor(&m.Layers[i], &p.Layers[i]); err != nil {
			return fmt.Errorf("layer %d: %w", i, err)
		}
	}
	if m.Subject != nil {
		if err := validateDescriptor(m.Subject, p.Subject); err != nil {
			return fmt.Errorf("subject: %w", err)
		}
	}
	m.Annotations = normMap(m.Annotations)
	d.Manifest = &m
	return nil
}

func (d *Decoded) decodeIndex(p *probe, data []byte) error {
	if p.Config != nil || p.Layers != nil {
		return fmt.Errorf("%w: an index must not have \"config\" or \"layers\"", ErrInvalid)
	}
	var idx Index
	if err := json.Unmarshal(data, &idx); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	for i := range idx.Manifests {
		m := &idx.Manifests[i]
		if err := validateDescriptor(m, &p.Manifests[i]); err != nil {
			return fmt.Errorf("manifests[%d]: %w", i, err)
		}
		if d.Kind == KindDockerManifestList && m.Platform == nil {
			return fmt.Errorf("manifests[%d]: %w: a manifest list entry needs a platform", i, ErrInvalid)
		}
		if m.Platform != nil && (m.Platform.OS == "" || m.Platform.Architecture == "") {
			return fmt.Errorf("manifests[%d]: %w: platform needs os and architecture", i, ErrInvalid)
		}
	}
	if idx.Subject != nil {
		if err := validateDescriptor(idx.Subject, p.Subject); err != nil {
			return fmt.Errorf("subject: %w", err)
		}
	}
	idx.Annotations = normMap(idx.Annotations)
	d.Index = &idx
	return nil
}

// ValidateDigest checks that d is a well-formed sha256 or sha512 digest (the
// algorithms registered by the OCI image-spec).
func ValidateDigest(d digest.Digest) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("digest %q: %w", d, err)
	}
	if a := d.Algorithm(); a != digest.SHA256 && a != digest.SHA512 {
		return fmt.Errorf("digest %q: %w", d, digest.ErrDigestUnsupported)
	}
	return nil
}

// validateDescriptor checks a descriptor's required fields and normalises
// empty optional fields to nil, so that a re-encoding decodes identically.
func validateDescriptor(desc *Descriptor, p *probeDesc) error {
	if desc.MediaType == "" {
		return fmt.Errorf("%w: missing mediaType", ErrInvalid)
	}
	if _, _, err := mime.ParseMediaType(desc.MediaType); err != nil {
		return fmt.Errorf("%w: mediaType %q: %w", ErrInvalid, desc.MediaType, err)
	}
	if err := ValidateDigest(desc.Digest); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if p == nil || p.Size == nil {
		return fmt.Errorf("%w: missing size", ErrInvalid)
	}
	if desc.Size < 0 {
		return fmt.Errorf("%w: negative size %d", ErrInvalid, desc.Size)
	}
	for _, u := range desc.URLs {
		if pu, err := url.Parse(u); err != nil || pu.Scheme != "http" && pu.Scheme != "https" || pu.Host == "" {
			return fmt.Errorf("%w: url %q is not an http(s) URL", ErrInvalid, u)
		}
	}
	if len(desc.Data) > 0 {
		if int64(len(desc.Data)) != desc.Size || desc.Digest.Algorithm().FromBytes(desc.Data) != desc.Digest {
			return fmt.Errorf("%w: embedded data does not match size and digest", ErrInvalid)
		}
	} else {
		desc.Data = nil
	}
	if len(desc.URLs) == 0 {
		desc.URLs = nil
	}
	desc.Annotations = normMap(desc.Annotations)
	if pl := desc.Platform; pl != nil && len(pl.OSFeatures) == 0 {
		pl.OSFeatures = nil
	}
	return nil
}

func normMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}

// Compression of a layer blob.
type Compression int

// Layer compressions.
const (
	Uncompressed Compression = iota
	Gzip
	Zstd
)

// String returns "none", "gzip" or "zstd".
func (c Compression) String() string {
	switch c {
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	}
	return "none"
}

// Layer describes how to fetch and unpack a layer blob.
//
// Non-distributable layers ("foreign" in Docker's terms: OCI
// application/vnd.oci.image.layer.nondistributable.* and Docker
// application/vnd.docker.image.rootfs.foreign.diff.tar.gzip) carry
// distribution restrictions. The image-spec says implementations SHOULD NOT
// upload them, and that they MAY be fetched from the descriptor's urls (each
// verified against the digest and size like any blob). So: a pull of such a
// layer tries its URLs (if any) and need not fetch it from the registry,
// which may not hold it; a push skips the blob and keeps the descriptor
// (urls included) in the manifest. image-spec 1.1 deprecates producing them.
type Layer struct {
	Compression      Compression
	NonDistributable bool
	// URLs are the descriptor's alternative locations (http or https).
	URLs []string
}

// FetchFromURLs reports whether the blob should be fetched from l.URLs
// instead of the registry: a non-distributable layer that has URLs.
func (l Layer) FetchFromURLs() bool { return l.NonDistributable && len(l.URLs) > 0 }

var layerTypes = map[string]Layer{
	MediaTypeOCILayer:                     {Compression: Uncompressed},
	MediaTypeOCILayerGzip:                 {Compression: Gzip},
	MediaTypeOCILayerZstd:                 {Compression: Zstd},
	MediaTypeOCILayerNonDistributable:     {Compression: Uncompressed, NonDistributable: true},
	MediaTypeOCILayerNonDistributableGzip: {Compression: Gzip, NonDistributable: true},
	MediaTypeOCILayerNonDistributableZstd: {Compression: Zstd, NonDistributable: true},
	MediaTypeDockerLayer:                  {Compression: Gzip},
	MediaTypeDockerLayerUncompressed:      {Compression: Uncompressed},
	MediaTypeDockerForeignLayer:           {Compression: Gzip, NonDistributable: true},
}

// ParseLayer classifies a layer descriptor by media type: OCI tar, tar+gzip,
// tar+zstd (and their non-distributable forms) and Docker's
// rootfs.diff.tar.gzip and rootfs.foreign.diff.tar.gzip. Anything else
// (e.g. artifact blobs) returns ErrUnsupportedLayer.
func ParseLayer(desc Descriptor) (Layer, error) {
	l, ok := layerTypes[desc.MediaType]
	if !ok {
		return Layer{}, fmt.Errorf("layer %s: %w %q", desc.Digest, ErrUnsupportedLayer, desc.MediaType)
	}
	l.URLs = desc.URLs
	return l, nil
}
