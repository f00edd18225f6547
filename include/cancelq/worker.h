/*
 * worker.h - cancelqd's engine: takes jobs from Redis, calls providers,
 * retries, publishes outcomes (docs/design.md §3-§8).  Everything runs on
 * one libuv loop; see worker.c for the job life cycle.
 */
#ifndef CANCELQ_WORKER_H
#define CANCELQ_WORKER_H

#include <uv.h>

#include "cancelq/config.h"
#include "cancelq/err.h"

typedef struct cq_worker cq_worker;

/* Build a worker on loop for cfg (borrowed: it must outlive the worker; on
 * SIGHUP the worker updates its limits in place, cq_config_reload).
 * Reads every provider's token and the Redis password; starts connecting.
 * Installs SIGTERM/SIGINT (graceful stop) and SIGHUP (re-read secrets and
 * limits) handlers on the loop.  Returns NULL with err filled. */
cq_worker *cq_worker_new(uv_loop_t *loop, cq_config *cfg, cq_err *err);

/* The exit status the program should end with once the loop has stopped:
 * 0 after a clean stop, 1 when the worker gave up (e.g. its id is held by
 * another live process). */
int cq_worker_exit_code(const cq_worker *w);

/* Free the worker after the loop stopped; runs the loop to close handles.
 * NULL is a no-op. */
void cq_worker_free(cq_worker *w);

#endif
