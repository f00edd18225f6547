/*
 * store_wait.c - [redis] wait_replicas (docs/design.md §11): a claim, an
 * outcome or a give-back counts only once that many replicas have it, so a
 * Sentinel failover cannot take back what a worker acted on.
 *
 * After each flush that sent script calls, WAIT n timeout goes on the same
 * connection.  The calls' per-job answers arrive before the WAIT's (one
 * connection, in order); they are kept here, with copies of their strings,
 * and handed to the events table when the WAIT answers.  When the
 * connection was re-established between the answers and the WAIT (the
 * WAIT then went to a node that may be a promoted replica), each answer
 * is delivered as UNSURE: the task sends the same claim or end again, which
 * the scripts make safe.  A WAIT that times out short of n replicas on an
 * unbroken connection delivers the answers as they are and logs it: the
 * master still has them, and stalling every job while a replica is away
 * would stop the service (say so in the note on durability).
 */
#include <stdlib.h>
#include <string.h>

#include "cancelq/log.h"
#include "store_int.h"

#define WAIT_PAUSE_MS 10000 /* after a short WAIT, batches go without one this long */

typedef struct stash {
    void *item;
    bool claim;
    cq_claim_result r;
    cq_write w;
    char *text; /* owned: the strings r (or the note) points into */
} stash;

struct cq_store_gate {
    cq_store_gate *next;
    cq_store *s;
    bool sent; /* its WAIT went (only the oldest gate's is out at a time) */
    stash *v;
    size_t n, cap;
    uint64_t reconnects; /* of main when the first answer came */
    bool answered;       /* an answer came */
};

/* A copy of the strings a, b, c, d in one allocation; out[i] point into it
 * (NULL stays NULL). */
static char *copy_strings(const char *in[4], const char *out[4])
{
    size_t len = 0, i;
    char *buf, *p;

    for (i = 0; i < 4; i++)
        len += in[i] != NULL ? strlen(in[i]) + 1 : 0;
    buf = malloc(len > 0 ? len : 1);
    if (buf == NULL)
        return NULL;
    for (p = buf, i = 0; i < 4; i++) {
        if (in[i] == NULL) {
            out[i] = NULL;
            continue;
        }
        out[i] = p;
        memcpy(p, in[i], strlen(in[i]) + 1);
        p += strlen(in[i]) + 1;
    }
    return buf;
}

static stash *push(cq_store_gate *g)
{
    if (g->n == g->cap) {
        size_t cap = g->cap > 0 ? g->cap * 2 : 64;
        stash *v = realloc(g->v, cap * sizeof(*v));

        if (v == NULL)
            return NULL;
        g->v = v;
        g->cap = cap;
    }
    memset(&g->v[g->n], 0, sizeof(g->v[0]));
    if (!g->answered) {
        g->answered = true;
        g->reconnects = cq_redis_reconnects(g->s->main);
    }
    return &g->v[g->n++];
}

bool cq_store_gate_claim(cq_store *s, void *item, const cq_claim_result *r)
{
    cq_store_gate *g = s->gates;
    const char *in[4], *out[4];
    stash *st;

    if (g == NULL || (st = push(g)) == NULL)
        return false; /* no WAIT pending (or no memory): answered at once */
    in[0] = r->other_id, in[1] = r->other_status, in[2] = r->other_finished_at, in[3] = r->error;
    st->item = item;
    st->claim = true;
    st->r = *r;
    st->text = copy_strings(in, out);
    if (st->text == NULL) {
        g->n--;
        return false;
    }
    st->r.other_id = out[0], st->r.other_status = out[1], st->r.other_finished_at = out[2];
    st->r.error = out[3];
    return true;
}

bool cq_store_gate_written(cq_store *s, void *item, cq_write w, const char *note)
{
    cq_store_gate *g = s->gates;
    const char *in[4] = {note, NULL, NULL, NULL}, *out[4];
    stash *st;

    if (g == NULL || (st = push(g)) == NULL)
        return false;
    st->item = item;
    st->w = w;
    st->text = copy_strings(in, out);
    if (st->text == NULL) {
        g->n--;
        return false;
    }
    st->r.error = out[0];
    return true;
}

