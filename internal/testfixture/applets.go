package testfixture

// Applets lists, sorted, every applet name the testbin multi-call binary
// answers to. Rootfs creates a /bin/NAME symlink to /bin/testbin for each.
//
// testbin keeps its own dispatch table (it must not import this package,
// which depends on "testing"); tests in both packages check that the two
// agree.
var Applets = []string{
	"caps",
	"cat",
	"cgroup",
	"domainname",
	"echo",
	"env",
	"exitcode",
	"false",
	"fds",
	"forkbomb",
	"hostname",
	"id",
	"ls",
	"memhog",
	"mkdir",
	"mounts",
	"ns",
	"oomscore",
	"pid",
	"pwd",
	"readlink",
	"rlimits",
	"rm",
	"sigcatch",
	"sleep",
	"spin",
	"stat",
	"syscall",
	"sysctl",
	"touch",
	"true",
	"tty",
	"uidmap",
	"umask",
	"write",
}
