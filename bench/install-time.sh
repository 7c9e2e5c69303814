#!/usr/bin/env bash
# Where the install's time goes, on a fresh clone of this checkout: npm ci's fetch and unpack,
# better-sqlite3's native module, the TypeScript build of `prepare`, and the full build `npm test`
# runs. Usage: bench/install-time.sh [--offline]   (--offline: packages from npm's local cache only)
# Prints one line per phase: seconds, exit status, command. Leaves nothing behind.
set -uo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
offline=()
[ "${1:-}" = "--offline" ] && offline=(--offline)
export ONNXRUNTIME_NODE_INSTALL=skip

phase() {
  local t0 t1 rc
  t0=$(date +%s.%N)
  "$@" >"$work/phase.log" 2>&1
  rc=$?
  t1=$(date +%s.%N)
  printf '%7.1f s  rc=%d  %s\n' "$(echo "$t1 - $t0" | bc)" "$rc" "$*"
  [ "$rc" -eq 0 ] || tail -20 "$work/phase.log" >&2
}

git clone -q "$src" "$work/repo" && cd "$work/repo" || exit 1
echo "$(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), node $(node --version), npm $(npm --version)"
phase npm ci --ignore-scripts --no-audit --no-fund "${offline[@]}"
phase npm rebuild better-sqlite3 "${offline[@]}"
phase npx tsc -p tsconfig.build.json
rm -rf dist
phase npx tsc -p tsconfig.json
