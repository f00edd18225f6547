/*
 * test_metrics.c - the Prometheus text format (buffer, escaping, values,
 * histograms) and the /metrics endpoint over loopback.  The HTTP client is
 * a libuv TCP client on the same loop as the server: it connects, writes
 * the test's bytes, reads to EOF; the test then checks status line,
 * headers and body.  Every server test ends with cq_metrics_free and a loop
 * that closes with no handle left.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "cancelq/metrics.h"

#define WAIT_LIMIT_MS 5000
#define CLIENT_MAX 8

/* --- format -------------------------------------------------------------- */

static void test_buf_grows_and_is_bounded(void **state)
{
    cq_buf b;
    char big[5000];

    (void)state;
    cq_buf_init(&b, 10000);
    assert_int_equal(cq_buf_printf(&b, "%s-%d", "abc", 42), 0);
    assert_string_equal(b.data, "abc-42");
    memset(big, 'x', sizeof(big));
    assert_int_equal(cq_buf_append(&b, big, sizeof(big)), 0);
    assert_int_equal(b.len, 5006);
    assert_int_equal(cq_buf_printf(&b, "%.*s", 4994, big), 0);
    assert_int_equal(b.len, 10000);
    assert_int_equal(b.data[b.len], '\0');
    /* one byte more fails, and the failure sticks */
    assert_int_equal(cq_buf_append(&b, "y", 1), -ENOBUFS);
    assert_int_equal(cq_buf_printf(&b, "z"), -ENOBUFS);
    assert_int_equal(b.len, 10000);
    cq_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.error, 0);
    assert_string_equal(b.data, "");
    cq_buf_free(&b);
    assert_null(b.data);
    cq_buf_free(NULL);
}

static void test_buf_printf_past_max_keeps_content(void **state)
{
    cq_buf b;

    (void)state;
    cq_buf_init(&b, 8);
    assert_int_equal(cq_buf_printf(&b, "1234"), 0);
    assert_int_equal(cq_buf_printf(&b, "56789"), -ENOBUFS);
    assert_string_equal(b.data, "1234");
    cq_buf_free(&b);
    cq_buf_init(&b, 0);
    assert_int_equal(b.max, CQ_BUF_MAX_DEFAULT);
    cq_buf_free(&b);
}

static void test_family_and_help_escaping(void **state)
{
    cq_buf b;

    (void)state;
    cq_buf_init(&b, 0);
    assert_int_equal(cq_metrics_family(&b, "cancelq_jobs_total", "Jobs \\ ended\nby \"status\".",
                                       CQ_METRIC_COUNTER),
                     0);
    assert_int_equal(cq_metrics_family(&b, "cancelq_up", NULL, CQ_METRIC_GAUGE), 0);
    assert_string_equal(b.data, "# HELP cancelq_jobs_total Jobs \\\\ ended\\nby \"status\".\n"
                                "# TYPE cancelq_jobs_total counter\n"
                                "# HELP cancelq_up \n"
                                "# TYPE cancelq_up gauge\n");
    cq_buf_reset(&b);
    assert_int_equal(cq_metrics_family(&b, "9lives", "x", CQ_METRIC_GAUGE), -EINVAL);
    assert_int_equal(cq_metrics_family(&b, "a-b", "x", CQ_METRIC_GAUGE), -EINVAL);
    assert_int_equal(cq_metrics_family(&b, "ok", "x", (cq_metric_type)9), -EINVAL);
    assert_int_equal(b.len, 0);
    cq_buf_free(&b);
}

