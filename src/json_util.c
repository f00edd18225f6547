/*
 * json_util.c - strict reads from cJSON trees, the raw-text pre-scan, RFC 3339
 * timestamps and the canonical params hash.
 *
 * Pure: no I/O, no globals.  cJSON pitfalls handled here (PROVIDERS.md):
 * valueint saturates, so integers are read from valuedouble and checked to
 * be exact; keys are looked up case-sensitively.
 */
#include "json_util.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cancelq/job.h"

/* Largest integer a double holds exactly together with all its neighbours
 * (2^53 - 1): 9007199254740993 parses to 9007199254740992, so from 2^53 on
 * the value read may not be the value written. */
#define CQ_JSON_MAX_EXACT 9007199254740991.0

/* RFC 3339 fractions longer than nanoseconds are refused. */
#define CQ_RFC3339_FRAC_MAX 9

/* 9999-12-31T23:59:59.999Z: the last instant with a four-digit year. */
#define CQ_RFC3339_MAX_MS INT64_C(253402300799999)

/* Objects up to this many members are sorted for the params hash on the
 * stack (real params have 1..4); larger ones on the heap. */
#define CQ_HASH_SMALL_OBJECT 16

#define FNV64_OFFSET UINT64_C(0xcbf29ce484222325)
#define FNV64_PRIME UINT64_C(0x100000001b3)

/* --- small shared helpers ------------------------------------------------ */

const char *cq_json_type_name(const cJSON *item)
{
    if (item == NULL)
        return "nothing";
    if (cJSON_IsString(item))
        return "string";
    if (cJSON_IsNumber(item))
        return "number";
    if (cJSON_IsObject(item))
        return "object";
    if (cJSON_IsArray(item))
        return "array";
    if (cJSON_IsBool(item))
        return "boolean";
    if (cJSON_IsNull(item))
        return "null";
    return "invalid";
}

/* Below this magnitude an exact integer has at most 15 digits, so "%.15g"
 * prints it in plain decimal (the exponent form starts at 1e15) and the text
 * reads back exactly: it is written by hand, without snprintf and strtod.
 * tests/unit/test_json_util.c compares this with the printf path. */
#define CQ_NUM_FAST_LIMIT 1e15

size_t cq_int_text(int64_t v, char out[CQ_INT_TEXT_MAX])
{
    char tmp[CQ_INT_TEXT_MAX];
    /* negate in unsigned arithmetic: -INT64_MIN does not fit an int64 */
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    size_t n = 0, len = 0;

    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        out[len++] = '-';
    while (n > 0)
        out[len++] = tmp[--n];
    out[len] = '\0';
    return len;
}

size_t cq_text_copy(char *dst, size_t size, const char *src, size_t n)
{
    size_t k;

    if (size == 0)
        return n;
    k = n < size ? n : size - 1;
    memcpy(dst, src, k);
    dst[k] = '\0';
    return n;
}

size_t cq_json_number_text(double d, char out[CQ_NUM_TEXT_MAX])
{
    int n;

    if (isnan(d))
        return (size_t)snprintf(out, CQ_NUM_TEXT_MAX, "nan");
    if (isinf(d))
        return (size_t)snprintf(out, CQ_NUM_TEXT_MAX, "%s", d > 0 ? "inf" : "-inf");
    if (d == 0)
        return (size_t)snprintf(out, CQ_NUM_TEXT_MAX, "0");
    if (fabs(d) < CQ_NUM_FAST_LIMIT && d == floor(d))
        return cq_int_text((int64_t)d, out);
    n = snprintf(out, CQ_NUM_TEXT_MAX, "%.15g", d);
    if (strtod(out, NULL) != d)
        n = snprintf(out, CQ_NUM_TEXT_MAX, "%.17g", d);
    return n > 0 ? (size_t)n : 0;
}

