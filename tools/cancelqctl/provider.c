/*
 * provider.c - `cancelqctl provider pause|resume|list`: an operator's pause
 * of a provider instance, for planned maintenance or an emergency stop
 * (docs/design.md §8).
 *
 * A pause is the hash {P}:pause:<instance> {until, reason, by, at}: until
 * is Redis time in ms, 0 = until resumed.  Every worker reads it with each
 * claim (claim.lua) and with each heartbeat's share request (share.lua)
 * for instances it has work for, so calls stop within a heartbeat; jobs of
 * a paused instance go back to delayed without spending an attempt and
 * come back when the pause ends.  Requests already in flight finish.
 */
#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cancelq/rfc3339.h"
#include "ctl.h"

enum { OPT_FOR = 1000, OPT_REASON };

#define REASON_MAX 200      /* bytes of --reason kept */
#define PAUSE_KEEP_MS 60000 /* a timed pause's key outlives its end by this */

/* The instance NAME of the config, or NULL after saying which exist. */
static const cq_provider_conf *instance(const ctl *c, const char *name)
{
    const char *names[64];
    const char *near;
    size_t i, n = 0;
    char all[512];

    for (i = 0; i < c->cfg->nproviders; i++) {
        if (strcmp(c->cfg->providers[i].name, name) == 0)
            return &c->cfg->providers[i];
        if (n < sizeof(names) / sizeof(names[0]))
            names[n++] = c->cfg->providers[i].name;
    }
    near = ctl_suggest(name, names, n);
    ctl_join(all, sizeof(all), names, n);
    fprintf(stderr, "%s: no provider instance '%s' in %s%s%s%s (there are: %s)\n", c->prog, name,
            c->conf_path, near != NULL ? "; did you mean " : "", near != NULL ? near : "",
            near != NULL ? "?" : "", all);
    return NULL;
}

/* "user@host" of whoever runs this, for the pause's "by". */
static void who(char *buf, size_t size)
{
    const char *u = getenv("SUDO_USER");
    const struct passwd *pw;
    char host[128] = "";

    if (u == NULL || u[0] == '\0')
        u = (pw = getpwuid(getuid())) != NULL ? pw->pw_name : NULL;
    if (u == NULL || u[0] == '\0')
        u = "unknown";
    if (gethostname(host, sizeof(host) - 1) != 0)
        snprintf(host, sizeof(host), "unknown");
    snprintf(buf, size, "%s@%s", u, host);
}

/* --- pause / resume --------------------------------------------------------- */

