/* test_backoff.c - full-jitter backoff, Retry-After, retry delay, deadlines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <string.h>

#include "cancelq/backoff.h"

/* 2015-10-21T07:28:00Z, the example date of RFC 9110 */
#define T_2015 INT64_C(1445412480000)

/* A scripted random source: returns values[i++], cycling. */
typedef struct script {
    const uint64_t *values;
    size_t n, i;
} script;

static uint64_t scripted(void *ctx)
{
    script *s = ctx;
    uint64_t v = s->values[s->i % s->n];

    s->i++;
    return v;
}

static uint64_t always_max(void *ctx)
{
    (void)ctx;
    return UINT64_MAX;
}

static uint64_t must_not_be_called(void *ctx)
{
    (void)ctx;
    fail_msg("random source called");
    return 0;
}

/* --- backoff ------------------------------------------------------------- */

static void test_deterministic_sequence(void **state)
{
    static const uint64_t vals[] = {12345, 999, 7, UINT64_MAX, 0, 1000000007};
    script s = {vals, 6, 0};
    uint64_t want[6];

    (void)state;
    /* base 100 ms, max 30 s: caps 100, 200, 400, 800, 1600, 3200 */
    for (unsigned a = 0; a < 6; a++) {
        uint64_t cap = UINT64_C(100) << a;
        want[a] = vals[a] % (cap + 1);
    }
    for (unsigned a = 0; a < 6; a++)
        assert_int_equal(cq_backoff_delay(100, 30000, a, scripted, &s), want[a]);
    assert_int_equal(s.i, 6);
    /* the same script gives the same delays */
    s.i = 0;
    for (unsigned a = 0; a < 6; a++)
        assert_int_equal(cq_backoff_delay(100, 30000, a, scripted, &s), want[a]);
}

static void test_bounds_inclusive(void **state)
{
    static const uint64_t zero[] = {0};
    script s = {zero, 1, 0};

    (void)state;
    assert_int_equal(cq_backoff_delay(100, 30000, 0, scripted, &s), 0);
    /* the top of the range is reachable: r % (cap + 1) == cap */
    {
        static const uint64_t top[] = {400};
        script t = {top, 1, 0};
        assert_int_equal(cq_backoff_delay(100, 30000, 2, scripted, &t), 400);
    }
    /* capped by max: attempt 20 would be 100 * 2^20 */
    {
        static const uint64_t top[] = {30000, 30001};
        script t = {top, 2, 0};
        assert_int_equal(cq_backoff_delay(100, 30000, 20, scripted, &t), 30000);
        assert_int_equal(cq_backoff_delay(100, 30000, 20, scripted, &t), 0);
    }
    for (unsigned a = 0; a < 40; a++)
        assert_true(cq_backoff_delay(250, 60000, a, always_max, NULL) <= 60000);
}

static void test_no_overflow(void **state)
{
    (void)state;
    /* huge attempts saturate at max instead of wrapping to a tiny cap */
    assert_int_equal(cq_backoff_delay(1000, 600000, 200, always_max, NULL), UINT64_MAX % 600001);
    assert_true(cq_backoff_delay(1000, 600000, 63, always_max, NULL) <= 600000);
    assert_true(cq_backoff_delay(1000, 600000, 64, always_max, NULL) <= 600000);
    assert_true(cq_backoff_delay(1000, 600000, UINT_MAX, always_max, NULL) <= 600000);
    assert_true(cq_backoff_delay(UINT64_MAX, 5000, 1, always_max, NULL) <= 5000);
    /* an unbounded max: base * 2^attempt is exact up to 2^63 */
    assert_int_equal(cq_backoff_delay(1, UINT64_MAX, 63, always_max, NULL),
                     UINT64_MAX % ((UINT64_C(1) << 63) + 1));
    /* cap == UINT64_MAX: any value is in range */
    assert_int_equal(cq_backoff_delay(1, UINT64_MAX, 64, always_max, NULL), UINT64_MAX);
    assert_int_equal(cq_backoff_delay(3, UINT64_MAX, 200, always_max, NULL), UINT64_MAX);
}

static void test_zero_base_or_max(void **state)
{
    (void)state;
    assert_int_equal(cq_backoff_delay(0, 30000, 5, must_not_be_called, NULL), 0);
    assert_int_equal(cq_backoff_delay(100, 0, 5, must_not_be_called, NULL), 0);
}

static void test_default_rand(void **state)
{
    uint64_t a, b, c;

    (void)state;
    a = cq_rand_default(NULL);
    b = cq_rand_default(NULL);
    c = cq_rand_default(NULL);
    assert_true(a != b || b != c);
    for (unsigned i = 0; i < 1000; i++)
        assert_true(cq_backoff_delay(100, 1000, i % 8, NULL, NULL) <= 1000);
    for (unsigned i = 0; i < 1000; i++)
        assert_true(cq_backoff_delay(100, 1000, 2, cq_rand_default, NULL) <= 400);
}

/* --- Retry-After --------------------------------------------------------- */

static void expect_delay(const char *value, int64_t now_ms, uint64_t want)
{
    uint64_t got = 12345678;
    int rc = cq_retry_after_parse(value, now_ms, &got);

    if (rc != 0 || got != want)
        fail_msg("Retry-After '%s': rc=%d delay=%llu, want %llu", value, rc,
                 (unsigned long long)got, (unsigned long long)want);
}

