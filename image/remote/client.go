// Package remote is berth's client of the OCI distribution API: it resolves
// references, fetches manifests and blobs, pushes them, lists tags and
// checks logins, against registries that may require Basic or Docker token
// (Bearer) authentication, through mirrors, over TLS with per-registry
// certificates or over plain HTTP for insecure registries.
//
// # Endpoints
//
// A registry host is reached at https://HOST/v2/. docker.io is served by
// registry-1.docker.io. An insecure host ([HostConfig.Insecure], and by
// default localhost, 127.0.0.0/8 and ::1, as docker does) is tried over
// HTTPS without certificate verification first and over plain HTTP when
// that fails; the scheme that worked is remembered.
//
// Pulls (Resolve, FetchManifest, FetchBlob, Tags) try each of the host's
// mirrors in order and the host itself last; a failing mirror is logged and
// skipped (and, when unreachable, avoided for a while). A mirror is an
// endpoint base URL: "mirror.example:5000" or "https://mirror.example/cache"
// send the request for REPO to https://mirror.example:5000/v2/REPO/... and
// https://mirror.example/cache/v2/REPO/... respectively: the repository path
// is unchanged, the mirror's path is a prefix (a trailing "/v2" in it is
// ignored). Pushes, BlobExists and Ping only ever use the host itself.
//
// # Authentication
//
// Requests go out anonymously until the registry answers 401; its
// WWW-Authenticate challenge is then remembered for the host. A Basic
// challenge is answered with the host's credentials; a Bearer challenge by
// fetching a token from the realm for the scopes the request needs
// (repository:NAME:pull, pull,push for pushes, plus pull on the source
// repository of a cross-repository mount), with the credentials if there are
// any. Tokens are cached per host and scope set until they expire.
//
// # Retries
//
// Connection errors and 429, 502, 503 and 504 responses are retried with
// exponential backoff and jitter (429 and 503 honour Retry-After); other
// 4xx are final. Every operation honours its context.
package remote

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/berth-engine/berth/image/reference"
)

// HostConfig is how a registry host is reached.
type HostConfig struct {
	// Mirrors are tried in order before the host for pulls: a host[:port]
	// or a base URL "http(s)://host[:port][/prefix]". A bare host[:port] is
	// reached over HTTPS, with the plain HTTP fallback when the mirror's own
	// HostConfig (or loopback address) makes it insecure; an explicit
	// scheme is used as given.
	Mirrors []string
	// Insecure allows plain HTTP and skips TLS certificate verification.
	Insecure bool
	// CADir is a directory laid out as docker's certs.d/HOST: *.crt files
	// are extra root CAs, each NAME.cert with NAME.key a client certificate.
	CADir string
}

// Options configure a Client. Every field is optional.
type Options struct {
	// Hosts returns the configuration of a registry host (as in a
	// reference, e.g. "docker.io", "localhost:5000", or a mirror's
	// host[:port]). It is called for every operation, but a host's TLS
	// settings (CADir, Insecure) are read once per Client, when its HTTP
	// client is built.
	Hosts func(host string) HostConfig
	// Credentials returns the credentials for a registry host (as in a
	// reference; a mirror's host[:port] for mirrors); empty for anonymous
	// access. An empty user with a secret is an identity (OAuth2 refresh)
	// token, exchanged at the token server. A failure is logged and the
	// request goes out anonymously.
	Credentials func(ctx context.Context, host string) (user, secret string, err error)
	// UserAgent is sent with every request; default "berth".
	UserAgent string
	// Retries is how many times a failed request is retried: 0 means the
	// default (4), a negative value disables retries.
	Retries int
	// Transport is the base round tripper (for tests). When it is an
	// *http.Transport it is cloned per host to apply the host's TLS
	// settings; any other RoundTripper is used as it is.
	Transport http.RoundTripper
	// Logf receives diagnostics (retries, mirror fallbacks); nil discards
	// them.
	Logf func(format string, args ...any)
}

