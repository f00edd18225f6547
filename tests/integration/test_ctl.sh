#!/usr/bin/env bash
# test_ctl.sh - cancelqctl against a real redis-server: dead letters seeded
# by hand (several providers, statuses and ages, plus garbage) are listed,
# filtered, shown, requeued (dry run, filters, --rate), dropped and purged;
# enqueue validates before pushing; results tail and workers; exit codes.
# Also: filter values checked ("did you mean"), dlq show by a unique ID
# prefix, enqueue naming the adapter's actions and every missing param,
# global options before the command with one error prefix, one clear line
# for a port that is not Redis, workers' exit status and a redis-cli hint
# for the configured server, ages in Redis time (this host's clock skewed
# by an LD_PRELOAD shim must not change them).
# With the sandbox and cancelqd built, the daemon then processes the
# requeued jobs (else that part is skipped, saying so).
. "$(dirname "$0")/lib.sh"

CTL="$BIN/cancelqctl"
[ -x "$CTL" ] || { echo "SKIP: $CTL not built"; exit 1; }
HAVE_DAEMON=0
if [ -x "$BIN/cancelq-sandbox" ] && [ -x "$BIN/cancelqd" ]; then HAVE_DAEMON=1; fi

start_redis
P="{cq}"
if [ "$HAVE_DAEMON" -eq 1 ]; then start_sandbox; else SANDBOX="http://127.0.0.1:9"; fi
write_conf "$T/cq.conf" "max_attempts = 3" ""
PREFIX=cq2 write_conf "$T/cq2.conf"
ctl() { "$CTL" -c "$T/cq.conf" "$@"; }
ctl2() { "$CTL" -c "$T/cq2.conf" "$@"; }
now_ms() { date +%s%3N; }
iso() { date -u -d "@$(( $1 / 1000 ))" +%Y-%m-%dT%H:%M:%S.000Z; }
# rc CMD...: print CMD's exit status (its output goes to $T/out, $T/err).
rc() { "$@" > "$T/out" 2> "$T/err"; echo $?; }

# dead_entry JOB_JSON STATUS ERROR ATTEMPTS FAILED_AT_MS: a dead letter as
# cancelqd writes it (docs/design.md §6).
dead_entry() {
    local f; f=$(iso "$5")
    jq -cn --argjson job "$1" --arg s "$2" --arg e "$3" --argjson a "$4" --arg f "$f" \
        '{job: $job, status: $s, error: $e, message: ("seeded " + $e), attempts: $a,
          history: [{at: $f, http_status: 503, error: $e}], failed_at: $f, worker: "w-old"}'
}
kjob() { echo "{\"id\":\"$1\",\"provider\":\"keliweb\",\"action\":\"cancel_service\",\"params\":{\"serviceid\":$2}}"; }
push_dead() { rraw LPUSH "$P:dead" "$1" > /dev/null; }
dead_len() { rraw LLEN "$P:dead"; }
jobs_ids() { rraw LRANGE "$P:jobs" 0 -1 | jq -r .id | sort | tr '\n' ' '; }
id_of() { ctl dlq list --json --job "$1" | jq -r '.[0].id'; }
sel() { ctl dlq list --json "$@" | jq -r 'map(.job_id // "-") | join(",")'; }

# --- seed: oldest first (LPUSH: the first pushed ends at the tail) ---------
NOW=$(now_ms)
push_dead "$(dead_entry "$(kjob k-old 301)" failed service_not_found 1 $((NOW - 3 * 3600000)))"
push_dead "$(dead_entry '{"id":"a-2","provider":"activeplatform","action":"stop_subscription","params":{"reseller_id":1,"subscription_id":402,"reason":"r","comment":"c"}}' failed http_422 1 $((NOW - 600000)))"
push_dead "$(dead_entry '{"id":"a-1","provider":"activeplatform","action":"delete_subscription","params":{"reseller_id":1,"subscription_id":401}}' exhausted http_503 3 $((NOW - 120000)))"
push_dead "$(dead_entry "$(kjob k-new 302)" exhausted http_503 3 $((NOW - 60000)))"
push_dead "$(dead_entry '{"id":"i-1","idempotency_key":"acme:i-1","provider":"intronis","action":"cancel_partner","params":{"username":"ctl-user-1","reason_id":1,"reason_note":""}}' exhausted timeout 3 $((NOW - 30000)))"
push_dead "$(dead_entry '"this is not json"' invalid bad_json 0 "$NOW")"
push_dead $'hand-written \e[31mgarbage\e[0m\nwith a newline'
push_dead '{"hello":"world"}'
# idempotency records the requeue must release, or keep
rraw HSET "$P:idem:keliweb:cancel_service:302" state inflight id k-new lease_until 1 > /dev/null
rraw HSET "$P:idem:acme:i-1" state inflight id i-1 lease_until 1 > /dev/null
rraw HSET "$P:idem:keliweb:cancel_service:301" state "done" id k-earlier status succeeded > /dev/null

