/*
 * http_req.c - setting up one transfer (http_int.h): the request checked,
 * copied into the allocation curl reads from while it runs (header lines,
 * credential, POST body), and an easy handle configured with the engine's
 * fixed safety rules and the request's options.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_int.h"

#ifndef CQ_VERSION
#define CQ_VERSION "unknown"
#endif

/* Per-transfer receive and upload buffers, held while a request is in
 * flight: provider answers are a few hundred bytes, and 1000 requests in
 * flight must fit in ~22 KiB each (docs/bench.md).  1 KiB is curl's
 * minimum; a longer answer takes more reads (over TLS: more record-layer
 * copies, not more system calls), never a cut.  16 KiB is curl's minimum
 * for uploads; only multipart requests allocate that buffer. */
#define HTTP_RECV_BUFFER 1024L
#define HTTP_UPLOAD_BUFFER 16384L

static long clamp_ms(uint64_t ms)
{
    return ms > (uint64_t)LONG_MAX ? LONG_MAX : (long)ms;
}

/* A header line or credential must not carry CR or LF: curl sends header
 * strings verbatim, so either would let a value inject header lines. */
static bool has_crlf(const char *s)
{
    return strpbrk(s, "\r\n") != NULL;
}

/* --- building a transfer ------------------------------------------------ */

/* The last header line of every request: no 100-continue round trip, the
 * body goes out with the headers. */
static const char expect_line[] = "Expect:";

static bool size_add(size_t *total, size_t n)
{
    if (n > SIZE_MAX - *total)
        return false;
    *total += n;
    return true;
}

static bool has_auth(const cq_http_opts *opts)
{
    return opts->auth_prefix != NULL && opts->token != NULL;
}

/* Header list nodes and bytes after the struct that req's copies need
 * (see http_req).  false when the sizes overflow. */
static bool extra_size(const cq_request *req, const cq_http_opts *opts, bool post, size_t *nhdr,
                       size_t *extra)
{
    size_t n = req->nheaders + (has_auth(opts) ? 2 : 1), total = 0, i;
    bool ok =
        size_add(&total, n * sizeof(struct curl_slist)) && size_add(&total, sizeof(expect_line));

    for (i = 0; ok && i < req->nheaders; i++)
        ok = size_add(&total, strlen(req->headers[i]) + 1);
    if (ok && has_auth(opts))
        ok = size_add(&total, strlen(opts->auth_prefix)) &&
             size_add(&total, strlen(opts->token) + 1);
    /* A POST without a form always gets a buffer, also for an empty body,
     * so curl sends "Content-Length: 0" rather than reading from stdin. */
    if (ok && post && req->nform == 0)
        ok = size_add(&total, req->body_len) && size_add(&total, 1);
    *nhdr = n;
    *extra = total;
    return ok;
}

/* A zeroed request with room for req's copies; hdr[] is filled by
 * copy_request.  NULL when memory is short. */
static http_req *req_new(const cq_request *req, const cq_http_opts *opts, bool post)
{
    size_t nhdr, extra;
    http_req *r;

    if (!extra_size(req, opts, post, &nhdr, &extra) || extra > SIZE_MAX - sizeof(*r))
        return NULL;
    r = malloc(sizeof(*r) + extra);
    if (r == NULL)
        return NULL;
    memset(r, 0, sizeof(*r));
    r->extra_len = extra;
    r->nhdr = nhdr;
    return r;
}

/* Node i of r->hdr: a and then b (or nothing) copied to p, linked to the
 * next node unless it is the last.  Returns the byte after the copy. */
static char *put_line(http_req *r, size_t i, char *p, const char *a, const char *b)
{
    size_t la = strlen(a), lb = b != NULL ? strlen(b) : 0;

    memcpy(p, a, la);
    if (lb > 0)
        memcpy(p + la, b, lb);
    p[la + lb] = '\0';
    r->hdr[i].data = p;
    r->hdr[i].next = i + 1 < r->nhdr ? &r->hdr[i + 1] : NULL;
    return p + la + lb + 1;
}

/* Fill r->hdr: the header list (the request's lines, the credential line,
 * "Expect:") and our copy of the POST body; curl reads both in place while
 * the transfer runs, and they are wiped with r. */
