package remote

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"
)

// Authentication schemes of a challenge (lower case).
const (
	schemeBasic  = "basic"
	schemeBearer = "bearer"
)

// Token lifetimes: the distribution token spec's default and minimum is 60
// seconds; a token is renewed a little before it expires.
const (
	minTokenLifetime = 60 * time.Second
	tokenRenewMargin = 10 * time.Second
	maxTokenResponse = 1 << 20
	oauthClientID    = "berth"
)

// authState is what a Client knows about authenticating to one host: the
// challenge it last sent, its tokens and the credentials in use.
type authState struct {
	mu      sync.Mutex
	scheme  string // "", schemeBasic or schemeBearer
	realm   string
	service string
	tokens  map[string]bearerToken // by scope set
	// creds caches the host's credentials until the registry rejects them.
	creds       credential
	credsLoaded bool
}

type bearerToken struct {
	value   string
	expires time.Time
}

func newAuthState() *authState {
	return &authState{tokens: map[string]bearerToken{}}
}

// credentialsFor returns the credentials to use with ep: the endpoint's own
// (Ping), or Options.Credentials' answer, cached until rejected. A lookup
// failure is logged and means anonymous access.
func (c *Client) credentialsFor(ctx context.Context, ep *endpoint) credential {
	if ep.creds != nil {
		return *ep.creds
	}
	st := ep.auth
	st.mu.Lock()
	if st.credsLoaded {
		cr := st.creds
		st.mu.Unlock()
		return cr
	}
	st.mu.Unlock()
	var cr credential
	if c.credentials != nil {
		user, secret, err := c.credentials(ctx, ep.registry)
		if err != nil {
			c.logf("credentials for %s: %v; continuing anonymously", ep.registry, err)
		} else {
			cr = credential{user: user, secret: secret}
		}
	}
	st.mu.Lock()
	st.creds, st.credsLoaded = cr, true
	st.mu.Unlock()
	return cr
}

// handleChallenge records the WWW-Authenticate challenge of a 401 response
// to a request made with scopes. It returns the scopes to retry with (the
// challenge may name more) and whether a retry can succeed.
func (c *Client) handleChallenge(ctx context.Context, ep *endpoint, resp *http.Response, scopes []string) ([]string, bool) {
	var chosen *challenge
	for _, ch := range parseChallenges(resp.Header.Values("WWW-Authenticate")) {
		if ch.scheme == schemeBearer {
			chosen = &ch
			break
		}
		if ch.scheme == schemeBasic && chosen == nil {
			chosen = &ch
		}
	}
	if chosen == nil {
		return scopes, false
	}
	st := ep.auth
	st.mu.Lock()
	// Whatever was sent was rejected: reload the credentials, drop tokens
	// of another realm and the token just used.
	st.credsLoaded = false
	realm, service := chosen.params["realm"], chosen.params["service"]
	if st.scheme != chosen.scheme || st.realm != realm || st.service != service {
		st.tokens = map[string]bearerToken{}
	}
	st.scheme, st.realm, st.service = chosen.scheme, realm, service
	if chosen.scheme == schemeBearer {
		scopes = mergeScopes(scopes, strings.Fields(chosen.params["scope"]))
		delete(st.tokens, scopeKey(scopes))
	}
	st.mu.Unlock()
	if chosen.scheme == schemeBearer {
		return scopes, realm != ""
	}
	cr := c.credentialsFor(ctx, ep)
	return scopes, cr.user != "" || cr.secret != ""
}

// authorize adds the Authorization header the host's challenge calls for
// (nothing before any challenge: requests start anonymous).
func (st *authState) authorize(ctx context.Context, c *Client, ep *endpoint, scopes []string, req *http.Request) error {
	st.mu.Lock()
	scheme := st.scheme
	st.mu.Unlock()
	switch scheme {
	case schemeBasic:
		if cr := c.credentialsFor(ctx, ep); cr.user != "" || cr.secret != "" {
			req.SetBasicAuth(cr.user, cr.secret)
		}
	case schemeBearer:
		tok, err := c.bearerToken(ctx, ep, scopes)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	return nil
}

// bearerToken returns a cached token for the scopes or fetches one.
func (c *Client) bearerToken(ctx context.Context, ep *endpoint, scopes []string) (string, error) {
	st := ep.auth
	key := scopeKey(scopes)
	st.mu.Lock()
	tok, ok := st.tokens[key]
	realm, service := st.realm, st.service
	st.mu.Unlock()
	if ok && time.Now().Before(tok.expires) {
		return tok.value, nil
	}
	tok, err := c.fetchToken(ctx, ep, realm, service, scopes)
	if err != nil {
		return "", err
	}
	st.mu.Lock()
	if st.realm == realm && st.service == service {
		st.tokens[key] = tok
	}
	st.mu.Unlock()
	return tok.value, nil
}

// tokenResponse is the token server's answer (docker's "token", OAuth2's
// "access_token").
type tokenResponse struct {
	Token       string `json:"token"`
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
}

// fetchToken asks the realm for a token for scopes: GET with Basic
// credentials (or anonymous), or, with an identity token, the OAuth2
// refresh-token grant by POST.
func (c *Client) fetchToken(ctx context.Context, ep *endpoint, realm, service string, scopes []string) (bearerToken, error) {
	u, err := url.Parse(realm)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return bearerToken{}, fmt.Errorf("registry %s: invalid token realm %q", ep.registry, realm)
	}
	client, err := c.clientForURL(u)
	if err != nil {
		return bearerToken{}, err
	}
	cr := c.credentialsFor(ctx, ep)
	var build func() (*http.Request, error)
	if cr.user == "" && cr.secret != "" {
		form := url.Values{
			"grant_type":    {"refresh_token"},
			"refresh_token": {cr.secret},
			"client_id":     {oauthClientID},
		}
		if service != "" {
			form.Set("service", service)
		}
		if len(scopes) > 0 {
			form.Set("scope", strings.Join(scopes, " "))
		}
		body := form.Encode()
		build = func() (*http.Request, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(body))
			if err != nil {
				return nil, err
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("User-Agent", c.userAgent)
			return req, nil
		}
	} else {
		q := u.Query()
		if service != "" {
			q.Set("service", service)
		}
		for _, s := range scopes {
			q.Add("scope", s)
		}
		if cr.user != "" {
			q.Set("account", cr.user)
		}
		tu := *u
		tu.RawQuery = q.Encode()
		build = func() (*http.Request, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, tu.String(), nil)
			if err != nil {
				return nil, err
			}
			req.Header.Set("User-Agent", c.userAgent)
			if cr.user != "" || cr.secret != "" {
				req.SetBasicAuth(cr.user, cr.secret)
			}
			return req, nil
		}
	}
	resp, err := c.exchange(ctx, client, retryPolicy{conn: true, status: true}, build)
	if err != nil {
		return bearerToken{}, fmt.Errorf("registry %s: fetch token: %w", ep.registry, err)
	}
	if resp.StatusCode != http.StatusOK {
		return bearerToken{}, fmt.Errorf("registry %s: fetch token: %w", ep.registry, newResponseError(ep.registry, resp))
	}
	defer resp.Body.Close()
	var tr tokenResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxTokenResponse)).Decode(&tr); err != nil {
		return bearerToken{}, fmt.Errorf("registry %s: decode token response: %w", ep.registry, err)
	}
	value := tr.Token
	if value == "" {
		value = tr.AccessToken
	}
	if value == "" {
		return bearerToken{}, fmt.Errorf("registry %s: token server %s returned no token", ep.registry, redactURL(u))
	}
	lifetime := max(time.Duration(tr.ExpiresIn)*time.Second, minTokenLifetime)
	return bearerToken{value: value, expires: time.Now().Add(lifetime - tokenRenewMargin)}, nil
}

