#!/usr/bin/env bash
# test_resilience.sh - provider resilience end to end (docs/design.md §8, §9):
# OAuth2 tokens minted once, renewed once after a revocation and before
# expiry; the rate limit (rate + burst in any second) and the pause after a
# 429 with Retry-After; the circuit breaker through a 10 s outage while the
# other providers keep flowing.
. "$(dirname "$0")/lib.sh"

P="{cq}"
now_ms() { date +%s%3N; }
stats() { curl -s "$SANDBOX/_sandbox/stats"; }
minted() { stats | jq -r ".tokens_minted.$1"; }
status_count() { stats | jq -r ".by_status[\"$1\"] // 0"; }

# oauth_conf FILE [WORKER_LINES]: intronis (client credentials) and keliweb
# (password grant) mint tokens; activeplatform keeps a token_file; "aprated"
# is an ActivePlatform instance with rate = 50/s, burst = 10.
oauth_conf() {
    local f=$1 wextra=${2:-}
    printf 'sandbox-secret\n' > "$T/client.secret"
    printf 'sandbox-password\n' > "$T/keliweb.password"
    printf 'sandbox-activeplatform-token\n' > "$T/activeplatform.token"
    {
        printf '[redis]\nhost = 127.0.0.1\nport = %s\nprefix = cq\n\n' "$REDIS_PORT"
        printf '[worker]\nid = w1\nlease = 3s\nbackoff_base = 100ms\nbackoff_max = 1s\nshutdown_grace = 5s\n%b\n\n' "$wextra"
        printf '[provider intronis]\nbase_url = %s\nallow_insecure_http = yes\ntoken_url = %s/oauth2/token\nclient_id = sandbox-client\nclient_secret_file = %s/client.secret\nscope = partner\ntimeout = 2s\nconcurrency = 8\n\n' "$SANDBOX" "$SANDBOX" "$T"
        printf '[provider keliweb]\nbase_url = %s\nallow_insecure_http = yes\ntoken_url = %s/oauth/token\nclient_id = sandbox-client\nclient_secret_file = %s/client.secret\nusername = sandbox-user\npassword_file = %s/keliweb.password\ntimeout = 2s\nconcurrency = 8\nbreaker_failures = 5\nbreaker_cooldown = 3s\n\n' "$SANDBOX" "$SANDBOX" "$T" "$T"
        printf '[provider activeplatform]\nbase_url = %s\nallow_insecure_http = yes\ntoken_file = %s/activeplatform.token\ntimeout = 2s\n\n' "$SANDBOX" "$T"
        printf '[provider aprated]\nadapter = activeplatform\nbase_url = %s\nallow_insecure_http = yes\ntoken_file = %s/activeplatform.token\ntimeout = 2s\nrate = 50/s\nburst = 10\nconcurrency = 32\n\n' "$SANDBOX" "$T"
    } > "$f"
}

# push_jobs PROVIDER N TAG [FIRST]: N jobs of one provider, each its own target.
push_jobs() {
    local prov=$1 n=$2 tag=$3 first=${4:-1} i j
    for i in $(seq "$first" $((first + n - 1))); do
        case $prov in
        intronis) j="{\"id\":\"$tag-$i\",\"provider\":\"intronis\",\"action\":\"cancel_partner\",\"params\":{\"username\":\"$tag-$i\",\"reason_id\":1,\"reason_note\":\"\"}}" ;;
        keliweb) j="{\"id\":\"$tag-$i\",\"provider\":\"keliweb\",\"action\":\"cancel_service\",\"params\":{\"serviceid\":$i}}" ;;
        activeplatform) j="{\"id\":\"$tag-$i\",\"provider\":\"activeplatform\",\"action\":\"delete_subscription\",\"params\":{\"reseller_id\":1,\"subscription_id\":$i}}" ;;
        aprated) j="{\"id\":\"$tag-$i\",\"provider\":\"aprated\",\"action\":\"delete_subscription\",\"params\":{\"reseller_id\":50,\"subscription_id\":$i}}" ;;
        esac
        printf "LPUSH {cq}:jobs '%s'\n" "$j"
    done | redis-cli -p "$REDIS_PORT" > /dev/null
}

