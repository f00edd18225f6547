#!/usr/bin/env bash
# test_tls.sh - cancelqd speaks TLS to providers as it does in production:
# the sandbox behind nginx over HTTPS (tlslib.sh), with a test CA made by
# openssl.  A good certificate works end to end (API token and OAuth2
# token endpoint; HTTP/2 negotiated by ALPN, and HTTP/1.1); a certificate from another CA, for another host name or
# expired is refused: the job ends `failed` at once (no retry, nothing
# sent) with error tls_untrusted / tls_hostname / tls_expired, the reason in
# the outcome's message and the log, counted in cancelq_tls_failures_total.
# Mutual TLS: client_cert_file + client_key_file (nginx
# ssl_verify_client), re-read on SIGHUP; --check-config checks that ca_file
# parses and that the key matches the certificate.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/tlslib.sh"

command -v nginx >/dev/null 2>&1 || sh "$ROOT/tools/bootstrap.sh" >/dev/null 2>&1
check "nginx and openssl are installed" command -v nginx openssl

make_certs
start_redis
start_sandbox
start_tls_proxy

printf 'sandbox-activeplatform-token\n' > "$T/ap.token"
printf 'sandbox-secret\n' > "$T/client.secret"
cp "$TLS/client.crt" "$T/mtls.crt"
cp "$TLS/client.key" "$T/mtls.key"
METRICS=$(free_port)

# ap NAME PORT [EXTRA]: an activeplatform instance over https.
ap() {
    printf '[provider %s]\nadapter = activeplatform\nbase_url = https://127.0.0.1:%s\n' "$1" "$2"
    printf 'token_file = %s/ap.token\ntimeout = 3s\nconnect_timeout = 2s\n%b\n\n' "$T" "${3:-}"
}
CA="ca_file = $TLS/ca.crt\n"
{
    printf '[redis]\nport = %s\nprefix = cq\n\n' "$REDIS_PORT"
    printf '[worker]\nid = tls1\nbackoff_base = 100ms\nbackoff_max = 500ms\nshutdown_grace = 5s\n'
    printf 'metrics_listen = 127.0.0.1:%s\n\n' "$METRICS"
    ap good "$TLS_GOOD" "$CA"
    ap good11 "$TLS_HTTP11" "$CA"
    ap nocafile "$TLS_GOOD"
    ap otherca "$TLS_OTHERCA" "$CA"
    ap wronghost "$TLS_WRONGHOST" "$CA"
    ap expired "$TLS_EXPIRED" "$CA"
    ap mtls "$TLS_MTLS" "${CA}client_cert_file = $T/mtls.crt\nclient_key_file = $T/mtls.key\n"
    ap mtls_none "$TLS_MTLS" "$CA"
    # OAuth2 over TLS, by host name (the certificate's DNS name)
    printf '[provider intronis]\nbase_url = https://localhost:%s\n' "$TLS_GOOD"
    printf 'token_url = https://localhost:%s/oauth2/token\nclient_id = sandbox-client\n' "$TLS_GOOD"
    printf 'client_secret_file = %s/client.secret\nscope = partner\n%b\n' "$T" "$CA"
    # the token endpoint's certificate is expired: no token, jobs wait
    printf '[provider intronis_badtoken]\nadapter = intronis\nbase_url = https://127.0.0.1:%s\n' "$TLS_GOOD"
    printf 'token_url = https://127.0.0.1:%s/oauth2/token\nclient_id = sandbox-client\n' "$TLS_EXPIRED"
    printf 'client_secret_file = %s/client.secret\nscope = partner\n%b\n' "$T" "$CA"
} > "$T/tls.conf"

echo "-- --check-config"
out=$("$BIN/cancelqd" -c "$T/tls.conf" --check-config 2>&1)
check "the config with ca_file and a client certificate loads" [ $? -eq 0 ]
check "--check-config says the client certificate and key match" \
    grep -q '^# mutual TLS: client certificate and key' <<<"$out"
