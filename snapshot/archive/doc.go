// Package archive applies OCI and Docker image layers (tar streams) onto a
// directory and produces layers from a directory diff.
//
// [DecompressStream] detects gzip, zstd or a plain tar by magic bytes.
// [Apply] extracts a layer into a snapshot directory: with native whiteouts
// into a copy of the lower layers (the native snapshotter), with overlay
// whiteouts into an empty overlayfs upper directory. [Diff] writes a
// deterministic layer from an overlayfs upper directory, or from two full
// trees (naive mode, for the native snapshotter and for upper directories
// written with redirect_dir or metacopy).
//
// # Safety model
//
// A layer is hostile input. [Apply] never joins the root path with a name
// from the archive and opens the result: every parent directory is resolved
// with openat2(RESOLVE_IN_ROOT) (pathrs-lite on kernels without openat2), so
// a symlink met on the way — from this layer or from a lower one — is
// followed as if root were "/", and the final component is always created,
// removed or modified with *at system calls that do not follow it
// (O_NOFOLLOW, AT_SYMLINK_NOFOLLOW, O_CREAT|O_EXCL). What each hostile
// construct does:
//
//   - "../x" and any name whose cleaned form climbs above the root: rejected
//     with [ErrBreakout], as docker does. "a/../b" is cleaned to "b".
//   - "/abs/x": contained, extracted as root/abs/x (docker's behaviour).
//   - a symlink whose target leaves the root: created as is (it is data);
//     a later entry "link/x" resolves link inside the root (root/etc/x for a
//     link to /etc), never on the host. Chains and loops resolve the same way
//     or fail with ELOOP.
//   - a hardlink: its target is cleaned like a name (".." above the root is
//     rejected, "/etc/passwd" means root/etc/passwd), its parent is resolved
//     inside the root and the link is made with linkat without following the
//     final component; a target that does not exist in root (this layer or
//     the lower content) fails the apply. Header metadata is not applied to
//     a hardlink: it shares the inode of its target.
//   - whiteouts: ".wh..", ".wh..." and ".wh." are rejected; the deleted name
//     is looked up in the parent resolved inside the root, and removal never
//     follows symlinks nor crosses into another filesystem (a directory whose
//     st_dev differs from its parent's is refused). Bind mounts of the same
//     filesystem are not detected: never apply onto a tree with mounts in it.
//   - device nodes and fifos: skipped with a warning when
//     [ApplyOptions.NoDevices] is set, or when mknod fails with EPERM (as in a
//     user namespace).
//   - limits ([Limits]): path length and depth, the number and size of
//     extended attributes per entry and per layer. archive/tar itself caps a
//     PAX or GNU long-name record at 1 MiB.
//   - sparse files (GNU and PAX formats) are rejected: archive/tar would
//     expand their holes into zeros, so a tiny layer could fill the disk.
//     Docker, BuildKit and Go's tar writer never produce them.
//   - uid/gid outside 0..2^32-2 are rejected (-1 would mean "unchanged").
//   - extended attributes: by default ([DefaultXattrFilter]) only user.*
//     (except user.overlay.*), security.capability and the POSIX ACLs are
//     applied; trusted.* (including trusted.overlay.*, which would let a layer
//     forge overlay redirects) and other security.* names (SELinux labels are
//     the engine's business) are dropped.
//
// Replacing an existing entry with one of a different type removes the old
// one first (recursively for a directory), like docker; a directory entry
// over an existing directory merges and updates its metadata. No check for
// mount points beyond the st_dev comparison is made: callers apply into
// snapshot directories that have nothing mounted below them.
package archive
