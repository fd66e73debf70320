package remote

import (
	"bytes"
	"context"
	"crypto/sha512"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-engine/berth/image/manifest"
)

func TestPushPullRoundTrip(t *testing.T) {
	reg := newTestRegistry(t)
	c := testClient(t, Options{})
	ctx := context.Background()
	img := newTestImage(t)
	ref := reg.ref(t, "team/app:v1")

	for _, b := range []struct {
		desc ocispec.Descriptor
		data []byte
	}{{img.configDesc, img.config}, {img.layerDesc, img.layer}} {
		existed, err := c.PushBlob(ctx, ref, b.desc, opener(b.data), nil)
		if err != nil || existed {
			t.Fatalf("PushBlob = %v, %v", existed, err)
		}
	}
	dgst, err := c.PushManifest(ctx, ref, img.manifestDesc.MediaType, img.manifest)
	if err != nil {
		t.Fatal(err)
	}
	if dgst != img.manifestDesc.Digest {
		t.Fatalf("PushManifest digest %s, want %s", dgst, img.manifestDesc.Digest)
	}

	// The registry holds what was pushed (read without the Client).
	if got := rawGet(t, reg.srv.URL+"/v2/team/app/blobs/"+img.layerDesc.Digest.String()); !bytes.Equal(got, img.layer) {
		t.Fatal("registry holds another layer")
	}
	if got := rawGet(t, reg.srv.URL+"/v2/team/app/manifests/v1"); !bytes.Equal(got, img.manifest) {
		t.Fatal("registry holds another manifest")
	}

	desc, err := c.Resolve(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(desc, img.manifestDesc) {
		t.Fatalf("Resolve = %+v, want %+v", desc, img.manifestDesc)
	}
	byDigest, err := c.Resolve(ctx, reg.ref(t, "team/app@"+dgst.String()))
	if err != nil || !reflect.DeepEqual(byDigest, img.manifestDesc) {
		t.Fatalf("Resolve by digest = %+v, %v", byDigest, err)
	}
	data, err := c.FetchManifest(ctx, ref, desc)
	if err != nil || !bytes.Equal(data, img.manifest) {
		t.Fatalf("FetchManifest = %q, %v", data, err)
	}
	rc, err := c.FetchBlob(ctx, ref, img.layerDesc, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAllClose(t, rc); !bytes.Equal(got, img.layer) {
		t.Fatal("FetchBlob returned other bytes")
	}

	if ok, err := c.BlobExists(ctx, ref, img.layerDesc); err != nil || !ok {
		t.Fatalf("BlobExists(layer) = %v, %v", ok, err)
	}
	missing := ocispec.Descriptor{Digest: digest.FromString("missing"), Size: 7}
	if ok, err := c.BlobExists(ctx, ref, missing); err != nil || ok {
		t.Fatalf("BlobExists(missing) = %v, %v", ok, err)
	}
	if _, err := c.Resolve(ctx, reg.ref(t, "team/app:nope")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Resolve of a missing tag = %v, want ErrNotFound", err)
	}
	rc, err = c.FetchBlob(ctx, ref, missing, 0)
	if !errors.Is(err, ErrNotFound) {
		if rc != nil {
			rc.Close()
		}
		t.Fatalf("FetchBlob of a missing blob = %v, want ErrNotFound", err)
	}

	// A second push finds the blob and uploads nothing.
	posts := reg.rec.count(http.MethodPost, "/blobs/uploads/")
	existed, err := c.PushBlob(ctx, ref, img.layerDesc, opener(img.layer), nil)
	if err != nil || !existed {
		t.Fatalf("second PushBlob = %v, %v", existed, err)
	}
	if n := reg.rec.count(http.MethodPost, "/blobs/uploads/"); n != posts {
		t.Fatalf("second PushBlob started an upload")
	}

	if _, err := c.PushManifest(ctx, reg.ref(t, "team/app:v2"), img.manifestDesc.MediaType, img.manifest); err != nil {
		t.Fatal(err)
	}
	tags, err := c.Tags(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(tags)
	if !reflect.DeepEqual(tags, []string{"v1", "v2"}) {
		t.Fatalf("Tags = %v", tags)
	}
}

// rewriteHeaders lets a test edit a response's headers before they are sent.
func rewriteHeaders(match func(*http.Request) bool, edit func(http.Header)) middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !match(r) {
				next.ServeHTTP(w, r)
				return
			}
			next.ServeHTTP(&headerEditor{ResponseWriter: w, edit: edit}, r)
		})
	}
}

