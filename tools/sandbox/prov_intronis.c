/*
 * prov_intronis.c - Intronis / Barracuda ECHOplatform endpoints:
 *
 *   POST /oauth2/token                         client credentials -> access token
 *   POST /v1/partners/{username}/cancellation  JSON or XML body -> 303 See Other
 *   GET  /v1/partners/{username}               {"username":..,"status":..}
 *
 * Errors carry the vendor's error object {"error":{"code":..,"message":..}};
 * the token endpoint answers OAuth 2 errors {"error":"invalid_client"}.
 * Targets are intronis:<username> (decoded).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <http_parser.h>

#include "form.h"
#include "sandbox.h"
#include "xmlcheck.h"

/* Longest decoded username; longer ones are refused with 400. */
#define USERNAME_MAX SB_TARGET_ID_MAX

/* {"error":{"code":code,"message":message}} with status. */
static void error_object(sb_response *r, int status, const char *code, const char *message)
{
    cJSON *o = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(o, "error");

    if (e == NULL || cJSON_AddStringToObject(e, "code", code) == NULL ||
        cJSON_AddStringToObject(e, "message", message) == NULL) {
        cJSON_Delete(o);
        o = NULL;
    }
    sb_resp_json(r, status, o);
}

/* A refusal (counted as rejected) with the vendor's error object. */
static void refuse(sb_response *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void refuse(sb_response *r, int status, const char *code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(r->why.msg, sizeof(r->why.msg), fmt, ap);
    va_end(ap);
    r->rejected = true;
    error_object(r, status, code, r->why.msg);
}

static void scripted_error(sb_response *r, int status, const char *message)
{
    error_object(r, status, "sandbox_scripted", message);
}

/* Authorization: OAuth <token> and Accept, shared by both partner endpoints.
 * Returns 0, or -1 with r filled. */
static int check_headers(sb_ctx *ctx, const sb_call *c, sb_response *r)
{
    switch (sb_auth_check(ctx, c)) {
    case SB_AUTH_OK:
        break;
    case SB_AUTH_MISSING:
        refuse(r, 401, "invalid_token", "missing header Authorization (want \"OAuth <token>\")");
        return -1;
    case SB_AUTH_SCHEME:
        refuse(r, 401, "invalid_token", "Authorization must be \"OAuth <token>\"");
        return -1;
    default:
        refuse(r, 401, "invalid_token", "the access token is invalid, expired or revoked");
        return -1;
    }
    if (sb_req_header(c->req, "Accept") == NULL) {
        refuse(r, 400, "bad_request", "missing header Accept");
        return -1;
    }
    return 0;
}

/* Decode the {username} segment into out.  Returns 0, or -1 with r filled. */
static int username(sb_seg seg, char out[USERNAME_MAX + 1], sb_response *r)
{
    char *dec;
    int len = 0;

    if (seg.len == 0 || seg.len > 3 * USERNAME_MAX) {
        refuse(r, 400, "bad_request", "username must be 1..%d bytes", USERNAME_MAX);
        return -1;
    }
    /* the handle argument is ignored by libcurl >= 7.82 */
    dec = curl_easy_unescape(NULL, seg.p, (int)seg.len, &len);
    if (dec == NULL) {
        sb_resp_json(r, 500, NULL);
        return -1;
    }
    if (len == 0 || len > USERNAME_MAX || memchr(dec, '\0', (size_t)len) != NULL) {
        curl_free(dec);
        refuse(r, 400, "bad_request", "username must be 1..%d bytes without NUL", USERNAME_MAX);
        return -1;
    }
    memcpy(out, dec, (size_t)len + 1);
    curl_free(dec);
    return 0;
}

/* Body: exactly {"reason_id": integer, "reason_note": string}. */
static int check_json(const sb_request *req, sb_why *why)
{
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithLengthOpts(req->body, req->body_len, &end, 0), *it;
    bool have_id = false, have_note = false;
    int64_t id;
    int rc = 0;

    if (doc == NULL)
        return sb_why_set(why, "body is not valid JSON");
    end += strspn(end, " \t\r\n");
    if (end != req->body + req->body_len) {
        rc = sb_why_set(why, "trailing data after the JSON body");
        goto out;
    }
    if (!cJSON_IsObject(doc)) {
        rc = sb_why_set(why, "body must be a JSON object");
        goto out;
    }
    cJSON_ArrayForEach (it, doc) {
        if (strcmp(it->string, "reason_id") == 0 && !have_id) {
            have_id = true;
            if (!sb_json_int(it, INT32_MIN, INT32_MAX, &id))
                rc = sb_why_set(why, "reason_id must be an integer");
        } else if (strcmp(it->string, "reason_note") == 0 && !have_note) {
            have_note = true;
            if (!cJSON_IsString(it))
                rc = sb_why_set(why, "reason_note must be a string");
        } else {
            rc = sb_why_set(why, "unexpected or repeated key \"%s\"", it->string);
        }
        if (rc != 0)
            goto out;
    }
    if (!have_id)
        rc = sb_why_set(why, "missing reason_id");
    else if (!have_note)
        rc = sb_why_set(why, "missing reason_note (may be \"\")");
out:
    cJSON_Delete(doc);
    return rc;
}

static int check_body(const sb_request *req, sb_response *r)
{
    const char *ct = sb_req_header(req, "Content-Type");
    int64_t id;
    sb_why why;
    int rc;

    if (ct == NULL) {
        refuse(r, 400, "bad_request", "missing header Content-Type");
        return -1;
    }
    if (sb_media_type_is(ct, "application/json", true))
        rc = check_json(req, &why);
    else if (sb_media_type_is(ct, "application/xml", true))
        rc = sb_xml_cancellation(req->body, req->body_len, &id, &why);
    else {
        refuse(r, 400, "bad_request", "Content-Type must be application/json or application/xml");
        return -1;
    }
    if (rc != 0) {
        refuse(r, 400, "bad_request", "%s", why.msg);
        return -1;
    }
    return 0;
}

static void cancel_effect(sb_target *t)
{
    t->state = SB_ST_CANCELLED;
}

/* 303 (or a scripted 2xx/3xx; 3xx get Location) http://HOST:PORT/v1/partners/{username}. */
static void cancel_success(sb_ctx *ctx, sb_response *r, int status, const void *arg)
{
    const char *user = arg;
    char *enc;

    sb_resp_empty(r, status);
    if (status < 300)
        return;
    enc = curl_easy_escape(NULL, user, (int)strlen(user));
    if (enc == NULL) {
        sb_resp_json(r, 500, NULL);
        return;
    }
    snprintf(r->location, sizeof(r->location), "%s/v1/partners/%s", ctx->base_url, enc);
    curl_free(enc);
}

static const sb_cancel_ops cancel_ops = {cancel_effect, cancel_success, scripted_error};

static void cancel(sb_ctx *ctx, const sb_call *c, sb_response *r)
{
    char name[USERNAME_MAX + 1], key[SB_KEY_MAX + 1];
    sb_target *t;

    if (check_headers(ctx, c, r) != 0 || username(c->arg[0], name, r) != 0 ||
        check_body(c->req, r) != 0)
        return;
    if (sb_target_key(c->prov, name, key) != 0) {
        refuse(r, 400, "bad_request", "username too long");
        return;
    }
    if (sb_cancel_begin(ctx, c->prov, key, &cancel_ops, name, &t, r) != 0)
        return;
    switch (t->state) {
    case SB_ST_MISSING:
        error_object(r, 404, "not_found", "Partner not found");
        break;
    case SB_ST_CANCELLED:
        /* undocumented by the vendor: the daemon resolves it with a status check */
        error_object(r, 400, "partner_canceled", "Partner is already canceled");
        break;
    default:
        cancel_effect(t);
        cancel_success(ctx, r, 303, name);
        break;
    }
}

static void status(sb_ctx *ctx, const sb_call *c, sb_response *r)
{
    char name[USERNAME_MAX + 1], key[SB_KEY_MAX + 1];
    sb_target *t;
    cJSON *o;

    if (check_headers(ctx, c, r) != 0 || username(c->arg[0], name, r) != 0)
        return;
    if (sb_target_key(c->prov, name, key) != 0) {
        refuse(r, 400, "bad_request", "username too long");
        return;
    }
    if (sb_check_begin(ctx, c->prov, key, &t, r) != 0)
        return;
    if (t->state == SB_ST_MISSING) {
        error_object(r, 404, "not_found", "Partner not found");
        return;
    }
    o = cJSON_CreateObject();
    if (cJSON_AddStringToObject(o, "username", name) == NULL ||
        cJSON_AddStringToObject(o, "status", sb_state_name(c->prov, t->state)) == NULL) {
        cJSON_Delete(o);
        o = NULL;
    }
    sb_resp_json(r, 200, o);
}

/* An OAuth 2 error answer {"error":code[,"error_description":..]}. */
static void oauth_error(sb_response *r, int status, const char *code, const char *desc)
{
    cJSON *o = sb_json_obj1("error", code);

    snprintf(r->why.msg, sizeof(r->why.msg), "%s: %s", code, desc);
    r->rejected = true;
    if (o != NULL && cJSON_AddStringToObject(o, "error_description", desc) == NULL) {
        cJSON_Delete(o);
        o = NULL;
    }
    sb_resp_json(r, status, o);
}

static void token(sb_ctx *ctx, const sb_call *c, sb_response *r)
{
    const sb_request *req = c->req;
    const char *ct = sb_req_header(req, "Content-Type"), *grant, *id, *secret;
    char tok[SB_TOKEN_LEN + 1], ttl[16];
    sb_fields f = {0};
    sb_why why;
    cJSON *o;
    int rc;

    if (!sb_media_type_is(ct, "application/x-www-form-urlencoded", true)) {
        oauth_error(r, 400, "invalid_request",
                    "Content-Type must be application/x-www-form-urlencoded");
        return;
    }
    rc = sb_form_parse(req->body, req->body_len, &f, &why);
    if (rc != 0) {
        oauth_error(r, 400, "invalid_request", rc == -EINVAL ? why.msg : "out of memory");
        return;
    }
    grant = sb_fields_get(&f, "grant_type");
    id = sb_fields_get(&f, "client_id");
    secret = sb_fields_get(&f, "client_secret");
    if (grant == NULL || id == NULL || secret == NULL)
        oauth_error(r, 400, "invalid_request",
                    "grant_type, client_id and client_secret are required");
    else if (strcmp(grant, "client_credentials") != 0)
        oauth_error(r, 400, "unsupported_grant_type", "only client_credentials is supported");
    else if (strcmp(id, SB_CLIENT_ID) != 0 || strcmp(secret, SB_CLIENT_SECRET) != 0)
        oauth_error(r, 401, "invalid_client", "client authentication failed");
    else if (sb_tokens_mint(ctx->tokens, c->prov, SB_TOKEN_ACCESS, sb_now_ms(ctx),
                            (uint64_t)ctx->token_ttl_s * 1000, tok) != 0)
        oauth_error(r, 503, "temporarily_unavailable", "token table full");
    else {
        ctx->stats.tokens_minted[c->prov]++;
        snprintf(ttl, sizeof(ttl), "%" PRIu32, ctx->token_ttl_s);
        o = cJSON_CreateObject();
        /* expires_in is a string at Intronis */
        if (cJSON_AddStringToObject(o, "access_token", tok) == NULL ||
            cJSON_AddStringToObject(o, "expires_in", ttl) == NULL ||
            cJSON_AddStringToObject(o, "token_type", "bearer") == NULL) {
            cJSON_Delete(o);
            o = NULL;
        }
        sb_resp_json(r, 200, o);
    }
    sb_fields_free(&f);
}

static void outage(sb_response *r, sb_kind kind, int status, const char *message)
{
    if (kind == SB_KIND_TOKEN)
        oauth_error(r, status, "temporarily_unavailable", message);
    else
        error_object(r, status, "sandbox_outage", message);
}

/* A username from the control API is taken as it is (not percent-encoded). */
static int canon_id(const char *id, char out[SB_TARGET_ID_MAX + 1], sb_why *why)
{
    size_t len = strlen(id);

    if (len == 0 || len > USERNAME_MAX)
        return sb_why_set(why, "intronis username must be 1..%d bytes", USERNAME_MAX);
    memcpy(out, id, len + 1);
    return 0;
}

static const sb_endpoint endpoints[] = {
    {HTTP_POST, "/oauth2/token", SB_KIND_TOKEN, token,
     "form grant_type=client_credentials, client_id, client_secret\n"
     "-> {access_token, expires_in (a string), token_type}"},
    {HTTP_POST, "/v1/partners/{username}/cancellation", SB_KIND_CANCEL, cancel,
     "Accept; JSON {reason_id,reason_note} or XML <cancellation>\n"
     "-> 303 See Other, Location: the partner"},
    {HTTP_GET, "/v1/partners/{username}", SB_KIND_STATUS, status, "Accept  -> {username, status}"},
};

const sb_prov sb_prov_intronis = {
    .name = "intronis",
    .title = "Intronis / Barracuda ECHOplatform",
    .endpoints = endpoints,
    .nendpoints = SB_ARRAY_LEN(endpoints),
    .auth_header = "Authorization",
    .auth_scheme = "OAuth",
    .auth_blanks = true,
    .token_grants = "client_credentials",
    .id_syntax = "<username>",
    .canon_id = canon_id,
    .state_names = {[SB_ST_ACTIVE] = "ACTIVE",
                    [SB_ST_STOPPED] = "ACTIVE",
                    [SB_ST_CANCELLED] = "CANCELED",
                    [SB_ST_MISSING] = "missing"},
    .outage = outage,
};
