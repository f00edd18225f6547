/*
 * redis.c - a hiredis async connection that reconnects and resends
 * (see redis.h): the command queue, the connection's life (connect, drop,
 * reconnect with backoff, the reply watchdog) and the public API.  Finding
 * the node (Sentinel, Cluster) is redis_discover.c, a new connection's
 * first commands redis_init.c, the libuv attachment redis_uv.c.
 */
#include "cancelq/redis.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/async.h>

#include "cancelq/backoff.h"
#include "cancelq/log.h"
#include "redis_int.h"

#define RECONNECT_MAX_MS 5000 /* capped so a recovered Redis is found fast */
#define WATCHDOG_EVERY_MS 1000

static void connect_now(cq_redis *r);

/* --- command queue ------------------------------------------------------- */

/* The command in RESP; NULL when memory is short or it is too large for
 * hiredis' formatter. */
static cmd *cmd_new(int argc, const char **argv, const size_t *argvlen)
{
    cmd *c = calloc(1, sizeof(*c));
    int len;

    if (c == NULL)
        return NULL;
    /* the sds formatter: a third of the instructions of the sprintf one */
    len = redisFormatSdsCommandArgv(&c->buf, argc, argv, argvlen);
    if (len < 0 || c->buf == NULL) {
        free(c);
        return NULL;
    }
    c->len = (size_t)len;
    c->script = -1;
    return c;
}

static void cmd_free(cmd *c)
{
    if (c != NULL)
        redisFreeSdsCommand(c->buf);
    free(c);
}

static void cmd_link(cq_redis *r, cmd *c)
{
    c->r = r;
    c->prev = r->head.prev;
    c->next = &r->head;
    r->head.prev->next = c;
    r->head.prev = c;
    r->npending++;
}

static void cmd_unlink(cmd *c)
{
    c->prev->next = c->next;
    c->next->prev = c->prev;
    c->r->npending--;
}

static uint64_t now_ms(cq_redis *r)
{
    return uv_now(r->loop);
}

static void reply_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
    cmd *c = privdata;
    cq_redis *r = c->r;
    redisReply *rep = reply;

    (void)ac;
    if (c->sent && r->nsent > 0)
        r->nsent--;
    c->sent = 0;
    r->last_progress_ms = now_ms(r);
    if (rep == NULL) {
        if (r->state == ST_CLOSING) {
            cmd_unlink(c);
            c->cb(c->data, NULL);
            cmd_free(c);
        }
        return; /* lost with the connection: resent after the reconnect */
    }
    if (rep->type == REDIS_REPLY_ERROR && cq_redis_cluster_redirect(r, rep->str)) {
        cq_redis_drop(r, rep->str); /* kept, and sent again to the node named */
        return;
    }
    if (rep->type == REDIS_REPLY_ERROR &&
        (strncmp(rep->str, "NOSCRIPT", 8) == 0 || strncmp(rep->str, "LOADING", 7) == 0 ||
         strncmp(rep->str, "READONLY", 8) == 0 || strncmp(rep->str, "MASTERDOWN", 10) == 0 ||
         strncmp(rep->str, "BUSY", 4) == 0)) {
        /* the server cannot run it now: keep it, reconnect, send it again */
        cq_redis_drop(r, rep->str);
        return;
    }
    cmd_unlink(c);
    c->cb(c->data, rep);
    cmd_free(c);
}

static int send_one(cq_redis *r, cmd *c)
{
    if (c->script >= 0)
        memcpy(c->buf + c->sha_off, r->sha[c->script], SHA_LEN);
    if (redisAsyncFormattedCommand(r->ac, reply_cb, c, c->buf, c->len) != REDIS_OK)
        return -EIO;
    if (r->nsent == 0)
        r->last_progress_ms = now_ms(r);
    c->sent = 1;
    r->nsent++;
    return 0;
}

void cq_redis_send_pending(cq_redis *r)
{
    cmd *c;

    for (c = r->head.next; c != &r->head && r->state == ST_READY; c = c->next) {
        if (!c->sent && send_one(r, c) != 0) {
            cq_redis_drop(r, "send failed");
            return;
        }
    }
}

static int queue(cq_redis *r, cmd *c)
{
    cmd_link(r, c);
    if (r->state == ST_READY && send_one(r, c) != 0)
        cq_redis_drop(r, "send failed");
    return 0;
}

