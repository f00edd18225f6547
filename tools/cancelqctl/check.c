/*
 * check.c - `cancelqctl check`: one look for a monitoring system, in the
 * monitoring-plugin convention (Nagios, Icinga, Sensu, ...): exit 0 OK,
 * 1 WARNING, 2 CRITICAL, 3 UNKNOWN (bad command line, unreadable config),
 * and one line on stdout,
 *
 *   CANCELQ WARNING - 4 dead letters in the last 5m (more than 0) | jobs=0 ...
 *
 * with performance data after the '|'.  --json gives the same as an
 * object.
 *
 * CRITICAL: Redis does not answer (as Redis); no worker is alive.
 * WARNING: orphaned inflight hashes; more than --dead-warn dead letters
 * in the last --since; a consumer group of {P}:results within --lag-warn
 * entries of losing some to the stream's trimming (results_maxlen), or
 * that has lost some; a paused provider ({P}:pause:<provider>); an open
 * (or half-open) circuit breaker ({P}:limit:<provider>, shared by every
 * worker).  The probes of the stream, the pauses and the breakers are in
 * check_probe.c.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "workers.h"

#define DEFAULT_SINCE_MS (5 * 60 * 1000ULL) /* --since: a usual check interval */
#define DEAD_CHUNK 200                      /* LRANGE page of the newest dead letters */
#define DEAD_COUNT_MAX 1000000LL            /* counted at most */

static const char *const sev_names[] = {"OK", "WARNING", "CRITICAL", "UNKNOWN"};

void check_add(check_report *r, check_sev sev, const char *name, const char *fmt, ...)
{
    check_problem *p;
    va_list ap;

    if (r->n == CHECK_PROBLEMS_MAX)
        return;
    p = &r->p[r->n++];
    p->sev = sev;
    snprintf(p->check, sizeof(p->check), "%s", name);
    va_start(ap, fmt);
    vsnprintf(p->msg, sizeof(p->msg), fmt, ap);
    va_end(ap);
    if (sev > r->worst)
        r->worst = sev;
}

void check_note(check_report *r, const char *fmt, ...)
{
    va_list ap;

    if (r->nnotes == CHECK_NOTES_MAX)
        return;
    va_start(ap, fmt);
    vsnprintf(r->notes[r->nnotes++], sizeof(r->notes[0]), fmt, ap);
    va_end(ap);
}

/* --- probes -------------------------------------------------------------- */

static void redis_lost(ctl *c, check_report *r)
{
    check_add(r, CHECK_CRITICAL, "redis", "%s",
              c->error[0] != '\0' ? c->error : "redis: the connection failed");
}

static int count(ctl *c, const char *cmd, const char *key, long long *out)
{
    *out = ctl_int(ctl_cmd(c, 2, cmd, key), cmd);
    return *out < 0 ? -1 : 0;
}

static int probe_workers(ctl *c, check_report *r)
{
    ctl_workers w;
    long long held = 0;
    int rc = ctl_workers_read(c, &w);

    if (rc == 0) {
        r->live = (long long)w.live;
        r->orphans = (long long)w.orphans;
        r->inflight = w.inflight;
        if (w.live == 0 && w.dead > 0)
            check_add(r, CHECK_CRITICAL, "workers",
                      "no live worker (%zu registered, silent past the lease)", w.dead);
        else if (w.live == 0)
            check_add(r, CHECK_CRITICAL, "workers", "no live worker");
        for (size_t i = 0; i < w.n; i++)
            if (w.v[i].orphan && w.v[i].inflight > 0)
                held += w.v[i].inflight;
        if (held > 0)
            check_add(r, CHECK_WARNING, "orphans",
                      "%zu orphaned inflight hash(es) holding %lld job(s)%s%s%s (cancelqctl "
                      "workers)",
                      w.orphans, held, w.stranded > 0 ? ", some with no " : "",
                      w.stranded > 0 ? c->k.holders : "",
                      w.stranded > 0 ? " entry: nothing takes them back" : "");
    }
    ctl_workers_free(&w);
    return rc;
}

/* Dead letters younger than since: read from the newest end (LPUSH) until
 * an entry is older; entries without a time are skipped. */
