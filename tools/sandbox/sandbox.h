/*
 * sandbox.h - the sandbox's shared context and the entry points of its
 * request handlers: routing (routes.c), the three providers
 * (prov_*.c) and the control API (control.c).
 *
 * Everything mutable lives in one sb_ctx reached from the server hooks'
 * arg; handlers run on the loop thread only.
 */
#ifndef SB_SANDBOX_H
#define SB_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "request.h"
#include "store.h"
#include "tokens.h"

/* Longest static token accepted on the command line or the control API. */
#define SB_STATIC_TOKEN_MAX 512
/* "http://" + host + ":" + port. */
#define SB_BASE_URL_MAX 300
/* Largest latency or hang a test may ask for (10 minutes). */
#define SB_DELAY_MAX_MS 600000
/* Largest --token-ttl (one year). */
#define SB_TOKEN_TTL_MAX_S 31536000
/* Keliweb refresh tokens live 10 days (vendor documentation). */
#define SB_REFRESH_TTL_S 864000
/* Path segments looked at; longer paths are no endpoint. */
#define SB_SEGS_MAX 8
/* Status codes counted in by_status: 0..SB_STATUS_MAX-1. */
#define SB_STATUS_MAX 600

/* The one OAuth client and Keliweb user the token endpoints accept. */
#define SB_CLIENT_ID "sandbox-client"
#define SB_CLIENT_SECRET "sandbox-secret"
#define SB_KELIWEB_USER "sandbox-user"
#define SB_KELIWEB_PASSWORD "sandbox-password"

typedef struct sb_stats {
    uint64_t requests; /* provider endpoint requests (control API excluded) */
    uint64_t rejected; /* of those: malformed, unauthenticated or no endpoint */
    uint64_t dropped;  /* connections closed by a "close" script */
    uint64_t by_status[SB_STATUS_MAX];
    uint64_t tokens_minted[SB_PROVIDERS];
} sb_stats;

typedef struct sb_ctx {
    uv_loop_t *loop;
    sb_store *store;
    sb_tokens *tokens;
    char static_token[SB_PROVIDERS][SB_STATIC_TOKEN_MAX + 1];
    uint32_t latency_ms;         /* added to every provider answer */
    uint32_t latency_initial_ms; /* --latency, restored by reset */
    uint32_t token_ttl_s;
    char base_url[SB_BASE_URL_MAX]; /* for Location headers */
    bool quiet;
    sb_stats stats;
} sb_ctx;

/* A path segment, still percent-encoded. */
typedef struct sb_seg {
    const char *p;
    size_t len;
} sb_seg;

/* True when seg equals the literal lit. */
bool sb_seg_is(sb_seg seg, const char *lit);

/* The server hook: route one request (arg is the sb_ctx). */
void sb_route(void *arg, const sb_request *req, sb_response *r);

/* The server hook for requests refused by the HTTP layer. */
void sb_route_refused(void *arg, int status, const char *why);

/* Monotonic loop time in ms (token expiry). */
uint64_t sb_now_ms(const sb_ctx *ctx);

/* True when tok is the provider's static token or a live minted one. */
bool sb_token_ok(sb_ctx *ctx, sb_provider p, const char *tok);

/* How a provider answers on behalf of a script entry. */
typedef struct sb_cancel_ops {
    /* Apply the cancellation's effect to t. */
    void (*effect)(sb_target *t);
    /* The provider's normal success answer, with the given status. */
    void (*success)(sb_ctx *ctx, sb_response *r, int status, const void *arg);
    /* The provider's error body for status, saying message. */
    void (*error)(sb_response *r, int status, const char *message);
} sb_cancel_ops;

/*
 * Start a validated cancellation of target key: create/find the target,
 * count it, and consume the next script entry.  Returns 1 when the script
 * decided the answer (r is filled, or r->drop is set), 0 when the provider
 * should answer normally with *t (r->delay_ms may have grown), or -1 when
 * the target table is full (r is filled with 503).
 */
int sb_cancel_begin(sb_ctx *ctx, sb_provider p, const char *key, const sb_cancel_ops *ops,
                    const void *arg, sb_target **t, sb_response *r);

/* Find/create the target of a status lookup and count it.  Returns 0, or -1
 * with r filled (503) when the table is full. */
int sb_check_begin(sb_ctx *ctx, sb_provider p, const char *key, sb_target **t, sb_response *r);

/* Provider endpoints (prov_intronis.c, prov_activeplatform.c, prov_keliweb.c). */
void sb_intronis_token(sb_ctx *ctx, const sb_request *req, sb_response *r);
void sb_intronis_cancel(sb_ctx *ctx, const sb_request *req, sb_seg user, sb_response *r);
void sb_intronis_status(sb_ctx *ctx, const sb_request *req, sb_seg user, sb_response *r);
void sb_ap_operation(sb_ctx *ctx, const sb_request *req, sb_seg rid, sb_seg sid, bool stop,
                     sb_response *r);
void sb_ap_status(sb_ctx *ctx, const sb_request *req, sb_seg rid, sb_seg sid, sb_response *r);
void sb_keliweb_token(sb_ctx *ctx, const sb_request *req, sb_response *r);
void sb_keliweb_cancel(sb_ctx *ctx, const sb_request *req, sb_response *r);

/* The control API under /_sandbox/ (control.c); name is the segment after
 * "_sandbox". */
void sb_control(sb_ctx *ctx, const sb_request *req, sb_seg name, sb_response *r);

/* Reset scripts, states and stats (control API and tests). */
void sb_ctx_reset(sb_ctx *ctx);

#endif
