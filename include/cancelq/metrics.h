/*
 * metrics.h - Prometheus metrics: the text exposition format 0.0.4 and a
 * tiny HTTP server on the loop that serves it at /metrics.
 *
 * The page is not kept anywhere: on every scrape the server calls the
 * render callback the daemon supplies, which writes the current values
 * into a bounded buffer with the helpers below:
 *
 *   cq_metrics_family(out, "cancelq_jobs_total", "Jobs ended.", CQ_METRIC_COUNTER);
 *   cq_metrics_sample(out, "cancelq_jobs_total", 12, "provider", "intronis",
 *                     "status", "succeeded", NULL);
 *   cq_metrics_family(out, "cancelq_http_request_duration_seconds", "...",
 *                     CQ_METRIC_HISTOGRAM);
 *   cq_histogram_render(out, "cancelq_http_request_duration_seconds", &h,
 *                       "provider", "intronis", NULL);
 *
 * Label values are escaped as the format requires (backslash, double
 * quote, newline), so a provider name or error text cannot break the page.
 * Metric and label names come from code and are checked against the
 * format's name syntax.
 *
 * The server (metrics_http.c) is deliberately not a general HTTP server:
 * it reads one request head (up to CQ_METRICS_REQUEST_MAX bytes, up to the
 * blank line), answers it and closes the connection (Connection: close; no
 * keep-alive, no request bodies).  "GET /metrics" (with or without a query
 * string) gets 200 and the page; "GET /healthz" 200 "ok" whenever the loop
 * answers at all (liveness); "GET /readyz" 200 "ready" when the daemon's
 * ready callback says so, else 503 "not ready: <why>" (readiness: take it
 * out of a load balancer's or orchestrator's rotation); another path 404;
 * another method 405; a malformed request line 400; an over-long head 431;
 * a page larger than the buffer cap 500.  That is all Prometheus, a probe
 * (or curl) needs, and it keeps an HTTP parser out of the daemon.
 *
 * Errors follow libuv: negative errno values.
 */
#ifndef CANCELQ_METRICS_H
#define CANCELQ_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "cancelq/err.h"

/* --- a bounded growable buffer ------------------------------------------- */

/* Default cap of a rendered page: far above what cancelq produces (a few
 * hundred series), low enough that a bug cannot eat the host's memory. */
#define CQ_BUF_MAX_DEFAULT ((size_t)4 * 1024 * 1024)

/* A byte buffer that grows on demand up to max bytes (plus a NUL, always
 * kept after the data).  The first append that would pass max, or that
 * fails to allocate, marks it failed: it then keeps what it had and
 * ignores further appends, so a writer may check once at the end.
 * Initialise with cq_buf_init (no allocation until the first append),
 * release with cq_buf_free. */
typedef struct cq_buf {
    char *data; /* NUL-terminated when not NULL; owned */
    size_t len; /* bytes of data, without the NUL */
    size_t cap; /* bytes allocated */
    size_t max; /* len never passes this */
    int error;  /* 0, or -ENOBUFS (max reached) / -ENOMEM: sticky */
} cq_buf;

/* Empty buffer capped at max bytes (0 means CQ_BUF_MAX_DEFAULT). */
void cq_buf_init(cq_buf *b, size_t max);

/* Append n bytes.  0, or the buffer's sticky error. */
int cq_buf_append(cq_buf *b, const void *data, size_t n);