/* Hand over what the gate kept, in order; unsure: as UNSURE. */
static void deliver(cq_store_gate *g, bool unsure, bool lost)
{
    cq_store *s = g->s;
    size_t i;

    for (i = 0; i < g->n; i++) {
        stash *st = &g->v[i];

        if (st->claim) {
            if (lost)
                st->r.verdict = CQ_CLAIM_LOST;
            else if (unsure)
                st->r.verdict = CQ_CLAIM_UNSURE;
            s->ev.claimed(st->item, &st->r);
        } else if (st->item != NULL) {
            s->ev.written(st->item,
                          lost     ? CQ_WRITE_LOST
                          : unsure ? CQ_WRITE_UNSURE
                                   : st->w,
                          st->r.error);
        }
        free(st->text);
    }
    free(g->v);
    free(g);
}

static int send_wait(cq_store_gate *g);

static void wait_reply(void *data, redisReply *reply)
{
    cq_store_gate *g = data;
    cq_store *s = g->s;
    bool unsure;

    s->gates = g->next; /* the oldest gate is always the one answered */
    if (s->gates == NULL)
        s->gates_tail = NULL;
    if (reply == NULL) {
        deliver(g, false, true);
        return;
    }
    unsure = g->answered && g->reconnects != cq_redis_reconnects(s->main);
    if (unsure) {
        s->wait_unsure++;
        cq_log(CQ_LOG_WARN, "redis_wait_unsure", "detail",
               "the connection was re-established before the replicas confirmed: the claims "
               "and ends of that batch are sent again",
               NULL);
    } else if (reply->type == REDIS_REPLY_INTEGER &&
               reply->integer < (long long)s->cfg->redis.wait_replicas) {
        s->wait_short++;
        s->wait_skip_until = uv_now(s->loop) + WAIT_PAUSE_MS;
        if (s->wait_short == 1 || s->wait_short % 100 == 0)
            cq_log(CQ_LOG_WARN, "redis_wait_short", "detail",
                   "fewer replicas than [redis] wait_replicas confirmed within wait_timeout; "
                   "going on without waiting for 10 s (a failover now could lose these writes)",
                   NULL);
    }
    deliver(g, unsure, false);
    /* the batches sent meanwhile: their WAIT goes now, after all of them */
    if (s->gates != NULL && !s->gates->sent && send_wait(s->gates) != 0) {
        g = s->gates;
        s->gates = NULL;
        s->gates_tail = NULL;
        deliver(g, false, false);
    }
}

/* WAIT for g's batches; while replicas are known to be missing a PING
 * only marks where its batches' answers end. */
static int send_wait(cq_store_gate *g)
{
    cq_store *s = g->s;
    char n[24], ms[24];
    const char *argv[3];
    int argc = 3;

    snprintf(n, sizeof(n), "%d", s->cfg->redis.wait_replicas);
    snprintf(ms, sizeof(ms), "%llu", (unsigned long long)s->cfg->redis.wait_timeout_ms);
    argv[0] = "WAIT", argv[1] = n, argv[2] = ms;
    if (uv_now(s->loop) < s->wait_skip_until)
        argv[0] = "PING", argc = 1;
    if (cq_store_command(s->main, wait_reply, g, argc, argv) != 0)
        return -1;
    g->sent = true;
    return 0;
}

int cq_store_gate_open(cq_store *s)
{
    cq_store_gate *g;

    if (s->gates == NULL && uv_now(s->loop) < s->wait_skip_until)
        return 0; /* replicas missing: not waiting for a while */
    if (s->gates_tail != NULL && !s->gates_tail->sent)
        return 0; /* the gate after the WAIT in flight takes this batch too */
    g = calloc(1, sizeof(*g));
    if (g == NULL)
        return -1;
    g->s = s;
    if (s->gates == NULL && send_wait(g) != 0) {
        free(g);
        return -1;
    }
    /* with a WAIT in flight (it blocks the connection), this gate's WAIT
     * goes when that one answers: one at a time */
    if (s->gates_tail != NULL)
        s->gates_tail->next = g;
    else
        s->gates = g;
    s->gates_tail = g;
    return 0;
}
