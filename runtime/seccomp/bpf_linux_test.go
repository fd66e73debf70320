//go:build linux && cgo

package seccomp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// Kernel seccomp return values (SECCOMP_RET_*).
const (
	retKillProcess = 0x80000000
	retKillThread  = 0x00000000
	retTrap        = 0x00030000
	retErrno       = 0x00050000
	retUserNotif   = 0x7fc00000
	retTrace       = 0x7ff00000
	retLog         = 0x7ffc0000
	retAllow       = 0x7fff0000

	x32Bit = 0x40000000
)

// exportBPF builds cfg and returns its classic BPF program.
func exportBPF(t *testing.T, cfg *specs.LinuxSeccomp) []unix.SockFilter {
	t.Helper()
	filter, err := Build(cfg)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	defer filter.Release()
	f, err := os.Create(filepath.Join(t.TempDir(), "filter.bpf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := filter.ExportBPF(f); err != nil {
		t.Fatalf("ExportBPF: %v", err)
	}
	raw, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) == 0 || len(raw)%8 != 0 {
		t.Fatalf("BPF program of %d bytes", len(raw))
	}
	prog := make([]unix.SockFilter, len(raw)/8)
	for i := range prog {
		b := raw[i*8:]
		prog[i] = unix.SockFilter{
			Code: binary.NativeEndian.Uint16(b[0:]),
			Jt:   b[2],
			Jf:   b[3],
			K:    binary.NativeEndian.Uint32(b[4:]),
		}
	}
	return prog
}

// seccompData mirrors struct seccomp_data.
type seccompData struct {
	nr   int32
	arch uint32
	ip   uint64
	args [6]uint64
}

func (d *seccompData) word(off uint32) (uint32, error) {
	var buf [64]byte
	binary.NativeEndian.PutUint32(buf[0:], uint32(d.nr))
	binary.NativeEndian.PutUint32(buf[4:], d.arch)
	binary.NativeEndian.PutUint64(buf[8:], d.ip)
	for i, a := range d.args {
		binary.NativeEndian.PutUint64(buf[16+8*i:], a)
	}
	if off%4 != 0 || off+4 > uint32(len(buf)) {
		return 0, fmt.Errorf("bad load offset %d", off)
	}
	return binary.NativeEndian.Uint32(buf[off:]), nil
}

// runBPF is a small classic-BPF interpreter, enough for the programs
// libseccomp generates, so filters can be checked for any architecture
// without loading them.
func runBPF(prog []unix.SockFilter, d *seccompData) (uint32, error) {
	var a, x uint32
	var mem [16]uint32
	for pc := 0; pc < len(prog); pc++ {
		ins := prog[pc]
		src := ins.K
		if ins.Code&unix.BPF_X != 0 {
			src = x
		}
		switch ins.Code & 0x07 {
		case unix.BPF_LD:
			switch ins.Code &^ 0x07 {
			case unix.BPF_W | unix.BPF_ABS:
				w, err := d.word(ins.K)
				if err != nil {
					return 0, err
				}
				a = w
			case unix.BPF_IMM:
				a = ins.K
			case unix.BPF_MEM:
				a = mem[ins.K]
			case unix.BPF_W | unix.BPF_LEN:
				a = 64
			default:
				return 0, fmt.Errorf("pc %d: unsupported ld %#x", pc, ins.Code)
			}
		case unix.BPF_LDX:
			switch ins.Code &^ 0x07 {
			case unix.BPF_IMM:
				x = ins.K
			case unix.BPF_MEM:
				x = mem[ins.K]
			default:
				return 0, fmt.Errorf("pc %d: unsupported ldx %#x", pc, ins.Code)
			}
		case unix.BPF_ST:
			mem[ins.K] = a
		case unix.BPF_STX:
			mem[ins.K] = x
		case unix.BPF_ALU:
			switch ins.Code & 0xf0 {
			case unix.BPF_ADD:
				a += src
			case unix.BPF_SUB:
				a -= src
			case unix.BPF_MUL:
				a *= src
			case unix.BPF_OR:
				a |= src
			case unix.BPF_AND:
				a &= src
			case unix.BPF_XOR:
				a ^= src
			case unix.BPF_LSH:
				a <<= src
			case unix.BPF_RSH:
				a >>= src
			case unix.BPF_NEG:
				a = -a
			default:
				return 0, fmt.Errorf("pc %d: unsupported alu %#x", pc, ins.Code)
			}
		case unix.BPF_JMP:
			var taken bool
			switch ins.Code & 0xf0 {
			case unix.BPF_JA:
				pc += int(ins.K)
				continue
			case unix.BPF_JEQ:
				taken = a == src
			case unix.BPF_JGT:
				taken = a > src
			case unix.BPF_JGE:
				taken = a >= src
			case unix.BPF_JSET:
				taken = a&src != 0
			default:
				return 0, fmt.Errorf("pc %d: unsupported jmp %#x", pc, ins.Code)
			}
			if taken {
				pc += int(ins.Jt)
			} else {
				pc += int(ins.Jf)
			}
		case unix.BPF_RET:
			if ins.Code&0x18 == unix.BPF_A {
				return a, nil
			}
			return ins.K, nil
		case unix.BPF_MISC:
			if ins.Code&0xf8 == unix.BPF_TXA {
				a = x
			} else {
				x = a
			}
		}
	}
	return 0, errors.New("fell off the end of the program")
}

