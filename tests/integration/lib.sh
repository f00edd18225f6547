#!/usr/bin/env bash
# lib.sh - shared helpers for integration tests (sourced).
#
# Each test script sources this, calls the start_* helpers it needs and
# uses check/check_eq; everything it started is stopped by the EXIT trap.
# Servers listen on free loopback ports inside a private temp dir and never
# touch a system Redis.
set -uo pipefail

BUILD=${BUILD:-build}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN="$ROOT/$BUILD"
T=$(mktemp -d "${TMPDIR:-/tmp}/cancelq-test.XXXXXX")
PASSED=0
FAILED=0
PIDS=()
SCHEMA_PREFIXES=() # prefixes a cancelqd of this script ran on (see schema_dump)

cleanup() {
    local p
    schema_dump
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    if [ "$FAILED" -eq 0 ] && [ -z "${KEEP_TMP:-}" ]; then rm -rf "$T"; else echo "   (files kept in $T)"; fi
}
trap cleanup EXIT

# schema_dump: when CQ_SCHEMA_DUMP names a directory (tests/integration/run.sh
# sets it), write what this script's redis-server holds -- every *:results
# stream entry (its fields as a JSON object), every *:dead and *:jobs list
# entry -- with the jobs pushed through enqueue/enqueue_many and the prefixes
# cancelqd ran on, to $CQ_SCHEMA_DUMP/<script>-<pid>/ for
# tools/schema_check.py.  One EVAL (SCAN inside: other prefixes exist); a
# redis that is gone or stuck is skipped quietly.
SCHEMA_DUMP_LUA='
local out = {streams = {}, lists = {}}
local function each_key(pattern, fn)
  local cursor = "0"
  repeat
    local r = redis.call("SCAN", cursor, "MATCH", pattern, "COUNT", 1000)
    cursor = r[1]
    for _, k in ipairs(r[2]) do fn(k) end
  until cursor == "0"
end
each_key("*:results", function(k)
  if redis.call("TYPE", k).ok ~= "stream" then return end
  local entries = {}
  for _, e in ipairs(redis.call("XRANGE", k, "-", "+")) do
    local f = {}
    for i = 1, #e[2], 2 do f[e[2][i]] = e[2][i + 1] end
    entries[#entries + 1] = {id = e[1], fields = f}
  end
  out.streams[k] = entries
end)
for _, pat in ipairs({"*:dead", "*:jobs"}) do
  each_key(pat, function(k)
    if redis.call("TYPE", k).ok == "list" then out.lists[k] = redis.call("LRANGE", k, 0, -1) end
  end)
end
return cjson.encode(out)'
schema_dump() {
    local d out
    [ -n "${CQ_SCHEMA_DUMP:-}" ] && [ -n "${REDIS_PORT:-}" ] || return 0
    d="$CQ_SCHEMA_DUMP/$(basename "$0" .sh)-$$"
    mkdir -p "$d" || return 0
    out=$(timeout 10 redis-cli -p "$REDIS_PORT" --raw EVAL "$SCHEMA_DUMP_LUA" 0 2>/dev/null)
    case $out in '{'*) printf '%s\n' "$out" > "$d/redis.json" ;; esac
    printf '%s\n' "${SCHEMA_PREFIXES[@]}" > "$d/prefixes"
    [ -f "$T/schema-jobs" ] && mv "$T/schema-jobs" "$d/pushed.bin"
    return 0
}

# schema_note_jobs JOB...: remember pushed jobs for schema_dump (NUL-separated).
schema_note_jobs() {
    [ -n "${CQ_SCHEMA_DUMP:-}" ] || return 0
    printf '%s\0' "$@" >> "$T/schema-jobs"
}

