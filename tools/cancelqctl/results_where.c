/*
 * results_where.c - `cancelqctl results get` when the outcome is not on the
 * stream (not ended yet, or trimmed): the idempotency record of a key
 * (done with its status and time, or inflight with its worker and lease),
 * or where a job id is now: queued, in the daemon's retry list, delayed,
 * held by a worker, or dead (docs/design.md §3).
 *
 * Every list is read in pages; an item matches when it is a job (or a
 * daemon envelope around one) whose "id" is the one asked for.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cancelq/rfc3339.h"
#include "ctl.h"
#include "dlq.h"

#define PAGE 1000
#define SCAN_COUNT "500"

/* The "id" of a job, or of the job inside a daemon envelope ({"_cq":..,
 * "job": "<text>"}); id must match exactly. */
static bool item_is(const char *text, size_t len, const char *id)
{
    cJSON *root, *inner = NULL;
    const cJSON *job, *v;
    bool yes;

    if (len < strlen(id) || memmem(text, len, id, strlen(id)) == NULL)
        return false; /* cheap first: the id's bytes must be in the text */
    root = cJSON_ParseWithLengthOpts(text, len, NULL, 0);
    job = cJSON_GetObjectItemCaseSensitive(root, "job");
    if (cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(root, "_cq")) && cJSON_IsString(job))
        inner = cJSON_Parse(job->valuestring);
    v = cJSON_GetObjectItemCaseSensitive(inner != NULL ? inner : root, "id");
    yes = cJSON_IsString(v) && strcmp(v->valuestring, id) == 0;
    cJSON_Delete(inner);
    cJSON_Delete(root);
    return yes;
}

/* Is the job in list key?  1 yes, 0 no, -1 error. */
static int in_list(ctl *c, const char *key, const char *id)
{
    char from[24], to[24];

    for (long long at = 0;; at += PAGE) {
        redisReply *r;
        int found = 0;

        snprintf(from, sizeof(from), "%lld", at);
        snprintf(to, sizeof(to), "%lld", at + PAGE - 1);
        if ((r = ctl_cmd(c, 4, "LRANGE", key, from, to)) == NULL)
            return -1;
        for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements && !found; i++)
            found = r->element[i]->type == REDIS_REPLY_STRING &&
                    item_is(r->element[i]->str, r->element[i]->len, id);
        if (found || r->type != REDIS_REPLY_ARRAY || r->elements < PAGE) {
            freeReplyObject(r);
            return found;
        }
        freeReplyObject(r);
    }
}

