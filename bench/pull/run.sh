#!/usr/bin/env bash
# bench/pull/run.sh: cold `pull` of one ~170 MB image with berth, podman,
# docker, ctr (containerd) and skopeo, side by side, in one run.
#
#   sudo bench/pull/run.sh                   # N=5 timed rounds, 1 warmup
#   sudo N=3 JSON_OUT=/tmp/pull.json bench/pull/run.sh
#
# What it does:
#   1. re-executes itself in ONE private mount namespace (unshare -m
#      --propagation private), so no mount it or the tools make (store
#      filesystems, overlay mounts of podman, containerd, dockerd) ever
#      reaches the host's mount table; there, empty directories of the work
#      dir $W are bind-mounted over /var/lib/containers, where skopeo writes
#      its blob-info cache (containers/image has no flag for it when run as
#      root), and /run/docker, where dockerd makes its plugin discovery dir
#      whatever its flags say (if they exist; else those tools create them);
#   2. builds bin/berth (make build; BUILD=0 skips) and the image generator
#      (bench/pull/gen) into $W;
#   3. starts Debian's docker-registry (distribution 2.8) with its own config:
#      filesystem storage in $W, plain http on 127.0.0.1 and a random free
#      port (never 5000), no access log; the generator pushes the image (five
#      gzip layers: random bytes, base64 text, 20 000 small files, Go source,
#      a tiny config; the same digests every run) and the registry's blob
#      files are read once into the page cache;
#   4. gives every tool its own store filesystem: a fresh ext4 (mkfs
#      defaults, in a sparse FS_SIZE file of $W on a loop device with direct
#      I/O). Creating tens of thousands of files in a directory tree of a
#      big, long-used ext4 just after as many were deleted can cost several
#      times more than on a fresh one (ext4's inode allocator skips recently deleted
#      inodes); with one store per tool that cost would fall on whoever
#      pulls after a big delete. STORE_FS=dir uses plain directories of $W;
#   5. starts a private containerd for ctr (own state, socket and config,
#      root on ctr's store filesystem, CRI plugin disabled,
#      content_sharing_policy "isolated") and a private dockerd (data root on
#      docker's store filesystem; own exec root, socket, pidfile, trust key;
#      overlay2; --containerd = a second private containerd of its own; no
#      bridge/iptables/ip forwarding/masquerading; --insecure-registry for
#      the registry; cgroup parent /berth-bench-pull-<random>; it runs no
#      container);
#   6. runs WARMUP + N rounds; a round pulls once with every tool, in a
#      rotating order (round r starts with tool r mod #tools), so machine noise
#      hits all tools alike. Every pull is COLD: the tool's store is empty
#      before it (checked), then `sync` and SETTLE seconds of rest; only the
#      pull command itself is timed (bash $EPOCHREALTIME around it):
#        berth   bin/berth --root $W/berth/root --config $W/berth.toml pull -q REF
#        podman  podman --root R --runroot RR --tmpdir T --storage-driver
#                overlay --events-backend file pull -q --tls-verify=false REF
#        docker  docker --config $W/docker/cli -H unix://$W/docker/docker.sock
#                pull REF
#        ctr     ctr -a SOCK -n bench-<round> images pull --plain-http REF
#                (unpacks into containerd's overlayfs snapshotter)
#        skopeo  skopeo copy --src-tls-verify=false docker://REF oci:DIR:1
#                (no unpacking: download, verify, write blobs)
#      After each pull the store is emptied again, untimed, and checked:
#      berth's, podman's and skopeo's dirs are unmounted and removed; docker
#      does rmi + image prune -af (its overlay2 dir and layer db must be
#      empty); ctr does images rm --sync in the round's namespace, removes
#      what is left there and the namespace (containerd's blob and snapshot
#      dirs must be empty). WARMUP rounds are discarded. In the last round,
#      right after each tool's pull, `du -sx` of its store is recorded:
#      berth's root, podman's root, dockerd's data root, ctr's containerd
#      root (blobs AND snapshots), skopeo's OCI layout (blobs only);
#   7. prints a table (median/min/max seconds per tool, disk usage), the
#      ratios of berth's median to each other tool's, with the issue's
#      target "berth <= 0.36x podman" marked MET / NOT MET, and as its LAST
#      line one JSON object with everything (also written to $JSON_OUT);
#   8. always, also on Ctrl-C: stops the running pull, dockerd, both
#      containerds and the registry by their PIDs (TERM, then KILL after
#      20 s), lazily unmounts every mount under $W (deepest first, from
#      /proc/self/mountinfo), detaches the loop devices of its own image
#      files and removes $W.
#      It touches nothing else outside $W (but the Go build cache) and never
#      kills by name.
#
# A tool whose binaries are missing, or whose pull or cleanup fails, is
# skipped with a note (in the table and the JSON); the others go on.
#
# Environment: N (5), WARMUP (1), SETTLE (1 s), TOOLS ("berth podman docker
# ctr skopeo"), BERTH (bin/berth), DOCKER (/usr/bin/docker, the docker.io
# client, else docker on PATH), STORE_FS (loop | dir), FS_SIZE (8G, sparse),
# BUILD (1), JSON_OUT (unset), KEEP (0; 1 leaves $W in place after the
# daemons are stopped and everything is unmounted), TMPDIR (/tmp: where $W
# goes).
# Exit status: 0 when every requested tool ran (even if the target is not
# met; the JSON says), 1 when a tool was skipped or failed.
# Needs root, Go, util-linux, e2fsprogs, docker-registry, curl, jq (missing
# Debian packages among these are installed). Not part of CI.
set -euo pipefail
export LC_ALL=C

