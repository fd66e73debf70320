package container

import (
	"fmt"
	"os"
	"strings"
	"syscall"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

var rlimitNames = map[string]int{
	"RLIMIT_AS":         unix.RLIMIT_AS,
	"RLIMIT_CORE":       unix.RLIMIT_CORE,
	"RLIMIT_CPU":        unix.RLIMIT_CPU,
	"RLIMIT_DATA":       unix.RLIMIT_DATA,
	"RLIMIT_FSIZE":      unix.RLIMIT_FSIZE,
	"RLIMIT_LOCKS":      unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK":    unix.RLIMIT_MEMLOCK,
	"RLIMIT_MSGQUEUE":   unix.RLIMIT_MSGQUEUE,
	"RLIMIT_NICE":       unix.RLIMIT_NICE,
	"RLIMIT_NOFILE":     unix.RLIMIT_NOFILE,
	"RLIMIT_NPROC":      unix.RLIMIT_NPROC,
	"RLIMIT_RSS":        unix.RLIMIT_RSS,
	"RLIMIT_RTPRIO":     unix.RLIMIT_RTPRIO,
	"RLIMIT_RTTIME":     unix.RLIMIT_RTTIME,
	"RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_STACK":      unix.RLIMIT_STACK,
}

// validateRlimits checks the names and that soft <= hard.
func validateRlimits(rl []specs.POSIXRlimit) error {
	seen := map[string]bool{}
	for _, r := range rl {
		if _, ok := rlimitNames[r.Type]; !ok {
			return fmt.Errorf("%w: unknown rlimit %q", ErrInvalidInput, r.Type)
		}
		if seen[r.Type] {
			return fmt.Errorf("%w: rlimit %s given twice", ErrInvalidInput, r.Type)
		}
		seen[r.Type] = true
		if r.Soft > r.Hard {
			return fmt.Errorf("%w: rlimit %s: soft %d is above hard %d", ErrInvalidInput, r.Type, r.Soft, r.Hard)
		}
	}
	return nil
}

func applyRlimits(rl []specs.POSIXRlimit) error {
	for _, r := range rl {
		res, ok := rlimitNames[r.Type]
		if !ok {
			return fmt.Errorf("unknown rlimit %q", r.Type)
		}
		// syscall.Setrlimit (not x/sys) so that the Go runtime's saved
		// RLIMIT_NOFILE, restored at exec, is updated too.
		if err := syscall.Setrlimit(res, &syscall.Rlimit{Cur: r.Soft, Max: r.Hard}); err != nil {
			return fmt.Errorf("set rlimit %s to soft %d, hard %d: %w", r.Type, r.Soft, r.Hard, err)
		}
	}
	return nil
}

// capList maps capability names to values known to this kernel.
func capList(names []string) ([]capability.Cap, error) {
	last, err := capability.LastCap()
	if err != nil {
		return nil, fmt.Errorf("read last capability: %w", err)
	}
	known := map[string]capability.Cap{}
	for _, c := range capability.ListKnown() {
		if c <= last {
			known["CAP_"+strings.ToUpper(c.String())] = c
		}
	}
	var out []capability.Cap
	for _, n := range names {
		c, ok := known[strings.ToUpper(n)]
		if !ok {
			// runc ignores capabilities this kernel does not know.
			continue
		}
		out = append(out, c)
	}
	return out, nil
}

// validateCaps rejects names that are not capabilities at all.
func validateCaps(c *specs.LinuxCapabilities) error {
	if c == nil {
		return nil
	}
	all := map[string]bool{}
	for _, k := range capability.ListKnown() {
		all["CAP_"+strings.ToUpper(k.String())] = true
	}
	for _, set := range [][]string{c.Bounding, c.Effective, c.Inheritable, c.Permitted, c.Ambient} {
		for _, n := range set {
			if !all[strings.ToUpper(n)] {
				return fmt.Errorf("%w: unknown capability %q", ErrInvalidInput, n)
			}
		}
	}
	return nil
}

// applyUserAndCaps drops the bounding set, switches to the configured user
// keeping capabilities across the switch, then sets the remaining sets.
func applyUserAndCaps(proc *specs.Process) error {
	caps, err := capability.NewPid2(0)
	if err != nil {
		return fmt.Errorf("capabilities: %w", err)
	}
	if err := caps.Load(); err != nil {
		return fmt.Errorf("capabilities: %w", err)
	}
	c := proc.Capabilities
	if c == nil {
		c = &specs.LinuxCapabilities{}
	}
	sets := []struct {
		which capability.CapType
		names []string
	}{
		{capability.BOUNDING, c.Bounding},
		{capability.EFFECTIVE, c.Effective},
		{capability.PERMITTED, c.Permitted},
		{capability.INHERITABLE, c.Inheritable},
		{capability.AMBIENT, c.Ambient},
	}
	for _, s := range sets {
		list, err := capList(s.names)
		if err != nil {
			return err
		}
		caps.Clear(s.which)
		caps.Set(s.which, list...)
	}
	if err := caps.Apply(capability.BOUNDING); err != nil {
		return fmt.Errorf("apply bounding capabilities: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("keep capabilities: %w", err)
	}
	if err := setUser(&proc.User); err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("clear keep capabilities: %w", err)
	}
	if err := caps.Apply(capability.CAPS); err != nil {
		return fmt.Errorf("apply capabilities: %w", err)
	}
	// An ambient capability can only be raised if it is also permitted and
	// inheritable; like runc, skip those that cannot be raised.
	ambient, err := capList(c.Ambient)
	if err != nil {
		return err
	}
	_ = capability.ResetAmbient()
	for _, a := range ambient {
		_ = capability.SetAmbient(true, a)
	}
	return nil
}

func setUser(u *specs.User) error {
	groups := make([]int, 0, len(u.AdditionalGids))
	for _, g := range u.AdditionalGids {
		groups = append(groups, int(g))
	}
	// setgroups is refused in a user namespace with setgroups=deny; only an
	// explicit request for supplementary groups is then an error.
	if err := unix.Setgroups(groups); err != nil {
		if len(groups) > 0 || !setgroupsDenied() {
			return fmt.Errorf("setgroups %v: %w", groups, err)
		}
	}
	if err := unix.Setresgid(int(u.GID), int(u.GID), int(u.GID)); err != nil {
		return fmt.Errorf("setgid %d: %w", u.GID, err)
	}
	if err := unix.Setresuid(int(u.UID), int(u.UID), int(u.UID)); err != nil {
		return fmt.Errorf("setuid %d: %w", u.UID, err)
	}
	return nil
}

func setgroupsDenied() bool {
	data, err := os.ReadFile("/proc/self/setgroups")
	return err == nil && strings.TrimSpace(string(data)) == "deny"
}
