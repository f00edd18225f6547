/*
 * worker.c - cancelqd's engine on the loop: it wires the store (Redis),
 * the HTTP engine, the provider instances and the tasks together, fetches
 * jobs for free slots, handles signals and stops gracefully.  Identity,
 * heartbeat, reclaim and promotion are in worker_live.c; one job's life is
 * task.c's.
 *
 * Dependencies go one way: main -> worker -> task -> {provider, store,
 * policy, http, adapters} -> pure modules.  The worker hands task.c its
 * seams (cq_task_io) and routes the store's and the HTTP engine's answers
 * back to it.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "cancelq/clock.h"
#include "cancelq/log.h"
#include "cancelq/notify.h"
#include "worker_int.h"

#define STOP_REDIS_MARGIN_MS 5000 /* after the grace: time to write what ended */

static void close_all(cq_worker *w);

/* --- the tasks' seams ------------------------------------------------------- */

static int io_claim(void *data, cq_task *t, const cq_claim *c)
{
    cq_worker *w = data;

    return cq_store_claim(w->store, c, t);
}

static int io_finish(void *data, cq_task *t, const cq_outcome *o)
{
    cq_worker *w = data;

    return cq_store_finish(w->store, o, t);
}

static int io_release(void *data, cq_task *t, const cq_release *r)
{
    cq_worker *w = data;
    int rc = cq_store_release(w->store, r, t);

    if (rc == 0 && r->delay_ms > 0)
        cq_live_promote_in(w, r->delay_ms);
    return rc;
}

static int io_send(void *data, cq_task *t, const cq_request *req, const cq_http_opts *o)
{
    cq_worker *w = data;

    return cq_http_send(w->http, req, o, cq_task_answered, t);
}

static int64_t io_now(void *data)
{
    (void)data;
    return cq_clock_unix_ms();
}

static uint64_t io_mono(void *data)
{
    cq_worker *w = data;

    return uv_now(w->loop);
}

/* A task moved: a job whose end is decided no longer needs its slot (the
 * fetch reply comes after the writes on the same connection, so at most a
 * fetch batch more is held); a freed one may let the stop finish. */
static void io_moved(void *data, cq_task_state from, cq_task_state to)
{
    cq_worker *w = data;

    (void)from;
    if (to != CQ_TS_ENDING && to != CQ_TS_FREED)
        return;
    if (w->closed)
        return;
    if (w->stopping) {
        if (cq_tasks_held(w->tasks) == 0)
            cq_worker_stop_finish(w);
        return;
    }
    w->want_fetch = true;
    cq_store_flush_soon(w->store);
}

/* --- fetching ---------------------------------------------------------------- */

static void block_wait(cq_worker *w);

static void wait_cb(void *data, bool answered)
{
    cq_worker *w = data;

    w->blocking = false;
    if (answered)
        cq_worker_fetch(w);
}

/* Wait on the blocking connection until the queue has a job. */
static void block_wait(cq_worker *w)
{
    if (w->blocking || w->stopping)
        return;
    if (cq_store_wait_jobs(w->store, wait_cb, w) == 0)
        w->blocking = true;
}

typedef struct fetch_req {
    cq_worker *w;
    size_t n;
} fetch_req;

static void fetch_cb(void *data, int status, const cq_item *items, size_t n)
{
    fetch_req *fr = data;
    cq_worker *w = fr->w;
    size_t i;

    w->fetch_reserved -= fr->n;
    w->fetches_in_flight--;
    free(fr);
    if (status == -ECANCELED)
        return;
    if (status == -EAGAIN) {
        /* a peer found us dead and took our jobs: register again first
         * (the heartbeat does), then fetch */
        cq_log(CQ_LOG_WARN, "fetch_refused", "worker", w->id, "detail",
               "not registered in {P}:workers; fetching again after the next heartbeat", NULL);
        return;
    }
    for (i = 0; i < n; i++)
        cq_task_start(w->tasks, items[i].handle, items[i].text, items[i].len, items[i].trusted);
    if (status == 0 && n > 0 && !w->stopping) {
        w->want_fetch = true; /* there may be more right away */
        cq_store_flush_soon(w->store);
    } else if (w->fetches_in_flight == 0) {
        block_wait(w);
    }
}

