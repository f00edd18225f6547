/*
 * log.c - logfmt event lines with secret redaction (see log.h); the
 * journal's native form is in log_journal.c.
 */
#include "cancelq/log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log_int.h"

#define CQ_LOG_MAX_SECRETS 64 /* tokens of every provider, with room for renewals */
#define JOURNAL_SOCKET "/run/systemd/journal/socket" /* where sd_journal_sendv() sends */

/* The one process-wide state of cancelq, as syslog(3) has.  first[c] has
 * bit i set when secret i (one of CQ_LOG_SECRET_MIN bytes or more) starts
 * with byte c: most characters of a value are answered "no secret here" by
 * one load, and the rest compare only the secrets that can match
 * (CQ_LOG_MAX_SECRETS fits the 64 bits).  Short secrets have their bit in
 * short_mask instead: they are compared with whole values only. */
static struct {
    FILE *out;
    cq_log_level max_level;
    int journal;
    char *secrets[CQ_LOG_MAX_SECRETS];
    size_t lens[CQ_LOG_MAX_SECRETS];
    uint64_t first[256];
    uint64_t short_mask;
    size_t longest;         /* longest secret of CQ_LOG_SECRET_MIN bytes or more */
    unsigned char cls[256]; /* CLS_* bits per byte, for the one pass over a value */
    bool cls_ready;
} g_log = {NULL, CQ_LOG_INFO, 0, {NULL}, {0}, {0}, 0, 0, {0}, false};

#define CLS_QUOTE 1u  /* the value must be quoted */
#define CLS_SECRET 2u /* a secret starts with this byte */

_Static_assert(CQ_LOG_MAX_SECRETS <= 64, "first[] holds one bit per secret slot");
_Static_assert(CQ_LOG_SECRET_MIN >= 2, "secret_at() compares a secret's second byte first");

static const char mark[] = "[REDACTED]";

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

bool cq_log_journal_stream_is(int fd)
{
    const char *js = getenv("JOURNAL_STREAM");
    uintmax_t dev, ino;
    struct stat st;
    char *end = NULL;

    if (js == NULL || fd < 0 || fstat(fd, &st) != 0)
        return false;
    errno = 0;
    dev = strtoumax(js, &end, 10);
    if (errno != 0 || end == js || *end != ':')
        return false;
    js = end + 1;
    ino = strtoumax(js, &end, 10);
    if (errno != 0 || end == js || *end != '\0')
        return false;
    return dev == (uintmax_t)st.st_dev && ino == (uintmax_t)st.st_ino;
}

void cq_log_init(FILE *out, cq_log_level max_level, int journal)
{
    g_log.out = out;
    g_log.max_level = max_level;
    if (journal == CQ_LOG_AUTO && !cq_log_journal_stream_is(fileno(out != NULL ? out : stderr)))
        journal = CQ_LOG_PLAIN;
    else if (journal == CQ_LOG_AUTO)
        /* sd_journal_sendv() drops entries silently when the socket is
         * missing: then the stream journald reads takes prefixed lines */
        journal = access(JOURNAL_SOCKET, W_OK) == 0 ? CQ_LOG_JOURNAL : CQ_LOG_PREFIX;
    else if (journal != CQ_LOG_PLAIN && journal != CQ_LOG_JOURNAL)
        journal = CQ_LOG_PREFIX;
    g_log.journal = journal;
}

int cq_log_mode(void)
{
    return g_log.journal;
}

static bool quote_byte(unsigned char c)
{
    return c <= ' ' || c == '=' || c == '"' || c == '\\' || c == 0x7f;
}

static void cls_rebuild(void)
{
    for (size_t c = 0; c < 256; c++)
        g_log.cls[c] = (unsigned char)((quote_byte((unsigned char)c) ? CLS_QUOTE : 0) |
                                       (g_log.first[c] != 0 ? CLS_SECRET : 0));
    g_log.cls_ready = true;
}

static void first_rebuild(void)
{
    size_t i;

    memset(g_log.first, 0, sizeof(g_log.first));
    g_log.short_mask = 0;
    g_log.longest = 0;
    for (i = 0; i < CQ_LOG_MAX_SECRETS; i++) {
        g_log.lens[i] = g_log.secrets[i] != NULL ? strlen(g_log.secrets[i]) : 0;
        if (g_log.secrets[i] == NULL)
            continue;
        if (g_log.lens[i] < CQ_LOG_SECRET_MIN) {
            g_log.short_mask |= UINT64_C(1) << i;
            continue;
        }
        g_log.first[(unsigned char)g_log.secrets[i][0]] |= UINT64_C(1) << i;
        if (g_log.lens[i] > g_log.longest)
            g_log.longest = g_log.lens[i];
    }
    cls_rebuild();
}

