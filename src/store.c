/*
 * store.c - cancelqd's Redis keys and scripts (see store.h).
 */
#include "cancelq/store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cancelq/batch.h"
#include "cancelq/clock.h"
#include "cancelq/job.h"
#include "cancelq/log.h"
#include "cancelq/redis.h"
#include "json_util.h"

#define REPLY_TIMEOUT_MS 10000 /* Redis silent this long: reconnect */
#define BLOCK_WAIT_SECONDS "1" /* a blocked wait is re-armed this often */
#define PROMOTE_BATCH "500"    /* retries moved per promotion at most */
#define NUM_TEXT 24            /* a 64-bit number as text, with its NUL */

struct cq_store {
    uv_loop_t *loop;
    const cq_config *cfg;
    const char *worker;
    cq_keys k;
    cq_store_events ev;
    char maxlen[NUM_TEXT];   /* results MAXLEN ~ */
    char idem_ttl[NUM_TEXT]; /* idempotency record TTL, ms */
    char claim_now[NUM_TEXT];
    cq_redis *main;
    cq_redis *block;
    cq_batch claims;   /* claim.lua */
    cq_batch finishes; /* finish.lua */
    cq_batch releases; /* release.lua */
    uv_prepare_t flush;
    bool flush_on;
};

/* --- plumbing ------------------------------------------------------------ */

static int script(cq_store *s, const char *name, cq_redis_cb cb, void *data, int nkeys, int argc,
                  const char **argv)
{
    size_t len[16];
    int i;

    for (i = 0; i < argc && i < 16; i++)
        len[i] = strlen(argv[i]);
    return cq_redis_script(s->main, name, cb, data, nkeys, argc, argv, len);
}

static int command(cq_redis *r, cq_redis_cb cb, void *data, int argc, const char **argv)
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

static void log_error(const char *script, const redisReply *reply)
{
    cq_log(CQ_LOG_ERR, "redis_script_error", "script", script, "error",
           reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply", NULL);
}

/* A numeric reply through a cq_num_cb: (cb, data) travel in a small
 * record; -1 for an error or unexpected reply, -2 when freed first. */
typedef struct num_req {
    cq_num_cb cb;
    void *data;
    const char *what;
    long long (*read)(const redisReply *r);
} num_req;

static long long read_int(const redisReply *r)
{
    return r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
}

static void num_reply(void *data, redisReply *reply)
{
    num_req *q = data;
    long long v = -2;

    if (reply != NULL) {
        v = q->read(reply);
        if (v == -1)
            log_error(q->what, reply);
    }
    if (q->cb != NULL)
        q->cb(q->data, v);
    free(q);
}

static num_req *num_new(cq_num_cb cb, void *data, const char *what,
                        long long (*read)(const redisReply *r))
{
    num_req *q = malloc(sizeof(*q));

    if (q != NULL) {
        q->cb = cb;
        q->data = data;
        q->what = what;
        q->read = read != NULL ? read : read_int;
    }
    return q;
}

static int num_script(cq_store *s, const char *name, num_req *q, int nkeys, int argc,
                      const char **argv)
{
    if (q == NULL)
        return -ENOMEM;
    if (script(s, name, num_reply, q, nkeys, argc, argv) != 0) {
        free(q);
        return -ENOMEM;
    }
    return 0;
}

static int num_command(cq_store *s, num_req *q, int argc, const char **argv)
{
    if (q == NULL)
        return -ENOMEM;
    if (command(s->main, num_reply, q, argc, argv) != 0) {
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
        {"claimed", CQ_CLAIM_CLAIMED},   {"reclaimed", CQ_CLAIM_RECLAIMED},
        {"takeover", CQ_CLAIM_TAKEOVER}, {"duplicate", CQ_CLAIM_DUPLICATE},
        {"busy", CQ_CLAIM_BUSY},         {"conflict", CQ_CLAIM_CONFLICT},
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
    r->other_id = elem(reply, 1);
    r->other_status = elem(reply, 2);
    r->other_finished_at = elem(reply, 3);
    r->check_first = r->verdict == CQ_CLAIM_TAKEOVER;
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
    }
    s->ev.claimed(item, &r);
}

/* claim.lua: per job the idempotency key, then owner, id, hash, lease. */
int cq_store_claim(cq_store *s, const cq_claim *c, void *item)
{
    cq_batch *b = &s->claims;

    cq_batch_begin(b, item);
    cq_batch_key(b, c->idem_key, strlen(c->idem_key));
    cq_batch_arg_str(b, c->owner);
    cq_batch_arg_str(b, c->job_id);
    cq_batch_arg_str(b, c->hash);
    num_arg(b, (long long)c->lease_ms);
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
            log_error("release", reply);
        return;
    }
    if (reply == NULL)
        s->ev.written(item, CQ_WRITE_LOST, NULL);
    else if (reply->type == REDIS_REPLY_INTEGER && reply->integer == 0)
        s->ev.written(item, CQ_WRITE_NOT_OURS, NULL);
    else if (reply->type == REDIS_REPLY_ERROR)
        s->ev.written(item, CQ_WRITE_ERROR, reply->str);
    else
        s->ev.written(item, CQ_WRITE_OK, NULL);
}

