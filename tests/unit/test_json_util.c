/* test_json_util.c - the fast number text, integer text and params hash are
 * the same as the printf-based originals, for every input tried.
 *
 * The params hash is compared with idempotency records written by earlier
 * versions, so its canonical text must never change.  The original
 * implementations (cancelq 0.1.0, before the per-job fast paths) are kept
 * here as reference functions ref_*, and the current ones are compared with
 * them over integers near powers of ten, +-2^53, negatives, fractions,
 * 1e15..1e17, subnormals, random bit patterns, and random params trees. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/json_util.h"
#include "cancelq/job.h"

/* --- reference implementations (verbatim from cancelq 0.1.0) ------------ */

static void ref_number_text(double d, char out[CQ_NUM_TEXT_MAX])
{
    if (isnan(d)) {
        snprintf(out, CQ_NUM_TEXT_MAX, "nan");
        return;
    }
    if (isinf(d)) {
        snprintf(out, CQ_NUM_TEXT_MAX, "%s", d > 0 ? "inf" : "-inf");
        return;
    }
    if (d == 0) {
        snprintf(out, CQ_NUM_TEXT_MAX, "0");
        return;
    }
    snprintf(out, CQ_NUM_TEXT_MAX, "%.15g", d);
    if (strtod(out, NULL) != d)
        snprintf(out, CQ_NUM_TEXT_MAX, "%.17g", d);
}

#define REF_FNV64_OFFSET UINT64_C(0xcbf29ce484222325)
#define REF_FNV64_PRIME UINT64_C(0x100000001b3)

typedef struct ref_member {
    const char *key;
    size_t pos;
    const cJSON *item;
} ref_member;

static void ref_fnv_bytes(uint64_t *h, const void *data, size_t n)
{
    const unsigned char *p = data;

    for (size_t i = 0; i < n; i++) {
        *h ^= p[i];
        *h *= REF_FNV64_PRIME;
    }
}

static void ref_fnv_str(uint64_t *h, const char *s)
{
    ref_fnv_bytes(h, s, strlen(s));
}

static void ref_hash_string(uint64_t *h, const char *s)
{
    char esc[8];

    ref_fnv_str(h, "\"");
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            ref_fnv_bytes(h, esc, 2);
        } else if (*p < 0x20) {
            snprintf(esc, sizeof(esc), "\\u%04x", *p);
            ref_fnv_str(h, esc);
        } else {
            ref_fnv_bytes(h, p, 1);
        }
    }
    ref_fnv_str(h, "\"");
}

static void ref_hash_value(uint64_t *h, const cJSON *item);

static int ref_member_cmp(const void *pa, const void *pb)
{
    const ref_member *a = pa, *b = pb;
    int c = strcmp(a->key, b->key);

    if (c != 0)
        return c;
    return a->pos < b->pos ? -1 : a->pos > b->pos;
}

static void ref_hash_object(uint64_t *h, const cJSON *obj)
{
    size_t n = 0, pos = 0;
    ref_member *ms;
    const cJSON *c;

    for (c = obj->child; c != NULL; c = c->next)
        n++;
    ref_fnv_str(h, "{");
    ms = n > 0 ? calloc(n, sizeof(*ms)) : NULL;
    assert_true(n == 0 || ms != NULL);
    for (c = obj->child; c != NULL; c = c->next, pos++) {
        ms[pos].key = c->string ? c->string : "";
        ms[pos].pos = pos;
        ms[pos].item = c;
    }
    if (n > 0)
        qsort(ms, n, sizeof(*ms), ref_member_cmp);
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            ref_fnv_str(h, ",");
        ref_hash_string(h, ms[i].key);
        ref_fnv_str(h, ":");
        ref_hash_value(h, ms[i].item);
    }
    free(ms);
    ref_fnv_str(h, "}");
}

