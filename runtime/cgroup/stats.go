package cgroup

import (
	"github.com/opencontainers/cgroups"
)

// Stats is a snapshot of a container's cgroup statistics. Its JSON form is
// shaped like the "data" object of runc's `events --stats`.
type Stats struct {
	CPU     CPU                `json:"cpu"`
	Memory  Memory             `json:"memory"`
	Pids    Pids               `json:"pids"`
	Blkio   Blkio              `json:"blkio"`
	Hugetlb map[string]Hugetlb `json:"hugetlb"`
}

// CPU holds CPU accounting. All times are in nanoseconds.
type CPU struct {
	Usage      CPUUsage   `json:"usage"`
	Throttling Throttling `json:"throttling"`
	PSI        *PSIStats  `json:"psi,omitempty"`
}

// CPUUsage is the CPU time consumed, in nanoseconds.
type CPUUsage struct {
	// Total is the total CPU time.
	Total uint64 `json:"total,omitempty"`
	// Percpu is the total time per CPU (v1 only).
	Percpu []uint64 `json:"percpu,omitempty"`
	// PercpuKernel is the kernel time per CPU (v1 only).
	PercpuKernel []uint64 `json:"percpu_kernel,omitempty"`
	// PercpuUser is the user time per CPU (v1 only).
	PercpuUser []uint64 `json:"percpu_user,omitempty"`
	// Kernel is the time spent in kernel mode.
	Kernel uint64 `json:"kernel"`
	// User is the time spent in user mode.
	User uint64 `json:"user"`
}

// Throttling reports CFS bandwidth throttling.
type Throttling struct {
	// Periods is the number of enforcement periods that elapsed.
	Periods uint64 `json:"periods,omitempty"`
	// ThrottledPeriods is the number of periods the group was throttled in.
	ThrottledPeriods uint64 `json:"throttledPeriods,omitempty"`
	// ThrottledTime is the total time throttled, in nanoseconds.
	ThrottledTime uint64 `json:"throttledTime,omitempty"`
}

// Memory holds memory accounting, in bytes.
type Memory struct {
	// Cache is the page cache usage.
	Cache uint64 `json:"cache,omitempty"`
	// Usage is the memory usage and limit.
	Usage MemoryEntry `json:"usage"`
	// Swap is memory+swap, as cgroup v1 reports it (v2 values are
	// converted to that meaning).
	Swap MemoryEntry `json:"swap"`
	// SwapOnly is the swap usage and limit alone.
	SwapOnly MemoryEntry `json:"swapOnly"`
	// Kernel is the kernel memory usage (v1 only).
	Kernel MemoryEntry `json:"kernel"`
	// KernelTCP is the kernel TCP buffer usage (v1 only).
	KernelTCP MemoryEntry `json:"kernelTCP"`
	// Raw is the content of memory.stat.
	Raw map[string]uint64 `json:"raw,omitempty"`
	// PSI is the memory pressure (v2 only).
	PSI *PSIStats `json:"psi,omitempty"`
}

// MemoryEntry is one memory counter.
type MemoryEntry struct {
	// Limit is the limit in bytes (the kernel's "unlimited" value when none).
	Limit uint64 `json:"limit"`
	// Usage is the current usage.
	Usage uint64 `json:"usage,omitempty"`
	// Max is the maximum usage recorded.
	Max uint64 `json:"max,omitempty"`
	// Failcnt is the number of times the limit was hit (v1 only).
	Failcnt uint64 `json:"failcnt"`
}

// Pids holds the task counter.
type Pids struct {
	// Current is the number of tasks in the cgroup.
	Current uint64 `json:"current,omitempty"`
	// Limit is the task limit, 0 when unlimited.
	Limit uint64 `json:"limit,omitempty"`
}

// Blkio holds block I/O accounting, as per-device entries.
type Blkio struct {
	IoServiceBytesRecursive []BlkioEntry `json:"ioServiceBytesRecursive,omitempty"`
	IoServicedRecursive     []BlkioEntry `json:"ioServicedRecursive,omitempty"`
	IoQueuedRecursive       []BlkioEntry `json:"ioQueueRecursive,omitempty"`
	IoServiceTimeRecursive  []BlkioEntry `json:"ioServiceTimeRecursive,omitempty"`
	IoWaitTimeRecursive     []BlkioEntry `json:"ioWaitTimeRecursive,omitempty"`
	IoMergedRecursive       []BlkioEntry `json:"ioMergedRecursive,omitempty"`
	IoTimeRecursive         []BlkioEntry `json:"ioTimeRecursive,omitempty"`
	SectorsRecursive        []BlkioEntry `json:"sectorsRecursive,omitempty"`
	PSI                     *PSIStats    `json:"psi,omitempty"`
}

