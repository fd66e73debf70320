// Package testfixture provides what runtime tests need to run containers
// without an image or a network: the static multi-call testbin binary (see
// ./testbin), a synthetic root filesystem built around it, and bundle
// helpers.
package testfixture

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
)

// testbinPkg is the testbin package directory relative to the module root.
const testbinPkg = "internal/testfixture/testbin"

var (
	binaryOnce sync.Once
	binaryPath string
	binaryErr  error
)

// Binary returns the path of the testbin binary, building it on first use
// in the test process. The build (CGO_ENABLED=0, -trimpath) is cached in
// $TMPDIR/berth-testbin-HASH/testbin, where HASH covers testbin's sources,
// go.mod, go.sum and the Go version, so later test processes reuse it. The
// test fails, with the compiler output, if the build fails.
func Binary(t testing.TB) string {
	t.Helper()
	binaryOnce.Do(func() { binaryPath, binaryErr = buildBinary() })
	if binaryErr != nil {
		t.Fatalf("testfixture: %v", binaryErr)
	}
	return binaryPath
}

// buildBinary builds testbin into the cache unless it is already there.
func buildBinary() (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	hash, err := sourceHash(root)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(os.TempDir(), "berth-testbin-"+hash)
	out := filepath.Join(dir, "testbin")
	if fi, err := os.Stat(out); err == nil && fi.Mode().IsRegular() {
		return out, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("creating build cache: %w", err)
	}
	// Build under a unique name and rename, so that concurrent test
	// processes never see (or run) a partly written binary.
	tmp, err := os.CreateTemp(dir, "testbin-*.tmp")
	if err != nil {
		return "", fmt.Errorf("creating build output: %w", err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name())

	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("finding the go tool: %w", err)
	}
	cmd := exec.Command(goTool, "build", "-trimpath", "-buildvcs=false",
		"-ldflags=-s -w", "-o", tmp.Name(), "./"+testbinPkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if output, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building testbin: %w\n%s", err, output)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return "", fmt.Errorf("installing testbin: %w", err)
	}
	return out, nil
}

// moduleRoot walks up from the working directory to the directory holding
// go.mod.
func moduleRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding module root: %w", err)
	}
	for dir := wd; ; {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("finding module root: no go.mod above %s", wd)
		}
		dir = parent
	}
}

// sourceHash identifies a testbin build: it hashes the Go version, target
// platform, go.mod, go.sum and testbin's non-test Go files.
func sourceHash(root string) (string, error) {
	srcs, err := filepath.Glob(filepath.Join(root, testbinPkg, "*.go"))
	if err != nil {
		return "", fmt.Errorf("listing testbin sources: %w", err)
	}
	srcs = slices.DeleteFunc(srcs, func(p string) bool { return strings.HasSuffix(p, "_test.go") })
	if len(srcs) == 0 {
		return "", fmt.Errorf("no testbin sources in %s", filepath.Join(root, testbinPkg))
	}
	files := append([]string{filepath.Join(root, "go.mod"), filepath.Join(root, "go.sum")}, srcs...)
	h := sha256.New()
	fmt.Fprintf(h, "%s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if errors.Is(err, os.ErrNotExist) && filepath.Base(f) == "go.sum" {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("hashing testbin sources: %w", err)
		}
		fmt.Fprintf(h, "%s %d\n", filepath.Base(f), len(data))
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// Files written into every rootfs.
const (
	passwdContent = `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
tester:x:1000:1000:tester:/home/tester:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
`
	groupContent = `root:x:0:
daemon:x:1:
users:x:100:
tester:x:1000:
extra:x:2000:tester
nogroup:x:65534:
`
	// Hostname is the content of /etc/hostname in a rootfs, without the
	// trailing newline.
	Hostname = "berth-test"
)

// Rootfs creates a synthetic root filesystem in a new t.TempDir() and
// returns its path. It holds:
//
//   - /bin/testbin (a private copy of Binary, so that a test may modify
//     or damage it without affecting other tests) and a symlink
//     /bin/NAME -> testbin for every name in Applets; there is no /bin/sh;
//   - empty directories /proc, /sys, /dev, /etc, /home (0755), /root (0700)
//     and /tmp (1777), and /home/tester (owned by 1000:1000 when run as
//     root);
//   - /etc/passwd with root (0), daemon (1), tester (1000, group 1000) and
//     nobody (65534); /etc/group with root (0), daemon (1), users (100),
//     tester (1000), extra (2000, member tester) and nogroup (65534);
//     /etc/hostname containing Hostname.
func Rootfs(t testing.TB) string {
	t.Helper()
	bin := Binary(t)
	root := t.TempDir()
	if err := populateRootfs(root, bin); err != nil {
		t.Fatalf("testfixture: creating rootfs: %v", err)
	}
	return root
}

// Bundle creates an OCI bundle directory in a new t.TempDir() with a
// rootfs/ subdirectory populated as by Rootfs, and returns the bundle path.
// The caller writes config.json, for example with WriteSpec. args is
// accepted for call-site compatibility and ignored.
func Bundle(t testing.TB, args ...string) (dir string) {
	t.Helper()
	bin := Binary(t)
	dir = t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatalf("testfixture: creating bundle: %v", err)
	}
	rootfs := filepath.Join(dir, "rootfs")
	if err := os.Mkdir(rootfs, 0o755); err != nil {
		t.Fatalf("testfixture: creating bundle: %v", err)
	}
	if err := populateRootfs(rootfs, bin); err != nil {
		t.Fatalf("testfixture: creating bundle rootfs: %v", err)
	}
	return dir
}