static const char *idem_op_name(cq_idem_op op)
{
    return op == CQ_IDEM_DONE ? "done" : op == CQ_IDEM_RELEASE ? "release" : "none";
}

/* finish.lua: per job its idempotency key (any key of the deployment when
 * none), then handle, dead entry, idem op, owner, the outcome's values in
 * the script's FIELDS order, meta, and a duplicate's three originals. */
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
    if (o->status == CQ_ST_DUPLICATE) {
        for (i = 0; i < 3; i++)
            cq_batch_arg_str(b, o->original[i]);
    }
    if (cq_batch_end(b) != 0)
        return -ENOMEM;
    cq_store_flush_soon(s);
    return 0;
}

/* release.lua: per job its handle, due time (0: the queue) and item. */
int cq_store_release(cq_store *s, const cq_release *r, void *item)
{
    cq_batch *b = &s->releases;

    cq_batch_begin(b, item);
    cq_batch_arg_str(b, r->handle);
    num_arg(b, r->delay_ms > 0 ? (long long)(cq_clock_unix_ms() + (int64_t)r->delay_ms) : 0);
    cq_batch_arg_str(b, r->item);
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

    uv_prepare_stop(&s->flush);
    s->flush_on = false;
    if (cq_batch_pending(&s->claims) > 0)
        snprintf(s->claim_now, sizeof(s->claim_now), "%lld", (long long)cq_clock_unix_ms());
    flush_batch(&s->claims);
    flush_batch(&s->finishes);
    flush_batch(&s->releases);
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

/* --- fetching --------------------------------------------------------------- */

typedef struct fetch_req {
    cq_fetch_cb cb;
    void *data;
} fetch_req;

/* fetch.lua answers {first handle number, item1, item2, ...}. */
static void fetch_reply(void *data, redisReply *reply)
{
    fetch_req q = *(fetch_req *)data;
    cq_item *items;
    long long base;
    size_t i, n = 0;

    free(data);
    if (reply == NULL) {
        q.cb(q.data, -ECANCELED, NULL, 0);
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
        reply->element[0]->type != REDIS_REPLY_INTEGER) {
        log_error("fetch", reply);
        q.cb(q.data, -EIO, NULL, 0);
        return;
    }
    items = calloc(reply->elements, sizeof(*items));
    if (items == NULL) {
        /* the jobs stay inflight: reconciled at the next reconnect or restart */
        cq_log(CQ_LOG_ERR, "job_stuck", "script", "fetch", "error", "out of memory", NULL);
        q.cb(q.data, -ENOMEM, NULL, 0);
        return;
    }
    base = reply->element[0]->integer;
    for (i = 1; i < reply->elements && n < CQ_FETCH_MAX; i++) {
        const redisReply *it = reply->element[i];

        if (it->type != REDIS_REPLY_STRING)
            continue;
        snprintf(items[n].handle, sizeof(items[n].handle), "h%lld", base + (long long)i - 1);
        items[n].text = it->str;
        items[n].len = it->len;
        n++;
    }
    q.cb(q.data, 0, items, n);
    free(items);
}

int cq_store_fetch(cq_store *s, size_t max, cq_fetch_cb cb, void *data)
{
    char num[NUM_TEXT];
    const char *argv[4];
    fetch_req *q = malloc(sizeof(*q));

    if (q == NULL)
        return -ENOMEM;
    q->cb = cb;
    q->data = data;
    snprintf(num, sizeof(num), "%zu", max < CQ_FETCH_MAX ? max : (size_t)CQ_FETCH_MAX);
    argv[0] = s->k.jobs;
    argv[1] = s->k.inflight;
    argv[2] = s->k.seq;
    argv[3] = num;
    if (script(s, "fetch", fetch_reply, q, 3, 4, argv) != 0) {
        free(q);
        return -ENOMEM;
    }
    return 0;
}

typedef struct wait_req {
    void (*cb)(void *data, bool answered);
    void *data;
} wait_req;

static void wait_reply(void *data, redisReply *reply)
{
    wait_req q = *(wait_req *)data;

    free(data);
    q.cb(q.data, reply != NULL);
}

/* BLMOVE of the list onto itself (right to right) moves nothing: it only
 * wakes us when the queue has a job. */
int cq_store_wait_jobs(cq_store *s, void (*cb)(void *data, bool answered), void *data)
{
    const char *argv[] = {"BLMOVE", s->k.jobs, s->k.jobs, "RIGHT", "RIGHT", BLOCK_WAIT_SECONDS};
    wait_req *q = malloc(sizeof(*q));

    if (q == NULL)
        return -ENOMEM;
    q->cb = cb;
    q->data = data;
    if (command(s->block, wait_reply, q, 6, argv) != 0) {
        free(q);
        return -ENOMEM;
    }
    return 0;
}

/* --- liveness ----------------------------------------------------------------- */

static long long read_ok(const redisReply *r)
{
    return r->type == REDIS_REPLY_INTEGER ? 0 : -1;
}

int cq_store_heartbeat(cq_store *s, cq_num_cb cb, void *data)
{
    char now[NUM_TEXT];
    const char *argv[] = {"ZADD", s->k.workers, now, s->worker};

    snprintf(now, sizeof(now), "%lld", (long long)cq_clock_unix_ms());
    return num_command(s, num_new(cb, data, "heartbeat", read_ok), 4, argv);
}

static long long read_score(const redisReply *r)
{
    if (r->type == REDIS_REPLY_NIL)
        return -3;
    return r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10) : -1;
}

