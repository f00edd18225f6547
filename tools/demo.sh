#!/usr/bin/env bash
# demo.sh - cancelq on a private default: its own redis-server in a temp dir,
# the provider sandbox, cancelqd, a handful of jobs of each provider (some
# retry, some end in the dead-letter queue), outcomes printed as they arrive.
# Everything started here is stopped at the end.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN="$ROOT/${BUILD:-build}"
T=$(mktemp -d "${TMPDIR:-/tmp}/cancelq-demo.XXXXXX")
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$T"
    echo "demo: everything stopped, $T removed"
}
trap cleanup EXIT
port() { local p; while :; do p=$((10000 + RANDOM % 22000)); (echo > /dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo $p; return; }; done; }
RP=$(port); SP=$(port)
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "starting a private redis-server on 127.0.0.1:$RP (data in $T)"
redis-server --port "$RP" --bind 127.0.0.1 --dir "$T" --save '' --appendonly yes \
    --appendfsync always --logfile "$T/redis.log" & PIDS+=($!)
say "starting cancelq-sandbox on 127.0.0.1:$SP (fake Intronis, ActivePlatform, Keliweb)"
"$BIN/cancelq-sandbox" --listen "127.0.0.1:$SP" --quiet > "$T/sandbox.log" 2>&1 & PIDS+=($!)
for i in $(seq 50); do redis-cli -p "$RP" ping >/dev/null 2>&1 && curl -sf "http://127.0.0.1:$SP/_sandbox/stats" >/dev/null && break; sleep 0.1; done

for p in intronis activeplatform keliweb; do echo "sandbox-$p-token" > "$T/$p.token"; done
cat > "$T/cancelq.conf" <<CONF
[redis]
port = $RP
prefix = demo
[worker]
id = demo-worker
concurrency = 32
max_attempts = 3
backoff_base = 200ms
backoff_max = 1s
CONF
for p in intronis activeplatform keliweb; do
    printf '[provider %s]\nbase_url = http://127.0.0.1:%s\nallow_insecure_http = yes\ntoken_file = %s/%s.token\ntimeout = 2s\n' "$p" "$SP" "$T" "$p" >> "$T/cancelq.conf"
done
say "config ($T/cancelq.conf) checks out:"
"$BIN/cancelqd" -c "$T/cancelq.conf" --check-config | sed 's/^/   /'

say "starting cancelqd (its log: $T/cancelqd.log)"
"$BIN/cancelqd" -c "$T/cancelq.conf" 2> "$T/cancelqd.log" & PIDS+=($!)

S="http://127.0.0.1:$SP/_sandbox"
post() { curl -s -X POST -d "$2" "$S/$1" > /dev/null; }
post script '{"target":"keliweb:502","responses":[{"status":503},{"status":200,"body":"{\"result\":\"success\",\"serviceid\":\"502\",\"userid\":\"1\"}"}]}'
post script '{"target":"intronis:flaky","responses":[{"status":429,"retry_after":"1"}]}'
post script '{"target":"activeplatform:1/999","responses":[{"status":500},{"status":500},{"status":500}]}'
post state '{"target":"activeplatform:1/777","state":"cancelled"}'
post state '{"target":"keliweb:404","state":"missing"}'

JOBS=(
 '{"id":"inv-1001","provider":"intronis","action":"cancel_partner","params":{"username":"acme corp/eu","reason_id":1,"reason_note":""},"meta":{"customer":"acme"}}'
 '{"id":"inv-1002","provider":"activeplatform","action":"stop_subscription","params":{"reseller_id":1,"subscription_id":3007255,"reason":"customer request","comment":"ticket 88"}}'
 '{"id":"inv-1003","provider":"activeplatform","action":"delete_subscription","params":{"reseller_id":1,"subscription_id":777}}'
 '{"id":"inv-1004","provider":"keliweb","action":"cancel_service","params":{"serviceid":501,"type":"End of Billing Period"}}'
 '{"id":"inv-1005","provider":"keliweb","action":"cancel_service","params":{"serviceid":502}}'
 '{"id":"inv-1006","provider":"intronis","action":"cancel_partner","params":{"username":"flaky","reason_id":2,"reason_note":"moved"}}'
 '{"id":"inv-1007","provider":"keliweb","action":"cancel_service","params":{"serviceid":404}}'
 '{"id":"inv-1008","provider":"activeplatform","action":"delete_subscription","params":{"reseller_id":1,"subscription_id":999}}'
 '{"id":"inv-1009","idempotency_key":"acme:sub:3007255","provider":"keliweb","action":"cancel_service","params":{"serviceid":601}}'
 '{"id":"inv-1010","idempotency_key":"acme:sub:3007255","provider":"keliweb","action":"cancel_service","params":{"serviceid":601}}'
 '{"id":"inv-1011","provider":"intronis","action":"cancel_partner","params":{"username":"x","reason_id":3.5,"reason_note":""}}'
 'not even json'
)
say "billing pushes ${#JOBS[@]} jobs: LPUSH {demo}:jobs '<json>'"
for j in "${JOBS[@]}"; do
    redis-cli -p "$RP" LPUSH '{demo}:jobs' "$j" > /dev/null
    echo "   $j" | cut -c1-150
    sleep 0.2 # spaced so the two jobs with one idempotency key meet one after the other
done

say "outcomes as they arrive on the stream {demo}:results"
printf '   %-10s %-15s %-20s %-13s %-8s %-5s %s\n' ID PROVIDER ACTION STATUS ATTEMPTS HTTP MESSAGE
last='0-0'; seen=0; deadline=$((SECONDS + 30))
while [ "$seen" -lt "${#JOBS[@]}" ] && [ $SECONDS -lt $deadline ]; do
    out=$(redis-cli -p "$RP" --raw XREAD COUNT 100 BLOCK 1000 STREAMS '{demo}:results' "$last" || true)
    [ -z "$out" ] && continue
    while IFS=$'\x1f' read -r eid id prov act st att http msg; do
        [ -z "$eid" ] && continue
        last=$eid; seen=$((seen + 1))
        printf '   %-10s %-15s %-20s %-13s %-8s %-5s %s\n' "${id:--}" "${prov:--}" "${act:--}" "$st" "$att" "$http" "${msg:0:60}"
    done < <(echo "$out" | awk '
        NR > 1 && /^[0-9]+-[0-9]+$/ { if (e) print_it(); e = $0; delete f; k = ""; next }
        e { if (k == "") k = $0; else { f[k] = $0; k = "" } }
        function print_it() { printf "%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\n", e, f["id"], f["provider"], f["action"], f["status"], f["attempts"], f["http_status"], f["message"] }
        END { if (e) print_it() }')
done

say "dead-letter queue {demo}:dead ($(redis-cli -p "$RP" LLEN '{demo}:dead') entries)"
redis-cli -p "$RP" --raw LRANGE '{demo}:dead' 0 -1 | jq -c '{status, error, attempts, id: (.job.id? // .job)}' | sed 's/^/   /'
say "what the sandbox saw"
curl -s "$S/stats" | jq -c '{requests, rejected, by_status}' | sed 's/^/   /'
say "a few lines of the daemon's log (logfmt, one event a line)"
grep -E 'job_done|job_retry|job_status_check' "$T/cancelqd.log" | head -8 | cut -c1-200 | sed 's/^/   /'
say "stopping cancelqd with SIGTERM"
kill -TERM "${PIDS[2]}"; wait "${PIDS[2]}" && echo "   cancelqd exited 0"