// Scopes of the token flow.

// pullScope and pushScope return the scope of a repository operation.
func pullScope(repo string) string { return "repository:" + repo + ":pull" }
func pushScope(repo string) string { return "repository:" + repo + ":pull,push" }

// mergeScopes returns the union of scope sets, actions of the same resource
// merged ("repository:a:pull" + "repository:a:push" =
// "repository:a:pull,push"), sorted so equal sets have equal keys.
func mergeScopes(sets ...[]string) []string {
	actions := map[string]map[string]bool{}
	for _, set := range sets {
		for _, s := range set {
			i := strings.LastIndexByte(s, ':')
			if i < 0 {
				continue // not type:name:actions
			}
			res := s[:i]
			if actions[res] == nil {
				actions[res] = map[string]bool{}
			}
			for _, a := range strings.Split(s[i+1:], ",") {
				if a != "" {
					actions[res][a] = true
				}
			}
		}
	}
	out := make([]string, 0, len(actions))
	for res, acts := range actions {
		list := make([]string, 0, len(acts))
		for a := range acts {
			list = append(list, a)
		}
		sort.Strings(list)
		out = append(out, res+":"+strings.Join(list, ","))
	}
	sort.Strings(out)
	return out
}

// scopeKey is the token cache key of a scope set.
func scopeKey(scopes []string) string {
	return strings.Join(mergeScopes(scopes), " ")
}

// challenge is one WWW-Authenticate challenge (RFC 7235).
type challenge struct {
	scheme string            // lower case
	params map[string]string // names lower case
}

// parseChallenges parses WWW-Authenticate header values; each may hold
// several challenges ("Basic realm=x, Bearer realm=y").
func parseChallenges(values []string) []challenge {
	var out []challenge
	for _, v := range values {
		p := challengeParser{s: v}
		for {
			p.skip(" \t,")
			scheme := p.token()
			if scheme == "" {
				break
			}
			ch := challenge{scheme: strings.ToLower(scheme), params: map[string]string{}}
			for {
				save := p.i
				p.skip(" \t,")
				name := p.token()
				p.skip(" \t")
				if name == "" || !p.consume('=') {
					p.i = save // the next challenge's scheme, or the end
					break
				}
				p.skip(" \t")
				ch.params[strings.ToLower(name)] = p.value()
			}
			out = append(out, ch)
			if p.i == len(p.s) {
				break
			}
			if p.i == 0 || !strings.ContainsAny(p.s[p.i:p.i+1], " \t,") {
				// Unparsable (e.g. a token68): stop at this value.
				break
			}
		}
	}
	return out
}

type challengeParser struct {
	s string
	i int
}

func (p *challengeParser) skip(chars string) {
	for p.i < len(p.s) && strings.IndexByte(chars, p.s[p.i]) >= 0 {
		p.i++
	}
}

// token reads an RFC 7230 token.
func (p *challengeParser) token() string {
	start := p.i
	for p.i < len(p.s) && isTokenChar(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

func (p *challengeParser) consume(b byte) bool {
	if p.i < len(p.s) && p.s[p.i] == b {
		p.i++
		return true
	}
	return false
}

// value reads a token or a quoted string (with backslash escapes).
func (p *challengeParser) value() string {
	if !p.consume('"') {
		return p.token()
	}
	var b strings.Builder
	for p.i < len(p.s) {
		ch := p.s[p.i]
		p.i++
		switch {
		case ch == '"':
			return b.String()
		case ch == '\\' && p.i < len(p.s):
			b.WriteByte(p.s[p.i])
			p.i++
		default:
			b.WriteByte(ch)
		}
	}
	return b.String()
}

func isTokenChar(b byte) bool {
	if b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' {
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0
}
