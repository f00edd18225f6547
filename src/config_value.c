/*
 * config_value.c - one config value (config_value.h): checking and parsing
 * it into the field an option table row describes, and printing it back.
 *
 * Strict like the public parsers it uses (config_parse.c): the whole
 * string must match, and overflow is an error rather than a clamp, because
 * a silently misread timeout or size is worse than a refusal.
 */
#include "cancelq/config.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "config_value.h"

/* Write a value's problem into why (n bytes); returns -EINVAL. */
static int why_fail(char *why, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int why_fail(char *why, size_t n, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, n, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

/* Checks ------------------------------------------------------------------ */

/* Whole-string signed decimal integer. */
static int parse_ll(const char *s, long long *out)
{
    char *end = NULL;
    long long v;

    if (!((s[0] >= '0' && s[0] <= '9') || (s[0] == '-' && s[1] >= '0' && s[1] <= '9')))
        return -EINVAL;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -EINVAL;
    *out = v;
    return 0;
}

/* "1048576", "512KiB", "1MiB", "1GiB" (also with a B suffix for bytes). */
static int parse_size(const char *s, unsigned long long *out)
{
    static const struct {
        const char *unit;
        unsigned long long mult;
    } units[] = {{"", 1}, {"B", 1}, {"KiB", CQ_KIB}, {"MiB", CQ_MIB}, {"GiB", CQ_GIB}};
    char *end = NULL;
    unsigned long long v;

    if (s[0] < '0' || s[0] > '9')
        return -EINVAL;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0)
        return -EINVAL;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(end, units[i].unit) == 0) {
            if (v > ULLONG_MAX / units[i].mult)
                return -EINVAL;
            *out = v * units[i].mult;
            return 0;
        }
    }
    return -EINVAL;
}

static bool has_control(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

/* Printable ASCII without blanks, and none of the characters in `deny`. */
bool cq_conf_is_token(const char *s, const char *deny)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f || strchr(deny, *s) != NULL)
            return false;
    return true;
}

/* "host:port", "[v6]:port".  Returns a reason or NULL when fine. */
static const char *check_hostport(const char *s)
{
    const char *colon = strrchr(s, ':');
    long long port;

    if (!cq_conf_is_token(s, ""))
        return "must be host:port without blanks";
    if (colon == NULL || colon == s)
        return "must be host:port";
    if (parse_ll(colon + 1, &port) != 0 || port < 1 || port > 65535)
        return "port must be 1..65535";
    if (s[0] == '[' ? colon[-1] != ']' : memchr(s, ':', (size_t)(colon - s)) != NULL)
        return "write an IPv6 address in brackets: [::1]:9100";
    return NULL;
}

/* Validate a URL: it must start with http:// or https:// (case aside),
 * have no blanks, query or fragment (the adapters append paths to it) and
 * no user:password, and libcurl's parser must accept it and find a host.
 * Returns 0 or -EINVAL with why filled. */
static int check_url(const char *s, char *why, size_t n)
{
    CURLU *u;
    char *part = NULL;
    CURLUcode uc;
    int rc = -EINVAL;

    if (strncasecmp(s, "https://", 8) != 0 && strncasecmp(s, "http://", 7) != 0)
        return why_fail(why, n, "'%s' is not https", s);
    if (!cq_conf_is_token(s, "?#"))
        return why_fail(why, n, "bad URL '%s' (no blanks, query or fragment)", s);
    u = curl_url();
    if (u == NULL)
        return why_fail(why, n, "out of memory");
    uc = curl_url_set(u, CURLUPART_URL, s, 0);
    if (uc != CURLUE_OK) {
        why_fail(why, n, "bad URL '%s': %s", s, curl_url_strerror(uc));
        goto out;
    }
    if (curl_url_get(u, CURLUPART_USER, &part, 0) == CURLUE_OK) {
        why_fail(why, n, "must not contain a user name or password (use the credential keys)");
        goto out;
    }
    rc = 0;
out:
    curl_free(part);
    curl_url_cleanup(u);
    return rc;
}

/* The proxy schemes libcurl knows (CURLOPT_PROXY). */
static const char *const proxy_schemes[] = {"http",    "https",  "socks4",
                                            "socks4a", "socks5", "socks5h"};

/* Validate a proxy URL: scheme://host[:port][/], one of proxy_schemes, no
 * user:password (it would be a secret in the config).  0 or -EINVAL. */
