/*
 * redis_init.c - what a new connection sends before it is ready
 * (redis_int.h): AUTH, SELECT, ROLE (Sentinel: never write to a replica),
 * the durability check (CONFIG GET appendonly / appendfsync) and SCRIPT
 * LOAD of every embedded script; ready after the last reply.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cancelq/log.h"
#include "redis_int.h"

/* What an init reply is for (privdata of init_cb); >= 0: a script index. */
enum { INIT_PLAIN = -1, INIT_ROLE = -2, INIT_AOF = -3, INIT_FSYNC = -4 };

/* CONFIG GET x -> its value, or NULL. */
static const char *config_value(const redisReply *rep)
{
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
        rep->element[1]->type != REDIS_REPLY_STRING)
        return NULL;
    return rep->element[1]->str;
}

/* Warn (once per change) when a crash of Redis could lose acknowledged
 * jobs: no AOF, or an AOF that is not fsynced on every write. */
static void durability_reply(cq_redis *r, long what, const redisReply *rep)
{
    const char *v = rep->type == REDIS_REPLY_ERROR ? NULL : config_value(rep);
    char warn[sizeof(r->durability)];

    if (what == INIT_AOF) {
        snprintf(r->aof, sizeof(r->aof), "%s", v != NULL ? v : "");
        return;
    }
    if (v == NULL || r->aof[0] == '\0')
        snprintf(warn, sizeof(warn), "durability unknown: CONFIG GET is not allowed");
    else if (strcmp(r->aof, "yes") != 0)
        snprintf(warn, sizeof(warn),
                 "appendonly is off: a Redis crash loses jobs acknowledged since the last save");
    else if (strcmp(v, "always") != 0)
        snprintf(warn, sizeof(warn),
                 "appendfsync is %s: a Redis crash can lose the last second of jobs", v);
    else
        warn[0] = '\0';
    if (strcmp(warn, r->durability) != 0 && warn[0] != '\0')
        cq_log(CQ_LOG_WARN, "redis_durability", "conn", r->name, "warning", warn, NULL);
    snprintf(r->durability, sizeof(r->durability), "%s", warn);
}

/* With Sentinel, never write to a replica: the node must say "master". */
static int role_is_master(const redisReply *rep)
{
    return rep->type == REDIS_REPLY_ARRAY && rep->elements > 0 &&
           rep->element[0]->type == REDIS_REPLY_STRING &&
           strcmp(rep->element[0]->str, "master") == 0;
}

static void init_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
    cq_redis *r = ac->data;
    redisReply *rep = reply;
    long i = (long)(intptr_t)privdata;

    if (r == NULL || rep == NULL)
        return;
    if (i == INIT_AOF || i == INIT_FSYNC) {
        durability_reply(r, i, rep); /* an error here is not fatal */
    } else if (rep->type == REDIS_REPLY_ERROR) {
        cq_log(CQ_LOG_ERR, "redis_init_failed", "conn", r->name, "error", rep->str, NULL);
        cq_redis_drop(r, "init failed");
        return;
    } else if (i == INIT_ROLE && !role_is_master(rep)) {
        cq_redis_drop(r, "the node Sentinel named is not a master (yet)");
        return;
    } else if (i >= 0 && rep->type == REDIS_REPLY_STRING && rep->len == SHA_LEN) {
        memcpy(r->sha[i], rep->str, SHA_LEN + 1);
    }
    if (--r->init_left > 0)
        return;
    r->state = ST_READY;
    r->backoff_ms = RECONNECT_MIN_MS;
    cq_log(CQ_LOG_INFO, "redis_ready", "conn", r->name, "addr", r->host, NULL);
    if (r->ev.ready != NULL)
        r->ev.ready(r->ev.data);
    cq_redis_send_pending(r);
}

static void init_cmd(cq_redis *r, long what, const char *fmt, const char *arg)
{
    r->init_left++;
    redisAsyncCommand(r->ac, init_cb, (void *)(intptr_t)what, fmt, arg);
}

/* AUTH, SELECT, ROLE (Sentinel), the durability check (the connection that
 * reports readiness), SCRIPT LOAD of every script; ready after the last
 * reply. */
void cq_redis_send_init(cq_redis *r)
{
    char db[16];
    int i;

    r->state = ST_INIT;
    r->init_left = 0;
    if (r->password != NULL)
        init_cmd(r, INIT_PLAIN, "AUTH %s", r->password);
    if (r->db != 0) {
        snprintf(db, sizeof(db), "%d", r->db);
        init_cmd(r, INIT_PLAIN, "SELECT %s", db);
    }
    if (r->nsentinels > 0)
        init_cmd(r, INIT_ROLE, "%s", "ROLE");
    if (r->ev.ready != NULL) {
        init_cmd(r, INIT_AOF, "CONFIG GET %s", "appendonly");
        init_cmd(r, INIT_FSYNC, "CONFIG GET %s", "appendfsync");
    }
    for (i = 0; i < r->nscripts; i++)
        init_cmd(r, i, "SCRIPT LOAD %s", cq_lua_scripts[i].src);
    init_cmd(r, INIT_PLAIN, "%s", "PING");
}
