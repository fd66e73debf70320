package remote

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Errors callers distinguish; test them with errors.Is.
var (
	// ErrUnauthorized: the registry rejected the request (401 or 403) after
	// the authentication flow, or its token server refused the credentials.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrNotFound: the registry does not have the manifest, blob or
	// repository (404).
	ErrNotFound = errors.New("not found")
	// ErrDigestMismatch: the content received does not match the digest or
	// size it was asked for (or the registry reports another digest).
	ErrDigestMismatch = errors.New("content does not match its descriptor")
	// ErrManifestTooLarge: a manifest exceeds MaxManifestSize.
	ErrManifestTooLarge = errors.New("manifest too large")
	// ErrInvalidReference: the reference does not name a repository (an
	// image ID, or no registry domain).
	ErrInvalidReference = errors.New("not a repository reference")
)

// ErrorDetail is one entry of the "errors" array of the distribution
// spec's error response.
type ErrorDetail struct {
	Code    string          `json:"code"`
	Message string          `json:"message"`
	Detail  json.RawMessage `json:"detail,omitempty"`
}

// ResponseError is a registry (or token server) response with an error
// status. It unwraps to ErrUnauthorized for 401 and 403 and to ErrNotFound
// for 404.
type ResponseError struct {
	// Registry is the registry the request was for, as the user names it
	// (e.g. "docker.io"); it is the name `berth login` takes.
	Registry string
	// Method and URL of the failed request; the URL carries no query (upload
	// and CDN URLs hold secrets there).
	Method string
	URL    string
	// StatusCode is the HTTP status.
	StatusCode int
	// Errors is the decoded "errors" array, when the body had one.
	Errors []ErrorDetail
	// Body is the start of a body that was not a spec error document.
	Body string
}

// Error describes the failure, with the registry's own error messages and,
// for authentication failures, how to log in.
func (e *ResponseError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %d %s", e.Method, e.URL, e.StatusCode, http.StatusText(e.StatusCode))
	for i, d := range e.Errors {
		sep := "; "
		if i == 0 {
			sep = ": "
		}
		b.WriteString(sep)
		b.WriteString(d.Code)
		if d.Message != "" {
			b.WriteString(": " + d.Message)
		}
	}
	if len(e.Errors) == 0 && e.Body != "" {
		b.WriteString(": " + e.Body)
	}
	if e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden {
		fmt.Fprintf(&b, " (authentication required or denied: run `berth login %s`)", e.Registry)
	}
	return b.String()
}

// Unwrap returns the sentinel error of the status, if any.
func (e *ResponseError) Unwrap() error {
	switch e.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		return ErrUnauthorized
	case http.StatusNotFound:
		return ErrNotFound
	}
	return nil
}

// maxErrorBody bounds how much of an error response is read.
const maxErrorBody = 64 << 10

// maxErrorText bounds how much of a non-JSON error body is quoted.
const maxErrorText = 256

// newResponseError reads (and closes) resp's body into a ResponseError.
func newResponseError(registry string, resp *http.Response) *ResponseError {
	defer resp.Body.Close()
	e := &ResponseError{
		Registry:   registry,
		Method:     resp.Request.Method,
		URL:        redactURL(resp.Request.URL),
		StatusCode: resp.StatusCode,
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var doc struct {
		Errors []ErrorDetail `json:"errors"`
	}
	if json.Unmarshal(body, &doc) == nil && len(doc.Errors) > 0 {
		e.Errors = doc.Errors
		return e
	}
	text := strings.TrimSpace(strings.ToValidUTF8(string(body), "?"))
	if len(text) > maxErrorText {
		text = text[:maxErrorText] + "..."
	}
	e.Body = text
	return e
}

// redactURL returns u without user info, query and fragment.
func redactURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	c := *u
	c.User = nil
	c.RawQuery = ""
	c.ForceQuery = false
	c.Fragment = ""
	c.RawFragment = ""
	return c.String()
}
