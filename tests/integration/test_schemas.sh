#!/usr/bin/env bash
# test_schemas.sh - schemas/*.schema.json against what cancelqd really does:
# a corpus of edge-case jobs (each valid one next to near misses) goes
# through the daemon, and tools/schema_check.py must agree with it on every
# job (accepted by both, or refused by both), and find the outcomes and dead
# letters valid; then tampered copies of them must be refused, and
# `schema_check.py --job` must judge job files the same way.
. "$(dirname "$0")/lib.sh"

CHECK="/usr/bin/python3 $ROOT/tools/schema_check.py"
# the jobs pushed are recorded only for a dump (run.sh sets it for the suite)
export CQ_SCHEMA_DUMP=${CQ_SCHEMA_DUMP:-$T/exit-dump}
start_redis
start_sandbox --quiet
write_conf "$T/cq.conf" "max_attempts = 2" ""
start_daemon "$T/cq.conf"

k() { echo "{\"id\":\"$1\",\"provider\":\"keliweb\",\"action\":\"cancel_service\",\"params\":$2${3:+,$3}}"; }
i() { echo "{\"id\":\"$1\",\"provider\":\"intronis\",\"action\":\"cancel_partner\",\"params\":$2}"; }
a() { echo "{\"id\":\"$1\",\"provider\":\"activeplatform\",\"action\":\"$2\",\"params\":$3}"; }
rep() { printf "%$2s" '' | tr ' ' "$1"; }
nest() { local s=1 _i; for _i in $(seq 1 "$1"); do s="[$s]"; done; echo "$s"; }
FUTURE=2099-01-01T00:00:00.123456789+02:00
JOBS=(
    # valid
    "$(k v-min '{"serviceid":1}')"
    "$(k v-kw-full '{"serviceid":9007199254740991,"type":"Immediate","reason":""}' '"meta":{"a":[1,{"b":null}]}')"
    "$(k v-kw-eobp '{"serviceid":1e3,"type":"End of Billing Period","reason":"moved"}' "\"idempotency_key\":\"$(rep x 200)\"")"
    "$(k "v-$(rep y 126)" '{"serviceid":2}' "\"max_attempts\":100,\"deadline\":\"$FUTURE\"")"
    "$(k 'v id ~!' '{"serviceid":3}' '"max_attempts":1,"deadline":"2099-12-31t23:59:60Z"')"
    "$(i v-i '{"username":"a b/c é","reason_id":0,"reason_note":"tab\tand\nline"}')"
    "$(i v-i-max '{"username":"u2","reason_id":2147483647.0,"reason_note":""}')"
    "$(a v-ad delete_subscription '{"reseller_id":1,"subscription_id":9007199254740991}')"
    "$(a v-as stop_subscription '{"reseller_id":2,"subscription_id":3,"reason":"r","comment":"c"}')"
    "$(k v-expired '{"serviceid":4}' '"deadline":"2020-01-01T00:00:00Z"')"
    # invalid: the job's own fields
    'not json' '[1]' '{"id":"x-nan","provider":"keliweb","action":"cancel_service","params":{"serviceid":NaN}}'
    "$(k "x-$(rep y 127)" '{"serviceid":5}')"
    "$(k '' '{"serviceid":5}')"
    "$(k 'x-é' '{"serviceid":5}')"
    '{"id":7,"provider":"keliweb","action":"cancel_service","params":{"serviceid":5}}'
    "$(k x-unknown '{"serviceid":5}' '"idempotency":"k"')"
    "$(k x-case '{"serviceid":5}' '"Meta":{}')"
    "$(k x-dupkey '{"serviceid":5}' '"id":"again"')"
    "$(k x-key-long '{"serviceid":5}' "\"idempotency_key\":\"$(rep x 201)\"")"
    "$(k x-key-empty '{"serviceid":5}' '"idempotency_key":""')"
    "$(k x-key-tab '{"serviceid":5}' '"idempotency_key":"a\tb"')"
    "$(k x-key-bytes '{"serviceid":5}' "\"idempotency_key\":\"$(rep é 101)\"")"
    "$(k x-att0 '{"serviceid":5}' '"max_attempts":0')"
    "$(k x-att101 '{"serviceid":5}' '"max_attempts":101')"
    "$(k x-dl-month '{"serviceid":5}' '"deadline":"2026-13-01T00:00:00Z"')"
    "$(k x-dl-feb '{"serviceid":5}' '"deadline":"2026-02-29T00:00:00Z"')"
    "$(k x-dl-epoch '{"serviceid":5}' '"deadline":"1970-01-01T00:00:00Z"')"
    "$(k x-dl-notz '{"serviceid":5}' '"deadline":"2099-01-01T00:00:00"')"
    "$(k x-dl-frac '{"serviceid":5}' '"deadline":"2099-01-01T00:00:00.1234567890Z"')"
    "$(k x-meta '{"serviceid":5}' '"meta":[1]')"
    "$(k x-deep '{"serviceid":5}' "\"meta\":{\"a\":$(nest 7)}")"
    "$(k x-big '{"serviceid":5}' "\"meta\":{\"a\":\"$(rep z 65536)\"}")"
    '{"id":"x-prov","provider":"key web","action":"cancel_service","params":{"serviceid":5}}'
    '{"id":"x-action","provider":"keliweb","action":"cancel_partner","params":{"serviceid":5}}'
    '{"id":"x-noaction","provider":"keliweb","action":"stop","params":{"serviceid":5}}'
    '{"id":"x-noparams","provider":"keliweb","action":"cancel_service"}'
    '{"id":"x-instance","provider":"nope","action":"cancel_service","params":{"serviceid":5}}'
    # invalid: params
    "$(k x-kw-0 '{"serviceid":0}')"
    "$(k x-kw-big '{"serviceid":9007199254740992}')"
    "$(k x-kw-str '{"serviceid":"5"}')"
    "$(k x-kw-type '{"serviceid":5,"type":"Later"}')"
    "$(k x-kw-extra '{"serviceid":5,"reason_id":1}')"
    "$(k x-kw-dup '{"serviceid":5,"serviceid":6}')"
    "$(k x-kw-array '[5]')"
    "$(i x-i-half '{"username":"u","reason_id":1.5,"reason_note":""}')"
    "$(i x-i-neg '{"username":"u","reason_id":-1,"reason_note":""}')"
    "$(i x-i-int32 '{"username":"u","reason_id":2147483648,"reason_note":""}')"
    "$(i x-i-dot '{"username":"..","reason_id":1,"reason_note":""}')"
    "$(i x-i-nl '{"username":"a\nb","reason_id":1,"reason_note":""}')"
    "$(i x-i-ctl '{"username":"u","reason_id":1,"reason_note":"\u0001"}')"
    "$(i x-i-bytes "{\"username\":\"$(rep é 65)\",\"reason_id\":1,\"reason_note\":\"\"}")"
    "$(i x-i-missing '{"username":"u","reason_id":1}')"
    "$(a x-as-empty stop_subscription '{"reseller_id":2,"subscription_id":3,"reason":"","comment":"c"}')"
    "$(a x-ad-extra delete_subscription '{"reseller_id":2,"subscription_id":3,"reason":"r"}')"
    "$(a x-ad-zero delete_subscription '{"reseller_id":0,"subscription_id":3}')"
)
enqueue "${JOBS[@]}"
check "every corpus job ends" wait_results "${#JOBS[@]}" 30
valid=$(for j in "${JOBS[@]}"; do [[ $j == '{"id":"v'* ]] && echo; done | wc -l)
check_eq "the valid ones are not invalid" "$valid" "$(rraw XRANGE '{cq}:results' - + | awk 'prev == "status" && $0 != "invalid" { n++ } { prev = $0 } END { print n + 0 }')"