type headerEditor struct {
	http.ResponseWriter
	edit  func(http.Header)
	wrote bool
}

func (w *headerEditor) WriteHeader(code int) {
	if !w.wrote {
		w.wrote = true
		w.edit(w.Header())
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *headerEditor) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func isManifestRequest(method string) func(*http.Request) bool {
	return func(r *http.Request) bool {
		return r.Method == method && strings.Contains(r.URL.Path, "/manifests/")
	}
}

func TestResolveFallsBackToGET(t *testing.T) {
	for _, tc := range []struct {
		name string
		wrap middleware
	}{
		{"HEAD without digest", rewriteHeaders(isManifestRequest(http.MethodHead), func(h http.Header) {
			h.Del("Docker-Content-Digest")
		})},
		{"HEAD without media type", rewriteHeaders(isManifestRequest(http.MethodHead), func(h http.Header) {
			h.Del("Content-Type")
		})},
		{"generic content type", rewriteHeaders(func(r *http.Request) bool { return strings.Contains(r.URL.Path, "/manifests/") }, func(h http.Header) {
			h.Set("Content-Type", "application/json")
			h.Del("Docker-Content-Digest")
		})},
		{"HEAD not allowed", func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if isManifestRequest(http.MethodHead)(r) {
					w.WriteHeader(http.StatusMethodNotAllowed)
					return
				}
				next.ServeHTTP(w, r)
			})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := newTestRegistry(t, tc.wrap)
			img := newTestImage(t)
			seed(t, reg.srv.URL, "app", "latest", img)
			c := testClient(t, Options{})
			desc, err := c.Resolve(context.Background(), reg.ref(t, "app"))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(desc, img.manifestDesc) {
				t.Fatalf("Resolve = %+v, want %+v", desc, img.manifestDesc)
			}
			if n := reg.rec.count(http.MethodGet, "/manifests/"); n != 1 {
				t.Fatalf("%d manifest GETs, want 1", n)
			}
		})
	}
}

func TestResolveCompleteHEADNeedsNoGET(t *testing.T) {
	reg := newTestRegistry(t)
	img := newTestImage(t)
	seed(t, reg.srv.URL, "app", "latest", img)
	c := testClient(t, Options{})
	if _, err := c.Resolve(context.Background(), reg.ref(t, "app")); err != nil {
		t.Fatal(err)
	}
	if n := reg.rec.count(http.MethodGet, "/manifests/"); n != 0 {
		t.Fatalf("%d manifest GETs after a complete HEAD", n)
	}
}

