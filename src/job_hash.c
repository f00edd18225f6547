/*
 * job_hash.c - the canonical params hash (cq_job_params_hash in job.h).
 *
 * The canonical form is the value printed as unformatted JSON with object
 * members sorted by key (byte order, then original position) at every level;
 * numbers are printed as the shortest text that reads back exactly (so 1e3
 * and 1000 agree, 0 and -0 agree, and two different doubles never do).
 *
 * The hash is SHA-256 of that text, truncated to 128 bits and written with
 * its algorithm ("s2:" + 32 hex digits), so a producer cannot craft
 * different params with the same hash (docs/design.md §7).  Records written
 * before it carry the 64-bit FNV-1a of the same text (16 hex digits, no
 * prefix): both are computed in one pass, and claim.lua compares an old
 * record with the old one.  The canonical text must therefore never
 * change; tests/unit/test_json_util.c keeps the original implementation
 * and compares.
 *
 * The text is produced into a sink that feeds FNV-1a as it goes and keeps
 * the bytes (on the stack up to SINK_STACK, then on the heap) for SHA-256.
 * Sorting uses an array on the stack for small objects, a heap array for
 * larger ones when it can be allocated, and otherwise a selection walk
 * giving the same order.
 *
 * Pure: no I/O, no globals.
 */
#include "cancelq/job.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cancelq/hash.h"
#include "json_util.h"

/* Canonical texts up to this size stay on the stack (real params: ~100 B). */
#define SINK_STACK 1024

/* Objects up to this many members are sorted for the params hash on the
 * stack (real params have 1..4); larger ones on the heap. */
#define CQ_HASH_SMALL_OBJECT 16

#define FNV64_OFFSET UINT64_C(0xcbf29ce484222325)
#define FNV64_PRIME UINT64_C(0x100000001b3)

/* Where the canonical text goes: FNV-1a as it is produced, and the bytes
 * (for SHA-256) unless `keep` is off. */
typedef struct sink {
    uint64_t fnv;
    bool keep;
    bool oom; /* the text outgrew the stack and no heap was left */
    char *buf;
    size_t len, cap;
    char small[SINK_STACK];
} sink;

typedef struct member {
    const char *key;
    size_t pos;
    const cJSON *item;
} member;

static void put_keep(sink *h, const void *data, size_t n)
{
    size_t cap;
    char *p;

    if (h->len + n > h->cap) {
        cap = h->cap * 2 > h->len + n ? h->cap * 2 : h->len + n;
        p = h->buf == h->small ? malloc(cap) : realloc(h->buf, cap);
        if (p == NULL) {
            h->oom = true;
            h->keep = false;
            return;
        }
        if (h->buf == h->small)
            memcpy(p, h->small, h->len);
        h->buf = p;
        h->cap = cap;
    }
    memcpy(h->buf + h->len, data, n);
    h->len += n;
}

static void fnv_bytes(sink *h, const void *data, size_t n)
{
    const unsigned char *p = data;

    for (size_t i = 0; i < n; i++) {
        h->fnv ^= p[i];
        h->fnv *= FNV64_PRIME;
    }
    if (h->keep)
        put_keep(h, data, n);
}

static void fnv_byte(sink *h, unsigned char c)
{
    h->fnv ^= c;
    h->fnv *= FNV64_PRIME;
    if (h->keep) {
        if (h->len < h->cap)
            h->buf[h->len++] = (char)c;
        else
            put_keep(h, &c, 1);
    }
}

static void fnv_str(sink *h, const char *s)
{
    fnv_bytes(h, s, strlen(s));
}

static void hash_string(sink *h, const char *s)
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

static void hash_value(sink *h, const cJSON *item);

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

static void hash_member(sink *h, const member *m, bool first)
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
static void hash_members_select(sink *h, const cJSON *obj, size_t n)
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
static void hash_sorted(sink *h, const cJSON *obj, member *ms, size_t n)
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
static void hash_object(sink *h, const cJSON *obj)
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

static void hash_value(sink *h, const cJSON *item)
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

static void fnv_hex(uint64_t h, char out[CQ_PARAMS_HASH_V1_MAX])
{
    static const char hex[] = "0123456789abcdef";

    /* "%016" PRIx64, digit by digit: this runs for every job */
    for (int i = 15; i >= 0; i--, h >>= 4)
        out[i] = hex[h & 0x0f];
    out[16] = '\0';
}

static void canonical(sink *h, const cJSON *params, bool keep)
{
    h->fnv = FNV64_OFFSET;
    h->keep = keep;
    h->oom = false;
    h->buf = h->small;
    h->len = 0;
    h->cap = sizeof(h->small);
    hash_value(h, params);
}

void cq_job_params_hash_v1(const cJSON *params, char out[CQ_PARAMS_HASH_V1_MAX])
{
    sink h;

    canonical(&h, params, false);
    fnv_hex(h.fnv, out);
}

int cq_job_params_hash(const cJSON *params, char out[CQ_PARAMS_HASH_MAX],
                       char v1[CQ_PARAMS_HASH_V1_MAX])
{
    sink h;
    int rc = -ENOMEM;

    canonical(&h, params, true);
    if (v1 != NULL)
        fnv_hex(h.fnv, v1);
    memcpy(out, CQ_PARAMS_HASH_TAG, sizeof(CQ_PARAMS_HASH_TAG) - 1);
    if (!h.oom)
        rc = cq_sha256_hex(h.buf, h.len, out + sizeof(CQ_PARAMS_HASH_TAG) - 1, 32);
    if (h.buf != h.small)
        free(h.buf);
    if (rc != 0)
        out[0] = '\0';
    return rc;
}
