/*
 * dlq.h - reading and selecting dead-letter entries (docs/design.md §6),
 * shared by the dlq commands.
 *
 * Entries are read with LRANGE in chunks from the oldest end of {P}:dead,
 * using negative indices: the daemon LPUSHes new dead letters at the other
 * end, so a scan running while jobs fail neither sees an entry twice nor
 * skips one.  Each entry is identified by a hash of its text (its ID), which
 * does not change while positions do.
 *
 * Anything in the list may be garbage (hand-written, damaged): parsing never
 * fails, it only marks the entry not valid and keeps the text.
 */
#ifndef CANCELQCTL_DLQ_H
#define CANCELQCTL_DLQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "ctl.h"

#define DLQ_CHUNK 200                 /* entries per LRANGE */
#define DLQ_ENTRY_PARSE_MAX (1 << 20) /* larger entries are not parsed (ours are < 70 KiB) */
#define DLQ_ID_SHOW 12                /* hex digits of the ID shown */
#define DLQ_ID_MIN 12                 /* digits requeue and drop need: one entry, surely */
#define DLQ_ID_PREFIX_MIN 4           /* digits dlq show takes (a unique prefix) */
#define DLQ_MAX_IDS 1024              /* IDs on one command line */

typedef struct dlq_entry {
    const char *text; /* borrowed from the reply: the entry as stored */
    size_t len;
    char id[17];      /* SHA-256 of the text, first 16 hex digits */
    long long pos;    /* index from the head (0 = newest) when read, -1 unknown */
    cJSON *root;      /* owned: the parsed entry, NULL when not JSON */
    bool valid;       /* an object with "job" and "status" */
    const cJSON *job; /* borrowed: the job (object, or string for raw text) */
    const char *job_id, *provider, *action;                    /* borrowed or NULL */
    const char *status, *error, *message, *worker, *failed_at; /* borrowed or NULL */
    int64_t failed_at_ms;                                      /* 0 when unknown */
    long long attempts;                                        /* -1 when unknown */
} dlq_entry;

typedef struct dlq_filter {
    const char *provider, *action, *status, *error, *job; /* fnmatch patterns */
    bool has_since;
    uint64_t since_ms;
    bool malformed;  /* only entries that are not dead letters */
    long long limit; /* 0 = no limit */
    char **ids;      /* ID prefixes (12..16 hex digits), from argv */
    size_t nids;
    bool *id_seen; /* nids flags, set as IDs match */
} dlq_filter;

/* Visitor results. */
enum { DLQ_NEXT = 0, DLQ_REMOVED = 1, DLQ_STOP = 2 };

/* Called for each selected entry, oldest first.  Returns DLQ_NEXT,
 * DLQ_REMOVED (the entry was taken out of the list), DLQ_STOP, or -1 (an
 * error that was reported: the scan stops). */
typedef int (*dlq_visit_fn)(ctl *c, dlq_entry *e, void *data);

/* Long option values of the filter flags, for the commands' option tables. */
enum {
    OPT_PROVIDER = 1000,
    OPT_ACTION,
    OPT_STATUS,
    OPT_ERROR,
    OPT_JOB,
    OPT_SINCE,
    OPT_LIMIT,
    OPT_MALFORMED,
    OPT_JSON,
    OPT_ALL,
    OPT_DRY_RUN,
    OPT_RATE,
    OPT_REDO,
    OPT_YES,
};

/* Handle a filter option; 1 when it was one, 0 when not, -1 (reported) on
 * a bad value. */
int dlq_filter_opt(dlq_filter *f, int opt, const char *arg, const char *prog);

/* Check the filter's values against what the deployment knows (after
 * ctl_open): --status a dead-letter status, --provider an instance of the
 * config, --action an action of their adapters (or, for both, a name a
 * dead letter carries), each as a shell pattern that matches one at least.
 * 0, or -1 after reporting the value with the closest known one. */
int dlq_filter_check(ctl *c, const dlq_filter *f);

/* Does the shell pattern match one of v[0..n)? */
bool dlq_pattern_hits(const char *pattern, const char *const *v, size_t n);

/* Take argv's IDs into f (checked: min_digits..16 hex digits, min_digits
 * >= DLQ_ID_PREFIX_MIN).  0 or -1 (reported). */
int dlq_filter_ids(dlq_filter *f, int argc, char **argv, size_t min_digits, const char *prog);

/* Report every ID that matched nothing; returns how many. */
size_t dlq_filter_unmatched(const dlq_filter *f, const char *prog);

void dlq_filter_clear(dlq_filter *f);

/* Fill e from text (never fails; garbage gives valid = false).  Release
 * with dlq_entry_clear(). */
void dlq_entry_parse(dlq_entry *e, const char *text, size_t len, long long pos);
void dlq_entry_clear(dlq_entry *e);

/* Does e pass the filter (IDs included)? now_ms for --since. */
bool dlq_match(dlq_filter *f, const dlq_entry *e, int64_t now_ms);

/* Walk the list oldest first, calling fn for every entry f selects, until
 * the end, the limit, DLQ_STOP or an error.  *visited (may be NULL) counts
 * the entries fn was called for.  0 or -1 (reported). */
int dlq_scan(ctl *c, dlq_filter *f, dlq_visit_fn fn, void *data, long long *visited);

/* The entry as a JSON object for --json output (summary fields plus
 * "entry": the parsed entry, or "raw": the text when it is not JSON).
 * NULL on ENOMEM. */
cJSON *dlq_entry_json(const dlq_entry *e, int64_t now_ms);

/* dlq requeue / dlq drop (dlq_move.c). */
int dlq_cmd_requeue(ctl *c, int argc, char **argv);
int dlq_cmd_drop(ctl *c, int argc, char **argv);

/* Short label of what the entry's job is: "provider/action" or "?". */
void dlq_entry_what(const dlq_entry *e, char *buf, size_t size);

#endif
