/* test_policy.c - the next step after every kind of answer, retries that
 * honour Retry-After, the attempt limit and the deadline, and the waits of
 * jobs put back without spending an attempt. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "cancelq/policy.h"

/* A "random" source that always returns 2000: a full-jitter delay with
 * cap c is then 2000 % (c + 1). */
static uint64_t rnd_fixed(void *ctx)
{
    (void)ctx;
    return 2000;
}

static cq_policy pol(void)
{
    cq_policy p;

    memset(&p, 0, sizeof(p));
    p.max_attempts = 5;
    p.backoff_base_ms = 1000;
    p.backoff_max_ms = 60000;
    p.retry_after_max_ms = 600000;
    p.rnd = rnd_fixed;
    return p;
}

static cq_response resp(long status)
{
    cq_response r;

    memset(&r, 0, sizeof(r));
    r.status = status;
    r.now_ms = 1000000;
    return r;
}

static cq_policy_job job(int attempts)
{
    cq_policy_job j;

    memset(&j, 0, sizeof(j));
    j.attempts = attempts;
    j.has_check = true;
    return j;
}

static cq_decision decide(const cq_policy_job *j, const cq_response *r, cq_verdict_kind k,
                          const char *error)
{
    cq_policy p = pol();
    cq_verdict v;
    cq_decision d;

    cq_verdict_set(&v, k, error, "the message of %s", error);
    cq_policy_answer(&p, j, r, &v, &d);
    return d;
}

static void test_call_verdicts_map_to_statuses(void **state)
{
    cq_policy_job j = job(1);
    cq_response r = resp(200);
    cq_decision d;

    (void)state;
    d = decide(&j, &r, CQ_V_SUCCEEDED, "");
    assert_int_equal(d.next, CQ_NEXT_FINISH);
    assert_int_equal(d.status, CQ_ST_SUCCEEDED);
    assert_int_equal(d.http_status, 200);
    assert_string_equal(d.error, "");
    d = decide(&j, &r, CQ_V_ALREADY_DONE, "existing");
    assert_int_equal(d.status, CQ_ST_ALREADY_DONE);
    assert_string_equal(d.error, "existing");
    r = resp(404);
    d = decide(&j, &r, CQ_V_FAILED, "not_found");
    assert_int_equal(d.next, CQ_NEXT_FINISH);
    assert_int_equal(d.status, CQ_ST_FAILED);
    assert_int_equal(d.http_status, 404);
    assert_string_equal(d.message, "the message of not_found");
}

static void test_ambiguous_answer_asks_for_a_lookup(void **state)
{
    cq_policy_job j = job(1);
    cq_response r = resp(403);
    cq_decision d;

    (void)state;
    d = decide(&j, &r, CQ_V_CHECK, "forbidden");
    assert_int_equal(d.next, CQ_NEXT_CHECK);
    /* an adapter without a status lookup: failed at once */
    j.has_check = false;
    d = decide(&j, &r, CQ_V_CHECK, "forbidden");
    assert_int_equal(d.next, CQ_NEXT_FINISH);
    assert_int_equal(d.status, CQ_ST_FAILED);
    assert_string_equal(d.error, "forbidden");
}

static void test_lookup_answers(void **state)
{
    cq_policy_job j = job(1);
    cq_response r = resp(200);
    cq_verdict amb;
    cq_decision d;

    (void)state;
    cq_verdict_set(&amb, CQ_V_CHECK, "forbidden", "This action is forbidden");
    j.check = CQ_CHECK_AMBIGUOUS;
    j.ambiguous = &amb;
    d = decide(&j, &r, CQ_V_ALREADY_DONE, "");
    assert_int_equal(d.status, CQ_ST_ALREADY_DONE);
    assert_string_equal(d.error, "status_check");
    /* not done after an ambiguous answer: failed with the original answer */
    d = decide(&j, &r, CQ_V_NOT_DONE, "");
    assert_int_equal(d.next, CQ_NEXT_FINISH);
    assert_int_equal(d.status, CQ_ST_FAILED);
    assert_int_equal(d.http_status, 0);
    assert_string_equal(d.error, "forbidden");
    assert_string_equal(d.message, "This action is forbidden");
    /* not done when the earlier outcome was unknown: now call */
    j.check = CQ_CHECK_UNKNOWN;
    j.ambiguous = NULL;
    d = decide(&j, &r, CQ_V_NOT_DONE, "");
    assert_int_equal(d.next, CQ_NEXT_CALL);
    /* a lookup that fails transiently keeps itself pending */
    r = resp(503);
    d = decide(&j, &r, CQ_V_RETRY, "http_503");
    assert_int_equal(d.next, CQ_NEXT_RETRY);
    assert_true(d.unknown);
}

