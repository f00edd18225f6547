/*
 * store.c - cancelqd's Redis keys and scripts (see store.h).
 */
#include "cancelq/store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cancelq/clock.h"
#include "cancelq/job.h"
#include "cancelq/log.h"
#include "cancelq/rfc3339.h"
#include "json_util.h"
#include "store_int.h"

#define REPLY_TIMEOUT_MS 10000 /* Redis silent this long: reconnect */

/* --- plumbing ------------------------------------------------------------ */

int cq_store_script(cq_store *s, const char *name, cq_redis_cb cb, void *data, int nkeys, int argc,
                    const char **argv)
{
    size_t len[16];
    int i;

    for (i = 0; i < argc && i < 16; i++)
        len[i] = strlen(argv[i]);
    return cq_redis_script(s->main, name, cb, data, nkeys, argc, argv, len);
}

int cq_store_command(cq_redis *r, cq_redis_cb cb, void *data, int argc, const char **argv)
{
    size_t len[16];
    int i;

    for (i = 0; i < argc && i < 16; i++)
        len[i] = strlen(argv[i]);
    return cq_redis_cmd(r, cb, data, argc, argv, len);
}

static void num_arg(cq_batch *b, long long v)
{
    char t[CQ_INT_TEXT_MAX];

    cq_batch_arg(b, t, cq_int_text(v, t));
}

void cq_store_log_error(const char *script, const redisReply *reply)
{
    cq_log(CQ_LOG_ERR, "redis_script_error", "script", script, "error",
           reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply", NULL);
}

/* A numeric reply through a cq_num_cb: (cb, data) travel in a small
 * record; -1 for an error or unexpected reply, -2 when freed first. */
static long long read_int(const redisReply *r)
{
    return r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
}

static void num_reply(void *data, redisReply *reply)
{
    cq_store_num *q = data;
    long long v = -2;

    if (reply != NULL) {
        v = q->read(reply);
        if (v == -1)
            cq_store_log_error(q->what, reply);
    }
    if (q->cb != NULL)
        q->cb(q->data, v);
    free(q);
}

cq_store_num *cq_store_num_new(cq_num_cb cb, void *data, const char *what,
                               long long (*read)(const redisReply *r))
{
    cq_store_num *q = malloc(sizeof(*q));

    if (q != NULL) {
        q->cb = cb;
        q->data = data;
        q->what = what;
        q->read = read != NULL ? read : read_int;
    }
    return q;
}

int cq_store_num_script(cq_store *s, const char *name, cq_store_num *q, int nkeys, int argc,
                        const char **argv)
{
    if (q == NULL)
        return -ENOMEM;
    if (cq_store_script(s, name, num_reply, q, nkeys, argc, argv) != 0) {
        free(q);
        return -ENOMEM;
    }
    return 0;
}

int cq_store_num_command(cq_store *s, cq_store_num *q, int argc, const char **argv)
{
    if (q == NULL)
        return -ENOMEM;
    if (cq_store_command(s->main, num_reply, q, argc, argv) != 0) {
        free(q);
        return -ENOMEM;
    }
    return 0;
}

/* --- claims --------------------------------------------------------------- */

static const char *elem(const redisReply *r, size_t i)
{
    if (r->type != REDIS_REPLY_ARRAY || i >= r->elements ||
        r->element[i]->type != REDIS_REPLY_STRING)
        return "";
    return r->element[i]->str;
}

/* claim.lua's answer for one job, typed. */
static void claim_read(const redisReply *reply, cq_claim_result *r)
{
    static const struct {
        const char *name;
        cq_claim_verdict v;
    } verdicts[] = {
        {"claimed", CQ_CLAIM_CLAIMED},     {"held", CQ_CLAIM_HELD},
        {"reclaimed", CQ_CLAIM_RECLAIMED}, {"takeover", CQ_CLAIM_TAKEOVER},
        {"duplicate", CQ_CLAIM_DUPLICATE}, {"busy", CQ_CLAIM_BUSY},
        {"conflict", CQ_CLAIM_CONFLICT},   {"not_ours", CQ_CLAIM_NOT_OURS},
    };
    const char *v = elem(reply, 0);
    size_t i;

    memset(r, 0, sizeof(*r));
    r->verdict = CQ_CLAIM_ERROR;
    r->error = reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected claim reply";
    for (i = 0; i < sizeof(verdicts) / sizeof(verdicts[0]); i++) {
        if (strcmp(v, verdicts[i].name) == 0) {
            r->verdict = verdicts[i].v;
            r->error = NULL;
            break;
        }
    }
    r->check_first = strcmp(elem(reply, 1), "1") == 0;
    r->other_id = elem(reply, 2);
    r->other_status = elem(reply, 3);
    r->other_finished_at = elem(reply, 4);
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements >= 7 &&
        reply->element[5]->type == REDIS_REPLY_INTEGER &&
        reply->element[6]->type == REDIS_REPLY_INTEGER) {
        r->open_ms = reply->element[5]->integer;
        r->pause_ms = reply->element[6]->integer;
    }
}

