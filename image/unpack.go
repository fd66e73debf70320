package image

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/berth-engine/berth/content"
	"github.com/berth-engine/berth/internal/failpoint"
	"github.com/berth-engine/berth/snapshot"
	"github.com/berth-engine/berth/snapshot/archive"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// labelSize records on a committed layer snapshot the bytes of file
// content its layer holds (docker's layer size), so that image sizes need
// no walk of the tree.
const labelSize = "berth.size"

// tmpSnapshotPrefix starts the keys of snapshots being unpacked; GC removes
// those no live lease holds.
const tmpSnapshotPrefix = "tmp-"

// fetchFunc opens a layer blob's bytes from offset on (a registry
// download); nil when the blob must already be in the store.
type fetchFunc func(ctx context.Context, offset int64) (io.ReadCloser, error)

func ingestRef(d digest.Digest) string { return "layer-" + d.String() }

// ensureLayer makes sure job's blob is in the content store and its
// snapshot is committed. What is missing is fetched: a layer that needs
// unpacking is streamed from the registry through the content writer and
// the decompressor into the snapshot in one pass. prev is closed when the
// layer below is done; the snapshot is committed only after it. It returns
// whether anything was downloaded and the layer's size.
func (s *Store) ensureLayer(ctx context.Context, l *lease, j layerJob, fetch fetchFunc, labels map[string]string, prev <-chan struct{}, it *item) (bool, int64, error) {
	chain := j.chainID.String()
	info, serr := s.snaps.Stat(ctx, chain)
	haveSnap := serr == nil && info.Kind == snapshot.KindCommitted
	_, berr := s.content.Info(ctx, j.desc.Digest)
	haveBlob := berr == nil
	if haveSnap {
		size := sizeLabel(info)
		if haveBlob {
			it.done("Already exists")
			return false, size, nil
		}
		if fetch == nil {
			return false, 0, fmt.Errorf("blob %s: %w", j.desc.Digest, content.ErrNotFound)
		}
		it.action("Downloading")
		if err := s.download(ctx, j.desc, fetch, labels, it); err != nil {
			return false, 0, err
		}
		it.done("Download complete")
		return true, size, nil
	}
	if !haveBlob && fetch == nil {
		return false, 0, fmt.Errorf("blob %s: %w", j.desc.Digest, content.ErrNotFound)
	}
	downloaded := false
	var w *content.Writer
	if !haveBlob {
		var err error
		w, err = s.content.Writer(ctx, ingestRef(j.desc.Digest), j.desc.Digest, j.desc.Size)
		switch {
		case errors.Is(err, content.ErrAlreadyExists):
			w = nil // a concurrent pull committed it
		case err != nil:
			return false, 0, err
		case w.Status().Offset > 0:
			// An interrupted pull left part of the blob: finish the
			// download with a range request, then unpack from the store.
			err := s.resume(ctx, w, j.desc, fetch, labels, it)
			w.Close()
			w = nil
			if err != nil {
				return false, 0, err
			}
			downloaded = true
		default:
			downloaded = true
		}
	}
	if w != nil {
		defer w.Close()
	}

	key := tmpSnapshotPrefix + "extract-" + randomHex() + "-" + j.chainID.Encoded()[:16]
	if err := l.add(ctx, nil, []string{key}); err != nil {
		return false, 0, err
	}
	// Overlay layers are unpacked into an upper directory of their own,
	// independent of the layers below, so every layer unpacks at once and
	// is put on its parent when committed. The native driver copies the
	// parent's tree first, so it waits for it.
	independent := s.snaps.Driver() == "overlay"
	prepParent := ""
	if !independent {
		if err := s.waitParent(ctx, prev, j.parent); err != nil {
			return false, 0, err
		}
		prepParent = j.parent.String()
	}
	if _, err := s.snaps.Prepare(ctx, key, prepParent, nil); err != nil {
		return false, 0, fmt.Errorf("prepare snapshot: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			s.snaps.Remove(context.WithoutCancel(ctx), key)
		}
	}()

	var src io.Reader
	if w != nil {
		body, err := fetch(ctx, 0)
		if err != nil {
			return false, 0, err
		}
		defer body.Close()
		it.action("Downloading")
		src = io.TeeReader(&halfwayReader{r: it.reader(body), half: j.desc.Size / 2}, w)
	} else {
		ra, err := s.content.ReaderAt(ctx, j.desc.Digest)
		if err != nil {
			return false, 0, err
		}
		defer ra.Close()
		it.action("Extracting")
		src = it.reader(io.NewSectionReader(ra, 0, ra.Size()))
	}
	size, err := s.unpackStream(ctx, key, src, j.diffID)
	if err != nil {
		return false, 0, err
	}
	if w != nil {
		if err := w.Commit(ctx, content.WithLabels(labels)); err != nil {
			return false, 0, err
		}
		failpoint.Fire("image.pull.blob-committed")
	}
	if independent && prev != nil {
		select {
		case <-prev:
		default:
			it.action("Download complete") // waiting for the layer below
		}
	}
	if err := s.waitParent(ctx, prev, j.parent); err != nil {
		return false, 0, err
	}
	snapLabels := map[string]string{labelSize: strconv.FormatInt(size, 10)}
	if independent {
		err = s.snaps.CommitWithParent(ctx, chain, key, j.parent.String(), snapLabels)
	} else {
		err = s.snaps.Commit(ctx, chain, key, snapLabels)
	}
	switch {
	case errors.Is(err, snapshot.ErrAlreadyExists):
		// Another process unpacked the same layer first: ours goes.
	case err != nil:
		return false, 0, fmt.Errorf("commit snapshot: %w", err)
	default:
		committed = true
		failpoint.Fire("image.pull.snapshot-committed")
	}
	if downloaded {
		it.done("Pull complete")
	} else {
		it.done("Extracted")
	}
	return downloaded, size, nil
}

