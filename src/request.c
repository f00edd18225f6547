/*
 * request.c - building a cq_request (request.h): header lines, multipart
 * fields and URLs with percent-encoded path segments.
 *
 * Pure: no I/O.  libcurl is used only for curl_easy_escape(), which needs no
 * handle and no curl_global_init() since curl 7.82.
 *
 * cJSON: adapters hand cJSON_Print*() output to cq_request.body, which is
 * released with free(); that is only right while cJSON's allocation hooks
 * are the default malloc/free, and cancelq never calls cJSON_InitHooks().
 */
#include "cancelq/request.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

/* A built URL is base_url plus a few short segments; anything longer is a
 * bug or a hostile parameter, never a real provider endpoint. */
#define CQ_URL_MAX 4096
/* Longest header line an adapter builds (all are static text today). */
#define CQ_HEADER_MAX 1024
/* Longest parameter value that may be percent-encoded into a path segment
 * (curl_easy_escape takes an int length; encoding triples the size). */
#define CQ_SEGMENT_MAX 1024

/* Requests ---------------------------------------------------------------- */

void cq_request_clear(cq_request *req)
{
    if (req == NULL)
        return;
    free(req->url);
    for (size_t i = 0; i < req->nheaders && i < CQ_REQ_MAX_HEADERS; i++)
        free(req->headers[i]);
    free(req->body);
    for (size_t i = 0; i < req->nform && i < CQ_REQ_MAX_FORM; i++)
        free(req->form[i].value);
    memset(req, 0, sizeof(*req));
}

/* Copy s[0..len) into a new NUL-terminated heap string, or NULL. */
static char *dup_n(const char *s, size_t len)
{
    char *p = malloc(len + 1);

    if (p == NULL)
        return NULL;
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

/* A header line must not smuggle a second header or a body in. */
static bool header_line_ok(const char *line, size_t len)
{
    if (len == 0 || len > CQ_HEADER_MAX || strchr(line, ':') == NULL)
        return false;
    return strpbrk(line, "\r\n") == NULL;
}

int cq_request_add_header(cq_request *req, const char *line)
{
    size_t len;
    char *copy;

    if (req == NULL || line == NULL)
        return -EINVAL;
    len = strlen(line);
    if (!header_line_ok(line, len))
        return -EINVAL;
    if (req->nheaders >= CQ_REQ_MAX_HEADERS)
        return -E2BIG;
    copy = dup_n(line, len);
    if (copy == NULL)
        return -ENOMEM;
    req->headers[req->nheaders++] = copy;
    return 0;
}

int cq_request_add_form(cq_request *req, const char *name, const char *value)
{
    char *copy;

    if (req == NULL || name == NULL || value == NULL || name[0] == '\0')
        return -EINVAL;
    if (req->nform >= CQ_REQ_MAX_FORM)
        return -E2BIG;
    copy = dup_n(value, strlen(value));
    if (copy == NULL)
        return -ENOMEM;
    req->form[req->nform].name = name;
    req->form[req->nform].value = copy;
    req->nform++;
    return 0;
}

/* URLs -------------------------------------------------------------------- */

/* A parameter that would not stay one path segment once encoded: empty (it
 * would merge two slashes) or a dot segment, which curl and servers resolve
 * ("/v1/partners/../cancellation" is "/v1/cancellation").  The unreserved
 * '.' is left alone by percent-encoding, so these are refused instead. */
static bool segment_ok(const char *s)
{
    size_t len = strlen(s);

    if (len == 0 || len > CQ_SEGMENT_MAX)
        return false;
    return strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

/* Append s[0..len) to buf (of CQ_URL_MAX + 1 bytes) at *pos. */
static int url_append(char *buf, size_t *pos, const char *s, size_t len)
{
    if (len > CQ_URL_MAX - *pos)
        return -E2BIG;
    memcpy(buf + *pos, s, len);
    *pos += len;
    buf[*pos] = '\0';
    return 0;
}

/* Percent-encode one parameter as a single path segment and append it. */
static int url_append_segment(char *buf, size_t *pos, const char *value)
{
    char *enc;
    int rc;

    if (!segment_ok(value))
        return -EINVAL;
    enc = curl_easy_escape(NULL, value, (int)strlen(value));
    if (enc == NULL)
        return -ENOMEM;
    rc = url_append(buf, pos, enc, strlen(enc));
    curl_free(enc);
    return rc;
}

int cq_url_build(const char *base, const char *const *segs, const bool *literal, size_t nsegs,
                 char **out)
{
    char *buf;
    size_t pos = 0, blen;
    int rc = 0;

    if (base == NULL || out == NULL || (nsegs > 0 && (segs == NULL || literal == NULL)))
        return -EINVAL;
    *out = NULL;
    buf = malloc(CQ_URL_MAX + 1);
    if (buf == NULL)
        return -ENOMEM;
    buf[0] = '\0';
    /* The config strips the trailing slash already; stay correct anyway. */
    blen = strlen(base);
    while (blen > 0 && base[blen - 1] == '/')
        blen--;
    rc = url_append(buf, &pos, base, blen);
    for (size_t i = 0; rc == 0 && i < nsegs; i++) {
        if (segs[i] == NULL)
            rc = -EINVAL;
        else if (literal[i])
            rc = url_append(buf, &pos, segs[i], strlen(segs[i]));
        else
            rc = url_append_segment(buf, &pos, segs[i]);
    }
    if (rc != 0)
        goto free_buf;
    *out = dup_n(buf, pos);
    if (*out == NULL)
        rc = -ENOMEM;
free_buf:
    free(buf);
    return rc;
}
