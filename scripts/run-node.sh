#!/usr/bin/env bash
# `make run`: one node with embedded defaults, data in ./data (git-ignored).
# Builds quietly (only errors are shown), starts jarvisd, and prints how to
# reach it once it answers. Extra jarvisd flags can be passed through
# JARVISD_FLAGS. JARVIS_RUN_BIN_DIR (a built bin/ directory: no build) and
# JARVIS_RUN_DATA_DIR are for tests.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
data="${JARVIS_RUN_DATA_DIR:-$root/data}"
bin="${JARVIS_RUN_BIN_DIR:-}"
if [ -z "$bin" ]; then
    bin="$root/build/bin"
    log=$(mktemp)
    trap 'rm -f "$log"' EXIT
    echo "Building (build/) ..."
    if ! { cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
           cmake --build "$root/build" -j "${JOBS:-2}"; } >"$log" 2>&1; then
        # The compiler's and linker's complaints, not the progress lines.
        grep -vE '^\[ *[0-9]+%\]|^-- |^Consolidate|^make(\[[0-9]+\])?: (Entering|Leaving)' \
            "$log" >&2 || true
        echo "make run: the build failed (see above)" >&2
        exit 1
    fi
fi
# The data dir holds the node's secret key and admin key: only we may read
# it, whatever the umask (an older ./data is tightened too).
(umask 077 && mkdir -p "$data")
chmod 700 "$data"

stamp=$(mktemp)
# shellcheck disable=SC2086
"$bin/jarvisd" --data-dir "$data" ${JARVISD_FLAGS:-} &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null || true' INT TERM
# Up once it has written the address it serves (after this start).
while ! [ "$data/api.addr" -nt "$stamp" ]; do
    if ! kill -0 "$pid" 2>/dev/null; then
        rm -f "$stamp"
        wait "$pid" || exit $?
        exit 1
    fi
    sleep 0.1
done
rm -f "$stamp"
addr=$(cat "$data/api.addr")
cat <<TXT
jarvisd is running (pid $pid)
  session API  $addr   (GET /health, docs/api.md)
  data dir     $data
  admin key    $data/admin.key   (created on first start, mode 0600)
In another terminal:
  export JARVIS_DATA_DIR=$data
  $bin/jarvisctl status
Stop with Ctrl-C.
TXT
set +e
wait "$pid"
rc=$?
# Interrupted: wait again for the node's own exit status.
if [ "$rc" -gt 128 ] && kill -0 "$pid" 2>/dev/null; then
    wait "$pid"
    rc=$?
fi
exit "$rc"
