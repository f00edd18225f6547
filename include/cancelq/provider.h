/*
 * provider.h - admission of requests to provider instances
 * (docs/design.md §8).
 *
 * A request to an instance goes when it has, in FIFO order: a slot of the
 * instance's `concurrency` and of the worker's `[worker] concurrency` (all
 * instances together), a token of the instance's rate bucket (closed
 * during a 429 pause), a usable credential (OAuth2 tokens are minted or
 * renewed first) and the circuit breaker's consent.  A caller embeds a
 * cq_admit in its own struct, sets go / defer and submits it; exactly one
 * of the two callbacks fires per submission (none after
 * cq_provider_withdraw):
 *
 *   go(a, token, gen)      a slot and a token are taken: send now, then
 *                          report the end with cq_provider_done (or
 *                          cq_provider_abandon when it does not go);
 *   defer(a, why, hint)    it cannot go now (breaker open, the fairness
 *                          bound, the token endpoint failing, shutdown):
 *                          the caller puts the job back (cq_policy_defer).
 *
 * Callbacks run from the loop or from inside cq_provider_submit /
 * cq_provider_done (a request that ends lets the next one go); a callback
 * may submit again.
 *
 * The limits belong to the provider account, so they hold per deployment
 * (docs/design.md §8): this worker sends at most its *share* of the
 * instance's `concurrency`, `rate` and `burst`, which the deployment
 * divides among the workers that have work for it (share.lua, through the
 * worker's hooks); an open breaker, a 429 pause, an operator's pause and
 * the half-open probe are the deployment's too (limit.lua, and every claim
 * brings them back).  Without hooks (tests), the limits are this worker's
 * alone.
 *
 * The instance's counters (struct cq_provider) are read by the metrics
 * page; only the provider module writes them.
 */
#ifndef CANCELQ_PROVIDER_H
#define CANCELQ_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "cancelq/adapter.h"
#include "cancelq/breaker.h"
#include "cancelq/config.h"
#include "cancelq/cred.h"
#include "cancelq/http.h"
#include "cancelq/metrics.h"
#include "cancelq/policy.h"
#include "cancelq/ratelimit.h"
#include "cancelq/status.h"

#define CQ_MAX_ACTIONS 8 /* actions per adapter counted in metrics */

typedef struct cq_provider cq_provider;
typedef struct cq_providers cq_providers;
typedef struct cq_admit cq_admit;

struct cq_admit {
    /* the caller's, set before cq_provider_submit */
    void (*go)(cq_admit *a, const char *token, unsigned gen);
    void (*defer)(cq_admit *a, cq_defer why, uint64_t hint_ms);
    bool check; /* a status lookup (counted apart from cancellation calls) */
    /* the provider's */
    cq_admit *next;
    cq_provider *p;
    cq_cred_waiter cw;
    uint64_t sent_at; /* loop time the request went */
    int where;        /* idle, queued, waiting for a token, sent */
    bool probe;       /* the breaker's half-open probe */
};

struct cq_provider {
    cq_providers *g;
    const cq_provider_conf *conf;
    const cq_adapter *adapter;
    cq_cred *cred;
    int active;     /* requests in flight */
    cq_admit *head; /* waiting for a slot or a rate token, FIFO */
    cq_admit *tail;
    int nwait;        /* in that queue */
    int ncred;        /* waiting for a token */
    cq_bucket bucket; /* rate limit, with the 429 pause */
    cq_breaker breaker;
    uv_timer_t pump_timer; /* wakes the queue when the bucket refills */
    bool pump_armed;
    uint64_t rate_waits;                        /* times the queue waited for the bucket */
    uint64_t pauses;                            /* 429 pauses of the instance */
    uint64_t breaker_deferred;                  /* jobs put back while the breaker was open */
    uint64_t breaker_changes[3];                /* transitions into closed, open, half_open */
    uint64_t fair_bounced;                      /* jobs put back by the fairness bound */
    uint64_t jobs[CQ_MAX_ACTIONS][CQ_ST_COUNT]; /* outcomes by action and status */
    uint64_t attempts;                          /* cancellation calls */
    uint64_t checks;                            /* status lookups */
    cq_histogram duration;                      /* request durations, seconds */
    /* deployment-wide (provider_share.c) */
    int share;         /* requests this worker may have in flight; -1: not known yet */
    double share_rate; /* its part of rate and burst */
    double share_burst;
    uint64_t share_asked;   /* loop time the last share request went */
    bool share_pending;     /* a share request is on its way */
    int share_inflight;     /* requests in flight when it went */
    int share_busy;         /* workers with work for it, this one included */
    int share_held;         /* what Redis counts for us: max(share, in flight when asked) */
    uint64_t g_pause_until; /* loop time: paused by another worker or an operator; UINT64_MAX:
                             * until an operator resumes */
    uint64_t g_open_until;  /* loop time the deployment's breaker stays open */
    bool probe_pending;     /* asked for the deployment's half-open probe */
    bool probe_ok;          /* this worker holds it: one call may probe */
    bool fail_reported;     /* failures were reported: the next call that works says so */
    uint64_t g_pauses;      /* jobs put back because the deployment paused the instance */
};

/* How the provider module reaches the deployment-wide state: the worker's
 * hooks, answered with cq_provider_set_share, cq_provider_adopt and
 * cq_provider_probe_answer. */
typedef struct cq_provider_hooks {
    void *data;
    /* wants its share of the limits (want: requests waiting + in flight) */
    void (*share)(void *data, cq_provider *p, int want, int inflight);
    /* the breaker's news: "fail" (a call failed transiently), "ok" (a call
     * worked after failures were reported), "close" (the probe worked);
     * answered with cq_provider_breaker_answer */
    void (*breaker)(void *data, cq_provider *p, const char *op);
    /* a 429 with Retry-After paused the instance for ms */
    void (*pause)(void *data, cq_provider *p, uint64_t ms);
    /* wants the deployment's half-open probe, held for ttl_ms */
    void (*probe)(void *data, cq_provider *p, uint64_t ttl_ms);
} cq_provider_hooks;

