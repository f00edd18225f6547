/*
 * top.h - what `cancelqctl top` gathers each second (top_data.c) and draws
 * (top.c).
 */
#ifndef CANCELQCTL_TOP_H
#define CANCELQCTL_TOP_H

#include <stdbool.h>
#include <stdint.h>

#include "ctl.h"
#include "workers.h"

#define TOP_WINDOW_MS 60000    /* outcomes counted over the last minute */
#define TOP_RATE_MS 10000      /* jobs/s over the last ten seconds */
#define TOP_GROUPS_MAX 128     /* provider/status pairs tracked */
#define TOP_NAME_MAX 48        /* a provider or status name, escaped and cut */
#define TOP_LAST_MAX 10        /* last outcomes kept */
#define TOP_LINE_MAX 320       /* one outcome line, escaped */
#define TOP_PAUSES_MAX 16      /* pauses shown */
#define TOP_EVENTS_MAX 2000000 /* outcomes remembered for the window (memory cap) */

typedef struct top_group {
    char provider[TOP_NAME_MAX], status[TOP_NAME_MAX];
    long long window, recent; /* outcomes in the last minute / ten seconds */
} top_group;

typedef struct top_event {
    int64_t ms;     /* the stream entry's time (Redis time at XADD) */
    uint32_t group; /* index into groups */
} top_event;

typedef struct top_data {
    int64_t now_ms;
    bool ok;         /* the last gathering reached Redis */
    char error[512]; /* why not */
    long long jobs, retry, delayed, dead, results;
    int64_t next_due_ms; /* 0: nothing delayed */
    ctl_workers w;       /* owned: freed at each gathering */
    bool have_workers;
    char pauses[TOP_PAUSES_MAX][TOP_LINE_MAX];
    size_t npauses, pauses_more;
    char limits[TOP_PAUSES_MAX][TOP_LINE_MAX]; /* breakers, 429 pauses ({P}:limit:*) */
    size_t nlimits;
    top_group groups[TOP_GROUPS_MAX];
    size_t ngroups;
    top_event *ev; /* outcomes of the window, oldest first (owned) */
    size_t nev, cap;
    char last_id[64];                      /* the last results entry read, "" before the first */
    char last[TOP_LAST_MAX][TOP_LINE_MAX]; /* ring of the latest outcomes */
    size_t nlast, last_pos;
    long long window_total, recent_total;
} top_data;

/* Read everything once (a failed read leaves ok false and error set;
 * ctl_connect is tried again at the next call).  0 or -ENOMEM. */
int top_gather(ctl *c, top_data *d);

/* Release what d owns. */
void top_data_free(top_data *d);

#endif
