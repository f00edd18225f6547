/*
 * dlq_move.c - `cancelqctl dlq requeue` and `dlq drop`: take selected dead
 * letters out of {P}:dead, one atomic step per entry (dlq_requeue.lua, or
 * LREM), optionally paced (--rate) so a provider that just recovered is not
 * flooded, and say what happened to each.
 *
 * A requeued job goes back bare (no envelope): its attempts start again.
 * Entries whose job cannot pass the daemon's checks are skipped with the
 * reason rather than sent round the loop again.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dlq.h"

/* Set by SIGINT/SIGTERM: stop after the current entry and print the
 * summary (the one global: a signal handler has nowhere else to write). */
static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

typedef struct move {
    bool requeue; /* else drop */
    bool dry_run, json, redo, by_id;
    double rate;     /* per second, 0 = unpaced */
    long long total; /* entries selected (counted first when paced), -1 unknown */
    long long seen, moved, skipped, gone, failed_ids;
    struct timespec next; /* when the next move may happen (CLOCK_MONOTONIC) */
    int64_t now;
} move;

/* --- reporting ----------------------------------------------------------- */

typedef struct report {
    const char *result; /* "requeued", "would requeue", "skipped", "gone", "dropped", ... */
    const char *reason; /* why skipped, or a note; may be NULL */
    const char *idem;   /* the record's fate: absent, released, kept_done, kept_busy */
    const char *key;    /* idempotency key (without the prefix) */
} report;

static void report_json(const move *m, const dlq_entry *e, const report *r)
{
    cJSON *o = cJSON_CreateObject();
    char id[DLQ_ID_SHOW + 1], result[32];

    snprintf(id, sizeof(id), "%.*s", DLQ_ID_SHOW, e->id);
    snprintf(result, sizeof(result), "%s", r->result); /* "would requeue" -> "would_requeue" */
    for (char *p = result; *p != '\0'; p++)
        if (*p == ' ')
            *p = '_';
    if (o == NULL || cJSON_AddStringToObject(o, "id", id) == NULL ||
        cJSON_AddStringToObject(o, "result", result) == NULL ||
        (e->job_id != NULL && cJSON_AddStringToObject(o, "job_id", e->job_id) == NULL) ||
        (e->provider != NULL && cJSON_AddStringToObject(o, "provider", e->provider) == NULL) ||
        (e->action != NULL && cJSON_AddStringToObject(o, "action", e->action) == NULL) ||
        (r->reason != NULL && cJSON_AddStringToObject(o, "reason", r->reason) == NULL) ||
        (r->idem != NULL && cJSON_AddStringToObject(o, "idempotency_record", r->idem) == NULL) ||
        (r->key != NULL && cJSON_AddStringToObject(o, "idempotency_key", r->key) == NULL) ||
        cJSON_AddNumberToObject(o, "at_ms", (double)cq_clock_unix_ms()) == NULL ||
        (m->total >= 0 && cJSON_AddNumberToObject(o, "n", (double)m->seen) == NULL) ||
        (m->total >= 0 && cJSON_AddNumberToObject(o, "of", (double)m->total) == NULL)) {
        fprintf(stderr, "cancelqctl: out of memory\n");
    } else {
        out_json(stdout, o, false);
    }
    cJSON_Delete(o);
}

static void report_line(const move *m, const dlq_entry *e, const report *r)
{
    char what[160];

    if (m->json) {
        report_json(m, e, r);
        fflush(stdout);
        return;
    }
    if (m->total >= 0)
        printf("[%lld/%lld] ", m->seen, m->total);
    printf("%-13s %.*s", r->result, DLQ_ID_SHOW, e->id);
    if (e->job_id != NULL || e->provider != NULL) {
        dlq_entry_what(e, what, sizeof(what));
        putchar(' ');
        out_cell(stdout, e->job_id != NULL ? e->job_id : "?", 0);
        putchar(' ');
        out_cell(stdout, what, 0);
    }
    if (r->reason != NULL) {
        fputs(": ", stdout);
        out_cell(stdout, r->reason, 0);
    }
    putchar('\n');
    fflush(stdout);
}

