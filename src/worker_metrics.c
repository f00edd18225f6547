/*
 * worker_metrics.c - what cancelqd tells the outside about itself: the
 * Prometheus page ([worker] metrics_listen) and systemd's STATUS= line.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "cancelq/log.h"
#include "cancelq/status.h"
#include "cancelq/notify.h"
#include "worker_int.h"

static void render_jobs(cq_worker *w, cq_buf *out)
{
    size_t i, a;
    int s;

    cq_metrics_family(out, "cancelq_jobs_total", "Jobs ended, by provider, action and status.",
                      CQ_METRIC_COUNTER);
    for (i = 0; i < cq_providers_count(w->providers); i++) {
        const cq_provider *p = cq_providers_at(w->providers, i);

        for (a = 0; a < p->adapter->nactions && a < CQ_MAX_ACTIONS; a++) {
            for (s = 0; s < CQ_ST_COUNT; s++)
                cq_metrics_sample(out, "cancelq_jobs_total", (double)p->jobs[a][s], "provider",
                                  p->conf->name, "action", p->adapter->actions[a].name, "status",
                                  cq_status_name((cq_status)s), NULL);
        }
    }
    cq_metrics_sample(out, "cancelq_jobs_total",
                      (double)cq_tasks_stats(w->tasks)->invalid_unknown_provider, "provider", "",
                      "action", "", "status", "invalid", NULL);
}

static void provider_counter(cq_worker *w, cq_buf *out, const char *name, const char *help,
                             size_t off)
{
    size_t i;

    cq_metrics_family(out, name, help, CQ_METRIC_COUNTER);
    for (i = 0; i < cq_providers_count(w->providers); i++)
        cq_metrics_sample(
            out, name,
            (double)*(const uint64_t *)((const char *)cq_providers_at(w->providers, i) + off),
            "provider", cq_providers_at(w->providers, i)->conf->name, NULL);
}

/* Each instance's deployment-wide limits as this worker sees them
 * (docs/design.md §8). */
static void render_shares(cq_worker *w, cq_buf *out)
{
    uint64_t now = uv_now(w->loop);
    size_t i;

    cq_metrics_family(out, "cancelq_provider_share_slots",
                      "This worker's share of the instance's deployment-wide concurrency.",
                      CQ_METRIC_GAUGE);
    for (i = 0; i < cq_providers_count(w->providers); i++) {
        const cq_provider *p = cq_providers_at(w->providers, i);

        cq_metrics_sample(out, "cancelq_provider_share_slots", p->share > 0 ? (double)p->share : 0,
                          "provider", p->conf->name, NULL);
    }
    cq_metrics_family(out, "cancelq_provider_workers_busy",
                      "Workers with work for the instance, as its last share answer said.",
                      CQ_METRIC_GAUGE);
    for (i = 0; i < cq_providers_count(w->providers); i++) {
        const cq_provider *p = cq_providers_at(w->providers, i);

        cq_metrics_sample(out, "cancelq_provider_workers_busy",
                          p->share_busy > 0 ? (double)p->share_busy : 0, "provider", p->conf->name,
                          NULL);
    }
    cq_metrics_family(out, "cancelq_provider_paused",
                      "1 while the deployment pauses the instance (an operator's pause, or a "
                      "429 with Retry-After seen by any worker).",
                      CQ_METRIC_GAUGE);
    for (i = 0; i < cq_providers_count(w->providers); i++) {
        const cq_provider *p = cq_providers_at(w->providers, i);

        cq_metrics_sample(out, "cancelq_provider_paused", p->g_pause_until > now ? 1 : 0,
                          "provider", p->conf->name, NULL);
    }
    provider_counter(w, out, "cancelq_provider_paused_deferred_total",
                     "Jobs put back to delayed (no attempt spent) while the deployment paused the "
                     "instance.",
                     offsetof(cq_provider, g_pauses));
}

