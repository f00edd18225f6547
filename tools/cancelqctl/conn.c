/*
 * conn.c - the config and the one synchronous Redis connection of
 * cancelqctl: connect (TCP or unix socket), AUTH, SELECT, run commands and
 * embedded scripts, report every failure once.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include "cancelq/redis.h"
#include "ctl.h"

#define CTL_MAX_ARGS 16 /* ctl_cmd() varargs */

static const char *const script_names[CTL_SCRIPTS] = {"dlq_requeue"};

/* Remember a connection or Redis error (for check's summary) and, unless
 * quiet, print it: "cancelqctl: <text>". */
static void fail(ctl *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(ctl *c, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(c->error, sizeof(c->error), fmt, ap);
    va_end(ap);
    if (!c->quiet)
        fprintf(stderr, "%s: %s\n", c->prog, c->error);
}

static struct timeval tv_ms(uint64_t ms)
{
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};

    return tv;
}

static int make_keys(ctl *c)
{
    if (cq_keys_init(&c->k, c->cfg->redis.prefix, NULL) == 0)
        return 0;
    fail(c, "[redis] prefix too long: %.40s...", c->cfg->redis.prefix);
    return -1;
}

static int connect_redis(ctl *c)
{
    const cq_redis_conf *rc = &c->cfg->redis;
    struct timeval tv = tv_ms(rc->connect_timeout_ms > 0 ? rc->connect_timeout_ms : 2000);

    if (rc->unix_socket != NULL) {
        snprintf(c->where, sizeof(c->where), "%s", rc->unix_socket);
        c->rc = redisConnectUnixWithTimeout(rc->unix_socket, tv);
    } else {
        snprintf(c->where, sizeof(c->where), "%s:%d", rc->host, rc->port);
        c->rc = redisConnectWithTimeout(rc->host, rc->port, tv);
    }
    if (c->rc == NULL || c->rc->err != 0) {
        fail(c, "redis %s: %s", c->where, c->rc != NULL ? c->rc->errstr : "out of memory");
        c->broken = true;
        return -1;
    }
    if (redisSetTimeout(c->rc, tv_ms(CTL_REPLY_TIMEOUT_MS)) != REDIS_OK) {
        fail(c, "redis %s: cannot set the reply timeout", c->where);
        return -1;
    }
    return 0;
}

/* Report a failed command once: a broken hiredis context fails every
 * later command with the same error, and one line says it all. */
static void report_io(ctl *c, const char *what)
{
    if (c->broken)
        return;
    c->broken = true;
    if (c->rc->err == REDIS_ERR_PROTOCOL) {
        fail(c,
             "redis %s does not answer as Redis (%s); check [redis] host, port and unix_socket "
             "in %s",
             c->where, c->rc->errstr, c->conf_path);
        return;
    }
    fail(c, "redis %s: %s: %s", c->where, what,
         c->rc->errstr[0] != '\0' ? c->rc->errstr : "no reply");
}

/* TIME: the offset of Redis's clock from ours, so that ages and due
 * times compare with what the daemon's scripts wrote in Redis time. */
static int server_clock(ctl *c)
{
    redisReply *r = ctl_cmd(c, 1, "TIME");
    int64_t local = cq_clock_unix_ms();
    int rc = -1;

    if (r == NULL)
        return -1;
    if (ctl_reply_is(r, REDIS_REPLY_ARRAY, "TIME") && r->elements == 2 &&
        r->element[0]->type == REDIS_REPLY_STRING && r->element[1]->type == REDIS_REPLY_STRING) {
        int64_t ms = strtoll(r->element[0]->str, NULL, 10) * 1000 +
                     strtoll(r->element[1]->str, NULL, 10) / 1000;

        c->clock_offset_ms = ms - local;
        rc = 0;
    }
    freeReplyObject(r);
    return rc;
}

int64_t ctl_now_ms(const ctl *c)
{
    return cq_clock_unix_ms() + c->clock_offset_ms;
}

