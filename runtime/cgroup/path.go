package cgroup

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// DefaultParent is berth's own subtree for containers whose cgroupsPath is
// empty or relative.
const DefaultParent = "/berth"

// defaultSlice is the slice used by the systemd form when none is given.
const defaultSlice = "system.slice"

// resolvePath turns an OCI linux.cgroupsPath into a clean absolute path
// relative to the hierarchy root (see the package documentation for the
// rules). parent must be absolute.
func resolvePath(cgroupsPath, containerID, parent string) (string, error) {
	if parent == "" {
		parent = DefaultParent
	}
	if !path.IsAbs(parent) {
		return "", fmt.Errorf("cgroup parent %q must be an absolute path", parent)
	}
	parent = path.Clean(parent)

	var p string
	switch {
	case cgroupsPath == "":
		if err := checkName(containerID); err != nil {
			return "", fmt.Errorf("container id %q: %w", containerID, err)
		}
		p = path.Join(parent, containerID)
	case isSystemdPath(cgroupsPath):
		var err error
		if p, err = systemdPath(cgroupsPath); err != nil {
			return "", err
		}
	case path.IsAbs(cgroupsPath):
		p = path.Clean(cgroupsPath)
	default:
		p = path.Join(parent, cgroupsPath)
		if p != parent && !strings.HasPrefix(p, strings.TrimSuffix(parent, "/")+"/") {
			return "", fmt.Errorf("relative cgroups path %q escapes the parent %q", cgroupsPath, parent)
		}
	}
	if p == "/" {
		return "", fmt.Errorf("cgroups path %q resolves to the root cgroup", cgroupsPath)
	}
	return p, nil
}

// checkName validates a single path component.
func checkName(name string) error {
	switch {
	case name == "":
		return errors.New("empty name")
	case name == "." || name == "..":
		return errors.New("invalid name")
	case strings.ContainsRune(name, '/'):
		return errors.New("name contains '/'")
	case strings.ContainsRune(name, 0):
		return errors.New("name contains NUL")
	}
	return nil
}

// isSystemdPath tells whether p has the systemd "slice:prefix:name" form.
// Absolute paths are always cgroupfs paths, even if they contain colons.
func isSystemdPath(p string) bool {
	return !strings.HasPrefix(p, "/") && strings.Count(p, ":") == 2
}

// systemdPath maps "slice:prefix:name" to the cgroupfs path systemd would
// use: "<expanded slice>/<prefix>-<name>.scope". An empty slice means
// system.slice, an empty prefix gives "<name>.scope", and a name that is
// itself a slice ("x.slice") is placed below the slice without a scope.
func systemdPath(p string) (string, error) {
	slice, prefix, name := splitSystemd(p)
	if slice == "" {
		slice = defaultSlice
	}
	sliceDir, err := expandSlice(slice)
	if err != nil {
		return "", fmt.Errorf("cgroups path %q: %w", p, err)
	}
	if err := checkName(name); err != nil {
		return "", fmt.Errorf("cgroups path %q: unit name: %w", p, err)
	}
	if strings.ContainsRune(prefix, '/') {
		return "", fmt.Errorf("cgroups path %q: prefix contains '/'", p)
	}
	unit := name
	if !strings.HasSuffix(name, ".slice") {
		if prefix != "" {
			unit = prefix + "-" + name
		}
		unit += ".scope"
	}
	return path.Join(sliceDir, unit), nil
}

func splitSystemd(p string) (slice, prefix, name string) {
	slice, rest, _ := strings.Cut(p, ":")
	prefix, name, _ = strings.Cut(rest, ":")
	return slice, prefix, name
}

// expandSlice turns a systemd slice name into its cgroupfs path, the way
// systemd nests slices: "a-b-c.slice" -> "/a.slice/a-b.slice/a-b-c.slice",
// "-.slice" (the root slice) -> "/".
func expandSlice(slice string) (string, error) {
	const suffix = ".slice"
	base, ok := strings.CutSuffix(slice, suffix)
	if !ok || strings.ContainsRune(slice, '/') {
		return "", fmt.Errorf("invalid slice name %q", slice)
	}
	if base == "-" {
		return "/", nil
	}
	if base == "" || strings.HasPrefix(base, "-") || strings.HasSuffix(base, "-") || strings.Contains(base, "--") {
		return "", fmt.Errorf("invalid slice name %q", slice)
	}
	var b strings.Builder
	prefix := ""
	for part := range strings.SplitSeq(base, "-") {
		prefix += part
		b.WriteString("/" + prefix + suffix)
		prefix += "-"
	}
	return b.String(), nil
}
