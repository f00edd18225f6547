/*
 * test_http.c - the HTTP engine against a tiny HTTP/1.1 server written with
 * libuv on the same loop (127.0.0.1, port chosen by the kernel).  The server
 * reads a request (headers up to "\r\n\r\n" plus Content-Length bytes), keeps
 * a copy for the test to inspect, and answers with the test's canned bytes,
 * stays silent, or closes.  Every test ends with cq_http_free and a loop that
 * closes with no handle left.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <uv.h>

#include "cancelq/http.h"

#ifndef CQ_VERSION
#define CQ_VERSION "unknown"
#endif

#define SRV_CONN_BUF_MAX (4u * 1024u * 1024u) /* biggest request the server takes */
#define MAX_RESULTS 256
#define WAIT_LIMIT_MS 10000

/* --- the test server ---------------------------------------------------- */

typedef enum srv_mode {
    SRV_ANSWER,       /* write s->response (paths containing "/silent" get nothing) */
    SRV_SILENT,       /* read, never answer */
    SRV_CLOSE,        /* read, then close */
    SRV_ANSWER_CLOSE, /* answer, then close once the answer is written */
} srv_mode;

typedef struct srv srv;

typedef struct srv_conn {
    uv_tcp_t tcp;
    srv *s;
    struct srv_conn *prev, *next;
    char *buf;
    size_t len, cap;
} srv_conn;

struct srv {
    uv_tcp_t listener;
    int port;
    srv_mode mode;
    const char *response;
    size_t response_len;
    int accepted; /* connections */
    int requests; /* complete requests read */
    char *last;   /* copy of the last request, NUL-terminated */
    size_t last_len;
    srv_conn *conns;
    void (*on_request)(srv *s, void *arg);
    void *arg;
};

static void srv_conn_closed(uv_handle_t *handle)
{
    srv_conn *c = handle->data;

    free(c->buf);
    free(c);
}

static void srv_conn_close(srv_conn *c)
{
    srv *s = c->s;

    if (uv_is_closing((uv_handle_t *)&c->tcp))
        return;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    uv_close((uv_handle_t *)&c->tcp, srv_conn_closed);
}

static void srv_conn_close(srv_conn *c);

static void srv_written(uv_write_t *w, int status)
{
    srv_conn *c = w->handle->data;

    if (status == 0 && c->s->mode == SRV_ANSWER_CLOSE)
        srv_conn_close(c);
    free(w);
}

static void srv_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    srv_conn *c = handle->data;
    size_t want = c->len + (suggested < 65536 ? 65536 : suggested);
    char *p;

    if (want > SRV_CONN_BUF_MAX)
        want = SRV_CONN_BUF_MAX;
    if (want > c->cap) {
        p = realloc(c->buf, want);
        if (p == NULL) {
            *buf = uv_buf_init(NULL, 0);
            return;
        }
        c->buf = p;
        c->cap = want;
    }
    *buf = uv_buf_init(c->buf + c->len, (unsigned)(c->cap - c->len));
}

/* Length of one complete request at the start of buf, or 0 if incomplete. */
static size_t request_length(const char *buf, size_t len)
{
    const char *end = memmem(buf, len, "\r\n\r\n", 4);
    const char *line;
    size_t head, body = 0;

    if (end == NULL)
        return 0;
    head = (size_t)(end - buf) + 4;
    for (line = buf; line < end;) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));

        if (strncasecmp(line, "content-length:", 15) == 0)
            body = strtoul(line + 15, NULL, 10);
        if (nl == NULL)
            break;
        line = nl + 1;
    }
    return len >= head + body ? head + body : 0;
}

static void srv_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    srv_conn *c = stream->data;
    srv *s = c->s;
    size_t n;

    (void)buf;
    if (nread < 0) {
        srv_conn_close(c);
        return;
    }
    c->len += (size_t)nread;
    while ((n = request_length(c->buf, c->len)) > 0) {
        free(s->last);
        s->last = malloc(n + 1);
        assert_non_null(s->last);
        memcpy(s->last, c->buf, n);
        s->last[n] = '\0';
        s->last_len = n;
        memmove(c->buf, c->buf + n, c->len - n);
        c->len -= n;
        s->requests++;
        if (s->on_request != NULL)
            s->on_request(s, s->arg);
        if (s->mode == SRV_CLOSE) {
            srv_conn_close(c);
            return;
        }
        if ((s->mode == SRV_ANSWER || s->mode == SRV_ANSWER_CLOSE) &&
            strstr(s->last, "/silent") == NULL) {
            uv_write_t *w = malloc(sizeof(*w));
            uv_buf_t out = uv_buf_init((char *)s->response, (unsigned)s->response_len);

            assert_non_null(w);
            assert_int_equal(uv_write(w, stream, &out, 1, srv_written), 0);
        }
    }
    if (c->len == SRV_CONN_BUF_MAX)
        srv_conn_close(c);
}

