/*
 * envelope.h - what cancelq carries along with a job between attempts.
 *
 * Producers push the job text itself.  When cancelq puts a job back (a retry
 * in {P}:delayed, a wait for a busy idempotency key, a reclaim from a dead
 * worker) it wraps the untouched job text in an envelope:
 *
 *   {"_cq":{"attempts":2,"first_ms":1763800000000,"tok":"w1/k3.7","unknown":1,
 *           "history":[{"at":..,"http_status":503,"error":"http_503"}]},
 *    "job":"<the job text as received>"}
 *
 * A producer's job cannot look like this: "_cq" is not a job field and
 * unknown top-level fields are refused.  The reclaim script (reclaim.lua)
 * writes envelopes too, so this parser accepts what Lua's cjson prints
 * (an empty history as {}).
 */
#ifndef CANCELQ_ENVELOPE_H
#define CANCELQ_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cancelq/job.h"

#define CQ_HISTORY_MAX 16 /* the last attempts kept for the dead-letter entry */
#define CQ_TOK_MAX 192

typedef struct cq_envelope {
    const char *job; /* the job text: borrowed from the item, or from owned */
    size_t job_len;
    char *owned;          /* owned copy when the item was an envelope */
    int attempts;         /* provider attempts made so far */
    int64_t first_ms;     /* when the first attempt started, 0 = not yet */
    char tok[CQ_TOK_MAX]; /* idempotency owner token, "" = not yet assigned */
    bool unknown;         /* the last attempt's outcome is unknown */
    cq_attempt *history;  /* owned, nhistory of hcap (<= CQ_HISTORY_MAX) entries: most
                           * jobs make one attempt, so the array grows as needed */
    size_t nhistory, hcap;
} cq_envelope;

/* Read an item from the queue: an envelope or a bare job.  Never fails for
 * a bare job (whatever its content: the job parser judges it); -ENOMEM only. */
int cq_envelope_parse(const char *item, size_t len, cq_envelope *env);

/* Release what the envelope owns. */
void cq_envelope_clear(cq_envelope *env);

/* Record an attempt (keeps the last CQ_HISTORY_MAX). */
void cq_envelope_add_attempt(cq_envelope *env, int64_t at_ms, long http_status, const char *error);

/* Serialise (heap, caller frees); NULL on ENOMEM. */
char *cq_envelope_build(const cq_envelope *env);

#endif
