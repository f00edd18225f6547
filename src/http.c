/*
 * http.c - the HTTP engine: libcurl's multi_socket interface on a libuv loop.
 *
 * Wiring (as curl's docs/examples/multi-uv.c): curl tells us which sockets
 * to watch through CURLMOPT_SOCKETFUNCTION and when to call it back through
 * CURLMOPT_TIMERFUNCTION; we keep one uv_poll_t per socket assignment
 * (attached with curl_multi_assign) and one uv_timer_t, and feed every event
 * to curl_multi_socket_action().  After each action the finished transfers
 * are read with curl_multi_info_read().
 *
 * Life of a request (http_req):
 *   cq_http_send  -> h->active (in the multi)
 *   curl done / abort -> answer captured, easy handle removed and recycled,
 *                        request moved to h->done
 *   deliver_done  -> popped from h->done, callback fired, memory released.
 * Callbacks run only from deliver_done(), which is reached from libuv
 * callbacks and from cq_http_abort_all()/cq_http_free(), never from
 * cq_http_send() and never from inside a curl callback.  Because the queue
 * lives in the struct, a callback may send, abort or free re-entrantly.
 *
 * Answers: opts->max_response == 0 means HTTP_DEFAULT_MAX_RESPONSE (every
 * buffer has a limit).  status is set only with CQ_TR_OK (the outcome's
 * http_status is 0 when no answer was read); the TOO_LARGE message names
 * the status that came with the oversized body.
 *
 * Process requirements (the daemon's main does both, so do the tests):
 * curl_global_init(CURL_GLOBAL_DEFAULT) once before cq_http_new(), and
 * SIGPIPE ignored (CURLOPT_NOSIGNAL is set; see PROVIDERS.md).
 */
#include "cancelq/http.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#ifndef CQ_VERSION
#define CQ_VERSION "unknown"
#endif

/* Captured response header values (Retry-After, Location, Content-Type).
 * A longer value is treated as absent: a cut Location or date is wrong. */
#define HTTP_HDR_VALUE_MAX 512
/* Idle easy handles kept for reuse: as many as requests may be in flight
 * (max_connections, the worker's concurrency), so a steady load never
 * re-creates handles; bounded so a misconfiguration cannot hoard memory.
 * Each idle handle is small (CURLOPT_BUFFERSIZE below). */
#define HTTP_POOL_MAX 10000
#define HTTP_POOL_DEFAULT 256
/* Per-handle receive and upload buffers: provider answers are small; the
 * defaults (16 KiB down, 64 KiB up for multipart) cost RSS at 1000 in flight. */
#define HTTP_RECV_BUFFER 4096L
#define HTTP_UPLOAD_BUFFER 16384L
/* Body cap when opts->max_response is 0: every buffer has a limit. */
#define HTTP_DEFAULT_MAX_RESPONSE ((size_t)1024 * 1024)
/* Upper bound for a configured cap, so cap + 1 never overflows. */
#define HTTP_MAX_RESPONSE_LIMIT ((size_t)1 << 30)
/* First allocation for a body; grows by doubling up to the cap + 1. */
#define HTTP_BODY_INITIAL 4096u
/* "<curl_easy_strerror>: <errorbuffer>" or our own texts. */
#define HTTP_MSG_MAX (CURL_ERROR_SIZE + 128)

typedef struct http_req http_req;

typedef struct req_list {
    http_req *head;
    http_req *tail;
    size_t n;
} req_list;

/* One poll per socket assignment.  A context is never reused: when curl
 * removes a socket the context starts closing, and if curl opens a new
 * socket with the same fd before the close callback ran it gets a fresh
 * context. */
typedef struct sock_ctx {
    uv_poll_t poll; /* poll.data = this */
    cq_http *h;
    curl_socket_t fd;
    struct sock_ctx *prev, *next; /* h->socks: contexts not closing yet */
} sock_ctx;

