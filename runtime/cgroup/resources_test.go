package cgroup

import (
	"reflect"
	"strings"
	"testing"

	"github.com/opencontainers/cgroups"
	devconfig "github.com/opencontainers/cgroups/devices/config"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func ptr[T any](v T) *T { return &v }

func TestConvertResources(t *testing.T) {
	tests := []struct {
		name    string
		in      *specs.LinuxResources
		v2      bool
		want    *cgroups.Resources
		wantErr string
	}{
		{
			name: "nil",
			want: &cgroups.Resources{SkipDevices: true},
		},
		{
			name: "memory v1",
			in: &specs.LinuxResources{Memory: &specs.LinuxMemory{
				Limit: ptr[int64](64 << 20), Reservation: ptr[int64](32 << 20), Swap: ptr[int64](128 << 20),
				//lint:ignore SA1019 the conversion must ignore the deprecated fields
				Kernel: ptr[int64](1 << 20), KernelTCP: ptr[int64](1 << 20),
				Swappiness: ptr[uint64](10), DisableOOMKiller: ptr(true), CheckBeforeUpdate: ptr(true),
			}},
			want: &cgroups.Resources{
				SkipDevices: true, Memory: 64 << 20, MemoryReservation: 32 << 20, MemorySwap: 128 << 20,
				MemorySwappiness: ptr[uint64](10), OomKillDisable: true, MemoryCheckBeforeUpdate: true,
			},
		},
		{
			name: "memory v2 drops v1-only knobs",
			v2:   true,
			in: &specs.LinuxResources{Memory: &specs.LinuxMemory{
				Limit: ptr[int64](64 << 20), Swap: ptr[int64](128 << 20),
				Swappiness: ptr[uint64](10), DisableOOMKiller: ptr(true),
			}},
			want: &cgroups.Resources{SkipDevices: true, Memory: 64 << 20, MemorySwap: 128 << 20},
		},
		{
			name:    "memory v2 swap below limit",
			v2:      true,
			in:      &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](64 << 20), Swap: ptr[int64](32 << 20)}},
			wantErr: "memory+swap limit should be >= memory limit",
		},
		{
			name:    "memory v2 swap without limit",
			v2:      true,
			in:      &specs.LinuxResources{Memory: &specs.LinuxMemory{Swap: ptr[int64](32 << 20)}},
			wantErr: "without memory limit",
		},
		{
			name:    "swappiness out of range",
			in:      &specs.LinuxResources{Memory: &specs.LinuxMemory{Swappiness: ptr[uint64](101)}},
			wantErr: "swappiness",
		},
		{
			name: "cpu v1",
			in: &specs.LinuxResources{CPU: &specs.LinuxCPU{
				Shares: ptr[uint64](512), Quota: ptr[int64](50000), Period: ptr[uint64](100000), Burst: ptr[uint64](1000),
				RealtimeRuntime: ptr[int64](950000), RealtimePeriod: ptr[uint64](1000000),
				Cpus: "0-1", Mems: "0", Idle: ptr[int64](1),
			}},
			want: &cgroups.Resources{
				SkipDevices: true, CpuShares: 512, CpuQuota: 50000, CpuPeriod: 100000, CpuBurst: ptr[uint64](1000),
				CpuRtRuntime: 950000, CpuRtPeriod: 1000000, CpusetCpus: "0-1", CpusetMems: "0", CPUIdle: ptr[int64](1),
			},
		},
		{
			name: "cpu v2 converts shares to weight",
			v2:   true,
			in:   &specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: ptr[uint64](1024), Quota: ptr[int64](-1)}},
			want: &cgroups.Resources{SkipDevices: true, CpuShares: 1024, CpuWeight: 100, CpuQuota: -1},
		},
		{
			name: "cpu v2 min shares",
			v2:   true,
			in:   &specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: ptr[uint64](2)}},
			want: &cgroups.Resources{SkipDevices: true, CpuShares: 2, CpuWeight: 1},
		},
		{
			name:    "cpu v2 realtime refused",
			v2:      true,
			in:      &specs.LinuxResources{CPU: &specs.LinuxCPU{RealtimeRuntime: ptr[int64](1000)}},
			wantErr: "realtime",
		},
		{
			name: "pids",
			in:   &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](100)}},
			want: &cgroups.Resources{SkipDevices: true, PidsLimit: ptr[int64](100)},
		},
		{
			name: "pids unset limit",
			in:   &specs.LinuxResources{Pids: &specs.LinuxPids{}},
			want: &cgroups.Resources{SkipDevices: true},
		},
		{
			name: "blkio v1",
			in: &specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{
				Weight: ptr[uint16](500), LeafWeight: ptr[uint16](300),
				WeightDevice: []specs.LinuxWeightDevice{
					{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Weight: ptr[uint16](200), LeafWeight: ptr[uint16](100)},
					{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 16}},
				},
				ThrottleReadBpsDevice:   []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Rate: 1000}},
				ThrottleWriteBpsDevice:  []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Rate: 2000}},
				ThrottleReadIOPSDevice:  []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Rate: 30}},
				ThrottleWriteIOPSDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Rate: 40}},
			}},
			want: &cgroups.Resources{
				SkipDevices: true, BlkioWeight: 500, BlkioLeafWeight: 300,
				BlkioWeightDevice:            []*cgroups.WeightDevice{cgroups.NewWeightDevice(8, 0, 200, 100)},
				BlkioThrottleReadBpsDevice:   []*cgroups.ThrottleDevice{cgroups.NewThrottleDevice(8, 0, 1000)},
				BlkioThrottleWriteBpsDevice:  []*cgroups.ThrottleDevice{cgroups.NewThrottleDevice(8, 0, 2000)},
				BlkioThrottleReadIOPSDevice:  []*cgroups.ThrottleDevice{cgroups.NewThrottleDevice(8, 0, 30)},
				BlkioThrottleWriteIOPSDevice: []*cgroups.ThrottleDevice{cgroups.NewThrottleDevice(8, 0, 40)},
			},
		},
		{
			name: "blkio v2 drops leaf weights",
			v2:   true,
			in: &specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{
				Weight: ptr[uint16](500), LeafWeight: ptr[uint16](300),
				WeightDevice: []specs.LinuxWeightDevice{
					{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Weight: ptr[uint16](200), LeafWeight: ptr[uint16](100)},
					{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 16}, LeafWeight: ptr[uint16](100)},
				},
			}},
			want: &cgroups.Resources{
				SkipDevices: true, BlkioWeight: 500,
				BlkioWeightDevice: []*cgroups.WeightDevice{cgroups.NewWeightDevice(8, 0, 200, 0)},
			},
		},
		{
			name: "hugetlb",
			in:   &specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 1 << 30}}},
			want: &cgroups.Resources{SkipDevices: true, HugetlbLimit: []*cgroups.HugepageLimit{{Pagesize: "2MB", Limit: 1 << 30}}},
		},
		{
			name:    "hugetlb without size",
			in:      &specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Limit: 1}}},
			wantErr: "page size",
		},
		{
			name: "network v1",
			in: &specs.LinuxResources{Network: &specs.LinuxNetwork{
				ClassID:    ptr[uint32](0x100001),
				Priorities: []specs.LinuxInterfacePriority{{Name: "eth0", Priority: 5}},
			}},
			want: &cgroups.Resources{
				SkipDevices: true, NetClsClassid: 0x100001,
				NetPrioIfpriomap: []*cgroups.IfPrioMap{{Interface: "eth0", Priority: 5}},
			},
		},
		{
			name: "network ignored on v2",
			v2:   true,
			in:   &specs.LinuxResources{Network: &specs.LinuxNetwork{ClassID: ptr[uint32](1)}},
			want: &cgroups.Resources{SkipDevices: true},
		},
		{
			name: "rdma",
			in:   &specs.LinuxResources{Rdma: map[string]specs.LinuxRdma{"mlx5_0": {HcaHandles: ptr[uint32](3), HcaObjects: ptr[uint32](100)}}},
			want: &cgroups.Resources{SkipDevices: true, Rdma: map[string]cgroups.LinuxRdma{"mlx5_0": {HcaHandles: ptr[uint32](3), HcaObjects: ptr[uint32](100)}}},
		},
		{
			name: "unified v2",
			v2:   true,
			in:   &specs.LinuxResources{Unified: map[string]string{"memory.high": "1000000"}},
			want: &cgroups.Resources{SkipDevices: true, Unified: map[string]string{"memory.high": "1000000"}},
		},
		{
			name:    "unified v1 refused",
			in:      &specs.LinuxResources{Unified: map[string]string{"memory.high": "1"}},
			wantErr: "only supported on cgroup v2",
		},
		{
			name:    "unified bad key",
			v2:      true,
			in:      &specs.LinuxResources{Unified: map[string]string{"../memory.high": "1"}},
			wantErr: "CONTROLLER.PARAMETER",
		},
		{
			name: "devices",
			in: &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{
				{Allow: false, Access: "rwm"},
				{Allow: true, Type: "c", Major: ptr[int64](1), Minor: ptr[int64](3), Access: "rwm"},
				{Allow: true, Type: "b", Major: ptr[int64](8), Access: "r"},
				{Allow: true, Type: "c", Major: ptr[int64](136), Minor: ptr[int64](-1)},
				{Allow: false, Type: "a", Access: "m"},
			}},
			want: &cgroups.Resources{Devices: []*devconfig.Rule{
				{Type: 'a', Major: -1, Minor: -1, Permissions: "rwm", Allow: false},
				{Type: 'c', Major: 1, Minor: 3, Permissions: "rwm", Allow: true},
				{Type: 'b', Major: 8, Minor: -1, Permissions: "r", Allow: true},
				{Type: 'c', Major: 136, Minor: -1, Permissions: "rwm", Allow: true},
				{Type: 'a', Major: -1, Minor: -1, Permissions: "m", Allow: false},
			}},
		},
		{
			name:    "device bad type",
			in:      &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Type: "p", Access: "r"}}},
			wantErr: "invalid type",
		},
		{
			name:    "device bad access",
			in:      &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Type: "c", Access: "rx"}}},
			wantErr: "invalid access",
		},
		{
			name:    "device repeated access",
			in:      &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Type: "c", Access: "rr"}}},
			wantErr: "invalid access",
		},
		{
			name:    "device bad major",
			in:      &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Type: "c", Major: ptr[int64](-2)}}},
			wantErr: "invalid major",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := convertResources(tt.in, tt.v2)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("convertResources: err = %v, want error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("convertResources: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("convertResources:\n got  %+v\n want %+v", got, tt.want)
			}
		})
	}
}

