/*
 * tls.c - see tls.h.  Parsing and the key check use libcrypto (OpenSSL 3,
 * which libcurl links already); no handshake happens here.
 */
#include "cancelq/tls.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "cancelq/config.h"

struct cq_tls_id {
    unsigned refs;
    char *cert; /* PEM, NUL-terminated */
    size_t cert_len;
    char *key; /* PEM, a secret: wiped before free */
    size_t key_len;
};

/* --- certificate refusals -------------------------------------------------- */

const char *cq_tls_fail_code(cq_tls_fail f)
{
    static const char *const codes[CQ_TLS_FAIL_COUNT] = {"", "tls_untrusted", "tls_hostname",
                                                         "tls_expired", "tls_local"};

    return (unsigned)f < CQ_TLS_FAIL_COUNT ? codes[f] : "tls_local";
}

const char *cq_tls_fail_name(cq_tls_fail f)
{
    static const char *const names[CQ_TLS_FAIL_COUNT] = {"", "untrusted", "hostname", "expired",
                                                         "local"};

    return (unsigned)f < CQ_TLS_FAIL_COUNT ? names[f] : "local";
}

const char *cq_tls_fail_hint(cq_tls_fail f)
{
    switch (f) {
    case CQ_TLS_UNTRUSTED:
        return "the provider's certificate is not signed by a trusted CA (check ca_file)";
    case CQ_TLS_HOSTNAME:
        return "the provider's certificate is for another host name";
    case CQ_TLS_EXPIRED:
        return "the provider's certificate is expired or not yet valid";
    case CQ_TLS_LOCAL:
        return "our ca_file or client certificate cannot be used";
    default:
        return "TLS failure";
    }
}

cq_tls_fail cq_tls_fail_of(int rc, long verify)
{
    switch (rc) {
    case CURLE_PEER_FAILED_VERIFICATION:
        switch (verify) {
        /* curl (7.88, OpenSSL backend) sets the verify result to
         * !X509_V_OK (1, X509_V_ERR_UNSPECIFIED) when the handshake starts
         * and to OpenSSL's chain result only once its own host name check
         * passed: a refusal with 0 or 1 is that host name check (OpenSSL
         * reports a failed chain with a specific X509_V_ERR_*). */
        case X509_V_OK:
        case X509_V_ERR_UNSPECIFIED:
        case X509_V_ERR_HOSTNAME_MISMATCH:
        case X509_V_ERR_IP_ADDRESS_MISMATCH:
            return CQ_TLS_HOSTNAME;
        case X509_V_ERR_CERT_HAS_EXPIRED:
        case X509_V_ERR_CERT_NOT_YET_VALID:
        case X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD:
        case X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD:
            return CQ_TLS_EXPIRED;
        default:
            return CQ_TLS_UNTRUSTED;
        }
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        return CQ_TLS_UNTRUSTED;
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CRL_BADFILE:
        return CQ_TLS_LOCAL;
    default:
        return CQ_TLS_NONE;
    }
}

/* --- parsing ------------------------------------------------------------- */

/* libcrypto's last reason, for a message; the queue is emptied. */
static const char *crypto_reason(char *buf, size_t size)
{
    unsigned long e = ERR_peek_last_error();

    if (e == 0)
        snprintf(buf, size, "no PEM data");
    else
        ERR_error_string_n(e, buf, size);
    ERR_clear_error();
    return buf;
}

/* pem_password_cb that refuses: an encrypted key must not make libcrypto
 * prompt on the terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return 0;
}

/* The PEM certificates in pem: how many, and the first (caller frees) when
 * first is not NULL.  -EINVAL when there is none or something after them
 * is not a certificate. */
static int read_certs(const char *pem, size_t len, X509 **first, int *count)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    X509 *x;
    unsigned long e;

    *count = 0;
    if (first != NULL)
        *first = NULL;
    if (bio == NULL || len > (size_t)INT_MAX) {
        BIO_free(bio);
        return -ENOMEM;
    }
    while ((x = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL)) != NULL) {
        if (first != NULL && *first == NULL)
            *first = x;
        else
            X509_free(x);
        (*count)++;
    }
    BIO_free(bio);
    /* the loop ends on "no start line" at the end of the data; anything
     * else is a broken certificate */
    e = ERR_peek_last_error();
    if (*count > 0 && ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)
        ERR_clear_error();
    if (*count == 0 || ERR_peek_last_error() != 0) {
        if (first != NULL) {
            X509_free(*first);
            *first = NULL;
        }
        return -EINVAL;
    }
    return 0;
}

