/*
 * provider_int.h - what the pieces of the provider module share:
 * provider.c (one instance's queue and admission), provider_set.c (the set
 * of instances) and provider_share.c (the deployment-wide limits in
 * Redis, through the worker's hooks).  Not installed.
 */
#ifndef CANCELQ_PROVIDER_INT_H
#define CANCELQ_PROVIDER_INT_H

#include "cancelq/provider.h"

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
    cq_provider_hooks hooks; /* to the deployment-wide state (all NULL: local only) */
};

/* provider.c */
uint64_t cq_prov_now(const cq_provider *p);
void cq_prov_pump(cq_provider *p);
void cq_prov_defer(cq_admit *a, cq_defer why, uint64_t hint_ms);
cq_admit *cq_prov_pop(cq_provider *p);
void cq_prov_breaker_note(cq_provider *p);

/* provider_share.c */

/* Requests this worker may have in flight for p now: its local cap, its
 * deployment share. */
int cq_prov_limit(const cq_provider *p);

/* The queue waits for the share (or the probe): ask for it. */
void cq_prov_want_share(cq_provider *p);

/* Before a call when the breaker's cooldown is over: does this worker hold
 * the deployment's probe?  False: asked for it, the queue waits. */
bool cq_prov_probe_ok(cq_provider *p);

/* The local breaker changed (opened, closed): tell the deployment. */
void cq_prov_breaker_shared(cq_provider *p);

/* A call ended: success (any verdict but RETRY) or a transient failure.
 * Without hooks the local breaker counts; with them the deployment does.
 * True when it was the half-open probe and failed (the job waits for the
 * breaker without spending an attempt). */
bool cq_prov_breaker_learn(cq_provider *p, bool success, bool probe);

/* A 429 with Retry-After paused p for ms: tell the deployment. */
void cq_prov_pause_shared(cq_provider *p, uint64_t ms);

/* Is p paused by the deployment (another worker's 429, an operator)?  Then
 * *hint: ms until it may be over. */
bool cq_prov_paused(cq_provider *p, uint64_t now, uint64_t *hint);

#endif
