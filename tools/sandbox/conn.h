/*
 * conn.h - one client connection (private to server.c and conn.c).
 *
 * conn.c holds the http_parser glue: it collects the request line, headers
 * and body into the connection's bounded buffers and turns them into an
 * sb_request.  server.c holds the life cycle (accept, read, write, timers,
 * close).  A parser callback that meets a limit records refuse_status and
 * returns non-zero, which makes http_parser_execute stop with an error.
 */
#ifndef SB_CONN_H
#define SB_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <http_parser.h>
#include <uv.h>

#include "request.h"
#include "server.h"

#define SB_READ_BUF_SIZE 16384 /* one read; pipelined input waits here */
#define SB_HEAD_MAX 8192       /* request line + headers (names and values) -> 431 */
#define SB_BODY_KEEP 4096      /* body buffer kept for the next request */

typedef enum conn_state {
    C_READING,
    C_WAITING,
    C_BLOCKED,
    C_CLOSING,
    C_LINGER,
    C_CLOSED
} conn_state;

typedef struct hdr_ref {
    uint32_t name_off, value_off;
    bool has_value;
} hdr_ref;

typedef struct sb_conn sb_conn;

struct sb_conn {
    uv_tcp_t tcp;
    uv_timer_t timer; /* idle timeout, the delayed answer (WAITING), or LINGER's end */
    uv_shutdown_t shutdown;
    sb_server *srv;
    sb_conn *prev, *next;
    http_parser parser;
    conn_state state;
    bool reading;
    int open_handles; /* freed when both handles' close callbacks ran */
    uint64_t last_active;
    /* input not parsed yet: rbuf[roff..rlen) */
    char rbuf[SB_READ_BUF_SIZE];
    size_t rlen, roff;
    /* the request being received: NUL-terminated strings in head[] */
    char head[SB_HEAD_MAX];
    size_t head_len;
    bool region_open;
    bool url_seen;
    uint32_t url_off;
    hdr_ref hdr[SB_HEADERS_MAX];
    size_t nhdr;
    bool in_value;
    char *body; /* body_cap bytes, body_cap <= SB_BODY_MAX + 1 */
    size_t body_len, body_cap;
    int refuse_status;      /* 413/431 decided by a callback, else 0 */
    const char *refuse_why; /* static text */
    bool keep_alive;
    sb_response pending; /* the delayed answer while WAITING */
};

extern const http_parser_settings sb_conn_parser_settings;

/* Reset the parser for a new connection. */
void sb_conn_init_parser(sb_conn *c);

/* Fill req (and hdrs, SB_HEADERS_MAX entries) from the complete request.
 * Returns 0, or -EINVAL with a reason (bad request target). */
int sb_conn_build_request(sb_conn *c, sb_request *req, sb_header *hdrs, sb_why *why);

/* Forget the request just handled (shrinks a large body buffer). */
void sb_conn_request_done(sb_conn *c);

/* Write "100 Continue" (Expect: 100-continue). */
void sb_conn_send_continue(sb_conn *c);

/* Close the connection (idempotent). */
void sb_conn_close(sb_conn *c);

void sb_conn_on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
void sb_conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
void sb_conn_on_timer(uv_timer_t *t);

#endif
