#!/usr/bin/env bash
# test_global.sh - a provider's limits hold across every daemon of a
# deployment (docs/design.md §8), measured at the sandbox with four
# daemons: the rate, the concurrency, a 429 pause, the circuit breaker, and
# the shares of a daemon killed with SIGKILL.
. "$(dirname "$0")/lib.sh"
P="{cq}"

ap_jobs() { # TAG N OFFSET: N ActivePlatform jobs, each its own target
    local i
    for i in $(seq 1 "$2"); do
        printf "LPUSH %s:jobs '{\"id\":\"%s-%d\",\"provider\":\"activeplatform\",\"action\":\"delete_subscription\",\"params\":{\"reseller_id\":41,\"subscription_id\":%d}}'\n" \
            "$P" "$1" "$i" $(($3 + i))
    done | redis-cli -p "$REDIS_PORT" > /dev/null
}
ap_times() { # arrival times (ms) of the ActivePlatform calls, sorted
    curl -s "$SANDBOX/_sandbox/stats" |
        jq -r '.targets | to_entries[] | select(.key | startswith("activeplatform:")) | .value.times_ms[]' | sort -n
}
max_in_window() { # W: the most arrival times (ms, sorted, one a line) within any W ms
    awk -v w="$1" '{ t[NR] = $1 } END {
        m = 0; j = 1
        for (i = 1; i <= NR; i++) { while (t[i] - t[j] >= w) j++; if (i - j + 1 > m) m = i - j + 1 }
        print m }'
}
daemons() { # WORKER-LINES PROVIDER-LINES: start w1..w4
    local w
    for w in 1 2 3 4; do
        WORKER_ID="w$w" write_conf "$T/w$w.conf" "$1" "$2"
        start_daemon "$T/w$w.conf" "$T/w$w.log"
        eval "PID_$w=\$DAEMON_PID"
    done
}
stop_daemons() {
    kill "$PID_1" "$PID_2" "$PID_3" "$PID_4" 2>/dev/null
    wait "$PID_1" "$PID_2" "$PID_3" "$PID_4" 2>/dev/null
}
reset() { stop_daemons; rcli FLUSHALL > /dev/null; sandbox_post reset '{}'; }

start_redis
start_sandbox --quiet

echo "-- rate = 50/s, burst = 10 for the deployment, 4 daemons, 1,000 jobs"
daemons "concurrency = 100" "rate = 50/s\nburst = 10"
ap_jobs rate 1000 0
check "1,000 outcomes" wait_results 1000 60
peak=$(ap_times | max_in_window 1000)
echo "   most calls in any one second: $peak (the limit: 50 + 10)"
check "no one-second window above 60" test "$peak" -le 60
per=$(for w in 1 2 3 4; do rraw XRANGE "$P:results" - + | grep -c "^w$w$"; done | tr '\n' ' ')
echo "   outcomes per daemon: $per"
reset