static int check_proxy(const char *s, char *why, size_t n)
{
    CURLU *u;
    char *scheme = NULL, *part = NULL;
    CURLUcode uc;
    bool known = false;
    int rc = -EINVAL;

    if (strstr(s, "://") == NULL || !cq_conf_is_token(s, "?#"))
        return why_fail(why, n, "bad proxy '%s' (use scheme://host:port, e.g. http://proxy:3128)",
                        s);
    u = curl_url();
    if (u == NULL)
        return why_fail(why, n, "out of memory");
    uc = curl_url_set(u, CURLUPART_URL, s, CURLU_NON_SUPPORT_SCHEME);
    if (uc != CURLUE_OK) {
        why_fail(why, n, "bad proxy '%s': %s", s, curl_url_strerror(uc));
        goto out;
    }
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK)
        for (size_t i = 0; i < sizeof(proxy_schemes) / sizeof(proxy_schemes[0]); i++)
            known = known || strcasecmp(scheme, proxy_schemes[i]) == 0;
    if (!known) {
        why_fail(why, n,
                 "proxy '%s': scheme must be http, https, socks4, socks4a, socks5 or "
                 "socks5h",
                 s);
        goto out;
    }
    if (curl_url_get(u, CURLUPART_USER, &part, 0) == CURLUE_OK) {
        why_fail(why, n, "proxy must not contain a user name or password");
        goto out;
    }
    curl_free(part);
    part = NULL;
    if (curl_url_get(u, CURLUPART_PATH, &part, 0) == CURLUE_OK && strcmp(part, "/") != 0) {
        why_fail(why, n, "proxy '%s' must not have a path", s);
        goto out;
    }
    rc = 0;
out:
    curl_free(part);
    curl_free(scheme);
    curl_url_cleanup(u);
    return rc;
}

/* Resolve a secret file name: absolute as is; a bare name in
 * $CREDENTIALS_DIRECTORY when set; else relative to the config's directory
 * (or as given when there is none).  *out is heap. */
static int resolve_secret(const char *dir, const char *val, char **out)
{
    const char *base = dir, *cd = getenv("CREDENTIALS_DIRECTORY");
    size_t n;

    if (val[0] != '/' && strchr(val, '/') == NULL && cd != NULL && cd[0] != '\0')
        base = cd;
    if (val[0] == '/' || base == NULL) {
        *out = strdup(val);
        return *out == NULL ? -ENOMEM : 0;
    }
    n = strlen(base) + 1 + strlen(val) + 1;
    *out = malloc(n);
    if (*out == NULL)
        return -ENOMEM;
    snprintf(*out, n, "%s%s%s", base, base[strlen(base) - 1] == '/' ? "" : "/", val);
    return 0;
}

/* Formatting --------------------------------------------------------------- */

/* Largest unit that divides ms exactly: 90000 -> "90s", 300000 -> "5m". */
void cq_conf_fmt_duration(char *buf, size_t n, uint64_t ms)
{
    static const struct {
        const char *unit;
        uint64_t ms;
    } units[] = {{"d", CQ_MS_DAY}, {"h", CQ_MS_HOUR}, {"m", CQ_MS_MIN}, {"s", CQ_MS_SEC}};

    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (ms != 0 && ms % units[i].ms == 0) {
            snprintf(buf, n, "%llu%s", (unsigned long long)(ms / units[i].ms), units[i].unit);
            return;
        }
    }
    snprintf(buf, n, "%llums", (unsigned long long)ms);
}

static void fmt_size(char *buf, size_t n, unsigned long long v)
{
    if (v != 0 && v % CQ_GIB == 0)
        snprintf(buf, n, "%lluGiB", v / CQ_GIB);
    else if (v != 0 && v % CQ_MIB == 0)
        snprintf(buf, n, "%lluMiB", v / CQ_MIB);
    else if (v != 0 && v % CQ_KIB == 0)
        snprintf(buf, n, "%lluKiB", v / CQ_KIB);
    else
        snprintf(buf, n, "%llu", v);
}

/* Rates print per second, or per minute/hour when that is a whole number
 * and per second is not (600/h reads better than 0.166667/s). */
static bool is_whole(double v)
{
    return fabs(v - round(v)) < 1e-9;
}

static void fmt_rate(char *buf, size_t n, double per_sec)
{
    if (!is_whole(per_sec) && is_whole(per_sec * 60))
        snprintf(buf, n, "%.0f/m", round(per_sec * 60));
    else if (!is_whole(per_sec) && is_whole(per_sec * 3600))
        snprintf(buf, n, "%.0f/h", round(per_sec * 3600));
    else
        snprintf(buf, n, "%g/s", per_sec);
}

