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
    /* while a share request is out, Redis may give away anything above
     * what was in flight when it went: start nothing beyond that */
    if (p->share_pending && p->share_inflight < p->share)
        return p->share_inflight < local ? p->share_inflight : local;
    return p->share < local ? p->share : local;
}

static int want_of(const cq_provider *p)
{
    return p->nwait + p->ncred + p->active;
}

static void ask_share(cq_provider *p)
{
    p->share_pending = true;
    p->share_inflight = p->active;
    p->share_asked = cq_prov_now(p);
    p->g->hooks.share(p->g->hooks.data, p, want_of(p), p->active);
}

void cq_prov_want_share(cq_provider *p)
{
    bool starved, idle;

    if (!shared(p) || p->share_pending)
        return;
    /* held back by the share (more could go), or holding slots nobody here
     * uses (others may be waiting for them) */
    starved = p->head != NULL && ((p->share < local_cap(p) && p->active >= p->share) ||
                                  (p->conf->rate > 0 && p->share_rate <= 0));
    /* slots beyond our demand matter only when another worker has work;
     * so do slots Redis still counts for us after we drained to a smaller
     * share */
    idle = (p->share > want_of(p) && p->share_busy > 1) ||
           (p->share_held > p->share && p->active <= p->share);
    if (!starved && !idle)
        return;
    if (p->share >= 0 && cq_prov_now(p) - p->share_asked < SHARE_ASK_EVERY_MS)
        return; /* the next freed slot, or the next heartbeat, asks again */
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

void cq_provider_set_share(cq_provider *p, int conc, double rate, double burst, int busy)
{
    p->share_pending = false;
    if (conc < 0)
        return; /* the request failed: keep what we had */
    p->share = conc;
    p->share_busy = busy;
    p->share_held = conc > p->share_inflight ? conc : p->share_inflight;
    if (p->conf->rate > 0 && (rate != p->share_rate || burst != p->share_burst)) {
        p->share_rate = rate;
        p->share_burst = burst;
        if (rate > 0) {
            cq_bucket_share(&p->bucket, rate, burst, (int64_t)cq_prov_now(p));
        } else { /* no share: the bucket neither holds nor gathers tokens */
            p->bucket.tokens = 0;
            p->bucket.rate = 0;
        }
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

void cq_provider_probe_answer(cq_provider *p, bool granted, long long open_ms, long long pause_ms)
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
    if (p->breaker.state == CQ_BR_HALF_OPEN)
        return; /* this worker's probe is out: its result is what counts */
    p->probe_ok = false;
    /* the deployment opens the breaker ("fail"); a probe that worked here
     * closes it for everyone */
    if (shared(p) && p->breaker.state == CQ_BR_CLOSED && !p->breaker.forced)
        p->g->hooks.breaker(p->g->hooks.data, p, "close");
}

bool cq_prov_breaker_learn(cq_provider *p, bool success, bool probe)
{
    uint64_t now = cq_prov_now(p);

    if (!shared(p)) {
        if (cq_breaker_record(&p->breaker, success, (int64_t)now))
            cq_prov_breaker_note(p);
        return probe && !success && p->breaker.state == CQ_BR_OPEN;
    }
    if (success) {
        if (cq_breaker_record(&p->breaker, true, (int64_t)now))
            cq_prov_breaker_note(p); /* closed by our probe: "close" went out */
        if (p->fail_reported) {
            p->fail_reported = false;
            p->g->hooks.breaker(p->g->hooks.data, p, "ok");
        }
        return false;
    }
    /* the deployment counts the failures; a failed probe reopens at once */
    p->fail_reported = true;
    if (probe && cq_breaker_force_open(&p->breaker, (int64_t)(now + p->breaker.cooldown_ms))) {
        p->breaker.forced = false;
        cq_prov_breaker_note(p);
    }
    p->g->hooks.breaker(p->g->hooks.data, p, "fail");
    return probe;
}

void cq_provider_breaker_answer(cq_provider *p, bool opened, long long open_ms, long long pause_ms)
{
    if (opened && open_ms > 0 && cq_breaker_force_open(&p->breaker, (int64_t)later(p, open_ms))) {
        p->breaker.forced = false; /* this worker's failure opened it */
        cq_prov_breaker_note(p);
    }
    cq_provider_adopt(p, open_ms, pause_ms);
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
    for (i = 0; i < g->n; i++) {
        g->v[i].share = -1; /* nothing goes until the first share */
        /* a share never brings tokens with it: a worker's bucket fills at
         * its own rate, so bursts cannot add up across workers as shares
         * move between them */
        g->v[i].bucket.tokens = 0;
        g->v[i].bucket.rate = 0; /* and nothing accrues before the first share */
    }
}
