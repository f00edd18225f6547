/*
 * control.c - the control API under /_sandbox/ (no auth, JSON bodies):
 *
 *   POST /_sandbox/script   {"target":T,"responses":[...],"replace":bool}
 *   POST /_sandbox/state    {"target":T,"state":"active"|"cancelled"|"missing"|...}
 *   POST /_sandbox/latency  {"ms":N}
 *   POST /_sandbox/revoke   {"provider":P}
 *   POST /_sandbox/token    {"provider":P,"token":S}   (replace a static token)
 *   POST /_sandbox/outage   {"provider":P,"kind":K,"status":N,...}   (control_outage.c)
 *   GET  /_sandbox/outage
 *   POST /_sandbox/reset
 *   GET  /_sandbox/stats
 *   GET  /_sandbox/target?name=T
 *
 * Every body is checked strictly (unknown keys are refused), so a typo in a
 * test fails loudly instead of being ignored.  Script entries are parsed in
 * control_script.c.  Provider, target and state names are the provider
 * table's (prov.h).
 */
#include <errno.h>
#include <http_parser.h>
#include <stdio.h>
#include <string.h>

#include "control.h"
#include "form.h"
#include "sandbox.h"

cJSON *sb_body_object(const sb_request *req, const char *const *allowed, sb_response *r)
{
    const char *end = NULL;
    cJSON *doc, *it;
    size_t i;

    if (req->body_len == strspn(req->body, " \t\r\n"))
        doc = cJSON_CreateObject();
    else
        doc = cJSON_ParseWithLengthOpts(req->body, req->body_len, &end, 0);
    if (doc == NULL || !cJSON_IsObject(doc)) {
        cJSON_Delete(doc);
        sb_resp_reject(r, 400, "body must be a JSON object");
        return NULL;
    }
    cJSON_ArrayForEach (it, doc) {
        for (i = 0; allowed[i] != NULL && strcmp(it->string, allowed[i]) != 0; i++)
            ;
        if (allowed[i] == NULL) {
            sb_resp_reject(r, 400, "unknown key \"%s\"", it->string);
            cJSON_Delete(doc);
            return NULL;
        }
    }
    return doc;
}

const char *sb_need_string(const cJSON *o, const char *k, sb_response *r)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);

    if (!cJSON_IsString(it)) {
        sb_resp_reject(r, 400, "\"%s\" must be a string", k);
        return NULL;
    }
    return it->valuestring;
}

void sb_control_answer(sb_response *r, cJSON *o)
{
    sb_resp_json(r, 200, o);
}

static void do_script(sb_ctx *ctx, const sb_request *req, sb_response *r)
{
    static const char *const keys[] = {"target", "responses", "replace", NULL};
    cJSON *doc = sb_body_object(req, keys, r), *o;
    const cJSON *replace;
    sb_script_list list = {0};
    const char *name;
    sb_target *t = NULL;
    sb_prov_id p;
    bool wild;
    char key[SB_KEY_MAX + 1];
    sb_why why;

    if (doc == NULL || (name = sb_need_string(doc, "target", r)) == NULL)
        goto out;
    if (sb_target_parse(name, &p, &wild, key, &why) != 0) {
        sb_resp_reject(r, 400, "%s", why.msg);
        goto out;
    }
    replace = cJSON_GetObjectItemCaseSensitive(doc, "replace");
    if (replace != NULL && !cJSON_IsBool(replace)) {
        sb_resp_reject(r, 400, "\"replace\" must be true or false");
        goto out;
    }
    if (sb_script_list_parse(cJSON_GetObjectItemCaseSensitive(doc, "responses"), &list, &why) !=
        0) {
        sb_resp_reject(r, 400, "%s", why.msg);
        goto out;
    }
    if (!wild && sb_store_get(ctx->store, key, p, &t) != 0) {
        sb_resp_reject(r, 503, "target table full");
        goto out;
    }
    if (cJSON_IsTrue(replace))
        sb_store_script_clear(ctx->store, t, p);
    if (sb_store_script_len(ctx->store, t, p) + list.n > SB_SCRIPT_QUEUE_MAX) {
        sb_resp_reject(r, 400, "at most %d scripted answers may wait per target",
                       SB_SCRIPT_QUEUE_MAX);
        goto out;
    }
    sb_script_list_move(&list, ctx->store, t, p);
    o = sb_json_obj1("target", name);
    if (o != NULL &&
        cJSON_AddNumberToObject(o, "pending", sb_store_script_len(ctx->store, t, p)) == NULL) {
        cJSON_Delete(o);
        o = NULL;
    }
    sb_control_answer(r, o);
out:
    sb_script_list_free(&list);
    cJSON_Delete(doc);
}

static void do_state(sb_ctx *ctx, const sb_request *req, sb_response *r)
{
    static const char *const keys[] = {"target", "state", NULL};
    cJSON *doc = sb_body_object(req, keys, r), *o;
    const char *name, *state;
    char key[SB_KEY_MAX + 1];
    sb_prov_id p;
    sb_target *t;
    sb_state st;
    sb_why why;
    bool wild;

    if (doc == NULL || (name = sb_need_string(doc, "target", r)) == NULL ||
        (state = sb_need_string(doc, "state", r)) == NULL)
        goto out;
    if (sb_target_parse(name, &p, &wild, key, &why) != 0 || wild) {
        sb_resp_reject(r, 400, "%s", wild ? "state needs one target, not a wildcard" : why.msg);
        goto out;
    }
    if (sb_state_parse(p, state, &st, &why) != 0) {
        sb_resp_reject(r, 400, "%s", why.msg);
        goto out;
    }
    if (sb_store_get(ctx->store, key, p, &t) != 0) {
        sb_resp_reject(r, 503, "target table full");
        goto out;
    }
    t->state = st;
    o = sb_json_obj1("target", key);
    if (o != NULL && cJSON_AddStringToObject(o, "state", sb_state_name(p, st)) == NULL) {
        cJSON_Delete(o);
        o = NULL;
    }
    sb_control_answer(r, o);
out:
    cJSON_Delete(doc);
}

