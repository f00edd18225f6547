/* test_cred.c - the pure part of credentials: the token request's form
 * (escaping, fields per grant) and the token endpoint's answer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "cancelq/cred.h"

static cq_provider_conf conf(void)
{
    cq_provider_conf pc;

    memset(&pc, 0, sizeof(pc));
    pc.name = "intronis";
    pc.client_id = "sandbox-client";
    pc.scope = "partner cancel";
    pc.username = "user@example.com";
    return pc;
}

static void test_form_client_credentials(void **state)
{
    cq_provider_conf pc = conf();
    char *f = NULL;
    cq_err err;

    (void)state;
    assert_int_equal(
        cq_cred_form(&pc, CQ_GRANT_CLIENT_CREDENTIALS, "s&c=r t%", NULL, NULL, &f, &err), 0);
    assert_string_equal(f, "grant_type=client_credentials&client_id=sandbox-client"
                           "&client_secret=s%26c%3Dr%20t%25&scope=partner%20cancel");
    cq_secret_free(f);
    pc.scope = NULL;
    assert_int_equal(cq_cred_form(&pc, CQ_GRANT_CLIENT_CREDENTIALS, "x", NULL, NULL, &f, &err), 0);
    assert_string_equal(f,
                        "grant_type=client_credentials&client_id=sandbox-client&client_secret=x");
    cq_secret_free(f);
}

static void test_form_password_and_refresh(void **state)
{
    cq_provider_conf pc = conf();
    char *f = NULL;
    cq_err err;

    (void)state;
    pc.scope = NULL;
    assert_int_equal(cq_cred_form(&pc, CQ_GRANT_PASSWORD, "sec", "p@ss+w", NULL, &f, &err), 0);
    assert_string_equal(f, "grant_type=password&client_id=sandbox-client&client_secret=sec"
                           "&username=user%40example.com&password=p%40ss%2Bw");
    cq_secret_free(f);
    assert_int_equal(cq_cred_form(&pc, CQ_GRANT_REFRESH, "sec", "pw", "r/1=", &f, &err), 0);
    assert_string_equal(f, "grant_type=refresh_token&client_id=sandbox-client&client_secret=sec"
                           "&refresh_token=r%2F1%3D");
    cq_secret_free(f);
}

static void test_form_missing(void **state)
{
    cq_provider_conf pc = conf();
    char *f = NULL;
    cq_err err;

    (void)state;
    assert_int_equal(cq_cred_form(&pc, CQ_GRANT_PASSWORD, "S3CR3T", NULL, NULL, &f, &err), -EINVAL);
    assert_null(f);
    assert_null(strstr(err.msg, "S3CR3T"));
    assert_int_equal(cq_cred_form(&pc, CQ_GRANT_REFRESH, "S3CR3T", "pw", NULL, &f, &err), -EINVAL);
    assert_null(strstr(err.msg, "S3CR3T"));
    assert_int_equal(cq_cred_form(&pc, CQ_GRANT_CLIENT_CREDENTIALS, NULL, NULL, NULL, &f, &err),
                     -EINVAL);
}

static int parse(const char *s, cq_token_answer *a)
{
    cq_err err;

    return cq_cred_parse(s, strlen(s), a, &err);
}

static void test_parse_intronis_string_ttl(void **state)
{
    cq_token_answer a;

    (void)state;
    assert_int_equal(parse("{\"access_token\":\"abc\",\"expires_in\":\"3600\",\"token_type\":"
                           "\"bearer\"}",
                           &a),
                     0);
    assert_string_equal(a.access_token, "abc");
    assert_null(a.refresh_token);
    assert_int_equal(a.expires_in_s, 3600);
    cq_token_answer_clear(&a);
}

static void test_parse_keliweb_number_ttl_refresh(void **state)
{
    cq_token_answer a;

    (void)state;
    assert_int_equal(parse("{\"token_type\":\"Bearer\",\"expires_in\":3,\"access_token\":\"t\","
                           "\"refresh_token\":\"r\"}",
                           &a),
                     0);
    assert_string_equal(a.access_token, "t");
    assert_string_equal(a.refresh_token, "r");
    assert_int_equal(a.expires_in_s, 3);
    cq_token_answer_clear(&a);
    /* no expires_in: the default; a huge one: capped */
    assert_int_equal(parse("{\"access_token\":\"t\"}", &a), 0);
    assert_int_equal(a.expires_in_s, CQ_CRED_DEFAULT_TTL_S);
    cq_token_answer_clear(&a);
    assert_int_equal(parse("{\"access_token\":\"t\",\"expires_in\":1e12}", &a), 0);
    assert_int_equal(a.expires_in_s, CQ_CRED_MAX_TTL_S);
    cq_token_answer_clear(&a);
}

static void test_parse_bad(void **state)
{
    static const char *const bad[] = {
        "",
        "not json",
        "[]",
        "{}",
        "{\"access_token\":\"\"}",
        "{\"access_token\":5}",
        "{\"access_token\":\"a\\r\\nX-Evil: 1\"}",
        "{\"access_token\":\"t\",\"expires_in\":\"soon\"}",
        "{\"access_token\":\"t\",\"expires_in\":\"36x\"}",
        "{\"access_token\":\"t\",\"expires_in\":0}",
        "{\"access_token\":\"t\",\"expires_in\":-5}",
        "{\"access_token\":\"t\",\"expires_in\":true}",
        "{\"access_token\":\"t\",\"refresh_token\":7}",
        "{\"access_token\":\"t\"} trailing",
    };
    cq_token_answer a;
    cq_err err;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(cq_cred_parse(bad[i], strlen(bad[i]), &a, &err), -EINVAL);
        assert_null(a.access_token);
        assert_null(a.refresh_token);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_form_client_credentials),
        cmocka_unit_test(test_form_password_and_refresh),
        cmocka_unit_test(test_form_missing),
        cmocka_unit_test(test_parse_intronis_string_ttl),
        cmocka_unit_test(test_parse_keliweb_number_ttl_refresh),
        cmocka_unit_test(test_parse_bad),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
