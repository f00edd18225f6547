/*
 * notify.c - sd_notify(3) messages for a Type=notify service (notify.h).
 *
 * libsystemd does the socket work (abstract and path sockets, the
 * credentials systemd checks with NotifyAccess=main); this file only
 * builds the messages and runs the watchdog timer on the loop.
 */
#include "cancelq/notify.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <systemd/sd-daemon.h>

/* "STATUS=" + the text + NUL */
#define STATUS_MSG_MAX (CQ_NOTIFY_STATUS_MAX + 8)
/* Shortest ping interval; systemd's own minimum for WatchdogSec= is far above. */
#define WATCHDOG_MIN_INTERVAL_MS 1

bool cq_notify_enabled(void)
{
    const char *s = getenv("NOTIFY_SOCKET");

    return s != NULL && s[0] != '\0';
}

/* sd_notify() returns > 0 when sent, 0 when there is no socket, < 0 errno. */
static int send_msg(const char *msg)
{
    int r;

    if (!cq_notify_enabled())
        return 0;
    r = sd_notify(0, msg);
    return r < 0 ? r : 0;
}

int cq_notify_ready(void)
{
    return send_msg("READY=1");
}

int cq_notify_reloading(void)
{
    struct timespec ts;
    char msg[64];

    if (!cq_notify_enabled())
        return 0;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return -errno;
    snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
             (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000);
    return send_msg(msg);
}

int cq_notify_stopping(void)
{
    return send_msg("STOPPING=1");
}

int cq_notify_status(const char *fmt, ...)
{
    char msg[STATUS_MSG_MAX];
    va_list ap;
    int n;

    if (!cq_notify_enabled())
        return 0;
    n = snprintf(msg, sizeof(msg), "STATUS=");
    va_start(ap, fmt);
    vsnprintf(msg + n, CQ_NOTIFY_STATUS_MAX + 1, fmt, ap);
    va_end(ap);
    /* a newline would start a new KEY=VALUE of the protocol */
    for (char *p = msg + n; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
    return send_msg(msg);
}

int cq_notify_watchdog(void)
{
    return send_msg("WATCHDOG=1");
}

uint64_t cq_notify_watchdog_usec(void)
{
    uint64_t usec = 0;

    if (!cq_notify_enabled() || sd_watchdog_enabled(0, &usec) <= 0)
        return 0;
    return usec;
}

static void watchdog_cb(uv_timer_t *t)
{
    (void)t;
    cq_notify_watchdog();
}

int cq_notify_watchdog_start(uv_loop_t *loop, uv_timer_t *t)
{
    uint64_t usec, ms;
    int rc;

    rc = uv_timer_init(loop, t);
    if (rc != 0)
        return rc;
    uv_unref((uv_handle_t *)t);
    usec = cq_notify_watchdog_usec();
    if (usec == 0)
        return 0;
    /* half the timeout, as sd_watchdog_enabled(3) recommends: one late
     * tick of a busy loop does not get us killed, a stuck loop does */
    ms = usec / 2000;
    if (ms < WATCHDOG_MIN_INTERVAL_MS)
        ms = WATCHDOG_MIN_INTERVAL_MS;
    cq_notify_watchdog();
    rc = uv_timer_start(t, watchdog_cb, ms, ms);
    return rc == 0 ? 1 : rc;
}