size_t cq_utf8_seq_len(const unsigned char *p, size_t n)
{
    unsigned char lo = 0x80, hi = 0xbf;
    size_t need, i;

    if (n == 0)
        return 0;
    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xc2 && p[0] <= 0xdf)
        need = 2;
    else if (p[0] >= 0xe0 && p[0] <= 0xef)
        need = 3;
    else if (p[0] >= 0xf0 && p[0] <= 0xf4)
        need = 4;
    else
        return 0; /* continuation byte, overlong lead, or beyond U+10FFFF */
    if (p[0] == 0xe0)
        lo = 0xa0; /* overlong */
    else if (p[0] == 0xed)
        hi = 0x9f; /* UTF-16 surrogates */
    else if (p[0] == 0xf0)
        lo = 0x90; /* overlong */
    else if (p[0] == 0xf4)
        hi = 0x8f; /* beyond U+10FFFF */
    if (n < need || p[1] < lo || p[1] > hi)
        return 0;
    for (i = 2; i < need; i++)
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    return need;
}

char *cq_utf8_sanitize(const char *s, size_t n)
{
    static const char repl[] = "\xef\xbf\xbd"; /* U+FFFD */
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, o = 0, k;
    char *out;

    if (n > (SIZE_MAX - 1) / 3)
        return NULL;
    out = malloc(n * 3 + 1);
    if (out == NULL)
        return NULL;
    while (i < n) {
        k = p[i] == 0 ? 0 : cq_utf8_seq_len(p + i, n - i);
        if (k == 0) {
            memcpy(out + o, repl, 3);
            o += 3;
            i++;
            continue;
        }
        memcpy(out + o, p + i, k);
        o += k;
        i += k;
    }
    out[o] = '\0';
    return out;
}

/* --- raw-text pre-scan --------------------------------------------------- *
 *
 * cJSON is lenient where cancelq must not be: it takes any byte <= 0x20 as
 * whitespace and raw control characters inside strings, reads numbers with
 * strtod (so "01", "1." and "-.5" pass), turns a bad "\uZZZZ" escape into a
 * NUL that silently cuts the string short, and does not check UTF-8.  The
 * scan refuses all of that, so text that passes both it and cJSON is strict
 * JSON (RFC 8259) and can be stored and handed on verbatim.
 */

typedef struct scan {
    const unsigned char *p;
    size_t len, i;
    int depth, max_depth;
    bool in_string, escaped;
} scan;

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool is_hex(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool is_number_char(unsigned char c)
{
    return is_digit(c) || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
}

static size_t skip_digits(const unsigned char *p, size_t i, size_t n)
{
    while (i < n && is_digit(p[i]))
        i++;
    return i;
}

/* RFC 8259 number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool number_ok(const unsigned char *p, size_t n)
{
    size_t i = 0;

    if (i < n && p[i] == '-')
        i++;
    if (i < n && p[i] == '0')
        i++;
    else if (i < n && p[i] >= '1' && p[i] <= '9')
        i = skip_digits(p, i, n);
    else
        return false;
    if (i < n && p[i] == '.') {
        if (i + 1 >= n || !is_digit(p[i + 1]))
            return false;
        i = skip_digits(p, i + 1, n);
    }
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        i++;
        if (i < n && (p[i] == '+' || p[i] == '-'))
            i++;
        if (i >= n || !is_digit(p[i]))
            return false;
        i = skip_digits(p, i, n);
    }
    return i == n;
}

/* The byte after a backslash; for 'u', four hex digits, not all zero. */
static int scan_escape(scan *s, cq_err *err)
{
    unsigned v = 0;

    s->escaped = false;
    if (s->p[s->i] != 'u')
        return 0; /* cJSON refuses unknown escapes itself */
    for (size_t k = 1; k <= 4; k++) {
        if (s->i + k >= s->len || !is_hex(s->p[s->i + k]))
            return cq_err_set(err, -EINVAL, "bad_json", "bad \\u escape at offset %zu", s->i - 1);
        v |= s->p[s->i + k] != '0';
    }
    if (v == 0)
        return cq_err_set(err, -EINVAL, "bad_json",
                          "\\u0000 in a string at offset %zu is not supported", s->i - 1);
    return 0;
}

static int scan_string_byte(scan *s, cq_err *err)
{
    unsigned char c = s->p[s->i];

    if (c < 0x20)
        return cq_err_set(err, -EINVAL, "bad_json", "control character in a string at offset %zu",
                          s->i);
    if (s->escaped)
        return scan_escape(s, err);
    if (c == '\\')
        s->escaped = true;
    else if (c == '"')
        s->in_string = false;
    return 0;
}

/* A byte outside strings; a number is checked and skipped as a whole. */
static int scan_outside_byte(scan *s, cq_err *err)
{
    unsigned char c = s->p[s->i];
    size_t end;

    if (c == '-' || is_digit(c)) {
        for (end = s->i; end < s->len && is_number_char(s->p[end]); end++)
            ;
        if (!number_ok(s->p + s->i, end - s->i))
            return cq_err_set(err, -EINVAL, "bad_json", "bad number at offset %zu", s->i);
        s->i = end - 1;
    } else if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
        return cq_err_set(err, -EINVAL, "bad_json", "control character at offset %zu", s->i);
    } else if (c == '"') {
        s->in_string = true;
    } else if (c == '[' || c == '{') {
        if (++s->depth > s->max_depth)
            return cq_err_set(err, -EINVAL, "too_deep",
                              "nesting deeper than %d levels at offset %zu", s->max_depth, s->i);
    } else if ((c == ']' || c == '}') && s->depth > 0) {
        s->depth--;
    }
    return 0;
}

