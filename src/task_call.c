/*
 * task_call.c - a task's claim on its job's key, its requests through the
 * provider instance's admission, and what their answers lead to
 * (docs/design.md §4, §7).
 */
#include "task_int.h"

#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cancelq/log.h"

/* --- requests ---------------------------------------------------------------- */

static void admit_go(cq_admit *a, const char *token, unsigned gen);
static void admit_defer(cq_admit *a, cq_defer why, uint64_t hint_ms);

/* Wait for the provider instance.  fresh: the job has not waited there
 * yet (the fairness bound applies). */
static void submit(cq_task *t, bool fresh)
{
    task_set_state(t, CQ_TS_QUEUED);
    t->adm.go = admit_go;
    t->adm.defer = admit_defer;
    t->adm.check = t->check != CQ_CHECK_NONE;
    cq_provider_submit(t->prov, &t->adm, fresh);
}

static cq_task *of_admit(cq_admit *a)
{
    return (cq_task *)((char *)a - offsetof(cq_task, adm));
}

static void admit_defer(cq_admit *a, cq_defer why, uint64_t hint_ms)
{
    task_defer(of_admit(a), why, hint_ms);
}

/* The decision after an answer (or a request that could not start). */
static void carry_out(cq_task *t, const cq_decision *d);

/* What the policy needs to know about the job and its request. */
static void policy_job(const cq_task *t, cq_policy_job *j)
{
    memset(j, 0, sizeof(*j));
    j->attempts = t->env.attempts;
    j->max_attempts = t->ck.job.max_attempts;
    j->deadline_ms = t->ck.job.deadline_ms;
    j->has_check = t->ck.action->build_check != NULL;
    j->renewed = t->renewed;
    j->check = t->check;
    j->ambiguous = t->ambiguous;
}

/* Does the claim cover a request started now, to its timeout and a
 * margin?  (A call never outlives its claim: docs/design.md §7.) */
static bool claim_covers(const cq_task *t)
{
    const cq_tasks *ts = t->ts;
    uint64_t now = ts->c.io.mono_ms(ts->c.io.data);

    return now + cq_provider_cfg(t->prov)->timeout_ms + CQ_CLAIM_MARGIN_MS <= t->claim_until;
}

static void send_failed(cq_task *t, int rc)
{
    cq_tasks *ts = t->ts;
    cq_response resp;
    cq_verdict v;
    cq_decision d;
    cq_policy_job j;

    cq_provider_abandon(t->prov, &t->adm);
    memset(&resp, 0, sizeof(resp));
    resp.now_ms = ts->c.io.now_ms(ts->c.io.data);
    cq_verdict_set(&v, CQ_V_RETRY, "internal", "could not start the request (%d)", rc);
    policy_job(t, &j);
    cq_policy_answer(ts->c.policy, &j, &resp, &v, &d);
    carry_out(t, &d);
}

/* A slot and a token: build the request and send it. */
static void admit_go(cq_admit *a, const char *token, unsigned gen)
{
    cq_task *t = of_admit(a);
    cq_tasks *ts = t->ts;
    const cq_provider_conf *pc = cq_provider_cfg(t->prov);
    const cq_action *act = t->ck.action;
    cq_request req;
    cq_http_opts o;
    cq_err err;
    int rc;

    if (!claim_covers(t)) {
        /* waited here too long: extend the claim first (or learn it is gone) */
        cq_provider_abandon(t->prov, a);
        task_claim(t);
        return;
    }
    memset(&req, 0, sizeof(req));
    cq_err_clear(&err);
    rc = t->check == CQ_CHECK_NONE ? act->build(pc, t->ck.job.params, &req, &err)
                                   : act->build_check(pc, t->ck.job.params, &req, &err);
    if (rc != 0) {
        cq_request_clear(&req);
        cq_provider_abandon(t->prov, a);
        task_finish(t, CQ_ST_FAILED, err.code[0] ? err.code : "build_failed", err.msg, 0);
        return;
    }
    cq_provider_http_opts(t->prov, token, &o);
    t->tok_gen = gen;
    if (t->check == CQ_CHECK_NONE) {
        if (t->env.first_ms == 0)
            t->env.first_ms = ts->c.io.now_ms(ts->c.io.data);
        t->env.attempts++;
        task_set_state(t, CQ_TS_CALLING);
    } else {
        task_set_state(t, CQ_TS_CHECKING);
    }
    rc = ts->c.io.send(ts->c.io.data, t, &req, &o);
    cq_request_clear(&req);
    if (rc != 0)
        send_failed(t, rc);
}

/* --- answers ------------------------------------------------------------------ */

