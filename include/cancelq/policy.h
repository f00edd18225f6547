/*
 * policy.h - what happens to a job after each answer, and how long a job
 * that cannot go now waits: pure, like backoff.c (docs/design.md §4, §8).
 *
 * "Where is a retry scheduled?"  Here: cq_policy_answer() turns a
 * provider's answer (the adapter's verdict) into the job's next step, and
 * cq_policy_defer() gives the wait of a job put back without spending an
 * attempt.  The task state machine (task.c) carries the decision out and
 * the store (store.c) writes it.
 *
 * No clock, no I/O, no allocation: the caller passes the time and the
 * random source, so every decision is unit-tested.
 */
#ifndef CANCELQ_POLICY_H
#define CANCELQ_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "cancelq/adapter.h"
#include "cancelq/backoff.h"
#include "cancelq/config.h"
#include "cancelq/err.h"
#include "cancelq/status.h"

typedef struct cq_policy {
    int max_attempts; /* the worker's; a job may ask for its own */
    uint64_t backoff_base_ms, backoff_max_ms, retry_after_max_ms;
    cq_rand_fn rnd; /* jitter source */
    void *rnd_ctx;
} cq_policy;

/* The worker's policy from its config, with cq_rand_default. */
void cq_policy_init(cq_policy *p, const cq_worker_conf *wc);

/* Why the request that was answered went. */
typedef enum cq_check {
    CQ_CHECK_NONE,      /* the cancellation call itself */
    CQ_CHECK_UNKNOWN,   /* a status lookup first: an earlier call's outcome is unknown */
    CQ_CHECK_AMBIGUOUS, /* a status lookup after an ambiguous answer */
} cq_check;

/* What the policy needs to know about the job. */
typedef struct cq_policy_job {
    int attempts;                /* calls made so far, the answered one included */
    int max_attempts;            /* the job's own limit, 0 = the worker's */
    int64_t deadline_ms;         /* unix ms, 0 = none */
    bool has_check;              /* the action has a status lookup */
    bool renewed;                /* the token was renewed once for this request already */
    cq_check check;              /* what the answered request was */
    const cq_verdict *ambiguous; /* CQ_CHECK_AMBIGUOUS: the answer the lookup had to confirm */
} cq_policy_job;

typedef enum cq_next {
    CQ_NEXT_FINISH, /* end with status, error, message, http_status */
    CQ_NEXT_RETRY,  /* back to delayed for delay_ms (an attempt was spent) */
    CQ_NEXT_CHECK,  /* an ambiguous answer: look the status up, then decide */
    CQ_NEXT_CALL,   /* the lookup found nothing done: make the call */
    CQ_NEXT_RENEW,  /* 401: renew the token once and repeat the same request */
} cq_next;

typedef struct cq_decision {
    cq_next next;
    cq_status status;  /* FINISH */
    long http_status;  /* FINISH: the HTTP status the outcome reports */
    uint64_t delay_ms; /* RETRY: >= 1 */
    bool unknown;      /* RETRY: the outcome of a call is unknown, the next attempt
                        * looks the status up first */
    char error[32];
    char message[CQ_ERR_MSG_MAX];
} cq_decision;

/* Decide the next step after resp (answered at resp->now_ms) was classified
 * as v.  A transient failure (RETRY) is retried after the provider's
 * Retry-After (capped) or a full-jitter backoff, unless the attempts are
 * used up (exhausted) or the deadline passes first (expired). */
void cq_policy_answer(const cq_policy *p, const cq_policy_job *j, const cq_response *resp,
                      const cq_verdict *v, cq_decision *d);

/* Why a job is put back without spending an attempt. */
typedef enum cq_defer {
    CQ_DEFER_BUSY,    /* another live job holds the idempotency key */
    CQ_DEFER_FAIR,    /* too many jobs of its provider wait here already */
    CQ_DEFER_BREAKER, /* the breaker is open; hint: ms until it lets a probe through */
    CQ_DEFER_CRED,    /* the token endpoint fails; hint: ms until its next try */
    CQ_DEFER_ERROR,   /* Redis refused the claim (a script error) */
    CQ_DEFER_STOP,    /* shutting down: back to the queue at once */
    CQ_DEFER_LAPSE,   /* waited here so long its claim would lapse; hint: the
                       * instance's pause or breaker wait */
    CQ_DEFER_PAUSE,   /* the deployment paused the instance (a 429 another worker
                       * saw, an operator); hint: how long */
    CQ_DEFER_COUNT
} cq_defer;

/* When the job comes back, in ms from now: >= 1 (to delayed), except 0
 * for CQ_DEFER_STOP (straight back to the queue).
 * Waits that many jobs share get jitter, so they do not return at the same
 * instant (and the next breaker probe is not always the same job). */
uint64_t cq_policy_defer(const cq_policy *p, cq_defer why, uint64_t hint_ms);

/* "busy", "fairness", "breaker", "credential", "redis_error", "shutdown". */
const char *cq_defer_name(cq_defer why);

#endif
