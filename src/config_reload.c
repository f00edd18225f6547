/*
 * config_reload.c - SIGHUP: what a running daemon takes from a config file
 * read again (see cq_config_reload in config.h).
 *
 * Limits and timeouts change in place: every module reads them from the
 * config struct when it uses them (a request's timeouts, the policy, the
 * breaker, the provider's share of its limits).  What a running daemon
 * cannot change (the Redis address, its identity, its provider instances
 * and their endpoints and credentials' sources) needs a restart: a config
 * that changes one of those is refused as a whole, with the key named.
 */
#include "cancelq/config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static bool same_str(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

/* The first key that differs and needs a restart, as "[section] key", or
 * NULL. */
static const char *restart_key(const cq_config *a, const cq_config *b, char *buf, size_t n)
{
    const cq_redis_conf *r = &a->redis, *s = &b->redis;
    size_t i;

#define DIFF_STR(x, y, what)                                                                       \
    if (!same_str((x), (y)))                                                                       \
    return (what)
#define DIFF(x, y, what)                                                                           \
    if ((x) != (y))                                                                                \
    return (what)
    DIFF_STR(r->host, s->host, "[redis] host");
    DIFF(r->port, s->port, "[redis] port");
    DIFF_STR(r->unix_socket, s->unix_socket, "[redis] unix_socket");
    DIFF_STR(r->password_file, s->password_file, "[redis] password_file");
    DIFF(r->db, s->db, "[redis] db");
    DIFF_STR(r->prefix, s->prefix, "[redis] prefix");
    DIFF(r->connect_timeout_ms, s->connect_timeout_ms, "[redis] connect_timeout");
    DIFF_STR(r->sentinels, s->sentinels, "[redis] sentinels");
    DIFF_STR(r->master_name, s->master_name, "[redis] master_name");
    DIFF_STR(r->cluster, s->cluster, "[redis] cluster");
    DIFF_STR(a->worker.id, b->worker.id, "[worker] id");
    DIFF(a->worker.concurrency, b->worker.concurrency, "[worker] concurrency");
    DIFF(a->worker.lease_ms, b->worker.lease_ms, "[worker] lease");
    DIFF(a->worker.idempotency_ttl_ms, b->worker.idempotency_ttl_ms, "[worker] idempotency_ttl");
    DIFF(a->worker.results_maxlen, b->worker.results_maxlen, "[worker] results_maxlen");
    DIFF(a->worker.results_trim, b->worker.results_trim, "[worker] results_trim");
    DIFF_STR(a->worker.metrics_listen, b->worker.metrics_listen, "[worker] metrics_listen");
    DIFF(a->nproviders, b->nproviders, "the set of [provider] sections");
    for (i = 0; i < a->nproviders; i++) {
        const cq_provider_conf *p = &a->providers[i], *q = &b->providers[i];
        const char *key = NULL;

        if (!same_str(p->name, q->name))
            return "the set of [provider] sections";
        if (!same_str(p->adapter, q->adapter))
            key = "adapter";
        else if (!same_str(p->base_url, q->base_url))
            key = "base_url";
        else if (p->allow_insecure_http != q->allow_insecure_http)
            key = "allow_insecure_http";
        else if (p->format != q->format)
            key = "format";
        else if (!same_str(p->ca_file, q->ca_file))
            key = "ca_file";
        else if (!same_str(p->client_cert_file, q->client_cert_file) ||
                 !same_str(p->client_key_file, q->client_key_file))
            key = "client_cert_file / client_key_file";
        else if (!same_str(p->proxy, q->proxy) || !same_str(p->no_proxy, q->no_proxy))
            key = "proxy / no_proxy";
        else if (p->cred != q->cred || !same_str(p->token_file, q->token_file) ||
                 !same_str(p->token_url, q->token_url) || !same_str(p->client_id, q->client_id) ||
                 !same_str(p->client_secret_file, q->client_secret_file) ||
                 !same_str(p->scope, q->scope) || !same_str(p->username, q->username) ||
                 !same_str(p->password_file, q->password_file))
            key = "credentials (token_file, token_url, ...)";
        if (key != NULL) {
            snprintf(buf, n, "[provider %s] %s", p->name, key);
            return buf;
        }
    }
#undef DIFF
#undef DIFF_STR
    return NULL;
}

int cq_config_reload(cq_config *dst, const cq_config *src, cq_err *err)
{
    char buf[CQ_CONF_NAME_MAX + 64];
    const char *key = restart_key(dst, src, buf, sizeof(buf));
    size_t i;

    if (key != NULL)
        return cq_err_set(err, -EINVAL, "restart", "%s: changed; takes effect only after a restart",
                          key);
    dst->redis.wait_replicas = src->redis.wait_replicas;
    dst->redis.wait_timeout_ms = src->redis.wait_timeout_ms;
    dst->worker.max_attempts = src->worker.max_attempts;
    dst->worker.backoff_base_ms = src->worker.backoff_base_ms;
    dst->worker.backoff_max_ms = src->worker.backoff_max_ms;
    dst->worker.retry_after_max_ms = src->worker.retry_after_max_ms;
    dst->worker.shutdown_grace_ms = src->worker.shutdown_grace_ms;
    for (i = 0; i < dst->nproviders; i++) {
        cq_provider_conf *p = &dst->providers[i];
        const cq_provider_conf *q = &src->providers[i];

        p->timeout_ms = q->timeout_ms;
        p->connect_timeout_ms = q->connect_timeout_ms;
        p->concurrency = q->concurrency;
        p->local_concurrency = q->local_concurrency;
        p->rate = q->rate;
        p->burst = q->burst;
        p->max_response = q->max_response;
        p->breaker_failures = q->breaker_failures;
        p->breaker_cooldown_ms = q->breaker_cooldown_ms;
    }
    return 0;
}
