#!/usr/bin/env bash
# tests/ui/setup.sh SRC_DIR DEST_DIR: installs the browser tests' npm
# packages (package-lock.json, exactly) into DEST_DIR/node_modules, under
# the build directory, never the source tree. Runs again only when the
# lock file changed. Downloads no browser: puppeteer-core drives the
# Debian chromium that scripts/deps.sh installs.
set -euo pipefail
src=$1
dest=$2
mkdir -p "$dest"
for tool in node npm chromium; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "ui setup: $tool is missing: run scripts/deps.sh (make test does)" >&2
        exit 1
    fi
done
stamp=$dest/node_modules/.jarvis-lock
if [ -f "$stamp" ] && cmp -s "$stamp" "$src/package-lock.json"; then
    exit 0
fi
cp "$src/package.json" "$src/package-lock.json" "$dest/"
cd "$dest"
npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
cp package-lock.json "$stamp"
