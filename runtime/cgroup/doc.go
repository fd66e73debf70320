// Package cgroup turns an OCI runtime spec's linux.cgroupsPath and
// linux.resources into a live cgroup, on cgroup v1 (legacy and hybrid
// layouts) and cgroup v2 (unified layout).
//
// The layout is detected at run time from the file system type of the
// cgroupfs mount point (by default /sys/fs/cgroup):
//
//   - cgroup2 (CGROUP2_SUPER_MAGIC): unified v2; the single hierarchy is
//     driven through github.com/opencontainers/cgroups/fs2.
//   - anything else (normally a tmpfs with one cgroup v1 mount per
//     controller): v1, driven through github.com/opencontainers/cgroups/fs.
//     When a cgroup2 file system is also mounted at <root>/unified
//     ("hybrid"), the v1 controllers stay authoritative; the container is
//     merely also placed into the same path of the unified hierarchy so that
//     process tracking is consistent, as runc does.
//
// # Paths
//
// The cgroup path is resolved once by [New]:
//
//   - "" (empty): <Options.Parent>/<containerID>
//   - relative "a/b": <Options.Parent>/a/b (it may not escape the parent)
//   - absolute "/a/b": /a/b below the hierarchy root, as is
//   - systemd style "slice:prefix:name", e.g. "system.slice:berth:ID":
//     mapped to the cgroupfs path systemd would use,
//     "/system.slice/berth-ID.scope". systemd itself is NOT driven: no unit
//     is created and systemd is not told about the cgroup, it is only a
//     naming convention. Nested slices are expanded the systemd way
//     ("a-b.slice" becomes "/a.slice/a-b.slice").
//
// The caller's own cgroup is never used as a base, unlike runc's handling
// of relative paths; the root cgroup itself is refused.
//
// # Devices
//
// Device rules are converted as given (the default set a container needs is
// the caller's business) and enforced through the devices package of
// github.com/opencontainers/cgroups, which this package imports for its side
// effect of registering the device managers used by fs (devices.allow /
// devices.deny with a minimal transition, v1) and fs2 (an eBPF
// BPF_PROG_TYPE_CGROUP_DEVICE program, v2). An empty rule list leaves the
// device configuration untouched, so that an update of, say, the memory
// limit never resets the device rules; to deny everything, pass an explicit
// deny-all rule.
//
// # Lifecycle
//
// A runtime calls [New], then [Manager.Apply] with the container's init pid,
// then [Manager.Set] with the resources. It persists [Manager.Paths] in its
// state and later re-attaches with [Load] for kill, pause, update, events
// and delete. [Manager.Destroy] never kills anything: the caller must have
// stopped the processes first.
package cgroup
