/*
 * metrics_http.c - the /metrics endpoint on the loop (metrics.h).
 *
 * Paths: /metrics (the page), /healthz (the loop answers), /readyz (the
 * daemon's ready callback).  One request per connection: read the head (up to the blank line, at
 * most CQ_METRICS_REQUEST_MAX bytes), look at the request line only, render the page, write status
 * line + headers + page, shut the write side down, and close when the client has closed its side
 * (or at the connection's deadline, CQ_METRICS_CONN_TIMEOUT_MS after it was accepted).  No
 * keep-alive, no bodies, no chunking: Prometheus opens a connection per
 * scrape when told "Connection: close", and the page is rendered in one
 * piece on the loop anyway.
 *
 * Handles: the listener is embedded in cq_metrics; every connection is a
 * heap struct with a TCP handle and a timer (the client's deadline), freed
 * once both close callbacks ran.  cq_metrics_free() closes everything and
 * the struct goes with the last close callback.
 */
#include "cancelq/metrics.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "cancelq/config.h"
#include "cancelq/log.h"

#define LISTEN_BACKLOG 16
#define HEAD_MAX 512 /* status line and headers of an answer */
#define HOST_MAX 256 /* host part of "host:port" */
#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

typedef struct conn conn;

struct cq_metrics {
    uv_loop_t *loop;
    uv_tcp_t listener;
    cq_metrics_render_fn render;
    void *data;
    cq_metrics_ready_fn ready; /* NULL: /readyz answers as /healthz */
    void *ready_data;
    conn *conns; /* open connections, doubly linked */
    size_t nconns;
    int port;
    bool listener_open; /* its close callback has not run yet */
    bool freeing;
};

struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wreq;
    uv_shutdown_t sreq;
    cq_metrics *m;
    conn *prev, *next;
    int handles; /* not yet closed */
    bool closing;
    bool answered; /* the answer is queued; later bytes are read and dropped */
    bool shut;     /* the answer is out and our side shut down */
    bool peer_eof; /* the client has shut its side */
    size_t len;
    char req[CQ_METRICS_REQUEST_MAX];
    char head[HEAD_MAX];
    cq_buf body;
};

static void maybe_release(cq_metrics *m)
{
    if (m->freeing && !m->listener_open && m->conns == NULL)
        free(m);
}

/* --- connections --------------------------------------------------------- */

static void conn_handle_closed(uv_handle_t *h)
{
    conn *c = h->data;
    cq_metrics *m = c->m;

    if (--c->handles > 0)
        return;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        m->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    m->nconns--;
    cq_buf_free(&c->body);
    free(c);
    maybe_release(m);
}

static void conn_close(conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
}

/* The answer is out: close once the client has closed too (it reads to
 * EOF, then closes), or at the deadline. */
static void shutdown_cb(uv_shutdown_t *req, int status)
{
    conn *c = req->data;

    c->shut = true;
    if (status != 0 || c->peer_eof)
        conn_close(c);
}

static void write_cb(uv_write_t *req, int status)
{
    conn *c = req->data;

    if (status != 0 || c->closing ||
        uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, shutdown_cb) != 0)
        conn_close(c);
}

/* Queue the answer: head from status/extra headers, then c->body. */
static void respond(conn *c, const char *status, const char *type, const char *extra)
{
    uv_buf_t bufs[2];
    int n;

    c->answered = true;
    n = snprintf(c->head, sizeof(c->head),
                 "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                 "Cache-Control: no-store\r\n%sConnection: close\r\n\r\n",
                 status, type, c->body.len, extra);
    bufs[0] = uv_buf_init(c->head, (unsigned)n);
    bufs[1] = uv_buf_init(c->body.data != NULL ? c->body.data : c->head, (unsigned)c->body.len);
    c->wreq.data = c->sreq.data = c;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, bufs, 2, write_cb) != 0)
        conn_close(c);
}

static void respond_text(conn *c, const char *status, const char *extra, const char *text)
{
    cq_buf_reset(&c->body);
    cq_buf_printf(&c->body, "%s\n", text);
    respond(c, status, "text/plain; charset=utf-8", extra);
}

/* The paths served, by index. */
enum { ROUTE_METRICS, ROUTE_HEALTHZ, ROUTE_READYZ, ROUTES };
static const char *const routes[ROUTES] = {"/metrics", "/healthz", "/readyz"};

