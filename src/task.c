/*
 * task.c - one job from the moment it is taken to its one outcome: the
 * task state machine (see task.h and docs/design.md §4).
 *
 * Every end goes through the store's finish (outcome, dead letter and
 * idempotency record, written atomically and only while this worker still
 * owns the job) or release (back to delayed or the queue, without an
 * outcome).  Which one, and when, is policy.c's decision.
 */
#include "cancelq/task.h"

#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cancelq/envelope.h"
#include "cancelq/hash.h"
#include "cancelq/job_check.h"
#include "cancelq/log.h"

/* Added to a claim's lease: the time between the claim and Redis, clock
 * rates, and the write of the request's end. */
#define CQ_CLAIM_MARGIN_MS 5000

struct cq_task {
    cq_tasks *ts;
    cq_task *next, *prev; /* ts->head */
    cq_task_state state;
    cq_admit adm; /* admission by the provider instance */
    char handle[CQ_HANDLE_MAX];
    char *item; /* owned: the item as taken */
    size_t item_len;
    cq_envelope env;       /* attempts, history, owner token of earlier attempts */
    cq_checked ck;         /* the job, its provider, action, hash and record key */
    bool job_ok;           /* ck passed: the job is valid */
    cq_provider *prov;     /* NULL until the job named a known instance */
    cq_check check;        /* what the next (or current) request is */
    bool renewed;          /* the token was renewed for this request */
    unsigned tok_gen;      /* generation of the token the request carried */
    cq_verdict *ambiguous; /* owned: the answer a status lookup must confirm */
    bool claimed;          /* the claim was taken at least once */
    bool finishing;        /* ENDING with an outcome (not a give-back) */
    uint64_t claim_sent;   /* loop time the last claim went */
    uint64_t claim_until;  /* loop time the claim lapses (conservative) */
    uint64_t hold_ms;      /* a give-back keeps the claim this long (request may run on) */
    struct redo *redo;     /* owned: the end sent, to send again ([redis] wait_replicas) */
    bool redone;           /* the end was sent again */
};

/* An end as decided, kept while its write may have to be sent again. */
struct redo {
    cq_status status;
    long http;
    uint64_t delay_ms; /* a give-back's */
    char error[32];
    char message[CQ_ERR_MSG_MAX];
    char orig[3][64]; /* a duplicate's originals */
    bool dup;
};

struct cq_tasks {
    cq_tasks_conf c;
    cq_task *head;
    size_t count[CQ_TS_COUNT];
    size_t held;
    bool stopping;
    cq_task_stats stats;
};

/* --- the state ------------------------------------------------------------ */

#define TO(s) (1u << (s))

/* The legal moves: from each state, the states it may go to. */
static const unsigned legal[CQ_TS_COUNT] = {
    [CQ_TS_NEW] = TO(CQ_TS_CLAIMING) | TO(CQ_TS_ENDING),
    [CQ_TS_CLAIMING] = TO(CQ_TS_CLAIMING) | TO(CQ_TS_QUEUED) | TO(CQ_TS_ENDING) | TO(CQ_TS_FREED),
    [CQ_TS_QUEUED] = TO(CQ_TS_CLAIMING) | TO(CQ_TS_CALLING) | TO(CQ_TS_CHECKING) |
                     TO(CQ_TS_ENDING) | TO(CQ_TS_FREED),
    [CQ_TS_CALLING] = TO(CQ_TS_QUEUED) | TO(CQ_TS_ENDING),
    [CQ_TS_CHECKING] = TO(CQ_TS_QUEUED) | TO(CQ_TS_ENDING),
    [CQ_TS_ENDING] = TO(CQ_TS_ENDING) | TO(CQ_TS_FREED),
    [CQ_TS_FREED] = 0,
};

static const char *const state_names[CQ_TS_COUNT] = {
    "new", "claiming", "queued", "calling", "checking", "ending", "freed",
};

const char *cq_task_state_name(cq_task_state st)
{
    return (unsigned)st < CQ_TS_COUNT ? state_names[st] : "unknown";
}

