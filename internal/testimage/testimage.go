// Package testimage builds container images in memory and serves them from
// an in-process registry on 127.0.0.1, so that image tests need neither
// the network nor docker. Images are deterministic for given inputs.
package testimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Media types of Docker's schema 2.
const (
	DockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	DockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	DockerConfig       = "application/vnd.docker.container.image.v1+json"
	DockerLayerGzip    = "application/vnd.docker.image.rootfs.diff.tar.gzip"
)

// File is one entry of a layer.
type File struct {
	Name     string
	Body     string
	Mode     int64 // default 0644 for files, 0755 for directories
	Type     byte  // tar.TypeReg (default), TypeDir, TypeSymlink, TypeLink, ...
	Linkname string
	UID, GID int
}

// Layer is a layer's content and how its blob is compressed: "gzip"
// (default), "zstd" or "none".
type Layer struct {
	Files       []File
	Compression string
	// RandomBytes, if > 0, adds a file /random.bin of that many
	// pseudo-random (incompressible) bytes seeded by Seed.
	RandomBytes int
	Seed        int64
}

// Spec describes an image to build.
type Spec struct {
	Layers []Layer
	// OCI selects OCI media types; otherwise Docker schema 2.
	OCI          bool
	OS, Arch     string // default linux/amd64
	Variant      string
	Cmd, Env     []string
	Entrypoint   []string
	Labels       map[string]string
	Created      time.Time // default 2024-01-02T03:04:05Z
	WorkingDir   string
	ExposedPorts []string
}

// Image is a built image: its manifest, configuration and blobs.
type Image struct {
	Manifest     []byte
	MediaType    string
	Digest       digest.Digest
	Config       []byte
	ConfigDigest digest.Digest
	Layers       []ocispec.Descriptor
	DiffIDs      []digest.Digest
	Blobs        map[digest.Digest][]byte
	Platform     ocispec.Platform
}

// Descriptor returns the image manifest's descriptor, with its platform.
func (i *Image) Descriptor() ocispec.Descriptor {
	p := i.Platform
	return ocispec.Descriptor{MediaType: i.MediaType, Digest: i.Digest, Size: int64(len(i.Manifest)), Platform: &p}
}

// LayerTar returns the uncompressed tar of a layer spec.
func LayerTar(l Layer) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mt := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, f := range l.Files {
		h := &tar.Header{Name: f.Name, Typeflag: f.Type, Linkname: f.Linkname, Mode: f.Mode, Uid: f.UID, Gid: f.GID, ModTime: mt, Format: tar.FormatPAX}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
			if h.Typeflag == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(f.Body))
		}
		must(tw.WriteHeader(h))
		if h.Typeflag == tar.TypeReg {
			_, err := tw.Write([]byte(f.Body))
			must(err)
		}
	}
	if l.RandomBytes > 0 {
		data := make([]byte, l.RandomBytes)
		rand.New(rand.NewSource(l.Seed)).Read(data)
		must(tw.WriteHeader(&tar.Header{Name: "random.bin", Mode: 0o644, Size: int64(len(data)), ModTime: mt, Typeflag: tar.TypeReg}))
		_, err := tw.Write(data)
		must(err)
	}
	must(tw.Close())
	return buf.Bytes()
}

// Compress compresses data with "gzip", "zstd" or "none".
func Compress(data []byte, how string) []byte {
	switch how {
	case "", "gzip":
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, err := zw.Write(data)
		must(err)
		must(zw.Close())
		return buf.Bytes()
	case "zstd":
		zw, err := zstd.NewWriter(nil)
		must(err)
		return zw.EncodeAll(data, nil)
	case "none":
		return data
	}
	panic("testimage: unknown compression " + how)
}

func layerMediaType(oci bool, how string) string {
	switch {
	case !oci && (how == "" || how == "gzip"):
		return DockerLayerGzip
	case !oci && how == "none":
		return "application/vnd.docker.image.rootfs.diff.tar"
	case how == "" || how == "gzip":
		return ocispec.MediaTypeImageLayerGzip
	case how == "zstd":
		return ocispec.MediaTypeImageLayerZstd
	default:
		return ocispec.MediaTypeImageLayer
	}
}

