/*
 * http.c - the HTTP engine: libcurl's multi_socket interface on a libuv loop.
 *
 * Wiring (as curl's docs/examples/multi-uv.c, in http_uv.c): curl tells us
 * which sockets to watch through CURLMOPT_SOCKETFUNCTION and when to call
 * it back through CURLMOPT_TIMERFUNCTION; we keep one uv_poll_t per socket
 * and one uv_timer_t, and feed every event to curl_multi_socket_action()
 * (cq_http_socket_action, here).  After each action the finished transfers
 * are read with curl_multi_info_read().  A transfer is set up in
 * http_req.c and its answer read in http_answer.c.
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
 * buffer has a limit).
 *
 * Process requirements (the daemon's main does both, so do the tests):
 * curl_global_init(CURL_GLOBAL_DEFAULT) once before cq_http_new(), and
 * SIGPIPE ignored (CURLOPT_NOSIGNAL is set; see PROVIDERS.md).
 */
#include "cancelq/http.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_int.h"

/* Idle easy handles kept for reuse: as many as requests may be in flight
 * (max_connections, the worker's concurrency), so a steady load never
 * re-creates handles; bounded so a misconfiguration cannot hoard memory.
 * Each idle handle is small (CURLOPT_BUFFERSIZE, http_req.c). */
#define HTTP_POOL_MAX 10000
#define HTTP_POOL_DEFAULT 256
/* Body cap when opts->max_response is 0: every buffer has a limit. */
#define HTTP_DEFAULT_MAX_RESPONSE ((size_t)1024 * 1024)
/* Upper bound for a configured cap, so cap + 1 never overflows. */
#define HTTP_MAX_RESPONSE_LIMIT ((size_t)1 << 30)

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
    /* after the reset: curl pointed at its blobs without copying them */
    cq_tls_id_unref(r->client);
    r->client = NULL;
}

static void req_free(http_req *r)
{
    req_release_curl(r);
    /* Answers may carry secrets too (a token endpoint's access_token);
     * cq_http_on_write never wrote past body_len + 1. */
    wipe_free(r->body, r->body_len + 1);
    free(r->ans);
    /* The credential line, and a body that may carry secrets (an OAuth
     * grant's client_secret). */
    explicit_bzero(r->hdr, r->extra_len);
    free(r);
}

/* Take a finished or aborted request out of the multi and queue its
 * callback.  The easy handle goes back to the pool at once, so a callback
 * that sends again reuses it. */
static void req_retire(http_req *r, CURLcode rc, bool aborted)
{
    cq_http *h = r->h;

    cq_http_req_finish(r, rc, aborted);
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

void cq_http_socket_action(cq_http *h, curl_socket_t fd, int flags)
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
    if (curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, cq_http_curl_socket) != CURLM_OK ||
        curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, (void *)h) != CURLM_OK ||
        curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, cq_http_curl_timer) != CURLM_OK ||
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
    rc = cq_http_req_check(req, opts, &post);
    if (rc != 0)
        return rc;

    r = cq_http_req_new(req, opts, post);
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
    rc = cq_http_req_configure(r, req, opts, post);
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
     * (CURL_POLL_REMOVE), cq_http_close_socket (polls close) and the timer
     * callback, so h and the loop must be intact until it returns. */
    curl_multi_cleanup(h->multi);
    h->multi = NULL;
    for (i = 0; i < h->npool; i++)
        curl_easy_cleanup(h->pool[i]);
    h->npool = 0;
    cq_http_uv_close(h);
}