static const char *job_id(const cq_task *t)
{
    return t->ck.job.id != NULL ? t->ck.job.id : "";
}

static void task_release_memory(cq_task *t)
{
    cq_tasks *ts = t->ts;

    if (t->prev != NULL)
        t->prev->next = t->next;
    else
        ts->head = t->next;
    if (t->next != NULL)
        t->next->prev = t->prev;
    ts->held--;
    cq_checked_clear(&t->ck);
    cq_envelope_clear(&t->env);
    free(t->redo);
    free(t->ambiguous);
    free(t->item);
    free(t);
}

/* The one place a task's state changes.  Moving to CQ_TS_FREED frees it. */
static void set_state(cq_task *t, cq_task_state to)
{
    cq_tasks *ts = t->ts;
    cq_task_state from = t->state;

    assert(legal[from] & TO(to));
    ts->count[from]--;
    ts->count[to]++;
    if (cq_log_enabled(CQ_LOG_DEBUG))
        cq_log(CQ_LOG_DEBUG, "task_state", "id", job_id(t), "handle", t->handle, "from",
               state_names[from], "to", state_names[to], NULL);
    t->state = to;
    if (to == CQ_TS_FREED) {
        ts->count[CQ_TS_FREED]--; /* nothing stays there */
        task_release_memory(t);
    }
    if (ts->c.io.moved != NULL)
        ts->c.io.moved(ts->c.io.data, from, to);
}

/* Out of memory: leave the job inflight; our restart or a peer takes it
 * back. */
static void job_stuck(cq_task *t)
{
    t->ts->stats.stuck++;
    cq_log(CQ_LOG_ERR, "job_stuck", "id", job_id(t), "handle", t->handle, "error", "out of memory",
           NULL);
    set_state(t, CQ_TS_FREED);
}

/* --- ends ------------------------------------------------------------------ */

static cq_idem_op idem_op(const cq_task *t, cq_status st)
{
    if (!t->job_ok || t->ck.idem_key == NULL)
        return CQ_IDEM_NONE;
    if (cq_status_marks_done(st))
        return CQ_IDEM_DONE;
    if (st == CQ_ST_DUPLICATE || st == CQ_ST_CONFLICT || st == CQ_ST_INVALID)
        return CQ_IDEM_NONE; /* the record is another job's */
    return CQ_IDEM_RELEASE;
}

static void count_end(cq_task *t, cq_status st)
{
    t->ts->stats.finished++;
    if (t->prov != NULL && t->ck.action != NULL)
        cq_provider_count_end(t->prov, t->ck.action, st);
    else
        t->ts->stats.invalid_unknown_provider++;
}

static void log_end(const cq_task *t, const cq_outcome *o)
{
    char attempts[16], http[16], duration[24];

    snprintf(attempts, sizeof(attempts), "%d", o->attempts);
    snprintf(http, sizeof(http), "%ld", o->http_status);
    snprintf(duration, sizeof(duration), "%lld", (long long)o->duration_ms);
    cq_log(cq_status_ok(o->status) ? CQ_LOG_INFO : CQ_LOG_WARN, "job_done", "id", job_id(t),
           "provider", t->ck.job.provider, "action", t->ck.job.action, "status",
           cq_status_name(o->status), "attempts", attempts, "http_status", http, "error", o->error,
           "message", o->message, "duration_ms", duration, NULL);
}

/* With [redis] wait_replicas an end may have to be sent again (UNSURE):
 * keep what it was.  Without memory for it, a redo is not possible: the
 * job is then left to reconcile, marked unknown. */
