/*
 * task_end.c - how a task ends: its one outcome (finish) or its job given
 * back without one (release, defer), and what the store says of the write
 * (docs/design.md §4, §7).
 *
 * Every end goes through the store's finish (outcome, dead letter and
 * idempotency record, written atomically and only while this worker still
 * owns the job) or release (back to delayed or the queue, without an
 * outcome).  Which one, and when, is policy.c's decision.
 */
#include "task_int.h"

#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cancelq/hash.h"
#include "cancelq/log.h"

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
    cq_log(cq_status_ok(o->status) ? CQ_LOG_INFO : CQ_LOG_WARN, "job_done", "id", task_job_id(t),
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
void task_finish_dup(cq_task *t, cq_status st, const char *error, const char *message, long http,
                     const cq_claim_result *dup)
{
    cq_tasks *ts = t->ts;
    char redacted[CQ_ERR_MSG_MAX], digest[2 * CQ_SHA256_LEN + 1];
    char *dead = NULL, *meta = NULL;
    int64_t now = ts->c.io.now_ms(ts->c.io.data);
    cq_outcome o;
    int rc = -ENOMEM;

    task_set_state(t, CQ_TS_ENDING);
    t->finishing = true;
    keep_redo(t, st, error, message, http, dup, 0);
    cq_log_redact(message != NULL ? message : "", redacted, sizeof(redacted));
    memset(&o, 0, sizeof(o));
    o.handle = t->handle;
    o.idem_key = t->job_ok ? t->ck.idem_key : NULL;
    o.idem_op = idem_op(t, st);
    o.owner = t->env.tok;
    o.hash = t->ck.hash;
    o.id = task_job_id(t);
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
        task_stuck(t);
}

void task_finish(cq_task *t, cq_status st, const char *error, const char *message, long http)
{
    task_finish_dup(t, st, error, message, http, NULL);
}

/* Give the job back without an outcome: to delayed (delay_ms > 0) or to
 * the queue, with its envelope brought up to date (attempts, history,
 * whether the last call's outcome is unknown). */
void task_release(cq_task *t, uint64_t delay_ms)
{
    cq_tasks *ts = t->ts;
    cq_release r;
    char *env = cq_envelope_build(&t->env);
    int rc;

    task_set_state(t, CQ_TS_ENDING);
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
        task_stuck(t);
}

/* Put the job back without spending an attempt; a pending status lookup
 * stays pending. */
void task_defer(cq_task *t, cq_defer why, uint64_t hint_ms)
{
    cq_tasks *ts = t->ts;

    if (t->check != CQ_CHECK_NONE)
        t->env.unknown = true;
    ts->stats.deferred[why]++;
    if (why == CQ_DEFER_FAIR && cq_log_enabled(CQ_LOG_DEBUG))
        cq_log(CQ_LOG_DEBUG, "job_deferred", "id", task_job_id(t), "provider", t->ck.job.provider,
               "reason", "too many jobs of this provider wait here already", NULL);
    task_release(t, cq_policy_defer(ts->c.policy, why, hint_ms));
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
        task_stuck(t);
        return;
    }
    if (!t->finishing) {
        task_release(t, r->delay_ms);
        return;
    }
    memset(&dup, 0, sizeof(dup));
    dup.other_id = r->orig[0], dup.other_status = r->orig[1], dup.other_finished_at = r->orig[2];
    task_finish_dup(t, r->status, r->error, r->message, r->http, r->dup ? &dup : NULL);
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
        cq_log(CQ_LOG_WARN, "job_not_ours", "id", task_job_id(t), "handle", t->handle, "detail",
               "taken back by another worker while we held it; nothing written", NULL);
    } else if (w == CQ_WRITE_OK && error != NULL) {
        cq_log(strcmp(error, "kept") == 0 ? CQ_LOG_INFO : CQ_LOG_ERR, "idem_record_kept", "id",
               task_job_id(t), "detail", error, NULL);
    } else if (w == CQ_WRITE_FAILED && t->finishing) {
        /* nothing was written: put the job back, so it ends exactly once
         * later; its call may have been made, the next taker looks first */
        t->ts->stats.finish_failed++;
        cq_log(CQ_LOG_ERR, "finish_failed", "id", task_job_id(t), "handle", t->handle, "error",
               error, "detail", "the outcome was not written; the job goes back to delayed", NULL);
        t->env.unknown = true;
        task_release(t, cq_policy_defer(t->ts->c.policy, CQ_DEFER_ERROR, 0));
        return;
    } else if (w == CQ_WRITE_FAILED) {
        cq_log(CQ_LOG_ERR, "redis_script_error", "id", task_job_id(t), "error", error, "detail",
               "the job stays inflight until it is reconciled", NULL);
    }
    task_set_state(t, CQ_TS_FREED);
}
