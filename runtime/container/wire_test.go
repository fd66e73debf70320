package container

import (
	"os"
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// fullInitConfig sets every field the wire format carries.
func fullInitConfig() *initConfig {
	umask := uint32(0o027)
	timeout := 3
	mode := os.FileMode(0o640)
	uid, gid := uint32(7), uint32(8)
	return &initConfig{
		Type: "init", ID: "c1", Rootfs: "/b/rootfs", Bundle: "/b",
		NoPivot: true, NoNewKeyring: true, NoProcess: false,
		NewUserNS: true, NewMountNS: true, NewNetNS: true, NewCgroupNS: true, NewUTSNS: true,
		ConsoleFd: 9, FifoFd: -1, PreserveFds: 2,
		CgroupPaths: map[string]string{"memory": "/sys/fs/cgroup/memory/x", "": "/sys/fs/cgroup/unified/x"},
		IDMapFds:    map[int]int{3: 12, 0: 11},
		State: &specs.State{Version: specs.Version, ID: "c1", Status: specs.StateCreated, Pid: 42, Bundle: "/b",
			Annotations: map[string]string{"a": "b"}},
		Process: &specs.Process{
			Terminal: true, ConsoleSize: &specs.Box{Height: 24, Width: 80},
			User: specs.User{UID: 1000, GID: 1000, Umask: &umask, AdditionalGids: []uint32{10, 20}},
			Args: []string{"sh", "-c", "echo hi"}, Env: []string{"PATH=/bin", "A="}, Cwd: "/work",
			Capabilities: &specs.LinuxCapabilities{
				Bounding: []string{"CAP_CHOWN"}, Effective: []string{}, Inheritable: nil,
				Permitted: []string{"CAP_CHOWN", "CAP_KILL"}, Ambient: []string{"CAP_KILL"},
			},
			Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 512}},
			NoNewPrivileges: true, ApparmorProfile: "prof", SelinuxLabel: "lbl",
			IOPriority: &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_BE, Priority: 3},
		},
		Spec: &specs.Spec{
			Hostname: "h", Domainname: "d", Root: &specs.Root{Readonly: true},
			Mounts: []specs.Mount{
				{Destination: "/proc", Type: "proc", Source: "proc"},
				{Destination: "/data", Type: "bind", Source: "/x", Options: []string{"rbind", "ro", "idmap"}},
			},
			Hooks: &specs.Hooks{
				CreateRuntime:   []specs.Hook{{Path: "/bin/a", Args: []string{"a"}, Env: []string{"E=1"}, Timeout: &timeout}},
				CreateContainer: []specs.Hook{{Path: "/bin/b"}},
				StartContainer:  []specs.Hook{{Path: "/bin/c", Args: []string{"c", "x"}}},
			},
			Linux: &specs.Linux{
				Devices:           []specs.LinuxDevice{{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229, FileMode: &mode, UID: &uid, GID: &gid}, {Path: "/dev/x", Type: "b", Major: 8, Minor: 1}},
				MaskedPaths:       []string{"/proc/kcore"},
				ReadonlyPaths:     []string{"/proc/sys"},
				Sysctl:            map[string]string{"net.ipv4.ip_forward": "1"},
				RootfsPropagation: "rslave",
				MountLabel:        "ml",
				Personality:       &specs.LinuxPersonality{Domain: specs.PerLinux32},
				Seccomp:           &specs.LinuxSeccomp{},
			},
		},
	}
}

func TestWireRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  *initConfig
	}{
		{"full", fullInitConfig()},
		{"minimal exec", &initConfig{Type: "exec", ID: "x", ConsoleFd: -1, FifoFd: -1, Process: &specs.Process{Args: []string{"true"}}}},
		{"no process", &initConfig{Type: "init", NoProcess: true, Spec: &specs.Spec{Root: &specs.Root{}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeInitConfig(encodeInitConfig(tc.cfg))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.cfg) {
				t.Fatalf("round trip changed the configuration:\n got %+v\nwant %+v", got, tc.cfg)
			}
		})
	}
}

func TestWireRejectsDamage(t *testing.T) {
	data := encodeInitConfig(fullInitConfig())
	for _, n := range []int{0, 1, len(data) / 2, len(data) - 1} {
		if _, err := decodeInitConfig(data[:n]); err == nil {
			t.Errorf("a configuration cut to %d of %d bytes was accepted", n, len(data))
		}
	}
	if _, err := decodeInitConfig(append(append([]byte{}, data...), 0)); err == nil {
		t.Error("trailing garbage accepted")
	}
	bad := append([]byte{}, data...)
	bad[0] = wireVersion + 1
	if _, err := decodeInitConfig(bad); err == nil {
		t.Error("a configuration of another version was accepted")
	}
}

func BenchmarkWireDecode(b *testing.B) {
	data := encodeInitConfig(fullInitConfig())
	for b.Loop() {
		if _, err := decodeInitConfig(data); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzWireDecode: arbitrary bytes never panic and never allocate without
// bound (lengths are checked against what is left).
func FuzzWireDecode(f *testing.F) {
	f.Add(encodeInitConfig(fullInitConfig()))
	f.Add([]byte{1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := decodeInitConfig(data)
		if err != nil {
			return
		}
		// What decodes survives a round trip unchanged.
		again, err := decodeInitConfig(encodeInitConfig(cfg))
		if err != nil {
			t.Fatalf("re-encoded configuration does not decode: %v", err)
		}
		if !reflect.DeepEqual(again, cfg) {
			t.Fatalf("round trip changed a decoded configuration")
		}
	})
}
