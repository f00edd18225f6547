/*
 * results.c - `cancelqctl results tail [-f]`: the last outcomes of
 * {P}:results (docs/design.md §5), oldest first, then (with -f) new ones
 * as they are added, read with XREAD BLOCK from the last id seen so that
 * nothing between two reads is missed.  `results get --id ID | --key KEY`:
 * the outcome of one job (or every outcome with that idempotency key),
 * found by reading the stream from its newest entry back.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"

#define TAIL_DEFAULT 10
#define TAIL_MAX 100000        /* --count */
#define FOLLOW_BLOCK_MS "1000" /* XREAD BLOCK: also how soon ^C is noticed */
#define FOLLOW_BATCH "500"     /* XREAD COUNT */
#define STREAM_ID_MAX 64
#define GET_PAGE "1000" /* XREVRANGE COUNT while searching */
#define GET_MAX 1000    /* matches kept (--all) */

/* Set by SIGINT/SIGTERM while following (a handler has nowhere else to
 * write). */
static volatile sig_atomic_t stop_following;

static void on_signal(int sig)
{
    (void)sig;
    stop_following = 1;
}

/* The value of field `name` in an entry's field/value array, or NULL. */
static const char *field(const redisReply *fv, const char *name)
{
    for (size_t i = 0; fv != NULL && i + 1 < fv->elements; i += 2)
        if (fv->element[i]->type == REDIS_REPLY_STRING &&
            fv->element[i + 1]->type == REDIS_REPLY_STRING &&
            strcmp(fv->element[i]->str, name) == 0)
            return fv->element[i + 1]->str;
    return NULL;
}

static void print_human(const char *id, const redisReply *fv)
{
    const char *status = field(fv, "status"), *err = field(fv, "error");
    const char *msg = field(fv, "message"), *orig = field(fv, "original_id");
    const char *when = field(fv, "finished_at");
    char what[160];

    snprintf(what, sizeof(what), "%s/%s", field(fv, "provider") ? field(fv, "provider") : "?",
             field(fv, "action") ? field(fv, "action") : "?");
    out_cell(stdout, when != NULL ? when : id, 24);
    putchar(' ');
    out_cell(stdout, status != NULL ? status : "?", 12);
    putchar(' ');
    out_cell(stdout, what, 36);
    putchar(' ');
    out_cell(stdout, field(fv, "id"), 0);
    fputs(" attempts=", stdout);
    out_cell(stdout, field(fv, "attempts"), 0);
    fputs(" http=", stdout);
    out_cell(stdout, field(fv, "http_status"), 0);
    fputs(" ", stdout);
    out_cell(stdout, field(fv, "duration_ms"), 0);
    fputs("ms", stdout);
    if (orig != NULL) {
        fputs(" original=", stdout);
        out_cell(stdout, orig, 0);
    }
    if (err != NULL && err[0] != '\0') {
        fputs(" error=", stdout);
        out_cell(stdout, err, 0);
    }
    if (msg != NULL && msg[0] != '\0') {
        fputs(" (", stdout);
        out_text(stdout, msg, strlen(msg), 200);
        putchar(')');
    }
    putchar('\n');
}

static int print_json(const char *id, const redisReply *fv)
{
    cJSON *o = cJSON_CreateObject();
    int rc = -1;

    if (o == NULL || cJSON_AddStringToObject(o, "stream_id", id) == NULL)
        goto out;
    for (size_t i = 0; fv != NULL && i + 1 < fv->elements; i += 2) {
        const redisReply *k = fv->element[i], *v = fv->element[i + 1];

        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
            strcmp(k->str, "stream_id") == 0)
            continue;
        if (cJSON_AddStringToObject(o, k->str, v->str) == NULL)
            goto out;
    }
    rc = out_json(stdout, o, false);
out:
    cJSON_Delete(o);
    return rc;
}

/* Print one stream entry ([id, [field, value, ...]]); remember its id. */
static int print_entry(const redisReply *e, bool json, char last[STREAM_ID_MAX])
{
    const redisReply *fv;

    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[0]->type != REDIS_REPLY_STRING)
        return 0; /* not an entry: nothing to show */
    fv = e->element[1]->type == REDIS_REPLY_ARRAY ? e->element[1] : NULL;
    snprintf(last, STREAM_ID_MAX, "%s", e->element[0]->str);
    if (json)
        return print_json(e->element[0]->str, fv);
    print_human(e->element[0]->str, fv);
    return 0;
}

