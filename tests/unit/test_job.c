/* test_job.c - job parsing and validation, strict JSON reads, RFC 3339,
 * params hash, derived idempotency keys, dead-letter entries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cancelq/job.h"
#include "cancelq/json.h"
#include "cancelq/rfc3339.h"

#define FULL_JOB                                                                                   \
    "{\"id\":\"inv-2026-11-0042\",\"idempotency_key\":\"acme:sub:3007255\","                       \
    "\"provider\":\"activeplatform\",\"action\":\"stop_subscription\","                            \
    "\"params\":{\"reseller_id\":1001,\"subscription_id\":3007255,\"reason\":\"r\","               \
    "\"comment\":\"c\"},\"max_attempts\":10,\"deadline\":\"2026-11-30T00:00:00Z\","                \
    "\"meta\":{\"invoice\":\"inv-42\",\"tags\":[1,2]}}"

#define MIN_JOB "{\"id\":\"j1\",\"provider\":\"p\",\"action\":\"a\",\"params\":{}}"

/* Parse from a heap buffer of exactly len bytes (no terminator), so that
 * ASan and valgrind see any read past the end. */
static int parse_exact(const void *text, size_t len, cq_job *job, cq_err *err)
{
    char *buf = malloc(len > 0 ? len : 1);
    int rc;

    assert_non_null(buf);
    memcpy(buf, text, len);
    rc = cq_job_parse(buf, len, job, err);
    free(buf);
    return rc;
}

static int parse_str(const char *text, cq_job *job, cq_err *err)
{
    return parse_exact(text, strlen(text), job, err);
}

/* The text must be refused with this code and a message containing msg. */
static void expect_reject(const char *text, const char *code, const char *msg)
{
    cq_job job;
    cq_err err;
    int rc = parse_str(text, &job, &err);

    if (rc == 0 || strcmp(err.code, code) != 0 || strstr(err.msg, msg) == NULL)
        print_error("input %s\n  got rc=%d code=%s msg=%s\n  want code=%s msg~%s\n", text, rc,
                    err.code, err.msg, code, msg);
    assert_true(rc < 0);
    assert_string_equal(err.code, code);
    assert_non_null(strstr(err.msg, msg));
    cq_job_clear(&job);
}

/* --- valid jobs ---------------------------------------------------------- */

static void test_full_job(void **state)
{
    cq_job job;
    cq_err err;
    int64_t v;

    (void)state;
    assert_int_equal(parse_str(FULL_JOB, &job, &err), 0);
    assert_string_equal(job.id, "inv-2026-11-0042");
    assert_string_equal(job.provider, "activeplatform");
    assert_string_equal(job.action, "stop_subscription");
    assert_string_equal(job.idem_key, "acme:sub:3007255");
    assert_true(job.idem_key_given);
    assert_int_equal(job.max_attempts, 10);
    assert_int_equal(job.deadline_ms, INT64_C(1795996800000));
    assert_true(cJSON_IsObject(job.params));
    assert_true(cJSON_IsObject(job.meta));
    assert_int_equal(
        cq_json_get_int(job.params, "subscription_id", 1, INT32_MAX, &v, "params", &err), 0);
    assert_int_equal(v, 3007255);
    /* a given key is never replaced by a derived one */
    assert_int_equal(cq_job_derive_key(&job, "1001/3007255"), 0);
    assert_string_equal(job.idem_key, "acme:sub:3007255");
    cq_job_clear(&job);
    assert_null(job.root);
    cq_job_clear(&job); /* twice is harmless */
}

static void test_minimal_job(void **state)
{
    cq_job job;
    cq_err err;

    (void)state;
    assert_int_equal(parse_str(MIN_JOB, &job, &err), 0);
    assert_string_equal(job.id, "j1");
    assert_null(job.meta);
    assert_null(job.idem_key);
    assert_false(job.idem_key_given);
    assert_int_equal(job.max_attempts, 0);
    assert_int_equal(job.deadline_ms, 0);
    assert_int_equal(cq_job_derive_key(&job, "u1"), 0);
    assert_string_equal(job.idem_key, "p:a:u1");
    /* deriving again replaces the derived key without leaking it */
    assert_int_equal(cq_job_derive_key(&job, "u2"), 0);
    assert_string_equal(job.idem_key, "p:a:u2");
    /* no target: refused rather than one key shared by every job */
    assert_int_equal(cq_job_derive_key(&job, ""), -EINVAL);
    assert_int_equal(cq_job_derive_key(&job, NULL), -EINVAL);
    cq_job_clear(&job);
}

static void test_whitespace_bom_and_limits_accepted(void **state)
{
    cq_job job;
    cq_err err;
    char *big;
    size_t n;

    (void)state;
    assert_int_equal(parse_str(" \r\n\t" MIN_JOB " \n\t\r ", &job, &err), 0);
    cq_job_clear(&job);
    assert_int_equal(parse_str("\xef\xbb\xbf" MIN_JOB, &job, &err), 0);
    cq_job_clear(&job);
    /* exactly CQ_JOB_MAX_BYTES is allowed */
    big = malloc(CQ_JOB_MAX_BYTES);
    assert_non_null(big);
    n = strlen(MIN_JOB);
    memcpy(big, MIN_JOB, n);
    memset(big + n, ' ', CQ_JOB_MAX_BYTES - n);
    assert_int_equal(parse_exact(big, CQ_JOB_MAX_BYTES, &job, &err), 0);
    cq_job_clear(&job);
    free(big);
}

