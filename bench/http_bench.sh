#!/usr/bin/env bash
# HTTP throughput and latency of the session API, against Redis and against
# the machine's HTTP ceiling (nginx), all in the same run at the same
# concurrency, one after the other.
#
#   jarvisd: POST /v1/counters/bench/increment {"by":1} (writes) and
#            GET /v1/counters/bench (reads), keep-alive, measured with
#            wrk -t1; --sync normal (a commit survives kill -9 of the
#            process; the last commits may be lost on power loss),
#            --rate-limit 0. Answers: 26-32 bytes (write), 156 (read).
#            Nothing is written during a read run, so after its first
#            read the counter's answer comes from the node's read cache
#            (docs/api.md, "Single-key reads from memory"): what a
#            dashboard polling a key gets. A last run reads at 64
#            connections with the cache turned off (read-cache = 0,
#            applied by SIGHUP), each read then going to a reader
#            thread and the database, beside nginx again. Then a
#            configuration key read at 64 connections while 16 others
#            increment counters (two wrk at once), with the cache on and
#            off: the reads per second and the increments acknowledged
#            in each (the loop serves both, so more of one is less of
#            the other).
#   nginx:   the ceiling: Debian's nginx, one worker, unprivileged, in the
#            foreground with its own config, access log off, answering
#            `return 200` with a fixed JSON body of the size of jarvisd's
#            answer (32 bytes to the POST, 156 to the GET): no parsing, no
#            storage, nothing but HTTP. Same wrk command, same scripts and
#            paths as jarvisd.
#   redis:   INCR and GET with redis-benchmark, appendonly yes,
#            appendfsync everysec (survives a process crash; up to ~1 s lost
#            on power loss): the closest durability to ours.
# All writes (jarvisd and nginx) use a wrk script whose response callback
# counts 2xx and other answers (so both pay for it); reads use a plain one.
# After the run the counter's total must account for every acknowledged
# increment: acked <= total <= acked + requests possibly in flight when a
# wrk run stopped (one per connection) + non-2xx answers; else the run
# fails. All servers and load generators share this machine's cores.
#
# Last, writes of every kind at 64 connections against plain SQLite (see
# the end of this file).
#
# Usage: bench/http_bench.sh [seconds per run, default 5]
set -euo pipefail
secs=${1:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
for tool in wrk redis-server redis-benchmark nginx; do
    command -v $tool >/dev/null || { echo "http_bench: $tool missing: scripts/deps.sh --bench" >&2; exit 1; }
done
. "$root/bench/lib.sh"
redis_pid=
cleanup() {
    [ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null || true
    bench_cleanup
}
trap cleanup EXIT

echo "read-cache = 4M" >"$tmp/node.conf"
bench_node_start --config "$tmp/node.conf"

cat >"$tmp/incr.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"by":1}'
wrk.headers["Authorization"] = "Bearer $key"
wrk.headers["Content-Type"] = "application/json"
LUA
# Counts the answers: 2xx (acknowledged) and others; done() prints them.
cat >>"$tmp/incr.lua" <<'LUA'
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) ok = 0; bad = 0 end
function response(status, headers, body)
    if status >= 200 and status < 300 then ok = ok + 1 else bad = bad + 1 end
end
function done(summary, latency, requests)
    local o, b = 0, 0
    for _, t in ipairs(threads) do o = o + t:get("ok"); b = b + t:get("bad") end
    io.write(string.format("answers: %d 2xx, %d other\n", o, b))
end
LUA
cat >"$tmp/get.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $key"
LUA
curl -sf -H "Authorization: Bearer $key" "$url/v1/counters/bench/increment" -d '{"by":1}' >/dev/null

port=$(free_port)
redis-server --port $port --bind 127.0.0.1 --dir "$tmp" --appendonly yes \
    --appendfsync everysec --save '' --daemonize no --loglevel warning \
    >"$tmp/redis.log" 2>&1 &
redis_pid=$!
for _ in $(seq 50); do redis-cli -p $port ping >/dev/null 2>&1 && break; sleep 0.1; done

read_body='{"name":"bench","total":1234567,"shares":[{"replica":"204080d47c01f10c227684d91e6fc1417da0577bdd2d19181ccd7b5e5560b0f9","increments":1234567,"decrements":0}]}'
bench_nginx_start '{"name":"bench","total":1234567}' "$read_body"

# Acknowledged increments and the most that may be in flight at each stop.
acked=0 other=0 inflight=0
# wrk: requests/s and the p50/p99 latency in ms; with the counting script,
# adds its answers to acked/other when $5 is "count".
run_wrk() { # conns script path base-url [count]
    local out
    out=$(wrk -t1 -c"$1" -d"${secs}s" --latency -s "$tmp/$2" "$4$3")
    local rps p50 p99
    rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
    p50=$(awk '$1=="50%" {print $2}' <<<"$out")
    p99=$(awk '$1=="99%" {print $2}' <<<"$out")
    if [ "${5:-}" = count ]; then
        local ok bad
        read -r ok bad < <(awk '/^answers:/ {print $2, $4}' <<<"$out")
        echo "$ok $bad $1" >>"$tmp/acked"
    fi
    echo "$rps $(to_ms "$p50") $(to_ms "$p99")"
}
# redis-benchmark: requests/s and p50/p99 in ms (CSV columns of 7.0).
run_redis() { # conns test
    local n=$(( $1 == 1 ? 20000 : 200000 ))
    redis-benchmark -p $port -c "$1" -n $n -t "$2" --csv 2>/dev/null |
        awk -F'"' 'NR == 2 { print $4, $10, $14 }'
}

printf '\n%-6s %-5s | %12s %8s %8s | %12s %8s %8s | %12s %8s | %6s %6s\n' op conns \
    "jarvis req/s" "p50 ms" "p99 ms" "redis req/s" "p50 ms" "p99 ms" \
    "nginx req/s" "p99 ms" "/redis" "/nginx"
printf -- '-%.0s' $(seq 124); echo
: >"$tmp/acked"
for op in write read; do
    for c in 1 16 64; do
        if [ $op = write ]; then
            read -r jr j50 j99 < <(run_wrk $c incr.lua /v1/counters/bench/increment "$url" count)
            read -r nr n50 n99 < <(run_wrk $c incr.lua /v1/counters/bench/increment "$ngx_url")
            read -r rr r50 r99 < <(run_redis $c incr)
        else
            read -r jr j50 j99 < <(run_wrk $c get.lua /v1/counters/bench "$url")
            read -r nr n50 n99 < <(run_wrk $c get.lua /v1/counters/bench "$ngx_url")
            read -r rr r50 r99 < <(run_redis $c get)
        fi
        printf '%-6s %-5s | %12.0f %8s %8s | %12.0f %8s %8s | %12.0f %8s | %6s %6s\n' \
            $op $c "$jr" "$j50" "$j99" "$rr" "$r50" "$r99" "$nr" "$n99" \
            "$(ratio "$jr" "$rr")" "$(ratio "$jr" "$nr")"
        if [ $c = 64 ] && [ $op = write ]; then write_ceiling=$(ratio "$jr" "$nr"); fi
        if [ $c = 64 ] && [ $op = read ]; then read_ceiling=$(ratio "$jr" "$nr"); fi
    done
done
# The read cache's size, applied by a reload (SIGHUP), once the status
# shows a reload newer than the last.
reload_cache() { # size
    local before after
    before=$(curl -sf -H "Authorization: Bearer $key" "$url/v1/status" | sed 's/.*"reload":{"at":"\([^"]*\)".*/\1/')
    echo "read-cache = $1" >"$tmp/node.conf"
    kill -HUP "$node_pid"
    for _ in $(seq 100); do
        after=$(curl -sf -H "Authorization: Bearer $key" "$url/v1/status" | sed 's/.*"reload":{"at":"\([^"]*\)".*/\1/')
        [ "$after" != "$before" ] && return 0
        sleep 0.1
    done
    echo "http_bench: the reload of read-cache = $1 did not happen" >&2
    exit 1
}
cache_hits() {
    curl -sf "$url/metrics" | awk '/^jarvis_read_cache_lookups_total\{result="hit"\}/ { print $2 }'
}

# Reads with the read cache off.
reload_cache 0
h0=$(cache_hits)
read -r jr j50 j99 < <(run_wrk 64 get.lua /v1/counters/bench "$url")
read -r nr n50 n99 < <(run_wrk 64 get.lua /v1/counters/bench "$ngx_url")
h1=$(cache_hits)
[ "$h0" = "$h1" ] || { echo "http_bench: reads hit the cache after it was turned off" >&2; exit 1; }
printf '%-6s %-5s | %12.0f %8s %8s | %12s %8s %8s | %12.0f %8s | %6s %6s\n' \
    read-db 64 "$jr" "$j50" "$j99" - - - "$nr" "$n99" - "$(ratio "$jr" "$nr")"
uncached_ceiling=$(ratio "$jr" "$nr")
echo
echo "/redis, /nginx: jarvisd's requests/s over redis's and over nginx's (the"
echo "machine's HTTP ceiling: one nginx worker answering a fixed body);"
echo "read-db: the same reads with the read cache off (every read from the database)"
echo "ceiling at 64 connections: writes $write_ceiling (goal >= 0.70), reads $read_ceiling (goal >= 0.85);" \
    "reads from the database $uncached_ceiling"
echo "goals: writes at 64 connections >= 0.50 of redis; read p99 < 2 ms"

# Configuration read while metrics are written: GET /v1/config/bench at
# 64 connections while 16 others increment counters (wrk each, at once),
# with the read cache on, then off; each setting applied by a reload.
curl -sf -X PUT -H "Authorization: Bearer $key" "$url/v1/config/bench" -d '{"value":{"pool":8}}' >/dev/null
config_under_writes() {
    wrk -t1 -c16 -d"${secs}s" -s "$tmp/incr.lua" "$url/v1/counters/flood/increment" >"$tmp/flood.out" &
    local flood=$!
    run_wrk 64 get.lua /v1/config/bench "$url"
    wait $flood
    awk '/^answers:/ {print $2}' "$tmp/flood.out" >"$tmp/flood.ok"
}
reload_cache 4M
read -r con c50 c99 < <(config_under_writes)
fon=$(cat "$tmp/flood.ok")
reload_cache 0
read -r coff o50 o99 < <(config_under_writes)
foff=$(cat "$tmp/flood.ok")
echo
echo "config reads at 64 connections while 16 connections increment counters:"
printf '  read cache on:  %8.0f reads/s (p99 %s ms), %s increments acknowledged\n' "$con" "$c99" "$fon"
printf '  read cache off: %8.0f reads/s (p99 %s ms), %s increments acknowledged\n' "$coff" "$o99" "$foff"
echo "  on / off = $(ratio "$con" "$coff")"

# Every acknowledged increment is in the total: the one made by curl
# before the runs plus the 2xx answers wrk counted on jarvisd.
read -r acked other inflight < <(awk '{ a += $1; b += $2; c += $3 } END { print a + 1, b + 0, c + 0 }' "$tmp/acked")
total=$(curl -sf -H "Authorization: Bearer $key" "$url/v1/counters/bench" | sed 's/.*"total":\([0-9]*\).*/\1/')
echo "counter total after the run: $total; acknowledged increments: $acked" \
    "($other other answers; at most $inflight in flight at the stops)"
if [ -z "$total" ] || [ "$total" -lt "$acked" ] ||
    [ "$total" -gt $((acked + inflight + other)) ]; then
    echo "http_bench: FAIL: the total does not match the acknowledged increments" >&2
    exit 1
fi
echo "total check: ok (acknowledged <= total <= acknowledged + in flight + other)"

# Writes of every kind at 64 connections: counter increments, audit
# entries, config sets and archive adds in turn, each request to one of 64
# keys of its kind (round robin), against plain-SQLite INSERTs of the same
# kinds in equal shares (storage_bench --baseline-mix) in transactions of
# the size the node's group commits had in this run: what storage_bench's
# baseline would do with the same operations. Operations counted on the
# node's side (jarvis_ops_applied_total{origin="local"}): a config set is
# also an audit entry, so 4 requests make 5 operations.
cat >"$tmp/mix.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $key"
wrk.headers["Content-Type"] = "application/json"
LUA
cat >>"$tmp/mix.lua" <<'LUA'
local i = 0
request = function()
    i = i + 1
    local k, kind = i % 64, math.floor(i / 64) % 4
    if kind == 0 then
        return wrk.format("POST", "/v1/counters/mix" .. k .. "/increment", nil, '{"by":1}')
    elseif kind == 1 then
        return wrk.format("POST", "/v1/audit", nil, '{"action":"bench","target":"mix' .. k .. '"}')
    elseif kind == 2 then
        return wrk.format("PUT", "/v1/config/mix" .. k, nil, '{"value":' .. i .. '}')
    end
    return wrk.format("PUT", "/v1/archive/mix" .. k, nil, '{"value":' .. i .. '}')
end
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) ok = 0; bad = 0 end
function response(status, headers, body)
    if status >= 200 and status < 300 then ok = ok + 1 else bad = bad + 1 end