static void ref_hash_value(uint64_t *h, const cJSON *item)
{
    char num[CQ_NUM_TEXT_MAX];

    if (cJSON_IsObject(item)) {
        ref_hash_object(h, item);
    } else if (cJSON_IsArray(item)) {
        ref_fnv_str(h, "[");
        for (const cJSON *c = item->child; c != NULL; c = c->next) {
            ref_hash_value(h, c);
            if (c->next != NULL)
                ref_fnv_str(h, ",");
        }
        ref_fnv_str(h, "]");
    } else if (cJSON_IsString(item)) {
        ref_hash_string(h, item->valuestring);
    } else if (cJSON_IsNumber(item) && isfinite(item->valuedouble)) {
        ref_number_text(item->valuedouble, num);
        ref_fnv_str(h, num);
    } else if (cJSON_IsTrue(item)) {
        ref_fnv_str(h, "true");
    } else if (cJSON_IsFalse(item)) {
        ref_fnv_str(h, "false");
    } else {
        ref_fnv_str(h, "null");
    }
}

static void ref_params_hash(const cJSON *params, char out[17])
{
    uint64_t h = REF_FNV64_OFFSET;

    ref_hash_value(&h, params);
    snprintf(out, 17, "%016" PRIx64, h);
}

/* --- helpers ------------------------------------------------------------- */

/* xorshift64*: the same sequence on every run, so a failure repeats. */
static uint64_t rng_state = UINT64_C(0x9e3779b97f4a7c15);

static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * UINT64_C(2685821657736338717);
}

static size_t checked;

static void same_text(double d)
{
    char want[CQ_NUM_TEXT_MAX], got[CQ_NUM_TEXT_MAX];
    size_t n;

    ref_number_text(d, want);
    memset(got, 'x', sizeof(got));
    n = cq_json_number_text(d, got);
    if (strcmp(want, got) != 0 || n != strlen(want))
        print_error("%a: want \"%s\", got \"%s\" (length %zu)\n", d, want, got, n);
    assert_string_equal(got, want);
    assert_int_equal(n, strlen(want));
    checked++;
}

/* d, its neighbours in the double grid, and their negatives. */
static void same_text_around(double d)
{
    double x[] = {d, nextafter(d, INFINITY), nextafter(d, -INFINITY), d + 1, d - 1, d + 2, d - 2};

    for (size_t i = 0; i < sizeof(x) / sizeof(x[0]); i++) {
        same_text(x[i]);
        same_text(-x[i]);
    }
}

/* --- number text --------------------------------------------------------- */

static void test_number_text_special(void **state)
{
    static const double v[] = {0.0,
                               -0.0,
                               1,
                               -1,
                               7,
                               0.5,
                               0.1,
                               1.5,
                               -2.25,
                               123.456,
                               3007255.5,
                               1e-7,
                               1e-300,
                               4.9406564584124654e-324, /* smallest subnormal */
                               2.2250738585072009e-308, /* largest subnormal */
                               DBL_MIN,
                               DBL_MAX,
                               999999999999999.0,
                               999999999999999.5,
                               1e15,
                               1e15 + 1,
                               1e16,
                               1e17,
                               123456789012345.0,
                               1234567890123456.0,
                               12345678901234567.0,
                               9007199254740991.0,
                               9007199254740992.0,
                               9007199254740993.0,
                               9223372036854775807.0,
                               1.8446744073709552e19,
                               1e300,
                               INFINITY,
                               -INFINITY,
                               NAN};

    (void)state;
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        same_text(v[i]);
        same_text(-v[i]);
    }
}

static void test_number_text_powers_of_ten(void **state)
{
    double p = 1;

    (void)state;
    for (int e = 0; e <= 22; e++, p *= 10) {
        same_text_around(p);
        same_text_around(p / 2);
        same_text_around(p * 9.99);
        same_text_around(p - 0.5);
    }
    for (int e = 1; e <= 30; e++)
        same_text_around(pow(10, -e));
}

static void test_number_text_powers_of_two(void **state)
{
    (void)state;
    for (int e = -1074; e <= 1023; e++)
        same_text_around(ldexp(1, e));
    same_text_around(ldexp(1, 53));
    same_text_around(ldexp(1, 53) - 1);
}

static void test_number_text_fast_range_edges(void **state)
{
    (void)state;
    /* every integer close to the fast path's limit, on both sides */
    for (double d = 1e15 - 2000; d <= 1e15 + 2000; d++) {
        same_text(d);
        same_text(-d);
    }
    for (double d = 1e15; d <= 1e17; d *= 1.001)
        same_text_around(floor(d));
}

