/*
 * http.c - the HTTP engine: libcurl's multi_socket interface on a libuv loop.
 *
 * Wiring (as curl's docs/examples/multi-uv.c): curl tells us which sockets
 * to watch through CURLMOPT_SOCKETFUNCTION and when to call it back through
 * CURLMOPT_TIMERFUNCTION; we keep one uv_poll_t per socket (see sock_ctx)
 * and one uv_timer_t, and feed every event to curl_multi_socket_action().
 * After each action the finished transfers are read with
 * curl_multi_info_read().
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
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

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
/* Per-transfer receive and upload buffers, held while a request is in
 * flight: provider answers are a few hundred bytes, and 1000 requests in
 * flight must fit in ~22 KiB each (docs/bench.md).  1 KiB is curl's
 * minimum; a longer answer takes more reads (over TLS: more record-layer
 * copies, not more system calls), never a cut.  16 KiB is curl's minimum
 * for uploads; only multipart requests allocate that buffer. */
#define HTTP_RECV_BUFFER 1024L
#define HTTP_UPLOAD_BUFFER 16384L
/* Body cap when opts->max_response is 0: every buffer has a limit. */
#define HTTP_DEFAULT_MAX_RESPONSE ((size_t)1024 * 1024)
/* Upper bound for a configured cap, so cap + 1 never overflows. */
#define HTTP_MAX_RESPONSE_LIMIT ((size_t)1 << 30)
/* First allocation for a body (answers are small); grows by doubling up
 * to the cap + 1. */
#define HTTP_BODY_INITIAL 1024u
/* "<curl_easy_strerror>: <errorbuffer>" or our own texts. */
#define HTTP_MSG_MAX (CURL_ERROR_SIZE + 128)
/* First size of the fd -> socket table; it doubles to fit the largest fd
 * curl hands us (bounded by RLIMIT_NOFILE). */
#define HTTP_SOCK_TABLE_MIN 64u

typedef struct http_req http_req;

typedef struct req_list {
    http_req *head;
    http_req *tail;
    size_t n;
} req_list;

/*
 * One uv_poll_t per socket, found through h->socks[fd].
 *
 * Owned sockets (opened by on_open_socket: every connection curl makes)
 * keep their poll for the socket's whole life.  CURL_POLL_REMOVE, which
 * curl sends whenever a connection goes idle in its cache, leaves a
 * read-only poll running but unreferenced (a stop and a later start would
 * cost three epoll_ctl per request: uv_poll_start always deletes and
 * re-adds); if the idle socket turns readable (the peer closed it) the
 * poll stops then.  on_close_socket closes the poll and then the fd:
 * uv_close() stops the watcher at once (epoll forgets the fd, libuv drops
 * its pending events), so neither ever sees a closed or reused fd number;
 * the context itself is freed in the close callback.
 *
 * Sockets curl opens without on_open_socket (the threaded resolver's
 * socketpair) never reach on_close_socket, so their poll lives for one
 * assignment: closed on CURL_POLL_REMOVE, which curl sends before it
 * closes them.
 */
typedef struct sock_ctx {
    uv_poll_t poll; /* poll.data = this; a libuv handle once has_poll */
    cq_http *h;
    curl_socket_t fd;
    int events;    /* UV_READABLE / UV_WRITABLE being watched, while active */
    bool owned;    /* opened by on_open_socket: on_close_socket will come */
    bool has_poll; /* uv_poll_init_socket done: released through uv_close */
    bool in_use;   /* curl asked to watch it and has not removed it since */
} sock_ctx;

/* The captured response headers, in this order in hdr_names. */
enum { HV_RETRY_AFTER, HV_LOCATION, HV_CONTENT_TYPE, HV_COUNT };

static const char *const hdr_names[HV_COUNT] = {"retry-after", "location", "content-type"};

/* What only the answer needs, allocated when the answer brings a wanted
 * header or the request fails: a request waiting for its answer (most of
 * its life) does not carry it. */
typedef struct http_answer {
    char value[HV_COUNT][HTTP_HDR_VALUE_MAX];
    char msg[HTTP_MSG_MAX];
} http_answer;

/*
 * A request and, in the same allocation after the struct (hdr[]), the
 * copies curl points at while the transfer runs: the header list nodes,
 * the header lines (the request's, the credential, "Expect:") and the POST
 * body.  All of it is wiped before free (token, OAuth client secrets).
 */
struct http_req {
    cq_http *h;
    http_req *prev, *next; /* in h->active or h->done */
    CURL *easy;            /* NULL once detached */
    curl_mime *mime;
    char *post; /* in hdr[]: the POST body (curl keeps the pointer), or NULL */
    size_t post_len;
    cq_http_cb cb;
    void *data;

    /* the answer */
    size_t max_response;
    char *body;
    size_t body_len, body_cap;
    http_answer *ans;         /* owned, NULL until needed */
    bool poll_failed;         /* no poll for its socket: fail it after the action */
    bool too_large;           /* write callback refused: cap reached */
    bool oom;                 /* write or header callback refused: no memory */
    bool in_body;             /* header lines seen after body bytes are trailers */
    bool has_value[HV_COUNT]; /* r->ans->value[i] holds a captured header */
    char errbuf[CURL_ERROR_SIZE];
    cq_response resp;