// Defaults.
const (
	// MaxManifestSize is the largest manifest fetched or pushed (4 MiB, the
	// limit registries apply).
	MaxManifestSize = 4 << 20
	// DefaultRetries is the number of retries when Options.Retries is 0.
	DefaultRetries = 4
	// DefaultUserAgent is sent when Options.UserAgent is empty.
	DefaultUserAgent = "berth"

	dockerHubDomain   = "docker.io"
	dockerHubRegistry = "registry-1.docker.io"

	defaultMinBackoff    = 250 * time.Millisecond
	defaultMaxBackoff    = 10 * time.Second
	defaultMaxRetryAfter = time.Minute
	// A blob larger than this is uploaded in chunks of chunkSize.
	defaultChunkThreshold = 64 << 20
	defaultChunkSize      = 16 << 20
	// How long an unreachable mirror is skipped.
	mirrorDownTime = 30 * time.Second
	// Redirects followed per request.
	maxRedirects = 10
)

// Client talks to registries. It is safe for concurrent use; it caches
// per-host HTTP clients, authentication challenges, tokens and the scheme
// that works for insecure hosts.
type Client struct {
	hosts       func(string) HostConfig
	credentials func(context.Context, string) (string, string, error)
	userAgent   string
	retries     int
	base        http.RoundTripper
	logf        func(string, ...any)

	// Tunables, fixed by New; tests shorten them.
	minBackoff     time.Duration
	maxBackoff     time.Duration
	maxRetryAfter  time.Duration
	chunkThreshold int64
	chunkSize      int64

	mu      sync.Mutex
	clients map[string]*http.Client // by host[:port]
	auths   map[string]*authState   // by host[:port]
	schemes map[string]string       // working scheme of insecure endpoints, by base
	down    map[string]time.Time    // unreachable mirrors, by base, until
}

// New returns a Client.
func New(opts Options) *Client {
	c := &Client{
		hosts:          opts.Hosts,
		credentials:    opts.Credentials,
		userAgent:      opts.UserAgent,
		retries:        opts.Retries,
		base:           opts.Transport,
		logf:           opts.Logf,
		minBackoff:     defaultMinBackoff,
		maxBackoff:     defaultMaxBackoff,
		maxRetryAfter:  defaultMaxRetryAfter,
		chunkThreshold: defaultChunkThreshold,
		chunkSize:      defaultChunkSize,
		clients:        map[string]*http.Client{},
		auths:          map[string]*authState{},
		schemes:        map[string]string{},
		down:           map[string]time.Time{},
	}
	if c.hosts == nil {
		c.hosts = func(string) HostConfig { return HostConfig{} }
	}
	if c.userAgent == "" {
		c.userAgent = DefaultUserAgent
	}
	switch {
	case c.retries == 0:
		c.retries = DefaultRetries
	case c.retries < 0:
		c.retries = 0
	}
	if c.base == nil {
		c.base = http.DefaultTransport
	}
	if c.logf == nil {
		c.logf = func(string, ...any) {}
	}
	return c
}

// endpoint is one base URL serving a registry's API.
type endpoint struct {
	// host is the URL host[:port] (registry-1.docker.io for docker.io).
	host string
	// registry is the name the user knows it by (docker.io, the mirror's
	// host): the key of credentials and of login hints.
	registry string
	// prefix goes before /v2 in every path ("" or "/cache").
	prefix string
	// schemes are tried in order: ["https"], ["http"] or ["https", "http"].
	schemes []string
	mirror  bool
	client  *http.Client
	auth    *authState
	// creds, when set, replace Options.Credentials (Ping).
	creds *credential
}

// base returns the endpoint's identity for the scheme and mirror caches.
func (ep *endpoint) base() string { return ep.host + ep.prefix }

type credential struct{ user, secret string }

// upstream returns the endpoint of the registry itself.
func (c *Client) upstream(domain string) (*endpoint, error) {
	if domain == "" {
		return nil, fmt.Errorf("empty registry host: %w", ErrInvalidReference)
	}
	hc := c.hosts(domain)
	host := domain
	if domain == dockerHubDomain {
		host = dockerHubRegistry
	}
	insecure := hc.Insecure || isLoopback(domain)
	client, err := c.httpClient(host, hc, insecure)
	if err != nil {
		return nil, err
	}
	schemes := []string{"https"}
	if insecure {
		schemes = append(schemes, "http")
	}
	return &endpoint{
		host:     host,
		registry: domain,
		schemes:  schemes,
		client:   client,
		auth:     c.authFor(host),
	}, nil
}

