package remote

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-engine/berth/image/reference"
)

// testClient returns a Client with short backoffs, logging to t.
func testClient(t *testing.T, opts Options) *Client {
	t.Helper()
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	c := New(opts)
	c.minBackoff = 5 * time.Millisecond
	c.maxBackoff = 40 * time.Millisecond
	return c
}

// discardLog silences test servers' error logs.
var discardLog = log.New(io.Discard, "", 0)

// middleware wraps a handler.
type middleware func(http.Handler) http.Handler

// testRegistry is ggcr's in-memory registry (with per-repository blobs)
// behind optional middlewares, on 127.0.0.1.
type testRegistry struct {
	srv   *httptest.Server
	host  string // 127.0.0.1:PORT
	blobs *repoBlobs
	rec   *recorder
}

func newTestRegistry(t *testing.T, wraps ...middleware) *testRegistry {
	t.Helper()
	blobs := &repoBlobs{m: map[string][]byte{}}
	var h http.Handler = registry.New(
		registry.Logger(log.New(io.Discard, "", 0)),
		registry.WithBlobHandler(blobs),
	)
	// The last middleware given is the outermost.
	for _, w := range wraps {
		h = w(h)
	}
	rec := &recorder{}
	srv := httptest.NewServer(rec.wrap(h))
	t.Cleanup(srv.Close)
	return &testRegistry{srv: srv, host: strings.TrimPrefix(srv.URL, "http://"), blobs: blobs, rec: rec}
}

// ref parses "HOST/" + s.
func (r *testRegistry) ref(t *testing.T, s string) reference.Ref {
	t.Helper()
	return mustRef(t, r.host+"/"+s)
}

func mustRef(t *testing.T, s string) reference.Ref {
	t.Helper()
	ref, err := reference.Parse(s)
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return ref
}

// repoBlobs is a ggcr blob handler that keeps blobs per repository, so
// that existence checks and cross-repository mounts are meaningful.
type repoBlobs struct {
	mu sync.Mutex
	m  map[string][]byte // "repo@digest" → content
	// redirect, when set, sends GETs of a digest elsewhere.
	redirect map[string]string
}

// key names a blob of a repository. ggcr computes the repository of an
// upload-session PUT (/v2/REPO/blobs/uploads/ID) as "REPO/blobs": undone
// here.
func (b *repoBlobs) key(repo string, h v1.Hash) string {
	return strings.TrimSuffix(repo, "/blobs") + "@" + h.String()
}

func (b *repoBlobs) Stat(_ context.Context, repo string, h v1.Hash) (int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if loc, ok := b.redirect[h.String()]; ok {
		return 0, registry.RedirectError{Location: loc, Code: http.StatusTemporaryRedirect}
	}
	data, ok := b.m[b.key(repo, h)]
	if !ok {
		return 0, registry.ErrNotFound
	}
	return int64(len(data)), nil
}

func (b *repoBlobs) Get(_ context.Context, repo string, h v1.Hash) (io.ReadCloser, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if loc, ok := b.redirect[h.String()]; ok {
		return nil, registry.RedirectError{Location: loc, Code: http.StatusTemporaryRedirect}
	}
	data, ok := b.m[b.key(repo, h)]
	if !ok {
		return nil, registry.ErrNotFound
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

func (b *repoBlobs) Put(_ context.Context, repo string, h v1.Hash, rc io.ReadCloser) error {
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.m[b.key(repo, h)] = data
	return nil
}

func (b *repoBlobs) has(repo string, d digest.Digest) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.m[repo+"@"+d.String()]
	return ok
}

// mount copies a blob between repositories; false when the source lacks it.
func (b *repoBlobs) mount(from, to string, d digest.Digest) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	data, ok := b.m[from+"@"+d.String()]
	if ok {
		b.m[to+"@"+d.String()] = data
	}
	return ok
}

// recorder records the requests a server receives.
type recorder struct {
	mu   sync.Mutex
	reqs []*http.Request // clones without bodies
}

func (rec *recorder) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, r.Clone(context.Background()))
		rec.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

// count returns how many requests had the method (any when "") and a path
// containing substr.
func (rec *recorder) count(method, substr string) int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	n := 0
	for _, r := range rec.reqs {
		if (method == "" || r.Method == method) && strings.Contains(r.URL.Path, substr) {
			n++
		}
	}
	return n
}

func (rec *recorder) all() []*http.Request {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]*http.Request(nil), rec.reqs...)
}