int cq_redis_cmd(cq_redis *r, cq_redis_cb cb, void *data, int argc, const char **argv,
                 const size_t *argvlen)
{
    cmd *c = cmd_new(argc, argv, argvlen);

    if (c == NULL)
        return -ENOMEM;
    c->cb = cb;
    c->data = data;
    return queue(r, c);
}

static int script_index(const char *name)
{
    int i;

    for (i = 0; cq_lua_scripts[i].name != NULL; i++) {
        if (strcmp(cq_lua_scripts[i].name, name) == 0)
            return i;
    }
    return -1;
}

const char *cq_redis_script_source(const char *name)
{
    int i = script_index(name);

    return i >= 0 ? cq_lua_scripts[i].src : NULL;
}

/* The sha placeholder ends within this many bytes of the formatted
 * command: "*<argc>\r\n$7\r\nEVALSHA\r\n$40\r\n" is at most 35 bytes. */
#define SHA_SEARCH_MAX (35 + SHA_LEN)
/* Arguments of EVALSHA on the stack up to this many; more are allocated. */
#define SCRIPT_ARGV_STACK 64

int cq_redis_script(cq_redis *r, const char *script, cq_redis_cb cb, void *data, int nkeys,
                    int argc, const char **argv, const size_t *argvlen)
{
    static const char placeholder[SHA_LEN + 1] = "0000000000000000000000000000000000000000";
    const char *stack_v[SCRIPT_ARGV_STACK], **full = stack_v;
    size_t stack_l[SCRIPT_ARGV_STACK], *fulllen = stack_l;
    char nk[16];
    const char *at;
    int idx = script_index(script), i, rc = -ENOMEM;
    cmd *c = NULL;

    if (idx < 0)
        return -ENOENT;
    if (argc < 0 || argc > INT_MAX - 3)
        return -EINVAL;
    if (argc + 3 > SCRIPT_ARGV_STACK) {
        full = malloc(sizeof(*full) * (size_t)(argc + 3));
        fulllen = malloc(sizeof(*fulllen) * (size_t)(argc + 3));
        if (full == NULL || fulllen == NULL)
            goto out;
    }
    snprintf(nk, sizeof(nk), "%d", nkeys);
    full[0] = "EVALSHA";
    fulllen[0] = 7;
    full[1] = placeholder; /* the sha of the connection goes here at send time */
    fulllen[1] = SHA_LEN;
    full[2] = nk;
    fulllen[2] = strlen(nk);
    for (i = 0; i < argc; i++) {
        full[i + 3] = argv[i];
        fulllen[i + 3] = argvlen[i];
    }
    c = cmd_new(argc + 3, full, fulllen);
    if (c == NULL)
        goto out;
    /* "*N\r\n$7\r\nEVALSHA\r\n$40\r\n<sha>": the first 40 zeros are the sha */
    at = memmem(c->buf, c->len < SHA_SEARCH_MAX ? c->len : SHA_SEARCH_MAX, placeholder, SHA_LEN);
    if (at == NULL) {
        cmd_free(c);
        rc = -EINVAL;
        goto out;
    }
    c->sha_off = (size_t)(at - c->buf);
    c->script = idx;
    c->cb = cb;
    c->data = data;
    rc = queue(r, c);
out:
    if (full != stack_v)
        free(full);
    if (fulllen != stack_l)
        free(fulllen);
    return rc;
}

/* --- connection lifecycle ------------------------------------------------ */

static void retry_cb(uv_timer_t *t)
{
    connect_now(t->data);
}

void cq_redis_schedule_reconnect(cq_redis *r)
{
    uint64_t d;

    if (r->state == ST_CLOSING)
        return;
    r->state = ST_IDLE;
    d = cq_backoff_delay(r->backoff_ms / 2, r->backoff_ms, 0, cq_rand_default, NULL) +
        r->backoff_ms / 2;
    r->backoff_ms = r->backoff_ms * 2 > RECONNECT_MAX_MS ? RECONNECT_MAX_MS : r->backoff_ms * 2;
    uv_timer_start(&r->retry, retry_cb, d, 0);
}

/* Forget the current connection: its pending replies come back as NULL and
 * the commands stay queued for the next one. */
