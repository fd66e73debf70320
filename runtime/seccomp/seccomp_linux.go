//go:build linux && cgo

package seccomp

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// Enabled reports whether seccomp support is compiled in (cgo with
// libseccomp on Linux).
func Enabled() bool { return true }

// LibseccompVersion returns the version of the libseccomp library in use,
// e.g. "2.5.4".
func LibseccompVersion() string {
	major, minor, micro := libseccomp.GetLibraryVersion()
	return fmt.Sprintf("%d.%d.%d", major, minor, micro)
}

// APILevel returns libseccomp's API level, which reflects what both the
// library and the running kernel support (see seccomp_api_get(3)); 0 if it
// cannot be determined.
func APILevel() uint {
	level, err := libseccomp.GetAPI()
	if err != nil {
		return 0
	}
	return level
}

var archMap = map[specs.Arch]libseccomp.ScmpArch{
	specs.ArchX86:         libseccomp.ArchX86,
	specs.ArchX86_64:      libseccomp.ArchAMD64,
	specs.ArchX32:         libseccomp.ArchX32,
	specs.ArchARM:         libseccomp.ArchARM,
	specs.ArchAARCH64:     libseccomp.ArchARM64,
	specs.ArchMIPS:        libseccomp.ArchMIPS,
	specs.ArchMIPS64:      libseccomp.ArchMIPS64,
	specs.ArchMIPS64N32:   libseccomp.ArchMIPS64N32,
	specs.ArchMIPSEL:      libseccomp.ArchMIPSEL,
	specs.ArchMIPSEL64:    libseccomp.ArchMIPSEL64,
	specs.ArchMIPSEL64N32: libseccomp.ArchMIPSEL64N32,
	specs.ArchPPC:         libseccomp.ArchPPC,
	specs.ArchPPC64:       libseccomp.ArchPPC64,
	specs.ArchPPC64LE:     libseccomp.ArchPPC64LE,
	specs.ArchS390:        libseccomp.ArchS390,
	specs.ArchS390X:       libseccomp.ArchS390X,
	specs.ArchPARISC:      libseccomp.ArchPARISC,
	specs.ArchPARISC64:    libseccomp.ArchPARISC64,
	specs.ArchRISCV64:     libseccomp.ArchRISCV64,
	specs.ArchLOONGARCH64: libseccomp.ArchLOONGARCH64,
	specs.ArchM68K:        libseccomp.ArchM68K,
	specs.ArchSH:          libseccomp.ArchSH,
	specs.ArchSHEB:        libseccomp.ArchSHEB,
}

// archSupported reports whether the linked libseccomp knows arch: an arch
// it was built without resolves no syscall at all, while every arch has
// close(2).
func archSupported(a libseccomp.ScmpArch) bool {
	_, err := libseccomp.GetSyscallFromNameByArch("close", a)
	return err == nil
}

// Archs returns the SCMP_ARCH_* architectures of the runtime specification
// that the linked libseccomp supports.
func Archs() []string {
	var out []string
	for _, a := range knownArchs {
		if archSupported(archMap[a]) {
			out = append(out, string(a))
		}
	}
	return out
}

// Minimum libseccomp API levels (seccomp_api_get(3)); the level also
// accounts for kernel support.
const (
	apiTsync     = 2
	apiLog       = 3 // SECCOMP_FILTER_FLAG_LOG, SCMP_ACT_LOG, SCMP_ACT_KILL_PROCESS
	apiSpecAllow = 4
	apiNotify    = 6 // SCMP_ACT_NOTIFY together with TSYNC
	apiWaitKill  = 7
)

var flagAPI = map[specs.LinuxSeccompFlag]uint{
	FlagTsync:                              apiTsync,
	specs.LinuxSeccompFlagLog:              apiLog,
	specs.LinuxSeccompFlagSpecAllow:        apiSpecAllow,
	specs.LinuxSeccompFlagWaitKillableRecv: apiWaitKill,
}

// SupportedFlags returns the subset of [Flags] that the running kernel and
// the linked libseccomp both support ("supportedFlags" in the features
// document).
func SupportedFlags() []string {
	level := APILevel()
	var out []string
	for _, f := range knownFlags {
		if level >= flagAPI[f] {
			out = append(out, string(f))
		}
	}
	return out
}

