/*
 * store.h - the sandbox's memory of targets: each target's state, its
 * request counters and timestamps, and the FIFO of scripted answers for it
 * (plus one wildcard FIFO per provider and one for every provider).
 *
 * Target keys are "<provider>:<id>" with the id in the provider's canonical
 * spelling (prov.h: "intronis:<username>" decoded, "keliweb:<serviceid>" in
 * decimal, ...).  A target that was never
 * touched is active; entries are created on first use and looked up in a
 * hash table, so per-request cost does not grow with the number of targets.
 *
 * Ownership: the store owns targets and queued scripts; sb_store_script_pop
 * hands a script to the caller, who frees it with sb_script_free.
 */
#ifndef SB_STORE_H
#define SB_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hmap.h"
#include "util.h"

/* A provider is its index in the provider table (prov.h). */
typedef uint8_t sb_prov_id;

/* Providers the table may hold; per-provider arrays are this long. */
#define SB_PROVIDERS_MAX 8
/* "Every provider": the global wildcard of scripts. */
#define SB_PROV_ALL SB_PROVIDERS_MAX

typedef enum sb_state {
    SB_ST_ACTIVE,
    SB_ST_STOPPED,   /* ActivePlatform only: stop_operation done */
    SB_ST_CANCELLED, /* Intronis CANCELED, ActivePlatform Deleted, Keliweb request exists */
    SB_ST_MISSING,
    SB_STATES /* count */
} sb_state;

/* Longest provider name. */
#define SB_PROV_NAME_MAX 31
/* Longest canonical target id (the part after "<provider>:"). */
#define SB_TARGET_ID_MAX 255
/* Longest target key: provider name, ':' and the id. */
#define SB_KEY_MAX (SB_PROV_NAME_MAX + 1 + SB_TARGET_ID_MAX)
/* Request timestamps remembered per target (the last ones win). */
#define SB_TIMES_MAX 64
/* Targets remembered before the sandbox answers 503 (about 200 bytes each). */
#define SB_TARGETS_MAX 2000000
/* Scripted answers queued per target (or wildcard) at most. */
#define SB_SCRIPT_QUEUE_MAX 1024
/* Longest Retry-After value a script may ask for. */
#define SB_RETRY_AFTER_MAX 64
/* Longest Content-Type a script may ask for. */
#define SB_CONTENT_TYPE_MAX 128

/* One scripted answer.  status 0 means "answer normally" (after hang_ms). */
typedef struct sb_script {
    struct sb_script *next;
    int status;
    uint32_t hang_ms;
    bool close; /* drop the connection without answering */
    int apply;  /* -1: default (2xx/3xx apply the effect), 0: never, 1: always */
    char *body; /* NULL: the provider's default body for status */
    char content_type[SB_CONTENT_TYPE_MAX]; /* "" = application/json */
    char retry_after[SB_RETRY_AFTER_MAX];   /* "" = no Retry-After header */
} sb_script;

typedef struct sb_target {
    sb_prov_id provider;
    sb_state state;
    uint32_t cancels; /* validated cancellation requests */
    uint32_t checks;  /* validated status lookups */
    int64_t *times;   /* ring of unix ms, grows up to SB_TIMES_MAX */
    uint8_t times_cap, times_len, times_head;
    sb_script *script_head, *script_tail;
    uint32_t script_len;
} sb_target;

typedef struct sb_store sb_store;

/* New empty store, or NULL on OOM. */
sb_store *sb_store_new(void);

/* Free the store and everything in it; NULL is a no-op. */
void sb_store_free(sb_store *s);

/* Forget every target and script. */
void sb_store_reset(sb_store *s);

/* The target under key, or NULL when it was never touched. */
sb_target *sb_store_find(sb_store *s, const char *key);

/* The target under key, created active when absent.  Returns 0, -ENOMEM, or
 * -ENOSPC when SB_TARGETS_MAX targets exist. */
int sb_store_get(sb_store *s, const char *key, sb_prov_id p, sb_target **out);

/* Number of targets. */
size_t sb_store_count(const sb_store *s);

/* Call fn for every target. */
void sb_store_foreach(sb_store *s, void (*fn)(const char *key, sb_target *t, void *arg), void *arg);

/* Remember a request at unix time ms (cancel or check). */
void sb_target_record(sb_target *t, bool cancel, int64_t unix_ms);

/* Copy the remembered times, oldest first, into out[SB_TIMES_MAX]; returns
 * how many. */
size_t sb_target_times(const sb_target *t, int64_t *out);

/* Queue a script for t (t != NULL) or for the wildcard of provider p
 * (SB_PROV_ALL = every provider).  Takes ownership of sc on success.
 * Returns 0 or -ENOSPC when the queue holds SB_SCRIPT_QUEUE_MAX entries. */
int sb_store_script_push(sb_store *s, sb_target *t, sb_prov_id p, sb_script *sc);

/* Drop every script queued for t (or, with t NULL, the wildcard of p). */
void sb_store_script_clear(sb_store *s, sb_target *t, sb_prov_id p);

/* Take the next script for t: its own queue first, then its provider's
 * wildcard, then the global wildcard.  NULL when none is queued. */
sb_script *sb_store_script_pop(sb_store *s, sb_target *t);

/* Scripts waiting for t (or, with t NULL, in the wildcard queue of p;
 * SB_PROV_ALL = global). */
uint32_t sb_store_script_len(const sb_store *s, const sb_target *t, sb_prov_id p);

/* Free one script; NULL is a no-op. */
void sb_script_free(sb_script *sc);

#endif
