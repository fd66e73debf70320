// Package specgen generates the configuration documents that berth-runtime
// prints or writes: the example bundle configuration of
// "berth-runtime spec" (optionally converted for rootless use), the
// "berth-runtime features" document, and the table of OCI mount options
// the runtime understands.
//
// The package depends only on the standard library, golang.org/x/sys and
// the OCI runtime-spec Go bindings, so that it can be linked into the small
// runtime binary.
package specgen

import (
	"os"
	"path"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// DefaultHostname is the hostname set in the configuration returned by
// Default. runc uses "runc".
const DefaultHostname = "berth"

// runcMaskedPaths are the paths masked by the configuration that
// "runc spec" (runc 1.1) writes, in runc's order.
var runcMaskedPaths = []string{
	"/proc/acpi",
	"/proc/asound",
	"/proc/kcore",
	"/proc/keys",
	"/proc/latency_stats",
	"/proc/timer_list",
	"/proc/timer_stats",
	"/proc/sched_debug",
	"/sys/firmware",
	"/proc/scsi",
}

// ExtraMaskedPaths lists the paths that Default masks in addition to the
// ones "runc spec" masks. They are appended, in this order, after runc's.
//
// /sys/devices/virtual/powercap exposes the Intel RAPL energy counters,
// which leak information about the host and other containers through a
// power side channel (CVE-2020-8694, CVE-2020-8695, "PLATYPUS"); Docker,
// containerd and CRI-O mask it by default.
var ExtraMaskedPaths = []string{
	"/sys/devices/virtual/powercap",
}

// Default returns the example configuration that "berth-runtime spec"
// writes into config.json. It has the same content as the configuration
// "runc spec" writes, except that ociVersion is the version of the runtime
// specification berth implements (specs.Version), the hostname is
// DefaultHostname, and the paths in ExtraMaskedPaths are masked as well.
//
// Each call returns a new, independent value.
func Default() *specs.Spec {
	caps := func() []string {
		return []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}
	}
	masked := make([]string, 0, len(runcMaskedPaths)+len(ExtraMaskedPaths))
	masked = append(masked, runcMaskedPaths...)
	masked = append(masked, ExtraMaskedPaths...)

	return &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			Terminal: true,
			User:     specs.User{UID: 0, GID: 0},
			Args:     []string{"sh"},
			Env: []string{
				"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
				"TERM=xterm",
			},
			Cwd: "/",
			Capabilities: &specs.LinuxCapabilities{
				Bounding:  caps(),
				Effective: caps(),
				Permitted: caps(),
				Ambient:   caps(),
			},
			Rlimits: []specs.POSIXRlimit{
				{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024},
			},
			NoNewPrivileges: true,
		},
		Root: &specs.Root{
			Path:     "rootfs",
			Readonly: true,
		},
		Hostname: DefaultHostname,
		Mounts: []specs.Mount{
			{
				Destination: "/proc",
				Type:        "proc",
				Source:      "proc",
			},
			{
				Destination: "/dev",
				Type:        "tmpfs",
				Source:      "tmpfs",
				Options:     []string{"nosuid", "strictatime", "mode=755", "size=65536k"},
			},
			{
				Destination: "/dev/pts",
				Type:        "devpts",
				Source:      "devpts",
				Options:     []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"},
			},
			{
				Destination: "/dev/shm",
				Type:        "tmpfs",
				Source:      "shm",
				Options:     []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"},
			},
			{
				Destination: "/dev/mqueue",
				Type:        "mqueue",
				Source:      "mqueue",
				Options:     []string{"nosuid", "noexec", "nodev"},
			},
			{
				Destination: "/sys",
				Type:        "sysfs",
				Source:      "sysfs",
				Options:     []string{"nosuid", "noexec", "nodev", "ro"},
			},
			{
				Destination: "/sys/fs/cgroup",
				Type:        "cgroup",
				Source:      "cgroup",
				Options:     []string{"nosuid", "noexec", "nodev", "relatime", "ro"},
			},
		},
		Linux: &specs.Linux{
			Resources: &specs.LinuxResources{
				Devices: []specs.LinuxDeviceCgroup{
					{Allow: false, Access: "rwm"},
				},
			},
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace},
				{Type: specs.NetworkNamespace},
				{Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace},
				{Type: specs.MountNamespace},
			},
			MaskedPaths: masked,
			ReadonlyPaths: []string{
				"/proc/bus",
				"/proc/fs",
				"/proc/irq",
				"/proc/sys",
				"/proc/sysrq-trigger",
			},
		},
	}
}

// ToRootless modifies s, typically the result of Default, in the way
// "runc spec --rootless" does, so that the container can be run by an
// unprivileged user:
//
//   - the network and user namespaces are removed from linux.namespaces
//     and a new user namespace is appended;
//   - linux.uidMappings and linux.gidMappings map container ID 0 to the
//     caller's effective UID and GID (one ID each);
//   - the mount on /sys is replaced by a read-only recursive bind mount of
//     the host's /sys (sysfs cannot be mounted without owning the network
//     namespace);
//   - "uid=" and "gid=" options are removed from every mount (the IDs
//     would not be mapped in the user namespace);
//   - linux.resources is removed (an unprivileged user usually cannot
//     configure cgroups).
//
// The /sys/fs/cgroup mount is kept, as runc keeps it. ToRootless does
// nothing if s is nil.
func ToRootless(s *specs.Spec) {
	if s == nil {
		return
	}
	if s.Linux == nil {
		s.Linux = &specs.Linux{}
	}

	namespaces := make([]specs.LinuxNamespace, 0, len(s.Linux.Namespaces)+1)
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == specs.NetworkNamespace || ns.Type == specs.UserNamespace {
			continue
		}
		namespaces = append(namespaces, ns)
	}
	s.Linux.Namespaces = append(namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})

	s.Linux.UIDMappings = []specs.LinuxIDMapping{
		{ContainerID: 0, HostID: uint32(os.Geteuid()), Size: 1},
	}
	s.Linux.GIDMappings = []specs.LinuxIDMapping{
		{ContainerID: 0, HostID: uint32(os.Getegid()), Size: 1},
	}

	mounts := make([]specs.Mount, 0, len(s.Mounts))
	for _, m := range s.Mounts {
		if path.Clean(m.Destination) == "/sys" {
			mounts = append(mounts, specs.Mount{
				Destination: "/sys",
				Type:        "none",
				Source:      "/sys",
				Options:     []string{"rbind", "nosuid", "noexec", "nodev", "ro"},
			})
			continue
		}
		if m.Options != nil {
			opts := make([]string, 0, len(m.Options))
			for _, o := range m.Options {
				if strings.HasPrefix(o, "uid=") || strings.HasPrefix(o, "gid=") {
					continue
				}
				opts = append(opts, o)
			}
			m.Options = opts
		}
		mounts = append(mounts, m)
	}
	s.Mounts = mounts

	s.Linux.Resources = nil
}
