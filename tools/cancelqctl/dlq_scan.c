/*
 * dlq_scan.c - dead-letter entries: parse (tolerating garbage), identify,
 * filter, and walk the list safely while the daemon adds to it (dlq.h).
 */
#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cancelq/adapter.h"
#include "cancelq/rfc3339.h"
#include "cancelq/status.h"
#include "dlq.h"

#define DLQ_RAW_JSON_MAX 4096 /* bytes of a garbage entry put in --json output */
#define DLQ_ID_MAX 16
#define NAMES_MAX 512 /* distinct provider/action names gathered for a check */

/* --- filters ------------------------------------------------------------- */

int dlq_filter_opt(dlq_filter *f, int opt, const char *arg, const char *prog)
{
    long long n;

    switch (opt) {
    case OPT_PROVIDER:
        f->provider = arg;
        return 1;
    case OPT_ACTION:
        f->action = arg;
        return 1;
    case OPT_STATUS:
        f->status = arg;
        return 1;
    case OPT_ERROR:
        f->error = arg;
        return 1;
    case OPT_JOB:
        f->job = arg;
        return 1;
    case OPT_SINCE:
        if (cq_parse_duration_ms(arg, &f->since_ms) != 0) {
            fprintf(stderr, "%s: --since: '%s' is not a duration (30s, 15m, 2h, 7d)\n", prog, arg);
            return -1;
        }
        f->has_since = true;
        return 1;
    case OPT_MALFORMED:
        f->malformed = true;
        return 1;
    case OPT_LIMIT:
        if (ctl_parse_ll(arg, 1, (long long)1 << 40, &n) != 0) {
            fprintf(stderr, "%s: --limit: '%s' is not a positive integer\n", prog, arg);
            return -1;
        }
        f->limit = n;
        return 1;
    default:
        return 0;
    }
}

/* --- checking filter values ---------------------------------------------- */

typedef struct names {
    const char *v[NAMES_MAX];
    char *own[NAMES_MAX]; /* the copies gathered from the list */
    size_t n, nown;
} names;

static void names_add(names *ns, const char *v, bool copy)
{
    if (v == NULL || ns->n == NAMES_MAX)
        return;
    for (size_t i = 0; i < ns->n; i++)
        if (strcmp(ns->v[i], v) == 0)
            return;
    if (copy) {
        char *d = strdup(v);

        if (d == NULL)
            return;
        ns->own[ns->nown++] = d;
        v = d;
    }
    ns->v[ns->n++] = v;
}

static void names_clear(names *ns)
{
    for (size_t i = 0; i < ns->nown; i++)
        free(ns->own[i]);
    memset(ns, 0, sizeof(*ns));
}

typedef struct seen {
    names *providers, *actions;
} seen;

static int seen_visit(ctl *c, dlq_entry *e, void *data)
{
    seen *s = data;

    (void)c;
    names_add(s->providers, e->provider, true);
    names_add(s->actions, e->action, true);
    return DLQ_NEXT;
}

int dlq_filter_check(ctl *c, const dlq_filter *f)
{
    static const char *const statuses[] = {"failed", "exhausted", "expired", "invalid", "conflict"};
    names *pv = calloc(1, sizeof(*pv)), *ac = calloc(1, sizeof(*ac));
    dlq_filter all = {0};
    seen sn = {pv, ac};
    const cq_adapter *const *ads;
    size_t nads;
    int rc = -1;

    if (pv == NULL || ac == NULL) {
        fprintf(stderr, "%s: out of memory\n", c->prog);
        goto out;
    }
    if (f->status != NULL && ctl_check_pattern(c, "--status", f->status, "dead-letter status",
                                               statuses, sizeof(statuses) / sizeof(*statuses)) != 0)
        goto out;
    /* what the deployment knows: its instances and their adapters' actions */
    for (size_t i = 0; i < c->cfg->nproviders; i++) {
        const cq_adapter *a = cq_adapter_find(c->cfg->providers[i].adapter);

        names_add(pv, c->cfg->providers[i].name, false);
        for (size_t k = 0; a != NULL && k < a->nactions; k++)
            names_add(ac, a->actions[k].name, false);
    }
    if (c->cfg->nproviders == 0) {
        ads = cq_adapters(&nads);
        for (size_t i = 0; i < nads; i++)
            for (size_t k = 0; k < ads[i]->nactions; k++)
                names_add(ac, ads[i]->actions[k].name, false);
    }
    /* dead letters may name what the config does not (an invalid job's
     * unknown provider, an instance since removed): those count too */
    if ((f->provider != NULL && !dlq_pattern_hits(f->provider, pv->v, pv->n)) ||
        (f->action != NULL && !dlq_pattern_hits(f->action, ac->v, ac->n))) {
        if (dlq_scan(c, &all, seen_visit, &sn, NULL) != 0)
            goto out;
    }
    if (f->provider != NULL &&
        ctl_check_pattern(c, "--provider", f->provider, "provider instance", pv->v, pv->n) != 0)
        goto out;
    if (f->action != NULL &&
        ctl_check_pattern(c, "--action", f->action, "action", ac->v, ac->n) != 0)
        goto out;
    rc = 0;
out:
    if (pv != NULL)
        names_clear(pv);
    if (ac != NULL)
        names_clear(ac);
    free(pv);
    free(ac);
    return rc;
}

