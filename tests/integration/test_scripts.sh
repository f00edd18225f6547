#!/usr/bin/env bash
# test_scripts.sh - the Redis scripts (src/lua/) against a real redis-server:
# one verdict per job, in order; one job's bad key does not stop the
# others; nothing leaves inflight without its outcome; every time is Redis
# server time; a claim is taken over only after its lease; whether a key's
# outcome is unknown is kept in its record.
. "$(dirname "$0")/lib.sh"

start_redis
LUA="$ROOT/src/lua"
ev() { local s=$1; shift; rraw EVAL "$(cat "$LUA/$s.lua")" "$@"; }
# claim HOLDER JOB...: claim.lua for jobs "key:handle:owner:hash:unknown[:v1]"
# (each with the {p}:limit:x / {p}:pause:x keys of instance x); prints one
# "verdict check a b c open pause" line per job ("-" for an empty field;
# an error: its text).
claim() {
    /usr/bin/python3 - "$REDIS_PORT" "$LUA/claim.lua" "$@" <<'PY'
import sys, redis
port, lua, holder, jobs = int(sys.argv[1]), open(sys.argv[2]).read(), sys.argv[3], sys.argv[4:]
keys, args = ['{p}:inflight:w1'], [holder, 604800000]
for j in jobs:
    f = j.split(':')
    key, handle, owner, hsh, unk = f[:5]
    v1 = f[5] if len(f) > 5 else 'V'
    hsh, v1 = hsh.replace('%', ':'), v1.replace('%', ':')
    keys += ['{p}:idem:' + key, '{p}:limit:x', '{p}:pause:x']
    args += [7, handle, owner, 'j' + owner[1:], hsh, 30000, unk, v1]
r = redis.Redis(port=port, decode_responses=True)
for v in r.eval(lua, len(keys), *keys, *args):
    print(' '.join(str(x) if x != '' else '-' for x in v) if isinstance(v, list) else 'ERROR ' + str(v))
PY
}
fin() { ev finish "$@"; }
rnow() { rraw TIME | { read -r s; read -r us; echo $((s * 1000 + us / 1000)); }; }
hm() { rraw HMGET "$@" | tr '\n' ' ' | sed 's/ $//'; }
NOW=$(rnow)

echo "claim.lua"
# records: k-done (done), k-busy (another job, lease alive), k-old (another
# job, lease over, its worker vanished), k-park (another job, parked by its
# worker: no holder, unknown 0), k-mine (this process), k-gone (this job,
# another process: a restart or a peer), k-hash (other params), k-str (not a hash)
rcli HSET '{p}:idem:k-done' state done owner o9 id j9 hash H status succeeded finished_at F9 > /dev/null
rcli HSET '{p}:idem:k-busy' state inflight owner o8 id j8 worker wx/1 hash H lease_until $((NOW + 60000)) > /dev/null
rcli HSET '{p}:idem:k-old' state inflight owner o7 id j7 worker wx/1 hash H lease_until $((NOW - 1)) unknown 0 > /dev/null
rcli HSET '{p}:idem:k-park' state inflight owner o12 id j12 worker '' hash H lease_until $((NOW - 1)) unknown 0 > /dev/null
rcli HSET '{p}:idem:k-mine' state inflight owner o4 id j4 worker w1/a hash H lease_until $((NOW + 60000)) unknown 1 > /dev/null
rcli HSET '{p}:idem:k-gone' state inflight owner o13 id j13 worker w1/old hash H lease_until $((NOW + 60000)) > /dev/null
rcli HSET '{p}:idem:k-hash' state done owner o6 id j6 hash OTHER status succeeded finished_at F6 > /dev/null
rcli SET '{p}:idem:k-str' x > /dev/null
rcli HSET '{p}:inflight:w1' h1 x h2 x h3 x h5 x h4 x h10 x h11 x h12 x h13 x > /dev/null
out=$(claim w1/a k-new:h1:o1:H:0 k-done:h2:o2:H:0 k-busy:h3:o3:H:0 k-old:h5:o5:H:0 \
    k-mine:h4:o4:H:0 k-str:h10:o10:H:0 k-hash:h11:o11:H:0 k-park:h12:o14:H:0 k-gone:h13:o13:H:0 \
    k-x:h99:o99:H:0 2>&1 | cut -d' ' -f1-3 | tr '\n' '|')