die() { echo "run.sh: $*" >&2; exit 1; }
note() { echo "run.sh: $*" >&2; }

[ "$(id -u)" = 0 ] || die "run me as root"

# 1. One private mount namespace for everything below.
if [ -z "${BERTH_BENCH_PULL_OUTER_NS:-}" ]; then
	BERTH_BENCH_PULL_OUTER_NS=$(readlink /proc/self/ns/mnt)
	export BERTH_BENCH_PULL_OUTER_NS
	exec unshare -m --propagation private -- "$BASH" "$0" "$@"
fi
[ "$(readlink /proc/self/ns/mnt)" != "$BERTH_BENCH_PULL_OUTER_NS" ] ||
	die "unshare gave no new mount namespace"

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)

N=${N:-5}
WARMUP=${WARMUP:-1}
SETTLE=${SETTLE:-1}
TOOLS=${TOOLS:-berth podman docker ctr skopeo}
BERTH=${BERTH:-$top/bin/berth}
STORE_FS=${STORE_FS:-loop}
FS_SIZE=${FS_SIZE:-8G}
BUILD=${BUILD:-1}
JSON_OUT=${JSON_OUT:-}
KEEP=${KEEP:-0}
TARGET_PODMAN=0.36 # the issue's target: berth's median <= 0.36x podman's
if [ -z "${DOCKER:-}" ]; then
	if [ -x /usr/bin/docker ]; then DOCKER=/usr/bin/docker; else DOCKER=$(command -v docker || true); fi
fi

