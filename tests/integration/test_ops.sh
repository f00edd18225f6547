#!/usr/bin/env bash
# test_ops.sh - the monitoring and live-view commands against a private
# redis-server, the sandbox and cancelqd:
#   cancelqctl check: every exit status (3 UNKNOWN, 2 CRITICAL, 0 OK,
#     1 WARNING for each condition on its own), the one summary line, the
#     performance data and --json;
#   cancelqctl top: run in tmux with jobs flowing, the screen read back
#     with capture-pane and its numbers compared with what Redis holds,
#     redrawn as more jobs end, then `q` quits it; and the plain snapshot
#     when stdout is no terminal.
. "$(dirname "$0")/lib.sh"

CTL="$BIN/cancelqctl"
for b in cancelqctl cancelqd cancelq-sandbox; do
    [ -x "$BIN/$b" ] || { echo "SKIP: $BIN/$b not built"; exit 1; }
done

start_redis
start_sandbox
write_conf "$T/cq.conf" "results_maxlen = 1000" \
    "breaker_failures = 2\nbreaker_cooldown = 1m"
P="{cq}"
# rc CMD...: print CMD's exit status (its output goes to $T/out, $T/err).
rc() { "$@" > "$T/out" 2> "$T/err"; echo $?; }
chk() { rc "$CTL" -c "$T/cq.conf" check "$@"; }
line() { head -1 "$T/out"; }
has() { grep -q -- "$1" "$T/out"; }

echo "-- check: UNKNOWN (3)"
check_eq "bad option: 3" 3 "$(chk --bogus)"
check_eq "bad --since: 3" 3 "$(chk --since soon)"
check_eq "missing config: 3" 3 "$(rc "$CTL" -c "$T/nope.conf" check)"
check "...CANCELQ UNKNOWN, naming the file" has '^CANCELQ UNKNOWN - .*nope.conf'

echo "-- check: CRITICAL (2)"
sed "s/^port = .*/port = $(free_port)/" "$T/cq.conf" > "$T/down.conf"
check_eq "redis down: 2" 2 "$(rc "$CTL" -c "$T/down.conf" check)"
check "...one line naming the server" test "$(wc -l < "$T/out")" -eq 1 -a -n "$(grep "^CANCELQ CRITICAL - redis 127.0.0.1:[0-9]*: Connection refused$" "$T/out")"
check_eq "...nothing on stderr" 0 "$(wc -c < "$T/err")"
sed "s/^port = .*/port = $SANDBOX_PORT/" "$T/cq.conf" > "$T/http.conf"
check_eq "a port that is not Redis: 2" 2 "$(rc "$CTL" -c "$T/http.conf" check)"
check "...says it does not answer as Redis" has "^CANCELQ CRITICAL - redis 127.0.0.1:$SANDBOX_PORT does not answer as Redis"
check_eq "no worker yet: 2" 2 "$(chk)"
check "...no live worker, with performance data" has '^CANCELQ CRITICAL - no live worker | jobs=0 .*workers_live=0'

echo "-- check: OK (0)"
start_daemon "$T/cq.conf"
wait_for "$CTL" -c "$T/cq.conf" check
check_eq "a live worker, nothing wrong: 0" 0 "$(chk)"
check "...CANCELQ OK with the counts" has '^CANCELQ OK - 1 live worker(s); jobs 0, delayed 0, dead 0 (0 new in 5m00s) | '
check_eq "--json: OK, exit 0, no problems" "OK 0 0 1" \
    "$("$CTL" -c "$T/cq.conf" check --json | jq -r '"\(.status) \(.exit) \(.problems | length) \(.metrics.workers_live)"')"
check_eq "global --json too" OK "$("$CTL" --json -c "$T/cq.conf" check | jq -r .status)"

echo "-- check: WARNING (1), each condition"
enqueue 'this is not json'
wait_results 1 10
check_eq "a new dead letter: 1" 1 "$(chk)"
check "...says how many, in what window" has '^CANCELQ WARNING - 1 dead letter(s) in the last 5m00s (more than 0) | .*dead_new=1'
check_eq "--dead-warn 1: 0" 0 "$(chk --dead-warn 1)"
sleep 1.2
check_eq "--since 1s, a second later: 0" 0 "$(chk --since 1s)"
"$CTL" -c "$T/cq.conf" dlq purge --yes > /dev/null

rraw HSET "$P:inflight:ghost" h1 '{"id":"x"}' > /dev/null
check_eq "an orphaned inflight hash: 1" 1 "$(chk)"
check "...names it" has "^CANCELQ WARNING - 1 orphaned inflight hash(es) holding 1 job(s), some with no $P:holders entry"
rraw DEL "$P:inflight:ghost" > /dev/null
check_eq "gone: 0" 0 "$(chk)"

