package manifest

import (
	"cmp"
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// Platform is an image platform: os/architecture[/variant], plus the
// os.version and os.features of Windows images.
type Platform struct {
	OS           string
	Architecture string
	Variant      string
	OSVersion    string   // matched only when set on the wanted platform
	OSFeatures   []string // matched only when set on the wanted platform
}

var (
	// ErrInvalidPlatform is returned by ParsePlatform.
	ErrInvalidPlatform = errors.New("invalid platform")
	// ErrNoMatchingManifest is the kind of the *NoMatchError that Select returns.
	ErrNoMatchingManifest = errors.New("no matching manifest")
)

// NoMatchError is returned by Select when no entry of the index matches. Its
// message is docker's.
type NoMatchError struct {
	Platform Platform
}

// Error returns "no matching manifest for linux/s390x in the manifest list
// entries", docker's wording.
func (e *NoMatchError) Error() string {
	return fmt.Sprintf("no matching manifest for %s in the manifest list entries", e.Platform)
}

// Unwrap returns ErrNoMatchingManifest.
func (e *NoMatchError) Unwrap() error { return ErrNoMatchingManifest }

// String formats the platform as os/architecture[/variant], e.g.
// "linux/arm64/v8" or "linux/amd64".
func (p Platform) String() string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

var knownOS = map[string]bool{
	"aix": true, "android": true, "darwin": true, "dragonfly": true, "freebsd": true,
	"illumos": true, "ios": true, "js": true, "linux": true, "netbsd": true,
	"openbsd": true, "plan9": true, "solaris": true, "wasip1": true, "windows": true,
}

var knownArch = map[string]bool{
	"386": true, "amd64": true, "arm": true, "arm64": true, "loong64": true,
	"mips": true, "mipsle": true, "mips64": true, "mips64le": true, "ppc64": true,
	"ppc64le": true, "riscv64": true, "s390x": true, "wasm": true,
}

var specifier = regexp.MustCompile(`^[a-z0-9_.-]+$`)

// ParsePlatform parses "os/arch[/variant]" (e.g. "linux/arm64/v8",
// "linux/arm/7", "linux/amd64"), as docker's --platform does. A single
// component is an OS (with the host's architecture) or an architecture
// (with the host's OS). Case is ignored and names are normalised: aarch64
// is arm64, x86_64 is amd64, armhf is arm/v7, armel is arm/v6, a missing
// arm variant is v7 and a missing arm64 variant v8.
func ParsePlatform(s string) (Platform, error) {
	parts := strings.Split(strings.ToLower(s), "/")
	for _, part := range parts {
		if !specifier.MatchString(part) {
			return Platform{}, fmt.Errorf("%w %q: each component must match %s", ErrInvalidPlatform, s, specifier)
		}
	}
	var p Platform
	switch len(parts) {
	case 1:
		def := DefaultPlatform()
		if os := normalizeOS(parts[0]); knownOS[os] {
			p = Platform{OS: os, Architecture: def.Architecture, Variant: def.Variant}
		} else if arch, _ := normalizeArch(parts[0], ""); knownArch[arch] {
			p = Platform{OS: def.OS, Architecture: parts[0]}
		} else {
			return Platform{}, fmt.Errorf("%w %q: unknown operating system or architecture", ErrInvalidPlatform, s)
		}
	case 2:
		p = Platform{OS: parts[0], Architecture: parts[1]}
	case 3:
		p = Platform{OS: parts[0], Architecture: parts[1], Variant: parts[2]}
	default:
		return Platform{}, fmt.Errorf("%w %q: want os/arch[/variant]", ErrInvalidPlatform, s)
	}
	return p.Normalize(), nil
}

// DefaultPlatform returns the host's platform: runtime.GOOS and GOARCH, with
// variant v8 on arm64, the GOARM the binary was built for (default v7) on
// arm, and no variant on amd64.
func DefaultPlatform() Platform {
	p := Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}
	if p.Architecture == "arm" {
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "GOARM" {
					p.Variant, _, _ = strings.Cut(s.Value, ",")
				}
			}
		}
	}
	return p.Normalize()
}

// FromOCI converts an image-spec platform; nil gives the zero Platform.
func FromOCI(p *v1.Platform) Platform {
	if p == nil {
		return Platform{}
	}
	return Platform{
		OS: p.OS, Architecture: p.Architecture, Variant: p.Variant,
		OSVersion: p.OSVersion, OSFeatures: slices.Clone(p.OSFeatures),
	}
}

// OCI converts the platform to the image-spec type.
func (p Platform) OCI() v1.Platform {
	return v1.Platform{
		OS: p.OS, Architecture: p.Architecture, Variant: p.Variant,
		OSVersion: p.OSVersion, OSFeatures: slices.Clone(p.OSFeatures),
	}
}

// Normalize returns p with lowercase names and canonical aliases (see
// ParsePlatform).
func (p Platform) Normalize() Platform {
	p.OS = normalizeOS(strings.ToLower(p.OS))
	p.Architecture, p.Variant = normalizeArch(strings.ToLower(p.Architecture), strings.ToLower(p.Variant))
	return p
}

func normalizeOS(os string) string {
	if os == "macos" {
		return "darwin"
	}
	return os
}

