//go:build integration

package runtime_test

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// seccompProfile allows everything but the named syscalls, which get
// action (with errno for SCMP_ACT_ERRNO).
func seccompProfile(action specs.LinuxSeccompAction, errno uint, names ...string) *specs.LinuxSeccomp {
	rule := specs.LinuxSyscall{Names: names, Action: action}
	if action == specs.ActErrno {
		rule.ErrnoRet = &errno
	}
	return &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
		Syscalls:      []specs.LinuxSyscall{rule},
	}
}

// TestSeccomp runs the syscall applet under different profiles, as the
// container's process (output) and exec'd into it (output and exit
// status). mkdir is tried on /dev/shm, which is writable even with a
// read-only root.
func TestSeccomp(t *testing.T) {
	t.Parallel()
	dir := "/dev/shm/seccomp-probe"
	tests := []struct {
		name    string
		profile *specs.LinuxSeccomp
		code    int
		stdout  string
	}{
		{name: "no profile", stdout: "ok\n"},
		{
			name:    "errno EPERM",
			profile: seccompProfile(specs.ActErrno, 1, "mkdir", "mkdirat"),
			code:    1,
			stdout:  "EPERM (1): operation not permitted\n",
		},
		{
			name:    "errno EACCES",
			profile: seccompProfile(specs.ActErrno, 13, "mkdir", "mkdirat"),
			code:    1,
			stdout:  "EACCES (13): permission denied\n",
		},
		{
			name:    "other syscall denied",
			profile: seccompProfile(specs.ActErrno, 1, "chmod", "fchmodat", "fchmodat2"),
			stdout:  "ok\n",
		},
		{
			name:    "kill process",
			profile: seccompProfile(specs.ActKillProcess, 0, "mkdir", "mkdirat"),
			code:    128 + 31, // SIGSYS
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newCtr(t).args("syscall", "mkdir", dir)
			c.spec.Linux.Seccomp = tt.profile
			if out := c.runToEnd(); out != tt.stdout {
				t.Errorf("container process syscall mkdir: stdout %q, want %q\nstderr: %q", out, tt.stdout, c.errOutput())
			}

			e := newCtr(t)
			e.spec.Linux.Seccomp = tt.profile
			e.startLong()
			r := e.exec(nil, "syscall", "mkdir", dir)
			if r.code != tt.code || r.stdout != tt.stdout {
				t.Errorf("exec'd syscall mkdir: exit %d stdout %q, want exit %d stdout %q\n%v", r.code, r.stdout, tt.code, tt.stdout, r)
			}
		})
	}
}

// TestSeccompStatus checks the Seccomp line of /proc/self/status, and that
// exec'd processes get the filter too.
func TestSeccompStatus(t *testing.T) {
	t.Parallel()
	c := newCtr(t)
	c.spec.Linux.Seccomp = seccompProfile(specs.ActErrno, 1, "mkdir", "mkdirat")
	c.startLong()
	if out := c.execOK("caps"); !hasLine(out, "Seccomp:\t2") {
		t.Errorf("caps in a container with a seccomp profile: %q, want Seccomp: 2 (filter)", out)
	}
	r := c.exec(nil, "syscall", "mkdir", "/dev/shm/probe")
	if r.code != 1 || !strings.HasPrefix(r.stdout, "EPERM") {
		t.Errorf("exec'd syscall mkdir: want EPERM, got %v", r)
	}
}
