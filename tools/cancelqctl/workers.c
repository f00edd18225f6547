/*
 * workers.c - `cancelqctl workers`, and the worker table `stats` shows too.
 *
 * A worker silent past the lease is dead; a live worker's heartbeat timer
 * returns the dead one's inflight jobs to the queue (reclaim.lua), so jobs
 * waiting on a dead worker are only a problem when no worker is alive.  An
 * inflight hash whose worker has no heartbeat entry (an orphan) is taken
 * back too once its worker has not fetched for a lease ({P}:holders); one
 * with no {P}:holders entry either (written by hand, or by a cancelqd older
 * than that) is never reclaimed: that one needs a hand.  Ages are Redis
 * server time, as the daemon writes heartbeats (beat.lua).
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workers.h"

/* --- reading ------------------------------------------------------------- */

static ctl_worker *add(ctl_workers *w, const char *id, size_t len)
{
    ctl_worker *v = realloc(w->v, (w->n + 1) * sizeof(*v)), *x;

    if (v == NULL)
        return NULL;
    w->v = v;
    x = &v[w->n];
    memset(x, 0, sizeof(*x));
    x->id = strndup(id, len);
    if (x->id == NULL)
        return NULL;
    x->inflight = -1;
    w->n++;
    return x;
}

static long long inflight_len(ctl *c, const char *id)
{
    char key[CQ_KEY_MAX];

    if (cq_keys_inflight(&c->k, id, key, sizeof(key)) != 0)
        return -1;
    return ctl_int(ctl_cmd(c, 2, "HLEN", key), "HLEN");
}

static int read_heartbeats(ctl *c, ctl_workers *w)
{
    redisReply *r = ctl_cmd(c, 5, "ZRANGE", c->k.workers, "0", "-1", "WITHSCORES");
    int rc = -1;

    if (r == NULL)
        return -1;
    if (!ctl_reply_is(r, REDIS_REPLY_ARRAY, "ZRANGE"))
        goto out;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *id = r->element[i], *score = r->element[i + 1];
        ctl_worker *x;

        if (id->type != REDIS_REPLY_STRING || score->type != REDIS_REPLY_STRING)
            continue;
        x = add(w, id->str, id->len);
        if (x == NULL) {
            fprintf(stderr, "%s: out of memory\n", c->prog);
            goto out;
        }
        x->heartbeat_ms = (int64_t)strtod(score->str, NULL);
        x->alive = w->now_ms - x->heartbeat_ms <= (int64_t)w->lease_ms;
        x->inflight = inflight_len(c, x->id);
        if (x->alive)
            w->live++;
        else
            w->dead++;
    }
    rc = 0;
out:
    freeReplyObject(r);
    return rc;
}

static bool known(const ctl_workers *w, const char *id)
{
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->v[i].id, id) == 0)
            return true;
    return false;
}

/* The orphan's last fetch in {P}:holders (0 when it has no entry). */
static int holder_ms(ctl *c, ctl_worker *x)
{
    redisReply *r = ctl_cmd(c, 3, "ZSCORE", c->k.holders, x->id);

    if (r == NULL)
        return -1;
    x->fetched_ms = r->type == REDIS_REPLY_STRING ? (int64_t)strtod(r->str, NULL) : 0;
    freeReplyObject(r);
    return 0;
}

/* An inflight hash: an orphan when no heartbeat names its worker. */
static int orphan_key(ctl *c, const redisReply *k, const char *id, size_t len, void *data)
{
    ctl_workers *w = data;
    ctl_worker *x;

    if (strlen(id) != len || known(w, id))
        return 0;
    x = add(w, id, len);
    if (x == NULL) {
        fprintf(stderr, "%s: out of memory\n", c->prog);
        return -1;
    }
    x->orphan = true;
    x->inflight = ctl_int(ctl_cmd(c, 2, "HLEN", k->str), "HLEN");
    if (holder_ms(c, x) != 0)
        return -1;
    w->orphans++;
    if (x->fetched_ms == 0 && x->inflight > 0)
        w->stranded++;
    return 0;
}

static int scan_orphans(ctl *c, ctl_workers *w)
{
    return ctl_scan_keys(c, "inflight:*", orphan_key, w) < 0 ? -1 : 0;
}

int ctl_workers_read(ctl *c, ctl_workers *w)
{
    memset(w, 0, sizeof(*w));
    w->now_ms = ctl_now_ms(c);
    w->lease_ms = c->cfg->worker.lease_ms;
    if (read_heartbeats(c, w) != 0 || scan_orphans(c, w) != 0)
        return -1;
    for (size_t i = 0; i < w->n; i++)
        if (w->v[i].inflight > 0)
            w->inflight += w->v[i].inflight;
    return 0;
}

void ctl_workers_free(ctl_workers *w)
{
    for (size_t i = 0; i < w->n; i++)
        free(w->v[i].id);
    free(w->v);
    memset(w, 0, sizeof(*w));
}

/* --- judging ------------------------------------------------------------- */