check "--check-config names the key file, never its content" \
    sh -c "grep -qF 'client_key_file = $T/mtls.key' && ! grep -q 'PRIVATE KEY'" <<<"$out"

# bad_conf EXTRA...: the error --check-config gives for a one-provider config.
bad_conf() {
    { printf '[redis]\nport = %s\n\n' "$REDIS_PORT"; ap p "$TLS_GOOD" "$1"; } > "$T/bad.conf"
    "$BIN/cancelqd" -c "$T/bad.conf" --check-config 2>&1
}
openssl pkey -in "$TLS/client.key" -aes256 -passout pass:secret -out "$T/enc.key" 2>/dev/null
printf 'not a certificate\n' > "$T/junk.pem"
out=$(bad_conf "client_cert_file = $TLS/client.crt\nclient_key_file = $TLS/client-otherca.key\n")
check "a key that is not the certificate's is refused, naming both files" \
    sh -c "grep -q 'client_key_file: .*client.crt.*client-otherca.key.*does not belong to the certificate'" <<<"$out"
out=$(bad_conf "client_cert_file = $TLS/client.crt\nclient_key_file = $T/enc.key\n")
check "an encrypted key is refused (no passphrase prompt)" \
    grep -q 'encrypted keys are not supported' <<<"$out"
out=$(bad_conf "client_cert_file = $T/junk.pem\nclient_key_file = $TLS/client.key\n")
check "a certificate file that is not PEM is refused" grep -q 'not a PEM certificate' <<<"$out"
out=$(bad_conf "client_cert_file = $TLS/client.crt\n")
check "client_cert_file without client_key_file is refused" \
    grep -q 'client_cert_file: set without client_key_file' <<<"$out"
out=$(bad_conf "ca_file = $T/junk.pem\n")
check "a ca_file that is not PEM is refused" \
    grep -q "ca_file: '$T/junk.pem': not a PEM certificate bundle" <<<"$out"
out=$(bad_conf "ca_file = $T/missing.pem\n")
check "a missing ca_file is refused" grep -q "ca_file: cannot read '$T/missing.pem'" <<<"$out"

echo "-- jobs over https"
start_daemon "$T/tls.conf"
job() { printf '{"id":"%s","provider":"%s","action":"delete_subscription","params":{"reseller_id":7,"subscription_id":%s}}' "$1" "$2" "$3"; }
n=0
for p in good nocafile otherca wronghost expired mtls mtls_none good11; do
    for i in 1 2; do
        n=$((n + 1))
        enqueue "$(job "$p-$i" "$p" $((100 + n)))"
    done
done
enqueue '{"id":"in-1","provider":"intronis","action":"cancel_partner","params":{"username":"tls-a","reason_id":1,"reason_note":""}}' \
        '{"id":"in-2","provider":"intronis","action":"cancel_partner","params":{"username":"tls-b","reason_id":1,"reason_note":""}}' \
        '{"id":"bt-1","provider":"intronis_badtoken","action":"cancel_partner","params":{"username":"tls-c","reason_id":1,"reason_note":""}}'
check "18 jobs end" wait_results 18 30

for id in good-1 good-2 mtls-1 mtls-2 in-1 in-2 good11-1 good11-2; do
    check_eq "$id succeeded over https" succeeded "$(outcome "$id" status)"
done
check_eq "the sandbox saw the good call through nginx" 1 "$(target_calls activeplatform:7/101)"
check "nginx served HTTP/2 (ALPN) ..." grep -q '/subscriptions/101/delete_operation HTTP/2.0" 200' \
    "$T/nginx/access.log"
check "... and HTTP/1.1 where it offers nothing else" \
    grep -q '/subscriptions/115/delete_operation HTTP/1.1" 200' "$T/nginx/access.log"

