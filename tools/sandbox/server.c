/*
 * server.c - listener and connection life cycle; see server.h.
 *
 * A connection moves between these states:
 *   READING  input is parsed; the socket is read whenever all input so far
 *            has been consumed
 *   WAITING  a delayed answer waits on the connection's timer; reading and
 *            parsing stop (pipelined input stays in the read buffer)
 *   BLOCKED  more than SB_WRITE_QUEUE_MAX bytes are unsent; parsing resumes
 *            from the write callback
 *   CLOSING  the last answer (Connection: close) is being written
 *   LINGER   the last answer is out, FIN sent; input is read and dropped
 *            until the peer closes or SB_LINGER_MS pass
 *   CLOSED   handles are closing; memory goes in the last close callback
 * Write requests point at the connection, which stays allocated until its
 * handles' close callbacks, which libuv runs after cancelled writes' ones.
 */
#include "server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conn.h"

#define SB_CONNS_MAX 16384              /* more are accepted and closed at once */
#define SB_IDLE_TIMEOUT_MS 60000        /* a silent keep-alive connection is closed */
#define SB_WRITE_QUEUE_MAX (256 * 1024) /* unsent bytes before parsing pauses */
#define SB_RESP_HEAD_MAX 2048           /* status line + our few headers */
#define SB_LISTEN_BACKLOG 511
#define SB_LINGER_MS 2000 /* wait for the peer's FIN after our last answer */

struct sb_server {
    uv_tcp_t listener;
    uv_loop_t *loop;
    sb_server_hooks hooks;
    sb_conn *conns; /* doubly linked, for shutdown */
    size_t nconns;
};

typedef struct sb_write {
    uv_write_t req;
    sb_conn *conn;
    char *body; /* owned */
    bool close_after;
    char head[]; /* the unsent part of the response head */
} sb_write;

static void conn_process(sb_conn *c);

static void on_handle_close(uv_handle_t *h)
{
    sb_conn *c = h->data;

    if (--c->open_handles == 0) {
        free(c->body);
        free(c);
    }
}

void sb_conn_close(sb_conn *c)
{
    sb_server *srv = c->srv;

    if (c->state == C_CLOSED)
        return;
    c->state = C_CLOSED;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    srv->nconns--;
    sb_resp_release(&c->pending);
    uv_close((uv_handle_t *)&c->tcp, on_handle_close);
    uv_close((uv_handle_t *)&c->timer, on_handle_close);
}

/* Start or stop reading so that the socket is read exactly when the
 * connection is READING and all buffered input has been parsed, or when it
 * LINGERs (input is then discarded). */
static void update_reading(sb_conn *c)
{
    bool want = (c->state == C_READING && c->roff == c->rlen) || c->state == C_LINGER;

    if (c->state == C_CLOSED || want == c->reading)
        return;
    if (want && uv_read_start((uv_stream_t *)&c->tcp, sb_conn_alloc, sb_conn_on_read) != 0) {
        sb_conn_close(c);
        return;
    }
    if (!want)
        uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = want;
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    sb_conn *c = req->data;

    if (status < 0 && c->state != C_CLOSED)
        sb_conn_close(c);
}

/*
 * The last answer is out: send FIN, then read and discard what the peer
 * still sends until it closes or SB_LINGER_MS pass.  Closing at once could
 * reset the connection while unread input (e.g. the rest of a refused body)
 * is pending, and a reset can destroy the answer before the client reads it.
 */
static void linger(sb_conn *c)
{
    c->state = C_LINGER;
    c->shutdown.data = c;
    if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        sb_conn_close(c);
        return;
    }
    uv_timer_start(&c->timer, sb_conn_on_timer, SB_LINGER_MS, 0);
    update_reading(c);
}

