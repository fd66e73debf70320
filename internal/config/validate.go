package config

import (
	"fmt"
	"maps"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
)

// maxInterfaceName is the longest Linux network interface name (IFNAMSIZ
// less the terminating NUL).
const maxInterfaceName = 15

// maxNFTName is the longest nftables table name (NFT_NAME_MAXLEN less the
// terminating NUL).
const maxNFTName = 255

// Validate checks every value of c and reports all problems at once, each
// naming its key. The error wraps ErrUnsupportedVersion for a version this
// berth does not read and ErrInvalid otherwise.
func (c *Config) Validate() error {
	if c.Version != CurrentVersion {
		return versionError(c.Version)
	}
	var v problems
	c.validateStorage(&v)
	c.validateRegistries(&v)
	c.validateEngine(&v)
	c.validateNetwork(&v)
	return v.err()
}

// problems collects validation failures.
type problems []string

func (p *problems) add(key string, value any, format string, args ...any) {
	*p = append(*p, fmt.Sprintf("%s %q: %s", key, value, fmt.Sprintf(format, args...)))
}

func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrInvalid, strings.Join(p, "; "))
}

func (c *Config) validateStorage(v *problems) {
	switch c.Storage.Driver {
	case DriverAuto, DriverOverlay, DriverNative:
	default:
		v.add("storage.driver", c.Storage.Driver, "want %q, %q or %q (automatic)", DriverOverlay, DriverNative, DriverAuto)
	}
}

func (c *Config) validateRegistries(v *problems) {
	if d := c.Registries.CertsDir; d != "" && !filepath.IsAbs(d) {
		v.add("registry.certs_dir", d, "not an absolute path")
	}
	canonical := map[string]string{}
	for _, host := range slices.Sorted(maps.Keys(c.Registries.Hosts)) {
		key := "registry.hosts." + formatKey([]string{host})
		if _, _, err := splitHostPort(host); err != nil {
			v.add("registry.hosts", host, "want host[:port] as in image references: %v", err)
		}
		if other, dup := canonical[canonicalHost(host)]; dup {
			v.add("registry.hosts", host, "names the same registry as %q", other)
		}
		canonical[canonicalHost(host)] = host

		hc := c.Registries.Hosts[host]
		for _, m := range hc.Mirrors {
			if _, err := parseMirror(m); err != nil {
				v.add(key+".mirrors", m, "want host[:port] or http(s)://host[:port]: %v", err)
			}
		}
		if d := hc.CADir; d != "" && !filepath.IsAbs(d) {
			v.add(key+".ca_dir", d, "not an absolute path")
		}
	}
}

func (c *Config) validateEngine(v *problems) {
	if err := checkCgroupParent(c.Engine.CgroupParent); err != nil {
		v.add("engine.cgroup_parent", c.Engine.CgroupParent, "%v", err)
	}
	if name := c.Engine.DefaultRuntime; name != BuiltinRuntime {
		if _, ok := c.Engine.Runtimes[name]; !ok {
			v.add("engine.default_runtime", name, "not %q and not defined in [engine.runtimes]", BuiltinRuntime)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.Engine.Runtimes)) {
		if !isName(name) {
			v.add("engine.runtimes", name, "a runtime name is letters, digits, '_', '.' and '-', starting with a letter or digit")
		}
		key := "engine.runtimes." + formatKey([]string{name}) + ".path"
		switch p := c.Engine.Runtimes[name].Path; {
		case p == "":
			v.add(key, p, "empty: want an absolute path or a command name")
		case strings.Contains(p, "/") && !filepath.IsAbs(p):
			v.add(key, p, "a relative path: want an absolute path or a command name")
		}
	}
}

// checkCgroupParent accepts a cgroup path such as "berth" or
// "system.slice/berth": no empty, "." or ".." elements. A leading "/" is
// allowed and changes nothing.
func checkCgroupParent(p string) error {
	rel := strings.TrimPrefix(p, "/")
	if rel == "" {
		return fmt.Errorf("empty: want a cgroup path such as %q", "berth")
	}
	for elem := range strings.SplitSeq(rel, "/") {
		switch {
		case elem == "" || elem == "." || elem == "..":
			return fmt.Errorf("element %q: want a clean path inside the cgroup hierarchy", elem)
		case strings.ContainsAny(elem, "\x00\n"):
			return fmt.Errorf("element %q contains a control character", elem)
		}
	}
	return nil
}

func (c *Config) validateNetwork(v *problems) {
	n := c.Network
	if !isName(n.DefaultNetwork) {
		v.add("network.default_network", n.DefaultNetwork, "a network name is letters, digits, '_', '.' and '-', starting with a letter or digit")
	}
	if err := checkInterfaceName(n.BridgeName); err != nil {
		v.add("network.bridge_name", n.BridgeName, "%v", err)
	}
	if err := checkSubnet(n.Subnet); err != nil {
		v.add("network.subnet", n.Subnet, "%v", err)
	}
	if !isNFTName(n.NFTTable) {
		v.add("network.nft_table", n.NFTTable, "an nftables table name is up to %d letters, digits, '_', '.' and '-', starting with a letter or '_'", maxNFTName)
	}
}

// checkInterfaceName applies the kernel's rules for network interface
// names.
func checkInterfaceName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("empty")
	case len(name) > maxInterfaceName:
		return fmt.Errorf("longer than %d bytes", maxInterfaceName)
	case name == "." || name == "..":
		return fmt.Errorf("not an interface name")
	case strings.ContainsFunc(name, func(r rune) bool { return r == '/' || r == ':' || r <= ' ' || r == 0x7f }):
		return fmt.Errorf("contains '/', ':', white space or a control character")
	}
	return nil
}

// checkSubnet accepts a network address in CIDR notation with room for a
// gateway and at least one container.
func checkSubnet(s string) error {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return fmt.Errorf("want CIDR notation such as %q", "10.88.0.0/16")
	}
	if p.Addr().Zone() != "" {
		return fmt.Errorf("a subnet has no zone")
	}
	if m := p.Masked(); m != p {
		return fmt.Errorf("host bits set: the network is %q", m.String())
	}
	if p.Addr().BitLen()-p.Bits() < 2 {
		return fmt.Errorf("too small: no room for a gateway and a container")
	}
	return nil
}

// isName accepts the names berth gives networks and runtimes.
func isName(s string) bool {
	if s == "" || !isAlnum(rune(s[0])) {
		return false
	}
	return !strings.ContainsFunc(s, func(r rune) bool { return !isAlnum(r) && r != '_' && r != '.' && r != '-' })
}

// isNFTName accepts table names the nft command line takes unquoted.
func isNFTName(s string) bool {
	if s == "" || len(s) > maxNFTName || !(isLetter(rune(s[0])) || s[0] == '_') {
		return false
	}
	return !strings.ContainsFunc(s, func(r rune) bool { return !isAlnum(r) && r != '_' && r != '.' && r != '-' })
}

func isLetter(r rune) bool { return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' }

func isAlnum(r rune) bool { return isLetter(r) || r >= '0' && r <= '9' }
