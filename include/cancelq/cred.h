/*
 * cred.h - the credential of one provider instance (docs/design.md §9):
 * a static token_file, or OAuth2 tokens minted on the loop (Intronis client
 * credentials; Keliweb password grant, then refresh_token grants).
 *
 * One token is shared by every request of the instance.  It is renewed at
 * CQ_CRED_RENEW_AT_PCT of its lifetime (a timer), and on a 401 once per
 * token generation: at most one token request is out at a time and
 * requests that find no usable token join a waiter list; every waiter is
 * called exactly once, when the renewal ends (or cq_cred_cancel_waiters).
 * A failing token endpoint is retried with capped exponential backoff; each
 * failure is logged and counted.
 *
 * Secrets (client_secret, password, tokens) are read with cq_secret_read(),
 * registered with cq_log_add_secret() and wiped when freed; they never
 * appear in logs.  The mutual TLS identity (client_cert_file,
 * client_key_file: tls.h) is read with them, and re-read on SIGHUP too.
 *
 * The pure part (building the form, parsing the answer) is exported for the
 * unit tests.
 */
#ifndef CANCELQ_CRED_H
#define CANCELQ_CRED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "cancelq/config.h"
#include "cancelq/err.h"
#include "cancelq/http.h"

#define CQ_CRED_RENEW_AT_PCT 80         /* renew when 80% of the lifetime has passed */
#define CQ_CRED_DEFAULT_TTL_S 3600      /* when the answer has no expires_in */
#define CQ_CRED_MAX_TTL_S 31536000      /* a longer expires_in is capped (one year) */
#define CQ_CRED_ANSWER_MAX 65536        /* token endpoint answers larger than this are refused */
#define CQ_CRED_BACKOFF_BASE_MS 500     /* first retry of a failed token request */
#define CQ_CRED_BACKOFF_MAX_MS 30000    /* retries of the token endpoint are capped here */
#define CQ_CRED_TOKEN_MAX CQ_SECRET_MAX /* access/refresh tokens longer than this are refused */

typedef enum cq_grant {
    CQ_GRANT_CLIENT_CREDENTIALS,
    CQ_GRANT_PASSWORD,
    CQ_GRANT_REFRESH,
} cq_grant;

/* "client_credentials", "password", "refresh_token". */
const char *cq_grant_name(cq_grant g);

/* Build the application/x-www-form-urlencoded body of a token request
 * (values escaped with curl_easy_escape).  client_credentials: grant_type,
 * client_id, client_secret, scope (when set); password: grant_type,
 * client_id, client_secret, username, password (+ scope); refresh_token:
 * grant_type, client_id, client_secret, refresh_token.  *out is heap (it
 * holds secrets: wipe with cq_secret_free).  0 or -errno with err. */
int cq_cred_form(const cq_provider_conf *pc, cq_grant g, const char *client_secret,
                 const char *password, const char *refresh, char **out, cq_err *err);

/* A token endpoint's answer. */
typedef struct cq_token_answer {
    char *access_token;  /* owned secret */
    char *refresh_token; /* owned secret or NULL */
    uint64_t expires_in_s;
} cq_token_answer;

/* Parse a 200 answer: JSON with access_token (required) and expires_in (a
 * number or a string of digits; missing: CQ_CRED_DEFAULT_TTL_S; capped at
 * CQ_CRED_MAX_TTL_S), refresh_token optional.  0 or -EINVAL with err (the
 * message never quotes the answer: it holds secrets). */
int cq_cred_parse(const char *body, size_t len, cq_token_answer *out, cq_err *err);

/* Wipe and free what an answer owns. */
void cq_token_answer_clear(cq_token_answer *a);

/* --- on the loop --------------------------------------------------------- */

typedef struct cq_cred cq_cred;

/* A request waiting for a token, embedded in the caller's struct.  cb gets
 * status 0 (a token is ready: call cq_cred_token again), -EAGAIN (the token
 * endpoint failed; retry_ms says when the next try is) or -ECANCELED. */
typedef struct cq_cred_waiter {
    struct cq_cred_waiter *next;
    void (*cb)(struct cq_cred_waiter *wt, int status, uint64_t retry_ms);
} cq_cred_waiter;

typedef struct cq_cred_stats {
    uint64_t mints;    /* tokens obtained (also token_file reads) */
    uint64_t failures; /* failed token requests */
    bool failing;      /* the last token request failed */
    char last_error[128];
    /* requests to the instance (calls, lookups, token requests) whose peer
     * certificate was refused, by cq_tls_fail; the HTTP engine counts them
     * (cq_cred_http_opts) */
    uint64_t tls_failures[CQ_TLS_FAIL_COUNT];
} cq_cred_stats;

/* Read the secrets (and the token_file) of pc.  http sends the token
 * requests; it must outlive the cred's requests (free the cred after
 * cq_http_free, which ends them).  NULL with err. */
cq_cred *cq_cred_new(uv_loop_t *loop, cq_http *http, const cq_provider_conf *pc, cq_err *err);

/* SIGHUP: re-read the secret files (token_file: the token).  When the
 * token endpoint was failing, the next token request goes at once with the
 * new secrets.  0 or -errno; on error the old secrets stay. */
int cq_cred_reload(cq_cred *c, cq_err *err);

/* The token to use now, or NULL when there is none usable (then wait with
 * cq_cred_wait).  *gen identifies the token for cq_cred_invalid.  May start
 * a renewal. */
const char *cq_cred_token(cq_cred *c, unsigned *gen);

/* Wait for the renewal under way (starting one if none is). */
void cq_cred_wait(cq_cred *c, cq_cred_waiter *wt);

/* Remove a waiter that is queued (shutdown of one task).  True if found. */
bool cq_cred_unwait(cq_cred *c, cq_cred_waiter *wt);

/* The provider refused the token of generation gen (401): renew, unless a
 * newer token already replaced it or a renewal is under way.  For a
 * token_file the file is re-read at once. */
void cq_cred_invalid(cq_cred *c, unsigned gen);

/* After a failed token request: milliseconds until the next try (0: none
 * pending).  Requests that find no token then should not wait in memory. */
uint64_t cq_cred_retry_in(const cq_cred *c);

/* Call every waiter with -ECANCELED (shutdown). */
void cq_cred_cancel_waiters(cq_cred *c);

const cq_cred_stats *cq_cred_stats_get(const cq_cred *c);

/* The transport settings of every request to the instance and its token
 * endpoint, into o: ca_file, the mutual TLS identity, proxy, no_proxy, and
 * where the engine counts refused certificates (stats.tls_failures).  The
 * other fields of o are left alone. */
void cq_cred_http_opts(cq_cred *c, cq_http_opts *o);

/* Stop timers, wipe secrets; the struct is freed from a close callback (run
 * the loop).  Waiters are dropped without a call.  NULL is a no-op. */
void cq_cred_free(cq_cred *c);

#endif