static void on_write(uv_write_t *req, int status)
{
    sb_write *w = (sb_write *)req;
    sb_conn *c = w->conn;
    bool close_after = w->close_after;

    free(w->body);
    free(w);
    if (c->state == C_CLOSED)
        return;
    if (status < 0) {
        sb_conn_close(c);
        return;
    }
    if (close_after) {
        linger(c);
        return;
    }
    if (c->state == C_BLOCKED &&
        uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) <= SB_WRITE_QUEUE_MAX / 2) {
        c->state = C_READING;
        conn_process(c);
    }
}

/* Queue what uv_try_write left of head + body.  done bytes went out. */
static void write_rest(sb_conn *c, const char *head, size_t head_len, char *body, size_t body_len,
                       size_t done, bool close_after)
{
    size_t hrem = done < head_len ? head_len - done : 0;
    size_t boff = done > head_len ? done - head_len : 0;
    sb_write *w = malloc(sizeof(*w) + hrem);
    uv_buf_t bufs[2];
    unsigned n = 0;

    if (w == NULL) {
        free(body);
        sb_conn_close(c);
        return;
    }
    w->conn = c;
    w->body = body;
    w->close_after = close_after;
    memcpy(w->head, head + head_len - hrem, hrem);
    if (hrem > 0)
        bufs[n++] = uv_buf_init(w->head, (unsigned)hrem);
    if (body_len > boff)
        bufs[n++] = uv_buf_init(body + boff, (unsigned)(body_len - boff));
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, bufs, n, on_write) != 0) {
        free(w->body);
        free(w);
        sb_conn_close(c);
        return;
    }
    if (close_after) {
        c->state = C_CLOSING;
        update_reading(c);
    }
}

/* Send head + body (body ownership moves here): straight to the socket
 * when it takes everything, else through a queued write.  After a
 * close_after answer the connection lingers and closes.  On failure the
 * connection is closed. */
static void conn_write(sb_conn *c, const char *head, size_t head_len, char *body, size_t body_len,
                       bool close_after)
{
    uv_buf_t bufs[2] = {uv_buf_init((char *)head, (unsigned)head_len),
                        uv_buf_init(body, (unsigned)body_len)};
    int n = uv_try_write((uv_stream_t *)&c->tcp, bufs, body_len > 0 ? 2 : 1);

    if (n == UV_EAGAIN || n == UV_ENOSYS) {
        n = 0; /* earlier writes are queued, or the kernel buffer is full */
    } else if (n < 0) {
        free(body);
        sb_conn_close(c);
        return;
    }
    if ((size_t)n < head_len + body_len) {
        write_rest(c, head, head_len, body, body_len, (size_t)n, close_after);
        return;
    }
    free(body);
    if (close_after)
        linger(c);
}

void sb_conn_send_continue(sb_conn *c)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

    conn_write(c, cont, sizeof(cont) - 1, NULL, 0, false);
}

/* Format the response head; returns its length or -1 when it does not fit. */
static int format_head(char *buf, size_t cap, const sb_response *r, bool has_body, bool close,
                       bool http10)
{
    size_t n = 0;
    int k;

#define PUT(...)                                                                                   \
    do {                                                                                           \
        k = snprintf(buf + n, cap - n, __VA_ARGS__);                                               \
        if (k < 0 || (size_t)k >= cap - n)                                                         \
            return -1;                                                                             \
        n += (size_t)k;                                                                            \
    } while (0)

    PUT("HTTP/1.1 %d %s\r\n", r->status, http_status_str((enum http_status)r->status));
    if (r->status != 204 && r->status != 304)
        PUT("Content-Length: %zu\r\n", r->body_len);
    if (has_body && r->content_type[0] != '\0')
        PUT("Content-Type: %s\r\n", r->content_type);
    if (r->location[0] != '\0')
        PUT("Location: %s\r\n", r->location);
    if (r->retry_after[0] != '\0')
        PUT("Retry-After: %s\r\n", r->retry_after);
    if (r->allow[0] != '\0')
        PUT("Allow: %s\r\n", r->allow);
    if (close)
        PUT("Connection: close\r\n");
    else if (http10)
        PUT("Connection: keep-alive\r\n");
    PUT("\r\n");
#undef PUT
    return (int)n;
}

