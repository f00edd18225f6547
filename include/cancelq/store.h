/*
 * store.h - everything cancelqd keeps in Redis (docs/design.md §3, §7):
 * every key name (keys.h) and every script call, one typed C function per
 * script.  Each of those functions alone knows its script's KEYS / ARGV
 * layout (the header comment of each script in src/lua/).
 *
 * The claims, finishes and releases of one turn of the loop go to Redis
 * as one EVALSHA per script (batch.h): the calls only collect, and a
 * uv_prepare sends what was collected right before the loop waits for I/O.
 * Their answers come back through the events table given at creation, one
 * call per item, exactly once, with the item pointer the caller passed
 * (CQ_WRITE_LOST / CQ_CLAIM_LOST when the store is freed first).
 *
 * Two Redis connections: "main" for everything, "block" for the blocking
 * wait for new jobs.  Both reconnect and resend on their own (redis.h), so
 * every script is safe to run twice.
 *
 * Ownership: every string passed in is copied before the call returns;
 * strings in a result are borrowed for the callback's duration.
 */
#ifndef CANCELQ_STORE_H
#define CANCELQ_STORE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "cancelq/config.h"
#include "cancelq/err.h"
#include "cancelq/keys.h"
#include "cancelq/status.h"

#define CQ_FETCH_MAX 256 /* jobs taken per fetch at most */
#define CQ_HANDLE_MAX 32 /* "h<N>": a job's handle in its worker's inflight hash */

typedef struct cq_store cq_store;

/* --- claims (claim.lua) ---------------------------------------------------- */

typedef struct cq_claim {
    const char *idem_key; /* "{P}:idem:<key>" */
    const char *handle;   /* the job's handle: a job no longer held is not claimed */
    const char *owner;    /* owner token, stable across the job's retries */
    const char *job_id;
    const char *hash;     /* params hash */
    const char *hash_v1;  /* the same as records before 0.2 carry it */
    const char *instance; /* its provider instance: its shared state comes back */
    uint64_t lease_ms;    /* from now, in Redis time */
    bool unknown;         /* the job says an earlier call's outcome is unknown */
} cq_claim;

typedef enum cq_claim_verdict {
    CQ_CLAIM_CLAIMED,   /* no record: ours now */
    CQ_CLAIM_HELD,      /* this process held the claim already: extended */
    CQ_CLAIM_RECLAIMED, /* this job's own claim, released or run out: ours again */
    CQ_CLAIM_TAKEOVER,  /* another job's claim whose lease ran out: ours now */
    CQ_CLAIM_DUPLICATE, /* already carried out */
    CQ_CLAIM_BUSY,      /* another live claim holds the key */
    CQ_CLAIM_CONFLICT,  /* same key, different params */
    CQ_CLAIM_NOT_OURS,  /* the job is no longer this worker's (taken back) */
    CQ_CLAIM_ERROR,     /* Redis refused (error holds why) */
    CQ_CLAIM_UNSURE,    /* maybe lost in a failover (wait_replicas): claim again */
    CQ_CLAIM_LOST,      /* no answer: the store was freed first */
} cq_claim_verdict;

typedef struct cq_claim_result {
    cq_claim_verdict verdict;
    bool check_first;         /* ours now, and the key's outcome is unknown: look it up first */
    const char *other_id;     /* the record's job (duplicate, busy, conflict, takeover) */
    const char *other_status; /* duplicate: the original's status and end time */
    const char *other_finished_at;
    const char *error;  /* CQ_CLAIM_ERROR */
    long long open_ms;  /* the instance's breaker is open this long (every worker's) */
    long long pause_ms; /* the instance is paused this long (429, an operator); -1: until resumed */
} cq_claim_result;

/* --- ends (finish.lua, release.lua) ---------------------------------------- */

typedef enum cq_idem_op {
    CQ_IDEM_NONE,    /* the record is not this job's (or there is none) */
    CQ_IDEM_DONE,    /* carried out: state=done for idempotency_ttl */
    CQ_IDEM_RELEASE, /* any other end: delete the record if this job owns it */
} cq_idem_op;

/* One job's end: outcome, dead letter, idempotency record, all or nothing. */
typedef struct cq_outcome {
    const char *handle;
    const char *idem_key; /* "{P}:idem:<key>", NULL when none */
    cq_idem_op idem_op;
    const char *owner;
    const char *hash; /* params hash, kept in a `done` record */
    const char *dead; /* dead-letter entry (JSON), NULL for the ok statuses */
    /* the stream entry (docs/design.md §5) */
    const char *id, *idempotency_key, *provider, *action;
    cq_status status;
    int attempts;
    long http_status;
    const char *error, *message;
    int64_t duration_ms;
    int64_t finished_at_ms;
    const char *meta;        /* JSON text, NULL when the job had none */
    const char *original[3]; /* duplicate: original_id, _status, _finished_at */
    const char *raw_sha256;  /* a job that was not JSON: the digest of its bytes, or NULL */
} cq_outcome;