static void test_field_bounds(void **state)
{
    char text[1024], id[CQ_JOB_ID_MAX + 2], key[CQ_IDEM_KEY_MAX + 2];
    cq_job job;
    cq_err err;

    (void)state;
    memset(id, 'x', sizeof(id) - 1);
    id[CQ_JOB_ID_MAX] = '\0';
    snprintf(text, sizeof(text),
             "{\"id\":\"%s\",\"provider\":\"a.b-c_9\",\"action\":\"A\","
             "\"params\":{},\"max_attempts\":100}",
             id);
    assert_int_equal(parse_str(text, &job, &err), 0);
    assert_int_equal(job.max_attempts, CQ_MAX_ATTEMPTS_LIMIT);
    cq_job_clear(&job);
    id[CQ_JOB_ID_MAX] = 'x';
    id[CQ_JOB_ID_MAX + 1] = '\0';
    snprintf(text, sizeof(text),
             "{\"id\":\"%s\",\"provider\":\"p\",\"action\":\"a\","
             "\"params\":{}}",
             id);
    expect_reject(text, "bad_value", "id: must be 1..128 bytes, got 129");

    memset(key, 'k', sizeof(key) - 1);
    key[CQ_IDEM_KEY_MAX] = '\0';
    snprintf(text, sizeof(text),
             "{\"id\":\"j\",\"provider\":\"p\",\"action\":\"a\","
             "\"params\":{},\"idempotency_key\":\"%s\"}",
             key);
    assert_int_equal(parse_str(text, &job, &err), 0);
    cq_job_clear(&job);
    key[CQ_IDEM_KEY_MAX] = 'k';
    key[CQ_IDEM_KEY_MAX + 1] = '\0';
    snprintf(text, sizeof(text),
             "{\"id\":\"j\",\"provider\":\"p\",\"action\":\"a\","
             "\"params\":{},\"idempotency_key\":\"%s\"}",
             key);
    expect_reject(text, "bad_value", "idempotency_key: must be 1..200 bytes, got 201");
    /* 1e1 is the exact integer 10 */
    assert_int_equal(parse_str("{\"id\":\"j\",\"provider\":\"p\",\"action\":\"a\","
                               "\"params\":{},\"max_attempts\":1e1}",
                               &job, &err),
                     0);
    assert_int_equal(job.max_attempts, 10);
    cq_job_clear(&job);
}

/* --- rejections ---------------------------------------------------------- */

static void test_malformed_json(void **state)
{
    cq_job job;
    cq_err err;

    (void)state;
    expect_reject("{\"id\":", "bad_json", "not valid JSON");
    expect_reject("{\"id\":\"j\",}", "bad_json", "not valid JSON");
    expect_reject("nope", "bad_json", "not valid JSON");
    expect_reject("{\"id\":\"unterminated", "bad_json", "not valid JSON");
    expect_reject(MIN_JOB " x", "bad_json", "unexpected data after the JSON value at byte 52");
    expect_reject(MIN_JOB MIN_JOB, "bad_json", "unexpected data");
    expect_reject("[1,2]", "bad_json", "must be a JSON object, got array");
    expect_reject("\"job\"", "bad_json", "must be a JSON object, got string");
    expect_reject("   ", "bad_json", "not valid JSON");
    assert_int_equal(parse_exact("", 0, &job, &err), -EINVAL);
    assert_string_equal(err.code, "bad_json");
    assert_null(job.id);
    cq_job_clear(&job);
    assert_int_equal(cq_job_parse(NULL, 0, &job, &err), -EINVAL);
    cq_job_clear(&job);
}

static void test_too_large(void **state)
{
    size_t n = CQ_JOB_MAX_BYTES + 1;
    char *big = malloc(n);
    cq_job job;
    cq_err err;

    (void)state;
    assert_non_null(big);
    memset(big, ' ', n);
    memcpy(big, MIN_JOB, strlen(MIN_JOB));
    assert_int_equal(parse_exact(big, n, &job, &err), -EMSGSIZE);
    assert_string_equal(err.code, "too_large");
    assert_string_equal(err.msg, "job is 65537 bytes, the limit is 65536");
    assert_null(job.id);
    cq_job_clear(&job);
    free(big);
}

static void test_missing_fields(void **state)
{
    (void)state;
    expect_reject("{\"provider\":\"p\",\"action\":\"a\",\"params\":{}}", "missing_field",
                  "id: missing");
    expect_reject("{\"id\":\"j\",\"action\":\"a\",\"params\":{}}", "missing_field",
                  "provider: missing");
    expect_reject("{\"id\":\"j\",\"provider\":\"p\",\"params\":{}}", "missing_field",
                  "action: missing");
    expect_reject("{\"id\":\"j\",\"provider\":\"p\",\"action\":\"a\"}", "missing_field",
                  "params: missing");
    expect_reject("{}", "missing_field", "id: missing");
}

