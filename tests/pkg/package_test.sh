#!/usr/bin/env bash
# package_test.sh BUILD_DIR - the Debian package of this build, as an
# operator meets it: CPack makes it (as `make package` does), it is
# unpacked into a scratch root, and the installed files are run and
# checked: jarvisd --version, jarvisctl --help, the shipped config, the
# unit (systemd-analyze verify and security), bash completion, the
# maintainer scripts (with stubbed system commands), and lintian with no
# error and no warning. Nothing outside a temporary directory is touched.
set -euo pipefail

build=$(cd "${1:?usage: package_test.sh BUILD_DIR}" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/jarvis-pkg.XXXXXX")
node=
cleanup() {
    [ -z "$node" ] || kill -KILL "$node" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
root=$work/root

fail() {
    echo "FAIL: $*" >&2
    exit 1
}
step() { echo "== $*"; }

for tool in cpack dpkg-deb lintian systemd-analyze bash; do
    command -v "$tool" >/dev/null ||
        fail "$tool is missing: scripts/deps.sh installs it"
done
[ -r /usr/share/bash-completion/bash_completion ] ||
    fail "bash-completion is missing: scripts/deps.sh installs it"

step "cpack -G DEB"
if ! (cd "$build" && cpack -G DEB -B "$work/out" --config CPackConfig.cmake) \
    >"$work/cpack.log" 2>&1; then
    cat "$work/cpack.log" >&2
    fail "cpack failed"
fi
debs=("$work"/out/jarvis_*.deb)
if [ ${#debs[@]} -ne 1 ] || [ ! -f "${debs[0]}" ]; then
    fail "no single .deb: ${debs[*]}"
fi
deb=${debs[0]}
echo "$(basename "$deb"), $(stat -c %s "$deb") bytes"

step "control data"
version=$(dpkg-deb -f "$deb" Version)
depends=$(dpkg-deb -f "$deb" Depends)
for dep in adduser bash-completion libsodium23 libnng1 libsqlite3-0; do
    [[ ", $depends," == *", $dep"[\ ,]* ]] || fail "Depends lacks $dep: $depends"
done
dpkg-deb -e "$deb" "$work/control"
grep -qx /etc/jarvis/jarvisd.conf "$work/control/conffiles" ||
    fail "/etc/jarvis/jarvisd.conf is not a conffile"
for s in postinst prerm postrm; do
    [ -x "$work/control/$s" ] || fail "control/$s missing or not executable"
done

step "dpkg-deb -x into a scratch root"
dpkg-deb -x "$deb" "$root"
for f in usr/bin/jarvisd usr/bin/jarvisctl \
    usr/lib/systemd/system/jarvisd.service etc/jarvis/jarvisd.conf \
    usr/share/bash-completion/completions/jarvisctl \
    usr/share/doc/jarvis/copyright usr/share/doc/jarvis/changelog.Debian.gz \
    usr/share/doc/jarvis/operations.md usr/share/man/man8/jarvisd.8.gz \
    usr/share/man/man1/jarvisctl.1.gz; do
    [ -e "$root/$f" ] || fail "the package lacks /$f"
done

step "the installed binaries run"
out=$("$root/usr/bin/jarvisd" --version)
# The release first, then the peer protocol and data dir schema it uses.
case "$out" in
"jarvisd ${version%-*} (peer protocol "[0-9]*", data dir schema "[0-9]*")") ;;
*) false ;;
esac ||
    fail "jarvisd --version says '$out', the package is $version"
"$root/usr/bin/jarvisctl" --help >"$work/ctl-help" ||
    fail "jarvisctl --help exited $?"
grep -q "^usage: jarvisctl" "$work/ctl-help" || fail "jarvisctl --help: $(head -3 "$work/ctl-help")"
# Through a file: grep -q stops reading at the match, and under pipefail
# jarvisd's SIGPIPE would fail the step now and then.
"$root/usr/bin/jarvisd" --help >"$work/d-help" ||
    fail "jarvisd --help exited $?"
grep -q "default: /etc/jarvis/jarvisd.conf" "$work/d-help" ||
    fail "jarvisd --help does not name the default config file"

# jarvisd reads the config before it looks at the flags after it, so an
# unknown last flag tells whether everything before it was accepted.
accepted() { # ARGS... : jarvisd took every setting before --not-a-flag
    local err
    err=$("$root/usr/bin/jarvisd" "$@" --not-a-flag 2>&1 >/dev/null) && return 1
    [[ $err == *"unknown option '--not-a-flag'"* ]] || {
        echo "$err" >&2
        return 1
    }
}
step "the shipped config, and its examples uncommented, are accepted"
accepted --config "$root/etc/jarvis/jarvisd.conf" ||
    fail "jarvisd refuses the shipped /etc/jarvis/jarvisd.conf"
sed 's/^#\([a-z-]* = \)/\1/' "$root/etc/jarvis/jarvisd.conf" >"$work/examples.conf"
[ "$(grep -c '^[a-z]' "$work/examples.conf")" -ge 8 ] ||
    fail "fewer example settings than expected in jarvisd.conf"
accepted --config "$work/examples.conf" ||
    fail "jarvisd refuses the examples of jarvisd.conf"

step "the unit's command line is accepted"
unit=$root/usr/lib/systemd/system/jarvisd.service
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
read -r -a argv <<<"$exec_start"
[ "${argv[0]}" = /usr/bin/jarvisd ] || fail "ExecStart runs ${argv[0]}"
# The unit's paths, moved into the scratch root and the temporary dir.
args=()
for a in "${argv[@]:1}"; do
    a=${a//\/etc\/jarvis/$root/etc/jarvis}
    a=${a//\/var\/lib\/jarvis/$work/data}
    a=${a//\/var\/backups\/jarvis/$work/backups}
    args+=("${a//\$\{CREDENTIALS_DIRECTORY\}/$work/cred}")
done
accepted "${args[@]}" || fail "jarvisd refuses the unit's ExecStart: $exec_start"
for want in "User=jarvis" "LoadCredential=cluster.key:/etc/jarvis/cluster.key" \
    "ProtectSystem=strict" "NoNewPrivileges=yes" "StateDirectory=jarvis" \
    "ExecReload=/bin/kill -HUP \$MAINPID"; do
    grep -qxF "$want" "$unit" || fail "the unit lacks $want"
done
grep -q '^DynamicUser=' "$unit" && fail "the unit still uses DynamicUser="

step "the unit's reload check: an edited key file is refused, with the fix"
# The privileged ExecReload= script, with %d (the credentials directory)
# and /etc/jarvis in the temporary dir.
guard=$(sed -n "s/^ExecReload=+\/bin\/sh -c '\(.*\)'\$/\1/p" "$unit")
[ -n "$guard" ] || fail "no ExecReload=+/bin/sh -c '...' line in the unit"
guard=${guard//%d/$work/reload/cred}
guard=${guard//\/etc\/jarvis/$work/reload/etc}
mkdir -p "$work/reload/cred" "$work/reload/etc"
"$root/usr/bin/jarvisctl" cluster-key -o "$work/reload/etc/cluster.key" >/dev/null
cp "$work/reload/etc/cluster.key" "$work/reload/cred/cluster.key"
sh -c "$guard" || fail "the reload check refuses an unchanged key file"
"$root/usr/bin/jarvisctl" cluster-key >>"$work/reload/etc/cluster.key"
if err=$(sh -c "$guard" 2>&1); then
    fail "the reload check passes an edited key file"
fi
[[ $err == *"systemctl restart jarvisd"* ]] ||
    fail "the reload check does not say to restart: $err"

step "the unit's command line runs as an unprivileged user"
# What systemd does for the unit, as far as it can be done without it: an
# unprivileged user without capabilities or new privileges, the key as a
# credential (root's, mode 0400, a read ACL entry for that user: mode
# 0440), the state directory owned by the user. Needs root (setpriv).
if [ "$(id -u)" -ne 0 ]; then
    echo "SKIPPED: needs root to switch to an unprivileged user"
else
    for tool in setpriv setfacl curl; do
        command -v "$tool" >/dev/null ||
            fail "$tool is missing: scripts/deps.sh installs it"
    done
    uid=65534 # nobody
    chmod 0711 "$work"
    mkdir -p "$work/cred" "$work/data"
    "$root/usr/bin/jarvisctl" cluster-key -o "$work/cred/cluster.key" >/dev/null
    chmod 0400 "$work/cred/cluster.key"
    setfacl -m "u:$uid:r" "$work/cred/cluster.key"
    [ "$(stat -c %a "$work/cred/cluster.key")" = 440 ] ||
        fail "the credential's mode is $(stat -c %a "$work/cred/cluster.key")"
    chmod 0711 "$work/cred"
    chown "$uid" "$work/data"
    chmod 0700 "$work/data"
    # The backup dir, as postinst makes it.
    install -d -o "$uid" -g "$uid" -m 0700 "$work/backups"
    setpriv --reuid="$uid" --regid="$uid" --clear-groups --no-new-privs \
        --bounding-set=-all --inh-caps=-all \
        env -i CREDENTIALS_DIRECTORY="$work/cred" \
        "$root/usr/bin/jarvisd" "${args[@]}" --listen tcp://127.0.0.1:0 \
        --api-listen 127.0.0.1:0 >"$work/node.log" 2>&1 &
    node=$!
    for _ in $(seq 1 200); do # 20 s
        [ -s "$work/data/api.addr" ] || ! kill -0 "$node" 2>/dev/null && break
        sleep 0.1
    done
    if ! health=$(curl -sf "$(cat "$work/data/api.addr" 2>/dev/null)/health"); then
        kill "$node" 2>/dev/null || true
        cat "$work/node.log" >&2
        fail "jarvisd as an unprivileged user did not serve /health"
    fi
    kill -HUP "$node"
    for _ in $(seq 1 200); do
        grep -q "SIGHUP: reloaded 1 cluster key" "$work/node.log" && break
        sleep 0.1
    done
    kill -TERM "$node"
    wait "$node" || fail "jarvisd exited $? on SIGTERM: $(cat "$work/node.log")"
    node=
    grep -q "SIGHUP: reloaded 1 cluster key" "$work/node.log" ||
        fail "SIGHUP did not reload the credential: $(cat "$work/node.log")"
    echo "served $health as uid $uid, reloaded on SIGHUP, stopped with 0"
fi

step "systemd-analyze verify on the installed unit"
# verify resolves the unit's dependencies and commands inside --root: give
# the scratch root the host's units and the two programs the unit runs
# besides jarvisd, and man the package's pages.
cp -a -n /usr/lib/systemd/system/. "$root/usr/lib/systemd/system/"
[ -e "$root/bin" ] || ln -s usr/bin "$root/bin"
cp /bin/sh /bin/kill "$root/usr/bin/"
if ! MANPATH=$root/usr/share/man systemd-analyze verify --root="$root" \
    jarvisd.service >"$work/verify.log" 2>&1; then
    cat "$work/verify.log" >&2
    fail "systemd-analyze verify failed"
fi
cat "$work/verify.log"
if grep -q jarvisd "$work/verify.log"; then
    fail "systemd-analyze verify warns about the unit"
fi
security=$(systemd-analyze security --offline=true --root="$root" \
    jarvisd.service 2>&1 | grep 'Overall exposure level') ||
    fail "systemd-analyze security gave no exposure level"
echo "$security"
level=$(sed -n 's/.*jarvisd.service: \([0-9.]*\).*/\1/p' <<<"$security")
awk -v l="$level" 'BEGIN { exit !(l != "" && l <= 2.0) }' ||
    fail "the unit's exposure level grew past 2.0: $security"

step "bash completion, with the system's bash-completion"
completed=$(bash -c '
    source /usr/share/bash-completion/bash_completion
    source "$1/usr/share/bash-completion/completions/jarvisctl"
    COMP_WORDS=(jarvisctl pee)
    COMP_CWORD=1
    COMP_LINE="jarvisctl pee"
    COMP_POINT=${#COMP_LINE}
    _jarvisctl jarvisctl pee jarvisctl
    printf "%s\n" "${COMPREPLY[@]}"' _ "$root")
[ "$completed" = peers ] || fail "completing 'jarvisctl pee' gave '$completed'"

step "maintainer scripts, with the system commands stubbed"
stubs=$work/stubs
mkdir -p "$stubs"
for cmd in adduser install deb-systemd-helper deb-systemd-invoke systemctl \
    rmdir; do
    printf '#!/bin/sh\necho "%s $*" >>"%s"\n' "$cmd" "$work/calls" >"$stubs/$cmd"
    chmod +x "$stubs/$cmd"
done
# shellcheck disable=SC2016 # expanded by the stub, not here
printf '#!/bin/sh\nexit "${GETENT_RC:-2}"\n' >"$stubs/getent"
chmod +x "$stubs/getent"
run_script() { # SCRIPT ARGS...: runs it with the stubs, calls into $work/calls
    : >"$work/calls"
    PATH=$stubs:$PATH sh -e "$work/control/$1" "${@:2}" ||
        fail "$1 $* exited $?"
}
run_script postinst configure
grep -q "^adduser --system --group --quiet --home /var/lib/jarvis --no-create-home" \
    "$work/calls" || fail "postinst configure made no jarvis user: $(cat "$work/calls")"
GETENT_RC=0 run_script postinst configure 0.1.0-1
grep -q "^adduser" "$work/calls" && fail "postinst made the jarvis user again"
run_script prerm remove
run_script postrm purge
grep -q "^deb-systemd-helper purge jarvisd.service" "$work/calls" ||
    fail "postrm purge left the unit's state: $(cat "$work/calls")"
grep -q "^rmdir.*/var/lib/jarvis" "$work/calls" &&
    fail "postrm purge removes the node's data dir"

step "lintian"
# --fail-on error,warning: a warning is a defect too; info and pedantic
# tags are printed for the record.
if ! lintian --fail-on error,warning --display-info --tag-display-limit 0 \
    "$deb" >"$work/lintian.log" 2>&1; then
    cat "$work/lintian.log" >&2
    fail "lintian reports errors or warnings"
fi
grep -v '^running with root privileges' "$work/lintian.log" || true
echo "PASS"