echo "-- list and filters"
check_eq "list --json parses, all 8 entries" 8 "$(ctl dlq list --json | jq length)"
check_eq "oldest first" "k-old" "$(ctl dlq list --json | jq -r '.[0].job_id')"
check_eq "--provider" "k-old,k-new" "$(sel --provider keliweb)"
check_eq "--status" "a-1,k-new,i-1" "$(sel --status exhausted)"
check_eq "--error pattern" "a-1,k-new" "$(sel --error 'http_5*')"
check_eq "--provider + --action" "a-2" "$(sel --provider activeplatform --action stop_subscription)"
check_eq "--since 5m" "a-1,k-new,i-1,-" "$(sel --since 5m)"
check_eq "--limit 2" "k-old,a-2" "$(sel --limit 2)"
check_eq "--malformed" "2" "$(ctl dlq list --json --malformed | jq 'map(select(.valid == false)) | length')"
check_eq "garbage has no status" "null,null" "$(ctl dlq list --json --malformed | jq -r '[.[].status | tostring] | join(",")')"
check_eq "positions: newest is 0" "0" "$(ctl dlq list --json | jq '.[-1].pos')"
ctl dlq list > "$T/list.txt"; r=$?
check_eq "human list exit 0" 0 "$r"
check "garbage shown with escapes" grep -qF 'hand-written \x1b[31mgarbage\x1b[0m\nwith' "$T/list.txt"
no_esc() { ! grep -q $'\e' "$1"; }
check "no raw escape byte reaches the terminal" no_esc "$T/list.txt"
check "raw (non-JSON) job shown" grep -q '(raw) this is not json' "$T/list.txt"
stats_json_ok() { ctl stats --json | jq -e '.dead.count == 8 and .dead.malformed == 2 and .jobs == 0' > /dev/null; }
stats_groups_ok() {
    ctl stats --json | jq -e '.dead.by_provider_status
        | map(select(.provider == "activeplatform" and .status == "exhausted"))[0].count == 1' > /dev/null
}
stats_human_ok() { ctl stats | grep -q '^dead *8$'; }
check "stats --json parses" stats_json_ok
check "stats: dead by provider/status" stats_groups_ok
check "stats human" stats_human_ok

echo "-- show"
GID=$(ctl dlq list --json --malformed | jq -r 'map(select(.entry == null))[0].id')
check_eq "show garbage: exit 0" 0 "$(rc ctl dlq show "$GID")"
check "show garbage says so" grep -q 'NOT A DEAD-LETTER ENTRY' "$T/out"
escaped_out() { grep -qF '\x1b[31m' "$T/out" && ! grep -q $'\e' "$T/out"; }
check "show garbage escapes" escaped_out
check_eq "show: exit 0" 0 "$(rc ctl dlq show "$(id_of k-old)")"
check "show has the history" grep -q 'service_not_found' "$T/out"
check "show has the job" grep -q '"serviceid":' "$T/out"
check_eq "show --json" "k-old" "$(ctl dlq show "$(id_of k-old)" --json | jq -r .entry.job.id)"
check_eq "show unknown ID: exit 1" 1 "$(rc ctl dlq show 0123456789ab)"
check "show unknown ID names it" grep -q 'no dead letter with ID 0123456789ab' "$T/err"
check_eq "show bad ID: exit 2" 2 "$(rc ctl dlq show xyz)"
KOLD=$(id_of k-old)
check_eq "show a unique 6-digit prefix: exit 0" 0 "$(rc ctl dlq show "${KOLD:0:6}")"
check "...shows that entry" grep -q "^id  *$KOLD " "$T/out"
check_eq "show a 3-digit prefix: exit 2 (4 at least)" 2 "$(rc ctl dlq show "${KOLD:0:3}")"

echo "-- filter values are checked"
check_eq "--status exausted: exit 2" 2 "$(rc ctl dlq list --status exausted)"
check "...did you mean exhausted" grep -q "did you mean exhausted?" "$T/err"
check "...and nothing on stdout (no 'no dead letters match')" test ! -s "$T/out"
check_eq "--provider kelweb: exit 2" 2 "$(rc ctl dlq list --provider kelweb)"
check "...did you mean keliweb, and the instances" grep -q "did you mean keliweb?); known: intronis, activeplatform, keliweb" "$T/err"
check_eq "--action cancel_servce: exit 2" 2 "$(rc ctl dlq list --action cancel_servce)"
check "...did you mean cancel_service" grep -q "did you mean cancel_service?" "$T/err"
check_eq "a pattern that matches a known value: exit 0" 0 "$(rc ctl dlq list --status 'ex*' --action '*_subscription')"
check_eq "requeue checks them too: exit 2" 2 "$(rc ctl dlq requeue --all --status exausted --dry-run)"
check_eq "drop too: exit 2" 2 "$(rc ctl dlq drop --all --provider nope --dry-run)"
check_eq "...and nothing was dropped" 8 "$(dead_len)"

