//go:build integration

package runtime_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// mountInfo is one line of /proc/PID/mountinfo.
type mountInfo struct {
	mountPoint string
	options    string   // per-mount options
	optional   []string // optional fields (shared:N, master:N, ...)
	fsType     string
	source     string
	superOpts  string
}

// parseMountinfo parses mountinfo text.
func parseMountinfo(text string) []mountInfo {
	var mis []mountInfo
	for line := range strings.Lines(text) {
		f := strings.Fields(line)
		sep := slices.Index(f, "-")
		if len(f) < 6 || sep < 6 || len(f) < sep+4 {
			continue
		}
		mis = append(mis, mountInfo{
			mountPoint: unescapeMount(f[4]),
			options:    f[5],
			optional:   f[6:sep],
			fsType:     f[sep+1],
			source:     f[sep+2],
			superOpts:  f[sep+3],
		})
	}
	return mis
}

// unescapeMount undoes the octal escapes of mountinfo paths.
func unescapeMount(s string) string {
	for _, esc := range [][2]string{{`\040`, " "}, {`\011`, "\t"}, {`\012`, "\n"}, {`\134`, `\`}} {
		s = strings.ReplaceAll(s, esc[0], esc[1])
	}
	return s
}

// findMount returns the last (topmost) mount at mountPoint.
func findMount(mis []mountInfo, mountPoint string) (mountInfo, bool) {
	for i := len(mis) - 1; i >= 0; i-- {
		if mis[i].mountPoint == mountPoint {
			return mis[i], true
		}
	}
	return mountInfo{}, false
}

// hasOpt reports whether a comma-separated option list contains opt.
func hasOpt(list, opt string) bool {
	return slices.Contains(strings.Split(list, ","), opt)
}

// execCheck is one command run in a container with what it must give.
type execCheck struct {
	name   string
	args   []string
	fail   bool   // must exit non-zero
	stdout string // exact stdout, unless "" (then see contains)
	// contains must each occur in stdout (or stderr when fail is set).
	contains []string
	exact    bool // stdout must equal stdout even if empty
}

// runChecks runs each check with exec in the running container c.
func runChecks(t *testing.T, c *ctr, checks []execCheck) {
	t.Helper()
	for _, ck := range checks {
		t.Run(ck.name, func(t *testing.T) {
			r := c.exec(nil, ck.args...)
			switch {
			case ck.fail && r.code == 0:
				t.Errorf("%q succeeded, want failure: %v", ck.args, r)
			case !ck.fail && r.code != 0:
				t.Errorf("%q failed: %v", ck.args, r)
			}
			if (ck.stdout != "" || ck.exact) && r.stdout != ck.stdout {
				t.Errorf("%q: stdout %q, want %q", ck.args, r.stdout, ck.stdout)
			}
			text := r.stdout
			if ck.fail {
				text = r.stderr
			}
			for _, s := range ck.contains {
				if !strings.Contains(strings.ToLower(text), strings.ToLower(s)) {
					t.Errorf("%q: output lacks %q: %v", ck.args, s, r)
				}
			}
		})
	}
}

// TestMounts sets up one container with every kind of mount and masked
// and read-only paths, and checks each from inside.
func TestMounts(t *testing.T) {
	t.Parallel()
	c := newCtr(t)
	shared := t.TempDir()
	if err := os.WriteFile(filepath.Join(shared, "hello"), []byte("hello from host"), 0o644); err != nil {
		t.Fatal(err)
	}
	single := filepath.Join(t.TempDir(), "single.txt")
	if err := os.WriteFile(single, []byte("single file"), 0o644); err != nil {
		t.Fatal(err)
	}
	rootfs := filepath.Join(c.bundle, "rootfs")
	for _, d := range []string{"secretdir", "data"} {
		if err := os.Mkdir(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range map[string]string{"etc/secret": "s3cret", "secretdir/inner": "inner secret", "data/file": "data"} {
		if err := os.WriteFile(filepath.Join(rootfs, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c.spec.Root.Readonly = false
	c.spec.Mounts = append(c.spec.Mounts,
		mount("/scratch", "tmpfs", "tmpfs", "nosuid", "nodev", "size=1m", "mode=1770"),
		mount("/ro", "bind", shared, "bind", "ro"),
		mount("/rw", "bind", shared, "rbind", "rw"),
		mount("/etc/single.txt", "bind", single, "bind", "ro"),
	)
	c.spec.Linux.MaskedPaths = append(c.spec.Linux.MaskedPaths, "/etc/secret", "/secretdir")
	c.spec.Linux.ReadonlyPaths = append(c.spec.Linux.ReadonlyPaths, "/data")
	c.startLong()
	mis := parseMountinfo(c.execOK("mounts"))

	t.Run("tmpfs options", func(t *testing.T) {
		m, ok := findMount(mis, "/scratch")
		if !ok {
			t.Fatalf("no mount at /scratch")
		}
		if m.fsType != "tmpfs" || !hasOpt(m.superOpts, "size=1024k") || !hasOpt(m.superOpts, "mode=1770") {
			t.Errorf("/scratch: %+v, want tmpfs with size=1024k,mode=1770", m)
		}
		if !hasOpt(m.options, "nosuid") || !hasOpt(m.options, "nodev") {
			t.Errorf("/scratch mount options %q, want nosuid,nodev", m.options)
		}
	})
	t.Run("proc and sys", func(t *testing.T) {
		for mp, typ := range map[string]string{"/proc": "proc", "/sys": "sysfs", "/dev": "tmpfs", "/dev/pts": "devpts", "/dev/shm": "tmpfs", "/dev/mqueue": "mqueue"} {
			if m, ok := findMount(mis, mp); !ok || m.fsType != typ {
				t.Errorf("mount at %s: %+v (found %v), want %s", mp, m, ok, typ)
			}
		}
		if m, _ := findMount(mis, "/sys"); !hasOpt(m.options, "ro") {
			t.Errorf("/sys options %q, want ro", m.options)
		}
	})
	t.Run("masked dir is an empty read-only tmpfs", func(t *testing.T) {
		for _, p := range []string{"/secretdir", "/sys/firmware"} {
			m, ok := findMount(mis, p)
			if !ok || m.fsType != "tmpfs" || !hasOpt(m.options, "ro") {
				t.Errorf("masked %s: %+v (found %v), want a read-only tmpfs", p, m, ok)
			}
		}
	})
	t.Run("readonly paths are read-only mounts", func(t *testing.T) {
		for _, p := range []string{"/data", "/proc/sys", "/proc/irq"} {
			if m, ok := findMount(mis, p); !ok || !hasOpt(m.options, "ro") {
				t.Errorf("read-only path %s: %+v (found %v), want an ro mount", p, m, ok)
			}
		}
	})

	erofs := "read-only file system"
	var checks []execCheck
	// Default masked files that exist on this kernel (runc's list; which
	// exist depends on the kernel configuration).
	for _, p := range []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/latency_stats", "/proc/sched_debug"} {
		if _, err := os.Stat(p); err == nil {
			checks = append(checks, execCheck{name: "default masked " + p, args: []string{"cat", p}, exact: true})
		}
	}
	runChecks(t, c, append(checks, []execCheck{
		{name: "tmpfs mode", args: []string{"stat", "/scratch"}, stdout: "mode=1770 uid=0 gid=0 type=directory\n"},
		{name: "ro bind readable", args: []string{"cat", "/ro/hello"}, stdout: "hello from host"},
		{name: "ro bind not writable", args: []string{"write", "/ro/new", "x"}, fail: true, contains: []string{erofs}},
		{name: "rw bind writable", args: []string{"write", "/rw/written", "from container"}},
		{name: "file bind readable", args: []string{"cat", "/etc/single.txt"}, stdout: "single file"},
		{name: "ro file bind not writable", args: []string{"write", "/etc/single.txt", "x"}, fail: true, contains: []string{erofs}},
		{name: "proc", args: []string{"cat", "/proc/self/comm"}, stdout: "cat\n"},
		{name: "sys", args: []string{"ls", "/sys"}, contains: []string{"kernel\n", "fs\n"}},
		{name: "masked file reads empty", args: []string{"cat", "/etc/secret"}, exact: true},
		{name: "masked dir empty", args: []string{"ls", "-a", "/secretdir"}, stdout: ".\n..\n"},
		{name: "default masked dir empty", args: []string{"ls", "-a", "/sys/firmware"}, stdout: ".\n..\n"},
		{name: "masked dir not writable", args: []string{"write", "/secretdir/x", "y"}, fail: true, contains: []string{erofs}},
		// A masked file is /dev/null: writes vanish.
		{name: "masked file write vanishes", args: []string{"write", "/etc/secret", "y"}},
		{name: "masked file still empty", args: []string{"cat", "/etc/secret"}, exact: true},
		{name: "readonly path readable", args: []string{"cat", "/data/file"}, stdout: "data"},
		{name: "readonly path not writable", args: []string{"write", "/data/file", "x"}, fail: true, contains: []string{erofs}},
		{name: "default readonly /proc/sys", args: []string{"write", "/proc/sys/kernel/domainname", "x"}, fail: true, contains: []string{erofs}},
		{name: "root writable", args: []string{"write", "/tmp/ok", "x"}},
	}...))

	if data, err := os.ReadFile(filepath.Join(shared, "written")); err != nil || string(data) != "from container" {
		t.Errorf("write through the rw bind: host file %q (%v)", data, err)
	}
	if _, err := os.Stat(filepath.Join(shared, "new")); err == nil {
		t.Errorf("write through the ro bind reached the host")
	}
	if data, _ := os.ReadFile(single); string(data) != "single file" {
		t.Errorf("bound host file changed: %q", data)
	}
	if data, _ := os.ReadFile(filepath.Join(rootfs, "etc/secret")); string(data) != "s3cret" {
		t.Errorf("masked file changed on the host: %q", data)
	}
}

func TestRootReadonly(t *testing.T) {
	t.Parallel()
	for _, ro := range []bool{true, false} {
		t.Run(fmt.Sprintf("readonly=%v", ro), func(t *testing.T) {
			t.Parallel()
			c := newCtr(t)
			c.spec.Root.Readonly = ro
			c.startLong()
			mis := parseMountinfo(c.execOK("mounts"))
			if m, ok := findMount(mis, "/"); !ok || hasOpt(m.options, "ro") != ro {
				t.Errorf("root mount %+v (found %v): want ro=%v", m, ok, ro)
			}
			checks := []execCheck{
				{name: "tmpfs under ro root", args: []string{"write", "/dev/shm/x", "y"}},
			}
			if ro {
				checks = append(checks,
					execCheck{name: "root", args: []string{"write", "/rootfile", "x"}, fail: true, contains: []string{"read-only file system"}},
					execCheck{name: "tmp", args: []string{"mkdir", "/tmp/d"}, fail: true, contains: []string{"read-only file system"}})
			} else {
				checks = append(checks,
					execCheck{name: "root", args: []string{"write", "/rootfile", "x"}},
					execCheck{name: "tmp", args: []string{"mkdir", "/tmp/d"}})
			}
			runChecks(t, c, checks)
			_, err := os.Stat(filepath.Join(c.bundle, "rootfs/rootfile"))
			if ro && err == nil {
				t.Errorf("a write to a read-only root reached the rootfs")
			}
			if !ro && err != nil {
				t.Errorf("a write to a writable root did not reach the rootfs: %v", err)
			}
		})
	}
}

// TestRootfsPropagation checks the propagation type of the container's
// root mount. The host's root is private here, so a slave root has no
// master and only "shared" shows a peer group.
func TestRootfsPropagation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		prop       string
		wantShared bool
	}{
		{"shared", true},
		{"rshared", true},
		{"private", false},
		{"rprivate", false},
		{"slave", false},
		{"rslave", false},
	}
	for _, tt := range tests {
		t.Run(tt.prop, func(t *testing.T) {
			t.Parallel()
			c := newCtr(t).args("mounts")
			c.spec.Linux.RootfsPropagation = tt.prop
			mis := parseMountinfo(c.runToEnd())
			root, ok := findMount(mis, "/")
			if !ok {
				t.Fatalf("no root mount in the container's mountinfo")
			}
			shared := slices.ContainsFunc(root.optional, func(f string) bool { return strings.HasPrefix(f, "shared:") })
			if shared != tt.wantShared {
				t.Errorf("rootfsPropagation %s: root mount optional fields %q, want shared=%v", tt.prop, root.optional, tt.wantShared)
			}
		})
	}
}

// TestDevices checks the default devices: present, with the right type,
// mode and device numbers, and the standard symlinks.
func TestDevices(t *testing.T) {
	t.Parallel()
	c := newCtr(t)
	pid := c.startLong()
	devices := []struct {
		name         string
		major, minor uint32
	}{
		{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7},
		{"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0},
	}
	var checks []execCheck
	for _, d := range devices {
		checks = append(checks, execCheck{name: d.name, args: []string{"stat", "/dev/" + d.name}, stdout: "mode=0666 uid=0 gid=0 type=char\n"})
		// The stat applet shows no device numbers: look from the host,
		// through the init's root.
		var st unix.Stat_t
		p := fmt.Sprintf("/proc/%d/root/dev/%s", pid, d.name)
		if err := unix.Stat(p, &st); err != nil {
			t.Errorf("stat %s: %v", p, err)
			continue
		}
		if st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(st.Rdev) != d.major || unix.Minor(st.Rdev) != d.minor {
			t.Errorf("/dev/%s: mode %o rdev %d:%d, want a char device %d:%d", d.name, st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev), d.major, d.minor)
		}
	}
	links := map[string]string{
		"/dev/ptmx": "pts/ptmx", "/dev/fd": "/proc/self/fd",
		"/dev/stdin": "/proc/self/fd/0", "/dev/stdout": "/proc/self/fd/1", "/dev/stderr": "/proc/self/fd/2",
	}
	for link, target := range links {
		checks = append(checks, execCheck{name: link, args: []string{"readlink", link}, stdout: target + "\n"})
	}
	checks = append(checks,
		execCheck{name: "devpts ptmx", args: []string{"stat", "/dev/pts/ptmx"}, contains: []string{"type=char"}},
		execCheck{name: "null writable", args: []string{"write", "/dev/null", "x"}},
		execCheck{name: "shm", args: []string{"stat", "/dev/shm"}, contains: []string{"mode=1777", "type=directory"}},
	)
	runChecks(t, c, checks)

	var st unix.Stat_t
	ptmx := fmt.Sprintf("/proc/%d/root/dev/pts/ptmx", pid)
	if err := unix.Stat(ptmx, &st); err != nil || unix.Major(st.Rdev) != 5 || unix.Minor(st.Rdev) != 2 {
		t.Errorf("/dev/pts/ptmx: rdev %d:%d (%v), want 5:2", unix.Major(st.Rdev), unix.Minor(st.Rdev), err)
	}
}

// TestMountSymlinkEscape gives the rootfs symlinks that point at a host
// directory and uses them as mount destinations: the runtime must resolve
// them inside the rootfs (or refuse), never create or mount anything on
// the host path.
func TestMountSymlinkEscape(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		relative bool   // relative symlink climbing out with ../
		sub      string // destination below the symlink ("" for the link itself)
		bind     bool   // a bind mount instead of a tmpfs
		// inRoot creates the link's target inside the rootfs too, so that
		// resolving in the rootfs finds an existing directory.
		inRoot bool
	}{
		{name: "tmpfs on link"},
		{name: "tmpfs below link", sub: "sub"},
		{name: "bind below link", sub: "sub", bind: true},
		{name: "bind on link", bind: true},
		{name: "relative link", relative: true, sub: "sub"},
		{name: "tmpfs on link, target in rootfs", inRoot: true},
		{name: "bind below link, target in rootfs", sub: "sub", bind: true, inRoot: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sentinel, err := os.MkdirTemp("/tmp", "berth-it-sentinel-")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(sentinel) })
			if err := os.WriteFile(filepath.Join(sentinel, "sentinel"), []byte("untouched"), 0o644); err != nil {
				t.Fatal(err)
			}
			before := snapshotDir(t, sentinel)

			c := newCtr(t)
			rootfs := filepath.Join(c.bundle, "rootfs")
			target := sentinel
			if tt.relative {
				target = strings.Repeat("../", 20) + strings.TrimPrefix(sentinel, "/")
			}
			if err := os.Symlink(target, filepath.Join(rootfs, "escape")); err != nil {
				t.Fatal(err)
			}
			if tt.inRoot {
				if err := os.MkdirAll(filepath.Join(rootfs, sentinel, tt.sub), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			dest := "/escape"
			if tt.sub != "" {
				dest += "/" + tt.sub
			}
			m := mount(dest, "tmpfs", "tmpfs", "size=64k")
			if tt.bind {
				src := t.TempDir()
				if err := os.WriteFile(filepath.Join(src, "evil"), []byte("evil"), 0o644); err != nil {
					t.Fatal(err)
				}
				m = mount(dest, "bind", src, "bind")
			}
			c.spec.Mounts = append(c.spec.Mounts, m)
			c.args("sleep", "60")
			created := c.create().code == 0
			if created {
				c.must("start")
				c.waitStatus("running")
				// Inside, the mount is where the link resolves to within
				// the rootfs.
				inside := filepath.Join(sentinel, tt.sub)
				mis := parseMountinfo(c.execOK("mounts"))
				if _, ok := findMount(mis, inside); !ok {
					t.Errorf("created, but no mount at %s inside the container (the link resolved in the rootfs)", inside)
				}
			} else {
				t.Logf("create refused the symlinked destination: %q", c.errOutput())
				assertNothingLeft(t, c.root, c.id, c.bundle)
			}

			if after := snapshotDir(t, sentinel); !slices.Equal(before, after) {
				t.Errorf("host directory %s changed:\nbefore %q\nafter  %q", sentinel, before, after)
			}
			hostMounts, err := os.ReadFile("/proc/self/mountinfo")
			if err != nil {
				t.Fatal(err)
			}
			for _, mi := range parseMountinfo(string(hostMounts)) {
				if mi.mountPoint == sentinel || strings.HasPrefix(mi.mountPoint, sentinel+"/") {
					t.Errorf("host has a mount at %s: %+v", mi.mountPoint, mi)
				}
			}
		})
	}
}

// snapshotDir lists the entries below dir with their mode, size and
// content, for comparison.
func snapshotDir(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := e.Info()
		if err != nil {
			return err
		}
		s := fmt.Sprintf("%s %v %d", strings.TrimPrefix(p, dir), fi.Mode(), fi.Size())
		if fi.Mode().IsRegular() {
			data, _ := os.ReadFile(p)
			s += " " + strconv.Quote(string(data))
		}
		var st syscall.Stat_t
		if syscall.Lstat(p, &st) == nil {
			s += fmt.Sprintf(" dev=%d", st.Dev)
		}
		out = append(out, s)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