static int probe_dead(ctl *c, check_report *r, uint64_t since_ms, long long warn)
{
    int64_t cutoff = ctl_now_ms(c) - (int64_t)since_ms;
    char start[32], stop[32], since[24];

    r->dead_new = 0;
    for (long long off = 0; r->dead_new < DEAD_COUNT_MAX; off += DEAD_CHUNK) {
        redisReply *x;
        bool older = false;

        snprintf(start, sizeof(start), "%lld", off);
        snprintf(stop, sizeof(stop), "%lld", off + DEAD_CHUNK - 1);
        x = ctl_cmd(c, 4, "LRANGE", c->k.dead, start, stop);
        if (x == NULL || !ctl_reply_is(x, REDIS_REPLY_ARRAY, "LRANGE")) {
            freeReplyObject(x);
            return -1;
        }
        for (size_t i = 0; i < x->elements && !older; i++) {
            dlq_entry e;

            if (x->element[i]->type != REDIS_REPLY_STRING)
                continue;
            dlq_entry_parse(&e, x->element[i]->str, x->element[i]->len, -1);
            if (e.failed_at_ms > 0 && e.failed_at_ms < cutoff)
                older = true;
            else if (e.failed_at_ms > 0)
                r->dead_new++;
            dlq_entry_clear(&e);
        }
        if (older || x->elements < DEAD_CHUNK) {
            freeReplyObject(x);
            break;
        }
        freeReplyObject(x);
    }
    out_age((int64_t)since_ms, since, sizeof(since));
    snprintf(r->since, sizeof(r->since), "%s", since);
    if (r->dead_new > warn)
        check_add(r, CHECK_WARNING, "dead", "%lld dead letter(s) in the last %s (more than %lld)",
                  r->dead_new, since, warn);
    return 0;
}

/* --- output -------------------------------------------------------------- */

static void perfdata(FILE *f, const check_report *r)
{
    fprintf(
        f,
        "jobs=%lld retry=%lld delayed=%lld dead=%lld dead_new=%lld inflight=%lld workers_live=%lld "
        "orphans=%lld paused=%lld breakers_open=%lld results_backlog_max=%lld",
        r->jobs, r->retry, r->delayed, r->dead, r->dead_new, r->inflight, r->live, r->orphans,
        r->paused, r->breakers_open, r->backlog_max);
}

/* The problems, worst first, "; " between them. */
static void summary(const check_report *r, char *buf, size_t size)
{
    size_t o = 0;

    buf[0] = '\0';
    for (int sev = CHECK_UNKNOWN; sev > CHECK_OK; sev--) {
        for (size_t i = 0; i < r->n; i++) {
            int w;

            if ((int)r->p[i].sev != sev)
                continue;
            w = snprintf(buf + o, size - o, "%s%s", o > 0 ? "; " : "", r->p[i].msg);
            if (w < 0 || (size_t)w >= size - o)
                return;
            o += (size_t)w;
        }
    }
    if (o == 0)
        snprintf(buf, size,
                 "%lld live worker(s); jobs %lld, delayed %lld, dead %lld (%lld new in %s)",
                 r->live, r->jobs, r->delayed, r->dead, r->dead_new, r->since);
}

static int print_json(const check_report *r, const char *text)
{
    cJSON *o = cJSON_CreateObject(), *arr, *m, *notes;
    int rc = -1;

    if (o == NULL || cJSON_AddStringToObject(o, "status", sev_names[r->worst]) == NULL ||
        cJSON_AddNumberToObject(o, "exit", r->worst) == NULL ||
        cJSON_AddStringToObject(o, "summary", text) == NULL ||
        (arr = cJSON_AddArrayToObject(o, "problems")) == NULL ||
        (m = cJSON_AddObjectToObject(o, "metrics")) == NULL ||
        (notes = cJSON_AddArrayToObject(o, "notes")) == NULL)
        goto out;
    for (size_t i = 0; i < r->n; i++) {
        cJSON *p = cJSON_CreateObject();

        if (p == NULL || !cJSON_AddItemToArray(arr, p) ||
            cJSON_AddStringToObject(p, "severity", sev_names[r->p[i].sev]) == NULL ||
            cJSON_AddStringToObject(p, "check", r->p[i].check) == NULL ||
            cJSON_AddStringToObject(p, "message", r->p[i].msg) == NULL)
            goto out;
    }
    for (size_t i = 0; i < r->nnotes; i++)
        if (!cJSON_AddItemToArray(notes, cJSON_CreateString(r->notes[i])))
            goto out;
    if (!r->measured) {
        cJSON_DeleteItemFromObject(o, "metrics");
        if (cJSON_AddNullToObject(o, "metrics") == NULL)
            goto out;
    } else if (cJSON_AddNumberToObject(m, "jobs", (double)r->jobs) == NULL ||
               cJSON_AddNumberToObject(m, "retry", (double)r->retry) == NULL ||
               cJSON_AddNumberToObject(m, "delayed", (double)r->delayed) == NULL ||
               cJSON_AddNumberToObject(m, "dead", (double)r->dead) == NULL ||
               cJSON_AddNumberToObject(m, "dead_new", (double)r->dead_new) == NULL ||
               cJSON_AddNumberToObject(m, "inflight", (double)r->inflight) == NULL ||
               cJSON_AddNumberToObject(m, "workers_live", (double)r->live) == NULL ||
               cJSON_AddNumberToObject(m, "orphans", (double)r->orphans) == NULL ||
               cJSON_AddNumberToObject(m, "paused", (double)r->paused) == NULL ||
               cJSON_AddNumberToObject(m, "breakers_open", (double)r->breakers_open) == NULL ||
               cJSON_AddNumberToObject(m, "results_backlog_max", (double)r->backlog_max) == NULL)
        goto out;
    rc = out_json(stdout, o, false);
out:
    cJSON_Delete(o);
    return rc;
}

