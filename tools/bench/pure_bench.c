/*
 * pure_bench.c - instructions per job in the pure modules (job, json_util,
 * envelope, adapters, log), for callgrind.
 *
 * Each job goes through what src/task.c does with it before and after the
 * HTTP call: envelope parse, job parse, adapter lookup, validate, derived
 * key, params hash, build + clear, classify of the documented success, the
 * redaction of the message and the job_done log line (to /dev/null), then
 * the clears.  The job texts are the three kinds tools/bench.sh enqueues.
 *
 *   sh tools/bench/pure_bench.sh [BUILD] [JOBS] [KIND]
 *
 * builds it, runs it under callgrind and prints Ir per job.  KIND 0, 1 or 2
 * makes every job an intronis, activeplatform or keliweb one; without it
 * the kinds alternate as in the bench.
 *
 * Only bench_jobs() is measured (callgrind --toggle-collect), so start-up
 * does not count; instruction counts repeat exactly from run to run.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cancelq/adapter.h"
#include "cancelq/envelope.h"
#include "cancelq/job.h"
#include "cancelq/log.h"

#define BENCH_KINDS 3
#define BENCH_JOB_TEXT_MAX 512
#define BENCH_DEFAULT_JOBS 3000 /* 1000 of each kind */
#define BENCH_ENQ_MS INT64_C(1764620000000)

typedef struct bench_kind {
    const char *provider;
    const char *action;
    cq_provider_conf conf;
    cq_response ok; /* the sandbox's documented success answer */
} bench_kind;

static bench_kind kinds[BENCH_KINDS] = {
    {"intronis", "cancel_partner", {.base_url = "http://127.0.0.1:8089"}, {.status = 303}},
    {"activeplatform",
     "delete_subscription",
     {.base_url = "http://127.0.0.1:8089"},
     {.status = 200}},
    {"keliweb", "cancel_service", {.base_url = "http://127.0.0.1:8089"}, {.status = 200}},
};

static const char keliweb_ok[] = "{\"result\":\"success\",\"serviceid\":\"2\",\"userid\":\"1\"}";

/* Job i, as tools/bench.sh writes it (i % 3 picks the kind). */
static size_t job_text(char *buf, size_t size, long i)
{
    const char *tag = "b";
    int n;

    if (i % 3 == 0)
        n = snprintf(buf, size,
                     "{\"id\":\"%s-%ld\",\"provider\":\"intronis\",\"action\":\"cancel_partner\","
                     "\"params\":{\"username\":\"%s-u%ld\",\"reason_id\":1,\"reason_note\":\"\"},"
                     "\"meta\":{\"enq_ms\":%" PRId64 "}}",
                     tag, i, tag, i, BENCH_ENQ_MS);
    else if (i % 3 == 1)
        n = snprintf(buf, size,
                     "{\"id\":\"%s-%ld\",\"provider\":\"activeplatform\","
                     "\"action\":\"delete_subscription\",\"params\":{\"reseller_id\":7,"
                     "\"subscription_id\":%ld},\"meta\":{\"enq_ms\":%" PRId64 "}}",
                     tag, i, i, BENCH_ENQ_MS);
    else
        n = snprintf(buf, size,
                     "{\"id\":\"%s-%ld\",\"provider\":\"keliweb\",\"action\":\"cancel_service\","
                     "\"params\":{\"serviceid\":%ld},\"meta\":{\"enq_ms\":%" PRId64 "}}",
                     tag, i, i, BENCH_ENQ_MS);
    return n > 0 && (size_t)n < size ? (size_t)n : 0;
}