static void summary(const move *m)
{
    const char *verb = m->requeue ? (m->dry_run ? "would requeue" : "requeued")
                                  : (m->dry_run ? "would drop" : "dropped");

    if (m->json) {
        printf("{\"summary\":true,\"dry_run\":%s,\"%s\":%lld,\"skipped\":%lld,\"gone\":%lld,"
               "\"interrupted\":%s}\n",
               m->dry_run ? "true" : "false", m->requeue ? "requeued" : "dropped", m->moved,
               m->skipped, m->gone, interrupted ? "true" : "false");
        return;
    }
    printf("%s %lld", verb, m->moved);
    if (m->requeue)
        printf(", skipped %lld", m->skipped);
    printf(", gone %lld%s%s\n", m->gone, m->dry_run ? " (dry run: nothing changed)" : "",
           interrupted ? " (interrupted)" : "");
}

/* --- pacing -------------------------------------------------------------- */

static int64_t mono_ns(const struct timespec *t)
{
    return (int64_t)t->tv_sec * 1000000000LL + t->tv_nsec;
}

/* Sleep until the next move is due, then schedule the one after it one
 * interval later.  A slow stretch (many entries skipped, a slow Redis)
 * does not bank time: moves never come closer together than the rate says.
 * false when interrupted. */
static bool pace(move *m)
{
    struct timespec now;
    int64_t interval;

    if (m->rate <= 0 || m->dry_run)
        return !interrupted;
    while (!interrupted && clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &m->next, NULL) == EINTR)
        ;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (mono_ns(&now) > mono_ns(&m->next))
        m->next = now;
    interval = (int64_t)(1e9 / m->rate);
    m->next.tv_sec += (time_t)(interval / 1000000000LL);
    m->next.tv_nsec += (long)(interval % 1000000000LL);
    if (m->next.tv_nsec >= 1000000000L) {
        m->next.tv_sec++;
        m->next.tv_nsec -= 1000000000L;
    }
    return !interrupted;
}

/* --- requeue ------------------------------------------------------------- */

typedef struct plan {
    char *job;                           /* owned: the job text to push */
    char key[CQ_KEY_MAX];                /* "{P}:idem:<key>" */
    const char *idem_key;                /* the key itself, into key */
    char hash[CQ_PARAMS_HASH_MAX];       /* the params hash the daemon will claim with */
    char hash_v1[CQ_PARAMS_HASH_V1_MAX]; /* the same as records before 0.2 carry it */
    char reason[CQ_ERR_MSG_MAX + 96];
} plan;

/* 0 when the entry can be requeued, 1 when it must be skipped (reason
 * filled), -1 on ENOMEM. */
static int plan_requeue(const ctl *c, const dlq_entry *e, int64_t now, plan *p)
{
    cq_checked ck;
    cq_err err;
    int rc = 1;

    memset(p, 0, sizeof(*p));
    if (!e->valid) {
        snprintf(p->reason, sizeof(p->reason),
                 "not a dead-letter entry (damaged or hand-written): see dlq show, remove "
                 "with dlq drop");
        return 1;
    }
    if (cJSON_IsString(e->job)) {
        snprintf(p->reason, sizeof(p->reason),
                 "the job was not JSON when received and cannot be requeued; fix it and "
                 "push it with enqueue --file");
        return 1;
    }
    if (!cJSON_IsObject(e->job)) {
        snprintf(p->reason, sizeof(p->reason), "the job is not a JSON object");
        return 1;
    }
    p->job = cJSON_PrintUnformatted(e->job);
    if (p->job == NULL)
        return -1;
    cq_err_clear(&err);
    if (cq_job_check(c->cfg, &c->k, p->job, strlen(p->job), &ck, &err) != 0) {
        snprintf(p->reason, sizeof(p->reason), "%s (the daemon would dead-letter it again)",
                 err.msg);
    } else if (ck.job.deadline_ms > 0 && ck.job.deadline_ms <= now) {
        snprintf(p->reason, sizeof(p->reason), "its deadline has passed: it would expire again");
    } else {
        snprintf(p->key, sizeof(p->key), "%s", ck.idem_key);
        p->idem_key = p->key + strlen(c->k.prefix) + strlen("idem:");
        snprintf(p->hash, sizeof(p->hash), "%s", ck.hash);
        snprintf(p->hash_v1, sizeof(p->hash_v1), "%s", ck.hash_v1);
        rc = 0;
    }
    cq_checked_clear(&ck);
    return rc;
}