/* A job given back without an outcome; its claim, when it owns one, is
 * parked (no worker holds it; the next taker goes on without waiting after
 * hold_ms, looking the status up first when unknown). */
typedef struct cq_release {
    const char *handle;
    const char *item;     /* what goes back (an envelope), NULL: the stored item */
    uint64_t delay_ms;    /* to delayed, due in delay_ms (Redis time); 0: to the queue */
    const char *idem_key; /* "{P}:idem:<key>", NULL when the job has no claim */
    const char *owner;    /* its owner token */
    bool unknown;         /* the last call's outcome is unknown */
    uint64_t hold_ms;     /* the claim's lease stays this long (a request that may run on) */
} cq_release;

typedef enum cq_write {
    CQ_WRITE_OK,       /* written (error may hold a note: the record was left alone) */
    CQ_WRITE_NOT_OURS, /* the job is no longer this worker's: nothing written */
    CQ_WRITE_FAILED,   /* the script failed as a whole (error holds why): nothing written */
    CQ_WRITE_UNSURE,   /* maybe lost in a failover (wait_replicas): send it again */
    CQ_WRITE_LOST,     /* no answer: the store was freed first */
} cq_write;

/* --- the events table ------------------------------------------------------ */

typedef struct cq_store_events {
    void *data;
    void (*ready)(void *data);                 /* main connection ready (again) */
    void (*lost)(void *data, const char *why); /* main connection lost */
    void (*flush)(void *data);                 /* after this turn's batches went */
    void (*claimed)(void *item, const cq_claim_result *r);
    void (*written)(void *item, cq_write w, const char *error);
} cq_store_events;

/* Connect for worker `worker` (its own keys) with cfg's [redis]; holder
 * names this process in the claims it takes ("<worker>/<incarnation>");
 * password may be NULL.  The strings must outlive the store; ev is
 * copied.  NULL with err. */
cq_store *cq_store_new(uv_loop_t *loop, const cq_config *cfg, const char *worker,
                       const char *holder, const char *password, const cq_store_events *ev,
                       cq_err *err);

/* Free: pending items are answered LOST, other callbacks dropped, handles
 * close asynchronously.  NULL is a no-op. */
void cq_store_free(cq_store *s);

const cq_keys *cq_store_keys(const cq_store *s);
bool cq_store_ready(const cq_store *s);
uint64_t cq_store_reconnects(const cq_store *s, bool block);
const char *cq_store_durability(const cq_store *s); /* see cq_redis_durability */

/* [redis] wait_replicas: WAITs that came back short, batches sent again
 * after a reconnect (for metrics). */
void cq_store_wait_stats(const cq_store *s, uint64_t *short_waits, uint64_t *resent);

/* Run the flush hook (and send the batches) before the loop next waits. */
void cq_store_flush_soon(cq_store *s);

/* Drop what was collected and not sent: each item answered LOST. */
void cq_store_discard(cq_store *s);

/* Collect a claim / an end / a release; answered through the events
 * table.  0, or -ENOMEM (then the item is never answered). */
int cq_store_claim(cq_store *s, const cq_claim *c, void *item);
int cq_store_finish(cq_store *s, const cq_outcome *o, void *item);
int cq_store_release(cq_store *s, const cq_release *r, void *item);

/* --- the worker's own calls -------------------------------------------------- */

typedef struct cq_item {
    char handle[CQ_HANDLE_MAX];
    const char *text; /* borrowed for the callback */
    size_t len;
    bool trusted; /* from {P}:retry: an envelope only the daemon wrote */
} cq_item;

/* Take up to max (<= CQ_FETCH_MAX) jobs into this worker's inflight hash.
 * cb gets them (n may be 0), or status -EAGAIN (this worker is not
 * registered: beat first), -EIO (error reply, logged) or -ECANCELED (store
 * freed). */
typedef void (*cq_fetch_cb)(void *data, int status, const cq_item *items, size_t n);
int cq_store_fetch(cq_store *s, size_t max, cq_fetch_cb cb, void *data);

/* Wait (on the block connection) until the queue has a job, at most a
 * second; cb(data, false) when the store is freed first. */
int cq_store_wait_jobs(cq_store *s, void (*cb)(void *data, bool answered), void *data);

