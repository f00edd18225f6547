/*
 * job_hash.c - the canonical params hash (cq_job_params_hash in job.h).
 *
 * The canonical form is the value printed as unformatted JSON with object
 * members sorted by key (byte order, then original position) at every level;
 * numbers are printed as the shortest text that reads back exactly (so 1e3
 * and 1000 agree, 0 and -0 agree, and two different doubles never do).  The
 * text is fed to FNV-1a as it is produced instead of being built with
 * cJSON_Duplicate + cJSON_Print: the function cannot report failure, so it
 * must not depend on allocating.  Sorting uses an array on the stack for
 * small objects, a heap array for larger ones when it can be allocated, and
 * otherwise a selection walk giving the same order.  The hash is compared
 * with idempotency records written by earlier versions, so the canonical
 * text must never change; tests/unit/test_json_util.c keeps the original
 * implementation and compares.
 *
 * Pure: no I/O, no globals.
 */
#include "cancelq/job.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_util.h"

/* Objects up to this many members are sorted for the params hash on the
 * stack (real params have 1..4); larger ones on the heap. */
#define CQ_HASH_SMALL_OBJECT 16

#define FNV64_OFFSET UINT64_C(0xcbf29ce484222325)
#define FNV64_PRIME UINT64_C(0x100000001b3)

typedef struct member {
    const char *key;
    size_t pos;
    const cJSON *item;
} member;

static void fnv_bytes(uint64_t *h, const void *data, size_t n)
{
    const unsigned char *p = data;

    for (size_t i = 0; i < n; i++) {
        *h ^= p[i];
        *h *= FNV64_PRIME;
    }
}

static void fnv_byte(uint64_t *h, unsigned char c)
{
    *h ^= c;
    *h *= FNV64_PRIME;
}

static void fnv_str(uint64_t *h, const char *s)
{
    fnv_bytes(h, s, strlen(s));
}

static void hash_string(uint64_t *h, const char *s)
{
    char esc[8];

    fnv_byte(h, '"');
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\') {
            fnv_byte(h, '\\');
            fnv_byte(h, *p);
        } else if (*p < 0x20) {
            snprintf(esc, sizeof(esc), "\\u%04x", *p);
            fnv_str(h, esc);
        } else {
            fnv_byte(h, *p);
        }
    }
    fnv_byte(h, '"');
}

static void hash_value(uint64_t *h, const cJSON *item);

static int member_cmp(const member *a, const member *b)
{
    int c = strcmp(a->key, b->key);

    if (c != 0)
        return c;
    return a->pos < b->pos ? -1 : a->pos > b->pos;
}

static int member_qsort_cmp(const void *a, const void *b)
{
    return member_cmp(a, b);
}

static void hash_member(uint64_t *h, const member *m, bool first)
{
    if (!first)
        fnv_byte(h, ',');
    hash_string(h, m->key);
    fnv_byte(h, ':');
    hash_value(h, m->item);
}

static member member_at(const cJSON *child, size_t pos)
{
    member m = {child->string ? child->string : "", pos, child};
    return m;
}

/* Without memory: repeatedly pick the smallest member after the previous. */
static void hash_members_select(uint64_t *h, const cJSON *obj, size_t n)
{
    member prev = {"", 0, NULL}, best = {"", 0, NULL}, cur;
    bool have_prev = false;
    const cJSON *c;
    size_t pos;

    for (size_t k = 0; k < n; k++) {
        best.item = NULL;
        for (c = obj->child, pos = 0; c != NULL; c = c->next, pos++) {
            cur = member_at(c, pos);
            if (have_prev && member_cmp(&cur, &prev) <= 0)
                continue;
            if (best.item == NULL || member_cmp(&cur, &best) < 0)
                best = cur;
        }
        hash_member(h, &best, k == 0);
        prev = best;
        have_prev = true;
    }
}

/* Sort ms[0..n) by member_cmp.  The order is total (positions differ), so
 * this gives exactly the order qsort gives; insertion sort is the cheaper
 * one for the few members of a real params object. */
static void sort_small(member *ms, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        member m = ms[i];
        size_t j = i;

        for (; j > 0 && member_cmp(&ms[j - 1], &m) > 0; j--)
            ms[j] = ms[j - 1];
        ms[j] = m;
    }
}

/* Members sorted in ms (of n), hashed in that order. */
static void hash_sorted(uint64_t *h, const cJSON *obj, member *ms, size_t n)
{
    size_t pos = 0;

    for (const cJSON *c = obj->child; c != NULL; c = c->next, pos++)
        ms[pos] = member_at(c, pos);
    if (n <= CQ_HASH_SMALL_OBJECT)
        sort_small(ms, n);
    else
        qsort(ms, n, sizeof(*ms), member_qsort_cmp);
    for (size_t i = 0; i < n; i++)
        hash_member(h, &ms[i], i == 0);
}

/* Small objects sort on the stack; larger ones in a heap array when one
 * can be allocated, else by the selection walk (same order either way). */
static void hash_object(uint64_t *h, const cJSON *obj)
{
    member small[CQ_HASH_SMALL_OBJECT];
    size_t n = 0;
    member *ms;
    const cJSON *c;

    for (c = obj->child; c != NULL; c = c->next)
        n++;
    fnv_byte(h, '{');
    if (n <= CQ_HASH_SMALL_OBJECT) {
        hash_sorted(h, obj, small, n);
    } else {
        ms = calloc(n, sizeof(*ms));
        if (ms == NULL) {
            hash_members_select(h, obj, n);
        } else {
            hash_sorted(h, obj, ms, n);
            free(ms);
        }
    }
    fnv_byte(h, '}');
}

static void hash_value(uint64_t *h, const cJSON *item)
{
    char num[CQ_NUM_TEXT_MAX];
    size_t n;

    if (cJSON_IsObject(item)) {
        hash_object(h, item);
    } else if (cJSON_IsArray(item)) {
        fnv_byte(h, '[');
        for (const cJSON *c = item->child; c != NULL; c = c->next) {
            hash_value(h, c);
            if (c->next != NULL)
                fnv_byte(h, ',');
        }
        fnv_byte(h, ']');
    } else if (cJSON_IsString(item)) {
        hash_string(h, item->valuestring);
    } else if (cJSON_IsNumber(item) && isfinite(item->valuedouble)) {
        n = cq_json_number_text(item->valuedouble, num);
        fnv_bytes(h, num, n);
    } else if (cJSON_IsTrue(item)) {
        fnv_str(h, "true");
    } else if (cJSON_IsFalse(item)) {
        fnv_str(h, "false");
    } else {
        fnv_str(h, "null"); /* null, NULL, non-finite numbers (as cJSON prints them) */
    }
}

void cq_job_params_hash(const cJSON *params, char out[17])
{
    uint64_t h = FNV64_OFFSET;

    static const char hex[] = "0123456789abcdef";

    hash_value(&h, params);
    /* "%016" PRIx64, digit by digit: this runs for every job */
    for (int i = 15; i >= 0; i--, h >>= 4)
        out[i] = hex[h & 0x0f];
    out[16] = '\0';
}