static void render_providers(cq_worker *w, cq_buf *out)
{
    size_t i;

    cq_metrics_family(out, "cancelq_provider_attempts_total",
                      "Cancellation calls made (status lookups not included).", CQ_METRIC_COUNTER);
    for (i = 0; i < cq_providers_count(w->providers); i++)
        cq_metrics_sample(out, "cancelq_provider_attempts_total",
                          (double)cq_providers_at(w->providers, i)->attempts, "provider",
                          cq_providers_at(w->providers, i)->conf->name, NULL);
    cq_metrics_family(out, "cancelq_provider_status_checks_total",
                      "Status lookups made before or after an ambiguous answer.",
                      CQ_METRIC_COUNTER);
    for (i = 0; i < cq_providers_count(w->providers); i++)
        cq_metrics_sample(out, "cancelq_provider_status_checks_total",
                          (double)cq_providers_at(w->providers, i)->checks, "provider",
                          cq_providers_at(w->providers, i)->conf->name, NULL);
    cq_metrics_family(out, "cancelq_provider_inflight", "Requests in flight.", CQ_METRIC_GAUGE);
    for (i = 0; i < cq_providers_count(w->providers); i++)
        cq_metrics_sample(out, "cancelq_provider_inflight",
                          (double)cq_providers_at(w->providers, i)->active, "provider",
                          cq_providers_at(w->providers, i)->conf->name, NULL);
    render_shares(w, out);
    cq_metrics_family(out, "cancelq_http_request_duration_seconds", "Provider request durations.",
                      CQ_METRIC_HISTOGRAM);
    for (i = 0; i < cq_providers_count(w->providers); i++)
        cq_histogram_render(out, "cancelq_http_request_duration_seconds",
                            &cq_providers_at(w->providers, i)->duration, "provider",
                            cq_providers_at(w->providers, i)->conf->name, NULL);
}

/* Tokens, rate limits, breakers. */
static void render_resilience(cq_worker *w, cq_buf *out)
{
    size_t i;
    int s;

    cq_metrics_family(out, "cancelq_token_mints_total",
                      "Tokens obtained (minted, or read from token_file).", CQ_METRIC_COUNTER);
    for (i = 0; i < cq_providers_count(w->providers); i++)
        cq_metrics_sample(out, "cancelq_token_mints_total",
                          (double)cq_cred_stats_get(cq_providers_at(w->providers, i)->cred)->mints,
                          "provider", cq_providers_at(w->providers, i)->conf->name, NULL);
    cq_metrics_family(out, "cancelq_token_mint_failures_total",
                      "Failed token requests (retried with backoff).", CQ_METRIC_COUNTER);
    for (i = 0; i < cq_providers_count(w->providers); i++)
        cq_metrics_sample(
            out, "cancelq_token_mint_failures_total",
            (double)cq_cred_stats_get(cq_providers_at(w->providers, i)->cred)->failures, "provider",
            cq_providers_at(w->providers, i)->conf->name, NULL);
    cq_metrics_family(out, "cancelq_breaker_state",
                      "Circuit breaker state: 0 closed, 1 open, 2 half-open.", CQ_METRIC_GAUGE);
    for (i = 0; i < cq_providers_count(w->providers); i++)
        cq_metrics_sample(out, "cancelq_breaker_state",
                          (double)cq_providers_at(w->providers, i)->breaker.state, "provider",
                          cq_providers_at(w->providers, i)->conf->name, NULL);
    cq_metrics_family(out, "cancelq_breaker_transitions_total",
                      "Circuit breaker state changes, by the state entered.", CQ_METRIC_COUNTER);
    for (i = 0; i < cq_providers_count(w->providers); i++) {
        for (s = 0; s < 3; s++)
            cq_metrics_sample(out, "cancelq_breaker_transitions_total",
                              (double)cq_providers_at(w->providers, i)->breaker_changes[s],
                              "provider", cq_providers_at(w->providers, i)->conf->name, "state",
                              cq_breaker_state_name((cq_breaker_state)s), NULL);
    }
    cq_metrics_family(out, "cancelq_tls_failures_total",
                      "Requests whose peer certificate was refused, by reason (untrusted, "
                      "hostname, expired, local).",
                      CQ_METRIC_COUNTER);
    for (i = 0; i < cq_providers_count(w->providers); i++) {
        const cq_cred_stats *cs = cq_cred_stats_get(cq_providers_at(w->providers, i)->cred);

        for (s = 1; s < CQ_TLS_FAIL_COUNT; s++)
            cq_metrics_sample(out, "cancelq_tls_failures_total", (double)cs->tls_failures[s],
                              "provider", cq_providers_at(w->providers, i)->conf->name, "reason",
                              cq_tls_fail_name((cq_tls_fail)s), NULL);
    }
    provider_counter(w, out, "cancelq_breaker_deferred_total",
                     "Jobs put back to delayed (no attempt spent) while the breaker was open.",
                     offsetof(cq_provider, breaker_deferred));
    provider_counter(w, out, "cancelq_rate_limit_waits_total",
                     "Times the provider queue waited for its rate limit.",
                     offsetof(cq_provider, rate_waits));
    provider_counter(w, out, "cancelq_provider_pauses_total",
                     "Pauses of the whole instance after a 429 with Retry-After.",
                     offsetof(cq_provider, pauses));
    provider_counter(w, out, "cancelq_fairness_deferred_total",
                     "Jobs put back because too many jobs of the provider waited locally.",
                     offsetof(cq_provider, fair_bounced));
}

