// Package config loads berth's configuration file, by default
// /etc/berth/berth.toml. docs/config.md describes every key.
//
// The file is TOML and strict: a key berth does not know is an error, so a
// typo never silently leaves a setting at its default. Keys the file leaves
// out keep the values of Default. The file carries a format version; a
// version this berth does not know is rejected rather than half understood.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"

	toml "github.com/pelletier/go-toml/v2"
)

// DefaultPath is where berth looks for its configuration file when no path
// is given.
const DefaultPath = "/etc/berth/berth.toml"

// CurrentVersion is the configuration format version this berth reads and
// writes.
const CurrentVersion = 1

var (
	// ErrUnknownKey is wrapped by Load and Parse errors for keys that are
	// not part of the configuration format.
	ErrUnknownKey = errors.New("unknown configuration key")
	// ErrUnsupportedVersion is wrapped by errors for a file whose version
	// this berth does not read.
	ErrUnsupportedVersion = errors.New("unsupported configuration version")
	// ErrInvalid is wrapped by errors for values that are malformed or out
	// of range, and for files that are not valid TOML.
	ErrInvalid = errors.New("invalid configuration")
)

// Config is berth's configuration.
type Config struct {
	// Version is the format version of the file (key "version"). A file
	// without it is read as CurrentVersion.
	Version int `toml:"version"`
	// Storage configures where and how image layers and container root
	// file systems are kept ([storage]).
	Storage Storage `toml:"storage"`
	// Registries configures how registries are reached ([registry]).
	Registries Registries `toml:"registry"`
	// Engine configures containers and the runtimes that run them
	// ([engine]).
	Engine Engine `toml:"engine"`
	// Network configures the default container network ([network]).
	Network Network `toml:"network"`
}

// Storage drivers.
const (
	// DriverAuto picks overlay when the kernel and backing file system
	// support it, native otherwise.
	DriverAuto = ""
	// DriverOverlay stacks layers with overlayfs.
	DriverOverlay = "overlay"
	// DriverNative copies layers into plain directories; it works on any
	// file system but costs space and time.
	DriverNative = "native"
)

// Storage is the [storage] table.
type Storage struct {
	// Driver is the snapshot driver: DriverOverlay, DriverNative or
	// DriverAuto.
	Driver string `toml:"driver"`
}

// Registries is the [registry] table.
type Registries struct {
	// CertsDir holds a directory of CA certificates per registry,
	// <CertsDir>/<host[:port]>/ca.crt, as docker's /etc/docker/certs.d.
	// Empty disables the lookup.
	CertsDir string `toml:"certs_dir"`
	// Hosts holds per-registry settings, keyed by host[:port] as it
	// appears in image references ("docker.io", "localhost:5000").
	Hosts map[string]RegistryHostConfig `toml:"hosts"`
}

// RegistryHostConfig is a [registry.hosts."HOST"] table: the settings of
// one registry, as written in the file. Config.Registry resolves them.
type RegistryHostConfig struct {
	// Mirrors are tried in order before the registry itself when pulling:
	// "host[:port]", "https://host[:port]" or "http://host[:port]".
	Mirrors []string `toml:"mirrors"`
	// Insecure allows plain HTTP and TLS certificates that do not verify.
	// Unset, it is true for loopback registries (localhost, 127.0.0.0/8,
	// ::1) and false for all others, as in docker.
	Insecure *bool `toml:"insecure"`
	// CADir overrides <certs_dir>/<host> as the directory of the
	// registry's CA certificates.
	CADir string `toml:"ca_dir"`
}

// BuiltinRuntime is the name of berth's own OCI runtime, which is always
// available.
const BuiltinRuntime = "berth"

// Engine is the [engine] table.
type Engine struct {
	// CgroupParent is the cgroup under which every container's cgroup is
	// created. It is host-global: two berth roots on one host need
	// different values.
	CgroupParent string `toml:"cgroup_parent"`
	// DefaultRuntime names the OCI runtime used when a container does not
	// choose one: BuiltinRuntime or a key of Runtimes.
	DefaultRuntime string `toml:"default_runtime"`
	// Runtimes are additional OCI runtimes selectable with --runtime, keyed
	// by name. An entry named BuiltinRuntime relocates berth's own runtime
	// binary.
	Runtimes map[string]Runtime `toml:"runtimes"`
}

// Runtime is an [engine.runtimes.NAME] table.
type Runtime struct {
	// Path is the runtime binary: an absolute path, or a bare command name
	// looked up in $PATH when the runtime is used.
	Path string `toml:"path"`
}

// Network is the [network] table.
type Network struct {
	// DefaultNetwork is the network containers join when they name none.
	DefaultNetwork string `toml:"default_network"`
	// BridgeName is the Linux interface name of the default network's
	// bridge. It is host-global.
	BridgeName string `toml:"bridge_name"`
	// Subnet is the default network's IP range in CIDR notation.
	Subnet string `toml:"subnet"`
	// NFTTable is the nftables table holding berth's NAT and filter rules.
	// It is host-global.
	NFTTable string `toml:"nft_table"`
}

