#!/usr/bin/env bash
# test_sandbox.sh - cancelq-sandbox answers the three providers' documented
# requests like the vendors do (seed examples in /work/shared/seeds), refuses
# malformed ones with 400 and a reason, mints and revokes OAuth tokens, plays
# scripted failures (5xx, 429 + Retry-After, hangs, dropped connections),
# switches endpoints off per provider and kind (outages) and counts what it
# saw.  Talks to a real sandbox over loopback with curl.
. "$(dirname "$0")/lib.sh"

start_sandbox
S=$SANDBOX

IN_AUTH="Authorization: OAuth sandbox-intronis-token"
AP_TOKEN="X-Api-Token: sandbox-activeplatform-token"
AP_CT="Content-Type: application/vnd.api+json"
AP_ACCEPT="Accept: application/vnd.api+json"
KW_AUTH="Authorization: Bearer sandbox-keliweb-token"

# call CURL-ARGS...: run curl, keep body in $T/body and headers in
# $T/headers, print the HTTP status.
call() { curl -s -o "$T/body" -D "$T/headers" -w '%{http_code}' "$@"; }
body() { cat "$T/body"; }
jbody() { jq -r "$1" < "$T/body"; }
header() { grep -i "^$1:" "$T/headers" | head -1 | cut -d' ' -f2- | tr -d '\r'; }
# has TEXT: the last body mentions TEXT.
has() { grep -qF -- "$1" "$T/body"; }
control() { curl -s -X POST "$S/_sandbox/$1" -d "$2"; }
target() { curl -s "$S/_sandbox/target?name=$1"; }

# Each request helper sends the documented headers; set AUTH, ACCEPT or CT
# to another header line to change one, or to "" to leave it out.
# (An empty one also suppresses curl's own default, e.g. Accept: */*.)
hdr1() { if [ -n "$2" ]; then H+=(-H "$2"); else H+=(-H "${1%%:*}:"); fi; }
hdrs() { # hdrs DEFAULT-AUTH DEFAULT-ACCEPT DEFAULT-CT: fill H with -H options
    H=()
    hdr1 "$1" "${AUTH-$1}"
    hdr1 "$2" "${ACCEPT-$2}"
    hdr1 "$3" "${CT-$3}"
}
in_cancel() { # in_cancel USER [curl args...]: JSON cancellation (DATA overrides the body)
    local u=$1; shift
    hdrs "$IN_AUTH" 'Accept: application/json' 'Content-Type: application/json'
    call -X POST "$S/v1/partners/$u/cancellation" "${H[@]}" \
        --data-binary "${DATA-{\"reason_id\": 1, \"reason_note\": \"\"\}}" "$@"
}
in_status() { call "$S/v1/partners/$1" -H "$IN_AUTH" -H 'Accept: application/json'; }
ap_op() { # ap_op RID/SID delete|stop [curl args]
    local id=$1 op=$2; shift 2
    hdrs "$AP_TOKEN" "$AP_ACCEPT" "$AP_CT"
    call -X POST "$S/api/v3/resellers/${id%/*}/subscriptions/${id#*/}/${op}_operation" "${H[@]}" "$@"
}
AP_STOP='{"data":{"attributes":{"reason":"reason","comment":"comment"}}}'
ap_status() { call "$S/api/v3/resellers/${1%/*}/subscriptions/${1#*/}" -H "$AP_TOKEN" -H "$AP_ACCEPT"; }
kw_cancel() { call -X POST "$S/api/v2/keliweb/add-cancel-request" "$@"; }

echo "-- cli"
check "--help describes endpoints and control API" \
    sh -c "'$BIN/cancelq-sandbox' --help | grep -q '/_sandbox/script' && '$BIN/cancelq-sandbox' --help | grep -q delete_operation"
