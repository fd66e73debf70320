package remote

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost":         true,
		"LOCALHOST:5000":    true,
		"127.0.0.1":         true,
		"127.1.2.3:443":     true,
		"[::1]:5000":        true,
		"::1":               true,
		"registry.test":     false,
		"10.0.0.1:5000":     false,
		"localhost.example": false,
		"docker.io":         false,
	} {
		if got := isLoopback(host); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestMirrorSpec(t *testing.T) {
	for _, tc := range []struct {
		spec, host, prefix string
		schemes            []string
		insecure           bool
	}{
		{"mirror.test", "mirror.test", "", []string{"https"}, false},
		{"mirror.test:5000", "mirror.test:5000", "", []string{"https", "http"}, true},
		{"https://mirror.test/cache/", "mirror.test", "/cache", []string{"https"}, true},
		{"http://mirror.test/cache/v2", "mirror.test", "/cache", []string{"http"}, false},
		{"https://mirror.test/v2/", "mirror.test", "", []string{"https"}, false},
		{"localhost:5000", "localhost:5000", "", []string{"https", "http"}, false},
	} {
		c := New(Options{Hosts: func(host string) HostConfig { return HostConfig{Insecure: tc.insecure} }})
		ep, err := c.mirror(tc.spec)
		if err != nil {
			t.Errorf("mirror(%q): %v", tc.spec, err)
			continue
		}
		if ep.host != tc.host || ep.prefix != tc.prefix || !reflect.DeepEqual(ep.schemes, tc.schemes) || !ep.mirror {
			t.Errorf("mirror(%q) = host %q prefix %q schemes %v, want %q %q %v", tc.spec, ep.host, ep.prefix, ep.schemes, tc.host, tc.prefix, tc.schemes)
		}
	}
	for _, bad := range []string{"ftp://mirror.test", "https://", "https://mirror.test/?x=1", "https://u:p@mirror.test"} {
		if _, err := New(Options{}).mirror(bad); err == nil {
			t.Errorf("mirror(%q) accepted", bad)
		}
	}
}

func TestDockerHubEndpoint(t *testing.T) {
	c := New(Options{})
	ep, err := c.upstream("docker.io")
	if err != nil {
		t.Fatal(err)
	}
	if ep.host != "registry-1.docker.io" || ep.registry != "docker.io" || !reflect.DeepEqual(ep.schemes, []string{"https"}) {
		t.Fatalf("docker.io endpoint = %q (%q) %v", ep.host, ep.registry, ep.schemes)
	}
}

// freeAddr returns a 127.0.0.1 address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestMirrors(t *testing.T) {
	upstream := newTestRegistry(t)
	cache := newTestRegistry(t, func(next http.Handler) http.Handler { return http.StripPrefix("/cache", next) })
	img := newTestImage(t)
	seed(t, upstream.srv.URL, "library/app", "latest", img)
	seed(t, cache.srv.URL+"/cache", "library/app", "latest", img)
	onlyUpstream := randomBytes(t, 1000)
	seedBlob(t, upstream.srv.URL, "library/app", onlyUpstream)

	upstreamSeeds := upstream.rec.count("", "/v2/library/app/")
	cacheSeeds := cache.rec.count("", "/cache/v2/library/app/")
	upstreamBlobSeeds := upstream.rec.count(http.MethodGet, "/blobs/")

	down := freeAddr(t)
	var logs syncList[string]
	c := testClient(t, Options{
		Hosts: func(host string) HostConfig {
			if host == upstream.host {
				return HostConfig{Mirrors: []string{down, "http://" + cache.host + "/cache"}}
			}
			return HostConfig{}
		},
		Logf: func(format string, args ...any) { logs.add(fmt.Sprintf(format, args...)) },
	})
	ctx := context.Background()
	ref := upstream.ref(t, "library/app")

	desc, err := c.Resolve(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest != img.manifestDesc.Digest {
		t.Fatalf("Resolve = %v", desc)
	}
	if _, err := c.FetchManifest(ctx, ref, desc); err != nil {
		t.Fatal(err)
	}
	rc, err := c.FetchBlob(ctx, ref, img.layerDesc, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readAllClose(t, rc), img.layer) {
		t.Fatal("wrong layer from the mirror")
	}
	if n := upstream.rec.count("", "/v2/library/app/") - upstreamSeeds; n != 0 {
		t.Fatalf("upstream got %d requests while the mirror had everything", n)
	}
	if n := cache.rec.count("", "/cache/v2/library/app/") - cacheSeeds; n != 3 {
		t.Fatalf("mirror got %d requests under its prefix, want 3", n)
	}

	// A blob the mirror lacks comes from upstream.
	rc, err = c.FetchBlob(ctx, ref, blobDesc(onlyUpstream), 0)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readAllClose(t, rc), onlyUpstream) {
		t.Fatal("wrong blob from upstream")
	}
	if n := upstream.rec.count(http.MethodGet, "/blobs/") - upstreamBlobSeeds; n != 1 {
		t.Fatalf("upstream got %d blob GETs, want 1", n)
	}

	// The unreachable mirror was tried once, then skipped.
	downLogs := 0
	for _, l := range logs.get() {
		if strings.Contains(l, down) && strings.Contains(l, "next endpoint") {
			downLogs++
		}
	}
	if downLogs != 1 {
		t.Fatalf("unreachable mirror logged %d times, want once: %q", downLogs, logs.get())
	}

	// Pushes never go to mirrors.
	data := randomBytes(t, 100)
	cacheRequests := len(cache.rec.all())
	if _, err := c.PushBlob(ctx, ref, blobDesc(data), opener(data), nil); err != nil {
		t.Fatal(err)
	}
	if n := len(cache.rec.all()) - cacheRequests; n != 0 {
		t.Fatal("a push went to the mirror")
	}
	if !upstream.blobs.has("library/app", blobDesc(data).Digest) {
		t.Fatal("the push did not reach upstream")
	}
}