/* One job's pure work; returns 0 when every step succeeded. */
static int one_job(const char *text, size_t len, const bench_kind *k, uint64_t *sink)
{
    char target[CQ_TARGET_MAX], hash[CQ_PARAMS_HASH_MAX], redacted[CQ_ERR_MSG_MAX];
    const cq_adapter *ad;
    const cq_action *act;
    cq_envelope env;
    cq_request req;
    cq_verdict v;
    cq_job job;
    cq_err err;
    int rc = -1;

    if (cq_envelope_parse(text, len, &env) != 0)
        return -1;
    cq_err_clear(&err);
    if (cq_job_parse(env.job, env.job_len, &job, &err) != 0)
        goto out;
    ad = cq_adapter_find(job.provider);
    act = cq_adapter_action(ad, job.action);
    if (act == NULL || act->validate(job.params, target, sizeof(target), &err) != 0 ||
        cq_job_derive_key(&job, target) != 0)
        goto out;
    cq_job_params_hash(job.params, hash, NULL);
    if (act->build(&k->conf, job.params, &req, &err) != 0)
        goto out;
    *sink += strlen(req.url) + req.body_len + (unsigned char)hash[0];
    cq_request_clear(&req);
    act->classify(&k->conf, job.params, &k->ok, &v);
    if (v.kind != CQ_V_SUCCEEDED)
        goto out;
    cq_log_redact(v.message, redacted, sizeof(redacted));
    cq_log(CQ_LOG_INFO, "job_done", "id", job.id, "provider", job.provider, "action", job.action,
           "status", "succeeded", "attempts", "1", "http_status",
           k->ok.status == 303 ? "303" : "200", "error", "", "message", redacted, "duration_ms",
           "12", NULL);
    rc = 0;
out:
    cq_job_clear(&job);
    cq_envelope_clear(&env);
    return rc;
}

/* The measured part: every job once. */
__attribute__((noinline)) static int bench_jobs(char **texts, const size_t *lens, const long *nums,
                                                long n, uint64_t *sink)
{
    int bad = 0;

    for (long i = 0; i < n; i++)
        bad += one_job(texts[i], lens[i], &kinds[nums[i] % 3], sink) != 0;
    return bad;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : BENCH_DEFAULT_JOBS;
    long kind = argc > 2 ? strtol(argv[2], NULL, 10) : -1;
    FILE *devnull = fopen("/dev/null", "w");
    char **texts;
    size_t *lens;
    long *nums;
    uint64_t sink = 0;
    int bad;

    if (n <= 0 || kind < -1 || kind >= BENCH_KINDS || devnull == NULL)
        return 2;
    kinds[2].ok.body = keliweb_ok;
    kinds[2].ok.body_len = strlen(keliweb_ok);
    kinds[0].ok.location = "http://127.0.0.1:8089/v1/partners/x";
    texts = calloc((size_t)n, sizeof(*texts));
    lens = calloc((size_t)n, sizeof(*lens));
    nums = calloc((size_t)n, sizeof(*nums));
    if (texts == NULL || lens == NULL || nums == NULL)
        return 2;
    for (long i = 0; i < n; i++) {
        nums[i] = kind < 0 ? i + 1 : (i + 1) * BENCH_KINDS + kind;
        texts[i] = malloc(BENCH_JOB_TEXT_MAX);
        if (texts[i] == NULL)
            return 2;
        lens[i] = job_text(texts[i], BENCH_JOB_TEXT_MAX, nums[i]);
    }
    /* the daemon has the three instances' tokens registered */
    cq_log_init(devnull, CQ_LOG_INFO, 0);
    if (cq_log_add_secret("sandbox-intronis-token") != 0 ||
        cq_log_add_secret("sandbox-activeplatform-token") != 0 ||
        cq_log_add_secret("sandbox-keliweb-token") != 0)
        return 2;
    bad = bench_jobs(texts, lens, nums, n, &sink);
    printf("jobs %ld failed %d (sink %" PRIu64 ")\n", n, bad, sink);
    for (long i = 0; i < n; i++)
        free(texts[i]);
    free(texts);
    free(lens);
    free(nums);
    cq_log_shutdown();
    fclose(devnull);
    return bad != 0;
}
