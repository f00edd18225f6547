/*
 * task.c - one job from the moment it is taken to its one outcome.
 *
 *   taken -> parsed/validated --invalid--------------------------> finish
 *         -> deadline passed ---------------------------------------> finish (expired)
 *         -> claim idempotency key --duplicate/conflict------------> finish
 *                                  --busy--> back to delayed (no attempt spent)
 *         -> [status check first when the outcome of an earlier
 *             attempt is unknown] --already done------------------> finish
 *         -> call --succeeded/already_done-------------------------> finish (key done)
 *                 --401--> renew token, call once more
 *         (every request first waits its turn in the provider's queue:
 *          a request slot, a rate-limit token, an OAuth token, and the
 *          breaker's consent; an open breaker puts the job back to
 *          delayed without spending an attempt)
 *                 --ambiguous--> status check --done--> finish (already_done)
 *                                              --not done--> finish (failed)
 *                 --transient--> delayed (attempts, Retry-After, deadline)
 *                 --permanent--> finish (failed)
 *
 * Every end goes through finish.lua, which writes outcome, dead letter and
 * idempotency record atomically and only if this worker still owns the job.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cancelq/backoff.h"
#include "cancelq/log.h"
#include "worker_int.h"

enum mode { M_CALL, M_CHECK_UNKNOWN, M_CHECK_AMBIGUOUS };

typedef struct task {
    cq_worker *w;
    struct task *next, *prev; /* w->tasks */
    struct task *wait_next;   /* provider wait queue */
    char handle[CQ_HANDLE_MAX];
    char *item; /* owned: the item as taken */
    size_t item_len;
    cq_envelope env;
    cq_job job;
    bool job_ok;
    cq_provider *prov;
    const cq_action *action;
    char hash[17];
    char *idem_key; /* owned: "{P}:idem:<key>", NULL until validated */
    enum mode mode;
    bool auth_renewed;
    bool in_http;
    bool probe;            /* the breaker's half-open probe */
    unsigned tok_gen;      /* generation of the token the request carried */
    cq_cred_waiter cw;     /* waiting for an OAuth token */
    bool done;             /* finish or release sent: no more steps */
    uint64_t req_start;    /* loop time the current request started */
    cq_verdict *ambiguous; /* owned: the answer a status check must confirm */
    /* a duplicate's original_id, _status, _finished_at: borrowed from the
     * claim reply while task_finish runs inside its callback */
    const char *orig[3];
} task;

static void task_request(task *t, const char *token);

/* --- bookkeeping --------------------------------------------------------- */

static void task_free(task *t)
{
    cq_worker *w = t->w;

    if (t->prev != NULL)
        t->prev->next = t->next;
    else
        w->tasks = t->next;
    if (t->next != NULL)
        t->next->prev = t->prev;
    w->ntasks--;
    if (t->done)
        w->nending--;
    cq_job_clear(&t->job);
    cq_envelope_clear(&t->env);
    free(t->idem_key);
    free(t->ambiguous);
    free(t->item);
    free(t);
    cq_worker_slot_freed(w);
}

bool cq_task_known(const cq_worker *w, const char *handle, size_t len)
{
    const task *t;

    for (t = w->tasks; t != NULL; t = t->next) {
        if (strlen(t->handle) == len && memcmp(t->handle, handle, len) == 0)
            return true;
    }
    return false;
}

void cq_task_free_all(cq_worker *w)
{
    task *t, *next;

    for (t = w->tasks; t != NULL; t = next) {
        next = t->next;
        task_free(t);
    }
}

static const char *job_id(const task *t)
{
    return t->job.id != NULL ? t->job.id : "";
}

/* --- ends ---------------------------------------------------------------- */

static void written_cb(void *data, redisReply *reply)
{
    task *t = data;

    if (reply != NULL && reply->type == REDIS_REPLY_INTEGER && reply->integer == 0) {
        t->w->stats.lost_ownership++;
        cq_log(CQ_LOG_WARN, "job_not_ours", "id", job_id(t), "handle", t->handle, "detail",
               "taken back by another worker while we held it; nothing written", NULL);
    } else if (reply != NULL && reply->type == REDIS_REPLY_ERROR) {
        cq_log(CQ_LOG_ERR, "redis_script_error", "id", job_id(t), "error", reply->str, NULL);
    }
    task_free(t);
}

static bool status_is_dead(const char *s)
{
    return strcmp(s, "failed") == 0 || strcmp(s, "exhausted") == 0 || strcmp(s, "expired") == 0 ||
           strcmp(s, "invalid") == 0 || strcmp(s, "conflict") == 0;
}