rraw HSET "$P:pause:intronis" until 0 reason maintenance by ops > /dev/null
check_eq "a paused provider: 1" 1 "$(chk)"
check "...until resumed, why and by whom" has '^CANCELQ WARNING - provider intronis paused until resumed, reason: maintenance, by ops |.* paused=1'
rraw HSET "$P:pause:intronis" until "$(( $(rraw TIME | head -1) * 1000 + 600000 ))" > /dev/null
check_eq "a timed pause: 1" 1 "$(chk)"
check "...until when" has 'provider intronis paused until 20[0-9-]*T[0-9:.]*Z (9m5[0-9]s from now)'
rraw DEL "$P:pause:intronis" > /dev/null
check_eq "resumed: 0" 0 "$(chk)"

rraw XGROUP CREATE "$P:results" billing 0 > /dev/null
check_eq "a consumer group far from results_maxlen: 0" 0 "$(chk)"
check_eq "--lag-warn 999 (of 1000): 1" 1 "$(chk --lag-warn 999)"
check "...the group, its backlog and the limit" has "^CANCELQ WARNING - consumer group 'billing' of $P:results is 1 entries behind (1 undelivered, 0 pending), within 999 of results_maxlen 1000"
check_eq "...results_backlog_max in --json" 1 "$("$CTL" -c "$T/cq.conf" check --json --lag-warn 999 | jq .metrics.results_backlog_max)"
for i in 1 2 3; do rraw XADD "$P:results" '*' id "t-$i" status succeeded > /dev/null; done
rraw XTRIM "$P:results" MAXLEN 1 > /dev/null
check_eq "entries trimmed before delivery: 1" 1 "$(chk)"
check "...says the group lost entries" has "consumer group 'billing' of $P:results lost entries to trimming"
rraw XGROUP DESTROY "$P:results" billing > /dev/null
check_eq "no group: 0" 0 "$(chk)"
rraw DEL "$P:results" > /dev/null # the hand-made entries are no outcomes (schema_check)

curl -s -X POST -d '{"provider":"activeplatform","kind":"cancel","status":503}' "$SANDBOX/_sandbox/outage" > /dev/null
enqueue '{"id":"b-1","provider":"activeplatform","action":"delete_subscription","params":{"reseller_id":1,"subscription_id":1}}' \
    '{"id":"b-2","provider":"activeplatform","action":"delete_subscription","params":{"reseller_id":1,"subscription_id":2}}'
breaker_open() { [ -n "$(rraw HGET "$P:limit:activeplatform" open_until)" ]; }
check "the breaker opens ({P}:limit:activeplatform)" wait_for breaker_open
check_eq "an open breaker: 1" 1 "$(chk)"
check "...names the provider and who opened it" has '^CANCELQ WARNING - circuit breaker of activeplatform is open ([0-9ms]*s more, opened by [^)]*) |.* breakers_open=1'
curl -s -X POST -d '{"provider":"*","kind":"*","clear":true}' "$SANDBOX/_sandbox/outage" > /dev/null
# the cooldown over, not yet closed by a call: half-open
rraw HSET "$P:limit:activeplatform" open_until "$(( $(rraw TIME | head -1) * 1000 - 1000 ))" > /dev/null
check_eq "a half-open breaker: 1" 1 "$(chk)"
check "...says so" has 'circuit breaker of activeplatform is half-open'
rraw DEL "$P:limit:activeplatform" > /dev/null
rraw HSET "$P:limit:keliweb" pause_until "$(( $(rraw TIME | head -1) * 1000 + 60000 ))" > /dev/null
check_eq "a 429 pause is no problem: 0" 0 "$(chk)"
check_eq "...only a note" 1 "$("$CTL" -c "$T/cq.conf" check --json | jq '[.notes[] | select(test("keliweb is held back by a 429"))] | length')"
rraw DEL "$P:limit:keliweb" > /dev/null

echo "-- check: the worst wins"
rraw HSET "$P:pause:keliweb" until 0 > /dev/null
kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID"
check_eq "no worker and warnings: 2" 2 "$(chk)"
check "...CRITICAL first, then the warnings" has '^CANCELQ CRITICAL - no live worker; provider keliweb paused until resumed |'
check_eq "--json lists each problem with its severity" "CRITICAL:workers WARNING:pause" \
    "$("$CTL" -c "$T/cq.conf" check --json | jq -r '[.problems[] | "\(.severity):\(.check)"] | join(" ")')"
rraw DEL "$P:pause:keliweb" > /dev/null

