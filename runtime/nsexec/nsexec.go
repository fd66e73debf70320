// Package nsexec joins and creates namespaces before the Go runtime starts.
//
// Importing it (for its side effect) installs a C constructor that, in a
// process started by berth-runtime as a container init or exec, joins the
// namespaces named in its environment, unshares new ones and forks the final
// process. In every other process the constructor returns at once.
package nsexec

/*
#cgo CFLAGS: -Wall -Wextra -O2
extern void berth_nsexec(void);
void __attribute__((constructor)) berth_nsexec_init(void) { berth_nsexec(); }
*/
import "C"

// Environment variables read by the constructor.
const (
	EnvInitPipe      = "_BERTH_INITPIPE"
	EnvJoin          = "_BERTH_NS_JOIN"
	EnvNew           = "_BERTH_NS_NEW"
	EnvTimensOffsets = "_BERTH_TIMENS_OFFSETS"
	// EnvCgroupTasks lists ";"-separated cgroup v1 "tasks" files the
	// intermediate process joins itself to.
	EnvCgroupTasks = "_BERTH_CGROUP_TASKS"
	// EnvCgroup2Dir names the cgroup v2 directory the final process is
	// created in (the container's, or the hybrid layout's unified one).
	EnvCgroup2Dir = "_BERTH_CGROUP2_DIR"
)