func TestNeededV2Controllers(t *testing.T) {
	tests := []struct {
		name string
		in   *specs.LinuxResources
		want []string
	}{
		{name: "nothing", in: nil, want: nil},
		{name: "devices only", in: &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Access: "rwm"}}}, want: nil},
		{name: "memory", in: &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](1)}}, want: []string{"memory"}},
		{name: "cpu and cpuset", in: &specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: ptr[uint64](2), Cpus: "0"}}, want: []string{"cpu", "cpuset"}},
		{name: "pids io hugetlb rdma", in: &specs.LinuxResources{
			Pids:           &specs.LinuxPids{Limit: ptr[int64](1)},
			BlockIO:        &specs.LinuxBlockIO{Weight: ptr[uint16](100)},
			HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB"}},
			Rdma:           map[string]specs.LinuxRdma{"x": {}},
		}, want: []string{"hugetlb", "io", "pids", "rdma"}},
		{name: "unified", in: &specs.LinuxResources{Unified: map[string]string{
			"misc.max": "x 1", "cgroup.max.depth": "2", "memory.high": "1",
		}}, want: []string{"memory", "misc"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := convertResources(tt.in, true)
			if err != nil {
				t.Fatal(err)
			}
			if got := neededV2Controllers(res); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("neededV2Controllers = %v, want %v", got, tt.want)
			}
		})
	}
}
