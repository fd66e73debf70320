package image

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/berth-engine/berth/content"
	"github.com/berth-engine/berth/image/manifest"
	"github.com/berth-engine/berth/image/remote"
	"github.com/berth-engine/berth/snapshot"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Errors returned (wrapped) by the Store; test them with errors.Is. The CLI
// maps them to exit codes in one place.
var (
	// ErrNotFound: no local image matches the reference.
	ErrNotFound = errors.New("no such image")
	// ErrAmbiguous: a short ID prefix matches several images.
	ErrAmbiguous = errors.New("ambiguous image ID prefix")
	// ErrConflict: the image cannot be removed as asked (several names
	// without force, or used by a container).
	ErrConflict = errors.New("conflict")
	// ErrInvalid: the request itself is malformed (bad reference, bad
	// --change instruction, image without layers where one is needed...).
	ErrInvalid = errors.New("invalid argument")
)

// Options configure [Open].
type Options struct {
	// Snapshotter is the snapshot driver: "overlay", "native" or "" (probe).
	Snapshotter string
	// Remote is the registry client used by Pull and Push; nil means a
	// client with default options (no credentials).
	Remote *remote.Client
	// Platform is the platform pulled and unpacked when none is given; the
	// zero value means the host's.
	Platform manifest.Platform
	// InUse, if set, reports which images containers use: for each image
	// ID, whether a running container uses it. rmi and prune consult it.
	InUse func(ctx context.Context) (map[digest.Digest]Usage, error)
}

// Usage says how containers use an image.
type Usage struct {
	Containers int // containers created from the image
	Running    int // of which running
}

// Store is berth's local image store: image records (names → manifests) in
// a small metadata database, blobs in a content store and unpacked layers
// in a snapshotter, all under one root. Several processes may use one root
// at a time: the database is opened per transaction, blobs and snapshots
// are committed atomically, and garbage collection respects the leases of
// concurrent pulls (see gc.go).
type Store struct {
	root     string
	content  *content.Store
	snaps    *snapshot.Snapshotter
	remote   *remote.Client
	db       *metaDB
	platform manifest.Platform
	inUse    func(ctx context.Context) (map[digest.Digest]Usage, error)
}

// Open opens (creating if needed) the image store rooted at root:
//
//	<root>/content/     blobs (package content)
//	<root>/snapshots/   unpacked layers (package snapshot)
//	<root>/images.db    image records (bbolt)
//	<root>/leases/      leases of running pulls, loads and imports
//	<root>/gc.lock      taken shared by lease changes, exclusively by GC
func Open(root string, opts Options) (*Store, error) {
	if err := os.MkdirAll(filepath.Join(root, "leases"), 0o700); err != nil {
		return nil, fmt.Errorf("open image store: %w", err)
	}
	cs, err := content.Open(filepath.Join(root, "content"))
	if err != nil {
		return nil, fmt.Errorf("open image store: %w", err)
	}
	ss, err := snapshot.Open(filepath.Join(root, "snapshots"), snapshot.Options{Driver: opts.Snapshotter})
	if err != nil {
		return nil, fmt.Errorf("open image store: %w", err)
	}
	db, err := openMetaDB(filepath.Join(root, "images.db"))
	if err != nil {
		return nil, fmt.Errorf("open image store: %w", err)
	}
	rc := opts.Remote
	if rc == nil {
		rc = remote.New(remote.Options{})
	}
	p := opts.Platform
	if p.OS == "" {
		p = manifest.DefaultPlatform()
	}
	return &Store{
		root:     root,
		content:  cs,
		snaps:    ss,
		remote:   rc,
		db:       db,
		platform: p.Normalize(),
		inUse:    opts.InUse,
	}, nil
}

// Root returns the store's root directory.
func (s *Store) Root() string { return s.root }

// Content returns the blob store.
func (s *Store) Content() *content.Store { return s.content }

// Snapshotter returns the layer snapshotter.
func (s *Store) Snapshotter() *snapshot.Snapshotter { return s.snaps }

// Platform returns the store's default platform.
func (s *Store) Platform() manifest.Platform { return s.platform }

// Image is a local image: one image configuration (its digest is the
// image ID, as docker and podman show it) with the names that point at it.
type Image struct {
	// ID is the digest of the image configuration.
	ID digest.Digest `json:"id"`
	// Manifest is the platform-specific manifest the image was unpacked
	// from (a docker schema 2 or OCI image manifest).
	Manifest ocispec.Descriptor `json:"manifest"`
	// Names are the references pointing at this image, each with the
	// descriptor it was pulled, loaded or tagged as (an index for a
	// multi-platform pull, else Manifest).
	Names []Name `json:"names,omitempty"`
	// RepoDigests are "repository@digest" references under which a
	// registry is known to serve the image (after pull and push).
	RepoDigests []string `json:"repoDigests,omitempty"`
	// Size is the unpacked size: the sum of the layers' content bytes.
	Size int64 `json:"size"`
	// Created is when the record was created; LastTagTime when a name was
	// last added.
	Created     time.Time `json:"created"`
	LastTagTime time.Time `json:"lastTagTime,omitzero"`
}

// Name is a reference pointing at an image.
type Name struct {
	// Ref is the full, normalised reference (docker.io/library/busybox:latest).
	Ref string `json:"ref"`
	// Target is the descriptor the name resolves to: an index or a manifest.
	Target ocispec.Descriptor `json:"target"`
}

// Dangling reports whether the image has no name.
func (i *Image) Dangling() bool { return len(i.Names) == 0 }

// RefStrings returns the image's references.
func (i *Image) RefStrings() []string {
	out := make([]string, len(i.Names))
	for k, n := range i.Names {
		out[k] = n.Ref
	}
	return out
}
