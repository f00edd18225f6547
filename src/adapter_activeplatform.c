/*
 * adapter_activeplatform.c - ActivePlatform API v3 (seeds/001, seeds/002,
 * PROVIDERS.md).
 *
 *   delete_subscription  POST {base}/api/v3/resellers/{rid}/subscriptions/{sid}/delete_operation
 *                        no body
 *   stop_subscription    POST .../stop_operation
 *                        {"data":{"attributes":{"reason":..,"comment":..}}}
 *   success: 200 (empty body).  403 "This action is forbidden" means the
 *   operation is not available now: the Get subscription lookup
 *   (GET .../subscriptions/{sid}) tells whether it is because the work is
 *   already done.
 *
 * Both operations only initiate the work, so "stopping"/"deleting" count as
 * done as much as "stopped"/"deleted".
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "cancelq/adapter.h"
#include "cancelq/json.h"
#include "json_util.h"

/* IDs are integers in the vendor's API; the bound is the largest integer a
 * JSON number carries exactly (2^53 - 1), so no ID is refused for size and
 * none is silently rounded. */
#define AP_ID_MAX INT64_C(9007199254740991)
#define AP_TEXT_MAX 1000 /* reason, comment */
#define AP_MEDIA "application/vnd.api+json"

typedef struct ap_params {
    int64_t reseller_id;
    int64_t subscription_id;
    const char *reason;  /* borrowed; stop only */
    const char *comment; /* borrowed; stop only */
} ap_params;

/* Params --------------------------------------------------------------- */

static int check_known_keys(const cJSON *params, bool stop, cq_err *err)
{
    const cJSON *item;

    cJSON_ArrayForEach (item, params) {
        const char *k = item->string != NULL ? item->string : "?";

        if (strcmp(k, "reseller_id") == 0 || strcmp(k, "subscription_id") == 0)
            continue;
        if (stop && (strcmp(k, "reason") == 0 || strcmp(k, "comment") == 0))
            continue;
        return cq_err_set(err, -EINVAL, "unknown_field", "params.%s: unknown parameter", k);
    }
    return 0;
}

static int parse_params(const cJSON *params, bool stop, ap_params *p, cq_err *err)
{
    int rc;

    memset(p, 0, sizeof(*p));
    if (!cJSON_IsObject(params))
        return cq_err_set(err, -EINVAL, "bad_type", "params: must be an object");
    rc = check_known_keys(params, stop, err);
    if (rc == 0)
        rc = cq_json_get_int(params, "reseller_id", 1, AP_ID_MAX, &p->reseller_id, "params", err);
    if (rc == 0)
        rc = cq_json_get_int(params, "subscription_id", 1, AP_ID_MAX, &p->subscription_id, "params",
                             err);
    if (rc == 0 && stop)
        rc = cq_json_get_string(params, "reason", 1, AP_TEXT_MAX, &p->reason, "params", err);
    if (rc == 0 && stop)
        rc = cq_json_get_string(params, "comment", 1, AP_TEXT_MAX, &p->comment, "params", err);
    /* A missing field is as invalid as a wrong one. */
    return rc == -ENOENT ? -EINVAL : rc;
}

static int validate(const cJSON *params, bool stop, char *target, size_t target_size, cq_err *err)
{
    char text[2 * CQ_INT_TEXT_MAX];
    ap_params p;
    int rc = parse_params(params, stop, &p, err);
    size_t n;

    if (rc != 0)
        return rc;
    /* "<rid>/<sid>" */
    n = cq_int_text(p.reseller_id, text);
    text[n++] = '/';
    n += cq_int_text(p.subscription_id, text + n);
    if (cq_text_copy(target, target_size, text, n) >= target_size)
        return cq_err_set(err, -E2BIG, "bad_value", "params: target too long");
    return 0;
}

static int ap_validate_delete(const cJSON *params, char *target, size_t target_size, cq_err *err)
{
    return validate(params, false, target, target_size, err);
}

static int ap_validate_stop(const cJSON *params, char *target, size_t target_size, cq_err *err)
{
    return validate(params, true, target, target_size, err);
}

/* Requests ------------------------------------------------------------- */

/* {base}/api/v3/resellers/{rid}/subscriptions/{sid}[tail] */
static int subscription_url(const cq_provider_conf *pc, const ap_params *p, const char *tail,
                            char **out)
{
    char rid[CQ_INT_TEXT_MAX], sid[CQ_INT_TEXT_MAX];
    const char *segs[] = {"/api/v3/resellers/", rid, "/subscriptions/", sid, tail};
    const bool literal[] = {true, false, true, false, true};

    cq_int_text(p->reseller_id, rid);
    cq_int_text(p->subscription_id, sid);
    return cq_url_build(pc->base_url, segs, literal, tail != NULL ? 5 : 4, out);
}