struct http_req {
    cq_http *h;
    http_req *prev, *next; /* in h->active or h->done */
    CURL *easy;            /* NULL once detached */
    struct curl_slist *headers;
    char *auth_data; /* the slist node holding the token: wiped before free */
    curl_mime *mime;
    char *post; /* our copy of the POST body (curl keeps the pointer) */
    size_t post_len;
    cq_http_cb cb;
    void *data;

    /* the answer */
    size_t max_response;
    char *body;
    size_t body_len, body_cap;
    bool poll_failed; /* no poll for its socket: fail it after the action */
    bool too_large;   /* write callback refused: cap reached */
    bool oom;         /* write callback refused: no memory */
    bool in_body;     /* header lines seen after body bytes are trailers */
    bool has_retry_after, has_location, has_content_type;
    char retry_after[HTTP_HDR_VALUE_MAX];
    char location[HTTP_HDR_VALUE_MAX];
    char content_type[HTTP_HDR_VALUE_MAX];
    char errbuf[CURL_ERROR_SIZE];
    char msg[HTTP_MSG_MAX];
    cq_response resp;
};

struct cq_http {
    uv_loop_t *loop;
    CURLM *multi;     /* NULL once cq_http_free ran */
    uv_timer_t timer; /* timer.data = this */
    req_list active;  /* added to the multi */
    req_list done;    /* finished, callback not fired yet */
    sock_ctx *socks;
    CURL **pool; /* pool_max idle handles at most */
    size_t npool;
    size_t pool_max;
    unsigned closes_pending; /* uv_close calls whose callback has not run */
    unsigned poll_failures;  /* requests marked poll_failed, not yet failed */
    bool freeing;            /* cq_http_free called: refuse sends */
    bool in_cleanup;         /* inside curl_multi_cleanup: no curl_multi_assign */
};

/* --- small helpers ------------------------------------------------------ */

static void list_append(req_list *l, http_req *r)
{
    r->next = NULL;
    r->prev = l->tail;
    if (l->tail != NULL)
        l->tail->next = r;
    else
        l->head = r;
    l->tail = r;
    l->n++;
}

static void list_remove(req_list *l, http_req *r)
{
    if (r->prev != NULL)
        r->prev->next = r->next;
    else
        l->head = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    else
        l->tail = r->prev;
    r->prev = r->next = NULL;
    l->n--;
}