// Build builds the image s describes.
func Build(s Spec) *Image {
	img := &Image{Blobs: map[digest.Digest][]byte{}}
	img.Platform = ocispec.Platform{OS: or(s.OS, "linux"), Architecture: or(s.Arch, "amd64"), Variant: s.Variant}
	for _, l := range s.Layers {
		raw := LayerTar(l)
		blob := Compress(raw, l.Compression)
		d := digest.FromBytes(blob)
		img.Blobs[d] = blob
		img.DiffIDs = append(img.DiffIDs, digest.FromBytes(raw))
		img.Layers = append(img.Layers, ocispec.Descriptor{MediaType: layerMediaType(s.OCI, l.Compression), Digest: d, Size: int64(len(blob))})
	}
	created := s.Created
	if created.IsZero() {
		created = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	}
	cfg := ocispec.Image{
		Created:  &created,
		Platform: img.Platform,
		Config: ocispec.ImageConfig{
			Cmd: s.Cmd, Env: s.Env, Entrypoint: s.Entrypoint, Labels: s.Labels, WorkingDir: s.WorkingDir,
		},
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: img.DiffIDs},
	}
	if len(s.ExposedPorts) > 0 {
		cfg.Config.ExposedPorts = map[string]struct{}{}
		for _, p := range s.ExposedPorts {
			cfg.Config.ExposedPorts[p] = struct{}{}
		}
	}
	for i := range s.Layers {
		cfg.History = append(cfg.History, ocispec.History{Created: &created, CreatedBy: fmt.Sprintf("/bin/sh -c #(nop) ADD layer%d in /", i)})
	}
	cfg.History = append(cfg.History, ocispec.History{Created: &created, CreatedBy: "/bin/sh -c #(nop)  CMD [\"sh\"]", EmptyLayer: true})
	img.Config = mustJSON(cfg)
	img.ConfigDigest = digest.FromBytes(img.Config)
	img.Blobs[img.ConfigDigest] = img.Config
	cfgType, mType := DockerConfig, DockerManifest
	if s.OCI {
		cfgType, mType = ocispec.MediaTypeImageConfig, ocispec.MediaTypeImageManifest
	}
	m := ocispec.Manifest{
		MediaType: mType,
		Config:    ocispec.Descriptor{MediaType: cfgType, Digest: img.ConfigDigest, Size: int64(len(img.Config))},
		Layers:    img.Layers,
	}
	m.SchemaVersion = 2
	img.Manifest = mustJSON(m)
	img.MediaType = mType
	img.Digest = digest.FromBytes(img.Manifest)
	return img
}

// Index is a built multi-platform index.
type Index struct {
	Data      []byte
	MediaType string
	Digest    digest.Digest
	Children  []*Image
}

// BuildIndex builds an index (OCI) or manifest list (Docker) of children.
func BuildIndex(oci bool, children ...*Image) *Index {
	mt := DockerManifestList
	if oci {
		mt = ocispec.MediaTypeImageIndex
	}
	idx := ocispec.Index{MediaType: mt}
	idx.SchemaVersion = 2
	for _, c := range children {
		idx.Manifests = append(idx.Manifests, c.Descriptor())
	}
	data := mustJSON(idx)
	return &Index{Data: data, MediaType: mt, Digest: digest.FromBytes(data), Children: children}
}

// Registry is an in-process registry on 127.0.0.1.
type Registry struct {
	// Host is "127.0.0.1:PORT".
	Host string
	// Handler is the registry's own handler (without Wrap).
	Handler http.Handler
	// Wrap, if set, wraps every request (auth, fault injection, counting).
	Wrap   func(w http.ResponseWriter, r *http.Request, next http.Handler)
	server *httptest.Server
}

// StartRegistry starts a registry for the test and stops it at cleanup.
func StartRegistry(t testing.TB) *Registry {
	t.Helper()
	reg := &Registry{Handler: registry.New(registry.Logger(log.New(io.Discard, "", 0)))}
	reg.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if reg.Wrap != nil {
			reg.Wrap(w, r, reg.Handler)
			return
		}
		reg.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(reg.server.Close)
	u, _ := url.Parse(reg.server.URL)
	reg.Host = u.Host
	return reg
}

// PushImage uploads img's blobs and manifest to repo:tag (tag may be a
// digest or "" for by-digest only), bypassing Wrap.
func (r *Registry) PushImage(ctx context.Context, repo, tag string, img *Image) error {
	for d, b := range img.Blobs {
		if err := r.putBlob(ctx, repo, d, b); err != nil {
			return err
		}
	}
	if tag == "" {
		tag = img.Digest.String()
	}
	return r.putManifest(ctx, repo, tag, img.MediaType, img.Manifest)
}

// PushIndex uploads every child and the index as repo:tag.
func (r *Registry) PushIndex(ctx context.Context, repo, tag string, idx *Index) error {
	for _, c := range idx.Children {
		if err := r.PushImage(ctx, repo, "", c); err != nil {
			return err
		}
	}
	return r.putManifest(ctx, repo, tag, idx.MediaType, idx.Data)
}

func (r *Registry) do(req *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	r.Handler.ServeHTTP(rec, req)
	return rec.Result(), nil
}

func (r *Registry) putBlob(ctx context.Context, repo string, d digest.Digest, b []byte) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+r.Host+"/v2/"+repo+"/blobs/uploads/", nil)
	resp, err := r.do(req)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("start upload: %s", resp.Status)
	}
	loc := resp.Header.Get("Location")
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	if !strings.HasPrefix(loc, "http") {
		loc = "http://" + r.Host + loc
	}
	req, _ = http.NewRequestWithContext(ctx, http.MethodPut, loc+sep+"digest="+url.QueryEscape(d.String()), bytes.NewReader(b))
	req.ContentLength = int64(len(b))
	resp, err = r.do(req)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusCreated {
		body, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("upload %s: %s %s", d, resp.Status, body)
	}
	return nil
}

func (r *Registry) putManifest(ctx context.Context, repo, tag, mediaType string, data []byte) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, "http://"+r.Host+"/v2/"+repo+"/manifests/"+tag, bytes.NewReader(data))
	req.Header.Set("Content-Type", mediaType)
	resp, err := r.do(req)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusCreated {
		body, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("put manifest %s:%s: %s %s", repo, tag, resp.Status, body)
	}
	return nil
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	must(err)
	return b
}

func must(err error) {
	if err != nil {
		panic("testimage: " + err.Error())
	}
}