static void gauge(cq_buf *out, const char *name, const char *help, double v)
{
    cq_metrics_family(out, name, help, CQ_METRIC_GAUGE);
    cq_metrics_sample(out, name, v, NULL);
}

/* Where the held jobs are: waiting for their claim, waiting for a request
 * slot (or a rate token, an OAuth token), in an HTTP request, or having
 * their end written.  The rest are being parsed or between steps. */
static void render_stages(const cq_worker *w, cq_buf *out)
{
    const cq_tasks *ts = w->tasks;

    cq_metrics_family(out, "cancelq_jobs_stage", "Held jobs by stage.", CQ_METRIC_GAUGE);
    cq_metrics_sample(out, "cancelq_jobs_stage", (double)cq_tasks_count(ts, CQ_TS_CLAIMING),
                      "stage", "claim", NULL);
    cq_metrics_sample(out, "cancelq_jobs_stage", (double)cq_tasks_count(ts, CQ_TS_QUEUED), "stage",
                      "wait", NULL);
    cq_metrics_sample(
        out, "cancelq_jobs_stage",
        (double)(cq_tasks_count(ts, CQ_TS_CALLING) + cq_tasks_count(ts, CQ_TS_CHECKING)), "stage",
        "http", NULL);
    cq_metrics_sample(out, "cancelq_jobs_stage", (double)cq_tasks_count(ts, CQ_TS_ENDING), "stage",
                      "end", NULL);
}

static void render_store(const cq_worker *w, cq_buf *out)
{
    gauge(out, "cancelq_queue_jobs", "Jobs waiting in {P}:jobs (polled, -1 unknown).",
          (double)w->depth[CQ_DEPTH_JOBS]);
    gauge(out, "cancelq_queue_retry", "Jobs given back waiting in {P}:retry (polled).",
          (double)w->depth[CQ_DEPTH_RETRY]);
    gauge(out, "cancelq_queue_delayed", "Retries waiting in {P}:delayed (polled).",
          (double)w->depth[CQ_DEPTH_DELAYED]);
    gauge(out, "cancelq_queue_dead", "Dead-letter entries in {P}:dead (polled).",
          (double)w->depth[CQ_DEPTH_DEAD]);
    cq_metrics_family(out, "cancelq_redis_reconnects_total", "Redis reconnects.",
                      CQ_METRIC_COUNTER);
    cq_metrics_sample(out, "cancelq_redis_reconnects_total",
                      w->store != NULL ? (double)cq_store_reconnects(w->store, false) : 0, "conn",
                      "main", NULL);
    cq_metrics_sample(out, "cancelq_redis_reconnects_total",
                      w->store != NULL ? (double)cq_store_reconnects(w->store, true) : 0, "conn",
                      "block", NULL);
    gauge(out, "cancelq_redis_up", "1 when the main Redis connection is ready.",
          w->store != NULL && cq_store_ready(w->store) ? 1 : 0);
}

