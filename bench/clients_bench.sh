#!/usr/bin/env bash
# A thousand clients at once: 1,000 keep-alive connections to one node,
# each a user making 40 requests per second on a schedule of its own
# (open loop: build/bin/loadgen, bench/loadgen.c), 90 % reads
# (GET /v1/counters/bench) and 10 % writes (POST
# /v1/counters/bench/increment {"by":1}), picked at random per request;
# then the same mix with no wait, as fast as it goes (closed loop: the most
# this machine serves at 1,000 connections).
#
# Latency is from the time a request was due, not from its send: when an
# answer comes after the connection's next request was due, the server is
# charged for the wait. The same paced mix through wrk (each connection
# waiting 25 ms before each request, latency from the send; wrk's own loop
# scans every connection's timer, which adds milliseconds at 1,000) is
# printed last, for comparison with earlier figures.
#
#   jarvisd: --sync normal, --rate-limit 0, its default connection limits
#            and read cache (with the counter written 4,000 times a
#            second, nearly every read goes to the database: the share
#            answered from memory is printed).
#   nginx:   the machine's HTTP ceiling, the same runs against it
#            (bench/lib.sh: one worker, `return 200` of a fixed body of
#            the size of jarvisd's answers): what HTTP alone costs here.
# Both share this machine's cores with the load generator (2 threads).
# Printed: requests/s, p50/p99/p99.9 latency, errors (connection errors,
# requests unanswered, non-2xx), and jarvisd's peak resident memory.
# Goals (paced run): no errors, p99 under 5 ms, peak RSS under 256 MiB.
# After the runs the counter's total must account for every acknowledged
# increment (else the run fails).
#
# Usage: bench/clients_bench.sh [seconds per run, default 10] [connections]
set -euo pipefail
secs=${1:-10}
conns=${2:-1000}
root=$(cd "$(dirname "$0")/.." && pwd)
for tool in wrk nginx; do
    command -v $tool >/dev/null || { echo "clients_bench: $tool missing: scripts/deps.sh --bench" >&2; exit 1; }
done
. "$root/bench/lib.sh"
trap bench_cleanup EXIT
[ -x "$bin/loadgen" ] || { echo "clients_bench: $bin/loadgen missing: make build" >&2; exit 1; }
# A thousand sockets for the load generator, as many for each server.
ulimit -n 8192

bench_node_start
read_body='{"name":"bench","total":1234567,"shares":[{"replica":"204080d47c01f10c227684d91e6fc1417da0577bdd2d19181ccd7b5e5560b0f9","increments":1234567,"decrements":0}]}'
bench_nginx_start '{"name":"bench","total":1234567}' "$read_body"

