/*
 * breaker.h - a circuit breaker per provider instance (docs/design.md §8).
 *
 * Pure: the caller passes the time (ms) and logs the state changes this
 * reports.  Rule: closed -> open after `failures` consecutive transient
 * failures (RETRY verdicts; a 429 is not counted, it pauses the rate
 * limiter instead); open for `cooldown_ms`, during which no request goes;
 * then half-open: exactly one request (the probe) goes; its success closes
 * the breaker, its failure opens it for another cooldown.  Any success
 * resets the count of consecutive failures.  Only cancellation calls are
 * recorded and only a call is a probe: status lookups wait while it is not
 * closed and never close it (provider.c; reads often stay up while writes
 * fail).
 */
#ifndef CANCELQ_BREAKER_H
#define CANCELQ_BREAKER_H

#include <stdbool.h>
#include <stdint.h>

typedef enum cq_breaker_state {
    CQ_BR_CLOSED = 0,
    CQ_BR_OPEN,
    CQ_BR_HALF_OPEN,
} cq_breaker_state;

/* While a probe is out, other requests wait this long at most before they
 * ask again (the probe ends within the request timeout). */
#define CQ_BREAKER_PROBE_WAIT_MS 1000

typedef struct cq_breaker {
    int threshold;        /* consecutive failures that open it (>= 1) */
    uint64_t cooldown_ms; /* how long it stays open */
    cq_breaker_state state;
    int failures;     /* consecutive failures while closed */
    int64_t open_end; /* OPEN: when it turns half-open */
    bool probe_out;   /* HALF_OPEN: the probe has been let through */
    bool forced;      /* the state was taken over from the deployment (other workers) */
} cq_breaker;

void cq_breaker_init(cq_breaker *b, int threshold, uint64_t cooldown_ms);

/* May a request go at now?  True lets it go (in half-open it becomes the
 * probe).  False sets *retry_at to when to ask again.  *changed is set when
 * the call moved open -> half-open. */
bool cq_breaker_allow(cq_breaker *b, int64_t now, int64_t *retry_at, bool *changed);

/* Record the end of a request that went: success true for any answer that
 * shows the provider working (every verdict but RETRY).  Returns true when
 * the state changed (read b->state for the new one). */
bool cq_breaker_record(cq_breaker *b, bool success, int64_t now);

/* A request that went ended without a verdict (aborted at shutdown): frees
 * the probe slot so another request can probe. */
void cq_breaker_abandon(cq_breaker *b);

/* The deployment's breaker is open until `until` (another worker's
 * failures): open this one too, to the same end.  True when the state
 * changed. */
bool cq_breaker_force_open(cq_breaker *b, int64_t until);

/* The deployment's breaker closed (a probe worked elsewhere): close this
 * one.  True when the state changed. */
bool cq_breaker_force_closed(cq_breaker *b);

/* "closed", "open", "half_open". */
const char *cq_breaker_state_name(cq_breaker_state s);

#endif