int cq_store_heartbeat_of(cq_store *s, cq_num_cb cb, void *data)
{
    const char *argv[] = {"ZSCORE", s->k.workers, s->worker};

    return num_command(s, num_new(cb, data, "identity", read_score), 3, argv);
}

int cq_store_reclaim(cq_store *s, bool self, cq_num_cb cb, void *data)
{
    char now[NUM_TEXT], lease[NUM_TEXT];
    const char *argv[7];

    snprintf(now, sizeof(now), "%lld", (long long)cq_clock_unix_ms());
    snprintf(lease, sizeof(lease), "%llu", (unsigned long long)s->cfg->worker.lease_ms);
    argv[0] = s->k.workers;
    argv[1] = s->k.jobs;
    argv[2] = now;
    argv[3] = lease;
    argv[4] = s->k.prefix;
    argv[5] = self ? s->worker : "";
    argv[6] = s->worker;
    return num_script(s, "reclaim", num_new(cb, data, "reclaim", NULL), 2, 7, argv);
}

/* promote.lua answers {moved, next due ms or -1}: ms until the next. */
static long long read_next(const redisReply *r)
{
    long long next, now;

    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[1]->type != REDIS_REPLY_INTEGER)
        return -1;
    next = r->element[1]->integer;
    if (next < 0)
        return -3;
    now = (long long)cq_clock_unix_ms();
    return next > now ? next - now : 0;
}

int cq_store_promote(cq_store *s, cq_num_cb cb, void *data)
{
    char now[NUM_TEXT];
    const char *argv[4];

    snprintf(now, sizeof(now), "%lld", (long long)cq_clock_unix_ms());
    argv[0] = s->k.delayed;
    argv[1] = s->k.jobs;
    argv[2] = now;
    argv[3] = PROMOTE_BATCH;
    return num_script(s, "promote", num_new(cb, data, "promote", read_next), 2, 4, argv);
}

int cq_store_leave(cq_store *s, cq_num_cb cb, void *data)
{
    const char *argv[] = {s->k.workers, s->k.inflight, s->worker};

    return num_script(s, "leave", num_new(cb, data, "leave", NULL), 2, 3, argv);
}

