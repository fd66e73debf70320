package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"

	"github.com/docker/go-units"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-engine/berth/runtime/container"
)

func updateFlags() *flagSet {
	return newFlagSet(
		strF("path to the file containing the resources to update or '-' to read from the standard input", "", "resources", "r"),
		strF("specifies per cgroup weight, range is from 10 to 1000", "", "blkio-weight"),
		strF("CPU CFS period to be used for hardcapping (in usecs). 0 to use system default", "", "cpu-period"),
		strF("CPU CFS hardcap limit (in usecs). Allowed cpu time in a given period", "", "cpu-quota"),
		strF("CPU hardcap burst limit (in usecs). Allowed accumulated cpu time additionally for burst a given period", "", "cpu-burst"),
		strF("CPU realtime period to be used for hardcapping (in usecs). 0 to use system default", "", "cpu-rt-period"),
		strF("CPU realtime hardcap limit (in usecs). Allowed cpu time in a given period", "", "cpu-rt-runtime"),
		strF("CPU shares (relative weight vs. other containers)", "", "cpu-shares"),
		strF("CPU(s) to use", "", "cpuset-cpus"),
		strF("Memory node(s) to use", "", "cpuset-mems"),
		strF("Memory limit (in bytes)", "", "memory"),
		strF("Memory reservation or soft_limit (in bytes)", "", "memory-reservation"),
		strF("Total memory usage (memory + swap); set '-1' to enable unlimited swap", "", "memory-swap"),
		strF("Maximum number of pids allowed in the container", "", "pids-limit"),
	)
}

func parseBytes(s string) (int64, error) {
	if s == "-1" {
		return -1, nil
	}
	return units.RAMInBytes(s)
}

func updateCommand(ctx context.Context, g *globals, fs *flagSet, args []string) error {
	if err := needID(args, 1); err != nil {
		return err
	}
	var fromFile *specs.LinuxResources
	if path := fs.String("resources"); path != "" {
		f := os.Stdin
		if path != "-" {
			var err error
			if f, err = os.Open(path); err != nil {
				return fmt.Errorf("open resources file: %w", err)
			}
			defer f.Close()
		}
		fromFile = &specs.LinuxResources{}
		if err := json.NewDecoder(f).Decode(fromFile); err != nil {
			return fmt.Errorf("%w: decode resources: %v", container.ErrInvalidInput, err)
		}
	}
	type setter func(r *specs.LinuxResources, v string) error
	u64 := func(get func(r *specs.LinuxResources) **uint64) setter {
		return func(r *specs.LinuxResources, v string) error {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return err
			}
			*get(r) = &n
			return nil
		}
	}
	i64 := func(get func(r *specs.LinuxResources) **int64) setter {
		return func(r *specs.LinuxResources, v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return err
			}
			*get(r) = &n
			return nil
		}
	}
	mem := func(get func(m *specs.LinuxMemory) **int64) setter {
		return func(r *specs.LinuxResources, v string) error {
			n, err := parseBytes(v)
			if err != nil {
				return err
			}
			if r.Memory == nil {
				r.Memory = &specs.LinuxMemory{}
			}
			*get(r.Memory) = &n
			return nil
		}
	}
	cpu := func(r *specs.LinuxResources) *specs.LinuxCPU {
		if r.CPU == nil {
			r.CPU = &specs.LinuxCPU{}
		}
		return r.CPU
	}
	setters := map[string]setter{
		"cpu-period":     u64(func(r *specs.LinuxResources) **uint64 { return &cpu(r).Period }),
		"cpu-quota":      i64(func(r *specs.LinuxResources) **int64 { return &cpu(r).Quota }),
		"cpu-burst":      u64(func(r *specs.LinuxResources) **uint64 { return &cpu(r).Burst }),
		"cpu-rt-period":  u64(func(r *specs.LinuxResources) **uint64 { return &cpu(r).RealtimePeriod }),
		"cpu-rt-runtime": i64(func(r *specs.LinuxResources) **int64 { return &cpu(r).RealtimeRuntime }),
		"cpu-shares":     u64(func(r *specs.LinuxResources) **uint64 { return &cpu(r).Shares }),
		"cpuset-cpus": func(r *specs.LinuxResources, v string) error {
			cpu(r).Cpus = v
			return nil
		},
		"cpuset-mems": func(r *specs.LinuxResources, v string) error {
			cpu(r).Mems = v
			return nil
		},
		"memory":             mem(func(m *specs.LinuxMemory) **int64 { return &m.Limit }),
		"memory-reservation": mem(func(m *specs.LinuxMemory) **int64 { return &m.Reservation }),
		"memory-swap":        mem(func(m *specs.LinuxMemory) **int64 { return &m.Swap }),
		"pids-limit": func(r *specs.LinuxResources, v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return err
			}
			r.Pids = &specs.LinuxPids{Limit: &n}
			return nil
		},
		"blkio-weight": func(r *specs.LinuxResources, v string) error {
			n, err := strconv.ParseUint(v, 10, 16)
			if err != nil {
				return err
			}
			w := uint16(n)
			if r.BlockIO == nil {
				r.BlockIO = &specs.LinuxBlockIO{}
			}
			r.BlockIO.Weight = &w
			return nil
		},
	}
	return g.store().Update(args[0], func(r *specs.LinuxResources) error {
		if fromFile != nil {
			mergeResources(r, fromFile)
		}
		for name, set := range setters {
			if v := fs.String(name); fs.IsSet(name) {
				if err := set(r, v); err != nil {
					return fmt.Errorf("%w: invalid value for --%s: %v", container.ErrInvalidInput, name, err)
				}
			}
		}
		return nil
	})
}

// mergeResources overlays the fields set in src onto dst.
func mergeResources(dst, src *specs.LinuxResources) {
	if src.Memory != nil {
		dst.Memory = src.Memory
	}
	if src.CPU != nil {
		dst.CPU = src.CPU
	}
	if src.Pids != nil {
		dst.Pids = src.Pids
	}
	if src.BlockIO != nil {
		dst.BlockIO = src.BlockIO
	}
	if src.HugepageLimits != nil {
		dst.HugepageLimits = src.HugepageLimits
	}
	if src.Unified != nil {
		dst.Unified = src.Unified
	}
	if src.Devices != nil {
		dst.Devices = src.Devices
	}
}
