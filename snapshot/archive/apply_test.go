//go:build linux

package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func lstat(t *testing.T, p string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func TestApplyBasics(t *testing.T) {
	s := newSandbox(t)
	mt := time.Unix(1600000000, 123456789)
	suid := file("bin/su", "#!suid")
	suid.hdr.Mode = 0o4755
	suid.hdr.Uid, suid.hdr.Gid = 1000, 2000
	suid.hdr.ModTime = mt
	suid.hdr.Format = tar.FormatPAX
	x := file("x", "xattrs")
	x.hdr.PAXRecords = map[string]string{"SCHILY.xattr.user.a": "1", "SCHILY.xattr.trusted.b": "2"}
	d := dir("bin/")
	d.hdr.Mode = 0o2750
	d.hdr.ModTime = mt
	fifo := device("fifo", tar.TypeFifo, 0, 0)
	fifo.hdr.Mode = 0o640
	layer := mkTar(t,
		d, suid,
		hardlink("bin/su2", "bin/su"),
		symlink("link", "bin/su"),
		device("null", tar.TypeChar, 1, 3),
		fifo,
		x,
		file("deep/implicit/f", "abc"),
	)
	size, err := s.apply(t, ApplyOptions{}, layer)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(len("#!suid") + len("xattrs") + len("abc")); size != want {
		t.Errorf("size = %d, want %d", size, want)
	}
	st := lstat(t, filepath.Join(s.root, "bin/su"))
	if st.Mode&0o7777 != 0o4755 || st.Uid != 1000 || st.Gid != 2000 || st.Nlink != 2 {
		t.Errorf("bin/su: mode %o uid %d gid %d nlink %d", st.Mode&0o7777, st.Uid, st.Gid, st.Nlink)
	}
	if st.Mtim.Sec != mt.Unix() || st.Mtim.Nsec != int64(mt.Nanosecond()) {
		t.Errorf("bin/su mtime %v", st.Mtim)
	}
	st = lstat(t, filepath.Join(s.root, "bin"))
	if st.Mode&0o7777 != 0o2750 || st.Mtim.Sec != mt.Unix() {
		t.Errorf("bin: mode %o mtime %d (dir mtime must be restored after its content)", st.Mode&0o7777, st.Mtim.Sec)
	}
	if l, _ := os.Readlink(filepath.Join(s.root, "link")); l != "bin/su" {
		t.Errorf("link -> %q", l)
	}
	st = lstat(t, filepath.Join(s.root, "null"))
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != unix.Mkdev(1, 3) {
		t.Errorf("null: mode %o rdev %d", st.Mode, st.Rdev)
	}
	st = lstat(t, filepath.Join(s.root, "fifo"))
	if st.Mode != unix.S_IFIFO|0o640 {
		t.Errorf("fifo mode %o", st.Mode)
	}
	if got := xattrString(t, filepath.Join(s.root, "x")); got != "user.a=1" {
		t.Errorf("xattrs %q", got)
	}
	st = lstat(t, filepath.Join(s.root, "deep/implicit"))
	if st.Mode&0o7777 != 0o755 || st.Uid != 0 {
		t.Errorf("implicit dir mode %o uid %d", st.Mode&0o7777, st.Uid)
	}
	s.check(t)
}

func TestApplyStripSetuidAndIDMap(t *testing.T) {
	s := newSandbox(t)
	f := file("f", "x")
	f.hdr.Mode = 0o6755
	f.hdr.Uid, f.hdr.Gid = 5, 6
	idmap := func(uid, gid int) (int, int, error) {
		if uid > 65535 {
			return 0, 0, errors.New("unmapped")
		}
		return uid + 100000, gid + 100000, nil
	}
	if _, err := s.apply(t, ApplyOptions{StripSetuid: true, IDMap: idmap}, mkTar(t, f, file("a/b", "y"))); err != nil {
		t.Fatal(err)
	}
	st := lstat(t, filepath.Join(s.root, "f"))
	if st.Mode&0o7777 != 0o755 || st.Uid != 100005 || st.Gid != 100006 {
		t.Errorf("f: mode %o uid %d gid %d", st.Mode&0o7777, st.Uid, st.Gid)
	}
	if st := lstat(t, filepath.Join(s.root, "a")); st.Uid != 100000 || st.Gid != 100000 {
		t.Errorf("implicit dir owned by %d:%d, want the mapped root", st.Uid, st.Gid)
	}
	g := file("g", "z")
	g.hdr.Uid = 70000
	if _, err := s.apply(t, ApplyOptions{IDMap: idmap}, mkTar(t, g)); err == nil {
		t.Error("unmapped uid accepted")
	}
}

func TestApplyReplaceTypes(t *testing.T) {
	s := newSandbox(t)
	l1 := mkTar(t,
		dir("d2f/"), file("d2f/child", "c"),
		file("f2d", "f"),
		file("f2l", "f"),
		symlink("l2d", "/"),
		dir("d2d/"), file("d2d/keep", "k"),
	)
	l2 := mkTar(t,
		file("d2f", "now a file"),
		dir("f2d/"),
		symlink("f2l", "target"),
		dir("l2d/"),
		dir("d2d/"), file("d2d/new", "n"),
	)
	for _, l := range [][]byte{l1, l2} {
		if _, err := s.apply(t, ApplyOptions{}, l); err != nil {
			t.Fatal(err)
		}
	}
	tree := listTree(t, s.root, false)
	want := map[string]byte{"d2f": tar.TypeReg, "f2d": tar.TypeDir, "f2l": tar.TypeSymlink, "l2d": tar.TypeDir,
		"d2d": tar.TypeDir, "d2d/keep": tar.TypeReg, "d2d/new": tar.TypeReg}
	if len(tree) != len(want) {
		t.Errorf("tree = %v", tree)
	}
	for n, typ := range want {
		if tree[n].typ != typ {
			t.Errorf("%s: type %c, want %c", n, tree[n].typ, typ)
		}
	}
	s.check(t)
}

// whiteoutLayers are a lower layer and an upper one that deletes, makes
// directories opaque and re-adds entries in them.
func whiteoutLayers(t *testing.T) (lower, upper []byte) {
	lower = mkTar(t,
		dir("a/"), file("a/x", "x"), file("a/y", "y"), dir("a/sub/"), file("a/sub/z", "z"),
		file("b", "b"),
		dir("c/"), file("c/1", "1"), dir("c/old/"), file("c/old/f", "f"),
		dir("d/"), file("d/old", "old"), file("d/keep-before", "lower"), dir("d/e/"), file("d/e/lower", "l"),
		dir("g/"), file("g/h", "h"),
		dir("k/"), file("k/1", "1"),
	)
	upper = mkTar(t,
		file("a/.wh.x", ""),
		file("a/.wh.sub", ""),
		file(".wh.b", ""),
		dir("c/"), file("c/.wh..wh..opq", ""), file("c/new", "new"),
		dir("d/"), file("d/keep-before", "upper"), dir("d/e/"), file("d/e/upper", "u"),
		file("d/.wh..wh..opq", ""), file("d/keep-after", "after"),
		// A whiteout of an entry of the same layer does not apply.
		file("same", "same"), file(".wh.same", ""),
		// A directory replacing a whited-out one hides its lower content.
		file(".wh.g", ""), dir("g/"), file("g/new", "n"),
	)
	return lower, upper
}

// wantAfterWhiteouts is the merged view of whiteoutLayers.
var wantAfterWhiteouts = map[string]string{
	"a": "", "a/y": "y",
	"c": "", "c/new": "new",
	"d": "", "d/keep-before": "upper", "d/e": "", "d/e/upper": "u", "d/keep-after": "after",
	"g": "", "g/new": "n",
	"same": "same",
	"k":    "", "k/1": "1",
}

func checkMerged(t *testing.T, root string) {
	t.Helper()
	got := listTree(t, root, false)
	for n, content := range wantAfterWhiteouts {
		e, ok := got[n]
		if !ok {
			t.Errorf("%s missing", n)
			continue
		}
		if e.content != content {
			t.Errorf("%s = %q, want %q", n, e.content, content)
		}
	}
	for n := range got {
		if _, ok := wantAfterWhiteouts[n]; !ok {
			t.Errorf("%s should not be there", n)
		}
	}
}

func TestWhiteoutsNative(t *testing.T) {
	s := newSandbox(t)
	lower, upper := whiteoutLayers(t)
	for _, l := range [][]byte{lower, upper} {
		if _, err := s.apply(t, ApplyOptions{}, l); err != nil {
			t.Fatal(err)
		}
	}
	checkMerged(t, s.root)
	s.check(t)
}

func TestWhiteoutsOverlay(t *testing.T) {
	for _, userXattr := range []bool{false, true} {
		t.Run(map[bool]string{false: "trusted", true: "user"}[userXattr], func(t *testing.T) {
			s := newSandbox(t)
			_, upper := whiteoutLayers(t)
			if _, err := s.apply(t, ApplyOptions{Whiteouts: WhiteoutOverlay, UserXattr: userXattr}, upper); err != nil {
				t.Fatal(err)
			}
			tree := listTree(t, s.root, false)
			opq := "trusted.overlay.opaque=y"
			if userXattr {
				opq = "user.overlay.opaque=y"
			}
			for _, n := range []string{"a/x", "a/sub", "b", "g"} {
				if n == "g" {
					continue
				}
				if e := tree[n]; e.typ != tar.TypeChar || e.major != 0 || e.minr != 0 {
					t.Errorf("%s is not a whiteout device: %+v", n, e)
				}
			}
			for _, n := range []string{"c", "d", "g"} {
				if tree[n].xattrs != opq {
					t.Errorf("%s xattrs %q, want %q", n, tree[n].xattrs, opq)
				}
			}
			if tree["a"].xattrs != "" {
				t.Errorf("a must not be opaque: %q", tree["a"].xattrs)
			}
			if _, ok := tree["same"]; !ok || tree["same"].typ != tar.TypeReg {
				t.Error("same-layer whiteout removed the layer's own file")
			}
			for n := range tree {
				if bytes.Contains([]byte(n), []byte(".wh.")) {
					t.Errorf("whiteout file %s created", n)
				}
			}
			s.check(t)
		})
	}
}

func TestApplyCancelled(t *testing.T) {
	s := newSandbox(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Apply(ctx, s.root, bytes.NewReader(mkTar(t, file("f", "x"))), ApplyOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("want context.Canceled, got %v", err)
	}
}
