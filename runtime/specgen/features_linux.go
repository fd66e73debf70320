package specgen

import (
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"golang.org/x/sys/unix"
)

// Annotation keys of the features document.
const (
	// AnnotationVersion is the key of the berth version.
	AnnotationVersion = "io.github.berth-engine.berth.version"
	// AnnotationCommit is the key of the VCS revision berth was built
	// from.
	AnnotationCommit = "io.github.berth-engine.berth.commit"
	// AnnotationLibseccompVersion is the key of the libseccomp version,
	// the same key runc uses.
	AnnotationLibseccompVersion = "io.github.seccomp.libseccomp.version"
)

// Version and Commit are reported in the features document under
// AnnotationVersion and AnnotationCommit. They can be set at link time,
// for example with
//
//	-ldflags '-X github.com/berth-engine/berth/runtime/specgen.Version=1.0.0'
//
// When empty, they are taken from the binary's build information (the main
// module's version and the vcs.revision setting).
var (
	Version string
	Commit  string
)

// SeccompInfo describes the seccomp support of the runtime, as filled in by
// the caller from its seccomp implementation. All names use the spelling
// of the OCI runtime specification ("SCMP_ACT_ERRNO", "SCMP_CMP_EQ",
// "SCMP_ARCH_X86_64", "SECCOMP_FILTER_FLAG_LOG", ...).
type SeccompInfo struct {
	// Enabled is true if seccomp support is compiled in.
	Enabled bool
	// Actions, Operators and Archs are the recognised actions,
	// argument comparison operators and architectures.
	Actions, Operators, Archs []string
	// KnownFlags are the recognised filter flags; SupportedFlags are
	// those of them the kernel and libseccomp support.
	KnownFlags, SupportedFlags []string
	// LibseccompVersion is the version of libseccomp in use, such as
	// "2.5.4"; if not empty it is reported under
	// AnnotationLibseccompVersion.
	LibseccompVersion string
}

// hooks lists the hooks the runtime runs, in the order of the container
// lifecycle.
var hooks = []string{
	"prestart",
	"createRuntime",
	"createContainer",
	"startContainer",
	"poststart",
	"poststop",
}

// namespaces lists the namespace types the runtime supports, sorted.
var namespaces = []string{
	string(specs.CgroupNamespace),
	string(specs.IPCNamespace),
	string(specs.MountNamespace),
	string(specs.NetworkNamespace),
	string(specs.PIDNamespace),
	string(specs.TimeNamespace),
	string(specs.UserNamespace),
	string(specs.UTSNamespace),
}

// capNames maps capability numbers to names.
var capNames = [...]string{
	unix.CAP_CHOWN:              "CAP_CHOWN",
	unix.CAP_DAC_OVERRIDE:       "CAP_DAC_OVERRIDE",
	unix.CAP_DAC_READ_SEARCH:    "CAP_DAC_READ_SEARCH",
	unix.CAP_FOWNER:             "CAP_FOWNER",
	unix.CAP_FSETID:             "CAP_FSETID",
	unix.CAP_KILL:               "CAP_KILL",
	unix.CAP_SETGID:             "CAP_SETGID",
	unix.CAP_SETUID:             "CAP_SETUID",
	unix.CAP_SETPCAP:            "CAP_SETPCAP",
	unix.CAP_LINUX_IMMUTABLE:    "CAP_LINUX_IMMUTABLE",
	unix.CAP_NET_BIND_SERVICE:   "CAP_NET_BIND_SERVICE",
	unix.CAP_NET_BROADCAST:      "CAP_NET_BROADCAST",
	unix.CAP_NET_ADMIN:          "CAP_NET_ADMIN",
	unix.CAP_NET_RAW:            "CAP_NET_RAW",
	unix.CAP_IPC_LOCK:           "CAP_IPC_LOCK",
	unix.CAP_IPC_OWNER:          "CAP_IPC_OWNER",
	unix.CAP_SYS_MODULE:         "CAP_SYS_MODULE",
	unix.CAP_SYS_RAWIO:          "CAP_SYS_RAWIO",
	unix.CAP_SYS_CHROOT:         "CAP_SYS_CHROOT",
	unix.CAP_SYS_PTRACE:         "CAP_SYS_PTRACE",
	unix.CAP_SYS_PACCT:          "CAP_SYS_PACCT",
	unix.CAP_SYS_ADMIN:          "CAP_SYS_ADMIN",
	unix.CAP_SYS_BOOT:           "CAP_SYS_BOOT",
	unix.CAP_SYS_NICE:           "CAP_SYS_NICE",
	unix.CAP_SYS_RESOURCE:       "CAP_SYS_RESOURCE",
	unix.CAP_SYS_TIME:           "CAP_SYS_TIME",
	unix.CAP_SYS_TTY_CONFIG:     "CAP_SYS_TTY_CONFIG",
	unix.CAP_MKNOD:              "CAP_MKNOD",
	unix.CAP_LEASE:              "CAP_LEASE",
	unix.CAP_AUDIT_WRITE:        "CAP_AUDIT_WRITE",
	unix.CAP_AUDIT_CONTROL:      "CAP_AUDIT_CONTROL",
	unix.CAP_SETFCAP:            "CAP_SETFCAP",
	unix.CAP_MAC_OVERRIDE:       "CAP_MAC_OVERRIDE",
	unix.CAP_MAC_ADMIN:          "CAP_MAC_ADMIN",
	unix.CAP_SYSLOG:             "CAP_SYSLOG",
	unix.CAP_WAKE_ALARM:         "CAP_WAKE_ALARM",
	unix.CAP_BLOCK_SUSPEND:      "CAP_BLOCK_SUSPEND",
	unix.CAP_AUDIT_READ:         "CAP_AUDIT_READ",
	unix.CAP_PERFMON:            "CAP_PERFMON",
	unix.CAP_BPF:                "CAP_BPF",
	unix.CAP_CHECKPOINT_RESTORE: "CAP_CHECKPOINT_RESTORE",
}

