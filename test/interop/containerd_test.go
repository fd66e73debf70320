//go:build integration

package interop_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// privateContainerd is a containerd started by a test with its own root,
// state, socket and configuration under dir.
type privateContainerd struct {
	sock string
	ctr  string
	d    *daemon
}

func (c *privateContainerd) ctrCmd(ctx context.Context, timeout time.Duration, ns string, args ...string) result {
	return runCmd(ctx, timeout, nil, c.ctr, append([]string{"--address", c.sock, "--namespace", ns}, args...)...)
}

type containerdBins struct{ containerd, ctr string }

// needContainerd finds containerd, ctr and the runc v2 shim, or reports the
// peer as unavailable.
func needContainerd(t *testing.T) containerdBins {
	t.Helper()
	b := containerdBins{
		containerd: lookBinary(t, "containerd", "containerd"),
		ctr:        lookBinary(t, "containerd", "ctr"),
	}
	lookBinary(t, "containerd", "containerd-shim-runc-v2")
	return b
}

// startContainerd starts a private containerd without the CRI plugin (the
// only one that would configure networks) and registers its shutdown:
// every task and container in every namespace is removed, containerd is
// stopped by its PID, and any shim of it still running is killed by PID.
func startContainerd(t *testing.T, ctx context.Context, bins containerdBins, dir string) *privateContainerd {
	t.Helper()
	bin, ctr := bins.containerd, bins.ctr
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "containerd.sock")
	config := fmt.Sprintf(`version = 2
root = %q
state = %q
oom_score = 0
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = %q

[ttrpc]
  address = %q

[debug]
  address = ""
  level = "info"

[metrics]
  address = ""

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), sock, sock+".ttrpc", filepath.Join(dir, "opt"))
	confPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(confPath, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	c := &privateContainerd{sock: sock, ctr: ctr}
	c.d = startDaemon(t, "containerd", filepath.Join(dir, "containerd.log"), bin,
		"--config", confPath, "--address", sock,
		"--root", filepath.Join(dir, "root"), "--state", filepath.Join(dir, "state"))
	t.Cleanup(func() { c.shutdown(t) })
	c.d.waitReady(t, ctx, 30*time.Second, func() result {
		return runCmd(ctx, 10*time.Second, nil, ctr, "--address", sock, "version")
	})
	return c
}

func (c *privateContainerd) shutdown(t *testing.T) {
	if c.d.alive() {
		bg := context.Background()
		nsList := c.ctrCmd(bg, cleanupTimeout, "default", "namespaces", "ls", "-q")
		for _, ns := range strings.Fields(nsList.Stdout) {
			tasks := c.ctrCmd(bg, cleanupTimeout, ns, "tasks", "ls", "-q")
			for _, id := range strings.Fields(tasks.Stdout) {
				t.Logf("cleanup: removing task %s/%s", ns, id)
				c.ctrCmd(bg, cleanupTimeout, ns, "tasks", "kill", "-a", "-s", "SIGKILL", id)
				c.ctrCmd(bg, cleanupTimeout, ns, "tasks", "rm", "-f", id)
			}
			ctrs := c.ctrCmd(bg, cleanupTimeout, ns, "containers", "ls", "-q")
			for _, id := range strings.Fields(ctrs.Stdout) {
				c.ctrCmd(bg, cleanupTimeout, ns, "containers", "rm", id)
			}
		}
	}
	c.d.stop(t)
	if t.Failed() {
		t.Logf("containerd log (tail):\n%s", c.d.logTail(30))
	}
	// Shims outlive containerd by design; kill those of this containerd.
	for _, pid := range procsWithArg(c.sock) {
		t.Logf("cleanup: killing leftover shim pid %d of %s", pid, c.sock)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// TestContainerd runs containerd's io.containerd.runc.v2 shim with
// berth-runtime as its runc binary (ctr run --runc-binary), from an image
// imported as a docker-archive into the native snapshotter.
func TestContainerd(t *testing.T) {
	requireRoot(t)
	rt := berthRuntime(t)
	bins := needContainerd(t)
	staticBusybox(t)
	ctx := peerContext(t)
	dir := tempDir(t, "containerd")
	cg := newCgroupParent(t)
	c := startContainerd(t, ctx, bins, filepath.Join(dir, "containerd"))

	const image = "localhost/berth-interop:latest"
	runtimeRoot := filepath.Join(dir, "runtime-root")
	fifoDir := filepath.Join(dir, "fifo")
	e := &engine{
		name:   "containerd (ctr)",
		bin:    c.ctr,
		global: []string{"--address", c.sock, "--namespace", "interop"},
		ctx:    ctx,
		cgroup: cg,
	}
	common := func(o runOpts) []string {
		a := []string{
			"--snapshotter", "native",
			"--runc-binary", rt,
			"--runc-root", runtimeRoot,
			"--fifo-dir", fifoDir,
			"--cgroup", cg + "/" + o.name,
		}
		if o.tty {
			a = append(a, "--tty")
		}
		if o.memory > 0 {
			a = append(a, "--memory-limit", fmt.Sprint(o.memory))
		}
		return append(append(a, image, o.name), o.cmd...)
	}
	e.run = func(o runOpts) []string { return append([]string{"run", "--rm"}, common(o)...) }
	e.start = func(o runOpts) []string { return append([]string{"run", "--detach"}, common(o)...) }
	e.exec = func(name string, tty bool, cmd ...string) []string {
		a := []string{"tasks", "exec", "--fifo-dir", fifoDir, "--exec-id", uniqueName("exec")}
		if tty {
			a = append(a, "--tty")
		}
		return append(append(a, name), cmd...)
	}
	e.remove = func(name string) [][]string {
		return [][]string{
			{"tasks", "kill", "-a", "-s", "SIGKILL", name},
			{"tasks", "rm", "-f", name},
			{"containers", "rm", name},
		}
	}

	e.pause = func(name string) []string { return []string{"tasks", "pause", name} }
	e.resume = func(name string) []string { return []string{"tasks", "resume", name} }
	e.stop = func(name string) []string { return []string{"tasks", "kill", "--signal", "SIGTERM", name} }
	e.restart = func(name string) []string {
		return []string{"tasks", "start", "--detach", "--fifo-dir", fifoDir, name}
	}
	e.status = func(t *testing.T, name string) string {
		r := e.quiet("tasks", "ls")
		for _, line := range strings.Split(r.Stdout, "\n") {
			if f := strings.Fields(line); len(f) == 3 && f[0] == name {
				return normalizeStatus(f[2])
			}
		}
		t.Logf("no task %s in: %s", name, r)
		return "unknown"
	}
	// `ctr tasks rm` deletes the stopped task and warns "task ID exit with
	// non-zero exit code N" unless N is 0.
	e.exitCode = func(t *testing.T, name string) int {
		r := e.do(t, "tasks", "rm", name)
		if !r.ok() {
			return -1
		}
		if m := regexp.MustCompile(`exit with non-zero exit code (\d+)`).FindStringSubmatch(r.Stderr); m != nil {
			code, _ := strconv.Atoi(m[1])
			return code
		}
		return 0
	}

	_, archive := writeImageFiles(t, dir, image)
	e.must(t, "images", "import", "--snapshotter", "native", archive)
	e.must(t, "images", "ls")

	e.scenarios(t)
}
