#!/usr/bin/env bash
# test_journal.sh - cancelqd's log events as native journal entries.
#
# journald need not run here, and sd_journal_send() always writes to
# /run/systemd/journal/socket.  So cancelqd runs in a private mount
# namespace (unshare -m, as root) where /run/systemd is a directory of this
# test: tests/integration/journal_capture.py listens on its journal/socket
# and writes each entry it receives as JSON.  stderr goes to a file whose
# device:inode is in JOURNAL_STREAM, as systemd sets it for a service.
# Checked: one entry per event with MESSAGE (the logfmt line), PRIORITY,
# CQ_EVENT and a CQ_<KEY> field per key; MESSAGE_ID on the events an
# operator acts on (a dead-lettered job); secrets redacted in every field;
# a one-character token mangles nothing; nothing on stderr meanwhile.  And
# with no journal socket, the lines go to stderr with "<N>" prefixes.  The
# catalog (systemd/cancelq.catalog) is compiled with journalctl --root
# into a temp dir and must list every MESSAGE_ID the daemon can send.
. "$(dirname "$0")/lib.sh"

if [ "$(id -u)" -ne 0 ] || ! unshare -m true 2> /dev/null; then
    echo "  SKIP: needs root and unshare -m (a private mount namespace)"
    finish
    exit $?
fi

start_redis
start_sandbox
write_conf "$T/cq.conf"
printf 't\n' > "$T/intronis.token" # one character: short, and wrong for the sandbox

mkdir -p "$T/run-systemd/journal"
python3 "$ROOT/tests/integration/journal_capture.py" "$T/run-systemd/journal/socket" "$T/journal.json" \
    2> "$T/capture.log" &
PIDS+=("$!")
wait_for test -S "$T/run-systemd/journal/socket" || { echo "capture socket did not appear"; exit 1; }

# run_in_ns STDERR_FILE RUN_DIR: cancelqd with JOURNAL_STREAM naming its
# stderr, /run/systemd replaced by RUN_DIR; sets DAEMON_PID.
run_in_ns() {
    local errf=$1 dir=$2 js
    : > "$errf"
    js=$(stat -c '%d:%i' "$errf")
    # shellcheck disable=SC2016
    unshare -m bash -c 'mount --bind "$1" /run/systemd && exec env JOURNAL_STREAM="$2" "$3" -c "$4"' \
        _ "$dir" "$js" "$BIN/cancelqd" "$T/cq.conf" 2>> "$errf" &
    DAEMON_PID=$!
    PIDS+=("$DAEMON_PID")
}

entries() { jq -c "select($1)" "$T/journal.json" 2> /dev/null; }
count() { entries "$1" | wc -l; }
field() { entries "$1" | head -1 | jq -r "$2"; }

echo "-- native journal entries"
run_in_ns "$T/stderr.log" "$T/run-systemd"
enqueue '{"id":"k-1","provider":"keliweb","action":"cancel_service","params":{"serviceid":101}}' \
    'this is not json' \
    '{"id":"i-1","provider":"intronis","action":"cancel_partner","params":{"username":"u1","reason_id":1,"reason_note":""}}'
check "three jobs end" wait_results 3 30
wait_for test "$(count '.CQ_EVENT == "job_done"')" -ge 3
check_eq "a job_done entry per job" 3 "$(count '.CQ_EVENT == "job_done"')"
check_eq "MESSAGE is the logfmt line (no time, no <N>)" \
    "level=info event=job_done id=k-1 provider=keliweb action=cancel_service status=succeeded" \
    "$(field '.CQ_ID == "k-1"' '.MESSAGE' | cut -d' ' -f1-6)"