static void claim_reply(void *ctx, void *item, redisReply *reply)
{
    cq_store *s = ctx;
    cq_claim_result r;

    if (reply == NULL) {
        memset(&r, 0, sizeof(r));
        r.verdict = CQ_CLAIM_LOST;
    } else {
        claim_read(reply, &r);
        if (cq_store_gate_claim(s, item, &r))
            return; /* answered once the replicas confirm */
    }
    s->ev.claimed(item, &r);
}

/* claim.lua: per job the idempotency key, then handle, owner, id, hash,
 * lease, unknown. */
int cq_store_claim(cq_store *s, const cq_claim *c, void *item)
{
    cq_batch *b = &s->claims;

    char lkey[CQ_KEY_MAX], pkey[CQ_KEY_MAX];

    if (cq_keys_limit(&s->k, c->instance, lkey, sizeof(lkey)) != 0 ||
        cq_keys_pause(&s->k, c->instance, pkey, sizeof(pkey)) != 0)
        return -ENAMETOOLONG;
    cq_batch_begin(b, item);
    cq_batch_key(b, c->idem_key, strlen(c->idem_key));
    cq_batch_key(b, lkey, strlen(lkey));
    cq_batch_key(b, pkey, strlen(pkey));
    cq_batch_arg_str(b, c->handle);
    cq_batch_arg_str(b, c->owner);
    cq_batch_arg_str(b, c->job_id);
    cq_batch_arg_str(b, c->hash);
    num_arg(b, (long long)c->lease_ms);
    cq_batch_arg_str(b, c->unknown ? "1" : "0");
    cq_batch_arg_str(b, c->hash_v1);
    if (cq_batch_end(b) != 0)
        return -ENOMEM;
    cq_store_flush_soon(s);
    return 0;
}

/* --- ends ----------------------------------------------------------------- */

static void written_reply(void *ctx, void *item, redisReply *reply)
{
    cq_store *s = ctx;

    if (item == NULL) { /* a release with nobody waiting (reconcile) */
        if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
            cq_store_log_error("release", reply);
        return;
    }
    cq_write w = CQ_WRITE_OK;
    const char *note = NULL;

    if (reply == NULL) {
        s->ev.written(item, CQ_WRITE_LOST, NULL);
        return;
    }
    if (reply->type == REDIS_REPLY_INTEGER && reply->integer == 0) {
        w = CQ_WRITE_NOT_OURS;
    } else if (reply->type == REDIS_REPLY_ERROR) {
        w = CQ_WRITE_FAILED;
        note = reply->str;
    } else if (reply->type == REDIS_REPLY_STRING || reply->type == REDIS_REPLY_STATUS) {
        note = reply->str; /* written; a note on the record */
    }
    if (!cq_store_gate_written(s, item, w, note))
        s->ev.written(item, w, note);
}

static const char *idem_op_name(cq_idem_op op)
{
    return op == CQ_IDEM_DONE ? "done" : op == CQ_IDEM_RELEASE ? "release" : "none";
}

/* finish.lua: per job its idempotency key (any key of the deployment when
 * none), then handle, dead entry, idem op, owner, hash, the outcome's
 * values in the script's FIELDS order, meta, and optional name/value pairs
 * (a duplicate's three originals, raw_sha256). */
