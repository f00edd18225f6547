#!/usr/bin/env bash
# test_pipeline.sh - cancelqd end to end against a real redis-server and the
# sandbox: every outcome status, dead letters, idempotency, retries,
# Retry-After, timeouts with a status check.
. "$(dirname "$0")/lib.sh"

start_redis
start_sandbox
P="{cq}"
write_conf "$T/cq.conf" "max_attempts = 3" ""
start_daemon "$T/cq.conf"

now_ms() { date +%s%3N; }

# --- one job per provider succeeds -----------------------------------------
enqueue '{"id":"ok-i","provider":"intronis","action":"cancel_partner","params":{"username":"a b/c","reason_id":1,"reason_note":""},"meta":{"invoice":42}}' \
        '{"id":"ok-ad","provider":"activeplatform","action":"delete_subscription","params":{"reseller_id":1,"subscription_id":3007255}}' \
        '{"id":"ok-as","provider":"activeplatform","action":"stop_subscription","params":{"reseller_id":1,"subscription_id":3007256,"reason":"r","comment":"c"}}' \
        '{"id":"ok-k","provider":"keliweb","action":"cancel_service","params":{"serviceid":1,"type":"Immediate"}}'
check "four jobs end" wait_results 4
for id in ok-i ok-ad ok-as ok-k; do
    check_eq "$id succeeded" succeeded "$(outcome $id status)"
done
check_eq "intronis answered 303" 303 "$(outcome ok-i http_status)"
check_eq "meta echoed" '{"invoice":42}' "$(outcome ok-i meta)"
check_eq "username with space and slash reached the sandbox once" 1 "$(target_calls 'intronis:a%20b%2Fc')"
check_eq "derived idempotency key" "activeplatform:delete_subscription:1/3007255" "$(outcome ok-ad idempotency_key)"

# --- invalid jobs go to the dead-letter queue, named ------------------------
enqueue 'this is not json' '{"id":"inv-1","provider":"intronis","action":"cancel_partner","params":{"username":"x","reason_id":1.5,"reason_note":""}}' \
        '{"id":"inv-2","provider":"nope","action":"x","params":{}}'
check "invalid jobs end" wait_results 7
check_eq "bad integer is invalid" invalid "$(outcome inv-1 status)"
check "message names the field" bash -c "echo '$(outcome inv-1 message)' | grep -q 'params.reason_id'"
check_eq "unknown provider is invalid" invalid "$(outcome inv-2 status)"
check_eq "three dead letters" 3 "$(rraw LLEN "$P:dead")"
check "raw text kept in dead letter" bash -c "redis-cli --raw -p $REDIS_PORT LRANGE '$P:dead' 0 -1 | jq -r 'select(.job == \"this is not json\") | .status' | grep -qx invalid"

# --- idempotency: duplicate and conflict ------------------------------------
enqueue '{"id":"dup-1","idempotency_key":"acme:1","provider":"keliweb","action":"cancel_service","params":{"serviceid":77}}'
check "first of the key ends" wait_results 8
enqueue '{"id":"dup-2","idempotency_key":"acme:1","provider":"keliweb","action":"cancel_service","params":{"serviceid":77}}'
check "second of the key ends" wait_results 9
check_eq "first succeeded" succeeded "$(outcome dup-1 status)"
check_eq "second is duplicate" duplicate "$(outcome dup-2 status)"
check_eq "duplicate names the original" dup-1 "$(outcome dup-2 original_id)"
check_eq "one provider call for the key" 1 "$(target_calls keliweb:77)"
enqueue '{"id":"dup-3","idempotency_key":"acme:1","provider":"keliweb","action":"cancel_service","params":{"serviceid":78}}'
check "conflicting job ends" wait_results 10
check_eq "same key, other params: conflict" conflict "$(outcome dup-3 status)"
check_eq "no call for the conflicting job" 0 "$(target_calls keliweb:78)"

# --- already done, failed ---------------------------------------------------
sandbox_post state '{"target":"activeplatform:2/10","state":"cancelled"}'
sandbox_post state '{"target":"keliweb:90","state":"cancelled"}'
sandbox_post state '{"target":"intronis:gone","state":"missing"}'
sandbox_post state '{"target":"keliweb:91","state":"missing"}'
enqueue '{"id":"ad-ap","provider":"activeplatform","action":"stop_subscription","params":{"reseller_id":2,"subscription_id":10,"reason":"r","comment":"c"}}' \
        '{"id":"ad-k","provider":"keliweb","action":"cancel_service","params":{"serviceid":90}}' \
        '{"id":"f-i","provider":"intronis","action":"cancel_partner","params":{"username":"gone","reason_id":1,"reason_note":""}}' \
        '{"id":"f-k","provider":"keliweb","action":"cancel_service","params":{"serviceid":91}}'