/* GET /readyz: ask the daemon; 503 with its reason when not ready. */
static void answer_ready(conn *c)
{
    char why[CQ_METRICS_WHY_MAX];

    why[0] = '\0';
    if (c->m->ready == NULL || c->m->ready(c->m->ready_data, why, sizeof(why))) {
        respond_text(c, "200 OK", "", "ready");
        return;
    }
    why[sizeof(why) - 1] = '\0';
    cq_buf_reset(&c->body);
    cq_buf_printf(&c->body, "not ready%s%s\n", why[0] != '\0' ? ": " : "", why);
    respond(c, "503 Service Unavailable", "text/plain; charset=utf-8", "");
}

/* Answer the request head in c->req (it ends with a blank line). */
static void handle_request(conn *c)
{
    const char *line = c->req, *end = memchr(c->req, '\r', c->len);
    const char *sp1, *sp2, *path_end;
    size_t path_len, route;

    sp1 = memchr(line, ' ', (size_t)(end - line));
    sp2 = sp1 != NULL ? memchr(sp1 + 1, ' ', (size_t)(end - sp1 - 1)) : NULL;
    if (sp1 == NULL || sp2 == NULL || sp2 == sp1 + 1 || (size_t)(end - sp2 - 1) != 8 ||
        strncmp(sp2 + 1, "HTTP/1.", 7) != 0) {
        respond_text(c, "400 Bad Request", "", "bad request line");
        return;
    }
    path_end = memchr(sp1 + 1, '?', (size_t)(sp2 - sp1 - 1));
    path_len = (size_t)((path_end != NULL ? path_end : sp2) - (sp1 + 1));
    for (route = 0; route < ROUTES; route++)
        if (path_len == strlen(routes[route]) && memcmp(sp1 + 1, routes[route], path_len) == 0)
            break;
    if (route == ROUTES) {
        respond_text(c, "404 Not Found", "",
                     "not found: GET /metrics (Prometheus), /healthz (alive), /readyz (ready)");
        return;
    }
    if (sp1 - line != 3 || memcmp(line, "GET", 3) != 0) {
        respond_text(c, "405 Method Not Allowed", "Allow: GET\r\n", "method not allowed");
        return;
    }
    if (route == ROUTE_HEALTHZ) {
        respond_text(c, "200 OK", "", "ok");
        return;
    }
    if (route == ROUTE_READYZ) {
        answer_ready(c);
        return;
    }
    c->m->render(c->m->data, &c->body);
    if (c->body.error != 0) {
        cq_log(CQ_LOG_ERR, "metrics_render_failed", "error",
               c->body.error == -ENOBUFS ? "page larger than its cap" : "out of memory", NULL);
        respond_text(c, "500 Internal Server Error", "", "metrics page could not be rendered");
        return;
    }
    respond(c, "200 OK", CONTENT_TYPE, "");
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    conn *c = h->data;

    (void)suggested;
    if (c->answered) /* bytes after the request head: read into the void */
        *buf = uv_buf_init(c->req, sizeof(c->req));
    else
        *buf = uv_buf_init(c->req + c->len, (unsigned)(sizeof(c->req) - c->len));
}

/* Reading goes on after the answer is queued, so that unread request bytes
 * never make our close a reset that could destroy the answer on its way. */
static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    conn *c = s->data;
    size_t from;

    (void)buf;
    if (nread < 0) {
        uv_read_stop(s);
        c->peer_eof = true;
        /* before a whole request: the client gave up; after the answer:
         * done; in between: let the answer go out first */
        if (!c->answered || c->shut || nread != UV_EOF)
            conn_close(c);
        return;
    }
    if (nread == 0 || c->answered)
        return;
    from = c->len > 3 ? c->len - 3 : 0;
    c->len += (size_t)nread;
    if (memmem(c->req + from, c->len - from, "\r\n\r\n", 4) != NULL)
        handle_request(c);
    else if (c->len == sizeof(c->req))
        respond_text(c, "431 Request Header Fields Too Large", "", "request head too large");
}

static void timer_cb(uv_timer_t *t)
{
    conn_close(t->data);
}

static void reject_closed(uv_handle_t *h)
{
    free(h);
}

/* Over the connection limit (or freeing): accept and close at once, so the
 * listener does not stall on a connection it never takes. */
static void reject(cq_metrics *m)
{
    uv_tcp_t *t = malloc(sizeof(*t));

    if (t == NULL || uv_tcp_init(m->loop, t) != 0) {
        free(t);
        return;
    }
    uv_accept((uv_stream_t *)&m->listener, (uv_stream_t *)t);
    uv_close((uv_handle_t *)t, reject_closed);
}

