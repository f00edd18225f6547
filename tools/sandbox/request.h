/*
 * request.h - one parsed HTTP request as handlers see it, and the response
 * they fill in.  The server (server.c) owns the memory behind sb_request for
 * the duration of the handler call only.
 *
 * cJSON ownership rule for the whole sandbox: whoever creates a cJSON tree
 * deletes it, except that sb_resp_json() takes ownership of the tree it is
 * given (even on failure).  Printed JSON text comes from cJSON's default
 * allocator (malloc), so response bodies are always released with free().
 */
#ifndef SB_REQUEST_H
#define SB_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "util.h"

/* Request headers kept per request; more is answered 431. */
#define SB_HEADERS_MAX 64
/* Longest Location header value (base URL + escaped username). */
#define SB_LOCATION_MAX 1280
/* Longest Retry-After / Allow values. */
#define SB_SHORT_HEADER_MAX 64
/* Longest Content-Type value of an answer. */
#define SB_CTYPE_MAX 128

typedef struct sb_header {
    const char *name; /* as received; compare case-insensitively */
    const char *value;
} sb_header;

typedef struct sb_request {
    int method;        /* enum http_method */
    const char *path;  /* raw (still percent-encoded), NUL-terminated */
    const char *query; /* raw, "" when absent */
    const sb_header *headers;
    size_t nheaders;
    const char *body; /* NUL-terminated (the NUL is not counted); "" when none */
    size_t body_len;
} sb_request;

typedef struct sb_response {
    int status;
    char content_type[SB_CTYPE_MAX]; /* "" with no body */
    char *body;                      /* malloc'd, owned by the response; may be NULL */
    size_t body_len;
    char location[SB_LOCATION_MAX];
    char retry_after[SB_SHORT_HEADER_MAX];
    char allow[SB_SHORT_HEADER_MAX];
    uint32_t delay_ms; /* answer after this many ms (timer, not sleep) */
    bool close;        /* send Connection: close and close after the answer */
    bool drop;         /* close the connection without answering */
    bool rejected;     /* refused as malformed or unauthenticated (stats) */
    sb_why why;        /* reason for the log when rejected */
} sb_response;

/* The first value of header name (case-insensitive), or NULL. */
const char *sb_req_header(const sb_request *req, const char *name);

/* Prepare r as an empty 200 answer. */
void sb_resp_init(sb_response *r);

/* Release r's body; r may be reused after sb_resp_init. */
void sb_resp_release(sb_response *r);

/* Answer status with obj printed as the body (application/json).  Takes
 * ownership of obj.  On OOM the answer becomes a bodiless 500 + close. */
void sb_resp_json(sb_response *r, int status, cJSON *obj);

/* Answer status with a copy of body[0..len) of the given content type
 * (truncated to SB_CTYPE_MAX - 1 bytes). */
void sb_resp_raw(sb_response *r, int status, const char *content_type, const char *body,
                 size_t len);

/* Answer status with an empty body. */
void sb_resp_empty(sb_response *r, int status);

/* A refusal: answer status with {"error": why} and mark it rejected. */
void sb_resp_reject(sb_response *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Small cJSON builders that return NULL on OOM (the caller then answers 500
 * through sb_resp_json(r, status, NULL)). */
cJSON *sb_json_obj1(const char *k, const char *v);

#endif
