/*
 * metrics.c - the Prometheus text exposition format 0.0.4 (metrics.h):
 * the bounded buffer pages are rendered into, family and sample lines with
 * their escaping, and fixed-bucket histograms.  No I/O here; the HTTP side
 * is metrics_http.c.
 *
 * Format reference: "Exposition formats" in the Prometheus documentation:
 *   # HELP name text        (text escapes \\ and \n)
 *   # TYPE name counter|gauge|histogram|untyped
 *   name{label="value",...} value   (label values escape \\ \" \n)
 */
#include "cancelq/metrics.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* First allocation of a buffer; it doubles from there up to its max. */
#define BUF_FIRST_ALLOC 4096
/* "%.17g" of any double, "+Inf", "NaN": with room. */
#define VALUE_TEXT_MAX 40
/* Largest integer a double holds exactly (2^53). */
#define EXACT_INT_MAX 9007199254740992.0

const double cq_histogram_bounds[CQ_HISTOGRAM_BUCKETS] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
};

/* --- cq_buf -------------------------------------------------------------- */

void cq_buf_init(cq_buf *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max == 0 ? CQ_BUF_MAX_DEFAULT : max;
}

/* Make room for n more bytes plus the NUL.  0 or the (now sticky) error. */
static int buf_reserve(cq_buf *b, size_t n)
{
    size_t want, cap;
    char *p;

    if (b->error != 0)
        return b->error;
    if (n > b->max - b->len)
        return b->error = -ENOBUFS;
    want = b->len + n + 1;
    if (want <= b->cap)
        return 0;
    cap = b->cap == 0 ? BUF_FIRST_ALLOC : b->cap;
    while (cap < want)
        cap *= 2;
    if (cap > b->max + 1)
        cap = b->max + 1;
    p = realloc(b->data, cap);
    if (p == NULL)
        return b->error = -ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int cq_buf_append(cq_buf *b, const void *data, size_t n)
{
    int rc = buf_reserve(b, n);

    if (rc != 0)
        return rc;
    if (n > 0)
        memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int cq_buf_printf(cq_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;
    size_t room;

    if (b->error != 0)
        return b->error;
    /* one try into what is free, a second after growing when it did not fit */
    room = b->cap > b->len ? b->cap - b->len : 0;
    va_start(ap, fmt);
    n = vsnprintf(room > 0 ? b->data + b->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n < 0)
        return b->error = -EINVAL;
    if ((size_t)n >= room) {
        if (buf_reserve(b, (size_t)n) != 0) {
            if (b->data != NULL)
                b->data[b->len] = '\0'; /* drop the cut-off attempt */
            return b->error;
        }
        va_start(ap, fmt);
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    } else if (buf_reserve(b, (size_t)n) != 0) {
        /* it fitted in memory but passes max */
        b->data[b->len] = '\0';
        return b->error;
    }
    b->len += (size_t)n;
    return 0;
}

void cq_buf_reset(cq_buf *b)
{
    b->len = 0;
    b->error = 0;
    if (b->data != NULL)
        b->data[0] = '\0';
}

void cq_buf_free(cq_buf *b)
{
    if (b == NULL)
        return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->error = 0;
}

/* --- names and values ---------------------------------------------------- */

/* [a-zA-Z_:][a-zA-Z0-9_:]* for metrics; labels have no ':'. */
static bool name_ok(const char *s, bool colon)
{
    if (s == NULL || *s == '\0' || (*s >= '0' && *s <= '9'))
        return false;
    for (; *s != '\0'; s++) {
        char c = *s;

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || (colon && c == ':')))
            return false;
    }
    return true;
}

/* Shortest text that reads back as v. */
static void fmt_value(char *buf, size_t n, double v)
{
    if (isnan(v))
        snprintf(buf, n, "NaN");
    else if (isinf(v))
        snprintf(buf, n, "%s", v > 0 ? "+Inf" : "-Inf");
    else if (v == floor(v) && fabs(v) <= EXACT_INT_MAX)
        snprintf(buf, n, "%.0f", v);
    else {
        snprintf(buf, n, "%.15g", v);
        if (strtod(buf, NULL) != v)
            snprintf(buf, n, "%.17g", v);
    }
}

