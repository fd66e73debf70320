package seccomp

import (
	"errors"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func uintp(v uint) *uint { return &v }

func TestValidate(t *testing.T) {
	allowWrite := specs.LinuxSyscall{Names: []string{"write"}, Action: specs.ActAllow}
	tests := []struct {
		name    string
		cfg     *specs.LinuxSeccomp
		field   string // expected ConfigError.Field; "" means valid
		wantErr error
	}{
		{name: "nil config", cfg: nil},
		{name: "minimal", cfg: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}},
		{
			name: "everything valid",
			cfg: &specs.LinuxSeccomp{
				DefaultAction:    specs.ActErrno,
				DefaultErrnoRet:  uintp(38),
				Architectures:    []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32, specs.ArchSHEB},
				Flags:            []specs.LinuxSeccompFlag{FlagTsync, specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow, specs.LinuxSeccompFlagWaitKillableRecv},
				ListenerPath:     "/run/agent.sock",
				ListenerMetadata: "opaque",
				Syscalls: []specs.LinuxSyscall{
					{Names: []string{"read", "write"}, Action: specs.ActAllow},
					{Names: []string{"mkdir"}, Action: specs.ActErrno, ErrnoRet: uintp(18)},
					{Names: []string{"ptrace"}, Action: specs.ActTrace, ErrnoRet: uintp(0xffff)},
					{Names: []string{"mount"}, Action: specs.ActNotify},
					{Names: []string{"reboot"}, Action: specs.ActKill},
					{Names: []string{"kexec_load"}, Action: specs.ActKillProcess},
					{Names: []string{"swapon"}, Action: specs.ActKillThread},
					{Names: []string{"acct"}, Action: specs.ActTrap},
					{Names: []string{"getpid"}, Action: specs.ActLog},
					{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{
						{Index: 0, Value: 1, Op: specs.OpNotEqual},
						{Index: 1, Value: 1, Op: specs.OpLessThan},
						{Index: 2, Value: 1, Op: specs.OpLessEqual},
						{Index: 3, Value: 1, Op: specs.OpEqualTo},
						{Index: 4, Value: 1, Op: specs.OpGreaterEqual},
						{Index: 5, Value: 1, Op: specs.OpGreaterThan},
						{Index: 5, Value: 0xff, ValueTwo: 1, Op: specs.OpMaskedEqual},
					}},
				},
			},
		},
		{name: "missing default action", cfg: &specs.LinuxSeccomp{}, field: "defaultAction", wantErr: ErrUnknownAction},
		{name: "unknown default action", cfg: &specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_NOPE"}, field: "defaultAction", wantErr: ErrUnknownAction},
		{name: "lowercase action", cfg: &specs.LinuxSeccomp{DefaultAction: "scmp_act_allow"}, field: "defaultAction", wantErr: ErrUnknownAction},
		{
			name:  "defaultErrnoRet on ALLOW",
			cfg:   &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, DefaultErrnoRet: uintp(1)},
			field: "defaultErrnoRet", wantErr: ErrErrnoRet,
		},
		{
			name:  "defaultErrnoRet too big",
			cfg:   &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: uintp(0x10000)},
			field: "defaultErrnoRet", wantErr: ErrErrnoRet,
		},
		{name: "defaultErrnoRet on TRACE", cfg: &specs.LinuxSeccomp{DefaultAction: specs.ActTrace, DefaultErrnoRet: uintp(7)}},
		{
			name:  "unknown arch",
			cfg:   &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchX86, "SCMP_ARCH_VAX"}},
			field: "architectures[1]", wantErr: ErrUnknownArch,
		},
		{
			name:  "unknown flag",
			cfg:   &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_NEW_LISTENER"}},
			field: "flags[0]", wantErr: ErrUnknownFlag,
		},
		{
			name:  "metadata without listener",
			cfg:   &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerMetadata: "x"},
			field: "listenerMetadata", wantErr: ErrNotify,
		},
		{
			name:  "no names",
			cfg:   &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Action: specs.ActErrno}}},
			field: "syscalls[0].names", wantErr: ErrInvalid,
		},
		{
			name:  "empty name",
			cfg:   &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read", ""}, Action: specs.ActErrno}}},
			field: "syscalls[0].names[1]", wantErr: ErrInvalid,
		},
		{
			name: "unknown rule action",
			cfg: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
				{Names: []string{"read"}, Action: specs.ActErrno},
				{Names: []string{"read"}, Action: "SCMP_ACT_DENY"},
			}},
			field: "syscalls[1].action", wantErr: ErrUnknownAction,
		},
		{
			name:  "missing rule action",
			cfg:   &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}}}},
			field: "syscalls[0].action", wantErr: ErrUnknownAction,
		},
	}
	for _, a := range []specs.LinuxSeccompAction{specs.ActKill, specs.ActKillProcess, specs.ActKillThread, specs.ActTrap, specs.ActAllow, specs.ActLog, specs.ActNotify} {
		tests = append(tests, struct {
			name    string
			cfg     *specs.LinuxSeccomp
			field   string
			wantErr error
		}{
			name: "errnoRet on " + string(a),
			cfg: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "/s", Syscalls: []specs.LinuxSyscall{
				{Names: []string{"mount"}, Action: a, ErrnoRet: uintp(1)},
			}},
			field: "syscalls[0].errnoRet", wantErr: ErrErrnoRet,
		})
	}
	tests = append(tests, []struct {
		name    string
		cfg     *specs.LinuxSeccomp
		field   string
		wantErr error
	}{
		{
			name: "errnoRet too big",
			cfg: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
				{Names: []string{"mount"}, Action: specs.ActErrno, ErrnoRet: uintp(70000)},
			}},
			field: "syscalls[0].errnoRet", wantErr: ErrErrnoRet,
		},
		{
			name: "unknown operator",
			cfg: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
				{Names: []string{"mount"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{
					{Index: 0, Value: 1, Op: specs.OpEqualTo},
					{Index: 1, Value: 1, Op: "SCMP_CMP_LIKE"},
				}},
			}},
			field: "syscalls[0].args[1].op", wantErr: ErrUnknownOperator,
		},
		{
			name: "missing operator",
			cfg: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
				{Names: []string{"mount"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 1}}},
			}},
			field: "syscalls[0].args[0].op", wantErr: ErrUnknownOperator,
		},
		{
			name: "arg index out of range",
			cfg: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
				{Names: []string{"mount"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 6, Value: 1, Op: specs.OpEqualTo}}},
			}},
			field: "syscalls[0].args[0].index", wantErr: ErrInvalid,
		},
		{
			name: "notify without listenerPath",
			cfg: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
				{Names: []string{"mount"}, Action: specs.ActNotify},
			}},
			field: "listenerPath", wantErr: ErrNotify,
		},
		{
			name: "notify on write",
			cfg: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "/s", Syscalls: []specs.LinuxSyscall{
				{Names: []string{"mount"}, Action: specs.ActNotify},
				{Names: []string{"read", "write"}, Action: specs.ActNotify},
			}},
			field: "syscalls[1]", wantErr: ErrNotify,
		},
		{
			name: "notify on write with args",
			cfg: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "/s", Syscalls: []specs.LinuxSyscall{
				{Names: []string{"write"}, Action: specs.ActNotify, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 99, Op: specs.OpEqualTo}}},
			}},
			field: "syscalls[0]", wantErr: ErrNotify,
		},
		{
			name:  "notify default without write rule",
			cfg:   &specs.LinuxSeccomp{DefaultAction: specs.ActNotify, ListenerPath: "/s"},
			field: "defaultAction", wantErr: ErrNotify,
		},
		{
			name: "notify default with conditional write rule",
			cfg: &specs.LinuxSeccomp{DefaultAction: specs.ActNotify, ListenerPath: "/s", Syscalls: []specs.LinuxSyscall{
				{Names: []string{"write"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 1, Op: specs.OpEqualTo}}},
			}},
			field: "defaultAction", wantErr: ErrNotify,
		},
		{
			name:  "notify default without listenerPath",
			cfg:   &specs.LinuxSeccomp{DefaultAction: specs.ActNotify, Syscalls: []specs.LinuxSyscall{allowWrite}},
			field: "listenerPath", wantErr: ErrNotify,
		},
		{
			name: "notify default with write allowed",
			cfg:  &specs.LinuxSeccomp{DefaultAction: specs.ActNotify, ListenerPath: "/s", Syscalls: []specs.LinuxSyscall{allowWrite}},
		},
		{
			name: "listenerPath without notify is ignored",
			cfg:  &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "/s", ListenerMetadata: "m"},
		},
	}...)

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.cfg)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want error on %s", tt.field)
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("Validate() = %T %v, want *ConfigError", err, err)
			}
			if ce.Field != tt.field {
				t.Errorf("field = %q, want %q (err: %v)", ce.Field, tt.field, err)
			}
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Validate() = %v, want errors.Is %v", err, tt.wantErr)
			}
			if !strings.HasPrefix(err.Error(), "seccomp: "+tt.field+": ") {
				t.Errorf("message %q does not start with the field", err)
			}
		})
	}
}

func TestKnownNames(t *testing.T) {
	if got := len(Actions()); got != 9 {
		t.Errorf("Actions() has %d entries, want 9: %v", got, Actions())
	}
	if got := len(Operators()); got != 7 {
		t.Errorf("Operators() has %d entries, want 7: %v", got, Operators())
	}
	if got := Flags(); len(got) != 4 || got[0] != "SECCOMP_FILTER_FLAG_TSYNC" {
		t.Errorf("Flags() = %v", got)
	}
	for _, a := range Actions() {
		if err := Validate(&specs.LinuxSeccomp{DefaultAction: specs.LinuxSeccompAction(a), ListenerPath: "/s",
			Syscalls: []specs.LinuxSyscall{{Names: []string{"write"}, Action: specs.ActAllow}}}); err != nil {
			t.Errorf("action %s: %v", a, err)
		}
	}
}
