package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-engine/berth/image/reference"
)

// PushBlob uploads the blob desc describes to ref's repository, unless the
// registry has it already or can mount it from one of the mountFrom
// repositories of the same registry; existed is true in those two cases.
// open returns the blob's content and is called again for every attempt.
// Blobs up to 64 MiB are uploaded with one PUT, larger ones in PATCH
// chunks. A failed upload is not resumed: the caller retries PushBlob.
func (c *Client) PushBlob(ctx context.Context, ref reference.Ref, desc ocispec.Descriptor, open func() (io.ReadCloser, error), mountFrom []string) (existed bool, err error) {
	existed, err = c.pushBlob(ctx, ref, desc, open, mountFrom)
	if err != nil {
		return false, fmt.Errorf("push blob %s@%s: %w", ref.Repository(), desc.Digest, err)
	}
	return existed, nil
}

func (c *Client) pushBlob(ctx context.Context, ref reference.Ref, desc ocispec.Descriptor, open func() (io.ReadCloser, error), mountFrom []string) (bool, error) {
	repo, err := repository(ref)
	if err != nil {
		return false, err
	}
	if err := desc.Digest.Validate(); err != nil {
		return false, err
	}
	if desc.Size < 0 {
		return false, fmt.Errorf("negative blob size %d", desc.Size)
	}
	ep, err := c.upstream(ref.Domain())
	if err != nil {
		return false, err
	}
	scopes := []string{pushScope(repo)}
	if ok, err := c.blobExistsAt(ctx, ep, repo, desc.Digest, scopes); err != nil || ok {
		return ok, err
	}
	location, mounted, err := c.startUpload(ctx, ep, repo, desc.Digest, mountFrom, scopes)
	if err != nil || mounted {
		return mounted, err
	}
	if desc.Size <= c.chunkThreshold {
		err = c.uploadMonolithic(ctx, ep, location, desc, open, scopes)
	} else {
		err = c.uploadChunked(ctx, ep, location, desc, open, scopes)
	}
	return false, err
}

// startUpload tries to mount the blob from each mountFrom repository and
// otherwise opens an upload session; it returns the session's location, or
// mounted when a mount succeeded.
func (c *Client) startUpload(ctx context.Context, ep *endpoint, repo string, dgst digest.Digest, mountFrom []string, scopes []string) (*url.URL, bool, error) {
	path := "/v2/" + repo + "/blobs/uploads/"
	var froms []string
	for _, from := range mountFrom {
		if from != "" && from != repo && !slices.Contains(froms, from) {
			froms = append(froms, from)
		}
	}
	for i, from := range froms {
		resp, err := c.send(ctx, ep, &request{
			method: http.MethodPost,
			path:   path,
			query:  url.Values{"mount": {dgst.String()}, "from": {from}},
			scopes: mergeScopes(scopes, []string{pullScope(from)}),
		})
		if err != nil {
			if ctx.Err() != nil {
				return nil, false, err
			}
			c.logf("mount %s from %s into %s: %v", dgst, from, repo, err)
			continue
		}
		if resp.StatusCode == http.StatusCreated {
			drain(resp)
			return nil, true, nil
		}
		// 202: no mount, the registry opened an upload session instead.
		loc, err := uploadLocation(resp)
		drain(resp)
		if err != nil {
			c.logf("mount %s from %s into %s: %v", dgst, from, repo, err)
			continue
		}
		if i == len(froms)-1 {
			return loc, false, nil
		}
		c.cancelUpload(ctx, ep, loc, scopes)
	}
	resp, err := c.send(ctx, ep, &request{method: http.MethodPost, path: path, scopes: scopes})
	if err != nil {
		return nil, false, fmt.Errorf("start upload: %w", err)
	}
	defer drain(resp)
	loc, err := uploadLocation(resp)
	if err != nil {
		return nil, false, fmt.Errorf("start upload: %w", err)
	}
	return loc, false, nil
}

// cancelUpload abandons an upload session, best effort.
func (c *Client) cancelUpload(ctx context.Context, ep *endpoint, loc *url.URL, scopes []string) {
	resp, err := c.send(ctx, ep, &request{method: http.MethodDelete, url: loc, scopes: scopes})
	if err != nil {
		c.logf("cancel upload %s: %v", redactURL(loc), err)
		return
	}
	drain(resp)
}

