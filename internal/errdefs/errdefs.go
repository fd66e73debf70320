// Package errdefs defines the error classes that berth's packages share, so
// that each boundary (the CLI's exit codes, the Docker API's HTTP statuses,
// the CRI's gRPC codes) maps them in one place.
//
// Packages wrap one of the sentinels into their own errors,
//
//	return fmt.Errorf("%w: no such container: %s", errdefs.ErrNotFound, ref)
//
// or use the helpers below, and callers test the class with errors.Is. A
// package may keep its own, more specific sentinels as long as they wrap one
// of these classes.
package errdefs

import (
	"errors"
	"fmt"
)

// The error classes.
var (
	// ErrInvalidArgument: the request itself is wrong (bad flag value,
	// malformed spec, unknown option). Retrying the same request fails
	// again. CLI 125, HTTP 400.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrNotFound: the named object (image, container, volume, ...) does
	// not exist. HTTP 404.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the request contradicts the current state (name in use,
	// container running, object in use). HTTP 409.
	ErrConflict = errors.New("conflict")
	// ErrAlreadyExists: the object to create exists. HTTP 409.
	ErrAlreadyExists = errors.New("already exists")
	// ErrNotModified: the request asks for the state already reached (start
	// of a running container). HTTP 304.
	ErrNotModified = errors.New("not modified")
	// ErrUnavailable: a dependency (runtime binary, registry, monitor) cannot
	// be reached right now. HTTP 503.
	ErrUnavailable = errors.New("unavailable")
	// ErrPermissionDenied: the caller may not do this. HTTP 403.
	ErrPermissionDenied = errors.New("permission denied")
)

// classified is an error that belongs to a class but prints only its own
// message (the class name would only repeat what the message says).
type classified struct {
	class error
	msg   string
}

func (e *classified) Error() string        { return e.msg }
func (e *classified) Is(target error) bool { return target == e.class }

// New returns an error of class with the formatted message; errors.Is(err,
// class) holds, and the message is printed as given. A %w verb in format
// keeps its operand unwrappable as well.
func New(class error, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return &wrapped{classified: classified{class: class, msg: err.Error()}, cause: errors.Unwrap(err)}
}

// wrapped adds the cause of a %w verb to a classified error.
type wrapped struct {
	classified
	cause error
}

func (e *wrapped) Unwrap() error { return e.cause }

// InvalidArgument is New(ErrInvalidArgument, ...).
func InvalidArgument(format string, args ...any) error {
	return New(ErrInvalidArgument, format, args...)
}

// NotFound is New(ErrNotFound, ...).
func NotFound(format string, args ...any) error { return New(ErrNotFound, format, args...) }

// Conflict is New(ErrConflict, ...).
func Conflict(format string, args ...any) error { return New(ErrConflict, format, args...) }

// Class returns the class err belongs to, or nil when it belongs to none.
func Class(err error) error {
	for _, c := range []error{ErrInvalidArgument, ErrNotFound, ErrConflict, ErrAlreadyExists,
		ErrNotModified, ErrUnavailable, ErrPermissionDenied} {
		if errors.Is(err, c) {
			return c
		}
	}
	return nil
}
