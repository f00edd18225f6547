/*
 * adapter.c - the adapter registry and what every adapter shares: the
 * classification rows common to all providers, and verdicts.  Building the
 * request itself (headers, form fields, URLs) is request.c.
 *
 * Pure: no I/O.
 */
#include "cancelq/adapter.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cancelq/backoff.h"
#include "cancelq/tls.h"

/*
 * The adapters, one line each: X(NAME) is the descriptor cq_adapter_NAME
 * defined in src/adapter_NAME.c.  Adding a provider = one adapter_NAME.c +
 * one line here.
 */
#define CQ_ADAPTER_LIST(X)                                                                         \
    X(intronis)                                                                                    \
    X(activeplatform)                                                                              \
    X(keliweb)                                                                                     \
    /* one line per adapter, above this one */

#define DECLARE(name) extern const cq_adapter cq_adapter_##name;
CQ_ADAPTER_LIST(DECLARE)
#undef DECLARE

#define ENTRY(name) &cq_adapter_##name,
static const cq_adapter *const adapters[] = {CQ_ADAPTER_LIST(ENTRY)};
#undef ENTRY

#define NADAPTERS (sizeof(adapters) / sizeof(adapters[0]))

/* Registry ---------------------------------------------------------------- */

const cq_adapter *cq_adapter_find(const char *name)
{
    if (name == NULL)
        return NULL;
    for (size_t i = 0; i < NADAPTERS; i++)
        if (strcmp(adapters[i]->name, name) == 0)
            return adapters[i];
    return NULL;
}

const cq_action *cq_adapter_action(const cq_adapter *a, const char *name)
{
    if (a == NULL || name == NULL)
        return NULL;
    for (size_t i = 0; i < a->nactions; i++)
        if (strcmp(a->actions[i].name, name) == 0)
            return &a->actions[i];
    return NULL;
}

const cq_adapter *const *cq_adapters(size_t *n)
{
    if (n != NULL)
        *n = NADAPTERS;
    return adapters;
}

/* Verdicts ---------------------------------------------------------------- */

/* Messages end up in logs, outcome streams and dead-letter entries: no
 * control characters (a provider's body could otherwise forge log lines),
 * and no UTF-8 sequence cut in half by the size bound. */
static void text_sanitize(char *s)
{
    size_t len, start;
    unsigned char lead;
    size_t need;

    for (char *p = s; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f)
            *p = ' ';
    len = strlen(s);
    if (len == 0)
        return;
    /* Find the start of the last (possibly partial) UTF-8 sequence. */
    start = len - 1;
    while (start > 0 && len - start < 4 && ((unsigned char)s[start] & 0xC0) == 0x80)
        start--;
    lead = (unsigned char)s[start];
    if (lead < 0x80)
        return;
    need = (lead & 0xE0) == 0xC0 ? 2 : (lead & 0xF0) == 0xE0 ? 3 : (lead & 0xF8) == 0xF0 ? 4 : 1;
    if (len - start < need)
        s[start] = '\0';
}

/* snprintf(dst, size, "%s", s) for size > 0, without the format parsing. */
static void copy_cut(char *dst, size_t size, const char *s)
{
    size_t n = strnlen(s, size - 1);

    memcpy(dst, s, n);
    dst[n] = '\0';
}

void cq_verdict_set(cq_verdict *v, cq_verdict_kind kind, const char *error, const char *fmt, ...)
{
    va_list ap;

    if (v == NULL)
        return;
    memset(v, 0, sizeof(*v));
    v->kind = kind;
    copy_cut(v->error, sizeof(v->error), error != NULL ? error : "");
    /* Success messages are plain text (every job ends with one): a format
     * without '%' prints as itself, so it is copied without vsnprintf. */
    if (fmt != NULL && strchr(fmt, '%') == NULL) {
        copy_cut(v->message, sizeof(v->message), fmt);
    } else if (fmt != NULL) {
        va_start(ap, fmt);
        vsnprintf(v->message, sizeof(v->message), fmt, ap);
        va_end(ap);
    }
    text_sanitize(v->error);
    text_sanitize(v->message);
}

