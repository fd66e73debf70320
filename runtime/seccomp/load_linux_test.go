//go:build linux && cgo

package seccomp

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// Loading a filter cannot be undone, so every TestLoad* test re-executes the
// test binary, running only itself, with childEnv set to its name; the
// child branch loads the filter and checks behaviour from the inside, the
// parent checks how the child ended.
const (
	childEnv    = "BERTH_SECCOMP_TEST_CHILD"
	childDirEnv = "BERTH_SECCOMP_TEST_DIR"
)

func isChild(t *testing.T) bool { return os.Getenv(childEnv) == t.Name() }

type childResult struct {
	out    string
	status syscall.WaitStatus
	pid    int
}

// runChild runs the current test in a child process and waits for it.
func runChild(t *testing.T, dir string) childResult {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^"+regexp.QuoteMeta(t.Name())+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+t.Name(), childDirEnv+"="+dir, "GOTRACEBACK=single")
	if os.Getenv("GORACE") == "" {
		cmd.Env = append(cmd.Env, "GORACE=atexit_sleep_ms=0") // race builds sleep 1s at exit
	}
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("running child: %v", err)
	}
	return childResult{
		out:    string(out),
		status: cmd.ProcessState.Sys().(syscall.WaitStatus),
		pid:    cmd.ProcessState.Pid(),
	}
}

// expectPass fails unless the child test ran and passed.
func (r childResult) expectPass(t *testing.T) {
	t.Helper()
	if !r.status.Exited() || r.status.ExitStatus() != 0 || !strings.Contains(r.out, "--- PASS: "+t.Name()) {
		t.Fatalf("child failed (status %v):\n%s", r.status, r.out)
	}
}

// childLoad loads cfg in the child, as the runtime's init would: on a
// locked thread, with no_new_privs set unless we are root.
func childLoad(t *testing.T, cfg *specs.LinuxSeccomp) int {
	t.Helper()
	runtime.LockOSThread()
	if os.Geteuid() != 0 {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			t.Fatalf("setting no_new_privs: %v", err)
		}
	}
	fd, err := Load(cfg)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return fd
}

// procStatus returns the value of a field of /proc/<path>/status.
func procStatus(t *testing.T, path, field string) string {
	t.Helper()
	f, err := os.Open(filepath.Join("/proc", path, "status"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if k, v, ok := strings.Cut(s.Text(), ":"); ok && k == field {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %s in /proc/%s/status", field, path)
	return ""
}

func errnoOf(err error) error {
	var e unix.Errno
	if errors.As(err, &e) {
		return e
	}
	return err
}

func TestLoadErrno(t *testing.T) {
	if !isChild(t) {
		runChild(t, t.TempDir()).expectPass(t)
		return
	}
	dir := os.Getenv(childDirEnv)
	fd := childLoad(t, &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.EXDEV))},
			{Names: []string{"getpgid"}, Action: specs.ActErrno},
		},
	})
	if fd != -1 {
		t.Errorf("Load returned notify fd %d without NOTIFY", fd)
	}
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); !errors.Is(err, unix.EXDEV) {
		t.Errorf("mkdir: %v, want EXDEV", err)
	}
	if _, err := unix.Getpgid(0); err != unix.EPERM {
		t.Errorf("getpgid: %v, want the default EPERM", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644); err != nil {
		t.Errorf("unfiltered syscalls fail: %v", err)
	}
	if got := procStatus(t, "self", "Seccomp"); got != "2" {
		t.Errorf("Seccomp mode %s, want 2 (filter)", got)
	}
	// TSYNC: every thread of the process carries the filter.
	tasks, _ := filepath.Glob("/proc/self/task/*")
	if len(tasks) < 2 {
		t.Errorf("expected a multi-threaded Go process, got %d tasks", len(tasks))
	}
	for _, task := range tasks {
		if got := procStatus(t, strings.TrimPrefix(task, "/proc/"), "Seccomp"); got != "2" {
			t.Errorf("%s: Seccomp mode %s, want 2", task, got)
		}
	}
	// no_new_privs is the caller's business: Load must not set it.
	if os.Geteuid() == 0 {
		if got := procStatus(t, "self", "NoNewPrivs"); got != "0" {
			t.Errorf("NoNewPrivs = %s, want 0", got)
		}
	}
}

