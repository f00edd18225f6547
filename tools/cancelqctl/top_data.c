/*
 * top_data.c - what `cancelqctl top` shows, read once a second (top.h):
 * queue depths, workers, pauses, and the outcomes of the last minute, read
 * incrementally from {P}:results (XRANGE after the last entry seen) and
 * counted by provider and status.  Times are Redis time: a stream entry's
 * id is the Redis clock at XADD, and so is ctl_now_ms().
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cancelq/rfc3339.h"
#include "top.h"

#define PAGE "1000"       /* XRANGE page */
#define PAGES_PER_TICK 50 /* at most this many pages a second: the rest next time */

/* --- counts -------------------------------------------------------------- */

static int counts(ctl *c, top_data *d)
{
    redisReply *r;

    d->jobs = ctl_int(ctl_cmd(c, 2, "LLEN", c->k.jobs), "LLEN");
    d->retry = ctl_int(ctl_cmd(c, 2, "LLEN", c->k.retry), "LLEN");
    d->delayed = ctl_int(ctl_cmd(c, 2, "ZCARD", c->k.delayed), "ZCARD");
    d->dead = ctl_int(ctl_cmd(c, 2, "LLEN", c->k.dead), "LLEN");
    d->results = ctl_int(ctl_cmd(c, 2, "XLEN", c->k.results), "XLEN");
    if (d->jobs < 0 || d->retry < 0 || d->delayed < 0 || d->dead < 0 || d->results < 0)
        return -1;
    r = ctl_cmd(c, 5, "ZRANGE", c->k.delayed, "0", "0", "WITHSCORES");
    if (r == NULL)
        return -1;
    d->next_due_ms = 0;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[1]->type == REDIS_REPLY_STRING)
        d->next_due_ms = (int64_t)strtod(r->element[1]->str, NULL);
    freeReplyObject(r);
    return 0;
}

/* --- pauses -------------------------------------------------------------- */

static const char *hfield(const redisReply *h, const char *name)
{
    for (size_t i = 0; h->type == REDIS_REPLY_ARRAY && i + 1 < h->elements; i += 2)
        if (h->element[i]->type == REDIS_REPLY_STRING && strcmp(h->element[i]->str, name) == 0 &&
            h->element[i + 1]->type == REDIS_REPLY_STRING)
            return h->element[i + 1]->str;
    return NULL;
}

static int pause_line(ctl *c, const redisReply *key, const char *rest, size_t rest_len, void *data)
{
    top_data *d = data;

    redisReply *h = ctl_cmd(c, 2, "HGETALL", key->str);
    const char *until, *reason, *by;
    char prov[TOP_NAME_MAX], why[96] = "", who[TOP_NAME_MAX] = "", by_who[TOP_NAME_MAX + 8] = "";
    char when[64];
    int64_t ms;

    if (h == NULL)
        return -1;
    if (d->npauses == TOP_PAUSES_MAX) {
        d->pauses_more++;
        freeReplyObject(h);
        return 0;
    }
    out_escape(prov, sizeof(prov), rest, rest_len, 32);
    until = hfield(h, "until");
    reason = hfield(h, "reason");
    by = hfield(h, "by");
    ms = until != NULL ? strtoll(until, NULL, 10) : 0;
    if (reason != NULL)
        out_escape(why, sizeof(why), reason, strlen(reason), 60);
    if (by != NULL) {
        out_escape(who, sizeof(who), by, strlen(by), 32);
        snprintf(by_who, sizeof(by_who), " (by %s)", who);
    }
    if (ms <= 0) {
        snprintf(when, sizeof(when), "until resumed");
    } else {
        char age[24];

        out_age(ms > d->now_ms ? ms - d->now_ms : 0, age, sizeof(age));
        snprintf(when, sizeof(when), "for %s more", age);
    }
    snprintf(d->pauses[d->npauses++], TOP_LINE_MAX, "%s paused %s%s%s%s", prov, when,
             why[0] != '\0' ? ": " : "", why, by_who);
    freeReplyObject(h);
    return 0;
}

static int pauses(ctl *c, top_data *d)
{
    d->npauses = d->pauses_more = 0;
    return ctl_scan_keys(c, "pause:*", pause_line, d) < 0 ? -1 : 0;
}

/* --- breakers and 429 pauses ---------------------------------------------- */