static void keep_redo(cq_task *t, cq_status st, const char *error, const char *message, long http,
                      const cq_claim_result *dup, uint64_t delay_ms)
{
    struct redo *r = t->redo;
    int i;

    if (t->ts->c.cfg->redis.wait_replicas <= 0 || t->redone)
        return; /* off, or sending the kept end again (it stays as it is) */
    if (r == NULL && (r = t->redo = malloc(sizeof(*r))) == NULL)
        return;
    memset(r, 0, sizeof(*r));
    r->status = st;
    r->http = http;
    r->delay_ms = delay_ms;
    snprintf(r->error, sizeof(r->error), "%s", error != NULL ? error : "");
    snprintf(r->message, sizeof(r->message), "%s", message != NULL ? message : "");
    r->dup = dup != NULL;
    for (i = 0; dup != NULL && i < 3; i++) {
        const char *o = i == 0   ? dup->other_id
                        : i == 1 ? dup->other_status
                                 : dup->other_finished_at;

        snprintf(r->orig[i], sizeof(r->orig[i]), "%s", o != NULL ? o : "");
    }
}

/* Publish the one outcome of this job; dup: the claim's answer that
 * found the key carried out (a duplicate echoes the original). */
static void finish_dup(cq_task *t, cq_status st, const char *error, const char *message, long http,
                       const cq_claim_result *dup)
{
    cq_tasks *ts = t->ts;
    char redacted[CQ_ERR_MSG_MAX], digest[2 * CQ_SHA256_LEN + 1];
    char *dead = NULL, *meta = NULL;
    int64_t now = ts->c.io.now_ms(ts->c.io.data);
    cq_outcome o;
    int rc = -ENOMEM;

    set_state(t, CQ_TS_ENDING);
    t->finishing = true;
    keep_redo(t, st, error, message, http, dup, 0);
    cq_log_redact(message != NULL ? message : "", redacted, sizeof(redacted));
    memset(&o, 0, sizeof(o));
    o.handle = t->handle;
    o.idem_key = t->job_ok ? t->ck.idem_key : NULL;
    o.idem_op = idem_op(t, st);
    o.owner = t->env.tok;
    o.hash = t->ck.hash;
    o.id = job_id(t);
    o.idempotency_key = t->ck.job.idem_key;
    o.provider = t->ck.job.provider;
    o.action = t->ck.job.action;
    o.status = st;
    o.attempts = t->env.attempts;
    o.http_status = http;
    o.error = error;
    o.message = redacted;
    o.duration_ms = now - (t->env.first_ms > 0 ? t->env.first_ms : now);
    o.finished_at_ms = now;
    /* a job that was not JSON: billing matches it by the digest of its bytes */
    if (t->ck.job.root == NULL && cq_sha256_hex(t->env.job, t->env.job_len, digest, 64) == 0)
        o.raw_sha256 = digest;
    if (dup != NULL) {
        o.original[0] = dup->other_id;
        o.original[1] = dup->other_status;
        o.original[2] = dup->other_finished_at;
    }
    if (!cq_status_ok(st))
        dead = cq_dead_entry(t->env.job, t->env.job_len, cq_status_name(st), error, redacted,
                             t->env.attempts, t->env.history, t->env.nhistory, now, ts->c.worker);
    if (t->ck.job.meta != NULL)
        meta = cJSON_PrintUnformatted(t->ck.job.meta);
    o.dead = dead;
    o.meta = meta;
    log_end(t, &o);
    count_end(t, st);
    if ((dead != NULL || cq_status_ok(st)) && (t->ck.job.meta == NULL || meta != NULL))
        rc = ts->c.io.finish(ts->c.io.data, t, &o);
    free(dead);
    cJSON_free(meta);
    if (rc != 0)
        job_stuck(t);
}

static void finish(cq_task *t, cq_status st, const char *error, const char *message, long http)
{
    finish_dup(t, st, error, message, http, NULL);
}

/* Give the job back without an outcome: to delayed (delay_ms > 0) or to
 * the queue, with its envelope brought up to date (attempts, history,
 * whether the last call's outcome is unknown). */
static void release(cq_task *t, uint64_t delay_ms)
{
    cq_tasks *ts = t->ts;
    cq_release r;
    char *env = cq_envelope_build(&t->env);
    int rc;

    set_state(t, CQ_TS_ENDING);
    t->finishing = false;
    keep_redo(t, CQ_ST_COUNT, NULL, NULL, 0, NULL, delay_ms);
    r.handle = t->handle;
    r.item = env; /* NULL (no memory) keeps the older envelope: loses only history */
    r.delay_ms = delay_ms;
    r.idem_key = t->job_ok ? t->ck.idem_key : NULL;
    r.owner = t->env.tok;
    r.unknown = t->env.unknown;
    r.hold_ms = t->hold_ms;
    rc = ts->c.io.release(ts->c.io.data, t, &r);
    free(env);
    if (rc != 0)
        job_stuck(t);
}

