/*
 * http_answer.c - reading a request's answer (http_int.h): the body, capped
 * at the request's max_response in the write callback; the wanted response
 * headers (Retry-After, Location, Content-Type); and, once the transfer
 * ended, the cq_response with its transport outcome and maybe_sent.
 *
 * status is set only with CQ_TR_OK (the outcome's http_status is 0 when no
 * answer was read); the TOO_LARGE message names the status that came with
 * the oversized body; a refused certificate is CQ_TR_TLS, the check that
 * refused it in resp.tls (cq_tls_fail_of) and curl's reason in
 * transport_msg.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "http_int.h"

/* First allocation for a body (answers are small); grows by doubling up
 * to the cap + 1. */
#define HTTP_BODY_INITIAL 1024u

/* The captured response headers, in the order of HV_*. */
static const char *const hdr_names[HV_COUNT] = {"retry-after", "location", "content-type"};

static int64_t now_unix_ms(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- the outcome -------------------------------------------------------- */

/* Transfers that failed before a single byte of the request reached the
 * socket: DNS, TCP connect, TLS handshake, and requests curl refused to
 * start (protocol not allowed, bad URL). */
static bool is_connect_error(CURLcode rc)
{
    switch (rc) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_FAILED_INIT:
    case CURLE_URL_MALFORMAT:
    case CURLE_NOT_BUILT_IN:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_INTERFACE_FAILED:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_USE_SSL_FAILED:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_PROXY:
        return true;
    default:
        return false;
    }
}

/* The answer area, allocated at the first need; NULL when memory is short. */
static http_answer *answer_area(http_req *r)
{
    if (r->ans == NULL)
        r->ans = malloc(sizeof(*r->ans));
    return r->ans;
}

