/*
 * redis_uv.c - hiredis on the libuv loop (redis_int.h): like hiredis'
 * adapters/libuv.h, but a poll error becomes a read so hiredis notices the
 * broken socket (hiredis 0.14's own adapter ignores poll errors), and a
 * readable socket is read until it is drained, up to a bound.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/ioctl.h>

#include "redis_int.h"

#define READ_ROUNDS_MAX 64 /* 16 KiB reads per readable event at most: 1 MiB */

/* One context's attachment: its poll and the events hiredis asked for. */
typedef struct uvev {
    redisAsyncContext *ac;
    uv_poll_t poll;
    int events;
} uvev;

/* hiredis 0.14 reads 16 KiB per call; a fetch reply of 256 jobs is
 * several times that.  Reading only that much per readable event made each
 * large reply (and every reply queued behind it) wait for several turns of
 * a busy loop: read while the socket has bytes waiting, up to a bound that
 * keeps other sockets served. */
static void read_all(uvev *p)
{
    int i, waiting;

    for (i = 0; i < READ_ROUNDS_MAX && p->ac != NULL; i++) {
        redisAsyncHandleRead(p->ac);
        if (p->ac == NULL || ioctl(p->ac->c.fd, FIONREAD, &waiting) != 0 || waiting <= 0)
            break;
    }
}

static void uvev_poll_cb(uv_poll_t *h, int status, int events)
{
    uvev *p = h->data;

    if (p->ac == NULL)
        return;
    if (status < 0) {
        /* the socket is broken: a read makes hiredis see it and disconnect */
        redisAsyncHandleRead(p->ac);
        return;
    }
    if (events & UV_READABLE)
        read_all(p);
    if (p->ac != NULL && (events & UV_WRITABLE))
        redisAsyncHandleWrite(p->ac);
}

static void uvev_update(uvev *p, int add, int ev)
{
    if (add)
        p->events |= ev;
    else
        p->events &= ~ev;
    if (p->events)
        uv_poll_start(&p->poll, p->events, uvev_poll_cb);
    else
        uv_poll_stop(&p->poll);
}

static void uvev_add_read(void *d)
{
    uvev_update(d, 1, UV_READABLE);
}

static void uvev_del_read(void *d)
{
    uvev_update(d, 0, UV_READABLE);
}

static void uvev_add_write(void *d)
{
    uvev_update(d, 1, UV_WRITABLE);
}

static void uvev_del_write(void *d)
{
    uvev_update(d, 0, UV_WRITABLE);
}

static void uvev_closed(uv_handle_t *h)
{
    free(h->data);
}

static void uvev_cleanup(void *d)
{
    uvev *p = d;

    p->ac = NULL;
    uv_close((uv_handle_t *)&p->poll, uvev_closed);
}

int cq_redis_uv_attach(redisAsyncContext *ac, uv_loop_t *loop)
{
    uvev *p = calloc(1, sizeof(*p));

    if (p == NULL)
        return -ENOMEM;
    if (uv_poll_init(loop, &p->poll, ac->c.fd) != 0) {
        free(p);
        return -EIO;
    }
    p->ac = ac;
    p->poll.data = p;
    ac->ev.addRead = uvev_add_read;
    ac->ev.delRead = uvev_del_read;
    ac->ev.addWrite = uvev_add_write;
    ac->ev.delWrite = uvev_del_write;
    ac->ev.cleanup = uvev_cleanup;
    ac->ev.data = p;
    return 0;
}
