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
    long long base;
    size_t i, n = 0;

    free(data);
    if (reply == NULL) {
        q.cb(q.data, -ECANCELED, NULL, 0);
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
        reply->element[0]->type != REDIS_REPLY_INTEGER) {
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
    const char *argv[7];
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
    argv[5] = num;
    argv[6] = s->worker;
    if (cq_store_script(s, "fetch", fetch_reply, q, 5, 7, argv) != 0) {
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
    argv[1] = s->k.jobs;
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
    const char *argv[] = {s->k.delayed, s->k.jobs, PROMOTE_BATCH};

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
    if (cq_store_command(s->main, depth0, q, 2, a1) != 0) {
        free(q);
        return -ENOMEM;
    }
    if (cq_store_command(s->main, depth1, q, 2, a2) != 0)
        depth_reply(q, 1, NULL);
    if (cq_store_command(s->main, depth2, q, 2, a3) != 0)
        depth_reply(q, 2, NULL);
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
