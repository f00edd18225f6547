/*
 * util.h - small helpers shared by the sandbox modules: strict number
 * parsing, media-type comparison, clocks, random tokens and the "why"
 * record that carries a human reason for a refusal.
 *
 * Nothing here does I/O except sb_random_hex (getrandom) and the clocks.
 */
#ifndef SB_UTIL_H
#define SB_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#define SB_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* A refusal reason is a short sentence shown to the client and in the log;
 * longer messages are truncated, never overflowed. */
#define SB_WHY_MAX 256

typedef struct sb_why {
    char msg[SB_WHY_MAX];
} sb_why;

/* Write a printf-style reason into w (if not NULL); always returns -EINVAL so
 * validators can `return sb_why_set(w, ...)`. */
int sb_why_set(sb_why *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parse s[0..len) as a decimal integer in [min, max]: optional '-' (only when
 * min < 0), then 1..19 digits, nothing else (no spaces, no '+').  Returns 0
 * and stores *out, or -EINVAL. */
int sb_parse_int(const char *s, size_t len, int64_t min, int64_t max, int64_t *out);

/* True when item is a JSON number holding an exact integer in [min, max]
 * (cJSON's valueint saturates, so this reads valuedouble). */
bool sb_json_int(const cJSON *item, int64_t min, int64_t max, int64_t *out);

/* True when the header value's media type (the part before any ';', trimmed)
 * equals type case-insensitively.  With allow_params false the value must
 * be exactly the media type (surrounding blanks allowed). */
bool sb_media_type_is(const char *value, const char *type, bool allow_params);

/* True when s has only printable ASCII (0x21..0x7e) and is 1..max bytes. */
bool sb_is_token(const char *s, size_t max);

/* Case-insensitive ASCII prefix test; on success *rest points after it. */
bool sb_prefix_ci(const char *s, const char *prefix, const char **rest);

/* Wall clock in Unix milliseconds. */
int64_t sb_unix_ms(void);

/* Fill out with 2*nbytes lowercase hex digits from the kernel's CSPRNG and a
 * NUL; out must hold 2*nbytes+1 bytes.  Returns 0 or -errno. */
int sb_random_hex(char *out, size_t nbytes);

/* malloc'd copy of s[0..len) plus NUL, or NULL on OOM. */
char *sb_strndup(const char *s, size_t len);

#endif
