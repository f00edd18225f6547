/*
 * multipart.c - see multipart.h.
 *
 * Body shape (RFC 2046 5.1.1, RFC 7578):
 *   [preamble CRLF] "--" boundary [blanks] CRLF
 *   headers CRLF CRLF value CRLF "--" boundary ( [blanks] CRLF next part | "--" epilogue )
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include "multipart.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

/* Longest parameter name/value we look at in part headers. */
#define SB_PARAM_NAME_MAX 32
#define SB_PARAM_VALUE_MAX 256

typedef struct span {
    const char *p;
    size_t len;
} span;

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static void trim(span *s)
{
    while (s->len > 0 && is_blank(s->p[0])) {
        s->p++;
        s->len--;
    }
    while (s->len > 0 && is_blank(s->p[s->len - 1]))
        s->len--;
}

static bool span_eq_ci(span s, const char *lit)
{
    return strlen(lit) == s.len && strncasecmp(s.p, lit, s.len) == 0;
}

/*
 * Read the next ";name=value" parameter from *cur (up to end) into name and
 * value (NUL-terminated, quoted-string unescaped).  Returns 1 when one was
 * read, 0 at the end, -EINVAL when malformed or too long.
 */
static int next_param(const char **cur, const char *end, char name[SB_PARAM_NAME_MAX + 1],
                      char value[SB_PARAM_VALUE_MAX + 1])
{
    const char *p = *cur;
    size_t n = 0;

    while (p < end && is_blank(*p))
        p++;
    if (p == end)
        return 0;
    if (*p++ != ';')
        return -EINVAL;
    while (p < end && is_blank(*p))
        p++;
    while (p < end && *p != '=' && !is_blank(*p) && *p != ';') {
        if (n >= SB_PARAM_NAME_MAX)
            return -EINVAL;
        name[n++] = *p++;
    }
    name[n] = '\0';
    while (p < end && is_blank(*p))
        p++;
    if (n == 0 || p == end || *p++ != '=')
        return -EINVAL;
    while (p < end && is_blank(*p))
        p++;
    n = 0;
    if (p < end && *p == '"') {
        for (p++; p < end && *p != '"'; p++) {
            if (*p == '\\' && p + 1 < end)
                p++;
            if (n >= SB_PARAM_VALUE_MAX)
                return -EINVAL;
            value[n++] = *p;
        }
        if (p == end)
            return -EINVAL;
        p++; /* closing quote */
    } else {
        while (p < end && *p != ';' && !is_blank(*p)) {
            if (n >= SB_PARAM_VALUE_MAX)
                return -EINVAL;
            value[n++] = *p++;
        }
    }
    value[n] = '\0';
    *cur = p;
    return 1;
}

/* RFC 2046 bchars: DIGIT / ALPHA / "'()+_,-./:=?" and space, not last. */
static bool boundary_ok(const char *b)
{
    size_t i, n = strlen(b);

    if (n == 0 || n > SB_BOUNDARY_MAX || b[n - 1] == ' ')
        return false;
    for (i = 0; i < n; i++) {
        char c = b[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              strchr("'()+_,-./:=? ", c) != NULL))
            return false;
    }
    return true;
}

int sb_multipart_boundary(const char *content_type, char out[SB_BOUNDARY_MAX + 1], sb_why *why)
{
    static const char type[] = "multipart/form-data";
    char name[SB_PARAM_NAME_MAX + 1], value[SB_PARAM_VALUE_MAX + 1];
    const char *p, *end;
    int rc;

    out[0] = '\0';
    if (content_type == NULL)
        return sb_why_set(why, "missing header Content-Type (want multipart/form-data)");
    p = content_type;
    while (is_blank(*p))
        p++;
    if (strncasecmp(p, type, sizeof(type) - 1) != 0)
        return sb_why_set(why, "Content-Type must be multipart/form-data");
    p += sizeof(type) - 1;
    end = p + strlen(p);
    while ((rc = next_param(&p, end, name, value)) == 1) {
        if (strcasecmp(name, "boundary") != 0)
            continue;
        if (!boundary_ok(value))
            return sb_why_set(why, "multipart boundary must be 1..%d RFC 2046 characters",
                              SB_BOUNDARY_MAX);
        memcpy(out, value, strlen(value) + 1);
        return 0;
    }
    if (rc < 0)
        return sb_why_set(why, "malformed Content-Type parameters");
    return sb_why_set(why, "multipart/form-data without a boundary parameter");
}

