//go:build integration

package interop_test

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"testing"
	"time"
)

// busyboxApplets are linked to /bin/busybox in the image.
var busyboxApplets = []string{
	"sh", "echo", "cat", "sleep", "ls", "tty", "stty", "test", "[", "true",
	"false", "id", "env", "grep", "head", "tr", "printf", "mkdir", "rm",
}

var imageTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// staticBusybox returns the path of a statically linked busybox
// (busybox-static): the image has no shared libraries.
func staticBusybox(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		f, err := elf.Open(p)
		if err != nil {
			continue
		}
		static := true
		for _, prog := range f.Progs {
			if prog.Type == elf.PT_INTERP {
				static = false
			}
		}
		f.Close()
		if static {
			return p
		}
	}
	unavailable(t, "no statically linked busybox (apt-get install busybox-static)")
	return ""
}

// buildLayer returns an uncompressed tar of a minimal root file system:
// busybox-static, its applet links, and the directories and files that
// the engines expect.
func buildLayer(busybox string) ([]byte, error) {
	bb, err := os.ReadFile(busybox)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := func(h *tar.Header) error {
		h.ModTime = imageTime
		h.Format = tar.FormatPAX
		return tw.WriteHeader(h)
	}
	for _, d := range []string{"bin", "dev", "etc", "proc", "root", "run", "sys", "tmp", "var"} {
		mode := int64(0o755)
		if d == "tmp" {
			mode = 0o1777
		}
		if err := hdr(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: mode}); err != nil {
			return nil, err
		}
	}
	if err := hdr(&tar.Header{Typeflag: tar.TypeReg, Name: "bin/busybox", Mode: 0o755, Size: int64(len(bb))}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(bb); err != nil {
		return nil, err
	}
	for _, a := range busyboxApplets {
		if err := hdr(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + a, Linkname: "busybox", Mode: 0o777}); err != nil {
			return nil, err
		}
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
		"etc/group":  "root:x:0:\nnogroup:x:65534:\n",
	}
	for _, name := range []string{"etc/group", "etc/passwd"} {
		body := files[name]
		if err := hdr(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body))}); err != nil {
			return nil, err
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// dockerArchive wraps one uncompressed layer into a docker-archive (the
// `docker save` format: manifest.json, an image config and the layer),
// which `ctr images import` and `docker load` accept.
func dockerArchive(layer []byte, repoTag string) ([]byte, error) {
	sum := sha256.Sum256(layer)
	layerHex := hex.EncodeToString(sum[:])
	config := map[string]any{
		"architecture": goruntime.GOARCH,
		"os":           "linux",
		"created":      imageTime.Format(time.RFC3339),
		"config": map[string]any{
			"Env":        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			"Cmd":        []string{"/bin/sh"},
			"WorkingDir": "/",
		},
		"rootfs": map[string]any{
			"type":     "layers",
			"diff_ids": []string{"sha256:" + layerHex},
		},
		"history": []map[string]any{{
			"created":    imageTime.Format(time.RFC3339),
			"created_by": "berth interop test: busybox-static",
		}},
	}
	configJSON, err := json.Marshal(config)
	if err != nil {
		return nil, err
	}
	csum := sha256.Sum256(configJSON)
	configName := hex.EncodeToString(csum[:]) + ".json"
	layerName := layerHex + "/layer.tar"
	manifest, err := json.Marshal([]map[string]any{{
		"Config":   configName,
		"RepoTags": []string{repoTag},
		"Layers":   []string{layerName},
	}})
	if err != nil {
		return nil, err
	}

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, body []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body)), ModTime: imageTime}); err != nil {
			return err
		}
		_, err := tw.Write(body)
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: layerHex + "/", Mode: 0o755, ModTime: imageTime}); err != nil {
		return nil, err
	}
	if err := add(layerName, layer); err != nil {
		return nil, err
	}
	if err := add(configName, configJSON); err != nil {
		return nil, err
	}
	if err := add("manifest.json", manifest); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeImageFiles writes the root file system tarball (for `podman import`
// and `docker import`) and the docker-archive (for `ctr images import`)
// into dir.
func writeImageFiles(t *testing.T, dir, repoTag string) (rootfsTar, archive string) {
	t.Helper()
	layer, err := buildLayer(staticBusybox(t))
	if err != nil {
		t.Fatalf("build image layer: %v", err)
	}
	arch, err := dockerArchive(layer, repoTag)
	if err != nil {
		t.Fatalf("build docker-archive: %v", err)
	}
	rootfsTar = filepath.Join(dir, "rootfs.tar")
	archive = filepath.Join(dir, "image-docker-archive.tar")
	if err := os.WriteFile(rootfsTar, layer, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(archive, arch, 0o644); err != nil {
		t.Fatal(err)
	}
	return rootfsTar, archive
}

// TestImageBuilder checks the archive builder itself, without any peer.
func TestImageBuilder(t *testing.T) {
	layer, err := buildLayer(staticBusybox(t))
	if err != nil {
		t.Fatal(err)
	}
	arch, err := dockerArchive(layer, "localhost/x:latest")
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(bytes.NewReader(arch))
	names := map[string][]byte{}
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		var b bytes.Buffer
		_, _ = b.ReadFrom(tr)
		names[h.Name] = b.Bytes()
	}
	var manifest []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(names["manifest.json"], &manifest); err != nil || len(manifest) != 1 {
		t.Fatalf("manifest.json: %v %q", err, names["manifest.json"])
	}
	m := manifest[0]
	if _, ok := names[m.Config]; !ok {
		t.Errorf("config %s missing", m.Config)
	}
	if len(m.Layers) != 1 || !bytes.Equal(names[m.Layers[0]], layer) {
		t.Errorf("layer %v missing or different", m.Layers)
	}
	var cfg struct {
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal(names[m.Config], &cfg); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(layer)
	if want := fmt.Sprintf("sha256:%x", sum); len(cfg.RootFS.DiffIDs) != 1 || cfg.RootFS.DiffIDs[0] != want {
		t.Errorf("diff_ids %v, want [%s]", cfg.RootFS.DiffIDs, want)
	}
}
