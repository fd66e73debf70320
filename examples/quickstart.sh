#!/usr/bin/env bash
# quickstart.sh: build berth and run a first container, offline.
#
# Installs the build dependencies from Debian if they are missing, builds
# bin/berth-runtime, makes an OCI bundle whose root filesystem is
# busybox-static, and runs a container from it with berth-runtime.
# Run as root (containers need it until rootless mode lands).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
	echo "quickstart: run me as root (sudo $0)" >&2
	exit 1
fi
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
	export PATH=/usr/local/go/bin:$PATH
fi
command -v go >/dev/null 2>&1 || { echo "quickstart: Go 1.24 or newer is needed (https://go.dev/doc/install)" >&2; exit 1; }

need=()
for p in gcc make libseccomp-dev busybox-static jq; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
	echo "quickstart: installing ${need[*]}"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

make build >/dev/null
bundle=$(mktemp -d /tmp/berth-quickstart.XXXXXX)
trap 'rm -rf "$bundle"' EXIT
mkdir -p "$bundle/rootfs/bin"
cp /bin/busybox "$bundle/rootfs/bin/busybox"
for applet in sh echo cat ls id hostname uname ps; do
	ln -s busybox "$bundle/rootfs/bin/$applet"
done
(cd "$bundle" && "$OLDPWD/bin/berth-runtime" spec)
jq '.process.terminal = false
    | .process.args = ["sh", "-c", "echo \"hello from $(hostname), a berth container\"; id; uname -sr; ps"]' \
   "$bundle/config.json" > "$bundle/config.json.new"
mv "$bundle/config.json.new" "$bundle/config.json"
./bin/berth-runtime --root "$bundle/state" run --bundle "$bundle" "quickstart-$$"

# The same root filesystem as an image in a private berth store: import it,
# list it and show its history (no registry needed).
echo
echo "quickstart: importing the root filesystem as an image"
tar -C "$bundle/rootfs" -c . | ./bin/berth --root "$bundle/store" --config /dev/null \
	import -c 'CMD ["sh"]' -m "quickstart" - quickstart/busybox:1
./bin/berth --root "$bundle/store" --config /dev/null images
./bin/berth --root "$bundle/store" --config /dev/null history quickstart/busybox:1
