//go:build integration

package runtime_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// hookScript records, for the stage named by $1, its argv in $2/STAGE.args
// and its stdin in $2/STAGE.state, and appends the stage to $2/order.
const hookScript = `#!/bin/sh
stage=$1 dir=$2
printf '%s\n' "$0" "$@" > "$dir/$stage.args"
cat > "$dir/$stage.state"
echo "$stage" >> "$dir/order"
`

// hookRecorder makes hooks that run hookScript with /bin/sh on the host.
type hookRecorder struct {
	dir    string // where the hooks write
	script string
	env    []string
}

func newHookRecorder(t *testing.T) *hookRecorder {
	t.Helper()
	_, err := os.Stat("/bin/sh")
	require(t, err == nil, "/bin/sh on the host for hook scripts")
	dir := t.TempDir()
	h := &hookRecorder{dir: dir, script: filepath.Join(dir, "hook.sh"), env: []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}}
	if err := os.WriteFile(h.script, []byte(hookScript), 0o755); err != nil {
		t.Fatal(err)
	}
	return h
}

// hook returns a hook that records under the stage name.
func (h *hookRecorder) hook(stage string) specs.Hook {
	return specs.Hook{Path: "/bin/sh", Args: []string{"sh", h.script, stage, h.dir}, Env: h.env}
}

// order returns the stages recorded so far.
func (h *hookRecorder) order(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(h.dir, "order"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(data))
}

// state returns the state JSON a stage received on stdin.
func (h *hookRecorder) state(t *testing.T, stage string) specs.State {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(h.dir, stage+".state"))
	if err != nil {
		t.Fatalf("%s hook: %v", stage, err)
	}
	var st specs.State
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatalf("%s hook: state on stdin is not JSON: %v\n%s", stage, err, data)
	}
	return st
}

// args returns the argv a stage was run with.
func (h *hookRecorder) args(t *testing.T, stage string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(h.dir, stage+".args"))
	if err != nil {
		t.Fatalf("%s hook: %v", stage, err)
	}
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

// TestHooks runs a container with a hook of every kind and checks their
// order, arguments and the state they receive.
func TestHooks(t *testing.T) {
	t.Parallel()
	c := newCtr(t)
	h := newHookRecorder(t)
	c.spec.Root.Readonly = false
	c.spec.Annotations = map[string]string{"it.berth.test": "hooks"}
	c.spec.Hooks = &specs.Hooks{
		//lint:ignore SA1019 deprecated, still supported
		Prestart:        []specs.Hook{h.hook("prestart")},
		CreateRuntime:   []specs.Hook{h.hook("createRuntime")},
		CreateContainer: []specs.Hook{h.hook("createContainer")},
		// Runs in the container: the path resolves in its rootfs.
		StartContainer: []specs.Hook{{Path: "/bin/testbin", Args: []string{"write", "/hookout", "x"}}},
		Poststart:      []specs.Hook{h.hook("poststart")},
		Poststop:       []specs.Hook{h.hook("poststop")},
	}
	c.args("sleep", "60")
	c.createOK()
	st := c.state()

	// prestart hooks run when start is called, before the user process
	// (runtime-spec 1.0 and the validation suite; docs/runtime.md).
	if got, want := h.order(t), []string{"createRuntime", "createContainer"}; !slices.Equal(got, want) {
		t.Errorf("hooks run by create: %q, want %q", got, want)
	}
	if _, err := os.Stat(filepath.Join(c.bundle, "rootfs/hookout")); err == nil {
		t.Errorf("startContainer hook ran at create")
	}
	c.must("start")
	if got, want := h.order(t), []string{"createRuntime", "createContainer", "prestart", "poststart"}; !slices.Equal(got, want) {
		t.Errorf("hooks run by create and start: %q, want %q", got, want)
	}
	c.waitStatus("running")
	if out := c.execOK("cat", "/hookout"); out != "x" {
		t.Errorf("startContainer hook output inside the container: %q, want %q", out, "x")
	}
	c.must("kill", "KILL")
	c.waitStatus("stopped")
	if got := h.order(t); slices.Contains(got, "poststop") {
		t.Errorf("poststop ran before delete: %q", got)
	}
	c.must("delete")
	want := []string{"createRuntime", "createContainer", "prestart", "poststart", "poststop"}
	if got := h.order(t); !slices.Equal(got, want) {
		t.Errorf("hook order %q, want %q", got, want)
	}

	// Before start, runc reports "creating"; "created" is defensible too
	// (the environment exists), so both are accepted.
	wantStatus := map[string][]specs.ContainerState{
		"prestart": {"creating", "created"}, "createRuntime": {"creating", "created"}, "createContainer": {"creating", "created"},
		"poststart": {"running"}, "poststop": {"stopped"},
	}
	for _, stage := range want {
		hs := h.state(t, stage)
		if hs.ID != c.id || hs.Bundle != c.bundle || !slices.Contains(wantStatus[stage], hs.Status) {
			t.Errorf("%s hook state: id %q bundle %q status %q; want %s %s %q", stage, hs.ID, hs.Bundle, hs.Status, c.id, c.bundle, wantStatus[stage])
		}
		if stage != "poststop" && hs.Pid != st.Pid {
			t.Errorf("%s hook state: pid %d, want the init's %d", stage, hs.Pid, st.Pid)
		}
		if hs.Version == "" {
			t.Errorf("%s hook state has no ociVersion", stage)
		}
		if hs.Annotations["it.berth.test"] != "hooks" {
			t.Errorf("%s hook state lacks the annotations: %v", stage, hs.Annotations)
		}
		if got := h.args(t, stage); !slices.Equal(got, []string{h.script, stage, h.dir}) {
			t.Errorf("%s hook argv[0:] as seen by sh: %q, want %q", stage, got, []string{h.script, stage, h.dir})
		}
	}
	assertNothingLeft(t, c.root, c.id, c.bundle)
}

