#!/usr/bin/env bash
# test_proxy.sh - cancelqd uses a proxy only when the config says so.
# libcurl alone would follow http_proxy / https_proxy / ALL_PROXY from the
# environment; cancelqd sets CURLOPT_PROXY "" (and CURLOPT_NOPROXY) on every
# request unless [provider] proxy = URL is set.  With proxy set, calls and
# token requests go through it (an HTTP CONNECT proxy, connectproxy.py),
# except to hosts in no_proxy.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/tlslib.sh"

command -v nginx >/dev/null 2>&1 || sh "$ROOT/tools/bootstrap.sh" >/dev/null 2>&1
make_certs
start_redis
start_sandbox
start_tls_proxy

# start_connect_proxy NAME [--refuse]: sets PROXY_PORT; its log is $T/NAME.log.
start_connect_proxy() {
    PROXY_PORT=$(free_port)
    : > "$T/$1.log"
    python3 "$ROOT/tests/integration/connectproxy.py" "$PROXY_PORT" "$T/$1.log" "${@:2}" \
        > "$T/$1.out" 2>&1 &
    PIDS+=($!)
    wait_for bash -c "echo > /dev/tcp/127.0.0.1/$PROXY_PORT" ||
        { echo "connectproxy did not start"; cat "$T/$1.out"; exit 1; }
}
# proxy_requests NAME: the proxy requests (request lines) NAME's log holds.
# Port probes (ours, or another test's free_port on this host) send no
# request line and are left out.
proxy_requests() { grep -h 'HTTP/1\.[01]$' "$T/$1.log" | tr '\n' ' '; }
start_connect_proxy refusing --refuse
REFUSING=$PROXY_PORT
start_connect_proxy forwarding
FORWARDING=$PROXY_PORT

printf 'sandbox-activeplatform-token\n' > "$T/ap.token"
printf 'sandbox-secret\n' > "$T/client.secret"

# conf FILE PREFIX EXTRA: activeplatform over https and over plain http,
# intronis (OAuth2) over https, each with EXTRA.
conf() {
    {
        printf '[redis]\nport = %s\nprefix = %s\n\n' "$REDIS_PORT" "$2"
        printf '[worker]\nid = %s\nbackoff_base = 100ms\nbackoff_max = 500ms\n\n' "$2"
        printf '[provider aps]\nadapter = activeplatform\nbase_url = https://127.0.0.1:%s\n' "$TLS_GOOD"
        printf 'ca_file = %s/ca.crt\ntoken_file = %s/ap.token\ntimeout = 3s\n%b\n\n' "$TLS" "$T" "$3"
        printf '[provider aph]\nadapter = activeplatform\nbase_url = %s\n' "$SANDBOX"
        printf 'allow_insecure_http = yes\ntoken_file = %s/ap.token\ntimeout = 3s\n%b\n\n' "$T" "$3"
        printf '[provider intronis]\nbase_url = https://127.0.0.1:%s\n' "$TLS_GOOD"
        printf 'token_url = https://127.0.0.1:%s/oauth2/token\nclient_id = sandbox-client\n' "$TLS_GOOD"
        printf 'client_secret_file = %s/client.secret\nscope = partner\nca_file = %s/ca.crt\n%b\n' \
            "$T" "$TLS" "$3"
    } > "$1"
}
# jobs PREFIX TAG BASE: one job per provider, ids TAG-aps, TAG-aph, TAG-in.
jobs() {
    local P=$1 t=$2 b=$3
    PREFIX=$P enqueue \
        "{\"id\":\"$t-aps\",\"provider\":\"aps\",\"action\":\"delete_subscription\",\"params\":{\"reseller_id\":8,\"subscription_id\":$b}}" \
        "{\"id\":\"$t-aph\",\"provider\":\"aph\",\"action\":\"delete_subscription\",\"params\":{\"reseller_id\":8,\"subscription_id\":$((b + 1))}}" \
        "{\"id\":\"$t-in\",\"provider\":\"intronis\",\"action\":\"cancel_partner\",\"params\":{\"username\":\"$t-user\",\"reason_id\":1,\"reason_note\":\"\"}}"
}
wait_prefixed() { PREFIX=$1 wait_results "$2" 20; }
statuses() { for s in aps aph in; do PREFIX=$1 outcome "$2-$s" status; done | tr '\n' ' ' | sed 's/ $//'; }
# run in the background as `all_proxy_env URL cmd... &`: exec, so that $! is
# the command itself (a function run with & is a subshell of its own)
all_proxy_env() {
    exec env http_proxy="$1" HTTP_PROXY="$1" https_proxy="$1" HTTPS_PROXY="$1" ALL_PROXY="$1" \
        all_proxy="$1" NO_PROXY= no_proxy= "${@:2}"
}

