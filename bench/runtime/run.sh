#!/usr/bin/env bash
# bench/runtime/run.sh: berth-runtime vs runc vs crun, side by side, in one run.
#
#   sudo bench/runtime/run.sh                 # N=50 timed iterations per runtime
#   sudo N=30 WARMUP=5 bench/runtime/run.sh
#
# What it does:
#   1. builds bin/berth-runtime (make build; BUILD=0 skips) and the harness
#      (bench/runtime, a Go program) into a temporary work dir;
#   2. makes ONE bundle: rootfs = busybox-static with a `true` applet link,
#      config.json = `runc spec` with terminal=false, args ["true"],
#      ociVersion "1.0.2" (crun 1.8.1 rejects 1.3.0); the harness rewrites
#      only linux.cgroupsPath before every run, to /berth-bench/<runtime>-<n>;
#   3. enters ONE private mount namespace (unshare -m --propagation private),
#      unmounts /sys/fs/cgroup/unified there only (crun refuses the cgroup-v1
#      hybrid layout otherwise; the host keeps its mount) and runs the harness
#      in it. The harness, per iteration and round-robin over the runtimes
#      (starting runtime rotating), times `RT --root STATE run --bundle B ID`
#      of `true` and then `RT --root STATE delete -f ID` (each runtime has its
#      own --root). WARMUP iterations are discarded. Then RSS_N more runs per
#      runtime go through GNU time (/usr/bin/time -f %M) for max RSS, so the
#      timed runs carry no wrapper. Last it times berth-runtime's
#      CVE-2019-5736 self-copy (memfd_create + sendfile + seals) CLONE_N times;
#   4. prints a table (median/p10/p90 of run and run+delete in ms, max RSS),
#      the ratios berth/crun and berth/runc with the targets (berth median <=
#      crun's and <= 0.4x runc's) and MET / NOT MET, and as its LAST line a
#      JSON object with everything (also written to $JSON_OUT if set);
#   5. always, also on Ctrl-C: delete -f whatever container a runtime still
#      knows, kill processes left in /sys/fs/cgroup/*/berth-bench, rmdir those
#      cgroups bottom-up and remove the work dir. It touches no other cgroup.
#
# Environment: N (50), WARMUP (3), RSS_N (10), CLONE_N (200),
# BERTH (bin/berth-runtime), RUNC (/usr/sbin/runc), CRUN (/usr/bin/crun),
# BUILD (1), JSON_OUT (unset), TMPDIR (/tmp: work dir and bundle),
# STATE_DIR (/dev/shm if tmpfs: where the runtimes' --root dirs go).
# Exit status: the harness's (0 even when a target is not met; the JSON says).
# Needs root, Go, busybox-static, time, jq, runc, crun (missing Debian
# packages are installed). Not part of CI.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)

N=${N:-50}
WARMUP=${WARMUP:-3}
RSS_N=${RSS_N:-10}
CLONE_N=${CLONE_N:-200}
BERTH=${BERTH:-$top/bin/berth-runtime}
RUNC=${RUNC:-/usr/sbin/runc}
CRUN=${CRUN:-/usr/bin/crun}
BUILD=${BUILD:-1}
JSON_OUT=${JSON_OUT:-}
CGROUP_PARENT=/berth-bench # every container's cgroup is below it; cleanup removes only it