// manifestServer serves one manifest document for every manifest path.
func manifestServer(t *testing.T, contentType string, body []byte, extra http.Header) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.URL.Path, "/manifests/") {
			http.NotFound(w, r)
			return
		}
		for k, v := range extra {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		if r.Method == http.MethodGet {
			w.Write(body)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestResolveSchema1Rejected(t *testing.T) {
	schema1 := []byte(`{"schemaVersion":1,"name":"app","tag":"latest","fsLayers":[]}`)
	for _, ct := range []string{manifest.MediaTypeDockerSchema1Signed, "application/json"} {
		t.Run(ct, func(t *testing.T) {
			srv := manifestServer(t, ct, schema1, nil)
			c := testClient(t, Options{})
			_, err := c.Resolve(context.Background(), mustRef(t, strings.TrimPrefix(srv.URL, "http://")+"/app"))
			errorsIs(t, err, manifest.ErrSchema1)
		})
	}
}

func TestResolveDigestMismatch(t *testing.T) {
	body := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`)
	other := digest.FromString("something else")
	srv := manifestServer(t, ocispec.MediaTypeImageIndex, body, http.Header{"Docker-Content-Digest": {other.String()}})
	host := strings.TrimPrefix(srv.URL, "http://")
	c := testClient(t, Options{})
	ctx := context.Background()
	// By digest: the registry names another manifest.
	_, err := c.Resolve(ctx, mustRef(t, host+"/app@"+digest.FromBytes(body).String()))
	errorsIs(t, err, ErrDigestMismatch)
	// By tag the HEAD answer is trusted (the content is verified by
	// FetchManifest), which then refuses the content.
	desc, err := c.Resolve(ctx, mustRef(t, host+"/app:latest"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.FetchManifest(ctx, mustRef(t, host+"/app:latest"), desc)
	errorsIs(t, err, ErrDigestMismatch)
}

func TestFetchManifestVerifies(t *testing.T) {
	body := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`)
	sum512 := sha512.Sum512(body)
	sha512Digest := digest.NewDigestFromBytes(digest.SHA512, sum512[:])
	big := bytes.Repeat([]byte(" "), MaxManifestSize+1)

	for _, tc := range []struct {
		name    string
		serve   []byte
		desc    ocispec.Descriptor
		wantErr error
	}{
		{"sha256", body, ocispec.Descriptor{Digest: digest.FromBytes(body), Size: int64(len(body))}, nil},
		{"sha512", body, ocispec.Descriptor{Digest: sha512Digest, Size: int64(len(body))}, nil},
		{"tampered", append([]byte(" "), body...), ocispec.Descriptor{Digest: digest.FromBytes(body)}, ErrDigestMismatch},
		{"tampered sha512", append([]byte(" "), body...), ocispec.Descriptor{Digest: sha512Digest}, ErrDigestMismatch},
		{"wrong size", body, ocispec.Descriptor{Digest: digest.FromBytes(body), Size: int64(len(body)) + 1}, ErrDigestMismatch},
		{"oversize body", big, ocispec.Descriptor{Digest: digest.FromBytes(big)}, ErrManifestTooLarge},
		{"oversize descriptor", body, ocispec.Descriptor{Digest: digest.FromBytes(body), Size: MaxManifestSize + 1}, ErrManifestTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := manifestServer(t, ocispec.MediaTypeImageIndex, tc.serve, nil)
			c := testClient(t, Options{})
			tc.desc.MediaType = ocispec.MediaTypeImageIndex
			got, err := c.FetchManifest(context.Background(), mustRef(t, strings.TrimPrefix(srv.URL, "http://")+"/app"), tc.desc)
			if tc.wantErr != nil {
				errorsIs(t, err, tc.wantErr)
				return
			}
			if err != nil || !bytes.Equal(got, body) {
				t.Fatalf("FetchManifest = %q, %v", got, err)
			}
		})
	}
}

func TestFetchManifestTooLargeWithoutLength(t *testing.T) {
	// A chunked response announces no length: the limit applies while
	// reading.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", ocispec.MediaTypeImageIndex)
		chunk := bytes.Repeat([]byte(" "), 64<<10)
		for written := 0; written <= MaxManifestSize; written += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	}))
	t.Cleanup(srv.Close)
	c := testClient(t, Options{})
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: digest.FromString("x")}
	_, err := c.FetchManifest(context.Background(), mustRef(t, strings.TrimPrefix(srv.URL, "http://")+"/app"), desc)
	errorsIs(t, err, ErrManifestTooLarge)
}

// stripRange makes a registry ignore Range requests.
func stripRange(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Del("Range")
		next.ServeHTTP(w, r)
	})
}

