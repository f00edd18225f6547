/*
 * check_probe.c - the probes of `cancelqctl check` (check.h) that read
 * more than a count: the consumer groups of {P}:results, the operators'
 * provider pauses, and each instance's deployment-wide state in
 * {P}:limit:<instance> (an open breaker, a 429 pause; limit.lua).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cancelq/rfc3339.h"
#include "check.h"

#define PAGE 1000     /* XRANGE page when Redis has no lag figure */
#define NAME_MAX_ 128 /* a provider or group name in a message */

/* --- stream ids ---------------------------------------------------------- */

typedef struct sid {
    uint64_t ms, seq;
} sid;

static bool sid_parse(const char *s, sid *out)
{
    char *end = NULL;

    out->ms = strtoull(s, &end, 10);
    if (end == s || (*end != '-' && *end != '\0'))
        return false;
    out->seq = *end == '-' ? strtoull(end + 1, NULL, 10) : 0;
    return true;
}

static bool sid_less(sid a, sid b)
{
    return a.ms < b.ms || (a.ms == b.ms && a.seq < b.seq);
}

/* --- consumer groups ----------------------------------------------------- */

/* Field `name` of a flat field/value reply, or NULL. */
static const redisReply *fv_get(const redisReply *fv, const char *name)
{
    for (size_t i = 0; fv->type == REDIS_REPLY_ARRAY && i + 1 < fv->elements; i += 2)
        if (fv->element[i]->type == REDIS_REPLY_STRING && strcmp(fv->element[i]->str, name) == 0)
            return fv->element[i + 1];
    return NULL;
}

static long long fv_int(const redisReply *fv, const char *name, long long dflt)
{
    const redisReply *v = fv_get(fv, name);

    return v != NULL && v->type == REDIS_REPLY_INTEGER ? v->integer : dflt;
}

/* Entries after id, counted in pages up to cap (Redis 7 gives a group's
 * lag itself unless deletions make it unknown). */
static long long count_after(ctl *c, const char *id, long long cap)
{
    char start[80], page[16];
    long long n = 0;

    snprintf(start, sizeof(start), "(%s", id);
    snprintf(page, sizeof(page), "%d", PAGE);
    while (n < cap) {
        redisReply *r = ctl_cmd(c, 6, "XRANGE", c->k.results, start, "+", "COUNT", page);
        const redisReply *last;

        if (r == NULL || !ctl_reply_is(r, REDIS_REPLY_ARRAY, "XRANGE")) {
            freeReplyObject(r);
            return -1;
        }
        n += (long long)r->elements;
        last = r->elements > 0 ? r->element[r->elements - 1] : NULL;
        if (last == NULL || r->elements < PAGE || last->type != REDIS_REPLY_ARRAY ||
            last->elements < 1 || last->element[0]->type != REDIS_REPLY_STRING) {
            freeReplyObject(r);
            break;
        }
        snprintf(start, sizeof(start), "(%s", last->element[0]->str);
        freeReplyObject(r);
    }
    return n;
}

/* The oldest pending entry of a group (XPENDING summary), or false. */
static int oldest_pending(ctl *c, const char *group, sid *out, bool *has)
{
    redisReply *r = ctl_cmd(c, 3, "XPENDING", c->k.results, group);

    *has = false;
    if (r == NULL)
        return -1;
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 2 &&
        r->element[1]->type == REDIS_REPLY_STRING)
        *has = sid_parse(r->element[1]->str, out);
    freeReplyObject(r);
    return 0;
}

/* The first entry's id, and entries-added, of the stream. */
static int stream_info(ctl *c, sid *first, long long *added, long long *len)
{
    redisReply *r = ctl_cmd(c, 3, "XINFO", "STREAM", c->k.results);
    const redisReply *fe, *ea;
    int rc = -1;

    if (r == NULL)
        return -1;
    if (ctl_reply_is(r, REDIS_REPLY_ARRAY, "XINFO STREAM")) {
        *len = fv_int(r, "length", 0);
        ea = fv_get(r, "entries-added");
        *added = ea != NULL && ea->type == REDIS_REPLY_INTEGER ? ea->integer : -1;
        fe = fv_get(r, "first-entry");
        first->ms = first->seq = 0;
        if (fe != NULL && fe->type == REDIS_REPLY_ARRAY && fe->elements >= 1 &&
            fe->element[0]->type == REDIS_REPLY_STRING)
            sid_parse(fe->element[0]->str, first);
        rc = 0;
    }
    freeReplyObject(r);
    return rc;
}

