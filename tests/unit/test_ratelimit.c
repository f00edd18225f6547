/* test_ratelimit.c - the token bucket: burst, refill, the rate bound over
 * any one-second window, the 429 pause, unlimited rate. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cancelq/ratelimit.h"

static void test_burst_then_rate(void **state)
{
    cq_bucket b;
    int i;

    (void)state;
    cq_bucket_init(&b, 50, 10, 1000);
    for (i = 0; i < 10; i++)
        assert_true(cq_bucket_take(&b, 1000));
    assert_false(cq_bucket_take(&b, 1000));
    assert_int_equal(cq_bucket_wait_ms(&b, 1000), 20); /* one token per 20 ms */
    assert_false(cq_bucket_take(&b, 1019));
    assert_true(cq_bucket_take(&b, 1020));
    assert_false(cq_bucket_take(&b, 1020));
}

static void test_refill_capped_at_burst(void **state)
{
    cq_bucket b;
    int i, n = 0;

    (void)state;
    cq_bucket_init(&b, 50, 10, 0);
    for (i = 0; i < 10; i++)
        cq_bucket_take(&b, 0);
    /* a long idle time refills only up to the burst */
    for (i = 0; i < 100; i++)
        n += cq_bucket_take(&b, 60000);
    assert_int_equal(n, 10);
}

/* Greedy sender, 1 ms steps: no 1 s window ever holds more than rate + burst. */
static void test_window_bound(void **state)
{
    cq_bucket b;
    static int64_t sent[20000];
    size_t n = 0, i, j = 0, max = 0;
    int64_t t;

    (void)state;
    cq_bucket_init(&b, 50, 10, 0);
    for (t = 0; t < 10000 && n < 20000; t++) {
        while (cq_bucket_take(&b, t))
            sent[n++] = t;
    }
    for (i = 0; i < n; i++) {
        while (sent[i] - sent[j] >= 1000)
            j++;
        if (i - j + 1 > max)
            max = i - j + 1;
    }
    assert_true(max <= 60);
    assert_true(max >= 55);
    assert_true(n >= 500 && n <= 510); /* 10 + 50/s over 10 s */
}

static void test_pause(void **state)
{
    cq_bucket b;

    (void)state;
    cq_bucket_init(&b, 50, 10, 0);
    cq_bucket_pause(&b, 2000);
    assert_false(cq_bucket_take(&b, 0));
    assert_false(cq_bucket_take(&b, 1999));
    assert_int_equal(cq_bucket_wait_ms(&b, 1000), 1000);
    /* an earlier pause does not shorten it */
    cq_bucket_pause(&b, 1500);
    assert_int_equal(cq_bucket_wait_ms(&b, 1000), 1000);
    /* at the end one request goes, then the refill rate, not a burst */
    assert_true(cq_bucket_take(&b, 2000));
    assert_false(cq_bucket_take(&b, 2000));
    assert_false(cq_bucket_take(&b, 2019));
    assert_true(cq_bucket_take(&b, 2020));
}

static void test_unlimited(void **state)
{
    cq_bucket b;
    int i;

    (void)state;
    cq_bucket_init(&b, 0, 0, 0);
    for (i = 0; i < 100000; i++)
        assert_true(cq_bucket_take(&b, 5));
    cq_bucket_pause(&b, 3000);
    assert_false(cq_bucket_take(&b, 2999));
    assert_int_equal(cq_bucket_wait_ms(&b, 1000), 2000);
    assert_true(cq_bucket_take(&b, 3000));
    assert_true(cq_bucket_take(&b, 3000));
}

static void test_set_keeps_tokens_capped(void **state)
{
    cq_bucket b;

    (void)state;
    cq_bucket_init(&b, 10, 20, 0);
    cq_bucket_set(&b, 10, 5, 0);
    assert_true(b.tokens <= 5.0);
    cq_bucket_set(&b, 100, 5, 10);
    assert_true(cq_bucket_take(&b, 10));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_rate), cmocka_unit_test(test_refill_capped_at_burst),
        cmocka_unit_test(test_window_bound),    cmocka_unit_test(test_pause),
        cmocka_unit_test(test_unlimited),       cmocka_unit_test(test_set_keeps_tokens_capped),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
