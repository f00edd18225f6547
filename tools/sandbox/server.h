/*
 * server.h - the sandbox's HTTP/1.1 server: one libuv TCP listener, many
 * keep-alive connections, requests parsed by http_parser and handed to one
 * handler function that fills in an sb_response.
 *
 * Per connection: a fixed read buffer, a fixed arena for the request line
 * and headers, a body buffer capped at SB_BODY_MAX (413 beyond), at most one
 * delayed answer pending on a timer (pipelined requests wait behind it).
 * Malformed HTTP is answered 400/413/431 and the connection closed.
 */
#ifndef SB_SERVER_H
#define SB_SERVER_H

#include <uv.h>

#include "request.h"

/* Request body cap: the largest document any endpoint takes is well below. */
#define SB_BODY_MAX ((size_t)64 * 1024)

typedef struct sb_server sb_server;

typedef struct sb_server_hooks {
    /* Answer one request by filling resp (initialised to an empty 200). */
    void (*handle)(void *arg, const sb_request *req, sb_response *resp);
    /* A request refused before it could be handled (malformed HTTP, too
     * large): status is the answer sent, why a short reason. */
    void (*refused)(void *arg, int status, const char *why);
    void *arg;
} sb_server_hooks;

/* Listen on addr.  Returns 0 and *out, or a negative libuv error. */
int sb_server_start(uv_loop_t *loop, const struct sockaddr *addr, const sb_server_hooks *hooks,
                    sb_server **out);

/* The local port actually bound (useful with port 0), or -1. */
int sb_server_port(sb_server *srv);

/* Close the listener and every connection (pending answers are dropped).
 * Memory is released in close callbacks: run the loop afterwards. */
void sb_server_stop(sb_server *srv);

#endif
