#!/usr/bin/env bash
# `make bench`: every benchmark, one after the other (each prints its own
# figures and baselines). Not part of `make test`: figures, not verdicts.
# Everything printed also goes to bench/results/LATEST.md, headed by the
# date, the commit, the machine's cores and its load average (the machine
# may be shared: a busy one gives lower, noisier figures), so that
# regressions show in review. The file is replaced only by a complete run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export JV_BIN_DIR="$root/build/bin"
results="$root/bench/results"
mkdir -p "$results"
out="$results/LATEST.md"
tmp="$out.partial"

load() { cut -d' ' -f1-3 /proc/loadavg; }
cores=$(nproc)
load0=$(load)
{
    echo "# Benchmark figures"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- commit: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "- machine: $cores cores ($(nproc --all) present), $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(uname -sr)"
    echo "- build: $(awk -F= '/^CMAKE_BUILD_TYPE:/ { print $2 }' "$root/build/CMakeCache.txt" 2>/dev/null)"
    echo "- load average (1, 5, 15 min) at the start: $load0"
    if awk -v l="${load0%% *}" 'BEGIN { exit !(l >= 1.0) }'; then
        echo "- NOTE: the machine was shared and busy when this ran (load"
        echo "  average $load0 on $cores cores before the first benchmark):"
        echo "  figures are lower and noisier than on a quiet machine; the"
        echo "  baselines ran in the same conditions, so the ratios say more."
    fi
    echo
    echo "Command: \`make bench\` (scripts/bench.sh). Each section is one"
    echo "benchmark's output; its header says what both sides do."
} >"$tmp"

section() { # name command...
    local name=$1
    shift
    echo "== $name"
    {
        echo
        echo "## $name"
        echo
        echo "load average before: $(load)"
        echo
        echo '```'
    } >>"$tmp"
    "$@" 2>&1 | tee -a "$tmp"
    echo '```' >>"$tmp"
}

for b in "$JV_BIN_DIR"/*_bench; do
    # peers_bench runs inside bench/peers, beside the libraries.
    [ "$(basename "$b")" = peers_bench ] && continue
    section "$(basename "$b")" "$b"
done
section "peers (Yjs, Automerge, Jarvis)" "$root/bench/peers/run.sh"
for s in "$root"/bench/*_bench.sh; do
    section "$(basename "$s")" "$s"
done
echo >>"$tmp"
echo "Load average at the end: $(load)" >>"$tmp"
mv "$tmp" "$out"
echo "figures written to bench/results/LATEST.md"
