//go:build linux

package archive

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// hostileCase is a sequence of layers applied in order onto one root.
type hostileCase struct {
	name string
	// layers get the sandbox so they can name its absolute paths.
	layers func(s *sandbox) [][]ent
	opts   ApplyOptions
	// wantErr is the error of the last layer (nil: contained, no error);
	// errAny accepts any error.
	wantErr error
	errAny  bool
	// check runs on the root after the layers.
	check func(t *testing.T, s *sandbox)
}

func exists(t *testing.T, p string) bool {
	t.Helper()
	_, err := os.Lstat(p)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return err == nil
}

func hostileCases() []hostileCase {
	return []hostileCase{
		{
			name:    "dotdot",
			layers:  func(s *sandbox) [][]ent { return [][]ent{{file("../../x", "pwned")}} },
			wantErr: ErrBreakout,
		},
		{
			name:    "dotdot-sentinel",
			layers:  func(s *sandbox) [][]ent { return [][]ent{{file("a/../../../../sentinel/canary", "pwned")}} },
			wantErr: ErrBreakout,
		},
		{
			name:   "absolute",
			layers: func(s *sandbox) [][]ent { return [][]ent{{file("/abs/x", "ok")}} },
			check: func(t *testing.T, s *sandbox) {
				if b, err := os.ReadFile(filepath.Join(s.root, "abs/x")); err != nil || string(b) != "ok" {
					t.Errorf("absolute name not contained: %q %v", b, err)
				}
			},
		},
		{
			name: "absolute-sentinel",
			layers: func(s *sandbox) [][]ent {
				return [][]ent{{file(s.sentinel+"/canary", "pwned"), file("/../../"+s.sentinel+"/new", "x")}}
			},
			check: func(t *testing.T, s *sandbox) {
				if !exists(t, filepath.Join(s.root, s.sentinel, "canary")) || !exists(t, filepath.Join(s.root, s.sentinel, "new")) {
					t.Error("absolute names not extracted inside the root")
				}
			},
		},
		{
			name: "symlink-out-then-file-same-layer",
			layers: func(s *sandbox) [][]ent {
				return [][]ent{{symlink("evil", s.sentinel), file("evil/canary", "pwned"), file("evil/new", "pwned")}}
			},
			errAny: true, // root/<sentinel> does not exist: a dangling link
			check: func(t *testing.T, s *sandbox) {
				if l, err := os.Readlink(filepath.Join(s.root, "evil")); err != nil || l != s.sentinel {
					t.Errorf("symlink not created as is: %q %v", l, err)
				}
			},
		},
		{
			name: "symlink-out-then-file-two-layers",
			layers: func(s *sandbox) [][]ent {
				return [][]ent{{symlink("evil", s.sentinel)}, {file("evil/canary", "pwned")}}
			},
			errAny: true,
		},
		{
			name: "symlink-relative-out-then-file",
			layers: func(s *sandbox) [][]ent {
				return [][]ent{{symlink("evil", "../../../sentinel")}, {file("evil/canary", "pwned")}}
			},
			errAny: true,
		},
		{
			name: "symlink-to-host-root-contained",
			layers: func(s *sandbox) [][]ent {
				// evil -> "/" (and "../../..") resolve to the root itself.
				return [][]ent{
					{symlink("evil", "/"), symlink("up", "../../.."), dir("etc/")},
					{file("evil/etc/pwned", "contained"), file("up/sentinel-ish", "contained")},
				}
			},
			check: func(t *testing.T, s *sandbox) {
				if !exists(t, filepath.Join(s.root, "etc/pwned")) || !exists(t, filepath.Join(s.root, "sentinel-ish")) {
					t.Error("files through in-root symlinks not extracted in the root")
				}
				if exists(t, "/etc/pwned") {
					t.Error("ESCAPE: /etc/pwned exists")
				}
			},
		},
		{
			name: "symlink-to-sentinel-with-existing-copy",
			layers: func(s *sandbox) [][]ent {
				// root/<sentinel> exists, so the file lands there.
				return [][]ent{{dir(s.sentinel + "/"), symlink("evil", s.sentinel)}, {file("evil/canary", "contained")}}
			},
			check: func(t *testing.T, s *sandbox) {
				if b, err := os.ReadFile(filepath.Join(s.root, s.sentinel, "canary")); err != nil || string(b) != "contained" {
					t.Errorf("file through symlink not contained: %q %v", b, err)
				}
			},
		},
		{
			name: "symlink-chain",
			layers: func(s *sandbox) [][]ent {
				return [][]ent{
					{symlink("a", "b"), symlink("b", "c"), symlink("c", s.sentinel), symlink("d", "a/../../..")},
					{file("a/canary", "pwned")},
				}
			},
			errAny: true,
		},
		{
			name: "symlink-chain-dotdot",
			layers: func(s *sandbox) [][]ent {
				return [][]ent{
					{symlink("l1", "../../.."), symlink("l2", "l1/../.."), dir("sentinel/")},
					{file("l2/sentinel/canary", "contained"), file("l2/l1/sentinel/other", "contained")},
				}
			},
			check: func(t *testing.T, s *sandbox) {
				if !exists(t, filepath.Join(s.root, "sentinel/canary")) || !exists(t, filepath.Join(s.root, "sentinel/other")) {
					t.Error("chain not resolved inside the root")
				}
			},
		},
		{
			name: "symlink-loop",
			layers: func(s *sandbox) [][]ent {
				return [][]ent{{symlink("x", "y"), symlink("y", "x"), file("x/f", "loop")}}
			},
			errAny: true,
		},
		{
			name: "symlink-replaced-by-file",
			layers: func(s *sandbox) [][]ent {
				// Writing a file over an outward symlink replaces the link.
				return [][]ent{{symlink("evil", s.sentinel+"/canary")}, {file("evil", "replaced")}}
			},
			check: func(t *testing.T, s *sandbox) {
				if b, err := os.ReadFile(filepath.Join(s.root, "evil")); err != nil || string(b) != "replaced" {
					t.Errorf("symlink not replaced: %q %v", b, err)
				}
			},
		},
		{
			name: "symlink-replaced-by-dir",
			layers: func(s *sandbox) [][]ent {
				return [][]ent{{symlink("evil", s.sentinel)}, {dir("evil/"), file("evil/canary", "mine")}}
			},
			check: func(t *testing.T, s *sandbox) {
				if b, err := os.ReadFile(filepath.Join(s.root, "evil/canary")); err != nil || string(b) != "mine" {
					t.Errorf("symlink not replaced by a directory: %q %v", b, err)
				}
			},
		},
		{
			name: "hardlink-etc-passwd",
			layers: func(s *sandbox) [][]ent {
				return [][]ent{{hardlink("passwd", "/etc/passwd")}}
			},
			wantErr: unix.ENOENT,
		},
		{
			name: "hardlink-etc-passwd-contained",
			layers: func(s *sandbox) [][]ent {
				return [][]ent{{dir("etc/"), file("etc/passwd", "root:x:0:0::/root:/bin/sh\n")}, {hardlink("passwd", "/etc/passwd")}}
			},
			check: func(t *testing.T, s *sandbox) {
				var a, b unix.Stat_t
				if err := unix.Lstat(filepath.Join(s.root, "passwd"), &a); err != nil {
					t.Fatal(err)
				}
				if err := unix.Lstat(filepath.Join(s.root, "etc/passwd"), &b); err != nil {
					t.Fatal(err)
				}
				if a.Ino != b.Ino || a.Nlink != 2 {
					t.Error("hardlink not made to the root's /etc/passwd")
				}
			},
		},
		{
			name: "hardlink-dotdot",
			layers: func(s *sandbox) [][]ent {
				return [][]ent{{hardlink("x", "../../../sentinel/canary")}}
			},
			wantErr: ErrBreakout,
		},
		{
			name: "hardlink-through-symlink",
			layers: func(s *sandbox) [][]ent {
				return [][]ent{{symlink("evil", s.sentinel), hardlink("x", "evil/canary")}}
			},
			wantErr: unix.ENOENT,
		},
		{
			name: "hardlink-through-symlink-two-layers",
			layers: func(s *sandbox) [][]ent {
				return [][]ent{{symlink("evil", "../../../sentinel")}, {hardlink("x", "evil/canary")}}
			},
			wantErr: unix.ENOENT,
		},
		{
			name: "hardlink-to-outward-symlink",
			layers: func(s *sandbox) [][]ent {
				// Links the symlink itself, never its target.
				return [][]ent{{symlink("evil", s.sentinel+"/canary"), hardlink("x", "evil")}, {file("x", "replaced")}}
			},
			check: func(t *testing.T, s *sandbox) {
				if l, err := os.Readlink(filepath.Join(s.root, "evil")); err != nil || l != s.sentinel+"/canary" {
					t.Errorf("symlink changed: %q %v", l, err)
				}
			},
		},
		{
			name: "hardlink-then-write-through",
			layers: func(s *sandbox) [][]ent {
				// A later file entry replaces the link, never writes into
				// the shared inode.
				return [][]ent{{file("orig", "orig"), hardlink("x", "orig"), file("x", "new")}}
			},
			check: func(t *testing.T, s *sandbox) {
				if b, _ := os.ReadFile(filepath.Join(s.root, "orig")); string(b) != "orig" {
					t.Errorf("write went through a hardlink: orig = %q", b)
				}
			},
		},
		{
			name: "whiteout-dotdot-name",
			layers: func(s *sandbox) [][]ent {
				return [][]ent{{file(".wh...", "")}}
			},
			wantErr: ErrInvalid,
		},
		{
			name: "whiteout-dot-name",
			layers: func(s *sandbox) [][]ent {
				return [][]ent{{file("a/.wh..", "")}}
			},
			wantErr: ErrInvalid,
		},
		{
			name: "whiteout-escaping-path",
			layers: func(s *sandbox) [][]ent {
				return [][]ent{{file("a/../../.wh.x", "")}}
			},
			wantErr: ErrBreakout,
		},
		{
			name: "whiteout-escaping-path-2",
			layers: func(s *sandbox) [][]ent {
				return [][]ent{{file("../../../.wh.sentinel", "")}}
			},
			wantErr: ErrBreakout,
		},
		{
			name: "whiteout-through-symlink",
			layers: func(s *sandbox) [][]ent {
				return [][]ent{
					{symlink("evil", s.sentinel), symlink("up", "../../.."), symlink("canary-link", s.sentinel+"/canary")},
					{file("evil/.wh.canary", ""), file("up/.wh.sentinel", ""), file("up/sentinel/.wh..wh..opq", ""),
						file("evil/.wh..wh..opq", ""), file(".wh.canary-link", "")},
				}
			},
			check: func(t *testing.T, s *sandbox) {
				if exists(t, filepath.Join(s.root, "canary-link")) {
					t.Error("whiteout of a symlink did not remove the link")
				}
			},
		},
		{
			name: "whiteout-through-symlink-overlay",
			layers: func(s *sandbox) [][]ent {
				return [][]ent{{symlink("evil", s.sentinel)}, {file("evil/.wh.canary", "")}}
			},
			opts:   ApplyOptions{Whiteouts: WhiteoutOverlay},
			errAny: true,
		},
		{
			name: "opaque-through-symlink-overlay",
			layers: func(s *sandbox) [][]ent {
				return [][]ent{{symlink("evil", s.sentinel)}, {file("evil/.wh..wh..opq", "")}}
			},
			opts:   ApplyOptions{Whiteouts: WhiteoutOverlay},
			errAny: true,
		},
		{
			name: "devices-nodevices",
			layers: func(s *sandbox) [][]ent {
				return [][]ent{{device("mem", tar.TypeChar, 1, 1), device("sda", tar.TypeBlock, 8, 0), device("fifo", tar.TypeFifo, 0, 0), file("after", "x")}}
			},
			opts: ApplyOptions{NoDevices: true},
			check: func(t *testing.T, s *sandbox) {
				for _, n := range []string{"mem", "sda", "fifo"} {
					if exists(t, filepath.Join(s.root, n)) {
						t.Errorf("device %s created despite NoDevices", n)
					}
				}
				if !exists(t, filepath.Join(s.root, "after")) {
					t.Error("entry after skipped devices missing")
				}
			},
		},
		{
			name: "huge-name-100MB",
			layers: func(s *sandbox) [][]ent {
				return nil // built by hugeNameLayer
			},
			wantErr: tar.ErrFieldTooLong,
		},
		{
			name: "long-name",
			layers: func(s *sandbox) [][]ent {
				return [][]ent{{file(strings.Repeat("n", 5000), "x")}}
			},
			wantErr: ErrLimit,
		},
		{
			name: "deep-nesting",
			layers: func(s *sandbox) [][]ent {
				return [][]ent{{file(strings.Repeat("a/", 1500)+"f", "x")}}
			},
			wantErr: ErrLimit,
		},
		{
			name: "deep-nesting-within-limits",
			layers: func(s *sandbox) [][]ent {
				return [][]ent{{file(strings.Repeat("d/", 600)+"f", "x")}}
			},
		},
		{
			name: "xattr-bomb-count",
			layers: func(s *sandbox) [][]ent {
				e := file("f", "x")
				e.hdr.PAXRecords = map[string]string{}
				for i := range 1000 {
					e.hdr.PAXRecords["SCHILY.xattr.user.x"+strconv.Itoa(i)] = "v"
				}
				return [][]ent{{e}}
			},
			wantErr: ErrLimit,
		},
		{
			name: "xattr-bomb-entry-bytes",
			layers: func(s *sandbox) [][]ent {
				e := file("f", "x")
				e.hdr.PAXRecords = map[string]string{}
				for i := range 12 {
					e.hdr.PAXRecords["SCHILY.xattr.user.x"+strconv.Itoa(i)] = strings.Repeat("v", 60<<10)
				}
				return [][]ent{{e}}
			},
			wantErr: ErrLimit,
		},
		{
			name: "xattr-bomb-layer-bytes",
			layers: func(s *sandbox) [][]ent {
				var l []ent
				for i := range 40 {
					e := file("f"+strconv.Itoa(i), "x")
					e.hdr.PAXRecords = map[string]string{"SCHILY.xattr.user.big": strings.Repeat("v", 60<<10)}
					l = append(l, e)
				}
				return [][]ent{l}
			},
			opts:    ApplyOptions{Limits: Limits{MaxXattrBytes: 1 << 20}},
			wantErr: ErrLimit,
		},
		{
			name: "uid-minus-one",
			layers: func(s *sandbox) [][]ent {
				e := file("f", "x")
				e.hdr.Uid = 1<<32 - 1
				return [][]ent{{e}}
			},
			wantErr: ErrInvalid,
		},
		{
			name: "trusted-overlay-xattr-dropped",
			layers: func(s *sandbox) [][]ent {
				e := dir("d/")
				e.hdr.PAXRecords = map[string]string{
					"SCHILY.xattr.trusted.overlay.redirect": "/etc",
					"SCHILY.xattr.trusted.overlay.opaque":   "y",
					"SCHILY.xattr.security.selinux":         "system_u:object_r:shadow_t:s0",
					"SCHILY.xattr.user.ok":                  "kept",
				}
				return [][]ent{{e}}
			},
			check: func(t *testing.T, s *sandbox) {
				if x := xattrString(t, filepath.Join(s.root, "d")); x != "user.ok=kept" {
					t.Errorf("xattrs = %q, want only user.ok", x)
				}
			},
		},
		{
			name: "root-entry-replaced-by-file",
			layers: func(s *sandbox) [][]ent {
				return [][]ent{{file(".", "x")}}
			},
			wantErr: ErrInvalid,
		},
		{
			name: "dir-replaces-outward-symlink-parent",
			layers: func(s *sandbox) [][]ent {
				// "evil/" as a directory entry replaces the link itself.
				return [][]ent{{symlink("evil", s.sentinel), dir("evil/"), file("evil/canary", "mine")}}
			},
			check: func(t *testing.T, s *sandbox) {
				if fi, err := os.Lstat(filepath.Join(s.root, "evil")); err != nil || !fi.IsDir() {
					t.Errorf("evil is not a directory: %v", err)
				}
			},
		},
	}
}

