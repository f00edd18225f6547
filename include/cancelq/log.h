/*
 * log.h - one line per event, logfmt, to stderr; or, when stderr is the
 * journal, one journal entry per event with a field per key.
 *
 *   time=2026-11-22T10:00:00.123Z level=info event=job_done id=inv-1 status=succeeded
 *
 * Where lines go (cq_log_init's `journal`, CQ_LOG_AUTO decides):
 *   - plain: logfmt lines with a time field;
 *   - prefix: "<N>" syslog priority prefix, no time field (journald stamps
 *     lines itself), for a stream journald reads;
 *   - native: stderr is the journal ($JOURNAL_STREAM names stderr's
 *     device:inode, as systemd sets it): each event goes through
 *     sd_journal_sendv() with MESSAGE (the logfmt line), PRIORITY,
 *     SYSLOG_IDENTIFIER, CQ_EVENT and CQ_<KEY> for every key=value of the
 *     event (key uppercased, other than A-Z 0-9 turned to '_'), plus a fixed
 *     MESSAGE_ID for the events an operator acts on (systemd/cancelq.catalog
 *     documents them).  If the journal socket cannot be reached the line is
 *     written in prefix form to stderr instead: nothing is lost.
 *
 * Redaction: every secret the process loads is registered with
 * cq_log_add_secret().  A secret of CQ_LOG_SECRET_MIN bytes or more is
 * replaced with "[REDACTED]" wherever it appears in a value (or message),
 * and so is a value's tail that is the secret's first CQ_LOG_SECRET_MIN or
 * more bytes (a provider's answer echoing a token, cut at a length limit).
 * A shorter secret is redacted only as a whole value: as a substring it
 * would mangle every line ("event=breaker_s[REDACTED]a[REDACTED]e").  The
 * same rules apply to every journal field and to the cut end of a line.
 * Values are quoted when they contain spaces, '=', '"' or control
 * characters, with control characters escaped, so a hostile job id cannot
 * forge log lines.
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

/* Secrets shorter than this are redacted only where a whole value equals
 * them: as substrings they would match ordinary words.  Eight bytes is
 * also the shortest secret prefix redacted at the end of a value. */
#define CQ_LOG_SECRET_MIN 8

/* cq_log_add_secret_checked(): registered, but shorter than
 * CQ_LOG_SECRET_MIN (the config side warns about it). */
#define CQ_LOG_SECRET_SHORT 1

/* cq_log_init()'s journal argument. */
#define CQ_LOG_AUTO (-1) /* native when $JOURNAL_STREAM is stderr, else plain */
#define CQ_LOG_PLAIN 0   /* logfmt lines with a time field */
#define CQ_LOG_PREFIX 1  /* "<N>" prefixed lines, no time field */
#define CQ_LOG_JOURNAL 2 /* sd_journal_sendv, prefix lines if that fails */

/* Configure: where to write (NULL = stderr), the most verbose level
 * written, and the form (CQ_LOG_AUTO, CQ_LOG_PLAIN, CQ_LOG_PREFIX,
 * CQ_LOG_JOURNAL; any other positive value means CQ_LOG_PREFIX). */
void cq_log_init(FILE *out, cq_log_level max_level, int journal);

/* The form in use after cq_log_init (never CQ_LOG_AUTO). */
int cq_log_mode(void);

/* Does $JOURNAL_STREAM ("DEV:INO", decimal, as systemd sets it) name the
 * file open on fd?  Only then is fd a stream journald reads. */
bool cq_log_journal_stream_is(int fd);

/* Register a secret to redact (copied; empty strings are ignored).  Returns
 * 0 (also for a short secret, see CQ_LOG_SECRET_MIN), -ENOMEM or -ENOSPC. */
int cq_log_add_secret(const char *secret);

/* The same, but a secret shorter than CQ_LOG_SECRET_MIN (registered,
 * redacted only as a whole value) returns CQ_LOG_SECRET_SHORT, so the
 * caller can warn about it.  0, CQ_LOG_SECRET_SHORT, -ENOMEM or -ENOSPC. */
int cq_log_add_secret_checked(const char *secret);

/* Warn (event=secret_short) that the secret read from file is shorter than
 * CQ_LOG_SECRET_MIN: logs redact it only as a whole value. */
void cq_log_secret_short(const char *file);

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

/* Format into buf the journal fields cq_log would send in native form, one
 * "NAME=value" per line (a value's own newlines stay as they are), for
 * tests.  Returns the number of fields. */
size_t cq_log_journal_format(char *buf, size_t size, cq_log_level level, const char *event, ...)
    __attribute__((sentinel));

/* The MESSAGE_ID (32 hex digits) of an event, or NULL when it has none.
 * status is the event's "status" value (job_done has an id only for the
 * statuses that dead-letter a job); may be NULL. */
const char *cq_log_message_id(const char *event, const char *status);

/* Redact registered secrets in s into buf (always NUL-terminated). */
void cq_log_redact(const char *s, char *buf, size_t size);

#endif
