#!/usr/bin/env bash
# run.sh - `make examples`: the billing clients in examples/ against a real
# cancelqd.  A private redis-server, the provider sandbox and cancelqd (prefix
# "examples") run in a temp dir; each language's example enqueues its fixed
# set of jobs with its own consumer group and idempotency keys, waits for
# the outcomes and prints one summary line; then each is run again, told to
# exit after reading outcomes but before XACK, and once more to show that
# it re-reads its pending entries first.  Outcomes and dead letters are
# checked against schemas/ at the end.
. "$(dirname "$0")/../integration/lib.sh"

LANGS=${EXAMPLE_LANGS:-python ruby php node go}
export NODE_PATH=/usr/share/nodejs # Debian's node modules, for any node build

start_redis
start_sandbox --quiet
PREFIX=examples write_conf "$T/cq.conf"
PREFIX=examples start_daemon "$T/cq.conf"
# the examples' "already cancelled at the provider" subscription
sandbox_post state '{"target":"activeplatform:1/7000","state":"stopped"}'
export CQ_REDIS=127.0.0.1:$REDIS_PORT CQ_PREFIX=examples

# Go: GOPATH mode against Debian's packaged sources, no module download
build_go() {
    mkdir -p "$ROOT/$BUILD/go-cache"
    GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE="$ROOT/$BUILD/go-cache" \
        GOPROXY=off go build -o "$T/go-example" "$ROOT/examples/go/cancel_subscriptions.go"
}

# example LANG: the command line that runs LANG's example.
example() {
    case $1 in
    python) echo "/usr/bin/python3 $ROOT/examples/python/cancel_subscriptions.py" ;;
    ruby) echo "/usr/bin/ruby $ROOT/examples/ruby/cancel_subscriptions.rb" ;;
    php) echo "/usr/bin/php $ROOT/examples/php/cancel_subscriptions.php" ;;
    node) echo "/usr/bin/node $ROOT/examples/node/cancel_subscriptions.js" ;;
    go) echo "$T/go-example" ;;
    esac
}

EXPECT="enqueued 4, outcomes 4: succeeded=1 already_done=1 duplicate=1 invalid=1"
SUMMARIES=()
for lang in $LANGS; do
    echo "-- $lang"
    if [ "$lang" = go ]; then
        check "go example builds (GOPATH=/usr/share/gocode, offline)" build_go || continue
    fi
    read -r -a cmd <<< "$(example "$lang")"
    timeout 60 "${cmd[@]}" > "$T/$lang.out" 2>&1; rc=$?
    sed 's/^/   /' "$T/$lang.out"
    SUMMARIES+=("$(tail -1 "$T/$lang.out")")
    check_eq "$lang: exit 0" 0 "$rc"
    check_eq "$lang: summary" "$lang: $EXPECT" "$(tail -1 "$T/$lang.out")"
    check_eq "$lang: nothing left pending in its group" 0 \
        "$(rraw XPENDING '{examples}:results' "billing-$lang" | head -1)"

    # restart: read, die before XACK, run again without enqueueing
    export CQ_RUN="$lang-restart" CQ_GROUP="billing-$lang-restart"
    CQ_CRASH_BEFORE_ACK=1 timeout 60 "${cmd[@]}" > "$T/$lang-crash.out" 2>&1; rc=$?
    pending=$(rraw XPENDING '{examples}:results' "$CQ_GROUP" | head -1)
    check_eq "$lang: exits 3 before XACK" 3 "$rc"
    check "$lang: left $pending pending" test "${pending:-0}" -ge 1
    CQ_NO_ENQUEUE=1 timeout 60 "${cmd[@]}" > "$T/$lang-again.out" 2>&1; rc=$?
    sed 's/^/   restart: /' "$T/$lang-again.out"
    check_eq "$lang: rerun exit 0" 0 "$rc"
    check "$lang: rerun re-read the pending entries first" \
        grep -q "re-read $pending pending outcome(s) first" "$T/$lang-again.out"
    check_eq "$lang: rerun saw all four" "$lang: ${EXPECT/enqueued 4/enqueued 0}" "$(tail -1 "$T/$lang-again.out")"
    check_eq "$lang: nothing pending after the rerun" 0 "$(rraw XPENDING '{examples}:results' "$CQ_GROUP" | head -1)"
    unset CQ_RUN CQ_GROUP
done

echo "-- outcomes and dead letters against schemas/"
CQ_SCHEMA_DUMP="$T/schemas" schema_dump
/usr/bin/python3 "$ROOT/tools/schema_check.py" "$T/schemas" > "$T/schemas.out"; rc=$?
sed 's/^/   /' "$T/schemas.out"
check_eq "schemas: every outcome and dead letter valid" 0 "$rc"

echo "-- summaries"
printf '   %s\n' "${SUMMARIES[@]}"
finish
