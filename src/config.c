/*
 * config.c - load and validate the cancelq config file (config.h).
 *
 * One option table, opts[] below, drives parsing, defaults, freeing and the
 * summary, as in redis' config.c: adding a key is one row there plus, for
 * a key that depends on others, a line in the section's finish_*() check.
 *
 * inih does the INI syntax.  Debian's libinih is built without
 * INI_HANDLER_LINENO, and it copies section names into a 50-byte buffer
 * (a 64-character provider name would arrive truncated) and never tells the
 * handler about a section without keys.  So the text is fed to
 * ini_parse_stream() by conf_reader(), which hands out exactly one line per
 * call (inih reads one line per call), counts them, and itself opens and
 * closes sections: the handler only sees key = value pairs and applies them
 * to the section the reader opened.  The reader also strips leading blanks,
 * so that inih never treats an indented key as a continuation of the
 * previous value, and refuses lines too long for inih's fixed buffer rather
 * than letting inih split them silently.
 *
 * Errors: the first one wins and stops the parse; its message is
 * "FILE:LINE: [section] key: reason".  Keys missing from a section name the
 * line of the section header.
 */
#include "cancelq/config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <ini.h>

#include "cancelq/adapter.h"
#include "config_value.h"

/* A config file is a few kilobytes; this is a sanity bound, not a tuning knob. */
#define CQ_CONF_FILE_MAX CQ_MIB
/* Worker ids go into Redis key names and log lines. */
#define CQ_WORKER_ID_MAX 128
/* OAuth client ids, scopes, user names and similar free text. */
#define CQ_CONF_TEXT_MAX 256
/* Section label "provider NAME" (and room for an unknown section's text). */
#define CQ_LABEL_MAX (CQ_CONF_NAME_MAX + 16)
/* Longest "[...]" text examined (lines are shorter than this anyway). */
#define CQ_SECTION_TEXT_MAX 256
/* Burst when a rate is set and burst is not. */
#define CQ_BURST_DEFAULT 10

/* The option table ------------------------------------------------------- */

#define R(f) CQ_SEC_REDIS, offsetof(cq_redis_conf, f)
#define W(f) CQ_SEC_WORKER, offsetof(cq_worker_conf, f)
#define P(f) CQ_SEC_PROVIDER, offsetof(cq_provider_conf, f)

/* A row is {key, section + offset, type, min, max, default, required};
 * config_value.h says what min and max mean for each type. */
static const cq_conf_opt opts[] = {
    {"host", R(host), CQ_OT_STRING, 1, 255, "127.0.0.1", false},
    {"port", R(port), CQ_OT_INT, 1, 65535, "6379", false},
    {"unix_socket", R(unix_socket), CQ_OT_SOCKET, 1,
     sizeof(((struct sockaddr_un *)0)->sun_path) - 1, NULL, false},
    {"password_file", R(password_file), CQ_OT_SECRET, 0, 0, NULL, false},
    {"db", R(db), CQ_OT_INT, 0, INT_MAX, "0", false},
    {"prefix", R(prefix), CQ_OT_PREFIX, 1, CQ_CONF_NAME_MAX, "cancelq", false},
    {"connect_timeout", R(connect_timeout_ms), CQ_OT_DURATION, 1, CQ_MS_HOUR, "2s", false},
    {"sentinels", R(sentinels), CQ_OT_STRING, 1, 1024, NULL, false},
    {"master_name", R(master_name), CQ_OT_STRING, 1, 128, NULL, false},
    {"cluster", R(cluster), CQ_OT_STRING, 1, 1024, NULL, false},

    {"id", W(id), CQ_OT_ID, 1, CQ_WORKER_ID_MAX, NULL, false},
    {"concurrency", W(concurrency), CQ_OT_INT, 1, 10000, "256", false},
    {"max_attempts", W(max_attempts), CQ_OT_INT, 1, 100, "10", false},
    {"backoff_base", W(backoff_base_ms), CQ_OT_DURATION, 1, CQ_MS_HOUR, "1s", false},
    {"backoff_max", W(backoff_max_ms), CQ_OT_DURATION, 1, CQ_MS_DAY, "5m", false},
    {"retry_after_max", W(retry_after_max_ms), CQ_OT_DURATION, CQ_MS_SEC, CQ_MS_DAY, "10m", false},
    {"idempotency_ttl", W(idempotency_ttl_ms), CQ_OT_DURATION, CQ_MS_MIN, 365 * CQ_MS_DAY, "7d",
     false},
    {"lease", W(lease_ms), CQ_OT_DURATION, CQ_MS_SEC, CQ_MS_HOUR, "15s", false},
    {"shutdown_grace", W(shutdown_grace_ms), CQ_OT_DURATION, 0, CQ_MS_HOUR, "20s", false},
    {"results_maxlen", W(results_maxlen), CQ_OT_LLONG, 1000, 1000000000, "1000000", false},
    {"metrics_listen", W(metrics_listen), CQ_OT_HOSTPORT, 3, 300, NULL, false},

    {"adapter", P(adapter), CQ_OT_STRING, 1, CQ_CONF_NAME_MAX, NULL, false},
    {"base_url", P(base_url), CQ_OT_URL, 0, 0, NULL, true},
    {"allow_insecure_http", P(allow_insecure_http), CQ_OT_BOOL, 0, 0, "no", false},
    {"format", P(format), CQ_OT_FORMAT, 0, 0, "json", false},
    {"token_file", P(token_file), CQ_OT_SECRET, 0, 0, NULL, false},
    {"token_url", P(token_url), CQ_OT_URL, 0, 0, NULL, false},
    {"client_id", P(client_id), CQ_OT_STRING, 1, CQ_CONF_TEXT_MAX, NULL, false},
    {"client_secret_file", P(client_secret_file), CQ_OT_SECRET, 0, 0, NULL, false},
    {"scope", P(scope), CQ_OT_STRING, 1, CQ_CONF_TEXT_MAX, NULL, false},
    {"username", P(username), CQ_OT_STRING, 1, CQ_CONF_TEXT_MAX, NULL, false},
    {"password_file", P(password_file), CQ_OT_SECRET, 0, 0, NULL, false},
    {"timeout", P(timeout_ms), CQ_OT_DURATION, 1, CQ_MS_HOUR, "30s", false},
    {"connect_timeout", P(connect_timeout_ms), CQ_OT_DURATION, 1, CQ_MS_HOUR, "5s", false},
    {"concurrency", P(concurrency), CQ_OT_INT, 1, 10000, "64", false},
    {"rate", P(rate), CQ_OT_RATE, 0, 1000000, NULL, false},
    {"burst", P(burst), CQ_OT_INT, 1, 1000000, NULL, false},
    {"max_response", P(max_response), CQ_OT_SIZE, CQ_KIB, CQ_GIB, "1MiB", false},
    {"breaker_failures", P(breaker_failures), CQ_OT_INT, 1, 1000, "5", false},
    {"breaker_cooldown", P(breaker_cooldown_ms), CQ_OT_DURATION, CQ_MS_SEC, CQ_MS_DAY, "30s",
     false},
};

