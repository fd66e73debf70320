package content

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/opencontainers/go-digest"
)

// layoutVersion is the on-disk format version recorded in <root>/layout.json.
const layoutVersion = 1

// maxLabelSize bounds a label's key plus value, in bytes.
const maxLabelSize = 4096

// Store is a content-addressed blob store rooted at a directory. Its methods
// are safe for concurrent use by goroutines and by processes sharing the
// root (see the package documentation for the locking).
type Store struct {
	root string
	// noRenameNoReplace makes Commit publish with link(2), the fallback for
	// file systems without renameat2(RENAME_NOREPLACE). Tests set it.
	noRenameNoReplace bool
}

// Info describes a committed blob.
type Info struct {
	// Digest names the blob.
	Digest digest.Digest
	// Size is the blob's length in bytes.
	Size int64
	// CreatedAt is the blob file's modification time: when its last byte was
	// written, just before it was committed.
	CreatedAt time.Time
	// Labels are the blob's labels (nil when it has none). Garbage
	// collection roots and references are expressed as labels.
	Labels map[string]string
}

// ReaderAt reads a committed blob. Close it when done.
type ReaderAt interface {
	io.ReaderAt
	io.Closer
	// Size is the blob's length in bytes.
	Size() int64
}

// Open opens the store rooted at root, creating its directories as needed.
// It removes the temporary files of atomic writes interrupted by a crash and
// ingest directories abandoned before their ref was recorded.
func Open(root string) (*Store, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("open content store %s: %w", root, err)
	}
	s := &Store{root: abs}
	if err := s.init(); err != nil {
		return nil, fmt.Errorf("open content store %s: %w", abs, err)
	}
	return s, nil
}

func (s *Store) init() error {
	if err := os.MkdirAll(s.root, 0o711); err != nil {
		return err
	}
	dirs := []string{"ingest", "locks", "tmp"}
	for _, alg := range algorithms() {
		dirs = append(dirs, filepath.Join("blobs", string(alg)), filepath.Join("labels", string(alg)))
	}
	for _, d := range dirs {
		perm := os.FileMode(0o755)
		if d == "ingest" || d == "locks" || d == "tmp" {
			perm = 0o700
		}
		if err := os.MkdirAll(filepath.Join(s.root, d), perm); err != nil {
			return err
		}
	}
	if err := s.checkLayout(); err != nil {
		return err
	}
	if err := s.cleanTmp(); err != nil {
		return fmt.Errorf("clean temporary files: %w", err)
	}
	if err := s.cleanIngests(); err != nil {
		return fmt.Errorf("clean abandoned ingests: %w", err)
	}
	return nil
}

type layoutFile struct {
	Version int `json:"version"`
}

// checkLayout records the on-disk format version in a new store and refuses
// a store written by a newer format.
func (s *Store) checkLayout() error {
	path := filepath.Join(s.root, "layout.json")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		b, _ = json.Marshal(layoutFile{Version: layoutVersion})
		return s.writeAtomic(path, b, true)
	}
	if err != nil {
		return err
	}
	var l layoutFile
	if err := json.Unmarshal(b, &l); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if l.Version != layoutVersion {
		return fmt.Errorf("%s: unsupported layout version %d (want %d)", path, l.Version, layoutVersion)
	}
	return nil
}

// Root returns the store's root directory (absolute).
func (s *Store) Root() string { return s.root }