static const char *idem_op(const task *t, const char *status)
{
    if (!t->job_ok || t->idem_key == NULL)
        return "none";
    if (strcmp(status, "succeeded") == 0 || strcmp(status, "already_done") == 0)
        return "done";
    if (strcmp(status, "duplicate") == 0 || strcmp(status, "conflict") == 0 ||
        strcmp(status, "invalid") == 0)
        return "none"; /* the record is another job's */
    return "release";
}

#define NARGS 8

typedef struct args {
    const char *v[NARGS];
    size_t l[NARGS];
    int n;
} args;

static void arg(args *a, const char *s)
{
    if (a->n < NARGS) {
        a->v[a->n] = s != NULL ? s : "";
        a->l[a->n] = strlen(a->v[a->n]);
        a->n++;
    }
}

/* The job's end (finish or release) is decided: its slot no longer counts
 * for fetching (see cq_worker.nending). */
static void mark_done(task *t)
{
    if (t->done)
        return;
    t->done = true;
    t->w->nending++;
    cq_worker_slot_freed(t->w);
}

static void job_stuck(task *t)
{
    /* out of memory: leave the job in inflight, our restart or a peer takes it back */
    cq_log(CQ_LOG_ERR, "job_stuck", "id", job_id(t), "error", "out of memory", NULL);
    task_free(t);
}

/* Add this job's end to the finish batch (see finish.lua for the layout).
 * 0 or -ENOMEM. */
static int finish_add(task *t, const char *status, const char *error, const char *message,
                      const char *dead, const char *meta, const char *attempts, const char *http,
                      const char *duration, const char *finished)
{
    cq_worker *w = t->w;
    cq_batch *b = &w->finishes;
    const char *idem = t->idem_key != NULL ? t->idem_key : w->k_prefix;

    cq_batch_begin(b, t);
    cq_batch_key(b, idem, strlen(idem));
    cq_batch_arg_str(b, t->handle);
    cq_batch_arg_str(b, dead);
    cq_batch_arg_str(b, idem_op(t, status));
    cq_batch_arg_str(b, t->env.tok);
    cq_batch_arg_str(b, job_id(t));
    cq_batch_arg_str(b, t->job.idem_key);
    cq_batch_arg_str(b, t->job.provider);
    cq_batch_arg_str(b, t->job.action);
    cq_batch_arg_str(b, status);
    cq_batch_arg_str(b, attempts);
    cq_batch_arg_str(b, http);
    cq_batch_arg_str(b, error);
    cq_batch_arg_str(b, message);
    cq_batch_arg_str(b, duration);
    cq_batch_arg_str(b, finished);
    cq_batch_arg_str(b, meta);
    if (strcmp(status, "duplicate") == 0) {
        cq_batch_arg_str(b, t->orig[0]);
        cq_batch_arg_str(b, t->orig[1]);
        cq_batch_arg_str(b, t->orig[2]);
        t->orig[0] = t->orig[1] = t->orig[2] = NULL; /* the reply goes away */
    }
    if (cq_batch_end(b) != 0)
        return -ENOMEM;
    cq_worker_flush_soon(w);
    return 0;
}

/* Publish the one outcome of this job (see finish.lua). */
static void task_finish(task *t, const char *status, const char *error, const char *message,
                        long http_status)
{
    cq_worker *w = t->w;
    char attempts[16], http[16], duration[24], finished[32], redacted[CQ_ERR_MSG_MAX];
    char *dead = NULL, *meta = NULL;
    int64_t now = cq_now_ms();
    int rc = -ENOMEM;

    mark_done(t);
    cq_log_redact(message != NULL ? message : "", redacted, sizeof(redacted));
    snprintf(attempts, sizeof(attempts), "%d", t->env.attempts);
    snprintf(http, sizeof(http), "%ld", http_status);
    snprintf(duration, sizeof(duration), "%lld",
             (long long)(now - (t->env.first_ms > 0 ? t->env.first_ms : now)));
    cq_format_rfc3339(now, finished);
    if (status_is_dead(status))
        dead = cq_dead_entry(t->env.job, t->env.job_len, status, error, redacted, t->env.attempts,
                             t->env.history, t->env.nhistory, now, w->id);
    if (t->job.meta != NULL)
        meta = cJSON_PrintUnformatted(t->job.meta);

    cq_log(strcmp(status, "succeeded") == 0 || strcmp(status, "already_done") == 0 ||
                   strcmp(status, "duplicate") == 0
               ? CQ_LOG_INFO
               : CQ_LOG_WARN,
           "job_done", "id", job_id(t), "provider", t->job.provider, "action", t->job.action,
           "status", status, "attempts", attempts, "http_status", http, "error", error, "message",
           redacted, "duration_ms", duration, NULL);
    w->stats.finished++;
    cq_metrics_job_done(w, t->prov, t->action, status);
    if ((dead != NULL || !status_is_dead(status)) && (t->job.meta == NULL || meta != NULL))
        rc = finish_add(t, status, error, redacted, dead, meta, attempts, http, duration, finished);
    free(dead);
    cJSON_free(meta);
    if (rc != 0)
        job_stuck(t);
}

