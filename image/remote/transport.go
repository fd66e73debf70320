package remote

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// request is one API call, rebuilt for every attempt.
type request struct {
	method string
	// path is relative to the endpoint ("/v2/REPO/manifests/TAG"), or url
	// is absolute (an upload Location, a Link): exactly one is set.
	path string
	url  *url.URL
	// query is added to the URL's own.
	query  url.Values
	header http.Header
	// body opens the request body afresh for every attempt (nil: none);
	// size is its length, -1 when unknown.
	body func() (io.ReadCloser, error)
	size int64
	// scopes the request needs from a token server.
	scopes []string
}

// retryPolicy says what exchange retries.
type retryPolicy struct {
	conn   bool // connection errors
	status bool // 429, 502, 503, 504
}

// send performs r against ep: it tries ep's schemes, authenticates on a 401
// challenge and retries transient failures. It returns the response when
// its status is below 400 and a *ResponseError otherwise.
func (c *Client) send(ctx context.Context, ep *endpoint, r *request) (*http.Response, error) {
	scopes := r.scopes
	for authRetried := false; ; authRetried = true {
		resp, err := c.sendSchemes(ctx, ep, r, scopes)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode == http.StatusUnauthorized && !authRetried && (r.url == nil || r.url.Host == ep.host) {
			retryScopes, ok := c.handleChallenge(ctx, ep, resp, scopes)
			if ok {
				drain(resp)
				scopes = retryScopes
				continue
			}
		}
		if resp.StatusCode >= 400 {
			return nil, newResponseError(ep.registry, resp)
		}
		return resp, nil
	}
}

// sendSchemes performs r with each of ep's schemes in turn until one gets
// an HTTP response (insecure hosts: HTTPS, then plain HTTP).
func (c *Client) sendSchemes(ctx context.Context, ep *endpoint, r *request, scopes []string) (*http.Response, error) {
	schemes := c.preferredSchemes(ep)
	if r.url != nil {
		schemes = []string{r.url.Scheme}
	}
	for i, scheme := range schemes {
		last := i == len(schemes)-1
		// A mirror is not worth waiting for: the next endpoint is tried.
		policy := retryPolicy{conn: last && !ep.mirror, status: !ep.mirror}
		resp, err := c.exchange(ctx, ep.client, policy, func() (*http.Request, error) {
			return c.newRequest(ctx, ep, scheme, r, scopes)
		})
		if err == nil {
			if r.url == nil {
				c.rememberScheme(ep, scheme)
			}
			return resp, nil
		}
		if last || ctx.Err() != nil || !isTransportError(err) {
			return nil, err
		}
		c.logf("%s: %v; trying %s", ep.host, err, schemes[i+1])
	}
	panic("unreachable: an endpoint has at least one scheme")
}

// newRequest builds the HTTP request of one attempt, with credentials for
// ep's host.
func (c *Client) newRequest(ctx context.Context, ep *endpoint, scheme string, r *request, scopes []string) (*http.Request, error) {
	var u url.URL
	if r.url != nil {
		u = *r.url
	} else {
		u = url.URL{Scheme: scheme, Host: ep.host, Path: ep.prefix + r.path}
	}
	if len(r.query) > 0 {
		q := u.Query()
		for k, vs := range r.query {
			for _, v := range vs {
				q.Add(k, v)
			}
		}
		u.RawQuery = q.Encode()
	}
	var body io.ReadCloser
	if r.body != nil {
		b, err := r.body()
		if err != nil {
			return nil, err
		}
		body = b
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), body)
	if err != nil {
		if body != nil {
			body.Close()
		}
		return nil, err
	}
	if r.body != nil {
		req.GetBody = r.body // replayed on 307/308 redirects
		req.ContentLength = r.size
		if r.size == 0 {
			body.Close()
			req.Body = http.NoBody
		}
	}
	for k, vs := range r.header {
		req.Header[k] = append([]string(nil), vs...)
	}
	req.Header.Set("User-Agent", c.userAgent)
	if u.Host == ep.host {
		if err := ep.auth.authorize(ctx, c, ep, scopes, req); err != nil {
			if body != nil {
				body.Close()
			}
			return nil, err
		}
	}
	return req, nil
}