static void srv_accept(uv_stream_t *listener, int status)
{
    srv *s = listener->data;
    srv_conn *c;

    assert_int_equal(status, 0);
    c = calloc(1, sizeof(*c));
    assert_non_null(c);
    c->s = s;
    assert_int_equal(uv_tcp_init(listener->loop, &c->tcp), 0);
    c->tcp.data = c;
    c->next = s->conns;
    if (s->conns != NULL)
        s->conns->prev = c;
    s->conns = c;
    assert_int_equal(uv_accept(listener, (uv_stream_t *)&c->tcp), 0);
    s->accepted++;
    assert_int_equal(uv_read_start((uv_stream_t *)&c->tcp, srv_alloc, srv_read), 0);
}

static void srv_start(uv_loop_t *loop, srv *s)
{
    struct sockaddr_in addr;
    struct sockaddr_storage name;
    int namelen = sizeof(name);

    assert_int_equal(uv_tcp_init(loop, &s->listener), 0);
    s->listener.data = s;
    assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &addr), 0);
    assert_int_equal(uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&s->listener, 256, srv_accept), 0);
    assert_int_equal(uv_tcp_getsockname(&s->listener, (struct sockaddr *)&name, &namelen), 0);
    s->port = ntohs(((struct sockaddr_in *)&name)->sin_port);
}

static void srv_stop(srv *s)
{
    while (s->conns != NULL)
        srv_conn_close(s->conns);
    if (!uv_is_closing((uv_handle_t *)&s->listener))
        uv_close((uv_handle_t *)&s->listener, NULL);
}