// call describes one syscall invocation to feed to a filter.
type call struct {
	arch libseccomp.ScmpArch // 0 means native (amd64 here)
	name string
	nr   int32 // used when name is ""
	args [6]uint64
}

func (c call) String() string {
	name := c.name
	if name == "" {
		name = fmt.Sprintf("#%d", c.nr)
	}
	return fmt.Sprintf("%v:%s%v", c.arch, name, c.args)
}

func auditArch(t *testing.T, a libseccomp.ScmpArch) (uint32, uint32) {
	switch a {
	case 0, libseccomp.ArchAMD64:
		return unix.AUDIT_ARCH_X86_64, 0
	case libseccomp.ArchX32:
		return unix.AUDIT_ARCH_X86_64, x32Bit
	case libseccomp.ArchX86:
		return unix.AUDIT_ARCH_I386, 0
	case libseccomp.ArchARM64:
		return unix.AUDIT_ARCH_AARCH64, 0
	}
	t.Fatalf("no audit arch for %v", a)
	return 0, 0
}

func eval(t *testing.T, prog []unix.SockFilter, c call) uint32 {
	t.Helper()
	arch := c.arch
	if arch == 0 {
		arch = libseccomp.ArchAMD64
	}
	audit, bit := auditArch(t, arch)
	nr := c.nr
	if c.name != "" {
		sc, err := libseccomp.GetSyscallFromNameByArch(c.name, arch)
		if err != nil {
			t.Fatalf("resolving %s on %v: %v", c.name, arch, err)
		}
		nr = int32(sc) | int32(bit)
	}
	ret, err := runBPF(prog, &seccompData{nr: nr, arch: audit, args: c.args})
	if err != nil {
		t.Fatalf("running BPF for %v: %v", c, err)
	}
	return ret
}

func skipUnlessAMD64(t *testing.T) {
	t.Helper()
	if arch, err := libseccomp.GetNativeArch(); err != nil || arch != libseccomp.ArchAMD64 {
		t.Skipf("BPF expectations are written for amd64 (native arch %v)", arch)
	}
}

