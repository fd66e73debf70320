// Package credentials reads and writes registry credentials in docker's
// config.json format, including docker's credential helpers
// (docker-credential-<name>), so that `docker login` and `berth login` share
// one set of logins.
//
// # File format
//
// The file is docker's config.json (podman's auth.json has the same shape):
//
//	{
//	  "auths": {
//	    "https://index.docker.io/v1/": {"auth": "<base64 user:password>"},
//	    "registry.example.com":        {"auth": "...", "identitytoken": "..."},
//	    "ghcr.io":                     {}
//	  },
//	  "credsStore": "pass",
//	  "credHelpers": {"registry.example.com": "ecr-login"}
//	}
//
// Every field this package does not interpret, at the top level and inside
// an "auths" entry, is kept as it is when the file is rewritten, so settings
// of the docker CLI (proxies, plugins, ...) survive a `berth login`.
//
// # Keys
//
// Docker Hub's entry is keyed "https://index.docker.io/v1/"; every other
// registry by its bare host[:port] ([ServerKey]). Lookups also accept the
// forms older clients wrote ("https://HOST", "http://HOST", "HOST/v1/"):
// any key that names the same registry matches, the exact key first.
//
// # Helpers
//
// When "credHelpers" names a helper for the registry, or else "credsStore"
// is set, secrets live in the helper, not in the file: the helper is run as
// `docker-credential-<name> get|store|erase` with the server URL (get,
// erase) or a JSON document (store) on its standard input, as docker does.
// Like docker, a login through a helper leaves an empty entry in "auths", so
// the file still lists where the user is logged in.
//
// Writes replace the file atomically (temporary file, fsync, rename) with
// mode 0600, creating its directory with mode 0700, and are serialised
// between processes by an flock(2) on that directory.
package credentials

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-engine/berth/internal/atomicfile"
)

// DockerHubServerKey is the key of Docker Hub's credentials, in the file
// and in credential helpers.
const DockerHubServerKey = "https://index.docker.io/v1/"

// ConfigFileName is the name of the file inside a docker configuration
// directory.
const ConfigFileName = "config.json"

// ErrNotLoggedIn is returned by [Store.Erase] when there are no credentials
// for the registry.
var ErrNotLoggedIn = errors.New("not logged in")

// Credential is what a registry login consists of.
type Credential struct {
	// Username is the user name; empty with an identity token.
	Username string
	// Secret is the password or an access token.
	Secret string
	// IdentityToken is an OAuth2 refresh token some registries return at
	// login, exchanged for bearer tokens instead of the password.
	IdentityToken string
}

// IsZero reports whether c holds no credentials at all.
func (c Credential) IsZero() bool {
	return c.Username == "" && c.Secret == "" && c.IdentityToken == ""
}

// Store is a docker config.json and the credential helpers it names. It
// keeps nothing in memory: every call reads the file afresh, so logins made
// by other processes are seen at once. A Store is safe for concurrent use.
type Store struct {
	path string
}

// DefaultPath returns the docker config file berth uses when no authfile is
// given: $DOCKER_CONFIG/config.json when DOCKER_CONFIG is set, else
// ~/.docker/config.json.
func DefaultPath() (string, error) {
	if dir := os.Getenv("DOCKER_CONFIG"); dir != "" {
		return filepath.Join(dir, ConfigFileName), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("locate docker config: %w", err)
	}
	return filepath.Join(home, ".docker", ConfigFileName), nil
}

// Open returns the store of the config file at path, or of [DefaultPath]
// when path is "". A missing file is an empty configuration (it is created
// by the first [Store.Put]); a file that is not valid JSON is an error.
func Open(path string) (*Store, error) {
	if path == "" {
		p, err := DefaultPath()
		if err != nil {
			return nil, err
		}
		path = p
	}
	s := &Store{path: path}
	if _, err := s.load(); err != nil {
		return nil, err
	}
	return s, nil
}

// Path returns the config file's path.
func (s *Store) Path() string { return s.path }