check "--help describes outages" sh -c "'$BIN/cancelq-sandbox' --help | grep -q '/_sandbox/outage'"
check_eq "--version" "cancelq-sandbox" "$("$BIN/cancelq-sandbox" --version | cut -d' ' -f1)"
"$BIN/cancelq-sandbox" --listen nonsense >/dev/null 2>&1
check_eq "bad --listen is a usage error (exit 2)" 2 "$?"
check "prints the listening line" grep -q "^cancelq-sandbox listening on 127.0.0.1:$SANDBOX_PORT\$" "$T/sandbox.log"

echo "-- intronis"
check_eq "seed JSON cancellation -> 303" 303 "$(in_cancel barracuda)"
check_eq "303 Location" "$S/v1/partners/barracuda" "$(header Location)"
check_eq "303 has an empty body" 0 "$(stat -c %s "$T/body")"
check_eq "status lookup -> 200" 200 "$(in_status barracuda)"
check_eq "status CANCELED" "barracuda CANCELED" "$(jbody '.username + " " + .status')"
check_eq "second cancellation -> 400" 400 "$(in_cancel barracuda)"
check_eq "... error code partner_canceled" partner_canceled "$(jbody .error.code)"
check_eq "unknown partner -> active" ACTIVE "$(in_status nobody >/dev/null; jbody .status)"
XML='<?xml version="1.0" encoding="UTF-8"?>
<cancellation>
  <reason_id>1</reason_id>
  <reason_note/>
</cancellation>'
check_eq "seed XML cancellation -> 303" 303 "$(call -X POST "$S/v1/partners/xmluser/cancellation" \
    -H "$IN_AUTH" -H 'Accept: application/xml' -H 'Content-Type: application/xml' --data-binary "$XML")"
check_eq "XML with a note and entities -> 303" 303 "$(call -X POST "$S/v1/partners/xml2/cancellation" \
    -H "$IN_AUTH" -H 'Accept: */*' -H 'Content-Type: application/xml; charset=utf-8' \
    --data-binary '<cancellation><reason_note>too &amp; dear &#233;</reason_note><reason_id> 7 </reason_id></cancellation>')"
check_eq "username with space and slash -> 303" 303 "$(in_cancel 'a%20b%2Fc')"
check_eq "... Location re-encoded" "$S/v1/partners/a%20b%2Fc" "$(header Location)"
in_status 'a%20b%2Fc' >/dev/null
check_eq "... status shows the decoded name" "a b/c CANCELED" "$(jbody '.username + " " + .status')"
check_eq "... target keyed by decoded name" 1 "$(target 'intronis:a%20b%2Fc' | jq .cancel)"

check_eq "missing Accept -> 400" 400 "$(ACCEPT= in_cancel u1)"
check_eq "... says why" "missing header Accept" "$(jbody .error.message)"
check_eq "missing Authorization -> 401" 401 "$(AUTH= in_cancel u1)"
check_eq "wrong token -> 401" 401 "$(AUTH='Authorization: OAuth wrong' in_cancel u1)"
check_eq "Bearer scheme -> 401" 401 "$(AUTH='Authorization: Bearer sandbox-intronis-token' in_cancel u1)"
check_eq "text/plain body -> 400" 400 "$(CT='Content-Type: text/plain' in_cancel u1)"
check "... says why" has "Content-Type must be application/json or application/xml"
check_eq "extra JSON key -> 400" 400 "$(DATA='{"reason_id":1,"reason_note":"","x":1}' in_cancel u1)"
check "... names the key" has '\"x\"'
check_eq "reason_id as string -> 400" 400 "$(DATA='{"reason_id":"1","reason_note":""}' in_cancel u1)"
check_eq "reason_id 1.5 -> 400" 400 "$(DATA='{"reason_id":1.5,"reason_note":""}' in_cancel u1)"
check_eq "missing reason_note -> 400" 400 "$(DATA='{"reason_id":1}' in_cancel u1)"
check_eq "not JSON -> 400" 400 "$(DATA='{"reason_id":1,' in_cancel u1)"
check_eq "XML with an unknown element -> 400" 400 "$(call -X POST "$S/v1/partners/u1/cancellation" \
    -H "$IN_AUTH" -H 'Accept: application/xml' -H 'Content-Type: application/xml' \
    --data-binary '<cancellation><reason_id>1</reason_id><reason_note/><x/></cancellation>')"
