#!/usr/bin/env bash
# test_harden.sh - what protects the secrets cancelqd holds:
#   - allow_insecure_http with an http:// URL is said out loud: a warning in
#     --check-config's output and an insecure_http event at start (none when
#     every URL is https);
#   - the process is not dumpable (prctl PR_SET_DUMPABLE 0): no core dump,
#     no ptrace or /proc/PID/mem by another process of its user.  Seen from
#     outside as /proc/PID/environ and mem belonging to root although
#     cancelqd runs as nobody.
source "$(dirname "$0")/lib.sh"

start_redis
start_sandbox

echo "-- allow_insecure_http"
write_conf "$T/insecure.conf"
out=$("$BIN/cancelqd" -c "$T/insecure.conf" --check-config 2>&1)
check "--check-config loads the sandbox config" grep -q 'configuration OK' <<<"$out"
check_eq "--check-config warns for each http:// provider" 3 \
    "$(grep -c '^# WARNING: allow_insecure_http = yes and base_url is http://: the API token is sent in clear text' <<<"$out")"
check_eq "... in the provider's own section" "# WARNING" \
    "$(grep -A2 '^\[provider keliweb\]' <<<"$out" | grep -o '^# WARNING')"

start_daemon "$T/insecure.conf"
sleep 0.3
check_eq "cancelqd logs insecure_http at start, once per provider" 3 \
    "$(grep -c 'level=warn event=insecure_http provider=[a-z]* detail=".*sent in clear text' "$T/cancelqd.log")"
kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID"

# OAuth2 over http: the client secret is named
printf 'sandbox-secret\n' > "$T/client.secret"
{
    printf '[redis]\nport = %s\n\n' "$REDIS_PORT"
    printf '[provider intronis]\nbase_url = https://api.example.com\nallow_insecure_http = yes\n'
    printf 'token_url = %s/oauth2/token\nclient_id = c\nclient_secret_file = %s/client.secret\n' \
        "$SANDBOX" "$T"
} > "$T/oauth.conf"
out=$("$BIN/cancelqd" -c "$T/oauth.conf" --check-config 2>&1)
check "an http token_url names the client secret" \
    grep -q '^# WARNING: .*token_url is http://: the OAuth2 client secret and the tokens are sent in clear text' <<<"$out"

# allow_insecure_http = yes but every URL https: nothing goes in clear
sed -e 's|^base_url = .*|base_url = https://127.0.0.1:9|' "$T/insecure.conf" > "$T/https.conf"
out=$("$BIN/cancelqd" -c "$T/https.conf" --check-config 2>&1)
check "no warning when every URL is https" sh -c '! grep -q WARNING' <<<"$out"
start_daemon "$T/https.conf" "$T/https.log"
sleep 0.3
check "no insecure_http event when every URL is https" \
    sh -c "! grep -q 'event=insecure_http' '$T/https.log'"
kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID"

echo "-- no core dumps: the process is not dumpable"
# a directory nobody can read, with a config and tokens readable by it
N=$T/nobody
mkdir -p "$N"
chmod 0711 "$T"
chmod 0755 "$N"
write_conf "$N/c.conf"
sed -i "s|$T/\([a-z]*\)\.token|$N/\1.token|" "$N/c.conf"
cp "$T"/*.token "$N/"
chmod 0644 "$N"/*
setpriv --reuid=65534 --regid=65534 --clear-groups "$BIN/cancelqd" -c "$N/c.conf" \
    > "$N/cancelqd.log" 2>&1 &
NPID=$!
PIDS+=("$NPID")
sleep 0.5
check_eq "its uid is nobody's" 65534 "$(ps -o uid= -p "$NPID" | tr -d ' ')"
check_eq "/proc/PID/environ and mem are root's: the process is not dumpable" "0 0" \
    "$(stat -c %u "/proc/$NPID/environ") $(stat -c %u "/proc/$NPID/mem")"
enqueue_many 3 nb
check "it works as usual" wait_results 3 20
kill -TERM "$NPID"
wait "$NPID"
check "it stops cleanly" [ $? -eq 0 ]

finish