static void test_retry_backoff_and_retry_after(void **state)
{
    cq_policy_job j = job(1);
    cq_response r = resp(503);
    cq_policy p = pol();
    cq_verdict v;
    cq_decision d;

    (void)state;
    d = decide(&j, &r, CQ_V_RETRY, "http_503");
    assert_int_equal(d.next, CQ_NEXT_RETRY);
    /* attempt 1 -> backoff attempt 0: random(0, 1000) */
    assert_int_equal(d.delay_ms, 2000 % 1001);
    assert_false(d.unknown);
    r.maybe_sent = true; /* a timeout after sending */
    d = decide(&j, &r, CQ_V_RETRY, "timeout");
    assert_true(d.unknown);
    j.attempts = 3; /* backoff attempt 2: random(0, 4000) */
    d = decide(&j, &r, CQ_V_RETRY, "http_503");
    assert_int_equal(d.delay_ms, 2000);
    /* Retry-After wins, capped by retry_after_max */
    cq_verdict_set(&v, CQ_V_RETRY, "http_429", "slow down");
    v.has_retry_after = true;
    v.retry_after_ms = 7000;
    cq_policy_answer(&p, &j, &r, &v, &d);
    assert_int_equal(d.delay_ms, 7000);
    v.retry_after_ms = 10000000;
    cq_policy_answer(&p, &j, &r, &v, &d);
    assert_int_equal(d.delay_ms, 600000);
    /* Retry-After: 0 still goes to delayed */
    v.retry_after_ms = 0;
    cq_policy_answer(&p, &j, &r, &v, &d);
    assert_int_equal(d.next, CQ_NEXT_RETRY);
    assert_int_equal(d.delay_ms, 1);
}

static void test_exhausted_and_expired(void **state)
{
    cq_policy_job j = job(5);
    cq_response r = resp(503);
    cq_decision d;

    (void)state;
    d = decide(&j, &r, CQ_V_RETRY, "http_503");
    assert_int_equal(d.next, CQ_NEXT_FINISH);
    assert_int_equal(d.status, CQ_ST_EXHAUSTED);
    assert_int_equal(d.http_status, 503);
    assert_string_equal(d.error, "http_503");
    assert_string_equal(d.message, "gave up after 5 attempts: the message of http_503");
    /* the job's own limit wins over the worker's */
    j.attempts = 2;
    j.max_attempts = 2;
    d = decide(&j, &r, CQ_V_RETRY, "http_503");
    assert_int_equal(d.status, CQ_ST_EXHAUSTED);
    j.max_attempts = 10;
    j.attempts = 7;
    d = decide(&j, &r, CQ_V_RETRY, "http_503");
    assert_int_equal(d.next, CQ_NEXT_RETRY);
    /* the next attempt would come after the deadline */
    j.attempts = 1;
    j.deadline_ms = r.now_ms + 100; /* the next attempt is 999 ms away */
    d = decide(&j, &r, CQ_V_RETRY, "http_503");
    assert_int_equal(d.next, CQ_NEXT_FINISH);
    assert_int_equal(d.status, CQ_ST_EXPIRED);
    assert_string_equal(d.message, "deadline passes before the next attempt");
    j.deadline_ms = r.now_ms + 100000;
    d = decide(&j, &r, CQ_V_RETRY, "http_503");
    assert_int_equal(d.next, CQ_NEXT_RETRY);
}

static void test_renew_once(void **state)
{
    cq_policy_job j = job(1);
    cq_response r = resp(401);
    cq_decision d;

    (void)state;
    d = decide(&j, &r, CQ_V_AUTH, "unauthorized");
    assert_int_equal(d.next, CQ_NEXT_RENEW);
    j.renewed = true;
    d = decide(&j, &r, CQ_V_AUTH, "unauthorized");
    assert_int_equal(d.next, CQ_NEXT_FINISH);
    assert_int_equal(d.status, CQ_ST_FAILED);
    assert_string_equal(d.error, "unauthorized");
    assert_int_equal(d.http_status, 401);
    /* a lookup's 401 renews too */
    j.renewed = false;
    j.check = CQ_CHECK_UNKNOWN;
    d = decide(&j, &r, CQ_V_AUTH, "unauthorized");
    assert_int_equal(d.next, CQ_NEXT_RENEW);
}

static void test_defer_waits(void **state)
{
    cq_policy p = pol();
    uint64_t d;

    (void)state;
    /* busy: base + random(0, base) */
    d = cq_policy_defer(&p, CQ_DEFER_BUSY, 0);
    assert_int_equal(d, 1000 + 2000 % 1001);
    /* fairness: 300 ms + random(0, 300) */
    d = cq_policy_defer(&p, CQ_DEFER_FAIR, 0);
    assert_int_equal(d, 300 + 2000 % 301);
    /* breaker: until it reopens, spread over half a second */
    d = cq_policy_defer(&p, CQ_DEFER_BREAKER, 2000);
    assert_int_equal(d, 2000 + 2000 % 501);
    assert_int_equal(cq_policy_defer(&p, CQ_DEFER_CRED, 1234), 1234);
    assert_int_equal(cq_policy_defer(&p, CQ_DEFER_ERROR, 0), 1000);
    /* only a shutdown goes straight back to the queue */
    assert_int_equal(cq_policy_defer(&p, CQ_DEFER_STOP, 5000), 0);
    assert_int_equal(cq_policy_defer(&p, CQ_DEFER_CRED, 0), 1);
    assert_string_equal(cq_defer_name(CQ_DEFER_BREAKER), "breaker");
    assert_string_equal(cq_defer_name(CQ_DEFER_COUNT), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_call_verdicts_map_to_statuses),
        cmocka_unit_test(test_ambiguous_answer_asks_for_a_lookup),
        cmocka_unit_test(test_lookup_answers),
        cmocka_unit_test(test_retry_backoff_and_retry_after),
        cmocka_unit_test(test_exhausted_and_expired),
        cmocka_unit_test(test_renew_once),
        cmocka_unit_test(test_defer_waits),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