static void record_attempt(cq_task *t, const cq_response *resp, const cq_verdict *v)
{
    cq_envelope_add_attempt(&t->env, resp->now_ms, resp->status,
                            v->kind == CQ_V_SUCCEEDED ? "" : v->error);
}

static void retry(cq_task *t, const cq_decision *d)
{
    char ds[24], at[16];

    t->env.unknown = d->unknown;
    t->ts->stats.retried++;
    snprintf(ds, sizeof(ds), "%llu", (unsigned long long)d->delay_ms);
    snprintf(at, sizeof(at), "%d", t->env.attempts);
    cq_log(CQ_LOG_INFO, "job_retry", "id", task_job_id(t), "provider", t->ck.job.provider,
           "attempts", at, "error", d->error, "delay_ms", ds, NULL);
    task_release(t, d->delay_ms);
}

static void carry_out(cq_task *t, const cq_decision *d)
{
    switch (d->next) {
    case CQ_NEXT_FINISH:
        task_finish(t, d->status, d->error, d->message, d->http_status);
        break;
    case CQ_NEXT_RETRY:
        retry(t, d);
        break;
    case CQ_NEXT_CHECK:
        t->check = CQ_CHECK_AMBIGUOUS;
        submit(t, false);
        break;
    case CQ_NEXT_CALL:
        t->env.unknown = false;
        t->check = CQ_CHECK_NONE;
        submit(t, false);
        break;
    case CQ_NEXT_RENEW:
        t->renewed = true;
        cq_provider_token_refused(t->prov, t->tok_gen);
        if (t->check == CQ_CHECK_NONE && t->env.attempts > 0)
            t->env.attempts--; /* the renewal's repeat is the same attempt */
        submit(t, false);
        break;
    }
}

/* Shutdown aborted the request: back to the queue; the next taker looks
 * the status up first if it may have been sent. */
static void aborted(cq_task *t, const cq_response *resp)
{
    cq_provider_done(t->prov, &t->adm, resp, NULL);
    /* a lookup cut short stays pending, like every check that did not answer */
    t->env.unknown = t->env.unknown || resp->maybe_sent || t->check != CQ_CHECK_NONE;
    /* the provider may still act on a request that left: the claim stays
     * for the request's timeout */
    if (resp->maybe_sent)
        t->hold_ms = cq_provider_cfg(t->prov)->timeout_ms;
    if (t->check == CQ_CHECK_NONE && t->env.attempts > 0)
        t->env.attempts--;
    task_release(t, 0);
}

/* The breaker's probe failed: the breaker's choice, not the job's retry.
 * Kept in the history, not counted against max_attempts. */
static void probe_failed(cq_task *t, const cq_response *resp, const cq_verdict *v)
{
    if (t->check == CQ_CHECK_NONE) {
        record_attempt(t, resp, v);
        if (t->env.attempts > 0)
            t->env.attempts--;
        t->env.unknown = resp->maybe_sent;
    }
    cq_log(CQ_LOG_INFO, "job_probe_failed", "id", task_job_id(t), "provider", t->ck.job.provider,
           "error", v->error, NULL);
    task_defer(t, CQ_DEFER_BREAKER, cq_provider_reopens_in(t->prov));
}

static bool keep_ambiguous(cq_task *t, const cq_verdict *v)
{
    if (t->ambiguous == NULL && (t->ambiguous = malloc(sizeof(*t->ambiguous))) == NULL)
        return false;
    *t->ambiguous = *v;
    t->ambiguous->has_retry_after = false;
    return true;
}

void cq_task_answered(void *task, const cq_response *resp)
{
    cq_task *t = task;
    const cq_provider_conf *pc = cq_provider_cfg(t->prov);
    cq_policy_job j;
    cq_verdict v;
    cq_decision d;

    if (resp->transport == CQ_TR_ABORTED) {
        aborted(t, resp);
        return;
    }
    memset(&v, 0, sizeof(v));
    if (t->check == CQ_CHECK_NONE)
        t->ck.action->classify(pc, t->ck.job.params, resp, &v);
    else
        t->ck.action->classify_check(pc, t->ck.job.params, resp, &v);
    if (cq_provider_done(t->prov, &t->adm, resp, &v)) {
        probe_failed(t, resp, &v);
        return;
    }
    if (t->check == CQ_CHECK_NONE)
        record_attempt(t, resp, &v);
    policy_job(t, &j);
    cq_policy_answer(t->ts->c.policy, &j, resp, &v, &d);
    if (d.next == CQ_NEXT_CHECK && !keep_ambiguous(t, &v)) {
        task_finish(t, CQ_ST_FAILED, v.error, v.message, resp->status);
        return;
    }
    carry_out(t, &d);
}