static int stop_body(const ap_params *p, cq_request *req)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *data, *attrs;
    int rc = -ENOMEM;

    if (root == NULL)
        return -ENOMEM;
    data = cJSON_AddObjectToObject(root, "data");
    attrs = data != NULL ? cJSON_AddObjectToObject(data, "attributes") : NULL;
    if (attrs == NULL || cJSON_AddStringToObject(attrs, "reason", p->reason) == NULL ||
        cJSON_AddStringToObject(attrs, "comment", p->comment) == NULL)
        goto free_root;
    req->body = cJSON_PrintUnformatted(root);
    if (req->body == NULL)
        goto free_root;
    req->body_len = strlen(req->body);
    rc = 0;
free_root:
    cJSON_Delete(root);
    return rc;
}

static int build_failed(int rc, cq_request *req, cq_err *err)
{
    cq_request_clear(req);
    if (err != NULL && err->code[0] == '\0')
        cq_err_set(err, rc, rc == -ENOMEM ? "no_memory" : "build",
                   "could not build the request (%s)", strerror(-rc));
    return rc;
}

/* The delete operation has no body: the engine sends an empty POST. */
static int build(const cq_provider_conf *pc, const cJSON *params, bool stop, cq_request *req,
                 cq_err *err)
{
    ap_params p;
    int rc;

    memset(req, 0, sizeof(*req));
    cq_err_clear(err);
    rc = parse_params(params, stop, &p, err);
    if (rc != 0)
        return rc;
    req->method = "POST";
    rc = subscription_url(pc, &p, stop ? "/stop_operation" : "/delete_operation", &req->url);
    if (rc == 0)
        rc = cq_request_add_header(req, "Content-Type: " AP_MEDIA);
    if (rc == 0)
        rc = cq_request_add_header(req, "Accept: " AP_MEDIA);
    if (rc == 0 && stop)
        rc = stop_body(&p, req);
    return rc == 0 ? 0 : build_failed(rc, req, err);
}

static int ap_build_delete(const cq_provider_conf *pc, const cJSON *params, cq_request *req,
                           cq_err *err)
{
    return build(pc, params, false, req, err);
}

static int ap_build_stop(const cq_provider_conf *pc, const cJSON *params, cq_request *req,
                         cq_err *err)
{
    return build(pc, params, true, req, err);
}

static int build_check(const cq_provider_conf *pc, const cJSON *params, bool stop, cq_request *req,
                       cq_err *err)
{
    ap_params p;
    int rc;

    memset(req, 0, sizeof(*req));
    cq_err_clear(err);
    rc = parse_params(params, stop, &p, err);
    if (rc != 0)
        return rc;
    req->method = "GET";
    rc = subscription_url(pc, &p, NULL, &req->url);
    if (rc == 0)
        rc = cq_request_add_header(req, "Accept: " AP_MEDIA);
    return rc == 0 ? 0 : build_failed(rc, req, err);
}

static int ap_build_check_delete(const cq_provider_conf *pc, const cJSON *params, cq_request *req,
                                 cq_err *err)
{
    return build_check(pc, params, false, req, err);
}

static int ap_build_check_stop(const cq_provider_conf *pc, const cJSON *params, cq_request *req,
                               cq_err *err)
{
    return build_check(pc, params, true, req, err);
}

/* Answers -------------------------------------------------------------- */

static cJSON *parse_body(const cq_response *resp)
{
    if (resp->body == NULL || resp->body_len == 0)
        return NULL;
    return cJSON_ParseWithLength(resp->body, resp->body_len);
}

static const char *json_str(const cJSON *obj, const char *key)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(obj, key);

    return cJSON_IsString(s) && s->valuestring[0] != '\0' ? s->valuestring : NULL;
}

/* The provider's message from a JSON:API error body
 * {"errors":[{"title":..,"detail":..}]} ("not documented precisely", so a
 * string entry is taken too); "" when there is none. */
static void error_message(const cq_response *resp, char *out, size_t size)
{
    cJSON *root = parse_body(resp);
    const cJSON *first;
    const char *title, *detail;

    out[0] = '\0';
    if (root == NULL)
        return;
    first = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "errors"), 0);
    if (cJSON_IsString(first)) {
        snprintf(out, size, "%s", first->valuestring);
    } else if (cJSON_IsObject(first)) {
        title = json_str(first, "title");
        detail = json_str(first, "detail");
        if (title != NULL && detail != NULL && strcmp(title, detail) != 0)
            snprintf(out, size, "%s: %s", title, detail);
        else if (title != NULL || detail != NULL)
            snprintf(out, size, "%s", title != NULL ? title : detail);
    }
    cJSON_Delete(root);
}

static void set_http(cq_verdict *v, cq_verdict_kind kind, const char *code, const cq_response *resp,
                     const char *fallback)
{
    char buf[16], msg[256];

    if (code == NULL) {
        snprintf(buf, sizeof(buf), "http_%ld", resp->status);
        code = buf;
    }
    error_message(resp, msg, sizeof(msg));
    cq_verdict_set(v, kind, code, "HTTP %ld: %s", resp->status, msg[0] != '\0' ? msg : fallback);
}

/* Common rows first; an HTTP answer keeps the provider's message. */
static bool common(const cq_response *resp, cq_verdict *v)
{
    return cq_classify_common_msg(resp, v, error_message);
}

