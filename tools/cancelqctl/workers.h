/*
 * workers.h - who works on the queue: heartbeats ({P}:workers), inflight
 * hashes ({P}:inflight:<id>) and inflight hashes no heartbeat points to.
 * Shared by `workers` and `stats`.
 */
#ifndef CANCELQCTL_WORKERS_H
#define CANCELQCTL_WORKERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "ctl.h"

typedef struct ctl_worker {
    char *id;             /* owned, as stored (untrusted: escape to print) */
    bool orphan;          /* an inflight hash without a heartbeat entry */
    int64_t heartbeat_ms; /* last heartbeat, 0 for orphans */
    bool alive;           /* heartbeat within the lease */
    long long inflight;   /* HLEN of its inflight hash, -1 when unknown */
} ctl_worker;

typedef struct ctl_workers {
    ctl_worker *v; /* heartbeats oldest first, then orphans */
    size_t n, live, dead, orphans;
    long long inflight; /* sum over all */
    int64_t now_ms;
    uint64_t lease_ms;
} ctl_workers;

/* Read heartbeats, inflight counts and orphans.  0 or -1 (reported);
 * release with ctl_workers_free() either way. */
int ctl_workers_read(ctl *c, ctl_workers *w);
void ctl_workers_free(ctl_workers *w);

/* The warnings ops must act on, as a JSON array of strings (caller
 * deletes); NULL on ENOMEM. */
cJSON *ctl_workers_warnings(const ctl *c, const ctl_workers *w);

/* Print the table and the warnings (human form).  0 or -1 (reported). */
int ctl_workers_print(const ctl *c, const ctl_workers *w);

/* {"workers": [...], "warnings": [...], "lease_ms", "live", "dead",
 * "orphans", "inflight"} (caller deletes); NULL on ENOMEM. */
cJSON *ctl_workers_summary(const ctl *c, const ctl_workers *w);

/* The workers as a JSON array (caller deletes); NULL on ENOMEM. */
cJSON *ctl_workers_json(const ctl_workers *w);

#endif
