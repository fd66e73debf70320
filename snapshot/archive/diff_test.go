//go:build linux

package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// canonicalLayer is a layer as Diff writes it: every parent directory has
// an entry, whiteouts and opaque markers stand beside their names.
func canonicalLayer(t *testing.T) []byte {
	suid := file("bin/su", "suid")
	suid.hdr.Mode = 0o4755
	capf := file("bin/ping", "ping")
	capf.hdr.PAXRecords = map[string]string{"SCHILY.xattr.user.note": "hello"}
	owned := file("home/u/f", "owned")
	owned.hdr.Uid, owned.hdr.Gid = 1000, 1000
	home := dir("home/u/")
	home.hdr.Uid, home.hdr.Gid = 1000, 1000
	home.hdr.Mode = 0o700
	su2 := hardlink("bin/su2", "bin/su")
	su2.hdr.Mode = 0o4755
	long := file("long/"+strings.Repeat("n", 150), "long name")
	return mkTar(t,
		dir("a/"), file("a/.wh.x", ""),
		dir("bin/"), capf, suid, su2,
		dir("c/"), file("c/.wh..wh..opq", ""), file("c/new", "new"),
		device("dev-null", tar.TypeChar, 1, 3),
		device("fifo", tar.TypeFifo, 0, 0),
		dir("home/"), home, owned,
		symlink("link", "bin/su"),
		dir("long/"), long,
		file(".wh.gone", ""),
	)
}

func diffBytes(t *testing.T, lowers []string, upper string, opts DiffOptions) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Diff(context.Background(), lowers, upper, &buf, opts); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// sameEntries compares two tars entry by entry (order-independent; the
// whiteout markers' metadata is not compared).
func sameEntries(t *testing.T, want, got []byte) {
	t.Helper()
	w, _ := readTar(t, want)
	g, _ := readTar(t, got)
	for n, we := range w {
		ge, ok := g[n]
		if !ok {
			t.Errorf("entry %q missing from the diff", n)
			continue
		}
		if strings.HasPrefix(filepath.Base(n), WhiteoutPrefix) {
			continue
		}
		if we != ge {
			t.Errorf("entry %q:\n want %+v\n got  %+v", n, we, ge)
		}
	}
	for n := range g {
		if _, ok := w[n]; !ok {
			t.Errorf("unexpected entry %q in the diff", n)
		}
	}
}

func TestRoundTripOverlay(t *testing.T) {
	layer := canonicalLayer(t)
	upper := t.TempDir()
	if _, err := Apply(context.Background(), upper, bytes.NewReader(layer), ApplyOptions{Whiteouts: WhiteoutOverlay}); err != nil {
		t.Fatal(err)
	}
	out := diffBytes(t, nil, upper, DiffOptions{})
	sameEntries(t, layer, out)
	_, order := readTar(t, out)
	// Directories come before their content, names sorted.
	seen := map[string]bool{}
	for _, n := range order {
		if p := filepath.Dir(n); p != "." && !seen[p] {
			t.Errorf("%s written before its directory", n)
		}
		seen[n] = true
	}
}

