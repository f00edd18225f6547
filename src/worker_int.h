/*
 * worker_int.h - what the pieces of the worker share: worker.c (wiring,
 * fetching, signals, the graceful stop), worker_live.c (identity,
 * heartbeat, reclaim, promotion of due retries) and worker_metrics.c
 * (/metrics and STATUS=).  Not installed; task.c and the other modules
 * never see it.
 */
#ifndef CANCELQ_WORKER_INT_H
#define CANCELQ_WORKER_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "cancelq/config.h"
#include "cancelq/http.h"
#include "cancelq/metrics.h"
#include "cancelq/policy.h"
#include "cancelq/provider.h"
#include "cancelq/store.h"
#include "cancelq/task.h"
#include "cancelq/worker.h"

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

/* Fenced when the last acknowledged heartbeat went this long ago: below
 * the lease after which peers take our jobs (docs/design.md §7), with a
 * heartbeat interval (lease / 3) to spare for clock rates and the time a
 * started request needs to be claimed and sent. */
#define CQ_FENCE_MS(lease) ((lease)*2 / 3)
/* Every this many heartbeats the inflight hash is reconciled with the
 * tasks held (jobs left there by a write that failed go back). */
#define CQ_RECONCILE_EVERY 4

struct cq_worker {
    uv_loop_t *loop;
    cq_config *cfg; /* limits change in place on SIGHUP */
    const char *id;
    char holder[160]; /* "<id>/<incarnation>": this process in claims */
    cq_store *store;
    cq_http *http;
    cq_providers *providers;
    cq_policy policy;
    cq_tasks *tasks;

    size_t fetch_reserved; /* slots that fetches in flight may fill */
    unsigned fetches_in_flight;
    bool want_fetch; /* slots were freed: fetch at the next flush */
    bool blocking;   /* the blocking wait for new jobs is armed */
    bool started;    /* identity settled, leftovers reclaimed */
    bool stopping;
    bool closed;
    int exit_code;
    uint64_t promote_at;    /* loop time the promote timer fires, UINT64_MAX: not armed */
    long long hb_last_seen; /* identity check: the other holder's heartbeat */
    uint64_t hb_acked;      /* loop time the last acknowledged heartbeat was sent */
    unsigned beats;         /* heartbeats sent */
    bool fenced;            /* no request starts (docs/design.md §7) */
    bool owned_checking;    /* an ownership check is on its way */
    char **owned;           /* the handles it asks about (owned copies) */
    size_t nowned;
    bool registered;            /* a heartbeat of ours was acknowledged */
    uint64_t fences;            /* times fenced */
    long long depth[CQ_DEPTHS]; /* queue depths polled for metrics, -1 unknown */
    cq_results_info results;    /* the outcome stream at the last heartbeat */
    uint64_t results_warned;    /* loop time of the last backlog warning */

    uv_timer_t hb_timer;
    uv_timer_t promote_timer;
    uv_timer_t stop_timer;
    uv_timer_t identity_timer;
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t watchdog;
    bool watchdog_on;
    cq_metrics *metrics; /* NULL unless [worker] metrics_listen */
};

/* worker.c ------------------------------------------------------------------ */

/* Fill the free slots (now, or at the next flush when one is in flight). */
void cq_worker_fetch(cq_worker *w);

/* Every job has ended or gone back: leave the worker set and stop. */
void cq_worker_stop_finish(cq_worker *w);

/* worker_live.c ----------------------------------------------------------------- */

/* Settle our identity (docs/design.md §3), then start working. */
void cq_live_identity(cq_worker *w);

/* The main connection is ready again after a loss. */
void cq_live_reconnected(cq_worker *w);

/* The providers' gate: false while fenced (checked before every request). */
bool cq_live_may_send(void *data);

/* A retry is due in delay_ms: make sure promotion runs by then. */
void cq_live_promote_in(cq_worker *w, uint64_t delay_ms);

/* worker_share.c ------------------------------------------------------------- */

/* Share the providers' limits with the deployment (hooks to the store). */
void cq_worker_share_init(cq_worker *w);

/* worker_metrics.c ----------------------------------------------------------------- */

/* Start the metrics listener when configured.  0 or -errno with err. */
int cq_worker_metrics_start(cq_worker *w, cq_err *err);

/* Poll queue depths for the metrics page (heartbeat). */
void cq_worker_metrics_poll(cq_worker *w);

/* Tell systemd how we are doing (STATUS=). */
void cq_worker_notify_status(cq_worker *w);

#endif
