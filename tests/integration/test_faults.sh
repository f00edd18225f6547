#!/usr/bin/env bash
# test_faults.sh - once per intent under the faults production brings
# (docs/design.md §7, §11), with real processes: a partition of one daemon
# from Redis (a proxy of ours that passes, blackholes or cuts on command),
# skewed clocks (libfaketime), a lost claim reply, SIGTERM while jobs wait
# for a status lookup, and a Sentinel failover with wait_replicas.  Every
# scenario counts the cancellation calls per target at the sandbox and
# checks that every job has exactly one outcome and nothing is left in
# jobs, inflight or delayed.
. "$(dirname "$0")/lib.sh"
P="{cq}"
FAKETIME_LIB=$(ls /usr/lib/*/faketime/libfaketime.so.1 2>/dev/null | head -1)

# start_proxy: PROXY_PORT -> Redis, control on PROXY_CTL.
start_proxy() {
    PROXY_PORT=$(free_port); PROXY_CTL=$(free_port)
    python3 "$ROOT/tests/integration/faultproxy.py" --listen "$PROXY_PORT" \
        --target "127.0.0.1:$REDIS_PORT" --control "$PROXY_CTL" > "$T/proxy.log" 2>&1 &
    PIDS+=($!)
    wait_for bash -c "echo > /dev/tcp/127.0.0.1/$PROXY_CTL" || { echo "proxy did not start"; exit 1; }
}
proxy() {
    local ans
    exec 3<>"/dev/tcp/127.0.0.1/$PROXY_CTL" && echo "$*" >&3 && read -r ans <&3
    exec 3<&-
    echo "$ans"
}

# A daemon: conf through the proxy (via=proxy) or direct.
daemon_conf() { # FILE ID [via] [worker lines] [provider lines]; TIMEOUT= the providers'
    WORKER_ID=$2 write_conf "$1" "${4:-}" "${5:-}"
    if [ "${3:-}" = proxy ]; then sed -i "s/^port = $REDIS_PORT\$/port = $PROXY_PORT/" "$1"; fi
    sed -i "s/^timeout = 2s\$/timeout = ${TIMEOUT:-2s}/" "$1"
}

left_over() { # jobs + delayed + every inflight hash
    local n k
    n=$(( $(queue_len) + $(rraw ZCARD "$P:delayed") ))
    for k in $(rraw KEYS "$P:inflight:*"); do n=$((n + $(rraw HLEN "$k"))); done
    echo "$n"
}
one_each() { # N TAG: exactly one outcome for each of the N jobs TAG-i
    local got
    got=$(outcome_ids | grep -c "^$2-")
    check_eq "$2: $1 outcomes" "$1" "$got"
    check_eq "$2: one outcome per job" "$1" "$(outcome_ids | grep "^$2-" | sort -u | wc -l)"
}
calls_of() { # TARGET...: their cancellation calls, one a line
    local t
    for t in "$@"; do target_calls "$t"; done | tr '\n' ' ' | sed 's/ $//'
}
ones() { printf '1 %.0s' $(seq 1 "$1") | sed 's/ $//'; }
zeros() { printf '0 %.0s' $(seq 1 "$1") | sed 's/ $//'; }
ap_job() { echo "{\"id\":\"$1\",\"provider\":\"activeplatform\",\"action\":\"delete_subscription\",\"params\":{\"reseller_id\":$2,\"subscription_id\":$3}}"; }
in_job() { echo "{\"id\":\"$1\",\"provider\":\"intronis\",\"action\":\"cancel_partner\",\"params\":{\"username\":\"$2\",\"reason_id\":1,\"reason_note\":\"\"}}"; }
# a claim left by a worker that vanished mid-call: its lease over, its
# holder still named (so the next taker must look the status up first)
vanished_claim() { # KEY JOBID
    rcli HSET "$P:idem:$1" state inflight owner dead/h1 id "$2" worker dead/1 \
        hash "$3" lease_until 1 > /dev/null
}
wait_for_results_tag() { # TAG N SECONDS
    local i
    for i in $(seq 1 $(($3 * 10))); do
        [ "$(outcome_ids | grep -c "^$1-")" -ge "$2" ] && return 0
        sleep 0.1
    done
    return 1
}

start_redis
start_sandbox
start_proxy

echo "-- 1. A partitioned from Redis (longer than the lease) with requests in flight"
# A alone takes 8 jobs whose calls hang 4 s at the provider; then A is cut
# off from Redis (not from the provider); B starts, takes A's jobs back
# after the lease, waits out A's claims (lease + timeout + margin) and looks
# the status up: the calls went through, so no second call
for i in $(seq 1 8); do sandbox_post script "{\"target\":\"activeplatform:11/$i\",\"responses\":[{\"hang_ms\":4000}]}"; done
MPORT=$(free_port)
TIMEOUT=6s daemon_conf "$T/a.conf" a proxy "concurrency = 50\nmetrics_listen = 127.0.0.1:$MPORT"
TIMEOUT=6s daemon_conf "$T/b.conf" b direct "concurrency = 50"
start_daemon "$T/a.conf" "$T/a1.log"; A=$DAEMON_PID
for i in $(seq 1 8); do enqueue "$(ap_job p1-$i 11 "$i")"; done
check "A has all 8 calls in flight" wait_for bash -c "[ \$(curl -s '$SANDBOX/_sandbox/stats' | jq '[.targets | to_entries[] | select(.key | startswith(\"activeplatform:11/\")) | .value.cancel] | add // 0') -eq 8 ]"
proxy blackhole > /dev/null
t0=$(date +%s%3N)
start_daemon "$T/b.conf" "$T/b1.log"; B=$DAEMON_PID
check "A fences itself (no acknowledged heartbeat)" wait_for grep -q 'event=fenced' "$T/a1.log"
check_eq "A's /readyz says fenced" "503 not ready: fenced: no heartbeat acknowledged" \
    "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT/readyz") $(curl -s "http://127.0.0.1:$MPORT/readyz")"
check "B takes A's jobs back after the lease" wait_for grep -q 'event=jobs_reclaimed' "$T/b1.log"
echo "   reclaimed after $(( $(date +%s%3N) - t0 )) ms"
sleep 3
proxy cut > /dev/null   # healed: A reconnects
check "8 outcomes" wait_results 8 40
one_each 8 p1
check_eq "one call per target, none repeated" "$(ones 8)" "$(calls_of $(for i in $(seq 1 8); do echo "activeplatform:11/$i"; done))"
check_eq "every outcome already_done (looked up, not called again)" 8 \
    "$(rraw XRANGE "$P:results" - + | awk 'prev == "status" && $0 == "already_done" { n++ } { prev = $0 } END { print n + 0 }')"
check "A unfences once Redis answers" wait_for grep -q 'event=unfenced' "$T/a1.log"
check "A's /readyz is ready again" wait_for bash -c "[ \$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$MPORT/readyz) = 200 ]"
check_eq "nothing left" 0 "$(left_over)"
kill "$A" "$B"; wait "$A" "$B" 2>/dev/null

echo "-- 2. A partitioned while its jobs wait locally (rate = 1/s)"
# A takes 8 jobs of an instance limited to 1 request a second: it calls the
# first one or two and holds the rest, claimed, waiting for the rate; then it
# is cut off from Redis.  B takes them back after the lease, waits out A's
# claims and A's share of the rate, looks the status up (nothing done) and
# calls each once; A, fenced, sends nothing more and lets them go.
sandbox_post reset '{}'
rcli FLUSHALL > /dev/null
proxy pass > /dev/null
daemon_conf "$T/a2.conf" a2 proxy "concurrency = 50" "rate = 1/s\nburst = 1"
daemon_conf "$T/b2.conf" b2 direct "concurrency = 50" "rate = 1/s\nburst = 1"
start_daemon "$T/a2.conf" "$T/a2.log"; A=$DAEMON_PID
for i in $(seq 1 8); do enqueue "$(ap_job p2-$i 12 "$i")"; done
check "A holds the eight" wait_for bash -c "[ \$(redis-cli -p $REDIS_PORT HLEN '$P:inflight:a2') -eq 8 ]"
check "A has called one and waits for the rate" wait_for bash -c "[ \$(curl -s '$SANDBOX/_sandbox/stats' | jq '[.targets[] | .cancel] | add // 0') -ge 1 ]"
proxy blackhole > /dev/null
before=$(curl -s "$SANDBOX/_sandbox/stats" | jq '[.targets[] | .cancel] | add // 0')
start_daemon "$T/b2.conf" "$T/b2.log"; B=$DAEMON_PID
check "A fences itself" wait_for grep -q 'event=fenced' "$T/a2.log"
check "B takes them back" wait_for grep -q 'event=jobs_reclaimed' "$T/b2.log"
sleep 2
proxy cut > /dev/null
check "all 8 end" wait_results 8 60
one_each 8 p2
check_eq "one call per target, none repeated" "$(ones 8)" \
    "$(calls_of $(for i in $(seq 1 8); do echo "activeplatform:12/$i"; done))"
after_a=$(grep -c 'event=job_done' "$T/a2.log")
echo "   A had called $before before the partition; it wrote $after_a outcomes"
check "A drops what it no longer owns, without a call" wait_for grep -qE 'event=(job_dropped|job_not_ours)' "$T/a2.log"
check_eq "nothing left" 0 "$(left_over)"
kill "$A" "$B"; wait "$A" "$B" 2>/dev/null

# an ASan build (make asan) refuses a preload that comes before its runtime
# unless told: libfaketime only wraps the clock calls
FAKE_ASAN="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
echo "-- 3. skewed clocks: A 30 s ahead, B on time; then A 30 s behind, killed mid-run"
if [ -z "$FAKETIME_LIB" ]; then
    echo "   libfaketime missing (Debian faketime): skipped"; FAILED=$((FAILED + 1))
else
    sandbox_post reset '{}'
    sandbox_post latency '{"ms":20}'
    rcli FLUSHALL > /dev/null
    N=2000
    daemon_conf "$T/a3.conf" a3 direct "concurrency = 100"
    daemon_conf "$T/b3.conf" b3 direct "concurrency = 100"
    ASAN_OPTIONS=$FAKE_ASAN LD_PRELOAD=$FAKETIME_LIB FAKETIME="+30s" FAKETIME_DONT_FAKE_MONOTONIC=1 start_daemon "$T/a3.conf" "$T/a3.log"; A=$DAEMON_PID
    start_daemon "$T/b3.conf" "$T/b3.log"; B=$DAEMON_PID
    check "A's clock is 30 s ahead" bash -c "LD_PRELOAD=$FAKETIME_LIB FAKETIME=+30s date +%s | awk -v now=\$(date +%s) '{ exit !(\$1 - now >= 29) }'"
    enqueue_many "$N" sk
    check "all $N end" wait_results "$N" 120
    one_each "$N" sk
    check_eq "no repeated call" 0 "$(repeated_calls)"
    check "no job taken from a live worker" bash -c "! grep -h 'event=jobs_reclaimed' '$T/a3.log' '$T/b3.log' | grep -v 'our previous run' | grep -q ."
    split=$(rraw XRANGE "$P:results" - + | awk 'prev == "worker" { c[$0]++ } { prev = $0 } END { for (w in c) printf "%s=%d ", w, c[w] }')
    echo "   outcomes per worker: $split"
    check "both worked" bash -c "echo '$split' | grep -q 'a3=' && echo '$split' | grep -q 'b3='"
    check_eq "nothing left" 0 "$(left_over)"
    kill "$A"; wait "$A" 2>/dev/null
    # A again, 30 s behind, killed while it holds jobs: B takes them within
    # lease + a few seconds (only providers with a status lookup, so any
    # second call would be a real repeat)
    sandbox_post reset '{}'
    sandbox_post latency '{"ms":300}'
    rcli DEL "$P:results" > /dev/null
    ASAN_OPTIONS=$FAKE_ASAN LD_PRELOAD=$FAKETIME_LIB FAKETIME="-30s" FAKETIME_DONT_FAKE_MONOTONIC=1 start_daemon "$T/a3.conf" "$T/a3b.log"; A=$DAEMON_PID
    for i in $(seq 1 300); do
        if [ $((i % 2)) -eq 0 ]; then ap_job "kb-$i" 13 "$i"; else in_job "kb-$i" "kb-$i"; fi
    done | while read -r j; do printf "LPUSH %s:jobs '%s'\n" "$P" "$j"; done | redis-cli -p "$REDIS_PORT" > /dev/null
    check "A holds jobs" wait_for bash -c "[ \$(redis-cli -p $REDIS_PORT HLEN '$P:inflight:a3') -ge 20 ]"
    kill -9 "$A"; wait "$A" 2>/dev/null
    t0=$(date +%s%3N)
    check "B takes A's jobs back" wait_for grep -q 'event=jobs_reclaimed' "$T/b3.log"
    t1=$(date +%s%3N)
    echo "   B took A's jobs over $((t1 - t0)) ms after the kill (lease 3 s)"
    check "within lease + 2 s" test $((t1 - t0)) -le 5000
    check "all 300 end" wait_results 300 60
    one_each 300 kb
    check_eq "no repeated call" 0 "$(repeated_calls)"
    check_eq "nothing left" 0 "$(left_over)"
    kill "$B"; wait "$B" 2>/dev/null
fi

echo "-- 4. a lost claim reply; SIGTERM while jobs wait for a status lookup"
sandbox_post reset '{}'
rcli FLUSHALL > /dev/null
proxy pass > /dev/null
# the daemon's params hash for a job: from cancelqctl's dry run
hash_of() { "$BIN/cancelqctl" -c "$T/a4.conf" enqueue --dry-run --json --file - <<< "$1" 2>/dev/null | jq -r '.params_hash // empty'; }
daemon_conf "$T/a4.conf" a4 proxy "" "concurrency = 2"
sed -i 's/^shutdown_grace = 5s$/shutdown_grace = 1s/' "$T/a4.conf"
J=$(in_job lost-1 lost-user)
H=$(hash_of "$J")
check "the params hash is known" test -n "$H"
vanished_claim "intronis:cancel_partner:lost-user" old-job "$H"
sandbox_post state '{"target":"intronis:lost-user","state":"cancelled"}'
proxy "cutafter takeover" > /dev/null
start_daemon "$T/a4.conf" "$T/a4.log"; A=$DAEMON_PID
enqueue "$J"
check "1 outcome" wait_results 1 20
check "the takeover's reply was lost (the proxy dropped it)" grep -q 'lost=1 armed=0' <<< "$(proxy stats)"
check "the daemon saw the connection drop and sent the claim again" grep -q 'event=redis_lost' "$T/a4.log"
check_eq "already_done: looked up first after the resent claim" already_done "$(outcome lost-1 status)"
check_eq "no cancellation call" 0 "$(target_calls intronis:lost-user)"
# SIGTERM while 10 jobs wait for a lookup (every answer takes 3 s; 2 at a time)
sandbox_post latency '{"ms":3000}'
for i in $(seq 1 10); do
    J=$(in_job term-$i term-user-$i)
    vanished_claim "intronis:cancel_partner:term-user-$i" "old-$i" "$(hash_of "$J")"
    sandbox_post state "{\"target\":\"intronis:term-user-$i\",\"state\":\"cancelled\"}"
    enqueue "$J"
done
check "lookups under way" wait_for grep -q 'event=job_status_check.*id=term-' "$T/a4.log"
sleep 0.5
kill -TERM "$A"; wait "$A" 2>/dev/null
check_eq "no term job ended before the stop" 0 "$(outcome_ids | grep -c '^term-')"
sandbox_post latency '{"ms":0}'
daemon_conf "$T/b4.conf" b4 direct
start_daemon "$T/b4.conf" "$T/b4.log"; B=$DAEMON_PID
check "the next taker ends all 10" wait_results 11 30
one_each 10 term
check_eq "every one looked up first: already_done" 10 \
    "$(rraw XRANGE "$P:results" - + | awk 'prev == "id" { id = $0 } prev == "status" && id ~ /^term-/ && $0 == "already_done" { n++ } { prev = $0 } END { print n + 0 }')"
check_eq "no cancellation call" "$(zeros 10)" "$(calls_of $(for i in $(seq 1 10); do echo "intronis:term-user-$i"; done))"
check_eq "nothing left" 0 "$(left_over)"
kill "$B"; wait "$B" 2>/dev/null

finish