// pullEndpoints returns the domain's mirrors and the registry itself, in
// the order pulls try them.
func (c *Client) pullEndpoints(domain string) ([]*endpoint, error) {
	up, err := c.upstream(domain)
	if err != nil {
		return nil, err
	}
	var eps []*endpoint
	for _, m := range c.hosts(domain).Mirrors {
		ep, err := c.mirror(m)
		if err != nil {
			return nil, fmt.Errorf("mirror %q of %s: %w", m, domain, err)
		}
		eps = append(eps, ep)
	}
	return append(eps, up), nil
}

// mirror returns the endpoint of a mirror given as host[:port] or URL.
func (c *Client) mirror(spec string) (*endpoint, error) {
	raw := spec
	explicit := strings.Contains(raw, "://")
	if !explicit {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return nil, fmt.Errorf("scheme %q is neither http nor https", u.Scheme)
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("want host[:port] or http(s)://host[:port][/path]")
	}
	prefix := strings.TrimSuffix(strings.TrimRight(u.Path, "/"), "/v2")
	hc := c.hosts(u.Host)
	insecure := hc.Insecure || isLoopback(u.Host)
	client, err := c.httpClient(u.Host, hc, insecure)
	if err != nil {
		return nil, err
	}
	schemes := []string{u.Scheme}
	if !explicit && insecure {
		schemes = append(schemes, "http")
	}
	return &endpoint{
		host:     u.Host,
		registry: u.Host,
		prefix:   prefix,
		schemes:  schemes,
		mirror:   true,
		client:   client,
		auth:     c.authFor(u.Host),
	}, nil
}

// authFor returns the shared authentication state of a host.
func (c *Client) authFor(host string) *authState {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, ok := c.auths[host]
	if !ok {
		st = newAuthState()
		c.auths[host] = st
	}
	return st
}

// isLoopback reports whether host[:port] is localhost or a loopback IP,
// which docker treats as insecure registries by default.
func isLoopback(host string) bool {
	h := host
	if sh, _, err := net.SplitHostPort(host); err == nil {
		h = sh
	}
	h = strings.Trim(h, "[]")
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// httpClient returns the (cached) HTTP client of a host, with the host's TLS
// settings applied when the base transport is an *http.Transport.
func (c *Client) httpClient(host string, hc HostConfig, insecure bool) (*http.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.clients[host]; ok {
		return cl, nil
	}
	rt := c.base
	if t, ok := c.base.(*http.Transport); ok && (insecure || hc.CADir != "") {
		t = t.Clone()
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if t.TLSClientConfig != nil {
			cfg = t.TLSClientConfig.Clone()
		}
		if hc.CADir != "" {
			if err := loadCertsDir(cfg, hc.CADir); err != nil {
				return nil, fmt.Errorf("registry %s: %w", host, err)
			}
		}
		if insecure {
			cfg.InsecureSkipVerify = true
		}
		t.TLSClientConfig = cfg
		rt = t
	}
	cl := &http.Client{Transport: rt, CheckRedirect: checkRedirect}
	c.clients[host] = cl
	return cl, nil
}

// clientForURL returns the HTTP client for a URL outside the registry
// endpoints (token realms, foreign layer URLs), configured by its host.
func (c *Client) clientForURL(u *url.URL) (*http.Client, error) {
	hc := c.hosts(u.Host)
	return c.httpClient(u.Host, hc, hc.Insecure || isLoopback(u.Host))
}

// errTooManyRedirects stops a redirect loop.
var errTooManyRedirects = fmt.Errorf("stopped after %d redirects", maxRedirects)

// checkRedirect follows up to maxRedirects redirects and never sends the
// registry's Authorization header to another host (blob downloads redirect
// to CDNs and storage services with their own signed URLs).
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return errTooManyRedirects
	}
	if req.URL.Host != via[0].URL.Host {
		req.Header.Del("Authorization")
	}
	return nil
}