echo "-- top"
PREFIX=top
WORKER_ID=w-top write_conf "$T/top.conf"
P="{top}"
start_daemon "$T/top.conf"
SOCK="$T/tmux.sock"
tm() { tmux -S "$SOCK" -f /dev/null "$@"; }
tm new-session -d -s top -x 150 -y 50 "'$CTL' -c '$T/top.conf' top; echo \$? > '$T/top.rc'"
PIDS+=("$(tm display-message -p -t top '#{pid}')")
screen() { tm capture-pane -p -t top; }
# on_screen REGEX: wait up to 10 s for a line matching REGEX (grep -E)
on_screen() {
    local i
    for i in $(seq 1 100); do
        screen > "$T/screen.txt" 2> /dev/null
        grep -qE -- "$1" "$T/screen.txt" && return 0
        sleep 0.1
    done
    echo "     (screen was:)"; sed 's/^/     | /' "$T/screen.txt"
    return 1
}
check "top draws its screen" on_screen '^cancelq top - \{top\} on redis 127\.0\.0\.1:[0-9]+ - .*\(q quits\)$'
enqueue 'not json 1' 'not json 2'
rraw HSET "$P:pause:intronis" until 0 reason maintenance by ops > /dev/null
jobs=()
for i in $(seq 1 30); do
    jobs+=("{\"id\":\"top-$i\",\"provider\":\"keliweb\",\"action\":\"cancel_service\",\"params\":{\"serviceid\":$((900 + i))}}")
done
enqueue "${jobs[@]}"
check "32 jobs end" wait_results 32 30
check "keliweb succeeded: 30 in the last minute" on_screen '^ +keliweb +succeeded +[0-9]+\.[0-9] +30$'
rate=$(sed -nE 's/^ +keliweb +succeeded +([0-9]+\.[0-9]) +30$/\1/p' "$T/screen.txt")
check "a rate over the last 10 s (${rate}/s) for the 30 jobs of the last seconds" \
    test "$(awk -v r="$rate" 'BEGIN { print (r > 0 && r <= 3.0) ? 1 : 0 }')" -eq 1
check "queue depths and the dead letters" on_screen '^QUEUE   jobs 0   retry 0   delayed 0   dead 2   inflight 0   results 32$'
check "the worker, live, nothing in flight" on_screen '^  w-top +[0-9.]+s ago +live +0$'
check "one live worker" on_screen '^WORKERS 1 live, 0 dead, 0 orphaned inflight hashes$'
check "the pause" on_screen '^  intronis paused until resumed: maintenance \(by ops\)$'
check "no breaker open" on_screen '^LIMITS  no breaker open, no 429 pause$'
check "the two invalid jobs" on_screen '^ +\? +invalid +[0-9]+\.[0-9] +2$'
check "all: 32" on_screen '^ +all +[0-9]+\.[0-9] +32$'
check "the latest outcomes" on_screen '^  [0-9:.]{12} succeeded +keliweb/cancel_service top-[0-9]+ http=200 [0-9]+ms$'
enqueue '{"id":"top-31","provider":"keliweb","action":"cancel_service","params":{"serviceid":931}}'
check "redrawn: a 31st keliweb job" on_screen '^ +keliweb +succeeded +[0-9]+\.[0-9] +31$'
check "...and it is the latest outcome" on_screen '^  [0-9:.]{12} succeeded +keliweb/cancel_service top-31 '
rraw HSET "$P:limit:keliweb" open_until "$(( $(rraw TIME | head -1) * 1000 + 300000 ))" opened_by w-other > /dev/null
check "an open breaker shows" on_screen '^  keliweb breaker open \(4m5[0-9]s more, opened by w-other\)$'
rraw DEL "$P:limit:keliweb" > /dev/null
no_esc_left() { ! grep -q $'\e' "$T/screen.txt"; }
check "no stray escape sequence on the screen" no_esc_left
tm send-keys -t top q
check "q quits" wait_for test -s "$T/top.rc"
check_eq "...with exit 0" 0 "$(cat "$T/top.rc" 2> /dev/null)"
check "...and the pane is gone" bash -c "! tmux -S '$SOCK' has-session -t top 2> /dev/null"
tm kill-server 2> /dev/null

"$CTL" -c "$T/top.conf" top > "$T/snap.txt" 2> "$T/err"; r=$?
check_eq "stdout not a terminal: one snapshot, exit 0" 0 "$r"
check "...with the numbers" grep -qE '^ +keliweb +succeeded +[0-9]+\.[0-9] +31$' "$T/snap.txt"
check "...plain text" bash -c "! grep -q $'\\e' '$T/snap.txt'"
check_eq "--once gives the same sections" "$(grep -cE '^(QUEUE|WORKERS|PAUSES|OUTCOMES|LAST)' "$T/snap.txt")" \
    "$("$CTL" -c "$T/top.conf" top --once | grep -cE '^(QUEUE|WORKERS|PAUSES|OUTCOMES|LAST)')"
check_eq "redis down: exit 1" 1 "$(rc "$CTL" -c "$T/down.conf" top --once)"

finish
