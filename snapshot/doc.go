// Package snapshot manages the layer snapshots that image layers are
// unpacked into and that container root filesystems are mounted from, in
// the model of containerd's snapshotters.
//
// A snapshot is active (writable, being filled), a view (read-only) or
// committed (immutable, a possible parent). Prepare creates an active
// snapshot on top of a committed parent, ApplyLayer extracts a layer into
// it, Commit turns it into a committed snapshot under a new name; View
// gives a read-only tree of a committed snapshot. Keys of all kinds share
// one namespace. Mounts says how to mount an active snapshot or a view,
// MountAll and UnmountAll do it.
//
// # Drivers
//
// The overlay driver stacks the parents as overlayfs lower directories: an
// active snapshot is an upper directory over them, a multi-layer view
// stacks the lower directories only, a single-layer view is a read-only
// bind mount of the layer, and an active snapshot of the empty tree a bind
// mount of its upper directory. Layers are applied straight into the upper
// directory with overlay whiteouts. The native driver gives every active
// snapshot a full copy of its parent (owners, modes, times, extended
// attributes, hard links, devices; reflinks or copy_file_range where the
// filesystem can) and applies layers onto it with real deletions; a native
// view is a read-only bind mount of its parent's tree, which is immutable.
// A new root uses overlay when a test mount of an overlay under the root
// works, native otherwise; the choice is recorded and kept.
//
// # Layout
//
//	<root>/layout.json          {"version":1,"driver":"overlay"}
//	<root>/metadata.db          bbolt: the records (key, parent, kind, times, labels, ID)
//	<root>/metadata.lock        flock(2)ed around every use of metadata.db
//	<root>/snapshots/<ID>/fs    the snapshot's tree (overlay upper directory)
//	<root>/snapshots/<ID>/work  the overlay work directory (active overlay snapshots)
//	<root>/trash/<ID>-<random>  directories being deleted
//	<root>/tmp/                 the overlay probe, a database being created
//
// IDs are small decimal numbers from a persisted sequence, never reused,
// so a lowerdir is short: one mount(2) option string (one page) holds
// about a hundred layers under /var/lib/berth. When the options are longer
// anyway, MountAll passes the layers one by one through fsopen/fsconfig
// (Linux 6.8 or later), so that long chains of layers under a long root
// still mount, up to the overlayfs limit of 500 layers.
//
// # Concurrency
//
// There is no daemon: several processes use one root at once. The
// metadata database is opened for each operation and closed right after,
// under metadata.lock (exclusive for changes, shared for reads), so the
// lock is only held for a transaction, never across copying or extracting.
// Each snapshot directory is flocked by the operation working in it:
// exclusively by its creation until the record exists, and by ApplyLayer,
// Commit and Remove (so Commit and Remove wait for an ApplyLayer in
// progress); Prepare and View hold their parent's shared until the child
// is recorded, so the parent cannot be removed while the native driver
// copies it. Every change re-checks the records in its transaction, so of
// two processes committing the same name one wins and the other gets
// ErrAlreadyExists, and a removal racing with the creation of a child
// either fails with ErrHasChildren or makes the creation fail with
// ErrNotFound.
//
// # Crash safety
//
// The crash model is a process killed at any instant. Directories are
// created before the record that refers to them and deleted after it
// (moved to the trash first), and each record change is one bbolt
// transaction: a key is never visible without its directory, and a
// snapshot is never half committed — its record says active or committed.
// The metadata database is fsynced by bbolt on every change; unpacked
// files are not flushed (a killed process loses none of its writes, and a
// power loss is outside the model, as DESIGN.md decision 5 says). What a crash can leave is an unreferenced directory, a
// trash entry, or a temporary file; Open and Cleanup delete them, skipping
// directories still locked by an operation in progress. Each persistence
// step is a failpoint, "snapshot.<step>" (see internal/failpoint), where
// crash tests kill the process. An active snapshot whose filler died stays,
// like any other, until removed: callers use keys unique to the operation
// and remove stale ones.
package snapshot