check_eq "one verdict per job, in order" \
    "claimed 0 -|duplicate 0 j9|busy 0 j8|takeover 1 j7|held 1 -|ERROR WRONGTYPE Operation|conflict 0 j6|takeover 0 j12|busy 0 j13|not_ours 0 -|" \
    "$out"
check_eq "new claim recorded with this process as holder" "inflight o1 j1 w1/a H 0" \
    "$(hm '{p}:idem:k-new' state owner id worker hash unknown)"
lease=$(rraw HGET '{p}:idem:k-new' lease_until)
check "lease = Redis now + lease ms" [ "$lease" -ge $((NOW + 30000)) ] && [ "$lease" -lt $((NOW + 40000)) ]
ttl=$(rraw PTTL '{p}:idem:k-new')
check "record TTL set" [ "$ttl" -gt 604000000 ]
check_eq "a vanished holder's claim: taken over, unknown kept in the record" "o5 j5 w1/a 1" \
    "$(hm '{p}:idem:k-old' owner id worker unknown)"
check_eq "a parked claim whose holder said known: taken over, no lookup" "o14 0" "$(hm '{p}:idem:k-park' owner unknown)"
check_eq "this process's claim extended, still unknown" "w1/a 1" "$(hm '{p}:idem:k-mine' worker unknown)"
check_eq "same job, another process, lease alive: busy (untouched)" "w1/old" "$(rraw HGET '{p}:idem:k-gone' worker)"
check_eq "done record untouched" "done o9" "$(hm '{p}:idem:k-done' state owner)"
check_eq "busy record untouched" "o8" "$(rraw HGET '{p}:idem:k-busy' owner)"
check_eq "a job no longer held is not claimed" 0 "$(rraw EXISTS '{p}:idem:k-x')"
# a resent claim (its reply lost) still says: look it up first
out=$(claim w1/a k-old:h5:o5:H:0 | cut -d' ' -f1-2)
check_eq "takeover answered again: held, still check first" "held 1" "$out"
# the same job after its holder's lease: reclaimed, looking up first
rcli HSET '{p}:idem:k-gone' lease_until $((NOW - 1)) > /dev/null
out=$(claim w1/a k-gone:h13:o13:H:0 | cut -d' ' -f1-2)
check_eq "own job, other process, lease over: reclaimed, check first" "reclaimed 1" "$out"
# a fresh key claimed by a job that says its outcome is unknown
out=$(claim w1/a k-u:h1:o20:H:1 | cut -d' ' -f1-2)
check_eq "the job's own unknown flag counts" "claimed 1" "$out"
# records written before 0.2 carry the old params hash (no "s2:" tag): a
# done one is a duplicate for the same params, a conflict for others; a new
# record is compared only with the new hash
rcli HSET '{p}:idem:k-v1' state done owner o30 id j30 hash 0123456789abcdef status succeeded finished_at F30 > /dev/null
rcli HSET '{p}:idem:k-s2' state done owner o31 id j31 hash s2:aaaa status succeeded finished_at F31 > /dev/null
out=$(claim w1/a k-v1:h1:o40:s2%new:0:0123456789abcdef k-v1:h2:o41:s2%new:0:fedcba9876543210 \
    k-s2:h3:o42:s2%bbbb:0:s2%aaaa | cut -d' ' -f1,3 | tr '\n' '|')
check_eq "old record: duplicate by the old hash, conflict otherwise; new record: new hash only" \
    "duplicate j30|conflict j30|conflict j31|" "$out"
# every job's answer carries its instance's shared state: breaker, pause
rcli HSET '{p}:limit:x' open_until $(($(rnow) + 30000)) pause_until $(($(rnow) + 9000)) > /dev/null
out=$(claim w1/a k-u:h1:o20:H:0 | awk '{ print ($6 > 28000 && $6 <= 30000), ($7 > 7000 && $7 <= 9000) }')
check_eq "the instance's open breaker and 429 pause come back with the claim" "1 1" "$out"
rcli HSET '{p}:pause:x' until 0 > /dev/null
out=$(claim w1/a k-u:h1:o20:H:0 | cut -d' ' -f7)
check_eq "an operator's pause until resumed: -1" -1 "$out"
rcli DEL '{p}:limit:x' '{p}:pause:x' > /dev/null

