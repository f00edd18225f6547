/*
 * notify.h - telling systemd how cancelqd is doing (sd_notify(3)).
 *
 * A thin wrapper over libsystemd's sd_notify() for a Type=notify service:
 *
 *   cq_notify_ready()       once Redis is reachable and every provider's
 *                           credentials are loaded (systemd holds back units
 *                           ordered after us until then);
 *   cq_notify_status(...)   a one-line human status ("systemctl status");
 *   cq_notify_reloading()   on SIGHUP, before re-reading; cq_notify_ready()
 *                           again when the reload is done;
 *   cq_notify_stopping()    when a graceful stop begins;
 *   cq_notify_watchdog_start()  WATCHDOG=1 pings from a timer on the loop,
 *                           so a loop that is stuck (and so stops pinging)
 *                           is killed and restarted by systemd (WatchdogSec=).
 *
 * Everything is a no-op returning 0 when $NOTIFY_SOCKET is not set (run
 * outside systemd, or by tests).  The functions return 0 when the message
 * was sent or there is nowhere to send it, else a negative errno; a failed
 * notification is never fatal to the daemon, callers may log it and go on.
 * The environment is left as it is, so later messages (STOPPING=1) still
 * find the socket.
 */
#ifndef CANCELQ_NOTIFY_H
#define CANCELQ_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

/* A STATUS= text longer than this is cut (systemctl shows one line). */
#define CQ_NOTIFY_STATUS_MAX 256

/* Is $NOTIFY_SOCKET set (are we run by systemd as Type=notify)? */
bool cq_notify_enabled(void);

/* Send READY=1 (start-up, or the end of a reload).  0 or -errno. */
int cq_notify_ready(void);

/* Send RELOADING=1 with MONOTONIC_USEC= (what Type=notify-reload in newer
 * systemd expects; older versions ignore the extra field).  Follow it with
 * cq_notify_ready() once the reload is done.  0 or -errno. */
int cq_notify_reloading(void);

/* Send STOPPING=1.  0 or -errno. */
int cq_notify_stopping(void);

/* Send STATUS=<text> formatted printf-style; the text is cut at
 * CQ_NOTIFY_STATUS_MAX bytes and control characters (a newline would start
 * a new field of the protocol) become blanks.  0 or -errno. */
int cq_notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Send WATCHDOG=1 once.  0 or -errno. */
int cq_notify_watchdog(void);

/* The watchdog interval systemd asked for (sd_watchdog_enabled(3):
 * $WATCHDOG_USEC, honoured only when $WATCHDOG_PID is unset or ours), in
 * microseconds; 0 when the watchdog is off or $NOTIFY_SOCKET is unset. */
uint64_t cq_notify_watchdog_usec(void);

/* Initialise the caller's timer t on loop and, when the watchdog is on,
 * send WATCHDOG=1 now and then every usec/2 from t.  The timer is unref'd:
 * it never keeps the loop alive by itself.  Returns 1 when pinging, 0 when
 * the watchdog is off (t initialised but idle), or a negative libuv error
 * (t not initialised).  When it returned >= 0 the caller owns an
 * initialised handle and closes it with uv_close() before uv_loop_close();
 * uv_timer_stop(t) ends the pings earlier (e.g. once stopping). */
int cq_notify_watchdog_start(uv_loop_t *loop, uv_timer_t *t);

#endif