echo "-- requeue"
check_eq "dry run: exit 0" 0 "$(rc ctl dlq requeue --all --status exhausted --dry-run)"
check_eq "dry run says what it would do" 3 "$(grep -c '^would requeue  *[0-9a-f]\{12\}' "$T/out")"
check_eq "dry run: dead unchanged" 8 "$(dead_len)"
check_eq "dry run: jobs unchanged" 0 "$(rraw LLEN "$P:jobs")"
check_eq "dry run: idem record kept" 1 "$(rraw EXISTS "$P:idem:keliweb:cancel_service:302")"
check_eq "IDs and --all: exit 2" 2 "$(rc ctl dlq requeue --all "$(id_of k-old)")"
check_eq "neither IDs nor --all: exit 2" 2 "$(rc ctl dlq requeue --status failed)"
check_eq "bad --rate: exit 2" 2 "$(rc ctl dlq requeue --all --rate fast)"
check_eq "requeue the non-JSON job by ID: exit 1" 1 "$(rc ctl dlq requeue "$(ctl dlq list --json --status invalid | jq -r '.[0].id')")"
check "it says why" grep -q 'not JSON when received' "$T/out"
check_eq "and leaves it" 8 "$(dead_len)"

ctl dlq requeue --all --status exhausted --json > "$T/rq.json"; r=$?
check_eq "requeue --status exhausted: exit 0" 0 "$r"
check_eq "--json lines parse, summary last" 3 "$(jq -s '.[-1].requeued' "$T/rq.json")"
check_eq "exactly the filtered jobs are queued" "a-1 i-1 k-new " "$(jobs_ids)"
check_eq "and left the dead list" 5 "$(dead_len)"
check_eq "not the others" "k-old,a-2" "$(sel --provider '*')"
check_eq "jobs go back bare (attempts reset)" 0 "$(rraw LRANGE "$P:jobs" 0 -1 | grep -c '_cq')"
check_eq "derived key's stale record released" 0 "$(rraw EXISTS "$P:idem:keliweb:cancel_service:302")"
check_eq "given key's stale record released" 0 "$(rraw EXISTS "$P:idem:acme:i-1")"
check_eq "report names the record" released "$(jq -rs 'map(select(.job_id == "k-new"))[0].idempotency_record' "$T/rq.json")"
check_eq "requeue k-old (key done): exit 0" 0 "$(rc ctl dlq requeue "$(id_of k-old)")"
# the hand-made record has no params hash, as if other params had been used
check "it warns the daemon would answer conflict" grep -q "answer 'conflict' again" "$T/out"
check_eq "a done record is kept without --redo" 1 "$(rraw EXISTS "$P:idem:keliweb:cancel_service:301")"
# the daemon part below makes a real one
rraw DEL "$P:idem:keliweb:cancel_service:301" > /dev/null

