/*
 * task_int.h - what task.c, task_end.c and task_call.c share: the task,
 * the set, and the moves each file makes for the others.  Not installed;
 * the rest of the daemon sees task.h only.
 */
#ifndef CQ_TASK_INT_H
#define CQ_TASK_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cancelq/envelope.h"
#include "cancelq/job_check.h"
#include "cancelq/task.h"

/* Added to a claim's lease: the time between the claim and Redis, clock
 * rates, and the write of the request's end. */
#define CQ_CLAIM_MARGIN_MS 5000

struct cq_task {
    cq_tasks *ts;
    cq_task *next, *prev; /* ts->head */
    cq_task_state state;
    cq_admit adm; /* admission by the provider instance */
    char handle[CQ_HANDLE_MAX];
    char *item; /* owned: the item as taken */
    size_t item_len;
    cq_envelope env;       /* attempts, history, owner token of earlier attempts */
    cq_checked ck;         /* the job, its provider, action, hash and record key */
    bool job_ok;           /* ck passed: the job is valid */
    cq_provider *prov;     /* NULL until the job named a known instance */
    cq_check check;        /* what the next (or current) request is */
    bool renewed;          /* the token was renewed for this request */
    unsigned tok_gen;      /* generation of the token the request carried */
    cq_verdict *ambiguous; /* owned: the answer a status lookup must confirm */
    bool claimed;          /* the claim was taken at least once */
    bool finishing;        /* ENDING with an outcome (not a give-back) */
    uint64_t claim_sent;   /* loop time the last claim went */
    uint64_t claim_until;  /* loop time the claim lapses (conservative) */
    uint64_t hold_ms;      /* a give-back keeps the claim this long (request may run on) */
    struct redo *redo;     /* owned: the end sent, to send again ([redis] wait_replicas) */
    bool redone;           /* the end was sent again */
};

/* An end as decided, kept while its write may have to be sent again. */
struct redo {
    cq_status status;
    long http;
    uint64_t delay_ms; /* a give-back's */
    char error[32];
    char message[CQ_ERR_MSG_MAX];
    char orig[3][64]; /* a duplicate's originals */
    bool dup;
};

struct cq_tasks {
    cq_tasks_conf c;
    cq_task *head;
    size_t count[CQ_TS_COUNT];
    size_t held;
    bool stopping;
    cq_task_stats stats;
};

/* task.c */
const char *task_job_id(const cq_task *t);
void task_free(cq_task *t);                        /* unlink and free, no state move */
void task_set_state(cq_task *t, cq_task_state to); /* the one place; FREED frees */
void task_stuck(cq_task *t);                       /* out of memory: leave it inflight */

/* task_end.c: the two ways a task ends (both move it to ENDING) */
void task_finish(cq_task *t, cq_status st, const char *error, const char *message, long http);
void task_finish_dup(cq_task *t, cq_status st, const char *error, const char *message, long http,
                     const cq_claim_result *dup);
void task_release(cq_task *t, uint64_t delay_ms);
void task_defer(cq_task *t, cq_defer why, uint64_t hint_ms);

/* task_call.c */
void task_claim(cq_task *t); /* claim (or extend) the job's key, then call */

#endif
