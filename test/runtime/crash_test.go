//go:build integration

package runtime_test

import (
	"strings"
	"testing"
)

// TestCrashDuringCreate kills the runtime (SIGKILL, through its failpoint
// hook) at each step of create; a later `delete -f` must remove what the
// dead create left: state, cgroup and processes.
func TestCrashDuringCreate(t *testing.T) {
	t.Parallel()
	for _, point := range []string{"create:dir", "create:cgroup", "create:init", "create:ready"} {
		t.Run(point, func(t *testing.T) {
			t.Parallel()
			c := newCtr(t).args("sleep", "60")
			c.writeSpec()
			r := c.rt(runOpts{env: []string{"_BERTH_RUNTIME_FAILPOINT=" + point}, stdout: c.out, stderr: c.errOut}, "create", c.id)
			if r.code == 0 {
				t.Fatalf("create with failpoint %s succeeded: %v", point, r)
			}
			// Whatever state it left must be readable, and deletable.
			if st := c.cmd("state"); st.code == 0 && !strings.Contains(st.stdout, `"status": "stopped"`) && !strings.Contains(st.stdout, `"status": "created"`) {
				t.Errorf("state after a crash at %s: %v", point, st)
			}
			if r := c.rt(runOpts{}, "delete", "-f", c.id); r.code != 0 {
				t.Fatalf("delete after a crash at %s: %v", point, r)
			}
			assertNothingLeft(t, c.root, c.id, c.bundle)
		})
	}
}

// TestCrashDuringDelete kills delete half-way; a second delete finishes.
func TestCrashDuringDelete(t *testing.T) {
	t.Parallel()
	for _, point := range []string{"delete:killed", "delete:cgroup"} {
		t.Run(point, func(t *testing.T) {
			t.Parallel()
			c := newCtr(t).args("sleep", "60")
			c.createOK()
			c.must("start")
			r := c.rt(runOpts{env: []string{"_BERTH_RUNTIME_FAILPOINT=" + point}}, "delete", "-f", c.id)
			if r.code == 0 {
				t.Fatalf("delete with failpoint %s succeeded: %v", point, r)
			}
			if r := c.rt(runOpts{}, "delete", "-f", c.id); r.code != 0 {
				t.Fatalf("delete after a crash at %s: %v", point, r)
			}
			assertNothingLeft(t, c.root, c.id, c.bundle)
		})
	}
}
