/*
 * job_check.c - check a job the way cancelqd does before it calls a
 * provider (src/task.c: task_validate), so that enqueue refuses what the
 * daemon would dead-letter as invalid, and requeue knows the idempotency key
 * the daemon will claim.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cancelq/adapter.h"
#include "ctl.h"

int ctl_job_check(const ctl *c, const char *text, size_t len, cq_job *job,
                  char idem_key[CTL_KEY_MAX], cq_err *err)
{
    const cq_provider_conf *pc;
    const cq_adapter *ad;
    const cq_action *act;
    char target[CQ_TARGET_MAX];
    int rc, n;

    memset(job, 0, sizeof(*job));
    idem_key[0] = '\0';
    rc = cq_job_parse(text, len, job, err);
    if (rc != 0)
        return rc;
    pc = cq_config_provider(c->cfg, job->provider);
    if (pc == NULL)
        return cq_err_set(err, -EINVAL, "unknown_provider",
                          "provider: '%s' is not a provider instance of %s", job->provider,
                          c->conf_path);
    ad = cq_adapter_find(pc->adapter);
    if (ad == NULL)
        return cq_err_set(err, -EINVAL, "unknown_provider", "provider: adapter '%s' unknown",
                          pc->adapter);
    act = cq_adapter_action(ad, job->action);
    if (act == NULL)
        return cq_err_set(err, -EINVAL, "unknown_action",
                          "action: '%s' is not an action of adapter '%s'", job->action, ad->name);
    rc = act->validate(job->params, target, sizeof(target), err);
    if (rc != 0)
        return rc;
    rc = cq_job_derive_key(job, target);
    if (rc != 0)
        return cq_err_set(err, rc, rc == -ENOMEM ? "no_memory" : "bad_value",
                          "idempotency_key: cannot be derived from the params");
    n = snprintf(idem_key, CTL_KEY_MAX, "%sidem:%s", c->k_prefix, job->idem_key);
    if (n < 0 || n >= CTL_KEY_MAX)
        return cq_err_set(err, -EINVAL, "bad_value", "idempotency_key: too long");
    return 0;
}
