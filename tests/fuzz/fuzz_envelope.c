/*
 * fuzz_envelope.c - libFuzzer target for the envelope parser (make fuzz):
 * cq_envelope_parse() on the input as a queue item (a heap copy of exactly
 * its size, as Redis hands it over: ASan sees any read past the end).
 *
 * What must hold: a bare job comes back as itself; an envelope's job lies
 * in memory the envelope owns; the history never passes CQ_HISTORY_MAX;
 * and what cq_envelope_build() writes parses back to the same job text,
 * attempts, first_ms, tok, unknown flag and history (for a job text
 * without NUL bytes, which the job parser refuses before any retry).
 *
 * Times compare exactly up to CQ_FUZZ_EXACT_MS only: cJSON prints a double
 * with 15 significant digits whenever that reads back within its relative
 * epsilon, so 8819000003888889 comes back as 8819000003888890 (found by this
 * target; the seed fuzz_envelope/cjson-16-digits.json keeps it).  Real
 * times are 13-digit milliseconds (10^15 ms is the year 33658).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cancelq/envelope.h"

#define CQ_FUZZ_EXACT_MS 1000000000000000LL /* 10^15 */

/* a and b are the same time, or both too large to print exactly. */
static int same_ms(int64_t a, int64_t b)
{
    return a == b || (a > CQ_FUZZ_EXACT_MS && b > CQ_FUZZ_EXACT_MS);
}

static void same(const cq_envelope *a, const cq_envelope *b)
{
    if (a->job_len != b->job_len || memcmp(a->job, b->job, a->job_len) != 0 ||
        !same_ms(a->first_ms, b->first_ms) || strcmp(a->tok, b->tok) != 0 ||
        a->unknown != b->unknown || a->nhistory != b->nhistory)
        abort();
    if (a->attempts != b->attempts)
        abort();
    for (size_t i = 0; i < a->nhistory; i++)
        if (!same_ms(a->history[i].at_ms, b->history[i].at_ms) ||
            a->history[i].http_status != b->history[i].http_status ||
            strcmp(a->history[i].error, b->history[i].error) != 0)
            abort();
}

/* A producer's item: taken bare, an envelope in it unwrapped; nothing of
 * the envelope but its job is believed (attempts 0, no token, unknown). */
static void untrusted(const char *item, size_t size)
{
    cq_envelope env;
    int rc;

    cq_envelope_bare(item, size, &env);
    rc = cq_envelope_unwrap_job(&env);
    if (rc < 0)
        goto out;
    if (env.attempts != 0 || env.tok[0] != '\0' || env.nhistory != 0)
        abort();
    if (rc == 1 && (!env.unknown || env.owned == NULL || env.job != env.owned))
        abort();
    if (rc == 0 && (env.job != item || env.job_len != size))
        abort();
out:
    cq_envelope_clear(&env);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *item = malloc(size > 0 ? size : 1), *text;
    cq_envelope env, back;

    if (item == NULL)
        return 0;
    memcpy(item, data, size);
    if (cq_envelope_parse(item, size, &env) != 0)
        goto out;
    if (env.owned == NULL && (env.job != item || env.job_len != size))
        abort(); /* a bare job is the item itself */
    if (env.owned != NULL && env.job != env.owned)
        abort();
    if (env.nhistory > CQ_HISTORY_MAX || env.nhistory > env.hcap || env.attempts < 0)
        abort();
    if (memchr(env.job, '\0', env.job_len) == NULL) {
        text = cq_envelope_build(&env);
        if (text == NULL)
            abort();
        if (cq_envelope_parse(text, strlen(text), &back) == 0) {
            same(&env, &back);
            cq_envelope_clear(&back);
        }
        free(text);
    }
    cq_envelope_clear(&env);
out:
    untrusted(item, size);
    free(item);
    return 0;
}