static void connection_cb(uv_stream_t *server, int status)
{
    cq_metrics *m = server->data;
    conn *c;

    if (status != 0) {
        cq_log(CQ_LOG_WARN, "metrics_accept_failed", "error", uv_strerror(status), NULL);
        return;
    }
    if (m->freeing || m->nconns >= CQ_METRICS_CONN_MAX || (c = calloc(1, sizeof(*c))) == NULL) {
        reject(m);
        return;
    }
    c->m = m;
    cq_buf_init(&c->body, CQ_BUF_MAX_DEFAULT);
    uv_tcp_init(m->loop, &c->tcp);
    uv_timer_init(m->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->handles = 2;
    c->next = m->conns;
    if (m->conns != NULL)
        m->conns->prev = c;
    m->conns = c;
    m->nconns++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 ||
        uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) != 0 ||
        uv_timer_start(&c->timer, timer_cb, CQ_METRICS_CONN_TIMEOUT_MS, 0) != 0)
        conn_close(c);
}

/* --- the server ---------------------------------------------------------- */

/* Fill ss from host and port: literals first, then one getaddrinfo (this
 * runs once at start-up, before the loop serves anything). */
static int resolve(const char *host, int port, struct sockaddr_storage *ss)
{
    struct addrinfo hints, *res = NULL;
    int rc;

    memset(ss, 0, sizeof(*ss));
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0 ||
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0)
        return 0;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0)
        return rc == EAI_MEMORY ? UV_ENOMEM : UV_EAI_NONAME;
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    if (ss->ss_family == AF_INET6)
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
    freeaddrinfo(res);
    return 0;
}

static void listener_closed(uv_handle_t *h)
{
    cq_metrics *m = h->data;

    m->listener_open = false;
    maybe_release(m);
}

static int bound_port(cq_metrics *m)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);

    if (uv_tcp_getsockname(&m->listener, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                          : ((struct sockaddr_in *)&ss)->sin_port);
}

cq_metrics *cq_metrics_new(uv_loop_t *loop, const char *listen, cq_metrics_render_fn render,
                           void *data, cq_err *err)
{
    char host[HOST_MAX];
    struct sockaddr_storage ss;
    cq_metrics *m;
    int port, rc;

    if (render == NULL || cq_parse_hostport(listen, host, sizeof(host), &port) != 0) {
        cq_err_set(err, -EINVAL, "metrics_listen",
                   "metrics_listen '%s': expected host:port or [v6-address]:port",
                   listen != NULL ? listen : "");
        return NULL;
    }
    rc = resolve(host, port, &ss);
    if (rc != 0) {
        cq_err_set(err, rc, "metrics_listen", "metrics_listen '%s': %s", listen, uv_strerror(rc));
        return NULL;
    }
    m = calloc(1, sizeof(*m));
    if (m == NULL) {
        cq_err_set(err, -ENOMEM, "nomem", "out of memory");
        return NULL;
    }
    m->loop = loop;
    m->render = render;
    m->data = data;
    rc = uv_tcp_init(loop, &m->listener);
    if (rc != 0) {
        free(m);
        cq_err_set(err, rc, "metrics_listen", "metrics_listen: %s", uv_strerror(rc));
        return NULL;
    }
    m->listener.data = m;
    m->listener_open = true;
    rc = uv_tcp_bind(&m->listener, (const struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&m->listener, LISTEN_BACKLOG, connection_cb);
    if (rc == 0 && (m->port = bound_port(m)) < 0)
        rc = UV_EINVAL;
    if (rc != 0) {
        cq_err_set(err, rc, "metrics_listen", "cannot listen on %s: %s", listen, uv_strerror(rc));
        m->freeing = true;
        uv_close((uv_handle_t *)&m->listener, listener_closed);
        return NULL;
    }
    return m;
}

void cq_metrics_set_ready(cq_metrics *m, cq_metrics_ready_fn ready, void *data)
{
    m->ready = ready;
    m->ready_data = data;
}

int cq_metrics_port(const cq_metrics *m)
{
    return m->port;
}

void cq_metrics_free(cq_metrics *m)
{
    conn *c;

    if (m == NULL || m->freeing)
        return;
    m->freeing = true;
    for (c = m->conns; c != NULL; c = c->next)
        conn_close(c);
    uv_close((uv_handle_t *)&m->listener, listener_closed);
}
