//go:build integration

package interop_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestPodman runs Podman (daemonless, with conmon) with --runtime
// berth-runtime. All of Podman's storage, run and temporary state is
// private.
func TestPodman(t *testing.T) {
	requireRoot(t)
	rt := berthRuntime(t)
	podman := lookBinary(t, "podman", "podman")
	lookBinary(t, "podman", "conmon", "/usr/libexec/podman/conmon", "/usr/bin/conmon")
	staticBusybox(t)
	ctx := peerContext(t)

	dir := tempDir(t, "podman")
	cg := newCgroupParent(t)

	// A private containers.conf replaces the host's, so that nothing there
	// (another default runtime, a network backend, ulimits) changes the run.
	conf := filepath.Join(dir, "containers.conf")
	if err := os.WriteFile(conf, []byte("[containers]\n[engine]\n[network]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	regConf := filepath.Join(dir, "registries.conf")
	if err := os.WriteFile(regConf, []byte("unqualified-search-registries = []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e := &engine{
		name: "podman",
		bin:  podman,
		global: []string{
			"--root", filepath.Join(dir, "root"),
			"--runroot", filepath.Join(dir, "runroot"),
			"--tmpdir", filepath.Join(dir, "tmp"),
			"--network-config-dir", filepath.Join(dir, "networks"),
			"--storage-driver", "vfs",
			"--cgroup-manager", "cgroupfs",
			"--events-backend", "file",
			// The runtime keeps its own default --root (/run/berth-runtime;
			// container IDs are random, so they do not collide): Podman 4.3
			// does not pass --runtime-flag to the `podman container cleanup`
			// that conmon runs on exit, so a private root given that way
			// gets no delete and a restart finds the old state ("container
			// with given ID already exists"), with runc as with berth-runtime.
			"--runtime", rt,
		},
		env: []string{
			"CONTAINERS_CONF=" + conf,
			"CONTAINERS_REGISTRIES_CONF=" + regConf,
			"XDG_CONFIG_HOME=" + filepath.Join(dir, "config"),
		},
		ctx:            ctx,
		cgroup:         cg,
		cgroupfsInside: true,
	}
	const image = "localhost/berth-interop:latest"
	common := func(o runOpts) []string {
		// Podman asks for RLIMIT_NOFILE and RLIMIT_NPROC of 1048576 by
		// default; without CAP_SYS_RESOURCE over the host's hard limits
		// (nofile 20000 here) runc and berth-runtime both refuse that.
		a := []string{
			"--name", o.name,
			"--network", "none",
			"--cgroup-parent", cg,
			"--ulimit", "nofile=1024:1024",
			"--ulimit", "nproc=1024:1024",
		}
		if o.tty {
			a = append(a, "-i", "-t")
		}
		if o.memory > 0 {
			a = append(a, "--memory", fmtBytes(o.memory))
		}
		return append(append(a, image), o.cmd...)
	}
	e.run = func(o runOpts) []string { return append([]string{"run", "--rm"}, common(o)...) }
	e.start = func(o runOpts) []string { return append([]string{"run", "-d"}, common(o)...) }
	e.exec = func(name string, tty bool, cmd ...string) []string {
		a := []string{"exec"}
		if tty {
			a = append(a, "-i", "-t")
		}
		return append(append(a, name), cmd...)
	}
	e.remove = func(name string) [][]string { return [][]string{{"rm", "-f", "-t", "0", name}} }
	e.pause = func(name string) []string { return []string{"pause", name} }
	e.resume = func(name string) []string { return []string{"unpause", name} }
	e.stop = func(name string) []string { return []string{"stop", "-t", "10", name} }
	e.restart = func(name string) []string { return []string{"start", name} }
	e.status = e.inspectStatus
	e.exitCode = e.inspectExitCode
	e.update = func(name string, memory int64) []string {
		return []string{"update", "--memory", fmtBytes(memory), name}
	}

	// Last cleanup to run before the cgroup and the directory go: remove
	// every container, which also stops their conmon processes.
	t.Cleanup(func() {
		r := runCmd(context.Background(), cleanupTimeout, e.env, e.bin, append(append([]string{}, e.global...), "rm", "-a", "-f", "-t", "0")...)
		if !r.ok() {
			t.Logf("cleanup: %s", r)
		}
	})

	e.must(t, "version")
	rootfsTar, _ := writeImageFiles(t, dir, image)
	e.must(t, "import", "-q", rootfsTar, image)

	e.scenarios(t)
}