/* A port nobody listens on: bind, learn the port, close. */
static int closed_port(void)
{
    struct sockaddr_in addr;
    socklen_t len = sizeof(addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    close(fd);
    return ntohs(addr.sin_port);
}

/* --- fixtures ----------------------------------------------------------- */

typedef struct t_state t_state;

typedef struct result {
    t_state *st;
    int calls;
    cq_response r; /* pointers below replaced by copies */
    char *body;
    char retry_after[600], location[600], content_type[600], msg[512];
} result;

struct t_state {
    uv_loop_t loop;
    uv_timer_t guard;
    srv srv;
    cq_http *h;
    char *big; /* a generated response, freed at teardown */
    result res[MAX_RESULTS];
    int done; /* callbacks fired */
    /* for the chained and re-entrant tests */
    int chain_left;
    cq_http_opts opts;
    char url[128];
};

static bool g_in_send; /* set around cq_http_send: callbacks must not run then */

static int setup(void **state)
{
    t_state *st = calloc(1, sizeof(*st));
    cq_err err;
    int i;

    assert_non_null(st);
    assert_int_equal(uv_loop_init(&st->loop), 0);
    assert_int_equal(uv_timer_init(&st->loop, &st->guard), 0);
    srv_start(&st->loop, &st->srv);
    st->h = cq_http_new(&st->loop, 16, &err);
    assert_non_null(st->h);
    for (i = 0; i < MAX_RESULTS; i++)
        st->res[i].st = st;
    st->opts.timeout_ms = 5000;
    st->opts.connect_timeout_ms = 2000;
    st->opts.max_response = 1024 * 1024;
    st->opts.allow_http = true;
    snprintf(st->url, sizeof(st->url), "http://127.0.0.1:%d/x", st->srv.port);
    *state = st;
    return 0;
}

static int teardown(void **state)
{
    t_state *st = *state;
    uint64_t start;
    int i;

    cq_http_free(st->h);
    st->h = NULL;
    srv_stop(&st->srv);
    uv_close((uv_handle_t *)&st->guard, NULL);
    /* Everything must close by itself: no handle left active. */
    uv_update_time(&st->loop);
    start = uv_now(&st->loop);
    while (uv_run(&st->loop, UV_RUN_NOWAIT) != 0) {
        uv_update_time(&st->loop);
        if (uv_now(&st->loop) - start > 2000)
            break;
    }
    assert_int_equal(uv_loop_close(&st->loop), 0);
    for (i = 0; i < MAX_RESULTS; i++)
        free(st->res[i].body);
    free(st->srv.last);
    free(st->big);
    free(st);
    return 0;
}

static void copy_str(char *dst, size_t size, const char *src, const char **field)
{
    if (src == NULL) {
        *field = NULL;
        return;
    }
    snprintf(dst, size, "%s", src);
    *field = dst;
}

static void on_result(void *data, const cq_response *resp)
{
    result *res = data;

    assert_false(g_in_send);
    res->calls++;
    res->st->done++;
    res->r = *resp;
    assert_non_null(resp->body);
    assert_int_equal(resp->body[resp->body_len], '\0');
    free(res->body);
    res->body = malloc(resp->body_len + 1);
    assert_non_null(res->body);
    memcpy(res->body, resp->body, resp->body_len + 1);
    res->r.body = res->body;
    copy_str(res->retry_after, sizeof(res->retry_after), resp->retry_after, &res->r.retry_after);
    copy_str(res->location, sizeof(res->location), resp->location, &res->r.location);
    copy_str(res->content_type, sizeof(res->content_type), resp->content_type,
             &res->r.content_type);
    copy_str(res->msg, sizeof(res->msg), resp->transport_msg, &res->r.transport_msg);
}

static void on_guard(uv_timer_t *t)
{
    (void)t;
}

/* Run the loop until *counter reaches target (fails after WAIT_LIMIT_MS). */
static void run_until(t_state *st, const int *counter, int target)
{
    uint64_t start;

    uv_update_time(&st->loop);
    start = uv_now(&st->loop);
    assert_int_equal(uv_timer_start(&st->guard, on_guard, 50, 50), 0);
    while (*counter < target) {
        uv_run(&st->loop, UV_RUN_ONCE);
        uv_update_time(&st->loop);
        if (uv_now(&st->loop) - start > WAIT_LIMIT_MS)
            fail_msg("timed out waiting: %d of %d", *counter, target);
    }
    uv_timer_stop(&st->guard);
}

static void run_for(t_state *st, uint64_t ms)
{
    uint64_t start;

    uv_update_time(&st->loop);
    start = uv_now(&st->loop);
    assert_int_equal(uv_timer_start(&st->guard, on_guard, 10, 10), 0);
    while (uv_now(&st->loop) - start < ms) {
        uv_run(&st->loop, UV_RUN_ONCE);
        uv_update_time(&st->loop);
    }
    uv_timer_stop(&st->guard);
}

static void set_response(t_state *st, const char *resp)
{
    st->srv.mode = SRV_ANSWER;
    st->srv.response = resp;
    st->srv.response_len = strlen(resp);
}

/* A request the test owns; cleared with req_clear (no dependency on the
 * adapter module). */
static void req_init(cq_request *req, const char *method, const char *url)
{
    memset(req, 0, sizeof(*req));
    req->method = method;
    req->url = strdup(url);
    assert_non_null(req->url);
}

static void req_header(cq_request *req, const char *line)
{
    req->headers[req->nheaders] = strdup(line);
    assert_non_null(req->headers[req->nheaders]);
    req->nheaders++;
}

static void req_clear(cq_request *req)
{
    size_t i;

    free(req->url);
    for (i = 0; i < req->nheaders; i++)
        free(req->headers[i]);
    free(req->body);
    for (i = 0; i < req->nform; i++)
        free(req->form[i].value);
    memset(req, 0, sizeof(*req));
}

static int send_req(t_state *st, const cq_request *req, const cq_http_opts *opts, result *res)
{
    int rc;

    g_in_send = true;
    rc = cq_http_send(st->h, req, opts, on_result, res);
    g_in_send = false;
    return rc;
}

static void send_get(t_state *st, const char *url, const cq_http_opts *opts, result *res)
{
    cq_request req;

    req_init(&req, "GET", url);
    assert_int_equal(send_req(st, &req, opts, res), 0);
    req_clear(&req); /* the engine copied what it needs */
}

/* Header block of the last request the server read. */
static bool last_has_header(const srv *s, const char *line)
{
    const char *end = strstr(s->last, "\r\n\r\n");
    const char *p = strcasestr(s->last, line);

    return p != NULL && end != NULL && p < end;
}

/* --- tests -------------------------------------------------------------- */

static void test_get_200_body(void **state)
{
    t_state *st = *state;
    result *res = &st->res[0];
    int64_t now = (int64_t)time(NULL) * 1000;

    set_response(st, "HTTP/1.1 200 OK\r\nContent-Type:  text/plain \r\n"
                     "Content-Length: 5\r\n\r\nhello");
    send_get(st, st->url, &st->opts, res);
    assert_int_equal(res->calls, 0);
    assert_int_equal(cq_http_active(st->h), 1);
    run_until(st, &res->calls, 1);

    assert_int_equal(res->r.transport, CQ_TR_OK);
    assert_int_equal(res->r.status, 200);
    assert_true(res->r.maybe_sent);
    assert_int_equal(res->r.body_len, 5);
    assert_string_equal(res->body, "hello");
    assert_string_equal(res->r.content_type, "text/plain");
    assert_null(res->r.location);
    assert_null(res->r.retry_after);
    assert_null(res->r.transport_msg);
    assert_true(res->r.now_ms >= now - 1000 && res->r.now_ms <= now + 60000);
    assert_int_equal(cq_http_active(st->h), 0);

    assert_memory_equal(st->srv.last, "GET /x HTTP/1.1\r\n", 17);
    assert_true(last_has_header(&st->srv, "\r\nUser-Agent: cancelq/" CQ_VERSION "\r\n"));
    assert_int_equal(st->srv.last_len, strstr(st->srv.last, "\r\n\r\n") + 4 - st->srv.last);
}

static void test_303_not_followed(void **state)
{
    t_state *st = *state;
    result *res = &st->res[0];

    set_response(st, "HTTP/1.1 303 See Other\r\nlocation:   https://example.invalid/next  \r\n"
                     "Content-Length: 0\r\n\r\n");
    send_get(st, st->url, &st->opts, res);
    run_until(st, &res->calls, 1);
    run_for(st, 50); /* a followed redirect would show up as a second request */

    assert_int_equal(res->r.transport, CQ_TR_OK);
    assert_int_equal(res->r.status, 303);
    assert_string_equal(res->r.location, "https://example.invalid/next");
    assert_int_equal(res->r.body_len, 0);
    assert_string_equal(res->body, "");
    assert_int_equal(st->srv.requests, 1);
}

static void test_429_retry_after(void **state)
{
    t_state *st = *state;
    result *res = &st->res[0];

    set_response(st, "HTTP/1.1 429 Too Many Requests\r\nRETRY-AFTER: 2\r\n"
                     "Content-Length: 4\r\n\r\nslow");
    send_get(st, st->url, &st->opts, res);
    run_until(st, &res->calls, 1);

    assert_int_equal(res->r.transport, CQ_TR_OK);
    assert_int_equal(res->r.status, 429);
    assert_string_equal(res->r.retry_after, "2");
    assert_string_equal(res->body, "slow");
}

/* Values from an interim 100 block are forgotten; an over-long value is
 * reported as absent rather than cut. */
static void test_headers_reset_and_bounded(void **state)
{
    t_state *st = *state;
    result *res = &st->res[0];
    size_t n;

    st->big = malloc(2048);
    assert_non_null(st->big);
    n = (size_t)snprintf(st->big, 2048,
                         "HTTP/1.1 100 Continue\r\nRetry-After: 99\r\n\r\n"
                         "HTTP/1.1 200 OK\r\nLocation: /%0600d\r\nContent-Length: 2\r\n\r\nok",
                         0);
    assert_true(n < 2048);
    set_response(st, st->big);
    send_get(st, st->url, &st->opts, res);
    run_until(st, &res->calls, 1);

    assert_int_equal(res->r.transport, CQ_TR_OK);
    assert_int_equal(res->r.status, 200);
    assert_null(res->r.retry_after);
    assert_null(res->r.location);
    assert_string_equal(res->body, "ok");
}

static char *make_body_response(size_t body_len)
{
    char head[128];
    int hl =
        snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", body_len);
    char *out = malloc((size_t)hl + body_len + 1);
    size_t i;

    assert_non_null(out);
    memcpy(out, head, (size_t)hl);
    for (i = 0; i < body_len; i++)
        out[hl + (int)i] = (char)('a' + i % 26);
    out[(size_t)hl + body_len] = '\0';
    return out;
}

static void test_body_cap(void **state)
{
    t_state *st = *state;
    cq_http_opts opts = st->opts;
    result *res = &st->res[0];

    opts.max_response = 1024;
    st->big = make_body_response(4096);
    set_response(st, st->big);
    send_get(st, st->url, &opts, res);
    run_until(st, &res->calls, 1);

    assert_int_equal(res->r.transport, CQ_TR_TOO_LARGE);
    assert_true(res->r.maybe_sent);
    assert_true(res->r.body_len <= 1024);
    assert_non_null(res->r.transport_msg);
    assert_non_null(strstr(res->r.transport_msg, "1024"));
}

static void test_body_at_cap_and_growth(void **state)
{
    t_state *st = *state;
    cq_http_opts opts = st->opts;
    const char *body;

    /* exactly the cap: accepted */
    opts.max_response = 1000;
    st->big = make_body_response(1000);
    set_response(st, st->big);
    send_get(st, st->url, &opts, &st->res[0]);
    run_until(st, &st->res[0].calls, 1);
    assert_int_equal(st->res[0].r.transport, CQ_TR_OK);
    assert_int_equal(st->res[0].r.body_len, 1000);

    /* a body arriving in many pieces, buffer grown up to it */
    free(st->big);
    st->big = make_body_response(300000);
    set_response(st, st->big);
    send_get(st, st->url, &st->opts, &st->res[1]);
    run_until(st, &st->res[1].calls, 1);
    assert_int_equal(st->res[1].r.transport, CQ_TR_OK);
    assert_int_equal(st->res[1].r.body_len, 300000);
    body = strstr(st->big, "\r\n\r\n") + 4;
    assert_memory_equal(st->res[1].body, body, 300000);
}

static void test_timeout_after_send(void **state)
{
    t_state *st = *state;
    cq_http_opts opts = st->opts;
    result *res = &st->res[0];
    uint64_t start;

    st->srv.mode = SRV_SILENT;
    opts.timeout_ms = 300;
    uv_update_time(&st->loop);
    start = uv_now(&st->loop);
    send_get(st, st->url, &opts, res);
    run_until(st, &res->calls, 1);

    assert_int_equal(res->r.transport, CQ_TR_TIMEOUT);
    assert_true(res->r.maybe_sent);
    assert_int_equal(res->r.status, 0);
    assert_non_null(res->r.transport_msg);
    assert_int_equal(st->srv.requests, 1);
    assert_true(uv_now(&st->loop) - start >= 290);
    assert_true(uv_now(&st->loop) - start < 3000);
}

static void test_connect_refused(void **state)
{
    t_state *st = *state;
    result *res = &st->res[0];
    char url[64];
    uint64_t start;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/x", closed_port());
    uv_update_time(&st->loop);
    start = uv_now(&st->loop);
    send_get(st, url, &st->opts, res);
    run_until(st, &res->calls, 1);
    /* The refused connect shows up as a poll error (status < 0); passed on
     * to curl as CURL_CSELECT_ERR it ends the transfer at once, ignored it
     * would wait for curl's 200 ms connect re-check. */
    assert_true(uv_now(&st->loop) - start < 150);

    assert_int_equal(res->r.transport, CQ_TR_CONNECT);
    assert_false(res->r.maybe_sent);
    assert_int_equal(res->r.status, 0);
    assert_non_null(res->r.transport_msg);
}

static void test_server_closes(void **state)
{
    t_state *st = *state;
    result *res = &st->res[0];

    st->srv.mode = SRV_CLOSE;
    send_get(st, st->url, &st->opts, res);
    run_until(st, &res->calls, 1);

    assert_int_equal(res->r.transport, CQ_TR_OTHER);
    assert_true(res->r.maybe_sent);
    assert_int_equal(res->r.status, 0);
    assert_non_null(res->r.transport_msg);
    assert_int_equal(st->srv.requests, 1);
}

static void test_post_body_and_headers(void **state)
{
    t_state *st = *state;
    cq_http_opts opts = st->opts;
    result *res = &st->res[0];
    cq_request req;
    const char *json = "{\"reason_id\":3,\"reason_note\":\"x y\"}";
    const char *end;

    set_response(st, "HTTP/1.1 303 See Other\r\nLocation: /done\r\nContent-Length: 0\r\n\r\n");
    opts.auth_prefix = "Authorization: OAuth ";
    opts.token = "s3cr3t-tok";
    req_init(&req, "POST", st->url);
    req_header(&req, "Content-Type: application/json");
    req_header(&req, "Accept: application/json");
    req.body = strdup(json);
    req.body_len = strlen(json);
    assert_int_equal(send_req(st, &req, &opts, res), 0);
    req_clear(&req);
    run_until(st, &res->calls, 1);

    assert_int_equal(res->r.status, 303);
    assert_memory_equal(st->srv.last, "POST /x HTTP/1.1\r\n", 18);
    assert_true(last_has_header(&st->srv, "\r\nAuthorization: OAuth s3cr3t-tok\r\n"));
    assert_true(last_has_header(&st->srv, "\r\nContent-Type: application/json\r\n"));
    assert_true(last_has_header(&st->srv, "\r\nAccept: application/json\r\n"));
    assert_false(last_has_header(&st->srv, "\r\nExpect"));
    end = strstr(st->srv.last, "\r\n\r\n") + 4;
    assert_string_equal(end, json);
}

static void test_post_empty_and_large(void **state)
{
    t_state *st = *state;
    result *res = &st->res[0];
    cq_request req;
    size_t big = 1536 * 1024, i;
    const char *end;

    set_response(st, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    req_init(&req, "POST", st->url);
    req_header(&req, "Content-Type: application/vnd.api+json");
    assert_int_equal(send_req(st, &req, &st->opts, res), 0);
    req_clear(&req);
    run_until(st, &res->calls, 1);
    assert_int_equal(res->r.status, 200);
    assert_true(last_has_header(&st->srv, "\r\nContent-Length: 0\r\n"));
    assert_false(last_has_header(&st->srv, "\r\nExpect"));
    assert_false(last_has_header(&st->srv, "\r\nTransfer-Encoding"));

    /* Above curl's 100-continue threshold: still sent at once, exactly. */
    req_init(&req, "POST", st->url);
    req.body = malloc(big);
    assert_non_null(req.body);
    for (i = 0; i < big; i++)
        req.body[i] = (char)('0' + i % 10);
    req.body[100] = '\0'; /* binary-safe: length, not strlen */
    req.body_len = big;
    assert_int_equal(send_req(st, &req, &st->opts, &st->res[1]), 0);
    run_until(st, &st->res[1].calls, 1);
    assert_int_equal(st->res[1].r.status, 200);
    assert_false(last_has_header(&st->srv, "\r\nExpect"));
    end = strstr(st->srv.last, "\r\n\r\n") + 4;
    assert_int_equal(st->srv.last_len - (size_t)(end - st->srv.last), big);
    assert_memory_equal(end, req.body, big);
    req_clear(&req);
}

static void test_multipart_form(void **state)
{
    t_state *st = *state;
    result *res = &st->res[0];
    cq_request req;
    const char *end;

    set_response(st, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     "Content-Length: 20\r\n\r\n{\"result\":\"success\"}");
    req_init(&req, "POST", st->url);
    req.form[0].name = "serviceid";
    req.form[0].value = strdup("3007255");
    req.form[1].name = "type";
    req.form[1].value = strdup("End of Billing Period");
    req.nform = 2;
    assert_int_equal(send_req(st, &req, &st->opts, res), 0);
    req_clear(&req);
    run_until(st, &res->calls, 1);

    assert_int_equal(res->r.status, 200);
    assert_string_equal(res->body, "{\"result\":\"success\"}");
    assert_string_equal(res->r.content_type, "application/json");
    assert_true(last_has_header(&st->srv, "\r\nContent-Type: multipart/form-data; boundary="));
    assert_false(last_has_header(&st->srv, "\r\nExpect"));
    end = strstr(st->srv.last, "\r\n\r\n") + 4;
    assert_non_null(strstr(end, "Content-Disposition: form-data; name=\"serviceid\"\r\n\r\n"
                                "3007255\r\n"));
    assert_non_null(strstr(end, "Content-Disposition: form-data; name=\"type\"\r\n\r\n"
                                "End of Billing Period\r\n"));
}

static void test_rejects_bad_requests(void **state)
{
    t_state *st = *state;
    cq_http_opts opts = st->opts;
    cq_request req;

    req_init(&req, "POST", st->url);
    opts.auth_prefix = "X-Api-Token: ";
    opts.token = "tok\r\nX-Evil: 1";
    assert_int_equal(send_req(st, &req, &opts, &st->res[0]), -EINVAL);
    req.method = "PUT";
    assert_int_equal(send_req(st, &req, &st->opts, &st->res[0]), -EINVAL);
    req.method = "GET";
    req_header(&req, "X-A: b\nX-Evil: 1");
    assert_int_equal(send_req(st, &req, &st->opts, &st->res[0]), -EINVAL);
    req_clear(&req);
    assert_int_equal(cq_http_active(st->h), 0);
    run_for(st, 20);
    assert_int_equal(st->res[0].calls, 0);
    assert_int_equal(st->srv.accepted, 0);
}

static void test_https_only_by_default(void **state)
{
    t_state *st = *state;
    cq_http_opts opts = st->opts;
    result *res = &st->res[0];

    opts.allow_http = false;
    set_response(st, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    send_get(st, st->url, &opts, res);
    run_until(st, &res->calls, 1);
    run_for(st, 20);

    assert_int_equal(res->r.transport, CQ_TR_CONNECT);
    assert_false(res->r.maybe_sent);
    assert_int_equal(st->srv.accepted, 0);
}

/* Each callback sends the next request: re-entrant sends work and one
 * kept-alive connection carries them all. */
static void chain_cb(void *data, const cq_response *resp)
{
    result *res = data;
    t_state *st = res->st;
    int idx = (int)(res - st->res);

    on_result(data, resp);
    assert_int_equal(resp->status, 200);
    if (st->chain_left > 0) {
        cq_request req;

        st->chain_left--;
        req_init(&req, "GET", st->url);
        g_in_send = true;
        assert_int_equal(cq_http_send(st->h, &req, &st->opts, chain_cb, &st->res[idx + 1]), 0);
        g_in_send = false;
        req_clear(&req);
    }
}

static void test_sequential_reuse_one_connection(void **state)
{
    t_state *st = *state;
    cq_request req;
    int i;

    set_response(st, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    st->chain_left = 19;
    req_init(&req, "GET", st->url);
    assert_int_equal(cq_http_send(st->h, &req, &st->opts, chain_cb, &st->res[0]), 0);
    req_clear(&req);
    run_until(st, &st->done, 20);
    run_for(st, 20);

    for (i = 0; i < 20; i++)
        assert_int_equal(st->res[i].calls, 1);
    assert_int_equal(st->done, 20);
    assert_int_equal(st->srv.requests, 20);
    assert_int_equal(st->srv.accepted, 1);
}

static void test_100_concurrent_exactly_once(void **state)
{
    t_state *st = *state;
    int i, first_batch_conns;

    set_response(st, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    for (i = 0; i < 100; i++)
        send_get(st, st->url, &st->opts, &st->res[i]);
    assert_int_equal(cq_http_active(st->h), 100);
    run_until(st, &st->done, 100);
    first_batch_conns = st->srv.accepted;
    assert_true(first_batch_conns <= 100);

    /* second batch: the cached connections (max_connections 16) are reused */
    for (i = 100; i < 200; i++)
        send_get(st, st->url, &st->opts, &st->res[i]);
    run_until(st, &st->done, 200);
    run_for(st, 20);

    for (i = 0; i < 200; i++) {
        assert_int_equal(st->res[i].calls, 1);
        assert_int_equal(st->res[i].r.transport, CQ_TR_OK);
        assert_string_equal(st->res[i].body, "ok");
    }
    assert_int_equal(st->done, 200);
    assert_int_equal(st->srv.requests, 200);
    assert_true(st->srv.accepted < 200);
    assert_true(st->srv.accepted - first_batch_conns <= 100 - 10);
    assert_int_equal(cq_http_active(st->h), 0);
}

static void abort_when_all_arrived(srv *s, void *arg)
{
    t_state *st = arg;

    if (s->requests == 5)
        cq_http_abort_all(st->h);
}

static void test_abort_all_in_flight(void **state)
{
    t_state *st = *state;
    int i;

    st->srv.mode = SRV_SILENT;
    st->srv.on_request = abort_when_all_arrived;
    st->srv.arg = st;
    for (i = 0; i < 5; i++)
        send_get(st, st->url, &st->opts, &st->res[i]);
    run_until(st, &st->done, 5);
    run_for(st, 20);

    for (i = 0; i < 5; i++) {
        assert_int_equal(st->res[i].calls, 1);
        assert_int_equal(st->res[i].r.transport, CQ_TR_ABORTED);
        assert_true(st->res[i].r.maybe_sent);
    }
    assert_int_equal(cq_http_active(st->h), 0);

    /* the engine still works afterwards */
    set_response(st, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    st->srv.on_request = NULL;
    send_get(st, st->url, &st->opts, &st->res[5]);
    run_until(st, &st->res[5].calls, 1);
    assert_int_equal(st->res[5].r.status, 200);
}

static void test_abort_before_sending(void **state)
{
    t_state *st = *state;
    int i;

    for (i = 0; i < 3; i++)
        send_get(st, st->url, &st->opts, &st->res[i]);
    cq_http_abort_all(st->h);
    for (i = 0; i < 3; i++) {
        assert_int_equal(st->res[i].calls, 1);
        assert_int_equal(st->res[i].r.transport, CQ_TR_ABORTED);
        assert_false(st->res[i].r.maybe_sent);
    }
    assert_int_equal(cq_http_active(st->h), 0);
    run_for(st, 50);
    assert_int_equal(st->done, 3);
    assert_int_equal(st->srv.requests, 0);
}

static void test_free_with_requests_in_flight(void **state)
{
    t_state *st = *state;
    int i;

    st->srv.mode = SRV_SILENT;
    for (i = 0; i < 3; i++)
        send_get(st, st->url, &st->opts, &st->res[i]);
    run_until(st, &st->srv.requests, 3);
    cq_http_free(st->h);
    st->h = NULL;
    for (i = 0; i < 3; i++) {
        assert_int_equal(st->res[i].calls, 1);
        assert_int_equal(st->res[i].r.transport, CQ_TR_ABORTED);
        assert_true(st->res[i].r.maybe_sent);
    }
    /* teardown checks that the loop closes with nothing left */
}

/* The first answer's callback frees the engine: the other request is
 * aborted before cq_http_free returns, and sending is refused. */
static void free_from_cb(void *data, const cq_response *resp)
{
    result *res = data;
    t_state *st = res->st;
    cq_request req;

    on_result(data, resp);
    assert_int_equal(resp->status, 200);
    assert_int_equal(st->res[1].calls, 0);
    cq_http_free(st->h);
    assert_int_equal(st->res[1].calls, 1);
    assert_int_equal(st->res[1].r.transport, CQ_TR_ABORTED);
    req_init(&req, "GET", st->url);
    assert_int_equal(cq_http_send(st->h, &req, &st->opts, on_result, &st->res[2]), -ESHUTDOWN);
    req_clear(&req);
    st->h = NULL;
}

static void test_free_from_callback(void **state)
{
    t_state *st = *state;
    cq_request req;
    char silent[128];

    set_response(st, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    snprintf(silent, sizeof(silent), "http://127.0.0.1:%d/silent", st->srv.port);
    send_get(st, silent, &st->opts, &st->res[1]);
    req_init(&req, "GET", st->url);
    assert_int_equal(cq_http_send(st->h, &req, &st->opts, free_from_cb, &st->res[0]), 0);
    req_clear(&req);
    run_until(st, &st->done, 2);
    assert_null(st->h);
    assert_int_equal(st->res[0].calls, 1);
    assert_int_equal(st->res[1].calls, 1);
    assert_int_equal(st->res[2].calls, 0);
}

/* A callback that aborts everything and sends anew: the aborted request
 * gets its callback before cq_http_abort_all returns, the new one is
 * answered normally. */
static void abort_from_cb(void *data, const cq_response *resp)
{
    result *res = data;
    t_state *st = res->st;

    on_result(data, resp);
    assert_int_equal(resp->status, 200);
    assert_int_equal(cq_http_active(st->h), 1);
    cq_http_abort_all(st->h);
    assert_int_equal(st->res[1].calls, 1);
    assert_int_equal(st->res[1].r.transport, CQ_TR_ABORTED);
    assert_int_equal(cq_http_active(st->h), 0);
    g_in_send = true;
    {
        cq_request req;

        req_init(&req, "GET", st->url);
        assert_int_equal(cq_http_send(st->h, &req, &st->opts, on_result, &st->res[2]), 0);
        req_clear(&req);
    }
    g_in_send = false;
}

static void test_abort_from_callback(void **state)
{
    t_state *st = *state;
    cq_request req;
    char silent[128];

    set_response(st, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    snprintf(silent, sizeof(silent), "http://127.0.0.1:%d/silent", st->srv.port);
    send_get(st, silent, &st->opts, &st->res[1]);
    req_init(&req, "GET", st->url);
    assert_int_equal(cq_http_send(st->h, &req, &st->opts, abort_from_cb, &st->res[0]), 0);
    req_clear(&req);
    run_until(st, &st->done, 3);
    run_for(st, 20);
    assert_int_equal(st->res[0].calls, 1);
    assert_int_equal(st->res[1].calls, 1);
    assert_int_equal(st->res[2].calls, 1);
    assert_int_equal(st->res[2].r.status, 200);
    assert_int_equal(cq_http_active(st->h), 0);
}

/* Polls of the engine's sockets: all of them, and those that keep the loop
 * alive (active and referenced). */
typedef struct poll_count {
    int polls;
    int alive;
} poll_count;

static void count_poll(uv_handle_t *handle, void *arg)
{
    poll_count *n = arg;

    if (handle->type != UV_POLL || uv_is_closing(handle))
        return;
    n->polls++;
    if (uv_is_active(handle) && uv_has_ref(handle))
        n->alive++;
}

static poll_count count_polls(t_state *st)
{
    poll_count n = {0, 0};

    uv_walk(&st->loop, count_poll, &n);
    return n;
}

/* A kept-alive connection keeps its one poll between requests, and that
 * poll does not keep the loop alive while the connection is idle. */
static void test_idle_connection_keeps_its_poll(void **state)
{
    t_state *st = *state;
    poll_count n;
    int i;

    set_response(st, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    for (i = 0; i < 3; i++) {
        send_get(st, st->url, &st->opts, &st->res[i]);
        run_until(st, &st->res[i].calls, 1);
        run_for(st, 20);
        assert_int_equal(st->res[i].r.transport, CQ_TR_OK);
        n = count_polls(st);
        assert_int_equal(n.polls, 1);
        assert_int_equal(n.alive, 0);
    }
    assert_int_equal(st->srv.accepted, 1);
    assert_int_equal(st->srv.requests, 3);
}

/* The peer closes every connection after answering: the idle socket turns
 * readable (its poll stops), curl finds it dead at the next request and
 * closes it through the engine, and the next socket, often with the same
 * fd number, gets a fresh poll.  Nothing fails, no poll is left behind. */
static void test_peer_closes_idle_connections(void **state)
{
    t_state *st = *state;
    poll_count n;
    int i;

    set_response(st, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    st->srv.mode = SRV_ANSWER_CLOSE;
    for (i = 0; i < 20; i++) {
        send_get(st, st->url, &st->opts, &st->res[i]);
        run_until(st, &st->res[i].calls, 1);
        run_for(st, 10); /* the FIN arrives while the connection is idle */
        assert_int_equal(st->res[i].r.transport, CQ_TR_OK);
        assert_int_equal(st->res[i].r.status, 200);
        n = count_polls(st);
        assert_true(n.polls <= 1);
        assert_int_equal(n.alive, 0);
    }
    assert_int_equal(st->srv.accepted, 20);
    assert_int_equal(cq_http_active(st->h), 0);
}

/* Concurrent requests on connections the peer closes after each answer:
 * sockets (and fd numbers) churn while others are being watched. */
static void test_connection_churn_concurrent(void **state)
{
    t_state *st = *state;
    int i;

    set_response(st, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    st->srv.mode = SRV_ANSWER_CLOSE;
    for (i = 0; i < 40; i++)
        send_get(st, st->url, &st->opts, &st->res[i]);
    run_until(st, &st->done, 40);
    run_for(st, 20);
    for (i = 40; i < 80; i++)
        send_get(st, st->url, &st->opts, &st->res[i]);
    run_until(st, &st->done, 80);

    for (i = 0; i < 80; i++) {
        assert_int_equal(st->res[i].calls, 1);
        assert_int_equal(st->res[i].r.transport, CQ_TR_OK);
        assert_string_equal(st->res[i].body, "ok");
    }
    assert_int_equal(st->srv.requests, 80);
}

/* A pooled (reused) easy handle must not report its previous transfer:
 * aborted before it started, nothing was sent. */
static void test_abort_before_sending_reused_handle(void **state)
{
    t_state *st = *state;

    set_response(st, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    send_get(st, st->url, &st->opts, &st->res[0]);
    run_until(st, &st->res[0].calls, 1);
    assert_true(st->res[0].r.maybe_sent);

    send_get(st, st->url, &st->opts, &st->res[1]);
    cq_http_abort_all(st->h);
    assert_int_equal(st->res[1].calls, 1);
    assert_int_equal(st->res[1].r.transport, CQ_TR_ABORTED);
    assert_false(st->res[1].r.maybe_sent);
    assert_int_equal(st->srv.requests, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_200_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_303_not_followed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_429_retry_after, setup, teardown),
        cmocka_unit_test_setup_teardown(test_headers_reset_and_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_at_cap_and_growth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_after_send, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_closes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_post_body_and_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_post_empty_and_large, setup, teardown),
        cmocka_unit_test_setup_teardown(test_multipart_form, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rejects_bad_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_https_only_by_default, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sequential_reuse_one_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_100_concurrent_exactly_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_all_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_before_sending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_from_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_with_requests_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_from_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_connection_keeps_its_poll, setup, teardown),
        cmocka_unit_test_setup_teardown(test_peer_closes_idle_connections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_churn_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_before_sending_reused_handle, setup, teardown),
    };
    int rc;

    /* What cancelqd's main does: curl's global state once, SIGPIPE off. */
    signal(SIGPIPE, SIG_IGN);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
