/*
 * adapter.h - provider adapters: pure request building and answer
 * classification (docs/design.md §4).  No I/O here: the HTTP engine sends
 * what an adapter builds and hands the answer back for classification.
 *
 * Adding a provider means one new src/adapter_NAME.c defining a cq_adapter
 * and one line in the table in src/adapter.c.
 *
 * The request an adapter builds and the answer it classifies are
 * cq_request and cq_response (request.h).  cq_response is borrowed by
 * classifiers.
 */
#ifndef CANCELQ_ADAPTER_H
#define CANCELQ_ADAPTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "cancelq/config.h"
#include "cancelq/err.h"
#include "cancelq/request.h"

#define CQ_TARGET_MAX 160 /* the target part of a derived idempotency key */

typedef enum cq_verdict_kind {
    CQ_V_SUCCEEDED = 0, /* the documented success */
    CQ_V_ALREADY_DONE,  /* the provider says it is already cancelled */
    CQ_V_RETRY,         /* transient: try again later */
    CQ_V_FAILED,        /* permanent */
    CQ_V_CHECK,         /* ambiguous: run the status check; when it does not
                           show the work done, end as FAILED with this
                           verdict's error and message */
    CQ_V_AUTH,          /* 401: renew the token once and retry at once; the
                           worker turns a second 401 into FAILED */
    CQ_V_NOT_DONE,      /* status check only: the work is not done (yet) */
} cq_verdict_kind;

typedef struct cq_verdict {
    cq_verdict_kind kind;
    bool has_retry_after;
    uint64_t retry_after_ms; /* uncapped; the worker caps it */
    char error[32];          /* short code: "http_404", "timeout", "service_not_found" */
    char message[256];       /* human text, from the provider where useful */
} cq_verdict;

typedef struct cq_action {
    const char *name;
    /* Check the params strictly (field-naming errors, "params.x: ...") and
     * write the idempotency target ("username", "rid/sid", "serviceid"). */
    int (*validate)(const cJSON *params, char *target, size_t target_size, cq_err *err);
    /* Build the cancellation request from validated params. 0 or -errno. */
    int (*build)(const cq_provider_conf *pc, const cJSON *params, cq_request *req, cq_err *err);
    /* Classify the answer to build()'s request. */
    void (*classify)(const cq_provider_conf *pc, const cJSON *params, const cq_response *resp,
                     cq_verdict *v);
    /* Status lookup (NULL when the provider has none): build the GET ... */
    int (*build_check)(const cq_provider_conf *pc, const cJSON *params, cq_request *req,
                       cq_err *err);
    /* ... and classify its answer: ALREADY_DONE, NOT_DONE, RETRY or AUTH. */
    void (*classify_check)(const cq_provider_conf *pc, const cJSON *params, const cq_response *resp,
                           cq_verdict *v);
} cq_action;

typedef struct cq_adapter {
    const char *name;         /* "intronis", "activeplatform", "keliweb" */
    const char *auth_prefix;  /* "Authorization: OAuth ", "X-Api-Token: ", ... */
    bool supports_xml;        /* format = xml allowed */
    cq_cred_kind oauth_grant; /* the OAuth2 grant the vendor uses, or CQ_CRED_NONE */
    const cq_action *actions;
    size_t nactions;
} cq_adapter;

/* Look up an adapter by name, or NULL. */
const cq_adapter *cq_adapter_find(const char *name);

/* Look up an action of an adapter by name, or NULL. */
const cq_action *cq_adapter_action(const cq_adapter *a, const char *name);

/* All adapters, for listings; *n is set to the count. */
const cq_adapter *const *cq_adapters(size_t *n);

/* Helpers for adapters -------------------------------------------------- */

/* The rows every adapter shares, applied first: transport failures and
 * timeouts, 401, 408, 425, 429 and 5xx (with Retry-After).  Returns true
 * and fills v when it decided; false leaves the answer to the adapter. */
bool cq_classify_common(const cq_response *resp, cq_verdict *v);

/* Extracts a provider's own error text from an answer body into buf
 * ("" when there is none). */
typedef void (*cq_message_fn)(const cq_response *resp, char *buf, size_t size);

/* cq_classify_common(), and when it decided on an HTTP answer whose body
 * carries the provider's error text, that text becomes the message
 * ("HTTP 503: <text>"); Retry-After is kept. */
bool cq_classify_common_msg(const cq_response *resp, cq_verdict *v, cq_message_fn msg);

/* Fill a verdict. */
void cq_verdict_set(cq_verdict *v, cq_verdict_kind kind, const char *error, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Name of a verdict kind, for logs and tests. */
const char *cq_verdict_name(cq_verdict_kind kind);

#endif