check "... names it" has "unknown element <x>"
check_eq "XML without reason_id -> 400" 400 "$(call -X POST "$S/v1/partners/u1/cancellation" \
    -H "$IN_AUTH" -H 'Accept: application/xml' -H 'Content-Type: application/xml' \
    --data-binary '<cancellation><reason_note/></cancellation>')"
check_eq "refused requests left u1 active" ACTIVE "$(in_status u1 >/dev/null; jbody .status)"
control state '{"target":"intronis:ghost","state":"missing"}' >/dev/null
check_eq "missing partner: cancel -> 404" 404 "$(in_cancel ghost)"
check_eq "missing partner: status -> 404" 404 "$(in_status ghost)"

echo "-- intronis oauth"
check_eq "client credentials -> 200" 200 "$(call -X POST "$S/oauth2/token" \
    -d client_id=sandbox-client -d client_secret=sandbox-secret -d grant_type=client_credentials -d scope=partners_write)"
IN_TOKEN=$(jbody .access_token)
check_eq "expires_in is the string \"3600\"" "string 3600" "$(jbody '(.expires_in|type) + " " + .expires_in')"
check_eq "token_type bearer" bearer "$(jbody .token_type)"
check_eq "minted token accepted" 303 "$(AUTH="Authorization: OAuth $IN_TOKEN" in_cancel minted1)"
check_eq "wrong secret -> 401 invalid_client" "401 invalid_client" "$(call -X POST "$S/oauth2/token" \
    -d client_id=sandbox-client -d client_secret=nope -d grant_type=client_credentials) $(jbody .error)"
check_eq "wrong grant -> 400" 400 "$(call -X POST "$S/oauth2/token" -d client_id=sandbox-client \
    -d client_secret=sandbox-secret -d grant_type=password)"
check_eq "revoke intronis" 1 "$(control revoke '{"provider":"intronis"}' | jq .revoked)"
check_eq "revoked token -> 401" 401 "$(AUTH="Authorization: OAuth $IN_TOKEN" in_cancel minted2)"
check_eq "static token unaffected by revoke" 303 "$(in_cancel minted2)"

echo "-- activeplatform"
check_eq "seed delete -> 200" 200 "$(ap_op 1/3007255 delete)"
check_eq "... empty body" "" "$(body)"
check_eq "status Deleted" "200 Deleted 3007255" "$(ap_status 1/3007255) $(jbody '.data.attributes.status + " " + .data.id')"
check_eq "delete again -> 403" 403 "$(ap_op 1/3007255 delete)"
check_eq "... JSON:API forbidden" "403 This action is forbidden" "$(jbody '.errors[0].status + " " + .errors[0].title')"
check_eq "seed stop -> 200" 200 "$(ap_op 1/3007256 stop --data-binary "$AP_STOP")"
check_eq "status Stopped" Stopped "$(ap_status 1/3007256 >/dev/null; jbody .data.attributes.status)"
check_eq "stop again -> 403" 403 "$(ap_op 1/3007256 stop -d "$AP_STOP")"
check_eq "delete a stopped one -> 200" 200 "$(ap_op 1/3007256 delete -d '{}')"
check_eq "stop a deleted one -> 403" 403 "$(ap_op 1/3007256 stop -d "$AP_STOP")"
check_eq "status of a new one Active" Active "$(ap_status 2/5 >/dev/null; jbody .data.attributes.status)"
check_eq "Content-Type application/json -> 400" 400 "$(CT='Content-Type: application/json' ap_op 1/10 delete)"
check "... says why" has "Content-Type must be exactly application/vnd.api+json"
check_eq "Accept application/json -> 400" 400 "$(ACCEPT='Accept: application/json' ap_op 1/10 delete)"
check_eq "missing Accept -> 400" 400 "$(ACCEPT= ap_op 1/10 delete)"
check "... says why" has "missing header Accept"
check_eq "missing X-Api-Token -> 401" 401 "$(AUTH= ap_op 1/10 delete)"
check_eq "wrong X-Api-Token -> 401" 401 "$(AUTH='X-Api-Token: nope' ap_op 1/10 delete)"
check_eq "non-numeric id -> 404" 404 "$(ap_op 1/abc delete)"
check_eq "id 0 -> 404" 404 "$(ap_op 0/10 delete)"
check_eq "stop without comment -> 400" 400 "$(ap_op 1/10 stop -d '{"data":{"attributes":{"reason":"r"}}}')"
check_eq "stop with an extra key -> 400" 400 "$(ap_op 1/10 stop -d '{"data":{"type":"x","attributes":{"reason":"r","comment":"c"}}}')"
check_eq "stop without body -> 400" 400 "$(ap_op 1/10 stop)"
check_eq "delete with a body -> 400" 400 "$(ap_op 1/10 delete -d '{"a":1}')"
check_eq "refused requests left 1/10 Active" Active "$(ap_status 1/10 >/dev/null; jbody .data.attributes.status)"
control state '{"target":"activeplatform:3/4","state":"missing"}' >/dev/null
check_eq "missing subscription -> 404" 404 "$(ap_op 3/4 delete)"