#undef R
#undef W
#undef P

#define NOPTS (sizeof(opts) / sizeof(opts[0]))

/* Load state ------------------------------------------------------------- */

typedef struct load_ctx {
    cq_config *cfg;
    cq_err *err;
    const char *name; /* file name for messages */
    const char *dir;  /* base for relative secret paths; NULL: as given */
    unsigned flags;   /* CQ_CONFIG_* */
    const char *text;
    size_t len, pos;
    int line; /* lines handed to inih so far */
    bool failed;
    cq_conf_sec sec; /* the open section */
    int sec_line;    /* its header line */
    char label[CQ_LABEL_MAX];
    cq_provider_conf *prov;               /* the open provider, CQ_SEC_PROVIDER */
    int seen[NOPTS];                      /* line each option was set on in the open section */
    int redis_line, worker_line;          /* header lines, 0 when absent */
    int conc_line[CQ_CONF_MAX_PROVIDERS]; /* line of an explicit provider concurrency */
} load_ctx;

static const cq_conf_opt *opt_find(cq_conf_sec sec, const char *key)
{
    for (size_t i = 0; i < NOPTS; i++)
        if (opts[i].sec == sec && strcmp(opts[i].key, key) == 0)
            return &opts[i];
    return NULL;
}

/* Line on which the open section set key, 0 when it did not. */
static int seen_line(const load_ctx *c, const char *key)
{
    const cq_conf_opt *o = opt_find(c->sec, key);

    return o == NULL ? 0 : c->seen[o - opts];
}

/* Record the first error as "NAME:LINE: [sec] key: reason" and stop the
 * load.  line 0 leaves out the line, sec/key NULL leave out those parts. */
