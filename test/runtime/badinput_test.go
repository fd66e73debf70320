//go:build integration

package runtime_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestBadInput checks that each kind of bad input makes the command fail
// with a clear message and leaves nothing behind: no state entry, no
// cgroup and no process.
func TestBadInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// setup prepares the bundle (the spec is written after it unless
		// raw is set) and returns the command line after --root.
		setup  func(c *ctr) []string
		raw    bool // setup writes config.json itself
		stderr string
	}{
		{
			name: "malformed config.json",
			raw:  true,
			setup: func(c *ctr) []string {
				if err := os.WriteFile(filepath.Join(c.bundle, "config.json"), []byte(`{"ociVersion": "1.2.0", "process": {`), 0o644); err != nil {
					c.t.Fatal(err)
				}
				return []string{"create", c.id}
			},
			stderr: `config\.json`,
		},
		{
			name: "missing config.json",
			raw:  true,
			setup: func(c *ctr) []string {
				os.Remove(filepath.Join(c.bundle, "config.json"))
				return []string{"create", c.id}
			},
			stderr: `config\.json`,
		},
		{
			name: "relative cwd",
			setup: func(c *ctr) []string {
				c.spec.Process.Cwd = "tmp"
				return []string{"create", c.id}
			},
			stderr: `cwd`,
		},
		{
			name: "missing rootfs",
			setup: func(c *ctr) []string {
				c.spec.Root.Path = "no-such-rootfs"
				return []string{"create", c.id}
			},
			stderr: `(?i)rootfs`,
		},
		{
			name: "missing executable by path",
			setup: func(c *ctr) []string {
				c.args("/bin/no-such-binary")
				return []string{"run", c.id}
			},
			stderr: `(?i)(executable file not found|no such file or directory).*|no-such-binary.*(not found|no such file)`,
		},
		{
			name: "missing executable in PATH",
			setup: func(c *ctr) []string {
				c.args("no-such-command")
				return []string{"run", c.id}
			},
			stderr: `(?i)executable file not found|no-such-command.*not found`,
		},
		{
			name: "missing bind mount source",
			setup: func(c *ctr) []string {
				c.spec.Mounts = append(c.spec.Mounts, mount("/data", "bind", "/nonexistent-berth-it-source", "bind", "ro"))
				return []string{"create", c.id}
			},
			stderr: `(?i)nonexistent-berth-it-source|no such file`,
		},
		{
			name: "empty id create",
			setup: func(c *ctr) []string {
				return []string{"create", ""}
			},
			stderr: `(?i)empty|invalid`,
		},
		{
			name: "id with path separators",
			setup: func(c *ctr) []string {
				return []string{"create", "../" + c.id}
			},
			stderr: `(?i)invalid`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newCtr(t).args("sleep", "60")
			args := tt.setup(c)
			if !tt.raw {
				c.writeSpec()
			}
			r := c.rt(c.stdio(), args...)
			if r.code == 0 {
				t.Fatalf("command succeeded: %v", r)
			}
			r.stderr += c.errOutput() // create's stderr is the container's
			if r.stderr == "" {
				t.Errorf("no message on stderr: %v", r)
			}
			matchStderr(t, r, tt.stderr)
			assertNothingLeft(t, c.root, c.id, c.bundle)
			if _, err := os.Lstat(filepath.Join(filepath.Dir(c.root), c.id)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("something was created outside --root: %v", err)
			}
		})
	}
}