/* Put the job back without spending an attempt; a pending status lookup
 * stays pending. */
static void defer(cq_task *t, cq_defer why, uint64_t hint_ms)
{
    cq_tasks *ts = t->ts;

    if (t->check != CQ_CHECK_NONE)
        t->env.unknown = true;
    ts->stats.deferred[why]++;
    if (why == CQ_DEFER_FAIR && cq_log_enabled(CQ_LOG_DEBUG))
        cq_log(CQ_LOG_DEBUG, "job_deferred", "id", job_id(t), "provider", t->ck.job.provider,
               "reason", "too many jobs of this provider wait here already", NULL);
    release(t, cq_policy_defer(ts->c.policy, why, hint_ms));
}

/* The end's write may have been lost in a failover: send it again (the
 * scripts are ownership-checked, so a write that did go through makes the
 * second one a no-op). */
static void redo_end(cq_task *t)
{
    struct redo *r = t->redo;
    cq_claim_result dup;

    t->redone = true;
    if (r == NULL) { /* no memory kept it: reconcile returns the job, marked unknown */
        job_stuck(t);
        return;
    }
    if (!t->finishing) {
        release(t, r->delay_ms);
        return;
    }
    memset(&dup, 0, sizeof(dup));
    dup.other_id = r->orig[0], dup.other_status = r->orig[1], dup.other_finished_at = r->orig[2];
    finish_dup(t, r->status, r->error, r->message, r->http, r->dup ? &dup : NULL);
}

void cq_task_written(void *task, cq_write w, const char *error)
{
    cq_task *t = task;

    if (w == CQ_WRITE_UNSURE) {
        redo_end(t);
        return;
    }
    if (w == CQ_WRITE_NOT_OURS && t->redone) {
        /* the first write went through after all: nothing to do */
    } else if (w == CQ_WRITE_NOT_OURS) {
        t->ts->stats.lost_ownership++;
        cq_log(CQ_LOG_WARN, "job_not_ours", "id", job_id(t), "handle", t->handle, "detail",
               "taken back by another worker while we held it; nothing written", NULL);
    } else if (w == CQ_WRITE_OK && error != NULL) {
        cq_log(strcmp(error, "kept") == 0 ? CQ_LOG_INFO : CQ_LOG_ERR, "idem_record_kept", "id",
               job_id(t), "detail", error, NULL);
    } else if (w == CQ_WRITE_FAILED && t->finishing) {
        /* nothing was written: put the job back, so it ends exactly once
         * later; its call may have been made, the next taker looks first */
        t->ts->stats.finish_failed++;
        cq_log(CQ_LOG_ERR, "finish_failed", "id", job_id(t), "handle", t->handle, "error", error,
               "detail", "the outcome was not written; the job goes back to delayed", NULL);
        t->env.unknown = true;
        release(t, cq_policy_defer(t->ts->c.policy, CQ_DEFER_ERROR, 0));
        return;
    } else if (w == CQ_WRITE_FAILED) {
        cq_log(CQ_LOG_ERR, "redis_script_error", "id", job_id(t), "error", error, "detail",
               "the job stays inflight until it is reconciled", NULL);
    }
    set_state(t, CQ_TS_FREED);
}

/* --- requests ---------------------------------------------------------------- */

static void admit_go(cq_admit *a, const char *token, unsigned gen);
static void admit_defer(cq_admit *a, cq_defer why, uint64_t hint_ms);

/* Wait for the provider instance.  fresh: the job has not waited there
 * yet (the fairness bound applies). */