/* The last `count` entries, oldest first; last gets the newest id ("0-0"
 * for an empty stream). */
static int tail(ctl *c, long long count, bool json, char last[STREAM_ID_MAX])
{
    char n[24];
    redisReply *r;
    int rc = 0;

    snprintf(n, sizeof(n), "%lld", count > 0 ? count : 1);
    r = ctl_cmd(c, 6, "XREVRANGE", c->k.results, "+", "-", "COUNT", n);
    if (r == NULL)
        return -1;
    if (!ctl_reply_is(r, REDIS_REPLY_ARRAY, "XREVRANGE")) {
        freeReplyObject(r);
        return -1;
    }
    snprintf(last, STREAM_ID_MAX, "0-0");
    if (r->elements > 0 && r->element[0]->type == REDIS_REPLY_ARRAY &&
        r->element[0]->elements == 2 && r->element[0]->element[0]->type == REDIS_REPLY_STRING)
        snprintf(last, STREAM_ID_MAX, "%s", r->element[0]->element[0]->str);
    for (size_t i = r->elements; count > 0 && i-- > 0 && rc == 0;) {
        char ignored[STREAM_ID_MAX];

        rc = print_entry(r->element[i], json, ignored);
    }
    freeReplyObject(r);
    fflush(stdout);
    return rc;
}

static int follow(ctl *c, bool json, char last[STREAM_ID_MAX])
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART; /* hiredis's blocking read goes on; BLOCK ends it soon */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    while (!stop_following) {
        redisReply *r = ctl_cmd(c, 8, "XREAD", "COUNT", FOLLOW_BATCH, "BLOCK", FOLLOW_BLOCK_MS,
                                "STREAMS", c->k.results, last);
        int rc = 0;

        if (r == NULL)
            return -1;
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
            r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements == 2 &&
            r->element[0]->element[1]->type == REDIS_REPLY_ARRAY) {
            const redisReply *entries = r->element[0]->element[1];

            for (size_t i = 0; i < entries->elements && rc == 0; i++)
                rc = print_entry(entries->element[i], json, last);
            fflush(stdout);
        } else if (r->type != REDIS_REPLY_NIL) {
            ctl_reply_is(r, REDIS_REPLY_ARRAY, "XREAD");
            rc = -1;
        }
        freeReplyObject(r);
        if (rc != 0 || ferror(stdout))
            return -1;
    }
    return 0;
}

static int cmd_tail(ctl *c, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"follow", no_argument, NULL, 'f'}, {"count", required_argument, NULL, 'n'},
        {"json", no_argument, NULL, 'j'},   {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},   {NULL, 0, NULL, 0},
    };
    char last[STREAM_ID_MAX];
    long long count = TAIL_DEFAULT;
    bool json = c->json, follow_on = false;
    int ch;

    while ((ch = ctl_getopt(c, argc, argv, "fn:c:h", longopts)) != -1) {
        switch (ch) {
        case 'f':
            follow_on = true;
            break;
        case 'n':
            if (ctl_parse_ll(optarg, 0, TAIL_MAX, &count) != 0) {
                fprintf(stderr, "%s: --count: '%s' is not a number from 0 to %d\n", c->prog, optarg,
                        TAIL_MAX);
                return ctl_usage(c, "results tail");
            }
            break;
        case 'j':
            json = true;
            break;
        case 'c':
            c->conf_path = optarg;
            break;
        case 'h':
            return ctl_help(c, "results tail");
        default:
            return ctl_usage(c, "results tail");
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s: results tail takes no arguments\n", c->prog);
        return ctl_usage(c, "results tail");
    }
    if (ctl_open(c) != 0 || tail(c, count, json, last) != 0)
        return CTL_ERR;
    if (follow_on && follow(c, json, last) != 0)
        return CTL_ERR;
    return CTL_OK;
}

/* --- get ------------------------------------------------------------------- */

typedef struct get_q {
    const char *field, *value; /* "id" or "idempotency_key", and the value */
    bool all;                  /* every match, not only the newest */
    redisReply *page[GET_MAX]; /* the pages holding the matches (owned) */
    const redisReply *match[GET_MAX];
    size_t npages, nmatch;
    long long scanned;
} get_q;

