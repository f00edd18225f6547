#!/usr/bin/env bash
# test_limits.sh - [worker] concurrency bounds the requests in flight across
# all providers, although the worker holds more jobs than that (fetched and
# claimed ahead, waiting for a slot); each provider's own concurrency bounds
# its requests.  Measured at the sandbox: with a fixed latency L, the
# requests in flight at an arrival are the arrivals in the L before it.
. "$(dirname "$0")/lib.sh"

L=300
start_redis
start_sandbox --quiet --latency "$L"
# worker 6; each provider 6 (together 18): only the worker limit can hold 6
write_conf "$T/c.conf" 'concurrency = 6' 'concurrency = 6'
enqueue_many 60 lim
start_daemon "$T/c.conf"
check "60 outcomes" wait_results 60 30

# max_in_window: the most arrival times (ms, one per line) within L - 20 ms
max_in_window() {
    sort -n | awk -v w=$((L - 20)) '{ t[NR] = $1 } END {
        m = 0; j = 1
        for (i = 1; i <= NR; i++) { while (t[i] - t[j] >= w) j++; if (i - j + 1 > m) m = i - j + 1 }
        print m }'
}
curl -s "$SANDBOX/_sandbox/stats" | jq -r '.targets[].times_ms[]' > "$T/times.txt"
check_eq "every job called once" 60 "$(wc -l < "$T/times.txt")"
peak=$(max_in_window < "$T/times.txt")
echo "   (most requests in flight at once: $peak)"
check "never more than [worker] concurrency in flight" [ "$peak" -le 6 ]
check "the limit is used" [ "$peak" -ge 5 ]
kill "$DAEMON_PID"; wait "$DAEMON_PID" 2> /dev/null

# one provider's own limit below the worker's
rcli FLUSHALL > /dev/null
sandbox_post reset '{}'
sandbox_post latency "{\"ms\":$L}"
write_conf "$T/c2.conf" 'concurrency = 20' 'concurrency = 3'
enqueue_many 30 one
start_daemon "$T/c2.conf"
check "30 outcomes" wait_results 30 30
curl -s "$SANDBOX/_sandbox/stats" | jq -r '.targets | to_entries[] | select(.key | startswith("keliweb:")) | .value.times_ms[]' > "$T/kw.txt"
peak=$(max_in_window < "$T/kw.txt")
echo "   (most Keliweb requests in flight at once: $peak)"
check "a provider's concurrency bounds its requests" [ "$peak" -le 3 ]
check_eq "no job left behind" 0 "$(rraw HLEN '{cq}:inflight:w1')"
kill "$DAEMON_PID"; wait "$DAEMON_PID" 2> /dev/null

# SIGHUP: a provider's concurrency changes in a running daemon; a change
# that needs a restart is refused with its key named, and the daemon runs on
rcli FLUSHALL > /dev/null
sandbox_post reset '{}'
sandbox_post latency "{\"ms\":$L}"
write_conf "$T/c3.conf" 'concurrency = 20' 'concurrency = 4'
start_daemon "$T/c3.conf" "$T/reload.log"
write_conf "$T/c3.conf" 'concurrency = 20' 'concurrency = 1'
kill -HUP "$DAEMON_PID"
check "config_reloaded logged" wait_for grep -q 'event=config_reloaded' "$T/reload.log"
enqueue_many 18 rl
check "18 outcomes" wait_results 18 30
curl -s "$SANDBOX/_sandbox/stats" | jq -r '.targets | to_entries[] | select(.key | startswith("keliweb:")) | .value.times_ms[]' > "$T/kw3.txt"
peak=$(max_in_window < "$T/kw3.txt")
echo "   (most Keliweb requests in flight at once after the reload: $peak)"
check "the reloaded concurrency bounds the requests" [ "$peak" -le 1 ]
sed -i "s/^port = $REDIS_PORT/port = 1/" "$T/c3.conf"
kill -HUP "$DAEMON_PID"
check "a port change is refused" wait_for grep -q 'event=config_reload_refused.*redis. port' "$T/reload.log"
check "the daemon runs on" kill -0 "$DAEMON_PID"
enqueue_many 3 after 100
check "jobs still flow after a refused reload" wait_results 21 15
kill "$DAEMON_PID"; wait "$DAEMON_PID" 2> /dev/null

finish
