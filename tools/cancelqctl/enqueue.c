/*
 * enqueue.c - `cancelqctl enqueue`: build a job from flags (or take a job
 * file), check it exactly as cancelqd will (job_check.c), and LPUSH it onto
 * {P}:jobs.  Nothing is pushed unless the job passes, so a billing engineer
 * trying things out sees "params.serviceid: ..." at once instead of an
 * `invalid` dead letter later.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "ctl.h"

#define PARAMS_MAX 64                    /* --param flags */
#define INT_EXACT_MAX 9007199254740991LL /* 2^53 - 1: larger integers are not exact in JSON */

enum { O_PROVIDER = 1000, O_ACTION, O_PARAM, O_ID, O_KEY, O_FILE, O_DRY_RUN, O_JSON };

typedef struct enq {
    const char *provider, *action, *id, *key, *file;
    const char *params[PARAMS_MAX];
    size_t nparams;
    bool dry_run, json;
} enq;

/* --- building the job ---------------------------------------------------- */

/* An integer by JSON's grammar (no sign '+', no leading zeros), exact in a
 * double. */
static bool strict_int(const char *s, long long *out)
{
    const char *d = *s == '-' ? s + 1 : s;

    if (*d == '\0' || (*d == '0' && d[1] != '\0'))
        return false;
    for (const char *p = d; *p != '\0'; p++)
        if (*p < '0' || *p > '9')
            return false;
    return ctl_parse_ll(s, -INT_EXACT_MAX, INT_EXACT_MAX, out) == 0;
}

/* "k=v" (integer when v is one, else string) or "k:=JSON".  Returns the
 * value, or NULL with a usage message. */
static cJSON *param_value(const ctl *c, const char *arg, char *key, size_t key_size)
{
    const char *eq = strchr(arg, '=');
    size_t klen;
    long long n;
    bool raw;
    cJSON *v;

    if (eq == NULL || eq == arg) {
        fprintf(stderr, "%s: --param '%s': expected KEY=VALUE or KEY:=JSON\n", c->prog, arg);
        return NULL;
    }
    raw = eq[-1] == ':';
    klen = (size_t)(eq - arg) - (raw ? 1 : 0);
    if (klen == 0 || klen >= key_size) {
        fprintf(stderr, "%s: --param '%s': bad key\n", c->prog, arg);
        return NULL;
    }
    memcpy(key, arg, klen);
    key[klen] = '\0';
    if (raw) {
        v = cJSON_Parse(eq + 1);
        if (v == NULL)
            fprintf(stderr, "%s: --param %s: '%s' is not JSON\n", c->prog, key, eq + 1);
        return v;
    }
    v = strict_int(eq + 1, &n) ? cJSON_CreateNumber((double)n) : cJSON_CreateString(eq + 1);
    if (v == NULL)
        fprintf(stderr, "%s: out of memory\n", c->prog);
    return v;
}

static void default_id(char *out, size_t size)
{
    unsigned char rnd[3] = {0};
    time_t now = time(NULL);
    struct tm tm;
    char when[32];

    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        rnd[0] = (unsigned char)clock(); /* uniqueness only; the time part carries most */
    gmtime_r(&now, &tm);
    strftime(when, sizeof(when), "%Y%m%dT%H%M%SZ", &tm);
    snprintf(out, size, "ctl-%s-%02x%02x%02x", when, rnd[0], rnd[1], rnd[2]);
}

/* The job text from the flags (heap, cJSON_free), or NULL (reported;
 * *usage set when the command line is at fault). */
