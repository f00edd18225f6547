/*
 * tokens.h - OAuth tokens minted by the sandbox's token endpoints.
 *
 * A token is 64 random hex digits, belongs to one provider, is an access or
 * a refresh token and expires at a monotonic millisecond time.  Lookups are
 * O(1) (hash table); revocation of a provider's tokens walks the table, which
 * only the control API does.  At most SB_TOKENS_MAX tokens are kept: when
 * full, expired ones are swept before a mint fails with -ENOSPC.
 */
#ifndef SB_TOKENS_H
#define SB_TOKENS_H

#include <stdbool.h>
#include <stdint.h>

#include "store.h"

/* Random bytes per token (hex doubles it). */
#define SB_TOKEN_BYTES 32
#define SB_TOKEN_LEN (2 * SB_TOKEN_BYTES)
/* Live tokens kept at most (about 120 bytes each). */
#define SB_TOKENS_MAX 200000

typedef enum sb_token_kind { SB_TOKEN_ACCESS, SB_TOKEN_REFRESH } sb_token_kind;

typedef struct sb_tokens sb_tokens;

/* New empty token table, or NULL on OOM. */
sb_tokens *sb_tokens_new(void);

/* Free the table; NULL is a no-op. */
void sb_tokens_free(sb_tokens *tk);

/* Mint a token for p valid until now_ms + ttl_ms and write it to out.
 * Returns 0, -ENOSPC when the table is full of live tokens, or -errno. */
int sb_tokens_mint(sb_tokens *tk, sb_prov_id p, sb_token_kind kind, uint64_t now_ms,
                   uint64_t ttl_ms, char out[SB_TOKEN_LEN + 1]);

/* True when tok is a live token of provider p and kind. */
bool sb_tokens_valid(sb_tokens *tk, sb_prov_id p, sb_token_kind kind, const char *tok,
                     uint64_t now_ms);

/* Like sb_tokens_valid, and removes the token when it was valid (refresh
 * tokens are single use). */
bool sb_tokens_take(sb_tokens *tk, sb_prov_id p, sb_token_kind kind, const char *tok,
                    uint64_t now_ms);

/* Remove every token of provider p; returns how many. */
size_t sb_tokens_revoke(sb_tokens *tk, sb_prov_id p);

#endif
