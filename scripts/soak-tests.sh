#!/usr/bin/env bash
# Runs the whole test suite N times in a row while stress-ng keeps every
# core busy, to find tests that fail only on a loaded machine. Prints
# pass/fail per run and a summary; exits 1 if any run failed.
#
#   scripts/soak-tests.sh N [--normal | --asan | --both]   (default --both)
#
# --normal: the RelWithDebInfo build in build/; --asan: the sanitizer build
# in build-asan/; --both: each run runs both, one after the other. Each
# run's ctest output is kept in <build dir>/soak-<run>.log. stress-ng is
# installed through scripts/deps.sh when missing and stopped on exit.
# SOAK_CPUS sets the number of stress-ng workers (default: the cores).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
    echo "usage: scripts/soak-tests.sh N [--normal | --asan | --both]" >&2
    exit 2
}

n=${1:-}
[[ "$n" =~ ^[1-9][0-9]*$ ]] || usage
shift
which=both
for a in "$@"; do
    case "$a" in
    --normal) which=normal ;;
    --asan) which=asan ;;
    --both) which=both ;;
    *) usage ;;
    esac
done
case "$which" in
normal) dirs=(build) ;;
asan) dirs=(build-asan) ;;
both) dirs=(build build-asan) ;;
esac

scripts/deps.sh --soak
for d in "${dirs[@]}"; do
    # The targets are named as their dirs; the build's progress lines stay
    # out of the report (its errors still show).
    make --no-print-directory "$d" >/dev/null
done

jobs=$(nproc 2>/dev/null || echo 2)
cpus=${SOAK_CPUS:-$jobs}
stress-ng --cpu "$cpus" --quiet &
stress_pid=$!
stop_stress() {
    kill "$stress_pid" 2>/dev/null || true
    wait "$stress_pid" 2>/dev/null || true
}
trap stop_stress EXIT
trap 'exit 130' INT TERM
echo "soak: $n run(s) of ${dirs[*]}, stress-ng --cpu $cpus (pid $stress_pid)"

runs=0
failed=0
t_all=$(date +%s)
for i in $(seq 1 "$n"); do
    for d in "${dirs[@]}"; do
        log="$d/soak-$i.log"
        t0=$(date +%s)
        if (cd "$d" && ctest --output-on-failure -j "$jobs") >"$log" 2>&1; then
            verdict=pass
        else
            verdict=FAIL
            failed=$((failed + 1))
        fi
        runs=$((runs + 1))
        printf 'run %d/%d  %-10s  %s  %4ds\n' "$i" "$n" "$d" "$verdict" \
            $(($(date +%s) - t0))
        if [ "$verdict" = FAIL ]; then
            # ctest's own list of the tests that failed, and where the log is.
            sed -n '/tests failed out of/,$p' "$log" | grep -E '^\s+[0-9]+ - ' |
                sed 's/^/    /' || true
            echo "    log: $log"
        fi
    done
done

echo "soak: $((runs - failed)) of $runs run(s) passed" \
    "in $(($(date +%s) - t_all)) s under stress-ng --cpu $cpus"
[ "$failed" -eq 0 ]
