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
    int64_t fetched_ms;   /* orphans: last fetch in {P}:holders, 0 when none */
} ctl_worker;

typedef struct ctl_workers {
    ctl_worker *v; /* heartbeats oldest first, then orphans */
    size_t n, live, dead, orphans;
    size_t stranded;    /* orphans holding jobs that no worker will take back */
    long long inflight; /* sum over all */
    int64_t now_ms;
    uint64_t lease_ms;
} ctl_workers;

/* Read heartbeats, inflight counts and orphans.  0 or -1 (reported);
 * release with ctl_workers_free() either way. */
int ctl_workers_read(ctl *c, ctl_workers *w);
void ctl_workers_free(ctl_workers *w);

/* Exit status of `workers` (CTL_WORKERS_ALERT): no worker is alive, or
 * jobs are held that nothing will take back. */
#define CTL_WORKERS_ALERT 3

/* Does w call for CTL_WORKERS_ALERT? */
bool ctl_workers_alert(const ctl_workers *w);

/* "redis-cli -h HOST -p PORT [-n DB] [--askpass]" (or -s SOCKET) for the
 * configured Redis, shell-quoted, into buf. */
void ctl_redis_cli(const ctl *c, char *buf, size_t size);

/* s single-quoted for a POSIX shell into buf (cut to fit). */
void ctl_shell_quote(const char *s, char *buf, size_t size);

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