// TestFailingHooks checks what a failing hook of each kind does: a failure
// before the user process runs fails the operation and leaves nothing (or
// a stopped container); poststart and poststop failures are warnings.
func TestFailingHooks(t *testing.T) {
	t.Parallel()
	fail := specs.Hook{Path: "/bin/false", Args: []string{"false"}}
	tests := []struct {
		stage string
		set   func(h *specs.Hooks)
	}{
		{"createRuntime", func(h *specs.Hooks) { h.CreateRuntime = []specs.Hook{fail} }},
		{"createContainer", func(h *specs.Hooks) { h.CreateContainer = []specs.Hook{fail} }},
	}
	for _, tt := range tests {
		t.Run(tt.stage, func(t *testing.T) {
			t.Parallel()
			c := newCtr(t).args("sleep", "60")
			c.spec.Hooks = &specs.Hooks{}
			tt.set(c.spec.Hooks)
			r := c.create()
			if r.code == 0 {
				// Show what the runtime does with the hook instead.
				t.Fatalf("create with a failing %s hook succeeded (the hook did not run or its failure was ignored); start then gives: %v", tt.stage, c.cmd("start"))
			}
			r.stderr += c.errOutput()
			matchStderr(t, r, tt.stage)
			assertNothingLeft(t, c.root, c.id, c.bundle)
		})
	}

	// A failing prestart hook fails start, and the container is stopped and
	// deleted (lifecycle step 9): the user process never runs.
	t.Run("prestart", func(t *testing.T) {
		t.Parallel()
		c := newCtr(t).args("echo", "user process ran")
		//lint:ignore SA1019 deprecated, still supported
		c.spec.Hooks = &specs.Hooks{Prestart: []specs.Hook{fail}}
		c.createOK()
		r := c.cmd("start")
		if r.code == 0 {
			t.Fatalf("start with a failing prestart hook succeeded")
		}
		matchStderr(t, r, "prestart")
		if strings.Contains(c.output(), "user process ran") {
			t.Errorf("the user process ran although the prestart hook failed")
		}
		if st := c.cmd("state"); st.code == 0 {
			t.Errorf("the container still exists after a failing prestart hook: %v", st)
		}
		assertNothingLeft(t, c.root, c.id, c.bundle)
	})

	t.Run("startContainer", func(t *testing.T) {
		t.Parallel()
		c := newCtr(t).args("echo", "user process ran")
		c.spec.Hooks = &specs.Hooks{StartContainer: []specs.Hook{{Path: "/bin/false", Args: []string{"false"}}}}
		c.createOK()
		r := c.cmd("start")
		c.waitStatus("stopped")
		if strings.Contains(c.output(), "user process ran") {
			t.Errorf("the user process ran although the startContainer hook failed (start: %v)", r)
		}
		c.must("delete")
		assertNothingLeft(t, c.root, c.id, c.bundle)
	})

	t.Run("poststart", func(t *testing.T) {
		t.Parallel()
		c := newCtr(t)
		c.spec.Hooks = &specs.Hooks{Poststart: []specs.Hook{fail}}
		c.args("sleep", "60")
		c.createOK()
		r := c.cmd("start")
		if r.code != 0 {
			t.Errorf("start with a failing poststart hook failed: %v", r)
		}
		matchStderr(t, r, `poststart`)
		if st := c.state(); st.Status != "running" {
			t.Errorf("status after a failing poststart hook: %q, want running", st.Status)
		}
	})

	t.Run("poststop", func(t *testing.T) {
		t.Parallel()
		c := newCtr(t)
		h := newHookRecorder(t)
		// The failing hook comes first: the next one must still run.
		c.spec.Hooks = &specs.Hooks{Poststop: []specs.Hook{fail, h.hook("poststop")}}
		c.args("true")
		c.runToEnd()
		r := c.cmd("delete")
		if r.code != 0 {
			t.Errorf("delete with a failing poststop hook failed: %v", r)
		}
		matchStderr(t, r, `(?i)warn.*poststop|poststop.*`)
		if got := h.order(t); !slices.Equal(got, []string{"poststop"}) {
			t.Errorf("hooks after the failing poststop hook: %q, want the second poststop to run", got)
		}
		assertNothingLeft(t, c.root, c.id, c.bundle)
	})
}
