package manifest

import (
	"errors"
	"runtime"
	"testing"
)

func TestParsePlatform(t *testing.T) {
	def := DefaultPlatform()
	tests := []struct {
		in   string
		want string
	}{
		{"linux/amd64", "linux/amd64"},
		{"linux/amd64/v1", "linux/amd64"},
		{"linux/amd64/v3", "linux/amd64/v3"},
		{"Linux/X86_64", "linux/amd64"},
		{"linux/arm64", "linux/arm64/v8"},
		{"linux/arm64/v8", "linux/arm64/v8"},
		{"linux/aarch64", "linux/arm64/v8"},
		{"linux/arm64/8", "linux/arm64/v8"},
		{"linux/arm", "linux/arm/v7"},
		{"linux/arm/7", "linux/arm/v7"},
		{"linux/arm/v6", "linux/arm/v6"},
		{"linux/armhf", "linux/arm/v7"},
		{"linux/armel", "linux/arm/v6"},
		{"linux/i386", "linux/386"},
		{"linux/s390x", "linux/s390x"},
		{"windows/amd64", "windows/amd64"},
		{"linux", "linux/" + def.Architecture + slashed(def.Variant)},
		{"arm64", runtime.GOOS + "/arm64/v8"},
	}
	for _, tt := range tests {
		p, err := ParsePlatform(tt.in)
		if err != nil {
			t.Errorf("ParsePlatform(%q): %v", tt.in, err)
			continue
		}
		if p.String() != tt.want {
			t.Errorf("ParsePlatform(%q) = %s, want %s", tt.in, p, tt.want)
		}
		if again, err := ParsePlatform(p.String()); err != nil || again.String() != p.String() {
			t.Errorf("ParsePlatform(%q) = %s, %v", p, again, err)
		}
	}
	for _, bad := range []string{"", "/", "linux/", "linux/amd64/v2/x", "linux amd64", "nonsense", "linux/am d64"} {
		if p, err := ParsePlatform(bad); !errors.Is(err, ErrInvalidPlatform) {
			t.Errorf("ParsePlatform(%q) = %v, %v; want ErrInvalidPlatform", bad, p, err)
		}
	}
}

func slashed(s string) string {
	if s == "" {
		return ""
	}
	return "/" + s
}

func TestDefaultPlatform(t *testing.T) {
	p := DefaultPlatform()
	if p.OS != runtime.GOOS || p.Architecture != runtime.GOARCH {
		t.Errorf("DefaultPlatform() = %s", p)
	}
	switch runtime.GOARCH {
	case "amd64":
		if p.Variant != "" {
			t.Errorf("amd64 variant %q, want none", p.Variant)
		}
	case "arm64":
		if p.Variant != "v8" {
			t.Errorf("arm64 variant %q, want v8", p.Variant)
		}
	}
}