static int parse_pause(ctl *c, int argc, char **argv, uint64_t *for_ms, const char **reason)
{
    static const struct option longopts[] = {
        {"for", required_argument, NULL, OPT_FOR},
        {"reason", required_argument, NULL, OPT_REASON},
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch;

    while ((ch = ctl_getopt(c, argc, argv, "c:h", longopts)) != -1) {
        if (ch == OPT_FOR) {
            if (cq_parse_duration_ms(optarg, for_ms) != 0 || *for_ms == 0) {
                fprintf(stderr, "%s: --for: bad duration '%s' (e.g. 90s, 30m, 2h)\n", c->prog,
                        optarg);
                return CTL_USAGE;
            }
        } else if (ch == OPT_REASON) {
            *reason = optarg;
        } else if (ch == 'c') {
            c->conf_path = optarg;
        } else if (ch == 'h') {
            return ctl_help(c, "provider pause");
        } else {
            return ctl_usage(c, "provider pause");
        }
    }
    if (argc - optind != 1) {
        fprintf(stderr, "%s: provider pause takes one provider instance name\n", c->prog);
        return ctl_usage(c, "provider pause");
    }
    return -1;
}

static int cmd_pause(ctl *c, int argc, char **argv)
{
    uint64_t for_ms = 0;
    const char *reason = "", *name;
    const cq_provider_conf *pc;
    char key[CQ_KEY_MAX], until[24], at[24], by[200], why[REASON_MAX + 1], keep[24], t[32];
    int64_t now;
    redisReply *r;
    int rc = parse_pause(c, argc, argv, &for_ms, &reason);

    if (rc >= 0)
        return rc;
    name = argv[optind];
    if (ctl_open(c) != 0)
        return CTL_ERR;
    if ((pc = instance(c, name)) == NULL)
        return CTL_USAGE;
    if (cq_keys_pause(&c->k, pc->name, key, sizeof(key)) != 0)
        return CTL_ERR;
    now = ctl_now_ms(c);
    snprintf(until, sizeof(until), "%lld", for_ms > 0 ? (long long)(now + (int64_t)for_ms) : 0LL);
    snprintf(at, sizeof(at), "%lld", (long long)now);
    snprintf(why, sizeof(why), "%.*s", REASON_MAX, reason);
    who(by, sizeof(by));
    r = ctl_cmd(c, 10, "HSET", key, "until", until, "reason", why, "by", by, "at", at);
    if (r == NULL)
        return CTL_ERR;
    freeReplyObject(r);
    /* a timed pause cleans up after itself; an open-ended one persists */
    snprintf(keep, sizeof(keep), "%llu", (unsigned long long)for_ms + PAUSE_KEEP_MS);
    r = for_ms > 0 ? ctl_cmd(c, 3, "PEXPIRE", key, keep) : ctl_cmd(c, 2, "PERSIST", key);
    if (r == NULL)
        return CTL_ERR;
    freeReplyObject(r);
    if (for_ms > 0) {
        cq_format_rfc3339(now + (int64_t)for_ms, t);
        printf("provider %s paused until %s\n", pc->name, t);
    } else {
        printf("provider %s paused until resumed (cancelqctl provider resume %s)\n", pc->name,
               pc->name);
    }
    printf("workers start no new call to it from their next claim or heartbeat (within %llu "
           "ms); calls in flight finish; its jobs wait in delayed without spending attempts\n",
           (unsigned long long)c->cfg->worker.heartbeat_ms);
    return CTL_OK;
}

static int cmd_resume(ctl *c, int argc, char **argv)
{
    const cq_provider_conf *pc;
    char key[CQ_KEY_MAX];
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    long long n;
    int ch;

    while ((ch = ctl_getopt(c, argc, argv, "c:h", longopts)) != -1) {
        if (ch == 'c')
            c->conf_path = optarg;
        else if (ch == 'h')
            return ctl_help(c, "provider resume");
        else
            return ctl_usage(c, "provider resume");
    }
    if (argc - optind != 1) {
        fprintf(stderr, "%s: provider resume takes one provider instance name\n", c->prog);
        return ctl_usage(c, "provider resume");
    }
    if (ctl_open(c) != 0)
        return CTL_ERR;
    if ((pc = instance(c, argv[optind])) == NULL)
        return CTL_USAGE;
    if (cq_keys_pause(&c->k, pc->name, key, sizeof(key)) != 0)
        return CTL_ERR;
    n = ctl_int(ctl_cmd(c, 2, "DEL", key), "DEL");
    if (n < 0)
        return CTL_ERR;
    printf(n > 0 ? "provider %s resumed: workers call it again from their next claim or "
                   "heartbeat; its delayed jobs come back when due\n"
                 : "provider %s was not paused by an operator\n",
           pc->name);
    return CTL_OK;
}

/* --- list ------------------------------------------------------------------ */

/* What one instance looks like now, from its pause, limit and share keys. */
typedef struct inst_state {
    int64_t pause_until; /* operator's: -1 none, 0 until resumed, else ms */
    char reason[REASON_MAX * 4 + 8], by[256];
    int64_t open_until, p429_until; /* the breaker's end, a 429 pause's end (ms; 0 none) */
    char opened_by[128];
    int workers;     /* workers with work for it (share entries still valid) */
    long long slots; /* concurrency they hold */
} inst_state;

static int64_t num(const redisReply *r)
{
    return r != NULL && r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10) : 0;
}

