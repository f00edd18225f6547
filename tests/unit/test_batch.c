/*
 * test_batch.c - many jobs' script calls as one EVALSHA (src/batch.c).
 *
 * cq_redis_script is replaced by a fake that records the command and keeps
 * the reply callback, so a test can answer it with a hand-made reply.  The
 * script layouts themselves are tested against a real redis-server in
 * tests/integration/test_scripts.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cancelq/batch.h"

/* --- the fake connection ------------------------------------------------- */

#define FAKE_MAX_ARGS 4096
#define FAKE_ARG_MAX 64

static struct {
    int calls;
    int fail; /* the next call fails with -ENOMEM */
    char script[32];
    int nkeys, argc;
    char argv[FAKE_MAX_ARGS][FAKE_ARG_MAX];
    cq_redis_cb cb;
    void *data;
} fake;

int cq_redis_script(cq_redis *r, const char *script, cq_redis_cb cb, void *data, int nkeys,
                    int argc, const char **argv, const size_t *argvlen)
{
    int i;

    (void)r;
    if (fake.fail) {
        fake.fail = 0;
        return -ENOMEM;
    }
    fake.calls++;
    snprintf(fake.script, sizeof(fake.script), "%s", script);
    fake.nkeys = nkeys;
    fake.argc = argc;
    for (i = 0; i < argc && i < FAKE_MAX_ARGS; i++)
        snprintf(fake.argv[i], FAKE_ARG_MAX, "%.*s", (int)argvlen[i], argv[i]);
    fake.cb = cb;
    fake.data = data;
    return 0;
}

/* --- what the items' callbacks saw -------------------------------------- */

#define ITEMS 600

typedef struct seen {
    int calls;
    bool null;
    int type;
    long long integer;
} seen;

static seen got[ITEMS];

static int ctx_token; /* the ctx every callback must get */

static void item_cb(void *ctx, void *data, redisReply *reply)
{
    seen *s = data;

    assert_ptr_equal(ctx, &ctx_token);
    s->calls++;
    s->null = reply == NULL;
    s->type = reply != NULL ? reply->type : -1;
    s->integer = reply != NULL ? reply->integer : 0;
}

static int setup(void **state)
{
    static const char *const keys[] = {"{p}:inflight:w", "{p}:results"};
    static const char *const args[] = {"1000", "w"};
    static cq_batch b;

    memset(&fake, 0, sizeof(fake));
    memset(got, 0, sizeof(got));
    cq_batch_init(&b, (cq_redis *)&fake, "finish", item_cb, &ctx_token, 1, 2, keys, 2, args);
    *state = &b;
    return 0;
}

static int teardown(void **state)
{
    cq_batch_discard(*state);
    return 0;
}

static void add(cq_batch *b, int i, int nargs)
{
    char key[32], v[32];
    int j;

    snprintf(key, sizeof(key), "{p}:idem:k%d", i);
    cq_batch_begin(b, &got[i]);
    cq_batch_key(b, key, strlen(key));
    for (j = 0; j < nargs; j++) {
        snprintf(v, sizeof(v), "a%d.%d", i, j);
        cq_batch_arg_str(b, v);
    }
    assert_int_equal(cq_batch_end(b), 0);
}

/* An array reply with one integer element per item. */
static redisReply *reply_array(size_t n)
{
    redisReply *r = calloc(1, sizeof(*r));
    size_t i;

    r->type = REDIS_REPLY_ARRAY;
    r->elements = n;
    r->element = calloc(n, sizeof(*r->element));
    for (i = 0; i < n; i++) {
        r->element[i] = calloc(1, sizeof(**r->element));
        r->element[i]->type = REDIS_REPLY_INTEGER;
        r->element[i]->integer = (long long)i + 100;
    }
    return r;
}

static void reply_free(redisReply *r)
{
    size_t i;

    for (i = 0; i < r->elements; i++)
        free(r->element[i]);
    free(r->element);
    free(r);
}

/* --- tests --------------------------------------------------------------- */