// ReaderAt opens the blob dgst for reading. The error wraps ErrNotFound if
// it is not in the store.
func (s *Store) ReaderAt(ctx context.Context, dgst digest.Digest) (ReaderAt, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := ValidateDigest(dgst); err != nil {
		return nil, fmt.Errorf("read blob: %w", err)
	}
	f, err := os.OpenFile(s.blobPath(dgst), os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", dgst, notFound(err))
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("read blob %s: %w", dgst, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("read blob %s: not a regular file: %w", dgst, ErrNotFound)
	}
	return &blobReader{File: f, size: fi.Size()}, nil
}

type blobReader struct {
	*os.File
	size int64
}

func (r *blobReader) Size() int64 { return r.size }

// ReadBlob returns the whole content of the blob dgst, for the small blobs
// (manifests, configs) that are read at once.
func ReadBlob(ctx context.Context, s *Store, dgst digest.Digest) ([]byte, error) {
	ra, err := s.ReaderAt(ctx, dgst)
	if err != nil {
		return nil, err
	}
	defer ra.Close()
	b := make([]byte, ra.Size())
	if _, err := ra.ReadAt(b, 0); err != nil && !(err == io.EOF && len(b) == 0) {
		return nil, fmt.Errorf("read blob %s: %w", dgst, err)
	}
	return b, nil
}

// Info describes the blob dgst. The error wraps ErrNotFound if it is not in
// the store.
func (s *Store) Info(ctx context.Context, dgst digest.Digest) (Info, error) {
	if err := ctx.Err(); err != nil {
		return Info{}, err
	}
	if err := ValidateDigest(dgst); err != nil {
		return Info{}, fmt.Errorf("info: %w", err)
	}
	info, err := s.info(dgst)
	if err != nil {
		return Info{}, fmt.Errorf("info %s: %w", dgst, err)
	}
	return info, nil
}

// info stats the blob and reads its labels.
func (s *Store) info(dgst digest.Digest) (Info, error) {
	fi, err := os.Lstat(s.blobPath(dgst))
	if err != nil {
		return Info{}, notFound(err)
	}
	if !fi.Mode().IsRegular() {
		return Info{}, fmt.Errorf("not a regular file: %w", ErrNotFound)
	}
	labels, err := s.readLabels(dgst)
	if err != nil {
		return Info{}, err
	}
	return Info{Digest: dgst, Size: fi.Size(), CreatedAt: fi.ModTime(), Labels: labels}, nil
}

// Delete removes the blob dgst and its labels. The error wraps ErrNotFound
// if it is not in the store. Readers that already opened it keep reading.
func (s *Store) Delete(ctx context.Context, dgst digest.Digest) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := ValidateDigest(dgst); err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	lk, err := lockStripe(s.labelLockPath(dgst))
	if err != nil {
		return fmt.Errorf("delete %s: %w", dgst, err)
	}
	defer lk.Close()
	// Labels first: a crash in between leaves an unlabelled blob, which is
	// what Delete was making unreferenced anyway, never labels without a blob.
	if err := os.Remove(s.labelsPath(dgst)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete %s: %w", dgst, err)
	}
	fire("delete-labels-removed")
	if err := os.Remove(s.blobPath(dgst)); err != nil {
		return fmt.Errorf("delete %s: %w", dgst, notFound(err))
	}
	return nil
}

// Filter selects blobs in Walk.
type Filter func(Info) bool

// WithLabel selects blobs whose label key has the given value.
func WithLabel(key, value string) Filter {
	return func(i Info) bool {
		v, ok := i.Labels[key]
		return ok && v == value
	}
}

// HasLabel selects blobs that have the label key, whatever its value.
func HasLabel(key string) Filter {
	return func(i Info) bool {
		_, ok := i.Labels[key]
		return ok
	}
}

// WithAlgorithm selects blobs whose digest uses alg.
func WithAlgorithm(alg digest.Algorithm) Filter {
	return func(i Info) bool { return i.Digest.Algorithm() == alg }
}

// AnyOf selects blobs that at least one of the filters selects.
func AnyOf(filters ...Filter) Filter {
	return func(i Info) bool {
		for _, f := range filters {
			if f(i) {
				return true
			}
		}
		return false
	}
}

// WalkFunc is called by Walk for each selected blob. A non-nil error stops
// the walk and is returned by Walk.
type WalkFunc func(Info) error

// Walk calls fn for every committed blob that all the filters select (sha256
// blobs first, each algorithm in digest order). Blobs committed or deleted
// during the walk may or may not be visited. Walk stops with ctx.Err() when
// ctx is done.
func (s *Store) Walk(ctx context.Context, fn WalkFunc, filters ...Filter) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, alg := range algorithms() {
		entries, err := os.ReadDir(filepath.Join(s.root, "blobs", string(alg)))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return fmt.Errorf("walk: %w", err)
		}
	entry:
		for _, e := range entries {
			if err := ctx.Err(); err != nil {
				return err
			}
			dgst := digest.NewDigestFromEncoded(alg, e.Name())
			if ValidateDigest(dgst) != nil {
				continue // not a blob
			}
			info, err := s.info(dgst)
			if errors.Is(err, ErrNotFound) {
				continue // deleted meanwhile
			}
			if err != nil {
				return fmt.Errorf("walk %s: %w", dgst, err)
			}
			for _, f := range filters {
				if !f(info) {
					continue entry
				}
			}
			if err := fn(info); err != nil {
				return err
			}
		}
	}
	return nil
}

