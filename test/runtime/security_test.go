//go:build integration

package runtime_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// allCaps lists the capability names by number, up to the kernel's last.
func allCaps(t *testing.T) []string {
	t.Helper()
	names := []string{
		"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
		"CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
		"CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
		"CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
		"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
		"CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
		"CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
		"CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
		"CAP_CHECKPOINT_RESTORE",
	}
	data, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		t.Fatal(err)
	}
	last, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	names = names[:min(last+1, len(names))]
	// Only what this host's root may hold: a capability outside our own
	// bounding set (CAP_SYS_RESOURCE here) cannot be given to anyone.
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	var bnd uint64
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "CapBnd:"); ok {
			bnd, err = strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	var out []string
	for i, n := range names {
		if bnd&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return out
}

// fileHash returns the SHA-256 of the file at path.
func fileHash(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// privateRuntime copies the runtime under test into a temporary directory,
// so that a successful attack on it cannot damage the binary other tests
// use.
func privateRuntime(t *testing.T) string {
	t.Helper()
	in, err := os.Open(runtimeBin)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	path := filepath.Join(t.TempDir(), "berth-runtime")
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestOverwriteRuntimeBinary is a CVE-2019-5736 style attack: while the
// container is only created, its pid 1 is the runtime's init, so
// /proc/1/exe inside the container is the host's runtime binary. A process
// exec'd into the container must not be able to open it for writing, with
// default or with all capabilities, and the binary must stay unchanged.
func TestOverwriteRuntimeBinary(t *testing.T) {
	t.Parallel()
	for _, privileged := range []bool{false, true} {
		t.Run(fmt.Sprintf("all caps=%v", privileged), func(t *testing.T) {
			t.Parallel()
			c := newCtr(t).args("sleep", "60")
			if privileged {
				caps := allCaps(t)
				c.spec.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
			}
			c.bin = privateRuntime(t)
			before := fileHash(t, c.bin)
			c.createOK()
			st := c.state()
			exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", st.Pid))
			t.Logf("init (pid %d) runs %q; the runtime is %s", st.Pid, exe, c.bin)

			var flags []string
			if privileged {
				caps := allCaps(t)
				p := specs.Process{
					Args: []string{"write", "/proc/1/exe", "garbage"},
					Env:  []string{"PATH=/bin"},
					Cwd:  "/",
					Capabilities: &specs.LinuxCapabilities{
						Bounding: caps, Effective: caps, Permitted: caps, Inheritable: caps,
					},
				}
				data, err := json.Marshal(p)
				if err != nil {
					t.Fatal(err)
				}
				path := filepath.Join(t.TempDir(), "process.json")
				if err := os.WriteFile(path, data, 0o644); err != nil {
					t.Fatal(err)
				}
				flags = []string{"-p", path}
			}
			var r result
			if privileged {
				r = c.exec(flags)
			} else {
				r = c.exec(nil, "write", "/proc/1/exe", "garbage")
			}
			if r.code == 0 {
				t.Errorf("writing /proc/1/exe (the runtime binary) from inside the container succeeded: %v", r)
			} else if !strings.Contains(r.stderr, "/proc/1/exe") {
				t.Errorf("the attack did not get to run (it must fail at the write): %v", r)
			} else {
				t.Logf("write /proc/1/exe failed as it must: %q", strings.TrimSpace(r.stderr))
			}
			if after := fileHash(t, c.bin); after != before {
				t.Fatalf("the host's runtime binary changed: sha256 %s → %s", before, after)
			}
			// The runtime still works, and the init still waits.
			if r := c.exec(nil, "true"); r.code != 0 {
				t.Errorf("exec after the attack: %v", r)
			}
			if st := c.state(); st.Status != "created" {
				t.Errorf("status after the attack: %q, want created", st.Status)
			}
		})
	}
}

// parseFds parses the fds applet's output into descriptor numbers.
func parseFds(out string) []int {
	var fds []int
	for line := range strings.Lines(out) {
		f, _, _ := strings.Cut(line, " ")
		if n, err := strconv.Atoi(f); err == nil {
			fds = append(fds, n)
		}
	}
	return fds
}

// noCgroupFds keeps the Go runtime of testbin (Go 1.25 or later) from
// opening cpu.cfs_quota_us and cpu.cfs_period_us at start-up for its
// cgroup-aware GOMAXPROCS: those descriptors are testbin's own, and the fds
// applet would list them.
const noCgroupFds = "GODEBUG=containermaxprocs=0"

// TestNoLeakedFds is the CVE-2024-21626 check: the container's process and
// exec'd processes must hold only stdio, no descriptor of the runtime's
// (which could lead to the host's file system).
func TestNoLeakedFds(t *testing.T) {
	t.Parallel()
	t.Run("init", func(t *testing.T) {
		t.Parallel()
		c := newCtr(t).args("fds")
		c.spec.Process.Env = append(c.spec.Process.Env, noCgroupFds)
		out := c.runToEnd()
		if fds := parseFds(out); fmt.Sprint(fds) != "[0 1 2]" {
			t.Errorf("descriptors of the container process:\n%s\nwant only 0, 1 and 2", out)
		}
	})
	t.Run("exec", func(t *testing.T) {
		t.Parallel()
		c := newCtr(t)
		c.startLong()
		r := c.exec([]string{"--env", noCgroupFds}, "fds")
		if r.code != 0 {
			t.Fatalf("%v", r)
		}
		out := r.stdout
		if fds := parseFds(out); fmt.Sprint(fds) != "[0 1 2]" {
			t.Errorf("descriptors of an exec'd process:\n%s\nwant only 0, 1 and 2", out)
		}
		if out := c.execOK("readlink", "/proc/self/cwd"); out != "/\n" {
			t.Errorf("cwd of an exec'd process: %q, want /", out)
		}
	})
}

// TestCwdLeakedFd sets process.cwd to /proc/self/fd/N: if the runtime
// leaked a descriptor of a host directory into the init, the process
// would start outside the container. The runtime must refuse, or the
// process's working directory must be inside the container.
func TestCwdLeakedFd(t *testing.T) {
	t.Parallel()
	// checkPwd judges the output of pwd run with a /proc/self/fd cwd.
	checkPwd := func(t *testing.T, out string) {
		t.Helper()
		if strings.Contains(out, "(unreachable)") || !strings.HasPrefix(out, "/") {
			t.Errorf("process started with a working directory outside the container: pwd = %q", out)
		}
	}
	for fd := 3; fd <= 9; fd++ {
		cwd := "/proc/self/fd/" + strconv.Itoa(fd)
		t.Run(fmt.Sprintf("init fd %d", fd), func(t *testing.T) {
			t.Parallel()
			c := newCtr(t).args("pwd")
			c.spec.Process.Cwd = cwd
			c.writeSpec()
			if r := c.create(); r.code != 0 {
				t.Logf("refused: %s", strings.TrimSpace(c.errOutput()))
				assertNothingLeft(t, c.root, c.id, c.bundle)
				return
			}
			c.must("start")
			c.waitStatus("stopped")
			out := c.output()
			t.Logf("pwd: %q, stderr %q", out, c.errOutput())
			if out != "" {
				checkPwd(t, out)
			}
		})
		t.Run(fmt.Sprintf("exec fd %d", fd), func(t *testing.T) {
			t.Parallel()
			c := newCtr(t)
			c.startLong()
			r := c.exec([]string{"--cwd", cwd}, "pwd")
			t.Logf("exec --cwd %s pwd: exit %d, stdout %q, stderr %q", cwd, r.code, r.stdout, strings.TrimSpace(r.stderr))
			if r.code == 0 {
				checkPwd(t, r.stdout)
			}
		})
	}
}