static void set_msg(http_req *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* resp.transport_msg of a request that did not end with CQ_TR_OK; a fixed
 * text when there is no memory for the message. */
static void set_msg(http_req *r, const char *fmt, ...)
{
    http_answer *a = answer_area(r);
    va_list ap;

    if (a == NULL) {
        r->resp.transport_msg = "out of memory (no room for the error message)";
        return;
    }
    va_start(ap, fmt);
    vsnprintf(a->msg, sizeof(a->msg), fmt, ap);
    va_end(ap);
    r->resp.transport_msg = a->msg;
}

static void set_curl_msg(http_req *r, CURLcode rc)
{
    if (r->errbuf[0] != '\0')
        set_msg(r, "%s: %s", curl_easy_strerror(rc), r->errbuf);
    else
        set_msg(r, "%s", curl_easy_strerror(rc));
}

/*
 * Fill r->resp from the transfer's result.  Must run before the easy handle
 * is detached (it reads CURLINFO values).
 *
 * maybe_sent: the signal is CURLINFO_REQUEST_SIZE, the bytes of request
 * headers (and inline body) curl handed to the socket; curl counts it right
 * after the send call, so 0 means nothing of the request left this host.
 * PRETRANSFER_TIME only says the connection was ready.  A request size that
 * counts a proxy CONNECT, or a send on a reused connection that curl then
 * retried, errs on the side of "maybe sent", which costs only a status
 * lookup; the reverse error could cost a duplicate cancellation.
 */
void cq_http_req_finish(http_req *r, CURLcode rc, bool aborted)
{
    cq_response *resp = &r->resp;
    long status = 0, request_size = 0, verify = 0;
    cq_tls_fail tls;
    bool sent;

    if (curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK)
        status = 0;
    if (curl_easy_getinfo(r->easy, CURLINFO_SSL_VERIFYRESULT, &verify) != CURLE_OK)
        verify = 0;
    if (curl_easy_getinfo(r->easy, CURLINFO_REQUEST_SIZE, &request_size) != CURLE_OK)
        request_size = 1; /* unknown: assume it went out */
    sent = request_size > 0;

    memset(resp, 0, sizeof(*resp));
    resp->now_ms = now_unix_ms();
    resp->body = r->body != NULL ? r->body : "";
    resp->body_len = r->body_len;
    /* has_value is set only once r->ans exists */
    resp->retry_after = r->has_value[HV_RETRY_AFTER] ? r->ans->value[HV_RETRY_AFTER] : NULL;
    resp->location = r->has_value[HV_LOCATION] ? r->ans->value[HV_LOCATION] : NULL;
    resp->content_type = r->has_value[HV_CONTENT_TYPE] ? r->ans->value[HV_CONTENT_TYPE] : NULL;

    if (aborted) {
        resp->transport = CQ_TR_ABORTED;
        resp->maybe_sent = sent;
        set_msg(r, "request aborted");
    } else if (rc == CURLE_OK) {
        resp->transport = CQ_TR_OK;
        resp->status = status;
        resp->maybe_sent = true;
        return; /* transport_msg stays NULL */
    } else if (rc == CURLE_WRITE_ERROR && r->too_large) {
        resp->transport = CQ_TR_TOO_LARGE;
        resp->maybe_sent = true;
        set_msg(r, "response body exceeds %zu bytes (HTTP %ld)", r->max_response, status);
    } else if (rc == CURLE_WRITE_ERROR && r->oom) {
        resp->transport = CQ_TR_OTHER;
        resp->maybe_sent = true;
        set_msg(r, "out of memory reading the response");
    } else if ((tls = cq_tls_fail_of((int)rc, verify)) != CQ_TLS_NONE) {
        /* refused before a byte of the request went out: nothing was sent */
        resp->transport = CQ_TR_TLS;
        resp->tls = tls;
        resp->maybe_sent = false;
        set_curl_msg(r, rc);
        if (r->tls_failures != NULL)
            r->tls_failures[tls]++;
    } else if (is_connect_error(rc)) {
        /* sent is false on a fresh connection; see above for retries */
        resp->transport = CQ_TR_CONNECT;
        resp->maybe_sent = sent;
        set_curl_msg(r, rc);
    } else if (rc == CURLE_OPERATION_TIMEDOUT) {
        resp->transport = CQ_TR_TIMEOUT;
        resp->maybe_sent = sent;
        set_curl_msg(r, rc);
    } else {
        /* GOT_NOTHING, RECV_ERROR, SEND_ERROR, PARTIAL_FILE, ... */
        resp->transport = CQ_TR_OTHER;
        resp->maybe_sent = sent;
        set_curl_msg(r, rc);
    }
}

/* --- curl -> request ---------------------------------------------------- */

/* Move the body to a buffer of cap bytes.  Not realloc: it would free the
 * old block unwiped, and a token endpoint's answer holds tokens.  false
 * when memory is short (the old buffer stays). */
static bool body_grow(http_req *r, size_t cap)
{
    char *p = malloc(cap);

    if (p == NULL)
        return false;
    if (r->body != NULL) {
        memcpy(p, r->body, r->body_len + 1);
        explicit_bzero(r->body, r->body_cap);
        free(r->body);
    }
    r->body = p;
    r->body_cap = cap;
    return true;
}

/* CURLOPT_WRITEFUNCTION: append to the body, never past the cap.  The
 * buffer doubles from HTTP_BODY_INITIAL but never beyond cap + 1 (NUL),
 * whatever Content-Length the peer announced; each move wipes the old
 * buffer (body_grow). */
size_t cq_http_on_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    http_req *r = userdata;
    size_t len = size * nmemb; /* size is always 1 */
    size_t need, cap;

    r->in_body = true;
    if (len == 0)
        return 0;
    if (len > r->max_response - r->body_len) {
        r->too_large = true;
        return 0; /* -> CURLE_WRITE_ERROR */
    }
    need = r->body_len + len + 1;
    if (need > r->body_cap) {
        cap = r->body_cap != 0 ? r->body_cap : HTTP_BODY_INITIAL;
        while (cap < need)
            cap = cap > (r->max_response + 1) / 2 ? r->max_response + 1 : cap * 2;
        if (cap > r->max_response + 1)
            cap = r->max_response + 1;
        if (!body_grow(r, cap)) {
            r->oom = true;
            return 0;
        }
    }
    memcpy(r->body + r->body_len, ptr, len);
    r->body_len += len;
    r->body[r->body_len] = '\0';
    return len;
}

/* Keep header value i; an over-long value is absent.  false when there is
 * no memory for the answer area. */
static bool capture(http_req *r, int i, const char *value, size_t value_len)
{
    http_answer *a;

    r->has_value[i] = false;
    if (value_len >= HTTP_HDR_VALUE_MAX)
        return true;
    a = answer_area(r);
    if (a == NULL)
        return false;
    memcpy(a->value[i], value, value_len);
    a->value[i][value_len] = '\0';
    r->has_value[i] = true;
    return true;
}

/* CURLOPT_HEADERFUNCTION: one call per header line, status lines included.
 * A status line starts a new header block (after a 100 Continue or a proxy
 * CONNECT answer), so captured values are reset there; lines after body
 * bytes are trailers and ignored. */
size_t cq_http_on_header(char *buf, size_t size, size_t nitems, void *userdata)
{
    http_req *r = userdata;
    size_t len = size * nitems, name_len;
    const char *colon, *v, *end;
    int i;

    if (len >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
        memset(r->has_value, 0, sizeof(r->has_value));
        r->in_body = false;
        return len;
    }
    if (r->in_body)
        return len;
    colon = memchr(buf, ':', len);
    if (colon == NULL)
        return len;
    name_len = (size_t)(colon - buf);
    v = colon + 1;
    end = buf + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
        end--;
    for (i = 0; i < HV_COUNT; i++) {
        if (name_len != strlen(hdr_names[i]) || strncasecmp(buf, hdr_names[i], name_len) != 0)
            continue;
        if (!capture(r, i, v, (size_t)(end - v))) {
            r->oom = true;
            return 0; /* -> CURLE_WRITE_ERROR */
        }
        break;
    }
    return len;
}