static int conf_fail(load_ctx *c, int line, const char *sec, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int conf_fail(load_ctx *c, int line, const char *sec, const char *key, const char *fmt, ...)
{
    char where[CQ_ERR_MSG_MAX], reason[CQ_ERR_MSG_MAX];
    size_t n;
    va_list ap;

    if (c->failed)
        return -EINVAL;
    c->failed = true;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    n = (size_t)snprintf(where, sizeof(where), "%s:", c->name);
    if (line > 0 && n < sizeof(where))
        n += (size_t)snprintf(where + n, sizeof(where) - n, "%d:", line);
    if (sec != NULL && n < sizeof(where))
        n += (size_t)snprintf(where + n, sizeof(where) - n, " [%s]", sec);
    if (key != NULL && n < sizeof(where))
        snprintf(where + n, sizeof(where) - n, " %s", key);
    return cq_err_set(c->err, -EINVAL, "bad_config", "%s%s %s", where,
                      (sec != NULL || key != NULL) ? ":" : "", reason);
}

/* Set every option of section sec that has a default. */
static int apply_defaults(load_ctx *c, cq_conf_sec sec, void *base)
{
    char why[CQ_ERR_MSG_MAX];

    for (size_t i = 0; i < NOPTS; i++) {
        if (opts[i].sec != sec || opts[i].def == NULL)
            continue;
        if (cq_conf_set_value(&opts[i], base, opts[i].def, c->dir, false, why, sizeof(why)) != 0)
            return conf_fail(c, 0, NULL, opts[i].key, "default: %s", why);
    }
    return 0;
}

static void *section_base(const load_ctx *c)
{
    switch (c->sec) {
    case CQ_SEC_REDIS:
        return &c->cfg->redis;
    case CQ_SEC_WORKER:
        return &c->cfg->worker;
    case CQ_SEC_PROVIDER:
        return c->prov;
    default:
        return NULL;
    }
}

/* Levenshtein distance, capped: enough to suggest "timeout" for "timeot". */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), row[CQ_CONF_NAME_MAX + 1];

    if (la > CQ_CONF_NAME_MAX || lb > CQ_CONF_NAME_MAX)
        return SIZE_MAX;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];

        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);

            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            diag = up;
            row[j] = best;
        }
    }
    return row[lb];
}

static int unknown_key(load_ctx *c, const char *key)
{
    const cq_conf_opt *best = NULL;
    size_t best_d = 3; /* suggest only close matches */

    for (size_t i = 0; i < NOPTS; i++) {
        size_t d = opts[i].sec == c->sec ? edit_distance(key, opts[i].key) : SIZE_MAX;

        if (d < best_d) {
            best_d = d;
            best = &opts[i];
        }
    }
    if (best != NULL)
        return conf_fail(c, c->line, c->label, key, "unknown key (did you mean %s?)", best->key);
    if (c->sec == CQ_SEC_PROVIDER &&
        (strstr(key, "token") != NULL || strstr(key, "secret") != NULL ||
         strstr(key, "password") != NULL))
        return conf_fail(c, c->line, c->label, key,
                         "unknown key (secrets are never written in the config: put them in a "
                         "file and name it with token_file, client_secret_file or "
                         "password_file)");
    return conf_fail(c, c->line, c->label, key, "unknown key");
}

/* inih callback: one key = value of the section conf_reader() opened. */
static int conf_handler(void *user, const char *section, const char *key, const char *value)
{
    load_ctx *c = user;
    char why[CQ_ERR_MSG_MAX];
    const cq_conf_opt *o;

    (void)section; /* inih's copy may be truncated; the reader tracks sections */
    if (c->failed)
        return 0;
    if (key[0] == '\0' || value == NULL) {
        conf_fail(c, c->line, NULL, NULL, "syntax error: expected 'key = value'");
        return 0;
    }
    if (c->sec == CQ_SEC_NONE) {
        conf_fail(c, c->line, NULL, key,
                  "key outside any section (add [redis], [worker] or "
                  "[provider NAME] above it)");
        return 0;
    }
    o = opt_find(c->sec, key);
    if (o == NULL) {
        unknown_key(c, key);
        return 0;
    }
    if (c->seen[o - opts] != 0) {
        conf_fail(c, c->line, c->label, key, "set twice (first on line %d)", c->seen[o - opts]);
        return 0;
    }
    c->seen[o - opts] = c->line;
    if (cq_conf_set_value(o, section_base(c), value, c->dir,
                          (c->flags & CQ_CONFIG_SKIP_SECRETS) != 0, why, sizeof(why)) != 0) {
        conf_fail(c, c->line, c->label, key, "%s", why);
        return 0;
    }
    return 1;
}

/* Section checks ----------------------------------------------------------- */

/* base_url and token_url: https unless allow_insecure_http. */
static int check_scheme(load_ctx *c, const char *key, const char *url)
{
    int line = seen_line(c, key);

    if (url == NULL || strncasecmp(url, "https://", 8) == 0)
        return 0;
    if (strncasecmp(url, "http://", 7) == 0 && c->prov->allow_insecure_http)
        return 0;
    return conf_fail(c, line, c->label, key,
                     "'%s' is not https (set allow_insecure_http = yes for local sandboxes)", url);
}

/* The OAuth2 keys, and which of them each grant takes: 2 required,
 * 1 allowed, 0 not used. */
static const char *const oauth_keys[] = {"token_url", "client_id", "client_secret_file",
                                         "scope",     "username",  "password_file"};
static const int cc_use[] = {2, 2, 2, 1, 0, 0};
static const int pw_use[] = {2, 2, 2, 0, 2, 2};
#define NOAUTH (sizeof(oauth_keys) / sizeof(oauth_keys[0]))

