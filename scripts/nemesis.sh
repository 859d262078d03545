#!/usr/bin/env bash
# Long fault runs, beyond what `make test` has time for.
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
    echo "usage: scripts/nemesis.sh crash N [--asan]" >&2
    exit 2
}

mode=${1:-}
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
