#!/usr/bin/env bash
# test_crash.sh - nothing is lost when cancelqd or redis-server dies.
#  1. kill -9 of the daemon with hundreds of jobs in flight, then a restart;
#  2. kill -9 and restart of redis-server (appendfsync always) during a run.
# Every job must end with exactly one outcome; the report says how many
# cancellation calls were repeated (the goal is none).
. "$(dirname "$0")/lib.sh"
P="{cq}"
N=${CRASH_JOBS:-1000}

start_redis --appendonly yes --appendfsync always
start_sandbox --latency 300
LEASE=2s write_conf "$T/cq.conf" "concurrency = 500" "concurrency = 200"

enqueue_many "$N" a
start_daemon "$T/cq.conf"
check "requests in flight" wait_for bash -c "[ \$(curl -s $SANDBOX/_sandbox/stats | jq .requests) -ge 300 ]"
kill -9 "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null
inflight=$(rraw HLEN "$P:inflight:w1")
echo "   killed cancelqd with $inflight jobs inflight, $(results_count) outcomes written"
check "jobs were inflight at the kill" test "$inflight" -gt 0
start_daemon "$T/cq.conf"
check "all $N jobs end after the restart" wait_results "$N" 120
check_eq "exactly one outcome per job" "$N" "$(outcome_ids | sort -u | wc -l)"
check_eq "no extra outcomes" "$N" "$(results_count)"
bad=$(rraw XRANGE "$P:results" - + | awk 'prev == "status" && $0 != "succeeded" && $0 != "already_done" { n++ } { prev = $0 } END { print n + 0 }')
check_eq "every outcome succeeded or already_done" 0 "$bad"
rep1=$(repeated_calls)
echo "   daemon kill: repeated cancellation calls: $rep1 (Keliweb has no status lookup; its repeats answer 'Existing Cancellation Request Exists')"
check_eq "no repeated call to providers with a status lookup" 0 \
    "$(curl -s "$SANDBOX/_sandbox/stats" | jq '[.targets | to_entries[] | select(.key | startswith("keliweb") | not) | (.value.cancel // 0) - 1 | select(. > 0)] | add // 0')"

# --- redis-server dies mid-run ------------------------------------------------
enqueue_many "$N" b 100000
check "second batch flowing" wait_for bash -c "[ \$(redis-cli -p $REDIS_PORT XLEN '$P:results') -ge $((N + 100)) ]"
kill -9 "$REDIS_PID"; wait "$REDIS_PID" 2>/dev/null
sleep 1
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$T/redis" --save '' \
    --appendonly yes --appendfsync always --daemonize no --logfile "$T/redis/redis2.log" &
REDIS_PID=$!; PIDS+=("$REDIS_PID")
check "redis back" wait_for redis-cli -p "$REDIS_PORT" ping
check "all $((2 * N)) jobs end after the redis restart" wait_results $((2 * N)) 120
check_eq "exactly one outcome per job" $((2 * N)) "$(outcome_ids | sort -u | wc -l)"
check_eq "no extra outcomes" $((2 * N)) "$(results_count)"
check_eq "queue empty" 0 "$(queue_len)"
check_eq "delayed empty" 0 "$(rraw ZCARD "$P:delayed")"
check_eq "inflight empty" 0 "$(rraw HLEN "$P:inflight:w1")"
check_eq "dead letters" 0 "$(rraw LLEN "$P:dead")"
echo "   total repeated cancellation calls: $(repeated_calls)"

# --- SIGTERM mid-run: in-flight calls finish or go back; exit 0 ----------------
base=$(curl -s "$SANDBOX/_sandbox/stats" | jq .requests)
enqueue_many 300 c 200000
check "third batch flowing" wait_for bash -c "[ \$(curl -s $SANDBOX/_sandbox/stats | jq .requests) -ge $((base + 100)) ]"
kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID"; rc=$?
check_eq "SIGTERM exit code 0" 0 "$rc"
left=$(( $(queue_len) + $(rraw HLEN "$P:inflight:w1") + $(rraw ZCARD "$P:delayed") ))
echo "   after SIGTERM: $(( $(results_count) - 2 * N )) ended, $left back in the queue"
check_eq "nothing left inflight after SIGTERM" 0 "$(rraw HLEN "$P:inflight:w1")"
start_daemon "$T/cq.conf"
check "the rest ends after a restart" wait_results $((2 * N + 300)) 60
check_eq "exactly one outcome per job overall" $((2 * N + 300)) "$(outcome_ids | sort -u | wc -l)"
finish