static void expect_invalid(const char *value)
{
    uint64_t got = 12345678;

    if (cq_retry_after_parse(value, T_2015, &got) != -EINVAL)
        fail_msg("Retry-After '%s' accepted (%llu)", value, (unsigned long long)got);
    assert_int_equal(got, 12345678);
}

static void test_retry_after_seconds(void **state)
{
    (void)state;
    expect_delay("120", T_2015, 120000);
    expect_delay("0", T_2015, 0);
    expect_delay(" 5\t", T_2015, 5000);
    expect_delay("007", T_2015, 7000);
    /* beyond the bound: saturated, never wrapped */
    expect_delay("1000000001", T_2015, UINT64_C(1000000000000));
    expect_delay("99999999999999999999999999999", T_2015, UINT64_C(1000000000000));
}

static void test_retry_after_dates(void **state)
{
    (void)state;
    /* IMF-fixdate, RFC 850, asctime: the same instant */
    expect_delay("Wed, 21 Oct 2015 07:28:00 GMT", T_2015 - 30000, 30000);
    expect_delay("Wednesday, 21-Oct-15 07:28:00 GMT", T_2015 - 30000, 30000);
    expect_delay("Wed Oct 21 07:28:00 2015", T_2015 - 30000, 30000);
    expect_delay("Sun Nov  6 08:49:37 1994", INT64_C(784111777000) - 1500, 1500);
    /* sub-second now: the delay is what is left */
    expect_delay("Wed, 21 Oct 2015 07:28:00 GMT", T_2015 - 250, 250);
    /* in the past or right now: retry at once */
    expect_delay("Wed, 21 Oct 2015 07:28:00 GMT", T_2015, 0);
    expect_delay("Wed, 21 Oct 2015 07:28:00 GMT", T_2015 + 3600000, 0);
    expect_delay("Sun, 06 Nov 1994 08:49:37 GMT", T_2015, 0);
    /* a far-future date saturates */
    expect_delay("Fri, 31 Dec 9999 23:59:59 GMT", T_2015, UINT64_C(1000000000000));
    /* RFC 850 two-digit years: more than 50 years ahead means the past */
    expect_delay("Sunday, 06-Nov-94 08:49:37 GMT", T_2015, 0);
    expect_delay("Thursday, 21-Oct-66 07:28:00 GMT", T_2015, 0); /* 1966, not 2066 */
    expect_delay("Wednesday, 21-Oct-15 07:28:10 GMT", T_2015, 10000);
}

static void test_retry_after_garbage(void **state)
{
    uint64_t d;

    (void)state;
    expect_invalid("");
    expect_invalid("   ");
    expect_invalid("-1");
    expect_invalid("+5");
    expect_invalid("1.5");
    expect_invalid("12abc");
    expect_invalid("soon");
    expect_invalid("Wed, 21 Oct 2015 07:28:00");
    expect_invalid("Wed, 21 Oct 2015 07:28:00 GMT trailing");
    expect_invalid("Wed, 31 Feb 2015 07:28:00 GMT");
    expect_invalid("Wed, 21 Oct 2015 25:28:00 GMT");
    expect_invalid("Wed, 21 Foo 2015 07:28:00 GMT");
    expect_invalid("2015-10-21T07:28:00Z");
    expect_invalid("Wed, 21 Oct 2015 07:28:00 GMT                                              "
                   "                        ");
    assert_int_equal(cq_retry_after_parse(NULL, T_2015, &d), -EINVAL);
}

/* --- retry delay and deadlines ------------------------------------------- */

static void test_retry_delay(void **state)
{
    static const uint64_t vals[] = {150};
    script s = {vals, 1, 0};

    (void)state;
    /* Retry-After wins, capped by retry_after_max, without using randomness */
    assert_int_equal(cq_retry_delay(true, 120000, 600000, 100, 30000, 3, must_not_be_called, NULL),
                     120000);
    assert_int_equal(cq_retry_delay(true, 3600000, 600000, 100, 30000, 3, must_not_be_called, NULL),
                     600000);
    assert_int_equal(cq_retry_delay(true, 0, 600000, 100, 30000, 3, must_not_be_called, NULL), 0);
    /* otherwise the backoff: cap 800 at attempt 3 */
    assert_int_equal(cq_retry_delay(false, 999999, 600000, 100, 30000, 3, scripted, &s), 150);
    assert_int_equal(cq_retry_delay(false, 0, 600000, 100, 30000, 0, scripted, &s), 49);
}

static void test_deadlines(void **state)
{
    (void)state;
    assert_false(cq_deadline_passed(0, T_2015)); /* none */
    assert_false(cq_deadline_passed(0, INT64_MAX));
    assert_false(cq_deadline_passed(T_2015, T_2015 - 1));
    assert_false(cq_deadline_passed(T_2015, T_2015)); /* the instant itself is in time */
    assert_true(cq_deadline_passed(T_2015, T_2015 + 1));
    assert_true(cq_deadline_passed(1, T_2015));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deterministic_sequence),
        cmocka_unit_test(test_bounds_inclusive),
        cmocka_unit_test(test_no_overflow),
        cmocka_unit_test(test_zero_base_or_max),
        cmocka_unit_test(test_default_rand),
        cmocka_unit_test(test_retry_after_seconds),
        cmocka_unit_test(test_retry_after_dates),
        cmocka_unit_test(test_retry_after_garbage),
        cmocka_unit_test(test_retry_delay),
        cmocka_unit_test(test_deadlines),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