static void counter(cq_buf *out, const char *name, const char *help, uint64_t v)
{
    cq_metrics_family(out, name, help, CQ_METRIC_COUNTER);
    cq_metrics_sample(out, name, (double)v, NULL);
}

/* The outcome stream and its consumer groups (docs/design.md §5). */
static void render_results(const cq_worker *w, cq_buf *out)
{
    const cq_results_info *ri = &w->results;
    size_t i;

    gauge(out, "cancelq_results_length", "Entries in {P}:results (last heartbeat).",
          (double)ri->length);
    gauge(out, "cancelq_results_unread",
          "Outcomes the slowest consumer group has not acknowledged yet.", (double)ri->unread);
    cq_metrics_family(out, "cancelq_results_group_lag",
                      "Outcomes not yet delivered to a consumer group (trimmed ones included).",
                      CQ_METRIC_GAUGE);
    for (i = 0; i < ri->ngroups; i++)
        cq_metrics_sample(out, "cancelq_results_group_lag", (double)ri->groups[i].lag, "group",
                          ri->groups[i].name, NULL);
    cq_metrics_family(out, "cancelq_results_group_pending",
                      "Outcomes delivered to a consumer group, not acknowledged yet.",
                      CQ_METRIC_GAUGE);
    for (i = 0; i < ri->ngroups; i++)
        cq_metrics_sample(out, "cancelq_results_group_pending", (double)ri->groups[i].pending,
                          "group", ri->groups[i].name, NULL);
}

/* Fences, jobs let go or put back, replica waits (docs/design.md §7). */
static void render_safety(const cq_worker *w, cq_buf *out)
{
    const cq_task_stats *st = cq_tasks_stats(w->tasks);
    uint64_t shorts = 0, resent = 0;

    if (w->store != NULL)
        cq_store_wait_stats(w->store, &shorts, &resent);
    gauge(out, "cancelq_fenced",
          "1 while no heartbeat was acknowledged for too long: no request starts.",
          w->fenced ? 1 : 0);
    counter(out, "cancelq_fences_total", "Times this worker fenced itself.", w->fences);
    counter(out, "cancelq_jobs_dropped_total",
            "Jobs let go without a call: a peer had taken them back.", st->dropped);
    counter(out, "cancelq_finish_failures_total",
            "Ends Redis refused as a whole: the jobs went back to delayed.", st->finish_failed);
    counter(out, "cancelq_jobs_stuck_total",
            "Jobs left in the inflight hash for lack of memory (reconciled later).", st->stuck);
    counter(out, "cancelq_redis_wait_short_total",
            "WAITs that timed out short of [redis] wait_replicas.", shorts);
    counter(out, "cancelq_redis_wait_resent_total",
            "Batches sent again because a reconnect came before their WAIT.", resent);
}

static void render(void *data, cq_buf *out)
{
    cq_worker *w = data;

    cq_metrics_family(out, "cancelq_build_info", "Build information.", CQ_METRIC_GAUGE);
    cq_metrics_sample(out, "cancelq_build_info", 1, "version", CQ_VERSION, "worker", w->id, NULL);
    if (w->tasks == NULL || w->providers == NULL)
        return; /* still starting */
    render_jobs(w, out);
    render_providers(w, out);
    render_resilience(w, out);
    gauge(out, "cancelq_jobs_held", "Jobs this worker holds (in flight or being written).",
          (double)cq_tasks_held(w->tasks));
    render_stages(w, out);
    render_store(w, out);
    cq_metrics_family(out, "cancelq_retries_total", "Retries scheduled.", CQ_METRIC_COUNTER);
    cq_metrics_sample(out, "cancelq_retries_total", (double)cq_tasks_stats(w->tasks)->retried,
                      NULL);
    render_safety(w, out);
    render_results(w, out);
    cq_metrics_family(out, "cancelq_job_queue_seconds",
                      "From a job's enqueued_at (when the producer gives it) to when a worker "
                      "first took it.",
                      CQ_METRIC_HISTOGRAM);
    cq_histogram_render(out, "cancelq_job_queue_seconds", &cq_tasks_stats(w->tasks)->queue_wait,
                        NULL);
}

