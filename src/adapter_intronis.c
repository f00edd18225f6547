/*
 * adapter_intronis.c - Intronis / Barracuda ECHOplatform (seeds/000,
 * PROVIDERS.md).
 *
 *   cancel_partner  POST {base}/v1/partners/{username}/cancellation
 *                   {"reason_id":1,"reason_note":""}  (or XML <cancellation>)
 *                   success: 303 See Other (never followed)
 *   status lookup   GET {base}/v1/partners/{username}
 *                   status ACTIVE|TEST|FROZEN|CANCELED; CANCELED = already done
 *
 * Everything but the documented 303 and the common rows is ambiguous here
 * (docs/design.md §4: Intronis 4xx other than 401/408/425/429 get a status
 * check), so it is CHECK: the partner lookup decides between already_done
 * and failed.
 */
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

#define INTRONIS_USERNAME_MAX 128
#define INTRONIS_NOTE_MAX 2000
/* The vendor documents reason_id as an int; larger values are typos. */
#define INTRONIS_REASON_ID_MAX INT32_MAX

typedef struct intronis_params {
    const char *username; /* borrowed from the params */
    int64_t reason_id;
    const char *reason_note; /* borrowed, may be "" */
} intronis_params;

static const char *const known_keys[] = {"username", "reason_id", "reason_note"};

/* Params --------------------------------------------------------------- */

static int check_known_keys(const cJSON *params, cq_err *err)
{
    const cJSON *item;

    cJSON_ArrayForEach (item, params) {
        bool known = false;

        for (size_t i = 0; i < sizeof(known_keys) / sizeof(known_keys[0]); i++)
            if (item->string != NULL && strcmp(item->string, known_keys[i]) == 0)
                known = true;
        if (!known)
            return cq_err_set(err, -EINVAL, "unknown_field", "params.%s: unknown parameter",
                              item->string != NULL ? item->string : "?");
    }
    return 0;
}

static bool has_control_chars(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
            return true;
    return false;
}

/* The username is one path segment and the idempotency target: printable,
 * and not a dot segment that URL resolution would swallow. */
static int check_username(const char *username, cq_err *err)
{
    if (has_control_chars(username))
        return cq_err_set(err, -EINVAL, "bad_value",
                          "params.username: must not contain control characters");
    if (strcmp(username, ".") == 0 || strcmp(username, "..") == 0)
        return cq_err_set(err, -EINVAL, "bad_value", "params.username: must not be \"%s\"",
                          username);
    return 0;
}

/* XML 1.0 cannot carry C0 controls other than tab, newline and CR, not even
 * as character references; the note is refused at validation whatever the
 * instance's format, so a job does not turn invalid when format changes. */
static bool xml_can_carry(const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;

        if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
            return false;
    }
    return true;
}

static int parse_params(const cJSON *params, intronis_params *p, cq_err *err)
{
    int rc;

    memset(p, 0, sizeof(*p));
    if (!cJSON_IsObject(params))
        return cq_err_set(err, -EINVAL, "bad_type", "params: must be an object");
    rc = check_known_keys(params, err);
    if (rc == 0)
        rc = cq_json_get_string(params, "username", 1, INTRONIS_USERNAME_MAX, &p->username,
                                "params", err);
    if (rc == 0)
        rc = check_username(p->username, err);
    if (rc == 0)
        rc = cq_json_get_int(params, "reason_id", 0, INTRONIS_REASON_ID_MAX, &p->reason_id,
                             "params", err);
    if (rc == 0)
        rc = cq_json_get_string(params, "reason_note", 0, INTRONIS_NOTE_MAX, &p->reason_note,
                                "params", err);
    if (rc == 0 && !xml_can_carry(p->reason_note))
        rc = cq_err_set(err, -EINVAL, "bad_value",
                        "params.reason_note: must not contain control characters other than "
                        "tab and line breaks");
    /* A missing field is as invalid as a wrong one. */
    return rc == -ENOENT ? -EINVAL : rc;
}

