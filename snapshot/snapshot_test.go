package snapshot

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-engine/berth/internal/lockfile"
)

func TestOpenDriver(t *testing.T) {
	t.Run("default is overlay where the kernel has it", func(t *testing.T) {
		root := newRoot(t)
		s := openRoot(t, root, "")
		if s.Driver() != DriverOverlay {
			t.Fatalf("driver %s, want overlay (overlayfs works on this machine)", s.Driver())
		}
		checkRoot(t, s)
		// Reopening keeps the recorded driver and refuses another one.
		if s := openRoot(t, root, ""); s.Driver() != DriverOverlay {
			t.Fatalf("reopened with driver %s", s.Driver())
		}
		openRoot(t, root, DriverOverlay)
		if _, err := Open(root, Options{Driver: DriverNative}); !errors.Is(err, ErrDriverMismatch) {
			t.Fatalf("reopen with native: %v, want ErrDriverMismatch", err)
		}
	})
	t.Run("native", func(t *testing.T) {
		root := newRoot(t)
		openRoot(t, root, DriverNative)
		if s := openRoot(t, root, ""); s.Driver() != DriverNative {
			t.Fatalf("reopened with driver %s", s.Driver())
		}
		if _, err := Open(root, Options{Driver: DriverOverlay}); !errors.Is(err, ErrDriverMismatch) {
			t.Fatalf("reopen with overlay: %v, want ErrDriverMismatch", err)
		}
	})
	t.Run("unknown driver", func(t *testing.T) {
		if _, err := Open(newRoot(t), Options{Driver: "zfs"}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("got %v, want ErrInvalid", err)
		}
	})
	t.Run("future format", func(t *testing.T) {
		root := newRoot(t)
		openRoot(t, root, DriverNative)
		if err := os.WriteFile(filepath.Join(root, layoutFileName), []byte(`{"version":2,"driver":"native"}`), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Open(root, Options{})
		if !errors.Is(err, ErrUnsupportedVersion) || !strings.Contains(err.Error(), "version 2") {
			t.Fatalf("got %v, want ErrUnsupportedVersion naming version 2", err)
		}
	})
	t.Run("path overlay cannot carry", func(t *testing.T) {
		root := filepath.Join(newRoot(t), "a:b")
		if _, err := Open(root, Options{Driver: DriverOverlay}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("overlay: got %v, want ErrInvalid", err)
		}
		if s := openRoot(t, filepath.Join(filepath.Dir(root), "c,d"), ""); s.Driver() != DriverNative {
			t.Fatalf("default driver %s, want the native fallback", s.Driver())
		}
	})
	t.Run("symlinked root", func(t *testing.T) {
		base := newRoot(t)
		real := filepath.Join(base, "real")
		if err := os.Mkdir(real, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(real, filepath.Join(base, "link")); err != nil {
			t.Fatal(err)
		}
		s := openRoot(t, filepath.Join(base, "link"), DriverOverlay)
		if s.Root() != real {
			t.Fatalf("root %s, want %s", s.Root(), real)
		}
	})
}

// Layers with whiteouts, opaque directories, modified and re-created
// files, and the trees they stack to.
var (
	mergeLayer1 = []entry{
		dir("etc"), file("etc/a", "a1"), file("etc/b", "b1"),
		dir("keep"), file("keep/x", "x1"),
		dir("opq"), file("opq/old", "old"), dir("opq/sub"), file("opq/sub/deep", "deep"),
		file("gone", "g"),
		symlink("link", "etc/a"),
		{name: "owned", typ: tar.TypeReg, body: "o", mode: 0o4750, uid: 1000, gid: 2000, xattrs: map[string]string{"user.k": "v"}},
		hardlink("etc/hard", "etc/a"),
	}
	mergeLayer2 = []entry{
		dir("etc"), file("etc/a", "a2"), whiteout("etc/b"),
		whiteout("gone"),
		dir("opq"), opaque("opq"), file("opq/new", "new"),
		dir("newdir"), file("newdir/n", "n"),
	}
	mergeLayer3 = []entry{
		whiteout("newdir"),
		file("gone", "back"),
		dir("keep"), file("keep/y", "y3"),
	}
	mergeWant1 = map[string]string{
		"etc":          "dir 755 0:0",
		"etc/a":        `file 644 0:0 "a1" mtime=1577934245`,
		"etc/hard":     `file 644 0:0 "a1" mtime=1577934245`,
		"etc/b":        `file 644 0:0 "b1" mtime=1577934245`,
		"keep":         "dir 755 0:0",
		"keep/x":       `file 644 0:0 "x1" mtime=1577934245`,
		"opq":          "dir 755 0:0",
		"opq/old":      `file 644 0:0 "old" mtime=1577934245`,
		"opq/sub":      "dir 755 0:0",
		"opq/sub/deep": `file 644 0:0 "deep" mtime=1577934245`,
		"gone":         `file 644 0:0 "g" mtime=1577934245`,
		"link":         "symlink 0:0 -> etc/a",
		"owned":        `file 4750 1000:2000 "o" mtime=1577934245 user.k=v`,
	}
	mergeWant2 = map[string]string{
		"etc":      "dir 755 0:0",
		"etc/a":    `file 644 0:0 "a2" mtime=1577934245`,
		"etc/hard": `file 644 0:0 "a1" mtime=1577934245`,
		"keep":     "dir 755 0:0",
		"keep/x":   `file 644 0:0 "x1" mtime=1577934245`,
		"opq":      "dir 755 0:0",
		"opq/new":  `file 644 0:0 "new" mtime=1577934245`,
		"newdir":   "dir 755 0:0",
		"newdir/n": `file 644 0:0 "n" mtime=1577934245`,
		"link":     "symlink 0:0 -> etc/a",
		"owned":    `file 4750 1000:2000 "o" mtime=1577934245 user.k=v`,
	}
	mergeWant3 = map[string]string{
		"etc":      "dir 755 0:0",
		"etc/a":    `file 644 0:0 "a2" mtime=1577934245`,
		"etc/hard": `file 644 0:0 "a1" mtime=1577934245`,
		"keep":     "dir 755 0:0",
		"keep/x":   `file 644 0:0 "x1" mtime=1577934245`,
		"keep/y":   `file 644 0:0 "y3" mtime=1577934245`,
		"opq":      "dir 755 0:0",
		"opq/new":  `file 644 0:0 "new" mtime=1577934245`,
		"gone":     `file 644 0:0 "back" mtime=1577934245`,
		"link":     "symlink 0:0 -> etc/a",
		"owned":    `file 4750 1000:2000 "o" mtime=1577934245 user.k=v`,
	}
)

// TestMergedView applies the same layers (whiteouts, opaque directories,
// modified and re-created files) with both drivers and checks the trees
// seen through real mounts.
func TestMergedView(t *testing.T) {
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			s := newSnapshotter(t, driver)
			addLayer(t, s, "l1", "", mergeLayer1...)
			addLayer(t, s, "l2", "l1", mergeLayer2...)
			addLayer(t, s, "l3", "l2", mergeLayer3...)
			for _, c := range []struct {
				parent string
				want   map[string]string
			}{{"l1", mergeWant1}, {"l2", mergeWant2}, {"l3", mergeWant3}} {
				m, err := s.View(ctx, "view-"+c.parent, c.parent, nil)
				if err != nil {
					t.Fatal(err)
				}
				diffTrees(t, "view of "+c.parent, captureTree(t, mountTemp(t, m)), c.want)
			}

			// An active snapshot shows the same tree and takes writes,
			// which its parents do not see.
			m, err := s.Prepare(ctx, "rw", "l3", nil)
			if err != nil {
				t.Fatal(err)
			}
			target := mountTemp(t, m)
			diffTrees(t, "active on l3", captureTree(t, target), mergeWant3)
			if err := os.WriteFile(filepath.Join(target, "etc/a"), []byte("rw"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.RemoveAll(filepath.Join(target, "keep")); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(target, "new"), []byte("n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if got := readFile(t, filepath.Join(target, "etc/a")); got != "rw" {
				t.Fatalf("etc/a reads %q after a write", got)
			}
			m, err = s.View(ctx, "again-l3", "l3", nil)
			if err != nil {
				t.Fatal(err)
			}
			diffTrees(t, "view of l3 after writes to a child", captureTree(t, mountTemp(t, m)), mergeWant3)
			checkRoot(t, s)
		})
	}
}

// TestCommitWithParent extracts the layers of TestMergedView concurrently,
// each into a snapshot of the empty tree, and stacks them when committing.
func TestCommitWithParent(t *testing.T) {
	ctx := context.Background()
	s := newSnapshotter(t, DriverOverlay)
	layers := [][]entry{mergeLayer1, mergeLayer2, mergeLayer3}
	errs := make([]error, len(layers))
	var wg sync.WaitGroup
	for i, l := range layers {
		wg.Go(func() {
			key := "extract-" + strconv.Itoa(i)
			if _, errs[i] = s.Prepare(ctx, key, "", nil); errs[i] == nil {
				_, errs[i] = s.ApplyLayer(ctx, key, bytes.NewReader(mustLayer(l)))
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CommitWithParent(ctx, "l2", "extract-1", "l1", nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("commit on a missing parent: %v, want ErrNotFound", err)
	}
	parent := ""
	for i := range layers {
		name := "l" + strconv.Itoa(i+1)
		if err := s.CommitWithParent(ctx, name, "extract-"+strconv.Itoa(i), parent, map[string]string{"n": name}); err != nil {
			t.Fatal(err)
		}
		if info, err := s.Stat(ctx, name); err != nil || info.Parent != parent || info.Labels["n"] != name {
			t.Fatalf("%s: %+v, %v", name, info, err)
		}
		parent = name
	}
	m, err := s.View(ctx, "view", "l3", nil)
	if err != nil {
		t.Fatal(err)
	}
	diffTrees(t, "stacked at commit", captureTree(t, mountTemp(t, m)), mergeWant3)
	if err := s.Remove(ctx, "l2"); !errors.Is(err, ErrHasChildren) {
		t.Fatalf("remove l2: %v, want ErrHasChildren", err)
	}

	// Only a snapshot of the empty tree takes another parent, only with
	// overlay, and only a committed one.
	if _, err := s.Prepare(ctx, "on-l1", "l1", nil); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitWithParent(ctx, "x", "on-l1", "l2", nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("reparent a snapshot of l1: %v, want ErrInvalid", err)
	}
	if err := s.CommitWithParent(ctx, "x", "on-l1", "l1", nil); err != nil {
		t.Fatalf("commit with its own parent: %v", err)
	}
	if _, err := s.Prepare(ctx, "empty", "", nil); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitWithParent(ctx, "y", "empty", "view", nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("commit on a view: %v, want ErrInvalid", err)
	}
	native := newSnapshotter(t, DriverNative)
	addLayer(t, native, "base", "", file("f", "1"))
	if _, err := native.Prepare(ctx, "empty", "", nil); err != nil {
		t.Fatal(err)
	}
	if err := native.CommitWithParent(ctx, "y", "empty", "base", nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("native reparent: %v, want ErrInvalid", err)
	}
	checkRoot(t, s)
	checkRoot(t, native)
}

// TestViewsReadOnly mounts views of 0, 1 and 3 layers and tries to write.
func TestViewsReadOnly(t *testing.T) {
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			s := newSnapshotter(t, driver)
			addLayer(t, s, "l1", "", file("f1", "1"))
			addLayer(t, s, "l2", "l1", file("f2", "2"))
			addLayer(t, s, "l3", "l2", file("f3", "3"))
			for _, parent := range []string{"", "l1", "l3"} {
				m, err := s.View(ctx, "view-"+parent, parent, nil)
				if err != nil {
					t.Fatal(err)
				}
				target := mountTemp(t, m)
				err = os.WriteFile(filepath.Join(target, "x"), nil, 0o600)
				if !errors.Is(err, unix.EROFS) {
					t.Errorf("view of %q: write: %v, want EROFS", parent, err)
				}
				if parent != "" {
					if err := os.Remove(filepath.Join(target, "f1")); !errors.Is(err, unix.EROFS) {
						t.Errorf("view of %q: remove: %v, want EROFS", parent, err)
					}
				}
			}
			if got := readFile(t, filepath.Join(s.fsDir(mustStat(t, s, "l1").ID), "f1")); got != "1" {
				t.Fatalf("l1 changed: %q", got)
			}
		})
	}
}

func mustStat(t *testing.T, s *Snapshotter, key string) record {
	t.Helper()
	r, err := s.stat(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestMountShapes checks the mounts each kind of snapshot gets.
func TestMountShapes(t *testing.T) {
	ctx := context.Background()
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			s := newSnapshotter(t, driver)
			addLayer(t, s, "l1", "", file("f", "1"))
			addLayer(t, s, "l2", "l1", file("f", "2"))
			fs := func(key string) string { return s.fsDir(mustStat(t, s, key).ID) }
			work := func(key string) string { return s.workDir(mustStat(t, s, key).ID) }
			for _, c := range []struct {
				kind        Kind
				key, parent string
				overlay     func() Mount
				native      func() Mount
			}{
				{KindActive, "a0", "",
					func() Mount { return bindMount(fs("a0"), false) },
					func() Mount { return bindMount(fs("a0"), false) }},
				{KindActive, "a1", "l1",
					func() Mount {
						return Mount{"overlay", "overlay", []string{"index=off", "lowerdir=" + fs("l1"), "upperdir=" + fs("a1"), "workdir=" + work("a1")}}
					},
					func() Mount { return bindMount(fs("a1"), false) }},
				{KindActive, "a2", "l2",
					func() Mount {
						return Mount{"overlay", "overlay", []string{"index=off", "lowerdir=" + fs("l2") + ":" + fs("l1"), "upperdir=" + fs("a2"), "workdir=" + work("a2")}}
					},
					func() Mount { return bindMount(fs("a2"), false) }},
				{KindView, "v0", "",
					func() Mount { return bindMount(fs("v0"), true) },
					func() Mount { return bindMount(fs("v0"), true) }},
				{KindView, "v1", "l1",
					func() Mount { return bindMount(fs("l1"), true) },
					func() Mount { return bindMount(fs("l1"), true) }},
				{KindView, "v2", "l2",
					func() Mount {
						return Mount{"overlay", "overlay", []string{"index=off", "lowerdir=" + fs("l2") + ":" + fs("l1"), "ro"}}
					},
					func() Mount { return bindMount(fs("l2"), true) }},
			} {
				create := s.Prepare
				if c.kind == KindView {
					create = s.View
				}
				m, err := create(ctx, c.key, c.parent, nil)
				if err != nil {
					t.Fatal(err)
				}
				again, err := s.Mounts(ctx, c.key)
				if err != nil {
					t.Fatal(err)
				}
				want := c.overlay()
				if driver == DriverNative {
					want = c.native()
				}
				for _, got := range [][]Mount{m, again} {
					if len(got) != 1 || fmt.Sprint(got[0]) != fmt.Sprint(want) {
						t.Errorf("%s %q on %q: mounts %v, want %v", c.kind, c.key, c.parent, got, want)
					}
				}
			}
		})
	}
}

// TestErrors checks the sentinel errors of misuse.
func TestErrors(t *testing.T) {
	ctx := context.Background()
	s := newSnapshotter(t, DriverOverlay)
	addLayer(t, s, "base", "", file("f", "1"))
	if _, err := s.Prepare(ctx, "active", "base", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.View(ctx, "view", "base", nil); err != nil {
		t.Fatal(err)
	}
	layer := mustLayer([]entry{file("x", "x")})
	for _, c := range []struct {
		name string
		op   func() error
		want error
	}{
		{"prepare existing key", func() error { _, err := s.Prepare(ctx, "active", "", nil); return err }, ErrAlreadyExists},
		{"prepare on a committed key's name", func() error { _, err := s.Prepare(ctx, "base", "", nil); return err }, ErrAlreadyExists},
		{"prepare on missing parent", func() error { _, err := s.Prepare(ctx, "k", "nope", nil); return err }, ErrNotFound},
		{"prepare on active parent", func() error { _, err := s.Prepare(ctx, "k", "active", nil); return err }, ErrInvalid},
		{"view of a view", func() error { _, err := s.View(ctx, "k", "view", nil); return err }, ErrInvalid},
		{"empty key", func() error { _, err := s.Prepare(ctx, "", "", nil); return err }, ErrInvalid},
		{"NUL in key", func() error { _, err := s.Prepare(ctx, "a\x00b", "", nil); return err }, ErrInvalid},
		{"empty label key", func() error { _, err := s.Prepare(ctx, "k", "", map[string]string{"": "v"}); return err }, ErrInvalid},
		{"commit a view", func() error { return s.Commit(ctx, "c", "view", nil) }, ErrInvalid},
		{"commit a committed", func() error { return s.Commit(ctx, "c", "base", nil) }, ErrInvalid},
		{"commit missing", func() error { return s.Commit(ctx, "c", "nope", nil) }, ErrNotFound},
		{"commit onto existing name", func() error { return s.Commit(ctx, "base", "active", nil) }, ErrAlreadyExists},
		{"commit onto itself", func() error { return s.Commit(ctx, "active", "active", nil) }, ErrAlreadyExists},
		{"remove with children", func() error { return s.Remove(ctx, "base") }, ErrHasChildren},
		{"remove missing", func() error { return s.Remove(ctx, "nope") }, ErrNotFound},
		{"mounts of committed", func() error { _, err := s.Mounts(ctx, "base"); return err }, ErrInvalid},
		{"mounts of missing", func() error { _, err := s.Mounts(ctx, "nope"); return err }, ErrNotFound},
		{"apply to view", func() error { _, err := s.ApplyLayer(ctx, "view", bytes.NewReader(layer)); return err }, ErrInvalid},
		{"apply to committed", func() error { _, err := s.ApplyLayer(ctx, "base", bytes.NewReader(layer)); return err }, ErrInvalid},
		{"apply to missing", func() error { _, err := s.ApplyLayer(ctx, "nope", bytes.NewReader(layer)); return err }, ErrNotFound},
		{"stat missing", func() error { _, err := s.Stat(ctx, "nope"); return err }, ErrNotFound},
		{"usage of missing", func() error { _, err := s.Usage(ctx, "nope"); return err }, ErrNotFound},
		{"update missing", func() error { _, err := s.Update(ctx, Info{Key: "nope"}); return err }, ErrNotFound},
		{"update other field", func() error { _, err := s.Update(ctx, Info{Key: "base"}, "parent"); return err }, ErrInvalid},
	} {
		if err := c.op(); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
	// Failed operations changed nothing.
	for key, kind := range map[string]Kind{"base": KindCommitted, "active": KindActive, "view": KindView} {
		info, err := s.Stat(ctx, key)
		if err != nil || info.Kind != kind {
			t.Errorf("%s: %+v, %v", key, info, err)
		}
	}
	checkRoot(t, s)

	// Once the children are gone the parent can go.
	for _, k := range []string{"active", "view", "base"} {
		if err := s.Remove(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	checkRoot(t, s)
	if err := s.Walk(ctx, func(i Info) error { return fmt.Errorf("left: %s", i.Key) }); err != nil {
		t.Fatal(err)
	}
}

func TestInfoLabelsWalk(t *testing.T) {
	ctx := context.Background()
	s := newSnapshotter(t, DriverNative)
	if _, err := s.Prepare(ctx, "a", "", map[string]string{"x": "1"}); err != nil {
		t.Fatal(err)
	}
	info, err := s.Stat(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if info.Key != "a" || info.Parent != "" || info.Kind != KindActive || info.Labels["x"] != "1" || info.Created.IsZero() {
		t.Fatalf("stat: %+v", info)
	}
	if err := s.Commit(ctx, "c", "a", map[string]string{"y": "2"}); err != nil {
		t.Fatal(err)
	}
	info, err = s.Stat(ctx, "c")
	if err != nil || info.Kind != KindCommitted || fmt.Sprint(info.Labels) != "map[y:2]" {
		t.Fatalf("committed: %+v, %v", info, err)
	}
	if _, err := s.View(ctx, "v", "c", nil); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		labels     map[string]string
		fieldpaths []string
		want       string
	}{
		{map[string]string{"a": "1", "b": "2"}, nil, "map[a:1 b:2]"},
		{map[string]string{"a": "9", "c": "3"}, []string{"labels.a"}, "map[a:9 b:2]"},
		{map[string]string{}, []string{"labels.b"}, "map[a:9]"},
		{map[string]string{"z": "z"}, []string{"labels"}, "map[z:z]"},
		{nil, nil, "map[]"},
	} {
		before := info.Updated
		got, err := s.Update(ctx, Info{Key: "c", Kind: KindActive, Parent: "ignored", Labels: c.labels}, c.fieldpaths...)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got.Labels) != c.want || got.Kind != KindCommitted || got.Parent != "" || !got.Updated.After(before) {
			t.Errorf("update %v %v: %+v, want labels %s", c.labels, c.fieldpaths, got, c.want)
		}
		if again, _ := s.Stat(ctx, "c"); fmt.Sprint(again.Labels) != c.want {
			t.Errorf("stat after update: %v", again.Labels)
		}
		info = got
	}

	var seen []string
	err = s.Walk(ctx, func(i Info) error {
		seen = append(seen, i.Key+":"+i.Kind.String()+":"+i.Parent)
		// fn may call the snapshotter.
		_, err := s.Stat(ctx, i.Key)
		return err
	})
	if err != nil || strings.Join(seen, " ") != "c:committed: v:view:c" {
		t.Fatalf("walk: %v, %v", seen, err)
	}
	stop := errors.New("stop")
	if err := s.Walk(ctx, func(Info) error { return stop }); err != stop {
		t.Fatalf("walk returned %v, want fn's error", err)
	}
	if Kind(7).String() != "Kind(7)" {
		t.Fatal(Kind(7).String())
	}
}

func TestUsage(t *testing.T) {
	ctx := context.Background()
	big := strings.Repeat("b", 1<<20)
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			s := newSnapshotter(t, driver)
			if _, err := s.Prepare(ctx, "a", "", nil); err != nil {
				t.Fatal(err)
			}
			empty, err := s.Usage(ctx, "a")
			if err != nil {
				t.Fatal(err)
			}
			// The snapshot directory, fs and (overlay) work.
			dirs := int64(2)
			if driver == DriverOverlay {
				dirs = 3
			}
			if empty.Inodes != dirs || empty.Size <= 0 || empty.Size > dirs*64<<10 {
				t.Fatalf("empty snapshot: %+v", empty)
			}
			n, err := s.ApplyLayer(ctx, "a", bytes.NewReader(mustLayer([]entry{
				file("big", big), hardlink("big2", "big"), file("small", "s"),
			})))
			if err != nil || n != 1<<20+1 {
				t.Fatalf("apply: %d, %v", n, err)
			}
			u, err := s.Usage(ctx, "a")
			if err != nil {
				t.Fatal(err)
			}
			// The hard link counts once; small takes one block.
			if u.Inodes != empty.Inodes+2 || u.Size < empty.Size+1<<20+512 || u.Size > empty.Size+1<<20+64<<10 {
				t.Fatalf("usage %+v after a 1 MiB file (empty: %+v)", u, empty)
			}
			if err := s.Commit(ctx, "c", "a", nil); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Prepare(ctx, "child", "c", nil); err != nil {
				t.Fatal(err)
			}
			child, err := s.Usage(ctx, "child")
			if err != nil {
				t.Fatal(err)
			}
			switch driver {
			case DriverOverlay: // the parent is not counted
				if child != empty {
					t.Fatalf("child of a 1 MiB layer: %+v, want %+v", child, empty)
				}
			case DriverNative: // a full copy (or reflink) of the parent
				if child.Inodes != u.Inodes || child.Size < 1<<20 {
					t.Fatalf("native child: %+v, parent %+v", child, u)
				}
			}
		})
	}
}

func TestCleanup(t *testing.T) {
	ctx := context.Background()
	s := newSnapshotter(t, DriverOverlay)
	addLayer(t, s, "base", "", file("f", "1"))
	if _, err := s.Prepare(ctx, "active", "base", nil); err != nil {
		t.Fatal(err)
	}
	// What crashes leave: directories without records, trash, tmp files.
	orphan := s.path(snapshotsDir, "9999")
	for _, d := range []string{orphan + "/fs/a/b", s.path(trashDir, "7-x", "fs"), s.path(tmpDir, "probe-1", "m")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(orphan+"/fs/a/b/file", []byte("x"), 0o400); err != nil {
		t.Fatal(err)
	}
	// An orphan that an operation in progress holds is kept...
	busy := s.path(snapshotsDir, "9998")
	if err := os.Mkdir(busy, 0o700); err != nil {
		t.Fatal(err)
	}
	lock, err := lockfile.TryLockDir(busy, true)
	if err != nil || lock == nil {
		t.Fatal(lock, err)
	}
	// ...and one with something mounted below is refused.
	mounted := s.path(snapshotsDir, "9997")
	if err := os.MkdirAll(mounted+"/fs", 0o700); err != nil {
		t.Fatal(err)
	}
	if err := MountAll([]Mount{bindMount(t.TempDir(), true)}, mounted+"/fs"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { UnmountAll(mounted + "/fs") })

	err = s.Cleanup(ctx)
	if !errors.Is(err, unix.EBUSY) {
		t.Fatalf("cleanup with a mount below an orphan: %v, want EBUSY", err)
	}
	for _, p := range []string{orphan, s.path(trashDir, "7-x"), s.path(tmpDir, "probe-1")} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s survived cleanup: %v", p, err)
		}
	}
	if _, err := os.Lstat(busy); err != nil {
		t.Errorf("locked directory removed: %v", err)
	}
	// The mounted orphan went to the trash but was not deleted.
	if err := UnmountAll(mustTrashed(t, s, "9997") + "/fs"); err != nil {
		t.Fatal(err)
	}
	lock.Close()
	if err := s.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	checkRoot(t, s)
	for _, key := range []string{"base", "active"} {
		if _, err := s.Stat(ctx, key); err != nil {
			t.Fatalf("cleanup touched %s: %v", key, err)
		}
	}
	if got := readFile(t, filepath.Join(s.fsDir(mustStat(t, s, "base").ID), "f")); got != "1" {
		t.Fatalf("base content %q", got)
	}
}

