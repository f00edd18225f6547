/*
 * provider.c - admission of requests to provider instances (see
 * provider.h): the FIFO queue, slots, rate bucket, breaker, credential wait
 * and fairness of each instance.
 */
#include "cancelq/provider.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cancelq/log.h"

enum { ADM_IDLE, ADM_QUEUED, ADM_CRED, ADM_SENT };

struct cq_providers {
    uv_loop_t *loop;
    const cq_config *cfg;
    cq_provider *v;
    size_t n;
    size_t active;    /* requests in flight, all instances */
    size_t limit;     /* [worker] concurrency */
    bool global_wait; /* a queue waits for the worker-wide limit */
    bool stopping;
    bool (*gate)(void *data); /* nothing goes while it answers false */
    void *gate_data;
    int closing; /* timers whose close callback is still due */
    void (*changed)(void *data);
    void *changed_data;
};

static void pump(cq_provider *p);

static uint64_t now_ms(const cq_provider *p)
{
    return uv_now(p->g->loop);
}

/* --- the queue ----------------------------------------------------------- */

static void queue_push(cq_provider *p, cq_admit *a)
{
    a->next = NULL;
    a->where = ADM_QUEUED;
    if (p->tail != NULL)
        p->tail->next = a;
    else
        p->head = a;
    p->tail = a;
    p->nwait++;
}

static cq_admit *queue_pop(cq_provider *p)
{
    cq_admit *a = p->head;

    p->head = a->next;
    if (p->head == NULL)
        p->tail = NULL;
    a->next = NULL;
    a->where = ADM_IDLE;
    p->nwait--;
    return a;
}

static bool queue_remove(cq_provider *p, cq_admit *a)
{
    cq_admit **pp, *prev = NULL;

    for (pp = &p->head; *pp != NULL; prev = *pp, pp = &(*pp)->next) {
        if (*pp != a)
            continue;
        *pp = a->next;
        if (p->tail == a)
            p->tail = prev;
        a->next = NULL;
        a->where = ADM_IDLE;
        p->nwait--;
        return true;
    }
    return false;
}

static void defer(cq_admit *a, cq_defer why, uint64_t hint_ms)
{
    a->where = ADM_IDLE;
    a->defer(a, why, hint_ms);
}

/* --- breaker ------------------------------------------------------------- */

static void breaker_note(cq_provider *p)
{
    cq_breaker_state st = p->breaker.state;

    p->breaker_changes[st]++;
    cq_log(st == CQ_BR_OPEN ? CQ_LOG_WARN : CQ_LOG_NOTICE, "breaker_state", "provider",
           p->conf->name, "state", cq_breaker_state_name(st), "detail",
           st == CQ_BR_OPEN     ? "transient failures in a row: jobs wait without spending attempts"
           : st == CQ_BR_CLOSED ? "the provider answers again"
                                : "cooldown over: one probe goes",
           NULL);
    if (p->g->changed != NULL)
        p->g->changed(p->g->changed_data);
}

uint64_t cq_provider_wait_hint(const cq_provider *p)
{
    int64_t pause = p->bucket.paused_until - (int64_t)now_ms(p);
    uint64_t br = cq_provider_reopens_in(p);

    return pause > 0 && (uint64_t)pause > br ? (uint64_t)pause : br;
}

uint64_t cq_provider_reopens_in(const cq_provider *p)
{
    int64_t left = p->breaker.open_end - (int64_t)now_ms(p);

    return p->breaker.state == CQ_BR_OPEN && left > 0 ? (uint64_t)left : 0;
}

/* --- admission ----------------------------------------------------------- */

static void cred_ready(cq_cred_waiter *cw, int status, uint64_t retry_ms)
{
    cq_admit *a = (cq_admit *)((char *)cw - offsetof(cq_admit, cw));
    cq_provider *p = a->p;

    p->ncred--;
    a->where = ADM_IDLE;
    if (status == 0 && !p->g->stopping) {
        queue_push(p, a);
        pump(p);
    } else if (status == -EAGAIN && !p->g->stopping) {
        defer(a, CQ_DEFER_CRED, retry_ms);
    } else {
        defer(a, CQ_DEFER_STOP, 0);
    }
}