echo "-- keliweb"
check_eq "seed multipart cancel -> 200" 200 "$(kw_cancel -H "$KW_AUTH" -F serviceid=1 -F type=Immediate)"
check_eq "... success" "success 1 1" "$(jbody '.result + " " + .serviceid + " " + .userid')"
check_eq "second cancel -> 200 error" "200 Existing Cancellation Request Exists" \
    "$(kw_cancel -H "$KW_AUTH" -F serviceid=1) $(jbody .message)"
control state '{"target":"keliweb:999","state":"missing"}' >/dev/null
check_eq "missing service" "200 Service ID Not Found" "$(kw_cancel -H "$KW_AUTH" -F serviceid=999) $(jbody .message)"
check_eq "End of Billing Period + reason -> success" success "$(kw_cancel -H "$KW_AUTH" -F serviceid=2 \
    -F 'type=End of Billing Period' -F 'reason=too expensive' >/dev/null; jbody .result)"
check_eq "no Authorization -> 401 Unauthenticated." "401 Unauthenticated." \
    "$(kw_cancel -F serviceid=3) $(jbody .message)"
check_eq "wrong token -> 401" 401 "$(kw_cancel -H 'Authorization: Bearer nope' -F serviceid=3)"
check_eq "urlencoded body -> 400" 400 "$(kw_cancel -H "$KW_AUTH" -d serviceid=3)"
check "... says why" has "multipart/form-data"
check_eq "multipart without boundary (vendor sample) -> 400" 400 "$(kw_cancel -H "$KW_AUTH" \
    -H 'Content-Type: multipart/form-data' -d 'serviceid=3&type=Immediate')"
check "... says why" has "boundary"
check_eq "unknown field -> 400" 400 "$(kw_cancel -H "$KW_AUTH" -F serviceid=3 -F color=red)"
check "... names it" has '\"color\"'
check_eq "bad type -> 400" 400 "$(kw_cancel -H "$KW_AUTH" -F serviceid=3 -F type=Later)"
check_eq "serviceid not an integer -> 400" 400 "$(kw_cancel -H "$KW_AUTH" -F serviceid=3x)"
check_eq "missing serviceid -> 400" 400 "$(kw_cancel -H "$KW_AUTH" -F type=Immediate)"
echo hello > "$T/upload.txt"
check_eq "file upload -> 400" 400 "$(kw_cancel -H "$KW_AUTH" -F serviceid=3 -F "reason=@$T/upload.txt")"
check_eq "truncated multipart -> 400" 400 "$(kw_cancel -H "$KW_AUTH" -H 'Content-Type: multipart/form-data; boundary=XyZ' \
    --data-binary $'--XyZ\r\nContent-Disposition: form-data; name="serviceid"\r\n\r\n3\r\n')"
check_eq "refused requests left 3 uncancelled" 0 "$(target keliweb:3 | jq .cancel)"