/* The OAuth2 keys set must be exactly those the adapter's grant takes. */
static int check_grant_keys(load_ctx *c, const cq_adapter *a)
{
    const int *use = a->oauth_grant == CQ_CRED_PASSWORD ? pw_use : cc_use;
    const char *grant = a->oauth_grant == CQ_CRED_PASSWORD ? "password" : "client credentials";

    for (size_t i = 0; i < NOAUTH; i++) {
        int l = seen_line(c, oauth_keys[i]);

        if (l != 0 && use[i] == 0)
            return conf_fail(c, l, c->label, oauth_keys[i],
                             "not used by the OAuth2 %s grant of adapter '%s'", grant, a->name);
        if (l == 0 && use[i] == 2)
            return conf_fail(
                c, c->sec_line, c->label, oauth_keys[i],
                "missing (the OAuth2 %s grant needs token_url, client_id, "
                "client_secret_file%s)",
                grant, a->oauth_grant == CQ_CRED_PASSWORD ? ", username and password_file" : "");
    }
    return 0;
}

/* Exactly one credential kind, fitting the adapter's OAuth2 grant. */
static int finish_credentials(load_ctx *c, const cq_adapter *a)
{
    int tf = seen_line(c, "token_file"), first = 0;
    size_t fi = 0;

    for (size_t i = 0; i < NOAUTH; i++) {
        int l = seen_line(c, oauth_keys[i]);

        if (l != 0 && (first == 0 || l < first)) {
            first = l;
            fi = i;
        }
    }
    if (tf != 0 && first != 0)
        return conf_fail(c, first, c->label, oauth_keys[fi],
                         "conflicts with token_file (line %d): use a static token_file or the "
                         "OAuth2 keys, not both",
                         tf);
    if (tf == 0 && first == 0)
        return conf_fail(c, c->sec_line, c->label, NULL, "no credentials (set token_file%s)",
                         a->oauth_grant == CQ_CRED_CLIENT_CREDENTIALS
                             ? ", or token_url, client_id and client_secret_file"
                         : a->oauth_grant == CQ_CRED_PASSWORD
                             ? ", or token_url, client_id, client_secret_file, username and "
                               "password_file"
                             : "");
    if (tf == 0 && a->oauth_grant == CQ_CRED_NONE)
        return conf_fail(c, first, c->label, oauth_keys[fi],
                         "adapter '%s' has no OAuth2 grant (use token_file)", a->name);
    if (tf == 0 && check_grant_keys(c, a) != 0)
        return -EINVAL;
    c->prov->cred = tf != 0 ? CQ_CRED_TOKEN_FILE : a->oauth_grant;
    return 0;
}

static int finish_adapter(load_ctx *c, const cq_adapter **out)
{
    cq_provider_conf *pc = c->prov;
    int line = seen_line(c, "adapter");
    char known[128] = "";
    size_t n = 0, na = 0;
    const cq_adapter *const *all = cq_adapters(&na);

    if (pc->adapter == NULL && (pc->adapter = strdup(pc->name)) == NULL)
        return conf_fail(c, c->sec_line, c->label, NULL, "out of memory");
    *out = cq_adapter_find(pc->adapter);
    if (*out != NULL)
        return 0;
    for (size_t i = 0; i < na && n < sizeof(known); i++)
        n += (size_t)snprintf(known + n, sizeof(known) - n, "%s%s", i ? ", " : "", all[i]->name);
    return conf_fail(c, line ? line : c->sec_line, c->label, "adapter",
                     "no adapter named '%s'%s (known: %s)", pc->adapter,
                     line ? "" : " (the default is the instance name; set adapter =)", known);
}

static int finish_provider(load_ctx *c)
{
    cq_provider_conf *pc = c->prov;
    const cq_adapter *a = NULL;

    if (finish_adapter(c, &a) != 0)
        return -EINVAL;
    for (size_t i = 0; i < NOPTS; i++)
        if (opts[i].sec == CQ_SEC_PROVIDER && opts[i].required && c->seen[i] == 0)
            return conf_fail(c, c->sec_line, c->label, opts[i].key, "missing (required)");
    if (check_scheme(c, "base_url", pc->base_url) != 0 ||
        check_scheme(c, "token_url", pc->token_url) != 0)
        return -EINVAL;
    if (pc->format == CQ_FORMAT_XML && !a->supports_xml)
        return conf_fail(c, seen_line(c, "format"), c->label, "format",
                         "xml is not supported by adapter '%s' (use json)", a->name);
    if (finish_credentials(c, a) != 0)
        return -EINVAL;
    if (seen_line(c, "burst") != 0 && pc->rate == 0)
        return conf_fail(c, seen_line(c, "burst"), c->label, "burst",
                         "set without rate (burst only applies to a rate limit)");
    if (pc->rate > 0 && pc->burst == 0)
        pc->burst = CQ_BURST_DEFAULT;
    c->conc_line[c->cfg->nproviders - 1] = seen_line(c, "concurrency");
    return 0;
}