static void test_samples_and_label_escaping(void **state)
{
    cq_buf b;

    (void)state;
    cq_buf_init(&b, 0);
    assert_int_equal(cq_metrics_sample(&b, "cancelq_up", 1, NULL), 0);
    assert_int_equal(cq_metrics_sample(&b, "cancelq_jobs_total", 12, "provider", "intronis",
                                       "status", "succeeded", NULL),
                     0);
    assert_int_equal(cq_metrics_sample(&b, "x", 0, "v", "a\\b\"c\nd", "empty", NULL, NULL), 0);
    assert_string_equal(b.data,
                        "cancelq_up 1\n"
                        "cancelq_jobs_total{provider=\"intronis\",status=\"succeeded\"} 12\n"
                        "x{v=\"a\\\\b\\\"c\\nd\",empty=\"\"} 0\n");
    cq_buf_reset(&b);
    /* a bad label name writes nothing at all */
    assert_int_equal(cq_metrics_sample(&b, "x", 1, "ok", "1", "bad:name", "2", NULL), -EINVAL);
    assert_int_equal(cq_metrics_sample(&b, "x", 1, "0x", "1", NULL), -EINVAL);
    assert_int_equal(cq_metrics_sample(&b, "", 1, NULL), -EINVAL);
    assert_int_equal(b.len, 0);
    assert_int_equal(cq_metrics_escape_label(&b, "q\"\\"), 0);
    assert_string_equal(b.data, "q\\\"\\\\");
    cq_buf_free(&b);
}

static void test_values(void **state)
{
    cq_buf b;

    (void)state;
    cq_buf_init(&b, 0);
    cq_metrics_sample(&b, "a", 0.1, NULL);
    cq_metrics_sample(&b, "b", 9007199254740992.0, NULL);
    cq_metrics_sample(&b, "c", -3, NULL);
    cq_metrics_sample(&b, "d", INFINITY, NULL);
    cq_metrics_sample(&b, "e", -INFINITY, NULL);
    cq_metrics_sample(&b, "f", NAN, NULL);
    cq_metrics_sample(&b, "g", 1.0 / 3.0, NULL);
    cq_metrics_sample(&b, "h", 1e300, NULL);
    cq_metrics_sample(&b, "i", 0.005, NULL);
    assert_string_equal(b.data, "a 0.1\nb 9007199254740992\nc -3\nd +Inf\ne -Inf\nf NaN\n"
                                "g 0.33333333333333331\nh 1e+300\ni 0.005\n");
    cq_buf_free(&b);
}

static void test_histogram_buckets(void **state)
{
    cq_histogram h = {0};
    cq_buf b;

    (void)state;
    cq_histogram_observe(&h, 0.005); /* on a bound: that bucket (le is <=) */
    cq_histogram_observe(&h, 0.0051);
    cq_histogram_observe(&h, -1); /* counts as 0 */
    cq_histogram_observe(&h, 0.3);
    cq_histogram_observe(&h, 30);
    cq_histogram_observe(&h, 31);  /* only +Inf */
    cq_histogram_observe(&h, NAN); /* ignored */
    assert_int_equal(h.count, 6);
    assert_int_equal(h.counts[0], 2);
    assert_int_equal(h.counts[1], 1);
    assert_int_equal(h.counts[6], 1);
    assert_int_equal(h.counts[11], 1);
    assert_int_equal(h.counts[12], 1);
    assert_true(fabs(h.sum - 61.3101) < 1e-9);

    cq_buf_init(&b, 0);
    assert_int_equal(cq_histogram_render(&b, "req_seconds", &h, "provider", "a\"b", NULL), 0);
    assert_string_equal(b.data, "req_seconds_bucket{provider=\"a\\\"b\",le=\"0.005\"} 2\n"
                                "req_seconds_bucket{provider=\"a\\\"b\",le=\"0.01\"} 3\n"
                                "req_seconds_bucket{provider=\"a\\\"b\",le=\"0.025\"} 3\n"
                                "req_seconds_bucket{provider=\"a\\\"b\",le=\"0.05\"} 3\n"
                                "req_seconds_bucket{provider=\"a\\\"b\",le=\"0.1\"} 3\n"
                                "req_seconds_bucket{provider=\"a\\\"b\",le=\"0.25\"} 3\n"
                                "req_seconds_bucket{provider=\"a\\\"b\",le=\"0.5\"} 4\n"
                                "req_seconds_bucket{provider=\"a\\\"b\",le=\"1\"} 4\n"
                                "req_seconds_bucket{provider=\"a\\\"b\",le=\"2.5\"} 4\n"
                                "req_seconds_bucket{provider=\"a\\\"b\",le=\"5\"} 4\n"
                                "req_seconds_bucket{provider=\"a\\\"b\",le=\"10\"} 4\n"
                                "req_seconds_bucket{provider=\"a\\\"b\",le=\"30\"} 5\n"
                                "req_seconds_bucket{provider=\"a\\\"b\",le=\"+Inf\"} 6\n"
                                "req_seconds_sum{provider=\"a\\\"b\"} 61.3101\n"
                                "req_seconds_count{provider=\"a\\\"b\"} 6\n");
    cq_buf_reset(&b);
    /* no labels; and "le" is the histogram's own */
    cq_histogram h0 = {0};
    assert_int_equal(cq_histogram_render(&b, "empty", &h0, NULL), 0);
    assert_non_null(strstr(b.data, "empty_bucket{le=\"+Inf\"} 0\nempty_sum 0\nempty_count 0\n"));
    cq_buf_reset(&b);
    assert_int_equal(cq_histogram_render(&b, "x", &h0, "le", "1", NULL), -EINVAL);
    assert_int_equal(b.len, 0);
    cq_buf_free(&b);
}