int cq_tls_check_ca(const char *pem, size_t len, cq_err *err)
{
    char why[256];
    int n = 0, rc;

    ERR_clear_error();
    rc = read_certs(pem, len, NULL, &n);
    if (rc == -ENOMEM)
        return cq_err_set(err, rc, "no_memory", "out of memory");
    if (rc != 0)
        return cq_err_set(err, -EINVAL, "tls_bad_ca", "not a PEM certificate bundle: %s",
                          crypto_reason(why, sizeof(why)));
    return 0;
}

int cq_tls_check_ca_file(const char *path, cq_err *err)
{
    char *pem = NULL;
    size_t len = 0;
    cq_err e;
    int rc;

    cq_err_clear(&e);
    rc = cq_secret_read_all(path, CQ_TLS_CERT_FILE_MAX, &pem, &len, err);
    if (rc != 0)
        return rc;
    rc = cq_tls_check_ca(pem, len, &e);
    if (rc != 0)
        cq_err_set(err, rc, e.code, "'%s': %s", path, e.msg);
    cq_secret_free(pem);
    return rc;
}

int cq_tls_id_check(const char *cert, size_t cert_len, const char *key, size_t key_len, cq_err *err)
{
    char why[256];
    X509 *x = NULL;
    EVP_PKEY *pk = NULL;
    BIO *bio = NULL;
    int n = 0, rc;

    ERR_clear_error();
    rc = read_certs(cert, cert_len, &x, &n);
    if (rc == -ENOMEM)
        return cq_err_set(err, rc, "no_memory", "out of memory");
    if (rc != 0)
        return cq_err_set(err, -EINVAL, "tls_bad_cert", "not a PEM certificate: %s",
                          crypto_reason(why, sizeof(why)));
    if (key_len > (size_t)INT_MAX || (bio = BIO_new_mem_buf(key, (int)key_len)) == NULL) {
        rc = cq_err_set(err, -ENOMEM, "no_memory", "out of memory");
        goto out;
    }
    pk = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    if (pk == NULL) {
        rc = cq_err_set(err, -EINVAL, "tls_bad_key",
                        "not an unencrypted PEM private key (encrypted keys are not supported): "
                        "%s",
                        crypto_reason(why, sizeof(why)));
        goto out;
    }
    if (X509_check_private_key(x, pk) != 1) {
        ERR_clear_error();
        rc = cq_err_set(err, -EINVAL, "tls_key_mismatch",
                        "the private key does not belong to the certificate");
        goto out;
    }
    rc = 0;
out:
    EVP_PKEY_free(pk);
    BIO_free(bio);
    X509_free(x);
    return rc;
}

/* --- identities ---------------------------------------------------------- */

int cq_tls_id_load(const char *cert_path, const char *key_path, cq_tls_id **out, cq_err *err)
{
    cq_tls_id *id;
    cq_err e;
    int rc;

    *out = NULL;
    id = calloc(1, sizeof(*id));
    if (id == NULL)
        return cq_err_set(err, -ENOMEM, "no_memory", "out of memory");
    id->refs = 1;
    rc = cq_secret_read_all(cert_path, CQ_TLS_CERT_FILE_MAX, &id->cert, &id->cert_len, err);
    if (rc == 0)
        rc = cq_secret_read_all(key_path, CQ_TLS_KEY_FILE_MAX, &id->key, &id->key_len, err);
    if (rc != 0)
        goto fail;
    cq_err_clear(&e);
    rc = cq_tls_id_check(id->cert, id->cert_len, id->key, id->key_len, &e);
    if (rc != 0) {
        cq_err_set(err, rc, e.code, "'%s' / '%s': %s", cert_path, key_path, e.msg);
        goto fail;
    }
    *out = id;
    return 0;
fail:
    cq_tls_id_unref(id);
    return rc;
}

cq_tls_id *cq_tls_id_ref(cq_tls_id *id)
{
    if (id != NULL)
        id->refs++;
    return id;
}

void cq_tls_id_unref(cq_tls_id *id)
{
    if (id == NULL || --id->refs > 0)
        return;
    cq_secret_free(id->key);
    free(id->cert);
    free(id);
}

const char *cq_tls_id_cert(const cq_tls_id *id, size_t *len)
{
    *len = id->cert_len;
    return id->cert;
}

const char *cq_tls_id_key(const cq_tls_id *id, size_t *len)
{
    *len = id->key_len;
    return id->key;
}