static void ap_classify(const cq_provider_conf *pc, const cJSON *params, const cq_response *resp,
                        cq_verdict *v)
{
    long st = resp->status;

    (void)pc;
    (void)params;
    if (common(resp, v))
        return;
    if (st == 200)
        cq_verdict_set(v, CQ_V_SUCCEEDED, "", "operation initiated (200)");
    else if (st >= 201 && st <= 299) /* only 200 is documented */
        set_http(v, CQ_V_CHECK, NULL, resp, "undocumented success answer");
    else if (st == 403)
        set_http(v, CQ_V_CHECK, "forbidden", resp, "This action is forbidden");
    else if (st == 404)
        set_http(v, CQ_V_FAILED, "not_found", resp, "subscription or reseller not found");
    else if (st >= 300 && st <= 399)
        set_http(v, CQ_V_FAILED, NULL, resp, "unexpected redirect (not followed)");
    else
        set_http(v, CQ_V_FAILED, NULL, resp, "request refused");
}

/* Compare s with word, ignoring case and surrounding blanks. */
static bool status_is(const char *s, const char *word)
{
    size_t len, wlen = strlen(word);

    while (isspace((unsigned char)*s))
        s++;
    len = strlen(s);
    while (len > 0 && isspace((unsigned char)s[len - 1]))
        len--;
    return len == wlen && strncasecmp(s, word, len) == 0;
}

/* The subscription's status.  The vendor does not document the Get
 * subscription body precisely: JSON:API puts it at data.attributes.status;
 * data.status and a top-level status are accepted as well. */
static const char *subscription_status(const cJSON *root)
{
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
    const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(data, "attributes");
    const char *s = json_str(attrs, "status");

    if (s == NULL)
        s = json_str(data, "status");
    if (s == NULL)
        s = json_str(root, "status");
    return s;
}

/* Whether status shows the operation done (or under way).  A deleted (or
 * deleting) subscription counts as stopped too: it cannot be stopped any
 * more and is certainly not running, which is what a stop is for. */
static bool status_done(const char *status, bool stop)
{
    if (status_is(status, "deleting") || status_is(status, "deleted"))
        return true;
    return stop && (status_is(status, "stopping") || status_is(status, "stopped"));
}

static void check_ok(const cq_response *resp, bool stop, cq_verdict *v)
{
    cJSON *root = parse_body(resp);
    const char *status = root != NULL ? subscription_status(root) : NULL;

    if (status == NULL)
        cq_verdict_set(v, CQ_V_NOT_DONE, "bad_answer",
                       "subscription lookup: no readable status in the answer");
    else if (status_done(status, stop))
        cq_verdict_set(v, CQ_V_ALREADY_DONE, "", "subscription status is %.200s", status);
    else
        cq_verdict_set(v, CQ_V_NOT_DONE, stop ? "not_stopped" : "not_deleted",
                       "subscription status is %.200s", status);
    cJSON_Delete(root);
}

/* A 404 may mean the subscription is gone or that the token cannot see it:
 * not shown done. */
static void classify_check(const cq_response *resp, bool stop, cq_verdict *v)
{
    if (common(resp, v)) {
        /* An oversized lookup answer tells nothing: not shown done. */
        if (v->kind == CQ_V_CHECK)
            v->kind = CQ_V_NOT_DONE;
        return;
    }
    if (resp->status == 200)
        check_ok(resp, stop, v);
    else if (resp->status == 404)
        set_http(v, CQ_V_NOT_DONE, "not_found", resp, "subscription lookup: not found");
    else
        set_http(v, CQ_V_NOT_DONE, NULL, resp, "subscription lookup failed");
}

static void ap_classify_check_delete(const cq_provider_conf *pc, const cJSON *params,
                                     const cq_response *resp, cq_verdict *v)
{
    (void)pc;
    (void)params;
    classify_check(resp, false, v);
}

static void ap_classify_check_stop(const cq_provider_conf *pc, const cJSON *params,
                                   const cq_response *resp, cq_verdict *v)
{
    (void)pc;
    (void)params;
    classify_check(resp, true, v);
}

static const cq_action ap_actions[] = {
    {
        .name = "delete_subscription",
        .validate = ap_validate_delete,
        .build = ap_build_delete,
        .classify = ap_classify,
        .build_check = ap_build_check_delete,
        .classify_check = ap_classify_check_delete,
    },
    {
        .name = "stop_subscription",
        .validate = ap_validate_stop,
        .build = ap_build_stop,
        .classify = ap_classify,
        .build_check = ap_build_check_stop,
        .classify_check = ap_classify_check_stop,
    },
};

const cq_adapter cq_adapter_activeplatform = {
    .name = "activeplatform",
    .auth_prefix = "X-Api-Token: ",
    .supports_xml = false,
    .oauth_grant = CQ_CRED_NONE,
    .actions = ap_actions,
    .nactions = sizeof(ap_actions) / sizeof(ap_actions[0]),
};
