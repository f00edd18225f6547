/* test_envelope.c - what travels with a job between attempts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "cancelq/envelope.h"

static const char JOB[] = "{\"id\":\"a\",\"provider\":\"keliweb\",\"action\":\"cancel_service\","
                          "\"params\":{\"serviceid\":9007199254740991}}";

static void test_bare_job_is_borrowed(void **state)
{
    cq_envelope env;

    (void)state;
    assert_int_equal(cq_envelope_parse(JOB, strlen(JOB), &env), 0);
    assert_ptr_equal(env.job, JOB);
    assert_int_equal(env.attempts, 0);
    assert_false(env.unknown);
    assert_string_equal(env.tok, "");
    cq_envelope_clear(&env);
}

static void test_round_trip_keeps_job_bytes(void **state)
{
    cq_envelope env, back;
    char *text;

    (void)state;
    assert_int_equal(cq_envelope_parse(JOB, strlen(JOB), &env), 0);
    env.attempts = 2;
    env.first_ms = 1763800000123;
    env.unknown = true;
    strcpy(env.tok, "w1/h7"); /* NOLINT: fits, test fixture */
    cq_envelope_add_attempt(&env, 1763800000200, 503, "http_503");
    cq_envelope_add_attempt(&env, 1763800000900, 0, "timeout");
    text = cq_envelope_build(&env);
    assert_non_null(text);
    assert_int_equal(cq_envelope_parse(text, strlen(text), &back), 0);
    /* the job text comes back byte for byte: no re-printing of numbers */
    assert_int_equal(back.job_len, strlen(JOB));
    assert_memory_equal(back.job, JOB, strlen(JOB));
    assert_int_equal(back.attempts, 2);
    assert_true(back.first_ms == 1763800000123);
    assert_true(back.unknown);
    assert_string_equal(back.tok, "w1/h7");
    assert_int_equal(back.nhistory, 2);
    assert_int_equal(back.history[0].http_status, 503);
    assert_string_equal(back.history[1].error, "timeout");
    cq_envelope_clear(&back);
    cq_envelope_clear(&env);
    free(text);
}

static void test_lua_cjson_shape(void **state)
{
    /* reclaim.lua writes envelopes with Lua's cjson: an empty history is {} */
    const char *item = "{\"job\":\"{\\\"id\\\":\\\"x\\\"}\",\"_cq\":{\"unknown\":1,"
                       "\"tok\":\"w9/h3\",\"history\":{}}}";
    cq_envelope env;

    (void)state;
    assert_int_equal(cq_envelope_parse(item, strlen(item), &env), 0);
    assert_string_equal(env.job, "{\"id\":\"x\"}");
    assert_true(env.unknown);
    assert_string_equal(env.tok, "w9/h3");
    assert_int_equal(env.nhistory, 0);
    cq_envelope_clear(&env);
}

static void test_job_mentioning_cq_is_still_bare(void **state)
{
    const char *item = "{\"id\":\"_cq\",\"meta\":{\"_cq\":1}}";
    cq_envelope env;

    (void)state;
    assert_int_equal(cq_envelope_parse(item, strlen(item), &env), 0);
    assert_ptr_equal(env.job, item);
    cq_envelope_clear(&env);
}

static void test_history_keeps_last(void **state)
{
    cq_envelope env;
    int i;

    (void)state;
    memset(&env, 0, sizeof(env));
    for (i = 0; i < CQ_HISTORY_MAX + 5; i++)
        cq_envelope_add_attempt(&env, i, 500 + i, "x");
    assert_int_equal(env.nhistory, CQ_HISTORY_MAX);
    assert_int_equal(env.history[0].http_status, 505);
    assert_int_equal(env.history[CQ_HISTORY_MAX - 1].http_status, 500 + CQ_HISTORY_MAX + 4);
    cq_envelope_clear(&env);
    assert_null(env.history);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bare_job_is_borrowed),
        cmocka_unit_test(test_round_trip_keeps_job_bytes),
        cmocka_unit_test(test_lua_cjson_shape),
        cmocka_unit_test(test_job_mentioning_cq_is_still_bare),
        cmocka_unit_test(test_history_keeps_last),
    };
    return cmocka_run_group_tests_name("envelope", tests, NULL, NULL);
}