static int64_t now_unix_ms(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

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

static void wipe_free(char *p, size_t len)
{
    if (p == NULL)
        return;
    explicit_bzero(p, len);
    free(p);
}

/* --- easy handle pool --------------------------------------------------- */

static CURL *pool_take(cq_http *h)
{
    if (h->npool > 0)
        return h->pool[--h->npool];
    return curl_easy_init();
}

/* Reset and keep the handle, or clean it up when the pool is full or the
 * engine is going away.  Connections live in the multi, not in the handle,
 * so a pooled handle holds no socket. */
static void pool_put(cq_http *h, CURL *easy)
{
    if (!h->freeing && h->npool < h->pool_max) {
        curl_easy_reset(easy);
        h->pool[h->npool++] = easy;
    } else {
        curl_easy_cleanup(easy);
    }
}

/* --- libuv handle closing ----------------------------------------------- */

static void maybe_free_engine(cq_http *h)
{
    if (h->freeing && h->closes_pending == 0) {
        free(h->pool);
        free(h);
    }
}

static void on_sock_closed(uv_handle_t *handle)
{
    sock_ctx *c = handle->data;
    cq_http *h = c->h;

    free(c);
    h->closes_pending--;
    maybe_free_engine(h);
}

static void sock_close(sock_ctx *c)
{
    cq_http *h = c->h;

    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        h->socks = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    h->closes_pending++;
    uv_close((uv_handle_t *)&c->poll, on_sock_closed);
}

static void on_timer_closed(uv_handle_t *handle)
{
    cq_http *h = handle->data;

    h->closes_pending--;
    maybe_free_engine(h);
}

/* --- finishing requests ------------------------------------------------- */

/* Give back everything curl borrowed from the request.  The easy handle is
 * reset (or cleaned up) first: curl must not hold pointers into the
 * slist, mime or body when they are freed. */
static void req_release_curl(http_req *r)
{
    if (r->easy != NULL) {
        pool_put(r->h, r->easy);
        r->easy = NULL;
    }
    curl_mime_free(r->mime);
    r->mime = NULL;
    if (r->auth_data != NULL) {
        explicit_bzero(r->auth_data, strlen(r->auth_data));
        r->auth_data = NULL;
    }
    curl_slist_free_all(r->headers);
    r->headers = NULL;
    /* The body may carry secrets (an OAuth grant's client_secret). */
    wipe_free(r->post, r->post_len);
    r->post = NULL;
}

static void req_free(http_req *r)
{
    req_release_curl(r);
    /* Answers may carry secrets too (a token endpoint's access_token). */
    wipe_free(r->body, r->body_cap);
    free(r);
}

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

static void set_curl_msg(http_req *r, CURLcode rc)
{
    if (r->errbuf[0] != '\0')
        snprintf(r->msg, sizeof(r->msg), "%s: %s", curl_easy_strerror(rc), r->errbuf);
    else
        snprintf(r->msg, sizeof(r->msg), "%s", curl_easy_strerror(rc));
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
static void req_finish(http_req *r, CURLcode rc, bool aborted)
{
    cq_response *resp = &r->resp;
    long status = 0, request_size = 0;
    bool sent;

    if (curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK)
        status = 0;
    if (curl_easy_getinfo(r->easy, CURLINFO_REQUEST_SIZE, &request_size) != CURLE_OK)
        request_size = 1; /* unknown: assume it went out */
    sent = request_size > 0;

    memset(resp, 0, sizeof(*resp));
    resp->now_ms = now_unix_ms();
    resp->body = r->body != NULL ? r->body : "";
    resp->body_len = r->body_len;
    resp->retry_after = r->has_retry_after ? r->retry_after : NULL;
    resp->location = r->has_location ? r->location : NULL;
    resp->content_type = r->has_content_type ? r->content_type : NULL;

    if (aborted) {
        resp->transport = CQ_TR_ABORTED;
        resp->maybe_sent = sent;
        snprintf(r->msg, sizeof(r->msg), "request aborted");
    } else if (rc == CURLE_OK) {
        resp->transport = CQ_TR_OK;
        resp->status = status;
        resp->maybe_sent = true;
        return; /* transport_msg stays NULL */
    } else if (rc == CURLE_WRITE_ERROR && r->too_large) {
        resp->transport = CQ_TR_TOO_LARGE;
        resp->maybe_sent = true;
        snprintf(r->msg, sizeof(r->msg), "response body exceeds %zu bytes (HTTP %ld)",
                 r->max_response, status);
    } else if (rc == CURLE_WRITE_ERROR && r->oom) {
        resp->transport = CQ_TR_OTHER;
        resp->maybe_sent = true;
        snprintf(r->msg, sizeof(r->msg), "out of memory reading the response");
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
    resp->transport_msg = r->msg;
}

/* Take a finished or aborted request out of the multi and queue its
 * callback.  The easy handle goes back to the pool at once, so a callback
 * that sends again reuses it. */
static void req_retire(http_req *r, CURLcode rc, bool aborted)
{
    cq_http *h = r->h;

    req_finish(r, rc, aborted);
    list_remove(&h->active, r);
    /* Fails only for a handle not in this multi, which would be our bug;
     * nothing useful to do then but release it anyway. */
    (void)curl_multi_remove_handle(h->multi, r->easy);
    req_release_curl(r);
    list_append(&h->done, r);
}

/* Fire queued callbacks in order.  Each request leaves the queue before
 * its callback runs, so re-entrant sends, aborts and frees see a
 * consistent engine, and a nested call simply drains the same queue. */
static void deliver_done(cq_http *h)
{
    http_req *r;

    while ((r = h->done.head) != NULL) {
        /* r leaves the queue before its callback, so the head read above is
         * never a freed request (test_http covers sends, aborts and frees
         * from callbacks under ASan); the analyzer loses track of the list */
        // NOLINTNEXTLINE(clang-analyzer-unix.Malloc)
        list_remove(&h->done, r);
        r->cb(r->data, &r->resp);
        req_free(r);
    }
}

/* Collect every finished transfer first (a CURLMsg dies with
 * curl_multi_remove_handle), then run callbacks: after deliver_done the
 * multi may already be gone (a callback may call cq_http_free). */
static void check_multi_info(cq_http *h)
{
    CURLMsg *m;
    int left;

    while ((m = curl_multi_info_read(h->multi, &left)) != NULL) {
        CURL *easy = m->easy_handle;
        CURLcode rc = m->data.result;
        char *priv = NULL;

        if (m->msg != CURLMSG_DONE)
            continue;
        if (curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv) != CURLE_OK || priv == NULL)
            continue; /* not ours: cannot happen */
        req_retire((http_req *)priv, rc, false);
    }
    deliver_done(h);
}

/* Requests whose socket we could not watch would never progress (and hang
 * for good when they have no timeout): end them now, outside any curl
 * callback, as CQ_TR_OTHER.  Removing the handle makes curl drop the
 * connection. */
static void fail_unpolled(cq_http *h)
{
    http_req *r, *next;

    h->poll_failures = 0;
    for (r = h->active.head; r != NULL; r = next) {
        next = r->next;
        if (r->poll_failed) {
            snprintf(r->errbuf, sizeof(r->errbuf), "cannot watch the socket");
            req_retire(r, CURLE_OUT_OF_MEMORY, false);
        }
    }
}

static void socket_action(cq_http *h, curl_socket_t fd, int flags)
{
    int running;

    if (h->multi == NULL)
        return;
    /* Errors here are CURLM_BAD_SOCKET (curl already dropped the socket:
     * harmless) or out of memory, which surfaces as transfer errors or
     * timeouts on the requests themselves; either way the finished
     * transfers must still be collected. */
    (void)curl_multi_socket_action(h->multi, fd, flags, &running);
    if (h->poll_failures > 0)
        fail_unpolled(h);
    check_multi_info(h);
}

/* --- libuv -> curl ------------------------------------------------------ */

static void on_poll(uv_poll_t *poll, int status, int events)
{
    sock_ctx *c = poll->data;
    int flags = 0;

    if (status < 0) {
        /* libuv stopped the watcher; curl must learn of the error (it then
         * fails the transfer or re-arms the socket through the callback). */
        flags = CURL_CSELECT_ERR;
    } else {
        if (events & UV_READABLE)
            flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE)
            flags |= CURL_CSELECT_OUT;
    }
    socket_action(c->h, c->fd, flags);
}

static void on_timer(uv_timer_t *timer)
{
    socket_action(timer->data, CURL_SOCKET_TIMEOUT, 0);
}

/* --- curl -> libuv ------------------------------------------------------ */

/* Called when a socket cannot be watched (no memory, libuv refused).  We
 * never return -1 to curl: that marks the whole multi dead for good, every
 * later transfer included.  Instead the transfer is marked and failed by
 * socket_action() once curl has returned (curl forbids multi calls from
 * its callbacks).  The socket callback only fails inside
 * curl_multi_socket_action, so that is the one place to look. */
static int poll_failed(cq_http *h, CURL *easy)
{
    char *priv = NULL;

    if (easy != NULL && curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv) == CURLE_OK &&
        priv != NULL && !((http_req *)priv)->poll_failed) {
        ((http_req *)priv)->poll_failed = true;
        h->poll_failures++;
    }
    return 0;
}