// Get returns the credentials for the registry host (a host[:port], with or
// without a scheme; docker.io and its aliases mean Docker Hub). It returns a
// zero Credential and no error when there are none. A configured credential
// helper that is not installed is an error wrapping exec.ErrNotFound.
func (s *Store) Get(ctx context.Context, host string) (Credential, error) {
	key := ServerKey(host)
	if key == "" {
		return Credential{}, fmt.Errorf("get credentials: empty registry host")
	}
	cfg, err := s.load()
	if err != nil {
		return Credential{}, err
	}
	if h := cfg.helperFor(key); h != "" {
		for _, k := range cfg.helperKeys(key) {
			cred, err := helperGet(ctx, h, k)
			if errors.Is(err, errHelperNotFound) {
				continue
			}
			if err != nil {
				return Credential{}, fmt.Errorf("get credentials for %s: %w", key, err)
			}
			return cred, nil
		}
		return Credential{}, nil
	}
	for _, k := range cfg.matchingKeys(key) {
		cred, err := cfg.auths[k].credential()
		if err != nil {
			return Credential{}, fmt.Errorf("get credentials for %s from %s: entry %q: %w", key, s.path, k, err)
		}
		if !cred.IsZero() {
			return cred, nil
		}
	}
	return Credential{}, nil
}

// Put stores the credentials for the registry host: in the credential
// helper configured for it ("credHelpers", else "credsStore"), else base64
// encoded in the file's "auths". Entries of other forms naming the same
// registry ("https://HOST", ...) are replaced, so a later Get cannot find
// stale credentials.
func (s *Store) Put(ctx context.Context, host string, cred Credential) error {
	key := ServerKey(host)
	if key == "" {
		return fmt.Errorf("store credentials: empty registry host")
	}
	return s.update(ctx, func(cfg *config) error {
		h := cfg.helperFor(key)
		if h != "" {
			if err := helperStore(ctx, h, key, cred); err != nil {
				return fmt.Errorf("store credentials for %s: %w", key, err)
			}
		}
		keep := cfg.auths[key]
		for _, k := range cfg.matchingKeys(key) {
			delete(cfg.auths, k)
		}
		entry := keep.withoutSecrets()
		if h == "" {
			entry.setCredential(cred)
		}
		cfg.auths[key] = entry
		return nil
	})
}

// Erase removes the credentials for the registry host from the file and
// from the credential helper configured for it. It returns an error
// wrapping [ErrNotLoggedIn] when there were none.
func (s *Store) Erase(ctx context.Context, host string) error {
	key := ServerKey(host)
	if key == "" {
		return fmt.Errorf("erase credentials: empty registry host")
	}
	return s.update(ctx, func(cfg *config) error {
		keys := cfg.matchingKeys(key)
		found := false
		for _, k := range keys {
			if cred, err := cfg.auths[k].credential(); err != nil || !cred.IsZero() {
				found = true // a corrupt entry is worth erasing too
			}
		}
		if h := cfg.helperFor(key); h != "" {
			// An empty "auths" entry is docker's record of a login through
			// a helper: removing it is part of logging out.
			found = found || len(keys) > 0
			for _, k := range cfg.helperKeys(key) {
				// Ask first: many helpers report success when erasing
				// nothing, which would hide that there was no login.
				if _, err := helperGet(ctx, h, k); errors.Is(err, errHelperNotFound) {
					continue
				} else if err != nil {
					return fmt.Errorf("erase credentials for %s: %w", key, err)
				}
				if err := helperErase(ctx, h, k); err != nil && !errors.Is(err, errHelperNotFound) {
					return fmt.Errorf("erase credentials for %s: %w", key, err)
				}
				found = true
			}
		}
		if !found {
			return fmt.Errorf("erase credentials for %s: %w", key, ErrNotLoggedIn)
		}
		for _, k := range keys {
			delete(cfg.auths, k)
		}
		return nil
	})
}

