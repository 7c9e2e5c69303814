#!/usr/bin/env bash
# Builds an isomodel base image from this machine's own binaries, without pulling anything:
# a minimal root filesystem (the runtime, the shared libraries `ldd` lists for it, /bin/sh) is
# assembled in a temporary dir and `docker import`ed as isomodel/base:<flavour>.
#
#   deploy/docker/make-base-image.sh node     # node (+ onnxruntime-node's libraries): node and onnx models
#   deploy/docker/make-base-image.sh python   # python3 + its standard library: python and command models
#   deploy/docker/make-base-image.sh full     # both: the gateway image (gateway.Dockerfile)
#
# Environment: DOCKER (the CLI, default docker; DOCKER_HOST is honoured), NODE (default: node on
# PATH), PYTHON (default /usr/bin/python3, else python3 on PATH), TAG (default isomodel/base:<flavour>).
set -euo pipefail

flavour=${1:-}
case "$flavour" in
  node | python | full) ;;
  *)
    echo "usage: $0 node|python|full" >&2
    exit 2
    ;;
esac
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
docker=${DOCKER:-docker}
tag=${TAG:-isomodel/base:$flavour}

root=$(mktemp -d "${TMPDIR:-/tmp}/isomodel-rootfs.XXXXXX")
trap 'rm -rf "$root"' EXIT

# Merged-/usr layout, like the Debian host the files come from.
mkdir -p "$root"/usr/bin "$root"/usr/lib "$root"/usr/lib64 "$root"/usr/local/bin "$root"/etc "$root"/tmp "$root"/proc "$root"/sys "$root"/dev
ln -s usr/bin "$root/bin"
ln -s usr/lib "$root/lib"
ln -s usr/lib64 "$root/lib64"
chmod 1777 "$root/tmp"

# Copies files to the same path under the root (through the merged-/usr links), following symlinks.
put() {
  local f
  for f in "$@"; do
    [ -e "$f" ] || continue
    mkdir -p "$root$(dirname "$f")"
    cp -L "$f" "$root$f"
  done
}

# Every shared library an executable or library needs, as ldd resolves it on this machine.
libs_of() {
  ldd "$@" 2>/dev/null | grep -o '/[^ ]*' | sort -u || true
}

# /bin/sh: the images' CMD lines and `runtime: command` models use it.
sh_bin=$(readlink -f /bin/sh)
put "$sh_bin"
[ "$sh_bin" = /usr/bin/sh ] || ln -sf "$sh_bin" "$root/usr/bin/sh"
put $(libs_of "$sh_bin")

if [ "$flavour" = node ] || [ "$flavour" = full ]; then
  node=$(readlink -f "${NODE:-$(command -v node)}")
  cp "$node" "$root/usr/local/bin/node"
  put $(libs_of "$node")
  # onnxruntime-node's native binding (runtime onnx) needs a few more (librt).
  put $(libs_of "$repo"/node_modules/onnxruntime-node/bin/napi-v6/linux/*/*.so* "$repo"/node_modules/onnxruntime-node/bin/napi-v6/linux/*/*.node 2>/dev/null | grep -v '/node_modules/')
  # better-sqlite3 (the gateway image).
  put $(libs_of $(find "$repo/node_modules/better-sqlite3/build" -name '*.node' 2>/dev/null) | grep -v '/node_modules/')
fi

if [ "$flavour" = python ] || [ "$flavour" = full ]; then
  if [ -n "${PYTHON:-}" ]; then python=$PYTHON; elif [ -x /usr/bin/python3 ]; then python=/usr/bin/python3; else python=$(command -v python3); fi
  # The interpreter finds its standard library from its own path: keep both where they are.
  read -r exe stdlib platstdlib < <("$python" -c 'import sys, sysconfig; p = sysconfig.get_paths(); print(sys.executable, p["stdlib"], p["platstdlib"])')
  exe=$(readlink -f "$exe")
  put "$exe"
  [ "$exe" = /usr/bin/python3 ] || ln -sf "$exe" "$root/usr/bin/python3"
  for lib in $(printf '%s\n' "$stdlib" "$platstdlib" | sort -u); do
    mkdir -p "$root$lib"
    # The standard library without its test suite, GUI, static libpython and bundled wheels.
    tar -C "$lib" -c --exclude=./test --exclude=./idlelib --exclude=./tkinter --exclude=./turtledemo \
      --exclude=./ensurepip --exclude=./lib2to3 --exclude='./config-*' --exclude=./site-packages --exclude=./dist-packages . |
      tar -C "$root$lib" -x
  done
  put $(libs_of "$exe" $(find "$root$platstdlib" -name '*.so' | sed "s|^$root||"))
fi

cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF

tar -C "$root" -c --numeric-owner --owner=0 --group=0 . |
  "$docker" import \
    --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change "LABEL isomodel.base=$flavour" \
    - "$tag" >/dev/null
echo "$tag"
