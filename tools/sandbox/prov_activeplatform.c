/*
 * prov_activeplatform.c - ActivePlatform API v3 endpoints:
 *
 *   POST /api/v3/resellers/{rid}/subscriptions/{sid}/delete_operation  (empty body)
 *   POST /api/v3/resellers/{rid}/subscriptions/{sid}/stop_operation
 *        {"data":{"attributes":{"reason":str,"comment":str}}}
 *   GET  /api/v3/resellers/{rid}/subscriptions/{sid}
 *
 * Success is 200 with an empty body; an operation the subscription's state
 * does not allow is 403 "This action is forbidden".  Errors are JSON:API
 * {"errors":[{"status":"403","title":..,"detail":..}]} (the vendor does not
 * document the body precisely).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <http_parser.h>

#include "sandbox.h"

#define AP_MEDIA "application/vnd.api+json"

/* {"errors":[{"status":"<status>","title":title[,"detail":detail]}]} */
static void jsonapi_error(sb_response *r, int status, const char *title, const char *detail)
{
    cJSON *o = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(o, "errors");
    cJSON *e = cJSON_CreateObject();
    char st[12];

    snprintf(st, sizeof(st), "%d", status);
    if (arr == NULL || e == NULL || !cJSON_AddItemToArray(arr, e)) {
        cJSON_Delete(e);
        sb_resp_json(r, status, NULL);
        cJSON_Delete(o);
        return;
    }
    if (cJSON_AddStringToObject(e, "status", st) == NULL ||
        cJSON_AddStringToObject(e, "title", title) == NULL ||
        (detail != NULL && cJSON_AddStringToObject(e, "detail", detail) == NULL)) {
        cJSON_Delete(o);
        o = NULL;
    }
    sb_resp_json(r, status, o);
}

