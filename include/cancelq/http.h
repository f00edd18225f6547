/*
 * http.h - the HTTP engine: libcurl's multi interface driven by a libuv loop
 * (one uv_poll_t per socket, kept for the socket's life, and one uv_timer_t),
 * as in curl's docs/examples/multi-uv.c.
 *
 * Every request gets exactly one callback, also when the engine is closed
 * (then with transport CQ_TR_ABORTED).  Callbacks run on the loop; a
 * callback may send new requests.
 *
 * Safety rules applied to every request: redirects are never followed; TLS
 * peer and host are verified (against opts->ca_file when set, else the
 * system's CAs); protocols are limited to https (plus http only when
 * opts->allow_http); no proxy but opts->proxy (the environment's
 * http_proxy, https_proxy, ALL_PROXY and NO_PROXY are ignored); the answer
 * body is capped at opts->max_response in the write callback
 * (CURLOPT_MAXFILESIZE does not stop transfers of unknown size) and wiped
 * whenever it moves or is freed (a token endpoint's answer holds tokens);
 * CURLOPT_NOSIGNAL is set, so the process must ignore SIGPIPE; connections
 * are kept alive and reused.
 *
 * A refused certificate ends a request with CQ_TR_TLS and resp->tls saying
 * which check refused it (tls.h).
 */
#ifndef CANCELQ_HTTP_H
#define CANCELQ_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "cancelq/err.h"
#include "cancelq/request.h"
#include "cancelq/tls.h"

typedef struct cq_http cq_http;

typedef struct cq_http_opts {
    uint64_t timeout_ms;         /* total, 0 = none */
    uint64_t connect_timeout_ms; /* 0 = curl default */
    size_t max_response;         /* body cap in bytes */
    bool allow_http;             /* also allow plain http (sandboxes, tests) */
    const char *auth_prefix;     /* e.g. "Authorization: Bearer ", or NULL */
    const char *token;           /* appended to auth_prefix; copied; never logged */
    /* Transport (cq_cred_http_opts fills these for a provider instance):
     * a PEM CA bundle trusted instead of the system's; a mutual TLS
     * identity, referenced while the request runs; a proxy URL ("" or
     * NULL: direct) and the hosts reached without it (curl's NOPROXY);
     * CQ_TLS_FAIL_COUNT counters bumped at [resp->tls] when a certificate
     * is refused, which must outlive the request.  Each may be NULL. */
    const char *ca_file;
    cq_tls_id *client;
    const char *proxy;
    const char *no_proxy;
    uint64_t *tls_failures;
} cq_http_opts;

/* The answer is borrowed for the duration of the callback only. */
typedef void (*cq_http_cb)(void *data, const cq_response *resp);

/* Create an engine on loop.  max_connections bounds the connection cache.
 * Returns NULL with err filled. */
cq_http *cq_http_new(uv_loop_t *loop, int max_connections, cq_err *err);

/* Start a request (copied: req may be cleared after this returns).  cb fires
 * exactly once, never from inside cq_http_send.  0 or -errno (then cb never
 * fires). */
int cq_http_send(cq_http *h, const cq_request *req, const cq_http_opts *opts, cq_http_cb cb,
                 void *data);

/* Number of requests in flight. */
size_t cq_http_active(const cq_http *h);

/* Abort every request in flight: each callback fires with CQ_TR_ABORTED
 * (maybe_sent true when the request may have left). */
void cq_http_abort_all(cq_http *h);

/* Abort what is in flight, then release everything; the handles close
 * asynchronously and the struct is freed once the loop has run their close
 * callbacks.  NULL is a no-op. */
void cq_http_free(cq_http *h);

#endif
