#!/usr/bin/env bash
# test_sentinel.sh - cancelqd behind Redis Sentinel: the master is killed
# mid-run and its replica promoted; the daemons find the new master through
# the sentinel, and every job still ends with exactly one outcome.  Run
# twice: without [redis] wait_replicas (what a failover costs: writes the
# replica had not received are redone) and with wait_replicas = 1 (no
# claim or outcome a worker acted on is lost: no repeated call).  The lease
# (10 s) outlasts the failover, so no job is taken back from a live worker
# (that fault, a worker cut off longer than the lease, is test_faults.sh's).
. "$(dirname "$0")/lib.sh"
P="{cq}"
N=${SENTINEL_JOBS:-2000}

# failover WAIT TAG: one master, one replica, one sentinel; two daemons;
# the master killed after a quarter of the jobs.
failover() {
    local wait=$1 tag=$2 d
    mkdir -p "$T/master-$tag"     # each run its own data: the AOF would carry over
    start_redis --appendonly yes --appendfsync always --dir "$T/master-$tag"       # the first master
    MASTER_PORT=$REDIS_PORT; MASTER_PID=$REDIS_PID
    REPLICA_PORT=$(free_port)
    mkdir -p "$T/replica-$tag"
    redis-server --port "$REPLICA_PORT" --bind 127.0.0.1 --dir "$T/replica-$tag" --save '' \
        --appendonly yes --appendfsync always --replicaof 127.0.0.1 "$MASTER_PORT" \
        --logfile "$T/replica-$tag/redis.log" --daemonize no &
    PIDS+=($!)
    check "replica in sync" wait_for bash -c "redis-cli -p $REPLICA_PORT INFO replication | grep -q 'master_link_status:up'"
    SENTINEL_PORT=$(free_port)
    d="$T/sentinel-$tag"
    mkdir -p "$d"
    cat > "$d/sentinel.conf" <<CONF
port $SENTINEL_PORT
bind 127.0.0.1
dir $d
logfile $d/sentinel.log
sentinel monitor mymaster 127.0.0.1 $MASTER_PORT 1
sentinel down-after-milliseconds mymaster 1000
sentinel failover-timeout mymaster 5000
CONF
    redis-server "$d/sentinel.conf" --sentinel &
    PIDS+=($!)
    check "sentinel knows the master" wait_for bash -c "redis-cli -p $SENTINEL_PORT SENTINEL get-master-addr-by-name mymaster | grep -qx $MASTER_PORT"

    sandbox_post reset '{}'
    sandbox_post latency '{"ms":100}'
    for w in 1 2; do
        WORKER_ID="w$w" LEASE=10s write_conf "$T/$tag-w$w.conf" "concurrency = 200" "concurrency = 100"
        sed -i "s/^port = $MASTER_PORT$/sentinels = 127.0.0.1:$SENTINEL_PORT\nmaster_name = mymaster\nwait_replicas = $wait\nwait_timeout = 500ms/" "$T/$tag-w$w.conf"
    done
    enqueue_many "$N" "$tag"
    check "jobs replicated before the failover" test "$(redis-cli -p "$MASTER_PORT" WAIT 1 5000)" -ge 1
    for w in 1 2; do start_daemon "$T/$tag-w$w.conf" "$T/$tag-w$w.log"; eval "PID_$w=\$DAEMON_PID"; done
    check "daemons found the master through the sentinel" wait_for grep -q 'event=sentinel_master' "$T/$tag-w1.log"
    check "work flows" wait_results $((N / 4)) 60
    before=$(results_count)
    t0=$(date +%s%3N)
    kill -9 "$MASTER_PID"; wait "$MASTER_PID" 2>/dev/null
    echo "   killed the master with $before outcomes written"
    REDIS_PORT=$REPLICA_PORT          # from here on, the helpers read the new master
    check "sentinel promoted the replica" wait_for bash -c "redis-cli -p $SENTINEL_PORT SENTINEL get-master-addr-by-name mymaster | grep -qx $REPLICA_PORT"
    check "processing resumes on the new master" wait_for bash -c "[ \$(redis-cli -p $REPLICA_PORT XLEN '$P:results') -gt 0 ] && redis-cli -p $REPLICA_PORT ROLE | head -1 | grep -qx master"
    check "all $N jobs end" wait_results "$N" 120
    first_after=$(rraw XRANGE "$P:results" "$t0" + COUNT 1 | head -1 | cut -d- -f1)
    echo "   processing paused for about $(( ${first_after:-$t0} - t0 )) ms (kill -> first outcome on the new master)"
    check_eq "exactly one outcome per job" "$N" "$(outcome_ids | sort -u | wc -l)"
    check_eq "no extra outcomes" "$N" "$(results_count)"
    check_eq "queue empty" 0 "$(queue_len)"
    check_eq "nothing inflight" 0 "$(( $(rraw HLEN "$P:inflight:w1") + $(rraw HLEN "$P:inflight:w2") ))"
    check "daemons re-discovered the master" bash -c "grep -c 'event=sentinel_master' '$T/$tag-w1.log' | grep -qv '^1$'"
    REPEATS=$(repeated_calls)
    check "durability warning is silent with appendfsync always" bash -c "! grep -q 'event=redis_durability' '$T/$tag-w1.log'"
    kill "$PID_1" "$PID_2"; wait "$PID_1" "$PID_2" 2>/dev/null
}

start_sandbox
echo "-- without wait_replicas"
failover 0 fa
echo "   repeated cancellation calls: $REPEATS (writes the replica had not received were redone)"
echo "-- with wait_replicas = 1"
failover 1 fb
echo "   repeated cancellation calls: $REPEATS"
check_eq "no claim or outcome acted on was lost: no repeated call" 0 "$REPEATS"
redone=$(cat "$T"/fb-w*.log | grep -c 'event=redis_wait_unsure')
echo "   batches sent again after the reconnect: $redone"
finish