/* Fill the free slots: one fetch for up to CQ_FETCH_MAX of them.  Slots a
 * fetch in flight may fill are reserved, so fetches never take more jobs
 * than there are slots; while one is in flight, a new one waits for a
 * worthwhile number of free slots (fewer round trips). */
void cq_worker_fetch(cq_worker *w)
{
    size_t c = (size_t)w->cfg->worker.concurrency, conc = c + CQ_PREFETCH(c),
           held =
               cq_tasks_held(w->tasks) - cq_tasks_count(w->tasks, CQ_TS_ENDING) + w->fetch_reserved,
           n;
    fetch_req *fr;

    w->want_fetch = false;
    if (!w->started || w->stopping || !cq_store_ready(w->store) || held >= conc)
        return;
    n = conc - held < CQ_FETCH_MAX ? conc - held : CQ_FETCH_MAX;
    if (w->fetches_in_flight > 0 && n < CQ_FETCH_MIN(conc))
        return; /* the reply of the one in flight fetches again */
    fr = malloc(sizeof(*fr));
    if (fr == NULL)
        return; /* the next freed slot tries again */
    fr->w = w;
    fr->n = n;
    if (cq_store_fetch(w->store, n, fetch_cb, fr) != 0) {
        free(fr);
        return;
    }
    w->fetch_reserved += n;
    w->fetches_in_flight++;
}

/* After this turn's batches went: fetch for the slots freed meanwhile. */
static void store_flushed(void *data)
{
    cq_worker *w = data;

    if (w->want_fetch)
        cq_worker_fetch(w);
}

/* --- the store's events -------------------------------------------------------- */

static void store_ready(void *data)
{
    cq_worker *w = data;

    if (!w->started) {
        if (w->hb_last_seen == 0)
            cq_live_identity(w);
        return;
    }
    cq_live_reconnected(w);
    cq_worker_fetch(w);
}

static void store_lost(void *data, const char *why)
{
    cq_worker *w = data;

    /* queued commands (a fetch too) are resent by the connection itself */
    cq_log(CQ_LOG_WARN, "redis_unavailable", "worker", w->id, "reason", why, "detail",
           "requests in flight go on; their outcomes are written once Redis is back", NULL);
}

/* --- stopping --------------------------------------------------------------------- */

static void close_all(cq_worker *w)
{
    if (w->closed)
        return;
    w->closed = true;
    w->stopping = true;
    uv_timer_stop(&w->hb_timer);
    uv_timer_stop(&w->promote_timer);
    uv_timer_stop(&w->stop_timer);
    uv_timer_stop(&w->identity_timer);
    uv_signal_stop(&w->sig_term);
    uv_signal_stop(&w->sig_int);
    uv_signal_stop(&w->sig_hup);
    if (w->tasks != NULL)
        cq_tasks_stop(w->tasks);
    cq_http_free(w->http); /* requests in flight answer ABORTED: back to the queue */
    w->http = NULL;
    cq_metrics_free(w->metrics);
    w->metrics = NULL;
    /* jobs whose claim or end was not sent stay inflight for reclaim */
    cq_store_free(w->store);
    w->store = NULL;
    uv_stop(w->loop);
}

static void leave_cb(void *data, long long v)
{
    cq_worker *w = data;

    if (v >= 0)
        cq_log(CQ_LOG_NOTICE, "worker_stopped", "worker", w->id, "heartbeat",
               v == 1 ? "removed" : "kept (jobs remain for reclaim)", NULL);
    close_all(w);
}

void cq_worker_stop_finish(cq_worker *w)
{
    if (w->closed)
        return;
    if (!w->started || !cq_store_ready(w->store) || cq_store_leave(w->store, leave_cb, w) != 0)
        close_all(w);
}

static void stop_timer_cb(uv_timer_t *h)
{
    cq_worker *w = h->data;
    size_t active = cq_http_active(w->http);

    if (active > 0) {
        char n[24];

        snprintf(n, sizeof(n), "%zu", active);
        cq_log(CQ_LOG_WARN, "shutdown_grace_over", "aborted", n, "detail",
               "requests still running go back to the queue marked unknown", NULL);
        cq_http_abort_all(w->http);
        uv_timer_start(&w->stop_timer, stop_timer_cb, STOP_REDIS_MARGIN_MS, 0);
        return;
    }
    cq_log(CQ_LOG_ERR, "shutdown_forced", "detail",
           "Redis did not take the last writes in time; jobs left inflight are reclaimed "
           "by the next start or another worker",
           NULL);
    close_all(w);
}

