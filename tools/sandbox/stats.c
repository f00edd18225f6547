/*
 * stats.c - the statistics documents of GET /_sandbox/stats and
 * GET /_sandbox/target; see control.h.
 *
 * {"requests":N,"rejected":N,"dropped":N,"latency_ms":N,
 *  "tokens_minted":{"intronis":n,"keliweb":n},         (providers with a token endpoint)
 *  "targets":{"intronis:bob":{"state":..,"cancel":2,"check":1,"times_ms":[..],"scripted":0}},
 *  "by_status":{"303":n,...},
 *  "by_kind":{"intronis":{"cancel":{"requests":n,"outage":n},"status":{..},"token":{..}},..}}
 *
 * by_kind lists, per provider, the kinds it has endpoints of: requests
 * routed there (path and method matched) and how many of them an outage
 * answered.
 */
#include <stdio.h>

#include "control.h"

cJSON *sb_target_json(sb_prov_id p, const sb_target *t)
{
    int64_t times[SB_TIMES_MAX];
    size_t n = 0, i;
    cJSON *o = cJSON_CreateObject(), *arr;
    sb_state st = t != NULL ? t->state : SB_ST_ACTIVE;
    uint32_t pending = t != NULL ? t->script_len : 0;

    if (o == NULL)
        return NULL;
    if (t != NULL)
        n = sb_target_times(t, times);
    if (cJSON_AddStringToObject(o, "state", sb_state_name(p, st)) == NULL ||
        cJSON_AddNumberToObject(o, "cancel", t != NULL ? t->cancels : 0) == NULL ||
        cJSON_AddNumberToObject(o, "check", t != NULL ? t->checks : 0) == NULL ||
        (arr = cJSON_AddArrayToObject(o, "times_ms")) == NULL ||
        cJSON_AddNumberToObject(o, "scripted", pending) == NULL)
        goto fail;
    for (i = 0; i < n; i++) {
        if (!cJSON_AddItemToArray(arr, cJSON_CreateNumber((double)times[i])))
            goto fail;
    }
    return o;
fail:
    cJSON_Delete(o);
    return NULL;
}

struct targets_arg {
    cJSON *obj;
    bool failed;
};

static void add_target(const char *key, sb_target *t, void *arg)
{
    struct targets_arg *ta = arg;
    cJSON *o;

    if (ta->failed)
        return;
    o = sb_target_json(t->provider, t);
    if (o == NULL || !cJSON_AddItemToObject(ta->obj, key, o)) {
        cJSON_Delete(o);
        ta->failed = true;
    }
}

static bool add_counts(cJSON *root, const sb_stats *st)
{
    cJSON *by = cJSON_AddObjectToObject(root, "by_status");
    char code[12];
    int i;

    if (by == NULL)
        return false;
    for (i = 0; i < SB_STATUS_MAX; i++) {
        if (st->by_status[i] == 0)
            continue;
        snprintf(code, sizeof(code), "%d", i);
        if (cJSON_AddNumberToObject(by, code, (double)st->by_status[i]) == NULL)
            return false;
    }
    return true;
}

static bool add_minted(cJSON *root, const sb_stats *st)
{
    cJSON *minted = cJSON_AddObjectToObject(root, "tokens_minted");
    size_t i, n = sb_prov_count();

    if (minted == NULL)
        return false;
    for (i = 0; i < n; i++) {
        if (sb_prov_has_kind((sb_prov_id)i, SB_KIND_TOKEN) &&
            cJSON_AddNumberToObject(minted, sb_prov_name((sb_prov_id)i),
                                    (double)st->tokens_minted[i]) == NULL)
            return false;
    }
    return true;
}

static bool add_by_kind(cJSON *root, const sb_stats *st)
{
    cJSON *by = cJSON_AddObjectToObject(root, "by_kind"), *prov, *kind;
    size_t i, j, n = sb_prov_count();

    if (by == NULL)
        return false;
    for (i = 0; i < n; i++) {
        prov = cJSON_AddObjectToObject(by, sb_prov_name((sb_prov_id)i));
        if (prov == NULL)
            return false;
        for (j = 0; j < SB_KINDS; j++) {
            if (!sb_prov_has_kind((sb_prov_id)i, (sb_kind)j))
                continue;
            kind = cJSON_AddObjectToObject(prov, sb_kind_name((sb_kind)j));
            if (kind == NULL ||
                cJSON_AddNumberToObject(kind, "requests", (double)st->by_kind[i][j].requests) ==
                    NULL ||
                cJSON_AddNumberToObject(kind, "outage", (double)st->by_kind[i][j].outage) == NULL)
                return false;
        }
    }
    return true;
}

cJSON *sb_stats_json(sb_ctx *ctx)
{
    const sb_stats *st = &ctx->stats;
    cJSON *root = cJSON_CreateObject();
    struct targets_arg ta = {NULL, false};

    if (root == NULL)
        return NULL;
    if (cJSON_AddNumberToObject(root, "requests", (double)st->requests) == NULL ||
        cJSON_AddNumberToObject(root, "rejected", (double)st->rejected) == NULL ||
        cJSON_AddNumberToObject(root, "dropped", (double)st->dropped) == NULL ||
        cJSON_AddNumberToObject(root, "latency_ms", ctx->latency_ms) == NULL ||
        !add_minted(root, st) || (ta.obj = cJSON_AddObjectToObject(root, "targets")) == NULL)
        goto fail;
    sb_store_foreach(ctx->store, add_target, &ta);
    if (ta.failed || !add_counts(root, st) || !add_by_kind(root, st))
        goto fail;
    return root;
fail:
    cJSON_Delete(root);
    return NULL;
}
