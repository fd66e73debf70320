package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	_ "crypto/sha256" // registers sha256 for go-digest
	_ "crypto/sha512" // registers sha512 for go-digest

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-engine/berth/image/manifest"
	"github.com/berth-engine/berth/image/reference"
)

// manifestMediaTypes are the documents a pull accepts, preferred first.
var manifestMediaTypes = []string{
	manifest.MediaTypeOCIIndex,
	manifest.MediaTypeOCIManifest,
	manifest.MediaTypeDockerManifestList,
	manifest.MediaTypeDockerManifest,
}

// maxTagsResponse bounds one page of a tag list.
const maxTagsResponse = 16 << 20

// maxTagPages bounds the pages of a tag list followed.
const maxTagPages = 10000

// Resolve returns the descriptor (media type, digest, size) of the manifest
// or index ref names, by tag or by digest. It asks with HEAD and falls back
// to GET when the registry's answer lacks the digest, size or media type.
// When ref has a digest, the registry's answer must agree with it. Schema 1
// manifests fail with an error wrapping manifest.ErrSchema1.
func (c *Client) Resolve(ctx context.Context, ref reference.Ref) (ocispec.Descriptor, error) {
	desc, err := c.resolve(ctx, ref)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("resolve %s: %w", ref, err)
	}
	return desc, nil
}

func (c *Client) resolve(ctx context.Context, ref reference.Ref) (ocispec.Descriptor, error) {
	repo, err := repository(ref)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	target, want := ref.Tag(), ref.Digest()
	if want != "" {
		if err := want.Validate(); err != nil {
			return ocispec.Descriptor{}, err
		}
		target = want.String()
	}
	eps, err := c.pullEndpoints(ref.Domain())
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return onEndpoints(ctx, c, eps, func(ep *endpoint) (ocispec.Descriptor, error) {
		return c.resolveAt(ctx, ep, repo, target, want)
	})
}

func (c *Client) resolveAt(ctx context.Context, ep *endpoint, repo, target string, want digest.Digest) (ocispec.Descriptor, error) {
	r := &request{
		method: http.MethodHead,
		path:   "/v2/" + repo + "/manifests/" + target,
		header: http.Header{"Accept": {acceptManifests("")}},
		scopes: []string{pullScope(repo)},
	}
	resp, err := c.send(ctx, ep, r)
	switch {
	case err == nil:
		desc, complete, err := descriptorFromHeaders(resp.Header, want)
		resp.Body.Close()
		if err != nil || complete {
			return desc, err
		}
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrUnauthorized), !isResponseError(err):
		return ocispec.Descriptor{}, err
	}
	// Some registries answer HEAD incompletely (or not at all): GET.
	r.method = http.MethodGet
	resp, err = c.send(ctx, ep, r)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	data, err := readManifest(resp)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	mediaType, err := detectMediaType(resp.Header.Get("Content-Type"), data)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	dgst := want
	if dgst == "" {
		dgst = digest.SHA256.FromBytes(data)
		if hd, err := digest.Parse(resp.Header.Get("Docker-Content-Digest")); err == nil && hd.Algorithm().Available() {
			dgst = hd.Algorithm().FromBytes(data)
			if dgst != hd {
				return ocispec.Descriptor{}, fmt.Errorf("manifest %s: registry says %s, content is %s: %w", target, hd, dgst, ErrDigestMismatch)
			}
		}
	} else if got := want.Algorithm().FromBytes(data); got != want {
		return ocispec.Descriptor{}, fmt.Errorf("manifest %s: content is %s: %w", want, got, ErrDigestMismatch)
	}
	return ocispec.Descriptor{MediaType: mediaType, Digest: dgst, Size: int64(len(data))}, nil
}

// descriptorFromHeaders reads a manifest descriptor from a HEAD response;
// complete is false when something is missing and a GET must tell.
func descriptorFromHeaders(h http.Header, want digest.Digest) (desc ocispec.Descriptor, complete bool, err error) {
	mediaType := mediaTypeOf(h.Get("Content-Type"))
	if isSchema1(mediaType) {
		return desc, false, manifest.ErrSchema1
	}
	dgst, err := digest.Parse(h.Get("Docker-Content-Digest"))
	if err != nil || !dgst.Algorithm().Available() {
		dgst = ""
	}
	if want != "" {
		if dgst != "" && dgst.Algorithm() == want.Algorithm() && dgst != want {
			return desc, false, fmt.Errorf("manifest %s: registry says %s: %w", want, dgst, ErrDigestMismatch)
		}
		dgst = want
	}
	size, err := strconv.ParseInt(h.Get("Content-Length"), 10, 64)
	if err != nil {
		size = 0
	}
	if size > MaxManifestSize {
		return desc, false, fmt.Errorf("manifest %s is %d bytes, more than %d: %w", dgst, size, MaxManifestSize, ErrManifestTooLarge)
	}
	desc = ocispec.Descriptor{MediaType: mediaType, Digest: dgst, Size: size}
	return desc, dgst != "" && size > 0 && isManifestMediaType(mediaType), nil
}