echo "-- enqueue"
check_eq "bad param: exit 1" 1 "$(rc ctl enqueue --provider keliweb --action cancel_service --param serviceid=abc)"
check "error names the field" grep -q 'params.serviceid' "$T/err"
check_eq "missing param: exit 1" 1 "$(rc ctl enqueue --provider activeplatform --action delete_subscription --param reseller_id=1)"
check "error names the missing field" grep -q 'params.subscription_id' "$T/err"
check_eq "unknown provider: exit 1" 1 "$(rc ctl enqueue --provider nope --action x)"
check "error names the provider" grep -q "provider: 'nope'" "$T/err"
check_eq "unknown action: exit 1" 1 "$(rc ctl enqueue --provider keliweb --action stop)"
check "it lists the adapter's actions" grep -q "actions of keliweb: cancel_service" "$T/err"
check_eq "--action cancel: exit 1" 1 "$(rc ctl enqueue --provider keliweb --action cancel --param serviceid=1)"
check "...did you mean cancel_service" grep -q "(did you mean cancel_service?); actions of keliweb: cancel_service" "$T/err"
check_eq "unknown provider: did you mean" 1 "$(rc ctl enqueue --provider activeplatfrom --action stop_subscription)"
check "...and the instances" grep -q "(did you mean activeplatform?); instances in .*: intronis, activeplatform, keliweb" "$T/err"
check_eq "three params missing: exit 1" 1 "$(rc ctl enqueue --provider activeplatform --action stop_subscription --param reseller_id=1)"
check_eq "...all named at once, on one line" "cancelqctl: job not pushed: params.subscription_id, params.reason, params.comment: missing (action stop_subscription)" "$(cat "$T/err")"
check_eq "missing and a bad one: exit 1" 1 "$(rc ctl enqueue --provider activeplatform --action stop_subscription --param reseller_id=x)"
check "...the bad one is named (validation stops there)" grep -q "params.reseller_id: must be an integer" "$T/err"
check_eq "nothing pushed by failures" 4 "$(rraw LLEN "$P:jobs")"
check_eq "missing --action: exit 2" 2 "$(rc ctl enqueue --provider keliweb)"
check_eq "--file with flags: exit 2" 2 "$(rc ctl enqueue --file x.json --provider keliweb)"
check_eq "enqueue: exit 0" 0 "$(rc ctl enqueue --provider keliweb --action cancel_service --param serviceid=601 --param type='End of Billing Period' --id enq-1)"
check_eq "prints the id" enq-1 "$(cat "$T/out")"
check_eq "the job is queued, typed" '601 End of Billing Period' "$(rraw LINDEX "$P:jobs" 0 | jq -r '"\(.params.serviceid) \(.params.type)"')"
check_eq "dry run pushes nothing" 0 "$(rc ctl enqueue --provider intronis --action cancel_partner --param username:='"0042"' --param reason_id=3 --param reason_note= --dry-run)"
check_eq "K:=JSON keeps a string" '"0042"' "$(jq -c .params.username "$T/out")"
check_eq "still five queued" 5 "$(rraw LLEN "$P:jobs")"
printf '{"id":"enq-2","provider":"keliweb","action":"cancel_service","params":{"serviceid":602}}\n' > "$T/job.json"
check_eq "--file: exit 0" 0 "$(rc ctl enqueue --file "$T/job.json")"
check_eq "--file prints the id" enq-2 "$(cat "$T/out")"
check_eq "--file from stdin, unknown field: exit 1" 1 "$(echo '{"id":"x","provider":"keliweb","action":"cancel_service","params":{"serviceid":1},"idempotency":"k"}' | rc ctl enqueue --file -)"
check "it names the field" grep -q 'idempotency' "$T/err"

echo "-- drop and purge"
check_eq "drop --malformed --dry-run: exit 0" 0 "$(rc ctl dlq drop --all --malformed --dry-run)"
check_eq "dry run keeps them" 4 "$(dead_len)"
check_eq "drop --malformed" 0 "$(rc ctl dlq drop --all --malformed)"
check "drop says what it did" grep -q '^dropped 2,' "$T/out"
check_eq "garbage gone, the rest kept" "a-2,-" "$(sel)"
check_eq "drop by ID" 0 "$(rc ctl dlq drop "$(id_of a-2)")"
check_eq "one left" 1 "$(dead_len)"
check_eq "purge without --yes: exit 2" 2 "$(rc ctl dlq purge)"
check_eq "purge refused changes nothing" 1 "$(dead_len)"
check_eq "purge --yes" 0 "$(rc ctl dlq purge --yes)"
check "purge says how many" grep -q 'purged 1 dead letters' "$T/out"
check_eq "dead list empty" 0 "$(dead_len)"
check_eq "empty list --json" 0 "$(ctl dlq list --json | jq length)"
# a dead letter naming a provider the config lacks (an invalid job) can be selected
push_dead "$(dead_entry '{"id":"g-1","provider":"ghost","action":"vanish","params":{}}' invalid unknown_provider 0 "$(now_ms)")"
check_eq "--provider ghost (only in the dead list): exit 0" 0 "$(rc ctl dlq list --provider ghost --action vanish)"
check "...and it is listed" grep -q 'ghost  *vanish  *invalid' "$T/out"
# enough garbage for two IDs to share 4 hex digits (FNV-1a: ~300 entries)
for i in $(seq 1 600); do printf 'LPUSH %s "garbage-%s"\n' "$P:dead" "$i"; done | rcli > /dev/null
AMB=$(ctl dlq list --json | jq -r '.[].id[0:4]' | sort | uniq -d | head -1)
check "two IDs share a 4-digit prefix (${AMB})" test -n "$AMB"
check_eq "show an ambiguous prefix: exit 1" 1 "$(rc ctl dlq show "$AMB")"
check "...it says so" grep -q "ID $AMB matches [0-9]* dead letters: give more hex digits" "$T/err"
check "...and lists the entries" test "$(grep -c "^  $AMB[0-9a-f]\{8\} " "$T/err")" -ge 2
ctl dlq purge --yes > /dev/null

