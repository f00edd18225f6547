/*
 * log_int.h - what log.c and log_journal.c share (private to src/).
 */
#ifndef CANCELQ_LOG_INT_H
#define CANCELQ_LOG_INT_H

#include <stdarg.h>
#include <stddef.h>

#include "cancelq/log.h"

/* The event as one logfmt line in buf[size] (NUL-terminated, no newline),
 * values redacted, quoted and escaped, cut with "..." at the end.  form:
 * CQ_LOG_PLAIN (with the time field), CQ_LOG_PREFIX ("<N>" first), or
 * CQ_LOG_JOURNAL (neither: the journal's MESSAGE).  Returns the length. */
size_t cq_log_line(char *buf, size_t size, int form, cq_log_level level, const char *event,
                   va_list ap);

/* How many bytes at the end of s[0..len) are the first CQ_LOG_SECRET_MIN or
 * more bytes of a registered secret (0 when none): what a cut must drop. */
size_t cq_log_tail_secret(const char *s, size_t len);

/* Send the event to the journal in native form (log_journal.c).  0, or
 * -errno when it could not be sent (the caller writes the line instead). */
int cq_log_journal_send(cq_log_level level, const char *event, va_list ap);

#endif