static int limits(ctl *c, top_data *d)
{
    d->nlimits = 0;
    for (size_t i = 0; i < c->cfg->nproviders && d->nlimits < TOP_PAUSES_MAX; i++) {
        const char *name = c->cfg->providers[i].name;
        char key[CQ_KEY_MAX], by[TOP_NAME_MAX] = "", left[24];
        int64_t open_until = 0, pause_until = 0;
        redisReply *h;

        if (cq_keys_limit(&c->k, name, key, sizeof(key)) != 0)
            continue;
        h = ctl_cmd(c, 5, "HMGET", key, "open_until", "opened_by", "pause_until");
        if (h == NULL || h->type != REDIS_REPLY_ARRAY || h->elements != 3) {
            freeReplyObject(h);
            return -1;
        }
        if (h->element[0]->type == REDIS_REPLY_STRING)
            open_until = strtoll(h->element[0]->str, NULL, 10);
        if (h->element[1]->type == REDIS_REPLY_STRING)
            out_escape(by, sizeof(by), h->element[1]->str, h->element[1]->len, 32);
        if (h->element[2]->type == REDIS_REPLY_STRING)
            pause_until = strtoll(h->element[2]->str, NULL, 10);
        freeReplyObject(h);
        if (open_until > d->now_ms) {
            out_age(open_until - d->now_ms, left, sizeof(left));
            snprintf(d->limits[d->nlimits++], TOP_LINE_MAX, "%s breaker open (%s more%s%s)", name,
                     left, by[0] != '\0' ? ", opened by " : "", by);
        } else if (open_until > 0) {
            snprintf(d->limits[d->nlimits++], TOP_LINE_MAX,
                     "%s breaker half-open (the next call decides)", name);
        }
        if (pause_until > d->now_ms && d->nlimits < TOP_PAUSES_MAX) {
            out_age(pause_until - d->now_ms, left, sizeof(left));
            snprintf(d->limits[d->nlimits++], TOP_LINE_MAX, "%s held back by a 429 (%s more)", name,
                     left);
        }
    }
    return 0;
}

/* --- outcomes ------------------------------------------------------------ */

static const char *efield(const redisReply *fv, const char *name)
{
    return fv != NULL ? hfield(fv, name) : NULL;
}

static uint32_t group_of(top_data *d, const char *provider, const char *status)
{
    char p[TOP_NAME_MAX], s[TOP_NAME_MAX];

    out_escape(p, sizeof(p), provider, strlen(provider), 24);
    out_escape(s, sizeof(s), status, strlen(status), 16);
    for (size_t i = 0; i < d->ngroups; i++)
        if (strcmp(d->groups[i].provider, p) == 0 && strcmp(d->groups[i].status, s) == 0)
            return (uint32_t)i;
    if (d->ngroups == TOP_GROUPS_MAX) /* the last one takes the rest */
        return TOP_GROUPS_MAX - 1;
    snprintf(d->groups[d->ngroups].provider, TOP_NAME_MAX, "%s", p);
    snprintf(d->groups[d->ngroups].status, TOP_NAME_MAX, "%s", s);
    return (uint32_t)d->ngroups++;
}

/* "10:00:01.120 succeeded keliweb/cancel_service inv-1 http=200 35ms error" */
static void remember(top_data *d, int64_t ms, const redisReply *fv)
{
    const char *st = efield(fv, "status"), *pv = efield(fv, "provider");
    const char *ac = efield(fv, "action"), *id = efield(fv, "id");
    const char *http = efield(fv, "http_status"), *dur = efield(fv, "duration_ms");
    const char *err = efield(fv, "error");
    char when[32], raw[TOP_LINE_MAX], *line = d->last[d->last_pos];

    cq_format_rfc3339(ms, when);
    snprintf(raw, sizeof(raw), "%-12.12s %-12s %s/%s %s http=%s %sms%s%s", when + 11,
             st != NULL ? st : "?", pv != NULL ? pv : "?", ac != NULL ? ac : "?",
             id != NULL ? id : "?", http != NULL ? http : "?", dur != NULL ? dur : "?",
             err != NULL && err[0] != '\0' ? " " : "", err != NULL ? err : "");
    out_escape(line, TOP_LINE_MAX, raw, strlen(raw), TOP_LINE_MAX / 2);
    d->last_pos = (d->last_pos + 1) % TOP_LAST_MAX;
    if (d->nlast < TOP_LAST_MAX)
        d->nlast++;
}

