/*
 * test_tls.c - certificate refusals and TLS material (tls.c), and what the
 * rest makes of a refusal: every adapter's classifiers end the job FAILED
 * with the reason's code (adapter.c), also after a status lookup
 * (policy.c).  Certificates and keys are made here with libcrypto, so no
 * key sits in the tree.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "cancelq/adapter.h"
#include "cancelq/policy.h"
#include "cancelq/tls.h"

/* --- making PEM ------------------------------------------------------------ */

/* bio's content as a heap string. */
static char *bio_text(BIO *bio)
{
    char *data = NULL, *s;
    long n = BIO_get_mem_data(bio, &data);

    s = malloc((size_t)n + 1);
    assert_non_null(s);
    memcpy(s, data, (size_t)n);
    s[n] = '\0';
    BIO_free(bio);
    return s;
}

/* A self-signed certificate for key, as PEM. */
static char *cert_pem(EVP_PKEY *key, const char *cn)
{
    X509 *x = X509_new();
    X509_NAME *name;
    BIO *bio = BIO_new(BIO_s_mem());

    assert_non_null(x);
    assert_int_equal(X509_set_version(x, 2), 1);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    assert_int_equal(X509_set_pubkey(x, key), 1);
    name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, name);
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    assert_int_equal(PEM_write_bio_X509(bio, x), 1);
    X509_free(x);
    return bio_text(bio);
}

/* key as PEM, encrypted with "pw" when asked. */
static char *key_pem(EVP_PKEY *key, bool encrypted)
{
    BIO *bio = BIO_new(BIO_s_mem());

    assert_int_equal(PEM_write_bio_PrivateKey(bio, key, encrypted ? EVP_aes_256_cbc() : NULL,
                                              (unsigned char *)"pw", 2, NULL, NULL),
                     1);
    return bio_text(bio);
}

typedef struct fixture {
    EVP_PKEY *k1, *k2;
    char *cert1, *key1, *cert2, *key2, *key1_enc;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));

    f->k1 = EVP_EC_gen("P-256");
    f->k2 = EVP_EC_gen("P-256");
    assert_non_null(f->k1);
    assert_non_null(f->k2);
    f->cert1 = cert_pem(f->k1, "one");
    f->key1 = key_pem(f->k1, false);
    f->cert2 = cert_pem(f->k2, "two");
    f->key2 = key_pem(f->k2, false);
    f->key1_enc = key_pem(f->k1, true);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;

    EVP_PKEY_free(f->k1);
    EVP_PKEY_free(f->k2);
    free(f->cert1);
    free(f->key1);
    free(f->cert2);
    free(f->key2);
    free(f->key1_enc);
    free(f);
    return 0;
}

/* --- refusals ------------------------------------------------------------- */

static void test_fail_of(void **state)
{
    (void)state;
    /* curl's host name check: verify result 0, or its initial !X509_V_OK */
    assert_int_equal(cq_tls_fail_of(CURLE_PEER_FAILED_VERIFICATION, X509_V_OK), CQ_TLS_HOSTNAME);
    assert_int_equal(cq_tls_fail_of(CURLE_PEER_FAILED_VERIFICATION, 1), CQ_TLS_HOSTNAME);
    assert_int_equal(cq_tls_fail_of(CURLE_PEER_FAILED_VERIFICATION, X509_V_ERR_HOSTNAME_MISMATCH),
                     CQ_TLS_HOSTNAME);
    assert_int_equal(cq_tls_fail_of(CURLE_PEER_FAILED_VERIFICATION, X509_V_ERR_CERT_HAS_EXPIRED),
                     CQ_TLS_EXPIRED);
    assert_int_equal(cq_tls_fail_of(CURLE_PEER_FAILED_VERIFICATION, X509_V_ERR_CERT_NOT_YET_VALID),
                     CQ_TLS_EXPIRED);
    assert_int_equal(cq_tls_fail_of(CURLE_PEER_FAILED_VERIFICATION,
                                    X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY),
                     CQ_TLS_UNTRUSTED);
    assert_int_equal(
        cq_tls_fail_of(CURLE_PEER_FAILED_VERIFICATION, X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT),
        CQ_TLS_UNTRUSTED);
    assert_int_equal(cq_tls_fail_of(CURLE_SSL_CACERT_BADFILE, 0), CQ_TLS_LOCAL);
    assert_int_equal(cq_tls_fail_of(CURLE_SSL_CERTPROBLEM, 0), CQ_TLS_LOCAL);
    /* a handshake that broke off is a transport failure like any other */
    assert_int_equal(cq_tls_fail_of(CURLE_SSL_CONNECT_ERROR, 0), CQ_TLS_NONE);
    assert_int_equal(cq_tls_fail_of(CURLE_COULDNT_CONNECT, 0), CQ_TLS_NONE);
    assert_int_equal(cq_tls_fail_of(CURLE_OK, 0), CQ_TLS_NONE);
    assert_string_equal(cq_tls_fail_code(CQ_TLS_UNTRUSTED), "tls_untrusted");
    assert_string_equal(cq_tls_fail_code(CQ_TLS_HOSTNAME), "tls_hostname");
    assert_string_equal(cq_tls_fail_code(CQ_TLS_EXPIRED), "tls_expired");
    assert_string_equal(cq_tls_fail_code(CQ_TLS_LOCAL), "tls_local");
    assert_string_equal(cq_tls_fail_name(CQ_TLS_EXPIRED), "expired");
}