func TestSelect(t *testing.T) {
	bk, err := Decode("", mustJSON(t, buildkitIndex()))
	if err != nil {
		t.Fatal(err)
	}
	list, err := Decode("", mustJSON(t, dockerList()))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		index *Index
		want  Platform
		// platform of the selected entry (its string form), or "" for no match
		got       string
		osVersion string
	}{
		{"buildkit amd64", bk.Index, Platform{OS: "linux", Architecture: "amd64"}, "linux/amd64", ""},
		{"buildkit arm64 defaults to v8", bk.Index, Platform{OS: "linux", Architecture: "arm64"}, "linux/arm64", ""},
		{"buildkit arm64/v8 matches no variant", bk.Index, Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}, "linux/arm64", ""},
		{"buildkit arm/v7", bk.Index, Platform{OS: "linux", Architecture: "arm", Variant: "v7"}, "linux/arm/v7", ""},
		{"buildkit arm/v8 runs v7", bk.Index, Platform{OS: "linux", Architecture: "arm", Variant: "v8"}, "linux/arm/v7", ""},
		{"buildkit arm/v6 cannot run v7", bk.Index, Platform{OS: "linux", Architecture: "arm", Variant: "v6"}, "", ""},
		{"buildkit amd64/v3 runs plain amd64", bk.Index, Platform{OS: "linux", Architecture: "amd64", Variant: "v3"}, "linux/amd64", ""},
		{"attestations never selected", bk.Index, Platform{OS: "unknown", Architecture: "unknown"}, "", ""},
		{"s390x", bk.Index, Platform{OS: "linux", Architecture: "s390x"}, "", ""},
		{"windows not linux", bk.Index, Platform{OS: "windows", Architecture: "amd64"}, "", ""},

		{"list amd64", list.Index, Platform{OS: "linux", Architecture: "amd64"}, "linux/amd64", ""},
		{"list arm (v7)", list.Index, Platform{OS: "linux", Architecture: "arm"}, "linux/arm/v7", ""},
		{"list arm/v6", list.Index, Platform{OS: "linux", Architecture: "arm", Variant: "v6"}, "linux/arm/v6", ""},
		{"list arm/v5", list.Index, Platform{OS: "linux", Architecture: "arm", Variant: "v5"}, "linux/arm/v5", ""},
		{"list armhf alias", list.Index, Platform{OS: "linux", Architecture: "armhf"}, "linux/arm/v7", ""},
		{"list aarch64 alias", list.Index, Platform{OS: "linux", Architecture: "aarch64"}, "linux/arm64/v8", ""},
		{"list arm64/v9 runs v8", list.Index, Platform{OS: "linux", Architecture: "arm64", Variant: "v9"}, "linux/arm64/v8", ""},
		{"list 386", list.Index, Platform{OS: "linux", Architecture: "386"}, "linux/386", ""},
		{"list riscv64", list.Index, Platform{OS: "linux", Architecture: "riscv64"}, "linux/riscv64", ""},
		{"list s390x", list.Index, Platform{OS: "linux", Architecture: "s390x"}, "", ""},
		{"list windows, first entry", list.Index, Platform{OS: "windows", Architecture: "amd64"}, "windows/amd64", "10.0.17763.5696"},
		{"list windows os.version", list.Index, Platform{OS: "windows", Architecture: "amd64", OSVersion: "10.0.20348"}, "windows/amd64", "10.0.20348.2402"},
		{"list windows os.version absent", list.Index, Platform{OS: "windows", Architecture: "amd64", OSVersion: "10.0.14393"}, "", ""},
		{"list os.features absent", list.Index, Platform{OS: "linux", Architecture: "amd64", OSFeatures: []string{"win32k"}}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Select(tt.index, tt.want)
			if tt.got == "" {
				var nm *NoMatchError
				if !errors.Is(err, ErrNoMatchingManifest) || !errors.As(err, &nm) {
					t.Fatalf("Select = %+v, %v; want no match", d.Platform, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Select: %v", err)
			}
			if got := FromOCI(d.Platform); got.String() != tt.got || got.OSVersion != tt.osVersion {
				t.Errorf("selected %s (%s), want %s (%s)", got, got.OSVersion, tt.got, tt.osVersion)
			}
		})
	}
}

func TestSelectPrefersClosestVariant(t *testing.T) {
	idx := &Index{Manifests: []Descriptor{}}
	for _, p := range []Platform{
		{OS: "linux", Architecture: "arm", Variant: "v5"},
		{OS: "linux", Architecture: "arm", Variant: "v6"},
		{OS: "linux", Architecture: "amd64"},
		{OS: "linux", Architecture: "amd64", Variant: "v2"},
		{OS: "linux", Architecture: "amd64", Variant: "v4"},
	} {
		oci := p.OCI()
		idx.Manifests = append(idx.Manifests, Descriptor{MediaType: MediaTypeOCIManifest, Platform: &oci})
	}
	for want, got := range map[string]string{
		"linux/arm/v7":   "linux/arm/v6",
		"linux/arm/v6":   "linux/arm/v6",
		"linux/arm/v5":   "linux/arm/v5",
		"linux/amd64":    "linux/amd64",
		"linux/amd64/v2": "linux/amd64/v2",
		"linux/amd64/v3": "linux/amd64/v2",
		"linux/amd64/v4": "linux/amd64/v4",
	} {
		p, err := ParsePlatform(want)
		if err != nil {
			t.Fatal(err)
		}
		d, err := Select(idx, p)
		if err != nil || FromOCI(d.Platform).String() != got {
			t.Errorf("Select(%s) = %v, %v; want %s", want, d.Platform, err, got)
		}
	}
}

func TestNoMatchMessage(t *testing.T) {
	_, err := Select(&Index{}, Platform{OS: "linux", Architecture: "s390x"})
	if want := "no matching manifest for linux/s390x in the manifest list entries"; err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
	_, err = Select(&Index{}, Platform{OS: "linux", Architecture: "arm64"})
	if want := "no matching manifest for linux/arm64/v8 in the manifest list entries"; err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
}

func TestSelectSkipsNonManifests(t *testing.T) {
	amd := Platform{OS: "linux", Architecture: "amd64"}.OCI()
	idx := &Index{Manifests: []Descriptor{
		{MediaType: MediaTypeOCIIndex, Platform: &amd},              // nested index
		{MediaType: "application/vnd.example+json", Platform: &amd}, // unknown
		{MediaType: MediaTypeOCIManifest},                           // no platform
		{MediaType: MediaTypeDockerManifest, Platform: &amd, Size: 7},
	}}
	d, err := Select(idx, Platform{OS: "linux", Architecture: "amd64"})
	if err != nil || d.Size != 7 {
		t.Errorf("Select = %+v, %v", d, err)
	}
}
