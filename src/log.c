/*
 * log.c - logfmt event lines with secret redaction (see log.h).
 */
#include "cancelq/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CQ_LOG_MAX_SECRETS 64 /* tokens of every provider, with room for renewals */

/* The one process-wide state of cancelq, as syslog(3) has. */
static struct {
    FILE *out;
    cq_log_level max_level;
    int journal;
    char *secrets[CQ_LOG_MAX_SECRETS];
    unsigned char first[256]; /* first bytes of the secrets: a quick "no" per character */
} g_log = {NULL, CQ_LOG_INFO, 0, {NULL}, {0}};

static const char *level_name(cq_log_level level)
{
    switch (level) {
    case CQ_LOG_ERR:
        return "error";
    case CQ_LOG_WARN:
        return "warn";
    case CQ_LOG_NOTICE:
        return "notice";
    case CQ_LOG_INFO:
        return "info";
    default:
        return "debug";
    }
}

void cq_log_init(FILE *out, cq_log_level max_level, int journal)
{
    g_log.out = out;
    g_log.max_level = max_level;
    if (journal < 0) {
        const char *js = getenv("JOURNAL_STREAM");
        journal = js != NULL && js[0] != '\0';
    }
    g_log.journal = journal;
}

static void first_rebuild(void)
{
    size_t i;

    memset(g_log.first, 0, sizeof(g_log.first));
    for (i = 0; i < CQ_LOG_MAX_SECRETS; i++) {
        if (g_log.secrets[i] != NULL)
            g_log.first[(unsigned char)g_log.secrets[i][0]] = 1;
    }
}

int cq_log_add_secret(const char *secret)
{
    size_t i;

    if (secret == NULL || secret[0] == '\0')
        return 0;
    for (i = 0; i < CQ_LOG_MAX_SECRETS; i++) {
        if (g_log.secrets[i] != NULL && strcmp(g_log.secrets[i], secret) == 0)
            return 0;
    }
    for (i = 0; i < CQ_LOG_MAX_SECRETS; i++) {
        if (g_log.secrets[i] == NULL) {
            g_log.secrets[i] = strdup(secret);
            first_rebuild();
            return g_log.secrets[i] != NULL ? 0 : -ENOMEM;
        }
    }
    return -ENOSPC;
}

static void secret_free(char **slot)
{
    explicit_bzero(*slot, strlen(*slot));
    free(*slot);
    *slot = NULL;
    first_rebuild();
}

void cq_log_remove_secret(const char *secret)
{
    size_t i;

    if (secret == NULL)
        return;
    for (i = 0; i < CQ_LOG_MAX_SECRETS; i++) {
        if (g_log.secrets[i] != NULL && strcmp(g_log.secrets[i], secret) == 0)
            secret_free(&g_log.secrets[i]);
    }
}

void cq_log_shutdown(void)
{
    size_t i;

    for (i = 0; i < CQ_LOG_MAX_SECRETS; i++) {
        if (g_log.secrets[i] != NULL)
            secret_free(&g_log.secrets[i]);
    }
}

/* Length of the registered secret that starts at s, or 0. */
static size_t secret_at(const char *s)
{
    size_t i, best = 0;

    if (!g_log.first[(unsigned char)*s])
        return 0;
    for (i = 0; i < CQ_LOG_MAX_SECRETS; i++) {
        const char *sec = g_log.secrets[i];
        size_t n;

        if (sec == NULL || sec[0] != s[0])
            continue;
        n = strlen(sec);
        if (n > best && strncmp(s, sec, n) == 0)
            best = n;
    }
    return best;
}

void cq_log_redact(const char *s, char *buf, size_t size)
{
    static const char mark[] = "[REDACTED]";
    size_t o = 0;

    if (size == 0)
        return;
    while (*s != '\0' && o + 1 < size) {
        size_t n = secret_at(s);

        if (n > 0) {
            size_t m = sizeof(mark) - 1;

            if (o + m >= size)
                break;
            memcpy(buf + o, mark, m);
            o += m;
            s += n;
            continue;
        }
        buf[o++] = *s++;
    }
    buf[o] = '\0';
}

/* A line buffer that never overflows: appends are cut at the end. */
typedef struct line {
    char *buf;
    size_t size;
    size_t len;
} line;

static void put(line *l, const char *s, size_t n)
{
    if (l->len + 1 >= l->size)
        return;
    if (n > l->size - 1 - l->len)
        n = l->size - 1 - l->len;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
    l->buf[l->len] = '\0';
}

static void puts_(line *l, const char *s)
{
    put(l, s, strlen(s));
}

static int needs_quotes(const char *v)
{
    if (*v == '\0')
        return 1;
    for (; *v != '\0'; v++) {
        unsigned char c = (unsigned char)*v;

        if (c <= ' ' || c == '=' || c == '"' || c == '\\' || c == 0x7f)
            return 1;
    }
    return 0;
}

/* Append a value, redacted, quoted and escaped as logfmt wants. */
static void put_value(line *l, const char *v)
{
    char red[CQ_LOG_LINE_MAX];
    const char *p;

    cq_log_redact(v != NULL ? v : "", red, sizeof(red));
    if (!needs_quotes(red)) {
        puts_(l, red);
        return;
    }
    put(l, "\"", 1);
    for (p = red; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        char esc[8];

        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(l, esc, 2);
        } else if (c == '\n') {
            put(l, "\\n", 2);
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof(esc), "\\x%02x", c);
            puts_(l, esc);
        } else {
            put(l, p, 1);
        }
    }
    put(l, "\"", 1);
}

static void put_time(line *l)
{
    struct timespec ts;
    struct tm tm;
    char t[96];

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(t, sizeof(t), "time=%04d-%02d-%02dT%02d:%02d:%02d.%03dZ ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)(ts.tv_nsec / 1000000));
    puts_(l, t);
}

static size_t format_line(char *buf, size_t size, int journal, cq_log_level level,
                          const char *event, va_list ap)
{
    line l = {buf, size, 0};
    const char *k;

    if (size == 0)
        return 0;
    buf[0] = '\0';
    if (journal) {
        char pfx[8];

        snprintf(pfx, sizeof(pfx), "<%d>", (int)level);
        puts_(&l, pfx);
    } else {
        put_time(&l);
    }
    puts_(&l, "level=");
    puts_(&l, level_name(level));
    puts_(&l, " event=");
    put_value(&l, event);
    while ((k = va_arg(ap, const char *)) != NULL) {
        const char *v = va_arg(ap, const char *);

        put(&l, " ", 1);
        puts_(&l, k);
        put(&l, "=", 1);
        put_value(&l, v);
    }
    if (l.len + 1 >= size && size > 4)
        memcpy(buf + size - 4, "...", 4);
    return strlen(buf);
}

size_t cq_log_format(char *buf, size_t size, cq_log_level level, const char *event, ...)
{
    va_list ap;
    size_t n;

    va_start(ap, event);
    n = format_line(buf, size, 0, level, event, ap);
    va_end(ap);
    return n;
}

void cq_logv(cq_log_level level, const char *event, va_list ap)
{
    char buf[CQ_LOG_LINE_MAX];
    FILE *out = g_log.out != NULL ? g_log.out : stderr;

    if (level > g_log.max_level)
        return;
    format_line(buf, sizeof(buf), g_log.journal, level, event, ap);
    fprintf(out, "%s\n", buf);
    fflush(out);
}

void cq_log(cq_log_level level, const char *event, ...)
{
    va_list ap;

    va_start(ap, event);
    cq_logv(level, event, ap);
    va_end(ap);
}