func normalizeArch(arch, variant string) (string, string) {
	switch arch {
	case "i386", "i686", "x86":
		return "386", ""
	case "x86_64", "x86-64", "amd64":
		if variant == "v1" || variant == "1" {
			variant = ""
		} else if n, err := strconv.Atoi(variant); err == nil {
			variant = "v" + strconv.Itoa(n)
		}
		return "amd64", variant
	case "aarch64", "arm64":
		switch variant {
		case "", "8", "v8", "v8.0", "8.0":
			variant = "v8"
		case "9", "v9.0", "9.0":
			variant = "v9"
		default:
			if variant[0] >= '0' && variant[0] <= '9' {
				variant = "v" + variant
			}
		}
		return "arm64", variant
	case "armhf":
		return "arm", "v7"
	case "armel":
		return "arm", "v6"
	case "arm":
		switch variant {
		case "", "7":
			variant = "v7"
		case "5", "6", "8":
			variant = "v" + variant
		}
		return "arm", variant
	}
	return arch, variant
}

// version parses "vN" or "vN.M" (the arm, arm64 and amd64 variants).
func version(variant string) (major, minor int, ok bool) {
	rest, found := strings.CutPrefix(variant, "v")
	if !found {
		return 0, 0, false
	}
	maj, min, hasMinor := strings.Cut(rest, ".")
	major, err := strconv.Atoi(maj)
	if err != nil || major < 0 {
		return 0, 0, false
	}
	if hasMinor {
		if minor, err = strconv.Atoi(min); err != nil || minor < 0 {
			return 0, 0, false
		}
	}
	return major, minor, true
}

// Matches reports whether an image built for platform c runs on (or was
// asked for by) p. See Select for the rules.
func (p Platform) Matches(c Platform) bool {
	_, ok := p.match(c)
	return ok
}

// match reports whether c satisfies p and how far c's variant is from p's
// (0 is an exact match; lower is better).
func (p Platform) match(c Platform) (distance int, ok bool) {
	p, c = p.Normalize(), c.Normalize()
	if p.OS != c.OS || p.Architecture != c.Architecture {
		return 0, false
	}
	if p.OSVersion != "" && c.OSVersion != p.OSVersion && !strings.HasPrefix(c.OSVersion, p.OSVersion+".") {
		return 0, false
	}
	for _, f := range p.OSFeatures {
		if !slices.Contains(c.OSFeatures, f) {
			return 0, false
		}
	}
	if p.Variant == c.Variant {
		return 0, true
	}
	switch p.Architecture {
	case "arm", "arm64", "amd64":
		pv, cv := p.Variant, c.Variant
		if p.Architecture == "amd64" { // no variant is v1
			pv, cv = cmp.Or(pv, "v1"), cmp.Or(cv, "v1")
		}
		pmaj, pmin, ok1 := version(pv)
		cmaj, cmin, ok2 := version(cv)
		if !ok1 || !ok2 {
			return 0, false
		}
		if p.Architecture == "arm" && cmaj < 5 {
			return 0, false
		}
		if cmaj > pmaj || cmaj == pmaj && cmin > pmin {
			return 0, false
		}
		return (pmaj-cmaj)*100 + pmin - cmin, true
	}
	if p.Variant == "" { // no variant asked for: any, the variantless first
		return 1, true
	}
	return 0, false
}

// attestation reports whether an index entry is a BuildKit attestation
// manifest (platform unknown/unknown), which is never an image to run.
func attestation(d *Descriptor) bool {
	if d.Annotations["vnd.docker.reference.type"] == "attestation-manifest" {
		return true
	}
	return d.Platform != nil && d.Platform.OS == "unknown" && d.Platform.Architecture == "unknown"
}

// Select returns the index entry to pull for platform want, with docker's
// rules (those of containerd's platforms.Only):
//
//   - only image manifests (OCI or Docker schema 2) with a platform are
//     candidates; BuildKit attestation manifests (unknown/unknown) are skipped;
//   - os and architecture must be equal (after normalisation);
//   - variants: arm64 without a variant is v8 and arm's is v7; an arm host
//     runs its own variant and older ones down to v5 (v7 runs v6 and v5),
//     arm64 runs its own (major, minor) version or older, and amd64 runs its
//     level or lower (v3 runs v2 and plain amd64) — so plain amd64 matches only
//     entries without a variant (or v1). The closest variant wins, then the
//     earliest entry;
//   - os.version and os.features are compared only when want sets them
//     (os.version as a prefix: "10.0.17763" matches "10.0.17763.1234").
//
// Entries without a platform would need their config fetched to be judged;
// Select does not consider them.
func Select(index *Index, want Platform) (Descriptor, error) {
	want = want.Normalize()
	best, bestDist := -1, 0
	for i := range index.Manifests {
		d := &index.Manifests[i]
		if d.Platform == nil || attestation(d) ||
			d.MediaType != MediaTypeOCIManifest && d.MediaType != MediaTypeDockerManifest {
			continue
		}
		dist, ok := want.match(FromOCI(d.Platform))
		if ok && (best < 0 || dist < bestDist) {
			best, bestDist = i, dist
		}
	}
	if best < 0 {
		return Descriptor{}, &NoMatchError{Platform: want}
	}
	return index.Manifests[best], nil
}