# free_port: print a TCP port nothing listens on right now.
free_port() {
    local p
    while :; do
        p=$(( 10000 + RANDOM % 22000 )) # below the kernel's ephemeral range
        (echo > "/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
    done
}

# wait_for CMD...: retry CMD for up to 10 s.
wait_for() {
    local i
    for i in $(seq 1 200); do "$@" >/dev/null 2>&1 && return 0; sleep 0.05; done
    return 1
}

# start_redis [extra redis-server args...]: sets REDIS_PORT, defines rcli.
start_redis() {
    local try
    mkdir -p "$T/redis"
    for try in 1 2 3; do
        REDIS_PORT=$(free_port)
        redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$T/redis" \
            --save '' --appendonly no --daemonize no --logfile "$T/redis/redis.log" "$@" &
        REDIS_PID=$!
        PIDS+=("$REDIS_PID")
        wait_for redis-cli -p "$REDIS_PORT" ping && return 0
        kill "$REDIS_PID" 2>/dev/null
    done
    echo "redis did not start"; tail -5 "$T/redis/redis.log"; exit 1
}
rcli() { redis-cli --no-raw -p "$REDIS_PORT" "$@"; }
rraw() { redis-cli --raw -p "$REDIS_PORT" "$@"; }

# start_sandbox [args...]: sets SANDBOX_PORT and SANDBOX (base URL).
start_sandbox() {
    SANDBOX_PORT=$(free_port)
    "$BIN/cancelq-sandbox" --listen "127.0.0.1:$SANDBOX_PORT" "$@" \
        > "$T/sandbox.log" 2>&1 &
    SANDBOX_PID=$!
    PIDS+=("$SANDBOX_PID")
    SANDBOX="http://127.0.0.1:$SANDBOX_PORT"
    wait_for curl -sf "$SANDBOX/_sandbox/stats" || { echo "sandbox did not start"; cat "$T/sandbox.log"; exit 1; }
}

# check DESCRIPTION CMD...: passes when CMD exits 0.
check() {
    local d=$1; shift
    if "$@"; then PASSED=$((PASSED + 1)); echo "  ok   $d"
    else FAILED=$((FAILED + 1)); echo "  FAIL $d"; fi
}

# check_eq DESCRIPTION EXPECTED ACTUAL
check_eq() {
    if [ "$2" = "$3" ]; then PASSED=$((PASSED + 1)); echo "  ok   $1"
    else FAILED=$((FAILED + 1)); echo "  FAIL $1: expected [$2], got [$3]"; fi
}

# finish: print the summary line and exit with the right code.
finish() {
    local san
    san=$(grep -l -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$T"/*.log "$T"/*/*.log 2>/dev/null)
    if [ -n "$san" ]; then
        FAILED=$((FAILED + 1)); echo "  FAIL sanitizer reports in: $san"
        grep -h -A12 -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' $san | head -40
    fi
    echo "$(basename "$0"): $PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
}

# write_conf FILE [WORKER_LINES] [PROVIDER_LINES]: a config for the private
# redis-server and sandbox, with the sandbox's default tokens in $T.
write_conf() {
    local f=$1 wextra=${2:-} pextra=${3:-}
    printf 'sandbox-intronis-token\n' > "$T/intronis.token"
    printf 'sandbox-activeplatform-token\n' > "$T/activeplatform.token"
    printf 'sandbox-keliweb-token\n' > "$T/keliweb.token"
    {
        printf '[redis]\nhost = 127.0.0.1\nport = %s\nprefix = %s\n\n' "$REDIS_PORT" "${PREFIX:-cq}"
        printf '[worker]\nid = %s\nlease = %s\nbackoff_base = 100ms\nbackoff_max = 1s\nshutdown_grace = 5s\n%b\n\n' \
            "${WORKER_ID:-w1}" "${LEASE:-3s}" "$wextra"
        for p in intronis activeplatform keliweb; do
            printf '[provider %s]\nbase_url = %s\nallow_insecure_http = yes\ntoken_file = %s/%s.token\ntimeout = 2s\nconnect_timeout = 1s\n%b\n\n' \
                "$p" "$SANDBOX" "$T" "$p" "$pextra"
        done
    } > "$f"
}

# start_daemon CONF [LOG]: sets DAEMON_PID.
start_daemon() {
    local conf=$1 log=${2:-$T/cancelqd.log}
    SCHEMA_PREFIXES+=("$(awk -F' *= *' '$1 == "prefix" { p = $2 } END { print p == "" ? "cancelq" : p }' "$conf")")
    "$BIN/cancelqd" -c "$conf" >> "$log" 2>&1 &
    DAEMON_PID=$!
    PIDS+=("$DAEMON_PID")
    sleep 0.2
    if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
        echo "cancelqd exited at start:"; tail -5 "$log"; exit 1
    fi
}

# queue_len: jobs waiting to be taken: {P}:jobs plus the daemon's {P}:retry.
queue_len() {
    echo $(( $(rraw LLEN "{${PREFIX:-cq}}:jobs") + $(rraw LLEN "{${PREFIX:-cq}}:retry") ))
}

# results_count: entries in the results stream.
results_count() {
    local n
    n=$(rraw XLEN "{${PREFIX:-cq}}:results" 2>/dev/null)
    case $n in ''|*[!0-9]*) echo 0 ;; *) echo "$n" ;; esac
}