// ServerKey returns the key under which docker stores the credentials of a
// registry: "https://index.docker.io/v1/" for Docker Hub (docker.io,
// index.docker.io, registry-1.docker.io), else the bare host[:port]. A
// scheme and a path in host are ignored, so the forms older clients wrote
// map to the same key. It returns "" for an empty host.
func ServerKey(host string) string {
	h := hostname(host)
	switch h {
	case "":
		return ""
	case "docker.io", "index.docker.io", "registry-1.docker.io":
		return DockerHubServerKey
	}
	return h
}

// hostname strips a scheme and anything from the first slash, the
// normalisation docker applies to "auths" keys, and lower-cases the result
// (host names are case-insensitive).
func hostname(s string) string {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "http://")
	s = strings.TrimPrefix(s, "https://")
	if i := strings.IndexByte(s, '/'); i >= 0 {
		s = s[:i]
	}
	return strings.ToLower(s)
}

// config is a decoded config file. Fields other than those below stay raw in
// rest and are written back unchanged.
type config struct {
	rest        map[string]json.RawMessage
	auths       map[string]authEntry
	credsStore  string
	credHelpers map[string]string
}

// load reads and decodes the config file; a missing or blank file is an
// empty configuration.
func (s *Store) load() (*config, error) {
	data, err := os.ReadFile(s.path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read docker config: %w", err)
	}
	cfg, err := decodeConfig(data)
	if err != nil {
		return nil, fmt.Errorf("read docker config %s: %w", s.path, err)
	}
	return cfg, nil
}

func decodeConfig(data []byte) (*config, error) {
	cfg := &config{
		rest:        map[string]json.RawMessage{},
		auths:       map[string]authEntry{},
		credHelpers: map[string]string{},
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return cfg, nil
	}
	if err := json.Unmarshal(data, &cfg.rest); err != nil {
		return nil, err
	}
	if cfg.rest == nil { // the file was the JSON literal null
		cfg.rest = map[string]json.RawMessage{}
	}
	fields := []struct {
		name string
		dst  any
	}{
		{"auths", &cfg.auths},
		{"credsStore", &cfg.credsStore},
		{"credHelpers", &cfg.credHelpers},
	}
	for _, f := range fields {
		raw, ok := cfg.rest[f.name]
		if !ok {
			continue
		}
		if err := json.Unmarshal(raw, f.dst); err != nil {
			return nil, fmt.Errorf("field %q: %w", f.name, err)
		}
		delete(cfg.rest, f.name)
	}
	if cfg.auths == nil {
		cfg.auths = map[string]authEntry{}
	}
	if cfg.credHelpers == nil {
		cfg.credHelpers = map[string]string{}
	}
	return cfg, nil
}