/* --- claim ---------------------------------------------------------------------- */

/* The key is ours: look the status up first when the outcome of an
 * earlier attempt is unknown (and the adapter can), then call. */
static void claimed_go(cq_task *t, bool check_first)
{
    if (check_first && t->ck.action->build_check != NULL) {
        t->check = CQ_CHECK_UNKNOWN;
        cq_log(CQ_LOG_INFO, "job_status_check", "id", task_job_id(t), "reason",
               "outcome of an earlier attempt is unknown", NULL);
    } else {
        t->check = CQ_CHECK_NONE;
    }
    submit(t, true);
}

/* The claim is ours (taken, extended or taken over). */
static void claim_taken(cq_task *t, const cq_claim_result *r)
{
    bool first = !t->claimed;

    t->claimed = true;
    t->claim_until = t->claim_sent + cq_claim_lease(t->ts->c.cfg, cq_provider_cfg(t->prov));
    if (first)
        claimed_go(t, r->check_first);
    else
        submit(t, false); /* an extension: the request it was for goes now */
}

void cq_task_claimed(void *task, const cq_claim_result *r)
{
    cq_task *t = task;
    char msg[CQ_ERR_MSG_MAX];

    if (r->verdict == CQ_CLAIM_LOST) {
        task_set_state(t, CQ_TS_FREED); /* shutting down hard: the job stays inflight for reclaim */
        return;
    }
    if (r->verdict == CQ_CLAIM_NOT_OURS) {
        t->ts->stats.dropped++;
        cq_log(CQ_LOG_WARN, "job_dropped", "id", task_job_id(t), "handle", t->handle, "detail",
               "taken back by another worker while we could not reach Redis; no call", NULL);
        task_set_state(t, CQ_TS_FREED);
        return;
    }
    if (r->verdict != CQ_CLAIM_ERROR && t->prov != NULL)
        cq_provider_adopt(t->prov, r->open_ms, r->pause_ms); /* the deployment's state */
    if (r->verdict == CQ_CLAIM_UNSURE) {
        task_claim(t); /* maybe lost in a failover: the same claim again */
        return;
    }
    if (t->ts->stopping) {
        task_defer(t, CQ_DEFER_STOP, 0);
        return;
    }
    switch (r->verdict) {
    case CQ_CLAIM_CLAIMED:
    case CQ_CLAIM_HELD:
    case CQ_CLAIM_RECLAIMED:
    case CQ_CLAIM_TAKEOVER:
        claim_taken(t, r);
        break;
    case CQ_CLAIM_DUPLICATE:
        task_finish_dup(t, CQ_ST_DUPLICATE, "", "already carried out by an earlier job", 0, r);
        break;
    case CQ_CLAIM_CONFLICT:
        snprintf(msg, sizeof(msg), "idempotency key already used by job '%s' with different params",
                 r->other_id);
        task_finish(t, CQ_ST_CONFLICT, "idempotency_conflict", msg, 0);
        break;
    case CQ_CLAIM_BUSY:
        cq_log(CQ_LOG_INFO, "job_key_busy", "id", task_job_id(t), "holder", r->other_id, NULL);
        task_defer(t, CQ_DEFER_BUSY, 0);
        break;
    default:
        cq_log(CQ_LOG_ERR, "redis_script_error", "id", task_job_id(t), "error",
               r->error != NULL ? r->error : "unexpected claim reply", NULL);
        task_defer(t, CQ_DEFER_ERROR, 0);
        break;
    }
}

uint64_t cq_claim_lease(const cq_config *cfg, const cq_provider_conf *pc)
{
    return cfg->worker.lease_ms + pc->timeout_ms + CQ_CLAIM_MARGIN_MS;
}

void task_claim(cq_task *t)
{
    cq_tasks *ts = t->ts;
    const cq_provider_conf *pc = cq_provider_cfg(t->prov);
    cq_claim c;

    task_set_state(t, CQ_TS_CLAIMING);
    c.idem_key = t->ck.idem_key;
    c.handle = t->handle;
    c.owner = t->env.tok;
    c.job_id = task_job_id(t);
    c.hash = t->ck.hash;
    c.hash_v1 = t->ck.hash_v1;
    c.instance = pc->name;
    c.lease_ms = cq_claim_lease(ts->c.cfg, pc);
    c.unknown = t->env.unknown;
    t->claim_sent = ts->c.io.mono_ms(ts->c.io.data);
    if (ts->c.io.claim(ts->c.io.data, t, &c) != 0)
        task_stuck(t);
}
