/*
 * policy.c - the next step after an answer, and deferral waits (see
 * policy.h).
 */
#include "cancelq/policy.h"

#include <stdio.h>
#include <string.h>

/* A job bounced by the fairness bound comes back after this (+ as much
 * jitter): long enough for its provider's queue to move, short enough
 * that it does not feel like a retry. */
#define CQ_FAIR_DELAY_MS 300
/* Jobs the breaker turned away come back at the end of the cooldown,
 * spread over this much. */
#define CQ_BREAKER_SPREAD_MS 500

void cq_policy_init(cq_policy *p, const cq_worker_conf *wc)
{
    memset(p, 0, sizeof(*p));
    p->max_attempts = wc->max_attempts;
    p->backoff_base_ms = wc->backoff_base_ms;
    p->backoff_max_ms = wc->backoff_max_ms;
    p->retry_after_max_ms = wc->retry_after_max_ms;
    p->rnd = cq_rand_default;
}

static void finish(cq_decision *d, cq_status st, long http, const char *error, const char *msg)
{
    d->next = CQ_NEXT_FINISH;
    d->status = st;
    d->http_status = http;
    snprintf(d->error, sizeof(d->error), "%s", error != NULL ? error : "");
    snprintf(d->message, sizeof(d->message), "%s", msg != NULL ? msg : "");
}

/* A transient failure: retry later, or end as exhausted / expired. */
static void retry(const cq_policy *p, const cq_policy_job *j, const cq_response *resp,
                  const cq_verdict *v, bool unknown, cq_decision *d)
{
    int max = j->max_attempts > 0 ? j->max_attempts : p->max_attempts;
    uint64_t delay;

    if (j->attempts >= max) {
        char msg[CQ_ERR_MSG_MAX];

        snprintf(msg, sizeof(msg), "gave up after %d attempts: %.200s", j->attempts, v->message);
        finish(d, CQ_ST_EXHAUSTED, resp->status, v->error, msg);
        return;
    }
    delay = cq_retry_delay(v->has_retry_after, v->retry_after_ms, p->retry_after_max_ms,
                           p->backoff_base_ms, p->backoff_max_ms,
                           (unsigned)(j->attempts > 0 ? j->attempts - 1 : 0), p->rnd, p->rnd_ctx);
    if (j->deadline_ms > 0 && resp->now_ms + (int64_t)delay >= j->deadline_ms) {
        finish(d, CQ_ST_EXPIRED, resp->status, v->error, "deadline passes before the next attempt");
        return;
    }
    d->next = CQ_NEXT_RETRY;
    d->delay_ms = delay > 0 ? delay : 1;
    d->unknown = unknown;
    d->http_status = resp->status;
    snprintf(d->error, sizeof(d->error), "%s", v->error);
    snprintf(d->message, sizeof(d->message), "%s", v->message);
}

static void renew(const cq_policy_job *j, const cq_response *resp, cq_decision *d)
{
    if (j->renewed) {
        finish(d, CQ_ST_FAILED, resp->status, "unauthorized",
               "the provider refused the credentials twice (after renewing the token)");
        return;
    }
    d->next = CQ_NEXT_RENEW;
}

static void after_call(const cq_policy *p, const cq_policy_job *j, const cq_response *resp,
                       const cq_verdict *v, cq_decision *d)
{
    switch (v->kind) {
    case CQ_V_SUCCEEDED:
        finish(d, CQ_ST_SUCCEEDED, resp->status, "", v->message);
        break;
    case CQ_V_ALREADY_DONE:
        finish(d, CQ_ST_ALREADY_DONE, resp->status, v->error, v->message);
        break;
    case CQ_V_AUTH:
        renew(j, resp, d);
        break;
    case CQ_V_CHECK:
        if (!j->has_check) {
            finish(d, CQ_ST_FAILED, resp->status, v->error, v->message);
            break;
        }
        d->next = CQ_NEXT_CHECK;
        break;
    case CQ_V_RETRY:
        retry(p, j, resp, v, resp->maybe_sent, d);
        break;
    default:
        finish(d, CQ_ST_FAILED, resp->status, v->error, v->message);
        break;
    }
}

static void after_check(const cq_policy *p, const cq_policy_job *j, const cq_response *resp,
                        const cq_verdict *v, cq_decision *d)
{
    switch (v->kind) {
    case CQ_V_ALREADY_DONE:
        finish(d, CQ_ST_ALREADY_DONE, resp->status, v->error[0] ? v->error : "status_check",
               v->message);
        break;
    case CQ_V_AUTH:
        renew(j, resp, d);
        break;
    case CQ_V_RETRY:
        /* the lookup stays pending: the next attempt starts with it again */
        retry(p, j, resp, v, true, d);
        break;
    case CQ_V_FAILED:
        /* the lookup itself cannot be made (a refused certificate): no call
         * would get through either */
        finish(d, CQ_ST_FAILED, resp->status, v->error, v->message);
        break;
    default: /* NOT_DONE */
        if (j->check == CQ_CHECK_AMBIGUOUS && j->ambiguous != NULL)
            finish(d, CQ_ST_FAILED, 0, j->ambiguous->error, j->ambiguous->message);
        else
            d->next = CQ_NEXT_CALL;
        break;
    }
}

void cq_policy_answer(const cq_policy *p, const cq_policy_job *j, const cq_response *resp,
                      const cq_verdict *v, cq_decision *d)
{
    memset(d, 0, sizeof(*d));
    if (j->check == CQ_CHECK_NONE)
        after_call(p, j, resp, v, d);
    else
        after_check(p, j, resp, v, d);
}

static uint64_t defer_ms(const cq_policy *p, cq_defer why, uint64_t hint_ms)
{
    switch (why) {
    case CQ_DEFER_BUSY:
        return p->backoff_base_ms +
               cq_backoff_delay(p->backoff_base_ms, p->backoff_base_ms, 0, p->rnd, p->rnd_ctx);
    case CQ_DEFER_FAIR:
        return CQ_FAIR_DELAY_MS +
               cq_backoff_delay(CQ_FAIR_DELAY_MS, CQ_FAIR_DELAY_MS, 0, p->rnd, p->rnd_ctx);
    case CQ_DEFER_BREAKER:
        return hint_ms +
               cq_backoff_delay(CQ_BREAKER_SPREAD_MS, CQ_BREAKER_SPREAD_MS, 0, p->rnd, p->rnd_ctx);
    case CQ_DEFER_CRED:
        return hint_ms;
    case CQ_DEFER_ERROR:
        return p->backoff_base_ms;
    case CQ_DEFER_LAPSE:
        return hint_ms > 0 ? hint_ms : p->backoff_base_ms;
    case CQ_DEFER_PAUSE:
        return hint_ms +
               cq_backoff_delay(CQ_BREAKER_SPREAD_MS, CQ_BREAKER_SPREAD_MS, 0, p->rnd, p->rnd_ctx);
    default:
        return 0;
    }
}

uint64_t cq_policy_defer(const cq_policy *p, cq_defer why, uint64_t hint_ms)
{
    uint64_t d = defer_ms(p, why, hint_ms);

    /* only a shutdown puts a job straight back on the queue */
    return why == CQ_DEFER_STOP ? 0 : d > 0 ? d : 1;
}

const char *cq_defer_name(cq_defer why)
{
    static const char *const names[CQ_DEFER_COUNT] = {
        "busy", "fairness", "breaker", "credential", "redis_error", "shutdown", "lapse", "pause",
    };

    return (unsigned)why < CQ_DEFER_COUNT ? names[why] : "unknown";
}