bool dlq_pattern_hits(const char *pattern, const char *const *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (fnmatch(pattern, v[i], 0) == 0)
            return true;
    return false;
}

int dlq_filter_ids(dlq_filter *f, int argc, char **argv, size_t min_digits, const char *prog)
{
    if (argc <= 0)
        return 0;
    if (argc > DLQ_MAX_IDS) {
        fprintf(stderr, "%s: at most %d IDs at once (use filters with --all)\n", prog, DLQ_MAX_IDS);
        return -1;
    }
    for (int i = 0; i < argc; i++) {
        size_t n = strlen(argv[i]);
        bool hex = n >= min_digits && n <= DLQ_ID_MAX;

        for (size_t k = 0; hex && k < n; k++) {
            hex = isxdigit((unsigned char)argv[i][k]) != 0;
            argv[i][k] = (char)tolower((unsigned char)argv[i][k]);
        }
        if (!hex) {
            fprintf(stderr,
                    "%s: '%s' is not a dead-letter ID (%zu to %d hex digits of the ID dlq list "
                    "shows)\n",
                    prog, argv[i], min_digits, DLQ_ID_MAX);
            return -1;
        }
    }
    f->id_seen = calloc((size_t)argc, sizeof(*f->id_seen));
    if (f->id_seen == NULL) {
        fprintf(stderr, "%s: out of memory\n", prog);
        return -1;
    }
    f->ids = argv;
    f->nids = (size_t)argc;
    return 0;
}

size_t dlq_filter_unmatched(const dlq_filter *f, const char *prog)
{
    size_t n = 0;

    for (size_t i = 0; i < f->nids; i++) {
        if (!f->id_seen[i]) {
            fprintf(stderr, "%s: no dead letter with ID %s\n", prog, f->ids[i]);
            n++;
        }
    }
    return n;
}

void dlq_filter_clear(dlq_filter *f)
{
    free(f->id_seen);
    f->id_seen = NULL;
    f->nids = 0;
}

static bool pattern_ok(const char *pattern, const char *value)
{
    return pattern == NULL || (value != NULL && fnmatch(pattern, value, 0) == 0);
}

bool dlq_match(dlq_filter *f, const dlq_entry *e, int64_t now_ms)
{
    bool any = f->nids == 0;

    for (size_t i = 0; i < f->nids; i++) {
        if (strncmp(e->id, f->ids[i], strlen(f->ids[i])) == 0) {
            f->id_seen[i] = true;
            any = true;
        }
    }
    if (!any || (f->malformed && e->valid))
        return false;
    if (!pattern_ok(f->provider, e->provider) || !pattern_ok(f->action, e->action) ||
        !pattern_ok(f->status, e->status) || !pattern_ok(f->error, e->error) ||
        !pattern_ok(f->job, e->job_id))
        return false;
    if (f->has_since && (e->failed_at_ms <= 0 || now_ms - e->failed_at_ms > (int64_t)f->since_ms))
        return false;
    return true;
}

/* --- entries ------------------------------------------------------------- */

static const char *str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool only_space(const char *p, const char *end)
{
    for (; p < end; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            return false;
    return true;
}

void dlq_entry_parse(dlq_entry *e, const char *text, size_t len, long long pos)
{
    const char *end = NULL;
    const cJSON *a;
    cJSON *root;

    memset(e, 0, sizeof(*e));
    e->text = text;
    e->len = len;
    e->pos = pos;
    e->attempts = -1;
    ctl_hash_hex(text, len, e->id);
    if (len == 0 || len > DLQ_ENTRY_PARSE_MAX)
        return;
    root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (root == NULL || end == NULL || !only_space(end, text + len) || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return;
    }
    e->root = root;
    e->job = cJSON_GetObjectItemCaseSensitive(root, "job");
    if (cJSON_IsObject(e->job)) {
        e->job_id = str(e->job, "id");
        e->provider = str(e->job, "provider");
        e->action = str(e->job, "action");
    }
    e->status = str(root, "status");
    e->error = str(root, "error");
    e->message = str(root, "message");
    e->worker = str(root, "worker");
    e->failed_at = str(root, "failed_at");
    e->valid = e->job != NULL && e->status != NULL;
    if (e->failed_at != NULL && cq_parse_rfc3339(e->failed_at, &e->failed_at_ms) != 0)
        e->failed_at_ms = 0;
    a = cJSON_GetObjectItemCaseSensitive(root, "attempts");
    if (cJSON_IsNumber(a) && isfinite(a->valuedouble) && a->valuedouble >= 0 &&
        a->valuedouble <= 1e9 && a->valuedouble == floor(a->valuedouble))
        e->attempts = (long long)a->valuedouble;
}

void dlq_entry_clear(dlq_entry *e)
{
    cJSON_Delete(e->root);
    e->root = NULL;
}

void dlq_entry_what(const dlq_entry *e, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%s", e->provider != NULL ? e->provider : "?",
             e->action != NULL ? e->action : "?");
}