static void submit(cq_task *t, bool fresh)
{
    set_state(t, CQ_TS_QUEUED);
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
    defer(of_admit(a), why, hint_ms);
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

static void claim(cq_task *t);

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
        claim(t);
        return;
    }
    memset(&req, 0, sizeof(req));
    cq_err_clear(&err);
    rc = t->check == CQ_CHECK_NONE ? act->build(pc, t->ck.job.params, &req, &err)
                                   : act->build_check(pc, t->ck.job.params, &req, &err);
    if (rc != 0) {
        cq_request_clear(&req);
        cq_provider_abandon(t->prov, a);
        finish(t, CQ_ST_FAILED, err.code[0] ? err.code : "build_failed", err.msg, 0);
        return;
    }
    cq_provider_http_opts(t->prov, token, &o);
    t->tok_gen = gen;
    if (t->check == CQ_CHECK_NONE) {
        if (t->env.first_ms == 0)
            t->env.first_ms = ts->c.io.now_ms(ts->c.io.data);
        t->env.attempts++;
        set_state(t, CQ_TS_CALLING);
    } else {
        set_state(t, CQ_TS_CHECKING);
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
    cq_log(CQ_LOG_INFO, "job_retry", "id", job_id(t), "provider", t->ck.job.provider, "attempts",
           at, "error", d->error, "delay_ms", ds, NULL);
    release(t, d->delay_ms);
}

