package reference

import (
	"errors"
	"strings"
	"testing"
)

const (
	hex64  = "7cc4b5aefd1d0cadf8d97d4350462ba51c694ebca145b08d7d41b41acc8db5aa"
	sha256 = "sha256:" + hex64
	sha512 = "sha512:" + hex64 + hex64
)

func TestParse(t *testing.T) {
	tests := []struct {
		in                      string
		domain, path, tag, dgst string
		str, familiar, repo     string
	}{
		{in: "busybox", domain: "docker.io", path: "library/busybox", tag: "latest",
			str: "docker.io/library/busybox:latest", familiar: "busybox:latest", repo: "docker.io/library/busybox"},
		{in: "library/busybox", domain: "docker.io", path: "library/busybox", tag: "latest",
			str: "docker.io/library/busybox:latest", familiar: "busybox:latest", repo: "docker.io/library/busybox"},
		{in: "docker.io/busybox", domain: "docker.io", path: "library/busybox", tag: "latest",
			str: "docker.io/library/busybox:latest", familiar: "busybox:latest", repo: "docker.io/library/busybox"},
		{in: "docker.io/library/busybox:1.36", domain: "docker.io", path: "library/busybox", tag: "1.36",
			str: "docker.io/library/busybox:1.36", familiar: "busybox:1.36", repo: "docker.io/library/busybox"},
		{in: "index.docker.io/library/busybox", domain: "docker.io", path: "library/busybox", tag: "latest",
			str: "docker.io/library/busybox:latest", familiar: "busybox:latest", repo: "docker.io/library/busybox"},
		{in: "index.docker.io/busybox", domain: "docker.io", path: "library/busybox", tag: "latest",
			str: "docker.io/library/busybox:latest", familiar: "busybox:latest", repo: "docker.io/library/busybox"},
		{in: "user/app:v1", domain: "docker.io", path: "user/app", tag: "v1",
			str: "docker.io/user/app:v1", familiar: "user/app:v1", repo: "docker.io/user/app"},
		// library/ with a nested path is not an official image: kept as is.
		{in: "library/a/b", domain: "docker.io", path: "library/a/b", tag: "latest",
			str: "docker.io/library/a/b:latest", familiar: "library/a/b:latest", repo: "docker.io/library/a/b"},
		{in: "localhost/x", domain: "localhost", path: "x", tag: "latest",
			str: "localhost/x:latest", familiar: "localhost/x:latest", repo: "localhost/x"},
		{in: "localhost:5000/x", domain: "localhost:5000", path: "x", tag: "latest",
			str: "localhost:5000/x:latest", familiar: "localhost:5000/x:latest", repo: "localhost:5000/x"},
		{in: "127.0.0.1:5000/a/b:t", domain: "127.0.0.1:5000", path: "a/b", tag: "t",
			str: "127.0.0.1:5000/a/b:t", familiar: "127.0.0.1:5000/a/b:t", repo: "127.0.0.1:5000/a/b"},
		{in: "[::1]:5000/a", domain: "[::1]:5000", path: "a", tag: "latest",
			str: "[::1]:5000/a:latest", familiar: "[::1]:5000/a:latest", repo: "[::1]:5000/a"},
		{in: "myreg:5000/x/y@" + sha256, domain: "myreg:5000", path: "x/y", dgst: sha256,
			str: "myreg:5000/x/y@" + sha256, familiar: "myreg:5000/x/y@" + sha256, repo: "myreg:5000/x/y"},
		{in: "ghcr.io/o/r@" + sha256, domain: "ghcr.io", path: "o/r", dgst: sha256,
			str: "ghcr.io/o/r@" + sha256, familiar: "ghcr.io/o/r@" + sha256, repo: "ghcr.io/o/r"},
		{in: "ghcr.io/o/r@" + sha512, domain: "ghcr.io", path: "o/r", dgst: sha512,
			str: "ghcr.io/o/r@" + sha512, familiar: "ghcr.io/o/r@" + sha512, repo: "ghcr.io/o/r"},
		// name:tag@digest keeps both, as docker does.
		{in: "busybox:1.36@" + sha256, domain: "docker.io", path: "library/busybox", tag: "1.36", dgst: sha256,
			str: "docker.io/library/busybox:1.36@" + sha256, familiar: "busybox:1.36@" + sha256, repo: "docker.io/library/busybox"},
		{in: "busybox@" + sha256, domain: "docker.io", path: "library/busybox", dgst: sha256,
			str: "docker.io/library/busybox@" + sha256, familiar: "busybox@" + sha256, repo: "docker.io/library/busybox"},
		// An uppercase first component is taken as a domain (docker does so).
		{in: "Example.com/foo", domain: "Example.com", path: "foo", tag: "latest",
			str: "Example.com/foo:latest", familiar: "Example.com/foo:latest", repo: "Example.com/foo"},
		{in: "quay.io/a/b/c:x.y_z-1", domain: "quay.io", path: "a/b/c", tag: "x.y_z-1",
			str: "quay.io/a/b/c:x.y_z-1", familiar: "quay.io/a/b/c:x.y_z-1", repo: "quay.io/a/b/c"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			r, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if r.IsID() {
				t.Fatal("IsID = true")
			}
			got := [7]string{r.Domain(), r.Path(), r.Tag(), r.Digest().String(), r.String(), r.Familiar(), r.Repository()}
			want := [7]string{tt.domain, tt.path, tt.tag, tt.dgst, tt.str, tt.familiar, tt.repo}
			if got != want {
				t.Errorf("got  %q\nwant %q", got, want)
			}
			again, err := Parse(r.String())
			if err != nil || again != r {
				t.Errorf("Parse(String()) = %+v, %v; want %+v", again, err, r)
			}
			again, err = Parse(r.Familiar())
			if err != nil || again != r {
				t.Errorf("Parse(Familiar()) = %+v, %v; want %+v", again, err, r)
			}
		})
	}
}