static void copy_request(http_req *r, const cq_request *req, const cq_http_opts *opts, bool post)
{
    char *p = (char *)(r->hdr + r->nhdr);
    size_t i, n = 0;

    for (i = 0; i < req->nheaders; i++)
        p = put_line(r, n++, p, req->headers[i], NULL);
    if (has_auth(opts))
        p = put_line(r, n++, p, opts->auth_prefix, opts->token);
    p = put_line(r, n, p, expect_line, NULL);
    if (post && req->nform == 0) {
        r->post = p;
        r->post_len = req->body_len;
        if (r->post_len > 0)
            memcpy(r->post, req->body, r->post_len);
        r->post[r->post_len] = '\0';
    }
}

http_req *cq_http_req_new(const cq_request *req, const cq_http_opts *opts, bool post)
{
    http_req *r = req_new(req, opts, post);

    if (r != NULL)
        copy_request(r, req, opts, post);
    return r;
}

static int build_form(http_req *r, const cq_request *req)
{
    curl_mimepart *part;
    size_t i;

    r->mime = curl_mime_init(r->easy);
    if (r->mime == NULL)
        return -ENOMEM;
    for (i = 0; i < req->nform; i++) {
        part = curl_mime_addpart(r->mime);
        if (part == NULL)
            return -ENOMEM;
        if (curl_mime_name(part, req->form[i].name) != CURLE_OK ||
            curl_mime_data(part, req->form[i].value != NULL ? req->form[i].value : "",
                           CURL_ZERO_TERMINATED) != CURLE_OK)
            return -ENOMEM;
    }
    return 0;
}

/* Where a transfer goes and whom it trusts: the CA bundle, the client
 * identity (from memory: CURL_BLOB_NOCOPY, r holds a reference to it until
 * the handle is reset), and the proxy.  CURLOPT_PROXY "" and CURLOPT_NOPROXY
 * set on every request keep libcurl from reading http_proxy, https_proxy,
 * ALL_PROXY and NO_PROXY from the environment: a daemon's environment is
 * not its config.  0 or -EINVAL. */
static int configure_net(http_req *r, const cq_http_opts *opts)
{
    CURL *e = r->easy;
    struct curl_blob cert, key;
    const char *p;

    if (opts->ca_file != NULL && opts->ca_file[0] != '\0' &&
        curl_easy_setopt(e, CURLOPT_CAINFO, opts->ca_file) != CURLE_OK)
        return -EINVAL;
    if (opts->client != NULL) {
        r->client = cq_tls_id_ref(opts->client);
        p = cq_tls_id_cert(r->client, &cert.len);
        cert.data = (void *)p;
        cert.flags = CURL_BLOB_NOCOPY;
        p = cq_tls_id_key(r->client, &key.len);
        key.data = (void *)p;
        key.flags = CURL_BLOB_NOCOPY;
        if (curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &cert) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM") != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &key) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM") != CURLE_OK)
            return -EINVAL;
    }
    if (curl_easy_setopt(e, CURLOPT_PROXY, opts->proxy != NULL ? opts->proxy : "") != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_NOPROXY, opts->no_proxy != NULL ? opts->no_proxy : "") !=
            CURLE_OK)
        return -EINVAL;
    r->tls_failures = opts->tls_failures;
    return 0;
}

#define SETOPT(easy, opt, val)                                                                     \
    do {                                                                                           \
        if (curl_easy_setopt((easy), (opt), (val)) != CURLE_OK)                                    \
            goto bad_option;                                                                       \
    } while (0)

/* Apply the engine's fixed safety rules, the per-request options and the
 * method; r->hdr is filled.  Every option is set per request: the pool
 * resets a handle after each transfer (curl_easy_reset also clears the
 * CURLINFO values that maybe_sent is read from).  0 or -errno. */