static int add_event(top_data *d, int64_t ms, uint32_t g)
{
    if (d->nev == d->cap) {
        size_t cap = d->cap == 0 ? 1024 : d->cap * 2;
        top_event *v;

        if (cap > TOP_EVENTS_MAX) {
            if (d->nev == 0)
                return 0;
            /* over the cap: forget the oldest half (the counts read low) */
            memmove(d->ev, d->ev + d->nev / 2, (d->nev - d->nev / 2) * sizeof(*d->ev));
            d->nev -= d->nev / 2;
        } else {
            v = realloc(d->ev, cap * sizeof(*v));
            if (v == NULL)
                return -ENOMEM;
            d->ev = v;
            d->cap = cap;
        }
    }
    d->ev[d->nev++] = (top_event){.ms = ms, .group = g};
    return 0;
}

/* New entries since the last one read (the last minute at the start). */
static int read_outcomes(ctl *c, top_data *d)
{
    char start[80];

    if (d->last_id[0] != '\0')
        snprintf(start, sizeof(start), "(%s", d->last_id);
    else
        snprintf(start, sizeof(start), "%lld", (long long)(d->now_ms - TOP_WINDOW_MS));
    for (int page = 0; page < PAGES_PER_TICK; page++) {
        redisReply *r = ctl_cmd(c, 6, "XRANGE", c->k.results, start, "+", "COUNT", PAGE);
        size_t n;

        if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(r);
            return -1;
        }
        n = r->elements;
        for (size_t i = 0; i < n; i++) {
            const redisReply *e = r->element[i], *fv;
            const char *pv, *st;
            int64_t ms;

            if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
                e->element[0]->type != REDIS_REPLY_STRING)
                continue;
            snprintf(d->last_id, sizeof(d->last_id), "%s", e->element[0]->str);
            fv = e->element[1];
            ms = strtoll(e->element[0]->str, NULL, 10);
            pv = efield(fv, "provider");
            st = efield(fv, "status");
            if (pv != NULL && pv[0] == '\0')
                pv = NULL; /* an invalid job names none: "?" */
            if (add_event(d, ms, group_of(d, pv != NULL ? pv : "?", st != NULL ? st : "?")) != 0) {
                freeReplyObject(r);
                return -ENOMEM;
            }
            remember(d, ms, fv);
        }
        freeReplyObject(r);
        if (n < 1000)
            break;
        snprintf(start, sizeof(start), "(%s", d->last_id);
    }
    return 0;
}

/* Drop what left the window; count the rest by group. */
static void recount(top_data *d)
{
    int64_t cutoff = d->now_ms - TOP_WINDOW_MS, recent = d->now_ms - TOP_RATE_MS;
    size_t keep = 0;

    while (keep < d->nev && d->ev[keep].ms < cutoff)
        keep++;
    if (keep > 0) /* memmove of a NULL array (no outcome yet) is undefined, even for 0 bytes */
        memmove(d->ev, d->ev + keep, (d->nev - keep) * sizeof(*d->ev));
    d->nev -= keep;
    for (size_t i = 0; i < d->ngroups; i++)
        d->groups[i].window = d->groups[i].recent = 0;
    d->window_total = d->recent_total = 0;
    for (size_t i = 0; i < d->nev; i++) {
        top_group *g = &d->groups[d->ev[i].group];

        g->window++;
        d->window_total++;
        if (d->ev[i].ms >= recent) {
            g->recent++;
            d->recent_total++;
        }
    }
}

/* --- the whole look ------------------------------------------------------ */

int top_gather(ctl *c, top_data *d)
{
    int rc;

    if (c->broken && c->rc != NULL) {
        redisFree(c->rc);
        c->rc = NULL;
    }
    if (c->rc == NULL && ctl_connect(c) != 0) {
        d->ok = false;
        snprintf(d->error, sizeof(d->error), "%s", c->error);
        return 0;
    }
    d->now_ms = ctl_now_ms(c);
    if (d->have_workers)
        ctl_workers_free(&d->w);
    d->have_workers = true;
    rc = counts(c, d) == 0 && ctl_workers_read(c, &d->w) == 0 && pauses(c, d) == 0 &&
                 limits(c, d) == 0
             ? 0
             : -1;
    if (rc == 0)
        rc = read_outcomes(c, d);
    if (rc == -ENOMEM)
        return -ENOMEM;
    recount(d);
    d->ok = rc == 0;
    if (!d->ok)
        snprintf(d->error, sizeof(d->error), "%s",
                 c->error[0] != '\0' ? c->error : "unexpected reply from Redis");
    return 0;
}

void top_data_free(top_data *d)
{
    if (d->have_workers)
        ctl_workers_free(&d->w);
    d->have_workers = false;
    free(d->ev);
    d->ev = NULL;
    d->nev = d->cap = 0;
}
