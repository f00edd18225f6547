#!/usr/bin/env bash
# test_cluster.sh - cancelqd on a 3-master Redis Cluster: it is given a node
# that does not own the deployment's slot (all keys share the {cq} hash tag)
# and follows MOVED; mid-run the slot is migrated to another node
# (IMPORTING/MIGRATING, MIGRATE, SETSLOT NODE) and processing continues
# there, nothing lost or doubled.
. "$(dirname "$0")/lib.sh"
P="{cq}"
N=${CLUSTER_JOBS:-2000}

# cluster ports: the bus port (port + 10000) must be free too
cluster_port() {
    local p
    while :; do
        p=$(( 10000 + RANDOM % 12000 ))
        (echo > "/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue
        (echo > "/dev/tcp/127.0.0.1/$((p + 10000))") 2>/dev/null && continue
        echo "$p"; return
    done
}
NODES=()
for i in 1 2 3; do
    p=$(cluster_port); NODES+=("$p")
    mkdir -p "$T/n$p"
    redis-server --port "$p" --bind 127.0.0.1 --dir "$T/n$p" --cluster-enabled yes \
        --cluster-config-file nodes.conf --cluster-node-timeout 2000 --save '' \
        --appendonly yes --appendfsync always --logfile "$T/n$p/redis.log" --daemonize no &
    PIDS+=($!)
    wait_for redis-cli -p "$p" ping || { echo "node $p did not start"; exit 1; }
done
redis-cli --cluster create "${NODES[@]/#/127.0.0.1:}" --cluster-replicas 0 --cluster-yes > "$T/create.log" 2>&1
for p in "${NODES[@]}"; do
    check "cluster formed (:$p)" wait_for bash -c "redis-cli -p $p CLUSTER INFO | grep -q 'cluster_state:ok'"
done
SLOT=$(redis-cli -p "${NODES[0]}" CLUSTER KEYSLOT "$P")
owner=""; other=""; target=""
find_owner() {
    local p
    for p in "${NODES[@]}"; do
        if redis-cli -p "$p" EXISTS "$P:jobs" | grep -q '^[0-9]'; then owner=$p; return 0; fi
    done
    return 1
}
for i in $(seq 1 100); do find_owner && break; sleep 0.1; done
for p in "${NODES[@]}"; do
    [ "$p" = "$owner" ] && continue
    if [ -z "$other" ]; then other=$p; else target=$p; fi
done
echo "   slot $SLOT of $P is on :$owner; seed given to cancelqd: :$other; migration target: :$target"
check "found the slot's owner" test -n "$owner"
REDIS_PORT=$owner

start_sandbox --latency 100
write_conf "$T/cq.conf" "concurrency = 200" "concurrency = 100"
sed -i "s/^port = $owner$/cluster = 127.0.0.1:$other,127.0.0.1:$target/" "$T/cq.conf"
enqueue_many "$N" c
start_daemon "$T/cq.conf"
check "MOVED followed to the owner" wait_for grep -q "event=redis_lost conn=main reason=\"MOVED $SLOT 127.0.0.1:$owner\"" "$T/cancelqd.log"
check "work flows" wait_results $((N / 4)) 60

# move the slot, with the daemon writing to it
src=$(redis-cli -p "$owner" CLUSTER MYID); dst=$(redis-cli -p "$target" CLUSTER MYID)
t0=$(date +%s%3N)
redis-cli -p "$target" CLUSTER SETSLOT "$SLOT" IMPORTING "$src" > /dev/null
redis-cli -p "$owner" CLUSTER SETSLOT "$SLOT" MIGRATING "$dst" > /dev/null
moved=0
while :; do
    keys=$(redis-cli -p "$owner" CLUSTER GETKEYSINSLOT "$SLOT" 100)
    [ -z "$keys" ] && break
    # shellcheck disable=SC2086
    redis-cli -p "$owner" MIGRATE 127.0.0.1 "$target" "" 0 5000 KEYS $keys > /dev/null
    moved=$((moved + $(echo "$keys" | wc -l)))
done
for p in "${NODES[@]}"; do redis-cli -p "$p" CLUSTER SETSLOT "$SLOT" NODE "$dst" > /dev/null; done
t1=$(date +%s%3N)
echo "   migrated $moved keys in $((t1 - t0)) ms"
REDIS_PORT=$target
check "the daemon followed the slot" wait_for grep -q "MOVED $SLOT 127.0.0.1:$target" "$T/cancelqd.log"
check "all $N jobs end on the new owner" wait_results "$N" 120
check_eq "exactly one outcome per job" "$N" "$(outcome_ids | sort -u | wc -l)"
check_eq "no extra outcomes" "$N" "$(results_count)"
check_eq "queue empty" 0 "$(queue_len)"
check_eq "nothing inflight" 0 "$(rraw HLEN "$P:inflight:w1")"
check_eq "nothing left on the old owner" 0 "$(redis-cli -p "$owner" CLUSTER COUNTKEYSINSLOT "$SLOT")"
echo "   repeated cancellation calls: $(repeated_calls)"
finish