func TestParseID(t *testing.T) {
	for _, tt := range []struct{ in, id string }{
		{hex64, sha256},
		{sha256, sha256},
		{sha512, sha512},
	} {
		r, err := Parse(tt.in)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.in, err)
		}
		if !r.IsID() || r.ID().String() != tt.id || r.String() != tt.id || r.Familiar() != tt.id ||
			r.Repository() != "" || r.Domain() != "" || r.Tag() != "" {
			t.Errorf("Parse(%q) = %+v", tt.in, r)
		}
	}
	// 63 or 65 hex characters are ordinary (valid) names, as in docker.
	r, err := Parse(hex64[:63])
	if err != nil || r.IsID() || r.Path() != "library/"+hex64[:63] {
		t.Errorf("63 hex: %+v, %v", r, err)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		in   string
		kind error
		msg  string
	}{
		{"", ErrInvalidFormat, "invalid reference format"}, // as docker pull ""
		{"Busybox", ErrNameContainsUppercase, "invalid reference format: repository name (library/Busybox) must be lowercase"},
		{"docker.io/Library/busybox", ErrNameContainsUppercase, "invalid reference format: repository name (Library/busybox) must be lowercase"},
		{"ghcr.io/O/r:v1", ErrNameContainsUppercase, "invalid reference format: repository name (O/r) must be lowercase"},
		{"busybox:", ErrInvalidFormat, "invalid reference format"},
		{"busy box", ErrInvalidFormat, "invalid reference format"},
		{"-busybox", ErrInvalidFormat, "invalid reference format"},
		{"busybox:-tag", ErrInvalidFormat, "invalid reference format"},
		{"busybox:" + strings.Repeat("t", 129), ErrInvalidFormat, "invalid reference format"},
		{"a//b", ErrInvalidFormat, "invalid reference format"},
		{"localhost:5000/", ErrInvalidFormat, "invalid reference format"},
		{"busybox@sha256:abc", ErrInvalidFormat, "invalid reference format"},
		{"busybox@sha256:" + hex64[:63], ErrDigestInvalidLength, "invalid checksum digest length"},
		{"busybox@sha512:" + hex64, ErrDigestInvalidLength, "invalid checksum digest length"},
		{"busybox@sha256:" + strings.ToUpper(hex64), ErrDigestInvalidFormat, "invalid checksum digest format"},
		{"busybox@md5:" + hex64[:32], ErrDigestUnsupported, "unsupported digest algorithm"},
		{"a/" + strings.Repeat("b", 255), ErrNameTooLong, "repository name must not be more than 255 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			r, err := Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse = %v, want error", r)
			}
			if !errors.Is(err, tt.kind) {
				t.Errorf("error %q is not %q", err, tt.kind)
			}
			var perr *Error
			if !errors.As(err, &perr) || perr.Input != tt.in {
				t.Errorf("error %#v is not an *Error for the input", err)
			}
			if err.Error() != tt.msg {
				t.Errorf("message %q, want %q", err, tt.msg)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"busybox", "library/busybox:1", "docker.io/busybox", "index.docker.io/library/busybox",
		"localhost:5000/x", "127.0.0.1:5000/a/b:t", "ghcr.io/o/r@" + sha256, "a:b@" + sha512,
		hex64, sha256, "[::1]:80/x", "Foo/bar", "a/b/c/d:e",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if err != nil {
			return
		}
		for _, form := range []string{r.String(), r.Familiar()} {
			again, err := Parse(form)
			if err != nil {
				t.Fatalf("Parse(%q) ok, Parse(%q) = %v", s, form, err)
			}
			if again != r {
				t.Fatalf("Parse(%q) = %+v, Parse(%q) = %+v", s, r, form, again)
			}
		}
		if !r.IsID() && (r.Tag() == "" && r.Digest() == "") {
			t.Fatalf("Parse(%q): neither tag nor digest", s)
		}
	})
}
