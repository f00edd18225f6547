/*
 * redis.h - a Redis connection that survives disconnects (hiredis async on
 * the libuv loop).
 *
 * Commands are queued and sent while connected; a command whose reply is
 * lost to a disconnect is sent again after the reconnect, in the original
 * order, until a reply (possibly an error reply) arrives.  So every command
 * must be safe to run twice: cancelq's scripts check ownership and are.
 * Redis down at start, or gone for a while, means reconnecting with capped
 * jittered backoff, never giving up.
 *
 * hiredis 0.14's own libuv adapter ignores poll errors; this module attaches
 * its own that turns a poll error into a read, so hiredis sees the failure
 * and disconnects.  hiredis 0.14 has no command timeout either: a connection
 * whose oldest outstanding reply is late by more than reply_timeout_ms is
 * dropped and re-established.
 *
 * With [redis] sentinels, every (re)connect first asks the sentinels in turn
 * for the master's address (SENTINEL get-master-addr-by-name), and the node
 * must answer ROLE with "master": a disconnect, a READONLY reply or a
 * demoted node all lead back to the sentinels, so cancelq never keeps
 * writing to a replica.
 *
 * Each callback fires exactly once: with the reply (borrowed for the
 * callback), or with NULL when the connection object is freed first.
 */
#ifndef CANCELQ_REDIS_H
#define CANCELQ_REDIS_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>
#include <uv.h>

#include "cancelq/config.h"
#include "cancelq/err.h"

typedef struct cq_redis cq_redis;

typedef void (*cq_redis_cb)(void *data, redisReply *reply);

/* Called when the connection is ready (authenticated, db selected, scripts
 * loaded) and when it is lost. */
typedef struct cq_redis_events {
    void (*ready)(void *data);
    void (*lost)(void *data, const char *why);
    void *data;
} cq_redis_events;

/* Create and start connecting.  password may be NULL (copied).  name is used
 * in logs ("main", "block").  reply_timeout_ms 0 disables the watchdog.
 * Returns NULL with err filled. */
cq_redis *cq_redis_new(uv_loop_t *loop, const cq_redis_conf *rc, const char *password,
                       const char *name, uint64_t reply_timeout_ms, const cq_redis_events *ev,
                       cq_err *err);

/* Queue a command (argv copied).  0 or -ENOMEM. */
int cq_redis_cmd(cq_redis *r, cq_redis_cb cb, void *data, int argc, const char **argv,
                 const size_t *argvlen);

/* Queue EVALSHA of an embedded script (by name, e.g. "finish") with nkeys
 * keys followed by args: argv holds the keys then the args. */
int cq_redis_script(cq_redis *r, const char *script, cq_redis_cb cb, void *data, int nkeys,
                    int argc, const char **argv, const size_t *argvlen);

/* True while connected and ready. */
int cq_redis_ready(const cq_redis *r);

/* Commands queued or awaiting a reply. */
size_t cq_redis_pending(const cq_redis *r);

/* Reconnects since start. */
uint64_t cq_redis_reconnects(const cq_redis *r);

/* A warning when a crash of Redis could lose acknowledged writes (AOF off
 * or not fsynced always), as read at the last connect by the connection
 * that reports readiness; "" when safe. */
const char *cq_redis_durability(const cq_redis *r);

/* The node connected to (with Sentinel: the master last named). */
const char *cq_redis_addr(const cq_redis *r);

/* Drop the connection and reconnect (e.g. after a READONLY reply). */
void cq_redis_reconnect(cq_redis *r, const char *why);

/* Free: every pending callback fires with NULL, handles close
 * asynchronously.  NULL is a no-op. */
void cq_redis_free(cq_redis *r);

/* The embedded script source by name, or NULL (for tools and tests). */
const char *cq_redis_script_source(const char *name);

#endif
