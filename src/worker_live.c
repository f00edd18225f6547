/*
 * worker_live.c - the worker among its peers (docs/design.md §3): its
 * identity, heartbeat, the reclaim of dead workers' jobs, the promotion of
 * due retries, and what a reconnect must put right.
 */
#include <stdio.h>
#include <string.h>

#include "cancelq/clock.h"
#include "cancelq/log.h"
#include "cancelq/notify.h"
#include "worker_int.h"

#define PROMOTE_MIN_MS 5 /* promotion never spins faster than this */

/* --- promotion of due retries -------------------------------------------- */

static void promote_timer_cb(uv_timer_t *h);

static void arm_promote(cq_worker *w, uint64_t wait)
{
    w->promote_at = uv_now(w->loop) + wait;
    uv_timer_start(&w->promote_timer, promote_timer_cb, wait, 0);
}

static void promote_cb(void *data, long long next_in)
{
    cq_worker *w = data;
    uint64_t wait = w->cfg->worker.heartbeat_ms;

    if (next_in == -2 || w->stopping)
        return;
    if (next_in >= 0 && (uint64_t)next_in < wait)
        wait = next_in < PROMOTE_MIN_MS ? PROMOTE_MIN_MS : (uint64_t)next_in;
    arm_promote(w, wait);
}

static void promote_timer_cb(uv_timer_t *h)
{
    cq_worker *w = h->data;

    if (w->stopping || !w->started)
        return;
    /* if this is lost the heartbeat re-arms promotion */
    w->promote_at = UINT64_MAX;
    cq_store_promote(w->store, promote_cb, w);
}

void cq_live_promote_in(cq_worker *w, uint64_t delay_ms)
{
    if (w->stopping || uv_now(w->loop) + delay_ms >= w->promote_at)
        return;
    arm_promote(w, delay_ms);
}

/* --- heartbeat and reclaim ------------------------------------------------- */

static void reclaim_cb(void *data, long long n)
{
    (void)data;
    if (n > 0) {
        char s[24];

        snprintf(s, sizeof(s), "%lld", n);
        cq_log(CQ_LOG_WARN, "jobs_reclaimed", "count", s, "detail",
               "taken back from a dead worker (or our previous run)", NULL);
    }
}

static void hb_timer_cb(uv_timer_t *h)
{
    cq_worker *w = h->data;
    uint64_t now = uv_now(w->loop);

    if (!w->started || w->stopping)
        return;
    cq_store_heartbeat(w->store, NULL, NULL);
    cq_store_reclaim(w->store, false, reclaim_cb, w);
    cq_worker_metrics_poll(w);
    cq_worker_notify_status(w);
    if (w->promote_at == UINT64_MAX || w->promote_at + 1000 < now)
        promote_timer_cb(&w->promote_timer);
}

static void start_working(cq_worker *w)
{
    cq_store_heartbeat(w->store, NULL, NULL);
    cq_store_reclaim(w->store, true, reclaim_cb, w);
    w->started = true;
    cq_log(CQ_LOG_NOTICE, "worker_started", "worker", w->id, NULL);
    /* Redis answers, our identity is settled and every token_file is read
     * (OAuth2 tokens are minted when the first job needs one) */
    cq_notify_ready();
    cq_worker_notify_status(w);
    /* pings from the loop itself: a stuck loop stops them and systemd
     * restarts us (before READY, TimeoutStartSec= is the bound) */
    w->watchdog_on = cq_notify_watchdog_start(w->loop, &w->watchdog) >= 0;
    uv_timer_start(&w->hb_timer, hb_timer_cb, w->cfg->worker.heartbeat_ms,
                   w->cfg->worker.heartbeat_ms);
    promote_timer_cb(&w->promote_timer);
    cq_worker_fetch(w);
}

/* --- identity ---------------------------------------------------------------- */

static void identity_cb(void *data, long long score);

static void identity_timer_cb(uv_timer_t *h)
{
    cq_worker *w = h->data;

    cq_store_heartbeat_of(w->store, identity_cb, w);
}

void cq_live_identity(cq_worker *w)
{
    cq_store_heartbeat_of(w->store, identity_cb, w);
}

/* Refuse to run beside a live process with our id: a fresh heartbeat is
 * watched for two intervals; if it moves, someone else is alive; if not,
 * its holder is dead and we take over. */
static void identity_cb(void *data, long long score)
{
    cq_worker *w = data;

    if (score == -2 || w->started || w->stopping)
        return; /* lost: the next ready event asks again */
    if (score < 0) {
        start_working(w); /* nobody holds the id */
        return;
    }
    if (w->hb_last_seen == 0) {
        if (score + (long long)w->cfg->worker.lease_ms < (long long)cq_clock_unix_ms()) {
            start_working(w); /* stale: its holder is gone */
            return;
        }
        w->hb_last_seen = score;
        cq_log(CQ_LOG_NOTICE, "worker_id_in_use", "worker", w->id, "detail",
               "heartbeat is fresh; watching it for two intervals", NULL);
        uv_timer_start(&w->identity_timer, identity_timer_cb, 2 * w->cfg->worker.heartbeat_ms + 100,
                       0);
        return;
    }
    if (score != w->hb_last_seen) {
        cq_log(CQ_LOG_ERR, "worker_id_taken", "worker", w->id, "error",
               "another live process holds this worker id (its heartbeat moves); set "
               "[worker] id to a unique value",
               NULL);
        w->exit_code = 1;
        w->stopping = true;
        cq_worker_stop_finish(w);
        return;
    }
    cq_log(CQ_LOG_NOTICE, "worker_takeover", "worker", w->id, "detail",
           "previous holder of this id is dead; taking its jobs back", NULL);
    start_working(w);
}

/* --- after a reconnect --------------------------------------------------------- */

/* Jobs in our inflight hash that no task holds were taken by a fetch whose
 * reply was lost: give them back to the queue. */
static void reconcile_cb(void *data, const cq_item *handles, size_t n)
{
    cq_worker *w = data;
    size_t i;

    for (i = 0; i < n; i++) {
        cq_release r = {handles[i].handle, NULL, 0};

        if (cq_tasks_holds(w->tasks, handles[i].handle))
            continue;
        cq_log(CQ_LOG_NOTICE, "job_returned", "handle", handles[i].handle, "reason",
               "taken by a fetch whose reply was lost", NULL);
        cq_store_release(w->store, &r, NULL);
    }
}

void cq_live_reconnected(cq_worker *w)
{
    cq_store_inflight(w->store, reconcile_cb, w);
    cq_store_heartbeat(w->store, NULL, NULL);
}
