/*
 * stats.c - `cancelqctl stats`: one look at everything a job can be in
 * (jobs, inflight, delayed, dead), the outcome rate and the workers.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cancelq/envelope.h"
#include "dlq.h"
#include "workers.h"

#define RATE_WINDOW_MS 60000    /* "in the last minute" */
#define RATE_PAGE 1000          /* XRANGE page */
#define RATE_CAP 1000000LL      /* count at most this many entries of the window */
#define DEAD_SCAN_MAX 1000000LL /* dead letters read for the breakdown */
#define GROUPS_MAX 200          /* distinct provider/status pairs kept */
#define GROUP_NAME_MAX 64

typedef struct group {
    char provider[GROUP_NAME_MAX], status[GROUP_NAME_MAX];
    long long count;
} group;

typedef struct stats {
    long long jobs, retry, delayed, dead, results, last_minute;
    bool last_minute_capped;
    int64_t next_due_ms; /* 0 = nothing delayed */
    char next_job[CQ_JOB_ID_MAX + 1];
    int next_attempts;
    group groups[GROUPS_MAX];
    size_t ngroups;
    long long malformed, other, scanned;
    ctl_rgroup rg[CTL_RGROUPS_MAX]; /* the consumer groups of the results stream */
    size_t nrg;
    ctl_workers w;
} stats;

/* --- gathering ----------------------------------------------------------- */

static long long count_of(ctl *c, const char *cmd, const char *key)
{
    return ctl_int(ctl_cmd(c, 2, cmd, key), cmd);
}

/* The job id of a queue item (bare job or envelope), "" when unreadable. */
static void item_job_id(const char *item, size_t len, char *out, size_t size, int *attempts)
{
    cq_envelope env;
    cJSON *job;
    const cJSON *id;

    out[0] = '\0';
    *attempts = 0;
    if (cq_envelope_parse(item, len, &env) != 0)
        return;
    *attempts = env.attempts;
    job = cJSON_ParseWithLength(env.job, env.job_len);
    id = cJSON_GetObjectItemCaseSensitive(job, "id");
    if (cJSON_IsString(id))
        snprintf(out, size, "%s", id->valuestring);
    cJSON_Delete(job);
    cq_envelope_clear(&env);
}

static int next_due(ctl *c, stats *s)
{
    redisReply *r = ctl_cmd(c, 5, "ZRANGE", c->k.delayed, "0", "0", "WITHSCORES");
    int rc = -1;

    if (r == NULL)
        return -1;
    if (ctl_reply_is(r, REDIS_REPLY_ARRAY, "ZRANGE")) {
        if (r->elements == 2 && r->element[0]->type == REDIS_REPLY_STRING &&
            r->element[1]->type == REDIS_REPLY_STRING) {
            s->next_due_ms = (int64_t)strtod(r->element[1]->str, NULL);
            item_job_id(r->element[0]->str, r->element[0]->len, s->next_job, sizeof(s->next_job),
                        &s->next_attempts);
        }
        rc = 0;
    }
    freeReplyObject(r);
    return rc;
}

static int dead_visit(ctl *c, dlq_entry *e, void *data)
{
    stats *s = data;
    const char *p, *st;

    (void)c;
    s->scanned++;
    if (!e->valid) {
        s->malformed++;
        return DLQ_NEXT;
    }
    p = e->provider != NULL ? e->provider : "?";
    st = e->status;
    for (size_t i = 0; i < s->ngroups; i++) {
        if (strncmp(s->groups[i].provider, p, GROUP_NAME_MAX - 1) == 0 &&
            strncmp(s->groups[i].status, st, GROUP_NAME_MAX - 1) == 0) {
            s->groups[i].count++;
            return DLQ_NEXT;
        }
    }
    if (s->ngroups == GROUPS_MAX) {
        s->other++;
        return DLQ_NEXT;
    }
    snprintf(s->groups[s->ngroups].provider, GROUP_NAME_MAX, "%s", p);
    snprintf(s->groups[s->ngroups].status, GROUP_NAME_MAX, "%s", st);
    s->groups[s->ngroups++].count = 1;
    return DLQ_NEXT;
}

