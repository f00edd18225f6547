/*
 * http_uv.c - the HTTP engine's libuv side (http_int.h): curl's multi
 * interface tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION) and
 * when to call it back (CURLMOPT_TIMERFUNCTION); we keep one uv_poll_t per
 * socket (see sock_ctx) and one uv_timer_t, and feed every event to
 * cq_http_socket_action() (http.c).  Also the sockets' own life (curl's
 * open and close socket callbacks) and closing every handle when the
 * engine is freed.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http_int.h"

/* First size of the fd -> socket table; it doubles to fit the largest fd
 * curl hands us (bounded by RLIMIT_NOFILE). */
#define HTTP_SOCK_TABLE_MIN 64u

/*
 * One uv_poll_t per socket, found through h->socks[fd].
 *
 * Owned sockets (opened by cq_http_open_socket: every connection curl makes)
 * keep their poll for the socket's whole life.  CURL_POLL_REMOVE, which
 * curl sends whenever a connection goes idle in its cache, leaves a
 * read-only poll running but unreferenced (a stop and a later start would
 * cost three epoll_ctl per request: uv_poll_start always deletes and
 * re-adds); if the idle socket turns readable (the peer closed it) the
 * poll stops then.  cq_http_close_socket closes the poll and then the fd:
 * uv_close() stops the watcher at once (epoll forgets the fd, libuv drops
 * its pending events), so neither ever sees a closed or reused fd number;
 * the context itself is freed in the close callback.
 *
 * Sockets curl opens without cq_http_open_socket (the threaded resolver's
 * socketpair) never reach cq_http_close_socket, so their poll lives for one
 * assignment: closed on CURL_POLL_REMOVE, which curl sends before it
 * closes them.
 */
struct sock_ctx {
    uv_poll_t poll; /* poll.data = this; a libuv handle once has_poll */
    cq_http *h;
    curl_socket_t fd;
    int events;    /* UV_READABLE / UV_WRITABLE being watched, while active */
    bool owned;    /* opened by cq_http_open_socket: cq_http_close_socket will come */
    bool has_poll; /* uv_poll_init_socket done: released through uv_close */
    bool in_use;   /* curl asked to watch it and has not removed it since */
};

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
 * so its poll can live until cq_http_close_socket.  Without memory to track it
 * the socket is still returned and watched per assignment instead. */
curl_socket_t cq_http_open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *addr)
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
int cq_http_close_socket(void *clientp, curl_socket_t s)
{
    sock_ctx *c = sock_find(clientp, s);

    if (c != NULL)
        sock_drop(c);
    return close(s);
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
    cq_http_socket_action(c->h, c->fd, flags);
}

static void on_timer(uv_timer_t *timer)
{
    cq_http_socket_action(timer->data, CURL_SOCKET_TIMEOUT, 0);
}

/* --- curl -> libuv ------------------------------------------------------ */

/* Called when a socket cannot be watched (no memory, libuv refused).  We
 * never return -1 to curl: that marks the whole multi dead for good, every
 * later transfer included.  Instead the transfer is marked and failed by
 * cq_http_socket_action() once curl has returned (curl forbids multi calls from
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
int cq_http_curl_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
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
int cq_http_curl_timer(CURLM *multi, long timeout_ms, void *userp)
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

/* --- closing ----------------------------------------------------------- */

void cq_http_uv_close(cq_http *h)
{
    size_t i;

    /* No curl object is left that could close a socket: what is still here
     * is a poll curl never released (its fd is not ours to close). */
    for (i = 0; i < h->nsocks; i++) {
        if (h->socks[i] != NULL)
            sock_drop(h->socks[i]);
    }
    h->closes_pending++;
    uv_close((uv_handle_t *)&h->timer, on_timer_closed);
}