/* AUTH with the password file's content (never printed), then SELECT. */
static int login(ctl *c)
{
    const cq_redis_conf *rc = &c->cfg->redis;
    redisReply *r;
    char db[16];

    if (rc->password_file != NULL) {
        char *pw = NULL;
        cq_err err;

        if (cq_secret_read(rc->password_file, &pw, &err) != 0) {
            fail(c, "redis password: %s", err.msg);
            return -1;
        }
        r = ctl_cmd(c, 2, "AUTH", pw);
        cq_secret_free(pw);
        if (r == NULL)
            return -1;
        freeReplyObject(r);
    }
    if (rc->db != 0) {
        snprintf(db, sizeof(db), "%d", rc->db);
        r = ctl_cmd(c, 2, "SELECT", db);
        if (r == NULL)
            return -1;
        freeReplyObject(r);
    }
    return 0;
}

int ctl_load_config(ctl *c)
{
    cq_err err;

    if (c->cfg != NULL)
        return 0;
    cq_err_clear(&err);
    c->cfg = cq_config_load_ex(c->conf_path, CQ_CONFIG_SKIP_SECRETS, &err);
    if (c->cfg == NULL) {
        fail(c, "%s", err.msg[0] != '\0' ? err.msg : c->conf_path);
        return -1;
    }
    return make_keys(c);
}

int ctl_connect(ctl *c)
{
    c->broken = false;
    /* TIME also proves the peer speaks Redis before any real command */
    if (connect_redis(c) == 0 && login(c) == 0 && server_clock(c) == 0)
        return 0;
    if (c->rc != NULL)
        redisFree(c->rc);
    c->rc = NULL;
    memset(c->sha, 0, sizeof(c->sha));
    return -1;
}

int ctl_open(ctl *c)
{
    if (ctl_load_config(c) != 0 || ctl_connect(c) != 0) {
        ctl_close(c);
        return -1;
    }
    return 0;
}

void ctl_close(ctl *c)
{
    if (c->rc != NULL)
        redisFree(c->rc);
    c->rc = NULL;
    c->broken = false;
    memset(c->sha, 0, sizeof(c->sha));
    cq_config_free(c->cfg);
    c->cfg = NULL;
}

