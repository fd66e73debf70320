//go:build linux

package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// ent is one tar entry to build; body is the content of a regular file.
type ent struct {
	hdr  tar.Header
	body string
}

func file(name, body string) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body)), ModTime: time.Unix(1700000000, 0)}, body: body}
}

func dir(name string) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: time.Unix(1700000000, 0)}}
}

func symlink(name, target string) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777, ModTime: time.Unix(1700000000, 0)}}
}

func hardlink(name, target string) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, Mode: 0o644, ModTime: time.Unix(1700000000, 0)}}
}

func device(name string, typ byte, major, minor int64) ent {
	return ent{hdr: tar.Header{Typeflag: typ, Name: name, Mode: 0o600, Devmajor: major, Devminor: minor, ModTime: time.Unix(1700000000, 0)}}
}

// mkTar builds a tar stream. Names are written as given (archive/tar's
// writer does not clean them).
func mkTar(t testing.TB, ents ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := e.hdr
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("write header %q: %v", h.Name, err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatalf("write body %q: %v", h.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// sandbox is a temporary tree: base/l1/l2/root is where layers go, and
// everything else under base (notably base/sentinel/canary) must never
// change.
type sandbox struct {
	base, root, sentinel string
	before               map[string]string
	etcPasswd            string
}

// sandboxParent, if set, is where newSandbox makes its directories
// instead of t.TempDir() (the fuzz target uses a tmpfs: much faster).
var sandboxParent string

func newSandbox(t testing.TB) *sandbox {
	t.Helper()
	var base string
	if sandboxParent != "" {
		var err error
		if base, err = os.MkdirTemp(sandboxParent, "archive-fuzz-"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(base) })
	} else {
		base = t.TempDir()
	}
	s := &sandbox{
		base:     base,
		root:     filepath.Join(base, "l1", "l2", "root"),
		sentinel: filepath.Join(base, "sentinel"),
	}
	for _, d := range []string{s.root, s.sentinel, filepath.Join(base, "l1", "sibling")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(s.sentinel, "canary"), []byte("canary"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("canary", filepath.Join(s.sentinel, "canary-link")); err != nil {
		t.Fatal(err)
	}
	s.before = s.outside(t)
	s.etcPasswd = describe(t, "/etc/passwd")
	return s
}

// describe returns a string that changes whenever the node at p does.
func describe(t testing.TB, p string) string {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return "error " + err.Error()
	}
	d := fmt.Sprintf("mode=%o uid=%d gid=%d nlink=%d size=%d mtime=%d.%d ctime=%d.%d",
		st.Mode, st.Uid, st.Gid, st.Nlink, st.Size, st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		d += " sha256=" + hex.EncodeToString(sum[:])
	case unix.S_IFLNK:
		l, _ := os.Readlink(p)
		d += " -> " + l
	}
	return d
}

// outside describes every node under base except the root's subtree.
func (s *sandbox) outside(t testing.TB) map[string]string {
	t.Helper()
	m := make(map[string]string)
	err := filepath.WalkDir(s.base, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == s.root {
			m[p] = "root"
			return fs.SkipDir
		}
		m[p] = describe(t, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// check fails the test if anything outside the root changed.
func (s *sandbox) check(t testing.TB) {
	t.Helper()
	after := s.outside(t)
	for p, d := range after {
		if b, ok := s.before[p]; !ok {
			t.Errorf("ESCAPE: %s appeared outside the root (%s)", p, d)
		} else if b != d {
			t.Errorf("ESCAPE: %s changed outside the root:\n before %s\n after  %s", p, b, d)
		}
	}
	for p := range s.before {
		if _, ok := after[p]; !ok {
			t.Errorf("ESCAPE: %s disappeared outside the root", p)
		}
	}
	if d := describe(t, "/etc/passwd"); d != s.etcPasswd {
		t.Errorf("ESCAPE: /etc/passwd changed: %s -> %s", s.etcPasswd, d)
	}
}

func (s *sandbox) apply(t testing.TB, opts ApplyOptions, layer []byte) (int64, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return Apply(ctx, s.root, bytes.NewReader(layer), opts)
}

// treeEntry is a normalised view of a node, for comparing trees.
type treeEntry struct {
	typ         byte
	mode        int64
	uid, gid    int
	link        string
	content     string
	xattrs      string
	mtime       int64
	major, minr int64
}

// listTree describes every node under root (not root itself) by relative
// path. Directory mtimes are left out when withDirTimes is false.
func listTree(t testing.TB, root string, withDirTimes bool) map[string]treeEntry {
	t.Helper()
	m := make(map[string]treeEntry)
	err := filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		e := treeEntry{mode: int64(st.Mode & 0o7777), uid: int(st.Uid), gid: int(st.Gid), mtime: st.Mtim.Sec}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			e.typ = tar.TypeDir
			if !withDirTimes {
				e.mtime = 0
			}
		case unix.S_IFREG:
			e.typ = tar.TypeReg
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			e.content = string(b)
		case unix.S_IFLNK:
			e.typ = tar.TypeSymlink
			e.link, _ = os.Readlink(p)
			e.mode = 0
		case unix.S_IFCHR:
			e.typ = tar.TypeChar
			e.major, e.minr = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
		case unix.S_IFBLK:
			e.typ = tar.TypeBlock
			e.major, e.minr = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
		case unix.S_IFIFO:
			e.typ = tar.TypeFifo
		}
		e.xattrs = xattrString(t, p)
		m[rel] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func xattrString(t testing.TB, p string) string {
	t.Helper()
	sz, err := unix.Llistxattr(p, nil)
	if err != nil || sz == 0 {
		return ""
	}
	buf := make([]byte, sz)
	sz, err = unix.Llistxattr(p, buf)
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, n := range strings.Split(string(buf[:sz]), "\x00") {
		if n == "" {
			continue
		}
		v := make([]byte, 1<<16)
		vn, err := unix.Lgetxattr(p, n, v)
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, n+"="+string(v[:vn]))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// tarEntry is a normalised view of a tar entry.
type tarEntry struct {
	typ      byte
	mode     int64
	uid, gid int
	link     string
	content  string
	xattrs   string
	mtime    int64
}

// readTar lists a tar's entries by cleaned name, failing on duplicates.
func readTar(t testing.TB, b []byte) (map[string]tarEntry, []string) {
	t.Helper()
	m := make(map[string]tarEntry)
	var order []string
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		var xs []string
		for k, v := range h.PAXRecords {
			if x, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
				xs = append(xs, x+"="+v)
			}
		}
		sort.Strings(xs)
		name := strings.TrimSuffix(h.Name, "/")
		if _, dup := m[name]; dup {
			t.Errorf("duplicate tar entry %q", name)
		}
		m[name] = tarEntry{typ: h.Typeflag, mode: h.Mode, uid: h.Uid, gid: h.Gid, link: h.Linkname,
			content: string(body), xattrs: strings.Join(xs, ","), mtime: h.ModTime.Unix()}
		order = append(order, name)
	}
	return m, order
}
