package config

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
)

// RegistryHost is the resolved configuration of one registry: what a client
// needs to reach it.
type RegistryHost struct {
	// Host is the registry's canonical host[:port], lower-cased, with
	// "index.docker.io" spelt "docker.io".
	Host string
	// Insecure allows plain HTTP and TLS certificates that do not verify.
	Insecure bool
	// CADir is the directory whose *.crt files are trusted, next to the
	// system's roots, for the registry's TLS certificate; "" for none. It
	// need not exist.
	CADir string
	// Mirrors are tried in order before the registry itself when pulling.
	Mirrors []Mirror
}

// Mirror is a registry mirror with its resolved transport settings, which
// come from the mirror's own [registry.hosts."HOST"] table.
type Mirror struct {
	// Scheme is "https" or "http" when the configuration names one. Empty
	// means HTTPS, falling back to plain HTTP only if Insecure.
	Scheme string
	// Host is the mirror's host[:port].
	Host string
	// Insecure allows plain HTTP and TLS certificates that do not verify.
	Insecure bool
	// CADir is the directory of CA certificates for the mirror, as in
	// RegistryHost.
	CADir string
}

// Registry resolves the settings of the registry at host (host[:port], as in
// an image reference). A registry without a [registry.hosts] table gets the
// defaults: no mirrors, insecure only if it is a loopback address, CA
// certificates from <certs_dir>/<host>. Registry expects a validated
// Config; mirrors that do not parse are left out.
func (c *Config) Registry(host string) RegistryHost {
	host = canonicalHost(host)
	hc := c.registryHostConfig(host)
	rh := RegistryHost{
		Host:     host,
		Insecure: c.insecure(host, hc),
		CADir:    c.caDir(host, hc),
	}
	for _, m := range hc.Mirrors {
		mirror, err := parseMirror(m)
		if err != nil {
			continue
		}
		mhc := c.registryHostConfig(mirror.Host)
		mirror.Insecure = c.insecure(mirror.Host, mhc)
		mirror.CADir = c.caDir(mirror.Host, mhc)
		rh.Mirrors = append(rh.Mirrors, mirror)
	}
	return rh
}

// registryHostConfig returns the table for the canonical host, or an empty
// one.
func (c *Config) registryHostConfig(host string) RegistryHostConfig {
	if hc, ok := c.Registries.Hosts[host]; ok {
		return hc
	}
	// A Config built in code may not have canonical keys.
	for key, hc := range c.Registries.Hosts {
		if canonicalHost(key) == host {
			return hc
		}
	}
	return RegistryHostConfig{}
}

func (c *Config) insecure(host string, hc RegistryHostConfig) bool {
	if hc.Insecure != nil {
		return *hc.Insecure
	}
	return isLoopback(host)
}

func (c *Config) caDir(host string, hc RegistryHostConfig) string {
	if hc.CADir != "" {
		return hc.CADir
	}
	if c.Registries.CertsDir == "" {
		return ""
	}
	return filepath.Join(c.Registries.CertsDir, host)
}

// normalizeHosts rewrites the keys of Registries.Hosts to canonical form.
// Validate has made sure no two keys name the same registry.
func (c *Config) normalizeHosts() {
	hosts := make(map[string]RegistryHostConfig, len(c.Registries.Hosts))
	for key, hc := range c.Registries.Hosts {
		hosts[canonicalHost(key)] = hc
	}
	c.Registries.Hosts = hosts
}

// canonicalHost lower-cases a registry host and spells Docker Hub's legacy
// index name "docker.io", as image references do.
func canonicalHost(host string) string {
	host = strings.ToLower(host)
	if host == "index.docker.io" {
		return "docker.io"
	}
	return host
}

// isLoopback reports whether host[:port] names the local machine:
// "localhost", 127.0.0.0/8 or ::1.
func isLoopback(hostport string) bool {
	host, _, err := splitHostPort(hostport)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	addr, err := netip.ParseAddr(host)
	return err == nil && addr.Unmap().IsLoopback()
}

// splitHostPort splits "host", "host:port", "[v6]" or "[v6]:port" and
// checks both parts. The port is "" when absent.
func splitHostPort(s string) (host, port string, err error) {
	if rest, ok := strings.CutPrefix(s, "["); ok {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return "", "", errors.New("missing ']' after IPv6 address")
		}
		host, rest = rest[:end], rest[end+1:]
		addr, err := netip.ParseAddr(host)
		if err != nil || !addr.Is6() || addr.Zone() != "" {
			return "", "", fmt.Errorf("%q is not an IPv6 address", host)
		}
		if rest != "" {
			p, ok := strings.CutPrefix(rest, ":")
			if !ok {
				return "", "", fmt.Errorf("unexpected %q after the address", rest)
			}
			port = p
		}
	} else {
		var hasPort bool
		host, port, hasPort = strings.Cut(s, ":")
		if strings.Contains(port, ":") {
			return "", "", errors.New("IPv6 addresses must be in brackets: [::1]:5000")
		}
		if hasPort && port == "" {
			return "", "", errors.New("empty port")
		}
		if err := checkHostname(host); err != nil {
			return "", "", err
		}
	}
	if port != "" {
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 || strings.HasPrefix(port, "+") {
			return "", "", fmt.Errorf("invalid port %q", port)
		}
	}
	return host, port, nil
}

// checkHostname accepts an IPv4 address or a DNS name of letters, digits and
// inner hyphens, as image references allow.
func checkHostname(host string) error {
	if host == "" {
		return errors.New("empty host name")
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	if len(host) > 253 {
		return fmt.Errorf("host name %q is longer than 253 characters", host)
	}
	for label := range strings.SplitSeq(host, ".") {
		if !isDNSLabel(label) {
			return fmt.Errorf("%q is not a valid host name", host)
		}
	}
	return nil
}

func isDNSLabel(l string) bool {
	if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for _, r := range l {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// parseMirror parses a mirror: "host[:port]" or "http(s)://host[:port]",
// optionally with a trailing slash. Like docker, it rejects paths, queries,
// fragments and credentials.
func parseMirror(s string) (Mirror, error) {
	if !strings.Contains(s, "://") {
		hostport := strings.TrimSuffix(s, "/")
		if _, _, err := splitHostPort(hostport); err != nil {
			return Mirror{}, err
		}
		return Mirror{Host: canonicalHost(hostport)}, nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return Mirror{}, err
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return Mirror{}, fmt.Errorf("scheme %q: want https or http", u.Scheme)
	case u.User != nil:
		return Mirror{}, errors.New("credentials belong in the auth file, not the mirror URL")
	case u.Path != "" && u.Path != "/", u.RawQuery != "", u.ForceQuery, u.Fragment != "", u.Opaque != "":
		return Mirror{}, errors.New("a mirror URL has no path, query or fragment")
	}
	if _, _, err := splitHostPort(u.Host); err != nil {
		return Mirror{}, err
	}
	return Mirror{Scheme: u.Scheme, Host: canonicalHost(u.Host)}, nil
}
