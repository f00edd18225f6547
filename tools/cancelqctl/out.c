/*
 * out.c - printing untrusted text safely: everything cancelqctl prints that
 * came from Redis (job ids, messages, hand-written garbage) may hold escape
 * sequences that would drive the operator's terminal, so control
 * characters, DEL, C1 controls, bidi overrides and invalid UTF-8 are
 * escaped; JSON output gets the same treatment in a form that stays JSON.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cancelq/hash.h"
#include "ctl.h"

#define CELL_MAX 256 /* widest table cell */
#define MARK "..."   /* marks a cut */
#define MARK_COLS 3

/* Where escaped text goes: a FILE, or a buffer of size bytes. */
typedef struct sink {
    FILE *f;
    char *buf;
    size_t size, used;
    size_t reserve; /* room kept for the cut mark */
} sink;

static bool sink_put(sink *k, const char *s, size_t n)
{
    if (k->f != NULL)
        return fwrite(s, 1, n, k->f) == n;
    if (k->used + n + 1 + k->reserve > k->size)
        return false;
    memcpy(k->buf + k->used, s, n);
    k->used += n;
    k->buf[k->used] = '\0';
    return true;
}

/* Decode one UTF-8 sequence at p[0..n): its length (1..4) and code point,
 * or 0 when invalid (overlong, surrogate, beyond U+10FFFF, truncated). */
static size_t utf8_decode(const unsigned char *p, size_t n, unsigned *cp)
{
    size_t len, i;
    unsigned v, min;

    if (p[0] < 0x80) {
        *cp = p[0];
        return 1;
    }
    if ((p[0] & 0xE0) == 0xC0) {
        len = 2, v = p[0] & 0x1Fu, min = 0x80;
    } else if ((p[0] & 0xF0) == 0xE0) {
        len = 3, v = p[0] & 0x0Fu, min = 0x800;
    } else if ((p[0] & 0xF8) == 0xF0) {
        len = 4, v = p[0] & 0x07u, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (p[i] & 0x3Fu);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

/* Code points a terminal could act on, or that reorder text on screen. */
static bool cp_dangerous(unsigned cp)
{
    return (cp >= 0x80 && cp <= 0x9F) || (cp >= 0x202A && cp <= 0x202E) ||
           (cp >= 0x2066 && cp <= 0x2069);
}

/* The display form of the character at p: written to out (NUL-terminated),
 * its byte length in *used; returns the columns it takes. */
static size_t piece(const unsigned char *p, size_t n, char out[16], size_t *used)
{
    unsigned cp = 0;
    size_t len = utf8_decode(p, n, &cp);

    if (len == 0) {
        *used = 1;
        snprintf(out, 16, "\\x%02x", p[0]);
    } else if (cp < 0x20 || cp == 0x7f || cp == '\\') {
        *used = 1;
        if (cp == '\n' || cp == '\t' || cp == '\r' || cp == '\\')
            snprintf(out, 16, "\\%c",
                     cp == '\n'   ? 'n'
                     : cp == '\t' ? 't'
                     : cp == '\r' ? 'r'
                                  : '\\');
        else
            snprintf(out, 16, "\\x%02x", cp);
    } else if (cp_dangerous(cp)) {
        *used = len;
        snprintf(out, 16, "\\u%04x", cp);
    } else {
        *used = len;
        memcpy(out, p, len);
        out[len] = '\0';
        return 1;
    }
    return strlen(out);
}

static size_t text_cols(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t cols = 0, used;
    char tmp[16];

    for (size_t i = 0; i < len; i += used)
        cols += piece(p + i, len - i, tmp, &used);
    return cols;
}

static size_t escape_to(sink *k, const char *s, size_t len, size_t max_cols)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t cols = 0, c, used, limit = (size_t)-1;
    char tmp[16];
    bool cut = false;

    if (max_cols > 0 && text_cols(s, len) > max_cols) {
        cut = true;
        limit = max_cols > MARK_COLS ? max_cols - MARK_COLS : 0;
    }
    for (size_t i = 0; i < len; i += used) {
        c = piece(p + i, len - i, tmp, &used);
        if (cols + c > limit) {
            cut = true;
            break;
        }
        if (!sink_put(k, tmp, strlen(tmp))) {
            cut = true;
            break;
        }
        cols += c;
    }
    k->reserve = 0;
    if (cut && sink_put(k, MARK, strlen(MARK)))
        cols += MARK_COLS;
    return cols;
}

size_t out_escape(char *buf, size_t size, const char *s, size_t len, size_t max_cols)
{
    sink k = {.buf = buf, .size = size, .reserve = MARK_COLS};

    if (size <= MARK_COLS) {
        if (size > 0)
            buf[0] = '\0';
        return 0;
    }
    buf[0] = '\0';
    return escape_to(&k, s, len, max_cols);
}

void out_cell(FILE *f, const char *s, size_t width)
{
    char buf[CELL_MAX * 6 + 8];
    size_t cols;

    if (s == NULL)
        s = "-";
    if (width == 0) {
        out_text(f, s, strlen(s), 0);
        return;
    }
    if (width > CELL_MAX)
        width = CELL_MAX;
    cols = out_escape(buf, sizeof(buf), s, strlen(s), width);
    fputs(buf, f);
    for (; cols < width; cols++)
        fputc(' ', f);
}

void out_text(FILE *f, const char *s, size_t len, size_t max_cols)
{
    sink k = {.f = f};

    escape_to(&k, s, len, max_cols);
}

int out_json(FILE *f, const cJSON *json, bool pretty)
{
    char *text = pretty ? cJSON_Print(json) : cJSON_PrintUnformatted(json);
    const unsigned char *p;
    size_t len, used;
    unsigned cp = 0;

    if (text == NULL)
        return -ENOMEM;
    p = (const unsigned char *)text;
    len = strlen(text);
    /* outside strings cJSON prints ASCII only, so whatever is escaped here
     * sits inside a string, where \uXXXX is valid JSON */
    for (size_t i = 0; i < len; i += used) {
        used = utf8_decode(p + i, len - i, &cp);
        if (used == 0) {
            fputs("\\ufffd", f);
            used = 1;
        } else if (cp == 0x7f || cp_dangerous(cp)) {
            fprintf(f, "\\u%04x", cp);
        } else {
            fwrite(p + i, 1, used, f);
        }
    }
    fputc('\n', f);
    cJSON_free(text);
    return 0;
}

void out_age(int64_t ms, char *buf, size_t size)
{
    long long s;

    if (ms < 0)
        ms = 0;
    s = (long long)(ms / 1000);
    if (ms < 10000)
        snprintf(buf, size, "%lld.%llds", s, (long long)(ms % 1000) / 100);
    else if (s < 60)
        snprintf(buf, size, "%llds", s);
    else if (s < 3600)
        snprintf(buf, size, "%lldm%02llds", s / 60, s % 60);
    else if (s < 86400)
        snprintf(buf, size, "%lldh%02lldm", s / 3600, s % 3600 / 60);
    else
        snprintf(buf, size, "%lldd%02lldh", s / 86400, s % 86400 / 3600);
}

void ctl_hash_hex(const char *s, size_t len, char out[17])
{
    if (cq_sha256_hex(s, len, out, 16) != 0)
        snprintf(out, 17, "%s", "????????????????");
}
