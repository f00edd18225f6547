/*
 * hash.h - the one cryptographic hash of cancelq: SHA-256 (libcrypto),
 * used for params hashes (idempotency), dead-letter entry ids and the
 * digest of jobs that were not JSON; and unguessable tokens (getrandom).
 */
#ifndef CANCELQ_HASH_H
#define CANCELQ_HASH_H

#include <stddef.h>

#define CQ_SHA256_LEN 32

/* SHA-256 of p[0..n) into out.  0, or -ENOMEM (libcrypto could not
 * allocate its context). */
int cq_sha256(const void *p, size_t n, unsigned char out[CQ_SHA256_LEN]);

/* The first nhex hex digits (lowercase) of SHA-256(p[0..n)) into
 * out[nhex + 1] (nhex <= 64).  0 or -ENOMEM. */
int cq_sha256_hex(const void *p, size_t n, char *out, size_t nhex);

/* nhex (<= 64) random lowercase hex digits from the kernel's CSPRNG
 * (getrandom) into out[nhex + 1]: owner tokens of 128 bits.  0 or -errno. */
int cq_random_hex(char *out, size_t nhex);

#endif
