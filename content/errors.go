package content

import "errors"

// Sentinel errors. Operations wrap them with context (the operation and the
// digest or ref), so test for them with errors.Is.
var (
	// ErrNotFound: the blob or ingest does not exist.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: the blob is already in the store. Store.Writer
	// returns it when the expected blob exists, so there is nothing to
	// write; callers that only want the blob present treat it as success.
	ErrAlreadyExists = errors.New("already exists")
	// ErrLocked: another Writer (in this or another process) holds the
	// ingest and ctx ended before it let go.
	ErrLocked = errors.New("ingest locked")
	// ErrDigestMismatch: the written bytes do not hash to the expected digest.
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrSizeMismatch: more or fewer bytes than the expected size.
	ErrSizeMismatch = errors.New("size mismatch")
	// ErrInvalidDigest: the digest is malformed or uses an algorithm the
	// store does not support.
	ErrInvalidDigest = errors.New("invalid digest")
	// ErrInvalidArgument: a malformed ref, label or field path.
	ErrInvalidArgument = errors.New("invalid argument")
)

// errWriterClosed is returned by a Writer used after Commit, Close or a
// failed Commit that discarded the ingest.
var errWriterClosed = errors.New("content writer closed")

// failpoint, when non-nil, is called with the name of each persistence step
// as it is reached (see fire). It is the package's one piece of mutable
// package-level state and exists for tests only: crash tests set it, in a
// re-executed child test process, to kill the process at a named step.
// Production code never sets it.
var failpoint func(name string)

// fire calls the failpoint hook, if any, for the step name.
func fire(name string) {
	if failpoint != nil {
		failpoint(name)
	}
}