int cq_log_add_secret_checked(const char *secret)
{
    size_t i;
    int is_short;

    if (secret == NULL || secret[0] == '\0')
        return 0;
    is_short = strlen(secret) < CQ_LOG_SECRET_MIN ? CQ_LOG_SECRET_SHORT : 0;
    for (i = 0; i < CQ_LOG_MAX_SECRETS; i++) {
        if (g_log.secrets[i] != NULL && strcmp(g_log.secrets[i], secret) == 0)
            return is_short;
    }
    for (i = 0; i < CQ_LOG_MAX_SECRETS; i++) {
        if (g_log.secrets[i] == NULL) {
            g_log.secrets[i] = strdup(secret);
            first_rebuild();
            return g_log.secrets[i] != NULL ? is_short : -ENOMEM;
        }
    }
    return -ENOSPC;
}

void cq_log_secret_short(const char *file)
{
    cq_log(CQ_LOG_WARN, "secret_short", "file", file, "detail",
           "shorter than 8 bytes: redacted in logs only where a whole value equals it; "
           "is it the right file?",
           NULL);
}

int cq_log_add_secret(const char *secret)
{
    int rc = cq_log_add_secret_checked(secret);

    return rc == CQ_LOG_SECRET_SHORT ? 0 : rc;
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

/* Is the whole of s one of the short secrets? */
static bool short_secret(const char *s)
{
    uint64_t mask = g_log.short_mask;

    while (mask != 0) {
        int i = __builtin_ctzll(mask);

        mask &= mask - 1;
        if (strcmp(s, g_log.secrets[i]) == 0)
            return true;
    }
    return false;
}

/* How many bytes from s to redact: the longest registered (long) secret
 * that starts at s, or, when s's last rem bytes are the first
 * CQ_LOG_SECRET_MIN or more of a secret, all of them; 0 when neither.  The
 * second byte is compared before memcmp: values often share a secret's
 * first letter, rarely its first two. */
static size_t secret_at(const char *s, size_t rem)
{
    uint64_t mask = g_log.first[(unsigned char)*s];
    size_t best = 0;

    while (mask != 0) {
        int i = __builtin_ctzll(mask);
        const char *sec = g_log.secrets[i];
        size_t n = g_log.lens[i];

        mask &= mask - 1;
        if (n <= rem) {
            if (n > best && sec[1] == s[1] && memcmp(s, sec, n) == 0)
                best = n;
        } else if (rem >= CQ_LOG_SECRET_MIN && rem > best && memcmp(s, sec, rem) == 0) {
            best = rem; /* the value ends with the secret's first rem bytes */
        }
    }
    return best;
}

void cq_log_redact(const char *s, char *buf, size_t size)
{
    size_t o = 0, rem;

    if (size == 0)
        return;
    if (g_log.short_mask != 0 && short_secret(s))
        s = mark;
    rem = strlen(s);
    while (rem > 0 && o + 1 < size) {
        size_t n = s == mark ? 0 : secret_at(s, rem);

        if (n > 0) {
            size_t m = sizeof(mark) - 1;

            if (o + m >= size)
                break;
            memcpy(buf + o, mark, m);
            o += m;
            s += n;
            rem -= n;
            continue;
        }
        buf[o++] = *s++;
        rem--;
    }
    buf[o] = '\0';
}

size_t cq_log_tail_secret(const char *s, size_t len)
{
    size_t from = len > g_log.longest ? len - g_log.longest : 0;

    for (size_t p = from; p + CQ_LOG_SECRET_MIN <= len; p++)
        if ((g_log.cls[(unsigned char)s[p]] & CLS_SECRET) != 0 &&
            secret_at(s + p, len - p) == len - p)
            return len - p;
    return 0;
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
    for (; *v != '\0'; v++)
        if (quote_byte((unsigned char)*v))
            return 1;
    return 0;
}

/* Append v quoted, escaping what must be: runs of plain bytes go in one
 * put (the line is cut at its end either way, so the text is the same as
 * byte by byte). */
static void put_quoted(line *l, const char *v)
{
    const char *run = v, *p;

    put(l, "\"", 1);
    for (p = v; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        char esc[8];

        if (c != '"' && c != '\\' && c >= 0x20 && c != 0x7f)
            continue;
        put(l, run, (size_t)(p - run));
        run = p + 1;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(l, esc, 2);
        } else if (c == '\n') {
            put(l, "\\n", 2);
        } else {
            snprintf(esc, sizeof(esc), "\\x%02x", c);
            puts_(l, esc);
        }
    }
    put(l, run, (size_t)(p - run));
    put(l, "\"", 1);
}

/* Append a value, redacted, quoted and escaped as logfmt wants.  One pass
 * first: when no byte can start a secret and the value fits the redaction
 * buffer, redacting would copy it unchanged, so it is used as it is. */