static bool add_str(cJSON *o, const char *key, const char *v)
{
    return (v != NULL ? cJSON_AddStringToObject(o, key, v) : cJSON_AddNullToObject(o, key)) != NULL;
}

cJSON *dlq_entry_json(const dlq_entry *e, int64_t now_ms)
{
    cJSON *o = cJSON_CreateObject(), *dup;
    char id[DLQ_ID_SHOW + 1];
    bool ok;

    if (o == NULL)
        return NULL;
    snprintf(id, sizeof(id), "%.*s", DLQ_ID_SHOW, e->id);
    ok = add_str(o, "id", id) &&
         (e->pos >= 0 ? cJSON_AddNumberToObject(o, "pos", (double)e->pos)
                      : cJSON_AddNullToObject(o, "pos")) != NULL &&
         add_str(o, "provider", e->provider) && add_str(o, "action", e->action) &&
         add_str(o, "job_id", e->job_id) && add_str(o, "status", e->status) &&
         add_str(o, "error", e->error) && add_str(o, "message", e->message) &&
         (e->attempts >= 0 ? cJSON_AddNumberToObject(o, "attempts", (double)e->attempts)
                           : cJSON_AddNullToObject(o, "attempts")) != NULL &&
         add_str(o, "failed_at", e->failed_at) &&
         (e->failed_at_ms > 0
              ? cJSON_AddNumberToObject(o, "age_ms", (double)(now_ms - e->failed_at_ms))
              : cJSON_AddNullToObject(o, "age_ms")) != NULL &&
         cJSON_AddBoolToObject(o, "valid", e->valid) != NULL;
    if (ok && e->root != NULL) {
        dup = cJSON_Duplicate(e->root, 1);
        ok = dup != NULL && cJSON_AddItemToObject(o, "entry", dup);
        if (!ok)
            cJSON_Delete(dup);
    } else if (ok) {
        size_t n = e->len < DLQ_RAW_JSON_MAX ? e->len : DLQ_RAW_JSON_MAX;
        char *raw = strndup(e->text, n); /* stops at a NUL byte too */

        ok = raw != NULL && cJSON_AddStringToObject(o, "raw", raw) != NULL &&
             cJSON_AddNumberToObject(o, "raw_bytes", (double)e->len) != NULL;
        free(raw);
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* --- the walk ------------------------------------------------------------ */

/* One chunk: the entries at tail offsets off .. off+DLQ_CHUNK-1. */
static redisReply *read_chunk(ctl *c, long long off)
{
    char start[32], stop[32];
    redisReply *r;

    snprintf(start, sizeof(start), "%lld", -(off + DLQ_CHUNK));
    snprintf(stop, sizeof(stop), "%lld", -(off + 1));
    r = ctl_cmd(c, 4, "LRANGE", c->k.dead, start, stop);
    if (r != NULL && !ctl_reply_is(r, REDIS_REPLY_ARRAY, "LRANGE")) {
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

int dlq_scan(ctl *c, dlq_filter *f, dlq_visit_fn fn, void *data, long long *visited)
{
    long long llen, off = 0, removed_total = 0, count = 0;
    int64_t now = ctl_now_ms(c);
    int rc = 0;
    bool stop = false;

    llen = ctl_int(ctl_cmd(c, 2, "LLEN", c->k.dead), "LLEN");
    if (llen < 0)
        return -1;
    while (!stop) {
        redisReply *r = read_chunk(c, off);
        size_t n, removed = 0;

        if (r == NULL)
            return -1;
        n = r->elements;
        /* LRANGE answers head to tail: walk it backwards, oldest first */
        for (size_t i = n; i-- > 0 && !stop;) {
            const redisReply *el = r->element[i];
            long long tail_off = off + (long long)(n - 1 - i) + removed_total;
            long long pos = llen - 1 - tail_off;
            dlq_entry e;

            if (el->type != REDIS_REPLY_STRING)
                continue;
            dlq_entry_parse(&e, el->str, el->len, pos >= 0 ? pos : -1);
            if (dlq_match(f, &e, now)) {
                int v = fn(c, &e, data);

                count++;
                if (v == DLQ_REMOVED)
                    removed++;
                if (v < 0)
                    rc = -1;
                if (v < 0 || v == DLQ_STOP || (f->limit > 0 && count >= f->limit))
                    stop = true;
            }
            dlq_entry_clear(&e);
        }
        freeReplyObject(r);
        if (n < DLQ_CHUNK)
            break; /* reached the newest end */
        /* removing entries moved the unread ones toward the tail */
        off += (long long)(n - removed);
        removed_total += (long long)removed;
    }
    if (visited != NULL)
        *visited = count;
    return rc;
}
