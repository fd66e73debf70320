package cgroup

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/opencontainers/cgroups"
	devconfig "github.com/opencontainers/cgroups/devices/config"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// convertResources turns OCI resources into the library's Resources for the
// given layout (v2 selects the unified-only conversions). A nil r yields an
// empty Resources. Fields the kernel no longer has (memory.kernel,
// memory.kernelTCP) and v1-only knobs on v2 (swappiness, disableOOMKiller,
// blkio leaf weights, network classID and priorities) are ignored;
// realtime CPU settings are refused on v2 because fs2 cannot apply them.
//
// SkipDevices is set when r carries no device rule, so that the device
// configuration already in place is left alone (see the package doc).
func convertResources(r *specs.LinuxResources, v2 bool) (*cgroups.Resources, error) {
	res := &cgroups.Resources{SkipDevices: true}
	if r == nil {
		return res, nil
	}

	if m := r.Memory; m != nil {
		if m.Limit != nil {
			res.Memory = *m.Limit
		}
		if m.Reservation != nil {
			res.MemoryReservation = *m.Reservation
		}
		if m.Swap != nil {
			res.MemorySwap = *m.Swap
		}
		if m.Swappiness != nil && !v2 {
			if *m.Swappiness > 100 && int64(*m.Swappiness) != -1 {
				return nil, fmt.Errorf("memory swappiness %d out of range 0-100", *m.Swappiness)
			}
			v := *m.Swappiness
			res.MemorySwappiness = &v
		}
		if m.DisableOOMKiller != nil && !v2 {
			res.OomKillDisable = *m.DisableOOMKiller
		}
		if m.CheckBeforeUpdate != nil {
			res.MemoryCheckBeforeUpdate = *m.CheckBeforeUpdate
		}
		if v2 && res.MemorySwap != 0 {
			// Validate early: fs2 converts memory+swap into a swap-only
			// value (memory.swap.max = swap - limit).
			if _, err := cgroups.ConvertMemorySwapToCgroupV2Value(res.MemorySwap, res.Memory); err != nil {
				return nil, fmt.Errorf("memory swap: %w", err)
			}
		}
	}

	if c := r.CPU; c != nil {
		if c.Shares != nil {
			res.CpuShares = *c.Shares
			if v2 {
				res.CpuWeight = cgroups.ConvertCPUSharesToCgroupV2Value(*c.Shares)
			}
		}
		if c.Quota != nil {
			res.CpuQuota = *c.Quota
		}
		if c.Burst != nil {
			v := *c.Burst
			res.CpuBurst = &v
		}
		if c.Period != nil {
			res.CpuPeriod = *c.Period
		}
		if c.RealtimeRuntime != nil {
			res.CpuRtRuntime = *c.RealtimeRuntime
		}
		if c.RealtimePeriod != nil {
			res.CpuRtPeriod = *c.RealtimePeriod
		}
		if v2 && (res.CpuRtRuntime != 0 || res.CpuRtPeriod != 0) {
			return nil, errors.New("cpu realtime runtime/period are not supported on cgroup v2")
		}
		res.CpusetCpus = c.Cpus
		res.CpusetMems = c.Mems
		if c.Idle != nil {
			v := *c.Idle
			res.CPUIdle = &v
		}
	}

	if p := r.Pids; p != nil && p.Limit != nil {
		v := *p.Limit
		res.PidsLimit = &v
	}

	if b := r.BlockIO; b != nil {
		if b.Weight != nil {
			res.BlkioWeight = *b.Weight
		}
		if b.LeafWeight != nil && !v2 {
			res.BlkioLeafWeight = *b.LeafWeight
		}
		for _, wd := range b.WeightDevice {
			var weight, leaf uint16
			if wd.Weight != nil {
				weight = *wd.Weight
			}
			if wd.LeafWeight != nil && !v2 {
				leaf = *wd.LeafWeight
			}
			if weight == 0 && leaf == 0 {
				continue
			}
			res.BlkioWeightDevice = append(res.BlkioWeightDevice,
				cgroups.NewWeightDevice(wd.Major, wd.Minor, weight, leaf))
		}
		res.BlkioThrottleReadBpsDevice = throttle(b.ThrottleReadBpsDevice)
		res.BlkioThrottleWriteBpsDevice = throttle(b.ThrottleWriteBpsDevice)
		res.BlkioThrottleReadIOPSDevice = throttle(b.ThrottleReadIOPSDevice)
		res.BlkioThrottleWriteIOPSDevice = throttle(b.ThrottleWriteIOPSDevice)
	}

	for _, h := range r.HugepageLimits {
		if h.Pagesize == "" {
			return nil, errors.New("hugepage limit without page size")
		}
		res.HugetlbLimit = append(res.HugetlbLimit, &cgroups.HugepageLimit{Pagesize: h.Pagesize, Limit: h.Limit})
	}

	if n := r.Network; n != nil && !v2 {
		if n.ClassID != nil {
			res.NetClsClassid = *n.ClassID
		}
		for _, p := range n.Priorities {
			res.NetPrioIfpriomap = append(res.NetPrioIfpriomap, &cgroups.IfPrioMap{Interface: p.Name, Priority: int64(p.Priority)})
		}
	}

	if len(r.Rdma) > 0 {
		res.Rdma = make(map[string]cgroups.LinuxRdma, len(r.Rdma))
		for dev, l := range r.Rdma {
			res.Rdma[dev] = cgroups.LinuxRdma{HcaHandles: l.HcaHandles, HcaObjects: l.HcaObjects}
		}
	}

	if len(r.Unified) > 0 {
		if !v2 {
			return nil, errors.New("unified resources are only supported on cgroup v2")
		}
		res.Unified = make(map[string]string, len(r.Unified))
		for k, v := range r.Unified {
			if strings.ContainsRune(k, '/') || k == "." || k == ".." || !strings.Contains(k, ".") {
				return nil, fmt.Errorf("unified resource %q must be a CONTROLLER.PARAMETER file name", k)
			}
			res.Unified[k] = v
		}
	}

	if len(r.Devices) > 0 {
		rules, err := convertDevices(r.Devices)
		if err != nil {
			return nil, err
		}
		res.Devices = rules
		res.SkipDevices = false
	}
	return res, nil
}