/* Check one part's headers; on success *name holds the field name. */
static int part_headers(span hdrs, char name[SB_PARAM_VALUE_MAX + 1], sb_why *why)
{
    char pname[SB_PARAM_NAME_MAX + 1], pvalue[SB_PARAM_VALUE_MAX + 1];
    const char *p = hdrs.p, *end = hdrs.p + hdrs.len, *eol, *colon, *cur;
    span hname, hvalue;
    int rc;

    name[0] = '\0';
    while (p < end) {
        eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (eol == NULL)
            eol = end;
        colon = memchr(p, ':', (size_t)(eol - p));
        if (colon == NULL)
            return sb_why_set(why, "multipart part header without ':'");
        hname = (span){p, (size_t)(colon - p)};
        hvalue = (span){colon + 1, (size_t)(eol - colon - 1)};
        trim(&hvalue);
        if (span_eq_ci(hname, "Content-Disposition")) {
            if (hvalue.len < 9 || strncasecmp(hvalue.p, "form-data", 9) != 0)
                return sb_why_set(why, "multipart part is not Content-Disposition: form-data");
            cur = hvalue.p + 9;
            while ((rc = next_param(&cur, hvalue.p + hvalue.len, pname, pvalue)) == 1) {
                if (strcasecmp(pname, "filename") == 0 || strcasecmp(pname, "filename*") == 0)
                    return sb_why_set(why, "file uploads are not accepted (field \"%s\")",
                                      name[0] != '\0' ? name : "?");
                if (strcasecmp(pname, "name") == 0)
                    memcpy(name, pvalue, strlen(pvalue) + 1);
            }
            if (rc < 0)
                return sb_why_set(why, "malformed Content-Disposition parameters");
        } else if (span_eq_ci(hname, "Content-Type")) {
            if (hvalue.len < 10 || strncasecmp(hvalue.p, "text/plain", 10) != 0 ||
                (hvalue.len > 10 && hvalue.p[10] != ';'))
                return sb_why_set(why, "multipart field with Content-Type other than text/plain");
        }
        p = eol + 2;
    }
    if (name[0] == '\0')
        return sb_why_set(why, "multipart part without Content-Disposition: form-data; name=");
    return 0;
}

/* Parse one part starting at body+pos (just after the delimiter line).
 * On success *next is the offset of the next "--boundary". */
static int one_part(const char *body, size_t len, size_t pos, const char *delim, size_t dlen,
                    sb_fields *out, size_t *next, sb_why *why)
{
    char name[SB_PARAM_VALUE_MAX + 1];
    size_t window = len - pos;
    const char *hend, *vend;
    int rc;

    if (window > SB_PART_HEADERS_MAX + 4)
        window = SB_PART_HEADERS_MAX + 4;
    if (window >= 2 && memcmp(body + pos, "\r\n", 2) == 0)
        return sb_why_set(why, "multipart part without headers");
    hend = memmem(body + pos, window, "\r\n\r\n", 4);
    if (hend == NULL)
        return sb_why_set(why, "multipart part headers missing or longer than %d bytes",
                          SB_PART_HEADERS_MAX);
    rc = part_headers((span){body + pos, (size_t)(hend - (body + pos))}, name, why);
    if (rc != 0)
        return rc;
    /* the value ends at CRLF "--" boundary */
    vend = memmem(hend + 4, len - (size_t)(hend + 4 - body), delim, dlen);
    if (vend == NULL)
        return sb_why_set(why, "multipart part \"%s\" is not terminated by the boundary", name);
    rc = sb_fields_add(out, name, strlen(name), hend + 4, (size_t)(vend - (hend + 4)), why);
    if (rc != 0)
        return rc;
    *next = (size_t)(vend - body) + 2; /* skip the CRLF that belongs to the delimiter */
    return 0;
}

int sb_multipart_parse(const char *body, size_t len, const char *boundary, sb_fields *out,
                       sb_why *why)
{
    char delim[SB_BOUNDARY_MAX + 5]; /* CRLF "--" boundary */
    size_t blen = strlen(boundary), dlen = blen + 4, pos;
    const char *first;
    int rc;

    memset(out, 0, sizeof(*out));
    if (blen == 0 || blen > SB_BOUNDARY_MAX)
        return sb_why_set(why, "bad multipart boundary");
    memcpy(delim, "\r\n--", 4);
    memcpy(delim + 4, boundary, blen);
    /* the first delimiter may open the body (no leading CRLF) */
    if (len >= dlen - 2 && memcmp(body, delim + 2, dlen - 2) == 0) {
        pos = 0;
    } else {
        first = memmem(body, len, delim, dlen);
        if (first == NULL)
            return sb_why_set(why, "multipart body does not contain its boundary");
        pos = (size_t)(first - body) + 2;
    }
    for (;;) {
        pos += dlen - 2; /* now just after "--" boundary */
        if (len - pos >= 2 && memcmp(body + pos, "--", 2) == 0)
            break; /* closing delimiter; the epilogue is ignored */
        while (pos < len && is_blank(body[pos]))
            pos++;
        if (len - pos < 2 || memcmp(body + pos, "\r\n", 2) != 0) {
            rc = sb_why_set(why, "multipart delimiter line not followed by CRLF");
            goto fail;
        }
        rc = one_part(body, len, pos + 2, delim, dlen, out, &pos, why);
        if (rc != 0)
            goto fail;
    }
    if (out->n == 0)
        return sb_why_set(why, "multipart body has no fields");
    return 0;
fail:
    sb_fields_free(out);
    return rc;
}
