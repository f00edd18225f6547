/*
 * sandbox.h - the sandbox's shared context and what request handlers
 * share: routing (routes.c) and the helpers it gives the providers
 * (prov_*.c, listed in providers.c, see prov.h), and the control API
 * (control.c).
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

#include "outage.h"
#include "prov.h"
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
/* Status codes counted in by_status: 0..SB_STATUS_MAX-1. */
#define SB_STATUS_MAX 600

/* The one OAuth client the token endpoints accept. */
#define SB_CLIENT_ID "sandbox-client"
#define SB_CLIENT_SECRET "sandbox-secret"

/* Requests routed to one provider's endpoints of one kind. */
typedef struct sb_kind_stats {
    uint64_t requests; /* every one whose path and method matched */
    uint64_t outage;   /* of those: answered by an outage */
} sb_kind_stats;

typedef struct sb_stats {
    uint64_t requests; /* provider endpoint requests (control API excluded) */
    uint64_t rejected; /* of those: malformed, unauthenticated or no endpoint */
    uint64_t dropped;  /* connections closed by a "close" script */
    uint64_t by_status[SB_STATUS_MAX];
    uint64_t tokens_minted[SB_PROVIDERS_MAX];
    sb_kind_stats by_kind[SB_PROVIDERS_MAX][SB_KINDS];
} sb_stats;

typedef struct sb_ctx {
    uv_loop_t *loop;
    sb_store *store;
    sb_tokens *tokens;
    char static_token[SB_PROVIDERS_MAX][SB_STATIC_TOKEN_MAX + 1];
    uint32_t latency_ms;         /* added to every provider answer */
    uint32_t latency_initial_ms; /* --latency, restored by reset */
    uint32_t token_ttl_s;
    char base_url[SB_BASE_URL_MAX]; /* for Location headers */
    bool quiet;
    sb_outages outages;
    sb_stats stats;
} sb_ctx;

/* True when seg equals the literal lit. */
bool sb_seg_is(sb_seg seg, const char *lit);

/* The server hook: route one request (arg is the sb_ctx). */
void sb_route(void *arg, const sb_request *req, sb_response *r);

/* The server hook for requests refused by the HTTP layer. */
void sb_route_refused(void *arg, int status, const char *why);

/* Monotonic loop time in ms (token expiry). */
uint64_t sb_now_ms(const sb_ctx *ctx);

/* True when tok is the provider's static token or a live minted one. */
bool sb_token_ok(sb_ctx *ctx, sb_prov_id p, const char *tok);

typedef enum sb_auth {
    SB_AUTH_OK,
    SB_AUTH_MISSING, /* no header */
    SB_AUTH_SCHEME,  /* not "<scheme> <token>" */
    SB_AUTH_INVALID  /* neither the static token nor a live minted one */
} sb_auth;

/* Check the request's token where its provider's descriptor says it goes
 * (auth_header, auth_scheme).  The provider words the refusal. */
sb_auth sb_auth_check(sb_ctx *ctx, const sb_call *c);

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
int sb_cancel_begin(sb_ctx *ctx, sb_prov_id p, const char *key, const sb_cancel_ops *ops,
                    const void *arg, sb_target **t, sb_response *r);

/* Find/create the target of a status lookup and count it.  Returns 0, or -1
 * with r filled (503) when the table is full. */
int sb_check_begin(sb_ctx *ctx, sb_prov_id p, const char *key, sb_target **t, sb_response *r);

/* The control API under /_sandbox/ (control.c); name is the segment after
 * "_sandbox". */
void sb_control(sb_ctx *ctx, const sb_request *req, sb_seg name, sb_response *r);

/* Reset scripts, states, outages and stats (control API and tests). */
void sb_ctx_reset(sb_ctx *ctx);

#endif
