/*
 * provider_share.c - the deployment-wide limits of a provider instance
 * (docs/design.md §8): this worker's share of concurrency, rate and burst;
 * the breaker, the 429 pause and an operator's pause as every worker sees
 * them; the one half-open probe.  The state lives in Redis (share.lua,
 * limit.lua, claim.lua); this file keeps this worker's view of it and asks
 * the worker (hooks) to read or write it.  Without hooks the limits are
 * this worker's alone.
 */
#include <stdio.h>
#include <string.h>

#include "cancelq/log.h"
#include "provider_int.h"

/* A starved queue asks for a larger share at most this often. */
#define SHARE_ASK_EVERY_MS 100
/* Indefinite pauses are looked at again this often (jobs come back). */
#define PAUSE_RECHECK_MS 5000

static bool shared(const cq_provider *p)
{
    return p->g->hooks.share != NULL;
}

static int local_cap(const cq_provider *p)
{
    return p->conf->local_concurrency > 0 ? p->conf->local_concurrency : p->conf->concurrency;
}

int cq_prov_limit(const cq_provider *p)
{
    int local = local_cap(p);

    if (!shared(p))
        return local;
    if (p->share < 0 || (p->conf->rate > 0 && p->share_rate <= 0))
        return 0; /* no share yet: nothing goes */
    return p->share < local ? p->share : local;
}

static int want_of(const cq_provider *p)
{
    return p->nwait + p->ncred + p->active;
}

static void ask_share(cq_provider *p)
{
    p->share_pending = true;
    p->share_asked = cq_prov_now(p);
    p->g->hooks.share(p->g->hooks.data, p, want_of(p), p->active);
}

void cq_prov_want_share(cq_provider *p)
{
    if (!shared(p) || p->share_pending ||
        (p->share >= local_cap(p) && (p->conf->rate <= 0 || p->share_rate > 0)))
        return;
    if (p->share >= 0 && cq_prov_now(p) - p->share_asked < SHARE_ASK_EVERY_MS)
        return; /* the next heartbeat, or the next freed slot, asks again */
    ask_share(p);
}

void cq_providers_renew(cq_providers *g)
{
    size_t i;

    if (g->hooks.share == NULL)
        return;
    for (i = 0; i < g->n; i++) {
        cq_provider *p = &g->v[i];

        /* nothing to do and nothing held: nothing to say */
        if (p->share_pending || (want_of(p) == 0 && p->share <= 0))
            continue;
        ask_share(p);
    }
}

void cq_provider_set_share(cq_provider *p, int conc, double rate, double burst)
{
    p->share_pending = false;
    if (conc < 0)
        return; /* the request failed: keep what we had */
    p->share = conc;
    if (p->conf->rate > 0 && (rate != p->share_rate || burst != p->share_burst)) {
        p->share_rate = rate;
        p->share_burst = burst;
        if (rate > 0)
            cq_bucket_share(&p->bucket, rate, burst, (int64_t)cq_prov_now(p));
    }
    cq_prov_pump(p);
}

/* --- breaker, pauses ----------------------------------------------------- */

static uint64_t later(const cq_provider *p, long long ms)
{
    return cq_prov_now(p) + (uint64_t)(ms > 0 ? ms : 0);
}

void cq_provider_adopt(cq_provider *p, long long open_ms, long long pause_ms)
{
    uint64_t now = cq_prov_now(p);
    bool was_open = p->g_open_until > now;

    p->g_pause_until = pause_ms < 0 ? UINT64_MAX : pause_ms > 0 ? later(p, pause_ms) : 0;
    if (open_ms > 0) {
        p->g_open_until = later(p, open_ms);
        /* another worker's breaker opened: so is ours, until the same end */
        if (cq_breaker_force_open(&p->breaker, (int64_t)p->g_open_until))
            cq_prov_breaker_note(p);
    } else {
        p->g_open_until = 0;
        /* the deployment's breaker closed (a probe worked somewhere) */
        if (was_open && cq_breaker_force_closed(&p->breaker))
            cq_prov_breaker_note(p);
    }
    cq_prov_pump(p);
}

void cq_provider_probe_answer(cq_provider *p, bool granted, long long open_ms,
                              long long pause_ms)
{
    p->probe_pending = false;
    p->probe_ok = granted;
    if (!granted && open_ms <= 0)
        open_ms = CQ_BREAKER_PROBE_WAIT_MS; /* another worker probes: wait for its result */
    if (!granted)
        cq_breaker_force_open(&p->breaker, (int64_t)later(p, open_ms));
    cq_provider_adopt(p, granted ? 0 : open_ms, pause_ms);
}

bool cq_prov_probe_ok(cq_provider *p)
{
    if (!shared(p) || p->probe_ok)
        return true;
    if (!p->probe_pending) {
        p->probe_pending = true;
        p->g->hooks.probe(p->g->hooks.data, p, p->conf->timeout_ms + CQ_BREAKER_PROBE_WAIT_MS);
    }
    return false;
}

void cq_prov_breaker_shared(cq_provider *p)
{
    bool open = p->breaker.state == CQ_BR_OPEN;

    if (p->breaker.state == CQ_BR_HALF_OPEN)
        return; /* this worker's probe is out: its result is what counts */
    p->probe_ok = false;
    if (!shared(p) || p->breaker.forced)
        return; /* adopted from the deployment: nothing new to tell */
    p->g->hooks.breaker(p->g->hooks.data, p, open, open ? p->breaker.cooldown_ms : 0);
}

void cq_prov_pause_shared(cq_provider *p, uint64_t ms)
{
    if (shared(p))
        p->g->hooks.pause(p->g->hooks.data, p, ms);
}

/* Is the instance paused by the deployment (another worker's 429, an
 * operator)?  Then its jobs go back without waiting here. */
bool cq_prov_paused(cq_provider *p, uint64_t now, uint64_t *hint)
{
    if (p->g_pause_until <= now)
        return false;
    *hint = p->g_pause_until == UINT64_MAX ? PAUSE_RECHECK_MS : p->g_pause_until - now;
    return true;
}

void cq_providers_set_hooks(cq_providers *g, const cq_provider_hooks *h)
{
    size_t i;

    g->hooks = *h;
    for (i = 0; i < g->n; i++)
        g->v[i].share = -1; /* nothing goes until the first share */
}