// TestBuildBPF compiles configurations and checks the verdict of the
// generated BPF program for individual syscalls.
func TestBuildBPF(t *testing.T) {
	skipUnlessAMD64(t)
	const atFdcwd = uint64(0xffffffffffffff9c) // AT_FDCWD (-100) in a 64-bit register
	type check struct {
		call call
		want uint32
	}
	tests := []struct {
		name   string
		cfg    *specs.LinuxSeccomp
		checks []check
	}{
		{
			name: "every action",
			cfg: &specs.LinuxSeccomp{
				DefaultAction: specs.ActAllow,
				ListenerPath:  "/unused",
				Syscalls: []specs.LinuxSyscall{
					{Names: []string{"reboot"}, Action: specs.ActKill},
					{Names: []string{"kexec_load"}, Action: specs.ActKillProcess},
					{Names: []string{"swapon"}, Action: specs.ActKillThread},
					{Names: []string{"acct"}, Action: specs.ActTrap},
					{Names: []string{"mkdir"}, Action: specs.ActErrno},
					{Names: []string{"mkdirat"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.EXDEV))},
					{Names: []string{"rmdir"}, Action: specs.ActErrno, ErrnoRet: uintp(0)},
					{Names: []string{"ptrace"}, Action: specs.ActTrace},
					{Names: []string{"process_vm_readv"}, Action: specs.ActTrace, ErrnoRet: uintp(0xbeef)},
					{Names: []string{"getpid"}, Action: specs.ActLog},
					{Names: []string{"mount"}, Action: specs.ActNotify},
				},
			},
			checks: []check{
				{call{name: "reboot"}, retKillThread},
				{call{name: "kexec_load"}, retKillProcess},
				{call{name: "swapon"}, retKillThread},
				{call{name: "acct"}, retTrap},
				{call{name: "mkdir"}, retErrno | uint32(unix.EPERM)},
				{call{name: "mkdirat"}, retErrno | uint32(unix.EXDEV)},
				{call{name: "rmdir"}, retErrno},
				{call{name: "ptrace"}, retTrace | uint32(unix.EPERM)},
				{call{name: "process_vm_readv"}, retTrace | 0xbeef},
				{call{name: "getpid"}, retLog},
				{call{name: "mount"}, retUserNotif},
				{call{name: "read"}, retAllow},
			},
		},
		{
			name: "default errno",
			cfg: &specs.LinuxSeccomp{
				DefaultAction:   specs.ActErrno,
				DefaultErrnoRet: uintp(uint(unix.ENOSYS)),
				Syscalls: []specs.LinuxSyscall{
					{Names: []string{"read", "write"}, Action: specs.ActAllow},
					// Same action as the default: redundant, must be skipped
					// rather than rejected by libseccomp.
					{Names: []string{"mkdir"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.ENOSYS))},
					{Names: []string{"rmdir"}, Action: specs.ActErrno},
				},
			},
			checks: []check{
				{call{name: "read"}, retAllow},
				{call{name: "write"}, retAllow},
				{call{name: "mkdir"}, retErrno | uint32(unix.ENOSYS)},
				{call{name: "rmdir"}, retErrno | uint32(unix.EPERM)},
				{call{name: "getpid"}, retErrno | uint32(unix.ENOSYS)},
				{call{nr: 1000}, retErrno | uint32(unix.ENOSYS)},
			},
		},
		{
			name: "default notify",
			cfg: &specs.LinuxSeccomp{
				DefaultAction: specs.ActNotify,
				ListenerPath:  "/unused",
				Syscalls:      []specs.LinuxSyscall{{Names: []string{"write", "read"}, Action: specs.ActAllow}},
			},
			checks: []check{
				{call{name: "write"}, retAllow},
				{call{name: "read"}, retAllow},
				{call{name: "mount"}, retUserNotif},
			},
		},
		{
			name: "default errno without errnoRet is EPERM",
			cfg:  &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow}}},
			checks: []check{
				{call{name: "getpid"}, retErrno | uint32(unix.EPERM)},
			},
		},
		{
			name: "default trace and kill process",
			cfg: &specs.LinuxSeccomp{
				DefaultAction:   specs.ActTrace,
				DefaultErrnoRet: uintp(42),
				Syscalls:        []specs.LinuxSyscall{{Names: []string{"getpid"}, Action: specs.ActKillProcess}},
			},
			checks: []check{
				{call{name: "read"}, retTrace | 42},
				{call{name: "getpid"}, retKillProcess},
			},
		},
		{
			name: "operators",
			cfg: &specs.LinuxSeccomp{
				DefaultAction: specs.ActAllow,
				Syscalls: []specs.LinuxSyscall{
					{Names: []string{"setuid"}, Action: specs.ActErrno, ErrnoRet: uintp(1), Args: []specs.LinuxSeccompArg{{Index: 0, Value: 10, Op: specs.OpNotEqual}}},
					{Names: []string{"setgid"}, Action: specs.ActErrno, ErrnoRet: uintp(2), Args: []specs.LinuxSeccompArg{{Index: 0, Value: 10, Op: specs.OpLessThan}}},
					{Names: []string{"setfsuid"}, Action: specs.ActErrno, ErrnoRet: uintp(3), Args: []specs.LinuxSeccompArg{{Index: 0, Value: 10, Op: specs.OpLessEqual}}},
					{Names: []string{"setfsgid"}, Action: specs.ActErrno, ErrnoRet: uintp(4), Args: []specs.LinuxSeccompArg{{Index: 0, Value: 10, Op: specs.OpEqualTo}}},
					{Names: []string{"umask"}, Action: specs.ActErrno, ErrnoRet: uintp(5), Args: []specs.LinuxSeccompArg{{Index: 0, Value: 10, Op: specs.OpGreaterEqual}}},
					{Names: []string{"alarm"}, Action: specs.ActErrno, ErrnoRet: uintp(6), Args: []specs.LinuxSeccompArg{{Index: 0, Value: 10, Op: specs.OpGreaterThan}}},
					// 64-bit operand: the high word matters.
					{Names: []string{"personality"}, Action: specs.ActErrno, ErrnoRet: uintp(7), Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0x1_0000_0000, Op: specs.OpEqualTo}}},
				},
			},
			checks: []check{
				{call{name: "setuid", args: [6]uint64{9}}, retErrno | 1},
				{call{name: "setuid", args: [6]uint64{10}}, retAllow},
				{call{name: "setgid", args: [6]uint64{9}}, retErrno | 2},
				{call{name: "setgid", args: [6]uint64{10}}, retAllow},
				{call{name: "setfsuid", args: [6]uint64{10}}, retErrno | 3},
				{call{name: "setfsuid", args: [6]uint64{11}}, retAllow},
				{call{name: "setfsgid", args: [6]uint64{10}}, retErrno | 4},
				{call{name: "setfsgid", args: [6]uint64{11}}, retAllow},
				{call{name: "umask", args: [6]uint64{10}}, retErrno | 5},
				{call{name: "umask", args: [6]uint64{9}}, retAllow},
				{call{name: "alarm", args: [6]uint64{11}}, retErrno | 6},
				{call{name: "alarm", args: [6]uint64{10}}, retAllow},
				{call{name: "personality", args: [6]uint64{0x1_0000_0000}}, retErrno | 7},
				{call{name: "personality", args: [6]uint64{0}}, retAllow},
			},
		},
		{
			name: "masked equal",
			cfg: &specs.LinuxSeccomp{
				DefaultAction: specs.ActAllow,
				Syscalls: []specs.LinuxSyscall{
					// clone with any namespace flag, as in the default
					// profiles: (flags & 0x7E020000) == 0 is allowed.
					{Names: []string{"clone"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0o7, ValueTwo: 0o5, Op: specs.OpMaskedEqual}}},
				},
			},
			checks: []check{
				{call{name: "clone", args: [6]uint64{0o5}}, retErrno | uint32(unix.EPERM)},
				{call{name: "clone", args: [6]uint64{0o775}}, retErrno | uint32(unix.EPERM)},
				{call{name: "clone", args: [6]uint64{0o7}}, retAllow},
				{call{name: "clone", args: [6]uint64{0o4}}, retAllow},
			},
		},
		{
			name: "same argument twice is ORed, distinct arguments are ANDed",
			cfg: &specs.LinuxSeccomp{
				DefaultAction: specs.ActAllow,
				Syscalls: []specs.LinuxSyscall{
					{Names: []string{"mkdirat"}, Action: specs.ActErrno, ErrnoRet: uintp(1), Args: []specs.LinuxSeccompArg{
						{Index: 2, Value: 0o711, Op: specs.OpEqualTo},
						{Index: 2, Value: 0o722, Op: specs.OpEqualTo},
					}},
					{Names: []string{"mkdirat"}, Action: specs.ActErrno, ErrnoRet: uintp(2), Args: []specs.LinuxSeccompArg{
						{Index: 0, Value: atFdcwd, Op: specs.OpEqualTo},
						{Index: 2, Value: 0o744, Op: specs.OpEqualTo},
					}},
				},
			},
			checks: []check{
				{call{name: "mkdirat", args: [6]uint64{3, 0, 0o711}}, retErrno | 1},
				{call{name: "mkdirat", args: [6]uint64{3, 0, 0o722}}, retErrno | 1},
				{call{name: "mkdirat", args: [6]uint64{3, 0, 0o733}}, retAllow},
				{call{name: "mkdirat", args: [6]uint64{atFdcwd, 0, 0o744}}, retErrno | 2},
				{call{name: "mkdirat", args: [6]uint64{3, 0, 0o744}}, retAllow},
				{call{name: "mkdirat", args: [6]uint64{atFdcwd, 0, 0o745}}, retAllow},
			},
		},
		{
			name: "unknown syscall names are skipped",
			cfg: &specs.LinuxSeccomp{
				DefaultAction: specs.ActAllow,
				Syscalls: []specs.LinuxSyscall{
					{Names: []string{"berth_no_such_syscall", "mkdir", "socketcall", "_llseek"}, Action: specs.ActErrno},
					{Names: []string{"another_made_up_one"}, Action: specs.ActKill},
				},
			},
			checks: []check{
				{call{name: "mkdir"}, retErrno | uint32(unix.EPERM)},
				{call{name: "read"}, retAllow},
			},
		},
		{
			name: "multi-arch",
			cfg: &specs.LinuxSeccomp{
				DefaultAction: specs.ActAllow,
				Architectures: []specs.Arch{specs.ArchX86, specs.ArchX32},
				Syscalls: []specs.LinuxSyscall{
					{Names: []string{"mkdir"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.EXDEV))},
					// socketcall exists on x86 only.
					{Names: []string{"socketcall"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.EAFNOSUPPORT))},
				},
			},
			checks: []check{
				{call{name: "mkdir"}, retErrno | uint32(unix.EXDEV)},
				{call{arch: libseccomp.ArchX86, name: "mkdir"}, retErrno | uint32(unix.EXDEV)},
				{call{arch: libseccomp.ArchX32, name: "mkdir"}, retErrno | uint32(unix.EXDEV)},
				{call{arch: libseccomp.ArchX86, name: "socketcall"}, retErrno | uint32(unix.EAFNOSUPPORT)},
				{call{arch: libseccomp.ArchX86, name: "read"}, retAllow},
				{call{arch: libseccomp.ArchX32, name: "read"}, retAllow},
				{call{arch: libseccomp.ArchARM64, name: "read"}, retKillThread}, // not in the filter
			},
		},
		{
			name: "native only",
			cfg: &specs.LinuxSeccomp{
				DefaultAction: specs.ActAllow,
				Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActErrno}},
			},
			checks: []check{
				{call{name: "mkdir"}, retErrno | uint32(unix.EPERM)},
				{call{arch: libseccomp.ArchX86, name: "read"}, retKillThread},
				{call{arch: libseccomp.ArchX32, name: "read"}, retKillThread},
			},
		},
		{
			name: "native listed explicitly",
			cfg: &specs.LinuxSeccomp{
				DefaultAction: specs.ActAllow,
				Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86},
				Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActErrno}},
			},
			checks: []check{
				{call{name: "mkdir"}, retErrno | uint32(unix.EPERM)},
				{call{arch: libseccomp.ArchX86, name: "mkdir"}, retErrno | uint32(unix.EPERM)},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prog := exportBPF(t, tt.cfg)
			for _, c := range tt.checks {
				if got := eval(t, prog, c.call); got != c.want {
					t.Errorf("%v: verdict %#x, want %#x", c.call, got, c.want)
				}
			}
		})
	}
}