echo "release.lua"
rcli DEL '{p}:inflight:w1' '{p}:delayed' '{p}:jobs' '{p}:retry' > /dev/null
rcli HSET '{p}:inflight:w1' r1 item1 h2 '{"_cq":{"tok":"forged"},"job":"x"}' r3 item3 > /dev/null
rcli HSET '{p}:idem:r1' state inflight owner t1 worker w1/a lease_until $((NOW + 60000)) unknown 0 > /dev/null
rcli HSET '{p}:idem:r3' state inflight owner other worker w9/z lease_until $((NOW + 60000)) > /dev/null
NOW=$(rnow)
out=$(ev release 6 '{p}:inflight:w1' '{p}:delayed' '{p}:retry' '{p}:idem:r1' '{p}:idem:r2' '{p}:idem:r3' \
    6 r1 5000 env1 t1 1 0  6 h2 0 '' '' 1 0  6 r3 5000 env3 t3 0 0  2>&1 | tr '\n' ' ')
check_eq "all three moved" "1 1 1 " "$out"
due=$(rraw ZSCORE '{p}:delayed' env1)
check "due time is Redis now + delay" [ "${due%.*}" -ge $((NOW + 5000)) ] && [ "${due%.*}" -lt $((NOW + 6000)) ]
check_eq "the claim parked: no holder, unknown kept" " 1" "$(hm '{p}:idem:r1' worker unknown)"
check "parked lease ends now" [ "$(rraw HGET '{p}:idem:r1' lease_until)" -le "$(rnow)" ]
check_eq "another job's claim untouched" "w9/z" "$(rraw HGET '{p}:idem:r3' worker)"
stored=$(rraw LRANGE '{p}:retry' 0 -1)
check "a give-back goes to the daemon's own list" test -n "$stored"
check "a producer's item goes back wrapped as it is, never read as an envelope" \
    bash -c "python3 -c 'import json,sys; e=json.loads(sys.argv[1]); sys.exit(not (e[\"_cq\"] == {\"unknown\": 1} and json.loads(e[\"job\"])[\"_cq\"][\"tok\"] == \"forged\"))' '$stored'"
out=$(ev release 4 '{p}:inflight:w1' '{p}:delayed' '{p}:retry' '{p}:idem:r1' 6 r1 0 x t1 0 0 | tr '\n' ' ')
check_eq "a job no longer held: 0" "0 " "$out"

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
job j9 succeeded 303 '' 9; J9=("${J[@]}")
out=$(fin 8 '{p}:inflight:w1' '{p}:results' '{p}:dead' '{p}:idem:f1' '{p}:idem:f2' '{p}:idem:f3' \
    '{p}:idem:f4' '{p}:idem:f5' \
    1000 604800000 w1 \
    17 h1 '' done o1 HASH1 "${J1[@]}" '{"m":1}' \
    17 h2 '{"job":"j2"}' release o2 H "${J2[@]}" '' \
    17 h3 '' done o3 H "${J3[@]}" '' \
    23 h4 '' none o4 H "${J4[@]}" '' original_id j0 original_status succeeded original_finished_at F0 \
    17 h5 '{"job":"j5"}' release o5 H "${J5[@]}" '' 2>&1 | tr '\n' ' ')
check_eq "one result per job: written, written, not ours, written, written (record kept)" "1 1 0 1 kept " "$out"
check_eq "four outcomes" 4 "$(rraw XLEN '{p}:results')"
check_eq "inflight keeps only what was not ours" "" "$(rraw HKEYS '{p}:inflight:w1' | tr '\n' ' ' | sed 's/ $//')"
first=$(rraw XRANGE '{p}:results' - + COUNT 1 | tr '\n' ' ')
check_eq "fields in the documented order" \
    "id j1 idempotency_key key-j1 provider intronis action cancel_partner status succeeded attempts 1 http_status 303 error  message msg j1 duration_ms 12 finished_at 2026-12-01T00:00:01.000Z worker w1 meta {\"m\":1} " \
    "$(echo "$first" | cut -d' ' -f2-)"
dup=$(rraw XREVRANGE '{p}:results' + - COUNT 2 | tr '\n' ' ')
check "duplicate carries original_*" grep -q 'original_id j0 original_status succeeded original_finished_at F0' <<< "$dup"
check_eq "meta only for the job that had it" 1 "$(rraw XRANGE '{p}:results' - + | grep -c '^meta$')"
check_eq "done record, with the params hash" "done o1 j1 succeeded 2026-12-01T00:00:01.000Z HASH1" \
    "$(hm '{p}:idem:f1' state owner id status finished_at hash)"
