package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/berth-engine/berth/internal/atomicfile"
	"github.com/berth-engine/berth/internal/failpoint"
	"github.com/berth-engine/berth/internal/lockfile"
)

// Drivers.
const (
	// DriverOverlay stacks the committed parents as overlayfs lower
	// directories: preparing and committing cost nothing, whatever the
	// size of the parents.
	DriverOverlay = "overlay"
	// DriverNative gives every active snapshot a full copy of its
	// parent's tree: slower and bigger, but it works on any filesystem.
	DriverNative = "native"
)

// FormatVersion is the on-disk format this package reads and writes,
// recorded in <root>/layout.json.
const FormatVersion = 1

// Names under the root.
const (
	layoutFileName = "layout.json"
	dbFileName     = "metadata.db"
	lockFileName   = "metadata.lock"
	snapshotsDir   = "snapshots"
	trashDir       = "trash"
	tmpDir         = "tmp"
	fsDirName      = "fs"
	workDirName    = "work"
)

// Options configure Open.
type Options struct {
	// Driver is DriverOverlay, DriverNative, or "" to keep the root's
	// driver, or for a new root to use overlay when the kernel can mount
	// it on the root's filesystem and native otherwise.
	Driver string
}

// Snapshotter manages the snapshots under one root directory. It keeps no
// state in memory besides its configuration: it is safe for concurrent use
// by goroutines, and several processes may use the same root at once.
type Snapshotter struct {
	root   string
	driver string
}

// layout is the content of <root>/layout.json.
type layout struct {
	Version int    `json:"version"`
	Driver  string `json:"driver"`
}

// Open opens the snapshot root at root, creating it if needed. A new root
// records its driver (opts.Driver, or the probed default); reopening a root
// with another driver fails with ErrDriverMismatch, and a root written in a
// newer format fails with ErrUnsupportedVersion. Open also sweeps what
// crashed operations left behind, like Cleanup, ignoring data it cannot
// delete yet.
func Open(root string, opts Options) (*Snapshotter, error) {
	switch opts.Driver {
	case "", DriverOverlay, DriverNative:
	default:
		return nil, fmt.Errorf("snapshot: open %s: %w: unknown driver %q", root, ErrInvalid, opts.Driver)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("snapshot: open %s: %w", root, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("snapshot: open %s: %w", root, err)
	}
	// Mount sources and the mount table name resolved paths.
	if abs, err = filepath.EvalSymlinks(abs); err != nil {
		return nil, fmt.Errorf("snapshot: open %s: %w", root, err)
	}
	s := &Snapshotter{root: abs}

	ctx := context.Background()
	lock, err := lockfile.Lock(ctx, s.path(lockFileName), true)
	if err != nil {
		return nil, fmt.Errorf("snapshot: open %s: %w", root, err)
	}
	defer func() {
		if lock != nil {
			lock.Close()
		}
	}()
	l, err := readLayout(s.path(layoutFileName))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if l.Driver, err = s.create(opts.Driver); err != nil {
			return nil, fmt.Errorf("snapshot: create %s: %w", root, err)
		}
	case err != nil:
		return nil, fmt.Errorf("snapshot: open %s: %w", root, err)
	case opts.Driver != "" && opts.Driver != l.Driver:
		return nil, fmt.Errorf("snapshot: open %s: %w: it uses %s, %s was asked for", root, ErrDriverMismatch, l.Driver, opts.Driver)
	}
	s.driver = l.Driver
	for _, d := range []string{snapshotsDir, trashDir, tmpDir} {
		if err := os.MkdirAll(s.path(d), 0o700); err != nil {
			return nil, fmt.Errorf("snapshot: open %s: %w", root, err)
		}
	}
	if s.driver == DriverOverlay {
		if err := checkOverlayPath(abs); err != nil {
			return nil, fmt.Errorf("snapshot: open %s: %w", root, err)
		}
	}

	var used map[string]bool
	err = s.withOpenDB(func(db *bolt.DB) error {
		used, err = usedIDs(db)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("snapshot: open %s: %w", root, err)
	}
	// The sweep is best effort: what cannot be deleted now (something
	// mounted below it) is left for the next Open or Cleanup.
	trash, _ := s.sweep(used)
	lock.Close()
	lock = nil
	_ = s.emptyTrash(ctx, trash)
	return s, nil
}

// Driver returns the root's driver, DriverOverlay or DriverNative.
func (s *Snapshotter) Driver() string { return s.driver }

// Root returns the absolute, symlink-free path of the snapshot root.
func (s *Snapshotter) Root() string { return s.root }

func (s *Snapshotter) path(elem ...string) string {
	return filepath.Join(append([]string{s.root}, elem...)...)
}

// dir returns the directory of the snapshot with the given ID.
func (s *Snapshotter) dir(id uint64) string {
	return filepath.Join(s.root, snapshotsDir, strconv.FormatUint(id, 10))
}

// fsDir returns the snapshot's tree: the overlay upper directory, or the
// full tree for the native driver.
func (s *Snapshotter) fsDir(id uint64) string {
	return filepath.Join(s.dir(id), fsDirName)
}

// workDir returns the overlay work directory of an active snapshot.
func (s *Snapshotter) workDir(id uint64) string {
	return filepath.Join(s.dir(id), workDirName)
}

// fail marks a persistence step: crash tests arm the failpoint
// "snapshot.<step>" to kill the process there.
func fail(step string) {
	failpoint.Fire("snapshot." + step)
}

// withOpenDB opens the read-write database for a caller that already holds
// the exclusive metadata lock.
func (s *Snapshotter) withOpenDB(fn func(*bolt.DB) error) (err error) {
	db, err := bolt.Open(s.path(dbFileName), 0o600, &bolt.Options{Timeout: dbLockTimeout})
	if err != nil {
		return fmt.Errorf("open metadata: %w", err)
	}
	defer func() {
		if cerr := db.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close metadata: %w", cerr)
		}
	}()
	return fn(db)
}