static int intronis_validate(const cJSON *params, char *target, size_t target_size, cq_err *err)
{
    intronis_params p;
    int rc = parse_params(params, &p, err);
    const char *user;

    if (rc != 0)
        return rc;
    user = p.username != NULL ? p.username : ""; /* validated: never NULL */
    if (cq_text_copy(target, target_size, user, strlen(user)) >= target_size)
        return cq_err_set(err, -E2BIG, "bad_value", "params.username: too long for a target");
    return 0;
}

/* Bodies --------------------------------------------------------------- */

/* reason_id goes in as raw text: cJSON 1.7.15 (Debian 12) prints every
 * number with sprintf("%1.15g") and reads it back with sscanf, most of the
 * cost of the body; for an integer of at most 10 digits any cJSON prints
 * the plain decimal cq_int_text writes, so the body is byte for byte the
 * same (test_json_body_as_cjson_prints_it compares). */
static int json_body(const intronis_params *p, cq_request *req)
{
    cJSON *obj = cJSON_CreateObject();
    char id[CQ_INT_TEXT_MAX];
    int rc = -ENOMEM;

    if (obj == NULL)
        return -ENOMEM;
    cq_int_text(p->reason_id, id);
    if (cJSON_AddRawToObject(obj, "reason_id", id) == NULL ||
        cJSON_AddStringToObject(obj, "reason_note", p->reason_note) == NULL)
        goto free_obj;
    req->body = cJSON_PrintUnformatted(obj);
    if (req->body == NULL)
        goto free_obj;
    req->body_len = strlen(req->body);
    rc = 0;
free_obj:
    cJSON_Delete(obj);
    return rc;
}

/* The XML escape of one byte, or NULL when it is copied as is.  \r would be
 * normalised to \n by an XML parser, so it travels as a reference. */
static const char *xml_escape(char c)
{
    switch (c) {
    case '&':
        return "&amp;";
    case '<':
        return "&lt;";
    case '>':
        return "&gt;";
    case '"':
        return "&quot;";
    case '\'':
        return "&apos;";
    case '\r':
        return "&#13;";
    default:
        return NULL;
    }
}

/* Length of s once escaped (bounded: at most 6 bytes per input byte). */
static size_t xml_escaped_len(const char *s)
{
    size_t n = 0;

    for (; *s != '\0'; s++) {
        const char *e = xml_escape(*s);

        n += e != NULL ? strlen(e) : 1;
    }
    return n;
}

static size_t xml_write_escaped(char *out, const char *s)
{
    size_t n = 0;

    for (; *s != '\0'; s++) {
        const char *e = xml_escape(*s);

        if (e != NULL) {
            /* out is sized by xml_escaped_len and terminated by the caller */
            memcpy(out + n, e, strlen(e)); // NOLINT(bugprone-not-null-terminated-result)
            n += strlen(e);
        } else {
            out[n++] = *s;
        }
    }
    return n;
}

#define XML_HEAD "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<cancellation><reason_id>"
#define XML_NOTE_OPEN "</reason_id><reason_note>"
#define XML_NOTE_CLOSE "</reason_note></cancellation>"
#define XML_NOTE_EMPTY "</reason_id><reason_note/></cancellation>"

/* The seed's XML example: an empty note is written <reason_note/>.  The
 * note was checked to hold only characters XML can carry. */