static void put_value(line *l, const char *v)
{
    char red[CQ_LOG_LINE_MAX];
    unsigned cls = 0;
    bool quote;
    size_t n;

    if (v == NULL)
        v = "";
    if (g_log.short_mask != 0 && short_secret(v))
        v = mark;
    if (!g_log.cls_ready)
        cls_rebuild();
    for (n = 0; n < sizeof(red) - 1 && v[n] != '\0'; n++)
        cls |= g_log.cls[(unsigned char)v[n]];
    quote = (cls & CLS_QUOTE) != 0;
    if ((cls & CLS_SECRET) != 0 || v[n] != '\0') {
        cq_log_redact(v, red, sizeof(red));
        v = red;
        n = strlen(red);
        quote = needs_quotes(red);
    }
    if (n == 0 || quote)
        put_quoted(l, v);
    else
        put(l, v, n);
}

/* v as exactly width decimal digits (0 <= v < 10^width). */
static void put_digits(char *out, int v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        out[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

#define TIME_FIELD "time=YYYY-MM-DDTHH:MM:SS.mmmZ "

/* "time=2026-11-22T10:00:00.123Z ", as "%04d-%02d-%02dT..." prints it;
 * written digit by digit (every line has one), with snprintf kept for
 * years "%04d" would not print in four digits. */
static void put_time(line *l)
{
    char t[96];
    struct timespec ts;
    struct tm tm;
    int year;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    year = tm.tm_year + 1900;
    if (year < 0 || year > 9999) {
        snprintf(t, sizeof(t), "time=%04d-%02d-%02dT%02d:%02d:%02d.%03dZ ", year, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ts.tv_nsec / 1000000));
        puts_(l, t);
        return;
    }
    memcpy(t, TIME_FIELD, sizeof(TIME_FIELD));
    put_digits(t + 5, year, 4);
    put_digits(t + 10, tm.tm_mon + 1, 2);
    put_digits(t + 13, tm.tm_mday, 2);
    put_digits(t + 16, tm.tm_hour, 2);
    put_digits(t + 19, tm.tm_min, 2);
    put_digits(t + 22, tm.tm_sec, 2);
    put_digits(t + 25, (int)(ts.tv_nsec / 1000000), 3);
    put(l, t, sizeof(TIME_FIELD) - 1);
}

size_t cq_log_line(char *buf, size_t size, int form, cq_log_level level, const char *event,
                   va_list ap)
{
    line l = {buf, size, 0};
    const char *k;
    size_t tail;

    if (size == 0)
        return 0;
    buf[0] = '\0';
    if (form == CQ_LOG_PREFIX) {
        char pfx[8];

        snprintf(pfx, sizeof(pfx), "<%d>", (int)level);
        puts_(&l, pfx);
    } else if (form == CQ_LOG_PLAIN) {
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
    if (l.len + 1 < size || size <= 4)
        return l.len;
    /* cut: a secret the cut went through must not leave its start behind */
    tail = cq_log_tail_secret(buf, l.len);
    if (tail == 0) {
        memcpy(buf + size - 4, "...", 4);
        return l.len; /* buf[l.len] is the NUL, also after the "..." mark */
    }
    memcpy(buf + l.len - tail, "...", 4);
    return l.len - tail + 3;
}

size_t cq_log_format(char *buf, size_t size, cq_log_level level, const char *event, ...)
{
    va_list ap;
    size_t n;

    va_start(ap, event);
    n = cq_log_line(buf, size, CQ_LOG_PLAIN, level, event, ap);
    va_end(ap);
    return n;
}

void cq_logv(cq_log_level level, const char *event, va_list ap)
{
    char buf[CQ_LOG_LINE_MAX];
    FILE *out = g_log.out != NULL ? g_log.out : stderr;
    size_t n;
    va_list again;
    int rc;

    if (level > g_log.max_level)
        return;
    if (g_log.journal == CQ_LOG_JOURNAL) {
        va_copy(again, ap);
        rc = cq_log_journal_send(level, event, again);
        va_end(again);
        if (rc == 0)
            return;
    }
    n = cq_log_line(buf, sizeof(buf), g_log.journal == CQ_LOG_PLAIN ? CQ_LOG_PLAIN : CQ_LOG_PREFIX,
                    level, event, ap);
    /* the newline takes the NUL's place: one fwrite, no format parsing, and
     * still one write(2) per line on unbuffered stderr */
    buf[n] = '\n';
    fwrite(buf, 1, n + 1, out);
    fflush(out);
}

bool cq_log_enabled(cq_log_level level)
{
    return level <= g_log.max_level;
}

void cq_log(cq_log_level level, const char *event, ...)
{
    va_list ap;

    va_start(ap, event);
    cq_logv(level, event, ap);
    va_end(ap);
}