/* What happened (or would happen) to one entry. */
typedef struct fate {
    bool present;     /* the entry was (is) in the list */
    char what[16];    /* the idempotency record: absent, released, kept_done, kept_busy */
    char holder[160]; /* job id in the record */
    char status[40];  /* its status */
    char hash[40];    /* its params hash */
} fate;

/* What the record's fate means for the requeued job, for the report. */
static void idem_note(const fate *f, const plan *p, char *buf, size_t size)
{
    /* a record written before 0.2 carries the old hash (no "s2:" tag) */
    bool same = strcmp(f->hash, p->hash) == 0 || strcmp(f->hash, p->hash_v1) == 0;

    buf[0] = '\0';
    if (strcmp(f->what, "released") == 0)
        snprintf(buf, size, "idempotency record released");
    else if (strcmp(f->what, "kept_done") == 0 && same)
        snprintf(buf, size,
                 "key already carried out by job %.128s (%.32s): the daemon will answer "
                 "'duplicate' without a call (--redo calls again)",
                 f->holder, f->status);
    else if (strcmp(f->what, "kept_done") == 0)
        snprintf(buf, size,
                 "key carried out by job %.128s with other params: the daemon will answer "
                 "'conflict' again (--redo forgets that record and calls with these params)",
                 f->holder);
    else if (strcmp(f->what, "kept_busy") == 0)
        snprintf(buf, size, "key held right now by job %.128s: this job waits for it", f->holder);
}