echo "-- the daemon processes what was requeued"
if [ "$HAVE_DAEMON" -eq 1 ]; then
    start_daemon "$T/cq.conf"
    check "six jobs end" wait_results 6 30
    check_eq "k-new succeeded" succeeded "$(outcome k-new status)"
    check_eq "k-new attempts start again" 1 "$(outcome k-new attempts)"
    check_eq "a-1 succeeded" succeeded "$(outcome a-1 status)"
    check_eq "i-1 succeeded (given key)" succeeded "$(outcome i-1 status)"
    check_eq "k-old succeeded" succeeded "$(outcome k-old status)"
    check_eq "one call for k-new" 1 "$(target_calls keliweb:302)"
    check_eq "enqueued job processed" succeeded "$(outcome enq-1 status)"
    check_eq "enqueued file processed" succeeded "$(outcome enq-2 status)"
    # a key carried out since the job died: kept, so the daemon answers
    # duplicate without a call; --redo forgets it and the provider is called
    ctl enqueue --provider keliweb --action cancel_service --param serviceid=303 --id done-303 > /dev/null
    check "done-303 ends" wait_results 7 30
    check_eq "done-303 succeeded" succeeded "$(outcome done-303 status)"
    push_dead "$(dead_entry "$(kjob dup-303 303)" exhausted http_503 3 "$(now_ms)")"
    check_eq "requeue dup-303: exit 0" 0 "$(rc ctl dlq requeue --all --job dup-303)"
    check "it says the key was carried out" grep -q "carried out by job done-303" "$T/out"
    check "dup-303 ends" wait_results 8 30
    check_eq "daemon answers duplicate" duplicate "$(outcome dup-303 status)"
    check_eq "without calling the provider again" 1 "$(target_calls keliweb:303)"
    push_dead "$(dead_entry '{"id":"conf-303","provider":"keliweb","action":"cancel_service","params":{"serviceid":303,"type":"Immediate"}}' conflict conflict 0 "$(now_ms)")"
    check_eq "requeue of a conflict, dry run: exit 0" 0 "$(rc ctl dlq requeue --all --job conf-303 --dry-run)"
    check "it says the daemon would answer conflict again" grep -q "answer 'conflict' again" "$T/out"
    ctl dlq drop --all --job conf-303 > /dev/null
    push_dead "$(dead_entry "$(kjob redo-303 303)" exhausted http_503 3 "$(now_ms)")"
    check_eq "requeue --redo: exit 0" 0 "$(rc ctl dlq requeue --all --job redo-303 --redo)"
    check "it releases the done record" grep -q "idempotency record released" "$T/out"
    check "redo-303 ends" wait_results 9 30
    check_eq "the provider was called again" 2 "$(target_calls keliweb:303)"
    check_eq "and said it is already done" already_done "$(outcome redo-303 status)"
else
    echo "  SKIP daemon processing: build/cancelq-sandbox or build/cancelqd not built"
fi

echo "-- --rate spreads a requeue"
for i in 1 2 3 4 5; do
    push_dead "$(dead_entry "$(kjob "rate-$i" $((700 + i)))" exhausted rate_test 3 "$(now_ms)")"
done
rraw LPUSH "$P:dead" "$(dead_entry "$(kjob other 799)" exhausted other 3 "$(now_ms)")" > /dev/null
start=$(now_ms)
ctl dlq requeue --all --error rate_test --rate 5/s --json > "$T/rate.json"; r=$?
took=$(( $(now_ms) - start ))
check_eq "paced requeue: exit 0" 0 "$r"
check_eq "five requeued" 5 "$(jq -s '.[-1].requeued' "$T/rate.json")"
spread=$(jq -s '[.[] | select(.at_ms) | .at_ms] | max - min' "$T/rate.json")
check "5 at 5/s are spread over >= 0.75 s (spread ${spread} ms)" test "$spread" -ge 750
check "and not much longer (took ${took} ms)" test "$took" -lt 3000
check_eq "progress shows k/N" "1/5 5/5" "$(jq -rs '[.[0], .[4]] | map("\(.n)/\(.of)") | join(" ")' "$T/rate.json")"
check_eq "the other entry stays" other "$(sel)"
if [ "$HAVE_DAEMON" -eq 1 ]; then
    check "paced jobs end" wait_results 14 30
    first=$(for i in 1 2 3 4 5; do curl -s "$SANDBOX/_sandbox/target?name=keliweb:$((700 + i))" | jq '.times_ms[0]'; done | sort -n)
    pspread=$(( $(echo "$first" | tail -1) - $(echo "$first" | head -1) ))
    check "the provider saw them spread too (${pspread} ms)" test "$pspread" -ge 600
fi

echo "-- results tail (prefix cq2)"
R2="{cq2}:results"
for i in $(seq 1 12); do
    rraw XADD "$R2" '*' id "t-$i" provider keliweb action cancel_service status succeeded attempts 1 \
        http_status 200 error '' message '' duration_ms 12 finished_at "2026-01-01T00:00:00.000Z" worker w1 > /dev/null
done
rraw XADD "$R2" '*' id $'evil\e]0;title\a' provider keliweb action cancel_service status failed attempts 1 \
    http_status 404 error http_404 message $'bad\e[2J' duration_ms 5 finished_at x worker w1 > /dev/null