int cq_store_finish(cq_store *s, const cq_outcome *o, void *item)
{
    cq_batch *b = &s->finishes;
    const char *idem = o->idem_key != NULL ? o->idem_key : s->k.prefix;
    char finished[32];
    int i;

    cq_format_rfc3339(o->finished_at_ms, finished);
    cq_batch_begin(b, item);
    cq_batch_key(b, idem, strlen(idem));
    cq_batch_arg_str(b, o->handle);
    cq_batch_arg_str(b, o->dead);
    cq_batch_arg_str(b, idem_op_name(o->idem_op));
    cq_batch_arg_str(b, o->owner);
    cq_batch_arg_str(b, o->hash);
    cq_batch_arg_str(b, o->id);
    cq_batch_arg_str(b, o->idempotency_key);
    cq_batch_arg_str(b, o->provider);
    cq_batch_arg_str(b, o->action);
    cq_batch_arg_str(b, cq_status_name(o->status));
    num_arg(b, o->attempts);
    num_arg(b, o->http_status);
    cq_batch_arg_str(b, o->error);
    cq_batch_arg_str(b, o->message);
    num_arg(b, o->duration_ms);
    cq_batch_arg_str(b, finished);
    cq_batch_arg_str(b, o->meta);
    for (i = 0; o->status == CQ_ST_DUPLICATE && i < 3; i++) {
        static const char *const names[3] = {"original_id", "original_status",
                                             "original_finished_at"};

        cq_batch_arg_str(b, names[i]);
        cq_batch_arg_str(b, o->original[i]);
    }
    if (o->raw_sha256 != NULL) {
        cq_batch_arg_str(b, "raw_sha256");
        cq_batch_arg_str(b, o->raw_sha256);
    }
    if (cq_batch_end(b) != 0)
        return -ENOMEM;
    cq_store_flush_soon(s);
    return 0;
}

/* release.lua: per job its idempotency key (any key of the deployment when
 * none), then handle, delay (0: the queue), item, owner, unknown, hold. */
int cq_store_release(cq_store *s, const cq_release *r, void *item)
{
    cq_batch *b = &s->releases;
    const char *idem = r->idem_key != NULL ? r->idem_key : s->k.prefix;

    cq_batch_begin(b, item);
    cq_batch_key(b, idem, strlen(idem));
    cq_batch_arg_str(b, r->handle);
    num_arg(b, (long long)r->delay_ms);
    cq_batch_arg_str(b, r->item);
    cq_batch_arg_str(b, r->idem_key != NULL ? r->owner : "");
    cq_batch_arg_str(b, r->unknown ? "1" : "0");
    num_arg(b, (long long)r->hold_ms);
    if (cq_batch_end(b) != 0)
        return -ENOMEM;
    cq_store_flush_soon(s);
    return 0;
}

/* --- batches: sent once per turn of the loop ------------------------------- */

static void flush_batch(cq_batch *b)
{
    size_t n = cq_batch_pending(b);
    char num[NUM_TEXT];

    if (n == 0 || cq_batch_flush(b) == 0)
        return;
    /* every job is let go (answered LOST); its entry stays inflight */
    cq_batch_discard(b);
    snprintf(num, sizeof(num), "%zu", n);
    cq_log(CQ_LOG_ERR, "job_stuck", "script", b->script, "jobs", num, "error", "out of memory",
           "detail", "the jobs stay inflight until this worker restarts", NULL);
}

/* uv_prepare runs right before the loop waits for I/O: everything the
 * callbacks of this turn added goes out as one command per script. */
static void flush_cb(uv_prepare_t *h)
{
    cq_store *s = h->data;

    size_t sent = cq_batch_pending(&s->claims) + cq_batch_pending(&s->finishes) +
                  cq_batch_pending(&s->releases);

    uv_prepare_stop(&s->flush);
    s->flush_on = false;
    flush_batch(&s->claims);
    flush_batch(&s->finishes);
    flush_batch(&s->releases);
    if (sent > 0 && s->cfg->redis.wait_replicas > 0 && cq_store_gate_open(s) != 0)
        cq_log(CQ_LOG_ERR, "redis_wait_failed", "error", "out of memory", "detail",
               "this batch is answered without waiting for the replicas", NULL);
    if (s->ev.flush != NULL)
        s->ev.flush(s->ev.data);
}

void cq_store_flush_soon(cq_store *s)
{
    if (s->flush_on || s->main == NULL)
        return;
    s->flush_on = true;
    uv_prepare_start(&s->flush, flush_cb);
}