func TestMirrorNotFoundFallsThroughForManifests(t *testing.T) {
	upstream := newTestRegistry(t)
	empty := newTestRegistry(t)
	img := newTestImage(t)
	seed(t, upstream.srv.URL, "app", "v1", img)
	c := testClient(t, Options{Hosts: func(host string) HostConfig {
		if host == upstream.host {
			return HostConfig{Mirrors: []string{empty.host}}
		}
		return HostConfig{}
	}})
	desc, err := c.Resolve(context.Background(), upstream.ref(t, "app:v1"))
	if err != nil || desc.Digest != img.manifestDesc.Digest {
		t.Fatalf("Resolve = %v, %v", desc, err)
	}
	if empty.rec.count(http.MethodHead, "/manifests/v1") != 1 {
		t.Fatal("the mirror was not asked first")
	}
}

// testPKI is a CA issuing server and client certificates.
type testPKI struct {
	ca    *x509.Certificate
	key   *ecdsa.PrivateKey
	caPEM []byte
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "berth test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testPKI{ca: ca, key: key, caPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a certificate for a server name (or a client), as PEM.
func (p *testPKI) issue(t *testing.T, serial int64, name string, client bool) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{name},
	}
	if client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		tmpl.DNSNames = nil
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

// dialTo returns a transport that connects every request to addr, so that
// tests can use a non-loopback registry name ("registry.test").
func dialTo(addr string, dials *atomic.Int32) *http.Transport {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			if dials != nil {
				dials.Add(1)
			}
			return d.DialContext(ctx, network, addr)
		},
	}
}

// pingHandler answers the API base and nothing else.
var pingHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v2/" {
		http.NotFound(w, r)
		return
	}
	w.WriteHeader(http.StatusOK)
})

