/*
 * test_http_wipe.c - an answer body is wiped whenever its buffer moves
 * (http_answer.c): a token endpoint's answer holds tokens, and realloc
 * would leave the old block in the heap unwiped.
 *
 * http_answer.c is compiled into this test with malloc, realloc and free
 * renamed to spies (the STYLE.md way of reaching a module's insides): a
 * buffer handed to free or realloc must no longer hold the secret.
 */
#include <malloc.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* unused: whichever of them the module does not call */
static void *spy_malloc(size_t n) __attribute__((unused));
static void *spy_realloc(void *p, size_t n) __attribute__((unused));
static void spy_free(void *p) __attribute__((unused));

#define malloc spy_malloc
#define realloc spy_realloc
#define free spy_free
#include "../../src/http_answer.c"
#undef malloc
#undef realloc
#undef free

static const char secret[] = "tok-5b1e0c2d9a77-SECRET";
static int leaks; /* buffers let go of while still holding the secret */

static bool holds_secret(void *p)
{
    return p != NULL && memmem(p, malloc_usable_size(p), secret, strlen(secret)) != NULL;
}

static void *spy_malloc(size_t n)
{
    return malloc(n);
}

static void *spy_realloc(void *p, size_t n)
{
    /* realloc may free p as it is: it must not hold the secret */
    if (holds_secret(p))
        leaks++;
    return realloc(p, n);
}

static void spy_free(void *p)
{
    if (holds_secret(p))
        leaks++;
    free(p);
}

static void feed(http_req *r, const char *s, size_t n)
{
    assert_int_equal(cq_http_on_write((char *)s, 1, n, r), n);
}

/* A token answer that arrives in pieces: the body grows from 1 KiB to
 * 8 KiB, moving three times; every old buffer is wiped before it goes. */
static void test_growing_body_is_wiped_when_it_moves(void **state)
{
    http_req *r = calloc(1, sizeof(*r));
    char pad[1000];
    int i;

    (void)state;
    assert_non_null(r);
    r->max_response = 65536;
    leaks = 0;
    feed(r, "{\"access_token\":\"", 17);
    feed(r, secret, strlen(secret));
    feed(r, "\",\"pad\":\"", 9);
    memset(pad, 'x', sizeof(pad));
    for (i = 0; i < 6; i++)
        feed(r, pad, sizeof(pad));
    assert_true(r->body_cap >= 8192);
    assert_int_equal(leaks, 0);
    /* the answer is whole */
    assert_non_null(memmem(r->body, r->body_len, secret, strlen(secret)));
    assert_int_equal(r->body_len, 17 + strlen(secret) + 9 + 6 * sizeof(pad));
    assert_int_equal(r->body[r->body_len], '\0');
    explicit_bzero(r->body, r->body_cap);
    free(r->body);
    free(r);
}

/* The cap still holds: a body never grows past max_response + 1. */
static void test_cap_still_holds(void **state)
{
    http_req *r = calloc(1, sizeof(*r));
    char pad[1500];

    (void)state;
    assert_non_null(r);
    r->max_response = 2000;
    memset(pad, 'y', sizeof(pad));
    feed(r, pad, sizeof(pad));
    assert_int_equal(cq_http_on_write(pad, 1, sizeof(pad), r), 0);
    assert_true(r->too_large);
    assert_true(r->body_cap <= r->max_response + 1);
    free(r->body);
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_growing_body_is_wiped_when_it_moves),
        cmocka_unit_test(test_cap_still_holds),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