static void test_wrong_types(void **state)
{
    (void)state;
    expect_reject("{\"id\":42,\"provider\":\"p\",\"action\":\"a\",\"params\":{}}", "bad_type",
                  "id: must be a string, got number");
    expect_reject("{\"id\":\"j\",\"provider\":[\"p\"],\"action\":\"a\",\"params\":{}}", "bad_type",
                  "provider: must be a string, got array");
    expect_reject("{\"id\":\"j\",\"provider\":\"p\",\"action\":true,\"params\":{}}", "bad_type",
                  "action: must be a string, got boolean");
    expect_reject("{\"id\":\"j\",\"provider\":\"p\",\"action\":\"a\",\"params\":\"x\"}", "bad_type",
                  "params: must be an object, got string");
    expect_reject("{\"id\":\"j\",\"provider\":\"p\",\"action\":\"a\",\"params\":[]}", "bad_type",
                  "params: must be an object, got array");
    expect_reject("{\"id\":\"j\",\"provider\":\"p\",\"action\":\"a\",\"params\":{},"
                  "\"max_attempts\":\"10\"}",
                  "bad_type", "max_attempts: must be an integer, got string");
    expect_reject("{\"id\":\"j\",\"provider\":\"p\",\"action\":\"a\",\"params\":{},"
                  "\"max_attempts\":3.5}",
                  "bad_type", "max_attempts: must be an integer, got 3.5");
    expect_reject("{\"id\":\"j\",\"provider\":\"p\",\"action\":\"a\",\"params\":{},"
                  "\"max_attempts\":0}",
                  "bad_value", "max_attempts: out of range 1..100, got 0");
    expect_reject("{\"id\":\"j\",\"provider\":\"p\",\"action\":\"a\",\"params\":{},"
                  "\"max_attempts\":101}",
                  "bad_value", "max_attempts: out of range 1..100, got 101");
    expect_reject("{\"id\":\"j\",\"provider\":\"p\",\"action\":\"a\",\"params\":{},"
                  "\"meta\":[1]}",
                  "bad_type", "meta: must be an object, got array");
    expect_reject("{\"id\":\"j\",\"provider\":\"p\",\"action\":\"a\",\"params\":{},"
                  "\"meta\":null}",
                  "bad_type", "meta: must be an object, got null");
    expect_reject("{\"id\":\"j\",\"provider\":\"p\",\"action\":\"a\",\"params\":{},"
                  "\"deadline\":1796083200}",
                  "bad_type", "deadline: must be a string, got number");
    expect_reject("{\"id\":\"j\",\"provider\":\"p\",\"action\":\"a\",\"params\":{},"
                  "\"idempotency_key\":7}",
                  "bad_type", "idempotency_key: must be a string, got number");
}

static void test_bad_values(void **state)
{
    (void)state;
    expect_reject("{\"id\":\"\",\"provider\":\"p\",\"action\":\"a\",\"params\":{}}", "bad_value",
                  "id: must not be empty");
    expect_reject("{\"id\":\"a\\tb\",\"provider\":\"p\",\"action\":\"a\",\"params\":{}}",
                  "bad_value", "id: must be printable ASCII");
    expect_reject("{\"id\":\"caf\xc3\xa9\",\"provider\":\"p\",\"action\":\"a\",\"params\":{}}",
                  "bad_value", "id: must be printable ASCII");
    expect_reject("{\"id\":\"j\",\"provider\":\"a/b\",\"action\":\"a\",\"params\":{}}", "bad_value",
                  "provider: must match [A-Za-z0-9_.-]+");
    expect_reject("{\"id\":\"j\",\"provider\":\"p\",\"action\":\"stop it\",\"params\":{}}",
                  "bad_value", "action: must match");
    expect_reject("{\"id\":\"j\",\"provider\":\"p\",\"action\":\"a\",\"params\":{},"
                  "\"idempotency_key\":\"a\\nb\"}",
                  "bad_value", "idempotency_key: must not contain control characters");
    expect_reject("{\"id\":\"j\",\"provider\":\"p\",\"action\":\"a\",\"params\":{},"
                  "\"deadline\":\"tomorrow\"}",
                  "bad_value", "deadline: must be an RFC 3339 timestamp");
    expect_reject("{\"id\":\"j\",\"provider\":\"p\",\"action\":\"a\",\"params\":{},"
                  "\"deadline\":\"1960-01-01T00:00:00Z\"}",
                  "bad_value", "deadline: must be after 1970");
}