[[ "$N" =~ ^[1-9][0-9]*$ ]] || die "N must be a positive integer"
[[ "$WARMUP" =~ ^[0-9]+$ ]] || die "WARMUP must be a non-negative integer"
[[ "$SETTLE" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "SETTLE must be a number of seconds"
[[ "$STORE_FS" =~ ^(loop|dir)$ ]] || die "STORE_FS must be loop or dir"

if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
	export PATH=/usr/local/go/bin:$PATH
fi
command -v go >/dev/null 2>&1 || die "Go is needed"

need=()
for p in docker-registry curl jq util-linux e2fsprogs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
	note "installing ${need[*]}"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
REGISTRY=$(command -v docker-registry) || die "docker-registry not found"

# State shared with cleanup. Daemon PIDs are those of processes this script
# started; nothing else is ever signalled.
W= pull_pid= registry_pid= containerd_pid= dockerd_containerd_pid= dockerd_pid=
shadowed=() # host dirs with a bind mount of an empty dir of $W over them (this namespace only)
declare -A skipped=() # tool -> why

# stop_pid NAME PID: TERM, wait up to 20 s, then KILL; PID is our child.
stop_pid() {
	local name=$1 pid=$2 i
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 200; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		note "$name (pid $pid) ignored SIGTERM for 20 s; killing it"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

# mounts_under DIR: mount points at or below DIR, deepest first.
# /proc/self/mountinfo escapes space, tab, newline and backslash as \ooo.
mounts_under() {
	local dir=$1 mp
	awk '{print $5}' /proc/self/mountinfo | while IFS= read -r mp; do
		mp=$(printf '%b' "$mp")
		case "$mp" in "$dir" | "$dir"/*) printf '%s\n' "$mp" ;; esac
	done | sort -ru
}

# umount_under DIR: lazily unmount everything at or below DIR (stacked
# mounts included), deepest first.
umount_under() {
	local dir=$1 mp i left
	for ((i = 0; i < 5; i++)); do
		left=0
		while IFS= read -r mp; do
			[ -n "$mp" ] || continue
			left=1
			umount -l "$mp" 2>/dev/null || umount -R -l "$mp" 2>/dev/null || true
		done < <(mounts_under "$dir")
		[ "$left" = 1 ] || return 0
	done
	[ -z "$(mounts_under "$dir")" ] || { note "could not unmount everything under $dir"; return 1; }
}

# remove_tree DIR...: unmount what is below each DIR, then remove it.
remove_tree() {
	local d
	for d; do
		umount_under "$d" || return 1
		rm -rf --one-file-system "$d" || return 1
	done
}

# detach_loops: detach every loop device backed by one of our image files
# (after a lazy unmount the kernel frees it once nothing uses it).
detach_loops() {
	local img dev
	for img in "$W"/fs/*.img; do
		[ -f "$img" ] || continue
		for dev in $(losetup -n -O NAME -j "$img" 2>/dev/null); do
			losetup -d "$dev" 2>/dev/null || note "could not detach $dev ($img)"
		done
	done
}

cleaning=0
cleanup() {
	local rc=$?
	set +e
	[ "$cleaning" = 0 ] || return 0
	cleaning=1
	trap '' INT TERM HUP
	stop_pid "the running pull" "$pull_pid"
	stop_pid dockerd "$dockerd_pid"
	stop_pid "dockerd's containerd" "$dockerd_containerd_pid"
	stop_pid containerd "$containerd_pid"
	stop_pid docker-registry "$registry_pid"
	for p in "${shadowed[@]}"; do umount -l "$p"; done
	if [ -n "$W" ] && [ -d "$W" ]; then
		umount_under "$W" || rc=1
		detach_loops
		if [ "$KEEP" = 1 ]; then
			note "work dir kept: $W"
		else
			rm -rf --one-file-system "$W" || rc=1
		fi
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

W=$(mktemp -d "${TMPDIR:-/tmp}/berth-bench-pull.XXXXXX")
mkdir -p "$W/logs" "$W/tmp" "$W/fs"
export TMPDIR=$W/tmp

# Host paths the tools write to whatever their flags say: skopeo its
# blob-info cache in /var/lib/containers/cache, dockerd its plugin discovery
# dir /run/docker/plugins. In this namespace, empty dirs of $W hide them.
for p in /var/lib/containers /run/docker; do
	if [ -d "$p" ]; then
		mkdir -p "$W/shadow$p"
		mount --bind "$W/shadow$p" "$p"
		shadowed+=("$p")
	else
		note "no $p to hide: a tool may create something in it"
	fi
done

# log_tail FILE: the end of a log, indented, to stderr.
log_tail() { tail -n 15 "$1" 2>/dev/null | sed 's/^/    /' >&2 || true; }

# skip TOOL WHY: take TOOL out of the benchmark, with a note.
skip() {
	skipped[$1]=$2
	note "skipping $1: $2"
}

# 2. Binaries.
if [ "$BUILD" = 1 ]; then
	make -C "$top" --no-print-directory build >/dev/null
fi
(cd "$top" && go build -o "$W/gen" ./bench/pull/gen)

have() { [ -n "$1" ] && [ -x "$1" ]; }
PODMAN=$(command -v podman || true)
DOCKERD=$(command -v dockerd || true)
CONTAINERD=$(command -v containerd || true)
CTR=$(command -v ctr || true)
SKOPEO=$(command -v skopeo || true)

tools=()
for t in $TOOLS; do
	case "$t" in
	berth) have "$BERTH" || { skip berth "$BERTH not found (make build)"; continue; } ;;
	podman) have "$PODMAN" || { skip podman "podman not installed"; continue; } ;;
	docker)
		have "$DOCKERD" && have "$DOCKER" || { skip docker "dockerd or docker not installed (docker.io)"; continue; }
		have "$CONTAINERD" && have "$CTR" || { skip docker "containerd not installed"; continue; }
		;;
	ctr) have "$CONTAINERD" && have "$CTR" || { skip ctr "containerd or ctr not installed"; continue; } ;;
	skopeo) have "$SKOPEO" || { skip skopeo "skopeo not installed"; continue; } ;;
	*) die "unknown tool in TOOLS: $t" ;;
	esac
	[ -z "${skipped[$t]:-}" ] || continue
	tools+=("$t")
done
[ ${#tools[@]} -gt 0 ] || die "no tool to benchmark"
uses() { [[ " ${tools[*]} " == *" $1 "* ]]; }
active() { uses "$1" && [ -z "${skipped[$1]:-}" ]; }

# wait_ready NAME PID LOG SECONDS CMD...: poll CMD until it succeeds; fail
# early if the daemon died.
wait_ready() {
	local name=$1 pid=$2 log=$3 secs=$4 i
	shift 4
	for ((i = 0; i < secs * 10; i++)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			note "$name exited; log:"
			log_tail "$log"
			return 1
		fi
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	note "$name not ready after $secs s; log:"
	log_tail "$log"
	return 1
}

# free_port: a random TCP port nothing listens on at 127.0.0.1 (not 5000).
free_port() {
	local p i
	for ((i = 0; i < 100; i++)); do
		p=$(shuf -i 20000-60999 -n 1)
		[ -z "$(ss -Htln "sport = :$p")" ] && { echo "$p"; return 0; }
	done
	return 1
}

# 3. Registry. Daemons run in their own session (setsid execs them, so $!
# is the daemon's PID), away from the terminal's Ctrl-C: cleanup stops them
# in order.
mkdir -p "$W/registry/storage"
for attempt in 1 2 3; do
	port=$(free_port) || die "no free port found"
	cat >"$W/registry/config.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $W/registry/storage
  cache:
    blobdescriptor: inmemory
  delete:
    enabled: false
http:
  addr: 127.0.0.1:$port
EOF
	setsid "$REGISTRY" serve "$W/registry/config.yml" >"$W/logs/registry.log" 2>&1 </dev/null &
	registry_pid=$!
	if wait_ready docker-registry "$registry_pid" "$W/logs/registry.log" 15 \
		curl -fsS -o /dev/null "http://127.0.0.1:$port/v2/"; then
		break
	fi
	stop_pid docker-registry "$registry_pid"
	registry_pid=
	[ "$attempt" -lt 3 ] || die "docker-registry did not start"
done
registry=127.0.0.1:$port

note "pushing the benchmark image to $registry (takes ~20 s)"
read -r REF DIGEST IMAGE_BYTES < <("$W/gen" -registry "$registry" -repo bench/pull -tag 1 2>"$W/logs/gen.log") ||
	{ log_tail "$W/logs/gen.log"; die "the generator failed"; }
[ -n "${IMAGE_BYTES:-}" ] || { log_tail "$W/logs/gen.log"; die "the generator printed no image"; }
LAYERS=$(grep -c ' layer [0-9]*:' "$W/logs/gen.log" || true)
find "$W/registry/storage" -type f -exec cat {} + >/dev/null

# 4. Store filesystems: where each tool's store lives (what du measures).
store_of() {
	case "$1" in
	berth) echo "$W/berth/root" ;;
	podman) echo "$W/podman/root" ;;
	docker) echo "$W/docker/data" ;;
	ctr) echo "$W/containerd/root" ;;
	skopeo) echo "$W/skopeo/dir" ;;
	esac
}
fs_dir_of() { # the tool's store filesystem's mount point
	case "$1" in
	docker | ctr) store_of "$1" ;;
	*) echo "$W/$1" ;;
	esac
}

# make_store_fs TOOL: a fresh ext4 in a sparse file, mounted at the tool's
# store filesystem dir (STORE_FS=loop), or just that dir (STORE_FS=dir).
make_store_fs() {
	local dir img=$W/fs/$1.img dev
	dir=$(fs_dir_of "$1")
	mkdir -p "$dir"
	[ "$STORE_FS" = loop ] || return 0
	truncate -s "$FS_SIZE" "$img"
	mkfs.ext4 -q -F -E lazy_itable_init=1,lazy_journal_init=1 "$img"
	# Direct I/O keeps the image file out of the page cache (no double
	# caching); noinit_itable: no background inode table zeroing.
	dev=$(losetup -f --show --direct-io=on "$img" 2>/dev/null) || dev=$(losetup -f --show "$img")
	mount -o noinit_itable "$dev" "$dir"
}
for t in "${tools[@]}"; do
	make_store_fs "$t" || skip "$t" "could not make its store filesystem"
done

# 5. Private containerd for ctr and dockerd with its own one.
# start_containerd DIR ROOT SOCK PIDVAR: containerd with config, state and
# log in DIR and its root at ROOT.
start_containerd() {
	local dir=$1 root=$2 sock=$3
	mkdir -p "$dir"
	cat >"$dir/config.toml" <<EOF
version = 2
root = "$root"
state = "$dir/state"
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
  address = "$sock"

[ttrpc]
  address = "$sock.ttrpc"

[debug]
  address = ""
  level = "warn"

[metrics]
  address = ""

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "$dir/opt"
  [plugins."io.containerd.metadata.v1.bolt"]
    content_sharing_policy = "isolated"
EOF
	setsid "$CONTAINERD" --config "$dir/config.toml" --address "$sock" \
		--root "$root" --state "$dir/state" >"$dir/containerd.log" 2>&1 </dev/null &
	printf -v "$4" %s "$!"
	wait_ready containerd "$!" "$dir/containerd.log" 30 "$CTR" -a "$sock" version
}

CTD=$W/containerd
CTD_SOCK=$CTD/containerd.sock
ctr_() { "$CTR" -a "$CTD_SOCK" "$@"; }
if active ctr; then
	start_containerd "$CTD" "$CTD/root" "$CTD_SOCK" containerd_pid || skip ctr "containerd did not start"
fi

DKR=$W/docker
DOCKER_SOCK=$DKR/docker.sock
docker_() { "$DOCKER" --config "$DKR/cli" -H "unix://$DOCKER_SOCK" "$@"; }
if active docker; then
	if start_containerd "$DKR/containerd" "$DKR/containerd/root" "$DKR/containerd/containerd.sock" dockerd_containerd_pid; then
		mkdir -p "$DKR/cli"
		# dockerd 20.10 writes its trust key to /etc/docker by default.
		jq -n --arg key "$DKR/key.json" '{"deprecated-key-path": $key, "exec-opts": ["native.cgroupdriver=cgroupfs"]}' >"$DKR/daemon.json"
		setsid "$DOCKERD" \
			--config-file "$DKR/daemon.json" \
			--data-root "$DKR/data" \
			--exec-root "$DKR/exec" \
			--pidfile "$DKR/dockerd.pid" \
			-H "unix://$DOCKER_SOCK" \
			--containerd "$DKR/containerd/containerd.sock" \
			--containerd-namespace berth-bench-pull-moby \
			--containerd-plugins-namespace berth-bench-pull-moby-plugins \
			--storage-driver overlay2 \
			--cgroup-parent "/berth-bench-pull-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')" \
			--insecure-registry "$registry" \
			--bridge=none --iptables=false --ip6tables=false \
			--ip-forward=false --ip-masq=false --userland-proxy=false \
			>"$W/logs/dockerd.log" 2>&1 </dev/null &
		dockerd_pid=$!
		wait_ready dockerd "$dockerd_pid" "$W/logs/dockerd.log" 60 docker_ version ||
			skip docker "dockerd did not start"
	else
		skip docker "dockerd's containerd did not start"
	fi
fi

# Per tool: the pull, a check that the store is empty and the reset to
# empty. ctr works in namespace bench-<round>.
printf 'version = 1\n' >"$W/berth.toml"

# pull_argv TOOL ROUND: set argv to TOOL's pull command line.
pull_argv() {
	case "$1" in
	berth) argv=("$BERTH" --root "$W/berth/root" --config "$W/berth.toml" pull -q "$REF") ;;
	podman) argv=("$PODMAN" --root "$W/podman/root" --runroot "$W/podman/run" --tmpdir "$W/podman/tmp"
		--storage-driver overlay --events-backend file pull -q --tls-verify=false "$REF") ;;
	docker) argv=("$DOCKER" --config "$DKR/cli" -H "unix://$DOCKER_SOCK" pull "$REF") ;;
	ctr) argv=("$CTR" -a "$CTD_SOCK" -n "bench-$2" images pull --plain-http "$REF") ;;
	skopeo) argv=("$SKOPEO" copy --src-tls-verify=false "docker://$REF" "oci:$W/skopeo/dir:1") ;;
	esac
}

# dir_entries DIR: how many entries DIR has (0 if it does not exist).
dir_entries() { find "$1" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }

# check_empty TOOL ROUND: fail unless TOOL's store holds no image.
check_empty() {
	local d
	case "$1" in
	berth | podman | skopeo)
		local dirs=("$(store_of "$1")")
		[ "$1" != podman ] || dirs+=("$W/podman/run" "$W/podman/tmp")
		for d in "${dirs[@]}"; do
			[ ! -e "$d" ] || { note "$d still exists"; return 1; }
		done
		;;
	docker)
		[ -z "$(docker_ images -aq)" ] || { note "docker still lists images"; return 1; }
		[ "$(find "$DKR/data/overlay2" -mindepth 1 -maxdepth 1 ! -name l 2>/dev/null | wc -l)" = 0 ] ||
			{ note "docker's overlay2 dir still has layers"; return 1; }
		[ "$(dir_entries "$DKR/data/image/overlay2/layerdb/sha256")" = 0 ] ||
			{ note "docker's layer db is not empty"; return 1; }
		;;
	ctr)
		! ctr_ namespaces ls -q | grep -qx "bench-$2" || { note "namespace bench-$2 exists"; return 1; }
		[ "$(dir_entries "$CTD/root/io.containerd.content.v1.content/blobs/sha256")" = 0 ] ||
			{ note "containerd still has blobs"; return 1; }
		[ "$(dir_entries "$CTD/root/io.containerd.snapshotter.v1.overlayfs/snapshots")" = 0 ] ||
			{ note "containerd still has snapshots"; return 1; }
		;;
	esac
}

# reset TOOL ROUND: remove what the pull stored (untimed).
reset() {
	case "$1" in
	berth | skopeo) remove_tree "$(store_of "$1")" ;;
	podman) remove_tree "$W/podman/root" "$W/podman/run" "$W/podman/tmp" ;;
	docker)
		docker_ rmi -f "$REF" >/dev/null 2>&1 || true
		docker_ image prune -af >/dev/null
		;;
	ctr)
		local ns=bench-$2 id i left
		ctr_ -n "$ns" images ls -q | while read -r id; do ctr_ -n "$ns" images rm --sync "$id" >/dev/null; done
		for ((i = 0; i < 20; i++)); do
			# Normally images rm --sync has garbage-collected everything.
			left=$(ctr_ -n "$ns" snapshots ls 2>/dev/null | awk 'NR > 1 {print $1}')
			[ -n "$left" ] || break
			for id in $left; do ctr_ -n "$ns" snapshots rm "$id" >/dev/null 2>&1 || true; done
		done
		ctr_ -n "$ns" content ls -q | while read -r id; do ctr_ -n "$ns" content rm "$id" >/dev/null || true; done
		ctr_ namespaces rm "$ns" >/dev/null
		# The overlayfs snapshotter removes directories asynchronously.
		for ((i = 0; i < 100; i++)); do
			[ "$(dir_entries "$CTD/root/io.containerd.snapshotter.v1.overlayfs/snapshots")" = 0 ] && break
			sleep 0.1
		done
		;;
	esac
}

version_of() {
	case "$1" in
	berth) "$BERTH" version 2>/dev/null | head -n 1 ;;
	podman) "$PODMAN" --version ;;
	docker) echo "$("$DOCKERD" --version) (client $(docker_ version --format '{{.Client.Version}}' 2>/dev/null))" ;;
	ctr) "$CONTAINERD" --version ;;
	skopeo) "$SKOPEO" --version ;;
	esac
}

declare -A runs=() disk=() versions=()
for t in "${tools[@]}"; do
	active "$t" || continue
	versions[$t]=$(version_of "$t" 2>/dev/null || true)
done

# 6. The rounds.
rounds=$((WARMUP + N))
note "image $REF ($IMAGE_BYTES bytes compressed, $LAYERS layers); $rounds rounds ($WARMUP warmup) of ${tools[*]}; stores: $STORE_FS"
for ((r = 0; r < rounds; r++)); do
	line="round $((r + 1))/$rounds"
	[ "$r" -ge "$WARMUP" ] || line+=" (warmup)"
	line+=":"
	k=${#tools[@]}
	for ((i = 0; i < k; i++)); do
		t=${tools[$(((i + r) % k))]}
		active "$t" || continue
		log=$W/logs/$t-$r.log
		if ! check_empty "$t" "$r" >>"$log" 2>&1; then
			log_tail "$log"
			skip "$t" "its store is not empty before round $((r + 1))"
			continue
		fi
		sync
		sleep "$SETTLE"
		# In the background, then wait: bash runs the INT trap at once
		# during `wait` (in the foreground it would not, if the tool
		# catches SIGINT); the tool itself ignores SIGINT and cleanup stops
		# it by its PID. A simple command: bash execs it in the child, so
		# $! is the tool's PID.
		pull_argv "$t" "$r"
		rc=0
		t0=$EPOCHREALTIME
		"${argv[@]}" >>"$log" 2>&1 </dev/null &
		pull_pid=$!
		wait "$pull_pid" || rc=$?
		t1=$EPOCHREALTIME
		pull_pid=
		if [ "$rc" != 0 ]; then
			note "$t pull failed (exit $rc); log:"
			log_tail "$log"
			skip "$t" "pull failed in round $((r + 1)) (exit $rc)"
			continue
		fi
		secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
		line+=" $t ${secs}s"
		[ "$r" -lt "$WARMUP" ] || runs[$t]+="$secs "
		if [ "$r" = $((rounds - 1)) ]; then
			disk[$t]=$(($(du -sxk "$(store_of "$t")" | cut -f1) * 1024))
		fi
		if ! { reset "$t" "$r" && check_empty "$t" "$r"; } >>"$log" 2>&1; then
			log_tail "$log"
			skip "$t" "could not empty its store after round $((r + 1))"
		fi
	done
	note "$line"
done

# 7. Results.
# stats V...: median min max (median of an even count: mean of the middle two).
stats() {
	printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 }
		END { m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
		      printf "%.3f %.3f %.3f\n", m, a[1], a[NR] }'
}
declare -A med=() lo=() hi=()
for t in "${tools[@]}"; do
	active "$t" && [ -n "${runs[$t]:-}" ] || continue
	# shellcheck disable=SC2086 # runs[] is a space-separated list of numbers
	read -r "med[$t]" "lo[$t]" "hi[$t]" < <(stats ${runs[$t]})
done
ok() { [ -n "${med[$1]:-}" ] && [ -z "${skipped[$1]:-}" ]; }

mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1e6 }'; }
echo
echo "bench/pull: cold pull of $REF"
echo "  $LAYERS layers, $(mb "$IMAGE_BYTES") MB compressed; $N rounds (+$WARMUP warmup), rotating order;"
if [ "$STORE_FS" = loop ]; then
	echo "  empty store before each pull, each tool's on its own fresh ext4 (loop device)"
else
	echo "  empty store before each pull, in a directory of $W"
fi
echo
printf '%-8s %9s %9s %9s %11s  %s\n' tool median_s min_s max_s disk_MB version
for t in "${tools[@]}"; do
	ok "$t" || continue
	printf '%-8s %9s %9s %9s %11s  %s\n' "$t" "${med[$t]}" "${lo[$t]}" "${hi[$t]}" "$(mb "${disk[$t]:-0}")" "${versions[$t]:-}"
done
for t in berth podman docker ctr skopeo; do
	[ -z "${skipped[$t]:-}" ] || printf '%-8s skipped: %s\n' "$t" "${skipped[$t]}"
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
declare -A ratios=()
target_met=null
if ok berth; then
	echo
	for t in podman docker ctr skopeo; do
		ok "$t" || continue
		ratios[$t]=$(ratio "${med[berth]}" "${med[$t]}")
		if [ "$t" = podman ]; then
			if awk -v r="${ratios[$t]}" -v m="$TARGET_PODMAN" 'BEGIN { exit !(r <= m) }'; then target_met=true; else target_met=false; fi
			verdict=$([ "$target_met" = true ] && echo MET || echo "NOT MET")
			printf 'berth/%-7s %6sx   target <= %sx: %s\n' "$t" "${ratios[$t]}" "$TARGET_PODMAN" "$verdict"
		else
			printf 'berth/%-7s %6sx\n' "$t" "${ratios[$t]}"
		fi
	done
fi

# The JSON line.
json_tools='{}'
for t in berth podman docker ctr skopeo; do
	if [ -n "${skipped[$t]:-}" ]; then
		json_tools=$(jq -c --arg t "$t" --arg why "${skipped[$t]}" '.[$t] = {skipped: $why}' <<<"$json_tools")
	elif ok "$t"; then
		runs_json=$(printf '%s\n' ${runs[$t]} | jq -cs .)
		json_tools=$(jq -c --arg t "$t" --arg v "${versions[$t]:-}" \
			--argjson med "${med[$t]}" --argjson lo "${lo[$t]}" --argjson hi "${hi[$t]}" \
			--argjson disk "${disk[$t]:-null}" --argjson runs "$runs_json" \
			'.[$t] = {version: $v, median_s: $med, min_s: $lo, max_s: $hi, runs_s: $runs, disk_bytes: $disk}' <<<"$json_tools")
	fi
done
json_ratios='{}'
for t in podman docker ctr skopeo; do
	[ -n "${ratios[$t]:-}" ] || continue
	json_ratios=$(jq -c --arg k "berth/$t" --argjson v "${ratios[$t]}" '.[$k] = $v' <<<"$json_ratios")
done
json=$(jq -cn --arg ref "$REF" --arg digest "$DIGEST" --argjson bytes "$IMAGE_BYTES" --argjson layers "${LAYERS:-0}" \
	--argjson n "$N" --argjson warmup "$WARMUP" --argjson settle "$SETTLE" --arg store_fs "$STORE_FS" \
	--argjson tools "$json_tools" --argjson ratios "$json_ratios" \
	--argjson target "$TARGET_PODMAN" --argjson met "$target_met" \
	'{bench: "pull", image: {ref: $ref, digest: $digest, compressed_bytes: $bytes, layers: $layers},
	  n: $n, warmup: $warmup, settle_s: $settle, store_fs: $store_fs, tools: $tools, ratios: $ratios,
	  target: {"berth/podman_max": $target, met: $met}}')
echo
echo "$json"
[ -z "$JSON_OUT" ] || printf '%s\n' "$json" >"$JSON_OUT"

[ ${#skipped[@]} = 0 ] || exit 1
exit 0
