//go:build linux && cgo

package seccomp

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestCompile(t *testing.T) {
	one := uint(1)
	cfg := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Flags:         []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog},
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdirat"}, Action: specs.ActErrno, ErrnoRet: &one}},
	}
	p, err := Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.BPF) == 0 || len(p.BPF)%8 != 0 {
		t.Fatalf("BPF of %d bytes", len(p.BPF))
	}
	if p.Flags != filterFlagLog || p.Notify {
		t.Fatalf("flags %#x notify %v", p.Flags, p.Notify)
	}
	if _, err := Compile(&specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_BOGUS"}); err == nil {
		t.Fatal("compiled an invalid configuration")
	}
	n, err := Compile(&specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		ListenerPath:  "/run/x.sock",
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"getpgid"}, Action: specs.ActNotify}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !n.Notify {
		t.Fatal("notify not detected")
	}
}

// TestProgramLoad loads a compiled program in a child process (loading is
// irreversible) and checks that it is enforced.
func TestProgramLoad(t *testing.T) {
	if os.Getenv("BERTH_SECCOMP_PROGRAM_CHILD") == "1" {
		eperm := uint(unix.EXDEV)
		p, err := Compile(&specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow,
			Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdirat", "mkdir"}, Action: specs.ActErrno, ErrnoRet: &eperm}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			t.Fatal(err)
		}
		if fd, err := p.Load(); err != nil || fd != -1 {
			t.Fatalf("Load = %d, %v", fd, err)
		}
		err = os.Mkdir(filepath.Join(os.Getenv("BERTH_SECCOMP_DIR"), "x"), 0o755)
		if !errors.Is(err, unix.EXDEV) {
			t.Fatalf("mkdir after the filter: %v, want EXDEV", err)
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestProgramLoad$", "-test.v")
	cmd.Env = append(os.Environ(), "BERTH_SECCOMP_PROGRAM_CHILD=1", "BERTH_SECCOMP_DIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

// TestClone3Enosys: a deny-by-default profile that does not name clone3
// must make it fail with ENOSYS (so glibc falls back to clone and threads
// can still be created), not with the profile's EPERM.
func TestClone3Enosys(t *testing.T) {
	if os.Getenv("BERTH_SECCOMP_CLONE3_CHILD") == "1" {
		p, err := Compile(&specs.LinuxSeccomp{
			DefaultAction: specs.ActErrno,
			Syscalls: []specs.LinuxSyscall{{Names: []string{
				"read", "write", "close", "exit", "exit_group", "futex", "mmap", "munmap", "madvise", "mprotect",
				"rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack", "clone", "gettid", "getpid",
				"tgkill", "nanosleep", "sched_yield", "epoll_pwait", "epoll_ctl", "fcntl", "openat",
				"set_robust_list", "rseq", "prctl", "getrlimit", "prlimit64", "sched_getaffinity", "fstat", "newfstatat",
				"clock_gettime", "pipe2", "epoll_create1", "brk", "arch_prctl", "set_tid_address", "getrandom", "dup3",
			}, Action: specs.ActAllow}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := p.Load(); err != nil {
			t.Fatal(err)
		}
		_, _, errno := unix.Syscall(unix.SYS_CLONE3, 0, 0, 0)
		if errno != unix.ENOSYS {
			t.Fatalf("clone3 under the filter: %v, want ENOSYS", errno)
		}
		_, _, errno = unix.Syscall(unix.SYS_UNSHARE, 0, 0, 0)
		if errno != unix.EPERM {
			t.Fatalf("unshare under the filter: %v, want the profile's EPERM", errno)
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestClone3Enosys$", "-test.v")
	cmd.Env = append(os.Environ(), "BERTH_SECCOMP_CLONE3_CHILD=1", "GOMAXPROCS=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
}