static void test_unknown_and_duplicate_fields(void **state)
{
    cq_job job;
    cq_err err;

    (void)state;
    expect_reject("{\"id\":\"j\",\"provider\":\"p\",\"action\":\"a\",\"params\":{},"
                  "\"idempotency-key\":\"k\"}",
                  "unknown_field", "idempotency-key: unknown field");
    expect_reject("{\"ID\":\"j\",\"provider\":\"p\",\"action\":\"a\",\"params\":{}}",
                  "unknown_field", "ID: unknown field (keys are case-sensitive: \"id\"?)");
    expect_reject("{\"id\":\"j\",\"Params\":{},\"provider\":\"p\",\"action\":\"a\"}",
                  "unknown_field", "Params: unknown field");
    expect_reject("{\"id\":\"j\",\"provider\":\"p\",\"action\":\"a\",\"params\":{},"
                  "\"provider\":\"q\"}",
                  "duplicate_field", "provider: duplicate field");
    expect_reject("{\"id\":\"j\",\"provider\":\"p\",\"action\":\"a\",\"params\":"
                  "{\"reseller_id\":1,\"reseller_id\":2}}",
                  "duplicate_field", "params.reseller_id: duplicate field");
    /* a large object takes the sorting path */
    expect_reject("{\"id\":\"j\",\"provider\":\"p\",\"action\":\"a\",\"params\":{\"x\":{"
                  "\"a\":1,\"b\":1,\"c\":1,\"d\":1,\"e\":1,\"f\":1,\"g\":1,\"h\":1,\"i\":1,"
                  "\"e\":2}}}",
                  "duplicate_field", "params.x.e: duplicate field");
    /* the id is still reported, so the invalid outcome can name the job */
    assert_int_equal(parse_str("{\"id\":\"j7\",\"bogus\":1}", &job, &err), -EINVAL);
    assert_string_equal(job.id, "j7");
    cq_job_clear(&job);
}

static void test_nesting_bound(void **state)
{
    char text[512];
    size_t n = CQ_JOB_MAX_BYTES;
    char *deep = malloc(n);
    cq_job job;
    cq_err err;

    (void)state;
    /* level 1 is the job, level 8 the innermost: allowed */
    snprintf(text, sizeof(text),
             "{\"id\":\"j\",\"provider\":\"p\",\"action\":\"a\","
             "\"params\":{\"a\":{\"b\":[{\"c\":[[[1]]]}]}}}");
    assert_int_equal(parse_str(text, &job, &err), 0);
    cq_job_clear(&job);
    snprintf(text, sizeof(text),
             "{\"id\":\"j\",\"provider\":\"p\",\"action\":\"a\","
             "\"params\":{\"a\":{\"b\":[{\"c\":[[[{}]]]}]}}}");
    expect_reject(text, "too_deep", "nesting deeper than 8 levels at offset");
    /* brackets inside strings are text, not nesting */
    assert_int_equal(parse_str("{\"id\":\"[[[[[[[[[[{{{{{{\",\"provider\":\"p\","
                               "\"action\":\"a\",\"params\":{\"q\":\"]]]]\\\"[[[[[[[[[[\"}}",
                               &job, &err),
                     0);
    cq_job_clear(&job);
    /* 64 KiB of '[' is refused by the pre-scan before cJSON recurses */
    assert_non_null(deep);
    memset(deep, '[', n);
    assert_int_equal(parse_exact(deep, n, &job, &err), -EINVAL);
    assert_string_equal(err.code, "too_deep");
    cq_job_clear(&job);
    memset(deep, '{', n);
    assert_int_equal(parse_exact(deep, n, &job, &err), -EINVAL);
    assert_string_equal(err.code, "too_deep");
    cq_job_clear(&job);
    free(deep);
}

static void test_bytes_cjson_would_take(void **state)
{
    static const char nul_job[] = "{\"id\":\"j\",\"provider\":\"p\",\"action\":\"a\","
                                  "\"params\":{\"u\":\"ab\0cd\"}}";
    static const char nul_after[] = MIN_JOB "\0garbage";
    cq_job job;
    cq_err err;

    (void)state;
    /* a NUL byte inside the buffer (here inside a string) */
    assert_int_equal(parse_exact(nul_job, sizeof(nul_job) - 1, &job, &err), -EINVAL);
    assert_string_equal(err.code, "bad_json");
    assert_string_equal(err.msg, "NUL byte at offset 55");
    cq_job_clear(&job);
    /* a NUL after the value inside len is not a terminator */
    assert_int_equal(parse_exact(nul_after, sizeof(nul_after) - 1, &job, &err), -EINVAL);
    assert_string_equal(err.code, "bad_json");
    cq_job_clear(&job);
    /* but only len counts: bytes beyond it are never read */
    assert_int_equal(parse_exact(nul_after, strlen(MIN_JOB), &job, &err), 0);
    cq_job_clear(&job);
    expect_reject("{\"id\":\"j\",\"provider\":\"p\",\"action\":\"a\","
                  "\"params\":{\"u\":\"ab\\u0000cd\"}}",
                  "bad_json", "\\u0000 in a string");
    expect_reject("{\"id\":\"j\",\"provider\":\"p\",\"action\":\"a\","
                  "\"params\":{\"u\":\"a\nb\"}}",
                  "bad_json", "control character in a string");
    expect_reject("{\"id\":\"j\",\"provider\":\"p\",\"action\":\"a\","
                  "\"params\":{\"u\":\"\xff\"}}",
                  "bad_json", "invalid UTF-8 at offset");
    expect_reject("{\"id\":\"j\",\"provider\":\"p\",\"action\":\"a\","
                  "\"params\":{\"u\":\"\xc0\xaf\"}}", /* overlong '/' */
                  "bad_json", "invalid UTF-8");
    expect_reject("{\"id\":\"j\",\"provider\":\"p\",\"action\":\"a\","
                  "\"params\":{\"u\":\"\xed\xa0\x80\"}}", /* a surrogate */
                  "bad_json", "invalid UTF-8");
    /* what cJSON alone would accept but is not JSON */
    expect_reject("{\"id\":\"j\",\"provider\":\"p\",\"action\":\"a\","
                  "\"params\":{\"u\":\"a\\uZZZZb\"}}",
                  "bad_json", "bad \\u escape at offset");
    expect_reject("{\"id\":\"j\",\"provider\":\"p\",\"action\":\"a\","
                  "\"params\":{\"u\":\"a\\u12\"}}",
                  "bad_json", "bad \\u escape");
    expect_reject("{\"id\":\"j\",\x01\"provider\":\"p\",\"action\":\"a\",\"params\":{}}",
                  "bad_json", "control character at offset 10");
    expect_reject("{\"id\":\"j\",\x0b\"provider\":\"p\",\"action\":\"a\",\"params\":{}}",
                  "bad_json", "control character");
    {
        static const char *const numbers[] = {"01",  "-01", "1.", "-.5",  "1.e5", "1e",
                                              "1e+", "--1", "-",  "1ee5", "0x10", "1.5.5"};
        char text[256];

        for (size_t i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++) {
            snprintf(text, sizeof(text),
                     "{\"id\":\"j\",\"provider\":\"p\",\"action\":"
                     "\"a\",\"params\":{\"n\":%s}}",
                     numbers[i]);
            assert_int_equal(parse_str(text, &job, &err), -EINVAL);
            assert_string_equal(err.code, "bad_json");
            cq_job_clear(&job);
        }
    }
    assert_int_equal(parse_str("{\"id\":\"j\",\"provider\":\"p\",\"action\":\"a\","
                               "\"params\":{\"n\":[0,-0,1.5,-2e-3,1E+2,10,0.0]}}",
                               &job, &err),
                     0);
    cq_job_clear(&job);
    /* an escaped backslash before the quote does not hide the string end */
    assert_int_equal(parse_str("{\"id\":\"j\",\"provider\":\"p\",\"action\":\"a\","
                               "\"params\":{\"u\":\"\\\\\",\"v\":\"\xe2\x82\xac\\u00e9\"}}",
                               &job, &err),
                     0);
    cq_job_clear(&job);
}

