#!/usr/bin/env bash
# Installs the Debian packages Jarvis needs, only those that are missing.
# Idempotent and silent when everything is present.
#   scripts/deps.sh          build + test dependencies
#   scripts/deps.sh --bench  also the tools the benchmarks compare against
#   scripts/deps.sh --clang  also clang (the second compiler CI builds with)
#   scripts/deps.sh --soak   also stress-ng (scripts/soak-tests.sh)
#   scripts/deps.sh --coverage  also gcovr (make coverage)
set -euo pipefail

pkgs=(
    build-essential cmake pkg-config
    libsodium-dev libnng-dev libsqlite3-dev libmsgpack-dev libuv1-dev
    libjansson-dev libcurl4-openssl-dev libzstd-dev libhttp-parser-dev
    libcmocka-dev
    # make package and its test (tests/pkg): CPack's DEB generator, the
    # package checks, the completion the package depends on, and what the
    # test needs to run the unit's command line as systemd would.
    dpkg-dev fakeroot lintian bash-completion acl curl
    # A node that does not stop in a test has its threads' stacks printed.
    gdb
    # The dashboard's browser test (tests/ui): headless Chromium with a
    # font for its screenshots, and Node.js to drive it (puppeteer-core
    # and axe-core come from tests/ui/package-lock.json, under the build
    # dir: tests/ui/setup.sh).
    chromium fonts-dejavu-core nodejs
)
# npm ships inside some nodejs builds (NodeSource's); Debian's is a
# package of its own.
command -v npm >/dev/null 2>&1 || pkgs+=(npm)
case "${1:-}" in
# nginx: the HTTP ceiling of http_bench.sh (run by it, unprivileged).
# nodejs (with npm): Yjs and Automerge in bench/peers.
--bench) pkgs+=(wrk redis-server redis-tools nginx nodejs) ;;
--clang) pkgs+=(clang) ;;
--soak) pkgs+=(stress-ng) ;;
--coverage) pkgs+=(gcovr) ;;
esac

missing=()
for p in "${pkgs[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$status" = "installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
    sudo=()
elif command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
else
    echo "deps: missing Debian packages: ${missing[*]}" >&2
    echo "deps: run as root, or install them: apt-get install ${missing[*]}" >&2
    exit 1
fi

echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt_install() {
    "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" \
        >/tmp/jarvis-deps.log 2>&1
}
if ! apt_install; then
    # A fresh machine may have empty package lists.
    "${sudo[@]}" apt-get update -q >>/tmp/jarvis-deps.log 2>&1 || true
    if ! apt_install; then
        echo "deps: apt-get failed; see /tmp/jarvis-deps.log" >&2
        tail -n 20 /tmp/jarvis-deps.log >&2
        exit 1
    fi
fi
