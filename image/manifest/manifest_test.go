package manifest

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// obj is a JSON object built in tests; documents are written the way
// registries serve them, not through the Go types under test.
type obj = map[string]any

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func desc(mediaType, content string) obj {
	return obj{"mediaType": mediaType, "digest": digest.FromString(content).String(), "size": len(content)}
}

func with(o obj, kv ...any) obj {
	c := obj{}
	for k, v := range o {
		c[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(c, kv[i].(string))
		} else {
			c[kv[i].(string)] = kv[i+1]
		}
	}
	return c
}

func ociManifest() obj {
	return obj{
		"schemaVersion": 2,
		"mediaType":     MediaTypeOCIManifest,
		"config":        desc(MediaTypeOCIConfig, "config"),
		"layers": []any{
			desc(MediaTypeOCILayerGzip, "layer1"),
			desc(MediaTypeOCILayerZstd, "layer2"),
			desc(MediaTypeOCILayer, "layer3"),
		},
		"annotations": obj{"org.opencontainers.image.created": "2024-01-01T00:00:00Z"},
	}
}

func dockerManifest() obj {
	return obj{
		"schemaVersion": 2,
		"mediaType":     MediaTypeDockerManifest,
		"config":        desc(MediaTypeDockerConfig, "config"),
		"layers": []any{
			with(desc(MediaTypeDockerForeignLayer, "windows-base"),
				"urls", []any{"https://mcr.microsoft.com/v2/windows/servercore/blobs/sha256:0"}),
			desc(MediaTypeDockerLayer, "layer"),
		},
	}
}

func plat(os, arch, variant string) obj {
	p := obj{"os": os, "architecture": arch}
	if variant != "" {
		p["variant"] = variant
	}
	return p
}

func entry(mediaType, name string, platform obj) obj {
	d := desc(mediaType, name)
	if platform != nil {
		d["platform"] = platform
	}
	return d
}

// buildkitIndex is shaped like what `docker buildx build --platform
// linux/amd64,linux/arm64,linux/arm/v7 --push` produces: one attestation
// manifest per image, each for platform unknown/unknown.
func buildkitIndex() obj {
	var ms []any
	for _, p := range []obj{plat("linux", "amd64", ""), plat("linux", "arm64", ""), plat("linux", "arm", "v7")} {
		name := p["os"].(string) + p["architecture"].(string)
		ms = append(ms, entry(MediaTypeOCIManifest, name, p))
	}
	for _, m := range ms[:3] {
		att := entry(MediaTypeOCIManifest, "att-"+m.(obj)["digest"].(string), plat("unknown", "unknown", ""))
		att["annotations"] = obj{
			"vnd.docker.reference.digest": m.(obj)["digest"],
			"vnd.docker.reference.type":   "attestation-manifest",
		}
		ms = append(ms, att)
	}
	return obj{"schemaVersion": 2, "mediaType": MediaTypeOCIIndex, "manifests": ms}
}

// dockerList is shaped like the manifest list of an official Docker Hub
// image (busybox) with its arm variants.
func dockerList() obj {
	var ms []any
	for _, p := range []obj{
		plat("linux", "amd64", ""), plat("linux", "arm", "v5"), plat("linux", "arm", "v6"),
		plat("linux", "arm", "v7"), plat("linux", "arm64", "v8"), plat("linux", "386", ""),
		plat("linux", "ppc64le", ""), plat("linux", "riscv64", ""),
		with(plat("windows", "amd64", ""), "os.version", "10.0.17763.5696"),
		with(plat("windows", "amd64", ""), "os.version", "10.0.20348.2402"),
	} {
		ms = append(ms, entry(MediaTypeDockerManifest, mustString(p), p))
	}
	return obj{"schemaVersion": 2, "mediaType": MediaTypeDockerManifestList, "manifests": ms}
}

