/*
 * cred_token.c - the pure part of credentials (see cred.h): the token
 * endpoint's request form and the parsing of its answer.  No I/O; unit
 * tested by tests/unit/test_cred.c.
 */
#include "cancelq/cred.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

const char *cq_grant_name(cq_grant g)
{
    switch (g) {
    case CQ_GRANT_PASSWORD:
        return "password";
    case CQ_GRANT_REFRESH:
        return "refresh_token";
    default:
        return "client_credentials";
    }
}

/* Append "&name=escaped(value)" (no '&' first) to *buf of *len bytes. */
static int form_add(char **buf, size_t *len, const char *name, const char *value)
{
    char *esc, *nb;
    size_t ln, le, need;

    if (value == NULL)
        return 0;
    esc = curl_easy_escape(NULL, value, (int)strlen(value));
    if (esc == NULL)
        return -ENOMEM;
    ln = strlen(name);
    le = strlen(esc);
    need = *len + (*len > 0 ? 1 : 0) + ln + 1 + le + 1;
    nb = malloc(need);
    if (nb == NULL) {
        explicit_bzero(esc, le);
        curl_free(esc);
        return -ENOMEM;
    }
    if (*len > 0) {
        memcpy(nb, *buf, *len);
        nb[(*len)++] = '&';
    }
    memcpy(nb + *len, name, ln);
    nb[*len + ln] = '=';
    memcpy(nb + *len + ln + 1, esc, le + 1);
    *len += ln + 1 + le;
    explicit_bzero(esc, le);
    curl_free(esc);
    cq_secret_free(*buf);
    *buf = nb;
    return 0;
}

int cq_cred_form(const cq_provider_conf *pc, cq_grant g, const char *client_secret,
                 const char *password, const char *refresh, char **out, cq_err *err)
{
    char *buf = NULL;
    size_t len = 0;
    int rc;

    *out = NULL;
    if (pc->client_id == NULL || client_secret == NULL)
        return cq_err_set(err, -EINVAL, "config", "client_id and client_secret are required");
    if (g == CQ_GRANT_PASSWORD && (pc->username == NULL || password == NULL))
        return cq_err_set(err, -EINVAL, "config", "username and password are required");
    if (g == CQ_GRANT_REFRESH && refresh == NULL)
        return cq_err_set(err, -EINVAL, "config", "no refresh token");
    rc = form_add(&buf, &len, "grant_type", cq_grant_name(g));
    if (rc == 0)
        rc = form_add(&buf, &len, "client_id", pc->client_id);
    if (rc == 0)
        rc = form_add(&buf, &len, "client_secret", client_secret);
    if (rc == 0 && g == CQ_GRANT_PASSWORD) {
        rc = form_add(&buf, &len, "username", pc->username);
        if (rc == 0)
            rc = form_add(&buf, &len, "password", password);
    }
    if (rc == 0 && g == CQ_GRANT_REFRESH)
        rc = form_add(&buf, &len, "refresh_token", refresh);
    if (rc == 0 && g != CQ_GRANT_REFRESH && pc->scope != NULL && pc->scope[0] != '\0')
        rc = form_add(&buf, &len, "scope", pc->scope);
    if (rc != 0) {
        cq_secret_free(buf);
        return cq_err_set(err, rc, "nomem", "out of memory");
    }
    *out = buf;
    return 0;
}

void cq_token_answer_clear(cq_token_answer *a)
{
    cq_secret_free(a->access_token);
    cq_secret_free(a->refresh_token);
    memset(a, 0, sizeof(*a));
}

static char *dup_token(const cJSON *s)
{
    size_t n;

    if (!cJSON_IsString(s) || s->valuestring == NULL)
        return NULL;
    n = strlen(s->valuestring);
    if (n == 0 || n > CQ_CRED_TOKEN_MAX || strpbrk(s->valuestring, "\r\n") != NULL)
        return NULL;
    return strdup(s->valuestring);
}

/* expires_in: a number, or a string of digits (Intronis). */
static int parse_ttl(const cJSON *e, uint64_t *out)
{
    double d;
    char *end;

    if (e == NULL || cJSON_IsNull(e)) {
        *out = CQ_CRED_DEFAULT_TTL_S;
        return 0;
    }
    if (cJSON_IsNumber(e)) {
        d = e->valuedouble;
    } else if (cJSON_IsString(e) && e->valuestring != NULL && e->valuestring[0] >= '0' &&
               e->valuestring[0] <= '9') {
        errno = 0;
        d = strtod(e->valuestring, &end);
        if (errno != 0 || *end != '\0')
            return -EINVAL;
    } else {
        return -EINVAL;
    }
    if (!isfinite(d) || d < 1)
        return -EINVAL;
    *out = d > CQ_CRED_MAX_TTL_S ? CQ_CRED_MAX_TTL_S : (uint64_t)d;
    return 0;
}

int cq_cred_parse(const char *body, size_t len, cq_token_answer *out, cq_err *err)
{
    cJSON *root;
    const cJSON *rt;
    const char *end = NULL;
    int rc = -EINVAL;

    memset(out, 0, sizeof(*out));
    root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    while (root != NULL && end < body + len && strchr(" \t\r\n", *end) != NULL && *end != '\0')
        end++;
    if (root == NULL || !cJSON_IsObject(root) || end != body + len) { /* no trailing bytes */
        cq_err_set(err, -EINVAL, "token_bad_answer", "token endpoint answer is not a JSON object");
        goto cleanup;
    }
    out->access_token = dup_token(cJSON_GetObjectItemCaseSensitive(root, "access_token"));
    if (out->access_token == NULL) {
        cq_err_set(err, -EINVAL, "token_bad_answer",
                   "token endpoint answer has no usable access_token");
        goto cleanup;
    }
    if (parse_ttl(cJSON_GetObjectItemCaseSensitive(root, "expires_in"), &out->expires_in_s) != 0) {
        cq_err_set(err, -EINVAL, "token_bad_answer", "token endpoint answer has a bad expires_in");
        goto cleanup;
    }
    rt = cJSON_GetObjectItemCaseSensitive(root, "refresh_token");
    if (rt != NULL && !cJSON_IsNull(rt)) {
        out->refresh_token = dup_token(rt);
        if (out->refresh_token == NULL) {
            cq_err_set(err, -EINVAL, "token_bad_answer",
                       "token endpoint answer has a bad refresh_token");
            goto cleanup;
        }
    }
    rc = 0;
cleanup:
    if (root != NULL) {
        /* the tree holds the tokens: wipe the strings before freeing */
        cJSON *it;

        cJSON_ArrayForEach (it, root) {
            if (cJSON_IsString(it) && it->valuestring != NULL)
                explicit_bzero(it->valuestring, strlen(it->valuestring));
        }
        cJSON_Delete(root);
    }
    if (rc != 0)
        cq_token_answer_clear(out);
    return rc;
}
