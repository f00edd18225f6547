#!/usr/bin/env bash
# test_pause.sh - cancelqctl provider pause / resume / list with two
# daemons: a pause stops calls to that provider in both within a heartbeat
# (counted at the sandbox), other providers go on, paused jobs spend no
# attempt, resume restarts the calls, a timed pause ends by itself, and
# every job ends exactly once.
. "$(dirname "$0")/lib.sh"

start_redis
start_sandbox --quiet --latency 100
CTL="$BIN/cancelqctl"
now_ms() { date +%s%3N; }
# kw_jobs N TAG: N Keliweb jobs, ids TAG-i, service ids from FIRST
kw_jobs() {
    local i
    for i in $(seq 1 "$1"); do
        printf "LPUSH {cq}:jobs '%s'\n" \
            "{\"id\":\"$2-$i\",\"provider\":\"keliweb\",\"action\":\"cancel_service\",\"params\":{\"serviceid\":$(($3 + i))}}"
    done | redis-cli -p "$REDIS_PORT" > /dev/null
}
# the calls to the kw- jobs' targets (keliweb:1001 .. keliweb:1200)
kw_times() { curl -s "$SANDBOX/_sandbox/stats" | jq -r '.targets | to_entries[] | select(.key | test("^keliweb:1[0-9]{3}$")) | .value.times_ms[]'; }
kw_calls() { kw_times | wc -l; }
ended() { outcome_ids | grep -c "^$1-"; }
# until_ended TAG N SECONDS: wait until N jobs TAG-i have an outcome
until_ended() {
    local i
    for i in $(seq 1 $(($3 * 10))); do [ "$(ended "$1")" -ge "$2" ] && return 0; sleep 0.1; done
    return 1
}

MPORT=$(free_port)
metric() { curl -s "http://127.0.0.1:$MPORT/metrics" | awk -v k="$1" 'index($0, k) == 1 { print $NF }'; }
WORKER_ID=w1 write_conf "$T/w1.conf" "metrics_listen = 127.0.0.1:$MPORT" "concurrency = 4"
WORKER_ID=w2 write_conf "$T/w2.conf" "" "concurrency = 4"
start_daemon "$T/w1.conf" "$T/w1.log"; D1=$DAEMON_PID
start_daemon "$T/w2.conf" "$T/w2.log"; D2=$DAEMON_PID

echo "-- pause while both daemons call"
kw_jobs 200 kw 1000
check "calls are flowing (both daemons hold a share after a heartbeat)" until_ended kw 60 10
t_pause=$(now_ms)
out=$("$CTL" -c "$T/w1.conf" provider pause keliweb --reason "planned maintenance")
check "pause answers with the instance and what follows" grep -q "provider keliweb paused until resumed" <<< "$out"
sleep 1.5 # a heartbeat (lease 3 s: 1 s) and a request in flight (100 ms)
c1=$(kw_calls)
last=$(kw_times | sort -n | tail -1)
echo "   last Keliweb call $((last - t_pause)) ms after the pause (heartbeat 1000 ms)"
check "no call later than a heartbeat + a request after the pause" test $((last - t_pause)) -le 1300
sleep 2
check_eq "no Keliweb call while paused" "$c1" "$(kw_calls)"
check_eq "w1's /metrics: keliweb paused, intronis not" "1 0" \
    "$(metric 'cancelq_provider_paused{provider="keliweb"}') $(metric 'cancelq_provider_paused{provider="intronis"}')"
check "w1's /metrics: jobs put back for the pause counted" test "$(metric 'cancelq_provider_paused_deferred_total{provider="keliweb"}')" -gt 0
check "both daemons had called Keliweb before the pause" \
    bash -c "grep -q 'event=job_done.*provider=keliweb' '$T/w1.log' && grep -q 'event=job_done.*provider=keliweb' '$T/w2.log'"
enqueue_many 30 other
check "other providers go on during the pause (their 20 of 30)" until_ended other 20 10
list=$("$CTL" -c "$T/w1.conf" provider list)
echo "$list" | sed 's/^/   | /'
check "list: paused, with reason and who" grep -qE '^keliweb +keliweb +paused +until resumed, reason: planned maintenance, by [^ ]+@' <<< "$list"
check "list: the others running" grep -qE '^intronis +intronis +running' <<< "$list"
check_eq "list --json" "paused planned maintenance 0" \
    "$("$CTL" -c "$T/w1.conf" --json provider list | jq -r '.[] | select(.provider == "keliweb") | "\(.state) \(.pause_reason) \(.pause_until_ms)"')"
"$CTL" -c "$T/w1.conf" check > "$T/check.txt"; rc=$?
check_eq "check: WARNING (exit 1) naming the pause" "1 yes" "$rc $(grep -q 'provider keliweb paused' "$T/check.txt" && echo yes)"

echo "-- resume"
before=$(ended kw)
"$CTL" -c "$T/w1.conf" provider resume keliweb > "$T/resume.txt"
check "resume says so" grep -q "provider keliweb resumed" "$T/resume.txt"
check "all 200 Keliweb jobs end after the resume" until_ended kw 200 30
check_eq "w1's /metrics: keliweb no longer paused" 0 "$(metric 'cancelq_provider_paused{provider="keliweb"}')"
echo "   $before of 200 had ended before the resume"
check "some were held back by the pause" test "$before" -lt 200
check_eq "one outcome per job" 200 "$(outcome_ids | grep '^kw-' | sort -u | wc -l)"
check_eq "one call per job" 200 "$(kw_calls)"
check_eq "all succeeded with one attempt (the pause spent none)" "200" \
    "$(rraw XRANGE '{cq}:results' - + | awk 'p == "id" { id = $0 } p == "attempts" && id ~ /^kw-/ && $0 == "1" { n++ } { p = $0 } END { print n + 0 }')"
check_eq "resume of a running provider says so" "provider keliweb was not paused by an operator" \
    "$("$CTL" -c "$T/w1.conf" provider resume keliweb)"

echo "-- a timed pause ends by itself"
"$CTL" -c "$T/w1.conf" provider pause keliweb --for 2s > /dev/null
t0=$(now_ms)
kw_jobs 20 timed 5000
check "the 20 end once the pause is over" until_ended timed 20 15
first=$(curl -s "$SANDBOX/_sandbox/stats" | jq -r '[.targets | to_entries[] | select(.key | test("^keliweb:50[0-9][0-9]$")) | .value.times_ms[]] | min')
echo "   first call $((first - t0)) ms after a 2 s pause began"
check "no call before the 2 s were over" test $((first - t0)) -ge 1900

echo "-- errors"
"$CTL" -c "$T/w1.conf" provider pause kelliweb > /dev/null 2> "$T/err.txt"; rc=$?
check_eq "an unknown instance: exit 2, did you mean" "2 yes" "$rc $(grep -q "did you mean keliweb" "$T/err.txt" && echo yes)"
"$CTL" -c "$T/w1.conf" provider pause keliweb --for soon > /dev/null 2> "$T/err.txt"; rc=$?
check_eq "a bad duration: exit 2, named" "2 yes" "$rc $(grep -q "bad duration 'soon'" "$T/err.txt" && echo yes)"
check_eq "the timed pause is over: running" running \
    "$("$CTL" -c "$T/w1.conf" --json provider list | jq -r '.[] | select(.provider == "keliweb") | .state')"

kill "$D1" "$D2"; wait "$D1" "$D2" 2>/dev/null
finish
