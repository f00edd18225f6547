/*
 * hmap.h - a string-keyed hash table (separate chaining, power-of-two
 * buckets, doubled at load factor 1) used for target state and tokens, so
 * every per-request lookup is O(1) whatever the number of targets.
 *
 * Ownership: the map copies keys; values are the caller's, except that
 * sb_hmap_clear/sb_hmap_destroy/sb_hmap_filter pass removed values to the
 * free_value function given to them (which may be NULL).
 */
#ifndef SB_HMAP_H
#define SB_HMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sb_hnode sb_hnode;

typedef struct sb_hmap {
    sb_hnode **buckets;
    size_t nbuckets; /* a power of two */
    size_t count;
    uint64_t seed; /* per-map random seed so peers cannot aim collisions */
} sb_hmap;

typedef void (*sb_hmap_free_fn)(void *value);

/* Prepare an empty map.  Returns 0 or -ENOMEM. */
int sb_hmap_init(sb_hmap *m);

/* Free every node (values through free_value) and the bucket array. */
void sb_hmap_destroy(sb_hmap *m, sb_hmap_free_fn free_value);

/* Remove every entry, keeping the map usable. */
void sb_hmap_clear(sb_hmap *m, sb_hmap_free_fn free_value);

/* The value stored under key, or NULL. */
void *sb_hmap_get(const sb_hmap *m, const char *key);

/* Store value under key, which must not be present.  Returns 0 or -ENOMEM. */
int sb_hmap_put(sb_hmap *m, const char *key, void *value);

/* Remove key and return its value (NULL when absent); the caller owns it. */
void *sb_hmap_remove(sb_hmap *m, const char *key);

/* Call fn for each entry in no particular order; fn must not modify m. */
void sb_hmap_foreach(const sb_hmap *m, void (*fn)(const char *key, void *value, void *arg),
                     void *arg);

/* Remove (and free through free_value) every entry for which keep returns
 * false.  Returns the number removed. */
size_t sb_hmap_filter(sb_hmap *m, bool (*keep)(const char *key, void *value, void *arg), void *arg,
                      sb_hmap_free_fn free_value);

#endif
