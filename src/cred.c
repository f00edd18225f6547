/*
 * cred.c - see cred.h: secrets, waiters and minting.  The token request
 * goes through the same HTTP engine as the provider calls (on the loop,
 * never blocking); its form and the parsing of its answer are
 * cred_token.c.
 */
#include "cancelq/cred.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cancelq/log.h"
#include "cancelq/tls.h"

struct cq_cred {
    uv_loop_t *loop;
    cq_http *http;
    const cq_provider_conf *pc;
    char *client_secret; /* secrets, registered for redaction */
    char *password;
    char *token; /* the current token (kept registered until replaced) */
    char *refresh;
    bool valid;         /* token may be used */
    unsigned gen;       /* bumped by every new token */
    uint64_t renew_at;  /* loop time: start a renewal */
    uint64_t expire_at; /* loop time: token no longer usable */
    bool minting;       /* a token request is out */
    bool retry_armed;   /* the timer waits to retry a failed request */
    cq_grant grant;     /* of the request out */
    unsigned fails;     /* consecutive failures, for the backoff */
    cq_tls_id *client;  /* mutual TLS identity (client_cert_file + client_key_file) or NULL */
    cq_cred_waiter *head, *tail;
    cq_cred_stats stats;
    uv_timer_t timer;
    bool closing;
};

static void mint_start(cq_cred *c);

/* --- secrets ------------------------------------------------------------- */

/* Replace *slot with a newly read secret (registered for redaction). */
static int secret_load(const char *path, char **slot, cq_err *err)
{
    char *s = NULL;
    int rc;

    if (path == NULL)
        return 0;
    rc = cq_secret_read(path, &s, err);
    if (rc != 0)
        return rc;
    rc = cq_log_add_secret_checked(s);
    if (rc < 0) {
        cq_secret_free(s);
        return cq_err_set(err, -ENOMEM, "nomem", "out of memory");
    }
    if (rc == CQ_LOG_SECRET_SHORT)
        cq_log_secret_short(path);
    if (*slot != NULL && strcmp(*slot, s) != 0)
        cq_log_remove_secret(*slot);
    cq_secret_free(*slot);
    *slot = s;
    return 0;
}

/* Replace the client identity with one read now (requests in flight keep
 * the one they started with: it is reference-counted). */
static int client_load(cq_cred *c, cq_err *err)
{
    cq_tls_id *id = NULL;
    int rc;

    if (c->pc->client_cert_file == NULL || c->pc->client_key_file == NULL)
        return 0;
    rc = cq_tls_id_load(c->pc->client_cert_file, c->pc->client_key_file, &id, err);
    if (rc != 0)
        return rc;
    cq_tls_id_unref(c->client);
    c->client = id;
    return 0;
}

/* (Re-)read the secret files: the token_file, or the OAuth2 secrets. */
static int secrets_load(cq_cred *c, cq_err *err)
{
    int rc;

    if (c->pc->cred == CQ_CRED_TOKEN_FILE) {
        rc = secret_load(c->pc->token_file, &c->token, err);
        if (rc == 0) {
            c->valid = true;
            c->gen++;
            c->stats.mints++;
        }
        return rc;
    }
    rc = secret_load(c->pc->client_secret_file, &c->client_secret, err);
    if (rc == 0 && c->pc->cred == CQ_CRED_PASSWORD)
        rc = secret_load(c->pc->password_file, &c->password, err);
    if (rc == 0 && c->retry_armed) {
        c->fails = 0; /* new secrets: try them now, not after the backoff */
        mint_start(c);
    }
    return rc;
}

int cq_cred_reload(cq_cred *c, cq_err *err)
{
    int rc = client_load(c, err);

    return rc != 0 ? rc : secrets_load(c, err);
}

/* --- waiters ------------------------------------------------------------- */

static void wake(cq_cred *c, int status, uint64_t retry_ms)
{
    cq_cred_waiter *wt = c->head, *next;

    /* detach first: a callback may wait again */
    c->head = c->tail = NULL;
    for (; wt != NULL; wt = next) {
        next = wt->next;
        wt->next = NULL;
        wt->cb(wt, status, retry_ms);
    }
}