func mustString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestDecode(t *testing.T) {
	noMT := with(ociManifest(), "mediaType", nil)
	idxNoMT := with(buildkitIndex(), "mediaType", nil)
	tests := []struct {
		name      string
		mediaType string
		doc       obj
		kind      Kind
		layers    int
	}{
		{"oci manifest", MediaTypeOCIManifest, ociManifest(), KindOCIManifest, 3},
		{"oci manifest, content-type params", MediaTypeOCIManifest + "; charset=utf-8", ociManifest(), KindOCIManifest, 3},
		{"oci manifest from mediaType field", "", ociManifest(), KindOCIManifest, 3},
		{"oci manifest from application/json", "application/json", ociManifest(), KindOCIManifest, 3},
		{"oci manifest without mediaType field", MediaTypeOCIManifest, noMT, KindOCIManifest, 3},
		{"oci manifest detected from layers", "", noMT, KindOCIManifest, 3},
		{"oci manifest, empty layers", "", with(noMT, "layers", []any{}), KindOCIManifest, 0},
		{"oci artifact manifest", "", with(ociManifest(), "artifactType", "application/vnd.example+type",
			"config", desc(v1.MediaTypeEmptyJSON, "{}"),
			"layers", []any{desc("application/vnd.example.sig", "x")},
			"subject", desc(MediaTypeOCIManifest, "subject")), KindOCIManifest, 1},
		{"sha512 digests", "", with(ociManifest(),
			"config", obj{"mediaType": MediaTypeOCIConfig, "digest": digest.SHA512.FromString("c").String(), "size": 1}),
			KindOCIManifest, 3},
		{"embedded data", "", with(ociManifest(),
			"config", obj{"mediaType": v1.MediaTypeEmptyJSON, "digest": digest.FromString("{}").String(), "size": 2, "data": "e30="}),
			KindOCIManifest, 3},
		{"docker manifest", MediaTypeDockerManifest, dockerManifest(), KindDockerManifest, 2},
		{"docker manifest detected", "application/octet-stream", dockerManifest(), KindDockerManifest, 2},
		{"oci index", MediaTypeOCIIndex, buildkitIndex(), KindOCIIndex, 0},
		{"oci index detected from manifests", "", idxNoMT, KindOCIIndex, 0},
		{"docker manifest list", MediaTypeDockerManifestList, dockerList(), KindDockerManifestList, 0},
		{"docker manifest list detected", "text/plain", dockerList(), KindDockerManifestList, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Decode(tt.mediaType, mustJSON(t, tt.doc))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if d.Kind != tt.kind || d.MediaType != tt.kind.String() {
				t.Fatalf("kind %v (%s), want %v", d.Kind, d.MediaType, tt.kind)
			}
			if tt.kind.IsIndex() != (d.Index != nil) || tt.kind.IsIndex() == (d.Manifest != nil) {
				t.Fatalf("Manifest %v, Index %v", d.Manifest != nil, d.Index != nil)
			}
			if d.Manifest != nil && len(d.Manifest.Layers) != tt.layers {
				t.Errorf("%d layers, want %d", len(d.Manifest.Layers), tt.layers)
			}
			roundTrip(t, d)
		})
	}
}

func roundTrip(t *testing.T, d *Decoded) {
	t.Helper()
	b, err := d.Encode()
	if err != nil {
		t.Fatal(err)
	}
	again, err := Decode(d.MediaType, b)
	if err != nil {
		t.Fatalf("re-decode of %s: %v", b, err)
	}
	if !reflect.DeepEqual(d, again) {
		t.Fatalf("re-decode differs:\n%+v\n%+v", d, again)
	}
}