/* One group as ctl_rgroup: its lag (counted when Redis does not know
 * it), pending entries, and whether it lost entries to trimming (Redis 7
 * counts entries-added; a group's lag and entries-read may be unknown
 * after deletions). 1 when g is a group, 0 when not, -1 on an error. */
static int read_group(ctl *c, const redisReply *g, sid first, long long len, long long added,
                      ctl_rgroup *out)
{
    const redisReply *nm = fv_get(g, "name"), *ld = fv_get(g, "last-delivered-id");
    const redisReply *lg = fv_get(g, "lag"), *er = fv_get(g, "entries-read");
    sid oldest, delivered;
    bool has;

    if (nm == NULL || nm->type != REDIS_REPLY_STRING || ld == NULL ||
        ld->type != REDIS_REPLY_STRING)
        return 0;
    out_escape(out->name, sizeof(out->name), nm->str, nm->len, 64);
    out->pending = fv_int(g, "pending", 0);
    if (lg != NULL && lg->type == REDIS_REPLY_INTEGER)
        out->lag = lg->integer;
    else if ((out->lag = count_after(c, ld->str, c->cfg->worker.results_maxlen)) < 0)
        return -1;
    if (oldest_pending(c, nm->str, &oldest, &has) != 0)
        return -1;
    /* lost: a pending entry is gone; more was added than the group read
     * and the stream still holds; or the group is behind the first entry
     * of a stream that has shed entries */
    out->lost = (has && sid_less(oldest, first)) ||
                (added >= 0 && er != NULL && er->type == REDIS_REPLY_INTEGER &&
                 added - er->integer > len) ||
                (added > len && sid_parse(ld->str, &delivered) && sid_less(delivered, first));
    return 1;
}

int ctl_results_groups(ctl *c, ctl_rgroup *v, size_t max, size_t *n, bool *stream)
{
    redisReply *t = ctl_cmd(c, 2, "TYPE", c->k.results), *g;
    long long added = -1, len = 0;
    sid first;
    int rc = 0;

    *n = 0;
    *stream = false;
    if (t == NULL)
        return -1;
    if (t->type != REDIS_REPLY_STATUS || strcmp(t->str, "stream") != 0) {
        freeReplyObject(t);
        return 0;
    }
    freeReplyObject(t);
    *stream = true;
    if (stream_info(c, &first, &added, &len) != 0)
        return -1;
    g = ctl_cmd(c, 3, "XINFO", "GROUPS", c->k.results);
    if (g == NULL || !ctl_reply_is(g, REDIS_REPLY_ARRAY, "XINFO GROUPS")) {
        freeReplyObject(g);
        return -1;
    }
    for (size_t i = 0; i < g->elements && *n < max && rc >= 0; i++) {
        rc = read_group(c, g->element[i], first, len, added, &v[*n]);
        if (rc > 0)
            (*n)++;
    }
    freeReplyObject(g);
    return rc < 0 ? -1 : 0;
}

int check_probe_groups(ctl *c, check_report *r, long long lag_warn)
{
    ctl_rgroup v[CTL_RGROUPS_MAX];
    long long maxlen = c->cfg->worker.results_maxlen;
    size_t n;
    bool stream;
    redisReply *t;

    if (ctl_results_groups(c, v, CTL_RGROUPS_MAX, &n, &stream) != 0)
        return -1;
    if (!stream) {
        if ((t = ctl_cmd(c, 2, "TYPE", c->k.results)) == NULL)
            return -1;
        if (t->type == REDIS_REPLY_STATUS && strcmp(t->str, "none") != 0)
            check_add(r, CHECK_WARNING, "results", "%s is a %s, not a stream", c->k.results,
                      t->str);
        freeReplyObject(t);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        long long back = v[i].lag + v[i].pending;

        if (v[i].lost)
            check_add(r, CHECK_WARNING, "results",
                      "consumer group '%s' of %s lost entries to trimming (results_maxlen %lld): "
                      "%lld undelivered, %lld pending",
                      v[i].name, c->k.results, maxlen, v[i].lag, v[i].pending);
        else if (back >= maxlen - lag_warn)
            check_add(r, CHECK_WARNING, "results",
                      "consumer group '%s' of %s is %lld entries behind (%lld undelivered, %lld "
                      "pending), within %lld of results_maxlen %lld: %s",
                      v[i].name, c->k.results, back, v[i].lag, v[i].pending, maxlen - back, maxlen,
                      c->cfg->worker.results_trim == CQ_TRIM_ACKED
                          ? "the stream grows past it while the group is behind (results_trim = "
                            "acked)"
                          : "its oldest are trimmed next");
        if (back > r->backlog_max)
            r->backlog_max = back;
    }
    if (n == 0)
        check_note(r, "%s has no consumer group: nothing to check for lost entries", c->k.results);
    return 0;
}