void cq_redis_drop(cq_redis *r, const char *why)
{
    redisAsyncContext *ac = r->ac;
    int was_ready = r->state == ST_READY;

    if (ac == NULL)
        return;
    r->ac = NULL;
    ac->data = NULL;
    redisAsyncFree(ac);
    cq_log(CQ_LOG_WARN, "redis_lost", "conn", r->name, "reason", why, NULL);
    cq_redis_schedule_reconnect(r);
    if (was_ready && r->ev.lost != NULL)
        r->ev.lost(r->ev.data, why);
}

static void connect_cb(const redisAsyncContext *ac, int status)
{
    cq_redis *r = ac->data;

    if (r == NULL)
        return;
    if (status != REDIS_OK) {
        /* hiredis frees the context after this callback */
        cq_log(CQ_LOG_WARN, "redis_connect_failed", "conn", r->name, "error", ac->errstr, NULL);
        r->ac = NULL;
        r->redirected = false; /* Cluster: back to the seeds */
        cq_redis_schedule_reconnect(r);
        return;
    }
    cq_redis_send_init(r);
}

static void disconnect_cb(const redisAsyncContext *ac, int status)
{
    cq_redis *r = ac->data;
    int was_ready;

    (void)status;
    if (r == NULL || r->ac != ac)
        return; /* already dropped by us */
    was_ready = r->state == ST_READY;
    r->ac = NULL;
    r->nsent = 0;
    r->redirected = false; /* Cluster: the node may be gone; ask the seeds */
    cq_log(CQ_LOG_WARN, "redis_lost", "conn", r->name, "reason",
           ac->errstr[0] != '\0' ? ac->errstr : "disconnected", NULL);
    cq_redis_schedule_reconnect(r);
    if (was_ready && r->ev.lost != NULL)
        r->ev.lost(r->ev.data, "disconnected");
}

/* Connect to r->host:r->port (or the socket). */
void cq_redis_connect_node(cq_redis *r)
{
    redisAsyncContext *ac;

    ac = r->unix_socket != NULL ? redisAsyncConnectUnix(r->unix_socket)
                                : redisAsyncConnect(r->host, r->port);
    if (ac == NULL || ac->err) {
        cq_log(CQ_LOG_WARN, "redis_connect_failed", "conn", r->name, "error",
               ac != NULL ? ac->errstr : "out of memory", NULL);
        if (ac != NULL)
            redisAsyncFree(ac);
        cq_redis_schedule_reconnect(r);
        return;
    }
    ac->data = r;
    if (cq_redis_uv_attach(ac, r->loop) != 0) {
        redisAsyncFree(ac);
        cq_redis_schedule_reconnect(r);
        return;
    }
    redisAsyncSetConnectCallback(ac, connect_cb);
    redisAsyncSetDisconnectCallback(ac, disconnect_cb);
    r->ac = ac;
    r->state = ST_CONNECTING;
    r->last_progress_ms = now_ms(r);
}

static void connect_now(cq_redis *r)
{
    cmd *c;

    if (r->state == ST_CLOSING)
        return;
    for (c = r->head.next; c != &r->head; c = c->next)
        c->sent = 0;
    r->nsent = 0;
    if (r->reconnects++ > 0)
        cq_log(CQ_LOG_INFO, "redis_reconnect", "conn", r->name, NULL);
    cq_redis_discover(r);
}

/* A connection that does not answer is as good as gone (hiredis 0.14 has
 * no command timeout); so is one that does not finish connecting. */
static void watchdog_cb(uv_timer_t *t)
{
    cq_redis *r = t->data;
    int waiting = r->state == ST_CONNECTING || r->state == ST_INIT || r->nsent > 0;

    if (r->state == ST_DISCOVERING && r->sac != NULL && r->reply_timeout_ms > 0 &&
        now_ms(r) - r->last_progress_ms > r->reply_timeout_ms) {
        cq_log(CQ_LOG_WARN, "sentinel_unreachable", "conn", r->name, "error",
               "no answer within the reply timeout", NULL);
        cq_redis_sentinel_done(r, 0);
        cq_redis_next_sentinel(r);
        return;
    }
    if (r->ac == NULL || r->reply_timeout_ms == 0 || !waiting)
        return;
    if (now_ms(r) - r->last_progress_ms > r->reply_timeout_ms) {
        if (r->state == ST_CONNECTING) {
            redisAsyncContext *ac = r->ac;

            r->ac = NULL;
            ac->data = NULL;
            redisAsyncFree(ac);
            cq_log(CQ_LOG_WARN, "redis_connect_failed", "conn", r->name, "error",
                   "connect timed out", NULL);
            cq_redis_schedule_reconnect(r);
        } else {
            cq_redis_drop(r, "no reply within the reply timeout");
        }
    }
}

