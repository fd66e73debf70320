// Package failpoint lets crash tests kill a berth process at a named
// persistence step. A test runs berth (or a test helper) with
//
//	_BERTH_FAILPOINT=NAME[:N]
//
// in its environment, and the process sends itself SIGKILL the N-th time
// (default the first) it reaches Fire(NAME). Without the variable, Fire is
// a load of a cached value and a compare: cheap enough for every step of a
// pull.
package failpoint

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

// EnvVar names the environment variable that arms a failpoint.
const EnvVar = "_BERTH_FAILPOINT"

type armed struct {
	name  string
	count int64
	hits  atomic.Int64
}

// target is the failpoint armed by the environment, read once.
var target = sync.OnceValue(func() *armed {
	v := os.Getenv(EnvVar)
	if v == "" {
		return nil
	}
	a := &armed{name: v, count: 1}
	if name, n, ok := strings.Cut(v, ":"); ok {
		if c, err := strconv.ParseInt(n, 10, 64); err == nil && c > 0 {
			a.name, a.count = name, c
		}
	}
	return a
})

// Fire kills the process with SIGKILL if the armed failpoint is name and
// this is its N-th hit.
func Fire(name string) {
	a := target()
	if a == nil || a.name != name {
		return
	}
	if a.hits.Add(1) == a.count {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // SIGKILL is not instantaneous
	}
}