check_eq "PRIORITY" 6 "$(field '.CQ_ID == "k-1"' .PRIORITY)"
check_eq "SYSLOG_IDENTIFIER" cancelqd "$(field '.CQ_ID == "k-1"' .SYSLOG_IDENTIFIER)"
check_eq "CQ_<KEY> fields" "keliweb cancel_service succeeded 200 1" \
    "$(field '.CQ_ID == "k-1"' '"\(.CQ_PROVIDER) \(.CQ_ACTION) \(.CQ_STATUS) \(.CQ_HTTP_STATUS) \(.CQ_ATTEMPTS)"')"
check_eq "no MESSAGE_ID on a success" null "$(field '.CQ_ID == "k-1"' .MESSAGE_ID)"
check_eq "the dead-lettered jobs carry the job_done MESSAGE_ID" "288ce480b7f5406e847448f1e0b13cd8 288ce480b7f5406e847448f1e0b13cd8" \
    "$(entries '.CQ_EVENT == "job_done" and .CQ_STATUS != "succeeded"' | jq -r .MESSAGE_ID | paste -sd' ')"
check_eq "i-1 failed on the short token (401 twice)" "failed 4 401" \
    "$(field '.CQ_ID == "i-1"' '"\(.CQ_STATUS) \(.PRIORITY) \(.CQ_HTTP_STATUS)"')"
check "token_refused has its own MESSAGE_ID" test "$(field '.CQ_EVENT == "token_refused"' .MESSAGE_ID)" = e3b16f96c7ee4106bfe2779d6e5096ff
check "cancelqd_start logged" test "$(count '.CQ_EVENT == "cancelqd_start"')" -ge 1
# a one-character secret is redacted only as a whole value: no mangled names
not_in_journal() { ! grep -q -- "$1" "$T/journal.json"; }
check "the short token mangles nothing (no [REDACTED] anywhere)" not_in_journal 'REDACTED'
check "event names intact" test "$(count '.MESSAGE | test("event=token_refused ")')" -ge 1
check "the real tokens appear nowhere" not_in_journal 'sandbox-[a-z]*-token' 
field_names_ok() { jq -r 'keys[]' "$T/journal.json" | sort -u | grep -vqE '^[A-Z0-9_]+$' && return 1; return 0; }
check "every field name is [A-Z0-9_]" field_names_ok
check_eq "nothing on stderr while the journal takes the events" 0 "$(grep -c 'level=' "$T/stderr.log")"
kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID"; r=$?
check_eq "cancelqd stops cleanly" 0 "$r"
check "worker_stopped reaches the journal" test "$(count '.CQ_EVENT == "worker_stopped"')" -ge 1

echo "-- no journal socket: prefixed lines on stderr"
mkdir -p "$T/run-empty"
run_in_ns "$T/stderr2.log" "$T/run-empty"
wait_for grep -q 'event=worker_started' "$T/stderr2.log"
check "lines carry <N> and no time field" grep -q '^<5>level=notice event=cancelqd_start' "$T/stderr2.log"
kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID"

echo "-- the catalog"
mkdir -p "$T/root/usr/lib/systemd/catalog"
cp "$ROOT/systemd/cancelq.catalog" "$T/root/usr/lib/systemd/catalog/"
check "journalctl --root compiles it" journalctl --root="$T/root" --update-catalog
journalctl --root="$T/root" --list-catalog > "$T/catalog.txt" 2>&1
ids=$(grep -oE '"[0-9a-f]{32}"' "$ROOT/src/log_journal.c" | tr -d '"' | sort -u)
missing=""
for id in $ids; do grep -q "^$id cancelq: " "$T/catalog.txt" || missing="$missing $id"; done
check_eq "every MESSAGE_ID of src/log_journal.c has an entry ($(echo "$ids" | wc -l) ids)" "" "$missing"
check_eq "and no entry is left over" "$(echo "$ids" | wc -l)" "$(grep -c ' cancelq: ' "$T/catalog.txt")"
check "texts are substituted from the entry's fields" bash -c \
    "journalctl --root='$T/root' --dump-catalog 288ce480b7f5406e847448f1e0b13cd8 | grep -q '@CQ_ID@'"

finish
