/*
 * job.h - the cancellation job (docs/design.md §2) and the records cancelq
 * writes about it (dead-letter entries, section 6).
 *
 * cJSON ownership rule for all of cancelq: a function that returns a cJSON*
 * gives the caller ownership (free with cJSON_Delete) unless its comment says
 * "borrowed"; pointers into a tree owned by a struct (cq_job.params, .meta)
 * are borrowed and live as long as that struct.
 *
 * Parsing is strict: the text is at most CQ_JOB_MAX_BYTES, parsed with its
 * length (Redis strings are not NUL-terminated), nesting is bounded by
 * CQ_JOB_MAX_DEPTH, keys are compared case-sensitively, types are exact,
 * unknown top-level keys are rejected (a misspelt "idempotency_key" must not
 * silently turn into a derived key), and integers must be exact
 * (3007255.5 is refused; cJSON's valueint saturates so valuedouble is used).
 */
#ifndef CANCELQ_JOB_H
#define CANCELQ_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "cancelq/err.h"

#define CQ_JOB_MAX_BYTES ((size_t)64 * 1024) /* docs/design.md §2 */
#define CQ_JOB_MAX_DEPTH 8                   /* params/meta nesting; real jobs use 2 */
#define CQ_JOB_ID_MAX 128
#define CQ_IDEM_KEY_MAX 200
#define CQ_MAX_ATTEMPTS_LIMIT 100 /* a job may not ask for more */

typedef struct cq_job {
    cJSON *root;          /* owned: the parsed job */
    const char *id;       /* borrowed from root */
    const char *provider; /* borrowed from root */
    const char *action;   /* borrowed from root */
    const cJSON *params;  /* borrowed: an object */
    const cJSON *meta;    /* borrowed or NULL */
    char *idem_key;       /* owned: given, or derived by cq_job_derive_key */
    bool idem_key_given;
    int max_attempts;    /* 0 = use the worker default */
    int64_t deadline_ms; /* unix ms, 0 = none */
    int64_t enqueued_ms; /* the producer's enqueued_at, unix ms, 0 = none */
} cq_job;

/* Parse and validate the generic part of a job from buf[0..len).
 * Returns 0 and fills *job, or a negative errno with err->code one of
 * "too_large", "bad_json", "too_deep", "missing_field", "bad_type",
 * "bad_value", "unknown_field" and err->msg naming the field.  On error *job
 * holds whatever could be read (job->id may be non-NULL) and must still be
 * released with cq_job_clear().  On error job->id, ->provider and
 * ->action are set when the job is a JSON object with valid such fields
 * (an invalid outcome names them).  The params are only checked to be an
 * object: the adapter validates them. */
int cq_job_parse(const char *buf, size_t len, cq_job *job, cq_err *err);

/* Release what a cq_job owns; the struct itself is the caller's. */
void cq_job_clear(cq_job *job);

/* Set job->idem_key to "<provider>:<action>:<target>" unless the job gave
 * one.  Returns 0 or -ENOMEM. */
int cq_job_derive_key(cq_job *job, const char *target);

/* The params hash: the params object printed canonically (keys sorted at
 * every level, unformatted, numbers in their shortest exact form), hashed
 * with SHA-256, truncated to 128 bits: "s2:" + 32 lowercase hex digits.
 * Equal params (in any key order) give equal hashes.  v1 (may be NULL)
 * gets the hash idempotency records written before version 0.2 carry:
 * FNV-1a 64 of the same text, 16 hex digits.  0, or -ENOMEM (out is "").
 * docs/design.md §7. */
#define CQ_PARAMS_HASH_TAG "s2:"
#define CQ_PARAMS_HASH_MAX 36    /* "s2:" + 32 hex + NUL */
#define CQ_PARAMS_HASH_V1_MAX 17 /* 16 hex + NUL */
int cq_job_params_hash(const cJSON *params, char out[CQ_PARAMS_HASH_MAX],
                       char v1[CQ_PARAMS_HASH_V1_MAX]);

/* The old hash alone (tests, and tools reading old records). */
void cq_job_params_hash_v1(const cJSON *params, char out[CQ_PARAMS_HASH_V1_MAX]);

/* One attempt in a job's history (no secrets: codes and statuses only). */
typedef struct cq_attempt {
    int64_t at_ms;
    long http_status; /* 0 when no answer */
    char error[32];   /* short code, "" on success */
} cq_attempt;

/* Build a dead-letter entry (docs/design.md §6) as JSON text (heap,
 * caller frees with free()).  raw/raw_len is the job as received: embedded
 * as a JSON value when it parses, else as a string, with "raw_sha256" (the
 * SHA-256 of the bytes, hex).  NULL on ENOMEM. */
char *cq_dead_entry(const char *raw, size_t raw_len, const char *status, const char *error,
                    const char *message, int attempts, const cq_attempt *history, size_t nhistory,
                    int64_t failed_at_ms, const char *worker);

#endif