/* Setting values ----------------------------------------------------------- */

static int set_string(void *field, const char *val, size_t len)
{
    char **dst = field;
    char *s = strndup(val, len);

    if (s == NULL)
        return -ENOMEM;
    free(*dst);
    *dst = s;
    return 0;
}

/* Check a string-typed value; *len gets how much of it to keep. */
static int check_text(const cq_conf_opt *o, const char *val, size_t *len, char *why, size_t n)
{
    *len = strlen(val);
    if (has_control(val))
        return why_fail(why, n, "contains control characters");
    if (o->max > 0 && (long long)*len > o->max)
        return why_fail(why, n, "longer than %lld characters", o->max);
    switch (o->type) {
    case CQ_OT_PREFIX:
        if (!cq_conf_is_token(val, "{}:"))
            return why_fail(why, n, "bad prefix '%s' (no '{', '}', ':' or blanks)", val);
        break;
    case CQ_OT_ID:
        if (!cq_conf_is_token(val, ""))
            return why_fail(why, n, "bad id '%s' (printable characters, no blanks)", val);
        break;
    case CQ_OT_SOCKET:
        if (val[0] != '/')
            return why_fail(why, n, "'%s' is not an absolute path", val);
        break;
    case CQ_OT_HOSTPORT: {
        const char *r = check_hostport(val);

        if (r != NULL)
            return why_fail(why, n, "bad address '%s': %s", val, r);
        break;
    }
    case CQ_OT_URL:
        if (check_url(val, why, n) != 0)
            return -EINVAL;
        while (*len > 0 && val[*len - 1] == '/')
            (*len)--;
        break;
    case CQ_OT_PROXY:
        if (check_proxy(val, why, n) != 0)
            return -EINVAL;
        break;
    default:
        break;
    }
    return 0;
}

static int set_secret(const char *dir, bool skip, void *field, const char *val, char *why, size_t n)
{
    char *path = NULL, *secret = NULL;
    cq_err e = {{0}, {0}};
    int rc = 0;

    if (resolve_secret(dir, val, &path) != 0) {
        snprintf(why, n, "out of memory");
        return -ENOMEM;
    }
    /* Read it now so that --check-config catches a missing, empty or
     * oversized file; the content is wiped at once. */
    if (!skip)
        rc = cq_secret_read(path, &secret, &e);
    cq_secret_free(secret);
    if (rc != 0) {
        snprintf(why, n, "%s", e.msg);
        free(path);
        return rc == -ENOMEM ? rc : -EINVAL;
    }
    free(*(char **)field);
    *(char **)field = path;
    return 0;
}

static int out_of_range(const cq_conf_opt *o, const char *val, char *why, size_t n)
{
    char lo[32], hi[32];

    if (o->type == CQ_OT_DURATION) {
        cq_conf_fmt_duration(lo, sizeof(lo), (uint64_t)o->min);
        cq_conf_fmt_duration(hi, sizeof(hi), (uint64_t)o->max);
    } else if (o->type == CQ_OT_SIZE) {
        fmt_size(lo, sizeof(lo), (unsigned long long)o->min);
        fmt_size(hi, sizeof(hi), (unsigned long long)o->max);
    } else {
        snprintf(lo, sizeof(lo), "%lld", o->min);
        snprintf(hi, sizeof(hi), "%lld", o->max);
    }
    snprintf(why, n, "%s is out of range (%s..%s)", val, lo, hi);
    return -EINVAL;
}

/* Parse a number-like value into its field.  0 or -EINVAL with why. */
static int set_number(const cq_conf_opt *o, void *field, const char *val, char *why, size_t n)
{
    long long v = 0;
    uint64_t ms = 0;
    unsigned long long bytes = 0;

    switch (o->type) {
    case CQ_OT_INT:
    case CQ_OT_LLONG:
        if (parse_ll(val, &v) != 0)
            return why_fail(why, n, "bad integer '%s'", val);
        if (v < o->min || v > o->max)
            return out_of_range(o, val, why, n);
        if (o->type == CQ_OT_INT)
            *(int *)field = (int)v;
        else
            *(long long *)field = v;
        return 0;
    case CQ_OT_DURATION:
        if (cq_parse_duration_ms(val, &ms) != 0)
            return why_fail(why, n, "bad duration '%s' (use a number with ms, s, m, h or d)", val);
        if (ms < (uint64_t)o->min || ms > (uint64_t)o->max)
            return out_of_range(o, val, why, n);
        *(uint64_t *)field = ms;
        return 0;
    case CQ_OT_SIZE:
        if (parse_size(val, &bytes) != 0)
            return why_fail(why, n, "bad size '%s' (use bytes, or a number with KiB, MiB or GiB)",
                            val);
        if (bytes < (unsigned long long)o->min || bytes > (unsigned long long)o->max)
            return out_of_range(o, val, why, n);
        *(size_t *)field = (size_t)bytes;
        return 0;
    default:
        return why_fail(why, n, "internal: not a number type");
    }
}