check_eq "tail: 10 lines by default" 10 "$(ctl2 results tail | wc -l)"
tail_escaped() { ctl2 results tail -n 1 | grep -qF 'evil\x1b]0;title\x07' && ! ctl2 results tail | grep -q $'\e'; }
check "tail escapes control characters" tail_escaped
check_eq "tail -n 3 --json: oldest first" "t-11,t-12,evil" "$(ctl2 results tail -n 3 --json | jq -r '.id[0:4]' | paste -sd,)"
check_eq "--json has stream ids" 3 "$(ctl2 results tail -n 3 --json | jq -r .stream_id | grep -c -- -)"
"$CTL" -c "$T/cq2.conf" results tail -f -n 0 --json > "$T/follow.json" 2> "$T/follow.err" &
FPID=$!
sleep 0.5
rraw XADD "$R2" '*' id f-1 status succeeded > /dev/null
rraw XADD "$R2" '*' id f-2 status failed > /dev/null
sleep 1.5
kill -INT "$FPID"; wait "$FPID"; r=$?
check_eq "tail -f exits 0 on ^C" 0 "$r"
check_eq "tail -f printed exactly the new ones" "f-1 f-2" "$(jq -r .id "$T/follow.json" | paste -sd' ')"

echo "-- results get (prefix cq2)"
for i in $(seq 1 1500); do
    printf 'XADD %s * id g-%d idempotency_key gk-%d provider keliweb action cancel_service status succeeded attempts 1 http_status 200 error "" message "" duration_ms 3 finished_at x worker w1\n' "$R2" "$i" $((i % 3))
done | redis-cli -p "$REDIS_PORT" > /dev/null
check_eq "get --id: an entry two pages back" "g-7 gk-1" "$(ctl2 results get --id g-7 --json | jq -r '"\(.id) \(.idempotency_key)"')"
check_eq "get --key: the newest with that key" "g-1500" "$(ctl2 results get --key gk-0 --json | jq -r .id)"
check_eq "get --key --all: every one, oldest first" "500 g-3 g-1500" \
    "$(ctl2 results get --key gk-0 --all --json | jq -rs '"\(length) \(.[0].id) \(.[-1].id)"')"
check "get: human line" bash -c "'$CTL' -c '$T/cq2.conf' results get --id g-7 | grep -q 'succeeded .*keliweb/cancel_service .*g-7 attempts=1'"
ctl2 results get --id nope > /dev/null 2> "$T/get.err"; r=$?
check_eq "get: none matches: exit 1, the entries searched named" "1 yes" \
    "$r $(grep -q "no outcome with id 'nope' in the 1515 entries of {cq2}:results, and no such job queued, delayed, held or dead" "$T/get.err" && echo yes)"
# not on the stream: where the job or its key is now (exit 3)
N=$(now_ms)
rraw HSET "{cq2}:idem:kd" state done id jd-1 status succeeded finished_at 2026-11-30T10:00:00.000Z > /dev/null
rraw HSET "{cq2}:idem:ki" state inflight id ji-1 worker w9 lease_until $((N + 60000)) unknown 1 > /dev/null
rraw LPUSH "{cq2}:jobs" '{"id":"q-1","provider":"keliweb","action":"cancel_service","params":{"serviceid":1}}' > /dev/null
rraw ZADD "{cq2}:delayed" $((N + 90000)) '{"_cq":{"attempts":1},"job":"{\"id\":\"d-1\",\"provider\":\"keliweb\"}"}' > /dev/null
rraw HSET "{cq2}:inflight:w7" h1 '{"id":"i-1","provider":"keliweb"}' > /dev/null
where() { ctl2 results get "$@" 2>&1; echo "exit=$?"; }
check "get --key: a done record (outcome trimmed)" grep -qz "key kd: carried out; .*job jd-1, status succeeded, finished 2026-11-30T10:00:00.000Z.*exit=3" <<< "$(where --key kd)"
check "get --key: a claim in flight, unknown flagged" grep -qz "key ki: no outcome yet; claimed by job ji-1, worker w9, claim until 20.*looked up first.*exit=3" <<< "$(where --key ki)"
check "get --id: queued" grep -qz "job q-1: no outcome yet; waiting in {cq2}:jobs.*exit=3" <<< "$(where --id q-1)"
check "get --id: delayed, inside a daemon envelope" grep -qz "job d-1: no outcome yet; in {cq2}:delayed, due 20.*exit=3" <<< "$(where --id d-1)"
check "get --id: held by a worker" grep -qz "job i-1: no outcome yet; held by worker w7.*exit=3" <<< "$(where --id i-1)"
check_eq "get --id --json: where" "inflight w7" "$(ctl2 results get --id i-1 --json | jq -r '"\(.where) \(.detail)"')"
rraw DEL "{cq2}:idem:kd" "{cq2}:idem:ki" "{cq2}:jobs" "{cq2}:delayed" "{cq2}:inflight:w7" > /dev/null
ctl2 results get --id a --key b > /dev/null 2>&1; r=$?
check_eq "get: --id and --key together: usage (2)" 2 "$r"

