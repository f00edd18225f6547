#!/usr/bin/env bash
# test_scale.sh - several cancelqd processes on one Redis share the work:
# every job exactly one outcome, work spread over all of them, and the jobs
# of one killed mid-run are reclaimed by the others after the lease.
. "$(dirname "$0")/lib.sh"
P="{cq}"
N=${SCALE_JOBS:-5000}

start_redis
start_sandbox --latency 200
enqueue_many "$N" s
for w in 1 2 3 4; do
    WORKER_ID="w$w" LEASE=2s write_conf "$T/w$w.conf" "concurrency = 100" "concurrency = 60"
    start_daemon "$T/w$w.conf" "$T/cancelqd-w$w.log"
    eval "PID_w$w=$DAEMON_PID"
done
check "a third of the jobs end" wait_results $((N / 3)) 60
check "w4 holds jobs" wait_for bash -c "[ \$(redis-cli -p $REDIS_PORT HLEN '$P:inflight:w4') -ge 20 ]"
kill -9 "$PID_w4"; wait "$PID_w4" 2>/dev/null
echo "   killed w4 with $(rraw HLEN "$P:inflight:w4") jobs inflight"
check "all $N jobs end (w4's taken back by the others)" wait_results "$N" 120
check_eq "exactly one outcome per job" "$N" "$(outcome_ids | sort -u | wc -l)"
check_eq "no extra outcomes" "$N" "$(results_count)"
split=$(rraw XRANGE "$P:results" - + | awk 'prev == "worker" { c[$0]++ } { prev = $0 } END { for (w in c) printf "%s=%d ", w, c[w] }')
echo "   outcomes per worker: $split"
for w in w1 w2 w3 w4; do
    check "$w did part of the work" bash -c "echo '$split' | grep -Eq '(^| )$w=[1-9]'"
done
check_eq "nothing left inflight at w4" 0 "$(rraw HLEN "$P:inflight:w4")"
check "w4 removed from the worker set" wait_for bash -c "[ -z \"\$(redis-cli -p $REDIS_PORT ZSCORE '$P:workers' w4)\" ]"
check_eq "queue empty" 0 "$(queue_len)"
bad=$(rraw XRANGE "$P:results" - + | awk 'prev == "status" && $0 != "succeeded" && $0 != "already_done" { n++ } { prev = $0 } END { print n + 0 }')
check_eq "every outcome succeeded or already_done" 0 "$bad"
echo "   repeated cancellation calls (w4's unknown jobs, Keliweb only): $(repeated_calls)"

# a second process with a live worker's id refuses to start
"$BIN/cancelqd" -c "$T/w1.conf" > "$T/dup.log" 2>&1; rc=$?
check_eq "same id as a live worker: exit 1" 1 "$rc"
check "it says why" grep -q 'another live process holds this worker id' "$T/dup.log"
finish