/* Give the job back without an outcome: to delayed (due > 0) or to the
 * queue (due 0).  envelope NULL pushes the stored item unchanged. */
static void task_release(task *t, int64_t due, const char *envelope)
{
    cq_worker *w = t->w;
    char d[24];
    args a = {.n = 0};

    mark_done(t);
    snprintf(d, sizeof(d), "%lld", (long long)due);
    arg(&a, w->k_inflight);
    arg(&a, w->k_delayed);
    arg(&a, w->k_jobs);
    arg(&a, t->handle);
    arg(&a, d);
    arg(&a, envelope);
    if (cq_redis_script(w->main, "release", written_cb, t, 3, a.n, a.v, a.l) != 0) {
        job_stuck(t);
        return;
    }
    if (due > 0)
        cq_worker_delayed_at(w, due);
}

/* Put the job back with its envelope updated. */
static void task_requeue(task *t, int64_t due)
{
    char *env = cq_envelope_build(&t->env);

    if (env == NULL) {
        task_release(t, due, NULL); /* keeps the older envelope: loses only history */
        return;
    }
    task_release(t, due, env);
    free(env);
}

/* A transient failure: retry later, or end as exhausted / expired. */
static void task_retry(task *t, const cq_verdict *v, long http_status, bool unknown)
{
    const cq_worker_conf *wc = &t->w->cfg->worker;
    int max = t->job.max_attempts > 0 ? t->job.max_attempts : wc->max_attempts;
    int64_t now = cq_now_ms();
    uint64_t delay;

    if (t->env.attempts >= max) {
        char msg[CQ_ERR_MSG_MAX];

        snprintf(msg, sizeof(msg), "gave up after %d attempts: %.200s", t->env.attempts,
                 v->message);
        task_finish(t, "exhausted", v->error, msg, http_status);
        return;
    }
    delay = cq_retry_delay(v->has_retry_after, v->retry_after_ms, wc->retry_after_max_ms,
                           wc->backoff_base_ms, wc->backoff_max_ms,
                           (unsigned)(t->env.attempts > 0 ? t->env.attempts - 1 : 0),
                           cq_rand_default, NULL);
    if (t->job.deadline_ms > 0 && now + (int64_t)delay >= t->job.deadline_ms) {
        task_finish(t, "expired", v->error, "deadline passes before the next attempt", http_status);
        return;
    }
    t->env.unknown = unknown;
    t->w->stats.retried++;
    {
        char ds[24], at[16];

        snprintf(ds, sizeof(ds), "%llu", (unsigned long long)delay);
        snprintf(at, sizeof(at), "%d", t->env.attempts);
        cq_log(CQ_LOG_INFO, "job_retry", "id", job_id(t), "provider", t->job.provider, "attempts",
               at, "error", v->error, "delay_ms", ds, NULL);
    }
    task_requeue(t, now + (int64_t)(delay > 0 ? delay : 1));
}

/* --- provider queue: slot, rate limit, token, breaker -------------------- */

/* Put the job back without spending an attempt (breaker open, fairness,
 * token endpoint failing): to delayed due at `due`, or to the queue when
 * due is 0.  A pending status check stays pending. */
static void task_defer(task *t, int64_t due)
{
    if (t->mode != M_CALL)
        t->env.unknown = true;
    task_requeue(t, due);
}

/* When a job the breaker turned away comes back: the end of the cooldown,
 * spread over up to CQ_BREAKER_SPREAD_MS so the jobs do not all return at
 * the same instant (and the next probe is not always the same job). */
#define CQ_BREAKER_SPREAD_MS 500

static int64_t breaker_due(int64_t retry_at)
{
    return retry_at + (int64_t)cq_backoff_delay(CQ_BREAKER_SPREAD_MS, CQ_BREAKER_SPREAD_MS, 0,
                                                cq_rand_default, NULL);
}

