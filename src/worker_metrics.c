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
    cq_metrics_family(out, "cancelq_http_request_duration_seconds", "Provider request durations.",
                      CQ_METRIC_HISTOGRAM);
    for (i = 0; i < cq_providers_count(w->providers); i++)
        cq_histogram_render(out, "cancelq_http_request_duration_seconds",
                            &cq_providers_at(w->providers, i)->duration, "provider",
                            cq_providers_at(w->providers, i)->conf->name, NULL);
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
          (double)w->depth[0]);
    gauge(out, "cancelq_queue_delayed", "Retries waiting in {P}:delayed (polled).",
          (double)w->depth[1]);
    gauge(out, "cancelq_queue_dead", "Dead-letter entries in {P}:dead (polled).",
          (double)w->depth[2]);
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
}

int cq_worker_metrics_start(cq_worker *w, cq_err *err)
{
    const char *listen = w->cfg->worker.metrics_listen;

    if (listen == NULL || listen[0] == '\0')
        return 0;
    w->metrics = cq_metrics_new(w->loop, listen, render, w, err);
    if (w->metrics == NULL)
        return -1;
    cq_log(CQ_LOG_INFO, "metrics_listening", "listen", listen, NULL);
    return 0;
}

static void depths_cb(void *data, long long jobs, long long delayed, long long dead)
{
    cq_worker *w = data;

    w->depth[0] = jobs;
    w->depth[1] = delayed;
    w->depth[2] = dead;
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
    cq_notify_status("%zu jobs held, %llu ended, %llu retries, redis %s%s%s%s",
                     cq_tasks_held(w->tasks), (unsigned long long)st->finished,
                     (unsigned long long)st->retried,
                     w->store != NULL && cq_store_ready(w->store) ? "up" : "DOWN", trouble,
                     dur[0] != '\0' ? "; WARNING " : "", dur);
}