/* Send r now (its body moves into the write). */
static void send_response(sb_conn *c, sb_response *r)
{
    char head[SB_RESP_HEAD_MAX];
    bool close = r->close || !c->keep_alive;
    bool has_body = r->body_len > 0 && r->status != 204 && r->status != 304;
    int n = format_head(head, sizeof(head), r, has_body, close,
                        c->parser.http_major == 1 && c->parser.http_minor == 0);
    char *body = r->body;

    r->body = NULL;
    if (n < 0) {
        free(body);
        sb_conn_close(c);
        return;
    }
    if (!has_body || c->parser.method == HTTP_HEAD) {
        free(body);
        body = NULL;
    }
    conn_write(c, head, (size_t)n, body, body != NULL ? r->body_len : 0, close);
}

/* Hand the complete request to the handler and act on its answer. */
static void dispatch(sb_conn *c)
{
    sb_server *srv = c->srv;
    sb_header hdrs[SB_HEADERS_MAX];
    sb_request req;
    sb_response resp;

    sb_resp_init(&resp);
    if (sb_conn_build_request(c, &req, hdrs, &resp.why) != 0) {
        srv->hooks.refused(srv->hooks.arg, 400, resp.why.msg);
        resp.rejected = true;
        sb_resp_json(&resp, 400, sb_json_obj1("error", resp.why.msg));
        resp.close = true;
    } else {
        srv->hooks.handle(srv->hooks.arg, &req, &resp);
    }
    sb_conn_request_done(c);
    if (c->parser.upgrade)
        resp.close = true; /* we never switch protocols */
    if (resp.delay_ms > 0) {
        c->pending = resp; /* answered (or dropped) by sb_conn_on_timer */
        c->state = C_WAITING;
        update_reading(c);
        uv_timer_start(&c->timer, sb_conn_on_timer, resp.delay_ms, 0);
        return;
    }
    if (resp.drop) {
        sb_resp_release(&resp);
        sb_conn_close(c);
        return;
    }
    send_response(c, &resp);
}

/* Answer a request the parser refused, then close. */
static void fail(sb_conn *c, enum http_errno err)
{
    sb_server *srv = c->srv;
    int status = c->refuse_status != 0 ? c->refuse_status : 400;
    const char *why = c->refuse_why != NULL ? c->refuse_why : http_errno_description(err);
    char msg[SB_WHY_MAX];
    sb_response resp;

    snprintf(msg, sizeof(msg), "%s%s", c->refuse_status != 0 ? "" : "malformed HTTP: ", why);
    srv->hooks.refused(srv->hooks.arg, status, msg);
    sb_resp_init(&resp);
    sb_resp_json(&resp, status, sb_json_obj1("error", msg));
    resp.close = true;
    send_response(c, &resp);
}

/* Parse buffered input, answering each complete request, until the input
 * is used up or the connection leaves READING. */
static void conn_process(sb_conn *c)
{
    size_t n;
    enum http_errno err;

    while (c->state == C_READING && c->roff < c->rlen) {
        if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > SB_WRITE_QUEUE_MAX) {
            c->state = C_BLOCKED;
            break;
        }
        n = http_parser_execute(&c->parser, &sb_conn_parser_settings, c->rbuf + c->roff,
                                c->rlen - c->roff);
        c->roff += n;
        err = HTTP_PARSER_ERRNO(&c->parser);
        if (err == HPE_PAUSED) { /* on_message_complete paused: a request is ready */
            http_parser_pause(&c->parser, 0);
            dispatch(c);
        } else if (err != HPE_OK) {
            fail(c, err);
        } else if (c->roff < c->rlen) {
            sb_conn_close(c); /* the parser stopped early: upgrade or junk */
        }
    }
    update_reading(c);
}

