package snapshot

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/berth-engine/berth/internal/failpoint"
)

// The test binary doubles as a helper process: with envHelper set, TestMain
// runs that scenario against the root at envRoot instead of the tests (and
// dies at the failpoint armed in its environment, if any).
const (
	envHelper = "BERTH_SNAPSHOT_TEST_HELPER"
	envRoot   = "BERTH_SNAPSHOT_TEST_ROOT"
	envDriver = "BERTH_SNAPSHOT_TEST_DRIVER"
	envArg    = "BERTH_SNAPSHOT_TEST_ARG"
)

func TestMain(m *testing.M) {
	if h := os.Getenv(envHelper); h != "" {
		if err := runHelper(h); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func runHelper(scenario string) error {
	s, err := Open(os.Getenv(envRoot), Options{Driver: os.Getenv(envDriver)})
	if err != nil {
		return err
	}
	ctx := context.Background()
	arg := os.Getenv(envArg)
	switch scenario {
	case "open":
		return nil
	case "prepare":
		_, err := s.Prepare(ctx, "new", "base", nil)
		return err
	case "view":
		_, err := s.View(ctx, "new", "base", nil)
		return err
	case "commit":
		return s.Commit(ctx, "committed", "active", map[string]string{"l": "v"})
	case "remove":
		return s.Remove(ctx, "victim")
	case "cleanup":
		return s.Cleanup(ctx)
	case "apply-kill":
		// Killed in the middle of a layer.
		layer := mustLayer(bigLayer(64))
		r := io.MultiReader(bytes.NewReader(layer[:len(layer)/2]), readerFunc(func([]byte) (int, error) {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}))
		_, err := s.ApplyLayer(ctx, "active", r)
		return err
	case "commit-race":
		key := "work-" + arg
		if _, err := s.Prepare(ctx, key, "", nil); err != nil {
			return err
		}
		if _, err := s.ApplyLayer(ctx, key, bytes.NewReader(mustLayer([]entry{file("who", arg)}))); err != nil {
			return err
		}
		err := s.Commit(ctx, "layer", key, map[string]string{"winner": arg})
		switch {
		case err == nil:
			fmt.Println("won")
		case errors.Is(err, ErrAlreadyExists):
			fmt.Println("lost")
			return s.Remove(ctx, key)
		default:
			return err
		}
		return nil
	}
	return fmt.Errorf("unknown scenario %q", scenario)
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// helperCmd prepares the test binary as a helper process.
func helperCmd(scenario, root, driver string, env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envHelper+"="+scenario, envRoot+"="+root, envDriver+"="+driver)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = os.Stderr
	return cmd
}

// runKilled runs a helper that must die at the failpoint snapshot.<step>
// (or on its own, with step "").
func runKilled(t *testing.T, scenario, root, driver, step string) {
	t.Helper()
	var env []string
	if step != "" {
		env = append(env, failpoint.EnvVar+"=snapshot."+step)
	}
	cmd := helperCmd(scenario, root, driver, env...)
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("helper %s at %s: %v, want killed by SIGKILL", scenario, step, err)
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("helper %s at %s: %v, want killed by SIGKILL (failpoint not reached?)", scenario, step, err)
	}
}

// drivers are the drivers every driver-independent test runs with.
var drivers = []string{DriverOverlay, DriverNative}

// newRoot returns a new directory for a snapshot root. Its cleanup detaches
// whatever a test or a killed helper left mounted below it before the
// directory is removed, so that the removal never crosses into a mount.
func newRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	t.Cleanup(func() { detachBelow(t, root) })
	return root
}

func detachBelow(t *testing.T, dir string) {
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		t.Error(err)
		return
	}
	slices.SortFunc(mounts, func(a, b *mountinfo.Info) int { return len(b.Mountpoint) - len(a.Mountpoint) })
	for _, m := range mounts {
		if err := unix.Unmount(m.Mountpoint, unix.MNT_DETACH); err != nil && err != unix.EINVAL {
			t.Errorf("unmount %s: %v", m.Mountpoint, err)
		}
	}
}

func openRoot(t *testing.T, root, driver string) *Snapshotter {
	t.Helper()
	s, err := Open(root, Options{Driver: driver})
	if err != nil {
		t.Fatal(err)
	}
	if driver != "" && s.Driver() != driver {
		t.Fatalf("driver %s, want %s", s.Driver(), driver)
	}
	return s
}

func newSnapshotter(t *testing.T, driver string) *Snapshotter {
	t.Helper()
	return openRoot(t, newRoot(t), driver)
}

// entry describes one member of a test layer.
type entry struct {
	name     string
	typ      byte
	body     string
	mode     int64
	link     string
	uid, gid int
	mtime    time.Time
	xattrs   map[string]string
}

var testTime = time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)

func file(name, body string) entry {
	return entry{name: name, typ: tar.TypeReg, body: body, mode: 0o644}
}
func dir(name string) entry { return entry{name: name, typ: tar.TypeDir, mode: 0o755} }
func whiteout(name string) entry {
	d, b := filepath.Split(name)
	return file(d+".wh."+b, "")
}
func opaque(dir string) entry { return file(dir+"/.wh..wh..opq", "") }
func symlink(name, target string) entry {
	return entry{name: name, typ: tar.TypeSymlink, link: target, mode: 0o777}
}
func hardlink(name, target string) entry { return entry{name: name, typ: tar.TypeLink, link: target} }

