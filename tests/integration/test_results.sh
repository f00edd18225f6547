#!/usr/bin/env bash
# test_results.sh - outcomes that cannot be lost unnoticed
# (docs/design.md §5): a consumer group that has read 1,000 of 3,000
# outcomes with results_maxlen = 1000.  With results_trim = acked none of
# the 2,000 unread entries is trimmed, the backlog warning fires and the
# group's lag shows; with maxlen the same run loses entries, and that shows.
# Also: what billing can match an outcome by (invalid outcomes name id,
# provider and action; a job that was not JSON carries raw_sha256), and
# enqueued_at feeds the queue-latency histogram.
. "$(dirname "$0")/lib.sh"
P="{cq}"

metric() { # NAME LABELS: the value on /metrics
    curl -s "http://127.0.0.1:$METRICS_PORT/metrics" | awk -v m="$1$2" '$1 == m { print $2 }'
}
ids_read() { # GROUP N: read up to N new outcomes as the group and acknowledge them; print the count
    local ids n
    ids=$(rraw XREADGROUP GROUP "$1" c1 COUNT "$2" STREAMS "$P:results" '>' | grep -E '^[0-9]+-[0-9]+$')
    n=$(echo "$ids" | grep -c .)
    [ "$n" -gt 0 ] && rraw XACK "$P:results" "$1" $ids > /dev/null
    echo "$n"
}
entries_added() { rraw XINFO STREAM "$P:results" | awk 'prev == "entries-added" { print } { prev = $0 }'; }
wait_added() { # N: until the stream has had N entries added
    local i
    for i in $(seq 1 300); do [ "$(entries_added)" -ge "$1" ] 2>/dev/null && return 0; sleep 0.1; done
    return 1
}

start_sandbox
run() { # MODE
    local mode=$1 read1 rest
    start_redis
    METRICS_PORT=$(free_port)
    WORKER_ID=w1 write_conf "$T/$mode.conf" \
        "concurrency = 200\nresults_maxlen = 1000\nresults_trim = $mode\nmetrics_listen = 127.0.0.1:$METRICS_PORT"
    rraw XGROUP CREATE "$P:results" billing '$' MKSTREAM > /dev/null
    start_daemon "$T/$mode.conf" "$T/$mode.log"
    enqueue_many 1000 "$mode-a"
    check "$mode: the first 1,000 outcomes" wait_added 1000
    read1=$(ids_read billing 1000)
    check_eq "$mode: the group read and acknowledged 1,000" 1000 "$read1"
    enqueue_many 2000 "$mode-b" 1000
    check "$mode: 3,000 outcomes in all" wait_added 3000
    sleep 2.5 # two heartbeats (lease 3 s): trim and report
    LEN=$(rraw XLEN "$P:results")
    LAG=$(metric cancelq_results_group_lag '{group="billing"}')
    STATS=$("$BIN/cancelqctl" -c "$T/$mode.conf" --json stats | jq -r '.results.groups[] | select(.name == "billing") | "\(.lag) \(.pending) \(.lost)"')
    "$BIN/cancelqctl" -c "$T/$mode.conf" stats | grep 'group billing' | sed 's/^ */   stats: /'
    rest=$(ids_read billing 5000)
    echo "   $mode: stream holds $LEN entries; the group's lag on /metrics: $LAG; it can still read $rest"
    READ_LATER=$rest
    kill "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null
    kill "$REDIS_PID"; wait "$REDIS_PID" 2>/dev/null
}

echo "-- results_trim = acked"
run acked
check_eq "acked: the group's lag is the 2,000 it has not read" 2000 "$LAG"
check_eq "acked: none of the 2,000 unread was trimmed" 2000 "$READ_LATER"
check_eq "acked: cancelqctl stats shows lag 2,000, nothing lost" "2000 0 false" "$STATS"
check "acked: the backlog warning fired (more than results_maxlen unread)" grep -qE 'event=results_backlog.*group=billing.*unread=(1[0-9]{3}|2[0-9]{3}) ' "$T/acked.log"
check "acked: read entries beyond results_maxlen were trimmed" test "$LEN" -lt 3000

echo "-- results_trim = maxlen"
run maxlen
check_eq "maxlen: the group's lag counts the 2,000 it has not read" 2000 "$LAG"
check "maxlen: entries it had not read were trimmed: the loss shows (lag > length)" test "$LAG" -gt "$LEN"
check "maxlen: it can read only what is left" test "$READ_LATER" -lt 2000
check_eq "maxlen: cancelqctl stats shows the loss" "true" "${STATS##* }"

echo "-- what billing can match outcomes by"
start_redis
METRICS_PORT=$(free_port)
WORKER_ID=w1 write_conf "$T/m.conf" "metrics_listen = 127.0.0.1:$METRICS_PORT"
start_daemon "$T/m.conf" "$T/m.log"
enqueue '{"id":"bad-1","provider":"activeplatform","action":"delete_subscription","params":{"reseller_id":"x","subscription_id":1}}'
enqueue 'this is not json'
enqueue "{\"id\":\"q-1\",\"provider\":\"keliweb\",\"action\":\"cancel_service\",\"params\":{\"serviceid\":4242},\"enqueued_at\":\"$(date -u -d '-2 seconds' +%Y-%m-%dT%H:%M:%S.000Z)\"}"
check "three outcomes" wait_results 3 20
check_eq "an invalid outcome names id, provider and action" "invalid activeplatform delete_subscription" \
    "$(outcome bad-1 status) $(outcome bad-1 provider) $(outcome bad-1 action)"
digest=$(printf '%s' 'this is not json' | sha256sum | cut -d' ' -f1)
check "a job that was not JSON: its outcome carries raw_sha256" bash -c "redis-cli --raw -p $REDIS_PORT XRANGE '$P:results' - + | grep -qx '$digest'"
check "and so does its dead letter" bash -c "redis-cli --raw -p $REDIS_PORT LRANGE '$P:dead' 0 -1 | grep -q '\"raw_sha256\":\"$digest\"'"
check_eq "enqueued_at is accepted" succeeded "$(outcome q-1 status)"
check_eq "the queue-latency histogram counted it" 1 "$(metric cancelq_job_queue_seconds_count '')"
check "about 2 s in the queue (between 1 and 10)" bash -c "awk -v s=$(metric cancelq_job_queue_seconds_sum '') 'BEGIN { exit !(s >= 1 && s <= 10) }'"
finish
