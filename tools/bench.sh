#!/usr/bin/env bash
# bench.sh - cancelqd throughput benchmark against a wrk reference (issue 8).
#
#   make bench                                   # builds, then runs this
#   BUILD=build bash tools/bench.sh              # the same, without building
#   BENCH_JOBS=20000 BENCH_SCENARIOS="0:256" BENCH_JSON=out.json bash tools/bench.sh
#
# Starts its own redis-server (free loopback port below 32768, temp dir, no
# persistence) and cancelq-sandbox, and for each scenario (sandbox latency,
# cancelqd concurrency):
#   1. reference: wrk drives the sandbox directly with the same endpoint mix
#      (tools/bench/mix.lua), 1 thread, 64 connections at 0 ms, else as many
#      connections as cancelqd's concurrency; median of 3 runs of 5 s;
#   2. enqueues BENCH_JOBS jobs (the three providers in turn, every job its
#      own target, so every call succeeds) with redis-cli --pipe, each job's
#      meta holding {"enq_ms": <enqueue time, ms>};
#   3. CONFIG RESETSTAT, starts cancelqd, waits until the results stream
#      holds every outcome, samples /proc/PID of cancelqd, sends SIGTERM;
#   4. reads INFO commandstats and the results stream, and prints one table
#      row.  docs/bench.md says how each column is measured.
# Everything it started is stopped on exit.
#
# Knobs (environment):
#   BENCH_JOBS=50000          jobs per scenario
#   BENCH_SCENARIOS="0:256 50:1000"
#                             space-separated LATENCY_MS:CONCURRENCY pairs; the
#                             concurrency is cancelqd's [worker] concurrency and
#                             every provider instance's concurrency
#   BENCH_WRK_SECONDS=5       length of each wrk reference run
#   BENCH_WRK_RUNS=3          wrk runs per scenario; the median is the reference
#   BENCH_WRK_CONNS=          wrk connections (default: 64 at 0 ms, else the
#                             scenario's concurrency)
#   BENCH_NO_WRK=1            skip the reference (ratio column shows -)
#   BENCH_TIMEOUT=            seconds to wait for all outcomes (default
#                             60 + jobs/200)
#   BENCH_JSON=FILE           also write the figures as JSON
#   BENCH_WRAP="valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out"
#                             run cancelqd under a wrapper (profiling); the CPU
#                             and RSS columns describe the cancelqd process (under
#                             valgrind: valgrind running it); its rates do not count
# Exit status: 0, or 1 when a scenario missed outcomes, had an outcome other
# than "succeeded", or cancelqd did not exit 0 on SIGTERM.
#   BENCH_METRICS=1           sample cancelqd's /metrics (metrics_listen) every
#                             ~0.3 s for requests in flight; 0 turns it off
#   BENCH_KEEP=1              keep the temp dir (logs, config, raw data)
#   BENCH_REPLICA=1           also start a replica of the bench Redis and run
#                             cancelqd with [redis] wait_replicas = 1 (the cost
#                             of waiting for a replica; compare with a run
#                             without, in the same session)
#   BENCH_PROFILE=1           afterwards, count instructions with callgrind
#                             (BENCH_PROFILE_JOBS=5000 jobs at 0 ms / c256) and
#                             print instructions per job and the top 5 functions
#   BUILD=build               where the programs are
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
case ${BUILD:-build} in /*) BIN=$BUILD ;; *) BIN="$ROOT/${BUILD:-build}" ;; esac
JOBS=${BENCH_JOBS:-50000}
SCENARIOS=${BENCH_SCENARIOS:-"0:256 50:1000"}
WRK_SECONDS=${BENCH_WRK_SECONDS:-5}
WRK_RUNS=${BENCH_WRK_RUNS:-3}
TIMEOUT=${BENCH_TIMEOUT:-$((60 + JOBS / 200))}
WRAP=${BENCH_WRAP:-}
PREFIX=bench
CLK_TCK=$(getconf CLK_TCK)

die() { echo "bench: $*" >&2; exit 1; }
case $JOBS in '' | *[!0-9]* | 0) die "BENCH_JOBS must be a positive integer" ;; esac
for b in cancelqd cancelq-sandbox; do [ -x "$BIN/$b" ] || die "$BIN/$b missing (run make)"; done
for c in redis-server redis-cli curl jq awk; do command -v "$c" > /dev/null || die "$c not found (tools/bootstrap.sh installs it)"; done
HAVE_WRK=1
[ -n "${BENCH_NO_WRK:-}" ] && HAVE_WRK=0
if [ "$HAVE_WRK" = 1 ] && ! command -v wrk > /dev/null; then
    echo "bench: wrk not found (apt-get install wrk); no reference" >&2
    HAVE_WRK=0
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/cancelq-bench.XXXXXX")
PIDS=()
DAEMON_PID=
TARGET_PID=
cleanup() {
    local p
    [ -n "$TARGET_PID" ] && kill -TERM "$TARGET_PID" 2> /dev/null
    [ -n "$DAEMON_PID" ] && kill -TERM "$DAEMON_PID" 2> /dev/null
    for p in "${PIDS[@]}"; do kill "$p" 2> /dev/null; done
    for p in "${PIDS[@]}" $DAEMON_PID; do wait "$p" 2> /dev/null; done
    if [ -n "${BENCH_KEEP:-}" ]; then echo "bench: files kept in $T" >&2; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Private copies: other people may rebuild build/ while this runs.
mkdir -p "$T/bin"
cp "$BIN/cancelqd" "$BIN/cancelq-sandbox" "$T/bin/"

# Up to 1000+ connections each for cancelqd and wrk.
ulimit -n "$(ulimit -Hn)" 2> /dev/null || true
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge 4096 ] ||
    echo "bench: warning: ulimit -n is $(ulimit -n); -c1000 runs may run out of fds" >&2

now_ms() { date +%s%3N; }
free_port() {
    local p
    while :; do
        p=$((10000 + RANDOM % 22000)) # below the kernel's ephemeral range
        (echo > "/dev/tcp/127.0.0.1/$p") 2> /dev/null || { echo "$p"; return; }
    done
}
wait_for() {
    local i
    for i in $(seq 1 200); do "$@" > /dev/null 2>&1 && return 0; sleep 0.05; done
    return 1
}
# ticks PID: utime+stime of a process, in clock ticks (fields 14, 15 of
# /proc/PID/stat, counted after the ")" that ends the command name).
ticks() { sed 's/.*) //' "/proc/$1/stat" 2> /dev/null | awk '{ print $12 + $13 }'; }
# cpu_ns PID: nanoseconds the process ran on a CPU (first field of
# /proc/PID/schedstat; the tick counters above agree with it to a few per cent
# over long runs, but not over the 5 s of a wrk run on this VM)
cpu_ns() { awk '{ print $1 }' "/proc/$1/schedstat" 2> /dev/null; }
stime() { sed 's/.*) //' "/proc/$1/stat" 2> /dev/null | awk '{ print $13 }'; }
hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2> /dev/null; }
# daemon_target PID: the cancelqd process itself.  Without BENCH_WRAP, or
# under valgrind (same process), that is PID; under a wrapper that forks
# (strace, perf record), it is PID's child running bin/cancelqd.
daemon_target() {
    local c
    for c in $(cat "/proc/$1/task/$1/children" 2> /dev/null); do
        if tr '\0' ' ' < "/proc/$c/cmdline" 2> /dev/null | grep -q "$T/bin/cancelqd"; then
            echo "$c"; return
        fi
    done
    echo "$1"
}
# stop_daemon: SIGTERM to cancelqd, SIGKILL when it is not gone after
# shutdown_grace (5s) + 10s; sets drc to its exit status.
stop_daemon() {
    local i
    kill -TERM "$TARGET_PID" 2> /dev/null
    for i in $(seq 1 150); do kill -0 "$DAEMON_PID" 2> /dev/null || break; sleep 0.1; done
    if kill -0 "$DAEMON_PID" 2> /dev/null; then
        echo "bench: cancelqd did not stop within 15 s of SIGTERM; killing it" >&2
        kill -KILL "$TARGET_PID" "$DAEMON_PID" 2> /dev/null
    fi
    wait "$DAEMON_PID" 2> /dev/null
    drc=$?
    DAEMON_PID=
    TARGET_PID=
}

# ---------------------------------------------------------------- servers
for try in 1 2 3; do
    REDIS_PORT=$(free_port)
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$T" --save '' --appendonly no \
        --daemonize no --logfile "$T/redis.log" &
    REDIS_PID=$!
    if wait_for redis-cli -p "$REDIS_PORT" ping; then PIDS+=("$REDIS_PID"); break; fi
    kill "$REDIS_PID" 2> /dev/null
    REDIS_PID=
done
[ -n "${REDIS_PID:-}" ] || { tail -5 "$T/redis.log"; die "redis-server did not start"; }
rc() { redis-cli -p "$REDIS_PORT" "$@"; }
if [ -n "${BENCH_REPLICA:-}" ]; then
    REPLICA_PORT=$(free_port)
    mkdir -p "$T/replica"
    redis-server --port "$REPLICA_PORT" --bind 127.0.0.1 --dir "$T/replica" --save '' \
        --appendonly no --replicaof 127.0.0.1 "$REDIS_PORT" --daemonize no \
        --logfile "$T/replica/redis.log" &
    PIDS+=($!)
    wait_for bash -c "redis-cli -p $REPLICA_PORT INFO replication | grep -q master_link_status:up" ||
        die "the replica did not sync"
    echo "bench: replica on :$REPLICA_PORT; cancelqd runs with wait_replicas = 1"
fi

for try in 1 2 3; do
    SANDBOX_PORT=$(free_port)
    "$T/bin/cancelq-sandbox" --listen "127.0.0.1:$SANDBOX_PORT" --quiet > "$T/sandbox.log" 2>&1 &
    SANDBOX_PID=$!
    SANDBOX="http://127.0.0.1:$SANDBOX_PORT"
    if wait_for curl -sf "$SANDBOX/_sandbox/stats"; then PIDS+=("$SANDBOX_PID"); break; fi
    kill "$SANDBOX_PID" 2> /dev/null
    SANDBOX_PID=
done
[ -n "${SANDBOX_PID:-}" ] || { cat "$T/sandbox.log"; die "cancelq-sandbox did not start"; }
sb_post() { curl -sf -X POST -H 'Content-Type: application/json' -d "$2" "$SANDBOX/_sandbox/$1" > /dev/null; }
sb_stats() { curl -sf "$SANDBOX/_sandbox/stats" | jq -c '{requests, rejected, dropped, by_status}'; }

for p in intronis activeplatform keliweb; do printf 'sandbox-%s-token\n' "$p" > "$T/$p.token"; done

# write_conf FILE CONCURRENCY [METRICS_PORT]
write_conf() {
    {
        printf '[redis]\nhost = 127.0.0.1\nport = %s\nprefix = %s\n' "$REDIS_PORT" "$PREFIX"
        [ -n "${BENCH_REPLICA:-}" ] && printf 'wait_replicas = 1\nwait_timeout = 1s\n'
        printf '\n'
        printf '[worker]\nid = bench-worker\nconcurrency = %s\nlease = 15s\nshutdown_grace = 5s\n' "$2"
        [ -n "${3:-}" ] && printf 'metrics_listen = 127.0.0.1:%s\n' "$3"
        printf '\n'
        for p in intronis activeplatform keliweb; do
            printf '[provider %s]\nadapter = %s\nbase_url = %s\nallow_insecure_http = yes\n' "$p" "$p" "$SANDBOX"
            printf 'token_file = %s/%s.token\ntimeout = 10s\nconnect_timeout = 5s\nconcurrency = %s\n\n' "$T" "$p" "$2"
        done
    } > "$1"
}

# enqueue TAG N: push N jobs as RESP through redis-cli --pipe, in chunks of
# 5000 that each carry the time they were sent as meta.enq_ms.  Job i goes to
# intronis (i%3==0), activeplatform (1) or keliweb (2), each with its own
# target, so no call meets an already cancelled target.
enqueue() {
    local tag=$1 n=$2 from=1 to out
    while [ "$from" -le "$n" ]; do
        to=$((from + 4999)); [ "$to" -gt "$n" ] && to=$n
        out=$(awk -v tag="$tag" -v from="$from" -v to="$to" -v enq="$(now_ms)" -v key="{$PREFIX}:jobs" '
            function bulk(s) { return "$" length(s) "\r\n" s "\r\n" }
            BEGIN {
                meta = "\"meta\":{\"enq_ms\":" enq "}"
                for (i = from; i <= to; i++) {
                    id = "\"id\":\"" tag "-" i "\""
                    if (i % 3 == 0)
                        j = "{" id ",\"provider\":\"intronis\",\"action\":\"cancel_partner\",\"params\":{\"username\":\"" tag "-u" i "\",\"reason_id\":1,\"reason_note\":\"\"}," meta "}"
                    else if (i % 3 == 1)
                        j = "{" id ",\"provider\":\"activeplatform\",\"action\":\"delete_subscription\",\"params\":{\"reseller_id\":7,\"subscription_id\":" i "}," meta "}"
                    else
                        j = "{" id ",\"provider\":\"keliweb\",\"action\":\"cancel_service\",\"params\":{\"serviceid\":" i "}," meta "}"
                    printf "*3\r\n%s%s%s", bulk("LPUSH"), bulk(key), bulk(j)
                }
            }' | redis-cli -p "$REDIS_PORT" --pipe 2>&1)
        case $out in *"errors: 0,"*) ;; *) echo "$out" >&2; die "enqueue failed" ;; esac
        from=$((to + 1))
    done
}

# wrk_ref LATENCY CONNS: the sandbox's own rate on the endpoint mix, the
# median of BENCH_WRK_RUNS wrk runs (this machine is shared and noisy);
# prints req/s, leaves wrk's output in $T/wrk-LATENCY-RUN.txt and the
# sandbox's answer counts in $T/wrk-LATENCY-RUN.stats.
wrk_ref() {
    local lat=$1 conns=$2 run f rps bad all=() t0 reqs=0
    t0=$(cpu_ns "$SANDBOX_PID")
    for run in $(seq 1 "$WRK_RUNS"); do
        f="$T/wrk-$lat-$run.txt"
        sb_post reset '{}' && sb_post latency "{\"ms\":$lat}" || die "sandbox control failed"
        (cd "$ROOT" && wrk -t1 -c"$conns" -d"${WRK_SECONDS}s" --timeout 10s -s tools/bench/mix.lua "$SANDBOX") > "$f" 2>&1
        sb_stats > "$T/wrk-$lat-$run.stats"
        reqs=$((reqs + $(jq '.requests' "$T/wrk-$lat-$run.stats")))
        rps=$(awk '/^Requests\/sec:/ { print $2 }' "$f")
        bad=$(jq '[.by_status | to_entries[] | select(.key != "200" and .key != "303") | .value] | add // 0' "$T/wrk-$lat-$run.stats")
        if [ -z "$rps" ] || [ "$bad" != 0 ] || grep -q 'Non-2xx' "$f"; then
            echo "bench: wrk reference at ${lat} ms had errors or no result:" >&2
            cat "$f" "$T/wrk-$lat-$run.stats" >&2
        fi
        all+=("${rps:-0}")
    done
    echo "bench: reference runs (req/s): ${all[*]}" >&2
    # the sandbox's CPU per request while wrk drove it (the reference's own cost)
    awk -v t=$(($(cpu_ns "$SANDBOX_PID") - t0)) -v n="$reqs" \
        'BEGIN { printf "%.1f\n", n ? t / n / 1000 : 0 }' > "$T/ref-$lat.sbx_us"
    printf '%s\n' "${all[@]}" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

# commandstats: "name calls" per line from INFO commandstats.
commandstats() {
    rc INFO commandstats | tr -d '\r' | awk -F'[_:=,]' '/^cmdstat_/ { print $2, $4 }'
}

# analyse FILE N: read the results stream in chunks of 10000 and print
# "ok first_ms last_ms p50 p99 svc_p50 svc_p99 nonsucceeded"; latency is
# finished_at - meta.enq_ms, service time is duration_ms.
analyse() {
    local out=$1 start='-' chunk last
    : > "$T/outcomes.txt"
    while :; do
        chunk=$(rc --raw XRANGE "{$PREFIX}:results" "$start" + COUNT 10000)
        [ -z "$chunk" ] && break
        printf '%s\n' "$chunk" | awk '
            # days since 1970-01-01 of a civil date (H. Hinnant)
            function days(y, m, d,   era, yoe, doy, doe) {
                y -= (m <= 2); era = int((y >= 0 ? y : y - 399) / 400)
                yoe = y - era * 400
                doy = int((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1
                doe = yoe * 365 + int(yoe / 4) - int(yoe / 100) + doy
                return era * 146097 + doe - 719468
            }
            function flush() {
                if (have) printf "%.0f %s %s %s\n", fin, enq, dur, st
                have = 0; fin = enq = dur = st = ""
            }
            /^[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]-[0-9]+$/ && k == 0 {
                flush(); have = 1; next
            }
            k == 0 { k = $0; next }
            {
                v = $0
                if (k == "finished_at") {
                    # 2026-11-22T06:17:35.123Z
                    fin = (days(substr(v, 1, 4) + 0, substr(v, 6, 2) + 0, substr(v, 9, 2) + 0) * 86400 \
                           + substr(v, 12, 2) * 3600 + substr(v, 15, 2) * 60 + substr(v, 18, 2)) * 1000 \
                           + substr(v, 21, 3)
                } else if (k == "meta") {
                    if (match(v, /"enq_ms":[0-9]+/)) enq = substr(v, RSTART + 9, RLENGTH - 9)
                } else if (k == "duration_ms") dur = v
                else if (k == "status") st = v
                k = 0
            }
            END { flush() }' >> "$T/outcomes.txt"
        last=$(printf '%s\n' "$chunk" | grep -E '^[0-9]{13}-[0-9]+$' | tail -1)
        [ -z "$last" ] && break
        start="($last"
    done
    awk '{ print $1 - $2 }' "$T/outcomes.txt" | sort -n > "$T/lat.txt"
    awk '{ print $3 }' "$T/outcomes.txt" | sort -n > "$T/svc.txt"
    pct() { awk -v p="$2" '{ v[NR] = $1 } END { if (NR == 0) { print "-"; exit } i = int(p * NR + 0.999999); if (i < 1) i = 1; print v[i] }' "$1"; }
    printf '%s %s %s %s %s %s %s\n' \
        "$(awk 'NR == 1 || $1 < m { m = $1 } END { printf "%.0f\n", m }' "$T/outcomes.txt")" \
        "$(awk 'NR == 1 || $1 > m { m = $1 } END { printf "%.0f\n", m }' "$T/outcomes.txt")" \
        "$(pct "$T/lat.txt" 0.50)" "$(pct "$T/lat.txt" 0.99)" \
        "$(pct "$T/svc.txt" 0.50)" "$(pct "$T/svc.txt" 0.99)" \
        "$(awk '$4 != "succeeded"' "$T/outcomes.txt" | wc -l)" > "$out"
}

# Commands cancelqd's Lua scripts call inside Redis (src/lua/*.lua).  Redis 7
# counts them in INFO commandstats (and total_commands_processed) as well as
# the EVALSHA around them, so they are left out of the per-job count (the
# list: grep -ohE "redis\.p?call\('[A-Z]+" src/lua/*.lua).  cancelqd's own
# top-level commands are EVALSHA, BLMOVE, PING, SCRIPT LOAD and the LLEN /
# ZCARD of its queue gauges (builds before the Redis-time heartbeat also
# sent ZADD at top level; it is counted as internal for both).  XLEN, INFO
# and CONFIG come from this script, not from cancelqd.
SCRIPT_INTERNAL=" rpop incrby hset hdel xadd lpush pexpire hmget hget del zrangebyscore zrange zrem rpush hgetall hlen type lrem hexists time zscore zadd xinfo|stream xinfo|groups xpending xtrim "
BENCH_OWN=" xlen info config|resetstat config "

# ---------------------------------------------------------------- scenarios
ROWS=()
CPU_ROWS=()
STAGE_ROWS=()
JSON_ROWS=()
BAD=0
date_utc=$(date -u +%Y-%m-%dT%H:%M:%SZ)
load=$(cut -d' ' -f1-3 /proc/loadavg)
bin_id=$(sha256sum "$T/bin/cancelqd" | cut -c1-12)
echo "bench: load average $load (other work on this machine skews every figure; the ratio less)"
echo "bench: $JOBS jobs per scenario, scenarios '$SCENARIOS', redis :$REDIS_PORT, sandbox :$SANDBOX_PORT, $(nproc) cpus, $date_utc"

for sc in $SCENARIOS; do
    lat=${sc%%:*}
    conc=${sc#*:}
    [ "$conc" = "$sc" ] && conc=256
    name="${lat}ms/c${conc}"
    tag="b${lat}c${conc}"
    conf="$T/cancelq-$tag.conf"
    mport=
    [ "${BENCH_METRICS:-1}" = 1 ] && mport=$(free_port)
    write_conf "$conf" "$conc" "$mport"
    : > "$T/inflight-$tag.txt"
    "$T/bin/cancelqd" -c "$conf" --check-config > "$T/check-$tag.txt" 2>&1 ||
        { cat "$T/check-$tag.txt"; die "config refused"; }

    # 1. reference
    ref=-
    ref_sbx=-
    if [ "$HAVE_WRK" = 1 ]; then
        conns=${BENCH_WRK_CONNS:-}
        [ -z "$conns" ] && { if [ "$lat" = 0 ]; then conns=64; else conns=$conc; fi; }
        echo "bench: [$name] reference: wrk -t1 -c$conns -d${WRK_SECONDS}s, sandbox latency ${lat} ms"
        ref=$(wrk_ref "$lat" "$conns")
        ref_sbx=$(cat "$T/ref-$lat.sbx_us" 2> /dev/null || echo -)
    fi

    # 2. clean slate, jobs
    rc FLUSHALL > /dev/null
    sb_post reset '{}' && sb_post latency "{\"ms\":$lat}" || die "sandbox control failed"
    echo "bench: [$name] enqueueing $JOBS jobs"
    t0=$(now_ms)
    enqueue "$tag" "$JOBS"
    t1=$(now_ms)
    [ "$(rc LLEN "{$PREFIX}:jobs")" = "$JOBS" ] || die "queue does not hold $JOBS jobs"
    echo "bench: [$name] enqueued in $((t1 - t0)) ms; running cancelqd (concurrency $conc)"

    # 3. run
    rc CONFIG RESETSTAT > /dev/null
    r_ns0=$(cpu_ns "$REDIS_PID"); s_ns0=$(cpu_ns "$SANDBOX_PID")
    start_ms=$(now_ms)
    # shellcheck disable=SC2086 # BENCH_WRAP is a command line
    $WRAP "$T/bin/cancelqd" -c "$conf" 2> "$T/cancelqd-$tag.log" &
    DAEMON_PID=$!
    TARGET_PID=$DAEMON_PID
    deadline=$((SECONDS + TIMEOUT))
    n=0
    polls=0
    while :; do
        n=$(rc XLEN "{$PREFIX}:results" 2> /dev/null)
        case $n in '' | *[!0-9]*) n=0 ;; esac
        [ "$n" -ge "$JOBS" ] && break
        [ -n "$WRAP" ] && TARGET_PID=$(daemon_target "$DAEMON_PID")
        # every 5th round (~0.3 s): requests in flight and jobs held, from /metrics
        if [ -n "$mport" ] && [ $((polls++ % 5)) = 0 ] && [ "$n" -gt 0 ]; then
            curl -s --max-time 1 "http://127.0.0.1:$mport/metrics" | awk '
                /^cancelq_provider_inflight[{ ]/ { f += $NF } /^cancelq_jobs_held[{ ]/ { h = $NF }
                /^cancelq_jobs_stage[{]/ { split($1, a, "\""); st[a[2]] = $NF }
                END { if (h != "") print f + 0, h, st["claim"] + 0, st["wait"] + 0, st["end"] + 0 }' >> "$T/inflight-$tag.txt"
        fi
        if ! kill -0 "$DAEMON_PID" 2> /dev/null; then
            echo "bench: cancelqd exited early:" >&2; tail -5 "$T/cancelqd-$tag.log" >&2; break
        fi
        [ $SECONDS -ge $deadline ] && { echo "bench: timeout after ${TIMEOUT}s with $n of $JOBS outcomes" >&2; break; }
        sleep 0.05
    done
    done_ms=$(now_ms)
    [ -n "$WRAP" ] && TARGET_PID=$(daemon_target "$DAEMON_PID")
    d_ns=$(cpu_ns "$TARGET_PID"); d_ticks=$(ticks "$TARGET_PID"); d_sys=$(stime "$TARGET_PID")
    hwm=$(hwm_kib "$TARGET_PID")
    r_ns1=$(cpu_ns "$REDIS_PID"); s_ns1=$(cpu_ns "$SANDBOX_PID")
    commandstats > "$T/cmdstats-$tag.txt"
    stop_daemon
    [ "$drc" = 0 ] || { echo "bench: cancelqd exited with status $drc" >&2; BAD=1; }
    sb_stats > "$T/daemon-$tag.stats"

    # 4. figures
    analyse "$T/analysis-$tag.txt"
    read -r first last p50 p99 s50 s99 notok < "$T/analysis-$tag.txt"
    [ "$p50" = - ] && { p50=0; p99=0; s50=0; s99=0; } # no outcome at all
    read -r cmds cmd_detail < <(awk -v internal="$SCRIPT_INTERNAL" -v own="$BENCH_OWN" '
        index(internal, " " $1 " ") || index(own, " " $1 " ") { next }
        { n += $2; d = d (d ? "," : "") $1 "=" $2 }
        END { print n + 0, d }' "$T/cmdstats-$tag.txt")
    F=$(awk -v n="$n" -v jobs="$JOBS" -v first="$first" -v last="$last" -v start="$start_ms" \
        -v done_ms="$done_ms" -v dns="${d_ns:-0}" -v hwm="${hwm:-0}" -v cmds="$cmds" \
        -v ref="$ref" -v rns=$((${r_ns1:-0} - ${r_ns0:-0})) -v sns=$((${s_ns1:-0} - ${s_ns0:-0})) '
        BEGIN {
            jps = (last > first) ? (n - 1) * 1000 / (last - first) : 0
            wall = (done_ms > start) ? n * 1000 / (done_ms - start) : 0
            ratio = (ref + 0 > 0) ? sprintf("%.2f", jps / ref) : "-"
            k = n / 1000
            printf "%.0f %.0f %s %.4f %.1f %.2f %.4f %.4f\n", jps, wall, ratio,
                k ? dns / 1e9 / k : 0, hwm / 1024, n ? cmds / n : 0,
                k ? rns / 1e9 / k : 0, k ? sns / 1e9 / k : 0
        }')
    read -r jps wall ratio cpu rss cpj rcpu scpu <<< "$F"
    read -r infl_avg infl_max held_avg held_max claim_avg wait_avg end_avg < <(awk '
        { s += $1; if ($1 > m) m = $1; h += $2; if ($2 > hm) hm = $2; c += $3; w += $4; e += $5 }
        END { if (NR) printf "%.0f %d %.0f %d %.0f %.0f %.0f\n", s / NR, m, h / NR, hm, c / NR, w / NR, e / NR
              else print "- - - - - - -" }' "$T/inflight-$tag.txt")
    STAGE_ROWS+=("$(printf '%-12s %8s %8s %8s %8s %8s' "$name" "$held_avg" "$claim_avg" "$wait_avg" "$infl_avg" "$end_avg")")
    little=-
    [ "$lat" != 0 ] && little=$((conc * 1000 / lat))
    [ "$notok" = 0 ] || BAD=1
    [ "$n" = "$JOBS" ] || BAD=1
    [ "$notok" = 0 ] || echo "bench: warning: $notok outcomes were not 'succeeded' (see $T/outcomes.txt with BENCH_KEEP=1)" >&2
    [ "$n" = "$JOBS" ] || echo "bench: warning: only $n of $JOBS outcomes" >&2
    # CPU budget: microseconds of CPU per job in each process; what one core
    # for the (single-threaded) daemon allows; what all cores allow when the
    # three processes share them at these costs
    CPU_ROWS+=("$(awk -v name="$name" -v c="$cpu" -v r="$rcpu" -v sb="$scpu" -v refsb="$ref_sbx" \
        -v ncpu="$(nproc)" -v ref="$ref" -v jps="$jps" 'BEGIN {
            c *= 1000; r *= 1000; sb *= 1000; tot = c + r + sb
            loop = (c > 0) ? 1e6 / c : 0; mach = (tot > 0) ? ncpu * 1e6 / tot : 0
            rel = (ref + 0 > 0) ? sprintf("%.2f", mach / ref) : "-"; used = (loop > 0) ? jps / loop : 0
            printf "%-12s %9.1f %9.1f %9.1f %10s %10.0f %10.0f %12s %10.2f\n", name, c, r, sb, refsb,
                loop, mach, rel, used
        }')")
    ROWS+=("$(printf '%-12s %8s %9s %6s %9s %8s %9s %15s %15s %8s %10s' "$name" "$jps" "${ref%.*}" "$ratio" \
        "$cpu" "$rss" "$cpj" "$p50/$p99" "$s50/$s99" "$little" "$infl_avg/$held_avg")")
    JSON_ROWS+=("$(jq -cn --arg name "$name" --argjson lat "$lat" --argjson conc "$conc" --argjson jobs "$JOBS" \
        --argjson outcomes "$n" --argjson notok "$notok" --argjson jps "$jps" --argjson wall "$wall" \
        --arg ref "$ref" --arg ratio "$ratio" --argjson cpu "$cpu" --argjson rss "$rss" --argjson cpj "$cpj" \
        --argjson cmds "$cmds" --arg detail "$cmd_detail" --argjson p50 "${p50:-0}" --argjson p99 "${p99:-0}" \
        --argjson s50 "${s50:-0}" --argjson s99 "${s99:-0}" --arg little "$little" \
        --argjson rcpu "$rcpu" --argjson scpu "$scpu" \
        --arg infl_avg "$infl_avg" --arg infl_max "$infl_max" --arg held_avg "$held_avg" --arg held_max "$held_max" \
        --argjson sysfrac "$(awk -v a="${d_ticks:-0}" -v b="${d_sys:-0}" 'BEGIN { printf "%.2f", a ? b / a : 0 }')" \
        --argjson sbx "$(cat "$T/daemon-$tag.stats")" '
        {scenario: $name, latency_ms: $lat, concurrency: $conc, jobs: $jobs, outcomes: $outcomes,
         not_succeeded: $notok, jobs_per_s: $jps, jobs_per_s_wall: $wall,
         reference_req_per_s: (if $ref == "-" then null else ($ref | tonumber) end),
         ratio: (if $ratio == "-" then null else ($ratio | tonumber) end),
         little_law_jobs_per_s: (if $little == "-" then null else ($little | tonumber) end),
         cpu_s_per_1000_jobs: $cpu, peak_rss_mib: $rss, redis_cmds_per_job: $cpj,
         redis_cmds: $cmds, redis_cmds_counted: $detail,
         latency_ms_p50: $p50, latency_ms_p99: $p99, service_ms_p50: $s50, service_ms_p99: $s99,
         http_inflight_avg: (if $infl_avg == "-" then null else ($infl_avg | tonumber) end),
         http_inflight_max: (if $infl_max == "-" then null else ($infl_max | tonumber) end),
         jobs_held_avg: (if $held_avg == "-" then null else ($held_avg | tonumber) end),
         jobs_held_max: (if $held_max == "-" then null else ($held_max | tonumber) end),
         cpu_system_fraction: $sysfrac, redis_cpu_s_per_1000_jobs: $rcpu, sandbox_cpu_s_per_1000_jobs: $scpu, sandbox_stats: $sbx}')")
    echo "bench: [$name] done: $n outcomes, $jps jobs/s (wall $wall), redis commands counted: $cmd_detail"
done

# ---------------------------------------------------------------- report
echo
echo "cancelq bench, $date_utc, $(nproc) cpus, load $load, cancelqd sha256 $bin_id, $JOBS jobs per scenario${WRAP:+, cancelqd under: $WRAP}"
printf '%-12s %8s %9s %6s %9s %8s %9s %15s %15s %8s %10s\n' scenario jobs/s ref_req/s ratio cpu_s/1k rss_MiB cmds/job "lat p50/p99 ms" "svc p50/p99 ms" little "http/held"
for r in "${ROWS[@]}"; do echo "$r"; done
echo "(jobs/s: first to last finished_at; ref: wrk on the same endpoint mix; lat: enqueue to outcome;"
echo " svc: duration_ms of the outcome; little: concurrency / latency; http/held: mean HTTP requests"
echo " in flight / mean jobs held by cancelqd, from /metrics samples; see docs/bench.md)"
echo
echo "CPU per job (us) and what it allows"
printf '%-12s %9s %9s %9s %10s %10s %10s %12s %10s\n' scenario cancelqd redis sandbox "ref_sbx" loop_bound cpu_bound cpu_bound/ref loop_used
for r in "${CPU_ROWS[@]}"; do echo "$r"; done
echo "(ref_sbx: the sandbox's CPU per request under wrk; loop_bound: jobs/s with one whole core for"
echo " cancelqd's single loop; cpu_bound: jobs/s if the three processes filled all cores at these costs;"
echo " loop_used: jobs/s / loop_bound)"
echo
echo "Where the held jobs are (means of /metrics samples)"
printf '%-12s %8s %8s %8s %8s %8s\n' scenario held claim wait http end
for r in "${STAGE_ROWS[@]}"; do echo "$r"; done
echo "(claim: claim sent, no reply yet; wait: for a request slot, a rate or OAuth token; http: in a"
echo " request; end: outcome sent to Redis, no reply yet; the rest: between steps on the loop)"

# Instruction profile: callgrind counts instructions, which repeat from run
# to run whatever else the machine does (rates do not).
if [ -n "${BENCH_PROFILE:-}" ]; then
    pj=${BENCH_PROFILE_JOBS:-5000}
    echo
    echo "bench: instruction profile of cancelqd under callgrind, $pj jobs at 0 ms / c256 (slow)"
    BENCH_PROFILE= BENCH_JSON= BENCH_KEEP= BENCH_JOBS="$pj" BENCH_SCENARIOS=0:256 BENCH_NO_WRK=1 \
        BENCH_METRICS=0 BENCH_TIMEOUT=1800 \
        BENCH_WRAP="valgrind --tool=callgrind --callgrind-out-file=$T/cg.out" \
        bash "$0" > "$T/profile.txt" 2>&1 || { tail -5 "$T/profile.txt"; BAD=1; }
    if [ -s "$T/cg.out" ]; then
        callgrind_annotate "$T/cg.out" 2> /dev/null > "$T/cg.txt"
        total=$(awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1; exit }' "$T/cg.txt")
        echo "instructions per job: $(awk -v t="$total" -v n="$pj" 'BEGIN { printf "%.0f", t / n }') (start-up included)"
        echo "top 5 functions by instructions (self):"
        awk '/file:function/ { f = 1; next } f && NF >= 3 && $1 ~ /^[0-9,]+$/ { print "  " $0; if (++n == 5) exit }' "$T/cg.txt" |
            sed 's|\[/usr/lib/x86_64-linux-gnu/|[|; s|/tmp/cancelq-bench[^ ]*/bin/|[|' | cut -c1-150
        echo "top 5 of cancelqd's own functions (self):"
        awk '/file:function/ { f = 1; next } f && $1 ~ /^[0-9,]+$/ && /bin\/cancelqd\]/ { sub(/ \[.*/, ""); print "  " $0; if (++n == 5) exit }' "$T/cg.txt"
        cp "$T/cg.out" "${BENCH_PROFILE_OUT:-/tmp/cancelq-callgrind.out}" &&
            echo "(callgrind output kept in ${BENCH_PROFILE_OUT:-/tmp/cancelq-callgrind.out}: callgrind_annotate --inclusive=yes FILE)"
    fi
fi

if [ -n "${BENCH_JSON:-}" ]; then
    printf '%s\n' "${JSON_ROWS[@]}" | jq -s --arg date "$date_utc" --argjson cpus "$(nproc)" --arg load "$load" --arg bin "$bin_id" \
        --arg commit "$(git -C "$ROOT" rev-parse --short HEAD 2> /dev/null || echo unknown)" \
        '{date: $date, cpus: $cpus, loadavg_at_start: $load, commit: $commit, cancelqd_sha256: $bin, jobs_counted_from: "first to last finished_at", scenarios: .}' > "$BENCH_JSON"
    echo "bench: figures written to $BENCH_JSON"
fi
[ "$BAD" = 0 ] || { echo "bench: some scenario did not complete cleanly (see the warnings above)" >&2; exit 1; }