// mustTrashed returns the trash entry a directory named name went to.
func mustTrashed(t *testing.T, s *Snapshotter, name string) string {
	t.Helper()
	matches, err := filepath.Glob(s.path(trashDir, name+"-*"))
	if err != nil || len(matches) != 1 {
		t.Fatalf("trash entries for %s: %v, %v", name, matches, err)
	}
	return matches[0]
}

// TestManyLayers mounts 130 layers under a root whose path is over 200
// bytes long: the overlay options do not fit in a page.
func TestManyLayers(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(newRoot(t), strings.Repeat("r", 200))
	if len(root) < 200 {
		t.Fatal(root)
	}
	s := openRoot(t, root, DriverOverlay)
	const layers = 130
	parent := ""
	for i := range layers {
		entries := []entry{file("f"+strconv.Itoa(i), strconv.Itoa(i)), file("top", strconv.Itoa(i))}
		if i == 100 {
			entries = append(entries, whiteout("f3"))
		}
		name := "l" + strconv.Itoa(i)
		addLayer(t, s, name, parent, entries...)
		parent = name
	}
	m, err := s.Prepare(ctx, "rw", parent, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(strings.Join(m[0].Options, ",")); n < os.Getpagesize() {
		t.Fatalf("options are %d bytes: the test does not exceed a page", n)
	}
	check := func(target string) {
		t.Helper()
		if got := readFile(t, filepath.Join(target, "top")); got != strconv.Itoa(layers-1) {
			t.Errorf("top = %q", got)
		}
		for i := range layers {
			_, err := os.Stat(filepath.Join(target, "f"+strconv.Itoa(i)))
			if (i == 3) != errors.Is(err, os.ErrNotExist) {
				t.Errorf("f%d: %v", i, err)
			}
		}
	}
	target := mountTemp(t, m)
	check(target)
	if err := os.WriteFile(filepath.Join(target, "w"), []byte("w"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(s.fsDir(mustStat(t, s, "rw").ID), "w")); got != "w" {
		t.Fatalf("write did not reach the upper directory: %q", got)
	}

	m, err = s.View(ctx, "ro", parent, nil)
	if err != nil {
		t.Fatal(err)
	}
	target = mountTemp(t, m)
	check(target)
	if err := os.WriteFile(filepath.Join(target, "w"), nil, 0o600); !errors.Is(err, unix.EROFS) {
		t.Fatalf("write to a view: %v, want EROFS", err)
	}
}

func TestUnmountAll(t *testing.T) {
	dir := t.TempDir()
	if err := UnmountAll(dir); err != nil {
		t.Fatalf("nothing mounted: %v", err)
	}
	if err := UnmountAll(filepath.Join(dir, "missing")); err != nil {
		t.Fatalf("missing target: %v", err)
	}
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "f"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// Two stacked mounts go in one call.
	if err := MountAll([]Mount{bindMount(src, false), bindMount(src, true)}, dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { UnmountAll(dir) })
	if _, err := os.Stat(filepath.Join(dir, "f")); err != nil {
		t.Fatal(err)
	}
	if err := UnmountAll(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "f")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("still mounted: %v", err)
	}
	// A failing mount leaves nothing behind.
	err := MountAll([]Mount{bindMount(src, false), {Type: "overlay", Source: "overlay", Options: []string{"lowerdir=/nonexistent"}}}, dir)
	if err == nil {
		t.Fatal("bad overlay mounted")
	}
	if _, err := os.Stat(filepath.Join(dir, "f")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("first mount not rolled back: %v", err)
	}
}
