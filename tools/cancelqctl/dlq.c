/*
 * dlq.c - `cancelqctl dlq list|show|purge` and the dispatch of the dlq
 * subcommands (requeue and drop are in dlq_move.c).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dlq.h"

#define SHOW_RAW_MAX 4000 /* characters of a garbage entry `dlq show` prints */
#define LIST_RAW_MAX 50   /* ... and `dlq list` */

#define FILTER_OPTS                                                                                \
    {"provider", required_argument, NULL, OPT_PROVIDER},                                           \
        {"action", required_argument, NULL, OPT_ACTION},                                           \
        {"status", required_argument, NULL, OPT_STATUS},                                           \
        {"error", required_argument, NULL, OPT_ERROR}, {"job", required_argument, NULL, OPT_JOB},  \
        {"since", required_argument, NULL, OPT_SINCE},                                             \
        {"limit", required_argument, NULL, OPT_LIMIT},                                             \
    {                                                                                              \
        "malformed", no_argument, NULL, OPT_MALFORMED                                              \
    }

/* --- list ---------------------------------------------------------------- */

typedef struct list_state {
    bool json;
    int64_t now;
    long long shown;
} list_state;

static void list_header(void)
{
    printf("%-6s %-12s %-8s %-16s %-20s %-10s %-20s %4s  %s\n", "POS", "ID", "AGE", "PROVIDER",
           "ACTION", "STATUS", "ERROR", "ATT", "JOB");
}

static void list_line(const dlq_entry *e, int64_t now)
{
    char pos[24], id[DLQ_ID_SHOW + 1], age[24] = "-", att[24] = "-";

    snprintf(pos, sizeof(pos), e->pos >= 0 ? "%lld" : "-", e->pos);
    snprintf(id, sizeof(id), "%.*s", DLQ_ID_SHOW, e->id);
    if (e->failed_at_ms > 0)
        out_age(now - e->failed_at_ms, age, sizeof(age));
    if (e->attempts >= 0)
        snprintf(att, sizeof(att), "%lld", e->attempts);
    printf("%-6s %-12s %-8s ", pos, id, age);
    out_cell(stdout, e->provider != NULL ? e->provider : "?", 16);
    putchar(' ');
    out_cell(stdout, e->action != NULL ? e->action : "?", 20);
    putchar(' ');
    out_cell(stdout, e->status != NULL ? e->status : "?", 10);
    putchar(' ');
    out_cell(stdout, e->error != NULL ? e->error : (e->valid ? "" : "?"), 20);
    printf(" %4s  ", att);
    if (!e->valid) {
        fputs("(not a dead letter) ", stdout);
        out_text(stdout, e->text, e->len, LIST_RAW_MAX);
    } else if (cJSON_IsString(e->job)) {
        fputs("(raw) ", stdout);
        out_text(stdout, e->job->valuestring, strlen(e->job->valuestring), LIST_RAW_MAX);
    } else {
        out_cell(stdout, e->job_id, 0);
    }
    putchar('\n');
}

static int list_visit(ctl *c, dlq_entry *e, void *data)
{
    list_state *st = data;
    cJSON *o;

    (void)c;
    if (!st->json) {
        if (st->shown++ == 0)
            list_header();
        list_line(e, st->now);
        return DLQ_NEXT;
    }
    o = dlq_entry_json(e, st->now);
    if (o == NULL) {
        fprintf(stderr, "cancelqctl: out of memory\n");
        return -1;
    }
    fputs(st->shown++ == 0 ? "" : ",", stdout);
    out_json(stdout, o, false);
    cJSON_Delete(o);
    return DLQ_NEXT;
}