static void test_number_text_random(void **state)
{
    (void)state;
    for (int i = 0; i < 200000; i++) {
        uint64_t bits = rnd();
        double d;

        memcpy(&d, &bits, sizeof(d));
        same_text(d); /* any bit pattern: subnormals, NaNs, huge, tiny */
    }
    for (int i = 0; i < 200000; i++) {
        int digits = 1 + (int)(rnd() % 18);
        int64_t limit = 1, v;

        for (int k = 0; k < digits; k++)
            limit *= 10;
        v = (int64_t)(rnd() % (uint64_t)limit);
        same_text((double)v);
        same_text(-(double)v);
        same_text((double)v / 8); /* exact binary fractions */
        same_text((double)v / 10);
    }
    assert_true(checked > 1000000);
}

/* --- integer text and text copy ------------------------------------------ */

static void same_int(int64_t v)
{
    char want[CQ_INT_TEXT_MAX], got[CQ_INT_TEXT_MAX];
    size_t n;

    snprintf(want, sizeof(want), "%" PRId64, v);
    n = cq_int_text(v, got);
    assert_string_equal(got, want);
    assert_int_equal(n, strlen(want));
}

static void test_int_text(void **state)
{
    int64_t p = 1;

    (void)state;
    same_int(0);
    same_int(INT64_MAX);
    same_int(INT64_MIN);
    same_int(INT64_MIN + 1);
    for (int e = 0; e < 19; e++) { /* 10^0 .. 10^18 */
        for (int64_t d = -2; d <= 2; d++) {
            same_int(p + d);
            same_int(-p + d);
        }
        if (e < 18)
            p *= 10;
    }
    for (int i = 0; i < 100000; i++)
        same_int((int64_t)rnd());
}

static void test_text_copy(void **state)
{
    static const char *const src[] = {"", "a", "abc", "exactly9!", "longer than the buffer"};
    char want[16], got[16];

    (void)state;
    for (size_t i = 0; i < sizeof(src) / sizeof(src[0]); i++) {
        for (size_t size = 1; size <= sizeof(got); size++) {
            int n = snprintf(want, size, "%s", src[i]);

            memset(got, 'x', sizeof(got));
            assert_int_equal(cq_text_copy(got, size, src[i], strlen(src[i])), (size_t)n);
            assert_string_equal(got, want);
        }
        assert_int_equal(cq_text_copy(got, 0, src[i], strlen(src[i])), strlen(src[i]));
    }
}

/* --- params hash ----------------------------------------------------------- */

static void same_hash(const cJSON *v)
{
    char want[17], got[17];

    ref_params_hash(v, want);
    cq_job_params_hash_v1(v, got);
    if (strcmp(want, got) != 0) {
        char *text = cJSON_PrintUnformatted(v);

        print_error("params %s: want %s, got %s\n", text != NULL ? text : "?", want, got);
        cJSON_free(text);
    }
    assert_string_equal(got, want);
}

static double interesting_number(void)
{
    static const double v[] = {0,
                               -0.0,
                               1,
                               -1,
                               7,
                               0.5,
                               1e15,
                               1e15 + 1,
                               1e16,
                               1e17,
                               9007199254740991.0,
                               9007199254740993.0,
                               -1e-320,
                               1e300,
                               3007255.5,
                               INFINITY,
                               NAN};
    uint64_t r = rnd();

    switch (r % 4) {
    case 0:
        return v[(r >> 8) % (sizeof(v) / sizeof(v[0]))];
    case 1:
        return (double)(int64_t)(rnd() % UINT64_C(10000000000000000)) - 5e15;
    case 2:
        return (double)(rnd() % 100000);
    default: {
        uint64_t bits = rnd();
        double d;

        memcpy(&d, &bits, sizeof(d));
        return d;
    }
    }
}

static char *random_text(char *buf, size_t size)
{
    static const char pool[] = "aAbB_z09 -\"\\\t\n\x01\x1f\x7f\xc3\xa9{}[]:,";
    size_t n = rnd() % (size - 1);

    for (size_t i = 0; i < n; i++)
        buf[i] = pool[rnd() % (sizeof(pool) - 1)];
    buf[n] = '\0';
    return buf;
}