static void test_id_kept_on_failure(void **state)
{
    cq_job job;
    cq_err err;

    (void)state;
    assert_int_equal(parse_str("{\"id\":\"inv-9\",\"provider\":\"bad name\",\"action\":\"a\","
                               "\"params\":{}}",
                               &job, &err),
                     -EINVAL);
    assert_string_equal(job.id, "inv-9");
    cq_job_clear(&job);
    assert_int_equal(parse_str("{\"params\":7,\"id\":\"inv-10\"}", &job, &err), -EINVAL);
    assert_string_equal(job.id, "inv-10");
    assert_string_equal(err.code, "missing_field");
    cq_job_clear(&job);
    /* an unusable id is not passed on */
    assert_int_equal(parse_str("{\"id\":\"a\\u0001\",\"provider\":\"p\"}", &job, &err), -EINVAL);
    assert_null(job.id);
    cq_job_clear(&job);
    assert_int_equal(parse_str("{\"id\":\"inv-11\",", &job, &err), -EINVAL);
    assert_null(job.id);
    cq_job_clear(&job);
}

/* --- strict reads -------------------------------------------------------- */

static void test_get_int(void **state)
{
    cJSON *o = cJSON_Parse("{\"a\":3007255.5,\"b\":1e3,\"c\":\"5\",\"d\":9007199254740991,"
                           "\"e\":9007199254740992,\"f\":-0,\"g\":2147483648,\"h\":1e999,"
                           "\"i\":-7}");
    cq_err err;
    int64_t v = -1;

    (void)state;
    assert_non_null(o);
    assert_int_equal(cq_json_get_int(o, "a", 1, INT32_MAX, &v, "params", &err), -EINVAL);
    assert_string_equal(err.code, "bad_type");
    assert_string_equal(err.msg, "params.a: must be an integer, got 3007255.5");
    assert_int_equal(v, -1);
    assert_int_equal(cq_json_get_int(o, "b", 1, INT32_MAX, &v, "params", &err), 0);
    assert_int_equal(v, 1000);
    assert_int_equal(cq_json_get_int(o, "c", 1, INT32_MAX, &v, "params", &err), -EINVAL);
    assert_string_equal(err.msg, "params.c: must be an integer, got string");
    assert_int_equal(cq_json_get_int(o, "d", 0, INT64_MAX, &v, NULL, &err), 0);
    assert_int_equal(v, INT64_C(9007199254740991));
    assert_int_equal(cq_json_get_int(o, "e", 0, INT64_MAX, &v, NULL, &err), -EINVAL);
    assert_string_equal(err.code, "bad_value");
    assert_non_null(strstr(err.msg, "e: got 9007199254740992, beyond 2^53"));
    assert_int_equal(cq_json_get_int(o, "f", 0, 0, &v, NULL, &err), 0);
    assert_int_equal(v, 0);
    assert_int_equal(cq_json_get_int(o, "g", 1, INT32_MAX, &v, "params", &err), -EINVAL);
    assert_string_equal(err.msg, "params.g: out of range 1..2147483647, got 2147483648");
    assert_int_equal(cq_json_get_int(o, "h", 1, INT32_MAX, &v, "params", &err), -EINVAL);
    assert_string_equal(err.msg, "params.h: must be an integer, got inf");
    assert_int_equal(cq_json_get_int(o, "i", -10, -1, &v, "", &err), 0);
    assert_int_equal(v, -7);
    assert_int_equal(cq_json_get_int(o, "missing", 1, 2, &v, "params", &err), -ENOENT);
    assert_string_equal(err.code, "missing_field");
    assert_string_equal(err.msg, "params.missing: missing");
    assert_int_equal(cq_json_get_int(o, "A", 1, INT32_MAX, &v, "params", NULL), -ENOENT);
    assert_int_equal(cq_json_get_int(NULL, "a", 1, 2, &v, NULL, NULL), -ENOENT);
    cJSON_Delete(o);
}

