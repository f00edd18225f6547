/*
 * log.h - one line per event, logfmt, to stderr.
 *
 *   time=2026-11-22T10:00:00.123Z level=info event=job_done id=inv-1 status=succeeded
 *
 * When $JOURNAL_STREAM is set (stderr is connected to journald) each line
 * starts with the "<N>" syslog priority prefix journald understands and the
 * time field is left out (journald stamps lines itself).
 *
 * Redaction: every secret the process loads is registered with
 * cq_log_add_secret(); any value (or message) that contains a registered
 * secret has it replaced with "[REDACTED]" before it is written.  Values are
 * quoted when they contain spaces, '=', '"' or control characters, with
 * control characters escaped, so a hostile job id cannot forge log lines.
 *
 * The logger is the one process-wide state in cancelq (like syslog(3)).
 */
#ifndef CANCELQ_LOG_H
#define CANCELQ_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

typedef enum cq_log_level {
    CQ_LOG_ERR = 3,
    CQ_LOG_WARN = 4,
    CQ_LOG_NOTICE = 5,
    CQ_LOG_INFO = 6,
    CQ_LOG_DEBUG = 7,
} cq_log_level;

#define CQ_LOG_LINE_MAX 4096 /* longer lines are cut, marked with "..." */

/* Configure: where to write (NULL = stderr), the most verbose level
 * written, and whether to use journald prefixes (-1 = decide from
 * $JOURNAL_STREAM). */
void cq_log_init(FILE *out, cq_log_level max_level, int journal);

/* Register a secret to redact (copied; empty strings are ignored).  Returns
 * 0 or -ENOMEM. */
int cq_log_add_secret(const char *secret);

/* Forget a secret (e.g. a renewed token replaced the old one). */
void cq_log_remove_secret(const char *secret);

/* Forget all secrets and free them. */
void cq_log_shutdown(void);

/* Log an event with key/value string pairs, terminated by NULL:
 *   cq_log(CQ_LOG_INFO, "job_done", "id", id, "status", "succeeded", NULL);
 * A NULL value is written as an empty string. */
void cq_log(cq_log_level level, const char *event, ...) __attribute__((sentinel));

/* Would an event at level be written?  For callers that prepare values. */
bool cq_log_enabled(cq_log_level level);
void cq_logv(cq_log_level level, const char *event, va_list ap);

/* Format into buf the line cq_log would write (without the newline), for
 * tests.  Returns the length. */
size_t cq_log_format(char *buf, size_t size, cq_log_level level, const char *event, ...)
    __attribute__((sentinel));

/* Redact registered secrets in s into buf (always NUL-terminated). */
void cq_log_redact(const char *s, char *buf, size_t size);

#endif
