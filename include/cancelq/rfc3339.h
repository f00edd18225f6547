/*
 * rfc3339.h - RFC 3339 UTC timestamps: job deadlines are read with it, the
 * finished_at of outcomes and the failed_at of dead-letter entries are
 * written with it.
 *
 * Pure: no I/O.
 */
#ifndef CANCELQ_RFC3339_H
#define CANCELQ_RFC3339_H

#include <stdint.h>

/* Parse an RFC 3339 UTC timestamp ("2026-11-30T00:00:00Z", optional
 * fraction, "Z" or +hh:mm offset) into unix ms.  0 or -EINVAL. */
int cq_parse_rfc3339(const char *s, int64_t *ms);

/* Format unix ms as RFC 3339 UTC with milliseconds into out[32]. */
void cq_format_rfc3339(int64_t ms, char out[32]);

#endif