check_eq "done record holds nothing else" 6 "$(rraw HLEN '{p}:idem:f1')"
check_eq "released record gone" 0 "$(rraw EXISTS '{p}:idem:f2')"
check_eq "another owner's record kept" "someone-else" "$(rraw HGET '{p}:idem:f5' owner)"
check_eq "dead letters for the failed" '{"job":"j5"} {"job":"j2"}' "$(rraw LRANGE '{p}:dead' 0 -1 | tr '\n' ' ' | sed 's/ $//')"

# done after another job took the claim over: the outcome is written, the
# other job's record stays; done with no record left: recreated with its hash
rcli HSET '{p}:inflight:w1' h9 job9 h10 job10 > /dev/null
rcli HSET '{p}:idem:f9' state inflight owner taker hash H > /dev/null
out=$(fin 5 '{p}:inflight:w1' '{p}:results' '{p}:dead' '{p}:idem:f9' '{p}:idem:f10' 1000 604800000 w1 \
    17 h9 '' done o9 H "${J9[@]}" '' 17 h10 '' done o10 H10 "${J9[@]}" '' | tr '\n' ' ')
check_eq "done over a taken claim: kept; done with no record: written" "kept 1 " "$out"
check_eq "the taker's record untouched" "inflight taker" "$(hm '{p}:idem:f9' state owner)"
check_eq "a vanished record comes back done with its hash" "done H10" "$(hm '{p}:idem:f10' state hash)"

# a wrongly typed idempotency record: the outcome is written, the problem
# reported for that job only
rcli HSET '{p}:inflight:w1' h6 job6 h7 job7 > /dev/null
out=$(fin 5 '{p}:inflight:w1' '{p}:results' '{p}:dead' '{p}:idem:f4' '{p}:idem:f7' 1000 604800000 w1 \
    17 h6 '' done o6 H "${J6[@]}" '' \
    17 h7 '' done o7 H "${J7[@]}" '' 2>&1 | tr '\n' ' ')
check "bad record: a note for that job, 1 for the next" grep -qE '^record: WRONGTYPE.* 1 $' <<< "$out"
check_eq "both outcomes written" 8 "$(rraw XLEN '{p}:results')"

# shared keys of the wrong type: refused before any write
rcli HSET '{p}:inflight:w1' h8 job8 > /dev/null
rcli SET '{p}:badresults' x > /dev/null
out=$(fin 4 '{p}:inflight:w1' '{p}:badresults' '{p}:dead' '{p}:idem:f8' 1000 604800000 w1 \
    17 h8 '' done o8 H "${J8[@]}" '' 2>&1)
check "results key of the wrong type: error" grep -q 'not a stream' <<< "$out"
check_eq "the job stays inflight" job8 "$(rraw HGET '{p}:inflight:w1' h8)"

echo "heartbeats, fetch, reclaim, promote (Redis time)"
rcli DEL '{p}:workers' '{p}:jobs' '{p}:holders' '{p}:retry' > /dev/null
fetch() { ev fetch 6 '{p}:jobs' '{p}:inflight:w2' '{p}:seq:w2' '{p}:workers' '{p}:holders' '{p}:retry' "$1" w2 | tr '\n' ' '; }
out=$(fetch 10)
check_eq "an unregistered worker does not fetch" "-1 " "$out"
check_eq "first beat registers" 0 "$(ev beat 1 '{p}:workers' w2)"
check_eq "next beat: was registered" 1 "$(ev beat 1 '{p}:workers' w2)"
score=$(rraw ZSCORE '{p}:workers' w2)
check "heartbeat score is Redis time" [ "$((${score%.*} - $(rnow)))" -le 0 ] && [ "$(($(rnow) - ${score%.*}))" -lt 2000 ]
rcli LPUSH '{p}:jobs' a b c > /dev/null
rcli LPUSH '{p}:retry' R1 > /dev/null
out=$(fetch 3)
check_eq "a registered worker fetches: the daemon's retries first" "1 1 R1 a b " "$out"
check_eq "handles say where each came from" "a b R1" "$(rraw HMGET '{p}:inflight:w2' h2 h3 r1 | tr '\n' ' ' | sed 's/ $//')"
check "the fetch is recorded in holders" [ -n "$(rraw ZSCORE '{p}:holders' w2)" ]
check_eq "identity: fresh score" "$score" "$(ev identity 1 '{p}:workers' w2 15000)"
check_eq "identity: none" -1 "$(ev identity 1 '{p}:workers' w-none 15000)"
# a live worker (fresh beat) is not reclaimed; one whose beat is older than
# the lease in Redis time is
rcli ZADD '{p}:workers' $(($(rnow) - 20000)) w3 > /dev/null
rcli HSET '{p}:inflight:w3' h1 '{"id":"x3"}' > /dev/null
check_eq "identity: stale" -2 "$(ev identity 1 '{p}:workers' w3 15000)"
check_eq "reclaim takes the dead worker's one job" 1 \
    "$(ev reclaim 3 '{p}:workers' '{p}:retry' '{p}:holders' 15000 '{p}:' '' w9)"