/* --- CA bundles and identities --------------------------------------------- */

static void test_check_ca(void **state)
{
    fixture *f = *state;
    char both[8192];
    cq_err err;

    snprintf(both, sizeof(both), "%s%s", f->cert1, f->cert2);
    assert_int_equal(cq_tls_check_ca(both, strlen(both), &err), 0);
    assert_int_equal(cq_tls_check_ca("junk\n", 5, &err), -EINVAL);
    assert_string_equal(err.code, "tls_bad_ca");
    assert_int_equal(cq_tls_check_ca(f->key1, strlen(f->key1), &err), -EINVAL);
    /* a broken certificate after a good one */
    snprintf(both, sizeof(both), "%s-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
             f->cert1);
    assert_int_equal(cq_tls_check_ca(both, strlen(both), &err), -EINVAL);
}

static void test_id_check(void **state)
{
    fixture *f = *state;
    cq_err err;

    assert_int_equal(cq_tls_id_check(f->cert1, strlen(f->cert1), f->key1, strlen(f->key1), &err),
                     0);
    assert_int_equal(cq_tls_id_check(f->cert1, strlen(f->cert1), f->key2, strlen(f->key2), &err),
                     -EINVAL);
    assert_string_equal(err.code, "tls_key_mismatch");
    /* no passphrase prompt: an encrypted key is refused */
    assert_int_equal(
        cq_tls_id_check(f->cert1, strlen(f->cert1), f->key1_enc, strlen(f->key1_enc), &err),
        -EINVAL);
    assert_string_equal(err.code, "tls_bad_key");
    assert_non_null(strstr(err.msg, "encrypted keys are not supported"));
    assert_int_equal(cq_tls_id_check(f->key1, strlen(f->key1), f->key1, strlen(f->key1), &err),
                     -EINVAL);
    assert_string_equal(err.code, "tls_bad_cert");
    /* messages never quote the key */
    assert_null(strstr(err.msg, "PRIVATE KEY"));
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");

    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static void test_id_load_and_refs(void **state)
{
    fixture *f = *state;
    char dir[] = "/tmp/cq-tls-XXXXXX", cert[64], key[64], other[64];
    cq_tls_id *id = NULL;
    const char *p;
    size_t n;
    cq_err err;

    assert_non_null(mkdtemp(dir));
    snprintf(cert, sizeof(cert), "%s/c.pem", dir);
    snprintf(key, sizeof(key), "%s/k.pem", dir);
    snprintf(other, sizeof(other), "%s/o.pem", dir);
    write_file(cert, f->cert1);
    write_file(key, f->key1);
    write_file(other, f->key2);
    assert_int_equal(cq_tls_id_load(cert, key, &id, &err), 0);
    p = cq_tls_id_key(id, &n);
    assert_int_equal(n, strlen(f->key1));
    assert_memory_equal(p, f->key1, n);
    p = cq_tls_id_cert(id, &n);
    assert_int_equal(n, strlen(f->cert1));
    assert_ptr_equal(cq_tls_id_ref(id), id);
    cq_tls_id_unref(id); /* one left */
    assert_memory_equal(cq_tls_id_cert(id, &n), f->cert1, n);
    cq_tls_id_unref(id);
    cq_tls_id_unref(NULL);
    assert_null(cq_tls_id_ref(NULL));

    assert_int_equal(cq_tls_id_load(cert, other, &id, &err), -EINVAL);
    assert_null(id);
    assert_non_null(strstr(err.msg, other)); /* names the files */
    assert_non_null(strstr(err.msg, "does not belong to the certificate"));
    assert_int_equal(cq_tls_id_load(cert, "/nonexistent/k.pem", &id, &err), -ENOENT);
    assert_non_null(strstr(err.msg, "/nonexistent/k.pem"));
    assert_int_equal(cq_tls_check_ca_file(cert, &err), 0);
    assert_int_equal(cq_tls_check_ca_file(key, &err), -EINVAL);
    assert_non_null(strstr(err.msg, key));
    unlink(cert);
    unlink(key);
    unlink(other);
    rmdir(dir);
}

/* --- what a refusal becomes -------------------------------------------------- */

static cq_response refused(cq_tls_fail why)
{
    cq_response r;

    memset(&r, 0, sizeof(r));
    r.transport = CQ_TR_TLS;
    r.tls = why;
    r.body = "";
    r.transport_msg = "SSL certificate problem: certificate has expired";
    r.now_ms = 1700000000000;
    return r;
}

/* Every classifier of every adapter: FAILED, the reason's code, the hint
 * and curl's text in the message. */
static void test_every_classifier_fails_a_refusal(void **state)
{
    static const cq_tls_fail whys[] = {CQ_TLS_UNTRUSTED, CQ_TLS_HOSTNAME, CQ_TLS_EXPIRED,
                                       CQ_TLS_LOCAL};
    const cq_adapter *const *all;
    cq_provider_conf pc;
    size_t n = 0;
    cq_verdict v;

    (void)state;
    memset(&pc, 0, sizeof(pc));
    all = cq_adapters(&n);
    for (size_t a = 0; a < n; a++) {
        for (size_t i = 0; i < all[a]->nactions; i++) {
            const cq_action *act = &all[a]->actions[i];

            for (size_t w = 0; w < sizeof(whys) / sizeof(whys[0]); w++) {
                cq_response r = refused(whys[w]);

                act->classify(&pc, NULL, &r, &v);
                assert_int_equal(v.kind, CQ_V_FAILED);
                assert_string_equal(v.error, cq_tls_fail_code(whys[w]));
                assert_non_null(strstr(v.message, cq_tls_fail_hint(whys[w])));
                assert_non_null(strstr(v.message, "certificate has expired"));
                if (act->classify_check == NULL)
                    continue;
                act->classify_check(&pc, NULL, &r, &v);
                assert_int_equal(v.kind, CQ_V_FAILED);
                assert_string_equal(v.error, cq_tls_fail_code(whys[w]));
            }
        }
    }
}

/* A status lookup that meets a refused certificate ends the job: no call
 * would get through either. */
static void test_policy_ends_on_a_refused_lookup(void **state)
{
    static const cq_check checks[] = {CQ_CHECK_UNKNOWN, CQ_CHECK_AMBIGUOUS};
    cq_policy p;
    cq_policy_job j;
    cq_verdict v, amb;
    cq_decision d;
    cq_response r = refused(CQ_TLS_EXPIRED);

    (void)state;
    memset(&p, 0, sizeof(p));
    p.max_attempts = 5;
    p.backoff_base_ms = 1000;
    p.backoff_max_ms = 60000;
    cq_verdict_set(&v, CQ_V_FAILED, "tls_expired", "TLS: expired");
    cq_verdict_set(&amb, CQ_V_CHECK, "http_409", "ambiguous");
    for (size_t i = 0; i < 2; i++) {
        memset(&j, 0, sizeof(j));
        j.attempts = 1;
        j.has_check = true;
        j.check = checks[i];
        j.ambiguous = &amb;
        cq_policy_answer(&p, &j, &r, &v, &d);
        assert_int_equal(d.next, CQ_NEXT_FINISH);
        assert_int_equal(d.status, CQ_ST_FAILED);
        assert_string_equal(d.error, "tls_expired");
    }
    /* and after the call itself, too */
    j.check = CQ_CHECK_NONE;
    cq_policy_answer(&p, &j, &r, &v, &d);
    assert_int_equal(d.next, CQ_NEXT_FINISH);
    assert_int_equal(d.status, CQ_ST_FAILED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fail_of),
        cmocka_unit_test(test_check_ca),
        cmocka_unit_test(test_id_check),
        cmocka_unit_test(test_id_load_and_refs),
        cmocka_unit_test(test_every_classifier_fails_a_refusal),
        cmocka_unit_test(test_policy_ends_on_a_refused_lookup),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
