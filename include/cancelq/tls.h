/*
 * tls.h - TLS material and verdicts (docs/design.md §4, §9): a provider
 * instance's client identity for mutual TLS, the check of a private CA
 * bundle, and which certificate check refused a connection.
 *
 * The identity (client_cert_file + client_key_file) is read whole, checked
 * with libcrypto (the certificate parses, the key is not encrypted and
 * matches it) and handed to libcurl from memory (CURLOPT_SSLCERT_BLOB,
 * CURLOPT_SSLKEY_BLOB), so the key is never opened by path during a
 * transfer and its bytes are wiped when the last holder lets go.  An
 * identity is reference-counted: the instance holds one, every request in
 * flight another, so a SIGHUP can replace it while requests still use the
 * old one.  Single-threaded, like the loop.
 *
 * Messages name files and libcrypto's reasons, never key material.
 */
#ifndef CANCELQ_TLS_H
#define CANCELQ_TLS_H

#include <stddef.h>

#include "cancelq/err.h"
#include "cancelq/request.h"

/* A CA bundle or certificate chain larger than this is refused (the whole
 * Mozilla bundle is ~220 KiB). */
#define CQ_TLS_CERT_FILE_MAX ((size_t)1024 * 1024)
/* A private key file larger than this is refused (an RSA-16384 key in PEM
 * is ~12 KiB). */
#define CQ_TLS_KEY_FILE_MAX ((size_t)64 * 1024)

/* "tls_untrusted", "tls_hostname", "tls_expired", "tls_local" (the outcome's
 * error code); "" for CQ_TLS_NONE. */
const char *cq_tls_fail_code(cq_tls_fail f);

/* "untrusted", "hostname", "expired", "local" (metric label). */
const char *cq_tls_fail_name(cq_tls_fail f);

/* What to tell an operator about f, e.g. "the provider's certificate is
 * not trusted (check ca_file)". */
const char *cq_tls_fail_hint(cq_tls_fail f);

/* Which certificate check refused a transfer: rc is its CURLcode, verify
 * its CURLINFO_SSL_VERIFYRESULT (an X509_V_ERR_* value, 0 when OpenSSL's
 * chain check passed: then a refusal is curl's host name check).
 * CQ_TLS_NONE when rc is not a certificate refusal (a handshake that
 * broke off, a cipher mismatch: transport failures like any other). */
cq_tls_fail cq_tls_fail_of(int rc, long verify);

/* Check that pem (len bytes) holds at least one PEM certificate and
 * nothing unreadable.  0 or -EINVAL with err ("tls_bad_ca"). */
int cq_tls_check_ca(const char *pem, size_t len, cq_err *err);

/* Read path (at most CQ_TLS_CERT_FILE_MAX) and check it as a CA bundle.
 * 0 or -errno with err naming the file. */
int cq_tls_check_ca_file(const char *path, cq_err *err);

/* Check a client identity: cert (PEM, the client certificate first, then
 * any intermediates) parses, key (PEM) parses without a passphrase and is
 * the certificate's key.  0 or -EINVAL with err ("tls_bad_cert",
 * "tls_bad_key", "tls_key_mismatch"). */
int cq_tls_id_check(const char *cert, size_t cert_len, const char *key, size_t key_len,
                    cq_err *err);

typedef struct cq_tls_id cq_tls_id;

/* Read and check an identity (cq_tls_id_check) from its two files.  *out
 * has one reference.  0 or -errno with err naming the file. */
int cq_tls_id_load(const char *cert_path, const char *key_path, cq_tls_id **out, cq_err *err);

/* Take another reference (returns id; NULL stays NULL). */
cq_tls_id *cq_tls_id_ref(cq_tls_id *id);

/* Drop a reference; the last one wipes the key and frees.  NULL is a
 * no-op. */
void cq_tls_id_unref(cq_tls_id *id);

/* The PEM bytes, valid while a reference is held. */
const char *cq_tls_id_cert(const cq_tls_id *id, size_t *len);
const char *cq_tls_id_key(const cq_tls_id *id, size_t *len);

#endif