const char *cq_verdict_name(cq_verdict_kind kind)
{
    switch (kind) {
    case CQ_V_SUCCEEDED:
        return "succeeded";
    case CQ_V_ALREADY_DONE:
        return "already_done";
    case CQ_V_RETRY:
        return "retry";
    case CQ_V_FAILED:
        return "failed";
    case CQ_V_CHECK:
        return "check";
    case CQ_V_AUTH:
        return "auth";
    case CQ_V_NOT_DONE:
        return "not_done";
    }
    return "unknown";
}

/* Common classification --------------------------------------------------- */

static const char *tr_msg(const cq_response *resp)
{
    return resp->transport_msg != NULL ? resp->transport_msg : "no detail";
}

/* Transport failures.  A TOO_LARGE answer is not transient, but the provider
 * did answer, so the call may have been carried out: CHECK lets adapters
 * with a status lookup verify, and the others turn it into FAILED, rather
 * than a blind retry that could cancel twice.
 *
 * A refused certificate (TLS) is FAILED, not a blip to retry: nothing was
 * sent (the handshake failed before the request), a retry would meet the
 * same certificate, and an attacker in the middle should not get more
 * tries.  The error code says which check refused it (tls_untrusted,
 * tls_hostname, tls_expired, tls_local); the dead letter can be requeued
 * once the certificate or ca_file is fixed (docs/design.md §4). */
static void classify_transport(const cq_response *resp, cq_verdict *v)
{
    switch (resp->transport) {
    case CQ_TR_TLS:
        cq_verdict_set(v, CQ_V_FAILED, cq_tls_fail_code(resp->tls), "TLS: %s: %s",
                       cq_tls_fail_hint(resp->tls), tr_msg(resp));
        if (resp->tls == CQ_TLS_NONE)
            cq_verdict_set(v, CQ_V_FAILED, "tls_local", "TLS: %s", tr_msg(resp));
        return;
    case CQ_TR_CONNECT:
        cq_verdict_set(v, CQ_V_RETRY, "connect", "could not reach the provider: %s", tr_msg(resp));
        return;
    case CQ_TR_TIMEOUT:
        cq_verdict_set(v, CQ_V_RETRY, "timeout", "request timed out: %s", tr_msg(resp));
        return;
    case CQ_TR_TOO_LARGE:
        cq_verdict_set(v, CQ_V_CHECK, "too_large",
                       "answer (HTTP %ld) exceeded the response size cap", resp->status);
        return;
    case CQ_TR_ABORTED:
        cq_verdict_set(v, CQ_V_RETRY, "aborted", "request aborted (shutdown)");
        return;
    case CQ_TR_OK:
    case CQ_TR_OTHER:
        break;
    }
    cq_verdict_set(v, CQ_V_RETRY, "transport", "transport failure: %s", tr_msg(resp));
}

static bool status_is_transient(long status)
{
    return status == 408 || status == 425 || status == 429 || (status >= 500 && status <= 599);
}

bool cq_classify_common(const cq_response *resp, cq_verdict *v)
{
    char code[16];
    uint64_t delay;

    if (resp->transport != CQ_TR_OK) {
        classify_transport(resp, v);
        return true;
    }
    if (resp->status == 401) {
        cq_verdict_set(v, CQ_V_AUTH, "unauthorized", "HTTP 401: token rejected");
        return true;
    }
    if (!status_is_transient(resp->status))
        return false;
    snprintf(code, sizeof(code), "http_%ld", resp->status);
    cq_verdict_set(v, CQ_V_RETRY, code, "HTTP %ld: transient provider error", resp->status);
    /* An unreadable Retry-After is ignored: the backoff applies. */
    if (resp->retry_after != NULL &&
        cq_retry_after_parse(resp->retry_after, resp->now_ms, &delay) == 0) {
        v->has_retry_after = true;
        v->retry_after_ms = delay;
    }
    return true;
}

bool cq_classify_common_msg(const cq_response *resp, cq_verdict *v, cq_message_fn msg_fn)
{
    char msg[CQ_ERR_MSG_MAX];
    cq_verdict saved;

    if (!cq_classify_common(resp, v))
        return false;
    if (resp->transport != CQ_TR_OK)
        return true;
    msg_fn(resp, msg, sizeof(msg));
    if (msg[0] != '\0') {
        saved = *v;
        cq_verdict_set(v, saved.kind, saved.error, "HTTP %ld: %s", resp->status, msg);
        v->has_retry_after = saved.has_retry_after;
        v->retry_after_ms = saved.retry_after_ms;
    }
    return true;
}