static void refuse(sb_response *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void refuse(sb_response *r, int status, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(r->why.msg, sizeof(r->why.msg), fmt, ap);
    va_end(ap);
    r->rejected = true;
    jsonapi_error(r, status, http_status_str((enum http_status)status), r->why.msg);
}

static void scripted_error(sb_response *r, int status, const char *message)
{
    jsonapi_error(r, status, message, "scripted by the sandbox");
}

/* Path ids, token and media-type headers.  need_ctype: POST endpoints.
 * Returns 0 and the key, or -1 with r filled. */
static int check_request(sb_ctx *ctx, const sb_request *req, sb_seg rid, sb_seg sid,
                         bool need_ctype, char key[SB_KEY_MAX + 1], sb_response *r)
{
    const char *tok = sb_req_header(req, "X-Api-Token"), *ct, *accept;
    int64_t a, b;

    if (sb_parse_int(rid.p, rid.len, 1, INT64_MAX, &a) != 0 ||
        sb_parse_int(sid.p, sid.len, 1, INT64_MAX, &b) != 0) {
        refuse(r, 404, "reseller_id and subscription_id must be positive integers");
        return -1;
    }
    if (tok == NULL) {
        refuse(r, 401, "missing header X-Api-Token");
        return -1;
    }
    if (!sb_token_ok(ctx, SB_ACTIVEPLATFORM, tok)) {
        refuse(r, 401, "invalid X-Api-Token");
        return -1;
    }
    ct = sb_req_header(req, "Content-Type");
    if (need_ctype && ct == NULL) {
        refuse(r, 400, "missing header Content-Type (want " AP_MEDIA ")");
        return -1;
    }
    if (need_ctype && !sb_media_type_is(ct, AP_MEDIA, false)) {
        refuse(r, 400, "Content-Type must be exactly " AP_MEDIA);
        return -1;
    }
    accept = sb_req_header(req, "Accept");
    if (accept == NULL) {
        refuse(r, 400, "missing header Accept (want " AP_MEDIA ")");
        return -1;
    }
    if (!sb_media_type_is(accept, AP_MEDIA, false)) {
        refuse(r, 400, "Accept must be exactly " AP_MEDIA);
        return -1;
    }
    sb_key_activeplatform(key, a, b);
    return 0;
}

/* True when obj has exactly the members k1 and k2, both strings. */
static bool only_strings(const cJSON *obj, const char *k1, const char *k2)
{
    const cJSON *it;
    bool seen1 = false, seen2 = false;

    cJSON_ArrayForEach (it, obj) {
        if (!cJSON_IsString(it))
            return false;
        if (strcmp(it->string, k1) == 0 && !seen1)
            seen1 = true;
        else if (strcmp(it->string, k2) == 0 && !seen2)
            seen2 = true;
        else
            return false;
    }
    return seen1 && seen2;
}

/* The single member of obj, when it is named name and is an object. */
static const cJSON *only_object(const cJSON *obj, const char *name)
{
    const cJSON *c = cJSON_IsObject(obj) ? obj->child : NULL;

    if (c == NULL || c->next != NULL || strcmp(c->string, name) != 0 || !cJSON_IsObject(c))
        return NULL;
    return c;
}

/* stop: {"data":{"attributes":{"reason":str,"comment":str}}}; delete: empty,
 * blanks or {}. */
static int check_body(const sb_request *req, bool stop, sb_why *why)
{
    const char *end = NULL;
    const cJSON *attrs;
    cJSON *doc;
    int rc = 0;

    if (!stop && req->body_len == strspn(req->body, " \t\r\n"))
        return 0;
    doc = cJSON_ParseWithLengthOpts(req->body, req->body_len, &end, 0);
    if (doc == NULL)
        return sb_why_set(why, stop ? "body is not valid JSON" : "delete takes no body (or {})");
    end += strspn(end, " \t\r\n");
    if (end != req->body + req->body_len)
        rc = sb_why_set(why, "trailing data after the JSON body");
    else if (!stop && !(cJSON_IsObject(doc) && doc->child == NULL))
        rc = sb_why_set(why, "delete takes no body (or {})");
    else if (stop) {
        attrs = only_object(only_object(doc, "data"), "attributes");
        if (attrs == NULL || !only_strings(attrs, "reason", "comment"))
            rc = sb_why_set(why, "body must be exactly {\"data\":{\"attributes\":"
                                 "{\"reason\":string,\"comment\":string}}}");
    }
    cJSON_Delete(doc);
    return rc;
}

static void delete_effect(sb_target *t)
{
    t->state = SB_ST_CANCELLED;
}

static void stop_effect(sb_target *t)
{
    if (t->state != SB_ST_CANCELLED)
        t->state = SB_ST_STOPPED;
}

static void op_success(sb_ctx *ctx, sb_response *r, int status, const void *arg)
{
    (void)ctx;
    (void)arg;
    sb_resp_empty(r, status);
}

static const sb_cancel_ops delete_ops = {delete_effect, op_success, scripted_error};
static const sb_cancel_ops stop_ops = {stop_effect, op_success, scripted_error};

void sb_ap_operation(sb_ctx *ctx, const sb_request *req, sb_seg rid, sb_seg sid, bool stop,
                     sb_response *r)
{
    char key[SB_KEY_MAX + 1];
    sb_target *t;
    sb_why why;
    bool allowed;

    if (check_request(ctx, req, rid, sid, true, key, r) != 0)
        return;
    if (check_body(req, stop, &why) != 0) {
        refuse(r, 400, "%s", why.msg);
        return;
    }
    if (sb_cancel_begin(ctx, SB_ACTIVEPLATFORM, key, stop ? &stop_ops : &delete_ops, NULL, &t, r) !=
        0)
        return;
    if (t->state == SB_ST_MISSING) {
        jsonapi_error(r, 404, "Not Found", "no such subscription");
        return;
    }
    allowed = t->state == SB_ST_ACTIVE || (!stop && t->state == SB_ST_STOPPED);
    if (!allowed) {
        jsonapi_error(r, 403, "This action is forbidden", NULL);
        return;
    }
    (stop ? stop_effect : delete_effect)(t);
    sb_resp_empty(r, 200);
}

void sb_ap_status(sb_ctx *ctx, const sb_request *req, sb_seg rid, sb_seg sid, sb_response *r)
{
    char key[SB_KEY_MAX + 1];
    const char *id;
    sb_target *t;
    cJSON *o, *data, *attrs;

    if (check_request(ctx, req, rid, sid, false, key, r) != 0)
        return;
    if (sb_check_begin(ctx, SB_ACTIVEPLATFORM, key, &t, r) != 0)
        return;
    if (t->state == SB_ST_MISSING) {
        jsonapi_error(r, 404, "Not Found", "no such subscription");
        return;
    }
    id = strchr(key, '/') + 1; /* canonical decimal subscription id */
    o = cJSON_CreateObject();
    data = cJSON_AddObjectToObject(o, "data");
    if (data == NULL || cJSON_AddStringToObject(data, "type", "subscriptions") == NULL ||
        cJSON_AddStringToObject(data, "id", id) == NULL ||
        (attrs = cJSON_AddObjectToObject(data, "attributes")) == NULL ||
        cJSON_AddStringToObject(attrs, "status", sb_state_name(SB_ACTIVEPLATFORM, t->state)) ==
            NULL) {
        cJSON_Delete(o);
        o = NULL;
    }
    sb_resp_json(r, 200, o);
}