const capLastCapFile = "/proc/sys/kernel/cap_last_cap"

// Features returns the document "berth-runtime features" prints. The
// capabilities are those known both to berth and to the running kernel
// (as read from /proc/sys/kernel/cap_last_cap); the seccomp part comes
// from sec. When sec.Enabled is false, only "enabled": false is reported
// for seccomp.
func Features(sec SeccompInfo) *features.Features {
	t, f := true, false

	seccomp := &features.Seccomp{Enabled: &f}
	if sec.Enabled {
		seccomp = &features.Seccomp{
			Enabled:        &t,
			Actions:        slices.Clone(sec.Actions),
			Operators:      slices.Clone(sec.Operators),
			Archs:          slices.Clone(sec.Archs),
			KnownFlags:     slices.Clone(sec.KnownFlags),
			SupportedFlags: slices.Clone(sec.SupportedFlags),
		}
	}

	annotations := map[string]string{}
	version, commit := buildVersion()
	annotations[AnnotationVersion] = version
	if commit != "" {
		annotations[AnnotationCommit] = commit
	}
	if sec.Enabled && sec.LibseccompVersion != "" {
		annotations[AnnotationLibseccompVersion] = sec.LibseccompVersion
	}

	return &features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: specs.Version,
		Hooks:         slices.Clone(hooks),
		MountOptions:  KnownMountOptions(),
		Linux: &features.Linux{
			Namespaces:   slices.Clone(namespaces),
			Capabilities: capabilities(readLastCap(capLastCapFile)),
			Cgroup: &features.Cgroup{
				V1:          &t,
				V2:          &t,
				Systemd:     &f,
				SystemdUser: &f,
				Rdma:        &t,
			},
			Seccomp:  seccomp,
			Apparmor: &features.Apparmor{Enabled: &f},
			Selinux:  &features.Selinux{Enabled: &f},
			IntelRdt: &features.IntelRdt{Enabled: &f},
			MountExtensions: &features.MountExtensions{
				IDMap: &features.IDMap{Enabled: &t},
			},
		},
		Annotations: annotations,
	}
}

// readLastCap returns the number of the highest capability of the running
// kernel, read from file, or -1 if it cannot be read.
func readLastCap(file string) int {
	b, err := os.ReadFile(file)
	if err != nil {
		return -1
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n < 0 {
		return -1
	}
	return n
}

// capabilities returns, in numeric order, the names of the capabilities
// numbered 0 to last that berth knows. A negative last (unknown) means all
// the capabilities berth knows.
func capabilities(last int) []string {
	if last < 0 || last >= len(capNames) {
		last = len(capNames) - 1
	}
	return slices.Clone(capNames[:last+1])
}

// buildVersion returns Version and Commit, filled in from the build
// information where empty.
func buildVersion() (version, commit string) {
	version, commit = Version, Commit
	info, ok := debug.ReadBuildInfo()
	if !ok {
		if version == "" {
			version = "unknown"
		}
		return version, commit
	}
	if version == "" {
		version = info.Main.Version
		if version == "" {
			version = "unknown"
		}
	}
	if commit == "" {
		modified := false
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if commit != "" && modified {
			commit += "-dirty"
		}
	}
	return version, commit
}