echo "-- keliweb oauth"
check_eq "password grant -> 200" 200 "$(call -X POST "$S/oauth/token" -d grant_type=password \
    -d client_id=sandbox-client -d client_secret=sandbox-secret -d username=sandbox-user -d password=sandbox-password)"
KW_ACCESS=$(jbody .access_token); KW_REFRESH=$(jbody .refresh_token)
check_eq "... Bearer, expires_in number" "Bearer number" "$(jbody '.token_type + " " + (.expires_in|type)')"
check_eq "minted access token accepted" success "$(kw_cancel -H "Authorization: Bearer $KW_ACCESS" -F serviceid=10 >/dev/null; jbody .result)"
check_eq "refresh grant (multipart) -> 200" 200 "$(call -X POST "$S/oauth/token" -F grant_type=refresh_token \
    -F client_id=sandbox-client -F client_secret=sandbox-secret -F "refresh_token=$KW_REFRESH")"
KW_ACCESS2=$(jbody .access_token)
check "... a new pair" test -n "$KW_ACCESS2" -a "$KW_ACCESS2" != "$KW_ACCESS" -a "$(jbody .refresh_token)" != "$KW_REFRESH"
check_eq "refresh token is single use -> 401" 401 "$(call -X POST "$S/oauth/token" -d grant_type=refresh_token \
    -d client_id=sandbox-client -d client_secret=sandbox-secret -d "refresh_token=$KW_REFRESH")"
check_eq "wrong password -> 400 invalid_grant" "400 invalid_grant" "$(call -X POST "$S/oauth/token" -d grant_type=password \
    -d client_id=sandbox-client -d client_secret=sandbox-secret -d username=sandbox-user -d password=x) $(jbody .error)"
check_eq "wrong client -> 401 invalid_client" "401 invalid_client" "$(call -X POST "$S/oauth/token" -d grant_type=password \
    -d client_id=other -d client_secret=sandbox-secret -d username=sandbox-user -d password=sandbox-password) $(jbody .error)"
check_eq "revoke keliweb" 3 "$(control revoke '{"provider":"keliweb"}' | jq .revoked)"
check_eq "revoked access token -> 401" 401 "$(kw_cancel -H "Authorization: Bearer $KW_ACCESS2" -F serviceid=11)"

echo "-- scripts"
check_eq "script 500 then 303" 2 "$(control script '{"target":"intronis:bob","responses":[{"status":500},{"status":303}]}' | jq .pending)"
check_eq "first answer 500" 500 "$(in_cancel bob)"
check_eq "... bob still active" ACTIVE "$(in_status bob >/dev/null; jbody .status)"
check_eq "second answer 303 with Location" "303 $S/v1/partners/bob" "$(in_cancel bob) $(header Location)"
check_eq "... and the scripted 303 cancelled" CANCELED "$(in_status bob >/dev/null; jbody .status)"
check_eq "queue empty: normal behaviour" 400 "$(in_cancel bob)"
control script '{"target":"activeplatform:7/7","responses":[{"status":429,"retry_after":"2"}]}' >/dev/null
check_eq "429 with Retry-After" "429 2" "$(ap_op 7/7 delete) $(header Retry-After)"
check_eq "... then normal 200" 200 "$(ap_op 7/7 delete)"
control script '{"target":"intronis:slow","responses":[{"hang_ms":800}]}' >/dev/null
t0=$(date +%s%N); code=$(in_cancel slow); t1=$(date +%s%N)
check_eq "hang_ms answers normally" 303 "$code"
check "... after about 800 ms" test $(( (t1 - t0) / 1000000 )) -ge 750 -a $(( (t1 - t0) / 1000000 )) -lt 3000
control script '{"target":"keliweb:50","responses":[{"close":true}]}' >/dev/null
kw_cancel -H "$KW_AUTH" -F serviceid=50 >/dev/null
check_eq "close drops the connection (curl: empty reply)" 52 "$?"
check_eq "... the request was received and counted" 1 "$(target keliweb:50 | jq .cancel)"
check_eq "... then normal" success "$(kw_cancel -H "$KW_AUTH" -F serviceid=50 >/dev/null; jbody .result)"
control script '{"target":"keliweb:*","responses":[{"status":503}]}' >/dev/null
check_eq "provider wildcard applies to any target" 503 "$(kw_cancel -H "$KW_AUTH" -F serviceid=60)"
check_eq "... once" 200 "$(kw_cancel -H "$KW_AUTH" -F serviceid=60)"
control script '{"target":"*","responses":[{"status":502,"body":"upstream gone","content_type":"text/plain"}]}' >/dev/null
check_eq "global wildcard with a custom body" "502 upstream gone text/plain" \
    "$(ap_op 8/8 delete) $(body) $(header Content-Type)"