// uploadMonolithic sends the whole blob with the closing PUT.
func (c *Client) uploadMonolithic(ctx context.Context, ep *endpoint, loc *url.URL, desc ocispec.Descriptor, open func() (io.ReadCloser, error), scopes []string) error {
	resp, err := c.send(ctx, ep, &request{
		method: http.MethodPut,
		url:    loc,
		query:  url.Values{"digest": {desc.Digest.String()}},
		header: http.Header{"Content-Type": {"application/octet-stream"}},
		body:   open,
		size:   desc.Size,
		scopes: scopes,
	})
	if err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	defer drain(resp)
	return checkDigestHeader(resp, desc.Digest)
}

// uploadChunked sends the blob in chunkSize PATCH requests with
// Content-Range, then closes the session with an empty PUT.
func (c *Client) uploadChunked(ctx context.Context, ep *endpoint, loc *url.URL, desc ocispec.Descriptor, open func() (io.ReadCloser, error), scopes []string) error {
	src := &chunkSource{open: open}
	defer src.close()
	for offset := int64(0); offset < desc.Size; {
		start, n := offset, min(c.chunkSize, desc.Size-offset)
		end := start + n - 1
		resp, err := c.send(ctx, ep, &request{
			method: http.MethodPatch,
			url:    loc,
			header: http.Header{
				"Content-Type":  {"application/octet-stream"},
				"Content-Range": {fmt.Sprintf("%d-%d", start, end)},
			},
			body:   func() (io.ReadCloser, error) { return src.section(start, n) },
			size:   n,
			scopes: scopes,
		})
		if err != nil {
			return fmt.Errorf("upload bytes %d-%d: %w", start, end, err)
		}
		if got, ok := rangeEnd(resp.Header.Get("Range")); ok && got != end {
			drain(resp)
			return fmt.Errorf("upload bytes %d-%d: registry has bytes up to %d", start, end, got)
		}
		if resp.Header.Get("Location") != "" {
			next, err := uploadLocation(resp)
			if err != nil {
				drain(resp)
				return fmt.Errorf("upload bytes %d-%d: %w", start, end, err)
			}
			loc = next
		}
		drain(resp)
		offset += n
	}
	resp, err := c.send(ctx, ep, &request{
		method: http.MethodPut,
		url:    loc,
		query:  url.Values{"digest": {desc.Digest.String()}},
		scopes: scopes,
	})
	if err != nil {
		return fmt.Errorf("complete upload: %w", err)
	}
	defer drain(resp)
	return checkDigestHeader(resp, desc.Digest)
}

// uploadLocation returns the Location of an upload response, resolved
// against the request URL (it may be relative and carry a query).
func uploadLocation(resp *http.Response) (*url.URL, error) {
	loc := resp.Header.Get("Location")
	if loc == "" {
		return nil, fmt.Errorf("%s %s: registry sent no Location", resp.Request.Method, redactURL(resp.Request.URL))
	}
	u, err := url.Parse(loc)
	if err != nil {
		return nil, fmt.Errorf("%s %s: bad Location: %w", resp.Request.Method, redactURL(resp.Request.URL), err)
	}
	return resp.Request.URL.ResolveReference(u), nil
}

// rangeEnd returns the last byte position of an upload's Range header
// ("0-END", sometimes "bytes=0-END").
func rangeEnd(v string) (int64, bool) {
	v = strings.TrimPrefix(strings.TrimSpace(v), "bytes=")
	_, last, ok := strings.Cut(v, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(last, 10, 64)
	return n, err == nil
}

// checkDigestHeader fails when the registry reports a digest (of the same
// algorithm) other than want.
func checkDigestHeader(resp *http.Response, want digest.Digest) error {
	got, err := digest.Parse(resp.Header.Get("Docker-Content-Digest"))
	if err != nil || got.Algorithm() != want.Algorithm() || got == want {
		return nil
	}
	return fmt.Errorf("registry stored %s, want %s: %w", got, want, ErrDigestMismatch)
}

// chunkSource serves consecutive sections of a blob stream to PATCH
// requests. A retried section reopens the stream and skips to its start,
// and only the most recently handed out section may read, so a transport
// still holding an abandoned attempt's body cannot steal bytes.
type chunkSource struct {
	open func() (io.ReadCloser, error)

	mu     sync.Mutex
	rc     io.ReadCloser
	pos    int64 // bytes consumed from rc
	ticket int   // the section allowed to read
}

var errStaleSection = errors.New("upload section superseded by a retry")

// section returns a reader of the n bytes from start.
func (s *chunkSource) section(start, n int64) (io.ReadCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ticket++
	if s.rc == nil || s.pos != start {
		if s.rc != nil {
			s.rc.Close()
			s.rc = nil
		}
		rc, err := s.open()
		if err != nil {
			return nil, err
		}
		s.rc, s.pos = rc, 0
		if start > 0 {
			skipped, err := io.CopyN(io.Discard, rc, start)
			s.pos = skipped
			if err != nil {
				return nil, fmt.Errorf("skip to offset %d: %w", start, err)
			}
		}
	}
	return &sectionReader{src: s, ticket: s.ticket, left: n}, nil
}

func (s *chunkSource) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rc != nil {
		s.rc.Close()
		s.rc = nil
	}
}