static int cmd_list(ctl *c, int argc, char **argv)
{
    static const struct option longopts[] = {
        FILTER_OPTS,
        {"json", no_argument, NULL, OPT_JSON},
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    dlq_filter f = {0};
    list_state st = {.json = c->json};
    int ch, rc = CTL_ERR;

    while ((ch = ctl_getopt(c, argc, argv, "c:h", longopts)) != -1) {
        int k = dlq_filter_opt(&f, ch, optarg, c->prog);

        if (k < 0)
            return ctl_usage(c, "dlq list");
        if (k > 0)
            continue;
        if (ch == OPT_JSON)
            st.json = true;
        else if (ch == 'c')
            c->conf_path = optarg;
        else if (ch == 'h')
            return ctl_help(c, "dlq list");
        else
            return ctl_usage(c, "dlq list");
    }
    if (optind < argc) {
        fprintf(stderr, "%s: dlq list takes no arguments (IDs go to dlq show)\n", c->prog);
        return ctl_usage(c, "dlq list");
    }
    if (ctl_open(c) != 0)
        return CTL_ERR;
    if (dlq_filter_check(c, &f) != 0)
        return CTL_USAGE;
    st.now = ctl_now_ms(c);
    if (st.json)
        fputs("[", stdout);
    if (dlq_scan(c, &f, list_visit, &st, NULL) == 0)
        rc = CTL_OK;
    if (st.json)
        fputs("]\n", stdout);
    else if (rc == CTL_OK)
        printf(st.shown == 0 ? "no dead letters match\n" : "%lld dead letters\n", st.shown);
    return rc;
}

/* --- show ---------------------------------------------------------------- */

#define SHOW_AMBIGUOUS_MAX 10 /* entries listed when an ID prefix matches several */

typedef struct show_state {
    char *text; /* owned copy of the first match */
    size_t len;
    long long pos;
    char id[17];
    long long same; /* identical entries */
    size_t others;  /* entries with another ID that the prefix matches too */
    char other[SHOW_AMBIGUOUS_MAX][DLQ_ID_SHOW + 1];
    char other_what[SHOW_AMBIGUOUS_MAX][96]; /* "job-id status" */
} show_state;

static void note_match(show_state *st, const dlq_entry *e)
{
    size_t i = st->others++;

    if (i >= SHOW_AMBIGUOUS_MAX)
        return;
    snprintf(st->other[i], sizeof(st->other[i]), "%.*s", DLQ_ID_SHOW, e->id);
    out_escape(st->other_what[i], sizeof(st->other_what[i]),
               e->job_id != NULL ? e->job_id : "(no job id)",
               strlen(e->job_id != NULL ? e->job_id : "(no job id)"), 40);
    snprintf(st->other_what[i] + strlen(st->other_what[i]),
             sizeof(st->other_what[i]) - strlen(st->other_what[i]), " %.20s",
             e->status != NULL ? e->status : "?");
}

static int show_visit(ctl *c, dlq_entry *e, void *data)
{
    show_state *st = data;

    if (st->text == NULL) {
        st->text = malloc(e->len + 1);
        if (st->text == NULL) {
            fprintf(stderr, "%s: out of memory\n", c->prog);
            return -1;
        }
        memcpy(st->text, e->text, e->len);
        st->text[e->len] = '\0';
        st->len = e->len;
        st->pos = e->pos;
        memcpy(st->id, e->id, sizeof(st->id));
        st->same = 1;
        note_match(st, e);
    } else if (strcmp(st->id, e->id) == 0) {
        st->same++;
    } else {
        note_match(st, e);
    }
    return DLQ_NEXT;
}

static void show_field(const char *name, const char *value)
{
    printf("%-10s ", name);
    out_cell(stdout, value, 0);
    putchar('\n');
}

static void show_history(const cJSON *hist)
{
    const cJSON *a;
    int i = 0;

    if (!cJSON_IsArray(hist) || cJSON_GetArraySize(hist) == 0) {
        printf("history    (none)\n");
        return;
    }
    printf("history\n  %-3s %-26s %-5s %s\n", "#", "AT", "HTTP", "ERROR");
    cJSON_ArrayForEach (a, hist) {
        const cJSON *at = cJSON_GetObjectItemCaseSensitive(a, "at");
        const cJSON *hs = cJSON_GetObjectItemCaseSensitive(a, "http_status");
        const cJSON *er = cJSON_GetObjectItemCaseSensitive(a, "error");
        char http[24] = "?";

        if (cJSON_IsNumber(hs))
            snprintf(http, sizeof(http), "%.0f", hs->valuedouble);
        printf("  %-3d ", ++i);
        out_cell(stdout, cJSON_IsString(at) ? at->valuestring : "?", 26);
        printf(" %-5s ", http);
        out_cell(stdout, cJSON_IsString(er) ? er->valuestring : "?", 0);
        putchar('\n');
    }
}

static void show_entry(const dlq_entry *e, const show_state *st, int64_t now)
{
    char head[128], age[24], when[96], att[24] = "?";

    snprintf(head, sizeof(head), "%.*s (position %lld%s)", DLQ_ID_SHOW, e->id, st->pos,
             st->same > 1 ? ", with identical copies" : "");
    show_field("id", head);
    if (!e->valid) {
        printf("NOT A DEAD-LETTER ENTRY (%s, %zu bytes): shown as stored\n",
               e->root != NULL ? "JSON without \"job\" and \"status\"" : "not a JSON object",
               e->len);
        if (e->root != NULL)
            out_json(stdout, e->root, true);
        else {
            out_text(stdout, e->text, e->len, SHOW_RAW_MAX);
            putchar('\n');
        }
        return;
    }
    show_field("status", e->status);
    show_field("error", e->error);
    show_field("message", e->message);
    if (e->attempts >= 0)
        snprintf(att, sizeof(att), "%lld", e->attempts);
    show_field("attempts", att);
    if (e->failed_at_ms > 0) {
        out_age(now - e->failed_at_ms, age, sizeof(age));
        snprintf(when, sizeof(when), "%.40s (%s ago)", e->failed_at, age);
        show_field("failed at", when);
    } else {
        show_field("failed at", e->failed_at);
    }
    show_field("worker", e->worker);
    show_history(cJSON_GetObjectItemCaseSensitive(e->root, "history"));
    if (cJSON_IsString(e->job)) {
        printf("job (raw text, it was not JSON):\n");
        out_text(stdout, e->job->valuestring, strlen(e->job->valuestring), SHOW_RAW_MAX);
        putchar('\n');
    } else {
        printf("job\n");
        out_json(stdout, e->job, true);
    }
}

static int cmd_show(ctl *c, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, OPT_JSON},
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    dlq_filter f = {0};
    show_state st = {.pos = -1};
    dlq_entry e;
    bool json = c->json;
    int ch, rc = CTL_ERR;

    while ((ch = ctl_getopt(c, argc, argv, "c:h", longopts)) != -1) {
        if (ch == OPT_JSON)
            json = true;
        else if (ch == 'c')
            c->conf_path = optarg;
        else if (ch == 'h')
            return ctl_help(c, "dlq show");
        else
            return ctl_usage(c, "dlq show");
    }
    if (argc - optind != 1) {
        fprintf(stderr, "%s: dlq show takes one ID\n", c->prog);
        return ctl_usage(c, "dlq show");
    }
    if (dlq_filter_ids(&f, 1, argv + optind, DLQ_ID_PREFIX_MIN, c->prog) != 0)
        return CTL_USAGE;
    if (ctl_open(c) != 0 || dlq_scan(c, &f, show_visit, &st, NULL) != 0)
        goto out;
    if (st.text == NULL) {
        dlq_filter_unmatched(&f, c->prog);
        goto out;
    }
    if (st.others > 1) {
        fprintf(stderr, "%s: ID %s matches %zu dead letters: give more hex digits\n", c->prog,
                f.ids[0], st.others);
        for (size_t i = 0; i < st.others && i < SHOW_AMBIGUOUS_MAX; i++)
            fprintf(stderr, "  %s %s\n", st.other[i], st.other_what[i]);
        if (st.others > SHOW_AMBIGUOUS_MAX)
            fprintf(stderr, "  ... and %zu more\n", st.others - SHOW_AMBIGUOUS_MAX);
        goto out;
    }
    dlq_entry_parse(&e, st.text, st.len, st.pos);
    if (json) {
        cJSON *o = dlq_entry_json(&e, ctl_now_ms(c));

        if (o != NULL) {
            out_json(stdout, o, true);
            rc = CTL_OK;
        }
        cJSON_Delete(o);
    } else {
        show_entry(&e, &st, ctl_now_ms(c));
        rc = CTL_OK;
    }
    dlq_entry_clear(&e);
out:
    free(st.text);
    dlq_filter_clear(&f);
    return rc;
}

