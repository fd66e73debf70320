package content

import (
	"crypto/sha256"
	_ "crypto/sha512" // registers SHA-512 for go-digest
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/opencontainers/go-digest"
)

// maxRefLen bounds an ingest ref (refs are recorded in status.json).
const maxRefLen = 1024

// algorithms are the digest algorithms the store accepts, in Walk order.
func algorithms() []digest.Algorithm {
	return []digest.Algorithm{digest.SHA256, digest.SHA512}
}

func supported(alg digest.Algorithm) bool {
	return alg == digest.SHA256 || alg == digest.SHA512
}

// ValidateDigest returns nil if d is a digest the store can hold: "sha256:"
// followed by 64 or "sha512:" followed by 128 lower-case hex digits, nothing
// else. The error wraps ErrInvalidDigest.
func ValidateDigest(d digest.Digest) error {
	s := string(d)
	i := strings.IndexByte(s, ':')
	if i <= 0 {
		return fmt.Errorf("%w: %.100q: no algorithm", ErrInvalidDigest, s)
	}
	if alg := digest.Algorithm(s[:i]); !supported(alg) {
		return fmt.Errorf("%w: %.100q: unsupported algorithm %.40q", ErrInvalidDigest, s, alg)
	}
	if err := d.Validate(); err != nil {
		return fmt.Errorf("%w: %.100q: %v", ErrInvalidDigest, s, err)
	}
	return nil
}

// blobPath is the path of the blob d, which must have been validated.
func (s *Store) blobPath(d digest.Digest) string {
	return filepath.Join(s.root, "blobs", string(d.Algorithm()), d.Encoded())
}

// labelsPath is the path of the labels sidecar of the validated digest d.
func (s *Store) labelsPath(d digest.Digest) string {
	return filepath.Join(s.root, "labels", string(d.Algorithm()), d.Encoded()+".json")
}

// labelLockPath is the stripe lock serialising label changes of d.
func (s *Store) labelLockPath(d digest.Digest) string {
	return filepath.Join(s.root, "locks", "labels-"+d.Encoded()[:2])
}

// validateRef checks an ingest ref: non-empty UTF-8 (it round-trips through
// JSON) of at most maxRefLen bytes.
func validateRef(ref string) error {
	if ref == "" || len(ref) > maxRefLen || !utf8.ValidString(ref) {
		return fmt.Errorf("%w: ingest ref %.100q: want 1 to %d bytes of UTF-8", ErrInvalidArgument, ref, maxRefLen)
	}
	return nil
}

// ingestDir is the directory of the ingest for ref. The ref is hashed, so
// any string maps to a fixed-length hex name inside <root>/ingest.
func (s *Store) ingestDir(ref string) string {
	sum := sha256.Sum256([]byte(ref))
	return filepath.Join(s.root, "ingest", hex.EncodeToString(sum[:]))
}
