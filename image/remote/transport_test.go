package remote

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// countingServer answers with respond(n) for the n-th request (from 1).
func countingServer(t *testing.T, respond func(n int32, w http.ResponseWriter, r *http.Request)) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		respond(n.Add(1), w, r)
	}))
	srv.Config.ErrorLog = discardLog
	t.Cleanup(srv.Close)
	return srv, &n
}

func hostOf(srv *httptest.Server) string { return strings.TrimPrefix(srv.URL, "http://") }

func TestRetries(t *testing.T) {
	tags := func(w http.ResponseWriter) { w.Write([]byte(`{"name":"app","tags":["v1"]}`)) }
	for _, tc := range []struct {
		name      string
		respond   func(n int32, w http.ResponseWriter, r *http.Request)
		retries   int
		wantCalls int32
		wantErr   bool
		status    int // of the final error
	}{
		{"503 then success", func(n int32, w http.ResponseWriter, r *http.Request) {
			if n <= 2 {
				writeRegistryError(w, http.StatusServiceUnavailable, "UNAVAILABLE", "busy")
				return
			}
			tags(w)
		}, 0, 3, false, 0},
		{"502 and 504 retried", func(n int32, w http.ResponseWriter, r *http.Request) {
			switch n {
			case 1:
				w.WriteHeader(http.StatusBadGateway)
			case 2:
				w.WriteHeader(http.StatusGatewayTimeout)
			default:
				tags(w)
			}
		}, 0, 3, false, 0},
		{"400 not retried", func(n int32, w http.ResponseWriter, r *http.Request) {
			writeRegistryError(w, http.StatusBadRequest, "NAME_INVALID", "bad")
		}, 0, 1, true, http.StatusBadRequest},
		{"403 not retried", func(n int32, w http.ResponseWriter, r *http.Request) {
			writeRegistryError(w, http.StatusForbidden, "DENIED", "no")
		}, 0, 1, true, http.StatusForbidden},
		{"retries exhausted", func(n int32, w http.ResponseWriter, r *http.Request) {
			writeRegistryError(w, http.StatusServiceUnavailable, "UNAVAILABLE", "busy")
		}, 2, 3, true, http.StatusServiceUnavailable},
		{"retries disabled", func(n int32, w http.ResponseWriter, r *http.Request) {
			writeRegistryError(w, http.StatusServiceUnavailable, "UNAVAILABLE", "busy")
		}, -1, 1, true, http.StatusServiceUnavailable},
		{"connection dropped then success", func(n int32, w http.ResponseWriter, r *http.Request) {
			if n <= 2 {
				conn, _, err := w.(http.Hijacker).Hijack()
				if err == nil {
					conn.Close()
				}
				return
			}
			tags(w)
		}, 0, 3, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, calls := countingServer(t, tc.respond)
			c := testClient(t, Options{Retries: tc.retries})
			start := time.Now()
			got, err := c.Tags(context.Background(), mustRef(t, hostOf(srv)+"/app"))
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("took %s", d)
			}
			if calls.Load() != tc.wantCalls {
				t.Fatalf("%d requests, want %d", calls.Load(), tc.wantCalls)
			}
			if !tc.wantErr {
				if err != nil || len(got) != 1 {
					t.Fatalf("Tags = %v, %v", got, err)
				}
				return
			}
			var re *ResponseError
			if !errors.As(err, &re) || re.StatusCode != tc.status {
				t.Fatalf("error %v, want status %d", err, tc.status)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	srv, calls := countingServer(t, func(n int32, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			writeRegistryError(w, http.StatusTooManyRequests, "TOOMANYREQUESTS", "slow down")
			return
		}
		w.Write([]byte(`{"tags":["v1"]}`))
	})
	c := testClient(t, Options{})
	start := time.Now()
	if _, err := c.Tags(context.Background(), mustRef(t, hostOf(srv)+"/app")); err != nil {
		t.Fatal(err)
	}
	d := time.Since(start)
	if calls.Load() != 2 || d < 900*time.Millisecond || d > 5*time.Second {
		t.Fatalf("%d requests in %s, want 2 about a second apart", calls.Load(), d)
	}
}

func TestRetryAfterCapped(t *testing.T) {
	srv, _ := countingServer(t, func(n int32, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			w.Header().Set("Retry-After", "3600")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte(`{"tags":[]}`))
	})
	c := testClient(t, Options{})
	c.maxRetryAfter = 50 * time.Millisecond
	start := time.Now()
	if _, err := c.Tags(context.Background(), mustRef(t, hostOf(srv)+"/app")); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %s: Retry-After not capped", d)
	}
}

func TestContextCancel(t *testing.T) {
	t.Run("during a request", func(t *testing.T) {
		srv, _ := countingServer(t, func(n int32, w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done() // never answers
		})
		c := testClient(t, Options{})
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := c.Resolve(ctx, mustRef(t, hostOf(srv)+"/app"))
		errorsIs(t, err, context.DeadlineExceeded)
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("returned after %s", d)
		}
	})
	t.Run("during backoff", func(t *testing.T) {
		srv, calls := countingServer(t, func(n int32, w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(http.StatusTooManyRequests)
		})
		c := testClient(t, Options{})
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(200*time.Millisecond, cancel)
		start := time.Now()
		_, err := c.Tags(ctx, mustRef(t, hostOf(srv)+"/app"))
		errorsIs(t, err, context.Canceled)
		if d := time.Since(start); d > 3*time.Second || calls.Load() != 1 {
			t.Fatalf("%d requests, returned after %s", calls.Load(), d)
		}
	})
	t.Run("while reading a blob", func(t *testing.T) {
		srv, _ := countingServer(t, func(n int32, w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "1000")
			w.Write([]byte("partial"))
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		})
		c := testClient(t, Options{})
		ctx, cancel := context.WithCancel(context.Background())
		desc := ocispec.Descriptor{Digest: digest.FromString("x"), Size: 1000}
		rc, err := c.FetchBlob(ctx, mustRef(t, hostOf(srv)+"/app"), desc, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		buf := make([]byte, 7)
		if _, err := rc.Read(buf); err != nil {
			t.Fatal(err)
		}
		time.AfterFunc(100*time.Millisecond, cancel)
		done := make(chan error, 1)
		go func() {
			_, err := rc.Read(make([]byte, 100))
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil {
				t.Fatal("read succeeded after cancel")
			}
		case <-time.After(3 * time.Second):
			t.Fatal("blob read not interrupted by cancel")
		}
	})
}

func TestBackoffBounds(t *testing.T) {
	c := New(Options{})
	c.minBackoff, c.maxBackoff = 100*time.Millisecond, time.Second
	for attempt, want := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		want *= time.Millisecond
		for range 20 {
			d := c.backoff(attempt)
			if d < want/2 || d > want {
				t.Fatalf("backoff(%d) = %s, want in [%s, %s]", attempt, d, want/2, want)
			}
		}
	}
}