static void test_get_string(void **state)
{
    cJSON *o = cJSON_Parse("{\"u\":\"alice\",\"e\":\"\",\"n\":null,\"U\":\"x\"}");
    const char *s = NULL;
    cq_err err;

    (void)state;
    assert_non_null(o);
    assert_int_equal(cq_json_get_string(o, "u", 1, 64, &s, "params", &err), 0);
    assert_string_equal(s, "alice");
    assert_int_equal(cq_json_get_string(o, "u", 1, 4, &s, "params", &err), -EINVAL);
    assert_string_equal(err.msg, "params.u: must be 1..4 bytes, got 5");
    assert_int_equal(cq_json_get_string(o, "e", 0, 4, &s, "params", &err), 0);
    assert_string_equal(s, "");
    assert_int_equal(cq_json_get_string(o, "e", 1, 4, &s, "params", &err), -EINVAL);
    assert_string_equal(err.msg, "params.e: must not be empty");
    assert_int_equal(cq_json_get_string(o, "n", 0, 4, &s, "params", &err), -EINVAL);
    assert_string_equal(err.msg, "params.n: must be a string, got null");
    assert_int_equal(cq_json_get_string(o, "x", 0, 4, &s, "params", &err), -ENOENT);
    /* case-sensitive: "U" is not "u" */
    assert_int_equal(cq_json_get_string(o, "U", 0, 4, &s, "params", &err), 0);
    assert_string_equal(s, "x");
    cJSON_Delete(o);
}

/* --- RFC 3339 ------------------------------------------------------------ */

static void test_rfc3339(void **state)
{
    static const char *const bad[] = {
        "",
        "2026-11-30",
        "2026-11-30T00:00:00",
        "2026-11-30 00:00:00Z",
        "2026-13-01T00:00:00Z",
        "2026-02-29T00:00:00Z",
        "2026-04-31T00:00:00Z",
        "2026-11-30T24:00:00Z",
        "2026-11-30T00:60:00Z",
        "2026-11-30T00:00:61Z",
        "2026-11-30T00:00:00.Z",
        "2026-11-30T00:00:00.1234567890Z",
        "2026-11-30T00:00:00+0100",
        "2026-11-30T00:00:00+24:00",
        "2026-11-30T00:00:00Zjunk",
        "26-11-30T00:00:00Z",
        "2026-1-30T00:00:00Z",
        "+026-11-30T00:00:00Z",
        "2026-11-30T00:00:00z ",
    };
    int64_t ms;
    char out[32];

    (void)state;
    assert_int_equal(cq_parse_rfc3339("2026-11-30T00:00:00Z", &ms), 0);
    assert_int_equal(ms, INT64_C(1795996800000));
    assert_int_equal(cq_parse_rfc3339("2026-11-30t00:00:00z", &ms), 0);
    assert_int_equal(ms, INT64_C(1795996800000));
    assert_int_equal(cq_parse_rfc3339("2026-11-22T10:00:00.123Z", &ms), 0);
    assert_int_equal(ms, INT64_C(1795341600123));
    assert_int_equal(cq_parse_rfc3339("2026-11-22T10:00:00.1Z", &ms), 0);
    assert_int_equal(ms % 1000, 100);
    assert_int_equal(cq_parse_rfc3339("2026-11-22T10:00:00.999999999Z", &ms), 0);
    assert_int_equal(ms % 1000, 999);
    assert_int_equal(cq_parse_rfc3339("2026-11-30T01:30:00+01:30", &ms), 0);
    assert_int_equal(ms, INT64_C(1795996800000));
    assert_int_equal(cq_parse_rfc3339("2026-11-29T22:00:00-02:00", &ms), 0);
    assert_int_equal(ms, INT64_C(1795996800000));
    assert_int_equal(cq_parse_rfc3339("2024-02-29T00:00:00Z", &ms), 0);
    assert_int_equal(cq_parse_rfc3339("2000-02-29T00:00:00Z", &ms), 0);
    assert_int_equal(cq_parse_rfc3339("1900-02-29T00:00:00Z", &ms), -EINVAL);
    assert_int_equal(cq_parse_rfc3339("1969-12-31T23:59:59Z", &ms), 0);
    assert_int_equal(ms, -1000);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (cq_parse_rfc3339(bad[i], &ms) != -EINVAL)
            fail_msg("accepted %s", bad[i]);
    }
    assert_int_equal(cq_parse_rfc3339(NULL, &ms), -EINVAL);

    cq_format_rfc3339(INT64_C(1795341600123), out);
    assert_string_equal(out, "2026-11-22T10:00:00.123Z");
    cq_format_rfc3339(0, out);
    assert_string_equal(out, "1970-01-01T00:00:00.000Z");
    cq_format_rfc3339(-5, out);
    assert_string_equal(out, "1970-01-01T00:00:00.000Z");
    cq_format_rfc3339(INT64_MAX, out);
    assert_string_equal(out, "9999-12-31T23:59:59.999Z");
    assert_int_equal(cq_parse_rfc3339(out, &ms), 0);
    assert_int_equal(ms, INT64_C(253402300799999));
}