static void do_latency(sb_ctx *ctx, const sb_request *req, sb_response *r)
{
    static const char *const keys[] = {"ms", NULL};
    cJSON *doc = sb_body_object(req, keys, r), *o;
    int64_t ms;

    if (doc == NULL)
        return;
    if (!sb_json_int(cJSON_GetObjectItemCaseSensitive(doc, "ms"), 0, SB_DELAY_MAX_MS, &ms)) {
        sb_resp_reject(r, 400, "\"ms\" must be an integer 0..%d", SB_DELAY_MAX_MS);
    } else {
        ctx->latency_ms = (uint32_t)ms;
        o = cJSON_CreateObject();
        if (cJSON_AddNumberToObject(o, "ms", (double)ms) == NULL) {
            cJSON_Delete(o);
            o = NULL;
        }
        sb_control_answer(r, o);
    }
    cJSON_Delete(doc);
}

/* {"provider":P[,"token":S]}: revoke minted tokens, or set the static one. */
static void do_provider_token(sb_ctx *ctx, const sb_request *req, bool set, sb_response *r)
{
    static const char *const revoke_keys[] = {"provider", NULL};
    static const char *const token_keys[] = {"provider", "token", NULL};
    cJSON *doc = sb_body_object(req, set ? token_keys : revoke_keys, r), *o;
    const char *name, *tok = NULL;
    char list[SB_PROV_LIST_MAX];
    sb_prov_id p;
    size_t n = 0;

    if (doc == NULL || (name = sb_need_string(doc, "provider", r)) == NULL ||
        (set && (tok = sb_need_string(doc, "token", r)) == NULL))
        goto out;
    if (sb_prov_find(name, strlen(name), &p) != 0) {
        sb_prov_list(list, " or ");
        sb_resp_reject(r, 400, "provider must be %s", list);
        goto out;
    }
    if (set && !sb_is_token(tok, SB_STATIC_TOKEN_MAX)) {
        sb_resp_reject(r, 400, "token must be 1..%d printable characters without spaces",
                       SB_STATIC_TOKEN_MAX);
        goto out;
    }
    if (set)
        memcpy(ctx->static_token[p], tok, strlen(tok) + 1);
    else
        n = sb_tokens_revoke(ctx->tokens, p);
    o = sb_json_obj1("provider", name);
    if (o != NULL && !set && cJSON_AddNumberToObject(o, "revoked", (double)n) == NULL) {
        cJSON_Delete(o);
        o = NULL;
    }
    sb_control_answer(r, o);
out:
    cJSON_Delete(doc);
}

static void do_reset(sb_ctx *ctx, const sb_request *req, sb_response *r)
{
    static const char *const keys[] = {NULL};
    cJSON *doc = sb_body_object(req, keys, r);

    if (doc == NULL)
        return;
    cJSON_Delete(doc);
    sb_ctx_reset(ctx);
    sb_control_answer(r, sb_json_obj1("reset", "ok"));
}

static void do_target(sb_ctx *ctx, const sb_request *req, sb_response *r)
{
    sb_fields f = {0};
    const char *name;
    char key[SB_KEY_MAX + 1];
    sb_prov_id p;
    sb_why why;
    bool wild;
    cJSON *o;

    if (sb_form_parse(req->query, strlen(req->query), &f, &why) != 0) {
        sb_resp_reject(r, 400, "bad query string: %s", why.msg);
        return;
    }
    name = sb_fields_get(&f, "name");
    if (name == NULL) {
        sb_resp_reject(r, 400, "missing query parameter name=<target>");
    } else if (sb_target_parse(name, &p, &wild, key, &why) != 0 || wild) {
        sb_resp_reject(r, 400, "%s", wild ? "name must be one target, not a wildcard" : why.msg);
    } else {
        o = sb_target_json(p, sb_store_find(ctx->store, key));
        if (o != NULL && cJSON_AddStringToObject(o, "target", key) == NULL) {
            cJSON_Delete(o);
            o = NULL;
        }
        sb_control_answer(r, o);
    }
    sb_fields_free(&f);
}

/* Route one control request; POST endpoints first, then GET ones. */
void sb_control(sb_ctx *ctx, const sb_request *req, sb_seg name, sb_response *r)
{
    bool post = req->method == HTTP_POST, get = req->method == HTTP_GET;

    if (post && sb_seg_is(name, "script"))
        do_script(ctx, req, r);
    else if (post && sb_seg_is(name, "state"))
        do_state(ctx, req, r);
    else if (post && sb_seg_is(name, "latency"))
        do_latency(ctx, req, r);
    else if (post && sb_seg_is(name, "revoke"))
        do_provider_token(ctx, req, false, r);
    else if (post && sb_seg_is(name, "token"))
        do_provider_token(ctx, req, true, r);
    else if (post && sb_seg_is(name, "outage"))
        sb_control_outage(ctx, req, r);
    else if (get && sb_seg_is(name, "outage"))
        sb_control_answer(r, sb_outages_json(&ctx->outages, sb_now_ms(ctx)));
    else if (post && sb_seg_is(name, "reset"))
        do_reset(ctx, req, r);
    else if (get && sb_seg_is(name, "stats"))
        sb_control_answer(r, sb_stats_json(ctx));
    else if (get && sb_seg_is(name, "target"))
        do_target(ctx, req, r);
    else
        sb_resp_reject(r, 404, "no such control endpoint (or wrong method): %.*s", (int)name.len,
                       name.p);
}
