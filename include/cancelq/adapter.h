/*
 * adapter.h - provider adapters: pure request building and answer
 * classification (docs/design.md §4).  No I/O here: the HTTP engine sends
 * what an adapter builds and hands the answer back for classification.
 *
 * Adding a provider means one new src/adapter_NAME.c defining a cq_adapter
 * and one line in the table in src/adapter.c.
 *
 * Ownership: cq_request owns its url, header lines, body and form values;
 * release with cq_request_clear().  cq_response is borrowed by classifiers.
 */
#ifndef CANCELQ_ADAPTER_H
#define CANCELQ_ADAPTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "cancelq/config.h"
#include "cancelq/err.h"

#define CQ_REQ_MAX_HEADERS 8
#define CQ_REQ_MAX_FORM 8
#define CQ_TARGET_MAX 160 /* the target part of a derived idempotency key */

/* A built request.  Header lines are "Name: value", without the credential
 * header: the engine adds adapter->auth_prefix + token at send time, so a
 * renewed token never means rebuilding the request and requests can be
 * logged without secrets. */
typedef struct cq_form_field {
    const char *name; /* static */
    char *value;      /* owned */
} cq_form_field;

typedef struct cq_request {
    const char *method;                /* "POST" or "GET" (static) */
    char *url;                         /* owned, path segments percent-encoded */
    char *headers[CQ_REQ_MAX_HEADERS]; /* owned "Name: value" lines */
    size_t nheaders;
    char *body; /* owned, NULL when none */
    size_t body_len;
    cq_form_field form[CQ_REQ_MAX_FORM]; /* multipart/form-data fields (curl_mime) */
    size_t nform;
} cq_request;

/* How a request ended at the transport level. */
typedef enum cq_transport {
    CQ_TR_OK = 0,    /* an HTTP answer was read (status > 0) */
    CQ_TR_CONNECT,   /* never reached the provider: DNS, refused, TLS handshake */
    CQ_TR_TIMEOUT,   /* timed out; may have been sent (see maybe_sent) */
    CQ_TR_TOO_LARGE, /* answer exceeded the response cap */
    CQ_TR_ABORTED,   /* cancelled by us (shutdown) */
    CQ_TR_OTHER,     /* any other transport failure */
} cq_transport;

typedef struct cq_response {
    long status; /* HTTP status, 0 when no answer */
    cq_transport transport;
    bool maybe_sent;  /* the provider may have received the request */
    const char *body; /* NUL-terminated copy, body_len bytes, may be "" */
    size_t body_len;
    const char *retry_after;   /* Retry-After header value or NULL */
    const char *location;      /* Location header value or NULL */
    const char *content_type;  /* Content-Type header value or NULL */
    const char *transport_msg; /* curl's error text or NULL */
    int64_t now_ms;            /* when the answer arrived (for HTTP-date Retry-After) */
} cq_response;

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

/* Release what a request owns and zero it. */
void cq_request_clear(cq_request *req);

/* Helpers for adapters -------------------------------------------------- */

/* Append a header line (copied). 0 or -ENOMEM/-E2BIG. */
int cq_request_add_header(cq_request *req, const char *line);

/* Append a multipart field (value copied). 0 or -ENOMEM/-E2BIG. */
int cq_request_add_form(cq_request *req, const char *name, const char *value);

/* Build "<base><seg0-or-literal>..." where each of the nsegs entries of segs
 * is either a literal path piece (literal[i] true, copied as is) or a
 * parameter value that is percent-encoded as one path segment (so "a b/c"
 * becomes "a%20b%2Fc").  *out is heap, caller frees.  0 or -errno. */
int cq_url_build(const char *base, const char *const *segs, const bool *literal, size_t nsegs,
                 char **out);

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
