/*
 * task.h - one job, from the moment it is taken to its one outcome
 * (docs/design.md §4 "A job's life"): a state machine.
 *
 * A task's state is one enum changed by one function, which checks the
 * move against a table of legal moves, keeps the per-state counts and logs
 * the move at debug level (the shape of curl's lib/multi.c mstate()):
 *
 *   NEW ------> CLAIMING ------> QUEUED <-----> CALLING / CHECKING
 *    |             |              |                  |
 *    +-------------+--------------+------------------+--> ENDING --> (freed)
 *
 *   NEW       read, checked; invalid or expired jobs end at once
 *   CLAIMING  the claim of its idempotency key is on its way to Redis
 *   QUEUED    waiting for its provider instance (a slot, a rate token, a
 *             token, the breaker's consent: provider.h)
 *   CALLING   the cancellation request is in flight
 *   CHECKING  a status lookup is in flight
 *   ENDING    its outcome (or its give-back: a retry, a deferral) is on
 *             its way to Redis; the write's answer frees it
 *
 * What happens after an answer is policy.c's decision; what is written is
 * store.c's.  A task reaches the world only through the cq_task_io hooks
 * the owner fills in (the worker: Redis and HTTP; a unit test: fakes), so
 * task.c depends on neither the worker nor any I/O library; the answers
 * come back through cq_task_claimed / cq_task_written / cq_task_answered,
 * each exactly once per request made.
 */
#ifndef CANCELQ_TASK_H
#define CANCELQ_TASK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cancelq/config.h"
#include "cancelq/http.h"
#include "cancelq/keys.h"
#include "cancelq/policy.h"
#include "cancelq/provider.h"
#include "cancelq/store.h"

typedef enum cq_task_state {
    CQ_TS_NEW,
    CQ_TS_CLAIMING,
    CQ_TS_QUEUED,
    CQ_TS_CALLING,
    CQ_TS_CHECKING,
    CQ_TS_ENDING,
    CQ_TS_FREED, /* only as the target of the last move */
    CQ_TS_COUNT
} cq_task_state;

typedef struct cq_task cq_task;
typedef struct cq_tasks cq_tasks;

/* The seams.  Each request hook returns 0, or -errno when it could not
 * even be queued (then no answer comes). */
typedef struct cq_task_io {
    void *data;
    /* Redis (store.h); answered through cq_task_claimed / cq_task_written */
    int (*claim)(void *data, cq_task *t, const cq_claim *c);
    int (*finish)(void *data, cq_task *t, const cq_outcome *o);
    int (*release)(void *data, cq_task *t, const cq_release *r);
    /* HTTP (http.h); answered through cq_task_answered, never from inside */
    int (*send)(void *data, cq_task *t, const cq_request *req, const cq_http_opts *o);
    /* after every move (counts are up to date): e.g. fetch for freed slots */
    void (*moved)(void *data, cq_task_state from, cq_task_state to);
    /* the wall clock, unix ms (outcome times, deadlines) */
    int64_t (*now_ms)(void *data);
    /* the loop's monotonic clock, ms (how long a claim lasts here) */
    uint64_t (*mono_ms)(void *data);
} cq_task_io;

typedef struct cq_tasks_conf {
    const cq_config *cfg;
    const char *worker;      /* this worker's id */
    const cq_keys *keys;     /* for idempotency record names */
    cq_providers *providers; /* admission */
    const cq_policy *policy; /* decisions */
    cq_task_io io;
} cq_tasks_conf;

typedef struct cq_task_stats {
    uint64_t fetched;                  /* tasks started */
    uint64_t finished;                 /* outcomes decided */
    uint64_t retried;                  /* retries scheduled */
    uint64_t lost_ownership;           /* ends Redis refused: the job was no longer ours */
    uint64_t stuck;                    /* jobs left inflight for lack of memory */
    uint64_t dropped;                  /* jobs let go without a word: no longer this worker's */
    uint64_t finish_failed;            /* finishes Redis refused as a whole: the job went back */
    uint64_t invalid_unknown_provider; /* invalid jobs not attributable to a provider */
    uint64_t deferred[CQ_DEFER_COUNT]; /* put back without spending an attempt */
    cq_histogram queue_wait;           /* enqueued_at (when given) to first taken, seconds */
} cq_task_stats;

/* A set of tasks.  conf is copied (what it points to is borrowed and must
 * outlive the set).  NULL on ENOMEM. */
cq_tasks *cq_tasks_new(const cq_tasks_conf *conf);

/* Free every task left without a word to Redis (their jobs stay inflight
 * there for reclaim), then the set.  NULL is a no-op. */
void cq_tasks_free(cq_tasks *ts);

/* Start a task for an item taken under handle (copied).  trusted: the item
 * came from the daemon's own lists (an envelope of ours); otherwise it is
 * what a producer pushed, and is only ever a job (docs/design.md §3). */
void cq_task_start(cq_tasks *ts, const char *handle, const char *item, size_t len, bool trusted);

/* Shutdown: no request starts any more; jobs waiting here and jobs whose
 * claim answers from now on go back to the queue. */
void cq_tasks_stop(cq_tasks *ts);

/* Tasks in state st; all tasks held. */
size_t cq_tasks_count(const cq_tasks *ts, cq_task_state st);
size_t cq_tasks_held(const cq_tasks *ts);

/* Does a task hold this handle? */
bool cq_tasks_holds(const cq_tasks *ts, const char *handle);

/* The handles of every task waiting for its provider or its claim (for an
 * ownership check), *n of them; heap (free), NULL when none or no memory. */
const char **cq_tasks_waiting(const cq_tasks *ts, size_t *n);

/* The job of handle is no longer this worker's (taken back while it could
 * not reach Redis): a task that waits is let go without a call and
 * without an outcome; one in a request finishes it (its write will find
 * the job gone). */
void cq_tasks_drop(cq_tasks *ts, const char *handle);

/* Every heartbeat: a job that waited here so long that its claim would
 * lapse before its request could end goes back to delayed. */
void cq_tasks_sweep(cq_tasks *ts);

/* How long a claim lasts (ms, Redis time): the worker's lease (the longest
 * a job may wait here for its provider), the request's timeout and a
 * margin for clocks and the write of its end (docs/design.md §7). */
uint64_t cq_claim_lease(const cq_config *cfg, const cq_provider_conf *pc);

const cq_task_stats *cq_tasks_stats(const cq_tasks *ts);

/* "new", "claiming", "queued", "calling", "checking", "ending", "freed". */
/* Is from -> to a legal move (docs/design.md §4)?  The unit test walks
 * this table. */
bool cq_task_move_legal(cq_task_state from, cq_task_state to);

const char *cq_task_state_name(cq_task_state st);

/* Answers: task is the cq_task the request hook was given. */
void cq_task_claimed(void *task, const cq_claim_result *r);
void cq_task_written(void *task, cq_write w, const char *error);
void cq_task_answered(void *task, const cq_response *resp);

#endif