// hugeNameLayer is a tar whose first entry has a 100 MB PAX path,
// generated lazily.
func hugeNameLayer() io.Reader {
	const n = 100 << 20
	rec := fmt.Sprintf(" path=%s\n", "") // length prefix computed below
	body := len(rec) + n
	l := len(strconv.Itoa(body))
	for len(strconv.Itoa(body+l)) != l {
		l++
	}
	size := body + l
	var hdr [512]byte
	copy(hdr[0:], "PaxHeaders/huge")
	copy(hdr[100:], "0000644\x00")
	copy(hdr[108:], "0000000\x00")
	copy(hdr[116:], "0000000\x00")
	copy(hdr[124:], fmt.Sprintf("%011o\x00", size))
	copy(hdr[136:], "00000000000\x00")
	hdr[156] = 'x'
	copy(hdr[257:], "ustar\x0000")
	for i := 148; i < 156; i++ {
		hdr[i] = ' '
	}
	sum := 0
	for _, b := range hdr {
		sum += int(b)
	}
	copy(hdr[148:], fmt.Sprintf("%06o\x00 ", sum))
	return io.MultiReader(
		bytes.NewReader(hdr[:]),
		strings.NewReader(strconv.Itoa(size)+" path="),
		io.LimitReader(repeatReader('a'), n),
		strings.NewReader("\n"),
	)
}

