/*
 * json_prescan.c - the raw-text pre-scan (cq_json_prescan in json_util.h).
 *
 * cJSON is lenient where cancelq must not be: it takes any byte <= 0x20 as
 * whitespace and raw control characters inside strings, reads numbers with
 * strtod (so "01", "1." and "-.5" pass), turns a bad "\uZZZZ" escape into a
 * NUL that silently cuts the string short, and does not check UTF-8.  The
 * scan refuses all of that, so text that passes both it and cJSON is strict
 * JSON (RFC 8259) and can be stored and handed on verbatim.
 *
 * Pure: no I/O, no globals.
 */
#include "json_util.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>

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