/* Entries of the results stream younger than a minute, in pages. */
static int last_minute(ctl *c, stats *s)
{
    char start[48], page[16];

    snprintf(page, sizeof(page), "%d", RATE_PAGE);
    snprintf(start, sizeof(start), "%lld", (long long)(ctl_now_ms(c) - RATE_WINDOW_MS));
    for (;;) {
        redisReply *r = ctl_cmd(c, 6, "XRANGE", c->k.results, start, "+", "COUNT", page);
        const redisReply *last;

        if (r == NULL)
            return -1;
        if (!ctl_reply_is(r, REDIS_REPLY_ARRAY, "XRANGE")) {
            freeReplyObject(r);
            return -1;
        }
        s->last_minute += (long long)r->elements;
        last = r->elements > 0 ? r->element[r->elements - 1] : NULL;
        if (last == NULL || r->elements < (size_t)RATE_PAGE || last->elements < 1 ||
            last->element[0]->type != REDIS_REPLY_STRING || s->last_minute >= RATE_CAP) {
            s->last_minute_capped = s->last_minute >= RATE_CAP;
            freeReplyObject(r);
            return 0;
        }
        snprintf(start, sizeof(start), "(%s", last->element[0]->str); /* exclusive */
        freeReplyObject(r);
    }
}

static int gather(ctl *c, stats *s)
{
    dlq_filter all = {.limit = DEAD_SCAN_MAX};
    bool stream;

    s->jobs = count_of(c, "LLEN", c->k.jobs);
    s->retry = count_of(c, "LLEN", c->k.retry);
    s->delayed = count_of(c, "ZCARD", c->k.delayed);
    s->dead = count_of(c, "LLEN", c->k.dead);
    s->results = count_of(c, "XLEN", c->k.results);
    if (s->jobs < 0 || s->retry < 0 || s->delayed < 0 || s->dead < 0 || s->results < 0)
        return -1;
    if (ctl_results_groups(c, s->rg, CTL_RGROUPS_MAX, &s->nrg, &stream) != 0 ||
        next_due(c, s) != 0 || last_minute(c, s) != 0 ||
        dlq_scan(c, &all, dead_visit, s, NULL) != 0 || ctl_workers_read(c, &s->w) != 0)
        return -1;
    return 0;
}

/* --- printing ------------------------------------------------------------ */

static void print_human(const ctl *c, const stats *s)
{
    char due[48] = "", age[24];

    printf("%-10s {%s} on redis %s\n", "prefix", c->cfg->redis.prefix, c->where);
    printf("%-10s %lld\n", "jobs", s->jobs);
    printf("%-10s %lld\n", "retry", s->retry);
    printf("%-10s %lld", "inflight", s->w.inflight);
    for (size_t i = 0; i < s->w.n; i++) {
        if (s->w.v[i].inflight > 0) {
            fputs("  ", stdout);
            out_cell(stdout, s->w.v[i].id, 0);
            printf(":%lld", s->w.v[i].inflight);
        }
    }
    printf("\n%-10s %lld", "delayed", s->delayed);
    if (s->next_due_ms > 0) {
        int64_t in = s->next_due_ms - ctl_now_ms(c);

        out_age(in < 0 ? -in : in, age, sizeof(age));
        snprintf(due, sizeof(due), in < 0 ? "overdue by %s" : "in %s", age);
        printf("  next due %s (job ", due);
        out_cell(stdout, s->next_job[0] != '\0' ? s->next_job : "?", 0);
        printf(", %d attempts so far)", s->next_attempts);
    }
    printf("\n%-10s %lld\n", "dead", s->dead);
    if (s->ngroups > 0 || s->malformed > 0) {
        printf("           %-20s %-12s %8s\n", "PROVIDER", "STATUS", "COUNT");
        for (size_t i = 0; i < s->ngroups; i++) {
            fputs("           ", stdout);
            out_cell(stdout, s->groups[i].provider, 20);
            putchar(' ');
            out_cell(stdout, s->groups[i].status, 12);
            printf(" %8lld\n", s->groups[i].count);
        }
        if (s->other > 0)
            printf("           %-20s %-12s %8lld\n", "(other)", "", s->other);
        if (s->malformed > 0)
            printf("           %-20s %-12s %8lld  not dead-letter entries\n", "?", "?",
                   s->malformed);
        if (s->scanned < s->dead)
            printf("           (breakdown of the oldest %lld)\n", s->scanned);
    }
    printf("%-10s %lld entries, %s%lld in the last minute (%.2f/s)\n", "results", s->results,
           s->last_minute_capped ? ">=" : "", s->last_minute,
           (double)s->last_minute / (RATE_WINDOW_MS / 1000.0));
    for (size_t i = 0; i < s->nrg; i++)
        printf("           group %s: lag %lld, pending %lld%s\n", s->rg[i].name, s->rg[i].lag,
               s->rg[i].pending,
               s->rg[i].lost ? "  LOST ENTRIES to trimming (results_trim = acked keeps them)" : "");
    printf("%-10s %zu live, %zu dead, %zu orphaned inflight lists\n", "workers", s->w.live,
           s->w.dead, s->w.orphans);
    ctl_workers_print(c, &s->w);
}

