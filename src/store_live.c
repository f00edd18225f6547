/*
 * store_live.c - the worker's own Redis calls (see store.h): fetching jobs,
 * the blocking wait, heartbeat, reclaim of dead workers, promotion of due
 * retries, leaving, and what metrics and reconnects read.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cancelq/clock.h"
#include "cancelq/log.h"
#include "store_int.h"

#define BLOCK_WAIT_SECONDS "1" /* a blocked wait is re-armed this often */
#define PROMOTE_BATCH "500"    /* retries moved per promotion at most */

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
    long long base, nretry;
    size_t i, n = 0;

    free(data);
    if (reply == NULL) {
        q.cb(q.data, -ECANCELED, NULL, 0);
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
        reply->element[0]->type != REDIS_REPLY_INTEGER ||
        (reply->elements > 1 && reply->element[1]->type != REDIS_REPLY_INTEGER)) {
        cq_store_log_error("fetch", reply);
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
    if (base < 0) { /* not registered: a reclaim found us dead */
        free(items);
        q.cb(q.data, -EAGAIN, NULL, 0);
        return;
    }
    nretry = reply->elements > 1 ? reply->element[1]->integer : 0;
    for (i = 2; i < reply->elements && n < CQ_FETCH_MAX; i++) {
        const redisReply *it = reply->element[i];
        long long k = (long long)i - 2; /* the item's place in the batch */

        if (it->type != REDIS_REPLY_STRING)
            continue;
        items[n].trusted = k < nretry;
        snprintf(items[n].handle, sizeof(items[n].handle), "%c%lld", items[n].trusted ? 'r' : 'h',
                 base + k);
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
    const char *argv[8];
    fetch_req *q = malloc(sizeof(*q));

    if (q == NULL)
        return -ENOMEM;
    q->cb = cb;
    q->data = data;
    snprintf(num, sizeof(num), "%zu", max < CQ_FETCH_MAX ? max : (size_t)CQ_FETCH_MAX);
    argv[0] = s->k.jobs;
    argv[1] = s->k.inflight;
    argv[2] = s->k.seq;
    argv[3] = s->k.workers;
    argv[4] = s->k.holders;
    argv[5] = s->k.retry;
    argv[6] = num;
    argv[7] = s->worker;
    if (cq_store_script(s, "fetch", fetch_reply, q, 6, 8, argv) != 0) {
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
    if (cq_store_command(s->block, wait_reply, q, 6, argv) != 0) {
        free(q);
        return -ENOMEM;
    }
    return 0;
}

/* --- liveness ----------------------------------------------------------------- */

int cq_store_heartbeat(cq_store *s, cq_num_cb cb, void *data)
{
    const char *argv[] = {s->k.workers, s->worker};

    return cq_store_num_script(s, "beat", cq_store_num_new(cb, data, "beat", NULL), 1, 2, argv);
}

static long long read_identity(const redisReply *r)
{
    if (r->type != REDIS_REPLY_INTEGER)
        return -1;
    return r->integer == -1 ? -3 : r->integer == -2 ? -4 : r->integer;
}

int cq_store_identity(cq_store *s, cq_num_cb cb, void *data)
{
    char lease[NUM_TEXT];
    const char *argv[3];

    snprintf(lease, sizeof(lease), "%llu", (unsigned long long)s->cfg->worker.lease_ms);
    argv[0] = s->k.workers;
    argv[1] = s->worker;
    argv[2] = lease;
    return cq_store_num_script(s, "identity", cq_store_num_new(cb, data, "identity", read_identity),
                               1, 3, argv);
}

int cq_store_reclaim(cq_store *s, bool self, cq_num_cb cb, void *data)
{
    char lease[NUM_TEXT];
    const char *argv[7];

    snprintf(lease, sizeof(lease), "%llu", (unsigned long long)s->cfg->worker.lease_ms);
    argv[0] = s->k.workers;
    argv[1] = s->k.retry;
    argv[2] = s->k.holders;
    argv[3] = lease;
    argv[4] = s->k.prefix;
    argv[5] = self ? s->worker : "";
    argv[6] = s->worker;
    return cq_store_num_script(s, "reclaim", cq_store_num_new(cb, data, "reclaim", NULL), 3, 7,
                               argv);
}

/* promote.lua answers {moved, ms until the next is due or -1}. */
static long long read_next(const redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[1]->type != REDIS_REPLY_INTEGER)
        return -1;
    return r->element[1]->integer < 0 ? -3 : r->element[1]->integer;
}

int cq_store_promote(cq_store *s, cq_num_cb cb, void *data)
{
    const char *argv[] = {s->k.delayed, s->k.retry, PROMOTE_BATCH};

    return cq_store_num_script(s, "promote", cq_store_num_new(cb, data, "promote", read_next), 2, 3,
                               argv);
}

int cq_store_leave(cq_store *s, cq_num_cb cb, void *data)
{
    const char *argv[] = {s->k.workers, s->k.inflight, s->k.holders, s->worker};

    return cq_store_num_script(s, "leave", cq_store_num_new(cb, data, "leave", NULL), 3, 4, argv);
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
    if (cq_store_command(s->main, handles_reply, q, 2, argv) != 0) {
        free(q);
        return -ENOMEM;
    }
    return 0;
}

/* Four replies, one answer: each reply comes (or is answered NULL)
 * exactly once, and the last one frees the request. */
typedef struct depths_req depths_req;

typedef struct depth_slot {
    depths_req *q;
    int i;
} depth_slot;

struct depths_req {
    cq_depths_cb cb;
    void *data;
    long long v[CQ_DEPTHS];
    depth_slot slot[CQ_DEPTHS];
    int left;
};

static void depth_done(depths_req *q, int i, const redisReply *reply)
{
    q->v[i] = reply != NULL && reply->type == REDIS_REPLY_INTEGER ? reply->integer : -1;
    if (--q->left > 0)
        return;
    q->cb(q->data, q->v);
    free(q);
}

static void depth_reply(void *data, redisReply *reply)
{
    depth_slot *d = data;

    depth_done(d->q, d->i, reply);
}

int cq_store_depths(cq_store *s, cq_depths_cb cb, void *data)
{
    const char *cmds[CQ_DEPTHS][2] = {
        {"LLEN", s->k.jobs}, {"LLEN", s->k.retry}, {"ZCARD", s->k.delayed}, {"LLEN", s->k.dead}};
    depths_req *q = calloc(1, sizeof(*q));
    int i;

    if (q == NULL)
        return -ENOMEM;
    q->cb = cb;
    q->data = data;
    q->left = CQ_DEPTHS;
    for (i = 0; i < CQ_DEPTHS; i++) {
        q->slot[i].q = q;
        q->slot[i].i = i;
    }
    for (i = 0; i < CQ_DEPTHS; i++) {
        if (cq_store_command(s->main, depth_reply, &q->slot[i], 2, cmds[i]) != 0)
            depth_done(q, i, NULL);
    }
    return 0;
}

typedef struct owned_req {
    cq_owned_cb cb;
    void *data;
} owned_req;

static void owned_reply(void *data, redisReply *reply)
{
    owned_req q = *(owned_req *)data;
    bool *held = NULL;
    size_t i;

    free(data);
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        if (reply != NULL)
            cq_store_log_error("owned", reply);
        q.cb(q.data, false, NULL, 0);
        return;
    }
    held = calloc(reply->elements > 0 ? reply->elements : 1, sizeof(*held));
    if (held == NULL) {
        q.cb(q.data, false, NULL, 0);
        return;
    }
    for (i = 0; i < reply->elements; i++)
        held[i] = reply->element[i]->type == REDIS_REPLY_INTEGER && reply->element[i]->integer == 1;
    q.cb(q.data, true, held, reply->elements);
    free(held);
}

