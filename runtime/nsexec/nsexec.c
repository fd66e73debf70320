// nsexec: namespace setup that must happen before the Go runtime starts.
//
// The Go runtime is multi-threaded from its first instruction, and setns(2)
// into user and mount namespaces is refused for multi-threaded processes.
// So, like any Go container runtime, berth-runtime does that work in a C
// constructor that runs before main. It does nothing unless the process was
// started by berth-runtime itself as a container init (the environment names
// the synchronisation socket).
//
// Protocol on the socket (fd named by _BERTH_INITPIPE):
//   parent -> child: one byte once the cgroups exist, if the child is to
//                    join cgroup v1 hierarchies itself (_BERTH_CGROUP_TASKS)
//   child  -> parent: {"type":"usermap","pid":N}\n when it needs uid/gid maps
//   parent -> child: one byte once the maps are written
//   child  -> parent: {"type":"pid","pid":N,"joined":B}\n the pid of the
//                     process that goes on (the container init or exec'd
//                     process); joined says it was created in its cgroup v2
//                     directory (_BERTH_CGROUP2_DIR) by clone3
//   parent -> final process: one byte once the runtime has moved it into
//                     that directory, when joined is false
//   child  -> parent: {"type":"error","message":"..."}\n on failure
//   parent -> child: one byte once the child is in the container's cgroup
//                    (the parent joins it while the child sets up)
// After the pid message the intermediate process exits; the final process
// (created with CLONE_PARENT, so it is the caller's child) returns from this
// constructor into the Go runtime.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <linux/sched.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

static int sync_fd = -1;

static void write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		buf += n;
		len -= (size_t)n;
	}
}

static void json_escape(char *dst, size_t cap, const char *src)
{
	size_t j = 0;
	for (size_t i = 0; src[i] && j + 7 < cap; i++) {
		unsigned char c = (unsigned char)src[i];
		if (c == '"' || c == '\\') {
			dst[j++] = '\\';
			dst[j++] = (char)c;
		} else if (c < 0x20) {
			j += (size_t)snprintf(dst + j, cap - j, "\\u%04x", c);
		} else {
			dst[j++] = (char)c;
		}
	}
	dst[j] = '\0';
}

__attribute__((noreturn, format(printf, 1, 2))) static void bail(const char *fmt, ...)
{
	char msg[1024], esc[2048], line[2200];
	int saved = errno;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (saved != 0) {
		size_t l = strlen(msg);
		snprintf(msg + l, sizeof(msg) - l, ": %s", strerror(saved));
	}
	json_escape(esc, sizeof(esc), msg);
	int n = snprintf(line, sizeof(line), "{\"type\":\"error\",\"message\":\"nsexec: %s\"}\n", esc);
	if (sync_fd >= 0 && n > 0)
		write_all(sync_fd, line, (size_t)n);
	_exit(1);
}

static void send_pid(const char *type, pid_t pid)
{
	char line[128];
	int n = snprintf(line, sizeof(line), "{\"type\":\"%s\",\"pid\":%d}\n", type, (int)pid);
	write_all(sync_fd, line, (size_t)n);
}

static void wait_byte(const char *what)
{
	char c;
	for (;;) {
		ssize_t n = read(sync_fd, &c, 1);
		if (n == 1)
			return;
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0)
			errno = 0;
		bail("waiting for %s", what);
	}
}

static int ns_flag(const char *name)
{
	static const struct {
		const char *name;
		int flag;
	} table[] = {
		{"user", CLONE_NEWUSER}, {"ipc", CLONE_NEWIPC},   {"uts", CLONE_NEWUTS},
		{"net", CLONE_NEWNET},   {"pid", CLONE_NEWPID},   {"mnt", CLONE_NEWNS},
		{"cgroup", CLONE_NEWCGROUP}, {"time", CLONE_NEWTIME},
	};
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (strcmp(table[i].name, name) == 0)
			return table[i].flag;
	return 0;
}

#define MAX_JOIN 16

struct join {
	int flag;
	int fd;
	char path[512];
};

// parse_joins reads "type:path;type:path" and opens every path up front:
// once a mount namespace has been joined the paths may no longer resolve.
static int parse_joins(const char *spec, struct join *out)
{
	int n = 0;
	char buf[8192];
	if (strlen(spec) >= sizeof(buf)) {
		errno = 0;
		bail("namespace list too long");
	}
	strcpy(buf, spec);
	char *save = NULL;
	for (char *tok = strtok_r(buf, ";", &save); tok; tok = strtok_r(NULL, ";", &save)) {
		char *colon = strchr(tok, ':');
		if (!colon || n >= MAX_JOIN) {
			errno = 0;
			bail("bad namespace entry %s", tok);
		}
		*colon = '\0';
		out[n].flag = ns_flag(tok);
		if (out[n].flag == 0) {
			errno = 0;
			bail("unknown namespace type %s", tok);
		}
		snprintf(out[n].path, sizeof(out[n].path), "%s", colon + 1);
		out[n].fd = open(out[n].path, O_RDONLY | O_CLOEXEC);
		if (out[n].fd < 0)
			bail("open namespace %s", out[n].path);
		n++;
	}
	return n;
}

static void write_file(const char *path, const char *data)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		bail("open %s", path);
	size_t len = strlen(data);
	if (write(fd, data, len) != (ssize_t)len)
		bail("write %s", path);
	close(fd);
}