/* Bytes inside a string that need no look: printable ASCII other than the
 * quote (0x22) and the backslash (0x5c); DEL is allowed.  Most bytes of a
 * job are these, so they are skipped in a tight loop, one load per byte. */
static const unsigned char plain_string_byte[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x00 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x10 */
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x20 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x30 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x40 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, /* 0x50 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x60 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x70 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x80 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x90 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0xa0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0xb0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0xc0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0xd0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0xe0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0xf0 */
};

static bool is_plain_string_byte(unsigned char c)
{
    return plain_string_byte[c] != 0;
}

int cq_json_prescan(const char *buf, size_t len, int max_depth, cq_err *err)
{
    scan s = {(const unsigned char *)buf, len, 0, 0, max_depth, false, false};
    size_t k;
    int rc;

    while (s.i < len) {
        unsigned char c;

        if (s.in_string && !s.escaped) {
            while (s.i < len && is_plain_string_byte(s.p[s.i]))
                s.i++;
            if (s.i == len)
                break;
            if (s.p[s.i] == '"') { /* the usual end of the run */
                s.in_string = false;
                s.i++;
                continue;
            }
        }
        c = s.p[s.i];
        if (c == 0)
            return cq_err_set(err, -EINVAL, "bad_json", "NUL byte at offset %zu", s.i);
        if (c >= 0x80) {
            k = cq_utf8_seq_len(s.p + s.i, len - s.i);
            if (k == 0)
                return cq_err_set(err, -EINVAL, "bad_json", "invalid UTF-8 at offset %zu", s.i);
            s.i += k;
            s.escaped = false; /* an escaped non-ASCII byte: cJSON refuses it */
            continue;
        }
        rc = s.in_string ? scan_string_byte(&s, err) : scan_outside_byte(&s, err);
        if (rc < 0)
            return rc;
        s.i++;
    }
    return 0;
}

/* --- strict field reads -------------------------------------------------- */

/* The "<prefix>." part of a field name in messages; "" without a prefix. */
static const char *prefix_text(const char *prefix)
{
    return prefix != NULL ? prefix : "";
}

static const char *prefix_dot(const char *prefix)
{
    return prefix != NULL && prefix[0] != '\0' ? "." : "";
}