/* Fixed keys, items' keys, fixed args, then each item's count and args. */
static void test_layout(void **state)
{
    cq_batch *b = *state;
    static const char *const want[] = {
        "{p}:inflight:w", "{p}:results", "{p}:idem:k0", "{p}:idem:k1",
        "{p}:idem:k2",    "1000",        "w",           "2",
        "a0.0",           "a0.1",        "0",           "3",
        "a2.0",           "a2.1",        "a2.2"};
    size_t i;

    add(b, 0, 2);
    add(b, 1, 0); /* an item without args still has its count */
    add(b, 2, 3);
    assert_int_equal(cq_batch_pending(b), 3);
    assert_int_equal(fake.calls, 0); /* nothing goes before the flush */
    assert_int_equal(cq_batch_flush(b), 0);
    assert_int_equal(fake.calls, 1);
    assert_string_equal(fake.script, "finish");
    assert_int_equal(fake.nkeys, 5);
    assert_int_equal(fake.argc, (int)(sizeof(want) / sizeof(want[0])));
    for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        assert_string_equal(fake.argv[i], want[i]);
    assert_int_equal(cq_batch_pending(b), 0);
    assert_int_equal(cq_batch_flush(b), 0); /* empty: no command */
    assert_int_equal(fake.calls, 1);
    fake.cb(fake.data, NULL);
}

/* Element i of the reply goes to item i, exactly once. */
static void test_reply_per_item(void **state)
{
    cq_batch *b = *state;
    redisReply *r = reply_array(3);
    int i;

    for (i = 0; i < 3; i++)
        add(b, i, 1);
    assert_int_equal(cq_batch_flush(b), 0);
    fake.cb(fake.data, r);
    for (i = 0; i < 3; i++) {
        assert_int_equal(got[i].calls, 1);
        assert_int_equal(got[i].type, REDIS_REPLY_INTEGER);
        assert_int_equal(got[i].integer, 100 + i);
    }
    reply_free(r);
}

/* A script error (or an array of the wrong size) reaches every item. */
static void test_whole_error_reaches_every_item(void **state)
{
    cq_batch *b = *state;
    redisReply err = {.type = REDIS_REPLY_ERROR, .str = "ERR boom", .len = 8};
    redisReply *r = reply_array(2);
    int i;

    for (i = 0; i < 3; i++)
        add(b, i, 1);
    assert_int_equal(cq_batch_flush(b), 0);
    fake.cb(fake.data, &err);
    for (i = 0; i < 3; i++) {
        assert_int_equal(got[i].calls, 1);
        assert_int_equal(got[i].type, REDIS_REPLY_ERROR);
    }
    for (i = 3; i < 6; i++)
        add(b, i, 1);
    assert_int_equal(cq_batch_flush(b), 0);
    fake.cb(fake.data, r); /* 2 elements for 3 items */
    for (i = 3; i < 6; i++) {
        assert_int_equal(got[i].calls, 1);
        assert_int_equal(got[i].type, REDIS_REPLY_ARRAY);
    }
    reply_free(r);
}

/* A lost connection answers every item with NULL. */
static void test_null_reply(void **state)
{
    cq_batch *b = *state;
    int i;

    for (i = 0; i < 4; i++)
        add(b, i, 2);
    assert_int_equal(cq_batch_flush(b), 0);
    fake.cb(fake.data, NULL);
    for (i = 0; i < 4; i++) {
        assert_int_equal(got[i].calls, 1);
        assert_true(got[i].null);
    }
}

/* An item with the wrong number of keys is refused and leaves no trace. */
static void test_wrong_key_count_rolls_back(void **state)
{
    cq_batch *b = *state;

    add(b, 0, 1);
    cq_batch_begin(b, &got[1]);
    cq_batch_arg_str(b, "orphan");
    assert_int_equal(cq_batch_end(b), -EINVAL);
    cq_batch_begin(b, &got[2]);
    cq_batch_key(b, "k", 1);
    cq_batch_key(b, "k2", 2);
    assert_int_equal(cq_batch_end(b), -EINVAL);
    assert_int_equal(cq_batch_pending(b), 1);
    assert_int_equal(cq_batch_flush(b), 0);
    assert_int_equal(fake.nkeys, 3);
    assert_int_equal(fake.argc, 3 + 2 + 2);
    assert_string_equal(fake.argv[5], "1");
    assert_string_equal(fake.argv[6], "a0.0");
    fake.cb(fake.data, NULL);
    assert_int_equal(got[0].calls, 1);
    assert_int_equal(got[1].calls, 0);
    assert_int_equal(got[2].calls, 0);
}