void sb_conn_on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    sb_conn *c = stream->data;

    (void)buf;
    if (nread < 0) {
        sb_conn_close(c);
        return;
    }
    if (nread == 0 || c->state == C_LINGER)
        return; /* lingering: input after our last answer is dropped */
    c->rlen = (size_t)nread;
    c->roff = 0;
    c->last_active = uv_now(stream->loop);
    conn_process(c);
}

void sb_conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    sb_conn *c = h->data;

    (void)suggested;
    /* only called while reading, i.e. when all earlier input was parsed (or,
     * when lingering, is to be dropped) */
    *buf = uv_buf_init(c->rbuf, sizeof(c->rbuf));
}

void sb_conn_on_timer(uv_timer_t *t)
{
    sb_conn *c = t->data;
    uint64_t now = uv_now(t->loop), idle;

    if (c->state == C_WAITING && c->pending.drop) {
        sb_conn_close(c);
        return;
    }
    if (c->state == C_WAITING) {
        c->state = C_READING;
        c->last_active = now;
        send_response(c, &c->pending);
        if (c->state != C_READING)
            return; /* closing, lingering or closed: their own timers apply */
        uv_timer_start(&c->timer, sb_conn_on_timer, SB_IDLE_TIMEOUT_MS, 0);
        conn_process(c);
        return;
    }
    if (c->state == C_LINGER) {
        sb_conn_close(c);
        return;
    }
    /* idle check: re-armed lazily rather than on every read */
    idle = now - c->last_active;
    if (idle >= SB_IDLE_TIMEOUT_MS && c->state != C_CLOSING) {
        sb_conn_close(c);
        return;
    }
    uv_timer_start(&c->timer, sb_conn_on_timer,
                   idle < SB_IDLE_TIMEOUT_MS ? SB_IDLE_TIMEOUT_MS - idle : SB_IDLE_TIMEOUT_MS, 0);
}

static void on_connection(uv_stream_t *listener, int status)
{
    sb_server *srv = listener->data;
    sb_conn *c;

    if (status < 0)
        return;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return; /* libuv calls again; the peer waits in the backlog */
    c->srv = srv;
    uv_tcp_init(srv->loop, &c->tcp);
    uv_timer_init(srv->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->open_handles = 2;
    c->next = srv->conns;
    if (srv->conns != NULL)
        srv->conns->prev = c;
    srv->conns = c;
    srv->nconns++;
    c->state = C_READING;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0 || srv->nconns > SB_CONNS_MAX) {
        sb_conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    sb_conn_init_parser(c);
    c->last_active = uv_now(srv->loop);
    uv_timer_start(&c->timer, sb_conn_on_timer, SB_IDLE_TIMEOUT_MS, 0);
    update_reading(c);
}

static void on_listener_close(uv_handle_t *h)
{
    free(h->data);
}

int sb_server_start(uv_loop_t *loop, const struct sockaddr *addr, const sb_server_hooks *hooks,
                    sb_server **out)
{
    sb_server *srv = calloc(1, sizeof(*srv));
    int rc;

    if (srv == NULL)
        return UV_ENOMEM;
    srv->loop = loop;
    srv->hooks = *hooks;
    rc = uv_tcp_init(loop, &srv->listener);
    if (rc != 0) {
        free(srv);
        return rc;
    }
    srv->listener.data = srv;
    rc = uv_tcp_bind(&srv->listener, addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&srv->listener, SB_LISTEN_BACKLOG, on_connection);
    if (rc != 0) {
        uv_close((uv_handle_t *)&srv->listener, on_listener_close);
        return rc;
    }
    *out = srv;
    return 0;
}

int sb_server_port(sb_server *srv)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);

    if (uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}

void sb_server_stop(sb_server *srv)
{
    if (srv == NULL)
        return;
    while (srv->conns != NULL)
        sb_conn_close(srv->conns);
    uv_close((uv_handle_t *)&srv->listener, on_listener_close);
}
