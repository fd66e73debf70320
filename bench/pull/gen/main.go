// Command gen builds the pull benchmark's image and pushes it to a
// registry: five gzip layers of about 170 MB compressed in all, each a
// different kind of content a real image has:
//
//  1. random bytes (incompressible: downloads dominate),
//  2. base64 text of random bytes (compresses ~25%: decompression),
//  3. many small files (20 000 files of 0.5-4 KiB: file creation),
//  4. source-like text (Go files of the toolchain, repeated: the common case),
//  5. a small config layer.
//
// Usage: gen -registry 127.0.0.1:PORT -repo bench/pull -tag 1 [-scale 1.0]
//
// Content is pseudo-random with fixed seeds, so every run pushes the same
// image (same digests).
package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"compress/gzip"
	"github.com/berth-engine/berth/image/reference"
	"github.com/berth-engine/berth/image/remote"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

var mtime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

type layer struct {
	raw, blob []byte
}

func main() {
	reg := flag.String("registry", "", "registry host:port (plain http)")
	repo := flag.String("repo", "bench/pull", "repository")
	tag := flag.String("tag", "1", "tag")
	scale := flag.Float64("scale", 1.0, "size factor")
	flag.Parse()
	if *reg == "" {
		log.Fatal("gen: -registry is required")
	}
	sz := func(n int) int { return int(float64(n) * *scale) }
	builders := []func() []byte{
		func() []byte { return randomLayer(sz(72<<20), 1) },
		func() []byte { return base64Layer(sz(64<<20), 2) },
		func() []byte { return smallFilesLayer(sz(20000), 3) },
		func() []byte { return sourceLayer(sz(170 << 20)) },
		func() []byte { return configLayer() },
	}
	var layers []layer
	var total int64
	for i, b := range builders {
		raw := b()
		blob := gz(raw)
		layers = append(layers, layer{raw, blob})
		total += int64(len(blob))
		log.Printf("layer %d: %d bytes, %d compressed", i+1, len(raw), len(blob))
	}
	log.Printf("image: %d bytes compressed", total)

	created := mtime
	cfg := ocispec.Image{Created: &created, Platform: ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH},
		Config: ocispec.ImageConfig{Cmd: []string{"/bin/sh"}}, RootFS: ocispec.RootFS{Type: "layers"}}
	m := ocispec.Manifest{MediaType: "application/vnd.docker.distribution.manifest.v2+json"}
	m.SchemaVersion = 2
	for _, l := range layers {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, digest.FromBytes(l.raw))
		cfg.History = append(cfg.History, ocispec.History{Created: &created, CreatedBy: "gen"})
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: "application/vnd.docker.image.rootfs.diff.tar.gzip", Digest: digest.FromBytes(l.blob), Size: int64(len(l.blob))})
	}
	cfgData, _ := json.Marshal(cfg)
	m.Config = ocispec.Descriptor{MediaType: "application/vnd.docker.container.image.v1+json", Digest: digest.FromBytes(cfgData), Size: int64(len(cfgData))}
	mData, _ := json.Marshal(m)

	ctx := context.Background()
	ref, err := reference.Parse(*reg + "/" + *repo + ":" + *tag)
	if err != nil {
		log.Fatal(err)
	}
	c := remote.New(remote.Options{})
	push := func(d ocispec.Descriptor, data []byte) {
		open := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
		if _, err := c.PushBlob(ctx, ref, d, open, nil); err != nil {
			log.Fatal(err)
		}
	}
	for i, l := range layers {
		push(m.Layers[i], l.blob)
	}
	push(m.Config, cfgData)
	d, err := c.PushManifest(ctx, ref, m.MediaType, mData)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s %s %d\n", ref.String(), d, total)
}

func gz(raw []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
	zw.Write(raw)
	zw.Close()
	return buf.Bytes()
}

type tarBuilder struct {
	buf bytes.Buffer
	tw  *tar.Writer
}

func newTar() *tarBuilder {
	t := &tarBuilder{}
	t.tw = tar.NewWriter(&t.buf)
	return t
}

func (t *tarBuilder) dir(name string) {
	t.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o755, ModTime: mtime})
}

func (t *tarBuilder) file(name string, data []byte) {
	t.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: mtime})
	t.tw.Write(data)
}

func (t *tarBuilder) bytes() []byte {
	t.tw.Close()
	return t.buf.Bytes()
}

func randomLayer(n int, seed int64) []byte {
	r := rand.New(rand.NewSource(seed))
	t := newTar()
	t.dir("random")
	for i := 0; n > 0; i++ {
		chunk := min(n, 8<<20)
		data := make([]byte, chunk)
		r.Read(data)
		t.file(fmt.Sprintf("random/blob%02d.bin", i), data)
		n -= chunk
	}
	return t.bytes()
}

func base64Layer(n int, seed int64) []byte {
	r := rand.New(rand.NewSource(seed))
	t := newTar()
	t.dir("text")
	for i := 0; n > 0; i++ {
		chunk := min(n, 4<<20)
		raw := make([]byte, chunk*3/4)
		r.Read(raw)
		t.file(fmt.Sprintf("text/b64-%02d.txt", i), []byte(base64.StdEncoding.EncodeToString(raw)))
		n -= chunk
	}
	return t.bytes()
}

func smallFilesLayer(count int, seed int64) []byte {
	r := rand.New(rand.NewSource(seed))
	t := newTar()
	t.dir("small")
	words := strings.Fields("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau upsilon")
	for d := 0; d < count/100+1; d++ {
		t.dir(fmt.Sprintf("small/d%03d", d))
	}
	for i := 0; i < count; i++ {
		size := 512 + r.Intn(3584)
		var b strings.Builder
		for b.Len() < size {
			b.WriteString(words[r.Intn(len(words))])
			b.WriteByte(' ')
		}
		t.file(fmt.Sprintf("small/d%03d/f%05d.txt", i/100, i), []byte(b.String()))
	}
	return t.bytes()
}

// sourceLayer packs the Go toolchain's .go sources, repeated up to n
// bytes (parent directories are implicit, as in many real layers).
func sourceLayer(n int) []byte {
	root := goroot()
	var files []string
	filepath.WalkDir(filepath.Join(root, "src"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".go") {
			files = append(files, p)
		}
		return nil
	})
	t := newTar()
	written := 0
	for round := 0; written < n && len(files) > 0; round++ {
		for _, f := range files {
			if written >= n {
				break
			}
			data, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			rel, _ := filepath.Rel(root, f)
			t.file(fmt.Sprintf("src/r%d/%s", round, rel), data)
			written += len(data)
		}
	}
	return t.bytes()
}

func configLayer() []byte {
	t := newTar()
	t.dir("etc")
	t.file("etc/hostname", []byte("bench\n"))
	t.file("etc/os-release", []byte("ID=bench\n"))
	return t.bytes()
}

// goroot returns the Go toolchain's root (`go env GOROOT`), whose sources
// make the source-text layer.
func goroot() string {
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		log.Fatalf("gen: go env GOROOT: %v", err)
	}
	return strings.TrimSpace(string(out))
}