static int add_warning(cJSON *arr, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int add_warning(cJSON *arr, const char *fmt, ...)
{
    char buf[768];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return cJSON_AddItemToArray(arr, cJSON_CreateString(buf)) ? 0 : -1;
}

bool ctl_workers_alert(const ctl_workers *w)
{
    return w->live == 0 || w->stranded > 0;
}

void ctl_shell_quote(const char *s, char *buf, size_t size)
{
    size_t o = 0;

    if (size < 3) {
        if (size > 0)
            buf[0] = '\0';
        return;
    }
    buf[o++] = '\'';
    for (; *s != '\0' && o + 6 < size; s++) {
        if (*s == '\'') {
            memcpy(buf + o, "'\\''", 4); /* close, escaped quote, reopen */
            o += 4;
        } else {
            buf[o++] = *s;
        }
    }
    buf[o++] = '\'';
    buf[o] = '\0';
}

void ctl_redis_cli(const ctl *c, char *buf, size_t size)
{
    const cq_redis_conf *rc = &c->cfg->redis;
    char where[CQ_KEY_MAX + 16], db[32] = "";

    if (rc->unix_socket != NULL) {
        char q[CQ_KEY_MAX + 8];

        ctl_shell_quote(rc->unix_socket, q, sizeof(q));
        snprintf(where, sizeof(where), "-s %s", q);
    } else {
        char q[CQ_KEY_MAX];

        ctl_shell_quote(rc->host, q, sizeof(q));
        snprintf(where, sizeof(where), "-h %s -p %d", q, rc->port);
    }
    if (rc->db != 0)
        snprintf(db, sizeof(db), " -n %d", rc->db);
    snprintf(buf, size, "redis-cli %s%s%s", where, db,
             rc->password_file != NULL ? " --askpass" : "");
}

cJSON *ctl_workers_warnings(const ctl *c, const ctl_workers *w)
{
    cJSON *arr = cJSON_CreateArray();
    char age[24], cli[CQ_KEY_MAX * 2], key[CQ_KEY_MAX + 8], id[420];
    int rc = 0;

    if (arr == NULL)
        return NULL;
    if (w->live == 0)
        rc = add_warning(arr,
                         "no worker is alive: no job is taken from %sjobs, and none held by "
                         "a dead worker is taken back, until a cancelqd starts",
                         c->k.prefix);
    for (size_t i = 0; i < w->n && rc == 0; i++) {
        const ctl_worker *x = &w->v[i];

        if (x->orphan && x->inflight > 0 && x->fetched_ms > 0) {
            int64_t left = x->fetched_ms + (int64_t)w->lease_ms - w->now_ms;
            char when[96];

            out_age(left > 0 ? left : 0, age, sizeof(age));
            if (left > 0)
                snprintf(when, sizeof(when), "in %s, once it has not fetched for a lease", age);
            else
                snprintf(when, sizeof(when), "at its next heartbeat (no fetch for a lease)");
            rc = add_warning(arr,
                             "%sinflight:%.200s holds %lld job(s) but worker '%.200s' has no "
                             "heartbeat entry: %s takes them back by itself %s (%sholders)",
                             c->k.prefix, x->id, x->inflight, x->id,
                             w->live > 0 ? "a live worker" : "the first worker to start", when,
                             c->k.prefix);
        } else if (x->orphan && x->inflight > 0) {
            ctl_redis_cli(c, cli, sizeof(cli));
            ctl_shell_quote(c->k.workers, key, sizeof(key));
            ctl_shell_quote(x->id, id, sizeof(id));
            rc =
                add_warning(arr,
                            "%sinflight:%.200s holds %lld job(s) but worker '%.200s' has neither a "
                            "heartbeat entry nor a %sholders entry: no worker will take them "
                            "back; hand them to the next live worker with: %s ZADD %s 0 %s",
                            c->k.prefix, x->id, x->inflight, x->id, c->k.prefix, cli, key, id);
        } else if (!x->orphan && !x->alive && x->inflight > 0) {
            out_age(w->now_ms - x->heartbeat_ms, age, sizeof(age));
            rc = add_warning(arr,
                             "worker '%.200s' silent for %s (lease %llus): its %lld job(s) "
                             "wait for reclaim by a live worker%s",
                             x->id, age, (unsigned long long)(w->lease_ms / 1000), x->inflight,
                             w->live == 0 ? "; no worker is alive, so nothing reclaims them "
                                            "until a cancelqd starts"
                                          : "");
        }
    }
    if (rc != 0) {
        cJSON_Delete(arr);
        return NULL;
    }
    return arr;
}

cJSON *ctl_workers_json(const ctl_workers *w)
{
    cJSON *arr = cJSON_CreateArray();

    for (size_t i = 0; arr != NULL && i < w->n; i++) {
        const ctl_worker *x = &w->v[i];
        cJSON *o = cJSON_CreateObject();

        if (o == NULL || !cJSON_AddItemToArray(arr, o)) {
            cJSON_Delete(o);
            cJSON_Delete(arr);
            return NULL;
        }
        if (cJSON_AddStringToObject(o, "id", x->id) == NULL ||
            cJSON_AddBoolToObject(o, "orphan", x->orphan) == NULL ||
            (x->orphan
                 ? cJSON_AddNullToObject(o, "heartbeat_ms")
                 : cJSON_AddNumberToObject(o, "heartbeat_ms", (double)x->heartbeat_ms)) == NULL ||
            (x->orphan ? cJSON_AddNullToObject(o, "age_ms")
                       : cJSON_AddNumberToObject(o, "age_ms",
                                                 (double)(w->now_ms - x->heartbeat_ms))) == NULL ||
            cJSON_AddBoolToObject(o, "alive", x->alive) == NULL ||
            cJSON_AddNumberToObject(o, "inflight", (double)x->inflight) == NULL ||
            (x->orphan &&
             (x->fetched_ms > 0 ? cJSON_AddNumberToObject(o, "fetched_ms", (double)x->fetched_ms)
                                : cJSON_AddNullToObject(o, "fetched_ms")) == NULL)) {
            cJSON_Delete(arr);
            return NULL;
        }
    }
    return arr;
}

/* --- the command --------------------------------------------------------- */

static void print_table(const ctl_workers *w)
{
    char age[32], n[24];

    if (w->n == 0) {
        printf("no workers\n");
        return;
    }
    printf("%-32s %-12s %-6s %s\n", "WORKER", "HEARTBEAT", "STATE", "INFLIGHT");
    for (size_t i = 0; i < w->n; i++) {
        const ctl_worker *x = &w->v[i];

        if (x->orphan) {
            snprintf(age, sizeof(age), "none");
        } else {
            char t[24];

            out_age(w->now_ms - x->heartbeat_ms, t, sizeof(t));
            snprintf(age, sizeof(age), "%s ago", t);
        }
        snprintf(n, sizeof(n), x->inflight >= 0 ? "%lld" : "?", x->inflight);
        out_cell(stdout, x->id, 32);
        printf(" %-12s %-6s %s\n", age, x->orphan ? "ORPHAN" : x->alive ? "live" : "DEAD", n);
    }
}

int ctl_workers_print(const ctl *c, const ctl_workers *w)
{
    cJSON *warn = ctl_workers_warnings(c, w), *x;

    if (warn == NULL) {
        fprintf(stderr, "%s: out of memory\n", c->prog);
        return -1;
    }
    print_table(w);
    cJSON_ArrayForEach (x, warn) {
        fputs("WARNING: ", stdout);
        out_cell(stdout, x->valuestring, 0);
        putchar('\n');
    }
    cJSON_Delete(warn);
    return 0;
}

cJSON *ctl_workers_summary(const ctl *c, const ctl_workers *w)
{
    cJSON *o = cJSON_CreateObject(), *list = ctl_workers_json(w), *warn = NULL;

    if (o == NULL || list == NULL || !cJSON_AddItemToObject(o, "workers", list)) {
        cJSON_Delete(list);
        goto fail;
    }
    warn = ctl_workers_warnings(c, w);
    if (warn == NULL || !cJSON_AddItemToObject(o, "warnings", warn)) {
        cJSON_Delete(warn);
        goto fail;
    }
    if (cJSON_AddNumberToObject(o, "lease_ms", (double)w->lease_ms) == NULL ||
        cJSON_AddNumberToObject(o, "live", (double)w->live) == NULL ||
        cJSON_AddNumberToObject(o, "dead", (double)w->dead) == NULL ||
        cJSON_AddNumberToObject(o, "orphans", (double)w->orphans) == NULL ||
        cJSON_AddNumberToObject(o, "stranded", (double)w->stranded) == NULL ||
        cJSON_AddNumberToObject(o, "inflight", (double)w->inflight) == NULL ||
        cJSON_AddNumberToObject(o, "now_ms", (double)w->now_ms) == NULL ||
        cJSON_AddBoolToObject(o, "alert", ctl_workers_alert(w)) == NULL)
        goto fail;
    return o;
fail:
    cJSON_Delete(o);
    return NULL;
}

static int print_workers(const ctl *c, const ctl_workers *w, bool json)
{
    cJSON *o;
    int rc;

    if (!json)
        return ctl_workers_print(c, w);
    o = ctl_workers_summary(c, w);
    rc = o != NULL ? out_json(stdout, o, true) : -1;
    if (rc != 0)
        fprintf(stderr, "%s: out of memory\n", c->prog);
    cJSON_Delete(o);
    return rc;
}

int cmd_workers(ctl *c, int argc, char **argv)
{
    ctl_workers w;
    bool json = false;
    int rc = ctl_parse_plain(c, argc, argv, "workers", &json);

    if (rc >= 0)
        return rc;
    rc = CTL_ERR;
    if (ctl_open(c) != 0)
        return CTL_ERR;
    if (ctl_workers_read(c, &w) == 0 && print_workers(c, &w, json) == 0)
        rc = ctl_workers_alert(&w) ? CTL_WORKERS_ALERT : CTL_OK;
    ctl_workers_free(&w);
    return rc;
}