static char *build_job(const ctl *c, const enq *q, bool *usage)
{
    cJSON *job = cJSON_CreateObject(), *params;
    char id[64] = "", key[128];
    char *text = NULL;

    *usage = false;
    if (q->id == NULL)
        default_id(id, sizeof(id));
    if (job == NULL || cJSON_AddStringToObject(job, "id", q->id != NULL ? q->id : id) == NULL ||
        cJSON_AddStringToObject(job, "provider", q->provider) == NULL ||
        cJSON_AddStringToObject(job, "action", q->action) == NULL ||
        (params = cJSON_AddObjectToObject(job, "params")) == NULL ||
        (q->key != NULL && cJSON_AddStringToObject(job, "idempotency_key", q->key) == NULL))
        goto nomem;
    for (size_t i = 0; i < q->nparams; i++) {
        cJSON *v = param_value(c, q->params[i], key, sizeof(key));

        if (v == NULL) {
            *usage = true;
            goto out;
        }
        if (cJSON_GetObjectItemCaseSensitive(params, key) != NULL) {
            fprintf(stderr, "%s: --param %s given twice\n", c->prog, key);
            cJSON_Delete(v);
            *usage = true;
            goto out;
        }
        if (!cJSON_AddItemToObject(params, key, v)) {
            cJSON_Delete(v);
            goto nomem;
        }
    }
    text = cJSON_PrintUnformatted(job);
    if (text != NULL)
        goto out;
nomem:
    fprintf(stderr, "%s: out of memory\n", c->prog);
out:
    cJSON_Delete(job);
    return text;
}

/* The job file (or stdin for "-"), at most one byte past the job limit so
 * that an oversized file is reported as such by the job parser. */
static char *read_job_file(const ctl *c, const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    char *buf = NULL;
    size_t n;

    if (f == NULL) {
        fprintf(stderr, "%s: %s: %s\n", c->prog, path, strerror(errno));
        return NULL;
    }
    buf = malloc(CQ_JOB_MAX_BYTES + 2);
    if (buf == NULL) {
        fprintf(stderr, "%s: out of memory\n", c->prog);
        goto out;
    }
    n = fread(buf, 1, CQ_JOB_MAX_BYTES + 1, f);
    if (ferror(f)) {
        fprintf(stderr, "%s: %s: read error\n", c->prog, path);
        free(buf);
        buf = NULL;
        goto out;
    }
    buf[n] = '\0';
    *len = n;
out:
    if (f != stdin)
        fclose(f);
    return buf;
}

/* --- explaining a refused job --------------------------------------------- */

/* "params.KEY: ..." -> KEY into key[size]; false when msg is not that. */
static bool param_of(const char *msg, char *key, size_t size)
{
    size_t n;

    if (strncmp(msg, "params.", 7) != 0)
        return false;
    msg += 7;
    n = strcspn(msg, ":");
    if (msg[n] != ':' || n == 0 || n >= size)
        return false;
    memcpy(key, msg, n);
    key[n] = '\0';
    return true;
}

/* Every missing parameter at once: the adapter stops at the first, so put
 * a stand-in for it (an integer, else a string) and ask again, until the
 * params pass or something else is wrong.  Prints the list, and the first
 * other complaint about the params the user gave. */
static void missing_params(const ctl *c, const cq_action *a, const cJSON *params)
{
    cJSON *p = cJSON_Duplicate(params, 1);
    char key[128], missing[PARAMS_MAX][128], target[CQ_TARGET_MAX], other[CQ_ERR_MSG_MAX] = "";
    bool as_string[PARAMS_MAX] = {false};
    size_t n = 0;

    for (int round = 0; p != NULL && round < 2 * PARAMS_MAX; round++) {
        cq_err e;
        size_t i;

        cq_err_clear(&e);
        if (a->validate(p, target, sizeof(target), &e) == 0 || !param_of(e.msg, key, sizeof(key)))
            break;
        for (i = 0; i < n && strcmp(missing[i], key) != 0; i++)
            ;
        if (i == n && strcmp(e.code, "missing_field") == 0 && n < PARAMS_MAX) {
            snprintf(missing[n++], sizeof(missing[0]), "%s", key);
            cJSON_AddItemToObject(p, key, cJSON_CreateNumber(1));
        } else if (i < n && !as_string[i]) {
            as_string[i] = true; /* the stand-in had the wrong type */
            cJSON_ReplaceItemInObjectCaseSensitive(p, key, cJSON_CreateString("x"));
        } else {
            if (i == n)
                snprintf(other, sizeof(other), "%s", e.msg);
            break;
        }
    }
    cJSON_Delete(p);
    if (n == 0)
        return;
    fprintf(stderr, "%s: job not pushed: ", c->prog);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "%sparams.%s", i > 0 ? ", " : "", missing[i]);
    fprintf(stderr, ": missing (action %s)\n", a->name);
    if (other[0] != '\0')
        fprintf(stderr, "%s: and %s\n", c->prog, other);
}

/* The refusal, with what would have been right: the instances, the
 * adapter's actions, every missing parameter. */