func TestLoadDefaultErrnoRet(t *testing.T) {
	if !isChild(t) {
		runChild(t, t.TempDir()).expectPass(t)
		return
	}
	dir := os.Getenv(childDirEnv)
	// Allow every syscall libseccomp knows except mkdir/mkdirat, which fall
	// through to the default.
	var allow []string
	for nr := 0; nr < 1024; nr++ {
		name, err := libseccomp.ScmpSyscall(nr).GetName()
		if err == nil && name != "mkdir" && name != "mkdirat" {
			allow = append(allow, name)
		}
	}
	childLoad(t, &specs.LinuxSeccomp{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: uintp(uint(unix.ENOTSUP)),
		Syscalls:        []specs.LinuxSyscall{{Names: allow, Action: specs.ActAllow}},
	})
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); !errors.Is(err, unix.ENOTSUP) {
		t.Errorf("mkdir: %v, want ENOTSUP", err)
	}
	// A syscall number no kernel has is not in the allow list either.
	if _, _, e := unix.Syscall(1000, 0, 0, 0); e != unix.ENOTSUP {
		t.Errorf("syscall 1000: %v, want ENOTSUP", e)
	}
	if _, err := os.ReadDir(dir); err != nil {
		t.Errorf("allowed syscalls fail: %v", err)
	}
}

func TestLoadArgs(t *testing.T) {
	if !isChild(t) {
		runChild(t, t.TempDir()).expectPass(t)
		return
	}
	dir := os.Getenv(childDirEnv)
	dirFd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	const atFdcwd = uint64(0xffffffffffffff9c)
	childLoad(t, &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{
			// (mode & 07) == 05
			{Names: []string{"mkdirat"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.EXDEV)), Args: []specs.LinuxSeccompArg{
				{Index: 2, Value: 0o7, ValueTwo: 0o5, Op: specs.OpMaskedEqual},
			}},
			// mode == 0711 || mode == 0722
			{Names: []string{"mkdirat"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.EROFS)), Args: []specs.LinuxSeccompArg{
				{Index: 2, Value: 0o711, Op: specs.OpEqualTo},
				{Index: 2, Value: 0o722, Op: specs.OpEqualTo},
			}},
			// dirfd == AT_FDCWD && mode == 0744
			{Names: []string{"mkdirat"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.EMLINK)), Args: []specs.LinuxSeccompArg{
				{Index: 0, Value: atFdcwd, Op: specs.OpEqualTo},
				{Index: 2, Value: 0o744, Op: specs.OpEqualTo},
			}},
		},
	})
	tests := []struct {
		dirfd int
		name  string
		mode  uint32
		want  error
	}{
		{unix.AT_FDCWD, "m1", 0o755, unix.EXDEV},
		{unix.AT_FDCWD, "m2", 0o705, unix.EXDEV},
		{unix.AT_FDCWD, "m3", 0o700, nil},
		{unix.AT_FDCWD, "o1", 0o711, unix.EROFS},
		{unix.AT_FDCWD, "o2", 0o722, unix.EROFS},
		{unix.AT_FDCWD, "o3", 0o733, nil},
		{unix.AT_FDCWD, "a1", 0o744, unix.EMLINK},
		{dirFd, "a2", 0o744, nil},
		{unix.AT_FDCWD, "a3", 0o746, nil},
	}
	for _, tt := range tests {
		if err := unix.Mkdirat(tt.dirfd, tt.name, tt.mode); errnoOf(err) != errnoOf(tt.want) {
			t.Errorf("mkdirat(%d, %s, %#o) = %v, want %v", tt.dirfd, tt.name, tt.mode, err, tt.want)
		}
	}
}

func TestLoadUnknownSyscallSkipped(t *testing.T) {
	if !isChild(t) {
		runChild(t, t.TempDir()).expectPass(t)
		return
	}
	dir := os.Getenv(childDirEnv)
	childLoad(t, &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"berth_no_such_syscall", "mkdirat", "also_not_a_syscall"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.EXDEV))},
			{Names: []string{"not_a_syscall_either"}, Action: specs.ActKillProcess},
		},
	})
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); !errors.Is(err, unix.EXDEV) {
		t.Errorf("mkdir: %v, want EXDEV", err)
	}
}

func TestLoadFlags(t *testing.T) {
	if !isChild(t) {
		runChild(t, t.TempDir()).expectPass(t)
		return
	}
	dir := os.Getenv(childDirEnv)
	childLoad(t, &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Flags:         []specs.LinuxSeccompFlag{FlagTsync, specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow},
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdirat"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.EXDEV))}},
	})
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); !errors.Is(err, unix.EXDEV) {
		t.Errorf("mkdir: %v, want EXDEV", err)
	}
}

