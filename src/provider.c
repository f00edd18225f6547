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
#include "provider_int.h"

uint64_t cq_prov_now(const cq_provider *p)
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

cq_admit *cq_prov_pop(cq_provider *p)
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

void cq_prov_defer(cq_admit *a, cq_defer why, uint64_t hint_ms)
{
    a->where = ADM_IDLE;
    a->defer(a, why, hint_ms);
}

/* --- breaker ------------------------------------------------------------- */

void cq_prov_breaker_note(cq_provider *p)
{
    cq_breaker_state st = p->breaker.state;

    p->breaker_changes[st]++;
    cq_log(st == CQ_BR_OPEN ? CQ_LOG_WARN : CQ_LOG_NOTICE, "breaker_state", "provider",
           p->conf->name, "state", cq_breaker_state_name(st), "by",
           p->breaker.forced ? "deployment" : "this_worker", "detail",
           st == CQ_BR_OPEN && p->breaker.forced
               ? "another worker's breaker opened: jobs wait without spending attempts"
           : st == CQ_BR_OPEN   ? "transient failures in a row: jobs wait without spending attempts"
           : st == CQ_BR_CLOSED ? "the provider answers again"
                                : "cooldown over: one probe goes",
           NULL);
    if (p->g->changed != NULL)
        p->g->changed(p->g->changed_data);
    cq_prov_breaker_shared(p);
}

uint64_t cq_provider_wait_hint(const cq_provider *p)
{
    int64_t pause = p->bucket.paused_until - (int64_t)cq_prov_now(p);
    uint64_t br = cq_provider_reopens_in(p);

    return pause > 0 && (uint64_t)pause > br ? (uint64_t)pause : br;
}

uint64_t cq_provider_reopens_in(const cq_provider *p)
{
    int64_t left = p->breaker.open_end - (int64_t)cq_prov_now(p);

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
        cq_prov_pump(p);
    } else if (status == -EAGAIN && !p->g->stopping) {
        cq_prov_defer(a, CQ_DEFER_CRED, retry_ms);
    } else {
        cq_prov_defer(a, CQ_DEFER_STOP, 0);
    }
}

/* No usable token: wait for the renewal, or, when the token endpoint is
 * failing, put the job back until its next try. */
static void await_token(cq_provider *p, cq_admit *a)
{
    uint64_t retry_in = cq_cred_retry_in(p->cred);

    if (retry_in > 0) {
        cq_prov_defer(a, CQ_DEFER_CRED, retry_in);
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
    cq_prov_pump(p);
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
    a->probe = !a->check && p->breaker.state == CQ_BR_HALF_OPEN; /* only a call probes */
    a->sent_at = now;
    a->where = ADM_SENT;
    if (a->check)
        p->checks++;
    else
        p->attempts++;
    a->go(a, tok, gen);
}

/* May the request at the head of the queue go, as far as the breaker is
 * concerned?  When not, it is deferred.  Only a cancellation call asks the
 * breaker (and may be its half-open probe).  A status lookup waits out the
 * cooldown like a call but never serves as the probe, and its answer never
 * counts: only a call can show that writes work again.  Once the cooldown
 * is over lookups go, so a job whose lookup is pending can reach the call
 * that probes. */
enum { GO, DEFERRED, WAIT };

static int breaker_lets_go(cq_provider *p, uint64_t now)
{
    int64_t retry_at = 0;
    bool changed = false;

    if (p->head->check) {
        if (p->breaker.state != CQ_BR_OPEN || (int64_t)now >= p->breaker.open_end)
            return GO;
        p->breaker_deferred++;
        cq_prov_defer(cq_prov_pop(p), CQ_DEFER_BREAKER, cq_provider_reopens_in(p));
        return DEFERRED;
    }
    /* the cooldown is over: the deployment's one probe must be this
     * worker's before a call goes (the queue waits for the answer) */
    if (p->breaker.state == CQ_BR_OPEN && (int64_t)now >= p->breaker.open_end &&
        !cq_prov_probe_ok(p))
        return WAIT;
    if (cq_breaker_allow(&p->breaker, (int64_t)now, &retry_at, &changed)) {
        if (changed)
            cq_prov_breaker_note(p);
        return GO;
    }
    if (changed)
        cq_prov_breaker_note(p);
    p->breaker_deferred++;
    cq_prov_defer(cq_prov_pop(p), CQ_DEFER_BREAKER, (uint64_t)(retry_at - (int64_t)now));
    return DEFERRED;
}

/* Let go what may go now, in FIFO order.  Each request is looked at once
 * per pass, so a pass is O(requests sent or moved). */
void cq_prov_pump(cq_provider *p)
{
    cq_providers *g = p->g;

    while (p->head != NULL && p->active < cq_prov_limit(p)) {
        uint64_t now = cq_prov_now(p), hint = 0;
        int64_t wait;
        const char *tok;
        unsigned gen;
        int br;

        if (g->stopping) {
            cq_prov_defer(cq_prov_pop(p), CQ_DEFER_STOP, 0);
            continue;
        }
        if (g->gate != NULL && !g->gate(g->gate_data))
            return; /* cq_providers_kick wakes the queue */
        if (cq_prov_paused(p, now, &hint)) {
            p->g_pauses++;
            cq_prov_defer(cq_prov_pop(p), CQ_DEFER_PAUSE, hint);
            continue;
        }
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
            await_token(p, cq_prov_pop(p));
            continue;
        }
        br = breaker_lets_go(p, now);
        if (br == WAIT)
            return; /* the probe's answer wakes the queue */
        if (br == DEFERRED)
            continue;
        let_go(p, cq_prov_pop(p), tok, gen, now);
    }
    cq_prov_want_share(p); /* held back by the share, or holding idle slots */
}

void cq_provider_submit(cq_provider *p, cq_admit *a, bool fresh)
{
    a->p = p;
    if (fresh && p->nwait + p->ncred >= CQ_FAIR_WAIT_MAX(p->conf)) {
        p->fair_bounced++;
        cq_prov_defer(a, CQ_DEFER_FAIR, 0);
        return;
    }
    queue_push(p, a);
    cq_prov_pump(p);
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
    cq_prov_pump(p);
    if (!g->global_wait)
        return;
    g->global_wait = false;
    for (i = 0; i < g->n && g->active < g->limit; i++)
        cq_prov_pump(&g->v[i]);
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
    cq_bucket_pause(&p->bucket, (int64_t)(cq_prov_now(p) + ms));
    cq_prov_pause_shared(p, ms);
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
    cq_histogram_observe(&p->duration, (double)(cq_prov_now(p) - a->sent_at) / 1000.0);
    if (resp->transport == CQ_TR_ABORTED || v == NULL) {
        if (probe)
            cq_breaker_abandon(&p->breaker);
    } else if (v->kind == CQ_V_RETRY && resp->status == 429) {
        if (v->has_retry_after)
            pause_for(p, v);
        if (probe)
            cq_breaker_abandon(&p->breaker);
    } else if (!a->check) {
        /* the breaker judges the instance by its cancellation calls: a
         * lookup that answers does not show that writes work (reads often
         * stay up while writes fail); every verdict but RETRY of a call
         * shows the instance working */
        probe_failed = cq_prov_breaker_learn(p, v->kind != CQ_V_RETRY, probe);
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