echo "-- workers (prefix cq2)"
N=$(now_ms)
rraw ZADD "{cq2}:workers" "$N" w-live $((N - 60000)) w-dead > /dev/null
rraw HSET "{cq2}:inflight:w-dead" h1 "$(kjob x 1)" h2 "$(kjob y 2)" > /dev/null
ctl2 workers > "$T/w.txt"; r=$?
check_eq "workers: exit 0 (a live worker, nothing stranded)" 0 "$r"
check "stale heartbeat is DEAD" grep -q '^w-dead .*DEAD *2$' "$T/w.txt"
check "warning for its jobs" grep -q "WARNING: worker 'w-dead' silent for 1m.*its 2 job(s) wait for reclaim" "$T/w.txt"
check "live worker listed" grep -q '^w-live .*live *0$' "$T/w.txt"
rraw HSET "{cq2}:inflight:w-gone" h1 "$(kjob z 3)" > /dev/null
check_eq "orphaned inflight list warned about (--json)" 2 "$(ctl2 workers --json | jq '.warnings | length')"
ctl2 workers > "$T/w.txt"; r=$?
check_eq "an orphan nothing takes back: exit 3" 3 "$r"
check "the hint names this server" grep -qF "redis-cli -h '127.0.0.1' -p $REDIS_PORT ZADD '{cq2}:workers' 0 'w-gone'" "$T/w.txt"
# an orphan the daemon reclaims by itself ({P}:holders knows it)
rraw HSET "{cq2}:inflight:w-held" h1 "$(kjob h 4)" > /dev/null
rraw ZADD "{cq2}:holders" "$(( $(now_ms) - 2000 ))" w-held > /dev/null
ctl2 workers > "$T/w.txt"
check "an orphan {P}:holders knows is left to the daemon" grep -q "'w-held' has no heartbeat entry: a live worker takes them back by itself in [0-9.]*s" "$T/w.txt"
check "...without a hand-back command" bash -c "! grep -q \"ZADD .*'w-held'\" '$T/w.txt'"
rraw DEL "{cq2}:inflight:w-held" "{cq2}:holders" > /dev/null
check_eq "stats counts inflight of all" 3 "$(ctl2 stats --json | jq .inflight)"
# the hint, pasted, writes to the configured server and db
PREFIX=cq3 write_conf "$T/cq3.conf"
sed -i 's/^prefix = cq3$/prefix = cq3\ndb = 3/' "$T/cq3.conf"
redis-cli -p "$REDIS_PORT" -n 3 HSET "{cq3}:inflight:w-lost" h1 "$(kjob l 5)" > /dev/null
"$CTL" -c "$T/cq3.conf" workers > "$T/w3.txt"; r=$?
check_eq "no worker alive: exit 3" 3 "$r"
check "...says so" grep -q "WARNING: no worker is alive" "$T/w3.txt"
hint=$(sed -n "s/.*hand them to the next live worker with: //p" "$T/w3.txt")
check_eq "the hint has -h, -p and -n" "redis-cli -h '127.0.0.1' -p $REDIS_PORT -n 3 ZADD '{cq3}:workers' 0 'w-lost'" "$hint"
eval "$hint" > /dev/null
check_eq "pasted, it hands the hash over in db 3" 0 "$(redis-cli -p "$REDIS_PORT" -n 3 ZSCORE '{cq3}:workers' w-lost)"
check_eq "...and wrote nothing to db 0" 0 "$(rraw EXISTS '{cq3}:workers')"
redis-cli -p "$REDIS_PORT" -n 3 FLUSHDB > /dev/null

echo "-- ages are Redis time"
if ! ldd "$CTL" 2> /dev/null | grep -q libasan && command -v cc > /dev/null; then
    # this host's clock an hour ahead, for cancelqctl only
    cat > "$T/skew.c" << 'EOF_C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <time.h>