static void breaker_note(cq_provider *p)
{
    cq_breaker_state st = p->breaker.state;

    p->breaker_changes[st]++;
    cq_log(st == CQ_BR_OPEN ? CQ_LOG_WARN : CQ_LOG_NOTICE, "breaker_state", "provider",
           p->conf->name, "state", cq_breaker_state_name(st), "detail",
           st == CQ_BR_OPEN     ? "transient failures in a row: jobs wait without spending attempts"
           : st == CQ_BR_CLOSED ? "the provider answers again"
                                : "cooldown over: one probe goes",
           NULL);
    cq_worker_notify_status(p->w);
}

static task *queue_pop(cq_provider *p)
{
    task *t = p->wait_head;

    p->wait_head = t->wait_next;
    if (p->wait_head == NULL)
        p->wait_tail = NULL;
    t->wait_next = NULL;
    p->nwait--;
    return t;
}

static void queue_push(cq_provider *p, task *t)
{
    t->wait_next = NULL;
    if (p->wait_tail != NULL)
        p->wait_tail->wait_next = t;
    else
        p->wait_head = t;
    p->wait_tail = t;
    p->nwait++;
}

static void provider_pump(cq_provider *p);

static void cred_ready(cq_cred_waiter *cw, int status, uint64_t retry_ms)
{
    task *t = (task *)((char *)cw - offsetof(task, cw));
    cq_provider *p = t->prov;

    p->ncred--;
    if (status == 0 && !t->w->stopping) {
        queue_push(p, t);
        provider_pump(p);
        return;
    }
    if (status == -EAGAIN && !t->w->stopping) {
        task_defer(t, cq_now_ms() + (int64_t)retry_ms);
        return;
    }
    task_defer(t, 0); /* shutdown: straight back to the queue */
}

/* Send what may go now, in FIFO order: a request needs a slot of the
 * instance, a token of its bucket, a usable credential and the breaker's
 * consent.  A job whose credential is being renewed leaves the queue for
 * the credential's waiter list; one the breaker refuses goes back to
 * delayed.  Each job is looked at once per pass, so a pass is O(jobs sent
 * or moved). */
static void provider_pump(cq_provider *p)
{
    cq_worker *w = p->w;
    task *t;

    while (p->wait_head != NULL && p->active < p->conf->concurrency) {
        if (w->http_active >= (size_t)w->cfg->worker.concurrency) {
            w->global_wait = true; /* woken by the next slot freed anywhere */
            return;
        }
        uint64_t now = uv_now(w->loop);
        int64_t wait = cq_bucket_wait_ms(&p->bucket, (int64_t)now), retry_at = 0;
        const char *tok;
        unsigned gen;
        bool changed;

        if (w->stopping) {
            t = queue_pop(p);
            task_release(t, 0, NULL);
            continue;
        }
        if (wait > 0) {
            if (!p->pump_armed) {
                p->pump_armed = true;
                p->rate_waits++;
                uv_timer_start(&p->pump_timer, cq_task_pump_timer_cb, (uint64_t)wait, 0);
            }
            return;
        }
        tok = cq_cred_token(p->cred, &gen);
        if (tok == NULL) {
            uint64_t retry_in = cq_cred_retry_in(p->cred);

            t = queue_pop(p);
            if (retry_in > 0) {
                task_defer(t, cq_now_ms() + (int64_t)retry_in);
            } else {
                p->ncred++;
                t->cw.cb = cred_ready;
                cq_cred_wait(p->cred, &t->cw);
            }
            continue;
        }
        if (!cq_breaker_allow(&p->breaker, cq_now_ms(), &retry_at, &changed)) {
            if (changed)
                breaker_note(p);
            t = queue_pop(p);
            p->breaker_deferred++;
            task_defer(t, breaker_due(retry_at));
            continue;
        }
        if (changed)
            breaker_note(p);
        t = queue_pop(p);
        cq_bucket_take(&p->bucket, (int64_t)now);
        p->active++;
        w->http_active++;
        t->tok_gen = gen;
        t->probe = p->breaker.state == CQ_BR_HALF_OPEN;
        task_request(t, tok);
    }
}

void cq_task_pump_timer_cb(uv_timer_t *h)
{
    cq_provider *p = h->data;

    p->pump_armed = false;
    provider_pump(p);
}

/* A request ended: its instance may send the next, and when the worker's
 * limit held other instances' queues back, they may too. */
