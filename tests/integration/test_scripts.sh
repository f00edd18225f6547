#!/usr/bin/env bash
# test_scripts.sh - the batched claim and finish scripts (src/lua/) against a
# real redis-server: one verdict per job, in order; one job's bad key does
# not stop the others; nothing leaves inflight without its outcome.
. "$(dirname "$0")/lib.sh"

start_redis
LUA="$ROOT/src/lua"
claim() { rraw EVAL "$(cat "$LUA/claim.lua")" "$@"; }
fin() { rraw EVAL "$(cat "$LUA/finish.lua")" "$@"; }
NOW=1800000000000

echo "claim.lua"
# records: k-done (done), k-busy (another job, lease alive), k-old (another
# job, lease over), k-mine (this owner), k-hash (other params), k-str (not a hash)
rcli HSET '{p}:idem:k-done' state done owner o9 id j9 hash H status succeeded finished_at F9 > /dev/null
rcli HSET '{p}:idem:k-busy' state inflight owner o8 id j8 hash H lease_until $((NOW + 60000)) > /dev/null
rcli HSET '{p}:idem:k-old' state inflight owner o7 id j7 hash H lease_until $((NOW - 1)) > /dev/null
rcli HSET '{p}:idem:k-mine' state inflight owner o4 id j4 hash H lease_until $((NOW + 60000)) > /dev/null
rcli HSET '{p}:idem:k-hash' state done owner o6 id j6 hash OTHER status succeeded finished_at F6 > /dev/null
rcli SET '{p}:idem:k-str' x > /dev/null
out=$(claim 7 '{p}:idem:k-new' '{p}:idem:k-done' '{p}:idem:k-busy' '{p}:idem:k-old' '{p}:idem:k-mine' \
    '{p}:idem:k-str' '{p}:idem:k-hash' \
    w1 "$NOW" 604800000 \
    4 o1 j1 H 30000  4 o2 j2 H 30000  4 o3 j3 H 30000  4 o5 j5 H 30000  4 o4 j4 H 30000 \
    4 o10 j10 H 30000  4 o11 j11 H 30000 2>&1 | tr '\n' ' ' | tr -s ' ')
check_eq "one verdict per job, in order" \
    "claimed duplicate j9 succeeded F9 busy j8 takeover j7 reclaimed WRONGTYPE Operation against a key holding the wrong kind of value conflict j6 " \
    "$out"
check_eq "new claim recorded" "inflight o1 j1 w1 H" \
    "$(rraw HMGET '{p}:idem:k-new' state owner id worker hash | tr '\n' ' ' | sed 's/ $//')"
check_eq "lease = now + lease ms" "$((NOW + 30000))" "$(rraw HGET '{p}:idem:k-new' lease_until)"
ttl=$(rraw PTTL '{p}:idem:k-new')
check "record TTL set" [ "$ttl" -gt 604000000 ]
check_eq "takeover rewrites the owner" "o5 j5" "$(rraw HMGET '{p}:idem:k-old' owner id | tr '\n' ' ' | sed 's/ $//')"
check_eq "done record untouched" "done o9" "$(rraw HMGET '{p}:idem:k-done' state owner | tr '\n' ' ' | sed 's/ $//')"
check_eq "busy record untouched" "o8" "$(rraw HGET '{p}:idem:k-busy' owner)"

