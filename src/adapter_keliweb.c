/*
 * adapter_keliweb.c - Keliweb API v2, a WHMCS proxy (seeds/003,
 * PROVIDERS.md).
 *
 *   cancel_service  POST {base}/api/v2/keliweb/add-cancel-request
 *                   multipart/form-data: serviceid, [type], [reason]
 *                   success: 200 {"result":"success",...}
 *
 * The form is built by the engine with curl_mime, which also writes the
 * Content-Type header with its boundary; the vendor's PHP sample sets
 * "Content-Type: multipart/form-data" by hand (no boundary) and posts a
 * urlencoded string, which is broken, so no Content-Type is set here.
 *
 * There is no status lookup: PROVIDERS.md names get-clients-products, but
 * the shape of its answer is unknown, so build_check is NULL and an
 * ambiguous answer ends as failed (never a blind retry that could file a
 * second request).
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

/* WHMCS service ids are integers; 2^53 - 1 is the largest integer a JSON
 * number carries exactly (2^53 itself is refused because 2^53 + 1 would
 * round onto it). */
#define KW_SERVICEID_MAX INT64_C(9007199254740991)
#define KW_REASON_MAX 2000

typedef struct kw_params {
    int64_t serviceid;
    const char *type;   /* borrowed or NULL */
    const char *reason; /* borrowed or NULL */
} kw_params;

static const char *const kw_types[] = {"Immediate", "End of Billing Period"};

/* Params --------------------------------------------------------------- */

static int check_known_keys(const cJSON *params, cq_err *err)
{
    const cJSON *item;

    cJSON_ArrayForEach (item, params) {
        const char *k = item->string != NULL ? item->string : "?";

        if (strcmp(k, "serviceid") != 0 && strcmp(k, "type") != 0 && strcmp(k, "reason") != 0)
            return cq_err_set(err, -EINVAL, "unknown_field", "params.%s: unknown parameter", k);
    }
    return 0;
}

/* An optional string: absent is fine (*out = NULL). */
static int optional_string(const cJSON *params, const char *key, size_t maxlen, const char **out,
                           cq_err *err)
{
    *out = NULL;
    if (cJSON_GetObjectItemCaseSensitive(params, key) == NULL)
        return 0;
    return cq_json_get_string(params, key, 0, maxlen, out, "params", err);
}

static int check_type(const char *type, cq_err *err)
{
    if (type == NULL)
        return 0;
    for (size_t i = 0; i < sizeof(kw_types) / sizeof(kw_types[0]); i++)
        if (strcmp(type, kw_types[i]) == 0)
            return 0;
    return cq_err_set(err, -EINVAL, "bad_value",
                      "params.type: must be \"Immediate\" or \"End of Billing Period\"");
}

static int parse_params(const cJSON *params, kw_params *p, cq_err *err)
{
    int rc;

    memset(p, 0, sizeof(*p));
    if (!cJSON_IsObject(params))
        return cq_err_set(err, -EINVAL, "bad_type", "params: must be an object");
    rc = check_known_keys(params, err);
    if (rc == 0)
        rc =
            cq_json_get_int(params, "serviceid", 1, KW_SERVICEID_MAX, &p->serviceid, "params", err);
    if (rc == 0)
        rc = optional_string(params, "type", 64, &p->type, err);
    if (rc == 0)
        rc = check_type(p->type, err);
    if (rc == 0)
        rc = optional_string(params, "reason", KW_REASON_MAX, &p->reason, err);
    /* A missing field is as invalid as a wrong one. */
    return rc == -ENOENT ? -EINVAL : rc;
}

static int kw_validate(const cJSON *params, char *target, size_t target_size, cq_err *err)
{
    char text[CQ_INT_TEXT_MAX];
    kw_params p;
    int rc = parse_params(params, &p, err);
    size_t n;

    if (rc != 0)
        return rc;
    n = cq_int_text(p.serviceid, text);
    if (cq_text_copy(target, target_size, text, n) >= target_size)
        return cq_err_set(err, -E2BIG, "bad_value", "params.serviceid: target too long");
    return 0;
}

/* Requests ------------------------------------------------------------- */

/* Accept asks for JSON; X-Requested-With is what the vendor's sample sends,
 * and makes the Laravel front answer errors as JSON rather than redirect. */
static int kw_build(const cq_provider_conf *pc, const cJSON *params, cq_request *req, cq_err *err)
{
    const char *segs[] = {"/api/v2/keliweb/add-cancel-request"};
    const bool literal[] = {true};
    char id[CQ_INT_TEXT_MAX];
    kw_params p;
    int rc;

    memset(req, 0, sizeof(*req));
    cq_err_clear(err);
    rc = parse_params(params, &p, err);
    if (rc != 0)
        return rc;
    cq_int_text(p.serviceid, id);
    req->method = "POST";
    rc = cq_url_build(pc->base_url, segs, literal, 1, &req->url);
    if (rc == 0)
        rc = cq_request_add_header(req, "Accept: application/json");
    if (rc == 0)
        rc = cq_request_add_header(req, "X-Requested-With: XMLHttpRequest");
    if (rc == 0)
        rc = cq_request_add_form(req, "serviceid", id);
    if (rc == 0 && p.type != NULL)
        rc = cq_request_add_form(req, "type", p.type);
    if (rc == 0 && p.reason != NULL)
        rc = cq_request_add_form(req, "reason", p.reason);
    if (rc == 0)
        return 0;
    cq_request_clear(req);
    if (err != NULL && err->code[0] == '\0')
        cq_err_set(err, rc, rc == -ENOMEM ? "no_memory" : "build",
                   "could not build the request (%s)", strerror(-rc));
    return rc;
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

    return cJSON_IsString(s) ? s->valuestring : NULL;
}