/* A full batch goes out by itself before the next item is added. */
static void test_full_batch_flushes(void **state)
{
    cq_batch *b = *state;
    int i;

    for (i = 0; i < CQ_BATCH_MAX_ITEMS; i++)
        add(b, i, 1);
    assert_int_equal(fake.calls, 0);
    add(b, CQ_BATCH_MAX_ITEMS, 1);
    assert_int_equal(fake.calls, 1);
    assert_int_equal(fake.nkeys, 2 + CQ_BATCH_MAX_ITEMS);
    assert_int_equal(cq_batch_pending(b), 1);
    fake.cb(fake.data, NULL);
    for (i = 0; i < CQ_BATCH_MAX_ITEMS; i++)
        assert_int_equal(got[i].calls, 1);
    assert_int_equal(got[CQ_BATCH_MAX_ITEMS].calls, 0);
}

/* A failed send keeps the items; discard answers them with NULL. */
static void test_failed_flush_keeps_items(void **state)
{
    cq_batch *b = *state;

    add(b, 0, 1);
    add(b, 1, 1);
    fake.fail = 1;
    assert_int_equal(cq_batch_flush(b), -ENOMEM);
    assert_int_equal(cq_batch_pending(b), 2);
    assert_int_equal(got[0].calls, 0);
    cq_batch_discard(b);
    assert_int_equal(got[0].calls, 1);
    assert_true(got[0].null);
    assert_int_equal(got[1].calls, 1);
    assert_int_equal(cq_batch_pending(b), 0);
}

/* Callbacks may add to the batch they were answered from. */
static cq_batch *readd_batch;

static void readd_cb(void *ctx, void *data, redisReply *reply)
{
    seen *s = data;

    assert_ptr_equal(ctx, &ctx_token);
    s->calls++;
    s->null = reply == NULL;
    if (s == &got[0]) {
        cq_batch_begin(readd_batch, &got[1]);
        cq_batch_key(readd_batch, "k", 1);
        assert_int_equal(cq_batch_end(readd_batch), 0);
    }
}

static void test_callback_adds_again(void **state)
{
    cq_batch *b = *state;

    readd_batch = b;
    b->cb = readd_cb;
    cq_batch_begin(b, &got[0]);
    cq_batch_key(b, "k", 1);
    assert_int_equal(cq_batch_end(b), 0);
    assert_int_equal(cq_batch_flush(b), 0);
    fake.cb(fake.data, NULL);
    assert_int_equal(cq_batch_pending(b), 1);
    cq_batch_discard(b); /* got[1] answered from the discard */
    assert_int_equal(got[0].calls, 1);
    assert_int_equal(got[1].calls, 1);
}

/* Large args are copied whole; the byte bound flushes early. */
static void test_byte_bound(void **state)
{
    cq_batch *b = *state;
    size_t big = CQ_BATCH_MAX_BYTES / 2 + 1;
    char *s = malloc(big);

    memset(s, 'x', big);
    cq_batch_begin(b, &got[0]);
    cq_batch_key(b, "k", 1);
    cq_batch_arg(b, s, big);
    assert_int_equal(cq_batch_end(b), 0);
    cq_batch_begin(b, &got[1]);
    cq_batch_key(b, "k", 1);
    cq_batch_arg(b, s, big);
    assert_int_equal(cq_batch_end(b), 0);
    assert_int_equal(fake.calls, 0); /* 1 MiB not reached after the first */
    cq_batch_begin(b, &got[2]);
    assert_int_equal(fake.calls, 1); /* past it: the first two went */
    cq_batch_key(b, "k", 1);
    assert_int_equal(cq_batch_end(b), 0);
    fake.cb(fake.data, NULL);
    assert_int_equal(got[0].calls, 1);
    assert_int_equal(got[1].calls, 1);
    assert_int_equal(got[2].calls, 0);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_layout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reply_per_item, setup, teardown),
        cmocka_unit_test_setup_teardown(test_whole_error_reaches_every_item, setup, teardown),
        cmocka_unit_test_setup_teardown(test_null_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_key_count_rolls_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_batch_flushes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_flush_keeps_items, setup, teardown),
        cmocka_unit_test_setup_teardown(test_callback_adds_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_byte_bound, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
