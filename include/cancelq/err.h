/*
 * err.h - the one error record every pure module fills in.
 *
 * A failing function returns a negative errno-style value and, when the
 * caller passed a non-NULL cq_err, writes a short machine code ("bad_type",
 * "missing_field", ...) and a human message that names the culprit
 * ("params.reseller_id: must be an integer, got 3007255.5").  Messages never
 * contain secrets: modules that handle secrets name the file, not the value.
 */
#ifndef CANCELQ_ERR_H
#define CANCELQ_ERR_H

#include <stddef.h>

#define CQ_ERR_CODE_MAX 32
#define CQ_ERR_MSG_MAX 256

typedef struct cq_err {
    char code[CQ_ERR_CODE_MAX];
    char msg[CQ_ERR_MSG_MAX];
} cq_err;

/* Fill err (if not NULL) with code and a printf-style message; returns -rc
 * as given so callers can write `return cq_err_set(err, -EINVAL, ...)`. */
int cq_err_set(cq_err *err, int rc, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Reset err to empty strings (no-op on NULL). */
void cq_err_clear(cq_err *err);

#endif