func throttle(in []specs.LinuxThrottleDevice) []*cgroups.ThrottleDevice {
	var out []*cgroups.ThrottleDevice
	for _, t := range in {
		out = append(out, cgroups.NewThrottleDevice(t.Major, t.Minor, t.Rate))
	}
	return out
}

// convertDevices converts OCI device cgroup rules, in order. An unset type
// means all devices ('a'), unset (or -1) major/minor mean any ('*'), and an
// empty access means "rwm".
func convertDevices(in []specs.LinuxDeviceCgroup) ([]*devconfig.Rule, error) {
	rules := make([]*devconfig.Rule, 0, len(in))
	for i, d := range in {
		rule := &devconfig.Rule{
			Allow: d.Allow,
			Major: devconfig.Wildcard,
			Minor: devconfig.Wildcard,
		}
		switch d.Type {
		case "", "a":
			rule.Type = devconfig.WildcardDevice
		case "c", "u":
			rule.Type = devconfig.CharDevice
		case "b":
			rule.Type = devconfig.BlockDevice
		default:
			return nil, fmt.Errorf("device rule %d: invalid type %q", i, d.Type)
		}
		for _, n := range []struct {
			in  *int64
			out *int64
			nm  string
		}{{d.Major, &rule.Major, "major"}, {d.Minor, &rule.Minor, "minor"}} {
			if n.in == nil {
				continue
			}
			if *n.in < devconfig.Wildcard || *n.in > 0xffffffff {
				return nil, fmt.Errorf("device rule %d: invalid %s %d", i, n.nm, *n.in)
			}
			*n.out = *n.in
		}
		access := d.Access
		if access == "" {
			access = "rwm"
		}
		perms := devconfig.Permissions(access)
		if !validAccess(access) {
			return nil, fmt.Errorf("device rule %d: invalid access %q", i, d.Access)
		}
		rule.Permissions = perms
		rules = append(rules, rule)
	}
	return rules, nil
}

// validAccess accepts non-empty combinations of r, w and m, each at most once.
func validAccess(a string) bool {
	if a == "" || len(a) > 3 {
		return false
	}
	seen := map[rune]bool{}
	for _, c := range a {
		if (c != 'r' && c != 'w' && c != 'm') || seen[c] {
			return false
		}
		seen[c] = true
	}
	return true
}

// v2DefaultControllers are enabled for a v2 container when available, so
// that usage statistics and later updates work even without a limit.
var v2DefaultControllers = []string{"cpu", "io", "memory", "pids"}

// neededV2Controllers lists the v2 controllers that res needs.
func neededV2Controllers(res *cgroups.Resources) []string {
	var need []string
	add := func(c string, cond bool) {
		if cond && !slices.Contains(need, c) {
			need = append(need, c)
		}
	}
	add("cpu", res.CpuWeight != 0 || res.CpuShares != 0 || res.CpuQuota != 0 || res.CpuPeriod != 0 || res.CPUIdle != nil || res.CpuBurst != nil)
	add("cpuset", res.CpusetCpus != "" || res.CpusetMems != "")
	add("memory", res.Memory != 0 || res.MemoryReservation != 0 || res.MemorySwap != 0)
	add("pids", res.PidsLimit != nil)
	add("io", res.BlkioWeight != 0 || len(res.BlkioWeightDevice) > 0 ||
		len(res.BlkioThrottleReadBpsDevice) > 0 || len(res.BlkioThrottleWriteBpsDevice) > 0 ||
		len(res.BlkioThrottleReadIOPSDevice) > 0 || len(res.BlkioThrottleWriteIOPSDevice) > 0)
	add("hugetlb", len(res.HugetlbLimit) > 0)
	add("rdma", len(res.Rdma) > 0)
	for k := range res.Unified {
		c, _, _ := strings.Cut(k, ".")
		add(c, c != "cgroup")
	}
	slices.Sort(need)
	return need
}
