package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fullTree describes every entry of a tree with all the metadata copyTree
// must preserve: type, mode, owner, size and content digest, device
// number, link target, nanosecond times, all extended attributes, and hard
// link groups (by the first path of the group).
func fullTree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := make(map[string]string)
	groups := make(map[inodeID]string)
	var paths []string
	err := filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		paths = append(paths, p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(paths)
	for _, p := range paths {
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		desc := fmt.Sprintf("mode=%o owner=%d:%d mtime=%d.%09d", st.Mode, st.Uid, st.Gid, st.Mtim.Sec, st.Mtim.Nsec)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
		case unix.S_IFREG:
			b := readNoAtime(t, p)
			desc += fmt.Sprintf(" size=%d content=%x atime=%d.%09d", st.Size, b[:min(len(b), 32)], st.Atim.Sec, st.Atim.Nsec)
			if len(b) > 0 && b[len(b)-1] != b[0] {
				desc += " tail-differs"
			}
		case unix.S_IFLNK:
			target, _ := os.Readlink(p)
			desc += " -> " + target
		default:
			desc += fmt.Sprintf(" rdev=%d", st.Rdev)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR && st.Nlink > 1 {
			id := inodeID{st.Dev, st.Ino}
			if first, ok := groups[id]; ok {
				desc += " linked-to=" + first
			} else {
				groups[id] = rel
				desc += fmt.Sprintf(" nlink=%d", st.Nlink)
			}
		}
		buf := make([]byte, 4096)
		n, _ := unix.Llistxattr(p, buf)
		names := strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00")
		sort.Strings(names)
		for _, name := range names {
			if name == "" {
				continue
			}
			v := make([]byte, 4096)
			m, err := unix.Lgetxattr(p, name, v)
			if err != nil {
				t.Fatal(err)
			}
			desc += fmt.Sprintf(" %s=%x", name, v[:m])
		}
		out[rel] = desc
	}
	return out
}

func TestCopyTree(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	at := func(p string) string { return filepath.Join(src, p) }
	must(os.Mkdir(src, 0o750))
	must(os.MkdirAll(at("a/b/c"), 0o755))
	must(os.Mkdir(at("sticky"), 0o755))
	must(os.Chmod(at("sticky"), 0o1777))
	must(os.Mkdir(at("closed"), 0o755))
	must(os.WriteFile(at("closed/inside"), []byte("in"), 0o644))
	big := make([]byte, 3<<20+17)
	for i := range big {
		big[i] = byte(i * 7)
	}
	must(os.WriteFile(at("a/big"), big, 0o644))
	must(os.WriteFile(at("a/b/empty"), nil, 0o600))
	must(os.WriteFile(at("setuid"), []byte("#!"), 0o755))
	must(os.Chown(at("setuid"), 1000, 1000))
	must(os.Chmod(at("setuid"), 0o6755))
	must(os.Link(at("a/big"), at("a/b/c/big-link")))
	must(os.Link(at("a/big"), at("big-link2")))
	must(os.Symlink("../../etc/passwd", at("a/b/escape")))
	must(os.Symlink("a/big", at("rel")))
	must(unix.Lchown(at("rel"), 33, 44))
	must(unix.Mknod(at("null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(unix.Mknod(at("blk"), unix.S_IFBLK|0o600, int(unix.Mkdev(7, 200))))
	must(unix.Mkfifo(at("fifo"), 0o640))
	must(unix.Mknod(at("sock"), unix.S_IFSOCK|0o755, 0))
	must(unix.Link(at("fifo"), at("fifo-link")))
	must(unix.Setxattr(at("a/big"), "user.one", []byte("1"), 0))
	must(unix.Setxattr(at("a"), "user.dir", []byte("d"), 0))
	must(unix.Setxattr(at("null"), "trusted.dev", []byte("t"), 0))
	must(unix.Lsetxattr(at("rel"), "trusted.link", []byte("l"), 0))
	// File capabilities (v2, CAP_NET_BIND_SERVICE), which chown would clear.
	caps := []byte{0, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	must(unix.Setxattr(at("setuid"), "security.capability", caps, 0))
	must(os.Chmod(at("closed"), 0))
	old := time.Date(2001, 2, 3, 4, 5, 6, 789, time.UTC)
	err := filepath.Walk(src, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		ts := []unix.Timespec{unix.NsecToTimespec(old.UnixNano() - 1000), unix.NsecToTimespec(old.UnixNano())}
		return unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
	})
	must(err)

	dst := filepath.Join(t.TempDir(), "dst")
	must(os.Mkdir(dst, 0o700))
	must(copyTree(context.Background(), src, dst))
	want, got := fullTree(t, src), fullTree(t, dst)
	if len(want) != 19 {
		t.Fatalf("source tree has %d entries", len(want))
	}
	diffTrees(t, "copy", got, want)

	// A cancelled context stops the copy.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dst2 := filepath.Join(t.TempDir(), "dst")
	must(os.Mkdir(dst2, 0o700))
	if err := copyTree(ctx, src, dst2); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled copy: %v", err)
	}
}

func TestCopyDataFallbacks(t *testing.T) {
	dir := t.TempDir()
	data := []byte(strings.Repeat("0123456789", 100000))
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(dir, "src"), data, 0o600))
	for _, c := range []struct {
		name             string
		clone, copyRange bool
	}{{"clone", true, true}, {"copy_file_range", false, true}, {"read-write", false, false}} {
		t.Run(c.name, func(t *testing.T) {
			in, err := os.Open(filepath.Join(dir, "src"))
			must(err)
			defer in.Close()
			out, err := os.Create(filepath.Join(dir, c.name))
			must(err)
			defer out.Close()
			tc := &treeCopier{buf: make([]byte, 4096), clone: c.clone, copyRange: c.copyRange}
			must(tc.copyData(int(out.Fd()), int(in.Fd()), int64(len(data))))
			if got := readFile(t, out.Name()); got != string(data) {
				t.Fatalf("copied %d bytes, want %d", len(got), len(data))
			}
		})
	}
}

func TestDiskUsageHardlinks(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), make([]byte, 100<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := os.Link(filepath.Join(dir, "f"), filepath.Join(dir, fmt.Sprint("l", i))); err != nil {
			t.Fatal(err)
		}
	}
	u, err := diskUsage(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(dir, "f"), &st); err != nil {
		t.Fatal(err)
	}
	var dst syscall.Stat_t
	if err := syscall.Stat(dir, &dst); err != nil {
		t.Fatal(err)
	}
	if want := (Usage{Size: (st.Blocks + dst.Blocks) * 512, Inodes: 2}); u != want {
		t.Fatalf("usage %+v, want %+v", u, want)
	}
}

// readNoAtime reads a file without updating its access time.
func readNoAtime(t *testing.T, p string) []byte {
	t.Helper()
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOATIME, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