static void text(const redisReply *r, char *buf, size_t size)
{
    buf[0] = '\0';
    if (r != NULL && r->type == REDIS_REPLY_STRING)
        out_escape(buf, size, r->str, r->len, 120);
}

/* A share entry's first six fields (want inflight held rate burst expiry;
 * rate and burst cut to integers), or false. */
static bool share_fields(const char *s, long long f[6])
{
    char *end;

    for (int i = 0; i < 6; i++) {
        f[i] = strtoll(s, &end, 10);
        if (end == s)
            return false;
        if (*end == '.') /* rate, burst: "%.6f" */
            strtod(s, &end);
        s = end;
    }
    return true;
}

static int read_state(ctl *c, const char *name, inst_state *s)
{
    char pkey[CQ_KEY_MAX], lkey[CQ_KEY_MAX], skey[CQ_KEY_MAX];
    int64_t now = ctl_now_ms(c);
    redisReply *r;

    memset(s, 0, sizeof(*s));
    s->pause_until = -1;
    if (cq_keys_pause(&c->k, name, pkey, sizeof(pkey)) != 0 ||
        cq_keys_limit(&c->k, name, lkey, sizeof(lkey)) != 0 ||
        cq_keys_share(&c->k, name, skey, sizeof(skey)) != 0)
        return -1;
    if ((r = ctl_cmd(c, 5, "HMGET", pkey, "until", "reason", "by")) == NULL)
        return -1;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
        r->element[0]->type == REDIS_REPLY_STRING) {
        s->pause_until = num(r->element[0]);
        if (s->pause_until > 0 && s->pause_until <= now)
            s->pause_until = -1; /* over */
        text(r->element[1], s->reason, sizeof(s->reason));
        text(r->element[2], s->by, sizeof(s->by));
    }
    freeReplyObject(r);
    if ((r = ctl_cmd(c, 5, "HMGET", lkey, "open_until", "opened_by", "pause_until")) == NULL)
        return -1;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 3) {
        s->open_until = num(r->element[0]) > now ? num(r->element[0]) : 0;
        text(r->element[1], s->opened_by, sizeof(s->opened_by));
        s->p429_until = num(r->element[2]) > now ? num(r->element[2]) : 0;
    }
    freeReplyObject(r);
    if ((r = ctl_cmd(c, 2, "HVALS", skey)) == NULL)
        return -1;
    /* "want inflight conc rate burst expiry [since]" (share.lua) */
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        long long f[6];

        if (r->element[i]->type == REDIS_REPLY_STRING && share_fields(r->element[i]->str, f) &&
            f[5] >= now && f[0] > 0) {
            s->workers++;
            s->slots += f[2];
        }
    }
    freeReplyObject(r);
    return 0;
}

static const char *state_word(const inst_state *s)
{
    if (s->pause_until >= 0)
        return "paused";
    if (s->open_until > 0)
        return "breaker-open";
    if (s->p429_until > 0)
        return "429-pause";
    return "running";
}

static void print_row(const cq_provider_conf *pc, const inst_state *s, int64_t now)
{
    char t[32], in[24];

    printf("%-16s %-15s %-13s", pc->name, pc->adapter, state_word(s));
    if (s->pause_until == 0) {
        printf(" until resumed");
    } else if (s->pause_until > 0) {
        cq_format_rfc3339(s->pause_until, t);
        out_age(s->pause_until - now, in, sizeof(in));
        printf(" until %s (%s)", t, in);
    }
    if (s->pause_until >= 0 && s->reason[0] != '\0')
        printf(", reason: %s", s->reason);
    if (s->pause_until >= 0 && s->by[0] != '\0')
        printf(", by %s", s->by);
    if (s->open_until > 0) {
        out_age(s->open_until - now, in, sizeof(in));
        printf("%s breaker open %s more%s%s", s->pause_until >= 0 ? ";" : "", in,
               s->opened_by[0] != '\0' ? ", opened by " : "", s->opened_by);
    }
    if (s->p429_until > 0) {
        out_age(s->p429_until - now, in, sizeof(in));
        printf("; 429 pause %s more", in);
    }
    printf("  [%d worker%s with work, %lld of %d slots]\n", s->workers, s->workers == 1 ? "" : "s",
           s->slots, pc->concurrency);
}