/* --- the endpoint -------------------------------------------------------- */

typedef struct page {
    int renders;
    size_t fill; /* render this many extra bytes (for the overflow test) */
} page;

static void render(void *data, cq_buf *out)
{
    page *p = data;

    p->renders++;
    cq_metrics_family(out, "cancelq_scrapes_total", "Scrapes so far.", CQ_METRIC_COUNTER);
    cq_metrics_sample(out, "cancelq_scrapes_total", p->renders, NULL);
    for (size_t i = 0; i < p->fill; i += 64)
        cq_buf_printf(out, "# %062zu\n", i);
}

typedef struct client {
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreq;
    const char *send;
    size_t send_len;
    char resp[65536];
    size_t len;
    int status; /* 0 ok, else the libuv error that ended it */
    bool done;
    bool half_close; /* shut the write side down after sending */
    uv_shutdown_t sreq;
} client;

typedef struct fixture {
    uv_loop_t loop;
    uv_timer_t guard;
    bool timed_out;
    page pg;
    cq_metrics *m;
    bool no_v6; /* setup_v6 found no IPv6 loopback */
    client c[CLIENT_MAX];
} fixture;

static void client_closed(uv_handle_t *h)
{
    client *c = h->data;

    c->done = true;
}

static void client_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    client *c = h->data;

    (void)suggested;
    *buf = uv_buf_init(c->resp + c->len, (unsigned)(sizeof(c->resp) - 1 - c->len));
}

static void client_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    client *c = s->data;

    (void)buf;
    if (n > 0) {
        c->len += (size_t)n;
        c->resp[c->len] = '\0';
        if (c->len < sizeof(c->resp) - 1)
            return;
    }
    if (n < 0 && n != UV_EOF)
        c->status = (int)n;
    if (n != 0)
        uv_close((uv_handle_t *)&c->tcp, client_closed);
}

static void client_shut(uv_shutdown_t *r, int status)
{
    (void)r;
    (void)status;
}

static void client_written(uv_write_t *w, int status)
{
    client *c = w->data;

    if (status != 0)
        c->status = status;
    else if (c->half_close)
        uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, client_shut);
}

static void client_connected(uv_connect_t *r, int status)
{
    client *c = r->data;
    uv_buf_t b = uv_buf_init((char *)c->send, (unsigned)c->send_len);

    if (status != 0) {
        c->status = status;
        uv_close((uv_handle_t *)&c->tcp, client_closed);
        return;
    }
    uv_read_start((uv_stream_t *)&c->tcp, client_alloc, client_read);
    if (c->send_len > 0) {
        c->wreq.data = c;
        uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, client_written);
    }
}

