package container

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The init's configuration travels in a compact binary form, decoded
// without reflection: encoding/json's first decode in a fresh process (the
// init is one) costs 1.5 ms and more under load, a tenth of a container
// start. Only what the init uses is encoded; a field the init starts to use
// must be added here (the round-trip test lists what is carried).

const wireVersion = 1

type wireWriter struct{ b []byte }

func (w *wireWriter) uint(v uint64) { w.b = binary.AppendUvarint(w.b, v) }
func (w *wireWriter) int(v int64)   { w.b = binary.AppendVarint(w.b, v) }
func (w *wireWriter) bool(v bool) {
	if v {
		w.b = append(w.b, 1)
	} else {
		w.b = append(w.b, 0)
	}
}
func (w *wireWriter) str(s string) {
	w.uint(uint64(len(s)))
	w.b = append(w.b, s...)
}

// strs distinguishes nil from empty.
func (w *wireWriter) strs(ss []string) {
	if ss == nil {
		w.uint(0)
		return
	}
	w.uint(uint64(len(ss)) + 1)
	for _, s := range ss {
		w.str(s)
	}
}

func (w *wireWriter) strMap(m map[string]string) {
	if m == nil {
		w.uint(0)
		return
	}
	w.uint(uint64(len(m)) + 1)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		w.str(k)
		w.str(m[k])
	}
}

type wireReader struct {
	b   []byte
	err error
}

var errWire = errors.New("malformed init configuration")

func (r *wireReader) fail() {
	if r.err == nil {
		r.err = errWire
	}
	r.b = nil
}

func (r *wireReader) uint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *wireReader) int() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *wireReader) bool() bool {
	if len(r.b) == 0 {
		r.fail()
		return false
	}
	v := r.b[0]
	r.b = r.b[1:]
	if v > 1 {
		r.fail()
	}
	return v == 1
}

