/*
 * batch.c - many jobs' calls of one Redis script as one EVALSHA (batch.h).
 *
 * A fill keeps the bytes of every key and arg in one buffer and (offset,
 * length) spans into it, so the buffer may grow while items are added; the
 * argv handed to cq_redis_script is built from the spans at flush time.
 * cq_redis_script formats (copies) the command at once, so the buffers are
 * reused by the next batch; only the items' data pointers travel with the
 * command, in a `sent` record that the reply callback frees.
 */
#include "cancelq/batch.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Buffers larger than this after a flush are released rather than kept:
 * a burst of large dead letters does not pin a megabyte for good. */
#define BATCH_KEEP_BYTES ((size_t)16 * 1024)
/* Longest item arg count, as text: "4294967295" fits. */
#define COUNT_TEXT_MAX 24

typedef struct span {
    size_t off, len;
} span;

struct cq_batch_fill {
    char *buf; /* keys' and args' bytes */
    size_t len, cap;
    span *keys; /* items' keys, in order */
    size_t nkeys, kcap;
    span *args; /* per item: its count, then its args */
    size_t nargs, acap;
    void **items; /* items' data, in order */
    size_t nitems, icap;
    const char **argv; /* built by build_argv */
    size_t vcap;
    size_t *argvlen;
    size_t lcap;
    /* the open item, to roll back to */
    size_t mark_len, mark_keys, mark_args, count_at;
};

/* The record that waits for the reply: one callback per item. */
typedef struct sent {
    cq_batch_cb cb;
    void *ctx;
    size_t n;
    void *items[];
} sent;

void cq_batch_init(cq_batch *b, cq_redis *r, const char *script, cq_batch_cb cb, void *ctx,
                   int item_keys, int nfixed_keys, const char *const *fixed_keys, int nfixed_args,
                   const char *const *fixed_args)
{
    int i;

    memset(b, 0, sizeof(*b));
    b->r = r;
    b->script = script;
    b->cb = cb;
    b->ctx = ctx;
    b->item_keys = item_keys;
    b->nfixed_keys = nfixed_keys < CQ_BATCH_MAX_FIXED ? nfixed_keys : CQ_BATCH_MAX_FIXED;
    b->nfixed_args = nfixed_args < CQ_BATCH_MAX_FIXED ? nfixed_args : CQ_BATCH_MAX_FIXED;
    for (i = 0; i < b->nfixed_keys; i++)
        b->fixed_keys[i] = fixed_keys[i];
    for (i = 0; i < b->nfixed_args; i++)
        b->fixed_args[i] = fixed_args[i];
}

/* Make room for `more` elements of `size` bytes in *arr (capacity *cap,
 * used n).  0 or -ENOMEM (the array unchanged). */
static int grow(void **arr, size_t *cap, size_t n, size_t more, size_t size)
{
    size_t want = *cap > 0 ? *cap : 16;
    void *p;

    if (more > SIZE_MAX / size - n)
        return -ENOMEM;
    if (n + more <= *cap)
        return 0;
    while (want < n + more)
        want = want > SIZE_MAX / 2 / size ? n + more : want * 2;
    p = realloc(*arr, want * size);
    if (p == NULL)
        return -ENOMEM;
    *arr = p;
    *cap = want;
    return 0;
}

static cq_batch_fill *fill_get(cq_batch *b)
{
    if (b->fill == NULL)
        b->fill = calloc(1, sizeof(*b->fill));
    return b->fill;
}

static void fill_free(cq_batch_fill *f)
{
    if (f == NULL)
        return;
    free(f->buf);
    free(f->keys);
    free(f->args);
    free(f->items);
    free(f->argv);
    free(f->argvlen);
    free(f);
}

/* Empty f for the next batch; release it when it grew large. */
static void fill_reset(cq_batch *b)
{
    cq_batch_fill *f = b->fill;

    if (f == NULL)
        return;
    if (f->cap > BATCH_KEEP_BYTES) {
        fill_free(f);
        b->fill = NULL;
        return;
    }
    f->len = f->nkeys = f->nargs = f->nitems = 0;
}

