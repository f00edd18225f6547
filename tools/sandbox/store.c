/*
 * store.c - see store.h.
 */
#include "store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* First allocation of a target's timestamp ring; doubled up to SB_TIMES_MAX,
 * so the many targets a benchmark touches once stay small. */
#define SB_TIMES_INITIAL 4

typedef struct sb_queue {
    sb_script *head, *tail;
    uint32_t len;
} sb_queue;

struct sb_store {
    sb_hmap targets;
    sb_queue wild[SB_PROV_ALL + 1]; /* per provider, then "every provider" */
};

void sb_script_free(sb_script *sc)
{
    if (sc == NULL)
        return;
    free(sc->body);
    free(sc);
}

static void queue_clear(sb_script **head, sb_script **tail, uint32_t *len)
{
    sb_script *sc, *next;

    for (sc = *head; sc != NULL; sc = next) {
        next = sc->next;
        sb_script_free(sc);
    }
    *head = *tail = NULL;
    *len = 0;
}

static void queue_push(sb_script **head, sb_script **tail, uint32_t *len, sb_script *sc)
{
    sc->next = NULL;
    if (*tail != NULL)
        (*tail)->next = sc;
    else
        *head = sc;
    *tail = sc;
    (*len)++;
}

static sb_script *queue_pop(sb_script **head, sb_script **tail, uint32_t *len)
{
    sb_script *sc = *head;

    if (sc == NULL)
        return NULL;
    *head = sc->next;
    if (*head == NULL)
        *tail = NULL;
    (*len)--;
    sc->next = NULL;
    return sc;
}

static void target_free(void *value)
{
    sb_target *t = value;

    if (t == NULL)
        return;
    queue_clear(&t->script_head, &t->script_tail, &t->script_len);
    free(t->times);
    free(t);
}

sb_store *sb_store_new(void)
{
    sb_store *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    if (sb_hmap_init(&s->targets) != 0) {
        free(s);
        return NULL;
    }
    return s;
}

void sb_store_reset(sb_store *s)
{
    size_t i;

    sb_hmap_clear(&s->targets, target_free);
    for (i = 0; i < SB_ARRAY_LEN(s->wild); i++)
        queue_clear(&s->wild[i].head, &s->wild[i].tail, &s->wild[i].len);
}

void sb_store_free(sb_store *s)
{
    if (s == NULL)
        return;
    sb_store_reset(s);
    sb_hmap_destroy(&s->targets, target_free);
    free(s);
}

sb_target *sb_store_find(sb_store *s, const char *key)
{
    return sb_hmap_get(&s->targets, key);
}

int sb_store_get(sb_store *s, const char *key, sb_prov_id p, sb_target **out)
{
    sb_target *t = sb_hmap_get(&s->targets, key);

    if (t != NULL) {
        *out = t;
        return 0;
    }
    if (s->targets.count >= SB_TARGETS_MAX)
        return -ENOSPC;
    t = calloc(1, sizeof(*t));
    if (t == NULL)
        return -ENOMEM;
    t->provider = p;
    t->state = SB_ST_ACTIVE;
    if (sb_hmap_put(&s->targets, key, t) != 0) {
        free(t);
        return -ENOMEM;
    }
    *out = t;
    return 0;
}

size_t sb_store_count(const sb_store *s)
{
    return s->targets.count;
}

struct foreach_arg {
    void (*fn)(const char *key, sb_target *t, void *arg);
    void *arg;
};

static void foreach_one(const char *key, void *value, void *arg)
{
    struct foreach_arg *fa = arg;

    fa->fn(key, value, fa->arg);
}

void sb_store_foreach(sb_store *s, void (*fn)(const char *key, sb_target *t, void *arg), void *arg)
{
    struct foreach_arg fa = {fn, arg};

    sb_hmap_foreach(&s->targets, foreach_one, &fa);
}

/* Make room in the ring for one more time; false when memory ran out (the
 * time is then not remembered, counters still are). */
static bool times_reserve(sb_target *t)
{
    size_t ncap;
    int64_t *nt;

    if (t->times_len < t->times_cap || t->times_cap == SB_TIMES_MAX)
        return true;
    /* the ring has not wrapped yet while it can still grow: head is 0 */
    ncap = t->times_cap == 0 ? SB_TIMES_INITIAL : (size_t)t->times_cap * 2;
    nt = realloc(t->times, ncap * sizeof(*nt));
    if (nt == NULL)
        return false;
    t->times = nt;
    t->times_cap = (uint8_t)ncap;
    return true;
}

void sb_target_record(sb_target *t, bool cancel, int64_t unix_ms)
{
    if (!cancel) {
        t->checks++;
        return;
    }
    t->cancels++;
    if (!times_reserve(t))
        return;
    if (t->times_len < t->times_cap) {
        t->times[(t->times_head + t->times_len) % t->times_cap] = unix_ms;
        t->times_len++;
    } else {
        t->times[t->times_head] = unix_ms;
        t->times_head = (uint8_t)((t->times_head + 1) % t->times_cap);
    }
}

size_t sb_target_times(const sb_target *t, int64_t *out)
{
    size_t i;

    for (i = 0; i < t->times_len; i++)
        out[i] = t->times[(t->times_head + i) % t->times_cap];
    return t->times_len;
}

int sb_store_script_push(sb_store *s, sb_target *t, sb_prov_id p, sb_script *sc)
{
    sb_queue *q = &s->wild[p];

    if (t != NULL) {
        if (t->script_len >= SB_SCRIPT_QUEUE_MAX)
            return -ENOSPC;
        queue_push(&t->script_head, &t->script_tail, &t->script_len, sc);
        return 0;
    }
    if (q->len >= SB_SCRIPT_QUEUE_MAX)
        return -ENOSPC;
    queue_push(&q->head, &q->tail, &q->len, sc);
    return 0;
}

sb_script *sb_store_script_pop(sb_store *s, sb_target *t)
{
    sb_queue *q;

    if (t->script_head != NULL)
        return queue_pop(&t->script_head, &t->script_tail, &t->script_len);
    q = &s->wild[t->provider];
    if (q->head != NULL)
        return queue_pop(&q->head, &q->tail, &q->len);
    q = &s->wild[SB_PROV_ALL];
    return queue_pop(&q->head, &q->tail, &q->len);
}

uint32_t sb_store_script_len(const sb_store *s, const sb_target *t, sb_prov_id p)
{
    return t != NULL ? t->script_len : s->wild[p].len;
}

void sb_store_script_clear(sb_store *s, sb_target *t, sb_prov_id p)
{
    sb_queue *q = &s->wild[p];

    if (t != NULL)
        queue_clear(&t->script_head, &t->script_tail, &t->script_len);
    else
        queue_clear(&q->head, &q->tail, &q->len);
}
