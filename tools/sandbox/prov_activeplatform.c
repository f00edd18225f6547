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
 * document the body precisely).  Targets are activeplatform:<rid>/<sid>
 * (decimal).
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

/* Write the target id "<rid>/<sid>" in decimal. */
static void ids_to_id(char out[SB_TARGET_ID_MAX + 1], int64_t rid, int64_t sid)
{
    snprintf(out, SB_TARGET_ID_MAX + 1, "%" PRId64 "/%" PRId64, rid, sid);
}

/* Path ids, token and media-type headers.  need_ctype: POST endpoints.
 * Returns 0 and the key, or -1 with r filled. */
static int check_request(sb_ctx *ctx, const sb_call *c, bool need_ctype, char key[SB_KEY_MAX + 1],
                         sb_response *r)
{
    const char *ct, *accept;
    char id[SB_TARGET_ID_MAX + 1];
    int64_t a, b;

    if (sb_parse_int(c->arg[0].p, c->arg[0].len, 1, INT64_MAX, &a) != 0 ||
        sb_parse_int(c->arg[1].p, c->arg[1].len, 1, INT64_MAX, &b) != 0) {
        refuse(r, 404, "reseller_id and subscription_id must be positive integers");
        return -1;
    }
    switch (sb_auth_check(ctx, c)) {
    case SB_AUTH_OK:
        break;
    case SB_AUTH_MISSING:
        refuse(r, 401, "missing header X-Api-Token");
        return -1;
    default:
        refuse(r, 401, "invalid X-Api-Token");
        return -1;
    }
    ct = sb_req_header(c->req, "Content-Type");
    if (need_ctype && ct == NULL) {
        refuse(r, 400, "missing header Content-Type (want " AP_MEDIA ")");
        return -1;
    }
    if (need_ctype && !sb_media_type_is(ct, AP_MEDIA, false)) {
        refuse(r, 400, "Content-Type must be exactly " AP_MEDIA);
        return -1;
    }
    accept = sb_req_header(c->req, "Accept");
    if (accept == NULL) {
        refuse(r, 400, "missing header Accept (want " AP_MEDIA ")");
        return -1;
    }
    if (!sb_media_type_is(accept, AP_MEDIA, false)) {
        refuse(r, 400, "Accept must be exactly " AP_MEDIA);
        return -1;
    }
    ids_to_id(id, a, b);
    if (sb_target_key(c->prov, id, key) != 0) {
        sb_resp_json(r, 500, NULL); /* cannot happen: two int64 fit */
        return -1;
    }
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

/* delete_operation (stop false) and stop_operation. */
static void operation(sb_ctx *ctx, const sb_call *c, bool stop, sb_response *r)
{
    char key[SB_KEY_MAX + 1];
    sb_target *t;
    sb_why why;
    bool allowed;

    if (check_request(ctx, c, true, key, r) != 0)
        return;
    if (check_body(c->req, stop, &why) != 0) {
        refuse(r, 400, "%s", why.msg);
        return;
    }
    if (sb_cancel_begin(ctx, c->prov, key, stop ? &stop_ops : &delete_ops, NULL, &t, r) != 0)
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

static void delete_operation(sb_ctx *ctx, const sb_call *c, sb_response *r)
{
    operation(ctx, c, false, r);
}

static void stop_operation(sb_ctx *ctx, const sb_call *c, sb_response *r)
{
    operation(ctx, c, true, r);
}

static void status(sb_ctx *ctx, const sb_call *c, sb_response *r)
{
    char key[SB_KEY_MAX + 1];
    const char *id;
    sb_target *t;
    cJSON *o, *data, *attrs;

    if (check_request(ctx, c, false, key, r) != 0)
        return;
    if (sb_check_begin(ctx, c->prov, key, &t, r) != 0)
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
        cJSON_AddStringToObject(attrs, "status", sb_state_name(c->prov, t->state)) == NULL) {
        cJSON_Delete(o);
        o = NULL;
    }
    sb_resp_json(r, 200, o);
}

static void outage(sb_response *r, sb_kind kind, int status, const char *message)
{
    (void)kind;
    jsonapi_error(r, status, message, "outage simulated by the sandbox");
}

/* "<reseller_id>/<subscription_id>", positive integers. */
static int canon_id(const char *id, char out[SB_TARGET_ID_MAX + 1], sb_why *why)
{
    const char *slash = strchr(id, '/');
    int64_t a, b;

    if (slash == NULL || sb_parse_int(id, (size_t)(slash - id), 1, INT64_MAX, &a) != 0 ||
        sb_parse_int(slash + 1, strlen(slash + 1), 1, INT64_MAX, &b) != 0)
        return sb_why_set(why, "activeplatform target must be <reseller_id>/<subscription_id>"
                               " (positive integers)");
    ids_to_id(out, a, b);
    return 0;
}

#define SUBSCRIPTION "/api/v3/resellers/{rid}/subscriptions/{sid}"

static const sb_endpoint endpoints[] = {
    {HTTP_POST, SUBSCRIPTION "/delete_operation", SB_KIND_CANCEL, delete_operation,
     "Content-Type and Accept " AP_MEDIA ", no body (or {})\n"
     "-> 200, or 403 when the state does not allow it"},
    {HTTP_POST, SUBSCRIPTION "/stop_operation", SB_KIND_CANCEL, stop_operation,
     "{\"data\":{\"attributes\":{\"reason\":..,\"comment\":..}}}  -> 200, or 403"},
    {HTTP_GET, SUBSCRIPTION, SB_KIND_STATUS, status,
     "Accept " AP_MEDIA "  -> {data: {id, attributes: {status}}}"},
};

static const sb_state_alias aliases[] = {
    {"stopped", SB_ST_STOPPED},
    {"deleted", SB_ST_CANCELLED},
    {NULL, SB_ST_ACTIVE},
};

const sb_prov sb_prov_activeplatform = {
    .name = "activeplatform",
    .title = "ActivePlatform API v3",
    .endpoints = endpoints,
    .nendpoints = SB_ARRAY_LEN(endpoints),
    .auth_header = "X-Api-Token",
    .id_syntax = "<rid>/<sid>",
    .canon_id = canon_id,
    .state_names = {[SB_ST_ACTIVE] = "Active",
                    [SB_ST_STOPPED] = "Stopped",
                    [SB_ST_CANCELLED] = "Deleted",
                    [SB_ST_MISSING] = "missing"},
    .state_aliases = aliases,
    .outage = outage,
};