/* Copy s into f->buf; its span in *out.  0 or -ENOMEM. */
static int put_bytes(cq_batch_fill *f, const char *s, size_t len, span *out)
{
    if (grow((void **)&f->buf, &f->cap, f->len, len + 1, 1) != 0)
        return -ENOMEM;
    if (len > 0)
        memcpy(f->buf + f->len, s, len);
    f->buf[f->len + len] = '\0'; /* not sent: eases debugging */
    out->off = f->len;
    out->len = len;
    f->len += len + 1;
    return 0;
}

static bool batch_full(const cq_batch_fill *f)
{
    return f->nitems >= CQ_BATCH_MAX_ITEMS || f->len >= CQ_BATCH_MAX_BYTES;
}

void cq_batch_begin(cq_batch *b, void *data)
{
    cq_batch_fill *f = b->fill;

    /* on failure the items stay: the batch grows past its limit until the
     * owner's flush, which reports the failure */
    if (f != NULL && f->nitems > 0 && batch_full(f))
        (void)cq_batch_flush(b);
    b->open = true;
    b->failed = false;
    f = fill_get(b);
    if (f == NULL || grow((void **)&f->items, &f->icap, f->nitems, 1, sizeof(void *)) != 0 ||
        grow((void **)&f->args, &f->acap, f->nargs, 1, sizeof(span)) != 0) {
        b->failed = true;
        return;
    }
    f->mark_len = f->len;
    f->mark_keys = f->nkeys;
    f->mark_args = f->nargs;
    /* the item's arg count, filled in by cq_batch_end */
    f->count_at = f->nargs;
    f->args[f->nargs].off = 0;
    f->args[f->nargs].len = 0;
    f->nargs++;
    f->items[f->nitems] = data; /* counted by cq_batch_end */
}

/* Append s as one more span of *arr (n used, cap allocated) of the open
 * item; a failure marks the item failed (cq_batch_end rolls it back). */
static void add_span(cq_batch *b, span **arr, size_t *cap, size_t *n, const char *s, size_t len)
{
    cq_batch_fill *f = b->fill;

    if (!b->open || b->failed || f == NULL)
        return;
    if (grow((void **)arr, cap, *n, 1, sizeof(span)) != 0 ||
        put_bytes(f, s, len, &(*arr)[*n]) != 0) {
        b->failed = true;
        return;
    }
    (*n)++;
}

void cq_batch_key(cq_batch *b, const char *s, size_t len)
{
    cq_batch_fill *f = b->fill;

    if (f != NULL)
        add_span(b, &f->keys, &f->kcap, &f->nkeys, s, len);
}

void cq_batch_arg(cq_batch *b, const char *s, size_t len)
{
    cq_batch_fill *f = b->fill;

    if (f != NULL)
        add_span(b, &f->args, &f->acap, &f->nargs, s, len);
}

void cq_batch_arg_str(cq_batch *b, const char *s)
{
    if (s == NULL)
        s = "";
    cq_batch_arg(b, s, strlen(s));
}

int cq_batch_end(cq_batch *b)
{
    cq_batch_fill *f = b->fill;
    char count[COUNT_TEXT_MAX];
    int rc = 0, n;

    if (!b->open)
        return -EINVAL;
    b->open = false;
    if (b->failed || f == NULL)
        rc = -ENOMEM;
    else if (f->nkeys - f->mark_keys != (size_t)b->item_keys)
        rc = -EINVAL;
    if (rc == 0) {
        n = snprintf(count, sizeof(count), "%zu", f->nargs - f->count_at - 1);
        rc = put_bytes(f, count, (size_t)n, &f->args[f->count_at]);
    }
    if (rc != 0) {
        if (f != NULL) { /* roll the item back */
            f->len = f->mark_len;
            f->nkeys = f->mark_keys;
            f->nargs = f->mark_args;
        }
        return rc;
    }
    f->nitems++;
    return 0;
}