# refused NAME ERROR TEXT: both jobs of NAME ended failed with ERROR at the
# first attempt, TEXT in the message, nothing reached the sandbox.
refused() {
    local p=$1 e=$2 text=$3 i
    for i in 1 2; do
        check_eq "$p-$i ends failed" failed "$(outcome "$p-$i" status)"
        check_eq "$p-$i error is $e" "$e" "$(outcome "$p-$i" error)"
        check_eq "$p-$i: one attempt, no retry" 1 "$(outcome "$p-$i" attempts)"
        check_eq "$p-$i: no HTTP answer" 0 "$(outcome "$p-$i" http_status)"
    done
    check "$p: the message names the cause ($text)" grep -q "$text" <<<"$(outcome "$p-1" message)"
    check "$p: logged (job_done error=$e)" grep -q "event=job_done id=$p-1 .*error=$e" "$T/cancelqd.log"
    check "$p: no retry logged" sh -c "! grep -q 'event=job_retry id=$p-' '$T/cancelqd.log'"
}
refused nocafile tls_untrusted 'not signed by a trusted CA.*unable to get local issuer certificate'
refused otherca tls_untrusted 'not signed by a trusted CA.*unable to get local issuer certificate'
refused wronghost tls_hostname 'for another host name.*wrong.example.com\|for another host name.*127.0.0.1'
refused expired tls_expired 'expired or not yet valid.*certificate has expired'
check_eq "refused certificates: no call reached the sandbox" "0 0 0 0" \
    "$(for s in 103 105 107 109; do target_calls "activeplatform:7/$s"; done | tr '\n' ' ' | sed 's/ $//')"
check_eq "the refused jobs are dead letters" 8 \
    "$(rraw LRANGE '{cq}:dead' 0 -1 | jq -r 'select(.error | startswith("tls_")) | .error' | wc -l)"

for i in 1 2; do
    check_eq "mtls_none-$i (no client certificate) is refused by the server" \
        "failed 400" "$(outcome "mtls_none-$i" status) $(outcome "mtls_none-$i" http_status)"
done

echo "-- metrics"
page=$(curl -s "http://127.0.0.1:$METRICS/metrics")
for want in 'provider="nocafile",reason="untrusted"} 2' 'provider="otherca",reason="untrusted"} 2' \
            'provider="wronghost",reason="hostname"} 2' 'provider="expired",reason="expired"} 2' \
            'provider="good",reason="untrusted"} 0'; do
    check "cancelq_tls_failures_total{$want" grep -qF "cancelq_tls_failures_total{$want" <<<"$page"
done

echo "-- a token endpoint with a refused certificate"
check "token_mint_failed names tls_expired" \
    grep -q 'event=token_mint_failed provider=intronis_badtoken .*error="tls_expired: ' "$T/cancelqd.log"
check "counted for the instance" \
    grep -qE 'cancelq_tls_failures_total\{provider="intronis_badtoken",reason="expired"\} [1-9]' <<<"$page"
check_eq "its job waits (no attempt spent, not ended)" "" "$(outcome bt-1 status)"

echo "-- SIGHUP re-reads the client certificate"
cp "$TLS/client-otherca.crt" "$T/mtls.crt"
cp "$TLS/client-otherca.key" "$T/mtls.key"
kill -HUP "$DAEMON_PID"
sleep 0.5
enqueue "$(job mtls-3 mtls 900)"
check "the job after the reload ends" wait_results 19 20
check_eq "the server refuses the other CA's client certificate" "failed 400" \
    "$(outcome mtls-3 status) $(outcome mtls-3 http_status)"
check "nginx saw the new client certificate" \
    sh -c "grep -q 'client SSL certificate verify error' '$T/nginx/error.log'"

kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID"
check "cancelqd stops cleanly" [ $? -eq 0 ]
check "no key material in the log" sh -c "! grep -q 'PRIVATE KEY' '$T/cancelqd.log'"

finish
