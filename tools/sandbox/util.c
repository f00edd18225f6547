/*
 * util.c - see util.h.
 */
#include "util.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

/* 19 digits always fit in int64 arithmetic when checked digit by digit. */
#define SB_INT_DIGITS_MAX 19

int sb_why_set(sb_why *w, const char *fmt, ...)
{
    va_list ap;

    if (w != NULL) {
        va_start(ap, fmt);
        vsnprintf(w->msg, sizeof(w->msg), fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

int sb_parse_int(const char *s, size_t len, int64_t min, int64_t max, int64_t *out)
{
    bool neg = false;
    uint64_t v = 0;
    size_t i = 0;

    if (len > 0 && s[0] == '-' && min < 0) {
        neg = true;
        i = 1;
    }
    if (len == i || len - i > SB_INT_DIGITS_MAX)
        return -EINVAL;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (neg) {
        /* -(min) may not be representable; compare in unsigned space */
        if (v > (uint64_t)(-(min + 1)) + 1)
            return -EINVAL;
        *out = v == 0 ? 0 : -(int64_t)(v - 1) - 1;
        return *out <= max ? 0 : -EINVAL;
    }
    if (v > (uint64_t)max)
        return -EINVAL;
    if ((int64_t)v < min)
        return -EINVAL;
    *out = (int64_t)v;
    return 0;
}

bool sb_json_int(const cJSON *item, int64_t min, int64_t max, int64_t *out)
{
    double d;

    if (!cJSON_IsNumber(item))
        return false;
    d = item->valuedouble;
    if (!isfinite(d) || d != floor(d) || d < (double)min || d > (double)max)
        return false;
    *out = (int64_t)d;
    return true;
}

static const char *skip_blanks(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

bool sb_media_type_is(const char *value, const char *type, bool allow_params)
{
    size_t n = strlen(type);
    const char *p;

    if (value == NULL)
        return false;
    value = skip_blanks(value);
    if (strncasecmp(value, type, n) != 0)
        return false;
    p = skip_blanks(value + n);
    if (*p == '\0')
        return true;
    return allow_params && *p == ';';
}

bool sb_is_token(const char *s, size_t max)
{
    size_t i;

    for (i = 0; s[i] != '\0'; i++) {
        if (i >= max || s[i] < 0x21 || s[i] > 0x7e)
            return false;
    }
    return i > 0;
}

bool sb_prefix_ci(const char *s, const char *prefix, const char **rest)
{
    size_t n = strlen(prefix);

    if (strncasecmp(s, prefix, n) != 0)
        return false;
    if (rest != NULL)
        *rest = s + n;
    return true;
}

int64_t sb_unix_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int sb_random_hex(char *out, size_t nbytes)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[64];
    size_t i;
    ssize_t got;

    if (nbytes > sizeof(raw))
        return -EINVAL;
    got = getrandom(raw, nbytes, 0);
    if (got < 0)
        return -errno;
    if ((size_t)got != nbytes)
        return -EIO;
    for (i = 0; i < nbytes; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 0x0f];
    }
    out[2 * nbytes] = '\0';
    return 0;
}

char *sb_strndup(const char *s, size_t len)
{
    char *p = malloc(len + 1);

    if (p == NULL)
        return NULL;
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}