control script '{"target":"intronis:own","responses":[{"status":504}]}' >/dev/null
control script '{"target":"intronis:*","responses":[{"status":500}]}' >/dev/null
check_eq "own script before wildcard" 504 "$(in_cancel own)"
check_eq "... then the wildcard" 500 "$(in_cancel own)"
check_eq "hang + close: a timeout with no answer" 52 "$(control script '{"target":"activeplatform:9/9","responses":[{"hang_ms":200,"close":true,"apply":true}]}' >/dev/null; \
    curl -s -o /dev/null -X POST "$S/api/v3/resellers/9/subscriptions/9/delete_operation" -H "$AP_TOKEN" -H "$AP_CT" -H "$AP_ACCEPT"; echo $?)"
check_eq "... apply:true carried the delete out" Deleted "$(ap_status 9/9 >/dev/null; jbody .data.attributes.status)"
check_eq "scripts run after validation (bad request not consumed)" "400 1" \
    "$(control script '{"target":"intronis:val","responses":[{"status":500}]}' >/dev/null; ACCEPT= in_cancel val) $(target intronis:val | jq .scripted)"
check_eq "script with an unknown key -> 400" 400 "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$S/_sandbox/script" \
    -d '{"target":"intronis:x","responses":[{"statu":500}]}')"
check_eq "script with status 99 -> 400" 400 "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$S/_sandbox/script" \
    -d '{"target":"intronis:x","responses":[{"status":99}]}')"
check_eq "script for a bad target -> 400" 400 "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$S/_sandbox/script" \
    -d '{"target":"keliweb:abc","responses":[{"status":500}]}')"

echo "-- latency"
control latency '{"ms":300}' >/dev/null
t0=$(date +%s%N); ap_status 2/5 >/dev/null; t1=$(date +%s%N)
check "global latency delays answers" test $(( (t1 - t0) / 1000000 )) -ge 280
control latency '{"ms":0}' >/dev/null

echo "-- http"
check_eq "unknown endpoint -> 404" 404 "$(call "$S/v2/nothing")"
check_eq "wrong method -> 405 with Allow" "405 POST" "$(call "$S/v1/partners/bob/cancellation" -H "$IN_AUTH") $(header Allow)"
head -c 70000 /dev/zero | tr '\0' 'a' > "$T/big"
check_eq "body over 64 KiB -> 413" 413 "$(ap_op 1/11 delete --data-binary "@$T/big")"
check_eq "malformed HTTP -> 400" "HTTP/1.1 400 Bad Request" "$(exec 3<>"/dev/tcp/127.0.0.1/$SANDBOX_PORT"; \
    printf 'BLAH /x HTTP/1.1\r\n\r\n' >&3; head -1 <&3 | tr -d '\r'; exec 3>&-)"
check_eq "keep-alive: two requests, one connection" "1 0" "$(curl -s -o /dev/null -o /dev/null -w '%{num_connects} ' \
    -H "$AP_TOKEN" -H "$AP_ACCEPT" "$S/api/v3/resellers/2/subscriptions/5" "$S/api/v3/resellers/2/subscriptions/6" | sed 's/ $//')"
