#!/usr/bin/env bash
# Long fault runs, beyond what `make test` has time for.
#
#   scripts/nemesis.sh N SECONDS [--asan] [--faults links|nodes|all]
#       N schedules of SECONDS each of the seeded nemesis against five real
#       nodes (tests/net/nemesis_test.c): partitions, one-way and flapping
#       links through the fault switch and, run as root, below the
#       application in network namespaces; kills (also mid-catch-up and
#       mid-backup), pauses past the peer timeout, a clock 5 min off. One
#       after the other; pass or fail per seed, then a summary. A seed's
#       output goes to <build dir>/nemesis/<seed>.log (kept for failures
#       only); JV_NEMESIS_SEED=<seed> build/bin/nemesis_test SECONDS all
#       replays one. `make test` runs two schedules of 15 s.
#
#   scripts/nemesis.sh crash N [--asan]
#       N cycles of SIGKILL at a random moment of a real jarvisd under a
#       write load through the API (tests/node/api_durability_test.c): after
#       each restart every acknowledged write is there, no write counted
#       twice beyond those left unanswered, and verify passes. `make test`
#       runs two cycles.
#
# The build (build/, or build-asan/ with --asan) is made first; the whole
# output goes to <build dir>/nemesis-crash.log. The test's seed is printed;
# JV_SEED=<n> replays it.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
    echo "usage: scripts/nemesis.sh N SECONDS [--asan] [--faults links|nodes|all]" >&2
    echo "       scripts/nemesis.sh crash N [--asan]" >&2
    exit 2
}

schedules() {
    local n=$1 secs=$2 dir=build faults=all
    shift 2
    while [ $# -gt 0 ]; do
        case "$1" in
        --asan) dir=build-asan ;;
        --faults)
            faults=${2:-}
            shift
            ;;
        *) usage ;;
        esac
        shift
    done
    case "$faults" in links | nodes | all) ;; *) usage ;; esac
    make --no-print-directory "$dir" >/dev/null # its errors still show
    local bin="$PWD/$dir/bin" out="$dir/nemesis" t0 pass=0 fail=0 failed=()
    mkdir -p "$out"
    t0=$(date +%s)
    for i in $(seq 1 "$n"); do
        local log="$out/run.$$.log" status seed
        set +e
        JV_BIN_DIR="$bin" JV_SOURCE_DIR="$PWD" JARVIS_CONFIG= \
            "$bin/nemesis_test" "$secs" "$faults" >"$log" 2>&1
        status=$?
        set -e
        seed=$(sed -n 's/^nemesis seed: \([0-9]*\).*/\1/p' "$log" | head -n 1)
        seed=${seed:-unknown-$i}
        if [ "$status" -eq 0 ]; then
            pass=$((pass + 1))
            echo "schedule $i/$n seed $seed: passed" \
                "($(sed -n 's/.*converged (\(.*\))$/converged: \1/p; s/^verify: passed on every node (\(.*\))$/verify: \1/p' "$log" | paste -sd ';' -))"
            rm -f "$log"
        else
            fail=$((fail + 1))
            failed+=("$seed")
            mv "$log" "$out/$seed.log"
            echo "schedule $i/$n seed $seed: FAILED (log: $out/$seed.log)"
            grep -E '^ERROR|nemesis_test.c:[0-9]+: ' "$out/$seed.log" |
                head -n 3 || true
        fi
    done
    echo "nemesis: $n schedule(s) of $secs s ($faults) in" \
        "$(($(date +%s) - t0)) s: $pass passed, $fail failed" \
        "${failed[*]:+(seeds: ${failed[*]})}"
    [ "$fail" -eq 0 ]
}

mode=${1:-}
if [[ "$mode" =~ ^[1-9][0-9]*$ ]]; then
    [[ "${2:-}" =~ ^[1-9][0-9]*$ ]] || usage
    schedules "$@"
    exit $?
fi
n=${2:-}
[ "$mode" = crash ] || usage
[[ "$n" =~ ^[1-9][0-9]*$ ]] || usage
dir=build
case "${3:-}" in
"") ;;
--asan) dir=build-asan ;;
*) usage ;;
esac
make --no-print-directory "$dir" >/dev/null # its errors still show

t0=$(date +%s)
bin="$PWD/$dir/bin"
log="$dir/nemesis-crash.log"
# The other tests of the program run once, as in `make test`.
set +e
JV_CRASH_CYCLES="$n" JV_BIN_DIR="$bin" JV_SOURCE_DIR="$PWD" JARVIS_CONFIG= \
    "$bin/api_durability_test" >"$log" 2>&1
status=$?
set -e
grep -E '^seed|^signal 9|ERROR|FAILED|outside' "$log" || true
echo "nemesis crash: $n cycle(s) in $(($(date +%s) - t0)) s:" \
    "$([ "$status" -eq 0 ] && echo passed || echo "FAILED (log: $log)")"
exit "$status"