// readLayout reads and validates layout.json. A missing file is returned as
// fs.ErrNotExist.
func readLayout(path string) (layout, error) {
	var l layout
	b, err := os.ReadFile(path)
	if err != nil {
		return l, err
	}
	if err := json.Unmarshal(b, &l); err != nil {
		return l, fmt.Errorf("read %s: %w", path, err)
	}
	if l.Version != FormatVersion {
		return l, fmt.Errorf("%w: %s says version %d, this berth reads version %d", ErrUnsupportedVersion, path, l.Version, FormatVersion)
	}
	if l.Driver != DriverOverlay && l.Driver != DriverNative {
		return l, fmt.Errorf("read %s: unknown driver %q", path, l.Driver)
	}
	return l, nil
}

// create initialises a new root, with the metadata lock held, and returns
// its driver. layout.json is written last: until it exists, the root holds
// no snapshot and a crashed create simply starts over.
func (s *Snapshotter) create(driver string) (string, error) {
	for _, d := range []string{snapshotsDir, trashDir, tmpDir} {
		if err := os.MkdirAll(s.path(d), 0o700); err != nil {
			return "", err
		}
	}
	if err := s.clearTmp(); err != nil {
		return "", err
	}
	if driver == "" || driver == DriverOverlay {
		err := checkOverlayPath(s.root)
		if err == nil {
			err = s.probeOverlay()
		}
		switch {
		case err == nil:
			driver = DriverOverlay
		case driver == DriverOverlay:
			return "", fmt.Errorf("overlay driver unusable: %w", err)
		default:
			driver = DriverNative
		}
	}

	// A fresh database, built aside and renamed into place.
	tmp := s.path(tmpDir, dbFileName)
	db, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: dbLockTimeout})
	if err != nil {
		return "", fmt.Errorf("create metadata: %w", err)
	}
	err = db.Update(initBuckets)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("create metadata: %w", err)
	}
	if err := os.Rename(tmp, s.path(dbFileName)); err != nil {
		return "", fmt.Errorf("create metadata: %w", err)
	}
	if err := syncDir(s.root); err != nil {
		return "", err
	}
	fail("create-db")

	b, err := json.Marshal(layout{Version: FormatVersion, Driver: driver})
	if err != nil {
		return "", err
	}
	if err := atomicfile.WriteFile(s.path(layoutFileName), append(b, '\n'), 0o600); err != nil {
		return "", err
	}
	return driver, nil
}

// checkOverlayPath rejects a root whose path overlayfs options cannot carry
// unescaped: ',' separates options, ':' lower directories.
func checkOverlayPath(root string) error {
	if strings.ContainsAny(root, ",:\\") {
		return fmt.Errorf("%w: the overlay driver needs a root path without ',', ':' or '\\' (%s)", ErrInvalid, root)
	}
	return nil
}

// probeOverlay mounts a tiny overlay in tmp/ and writes through it, to learn
// whether the kernel supports overlayfs with its upper directory on the
// root's filesystem.
func (s *Snapshotter) probeOverlay() (err error) {
	dir, err := os.MkdirTemp(s.path(tmpDir), "probe-")
	if err != nil {
		return err
	}
	defer func() {
		if rerr := os.RemoveAll(dir); rerr != nil && err == nil {
			err = rerr
		}
	}()
	lower, upper, work, merged := filepath.Join(dir, "l"), filepath.Join(dir, "u"), filepath.Join(dir, "w"), filepath.Join(dir, "m")
	for _, d := range []string{lower, upper, work, merged} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(lower, "lower"), nil, 0o600); err != nil {
		return err
	}
	data := fmt.Sprintf("index=off,lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work)
	if err := unix.Mount("overlay", merged, "overlay", 0, data); err != nil {
		return fmt.Errorf("mount overlay: %w", err)
	}
	fail("probe-mounted")
	defer func() {
		if uerr := unix.Unmount(merged, unix.MNT_DETACH); uerr != nil && err == nil {
			err = fmt.Errorf("unmount overlay probe: %w", uerr)
		}
	}()
	if _, err := os.Stat(filepath.Join(merged, "lower")); err != nil {
		return fmt.Errorf("overlay probe: lower file not visible: %w", err)
	}
	if err := os.WriteFile(filepath.Join(merged, "upper"), nil, 0o600); err != nil {
		return fmt.Errorf("overlay probe: write: %w", err)
	}
	if _, err := os.Stat(filepath.Join(upper, "upper")); err != nil {
		return fmt.Errorf("overlay probe: write did not reach the upper directory: %w", err)
	}
	return nil
}

// syncDir fsyncs a directory, making the names it holds durable.
func syncDir(path string) error {
	d, err := os.Open(path)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return nil
}
