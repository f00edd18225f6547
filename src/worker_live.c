/*
 * worker_live.c - the worker among its peers (docs/design.md §3): its
 * identity, heartbeat, the reclaim of dead workers' jobs, the promotion of
 * due retries, and what a reconnect must put right.
 */
#include <stdio.h>
#include <stdlib.h>
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
    cq_worker_fetch(w); /* what became due is in {P}:retry now: take it */
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

/* --- fencing ---------------------------------------------------------------- */

static void set_fenced(cq_worker *w, bool on)
{
    char ms[24];

    if (w->fenced == on)
        return;
    w->fenced = on;
    snprintf(ms, sizeof(ms), "%llu", (unsigned long long)(uv_now(w->loop) - w->hb_acked));
    if (on) {
        w->fences++;
        cq_log(CQ_LOG_WARN, "fenced", "worker", w->id, "since_ack_ms", ms, "detail",
               "no heartbeat acknowledged for too long: no request starts until Redis answers "
               "and ownership is checked",
               NULL);
    } else {
        cq_log(CQ_LOG_NOTICE, "unfenced", "worker", w->id, "detail",
               "Redis answers and the jobs still held are ours again", NULL);
    }
    cq_worker_notify_status(w);
}

bool cq_live_may_send(void *data)
{
    cq_worker *w = data;

    if (!w->fenced && uv_now(w->loop) - w->hb_acked > CQ_FENCE_MS(w->cfg->worker.lease_ms))
        set_fenced(w, true);
    return !w->fenced;
}

/* Which jobs are still ours after a fence: those no longer in our inflight
 * hash were taken back by a peer; they are let go without a call.  Jobs
 * taken since the check was sent are ours (a fetch needs registration). */
static void owned_cb(void *data, bool ok, const bool *held, size_t n)
{
    cq_worker *w = data;
    size_t i;

    w->owned_checking = false;
    for (i = 0; ok && !w->stopping && i < n && i < w->nowned; i++) {
        if (!held[i])
            cq_tasks_drop(w->tasks, w->owned[i]);
    }
    for (i = 0; i < w->nowned; i++)
        free(w->owned[i]);
    free(w->owned);
    w->owned = NULL;
    w->nowned = 0;
    if (!ok || w->stopping)
        return; /* the next heartbeat asks again */
    set_fenced(w, false);
    cq_providers_kick(w->providers);
}

static void check_owned(cq_worker *w)
{
    const char **handles;
    size_t n = 0, i;

    if (w->owned_checking)
        return;
    handles = cq_tasks_waiting(w->tasks, &n);
    if (n == 0) {
        free(handles);
        set_fenced(w, false);
        cq_providers_kick(w->providers);
        return;
    }
    /* the tasks may go before the answer comes: keep copies */
    w->owned = calloc(n, sizeof(*w->owned));
    for (i = 0; w->owned != NULL && i < n; i++) {
        if ((w->owned[i] = strdup(handles[i])) == NULL)
            break;
    }
    w->nowned = i;
    if (w->owned != NULL && i == n &&
        cq_store_owned(w->store, (const char *const *)w->owned, n, owned_cb, w) == 0)
        w->owned_checking = true;
    else
        owned_cb(w, false, NULL, 0);
    free(handles);
}

/* --- heartbeat and reclaim ------------------------------------------------- */

typedef struct beat {
    cq_worker *w;
    uint64_t sent; /* loop time */
} beat;

static void beat_cb(void *data, long long v)
{
    beat *b = data;
    cq_worker *w = b->w;
    uint64_t sent = b->sent;

    free(b);
    if (v < 0 || w->stopping)
        return;
    if (sent > w->hb_acked)
        w->hb_acked = sent;
    if (v == 0 && w->registered)
        cq_log(CQ_LOG_WARN, "worker_reregistered", "worker", w->id, "detail",
               "a peer had found this worker dead and taken its jobs back", NULL);
    w->registered = true;
    if (w->fenced || v == 0)
        check_owned(w);
}

static void send_beat(cq_worker *w)
{
    beat *b = malloc(sizeof(*b));

    if (b == NULL)
        return;
    b->w = w;
    b->sent = uv_now(w->loop);
    w->beats++;
    if (cq_store_heartbeat(w->store, beat_cb, b) != 0)
        free(b);
}

static void reclaim_cb(void *data, long long n)
{
    cq_worker *w = data;

    if (n > 0) {
        char s[24];

        cq_worker_fetch(w); /* they wait in {P}:retry */
        snprintf(s, sizeof(s), "%lld", n);
        cq_log(CQ_LOG_WARN, "jobs_reclaimed", "count", s, "detail",
               "taken back from a dead worker (or our previous run)", NULL);
    }
}

static void reconcile(cq_worker *w);

#define RESULTS_WARN_EVERY_MS 60000 /* a backlog warning at most this often */

/* The outcome stream after this heartbeat's trim: warn when a consumer
 * group lags so far that entries it has not read are (acked: would be)
 * beyond results_maxlen. */