// TestUnknownContainer checks every command that names a container with an
// id that does not exist, and with an empty id.
func TestUnknownContainer(t *testing.T) {
	t.Parallel()
	commands := [][]string{
		{"state"}, {"start"}, {"kill"}, {"kill", "KILL"}, {"delete"}, {"delete", "-f"},
		{"pause"}, {"resume"}, {"ps"}, {"exec", "true"}, {"events", "--stats"},
		{"update", "--memory", "64m"},
	}
	for _, cmd := range commands {
		for _, empty := range []bool{false, true} {
			name := cmd[0]
			if len(cmd) > 1 {
				name += " " + cmd[1]
			}
			if empty {
				name += " empty id"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				c := newCtr(t)
				id := c.id
				if empty {
					id = ""
				}
				// Flags go before the id; other arguments after it.
				var args []string
				switch {
				case len(cmd) > 1 && cmd[1][0] == '-':
					args = append(append(args, cmd...), id)
				default:
					args = append(append(args, cmd[0], id), cmd[1:]...)
				}
				if cmd[0] == "update" {
					args = []string{"update", "--memory", "64m", id}
				}
				r := c.rt(runOpts{}, args...)
				if name == "delete -f" {
					// As with runc, forced deletion of a container that
					// does not exist is not an error.
					if r.code != 0 {
						t.Errorf("delete -f of an unknown container failed: %v", r)
					}
					assertNothingLeft(t, c.root, c.id, c.bundle)
					return
				}
				if r.code == 0 {
					t.Fatalf("succeeded: %v", r)
				}
				if empty {
					matchStderr(t, r, `(?i)empty|invalid|does not exist`)
				} else {
					matchStderr(t, r, `does not exist`)
				}
				assertNothingLeft(t, c.root, c.id, c.bundle)
				if entries, _ := os.ReadDir(c.root); len(entries) > 0 {
					t.Errorf("--root is not empty: %v", entries)
				}
			})
		}
	}
}

// TestDuplicateID checks that a second create with an id in use fails and
// leaves the first container as it was.
func TestDuplicateID(t *testing.T) {
	t.Parallel()
	c := newCtr(t).args("sleep", "60")
	c.createOK()
	before := c.state()

	// A second bundle, so that a process it started would be recognisable.
	dup := newCtrIn(t, c.root).args("sleep", "60")
	dup.id = c.id
	dup.spec.Linux.CgroupsPath = c.spec.Linux.CgroupsPath
	r := dup.create()
	if r.code == 0 {
		t.Fatalf("create with a duplicate id succeeded: %v", r)
	}
	r.stderr += dup.errOutput()
	matchStderr(t, r, `already exists`)

	after := c.state()
	if after.Status != "created" || after.Pid != before.Pid || after.Bundle != c.bundle {
		t.Errorf("first container changed: before %+v, after %+v", before, after)
	}
	if procs := leftoverProcs("no-such-id", dup.bundle); len(procs) > 0 {
		t.Errorf("the failed create left processes: %v", procs)
	}
	if pids := cgroupPids(filepath.Dir(c.cgroupFile("pids", "x"))); len(pids) != 1 || pids[0] != before.Pid {
		t.Errorf("cgroup of the container holds %v, want only the init %d", pids, before.Pid)
	}
	if r := c.rt(runOpts{}, "delete", "-f", c.id); r.code != 0 {
		t.Fatalf("%v", r)
	}
	assertNothingLeft(t, c.root, c.id, c.bundle, dup.bundle)
}

// TestUnknownSignal checks that kill rejects bad signals without touching
// the container. SIGRTMAX+1 is past the last signal (64).
func TestUnknownSignal(t *testing.T) {
	t.Parallel()
	c := newCtr(t).args("sigcatch", "60")
	pid := c.startLong()
	c.waitOutput("ready\n")
	for _, sig := range []string{"SIGFOO", "FOO", "99", "-1", "SIGRTMAX+1"} {
		r := c.cmd("kill", sig)
		if r.code == 0 {
			t.Errorf("kill %s succeeded: %v", sig, r)
			continue
		}
		matchStderr(t, r, `(?i)unknown signal|invalid signal`)
	}
	st := c.state()
	if st.Status != "running" || st.Pid != pid {
		t.Errorf("after the bad kills: state %+v, want running with pid %d", st, pid)
	}
	if out := c.output(); out != "ready\n" {
		t.Errorf("the container received a signal: output %q", out)
	}
	c.must("kill", "KILL")
	c.waitStatus("stopped")
	c.must("delete")
	assertNothingLeft(t, c.root, c.id, c.bundle)
}
