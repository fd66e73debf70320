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
// appended (so that a leading "deny all" does not take /dev/null away), as
// runc does; unlike runc, an explicit deny of a default device in the spec
// is honoured: that access is left out of the default rule. The spec itself
// is not changed.
func cgroupResources(r *specs.LinuxResources) *specs.LinuxResources {
	var out specs.LinuxResources
	if r != nil {
		out = *r
	}
	rules := append([]specs.LinuxDeviceCgroup{}, out.Devices...)
	for _, d := range defaultAllowedDevices {
		access := d.Access
		for _, rule := range out.Devices {
			if !rule.Allow && !isDenyAll(rule) && covers(rule, d) {
				access = removeAccess(access, rule.Access)
			}
		}
		if access != "" {
			d.Access = access
			rules = append(rules, d)
		}
	}
	out.Devices = rules
	return &out
}

func isDenyAll(r specs.LinuxDeviceCgroup) bool {
	return (r.Type == "" || r.Type == "a") && r.Major == nil && r.Minor == nil
}

// covers reports whether rule applies to every device that d names.
func covers(rule, d specs.LinuxDeviceCgroup) bool {
	if rule.Type != "" && rule.Type != "a" && rule.Type != d.Type {
		return false
	}
	same := func(r, x *int64) bool { return r == nil || *r < 0 || (x != nil && *x == *r) }
	return same(rule.Major, d.Major) && same(rule.Minor, d.Minor)
}

func removeAccess(access, remove string) string {
	if remove == "" {
		remove = "rwm"
	}
	var b []byte
	for i := 0; i < len(access); i++ {
		if !containsByte(remove, access[i]) {
			b = append(b, access[i])
		}
	}
	return string(b)
}

func containsByte(s string, c byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return true
		}
	}
	return false
}