check_eq "the live worker's jobs stay" 3 "$(rraw HLEN '{p}:inflight:w2')"
check "the reclaimed job goes to the daemon's list, marked unknown" grep -q '"unknown":1' <<< "$(rraw LRANGE '{p}:retry' 0 -1)"
check_eq "the dead worker is removed" "" "$(rraw ZSCORE '{p}:workers' w3)"
# an orphan: an inflight hash whose worker is not registered, last fetch
# older than the lease
rcli HSET '{p}:inflight:w4' h1 orphan > /dev/null
rcli ZADD '{p}:holders' $(($(rnow) - 20000)) w4 $(rnow) w5 > /dev/null
rcli HSET '{p}:inflight:w5' h1 young > /dev/null
check_eq "reclaim takes the orphaned hash after the lease, not the young one" 1 \
    "$(ev reclaim 3 '{p}:workers' '{p}:retry' '{p}:holders' 15000 '{p}:' '' w9)"
check_eq "the orphan is gone" 0 "$(rraw EXISTS '{p}:inflight:w4')"
check_eq "the young one stays" 1 "$(rraw EXISTS '{p}:inflight:w5')"
rcli DEL '{p}:delayed' > /dev/null
rcli ZADD '{p}:delayed' $(($(rnow) - 1)) due1 $(($(rnow) + 60000)) later > /dev/null
out=$(ev promote 2 '{p}:delayed' '{p}:retry' 500 | tr '\n' ' ')
check "promote moves the due one and says how long until the next" \
    awk -v o="$out" 'BEGIN { split(o, a, " "); exit !(a[1] == 1 && a[2] > 58000 && a[2] <= 60000) }'

echo "share.lua"
# share HOLDER WANT INFLIGHT C R B: one worker's share of {p}:share:x
share() { ev share 3 '{p}:share:x' '{p}:limit:x' '{p}:pause:x' "$1" "$2" "$3" "$4" "$5" "$6" 5000 | tr '\n' ' ' | sed 's/ $//'; }
# the held parts add up to no more than the limits
sums() { rraw HVALS '{p}:share:x' | awk '{ c += $3; r += $4; b += $5 } END { printf "%d %.3f %.3f", c, r, b }'; }
share A 9 0 5 10 4 > /dev/null; share B 9 0 5 10 4 > /dev/null; share C 9 0 5 10 4 > /dev/null
share A 9 0 5 10 4 > /dev/null; share B 9 0 5 10 4 > /dev/null
check "three workers' shares stay within concurrency 5, rate 10, burst 4" \
    awk -v s="$(sums)" 'BEGIN { split(s, v, " "); exit !(v[1] <= 5 && v[2] <= 10.0005 && v[3] <= 4.0005) }'
# a burst of one token for three workers: one holds it at a time, in turns
rraw DEL '{p}:share:x' > /dev/null
holders=""; worst=0
for round in $(seq 1 14); do
    for w in A B C; do
        r=$(share "$w" 3 0 50 1 1)
        case $r in *" 1000 1000 "*) holders="$holders $w" ;; esac
        b=$(sums | awk '{ print $3 }')
        awk -v b="$b" 'BEGIN { exit !(b > 1.0005) }' && worst=$b
    done
    sleep 0.5
done
check_eq "a burst of one is never held twice" 0 "$worst"
check_eq "every worker gets its turn within 7 s" "A B C" \
    "$(echo $holders | tr ' ' '\n' | sort -u | tr '\n' ' ' | sed 's/ $//')"

finish
