package cgroup

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// realV2Root returns the controller-less unified hierarchy of a hybrid
// host, driven as v2 through the forced mode: it still runs BPF device
// programs, and with no controller to enable nothing outside the test's
// own subtree is written. (On a v2 host, Apply could enable controllers in
// the root's cgroup.subtree_control, so the test does not run there.)
func realV2Root(t *testing.T) string {
	t.Helper()
	requireRoot(t)
	if Mode() != ModeHybrid {
		t.Skipf("needs a hybrid host, this one is %q", Mode())
	}
	root := filepath.Join(DefaultRoot, "unified")
	if ctrls, err := readList(root, "cgroup.controllers"); err != nil {
		t.Skip(err)
	} else if slices.ContainsFunc(ctrls, func(c string) bool { return slices.Contains(v2DefaultControllers, c) }) {
		t.Skipf("the unified hierarchy has controllers %v that Apply would enable at its root", ctrls)
	}
	return root
}

func TestV2RealDeviceFilter(t *testing.T) {
	root := realV2Root(t)
	parent := testParent(t)
	sh := startChild(t, "sh", "-c", probeScript)
	if got := sh.probe(t); got != "null:w:ok null:r:ok zero:w:ok zero:r:ok" {
		t.Fatalf("before: %s", got)
	}

	opts := Options{Root: root, Parent: parent, mode: ModeV2}
	m, err := New("", "ctr", nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(sh.pid()); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, parent, "ctr")
	if got := procCgroups(t, sh.pid())[""]; got != parent+"/ctr" {
		t.Fatalf("unified cgroup of the child = %q, want %q", got, parent+"/ctr")
	}
	if pids, err := m.Pids(); err != nil || !slices.Equal(pids, []int{sh.pid()}) {
		t.Fatalf("Pids() = %v, %v", pids, err)
	}

	// Deny-by-default program allowing only /dev/zero: /dev/null is refused.
	if err := m.Set(&specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: ptr[int64](1), Minor: ptr[int64](5), Access: "rwm"},
	}}); err != nil {
		t.Fatal(err)
	}
	if got := sh.probe(t); got != "null:w:denied null:r:denied zero:w:ok zero:r:ok" {
		t.Fatalf("with /dev/null denied: %s", got)
	}

	// The program is replaced on update: now /dev/null is allowed for
	// writing only, /dev/zero for reading only.
	m2, err := Load(m.Paths(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := m2.Set(&specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: ptr[int64](1), Minor: ptr[int64](3), Access: "w"},
		{Allow: true, Type: "c", Major: ptr[int64](1), Minor: ptr[int64](5), Access: "r"},
	}}); err != nil {
		t.Fatal(err)
	}
	if got := sh.probe(t); got != "null:w:ok null:r:denied zero:w:denied zero:r:ok" {
		t.Fatalf("after update: %s", got)
	}

	// An update without device rules leaves the program alone.
	if err := m2.Set(&specs.LinuxResources{}); err != nil {
		t.Fatal(err)
	}
	if got := sh.probe(t); got != "null:w:ok null:r:denied zero:w:denied zero:r:ok" {
		t.Fatalf("after an update without rules: %s", got)
	}

	// Allow everything again.
	if err := m2.Set(&specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}}); err != nil {
		t.Fatal(err)
	}
	if got := sh.probe(t); got != "null:w:ok null:r:ok zero:w:ok zero:r:ok" {
		t.Fatalf("after allow-all: %s", got)
	}

	sh.kill(t)
	if err := m2.Destroy(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("%s still there after Destroy: %v", dir, err)
	}
}
