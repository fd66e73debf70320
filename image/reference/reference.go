// Package reference parses and normalises image references the way docker
// does ("busybox" is "docker.io/library/busybox:latest"), on top of
// github.com/distribution/reference.
//
// A reference is one of two things:
//
//   - a named reference: DOMAIN/PATH[:TAG][@DIGEST]. A missing domain is
//     Docker Hub ("docker.io", "index.docker.io" is rewritten to it), a
//     one-component path on Docker Hub gets the "library/" prefix, and the
//     tag defaults to "latest" only when neither a tag nor a digest is given.
//     When both a tag and a digest are given both are kept (as docker does);
//     the digest is what identifies the content.
//   - an image ID: 64 lowercase hex characters (a sha256 ID, as docker
//     accepts), or a full digest "sha256:<hex>" / "sha512:<hex>". See
//     [Ref.IsID].
package reference

import (
	_ "crypto/sha256" // registers sha256 for go-digest validation
	_ "crypto/sha512" // registers sha512 for go-digest validation
	"errors"
	"regexp"
	"strings"

	distref "github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
)

// DefaultTag is the tag given to a named reference with neither tag nor digest.
const DefaultTag = "latest"

// DefaultDomain is the registry domain of names without one (Docker Hub).
const DefaultDomain = "docker.io"

// Error kinds. Every error returned by [Parse] is a *[Error] whose Unwrap
// returns one of these, so callers test them with errors.Is.
var (
	// ErrInvalidFormat: the string is not a reference at all.
	ErrInvalidFormat = distref.ErrReferenceInvalidFormat
	// ErrNameContainsUppercase: the repository path has uppercase letters.
	ErrNameContainsUppercase = distref.ErrNameContainsUppercase
	// ErrNameEmpty: the name has no component (docker reports "" as
	// ErrInvalidFormat).
	ErrNameEmpty = distref.ErrNameEmpty
	// ErrNameTooLong: the repository path exceeds 255 characters.
	ErrNameTooLong = distref.ErrNameTooLong
	// ErrDigestInvalidFormat: the digest is malformed (e.g. uppercase hex).
	ErrDigestInvalidFormat = digest.ErrDigestInvalidFormat
	// ErrDigestInvalidLength: the digest's hex length does not fit its algorithm.
	ErrDigestInvalidLength = digest.ErrDigestInvalidLength
	// ErrDigestUnsupported: the digest algorithm is unknown (only sha256,
	// sha384 and sha512 are known).
	ErrDigestUnsupported = digest.ErrDigestUnsupported
)

// Error is a reference parse error. Its message is docker's, word for word;
// Kind is one of the Err* values of this package.
type Error struct {
	Input string // the string given to Parse
	Kind  error  // one of the Err* kinds
	msg   string
}

// Error returns docker's message for the failure.
func (e *Error) Error() string { return e.msg }

// Unwrap returns the error kind.
func (e *Error) Unwrap() error { return e.Kind }

// Ref is a parsed, normalised image reference. The zero value is not a valid
// reference; obtain one from [Parse].
type Ref struct {
	domain string
	path   string
	tag    string
	digest digest.Digest
	id     digest.Digest // set only for image IDs
}

var (
	// anchoredID is docker's bare image ID: 64 lowercase hex characters.
	anchoredID = regexp.MustCompile(`^[a-f0-9]{64}$`)
)

// Parse parses s as docker does and returns the normalised reference. A bare
// 64-hex string or a full "sha256:"/"sha512:" digest is an image ID
// ([Ref.IsID]).
func Parse(s string) (Ref, error) {
	if anchoredID.MatchString(s) {
		return Ref{id: digest.Digest("sha256:" + s)}, nil
	}
	if d, err := digest.Parse(s); err == nil {
		return Ref{id: d}, nil
	}
	named, err := distref.ParseNormalizedNamed(s)
	if err != nil {
		return Ref{}, classify(s, err)
	}
	r := Ref{
		domain: distref.Domain(named),
		path:   distref.Path(named),
	}
	if t, ok := named.(distref.Tagged); ok {
		r.tag = t.Tag()
	}
	if d, ok := named.(distref.Digested); ok {
		r.digest = d.Digest()
	}
	if r.tag == "" && r.digest == "" {
		r.tag = DefaultTag
	}
	return r, nil
}

// classify turns an error of distribution/reference into an *Error with a
// kind, keeping docker's message.
func classify(s string, err error) error {
	for _, kind := range []error{
		ErrNameContainsUppercase, ErrNameEmpty, ErrNameTooLong,
		ErrDigestInvalidFormat, ErrDigestInvalidLength, ErrDigestUnsupported,
		ErrInvalidFormat,
	} {
		if errors.Is(err, kind) {
			return &Error{Input: s, Kind: kind, msg: err.Error()}
		}
	}
	// ParseNormalizedNamed reports uppercase repository names with its own
	// unwrapped message: "invalid reference format: repository name (%s)
	// must be lowercase".
	if strings.HasSuffix(err.Error(), "must be lowercase") {
		return &Error{Input: s, Kind: ErrNameContainsUppercase, msg: err.Error()}
	}
	return &Error{Input: s, Kind: ErrInvalidFormat, msg: err.Error()}
}

// IsID reports whether the reference is an image ID (a digest of an image
// config) rather than a name.
func (r Ref) IsID() bool { return r.id != "" }

// ID returns the image ID ("sha256:<hex>") of an ID reference, or "".
func (r Ref) ID() digest.Digest { return r.id }

// Domain returns the registry domain, e.g. "docker.io" or "localhost:5000".
func (r Ref) Domain() string { return r.domain }

// Path returns the repository path inside the registry, e.g. "library/busybox".
func (r Ref) Path() string { return r.path }

// Tag returns the tag, "latest" when neither tag nor digest was given, or ""
// when only a digest was given.
func (r Ref) Tag() string { return r.tag }

// Digest returns the manifest digest of a digest reference, or "".
func (r Ref) Digest() digest.Digest { return r.digest }

// Repository returns DOMAIN/PATH, e.g. "docker.io/library/busybox", or ""
// for an image ID.
func (r Ref) Repository() string {
	if r.IsID() {
		return ""
	}
	return r.domain + "/" + r.path
}

// String returns the fully qualified reference, e.g.
// "docker.io/library/busybox:latest", or the ID ("sha256:<hex>") for an
// image ID. Parse(r.String()) returns r.
func (r Ref) String() string {
	if r.IsID() {
		return r.id.String()
	}
	return r.Repository() + r.suffix()
}

// Familiar returns the short form docker shows: the "docker.io/" domain and
// the "library/" prefix of official images dropped, e.g. "busybox:latest",
// "myreg:5000/x/y@sha256:...". For an image ID it returns String().
func (r Ref) Familiar() string {
	if r.IsID() {
		return r.id.String()
	}
	return r.FamiliarName() + r.suffix()
}

// FamiliarName returns the familiar repository name without tag or digest,
// e.g. "busybox" or "localhost:5000/x".
func (r Ref) FamiliarName() string {
	if r.IsID() {
		return ""
	}
	if r.domain != DefaultDomain {
		return r.domain + "/" + r.path
	}
	if rest, ok := strings.CutPrefix(r.path, "library/"); ok && !strings.Contains(rest, "/") {
		return rest
	}
	return r.path
}

func (r Ref) suffix() string {
	s := ""
	if r.tag != "" {
		s += ":" + r.tag
	}
	if r.digest != "" {
		s += "@" + r.digest.String()
	}
	return s
}
