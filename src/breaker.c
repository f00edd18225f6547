/*
 * breaker.c - see breaker.h.
 */
#include "cancelq/breaker.h"

void cq_breaker_init(cq_breaker *b, int threshold, uint64_t cooldown_ms)
{
    b->threshold = threshold >= 1 ? threshold : 1;
    b->cooldown_ms = cooldown_ms;
    b->state = CQ_BR_CLOSED;
    b->failures = 0;
    b->open_end = 0;
    b->probe_out = false;
}

bool cq_breaker_allow(cq_breaker *b, int64_t now, int64_t *retry_at, bool *changed)
{
    *changed = false;
    if (b->state == CQ_BR_CLOSED)
        return true;
    if (b->state == CQ_BR_OPEN) {
        if (now < b->open_end) {
            *retry_at = b->open_end;
            return false;
        }
        b->state = CQ_BR_HALF_OPEN;
        b->probe_out = false;
        *changed = true;
    }
    if (!b->probe_out) {
        b->probe_out = true;
        return true;
    }
    *retry_at = now + (b->cooldown_ms < CQ_BREAKER_PROBE_WAIT_MS ? (int64_t)b->cooldown_ms
                                                                 : CQ_BREAKER_PROBE_WAIT_MS);
    if (*retry_at <= now)
        *retry_at = now + 1;
    return false;
}

static void open_at(cq_breaker *b, int64_t now)
{
    b->forced = false;
    b->state = CQ_BR_OPEN;
    b->open_end = now + (int64_t)b->cooldown_ms;
    b->probe_out = false;
    b->failures = 0;
}

bool cq_breaker_record(cq_breaker *b, bool success, int64_t now)
{
    if (success) {
        b->failures = 0;
        if (b->state == CQ_BR_CLOSED)
            return false;
        /* a success, the probe's or a late one sent before opening, shows
         * the provider answers again */
        b->forced = false;
        b->state = CQ_BR_CLOSED;
        b->probe_out = false;
        return true;
    }
    switch (b->state) {
    case CQ_BR_CLOSED:
        if (++b->failures < b->threshold)
            return false;
        open_at(b, now);
        return true;
    case CQ_BR_HALF_OPEN:
        open_at(b, now);
        return true;
    default:
        return false; /* late failures of requests sent before it opened */
    }
}

void cq_breaker_abandon(cq_breaker *b)
{
    if (b->state == CQ_BR_HALF_OPEN)
        b->probe_out = false;
}

const char *cq_breaker_state_name(cq_breaker_state s)
{
    switch (s) {
    case CQ_BR_OPEN:
        return "open";
    case CQ_BR_HALF_OPEN:
        return "half_open";
    default:
        return "closed";
    }
}

bool cq_breaker_force_open(cq_breaker *b, int64_t until)
{
    bool changed = b->state != CQ_BR_OPEN;

    if (!changed && b->open_end >= until)
        return false;
    b->state = CQ_BR_OPEN;
    b->open_end = until;
    b->probe_out = false;
    b->failures = 0;
    b->forced = true;
    return changed;
}

bool cq_breaker_force_closed(cq_breaker *b)
{
    if (b->state == CQ_BR_CLOSED)
        return false;
    b->state = CQ_BR_CLOSED;
    b->failures = 0;
    b->probe_out = false;
    b->forced = true;
    return true;
}