// testImage is a one-layer OCI image.
type testImage struct {
	config, layer, manifest []byte
	configDesc, layerDesc   ocispec.Descriptor
	manifestDesc            ocispec.Descriptor
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func newTestImage(t *testing.T) testImage {
	t.Helper()
	var img testImage
	img.layer = randomBytes(t, 100<<10)
	img.config = []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["%s"]}}`, digest.FromBytes(img.layer)))
	img.configDesc = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(img.config), Size: int64(len(img.config))}
	img.layerDesc = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(img.layer), Size: int64(len(img.layer))}
	m := ocispec.Manifest{
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    img.configDesc,
		Layers:    []ocispec.Descriptor{img.layerDesc},
	}
	m.SchemaVersion = 2
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	img.manifest = data
	img.manifestDesc = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(data), Size: int64(len(data))}
	return img
}

// seed uploads the image to base (a registry URL) with plain HTTP requests,
// independently of the Client under test.
func seed(t *testing.T, base, repo, tag string, img testImage) {
	t.Helper()
	seedBlob(t, base, repo, img.config)
	seedBlob(t, base, repo, img.layer)
	seedManifest(t, base, repo, tag, img.manifestDesc.MediaType, img.manifest)
}

func seedBlob(t *testing.T, base, repo string, data []byte) {
	t.Helper()
	u := base + "/v2/" + repo + "/blobs/uploads/?digest=" + url.QueryEscape(digest.FromBytes(data).String())
	resp, err := http.Post(u, "application/octet-stream", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("seed blob: %s", resp.Status)
	}
}

func seedManifest(t *testing.T, base, repo, tag, mediaType string, data []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, base+"/v2/"+repo+"/manifests/"+tag, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", mediaType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("seed manifest: %s", resp.Status)
	}
}

// rawGet fetches a URL with a plain client and returns the body; it fails
// the test unless the status is 200.
func rawGet(t *testing.T, u string) []byte {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", u, resp.Status)
	}
	return data
}

func readAllClose(t *testing.T, rc io.ReadCloser) []byte {
	t.Helper()
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func opener(data []byte) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
}

// writeRegistryError writes a spec error response.
func writeRegistryError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"errors":[{"code":%q,"message":%q}]}`, code, message)
}

// repoOf returns the repository and kind ("manifests", "blobs", "tags") of
// a /v2/ API path.
func repoOf(path string) (repo, kind string) {
	rest, ok := strings.CutPrefix(path, "/v2/")
	if !ok {
		return "", ""
	}
	for _, k := range []string{"/manifests/", "/blobs/", "/tags/"} {
		if i := strings.Index(rest, k); i >= 0 {
			return rest[:i], strings.Trim(k, "/")
		}
	}
	return "", ""
}

