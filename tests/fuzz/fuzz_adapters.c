/*
 * fuzz_adapters.c - libFuzzer target for the adapters' answer
 * classification (make fuzz): classify and classify_check of every action
 * of every adapter, on an answer made from the input.
 *
 * Input: byte 0 picks the classifier (action index, and lookup or call);
 * byte 1 the transport outcome (and TLS reason); bytes 2-3 the HTTP status
 * (0..999); byte 4 flags (maybe_sent, XML format, which headers are
 * present); then the Retry-After, Location and Content-Type values, each
 * ended by '\n'; the rest is the body.  The body is a heap copy of exactly
 * its length plus the NUL the engine always adds, so ASan sees any read
 * past it.
 *
 * What every verdict must satisfy (what the worker and the outcome stream
 * rely on): a known kind; error and message terminated inside their
 * arrays, without control characters (they go into logs); an error code
 * unless the verdict is a success; Retry-After only on RETRY; no success
 * without an HTTP answer; a refused certificate is FAILED; a status lookup
 * never answers SUCCEEDED or CHECK.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cancelq/adapter.h"

#define HDR_MAX 511 /* the engine's HTTP_HDR_VALUE_MAX - 1 */

/* Valid params per adapter (the classifiers may read them). */
static const char *params_text(const char *adapter)
{
    if (strcmp(adapter, "intronis") == 0)
        return "{\"username\":\"fuzz\",\"reason_id\":1,\"reason_note\":\"\"}";
    if (strcmp(adapter, "activeplatform") == 0)
        return "{\"reseller_id\":7,\"subscription_id\":42,\"reason\":\"r\",\"comment\":\"c\"}";
    return "{\"serviceid\":12,\"type\":\"Immediate\",\"reason\":\"r\"}";
}

/* Take a '\n'-ended value off the input into out (NULL when absent). */
static const char *take_line(const uint8_t **p, size_t *n, char *out, bool present)
{
    const uint8_t *nl = memchr(*p, '\n', *n);
    size_t len = nl != NULL ? (size_t)(nl - *p) : *n;

    if (len > HDR_MAX)
        len = HDR_MAX;
    memcpy(out, *p, len);
    out[len] = '\0';
    if (nl != NULL) {
        *n -= (size_t)(nl - *p) + 1;
        *p = nl + 1;
    } else {
        *p += *n;
        *n = 0;
    }
    return present && strlen(out) == len ? out : NULL; /* no NUL inside a header */
}

static void check_text(const char *s, size_t size)
{
    size_t len = strnlen(s, size);

    if (len == size)
        abort(); /* not terminated */
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] == 0x7f)
            abort();
}

static void check_verdict(const cq_verdict *v, const cq_response *r, bool lookup)
{
    if ((unsigned)v->kind > CQ_V_NOT_DONE)
        abort();
    check_text(v->error, sizeof(v->error));
    check_text(v->message, sizeof(v->message));
    if (v->kind != CQ_V_SUCCEEDED && v->kind != CQ_V_ALREADY_DONE && v->error[0] == '\0')
        abort();
    if (v->has_retry_after && v->kind != CQ_V_RETRY)
        abort();
    if (r->transport != CQ_TR_OK && (v->kind == CQ_V_SUCCEEDED || v->kind == CQ_V_ALREADY_DONE))
        abort();
    if (r->transport == CQ_TR_TLS && v->kind != CQ_V_FAILED)
        abort();
    if (lookup && (v->kind == CQ_V_SUCCEEDED || v->kind == CQ_V_CHECK))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const cq_action *actions[32];
    static const char *adapter_of[32];
    static cJSON *params[32];
    static size_t nactions;
    char retry_after[HDR_MAX + 1], location[HDR_MAX + 1], ctype[HDR_MAX + 1];
    cq_provider_conf pc;
    cq_response r;
    cq_verdict v;
    const cq_action *act;
    const uint8_t *p = data;
    size_t n = size, i;
    uint8_t flags;
    bool lookup;
    char *body;

    if (nactions == 0) {
        size_t na = 0;
        const cq_adapter *const *all = cq_adapters(&na);

        for (size_t a = 0; a < na; a++)
            for (i = 0; i < all[a]->nactions && nactions < 32; i++) {
                actions[nactions] = &all[a]->actions[i];
                adapter_of[nactions] = all[a]->name;
                params[nactions] = cJSON_Parse(params_text(all[a]->name));
                nactions++;
            }
    }
    if (n < 5)
        return 0;
    i = (size_t)(p[0] >> 1) % nactions;
    act = actions[i];
    lookup = (p[0] & 1) != 0 && act->classify_check != NULL;
    memset(&r, 0, sizeof(r));
    r.transport = (cq_transport)(p[1] % (CQ_TR_TLS + 1));
    if (r.transport == CQ_TR_TLS)
        r.tls = (cq_tls_fail)((p[1] >> 4) % CQ_TLS_FAIL_COUNT);
    r.status = (long)(((unsigned)p[2] << 8 | p[3]) % 1000);
    flags = p[4];
    r.maybe_sent = (flags & 1) != 0;
    r.now_ms = 1700000000000;
    p += 5;
    n -= 5;
    r.retry_after = take_line(&p, &n, retry_after, (flags & 4) != 0);
    r.location = take_line(&p, &n, location, (flags & 8) != 0);
    r.content_type = take_line(&p, &n, ctype, (flags & 16) != 0);
    if (r.transport != CQ_TR_OK)
        r.transport_msg = (flags & 32) != 0 ? "SSL certificate problem: fuzz" : NULL;
    body = malloc(n + 1);
    if (body == NULL)
        return 0;
    memcpy(body, p, n);
    body[n] = '\0';
    r.body = body;
    r.body_len = n;

    memset(&pc, 0, sizeof(pc));
    pc.name = (char *)adapter_of[i];
    pc.adapter = (char *)adapter_of[i];
    pc.base_url = (char *)"https://provider.example";
    pc.format =
        (flags & 2) != 0 && strcmp(adapter_of[i], "intronis") == 0 ? CQ_FORMAT_XML : CQ_FORMAT_JSON;
    if (lookup)
        act->classify_check(&pc, params[i], &r, &v);
    else
        act->classify(&pc, params[i], &r, &v);
    check_verdict(&v, &r, lookup);
    free(body);
    return 0;
}