/* No usable token: wait for the renewal, or, when the token endpoint is
 * failing, put the job back until its next try. */
static void await_token(cq_provider *p, cq_admit *a)
{
    uint64_t retry_in = cq_cred_retry_in(p->cred);

    if (retry_in > 0) {
        defer(a, CQ_DEFER_CRED, retry_in);
        return;
    }
    p->ncred++;
    a->where = ADM_CRED;
    a->cw.cb = cred_ready;
    cq_cred_wait(p->cred, &a->cw);
}

static void pump_timer_cb(uv_timer_t *h)
{
    cq_provider *p = h->data;

    p->pump_armed = false;
    pump(p);
}

/* The bucket has no token: wake the queue when it has one. */
static void wait_bucket(cq_provider *p, int64_t wait)
{
    if (p->pump_armed)
        return;
    p->pump_armed = true;
    p->rate_waits++;
    uv_timer_start(&p->pump_timer, pump_timer_cb, (uint64_t)wait, 0);
}

static void let_go(cq_provider *p, cq_admit *a, const char *tok, unsigned gen, uint64_t now)
{
    cq_bucket_take(&p->bucket, (int64_t)now);
    p->active++;
    p->g->active++;
    a->probe = p->breaker.state == CQ_BR_HALF_OPEN;
    a->sent_at = now;
    a->where = ADM_SENT;
    if (a->check)
        p->checks++;
    else
        p->attempts++;
    a->go(a, tok, gen);
}

/* Let go what may go now, in FIFO order.  Each request is looked at once
 * per pass, so a pass is O(requests sent or moved). */
static void pump(cq_provider *p)
{
    cq_providers *g = p->g;

    while (p->head != NULL && p->active < p->conf->concurrency) {
        uint64_t now = now_ms(p);
        int64_t wait, retry_at = 0;
        const char *tok;
        unsigned gen;
        bool changed;

        if (g->stopping) {
            defer(queue_pop(p), CQ_DEFER_STOP, 0);
            continue;
        }
        if (g->gate != NULL && !g->gate(g->gate_data))
            return; /* cq_providers_kick wakes the queue */
        if (g->active >= g->limit) {
            g->global_wait = true; /* woken by the next slot freed anywhere */
            return;
        }
        wait = cq_bucket_wait_ms(&p->bucket, (int64_t)now);
        if (wait > 0) {
            wait_bucket(p, wait);
            return;
        }
        tok = cq_cred_token(p->cred, &gen);
        if (tok == NULL) {
            await_token(p, queue_pop(p));
            continue;
        }
        if (!cq_breaker_allow(&p->breaker, (int64_t)now, &retry_at, &changed)) {
            if (changed)
                breaker_note(p);
            p->breaker_deferred++;
            defer(queue_pop(p), CQ_DEFER_BREAKER, (uint64_t)(retry_at - (int64_t)now));
            continue;
        }
        if (changed)
            breaker_note(p);
        let_go(p, queue_pop(p), tok, gen, now);
    }
}

void cq_provider_submit(cq_provider *p, cq_admit *a, bool fresh)
{
    a->p = p;
    if (fresh && p->nwait + p->ncred >= CQ_FAIR_WAIT_MAX(p->conf)) {
        p->fair_bounced++;
        defer(a, CQ_DEFER_FAIR, 0);
        return;
    }
    queue_push(p, a);
    pump(p);
}

bool cq_provider_withdraw(cq_provider *p, cq_admit *a)
{
    if (a->where == ADM_QUEUED)
        return queue_remove(p, a);
    if (a->where == ADM_CRED && cq_cred_unwait(p->cred, &a->cw)) {
        p->ncred--;
        a->where = ADM_IDLE;
        return true;
    }
    return false;
}

/* A slot is free again: this instance may send its next request, and when
 * the worker-wide limit held other instances back, they may too. */
static void slot_free(cq_provider *p)
{
    cq_providers *g = p->g;
    size_t i;

    p->active--;
    g->active--;
    pump(p);
    if (!g->global_wait)
        return;
    g->global_wait = false;
    for (i = 0; i < g->n && g->active < g->limit; i++)
        pump(&g->v[i]);
}

