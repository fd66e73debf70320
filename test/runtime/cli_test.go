//go:build integration

package runtime_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
)

// TestSpecCommand checks `spec`: it writes a usable config.json once and
// refuses to overwrite it.
func TestSpecCommand(t *testing.T) {
	t.Parallel()
	c := newCtr(t) // newCtr has run `spec --bundle`
	if c.spec.Version == "" || c.spec.Root == nil || c.spec.Root.Path != "rootfs" || c.spec.Linux == nil {
		t.Errorf("spec wrote an incomplete config: %+v", c.spec)
	}
	r := c.rt(runOpts{}, "spec", "--bundle", c.bundle)
	if r.code == 0 {
		t.Errorf("a second spec overwrote config.json: %v", r)
	}
	matchStderr(t, r, `(?i)exists`)

	// In the working directory when --bundle is not given.
	dir := t.TempDir()
	if r := c.rt(runOpts{dir: dir}, "spec"); r.code != 0 {
		t.Fatalf("%v", r)
	}
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatalf("config.json: %v", err)
	}
}

// TestFeatures checks that `features` describes what the tests use.
func TestFeatures(t *testing.T) {
	t.Parallel()
	c := newCtr(t)
	r := c.rt(runOpts{}, "features")
	if r.code != 0 {
		t.Fatalf("%v", r)
	}
	var f features.Features
	if err := json.Unmarshal([]byte(r.stdout), &f); err != nil {
		t.Fatalf("features is not JSON: %v\n%v", err, r)
	}
	if f.OCIVersionMin == "" || f.OCIVersionMax == "" {
		t.Errorf("features lacks ociVersionMin/Max: %s", r.stdout)
	}
	for _, h := range []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"} {
		if !slices.Contains(f.Hooks, h) {
			t.Errorf("features.hooks lacks %s: %q", h, f.Hooks)
		}
	}
	for _, o := range []string{"bind", "rbind", "ro", "nosuid", "nodev"} {
		if !slices.Contains(f.MountOptions, o) {
			t.Errorf("features.mountOptions lacks %s", o)
		}
	}
	if f.Linux == nil {
		t.Fatalf("features has no linux section: %s", r.stdout)
	}
	for _, ns := range []string{"pid", "network", "mount", "ipc", "uts", "user", "cgroup"} {
		if !slices.Contains(f.Linux.Namespaces, ns) {
			t.Errorf("features.linux.namespaces lacks %s: %q", ns, f.Linux.Namespaces)
		}
	}
	if f.Linux.Seccomp == nil || f.Linux.Seccomp.Enabled == nil || !*f.Linux.Seccomp.Enabled {
		t.Errorf("features: seccomp not enabled")
	} else {
		for _, a := range []string{"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL_PROCESS"} {
			if !slices.Contains(f.Linux.Seccomp.Actions, a) {
				t.Errorf("features.linux.seccomp.actions lacks %s", a)
			}
		}
	}
}

// TestLogFlags checks --log and --log-format: errors go to the log file in
// the chosen format (and, with a log file, still to stderr).
func TestLogFlags(t *testing.T) {
	t.Parallel()
	for _, format := range []string{"json", "text"} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			c := newCtr(t)
			logFile := filepath.Join(t.TempDir(), "runtime.log")
			r := c.rt(runOpts{}, "--log", logFile, "--log-format", format, "state", c.id)
			if r.code == 0 {
				t.Fatalf("state of an unknown container succeeded: %v", r)
			}
			matchStderr(t, r, `does not exist`)
			data, err := os.ReadFile(logFile)
			if err != nil {
				t.Fatalf("log file: %v", err)
			}
			line := strings.TrimSpace(string(data))
			if format == "text" {
				if !strings.Contains(line, "level=error") || !strings.Contains(line, "does not exist") {
					t.Errorf("text log line %q", line)
				}
				return
			}
			var entry struct {
				Level string `json:"level"`
				Msg   string `json:"msg"`
				Time  string `json:"time"`
			}
			if err := json.Unmarshal([]byte(line), &entry); err != nil {
				t.Fatalf("log line %q is not JSON: %v", line, err)
			}
			if entry.Level != "error" || !strings.Contains(entry.Msg, "does not exist") {
				t.Errorf("log entry %+v", entry)
			}
			if _, err := time.Parse(time.RFC3339Nano, entry.Time); err != nil {
				t.Errorf("log time %q: %v", entry.Time, err)
			}
		})
	}
	t.Run("bad format", func(t *testing.T) {
		t.Parallel()
		c := newCtr(t)
		r := c.rt(runOpts{}, "--log-format", "xml", "list")
		if r.code == 0 {
			t.Errorf("--log-format xml accepted: %v", r)
		}
		matchStderr(t, r, `(?i)log-format|format`)
	})
}
