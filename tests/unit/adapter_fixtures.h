/*
 * adapter_fixtures.h - what the adapter tests share: an HTTP answer as the
 * engine would hand it to a classifier.
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

#endif
