package content

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// UnknownSize, passed as the expected size to Store.Writer, means the size
// is not known in advance (and Status.Total reports it the same way).
const UnknownSize = -1

const (
	statusFileName = "status.json"
	dataFileName   = "data"
	// copyBufSize is the chunk size of ReadFrom and of re-hashing on resume.
	copyBufSize = 1 << 20
)

// Status describes an ingest.
type Status struct {
	// Ref names the ingest.
	Ref string
	// Expected is the digest the content must have ("" if unknown).
	Expected digest.Digest
	// Total is the expected size, or UnknownSize.
	Total int64
	// Offset is how many bytes have been written (and hashed): where a
	// resumed write continues.
	Offset int64
	// StartedAt is when the ingest began (it survives resumption).
	StartedAt time.Time
	// UpdatedAt is when the ingest was last written to (or opened).
	UpdatedAt time.Time
}

// statusFile is status.json, the ingest's advisory record. The data file's
// length is authoritative for the offset.
type statusFile struct {
	Ref       string        `json:"ref"`
	Expected  digest.Digest `json:"expected,omitempty"`
	Total     int64         `json:"total"`
	Offset    int64         `json:"offset"`
	StartedAt time.Time     `json:"startedAt"`
	UpdatedAt time.Time     `json:"updatedAt"`
}

// CommitOpt configures Writer.Commit and WriteBlob.
type CommitOpt func(*commitConfig)

type commitConfig struct {
	labels map[string]string
}

// WithLabels gives the committed blob these labels (an empty value means no
// label). A new blob gets exactly these labels; a blob that was already
// present gets them merged into its own.
func WithLabels(labels map[string]string) CommitOpt {
	return func(c *commitConfig) {
		if c.labels == nil {
			c.labels = map[string]string{}
		}
		maps.Copy(c.labels, labels)
	}
}

// commitLabels collects the labels of opts, dropping empty values (an empty
// value means no label, as in Store.Update), and validates them.
func commitLabels(opts []CommitOpt) (map[string]string, error) {
	var cfg commitConfig
	for _, o := range opts {
		o(&cfg)
	}
	maps.DeleteFunc(cfg.labels, func(_, v string) bool { return v == "" })
	if err := validateLabels(cfg.labels); err != nil {
		return nil, err
	}
	return cfg.labels, nil
}

// Writer writes one ingest. It holds the ingest's lock until Commit or Close,
// so always call one of them. A Writer is not safe for concurrent use.
type Writer struct {
	s   *Store
	ctx context.Context
	ref string
	dir string

	lock *os.File
	data *os.File
	alg  digest.Algorithm
	hash hash.Hash
	buf  []byte

	expected digest.Digest
	total    int64
	offset   int64
	// writeback is the offset up to which writeback was started.
	writeback int64
	started   time.Time
	updated   time.Time
	committed digest.Digest
	closed    bool
}

// Writer opens the ingest ref to write the blob expected (or, with expected
// "", whatever is written; it is then hashed with sha256) of expectedSize
// bytes (or UnknownSize).
//
// If the ingest exists (a previous Writer was closed without committing, or
// its process died), it is resumed: Status().Offset tells how much is already
// written, and writing continues from there. A resumed ingest recorded with
// a different expected digest or size is restarted from zero instead; an
// empty expected or UnknownSize adopts the recorded values.
//
// Only one Writer holds a ref at a time, across processes: while another
// holds it, Writer waits until it is released or ctx is done, and then fails
// with an error wrapping ErrLocked (and ctx.Err()). If the expected blob is
// already in the store once the ref is held, the ingest is discarded and
// Writer fails with an error wrapping ErrAlreadyExists: the blob is there.
//
// ctx governs the whole ingest: once it is done, Write fails with ctx.Err().
func (s *Store) Writer(ctx context.Context, ref string, expected digest.Digest, expectedSize int64) (*Writer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := validateRef(ref); err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	if expected != "" {
		if err := ValidateDigest(expected); err != nil {
			return nil, fmt.Errorf("ingest %q: %w", ref, err)
		}
	}
	if expectedSize < 0 {
		expectedSize = UnknownSize
	}
	w, err := s.openIngest(ctx, ref, expected, expectedSize)
	if err != nil {
		return nil, fmt.Errorf("ingest %q: %w", ref, err)
	}
	return w, nil
}