int cq_conf_set_value(const cq_conf_opt *o, void *base, const char *val, const char *dir,
                      bool skip_secrets, char *why, size_t n)
{
    void *field = (char *)base + o->off;
    size_t len = 0;
    double rate = 0;

    if (val[0] == '\0')
        return why_fail(why, n, "empty value (comment the line out to get the default)");
    switch (o->type) {
    case CQ_OT_SECRET:
        return set_secret(dir, skip_secrets, field, val, why, n);
    case CQ_OT_FILE:
        /* read by the section's rules (config_check.c): a PEM file is
         * checked as a whole, and a key together with its certificate */
        return set_secret(dir, true, field, val, why, n);
    case CQ_OT_RATE:
        if (cq_parse_rate(val, &rate) != 0)
            return why_fail(why, n, "bad rate '%s' (use N/s, N/m or N/h)", val);
        if (rate > (double)o->max)
            return why_fail(why, n, "%s is above %lld/s", val, o->max);
        *(double *)field = rate;
        return 0;
    case CQ_OT_BOOL:
        if (cq_parse_bool(val, field) != 0)
            return why_fail(why, n, "bad boolean '%s' (use yes or no)", val);
        return 0;
    case CQ_OT_FORMAT:
        if (strcmp(val, "json") != 0 && strcmp(val, "xml") != 0)
            return why_fail(why, n, "bad format '%s' (use json or xml)", val);
        *(cq_format *)field = strcmp(val, "xml") == 0 ? CQ_FORMAT_XML : CQ_FORMAT_JSON;
        return 0;
    case CQ_OT_TRIM:
        if (strcmp(val, "maxlen") != 0 && strcmp(val, "acked") != 0)
            return why_fail(why, n, "bad value '%s' (use maxlen or acked)", val);
        *(cq_trim *)field = strcmp(val, "acked") == 0 ? CQ_TRIM_ACKED : CQ_TRIM_MAXLEN;
        return 0;
    case CQ_OT_INT:
    case CQ_OT_LLONG:
    case CQ_OT_DURATION:
    case CQ_OT_SIZE:
        return set_number(o, field, val, why, n);
    default:
        if (check_text(o, val, &len, why, n) != 0)
            return -EINVAL;
        if (set_string(field, val, len) != 0) {
            snprintf(why, n, "out of memory");
            return -ENOMEM;
        }
        return 0;
    }
}

bool cq_conf_is_string(cq_conf_type t)
{
    return t <= CQ_OT_HOSTPORT;
}

bool cq_conf_format_value(const cq_conf_opt *o, const void *base, char *buf, size_t n)
{
    const void *field = (const char *)base + o->off;

    switch (o->type) {
    case CQ_OT_INT:
        snprintf(buf, n, "%d", *(const int *)field);
        return *(const int *)field >= o->min;
    case CQ_OT_LLONG:
        snprintf(buf, n, "%lld", *(const long long *)field);
        return true;
    case CQ_OT_DURATION:
        cq_conf_fmt_duration(buf, n, *(const uint64_t *)field);
        return true;
    case CQ_OT_RATE:
        fmt_rate(buf, n, *(const double *)field);
        return *(const double *)field > 0;
    case CQ_OT_BOOL:
        snprintf(buf, n, "%s", *(const bool *)field ? "yes" : "no");
        return true;
    case CQ_OT_SIZE:
        fmt_size(buf, n, *(const size_t *)field);
        return true;
    case CQ_OT_FORMAT:
        snprintf(buf, n, "%s", *(const cq_format *)field == CQ_FORMAT_XML ? "xml" : "json");
        return true;
    case CQ_OT_TRIM:
        snprintf(buf, n, "%s", *(const cq_trim *)field == CQ_TRIM_ACKED ? "acked" : "maxlen");
        return true;
    default:
        /* Strings; for secrets this is the file's path, never its content. */
        if (*(char *const *)field == NULL)
            return false;
        snprintf(buf, n, "%s", *(char *const *)field);
        return true;
    }
}
