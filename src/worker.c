/*
 * worker.c - cancelqd's life cycle on the loop: Redis connections, worker
 * identity, heartbeat and reclaim, fetching in batches, promotion of due
 * retries, signals and the graceful stop.  One job's path is in task.c.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cancelq/log.h"
#include "cancelq/notify.h"
#include "worker_int.h"

#define BLOCK_WAIT_SECONDS "1" /* a blocked wait is re-armed this often */
#define REPLY_TIMEOUT_MS 10000 /* Redis silent this long: reconnect */
#define PROMOTE_BATCH "500"
#define STOP_REDIS_MARGIN_MS 5000 /* after the grace: time to write what ended */

static void fetch_more(cq_worker *w);
static void stop_finish(cq_worker *w);
static void promote_timer_cb(uv_timer_t *h);

int64_t cq_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int script(cq_worker *w, const char *name, cq_redis_cb cb, void *data, int nkeys, int argc,
                  const char **argv)
{
    size_t len[16];
    int i;

    for (i = 0; i < argc && i < 16; i++)
        len[i] = strlen(argv[i]);
    return cq_redis_script(w->main, name, cb, data, nkeys, argc, argv, len);
}

static int command(cq_redis *r, cq_redis_cb cb, void *data, int argc, const char **argv)
{
    size_t len[16];
    int i;

    for (i = 0; i < argc && i < 16; i++)
        len[i] = strlen(argv[i]);
    return cq_redis_cmd(r, cb, data, argc, argv, len);
}

static void ignore_cb(void *data, redisReply *reply)
{
    (void)data;
    if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
        cq_log(CQ_LOG_ERR, "redis_error", "error", reply->str, NULL);
}

/* --- fetching ------------------------------------------------------------ */

static void block_cb(void *data, redisReply *reply)
{
    cq_worker *w = data;

    w->blocking = false;
    if (reply != NULL)
        fetch_more(w);
}

/* Wait on the blocking connection until the queue has a job.  BLMOVE of the
 * list onto itself (right to right) moves nothing: it only wakes us. */
static void block_wait(cq_worker *w)
{
    const char *argv[] = {"BLMOVE", w->k_jobs, w->k_jobs, "RIGHT", "RIGHT", BLOCK_WAIT_SECONDS};

    if (w->blocking || w->stopping)
        return;
    if (command(w->block, block_cb, w, 6, argv) == 0)
        w->blocking = true;
}

/* A fetch in flight: how many slots it may fill. */
typedef struct fetch_req {
    cq_worker *w;
    size_t n;
} fetch_req;

static void fetch_cb(void *data, redisReply *reply)
{
    fetch_req *fr = data;
    cq_worker *w = fr->w;
    size_t i;
    long long base;
    char handle[CQ_HANDLE_MAX];

    w->fetch_reserved -= fr->n;
    w->fetches_in_flight--;
    free(fr);
    if (reply == NULL)
        return;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
        reply->element[0]->type != REDIS_REPLY_INTEGER) {
        cq_log(CQ_LOG_ERR, "redis_script_error", "script", "fetch", "error",
               reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply", NULL);
        block_wait(w);
        return;
    }
    base = reply->element[0]->integer;
    for (i = 1; i < reply->elements; i++) {
        const redisReply *it = reply->element[i];

        snprintf(handle, sizeof(handle), "h%lld", base + (long long)i - 1);
        if (it->type == REDIS_REPLY_STRING)
            cq_task_start(w, handle, it->str, it->len);
    }
    if (reply->elements > 1 && !w->stopping) {
        w->want_fetch = true; /* there may be more right away */
        cq_worker_flush_soon(w);
    } else if (w->fetches_in_flight == 0) {
        block_wait(w);
    }
}

/* Fill the free slots: one fetch for up to CQ_FETCH_BATCH of them.  Slots
 * a fetch in flight may fill are reserved, so fetches never take more jobs
 * than there are slots; while one is in flight, a new one waits for a
 * worthwhile number of free slots (fewer round trips). */