static void set_str(char *dst, size_t size, const redisReply *r)
{
    snprintf(dst, size, "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
}

/* Dry run: look, change nothing; judge the record as the script would. */
static int peek(ctl *c, const dlq_entry *e, const plan *p, const move *m, fate *f)
{
    const char *argv[] = {"LPOS", c->k.dead, e->text};
    size_t lens[] = {4, strlen(c->k.dead), e->len};
    redisReply *r = ctl_cmdv(c, 3, argv, lens);
    char state[16], lease[32];
    bool exists = false;

    if (r == NULL)
        return -1;
    f->present = r->type == REDIS_REPLY_INTEGER;
    freeReplyObject(r);
    r = ctl_cmd(c, 7, "HMGET", p->key, "state", "id", "status", "lease_until", "hash");
    if (r == NULL || !ctl_reply_is(r, REDIS_REPLY_ARRAY, "HMGET") || r->elements != 5) {
        freeReplyObject(r);
        return -1;
    }
    set_str(state, sizeof(state), r->element[0]);
    set_str(f->holder, sizeof(f->holder), r->element[1]);
    set_str(f->status, sizeof(f->status), r->element[2]);
    set_str(lease, sizeof(lease), r->element[3]);
    set_str(f->hash, sizeof(f->hash), r->element[4]);
    for (size_t i = 0; i < 5; i++)
        exists |= r->element[i]->type != REDIS_REPLY_NIL;
    freeReplyObject(r);
    snprintf(f->what, sizeof(f->what), "%s",
             !exists                                                                ? "absent"
             : strcmp(state, "inflight") == 0 && strtoll(lease, NULL, 10) >= m->now ? "kept_busy"
             : strcmp(state, "done") == 0 && !m->redo                               ? "kept_done"
                                                                                    : "released");
    return 0;
}

/* The real thing: dlq_requeue.lua. */
static int requeue_script(ctl *c, const dlq_entry *e, const plan *p, const move *m, fate *f)
{
    const char *argv[7];
    size_t lens[7];
    char now[24];
    redisReply *r;
    int rc = -1;

    snprintf(now, sizeof(now), "%lld", (long long)ctl_now_ms(c));
    argv[0] = c->k.dead, argv[1] = c->k.jobs, argv[2] = p->key;
    argv[3] = e->text, argv[4] = p->job, argv[5] = m->redo ? "redo" : "release";
    argv[6] = now;
    for (int i = 0; i < 7; i++)
        lens[i] = i == 3 ? e->len : strlen(argv[i]);
    r = ctl_script(c, "dlq_requeue", 3, 7, argv, lens);
    if (r == NULL)
        return -1;
    if (ctl_reply_is(r, REDIS_REPLY_ARRAY, "dlq_requeue") && r->elements >= 2 &&
        r->element[0]->type == REDIS_REPLY_INTEGER) {
        f->present = r->element[0]->integer == 1;
        set_str(f->what, sizeof(f->what), r->element[1]);
        if (r->elements >= 5) {
            set_str(f->holder, sizeof(f->holder), r->element[2]);
            set_str(f->status, sizeof(f->status), r->element[3]);
            set_str(f->hash, sizeof(f->hash), r->element[4]);
        }
        rc = 0;
    }
    freeReplyObject(r);
    return rc;
}

static int requeue_one(ctl *c, const dlq_entry *e, move *m, const plan *p, report *rp, char *note,
                       size_t note_size)
{
    static const char *const whats[] = {"absent", "released", "kept_done", "kept_busy"};
    fate f = {.present = false};

    if ((m->dry_run ? peek(c, e, p, m, &f) : requeue_script(c, e, p, m, &f)) != 0)
        return -1;
    if (!f.present) {
        rp->result = "gone";
        rp->reason = "no longer in the dead-letter list (removed by someone else)";
        m->gone++;
        return DLQ_NEXT;
    }
    for (size_t i = 0; i < sizeof(whats) / sizeof(whats[0]); i++)
        if (strcmp(f.what, whats[i]) == 0)
            rp->idem = whats[i];
    idem_note(&f, p, note, note_size);
    rp->result = m->dry_run ? "would requeue" : "requeued";
    rp->reason = note[0] != '\0' ? note : NULL;
    m->moved++;
    return m->dry_run ? DLQ_NEXT : DLQ_REMOVED;
}

static int requeue_visit(ctl *c, dlq_entry *e, void *data)
{
    move *m = data;
    report rp = {0};
    char note[512];
    plan p;
    int rc;

    if (interrupted)
        return DLQ_STOP;
    m->seen++;
    rc = plan_requeue(c, e, m->now, &p);
    if (rc < 0) {
        fprintf(stderr, "%s: out of memory\n", c->prog);
        cJSON_free(p.job);
        return -1;
    }
    if (rc > 0) {
        rp.result = "skipped";
        rp.reason = p.reason;
        m->skipped++;
        if (m->by_id)
            m->failed_ids++;
        report_line(m, e, &rp);
        cJSON_free(p.job);
        return DLQ_NEXT;
    }
    if (!pace(m)) {
        m->seen--;
        cJSON_free(p.job);
        return DLQ_STOP;
    }
    note[0] = '\0';
    rp.key = p.idem_key;
    rc = requeue_one(c, e, m, &p, &rp, note, sizeof(note));
    if (rc >= 0)
        report_line(m, e, &rp);
    cJSON_free(p.job);
    return rc;
}

/* --- drop ---------------------------------------------------------------- */

static int drop_visit(ctl *c, dlq_entry *e, void *data)
{
    move *m = data;
    report rp = {0};
    const char *argv[] = {m->dry_run ? "LPOS" : "LREM", c->k.dead, m->dry_run ? e->text : "-1",
                          e->text};
    size_t lens[] = {4, strlen(c->k.dead), m->dry_run ? e->len : 2, e->len};
    redisReply *r;
    bool present;

    if (interrupted)
        return DLQ_STOP;
    m->seen++;
    r = ctl_cmdv(c, m->dry_run ? 3 : 4, argv, lens);
    if (r == NULL)
        return -1;
    present = m->dry_run ? r->type == REDIS_REPLY_INTEGER
                         : r->type == REDIS_REPLY_INTEGER && r->integer > 0;
    freeReplyObject(r);
    if (!present) {
        rp.result = "gone";
        rp.reason = "no longer in the dead-letter list (removed by someone else)";
        m->gone++;
    } else {
        rp.result = m->dry_run ? "would drop" : "dropped";
        rp.reason = e->valid ? e->status : "not a dead-letter entry";
        m->moved++;
    }
    report_line(m, e, &rp);
    return present && !m->dry_run ? DLQ_REMOVED : DLQ_NEXT;
}

/* --- the commands -------------------------------------------------------- */

static int count_visit(ctl *c, dlq_entry *e, void *data)
{
    (void)c;
    (void)e;
    (void)data;
    return DLQ_NEXT;
}

static int run(ctl *c, move *m, dlq_filter *f)
{
    struct sigaction sa;
    long long n = 0;
    int rc;

    memset(&sa, 0, sizeof(sa));
    /* SA_RESTART keeps hiredis's reads going; the pacing sleep still wakes
     * up (sleeps are never restarted) */
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    m->total = -1;
    m->now = ctl_now_ms(c);
    if (m->rate > 0 && !m->dry_run) {
        /* count first, for "[k/N]" progress */
        if (dlq_scan(c, f, count_visit, NULL, &n) != 0)
            return CTL_ERR;
        m->total = n;
        if (f->nids > 0)
            memset(f->id_seen, 0, f->nids * sizeof(*f->id_seen));
    }
    clock_gettime(CLOCK_MONOTONIC, &m->next);
    rc = dlq_scan(c, f, m->requeue ? requeue_visit : drop_visit, m, NULL);
    summary(m);
    if (rc != 0)
        return CTL_ERR;
    if (dlq_filter_unmatched(f, c->prog) > 0 || m->failed_ids > 0 || interrupted)
        return CTL_ERR;
    return CTL_OK;
}

static int move_cmd(ctl *c, int argc, char **argv, bool requeue)
{
    static const struct option longopts[] = {
        {"provider", required_argument, NULL, OPT_PROVIDER},
        {"action", required_argument, NULL, OPT_ACTION},
        {"status", required_argument, NULL, OPT_STATUS},
        {"error", required_argument, NULL, OPT_ERROR},
        {"job", required_argument, NULL, OPT_JOB},
        {"since", required_argument, NULL, OPT_SINCE},
        {"limit", required_argument, NULL, OPT_LIMIT},
        {"malformed", no_argument, NULL, OPT_MALFORMED},
        {"all", no_argument, NULL, OPT_ALL},
        {"dry-run", no_argument, NULL, OPT_DRY_RUN},
        {"rate", required_argument, NULL, OPT_RATE},
        {"redo", no_argument, NULL, OPT_REDO},
        {"json", no_argument, NULL, OPT_JSON},
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *name = requeue ? "dlq requeue" : "dlq drop";
    move m = {.requeue = requeue, .json = c->json};
    dlq_filter f = {0};
    bool all = false;
    int ch, rc;

    while ((ch = ctl_getopt(c, argc, argv, "c:h", longopts)) != -1) {
        int k = dlq_filter_opt(&f, ch, optarg, c->prog);

        if (k < 0)
            return ctl_usage(c, name);
        if (k > 0)
            continue;
        switch (ch) {
        case OPT_ALL:
            all = true;
            break;
        case OPT_DRY_RUN:
            m.dry_run = true;
            break;
        case OPT_JSON:
            m.json = true;
            break;
        case OPT_RATE:
        case OPT_REDO:
            if (!requeue) {
                fprintf(stderr, "%s: %s is an option of dlq requeue\n", c->prog,
                        ch == OPT_RATE ? "--rate" : "--redo");
                return ctl_usage(c, name);
            }
            if (ch == OPT_REDO) {
                m.redo = true;
            } else if (cq_parse_rate(optarg, &m.rate) != 0 || m.rate <= 0) {
                fprintf(stderr, "%s: --rate: '%s' is not a rate (10/s, 300/m)\n", c->prog, optarg);
                return ctl_usage(c, name);
            }
            break;
        case 'c':
            c->conf_path = optarg;
            break;
        case 'h':
            return ctl_help(c, name);
        default:
            return ctl_usage(c, name);
        }
    }
    if (all == (optind < argc)) {
        fprintf(stderr, "%s: %s needs IDs or --all (not both)\n", c->prog, name);
        return ctl_usage(c, name);
    }
    if (dlq_filter_ids(&f, argc - optind, argv + optind, DLQ_ID_MIN, c->prog) != 0)
        return CTL_USAGE;
    m.by_id = !all;
    if (ctl_open(c) != 0)
        rc = CTL_ERR;
    else if (dlq_filter_check(c, &f) != 0)
        rc = CTL_USAGE;
    else
        rc = run(c, &m, &f);
    dlq_filter_clear(&f);
    return rc;
}

int dlq_cmd_requeue(ctl *c, int argc, char **argv)
{
    return move_cmd(c, argc, argv, true);
}

int dlq_cmd_drop(ctl *c, int argc, char **argv)
{
    return move_cmd(c, argc, argv, false);
}
