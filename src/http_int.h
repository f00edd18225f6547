/*
 * http_int.h - private to the HTTP engine's files in src/ (http.h):
 *
 *   http.c        the engine: requests' life (send, retire, deliver), the
 *                 easy handle pool, the public API
 *   http_uv.c     the multi <-> libuv wiring: one poll per socket, one timer
 *   http_req.c    one transfer's setup: checks, copies, easy handle options
 *   http_answer.c one transfer's answer: body, headers, outcome
 */
#ifndef CANCELQ_HTTP_INT_H
#define CANCELQ_HTTP_INT_H

#include <stdbool.h>
#include <stddef.h>

#include <curl/curl.h>
#include <uv.h>

#include "cancelq/http.h"

/* Captured response header values (Retry-After, Location, Content-Type).
 * A longer value is treated as absent: a cut Location or date is wrong. */
#define HTTP_HDR_VALUE_MAX 512
/* "<curl_easy_strerror>: <errorbuffer>" or our own texts. */
#define HTTP_MSG_MAX (CURL_ERROR_SIZE + 128)

typedef struct http_req http_req;

typedef struct req_list {
    http_req *head;
    http_req *tail;
    size_t n;
} req_list;

/* A socket curl uses and its poll (http_uv.c). */
typedef struct sock_ctx sock_ctx;

/* The captured response headers (http_answer.c names them). */
enum { HV_RETRY_AFTER, HV_LOCATION, HV_CONTENT_TYPE, HV_COUNT };

/* What only the answer needs, allocated when the answer brings a wanted
 * header or the request fails: a request waiting for its answer (most of
 * its life) does not carry it. */
typedef struct http_answer {
    char value[HV_COUNT][HTTP_HDR_VALUE_MAX];
    char msg[HTTP_MSG_MAX];
} http_answer;

/*
 * A request and, in the same allocation after the struct (hdr[]), the
 * copies curl points at while the transfer runs: the header list nodes,
 * the header lines (the request's, the credential, "Expect:") and the POST
 * body.  All of it is wiped before free (token, OAuth client secrets).
 */
struct http_req {
    cq_http *h;
    http_req *prev, *next; /* in h->active or h->done */
    CURL *easy;            /* NULL once detached */
    curl_mime *mime;
    char *post; /* in hdr[]: the POST body (curl keeps the pointer), or NULL */
    size_t post_len;
    cq_http_cb cb;
    void *data;

    /* the answer */
    size_t max_response;
    char *body;
    size_t body_len, body_cap;
    http_answer *ans;         /* owned, NULL until needed */
    bool poll_failed;         /* no poll for its socket: fail it after the action */
    bool too_large;           /* write callback refused: cap reached */
    bool oom;                 /* write or header callback refused: no memory */
    bool in_body;             /* header lines seen after body bytes are trailers */
    bool has_value[HV_COUNT]; /* r->ans->value[i] holds a captured header */
    cq_tls_id *client;        /* a reference while curl may read its blobs, or NULL */
    uint64_t *tls_failures;   /* opts->tls_failures */
    char errbuf[CURL_ERROR_SIZE];
    cq_response resp;

    size_t extra_len;        /* bytes from hdr to the end of the allocation */
    size_t nhdr;             /* nodes in hdr[], a list from hdr[0] */
    struct curl_slist hdr[]; /* then the lines, then the POST body */
};

struct cq_http {
    uv_loop_t *loop;
    CURLM *multi;     /* NULL once cq_http_free ran */
    uv_timer_t timer; /* timer.data = this */
    req_list active;  /* added to the multi */
    req_list done;    /* finished, callback not fired yet */
    sock_ctx **socks; /* indexed by fd, nsocks slots; NULL: no context */
    size_t nsocks;
    CURL **pool; /* pool_max idle handles at most */
    size_t npool;
    size_t pool_max;
    unsigned closes_pending; /* uv_close calls whose callback has not run */
    unsigned poll_failures;  /* requests marked poll_failed, not yet failed */
    bool freeing;            /* cq_http_free called: refuse sends */
};

/* --- http.c ------------------------------------------------------------- */

/* Tell curl about an event on fd (CURL_SOCKET_TIMEOUT: the timer), then
 * fail the requests whose socket could not be watched and deliver what
 * finished.  Runs only from libuv callbacks (never inside a curl one). */
void cq_http_socket_action(cq_http *h, curl_socket_t fd, int flags);

/* --- http_uv.c ---------------------------------------------------------- */

/* CURLMOPT_SOCKETFUNCTION (userp: the engine). */
int cq_http_curl_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp);

/* CURLMOPT_TIMERFUNCTION (userp: the engine). */
int cq_http_curl_timer(CURLM *multi, long timeout_ms, void *userp);

/* CURLOPT_OPENSOCKETFUNCTION and CURLOPT_CLOSESOCKETFUNCTION (clientp: the
 * engine): sockets are tracked from open to close, so that their polls
 * live as long as they do. */
curl_socket_t cq_http_open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *addr);
int cq_http_close_socket(void *clientp, curl_socket_t s);

/* Last step of cq_http_free, once the multi is gone: close every poll and
 * the timer; the last close callback frees the engine. */
void cq_http_uv_close(cq_http *h);

/* --- http_req.c --------------------------------------------------------- */

/* Check req and opts: a GET or a POST (*post says which), header lines and
 * credential without CR or LF, a body or a form but not both.  0 or
 * -EINVAL. */
int cq_http_req_check(const cq_request *req, const cq_http_opts *opts, bool *post);

/* A zeroed request holding the copies curl will read (header list,
 * credential line, POST body); NULL when memory is short.  Released by
 * the engine (http.c), which wipes it. */
http_req *cq_http_req_new(const cq_request *req, const cq_http_opts *opts, bool post);

/* Set every option of r->easy for req (see http_req.c).  0 or -errno. */
int cq_http_req_configure(http_req *r, const cq_request *req, const cq_http_opts *opts, bool post);

/* --- http_answer.c ------------------------------------------------------ */

/* CURLOPT_WRITEFUNCTION and CURLOPT_HEADERFUNCTION (userdata: the
 * request). */
size_t cq_http_on_write(char *ptr, size_t size, size_t nmemb, void *userdata);
size_t cq_http_on_header(char *buf, size_t size, size_t nitems, void *userdata);

/* Fill r->resp from the transfer's result (rc; aborted: cancelled by us).
 * Must run before the easy handle is detached: it reads CURLINFO values. */
void cq_http_req_finish(http_req *r, CURLcode rc, bool aborted);

#endif