static void fetch_more(cq_worker *w)
{
    size_t conc =
               (size_t)w->cfg->worker.concurrency + CQ_PREFETCH((size_t)w->cfg->worker.concurrency),
           held = w->ntasks - w->nending + w->fetch_reserved, n;
    char num[16];
    const char *argv[4];
    fetch_req *fr;

    w->want_fetch = false;
    if (!w->started || w->stopping || !cq_redis_ready(w->main) || held >= conc)
        return;
    n = conc - held < CQ_FETCH_BATCH ? conc - held : CQ_FETCH_BATCH;
    if (w->fetches_in_flight > 0 && n < CQ_FETCH_MIN(conc))
        return; /* the reply of the one in flight fetches again */
    fr = malloc(sizeof(*fr));
    if (fr == NULL)
        return; /* the next freed slot tries again */
    fr->w = w;
    fr->n = n;
    snprintf(num, sizeof(num), "%zu", n);
    argv[0] = w->k_jobs;
    argv[1] = w->k_inflight;
    argv[2] = w->k_seq;
    argv[3] = num;
    if (script(w, "fetch", fetch_cb, fr, 3, 4, argv) != 0) {
        free(fr);
        return;
    }
    w->fetch_reserved += n;
    w->fetches_in_flight++;
}

void cq_worker_slot_freed(cq_worker *w)
{
    if (w->closed)
        return;
    if (w->stopping) {
        if (w->ntasks == 0)
            stop_finish(w);
        return;
    }
    w->want_fetch = true;
    cq_worker_flush_soon(w);
}

/* --- batches: sent once per turn of the loop ------------------------------ */

static void flush_batch(cq_batch *b)
{
    size_t n = cq_batch_pending(b);
    char num[24];

    if (n == 0 || cq_batch_flush(b) == 0)
        return;
    /* every job is let go (answered with NULL); its entry stays inflight */
    cq_batch_discard(b);
    snprintf(num, sizeof(num), "%zu", n);
    cq_log(CQ_LOG_ERR, "job_stuck", "script", b->script, "jobs", num, "error", "out of memory",
           "detail", "the jobs stay inflight until this worker restarts", NULL);
}

/* uv_prepare runs right before the loop waits for I/O: everything the
 * callbacks of this turn added goes out as one command per script. */
static void flush_cb(uv_prepare_t *h)
{
    cq_worker *w = h->data;

    uv_prepare_stop(&w->flush);
    w->flush_on = false;
    if (cq_batch_pending(&w->claims) > 0)
        snprintf(w->claim_now, sizeof(w->claim_now), "%lld", (long long)cq_now_ms());
    flush_batch(&w->claims);
    flush_batch(&w->finishes);
    if (w->want_fetch)
        fetch_more(w);
}

void cq_worker_flush_soon(cq_worker *w)
{
    if (w->flush_on || w->closed)
        return;
    w->flush_on = true;
    uv_prepare_start(&w->flush, flush_cb);
}

/* --- promotion of due retries -------------------------------------------- */

static void promote_cb(void *data, redisReply *reply)
{
    cq_worker *w = data;
    int64_t next = -1, now = cq_now_ms(), wait;

    if (reply == NULL || w->stopping)
        return;
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
        reply->element[1]->type == REDIS_REPLY_INTEGER)
        next = reply->element[1]->integer;
    wait = (int64_t)w->cfg->worker.heartbeat_ms;
    if (next >= 0 && next - now < wait)
        wait = next - now < 5 ? 5 : next - now;
    w->promote_at = now + wait;
    uv_timer_start(&w->promote_timer, promote_timer_cb, (uint64_t)wait, 0);
}