func TestLoadKillProcess(t *testing.T) {
	if !isChild(t) {
		r := runChild(t, t.TempDir())
		if !r.status.Signaled() || r.status.Signal() != unix.SIGSYS {
			t.Fatalf("child ended with %v, want killed by SIGSYS:\n%s", r.status, r.out)
		}
		return
	}
	_ = unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{})
	childLoad(t, &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"getpgid"}, Action: specs.ActKillProcess}},
	})
	unix.Getpgid(0)
	t.Error("survived a SCMP_ACT_KILL_PROCESS syscall")
}

func TestLoadTrap(t *testing.T) {
	if !isChild(t) {
		r := runChild(t, t.TempDir())
		// The Go runtime turns a seccomp SIGSYS (si_code SYS_SECCOMP = 1)
		// into a fatal error.
		if r.status.Exited() && r.status.ExitStatus() == 0 || !strings.Contains(r.out, "SIGSYS: bad system call") || !strings.Contains(r.out, "sigcode=1") {
			t.Fatalf("child ended with %v, want a SIGSYS crash:\n%s", r.status, r.out)
		}
		return
	}
	childLoad(t, &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"getpgid"}, Action: specs.ActTrap}},
	})
	unix.Getpgid(0)
	t.Error("SCMP_ACT_TRAP did not raise SIGSYS")
}

func TestLoadLog(t *testing.T) {
	if !isChild(t) {
		r := runChild(t, t.TempDir())
		r.expectPass(t)
		// The kernel audits SCMP_ACT_LOG hits (type=1326) when "log" is in
		// actions_logged; without auditd they go to the kernel log. That
		// is host configuration, so its absence is only reported.
		if b, err := os.ReadFile("/proc/sys/kernel/seccomp/actions_logged"); err == nil && strings.Contains(string(b), "log") {
			if !kmsgHas(fmt.Sprintf("pid=%d ", r.pid), "type=1326", fmt.Sprintf("syscall=%d", unix.SYS_GETPGID)) {
				t.Logf("no audit record for pid %d found in /dev/kmsg", r.pid)
			} else {
				t.Logf("audit record for pid %d found in /dev/kmsg", r.pid)
			}
		}
		return
	}
	childLoad(t, &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"getpgid"}, Action: specs.ActLog}},
	})
	if pg, err := unix.Getpgid(0); err != nil || pg != unix.Getpgrp() {
		t.Errorf("getpgid under SCMP_ACT_LOG = %d, %v; want the process group", pg, err)
	}
}

// kmsgHas reports whether a record of the kernel log contains all of subs.
func kmsgHas(subs ...string) bool {
	fd, err := unix.Open("/dev/kmsg", unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	buf := make([]byte, 8192)
	for {
		n, err := unix.Read(fd, buf)
		if errors.Is(err, unix.EPIPE) { // record overwritten: go on
			continue
		}
		if err != nil || n <= 0 {
			return false
		}
		rec := string(buf[:n])
		if !slices.ContainsFunc(subs, func(s string) bool { return !strings.Contains(rec, s) }) {
			return true
		}
	}
}

func TestLoadNotify(t *testing.T) {
	if !isChild(t) {
		runChild(t, t.TempDir()).expectPass(t)
		return
	}
	sock := filepath.Join(os.Getenv(childDirEnv), "agent.sock")
	agent := listenAgent(t, sock)
	const magicPgid = 4242
	cfg := &specs.LinuxSeccomp{
		DefaultAction:    specs.ActAllow,
		ListenerPath:     sock,
		ListenerMetadata: "hello agent",
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"getpgid"}, Action: specs.ActNotify, Args: []specs.LinuxSeccompArg{{Index: 0, Value: magicPgid, Op: specs.OpEqualTo}}},
		},
	}
	fd := childLoad(t, cfg)
	if fd < 0 {
		t.Fatalf("Load returned notify fd %d", fd)
	}
	if got := fdTarget(t, fd); got != "anon_inode:seccomp notify" {
		t.Fatalf("notify fd %d is %q", fd, got)
	}

	state, err := MarshalProcessState(cfg, os.Getpid(), specs.State{Version: specs.Version, ID: "c1", Status: specs.StateCreating, Pid: os.Getpid(), Bundle: "/bundle"})
	if err != nil {
		t.Fatal(err)
	}
	if err := SendListenerFd(sock, fd, state); err != nil {
		t.Fatalf("SendListenerFd: %v", err)
	}
	unix.Close(fd)

	r := <-agent
	if r.err != nil {
		t.Fatal(r.err)
	}
	var ps specs.ContainerProcessState
	if err := json.Unmarshal(r.data, &ps); err != nil {
		t.Fatalf("agent got bad state %q: %v", r.data, err)
	}
	if len(ps.Fds) != 1 || ps.Fds[0] != "seccompFd" || len(r.fds) != 1 || ps.Metadata != "hello agent" || ps.Pid != os.Getpid() || ps.State.ID != "c1" {
		t.Fatalf("agent got state %+v with %d fds", ps, len(r.fds))
	}
	agentFd := libseccomp.ScmpFd(r.fds[0])

	// Act as the agent: answer the notification with a made-up result.
	served := make(chan error, 1)
	go func() {
		req, err := libseccomp.NotifReceive(agentFd)
		if err != nil {
			served <- fmt.Errorf("NotifReceive: %w", err)
			return
		}
		// req.Pid is the thread that made the call.
		if _, err := os.Stat(fmt.Sprintf("/proc/self/task/%d", req.Pid)); req.Data.Args[0] != magicPgid || err != nil {
			served <- fmt.Errorf("unexpected notification %+v", req)
			return
		}
		served <- libseccomp.NotifRespond(agentFd, &libseccomp.ScmpNotifResp{ID: req.ID, Val: 777})
	}()
	done := make(chan uintptr, 1)
	go func() {
		r1, _, _ := unix.Syscall(unix.SYS_GETPGID, magicPgid, 0, 0)
		done <- r1
	}()
	select {
	case got := <-done:
		if got != 777 {
			t.Errorf("notified getpgid returned %d, want the agent's 777", got)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("notified syscall never returned")
	}
	if err := <-served; err != nil {
		t.Error(err)
	}
	// Calls that do not match the condition are not notified.
	if pg, err := unix.Getpgid(0); err != nil || pg != unix.Getpgrp() {
		t.Errorf("getpgid(0) = %d, %v", pg, err)
	}
}