/* The message of a WHMCS ({"result":"error","message":..}) or Laravel
 * ({"message":..} or {"error":..}) error body, or NULL. */
static const char *error_message(const cJSON *root)
{
    const char *m = json_str(root, "message");

    return m != NULL ? m : json_str(root, "error");
}

/* Keep a common verdict, with the provider's message when it gave one. */
static void add_provider_message(const cq_response *resp, cq_verdict *v)
{
    cJSON *root = parse_body(resp);
    const char *m = error_message(root);

    if (m != NULL && m[0] != '\0') {
        cq_verdict saved = *v;

        cq_verdict_set(v, saved.kind, saved.error, "HTTP %ld: %s", resp->status, m);
        v->has_retry_after = saved.has_retry_after;
        v->retry_after_ms = saved.retry_after_ms;
    }
    cJSON_Delete(root);
}

/* Compare s with phrase, ignoring case and surrounding blanks. */
static bool text_is(const char *s, const char *phrase)
{
    size_t len, plen = strlen(phrase);

    while (isspace((unsigned char)*s))
        s++;
    len = strlen(s);
    while (len > 0 && isspace((unsigned char)s[len - 1]))
        len--;
    return len == plen && strncasecmp(s, phrase, len) == 0;
}

/* WHMCS AddCancelRequest errors, by message. */
static void result_error(const char *message, cq_verdict *v)
{
    if (message == NULL || message[0] == '\0')
        cq_verdict_set(v, CQ_V_FAILED, "provider_error", "provider answered result: error");
    else if (text_is(message, "Existing Cancellation Request Exists"))
        cq_verdict_set(v, CQ_V_ALREADY_DONE, "", "%s", message);
    else if (text_is(message, "Service ID Not Found"))
        cq_verdict_set(v, CQ_V_FAILED, "service_not_found", "%s", message);
    else
        cq_verdict_set(v, CQ_V_FAILED, "provider_error", "%s", message);
}

/* FAILED http_NNN with the provider's message, except that a body saying
 * {"result":"error"} with a known WHMCS message is read as such whatever
 * the status (the proxy is not documented to answer those with 200 only):
 * the provider saying the request already exists is already_done. */
static void set_http(cq_verdict *v, const cq_response *resp, const char *fallback)
{
    char code[16];
    cJSON *root = parse_body(resp);
    const char *result = json_str(root, "result");
    const char *m = error_message(root);

    if (result != NULL && text_is(result, "error") && m != NULL &&
        (text_is(m, "Existing Cancellation Request Exists") ||
         text_is(m, "Service ID Not Found"))) {
        result_error(m, v);
    } else {
        snprintf(code, sizeof(code), "http_%ld", resp->status);
        cq_verdict_set(v, CQ_V_FAILED, code, "HTTP %ld: %s", resp->status,
                       m != NULL && m[0] != '\0' ? m : fallback);
    }
    cJSON_Delete(root);
}

/* A 200 whose result cannot be read may still have filed the request, and
 * there is no lookup to ask: FAILED (for a person to verify), not a retry
 * that could file it twice. */
static void classify_200(const cq_response *resp, cq_verdict *v)
{
    cJSON *root = parse_body(resp);
    const char *result = json_str(root, "result");

    if (result != NULL && text_is(result, "success"))
        cq_verdict_set(v, CQ_V_SUCCEEDED, "", "cancellation request added");
    else if (result != NULL && text_is(result, "error"))
        result_error(json_str(root, "message"), v);
    else
        cq_verdict_set(v, CQ_V_FAILED, "bad_answer",
                       "HTTP 200 without a readable result: the request may have been "
                       "filed, verify at the provider");
    cJSON_Delete(root);
}

static void kw_classify(const cq_provider_conf *pc, const cJSON *params, const cq_response *resp,
                        cq_verdict *v)
{
    (void)pc;
    (void)params;
    if (cq_classify_common(resp, v)) {
        /* No lookup to run: an ambiguous answer (too_large) ends here. */
        if (v->kind == CQ_V_CHECK)
            v->kind = CQ_V_FAILED;
        if (resp->transport == CQ_TR_OK)
            add_provider_message(resp, v);
        return;
    }
    if (resp->status == 200)
        classify_200(resp, v);
    else if (resp->status >= 200 && resp->status <= 299)
        set_http(v, resp,
                 "undocumented answer: the request may have been filed, verify at "
                 "the provider");
    else if (resp->status >= 300 && resp->status <= 399)
        set_http(v, resp, "unexpected redirect (not followed)");
    else
        set_http(v, resp, "request refused");
}

static const cq_action kw_actions[] = {
    {
        .name = "cancel_service",
        .validate = kw_validate,
        .build = kw_build,
        .classify = kw_classify,
        .build_check = NULL,
        .classify_check = NULL,
    },
};

const cq_adapter cq_adapter_keliweb = {
    .name = "keliweb",
    .auth_prefix = "Authorization: Bearer ",
    .supports_xml = false,
    .oauth_grant = CQ_CRED_PASSWORD,
    .actions = kw_actions,
    .nactions = sizeof(kw_actions) / sizeof(kw_actions[0]),
};
