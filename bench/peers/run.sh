#!/usr/bin/env bash
# bench/peers: the same workload through Yjs, Automerge and Jarvis, side by
# side in one run (workload.mjs; the header of bench/peers_bench.c says
# what the Jarvis side does). Installs the libraries from npm (pinned in
# package-lock.json) on first use. Not part of `make test`.
#   bench/peers/run.sh [SETS]     default 1,000,000
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
sets=${1:-1000000}
bin=${JV_BIN_DIR:-$root/build/bin}
"$root/scripts/deps.sh" --bench
[ -d "$here/node_modules" ] || (cd "$here" && npm ci --no-audit --no-fund --silent)
[ -x "$bin/peers_bench" ] || { echo "peers: $bin/peers_bench not built (make build)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out="$work/figures.jsonl"
for lib in yjs automerge; do
    echo "$lib: $sets sets..."
    node "$here/libs.mjs" make "$lib" "$sets" "$work" >>"$out"
    node "$here/libs.mjs" apply "$lib" state "$work" >>"$out"
    node "$here/libs.mjs" apply "$lib" incremental "$work" >>"$out"
    rm -f "$work/$lib".*
done
JV_BIN_DIR=$bin "$bin/peers_bench" --sets "$sets" --json | tee -a "$out" | grep -v '^{'
node "$here/report.mjs" "$out"