func TestDiffReproducible(t *testing.T) {
	layer := canonicalLayer(t)
	epoch := time.Unix(1500000000, 0)
	var outs [][]byte
	for i := range 2 {
		upper := t.TempDir()
		if _, err := Apply(context.Background(), upper, bytes.NewReader(layer), ApplyOptions{Whiteouts: WhiteoutOverlay}); err != nil {
			t.Fatal(err)
		}
		// Make the second tree's times differ: whiteouts and implicit
		// directories carry creation times anyway.
		if i == 1 {
			now := time.Now()
			if err := os.Chtimes(filepath.Join(upper, "bin/ping"), now, now); err != nil {
				t.Fatal(err)
			}
			time.Sleep(1100 * time.Millisecond)
		}
		outs = append(outs, diffBytes(t, nil, upper, DiffOptions{SourceDateEpoch: &epoch}))
		again := diffBytes(t, nil, upper, DiffOptions{SourceDateEpoch: &epoch})
		if !bytes.Equal(outs[i], again) {
			t.Error("two diffs of the same tree differ")
		}
	}
	if !bytes.Equal(outs[0], outs[1]) {
		t.Error("diffs of two applications of the same layer differ despite SourceDateEpoch")
	}
	tr := tar.NewReader(bytes.NewReader(outs[0]))
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		if h.ModTime.After(epoch) || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: mtime %v uname %q gname %q", h.Name, h.ModTime, h.Uname, h.Gname)
		}
		if strings.TrimSuffix(h.Name, "/") == "home/u" && (h.Uid != 1000 || h.Gid != 1000) {
			t.Errorf("uid/gid not kept: %d:%d", h.Uid, h.Gid)
		}
		// USTAR unless the entry needs PAX (xattrs, the long name).
		needPAX := strings.HasPrefix(h.Name, "long/n") || h.Name == "bin/ping"
		if (h.Format == tar.FormatPAX) != needPAX {
			t.Errorf("%s: format %v", h.Name, h.Format)
		}
	}
}

func TestDiffNotFaithful(t *testing.T) {
	upper := t.TempDir()
	if err := os.Mkdir(filepath.Join(upper, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(filepath.Join(upper, "d"), "trusted.overlay.redirect", []byte("/x"), 0); err != nil {
		t.Fatal(err)
	}
	err := Diff(context.Background(), nil, upper, &bytes.Buffer{}, DiffOptions{})
	if !errors.Is(err, ErrNotFaithful) {
		t.Errorf("want ErrNotFaithful, got %v", err)
	}
}

func cpTree(t *testing.T, src, dst string) {
	t.Helper()
	if out, err := exec.Command("cp", "-a", src+"/.", dst).CombinedOutput(); err != nil {
		t.Fatalf("cp -a: %v: %s", err, out)
	}
}

func TestDiffNaive(t *testing.T) {
	lowerLayer, upperLayer := whiteoutLayers(t)
	lower := t.TempDir()
	if _, err := Apply(context.Background(), lower, bytes.NewReader(lowerLayer), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	upper := t.TempDir()
	cpTree(t, lower, upper)
	if _, err := Apply(context.Background(), upper, bytes.NewReader(upperLayer), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	// An unchanged file with the same whole-second mtime but new content
	// is found by content comparison; metadata changes are found too.
	if err := os.WriteFile(filepath.Join(upper, "a/y"), []byte("Y"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(filepath.Join(upper, "a/y"), time.Unix(1700000000, 0), time.Unix(1700000000, 0)); err != nil {
		t.Fatal(err)
	}
	out := diffBytes(t, []string{lower}, upper, DiffOptions{Mode: DiffNaive})
	got, _ := readTar(t, out)
	if _, ok := got["a/y"]; !ok {
		t.Error("content change with equal mtime not found")
	}
	if _, ok := got["a/.wh.x"]; !ok {
		t.Error("deletion of a/x not found")
	}
	if _, ok := got["a"]; !ok {
		t.Error("parent a of changes not written")
	}
	// Applying the diff on a copy of lower gives upper.
	again := t.TempDir()
	cpTree(t, lower, again)
	if _, err := Apply(context.Background(), again, bytes.NewReader(out), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	want := listTree(t, upper, false)
	have := listTree(t, again, false)
	for n, w := range want {
		if h, ok := have[n]; !ok || h != w {
			t.Errorf("%s: want %+v, got %+v", n, w, h)
		}
	}
	for n := range have {
		if _, ok := want[n]; !ok {
			t.Errorf("%s: extra", n)
		}
	}
	// Nothing changed: an empty layer.
	empty := diffBytes(t, []string{upper}, upper, DiffOptions{Mode: DiffNaive})
	if m, _ := readTar(t, empty); len(m) != 0 {
		t.Errorf("diff of a tree with itself: %v", m)
	}
}