static void slot_release(cq_provider *p)
{
    cq_worker *w = p->w;
    size_t i;

    p->active--;
    w->http_active--;
    provider_pump(p);
    if (!w->global_wait)
        return;
    w->global_wait = false;
    for (i = 0; i < w->nproviders && w->http_active < (size_t)w->cfg->worker.concurrency; i++)
        provider_pump(&w->providers[i]);
}

/* Queue the job for a request to its provider.  fresh: a job that has not
 * waited here yet, subject to the fairness bound (see CQ_FAIR_WAIT_MAX). */
static void task_call_when_free(task *t, bool fresh)
{
    cq_provider *p = t->prov;

    if (fresh && p->nwait + p->ncred >= CQ_FAIR_WAIT_MAX(p->conf)) {
        uint64_t d = CQ_FAIR_DELAY_MS +
                     cq_backoff_delay(CQ_FAIR_DELAY_MS, CQ_FAIR_DELAY_MS, 0, cq_rand_default, NULL);

        p->fair_bounced++;
        cq_log(CQ_LOG_DEBUG, "job_deferred", "id", job_id(t), "provider", p->conf->name, "reason",
               "too many jobs of this provider wait here already", NULL);
        task_defer(t, cq_now_ms() + (int64_t)d);
        return;
    }
    queue_push(p, t);
    provider_pump(p);
}

void cq_task_release_waiting(cq_worker *w)
{
    size_t i;

    for (i = 0; i < w->nproviders; i++) {
        cq_provider *p = &w->providers[i];
        task *t;

        while (p->wait_head != NULL) {
            t = queue_pop(p);
            task_release(t, 0, NULL);
        }
        cq_cred_cancel_waiters(p->cred);
    }
}

/* --- answers ------------------------------------------------------------- */

static void on_answer(void *data, const cq_response *resp);

/* The request of a task that took a slot will not go.  Only called from
 * inside provider_pump (through task_request), whose loop goes on: no
 * nested pump. */
static void request_dropped(task *t)
{
    if (t->probe)
        cq_breaker_abandon(&t->prov->breaker);
    t->probe = false;
    t->prov->active--;
    t->w->http_active--;
}

static void task_request(task *t, const char *token)
{
    cq_worker *w = t->w;
    cq_provider *p = t->prov;
    cq_request req;
    cq_http_opts o;
    cq_err err;
    int rc;

    if (w->stopping) {
        /* not sent yet: back to the queue for the next worker */
        request_dropped(t);
        task_release(t, 0, NULL);
        return;
    }
    memset(&req, 0, sizeof(req));
    cq_err_clear(&err);
    rc = t->mode == M_CALL ? t->action->build(p->conf, t->job.params, &req, &err)
                           : t->action->build_check(p->conf, t->job.params, &req, &err);
    if (rc != 0) {
        cq_request_clear(&req);
        request_dropped(t);
        task_finish(t, "failed", err.code[0] ? err.code : "build_failed", err.msg, 0);
        return;
    }
    o.timeout_ms = p->conf->timeout_ms;
    o.connect_timeout_ms = p->conf->connect_timeout_ms;
    o.max_response = p->conf->max_response;
    o.allow_http = p->conf->allow_insecure_http;
    o.auth_prefix = p->adapter->auth_prefix;
    o.token = token;
    if (t->mode == M_CALL) {
        if (t->env.first_ms == 0)
            t->env.first_ms = cq_now_ms();
        t->env.attempts++;
        w->stats.calls++;
        p->attempts++;
    } else {
        w->stats.checks++;
        p->checks++;
    }
    t->req_start = uv_now(w->loop);
    t->in_http = true;
    rc = cq_http_send(w->http, &req, &o, on_answer, t);
    cq_request_clear(&req);
    if (rc != 0) {
        cq_verdict v;

        t->in_http = false;
        request_dropped(t);
        cq_verdict_set(&v, CQ_V_RETRY, "internal", "could not start the request (%d)", rc);
        task_retry(t, &v, 0, false);
    }
}

static void record_attempt(task *t, const cq_response *resp, const cq_verdict *v)
{
    cq_envelope_add_attempt(&t->env, resp->now_ms, resp->status,
                            v->kind == CQ_V_SUCCEEDED ? "" : v->error);
}