# The mix, with the wait given as the script's argument; counts 2xx and
# other answers to writes (acknowledged increments) and to reads.
cat >"$tmp/mix.lua" <<LUA
local auth = "Bearer $key"
LUA
cat >>"$tmp/mix.lua" <<'LUA'
local threads = {}
local wait = 0
function setup(thread)
    thread:set("id", #threads + 1)
    table.insert(threads, thread)
end
function init(args)
    wait = tonumber(args[1] or "0")
    math.randomseed(os.time() * 1000 + id)
    wok, wbad, rok, rbad = 0, 0, 0, 0
    write_req = wrk.format("POST", "/v1/counters/bench/increment",
        {["Authorization"] = auth, ["Content-Type"] = "application/json"},
        '{"by":1}')
    read_req = wrk.format("GET", "/v1/counters/bench",
        {["Authorization"] = auth})
end
function delay() return wait end
function request()
    return math.random(10) == 1 and write_req or read_req
end
-- wrk keeps no state per connection: an answer tells what it answers by
-- its body (a counter read lists the shares, an increment does not).
-- Errors are counted apart, as possibly applied writes.
function response(status, headers, body)
    if status < 200 or status >= 300 then
        wbad = wbad + 1
    elseif string.find(body, '"shares"', 1, true) then
        rok = rok + 1
    else
        wok = wok + 1
    end
end
function done(summary, latency, requests)
    local wo, wb, ro, rb = 0, 0, 0, 0
    for _, t in ipairs(threads) do
        wo = wo + t:get("wok"); wb = wb + t:get("wbad")
        ro = ro + t:get("rok"); rb = rb + t:get("rbad")
    end
    local e = summary.errors
    io.write(string.format("mix: %d %d %d %d %d %.3f %.3f %.3f %.1f\n",
        wo, wb, ro, rb, e.connect + e.read + e.write + e.timeout,
        latency:percentile(50) / 1000, latency:percentile(99) / 1000,
        latency:percentile(99.9) / 1000,
        summary.requests / (summary.duration / 1e6)))
end
LUA
curl -sf -H "Authorization: Bearer $key" "$url/v1/counters/bench/increment" -d '{"by":1}' >/dev/null

# Acknowledged increments and the unanswered ones, per counted run (the
# runs are in subshells): "acked unsure".
: >"$tmp/acked"
# "rps p50 p99 p999 errors" of one run against base url $1; $2: paced or
# closed; $3: count (jarvisd's answers go to the total check) or no.
run() {
    local wo wb ro rb se un p50 p99 p999 rps rate
    rate=$([ "$2" = paced ] && echo 40 || echo 0)
    read -r wo wb ro rb se un p50 p99 p999 rps < <(
        "$bin/loadgen" "$1" --conns "$conns" --threads 2 --rate $rate \
            --secs "$secs" --writes 10 --auth "$key" |
            awk '/^loadgen: [0-9]/ {print $2, $3, $4, $5, $6, $7, $8, $9, $10, $11}')
    [ -n "$rps" ] || { echo "clients_bench: loadgen failed against $1" >&2; exit 1; }
    [ "$3" = count ] && echo "$wo $((wb + un))" >>"$tmp/acked"
    echo "$rps $p50 $p99 $p999 $((wb + rb + se))"
}
# The same through wrk, waiting $2 ms before each request.
run_wrk() {
    local out wo wb ro rb se p50 p99 p999 rps
    out=$(wrk -t2 -c"$conns" -d"${secs}s" --timeout 10s -s "$tmp/mix.lua" "$1" -- "$2")
    read -r wo wb ro rb se p50 p99 p999 rps < <(awk '/^mix:/ {print $2, $3, $4, $5, $6, $7, $8, $9, $10}' <<<"$out")
    # A request cut by the stop or a socket error may have been applied.
    [ "$3" = count ] && echo "$wo $((wb + conns + se))" >>"$tmp/acked"
    echo "$rps $p50 $p99 $p999 $((wb + rb + se))"
}
peak_rss_mib() { awk '/^VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$node_pid/status"; }

printf '\n%-12s %-6s | %10s %8s %8s %9s %7s | %10s %8s %8s %7s | %7s\n' run conns \
    "jarvis r/s" "p50 ms" "p99 ms" "p99.9 ms" errors "nginx r/s" "p50 ms" "p99 ms" errors /nginx
printf -- '-%.0s' $(seq 118); echo
row() { # name jarvisd-figures nginx-figures
    local jr j50 j99 j999 jerr nr n50 n99 n999 nerr
    read -r jr j50 j99 j999 jerr <<<"$2"
    read -r nr n50 n99 n999 nerr <<<"$3"
    printf '%-12s %-6s | %10.0f %8s %8s %9s %7s | %10.0f %8s %8s %7s | %7s\n' \
        "$1" "$conns" "$jr" "$j50" "$j99" "$j999" "$jerr" "$nr" "$n50" "$n99" "$nerr" \
        "$(ratio "$jr" "$nr")"
}
# Each run into a variable first: a failed run then stops the script.
paced=$(run "$url" paced count)
ngx=$(run "$ngx_url" paced no)
row paced "$paced" "$ngx"
closed=$(run "$url" closed count)
ngx=$(run "$ngx_url" closed no)
row closed "$closed" "$ngx"
wrk_paced=$(run_wrk "$url" 25 count)
ngx=$(run_wrk "$ngx_url" 25 no)
row "wrk paced" "$wrk_paced" "$ngx"
read -r _ _ paced_p99 _ paced_err <<<"$paced"
rss=$(peak_rss_mib)
echo
echo "paced: 40 requests/s per connection, latency from the time each was due;"
echo "closed: no wait; wrk paced: 25 ms wait before each request, latency"
echo "from the send (for comparison with figures made with wrk)"
echo "jarvisd peak resident memory: $rss MiB (goal < 256)"
read -r hits misses < <(curl -sf "$url/metrics" | awk '
    /^jarvis_read_cache_lookups_total\{result="hit"\}/ { h = $2 }
    /^jarvis_read_cache_lookups_total\{result="miss"\}/ { m = $2 }
    END { print h + 0, m + 0 }')
echo "reads answered from the read cache: $hits of $((hits + misses))"
meets=$(awk -v p="$paced_p99" -v e="$paced_err" -v r="$rss" \
    'BEGIN { print (e == 0 && p < 5 && r < 256) ? "yes" : "no" }')
echo "goals (paced: no errors, p99 < 5 ms, RSS < 256 MiB): met: $meets"

# The one made by curl before the runs, and the runs' answers.
read -r acked unsure < <(awk '{ a += $1; u += $2 } END { print a + 1, u + 0 }' "$tmp/acked")
total=$(curl -sf -H "Authorization: Bearer $key" "$url/v1/counters/bench" | sed 's/.*"total":\([0-9]*\).*/\1/')
echo "counter total after the runs: $total; acknowledged increments: $acked" \
    "(at most $unsure more may have been applied unanswered)"
if [ -z "$total" ] || [ "$total" -lt "$acked" ] || [ "$total" -gt $((acked + unsure)) ]; then
    echo "clients_bench: FAIL: the total does not match the acknowledged increments" >&2
    exit 1
fi
echo "total check: ok"
