#!/usr/bin/env bash
# `make bench`: every benchmark, one after the other (each prints its own
# figures and baselines). Not part of `make test`: figures, not verdicts.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export JV_BIN_DIR="$root/build/bin"
for b in "$JV_BIN_DIR"/*_bench; do
    echo "== $(basename "$b")"
    "$b"
done
for s in "$root"/bench/*_bench.sh; do
    echo "== $(basename "$s")"
    "$s"
done