// bigLayer has n files of 64 KiB.
func bigLayer(n int) []entry {
	var es []entry
	for i := range n {
		es = append(es, file("big/"+strconv.Itoa(i), strings.Repeat(strconv.Itoa(i%10), 64<<10)))
	}
	return es
}

func mustLayer(entries []entry) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{
			Name:     e.name,
			Typeflag: e.typ,
			Mode:     e.mode,
			Linkname: e.link,
			Uid:      e.uid,
			Gid:      e.gid,
			ModTime:  e.mtime,
			Format:   tar.FormatPAX,
		}
		if hdr.ModTime.IsZero() {
			hdr.ModTime = testTime
		}
		if e.typ == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		for k, v := range e.xattrs {
			if hdr.PAXRecords == nil {
				hdr.PAXRecords = make(map[string]string)
			}
			hdr.PAXRecords["SCHILY.xattr."+k] = v
		}
		if err := tw.WriteHeader(hdr); err != nil {
			panic(err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			panic(err)
		}
	}
	if err := tw.Close(); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// addLayer prepares key on parent, applies entries, and commits it as name.
func addLayer(t *testing.T, s *Snapshotter, name, parent string, entries ...entry) {
	t.Helper()
	ctx := context.Background()
	key := name + "-extract"
	if _, err := s.Prepare(ctx, key, parent, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ApplyLayer(ctx, key, bytes.NewReader(mustLayer(entries))); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, name, key, nil); err != nil {
		t.Fatal(err)
	}
}

// mountTemp mounts mounts on a new directory, detached at cleanup.
func mountTemp(t *testing.T, mounts []Mount) string {
	t.Helper()
	target := t.TempDir()
	if err := MountAll(mounts, target); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := UnmountAll(target); err != nil {
			t.Error(err)
		}
	})
	return target
}

// captureTree describes every entry below root (type, mode, owner,
// content, link target, regular files' mtime, user xattrs).
func captureTree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := make(map[string]string)
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		st := fi.Sys().(*syscall.Stat_t)
		desc := fmt.Sprintf("%o %d:%d", st.Mode&0o7777, st.Uid, st.Gid)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			desc = "dir " + desc
		case unix.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc = fmt.Sprintf("file %s %q mtime=%d", desc, b, fi.ModTime().Unix())
		case unix.S_IFLNK:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			desc = fmt.Sprintf("symlink %d:%d -> %s", st.Uid, st.Gid, target)
		default:
			desc = fmt.Sprintf("special %o %s rdev=%d", st.Mode&unix.S_IFMT, desc, st.Rdev)
		}
		if x := userXattrs(p); x != "" {
			desc += " " + x
		}
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func userXattrs(p string) string {
	buf := make([]byte, 4096)
	n, err := unix.Llistxattr(p, buf)
	if err != nil || n == 0 {
		return ""
	}
	var out []string
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if !strings.HasPrefix(name, "user.") {
			continue
		}
		v := make([]byte, 4096)
		m, err := unix.Lgetxattr(p, name, v)
		if err != nil {
			continue
		}
		out = append(out, name+"="+string(v[:m]))
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

func diffTrees(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	var keys []string
	for k := range got {
		keys = append(keys, k)
	}
	for k := range want {
		if _, ok := got[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if got[k] != want[k] {
			t.Errorf("%s: %s:\n  got  %s\n  want %s", what, k, got[k], want[k])
		}
	}
}

// checkRoot asserts the root's invariants: every record has its directory
// (and parent), every directory has its record, nothing is left in the
// trash, tmp/ or mounted, and the root holds only its own files.
func checkRoot(t *testing.T, s *Snapshotter) {
	t.Helper()
	ctx := context.Background()
	used := make(map[string]bool)
	err := s.Walk(ctx, func(info Info) error {
		r, err := s.stat(ctx, info.Key)
		if err != nil {
			return err
		}
		used[strconv.FormatUint(r.ID, 10)] = true
		want := []string{fsDirName}
		if s.driver == DriverOverlay && info.Kind == KindActive {
			want = append(want, workDirName)
		}
		for _, w := range want {
			if fi, err := os.Lstat(filepath.Join(s.dir(r.ID), w)); err != nil || !fi.IsDir() {
				t.Errorf("snapshot %q (%d): %s: %v", info.Key, r.ID, w, err)
			}
		}
		if info.Parent != "" {
			p, err := s.Stat(ctx, info.Parent)
			if err != nil || p.Kind != KindCommitted {
				t.Errorf("snapshot %q: parent %q: %+v, %v", info.Key, info.Parent, p, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(s.path(snapshotsDir))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !used[e.Name()] {
			t.Errorf("unreferenced snapshot directory %s", e.Name())
		}
	}
	for _, d := range []string{trashDir, tmpDir} {
		entries, err := os.ReadDir(s.path(d))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			t.Errorf("left in %s: %s", d, e.Name())
		}
	}
	entries, err = os.ReadDir(s.root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		switch e.Name() {
		case layoutFileName, dbFileName, lockFileName, snapshotsDir, trashDir, tmpDir:
		default:
			t.Errorf("unexpected file in root: %s", e.Name())
		}
	}
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(s.root))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mounts {
		t.Errorf("left mounted: %s", m.Mountpoint)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