size_t cq_batch_pending(const cq_batch *b)
{
    return b->fill != NULL ? b->fill->nitems : 0;
}

/* f->argv / f->argvlen: fixed keys, items' keys, fixed args, items' args.
 * 0 or -ENOMEM. */
static int build_argv(cq_batch *b, cq_batch_fill *f, size_t *argc)
{
    size_t n = (size_t)b->nfixed_keys + f->nkeys + (size_t)b->nfixed_args + f->nargs, i, k = 0;

    if (grow((void **)&f->argv, &f->vcap, 0, n, sizeof(char *)) != 0 ||
        grow((void **)&f->argvlen, &f->lcap, 0, n, sizeof(size_t)) != 0)
        return -ENOMEM;
    for (i = 0; i < (size_t)b->nfixed_keys; i++, k++) {
        f->argv[k] = b->fixed_keys[i];
        f->argvlen[k] = strlen(b->fixed_keys[i]);
    }
    for (i = 0; i < f->nkeys; i++, k++) {
        f->argv[k] = f->buf + f->keys[i].off;
        f->argvlen[k] = f->keys[i].len;
    }
    for (i = 0; i < (size_t)b->nfixed_args; i++, k++) {
        f->argv[k] = b->fixed_args[i];
        f->argvlen[k] = strlen(b->fixed_args[i]);
    }
    for (i = 0; i < f->nargs; i++, k++) {
        f->argv[k] = f->buf + f->args[i].off;
        f->argvlen[k] = f->args[i].len;
    }
    *argc = n;
    return 0;
}

/* The reply of one flush: an array with an element per item, an error
 * (the script failed as a whole: every item learns it), or NULL. */
static void sent_reply(void *data, redisReply *reply)
{
    sent *s = data;
    bool per_item = reply != NULL && reply->type == REDIS_REPLY_ARRAY && reply->elements == s->n;
    size_t i;

    for (i = 0; i < s->n; i++)
        s->cb(s->ctx, s->items[i], reply == NULL ? NULL : per_item ? reply->element[i] : reply);
    free(s);
}

/* Answer every collected item with NULL and empty the batch. */
static void answer_all_null(cq_batch *b)
{
    cq_batch_fill *f = b->fill;
    size_t i, n;
    void **items;

    if (f == NULL || f->nitems == 0)
        return;
    /* callbacks may add to this batch again: take the items out first */
    n = f->nitems;
    items = malloc(n * sizeof(void *));
    if (items == NULL) {
        /* no memory even for that: answer in place, new adds go after n */
        for (i = 0; i < n; i++)
            b->cb(b->ctx, f->items[i], NULL);
        fill_reset(b);
        return;
    }
    memcpy(items, f->items, n * sizeof(void *));
    fill_reset(b);
    for (i = 0; i < n; i++)
        b->cb(b->ctx, items[i], NULL);
    free(items);
}

int cq_batch_flush(cq_batch *b)
{
    cq_batch_fill *f = b->fill;
    size_t argc = 0;
    sent *s;

    if (f == NULL || f->nitems == 0)
        return 0;
    if (b->r == NULL || f->nitems > INT_MAX || build_argv(b, f, &argc) != 0 || argc > INT_MAX)
        return -ENOMEM;
    s = malloc(sizeof(*s) + f->nitems * sizeof(void *));
    if (s == NULL)
        return -ENOMEM;
    s->cb = b->cb;
    s->ctx = b->ctx;
    s->n = f->nitems;
    memcpy(s->items, f->items, f->nitems * sizeof(void *));
    if (cq_redis_script(b->r, b->script, sent_reply, s, b->nfixed_keys + (int)f->nkeys, (int)argc,
                        f->argv, f->argvlen) != 0) {
        free(s);
        return -ENOMEM;
    }
    fill_reset(b);
    return 0;
}

void cq_batch_discard(cq_batch *b)
{
    answer_all_null(b);
    fill_free(b->fill);
    b->fill = NULL;
    b->open = false;
}
