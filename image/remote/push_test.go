package remote

import (
	"bytes"
	"context"
	"crypto/sha512"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func blobDesc(data []byte) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(data), Size: int64(len(data))}
}

// failFirst answers the first n requests that match with status, without
// reading their bodies.
func failFirst(n int32, status int, match func(*http.Request) bool) middleware {
	var seen atomic.Int32
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if match(r) && seen.Add(1) <= n {
				writeRegistryError(w, status, "UNAVAILABLE", "try again")
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func TestPushBlobChunked(t *testing.T) {
	for _, tc := range []struct {
		name  string
		wraps []middleware
	}{
		{"clean", nil},
		// The second PATCH fails once before the registry reads it: the
		// chunk is sent again from a reopened stream.
		{"chunk retried", []middleware{failSecondPatchOnce()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := newTestRegistry(t, tc.wraps...)
			c := testClient(t, Options{})
			c.chunkThreshold, c.chunkSize = 1000, 300
			data := randomBytes(t, 2500)
			var opens atomic.Int32
			open := func() (io.ReadCloser, error) {
				opens.Add(1)
				return io.NopCloser(bytes.NewReader(data)), nil
			}
			desc := blobDesc(data)
			existed, err := c.PushBlob(context.Background(), reg.ref(t, "app"), desc, open, nil)
			if err != nil || existed {
				t.Fatalf("PushBlob = %v, %v", existed, err)
			}
			if got := rawGet(t, reg.srv.URL+"/v2/app/blobs/"+desc.Digest.String()); !bytes.Equal(got, data) {
				t.Fatal("registry holds other bytes")
			}
			if n := reg.rec.count(http.MethodPatch, "/blobs/uploads/"); n < 9 {
				t.Fatalf("%d PATCH requests, want at least 9 chunks of 300 bytes", n)
			}
			if tc.wraps == nil && opens.Load() != 1 {
				t.Fatalf("stream opened %d times, want once", opens.Load())
			}
		})
	}
}

func failSecondPatchOnce() middleware {
	var patches atomic.Int32
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPatch && patches.Add(1) == 2 {
				// Read half the chunk, as a proxy dying mid-request would.
				io.CopyN(io.Discard, r.Body, 150)
				writeRegistryError(w, http.StatusServiceUnavailable, "UNAVAILABLE", "try again")
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func TestChunkSourceSections(t *testing.T) {
	data := []byte("0123456789")
	var opens int
	src := &chunkSource{open: func() (io.ReadCloser, error) {
		opens++
		return io.NopCloser(bytes.NewReader(data)), nil
	}}
	defer src.close()
	read := func(r io.Reader) string {
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	first, _ := src.section(0, 4)
	if got := read(first); got != "0123" {
		t.Fatalf("section 0 = %q", got)
	}
	// A retry of a section after a partial read reopens and skips.
	second, _ := src.section(4, 4)
	buf := make([]byte, 2)
	io.ReadFull(second, buf)
	retry, _ := src.section(4, 4)
	if _, err := second.Read(buf); !errors.Is(err, errStaleSection) {
		t.Fatalf("superseded section read: %v", err)
	}
	if got := read(retry); got != "4567" {
		t.Fatalf("retried section = %q", got)
	}
	last, _ := src.section(8, 2)
	if got := read(last); got != "89" {
		t.Fatalf("last section = %q", got)
	}
	if opens != 2 {
		t.Fatalf("opened %d times, want 2", opens)
	}
	// A stream shorter than promised is an error, not a short chunk.
	short, _ := src.section(8, 5)
	if _, err := io.ReadAll(short); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("short stream: %v", err)
	}
}

func TestPushBlobMonolithicRetry(t *testing.T) {
	isPut := func(r *http.Request) bool {
		return r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads/")
	}
	reg := newTestRegistry(t, failFirst(1, http.StatusServiceUnavailable, isPut))
	c := testClient(t, Options{})
	data := randomBytes(t, 5000)
	var opens atomic.Int32
	open := func() (io.ReadCloser, error) {
		opens.Add(1)
		return io.NopCloser(bytes.NewReader(data)), nil
	}
	if _, err := c.PushBlob(context.Background(), reg.ref(t, "app"), blobDesc(data), open, nil); err != nil {
		t.Fatal(err)
	}
	if opens.Load() != 2 {
		t.Fatalf("stream opened %d times, want 2 (one per attempt)", opens.Load())
	}
	if got := rawGet(t, reg.srv.URL+"/v2/app/blobs/"+digest.FromBytes(data).String()); !bytes.Equal(got, data) {
		t.Fatal("registry holds other bytes")
	}
}

func TestPushBlobAbsoluteLocationWithQuery(t *testing.T) {
	var base string
	absolute := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPut && r.URL.Query().Get("_state") != "opaque" {
				writeRegistryError(w, http.StatusBadRequest, "BLOB_UPLOAD_INVALID", "state lost")
				return
			}
			next.ServeHTTP(&headerEditor{ResponseWriter: w, edit: func(h http.Header) {
				if loc := h.Get("Location"); loc != "" && r.Method == http.MethodPost {
					h.Set("Location", base+loc+"?_state=opaque")
				}
			}}, r)
		})
	}
	reg := newTestRegistry(t, absolute)
	base = reg.srv.URL
	c := testClient(t, Options{})
	data := randomBytes(t, 100)
	if _, err := c.PushBlob(context.Background(), reg.ref(t, "app"), blobDesc(data), opener(data), nil); err != nil {
		t.Fatal(err)
	}
	for _, r := range reg.rec.all() {
		if r.Method == http.MethodPut {
			q := r.URL.Query()
			if q.Get("_state") != "opaque" || q.Get("digest") != digest.FromBytes(data).String() {
				t.Fatalf("PUT query %q lacks the Location's state or the digest", r.URL.RawQuery)
			}
		}
	}
}

func TestPushBlobCrossRepoMount(t *testing.T) {
	ts := newTokenServer(t, func(user, repo string) []string {
		if user == "alice" {
			return []string{"pull", "push"}
		}
		return nil
	})
	ts.users["alice"] = "secret"
	var reg *testRegistry
	reg = newTestRegistry(t, mountSupport(func() *repoBlobs { return reg.blobs }, ts), ts.guard)
	creds := func(context.Context, string) (string, string, error) { return "alice", "secret", nil }
	c := testClient(t, Options{Credentials: creds})
	ctx := context.Background()
	data := randomBytes(t, 4000)
	desc := blobDesc(data)
	if _, err := c.PushBlob(ctx, reg.ref(t, "base/img"), desc, opener(data), nil); err != nil {
		t.Fatal(err)
	}
	uploads := reg.rec.count(http.MethodPut, "/blobs/uploads/")

	existed, err := c.PushBlob(ctx, reg.ref(t, "team/app"), desc, func() (io.ReadCloser, error) {
		t.Error("a mounted blob was read")
		return nil, errors.New("not expected")
	}, []string{"other/missing", "base/img"})
	if err != nil || !existed {
		t.Fatalf("PushBlob with mount = %v, %v", existed, err)
	}
	if !reg.blobs.has("team/app", desc.Digest) {
		t.Fatal("blob not in the target repository after the mount")
	}
	if n := reg.rec.count(http.MethodPut, "/blobs/uploads/"); n != uploads {
		t.Fatal("the mount uploaded the blob")
	}
	// The token of the successful mount covered pull on the source.
	want := "repository:base/img:pull"
	found := false
	ts.mu.Lock()
	for _, q := range ts.requests {
		for _, s := range q["scope"] {
			found = found || s == want
		}
	}
	ts.mu.Unlock()
	if !found {
		t.Fatalf("no token request asked for %s", want)
	}
	// The failed mount's upload session was abandoned.
	if n := reg.rec.count(http.MethodDelete, "/blobs/uploads/"); n != 1 {
		t.Fatalf("%d upload sessions cancelled, want 1", n)
	}
}

func TestPushManifestByDigest(t *testing.T) {
	reg := newTestRegistry(t)
	c := testClient(t, Options{})
	ctx := context.Background()
	img := newTestImage(t)
	for _, b := range [][]byte{img.config, img.layer} {
		if _, err := c.PushBlob(ctx, reg.ref(t, "app"), blobDesc(b), opener(b), nil); err != nil {
			t.Fatal(err)
		}
	}
	d := img.manifestDesc.Digest
	got, err := c.PushManifest(ctx, reg.ref(t, "app@"+d.String()), img.manifestDesc.MediaType, img.manifest)
	if err != nil || got != d {
		t.Fatalf("PushManifest by digest = %s, %v", got, err)
	}
	if n := reg.rec.count(http.MethodPut, "/manifests/"+d.String()); n != 1 {
		t.Fatal("manifest not pushed by digest")
	}

	// A digest the content does not have is refused before any request.
	before := len(reg.rec.all())
	wrong := digest.FromString("other")
	_, err = c.PushManifest(ctx, reg.ref(t, "app@"+wrong.String()), img.manifestDesc.MediaType, img.manifest)
	errorsIs(t, err, ErrDigestMismatch)
	sum := sha512.Sum512([]byte("other"))
	_, err = c.PushManifest(ctx, reg.ref(t, "app@"+digest.NewDigestFromBytes(digest.SHA512, sum[:]).String()), img.manifestDesc.MediaType, img.manifest)
	errorsIs(t, err, ErrDigestMismatch)
	_, err = c.PushManifest(ctx, reg.ref(t, "app:big"), img.manifestDesc.MediaType, make([]byte, MaxManifestSize+1))
	errorsIs(t, err, ErrManifestTooLarge)
	if after := len(reg.rec.all()); after != before {
		t.Fatalf("%d requests for refused pushes", after-before)
	}
}