func TestFetchBlobRange(t *testing.T) {
	for _, tc := range []struct {
		name       string
		wraps      []middleware
		wantStatus int
	}{
		{"server honours Range", nil, http.StatusPartialContent},
		{"server ignores Range", []middleware{stripRange}, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var statuses syncList[int]
			status := func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
						w = &statusWriter{ResponseWriter: w, record: statuses.add}
					}
					next.ServeHTTP(w, r)
				})
			}
			reg := newTestRegistry(t, append(tc.wraps, status)...)
			img := newTestImage(t)
			seed(t, reg.srv.URL, "app", "latest", img)
			c := testClient(t, Options{})
			ref := reg.ref(t, "app")
			for _, offset := range []int64{0, 1, 4096, img.layerDesc.Size - 1, img.layerDesc.Size} {
				rc, err := c.FetchBlob(context.Background(), ref, img.layerDesc, offset)
				if err != nil {
					t.Fatalf("offset %d: %v", offset, err)
				}
				if got := readAllClose(t, rc); !bytes.Equal(got, img.layer[offset:]) {
					t.Fatalf("offset %d: got %d bytes, want the %d from the offset", offset, len(got), len(img.layer[offset:]))
				}
			}
			// Offsets 1, 4096 and size-1 were ranged (offset == size needs no request).
			if got := statuses.get(); len(got) != 4 || got[1] != tc.wantStatus {
				t.Fatalf("statuses %v, want ranged requests answered %d", got, tc.wantStatus)
			}
		})
	}
}

// statusWriter reports the status of a response before sending it.
type statusWriter struct {
	http.ResponseWriter
	record func(int)
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.wrote = true
		w.record(code)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func TestFetchBlobWrongContentRange(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Range", "bytes 0-9/10")
		w.WriteHeader(http.StatusPartialContent)
		w.Write([]byte("0123456789"))
	}))
	t.Cleanup(srv.Close)
	c := testClient(t, Options{})
	desc := ocispec.Descriptor{Digest: digest.FromString("0123456789"), Size: 10}
	rc, err := c.FetchBlob(context.Background(), mustRef(t, strings.TrimPrefix(srv.URL, "http://")+"/app"), desc, 5)
	if err == nil {
		rc.Close()
		t.Fatal("FetchBlob accepted a range that does not start at the offset")
	}
}

func TestFetchBlobRedirectDropsAuthorization(t *testing.T) {
	img := newTestImage(t)
	var cdnAuth syncList[string]
	cdn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cdnAuth.add(r.Header.Get("Authorization"))
		w.Write(img.layer)
	}))
	t.Cleanup(cdn.Close)

	reg := newTestRegistry(t, basicAuth("alice", "secret"))
	// Seed through the Client (the registry demands credentials).
	creds := func(context.Context, string) (string, string, error) { return "alice", "secret", nil }
	c := testClient(t, Options{Credentials: creds})
	ref := reg.ref(t, "app")
	if _, err := c.PushBlob(context.Background(), ref, img.configDesc, opener(img.config), nil); err != nil {
		t.Fatal(err)
	}
	reg.blobs.mu.Lock()
	reg.blobs.redirect = map[string]string{img.layerDesc.Digest.String(): cdn.URL + "/layer?sig=abc"}
	reg.blobs.mu.Unlock()

	rc, err := c.FetchBlob(context.Background(), ref, img.layerDesc, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAllClose(t, rc); !bytes.Equal(got, img.layer) {
		t.Fatal("wrong content through the redirect")
	}
	if got := cdnAuth.get(); len(got) != 1 || got[0] != "" {
		t.Fatalf("CDN saw Authorization %q, want none", got)
	}
	// The registry itself did get credentials for the blob request.
	for _, r := range reg.rec.all() {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") && r.Header.Get("Authorization") == "" {
			t.Fatal("blob request to the registry went without credentials")
		}
	}
}

