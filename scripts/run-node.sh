#!/usr/bin/env bash
# `make run`: one node with embedded defaults, data in ./data (git-ignored).
# Extra jarvisd flags can be passed through JARVISD_FLAGS.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
data="$root/data"
bin="$root/build/bin"
# The data dir holds the node's secret key and admin key: only we may read
# it, whatever the umask (an older ./data is tightened too).
(umask 077 && mkdir -p "$data")
chmod 700 "$data"
cat <<TXT
Starting jarvisd
  session API  http://127.0.0.1:7410   (GET /health, docs/api.md)
  data dir     $data
  admin key    $data/admin.key   (created on first start, mode 0600)
In another terminal:
  export JARVIS_DATA_DIR=$data
  $bin/jarvisctl status
Stop with Ctrl-C.
TXT
# shellcheck disable=SC2086
exec "$bin/jarvisd" --data-dir "$data" ${JARVISD_FLAGS:-}