static cJSON *row_json(const cq_provider_conf *pc, const inst_state *s)
{
    cJSON *o = cJSON_CreateObject();

    if (o == NULL || cJSON_AddStringToObject(o, "provider", pc->name) == NULL ||
        cJSON_AddStringToObject(o, "adapter", pc->adapter) == NULL ||
        cJSON_AddStringToObject(o, "state", state_word(s)) == NULL ||
        cJSON_AddBoolToObject(o, "paused", s->pause_until >= 0) == NULL ||
        cJSON_AddNumberToObject(o, "pause_until_ms", (double)s->pause_until) == NULL ||
        cJSON_AddStringToObject(o, "pause_reason", s->reason) == NULL ||
        cJSON_AddStringToObject(o, "paused_by", s->by) == NULL ||
        cJSON_AddNumberToObject(o, "breaker_open_until_ms", (double)s->open_until) == NULL ||
        cJSON_AddStringToObject(o, "breaker_opened_by", s->opened_by) == NULL ||
        cJSON_AddNumberToObject(o, "pause_429_until_ms", (double)s->p429_until) == NULL ||
        cJSON_AddNumberToObject(o, "workers_with_work", s->workers) == NULL ||
        cJSON_AddNumberToObject(o, "slots_held", (double)s->slots) == NULL ||
        cJSON_AddNumberToObject(o, "concurrency", pc->concurrency) == NULL) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static int cmd_list(ctl *c, int argc, char **argv)
{
    bool json = c->json;
    cJSON *arr = NULL;
    inst_state s;
    int rc = ctl_parse_plain(c, argc, argv, "provider list", &json);

    if (rc >= 0)
        return rc;
    if (argc - optind != 0) {
        fprintf(stderr, "%s: provider list takes no arguments\n", c->prog);
        return ctl_usage(c, "provider list");
    }
    if (ctl_open(c) != 0)
        return CTL_ERR;
    if (json && (arr = cJSON_CreateArray()) == NULL)
        return CTL_ERR;
    rc = CTL_OK;
    for (size_t i = 0; i < c->cfg->nproviders && rc == CTL_OK; i++) {
        const cq_provider_conf *pc = &c->cfg->providers[i];
        cJSON *o;

        if (read_state(c, pc->name, &s) != 0) {
            rc = CTL_ERR;
        } else if (!json) {
            print_row(pc, &s, ctl_now_ms(c));
        } else if ((o = row_json(pc, &s)) == NULL || !cJSON_AddItemToArray(arr, o)) {
            cJSON_Delete(o);
            rc = CTL_ERR;
        }
    }
    if (json && rc == CTL_OK)
        out_json(stdout, arr, true);
    cJSON_Delete(arr);
    return rc;
}

int cmd_provider(ctl *c, int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "%s: provider needs a command (pause, resume, list)\n", c->prog);
        return ctl_usage(c, "provider");
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)
        return ctl_help(c, "provider");
    if (strcmp(argv[1], "pause") == 0)
        return cmd_pause(c, argc - 1, argv + 1);
    if (strcmp(argv[1], "resume") == 0)
        return cmd_resume(c, argc - 1, argv + 1);
    if (strcmp(argv[1], "list") == 0)
        return cmd_list(c, argc - 1, argv + 1);
    fprintf(stderr, "%s: unknown provider command '%s' (pause, resume, list)\n", c->prog, argv[1]);
    return ctl_usage(c, "provider");
}