static void promote_timer_cb(uv_timer_t *h)
{
    cq_worker *w = h->data;
    char now[24];
    const char *argv[4];

    if (w->stopping || !w->started)
        return;
    snprintf(now, sizeof(now), "%lld", (long long)cq_now_ms());
    argv[0] = w->k_delayed;
    argv[1] = w->k_jobs;
    argv[2] = now;
    argv[3] = PROMOTE_BATCH;
    /* if this is lost the heartbeat re-arms promotion */
    w->promote_at = INT64_MAX;
    script(w, "promote", promote_cb, w, 2, 4, argv);
}

void cq_worker_delayed_at(cq_worker *w, int64_t due_ms)
{
    int64_t now = cq_now_ms();

    if (w->stopping || due_ms >= w->promote_at)
        return;
    w->promote_at = due_ms;
    uv_timer_start(&w->promote_timer, promote_timer_cb, (uint64_t)(due_ms > now ? due_ms - now : 0),
                   0);
}

/* --- heartbeat, reclaim, identity ---------------------------------------- */

static void reclaim_cb(void *data, redisReply *reply)
{
    (void)data;
    if (reply != NULL && reply->type == REDIS_REPLY_INTEGER && reply->integer > 0) {
        char n[24];

        snprintf(n, sizeof(n), "%lld", reply->integer);
        cq_log(CQ_LOG_WARN, "jobs_reclaimed", "count", n, "detail",
               "taken back from a dead worker (or our previous run)", NULL);
    } else {
        ignore_cb(NULL, reply);
    }
}

/* Return the jobs of workers whose heartbeat is older than the lease, and
 * ours too when `self` (a restart takes its leftovers back at once). */
static void reclaim(cq_worker *w, bool self)
{
    char now[24], lease[24];
    const char *argv[7];

    snprintf(now, sizeof(now), "%lld", (long long)cq_now_ms());
    snprintf(lease, sizeof(lease), "%llu", (unsigned long long)w->cfg->worker.lease_ms);
    argv[0] = w->k_workers;
    argv[1] = w->k_jobs;
    argv[2] = now;
    argv[3] = lease;
    argv[4] = w->k_prefix;
    argv[5] = self ? w->id : "";
    argv[6] = w->id;
    script(w, "reclaim", reclaim_cb, w, 2, 7, argv);
}

static void heartbeat(cq_worker *w)
{
    char now[24];
    const char *argv[] = {"ZADD", w->k_workers, now, w->id};

    snprintf(now, sizeof(now), "%lld", (long long)cq_now_ms());
    command(w->main, ignore_cb, w, 4, argv);
}

static void hb_timer_cb(uv_timer_t *h)
{
    cq_worker *w = h->data;

    if (!w->started || w->stopping)
        return;
    heartbeat(w);
    reclaim(w, false);
    cq_worker_metrics_poll(w);
    cq_worker_notify_status(w);
    if (w->promote_at == INT64_MAX || w->promote_at < cq_now_ms() - 1000)
        promote_timer_cb(&w->promote_timer);
}

static void start_working(cq_worker *w)
{
    heartbeat(w);
    reclaim(w, true);
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
    fetch_more(w);
}

static void identity_cb(void *data, redisReply *reply);

static void identity_check(cq_worker *w)
{
    const char *argv[] = {"ZSCORE", w->k_workers, w->id};

    command(w->main, identity_cb, w, 3, argv);
}

static void identity_timer_cb(uv_timer_t *h)
{
    identity_check(h->data);
}

/* Refuse to run beside a live process with our id (DESIGN.md 3): a fresh
 * heartbeat is watched for two intervals; if it moves, someone else is
 * alive; if not, its holder is dead and we take over. */
