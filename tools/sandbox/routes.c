/*
 * routes.c - maps request paths to the providers' endpoint handlers (the
 * endpoints of the provider table, prov.h), answers for outages, keeps the
 * request statistics, adds the configured latency, applies scripted
 * answers and logs one line per request (unless --quiet).
 */
#include "sandbox.h"

#include <errno.h>
#include <http_parser.h>
#include <stdio.h>
#include <string.h>

bool sb_seg_is(sb_seg seg, const char *lit)
{
    return strlen(lit) == seg.len && memcmp(seg.p, lit, seg.len) == 0;
}

uint64_t sb_now_ms(const sb_ctx *ctx)
{
    return uv_now(ctx->loop);
}

bool sb_token_ok(sb_ctx *ctx, sb_prov_id p, const char *tok)
{
    if (tok[0] == '\0')
        return false;
    if (strcmp(tok, ctx->static_token[p]) == 0)
        return true;
    return sb_tokens_valid(ctx->tokens, p, SB_TOKEN_ACCESS, tok, sb_now_ms(ctx));
}

sb_auth sb_auth_check(sb_ctx *ctx, const sb_call *c)
{
    const sb_prov *pv = sb_prov_get(c->prov);
    const char *tok = sb_req_header(c->req, pv->auth_header);

    if (tok == NULL)
        return SB_AUTH_MISSING;
    if (pv->auth_scheme != NULL) {
        if (!sb_prefix_ci(tok, pv->auth_scheme, &tok) || *tok != ' ')
            return SB_AUTH_SCHEME;
        tok++;
        while (pv->auth_blanks && *tok == ' ')
            tok++;
    }
    return sb_token_ok(ctx, c->prov, tok) ? SB_AUTH_OK : SB_AUTH_INVALID;
}

static uint32_t add_delay(uint32_t a, uint32_t b)
{
    return a > UINT32_MAX - b ? UINT32_MAX : a + b;
}

static void table_full(sb_response *r)
{
    sb_resp_reject(r, 503, "sandbox target table full (%d); POST /_sandbox/reset", SB_TARGETS_MAX);
}

int sb_check_begin(sb_ctx *ctx, sb_prov_id p, const char *key, sb_target **t, sb_response *r)
{
    if (sb_store_get(ctx->store, key, p, t) != 0) {
        table_full(r);
        return -1;
    }
    sb_target_record(*t, false, sb_unix_ms());
    return 0;
}

/* Answer r from script entry sc (freed here); see sb_cancel_begin. */
static int apply_script(sb_ctx *ctx, sb_script *sc, sb_target *t, const sb_cancel_ops *ops,
                        const void *arg, sb_response *r)
{
    bool ok_status = sc->status >= 200 && sc->status < 400;
    bool apply = sc->apply == 1 || (sc->apply == -1 && ok_status && !sc->close);
    int decided = 1;

    r->delay_ms = add_delay(r->delay_ms, sc->hang_ms);
    if (sc->close) {
        r->drop = true;
    } else if (sc->status == 0) {
        decided = 0; /* only a hang: answer normally, later */
        apply = false;
    } else {
        if (ok_status)
            ops->success(ctx, r, sc->status, arg);
        else
            ops->error(r, sc->status, http_status_str((enum http_status)sc->status));
        if (sc->body != NULL)
            sb_resp_raw(r, sc->status,
                        sc->content_type[0] != '\0' ? sc->content_type : "application/json",
                        sc->body, strlen(sc->body));
        memcpy(r->retry_after, sc->retry_after, sizeof(r->retry_after));
    }
    if (apply)
        ops->effect(t);
    sb_script_free(sc);
    return decided;
}

int sb_cancel_begin(sb_ctx *ctx, sb_prov_id p, const char *key, const sb_cancel_ops *ops,
                    const void *arg, sb_target **t, sb_response *r)
{
    sb_script *sc;

    if (sb_store_get(ctx->store, key, p, t) != 0) {
        table_full(r);
        return -1;
    }
    sb_target_record(*t, true, sb_unix_ms());
    sc = sb_store_script_pop(ctx->store, *t);
    if (sc == NULL)
        return 0;
    return apply_script(ctx, sc, *t, ops, arg, r);
}

/* Split an absolute path into segments; returns the count, or
 * SB_SEGS_MAX + 1 when there are more. */
static size_t split(const char *path, sb_seg *segs)
{
    size_t n = 0;
    const char *p = path, *slash;

    if (*p != '/')
        return SB_SEGS_MAX + 1;
    if (p[1] == '\0')
        return 0;
    while (*p == '/') {
        if (n == SB_SEGS_MAX)
            return SB_SEGS_MAX + 1;
        p++;
        slash = strchr(p, '/');
        segs[n].p = p;
        segs[n].len = slash != NULL ? (size_t)(slash - p) : strlen(p);
        p += segs[n].len;
        n++;
    }
    return n;
}

/* Match s[0..n) against pattern, collecting the {name} segments. */
static bool pattern_match(const char *pat, const sb_seg *s, size_t n, sb_seg *args)
{
    size_t i = 0, nargs = 0, len;
    const char *slash;

    while (*pat == '/') {
        pat++;
        slash = strchr(pat, '/');
        len = slash != NULL ? (size_t)(slash - pat) : strlen(pat);
        if (i == n)
            return false;
        if (len >= 2 && pat[0] == '{' && pat[len - 1] == '}') {
            if (nargs == SB_ROUTE_ARGS_MAX)
                return false; /* sb_provs_check refused such a pattern */
            args[nargs++] = s[i];
        } else if (len != s[i].len || memcmp(pat, s[i].p, len) != 0) {
            return false;
        }
        pat += len;
        i++;
    }
    return i == n;
}