static int xml_body(const intronis_params *p, cq_request *req)
{
    const char *note = p->reason_note != NULL ? p->reason_note : ""; /* validated: never NULL */
    char id[CQ_INT_TEXT_MAX];
    size_t cap, n;
    char *buf;

    cq_int_text(p->reason_id, id);
    cap = strlen(XML_HEAD) + strlen(id) + strlen(XML_NOTE_OPEN) + xml_escaped_len(note) +
          strlen(XML_NOTE_CLOSE) + strlen(XML_NOTE_EMPTY) + 1;
    buf = malloc(cap);
    if (buf == NULL)
        return -ENOMEM;
    n = 0;
    memcpy(buf, XML_HEAD, strlen(XML_HEAD));
    n += strlen(XML_HEAD);
    memcpy(buf + n, id, strlen(id));
    n += strlen(id);
    if (note[0] == '\0') {
        memcpy(buf + n, XML_NOTE_EMPTY, strlen(XML_NOTE_EMPTY));
        n += strlen(XML_NOTE_EMPTY);
    } else {
        memcpy(buf + n, XML_NOTE_OPEN, strlen(XML_NOTE_OPEN));
        n += strlen(XML_NOTE_OPEN);
        n += xml_write_escaped(buf + n, note);
        memcpy(buf + n, XML_NOTE_CLOSE, strlen(XML_NOTE_CLOSE));
        n += strlen(XML_NOTE_CLOSE);
    }
    buf[n] = '\0';
    req->body = buf;
    req->body_len = n;
    return 0;
}

/* Requests ------------------------------------------------------------- */

static int partner_url(const cq_provider_conf *pc, const char *username, bool cancellation,
                       char **out)
{
    const char *segs[] = {"/v1/partners/", username, "/cancellation"};
    const bool literal[] = {true, false, true};

    return cq_url_build(pc->base_url, segs, literal, cancellation ? 3 : 2, out);
}

static int build_failed(int rc, cq_request *req, cq_err *err)
{
    cq_request_clear(req);
    if (err != NULL && err->code[0] == '\0')
        cq_err_set(err, rc, rc == -ENOMEM ? "no_memory" : "build",
                   "could not build the request (%s)", strerror(-rc));
    return rc;
}

static int intronis_build(const cq_provider_conf *pc, const cJSON *params, cq_request *req,
                          cq_err *err)
{
    bool xml = pc->format == CQ_FORMAT_XML;
    intronis_params p;
    int rc;

    memset(req, 0, sizeof(*req));
    cq_err_clear(err);
    rc = parse_params(params, &p, err);
    if (rc != 0)
        return rc;
    req->method = "POST";
    rc = partner_url(pc, p.username, true, &req->url);
    if (rc == 0)
        rc = cq_request_add_header(req,
                                   xml ? "Accept: application/xml" : "Accept: application/json");
    if (rc == 0)
        rc = cq_request_add_header(req, xml ? "Content-Type: application/xml"
                                            : "Content-Type: application/json");
    if (rc == 0)
        rc = xml ? xml_body(&p, req) : json_body(&p, req);
    return rc == 0 ? 0 : build_failed(rc, req, err);
}

/* The lookup asks for JSON whatever the instance's format: both are served
 * and only the JSON answer is read. */
static int intronis_build_check(const cq_provider_conf *pc, const cJSON *params, cq_request *req,
                                cq_err *err)
{
    intronis_params p;
    int rc;

    memset(req, 0, sizeof(*req));
    cq_err_clear(err);
    rc = parse_params(params, &p, err);
    if (rc != 0)
        return rc;
    req->method = "GET";
    rc = partner_url(pc, p.username, false, &req->url);
    if (rc == 0)
        rc = cq_request_add_header(req, "Accept: application/json");
    return rc == 0 ? 0 : build_failed(rc, req, err);
}

/* Answers -------------------------------------------------------------- */

static cJSON *parse_body(const cq_response *resp)
{
    if (resp->body == NULL || resp->body_len == 0)
        return NULL;
    return cJSON_ParseWithLength(resp->body, resp->body_len);
}

/* The provider's message from {"error":{"message":..}} or {"error":".."}
 * (400 has an error object; its exact fields are not documented), copied
 * into out; "" when the body has none. */
static void error_message(const cq_response *resp, char *out, size_t size)
{
    cJSON *root = parse_body(resp);
    const cJSON *e, *m;

    out[0] = '\0';
    if (root == NULL)
        return;
    e = cJSON_GetObjectItemCaseSensitive(root, "error");
    m = cJSON_IsObject(e) ? cJSON_GetObjectItemCaseSensitive(e, "message") : e;
    if (cJSON_IsString(m) && m->valuestring != NULL)
        snprintf(out, size, "%s", m->valuestring);
    cJSON_Delete(root);
}

