/*
 * job_check.c - a job checked against a deployment (see job_check.h).
 */
#include "cancelq/job_check.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int cq_job_check(const cq_config *cfg, const cq_keys *keys, const char *text, size_t len,
                 cq_checked *out, cq_err *err)
{
    char target[CQ_TARGET_MAX], key[CQ_KEY_MAX];
    int rc;

    memset(out, 0, sizeof(*out));
    rc = cq_job_parse(text, len, &out->job, err);
    if (rc != 0)
        return rc;
    out->pc = cq_config_provider(cfg, out->job.provider);
    out->adapter = out->pc != NULL ? cq_adapter_find(out->pc->adapter) : NULL;
    if (out->adapter == NULL)
        return cq_err_set(err, -EINVAL, "unknown_provider",
                          "provider: '%s' is not a provider instance of this deployment",
                          out->job.provider);
    out->action = cq_adapter_action(out->adapter, out->job.action);
    if (out->action == NULL)
        return cq_err_set(err, -EINVAL, "unknown_action",
                          "action: '%s' is not an action of adapter '%s'", out->job.action,
                          out->adapter->name);
    rc = out->action->validate(out->job.params, target, sizeof(target), err);
    if (rc != 0)
        return rc;
    rc = cq_job_derive_key(&out->job, target);
    if (rc != 0)
        return cq_err_set(err, rc, rc == -ENOMEM ? "no_memory" : "bad_value",
                          "idempotency_key: cannot be derived from the params");
    if (cq_job_params_hash(out->job.params, out->hash, out->hash_v1) != 0)
        return cq_err_set(err, -ENOMEM, "no_memory", "out of memory");
    if (cq_keys_idem(keys, out->job.idem_key, key, sizeof(key)) != 0)
        return cq_err_set(err, -EINVAL, "bad_value", "idempotency_key: too long");
    out->idem_key = strdup(key);
    if (out->idem_key == NULL)
        return cq_err_set(err, -ENOMEM, "no_memory", "out of memory");
    return 0;
}

void cq_checked_clear(cq_checked *out)
{
    cq_job_clear(&out->job);
    free(out->idem_key);
    out->idem_key = NULL;
}