static void explain(const ctl *c, const cq_checked *ck, const cq_err *err)
{
    const char *names[CQ_CONF_MAX_PROVIDERS], *near = NULL;
    char list[512];
    size_t n = 0;

    if (strcmp(err->code, "unknown_provider") == 0 && ck->job.provider != NULL) {
        for (size_t i = 0; i < c->cfg->nproviders && n < CQ_CONF_MAX_PROVIDERS; i++)
            names[n++] = c->cfg->providers[i].name;
        near = ctl_suggest(ck->job.provider, names, n);
        ctl_join(list, sizeof(list), names, n);
        fprintf(stderr, "%s: job not pushed: %s%s%s%s; instances in %s: %s\n", c->prog, err->msg,
                near != NULL ? " (did you mean " : "", near != NULL ? near : "",
                near != NULL ? "?)" : "", c->conf_path, n > 0 ? list : "(none)");
        return;
    }
    if (strcmp(err->code, "unknown_action") == 0 && ck->adapter != NULL && ck->job.action != NULL) {
        for (size_t i = 0; i < ck->adapter->nactions && n < CQ_CONF_MAX_PROVIDERS; i++)
            names[n++] = ck->adapter->actions[i].name;
        near = ctl_suggest(ck->job.action, names, n);
        ctl_join(list, sizeof(list), names, n);
        fprintf(stderr, "%s: job not pushed: %s%s%s%s; actions of %s: %s\n", c->prog, err->msg,
                near != NULL ? " (did you mean " : "", near != NULL ? near : "",
                near != NULL ? "?)" : "", ck->adapter->name, list);
        return;
    }
    if (strcmp(err->code, "missing_field") == 0 && ck->action != NULL &&
        cJSON_IsObject(ck->job.params)) {
        missing_params(c, ck->action, ck->job.params);
        return;
    }
    fprintf(stderr, "%s: job not pushed: %s\n", c->prog, err->msg);
}

/* --- pushing ------------------------------------------------------------- */

/* Tell the user when the key's record means the daemon will not call. */
static void idem_note(ctl *c, const char *idem_key, const cq_job *job)
{
    redisReply *r = ctl_cmd(c, 5, "HMGET", idem_key, "state", "id", "status");
    const char *state, *holder;

    if (r == NULL)
        return;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
        r->element[0]->type == REDIS_REPLY_STRING) {
        state = r->element[0]->str;
        holder = r->element[1]->type == REDIS_REPLY_STRING ? r->element[1]->str : "?";
        fprintf(stderr, "%s: note: idempotency key ", c->prog);
        out_cell(stderr, job->idem_key, 0);
        if (strcmp(state, "done") == 0)
            fputs(" was already carried out by job ", stderr);
        else
            fputs(" is held right now by job ", stderr);
        out_cell(stderr, holder, 0);
        fputs(strcmp(state, "done") == 0
                  ? ": the daemon will answer 'duplicate' without calling the provider\n"
                  : ": this job waits for it\n",
              stderr);
    }
    freeReplyObject(r);
}

static int print_result(const ctl *c, const cq_checked *ck, const char *text, bool json,
                        bool dry_run)
{
    const cq_job *job = &ck->job;
    cJSON *o, *parsed;

    if (!json && !dry_run) {
        out_cell(stdout, job->id, 0);
        putchar('\n');
        return CTL_OK;
    }
    parsed = cJSON_Parse(text);
    if (!json) {
        out_json(stdout, parsed, true);
        cJSON_Delete(parsed);
        fprintf(stderr, "%s: dry run: job is valid, not pushed\n", c->prog);
        return CTL_OK;
    }
    o = cJSON_CreateObject();
    if (o == NULL || parsed == NULL || cJSON_AddStringToObject(o, "id", job->id) == NULL ||
        cJSON_AddStringToObject(o, "idempotency_key", job->idem_key) == NULL ||
        cJSON_AddStringToObject(o, "params_hash", ck->hash) == NULL ||
        cJSON_AddBoolToObject(o, "pushed", !dry_run) == NULL ||
        !cJSON_AddItemToObject(o, "job", parsed)) {
        cJSON_Delete(o);
        cJSON_Delete(parsed);
        fprintf(stderr, "%s: out of memory\n", c->prog);
        return CTL_ERR;
    }
    out_json(stdout, o, false);
    cJSON_Delete(o);
    return CTL_OK;
}

