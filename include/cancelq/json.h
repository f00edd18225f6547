/*
 * json.h - strict reads of one field of a cJSON object, as the job parser
 * and the adapters validate their input: exact types, case-sensitive keys,
 * exact integers (cJSON's valueint saturates, so valuedouble is read), and
 * messages that name the field ("params.subscription_id: ...").
 *
 * Pure: no I/O.  cJSON ownership as stated in job.h.
 */
#ifndef CANCELQ_JSON_H
#define CANCELQ_JSON_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "cancelq/err.h"

/* Strict integer read of obj[key]: present, a number, an exact integer in
 * [min, max].  Returns 0, -ENOENT (absent), or -EINVAL; err names
 * "<prefix>.<key>". Shared by the adapters. */
int cq_json_get_int(const cJSON *obj, const char *key, int64_t min, int64_t max, int64_t *out,
                    const char *prefix, cq_err *err);

/* Strict string read of obj[key] (case-sensitive key): present, a string,
 * length in [minlen, maxlen].  *out is borrowed from obj. */
int cq_json_get_string(const cJSON *obj, const char *key, size_t minlen, size_t maxlen,
                       const char **out, const char *prefix, cq_err *err);

#endif
