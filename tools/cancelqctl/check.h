/*
 * check.h - what `cancelqctl check` (check.c) and its probes of the
 * results stream, the pauses and the breakers (check_probe.c) share.
 */
#ifndef CANCELQCTL_CHECK_H
#define CANCELQCTL_CHECK_H

#include <stdbool.h>

#include "ctl.h"
#include "dlq.h"

#define CHECK_PROBLEMS_MAX 32
#define CHECK_NOTES_MAX 8
#define CHECK_MSG_MAX 400

/* Severities are the exit statuses of monitoring plugins. */
typedef enum check_sev {
    CHECK_OK = 0,
    CHECK_WARNING = 1,
    CHECK_CRITICAL = 2,
    CHECK_UNKNOWN = 3,
} check_sev;

typedef struct check_problem {
    check_sev sev;
    char check[16]; /* "workers", "dead", "results", "pause", "breaker", "redis" */
    char msg[CHECK_MSG_MAX];
} check_problem;

typedef struct check_report {
    check_problem p[CHECK_PROBLEMS_MAX];
    size_t n;
    check_sev worst;
    char notes[CHECK_NOTES_MAX][CHECK_MSG_MAX]; /* what was not checked, and why */
    size_t nnotes;
    char since[24]; /* --since, as "5m00s" */
    bool measured;  /* the counts below were read (else no performance data) */
    /* performance data */
    long long jobs, retry, delayed, dead, dead_new, inflight, live, orphans;
    long long paused, breakers_open, backlog_max;
} check_report;

/* Record a problem (the worst severity is kept). */
void check_add(check_report *r, check_sev sev, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Record what could not be checked (does not change the status). */
void check_note(check_report *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Consumer groups of {P}:results within lag_warn entries of losing some to
 * MAXLEN trimming (backlog = lag + pending >= results_maxlen - lag_warn),
 * or that lost some already.  0, or -1 when Redis failed. */
int check_probe_groups(ctl *c, check_report *r, long long lag_warn);

/* {P}:pause:<provider> keys (a hash: until ms in Redis time, 0 = until
 * resumed; reason; by).  0, or -1 when Redis failed. */
int check_probe_pauses(ctl *c, check_report *r);

/* Each configured instance's {P}:limit:<instance> (Redis time): an open
 * breaker (open_until ahead), a half-open one (open_until passed, not yet
 * closed by a successful call) are WARNINGs; a 429 pause (pause_until
 * ahead) a note.  0, or -1 when Redis failed. */
int check_probe_limits(ctl *c, check_report *r);

#endif