static void carry_out(cq_task *t, const cq_decision *d)
{
    switch (d->next) {
    case CQ_NEXT_FINISH:
        finish(t, d->status, d->error, d->message, d->http_status);
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
    release(t, 0);
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
    cq_log(CQ_LOG_INFO, "job_probe_failed", "id", job_id(t), "provider", t->ck.job.provider,
           "error", v->error, NULL);
    defer(t, CQ_DEFER_BREAKER, cq_provider_reopens_in(t->prov));
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
        finish(t, CQ_ST_FAILED, v.error, v.message, resp->status);
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
        cq_log(CQ_LOG_INFO, "job_status_check", "id", job_id(t), "reason",
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
        set_state(t, CQ_TS_FREED); /* shutting down hard: the job stays inflight for reclaim */
        return;
    }
    if (r->verdict == CQ_CLAIM_NOT_OURS) {
        t->ts->stats.dropped++;
        cq_log(CQ_LOG_WARN, "job_dropped", "id", job_id(t), "handle", t->handle, "detail",
               "taken back by another worker while we could not reach Redis; no call", NULL);
        set_state(t, CQ_TS_FREED);
        return;
    }
    if (r->verdict != CQ_CLAIM_ERROR && t->prov != NULL)
        cq_provider_adopt(t->prov, r->open_ms, r->pause_ms); /* the deployment's state */
    if (r->verdict == CQ_CLAIM_UNSURE) {
        claim(t); /* maybe lost in a failover: the same claim again */
        return;
    }
    if (t->ts->stopping) {
        defer(t, CQ_DEFER_STOP, 0);
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
        finish_dup(t, CQ_ST_DUPLICATE, "", "already carried out by an earlier job", 0, r);
        break;
    case CQ_CLAIM_CONFLICT:
        snprintf(msg, sizeof(msg), "idempotency key already used by job '%s' with different params",
                 r->other_id);
        finish(t, CQ_ST_CONFLICT, "idempotency_conflict", msg, 0);
        break;
    case CQ_CLAIM_BUSY:
        cq_log(CQ_LOG_INFO, "job_key_busy", "id", job_id(t), "holder", r->other_id, NULL);
        defer(t, CQ_DEFER_BUSY, 0);
        break;
    default:
        cq_log(CQ_LOG_ERR, "redis_script_error", "id", job_id(t), "error",
               r->error != NULL ? r->error : "unexpected claim reply", NULL);
        defer(t, CQ_DEFER_ERROR, 0);
        break;
    }
}

uint64_t cq_claim_lease(const cq_config *cfg, const cq_provider_conf *pc)
{
    return cfg->worker.lease_ms + pc->timeout_ms + CQ_CLAIM_MARGIN_MS;
}

static void claim(cq_task *t)
{
    cq_tasks *ts = t->ts;
    const cq_provider_conf *pc = cq_provider_cfg(t->prov);
    cq_claim c;

    set_state(t, CQ_TS_CLAIMING);
    c.idem_key = t->ck.idem_key;
    c.handle = t->handle;
    c.owner = t->env.tok;
    c.job_id = job_id(t);
    c.hash = t->ck.hash;
    c.hash_v1 = t->ck.hash_v1;
    c.instance = pc->name;
    c.lease_ms = cq_claim_lease(ts->c.cfg, pc);
    c.unknown = t->env.unknown;
    t->claim_sent = ts->c.io.mono_ms(ts->c.io.data);
    if (ts->c.io.claim(ts->c.io.data, t, &c) != 0)
        job_stuck(t);
}

/* --- the set ---------------------------------------------------------------------- */

/* A task for the item, not yet counted: NULL when memory is short (the job
 * stays inflight; our restart or a peer takes it back). */
static cq_task *task_new(const char *handle, const char *item, size_t len, bool trusted)
{
    int rc;

    cq_task *t = calloc(1, sizeof(*t));

    if (t == NULL || (t->item = malloc(len + 1)) == NULL)
        goto fail;
    memcpy(t->item, item, len);
    t->item[len] = '\0';
    t->item_len = len;
    snprintf(t->handle, sizeof(t->handle), "%s", handle);
    if (trusted)
        rc = cq_envelope_parse(t->item, t->item_len, &t->env);
    else
        cq_envelope_bare(t->item, t->item_len, &t->env), rc = 0;
    /* the job text is a producer's, in a trusted envelope too: an envelope
     * in it is never believed, its inner job runs as a plain job */
    if (rc == 0 && (rc = cq_envelope_unwrap_job(&t->env)) == 1)
        cq_log(CQ_LOG_WARN, "envelope_untrusted", "handle", handle, "detail",
               "a producer pushed an envelope: its job runs as a new job that looks its "
               "status up first; nothing else of it is believed",
               NULL);
    if (rc >= 0)
        return t;
    cq_envelope_clear(&t->env);
fail:
    if (t != NULL)
        free(t->item);
    free(t);
    cq_log(CQ_LOG_ERR, "job_stuck", "handle", handle, "error", "out of memory", NULL);
    return NULL;
}

void cq_task_start(cq_tasks *ts, const char *handle, const char *item, size_t len, bool trusted)
{
    cq_task *t = task_new(handle, item, len, trusted);
    cq_err err;

    ts->stats.fetched++;
    if (t == NULL) {
        ts->stats.stuck++;
        return;
    }
    t->ts = ts;
    t->next = ts->head;
    if (ts->head != NULL)
        ts->head->prev = t;
    ts->head = t;
    ts->held++;
    ts->count[CQ_TS_NEW]++;
    /* an owner token of 128 random bits, kept in the job's envelope from
     * now on (a job taken back keeps it) */
    if (t->env.tok[0] == '\0' && cq_random_hex(t->env.tok, 32) != 0)
        snprintf(t->env.tok, sizeof(t->env.tok), "%s/%s", ts->c.worker, handle);
    cq_err_clear(&err);
    if (cq_job_check(ts->c.cfg, ts->c.keys, t->env.job, t->env.job_len, &t->ck, &err) != 0) {
        /* attributed to its provider when the job named a known one */
        t->prov = t->ck.action != NULL ? cq_providers_find(ts->c.providers, t->ck.pc->name) : NULL;
        finish(t, CQ_ST_INVALID, err.code, err.msg, 0);
        return;
    }
    t->job_ok = true;
    if (!trusted && t->ck.job.enqueued_ms > 0) /* first taken: how long it queued */
        cq_histogram_observe(&ts->stats.queue_wait,
                             (double)(ts->c.io.now_ms(ts->c.io.data) - t->ck.job.enqueued_ms) /
                                 1000.0);
    t->prov = cq_providers_find(ts->c.providers, t->ck.pc->name);
    if (t->prov == NULL) { /* a config without this instance's runtime: cannot happen */
        finish(t, CQ_ST_INVALID, "unknown_provider", "provider: not running here", 0);
        return;
    }
    if (cq_deadline_passed(t->ck.job.deadline_ms, ts->c.io.now_ms(ts->c.io.data))) {
        finish(t, CQ_ST_EXPIRED, "deadline", "the job's deadline passed before it ended", 0);
        return;
    }
    claim(t);
}

cq_tasks *cq_tasks_new(const cq_tasks_conf *conf)
{
    cq_tasks *ts = calloc(1, sizeof(*ts));

    if (ts != NULL)
        ts->c = *conf;
    return ts;
}

void cq_tasks_free(cq_tasks *ts)
{
    if (ts == NULL)
        return;
    ts->c.io.moved = NULL; /* the owner is going away */
    while (ts->head != NULL) {
        cq_task *t = ts->head;

        if (t->state == CQ_TS_QUEUED)
            cq_provider_withdraw(t->prov, &t->adm);
        ts->count[t->state]--;
        task_release_memory(t);
    }
    free(ts);
}

void cq_tasks_stop(cq_tasks *ts)
{
    ts->stopping = true;
    cq_providers_stop(ts->c.providers);
}

size_t cq_tasks_count(const cq_tasks *ts, cq_task_state st)
{
    return (unsigned)st < CQ_TS_COUNT ? ts->count[st] : 0;
}

size_t cq_tasks_held(const cq_tasks *ts)
{
    return ts->held;
}

bool cq_tasks_holds(const cq_tasks *ts, const char *handle)
{
    const cq_task *t;

    for (t = ts->head; t != NULL; t = t->next) {
        if (strcmp(t->handle, handle) == 0)
            return true;
    }
    return false;
}

const cq_task_stats *cq_tasks_stats(const cq_tasks *ts)
{
    return &ts->stats;
}

const char **cq_tasks_waiting(const cq_tasks *ts, size_t *n)
{
    const char **v;
    const cq_task *t;
    size_t k = 0, cap = ts->count[CQ_TS_QUEUED] + ts->count[CQ_TS_CLAIMING];

    *n = 0;
    if (cap == 0 || (v = malloc(cap * sizeof(*v))) == NULL)
        return NULL;
    for (t = ts->head; t != NULL && k < cap; t = t->next) {
        if (t->state == CQ_TS_QUEUED || t->state == CQ_TS_CLAIMING)
            v[k++] = t->handle;
    }
    *n = k;
    return v;
}

static cq_task *find(const cq_tasks *ts, const char *handle)
{
    cq_task *t;

    for (t = ts->head; t != NULL; t = t->next) {
        if (strcmp(t->handle, handle) == 0)
            return t;
    }
    return NULL;
}

void cq_tasks_drop(cq_tasks *ts, const char *handle)
{
    cq_task *t = find(ts, handle);

    /* a claim on its way answers not_ours: the script checks the handle */
    if (t == NULL || t->state != CQ_TS_QUEUED || !cq_provider_withdraw(t->prov, &t->adm))
        return;
    ts->stats.dropped++;
    cq_log(CQ_LOG_WARN, "job_dropped", "id", job_id(t), "handle", t->handle, "detail",
           "taken back by another worker while we could not reach Redis; no call", NULL);
    set_state(t, CQ_TS_FREED);
}

void cq_tasks_sweep(cq_tasks *ts)
{
    uint64_t now = ts->c.io.mono_ms(ts->c.io.data), beat = ts->c.cfg->worker.heartbeat_ms;
    cq_task *t, *next;

    for (t = ts->head; t != NULL; t = next) {
        next = t->next; /* a deferred task stays in the list (ENDING) */
        if (t->state != CQ_TS_QUEUED || !t->claimed)
            continue;
        /* the next sweep would come too late for a request to end in time */
        if (now + beat + cq_provider_cfg(t->prov)->timeout_ms + CQ_CLAIM_MARGIN_MS <=
            t->claim_until)
            continue;
        if (!cq_provider_withdraw(t->prov, &t->adm))
            continue;
        defer(t, CQ_DEFER_LAPSE, cq_provider_wait_hint(t->prov));
    }
}