static int finish_worker(load_ctx *c)
{
    const cq_worker_conf *w = &c->cfg->worker;
    int lb = seen_line(c, "backoff_base"), lm = seen_line(c, "backoff_max");
    char a[32], b[32];

    if (w->backoff_max_ms >= w->backoff_base_ms)
        return 0;
    cq_conf_fmt_duration(a, sizeof(a), w->backoff_max_ms);
    cq_conf_fmt_duration(b, sizeof(b), w->backoff_base_ms);
    return conf_fail(c, lm > lb ? lm : lb, c->label, lm > lb ? "backoff_max" : "backoff_base",
                     "backoff_max %s is below backoff_base %s", a, b);
}

/* A list of host:port entries, as sentinels and cluster take. */
static int check_hostports(load_ctx *c, const char *key, const char *p)
{
    int line = seen_line(c, key);

    while (*p != '\0') {
        char host[256], one[300];
        int port;
        size_t n = strcspn(p, ",");

        if (n == 0 || n >= sizeof(one))
            return conf_fail(c, line, c->label, key, "empty or too long entry");
        memcpy(one, p, n);
        one[n] = '\0';
        if (cq_parse_hostport(one, host, sizeof(host), &port) != 0)
            return conf_fail(c, line, c->label, key, "'%s' is not host:port (e.g. 10.0.0.5:26379)",
                             one);
        p += n;
        if (*p == ',')
            p++;
    }
    return 0;
}

/* Sentinel or Cluster: host:port lists, not with a socket; Sentinel needs a
 * master name; a cluster has only db 0. */
static int finish_redis(load_ctx *c)
{
    const cq_redis_conf *r = &c->cfg->redis;
    int ls = seen_line(c, "sentinels"), lc = seen_line(c, "cluster");

    if (r->master_name != NULL && r->sentinels == NULL)
        return conf_fail(c, seen_line(c, "master_name"), c->label, "master_name",
                         "set without sentinels");
    if (r->sentinels != NULL && r->cluster != NULL)
        return conf_fail(c, ls > lc ? ls : lc, c->label, ls > lc ? "sentinels" : "cluster",
                         "sentinels and cluster exclude each other");
    if (r->sentinels != NULL) {
        if (r->master_name == NULL)
            return conf_fail(c, ls, c->label, "sentinels", "needs master_name");
        if (r->unix_socket != NULL)
            return conf_fail(c, ls, c->label, "sentinels", "cannot be used with unix_socket");
        return check_hostports(c, "sentinels", r->sentinels);
    }
    if (r->cluster != NULL) {
        if (r->unix_socket != NULL)
            return conf_fail(c, lc, c->label, "cluster", "cannot be used with unix_socket");
        if (r->db != 0)
            return conf_fail(c, lc, c->label, "cluster", "a Redis Cluster has only db 0");
        return check_hostports(c, "cluster", r->cluster);
    }
    return 0;
}

/* Close the open section, checking what needs the whole section. */
static int finish_section(load_ctx *c)
{
    int rc = 0;

    if (c->sec == CQ_SEC_PROVIDER)
        rc = finish_provider(c);
    else if (c->sec == CQ_SEC_WORKER)
        rc = finish_worker(c);
    else if (c->sec == CQ_SEC_REDIS)
        rc = finish_redis(c);
    c->sec = CQ_SEC_NONE;
    c->prov = NULL;
    return rc;
}

/* Sections -------------------------------------------------------------- */

static bool valid_provider_name(const char *s)
{
    size_t n = strlen(s);

    return n >= 1 && n <= CQ_CONF_NAME_MAX &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == n;
}

static int open_provider(load_ctx *c, const char *name)
{
    cq_config *cfg = c->cfg;
    cq_provider_conf *pc;

    if (!valid_provider_name(name))
        return conf_fail(c, c->line, c->label, NULL,
                         "bad provider name '%s' (1..%d characters of A-Z a-z 0-9 _ -)", name,
                         CQ_CONF_NAME_MAX);
    for (size_t i = 0; i < cfg->nproviders; i++)
        if (strcmp(cfg->providers[i].name, name) == 0)
            return conf_fail(c, c->line, c->label, NULL,
                             "duplicate provider (first defined on line %d)",
                             cfg->providers[i].line);
    if (cfg->nproviders == CQ_CONF_MAX_PROVIDERS)
        return conf_fail(c, c->line, c->label, NULL, "too many providers (at most %d)",
                         CQ_CONF_MAX_PROVIDERS);
    pc = &cfg->providers[cfg->nproviders++];
    pc->line = c->line;
    pc->name = strdup(name);
    if (pc->name == NULL)
        return conf_fail(c, c->line, c->label, NULL, "out of memory");
    c->sec = CQ_SEC_PROVIDER;
    c->prov = pc;
    return apply_defaults(c, CQ_SEC_PROVIDER, pc);
}