/* GET /readyz: Redis answers, this worker is registered and not fenced,
 * not stopping, and no provider's token endpoint is failing. */
static bool not_ready(char *why, size_t size, const char *name, const char *what)
{
    snprintf(why, size, "%s%s%s", name != NULL ? name : "", name != NULL ? ": " : "", what);
    return false;
}

static bool ready(void *data, char *why, size_t size)
{
    cq_worker *w = data;
    size_t i;

    if (w->stopping)
        return not_ready(why, size, NULL, "stopping");
    if (w->store == NULL || !cq_store_ready(w->store))
        return not_ready(why, size, NULL, "redis down");
    if (!w->started)
        return not_ready(why, size, NULL, "starting");
    if (w->fenced)
        return not_ready(why, size, NULL, "fenced: no heartbeat acknowledged");
    for (i = 0; i < cq_providers_count(w->providers); i++) {
        const cq_provider *p = cq_providers_at(w->providers, i);
        const cq_cred_stats *cs = p->cred != NULL ? cq_cred_stats_get(p->cred) : NULL;

        if (cs != NULL && cs->failing)
            return not_ready(why, size, p->conf->name, "token endpoint failing");
    }
    return true;
}

int cq_worker_metrics_start(cq_worker *w, cq_err *err)
{
    const char *listen = w->cfg->worker.metrics_listen;

    if (listen == NULL || listen[0] == '\0')
        return 0;
    w->metrics = cq_metrics_new(w->loop, listen, render, w, err);
    if (w->metrics == NULL)
        return -1;
    cq_metrics_set_ready(w->metrics, ready, w);
    cq_log(CQ_LOG_INFO, "metrics_listening", "listen", listen, NULL);
    return 0;
}

static void depths_cb(void *data, const long long *v)
{
    cq_worker *w = data;

    memcpy(w->depth, v, sizeof(w->depth));
}

void cq_worker_metrics_poll(cq_worker *w)
{
    if (w->metrics == NULL)
        return; /* no extra round trips unless someone scrapes */
    cq_store_depths(w->store, depths_cb, w);
}

/* The providers that need attention: "; keliweb token FAILING; ap breaker open". */
static void provider_trouble(cq_worker *w, char *buf, size_t size)
{
    size_t i, len = 0;
    int n;

    buf[0] = '\0';
    for (i = 0; i < cq_providers_count(w->providers) && len < size; i++) {
        const cq_provider *p = cq_providers_at(w->providers, i);
        const cq_cred_stats *cs = p->cred != NULL ? cq_cred_stats_get(p->cred) : NULL;

        if (cs != NULL && cs->failing) {
            n = snprintf(buf + len, size - len, "; %s token endpoint FAILING", p->conf->name);
            len += n > 0 ? (size_t)n : 0;
        }
        if (p->breaker.state != CQ_BR_CLOSED && len < size) {
            n = snprintf(buf + len, size - len, "; %s breaker %s", p->conf->name,
                         cq_breaker_state_name(p->breaker.state));
            len += n > 0 ? (size_t)n : 0;
        }
    }
}

void cq_worker_notify_status(cq_worker *w)
{
    char trouble[512];
    const char *dur = w->store != NULL ? cq_store_durability(w->store) : "";
    const cq_task_stats *st = cq_tasks_stats(w->tasks);

    provider_trouble(w, trouble, sizeof(trouble));
    /* the durability warning goes last: the status line is cut at 256 bytes */
    cq_notify_status("%s%zu jobs held, %llu ended, %llu retries, redis %s%s%s%s",
                     w->fenced ? "FENCED (Redis unconfirmed, no request starts); " : "",
                     cq_tasks_held(w->tasks), (unsigned long long)st->finished,
                     (unsigned long long)st->retried,
                     w->store != NULL && cq_store_ready(w->store) ? "up" : "DOWN", trouble,
                     dur[0] != '\0' ? "; WARNING " : "", dur);
}
