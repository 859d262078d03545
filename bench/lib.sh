# Sourced by the shell benchmarks: a jarvisd and an nginx to measure
# against, started in $tmp and stopped by bench_cleanup (on EXIT).
#   bench_node_start [jarvisd options]   sets node_pid, url, key
#   bench_nginx_start WRITE_BODY READ_BODY
#       the machine's HTTP ceiling: Debian's nginx, one worker, in the
#       foreground with its own config, access log off, unprivileged
#       (dropped to nobody when run as root), answering `return 200` with
#       a fixed JSON body: WRITE_BODY to /v1/counters/bench/increment,
#       READ_BODY to everything else. Sets nginx_pid, ngx_url.

bin=${JV_BIN_DIR:-$root/build/bin}
tmp=$(mktemp -d)
node_pid= nginx_pid=
bench_cleanup() {
    [ -n "$node_pid" ] && kill "$node_pid" 2>/dev/null && wait "$node_pid" 2>/dev/null || true
    [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null && wait "$nginx_pid" 2>/dev/null || true
    rm -rf "$tmp"
}

bench_node_start() {
    "$bin/jarvisd" --data-dir "$tmp/node" --api-listen 127.0.0.1:0 --listen off \
        --rate-limit 0 --sync normal --log-level warn "$@" 2>"$tmp/node.log" &
    node_pid=$!
    for _ in $(seq 100); do [ -s "$tmp/node/api.addr" ] && break; sleep 0.1; done
    url=$(cat "$tmp/node/api.addr")
    key=$(cat "$tmp/node/admin.key")
}

# A port for a server of ours: under the kernel's ephemeral range
# (32768 and up here), where thousands of connections of an earlier run
# may still hold one.
free_port() { echo $((20000 + RANDOM % 12000)); }

bench_nginx_start() {
    local try
    for try in 1 2 3 4 5; do
        nginx_try "$1" "$2" && return 0
        # Taken after all (another program on this machine): another port.
        kill "$nginx_pid" 2>/dev/null && wait "$nginx_pid" 2>/dev/null || true
        nginx_pid=
    done
    echo "bench: nginx did not start:" >&2
    cat "$tmp/nginx/error.log" >&2
    return 1
}

nginx_try() { # WRITE_BODY READ_BODY
    local ngx=$tmp/nginx nport
    nport=$(free_port)
    mkdir -p "$ngx"
    : >"$ngx/error.log"
    cat >"$ngx/nginx.conf" <<CONF
worker_processes 1;
worker_rlimit_nofile 8192;
daemon off;
pid $ngx/nginx.pid;
error_log $ngx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $ngx/body;
    proxy_temp_path $ngx/proxy;
    fastcgi_temp_path $ngx/fastcgi;
    uwsgi_temp_path $ngx/uwsgi;
    scgi_temp_path $ngx/scgi;
    keepalive_requests 100000000;
    default_type application/json;
    server {
        listen 127.0.0.1:$nport;
        location = /v1/counters/bench/increment { return 200 '$1'; }
        location / { return 200 '$2'; }
    }
}
CONF
    local as_user=()
    if [ "$(id -u)" -eq 0 ]; then
        chown -R nobody "$ngx"
        chmod 711 "$tmp"
        as_user=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
    fi
    "${as_user[@]}" nginx -p "$ngx" -c "$ngx/nginx.conf" -e "$ngx/error.log" \
        >"$ngx/stdout.log" 2>&1 &
    nginx_pid=$!
    ngx_url=http://127.0.0.1:$nport
    for _ in $(seq 50); do
        curl -sf "$ngx_url/v1/counters/bench" >/dev/null 2>&1 && return 0
        kill -0 "$nginx_pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# wrk prints 512.00us / 1.23ms / 2.01s: milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /s$/ && v !~ /ms$/) n *= 1000; printf "%.3f", n }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
