/*
 * request.h - an HTTP request as an adapter builds it and the HTTP engine
 * sends it, and the answer the engine hands back (DESIGN.md section 4).
 * Shared by the adapters (adapter.h), which build requests and classify
 * answers without I/O, and the engine (http.h), which does the I/O.
 *
 * Ownership: cq_request owns its url, header lines, body and form values;
 * release with cq_request_clear().  cq_response is borrowed: the engine
 * owns it for the duration of its callback.
 */
#ifndef CANCELQ_REQUEST_H
#define CANCELQ_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CQ_REQ_MAX_HEADERS 8
#define CQ_REQ_MAX_FORM 8

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
    CQ_TR_TLS,       /* a certificate was refused (see tls): nothing was sent */
} cq_transport;

/* Why certificate verification refused a connection (CQ_TR_TLS), from
 * curl's result and OpenSSL's verify result (tls.h, cq_tls_fail_of). */
typedef enum cq_tls_fail {
    CQ_TLS_NONE = 0,
    CQ_TLS_UNTRUSTED, /* the chain does not lead to a trusted CA (unknown issuer, self-signed) */
    CQ_TLS_HOSTNAME,  /* the certificate is not for the URL's host */
    CQ_TLS_EXPIRED,   /* outside its validity period (expired, or not yet valid) */
    CQ_TLS_LOCAL,     /* our side: ca_file or the client certificate is unusable */
    CQ_TLS_FAIL_COUNT
} cq_tls_fail;

typedef struct cq_response {
    long status; /* HTTP status, 0 when no answer */
    cq_transport transport;
    cq_tls_fail tls;  /* with CQ_TR_TLS: which check failed; else CQ_TLS_NONE */
    bool maybe_sent;  /* the provider may have received the request */
    const char *body; /* NUL-terminated copy, body_len bytes, may be "" */
    size_t body_len;
    const char *retry_after;   /* Retry-After header value or NULL */
    const char *location;      /* Location header value or NULL */
    const char *content_type;  /* Content-Type header value or NULL */
    const char *transport_msg; /* curl's error text or NULL */
    int64_t now_ms;            /* when the answer arrived (for HTTP-date Retry-After) */
} cq_response;

/* Release what a request owns and zero it. */
void cq_request_clear(cq_request *req);

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

#endif