// FetchManifest returns the manifest or index desc describes (by digest,
// whatever ref's tag), verifying its size and digest (sha256 or sha512). A
// manifest larger than MaxManifestSize is refused.
func (c *Client) FetchManifest(ctx context.Context, ref reference.Ref, desc ocispec.Descriptor) ([]byte, error) {
	data, err := c.fetchManifest(ctx, ref, desc)
	if err != nil {
		return nil, fmt.Errorf("fetch manifest %s@%s: %w", ref.Repository(), desc.Digest, err)
	}
	return data, nil
}

func (c *Client) fetchManifest(ctx context.Context, ref reference.Ref, desc ocispec.Descriptor) ([]byte, error) {
	repo, err := repository(ref)
	if err != nil {
		return nil, err
	}
	if err := desc.Digest.Validate(); err != nil {
		return nil, err
	}
	if desc.Size > MaxManifestSize {
		return nil, fmt.Errorf("descriptor size %d is more than %d: %w", desc.Size, MaxManifestSize, ErrManifestTooLarge)
	}
	eps, err := c.pullEndpoints(ref.Domain())
	if err != nil {
		return nil, err
	}
	return onEndpoints(ctx, c, eps, func(ep *endpoint) ([]byte, error) {
		resp, err := c.send(ctx, ep, &request{
			method: http.MethodGet,
			path:   "/v2/" + repo + "/manifests/" + desc.Digest.String(),
			header: http.Header{"Accept": {acceptManifests(desc.MediaType)}},
			scopes: []string{pullScope(repo)},
		})
		if err != nil {
			return nil, err
		}
		data, err := readManifest(resp)
		if err != nil {
			return nil, err
		}
		if err := verifyContent(data, desc); err != nil {
			return nil, fmt.Errorf("from %s: %w", ep.base(), err)
		}
		return data, nil
	})
}

// FetchBlob returns the content of the blob desc describes from offset on
// (a Range request; when the registry ignores it the first offset bytes are
// skipped here). Redirects are followed, without the registry's
// credentials when they leave its host. When the registry does not have the
// blob and desc lists URLs (foreign, non-distributable layers), those are
// tried. The stream is not verified: the caller counts and hashes it (a
// content store's writer does both); a broken stream can be resumed by
// calling FetchBlob again with the offset reached.
func (c *Client) FetchBlob(ctx context.Context, ref reference.Ref, desc ocispec.Descriptor, offset int64) (io.ReadCloser, error) {
	rc, err := c.fetchBlob(ctx, ref, desc, offset)
	if err != nil {
		return nil, fmt.Errorf("fetch blob %s@%s: %w", ref.Repository(), desc.Digest, err)
	}
	return rc, nil
}

func (c *Client) fetchBlob(ctx context.Context, ref reference.Ref, desc ocispec.Descriptor, offset int64) (io.ReadCloser, error) {
	repo, err := repository(ref)
	if err != nil {
		return nil, err
	}
	if err := desc.Digest.Validate(); err != nil {
		return nil, err
	}
	if offset < 0 || (desc.Size > 0 && offset > desc.Size) {
		return nil, fmt.Errorf("offset %d outside the blob's %d bytes", offset, desc.Size)
	}
	if desc.Size > 0 && offset == desc.Size {
		return http.NoBody, nil
	}
	eps, err := c.pullEndpoints(ref.Domain())
	if err != nil {
		return nil, err
	}
	rc, err := onEndpoints(ctx, c, eps, func(ep *endpoint) (io.ReadCloser, error) {
		r := &request{
			method: http.MethodGet,
			path:   "/v2/" + repo + "/blobs/" + desc.Digest.String(),
			scopes: []string{pullScope(repo)},
		}
		if offset > 0 {
			r.header = http.Header{"Range": {rangeFrom(offset, desc.Size)}}
		}
		resp, err := c.send(ctx, ep, r)
		if err != nil {
			return nil, err
		}
		return bodyFrom(resp, offset)
	})
	if err != nil && errors.Is(err, ErrNotFound) && len(desc.URLs) > 0 {
		rc, uerr := c.fetchForeign(ctx, desc, offset)
		if uerr == nil {
			return rc, nil
		}
		return nil, fmt.Errorf("%w; from the layer's URLs: %w", err, uerr)
	}
	return rc, err
}

