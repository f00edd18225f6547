/*
 * control_outage.c - POST /_sandbox/outage: switch a provider's endpoints
 * of one kind off (or on again).
 *
 *   {"provider":P|"*","kind":"cancel"|"status"|"token"|"*","status":N,
 *    "retry_after":S|N (optional),"for_ms":N (optional; absent = until cleared)}
 *   {"provider":P|"*","kind":K|"*","clear":true}
 *
 * Answers {"matched":n,"outages":[..]}: how many (provider, kind) pairs the
 * call covered ("*" covers only kinds a provider has endpoints of) and
 * every outage live afterwards.  Routing (routes.c) answers for the outage.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "control.h"
#include "outage.h"
#include "sandbox.h"

/* Parse "provider" and "kind" ("*" = all).  Returns 0, or -1 with r filled. */
static int parse_scope(const char *pname, const char *kname, sb_prov_id *p, sb_kind *k,
                       sb_response *r)
{
    char list[SB_PROV_LIST_MAX];

    if (strcmp(pname, "*") == 0) {
        *p = SB_PROV_ALL;
    } else if (sb_prov_find(pname, strlen(pname), p) != 0) {
        sb_prov_list(list, ", ");
        sb_resp_reject(r, 400, "provider must be %s or \"*\"", list);
        return -1;
    }
    if (strcmp(kname, "*") == 0) {
        *k = SB_KINDS;
    } else if (sb_kind_parse(kname, k) != 0) {
        sb_resp_reject(r, 400, "kind must be %s, %s, %s or \"*\"", sb_kind_name(SB_KIND_CANCEL),
                       sb_kind_name(SB_KIND_STATUS), sb_kind_name(SB_KIND_TOKEN));
        return -1;
    }
    if (*p != SB_PROV_ALL && *k != SB_KINDS && !sb_prov_has_kind(*p, *k)) {
        sb_resp_reject(r, 400, "%s has no %s endpoint", pname, kname);
        return -1;
    }
    return 0;
}

/* Parse status, retry_after and for_ms into o.  Returns 0, or -1 with r
 * filled. */
static int parse_outage(sb_ctx *ctx, const cJSON *doc, sb_outage *o, sb_response *r)
{
    const cJSON *it;
    int64_t v;
    sb_why why;

    memset(o, 0, sizeof(*o));
    if (!sb_json_int(cJSON_GetObjectItemCaseSensitive(doc, "status"), SB_OUTAGE_STATUS_MIN,
                     SB_OUTAGE_STATUS_MAX, &v)) {
        sb_resp_reject(r, 400, "\"status\" must be an integer %d..%d (or \"clear\":true)",
                       SB_OUTAGE_STATUS_MIN, SB_OUTAGE_STATUS_MAX);
        return -1;
    }
    o->status = (int)v;
    it = cJSON_GetObjectItemCaseSensitive(doc, "retry_after");
    if (it != NULL && sb_retry_after_parse(it, o->retry_after, &why) != 0) {
        sb_resp_reject(r, 400, "%s", why.msg);
        return -1;
    }
    it = cJSON_GetObjectItemCaseSensitive(doc, "for_ms");
    if (it != NULL) {
        if (!sb_json_int(it, 1, SB_OUTAGE_FOR_MAX_MS, &v)) {
            sb_resp_reject(r, 400, "\"for_ms\" must be an integer 1..%d", SB_OUTAGE_FOR_MAX_MS);
            return -1;
        }
        o->until_ms = sb_now_ms(ctx) + (uint64_t)v;
    }
    return 0;
}

void sb_control_outage(sb_ctx *ctx, const sb_request *req, sb_response *r)
{
    static const char *const keys[] = {"provider", "kind",  "status", "retry_after",
                                       "for_ms",   "clear", NULL};
    cJSON *doc = sb_body_object(req, keys, r), *o = NULL, *list;
    const cJSON *clear;
    const char *pname, *kname;
    sb_outage outage;
    sb_prov_id p;
    sb_kind k;
    size_t n;

    if (doc == NULL || (pname = sb_need_string(doc, "provider", r)) == NULL ||
        (kname = sb_need_string(doc, "kind", r)) == NULL ||
        parse_scope(pname, kname, &p, &k, r) != 0)
        goto out;
    clear = cJSON_GetObjectItemCaseSensitive(doc, "clear");
    if (clear != NULL && !cJSON_IsBool(clear)) {
        sb_resp_reject(r, 400, "\"clear\" must be true or false");
        goto out;
    }
    if (cJSON_IsTrue(clear) && (cJSON_GetObjectItemCaseSensitive(doc, "status") != NULL ||
                                cJSON_GetObjectItemCaseSensitive(doc, "retry_after") != NULL ||
                                cJSON_GetObjectItemCaseSensitive(doc, "for_ms") != NULL)) {
        sb_resp_reject(r, 400, "\"clear\":true takes only provider and kind");
        goto out;
    }
    if (!cJSON_IsTrue(clear) && parse_outage(ctx, doc, &outage, r) != 0)
        goto out;
    n = sb_outage_set(&ctx->outages, p, k, cJSON_IsTrue(clear) ? NULL : &outage);
    o = cJSON_CreateObject();
    list = sb_outages_json(&ctx->outages, sb_now_ms(ctx));
    if (o == NULL || cJSON_AddNumberToObject(o, "matched", (double)n) == NULL ||
        !cJSON_AddItemToObject(o, "outages", list)) {
        cJSON_Delete(list);
        cJSON_Delete(o);
        o = NULL;
    }
    sb_control_answer(r, o);
out:
    cJSON_Delete(doc);
}
