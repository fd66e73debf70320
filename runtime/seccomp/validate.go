// Package seccomp implements the "linux.seccomp" section of the OCI runtime
// specification (runtime-spec v1.3, specs.LinuxSeccomp) on top of libseccomp.
//
// The package validates a configuration ([Validate]), compiles it into a
// libseccomp filter ([Build]) and loads it into the calling process ([Load]).
// When the configuration uses SCMP_ACT_NOTIFY, [Load] returns the seccomp
// user-notification fd, which the runtime hands to the seccomp agent
// listening on listenerPath with [SendListenerFd].
//
// The feature helpers ([Enabled], [Actions], [Operators], [Archs], [Flags],
// [SupportedFlags], [LibseccompVersion]) feed the runtime's "features"
// command.
//
// Building and loading need cgo and Linux; without them [Enabled] reports
// false and [Load] fails with [ErrUnsupported]. [Validate] is pure Go and is
// always available.
package seccomp

import (
	"errors"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Sentinel errors wrapped (via [ConfigError]) by [Validate], [Build] and [Load],
// for use with errors.Is.
var (
	// ErrUnknownAction reports an action that is not an SCMP_ACT_* name of
	// the runtime specification.
	ErrUnknownAction = errors.New("unknown action")
	// ErrUnknownArch reports an architecture that is not an SCMP_ARCH_* name
	// of the runtime specification.
	ErrUnknownArch = errors.New("unknown architecture")
	// ErrUnknownOperator reports an argument operator that is not an
	// SCMP_CMP_* name of the runtime specification.
	ErrUnknownOperator = errors.New("unknown operator")
	// ErrUnknownFlag reports a filter flag that is not a
	// SECCOMP_FILTER_FLAG_* name of the runtime specification.
	ErrUnknownFlag = errors.New("unknown flag")
	// ErrErrnoRet reports an errnoRet (or defaultErrnoRet) that is set on an
	// action that does not take one, or that does not fit in 16 bits.
	ErrErrnoRet = errors.New("invalid errnoRet")
	// ErrNotify reports a misuse of SCMP_ACT_NOTIFY or of the listener
	// fields.
	ErrNotify = errors.New("invalid use of SCMP_ACT_NOTIFY")
	// ErrInvalid reports any other malformed field.
	ErrInvalid = errors.New("invalid value")
	// ErrUnsupported reports a valid configuration that the linked
	// libseccomp or the running kernel cannot implement, or a build without
	// seccomp support.
	ErrUnsupported = errors.New("not supported")
)

// ConfigError is the error returned for a problem with one field of a
// specs.LinuxSeccomp. Field uses JSON names and indices, e.g.
// "syscalls[3].args[0].op".
type ConfigError struct {
	Field string
	Err   error
}

// Error implements error.
func (e *ConfigError) Error() string {
	return "seccomp: " + e.Field + ": " + e.Err.Error()
}

// Unwrap returns the underlying error, usually wrapping one of the sentinel
// errors of this package.
func (e *ConfigError) Unwrap() error { return e.Err }

func fieldErr(field string, sentinel error, format string, args ...any) error {
	return &ConfigError{Field: field, Err: fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)}
}

// The names below are the ones listed by runtime-spec v1.3 (config-linux.md).
var knownActions = []specs.LinuxSeccompAction{
	specs.ActKill,
	specs.ActKillProcess,
	specs.ActKillThread,
	specs.ActTrap,
	specs.ActErrno,
	specs.ActTrace,
	specs.ActAllow,
	specs.ActLog,
	specs.ActNotify,
}

var knownOperators = []specs.LinuxSeccompOperator{
	specs.OpNotEqual,
	specs.OpLessThan,
	specs.OpLessEqual,
	specs.OpEqualTo,
	specs.OpGreaterEqual,
	specs.OpGreaterThan,
	specs.OpMaskedEqual,
}

var knownArchs = []specs.Arch{
	specs.ArchX86,
	specs.ArchX86_64,
	specs.ArchX32,
	specs.ArchARM,
	specs.ArchAARCH64,
	specs.ArchMIPS,
	specs.ArchMIPS64,
	specs.ArchMIPS64N32,
	specs.ArchMIPSEL,
	specs.ArchMIPSEL64,
	specs.ArchMIPSEL64N32,
	specs.ArchPPC,
	specs.ArchPPC64,
	specs.ArchPPC64LE,
	specs.ArchS390,
	specs.ArchS390X,
	specs.ArchPARISC,
	specs.ArchPARISC64,
	specs.ArchRISCV64,
	specs.ArchLOONGARCH64,
	specs.ArchM68K,
	specs.ArchSH,
	specs.ArchSHEB,
}

// FlagTsync is SECCOMP_FILTER_FLAG_TSYNC, which specs-go has no constant for.
const FlagTsync specs.LinuxSeccompFlag = "SECCOMP_FILTER_FLAG_TSYNC"

var knownFlags = []specs.LinuxSeccompFlag{
	FlagTsync,
	specs.LinuxSeccompFlagLog,
	specs.LinuxSeccompFlagSpecAllow,
	specs.LinuxSeccompFlagWaitKillableRecv,
}

// maxArgs is the number of syscall arguments seccomp can inspect.
const maxArgs = 6

// maxRet is the largest errnoRet: SECCOMP_RET_DATA is 16 bits wide.
const maxRet = 0xffff

func contains[T comparable](list []T, v T) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func strs[T ~string](list []T) []string {
	out := make([]string, len(list))
	for i, v := range list {
		out[i] = string(v)
	}
	return out
}

// Actions returns the SCMP_ACT_* actions this package recognizes.
func Actions() []string { return strs(knownActions) }