    size_t extra_len;        /* bytes from hdr to the end of the allocation */
    size_t nhdr;             /* nodes in hdr[], a list from hdr[0] */
    struct curl_slist hdr[]; /* then the lines, then the POST body */
};

struct cq_http {
    uv_loop_t *loop;
    CURLM *multi;     /* NULL once cq_http_free ran */
    uv_timer_t timer; /* timer.data = this */
    req_list active;  /* added to the multi */
    req_list done;    /* finished, callback not fired yet */
    sock_ctx **socks; /* indexed by fd, nsocks slots; NULL: no context */
    size_t nsocks;
    CURL **pool; /* pool_max idle handles at most */
    size_t npool;
    size_t pool_max;
    unsigned closes_pending; /* uv_close calls whose callback has not run */
    unsigned poll_failures;  /* requests marked poll_failed, not yet failed */
    bool freeing;            /* cq_http_free called: refuse sends */
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

/* --- sockets and libuv handle closing ----------------------------------- */

static void maybe_free_engine(cq_http *h)
{
    if (h->freeing && h->closes_pending == 0) {
        free(h->socks);
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

static void on_timer_closed(uv_handle_t *handle)
{
    cq_http *h = handle->data;

    h->closes_pending--;
    maybe_free_engine(h);
}

static sock_ctx *sock_find(const cq_http *h, curl_socket_t fd)
{
    if (fd < 0 || (size_t)fd >= h->nsocks)
        return NULL;
    return h->socks[fd];
}

/* Make h->socks hold index fd.  0 or -ENOMEM. */
static int sock_table_fit(cq_http *h, curl_socket_t fd)
{
    size_t n = h->nsocks > 0 ? h->nsocks : HTTP_SOCK_TABLE_MIN;
    sock_ctx **p;

    if ((size_t)fd < h->nsocks)
        return 0;
    while (n <= (size_t)fd)
        n *= 2;
    p = realloc(h->socks, n * sizeof(sock_ctx *));
    if (p == NULL)
        return -ENOMEM;
    memset(p + h->nsocks, 0, (n - h->nsocks) * sizeof(sock_ctx *));
    h->socks = p;
    h->nsocks = n;
    return 0;
}

/* Forget c: its slot is free at once; a poll is closed (which stops it
 * synchronously) and c freed in on_sock_closed, else c is freed now.  The
 * fd is not touched. */
static void sock_drop(sock_ctx *c)
{
    cq_http *h = c->h;

    if (h->socks[c->fd] == c)
        h->socks[c->fd] = NULL;
    if (!c->has_poll) {
        free(c);
        return;
    }
    h->closes_pending++;
    uv_close((uv_handle_t *)&c->poll, on_sock_closed);
}

/* A context for fd in h->socks, without a poll yet (sock_watch makes it).
 * A context still in the slot belongs to a socket that was closed behind
 * our back: it is dropped.  NULL when memory is short. */
static sock_ctx *sock_new(cq_http *h, curl_socket_t fd, bool owned)
{
    sock_ctx *c;

    if (fd < 0 || sock_table_fit(h, fd) != 0)
        return NULL;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    if (h->socks[fd] != NULL)
        sock_drop(h->socks[fd]);
    c->h = h;
    c->fd = fd;
    c->owned = owned;
    h->socks[fd] = c;
    return c;
}

/* CURLOPT_OPENSOCKETFUNCTION: open the socket as curl would and track it,
 * so its poll can live until on_close_socket.  Without memory to track it
 * the socket is still returned and watched per assignment instead. */
static curl_socket_t on_open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *addr)
{
    cq_http *h = clientp;
    curl_socket_t s;

    (void)purpose;
    s = socket(addr->family, addr->socktype, addr->protocol);
    if (s != CURL_SOCKET_BAD)
        (void)sock_new(h, s, true);
    return s;
}

/* CURLOPT_CLOSESOCKETFUNCTION: curl is done with s (it sent
 * CURL_POLL_REMOVE before, if it was watched).  The poll is closed first:
 * libuv must never hold a watcher for a closed fd, whose number the next
 * socket may reuse.  Also runs inside curl_multi_cleanup (cq_http_free),
 * while h and the loop are still alive. */
static int on_close_socket(void *clientp, curl_socket_t s)
{
    sock_ctx *c = sock_find(clientp, s);

    if (c != NULL)
        sock_drop(c);
    return close(s);
}

/* --- finishing requests ------------------------------------------------- */

/* Give back everything curl borrowed from the request.  The easy handle is
 * reset (or cleaned up) first: curl must not hold pointers into the mime,
 * the header list or the body (in r->hdr, released with r). */
static void req_release_curl(http_req *r)
{
    if (r->easy != NULL) {
        pool_put(r->h, r->easy);
        r->easy = NULL;
    }
    curl_mime_free(r->mime);
    r->mime = NULL;
}

static void req_free(http_req *r)
{
    req_release_curl(r);
    /* Answers may carry secrets too (a token endpoint's access_token);
     * on_write never wrote past body_len + 1. */
    wipe_free(r->body, r->body_len + 1);
    free(r->ans);
    /* The credential line, and a body that may carry secrets (an OAuth
     * grant's client_secret). */
    explicit_bzero(r->hdr, r->extra_len);
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

    if (!c->in_use) {
        /* An idle connection in curl's cache turned readable: the peer
         * closed it (or sent something unasked).  Stop watching it; curl
         * checks a connection before it reuses one. */
        if (uv_is_active((uv_handle_t *)poll))
            uv_poll_stop(poll);
        return;
    }
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

/* Watch c for events (UV_READABLE / UV_WRITABLE), making its poll on first
 * use.  A poll that already watches exactly that is left alone:
 * uv_poll_start always deletes the fd from epoll and adds it again.  0 or
 * a libuv error (the poll then stays as it was or stopped). */
static int sock_watch(sock_ctx *c, int events)
{
    uv_handle_t *handle = (uv_handle_t *)&c->poll;
    int rc;

    if (!c->has_poll) {
        rc = uv_poll_init_socket(c->h->loop, &c->poll, c->fd);
        if (rc != 0)
            return rc; /* not a handle yet: nothing to close */
        c->poll.data = c;
        c->has_poll = true;
    }
    c->in_use = true;
    uv_ref(handle);
    if (uv_is_active(handle) && c->events == events)
        return 0;
    rc = uv_poll_start(&c->poll, events, on_poll);
    c->events = rc == 0 ? events : 0;
    return rc;
}

/* curl no longer watches c (CURL_POLL_REMOVE).  An owned socket keeps its
 * poll (see sock_ctx): a read watch stays on, unreferenced so that an idle
 * connection does not keep the loop alive; a write watch would fire at
 * once, so it stops.  Any other socket's poll closes now. */
static void sock_unwatch(sock_ctx *c)
{
    uv_handle_t *handle = (uv_handle_t *)&c->poll;

    c->in_use = false;
    if (!c->owned) {
        sock_drop(c);
        return;
    }
    if (!c->has_poll || !uv_is_active(handle))
        return;
    if (c->events & UV_WRITABLE)
        uv_poll_stop(&c->poll);
    else
        uv_unref(handle);
}

/* CURLMOPT_SOCKETFUNCTION: watch s for what curl asks.  The context comes
 * from h->socks, not from curl_multi_assign: curl forgets an assignment at
 * every CURL_POLL_REMOVE, while the poll must outlive it. */
static int on_curl_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    cq_http *h = userp;
    sock_ctx *c = sock_find(h, s);
    int events = 0;

    (void)socketp;
    if (what == CURL_POLL_REMOVE) {
        if (c != NULL)
            sock_unwatch(c);
        return 0;
    }
    if (c == NULL) {
        c = sock_new(h, s, false);
        if (c == NULL)
            return poll_failed(h, easy);
    }
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    if (sock_watch(c, events) != 0) {
        if (!c->has_poll && !c->owned)
            sock_drop(c); /* nothing to keep for one assignment */
        return poll_failed(h, easy);
    }
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
static size_t on_header(char *buf, size_t size, size_t nitems, void *userdata)
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
 * method; r->hdr is filled.  Every option is set per request: the pool
 * resets a handle after each transfer (curl_easy_reset also clears the
 * CURLINFO values that maybe_sent is read from).  0 or -errno. */
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
    /* Sockets: their polls live as long as they do (see sock_ctx).  curl
     * copies the close callback into each connection it makes. */
    SETOPT(e, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
    SETOPT(e, CURLOPT_OPENSOCKETDATA, (void *)r->h);
    SETOPT(e, CURLOPT_CLOSESOCKETFUNCTION, on_close_socket);
    SETOPT(e, CURLOPT_CLOSESOCKETDATA, (void *)r->h);
    SETOPT(e, CURLOPT_HTTPHEADER, &r->hdr[0]);

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

    r = req_new(req, opts, post);
    if (r == NULL)
        return -ENOMEM;
    copy_request(r, req, opts, post);
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
    size_t i;

    if (h == NULL || h->freeing)
        return;
    /* First, so that a callback fired below cannot send (-ESHUTDOWN). */
    h->freeing = true;
    cq_http_abort_all(h);

    /* Closes cached connections: curl may still call the socket callback
     * (CURL_POLL_REMOVE), on_close_socket (polls close) and the timer
     * callback, so h and the loop must be intact until it returns. */
    curl_multi_cleanup(h->multi);
    h->multi = NULL;
    for (i = 0; i < h->npool; i++)
        curl_easy_cleanup(h->pool[i]);
    h->npool = 0;

    /* No curl object is left that could close a socket: what is still here
     * is a poll curl never released (its fd is not ours to close). */
    for (i = 0; i < h->nsocks; i++) {
        if (h->socks[i] != NULL)
            sock_drop(h->socks[i]);
    }
    h->closes_pending++;
    uv_close((uv_handle_t *)&h->timer, on_timer_closed);
}
