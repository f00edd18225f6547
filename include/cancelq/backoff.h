/*
 * backoff.h - retry timing, pure (docs/design.md §8).
 *
 * Full jitter: delay = random(0, min(max, base * 2^attempt)).  The random
 * source is injected so tests are deterministic; cq_rand_default uses a
 * per-process xorshift seeded from the clock and pid (timing jitter needs no
 * cryptographic randomness).
 */
#ifndef CANCELQ_BACKOFF_H
#define CANCELQ_BACKOFF_H

#include <stdbool.h>
#include <stdint.h>

/* Returns a uniformly distributed 64-bit value. */
typedef uint64_t (*cq_rand_fn)(void *ctx);

uint64_t cq_rand_default(void *ctx);

/* Full-jitter delay in ms for the given attempt number (0 = the delay after
 * the first failure).  Overflow-safe for any attempt. */
uint64_t cq_backoff_delay(uint64_t base_ms, uint64_t max_ms, unsigned attempt, cq_rand_fn rnd,
                          void *ctx);

/* Parse a Retry-After header value: delta-seconds ("120") or an HTTP date
 * ("Wed, 21 Oct 2015 07:28:00 GMT", also RFC 850 and asctime forms) relative
 * to now_ms.  A date in the past gives 0.  Returns 0 or -EINVAL. */
int cq_retry_after_parse(const char *value, int64_t now_ms, uint64_t *delay_ms);

/* The delay before the next attempt: the provider's Retry-After when given
 * (capped at retry_after_max_ms), else the full-jitter backoff. */
uint64_t cq_retry_delay(bool has_retry_after, uint64_t retry_after_ms, uint64_t retry_after_max_ms,
                        uint64_t base_ms, uint64_t max_ms, unsigned attempt, cq_rand_fn rnd,
                        void *ctx);

/* True when a deadline (unix ms, 0 = none) has passed at now_ms. */
bool cq_deadline_passed(int64_t deadline_ms, int64_t now_ms);

#endif
