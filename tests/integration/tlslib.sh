#!/usr/bin/env bash
# tlslib.sh - HTTPS in front of the sandbox, for the TLS and proxy tests
# (sourced after lib.sh).
#
# make_certs writes a test PKI into $TLS with openssl: a CA, another CA,
# server certificates signed by the CA (good: 127.0.0.1 and localhost;
# wronghost: only wrong.example.com; expired: valid in January 2020, made
# with `openssl ca -startdate/-enddate`), one signed by the other CA, and
# client certificates for mutual TLS (one from each CA).
#
# start_tls_proxy puts nginx in front of the sandbox, one listener per
# server certificate (ports in TLS_GOOD, TLS_OTHERCA, TLS_WRONGHOST,
# TLS_EXPIRED), one that demands a client certificate from the CA
# (TLS_MTLS, ssl_verify_client on), all offering HTTP/2, and one with the
# good certificate that speaks only HTTP/1.1 (TLS_HTTP11).  Why nginx rather than stunnel4: it is
# the kind of TLS terminator providers run, one process serves every
# listener with its own certificate, and a refused client certificate gets
# the HTTP answer a real provider gives (400) instead of a torn handshake.
# nginx runs as one foreground process (master_process off) with every
# path inside $T; the sandbox behind it is plain HTTP.

TLS=$T/tls

# tls_cnf: the openssl config every command below uses (no system openssl.cnf).
tls_cnf() {
    cat > "$TLS/openssl.cnf" <<EOF
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server_good]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
[server_wrong]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:wrong.example.com
[client]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
[ca]
default_ca = test_ca
[test_ca]
dir = $TLS/ca-db
database = \$dir/index.txt
new_certs_dir = \$dir/new
serial = \$dir/serial
default_md = sha256
policy = any
unique_subject = no
[any]
commonName = supplied
EOF
}

# new_ca NAME SUBJECT: $TLS/NAME.crt and NAME.key, a self-signed CA.
new_ca() {
    openssl req -config "$TLS/openssl.cnf" -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
        -nodes -keyout "$TLS/$1.key" -out "$TLS/$1.crt" -days 30 -subj "/CN=$2" \
        -extensions ca_ext 2>> "$TLS/openssl.log"
}

# new_cert NAME CA EXTENSIONS CN [openssl ca args...]: $TLS/NAME.crt and
# NAME.key signed by CA (30 days unless -startdate/-enddate are given).
new_cert() {
    local name=$1 ca=$2 ext=$3 cn=$4
    shift 4
    [ $# -gt 0 ] || set -- -days 30
    openssl req -config "$TLS/openssl.cnf" -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
        -nodes -keyout "$TLS/$name.key" -out "$TLS/$name.csr" -subj "/CN=$cn" 2>> "$TLS/openssl.log" &&
    openssl ca -config "$TLS/openssl.cnf" -batch -notext -cert "$TLS/$ca.crt" \
        -keyfile "$TLS/$ca.key" -in "$TLS/$name.csr" -out "$TLS/$name.crt" \
        -extfile "$TLS/openssl.cnf" -extensions "$ext" "$@" 2>> "$TLS/openssl.log"
}

make_certs() {
    mkdir -p "$TLS/ca-db/new"
    : > "$TLS/ca-db/index.txt"
    echo 1000 > "$TLS/ca-db/serial"
    tls_cnf
    new_ca ca "cancelq test CA" &&
    new_ca otherca "some other CA" &&
    new_cert good ca server_good localhost &&
    new_cert wronghost ca server_wrong wrong.example.com &&
    new_cert expired ca server_good localhost -startdate 20200101000000Z -enddate 20200201000000Z &&
    new_cert otherca-server otherca server_good localhost &&
    new_cert client ca client cancelq-worker &&
    new_cert client-otherca otherca client cancelq-worker ||
        { echo "openssl failed:"; tail -5 "$TLS/openssl.log"; exit 1; }
}

# tls_server PORT CERT [EXTRA] [LISTEN]: one nginx server block; LISTEN
# defaults to "ssl http2" (libcurl then speaks HTTP/2, as with most
# providers' front ends).
tls_server() {
    cat <<EOF
    server {
        listen 127.0.0.1:$1 ${4:-ssl http2};
        ssl_certificate $TLS/$2.crt;
        ssl_certificate_key $TLS/$2.key;
        ${3:-}
        location / { proxy_pass http://sandbox; }
    }
EOF
}

# start_tls_proxy: nginx in front of $SANDBOX_PORT; sets the TLS_* ports.
start_tls_proxy() {
    local n=$T/nginx
    mkdir -p "$n/tmp"
    TLS_GOOD=$(free_port) TLS_OTHERCA=$(free_port) TLS_WRONGHOST=$(free_port)
    TLS_EXPIRED=$(free_port) TLS_MTLS=$(free_port) TLS_HTTP11=$(free_port)
    cat > "$n/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $n/nginx.pid;
error_log $n/error.log info;
events { worker_connections 512; }
http {
    access_log $n/access.log;
    client_body_temp_path $n/tmp/body;
    proxy_temp_path $n/tmp/proxy;
    fastcgi_temp_path $n/tmp/fastcgi;
    uwsgi_temp_path $n/tmp/uwsgi;
    scgi_temp_path $n/tmp/scgi;
    ssl_protocols TLSv1.2 TLSv1.3;
    upstream sandbox { server 127.0.0.1:$SANDBOX_PORT; keepalive 32; }
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host \$http_host;
    proxy_redirect off;
    proxy_buffering off;
$(tls_server "$TLS_GOOD" good)
$(tls_server "$TLS_OTHERCA" otherca-server)
$(tls_server "$TLS_WRONGHOST" wronghost)
$(tls_server "$TLS_EXPIRED" expired)
$(tls_server "$TLS_MTLS" good "ssl_verify_client on; ssl_client_certificate $TLS/ca.crt;")
$(tls_server "$TLS_HTTP11" good "" ssl)
}
EOF
    nginx -p "$n/" -c "$n/nginx.conf" -e "$n/error.log" > "$n/stdout.log" 2>&1 &
    NGINX_PID=$!
    PIDS+=("$NGINX_PID")
    wait_for curl -sf --cacert "$TLS/ca.crt" "https://127.0.0.1:$TLS_GOOD/_sandbox/stats" ||
        { echo "nginx did not start"; tail -5 "$n/error.log"; exit 1; }
}
