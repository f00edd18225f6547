/*
 * redis_discover.c - finding the node to talk to (redis_int.h): with
 * Sentinel, each (re)connect asks the sentinels in turn for the master's
 * address (SENTINEL get-master-addr-by-name); with Cluster, the seeds are
 * tried in turn and MOVED replies name the slot's owner.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cancelq/log.h"
#include "redis_int.h"

static void ask_sentinel(cq_redis *r);

/* --- Cluster ------------------------------------------------------------ */

/* Redis Cluster errors: "MOVED <slot> <host:port>" names the slot's new
 * owner: go there.  ASK, TRYAGAIN and CLUSTERDOWN mean a migration or a
 * failover is under way: stay and send again shortly (all cancelq keys share
 * one slot, so once the migration ends MOVED names the new owner; we do not
 * follow ASK for single commands mid-migration, we wait it out). */
bool cq_redis_cluster_redirect(cq_redis *r, const char *e)
{
    if (strncmp(e, "MOVED ", 6) == 0) {
        const char *addr = strchr(e + 6, ' ');
        char host[HOST_MAX];
        int port;

        if (addr != NULL && cq_parse_hostport(addr + 1, host, sizeof(host), &port) == 0) {
            snprintf(r->host, sizeof(r->host), "%s", host);
            r->port = port;
            r->redirected = true;
        }
        return true;
    }
    if (strncmp(e, "ASK ", 4) == 0 || strncmp(e, "TRYAGAIN", 8) == 0 ||
        strncmp(e, "CLUSTERDOWN", 11) == 0) {
        r->redirected = true; /* same node */
        return true;
    }
    return false;
}

/* --- Sentinel ------------------------------------------------------------ */

/* Forget the sentinel being asked (its context closes on its own). */
void cq_redis_sentinel_done(cq_redis *r, int graceful)
{
    redisAsyncContext *sac = r->sac;

    if (sac == NULL)
        return;
    r->sac = NULL;
    sac->data = NULL;
    if (graceful)
        redisAsyncDisconnect(sac);
    else
        redisAsyncFree(sac);
}

/* The next sentinel, or a pause once every one was asked. */
void cq_redis_next_sentinel(cq_redis *r)
{
    if (r->tried < r->nsentinels) {
        ask_sentinel(r);
        return;
    }
    r->tried = 0;
    cq_redis_schedule_reconnect(r);
}

static void sentinel_reply_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
    cq_redis *r = ac->data;
    redisReply *rep = reply;
    char port[16];

    (void)privdata;
    if (r == NULL || rep == NULL)
        return;
    cq_redis_sentinel_done(r, 1);
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
        rep->element[0]->type != REDIS_REPLY_STRING ||
        rep->element[1]->type != REDIS_REPLY_STRING || rep->element[0]->len >= HOST_MAX) {
        cq_log(CQ_LOG_WARN, "sentinel_no_master", "conn", r->name, "master", r->master_name,
               "error", rep->type == REDIS_REPLY_ERROR ? rep->str : "unknown master name", NULL);
        cq_redis_next_sentinel(r);
        return;
    }
    memcpy(r->host, rep->element[0]->str, rep->element[0]->len + 1);
    r->port = (int)strtol(rep->element[1]->str, NULL, 10);
    snprintf(port, sizeof(port), "%d", r->port);
    r->tried = 0;
    cq_log(CQ_LOG_INFO, "sentinel_master", "conn", r->name, "master", r->master_name, "host",
           r->host, "port", port, NULL);
    cq_redis_connect_node(r);
}

static void sentinel_connect_cb(const redisAsyncContext *ac, int status)
{
    cq_redis *r = ac->data;

    if (r == NULL || status == REDIS_OK)
        return;
    /* hiredis frees the context after this callback */
    r->sac = NULL;
    cq_log(CQ_LOG_WARN, "sentinel_unreachable", "conn", r->name, "error", ac->errstr, NULL);
    cq_redis_next_sentinel(r);
}

/* Ask one sentinel where the master is; the answer connects to it. */
static void ask_sentinel(cq_redis *r)
{
    const sentinel *s = &r->sentinels[r->next_sentinel];
    redisAsyncContext *sac;

    r->next_sentinel = (r->next_sentinel + 1) % r->nsentinels;
    r->tried++;
    sac = redisAsyncConnect(s->host, s->port);
    if (sac == NULL || sac->err || cq_redis_uv_attach(sac, r->loop) != 0) {
        if (sac != NULL)
            redisAsyncFree(sac);
        cq_redis_next_sentinel(r);
        return;
    }
    sac->data = r;
    redisAsyncSetConnectCallback(sac, sentinel_connect_cb);
    r->sac = sac;
    r->state = ST_DISCOVERING;
    r->last_progress_ms = uv_now(r->loop);
    redisAsyncCommand(sac, sentinel_reply_cb, NULL, "SENTINEL get-master-addr-by-name %s",
                      r->master_name);
}

/* --- both --------------------------------------------------------------- */

/* With Sentinel, ask again every time: the master may have moved.  With
 * Cluster, go where MOVED sent us, else to the next seed: any node answers
 * MOVED with the slot's owner. */
void cq_redis_discover(cq_redis *r)
{
    if (r->nsentinels > 0) {
        ask_sentinel(r);
        return;
    }
    if (r->nseeds > 0 && !r->redirected) {
        const sentinel *seed = &r->sentinels[r->next_sentinel];

        r->next_sentinel = (r->next_sentinel + 1) % r->nseeds;
        snprintf(r->host, sizeof(r->host), "%s", seed->host);
        r->port = seed->port;
    }
    r->redirected = false;
    cq_redis_connect_node(r);
}

/* "host:port,host:port" (sentinels, or cluster seeds) into r->sentinels
 * (the config checked the form). */
int cq_redis_parse_nodes(cq_redis *r, const cq_redis_conf *rc, cq_err *err)
{
    const char *p = rc->sentinels != NULL ? rc->sentinels : rc->cluster;

    if (p == NULL)
        return 0;
    while (*p != '\0' && r->nsentinels < MAX_SENTINELS) {
        size_t n = strcspn(p, ",");
        char one[HOST_MAX + 16];
        sentinel *s = &r->sentinels[r->nsentinels];

        snprintf(one, sizeof(one), "%.*s", (int)n, p);
        if (cq_parse_hostport(one, s->host, sizeof(s->host), &s->port) != 0)
            return cq_err_set(err, -EINVAL, "config", "[redis] sentinels: bad entry '%s'", one);
        r->nsentinels++;
        p += n;
        if (*p == ',')
            p++;
    }
    if (rc->sentinels == NULL) {
        r->nseeds = r->nsentinels;
        r->nsentinels = 0;
        return 0;
    }
    r->master_name = strdup(rc->master_name != NULL ? rc->master_name : "");
    return r->master_name != NULL ? 0 : cq_err_set(err, -ENOMEM, "nomem", "out of memory");
}