/* Append printf-style.  0, or the buffer's sticky error. */
int cq_buf_printf(cq_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Empty the buffer (keeping its memory) and clear the error. */
void cq_buf_reset(cq_buf *b);

/* Release the memory; the buffer is then empty and may be reused.  NULL
 * is a no-op. */
void cq_buf_free(cq_buf *b);

/* --- the exposition format ---------------------------------------------- */

typedef enum cq_metric_type {
    CQ_METRIC_COUNTER,
    CQ_METRIC_GAUGE,
    CQ_METRIC_HISTOGRAM,
    CQ_METRIC_UNTYPED,
} cq_metric_type;

/* Write the "# HELP" and "# TYPE" lines that open a family; help is
 * escaped (backslash, newline).  Call once per family, before its samples.
 * 0, -EINVAL for a bad name, or the buffer's error. */
int cq_metrics_family(cq_buf *out, const char *name, const char *help, cq_metric_type type);

/* Write one sample line: name{l1="v1",...} value.  The variadic part is
 * label name / value string pairs ended by NULL (no labels: just NULL).
 * Values are escaped; a NULL value is written as "".  Integers up to 2^53
 * are written exactly; +Inf, -Inf and NaN as the format spells them.
 * 0, -EINVAL for a bad metric or label name, or the buffer's error. */
int cq_metrics_sample(cq_buf *out, const char *name, double value, ...);

/* Write s into out with label-value escaping (\\, \", \n).  0 or the
 * buffer's error. */
int cq_metrics_escape_label(cq_buf *out, const char *s);

/* --- histograms ---------------------------------------------------------- */

/* Bucket upper bounds in seconds, suited to HTTP calls to a provider:
 * 0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 5 10 30, then +Inf. */
#define CQ_HISTOGRAM_BUCKETS 12
extern const double cq_histogram_bounds[CQ_HISTOGRAM_BUCKETS];

/* A fixed-bucket histogram; zero-initialise it (= {0}) to start.  counts[i]
 * holds observations in (bounds[i-1], bounds[i]]; counts[BUCKETS] those
 * above the last bound.  Plain data: no allocation, nothing to free. */
typedef struct cq_histogram {
    uint64_t counts[CQ_HISTOGRAM_BUCKETS + 1];
    uint64_t count;
    double sum;
} cq_histogram;

/* Record one observation in seconds.  Negative values count as 0; NaN is
 * ignored. */
void cq_histogram_observe(cq_histogram *h, double seconds);

/* Write the series of one labelled histogram: name_bucket{...,le="..."}
 * (cumulative, ending with le="+Inf"), name_sum{...} and name_count{...}.
 * The variadic part is label pairs ended by NULL, as in
 * cq_metrics_sample(); do not pass "le".  The family lines are written
 * separately with cq_metrics_family(..., CQ_METRIC_HISTOGRAM).
 * 0, -EINVAL or the buffer's error. */
int cq_histogram_render(cq_buf *out, const char *name, const cq_histogram *h, ...);

/* --- the HTTP endpoint --------------------------------------------------- */

/* Request heads larger than this are refused (431). */
#define CQ_METRICS_REQUEST_MAX ((size_t)8 * 1024)
/* Connections served at once; more are accepted and closed at once. */
#define CQ_METRICS_CONN_MAX 64
/* A client that has not sent its request (or taken the answer) in this time
 * is disconnected. */
#define CQ_METRICS_CONN_TIMEOUT_MS 10000

typedef struct cq_metrics cq_metrics;

/* Write the whole page into out.  Called on the loop, once per scrape;
 * out is empty and capped at CQ_BUF_MAX_DEFAULT.  If out ends up failed,
 * the scrape gets a 500. */
typedef void (*cq_metrics_render_fn)(void *data, cq_buf *out);

/* Is the daemon ready for work (Redis up, not fenced, tokens loaded, ...)?
 * Called on the loop for each GET /readyz.  Returns true when ready; else
 * false with a short reason written to why[why_size] (NUL-terminated; "" is
 * allowed), which goes into the 503 answer's body. */
typedef bool (*cq_metrics_ready_fn)(void *data, char *why, size_t why_size);

/* Longest reason a ready callback may give (the rest is cut). */
#define CQ_METRICS_WHY_MAX 256

/* Listen on listen ("host:port": an IPv4 literal, an IPv6 literal in
 * brackets such as "[::1]:9464", or a host name, resolved once here with
 * getaddrinfo; port 0 takes a free port, see cq_metrics_port()) and serve
 * render's page.  Returns the server, or NULL with err filled (bad
 * address, address in use, ...).  After a NULL return the loop must run
 * once more to release the listener handle, as for any libuv handle. */
cq_metrics *cq_metrics_new(uv_loop_t *loop, const char *listen, cq_metrics_render_fn render,
                           void *data, cq_err *err);

/* Set the readiness callback /readyz asks (NULL: none; then /readyz
 * answers 200 like /healthz: a daemon that says nothing is taken as
 * ready). */
void cq_metrics_set_ready(cq_metrics *m, cq_metrics_ready_fn ready, void *data);

/* The TCP port actually bound (useful after port 0). */
int cq_metrics_port(const cq_metrics *m);

/* Stop listening, drop every connection, and free m once the loop has run
 * the handles' close callbacks.  render is never called after this.  NULL
 * is a no-op. */
void cq_metrics_free(cq_metrics *m);

#endif
