package archive

import (
	"errors"
	"fmt"
)

// Format is the format of an image archive.
type Format int

const (
	// FormatDocker is docker-archive, what `docker save` writes (the
	// default).
	FormatDocker Format = iota
	// FormatOCI is oci-archive, an OCI image layout in a tar.
	FormatOCI
)

// String returns the format's name: "docker-archive" or "oci-archive".
func (f Format) String() string {
	switch f {
	case FormatDocker:
		return "docker-archive"
	case FormatOCI:
		return "oci-archive"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// Errors returned (wrapped) by this package; test them with errors.Is.
var (
	// ErrUnknownFormat: ParseFormat was given a name it does not know, or
	// Save a Format value that is not one of the constants, or Load found
	// neither manifest.json nor index.json in the archive.
	ErrUnknownFormat = errors.New("unknown image archive format")
	// ErrInvalidArchive: Load rejected the archive as malformed or hostile.
	ErrInvalidArchive = errors.New("invalid image archive")
	// ErrAmbiguousPlatform: Save in FormatDocker was given an index with
	// several platforms in the store and no Image.Platform to choose one.
	ErrAmbiguousPlatform = errors.New("several platforms of the image are in the store")
)

// ParseFormat parses a format name: "docker-archive" or "docker" for
// FormatDocker, "oci-archive" or "oci" for FormatOCI.
func ParseFormat(s string) (Format, error) {
	switch s {
	case "docker-archive", "docker":
		return FormatDocker, nil
	case "oci-archive", "oci":
		return FormatOCI, nil
	}
	return 0, fmt.Errorf("%w %q (want docker-archive or oci-archive)", ErrUnknownFormat, s)
}