# statuses TAG: "status count" lines of the outcomes whose id starts with TAG-.
statuses() {
    rraw XRANGE "$P:results" - + | awk -v tag="$1-" '
        $0 == "id" { getline v; cur = (index(v, tag) == 1) }
        $0 == "status" { getline v; if (cur) n[v]++ }
        END { for (s in n) print s, n[s] }' | sort
}
# succeeded_count TAG
succeeded_count() { statuses "$1" | awk '$1 == "succeeded" { print $2 }' | grep . || echo 0; }
# max_attempts TAG
max_attempts() {
    rraw XRANGE "$P:results" - + | awk -v tag="$1-" '
        $0 == "id" { getline v; cur = (index(v, tag) == 1) }
        $0 == "attempts" { getline v; if (cur && v + 0 > m) m = v + 0 }
        END { print m + 0 }'
}
# wait_tag TAG N SECONDS: until N outcomes of TAG exist.
wait_tag() {
    local i
    for i in $(seq 1 $(($3 * 10))); do
        [ "$(statuses "$1" | awk '{ s += $2 } END { print s + 0 }')" -ge "$2" ] && return 0
        sleep 0.1
    done
    return 1
}

start_redis
start_sandbox --quiet
oauth_conf "$T/cq.conf"
start_daemon "$T/cq.conf"

# --- tokens: 200 jobs per OAuth instance, one token each ---------------------
push_jobs intronis 200 tok
push_jobs keliweb 200 tok 1
check "400 token jobs end" wait_tag tok 400 30
check_eq "all 400 succeeded" 400 "$(succeeded_count tok)"
check_eq "intronis: exactly one token minted" 1 "$(minted intronis)"
check_eq "keliweb: exactly one token minted" 1 "$(minted keliweb)"
check_eq "no 401 seen" 0 "$(status_count 401)"

# --- tokens: revoked mid-run, renewed once -----------------------------------
sandbox_post latency '{"ms":40}'
push_jobs intronis 200 rev
push_jobs keliweb 200 rev 1001
sleep 0.5
sandbox_post revoke '{"provider":"intronis"}'
sandbox_post revoke '{"provider":"keliweb"}'
check "400 jobs after revocation end" wait_tag rev 400 30
sandbox_post latency '{"ms":0}'
check_eq "all 400 succeeded after revocation" 400 "$(succeeded_count rev)"
check_eq "intronis: renewed once" 2 "$(minted intronis)"
check_eq "keliweb: renewed once (password grant after the refused refresh)" 2 "$(minted keliweb)"
R401=$(status_count 401)
echo "   (401 answers after the revocation: $R401)"
# in flight at the revocation, plus what was sent before the first 401 came
# back: at most twice the two instances' concurrency (8 + 8)
check "401s bounded by the requests in flight (<= 32)" test "$R401" -le 32
check "the log shows the refused refresh" grep -q token_refresh_refused "$T/cancelqd.log"

# --- rate: 50/s + burst 10 in any one-second window --------------------------
# times_list PREFIX: every cancellation time (ms) of targets starting with PREFIX, sorted.
times_list() { stats | jq -r --arg p "$1" '.targets | to_entries[] | select(.key | startswith($p)) | .value.times_ms[]' | sort -n; }
# max_per_window: the most times in any 1000 ms window (stdin: sorted times).
max_per_window() { awk '{ t[NR] = $1 } END { j = 1; m = 0; for (i = 1; i <= NR; i++) { while (t[i] - t[j] >= 1000) j++; if (i - j + 1 > m) m = i - j + 1 } print m }'; }
# max_gap: the largest gap between consecutive times (stdin: sorted times).
max_gap() { awk 'NR > 1 && $1 - p > m { m = $1 - p } { p = $1 } END { print m + 0 }'; }