// unpackStream decompresses src (gzip, zstd or plain tar), applies it to
// the active snapshot key and checks the uncompressed stream against
// diffID. src is read to its end.
func (s *Store) unpackStream(ctx context.Context, key string, src io.Reader, diffID digest.Digest) (int64, error) {
	dr, _, err := archive.DecompressStream(src)
	if err != nil {
		return 0, err
	}
	defer dr.Close()
	h := diffID.Algorithm().Digester()
	// Download, decompression and hashing run ahead in one goroutine,
	// file creation in this one: a single big layer keeps two cores busy.
	// The producer also reads what follows the tar's end, which is part of
	// the diff ID, and the compressed stream's trailer, which is part of
	// the blob's digest.
	ra := readahead(func(w io.Writer) error {
		if _, err := io.Copy(io.MultiWriter(w, h.Hash()), dr); err != nil {
			return err
		}
		_, err := io.Copy(io.Discard, src)
		return err
	})
	defer ra.Close()
	size, err := s.snaps.ApplyLayer(ctx, key, ra)
	if err != nil {
		return 0, fmt.Errorf("unpack: %w", err)
	}
	if _, err := io.Copy(io.Discard, ra); err != nil {
		return 0, fmt.Errorf("unpack: %w", err)
	}
	if got := h.Digest(); got != diffID {
		return 0, fmt.Errorf("unpack: %w: uncompressed layer is %s, the configuration says %s", content.ErrDigestMismatch, got, diffID)
	}
	return size, nil
}

// download stores a blob without unpacking it, resuming a partial ingest.
func (s *Store) download(ctx context.Context, desc ocispec.Descriptor, fetch fetchFunc, labels map[string]string, it *item) error {
	w, err := s.content.Writer(ctx, ingestRef(desc.Digest), desc.Digest, desc.Size)
	if errors.Is(err, content.ErrAlreadyExists) {
		return nil
	}
	if err != nil {
		return err
	}
	defer w.Close()
	return s.resume(ctx, w, desc, fetch, labels, it)
}

// resume completes the ingest w from its current offset and commits it.
func (s *Store) resume(ctx context.Context, w *content.Writer, desc ocispec.Descriptor, fetch fetchFunc, labels map[string]string, it *item) error {
	off := w.Status().Offset
	it.set(off)
	it.action("Downloading")
	body, err := fetch(ctx, off)
	if err != nil {
		return err
	}
	defer body.Close()
	if _, err := io.Copy(w, it.reader(body)); err != nil {
		return fmt.Errorf("download %s: %w", desc.Digest, err)
	}
	return w.Commit(ctx, content.WithLabels(labels))
}

// halfwayReader fires the "image.pull.layer-half" failpoint once half of
// a layer has streamed in.
type halfwayReader struct {
	r     io.Reader
	n     int64
	half  int64
	fired bool
}

func (h *halfwayReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.n += int64(n)
	if !h.fired && h.n >= h.half {
		h.fired = true
		failpoint.Fire("image.pull.layer-half")
	}
	return n, err
}

func sizeLabel(info snapshot.Info) int64 {
	n, _ := strconv.ParseInt(info.Labels[labelSize], 10, 64)
	return n
}

func randomHex() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
