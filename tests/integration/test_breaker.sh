#!/usr/bin/env bash
# test_breaker.sh - the circuit breaker judges an instance by its
# cancellation calls (docs/design.md §8): in a partial outage where the
# provider answers every cancellation with 503 while its status lookups
# still answer (reads up, writes down), the lookups do not close the
# breaker, the failing provider sees few calls, no job runs out of
# attempts, and the other provider's jobs go on.  For ActivePlatform and
# Intronis (both have lookups).  Every job of the failing provider starts
# with a lookup (a claim left by a worker that vanished mid-call), so
# lookups and calls interleave: a lookup that answered used to reset the
# breaker's count of failed calls, and the breaker hardly ever opened.
. "$(dirname "$0")/lib.sh"
P="{cq}"
OUTAGE_MS=5000

by_kind() { # PROVIDER KIND FIELD
    curl -s "$SANDBOX/_sandbox/stats" | jq -r ".by_kind.$1.$2.$3 // 0"
}
count_of() { # ID-REGEX STATUS: outcomes with that status of jobs whose id matches
    rraw XRANGE "$P:results" - + | awk -v re="$1" -v s="$2" '
        prev == "id" { id = $0 } prev == "status" && id ~ re && $0 == s { n++ }
        { prev = $0 } END { print n + 0 }'
}
# vanished PROVIDER TAG N: the claims a worker that vanished mid-call left
# for jobs TAG-1..N (lease over, holder still named: look the status up
# first).  Their params hash in the form records before 0.2 carry (FNV-1a
# of the canonical params), which every version compares.
vanished() {
    python3 - "$@" <<'PY' | redis-cli -p "$REDIS_PORT" > /dev/null
import sys
prov, tag, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
def fnv(t):
    h = 0xcbf29ce484222325
    for b in t.encode():
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h
for i in range(1, n + 1):
    if prov == "activeplatform":
        key, canon = "activeplatform:delete_subscription:21/%d" % i, '{"reseller_id":21,"subscription_id":%d}' % i
    else:
        u = "%s-%d" % (tag, i)
        key, canon = "intronis:cancel_partner:" + u, '{"reason_id":1,"reason_note":"","username":"%s"}' % u
    print("HSET '{cq}:idem:%s' state inflight owner gone id gone-%d worker gone/1 hash %s lease_until 1" % (key, i, fnv(canon)))
PY
}
push() { # PROVIDER TAG N OFFSET
    local i j
    for i in $(seq 1 "$3"); do
        case $1 in
        activeplatform) j="{\"id\":\"$2-$i\",\"provider\":\"activeplatform\",\"action\":\"delete_subscription\",\"params\":{\"reseller_id\":21,\"subscription_id\":$(($4 + i))}}" ;;
        intronis) j="{\"id\":\"$2-$i\",\"provider\":\"intronis\",\"action\":\"cancel_partner\",\"params\":{\"username\":\"$2-$i\",\"reason_id\":1,\"reason_note\":\"\"}}" ;;
        keliweb) j="{\"id\":\"$2-$i\",\"provider\":\"keliweb\",\"action\":\"cancel_service\",\"params\":{\"serviceid\":$(($4 + i))}}" ;;
        esac
        printf "LPUSH %s:jobs '%s'\n" "$P" "$j"
    done | redis-cli -p "$REDIS_PORT" > /dev/null
}

start_redis
start_sandbox
WORKER_ID=w1 write_conf "$T/w1.conf" "concurrency = 32\nmax_attempts = 5" \
    "breaker_failures = 5\nbreaker_cooldown = 1s"
start_daemon "$T/w1.conf"

outage() { # PROVIDER TAG
    local prov=$1 tag=$2 before during kw_during
    echo "-- $prov answers every cancellation with 503 for $OUTAGE_MS ms; its lookups answer"
    sandbox_post outage "{\"provider\":\"$prov\",\"kind\":\"cancel\",\"status\":503,\"for_ms\":$OUTAGE_MS}"
    vanished "$prov" "$tag" 300
    push "$prov" "$tag" 300 0
    push keliweb "$tag-kw" 300 $((RANDOM * 100))
    sleep $((OUTAGE_MS / 1000))
    during=$(by_kind "$prov" cancel outage)
    kw_during=$(count_of "^$tag-kw-" succeeded)
    echo "   $prov saw $during cancellation requests during the outage ($(by_kind "$prov" status requests) status lookups so far); keliweb ended $kw_during of 300 meanwhile"
    check "at most 80 cancellation requests during the outage" test "$during" -le 80
    check_eq "the other provider's 300 jobs ended during the outage" 300 "$kw_during"
    check "all 600 end" wait_for_tag "$tag" 600 60
    check_eq "all 300 $prov jobs succeeded after the recovery" 300 "$(count_of "^$tag-[0-9]" succeeded)"
    check_eq "none exhausted" 0 "$(count_of "^$tag-" exhausted)"
    echo "   breaker: $(grep -c "event=breaker_state provider=$prov state=open" "$T/cancelqd.log") openings, $(grep -c "event=breaker_state provider=$prov state=closed" "$T/cancelqd.log") closings"
}
wait_for_tag() { # TAG N SECONDS
    local i
    for i in $(seq 1 $(($3 * 10))); do
        [ "$(outcome_ids | grep -c "^$1-")" -ge "$2" ] && return 0
        sleep 0.1
    done
    return 1
}

outage activeplatform bap
ap_open=$(grep -c 'event=breaker_state provider=activeplatform state=open' "$T/cancelqd.log")
check "the activeplatform breaker opened, and not dozens of times" test "$ap_open" -ge 1 -a "$ap_open" -le 8
outage intronis bin
in_open=$(grep -c 'event=breaker_state provider=intronis state=open' "$T/cancelqd.log")
check "the intronis breaker opened, and not dozens of times" test "$in_open" -ge 1 -a "$in_open" -le 8
check_eq "queue empty" 0 "$(queue_len)"
finish
