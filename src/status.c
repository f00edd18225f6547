/*
 * status.c - names of the final statuses (see status.h).
 */
#include "cancelq/status.h"

#include <string.h>

static const char *const names[CQ_ST_COUNT] = {
    "succeeded", "already_done", "duplicate", "failed",
    "exhausted", "expired",      "invalid",   "conflict",
};

const char *cq_status_name(cq_status st)
{
    return (unsigned)st < CQ_ST_COUNT ? names[st] : "unknown";
}

cq_status cq_status_from_name(const char *name)
{
    int i;

    for (i = 0; name != NULL && i < CQ_ST_COUNT; i++) {
        if (strcmp(names[i], name) == 0)
            return (cq_status)i;
    }
    return CQ_ST_COUNT;
}

bool cq_status_ok(cq_status st)
{
    return st == CQ_ST_SUCCEEDED || st == CQ_ST_ALREADY_DONE || st == CQ_ST_DUPLICATE;
}

bool cq_status_marks_done(cq_status st)
{
    return st == CQ_ST_SUCCEEDED || st == CQ_ST_ALREADY_DONE;
}
