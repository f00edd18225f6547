/*
 * store_int.h - what the two halves of the store share: store.c (the
 * connections, the batched per-job scripts) and store_live.c (the
 * worker's own calls: fetching, heartbeat, reclaim, promotion).  Not
 * installed.
 */
#ifndef CANCELQ_STORE_INT_H
#define CANCELQ_STORE_INT_H

#include "cancelq/batch.h"
#include "cancelq/redis.h"
#include "cancelq/store.h"

#define NUM_TEXT 24 /* a 64-bit number as text, with its NUL */

typedef struct cq_store_gate cq_store_gate;

struct cq_store {
    uv_loop_t *loop;
    const cq_config *cfg;
    const char *worker;
    const char *holder; /* this process in claims: "<worker>/<incarnation>" */
    cq_keys k;
    cq_store_events ev;
    char maxlen[NUM_TEXT];   /* results MAXLEN ~ */
    char idem_ttl[NUM_TEXT]; /* idempotency record TTL, ms */
    cq_redis *main;
    cq_redis *block;
    cq_batch claims;   /* claim.lua */
    cq_batch finishes; /* finish.lua */
    cq_batch releases; /* release.lua */
    uv_prepare_t flush;
    bool flush_on;
    cq_store_gate *gates; /* WAITs on their way, oldest first (wait_replicas) */
    cq_store_gate *gates_tail;
    uint64_t wait_short;      /* WAITs that timed out short of wait_replicas */
    uint64_t wait_unsure;     /* batches sent again after a reconnect */
    uint64_t wait_skip_until; /* loop time: no WAIT before it (replicas missing) */
};

/* EVALSHA of an embedded script / a plain command, with NUL-terminated
 * arguments (at most 16).  0 or -ENOMEM. */
int cq_store_script(cq_store *s, const char *name, cq_redis_cb cb, void *data, int nkeys, int argc,
                    const char **argv);
int cq_store_command(cq_redis *r, cq_redis_cb cb, void *data, int argc, const char **argv);

/* Log an error or unexpected reply of a script. */
void cq_store_log_error(const char *script, const redisReply *reply);

/* A reply read as one number and handed to a cq_num_cb (-1 for an error
 * or unexpected reply, -2 when the store is freed first).  read NULL
 * reads an integer reply. */
typedef struct cq_store_num {
    cq_num_cb cb;
    void *data;
    const char *what;
    long long (*read)(const redisReply *r);
} cq_store_num;

cq_store_num *cq_store_num_new(cq_num_cb cb, void *data, const char *what,
                               long long (*read)(const redisReply *r));

/* Send q's script / command; q is freed on failure.  0 or -ENOMEM. */
int cq_store_num_script(cq_store *s, const char *name, cq_store_num *q, int nkeys, int argc,
                        const char **argv);
int cq_store_num_command(cq_store *s, cq_store_num *q, int argc, const char **argv);

/* store_wait.c: after a flush, WAIT for [redis] wait_replicas replicas;
 * until it answers, the batches' per-job answers are kept (gate_claim /
 * gate_written return true when they kept one).  -1 when WAIT could not be
 * queued (then nothing is kept). */
int cq_store_gate_open(cq_store *s);
bool cq_store_gate_claim(cq_store *s, void *item, const cq_claim_result *r);
bool cq_store_gate_written(cq_store *s, void *item, cq_write w, const char *note);

#endif