// scmpAction converts a validated action and its optional errnoRet.
// ERRNO and TRACE default to EPERM, as the specification requires.
func scmpAction(a specs.LinuxSeccompAction, errnoRet *uint) libseccomp.ScmpAction {
	ret := int16(unix.EPERM)
	if errnoRet != nil {
		ret = int16(uint16(*errnoRet)) // validated to fit in 16 bits
	}
	switch a {
	case specs.ActKill, specs.ActKillThread:
		return libseccomp.ActKillThread
	case specs.ActKillProcess:
		return libseccomp.ActKillProcess
	case specs.ActTrap:
		return libseccomp.ActTrap
	case specs.ActErrno:
		return libseccomp.ActErrno.SetReturnCode(ret)
	case specs.ActTrace:
		return libseccomp.ActTrace.SetReturnCode(ret)
	case specs.ActAllow:
		return libseccomp.ActAllow
	case specs.ActLog:
		return libseccomp.ActLog
	case specs.ActNotify:
		return libseccomp.ActNotify
	}
	return libseccomp.ActInvalid // unreachable after Validate
}

var opMap = map[specs.LinuxSeccompOperator]libseccomp.ScmpCompareOp{
	specs.OpNotEqual:     libseccomp.CompareNotEqual,
	specs.OpLessThan:     libseccomp.CompareLess,
	specs.OpLessEqual:    libseccomp.CompareLessOrEqual,
	specs.OpEqualTo:      libseccomp.CompareEqual,
	specs.OpGreaterEqual: libseccomp.CompareGreaterEqual,
	specs.OpGreaterThan:  libseccomp.CompareGreater,
	specs.OpMaskedEqual:  libseccomp.CompareMaskedEqual,
}

// Build validates cfg and compiles it into a libseccomp filter without
// loading it. The caller owns the filter and must Release it. A nil cfg is
// an error.
//
// The filter always contains the native architecture plus every listed one.
// Syscall names unknown to libseccomp are skipped, as runc does, so that
// one profile serves several kernels and architectures. Rules whose action
// equals the default action are redundant and skipped too. Conditions on
// distinct arguments are ANDed in one rule; if a rule has several
// conditions on the same argument (which libseccomp cannot express in one
// rule), each condition becomes a rule of its own, so they are ORed - the
// behaviour runc has. For SCMP_CMP_MASKED_EQ the condition is
// (arg & value) == valueTwo; the other operators compare with value and
// ignore valueTwo.
//
// The no_new_privs bit is left to the caller (libseccomp would otherwise
// set it on load), and thread synchronisation (TSYNC) is always requested,
// so SECCOMP_FILTER_FLAG_TSYNC needs no action.
func Build(cfg *specs.LinuxSeccomp) (*libseccomp.ScmpFilter, error) {
	if cfg == nil {
		return nil, &ConfigError{Field: "seccomp", Err: fmt.Errorf("%w: nil configuration", ErrInvalid)}
	}
	if err := Validate(cfg); err != nil {
		return nil, err
	}
	if usesNotify(cfg) {
		if level := APILevel(); level < apiNotify {
			return nil, fieldErr("listenerPath", ErrUnsupported,
				"%s needs libseccomp API level %d, have %d (libseccomp %s)", specs.ActNotify, apiNotify, level, LibseccompVersion())
		}
	}

	defAct := scmpAction(cfg.DefaultAction, cfg.DefaultErrnoRet)
	filter, err := libseccomp.NewFilter(defAct)
	if err != nil {
		return nil, &ConfigError{Field: "defaultAction", Err: fmt.Errorf("creating filter with %s: %w", cfg.DefaultAction, err)}
	}
	if err := buildInto(filter, cfg, defAct); err != nil {
		filter.Release()
		return nil, err
	}
	return filter, nil
}

func buildInto(filter *libseccomp.ScmpFilter, cfg *specs.LinuxSeccomp, defAct libseccomp.ScmpAction) error {
	if err := filter.SetNoNewPrivsBit(false); err != nil {
		return fmt.Errorf("seccomp: clearing the no_new_privs attribute: %w", err)
	}

	for i, a := range cfg.Architectures {
		field := fmt.Sprintf("architectures[%d]", i)
		arch := archMap[a]
		if !archSupported(arch) {
			return fieldErr(field, ErrUnsupported, "%s is not supported by libseccomp %s", a, LibseccompVersion())
		}
		if err := filter.AddArch(arch); err != nil {
			return &ConfigError{Field: field, Err: fmt.Errorf("adding %s: %w", a, err)}
		}
	}

	for i, f := range cfg.Flags {
		if err := setFlag(filter, f); err != nil {
			return &ConfigError{Field: fmt.Sprintf("flags[%d]", i), Err: err}
		}
	}

	for i, sc := range cfg.Syscalls {
		if err := addRules(filter, &sc, defAct); err != nil {
			return &ConfigError{Field: fmt.Sprintf("syscalls[%d]", i), Err: err}
		}
	}
	return addClone3Enosys(filter, cfg, defAct)
}

