/*
 * batch.h - many jobs' calls of one Redis script, sent as one EVALSHA.
 *
 * Per job the daemon runs a claim script before calling the provider and a
 * finish script at the end.  Sent one by one, each costs a command, a reply
 * and a script invocation in Redis; Redis' CPU per job is the first limit
 * on a small machine (docs/bench.md).  A batch collects the calls made
 * during one turn of the event loop and cq_batch_flush sends them together.
 *
 * The command a flush sends:
 *
 *   EVALSHA <script> <numkeys>  <fixed keys> <key of item 1> ... <key of item n>
 *                               <fixed args> <n1> <args of item 1> ... <nn> <args of item n>
 *
 * Each item has exactly `item_keys` keys and any number of args, preceded
 * by their count, so a script walks ARGV item by item.  The script answers
 * with an array of one element per item, in order; each element (or, when
 * the script failed as a whole, the error reply; or NULL when the
 * connection is freed first) goes to the batch's callback together with
 * that item's data pointer and the batch's ctx, exactly once per item.
 *
 * Ownership: the batch copies every key and arg; the data pointers are the
 * caller's.  Memory is bounded: a batch is flushed when it reaches
 * CQ_BATCH_MAX_ITEMS items or CQ_BATCH_MAX_BYTES bytes of keys and args.
 */
#ifndef CANCELQ_BATCH_H
#define CANCELQ_BATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "cancelq/redis.h"

/* Items per EVALSHA at most: one script run in Redis handles this many
 * jobs, ~1 ms of Redis time for finishes, so other clients never wait long. */
#define CQ_BATCH_MAX_ITEMS 256
/* Bytes of keys and args per EVALSHA at most (a dead letter carries the
 * whole job, up to 64 KiB): bounds the command buffer in both processes. */
#define CQ_BATCH_MAX_BYTES ((size_t)1 << 20)
/* Fixed keys and args per batch at most. */
#define CQ_BATCH_MAX_FIXED 8

typedef struct cq_batch_fill cq_batch_fill;

/* Per item: the batch's ctx, the item's data pointer, its reply element
 * (or the whole error reply, or NULL). */
typedef void (*cq_batch_cb)(void *ctx, void *item, redisReply *reply);

typedef struct cq_batch {
    cq_redis *r;        /* where flushes go (not owned) */
    const char *script; /* embedded script name, e.g. "finish" */
    cq_batch_cb cb;     /* per item */
    void *ctx;          /* first argument of cb */
    int item_keys;      /* keys per item */
    int nfixed_keys, nfixed_args;
    const char *fixed_keys[CQ_BATCH_MAX_FIXED]; /* borrowed: must outlive the batch */
    const char *fixed_args[CQ_BATCH_MAX_FIXED];
    cq_batch_fill *fill; /* buffers, kept between flushes; NULL until first use */
    bool open;           /* between cq_batch_begin and cq_batch_end */
    bool failed;         /* an add to the open item failed */
} cq_batch;

/* Set up an empty batch.  fixed_keys / fixed_args are borrowed (strings that
 * live as long as the batch, e.g. key names in the worker). */
void cq_batch_init(cq_batch *b, cq_redis *r, const char *script, cq_batch_cb cb, void *ctx,
                   int item_keys, int nfixed_keys, const char *const *fixed_keys, int nfixed_args,
                   const char *const *fixed_args);

/* Start an item whose reply goes to data.  Flushes first when the batch is
 * full (if that fails, the batch grows past its limit until the owner's
 * next flush).  Then add exactly item_keys keys and any number of args, and end it. */
void cq_batch_begin(cq_batch *b, void *data);
void cq_batch_key(cq_batch *b, const char *s, size_t len);
void cq_batch_arg(cq_batch *b, const char *s, size_t len);
void cq_batch_arg_str(cq_batch *b, const char *s); /* NULL is "" */

/* End the open item: 0, or -ENOMEM / -EINVAL (wrong number of keys), in
 * which case the item is not in the batch and its callback never fires. */
int cq_batch_end(cq_batch *b);

/* Items waiting for the next flush. */
size_t cq_batch_pending(const cq_batch *b);

/* Send what was collected as one EVALSHA.  0 (also when empty), or -ENOMEM:
 * then the items stay collected (cq_batch_discard answers them). */
int cq_batch_flush(cq_batch *b);

/* Drop what was collected: every item's callback fires with NULL.  Also
 * frees the batch's memory; the batch may be used again afterwards. */
void cq_batch_discard(cq_batch *b);

#endif