# wait_results N [SECONDS]: wait until the stream holds N entries.
wait_results() {
    local n=$1 s=${2:-30} i
    for i in $(seq 1 $((s * 10))); do
        [ "$(results_count)" -ge "$n" ] && return 0
        sleep 0.1
    done
    return 1
}

# outcome ID FIELD: a field of the (last) outcome of job ID.
outcome() {
    rraw XRANGE "{${PREFIX:-cq}}:results" - + | awk -v id="$1" -v f="$2" '
        { line[NR] = $0 }
        END {
            for (i = 1; i <= NR; i++) if (line[i] == "id" && line[i+1] == id) {
                for (j = i; j <= NR && j < i + 44; j += 2) {
                    if (j > i && line[j] == "id") break
                    if (line[j] == f) { v = line[j+1]; break }
                }
            }
            print v
        }'
}

# enqueue JSON...: LPUSH jobs.
enqueue() {
    local j
    schema_note_jobs "$@"
    for j in "$@"; do rraw LPUSH "{${PREFIX:-cq}}:jobs" "$j" > /dev/null; done
}

# target_calls TARGET: how many cancellation calls the sandbox saw for TARGET.
target_calls() {
    curl -s "$SANDBOX/_sandbox/target?name=$1" | jq -r '.cancel // 0'
}

# sandbox_post PATH JSON
sandbox_post() { curl -s -X POST -H 'Content-Type: application/json' -d "$2" "$SANDBOX/_sandbox/$1" > /dev/null; }

# enqueue_many N TAG: push N jobs spread over the three providers, ids TAG-i,
# every job with its own target.
enqueue_many() {
    local n=$1 tag=$2 i
    for i in $(seq 1 "$n"); do
        case $((i % 3)) in
        0) j="{\"id\":\"$tag-$i\",\"provider\":\"intronis\",\"action\":\"cancel_partner\",\"params\":{\"username\":\"$tag-$i\",\"reason_id\":1,\"reason_note\":\"\"}}" ;;
        1) j="{\"id\":\"$tag-$i\",\"provider\":\"activeplatform\",\"action\":\"delete_subscription\",\"params\":{\"reseller_id\":7,\"subscription_id\":$((i + ${3:-0}))}}" ;;
        2) j="{\"id\":\"$tag-$i\",\"provider\":\"keliweb\",\"action\":\"cancel_service\",\"params\":{\"serviceid\":$((i + ${3:-0}))}}" ;;
        esac
        schema_note_jobs "$j"
        printf "LPUSH {%s}:jobs '%s'\n" "${PREFIX:-cq}" "$j"
    done | redis-cli -p "$REDIS_PORT" > /dev/null
}

# outcome_ids: every job id in the results stream, one a line.
outcome_ids() {
    rraw XRANGE "{${PREFIX:-cq}}:results" - + | awk 'prev == "id" { print } { prev = $0 }'
}

# repeated_calls: cancellation calls beyond the first, summed over targets.
repeated_calls() {
    curl -s "$SANDBOX/_sandbox/stats" | jq '[.targets[] | (.cancel // 0) - 1 | select(. > 0)] | add // 0'
}
