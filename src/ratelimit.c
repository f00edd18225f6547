/*
 * ratelimit.c - see ratelimit.h.
 */
#include "cancelq/ratelimit.h"

#include <math.h>

static void refill(cq_bucket *b, int64_t now)
{
    int64_t from = b->last_ms > b->paused_until ? b->last_ms : b->paused_until;

    if (b->rate <= 0 || now <= from) {
        if (now > b->last_ms && b->rate <= 0)
            b->last_ms = now;
        return;
    }
    b->tokens += (double)(now - from) * b->rate / 1000.0;
    if (b->tokens > b->burst)
        b->tokens = b->burst;
    b->last_ms = now;
}

void cq_bucket_set(cq_bucket *b, double rate, int burst, int64_t now)
{
    refill(b, now);
    b->rate = rate > 0 ? rate : 0;
    b->burst = burst >= 1 ? (double)burst : 1.0;
    if (b->tokens > b->burst)
        b->tokens = b->burst;
}

void cq_bucket_share(cq_bucket *b, double rate, double burst, int64_t now)
{
    refill(b, now);
    b->rate = rate > 0 ? rate : 0;
    b->burst = burst;
    if (b->tokens > b->burst)
        b->tokens = b->burst;
}

void cq_bucket_init(cq_bucket *b, double rate, int burst, int64_t now)
{
    b->rate = rate > 0 ? rate : 0;
    b->burst = burst >= 1 ? (double)burst : 1.0;
    b->tokens = b->burst;
    b->last_ms = now;
    b->paused_until = 0;
}

int64_t cq_bucket_wait_ms(cq_bucket *b, int64_t now)
{
    double missing;

    if (now < b->paused_until) {
        if (b->rate <= 0)
            return b->paused_until - now;
        /* after the pause the bucket refills from empty */
        return b->paused_until - now + (int64_t)ceil((1.0 - b->tokens) * 1000.0 / b->rate);
    }
    if (b->rate <= 0)
        return 0;
    refill(b, now);
    if (b->tokens >= 1.0)
        return 0;
    missing = 1.0 - b->tokens;
    return (int64_t)ceil(missing * 1000.0 / b->rate);
}

bool cq_bucket_take(cq_bucket *b, int64_t now)
{
    if (cq_bucket_wait_ms(b, now) != 0)
        return false;
    if (b->rate > 0)
        b->tokens -= 1.0;
    return true;
}

void cq_bucket_pause(cq_bucket *b, int64_t until)
{
    if (until <= b->paused_until)
        return;
    b->paused_until = until;
    b->tokens = 1.0; /* one request at the end of the pause, then the refill rate */
    if (b->last_ms < until)
        b->last_ms = until;
}