check_eq "pipelined requests answered in order" "200 200 404" "$(exec 3<>"/dev/tcp/127.0.0.1/$SANDBOX_PORT"; \
    printf 'GET /_sandbox/stats HTTP/1.1\r\nHost: x\r\n\r\nGET /_sandbox/target?name=keliweb:1 HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&3; \
    grep -ao 'HTTP/1.1 [0-9]*' <&3 | cut -d' ' -f2 | tr '\n' ' ' | sed 's/ $//'; exec 3>&-)"

echo "-- outages"
control reset '' >/dev/null
kind_stat() { curl -s "$S/_sandbox/stats" | jq -r ".by_kind.$1.$2 | \"\\(.requests) \\(.outage)\""; }
control script '{"target":"activeplatform:40/2","responses":[{"status":500}]}' >/dev/null
check_eq "outage on activeplatform cancel" 1 "$(control outage \
    '{"provider":"activeplatform","kind":"cancel","status":503,"retry_after":"1"}' | jq .matched)"
check_eq "delete -> 503 with Retry-After" "503 1" "$(ap_op 40/1 delete) $(header Retry-After)"
check_eq "... JSON:API error body" 503 "$(jbody '.errors[0].status')"
check_eq "stop -> 503" 503 "$(ap_op 40/1 stop -d "$AP_STOP")"
check_eq "... answered before the auth check" 503 "$(AUTH='' ap_op 40/1 delete)"
check_eq "a scripted target -> 503 too" 503 "$(ap_op 40/2 delete)"
check_eq "status GETs still answer: reads up" "200 Active" "$(ap_status 40/1) $(jbody .data.attributes.status)"
check_eq "... no effect, no cancellation recorded" "Active 0" "$(target activeplatform:40/1 | jq -r '"\(.state) \(.cancel)"')"
check_eq "other providers' cancels unaffected" 303 "$(in_cancel out1)"
check_eq "wrong method still 405" 405 "$(call "$S/api/v3/resellers/40/subscriptions/1/delete_operation" -H "$AP_TOKEN")"
check_eq "counters: cancel requests, of them outage" "4 4" "$(kind_stat activeplatform cancel)"
check_eq "counters: status requests, none outage" "1 0" "$(kind_stat activeplatform status)"
check_eq "counters: intronis cancel" "1 0" "$(kind_stat intronis cancel)"
check_eq "GET /_sandbox/outage lists it" "activeplatform cancel 503 null" \
    "$(curl -s "$S/_sandbox/outage" | jq -r '.[] | "\(.provider) \(.kind) \(.status) \(.remaining_ms)"')"
check_eq "clear" 0 "$(control outage '{"provider":"activeplatform","kind":"cancel","clear":true}' | jq '.outages | length')"
check_eq "after clear: the script was not consumed" 500 "$(ap_op 40/2 delete)"
check_eq "after clear: delete -> 200" "200 Deleted" "$(ap_op 40/1 delete) $(ap_status 40/1 >/dev/null; jbody .data.attributes.status)"
control outage '{"provider":"keliweb","kind":"cancel","status":502,"for_ms":400}' >/dev/null
check_eq "outage with for_ms" "502 Bad Gateway" "$(kw_cancel -H "$KW_AUTH" -F serviceid=400) $(jbody .message)"
sleep 0.6
check_eq "... expired after for_ms" "200 success" "$(kw_cancel -H "$KW_AUTH" -F serviceid=400) $(jbody .result)"
check_eq "... gone from the list" 0 "$(curl -s "$S/_sandbox/outage" | jq length)"
control outage '{"provider":"intronis","kind":"token","status":503}' >/dev/null
check_eq "token outage: token endpoint fails" "503 temporarily_unavailable" "$(call -X POST "$S/oauth2/token" \
    -d client_id=sandbox-client -d client_secret=sandbox-secret -d grant_type=client_credentials) $(jbody .error)"
check_eq "... nothing minted" 0 "$(curl -s "$S/_sandbox/stats" | jq .tokens_minted.intronis)"
check_eq "... intronis cancels still work" 303 "$(in_cancel out2)"
check_eq "... keliweb tokens unaffected" 200 "$(call -X POST "$S/oauth/token" -d grant_type=password \
    -d client_id=sandbox-client -d client_secret=sandbox-secret -d username=sandbox-user -d password=sandbox-password)"