/* Append s with the escapes of one context: label values also escape '"'. */
static int escape(cq_buf *out, const char *s, bool quote)
{
    const char *run = s;

    if (s == NULL)
        return out->error;
    for (; *s != '\0'; s++) {
        const char *rep = NULL;

        if (*s == '\\')
            rep = "\\\\";
        else if (*s == '\n')
            rep = "\\n";
        else if (quote && *s == '"')
            rep = "\\\"";
        if (rep == NULL)
            continue;
        cq_buf_append(out, run, (size_t)(s - run));
        cq_buf_append(out, rep, 2);
        run = s + 1;
    }
    return cq_buf_append(out, run, (size_t)(s - run));
}

int cq_metrics_escape_label(cq_buf *out, const char *s)
{
    return escape(out, s, true);
}

int cq_metrics_family(cq_buf *out, const char *name, const char *help, cq_metric_type type)
{
    static const char *const types[] = {"counter", "gauge", "histogram", "untyped"};

    if (!name_ok(name, true) || (unsigned)type >= sizeof(types) / sizeof(types[0]))
        return -EINVAL;
    cq_buf_printf(out, "# HELP %s ", name);
    escape(out, help != NULL ? help : "", false);
    return cq_buf_printf(out, "\n# TYPE %s %s\n", name, types[type]);
}

/* Write name+suffix{labels from ap[,le="le"]} value\n.  Nothing is written
 * when a name is bad (the page keeps only whole lines). */
static int sample_line(cq_buf *out, const char *name, const char *suffix, const char *le,
                       double value, va_list ap)
{
    size_t start = out->len;
    const char *k;
    bool first = true;
    char num[VALUE_TEXT_MAX];

    if (!name_ok(name, true))
        return -EINVAL;
    cq_buf_printf(out, "%s%s", name, suffix);
    while ((k = va_arg(ap, const char *)) != NULL) {
        const char *v = va_arg(ap, const char *);

        if (!name_ok(k, false) || (le != NULL && strcmp(k, "le") == 0))
            goto bad_name;
        cq_buf_printf(out, "%c%s=\"", first ? '{' : ',', k);
        escape(out, v, true);
        cq_buf_append(out, "\"", 1);
        first = false;
    }
    if (le != NULL) {
        cq_buf_printf(out, "%cle=\"%s\"", first ? '{' : ',', le);
        first = false;
    }
    fmt_value(num, sizeof(num), value);
    return cq_buf_printf(out, "%s %s\n", first ? "" : "}", num);
bad_name:
    if (out->error == 0 && out->data != NULL) {
        out->len = start;
        out->data[start] = '\0';
    }
    return -EINVAL;
}

int cq_metrics_sample(cq_buf *out, const char *name, double value, ...)
{
    va_list ap;
    int rc;

    va_start(ap, value);
    rc = sample_line(out, name, "", NULL, value, ap);
    va_end(ap);
    return rc;
}

/* --- histograms ---------------------------------------------------------- */

void cq_histogram_observe(cq_histogram *h, double seconds)
{
    size_t i;

    if (isnan(seconds))
        return;
    if (seconds < 0)
        seconds = 0;
    for (i = 0; i < CQ_HISTOGRAM_BUCKETS && seconds > cq_histogram_bounds[i]; i++)
        ;
    h->counts[i]++;
    h->count++;
    h->sum += seconds;
}

int cq_histogram_render(cq_buf *out, const char *name, const cq_histogram *h, ...)
{
    char le[VALUE_TEXT_MAX];
    uint64_t cum = 0;
    va_list ap, aq;
    int rc = 0;

    va_start(ap, h);
    for (size_t i = 0; i <= CQ_HISTOGRAM_BUCKETS && rc == 0; i++) {
        cum += h->counts[i];
        fmt_value(le, sizeof(le), i < CQ_HISTOGRAM_BUCKETS ? cq_histogram_bounds[i] : INFINITY);
        va_copy(aq, ap);
        rc = sample_line(out, name, "_bucket", le, (double)cum, aq);
        va_end(aq);
    }
    if (rc == 0) {
        va_copy(aq, ap);
        rc = sample_line(out, name, "_sum", NULL, h->sum, aq);
        va_end(aq);
    }
    if (rc == 0) {
        va_copy(aq, ap);
        rc = sample_line(out, name, "_count", NULL, (double)h->count, aq);
        va_end(aq);
    }
    va_end(ap);
    return rc;
}
