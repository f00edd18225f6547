/*
 * adapter_fixtures.h - what the adapter tests share: an HTTP answer as the
 * engine would hand it to a classifier, and the verdict check.
 */
#ifndef CANCELQ_TEST_ADAPTER_FIXTURES_H
#define CANCELQ_TEST_ADAPTER_FIXTURES_H

#include <string.h>

#include "cancelq/adapter.h"

/* An answer with status and body (NULL: empty), received at a fixed time. */
static inline cq_response http(long status, const char *body)
{
    cq_response r;

    memset(&r, 0, sizeof(r));
    r.status = status;
    r.transport = CQ_TR_OK;
    r.body = body != NULL ? body : "";
    r.body_len = strlen(r.body);
    r.now_ms = 1700000000000;
    return r;
}

/* The verdict's kind and error code are what a test asserts (cmocka must
 * be included first). */
#define assert_verdict(v, k, e)                                                                    \
    do {                                                                                           \
        cq_verdict v_ = (v);                                                                       \
        assert_string_equal(cq_verdict_name(v_.kind), cq_verdict_name(k));                         \
        assert_string_equal(v_.error, (e));                                                        \
    } while (0)

#endif
