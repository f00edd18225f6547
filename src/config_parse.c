/*
 * config_parse.c - the public value parsers (config.h): durations, rates,
 * booleans and host:port, shared by the config file (config_value.c),
 * cancelqctl flags, the Redis connection (Sentinel and Cluster addresses)
 * and the metrics listener.
 *
 * The parsers are strict: the whole string must match, no sign, no
 * leading blanks, no hex, and overflow is an error rather than a clamp,
 * because a silently misread timeout or rate is worse than a refusal.
 */
#include "cancelq/config.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_value.h"

/* Parse the leading decimal digits of s into *out; *end is set after them.
 * Requires at least one digit; refuses overflow. */
static int parse_u64_prefix(const char *s, const char **end, uint64_t *out)
{
    char *e = NULL;
    unsigned long long v;

    if (s == NULL || *s < '0' || *s > '9')
        return -EINVAL;
    errno = 0;
    v = strtoull(s, &e, 10);
    if (errno != 0 || e == s)
        return -EINVAL;
    *end = e;
    *out = v;
    return 0;
}

/* Milliseconds per duration unit; 0 when unit is not one. */
static uint64_t duration_unit_ms(const char *unit)
{
    static const struct {
        const char *name;
        uint64_t ms;
    } units[] = {
        {"", 1000}, /* a bare number is seconds */
        {"ms", 1},  {"s", 1000}, {"m", CQ_MS_MIN}, {"h", CQ_MS_HOUR}, {"d", CQ_MS_DAY},
    };

    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (strcmp(unit, units[i].name) == 0)
            return units[i].ms;
    return 0;
}

int cq_parse_duration_ms(const char *s, uint64_t *out)
{
    const char *unit = NULL;
    uint64_t v, mult;

    if (parse_u64_prefix(s, &unit, &v) != 0)
        return -EINVAL;
    mult = duration_unit_ms(unit);
    if (mult == 0 || v > UINT64_MAX / mult)
        return -EINVAL;
    *out = v * mult;
    return 0;
}

/* Check that s is digits with at most one '.' followed by digits, and
 * return where that number ends.  Keeps strtod() away from "inf", "nan",
 * hex floats, signs and exponents. */
static const char *decimal_end(const char *s)
{
    const char *p = s;

    if (*p < '0' || *p > '9')
        return NULL;
    while (*p >= '0' && *p <= '9')
        p++;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return NULL;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    return p;
}

int cq_parse_rate(const char *s, double *per_sec)
{
    const char *end;
    char *e = NULL;
    double v, div;

    if (s == NULL || (end = decimal_end(s)) == NULL)
        return -EINVAL;
    if (*end == '\0' || strcmp(end, "/s") == 0)
        div = 1;
    else if (strcmp(end, "/m") == 0)
        div = 60;
    else if (strcmp(end, "/h") == 0)
        div = 3600;
    else
        return -EINVAL;
    errno = 0;
    v = strtod(s, &e);
    if (errno != 0 || e != end || !isfinite(v) || v <= 0)
        return -EINVAL;
    *per_sec = v / div;
    return 0;
}

int cq_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"yes", "true", "on", "1"};
    static const char *const no[] = {"no", "false", "off", "0"};

    if (s == NULL)
        return -EINVAL;
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -EINVAL;
}

int cq_parse_hostport(const char *s, char *host, size_t host_size, int *port)
{
    const char *h = s, *colon;
    size_t hlen;
    char *end;
    long p;

    if (s == NULL)
        return -EINVAL;
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');

        if (rb == NULL || rb[1] != ':')
            return -EINVAL;
        h = s + 1;
        hlen = (size_t)(rb - h);
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL || memchr(s, ':', (size_t)(colon - s)) != NULL)
            return -EINVAL; /* none, or an IPv6 address without brackets */
        hlen = (size_t)(colon - s);
    }
    if (hlen == 0 || hlen >= host_size || colon[1] < '0' || colon[1] > '9')
        return -EINVAL;
    errno = 0;
    p = strtol(colon + 1, &end, 10);
    if (errno != 0 || *end != '\0' || p < 0 || p > 65535)
        return -EINVAL;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (int)p;
    return 0;
}