// loadCertsDir adds a docker certs.d directory to cfg: *.crt files are root
// CAs (on top of the system's), NAME.cert + NAME.key client certificates.
// A directory that does not exist adds nothing, as with docker: most
// registries have no certs.d entry.
func loadCertsDir(cfg *tls.Config, dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read certificates directory: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		path := filepath.Join(dir, name)
		switch {
		case strings.HasSuffix(name, ".crt"):
			if cfg.RootCAs == nil {
				pool, err := x509.SystemCertPool()
				if err != nil {
					pool = x509.NewCertPool()
				}
				cfg.RootCAs = pool
			}
			pem, err := os.ReadFile(path)
			if err != nil {
				return fmt.Errorf("read CA certificate: %w", err)
			}
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				return fmt.Errorf("CA certificate %s: no PEM certificate found", path)
			}
		case strings.HasSuffix(name, ".cert"):
			keyPath := strings.TrimSuffix(path, ".cert") + ".key"
			pair, err := tls.LoadX509KeyPair(path, keyPath)
			if err != nil {
				return fmt.Errorf("client certificate %s: %w", path, err)
			}
			cfg.Certificates = append(cfg.Certificates, pair)
		case strings.HasSuffix(name, ".key"):
			if _, err := os.Stat(strings.TrimSuffix(path, ".key") + ".cert"); err != nil {
				return fmt.Errorf("client key %s has no matching .cert file", path)
			}
		}
	}
	return nil
}

// repository returns the repository path of a named reference.
func repository(ref reference.Ref) (string, error) {
	if ref.IsID() || ref.Domain() == "" || ref.Path() == "" {
		return "", fmt.Errorf("%q: %w", ref.String(), ErrInvalidReference)
	}
	return ref.Path(), nil
}

// preferredSchemes returns ep's schemes with the one known to work first.
func (c *Client) preferredSchemes(ep *endpoint) []string {
	if len(ep.schemes) < 2 {
		return ep.schemes
	}
	c.mu.Lock()
	known := c.schemes[ep.base()]
	c.mu.Unlock()
	if known == "" || known == ep.schemes[0] {
		return ep.schemes
	}
	out := []string{known}
	for _, s := range ep.schemes {
		if s != known {
			out = append(out, s)
		}
	}
	return out
}

func (c *Client) rememberScheme(ep *endpoint, scheme string) {
	if len(ep.schemes) < 2 {
		return
	}
	c.mu.Lock()
	c.schemes[ep.base()] = scheme
	c.mu.Unlock()
}

// mirrorDown reports whether a mirror recently failed to connect.
func (c *Client) mirrorDown(ep *endpoint) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	until, ok := c.down[ep.base()]
	if ok && time.Now().After(until) {
		delete(c.down, ep.base())
		return false
	}
	return ok
}

func (c *Client) markMirrorDown(ep *endpoint) {
	c.mu.Lock()
	c.down[ep.base()] = time.Now().Add(mirrorDownTime)
	c.mu.Unlock()
}

// onEndpoints runs op on each endpoint in turn until one succeeds. Mirrors
// that fail are logged and skipped; the last endpoint (the registry) gives
// the error.
func onEndpoints[T any](ctx context.Context, c *Client, eps []*endpoint, op func(*endpoint) (T, error)) (T, error) {
	var zero T
	for i, ep := range eps {
		last := i == len(eps)-1
		if ep.mirror && !last && c.mirrorDown(ep) {
			continue
		}
		v, err := op(ep)
		if err == nil {
			return v, nil
		}
		if last || ctx.Err() != nil {
			return zero, err
		}
		c.logf("mirror %s: %v; trying the next endpoint", ep.base(), err)
		var ue *url.Error
		if errors.As(err, &ue) {
			c.markMirrorDown(ep)
		}
	}
	return zero, errors.New("no registry endpoint") // unreachable: eps ends with the registry
}