// exchange sends the request build returns, retrying what policy allows
// with exponential backoff. It returns the last response whatever its
// status, or the last error.
func (c *Client) exchange(ctx context.Context, client *http.Client, policy retryPolicy, build func() (*http.Request, error)) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		req, err := build()
		if err != nil {
			return nil, err
		}
		resp, err := client.Do(req)
		var wait time.Duration
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return nil, fmt.Errorf("%s %s: %w", req.Method, redactURL(req.URL), ctx.Err())
			}
			if !policy.conn || attempt >= c.retries || !retryableError(err) {
				return nil, err
			}
			wait = c.backoff(attempt)
			c.logf("%s %s: %v; retrying in %s", req.Method, redactURL(req.URL), err, wait.Round(time.Millisecond))
		case policy.status && attempt < c.retries && retryableStatus(resp.StatusCode):
			wait = c.backoff(attempt)
			if ra, ok := c.retryAfter(resp); ok {
				wait = ra
			}
			c.logf("%s %s: %s; retrying in %s", req.Method, redactURL(req.URL), resp.Status, wait.Round(time.Millisecond))
			drain(resp)
		default:
			return resp, nil
		}
		if err := sleep(ctx, wait); err != nil {
			return nil, fmt.Errorf("%s %s: %w", req.Method, redactURL(req.URL), err)
		}
	}
}

// retryableStatus reports whether a status is transient.
func retryableStatus(code int) bool {
	switch code {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// retryableError reports whether a transport error may go away: not
// certificate problems, TLS alerts from the server (e.g. a client
// certificate is required), a plain HTTP server on an HTTPS request,
// unknown host names or redirect loops.
func retryableError(err error) bool {
	var (
		recordErr   tls.RecordHeaderError
		verifyErr   *tls.CertificateVerificationError
		unknownCA   x509.UnknownAuthorityError
		hostnameErr x509.HostnameError
		invalidErr  x509.CertificateInvalidError
		dnsErr      *net.DNSError
		opErr       *net.OpError
	)
	switch {
	case errors.As(err, &recordErr), errors.As(err, &verifyErr), errors.As(err, &unknownCA),
		errors.As(err, &hostnameErr), errors.As(err, &invalidErr), errors.Is(err, errTooManyRedirects):
		return false
	case errors.As(err, &dnsErr):
		return !dnsErr.IsNotFound
	case errors.As(err, &opErr) && opErr.Op == "remote error":
		// crypto/tls reports a received alert this way.
		return false
	case strings.Contains(err.Error(), errHTTPResponseToHTTPS):
		return false
	}
	return true
}

// errHTTPResponseToHTTPS is net/http's (unwrapped, untyped) error for a
// plain HTTP answer to a TLS handshake.
const errHTTPResponseToHTTPS = "server gave HTTP response to HTTPS client"

// isTransportError reports whether err came from the HTTP transport (no
// response), as opposed to a response or a local failure.
func isTransportError(err error) bool {
	var ue *url.Error
	return errors.As(err, &ue)
}

// backoff returns the wait before retry attempt+1: minBackoff doubled per
// attempt, capped at maxBackoff, with the upper half jittered.
func (c *Client) backoff(attempt int) time.Duration {
	d := c.minBackoff
	for i := 0; i < attempt && d < c.maxBackoff; i++ {
		d *= 2
	}
	d = min(d, c.maxBackoff)
	half := d / 2
	return half + rand.N(half+1)
}

// retryAfter returns the wait a 429 or 503 response asks for, capped at
// maxRetryAfter.
func (c *Client) retryAfter(resp *http.Response) (time.Duration, bool) {
	v := resp.Header.Get("Retry-After")
	if v == "" {
		return 0, false
	}
	var d time.Duration
	if secs, err := strconv.Atoi(v); err == nil {
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = time.Until(t)
	} else {
		return 0, false
	}
	return max(0, min(d, c.maxRetryAfter)), true
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// drain reads a little of a response body, so the connection can be
// reused, and closes it.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}