void cq_cred_wait(cq_cred *c, cq_cred_waiter *wt)
{
    wt->next = NULL;
    if (c->tail != NULL)
        c->tail->next = wt;
    else
        c->head = wt;
    c->tail = wt;
    if (!c->retry_armed)
        mint_start(c);
}

bool cq_cred_unwait(cq_cred *c, cq_cred_waiter *wt)
{
    cq_cred_waiter **pp, *prev = NULL;

    for (pp = &c->head; *pp != NULL; prev = *pp, pp = &(*pp)->next) {
        if (*pp == wt) {
            *pp = wt->next;
            if (c->tail == wt)
                c->tail = prev;
            wt->next = NULL;
            return true;
        }
    }
    return false;
}

void cq_cred_cancel_waiters(cq_cred *c)
{
    wake(c, -ECANCELED, 0);
}

/* --- minting ------------------------------------------------------------- */

static void timer_cb(uv_timer_t *h)
{
    cq_cred *c = h->data;

    c->retry_armed = false;
    mint_start(c);
}

static void mint_failed(cq_cred *c, long status, const char *why)
{
    uint64_t delay = CQ_CRED_BACKOFF_MAX_MS;
    char st[16], ms[24], n[16];

    if (c->fails < 16 && (CQ_CRED_BACKOFF_BASE_MS << c->fails) < CQ_CRED_BACKOFF_MAX_MS)
        delay = (uint64_t)CQ_CRED_BACKOFF_BASE_MS << c->fails;
    c->fails++;
    c->stats.failures++;
    c->stats.failing = true;
    snprintf(c->stats.last_error, sizeof(c->stats.last_error), "%s", why);
    snprintf(st, sizeof(st), "%ld", status);
    snprintf(ms, sizeof(ms), "%llu", (unsigned long long)delay);
    snprintf(n, sizeof(n), "%u", c->fails);
    cq_log(CQ_LOG_WARN, "token_mint_failed", "provider", c->pc->name, "grant",
           cq_grant_name(c->grant), "http_status", st, "error", why, "failures", n, "retry_in_ms",
           ms, NULL);
    if (!c->closing) {
        c->retry_armed = true;
        uv_timer_start(&c->timer, timer_cb, delay, 0);
    }
    wake(c, -EAGAIN, delay);
}

static void install(cq_cred *c, cq_token_answer *a)
{
    uint64_t now = uv_now(c->loop), ttl_ms = a->expires_in_s * 1000;
    char ttl[24];

    if (cq_log_add_secret(a->access_token) != 0 ||
        (a->refresh_token != NULL && cq_log_add_secret(a->refresh_token) != 0)) {
        mint_failed(c, 200, "out of memory");
        return;
    }
    if (c->token != NULL)
        cq_log_remove_secret(c->token);
    cq_secret_free(c->token);
    c->token = a->access_token;
    a->access_token = NULL;
    if (a->refresh_token != NULL) {
        if (c->refresh != NULL)
            cq_log_remove_secret(c->refresh);
        cq_secret_free(c->refresh);
        c->refresh = a->refresh_token;
        a->refresh_token = NULL;
    }
    c->valid = true;
    c->gen++;
    c->fails = 0;
    c->stats.mints++;
    c->stats.failing = false;
    c->stats.last_error[0] = '\0';
    c->expire_at = now + ttl_ms;
    c->renew_at = now + ttl_ms * CQ_CRED_RENEW_AT_PCT / 100;
    snprintf(ttl, sizeof(ttl), "%llu", (unsigned long long)a->expires_in_s);
    cq_log(CQ_LOG_NOTICE, "token_minted", "provider", c->pc->name, "grant", cq_grant_name(c->grant),
           "expires_in_s", ttl, NULL);
    if (!c->closing)
        uv_timer_start(&c->timer, timer_cb, c->renew_at - now, 0);
    wake(c, 0, 0);
}