check_eq "every provider's token endpoint" 2 "$(control outage '{"provider":"*","kind":"token","status":500}' | jq .matched)"
check_eq "... keliweb token -> 500" 500 "$(call -X POST "$S/oauth/token" -d grant_type=password \
    -d client_id=sandbox-client -d client_secret=sandbox-secret -d username=sandbox-user -d password=sandbox-password)"
check_eq "kind * covers token, cancel and status" 3 "$(control outage '{"provider":"intronis","kind":"*","status":503}' | jq .matched)"
check_eq "... cancel and status -> 503" "503 503" "$(in_cancel out3) $(in_status out3)"
check_eq "a kind the provider lacks -> 400" 400 "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$S/_sandbox/outage" \
    -d '{"provider":"keliweb","kind":"status","status":503}')"
check_eq "status 200 -> 400" 400 "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$S/_sandbox/outage" \
    -d '{"provider":"keliweb","kind":"cancel","status":200}')"
check_eq "unknown key -> 400" 400 "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$S/_sandbox/outage" \
    -d '{"provider":"keliweb","kind":"cancel","status":503,"for":1}')"
control reset '' >/dev/null
check_eq "reset clears outages" "0 303 200" "$(curl -s "$S/_sandbox/outage" | jq length) $(in_cancel out4) $(call -X POST "$S/oauth/token" \
    -d grant_type=password -d client_id=sandbox-client -d client_secret=sandbox-secret -d username=sandbox-user -d password=sandbox-password)"

echo "-- stats"
control reset '' >/dev/null
check_eq "reset clears state" ACTIVE "$(in_status barracuda >/dev/null; jbody .status)"
control reset '' >/dev/null
in_cancel carol >/dev/null; in_cancel carol >/dev/null; in_status carol >/dev/null
ACCEPT= in_cancel carol >/dev/null
curl -s "$S/_sandbox/stats" > "$T/stats"
check_eq "requests counted" 4 "$(jq .requests "$T/stats")"
check_eq "rejected counted" 1 "$(jq .rejected "$T/stats")"
check_eq "by_status" '{"200":1,"303":1,"400":2}' "$(jq -c .by_status "$T/stats")"
check_eq "per-target cancel/check counts" "2 1 2" "$(jq -r '.targets["intronis:carol"] | "\(.cancel) \(.check) \(.times_ms|length)"' "$T/stats")"
now=$(date +%s%3N)
check "times_ms are recent unix ms" test $(( now - $(jq '.targets["intronis:carol"].times_ms[1]' "$T/stats") )) -lt 60000
check_eq "tokens_minted reset" '{"intronis":0,"keliweb":0}' "$(jq -c .tokens_minted "$T/stats")"
check_eq "target endpoint" "CANCELED 2" "$(target intronis:carol | jq -r '"\(.state) \(.cancel)"')"

echo "-- second sandbox: --token, --token-ttl, --latency, SIGTERM"
start_sandbox --token intronis=custom-tok --token-ttl 1 --latency 100 --quiet
S2=$SANDBOX
check_eq "--token replaces the default" "401 303" "$(S=$S2 in_cancel z1) $(S=$S2 AUTH='Authorization: OAuth custom-tok' in_cancel z1)"
call -X POST "$S2/oauth2/token" -d client_id=sandbox-client -d client_secret=sandbox-secret -d grant_type=client_credentials >/dev/null
check_eq "expires_in follows --token-ttl" 1 "$(jbody .expires_in)"
TOK=$(jbody .access_token)
sleep 1.2
check_eq "expired token -> 401" 401 "$(S=$S2 AUTH="Authorization: OAuth $TOK" in_cancel z2)"
check_eq "--latency shows in stats" 100 "$(curl -s "$S2/_sandbox/stats" | jq .latency_ms)"
kill -TERM "$SANDBOX_PID"; wait "$SANDBOX_PID"
check_eq "SIGTERM -> exit 0" 0 "$?"

finish
