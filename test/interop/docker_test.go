//go:build integration

package interop_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDocker runs dockerd with berth-runtime registered as the runtime
// "berth" in its daemon.json. dockerd gets its own data root, exec root,
// socket, trust key and a private containerd; it configures no network
// (--bridge=none, no iptables, no IP forwarding) and puts containers'
// cgroups under a /berth-interop-<random> parent.
func TestDocker(t *testing.T) {
	requireRoot(t)
	rt := berthRuntime(t)
	dockerd := lookBinary(t, "docker.io", "dockerd")
	// The docker.io client matches dockerd's API; a newer client on PATH
	// negotiates down and also works.
	docker := lookBinary(t, "docker.io", "/usr/bin/docker", "docker")
	bins := needContainerd(t)
	staticBusybox(t)
	ctx := peerContext(t)
	dir := tempDir(t, "docker")
	cg := newCgroupParent(t)
	ctd := startContainerd(t, ctx, bins, filepath.Join(dir, "containerd"))

	daemonJSON, err := json.MarshalIndent(map[string]any{
		"runtimes": map[string]any{
			"berth": map[string]any{"path": rt},
		},
		// dockerd 20.10 writes its trust key to /etc/docker by default.
		"deprecated-key-path": filepath.Join(dir, "key.json"),
		"exec-opts":           []string{"native.cgroupdriver=cgroupfs"},
	}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	confPath := filepath.Join(dir, "daemon.json")
	if err := os.WriteFile(confPath, daemonJSON, 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "docker.sock")
	d := startDaemon(t, "dockerd", filepath.Join(dir, "dockerd.log"), dockerd,
		"--config-file", confPath,
		"--data-root", filepath.Join(dir, "data"),
		"--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "dockerd.pid"),
		"-H", "unix://"+sock,
		"--containerd", ctd.sock,
		"--containerd-namespace", "berth-interop-moby",
		"--containerd-plugins-namespace", "berth-interop-plugins",
		"--storage-driver", "vfs",
		"--cgroup-parent", cg,
		"--bridge=none",
		"--iptables=false",
		"--ip6tables=false",
		"--ip-forward=false",
		"--ip-masq=false",
		"--userland-proxy=false",
	)
	e := &engine{
		name:           "docker",
		bin:            docker,
		global:         []string{"-H", "unix://" + sock},
		env:            []string{"DOCKER_CONFIG=" + filepath.Join(dir, "cli")},
		ctx:            ctx,
		cgroup:         cg,
		cgroupfsInside: true,
	}
	// Cleanups run last-in first-out: remove the containers, then stop
	// dockerd, then (registered earlier) its containerd.
	t.Cleanup(func() {
		d.stop(t)
		if t.Failed() {
			t.Logf("dockerd log (tail):\n%s", d.logTail(30))
		}
	})
	t.Cleanup(func() {
		if !d.alive() {
			return
		}
		bg := context.Background()
		ids := runCmd(bg, cleanupTimeout, e.env, e.bin, append(append([]string{}, e.global...), "ps", "-aq")...)
		if f := strings.Fields(ids.Stdout); len(f) > 0 {
			r := runCmd(bg, cleanupTimeout, e.env, e.bin, append(append(append([]string{}, e.global...), "rm", "-f"), f...)...)
			if !r.ok() {
				t.Logf("cleanup: %s", r)
			}
		}
	})
	d.waitReady(t, ctx, 60*time.Second, func() result {
		return runCmd(ctx, 10*time.Second, e.env, docker, "-H", "unix://"+sock, "version")
	})

	const image = "berth-interop:latest"
	common := func(o runOpts) []string {
		a := []string{"--name", o.name, "--runtime", "berth", "--network", "none"}
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
	e.remove = func(name string) [][]string { return [][]string{{"rm", "-f", name}} }
	e.pause = func(name string) []string { return []string{"pause", name} }
	e.resume = func(name string) []string { return []string{"unpause", name} }
	e.stop = func(name string) []string { return []string{"stop", "-t", "10", name} }
	e.restart = func(name string) []string { return []string{"start", name} }
	e.status = e.inspectStatus
	e.exitCode = e.inspectExitCode
	e.update = func(name string, memory int64) []string {
		return []string{"update", "--memory", fmtBytes(memory), name}
	}

	e.must(t, "version")
	rootfsTar, _ := writeImageFiles(t, dir, image)
	e.must(t, "import", rootfsTar, image)

	e.scenarios(t)
}