redisReply *ctl_cmdv(ctl *c, int argc, const char **argv, const size_t *lens)
{
    redisReply *r;

    if (c->broken)
        return NULL;
    r = redisCommandArgv(c->rc, argc, argv, lens);
    if (r == NULL) {
        report_io(c, argv[0]);
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        char text[1024];

        out_escape(text, sizeof(text), r->str, r->len, 300);
        fail(c, "redis %s: %s: %s", c->where, argv[0], text);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

redisReply *ctl_cmd(ctl *c, int argc, ...)
{
    const char *argv[CTL_MAX_ARGS];
    va_list ap;

    if (argc <= 0 || argc > CTL_MAX_ARGS)
        return NULL;
    va_start(ap, argc);
    for (int i = 0; i < argc; i++)
        argv[i] = va_arg(ap, const char *);
    va_end(ap);
    return ctl_cmdv(c, argc, argv, NULL);
}

static int script_index(const char *name)
{
    for (int i = 0; i < CTL_SCRIPTS; i++)
        if (strcmp(script_names[i], name) == 0)
            return i;
    return -1;
}

static int script_load(ctl *c, int i)
{
    const char *src = cq_redis_script_source(script_names[i]);
    redisReply *r;

    if (src == NULL) {
        fprintf(stderr, "%s: script %s is not built in\n", c->prog, script_names[i]);
        return -1;
    }
    r = ctl_cmd(c, 3, "SCRIPT", "LOAD", src);
    if (r == NULL)
        return -1;
    if (!ctl_reply_is(r, REDIS_REPLY_STRING, "SCRIPT LOAD") || r->len != 40) {
        freeReplyObject(r);
        return -1;
    }
    memcpy(c->sha[i], r->str, 40);
    c->sha[i][40] = '\0';
    freeReplyObject(r);
    return 0;
}

redisReply *ctl_script(ctl *c, const char *name, int nkeys, int argc, const char **argv,
                       const size_t *lens)
{
    const char **full = NULL;
    size_t *fl = NULL;
    redisReply *r = NULL;
    char nk[16];
    int i = script_index(name);

    if (c->broken)
        return NULL;
    if (i < 0 || (c->sha[i][0] == '\0' && script_load(c, i) != 0))
        return NULL;
    full = calloc((size_t)argc + 3, sizeof(*full));
    fl = calloc((size_t)argc + 3, sizeof(*fl));
    if (full == NULL || fl == NULL) {
        fprintf(stderr, "%s: out of memory\n", c->prog);
        goto free_args;
    }
    snprintf(nk, sizeof(nk), "%d", nkeys);
    full[0] = "EVALSHA";
    full[1] = c->sha[i];
    full[2] = nk;
    for (int k = 0; k < 3; k++)
        fl[k] = strlen(full[k]);
    for (int k = 0; k < argc; k++) {
        full[k + 3] = argv[k];
        fl[k + 3] = lens != NULL ? lens[k] : strlen(argv[k]);
    }
    r = redisCommandArgv(c->rc, argc + 3, full, fl);
    if (r != NULL && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0) {
        /* the script cache was flushed since we loaded it */
        freeReplyObject(r);
        r = NULL;
        if (script_load(c, i) == 0)
            r = redisCommandArgv(c->rc, argc + 3, full, fl);
    }
    if (r == NULL && c->rc->err != 0)
        report_io(c, name);
    if (r != NULL && r->type == REDIS_REPLY_ERROR) {
        char text[1024];

        out_escape(text, sizeof(text), r->str, r->len, 300);
        fail(c, "redis %s: script %s: %s", c->where, name, text);
        freeReplyObject(r);
        r = NULL;
    }
free_args:
    free(full);
    free(fl);
    return r;
}

bool ctl_reply_is(const redisReply *r, int type, const char *what)
{
    if (r != NULL && r->type == type)
        return true;
    fprintf(stderr, "cancelqctl: unexpected reply to %s (type %d)\n", what,
            r != NULL ? r->type : -1);
    return false;
}

long long ctl_int(redisReply *r, const char *what)
{
    long long v = -1;

    if (r == NULL)
        return -1;
    if (ctl_reply_is(r, REDIS_REPLY_INTEGER, what))
        v = r->integer;
    freeReplyObject(r);
    return v;
}

void ctl_key_pattern(const ctl *c, const char *suffix, char *out, size_t size)
{
    size_t o = 0;

    for (const char *p = c->k.prefix; *p != '\0' && o + 3 < size; p++) {
        if (strchr("*?[]\\", *p) != NULL)
            out[o++] = '\\';
        out[o++] = *p;
    }
    snprintf(out + o, size - o, "%s", suffix);
}

int ctl_scan_keys(ctl *c, const char *suffix, ctl_key_fn fn, void *data)
{
    char pattern[CQ_KEY_MAX * 2], cursor[32] = "0";
    const char *star = strchr(suffix, '*');
    size_t skip = strlen(c->k.prefix) + (star != NULL ? (size_t)(star - suffix) : strlen(suffix));

    ctl_key_pattern(c, suffix, pattern, sizeof(pattern));
    do {
        redisReply *s = ctl_cmd(c, 6, "SCAN", cursor, "MATCH", pattern, "COUNT", "1000");
        int rc = 0;

        if (s == NULL)
            return -1;
        if (!ctl_reply_is(s, REDIS_REPLY_ARRAY, "SCAN") || s->elements != 2 ||
            s->element[0]->type != REDIS_REPLY_STRING || s->element[1]->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(s);
            return -1;
        }
        snprintf(cursor, sizeof(cursor), "%s", s->element[0]->str);
        for (size_t i = 0; i < s->element[1]->elements && rc == 0; i++) {
            const redisReply *k = s->element[1]->element[i];

            if (k->type == REDIS_REPLY_STRING && k->len > skip)
                rc = fn(c, k, k->str + skip, k->len - skip, data);
        }
        freeReplyObject(s);
        if (rc != 0)
            return rc;
    } while (strcmp(cursor, "0") != 0);
    return 0;
}
