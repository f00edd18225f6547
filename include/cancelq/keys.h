/*
 * keys.h - the Redis key schema (docs/design.md §3), one definition for
 * cancelqd and cancelqctl.
 *
 * Every key starts with the configured prefix wrapped in a hash tag, so one
 * deployment's keys share one Redis Cluster slot and a script may touch
 * them all: "{cancelq}:jobs".
 */
#ifndef CANCELQ_KEYS_H
#define CANCELQ_KEYS_H

#include <stddef.h>

/* "{prefix}:idem:" + a 200-byte idempotency key, with room. */
#define CQ_KEY_MAX 320

typedef struct cq_keys {
    char prefix[CQ_KEY_MAX];  /* "{P}:" */
    char jobs[CQ_KEY_MAX];    /* list: producers LPUSH, workers take from the right */
    char retry[CQ_KEY_MAX];   /* list: jobs the daemon gives back (only it writes here) */
    char delayed[CQ_KEY_MAX]; /* zset: retries by due time */
    char dead[CQ_KEY_MAX];    /* list: dead-letter entries */
    char workers[CQ_KEY_MAX]; /* zset: worker id -> last heartbeat */
    char results[CQ_KEY_MAX]; /* stream: one entry per outcome */
    char holders[CQ_KEY_MAX]; /* zset: worker id -> when it last fetched */
    /* this worker's own keys; "" when built without a worker id */
    char inflight[CQ_KEY_MAX]; /* hash: handle -> item, the jobs it holds */
    char seq[CQ_KEY_MAX];      /* string: counter its handles come from */
} cq_keys;

/* Fill k for prefix (and worker, or NULL for a client that is no worker).
 * 0, or -ENAMETOOLONG when a name does not fit. */
int cq_keys_init(cq_keys *k, const char *prefix, const char *worker);

/* "{P}:idem:<key>" into out[size].  0 or -ENAMETOOLONG. */
int cq_keys_idem(const cq_keys *k, const char *idem_key, char *out, size_t size);

/* "{P}:inflight:<worker>" into out[size].  0 or -ENAMETOOLONG. */
int cq_keys_inflight(const cq_keys *k, const char *worker, char *out, size_t size);

/* A provider instance's deployment-wide state (docs/design.md §8):
 * "{P}:limit:<instance>" (open breaker, 429 pause, probe holder),
 * "{P}:pause:<instance>" (an operator's pause), "{P}:share:<instance>"
 * (each worker's share of its limits).  0 or -ENAMETOOLONG. */
int cq_keys_limit(const cq_keys *k, const char *instance, char *out, size_t size);
int cq_keys_pause(const cq_keys *k, const char *instance, char *out, size_t size);
int cq_keys_share(const cq_keys *k, const char *instance, char *out, size_t size);

#endif