t0=$(now_ms)
push_jobs aprated 300 rate
check "300 rate-limited jobs end" wait_tag rate 300 30
t1=$(now_ms)
check_eq "all 300 succeeded" 300 "$(succeeded_count rate)"
MAXW=$(times_list "activeplatform:50/" | max_per_window)
echo "   (rate = 50/s, burst = 10: at most $MAXW requests in a 1 s window; 300 jobs in $((t1 - t0)) ms)"
check "never more than 60 requests in any 1 s window" test "$MAXW" -le 60
check "the limit is used, not undershot (>= 45 in the busiest window)" test "$MAXW" -ge 45

# --- rate: a 429 with Retry-After: 2 pauses the whole instance ---------------
sandbox_post script '{"target":"activeplatform:*","responses":[{"status":429,"retry_after":"2"}]}'
push_jobs aprated 60 p429 1001
check "60 jobs around a 429 end" wait_tag p429 60 30
check_eq "all 60 succeeded" 60 "$(succeeded_count p429)"
GAP=$(stats | jq -r '.targets | to_entries[] | select(.key | startswith("activeplatform:50/10")) | .value.times_ms[]' | sort -n | max_gap)
echo "   (longest silence of the instance after the 429: $GAP ms)"
check "the instance paused ~2 s after the 429 (1900..2600 ms)" test "$GAP" -ge 1900 -a "$GAP" -le 2600
check "the pause is logged" grep -q provider_paused "$T/cancelqd.log"

# --- breaker: keliweb down for 10 s while 500 jobs flow ----------------------
B500=$(status_count 500)
sandbox_post script '{"target":"keliweb:*","responses":['"$(printf '{"status":500},%.0s' $(seq 1 1000))"'{"status":500}]}'
tb=$(now_ms)
enqueue_many 500 brk 5000
sleep 10
OUT=$(( $(status_count 500) - B500 ))
OTHERS=$(( $(statuses brk | awk '$1 == "succeeded" { print $2 }' | grep . || echo 0) ))
curl -s -X POST -H 'Content-Type: application/json' \
    -d '{"target":"keliweb:*","responses":[{"hang_ms":0}],"replace":true}' "$SANDBOX/_sandbox/script" > /dev/null
te=$(now_ms)
echo "   (outage of $((te - tb)) ms: keliweb saw $OUT requests; $OTHERS other jobs ended meanwhile)"
check "the breaker kept the outage's requests bounded (<= 40)" test "$OUT" -le 40
check_eq "the other providers' 333 jobs all ended during the outage" 333 "$OTHERS"
check "500 breaker jobs end" wait_tag brk 500 30
check_eq "all 500 succeeded after the recovery" 500 "$(succeeded_count brk)"
check "the breaker opened and closed (logged)" bash -c "grep -q 'event=breaker_state.*state=open' '$T/cancelqd.log' && grep -q 'event=breaker_state.*state=closed' '$T/cancelqd.log'"
MAXA=$(max_attempts brk)
echo "   (most attempts used by a job through the outage: $MAXA)"
check "no job used more than 2 attempts" test "$MAXA" -le 2

# --- tokens: a short lifetime is renewed before it expires -------------------
kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null
start_sandbox --quiet --token-ttl 3
oauth_conf "$T/cq2.conf"
start_daemon "$T/cq2.conf" "$T/cancelqd2.log"
sandbox_post latency '{"ms":100}'
push_jobs intronis 400 ttl
check "400 jobs over more than two token lifetimes end" wait_tag ttl 400 40
check_eq "all 400 succeeded" 400 "$(succeeded_count ttl)"
M=$(minted intronis)
R=$(status_count 401)
echo "   (token lifetime 3 s: $M tokens minted, $R answers 401)"
check "renewed before expiry: 2..5 tokens" test "$M" -ge 2 -a "$M" -le 5
check_eq "no request carried an expired token (no 401)" 0 "$R"