/* --- public API --------------------------------------------------------- */

const char *cq_redis_durability(const cq_redis *r)
{
    return r->durability;
}

const char *cq_redis_addr(const cq_redis *r)
{
    return r->host;
}

cq_redis *cq_redis_new(uv_loop_t *loop, const cq_redis_conf *rc, const char *password,
                       const char *name, uint64_t reply_timeout_ms, const cq_redis_events *ev,
                       cq_err *err)
{
    cq_redis *r = calloc(1, sizeof(*r));

    if (r == NULL)
        goto nomem;
    r->loop = loop;
    r->head.next = r->head.prev = &r->head;
    r->name = strdup(name);
    snprintf(r->host, sizeof(r->host), "%s", rc->host != NULL ? rc->host : "127.0.0.1");
    if (cq_redis_parse_nodes(r, rc, err) != 0)
        goto fail;
    r->unix_socket = rc->unix_socket != NULL ? strdup(rc->unix_socket) : NULL;
    r->password = password != NULL ? strdup(password) : NULL;
    if (r->name == NULL || (rc->unix_socket != NULL && !r->unix_socket) ||
        (password != NULL && r->password == NULL))
        goto nomem;
    r->port = rc->port;
    r->db = rc->db;
    r->reply_timeout_ms = reply_timeout_ms;
    if (ev != NULL)
        r->ev = *ev;
    r->backoff_ms = RECONNECT_MIN_MS;
    while (cq_lua_scripts[r->nscripts].name != NULL && r->nscripts < MAX_SCRIPTS)
        r->nscripts++;
    uv_timer_init(loop, &r->retry);
    uv_timer_init(loop, &r->watchdog);
    r->retry.data = r->watchdog.data = r;
    uv_timer_start(&r->watchdog, watchdog_cb, WATCHDOG_EVERY_MS, WATCHDOG_EVERY_MS);
    connect_now(r);
    return r;
nomem:
    cq_err_set(err, -ENOMEM, "nomem", "out of memory");
fail:
    if (r != NULL) {
        free(r->name);
        free(r->unix_socket);
        free(r->password);
        free(r->master_name);
        free(r);
    }
    return NULL;
}

int cq_redis_ready(const cq_redis *r)
{
    return r->state == ST_READY;
}

size_t cq_redis_pending(const cq_redis *r)
{
    return r->npending;
}

uint64_t cq_redis_reconnects(const cq_redis *r)
{
    return r->reconnects > 0 ? r->reconnects - 1 : 0;
}

void cq_redis_reconnect(cq_redis *r, const char *why)
{
    cq_redis_drop(r, why);
}

static void handle_closed(uv_handle_t *h)
{
    cq_redis *r = h->data;

    if (--r->closing_handles > 0)
        return;
    free(r->name);
    free(r->unix_socket);
    free(r->master_name);
    if (r->password != NULL)
        explicit_bzero(r->password, strlen(r->password));
    free(r->password);
    free(r);
}

void cq_redis_free(cq_redis *r)
{
    redisAsyncContext *ac;

    if (r == NULL)
        return;
    r->state = ST_CLOSING;
    cq_redis_sentinel_done(r, 0);
    ac = r->ac;
    r->ac = NULL;
    if (ac != NULL) {
        /* pending replies of this connection arrive as NULL and are answered */
        redisAsyncFree(ac);
    }
    while (r->head.next != &r->head) {
        cmd *c = r->head.next;

        /* unlinked before its callback, so the head read above is never a
         * freed command; the analyzer loses track of the list */
        // NOLINTNEXTLINE(clang-analyzer-unix.Malloc)
        cmd_unlink(c);
        c->cb(c->data, NULL);
        cmd_free(c);
    }
    r->closing_handles = 2;
    uv_close((uv_handle_t *)&r->retry, handle_closed);
    uv_close((uv_handle_t *)&r->watchdog, handle_closed);
}
