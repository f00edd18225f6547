/*
 * hmap.c - see hmap.h.
 */
#include "hmap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define SB_HMAP_INITIAL_BUCKETS 64

struct sb_hnode {
    sb_hnode *next;
    uint64_t hash;
    void *value;
    char key[]; /* NUL-terminated copy */
};

/* FNV-1a, started from a random seed. */
static uint64_t hash_key(uint64_t seed, const char *key)
{
    uint64_t h = 14695981039346656037ULL ^ seed;

    for (; *key != '\0'; key++) {
        h ^= (unsigned char)*key;
        h *= 1099511628211ULL;
    }
    return h ^ (h >> 29);
}

int sb_hmap_init(sb_hmap *m)
{
    memset(m, 0, sizeof(*m));
    /* an array of node pointers: sizeof(pointer) is meant */
    // NOLINTNEXTLINE(bugprone-sizeof-expression)
    m->buckets = calloc(SB_HMAP_INITIAL_BUCKETS, sizeof(*m->buckets));
    if (m->buckets == NULL)
        return -ENOMEM;
    m->nbuckets = SB_HMAP_INITIAL_BUCKETS;
    if (getrandom(&m->seed, sizeof(m->seed), GRND_NONBLOCK) != sizeof(m->seed))
        m->seed = (uint64_t)(uintptr_t)m; /* predictable, but only weakens DoS resistance */
    return 0;
}

void sb_hmap_clear(sb_hmap *m, sb_hmap_free_fn free_value)
{
    size_t i;
    sb_hnode *n, *next;

    for (i = 0; i < m->nbuckets; i++) {
        for (n = m->buckets[i]; n != NULL; n = next) {
            next = n->next;
            if (free_value != NULL)
                free_value(n->value);
            free(n);
        }
        m->buckets[i] = NULL;
    }
    m->count = 0;
}

void sb_hmap_destroy(sb_hmap *m, sb_hmap_free_fn free_value)
{
    if (m->buckets == NULL)
        return;
    sb_hmap_clear(m, free_value);
    free(m->buckets);
    m->buckets = NULL;
    m->nbuckets = 0;
}

void *sb_hmap_get(const sb_hmap *m, const char *key)
{
    uint64_t h = hash_key(m->seed, key);
    const sb_hnode *n;

    for (n = m->buckets[h & (m->nbuckets - 1)]; n != NULL; n = n->next) {
        if (n->hash == h && strcmp(n->key, key) == 0)
            return n->value;
    }
    return NULL;
}

/* Double the bucket array; on OOM the map stays as it was (just slower). */
static void grow(sb_hmap *m)
{
    size_t nb = m->nbuckets * 2, i;
    // NOLINTNEXTLINE(bugprone-sizeof-expression): an array of node pointers
    sb_hnode **b = calloc(nb, sizeof(*b));
    sb_hnode *n, *next;

    if (b == NULL)
        return;
    for (i = 0; i < m->nbuckets; i++) {
        for (n = m->buckets[i]; n != NULL; n = next) {
            next = n->next;
            n->next = b[n->hash & (nb - 1)];
            b[n->hash & (nb - 1)] = n;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = nb;
}

int sb_hmap_put(sb_hmap *m, const char *key, void *value)
{
    size_t klen = strlen(key);
    sb_hnode *n = malloc(sizeof(*n) + klen + 1);
    size_t slot;

    if (n == NULL)
        return -ENOMEM;
    n->hash = hash_key(m->seed, key);
    n->value = value;
    memcpy(n->key, key, klen + 1);
    if (m->count >= m->nbuckets)
        grow(m);
    slot = n->hash & (m->nbuckets - 1);
    n->next = m->buckets[slot];
    m->buckets[slot] = n;
    m->count++;
    return 0;
}

void *sb_hmap_remove(sb_hmap *m, const char *key)
{
    uint64_t h = hash_key(m->seed, key);
    sb_hnode **pp, *n;
    void *value;

    for (pp = &m->buckets[h & (m->nbuckets - 1)]; (n = *pp) != NULL; pp = &n->next) {
        if (n->hash == h && strcmp(n->key, key) == 0) {
            *pp = n->next;
            value = n->value;
            free(n);
            m->count--;
            return value;
        }
    }
    return NULL;
}

void sb_hmap_foreach(const sb_hmap *m, void (*fn)(const char *key, void *value, void *arg),
                     void *arg)
{
    size_t i;
    const sb_hnode *n;

    for (i = 0; i < m->nbuckets; i++) {
        for (n = m->buckets[i]; n != NULL; n = n->next)
            fn(n->key, n->value, arg);
    }
}

size_t sb_hmap_filter(sb_hmap *m, bool (*keep)(const char *key, void *value, void *arg), void *arg,
                      sb_hmap_free_fn free_value)
{
    size_t i, removed = 0;
    sb_hnode **pp, *n;

    for (i = 0; i < m->nbuckets; i++) {
        pp = &m->buckets[i];
        while ((n = *pp) != NULL) {
            if (keep(n->key, n->value, arg)) {
                pp = &n->next;
                continue;
            }
            *pp = n->next;
            if (free_value != NULL)
                free_value(n->value);
            free(n);
            m->count--;
            removed++;
        }
    }
    return removed;
}
