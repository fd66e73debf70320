//go:build linux

package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// FuzzApply feeds arbitrary tar bytes to Apply (in both whiteout modes,
// after a lower layer that plants outward symlinks) and checks that
// nothing outside the root changed. Errors are fine; escapes and panics
// are not. Run:
//
//	go test -run '^$' -fuzz FuzzApply -fuzzminimizetime 200x ./snapshot/archive/
//
// (bounding minimisation: with the default of 60 s per new input, the run
// spends most of its time minimising and reports 0 execs/sec meanwhile).
func FuzzApply(f *testing.F) {
	var sfs unix.Statfs_t
	if err := unix.Statfs("/dev/shm", &sfs); err == nil && sfs.Type == unix.TMPFS_MAGIC {
		sandboxParent = "/dev/shm"
		defer func() { sandboxParent = "" }()
	}
	// Seeds: every hostile case (with the sandbox paths of a seed
	// sandbox, so absolute targets point at a sentinel of that shape),
	// the whiteout layers and a canonical layer.
	seed := newSandbox(f)
	for _, tc := range hostileCases() {
		for _, l := range tc.layers(seed) {
			b := mkTar(f, l...)
			// The xattr bombs (up to MBs) make every mutation and
			// minimisation slow; TestHostileLayers covers them.
			if len(b) > 64<<10 {
				continue
			}
			f.Add(b, false)
			f.Add(b, true)
		}
	}
	lower, upper := whiteoutLayersTB(f)
	f.Add(lower, false)
	f.Add(upper, false)
	f.Add(upper, true)

	f.Fuzz(func(t *testing.T, data []byte, overlay bool) {
		s := newSandbox(t)
		// A lower layer with outward symlinks in several shapes, named
		// after this sandbox.
		plant := mkTar(t,
			symlink("evil", s.sentinel),
			symlink("up", "../../../.."),
			symlink("canary", s.sentinel+"/canary"),
			symlink("loop", "loop"),
			dir("d/"), file("d/f", "f"),
			symlink("d/back", ".."),
		)
		if _, err := s.apply(t, ApplyOptions{}, plant); err != nil {
			t.Fatal(err)
		}
		opts := ApplyOptions{NoDevices: true}
		if overlay {
			opts.Whiteouts = WhiteoutOverlay
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = Apply(ctx, s.root, bytes.NewReader(data), opts)
		s.check(t)
	})
}

// whiteoutLayersTB is whiteoutLayers for a testing.TB.
func whiteoutLayersTB(tb testing.TB) (lower, upper []byte) {
	lower = mkTar(tb, dir("a/"), file("a/x", "x"), dir("c/"), file("c/1", "1"), file("b", "b"))
	upper = mkTar(tb, file("a/.wh.x", ""), file(".wh.b", ""), dir("c/"), file("c/.wh..wh..opq", ""), file("c/new", "n"),
		ent{hdr: tar.Header{Typeflag: tar.TypeLink, Name: "c/hl", Linkname: "/c/new"}})
	return lower, upper
}