/* --- purge --------------------------------------------------------------- */

static int cmd_purge(ctl *c, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"yes", no_argument, NULL, OPT_YES},
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    redisReply *r = NULL;
    bool yes = false;
    int ch, rc = CTL_ERR;

    while ((ch = ctl_getopt(c, argc, argv, "c:h", longopts)) != -1) {
        if (ch == OPT_YES)
            yes = true;
        else if (ch == 'c')
            c->conf_path = optarg;
        else if (ch == 'h')
            return ctl_help(c, "dlq purge");
        else
            return ctl_usage(c, "dlq purge");
    }
    if (optind < argc) {
        fprintf(stderr, "%s: dlq purge takes no arguments (to remove some: dlq drop)\n", c->prog);
        return ctl_usage(c, "dlq purge");
    }
    if (!yes) {
        fprintf(stderr, "%s: dlq purge deletes every dead letter: add --yes to do it\n", c->prog);
        return CTL_USAGE;
    }
    if (ctl_open(c) != 0)
        return CTL_ERR;
    /* LLEN and DEL in one transaction: the count is what was deleted */
    r = ctl_cmd(c, 1, "MULTI");
    if (r == NULL)
        return CTL_ERR;
    freeReplyObject(r);
    freeReplyObject(ctl_cmd(c, 2, "LLEN", c->k.dead));
    freeReplyObject(ctl_cmd(c, 2, "DEL", c->k.dead));
    r = ctl_cmd(c, 1, "EXEC");
    if (r != NULL && ctl_reply_is(r, REDIS_REPLY_ARRAY, "EXEC") && r->elements == 2 &&
        r->element[0]->type == REDIS_REPLY_INTEGER) {
        printf("purged %lld dead letters\n", r->element[0]->integer);
        rc = CTL_OK;
    }
    freeReplyObject(r);
    return rc;
}

/* --- dispatch ------------------------------------------------------------ */

int cmd_dlq(ctl *c, int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(ctl *c, int argc, char **argv);
    } subs[] = {
        {"list", cmd_list},     {"show", cmd_show},   {"requeue", dlq_cmd_requeue},
        {"drop", dlq_cmd_drop}, {"purge", cmd_purge},
    };

    if (argc < 2) {
        fprintf(stderr, "%s: dlq needs a command\n", c->prog);
        return ctl_usage(c, "dlq");
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)
        return ctl_help(c, "dlq");
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
        if (strcmp(argv[1], subs[i].name) == 0)
            return subs[i].run(c, argc - 1, argv + 1);
    fprintf(stderr, "%s: unknown dlq command '%s'\n", c->prog, argv[1]);
    return ctl_usage(c, "dlq");
}