/* --- params hash --------------------------------------------------------- */

/* The hash, checked against the old (v1) one computed in the same pass. */
static void hash_of(const char *json, char out[CQ_PARAMS_HASH_MAX])
{
    char v1[CQ_PARAMS_HASH_V1_MAX], v1_alone[CQ_PARAMS_HASH_V1_MAX];
    cJSON *v = cJSON_Parse(json);

    assert_non_null(v);
    assert_int_equal(cq_job_params_hash(v, out, v1), 0);
    cq_job_params_hash_v1(v, v1_alone);
    assert_string_equal(v1, v1_alone);
    cJSON_Delete(v);
}

static void v1_of(const char *json, char out[CQ_PARAMS_HASH_V1_MAX])
{
    cJSON *v = cJSON_Parse(json);

    assert_non_null(v);
    cq_job_params_hash_v1(v, out);
    cJSON_Delete(v);
}

static void test_params_hash(void **state)
{
    char a[CQ_PARAMS_HASH_MAX], b[CQ_PARAMS_HASH_MAX], v1[CQ_PARAMS_HASH_V1_MAX];
    char big[8000];
    size_t n;

    (void)state;
    /* SHA-256 of the canonical text, 128 bits, tagged with its algorithm */
    hash_of("{}", a);
    assert_string_equal(a, "s2:44136fa355b3678a1146ad16f7e8649e");
    hash_of("{ \"b\" : [true, null, \"x\"], \"a\" : 1 }", a);
    assert_string_equal(a, "s2:eca8cfb31ab74533e1eb2f4c74d2d55d");
    /* the old hash of the same text, which records before 0.2 carry */
    v1_of("{}", v1);
    assert_string_equal(v1, "08f44b07b5901a25");
    v1_of("{ \"b\" : [true, null, \"x\"], \"a\" : 1 }", v1);
    assert_string_equal(v1, "dfbb1f98a6d14526");
    /* a canonical text larger than the stack buffer goes to the heap */
    n = (size_t)snprintf(big, sizeof(big), "{\"s\":\"");
    memset(big + n, 'x', 6000);
    snprintf(big + n + 6000, sizeof(big) - n - 6000, "\"}");
    hash_of(big, a);
    assert_int_equal(strlen(a), 35);

    hash_of("{\"reseller_id\":1001,\"subscription_id\":3007255,\"x\":{\"q\":1,\"p\":[{\"z\":1,"
            "\"y\":2}]}}",
            a);
    hash_of("{\"x\":{\"p\":[{\"y\":2,\"z\":1}],\"q\":1},\"subscription_id\":3007255,"
            "\"reseller_id\":1001}",
            b);
    assert_string_equal(a, b);
    assert_int_equal(strlen(a), 35);
    assert_int_equal(strspn(a + 3, "0123456789abcdef"), 32);
    hash_of("{\"reseller_id\":1001,\"subscription_id\":3007256}", a);
    hash_of("{\"reseller_id\":1001,\"subscription_id\":3007255}", b);
    assert_string_not_equal(a, b);
    /* equal values, different spelling */
    hash_of("{\"n\":1e3,\"z\":-0}", a);
    hash_of("{\"n\":1000,\"z\":0}", b);
    assert_string_equal(a, b);
    /* type matters: "1" is not 1, and [1,2] is not [2,1] */
    hash_of("{\"n\":\"1\"}", a);
    hash_of("{\"n\":1}", b);
    assert_string_not_equal(a, b);
    hash_of("{\"n\":[1,2]}", a);
    hash_of("{\"n\":[2,1]}", b);
    assert_string_not_equal(a, b);
    /* quoting keeps strings apart that would otherwise print alike */
    hash_of("{\"a\":\"x\\\",\\\"b\\\":\\\"y\"}", a);
    hash_of("{\"a\":\"x\",\"b\":\"y\"}", b);
    assert_string_not_equal(a, b);
    /* byte order, not locale order */
    hash_of("{\"B\":1,\"a\":2}", a);
    hash_of("{\"a\":2,\"B\":1}", b);
    assert_string_equal(a, b);
    assert_int_equal(cq_job_params_hash(NULL, a, NULL), 0); /* defined for NULL too */
    assert_int_equal(strlen(a), 35);
}

/* --- dead-letter entries ------------------------------------------------- */