/* A result: a number, -1 for an error reply (logged), -2 when the store
 * was freed first. */
typedef void (*cq_num_cb)(void *data, long long v);

/* Heartbeat (Redis time): v 1 when this worker was registered already, 0
 * when the beat registered it again (a reclaim had found it dead). */
int cq_store_heartbeat(cq_store *s, cq_num_cb cb, void *data);

/* This worker id's heartbeat, in Redis time: -3 none, -4 older than the
 * lease, else its score (fresh: watch whether it moves). */
int cq_store_identity(cq_store *s, cq_num_cb cb, void *data);

/* Return the jobs of dead workers (and this worker's own leftovers when
 * self) to the queue.  v: jobs returned. */
int cq_store_reclaim(cq_store *s, bool self, cq_num_cb cb, void *data);

/* Move due retries from delayed to the queue.  v: ms until the next is
 * due, -3 when none waits. */
int cq_store_promote(cq_store *s, cq_num_cb cb, void *data);

/* Leave the worker set (clean stop) unless jobs remain.  v 1 left, 0 kept. */
int cq_store_leave(cq_store *s, cq_num_cb cb, void *data);

/* The handles in this worker's inflight hash (n 0 also on errors). */
typedef void (*cq_handles_cb)(void *data, const cq_item *handles, size_t n);
int cq_store_inflight(cq_store *s, cq_handles_cb cb, void *data);

/* Which of handles[0..n) are still in this worker's inflight hash:
 * held[i] for each; ok false (held NULL) on an error or a freed store. */
typedef void (*cq_owned_cb)(void *data, bool ok, const bool *held, size_t n);
int cq_store_owned(cq_store *s, const char *const *handles, size_t n, cq_owned_cb cb, void *data);

/* The outcome stream after trim.lua (results_trim; docs/design.md §5). */
#define CQ_GROUPS_MAX 32 /* consumer groups reported at most */
#define CQ_GROUP_NAME_MAX 64
typedef struct cq_results_info {
    long long length;  /* entries in the stream */
    long long trimmed; /* trimmed by this call (results_trim = acked) */
    long long unread;  /* the slowest group's entries not yet acknowledged */
    size_t ngroups;
    struct {
        char name[CQ_GROUP_NAME_MAX]; /* cut when longer */
        long long lag;                /* not yet delivered (trimmed ones included) */
        long long pending;            /* delivered, not acknowledged */
    } groups[CQ_GROUPS_MAX];
} cq_results_info;

/* Trim the outcome stream as results_trim says and report its groups;
 * cb(data, NULL) on an error or a freed store. */
int cq_store_trim(cq_store *s, void (*cb)(void *data, const cq_results_info *ri), void *data);

/* A provider instance's deployment-wide limits (docs/design.md §8).  The
 * answer: ok, and up to CQ_STORE_SHARE_N numbers (where a script gives
 * fewer: -1 for the first four, CQ_STORE_NONE for the last two). */
#define CQ_STORE_SHARE_N 6
#define CQ_STORE_NONE LLONG_MIN
typedef void (*cq_store_share_cb)(void *data, bool ok, const long long v[CQ_STORE_SHARE_N]);

/* This worker's share of pc's limits (share.lua): want = its requests
 * waiting + in flight.  v: concurrency, rate x 1000, burst x 1000, the
 * workers with work for it (this one included), and as in a claim's answer
 * the instance's breaker open for ms and its pause (ms, -1: an operator's
 * until resumed), so a pause reaches every worker with work within a
 * heartbeat. */
int cq_store_share(cq_store *s, const char *instance, int want, int inflight,
                   const cq_provider_conf *pc, cq_store_share_cb cb, void *data);

/* limit.lua: op "fail" (ms: cooldown, threshold: the breaker's), "ok",
 * "close", "pause" (ms), "probe" (ms: how long it holds it), "read".  v:
 * open ms left, pause ms left, 1 when it took effect (fail: opened the
 * breaker; probe: granted). */
int cq_store_limit(cq_store *s, const char *instance, const char *op, uint64_t ms, int threshold,
                   cq_store_share_cb cb, void *data);

/* Queue depths for metrics: v[CQ_DEPTH_JOBS .. CQ_DEPTH_DEAD], each -1
 * when unknown. */
enum { CQ_DEPTH_JOBS, CQ_DEPTH_RETRY, CQ_DEPTH_DELAYED, CQ_DEPTH_DEAD, CQ_DEPTHS };
typedef void (*cq_depths_cb)(void *data, const long long *v);
int cq_store_depths(cq_store *s, cq_depths_cb cb, void *data);

#endif