int cq_http_req_configure(http_req *r, const cq_request *req, const cq_http_opts *opts, bool post)
{
    CURL *e = r->easy;
    const char *protocols = opts->allow_http ? "http,https" : "https";
    int rc;

    SETOPT(e, CURLOPT_URL, req->url);
    SETOPT(e, CURLOPT_PRIVATE, (void *)r);
    SETOPT(e, CURLOPT_ERRORBUFFER, r->errbuf);
    SETOPT(e, CURLOPT_NOSIGNAL, 1L);
    SETOPT(e, CURLOPT_FOLLOWLOCATION, 0L);
    SETOPT(e, CURLOPT_PROTOCOLS_STR, protocols);
    SETOPT(e, CURLOPT_REDIR_PROTOCOLS_STR, protocols);
    SETOPT(e, CURLOPT_SSL_VERIFYPEER, 1L);
    SETOPT(e, CURLOPT_SSL_VERIFYHOST, 2L);
    SETOPT(e, CURLOPT_TCP_KEEPALIVE, 1L);
    SETOPT(e, CURLOPT_BUFFERSIZE, HTTP_RECV_BUFFER);
    SETOPT(e, CURLOPT_UPLOAD_BUFFERSIZE, HTTP_UPLOAD_BUFFER);
    SETOPT(e, CURLOPT_USERAGENT, "cancelq/" CQ_VERSION);
    SETOPT(e, CURLOPT_TIMEOUT_MS, clamp_ms(opts->timeout_ms));
    SETOPT(e, CURLOPT_CONNECTTIMEOUT_MS, clamp_ms(opts->connect_timeout_ms));
    SETOPT(e, CURLOPT_WRITEFUNCTION, cq_http_on_write);
    SETOPT(e, CURLOPT_WRITEDATA, (void *)r);
    SETOPT(e, CURLOPT_HEADERFUNCTION, cq_http_on_header);
    SETOPT(e, CURLOPT_HEADERDATA, (void *)r);
    /* Sockets: their polls live as long as they do (http_uv.c).  curl
     * copies the close callback into each connection it makes. */
    SETOPT(e, CURLOPT_OPENSOCKETFUNCTION, cq_http_open_socket);
    SETOPT(e, CURLOPT_OPENSOCKETDATA, (void *)r->h);
    SETOPT(e, CURLOPT_CLOSESOCKETFUNCTION, cq_http_close_socket);
    SETOPT(e, CURLOPT_CLOSESOCKETDATA, (void *)r->h);
    SETOPT(e, CURLOPT_HTTPHEADER, &r->hdr[0]);
    rc = configure_net(r, opts);
    if (rc != 0)
        return rc;

    if (!post) {
        SETOPT(e, CURLOPT_HTTPGET, 1L);
    } else if (req->nform > 0) {
        /* curl writes Content-Type: multipart/form-data; boundary=... */
        rc = build_form(r, req);
        if (rc != 0)
            return rc;
        SETOPT(e, CURLOPT_MIMEPOST, r->mime);
    } else {
        /* r->post: see copy_request */
        SETOPT(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->post_len);
        SETOPT(e, CURLOPT_POSTFIELDS, r->post);
    }
    return 0;

bad_option:
    return -EINVAL;
}

int cq_http_req_check(const cq_request *req, const cq_http_opts *opts, bool *post)
{
    size_t i;

    if (req->url == NULL || req->method == NULL || req->nheaders > CQ_REQ_MAX_HEADERS ||
        req->nform > CQ_REQ_MAX_FORM || (req->body == NULL && req->body_len != 0))
        return -EINVAL;
    if (strcmp(req->method, "POST") == 0)
        *post = true;
    else if (strcmp(req->method, "GET") == 0)
        *post = false;
    else
        return -EINVAL;
    if (!*post && (req->nform > 0 || req->body != NULL))
        return -EINVAL;
    if (req->nform > 0 && req->body != NULL)
        return -EINVAL;
    for (i = 0; i < req->nheaders; i++) {
        if (req->headers[i] == NULL || has_crlf(req->headers[i]))
            return -EINVAL;
    }
    for (i = 0; i < req->nform; i++) {
        if (req->form[i].name == NULL)
            return -EINVAL;
    }
    if ((opts->auth_prefix != NULL && has_crlf(opts->auth_prefix)) ||
        (opts->token != NULL && has_crlf(opts->token)) || has_crlf(req->url) ||
        (opts->proxy != NULL && has_crlf(opts->proxy)))
        return -EINVAL;
    return 0;
}