func TestBuildErrors(t *testing.T) {
	cases := []struct {
		name  string
		cfg   *specs.LinuxSeccomp
		field string
		want  error
	}{
		{name: "nil", cfg: nil, field: "seccomp", want: ErrInvalid},
		{name: "invalid", cfg: &specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_X"}, field: "defaultAction", want: ErrUnknownAction},
	}
	// An arch of the spec that the linked libseccomp does not know.
	for _, a := range knownArchs {
		if !slices.Contains(Archs(), string(a)) {
			cases = append(cases, struct {
				name  string
				cfg   *specs.LinuxSeccomp
				field string
				want  error
			}{
				name:  "unsupported arch " + string(a),
				cfg:   &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchX86, a}},
				field: "architectures[1]", want: ErrUnsupported,
			})
			break
		}
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Build(tt.cfg)
			if err == nil {
				f.Release()
				t.Fatal("Build succeeded")
			}
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Field != tt.field || !errors.Is(err, tt.want) {
				t.Fatalf("Build() = %v, want %v on %s", err, tt.want, tt.field)
			}
		})
	}
}

func TestBuildFlags(t *testing.T) {
	for _, flag := range knownFlags {
		t.Run(string(flag), func(t *testing.T) {
			cfg := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{flag}}
			f, err := Build(cfg)
			if slices.Contains(SupportedFlags(), string(flag)) {
				if err != nil {
					t.Fatalf("supported flag: Build() = %v", err)
				}
				defer f.Release()
			} else {
				if err == nil {
					f.Release()
					t.Fatalf("unsupported flag (libseccomp %s, API %d): Build succeeded", LibseccompVersion(), APILevel())
				}
				var ce *ConfigError
				if !errors.As(err, &ce) || ce.Field != "flags[0]" || !errors.Is(err, ErrUnsupported) {
					t.Fatalf("Build() = %v, want ErrUnsupported on flags[0]", err)
				}
				t.Logf("expected error: %v", err)
				return
			}
			switch flag {
			case specs.LinuxSeccompFlagLog:
				if on, err := f.GetLogBit(); err != nil || !on {
					t.Errorf("log bit = %v, %v", on, err)
				}
			case specs.LinuxSeccompFlagSpecAllow:
				if on, err := f.GetSSB(); err != nil || !on {
					t.Errorf("SSB bit = %v, %v", on, err)
				}
			case specs.LinuxSeccompFlagWaitKillableRecv:
				if on, err := f.GetWaitKill(); err != nil || !on {
					t.Errorf("wait-kill bit = %v, %v", on, err)
				}
			}
			if nnp, err := f.GetNoNewPrivsBit(); err != nil || nnp {
				t.Errorf("no_new_privs attribute = %v, %v; want false (left to the caller)", nnp, err)
			}
		})
	}
}

func TestFeatures(t *testing.T) {
	if !Enabled() {
		t.Fatal("Enabled() = false in a cgo build")
	}
	v := LibseccompVersion()
	var major, minor, micro int
	if _, err := fmt.Sscanf(v, "%d.%d.%d", &major, &minor, &micro); err != nil || major < 2 {
		t.Errorf("LibseccompVersion() = %q", v)
	}
	if APILevel() < 1 {
		t.Errorf("APILevel() = %d", APILevel())
	}
	archs := Archs()
	for _, want := range []string{"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64"} {
		if !slices.Contains(archs, want) {
			t.Errorf("Archs() = %v, missing %s", archs, want)
		}
	}
	sup := SupportedFlags()
	for _, f := range sup {
		if !slices.Contains(Flags(), f) {
			t.Errorf("supported flag %s is not a known flag", f)
		}
	}
	if !slices.Contains(sup, "SECCOMP_FILTER_FLAG_TSYNC") {
		t.Errorf("SupportedFlags() = %v, missing TSYNC", sup)
	}
	t.Logf("libseccomp %s, API level %d, archs %v, supported flags %v", v, APILevel(), archs, sup)
}