/* A random value; keys are drawn from a small set so that objects get
 * duplicate keys (cJSON keeps them; the hash orders them by position). */
static cJSON *random_value(int depth)
{
    static const char *const keys[] = {"a", "b", "B", "reseller_id", "", "a\"b", "\xc3\xa9", "z"};
    char text[24];
    uint64_t r = rnd() % (depth > 3 ? 5 : 7);
    cJSON *v;

    switch (r) {
    case 0:
        return cJSON_CreateNumber(interesting_number());
    case 1:
        return cJSON_CreateString(random_text(text, sizeof(text)));
    case 2:
        return rnd() % 2 ? cJSON_CreateTrue() : cJSON_CreateFalse();
    case 3:
        return cJSON_CreateNull();
    case 4:
        return cJSON_CreateNumber((double)(rnd() % 1000));
    case 5:
        v = cJSON_CreateArray();
        for (uint64_t i = rnd() % 5; v != NULL && i > 0; i--)
            cJSON_AddItemToArray(v, random_value(depth + 1));
        return v;
    default:
        v = cJSON_CreateObject();
        /* up to 40 members: past the 16 that are sorted on the stack */
        for (uint64_t i = rnd() % (rnd() % 4 == 0 ? 40 : 6); v != NULL && i > 0; i--)
            cJSON_AddItemToObject(v, keys[rnd() % (sizeof(keys) / sizeof(keys[0]))],
                                  random_value(depth + 1));
        return v;
    }
}

static void test_params_hash_matches_reference(void **state)
{
    static const char *const fixed[] = {
        "{}",
        "{\"username\":\"b-u3\",\"reason_id\":1,\"reason_note\":\"\"}",
        "{\"reseller_id\":7,\"subscription_id\":1}",
        "{\"serviceid\":2}",
        "{\"n\":1e3,\"z\":-0,\"f\":0.1,\"big\":1e16,\"neg\":-9007199254740991}",
        "{\"a\":[1,2.5,-3e-7,true,false,null,\"x\\u0001\"],\"b\":{\"c\":{\"d\":[]}}}",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        cJSON *v = cJSON_Parse(fixed[i]);

        assert_non_null(v);
        same_hash(v);
        cJSON_Delete(v);
    }
    same_hash(NULL);
    for (int i = 0; i < 20000; i++) {
        cJSON *v = cJSON_CreateObject();

        assert_non_null(v);
        for (uint64_t k = rnd() % 24; k > 0; k--)
            cJSON_AddItemToObject(v, rnd() % 2 ? "k" : "j", random_value(1));
        same_hash(v);
        cJSON_Delete(v);
    }
}

/* The canonical text must not change: these hashes were computed by the
 * version before the fast paths (0.1.0, HEAD aef004d) and may be stored in
 * idempotency records. */
static void test_params_hash_pinned(void **state)
{
    static const char *const cases[][2] = {
        {"{\"username\":\"b-u3\",\"reason_id\":1,\"reason_note\":\"\"}", "655d9dea97c14d1a"},
        {"{\"reseller_id\":7,\"subscription_id\":1}", "683102e544c97c6a"},
        {"{\"serviceid\":2}", "e4d0f9bf82c24e87"},
        {"{\"n\":1e15,\"m\":-123456789012345,\"f\":0.1,\"g\":1e17,"
         "\"h\":4.9406564584124654e-324}",
         "48b383235f65601f"},
    };
    char got[17];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON *v = cJSON_Parse(cases[i][0]);

        assert_non_null(v);
        cq_job_params_hash_v1(v, got);
        assert_string_equal(got, cases[i][1]);
        cJSON_Delete(v);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_number_text_special),
        cmocka_unit_test(test_number_text_powers_of_ten),
        cmocka_unit_test(test_number_text_powers_of_two),
        cmocka_unit_test(test_number_text_fast_range_edges),
        cmocka_unit_test(test_number_text_random),
        cmocka_unit_test(test_int_text),
        cmocka_unit_test(test_text_copy),
        cmocka_unit_test(test_params_hash_matches_reference),
        cmocka_unit_test(test_params_hash_pinned),
    };
    return cmocka_run_group_tests_name("json_util", tests, NULL, NULL);
}
