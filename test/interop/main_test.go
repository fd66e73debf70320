//go:build integration

// Package interop_test proves that real container engines can use
// berth-runtime in runc's place: Podman (--runtime), containerd's
// io.containerd.runc.v2 shim (ctr --runc-binary) and dockerd ("runtimes" in
// daemon.json). Each peer runs containers that print to stdout, are exec'd
// into, get a TTY and get a memory limit (changed again through the peer's
// update where it has one), and are paused, resumed, stopped and restarted.
//
// The TestImage tests (images_test.go) prove that berth's image commands
// interoperate with the registry and image tools: berth pushes to and pulls
// from docker-registry, and skopeo, Podman and dockerd pull, push, save and
// load the same images, which keep their image IDs throughout. They run the
// berth command line named by BERTH (default ../../bin/berth).
//
// Run as root, with the peers installed from Debian (podman, containerd,
// docker.io, skopeo, docker-registry, apache2-utils for htpasswd) and
// busybox-static:
//
//	make build
//	BERTH=$PWD/bin/berth BERTH_RUNTIME=$PWD/bin/berth-runtime go test -count=1 -tags integration ./test/interop/
//
// BERTH_RUNTIME=/usr/sbin/runc runs the same suite against runc, which tells a
// berth-runtime bug from a peer or host problem. With CI=true a missing peer,
// binary or privilege fails the test; otherwise it skips with the reason.
//
// Nothing here touches the host's own container state: every daemon gets a
// private root, state directory and socket in a temporary directory (and so
// does the runtime, through ctr --runc-root and dockerd's exec root; under
// Podman it keeps its default /run/berth-runtime, see TestPodman), every
// container's cgroup lives under a /berth-interop-<random> tree that the test
// removes afterwards, no network is configured (--network none, dockerd
// --bridge=none --iptables=false --ip-forward=false), and every command has
// a timeout. Each peer's test is bounded by BERTH_INTEROP_PEER_TIMEOUT
// (default 90s) and all of them by BERTH_INTEROP_TIMEOUT (default 3m); a run
// where all is well takes 15-25s.
package interop_test

import (
	"fmt"
	"os"
	"testing"
	"time"
)

// hostLitter lists host paths that the peers create with hard-coded names
// whatever their configured roots (containerd's shims put their sockets in
// /run/containerd/s, dockerd its plugin directory in /run/docker/plugins,
// Podman netavark's run directory in /run/containers/networks and the image
// blob-info cache in /var/lib/containers/cache; with BERTH_RUNTIME=runc,
// Podman's runc keeps its default root /run/runc). The ones that did not
// exist before this package ran are removed when it ends.
var hostLitter = []string{
	"/run/containerd",
	"/run/docker",
	"/run/containers",
	"/run/libpod",
	"/run/runc",
	"/var/lib/containers",
}

func TestMain(m *testing.M) {
	preexisting := map[string]bool{}
	for _, p := range hostLitter {
		if _, err := os.Lstat(p); err == nil {
			preexisting[p] = true
		}
	}
	packageDeadline = time.Now().Add(durationEnv("BERTH_INTEROP_TIMEOUT", defaultPackageBudget))
	code := m.Run()
	for _, p := range hostLitter {
		if preexisting[p] {
			continue
		}
		if _, err := os.Lstat(p); err != nil {
			continue
		}
		if err := removeTree(p); err != nil {
			fmt.Fprintf(os.Stderr, "interop: removing %s that the peers created: %v\n", p, err)
		}
	}
	os.Exit(code)
}
