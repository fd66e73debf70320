package remote

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
)

func TestParseChallenges(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want []challenge
	}{
		{
			[]string{`Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"`},
			[]challenge{{"bearer", map[string]string{
				"realm": "https://auth.docker.io/token", "service": "registry.docker.io", "scope": "repository:library/busybox:pull",
			}}},
		},
		{
			[]string{`Basic realm="Registry Realm"`},
			[]challenge{{"basic", map[string]string{"realm": "Registry Realm"}}},
		},
		{
			// Two challenges in one value, unquoted and escaped values.
			[]string{`Basic realm=simple, BEARER Realm="https://a/t\"x", service=svc`},
			[]challenge{
				{"basic", map[string]string{"realm": "simple"}},
				{"bearer", map[string]string{"realm": `https://a/t"x`, "service": "svc"}},
			},
		},
		{
			[]string{`Bearer realm="r1"`, `Basic`},
			[]challenge{{"bearer", map[string]string{"realm": "r1"}}, {"basic", map[string]string{}}},
		},
		{[]string{""}, nil},
	} {
		got := parseChallenges(tc.in)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseChallenges(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestMergeScopes(t *testing.T) {
	got := mergeScopes(
		[]string{"repository:b:push", "repository:a:pull"},
		[]string{"repository:b:pull", "repository:a:pull", "registry:catalog:*"},
	)
	want := []string{"registry:catalog:*", "repository:a:pull", "repository:b:pull,push"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("mergeScopes = %v, want %v", got, want)
	}
	if scopeKey([]string{"repository:a:push,pull"}) != scopeKey([]string{"repository:a:pull", "repository:a:push"}) {
		t.Fatal("equal scope sets have different keys")
	}
}

func TestBasicAuth(t *testing.T) {
	reg := newTestRegistry(t, basicAuth("alice", "secret"))
	img := newTestImage(t)
	ctx := context.Background()
	var lookups atomic.Int32
	creds := func(user, pass string) func(context.Context, string) (string, string, error) {
		return func(_ context.Context, host string) (string, string, error) {
			lookups.Add(1)
			if host != reg.host {
				t.Errorf("credentials asked for %q, want %q", host, reg.host)
			}
			return user, pass, nil
		}
	}
	c := testClient(t, Options{Credentials: creds("alice", "secret")})
	ref := reg.ref(t, "app:v1")
	for _, b := range [][]byte{img.config, img.layer} {
		if _, err := c.PushBlob(ctx, ref, blobDesc(b), opener(b), nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.PushManifest(ctx, ref, img.manifestDesc.MediaType, img.manifest); err != nil {
		t.Fatal(err)
	}
	desc, err := c.Resolve(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.FetchManifest(ctx, ref, desc); err != nil {
		t.Fatal(err)
	}
	// Only the first request went out anonymously; credentials were looked
	// up once.
	if n := reg.rec.count("", "/v2/"); n == 0 {
		t.Fatal("no requests")
	}
	anonymous := 0
	for _, r := range reg.rec.all() {
		if r.Header.Get("Authorization") == "" {
			anonymous++
		}
	}
	// (The HTTPS probe never reaches the handler of a plain HTTP server.)
	if anonymous != 1 {
		t.Fatalf("%d anonymous requests, want 1", anonymous)
	}
	if lookups.Load() != 1 {
		t.Fatalf("credentials looked up %d times, want 1", lookups.Load())
	}

	for name, opts := range map[string]Options{
		"wrong password": {Credentials: creds("alice", "wrong")},
		"anonymous":      {},
	} {
		t.Run(name, func(t *testing.T) {
			c := testClient(t, opts)
			_, err := c.Resolve(ctx, ref)
			errorsIs(t, err, ErrUnauthorized)
			if !strings.Contains(err.Error(), "berth login "+reg.host) {
				t.Fatalf("error %q does not say how to log in", err)
			}
		})
	}
}

func TestPingBasic(t *testing.T) {
	reg := newTestRegistry(t, basicAuth("alice", "secret"))
	c := testClient(t, Options{})
	ctx := context.Background()
	if err := c.Ping(ctx, reg.host, "alice", "secret"); err != nil {
		t.Fatal(err)
	}
	errorsIs(t, c.Ping(ctx, reg.host, "alice", "wrong"), ErrUnauthorized)
	errorsIs(t, c.Ping(ctx, reg.host, "", ""), ErrUnauthorized)
	// A registry without authentication accepts any login.
	open := newTestRegistry(t)
	if err := c.Ping(ctx, open.host, "anyone", "anything"); err != nil {
		t.Fatal(err)
	}
}

func TestTokenAuth(t *testing.T) {
	for _, useAccessToken := range []bool{false, true} {
		name := "token"
		if useAccessToken {
			name = "access_token"
		}
		t.Run(name, func(t *testing.T) {
			ts := newTokenServer(t, func(user, repo string) []string {
				switch {
				case user == "alice":
					return []string{"pull", "push"}
				case strings.HasPrefix(repo, "public/"):
					return []string{"pull"}
				}
				return nil
			})
			ts.users["alice"] = "secret"
			ts.useAccessToken = useAccessToken
			reg := newTestRegistry(t, ts.guard)
			ctx := context.Background()
			img := newTestImage(t)
			alice := testClient(t, Options{Credentials: func(context.Context, string) (string, string, error) {
				return "alice", "secret", nil
			}})
			ref := reg.ref(t, "public/app:v1")
			for _, b := range [][]byte{img.config, img.layer} {
				if _, err := alice.PushBlob(ctx, ref, blobDesc(b), opener(b), nil); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := alice.PushManifest(ctx, ref, img.manifestDesc.MediaType, img.manifest); err != nil {
				t.Fatal(err)
			}
			// One token for pull,push: pushes of several blobs and the
			// manifest share it.
			if n := ts.requestCount(); n != 1 {
				t.Fatalf("%d token requests for one push, want 1", n)
			}
			q := ts.lastRequest()
			if q.Get("service") != ts.service || q.Get("scope") != "repository:public/app:pull,push" || q.Get("account") != "alice" {
				t.Fatalf("token request %v", q)
			}

			// Anonymous pulls of the public repository get an anonymous
			// token; the pull scope is fetched once.
			anon := testClient(t, Options{})
			desc, err := anon.Resolve(ctx, ref)
			if err != nil {
				t.Fatal(err)
			}
			data, err := anon.FetchManifest(ctx, ref, desc)
			if err != nil || !bytes.Equal(data, img.manifest) {
				t.Fatalf("FetchManifest = %v", err)
			}
			rc, err := anon.FetchBlob(ctx, ref, img.layerDesc, 0)
			if err != nil {
				t.Fatal(err)
			}
			readAllClose(t, rc)
			if n := ts.requestCount(); n != 2 {
				t.Fatalf("%d token requests after an anonymous pull, want 2", n)
			}
			// Anonymous pushes are refused, with the login hint.
			_, err = anon.PushManifest(ctx, reg.ref(t, "public/app:v2"), img.manifestDesc.MediaType, img.manifest)
			errorsIs(t, err, ErrUnauthorized)
			if !strings.Contains(err.Error(), "berth login") {
				t.Fatalf("error %q lacks the login hint", err)
			}
			// Private repositories too.
			_, err = anon.Resolve(ctx, reg.ref(t, "private/app:v1"))
			errorsIs(t, err, ErrUnauthorized)

			// Revoked tokens are replaced on the next 401.
			ts.revoke()
			before := ts.requestCount()
			if _, err := alice.Resolve(ctx, ref); err != nil {
				t.Fatal(err)
			}
			if ts.requestCount() != before+1 {
				t.Fatal("no new token after revocation")
			}
		})
	}
}

func TestTokenServerRejectsCredentials(t *testing.T) {
	ts := newTokenServer(t, func(string, string) []string { return []string{"pull"} })
	ts.users["alice"] = "secret"
	reg := newTestRegistry(t, ts.guard)
	c := testClient(t, Options{Credentials: func(context.Context, string) (string, string, error) {
		return "alice", "wrong", nil
	}})
	_, err := c.Resolve(context.Background(), reg.ref(t, "app"))
	errorsIs(t, err, ErrUnauthorized)
	var re *ResponseError
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "incorrect username or password") {
		t.Fatalf("error %v lacks the token server's message", err)
	}
}

func TestPingToken(t *testing.T) {
	ts := newTokenServer(t, func(string, string) []string { return nil })
	ts.users["alice"] = "secret"
	reg := newTestRegistry(t, ts.guard)
	c := testClient(t, Options{})
	ctx := context.Background()
	if err := c.Ping(ctx, reg.host, "alice", "secret"); err != nil {
		t.Fatal(err)
	}
	if q := ts.lastRequest(); q.Has("scope") || q.Get("account") != "alice" {
		t.Fatalf("login token request %v", q)
	}
	errorsIs(t, c.Ping(ctx, reg.host, "alice", "wrong"), ErrUnauthorized)
	// Tokens of a Ping are not reused: a second Ping asks again.
	before := ts.requestCount()
	if err := c.Ping(ctx, reg.host, "alice", "secret"); err != nil {
		t.Fatal(err)
	}
	if ts.requestCount() != before+1 {
		t.Fatal("Ping reused a token")
	}
}

func TestIdentityToken(t *testing.T) {
	ts := newTokenServer(t, func(user, _ string) []string {
		if user == "alice" {
			return []string{"pull", "push"}
		}
		return nil
	})
	ts.refresh["refresh-123"] = "alice"
	reg := newTestRegistry(t, ts.guard)
	c := testClient(t, Options{Credentials: func(context.Context, string) (string, string, error) {
		return "", "refresh-123", nil
	}})
	data := randomBytes(t, 10)
	if _, err := c.PushBlob(context.Background(), reg.ref(t, "app"), blobDesc(data), opener(data), nil); err != nil {
		t.Fatal(err)
	}
	ts.mu.Lock()
	method := ts.methods[0]
	ts.mu.Unlock()
	q := ts.lastRequest()
	if method != http.MethodPost || q.Get("grant_type") != "refresh_token" || q.Get("scope") != "repository:app:pull,push" {
		t.Fatalf("token request %s %v, want the OAuth2 refresh grant", method, q)
	}
}

func TestCredentialLookupFailureIsAnonymous(t *testing.T) {
	reg := newTestRegistry(t)
	img := newTestImage(t)
	seed(t, reg.srv.URL, "app", "latest", img)
	var logged atomic.Bool
	c := testClient(t, Options{
		Credentials: func(context.Context, string) (string, string, error) {
			return "", "", errors.New("helper missing")
		},
		Logf: func(format string, args ...any) { logged.Store(true) },
	})
	// The registry is open: no challenge, no lookup needed.
	if _, err := c.Resolve(context.Background(), reg.ref(t, "app")); err != nil {
		t.Fatal(err)
	}
	ts := newTokenServer(t, func(string, string) []string { return []string{"pull"} })
	guarded := newTestRegistry(t, ts.guard)
	if _, err := c.Resolve(context.Background(), guarded.ref(t, "app")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Resolve with a failing credential lookup = %v, want an anonymous request (ErrNotFound)", err)
	}
	if !logged.Load() {
		t.Fatal("credential lookup failure not logged")
	}
}
