/*
 * status.h - the final statuses of a job (docs/design.md §5).
 *
 * Inside cancelq a status is always the enum; its name appears only at the
 * edges: the outcome stream, logs and metrics.
 */
#ifndef CANCELQ_STATUS_H
#define CANCELQ_STATUS_H

#include <stdbool.h>

/* In metrics order. */
typedef enum cq_status {
    CQ_ST_SUCCEEDED,
    CQ_ST_ALREADY_DONE,
    CQ_ST_DUPLICATE,
    CQ_ST_FAILED,
    CQ_ST_EXHAUSTED,
    CQ_ST_EXPIRED,
    CQ_ST_INVALID,
    CQ_ST_CONFLICT,
    CQ_ST_COUNT
} cq_status;

/* "succeeded", ...; "unknown" for anything else. */
const char *cq_status_name(cq_status st);

/* The status called name, or CQ_ST_COUNT when there is none. */
cq_status cq_status_from_name(const char *name);

/* The intent was carried out (by this job or an earlier one): succeeded,
 * already_done, duplicate.  Every other status writes a dead letter. */
bool cq_status_ok(cq_status st);

/* This job carried the intent out: its idempotency record becomes `done`
 * (succeeded, already_done). */
bool cq_status_marks_done(cq_status st);

#endif