void berth_nsexec(void)
{
	const char *pipe_s = getenv("_BERTH_INITPIPE");
	if (pipe_s == NULL || *pipe_s == '\0')
		return;
	sync_fd = atoi(pipe_s);
	if (sync_fd < 3) {
		errno = 0;
		bail("bad _BERTH_INITPIPE %s", pipe_s);
	}

	// Not dumpable until the container process is exec'd (execve resets
	// it): processes in the container must not ptrace us or open our
	// /proc files while we hold the runtime's file descriptors.
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		bail("set non-dumpable");

	// Join the container's cgroup v1 hierarchies by writing "0" (ourself)
	// to their tasks files: a process that moves itself while it has a
	// single thread does not wait for the RCU grace period that moving
	// another process costs. The runtime says when the cgroups exist.
	const char *tasks = getenv("_BERTH_CGROUP_TASKS");
	const char *cg2dir = getenv("_BERTH_CGROUP2_DIR");
	int cg2fd = -1;
	if ((tasks && *tasks) || (cg2dir && *cg2dir))
		wait_byte("cgroup creation");
	// The final process is created directly in the cgroup v2 directory
	// (clone3 CLONE_INTO_CGROUP), opened now, while its path still
	// resolves in our mount namespace.
	if (cg2dir && *cg2dir) {
		cg2fd = open(cg2dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (cg2fd < 0)
			bail("open cgroup %s", cg2dir);
	}
	if (tasks && *tasks) {
		char buf[8192];
		if (strlen(tasks) >= sizeof(buf)) {
			errno = 0;
			bail("cgroup list too long");
		}
		strcpy(buf, tasks);
		char *save = NULL;
		for (char *p = strtok_r(buf, ";", &save); p; p = strtok_r(NULL, ";", &save))
			write_file(p, "0");
	}

	struct join joins[MAX_JOIN];
	int njoin = 0;
	const char *join_s = getenv("_BERTH_NS_JOIN");
	if (join_s && *join_s)
		njoin = parse_joins(join_s, joins);

	// A user namespace first: the other namespaces may be owned by it.
	for (int i = 0; i < njoin; i++) {
		if (joins[i].flag != CLONE_NEWUSER)
			continue;
		if (setns(joins[i].fd, CLONE_NEWUSER) < 0)
			bail("join user namespace %s", joins[i].path);
		if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
			bail("become root in user namespace %s", joins[i].path);
	}
	for (int i = 0; i < njoin; i++) {
		if (joins[i].flag == CLONE_NEWUSER)
			continue;
		if (setns(joins[i].fd, joins[i].flag) < 0)
			bail("join namespace %s", joins[i].path);
	}
	for (int i = 0; i < njoin; i++)
		close(joins[i].fd);

	unsigned long flags = 0;
	const char *new_s = getenv("_BERTH_NS_NEW");
	if (new_s && *new_s)
		flags = strtoul(new_s, NULL, 16);
	unsigned long newflags_all = flags;

	if (flags & CLONE_NEWUSER) {
		if (unshare(CLONE_NEWUSER) < 0)
			bail("unshare user namespace");
		send_pid("usermap", getpid());
		wait_byte("uid/gid maps");
		// Become root in the new namespace if 0 is mapped; when it is
		// not, the Go side reports the setup steps that need it.
		if (setresgid(0, 0, 0) == 0)
			(void)setresuid(0, 0, 0);
		flags &= ~(unsigned long)CLONE_NEWUSER;
	}
	// A new cgroup namespace is created by the final process, once it is
	// in all of its cgroups, so that it is rooted there.
	unsigned long cgroupns = flags & (unsigned long)CLONE_NEWCGROUP;
	flags &= ~cgroupns;
	if (flags != 0 && unshare((int)flags) < 0)
		bail("unshare namespaces 0x%lx", flags);
	// Where the runtime moves us into the cgroup itself (a fallback), it
	// says when it is done.
	wait_byte("cgroup setup");

	if (flags & CLONE_NEWTIME) {
		const char *off = getenv("_BERTH_TIMENS_OFFSETS");
		if (off && *off)
			write_file("/proc/self/timens_offsets", off);
	}

	pid_t child = -1;
	int joined = 0;
	// From a user namespace, creating into the host's cgroup is refused
	// late, after the child's pid was allocated, which would leave a new
	// pid namespace unusable: there, the runtime moves the child instead.
	int in_userns = (newflags_all & CLONE_NEWUSER) != 0;
	for (int i = 0; i < njoin; i++)
		if (joins[i].flag == CLONE_NEWUSER)
			in_userns = 1;
	if (cg2fd >= 0 && !in_userns) {
		struct clone_args args;
		memset(&args, 0, sizeof(args));
		args.flags = CLONE_PARENT | CLONE_INTO_CGROUP;
		// With CLONE_PARENT, clone3 takes the exit signal from us (the
		// runtime started us with SIGCHLD) and refuses one given here.
		args.exit_signal = 0;
		args.cgroup = (unsigned long long)cg2fd;
		child = (pid_t)syscall(SYS_clone3, &args, sizeof(args));
		if (child >= 0)
			joined = 1;
		// Refused (an old kernel, or no permission from a user
		// namespace): a plain clone, and the runtime moves the child.
	}
	if (child < 0)
		child = (pid_t)syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, 0, 0, 0);
	if (child < 0)
		bail("clone init");
	if (child == 0) {
		// The final process, single-threaded: wait for the runtime to
		// move it into its cgroup v2 if clone3 could not create it
		// there, then make its cgroup namespace.
		if (cg2fd >= 0 && !joined)
			wait_byte("cgroup v2 join");
		if (cgroupns != 0 && unshare(CLONE_NEWCGROUP) < 0)
			bail("unshare cgroup namespace");
		return; // on into the Go runtime
	}
	char line[128];
	int n = snprintf(line, sizeof(line), "{\"type\":\"pid\",\"pid\":%d,\"joined\":%s}\n", (int)child,
			 joined ? "true" : "false");
	write_all(sync_fd, line, (size_t)n);
	_exit(0);
}