static void test_dead_entry_json_job(void **state)
{
    cq_attempt hist[2] = {
        {INT64_C(1795341600123), 503, "http_5xx"},
        {INT64_C(1795341660000), 0, "timeout"},
    };
    char *text;
    cJSON *e, *h;

    (void)state;
    text = cq_dead_entry(FULL_JOB, strlen(FULL_JOB), "exhausted", "http_5xx",
                         "gave up after 2 attempts", 2, hist, 2, INT64_C(1795341660500), "host-1");
    assert_non_null(text);
    assert_null(strchr(text, '\n')); /* unformatted */
    e = cJSON_Parse(text);
    assert_non_null(e);
    assert_true(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(e, "job")));
    assert_string_equal(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(e, "job"), "id")
            ->valuestring,
        "inv-2026-11-0042");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(e, "status")->valuestring, "exhausted");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(e, "error")->valuestring, "http_5xx");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(e, "message")->valuestring,
                        "gave up after 2 attempts");
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(e, "attempts")->valueint, 2);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(e, "failed_at")->valuestring,
                        "2026-11-22T10:01:00.500Z");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(e, "worker")->valuestring, "host-1");
    h = cJSON_GetObjectItemCaseSensitive(e, "history");
    assert_int_equal(cJSON_GetArraySize(h), 2);
    assert_string_equal(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(h, 0), "at")->valuestring,
        "2026-11-22T10:00:00.123Z");
    assert_int_equal(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(h, 0), "http_status")->valueint, 503);
    assert_string_equal(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(h, 1), "error")->valuestring,
        "timeout");
    cJSON_Delete(e);
    free(text);
}

static void test_dead_entry_verbatim(void **state)
{
    static const char raw[] = "\xef\xbb\xbf{ \"id\": \"x\",\n  \"params\": "
                              "{\"n\": 9007199254740991, \"f\": 0.1, \"s\": \"\\u00e9\"} }\n";
    char *text;
    cJSON *e;

    (void)state;
    /* a JSON job is kept byte for byte (numbers and escapes included), only a
     * leading BOM goes */
    text = cq_dead_entry(raw, sizeof(raw) - 1, "invalid", "missing_field", "provider: missing", 0,
                         NULL, 0, 0, "w");
    assert_non_null(text);
    assert_non_null(strstr(text, "{\"job\":{ \"id\": \"x\",\n  \"params\": {\"n\": "
                                 "9007199254740991, \"f\": 0.1, \"s\": \"\\u00e9\"} }\n,"));
    e = cJSON_Parse(text);
    assert_non_null(e);
    cJSON_Delete(e);
    free(text);
}

static void test_dead_entry_raw_text(void **state)
{
    static const char raw[] = "{\"id\":\"x\"\0\xff trailing";
    cq_attempt full;
    char *text;
    cJSON *e, *job;

    (void)state;
    /* an error code that fills its array without a terminator */
    full.at_ms = 0;
    full.http_status = 0;
    memset(full.error, 'e', sizeof(full.error));
    text = cq_dead_entry(raw, sizeof(raw) - 1, "invalid", "bad_json", "NUL byte at offset 10", 0,
                         &full, 1, 0, NULL);
    assert_non_null(text);
    e = cJSON_Parse(text);
    assert_non_null(e);
    job = cJSON_GetObjectItemCaseSensitive(e, "job");
    assert_true(cJSON_IsString(job));
    /* NUL and the invalid byte are replaced, the rest is kept */
    assert_string_equal(job->valuestring, "{\"id\":\"x\"\xef\xbf\xbd\xef\xbf\xbd trailing");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(e, "worker")->valuestring, "");
    assert_int_equal(
        strlen(cJSON_GetObjectItemCaseSensitive(
                   cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(e, "history"), 0), "error")
                   ->valuestring),
        sizeof(full.error));
    cJSON_Delete(e);
    free(text);

    /* a too-deep job is kept as text; no raw at all is null */
    text =
        cq_dead_entry("[[[[[[[[[[1]]]]]]]]]]", 21, "invalid", "too_deep", "", 0, NULL, 0, 0, "w");
    assert_non_null(text);
    assert_non_null(strstr(text, "\"job\":\"[[[[[[[[[[1]]]]]]]]]]\""));
    free(text);
    text = cq_dead_entry(NULL, 0, "invalid", "bad_json", "", 0, NULL, 0, 0, "w");
    assert_non_null(text);
    assert_non_null(strstr(text, "\"job\":null"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_job),
        cmocka_unit_test(test_minimal_job),
        cmocka_unit_test(test_whitespace_bom_and_limits_accepted),
        cmocka_unit_test(test_field_bounds),
        cmocka_unit_test(test_malformed_json),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_missing_fields),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_unknown_and_duplicate_fields),
        cmocka_unit_test(test_nesting_bound),
        cmocka_unit_test(test_bytes_cjson_would_take),
        cmocka_unit_test(test_id_kept_on_failure),
        cmocka_unit_test(test_get_int),
        cmocka_unit_test(test_get_string),
        cmocka_unit_test(test_rfc3339),
        cmocka_unit_test(test_params_hash),
        cmocka_unit_test(test_dead_entry_json_job),
        cmocka_unit_test(test_dead_entry_verbatim),
        cmocka_unit_test(test_dead_entry_raw_text),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