// Operators returns the SCMP_CMP_* argument operators this package
// recognizes.
func Operators() []string { return strs(knownOperators) }

// Flags returns the SECCOMP_FILTER_FLAG_* flags this package recognizes
// ("knownFlags" in the features document). See [SupportedFlags] for those
// the running kernel and libseccomp can actually apply.
func Flags() []string { return strs(knownFlags) }

// takesErrno reports whether an action carries a 16-bit return value
// (errnoRet): the errno for SCMP_ACT_ERRNO, the tracer message for
// SCMP_ACT_TRACE.
func takesErrno(a specs.LinuxSeccompAction) bool {
	return a == specs.ActErrno || a == specs.ActTrace
}

func checkAction(field string, a specs.LinuxSeccompAction, errnoRet *uint, retField string) error {
	if a == "" {
		return fieldErr(field, ErrUnknownAction, "missing")
	}
	if !contains(knownActions, a) {
		return fieldErr(field, ErrUnknownAction, "%q", a)
	}
	if errnoRet == nil {
		return nil
	}
	if !takesErrno(a) {
		return fieldErr(retField, ErrErrnoRet, "%s does not take an errno (only %s and %s do)", a, specs.ActErrno, specs.ActTrace)
	}
	if *errnoRet > maxRet {
		return fieldErr(retField, ErrErrnoRet, "%d does not fit in 16 bits", *errnoRet)
	}
	return nil
}

// Validate checks cfg against the runtime specification without touching
// libseccomp or the kernel. It reports the first problem found as a
// *[ConfigError] naming the offending field. A nil cfg (no seccomp) is
// valid.
//
// Besides the syntax (known actions, architectures, operators and flags,
// argument indices below 6, at least one syscall name per rule, errnoRet
// only on SCMP_ACT_ERRNO and SCMP_ACT_TRACE), Validate enforces:
//   - listenerMetadata is only set together with listenerPath;
//   - SCMP_ACT_NOTIFY (as a rule or the default action) requires listenerPath;
//   - SCMP_ACT_NOTIFY is never applied to write(2): like runc, the runtime
//     refuses it because the runtime itself writes between loading the
//     filter and handing the notify fd to the agent, and would deadlock. For
//     a default action of SCMP_ACT_NOTIFY this means write must have an
//     unconditional rule with another action.
//
// Libseccomp-dependent checks (an architecture the linked libseccomp does
// not know, a flag it cannot set) are left to [Build].
func Validate(cfg *specs.LinuxSeccomp) error {
	if cfg == nil {
		return nil
	}
	if err := checkAction("defaultAction", cfg.DefaultAction, cfg.DefaultErrnoRet, "defaultErrnoRet"); err != nil {
		return err
	}
	for i, a := range cfg.Architectures {
		if !contains(knownArchs, a) {
			return fieldErr(fmt.Sprintf("architectures[%d]", i), ErrUnknownArch, "%q", a)
		}
	}
	for i, f := range cfg.Flags {
		if !contains(knownFlags, f) {
			return fieldErr(fmt.Sprintf("flags[%d]", i), ErrUnknownFlag, "%q", f)
		}
	}
	if cfg.ListenerMetadata != "" && cfg.ListenerPath == "" {
		return fieldErr("listenerMetadata", ErrNotify, "must not be set without listenerPath")
	}

	notify := cfg.DefaultAction == specs.ActNotify
	writeCovered := false // write(2) has an unconditional non-NOTIFY rule
	for i, sc := range cfg.Syscalls {
		field := fmt.Sprintf("syscalls[%d]", i)
		if len(sc.Names) == 0 {
			return fieldErr(field+".names", ErrInvalid, "must contain at least one syscall name")
		}
		for j, name := range sc.Names {
			if name == "" {
				return fieldErr(fmt.Sprintf("%s.names[%d]", field, j), ErrInvalid, "empty syscall name")
			}
		}
		if err := checkAction(field+".action", sc.Action, sc.ErrnoRet, field+".errnoRet"); err != nil {
			return err
		}
		for j, arg := range sc.Args {
			af := fmt.Sprintf("%s.args[%d]", field, j)
			if arg.Index >= maxArgs {
				return fieldErr(af+".index", ErrInvalid, "%d out of range (syscalls have %d arguments)", arg.Index, maxArgs)
			}
			if arg.Op == "" {
				return fieldErr(af+".op", ErrUnknownOperator, "missing")
			}
			if !contains(knownOperators, arg.Op) {
				return fieldErr(af+".op", ErrUnknownOperator, "%q", arg.Op)
			}
		}
		hasWrite := contains(sc.Names, "write")
		if sc.Action == specs.ActNotify {
			notify = true
			if hasWrite {
				return fieldErr(field, ErrNotify, "%s cannot be used for write(2): it would deadlock the runtime", specs.ActNotify)
			}
		} else if hasWrite && len(sc.Args) == 0 {
			writeCovered = true
		}
	}
	if cfg.DefaultAction == specs.ActNotify && !writeCovered {
		return fieldErr("defaultAction", ErrNotify,
			"%s as default action would apply to write(2) and deadlock the runtime; add an unconditional rule for write with another action", specs.ActNotify)
	}
	if notify && cfg.ListenerPath == "" {
		return fieldErr("listenerPath", ErrNotify, "required when %s is used", specs.ActNotify)
	}
	return nil
}

// usesNotify reports whether loading cfg creates a notification listener.
func usesNotify(cfg *specs.LinuxSeccomp) bool {
	if cfg.DefaultAction == specs.ActNotify {
		return true
	}
	for _, sc := range cfg.Syscalls {
		if sc.Action == specs.ActNotify {
			return true
		}
	}
	return false
}
