package container

import specs "github.com/opencontainers/runtime-spec/specs-go"

func devRule(typ string, major, minor int64, access string) specs.LinuxDeviceCgroup {
	r := specs.LinuxDeviceCgroup{Allow: true, Type: typ, Access: access}
	if major >= 0 {
		r.Major = &major
	}
	if minor >= 0 {
		r.Minor = &minor
	}
	return r
}

// defaultAllowedDevices are always allowed in the device cgroup, after the
// spec's own rules (so they win): mknod of any node, the default devices,
// the console, ptys and tun, as every container runtime does.
var defaultAllowedDevices = []specs.LinuxDeviceCgroup{
	devRule("c", -1, -1, "m"),
	devRule("b", -1, -1, "m"),
	devRule("c", 1, 3, "rwm"),    // null
	devRule("c", 1, 8, "rwm"),    // random
	devRule("c", 1, 7, "rwm"),    // full
	devRule("c", 5, 0, "rwm"),    // tty
	devRule("c", 1, 5, "rwm"),    // zero
	devRule("c", 1, 9, "rwm"),    // urandom
	devRule("c", 5, 1, "rwm"),    // console
	devRule("c", 136, -1, "rwm"), // pts
	devRule("c", 5, 2, "rwm"),    // ptmx
	devRule("c", 10, 200, "rwm"), // tun
}

// cgroupResources is the spec's resources with the default device rules
// appended; the spec itself is not changed.
func cgroupResources(r *specs.LinuxResources) *specs.LinuxResources {
	var out specs.LinuxResources
	if r != nil {
		out = *r
	}
	out.Devices = append(append([]specs.LinuxDeviceCgroup{}, out.Devices...), defaultAllowedDevices...)
	return &out
}