func (s *Store) openIngest(ctx context.Context, ref string, expected digest.Digest, total int64) (*Writer, error) {
	dir := s.ingestDir(ref)
	var present func() bool
	if expected != "" {
		// While another Writer holds the ref, the blob may appear (that
		// Writer, or another ref, committed it): stop waiting then.
		present = func() bool {
			_, err := os.Lstat(s.blobPath(expected))
			return err == nil
		}
	}
	lock, err := lockDir(ctx, dir, true, present)
	if errors.Is(err, errPresent) {
		return nil, fmt.Errorf("blob %s: %w", expected, ErrAlreadyExists)
	}
	if err != nil {
		return nil, err
	}
	fire("ingest-locked")
	w := &Writer{s: s, ctx: ctx, ref: ref, dir: dir, lock: lock, expected: expected, total: total}
	ok := false
	defer func() {
		if !ok {
			w.release()
		}
	}()

	st, err := readStatus(dir)
	if err != nil {
		return nil, err
	}
	resume := st != nil && st.Ref == ref &&
		(expected == "" || st.Expected == "" || expected == st.Expected) &&
		(total < 0 || st.Total < 0 || total == st.Total)
	if resume {
		if w.expected == "" {
			w.expected = st.Expected
		}
		if w.total < 0 {
			w.total = st.Total
		}
		w.started = st.StartedAt
	}
	if w.expected != "" {
		if _, err := os.Lstat(s.blobPath(w.expected)); err == nil {
			w.removeIngest()
			ok = true
			return nil, fmt.Errorf("blob %s: %w", w.expected, ErrAlreadyExists)
		}
	}
	w.alg = digest.SHA256
	if w.expected != "" {
		w.alg = w.expected.Algorithm()
	}
	w.hash = w.alg.Hash()

	if resume {
		if err := w.reopenData(); err != nil {
			return nil, err
		}
	}
	if w.data == nil {
		if err := w.createData(); err != nil {
			return nil, err
		}
	}
	w.updated = time.Now()
	if w.started.IsZero() {
		w.started = w.updated
	}
	if err := w.writeStatus(); err != nil {
		return nil, err
	}
	ok = true
	return w, nil
}