static void mint_cb(void *data, const cq_response *resp)
{
    cq_cred *c = data;
    cq_token_answer a;
    cq_err err;
    char why[256];

    c->minting = false;
    if (resp->transport == CQ_TR_ABORTED) {
        wake(c, -ECANCELED, 0);
        return;
    }
    if (resp->transport != CQ_TR_OK || resp->status != 200) {
        if (c->grant == CQ_GRANT_REFRESH && resp->transport == CQ_TR_OK && resp->status >= 400 &&
            resp->status < 500) {
            /* the refresh token is spent or revoked: fall back to the password */
            cq_log(CQ_LOG_NOTICE, "token_refresh_refused", "provider", c->pc->name, "detail",
                   "using the password grant", NULL);
            if (c->refresh != NULL)
                cq_log_remove_secret(c->refresh);
            cq_secret_free(c->refresh);
            c->refresh = NULL;
            mint_start(c);
            return;
        }
        if (resp->transport == CQ_TR_TLS)
            snprintf(why, sizeof(why), "%s: %.160s", cq_tls_fail_code(resp->tls),
                     resp->transport_msg != NULL ? resp->transport_msg : "certificate refused");
        else if (resp->transport != CQ_TR_OK)
            snprintf(why, sizeof(why), "transport: %.100s",
                     resp->transport_msg != NULL ? resp->transport_msg : "failed");
        else
            snprintf(why, sizeof(why), "token endpoint answered HTTP %ld", resp->status);
        mint_failed(c, resp->status, why);
        return;
    }
    cq_err_clear(&err);
    if (cq_cred_parse(resp->body, resp->body_len, &a, &err) != 0) {
        mint_failed(c, resp->status, err.msg);
        return;
    }
    install(c, &a);
    cq_token_answer_clear(&a);
}

/* Send a token request unless one is out. */
static void mint_start(cq_cred *c)
{
    cq_request req;
    cq_http_opts o;
    cq_err err;
    char *form = NULL;
    int rc;

    if (c->minting || c->closing || c->pc->cred == CQ_CRED_TOKEN_FILE)
        return;
    if (c->retry_armed) {
        uv_timer_stop(&c->timer);
        c->retry_armed = false;
    }
    c->grant = c->pc->cred == CQ_CRED_CLIENT_CREDENTIALS ? CQ_GRANT_CLIENT_CREDENTIALS
               : c->refresh != NULL                      ? CQ_GRANT_REFRESH
                                                         : CQ_GRANT_PASSWORD;
    memset(&req, 0, sizeof(req));
    cq_err_clear(&err);
    rc = cq_cred_form(c->pc, c->grant, c->client_secret, c->password, c->refresh, &form, &err);
    if (rc != 0 || form == NULL)
        goto fail;
    req.method = "POST";
    req.url = strdup(c->pc->token_url);
    if (req.url == NULL ||
        cq_request_add_header(&req, "Content-Type: application/x-www-form-urlencoded") != 0 ||
        cq_request_add_header(&req, "Accept: application/json") != 0) {
        cq_err_set(&err, -ENOMEM, "nomem", "out of memory");
        goto fail;
    }
    req.body = form;
    req.body_len = strlen(form);
    form = NULL;
    memset(&o, 0, sizeof(o));
    cq_cred_http_opts(c, &o);
    o.timeout_ms = c->pc->timeout_ms;
    o.connect_timeout_ms = c->pc->connect_timeout_ms;
    o.max_response = CQ_CRED_ANSWER_MAX;
    o.allow_http = c->pc->allow_insecure_http;
    rc = cq_http_send(c->http, &req, &o, mint_cb, c);
    if (rc != 0) {
        cq_err_set(&err, rc, "internal", "could not start the token request (%d)", rc);
        goto fail;
    }
    c->minting = true;
    if (req.body != NULL)
        explicit_bzero(req.body, req.body_len);
    cq_request_clear(&req);
    cq_log(CQ_LOG_INFO, "token_mint_start", "provider", c->pc->name, "grant",
           cq_grant_name(c->grant), NULL);
    return;
fail:
    cq_secret_free(form);
    if (req.body != NULL)
        explicit_bzero(req.body, req.body_len);
    cq_request_clear(&req);
    mint_failed(c, 0, err.msg);
}