echo "-- concurrency = 8 for the deployment, 500 ms latency, 4 daemons"
sandbox_post latency '{"ms":500}'
daemons "concurrency = 100" "concurrency = 8"
ap_jobs conc 160 2000
check "160 outcomes" wait_results 160 60
ap_times > "$T/conc.txt"
peak=$(max_in_window 480 < "$T/conc.txt")
# how much the limit was used: each request is in flight for the 500 ms
# after its arrival; the share of the time (first arrival to last answer)
# with 7 or 8 in flight
used=$(awk 'NR == 1 { t0 = $1 } { printf "%d 1\n%d -1\n", $1 - t0, $1 - t0 + 500 }' "$T/conc.txt" | sort -n -k1,1 -k2,2n | awk '
    NR == 1 { start = $1; last = $1 } { if (n >= 7) busy += $1 - last; n += $2; last = $1 }
    END { print int(100 * busy / (last - start)) }')
echo "   most requests in flight: $peak; 7 or 8 in flight $used % of the time"
check "never more than 8 in flight" test "$peak" -le 8
check "the limit is used: 7 or more most of the time" test "$used" -ge 50
reset

echo "-- one 429 with Retry-After: 2 pauses every daemon"
sandbox_post script '{"target":"activeplatform:41/3001","responses":[{"status":429,"retry_after":"2"}]}'
daemons "concurrency = 100" "concurrency = 4"
ap_jobs pause 1 3000
check "the 429 is seen" wait_for bash -c "grep -q 'event=provider_paused' '$T'/w*.log"
t429=$(curl -s "$SANDBOX/_sandbox/target?name=activeplatform:41/3001" | jq '.times_ms[0]')
ap_jobs more 40 3001
check "all 41 end" wait_results 41 40
silent=$(ap_times | awk -v a="$t429" '$1 > a && $1 < a + 1950' | wc -l)
echo "   calls to the instance in the 2 s after the 429: $silent"
check_eq "no daemon sent to the instance during the pause" 0 "$silent"
reset

echo "-- a 5 s outage (503): the breaker opens for all"
daemons "concurrency = 100\nmax_attempts = 20" "breaker_failures = 5\nbreaker_cooldown = 1s"
sandbox_post outage '{"provider":"activeplatform","kind":"cancel","status":503,"for_ms":5000}'
ap_jobs brk 400 4000
sleep 5
during=$(curl -s "$SANDBOX/_sandbox/stats" | jq '.by_kind.activeplatform.cancel.outage')
own=$(cat "$T"/w*.log | grep -c 'event=breaker_state provider=activeplatform state=open by=this_worker')
adopted=$(cat "$T"/w*.log | grep -c 'event=breaker_state provider=activeplatform state=open by=deployment')
echo "   calls during the outage: $during; openings by a daemon's own failures: $own, taken over by the others: $adopted"
check "the first opening was shared: the others took it over" test "$adopted" -ge 3
check "calls during the outage stay bounded (<= 60)" test "$during" -le 60
check "all 400 end after the recovery" wait_results 400 60
check_eq "all succeeded" 400 "$(rraw XRANGE "$P:results" - + | grep -c '^succeeded$')"
reset

echo "-- kill -9 of a daemon holding slots; 10,000 jobs: nothing leaks"
daemons "concurrency = 100" "concurrency = 40"
sandbox_post latency '{"ms":300}'
ap_jobs kill 200 10000
check "w4 holds a share" wait_for bash -c "redis-cli --raw -p $REDIS_PORT HGET '$P:share:activeplatform' \"\$(redis-cli --raw -p $REDIS_PORT HKEYS '$P:share:activeplatform' | grep '^w4/')\" | awk '{ exit !(\$3 > 0) }'"
kill -9 "$PID_4"; wait "$PID_4" 2>/dev/null
t0=$(rraw TIME | { read -r s; read -r us; echo $((s * 1000 + us / 1000)); })
# a share counts until its expiry (Redis time); the next share request of a
# live worker after that no longer sees it
w4=$(rraw HKEYS "$P:share:activeplatform" | grep '^w4/')
expiry=$(rraw HGET "$P:share:activeplatform" "$w4" | awk '{ print $6 }')
echo "   w4's share ($(rraw HGET "$P:share:activeplatform" "$w4" | awk '{ print $3 }') slots) stops counting $((expiry - t0)) ms after the kill (lease 3 s)"
check "w4's slots come back within the lease" test $((expiry - t0)) -le 3000
check "the 200 end" wait_results 200 60
sandbox_post latency '{"ms":0}'
ap_jobs many 10000 20000
check "10,000 more end" wait_results 10200 120
sleep 2.5 # a heartbeat or two: idle workers give their shares back
held=$(rraw HVALS "$P:share:activeplatform" | awk '{ c += $3; f += $2 } END { print c + 0, f + 0 }')
check_eq "no slot held and nothing in flight once idle" "0 0" "$held"
check_eq "queue empty" 0 "$(queue_len)"
stop_daemons
finish
