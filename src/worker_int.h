/*
 * worker_int.h - what worker.c (life cycle, fetching, timers) and task.c
 * (one job from fetch to outcome) share.  Not installed.
 */
#ifndef CANCELQ_WORKER_INT_H
#define CANCELQ_WORKER_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "cancelq/adapter.h"
#include "cancelq/batch.h"
#include "cancelq/breaker.h"
#include "cancelq/config.h"
#include "cancelq/cred.h"
#include "cancelq/envelope.h"
#include "cancelq/http.h"
#include "cancelq/job.h"
#include "cancelq/metrics.h"
#include "cancelq/ratelimit.h"
#include "cancelq/redis.h"
#include "cancelq/worker.h"

#define CQ_KEY_MAX 320     /* "{prefix}:idem:" + a 200-byte key, with room */
#define CQ_FETCH_BATCH 256 /* jobs taken per round trip at most */
/* While a fetch is in flight, another goes only for this many free slots:
 * a slot freed now and then waits for the reply instead of costing a
 * round trip of its own. */
#define CQ_FETCH_MIN(conc) ((conc) / 8 > 0 ? (conc) / 8 : 1)
/* Jobs held beyond [worker] concurrency (which bounds requests in flight):
 * fetched and claimed ahead, they wait in their instance's queue, so a
 * request slot that frees is taken at once instead of after the fetch and
 * claim round trips (at 50 ms per request and 1000 slots those held ~40 %
 * of the slots idle; docs/bench.md).  An eighth: each held job costs ~2 KiB of heap. */
#define CQ_PREFETCH(conc) ((conc) / 8 > 0 ? (conc) / 8 : 1)
#define CQ_HANDLE_MAX 32
#define CQ_MAX_ACTIONS 8 /* actions per adapter counted in metrics */

/* The final statuses of DESIGN.md section 5, in metrics order. */
typedef enum cq_status {
    CQ_ST_SUCCEEDED,
    CQ_ST_ALREADY_DONE,
    CQ_ST_DUPLICATE,
    CQ_ST_FAILED,
    CQ_ST_EXHAUSTED,
    CQ_ST_EXPIRED,
    CQ_ST_INVALID,
    CQ_ST_CONFLICT,
    CQ_ST_COUNT
} cq_status;

struct task;

/* Fairness: a job that finds this many jobs of its provider already
 * waiting locally (for a slot, a rate-limit token or an OAuth token) goes
 * back to {P}:delayed for CQ_FAIR_DELAY_MS (+ up to as much jitter)
 * without spending an attempt, so one slow or failing provider holds at
 * most concurrency (in flight) + concurrency + burst (waiting) of the
 * worker's slots. */
#define CQ_FAIR_WAIT_MAX(pc) ((pc)->concurrency + ((pc)->rate > 0 ? (pc)->burst : 0))
#define CQ_FAIR_DELAY_MS 300

/* A provider instance at run time. */
typedef struct cq_provider {
    cq_worker *w;
    const cq_provider_conf *conf;
    const cq_adapter *adapter;
    cq_cred *cred;          /* the token (static file or OAuth2) */
    int active;             /* requests in flight */
    struct task *wait_head; /* tasks waiting for a slot or a rate token, FIFO */
    struct task *wait_tail;
    int nwait;        /* tasks in the wait queue */
    int ncred;        /* tasks waiting for an OAuth token */
    cq_bucket bucket; /* rate limit, with the 429 pause */
    cq_breaker breaker;
    uv_timer_t pump_timer; /* wakes the wait queue when the bucket refills */
    bool pump_armed;
    bool timer_init;
    uint64_t rate_waits;                        /* times the queue waited for the bucket */
    uint64_t pauses;                            /* 429 pauses of the instance */
    uint64_t breaker_deferred;                  /* jobs put back because the breaker was open */
    uint64_t breaker_changes[3];                /* transitions into closed, open, half_open */
    uint64_t fair_bounced;                      /* jobs put back by the fairness bound */
    uint64_t jobs[CQ_MAX_ACTIONS][CQ_ST_COUNT]; /* outcomes by action and status */
    uint64_t attempts;                          /* provider calls (status checks not included) */
    uint64_t checks;                            /* status lookups */
    cq_histogram duration;                      /* request durations, seconds */
} cq_provider;

typedef struct cq_stats {
    uint64_t fetched, finished, retried, lost_ownership, calls, checks;
    uint64_t invalid_unknown_provider; /* invalid jobs not attributable to a provider */
    long long depth_jobs, depth_delayed, depth_dead; /* polled for metrics, -1 unknown */
} cq_stats;