static int report(const check_report *r, bool json)
{
    char text[2048];

    summary(r, text, sizeof(text));
    if (json) {
        if (print_json(r, text) != 0)
            fprintf(stderr, "cancelqctl: out of memory\n");
        return (int)r->worst;
    }
    printf("CANCELQ %s - ", sev_names[r->worst]);
    out_cell(stdout, text, 0);
    if (r->measured) {
        fputs(" | ", stdout);
        perfdata(stdout, r);
    }
    putchar('\n');
    return (int)r->worst;
}

/* --- the command --------------------------------------------------------- */

typedef struct check_opts {
    bool json;
    uint64_t since_ms;
    long long dead_warn, lag_warn; /* lag_warn < 0: a tenth of results_maxlen */
} check_opts;

static int parse(ctl *c, check_opts *o, int argc, char **argv)
{
    enum { O_SINCE = 1000, O_DEAD_WARN, O_LAG_WARN, O_JSON };
    static const struct option longopts[] = {
        {"since", required_argument, NULL, O_SINCE},
        {"dead-warn", required_argument, NULL, O_DEAD_WARN},
        {"lag-warn", required_argument, NULL, O_LAG_WARN},
        {"json", no_argument, NULL, O_JSON},
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch;

    while ((ch = ctl_getopt(c, argc, argv, "c:h", longopts)) != -1) {
        switch (ch) {
        case O_SINCE:
            if (cq_parse_duration_ms(optarg, &o->since_ms) != 0 || o->since_ms == 0) {
                fprintf(stderr, "%s: --since: '%s' is not a duration (30s, 15m, 2h)\n", c->prog,
                        optarg);
                return -1;
            }
            break;
        case O_DEAD_WARN:
        case O_LAG_WARN:
            if (ctl_parse_ll(optarg, 0, (long long)1 << 40,
                             ch == O_DEAD_WARN ? &o->dead_warn : &o->lag_warn) != 0) {
                fprintf(stderr, "%s: %s: '%s' is not a count\n", c->prog,
                        ch == O_DEAD_WARN ? "--dead-warn" : "--lag-warn", optarg);
                return -1;
            }
            break;
        case O_JSON:
            o->json = true;
            break;
        case 'c':
            c->conf_path = optarg;
            break;
        case 'h':
            return 1;
        default:
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s: check takes no arguments\n", c->prog);
        return -1;
    }
    return 0;
}

static void run_probes(ctl *c, const check_opts *o, check_report *r)
{
    long long lag_warn = o->lag_warn >= 0 ? o->lag_warn : c->cfg->worker.results_maxlen / 10;

    if (count(c, "LLEN", c->k.jobs, &r->jobs) != 0 ||
        count(c, "LLEN", c->k.retry, &r->retry) != 0 ||
        count(c, "ZCARD", c->k.delayed, &r->delayed) != 0 ||
        count(c, "LLEN", c->k.dead, &r->dead) != 0 || probe_workers(c, r) != 0 ||
        probe_dead(c, r, o->since_ms, o->dead_warn) != 0 ||
        check_probe_groups(c, r, lag_warn) != 0 || check_probe_pauses(c, r) != 0 ||
        check_probe_limits(c, r) != 0) {
        redis_lost(c, r);
        return;
    }
    r->measured = true;
}

int cmd_check(ctl *c, int argc, char **argv)
{
    check_opts o = {.json = c->json, .since_ms = DEFAULT_SINCE_MS, .lag_warn = -1};
    check_report *r;
    int rc = parse(c, &o, argc, argv);

    if (rc != 0) {
        if (rc > 0)
            return ctl_help(c, "check");
        ctl_usage(c, "check");
        return CHECK_UNKNOWN;
    }
    r = calloc(1, sizeof(*r));
    if (r == NULL) {
        fprintf(stderr, "%s: out of memory\n", c->prog);
        return CHECK_UNKNOWN;
    }
    out_age((int64_t)o.since_ms, r->since, sizeof(r->since));
    c->quiet = true; /* the summary line says it */
    if (ctl_load_config(c) != 0)
        check_add(r, CHECK_UNKNOWN, "config", "%s", c->error);
    else if (ctl_connect(c) != 0)
        redis_lost(c, r);
    else
        run_probes(c, &o, r);
    rc = report(r, o.json);
    free(r);
    return rc;
}
