/*
 * job_check.h - the one check of a job against a deployment
 * (docs/design.md §2, §4), used by cancelqd before it claims a job and by
 * cancelqctl before it enqueues or requeues one, so both refuse the same
 * jobs with the same messages.
 *
 * Pure: the job text, the config and the adapters; no I/O.
 */
#ifndef CANCELQ_JOB_CHECK_H
#define CANCELQ_JOB_CHECK_H

#include <stddef.h>

#include "cancelq/adapter.h"
#include "cancelq/config.h"
#include "cancelq/err.h"
#include "cancelq/job.h"
#include "cancelq/keys.h"

typedef struct cq_checked {
    cq_job job;                          /* owned: release with cq_checked_clear */
    const cq_provider_conf *pc;          /* borrowed from the config */
    const cq_adapter *adapter;           /* static */
    const cq_action *action;             /* static */
    char hash[CQ_PARAMS_HASH_MAX];       /* params hash (cq_job_params_hash) */
    char hash_v1[CQ_PARAMS_HASH_V1_MAX]; /* the same in records before 0.2 */
    char *idem_key;                      /* owned: "{P}:idem:<key>" */
} cq_checked;

/* Parse text[0..len) (cq_job_parse), find the job's provider instance in
 * cfg, its adapter's action, validate the params (the adapter's validate),
 * derive the idempotency key when the job gives none, hash the params and
 * name the record key under keys.  0, or -errno with err naming the field
 * ("provider: 'x' is not a provider instance of this deployment").  On
 * error out holds what could be read (out->job.id may be set, out->pc and
 * out->action when they were found); release it with cq_checked_clear
 * either way. */
int cq_job_check(const cq_config *cfg, const cq_keys *keys, const char *text, size_t len,
                 cq_checked *out, cq_err *err);

/* Release what out owns; the struct is the caller's. */
void cq_checked_clear(cq_checked *out);

#endif
