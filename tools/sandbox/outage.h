/*
 * outage.h - switched-off endpoints: per provider and endpoint kind, an
 * outage answers every request of that kind with a fixed status (and
 * optionally Retry-After) until it is cleared or its time runs out.
 *
 * Pure bookkeeping on a caller-owned table; times are monotonic
 * milliseconds (the loop's clock), given by the caller.  An expired outage
 * is switched off when it is next looked at.
 */
#ifndef SB_OUTAGE_H
#define SB_OUTAGE_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "prov.h"
#include "store.h"

/* Longest for_ms of an outage (one day); without for_ms it lasts until
 * cleared. */
#define SB_OUTAGE_FOR_MAX_MS 86400000
/* Statuses an outage may answer with. */
#define SB_OUTAGE_STATUS_MIN 400
#define SB_OUTAGE_STATUS_MAX 599

typedef struct sb_outage {
    bool on;
    int status;
    char retry_after[SB_RETRY_AFTER_MAX]; /* "" = no Retry-After header */
    uint64_t until_ms;                    /* monotonic end; 0 = until cleared */
} sb_outage;

typedef struct sb_outages {
    sb_outage o[SB_PROVIDERS_MAX][SB_KINDS];
} sb_outages;

/* The live outage of provider p's endpoints of kind k at now_ms, or NULL
 * (an expired one is switched off here). */
const sb_outage *sb_outage_find(sb_outages *os, sb_prov_id p, sb_kind k, uint64_t now_ms);

/*
 * Start o (copied; o->on is ignored) or, with o NULL, end the outage of
 * provider p's endpoints of kind k.  p may be SB_PROV_ALL (every provider)
 * and k SB_KINDS (every kind); only kinds a provider has endpoints of are
 * touched.  Returns how many (provider, kind) pairs that covered.
 */
size_t sb_outage_set(sb_outages *os, sb_prov_id p, sb_kind k, const sb_outage *o);

/* End every outage. */
void sb_outages_reset(sb_outages *os);

/* The live outages at now_ms as a JSON array of {"provider","kind",
 * "status","retry_after" (when set),"remaining_ms" (null = until cleared)};
 * NULL on OOM. */
cJSON *sb_outages_json(sb_outages *os, uint64_t now_ms);

#endif
