#!/usr/bin/env bash
# test_sentinel.sh - cancelqd behind Redis Sentinel: the master is killed
# mid-run and its replica promoted; the daemons find the new master through
# the sentinel, and every job still ends with exactly one outcome.
. "$(dirname "$0")/lib.sh"
P="{cq}"
N=${SENTINEL_JOBS:-2000}

start_redis --appendonly yes --appendfsync always       # the first master
MASTER_PORT=$REDIS_PORT; MASTER_PID=$REDIS_PID
REPLICA_PORT=$(free_port)
mkdir -p "$T/replica"
redis-server --port "$REPLICA_PORT" --bind 127.0.0.1 --dir "$T/replica" --save '' \
    --appendonly yes --appendfsync always --replicaof 127.0.0.1 "$MASTER_PORT" \
    --logfile "$T/replica/redis.log" --daemonize no &
PIDS+=($!)
check "replica in sync" wait_for bash -c "redis-cli -p $REPLICA_PORT INFO replication | grep -q 'master_link_status:up'"
SENTINEL_PORT=$(free_port)
mkdir -p "$T/sentinel"
cat > "$T/sentinel/sentinel.conf" <<CONF
port $SENTINEL_PORT
bind 127.0.0.1
dir $T/sentinel
logfile $T/sentinel/sentinel.log
sentinel monitor mymaster 127.0.0.1 $MASTER_PORT 1
sentinel down-after-milliseconds mymaster 1000
sentinel failover-timeout mymaster 5000
CONF
redis-server "$T/sentinel/sentinel.conf" --sentinel &
PIDS+=($!)
check "sentinel knows the master" wait_for bash -c "redis-cli -p $SENTINEL_PORT SENTINEL get-master-addr-by-name mymaster | grep -qx $MASTER_PORT"

start_sandbox --latency 100
for w in 1 2; do
    WORKER_ID="w$w" LEASE=3s write_conf "$T/w$w.conf" "concurrency = 200" "concurrency = 100"
    sed -i "s/^port = $MASTER_PORT$/sentinels = 127.0.0.1:$SENTINEL_PORT\nmaster_name = mymaster/" "$T/w$w.conf"
done
enqueue_many "$N" t
check "jobs replicated before the failover" test "$(redis-cli -p "$MASTER_PORT" WAIT 1 5000)" -ge 1
for w in 1 2; do start_daemon "$T/w$w.conf" "$T/cancelqd-w$w.log"; done
check "daemons found the master through the sentinel" wait_for grep -q 'event=sentinel_master' "$T/cancelqd-w1.log"
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
check_eq "queue empty" 0 "$(rraw LLEN "$P:jobs")"
check_eq "nothing inflight" 0 "$(( $(rraw HLEN "$P:inflight:w1") + $(rraw HLEN "$P:inflight:w2") ))"
check "daemons re-discovered the master" bash -c "grep -c 'event=sentinel_master' '$T/cancelqd-w1.log' | grep -qv '^1$'"
echo "   repeated cancellation calls: $(repeated_calls) (outcomes written to the old master but not yet replicated are redone)"
check "durability warning is silent with appendfsync always" bash -c "! grep -q 'event=redis_durability' '$T/cancelqd-w1.log'"
finish