static cJSON *groups_json(const stats *s)
{
    cJSON *arr = cJSON_CreateArray();

    for (size_t i = 0; arr != NULL && i < s->ngroups; i++) {
        cJSON *o = cJSON_CreateObject();

        if (o == NULL || !cJSON_AddItemToArray(arr, o)) {
            cJSON_Delete(o);
            cJSON_Delete(arr);
            return NULL;
        }
        if (cJSON_AddStringToObject(o, "provider", s->groups[i].provider) == NULL ||
            cJSON_AddStringToObject(o, "status", s->groups[i].status) == NULL ||
            cJSON_AddNumberToObject(o, "count", (double)s->groups[i].count) == NULL) {
            cJSON_Delete(arr);
            return NULL;
        }
    }
    return arr;
}

static cJSON *stats_json(const ctl *c, const stats *s)
{
    cJSON *o = cJSON_CreateObject(), *d, *dead, *res, *x;

    if (o == NULL || cJSON_AddStringToObject(o, "prefix", c->cfg->redis.prefix) == NULL ||
        cJSON_AddNumberToObject(o, "jobs", (double)s->jobs) == NULL ||
        cJSON_AddNumberToObject(o, "retry", (double)s->retry) == NULL ||
        cJSON_AddNumberToObject(o, "inflight", (double)s->w.inflight) == NULL)
        goto fail;
    d = cJSON_AddObjectToObject(o, "delayed");
    if (d == NULL || cJSON_AddNumberToObject(d, "count", (double)s->delayed) == NULL ||
        (s->next_due_ms > 0 ? cJSON_AddNumberToObject(d, "next_due_ms", (double)s->next_due_ms)
                            : cJSON_AddNullToObject(d, "next_due_ms")) == NULL ||
        (s->next_due_ms > 0 ? cJSON_AddStringToObject(d, "next_job_id", s->next_job)
                            : cJSON_AddNullToObject(d, "next_job_id")) == NULL)
        goto fail;
    dead = cJSON_AddObjectToObject(o, "dead");
    if (dead == NULL || cJSON_AddNumberToObject(dead, "count", (double)s->dead) == NULL ||
        cJSON_AddNumberToObject(dead, "malformed", (double)s->malformed) == NULL ||
        cJSON_AddNumberToObject(dead, "scanned", (double)s->scanned) == NULL)
        goto fail;
    x = groups_json(s);
    if (x == NULL || !cJSON_AddItemToObject(dead, "by_provider_status", x)) {
        cJSON_Delete(x);
        goto fail;
    }
    res = cJSON_AddObjectToObject(o, "results");
    if (res == NULL || cJSON_AddNumberToObject(res, "length", (double)s->results) == NULL ||
        cJSON_AddNumberToObject(res, "last_minute", (double)s->last_minute) == NULL ||
        cJSON_AddBoolToObject(res, "last_minute_capped", s->last_minute_capped) == NULL ||
        (x = cJSON_AddArrayToObject(res, "groups")) == NULL)
        goto fail;
    for (size_t i = 0; i < s->nrg; i++) {
        cJSON *g = cJSON_CreateObject();

        if (g == NULL || !cJSON_AddItemToArray(x, g) ||
            cJSON_AddStringToObject(g, "name", s->rg[i].name) == NULL ||
            cJSON_AddNumberToObject(g, "lag", (double)s->rg[i].lag) == NULL ||
            cJSON_AddNumberToObject(g, "pending", (double)s->rg[i].pending) == NULL ||
            cJSON_AddBoolToObject(g, "lost", s->rg[i].lost) == NULL)
            goto fail;
    }
    x = ctl_workers_summary(c, &s->w);
    if (x == NULL || !cJSON_AddItemToObject(o, "workers", x)) {
        cJSON_Delete(x);
        goto fail;
    }
    return o;
fail:
    cJSON_Delete(o);
    return NULL;
}

int cmd_stats(ctl *c, int argc, char **argv)
{
    stats *s;
    bool json = false;
    int rc = ctl_parse_plain(c, argc, argv, "stats", &json);

    if (rc >= 0)
        return rc;
    rc = CTL_ERR;
    if (ctl_open(c) != 0)
        return CTL_ERR;
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        fprintf(stderr, "%s: out of memory\n", c->prog);
        return CTL_ERR;
    }
    if (gather(c, s) == 0) {
        if (!json) {
            print_human(c, s);
            rc = CTL_OK;
        } else {
            cJSON *o = stats_json(c, s);

            if (o != NULL && out_json(stdout, o, true) == 0)
                rc = CTL_OK;
            else
                fprintf(stderr, "%s: out of memory\n", c->prog);
            cJSON_Delete(o);
        }
    }
    ctl_workers_free(&s->w);
    free(s);
    return rc;
}