// BlkioEntry is one per-device, per-operation counter.
type BlkioEntry struct {
	Major uint64 `json:"major,omitempty"`
	Minor uint64 `json:"minor,omitempty"`
	Op    string `json:"op,omitempty"`
	Value uint64 `json:"value,omitempty"`
}

// Hugetlb holds the accounting of one huge page size.
type Hugetlb struct {
	Usage   uint64 `json:"usage,omitempty"`
	Max     uint64 `json:"max,omitempty"`
	Failcnt uint64 `json:"failcnt"`
}

// PSIStats is pressure stall information (cgroup v2).
type PSIStats struct {
	Some PSIData `json:"some"`
	Full PSIData `json:"full"`
}

// PSIData is one line of a pressure file.
type PSIData struct {
	Avg10  float64 `json:"avg10"`
	Avg60  float64 `json:"avg60"`
	Avg300 float64 `json:"avg300"`
	Total  uint64  `json:"total"`
}

// convertStats maps the library's statistics onto Stats.
func convertStats(s *cgroups.Stats) *Stats {
	out := &Stats{
		CPU: CPU{
			Usage: CPUUsage{
				Total:        s.CpuStats.CpuUsage.TotalUsage,
				Percpu:       s.CpuStats.CpuUsage.PercpuUsage,
				PercpuKernel: s.CpuStats.CpuUsage.PercpuUsageInKernelmode,
				PercpuUser:   s.CpuStats.CpuUsage.PercpuUsageInUsermode,
				Kernel:       s.CpuStats.CpuUsage.UsageInKernelmode,
				User:         s.CpuStats.CpuUsage.UsageInUsermode,
			},
			Throttling: Throttling{
				Periods:          s.CpuStats.ThrottlingData.Periods,
				ThrottledPeriods: s.CpuStats.ThrottlingData.ThrottledPeriods,
				ThrottledTime:    s.CpuStats.ThrottlingData.ThrottledTime,
			},
			PSI: convertPSI(s.CpuStats.PSI),
		},
		Memory: Memory{
			Cache:     s.MemoryStats.Cache,
			Usage:     convertMemory(s.MemoryStats.Usage),
			Swap:      convertMemory(s.MemoryStats.SwapUsage),
			SwapOnly:  convertMemory(s.MemoryStats.SwapOnlyUsage),
			Kernel:    convertMemory(s.MemoryStats.KernelUsage),
			KernelTCP: convertMemory(s.MemoryStats.KernelTCPUsage),
			Raw:       s.MemoryStats.Stats,
			PSI:       convertPSI(s.MemoryStats.PSI),
		},
		Pids: Pids{
			Current: s.PidsStats.Current,
			Limit:   s.PidsStats.Limit,
		},
		Blkio: Blkio{
			IoServiceBytesRecursive: convertBlkio(s.BlkioStats.IoServiceBytesRecursive),
			IoServicedRecursive:     convertBlkio(s.BlkioStats.IoServicedRecursive),
			IoQueuedRecursive:       convertBlkio(s.BlkioStats.IoQueuedRecursive),
			IoServiceTimeRecursive:  convertBlkio(s.BlkioStats.IoServiceTimeRecursive),
			IoWaitTimeRecursive:     convertBlkio(s.BlkioStats.IoWaitTimeRecursive),
			IoMergedRecursive:       convertBlkio(s.BlkioStats.IoMergedRecursive),
			IoTimeRecursive:         convertBlkio(s.BlkioStats.IoTimeRecursive),
			SectorsRecursive:        convertBlkio(s.BlkioStats.SectorsRecursive),
			PSI:                     convertPSI(s.BlkioStats.PSI),
		},
		Hugetlb: make(map[string]Hugetlb, len(s.HugetlbStats)),
	}
	for size, h := range s.HugetlbStats {
		out.Hugetlb[size] = Hugetlb{Usage: h.Usage, Max: h.MaxUsage, Failcnt: h.Failcnt}
	}
	return out
}

func convertMemory(m cgroups.MemoryData) MemoryEntry {
	return MemoryEntry{Limit: m.Limit, Usage: m.Usage, Max: m.MaxUsage, Failcnt: m.Failcnt}
}

func convertBlkio(in []cgroups.BlkioStatEntry) []BlkioEntry {
	var out []BlkioEntry
	for _, e := range in {
		out = append(out, BlkioEntry{Major: e.Major, Minor: e.Minor, Op: e.Op, Value: e.Value})
	}
	return out
}

func convertPSI(p *cgroups.PSIStats) *PSIStats {
	if p == nil {
		return nil
	}
	return &PSIStats{
		Some: PSIData{Avg10: p.Some.Avg10, Avg60: p.Some.Avg60, Avg300: p.Some.Avg300, Total: p.Some.Total},
		Full: PSIData{Avg10: p.Full.Avg10, Avg60: p.Full.Avg60, Avg300: p.Full.Avg300, Total: p.Full.Total},
	}
}