check "four more end" wait_results 14
check_eq "AP 403 + status check: already_done" already_done "$(outcome ad-ap status)"
check_eq "Keliweb existing request: already_done" already_done "$(outcome ad-k status)"
check_eq "Intronis unknown partner: failed" failed "$(outcome f-i status)"
check_eq "Keliweb unknown service: failed" failed "$(outcome f-k status)"
check_eq "Keliweb failure code" service_not_found "$(outcome f-k error)"

# --- retries: 500 then success; exhausted; expired --------------------------
sandbox_post script '{"target":"keliweb:100","responses":[{"status":500}]}'
sandbox_post script '{"target":"keliweb:101","responses":[{"status":503},{"status":503},{"status":503},{"status":503}]}'
enqueue '{"id":"r-ok","provider":"keliweb","action":"cancel_service","params":{"serviceid":100}}' \
        '{"id":"r-ex","provider":"keliweb","action":"cancel_service","params":{"serviceid":101}}' \
        '{"id":"r-dl","provider":"keliweb","action":"cancel_service","params":{"serviceid":102},"deadline":"2020-01-01T00:00:00Z"}'
check "retry jobs end" wait_results 17
check_eq "500 then success" succeeded "$(outcome r-ok status)"
check_eq "took two attempts" 2 "$(outcome r-ok attempts)"
check_eq "503 x4 with max_attempts 3: exhausted" exhausted "$(outcome r-ex status)"
check_eq "exhausted after 3 calls" 3 "$(target_calls keliweb:101)"
check_eq "past deadline: expired" expired "$(outcome r-dl status)"
check_eq "expired made no call" 0 "$(target_calls keliweb:102)"
check_eq "dead letter keeps the attempt history" "3 3 http_503" "$(rraw LRANGE "$P:dead" 0 -1 | jq -rs '[.[] | select(.status? == "exhausted")][0] | "\(.history | length) \(.attempts) \(.history[2].error)"')"

# --- 429 with Retry-After: 1 is honoured --------------------------------------
sandbox_post script '{"target":"activeplatform:5/5","responses":[{"status":429,"retry_after":"1"}]}'
enqueue '{"id":"ra","provider":"activeplatform","action":"delete_subscription","params":{"reseller_id":5,"subscription_id":5}}'
check "429 job ends" wait_results 18
check_eq "429 then success" succeeded "$(outcome ra status)"
gap=$(curl -s "$SANDBOX/_sandbox/target?name=activeplatform:5/5" | jq '.times_ms[1] - .times_ms[0]')
check "second call waited Retry-After (gap ${gap} ms >= 1000)" test "${gap:-0}" -ge 1000

# --- a hanging provider times out; the retry checks status first ----------------
sandbox_post script '{"target":"intronis:slow","responses":[{"hang_ms":3000}]}'
enqueue '{"id":"hang","provider":"intronis","action":"cancel_partner","params":{"username":"slow","reason_id":1,"reason_note":""}}'
check "hanging job ends" wait_results 19 30
check_eq "timed out, then the status check found it done" already_done "$(outcome hang status)"
check_eq "no second cancellation call" 1 "$(target_calls intronis:slow)"
check_eq "status was looked up" 1 "$(curl -s "$SANDBOX/_sandbox/target?name=intronis:slow" | jq -r '.check // 0')"

# --- nothing left behind ------------------------------------------------------
check_eq "queue empty" 0 "$(queue_len)"
check_eq "delayed empty" 0 "$(rraw ZCARD "$P:delayed")"
check_eq "inflight empty" 0 "$(rraw HLEN "$P:inflight:w1")"
check "no token in logs, outcomes or dead letters" bash -c "! grep -rq sandbox-.*-token '$T/cancelqd.log' && ! redis-cli --raw -p $REDIS_PORT XRANGE '$P:results' - + | grep -q sandbox- && ! redis-cli --raw -p $REDIS_PORT LRANGE '$P:dead' 0 -1 | grep -q sandbox-"

# --- SIGTERM: exits 0, heartbeat removed --------------------------------------
kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID"; rc=$?
check_eq "SIGTERM exit code" 0 "$rc"
check_eq "heartbeat removed on clean stop" "" "$(rraw ZSCORE "$P:workers" w1)"

finish