func TestDecodeErrors(t *testing.T) {
	m := ociManifest()
	layer := desc(MediaTypeOCILayerGzip, "l")
	layers := func(l obj) obj { return with(m, "layers", []any{l}) }
	tests := []struct {
		name      string
		mediaType string
		data      []byte
		kind      error
		msg       string // substring
	}{
		{"schema1 media type", MediaTypeDockerSchema1, []byte(`{}`), ErrSchema1, ""},
		{"schema1 signed", MediaTypeDockerSchema1Signed, []byte(`{}`), ErrSchema1, ""},
		{"schema1 by schemaVersion", "", []byte(`{"schemaVersion":1,"name":"x","tag":"latest","fsLayers":[]}`), ErrSchema1, ""},
		{"schema1 by schemaVersion, typed", MediaTypeOCIManifest, []byte(`{"schemaVersion":1}`), ErrSchema1, ""},
		{"unknown media type", "application/vnd.example+json", mustJSON(t, m), ErrUnsupportedMediaType, ""},
		{"unknown media type in document", "", mustJSON(t, with(m, "mediaType", "application/x")), ErrUnsupportedMediaType, ""},
		{"malformed media type", "a/b; =", mustJSON(t, m), ErrUnsupportedMediaType, ""},
		{"undetectable", "", []byte(`{"schemaVersion":2}`), ErrUnsupportedMediaType, ""},
		{"ambiguous", "", mustJSON(t, obj{"schemaVersion": 2, "manifests": []any{}, "layers": []any{}}), ErrUnsupportedMediaType, ""},
		{"not json", MediaTypeOCIManifest, []byte(`<html>`), ErrInvalid, ""},
		{"json array", "", []byte(`[]`), ErrInvalid, ""},
		{"media type mismatch", MediaTypeDockerManifest, mustJSON(t, m), ErrInvalid, "document has mediaType"},
		{"schemaVersion missing", "", mustJSON(t, with(m, "schemaVersion", nil)), ErrInvalid, "schemaVersion"},
		{"schemaVersion 3", "", mustJSON(t, with(m, "schemaVersion", 3)), ErrInvalid, "schemaVersion"},
		{"missing config", "", mustJSON(t, with(m, "config", nil)), ErrInvalid, "missing config"},
		{"null config", "", []byte(`{"schemaVersion":2,"mediaType":"` + MediaTypeOCIManifest + `","config":null,"layers":[]}`), ErrInvalid, "missing config"},
		{"config without media type", "", mustJSON(t, with(m, "config", with(desc("", "c"), "mediaType", nil))), ErrInvalid, "config: invalid manifest: missing mediaType"},
		{"layer without digest", "", mustJSON(t, layers(with(layer, "digest", nil))), ErrInvalid, "layer 0"},
		{"layer without size", "", mustJSON(t, layers(with(layer, "size", nil))), ErrInvalid, "missing size"},
		{"layer with null size", "", mustJSON(t, layers(with(layer, "size", json.RawMessage("null")))), ErrInvalid, "missing size"},
		{"negative size", "", mustJSON(t, layers(with(layer, "size", -1))), ErrInvalid, "negative size"},
		{"fractional size", "", mustJSON(t, layers(with(layer, "size", 1.5))), ErrInvalid, ""},
		{"uppercase digest", "", mustJSON(t, layers(with(layer, "digest", "sha256:"+strings.Repeat("A", 64)))), digest.ErrDigestInvalidFormat, ""},
		{"short digest", "", mustJSON(t, layers(with(layer, "digest", "sha256:"+strings.Repeat("a", 63)))), digest.ErrDigestInvalidLength, ""},
		{"sha512 digest of sha256 length", "", mustJSON(t, layers(with(layer, "digest", "sha512:"+strings.Repeat("a", 64)))), digest.ErrDigestInvalidLength, ""},
		{"md5 digest", "", mustJSON(t, layers(with(layer, "digest", "md5:"+strings.Repeat("a", 32)))), digest.ErrDigestUnsupported, ""},
		{"sha384 digest", "", mustJSON(t, layers(with(layer, "digest", digest.SHA384.FromString("x").String()))), digest.ErrDigestUnsupported, ""},
		{"digest without algorithm", "", mustJSON(t, layers(with(layer, "digest", strings.Repeat("a", 64)))), digest.ErrDigestInvalidFormat, ""},
		{"bad url", "", mustJSON(t, layers(with(layer, "urls", []any{"file:///etc/passwd"}))), ErrInvalid, "url"},
		{"data mismatch", "", mustJSON(t, layers(with(layer, "data", "e30="))), ErrInvalid, "embedded data"},
		{"manifest with manifests", MediaTypeOCIManifest, mustJSON(t, with(m, "manifests", []any{})), ErrInvalid, "must not have \"manifests\""},
		{"index with layers", MediaTypeOCIIndex, mustJSON(t, with(buildkitIndex(), "layers", []any{})), ErrInvalid, "must not have"},
		{"index entry without size", "", mustJSON(t, with(buildkitIndex(), "manifests", []any{with(entry(MediaTypeOCIManifest, "x", plat("linux", "amd64", "")), "size", nil)})), ErrInvalid, "manifests[0]"},
		{"index entry platform without os", "", mustJSON(t, with(buildkitIndex(), "manifests", []any{entry(MediaTypeOCIManifest, "x", obj{"architecture": "amd64"})})), ErrInvalid, "platform needs os"},
		{"docker list entry without platform", "", mustJSON(t, with(dockerList(), "manifests", []any{entry(MediaTypeDockerManifest, "x", nil)})), ErrInvalid, "needs a platform"},
		{"subject without digest", "", mustJSON(t, with(m, "subject", obj{"mediaType": MediaTypeOCIManifest, "size": 1})), ErrInvalid, "subject"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Decode(tt.mediaType, tt.data)
			if err == nil {
				t.Fatalf("Decode = %+v, want error", d)
			}
			if !errors.Is(err, tt.kind) {
				t.Errorf("error %q is not %q", err, tt.kind)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not mention %q", err, tt.msg)
			}
		})
	}
}