void cq_store_discard(cq_store *s)
{
    uv_prepare_stop(&s->flush);
    s->flush_on = false;
    cq_batch_discard(&s->claims);
    cq_batch_discard(&s->finishes);
    cq_batch_discard(&s->releases);
}

/* --- construction ------------------------------------------------------------- */

static void main_ready(void *data)
{
    cq_store *s = data;

    if (s->ev.ready != NULL)
        s->ev.ready(s->ev.data);
}

static void main_lost(void *data, const char *why)
{
    cq_store *s = data;

    if (s->ev.lost != NULL)
        s->ev.lost(s->ev.data, why);
}

static void batches_init(cq_store *s)
{
    const char *claim_keys[] = {s->k.inflight};
    const char *claim_args[] = {s->holder, s->idem_ttl};
    const char *finish_keys[] = {s->k.inflight, s->k.results, s->k.dead};
    const char *finish_args[] = {s->maxlen, s->idem_ttl, s->worker};
    const char *release_keys[] = {s->k.inflight, s->k.delayed, s->k.retry};

    cq_batch_init(&s->claims, s->main, "claim", claim_reply, s, 3, 1, claim_keys, 2, claim_args);
    cq_batch_init(&s->finishes, s->main, "finish", written_reply, s, 1, 3, finish_keys, 3,
                  finish_args);
    cq_batch_init(&s->releases, s->main, "release", written_reply, s, 1, 3, release_keys, 0, NULL);
}

cq_store *cq_store_new(uv_loop_t *loop, const cq_config *cfg, const char *worker,
                       const char *holder, const char *password, const cq_store_events *ev,
                       cq_err *err)
{
    cq_redis_events rev = {main_ready, main_lost, NULL};
    cq_store *s = calloc(1, sizeof(*s));

    if (s == NULL) {
        cq_err_set(err, -ENOMEM, "nomem", "out of memory");
        return NULL;
    }
    s->loop = loop;
    s->cfg = cfg;
    s->worker = worker;
    s->holder = holder;
    s->ev = *ev;
    uv_prepare_init(loop, &s->flush);
    s->flush.data = s;
    if (cq_keys_init(&s->k, cfg->redis.prefix, worker) != 0) {
        cq_err_set(err, -EINVAL, "config", "[redis] prefix or [worker] id too long");
        goto fail;
    }
    /* results_trim = acked: the outcome is added untrimmed, trim.lua trims */
    snprintf(s->maxlen, sizeof(s->maxlen), "%lld",
             cfg->worker.results_trim == CQ_TRIM_ACKED ? 0 : cfg->worker.results_maxlen);
    snprintf(s->idem_ttl, sizeof(s->idem_ttl), "%llu",
             (unsigned long long)cfg->worker.idempotency_ttl_ms);
    rev.data = s;
    s->main = cq_redis_new(loop, &cfg->redis, password, "main", REPLY_TIMEOUT_MS, &rev, err);
    if (s->main == NULL)
        goto fail;
    batches_init(s);
    s->block = cq_redis_new(loop, &cfg->redis, password, "block", REPLY_TIMEOUT_MS, NULL, err);
    if (s->block == NULL)
        goto fail;
    return s;
fail:
    cq_store_free(s);
    return NULL;
}

static void prepare_closed(uv_handle_t *h)
{
    free(h->data);
}

void cq_store_free(cq_store *s)
{
    if (s == NULL)
        return;
    cq_store_discard(s);
    cq_redis_free(s->main);
    cq_redis_free(s->block);
    s->main = s->block = NULL;
    uv_close((uv_handle_t *)&s->flush, prepare_closed);
}

const cq_keys *cq_store_keys(const cq_store *s)
{
    return &s->k;
}

bool cq_store_ready(const cq_store *s)
{
    return s->main != NULL && cq_redis_ready(s->main);
}

uint64_t cq_store_reconnects(const cq_store *s, bool block)
{
    const cq_redis *r = block ? s->block : s->main;

    return r != NULL ? cq_redis_reconnects(r) : 0;
}

const char *cq_store_durability(const cq_store *s)
{
    return s->main != NULL ? cq_redis_durability(s->main) : "";
}

void cq_store_wait_stats(const cq_store *s, uint64_t *short_waits, uint64_t *resent)
{
    *short_waits = s->wait_short;
    *resent = s->wait_unsure;
}
