/*
 * config_check.c - the rules of the config file that span several keys:
 * per section when it closes (credentials fitting the adapter's OAuth2
 * grant, https, Sentinel or Cluster, backoff bounds) and across sections
 * once the file is read (the worker id, provider concurrency).
 */
#include "cancelq/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cancelq/adapter.h"
#include "cancelq/tls.h"
#include "config_load.h"

/* Burst when a rate is set and burst is not. */
#define CQ_BURST_DEFAULT 10

/* Sections ---------------------------------------------------------------- */

/* base_url and token_url: https unless allow_insecure_http. */
static int check_scheme(load_ctx *c, const char *key, const char *url)
{
    int line = cq_conf_seen_line(c, key);

    if (url == NULL || strncasecmp(url, "https://", 8) == 0)
        return 0;
    if (strncasecmp(url, "http://", 7) == 0 && c->prov->allow_insecure_http)
        return 0;
    return cq_conf_fail(c, line, c->label, key,
                        "'%s' is not https (set allow_insecure_http = yes for local sandboxes)",
                        url);
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
        int l = cq_conf_seen_line(c, oauth_keys[i]);

        if (l != 0 && use[i] == 0)
            return cq_conf_fail(c, l, c->label, oauth_keys[i],
                                "not used by the OAuth2 %s grant of adapter '%s'", grant, a->name);
        if (l == 0 && use[i] == 2)
            return cq_conf_fail(
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
    int tf = cq_conf_seen_line(c, "token_file"), first = 0;
    size_t fi = 0;

    for (size_t i = 0; i < NOAUTH; i++) {
        int l = cq_conf_seen_line(c, oauth_keys[i]);

        if (l != 0 && (first == 0 || l < first)) {
            first = l;
            fi = i;
        }
    }
    if (tf != 0 && first != 0)
        return cq_conf_fail(c, first, c->label, oauth_keys[fi],
                            "conflicts with token_file (line %d): use a static token_file or the "
                            "OAuth2 keys, not both",
                            tf);
    if (tf == 0 && first == 0)
        return cq_conf_fail(c, c->sec_line, c->label, NULL, "no credentials (set token_file%s)",
                            a->oauth_grant == CQ_CRED_CLIENT_CREDENTIALS
                                ? ", or token_url, client_id and client_secret_file"
                            : a->oauth_grant == CQ_CRED_PASSWORD
                                ? ", or token_url, client_id, client_secret_file, username and "
                                  "password_file"
                                : "");
    if (tf == 0 && a->oauth_grant == CQ_CRED_NONE)
        return cq_conf_fail(c, first, c->label, oauth_keys[fi],
                            "adapter '%s' has no OAuth2 grant (use token_file)", a->name);
    if (tf == 0 && check_grant_keys(c, a) != 0)
        return -EINVAL;
    c->prov->cred = tf != 0 ? CQ_CRED_TOKEN_FILE : a->oauth_grant;
    return 0;
}

/* The provider's adapter (named by adapter =, else the instance name), or
 * NULL when there is none (reported). */
static const cq_adapter *finish_adapter(load_ctx *c)
{
    cq_provider_conf *pc = c->prov;
    int line = cq_conf_seen_line(c, "adapter");
    char known[128] = "";
    size_t n = 0, na = 0;
    const cq_adapter *const *all = cq_adapters(&na);
    const cq_adapter *a;

    if (pc->adapter == NULL && (pc->adapter = strdup(pc->name)) == NULL) {
        cq_conf_fail(c, c->sec_line, c->label, NULL, "out of memory");
        return NULL;
    }
    a = cq_adapter_find(pc->adapter);
    if (a != NULL)
        return a;
    for (size_t i = 0; i < na && n < sizeof(known); i++)
        n += (size_t)snprintf(known + n, sizeof(known) - n, "%s%s", i ? ", " : "", all[i]->name);
    cq_conf_fail(c, line ? line : c->sec_line, c->label, "adapter",
                 "no adapter named '%s'%s (known: %s)", pc->adapter,
                 line ? "" : " (the default is the instance name; set adapter =)", known);
    return NULL;
}

/* ca_file parses as a CA bundle; a client certificate comes with its key,
 * both parse and belong together (read unless secrets are skipped); a
 * no_proxy list needs a proxy. */
static int finish_transport(load_ctx *c)
{
    const cq_provider_conf *pc = c->prov;
    int lc = cq_conf_seen_line(c, "client_cert_file"), lk = cq_conf_seen_line(c, "client_key_file");
    cq_tls_id *id = NULL;
    cq_err e;

    if ((lc == 0) != (lk == 0))
        return cq_conf_fail(c, lc ? lc : lk, c->label, lc ? "client_cert_file" : "client_key_file",
                            "set without %s (mutual TLS needs both)",
                            lc ? "client_key_file" : "client_cert_file");
    if (pc->no_proxy != NULL && pc->proxy == NULL)
        return cq_conf_fail(c, cq_conf_seen_line(c, "no_proxy"), c->label, "no_proxy",
                            "set without proxy (without a proxy every host is reached directly)");
    if (c->flags & CQ_CONFIG_SKIP_SECRETS)
        return 0;
    cq_err_clear(&e);
    if (pc->ca_file != NULL && cq_tls_check_ca_file(pc->ca_file, &e) != 0)
        return cq_conf_fail(c, cq_conf_seen_line(c, "ca_file"), c->label, "ca_file", "%s", e.msg);
    if (lc != 0 && cq_tls_id_load(pc->client_cert_file, pc->client_key_file, &id, &e) != 0)
        return cq_conf_fail(c, lk > lc ? lk : lc, c->label,
                            lk > lc ? "client_key_file" : "client_cert_file", "%s", e.msg);
    cq_tls_id_unref(id);
    return 0;
}

static int finish_provider(load_ctx *c)
{
    cq_provider_conf *pc = c->prov;
    const cq_adapter *a = finish_adapter(c);

    if (a == NULL)
        return -EINVAL;
    for (size_t i = 0; i < cq_conf_nopts; i++)
        if (cq_conf_opts[i].sec == CQ_SEC_PROVIDER && cq_conf_opts[i].required && c->seen[i] == 0)
            return cq_conf_fail(c, c->sec_line, c->label, cq_conf_opts[i].key,
                                "missing (required)");
    if (check_scheme(c, "base_url", pc->base_url) != 0 ||
        check_scheme(c, "token_url", pc->token_url) != 0)
        return -EINVAL;
    if (pc->format == CQ_FORMAT_XML && !a->supports_xml)
        return cq_conf_fail(c, cq_conf_seen_line(c, "format"), c->label, "format",
                            "xml is not supported by adapter '%s' (use json)", a->name);
    if (finish_credentials(c, a) != 0 || finish_transport(c) != 0)
        return -EINVAL;
    if (cq_conf_seen_line(c, "burst") != 0 && pc->rate == 0)
        return cq_conf_fail(c, cq_conf_seen_line(c, "burst"), c->label, "burst",
                            "set without rate (burst only applies to a rate limit)");
    if (pc->rate > 0 && pc->burst == 0)
        pc->burst = CQ_BURST_DEFAULT;
    c->conc_line[c->cfg->nproviders - 1] = cq_conf_seen_line(c, "local_concurrency");
    return 0;
}

static int finish_worker(load_ctx *c)
{
    const cq_worker_conf *w = &c->cfg->worker;
    int lb = cq_conf_seen_line(c, "backoff_base"), lm = cq_conf_seen_line(c, "backoff_max");
    char a[32], b[32];

    if (w->backoff_max_ms >= w->backoff_base_ms)
        return 0;
    cq_conf_fmt_duration(a, sizeof(a), w->backoff_max_ms);
    cq_conf_fmt_duration(b, sizeof(b), w->backoff_base_ms);
    return cq_conf_fail(c, lm > lb ? lm : lb, c->label, lm > lb ? "backoff_max" : "backoff_base",
                        "backoff_max %s is below backoff_base %s", a, b);
}

/* A list of host:port entries, as sentinels and cluster take. */
static int check_hostports(load_ctx *c, const char *key, const char *p)
{
    int line = cq_conf_seen_line(c, key);

    while (*p != '\0') {
        char host[256], one[300];
        int port;
        size_t n = strcspn(p, ",");

        if (n == 0 || n >= sizeof(one))
            return cq_conf_fail(c, line, c->label, key, "empty or too long entry");
        memcpy(one, p, n);
        one[n] = '\0';
        if (cq_parse_hostport(one, host, sizeof(host), &port) != 0)
            return cq_conf_fail(c, line, c->label, key,
                                "'%s' is not host:port (e.g. 10.0.0.5:26379)", one);
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
    int ls = cq_conf_seen_line(c, "sentinels"), lc = cq_conf_seen_line(c, "cluster");

    if (r->master_name != NULL && r->sentinels == NULL)
        return cq_conf_fail(c, cq_conf_seen_line(c, "master_name"), c->label, "master_name",
                            "set without sentinels");
    if (r->sentinels != NULL && r->cluster != NULL)
        return cq_conf_fail(c, ls > lc ? ls : lc, c->label, ls > lc ? "sentinels" : "cluster",
                            "sentinels and cluster exclude each other");
    if (r->sentinels != NULL) {
        if (r->master_name == NULL)
            return cq_conf_fail(c, ls, c->label, "sentinels", "needs master_name");
        if (r->unix_socket != NULL)
            return cq_conf_fail(c, ls, c->label, "sentinels", "cannot be used with unix_socket");
        return check_hostports(c, "sentinels", r->sentinels);
    }
    if (r->cluster != NULL) {
        if (r->unix_socket != NULL)
            return cq_conf_fail(c, lc, c->label, "cluster", "cannot be used with unix_socket");
        if (r->db != 0)
            return cq_conf_fail(c, lc, c->label, "cluster", "a Redis Cluster has only db 0");
        return check_hostports(c, "cluster", r->cluster);
    }
    return 0;
}

int cq_conf_finish_section(load_ctx *c)
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

/* The whole config --------------------------------------------------------- */

int cq_conf_finish_config(load_ctx *c)
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
            return cq_conf_fail(c, 0, "worker", "id", "gethostname: %s (set id)", strerror(errno));
        host[sizeof(host) - 1] = '\0';
        n = snprintf(id, sizeof(id), "%s%s%s", host, inst && *inst ? "-" : "",
                     inst && *inst ? inst : "");
        if (n < 0 || (size_t)n >= sizeof(id) || !cq_conf_is_token(id, ""))
            return cq_conf_fail(
                c, 0, "worker", "id",
                "default '%s' (host name and $CQ_INSTANCE) is not a valid id (set id)", id);
        if ((w->id = strdup(id)) == NULL)
            return cq_conf_fail(c, 0, "worker", "id", "out of memory");
    }
    w->heartbeat_ms = w->lease_ms / 3;
    for (size_t i = 0; i < cfg->nproviders; i++) {
        cq_provider_conf *pc = &cfg->providers[i];
        char label[CQ_LABEL_MAX];

        /* concurrency is the deployment's (every worker together);
         * local_concurrency bounds this worker, by default as much of it
         * as the worker itself allows */
        if (c->conc_line[i] == 0) {
            pc->local_concurrency =
                pc->concurrency < w->concurrency ? pc->concurrency : w->concurrency;
            continue;
        }
        if (pc->local_concurrency <= w->concurrency)
            continue;
        snprintf(label, sizeof(label), "provider %s", pc->name);
        return cq_conf_fail(c, c->conc_line[i], label, "local_concurrency",
                            "%d exceeds [worker] concurrency %d", pc->local_concurrency,
                            w->concurrency);
    }
    return 0;
}

/* Warnings ----------------------------------------------------------------- */

bool cq_config_insecure(const cq_provider_conf *pc, char *buf, size_t n)
{
    bool base = pc->base_url != NULL && strncasecmp(pc->base_url, "http://", 7) == 0;
    bool tok = pc->token_url != NULL && strncasecmp(pc->token_url, "http://", 7) == 0;

    if (!pc->allow_insecure_http || (!base && !tok))
        return false;
    snprintf(buf, n,
             "allow_insecure_http = yes and %s: %s sent in clear text, readable and replayable "
             "by anyone on the path (use https outside a local sandbox)",
             base && tok ? "base_url and token_url are http://"
             : base      ? "base_url is http://"
                         : "token_url is http://",
             pc->cred == CQ_CRED_TOKEN_FILE ? "the API token is"
             : tok                          ? "the OAuth2 client secret and the tokens are"
                                            : "the access tokens are");
    return true;
}
