//go:build linux && cgo

package seccomp

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Program is a filter compiled to classic BPF by libseccomp, ready to be
// loaded with the seccomp(2) system call alone. The runtime compiles it
// while the container's init sets up, so the init never runs libseccomp.
type Program struct {
	// BPF is the filter: an array of struct sock_filter.
	BPF []byte `json:"bpf"`
	// Flags are the SECCOMP_FILTER_FLAG_* values the configuration asks
	// for (LOG, SPEC_ALLOW); TSYNC and NEW_LISTENER are added by Load.
	Flags uint `json:"flags,omitempty"`
	// Notify says that the filter uses SCMP_ACT_NOTIFY: Load then returns
	// a listener fd.
	Notify bool `json:"notify,omitempty"`
}

// Kernel flag values (linux/seccomp.h).
const (
	filterFlagTsync       = 1 << 0
	filterFlagLog         = 1 << 1
	filterFlagSpecAllow   = 1 << 2
	filterFlagNewListener = 1 << 3
	filterFlagTsyncESRCH  = 1 << 4
)

// Compile builds the filter for cfg (see [Build]) and exports it as BPF.
func Compile(cfg *specs.LinuxSeccomp) (*Program, error) {
	filter, err := Build(cfg)
	if err != nil {
		return nil, err
	}
	defer filter.Release()
	fd, err := unix.MemfdCreate("seccomp-bpf", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("seccomp: export filter: %w", err)
	}
	f := os.NewFile(uintptr(fd), "seccomp-bpf")
	defer f.Close()
	if err := filter.ExportBPF(f); err != nil {
		return nil, fmt.Errorf("seccomp: export filter: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("seccomp: export filter: %w", err)
	}
	bpf, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("seccomp: export filter: %w", err)
	}
	if len(bpf) == 0 || len(bpf)%int(unsafe.Sizeof(unix.SockFilter{})) != 0 {
		return nil, fmt.Errorf("seccomp: exported filter has a bad size %d", len(bpf))
	}
	p := &Program{BPF: bpf, Notify: usesNotify(cfg)}
	for _, fl := range cfg.Flags {
		switch fl {
		case specs.LinuxSeccompFlagLog:
			p.Flags |= filterFlagLog
		case specs.LinuxSeccompFlagSpecAllow:
			p.Flags |= filterFlagSpecAllow
		}
	}
	return p, nil
}

// Load installs the program for every thread of the calling process (the
// caller must have set no_new_privs or hold CAP_SYS_ADMIN). It returns the
// notification listener fd when the filter uses NOTIFY, else -1.
func (p *Program) Load() (int, error) {
	n := len(p.BPF) / int(unsafe.Sizeof(unix.SockFilter{}))
	if n == 0 || n > 0xffff {
		return -1, errors.New("seccomp: empty or oversized program")
	}
	// The kernel reads the instructions from this copy; keep it alive.
	insns := make([]unix.SockFilter, n)
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&insns[0])), len(p.BPF)), p.BPF)
	prog := unix.SockFprog{Len: uint16(n), Filter: &insns[0]}
	flags := uintptr(p.Flags | filterFlagTsync)
	if p.Notify {
		flags |= filterFlagNewListener | filterFlagTsyncESRCH
	}
	r, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, flags, uintptr(unsafe.Pointer(&prog)))
	runtime.KeepAlive(insns)
	if errno != 0 {
		return -1, fmt.Errorf("seccomp: loading filter: %w", errno)
	}
	if p.Notify {
		return int(r), nil
	}
	if r != 0 {
		// With TSYNC, a positive return is the id of a thread that could
		// not be synchronised.
		return -1, fmt.Errorf("seccomp: thread %d could not be synchronised to the filter", r)
	}
	return -1, nil
}