const char *cq_cred_token(cq_cred *c, unsigned *gen)
{
    uint64_t now = uv_now(c->loop);

    if (c->pc->cred == CQ_CRED_TOKEN_FILE) {
        *gen = c->gen;
        return c->valid ? c->token : NULL;
    }
    if (c->valid && now >= c->expire_at)
        c->valid = false;
    if (c->valid && now >= c->renew_at && !c->minting && !c->retry_armed)
        mint_start(c); /* the timer is late (a busy loop): renew while the token still works */
    *gen = c->gen;
    return c->valid ? c->token : NULL;
}

void cq_cred_invalid(cq_cred *c, unsigned gen)
{
    cq_err err;

    if (gen != c->gen || !c->valid)
        return; /* a newer token replaced it, or a renewal is under way */
    c->valid = false;
    cq_log(CQ_LOG_NOTICE, "token_refused", "provider", c->pc->name, "detail",
           "the provider answered 401; renewing the token", NULL);
    if (c->pc->cred == CQ_CRED_TOKEN_FILE) {
        cq_err_clear(&err);
        if (secrets_load(c, &err) != 0) {
            /* keep the old token: the repeat's second 401 ends the job as failed */
            c->valid = true;
            cq_log(CQ_LOG_ERR, "token_read_failed", "provider", c->pc->name, "error", err.msg,
                   NULL);
        }
        return;
    }
    if (!c->retry_armed)
        mint_start(c);
}

uint64_t cq_cred_retry_in(const cq_cred *c)
{
    uint64_t due;

    if (!c->retry_armed)
        return 0;
    due = uv_timer_get_due_in(&c->timer);
    return due > 0 ? due : 1;
}

void cq_cred_http_opts(cq_cred *c, cq_http_opts *o)
{
    o->ca_file = c->pc->ca_file;
    o->client = c->client;
    o->proxy = c->pc->proxy;
    o->no_proxy = c->pc->no_proxy;
    o->tls_failures = c->stats.tls_failures;
}

const cq_cred_stats *cq_cred_stats_get(const cq_cred *c)
{
    return &c->stats;
}

/* --- life cycle ---------------------------------------------------------- */

static void cred_closed(uv_handle_t *h)
{
    free(h->data);
}

cq_cred *cq_cred_new(uv_loop_t *loop, cq_http *http, const cq_provider_conf *pc, cq_err *err)
{
    cq_cred *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        cq_err_set(err, -ENOMEM, "nomem", "out of memory");
        return NULL;
    }
    c->loop = loop;
    c->http = http;
    c->pc = pc;
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    if (pc->cred != CQ_CRED_TOKEN_FILE &&
        (pc->token_url == NULL || pc->client_id == NULL || pc->client_secret_file == NULL ||
         (pc->cred == CQ_CRED_PASSWORD && (pc->username == NULL || pc->password_file == NULL)))) {
        cq_err_set(err, -EINVAL, "config", "provider %s: incomplete OAuth2 settings", pc->name);
        goto fail;
    }
    if (cq_cred_reload(c, err) != 0)
        goto fail;
    return c;
fail:
    cq_cred_free(c);
    return NULL;
}

void cq_cred_free(cq_cred *c)
{
    if (c == NULL)
        return;
    c->closing = true;
    c->head = c->tail = NULL;
    uv_timer_stop(&c->timer);
    cq_secret_free(c->client_secret);
    cq_secret_free(c->password);
    cq_secret_free(c->token);
    cq_secret_free(c->refresh);
    c->client_secret = c->password = c->token = c->refresh = NULL;
    cq_tls_id_unref(c->client);
    c->client = NULL;
    uv_close((uv_handle_t *)&c->timer, cred_closed);
}
