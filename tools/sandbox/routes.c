/*
 * routes.c - maps request paths to endpoint handlers, keeps the request
 * statistics, adds the configured latency, applies scripted answers and
 * logs one line per request (unless --quiet).
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

bool sb_token_ok(sb_ctx *ctx, sb_provider p, const char *tok)
{
    if (tok[0] == '\0')
        return false;
    if (strcmp(tok, ctx->static_token[p]) == 0)
        return true;
    return sb_tokens_valid(ctx->tokens, p, SB_TOKEN_ACCESS, tok, sb_now_ms(ctx));
}

static uint32_t add_delay(uint32_t a, uint32_t b)
{
    return a > UINT32_MAX - b ? UINT32_MAX : a + b;
}

static void table_full(sb_response *r)
{
    sb_resp_reject(r, 503, "sandbox target table full (%d); POST /_sandbox/reset", SB_TARGETS_MAX);
}

int sb_check_begin(sb_ctx *ctx, sb_provider p, const char *key, sb_target **t, sb_response *r)
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

int sb_cancel_begin(sb_ctx *ctx, sb_provider p, const char *key, const sb_cancel_ops *ops,
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

static bool method_is(const sb_request *req, enum http_method m, sb_response *r)
{
    if (req->method == (int)m)
        return true;
    snprintf(r->allow, sizeof(r->allow), "%s", http_method_str(m));
    sb_resp_reject(r, 405, "method %s not allowed here (use %s)",
                   http_method_str((enum http_method)req->method), http_method_str(m));
    return false;
}

/* Route a provider request; returns false when no endpoint matched. */
static bool route_provider(sb_ctx *ctx, const sb_request *req, const sb_seg *s, size_t n,
                           sb_response *r)
{
    if (n == 2 && sb_seg_is(s[0], "oauth2") && sb_seg_is(s[1], "token")) {
        if (method_is(req, HTTP_POST, r))
            sb_intronis_token(ctx, req, r);
    } else if (n == 2 && sb_seg_is(s[0], "oauth") && sb_seg_is(s[1], "token")) {
        if (method_is(req, HTTP_POST, r))
            sb_keliweb_token(ctx, req, r);
    } else if (n == 3 && sb_seg_is(s[0], "v1") && sb_seg_is(s[1], "partners")) {
        if (method_is(req, HTTP_GET, r))
            sb_intronis_status(ctx, req, s[2], r);
    } else if (n == 4 && sb_seg_is(s[0], "v1") && sb_seg_is(s[1], "partners") &&
               sb_seg_is(s[3], "cancellation")) {
        if (method_is(req, HTTP_POST, r))
            sb_intronis_cancel(ctx, req, s[2], r);
    } else if ((n == 6 || n == 7) && sb_seg_is(s[0], "api") && sb_seg_is(s[1], "v3") &&
               sb_seg_is(s[2], "resellers") && sb_seg_is(s[4], "subscriptions")) {
        if (n == 6) {
            if (method_is(req, HTTP_GET, r))
                sb_ap_status(ctx, req, s[3], s[5], r);
        } else if (sb_seg_is(s[6], "delete_operation") || sb_seg_is(s[6], "stop_operation")) {
            if (method_is(req, HTTP_POST, r))
                sb_ap_operation(ctx, req, s[3], s[5], sb_seg_is(s[6], "stop_operation"), r);
        } else {
            return false;
        }
    } else if (n == 4 && sb_seg_is(s[0], "api") && sb_seg_is(s[1], "v2") &&
               sb_seg_is(s[2], "keliweb") && sb_seg_is(s[3], "add-cancel-request")) {
        if (method_is(req, HTTP_POST, r))
            sb_keliweb_cancel(ctx, req, r);
    } else {
        return false;
    }
    return true;
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
    if (n > SB_SEGS_MAX || !route_provider(ctx, req, segs, n, r))
        sb_resp_reject(r, 404, "no such endpoint: %s", req->path);
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
    memset(&ctx->stats, 0, sizeof(ctx->stats));
    ctx->latency_ms = ctx->latency_initial_ms;
}