void cq_provider_abandon(cq_provider *p, cq_admit *a)
{
    if (a->check) /* counted when it was let go */
        p->checks--;
    else
        p->attempts--;
    if (a->probe)
        cq_breaker_abandon(&p->breaker);
    a->probe = false;
    a->where = ADM_IDLE;
    p->active--;
    p->g->active--;
}

/* A 429 with Retry-After pauses the whole instance (capped by
 * retry_after_max); it is rate limiting, not an outage, so the breaker does
 * not count it. */
static void pause_for(cq_provider *p, const cq_verdict *v)
{
    uint64_t ms = v->retry_after_ms, cap = p->g->cfg->worker.retry_after_max_ms;
    char s[24];

    if (ms > cap)
        ms = cap;
    cq_bucket_pause(&p->bucket, (int64_t)(now_ms(p) + ms));
    p->pauses++;
    snprintf(s, sizeof(s), "%llu", (unsigned long long)ms);
    cq_log(CQ_LOG_NOTICE, "provider_paused", "provider", p->conf->name, "pause_ms", s, "reason",
           "429 with Retry-After", NULL);
}

bool cq_provider_done(cq_provider *p, cq_admit *a, const cq_response *resp, const cq_verdict *v)
{
    bool probe = a->probe, probe_failed = false;

    a->probe = false;
    a->where = ADM_IDLE;
    cq_histogram_observe(&p->duration, (double)(now_ms(p) - a->sent_at) / 1000.0);
    if (resp->transport == CQ_TR_ABORTED || v == NULL) {
        if (probe)
            cq_breaker_abandon(&p->breaker);
    } else if (v->kind == CQ_V_RETRY && resp->status == 429) {
        if (v->has_retry_after)
            pause_for(p, v);
        if (probe)
            cq_breaker_abandon(&p->breaker);
    } else {
        /* every verdict but RETRY shows the instance working */
        if (cq_breaker_record(&p->breaker, v->kind != CQ_V_RETRY, (int64_t)now_ms(p)))
            breaker_note(p);
        probe_failed = probe && v->kind == CQ_V_RETRY && p->breaker.state == CQ_BR_OPEN;
        if (probe_failed)
            p->breaker_deferred++;
    }
    slot_free(p);
    return probe_failed;
}

void cq_provider_token_refused(cq_provider *p, unsigned gen)
{
    /* one renewal per token: requests that carried the same token wait for it */
    cq_cred_invalid(p->cred, gen);
}

void cq_provider_count_end(cq_provider *p, const cq_action *a, cq_status st)
{
    size_t ai;

    if (a == NULL || (unsigned)st >= CQ_ST_COUNT)
        return;
    ai = (size_t)(a - p->adapter->actions);
    if (ai < CQ_MAX_ACTIONS)
        p->jobs[ai][st]++;
}

const cq_provider_conf *cq_provider_cfg(const cq_provider *p)
{
    return p->conf;
}

const cq_adapter *cq_provider_adapter(const cq_provider *p)
{
    return p->adapter;
}

void cq_provider_http_opts(const cq_provider *p, const char *token, cq_http_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->timeout_ms = p->conf->timeout_ms;
    o->connect_timeout_ms = p->conf->connect_timeout_ms;
    o->max_response = p->conf->max_response;
    o->allow_http = p->conf->allow_insecure_http;
    o->auth_prefix = p->adapter->auth_prefix;
    o->token = token;
    cq_cred_http_opts(p->cred, o); /* ca_file, client certificate, proxy */
}

/* --- the set ------------------------------------------------------------- */

static int instance_init(cq_providers *g, cq_provider *p, const cq_provider_conf *pc, cq_http *http,
                         cq_err *err)
{
    p->g = g;
    p->conf = pc;
    cq_bucket_init(&p->bucket, pc->rate, pc->burst, (int64_t)uv_now(g->loop));
    cq_breaker_init(&p->breaker, pc->breaker_failures, pc->breaker_cooldown_ms);
    p->adapter = cq_adapter_find(pc->adapter);
    if (p->adapter == NULL)
        return cq_err_set(err, -EINVAL, "config", "provider %s: unknown adapter '%s'", pc->name,
                          pc->adapter);
    if (pc->cred != CQ_CRED_TOKEN_FILE && pc->cred != p->adapter->oauth_grant)
        return cq_err_set(err, -EINVAL, "config",
                          "provider %s: adapter %s does not use this OAuth2 grant", pc->name,
                          p->adapter->name);
    /* static tokens are read now; OAuth2 tokens are minted on first use */
    p->cred = cq_cred_new(g->loop, http, pc, err);
    return p->cred != NULL ? 0 : -EINVAL;
}