/* CURLMOPT_SOCKETFUNCTION: watch s for what curl asks, one poll context per
 * socket assignment (see sock_ctx). */
static int on_curl_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    cq_http *h = userp;
    sock_ctx *c = socketp;
    int events = 0;

    if (what == CURL_POLL_REMOVE) {
        if (c != NULL) {
            if (!h->in_cleanup)
                (void)curl_multi_assign(h->multi, s, NULL);
            sock_close(c);
        }
        return 0;
    }
    if (c == NULL) {
        c = calloc(1, sizeof(*c));
        if (c == NULL)
            return poll_failed(h, easy);
        if (uv_poll_init_socket(h->loop, &c->poll, s) != 0) {
            free(c); /* not a handle yet: nothing to close */
            return poll_failed(h, easy);
        }
        c->poll.data = c;
        c->h = h;
        c->fd = s;
        c->next = h->socks;
        if (h->socks != NULL)
            h->socks->prev = c;
        h->socks = c;
        if (curl_multi_assign(h->multi, s, c) != CURLM_OK) {
            sock_close(c);
            return poll_failed(h, easy);
        }
    }
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    if (uv_poll_start(&c->poll, events, on_poll) != 0)
        return poll_failed(h, easy);
    return 0;
}

/* CURLMOPT_TIMERFUNCTION.  0 becomes 1 ms: libuv 1.44 runs a timer that is
 * re-armed with 0 inside its own callback again in the same loop pass, so
 * curl asking for "now" repeatedly would starve I/O.  uv_timer_start fails
 * only on a closing timer (inside cq_http_free); -1 would kill the multi
 * (see poll_failed), so the result is not passed on. */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    cq_http *h = userp;

    (void)multi;
    if (timeout_ms < 0) {
        uv_timer_stop(&h->timer);
        return 0;
    }
    (void)uv_timer_start(&h->timer, on_timer, timeout_ms == 0 ? 1 : (uint64_t)timeout_ms, 0);
    return 0;
}