end
function done(summary, latency, requests)
    local o, b = 0, 0
    for _, t in ipairs(threads) do o = o + t:get("ok"); b = b + t:get("bad") end
    io.write(string.format("answers: %d 2xx, %d other\n", o, b))
end
LUA
metrics() { # the local operations applied, then the sum and count of batch sizes
    curl -sf "$url/metrics" | awk '
        /^jarvis_ops_applied_total\{origin="local"\}/ { o = $2 }
        /^jarvis_batch_ops_sum/ { s = $2 }
        /^jarvis_batch_ops_count/ { c = $2 }
        END { print o + 0, s + 0, c + 0 }'
}
read -r ops0 sum0 cnt0 < <(metrics)
out=$(wrk -t1 -c64 -d"${secs}s" --latency -s "$tmp/mix.lua" "$url")
read -r ops1 sum1 cnt1 < <(metrics)
mrps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
m99=$(to_ms "$(awk '$1=="99%" {print $2}' <<<"$out")")
read -r mok mbad < <(awk '/^answers:/ {print $2, $4}' <<<"$out")
mops=$(awk -v a="$ops0" -v b="$ops1" -v s="$secs" 'BEGIN { printf "%.0f", (b - a) / s }')
per=$(awk -v a="$sum0" -v b="$sum1" -v x="$cnt0" -v y="$cnt1" \
    'BEGIN { p = (y > x ? (b - a) / (y - x) : 1); p = int(p + 0.5); print (p < 1 ? 1 : (p > 1024 ? 1024 : p)) }')
base=$("$bin/storage_bench" --baseline-mix "$per" "$tmp")
echo
echo "writes of every kind, 64 connections, 64 keys per kind: $mrps requests/s" \
    "(p99 $m99 ms; $mok 2xx, $mbad other), $mops operations/s on the node," \
    "group commits of $per operations on average"
echo "plain-SQLite INSERT of the same kinds, $per rows per transaction: $base operations/s;" \
    "node / INSERT = $(ratio "$mops" "$base")"
[ "$mbad" = 0 ] || { echo "http_bench: FAIL: $mbad writes were not acknowledged" >&2; exit 1; }