echo "-- the environment's proxies are ignored"
conf "$T/env.conf" env ""
all_proxy_env "http://127.0.0.1:$REFUSING" "$BIN/cancelqd" -c "$T/env.conf" > "$T/env.log" 2>&1 &
D=$!
PIDS+=("$D")
SCHEMA_PREFIXES+=(env)
jobs env env 10
check "3 jobs end" wait_prefixed env 3
check_eq "https, http and OAuth2 jobs succeed directly" "succeeded succeeded succeeded" \
    "$(statuses env env)"
check_eq "no request reached the proxy named in http(s)_proxy / ALL_PROXY" "" \
    "$(proxy_requests refusing)"
kill -TERM "$D"; wait "$D"

echo "-- proxy = URL"
conf "$T/proxy.conf" via "proxy = http://127.0.0.1:$FORWARDING"
"$BIN/cancelqd" -c "$T/proxy.conf" > "$T/via.log" 2>&1 &
D=$!
PIDS+=("$D")
SCHEMA_PREFIXES+=(via)
jobs via via 20
check "3 jobs end" wait_prefixed via 3
check_eq "https jobs (API token, OAuth2) succeed through the proxy" "succeeded succeeded" \
    "$(PREFIX=via outcome via-aps status) $(PREFIX=via outcome via-in status)"
check "the https calls and the token request tunnelled through it (CONNECT)" \
    grep -q "^CONNECT 127.0.0.1:$TLS_GOOD\$" "$T/forwarding.log"
# connectproxy.py only tunnels: a plain http request sent to it as a proxy
# request (absolute URI) is logged and refused with 405
check "the plain http instance asked the proxy too (absolute-URI request)" \
    grep -q "^BAD POST http://127.0.0.1:$SANDBOX_PORT/" "$T/forwarding.log"
check_eq "... and got the proxy's answer" "failed 405" \
    "$(PREFIX=via outcome via-aph status) $(PREFIX=via outcome via-aph http_status)"
kill -TERM "$D"; wait "$D"

echo "-- no_proxy"
: > "$T/refusing.log"
conf "$T/noproxy.conf" np "proxy = http://127.0.0.1:$REFUSING\nno_proxy = 127.0.0.1"
all_proxy_env "http://127.0.0.1:$FORWARDING" "$BIN/cancelqd" -c "$T/noproxy.conf" > "$T/np.log" 2>&1 &
D=$!
PIDS+=("$D")
SCHEMA_PREFIXES+=(np)
jobs np np 30
check "3 jobs end" wait_prefixed np 3
check_eq "hosts in no_proxy are reached directly" "succeeded succeeded succeeded" "$(statuses np np)"
check_eq "the proxy saw no request" "" "$(proxy_requests refusing)"
kill -TERM "$D"; wait "$D"

echo "-- config checks"
# bad PROVIDER_LINES: the --check-config error.
bad() {
    printf '[redis]\nport = %s\n\n[provider x]\nadapter = activeplatform\nbase_url = https://a.example\ntoken_file = %s/ap.token\n%b\n' \
        "$REDIS_PORT" "$T" "$1" > "$T/bad.conf"
    "$BIN/cancelqd" -c "$T/bad.conf" --check-config 2>&1
}
check "a proxy with a password is refused" \
    grep -q 'proxy: proxy must not contain a user name or password' <<<"$(bad 'proxy = http://u:p@proxy:3128')"
check "a proxy with an unknown scheme is refused" \
    grep -q 'scheme must be http, https, socks4' <<<"$(bad 'proxy = ftp://proxy:21')"
check "no_proxy without proxy is refused" \
    grep -q 'no_proxy: set without proxy' <<<"$(bad 'no_proxy = example.com')"
out=$(bad 'proxy = socks5h://127.0.0.1:1080\nno_proxy = localhost, .internal')
check "socks5h with a no_proxy list loads" grep -q 'configuration OK' <<<"$out"
check "--check-config shows the proxy" grep -q '^proxy = socks5h://127.0.0.1:1080$' <<<"$out"

finish