static void client_start(fixture *f, client *c, const char *host, const char *req, size_t len,
                         bool half_close)
{
    struct sockaddr_storage ss;
    int port = cq_metrics_port(f->m);

    memset(c, 0, sizeof(*c));
    c->half_close = half_close;
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0)
        assert_int_equal(uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss), 0);
    c->send = req;
    c->send_len = len;
    assert_int_equal(uv_tcp_init(&f->loop, &c->tcp), 0);
    c->tcp.data = c->creq.data = c;
    assert_int_equal(uv_tcp_connect(&c->creq, &c->tcp, (struct sockaddr *)&ss, client_connected),
                     0);
}

static void guard_cb(uv_timer_t *t)
{
    fixture *f = t->data;

    f->timed_out = true;
}

/* Run the loop until every client in c[0..n) is done. */
static void run_clients(fixture *f, int n)
{
    bool all;

    f->timed_out = false;
    uv_timer_start(&f->guard, guard_cb, WAIT_LIMIT_MS, 0);
    do {
        uv_run(&f->loop, UV_RUN_ONCE);
        all = true;
        for (int i = 0; i < n; i++)
            all = all && f->c[i].done;
    } while (!all && !f->timed_out);
    uv_timer_stop(&f->guard);
    assert_false(f->timed_out);
}

/* One request from one client; returns its response text. */
static const char *fetch(fixture *f, const char *host, const char *req)
{
    client_start(f, &f->c[0], host, req, strlen(req), false);
    run_clients(f, 1);
    assert_int_equal(f->c[0].status, 0);
    return f->c[0].resp;
}

static int setup_at(void **state, const char *listen)
{
    fixture *f = calloc(1, sizeof(*f));
    cq_err err;

    if (f == NULL || uv_loop_init(&f->loop) != 0)
        return -1;
    uv_timer_init(&f->loop, &f->guard);
    f->guard.data = f;
    f->m = cq_metrics_new(&f->loop, listen, render, &f->pg, &err);
    *state = f;
    if (f->m == NULL) {
        print_message("cq_metrics_new(%s): %s\n", listen, err.msg);
        return -1;
    }
    return 0;
}

static int setup(void **state)
{
    return setup_at(state, "127.0.0.1:0");
}

static int teardown(void **state)
{
    fixture *f = *state;

    cq_metrics_free(f->m);
    uv_close((uv_handle_t *)&f->guard, NULL);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
    return 0;
}

/* The value of header name in resp, copied into buf ("" when absent). */
static const char *header(const char *resp, const char *name, char *buf, size_t n)
{
    const char *end = strstr(resp, "\r\n\r\n"), *p = resp;
    size_t nl = strlen(name);

    buf[0] = '\0';
    while ((p = strstr(p, "\r\n")) != NULL && p < end) {
        p += 2;
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1, *e = strstr(v, "\r\n");

            while (*v == ' ')
                v++;
            snprintf(buf, n, "%.*s", (int)(e - v), v);
            break;
        }
    }
    return buf;
}

static const char *body(const char *resp)
{
    const char *b = strstr(resp, "\r\n\r\n");

    return b != NULL ? b + 4 : "";
}

static void test_get_metrics(void **state)
{
    fixture *f = *state;
    const char *r;
    char h[256], cl[32];

    assert_true(cq_metrics_port(f->m) > 0);
    r = fetch(f, "127.0.0.1",
              "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: text/plain\r\nUser-Agent: t\r\n\r\n");
    assert_memory_equal(r, "HTTP/1.1 200 OK\r\n", 17);
    assert_string_equal(header(r, "Content-Type", h, sizeof(h)),
                        "text/plain; version=0.0.4; charset=utf-8");
    assert_string_equal(header(r, "Connection", h, sizeof(h)), "close");
    assert_string_equal(body(r), "# HELP cancelq_scrapes_total Scrapes so far.\n"
                                 "# TYPE cancelq_scrapes_total counter\n"
                                 "cancelq_scrapes_total 1\n");
    snprintf(cl, sizeof(cl), "%zu", strlen(body(r)));
    assert_string_equal(header(r, "Content-Length", h, sizeof(h)), cl);

    /* a query string is fine; every scrape renders afresh */
    r = fetch(f, "127.0.0.1", "GET /metrics?name[]=x HTTP/1.0\r\n\r\n");
    assert_memory_equal(r, "HTTP/1.1 200 OK\r\n", 17);
    assert_non_null(strstr(body(r), "cancelq_scrapes_total 2\n"));
    assert_int_equal(f->pg.renders, 2);
}

