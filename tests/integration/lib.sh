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

cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    if [ "$FAILED" -eq 0 ] && [ -z "${KEEP_TMP:-}" ]; then rm -rf "$T"; else echo "   (files kept in $T)"; fi
}
trap cleanup EXIT

# free_port: print a TCP port nothing listens on right now.
free_port() {
    local p
    while :; do
        p=$(( 20000 + RANDOM % 40000 ))
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
    REDIS_PORT=$(free_port)
    mkdir -p "$T/redis"
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$T/redis" \
        --save '' --appendonly no --daemonize no --logfile "$T/redis/redis.log" "$@" &
    REDIS_PID=$!
    PIDS+=("$REDIS_PID")
    wait_for redis-cli -p "$REDIS_PORT" ping || { echo "redis did not start"; exit 1; }
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
    echo "$(basename "$0"): $PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
}