D="$T/dump"
CQ_SCHEMA_DUMP=$D schema_dump
mv "$D"/* "$D/run"
$CHECK "$D" > "$T/check.out"; r=$?
sed 's/^/   /' "$T/check.out"
check_eq "the schemas agree with cancelqd on every job, outcome and dead letter" 0 "$r"
check "every job was judged" grep -q " ${#JOBS[@]} jobs validated, 0 failed" "$T/check.out"

# tamper: each change must be refused, and named
tamper() { # DESCRIPTION JQ-FILTER EXPECTED-TEXT
    local ok=no
    mkdir -p "$T/bad/run" && cp "$D/run/prefixes" "$T/bad/run/"
    jq -c "$2" "$D/run/redis.json" > "$T/bad/run/redis.json"
    $CHECK "$T/bad" > "$T/bad.out" && ok=passed
    grep -qF -- "$3" "$T/bad.out" && grep -q ' [1-9][0-9]* failed$' "$T/bad.out" && [ $ok = no ] && ok=yes
    check_eq "$1 is refused" yes "$ok"
    [ $ok = yes ] || cat "$T/bad.out"
    rm -rf "$T/bad"
}
O='.streams["{cq}:results"]'
tamper "an unknown status" "${O}[0].fields.status = \"done\"" "is not one of"
tamper "a missing worker" "del(${O}[0].fields.worker)" "'worker' is a required property"
tamper "an extra outcome field" "${O}[0].fields.extra = \"x\"" "Additional properties"
tamper "a numeric http_status" "${O}[0].fields.http_status = 200" "is not of type 'string'"
tamper "a duplicate without original_id" "(${O}[] | select(.fields.status == \"succeeded\") | .fields) |= (.status = \"duplicate\")" "original_id"
tamper "meta that is not JSON" "${O}[0].fields.meta = \"{oops\"" "meta: not JSON text"
tamper "a dead letter without history" '.lists["{cq}:dead"] |= map(fromjson | del(.history) | tojson)' "'history' is a required property"
tamper "a failed dead letter whose job is invalid" '.lists["{cq}:dead"] |= map(fromjson | if .status != "invalid" then .job.params = [] else . end | tojson)' "is not of type 'object'"

echo '{"id":"f1","provider":"keliweb","action":"cancel_service","params":{"serviceid":1}}' > "$T/good.json"
echo '{"id":"f2","provider":"keliweb","action":"cancel_service","params":{"serviceid":1,"serviceid":1}}' > "$T/bad.json"
check_eq "--job: a good job file" "$T/good.json: ok" "$($CHECK --job "$T/good.json")"
check_eq "--job: a bad one exits 1, saying why" "1 $T/bad.json: serviceid: duplicate field" "$($CHECK --job "$T/bad.json" > "$T/o"; echo "$? $(cat "$T/o")")"
finish
