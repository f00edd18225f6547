/*
 * rfc3339.c - RFC 3339 UTC timestamps (rfc3339.h).
 *
 * Pure: no I/O, no globals.
 */
#include "cancelq/rfc3339.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* RFC 3339 fractions longer than nanoseconds are refused. */
#define CQ_RFC3339_FRAC_MAX 9

/* 9999-12-31T23:59:59.999Z: the last instant with a four-digit year. */
#define CQ_RFC3339_MAX_MS INT64_C(253402300799999)

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
