/*
 * config.c - the config file's keys (config.h): one option table, as in
 * redis' config.c, drives parsing, defaults, freeing and the summary.
 * Adding a key is one row here plus, for a key that depends on others, a
 * line in the section's finish_*() check (config_check.c).
 *
 * The rest of the module: config_value.c parses and prints one value as a
 * row describes it, config_load.c reads the file (INI syntax, sections,
 * errors with line numbers), config_check.c holds the rules that span
 * several keys, config_summary.c prints --check-config's summary,
 * config_parse.c the value parsers shared with cancelqctl and secret.c the
 * secret files.
 */
#include "cancelq/config.h"

#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "config_value.h"

/* OAuth client ids, scopes, user names and similar free text. */
#define CQ_CONF_TEXT_MAX 256

/* The option table ------------------------------------------------------- */

#define R(f) CQ_SEC_REDIS, offsetof(cq_redis_conf, f)
#define W(f) CQ_SEC_WORKER, offsetof(cq_worker_conf, f)
#define P(f) CQ_SEC_PROVIDER, offsetof(cq_provider_conf, f)

/* A row is {key, section + offset, type, min, max, default, required};
 * config_value.h says what min and max mean for each type. */
const cq_conf_opt cq_conf_opts[] = {
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
    {"wait_replicas", R(wait_replicas), CQ_OT_INT, 0, 16, "0", false},
    {"wait_timeout", R(wait_timeout_ms), CQ_OT_DURATION, 1, CQ_MS_HOUR, "1s", false},

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
    {"results_trim", W(results_trim), CQ_OT_TRIM, 0, 0, "maxlen", false},
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
    {"ca_file", P(ca_file), CQ_OT_FILE, 0, 0, NULL, false},
    {"client_cert_file", P(client_cert_file), CQ_OT_FILE, 0, 0, NULL, false},
    {"client_key_file", P(client_key_file), CQ_OT_FILE, 0, 0, NULL, false},
    {"proxy", P(proxy), CQ_OT_PROXY, 0, 0, NULL, false},
    {"no_proxy", P(no_proxy), CQ_OT_STRING, 1, 1024, NULL, false},
    {"timeout", P(timeout_ms), CQ_OT_DURATION, 1, CQ_MS_HOUR, "30s", false},
    {"connect_timeout", P(connect_timeout_ms), CQ_OT_DURATION, 1, CQ_MS_HOUR, "5s", false},
    {"concurrency", P(concurrency), CQ_OT_INT, 1, 100000, "64", false},
    {"local_concurrency", P(local_concurrency), CQ_OT_INT, 1, 10000, NULL, false},
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

const size_t cq_conf_nopts = sizeof(cq_conf_opts) / sizeof(cq_conf_opts[0]);

_Static_assert(sizeof(cq_conf_opts) / sizeof(cq_conf_opts[0]) <= CQ_CONF_OPTS_MAX,
               "raise CQ_CONF_OPTS_MAX in config_value.h");

const cq_conf_opt *cq_conf_opt_find(cq_conf_sec sec, const char *key)
{
    for (size_t i = 0; i < cq_conf_nopts; i++)
        if (cq_conf_opts[i].sec == sec && strcmp(cq_conf_opts[i].key, key) == 0)
            return &cq_conf_opts[i];
    return NULL;
}

/* Free every string option of section sec in base. */
static void free_section(cq_conf_sec sec, void *base)
{
    for (size_t i = 0; i < cq_conf_nopts; i++)
        if (cq_conf_opts[i].sec == sec && cq_conf_is_string(cq_conf_opts[i].type))
            free(*(char **)((char *)base + cq_conf_opts[i].off));
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