// basicAuth requires user:pass on every request.
func basicAuth(user, pass string) middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, p, ok := r.BasicAuth()
			if !ok || u != user || p != pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="test registry"`)
				writeRegistryError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// tokenServer implements the Docker token flow: GET with optional Basic
// credentials, or POST with a refresh token; it grants the intersection of
// the requested scopes and access(user, repo), as opaque tokens.
type tokenServer struct {
	srv     *httptest.Server
	service string
	users   map[string]string // user → password
	refresh map[string]string // refresh token → user
	// access returns the actions user ("" = anonymous) has on repo.
	access         func(user, repo string) []string
	useAccessToken bool

	mu       sync.Mutex
	tokens   map[string]map[string]map[string]bool // token → repo → action
	requests []url.Values                          // parameters of each token request
	methods  []string
}

func newTokenServer(t *testing.T, access func(user, repo string) []string) *tokenServer {
	t.Helper()
	ts := &tokenServer{
		service: "test-registry",
		users:   map[string]string{},
		refresh: map[string]string{},
		access:  access,
		tokens:  map[string]map[string]map[string]bool{},
	}
	ts.srv = httptest.NewServer(http.HandlerFunc(ts.serveToken))
	t.Cleanup(ts.srv.Close)
	return ts
}

func (ts *tokenServer) serveToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	params := r.Form
	ts.mu.Lock()
	ts.requests = append(ts.requests, params)
	ts.methods = append(ts.methods, r.Method)
	ts.mu.Unlock()
	if params.Get("service") != ts.service {
		http.Error(w, "wrong service", http.StatusBadRequest)
		return
	}
	user := ""
	switch r.Method {
	case http.MethodGet:
		if u, p, ok := r.BasicAuth(); ok {
			if ts.users[u] == "" || ts.users[u] != p {
				writeRegistryError(w, http.StatusUnauthorized, "UNAUTHORIZED", "incorrect username or password")
				return
			}
			user = u
		}
	case http.MethodPost:
		u, ok := ts.refresh[params.Get("refresh_token")]
		if params.Get("grant_type") != "refresh_token" || !ok {
			writeRegistryError(w, http.StatusUnauthorized, "UNAUTHORIZED", "invalid refresh token")
			return
		}
		user = u
	default:
		http.Error(w, "method", http.StatusMethodNotAllowed)
		return
	}
	// GET repeats scope; the OAuth2 POST separates scopes with spaces.
	var scopes []string
	for _, s := range params["scope"] {
		scopes = append(scopes, strings.Fields(s)...)
	}
	grant := map[string]map[string]bool{}
	for _, s := range scopes {
		parts := strings.Split(s, ":")
		if len(parts) != 3 || parts[0] != "repository" {
			continue
		}
		allowed := ts.access(user, parts[1])
		for _, a := range strings.Split(parts[2], ",") {
			for _, ok := range allowed {
				if a == ok {
					if grant[parts[1]] == nil {
						grant[parts[1]] = map[string]bool{}
					}
					grant[parts[1]][a] = true
				}
			}
		}
	}
	tok := fmt.Sprintf("tok-%x", randomBytesNoT(8))
	ts.mu.Lock()
	ts.tokens[tok] = grant
	ts.mu.Unlock()
	field := "token"
	if ts.useAccessToken {
		field = "access_token"
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{field: tok, "expires_in": 300})
}

func randomBytesNoT(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}

// allowed reports whether the token grants action on repo.
func (ts *tokenServer) allowed(tok, repo, action string) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	g, ok := ts.tokens[tok]
	return ok && g[repo][action]
}

func (ts *tokenServer) valid(tok string) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	_, ok := ts.tokens[tok]
	return ok
}

// revoke invalidates every token issued so far.
func (ts *tokenServer) revoke() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.tokens = map[string]map[string]map[string]bool{}
}

func (ts *tokenServer) requestCount() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return len(ts.requests)
}

func (ts *tokenServer) lastRequest() url.Values {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.requests[len(ts.requests)-1]
}

func bearerOf(r *http.Request) string {
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return tok
}

// guard makes a registry demand tokens of ts: pull for GET and HEAD, push
// for the other methods; /v2/ needs any valid token.
func (ts *tokenServer) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := bearerOf(r)
		challenge := fmt.Sprintf(`Bearer realm="%s/token",service="%s"`, ts.srv.URL, ts.service)
		if r.URL.Path == "/v2/" {
			if !ts.valid(tok) {
				w.Header().Set("WWW-Authenticate", challenge)
				writeRegistryError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		repo, _ := repoOf(r.URL.Path)
		action := "push"
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			action = "pull"
		}
		if !ts.allowed(tok, repo, action) {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`%s,scope="repository:%s:%s"`, challenge, repo, action))
			writeRegistryError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// mountSupport implements POST ?mount=&from= on top of ggcr (which ignores
// it), checking that the token (when ts is set) allows pulling from the
// source repository, as registries do.
func mountSupport(blobs func() *repoBlobs, ts *tokenServer) middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			q := r.URL.Query()
			if r.Method == http.MethodPost && q.Get("mount") != "" {
				repo, _ := repoOf(r.URL.Path)
				from := q.Get("from")
				d := digest.Digest(q.Get("mount"))
				if (ts == nil || ts.allowed(bearerOf(r), from, "pull")) && blobs().mount(from, repo, d) {
					w.Header().Set("Location", "/v2/"+repo+"/blobs/"+d.String())
					w.Header().Set("Docker-Content-Digest", d.String())
					w.WriteHeader(http.StatusCreated)
					return
				}
				// No mount: start an ordinary upload, as the spec says.
				r.URL.RawQuery = ""
			}
			next.ServeHTTP(w, r)
		})
	}
}

// errorsIs fails the test unless errors.Is(err, target).
func errorsIs(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v, want %v", err, target)
	}
}

// syncList is a list appended to by server goroutines and read by tests.
type syncList[T any] struct {
	mu    sync.Mutex
	items []T
}

func (l *syncList[T]) add(v T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.items = append(l.items, v)
}

func (l *syncList[T]) get() []T {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]T(nil), l.items...)
}
