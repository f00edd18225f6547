/*
 * worker_share.c - the provider instances' deployment-wide limits
 * (docs/design.md §8): the provider module's hooks, answered from Redis
 * (share.lua, limit.lua) through the store.
 */
#include <string.h>

#include "cancelq/log.h"
#include "worker_int.h"

static void share_cb(void *data, bool ok, const long long v[CQ_STORE_SHARE_N])
{
    cq_provider *p = data;

    if (!ok) {
        cq_provider_set_share(p, -1, 0, 0, 0);
        return;
    }
    if (v[4] != CQ_STORE_NONE && v[5] != CQ_STORE_NONE)
        cq_provider_adopt(p, v[4], v[5]); /* the breaker and pauses, as a claim brings them */
    cq_provider_set_share(p, (int)v[0], (double)v[1] / 1000.0, (double)v[2] / 1000.0, (int)v[3]);
}

static void hook_share(void *data, cq_provider *p, int want, int inflight)
{
    cq_worker *w = data;

    if (w->store == NULL ||
        cq_store_share(w->store, p->conf->name, want, inflight, p->conf, share_cb, p) != 0)
        cq_provider_set_share(p, -1, 0, 0, 0);
}

static void adopt_cb(void *data, bool ok, const long long v[CQ_STORE_SHARE_N])
{
    if (ok)
        cq_provider_adopt(data, v[0], v[1]);
}

static void breaker_cb(void *data, bool ok, const long long v[CQ_STORE_SHARE_N])
{
    if (ok)
        cq_provider_breaker_answer(data, v[2] == 1, v[0], v[1]);
}

static void hook_breaker(void *data, cq_provider *p, const char *op)
{
    cq_worker *w = data;

    if (w->store != NULL)
        cq_store_limit(w->store, p->conf->name, op, p->conf->breaker_cooldown_ms,
                       p->conf->breaker_failures, strcmp(op, "fail") == 0 ? breaker_cb : adopt_cb,
                       p);
}

static void hook_pause(void *data, cq_provider *p, uint64_t ms)
{
    cq_worker *w = data;

    if (w->store != NULL)
        cq_store_limit(w->store, p->conf->name, "pause", ms, 0, adopt_cb, p);
}

static void probe_cb(void *data, bool ok, const long long v[CQ_STORE_SHARE_N])
{
    cq_provider_probe_answer(data, ok && v[2] == 1, ok ? v[0] : 0, ok ? v[1] : 0);
}

static void hook_probe(void *data, cq_provider *p, uint64_t ttl_ms)
{
    cq_worker *w = data;

    if (w->store == NULL ||
        cq_store_limit(w->store, p->conf->name, "probe", ttl_ms, 0, probe_cb, p) != 0)
        cq_provider_probe_answer(p, false, 0, 0);
}

void cq_worker_share_init(cq_worker *w)
{
    cq_provider_hooks h = {w, hook_share, hook_breaker, hook_pause, hook_probe};

    cq_providers_set_hooks(w->providers, &h);
}