static int check_and_push(ctl *c, const enq *q, const char *text, size_t len)
{
    const char *argv[3];
    size_t lens[3];
    redisReply *r;
    cq_checked ck;
    cq_err err;
    int rc = CTL_ERR;

    cq_err_clear(&err);
    if (cq_job_check(c->cfg, &c->k, text, len, &ck, &err) != 0) {
        explain(c, &ck, &err);
        goto out;
    }
    if (ck.job.deadline_ms > 0 && ck.job.deadline_ms <= ctl_now_ms(c))
        fprintf(stderr,
                "%s: note: the deadline has passed: the daemon will end the job as "
                "expired\n",
                c->prog);
    idem_note(c, ck.idem_key, &ck.job);
    if (!q->dry_run) {
        argv[0] = "LPUSH", argv[1] = c->k.jobs, argv[2] = text;
        lens[0] = 5, lens[1] = strlen(c->k.jobs), lens[2] = len;
        r = ctl_cmdv(c, 3, argv, lens);
        if (r == NULL)
            goto out;
        freeReplyObject(r);
    }
    rc = print_result(c, &ck, text, q->json, q->dry_run);
out:
    cq_checked_clear(&ck);
    return rc;
}

/* --- the command --------------------------------------------------------- */

static int parse(ctl *c, enq *q, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"provider", required_argument, NULL, O_PROVIDER},
        {"action", required_argument, NULL, O_ACTION},
        {"param", required_argument, NULL, O_PARAM},
        {"id", required_argument, NULL, O_ID},
        {"key", required_argument, NULL, O_KEY},
        {"file", required_argument, NULL, O_FILE},
        {"dry-run", no_argument, NULL, O_DRY_RUN},
        {"json", no_argument, NULL, O_JSON},
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch;

    while ((ch = ctl_getopt(c, argc, argv, "c:h", longopts)) != -1) {
        switch (ch) {
        case O_PROVIDER:
            q->provider = optarg;
            break;
        case O_ACTION:
            q->action = optarg;
            break;
        case O_ID:
            q->id = optarg;
            break;
        case O_KEY:
            q->key = optarg;
            break;
        case O_FILE:
            q->file = optarg;
            break;
        case O_DRY_RUN:
            q->dry_run = true;
            break;
        case O_JSON:
            q->json = true;
            break;
        case 'c':
            c->conf_path = optarg;
            break;
        case 'h':
            return 1;
        case O_PARAM:
            if (q->nparams == PARAMS_MAX) {
                fprintf(stderr, "%s: at most %d --param\n", c->prog, PARAMS_MAX);
                return -1;
            }
            q->params[q->nparams++] = optarg;
            break;
        default:
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s: enqueue: unexpected argument '%s'\n", c->prog, argv[optind]);
        return -1;
    }
    if (q->file != NULL && (q->provider != NULL || q->action != NULL || q->nparams > 0 ||
                            q->id != NULL || q->key != NULL)) {
        fprintf(stderr,
                "%s: --file takes the whole job: no --provider, --action, --param, "
                "--id or --key with it\n",
                c->prog);
        return -1;
    }
    if (q->file == NULL && (q->provider == NULL || q->action == NULL)) {
        fprintf(stderr, "%s: enqueue needs --provider and --action (or --file)\n", c->prog);
        return -1;
    }
    return 0;
}

int cmd_enqueue(ctl *c, int argc, char **argv)
{
    enq q = {.json = c->json};
    char *text = NULL;
    size_t len = 0;
    bool usage = false;
    int rc;

    rc = parse(c, &q, argc, argv);
    if (rc != 0)
        return rc > 0 ? ctl_help(c, "enqueue") : ctl_usage(c, "enqueue");
    if (q.file != NULL) {
        text = read_job_file(c, q.file, &len);
    } else {
        text = build_job(c, &q, &usage);
        len = text != NULL ? strlen(text) : 0;
    }
    if (text == NULL)
        return usage ? ctl_usage(c, "enqueue") : CTL_ERR;
    rc = ctl_open(c) != 0 ? CTL_ERR : check_and_push(c, &q, text, len);
    if (q.file != NULL)
        free(text);
    else
        cJSON_free(text);
    return rc;
}