int cq_store_owned(cq_store *s, const char *const *handles, size_t n, cq_owned_cb cb, void *data)
{
    owned_req *q = malloc(sizeof(*q));
    const char **argv = malloc((n + 1) * sizeof(*argv));
    size_t *len = malloc((n + 1) * sizeof(*len));
    size_t i;
    int rc = -ENOMEM;

    if (q == NULL || argv == NULL || len == NULL || n > INT_MAX - 1)
        goto out;
    q->cb = cb;
    q->data = data;
    argv[0] = s->k.inflight;
    len[0] = strlen(argv[0]);
    for (i = 0; i < n; i++) {
        argv[i + 1] = handles[i];
        len[i + 1] = strlen(handles[i]);
    }
    rc = cq_redis_script(s->main, "owned", owned_reply, q, 1, (int)n + 1, argv, len);
    if (rc == 0)
        q = NULL;
out:
    free(q);
    free(argv);
    free(len);
    return rc;
}

typedef struct trim_req {
    void (*cb)(void *data, const cq_results_info *ri);
    void *data;
} trim_req;

static long long int_at(const redisReply *r, size_t i)
{
    return i < r->elements && r->element[i]->type == REDIS_REPLY_INTEGER ? r->element[i]->integer
                                                                         : -1;
}

/* trim.lua answers {length, trimmed, unread, group, lag, pending, ...}. */
static void trim_reply(void *data, redisReply *reply)
{
    trim_req q = *(trim_req *)data;
    cq_results_info ri;
    size_t i;

    free(data);
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3) {
        if (reply != NULL)
            cq_store_log_error("trim", reply);
        q.cb(q.data, NULL);
        return;
    }
    memset(&ri, 0, sizeof(ri));
    ri.length = int_at(reply, 0);
    ri.trimmed = int_at(reply, 1);
    ri.unread = int_at(reply, 2);
    for (i = 3; i + 2 < reply->elements && ri.ngroups < CQ_GROUPS_MAX; i += 3) {
        const redisReply *name = reply->element[i];

        if (name->type != REDIS_REPLY_STRING)
            continue;
        snprintf(ri.groups[ri.ngroups].name, CQ_GROUP_NAME_MAX, "%s", name->str);
        ri.groups[ri.ngroups].lag = int_at(reply, i + 1);
        ri.groups[ri.ngroups].pending = int_at(reply, i + 2);
        ri.ngroups++;
    }
    q.cb(q.data, &ri);
}