// encode returns the file's new content, tab-indented as docker writes it.
func (c *config) encode() ([]byte, error) {
	out := make(map[string]any, len(c.rest)+3)
	for k, v := range c.rest {
		out[k] = v
	}
	out["auths"] = c.auths
	if c.credsStore != "" {
		out["credsStore"] = c.credsStore
	}
	if len(c.credHelpers) > 0 {
		out["credHelpers"] = c.credHelpers
	}
	data, err := json.MarshalIndent(out, "", "\t")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// matchingKeys returns the "auths" keys that name the registry of key, the
// exact key first, then the others in lexical order.
func (c *config) matchingKeys(key string) []string {
	var keys []string
	if _, ok := c.auths[key]; ok {
		keys = append(keys, key)
	}
	var others []string
	for k := range c.auths {
		if k != key && ServerKey(k) == key {
			others = append(others, k)
		}
	}
	sort.Strings(others)
	return append(keys, others...)
}

// helperKeys returns the server URLs to ask a credential helper for: the
// canonical key first, then the other forms the file records a login under.
func (c *config) helperKeys(key string) []string {
	keys := []string{key}
	for _, k := range c.matchingKeys(key) {
		if k != key {
			keys = append(keys, k)
		}
	}
	return keys
}

// helperFor returns the credential helper that holds the registry's
// secrets, or "" when they are in the file.
func (c *config) helperFor(key string) string {
	if h, ok := c.credHelpers[key]; ok && h != "" {
		return h
	}
	var others []string
	for k := range c.credHelpers {
		if k != key && ServerKey(k) == key {
			others = append(others, k)
		}
	}
	if len(others) > 0 {
		sort.Strings(others)
		if h := c.credHelpers[others[0]]; h != "" {
			return h
		}
	}
	return c.credsStore
}

// authEntry is one value of "auths", kept raw so that fields this package
// does not know survive a rewrite.
type authEntry map[string]json.RawMessage

// Fields of an "auths" entry.
const (
	fieldAuth          = "auth"
	fieldIdentityToken = "identitytoken"
	fieldUsername      = "username" // legacy, read only
	fieldPassword      = "password" // legacy, read only
)

func (e authEntry) str(field string) (string, error) {
	raw, ok := e[field]
	if !ok {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("field %q: %w", field, err)
	}
	return s, nil
}

// credential decodes the entry's credentials.
func (e authEntry) credential() (Credential, error) {
	var cred Credential
	auth, err := e.str(fieldAuth)
	if err != nil {
		return cred, err
	}
	if auth != "" {
		dec, err := base64.StdEncoding.DecodeString(auth)
		if err != nil {
			return cred, fmt.Errorf("field %q: %w", fieldAuth, err)
		}
		user, secret, ok := strings.Cut(string(dec), ":")
		if !ok {
			return cred, fmt.Errorf("field %q: not base64 of user:password", fieldAuth)
		}
		cred.Username, cred.Secret = user, secret
	} else {
		if cred.Username, err = e.str(fieldUsername); err != nil {
			return cred, err
		}
		if cred.Secret, err = e.str(fieldPassword); err != nil {
			return cred, err
		}
	}
	if cred.IdentityToken, err = e.str(fieldIdentityToken); err != nil {
		return cred, err
	}
	return cred, nil
}

// withoutSecrets returns a copy of the entry without its credential fields.
func (e authEntry) withoutSecrets() authEntry {
	out := authEntry{}
	for k, v := range e {
		switch k {
		case fieldAuth, fieldIdentityToken, fieldUsername, fieldPassword:
		default:
			out[k] = v
		}
	}
	return out
}

// setCredential records cred in the entry as docker does: "auth" is
// base64(user:secret), "identitytoken" the identity token.
func (e authEntry) setCredential(cred Credential) {
	if cred.Username != "" || cred.Secret != "" {
		e[fieldAuth] = mustJSON(base64.StdEncoding.EncodeToString([]byte(cred.Username + ":" + cred.Secret)))
	}
	if cred.IdentityToken != "" {
		e[fieldIdentityToken] = mustJSON(cred.IdentityToken)
	}
}

func mustJSON(s string) json.RawMessage {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err) // marshalling a string cannot fail
	}
	return b
}

// lockPollInterval is how often a writer retries the directory lock.
const lockPollInterval = 10 * time.Millisecond

// update applies change to the freshly read config and writes the result,
// holding the directory lock so concurrent writers do not lose updates.
func (s *Store) update(ctx context.Context, change func(*config) error) error {
	target := s.path
	// Write through a symlinked config file, as docker does, instead of
	// replacing the link.
	if resolved, err := filepath.EvalSymlinks(target); err == nil {
		target = resolved
	}
	dir := filepath.Dir(target)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("update docker config: %w", err)
	}
	unlock, err := lockDir(ctx, dir)
	if err != nil {
		return fmt.Errorf("update docker config %s: %w", s.path, err)
	}
	defer unlock()
	cfg, err := s.load()
	if err != nil {
		return err
	}
	if err := change(cfg); err != nil {
		return err
	}
	data, err := cfg.encode()
	if err != nil {
		return fmt.Errorf("update docker config %s: %w", s.path, err)
	}
	if err := atomicfile.WriteFile(target, data, 0o600); err != nil {
		return fmt.Errorf("update docker config: %w", err)
	}
	return nil
}

// lockDir takes an exclusive flock on dir, polling until it is free or ctx
// is done, and returns the function that releases it.
func lockDir(ctx context.Context, dir string) (func(), error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", dir, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", dir, ctx.Err())
		case <-time.After(lockPollInterval):
		}
	}
}