// WriteSpec writes spec as JSON to bundle/config.json (mode 0644).
func WriteSpec(t testing.TB, bundle string, spec any) {
	t.Helper()
	data, err := json.MarshalIndent(spec, "", "\t")
	if err != nil {
		t.Fatalf("testfixture: encoding spec: %v", err)
	}
	path := filepath.Join(bundle, "config.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatalf("testfixture: writing spec: %v", err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatalf("testfixture: writing spec: %v", err)
	}
}

// RequireRoot skips the test unless it runs as root. Under CI (CI=true)
// the test fails instead, since there a missing prerequisite is an error.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("test requires root (CI=true, so not skipping)")
	}
	t.Skip("test requires root")
}

// populateRootfs fills the existing directory root as described on Rootfs.
func populateRootfs(root, bin string) error {
	if err := os.Chmod(root, 0o755); err != nil {
		return err
	}
	dirs := []struct {
		path string
		mode os.FileMode
	}{
		{"bin", 0o755},
		{"dev", 0o755},
		{"etc", 0o755},
		{"home", 0o755},
		{"home/tester", 0o755},
		{"proc", 0o755},
		{"root", 0o700},
		{"sys", 0o755},
		{"tmp", 0o777 | os.ModeSticky},
	}
	for _, d := range dirs {
		p := filepath.Join(root, d.path)
		if err := os.Mkdir(p, 0o700); err != nil {
			return err
		}
		// Chmod, as Mkdir's mode is subject to the umask.
		if err := os.Chmod(p, d.mode); err != nil {
			return err
		}
	}
	if os.Geteuid() == 0 {
		if err := os.Chown(filepath.Join(root, "home/tester"), 1000, 1000); err != nil {
			return err
		}
	}
	if err := copyFile(bin, filepath.Join(root, "bin/testbin")); err != nil {
		return err
	}
	for _, name := range Applets {
		if err := os.Symlink("testbin", filepath.Join(root, "bin", name)); err != nil {
			return err
		}
	}
	files := map[string]string{
		"etc/passwd":   passwdContent,
		"etc/group":    groupContent,
		"etc/hostname": Hostname + "\n",
	}
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
		if err := os.Chmod(p, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// copyFile copies src to the new file dst (mode 0755). The rootfs never
// hard-links the cached binary: a container that writes to its /bin/testbin
// must not change the binary every other rootfs uses.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copying %s to %s: %w", src, dst, err)
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chmod(dst, 0o755)
}
