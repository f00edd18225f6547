/*
 * provider_set.c - the set of provider instances (see provider.h): built
 * from the config, looked up by name, stopped, reloaded, freed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cancelq/log.h"
#include "provider_int.h"

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
        cq_prov_pump(&g->v[i]);
}

void cq_providers_stop(cq_providers *g)
{
    size_t i;

    g->stopping = true;
    for (i = 0; i < g->n; i++) {
        cq_provider *p = &g->v[i];

        uv_timer_stop(&p->pump_timer);
        while (p->head != NULL)
            cq_prov_defer(cq_prov_pop(p), CQ_DEFER_STOP, 0);
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

void cq_providers_reconfigure(cq_providers *g)
{
    size_t i;

    for (i = 0; i < g->n; i++) {
        cq_provider *p = &g->v[i];
        int64_t now = (int64_t)cq_prov_now(p);

        p->breaker.threshold = p->conf->breaker_failures;
        p->breaker.cooldown_ms = p->conf->breaker_cooldown_ms;
        if (g->hooks.share == NULL)
            cq_bucket_set(&p->bucket, p->conf->rate, p->conf->burst, now);
        else if (p->conf->rate <= 0)
            p->bucket.rate = 0; /* no rate limit any more */
        else
            p->share_rate = -1; /* the next share brings the new rate */
    }
    cq_providers_renew(g);
    cq_providers_kick(g);
}
