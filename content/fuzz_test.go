package content

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// FuzzParseDigest checks that whatever string is offered as a digest, either
// it is rejected with ErrInvalidDigest or it is a canonical supported digest
// whose blob and labels paths stay inside their directories of the store.
func FuzzParseDigest(f *testing.F) {
	hex64 := strings.Repeat("0123456789abcdef", 4)
	for _, seed := range []string{
		"sha256:" + hex64,
		"sha512:" + hex64 + hex64,
		"sha384:" + hex64 + hex64[:32],
		"sha256:" + strings.ToUpper(hex64),
		"sha256:../../../../etc/passwd",
		"sha256:" + hex64[:61] + "/..",
		"sha256/../../x:" + hex64,
		"sha256:" + hex64 + "\x00",
		"sha256:" + hex64 + "\n",
		"..:..",
		"",
		":",
	} {
		f.Add(seed)
	}
	s := &Store{root: "/store/root"}
	f.Fuzz(func(t *testing.T, in string) {
		d := digest.Digest(in)
		err := ValidateDigest(d)
		if err != nil {
			if !errors.Is(err, ErrInvalidDigest) {
				t.Fatalf("%q: error %v does not wrap ErrInvalidDigest", in, err)
			}
			return
		}
		alg, enc, _ := strings.Cut(in, ":")
		if !supported(digest.Algorithm(alg)) || len(enc) != digest.Algorithm(alg).Size()*2 || strings.Trim(enc, "0123456789abcdef") != "" {
			t.Fatalf("%q accepted", in)
		}
		for _, p := range []struct{ path, dir string }{
			{s.blobPath(d), filepath.Join(s.root, "blobs", alg)},
			{s.labelsPath(d), filepath.Join(s.root, "labels", alg)},
			{s.labelLockPath(d), filepath.Join(s.root, "locks")},
		} {
			if filepath.Clean(p.path) != p.path || filepath.Dir(p.path) != p.dir {
				t.Fatalf("%q maps to %s, outside %s", in, p.path, p.dir)
			}
		}
	})
}

// FuzzIngestRef checks that any ref maps to one directory directly under
// <root>/ingest, or is rejected.
func FuzzIngestRef(f *testing.F) {
	for _, seed := range []string{"layer-sha256:abc", "../../etc", "/", "", "a\x00b", "\xff"} {
		f.Add(seed)
	}
	s := &Store{root: "/store/root"}
	f.Fuzz(func(t *testing.T, ref string) {
		if err := validateRef(ref); err != nil {
			if !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("%q: %v", ref, err)
			}
			return
		}
		dir := s.ingestDir(ref)
		if filepath.Clean(dir) != dir || filepath.Dir(dir) != filepath.Join(s.root, "ingest") || len(filepath.Base(dir)) != 64 {
			t.Fatalf("%q maps to %s", ref, dir)
		}
	})
}
