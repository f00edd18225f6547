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
 * Only the daemon writes envelopes, and it trusts only those it took from
 * its own lists ({P}:retry, {P}:delayed, via a handle "r<N>"): whatever a
 * producer pushes onto {P}:jobs is a job, never an envelope.  A job text
 * that looks like an envelope (a producer's forgery, or what a version
 * before 0.2 gave back to {P}:jobs) is taken apart by
 * cq_envelope_unwrap_job: its inner job runs as a plain job whose outcome
 * counts as unknown, nothing else of it is believed (docs/design.md §3).
 * The scripts write envelopes too, so this parser accepts what Lua's cjson
 * prints (an empty history as {}).
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

/* Read a trusted item (from the daemon's own lists): an envelope or a bare
 * job.  Never fails for a bare job (whatever its content: the job parser
 * judges it); -ENOMEM only.  Counters are bounded (attempts to
 * CQ_MAX_ATTEMPTS_LIMIT). */
int cq_envelope_parse(const char *item, size_t len, cq_envelope *env);

/* Take an untrusted item (a producer's): the job is the item as it is. */
void cq_envelope_bare(const char *item, size_t len, cq_envelope *env);

/* When the job text looks like an envelope (a JSON object with "_cq" and a
 * string "job"), make that inner string the job and mark the outcome
 * unknown; every other field of it is ignored.  Returns 1 when it did, 0
 * when the job text is a plain job, -ENOMEM. */
int cq_envelope_unwrap_job(cq_envelope *env);

/* Release what the envelope owns. */
void cq_envelope_clear(cq_envelope *env);

/* Record an attempt (keeps the last CQ_HISTORY_MAX). */
void cq_envelope_add_attempt(cq_envelope *env, int64_t at_ms, long http_status, const char *error);

/* Serialise (heap, caller frees); NULL on ENOMEM. */
char *cq_envelope_build(const cq_envelope *env);

#endif