// Update changes the labels of the blob info.Digest and returns its new Info.
// With no fieldpaths, or with "labels", the labels become exactly
// info.Labels. A fieldpath "labels.<key>" sets that one label to
// info.Labels[key], or removes it when that is absent or empty. Other
// fieldpaths are rejected (ErrInvalidArgument); the other Info fields are
// not updatable. The change is durable when Update returns.
func (s *Store) Update(ctx context.Context, info Info, fieldpaths ...string) (Info, error) {
	if err := ctx.Err(); err != nil {
		return Info{}, err
	}
	dgst := info.Digest
	if err := ValidateDigest(dgst); err != nil {
		return Info{}, fmt.Errorf("update: %w", err)
	}
	replace := len(fieldpaths) == 0
	var keys []string
	for _, p := range fieldpaths {
		if p == "labels" {
			replace = true
		} else if k, ok := strings.CutPrefix(p, "labels."); ok && k != "" {
			keys = append(keys, k)
		} else {
			return Info{}, fmt.Errorf("update %s: field path %.100q: %w", dgst, p, ErrInvalidArgument)
		}
	}
	lk, err := lockStripe(s.labelLockPath(dgst))
	if err != nil {
		return Info{}, fmt.Errorf("update %s: %w", dgst, err)
	}
	defer lk.Close()
	cur, err := s.info(dgst)
	if err != nil {
		return Info{}, fmt.Errorf("update %s: %w", dgst, err)
	}
	labels := cur.Labels
	if replace {
		labels = maps.Clone(info.Labels)
	}
	for _, k := range keys {
		if v := info.Labels[k]; v != "" {
			if labels == nil {
				labels = map[string]string{}
			}
			labels[k] = v
		} else {
			delete(labels, k)
		}
	}
	if err := validateLabels(labels); err != nil {
		return Info{}, fmt.Errorf("update %s: %w", dgst, err)
	}
	if err := s.writeLabels(dgst, labels); err != nil {
		return Info{}, fmt.Errorf("update %s: %w", dgst, err)
	}
	if len(labels) == 0 {
		labels = nil
	}
	cur.Labels = labels
	return cur, nil
}

type labelsFile struct {
	Labels map[string]string `json:"labels"`
}

// readLabels reads the labels sidecar of dgst (nil if there is none).
func (s *Store) readLabels(dgst digest.Digest) (map[string]string, error) {
	b, err := os.ReadFile(s.labelsPath(dgst))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var l labelsFile
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("labels of %s: %w", dgst, err)
	}
	if len(l.Labels) == 0 {
		return nil, nil
	}
	return l.Labels, nil
}

// writeLabels durably replaces the labels sidecar of dgst, or removes it
// when labels is empty. The caller holds the digest's label stripe lock.
func (s *Store) writeLabels(dgst digest.Digest, labels map[string]string) error {
	path := s.labelsPath(dgst)
	if len(labels) == 0 {
		err := os.Remove(path)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		return syncDir(filepath.Dir(path))
	}
	b, err := json.Marshal(labelsFile{Labels: labels})
	if err != nil {
		return err
	}
	return s.writeAtomic(path, b, true)
}

// validateLabels checks label keys and values: a non-empty key, valid UTF-8
// (they round-trip through JSON) and at most maxLabelSize bytes together.
func validateLabels(labels map[string]string) error {
	for k, v := range labels {
		if k == "" || len(k)+len(v) > maxLabelSize || !utf8.ValidString(k) || !utf8.ValidString(v) {
			return fmt.Errorf("label %.100q: want a non-empty key and at most %d bytes of UTF-8: %w", k, maxLabelSize, ErrInvalidArgument)
		}
	}
	return nil
}

// notFound maps a file-not-found error to ErrNotFound and leaves others as
// they are.
func notFound(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return ErrNotFound
	}
	return err
}
