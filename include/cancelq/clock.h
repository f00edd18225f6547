/*
 * clock.h - the one wall-clock helper.
 *
 * The wall clock is used only for what is written for people (outcome
 * times, log lines, dead-letter times) and for a job's own deadline.
 * Decisions shared between workers (heartbeats, leases, due times) use
 * Redis server time inside the scripts (docs/design.md §7), and local
 * timers use the loop's monotonic clock.
 */
#ifndef CANCELQ_CLOCK_H
#define CANCELQ_CLOCK_H

#include <stdint.h>

/* Milliseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t cq_clock_unix_ms(void);

#endif
