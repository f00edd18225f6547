/*
 * suggest.c - "did you mean": filter values and names checked against what
 * the deployment knows, with the closest known name suggested, as the
 * config loader does for keys.  A filter that matches nothing known is a
 * typo far more often than a question, and "no dead letters match" would
 * hide it.
 */
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cancelq/textdist.h"
#include "ctl.h"

#define NAME_CMP_MAX CQ_EDIT_NAME_MAX /* longer names are not compared (no suggestion) */
#define SUGGEST_MAX_DIST 3            /* farther than this is no typo */

const char *ctl_suggest(const char *value, const char *const *cands, size_t n)
{
    size_t len = strlen(value), limit = len / 3, best_d = SIZE_MAX;
    const char *best = NULL;

    if (limit < 1)
        limit = 1;
    if (limit > SUGGEST_MAX_DIST)
        limit = SUGGEST_MAX_DIST;
    if (len > NAME_CMP_MAX)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        size_t d;

        if (cands[i] == NULL || strlen(cands[i]) > NAME_CMP_MAX)
            continue;
        d = cq_edit_distance(value, cands[i]);
        if (d <= limit && d < best_d) {
            best_d = d;
            best = cands[i];
        }
    }
    /* "stop" for "stop_subscription": a word the name starts with */
    for (size_t i = 0; best == NULL && len >= 3 && i < n; i++)
        if (cands[i] != NULL && strncmp(cands[i], value, len) == 0)
            best = cands[i];
    return best;
}

void ctl_join(char *buf, size_t size, const char *const *cands, size_t n)
{
    size_t o = 0;

    if (size == 0)
        return;
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        int w = snprintf(buf + o, size - o, "%s%s", i > 0 ? ", " : "", cands[i]);

        if (w < 0 || (size_t)w >= size - o) {
            if (size > 4)
                memcpy(buf + size - 4, "...", 4);
            return;
        }
        o += (size_t)w;
    }
}

int ctl_check_pattern(const ctl *c, const char *option, const char *value, const char *what,
                      const char *const *cands, size_t n)
{
    const char *near;
    char list[512];

    for (size_t i = 0; i < n; i++)
        if (cands[i] != NULL && fnmatch(value, cands[i], 0) == 0)
            return 0;
    near = ctl_suggest(value, cands, n);
    ctl_join(list, sizeof(list), cands, n);
    fprintf(stderr, "%s: %s '", c->prog, option);
    out_cell(stderr, value, 0);
    fprintf(stderr, "' matches no %s%s%s%s; known: %s\n", what,
            near != NULL ? " (did you mean " : "", near != NULL ? near : "",
            near != NULL ? "?)" : "", n > 0 ? list : "(none)");
    return -1;
}
