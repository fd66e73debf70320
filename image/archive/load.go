package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-engine/berth/content"
)

// Loaded is an image Load put in the store.
type Loaded struct {
	// Names are the image's references, normalised
	// ("docker.io/library/busybox:latest"); none for an unnamed image.
	Names []string
	// Target is the image's manifest (or, from an oci-archive, possibly an
	// index) in the store.
	Target ocispec.Descriptor
}

// Load reads an image archive of either format (see the package
// documentation) from r, puts its blobs into store and returns its images.
// Metadata files are spooled to a directory created in tmpDir (os.TempDir()
// when empty) and removed before Load returns. On error no image is
// returned; blobs already stored stay (they are verified, and unreferenced).
func Load(ctx context.Context, r io.Reader, store *content.Store, tmpDir string) ([]Loaded, error) {
	if tmpDir == "" {
		tmpDir = os.TempDir()
	}
	spool, err := os.MkdirTemp(tmpDir, "berth-load-")
	if err != nil {
		return nil, fmt.Errorf("load image archive: %w", err)
	}
	defer os.RemoveAll(spool)

	a := &archiveFiles{store: store, spoolDir: spool, files: map[string]*archiveFile{}}
	if err := a.read(ctx, r); err != nil {
		return nil, fmt.Errorf("load image archive: %w", err)
	}
	var images []Loaded
	switch {
	case a.files[dockerManifestFile] != nil:
		images, err = a.loadDocker(ctx)
	case a.files[ocispec.ImageIndexFile] != nil:
		images, err = a.loadOCI(ctx)
	case a.files[dockerRepositoriesFile] != nil:
		err = fmt.Errorf("%w: a docker archive without manifest.json (docker before 1.10) is not supported", ErrUnknownFormat)
	default:
		err = fmt.Errorf("%w: neither manifest.json nor index.json in the archive", ErrUnknownFormat)
	}
	if err != nil {
		return nil, fmt.Errorf("load image archive: %w", err)
	}
	if len(images) == 0 {
		return nil, fmt.Errorf("load image archive: %w: no images in the archive", ErrInvalidArchive)
	}
	return images, nil
}

// invalid returns an error wrapping ErrInvalidArchive.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidArchive, fmt.Sprintf(format, args...))
}

// archiveFile is a file of the archive: a link to another file, a metadata
// file spooled to disk, or a blob in the store.
type archiveFile struct {
	link    string        // archive path of a symlink's or hard link's target
	spooled string        // path of the spooled copy
	blob    digest.Digest // the blob holding the file's bytes
	size    int64
}

// archiveFiles is an archive read into the spool directory and the store.
type archiveFiles struct {
	store    *content.Store
	spoolDir string
	files    map[string]*archiveFile
}

// read consumes the tar stream r, storing each file.
func (a *archiveFiles) read(ctx context.Context, r io.Reader) error {
	tr := tar.NewReader(ctxReader{ctx, r})
	src := archiveReader{ctx, tr}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("%w: read tar: %w", ErrInvalidArchive, err)
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		name, err := cleanPath(hdr.Name)
		if err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeDir {
			continue
		}
		if name == "." {
			return invalid("entry %q has no name", hdr.Name)
		}
		if a.files[name] != nil {
			return invalid("%s appears twice", name)
		}
		var f *archiveFile
		switch hdr.Typeflag {
		case tar.TypeReg:
			if isSparse(hdr) {
				// A few bytes could expand to terabytes of zeros.
				return invalid("%s is a sparse file", name)
			}
			f, err = a.storeFile(ctx, name, hdr.Size, src)
		case tar.TypeSymlink:
			if path.IsAbs(hdr.Linkname) {
				return invalid("symlink %s points to the absolute path %q", name, hdr.Linkname)
			}
			target, err := cleanLinkTarget(path.Join(path.Dir(name), hdr.Linkname))
			if err != nil {
				return fmt.Errorf("symlink %s: %w", name, err)
			}
			f = &archiveFile{link: target}
		case tar.TypeLink:
			target, err := cleanLinkTarget(hdr.Linkname)
			if err != nil {
				return fmt.Errorf("hard link %s: %w", name, err)
			}
			f = &archiveFile{link: target}
		default:
			return invalid("%s: unsupported tar entry type %q", name, hdr.Typeflag)
		}
		if err != nil {
			return err
		}
		a.files[name] = f
	}
}

