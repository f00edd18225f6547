/*
 * prov.h - the sandbox's provider table.
 *
 * Each provider is one file, prov_NAME.c, that defines one descriptor
 * `const sb_prov sb_prov_NAME`: its name, its endpoints (method, path
 * pattern, kind, handler), the header and scheme of its static token, the
 * grants of its token endpoint, the syntax of its target names, how it
 * spells states and how it answers during an outage.  providers.c lists the
 * descriptors; routing, statistics, scripts, states, tokens, the control
 * API and --help walk that list and name no provider.
 *
 * Adding a provider = one tools/sandbox/prov_NAME.c + one line in the list
 * in providers.c.
 *
 * A provider is known elsewhere by its index in the table (sb_prov_id);
 * handlers get theirs in sb_call.prov.  Descriptors are static data: the
 * table never changes while the sandbox runs.
 */
#ifndef SB_PROV_H
#define SB_PROV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "request.h"
#include "store.h"
#include "util.h"

/* {name} segments a path pattern may have. */
#define SB_ROUTE_ARGS_MAX 4
/* Path segments looked at; longer paths are no endpoint. */
#define SB_SEGS_MAX 8
/* A list of provider names in a message ("a, b or c"). */
#define SB_PROV_LIST_MAX (SB_PROVIDERS_MAX * (SB_PROV_NAME_MAX + 4) + 1)

/* What an endpoint does; outages and the by_kind counters are per kind. */
typedef enum sb_kind {
    SB_KIND_CANCEL, /* carries out (or refuses) a cancellation */
    SB_KIND_STATUS, /* reads a target's state */
    SB_KIND_TOKEN,  /* mints OAuth tokens */
    SB_KINDS        /* count; also "every kind" for outages */
} sb_kind;

/* A path segment, still percent-encoded. */
typedef struct sb_seg {
    const char *p;
    size_t len;
} sb_seg;

struct sb_ctx;

/* One routed request as its handler sees it. */
typedef struct sb_call {
    sb_prov_id prov; /* the provider whose route matched */
    const sb_request *req;
    sb_seg arg[SB_ROUTE_ARGS_MAX]; /* the {name} segments, in pattern order */
} sb_call;

typedef struct sb_endpoint {
    int method;          /* enum http_method */
    const char *pattern; /* "/v1/partners/{username}": {name} matches one segment */
    sb_kind kind;
    /* Answer the request by filling r (an empty 200 on entry). */
    void (*handle)(struct sb_ctx *ctx, const sb_call *c, sb_response *r);
    const char *help; /* --help: what it takes and answers; lines split by \n */
} sb_endpoint;

/* A state name POST /_sandbox/state takes for one provider only. */
typedef struct sb_state_alias {
    const char *name; /* compared case-insensitively; NULL ends a list */
    sb_state state;
} sb_state_alias;

typedef struct sb_prov {
    const char *name;  /* [a-z]+, at most SB_PROV_NAME_MAX: targets, control API, stats */
    const char *title; /* --help */
    const sb_endpoint *endpoints;
    size_t nendpoints;
    /* Where the static token (and a minted access token) goes: auth_header,
     * and unless auth_scheme is NULL, "<auth_scheme> <token>" (scheme
     * case-insensitive; auth_blanks: more blanks may precede the token). */
    const char *auth_header;
    const char *auth_scheme;
    bool auth_blanks;
    /* --help: the grants its SB_KIND_TOKEN route takes; NULL without one. */
    const char *token_grants;
    /* Targets are "<name>:<id>"; id_syntax says what id is (--help and
     * errors).  canon_id checks an id given to the control API and writes
     * the spelling the handlers key the target by; returns 0 or -EINVAL
     * with a reason. */
    const char *id_syntax;
    int (*canon_id)(const char *id, char out[SB_TARGET_ID_MAX + 1], sb_why *why);
    /* How status answers and the control API spell each state. */
    const char *state_names[SB_STATES];
    /* State names the control API takes besides active, cancelled,
     * canceled and missing; NULL or ended by a NULL name. */
    const sb_state_alias *state_aliases;
    /* Answer r as an outage of an endpoint of this kind: status, with the
     * provider's usual error body for such an endpoint saying message. */
    void (*outage)(sb_response *r, sb_kind kind, int status, const char *message);
} sb_prov;

/* Number of providers in the table. */
size_t sb_prov_count(void);

/* The descriptor of provider p (p < sb_prov_count()). */
const sb_prov *sb_prov_get(sb_prov_id p);

/* The provider named s[0..len): 0 and *out, or -ENOENT. */
int sb_prov_find(const char *s, size_t len, sb_prov_id *out);

/* Provider p's name, or "*" for SB_PROV_ALL. */
const char *sb_prov_name(sb_prov_id p);

/* True when provider p has an endpoint of kind k. */
bool sb_prov_has_kind(sb_prov_id p, sb_kind k);

/* Write every provider name into out, separated by ", " and, before the
 * last, by last_sep (" or ", ", ", ...). */
void sb_prov_list(char out[SB_PROV_LIST_MAX], const char *last_sep);

/* Check the table (unique well-formed names, patterns within the limits).
 * Returns 0, or -EINVAL with the first problem in why. */
int sb_provs_check(sb_why *why);

/* Print the providers' part of --help. */
void sb_provs_usage(FILE *f);

/* "cancel", "status", "token". */
const char *sb_kind_name(sb_kind k);

/* The kind named s: 0 and *out, or -EINVAL. */
int sb_kind_parse(const char *s, sb_kind *out);

/* Provider p's spelling of state st ("?" when out of range). */
const char *sb_state_name(sb_prov_id p, sb_state st);

/* Parse a state name of POST /_sandbox/state for provider p: "active",
 * "cancelled"/"canceled", "missing" or one of p's aliases (all
 * case-insensitive).  Returns 0, or -EINVAL with the accepted names in why. */
int sb_state_parse(sb_prov_id p, const char *s, sb_state *out, sb_why *why);

/* key = "<name of p>:<id>".  Returns 0, or -EINVAL when it does not fit. */
int sb_target_key(sb_prov_id p, const char *id, char key[SB_KEY_MAX + 1]);

/*
 * Parse a target name from the control API into its canonical key.
 * Accepts "*" (every provider: *p = SB_PROV_ALL) and "<provider>:*" as
 * wildcards: then *wildcard is true and key is left empty.  Returns 0 or
 * -EINVAL with a reason in why.
 */
int sb_target_parse(const char *name, sb_prov_id *p, bool *wildcard, char key[SB_KEY_MAX + 1],
                    sb_why *why);

#endif