static void identity_cb(void *data, redisReply *reply)
{
    cq_worker *w = data;
    uint64_t score;
    int64_t now = cq_now_ms();

    if (reply == NULL || w->started || w->stopping)
        return;
    if (reply->type != REDIS_REPLY_STRING) {
        start_working(w); /* nobody holds the id */
        return;
    }
    score = strtoull(reply->str, NULL, 10);
    if (w->hb_last_seen == 0) {
        if ((int64_t)score + (int64_t)w->cfg->worker.lease_ms < now) {
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
        stop_finish(w);
        return;
    }
    cq_log(CQ_LOG_NOTICE, "worker_takeover", "worker", w->id, "detail",
           "previous holder of this id is dead; taking its jobs back", NULL);
    start_working(w);
}

/* After a reconnect: jobs in our inflight hash that no task holds were taken
 * by a fetch whose reply was lost; give them back to the queue. */
static void reconcile_cb(void *data, redisReply *reply)
{
    cq_worker *w = data;
    size_t i;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY)
        return;
    for (i = 0; i < reply->elements; i++) {
        const redisReply *h = reply->element[i];
        const char *argv[6];

        if (h->type != REDIS_REPLY_STRING || cq_task_known(w, h->str, h->len))
            continue;
        argv[0] = w->k_inflight;
        argv[1] = w->k_delayed;
        argv[2] = w->k_jobs;
        argv[3] = h->str;
        argv[4] = "0";
        argv[5] = "";
        cq_log(CQ_LOG_NOTICE, "job_returned", "handle", h->str, "reason",
               "taken by a fetch whose reply was lost", NULL);
        script(w, "release", ignore_cb, w, 3, 6, argv);
    }
}

static void main_ready(void *data)
{
    cq_worker *w = data;

    if (!w->started) {
        if (w->hb_last_seen == 0)
            identity_check(w);
        return;
    }
    {
        const char *argv[] = {"HKEYS", w->k_inflight};

        command(w->main, reconcile_cb, w, 2, argv);
    }
    heartbeat(w);
    fetch_more(w);
}

static void main_lost(void *data, const char *why)
{
    cq_worker *w = data;

    /* queued commands (a fetch too) are resent by the connection itself */
    cq_log(CQ_LOG_WARN, "redis_unavailable", "worker", w->id, "reason", why, "detail",
           "requests in flight go on; their outcomes are written once Redis is back", NULL);
}

/* --- stopping ------------------------------------------------------------ */

static void close_all(cq_worker *w)
{
    size_t i;

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
    for (i = 0; w->providers != NULL && i < w->nproviders; i++) {
        if (w->providers[i].timer_init)
            uv_timer_stop(&w->providers[i].pump_timer);
    }
    cq_http_free(w->http);
    w->http = NULL;
    cq_metrics_free(w->metrics);
    w->metrics = NULL;
    /* jobs whose claim or finish was not sent stay inflight for reclaim */
    uv_prepare_stop(&w->flush);
    w->flush_on = false;
    cq_batch_discard(&w->claims);
    cq_batch_discard(&w->finishes);
    cq_redis_free(w->main);
    cq_redis_free(w->block);
    w->main = w->block = NULL;
    uv_stop(w->loop);
}

static void leave_cb(void *data, redisReply *reply)
{
    cq_worker *w = data;

    if (reply != NULL && reply->type == REDIS_REPLY_INTEGER)
        cq_log(CQ_LOG_NOTICE, "worker_stopped", "worker", w->id, "heartbeat",
               reply->integer == 1 ? "removed" : "kept (jobs remain for reclaim)", NULL);
    close_all(w);
}

/* Every job has ended or gone back: leave the worker set and stop. */
static void stop_finish(cq_worker *w)
{
    const char *argv[3];

    if (w->closed)
        return;
    if (!w->started || !cq_redis_ready(w->main)) {
        close_all(w);
        return;
    }
    argv[0] = w->k_workers;
    argv[1] = w->k_inflight;
    argv[2] = w->id;
    if (script(w, "leave", leave_cb, w, 2, 3, argv) != 0)
        close_all(w);
}