static void test_half_close_after_request(void **state)
{
    fixture *f = *state;
    static const char req[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";

    /* the client shuts its side right after the request: the answer still
     * comes */
    client_start(f, &f->c[0], "127.0.0.1", req, sizeof(req) - 1, true);
    run_clients(f, 1);
    assert_memory_equal(f->c[0].resp, "HTTP/1.1 200 OK\r\n", 17);
}

static void test_errors(void **state)
{
    fixture *f = *state;
    const char *r;
    char h[256];

    r = fetch(f, "127.0.0.1", "GET /metricsx HTTP/1.1\r\n\r\n");
    assert_memory_equal(r, "HTTP/1.1 404 Not Found\r\n", 24);
    assert_string_equal(header(r, "Connection", h, sizeof(h)), "close");
    r = fetch(f, "127.0.0.1", "GET / HTTP/1.1\r\n\r\n");
    assert_memory_equal(r, "HTTP/1.1 404 ", 13);
    r = fetch(f, "127.0.0.1", "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    assert_memory_equal(r, "HTTP/1.1 405 Method Not Allowed\r\n", 33);
    assert_string_equal(header(r, "Allow", h, sizeof(h)), "GET");
    r = fetch(f, "127.0.0.1", "GETX /metrics HTTP/1.1\r\n\r\n");
    assert_memory_equal(r, "HTTP/1.1 405 ", 13);
    r = fetch(f, "127.0.0.1", "GET /metrics\r\n\r\n");
    assert_memory_equal(r, "HTTP/1.1 400 Bad Request\r\n", 26);
    r = fetch(f, "127.0.0.1", "GET  /metrics HTTP/1.1\r\n\r\n");
    assert_memory_equal(r, "HTTP/1.1 400 ", 13);
    r = fetch(f, "127.0.0.1", "GET /metrics SPDY/3\r\n\r\n");
    assert_memory_equal(r, "HTTP/1.1 400 ", 13);
    assert_int_equal(f->pg.renders, 0);
}

/* Readiness as the daemon reports it through the ready callback. */
typedef struct readiness {
    bool ready;
    const char *why;
    int asked;
} readiness;

static bool ready_cb(void *data, char *why, size_t size)
{
    readiness *r = data;

    r->asked++;
    if (r->why != NULL && strcmp(r->why, "fill") == 0)
        memset(why, 'x', size); /* no NUL: the server must cut it */
    else if (r->why != NULL)
        snprintf(why, size, "%s", r->why);
    return r->ready;
}

static void test_healthz_and_readyz(void **state)
{
    fixture *f = *state;
    readiness rd = {.ready = false, .why = "redis down; fenced"};
    const char *r;
    char h[256];

    /* liveness: the loop answers */
    r = fetch(f, "127.0.0.1", "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_memory_equal(r, "HTTP/1.1 200 OK\r\n", 17);
    assert_string_equal(body(r), "ok\n");
    assert_string_equal(header(r, "Content-Length", h, sizeof(h)), "3");
    /* no ready callback: ready */
    r = fetch(f, "127.0.0.1", "GET /readyz HTTP/1.1\r\n\r\n");
    assert_memory_equal(r, "HTTP/1.1 200 OK\r\n", 17);
    assert_string_equal(body(r), "ready\n");
    /* the daemon says not ready, and why */
    cq_metrics_set_ready(f->m, ready_cb, &rd);
    r = fetch(f, "127.0.0.1", "GET /readyz?verbose HTTP/1.0\r\n\r\n");
    assert_memory_equal(r, "HTTP/1.1 503 Service Unavailable\r\n", 34);
    assert_string_equal(body(r), "not ready: redis down; fenced\n");
    assert_string_equal(header(r, "Connection", h, sizeof(h)), "close");
    rd.why = "";
    r = fetch(f, "127.0.0.1", "GET /readyz HTTP/1.1\r\n\r\n");
    assert_memory_equal(r, "HTTP/1.1 503 ", 13);
    assert_string_equal(body(r), "not ready\n");
    rd.why = "fill";
    r = fetch(f, "127.0.0.1", "GET /readyz HTTP/1.1\r\n\r\n");
    assert_memory_equal(r, "HTTP/1.1 503 ", 13);
    assert_int_equal(strlen(body(r)), strlen("not ready: \n") + CQ_METRICS_WHY_MAX - 1);
    /* ready again; the liveness answer never asks */
    rd.ready = true;
    r = fetch(f, "127.0.0.1", "GET /readyz HTTP/1.1\r\n\r\n");
    assert_memory_equal(r, "HTTP/1.1 200 OK\r\n", 17);
    assert_string_equal(body(r), "ready\n");
    rd.ready = false;
    r = fetch(f, "127.0.0.1", "GET /healthz HTTP/1.1\r\n\r\n");
    assert_memory_equal(r, "HTTP/1.1 200 OK\r\n", 17);
    assert_int_equal(rd.asked, 4);
    /* GET only; other paths still 404; no page rendered for any of this */
    r = fetch(f, "127.0.0.1", "POST /readyz HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    assert_memory_equal(r, "HTTP/1.1 405 ", 13);
    r = fetch(f, "127.0.0.1", "GET /healthzz HTTP/1.1\r\n\r\n");
    assert_memory_equal(r, "HTTP/1.1 404 ", 13);
    assert_int_equal(rd.asked, 4);
    assert_int_equal(f->pg.renders, 0);
    cq_metrics_set_ready(f->m, NULL, NULL);
    r = fetch(f, "127.0.0.1", "GET /readyz HTTP/1.1\r\n\r\n");
    assert_memory_equal(r, "HTTP/1.1 200 OK\r\n", 17);
}

static void test_oversized_head(void **state)
{
    fixture *f = *state;
    size_t n = CQ_METRICS_REQUEST_MAX + 4000;
    char *req = malloc(n);
    size_t h;

    assert_non_null(req);
    h = (size_t)snprintf(req, n, "GET /metrics HTTP/1.1\r\nX-Pad: ");
    memset(req + h, 'a', n - h); /* no blank line: the head never ends */
    client_start(f, &f->c[0], "127.0.0.1", req, n, false);
    run_clients(f, 1);
    assert_memory_equal(f->c[0].resp, "HTTP/1.1 431 ", 13);
    assert_int_equal(f->pg.renders, 0);
    free(req);
}

static void test_page_over_cap_is_500(void **state)
{
    fixture *f = *state;
    const char *r;

    f->pg.fill = CQ_BUF_MAX_DEFAULT + 64;
    r = fetch(f, "127.0.0.1", "GET /metrics HTTP/1.1\r\n\r\n");
    assert_memory_equal(r, "HTTP/1.1 500 ", 13);
    f->pg.fill = 0;
    r = fetch(f, "127.0.0.1", "GET /metrics HTTP/1.1\r\n\r\n");
    assert_memory_equal(r, "HTTP/1.1 200 ", 13);
}

static void test_concurrent_clients(void **state)
{
    fixture *f = *state;
    static const char req[] = "GET /metrics HTTP/1.1\r\n\r\n";

    for (int i = 0; i < CLIENT_MAX; i++)
        client_start(f, &f->c[i], "127.0.0.1", req, sizeof(req) - 1, false);
    run_clients(f, CLIENT_MAX);
    for (int i = 0; i < CLIENT_MAX; i++) {
        assert_int_equal(f->c[i].status, 0);
        assert_memory_equal(f->c[i].resp, "HTTP/1.1 200 ", 13);
    }
    assert_int_equal(f->pg.renders, CLIENT_MAX);
}

static void stop_soon(uv_timer_t *t)
{
    fixture *f = t->data;

    /* clients connected and silent: freeing the server drops them */
    cq_metrics_free(f->m);
    f->m = NULL;
}

static void test_free_with_idle_connections(void **state)
{
    fixture *f = *state;

    for (int i = 0; i < 3; i++)
        client_start(f, &f->c[i], "127.0.0.1", "", 0, false);
    uv_timer_start(&f->guard, stop_soon, 100, 0);
    while (!(f->c[0].done && f->c[1].done && f->c[2].done))
        uv_run(&f->loop, UV_RUN_ONCE);
    for (int i = 0; i < 3; i++)
        assert_int_equal(f->c[i].len, 0);
    assert_int_equal(f->pg.renders, 0);
}

static int setup_v6(void **state)
{
    fixture *f;

    if (setup_at(state, "[::1]:0") == 0)
        return 0;
    /* no IPv6 loopback here: the test is skipped, the fixture still ends clean */
    f = *state;
    f->no_v6 = true;
    return 0;
}

static void test_ipv6_loopback(void **state)
{
    fixture *f = *state;
    const char *r;

    if (f->no_v6)
        skip();
    r = fetch(f, "::1", "GET /metrics HTTP/1.1\r\n\r\n");
    assert_memory_equal(r, "HTTP/1.1 200 OK\r\n", 17);
}

static void test_bad_listen_addresses(void **state)
{
    uv_loop_t loop;
    cq_metrics *a, *b;
    cq_err err;
    page pg = {0};
    char addr[64];

    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_null(cq_metrics_new(&loop, "127.0.0.1", render, &pg, &err));
    assert_non_null(strstr(err.msg, "host:port"));
    assert_null(cq_metrics_new(&loop, "no-such-host.invalid:80", render, &pg, &err));
    assert_non_null(strstr(err.msg, "no-such-host.invalid"));
    assert_null(cq_metrics_new(&loop, "127.0.0.1:0", NULL, &pg, &err));
    /* address in use: the failed server's handle goes with the next run */
    a = cq_metrics_new(&loop, "127.0.0.1:0", render, &pg, &err);
    assert_non_null(a);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", cq_metrics_port(a));
    b = cq_metrics_new(&loop, addr, render, &pg, &err);
    assert_null(b);
    assert_non_null(strstr(err.msg, "cannot listen on"));
    assert_non_null(strstr(err.msg, "address already in use"));
    cq_metrics_free(a);
    cq_metrics_free(NULL);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_hostname_listen(void **state)
{
    uv_loop_t loop;
    cq_metrics *m;
    cq_err err;
    page pg = {0};

    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    m = cq_metrics_new(&loop, "localhost:0", render, &pg, &err);
    assert_non_null(m);
    assert_true(cq_metrics_port(m) > 0);
    cq_metrics_free(m);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_grows_and_is_bounded),
        cmocka_unit_test(test_buf_printf_past_max_keeps_content),
        cmocka_unit_test(test_family_and_help_escaping),
        cmocka_unit_test(test_samples_and_label_escaping),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_histogram_buckets),
        cmocka_unit_test_setup_teardown(test_get_metrics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_half_close_after_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_healthz_and_readyz, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversized_head, setup, teardown),
        cmocka_unit_test_setup_teardown(test_page_over_cap_is_500, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_clients, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_with_idle_connections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ipv6_loopback, setup_v6, teardown),
        cmocka_unit_test(test_bad_listen_addresses),
        cmocka_unit_test(test_hostname_listen),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