// readStatus reads the ingest's status.json: nil if there is none or it is
// unreadable (the ingest then starts over).
func readStatus(dir string) (*statusFile, error) {
	b, err := os.ReadFile(filepath.Join(dir, statusFileName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var st statusFile
	if json.Unmarshal(b, &st) != nil {
		return nil, nil
	}
	return &st, nil
}

// createData starts the data file afresh.
func (w *Writer) createData() error {
	path := filepath.Join(w.dir, dataFileName)
	// Remove rather than truncate: the old file may be a hard link to a
	// published blob (a crash between link and unlink in the fallback).
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o644)
	if err != nil {
		return err
	}
	w.data, w.offset = f, 0
	w.writeback = 0
	w.hash.Reset()
	return nil
}

// reopenData resumes the data file left by an earlier Writer, re-hashing its
// content. It leaves w.data nil when there is nothing usable to resume.
func (w *Writer) reopenData() error {
	path := filepath.Join(w.dir, dataFileName)
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	st, _ := fi.Sys().(*syscall.Stat_t)
	if !fi.Mode().IsRegular() || st == nil || st.Nlink != 1 {
		return nil // not ours to write to: createData replaces it
	}
	if w.total >= 0 && fi.Size() > w.total {
		return nil
	}
	if fi.Mode().Perm() != 0o644 {
		// A crash after Commit made it read-only, before it was published.
		if err := os.Chmod(path, 0o644); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	w.buf = make([]byte, copyBufSize)
	var n int64
	for {
		if err := w.ctx.Err(); err != nil {
			f.Close()
			return err
		}
		m, err := f.Read(w.buf)
		w.hash.Write(w.buf[:m])
		n += int64(m)
		if err == io.EOF {
			break
		}
		if err != nil {
			f.Close()
			return fmt.Errorf("re-hash %s: %w", path, err)
		}
	}
	w.data, w.offset = f, n
	w.writeback = n
	return nil
}

// writeStatus records the ingest in status.json. It is not fsynced: it is
// advisory and the crash model is a killed process, which loses nothing the
// kernel already has.
func (w *Writer) writeStatus() error {
	b, err := json.Marshal(statusFile{
		Ref: w.ref, Expected: w.expected, Total: w.total, Offset: w.offset,
		StartedAt: w.started, UpdatedAt: w.updated,
	})
	if err != nil {
		return err
	}
	return w.s.writeAtomic(filepath.Join(w.dir, statusFileName), b, false)
}

// Write appends p to the ingest and hashes it. Writing past the expected size
// fails, without writing anything, with an error wrapping ErrSizeMismatch.
func (w *Writer) Write(p []byte) (int, error) {
	if w.closed {
		return 0, errWriterClosed
	}
	if err := w.ctx.Err(); err != nil {
		return 0, fmt.Errorf("write %q: %w", w.ref, err)
	}
	if w.total >= 0 && w.offset+int64(len(p)) > w.total {
		return 0, fmt.Errorf("write %q: %d bytes at offset %d exceed the expected %d: %w",
			w.ref, len(p), w.offset, w.total, ErrSizeMismatch)
	}
	n, err := w.data.Write(p)
	w.hash.Write(p[:n])
	w.offset += int64(n)
	if n > 0 {
		w.updated = time.Now()
		fire("ingest-data-written")
		w.startWriteback()
	}
	if err != nil {
		return n, fmt.Errorf("write %q: %w", w.ref, err)
	}
	return n, nil
}

// writebackChunk is how much written data a Writer lets accumulate before
// it asks the kernel to start writing it out.
const writebackChunk = 8 << 20

// startWriteback starts (without waiting for) the writeback of each
// completed chunk, so that Commit's fsync finds little left to flush
// instead of the whole blob, and a large pull does not pile up dirty pages
// that stall every other writer of the file system at once. Failures are
// ignored: it is only advice, Commit's fsync is the guarantee.
func (w *Writer) startWriteback() {
	if w.offset-w.writeback < writebackChunk {
		return
	}
	_ = unix.SyncFileRange(int(w.data.Fd()), w.writeback, w.offset-w.writeback, unix.SYNC_FILE_RANGE_WRITE)
	w.writeback = w.offset
}

// ReadFrom writes everything read from r until EOF, in 1 MiB chunks,
// checking the Writer's context between chunks. io.Copy uses it.
func (w *Writer) ReadFrom(r io.Reader) (int64, error) {
	if w.closed {
		return 0, errWriterClosed
	}
	if w.buf == nil {
		w.buf = make([]byte, copyBufSize)
	}
	var total int64
	for {
		if err := w.ctx.Err(); err != nil {
			return total, err
		}
		m, rerr := r.Read(w.buf)
		if m > 0 {
			n, err := w.Write(w.buf[:m])
			total += int64(n)
			if err != nil {
				return total, err
			}
		}
		if rerr == io.EOF {
			return total, nil
		}
		if rerr != nil {
			return total, rerr
		}
	}
}

// Status describes the ingest as this Writer sees it.
func (w *Writer) Status() Status {
	return Status{Ref: w.ref, Expected: w.expected, Total: w.total, Offset: w.offset,
		StartedAt: w.started, UpdatedAt: w.updated}
}

// Digest is the digest of what has been written so far; after Commit, the
// committed blob's digest.
func (w *Writer) Digest() digest.Digest {
	if w.committed != "" {
		return w.committed
	}
	if w.hash == nil {
		return ""
	}
	return digest.NewDigest(w.alg, w.hash)
}

// Truncate discards everything written after the first size bytes (size
// between 0 and Status().Offset), re-hashing what remains. Truncate(0)
// restarts the ingest, e.g. when a server ignores a Range request.
func (w *Writer) Truncate(size int64) error {
	if w.closed {
		return errWriterClosed
	}
	if size < 0 || size > w.offset {
		return fmt.Errorf("truncate %q to %d (offset %d): %w", w.ref, size, w.offset, ErrInvalidArgument)
	}
	if err := w.data.Truncate(size); err != nil {
		return fmt.Errorf("truncate %q: %w", w.ref, err)
	}
	w.hash.Reset()
	if _, err := io.Copy(w.hash, io.NewSectionReader(w.data, 0, size)); err != nil {
		return fmt.Errorf("truncate %q: re-hash: %w", w.ref, err)
	}
	if _, err := w.data.Seek(size, io.SeekStart); err != nil {
		return fmt.Errorf("truncate %q: %w", w.ref, err)
	}
	w.offset = size
	w.updated = time.Now()
	return nil
}

// Commit verifies that the expected size and digest were written and
// publishes the blob: its data is made read-only (0444) and fsynced, moved
// into place without ever replacing an existing blob, and the directory is
// fsynced; then the labels (WithLabels) are written and the ingest removed.
//
// If the blob is already in the store (another ref committed it first),
// Commit succeeds: the ingest is discarded and any labels are merged into
// the existing blob's.
//
// A digest mismatch discards the ingest (its content is wrong) and closes the
// Writer; the error wraps ErrDigestMismatch. Too few bytes fail with an error
// wrapping ErrSizeMismatch and leave the Writer open to write the rest. If
// ctx ends before the blob is published, the ingest stays resumable.
func (w *Writer) Commit(ctx context.Context, opts ...CommitOpt) error {
	if w.closed {
		return errWriterClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	labels, err := commitLabels(opts)
	if err != nil {
		return fmt.Errorf("commit %q: %w", w.ref, err)
	}
	dgst := digest.NewDigest(w.alg, w.hash)
	if w.total >= 0 && w.offset != w.total {
		return fmt.Errorf("commit %s: wrote %d of %d bytes: %w", w.describe(dgst), w.offset, w.total, ErrSizeMismatch)
	}
	if w.expected != "" && dgst != w.expected {
		w.removeIngest()
		return fmt.Errorf("commit %s: content hashes to %s: %w", w.expected, dgst, ErrDigestMismatch)
	}
	// Read-only before it is published, so no blob path ever names a
	// writable file; fsync after, so the mode is durable with the content.
	if err := w.data.Chmod(0o444); err != nil {
		return fmt.Errorf("commit %s: %w", dgst, err)
	}
	if err := w.data.Sync(); err != nil {
		return fmt.Errorf("commit %s: fsync: %w", dgst, err)
	}
	fire("before-rename")
	if err := ctx.Err(); err != nil {
		return err
	}
	published, err := w.s.publish(filepath.Join(w.dir, dataFileName), dgst, labels)
	if published {
		// The blob is in place (even if a later step failed): the ingest
		// has served its purpose.
		w.committed = dgst
		w.removeIngest()
	}
	if err != nil {
		return fmt.Errorf("commit %s: %w", dgst, err)
	}
	return nil
}

// describe names the ingest in errors: its expected digest or its ref.
func (w *Writer) describe(dgst digest.Digest) string {
	if w.expected != "" {
		return string(w.expected)
	}
	return fmt.Sprintf("%q (%s)", w.ref, dgst)
}

// publish moves the verified, read-only data file src into place as the
// blob dgst, unless the blob is already there, and sets its labels. It
// reports whether the blob is in the store, which can be true along with an
// error from a later step. It holds the digest's label stripe lock
// throughout, so a concurrent Update or Delete of the same digest sees the
// blob and its labels change together.
func (s *Store) publish(src string, dgst digest.Digest, labels map[string]string) (bool, error) {
	lk, err := lockStripe(s.labelLockPath(dgst))
	if err != nil {
		return false, err
	}
	defer lk.Close()
	dst := s.blobPath(dgst)
	created, err := s.moveNoReplace(src, dst)
	if err != nil {
		return false, err
	}
	fire("after-rename")
	if created {
		if err := syncDir(filepath.Dir(dst)); err != nil {
			return true, err
		}
		// Exactly the given labels: removes any stale sidecar too.
		if err := s.writeLabels(dgst, labels); err != nil {
			return true, fmt.Errorf("labels: %w", err)
		}
	} else if len(labels) > 0 {
		cur, err := s.readLabels(dgst)
		if err != nil {
			return true, err
		}
		if cur == nil {
			cur = map[string]string{}
		}
		maps.Copy(cur, labels)
		if err := s.writeLabels(dgst, cur); err != nil {
			return true, fmt.Errorf("labels: %w", err)
		}
	}
	fire("labels-written")
	return true, nil
}

// moveNoReplace renames src to dst unless dst exists, reporting whether it
// did. renameat2(RENAME_NOREPLACE) does that atomically; where the file
// system lacks it, link(2) (which fails on an existing name) and unlinking
// src do the same, leaving src as a second name of the blob if the process
// dies in between (reopenData refuses such a file).
func (s *Store) moveNoReplace(src, dst string) (bool, error) {
	if !s.noRenameNoReplace {
		err := unix.Renameat2(unix.AT_FDCWD, src, unix.AT_FDCWD, dst, unix.RENAME_NOREPLACE)
		switch err {
		case nil:
			return true, nil
		case unix.EEXIST:
			return false, nil
		case unix.EINVAL, unix.ENOSYS, unix.ENOTSUP:
			// fall back to link
		default:
			return false, &os.LinkError{Op: "renameat2", Old: src, New: dst, Err: err}
		}
	}
	if err := os.Link(src, dst); err != nil {
		if errors.Is(err, os.ErrExist) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// Close releases the ingest without committing it: it stays on disk to be
// resumed by a later Writer with the same ref, or removed by AbortIngest.
// Close after Commit does nothing.
func (w *Writer) Close() error {
	if w.closed {
		return nil
	}
	err := w.writeStatus()
	w.release()
	if err != nil {
		return fmt.Errorf("close ingest %q: %w", w.ref, err)
	}
	return nil
}

// removeIngest deletes the ingest directory and releases the Writer. The
// lock file goes last, while still locked: a process that opened it and
// waits for it will find it unlinked once it gets it, and start over.
func (w *Writer) removeIngest() {
	if w.data != nil {
		w.data.Close()
		w.data = nil
	}
	removeIngestDir(w.dir)
	w.release()
}

func removeIngestDir(dir string) {
	os.Remove(filepath.Join(dir, dataFileName))
	os.Remove(filepath.Join(dir, statusFileName))
	os.Remove(filepath.Join(dir, lockFileName))
	os.Remove(dir) // fails harmlessly if a new holder already created a lock in it
}

// release closes the files and drops the lock.
func (w *Writer) release() {
	if w.data != nil {
		w.data.Close()
		w.data = nil
	}
	if w.lock != nil {
		w.lock.Close()
		w.lock = nil
	}
	w.buf = nil
	w.closed = true
}

// IngestStatus describes the ingest ref, whether or not a Writer holds it.
// The error wraps ErrNotFound if there is no such ingest.
func (s *Store) IngestStatus(ctx context.Context, ref string) (Status, error) {
	if err := ctx.Err(); err != nil {
		return Status{}, err
	}
	if err := validateRef(ref); err != nil {
		return Status{}, fmt.Errorf("ingest status: %w", err)
	}
	st, err := ingestStatus(s.ingestDir(ref))
	if err == nil && st.Ref != ref {
		err = ErrNotFound
	}
	if err != nil {
		return Status{}, fmt.Errorf("ingest status %q: %w", ref, err)
	}
	return st, nil
}

// ingestStatus reads an ingest directory's status, with the offset and update
// time taken from the data file, which is what a resumed Writer would see.
func ingestStatus(dir string) (Status, error) {
	st, err := readStatus(dir)
	if err != nil {
		return Status{}, err
	}
	if st == nil {
		return Status{}, ErrNotFound
	}
	out := Status{Ref: st.Ref, Expected: st.Expected, Total: st.Total, Offset: 0,
		StartedAt: st.StartedAt, UpdatedAt: st.UpdatedAt}
	if fi, err := os.Lstat(filepath.Join(dir, dataFileName)); err == nil {
		out.Offset = fi.Size()
		if fi.ModTime().After(out.UpdatedAt) {
			out.UpdatedAt = fi.ModTime()
		}
	}
	return out, nil
}

// ListIngests describes every ingest in the store, sorted by ref.
func (s *Store) ListIngests(ctx context.Context) ([]Status, error) {
	root := filepath.Join(s.root, "ingest")
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("list ingests: %w", err)
	}
	var out []Status
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		st, err := ingestStatus(filepath.Join(root, e.Name()))
		if errors.Is(err, ErrNotFound) {
			continue // being created, or removed meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("list ingests: %w", err)
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Ref < out[j].Ref })
	return out, nil
}

// AbortIngest removes the ingest ref and its data. If a Writer holds it,
// AbortIngest waits for it like Store.Writer does (ErrLocked when ctx ends
// first). The error wraps ErrNotFound if there is no such ingest.
func (s *Store) AbortIngest(ctx context.Context, ref string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := validateRef(ref); err != nil {
		return fmt.Errorf("abort ingest: %w", err)
	}
	dir := s.ingestDir(ref)
	lock, err := lockDir(ctx, dir, false, nil)
	if err != nil {
		return fmt.Errorf("abort ingest %q: %w", ref, err)
	}
	defer lock.Close()
	st, err := readStatus(dir)
	if err == nil && (st == nil || st.Ref != ref) {
		err = ErrNotFound
	}
	removeIngestDir(dir)
	if err != nil {
		return fmt.Errorf("abort ingest %q: %w", ref, err)
	}
	return nil
}

// cleanIngests removes ingest directories that have no status.json and whose
// lock is free: a Writer died between creating the directory and recording
// its ref, so nothing could resume it. A held lock means a Writer is still
// setting up; it is left alone.
func (s *Store) cleanIngests() error {
	root := filepath.Join(s.root, "ingest")
	entries, err := os.ReadDir(root)
	if err != nil {
		return err
	}
	for _, e := range entries {
		dir := filepath.Join(root, e.Name())
		if !e.IsDir() || len(e.Name()) != 64 {
			continue
		}
		if _, err := os.Lstat(filepath.Join(dir, statusFileName)); err == nil {
			continue
		}
		lock, err := tryLockDir(dir, false) // creates the lock file if missing
		if errors.Is(err, ErrNotFound) {
			continue // removed meanwhile
		}
		if err != nil {
			return err
		}
		if lock == nil {
			continue // held
		}
		if _, err := os.Lstat(filepath.Join(dir, statusFileName)); errors.Is(err, os.ErrNotExist) {
			removeIngestDir(dir)
		}
		lock.Close()
	}
	return nil
}