/* Open the section named in header text s ("redis", "provider x"). */
static int open_section(load_ctx *c, const char *s)
{
    int *line = NULL;

    snprintf(c->label, sizeof(c->label), "%.*s", (int)sizeof(c->label) - 1, s);
    if (strcmp(s, "redis") == 0)
        line = &c->redis_line;
    else if (strcmp(s, "worker") == 0)
        line = &c->worker_line;
    if (line != NULL && *line != 0)
        return conf_fail(c, c->line, c->label, NULL, "duplicate section (first on line %d)", *line);
    if (line != NULL) {
        *line = c->line;
        c->sec = line == &c->redis_line ? CQ_SEC_REDIS : CQ_SEC_WORKER;
        return 0;
    }
    if (strncmp(s, "provider", 8) == 0 && (s[8] == ' ' || s[8] == '\t' || s[8] == '\0')) {
        const char *name = s + 8 + strspn(s + 8, " \t");

        snprintf(c->label, sizeof(c->label), "provider%s%.*s", *name ? " " : "", CQ_CONF_NAME_MAX,
                 name);
        return open_provider(c, name);
    }
    return conf_fail(c, c->line, c->label, NULL,
                     "unknown section (expected [redis], [worker] or [provider NAME])");
}

/* A "[...]" line: close the open section, open the new one. */
static int section_line(load_ctx *c, const char *line)
{
    const char *close = strchr(line, ']');
    const char *rest;
    char name[CQ_SECTION_TEXT_MAX];
    size_t a = 1, b;

    if (finish_section(c) != 0)
        return -EINVAL;
    memset(c->seen, 0, sizeof(c->seen));
    c->sec_line = c->line;
    if (close == NULL)
        return conf_fail(c, c->line, NULL, NULL, "syntax error: section header without ']'");
    rest = close + 1 + strspn(close + 1, " \t\r\n");
    if (*rest != '\0' && *rest != ';' && *rest != '#')
        return conf_fail(c, c->line, NULL, NULL, "syntax error: text after ']'");
    b = (size_t)(close - line);
    while (a < b && (line[a] == ' ' || line[a] == '\t'))
        a++;
    while (b > a && (line[b - 1] == ' ' || line[b - 1] == '\t'))
        b--;
    if (b - a >= sizeof(name))
        return conf_fail(c, c->line, NULL, NULL, "section name too long");
    memcpy(name, line + a, b - a);
    name[b - a] = '\0';
    return open_section(c, name);
}

/* Lines inih would reject: not blank, not a comment, not a section, and no
 * '=' or ':' before an inline comment.  Caught here to report them in
 * order with the rest. */
static bool is_bad_line(const char *s)
{
    const char *p;

    if (*s == '\0' || *s == '\r' || *s == '\n' || *s == ';' || *s == '#' || *s == '[')
        return false;
    for (p = s; *p != '\0' && *p != '=' && *p != ':'; p++)
        if (*p == ';' && (p[-1] == ' ' || p[-1] == '\t'))
            return true;
    return *p == '\0';
}

/* The inih reader: hand out the next line, left-trimmed, and track sections.
 * Returns NULL at the end or after an error (which stops inih). */