// isSparse reports whether a regular file entry is a GNU sparse file in
// PAX format (the old GNU format has a type of its own, TypeGNUSparse).
func isSparse(hdr *tar.Header) bool {
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// cleanPath returns an archive entry's name, relative and cleaned, refusing
// absolute names and ".." components.
func cleanPath(name string) (string, error) {
	if path.IsAbs(name) {
		return "", invalid("absolute path %q", name)
	}
	for _, c := range strings.Split(name, "/") {
		if c == ".." {
			return "", invalid("path %q leaves the archive", name)
		}
	}
	return path.Clean(name), nil
}

// cleanLinkTarget cleans a link target already joined to the link's
// directory, which must stay inside the archive.
func cleanLinkTarget(target string) (string, error) {
	if path.IsAbs(target) {
		return "", invalid("link target %q is absolute", target)
	}
	t := path.Clean(target)
	if t == ".." || strings.HasPrefix(t, "../") {
		return "", invalid("link target %q leaves the archive", target)
	}
	return t, nil
}

// archiveReader reads a tar entry's content, reporting a failure of the
// archive itself as ErrInvalidArchive.
type archiveReader struct {
	ctx context.Context
	tr  *tar.Reader
}

func (r archiveReader) Read(p []byte) (int, error) {
	n, err := r.tr.Read(p)
	if err != nil && err != io.EOF && r.ctx.Err() == nil {
		err = fmt.Errorf("%w: read tar: %w", ErrInvalidArchive, err)
	}
	return n, err
}

// isMetadata reports whether a file, by its name, is a metadata document to
// spool rather than a blob to store.
func isMetadata(name string) bool {
	switch path.Base(name) {
	case ocispec.ImageLayoutFile, dockerRepositoriesFile, "VERSION", "json":
		return true
	}
	return strings.HasSuffix(name, ".json")
}

// blobName returns the digest a file named blobs/<alg>/<hex> must have.
func blobName(name string) (digest.Digest, bool, error) {
	rest, ok := strings.CutPrefix(name, ocispec.ImageBlobsDir+"/")
	if !ok {
		return "", false, nil
	}
	alg, hex, ok := strings.Cut(rest, "/")
	d := digest.Digest(alg + ":" + hex)
	if !ok || strings.Contains(hex, "/") || content.ValidateDigest(d) != nil {
		return "", true, invalid("%s: not a blob name (blobs/<algorithm>/<hex>)", name)
	}
	return d, true, nil
}

// storeFile stores the regular file name of size bytes read from r: a blob
// named by its digest goes into the store under that digest (verified), a
// metadata file is spooled, anything else goes into the store under the
// digest of its bytes.
func (a *archiveFiles) storeFile(ctx context.Context, name string, size int64, r io.Reader) (*archiveFile, error) {
	dgst, isBlob, err := blobName(name)
	if err != nil {
		return nil, err
	}
	switch {
	case isBlob:
		if err := a.storeBlob(ctx, dgst, size, r); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return &archiveFile{blob: dgst, size: size}, nil
	case isMetadata(name):
		if size > maxMetadataSize {
			return nil, invalid("%s: %d bytes is more than the %d a metadata file may have", name, size, maxMetadataSize)
		}
		p := filepath.Join(a.spoolDir, strconv.Itoa(len(a.files)))
		if err := spool(p, size, r); err != nil {
			return nil, fmt.Errorf("spool %s: %w", name, err)
		}
		return &archiveFile{spooled: p, size: size}, nil
	default:
		dgst, err := a.storeUnnamed(ctx, size, r)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return &archiveFile{blob: dgst, size: size}, nil
	}
}

// spool copies size bytes of r to the new file p.
func spool(p string, size int64, r io.Reader) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.CopyN(f, r, size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// ingestRef is the content store ingest ref of a blob loaded from an
// archive.
func ingestRef(dgst digest.Digest) string { return "archive-load-" + dgst.String() }

// storeBlob writes the blob dgst of size bytes from r into the store; a
// mismatch is ErrInvalidArchive.
func (a *archiveFiles) storeBlob(ctx context.Context, dgst digest.Digest, size int64, r io.Reader) error {
	ok, err := present(ctx, a.store, dgst)
	if err != nil {
		return err
	}
	if ok {
		// Nothing to write, but an archive whose blob does not match its
		// name is rejected all the same.
		return verifyBlob(dgst, size, r)
	}
	err = content.WriteBlob(ctx, a.store, ingestRef(dgst), r, dgst, size)
	if err == nil {
		return nil
	}
	// An interrupted load would leave an ingest nobody resumes.
	a.abort(ctx, ingestRef(dgst))
	if errors.Is(err, content.ErrDigestMismatch) || errors.Is(err, content.ErrSizeMismatch) {
		return fmt.Errorf("%w: %w", ErrInvalidArchive, err)
	}
	return err
}

// verifyBlob checks that r holds the blob dgst of size bytes.
func verifyBlob(dgst digest.Digest, size int64, r io.Reader) error {
	v := dgst.Verifier()
	n, err := io.Copy(v, r)
	if err != nil {
		return err
	}
	if n != size {
		return invalid("blob %s: %d bytes, want %d", dgst, n, size)
	}
	if !v.Verified() {
		return fmt.Errorf("%w: blob %s: %w", ErrInvalidArchive, dgst, content.ErrDigestMismatch)
	}
	return nil
}

// storeUnnamed writes size bytes from r into the store as the blob of
// their sha256 digest, and returns the digest.
func (a *archiveFiles) storeUnnamed(ctx context.Context, size int64, r io.Reader) (digest.Digest, error) {
	ref := "archive-load-" + rand.Text()
	w, err := a.store.Writer(ctx, ref, "", size)
	if err != nil {
		return "", err
	}
	defer w.Close()
	if _, err := io.Copy(w, r); err != nil {
		w.Close()
		a.abort(ctx, ref)
		return "", err
	}
	if err := w.Commit(ctx); err != nil {
		w.Close()
		a.abort(ctx, ref)
		if errors.Is(err, content.ErrSizeMismatch) {
			return "", fmt.Errorf("%w: %w", ErrInvalidArchive, err)
		}
		return "", err
	}
	return w.Digest(), nil
}

// abortTimeout bounds the wait for another process holding an ingest that
// abort removes.
const abortTimeout = 5 * time.Second

// abort removes the ingest ref, even when ctx is done: a load is not
// resumed, so its ingests would only be litter.
func (a *archiveFiles) abort(ctx context.Context, ref string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
	defer cancel()
	_ = a.store.AbortIngest(ctx, ref)
}

// maxLinkHops bounds the links followed to find a file.
const maxLinkHops = 16

// resolve returns the file name refers to, following links.
func (a *archiveFiles) resolve(name string) (*archiveFile, string, error) {
	p, err := cleanPath(name)
	if err != nil {
		return nil, "", err
	}
	for range maxLinkHops {
		f := a.files[p]
		if f == nil {
			return nil, "", invalid("%s is not in the archive", p)
		}
		if f.link == "" {
			return f, p, nil
		}
		p = f.link
	}
	return nil, "", invalid("%s: more than %d links", name, maxLinkHops)
}

// readMetadata returns the content of the document name, at most
// maxMetadataSize bytes.
func (a *archiveFiles) readMetadata(ctx context.Context, name string) ([]byte, error) {
	f, p, err := a.resolve(name)
	if err != nil {
		return nil, err
	}
	if f.size > maxMetadataSize {
		return nil, invalid("%s: %d bytes is more than the %d a metadata file may have", p, f.size, maxMetadataSize)
	}
	if f.spooled != "" {
		return os.ReadFile(f.spooled)
	}
	return content.ReadBlob(ctx, a.store, f.blob)
}

// blobOf returns the blob holding the file name, storing a spooled file
// first.
func (a *archiveFiles) blobOf(ctx context.Context, name string) (digest.Digest, int64, error) {
	f, p, err := a.resolve(name)
	if err != nil {
		return "", 0, err
	}
	if f.blob == "" {
		data, err := os.ReadFile(f.spooled)
		if err != nil {
			return "", 0, err
		}
		dgst := digest.FromBytes(data)
		if err := a.storeBlob(ctx, dgst, int64(len(data)), bytes.NewReader(data)); err != nil {
			return "", 0, fmt.Errorf("%s: %w", p, err)
		}
		f.blob = dgst
	}
	return f.blob, f.size, nil
}
