/*
 * task.c - one job from the moment it is taken to its one outcome: the
 * task state machine (see task.h and docs/design.md §4).  This file: the
 * states and their legal moves, and the set of tasks; task_end.c: how a
 * task ends; task_call.c: its claim, its requests and their answers.
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

#include "cancelq/envelope.h"
#include "cancelq/hash.h"
#include "cancelq/job_check.h"
#include "cancelq/log.h"

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

bool cq_task_move_legal(cq_task_state from, cq_task_state to)
{
    return (unsigned)from < CQ_TS_COUNT && (unsigned)to < CQ_TS_COUNT && (legal[from] & TO(to));
}

const char *cq_task_state_name(cq_task_state st)
{
    return (unsigned)st < CQ_TS_COUNT ? state_names[st] : "unknown";
}

const char *task_job_id(const cq_task *t)
{
    return t->ck.job.id != NULL ? t->ck.job.id : "";
}

void task_free(cq_task *t)
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
void task_set_state(cq_task *t, cq_task_state to)
{
    cq_tasks *ts = t->ts;
    cq_task_state from = t->state;

    assert(legal[from] & TO(to));
    ts->count[from]--;
    ts->count[to]++;
    if (cq_log_enabled(CQ_LOG_DEBUG))
        cq_log(CQ_LOG_DEBUG, "task_state", "id", task_job_id(t), "handle", t->handle, "from",
               state_names[from], "to", state_names[to], NULL);
    t->state = to;
    if (to == CQ_TS_FREED) {
        ts->count[CQ_TS_FREED]--; /* nothing stays there */
        task_free(t);
    }
    if (ts->c.io.moved != NULL)
        ts->c.io.moved(ts->c.io.data, from, to);
}

/* Out of memory: leave the job inflight; our restart or a peer takes it
 * back. */
void task_stuck(cq_task *t)
{
    t->ts->stats.stuck++;
    cq_log(CQ_LOG_ERR, "job_stuck", "id", task_job_id(t), "handle", t->handle, "error",
           "out of memory", NULL);
    task_set_state(t, CQ_TS_FREED);
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
        task_finish(t, CQ_ST_INVALID, err.code, err.msg, 0);
        return;
    }
    t->job_ok = true;
    if (!trusted && t->ck.job.enqueued_ms > 0) /* first taken: how long it queued */
        cq_histogram_observe(&ts->stats.queue_wait,
                             (double)(ts->c.io.now_ms(ts->c.io.data) - t->ck.job.enqueued_ms) /
                                 1000.0);
    t->prov = cq_providers_find(ts->c.providers, t->ck.pc->name);
    if (t->prov == NULL) { /* a config without this instance's runtime: cannot happen */
        task_finish(t, CQ_ST_INVALID, "unknown_provider", "provider: not running here", 0);
        return;
    }
    if (cq_deadline_passed(t->ck.job.deadline_ms, ts->c.io.now_ms(ts->c.io.data))) {
        task_finish(t, CQ_ST_EXPIRED, "deadline", "the job's deadline passed before it ended", 0);
        return;
    }
    task_claim(t);
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
    cq_task *t, *next;

    if (ts == NULL)
        return;
    ts->c.io.moved = NULL; /* the owner is going away */
    for (t = ts->head; t != NULL; t = next) {
        next = t->next; /* t is unlinked and freed below */
        if (t->state == CQ_TS_QUEUED)
            cq_provider_withdraw(t->prov, &t->adm);
        ts->count[t->state]--;
        task_free(t);
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
    cq_log(CQ_LOG_WARN, "job_dropped", "id", task_job_id(t), "handle", t->handle, "detail",
           "taken back by another worker while we could not reach Redis; no call", NULL);
    task_set_state(t, CQ_TS_FREED);
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
        task_defer(t, CQ_DEFER_LAPSE, cq_provider_wait_hint(t->prov));
    }
}
