#!/usr/bin/env bash
# test_service.sh - cancelqd as systemd runs it: sd_notify messages in order
# (READY=1 once Redis answers and tokens are loaded, STATUS=, WATCHDOG=1,
# STOPPING=1), tokens from $CREDENTIALS_DIRECTORY, and a /metrics scrape
# whose counters match the outcomes on the stream.
. "$(dirname "$0")/lib.sh"
P="{cq}"

start_redis
start_sandbox
write_conf "$T/cq.conf" "metrics_listen = 127.0.0.1:$(free_port)" ""
# tokens by bare name, found only in the credentials directory
mkdir -p "$T/creds"
for p in intronis activeplatform keliweb; do
    mv "$T/$p.token" "$T/creds/$p.token"
    sed -i "s|token_file = $T/$p.token|token_file = $p.token|" "$T/cq.conf"
done
METRICS=$(sed -n 's/^metrics_listen = //p' "$T/cq.conf")

# a datagram socket standing in for systemd's notify socket
python3 - "$T/notify.sock" "$T/notify.log" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as out:
    while True:
        msg = s.recv(4096).decode(errors="replace")
        out.write(msg.replace("\n", " ").strip() + "\n")
        if "STOPPING=1" in msg:
            break
PY
PIDS+=($!)
wait_for test -S "$T/notify.sock"

NOTIFY_SOCKET="$T/notify.sock" WATCHDOG_USEC=400000 CREDENTIALS_DIRECTORY="$T/creds" \
    start_daemon "$T/cq.conf"
check "READY=1 sent" wait_for grep -q '^READY=1' "$T/notify.log"
sandbox_post state '{"target":"keliweb:2","state":"missing"}' # one failure among them
enqueue_many 30 s
check "30 jobs end" wait_results 30
sleep 1.2
curl -s "http://$METRICS/metrics" > "$T/metrics.txt"
body=$(cat "$T/metrics.txt")
check "metrics served" test -n "$body"
succ=$(rraw XRANGE "$P:results" - + | awk 'prev == "status" && $0 == "succeeded" { n++ } { prev = $0 } END { print n + 0 }')
fail=$(rraw XRANGE "$P:results" - + | awk 'prev == "status" && $0 == "failed" { n++ } { prev = $0 } END { print n + 0 }')
msucc=$(echo "$body" | awk '/^cancelq_jobs_total\{.*status="succeeded"/ { s += $NF } END { print s + 0 }')
mfail=$(echo "$body" | awk '/^cancelq_jobs_total\{.*status="failed"/ { s += $NF } END { print s + 0 }')
check_eq "metrics: succeeded matches the stream" "$succ" "$msucc"
check_eq "metrics: failed matches the stream" "$fail" "$mfail"
check_eq "one failure" 1 "$fail"
check "duration histogram counts calls" grep -q '^cancelq_http_request_duration_seconds_count{provider="keliweb"} 10' "$T/metrics.txt"
check "build info" grep -q '^cancelq_build_info{version=' "$T/metrics.txt"
check_eq "queue depth polled" 0 "$(echo "$body" | awk '/^cancelq_queue_jobs / { print $2 }')"
kill -HUP "$DAEMON_PID"
check "SIGHUP re-reads tokens" wait_for grep -q 'event=tokens_reloaded' "$T/cancelqd.log"
kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID"; rc=$?
check_eq "exit 0 on SIGTERM" 0 "$rc"
check "STOPPING=1 sent" wait_for grep -q '^STOPPING=1' "$T/notify.log"
order=$(awk '/^READY=1/ && !r { print "READY"; r = 1 } /^STATUS=/ && !s { print "STATUS"; s = 1 }
             /^WATCHDOG=1/ && !w { print "WATCHDOG"; w = 1 } /^STOPPING=1/ { print "STOPPING" }' "$T/notify.log" | paste -sd' ')
check_eq "notify order" "READY STATUS WATCHDOG STOPPING" "$order"
echo "   notify messages: $(sort "$T/notify.log" | uniq -c | sed 's/^ *//' | paste -sd';' | cut -c1-300)"
check "STATUS warns that this Redis (no AOF) can lose acknowledged jobs" grep -q '^STATUS=.*WARNING appendonly is off' "$T/notify.log"
check "and so does the log" grep -q 'event=redis_durability' "$T/cancelqd.log"
check "no token in the log" bash -c "! grep -q 'sandbox-.*-token' '$T/cancelqd.log'"
finish