cq_providers *cq_providers_new(uv_loop_t *loop, const cq_config *cfg, cq_http *http, cq_err *err)
{
    cq_providers *g = calloc(1, sizeof(*g));
    size_t i;

    if (g == NULL)
        goto nomem;
    g->v = calloc(cfg->nproviders > 0 ? cfg->nproviders : 1, sizeof(*g->v));
    if (g->v == NULL) {
        free(g);
        goto nomem;
    }
    g->loop = loop;
    g->cfg = cfg;
    g->limit = (size_t)cfg->worker.concurrency;
    for (i = 0; i < cfg->nproviders; i++) {
        /* timers first: cq_providers_free closes every one of them */
        uv_timer_init(loop, &g->v[i].pump_timer);
        g->v[i].pump_timer.data = &g->v[i];
        g->n++;
    }
    for (i = 0; i < g->n; i++) {
        if (instance_init(g, &g->v[i], &cfg->providers[i], http, err) != 0) {
            cq_providers_free(g);
            return NULL;
        }
    }
    return g;
nomem:
    cq_err_set(err, -ENOMEM, "nomem", "out of memory");
    return NULL;
}

void cq_providers_on_change(cq_providers *g, void (*cb)(void *data), void *data)
{
    g->changed = cb;
    g->changed_data = data;
}

size_t cq_providers_count(const cq_providers *g)
{
    return g->n;
}

cq_provider *cq_providers_at(cq_providers *g, size_t i)
{
    return i < g->n ? &g->v[i] : NULL;
}

cq_provider *cq_providers_find(cq_providers *g, const char *name)
{
    size_t i;

    for (i = 0; name != NULL && i < g->n; i++) {
        if (strcmp(g->v[i].conf->name, name) == 0)
            return &g->v[i];
    }
    return NULL;
}

size_t cq_providers_active(const cq_providers *g)
{
    return g->active;
}

void cq_providers_set_gate(cq_providers *g, bool (*open)(void *data), void *data)
{
    g->gate = open;
    g->gate_data = data;
}

void cq_providers_kick(cq_providers *g)
{
    size_t i;

    for (i = 0; i < g->n; i++)
        pump(&g->v[i]);
}

void cq_providers_stop(cq_providers *g)
{
    size_t i;

    g->stopping = true;
    for (i = 0; i < g->n; i++) {
        cq_provider *p = &g->v[i];

        uv_timer_stop(&p->pump_timer);
        while (p->head != NULL)
            defer(queue_pop(p), CQ_DEFER_STOP, 0);
        /* waiters are called with -ECANCELED: deferred as above */
        cq_cred_cancel_waiters(p->cred);
    }
}

void cq_providers_reload(cq_providers *g)
{
    size_t i;

    for (i = 0; i < g->n; i++) {
        cq_err err;

        cq_err_clear(&err);
        if (cq_cred_reload(g->v[i].cred, &err) != 0)
            cq_log(CQ_LOG_ERR, "secret_reload_failed", "provider", g->v[i].conf->name, "error",
                   err.msg, "detail", "keeping the secrets read before", NULL);
    }
}

static void timer_closed(uv_handle_t *h)
{
    cq_provider *p = h->data;
    cq_providers *g = p->g;

    if (--g->closing > 0)
        return;
    free(g->v);
    free(g);
}

void cq_providers_free(cq_providers *g)
{
    size_t i;

    if (g == NULL)
        return;
    if (g->n == 0) {
        free(g->v);
        free(g);
        return;
    }
    g->closing = (int)g->n;
    for (i = 0; i < g->n; i++) {
        g->v[i].g = g;
        cq_cred_free(g->v[i].cred);
        g->v[i].cred = NULL;
        uv_close((uv_handle_t *)&g->v[i].pump_timer, timer_closed);
    }
}