/* Is it in the delayed zset?  *due gets its due time (Redis ms). */
static int in_delayed(ctl *c, const char *id, int64_t *due)
{
    char cursor[32] = "0";

    do {
        redisReply *r = ctl_cmd(c, 5, "ZSCAN", c->k.delayed, cursor, "COUNT", SCAN_COUNT);
        const redisReply *kv;

        if (r == NULL)
            return -1;
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            freeReplyObject(r);
            return -1;
        }
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        kv = r->element[1];
        for (size_t i = 0; i + 1 < kv->elements; i += 2) {
            if (kv->element[i]->type == REDIS_REPLY_STRING &&
                item_is(kv->element[i]->str, kv->element[i]->len, id)) {
                *due = strtoll(kv->element[i + 1]->str, NULL, 10);
                freeReplyObject(r);
                return 1;
            }
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    return 0;
}

typedef struct held_q {
    const char *id;
    char *worker;
    size_t size;
} held_q;

static int held_by(ctl *c, const redisReply *key, const char *w, size_t wlen, void *data)
{
    held_q *q = data;
    redisReply *h = ctl_cmd(c, 2, "HVALS", key->str);
    bool found = false;

    if (h == NULL)
        return -1;
    for (size_t i = 0; h->type == REDIS_REPLY_ARRAY && i < h->elements && !found; i++)
        found = h->element[i]->type == REDIS_REPLY_STRING &&
                item_is(h->element[i]->str, h->element[i]->len, q->id);
    freeReplyObject(h);
    if (found)
        out_escape(q->worker, q->size, w, wlen, 64);
    return found ? 1 : 0;
}

/* Is it held by a worker?  worker gets the inflight hash's owner. */
static int in_inflight(ctl *c, const char *id, char *worker, size_t size)
{
    held_q q = {id, worker, size};

    return ctl_scan_keys(c, "inflight:*", held_by, &q);
}

static int dead_visit(ctl *c, dlq_entry *e, void *data)
{
    (void)c;
    snprintf(data, 17, "%s", e->id);
    return DLQ_STOP;
}

/* A dead letter of job id?  dead_id gets its dead-letter ID. */
static int in_dead(ctl *c, const char *id, char dead_id[17])
{
    char pattern[2 * CQ_JOB_ID_MAX + 2];
    dlq_filter f;
    size_t n = 0;
    int rc;

    for (const char *s = id; *s != '\0' && n + 2 < sizeof(pattern); s++) {
        if (strchr("*?[]\\", *s) != NULL)
            pattern[n++] = '\\'; /* the filter is a shell pattern: the id literally */
        pattern[n++] = *s;
    }
    pattern[n] = '\0';
    memset(&f, 0, sizeof(f));
    f.job = pattern;
    dead_id[0] = '\0';
    rc = dlq_scan(c, &f, dead_visit, dead_id, NULL);
    return rc != 0 ? -1 : dead_id[0] != '\0';
}

/* Say where job id is; 0 when found somewhere, 1 when nowhere, -1 error. */
static int where_id(ctl *c, const char *id, bool json)
{
    char worker[80] = "", dead_id[17], t[32];
    const char *where = NULL, *detail = "";
    int64_t due = 0;
    int rc;

    if ((rc = in_inflight(c, id, worker, sizeof(worker))) != 0) {
        where = "inflight";
        detail = worker;
    } else if ((rc = in_list(c, c->k.retry, id)) != 0) {
        where = "retry";
    } else if ((rc = in_delayed(c, id, &due)) != 0) {
        where = "delayed";
    } else if ((rc = in_list(c, c->k.jobs, id)) != 0) {
        where = "queued";
    } else if ((rc = in_dead(c, id, dead_id)) != 0) {
        where = "dead";
        detail = dead_id;
    }
    if (rc < 0)
        return -1;
    if (json) {
        cJSON *o = cJSON_CreateObject();

        if (o == NULL || cJSON_AddStringToObject(o, "id", id) == NULL ||
            cJSON_AddStringToObject(o, "where", where != NULL ? where : "unknown") == NULL ||
            cJSON_AddStringToObject(o, "detail", detail) == NULL ||
            cJSON_AddNumberToObject(o, "due_ms", (double)due) == NULL) {
            cJSON_Delete(o);
            return -1;
        }
        out_json(stdout, o, false);
        cJSON_Delete(o);
        return where != NULL ? 0 : 1;
    }
    if (where == NULL)
        return 1;
    cq_format_rfc3339(due, t);
    fputs("job ", stdout);
    out_cell(stdout, id, 0);
    if (strcmp(where, "inflight") == 0)
        printf(": no outcome yet; held by worker %s\n", worker);
    else if (strcmp(where, "retry") == 0)
        printf(": no outcome yet; in %s, to be taken again at once\n", c->k.retry);
    else if (strcmp(where, "delayed") == 0)
        printf(": no outcome yet; in %s, due %s\n", c->k.delayed, t);
    else if (strcmp(where, "queued") == 0)
        printf(": no outcome yet; waiting in %s\n", c->k.jobs);
    else
        printf(": its outcome was trimmed from the stream; dead letter %s (cancelqctl dlq show "
               "%s)\n",
               dead_id, dead_id);
    return 0;
}

/* Print the idempotency record of key; 0 when there is one, 1 when not. */
static int where_key(ctl *c, const char *key, bool json)
{
    char rkey[CQ_KEY_MAX], t[32];
    redisReply *r;
    const char *f[7] = {"state", "id", "status", "finished_at", "worker", "lease_until", "unknown"};
    const char *v[7] = {NULL};
    int rc = 1;

    if (cq_keys_idem(&c->k, key, rkey, sizeof(rkey)) != 0)
        return -1;
    if ((r = ctl_cmd(c, 9, "HMGET", rkey, f[0], f[1], f[2], f[3], f[4], f[5], f[6])) == NULL)
        return -1;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements && i < 7; i++)
        v[i] = r->element[i]->type == REDIS_REPLY_STRING ? r->element[i]->str : NULL;
    if (v[0] != NULL && json) {
        cJSON *o = cJSON_CreateObject();

        for (size_t i = 0; o != NULL && i < 7; i++)
            if (v[i] != NULL && cJSON_AddStringToObject(o, f[i], v[i]) == NULL)
                break;
        if (o != NULL && cJSON_AddStringToObject(o, "record", rkey) != NULL)
            out_json(stdout, o, false);
        cJSON_Delete(o);
        rc = 0;
    } else if (v[0] != NULL && strcmp(v[0], "done") == 0) {
        printf("key %s: carried out; its outcome was trimmed from the stream; idempotency "
               "record: job %s, status %s, finished %s\n",
               key, v[1] != NULL ? v[1] : "?", v[2] != NULL ? v[2] : "?",
               v[3] != NULL ? v[3] : "?");
        rc = 0;
    } else if (v[0] != NULL) {
        cq_format_rfc3339(v[5] != NULL ? strtoll(v[5], NULL, 10) : 0, t);
        printf("key %s: no outcome yet; claimed by job %s, worker %s, claim until %s%s\n", key,
               v[1] != NULL ? v[1] : "?", v[4] != NULL ? v[4] : "?", t,
               v[6] != NULL && strcmp(v[6], "1") == 0
                   ? " (an earlier attempt's outcome is unknown: it is looked up first)"
                   : "");
        rc = 0;
    }
    freeReplyObject(r);
    return rc;
}

int results_where(ctl *c, const char *field, const char *value, bool json)
{
    return strcmp(field, "id") == 0 ? where_id(c, value, json) : where_key(c, value, json);
}