func (r *wireReader) str() string {
	n := r.uint()
	if n > uint64(len(r.b)) {
		r.fail()
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// count reads a length stored as n+1 (0 = nil), bounded by what is left.
func (r *wireReader) count() (n int, isNil bool) {
	v := r.uint()
	if v == 0 {
		return 0, true
	}
	if v-1 > uint64(len(r.b)) {
		r.fail()
		return 0, true
	}
	return int(v - 1), false
}

func (r *wireReader) strs() []string {
	n, isNil := r.count()
	if isNil {
		return nil
	}
	out := make([]string, 0, n)
	for i := 0; i < n && r.err == nil; i++ {
		out = append(out, r.str())
	}
	return out
}

func (r *wireReader) strMap() map[string]string {
	n, isNil := r.count()
	if isNil {
		return nil
	}
	out := make(map[string]string, n)
	for i := 0; i < n && r.err == nil; i++ {
		k := r.str()
		out[k] = r.str()
	}
	return out
}

func (r *wireReader) u32() uint32 {
	v := r.uint()
	if v > math.MaxUint32 {
		r.fail()
	}
	return uint32(v)
}

// encodeInitConfig writes what the init needs of cfg.
func encodeInitConfig(cfg *initConfig) []byte {
	w := &wireWriter{b: make([]byte, 0, 4096)}
	w.uint(wireVersion)
	w.str(cfg.Type)
	w.str(cfg.ID)
	w.str(cfg.Rootfs)
	w.str(cfg.Bundle)
	for _, b := range []bool{cfg.NoPivot, cfg.NoNewKeyring, cfg.NoProcess, cfg.NewUserNS, cfg.NewMountNS, cfg.NewNetNS, cfg.NewCgroupNS, cfg.NewUTSNS} {
		w.bool(b)
	}
	w.int(int64(cfg.ConsoleFd))
	w.int(int64(cfg.FifoFd))
	w.int(int64(cfg.PreserveFds))
	w.strMap(cfg.CgroupPaths)
	idx := make([]int, 0, len(cfg.IDMapFds))
	for i := range cfg.IDMapFds {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	w.uint(uint64(len(idx)))
	for _, i := range idx {
		w.int(int64(i))
		w.int(int64(cfg.IDMapFds[i]))
	}
	w.bool(cfg.State != nil)
	if st := cfg.State; st != nil {
		w.str(st.Version)
		w.str(st.ID)
		w.str(string(st.Status))
		w.int(int64(st.Pid))
		w.str(st.Bundle)
		w.strMap(st.Annotations)
	}
	w.bool(cfg.Process != nil)
	if cfg.Process != nil {
		encodeProcess(w, cfg.Process)
	}
	w.bool(cfg.Spec != nil)
	if cfg.Spec != nil {
		encodeSpec(w, cfg.Spec)
	}
	return w.b
}

func encodeProcess(w *wireWriter, p *specs.Process) {
	w.bool(p.Terminal)
	w.bool(p.ConsoleSize != nil)
	if p.ConsoleSize != nil {
		w.uint(uint64(p.ConsoleSize.Height))
		w.uint(uint64(p.ConsoleSize.Width))
	}
	w.uint(uint64(p.User.UID))
	w.uint(uint64(p.User.GID))
	w.bool(p.User.Umask != nil)
	if p.User.Umask != nil {
		w.uint(uint64(*p.User.Umask))
	}
	w.uint(uint64(len(p.User.AdditionalGids)))
	for _, g := range p.User.AdditionalGids {
		w.uint(uint64(g))
	}
	w.strs(p.Args)
	w.strs(p.Env)
	w.str(p.Cwd)
	w.bool(p.Capabilities != nil)
	if c := p.Capabilities; c != nil {
		for _, set := range [][]string{c.Bounding, c.Effective, c.Inheritable, c.Permitted, c.Ambient} {
			w.strs(set)
		}
	}
	w.uint(uint64(len(p.Rlimits)))
	for _, rl := range p.Rlimits {
		w.str(rl.Type)
		w.uint(rl.Hard)
		w.uint(rl.Soft)
	}
	w.bool(p.NoNewPrivileges)
	w.str(p.ApparmorProfile)
	w.str(p.SelinuxLabel)
	w.bool(p.IOPriority != nil)
	if p.IOPriority != nil {
		w.str(string(p.IOPriority.Class))
		w.int(int64(p.IOPriority.Priority))
	}
}

func encodeHooks(w *wireWriter, hooks []specs.Hook) {
	w.uint(uint64(len(hooks)))
	for _, h := range hooks {
		w.str(h.Path)
		w.strs(h.Args)
		w.strs(h.Env)
		w.bool(h.Timeout != nil)
		if h.Timeout != nil {
			w.int(int64(*h.Timeout))
		}
	}
}

func encodeSpec(w *wireWriter, s *specs.Spec) {
	w.str(s.Hostname)
	w.str(s.Domainname)
	w.bool(s.Root != nil && s.Root.Readonly)
	w.uint(uint64(len(s.Mounts)))
	for _, m := range s.Mounts {
		w.str(m.Destination)
		w.str(m.Type)
		w.str(m.Source)
		w.strs(m.Options)
	}
	w.bool(s.Hooks != nil)
	if s.Hooks != nil {
		encodeHooks(w, s.Hooks.CreateRuntime)
		encodeHooks(w, s.Hooks.CreateContainer)
		encodeHooks(w, s.Hooks.StartContainer)
	}
	w.bool(s.Linux != nil)
	if l := s.Linux; l != nil {
		w.uint(uint64(len(l.Devices)))
		for _, d := range l.Devices {
			w.str(d.Path)
			w.str(d.Type)
			w.int(d.Major)
			w.int(d.Minor)
			w.bool(d.FileMode != nil)
			if d.FileMode != nil {
				w.uint(uint64(*d.FileMode))
			}
			w.bool(d.UID != nil)
			if d.UID != nil {
				w.uint(uint64(*d.UID))
			}
			w.bool(d.GID != nil)
			if d.GID != nil {
				w.uint(uint64(*d.GID))
			}
		}
		w.strs(l.MaskedPaths)
		w.strs(l.ReadonlyPaths)
		w.strMap(l.Sysctl)
		w.str(l.RootfsPropagation)
		w.str(l.MountLabel)
		w.bool(l.Personality != nil)
		if l.Personality != nil {
			w.str(string(l.Personality.Domain))
			w.strs(func() []string {
				out := make([]string, len(l.Personality.Flags))
				for i, f := range l.Personality.Flags {
					out[i] = string(f)
				}
				return out
			}())
		}
		// The init only needs to know that there is a filter: the
		// runtime compiles it and sends the program when asked.
		w.bool(l.Seccomp != nil)
	}
}

// decodeInitConfig is the inverse of encodeInitConfig.
func decodeInitConfig(data []byte) (*initConfig, error) {
	r := &wireReader{b: data}
	if v := r.uint(); r.err == nil && v != wireVersion {
		return nil, fmt.Errorf("init configuration version %d, want %d", v, wireVersion)
	}
	cfg := &initConfig{}
	cfg.Type = r.str()
	cfg.ID = r.str()
	cfg.Rootfs = r.str()
	cfg.Bundle = r.str()
	for _, b := range []*bool{&cfg.NoPivot, &cfg.NoNewKeyring, &cfg.NoProcess, &cfg.NewUserNS, &cfg.NewMountNS, &cfg.NewNetNS, &cfg.NewCgroupNS, &cfg.NewUTSNS} {
		*b = r.bool()
	}
	cfg.ConsoleFd = int(r.int())
	cfg.FifoFd = int(r.int())
	cfg.PreserveFds = int(r.int())
	cfg.CgroupPaths = r.strMap()
	if n := r.uint(); n > 0 {
		if n > uint64(len(r.b)) {
			r.fail()
		} else {
			cfg.IDMapFds = make(map[int]int, n)
			for i := uint64(0); i < n && r.err == nil; i++ {
				k := int(r.int())
				cfg.IDMapFds[k] = int(r.int())
			}
		}
	}
	if r.bool() {
		st := &specs.State{}
		st.Version = r.str()
		st.ID = r.str()
		st.Status = specs.ContainerState(r.str())
		st.Pid = int(r.int())
		st.Bundle = r.str()
		st.Annotations = r.strMap()
		cfg.State = st
	}
	if r.bool() {
		cfg.Process = decodeProcess(r)
	}
	if r.bool() {
		cfg.Spec = decodeSpec(r)
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail()
	}
	if r.err != nil {
		return nil, r.err
	}
	return cfg, nil
}

func (r *wireReader) bounded() int {
	n := r.uint()
	if n > uint64(len(r.b)) {
		r.fail()
		return 0
	}
	return int(n)
}

func decodeProcess(r *wireReader) *specs.Process {
	p := &specs.Process{}
	p.Terminal = r.bool()
	if r.bool() {
		p.ConsoleSize = &specs.Box{Height: uint(r.uint()), Width: uint(r.uint())}
	}
	p.User.UID = r.u32()
	p.User.GID = r.u32()
	if r.bool() {
		m := r.u32()
		p.User.Umask = &m
	}
	if n := r.bounded(); n > 0 {
		p.User.AdditionalGids = make([]uint32, n)
		for i := range p.User.AdditionalGids {
			p.User.AdditionalGids[i] = r.u32()
		}
	}
	p.Args = r.strs()
	p.Env = r.strs()
	p.Cwd = r.str()
	if r.bool() {
		c := &specs.LinuxCapabilities{}
		for _, set := range []*[]string{&c.Bounding, &c.Effective, &c.Inheritable, &c.Permitted, &c.Ambient} {
			*set = r.strs()
		}
		p.Capabilities = c
	}
	if n := r.bounded(); n > 0 {
		p.Rlimits = make([]specs.POSIXRlimit, n)
		for i := range p.Rlimits {
			p.Rlimits[i] = specs.POSIXRlimit{Type: r.str(), Hard: r.uint(), Soft: r.uint()}
		}
	}
	p.NoNewPrivileges = r.bool()
	p.ApparmorProfile = r.str()
	p.SelinuxLabel = r.str()
	if r.bool() {
		p.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPriorityClass(r.str()), Priority: int(r.int())}
	}
	return p
}

func decodeHooks(r *wireReader) []specs.Hook {
	n := r.bounded()
	if n == 0 {
		return nil
	}
	hooks := make([]specs.Hook, n)
	for i := range hooks {
		h := &hooks[i]
		h.Path = r.str()
		h.Args = r.strs()
		h.Env = r.strs()
		if r.bool() {
			t := int(r.int())
			h.Timeout = &t
		}
	}
	return hooks
}

func decodeSpec(r *wireReader) *specs.Spec {
	s := &specs.Spec{}
	s.Hostname = r.str()
	s.Domainname = r.str()
	s.Root = &specs.Root{Readonly: r.bool()}
	if n := r.bounded(); n > 0 {
		s.Mounts = make([]specs.Mount, n)
		for i := range s.Mounts {
			m := &s.Mounts[i]
			m.Destination = r.str()
			m.Type = r.str()
			m.Source = r.str()
			m.Options = r.strs()
		}
	}
	if r.bool() {
		s.Hooks = &specs.Hooks{
			CreateRuntime:   decodeHooks(r),
			CreateContainer: decodeHooks(r),
			StartContainer:  decodeHooks(r),
		}
	}
	if r.bool() {
		l := &specs.Linux{}
		if n := r.bounded(); n > 0 {
			l.Devices = make([]specs.LinuxDevice, n)
			for i := range l.Devices {
				d := &l.Devices[i]
				d.Path = r.str()
				d.Type = r.str()
				d.Major = r.int()
				d.Minor = r.int()
				if r.bool() {
					m := os.FileMode(r.u32())
					d.FileMode = &m
				}
				if r.bool() {
					u := r.u32()
					d.UID = &u
				}
				if r.bool() {
					g := r.u32()
					d.GID = &g
				}
			}
		}
		l.MaskedPaths = r.strs()
		l.ReadonlyPaths = r.strs()
		l.Sysctl = r.strMap()
		l.RootfsPropagation = r.str()
		l.MountLabel = r.str()
		if r.bool() {
			p := &specs.LinuxPersonality{Domain: specs.LinuxPersonalityDomain(r.str())}
			for _, f := range r.strs() {
				p.Flags = append(p.Flags, specs.LinuxPersonalityFlag(f))
			}
			l.Personality = p
		}
		if r.bool() {
			l.Seccomp = &specs.LinuxSeccomp{}
		}
		s.Linux = l
	}
	return s
}