func TestFetchBlobForeignURLs(t *testing.T) {
	img := newTestImage(t)
	var ranges syncList[string]
	cdn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/layer" {
			http.NotFound(w, r)
			return
		}
		ranges.add(r.Header.Get("Range"))
		if r.Header.Get("Authorization") != "" {
			t.Error("credentials sent to a foreign layer URL")
		}
		http.ServeContent(w, r, "layer", time.Time{}, bytes.NewReader(img.layer))
	}))
	t.Cleanup(cdn.Close)
	reg := newTestRegistry(t)
	c := testClient(t, Options{})
	desc := img.layerDesc
	desc.MediaType = manifest.MediaTypeDockerForeignLayer
	desc.URLs = []string{"ftp://nope.invalid/layer", cdn.URL + "/missing-first", cdn.URL + "/layer"}
	rc, err := c.FetchBlob(context.Background(), reg.ref(t, "app"), desc, 10)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAllClose(t, rc); !bytes.Equal(got, img.layer[10:]) {
		t.Fatal("wrong content from the foreign URL")
	}
	if got := ranges.get(); len(got) != 1 || got[0] != "bytes=10-102399" {
		t.Fatalf("Range sent to the foreign URL: %q", got)
	}
	// Without URLs, the registry's 404 stands.
	_, err = c.FetchBlob(context.Background(), reg.ref(t, "app"), img.layerDesc, 0)
	errorsIs(t, err, ErrNotFound)
}

func TestTagsPagination(t *testing.T) {
	pages := map[string]struct {
		tags []string
		link string
	}{
		"":  {[]string{"a", "b"}, `</v2/app/tags/list?last=b&n=2>; rel="next"`},
		"b": {[]string{"c", "d"}, `<PLACEHOLDER/v2/app/tags/list?last=d&n=2>; rel=next`},
		"d": {[]string{"e"}, ""},
	}
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v2/app/tags/list" {
			http.NotFound(w, r)
			return
		}
		p, ok := pages[r.URL.Query().Get("last")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if p.link != "" {
			// One absolute link, one relative.
			w.Header().Set("Link", strings.ReplaceAll(p.link, "PLACEHOLDER", srv.URL))
		}
		fmt.Fprintf(w, `{"name":"app","tags":["%s"]}`, strings.Join(p.tags, `","`))
	}))
	t.Cleanup(srv.Close)
	c := testClient(t, Options{})
	tags, err := c.Tags(context.Background(), mustRef(t, strings.TrimPrefix(srv.URL, "http://")+"/app"))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "b", "c", "d", "e"}; !reflect.DeepEqual(tags, want) {
		t.Fatalf("Tags = %v, want %v", tags, want)
	}
}

func TestErrorDocumentSurfaced(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.Contains(r.URL.Path, "/manifests/"):
			writeRegistryError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", "manifest unknown to the test")
		case strings.Contains(r.URL.Path, "/tags/"):
			writeRegistryError(w, http.StatusBadRequest, "NAME_INVALID", "invalid repository name for the test")
		default:
			w.WriteHeader(http.StatusTeapot)
			w.Write([]byte("plain text failure"))
		}
	}))
	t.Cleanup(srv.Close)
	c := testClient(t, Options{})
	ctx := context.Background()
	ref := mustRef(t, strings.TrimPrefix(srv.URL, "http://")+"/app")

	desc := ocispec.Descriptor{Digest: digest.FromString("x")}
	_, err := c.FetchManifest(ctx, ref, desc)
	errorsIs(t, err, ErrNotFound)
	if !strings.Contains(err.Error(), "MANIFEST_UNKNOWN: manifest unknown to the test") {
		t.Fatalf("error %q lacks the registry's message", err)
	}
	_, err = c.Tags(ctx, ref)
	var re *ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusBadRequest || len(re.Errors) != 1 || re.Errors[0].Code != "NAME_INVALID" {
		t.Fatalf("Tags error %#v", err)
	}
	if !strings.Contains(err.Error(), "invalid repository name for the test") {
		t.Fatalf("error %q lacks the registry's message", err)
	}
	_, err = c.BlobExists(ctx, ref, desc)
	if err == nil || !strings.Contains(err.Error(), "418") {
		t.Fatalf("BlobExists error %v", err)
	}
}
