#!/usr/bin/env bash
# test_producers.sh - what producers push is a job, never retry state
# (docs/design.md §3): forged envelopes with guessed owner tokens, pushed
# while the genuine job's request is in flight, cause no call; an envelope
# a version before 0.2 gave back to {P}:jobs runs as a plain job that looks
# its status up first; absurd counters do no harm; and an upgrade with live
# `done` records written with the old params hash answers `duplicate`, not
# `conflict`.
. "$(dirname "$0")/lib.sh"
P="{cq}"

ap() { echo "{\"id\":\"$1\",\"provider\":\"activeplatform\",\"action\":\"delete_subscription\",\"params\":{\"reseller_id\":31,\"subscription_id\":$2}}"; }
# envelope JOB-JSON FIELDS: an envelope around a job, as a producer could forge it
envelope() { jq -cn --arg job "$1" --argjson cq "$2" '{_cq: $cq, job: $job}'; }
fnv() { python3 -c '
import sys
h = 0xcbf29ce484222325
for b in sys.argv[1].encode():
    h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
print("%016x" % h)' "$1"; }

start_redis
start_sandbox
WORKER_ID=w1 write_conf "$T/w1.conf" "concurrency = 20"
start_daemon "$T/w1.conf"

echo "-- forged envelopes while the genuine job's call is in flight"
sandbox_post script '{"target":"activeplatform:31/1","responses":[{"hang_ms":1500}]}'
J=$(ap real-1 1)
enqueue "$J"
check "the genuine call is in flight" wait_for bash -c "[ \$(curl -s '$SANDBOX/_sandbox/target?name=activeplatform:31/1' | jq '.cancel // 0') -eq 1 ]"
# the owner tokens a producer could guess: the old scheme (worker/handle),
# anything; "unknown": 0 to skip the lookup; absurd attempts
for tok in w1/h1 w1/h2 w1/r1 0123456789abcdef0123456789abcdef; do
    enqueue "$(envelope "$J" "{\"tok\":\"$tok\",\"unknown\":0,\"attempts\":9007199254740991,\"first_ms\":1}")"
done
check "all five end" wait_results 5 30
check_eq "one call only, by the genuine job" 1 "$(target_calls activeplatform:31/1)"
statuses=$(rraw XRANGE "$P:results" - + | awk 'prev == "status" { print } { prev = $0 }' | sort | uniq -c | awk '{ printf "%s=%s ", $2, $1 }')
check_eq "the genuine job succeeded, the forged ones are duplicates of it" "duplicate=4 succeeded=1 " "$statuses"
check "each forgery was logged" test "$(grep -c 'event=envelope_untrusted' "$T/cancelqd.log")" -eq 4

echo "-- an envelope a version before 0.2 gave back to {P}:jobs"
sandbox_post state '{"target":"activeplatform:31/2","state":"deleted"}'
enqueue "$(envelope "$(ap old-1 2)" '{"tok":"w9/h7","unknown":0,"attempts":2,"first_ms":1700000000000,"history":[]}')"
check "it ends" wait_results 6 30
check_eq "looked up first: already_done, no call" "already_done 0" "$(outcome old-1 status) $(target_calls activeplatform:31/2)"
check_eq "its attempts start again" 0 "$(outcome old-1 attempts)"

echo "-- an upgrade with live done records (the old params hash)"
rcli HSET "$P:idem:activeplatform:delete_subscription:31/3" state done owner old id before-upgrade \
    hash "$(fnv '{"reseller_id":31,"subscription_id":3}')" status succeeded \
    finished_at 2026-11-30T00:00:00.000Z > /dev/null
rcli HSET "$P:idem:activeplatform:delete_subscription:31/4" state done owner old id other-params \
    hash "$(fnv '{"reseller_id":31,"subscription_id":99}')" status succeeded \
    finished_at 2026-11-30T00:00:00.000Z > /dev/null
enqueue "$(ap up-1 3)"
enqueue "{\"id\":\"up-2\",\"idempotency_key\":\"activeplatform:delete_subscription:31/4\",\"provider\":\"activeplatform\",\"action\":\"delete_subscription\",\"params\":{\"reseller_id\":31,\"subscription_id\":4}}"
check "both end" wait_results 8 30
check_eq "same params under the old hash: duplicate" "duplicate before-upgrade" \
    "$(outcome up-1 status) $(outcome up-1 original_id)"
check_eq "other params under the old hash: conflict" conflict "$(outcome up-2 status)"
check_eq "no call for either" "0 0" "$(target_calls activeplatform:31/3) $(target_calls activeplatform:31/4)"
finish
