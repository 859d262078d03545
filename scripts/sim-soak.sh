#!/usr/bin/env bash
# Many seeded simulations of the sync protocol (jarvis-sim, sim/sim.h),
# beyond the 200 that `make test` runs.
#
#   scripts/sim-soak.sh [SEEDS] [FIRST] [--asan] [--jobs J]
#       SEEDS runs (default 10000) from seed FIRST (default: random,
#       printed), on J processes at once (default: the number of cores).
#       Seeds go in blocks of 100, each block with its own shape, in turn:
#       3, 4, 5, 6 and 8 nodes; 3, 5 and 8 simulated seconds of writes
#       and faults (partitions, one-way too, loss, duplication, crashes,
#       clock steps); every fifth block with anti-entropy alone (fanout 0).
#       A block stops at its first failure; the script reports every
#       failing seed with the command that replays it, and exits 1 if any.
#
# The build (build/, or build-asan/ with --asan) is made first. Output:
# <build dir>/sim-soak/ (one file per block; kept for failing blocks only).
set -euo pipefail
cd "$(dirname "$0")/.."

seeds=10000 first="" build=build jobs=$(nproc)
args=()
while [ $# -gt 0 ]; do
    case "$1" in
    --asan) build="build-asan" ;;
    --jobs) jobs="$2"; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) args+=("$1") ;;
    esac
    shift
done
[ ${#args[@]} -ge 1 ] && seeds="${args[0]}"
[ ${#args[@]} -ge 2 ] && first="${args[1]}"
case "$seeds$first" in *[!0-9]*) echo "usage: scripts/sim-soak.sh [SEEDS] [FIRST] [--asan] [--jobs J]" >&2; exit 2 ;; esac
[ -n "$first" ] || first=$(od -An -N6 -tu8 /dev/urandom | tr -d ' ')

if [ "$build" = build-asan ]; then
    cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DJV_SANITIZE=ON >/dev/null
else
    cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$build" -j"$jobs" --target jarvis-sim >/dev/null
sim="$build/bin/jarvis-sim"
out="$build/sim-soak"
rm -rf "$out"
mkdir -p "$out"
echo "sim-soak: $seeds seeds from $first, $jobs at a time, output in $out"

nodes=(3 4 5 6 8)
secs=(3 5 8)
block() { # block index -> its options
    local b=$1
    local o="--nodes ${nodes[$((b % 5))]} --duration ${secs[$((b / 5 % 3))]}"
    [ $((b % 5)) -eq 4 ] && o="$o --fanout 0"
    echo "$o"
}

blocks=$(((seeds + 99) / 100))
start=$(date +%s)
run_block() {
    local b=$1 n=100
    [ $(((b + 1) * 100)) -gt "$seeds" ] && n=$((seeds - b * 100))
    local s=$((first + b * 100)) f="$out/block-$b.log"
    # shellcheck disable=SC2046
    if "$sim" $(block "$b") --seed "$s" --seeds "$n" >"$f" 2>&1; then
        grep -c ': ok;' "$f" >"$f.count" || true
        rm -f "$f"
    else
        grep -c ': ok;' "$f" >"$f.count" || true
        echo "FAIL block $b: $(grep -v ': ok;' "$f" | grep '^seed' | head -1)"
        echo "  replay: $sim $(block "$b") --seed $(grep -v ': ok;' "$f" | grep -o '^seed [0-9]*' | head -1 | cut -d' ' -f2) --trace"
    fi
}
export -f run_block block
export sim out seeds first
export nodes_s="${nodes[*]}" secs_s="${secs[*]}"
# shellcheck disable=SC2016 # expanded by the inner bash
seq 0 $((blocks - 1)) | xargs -P "$jobs" -I{} bash -c \
    'nodes=($nodes_s); secs=($secs_s); run_block {}'

passed=$(cat "$out"/*.count 2>/dev/null | awk '{s += $1} END {print s + 0}')
failed=$(find "$out" -name 'block-*.log' | wc -l)
echo "sim-soak: $passed of $seeds seeds passed, $failed failing block(s)," \
     "$(($(date +%s) - start)) s"
[ "$failed" -eq 0 ] && [ "$passed" -eq "$seeds" ]
