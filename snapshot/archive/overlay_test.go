//go:build linux

package archive

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// requireRootOverlay skips (or fails under CI) without root and overlayfs.
func requireRootOverlay(t *testing.T) {
	t.Helper()
	reason := ""
	if os.Geteuid() != 0 {
		reason = "needs root"
	} else if b, err := os.ReadFile("/proc/filesystems"); err != nil || !bytes.Contains(b, []byte("\toverlay\n")) {
		reason = "needs overlayfs"
	}
	if reason == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal(reason)
	}
	t.Skip(reason)
}

func mountOverlay(t *testing.T, lower, upper string, extra ...string) string {
	t.Helper()
	base := t.TempDir()
	work := filepath.Join(base, "work")
	merged := filepath.Join(base, "merged")
	for _, d := range []string{work, merged} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	opts := "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work
	for _, e := range extra {
		opts += "," + e
	}
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		t.Fatalf("mount overlay %s: %v", opts, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(merged, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", merged, err)
		}
	})
	return merged
}

// TestOverlayMount applies layer 1 natively as the lower directory and
// layer 2 in overlay mode as the upper directory, mounts them and checks
// that the merged view is the one the native application gives.
func TestOverlayMount(t *testing.T) {
	requireRootOverlay(t)
	lowerLayer, upperLayer := whiteoutLayers(t)
	lower, upper := t.TempDir(), t.TempDir()
	ctx := context.Background()
	if _, err := Apply(ctx, lower, bytes.NewReader(lowerLayer), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Apply(ctx, upper, bytes.NewReader(upperLayer), ApplyOptions{Whiteouts: WhiteoutOverlay}); err != nil {
		t.Fatal(err)
	}
	merged := mountOverlay(t, lower, upper)
	checkMerged(t, merged)

	// Changes made through the mount diff back to whiteouts and opaque
	// markers that, applied natively on the lower, give the merged view.
	if err := os.Remove(filepath.Join(merged, "a/y")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(merged, "k")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(merged, "k"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(merged, "k/fresh"), []byte("fresh"), 0o644); err != nil {
		t.Fatal(err)
	}
	var layer bytes.Buffer
	if err := Diff(ctx, []string{lower}, upper, &layer, DiffOptions{}); err != nil {
		t.Fatal(err)
	}
	got, _ := readTar(t, layer.Bytes())
	for _, n := range []string{"a/.wh.y", "a/.wh.x", "c/.wh..wh..opq", "k/.wh..wh..opq", "k/fresh"} {
		if _, ok := got[n]; !ok {
			t.Errorf("diff lacks %s", n)
		}
	}
	native := t.TempDir()
	cpTree(t, lower, native)
	if _, err := Apply(ctx, native, bytes.NewReader(layer.Bytes()), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	want := listTree(t, merged, false)
	have := listTree(t, native, false)
	for n, w := range want {
		h, ok := have[n]
		w.xattrs, h.xattrs = "", ""
		if !ok || h != w {
			t.Errorf("%s: merged %+v, native %+v", n, w, h)
		}
	}
	for n := range have {
		if _, ok := want[n]; !ok {
			t.Errorf("%s: only in the native application", n)
		}
	}
}

// TestOverlayMountUserXattr checks opaque directories recorded with
// user.overlay.opaque, as overlayfs reads them with the userxattr option
// (what a user namespace mount uses).
func TestOverlayMountUserXattr(t *testing.T) {
	requireRootOverlay(t)
	lowerLayer, upperLayer := whiteoutLayers(t)
	lower, upper := t.TempDir(), t.TempDir()
	ctx := context.Background()
	if _, err := Apply(ctx, lower, bytes.NewReader(lowerLayer), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Apply(ctx, upper, bytes.NewReader(upperLayer), ApplyOptions{Whiteouts: WhiteoutOverlay, UserXattr: true}); err != nil {
		t.Fatal(err)
	}
	merged := mountOverlay(t, lower, upper, "userxattr")
	checkMerged(t, merged)
}