/* Append method m to the Allow list ("GET, POST") unless it is there. */
static void allow_add(char allow[SB_SHORT_HEADER_MAX], int m)
{
    const char *name = http_method_str((enum http_method)m), *p = allow;
    size_t n = strlen(name), len = strlen(allow);

    while (*p != '\0') {
        if (strncmp(p, name, n) == 0 && (p[n] == ',' || p[n] == '\0'))
            return;
        p = strchr(p, ',');
        if (p == NULL)
            break;
        p += 2; /* ", " */
    }
    snprintf(allow + len, SB_SHORT_HEADER_MAX - len, "%s%s", len > 0 ? ", " : "", name);
}

/*
 * Find the route of the table for path s[0..n) and method: returns it with
 * c's provider and arguments filled, or NULL, then with allow listing the
 * methods the path takes ("" when no route has the path).
 */
static const sb_endpoint *find_route(const sb_seg *s, size_t n, int method, sb_call *c,
                                     char allow[SB_SHORT_HEADER_MAX])
{
    size_t np = sb_prov_count(), i, j;
    const sb_prov *pv;
    const sb_endpoint *rt;

    allow[0] = '\0';
    for (i = 0; i < np; i++) {
        pv = sb_prov_get((sb_prov_id)i);
        for (j = 0; j < pv->nendpoints; j++) {
            rt = &pv->endpoints[j];
            if (!pattern_match(rt->pattern, s, n, c->arg))
                continue;
            if (rt->method == method) {
                c->prov = (sb_prov_id)i;
                return rt;
            }
            allow_add(allow, rt->method);
        }
    }
    return NULL;
}

/* Answer r as the outage o of c's provider and rt's kind. */
static void answer_outage(const sb_call *c, const sb_endpoint *rt, const sb_outage *o,
                          sb_response *r)
{
    sb_prov_get(c->prov)->outage(r, rt->kind, o->status,
                                 http_status_str((enum http_status)o->status));
    snprintf(r->retry_after, sizeof(r->retry_after), "%s", o->retry_after);
    r->rejected = false; /* an answer the test asked for, not a refusal */
    snprintf(r->why.msg, sizeof(r->why.msg), "outage of %s %s endpoints", sb_prov_name(c->prov),
             sb_kind_name(rt->kind));
}

/* Route a provider request: a handler, an outage, 405 or 404. */
static void route_provider(sb_ctx *ctx, const sb_request *req, const sb_seg *s, size_t n,
                           sb_response *r)
{
    char allow[SB_SHORT_HEADER_MAX] = "";
    sb_call c = {.req = req};
    const sb_endpoint *rt = n <= SB_SEGS_MAX ? find_route(s, n, req->method, &c, allow) : NULL;
    const sb_outage *o;
    sb_kind_stats *ks;

    if (rt == NULL && allow[0] != '\0') {
        memcpy(r->allow, allow, sizeof(r->allow));
        sb_resp_reject(r, 405, "method %s not allowed here (use %s)",
                       http_method_str((enum http_method)req->method), allow);
        return;
    }
    if (rt == NULL) {
        sb_resp_reject(r, 404, "no such endpoint: %s", req->path);
        return;
    }
    ks = &ctx->stats.by_kind[c.prov][rt->kind];
    ks->requests++;
    o = sb_outage_find(&ctx->outages, c.prov, rt->kind, sb_now_ms(ctx));
    if (o != NULL) {
        ks->outage++;
        answer_outage(&c, rt, o, r);
        return;
    }
    rt->handle(ctx, &c, r);
}

static void log_line(const sb_ctx *ctx, const sb_request *req, const sb_response *r)
{
    if (ctx->quiet)
        return;
    if (r->drop)
        fprintf(stderr, "sandbox: %s %s -> (connection dropped by script)\n",
                http_method_str((enum http_method)req->method), req->path);
    else
        fprintf(stderr, "sandbox: %s %s -> %d%s%s\n",
                http_method_str((enum http_method)req->method), req->path, r->status,
                r->why.msg[0] != '\0' ? ": " : "", r->why.msg);
}

void sb_route(void *arg, const sb_request *req, sb_response *r)
{
    sb_ctx *ctx = arg;
    sb_seg segs[SB_SEGS_MAX];
    size_t n = split(req->path, segs);

    if (n >= 1 && n <= SB_SEGS_MAX && sb_seg_is(segs[0], "_sandbox")) {
        if (n == 2)
            sb_control(ctx, req, segs[1], r);
        else
            sb_resp_reject(r, 404, "no such control endpoint");
        log_line(ctx, req, r);
        return;
    }
    ctx->stats.requests++;
    route_provider(ctx, req, segs, n, r);
    if (r->rejected)
        ctx->stats.rejected++;
    if (r->drop)
        ctx->stats.dropped++;
    else if (r->status >= 0 && r->status < SB_STATUS_MAX)
        ctx->stats.by_status[r->status]++;
    r->delay_ms = add_delay(r->delay_ms, ctx->latency_ms);
    log_line(ctx, req, r);
}

void sb_route_refused(void *arg, int status, const char *why)
{
    sb_ctx *ctx = arg;

    ctx->stats.requests++;
    ctx->stats.rejected++;
    if (status >= 0 && status < SB_STATUS_MAX)
        ctx->stats.by_status[status]++;
    if (!ctx->quiet)
        fprintf(stderr, "sandbox: refused request -> %d: %s\n", status, why);
}

void sb_ctx_reset(sb_ctx *ctx)
{
    sb_store_reset(ctx->store);
    sb_outages_reset(&ctx->outages);
    memset(&ctx->stats, 0, sizeof(ctx->stats));
    ctx->latency_ms = ctx->latency_initial_ms;
}
