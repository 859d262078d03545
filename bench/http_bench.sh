#!/usr/bin/env bash
# HTTP throughput and latency of the session API, against Redis in the same
# run at the same concurrency.
#
#   jarvisd: POST /v1/counters/bench/increment (writes) and
#            GET /v1/counters/bench (reads), keep-alive, measured with wrk;
#            --sync normal (a commit survives kill -9 of the process; the
#            last commits may be lost on power loss), --rate-limit 0.
#   redis:   INCR and GET with redis-benchmark, appendonly yes,
#            appendfsync everysec (survives a process crash; up to ~1 s lost
#            on power loss): the closest durability to ours.
# Both servers and both load generators share this machine's cores.
#
# Usage: bench/http_bench.sh [seconds per run, default 5]
set -euo pipefail
secs=${1:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${JV_BIN_DIR:-$root/build/bin}
for tool in wrk redis-server redis-benchmark; do
    command -v $tool >/dev/null || { echo "http_bench: $tool missing: scripts/deps.sh --bench" >&2; exit 1; }
done
tmp=$(mktemp -d)
node_pid= redis_pid=
cleanup() {
    [ -n "$node_pid" ] && kill "$node_pid" 2>/dev/null && wait "$node_pid" 2>/dev/null || true
    [ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

"$bin/jarvisd" --data-dir "$tmp/node" --api-listen 127.0.0.1:0 --listen off \
    --rate-limit 0 --sync normal --log-level warn 2>"$tmp/node.log" &
node_pid=$!
for _ in $(seq 100); do [ -s "$tmp/node/api.addr" ] && break; sleep 0.1; done
url=$(cat "$tmp/node/api.addr")
key=$(cat "$tmp/node/admin.key")

cat >"$tmp/incr.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"by":1}'
wrk.headers["Authorization"] = "Bearer $key"
wrk.headers["Content-Type"] = "application/json"
LUA
cat >"$tmp/get.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $key"
LUA
curl -sf -H "Authorization: Bearer $key" "$url/v1/counters/bench/increment" -d '{"by":1}' >/dev/null

port=$((20000 + RANDOM % 20000))
redis-server --port $port --bind 127.0.0.1 --dir "$tmp" --appendonly yes \
    --appendfsync everysec --save '' --daemonize no --loglevel warning \
    >"$tmp/redis.log" 2>&1 &
redis_pid=$!
for _ in $(seq 50); do redis-cli -p $port ping >/dev/null 2>&1 && break; sleep 0.1; done

# wrk: requests/s and the p50/p99 latency in ms.
run_wrk() { # conns script path
    local out
    out=$(wrk -t1 -c"$1" -d"${secs}s" --latency -s "$tmp/$2" "$url$3")
    local rps p50 p99
    rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
    p50=$(awk '$1=="50%" {print $2}' <<<"$out")
    p99=$(awk '$1=="99%" {print $2}' <<<"$out")
    echo "$rps $(to_ms "$p50") $(to_ms "$p99")"
}
to_ms() { # wrk prints 512.00us / 1.23ms / 2.01s
    awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /s$/ && v !~ /ms$/) n *= 1000; printf "%.3f", n }'
}
# redis-benchmark: requests/s and p50/p99 in ms (CSV columns of 7.0).
run_redis() { # conns test
    local n=$(( $1 == 1 ? 20000 : 200000 ))
    redis-benchmark -p $port -c "$1" -n $n -t "$2" --csv 2>/dev/null |
        awk -F'"' 'NR == 2 { print $4, $10, $14 }'
}

printf '\n%-6s %-5s | %12s %8s %8s | %12s %8s %8s | %6s\n' op conns \
    "jarvis req/s" "p50 ms" "p99 ms" "redis req/s" "p50 ms" "p99 ms" ratio
printf -- '-%.0s' $(seq 92); echo
for op in write read; do
    for c in 1 16 64; do
        if [ $op = write ]; then
            read -r jr j50 j99 < <(run_wrk $c incr.lua /v1/counters/bench/increment)
            read -r rr r50 r99 < <(run_redis $c incr)
        else
            read -r jr j50 j99 < <(run_wrk $c get.lua /v1/counters/bench)
            read -r rr r50 r99 < <(run_redis $c get)
        fi
        ratio=$(awk -v a="$jr" -v b="$rr" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
        printf '%-6s %-5s | %12.0f %8s %8s | %12.0f %8s %8s | %6s\n' \
            $op $c "$jr" "$j50" "$j99" "$rr" "$r50" "$r99" "$ratio"
    done
done
echo
echo "goals: writes at 64 connections >= 0.50 of redis; read p99 < 2 ms"
total=$(curl -sf -H "Authorization: Bearer $key" "$url/v1/counters/bench" | sed 's/.*"total":\([0-9]*\).*/\1/')
echo "counter total after the run: $total (every acknowledged increment)"