die() { echo "run.sh: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run me as root"
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
	export PATH=/usr/local/go/bin:$PATH
fi
command -v go >/dev/null 2>&1 || die "Go is needed"

need=()
for p in busybox-static time jq runc crun util-linux; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
	echo "run.sh: installing ${need[*]}" >&2
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
for b in "$RUNC" "$CRUN" /usr/bin/time /bin/busybox; do
	[ -x "$b" ] || die "$b not found"
done

if [ "$BUILD" = 1 ]; then
	make -C "$top" --no-print-directory build >/dev/null
fi
[ -x "$BERTH" ] || die "$BERTH not found (make build)"

work= state=
runtimes=("berth=$BERTH" "runc=$RUNC" "crun=$CRUN")

# inner_ns CMD...: run CMD in a new private mount namespace without
# /sys/fs/cgroup/unified. It refuses to unmount unless the namespace really is
# a new one, so the host's mount table is never changed.
inner_ns() {
	OUTER_NS=$(readlink /proc/self/ns/mnt) unshare -m --propagation private -- bash -c '
		set -e
		[ "$(readlink /proc/self/ns/mnt)" != "$OUTER_NS" ] || { echo "run.sh: unshare gave no new mount namespace" >&2; exit 1; }
		if mountpoint -q /sys/fs/cgroup/unified; then umount /sys/fs/cgroup/unified; fi
		exec "$@"' inner "$@"
}

cleaning=0
cleanup() {
	local rc=$?
	set +e
	[ "$cleaning" = 0 ] || return 0
	cleaning=1
	trap '' INT TERM HUP
	# In a private namespace like the benchmark's: delete -f whatever
	# container a runtime still knows (an interrupted iteration), then remove
	# what crun leaves under /sys/fs/cgroup/unified there, which is the
	# plain tmpfs directory under the (unmounted) cgroup2 mount point: its
	# own cgroup.procs files and leaf directories below $CGROUP_PARENT only.
	inner_ns bash -c '
		state=$1 parent=$2; shift 2
		for pair; do
			[ -n "$state" ] || break
			name=${pair%%=*} bin=${pair#*=}
			for c in "$state/$name"/*/; do
				[ -d "$c" ] || continue
				"$bin" --root "$state/$name" delete -f "$(basename "$c")" >/dev/null 2>&1 || true
			done
		done
		d=/sys/fs/cgroup/unified$parent
		if [ -d "$d" ] && [ "$(stat -f -c %T "$d")" = tmpfs ]; then
			find "$d" -mindepth 2 -maxdepth 2 -type f -name cgroup.procs -delete
			find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
			[ ! -d "$d" ] || echo "run.sh: could not remove $d (tmpfs, under the unified mount point)" >&2
		fi
		true' cleanup "$state" "$CGROUP_PARENT" "${runtimes[@]}" || true
	# Leftover cgroups: only those under $CGROUP_PARENT, bottom-up. Any process
	# still in them is one of this run's containers.
	local d left=0
	for d in /sys/fs/cgroup/*"$CGROUP_PARENT" /sys/fs/cgroup"$CGROUP_PARENT"; do
		[ -d "$d" ] || continue
		find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u | while read -r pid; do
			kill -KILL "$pid" 2>/dev/null
		done
		for _ in 1 2 3 4 5; do
			find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
			[ -d "$d" ] || break
			sleep 0.2
		done
		[ ! -d "$d" ] || { echo "run.sh: could not remove $d" >&2; left=1; }
	done
	[ -z "$state" ] || rm -rf --one-file-system "$state"
	[ -z "$work" ] || rm -rf --one-file-system "$work"
	[ "$left" = 0 ] || rc=1
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

work=$(mktemp -d "${TMPDIR:-/tmp}/berth-bench.XXXXXX")
# The runtimes' --root dirs go on tmpfs, as /run is on a normal host (runc:
# "this should be located in tmpfs"); on disk, berth-runtime's fsyncs of its
# state file would be timed too. STATE_DIR picks another place.
state_parent=${STATE_DIR:-}
if [ -z "$state_parent" ]; then
	if [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ]; then state_parent=/dev/shm; else state_parent=$work; fi
fi
state=$(mktemp -d "$state_parent/berth-bench-state.XXXXXX")
bundle=$work/bundle

(cd "$top" && go build -o "$work/runtime-bench" ./bench/runtime)

# The bundle.
mkdir -p "$bundle/rootfs/bin"
cp /bin/busybox "$bundle/rootfs/bin/busybox"
ln -s busybox "$bundle/rootfs/bin/true"
(cd "$work" && "$RUNC" spec && mv config.json spec.json)
jq '.ociVersion = "1.0.2"
    | .process.terminal = false
    | .process.args = ["true"]
    | .root.path = "rootfs"' "$work/spec.json" >"$work/config.template.json"

args=(-bundle "$bundle" -template "$work/config.template.json" -state "$state"
	-n "$N" -warmup "$WARMUP" -rss-n "$RSS_N" -cgroup-parent "$CGROUP_PARENT"
	-clone-bin "$BERTH" -clone-n "$CLONE_N")
for r in "${runtimes[@]}"; do args+=(-runtime "$r"); done
[ -z "$JSON_OUT" ] || args+=(-json-out "$JSON_OUT")

rc=0
inner_ns "$work/runtime-bench" "${args[@]}" || rc=$?
exit "$rc"
