/*
 * fuzz_job.c - libFuzzer target for the job parser (make fuzz).
 *
 * The input is copied into a heap buffer of exactly its size, as Redis hands
 * it over (no terminator), so ASan catches any read past the end.  A job that
 * parses is also hashed, given a derived key and turned into a dead-letter
 * entry; every input also goes through cq_dead_entry as raw text.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cancelq/job.h"

static void check_dead_entry(const char *raw, size_t len, const cq_job *job)
{
    cq_attempt hist[2] = {{1795341600123, 503, "http_5xx"}, {0, 0, ""}};
    char *entry = cq_dead_entry(raw, len, "invalid", "bad_json", job->id, 2, hist, 2, 1795341660500,
                                job->provider);
    cJSON *back;

    if (entry == NULL)
        return;
    /* the entry must itself be valid JSON */
    back = cJSON_Parse(entry);
    if (back == NULL)
        abort();
    cJSON_Delete(back);
    free(entry);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size > 0 ? size : 1);
    char hash[CQ_PARAMS_HASH_MAX];
    cq_job job;
    cq_err err;

    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    if (cq_job_parse(buf, size, &job, &err) == 0) {
        if (job.id == NULL || job.provider == NULL || job.action == NULL ||
            !cJSON_IsObject(job.params))
            abort();
        cq_job_params_hash(job.params, hash, NULL);
        if (strlen(hash) != 16)
            abort();
        cq_job_derive_key(&job, "fuzz-target");
        if (job.idem_key == NULL)
            abort();
    } else if (err.code[0] == '\0' || err.msg[0] == '\0') {
        abort(); /* every failure names its reason */
    }
    check_dead_entry(buf, size, &job);
    cq_job_clear(&job);
    free(buf);
    return 0;
}