func TestTLSCertificatesDir(t *testing.T) {
	pki := newTestPKI(t)
	serverCert, serverKey := pki.issue(t, 2, "registry.test", false)
	clientCert, clientKey := pki.issue(t, 3, "berth client", true)
	pair, err := tls.X509KeyPair(serverCert, serverKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(pki.ca)

	startServer := func(t *testing.T, requireClient bool) string {
		srv := httptest.NewUnstartedServer(pingHandler)
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
		if requireClient {
			srv.TLS.ClientAuth = tls.RequireAndVerifyClientCert
			srv.TLS.ClientCAs = pool
		}
		srv.Config.ErrorLog = discardLog
		srv.StartTLS()
		t.Cleanup(srv.Close)
		return srv.Listener.Addr().String()
	}
	writeDir := func(t *testing.T, files map[string][]byte) string {
		dir := t.TempDir()
		for name, data := range files {
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	caOnly := map[string][]byte{"ca.crt": pki.caPEM}
	withClient := map[string][]byte{"ca.crt": pki.caPEM, "client.cert": clientCert, "client.key": clientKey}

	for _, tc := range []struct {
		name          string
		requireClient bool
		files         map[string][]byte
		insecure      bool
		ok            bool
	}{
		{"unknown CA", false, nil, false, false},
		{"CA from dir", false, caOnly, false, true},
		{"insecure skips verification", false, nil, true, true},
		{"client certificate", true, withClient, false, true},
		{"client certificate missing", true, caOnly, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := startServer(t, tc.requireClient)
			hc := HostConfig{Insecure: tc.insecure}
			if tc.files != nil {
				hc.CADir = writeDir(t, tc.files)
			}
			c := testClient(t, Options{
				Transport: dialTo(addr, nil),
				Hosts:     func(string) HostConfig { return hc },
			})
			// Were certificate failures retried, this would take seconds.
			c.minBackoff, c.maxBackoff = 2*time.Second, 2*time.Second
			start := time.Now()
			err := c.Ping(context.Background(), "registry.test", "", "")
			if tc.ok && err != nil {
				t.Fatal(err)
			}
			if !tc.ok && err == nil {
				t.Fatal("Ping succeeded")
			}
			if d := time.Since(start); d > time.Second {
				t.Fatalf("took %s: a TLS failure was retried", d)
			}
		})
	}
}

func TestCertsDirErrors(t *testing.T) {
	for name, files := range map[string]map[string]string{
		"bad CA":             {"ca.crt": "not pem"},
		"key without cert":   {"client.key": "x"},
		"cert without key":   {"client.cert": "x"},
		"missing directory/": nil,
	} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "certs")
			if files != nil {
				if err := os.Mkdir(dir, 0o700); err != nil {
					t.Fatal(err)
				}
				for n, data := range files {
					if err := os.WriteFile(filepath.Join(dir, n), []byte(data), 0o600); err != nil {
						t.Fatal(err)
					}
				}
			}
			// Requests, were any made, go to a closed local port.
			c := New(Options{
				Transport: dialTo(freeAddr(t), nil),
				Hosts:     func(string) HostConfig { return HostConfig{CADir: dir} },
				Retries:   -1,
			})
			if err := c.Ping(context.Background(), "registry.test", "", ""); err == nil || !strings.Contains(err.Error(), "registry.test") {
				t.Fatalf("Ping = %v, want a certificate configuration error", err)
			}
		})
	}
}

func TestInsecureFallsBackToHTTP(t *testing.T) {
	srv := httptest.NewServer(pingHandler)
	srv.Config.ErrorLog = discardLog
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()

	// A secure host is only reached over HTTPS.
	var dials atomic.Int32
	secure := testClient(t, Options{Transport: dialTo(addr, &dials)})
	secure.minBackoff, secure.maxBackoff = 2*time.Second, 2*time.Second
	start := time.Now()
	err := secure.Ping(context.Background(), "registry.test", "", "")
	if err == nil || !strings.Contains(err.Error(), "https://registry.test/v2/") {
		t.Fatalf("Ping of a secure host over plain HTTP = %v, want an HTTPS failure", err)
	}
	if dials.Load() != 1 || time.Since(start) > time.Second {
		t.Fatalf("%d dials in %s: the failure was retried or fell back", dials.Load(), time.Since(start))
	}

	// An insecure one falls back to HTTP, and remembers it.
	var logs syncList[string]
	insecure := testClient(t, Options{
		Transport: dialTo(addr, nil),
		Hosts:     func(string) HostConfig { return HostConfig{Insecure: true} },
		Logf:      func(format string, args ...any) { logs.add(fmt.Sprintf(format, args...)) },
	})
	for range 3 {
		if err := insecure.Ping(context.Background(), "registry.test", "", ""); err != nil {
			t.Fatal(err)
		}
	}
	if got := logs.get(); len(got) != 1 || !strings.Contains(got[0], "trying http") {
		t.Fatalf("logs %q, want one fallback to http", got)
	}
}
