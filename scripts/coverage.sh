#!/usr/bin/env bash
# Line and branch coverage per top-level folder of the instrumented build
# (make coverage builds it in build-cov and runs the suite first).
#   scripts/coverage.sh [BUILD_DIR]     default build-cov
# gcovr reads the .gcda files every process of the suite left; the table
# counts the project's own sources only (not tests/, bench/).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build-cov}
json="$dir/coverage.json"
gcovr --root . --object-directory "$dir" \
    --filter 'crdt/' --filter 'storage/' --filter 'net/' \
    --filter 'node/' --filter 'cli/' \
    --exclude-unreachable-branches --exclude-throw-branches \
    --json-summary "$json" --html-details "$dir/coverage.html" \
    --print-summary >/dev/null
python3 - "$json" <<'PY'
import json, sys
files = json.load(open(sys.argv[1]))["files"]
folders = ["crdt", "storage", "net", "node", "cli"]
rows = {f: [0, 0, 0, 0] for f in folders}
for f in files:
    top = f["filename"].split("/", 1)[0]
    if top in rows:
        r = rows[top]
        r[0] += f["line_covered"]; r[1] += f["line_total"]
        r[2] += f["branch_covered"]; r[3] += f["branch_total"]
def pct(a, b):
    return f"{100.0 * a / b:5.1f} %" if b else "    -  "
print(f"{'folder':10} {'lines':>20} {'branches':>20}")
tot = [0, 0, 0, 0]
for f in folders:
    r = rows[f]
    tot = [a + b for a, b in zip(tot, r)]
    print(f"{f + '/':10} {pct(r[0], r[1])} {r[0]:6}/{r[1]:<6} "
          f"{pct(r[2], r[3])} {r[2]:6}/{r[3]:<6}")
print(f"{'total':10} {pct(tot[0], tot[1])} {tot[0]:6}/{tot[1]:<6} "
      f"{pct(tot[2], tot[3])} {tot[2]:6}/{tot[3]:<6}")
PY
echo "coverage: per-file detail in $dir/coverage.html"
