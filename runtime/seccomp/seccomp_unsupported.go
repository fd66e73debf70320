//go:build !linux || !cgo

package seccomp

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Enabled reports whether seccomp support is compiled in; it is not in
// builds without cgo or for other systems than Linux.
func Enabled() bool { return false }

// LibseccompVersion returns "" as libseccomp is not linked in.
func LibseccompVersion() string { return "" }

// APILevel returns 0 as libseccomp is not linked in.
func APILevel() uint { return 0 }

// Archs returns nil ("unknown") as libseccomp is not linked in.
func Archs() []string { return nil }

// SupportedFlags returns nil ("unknown") as libseccomp is not linked in.
func SupportedFlags() []string { return nil }

// Load validates cfg and fails with [ErrUnsupported]: seccomp support is not
// compiled in.
func Load(cfg *specs.LinuxSeccomp) (notifyFd int, err error) {
	if err := Validate(cfg); err != nil {
		return -1, err
	}
	return -1, fmt.Errorf("seccomp: loading filter: %w: built without cgo/libseccomp", ErrUnsupported)
}