type sectionReader struct {
	src    *chunkSource
	ticket int
	left   int64
}

func (r *sectionReader) Read(p []byte) (int, error) {
	s := r.src
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.ticket != s.ticket || s.rc == nil {
		return 0, errStaleSection
	}
	if r.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := s.rc.Read(p)
	s.pos += int64(n)
	r.left -= int64(n)
	if err == io.EOF && r.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// Close leaves the underlying stream open for the next section.
func (r *sectionReader) Close() error { return nil }

// PushManifest uploads a manifest or index to ref's repository, under its
// tag, or by digest when ref has only a digest (which data must match). It
// returns the manifest's digest: ref's digest algorithm, sha256 otherwise.
func (c *Client) PushManifest(ctx context.Context, ref reference.Ref, mediaType string, data []byte) (digest.Digest, error) {
	dgst, err := c.pushManifest(ctx, ref, mediaType, data)
	if err != nil {
		return "", fmt.Errorf("push manifest %s: %w", ref, err)
	}
	return dgst, nil
}

func (c *Client) pushManifest(ctx context.Context, ref reference.Ref, mediaType string, data []byte) (digest.Digest, error) {
	repo, err := repository(ref)
	if err != nil {
		return "", err
	}
	if mediaType == "" {
		return "", errors.New("no media type")
	}
	if len(data) > MaxManifestSize {
		return "", fmt.Errorf("manifest is %d bytes, more than %d: %w", len(data), MaxManifestSize, ErrManifestTooLarge)
	}
	target := ref.Tag()
	dgst := digest.SHA256.FromBytes(data)
	if want := ref.Digest(); want != "" {
		if err := want.Validate(); err != nil {
			return "", err
		}
		if dgst = want.Algorithm().FromBytes(data); dgst != want {
			return "", fmt.Errorf("content is %s, reference says %s: %w", dgst, want, ErrDigestMismatch)
		}
		if target == "" {
			target = want.String()
		}
	}
	ep, err := c.upstream(ref.Domain())
	if err != nil {
		return "", err
	}
	resp, err := c.send(ctx, ep, &request{
		method: http.MethodPut,
		path:   "/v2/" + repo + "/manifests/" + target,
		header: http.Header{"Content-Type": {mediaType}},
		body:   func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
		size:   int64(len(data)),
		scopes: []string{pushScope(repo)},
	})
	if err != nil {
		return "", err
	}
	defer drain(resp)
	if err := checkDigestHeader(resp, dgst); err != nil {
		return "", err
	}
	return dgst, nil
}

// Ping checks a login: it sends GET /v2/ to the registry host (never a
// mirror) and completes the authentication flow the registry asks for with
// user and secret (an empty user with a secret is an identity token). It
// fails with an error wrapping ErrUnauthorized when the credentials are
// rejected. A registry that needs no authentication accepts any.
func (c *Client) Ping(ctx context.Context, host string, user, secret string) error {
	ep, err := c.upstream(host)
	if err != nil {
		return fmt.Errorf("ping %s: %w", host, err)
	}
	// A private state: neither cached tokens nor stored credentials count.
	ep.auth = newAuthState()
	ep.creds = &credential{user: user, secret: secret}
	resp, err := c.send(ctx, ep, &request{method: http.MethodGet, path: "/v2/"})
	if err != nil {
		return fmt.Errorf("ping %s: %w", host, err)
	}
	drain(resp)
	return nil
}