/* Read the stream newest first, page by page, keeping the matches. */
static int get_scan(ctl *c, get_q *q)
{
    char from[STREAM_ID_MAX + 1] = "+";

    for (;;) {
        redisReply *r = ctl_cmd(c, 6, "XREVRANGE", c->k.results, from, "-", "COUNT", GET_PAGE);
        bool kept = false;
        size_t i;

        if (r == NULL)
            return -1;
        if (!ctl_reply_is(r, REDIS_REPLY_ARRAY, "XREVRANGE")) {
            freeReplyObject(r);
            return -1;
        }
        for (i = 0; i < r->elements && q->nmatch < GET_MAX; i++) {
            const redisReply *e = r->element[i];
            const char *v;

            if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
                e->element[0]->type != REDIS_REPLY_STRING)
                continue;
            q->scanned++;
            v = field(e->element[1]->type == REDIS_REPLY_ARRAY ? e->element[1] : NULL, q->field);
            if (v == NULL || strcmp(v, q->value) != 0)
                continue;
            q->match[q->nmatch++] = e;
            kept = true;
            if (!q->all)
                break;
        }
        if (kept)
            q->page[q->npages++] = r;
        if ((q->nmatch > 0 && !q->all) || q->nmatch >= GET_MAX || r->elements == 0 ||
            q->npages >= GET_MAX) {
            if (!kept)
                freeReplyObject(r);
            return 0;
        }
        /* the next page: strictly older than this page's last entry ("(" id) */
        snprintf(from, sizeof(from), "(%s", r->element[r->elements - 1]->element[0]->str);
        if (!kept)
            freeReplyObject(r);
    }
}

static int cmd_get(ctl *c, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"id", required_argument, NULL, 'i'},
        {"key", required_argument, NULL, 'k'},
        {"all", no_argument, NULL, 'a'},
        {"json", no_argument, NULL, 'j'},
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    get_q q;
    bool json = c->json;
    char last[STREAM_ID_MAX];
    int ch, rc = CTL_ERR;

    memset(&q, 0, sizeof(q));
    while ((ch = ctl_getopt(c, argc, argv, "c:h", longopts)) != -1) {
        if (ch == 'i' || ch == 'k') {
            if (q.field != NULL) {
                fprintf(stderr, "%s: results get takes one of --id and --key\n", c->prog);
                return ctl_usage(c, "results get");
            }
            q.field = ch == 'i' ? "id" : "idempotency_key";
            q.value = optarg;
        } else if (ch == 'a') {
            q.all = true;
        } else if (ch == 'j') {
            json = true;
        } else if (ch == 'c') {
            c->conf_path = optarg;
        } else if (ch == 'h') {
            return ctl_help(c, "results get");
        } else {
            return ctl_usage(c, "results get");
        }
    }
    if (q.field == NULL || optind < argc) {
        fprintf(stderr, "%s: results get needs --id ID or --key KEY (and no other argument)\n",
                c->prog);
        return ctl_usage(c, "results get");
    }
    if (ctl_open(c) != 0 || get_scan(c, &q) != 0)
        goto out;
    if (q.nmatch == 0) {
        /* not on the stream: where the job or the key is now */
        int w = results_where(c, strcmp(q.field, "id") == 0 ? "id" : "key", q.value, json);

        if (w == 0)
            rc = CTL_NOT_ON_STREAM;
        else if (w > 0)
            fprintf(stderr, "%s: no outcome with %s '%s' in the %lld entries of %s, and %s\n",
                    c->prog, q.field, q.value, q.scanned, c->k.results,
                    strcmp(q.field, "id") == 0
                        ? "no such job queued, delayed, held or dead"
                        : "no idempotency record (never enqueued, or its record expired)");
        goto out;
    }
    rc = CTL_OK;
    for (size_t i = q.nmatch; i-- > 0 && rc == CTL_OK;) /* oldest first */
        if (print_entry(q.match[i], json, last) != 0)
            rc = CTL_ERR;
out:
    for (size_t i = 0; i < q.npages; i++)
        freeReplyObject(q.page[i]);
    return rc;
}

int cmd_results(ctl *c, int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "%s: results needs a command (tail, get)\n", c->prog);
        return ctl_usage(c, "results");
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)
        return ctl_help(c, "results tail");
    if (strcmp(argv[1], "tail") == 0)
        return cmd_tail(c, argc - 1, argv + 1);
    if (strcmp(argv[1], "get") == 0)
        return cmd_get(c, argc - 1, argv + 1);
    fprintf(stderr, "%s: unknown results command '%s'\n", c->prog, argv[1]);
    return ctl_usage(c, "results");
}
