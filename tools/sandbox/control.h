/*
 * control.h - helpers of the control API: body checks shared by its
 * endpoints (control.c), script entry parsing (control_script.c), outages
 * (control_outage.c) and the statistics documents (stats.c).
 */
#ifndef SB_CONTROL_H
#define SB_CONTROL_H

#include <cjson/cJSON.h>

#include "sandbox.h"
#include "store.h"

/* Parse the body as a JSON object whose keys are all in allowed (NULL
 * terminated).  An empty body counts as {}.  Returns the tree (caller
 * deletes) or NULL with r filled. */
cJSON *sb_body_object(const sb_request *req, const char *const *allowed, sb_response *r);

/* The string member k of o, or NULL (r filled) when absent or not a string. */
const char *sb_need_string(const cJSON *o, const char *k, sb_response *r);

/* Answer 200 with o (ownership moves; NULL answers 500). */
void sb_control_answer(sb_response *r, cJSON *o);

/* POST /_sandbox/outage (control_outage.c). */
void sb_control_outage(sb_ctx *ctx, const sb_request *req, sb_response *r);

/* A Retry-After value from JSON: a header-safe string or seconds (integer).
 * Returns 0 with out set, or -EINVAL with a reason. */
int sb_retry_after_parse(const cJSON *it, char out[SB_RETRY_AFTER_MAX], sb_why *why);

/* Parsed script entries not yet queued; owns them. */
typedef struct sb_script_list {
    sb_script *head, *tail;
    uint32_t n;
} sb_script_list;

/*
 * Parse a "responses" array.  Each entry is an object with keys
 *   status (200..599), retry_after (string or non-negative integer),
 *   hang_ms (0..SB_DELAY_MAX_MS), close (bool), body (string),
 *   content_type (string), apply (bool)
 * with at least one of status, hang_ms, close; close excludes status;
 * retry_after, body and content_type need status.  Returns 0, -EINVAL with a
 * reason naming the entry, or -ENOMEM.  On error out is empty.
 */
int sb_script_list_parse(const cJSON *arr, sb_script_list *out, sb_why *why);

/* Queue every entry for t (or the wildcard of p); the list ends empty.  The
 * caller checked that the queue has room. */
void sb_script_list_move(sb_script_list *l, sb_store *s, sb_target *t, sb_prov_id p);

/* Free entries still in the list. */
void sb_script_list_free(sb_script_list *l);

/* {"state":..,"cancel":n,"check":n,"times_ms":[..],"scripted":n} for a
 * target of provider p; t NULL means never touched (active, zero counts).
 * NULL on OOM. */
cJSON *sb_target_json(sb_prov_id p, const sb_target *t);

/* The whole GET /_sandbox/stats document, or NULL on OOM. */
cJSON *sb_stats_json(sb_ctx *ctx);

#endif