# --- tokens: a failing token endpoint is retried with backoff, shown, and a
# SIGHUP with the right secret ends it; waiting jobs spend no attempt -------
kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null
sandbox_post latency '{"ms":0}'
MPORT=$(free_port)
oauth_conf "$T/cq3.conf" "concurrency = 40\nmetrics_listen = 127.0.0.1:$MPORT"
printf 'not-the-secret\n' > "$T/client.secret"
start_daemon "$T/cq3.conf" "$T/cancelqd3.log"
push_jobs intronis 20 bad
sleep 2.5
metric() { curl -s "http://127.0.0.1:$MPORT/metrics" | awk -v k="$1" 'index($0, k) == 1 { print $NF }'; }
FAILS=$(metric 'cancelq_token_mint_failures_total{provider="intronis"}')
echo "   (token endpoint refused the client: $FAILS failed token requests in 2.5 s)"
check "token failures not hammered: at most 4 in 2.5 s" test "${FAILS:-0}" -le 4
check "token failures retried (a second one within 5 s more)" \
    wait_for grep -q 'event=token_mint_failed provider=intronis.*failures=2 ' "$T/cancelqd3.log"
check_eq "the retries back off: 500 ms, then 1000 ms" "500 1000" \
    "$(grep -o 'event=token_mint_failed provider=intronis.*failures=[12] retry_in_ms=[0-9]*' "$T/cancelqd3.log" | sed 's/.*retry_in_ms=//' | head -2 | tr '\n' ' ' | sed 's/ $//')"
check "token failures logged" grep -q 'event=token_mint_failed provider=intronis' "$T/cancelqd3.log"
check_eq "/healthz: the loop answers" 200 "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT/healthz")"
check_eq "/readyz: 503 while the token endpoint fails" 503 "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT/readyz")"
check_eq "/readyz names the reason" "not ready: intronis: token endpoint failing" "$(curl -s "http://127.0.0.1:$MPORT/readyz")"
check_eq "no job ended while the token endpoint failed" 0 "$(statuses bad | wc -l)"
check "the client secret is not in the log" bash -c "! grep -q -e not-the-secret -e sandbox-secret -e sandbox-password '$T/cancelqd3.log'"
printf 'sandbox-secret\n' > "$T/client.secret"
kill -HUP "$DAEMON_PID"
check "after SIGHUP with the right secret the 20 jobs end" wait_tag bad 20 15
check_eq "all 20 succeeded" 20 "$(succeeded_count bad)"
check_eq "waiting for the token spent no attempt" 1 "$(max_attempts bad)"
check_eq "/readyz: ready once the token came" 200 "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT/readyz")"

# --- fairness: a slow provider does not take every worker slot ---------------
# worker concurrency 40; intronis (concurrency 8) answers after 1 s; its 40
# jobs are queued first, then 300 ActivePlatform jobs.
sandbox_post script '{"target":"intronis:*","responses":['"$(printf '{"hang_ms":1000},%.0s' $(seq 1 39))"'{"hang_ms":1000}]}'
push_jobs intronis 40 slow
push_jobs activeplatform 300 fast 9001
tf=$(now_ms)
check "300 jobs of the fast provider end" wait_tag fast 300 20
SLOWDONE=$(statuses slow | awk '{ s += $2 } END { print s + 0 }')
echo "   (300 fast jobs took $(($(now_ms) - tf)) ms; the slow provider had ended $SLOWDONE of 40 by then)"
check "the fast provider finished while the slow one still worked (< 40 slow done)" test "$SLOWDONE" -lt 40
check "the slow provider's jobs end too" wait_tag slow 40 20
check_eq "all 40 slow jobs succeeded" 40 "$(succeeded_count slow)"
check "fairness deferrals counted" test "$(metric 'cancelq_fairness_deferred_total{provider="intronis"}')" -gt 0

# --- a one-byte token: a warning at start, and log lines stay whole ---------
kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null
write_conf "$T/short.conf"
printf 't\n' > "$T/activeplatform.token"
start_daemon "$T/short.conf" "$T/short.log"
check "a short secret is warned about, its file named" \
    wait_for grep -q "event=secret_short file=$T/activeplatform.token" "$T/short.log"
kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null
check "the log is not mangled by it (event=worker_stopping intact)" grep -q 'event=worker_stopping reason=SIGTERM' "$T/short.log"
check "nothing was redacted inside words" bash -c "! grep -q 'REDACTED' '$T/short.log'"

finish