static const cJSON *get_member(const cJSON *obj, const char *key)
{
    if (!cJSON_IsObject(obj) || key == NULL)
        return NULL;
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

/* The number's text is only made for a message: formatting it costs more
 * than the rest of a successful read. */
static int not_an_integer(const char *pt, const char *pd, const char *key, double d, cq_err *err)
{
    char num[CQ_NUM_TEXT_MAX];

    cq_json_number_text(d, num);
    return cq_err_set(err, -EINVAL, "bad_type", "%s%s%s: must be an integer, got %s", pt, pd, key,
                      num);
}

static int beyond_exact(const char *pt, const char *pd, const char *key, double d, cq_err *err)
{
    char num[CQ_NUM_TEXT_MAX];

    cq_json_number_text(d, num);
    return cq_err_set(err, -EINVAL, "bad_value",
                      "%s%s%s: got %s, beyond 2^53 where integers are not exact", pt, pd, key, num);
}

static int out_of_range(const char *pt, const char *pd, const char *key, int64_t min, int64_t max,
                        double d, cq_err *err)
{
    char num[CQ_NUM_TEXT_MAX];

    cq_json_number_text(d, num);
    return cq_err_set(err, -EINVAL, "bad_value",
                      "%s%s%s: out of range %" PRId64 "..%" PRId64 ", got %s", pt, pd, key, min,
                      max, num);
}

int cq_json_get_int(const cJSON *obj, const char *key, int64_t min, int64_t max, int64_t *out,
                    const char *prefix, cq_err *err)
{
    const char *pt = prefix_text(prefix), *pd = prefix_dot(prefix);
    const cJSON *item = get_member(obj, key);
    double d;
    int64_t v;

    if (item == NULL)
        return cq_err_set(err, -ENOENT, "missing_field", "%s%s%s: missing", pt, pd, key);
    if (!cJSON_IsNumber(item))
        return cq_err_set(err, -EINVAL, "bad_type", "%s%s%s: must be an integer, got %s", pt, pd,
                          key, cq_json_type_name(item));
    d = item->valuedouble;
    if (!isfinite(d) || d != floor(d))
        return not_an_integer(pt, pd, key, d, err);
    if (fabs(d) > CQ_JSON_MAX_EXACT)
        return beyond_exact(pt, pd, key, d, err);
    v = (int64_t)d;
    if (v < min || v > max)
        return out_of_range(pt, pd, key, min, max, d, err);
    *out = v;
    return 0;
}

int cq_json_get_string(const cJSON *obj, const char *key, size_t minlen, size_t maxlen,
                       const char **out, const char *prefix, cq_err *err)
{
    const char *pt = prefix_text(prefix), *pd = prefix_dot(prefix);
    const cJSON *item = get_member(obj, key);
    size_t n;

    if (item == NULL)
        return cq_err_set(err, -ENOENT, "missing_field", "%s%s%s: missing", pt, pd, key);
    if (!cJSON_IsString(item) || item->valuestring == NULL)
        return cq_err_set(err, -EINVAL, "bad_type", "%s%s%s: must be a string, got %s", pt, pd, key,
                          cq_json_type_name(item));
    n = strlen(item->valuestring);
    if (n == 0 && minlen > 0)
        return cq_err_set(err, -EINVAL, "bad_value", "%s%s%s: must not be empty", pt, pd, key);
    if (n < minlen || n > maxlen)
        return cq_err_set(err, -EINVAL, "bad_value", "%s%s%s: must be %zu..%zu bytes, got %zu", pt,
                          pd, key, minlen, maxlen, n);
    *out = item->valuestring;
    return 0;
}

/* --- RFC 3339 ------------------------------------------------------------ */

/* Read exactly n decimal digits at *p. */
static bool take_digits(const char **p, int n, int *out)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return true;
}

/* Consume one of the characters in set (never the terminating NUL). */
static bool take_char(const char **p, const char *set)
{
    if (**p == '\0' || strchr(set, **p) == NULL)
        return false;
    (*p)++;
    return true;
}

static int days_in_month(int year, int month)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

    return month == 2 && leap ? 29 : days[month - 1];
}

/* Fraction digits after '.', as milliseconds (truncated). */
static bool take_fraction(const char **p, int *ms)
{
    int n = 0, v = 0;

    while ((*p)[n] >= '0' && (*p)[n] <= '9') {
        if (n >= CQ_RFC3339_FRAC_MAX)
            return false;
        if (n < 3)
            v = v * 10 + ((*p)[n] - '0');
        n++;
    }
    if (n == 0)
        return false;
    for (int i = n; i < 3; i++)
        v *= 10;
    *p += n;
    *ms = v;
    return true;
}

/* "Z" or "+hh:mm" / "-hh:mm", as minutes east of UTC. */
static bool take_offset(const char **p, int *minutes)
{
    int sign, h, m;

    if (take_char(p, "Zz")) {
        *minutes = 0;
        return true;
    }
    sign = **p == '-' ? -1 : 1;
    if (!take_char(p, "+-") || !take_digits(p, 2, &h) || !take_char(p, ":") ||
        !take_digits(p, 2, &m) || h > 23 || m > 59)
        return false;
    *minutes = sign * (h * 60 + m);
    return true;
}