static void renew_and_repeat(task *t, const cq_verdict *v, long status)
{
    if (t->auth_renewed) {
        task_finish(t, "failed", "unauthorized",
                    "the provider refused the credentials twice (after renewing the token)",
                    status);
        return;
    }
    (void)v;
    t->auth_renewed = true;
    /* one renewal per token: requests that carried the same token wait for it */
    cq_cred_invalid(t->prov->cred, t->tok_gen);
    if (t->mode == M_CALL && t->env.attempts > 0)
        t->env.attempts--; /* the renewal's repeat is the same attempt */
    task_call_when_free(t, false);
}

static void on_call_answer(task *t, const cq_response *resp, const cq_verdict *v)
{
    switch (v->kind) {
    case CQ_V_SUCCEEDED:
        task_finish(t, "succeeded", "", v->message, resp->status);
        break;
    case CQ_V_ALREADY_DONE:
        task_finish(t, "already_done", v->error, v->message, resp->status);
        break;
    case CQ_V_AUTH:
        renew_and_repeat(t, v, resp->status);
        break;
    case CQ_V_CHECK:
        if (t->action->build_check == NULL) {
            task_finish(t, "failed", v->error, v->message, resp->status);
            break;
        }
        if (t->ambiguous == NULL && (t->ambiguous = malloc(sizeof(*t->ambiguous))) == NULL) {
            task_finish(t, "failed", v->error, v->message, resp->status);
            break;
        }
        *t->ambiguous = *v;
        t->ambiguous->has_retry_after = false;
        t->mode = M_CHECK_AMBIGUOUS;
        task_call_when_free(t, false);
        break;
    case CQ_V_RETRY:
        task_retry(t, v, resp->status, resp->maybe_sent);
        break;
    default:
        task_finish(t, "failed", v->error, v->message, resp->status);
        break;
    }
}

static void on_check_answer(task *t, const cq_response *resp, const cq_verdict *v)
{
    switch (v->kind) {
    case CQ_V_ALREADY_DONE:
        task_finish(t, "already_done", v->error[0] ? v->error : "status_check", v->message,
                    resp->status);
        break;
    case CQ_V_AUTH:
        renew_and_repeat(t, v, resp->status);
        break;
    case CQ_V_RETRY:
        /* keep the check pending: the next attempt starts with it again */
        task_retry(t, v, resp->status, true);
        break;
    default: /* NOT_DONE */
        if (t->mode == M_CHECK_AMBIGUOUS) {
            task_finish(t, "failed", t->ambiguous->error, t->ambiguous->message, 0);
        } else {
            t->env.unknown = false;
            t->mode = M_CALL;
            task_call_when_free(t, false);
        }
        break;
    }
}

/* What an answer tells about the instance: a 429 with Retry-After pauses
 * it; every verdict but RETRY shows it working (breaker). */
static void provider_learn(task *t, const cq_response *resp, const cq_verdict *v)
{
    cq_provider *p = t->prov;
    bool probe = t->probe;

    t->probe = false;
    if (v->kind == CQ_V_RETRY && resp->status == 429) {
        if (v->has_retry_after) {
            uint64_t ms = v->retry_after_ms;
            char s[24];

            if (ms > t->w->cfg->worker.retry_after_max_ms)
                ms = t->w->cfg->worker.retry_after_max_ms;
            cq_bucket_pause(&p->bucket, (int64_t)(uv_now(t->w->loop) + ms));
            p->pauses++;
            snprintf(s, sizeof(s), "%llu", (unsigned long long)ms);
            cq_log(CQ_LOG_NOTICE, "provider_paused", "provider", p->conf->name, "pause_ms", s,
                   "reason", "429 with Retry-After", NULL);
        }
        if (probe)
            cq_breaker_abandon(&p->breaker);
        return; /* rate limiting, not an outage: the breaker does not count it */
    }
    if (cq_breaker_record(&p->breaker, v->kind != CQ_V_RETRY, cq_now_ms()))
        breaker_note(p);
}

