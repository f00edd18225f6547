/*
 * json_util.c - the small text helpers the pure modules share (json_util.h):
 * JSON type names, number and integer text, bounded copies and UTF-8
 * checks.
 *
 * Pure: no I/O, no globals.
 */
#include "json_util.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
