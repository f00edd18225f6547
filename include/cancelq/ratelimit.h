/*
 * ratelimit.h - a token bucket per provider instance (docs/design.md §8).
 *
 * Pure: no clock, no I/O; the caller passes the time (ms, any monotonic
 * origin).  The bucket holds at most `burst` tokens and refills at `rate`
 * tokens per second, so in any window of one second at most rate + burst
 * requests pass.  A rate of 0 means unlimited, but a pause (a 429 with
 * Retry-After) still closes the gate until its end.
 */
#ifndef CANCELQ_RATELIMIT_H
#define CANCELQ_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

typedef struct cq_bucket {
    double rate;          /* tokens per second, 0 = unlimited */
    double burst;         /* capacity, at least 1 when rate > 0 */
    double tokens;        /* available now (as of last_ms) */
    int64_t last_ms;      /* when tokens was last brought up to date */
    int64_t paused_until; /* gate closed before this time (429) */
} cq_bucket;

/* A full bucket at time now. */
void cq_bucket_init(cq_bucket *b, double rate, int burst, int64_t now);

/* Change rate and burst (SIGHUP) keeping the tokens it has, capped. */
void cq_bucket_set(cq_bucket *b, double rate, int burst, int64_t now);

/* Milliseconds until a token can be taken (0: one can be taken now). */
int64_t cq_bucket_wait_ms(cq_bucket *b, int64_t now);

/* Take one token; true when taken, false when the caller must wait. */
bool cq_bucket_take(cq_bucket *b, int64_t now);

/* This worker's share of a deployment's rate and burst (docs/design.md §8):
 * rate per second (> 0) and a burst that may be fractional (>= 1: the
 * caller gives no share below that).  Keeps the tokens it has, capped. */
void cq_bucket_share(cq_bucket *b, double rate, double burst, int64_t now);

/* Close the gate until `until` (a 429 with Retry-After) and drain the
 * bucket to one token, so after the pause one request goes at once and the
 * rest follow at the refill rate, not as a burst.  An
 * earlier `until` than the current pause does nothing. */
void cq_bucket_pause(cq_bucket *b, int64_t until);

#endif