int cq_parse_rfc3339(const char *s, int64_t *ms)
{
    int Y, M, D, h, mi, sec, frac = 0, off;
    struct tm tm;
    const char *p = s;
    time_t t;

    if (s == NULL || ms == NULL)
        return -EINVAL;
    if (!take_digits(&p, 4, &Y) || !take_char(&p, "-") || !take_digits(&p, 2, &M) ||
        !take_char(&p, "-") || !take_digits(&p, 2, &D) || !take_char(&p, "Tt") ||
        !take_digits(&p, 2, &h) || !take_char(&p, ":") || !take_digits(&p, 2, &mi) ||
        !take_char(&p, ":") || !take_digits(&p, 2, &sec))
        return -EINVAL;
    if (take_char(&p, ".") && !take_fraction(&p, &frac))
        return -EINVAL;
    if (!take_offset(&p, &off) || *p != '\0')
        return -EINVAL;
    if (M < 1 || M > 12 || D < 1 || D > days_in_month(Y, M) || h > 23 || mi > 59 || sec > 60)
        return -EINVAL; /* sec 60: a leap second, counted as the next one */
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = Y - 1900;
    tm.tm_mon = M - 1;
    tm.tm_mday = D;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    t = timegm(&tm);
    *ms = (int64_t)t * 1000 + frac - (int64_t)off * 60000;
    return 0;
}

void cq_format_rfc3339(int64_t ms, char out[32])
{
    struct tm tm;
    size_t n;
    time_t t;

    /* clamp so the text is always a valid, parseable RFC 3339 timestamp */
    if (ms < 0)
        ms = 0;
    if (ms > CQ_RFC3339_MAX_MS)
        ms = CQ_RFC3339_MAX_MS;
    t = (time_t)(ms / 1000);
    if (gmtime_r(&t, &tm) == NULL) {
        snprintf(out, 32, "1970-01-01T00:00:00.000Z");
        return;
    }
    n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm); /* years are 1970..9999 here */
    snprintf(out + n, 32 - n, ".%03dZ", (int)(ms % 1000));
}

/* --- canonical params hash ----------------------------------------------- *
 *
 * The canonical form is the value printed as unformatted JSON with object
 * members sorted by key (byte order, then original position) at every level;
 * numbers are printed as the shortest text that reads back exactly (so 1e3
 * and 1000 agree, 0 and -0 agree, and two different doubles never do).  The
 * text is fed to FNV-1a as it is produced instead of being built with
 * cJSON_Duplicate + cJSON_Print: the function cannot report failure, so it
 * must not depend on allocating.  Sorting uses an array on the stack for
 * small objects, a heap array for larger ones when it can be allocated, and
 * otherwise a selection walk giving the same order.  The hash is compared
 * with idempotency records written by earlier versions, so the canonical
 * text must never change; tests/unit/test_json_util.c keeps the original
 * implementation and compares.
 */

typedef struct member {
    const char *key;
    size_t pos;
    const cJSON *item;
} member;

static void fnv_bytes(uint64_t *h, const void *data, size_t n)
{
    const unsigned char *p = data;

    for (size_t i = 0; i < n; i++) {
        *h ^= p[i];
        *h *= FNV64_PRIME;
    }
}

static void fnv_byte(uint64_t *h, unsigned char c)
{
    *h ^= c;
    *h *= FNV64_PRIME;
}

static void fnv_str(uint64_t *h, const char *s)
{
    fnv_bytes(h, s, strlen(s));
}

static void hash_string(uint64_t *h, const char *s)
{
    char esc[8];

    fnv_byte(h, '"');
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\') {
            fnv_byte(h, '\\');
            fnv_byte(h, *p);
        } else if (*p < 0x20) {
            snprintf(esc, sizeof(esc), "\\u%04x", *p);
            fnv_str(h, esc);
        } else {
            fnv_byte(h, *p);
        }
    }
    fnv_byte(h, '"');
}

static void hash_value(uint64_t *h, const cJSON *item);

static int member_cmp(const member *a, const member *b)
{
    int c = strcmp(a->key, b->key);

    if (c != 0)
        return c;
    return a->pos < b->pos ? -1 : a->pos > b->pos;
}

static int member_qsort_cmp(const void *a, const void *b)
{
    return member_cmp(a, b);
}

static void hash_member(uint64_t *h, const member *m, bool first)
{
    if (!first)
        fnv_byte(h, ',');
    hash_string(h, m->key);
    fnv_byte(h, ':');
    hash_value(h, m->item);
}

