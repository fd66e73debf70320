package content

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"
)

// WriteBlob stores the content read from r as the blob expected, of size
// bytes (or UnknownSize), through the ingest ref. It returns nil once the
// blob is in the store: written now, completed from an earlier interrupted
// ingest of ref, or found there already (committed by a concurrent writer in
// this or another process, which WriteBlob waits for when it holds ref).
//
// When an earlier ingest is resumed, r's first Status().Offset bytes are
// skipped: by Seek if r is an io.Seeker, else by reading and discarding them.
// (A caller that can request a byte range uses Store.Writer directly.) On a
// failure before the commit, the ingest is kept for a later resumption.
//
// Labels given WithLabels end up on the blob in every case: they are the
// labels of a new blob and are merged into an existing blob's.
func WriteBlob(ctx context.Context, s *Store, ref string, r io.Reader, expected digest.Digest, size int64, opts ...CommitOpt) error {
	if err := ValidateDigest(expected); err != nil {
		return fmt.Errorf("write blob: %w", err)
	}
	w, err := s.Writer(ctx, ref, expected, size)
	if errors.Is(err, ErrAlreadyExists) {
		return mergeLabels(ctx, s, expected, opts)
	}
	if err != nil {
		return err
	}
	defer w.Close()
	if off := w.Status().Offset; off > 0 {
		if sk, ok := r.(io.Seeker); ok {
			_, err = sk.Seek(off, io.SeekCurrent)
		} else {
			_, err = io.CopyN(io.Discard, r, off)
		}
		if err != nil {
			return fmt.Errorf("write blob %s: skip the %d bytes already written: %w", expected, off, err)
		}
	}
	if _, err := io.Copy(w, r); err != nil {
		return fmt.Errorf("write blob %s: %w", expected, err)
	}
	return w.Commit(ctx, opts...)
}

// mergeLabels applies the labels of opts to the existing blob dgst.
func mergeLabels(ctx context.Context, s *Store, dgst digest.Digest, opts []CommitOpt) error {
	labels, err := commitLabels(opts)
	if err != nil || len(labels) == 0 {
		return err
	}
	paths := make([]string, 0, len(labels))
	for k := range labels {
		paths = append(paths, "labels."+k)
	}
	_, err = s.Update(ctx, Info{Digest: dgst, Labels: labels}, paths...)
	return err
}