static void begin_stop(cq_worker *w, const char *why)
{
    if (w->stopping)
        return;
    w->stopping = true;
    cq_notify_stopping();
    cq_log(CQ_LOG_NOTICE, "worker_stopping", "reason", why, NULL);
    uv_timer_stop(&w->hb_timer);
    uv_timer_stop(&w->promote_timer);
    uv_timer_stop(&w->identity_timer);
    uv_timer_start(&w->stop_timer, stop_timer_cb, w->cfg->worker.shutdown_grace_ms, 0);
    cq_tasks_stop(w->tasks); /* what waits goes back to the queue */
    if (cq_tasks_held(w->tasks) == 0)
        cq_worker_stop_finish(w);
}

/* SIGHUP: the config file again; its limits take effect at once, a change
 * that needs a restart is refused (the key named) and nothing changes. */
static void reload_limits(cq_worker *w)
{
    cq_config *fresh;
    cq_err err;

    cq_err_clear(&err);
    fresh = cq_config_load(w->cfg->path, &err);
    if (fresh == NULL || cq_config_reload(w->cfg, fresh, &err) != 0) {
        cq_log(CQ_LOG_ERR, "config_reload_refused", "file", w->cfg->path, "error", err.msg,
               "detail", "the limits in force stay as they were", NULL);
        cq_config_free(fresh);
        return;
    }
    cq_config_free(fresh);
    cq_policy_init(&w->policy, &w->cfg->worker);
    cq_providers_reconfigure(w->providers);
    cq_log(CQ_LOG_NOTICE, "config_reloaded", "file", w->cfg->path, "detail",
           "limits, timeouts, breaker and retry settings in force", NULL);
}

static void signal_cb(uv_signal_t *h, int signum)
{
    cq_worker *w = h->data;

    if (signum != SIGHUP) {
        begin_stop(w, signum == SIGTERM ? "SIGTERM" : "SIGINT");
        return;
    }
    cq_notify_reloading();
    cq_providers_reload(w->providers);
    cq_log(CQ_LOG_NOTICE, "tokens_reloaded", "reason", "SIGHUP", NULL);
    reload_limits(w);
    cq_notify_ready();
}

/* --- construction ------------------------------------------------------------------ */

static void breaker_changed(void *data)
{
    cq_worker_notify_status(data);
}

/* This process in the claims it takes: a restart of the same worker id is
 * another holder, so it waits out its predecessor's leases like any peer. */
static void holder_init(cq_worker *w)
{
    uint64_t r = 0;

    if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
        r = (uint64_t)cq_clock_unix_ms() ^ ((uint64_t)getpid() << 32);
    snprintf(w->holder, sizeof(w->holder), "%.120s/%016llx", w->id, (unsigned long long)r);
}

static void timers_init(cq_worker *w)
{
    uv_timer_init(w->loop, &w->hb_timer);
    uv_timer_init(w->loop, &w->promote_timer);
    uv_timer_init(w->loop, &w->stop_timer);
    uv_timer_init(w->loop, &w->identity_timer);
    uv_signal_init(w->loop, &w->sig_term);
    uv_signal_init(w->loop, &w->sig_int);
    uv_signal_init(w->loop, &w->sig_hup);
    w->hb_timer.data = w->promote_timer.data = w->stop_timer.data = w;
    w->identity_timer.data = w->sig_term.data = w->sig_int.data = w->sig_hup.data = w;
    uv_signal_start(&w->sig_term, signal_cb, SIGTERM);
    uv_signal_start(&w->sig_int, signal_cb, SIGINT);
    uv_signal_start(&w->sig_hup, signal_cb, SIGHUP);
}