// fetchForeign fetches a blob from the URLs of its descriptor, without
// registry credentials.
func (c *Client) fetchForeign(ctx context.Context, desc ocispec.Descriptor, offset int64) (io.ReadCloser, error) {
	var errs []error
	for _, raw := range desc.URLs {
		rc, err := c.fetchURL(ctx, raw, offset, desc.Size)
		if err == nil {
			return rc, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

func (c *Client) fetchURL(ctx context.Context, raw string, offset, size int64) (io.ReadCloser, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("layer URL %q is not an http(s) URL", raw)
	}
	client, err := c.clientForURL(u)
	if err != nil {
		return nil, err
	}
	resp, err := c.exchange(ctx, client, retryPolicy{conn: true, status: true}, func() (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("User-Agent", c.userAgent)
		if offset > 0 {
			req.Header.Set("Range", rangeFrom(offset, size))
		}
		return req, nil
	})
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 400 {
		return nil, newResponseError(u.Host, resp)
	}
	return bodyFrom(resp, offset)
}

// rangeFrom returns the Range header asking for the bytes from offset on:
// a closed range when the size is known (some servers support no other).
func rangeFrom(offset, size int64) string {
	if size > offset {
		return fmt.Sprintf("bytes=%d-%d", offset, size-1)
	}
	return fmt.Sprintf("bytes=%d-", offset)
}

// bodyFrom returns resp's body positioned at offset: a 206 response must
// start there, a 200 response is the whole blob and is skipped forward.
func bodyFrom(resp *http.Response, offset int64) (io.ReadCloser, error) {
	switch resp.StatusCode {
	case http.StatusPartialContent:
		start, ok := contentRangeStart(resp.Header.Get("Content-Range"))
		if !ok || start != offset {
			resp.Body.Close()
			return nil, fmt.Errorf("asked for bytes from %d, got Content-Range %q", offset, resp.Header.Get("Content-Range"))
		}
		return resp.Body, nil
	case http.StatusOK:
		if offset > 0 {
			if _, err := io.CopyN(io.Discard, resp.Body, offset); err != nil {
				resp.Body.Close()
				return nil, fmt.Errorf("skip to offset %d of a response without range support: %w", offset, err)
			}
		}
		return resp.Body, nil
	}
	resp.Body.Close()
	return nil, fmt.Errorf("unexpected response %s", resp.Status)
}

// contentRangeStart returns the first byte position of a Content-Range
// value "bytes START-END/SIZE".
func contentRangeStart(v string) (int64, bool) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(v), "bytes ")
	if !ok {
		return 0, false
	}
	first, _, ok := strings.Cut(strings.TrimSpace(rest), "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(first, 10, 64)
	return n, err == nil && n >= 0
}

// BlobExists reports whether the registry itself (never a mirror) has the
// blob in ref's repository.
func (c *Client) BlobExists(ctx context.Context, ref reference.Ref, desc ocispec.Descriptor) (bool, error) {
	repo, err := repository(ref)
	if err != nil {
		return false, fmt.Errorf("check blob %s: %w", desc.Digest, err)
	}
	if err := desc.Digest.Validate(); err != nil {
		return false, fmt.Errorf("check blob %s: %w", desc.Digest, err)
	}
	ep, err := c.upstream(ref.Domain())
	if err != nil {
		return false, fmt.Errorf("check blob %s: %w", desc.Digest, err)
	}
	ok, err := c.blobExistsAt(ctx, ep, repo, desc.Digest, []string{pullScope(repo)})
	if err != nil {
		return false, fmt.Errorf("check blob %s@%s: %w", ref.Repository(), desc.Digest, err)
	}
	return ok, nil
}

func (c *Client) blobExistsAt(ctx context.Context, ep *endpoint, repo string, dgst digest.Digest, scopes []string) (bool, error) {
	resp, err := c.send(ctx, ep, &request{
		method: http.MethodHead,
		path:   "/v2/" + repo + "/blobs/" + dgst.String(),
		scopes: scopes,
	})
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	drain(resp)
	return true, nil
}

// Tags returns the tags of ref's repository, following the registry's
// pagination (Link headers).
func (c *Client) Tags(ctx context.Context, ref reference.Ref) ([]string, error) {
	tags, err := c.tags(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("list tags of %s: %w", ref.Repository(), err)
	}
	return tags, nil
}

func (c *Client) tags(ctx context.Context, ref reference.Ref) ([]string, error) {
	repo, err := repository(ref)
	if err != nil {
		return nil, err
	}
	eps, err := c.pullEndpoints(ref.Domain())
	if err != nil {
		return nil, err
	}
	return onEndpoints(ctx, c, eps, func(ep *endpoint) ([]string, error) {
		tags := []string{}
		r := &request{method: http.MethodGet, path: "/v2/" + repo + "/tags/list", scopes: []string{pullScope(repo)}}
		seen := map[string]bool{}
		for range maxTagPages {
			resp, err := c.send(ctx, ep, r)
			if err != nil {
				return nil, err
			}
			var page struct {
				Tags []string `json:"tags"`
			}
			err = json.NewDecoder(io.LimitReader(resp.Body, maxTagsResponse)).Decode(&page)
			resp.Body.Close()
			if err != nil {
				return nil, fmt.Errorf("decode tag list: %w", err)
			}
			tags = append(tags, page.Tags...)
			next := nextLink(resp)
			if next == nil {
				return tags, nil
			}
			if seen[next.String()] {
				return nil, fmt.Errorf("tag list pagination loops at %s", redactURL(next))
			}
			seen[next.String()] = true
			r = &request{method: http.MethodGet, url: next, scopes: r.scopes}
		}
		return nil, fmt.Errorf("tag list has more than %d pages", maxTagPages)
	})
}

// nextLink returns the rel="next" target of resp's Link headers, resolved
// against the request URL.
func nextLink(resp *http.Response) *url.URL {
	for _, v := range resp.Header.Values("Link") {
		for _, link := range strings.Split(v, ",") {
			target, params, ok := strings.Cut(link, ";")
			if !ok {
				continue
			}
			target = strings.TrimSpace(target)
			if !strings.HasPrefix(target, "<") || !strings.HasSuffix(target, ">") {
				continue
			}
			next := false
			for _, p := range strings.Split(params, ";") {
				k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
				if strings.EqualFold(strings.TrimSpace(k), "rel") {
					for _, rel := range strings.Fields(strings.Trim(strings.TrimSpace(v), `"`)) {
						next = next || strings.EqualFold(rel, "next")
					}
				}
			}
			if !next {
				continue
			}
			u, err := url.Parse(target[1 : len(target)-1])
			if err != nil {
				continue
			}
			return resp.Request.URL.ResolveReference(u)
		}
	}
	return nil
}

// acceptManifests returns the Accept header of a manifest request, with
// the expected media type first.
func acceptManifests(preferred string) string {
	types := manifestMediaTypes
	if preferred != "" && !isManifestMediaType(preferred) {
		types = append([]string{preferred}, types...)
	}
	return strings.Join(types, ", ")
}

func isManifestMediaType(mt string) bool {
	for _, t := range manifestMediaTypes {
		if mt == t {
			return true
		}
	}
	return false
}

func isSchema1(mt string) bool {
	return mt == manifest.MediaTypeDockerSchema1 || mt == manifest.MediaTypeDockerSchema1Signed
}

// mediaTypeOf returns the media type of a Content-Type value, without
// parameters.
func mediaTypeOf(contentType string) string {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return strings.TrimSpace(contentType)
	}
	return mt
}

