// Package content is berth's content-addressed blob store: the bytes of image
// manifests, configs and layers, addressed by their digest. Image pull, push,
// save and load and the registry server all sit on it.
//
// # Layout
//
// A Store is rooted at a directory:
//
//	<root>/layout.json              {"version":1}: the on-disk format version
//	<root>/blobs/<alg>/<hex>        committed blobs, mode 0444, never modified
//	<root>/labels/<alg>/<hex>.json  the blob's labels (absent when it has none)
//	<root>/ingest/<key>/            one in-progress ingest; key = hex sha256 of the ref
//	    lock                        flock(2)ed by the Writer that owns the ingest
//	    status.json                 ref, expected digest and size, offset, times
//	    data                        the bytes written so far
//	<root>/locks/labels-<xx>        flock stripes serialising label changes
//	<root>/tmp/<pid>-<random>       temporary files of atomic writes
//
// Digests are sha256 or sha512 (the algorithms the OCI image spec registers),
// lower-case hex of the exact length; anything else is rejected with
// ErrInvalidDigest before a path is built, so a digest can never name a file
// outside the store.
//
// # Writing
//
// Store.Writer opens (or resumes) the ingest for a ref, Writer.Write streams
// bytes into the data file while hashing them, and Writer.Commit verifies the
// size and the digest (from the streamed hash: nothing is re-read) and
// publishes the data file as a blob. WriteBlob wraps the whole dance,
// including resumption and a concurrent writer of the same blob.
//
// Only one Writer may hold a ref at a time, across goroutines and processes
// (an flock on the ingest's lock file): Store.Writer waits, polling, until
// the current holder releases it or ctx is done, in which case it fails with
// ErrLocked. When the expected blob exists, because the holder (or a writer
// of another ref) committed it while Store.Writer waited, or once the lock
// is held, Store.Writer discards any ingest it holds and fails with
// ErrAlreadyExists, which callers treat as success: two processes pulling the
// same layer end with one blob and no error (WriteBlob does exactly that).
// Commit itself succeeds when it finds the blob already present (another ref
// committed the same content first): the ingest is discarded and the
// existing blob, identical by construction, is kept.
//
// # Resuming
//
// An ingest survives its writer: Writer.Close without Commit, a failed
// network read or a process killed with SIGKILL leave the data file behind.
// A later Store.Writer with the same ref re-hashes the existing data file
// (the hash state is not persisted: re-reading is far cheaper than the
// network it saves, and it means the resumed digest never depends on a
// checkpoint agreeing with the data) and reports its length as
// Status().Offset; the caller continues from there (an HTTP Range request).
// If the new Writer names a different expected digest or size than the
// recorded one, the old data is discarded and the ingest starts over.
//
// # Crash safety
//
// The crash model is a process killed at any instant (kill -9), not power
// loss, but committed state is made durable anyway:
//
//   - Write never fsyncs: after a kill the written bytes are still in the
//     page cache, and the resumed ingest re-hashes whatever is there.
//   - Commit, once the digest is verified, fchmods the data file to 0444 and
//     fsyncs it (content and mode), then moves it into blobs/<alg>/ with
//     renameat2(RENAME_NOREPLACE) (or link(2) where the file system lacks
//     it), so a blob path only ever names a complete, verified, read-only
//     file and an existing blob is never replaced; then it fsyncs
//     blobs/<alg>/ so the new name is durable before Commit returns.
//   - Labels are written to a temporary file, fsynced, renamed over the
//     sidecar and the directory fsynced. Commit writes them after the blob
//     is published, Delete removes them before the blob, both under the
//     blob's label stripe lock, so a crash never leaves labels without a
//     blob (a blob without labels is merely unreferenced).
//   - status.json is rewritten atomically (temporary file and rename) but not
//     fsynced: it is advisory, and the data file's length is the truth.
//   - Open removes temporary files whose creating process is gone and ingest
//     directories that died before recording their ref; everything else a
//     crash can leave (a partial or complete-but-unpublished ingest, an
//     ingest whose blob was published) is resumed, re-detected or aborted by
//     the ordinary operations.
//
// Failpoints (an unexported hook) sit at each of these steps so tests can
// kill the process there and check the store on reopen.
package content