static int tasks_init(cq_worker *w)
{
    cq_tasks_conf tc;

    memset(&tc, 0, sizeof(tc));
    tc.cfg = w->cfg;
    tc.worker = w->id;
    tc.keys = cq_store_keys(w->store);
    tc.providers = w->providers;
    tc.policy = &w->policy;
    tc.io.data = w;
    tc.io.claim = io_claim;
    tc.io.finish = io_finish;
    tc.io.release = io_release;
    tc.io.send = io_send;
    tc.io.moved = io_moved;
    tc.io.now_ms = io_now;
    tc.io.mono_ms = io_mono;
    w->tasks = cq_tasks_new(&tc);
    return w->tasks != NULL ? 0 : -ENOMEM;
}

static cq_store *store_open(cq_worker *w, cq_err *err)
{
    cq_store_events ev;
    char *password = NULL;
    cq_store *s;
    int rc = 0;

    if (w->cfg->redis.password_file != NULL &&
        (cq_secret_read(w->cfg->redis.password_file, &password, err) != 0 ||
         (rc = cq_log_add_secret_checked(password)) < 0)) {
        cq_secret_free(password);
        return NULL;
    }
    if (password != NULL && rc == CQ_LOG_SECRET_SHORT)
        cq_log_secret_short(w->cfg->redis.password_file);
    memset(&ev, 0, sizeof(ev));
    ev.data = w;
    ev.ready = store_ready;
    ev.lost = store_lost;
    ev.flush = store_flushed;
    ev.claimed = cq_task_claimed;
    ev.written = cq_task_written;
    s = cq_store_new(w->loop, w->cfg, w->id, w->holder, password, &ev, err);
    cq_secret_free(password);
    return s;
}

cq_worker *cq_worker_new(uv_loop_t *loop, cq_config *cfg, cq_err *err)
{
    cq_worker *w = calloc(1, sizeof(*w));

    if (w == NULL) {
        cq_err_set(err, -ENOMEM, "nomem", "out of memory");
        return NULL;
    }
    w->loop = loop;
    w->cfg = cfg;
    w->id = cfg->worker.id;
    w->promote_at = UINT64_MAX;
    holder_init(w);
    for (int i = 0; i < CQ_DEPTHS; i++)
        w->depth[i] = -1;
    cq_policy_init(&w->policy, &cfg->worker);
    timers_init(w);
    w->http = cq_http_new(loop, cfg->worker.concurrency, err);
    if (w->http == NULL)
        goto fail;
    w->providers = cq_providers_new(loop, cfg, w->http, err);
    if (w->providers == NULL)
        goto fail;
    cq_providers_on_change(w->providers, breaker_changed, w);
    cq_providers_set_gate(w->providers, cq_live_may_send, w);
    cq_worker_share_init(w);
    if (cq_worker_metrics_start(w, err) != 0)
        goto fail;
    w->store = store_open(w, err);
    if (w->store == NULL)
        goto fail;
    if (tasks_init(w) != 0) {
        cq_err_set(err, -ENOMEM, "nomem", "out of memory");
        goto fail;
    }
    return w;
fail:
    close_all(w);
    cq_worker_free(w);
    return NULL;
}

int cq_worker_exit_code(const cq_worker *w)
{
    return w->exit_code;
}

static void handle_closed(uv_handle_t *h)
{
    (void)h;
}

void cq_worker_free(cq_worker *w)
{
    if (w == NULL)
        return;
    close_all(w);
    uv_close((uv_handle_t *)&w->hb_timer, handle_closed);
    uv_close((uv_handle_t *)&w->promote_timer, handle_closed);
    uv_close((uv_handle_t *)&w->stop_timer, handle_closed);
    uv_close((uv_handle_t *)&w->identity_timer, handle_closed);
    uv_close((uv_handle_t *)&w->sig_term, handle_closed);
    uv_close((uv_handle_t *)&w->sig_int, handle_closed);
    uv_close((uv_handle_t *)&w->sig_hup, handle_closed);
    if (w->watchdog_on)
        uv_close((uv_handle_t *)&w->watchdog, handle_closed);
    /* tasks before providers: a task waiting for a token leaves the waiter
     * list; after close_all the HTTP engine has ended every token request */
    cq_tasks_free(w->tasks);
    w->tasks = NULL;
    cq_providers_free(w->providers);
    w->providers = NULL;
    uv_run(w->loop, UV_RUN_DEFAULT); /* runs every close callback, ours and the modules' */
    free(w);
}