/* Fairness: a fresh job that finds this many jobs of its instance already
 * waiting here (for a slot, a rate token or an OAuth token) is deferred,
 * so one slow or failing provider holds at most concurrency (in flight) +
 * concurrency + burst (waiting) of the worker's slots. */
#define CQ_FAIR_WAIT_MAX(pc) ((pc)->concurrency + ((pc)->rate > 0 ? (pc)->burst : 0))

/* Every instance of cfg, with the worker-wide limit of `[worker]
 * concurrency` requests in flight.  Static tokens are read now, OAuth2
 * tokens minted on first use through http (which must outlive the set's
 * token requests: free the set after cq_http_free).  NULL with err. */
cq_providers *cq_providers_new(uv_loop_t *loop, const cq_config *cfg, cq_http *http, cq_err *err);

/* Call cb(data) after a breaker changed state (e.g. to update STATUS=). */
void cq_providers_on_change(cq_providers *g, void (*cb)(void *data), void *data);

/* Share the limits with the deployment through hooks (copied).  Until the
 * first share comes, nothing goes. */
void cq_providers_set_hooks(cq_providers *g, const cq_provider_hooks *h);

/* Every heartbeat: renew each instance's share (and give back what is not
 * used). */
void cq_providers_renew(cq_providers *g);

/* Answers. share: this worker's concurrency and its part of rate and
 * burst, and how many workers have work for the instance (conc -1: the
 * request failed, keep what it had). */
void cq_provider_set_share(cq_provider *p, int conc, double rate, double burst, int busy);

/* The deployment's state of p, as Redis said at some point: its breaker
 * open for open_ms more, paused for pause_ms more (-1: until an operator
 * resumes it). */
void cq_provider_adopt(cq_provider *p, long long open_ms, long long pause_ms);

/* The answer to the breaker's news: opened (this worker's failure opened
 * the deployment's breaker), and the state as above. */
void cq_provider_breaker_answer(cq_provider *p, bool opened, long long open_ms, long long pause_ms);

/* The answer to a probe request: granted, and the state as above. */
void cq_provider_probe_answer(cq_provider *p, bool granted, long long open_ms, long long pause_ms);

size_t cq_providers_count(const cq_providers *g);
cq_provider *cq_providers_at(cq_providers *g, size_t i);

/* The instance called name, or NULL. */
cq_provider *cq_providers_find(cq_providers *g, const char *name);

/* Requests in flight, all instances. */
size_t cq_providers_active(const cq_providers *g);

/* A gate asked before every request: while open(data) is false nothing
 * goes (a fenced worker: docs/design.md §7) and the queues wait;
 * cq_providers_kick lets them go again. */
void cq_providers_set_gate(cq_providers *g, bool (*open)(void *data), void *data);
void cq_providers_kick(cq_providers *g);

/* Shutdown: from now on nothing goes; every waiting request is deferred
 * with CQ_DEFER_STOP. */
void cq_providers_stop(cq_providers *g);

/* SIGHUP: re-read every instance's secrets.  Errors are logged; the old
 * secrets stay. */
void cq_providers_reload(cq_providers *g);

/* SIGHUP: the instances' limits changed in their config (in place): apply
 * rate, burst and breaker settings now, ask for a share of the new limits. */
void cq_providers_reconfigure(cq_providers *g);

/* Stop the timers, wipe secrets; the memory is released once the loop has
 * run the close callbacks.  NULL is a no-op. */
void cq_providers_free(cq_providers *g);

const cq_provider_conf *cq_provider_cfg(const cq_provider *p);
const cq_adapter *cq_provider_adapter(const cq_provider *p);

/* The HTTP options of a request to p carrying token. */
void cq_provider_http_opts(const cq_provider *p, const char *token, cq_http_opts *o);

/* Queue a request.  fresh: the job has not waited here yet, so the
 * fairness bound applies. */
void cq_provider_submit(cq_provider *p, cq_admit *a, bool fresh);

/* Take a request that waits (queued or for a token) back without a
 * callback.  True when it was waiting. */
bool cq_provider_withdraw(cq_provider *p, cq_admit *a);

/* The request that went ended (resp, classified as v; v may be NULL when
 * resp->transport is CQ_TR_ABORTED).  Learns what it says about the
 * instance (a 429 with Retry-After pauses it; the breaker counts
 * transient failures), frees the slot and lets the next requests go.
 * Returns true when it was the breaker's probe and failed: the breaker
 * is open again and the job should wait for it (cq_provider_reopens_in). */
bool cq_provider_done(cq_provider *p, cq_admit *a, const cq_response *resp, const cq_verdict *v);

/* The request that was let go did not go after all (it could not be
 * built or started, or its claim must be extended first): frees its slot
 * and takes back its count (not its rate token).  Does not let others go (it is called
 * from inside go()). */
void cq_provider_abandon(cq_provider *p, cq_admit *a);

/* Ms until the open breaker lets a probe through (0 when it would now). */
uint64_t cq_provider_reopens_in(const cq_provider *p);

/* Ms the instance holds requests back for at least: a 429 pause or an
 * open breaker (0: none). */
uint64_t cq_provider_wait_hint(const cq_provider *p);

/* The provider refused the token of generation gen (401): renew it. */
void cq_provider_token_refused(cq_provider *p, unsigned gen);

/* Count a job that ended with status st (metrics). */
void cq_provider_count_end(cq_provider *p, const cq_action *a, cq_status st);

#endif