static void on_answer(void *data, const cq_response *resp)
{
    task *t = data;
    cq_verdict v;
    bool probe;

    t->in_http = false;
    cq_histogram_observe(&t->prov->duration, (double)(uv_now(t->w->loop) - t->req_start) / 1000.0);
    memset(&v, 0, sizeof(v));
    if (resp->transport == CQ_TR_ABORTED) {
        if (t->probe)
            cq_breaker_abandon(&t->prov->breaker);
        t->probe = false;
        slot_release(t->prov);
        /* shutdown: back to the queue; the next taker checks first if sent */
        t->env.unknown = t->env.unknown || resp->maybe_sent;
        if (t->mode == M_CALL && t->env.attempts > 0)
            t->env.attempts--;
        task_requeue(t, 0);
        return;
    }
    if (t->mode == M_CALL)
        t->action->classify(t->prov->conf, t->job.params, resp, &v);
    else
        t->action->classify_check(t->prov->conf, t->job.params, resp, &v);
    probe = t->probe;
    provider_learn(t, resp, &v);
    slot_release(t->prov);
    if (probe && v.kind == CQ_V_RETRY && t->prov->breaker.state == CQ_BR_OPEN) {
        /* The failed probe was the breaker's choice, not the job's retry:
         * kept in the history, not counted against max_attempts. */
        if (t->mode == M_CALL) {
            record_attempt(t, resp, &v);
            if (t->env.attempts > 0)
                t->env.attempts--;
            t->env.unknown = resp->maybe_sent;
        }
        t->prov->breaker_deferred++;
        cq_log(CQ_LOG_INFO, "job_probe_failed", "id", job_id(t), "provider", t->job.provider,
               "error", v.error, NULL);
        task_defer(t, breaker_due(t->prov->breaker.open_end));
        return;
    }
    if (t->mode == M_CALL) {
        record_attempt(t, resp, &v);
        on_call_answer(t, resp, &v);
    } else {
        on_check_answer(t, resp, &v);
    }
}

/* --- claim --------------------------------------------------------------- */

static const char *elem(const redisReply *r, size_t i)
{
    if (r->type != REDIS_REPLY_ARRAY || i >= r->elements ||
        r->element[i]->type != REDIS_REPLY_STRING)
        return "";
    return r->element[i]->str;
}

static void task_go(task *t, bool check_first)
{
    if (check_first && t->action->build_check != NULL) {
        t->mode = M_CHECK_UNKNOWN;
        cq_log(CQ_LOG_INFO, "job_status_check", "id", job_id(t), "reason",
               "outcome of an earlier attempt is unknown", NULL);
    } else {
        t->mode = M_CALL;
    }
    task_call_when_free(t, true);
}

