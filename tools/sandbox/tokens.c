/*
 * tokens.c - see tokens.h.
 */
#include "tokens.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hmap.h"

typedef struct sb_token {
    sb_prov_id provider;
    sb_token_kind kind;
    uint64_t expires_ms;
} sb_token;

struct sb_tokens {
    sb_hmap map;
};

sb_tokens *sb_tokens_new(void)
{
    sb_tokens *tk = calloc(1, sizeof(*tk));

    if (tk == NULL)
        return NULL;
    if (sb_hmap_init(&tk->map) != 0) {
        free(tk);
        return NULL;
    }
    return tk;
}

void sb_tokens_free(sb_tokens *tk)
{
    if (tk == NULL)
        return;
    sb_hmap_destroy(&tk->map, free);
    free(tk);
}

static bool keep_live(const char *key, void *value, void *arg)
{
    const sb_token *t = value;
    const uint64_t *now = arg;

    (void)key;
    return t->expires_ms > *now;
}

int sb_tokens_mint(sb_tokens *tk, sb_prov_id p, sb_token_kind kind, uint64_t now_ms,
                   uint64_t ttl_ms, char out[SB_TOKEN_LEN + 1])
{
    sb_token *t;
    int rc;

    if (tk->map.count >= SB_TOKENS_MAX) {
        sb_hmap_filter(&tk->map, keep_live, &now_ms, free);
        if (tk->map.count >= SB_TOKENS_MAX)
            return -ENOSPC;
    }
    rc = sb_random_hex(out, SB_TOKEN_BYTES);
    if (rc != 0)
        return rc;
    /* 256 random bits: a collision means a broken RNG, not bad luck */
    if (sb_hmap_get(&tk->map, out) != NULL)
        return -EIO;
    t = malloc(sizeof(*t));
    if (t == NULL)
        return -ENOMEM;
    t->provider = p;
    t->kind = kind;
    t->expires_ms = now_ms + ttl_ms;
    rc = sb_hmap_put(&tk->map, out, t);
    if (rc != 0) {
        free(t);
        return rc;
    }
    return 0;
}

bool sb_tokens_valid(sb_tokens *tk, sb_prov_id p, sb_token_kind kind, const char *tok,
                     uint64_t now_ms)
{
    sb_token *t;

    if (strlen(tok) != SB_TOKEN_LEN)
        return false;
    t = sb_hmap_get(&tk->map, tok);
    if (t == NULL)
        return false;
    if (t->expires_ms <= now_ms) {
        free(sb_hmap_remove(&tk->map, tok));
        return false;
    }
    return t->provider == p && t->kind == kind;
}

bool sb_tokens_take(sb_tokens *tk, sb_prov_id p, sb_token_kind kind, const char *tok,
                    uint64_t now_ms)
{
    if (!sb_tokens_valid(tk, p, kind, tok, now_ms))
        return false;
    free(sb_hmap_remove(&tk->map, tok));
    return true;
}

static bool keep_other_provider(const char *key, void *value, void *arg)
{
    const sb_token *t = value;
    const sb_prov_id *p = arg;

    (void)key;
    return t->provider != *p;
}

size_t sb_tokens_revoke(sb_tokens *tk, sb_prov_id p)
{
    return sb_hmap_filter(&tk->map, keep_other_provider, &p, free);
}