/* --- curl -> request ---------------------------------------------------- */

/* CURLOPT_WRITEFUNCTION: append to the body, never past the cap.  The
 * buffer doubles from HTTP_BODY_INITIAL but never beyond cap + 1 (NUL),
 * whatever Content-Length the peer announced. */
static size_t on_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    http_req *r = userdata;
    size_t len = size * nmemb; /* size is always 1 */
    size_t need, cap;
    char *p;

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
        p = realloc(r->body, cap);
        if (p == NULL) {
            r->oom = true;
            return 0;
        }
        r->body = p;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, ptr, len);
    r->body_len += len;
    r->body[r->body_len] = '\0';
    return len;
}

static void capture(const char *name, size_t name_len, const char *want, const char *value,
                    size_t value_len, char *dst, bool *has)
{
    if (name_len != strlen(want) || strncasecmp(name, want, name_len) != 0)
        return;
    if (value_len >= HTTP_HDR_VALUE_MAX) {
        *has = false;
        return;
    }
    memcpy(dst, value, value_len);
    dst[value_len] = '\0';
    *has = true;
}

/* CURLOPT_HEADERFUNCTION: one call per header line, status lines included.
 * A status line starts a new header block (after a 100 Continue or a proxy
 * CONNECT answer), so captured values are reset there; lines after body
 * bytes are trailers and ignored. */
static size_t on_header(char *buf, size_t size, size_t nitems, void *userdata)
{
    http_req *r = userdata;
    size_t len = size * nitems;
    const char *colon, *v, *end;

    if (len >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
        r->has_retry_after = r->has_location = r->has_content_type = false;
        r->in_body = false;
        return len;
    }
    if (r->in_body)
        return len;
    colon = memchr(buf, ':', len);
    if (colon == NULL)
        return len;
    v = colon + 1;
    end = buf + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
        end--;
    capture(buf, (size_t)(colon - buf), "retry-after", v, (size_t)(end - v), r->retry_after,
            &r->has_retry_after);
    capture(buf, (size_t)(colon - buf), "location", v, (size_t)(end - v), r->location,
            &r->has_location);
    capture(buf, (size_t)(colon - buf), "content-type", v, (size_t)(end - v), r->content_type,
            &r->has_content_type);
    return len;
}

/* --- building a transfer ------------------------------------------------ */

static int slist_add(struct curl_slist **list, const char *line)
{
    struct curl_slist *n = curl_slist_append(*list, line);

    if (n == NULL)
        return -ENOMEM; /* the list is left as it was */
    *list = n;
    return 0;
}

/* Header list: the request's lines, the credential line, "Expect:" (no
 * 100-continue round trip: the body goes out with the headers).  curl
 * copies each string into the list and keeps pointing at the list while
 * the transfer runs, so it lives in r until req_release_curl. */