static char *conf_reader(char *buf, int size, void *stream)
{
    load_ctx *c = stream;
    const char *p, *end, *nl;
    size_t len;

    if (c->failed || c->pos >= c->len)
        return NULL;
    p = c->text + c->pos;
    nl = memchr(p, '\n', c->len - c->pos);
    end = nl != NULL ? nl : c->text + c->len;
    c->pos = (size_t)(end - c->text) + (nl != NULL);
    c->line++;
    if (c->line == 1 && end - p >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3; /* UTF-8 byte order mark */
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    len = (size_t)(end - p);
    if (memchr(p, '\0', len) != NULL) {
        conf_fail(c, c->line, NULL, NULL, "line contains a NUL byte");
        return NULL;
    }
    /* inih needs room for the '\n' and the NUL we hand it. */
    if (size < 3 || len > (size_t)size - 2) {
        conf_fail(c, c->line, NULL, NULL, "line too long (at most %d characters)", size - 2);
        return NULL;
    }
    memcpy(buf, p, len);
    buf[len] = '\n';
    buf[len + 1] = '\0';
    if (buf[0] == '[' && section_line(c, buf) != 0)
        return NULL;
    if (is_bad_line(buf)) {
        conf_fail(c, c->line, NULL, NULL, "syntax error: expected 'key = value' or [section]");
        return NULL;
    }
    return buf;
}

/* Loading ----------------------------------------------------------------- */

/* Defaults computed from the environment or other keys, and checks across
 * sections. */
static int finish_config(load_ctx *c)
{
    cq_config *cfg = c->cfg;
    cq_worker_conf *w = &cfg->worker;
    char host[256], id[CQ_WORKER_ID_MAX + 1];
    const char *inst = getenv("CQ_INSTANCE");
    int n;

    if (w->id == NULL) {
        /* hostname, plus "-" + $CQ_INSTANCE (set it to %i in a template
         * unit) so that several instances on one host get distinct ids. */
        if (gethostname(host, sizeof(host)) != 0)
            return conf_fail(c, 0, "worker", "id", "gethostname: %s (set id)", strerror(errno));
        host[sizeof(host) - 1] = '\0';
        n = snprintf(id, sizeof(id), "%s%s%s", host, inst && *inst ? "-" : "",
                     inst && *inst ? inst : "");
        if (n < 0 || (size_t)n >= sizeof(id) || !cq_conf_is_token(id, ""))
            return conf_fail(c, 0, "worker", "id",
                             "default '%s' (host name and $CQ_INSTANCE) is not a valid id (set id)",
                             id);
        if ((w->id = strdup(id)) == NULL)
            return conf_fail(c, 0, "worker", "id", "out of memory");
    }
    w->heartbeat_ms = w->lease_ms / 3;
    for (size_t i = 0; i < cfg->nproviders; i++) {
        cq_provider_conf *pc = &cfg->providers[i];
        char label[CQ_LABEL_MAX];

        if (c->conc_line[i] == 0 && pc->concurrency > w->concurrency)
            pc->concurrency = w->concurrency;
        if (pc->concurrency <= w->concurrency)
            continue;
        snprintf(label, sizeof(label), "provider %s", pc->name);
        return conf_fail(c, c->conc_line[i], label, "concurrency",
                         "%d exceeds [worker] concurrency %d", pc->concurrency, w->concurrency);
    }
    return 0;
}

static cq_config *config_new(const char *name)
{
    cq_config *cfg = calloc(1, sizeof(*cfg));

    if (cfg == NULL)
        return NULL;
    cfg->path = strdup(name);
    cfg->providers = calloc(CQ_CONF_MAX_PROVIDERS, sizeof(*cfg->providers));
    if (cfg->path == NULL || cfg->providers == NULL) {
        cq_config_free(cfg);
        return NULL;
    }
    return cfg;
}

/* Parse text (len bytes) named name; dir is the base for relative secret
 * paths (NULL: as given); flags are CQ_CONFIG_*. */
static cq_config *load_text(const char *text, size_t len, const char *name, const char *dir,
                            unsigned flags, cq_err *err)
{
    load_ctx c = {.err = err, .name = name, .dir = dir, .flags = flags, .text = text, .len = len};
    int r;

    cq_err_clear(err);
    c.cfg = config_new(name);
    if (c.cfg == NULL) {
        cq_err_set(err, -ENOMEM, "no_memory", "%s: out of memory", name);
        return NULL;
    }
    if (apply_defaults(&c, CQ_SEC_REDIS, &c.cfg->redis) != 0 ||
        apply_defaults(&c, CQ_SEC_WORKER, &c.cfg->worker) != 0)
        goto fail;
    r = ini_parse_stream(conf_reader, &c, conf_handler, &c);
    if (c.failed)
        goto fail;
    if (r == -2) {
        cq_err_set(err, -ENOMEM, "no_memory", "%s: out of memory", name);
        goto fail;
    }
    if (r != 0) {
        conf_fail(&c, r, NULL, NULL, "syntax error");
        goto fail;
    }
    if (finish_section(&c) != 0 || finish_config(&c) != 0)
        goto fail;
    return c.cfg;
fail:
    cq_config_free(c.cfg);
    return NULL;
}

cq_config *cq_config_load_string(const char *text, const char *name, cq_err *err)
{
    if (text == NULL || name == NULL) {
        cq_err_set(err, -EINVAL, "bad_config", "no config text");
        return NULL;
    }
    return load_text(text, strlen(text), name, NULL, 0, err);
}

/* Read a whole config file (at most CQ_CONF_FILE_MAX bytes) into *out. */
static int read_file(const char *path, char **out, size_t *len, cq_err *err)
{
    struct stat st;
    char *buf = NULL;
    size_t n = 0;
    ssize_t r;
    int fd, rc = 0;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK); /* a FIFO must not hang us */
    if (fd < 0 || fstat(fd, &st) != 0) {
        rc = -errno;
        cq_err_set(err, rc, "config_unreadable", "%s: cannot read: %s", path, strerror(-rc));
        goto out;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > CQ_CONF_FILE_MAX) {
        rc = cq_err_set(err, -EINVAL, "config_unreadable",
                        "%s: not a regular file of at most %lld bytes", path, CQ_CONF_FILE_MAX);
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        rc = cq_err_set(err, -ENOMEM, "no_memory", "%s: out of memory", path);
        goto out;
    }
    while (n < (size_t)st.st_size) {
        r = read(fd, buf + n, (size_t)st.st_size - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = -errno;
            cq_err_set(err, rc, "config_unreadable", "%s: cannot read: %s", path, strerror(-rc));
            goto out;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    buf = NULL;
out:
    free(buf);
    if (fd >= 0)
        close(fd);
    return rc;
}

/* Absolute directory of path, so that secret paths stay valid whatever
 * the daemon's working directory later is.  Heap, or NULL with errno. */
static char *config_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir, *abs;

    if (slash == NULL)
        return realpath(".", NULL);
    dir = slash == path ? strdup("/") : strndup(path, (size_t)(slash - path));
    if (dir == NULL)
        return NULL;
    abs = realpath(dir, NULL);
    free(dir);
    return abs;
}

cq_config *cq_config_load(const char *path, cq_err *err)
{
    return cq_config_load_ex(path, 0, err);
}

cq_config *cq_config_load_ex(const char *path, unsigned flags, cq_err *err)
{
    cq_config *cfg = NULL;
    char *text = NULL, *dir = NULL;
    size_t len = 0;

    if (path == NULL) {
        cq_err_set(err, -EINVAL, "bad_config", "no config file given");
        return NULL;
    }
    if (read_file(path, &text, &len, err) != 0)
        return NULL;
    dir = config_dir(path);
    if (dir == NULL) {
        int e = errno;

        cq_err_set(err, -e, "config_unreadable", "%s: cannot resolve its directory: %s", path,
                   strerror(e));
        goto out;
    }
    cfg = load_text(text, len, path, dir, flags, err);
out:
    free(dir);
    free(text);
    return cfg;
}

/* Free every string option of section sec in base. */
static void free_section(cq_conf_sec sec, void *base)
{
    for (size_t i = 0; i < NOPTS; i++)
        if (opts[i].sec == sec && cq_conf_is_string(opts[i].type))
            free(*(char **)((char *)base + opts[i].off));
}

void cq_config_free(cq_config *cfg)
{
    if (cfg == NULL)
        return;
    free_section(CQ_SEC_REDIS, &cfg->redis);
    free_section(CQ_SEC_WORKER, &cfg->worker);
    for (size_t i = 0; cfg->providers != NULL && i < cfg->nproviders; i++) {
        free(cfg->providers[i].name);
        free_section(CQ_SEC_PROVIDER, &cfg->providers[i]);
    }
    free(cfg->providers);
    free(cfg->path);
    free(cfg);
}

const cq_provider_conf *cq_config_provider(const cq_config *cfg, const char *name)
{
    if (cfg == NULL || name == NULL)
        return NULL;
    for (size_t i = 0; i < cfg->nproviders; i++)
        if (strcmp(cfg->providers[i].name, name) == 0)
            return &cfg->providers[i];
    return NULL;
}

/* Summary ----------------------------------------------------------------- */

static void print_section(FILE *f, cq_conf_sec sec, const void *base)
{
    char buf[512];

    for (size_t i = 0; i < NOPTS; i++)
        if (opts[i].sec == sec && cq_conf_format_value(&opts[i], base, buf, sizeof(buf)))
            fprintf(f, "%s = %s\n", opts[i].key, buf);
}

static const char *cred_name(cq_cred_kind k)
{
    switch (k) {
    case CQ_CRED_TOKEN_FILE:
        return "static token from token_file";
    case CQ_CRED_CLIENT_CREDENTIALS:
        return "OAuth2 client credentials (client_secret_file)";
    case CQ_CRED_PASSWORD:
        return "OAuth2 password grant (client_secret_file, password_file)";
    default:
        return "none";
    }
}

void cq_config_print_summary(const cq_config *cfg, void *file)
{
    FILE *f = file;
    char hb[32];

    if (cfg == NULL || f == NULL)
        return;
    fprintf(f, "# effective configuration from %s (secret files are named, never shown)\n",
            cfg->path);
    fprintf(f, "[redis]\n");
    if (cfg->redis.unix_socket != NULL)
        fprintf(f, "# target: unix:%s db %d\n", cfg->redis.unix_socket, cfg->redis.db);
    else
        fprintf(f, "# target: %s:%d db %d\n", cfg->redis.host, cfg->redis.port, cfg->redis.db);
    fprintf(f, "# keys: {%s}:jobs, {%s}:results, ...\n", cfg->redis.prefix, cfg->redis.prefix);
    print_section(f, CQ_SEC_REDIS, &cfg->redis);
    cq_conf_fmt_duration(hb, sizeof(hb), cfg->worker.heartbeat_ms);
    fprintf(f, "\n[worker]\n# heartbeat every %s (lease / 3)\n", hb);
    print_section(f, CQ_SEC_WORKER, &cfg->worker);
    for (size_t i = 0; i < cfg->nproviders; i++) {
        const cq_provider_conf *pc = &cfg->providers[i];

        fprintf(f, "\n[provider %s]\n# credentials: %s\n", pc->name, cred_name(pc->cred));
        print_section(f, CQ_SEC_PROVIDER, pc);
    }
}