static void trim_cb(void *data, const cq_results_info *ri)
{
    cq_worker *w = data;
    long long maxlen = w->cfg->worker.results_maxlen, worst = 0;
    const char *who = "";
    char n[24], m[24];
    size_t i;

    if (ri == NULL)
        return;
    w->results = *ri;
    for (i = 0; i < ri->ngroups; i++) {
        if (ri->groups[i].lag + ri->groups[i].pending > worst) {
            worst = ri->groups[i].lag + ri->groups[i].pending;
            who = ri->groups[i].name;
        }
    }
    /* maxlen: near the cut (80 %) it is about to lose entries; acked: the
     * stream grows past results_maxlen for it */
    if (worst <= (w->cfg->worker.results_trim == CQ_TRIM_ACKED ? maxlen : maxlen * 4 / 5))
        return;
    if (w->results_warned != 0 && uv_now(w->loop) - w->results_warned < RESULTS_WARN_EVERY_MS)
        return;
    w->results_warned = uv_now(w->loop);
    snprintf(n, sizeof(n), "%lld", worst);
    snprintf(m, sizeof(m), "%lld", maxlen);
    cq_log(CQ_LOG_WARN, "results_backlog", "group", who, "unread", n, "results_maxlen", m, "detail",
           w->cfg->worker.results_trim == CQ_TRIM_ACKED
               ? "a consumer group is behind: its unread outcomes are kept, the stream grows "
                 "past results_maxlen"
               : "a consumer group is behind: outcomes it has not read are trimmed at "
                 "results_maxlen (results_trim = acked keeps them)",
           NULL);
}

static void hb_timer_cb(uv_timer_t *h)
{
    cq_worker *w = h->data;
    uint64_t now = uv_now(w->loop);

    if (!w->started || w->stopping)
        return;
    send_beat(w);
    cq_store_reclaim(w->store, false, reclaim_cb, w);
    cq_live_may_send(w); /* logs the fence when it starts */
    cq_tasks_sweep(w->tasks);
    cq_providers_renew(w->providers);
    cq_store_trim(w->store, trim_cb, w);
    if (w->beats % CQ_RECONCILE_EVERY == 0)
        reconcile(w);
    cq_worker_metrics_poll(w);
    cq_worker_notify_status(w);
    if (w->promote_at == UINT64_MAX || w->promote_at + 1000 < now)
        promote_timer_cb(&w->promote_timer);
}

static void start_working(cq_worker *w)
{
    w->hb_acked = uv_now(w->loop); /* the identity check's answer just came */
    send_beat(w);
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

    cq_store_identity(w->store, identity_cb, w);
}

void cq_live_identity(cq_worker *w)
{
    cq_store_identity(w->store, identity_cb, w);
}

/* Refuse to run beside a live process with our id: a fresh heartbeat is
 * watched for two intervals; if it moves, someone else is alive; if not,
 * its holder is dead and we take over. */
static void identity_cb(void *data, long long score)
{
    cq_worker *w = data;

    if (score == -2 || w->started || w->stopping)
        return; /* lost: the next ready event asks again */
    if (score < 0 && score != -4) {
        start_working(w); /* nobody holds the id (or Redis refused: as before) */
        return;
    }
    if (w->hb_last_seen == 0) {
        if (score == -4) {
            start_working(w); /* stale (Redis time): its holder is gone */
            return;
        }
        w->hb_last_seen = score;
        cq_log(CQ_LOG_NOTICE, "worker_id_in_use", "worker", w->id, "detail",
               "heartbeat is fresh; watching it for two intervals", NULL);
        uv_timer_start(&w->identity_timer, identity_timer_cb, 2 * w->cfg->worker.heartbeat_ms + 100,
                       0);
        return;
    }
    if (score >= 0 && score != w->hb_last_seen) {
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
 * reply was lost, or were left there by a write that failed: give them
 * back to the queue, marked unknown (we cannot tell whether they were
 * called).  The HKEYS reply comes after the replies of every fetch and
 * write sent before it (one connection, in order), so a job it lists is
 * either held by a task or nobody's. */
static void reconcile_cb(void *data, const cq_item *handles, size_t n)
{
    cq_worker *w = data;
    size_t i;

    for (i = 0; i < n; i++) {
        cq_release r;

        if (cq_tasks_holds(w->tasks, handles[i].handle))
            continue;
        memset(&r, 0, sizeof(r));
        r.handle = handles[i].handle;
        r.unknown = true;
        cq_log(CQ_LOG_NOTICE, "job_returned", "handle", handles[i].handle, "reason",
               "in our inflight hash but held by no task", NULL);
        cq_store_release(w->store, &r, NULL);
    }
}

static void reconcile(cq_worker *w)
{
    cq_store_inflight(w->store, reconcile_cb, w);
}

void cq_live_reconnected(cq_worker *w)
{
    reconcile(w);
    send_beat(w);
}