int cq_store_trim(cq_store *s, void (*cb)(void *data, const cq_results_info *ri), void *data)
{
    char maxlen[NUM_TEXT];
    const char *argv[3];
    trim_req *q = malloc(sizeof(*q));

    if (q == NULL)
        return -ENOMEM;
    q->cb = cb;
    q->data = data;
    snprintf(maxlen, sizeof(maxlen), "%lld", s->cfg->worker.results_maxlen);
    argv[0] = s->k.results;
    argv[1] = maxlen;
    argv[2] = s->cfg->worker.results_trim == CQ_TRIM_ACKED ? "acked" : "maxlen";
    if (cq_store_script(s, "trim", trim_reply, q, 1, 3, argv) != 0) {
        free(q);
        return -ENOMEM;
    }
    return 0;
}

typedef struct share_req {
    cq_store_share_cb cb;
    void *data;
} share_req;

/* share.lua answers {conc, rate x 1000, burst x 1000, holders, open ms,
 * pause ms}; limit.lua {open ms, pause ms, done}: up to six numbers. */
static void three_reply(void *data, redisReply *reply)
{
    share_req q = *(share_req *)data;
    long long v[CQ_STORE_SHARE_N] = {-1, -1, -1, -1, CQ_STORE_NONE, CQ_STORE_NONE};
    size_t i;

    free(data);
    if (reply != NULL && reply->type == REDIS_REPLY_ARRAY && reply->elements >= 3) {
        for (i = 0; i < reply->elements && i < CQ_STORE_SHARE_N; i++)
            v[i] = reply->element[i]->type == REDIS_REPLY_INTEGER ? reply->element[i]->integer : -1;
    } else if (reply != NULL) {
        cq_store_log_error("share", reply);
    }
    q.cb(q.data, reply != NULL && reply->type == REDIS_REPLY_ARRAY && v[0] >= 0, v);
}

static int three_script(cq_store *s, const char *name, int nkeys, int argc, const char **argv,
                        cq_store_share_cb cb, void *data)
{
    share_req *q = malloc(sizeof(*q));

    if (q == NULL)
        return -ENOMEM;
    q->cb = cb;
    q->data = data;
    if (cq_store_script(s, name, three_reply, q, nkeys, argc, argv) != 0) {
        free(q);
        return -ENOMEM;
    }
    return 0;
}

int cq_store_share(cq_store *s, const char *instance, int want, int inflight,
                   const cq_provider_conf *pc, cq_store_share_cb cb, void *data)
{
    char key[CQ_KEY_MAX], lkey[CQ_KEY_MAX], pkey[CQ_KEY_MAX], w[NUM_TEXT], f[NUM_TEXT], c[NUM_TEXT],
        r[NUM_TEXT], b[NUM_TEXT], ttl[NUM_TEXT];
    const char *argv[10];

    if (cq_keys_share(&s->k, instance, key, sizeof(key)) != 0 ||
        cq_keys_limit(&s->k, instance, lkey, sizeof(lkey)) != 0 ||
        cq_keys_pause(&s->k, instance, pkey, sizeof(pkey)) != 0)
        return -ENAMETOOLONG;
    snprintf(w, sizeof(w), "%d", want);
    snprintf(f, sizeof(f), "%d", inflight);
    snprintf(c, sizeof(c), "%d", pc->concurrency);
    snprintf(r, sizeof(r), "%.6f", pc->rate);
    snprintf(b, sizeof(b), "%d", pc->rate > 0 ? pc->burst : 0);
    snprintf(ttl, sizeof(ttl), "%llu", (unsigned long long)s->cfg->worker.lease_ms);
    argv[0] = key, argv[1] = lkey, argv[2] = pkey, argv[3] = s->holder, argv[4] = w, argv[5] = f;
    argv[6] = c, argv[7] = r, argv[8] = b, argv[9] = ttl;
    return three_script(s, "share", 3, 10, argv, cb, data);
}

int cq_store_limit(cq_store *s, const char *instance, const char *op, uint64_t ms, int threshold,
                   cq_store_share_cb cb, void *data)
{
    char key[CQ_KEY_MAX], pkey[CQ_KEY_MAX], m[NUM_TEXT], th[NUM_TEXT];
    const char *argv[6];

    if (cq_keys_limit(&s->k, instance, key, sizeof(key)) != 0 ||
        cq_keys_pause(&s->k, instance, pkey, sizeof(pkey)) != 0)
        return -ENAMETOOLONG;
    snprintf(m, sizeof(m), "%llu", (unsigned long long)ms);
    snprintf(th, sizeof(th), "%d", threshold);
    argv[0] = key, argv[1] = pkey, argv[2] = op, argv[3] = s->holder, argv[4] = m, argv[5] = th;
    return three_script(s, "limit", 2, 6, argv, cb, data);
}
