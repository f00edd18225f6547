/*
 * prov_keliweb.c - Keliweb API v2 endpoints (a WHMCS proxy):
 *
 *   POST /oauth/token                      password / refresh_token grants
 *   POST /api/v2/keliweb/add-cancel-request  multipart/form-data
 *        serviceid (required integer), type ("Immediate" or
 *        "End of Billing Period"), reason
 *
 * Like WHMCS AddCancelRequest, business outcomes are 200 with
 * {"result":"success",..} or {"result":"error","message":..}.  Token errors
 * follow Laravel Passport (league/oauth2-server).  Targets are
 * keliweb:<serviceid> (decimal).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <http_parser.h>

#include "form.h"
#include "multipart.h"
#include "sandbox.h"

/* The one user the password grant accepts. */
#define KELIWEB_USER "sandbox-user"
#define KELIWEB_PASSWORD "sandbox-password"
/* Refresh tokens live 10 days (vendor documentation). */
#define REFRESH_TTL_S 864000

/* {"result":"error","message":message} with status. */
static void result_error(sb_response *r, int status, const char *message)
{
    cJSON *o = sb_json_obj1("result", "error");

    if (o != NULL && cJSON_AddStringToObject(o, "message", message) == NULL) {
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
    result_error(r, status, r->why.msg);
}

static void cancel_effect(sb_target *t)
{
    t->state = SB_ST_CANCELLED;
}

/* {"result":"success","serviceid":"<id>","userid":"1"} */
static void cancel_success(sb_ctx *ctx, sb_response *r, int status, const void *arg)
{
    const char *serviceid = arg;
    cJSON *o = sb_json_obj1("result", "success");

    (void)ctx;
    if (o != NULL && (cJSON_AddStringToObject(o, "serviceid", serviceid) == NULL ||
                      cJSON_AddStringToObject(o, "userid", "1") == NULL)) {
        cJSON_Delete(o);
        o = NULL;
    }
    sb_resp_json(r, status, o);
}

static const sb_cancel_ops cancel_ops = {cancel_effect, cancel_success, result_error};

/* Read the request's form: multipart/form-data, or (token endpoint only)
 * application/x-www-form-urlencoded.  Returns 0, or -1 with r filled. */
static int read_form(const sb_request *req, bool allow_urlencoded, sb_fields *f, sb_response *r)
{
    const char *ct = sb_req_header(req, "Content-Type");
    char boundary[SB_BOUNDARY_MAX + 1];
    sb_why why;
    int rc;

    if (allow_urlencoded && sb_media_type_is(ct, "application/x-www-form-urlencoded", true))
        rc = sb_form_parse(req->body, req->body_len, f, &why);
    else if (allow_urlencoded && !sb_media_type_is(ct, "multipart/form-data", true))
        rc = sb_why_set(&why, "Content-Type must be application/x-www-form-urlencoded or "
                              "multipart/form-data");
    else if ((rc = sb_multipart_boundary(ct, boundary, &why)) == 0)
        rc = sb_multipart_parse(req->body, req->body_len, boundary, f, &why);
    if (rc == -ENOMEM) {
        sb_resp_json(r, 500, NULL);
        return -1;
    }
    if (rc != 0) {
        refuse(r, 400, "%s", why.msg);
        return -1;
    }
    return 0;
}

/* Validate the cancel form; on success *serviceid is set. */
static int check_form(const sb_fields *f, int64_t *serviceid, sb_response *r)
{
    static const char *const allowed[] = {"serviceid", "type", "reason", NULL};
    const char *unknown = sb_fields_unknown(f, allowed);
    const char *sid = sb_fields_get(f, "serviceid"), *type = sb_fields_get(f, "type");

    if (unknown != NULL) {
        refuse(r, 400, "unknown field \"%s\" (serviceid, type, reason)", unknown);
        return -1;
    }
    if (sid == NULL) {
        refuse(r, 400, "missing field serviceid");
        return -1;
    }
    if (sb_parse_int(sid, strlen(sid), 1, INT64_MAX, serviceid) != 0) {
        refuse(r, 400, "serviceid must be a positive integer");
        return -1;
    }
    if (type != NULL && strcmp(type, "Immediate") != 0 &&
        strcmp(type, "End of Billing Period") != 0) {
        refuse(r, 400, "type must be \"Immediate\" or \"End of Billing Period\"");
        return -1;
    }
    return 0;
}

static void cancel(sb_ctx *ctx, const sb_call *c, sb_response *r)
{
    const sb_request *req = c->req;
    char key[SB_KEY_MAX + 1], id[24];
    sb_fields f = {0};
    int64_t serviceid;
    sb_target *t;

    if (sb_auth_check(ctx, c) != SB_AUTH_OK) {
        refuse(r, 401, "Unauthenticated.");
        return;
    }
    if (read_form(req, false, &f, r) != 0)
        return;
    if (check_form(&f, &serviceid, r) != 0)
        goto out;
    snprintf(id, sizeof(id), "%" PRId64, serviceid);
    if (sb_target_key(c->prov, id, key) != 0) {
        sb_resp_json(r, 500, NULL); /* cannot happen: an int64 fits */
        goto out;
    }
    if (sb_cancel_begin(ctx, c->prov, key, &cancel_ops, id, &t, r) != 0)
        goto out;
    if (t->state == SB_ST_MISSING) {
        result_error(r, 200, "Service ID Not Found");
    } else if (t->state == SB_ST_CANCELLED) {
        result_error(r, 200, "Existing Cancellation Request Exists");
    } else {
        cancel_effect(t);
        cancel_success(ctx, r, 200, id);
    }
out:
    sb_fields_free(&f);
}

/* A Passport-style error {"error":..,"error_description":..,"message":..}. */
static void oauth_error(sb_response *r, int status, const char *code, const char *desc)
{
    cJSON *o = sb_json_obj1("error", code);

    snprintf(r->why.msg, sizeof(r->why.msg), "%s: %s", code, desc);
    r->rejected = true;
    if (o != NULL && (cJSON_AddStringToObject(o, "error_description", desc) == NULL ||
                      cJSON_AddStringToObject(o, "message", desc) == NULL)) {
        cJSON_Delete(o);
        o = NULL;
    }
    sb_resp_json(r, status, o);
}

/* Mint an access + refresh pair and answer it. */
static void issue_pair(sb_ctx *ctx, sb_prov_id p, sb_response *r)
{
    char access[SB_TOKEN_LEN + 1], refresh[SB_TOKEN_LEN + 1];
    uint64_t now = sb_now_ms(ctx);
    cJSON *o;

    if (sb_tokens_mint(ctx->tokens, p, SB_TOKEN_ACCESS, now, (uint64_t)ctx->token_ttl_s * 1000,
                       access) != 0 ||
        sb_tokens_mint(ctx->tokens, p, SB_TOKEN_REFRESH, now, (uint64_t)REFRESH_TTL_S * 1000,
                       refresh) != 0) {
        oauth_error(r, 503, "temporarily_unavailable", "token table full");
        return;
    }
    ctx->stats.tokens_minted[p]++;
    o = cJSON_CreateObject();
    if (cJSON_AddStringToObject(o, "token_type", "Bearer") == NULL ||
        cJSON_AddNumberToObject(o, "expires_in", ctx->token_ttl_s) == NULL ||
        cJSON_AddStringToObject(o, "access_token", access) == NULL ||
        cJSON_AddStringToObject(o, "refresh_token", refresh) == NULL) {
        cJSON_Delete(o);
        o = NULL;
    }
    sb_resp_json(r, 200, o);
}

static void token(sb_ctx *ctx, const sb_call *c, sb_response *r)
{
    const sb_request *req = c->req;
    const char *grant, *id, *secret, *user, *pass, *refresh;
    sb_fields f = {0};

    if (read_form(req, true, &f, r) != 0) {
        r->rejected = true;
        return;
    }
    grant = sb_fields_get(&f, "grant_type");
    id = sb_fields_get(&f, "client_id");
    secret = sb_fields_get(&f, "client_secret");
    user = sb_fields_get(&f, "username");
    pass = sb_fields_get(&f, "password");
    refresh = sb_fields_get(&f, "refresh_token");
    if (grant == NULL)
        oauth_error(r, 400, "invalid_request", "missing grant_type");
    else if (strcmp(grant, "password") != 0 && strcmp(grant, "refresh_token") != 0)
        oauth_error(r, 400, "unsupported_grant_type",
                    "grant_type must be password or refresh_token");
    else if (id == NULL || secret == NULL || strcmp(id, SB_CLIENT_ID) != 0 ||
             strcmp(secret, SB_CLIENT_SECRET) != 0)
        oauth_error(r, 401, "invalid_client", "Client authentication failed");
    else if (strcmp(grant, "password") == 0 && (user == NULL || pass == NULL))
        oauth_error(r, 400, "invalid_request", "username and password are required");
    else if (strcmp(grant, "password") == 0 &&
             (strcmp(user, KELIWEB_USER) != 0 || strcmp(pass, KELIWEB_PASSWORD) != 0))
        oauth_error(r, 400, "invalid_grant", "The user credentials were incorrect.");
    else if (strcmp(grant, "refresh_token") == 0 &&
             (refresh == NULL ||
              !sb_tokens_take(ctx->tokens, c->prov, SB_TOKEN_REFRESH, refresh, sb_now_ms(ctx))))
        oauth_error(r, 401, "invalid_request", "The refresh token is invalid.");
    else
        issue_pair(ctx, c->prov, r);
    sb_fields_free(&f);
}

static void outage(sb_response *r, sb_kind kind, int status, const char *message)
{
    if (kind == SB_KIND_TOKEN)
        oauth_error(r, status, "temporarily_unavailable", message);
    else
        result_error(r, status, message);
}

/* A positive integer, written back in canonical decimal. */
static int canon_id(const char *id, char out[SB_TARGET_ID_MAX + 1], sb_why *why)
{
    int64_t serviceid;

    if (sb_parse_int(id, strlen(id), 1, INT64_MAX, &serviceid) != 0)
        return sb_why_set(why, "keliweb target must be keliweb:<serviceid> (positive integer)");
    snprintf(out, SB_TARGET_ID_MAX + 1, "%" PRId64, serviceid);
    return 0;
}

static const sb_endpoint endpoints[] = {
    {HTTP_POST, "/oauth/token", SB_KIND_TOKEN, token,
     "form (urlencoded or multipart): client_id, client_secret, grant_type=password\n"
     "with username=" KELIWEB_USER ", password=" KELIWEB_PASSWORD ",\n"
     "or grant_type=refresh_token with refresh_token (single use)\n"
     "-> {token_type, expires_in, access_token, refresh_token}"},
    {HTTP_POST, "/api/v2/keliweb/add-cancel-request", SB_KIND_CANCEL, cancel,
     "multipart serviceid, type, reason  -> {\"result\":\"success\",...}"},
};

const sb_prov sb_prov_keliweb = {
    .name = "keliweb",
    .title = "Keliweb API v2 (WHMCS)",
    .endpoints = endpoints,
    .nendpoints = SB_ARRAY_LEN(endpoints),
    .auth_header = "Authorization",
    .auth_scheme = "Bearer",
    .token_grants = "password, refresh_token",
    .id_syntax = "<serviceid>",
    .canon_id = canon_id,
    .state_names = {[SB_ST_ACTIVE] = "Active",
                    [SB_ST_STOPPED] = "Active",
                    [SB_ST_CANCELLED] = "Cancellation Requested",
                    [SB_ST_MISSING] = "missing"},
    .outage = outage,
};