// addClone3Enosys makes clone3 fail with ENOSYS when the profile denies
// everything it does not name and does not name clone3 (profiles older than
// clone3 do not). glibc, and so the Go runtime, create threads with clone3
// and fall back to clone only on ENOSYS: the EPERM of a deny-by-default
// profile makes thread creation fail outright (runc and Docker's profile
// return ENOSYS for the same reason).
func addClone3Enosys(filter *libseccomp.ScmpFilter, cfg *specs.LinuxSeccomp, defAct libseccomp.ScmpAction) error {
	switch cfg.DefaultAction {
	case specs.ActAllow, specs.ActLog:
		return nil
	}
	for _, sc := range cfg.Syscalls {
		for _, n := range sc.Names {
			if n == "clone3" {
				return nil
			}
		}
	}
	nr, err := libseccomp.GetSyscallFromName("clone3")
	if err != nil {
		return nil // unknown to this libseccomp: nothing to do
	}
	act := libseccomp.ActErrno.SetReturnCode(int16(unix.ENOSYS))
	if act == defAct {
		return nil
	}
	if err := filter.AddRule(nr, act); err != nil {
		return fmt.Errorf("seccomp: clone3 rule: %w", err)
	}
	return nil
}

func setFlag(filter *libseccomp.ScmpFilter, f specs.LinuxSeccompFlag) error {
	var err error
	switch f {
	case FlagTsync:
		// libseccomp-golang enables TSYNC on every filter it creates: the
		// filter always applies to all threads of the Go process.
		return nil
	case specs.LinuxSeccompFlagLog:
		err = filter.SetLogBit(true)
	case specs.LinuxSeccompFlagSpecAllow:
		err = filter.SetSSB(true)
	case specs.LinuxSeccompFlagWaitKillableRecv:
		err = filter.SetWaitKill(true)
	default:
		return fmt.Errorf("%w: %q", ErrUnknownFlag, f) // unreachable after Validate
	}
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrUnsupported, f, err)
	}
	return nil
}

// addRules adds the rules of one syscalls[] entry.
func addRules(filter *libseccomp.ScmpFilter, sc *specs.LinuxSyscall, defAct libseccomp.ScmpAction) error {
	act := scmpAction(sc.Action, sc.ErrnoRet)
	if act == defAct {
		// libseccomp refuses rules that repeat the default action.
		return nil
	}

	conds := make([]libseccomp.ScmpCondition, 0, len(sc.Args))
	var perIndex [maxArgs]int
	split := false
	for j, arg := range sc.Args {
		values := []uint64{arg.Value}
		if arg.Op == specs.OpMaskedEqual {
			// (arg & value) == valueTwo
			values = append(values, arg.ValueTwo)
		}
		c, err := libseccomp.MakeCondition(arg.Index, opMap[arg.Op], values...)
		if err != nil {
			return fmt.Errorf("args[%d]: %w", j, err)
		}
		conds = append(conds, c)
		perIndex[arg.Index]++
		split = split || perIndex[arg.Index] > 1
	}

	for _, name := range sc.Names {
		nr, err := libseccomp.GetSyscallFromName(name)
		if err != nil {
			continue // unknown to libseccomp on every arch: skip, as runc does
		}
		switch {
		case len(conds) == 0:
			err = filter.AddRule(nr, act)
		case split:
			for _, c := range conds {
				if err = filter.AddRuleConditional(nr, act, []libseccomp.ScmpCondition{c}); err != nil {
					break
				}
			}
		default:
			err = filter.AddRuleConditional(nr, act, conds)
		}
		if err != nil {
			return fmt.Errorf("adding %s rule for %s: %w", sc.Action, name, err)
		}
	}
	return nil
}

// Load builds the filter for cfg (see [Build]) and loads it into the kernel
// for the calling process; all of its threads are synchronised to it.
// Loading is irreversible. The caller must have set no_new_privs or hold
// CAP_SYS_ADMIN, and should lock the OS thread.
//
// When cfg uses SCMP_ACT_NOTIFY, Load returns the seccomp user-notification
// fd, which the caller owns and passes on with [SendListenerFd]; otherwise
// (including when every NOTIFY rule named only unknown syscalls) it
// returns -1. libseccomp keeps a single listener per process: a later
// NOTIFY filter loaded by the same process reports the first one's fd.
func Load(cfg *specs.LinuxSeccomp) (notifyFd int, err error) {
	filter, err := Build(cfg)
	if err != nil {
		return -1, err
	}
	defer filter.Release()

	if err := filter.Load(); err != nil {
		return -1, fmt.Errorf("seccomp: loading filter: %w", err)
	}
	if !usesNotify(cfg) {
		return -1, nil
	}
	fd, err := filter.GetNotifFd()
	if err != nil {
		return -1, fmt.Errorf("seccomp: getting notify fd: %w", err)
	}
	if fd < 0 {
		return -1, nil
	}
	return int(fd), nil
}
