/*
 * conn.c - http_parser callbacks collecting one request; see conn.h.
 *
 * Strings go into the fixed head[] arena one after another; a "region" is
 * the string being appended to (URL, a header name, a header value: the
 * parser may deliver each in several pieces).  Opening the next region
 * NUL-terminates the previous one; every append keeps one byte free for
 * that NUL.
 */
#include "conn.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int refuse(sb_conn *c, int status, const char *why)
{
    c->refuse_status = status;
    c->refuse_why = why;
    return -1;
}

static void region_close(sb_conn *c)
{
    if (c->region_open) {
        c->head[c->head_len++] = '\0'; /* room kept by region_open/append */
        c->region_open = false;
    }
}

/* Start a new string; returns its offset, or -1 when the arena is full. */
static int region_open(sb_conn *c)
{
    region_close(c);
    if (c->head_len + 1 > sizeof(c->head))
        return -1;
    c->region_open = true;
    return (int)c->head_len;
}

static int append(sb_conn *c, const char *at, size_t len)
{
    if (c->head_len + len + 1 > sizeof(c->head))
        return -1;
    memcpy(c->head + c->head_len, at, len);
    c->head_len += len;
    return 0;
}

static int on_message_begin(http_parser *p)
{
    sb_conn *c = p->data;

    c->head_len = 0;
    c->region_open = false;
    c->url_seen = false;
    c->nhdr = 0;
    c->in_value = false;
    c->body_len = 0;
    c->refuse_status = 0;
    c->refuse_why = NULL;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    sb_conn *c = p->data;
    int off;

    if (!c->url_seen) {
        off = region_open(c);
        if (off < 0)
            return refuse(c, 414, "request target too long");
        c->url_off = (uint32_t)off;
        c->url_seen = true;
    }
    return append(c, at, len) == 0 ? 0 : refuse(c, 414, "request target too long");
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    sb_conn *c = p->data;
    int off;

    if (c->nhdr == 0 || c->in_value) {
        if (c->nhdr >= SB_HEADERS_MAX)
            return refuse(c, 431, "too many request headers");
        off = region_open(c);
        if (off < 0)
            return refuse(c, 431, "request headers too large");
        c->hdr[c->nhdr].name_off = (uint32_t)off;
        c->hdr[c->nhdr].has_value = false;
        c->nhdr++;
        c->in_value = false;
    }
    return append(c, at, len) == 0 ? 0 : refuse(c, 431, "request headers too large");
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    sb_conn *c = p->data;
    int off;

    if (c->nhdr == 0)
        return refuse(c, 400, "header value without a name");
    if (!c->in_value) {
        off = region_open(c);
        if (off < 0)
            return refuse(c, 431, "request headers too large");
        c->hdr[c->nhdr - 1].value_off = (uint32_t)off;
        c->hdr[c->nhdr - 1].has_value = true;
        c->in_value = true;
    }
    return append(c, at, len) == 0 ? 0 : refuse(c, 431, "request headers too large");
}

/* The value of header name in the request being received, or NULL. */
static const char *header_value(sb_conn *c, const char *name)
{
    size_t i;

    for (i = 0; i < c->nhdr; i++) {
        if (c->hdr[i].has_value && strcasecmp(c->head + c->hdr[i].name_off, name) == 0)
            return c->head + c->hdr[i].value_off;
    }
    return NULL;
}

static int on_headers_complete(http_parser *p)
{
    sb_conn *c = p->data;
    const char *expect;

    region_close(c);
    /* content_length is ULLONG_MAX when the length is not given */
    if (p->content_length != ULLONG_MAX && p->content_length > SB_BODY_MAX)
        return refuse(c, 413, "request body larger than 65536 bytes");
    expect = header_value(c, "Expect");
    if (expect != NULL && strcasecmp(expect, "100-continue") == 0)
        sb_conn_send_continue(c);
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    sb_conn *c = p->data;
    size_t need = c->body_len + len + 1, cap;
    char *nb;

    if (c->body_len + len > SB_BODY_MAX)
        return refuse(c, 413, "request body larger than 65536 bytes");
    if (need > c->body_cap) {
        cap = c->body_cap == 0 ? 1024 : c->body_cap * 2;
        if (cap < need)
            cap = need;
        if (cap > SB_BODY_MAX + 1)
            cap = SB_BODY_MAX + 1;
        nb = realloc(c->body, cap);
        if (nb == NULL)
            return refuse(c, 503, "out of memory");
        c->body = nb;
        c->body_cap = cap;
    }
    memcpy(c->body + c->body_len, at, len);
    c->body_len += len;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    sb_conn *c = p->data;

    c->keep_alive = http_should_keep_alive(p) != 0;
    /* stop here: server.c answers before the parser reads the next request */
    http_parser_pause(p, 1);
    return 0;
}

const http_parser_settings sb_conn_parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void sb_conn_init_parser(sb_conn *c)
{
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
}

int sb_conn_build_request(sb_conn *c, sb_request *req, sb_header *hdrs, sb_why *why)
{
    struct http_parser_url u;
    char *url;
    size_t i, path_end, query_end = 0;
    bool has_query;

    if (!c->url_seen)
        return sb_why_set(why, "missing request target");
    url = c->head + c->url_off;
    http_parser_url_init(&u);
    if (http_parser_parse_url(url, strlen(url), 0, &u) != 0 || !(u.field_set & (1 << UF_PATH)))
        return sb_why_set(why, "malformed request target");
    path_end = (size_t)u.field_data[UF_PATH].off + u.field_data[UF_PATH].len;
    has_query = (u.field_set & (1 << UF_QUERY)) != 0;
    if (has_query)
        query_end = (size_t)u.field_data[UF_QUERY].off + u.field_data[UF_QUERY].len;
    /* terminate path and query in place: they are followed by '?', '#' or NUL */
    url[path_end] = '\0';
    req->path = url + u.field_data[UF_PATH].off;
    if (has_query) {
        url[query_end] = '\0';
        req->query = url + u.field_data[UF_QUERY].off;
    } else {
        req->query = "";
    }
    req->method = (int)c->parser.method;
    for (i = 0; i < c->nhdr; i++) {
        hdrs[i].name = c->head + c->hdr[i].name_off;
        hdrs[i].value = c->hdr[i].has_value ? c->head + c->hdr[i].value_off : "";
    }
    req->headers = hdrs;
    req->nheaders = c->nhdr;
    if (c->body_len > 0) {
        c->body[c->body_len] = '\0'; /* body_cap >= body_len + 1 */
        req->body = c->body;
    } else {
        req->body = "";
    }
    req->body_len = c->body_len;
    return 0;
}

void sb_conn_request_done(sb_conn *c)
{
    if (c->body_cap > SB_BODY_KEEP) {
        free(c->body);
        c->body = NULL;
        c->body_cap = 0;
    }
    c->body_len = 0;
}