// TestLoadNotifyUnknownSyscall: NOTIFY only on names unknown to libseccomp
// adds no notify rule, so there is no listener and Load returns -1.
func TestLoadNotifyUnknownSyscall(t *testing.T) {
	if !isChild(t) {
		runChild(t, t.TempDir()).expectPass(t)
		return
	}
	fd := childLoad(t, &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		ListenerPath:  "/nonexistent.sock",
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"berth_no_such_syscall"}, Action: specs.ActNotify},
			{Names: []string{"getpgid"}, Action: specs.ActErrno},
		},
	})
	if fd != -1 {
		t.Errorf("Load returned notify fd %d, want -1", fd)
	}
	if _, err := unix.Getpgid(0); err != unix.EPERM {
		t.Errorf("getpgid: %v, want EPERM", err)
	}
}

// TestLoadMultiArchX32 issues x32 syscalls (the syscall instruction with
// bit 30 set in the number). The kernel runs the filter before it looks at
// the number, so x32 rules apply even where the x32 ABI is disabled.
func TestLoadMultiArchX32(t *testing.T) {
	skipUnlessAMD64(t)
	if !isChild(t) {
		runChild(t, t.TempDir()).expectPass(t)
		return
	}
	path, err := unix.BytePtrFromString(filepath.Join(os.Getenv(childDirEnv), "d"))
	if err != nil {
		t.Fatal(err)
	}
	childLoad(t, &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{specs.ArchX86, specs.ArchX32},
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.EXDEV))}},
	})
	x32Mkdir, err := libseccomp.GetSyscallFromNameByArch("mkdir", libseccomp.ArchX32)
	if err != nil {
		t.Fatal(err)
	}
	nr := uintptr(x32Mkdir) | x32Bit
	if _, _, e := unix.Syscall(nr, uintptr(unsafe.Pointer(path)), 0o755, 0); e != unix.EXDEV {
		t.Errorf("x32 mkdir (%#x): %v, want EXDEV from the filter", nr, e)
	}
	// An x32 syscall without a rule passes the filter (instead of hitting
	// the bad-arch kill); the kernel then runs it or, with x32 disabled,
	// returns ENOSYS.
	if _, _, e := unix.Syscall(unix.SYS_GETPID|x32Bit, 0, 0, 0); e != 0 && e != unix.ENOSYS {
		t.Errorf("x32 getpid: %v", e)
	}
	if _, _, e := unix.Syscall(unix.SYS_MKDIR, uintptr(unsafe.Pointer(path)), 0o755, 0); e != unix.EXDEV {
		t.Errorf("native mkdir: %v, want EXDEV", e)
	}
}

