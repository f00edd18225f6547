/*
 * keys.c - the Redis key schema (see keys.h).
 */
#include "cancelq/keys.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int put(char *out, size_t size, const char *prefix, const char *suffix, const char *tail)
{
    int n = snprintf(out, size, "%s%s%s", prefix, suffix, tail != NULL ? tail : "");

    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

int cq_keys_init(cq_keys *k, const char *prefix, const char *worker)
{
    int n;

    memset(k, 0, sizeof(*k));
    n = snprintf(k->prefix, sizeof(k->prefix), "{%s}:", prefix);
    if (n < 0 || (size_t)n >= sizeof(k->prefix))
        return -ENAMETOOLONG;
    if (put(k->jobs, CQ_KEY_MAX, k->prefix, "jobs", NULL) != 0 ||
        put(k->retry, CQ_KEY_MAX, k->prefix, "retry", NULL) != 0 ||
        put(k->delayed, CQ_KEY_MAX, k->prefix, "delayed", NULL) != 0 ||
        put(k->dead, CQ_KEY_MAX, k->prefix, "dead", NULL) != 0 ||
        put(k->workers, CQ_KEY_MAX, k->prefix, "workers", NULL) != 0 ||
        put(k->results, CQ_KEY_MAX, k->prefix, "results", NULL) != 0 ||
        put(k->holders, CQ_KEY_MAX, k->prefix, "holders", NULL) != 0)
        return -ENAMETOOLONG;
    if (worker == NULL)
        return 0;
    if (put(k->inflight, CQ_KEY_MAX, k->prefix, "inflight:", worker) != 0 ||
        put(k->seq, CQ_KEY_MAX, k->prefix, "seq:", worker) != 0)
        return -ENAMETOOLONG;
    return 0;
}

int cq_keys_idem(const cq_keys *k, const char *idem_key, char *out, size_t size)
{
    return put(out, size, k->prefix, "idem:", idem_key);
}

int cq_keys_inflight(const cq_keys *k, const char *worker, char *out, size_t size)
{
    return put(out, size, k->prefix, "inflight:", worker);
}

int cq_keys_limit(const cq_keys *k, const char *instance, char *out, size_t size)
{
    return put(out, size, k->prefix, "limit:", instance);
}

int cq_keys_pause(const cq_keys *k, const char *instance, char *out, size_t size)
{
    return put(out, size, k->prefix, "pause:", instance);
}

int cq_keys_share(const cq_keys *k, const char *instance, char *out, size_t size)
{
    return put(out, size, k->prefix, "share:", instance);
}