type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

func TestHostileLayers(t *testing.T) { runHostile(t) }

// TestHostileLayersNoOpenat2 runs the same cases through pathrs-lite's
// userspace resolver, used on kernels without openat2.
func TestHostileLayersNoOpenat2(t *testing.T) {
	noOpenat2Once.Do(func() {})
	saved := noOpenat2
	noOpenat2 = true
	defer func() { noOpenat2 = saved }()
	runHostile(t)
}

func runHostile(t *testing.T) {
	for _, tc := range hostileCases() {
		t.Run(tc.name, func(t *testing.T) {
			s := newSandbox(t)
			var warnings []Warning
			opts := tc.opts
			opts.OnWarning = func(w Warning) { warnings = append(warnings, w) }
			var err error
			if tc.name == "huge-name-100MB" {
				start := time.Now()
				_, err = Apply(t.Context(), s.root, hugeNameLayer(), opts)
				if d := time.Since(start); d > 20*time.Second {
					t.Errorf("100 MB name took %v", d)
				}
			} else {
				layers := tc.layers(s)
				for i, l := range layers {
					_, err = s.apply(t, opts, mkTar(t, l...))
					if i < len(layers)-1 && err != nil {
						t.Fatalf("layer %d: %v", i, err)
					}
				}
			}
			switch {
			case tc.errAny:
				if err == nil {
					t.Errorf("want an error, got none")
				}
			case tc.wantErr == nil:
				if err != nil {
					t.Errorf("want no error, got %v", err)
				}
			default:
				if !errors.Is(err, tc.wantErr) {
					t.Errorf("want %v, got %v", tc.wantErr, err)
				}
			}
			if err != nil {
				t.Logf("error: %v", err)
			}
			for _, w := range warnings {
				t.Logf("warning: %s", w)
			}
			s.check(t)
			if tc.check != nil {
				tc.check(t, s)
			}
			if tc.name == "devices-nodevices" && len(warnings) != 3 {
				t.Errorf("want 3 warnings for skipped devices, got %v", warnings)
			}
		})
	}
}
