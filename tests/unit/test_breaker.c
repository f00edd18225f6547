/* test_breaker.c - closed -> open after N consecutive failures, cooldown,
 * one half-open probe, success closes, failure reopens. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cancelq/breaker.h"

static void test_opens_after_consecutive_failures(void **state)
{
    cq_breaker b;
    int64_t at = 0;
    bool ch;

    (void)state;
    cq_breaker_init(&b, 3, 1000);
    assert_false(cq_breaker_record(&b, false, 10));
    assert_false(cq_breaker_record(&b, false, 20));
    assert_false(cq_breaker_record(&b, true, 30)); /* a success resets the count */
    assert_false(cq_breaker_record(&b, false, 40));
    assert_false(cq_breaker_record(&b, false, 50));
    assert_int_equal(b.state, CQ_BR_CLOSED);
    assert_true(cq_breaker_allow(&b, 55, &at, &ch));
    assert_true(cq_breaker_record(&b, false, 60));
    assert_int_equal(b.state, CQ_BR_OPEN);
    assert_false(cq_breaker_allow(&b, 100, &at, &ch));
    assert_false(ch);
    assert_int_equal(at, 1060);
    /* late failures of requests sent before it opened change nothing */
    assert_false(cq_breaker_record(&b, false, 200));
    assert_false(cq_breaker_allow(&b, 1059, &at, &ch));
    assert_int_equal(at, 1060);
}

static void test_half_open_one_probe(void **state)
{
    cq_breaker b;
    int64_t at = 0;
    bool ch;

    (void)state;
    cq_breaker_init(&b, 1, 1000);
    assert_true(cq_breaker_record(&b, false, 0));
    assert_true(cq_breaker_allow(&b, 1000, &at, &ch)); /* the probe */
    assert_true(ch);
    assert_int_equal(b.state, CQ_BR_HALF_OPEN);
    assert_false(cq_breaker_allow(&b, 1001, &at, &ch));
    assert_false(ch);
    assert_int_equal(at, 1001 + CQ_BREAKER_PROBE_WAIT_MS);
    /* probe fails: open for another cooldown */
    assert_true(cq_breaker_record(&b, false, 1500));
    assert_int_equal(b.state, CQ_BR_OPEN);
    assert_false(cq_breaker_allow(&b, 2000, &at, &ch));
    assert_int_equal(at, 2500);
    /* next probe succeeds: closed, everything flows */
    assert_true(cq_breaker_allow(&b, 2500, &at, &ch));
    assert_true(cq_breaker_record(&b, true, 2600));
    assert_int_equal(b.state, CQ_BR_CLOSED);
    assert_true(cq_breaker_allow(&b, 2601, &at, &ch));
    assert_true(cq_breaker_allow(&b, 2601, &at, &ch));
}

static void test_abandoned_probe(void **state)
{
    cq_breaker b;
    int64_t at = 0;
    bool ch;

    (void)state;
    cq_breaker_init(&b, 1, 100);
    cq_breaker_record(&b, false, 0);
    assert_true(cq_breaker_allow(&b, 100, &at, &ch));
    assert_false(cq_breaker_allow(&b, 100, &at, &ch));
    cq_breaker_abandon(&b);
    assert_true(cq_breaker_allow(&b, 101, &at, &ch)); /* another probe may go */
    assert_false(ch);
}

static void test_short_cooldown_wait(void **state)
{
    cq_breaker b;
    int64_t at = 0;
    bool ch;

    (void)state;
    cq_breaker_init(&b, 0, 0); /* clamped to 1 failure; zero cooldown */
    assert_int_equal(b.threshold, 1);
    cq_breaker_record(&b, false, 0);
    assert_true(cq_breaker_allow(&b, 0, &at, &ch));
    assert_false(cq_breaker_allow(&b, 0, &at, &ch));
    assert_true(at > 0);
    assert_string_equal(cq_breaker_state_name(CQ_BR_HALF_OPEN), "half_open");
    assert_string_equal(cq_breaker_state_name(CQ_BR_OPEN), "open");
    assert_string_equal(cq_breaker_state_name(CQ_BR_CLOSED), "closed");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_opens_after_consecutive_failures),
        cmocka_unit_test(test_half_open_one_probe),
        cmocka_unit_test(test_abandoned_probe),
        cmocka_unit_test(test_short_cooldown_wait),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