/* --- pauses -------------------------------------------------------------- */

static int judge_pause(ctl *c, const redisReply *key, const char *rest, size_t rest_len, void *data)
{
    check_report *r = data;

    redisReply *h = ctl_cmd(c, 2, "HGETALL", key->str);
    const redisReply *until, *reason, *by;
    char prov[NAME_MAX_ + 8], why[CHECK_MSG_MAX / 2] = "", who[NAME_MAX_ + 8] = "", when[96];
    int64_t ms = 0, now = ctl_now_ms(c);

    if (h == NULL)
        return -1;
    out_escape(prov, sizeof(prov), rest, rest_len, 64);
    until = fv_get(h, "until");
    reason = fv_get(h, "reason");
    by = fv_get(h, "by");
    if (until != NULL && until->type == REDIS_REPLY_STRING)
        ms = strtoll(until->str, NULL, 10);
    if (reason != NULL && reason->type == REDIS_REPLY_STRING)
        out_escape(why, sizeof(why), reason->str, reason->len, 120);
    if (by != NULL && by->type == REDIS_REPLY_STRING)
        out_escape(who, sizeof(who), by->str, by->len, 64);
    if (ms <= 0) {
        snprintf(when, sizeof(when), "until resumed");
    } else {
        char t[32], in[24];

        cq_format_rfc3339(ms, t);
        out_age(ms > now ? ms - now : now - ms, in, sizeof(in));
        snprintf(when, sizeof(when), ms > now ? "until %s (%s from now)" : "until %s (%s ago)", t,
                 in);
    }
    check_add(r, CHECK_WARNING, "pause", "provider %s paused %s%s%s%s%s", prov, when,
              why[0] != '\0' ? ", reason: " : "", why, who[0] != '\0' ? ", by " : "", who);
    r->paused++;
    freeReplyObject(h);
    return 0;
}

int check_probe_pauses(ctl *c, check_report *r)
{
    return ctl_scan_keys(c, "pause:*", judge_pause, r) < 0 ? -1 : 0;
}

/* --- breakers and 429 pauses ---------------------------------------------- */

int check_probe_limits(ctl *c, check_report *r)
{
    int64_t now = ctl_now_ms(c);

    for (size_t i = 0; i < c->cfg->nproviders; i++) {
        const char *name = c->cfg->providers[i].name;
        char key[CQ_KEY_MAX], by[NAME_MAX_ + 8] = "", left[24];
        int64_t open_until, pause_until;
        redisReply *h;

        if (cq_keys_limit(&c->k, name, key, sizeof(key)) != 0)
            continue;
        h = ctl_cmd(c, 5, "HMGET", key, "open_until", "opened_by", "pause_until");
        if (h == NULL || !ctl_reply_is(h, REDIS_REPLY_ARRAY, "HMGET") || h->elements != 3) {
            freeReplyObject(h);
            return -1;
        }
        open_until =
            h->element[0]->type == REDIS_REPLY_STRING ? strtoll(h->element[0]->str, NULL, 10) : 0;
        pause_until =
            h->element[2]->type == REDIS_REPLY_STRING ? strtoll(h->element[2]->str, NULL, 10) : 0;
        if (h->element[1]->type == REDIS_REPLY_STRING)
            out_escape(by, sizeof(by), h->element[1]->str, h->element[1]->len, 64);
        freeReplyObject(h);
        if (open_until > now) {
            out_age(open_until - now, left, sizeof(left));
            check_add(r, CHECK_WARNING, "breaker", "circuit breaker of %s is open (%s more%s%s)",
                      name, left, by[0] != '\0' ? ", opened by " : "", by);
            r->breakers_open++;
        } else if (open_until > 0) {
            check_add(r, CHECK_WARNING, "breaker",
                      "circuit breaker of %s is half-open (its cooldown is over; the next "
                      "call decides)",
                      name);
            r->breakers_open++;
        }
        if (pause_until > now) {
            out_age(pause_until - now, left, sizeof(left));
            check_note(r, "%s is held back by a 429 with Retry-After for %s more", name, left);
        }
    }
    return 0;
}