typedef struct handles_req {
    cq_handles_cb cb;
    void *data;
} handles_req;

static void handles_reply(void *data, redisReply *reply)
{
    handles_req q = *(handles_req *)data;
    cq_item *v = NULL;
    size_t i, n = 0;

    free(data);
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY)
        return;
    v = calloc(reply->elements > 0 ? reply->elements : 1, sizeof(*v));
    if (v == NULL)
        return; /* the next reconnect looks again */
    for (i = 0; i < reply->elements; i++) {
        const redisReply *h = reply->element[i];

        if (h->type != REDIS_REPLY_STRING || h->len >= CQ_HANDLE_MAX)
            continue;
        memcpy(v[n].handle, h->str, h->len + 1);
        n++;
    }
    q.cb(q.data, v, n);
    free(v);
}

int cq_store_inflight(cq_store *s, cq_handles_cb cb, void *data)
{
    const char *argv[] = {"HKEYS", s->k.inflight};
    handles_req *q = malloc(sizeof(*q));

    if (q == NULL)
        return -ENOMEM;
    q->cb = cb;
    q->data = data;
    if (command(s->main, handles_reply, q, 2, argv) != 0) {
        free(q);
        return -ENOMEM;
    }
    return 0;
}

/* Three replies, one answer. */
typedef struct depths_req {
    cq_depths_cb cb;
    void *data;
    long long v[3];
    int left;
} depths_req;

static void depth_reply(depths_req *q, int i, redisReply *reply)
{
    q->v[i] = reply != NULL && reply->type == REDIS_REPLY_INTEGER ? reply->integer : -1;
    if (--q->left > 0)
        return;
    q->cb(q->data, q->v[0], q->v[1], q->v[2]);
    free(q);
}

static void depth0(void *data, redisReply *reply)
{
    depth_reply(data, 0, reply);
}
static void depth1(void *data, redisReply *reply)
{
    depth_reply(data, 1, reply);
}
static void depth2(void *data, redisReply *reply)
{
    depth_reply(data, 2, reply);
}

int cq_store_depths(cq_store *s, cq_depths_cb cb, void *data)
{
    const char *a1[] = {"LLEN", s->k.jobs};
    const char *a2[] = {"ZCARD", s->k.delayed};
    const char *a3[] = {"LLEN", s->k.dead};
    depths_req *q = calloc(1, sizeof(*q));

    if (q == NULL)
        return -ENOMEM;
    q->cb = cb;
    q->data = data;
    q->left = 3;
    /* each reply comes (or is answered NULL) exactly once: the last frees q */
    if (command(s->main, depth0, q, 2, a1) != 0) {
        free(q);
        return -ENOMEM;
    }
    if (command(s->main, depth1, q, 2, a2) != 0)
        depth_reply(q, 1, NULL);
    if (command(s->main, depth2, q, 2, a3) != 0)
        depth_reply(q, 2, NULL);
    return 0;
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
    const char *claim_args[] = {s->worker, s->claim_now, s->idem_ttl};
    const char *finish_keys[] = {s->k.inflight, s->k.results, s->k.dead};
    const char *finish_args[] = {s->maxlen, s->idem_ttl, s->worker};
    const char *release_keys[] = {s->k.inflight, s->k.delayed, s->k.jobs};

    cq_batch_init(&s->claims, s->main, "claim", claim_reply, s, 1, 0, NULL, 3, claim_args);
    cq_batch_init(&s->finishes, s->main, "finish", written_reply, s, 1, 3, finish_keys, 3,
                  finish_args);
    cq_batch_init(&s->releases, s->main, "release", written_reply, s, 0, 3, release_keys, 0, NULL);
}

cq_store *cq_store_new(uv_loop_t *loop, const cq_config *cfg, const char *worker,
                       const char *password, const cq_store_events *ev, cq_err *err)
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
    s->ev = *ev;
    uv_prepare_init(loop, &s->flush);
    s->flush.data = s;
    if (cq_keys_init(&s->k, cfg->redis.prefix, worker) != 0) {
        cq_err_set(err, -EINVAL, "config", "[redis] prefix or [worker] id too long");
        goto fail;
    }
    snprintf(s->maxlen, sizeof(s->maxlen), "%lld", cfg->worker.results_maxlen);
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