// detectMediaType returns the manifest's media type: the Content-Type when
// it is a manifest type, else what the document itself says.
func detectMediaType(contentType string, data []byte) (string, error) {
	mt := mediaTypeOf(contentType)
	if isManifestMediaType(mt) {
		return mt, nil
	}
	if isSchema1(mt) {
		return "", manifest.ErrSchema1
	}
	d, err := manifest.Decode(mt, data)
	if err != nil {
		return "", err
	}
	return d.MediaType, nil
}

// readManifest reads (and closes) a manifest response body, refusing more
// than MaxManifestSize bytes.
func readManifest(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	if resp.ContentLength > MaxManifestSize {
		return nil, fmt.Errorf("manifest is %d bytes, more than %d: %w", resp.ContentLength, MaxManifestSize, ErrManifestTooLarge)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	if len(data) > MaxManifestSize {
		return nil, fmt.Errorf("manifest is more than %d bytes: %w", MaxManifestSize, ErrManifestTooLarge)
	}
	return data, nil
}

// verifyContent checks data against desc's size (when set) and digest.
func verifyContent(data []byte, desc ocispec.Descriptor) error {
	if desc.Size != 0 && int64(len(data)) != desc.Size {
		return fmt.Errorf("got %d bytes, want %d: %w", len(data), desc.Size, ErrDigestMismatch)
	}
	if got := desc.Digest.Algorithm().FromBytes(data); got != desc.Digest {
		return fmt.Errorf("got digest %s, want %s: %w", got, desc.Digest, ErrDigestMismatch)
	}
	return nil
}

func isResponseError(err error) bool {
	var re *ResponseError
	return errors.As(err, &re)
}
