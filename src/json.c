/*
 * json.c - strict reads from cJSON trees (json.h).
 *
 * Pure: no I/O, no globals.  cJSON pitfalls handled here (PROVIDERS.md):
 * valueint saturates, so integers are read from valuedouble and checked to
 * be exact; keys are looked up case-sensitively.
 */
#include "cancelq/json.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "json_util.h"

/* Largest integer a double holds exactly together with all its neighbours
 * (2^53 - 1): 9007199254740993 parses to 9007199254740992, so from 2^53 on
 * the value read may not be the value written. */
#define CQ_JSON_MAX_EXACT 9007199254740991.0

/* The "<prefix>." part of a field name in messages; "" without a prefix. */
static const char *prefix_text(const char *prefix)
{
    return prefix != NULL ? prefix : "";
}

static const char *prefix_dot(const char *prefix)
{
    return prefix != NULL && prefix[0] != '\0' ? "." : "";
}

static const cJSON *get_member(const cJSON *obj, const char *key)
{
    if (!cJSON_IsObject(obj) || key == NULL)
        return NULL;
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

/* The number's text is only made for a message: formatting it costs more
 * than the rest of a successful read. */
static int not_an_integer(const char *pt, const char *pd, const char *key, double d, cq_err *err)
{
    char num[CQ_NUM_TEXT_MAX];

    cq_json_number_text(d, num);
    return cq_err_set(err, -EINVAL, "bad_type", "%s%s%s: must be an integer, got %s", pt, pd, key,
                      num);
}

static int beyond_exact(const char *pt, const char *pd, const char *key, double d, cq_err *err)
{
    char num[CQ_NUM_TEXT_MAX];

    cq_json_number_text(d, num);
    return cq_err_set(err, -EINVAL, "bad_value",
                      "%s%s%s: got %s, beyond 2^53 where integers are not exact", pt, pd, key, num);
}

static int out_of_range(const char *pt, const char *pd, const char *key, int64_t min, int64_t max,
                        double d, cq_err *err)
{
    char num[CQ_NUM_TEXT_MAX];

    cq_json_number_text(d, num);
    return cq_err_set(err, -EINVAL, "bad_value",
                      "%s%s%s: out of range %" PRId64 "..%" PRId64 ", got %s", pt, pd, key, min,
                      max, num);
}

int cq_json_get_int(const cJSON *obj, const char *key, int64_t min, int64_t max, int64_t *out,
                    const char *prefix, cq_err *err)
{
    const char *pt = prefix_text(prefix), *pd = prefix_dot(prefix);
    const cJSON *item = get_member(obj, key);
    double d;
    int64_t v;

    if (item == NULL)
        return cq_err_set(err, -ENOENT, "missing_field", "%s%s%s: missing", pt, pd, key);
    if (!cJSON_IsNumber(item))
        return cq_err_set(err, -EINVAL, "bad_type", "%s%s%s: must be an integer, got %s", pt, pd,
                          key, cq_json_type_name(item));
    d = item->valuedouble;
    if (!isfinite(d) || d != floor(d))
        return not_an_integer(pt, pd, key, d, err);
    if (fabs(d) > CQ_JSON_MAX_EXACT)
        return beyond_exact(pt, pd, key, d, err);
    v = (int64_t)d;
    if (v < min || v > max)
        return out_of_range(pt, pd, key, min, max, d, err);
    *out = v;
    return 0;
}

int cq_json_get_string(const cJSON *obj, const char *key, size_t minlen, size_t maxlen,
                       const char **out, const char *prefix, cq_err *err)
{
    const char *pt = prefix_text(prefix), *pd = prefix_dot(prefix);
    const cJSON *item = get_member(obj, key);
    size_t n;

    if (item == NULL)
        return cq_err_set(err, -ENOENT, "missing_field", "%s%s%s: missing", pt, pd, key);
    if (!cJSON_IsString(item) || item->valuestring == NULL)
        return cq_err_set(err, -EINVAL, "bad_type", "%s%s%s: must be a string, got %s", pt, pd, key,
                          cq_json_type_name(item));
    n = strlen(item->valuestring);
    if (n == 0 && minlen > 0)
        return cq_err_set(err, -EINVAL, "bad_value", "%s%s%s: must not be empty", pt, pd, key);
    if (n < minlen || n > maxlen)
        return cq_err_set(err, -EINVAL, "bad_value", "%s%s%s: must be %zu..%zu bytes, got %zu", pt,
                          pd, key, minlen, maxlen, n);
    *out = item->valuestring;
    return 0;
}