echo "finish.lua"
rcli DEL '{p}:results' '{p}:dead' > /dev/null
rcli HSET '{p}:inflight:w1' h1 job1 h2 job2 h4 job4 h5 job5 > /dev/null
rcli HSET '{p}:idem:f1' state inflight owner o1 > /dev/null
rcli HSET '{p}:idem:f2' state inflight owner o2 > /dev/null
rcli HSET '{p}:idem:f5' state inflight owner someone-else > /dev/null
rcli SET '{p}:idem:f4' x > /dev/null
# job 1 succeeded (done), job 2 failed (dead letter, release), job 3 is not
# ours (handle h3 unknown), job 4 duplicate with a bad idem key (op none:
# untouched), job 5 failed but its record belongs to another owner (kept)
# job ID STATUS HTTP ERROR N: sets J to the 11 outcome values of one job
job() { J=("$1" "key-$1" intronis cancel_partner "$2" 1 "$3" "$4" "msg $1" 12 "2026-12-01T00:00:0$5.000Z"); }
job j1 succeeded 303 '' 1; J1=("${J[@]}")
job j2 failed 404 http_404 2; J2=("${J[@]}")
job j3 succeeded 200 '' 3; J3=("${J[@]}")
job j4 duplicate 0 '' 4; J4=("${J[@]}")
job j5 failed 404 http_404 5; J5=("${J[@]}")
job j6 succeeded 303 '' 6; J6=("${J[@]}")
job j7 succeeded 303 '' 7; J7=("${J[@]}")
job j8 succeeded 303 '' 8; J8=("${J[@]}")
out=$(fin 8 '{p}:inflight:w1' '{p}:results' '{p}:dead' '{p}:idem:f1' '{p}:idem:f2' '{p}:idem:f3' \
    '{p}:idem:f4' '{p}:idem:f5' \
    1000 604800000 w1 \
    16 h1 '' done o1 "${J1[@]}" '{"m":1}' \
    16 h2 '{"job":"j2"}' release o2 "${J2[@]}" '' \
    16 h3 '' done o3 "${J3[@]}" '' \
    19 h4 '' none o4 "${J4[@]}" '' j0 succeeded F0 \
    16 h5 '{"job":"j5"}' release o5 "${J5[@]}" '' 2>&1 | tr '\n' ' ')
check_eq "one result per job: written, written, not ours, written, written" "1 1 0 1 1 " "$out"
check_eq "four outcomes" 4 "$(rraw XLEN '{p}:results')"
check_eq "inflight keeps only what was not ours" "" "$(rraw HKEYS '{p}:inflight:w1' | tr '\n' ' ' | sed 's/ $//')"
first=$(rraw XRANGE '{p}:results' - + COUNT 1 | tr '\n' ' ')
check_eq "fields in the documented order" \
    "id j1 idempotency_key key-j1 provider intronis action cancel_partner status succeeded attempts 1 http_status 303 error  message msg j1 duration_ms 12 finished_at 2026-12-01T00:00:01.000Z worker w1 meta {\"m\":1} " \
    "$(echo "$first" | cut -d' ' -f2-)"
dup=$(rraw XREVRANGE '{p}:results' + - COUNT 2 | tr '\n' ' ')
check "duplicate carries original_*" grep -q 'original_id j0 original_status succeeded original_finished_at F0' <<< "$dup"
check_eq "meta only for the job that had it" 1 "$(rraw XRANGE '{p}:results' - + | grep -c '^meta$')"
check_eq "done record" "done o1 j1 succeeded 2026-12-01T00:00:01.000Z" \
    "$(rraw HMGET '{p}:idem:f1' state owner id status finished_at | tr '\n' ' ' | sed 's/ $//')"
check_eq "released record gone" 0 "$(rraw EXISTS '{p}:idem:f2')"
check_eq "another owner's record kept" "someone-else" "$(rraw HGET '{p}:idem:f5' owner)"
check_eq "dead letters for the failed" '{"job":"j5"} {"job":"j2"}' "$(rraw LRANGE '{p}:dead' 0 -1 | tr '\n' ' ' | sed 's/ $//')"

# a wrongly typed idempotency record: the outcome is written, the error
# reported for that job only
rcli HSET '{p}:inflight:w1' h6 job6 h7 job7 > /dev/null
out=$(fin 5 '{p}:inflight:w1' '{p}:results' '{p}:dead' '{p}:idem:f4' '{p}:idem:f7' 1000 604800000 w1 \
    16 h6 '' done o6 "${J6[@]}" '' \
    16 h7 '' done o7 "${J7[@]}" '' 2>&1 | tr '\n' ' ')
check "bad record: error for that job, 1 for the next" grep -qE '^WRONGTYPE.* 1 $' <<< "$out"
check_eq "both outcomes written" 6 "$(rraw XLEN '{p}:results')"

# shared keys of the wrong type: refused before any write
rcli HSET '{p}:inflight:w1' h8 job8 > /dev/null
rcli SET '{p}:badresults' x > /dev/null
out=$(fin 4 '{p}:inflight:w1' '{p}:badresults' '{p}:dead' '{p}:idem:f8' 1000 604800000 w1 \
    16 h8 '' done o8 "${J8[@]}" '' 2>&1)
check "results key of the wrong type: error" grep -q 'not a stream' <<< "$out"
check_eq "the job stays inflight" job8 "$(rraw HGET '{p}:inflight:w1' h8)"

finish