/* "HTTP 400: <provider message>" or "HTTP 400: <fallback>". */
static void set_http(cq_verdict *v, cq_verdict_kind kind, const cq_response *resp,
                     const char *fallback)
{
    char code[16], msg[256];

    snprintf(code, sizeof(code), "http_%ld", resp->status);
    error_message(resp, msg, sizeof(msg));
    cq_verdict_set(v, kind, code, "HTTP %ld: %s", resp->status, msg[0] != '\0' ? msg : fallback);
}

/* Common rows first; an HTTP answer keeps the provider's message. */
static bool common(const cq_response *resp, cq_verdict *v)
{
    return cq_classify_common_msg(resp, v, error_message);
}

static void intronis_classify(const cq_provider_conf *pc, const cJSON *params,
                              const cq_response *resp, cq_verdict *v)
{
    (void)pc;
    (void)params;
    if (common(resp, v))
        return;
    if (resp->status == 303) {
        cq_verdict_set(v, CQ_V_SUCCEEDED, "", "partner cancelled (303 See Other)");
        return;
    }
    if (resp->status >= 200 && resp->status <= 299) {
        set_http(v, CQ_V_CHECK, resp, "undocumented success answer, checking partner status");
        return;
    }
    if (resp->status >= 300 && resp->status <= 399) {
        set_http(v, CQ_V_CHECK, resp, "unexpected redirect (not followed)");
        return;
    }
    set_http(v, CQ_V_CHECK, resp, "cancellation refused");
}

/* The status of a partner lookup, or NULL; root is owned by the caller. */
static const char *partner_status(const cJSON *root)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(root, "status");

    return cJSON_IsString(s) ? s->valuestring : NULL;
}

static void check_ok(const cq_response *resp, cq_verdict *v)
{
    cJSON *root = parse_body(resp);
    const char *status = root != NULL ? partner_status(root) : NULL;

    if (status == NULL)
        cq_verdict_set(v, CQ_V_NOT_DONE, "bad_answer",
                       "partner lookup: no readable status in the answer");
    else if (strcasecmp(status, "CANCELED") == 0)
        cq_verdict_set(v, CQ_V_ALREADY_DONE, "", "partner status is %s", status);
    else
        cq_verdict_set(v, CQ_V_NOT_DONE, "not_cancelled", "partner status is %.200s", status);
    cJSON_Delete(root);
}

static void intronis_classify_check(const cq_provider_conf *pc, const cJSON *params,
                                    const cq_response *resp, cq_verdict *v)
{
    (void)pc;
    (void)params;
    if (common(resp, v)) {
        /* An oversized lookup answer tells nothing: not shown done. */
        if (v->kind == CQ_V_CHECK)
            v->kind = CQ_V_NOT_DONE;
        return;
    }
    if (resp->status == 200) {
        check_ok(resp, v);
        return;
    }
    if (resp->status == 404) {
        cq_verdict_set(v, CQ_V_NOT_DONE, "not_found", "partner lookup: HTTP 404, unknown partner");
        return;
    }
    set_http(v, CQ_V_NOT_DONE, resp, "partner lookup failed");
}

static const cq_action intronis_actions[] = {
    {
        .name = "cancel_partner",
        .validate = intronis_validate,
        .build = intronis_build,
        .classify = intronis_classify,
        .build_check = intronis_build_check,
        .classify_check = intronis_classify_check,
    },
};

const cq_adapter cq_adapter_intronis = {
    .name = "intronis",
    .auth_prefix = "Authorization: OAuth ",
    .supports_xml = true,
    .oauth_grant = CQ_CRED_CLIENT_CREDENTIALS,
    .actions = intronis_actions,
    .nactions = sizeof(intronis_actions) / sizeof(intronis_actions[0]),
};