static member member_at(const cJSON *child, size_t pos)
{
    member m = {child->string ? child->string : "", pos, child};
    return m;
}

/* Without memory: repeatedly pick the smallest member after the previous. */
static void hash_members_select(uint64_t *h, const cJSON *obj, size_t n)
{
    member prev = {"", 0, NULL}, best = {"", 0, NULL}, cur;
    bool have_prev = false;
    const cJSON *c;
    size_t pos;

    for (size_t k = 0; k < n; k++) {
        best.item = NULL;
        for (c = obj->child, pos = 0; c != NULL; c = c->next, pos++) {
            cur = member_at(c, pos);
            if (have_prev && member_cmp(&cur, &prev) <= 0)
                continue;
            if (best.item == NULL || member_cmp(&cur, &best) < 0)
                best = cur;
        }
        hash_member(h, &best, k == 0);
        prev = best;
        have_prev = true;
    }
}

/* Sort ms[0..n) by member_cmp.  The order is total (positions differ), so
 * this gives exactly the order qsort gives; insertion sort is the cheaper
 * one for the few members of a real params object. */
static void sort_small(member *ms, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        member m = ms[i];
        size_t j = i;

        for (; j > 0 && member_cmp(&ms[j - 1], &m) > 0; j--)
            ms[j] = ms[j - 1];
        ms[j] = m;
    }
}

/* Members sorted in ms (of n), hashed in that order. */
static void hash_sorted(uint64_t *h, const cJSON *obj, member *ms, size_t n)
{
    size_t pos = 0;

    for (const cJSON *c = obj->child; c != NULL; c = c->next, pos++)
        ms[pos] = member_at(c, pos);
    if (n <= CQ_HASH_SMALL_OBJECT)
        sort_small(ms, n);
    else
        qsort(ms, n, sizeof(*ms), member_qsort_cmp);
    for (size_t i = 0; i < n; i++)
        hash_member(h, &ms[i], i == 0);
}

/* Small objects sort on the stack; larger ones in a heap array when one
 * can be allocated, else by the selection walk (same order either way). */
static void hash_object(uint64_t *h, const cJSON *obj)
{
    member small[CQ_HASH_SMALL_OBJECT];
    size_t n = 0;
    member *ms;
    const cJSON *c;

    for (c = obj->child; c != NULL; c = c->next)
        n++;
    fnv_byte(h, '{');
    if (n <= CQ_HASH_SMALL_OBJECT) {
        hash_sorted(h, obj, small, n);
    } else {
        ms = calloc(n, sizeof(*ms));
        if (ms == NULL) {
            hash_members_select(h, obj, n);
        } else {
            hash_sorted(h, obj, ms, n);
            free(ms);
        }
    }
    fnv_byte(h, '}');
}

static void hash_value(uint64_t *h, const cJSON *item)
{
    char num[CQ_NUM_TEXT_MAX];
    size_t n;

    if (cJSON_IsObject(item)) {
        hash_object(h, item);
    } else if (cJSON_IsArray(item)) {
        fnv_byte(h, '[');
        for (const cJSON *c = item->child; c != NULL; c = c->next) {
            hash_value(h, c);
            if (c->next != NULL)
                fnv_byte(h, ',');
        }
        fnv_byte(h, ']');
    } else if (cJSON_IsString(item)) {
        hash_string(h, item->valuestring);
    } else if (cJSON_IsNumber(item) && isfinite(item->valuedouble)) {
        n = cq_json_number_text(item->valuedouble, num);
        fnv_bytes(h, num, n);
    } else if (cJSON_IsTrue(item)) {
        fnv_str(h, "true");
    } else if (cJSON_IsFalse(item)) {
        fnv_str(h, "false");
    } else {
        fnv_str(h, "null"); /* null, NULL, non-finite numbers (as cJSON prints them) */
    }
}

void cq_job_params_hash(const cJSON *params, char out[17])
{
    uint64_t h = FNV64_OFFSET;

    static const char hex[] = "0123456789abcdef";

    hash_value(&h, params);
    /* "%016" PRIx64, digit by digit: this runs for every job */
    for (int i = 15; i >= 0; i--, h >>= 4)
        out[i] = hex[h & 0x0f];
    out[16] = '\0';
}