int clock_gettime(clockid_t id, struct timespec *ts)
{
    static int (*real)(clockid_t, struct timespec *);
    int rc;

    if (real == NULL)
        real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
    rc = real(id, ts);
    if (rc == 0 && id == CLOCK_REALTIME)
        ts->tv_sec += 3600;
    return rc;
}
EOF_C
    cc -shared -fPIC -o "$T/skew.so" "$T/skew.c" -ldl
    skewed() { LD_PRELOAD="$T/skew.so" "$CTL" -c "$T/cq2.conf" "$@"; }
    check "the shim moves this host's clock ahead" test "$(LD_PRELOAD="$T/skew.so" date +%s)" -gt "$(( $(date +%s) + 3000 ))"
    T0=$(rraw TIME | head -1)
    rraw ZADD "{cq2}:workers" "${T0}000" w-now > /dev/null
    age=$(skewed workers --json | jq '.workers[] | select(.id == "w-now") | .age_ms')
    check "a heartbeat of now is seconds old, not an hour (${age} ms)" test "$age" -lt 60000
    check_eq "...and alive" true "$(skewed workers --json | jq '.workers[] | select(.id == "w-now") | .alive')"
    check "stats agrees" test "$(skewed stats --json | jq '.workers.workers[] | select(.id == "w-now") | .age_ms')" -lt 60000
    rraw ZREM "{cq2}:workers" w-now > /dev/null
else
    echo "  SKIP clock skew (sanitizer build or no cc)"
fi

echo "-- usage, help, errors"
check_eq "no command: exit 2" 2 "$(rc "$CTL")"
check_eq "unknown command: exit 2" 2 "$(rc ctl bogus)"
check_eq "dlq without command: exit 2" 2 "$(rc ctl dlq)"
check_eq "unknown option: exit 2" 2 "$(rc ctl dlq list --bogus)"
check_eq "bad duration: exit 2" 2 "$(rc ctl dlq list --since 5x)"
check "it names the flag" grep -q -- '--since' "$T/err"
check_eq "bad count: exit 2" 2 "$(rc ctl results tail -n many)"
for c in "stats" "dlq list" "dlq show" "dlq requeue" "dlq drop" "dlq purge" "enqueue" "results tail" "workers" "check" "top"; do
    # shellcheck disable=SC2086
    check_eq "$c --help: exit 0" 0 "$(rc ctl $c --help)"
done
check_eq "missing config: exit 1" 1 "$(rc "$CTL" -c "$T/nope.conf" stats)"
check "it names the file" grep -q 'nope.conf' "$T/err"
sed "s/^port = .*/port = $(free_port)/" "$T/cq.conf" > "$T/down.conf"
check_eq "redis down: exit 1" 1 "$(rc "$CTL" -c "$T/down.conf" stats)"
check "it names the server" grep -q 'redis 127.0.0.1:' "$T/err"
check_eq "global --json before the command" 0 "$(rc "$CTL" --json -c "$T/cq.conf" stats)"
json_out() { jq -e "$1" "$T/out" > /dev/null; }
check "...gives JSON" json_out '.jobs >= 0'
"$CTL" -c "$T/cq.conf" --json workers > "$T/out"
check "and after -c, for workers" json_out '.live | numbers'
check_eq "unknown global option: exit 2" 2 "$(rc "$CTL" --bogus stats)"
check_eq "one prefix for option errors (global)" "cancelqctl: unknown option '--bogus'" "$(head -1 "$T/err")"
check_eq "unknown command option: exit 2" 2 "$(rc ctl stats --bogus)"
check_eq "one prefix for option errors (command)" "cancelqctl: unknown option '--bogus'" "$(head -1 "$T/err")"
check_eq "missing value" "cancelqctl: option '--since' needs a value" "$(rc ctl dlq list --since > /dev/null; head -1 "$T/err")"
check_eq "value on a flag" "cancelqctl: option '--json' takes no value" "$(rc ctl stats --json=yes > /dev/null; head -1 "$T/err")"
if [ "$HAVE_DAEMON" -eq 1 ]; then
    sed "s/^port = .*/port = $SANDBOX_PORT/" "$T/cq.conf" > "$T/http.conf"
    check_eq "a port that is not Redis: exit 1" 1 "$(rc "$CTL" -c "$T/http.conf" stats)"
    check_eq "...one line" 1 "$(wc -l < "$T/err")"
    check "...saying so" grep -q "redis 127.0.0.1:$SANDBOX_PORT does not answer as Redis" "$T/err"
    check_eq "workers too: exit 1, one line" "1 1" "$(rc "$CTL" -c "$T/http.conf" workers) $(wc -l < "$T/err")"
fi

# (not for sanitizer builds: ASan and valgrind do not mix)
if command -v valgrind > /dev/null && ! ldd "$CTL" 2> /dev/null | grep -q libasan; then
    echo "-- valgrind"
    push_dead 'garbage for valgrind'
    for c in "stats" "dlq list" "dlq requeue --all --dry-run" "workers" "results tail -n 3" "check" "top --once" "dlq list --status exausted" "enqueue --provider activeplatform --action stop_subscription"; do
        # shellcheck disable=SC2086
        valgrind -q --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect \
            --error-exitcode=99 "$CTL" -c "$T/cq.conf" $c > /dev/null 2> "$T/vg.txt"; r=$?
        check "valgrind clean: $c (exit $r)" test "$r" -ne 99
    done
fi

finish
