package archive

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-engine/berth/content"
)

// blobPath is where an OCI image layout keeps the blob dgst.
func blobPath(dgst digest.Digest) string {
	return path.Join(ocispec.ImageBlobsDir, dgst.Algorithm().String(), dgst.Encoded())
}

// epoch is the modification time of every entry Save writes, so that the
// same images always give the same archive.
var epoch = time.Unix(0, 0).UTC()

// layoutWriter writes an OCI image layout (and docker-archive's files next
// to it) as a tar stream, each blob once.
type layoutWriter struct {
	ctx   context.Context
	tw    *tar.Writer
	dirs  map[string]bool
	blobs map[digest.Digest]bool
}

func newLayoutWriter(ctx context.Context, w io.Writer) *layoutWriter {
	return &layoutWriter{ctx: ctx, tw: tar.NewWriter(w), dirs: map[string]bool{}, blobs: map[digest.Digest]bool{}}
}

// mkdirAll writes the directory entries of dir and its parents not written
// yet.
func (lw *layoutWriter) mkdirAll(dir string) error {
	if dir == "." || dir == "/" || lw.dirs[dir] {
		return nil
	}
	if err := lw.mkdirAll(path.Dir(dir)); err != nil {
		return err
	}
	lw.dirs[dir] = true
	hdr := &tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755, ModTime: epoch}
	if err := lw.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("write %s: %w", hdr.Name, err)
	}
	return nil
}

// header starts the regular file name of size bytes.
func (lw *layoutWriter) header(name string, size int64) error {
	if err := lw.ctx.Err(); err != nil {
		return err
	}
	if err := lw.mkdirAll(path.Dir(name)); err != nil {
		return err
	}
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644, ModTime: epoch}
	if err := lw.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// writeFile writes the regular file name holding data.
func (lw *layoutWriter) writeFile(name string, data []byte) error {
	if err := lw.header(name, int64(len(data))); err != nil {
		return err
	}
	if _, err := lw.tw.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// hasBlob reports whether the blob dgst was written already.
func (lw *layoutWriter) hasBlob(dgst digest.Digest) bool { return lw.blobs[dgst] }

// writeBlobBytes writes the blob dgst from memory, unless it was written
// already, checking that data hashes to dgst.
func (lw *layoutWriter) writeBlobBytes(dgst digest.Digest, data []byte) error {
	if lw.blobs[dgst] {
		return nil
	}
	if got := dgst.Algorithm().FromBytes(data); got != dgst {
		return fmt.Errorf("blob %s: content hashes to %s: %w", dgst, got, content.ErrDigestMismatch)
	}
	if err := lw.writeFile(blobPath(dgst), data); err != nil {
		return err
	}
	lw.blobs[dgst] = true
	return nil
}

// writeBlob writes the blob dgst of size bytes read from r, unless it was
// written already, failing if r yields other content.
func (lw *layoutWriter) writeBlob(dgst digest.Digest, size int64, r io.Reader) error {
	if lw.blobs[dgst] {
		return nil
	}
	if err := lw.header(blobPath(dgst), size); err != nil {
		return err
	}
	v := dgst.Verifier()
	src := ctxReader{lw.ctx, r}
	if _, err := io.CopyN(io.MultiWriter(lw.tw, v), src, size); err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("blob %s: shorter than %d bytes: %w", dgst, size, content.ErrSizeMismatch)
		}
		return fmt.Errorf("write blob %s: %w", dgst, err)
	}
	if n, _ := io.ReadFull(src, make([]byte, 1)); n > 0 {
		return fmt.Errorf("blob %s: longer than %d bytes: %w", dgst, size, content.ErrSizeMismatch)
	}
	if !v.Verified() {
		return fmt.Errorf("blob %s: %w", dgst, content.ErrDigestMismatch)
	}
	lw.blobs[dgst] = true
	return nil
}

// copyBlob writes the store's blob desc unchanged, unless it was written
// already.
func (lw *layoutWriter) copyBlob(store *content.Store, desc ocispec.Descriptor) error {
	if lw.blobs[desc.Digest] {
		return nil
	}
	ra, err := store.ReaderAt(lw.ctx, desc.Digest)
	if err != nil {
		return err
	}
	defer ra.Close()
	if desc.Size != ra.Size() {
		return fmt.Errorf("blob %s: descriptor says %d bytes, the store has %d: %w", desc.Digest, desc.Size, ra.Size(), content.ErrSizeMismatch)
	}
	return lw.writeBlob(desc.Digest, ra.Size(), io.NewSectionReader(ra, 0, ra.Size()))
}

// close writes the end of the tar stream.
func (lw *layoutWriter) close() error {
	if err := lw.tw.Close(); err != nil {
		return fmt.Errorf("finish tar stream: %w", err)
	}
	return nil
}