static int build_headers(http_req *r, const cq_request *req, const cq_http_opts *opts)
{
    struct curl_slist *last;
    size_t i, lp, lt;
    char *line;
    int rc;

    for (i = 0; i < req->nheaders; i++) {
        rc = slist_add(&r->headers, req->headers[i]);
        if (rc != 0)
            return rc;
    }
    if (opts->auth_prefix != NULL && opts->token != NULL) {
        lp = strlen(opts->auth_prefix);
        lt = strlen(opts->token);
        line = malloc(lp + lt + 1);
        if (line == NULL)
            return -ENOMEM;
        memcpy(line, opts->auth_prefix, lp);
        memcpy(line + lp, opts->token, lt + 1);
        rc = slist_add(&r->headers, line);
        wipe_free(line, lp + lt + 1);
        if (rc != 0)
            return rc;
        for (last = r->headers; last->next != NULL; last = last->next)
            ;
        r->auth_data = last->data;
    }
    return slist_add(&r->headers, "Expect:");
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

#define SETOPT(easy, opt, val)                                                                     \
    do {                                                                                           \
        if (curl_easy_setopt((easy), (opt), (val)) != CURLE_OK)                                    \
            goto bad_option;                                                                       \
    } while (0)

/* Apply the engine's fixed safety rules, the per-request options and the
 * method.  0 or -errno. */
static int configure_easy(http_req *r, const cq_request *req, const cq_http_opts *opts, bool post)
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
    SETOPT(e, CURLOPT_WRITEFUNCTION, on_write);
    SETOPT(e, CURLOPT_WRITEDATA, (void *)r);
    SETOPT(e, CURLOPT_HEADERFUNCTION, on_header);
    SETOPT(e, CURLOPT_HEADERDATA, (void *)r);

    rc = build_headers(r, req, opts);
    if (rc != 0)
        return rc;
    SETOPT(e, CURLOPT_HTTPHEADER, r->headers);

    if (!post) {
        SETOPT(e, CURLOPT_HTTPGET, 1L);
    } else if (req->nform > 0) {
        /* curl writes Content-Type: multipart/form-data; boundary=... */
        rc = build_form(r, req);
        if (rc != 0)
            return rc;
        SETOPT(e, CURLOPT_MIMEPOST, r->mime);
    } else {
        /* Always a buffer, also for an empty body, so curl sends
         * "Content-Length: 0" rather than reading from stdin. */
        r->post_len = req->body != NULL ? req->body_len : 0;
        r->post = malloc(r->post_len + 1);
        if (r->post == NULL)
            return -ENOMEM;
        if (r->post_len > 0)
            memcpy(r->post, req->body, r->post_len);
        r->post[r->post_len] = '\0';
        SETOPT(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->post_len);
        SETOPT(e, CURLOPT_POSTFIELDS, r->post);
    }
    return 0;

bad_option:
    return -EINVAL;
}

static int check_request(const cq_request *req, const cq_http_opts *opts, bool *post)
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
        (opts->token != NULL && has_crlf(opts->token)) || has_crlf(req->url))
        return -EINVAL;
    return 0;
}

/* --- public API --------------------------------------------------------- */