static void claim_cb(void *data, redisReply *reply)
{
    task *t = data;
    const char *v;

    t->w->nclaiming--;
    if (reply == NULL) {
        task_free(t); /* shutting down hard: the job stays inflight for reclaim */
        return;
    }
    v = elem(reply, 0);
    if (t->w->stopping) {
        task_release(t, 0, NULL);
    } else if (strcmp(v, "claimed") == 0) {
        task_go(t, false);
    } else if (strcmp(v, "reclaimed") == 0) {
        task_go(t, t->env.unknown);
    } else if (strcmp(v, "takeover") == 0) {
        task_go(t, true);
    } else if (strcmp(v, "duplicate") == 0) {
        t->orig[0] = elem(reply, 1);
        t->orig[1] = elem(reply, 2);
        t->orig[2] = elem(reply, 3);
        task_finish(t, "duplicate", "", "already carried out by an earlier job", 0);
    } else if (strcmp(v, "conflict") == 0) {
        char msg[CQ_ERR_MSG_MAX];

        snprintf(msg, sizeof(msg), "idempotency key already used by job '%s' with different params",
                 elem(reply, 1));
        task_finish(t, "conflict", "idempotency_conflict", msg, 0);
    } else if (strcmp(v, "busy") == 0) {
        const cq_worker_conf *wc = &t->w->cfg->worker;
        uint64_t d =
            wc->backoff_base_ms +
            cq_backoff_delay(wc->backoff_base_ms, wc->backoff_base_ms, 0, cq_rand_default, NULL);

        cq_log(CQ_LOG_INFO, "job_key_busy", "id", job_id(t), "holder", elem(reply, 1), NULL);
        task_requeue(t, cq_now_ms() + (int64_t)d);
    } else {
        cq_log(CQ_LOG_ERR, "redis_script_error", "id", job_id(t), "error",
               reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected claim reply", NULL);
        task_requeue(t, cq_now_ms() + (int64_t)t->w->cfg->worker.backoff_base_ms);
    }
}

static void task_claim(task *t)
{
    cq_worker *w = t->w;
    const cq_provider_conf *pc = t->prov->conf;
    cq_batch *b = &w->claims;
    char lease[24];

    /* the claim must outlive a request and its retry of a renewed token */
    snprintf(lease, sizeof(lease), "%llu",
             (unsigned long long)w->cfg->worker.lease_ms + 2ULL * pc->timeout_ms);
    cq_batch_begin(b, t);
    cq_batch_key(b, t->idem_key, strlen(t->idem_key));
    cq_batch_arg_str(b, t->env.tok);
    cq_batch_arg_str(b, job_id(t));
    cq_batch_arg_str(b, t->hash);
    cq_batch_arg_str(b, lease);
    if (cq_batch_end(b) != 0) {
        job_stuck(t);
        return;
    }
    w->nclaiming++;
    cq_worker_flush_soon(w);
}

void cq_task_batches_init(cq_worker *w)
{
    const char *claim_args[] = {w->id, w->claim_now, w->idem_ttl};
    const char *finish_keys[] = {w->k_inflight, w->k_results, w->k_dead};
    const char *finish_args[] = {w->maxlen, w->idem_ttl, w->id};

    cq_batch_init(&w->claims, w->main, "claim", claim_cb, 1, 0, NULL, 3, claim_args);
    cq_batch_init(&w->finishes, w->main, "finish", written_cb, 1, 3, finish_keys, 3, finish_args);
}

/* --- start --------------------------------------------------------------- */

static cq_provider *find_provider(cq_worker *w, const char *name)
{
    size_t i;

    for (i = 0; name != NULL && i < w->nproviders; i++) {
        if (strcmp(w->providers[i].conf->name, name) == 0)
            return &w->providers[i];
    }
    return NULL;
}

/* Validate the job against its provider and action; 0 or fills err. */
static int task_validate(task *t, cq_err *err)
{
    char target[CQ_TARGET_MAX];
    int rc;

    rc = cq_job_parse(t->env.job, t->env.job_len, &t->job, err);
    if (rc != 0)
        return rc;
    t->prov = find_provider(t->w, t->job.provider);
    if (t->prov == NULL)
        return cq_err_set(err, -EINVAL, "unknown_provider",
                          "provider: '%s' is not a provider instance of this deployment",
                          t->job.provider);
    t->action = cq_adapter_action(t->prov->adapter, t->job.action);
    if (t->action == NULL)
        return cq_err_set(err, -EINVAL, "unknown_action",
                          "action: '%s' is not an action of adapter '%s'", t->job.action,
                          t->prov->adapter->name);
    rc = t->action->validate(t->job.params, target, sizeof(target), err);
    if (rc != 0)
        return rc;
    rc = cq_job_derive_key(&t->job, target);
    if (rc != 0)
        return cq_err_set(err, rc, rc == -ENOMEM ? "no_memory" : "bad_value",
                          "idempotency_key: cannot be derived from the params");
    cq_job_params_hash(t->job.params, t->hash);
    {
        char key[CQ_KEY_MAX];

        if (snprintf(key, sizeof(key), "%sidem:%s", t->w->k_prefix, t->job.idem_key) >=
            (int)sizeof(key))
            return cq_err_set(err, -EINVAL, "bad_value", "idempotency_key: too long");
        t->idem_key = strdup(key);
        if (t->idem_key == NULL)
            return cq_err_set(err, -ENOMEM, "no_memory", "out of memory");
    }
    return 0;
}

void cq_task_start(cq_worker *w, const char *handle, const char *item, size_t len)
{
    task *t = calloc(1, sizeof(*t));
    cq_err err;

    if (t == NULL || (t->item = malloc(len + 1)) == NULL) {
        free(t);
        cq_log(CQ_LOG_ERR, "job_stuck", "handle", handle, "error", "out of memory", NULL);
        return; /* stays inflight; reclaimed at our restart */
    }
    memcpy(t->item, item, len);
    t->item[len] = '\0';
    t->item_len = len;
    t->w = w;
    snprintf(t->handle, sizeof(t->handle), "%s", handle);
    t->next = w->tasks;
    if (w->tasks != NULL)
        w->tasks->prev = t;
    w->tasks = t;
    w->ntasks++;
    w->stats.fetched++;
    if (cq_envelope_parse(t->item, t->item_len, &t->env) != 0) {
        task_free(t);
        return;
    }
    if (t->env.tok[0] == '\0')
        snprintf(t->env.tok, sizeof(t->env.tok), "%s/%s", w->id, handle);
    cq_err_clear(&err);
    if (task_validate(t, &err) != 0) {
        t->job_ok = false;
        task_finish(t, "invalid", err.code, err.msg, 0);
        return;
    }
    t->job_ok = true;
    if (cq_deadline_passed(t->job.deadline_ms, cq_now_ms())) {
        task_finish(t, "expired", "deadline", "the job's deadline passed before it ended", 0);
        return;
    }
    task_claim(t);
}