func TestParseLayer(t *testing.T) {
	tests := []struct {
		mediaType string
		want      Layer
	}{
		{MediaTypeOCILayer, Layer{Compression: Uncompressed}},
		{MediaTypeOCILayerGzip, Layer{Compression: Gzip}},
		{MediaTypeOCILayerZstd, Layer{Compression: Zstd}},
		{MediaTypeDockerLayer, Layer{Compression: Gzip}},
		{MediaTypeOCILayerNonDistributable, Layer{Compression: Uncompressed, NonDistributable: true}},
		{MediaTypeOCILayerNonDistributableGzip, Layer{Compression: Gzip, NonDistributable: true}},
		{MediaTypeOCILayerNonDistributableZstd, Layer{Compression: Zstd, NonDistributable: true}},
		{MediaTypeDockerForeignLayer, Layer{Compression: Gzip, NonDistributable: true}},
	}
	for _, tt := range tests {
		got, err := ParseLayer(Descriptor{MediaType: tt.mediaType})
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseLayer(%s) = %+v, %v; want %+v", tt.mediaType, got, err, tt.want)
		}
		if got.FetchFromURLs() {
			t.Errorf("%s without urls: FetchFromURLs", tt.mediaType)
		}
	}
	for _, mt := range []string{"application/vnd.example.sig", MediaTypeOCIConfig, ""} {
		if _, err := ParseLayer(Descriptor{MediaType: mt}); !errors.Is(err, ErrUnsupportedLayer) {
			t.Errorf("ParseLayer(%q) = %v, want ErrUnsupportedLayer", mt, err)
		}
	}

	// The foreign layer of a Windows-shaped Docker manifest is fetched from
	// its URLs; the ordinary layer from the registry.
	d, err := Decode("", mustJSON(t, dockerManifest()))
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := ParseLayer(d.Manifest.Layers[0])
	if err != nil || !foreign.FetchFromURLs() || foreign.Compression != Gzip || len(foreign.URLs) != 1 {
		t.Errorf("foreign layer: %+v, %v", foreign, err)
	}
	normal, err := ParseLayer(d.Manifest.Layers[1])
	if err != nil || normal.FetchFromURLs() || normal.NonDistributable {
		t.Errorf("normal layer: %+v, %v", normal, err)
	}
}

func FuzzDecode(f *testing.F) {
	for _, doc := range []obj{ociManifest(), dockerManifest(), buildkitIndex(), dockerList(),
		with(ociManifest(), "mediaType", nil), with(buildkitIndex(), "mediaType", nil)} {
		b := mustJSON(f, doc)
		f.Add("", b)
		mt, _ := doc["mediaType"].(string)
		f.Add(mt, b)
	}
	f.Add(MediaTypeDockerSchema1, []byte(`{"schemaVersion":1}`))
	f.Add("application/json", []byte(`{"schemaVersion":2,"config":{"mediaType":"a/b","digest":"sha256:`+strings.Repeat("0", 64)+`","size":0,"data":""}}`))
	f.Fuzz(func(t *testing.T, mediaType string, data []byte) {
		d, err := Decode(mediaType, data)
		if err != nil {
			return
		}
		if (d.Manifest == nil) == (d.Index == nil) || d.Kind.IsIndex() != (d.Index != nil) {
			t.Fatalf("inconsistent result %+v", d)
		}
		roundTrip(t, d)
		if d.Index != nil {
			// Select must not panic on anything Decode accepts.
			_, _ = Select(d.Index, DefaultPlatform())
		}
	})
}