static void stop_timer_cb(uv_timer_t *h)
{
    cq_worker *w = h->data;

    if (cq_http_active(w->http) > 0) {
        char n[24];

        snprintf(n, sizeof(n), "%zu", cq_http_active(w->http));
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
    cq_task_release_waiting(w);
    uv_timer_start(&w->stop_timer, stop_timer_cb, w->cfg->worker.shutdown_grace_ms, 0);
    if (w->ntasks == 0)
        stop_finish(w);
}

static void signal_cb(uv_signal_t *h, int signum)
{
    cq_worker *w = h->data;
    size_t i;

    if (signum != SIGHUP) {
        begin_stop(w, signum == SIGTERM ? "SIGTERM" : "SIGINT");
        return;
    }
    cq_notify_reloading();
    for (i = 0; i < w->nproviders; i++) {
        cq_err err;

        cq_err_clear(&err);
        if (cq_cred_reload(w->providers[i].cred, &err) != 0)
            cq_log(CQ_LOG_ERR, "secret_reload_failed", "provider", w->providers[i].conf->name,
                   "error", err.msg, "detail", "keeping the secrets read before", NULL);
    }
    cq_log(CQ_LOG_NOTICE, "tokens_reloaded", "reason", "SIGHUP", NULL);
    cq_notify_ready();
}

/* --- construction -------------------------------------------------------- */

static int keys_init(cq_worker *w)
{
    const char *p = w->cfg->redis.prefix;
    int n = 0;

    n |= snprintf(w->k_prefix, CQ_KEY_MAX, "{%s}:", p) >= CQ_KEY_MAX;
    n |= snprintf(w->k_jobs, CQ_KEY_MAX, "{%s}:jobs", p) >= CQ_KEY_MAX;
    n |= snprintf(w->k_inflight, CQ_KEY_MAX, "{%s}:inflight:%s", p, w->id) >= CQ_KEY_MAX;
    n |= snprintf(w->k_seq, CQ_KEY_MAX, "{%s}:seq:%s", p, w->id) >= CQ_KEY_MAX;
    n |= snprintf(w->k_workers, CQ_KEY_MAX, "{%s}:workers", p) >= CQ_KEY_MAX;
    n |= snprintf(w->k_delayed, CQ_KEY_MAX, "{%s}:delayed", p) >= CQ_KEY_MAX;
    n |= snprintf(w->k_dead, CQ_KEY_MAX, "{%s}:dead", p) >= CQ_KEY_MAX;
    n |= snprintf(w->k_results, CQ_KEY_MAX, "{%s}:results", p) >= CQ_KEY_MAX;
    snprintf(w->maxlen, sizeof(w->maxlen), "%lld", w->cfg->worker.results_maxlen);
    snprintf(w->idem_ttl, sizeof(w->idem_ttl), "%llu",
             (unsigned long long)w->cfg->worker.idempotency_ttl_ms);
    return n ? -ENAMETOOLONG : 0;
}

static int providers_init(cq_worker *w, cq_err *err)
{
    size_t i;

    w->providers = calloc(w->cfg->nproviders ? w->cfg->nproviders : 1, sizeof(*w->providers));
    if (w->providers == NULL)
        return cq_err_set(err, -ENOMEM, "nomem", "out of memory");
    w->nproviders = w->cfg->nproviders;
    for (i = 0; i < w->nproviders; i++) {
        cq_provider *p = &w->providers[i];

        p->w = w;
        p->conf = &w->cfg->providers[i];
        uv_timer_init(w->loop, &p->pump_timer);
        p->pump_timer.data = p;
        p->timer_init = true;
        cq_bucket_init(&p->bucket, p->conf->rate, p->conf->burst, (int64_t)uv_now(w->loop));
        cq_breaker_init(&p->breaker, p->conf->breaker_failures, p->conf->breaker_cooldown_ms);
    }
    for (i = 0; i < w->nproviders; i++) {
        cq_provider *p = &w->providers[i];

        p->adapter = cq_adapter_find(p->conf->adapter);
        if (p->adapter == NULL)
            return cq_err_set(err, -EINVAL, "config", "provider %s: unknown adapter '%s'",
                              p->conf->name, p->conf->adapter);
        if (p->conf->cred != CQ_CRED_TOKEN_FILE && p->conf->cred != p->adapter->oauth_grant)
            return cq_err_set(err, -EINVAL, "config",
                              "provider %s: adapter %s does not use this OAuth2 grant",
                              p->conf->name, p->adapter->name);
        /* static tokens are read now; OAuth2 tokens are minted on first use */
        p->cred = cq_cred_new(w->loop, w->http, p->conf, err);
        if (p->cred == NULL)
            return -EINVAL;
    }
    return 0;
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
    uv_prepare_init(w->loop, &w->flush);
    w->flush.data = w;
    w->hb_timer.data = w->promote_timer.data = w->stop_timer.data = w;
    w->identity_timer.data = w->sig_term.data = w->sig_int.data = w->sig_hup.data = w;
    uv_signal_start(&w->sig_term, signal_cb, SIGTERM);
    uv_signal_start(&w->sig_int, signal_cb, SIGINT);
    uv_signal_start(&w->sig_hup, signal_cb, SIGHUP);
}

cq_worker *cq_worker_new(uv_loop_t *loop, const cq_config *cfg, cq_err *err)
{
    cq_redis_events ev = {main_ready, main_lost, NULL};
    cq_worker *w = calloc(1, sizeof(*w));
    char *password = NULL;

    if (w == NULL) {
        cq_err_set(err, -ENOMEM, "nomem", "out of memory");
        return NULL;
    }
    w->loop = loop;
    w->cfg = cfg;
    w->id = cfg->worker.id;
    w->promote_at = INT64_MAX;
    timers_init(w);
    if (keys_init(w) != 0) {
        cq_err_set(err, -EINVAL, "config", "[redis] prefix or [worker] id too long");
        goto fail;
    }
    w->http = cq_http_new(loop, cfg->worker.concurrency, err);
    if (w->http == NULL)
        goto fail;
    if (providers_init(w, err) != 0)
        goto fail;
    if (cfg->redis.password_file != NULL &&
        (cq_secret_read(cfg->redis.password_file, &password, err) != 0 ||
         cq_log_add_secret(password) != 0))
        goto fail;
    if (cq_worker_metrics_start(w, err) != 0)
        goto fail;
    ev.data = w;
    w->main = cq_redis_new(loop, &cfg->redis, password, "main", REPLY_TIMEOUT_MS, &ev, err);
    if (w->main == NULL)
        goto fail;
    cq_task_batches_init(w);
    w->block = cq_redis_new(loop, &cfg->redis, password, "block", REPLY_TIMEOUT_MS, NULL, err);
    if (w->block == NULL)
        goto fail;
    cq_secret_free(password);
    return w;
fail:
    cq_secret_free(password);
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
    size_t i;

    if (w == NULL)
        return;
    close_all(w);
    uv_close((uv_handle_t *)&w->hb_timer, handle_closed);
    uv_close((uv_handle_t *)&w->promote_timer, handle_closed);
    uv_close((uv_handle_t *)&w->stop_timer, handle_closed);
    uv_close((uv_handle_t *)&w->identity_timer, handle_closed);
    uv_close((uv_handle_t *)&w->flush, handle_closed);
    uv_close((uv_handle_t *)&w->sig_term, handle_closed);
    uv_close((uv_handle_t *)&w->sig_int, handle_closed);
    uv_close((uv_handle_t *)&w->sig_hup, handle_closed);
    if (w->watchdog_on)
        uv_close((uv_handle_t *)&w->watchdog, handle_closed);
    /* after close_all: the HTTP engine has ended every token request */
    for (i = 0; w->providers != NULL && i < w->nproviders; i++) {
        cq_cred_free(w->providers[i].cred);
        w->providers[i].cred = NULL;
        if (w->providers[i].timer_init)
            uv_close((uv_handle_t *)&w->providers[i].pump_timer, handle_closed);
    }
    uv_run(w->loop, UV_RUN_DEFAULT); /* runs every close callback, ours and the modules' */
    cq_task_free_all(w);
    free(w->providers);
    free(w);
}