// Default returns the configuration berth uses when the file sets nothing.
func Default() *Config {
	return &Config{
		Version: CurrentVersion,
		Storage: Storage{Driver: DriverAuto},
		Registries: Registries{
			CertsDir: "/etc/berth/certs.d",
			Hosts:    map[string]RegistryHostConfig{},
		},
		Engine: Engine{
			CgroupParent:   "berth",
			DefaultRuntime: BuiltinRuntime,
			Runtimes:       map[string]Runtime{},
		},
		Network: Network{
			DefaultNetwork: "bridge",
			BridgeName:     "berth0",
			Subnet:         "10.88.0.0/16",
			NFTTable:       "berth",
		},
	}
}

// Load reads the configuration file at path (DefaultPath if empty) over
// Default and validates the result. explicit says whether the user named
// the file: a missing file the user named is an error wrapping
// fs.ErrNotExist, while a missing default file just means the defaults.
func Load(path string, explicit bool) (*Config, error) {
	if path == "" {
		path = DefaultPath
	}
	data, err := os.ReadFile(path)
	if err != nil {
		if !explicit && errors.Is(err, fs.ErrNotExist) {
			return Default(), nil
		}
		return nil, fmt.Errorf("load config: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes a configuration file's contents over Default and validates
// the result.
func Parse(data []byte) (*Config, error) {
	// Check the version before anything else: a file written for a newer
	// berth likely has keys this one does not know, and its version is what
	// the user needs to hear about.
	var header struct {
		Version *int `toml:"version"`
	}
	if err := toml.Unmarshal(data, &header); err != nil {
		return nil, decodeError(err)
	}
	if header.Version != nil && *header.Version != CurrentVersion {
		return nil, versionError(*header.Version)
	}

	c := Default()
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		return nil, decodeError(err)
	}
	// go-toml matches keys to fields regardless of case; TOML keys are
	// case-sensitive, so a differently spelt key is unknown here too.
	var doc map[string]any
	if err := toml.Unmarshal(data, &doc); err != nil {
		return nil, decodeError(err)
	}
	if miscased := checkKeyCase(doc, reflect.TypeFor[Config](), nil); len(miscased) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrUnknownKey, strings.Join(miscased, ", "))
	}

	if err := c.Validate(); err != nil {
		return nil, err
	}
	c.normalizeHosts()
	return c, nil
}

func versionError(v int) error {
	return fmt.Errorf("%w %d (this berth reads version %d)", ErrUnsupportedVersion, v, CurrentVersion)
}

// decodeError turns a go-toml error into one that names the key and line.
func decodeError(err error) error {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		keys := make([]string, 0, len(strict.Errors))
		for _, e := range strict.Errors {
			line, _ := e.Position()
			keys = append(keys, fmt.Sprintf("%s (line %d)", formatKey(e.Key()), line))
		}
		return fmt.Errorf("%w: %s", ErrUnknownKey, strings.Join(keys, ", "))
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		line, col := de.Position()
		msg := strings.TrimPrefix(de.Error(), "toml: ")
		if key := de.Key(); len(key) > 0 {
			return fmt.Errorf("%w: line %d, column %d: %s: %s", ErrInvalid, line, col, formatKey(key), msg)
		}
		return fmt.Errorf("%w: line %d, column %d: %s", ErrInvalid, line, col, msg)
	}
	return fmt.Errorf("%w: %w", ErrInvalid, err)
}

// checkKeyCase returns the keys of doc, decoded as t, that name a field
// only when case is ignored, each with the spelling it should have.
func checkKeyCase(doc map[string]any, t reflect.Type, path []string) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var miscased []string
	for _, key := range slices.Sorted(maps.Keys(doc)) {
		keyPath := append(slices.Clip(path), key)
		var elem reflect.Type
		switch t.Kind() {
		case reflect.Map:
			elem = t.Elem()
		case reflect.Struct:
			field, ok := tomlField(t, key)
			if !ok {
				if want, ok := tomlFieldFold(t, key); ok {
					miscased = append(miscased, fmt.Sprintf("%s (keys are case-sensitive: %s)",
						formatKey(keyPath), formatKey(append(slices.Clip(path), want))))
				}
				continue
			}
			elem = field.Type
		default:
			continue
		}
		if sub, ok := doc[key].(map[string]any); ok {
			miscased = append(miscased, checkKeyCase(sub, elem, keyPath)...)
		}
	}
	return miscased
}

// tomlField returns the field of struct type t whose toml tag is key.
func tomlField(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if name, _, _ := strings.Cut(f.Tag.Get("toml"), ","); name == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// tomlFieldFold returns the toml key of the field of t that matches key
// when case is ignored.
func tomlFieldFold(t reflect.Type, key string) (string, bool) {
	for i := range t.NumField() {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("toml"), ","); strings.EqualFold(name, key) {
			return name, true
		}
	}
	return "", false
}

// formatKey writes a key path as TOML would: registry.hosts."docker.io".
func formatKey(key []string) string {
	parts := make([]string, len(key))
	for i, k := range key {
		if isBareKey(k) {
			parts[i] = k
		} else {
			parts[i] = strconv.Quote(k)
		}
	}
	return strings.Join(parts, ".")
}

func isBareKey(k string) bool {
	if k == "" {
		return false
	}
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}