// i386MkdirELF returns a minimal static i386 executable that calls
// mkdir("d", 0755) through int $0x80 and exits with the negated result:
// 0 on success, the errno otherwise.
func i386MkdirELF() []byte {
	const base = 0x08048000
	const ehdr, phdr = 52, 32
	code := []byte{
		0xb8, 39, 0, 0, 0, // mov $39 (mkdir), %eax
		0xbb, 0, 0, 0, 0, // mov $path, %ebx (patched below)
		0xb9, 0xed, 0x01, 0, 0, // mov $0755, %ecx
		0xcd, 0x80, // int $0x80
		0x89, 0xc3, // mov %eax, %ebx
		0xf7, 0xdb, // neg %ebx
		0xb8, 1, 0, 0, 0, // mov $1 (exit), %eax
		0xcd, 0x80, // int $0x80
		'd', 0,
	}
	binary.LittleEndian.PutUint32(code[6:], base+ehdr+phdr+uint32(len(code))-2)
	size := uint32(ehdr + phdr + len(code))

	le := binary.LittleEndian
	b := make([]byte, ehdr+phdr)
	copy(b, []byte{0x7f, 'E', 'L', 'F', 1 /* 32-bit */, 1 /* LE */, 1 /* version */})
	le.PutUint16(b[16:], 2)              // e_type: ET_EXEC
	le.PutUint16(b[18:], 3)              // e_machine: EM_386
	le.PutUint32(b[20:], 1)              // e_version
	le.PutUint32(b[24:], base+ehdr+phdr) // e_entry
	le.PutUint32(b[28:], ehdr)           // e_phoff
	le.PutUint16(b[40:], ehdr)           // e_ehsize
	le.PutUint16(b[42:], phdr)           // e_phentsize
	le.PutUint16(b[44:], 1)              // e_phnum
	p := b[ehdr:]
	le.PutUint32(p[0:], 1)     // p_type: PT_LOAD
	le.PutUint32(p[8:], base)  // p_vaddr
	le.PutUint32(p[12:], base) // p_paddr
	le.PutUint32(p[16:], size) // p_filesz
	le.PutUint32(p[20:], size) // p_memsz
	le.PutUint32(p[24:], 5)    // p_flags: R+X
	le.PutUint32(p[28:], 0x1000)
	return append(b, code...)
}

// writeI386 writes the i386 test program into dir and checks that this
// kernel runs it (IA-32 emulation), skipping the test otherwise.
func writeI386(t *testing.T, dir string) string {
	t.Helper()
	prog := filepath.Join(dir, "mkdir32")
	if err := os.WriteFile(prog, i386MkdirELF(), 0o755); err != nil {
		t.Fatal(err)
	}
	probe := t.TempDir()
	cmd := exec.Command(prog)
	cmd.Dir = probe
	if err := cmd.Run(); err != nil {
		t.Skipf("cannot run i386 programs (IA-32 emulation off?): %v", err)
	}
	if _, err := os.Stat(filepath.Join(probe, "d")); err != nil {
		t.Fatalf("i386 program did not create its directory: %v", err)
	}
	return prog
}

// TestLoadMultiArchX86 loads a filter listing SCMP_ARCH_X86, then execs an
// i386 program: its int $0x80 mkdir must hit the x86 rule.
func TestLoadMultiArchX86(t *testing.T) {
	skipUnlessAMD64(t)
	if !isChild(t) {
		dir := t.TempDir()
		writeI386(t, dir)
		r := runChild(t, dir)
		if !r.status.Exited() || r.status.ExitStatus() != int(unix.EXDEV) {
			t.Fatalf("i386 mkdir ended with %v, want exit status %d (EXDEV):\n%s", r.status, unix.EXDEV, r.out)
		}
		return
	}
	dir := os.Getenv(childDirEnv)
	childLoad(t, &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{specs.ArchX86, specs.ArchX32},
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.EXDEV))}},
	})
	err := unix.Exec(filepath.Join(dir, "mkdir32"), []string{"mkdir32"}, os.Environ())
	t.Fatalf("exec: %v", err)
}

// TestLoadNativeOnlyKillsX86 is the control for TestLoadMultiArchX86:
// without SCMP_ARCH_X86 in the filter, an i386 syscall is a bad-arch kill.
func TestLoadNativeOnlyKillsX86(t *testing.T) {
	skipUnlessAMD64(t)
	if !isChild(t) {
		dir := t.TempDir()
		writeI386(t, dir)
		r := runChild(t, dir)
		if !r.status.Signaled() || r.status.Signal() != unix.SIGSYS {
			t.Fatalf("i386 mkdir ended with %v, want killed by SIGSYS:\n%s", r.status, r.out)
		}
		return
	}
	dir := os.Getenv(childDirEnv)
	_ = unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{})
	childLoad(t, &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.EXDEV))}},
	})
	err := unix.Exec(filepath.Join(dir, "mkdir32"), []string{"mkdir32"}, os.Environ())
	t.Fatalf("exec: %v", err)
}