struct cq_worker {
    uv_loop_t *loop;
    const cq_config *cfg;
    const char *id;
    char k_prefix[CQ_KEY_MAX]; /* "{P}:" */
    char k_jobs[CQ_KEY_MAX];
    char k_inflight[CQ_KEY_MAX];
    char k_seq[CQ_KEY_MAX];
    char k_workers[CQ_KEY_MAX];
    char k_delayed[CQ_KEY_MAX];
    char k_dead[CQ_KEY_MAX];
    char k_results[CQ_KEY_MAX];
    char maxlen[24];
    char idem_ttl[24];

    cq_redis *main;     /* scripts and everything else */
    cq_batch claims;    /* claim.lua calls of this turn of the loop */
    cq_batch finishes;  /* finish.lua calls of this turn of the loop */
    char claim_now[24]; /* the claims' "now", set when they are sent */
    uv_prepare_t flush; /* sends the batches before the loop waits for I/O */
    bool flush_on;
    cq_redis *block; /* the blocking wait for new jobs */
    cq_http *http;
    cq_provider *providers;
    size_t nproviders;

    struct task *tasks; /* every job held, doubly linked */
    size_t ntasks;
    size_t http_active;    /* requests in flight, all instances: <= [worker] concurrency */
    bool global_wait;      /* an instance's queue waits for that limit */
    size_t nclaiming;      /* of those, jobs whose claim is on its way to Redis */
    size_t nending;        /* of those, jobs whose finish or release is on its way
                            * to Redis: their slots may be fetched for already (the
                            * fetch reply comes after the writes on the same
                            * connection, so at most a fetch batch more is held) */
    bool started;          /* identity settled, leftovers reclaimed */
    size_t fetch_reserved; /* slots that fetches in flight may fill */
    unsigned fetches_in_flight;
    bool want_fetch; /* slots were freed: fetch at the next flush */
    bool blocking;
    bool stopping;
    bool closed;
    int exit_code;
    int64_t promote_at;    /* when the promote timer fires, unix ms */
    uint64_t hb_last_seen; /* identity check: the other holder's heartbeat */
    cq_stats stats;

    uv_timer_t hb_timer;
    uv_timer_t promote_timer;
    uv_timer_t stop_timer;
    uv_timer_t identity_timer;
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t watchdog;
    bool watchdog_on;
    cq_metrics *metrics; /* NULL unless [worker] metrics_listen */
};

/* task.c ------------------------------------------------------------------ */

/* Start processing an item taken from the queue under handle.  The item is
 * copied. */
void cq_task_start(cq_worker *w, const char *handle, const char *item, size_t len);

/* Set up w->claims and w->finishes on w->main (after it exists). */
void cq_task_batches_init(cq_worker *w);

/* Shutdown: give back every job that has not reached the provider yet. */
void cq_task_release_waiting(cq_worker *w);

/* A provider's pump timer fired: send what the bucket allows now. */
void cq_task_pump_timer_cb(uv_timer_t *h);

/* Free every task left after the connections closed (their jobs stay in
 * Redis for reclaim). */
void cq_task_free_all(cq_worker *w);

/* Is a task holding this handle? */
bool cq_task_known(const cq_worker *w, const char *handle, size_t len);

/* worker.c ---------------------------------------------------------------- */

int64_t cq_now_ms(void);

/* A task ended and released its slot: fetch more, or finish stopping. */
void cq_worker_slot_freed(cq_worker *w);

/* Something was added to a batch (or slots were freed): send the batches
 * (and a fetch) once this turn of the loop is over. */
void cq_worker_flush_soon(cq_worker *w);

/* A retry was scheduled at due_ms: make sure promotion runs by then. */
void cq_worker_delayed_at(cq_worker *w, int64_t due_ms);

/* worker_metrics.c --------------------------------------------------------- */

/* Name of a status; cq_status_from_name returns CQ_ST_COUNT when unknown. */
const char *cq_status_name(cq_status st);
cq_status cq_status_from_name(const char *name);

/* Count an ended job (p NULL when the job named no known provider). */
void cq_metrics_job_done(cq_worker *w, cq_provider *p, const cq_action *a, const char *status);

/* Start the metrics listener when configured.  0 or -errno with err. */
int cq_worker_metrics_start(cq_worker *w, cq_err *err);

/* Poll queue depths for the metrics page (heartbeat). */
void cq_worker_metrics_poll(cq_worker *w);

/* Tell systemd how we are doing (STATUS=). */
void cq_worker_notify_status(cq_worker *w);

#endif