cq_http *cq_http_new(uv_loop_t *loop, int max_connections, cq_err *err)
{
    cq_http *h;
    int rc;

    if (loop == NULL) {
        cq_err_set(err, -EINVAL, "bad_argument", "http: no loop");
        return NULL;
    }
    h = calloc(1, sizeof(*h));
    if (h == NULL) {
        cq_err_set(err, -ENOMEM, "no_memory", "http: out of memory");
        return NULL;
    }
    h->loop = loop;
    h->pool_max = max_connections > 0 ? (size_t)max_connections : HTTP_POOL_DEFAULT;
    if (h->pool_max > HTTP_POOL_MAX)
        h->pool_max = HTTP_POOL_MAX;
    h->pool = calloc(h->pool_max, sizeof(*h->pool));
    if (h->pool == NULL) {
        cq_err_set(err, -ENOMEM, "no_memory", "http: out of memory");
        goto free_engine;
    }
    h->multi = curl_multi_init();
    if (h->multi == NULL) {
        cq_err_set(err, -ENOMEM, "curl_init", "http: curl_multi_init failed");
        goto free_engine;
    }
    if (curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket) != CURLM_OK ||
        curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, (void *)h) != CURLM_OK ||
        curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer) != CURLM_OK ||
        curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, (void *)h) != CURLM_OK ||
        (max_connections > 0 &&
         curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, (long)max_connections) != CURLM_OK)) {
        cq_err_set(err, -EINVAL, "curl_init", "http: curl_multi_setopt failed");
        goto cleanup_multi;
    }
    rc = uv_timer_init(loop, &h->timer);
    if (rc != 0) {
        cq_err_set(err, rc, "uv_init", "http: uv_timer_init: %s", uv_strerror(rc));
        goto cleanup_multi;
    }
    h->timer.data = h;
    return h;

cleanup_multi:
    curl_multi_cleanup(h->multi);
free_engine:
    free(h->pool);
    free(h);
    return NULL;
}

int cq_http_send(cq_http *h, const cq_request *req, const cq_http_opts *opts, cq_http_cb cb,
                 void *data)
{
    http_req *r;
    bool post = false;
    size_t cap;
    int rc;

    if (h == NULL || req == NULL || opts == NULL || cb == NULL)
        return -EINVAL;
    if (h->freeing)
        return -ESHUTDOWN;
    rc = check_request(req, opts, &post);
    if (rc != 0)
        return rc;

    r = calloc(1, sizeof(*r));
    if (r == NULL)
        return -ENOMEM;
    r->h = h;
    r->cb = cb;
    r->data = data;
    cap = opts->max_response != 0 ? opts->max_response : HTTP_DEFAULT_MAX_RESPONSE;
    r->max_response = cap < HTTP_MAX_RESPONSE_LIMIT ? cap : HTTP_MAX_RESPONSE_LIMIT;
    r->easy = pool_take(h);
    if (r->easy == NULL) {
        rc = -ENOMEM;
        goto free_request;
    }
    rc = configure_easy(r, req, opts, post);
    if (rc != 0)
        goto free_request;
    /* With multi_socket, adding never runs the transfer: curl only arms the
     * timer, so the callback cannot fire from inside this function. */
    if (curl_multi_add_handle(h->multi, r->easy) != CURLM_OK) {
        rc = -ENOMEM;
        goto free_request;
    }
    list_append(&h->active, r);
    return 0;

free_request:
    req_free(r);
    return rc;
}

size_t cq_http_active(const cq_http *h)
{
    if (h == NULL)
        return 0;
    return h->active.n + h->done.n;
}

/* Callbacks fire synchronously, in here.  Requests that finished but whose
 * callback has not run yet (possible when a callback calls this) keep
 * their real answer: they are delivered too, so when this returns no
 * callback is pending, except for requests those callbacks sent anew
 * (cq_http_free refuses those). */
void cq_http_abort_all(cq_http *h)
{
    if (h == NULL)
        return;
    while (h->active.head != NULL)
        req_retire(h->active.head, CURLE_OK, true);
    deliver_done(h);
}

void cq_http_free(cq_http *h)
{
    sock_ctx *c;
    size_t i;

    if (h == NULL || h->freeing)
        return;
    /* First, so that a callback fired below cannot send (-ESHUTDOWN). */
    h->freeing = true;
    cq_http_abort_all(h);

    /* Closes cached connections; curl may still call the socket callback
     * with CURL_POLL_REMOVE (contexts close) and the timer callback. */
    h->in_cleanup = true;
    curl_multi_cleanup(h->multi);
    h->multi = NULL;
    for (i = 0; i < h->npool; i++)
        curl_easy_cleanup(h->pool[i]);
    h->npool = 0;

    while ((c = h->socks) != NULL)
        sock_close(c);
    h->closes_pending++;
    uv_close((uv_handle_t *)&h->timer, on_timer_closed);
}
