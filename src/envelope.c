/*
 * envelope.c - job envelopes (see envelope.h).
 */
#include "cancelq/envelope.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

static int64_t num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 0 ||
        v->valuedouble > 9007199254740991.0)
        return 0;
    return (int64_t)v->valuedouble;
}

static void read_history(cq_envelope *env, const cJSON *h)
{
    const cJSON *a;

    if (!cJSON_IsArray(h))
        return; /* Lua's cjson prints an empty array as {} */
    cJSON_ArrayForEach (a, h) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(a, "error");

        cq_envelope_add_attempt(env, num(a, "at"), (long)num(a, "http_status"),
                                cJSON_IsString(e) ? e->valuestring : "");
    }
}

static void read_meta(cq_envelope *env, const cJSON *m)
{
    const cJSON *tok = cJSON_GetObjectItemCaseSensitive(m, "tok");
    const cJSON *unk = cJSON_GetObjectItemCaseSensitive(m, "unknown");

    int64_t attempts = num(m, "attempts");

    /* bounded: only the daemon writes envelopes, but a count is a count */
    env->attempts = attempts > CQ_MAX_ATTEMPTS_LIMIT ? CQ_MAX_ATTEMPTS_LIMIT : (int)attempts;
    env->first_ms = num(m, "first_ms");
    if (cJSON_IsString(tok))
        snprintf(env->tok, sizeof(env->tok), "%s", tok->valuestring);
    env->unknown = cJSON_IsTrue(unk) || (cJSON_IsNumber(unk) && unk->valuedouble != 0);
    read_history(env, cJSON_GetObjectItemCaseSensitive(m, "history"));
}

int cq_envelope_parse(const char *item, size_t len, cq_envelope *env)
{
    cJSON *root = NULL, *meta, *job;
    int rc = 0;

    memset(env, 0, sizeof(*env));
    env->job = item;
    env->job_len = len;
    /* cheap test first: bare jobs are the common case */
    if (len < 8 || memmem(item, len, "\"_cq\"", 5) == NULL)
        return 0;
    root = cJSON_ParseWithLengthOpts(item, len, NULL, 0);
    meta = cJSON_GetObjectItemCaseSensitive(root, "_cq");
    job = cJSON_GetObjectItemCaseSensitive(root, "job");
    if (!cJSON_IsObject(meta) || !cJSON_IsString(job))
        goto out; /* a bare job that mentions "_cq" somewhere */
    env->owned = strdup(job->valuestring);
    if (env->owned == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    env->job = env->owned;
    env->job_len = strlen(env->owned);
    read_meta(env, meta);
out:
    cJSON_Delete(root);
    return rc;
}

void cq_envelope_bare(const char *item, size_t len, cq_envelope *env)
{
    memset(env, 0, sizeof(*env));
    env->job = item;
    env->job_len = len;
}

int cq_envelope_unwrap_job(cq_envelope *env)
{
    cJSON *root, *job;
    char *inner;

    if (env->job_len < 8 || memmem(env->job, env->job_len, "\"_cq\"", 5) == NULL)
        return 0;
    root = cJSON_ParseWithLengthOpts(env->job, env->job_len, NULL, 0);
    job = cJSON_GetObjectItemCaseSensitive(root, "job");
    if (!cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(root, "_cq")) || !cJSON_IsString(job)) {
        cJSON_Delete(root);
        return 0; /* a job that mentions "_cq" somewhere: the job parser judges it */
    }
    inner = strdup(job->valuestring);
    cJSON_Delete(root);
    if (inner == NULL)
        return -ENOMEM;
    free(env->owned);
    env->owned = inner;
    env->job = inner;
    env->job_len = strlen(inner);
    env->unknown = true;
    return 1;
}

void cq_envelope_clear(cq_envelope *env)
{
    free(env->owned);
    env->owned = NULL;
    env->job = NULL;
    free(env->history);
    env->history = NULL;
    env->nhistory = env->hcap = 0;
}

/* Room for one more attempt: 0, or -ENOMEM (then the oldest gives way, or
 * with no array at all the attempt is not kept: only history is lost). */
static int history_room(cq_envelope *env)
{
    size_t cap = env->hcap > 0 ? env->hcap * 2 : 1;
    cq_attempt *p;

    if (env->nhistory < env->hcap || env->hcap == CQ_HISTORY_MAX)
        return 0;
    if (cap > CQ_HISTORY_MAX)
        cap = CQ_HISTORY_MAX;
    p = realloc(env->history, cap * sizeof(*p));
    if (p == NULL)
        return -ENOMEM;
    env->history = p;
    env->hcap = cap;
    return 0;
}

void cq_envelope_add_attempt(cq_envelope *env, int64_t at_ms, long http_status, const char *error)
{
    cq_attempt *a;

    if (history_room(env) != 0 && env->hcap == 0)
        return;
    if (env->nhistory == env->hcap) {
        memmove(env->history, env->history + 1, sizeof(env->history[0]) * (env->hcap - 1));
        env->nhistory--;
    }
    a = &env->history[env->nhistory++];
    a->at_ms = at_ms;
    a->http_status = http_status;
    snprintf(a->error, sizeof(a->error), "%s", error != NULL ? error : "");
}

static cJSON *history_json(const cq_envelope *env)
{
    cJSON *h = cJSON_CreateArray();
    size_t i;

    for (i = 0; h != NULL && i < env->nhistory; i++) {
        cJSON *a = cJSON_CreateObject();

        if (a == NULL || !cJSON_AddItemToArray(h, a) ||
            !cJSON_AddNumberToObject(a, "at", (double)env->history[i].at_ms) ||
            !cJSON_AddNumberToObject(a, "http_status", (double)env->history[i].http_status) ||
            !cJSON_AddStringToObject(a, "error", env->history[i].error)) {
            cJSON_Delete(h);
            return NULL;
        }
    }
    return h;
}

char *cq_envelope_build(const cq_envelope *env)
{
    cJSON *root = cJSON_CreateObject(), *meta, *h = NULL;
    char *out = NULL, *job = strndup(env->job, env->job_len);

    if (root == NULL || job == NULL)
        goto out;
    meta = cJSON_AddObjectToObject(root, "_cq"); /* owned by root */
    h = history_json(env);
    if (meta == NULL || h == NULL || !cJSON_AddItemToObject(meta, "history", h))
        goto out;
    h = NULL; /* owned by meta now */
    if (!cJSON_AddNumberToObject(meta, "attempts", env->attempts) ||
        !cJSON_AddNumberToObject(meta, "first_ms", (double)env->first_ms) ||
        !cJSON_AddStringToObject(meta, "tok", env->tok) ||
        !cJSON_AddNumberToObject(meta, "unknown", env->unknown ? 1 : 0) ||
        !cJSON_AddStringToObject(root, "job", job))
        goto out;
    out = cJSON_PrintUnformatted(root);
out:
    cJSON_Delete(h);
    free(job);
    cJSON_Delete(root);
    return out;
}
