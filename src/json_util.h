/*
 * json_util.h - private helpers of the pure modules in src/ (job.c,
 * job_hash.c, json.c and the adapters); not part of the public API in
 * include/.  Text helpers are in json_util.c, the pre-scan in
 * json_prescan.c.  The exported readers are cancelq/json.h, timestamps
 * cancelq/rfc3339.h, the params hash cancelq/job.h.
 */
#ifndef CANCELQ_JSON_UTIL_H
#define CANCELQ_JSON_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "cancelq/err.h"

/* Longest text cq_json_number_text writes, NUL included. */
#define CQ_NUM_TEXT_MAX 32

/* "string", "number", "object", "array", "boolean", "null" or "invalid". */
const char *cq_json_type_name(const cJSON *item);

/* Shortest "%.15g"/"%.17g" text that reads back as exactly d; -0 is "0";
 * non-finite values are "inf", "-inf" or "nan" (messages only).  Returns
 * the length.  The params hash is built from this text: it must never
 * change for any input (idempotency records written earlier compare
 * against it). */
size_t cq_json_number_text(double d, char out[CQ_NUM_TEXT_MAX]);

/* Longest int64 in decimal with its NUL: 19 digits, a sign. */
#define CQ_INT_TEXT_MAX 21

/* v in decimal, as "%" PRId64 prints it, into out[CQ_INT_TEXT_MAX];
 * returns the length.  No snprintf: it is on the per-job path. */
size_t cq_int_text(int64_t v, char out[CQ_INT_TEXT_MAX]);

/* What snprintf(dst, size, "%s", src) does for src of length n, without
 * format parsing: copies what fits, always terminates (size > 0), and
 * returns n, so n >= size means it was cut. */
size_t cq_text_copy(char *dst, size_t size, const char *src, size_t n);

/* Length of the valid UTF-8 sequence at p[0..n) (1..4), 0 when invalid
 * (overlong forms, surrogates and code points beyond U+10FFFF included). */
size_t cq_utf8_seq_len(const unsigned char *p, size_t n);

/* A heap copy of s[0..n) made valid UTF-8 without NUL bytes: each invalid
 * byte or NUL becomes U+FFFD.  Caller frees; NULL on ENOMEM. */
char *cq_utf8_sanitize(const char *s, size_t n);

/* Check raw JSON text before cJSON sees it: no NUL byte, valid UTF-8, no
 * control character outside JSON whitespace, numbers in RFC 8259 form,
 * "\u" followed by four hex digits and not "\u0000" (cJSON would cut the
 * string short), and container nesting (counted outside strings, the top
 * level being 1) at most max_depth, so cJSON never recurses deeply.  Text
 * that passes this and cJSON is strict JSON.
 * Returns 0, or -EINVAL with err code "bad_json" or "too_deep". */
int cq_json_prescan(const char *buf, size_t len, int max_depth, cq_err *err);

#endif
