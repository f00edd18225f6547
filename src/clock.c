/*
 * clock.c - see clock.h.
 */
#include "cancelq/clock.h"

#include <time.h>

int64_t cq_clock_unix_ms(void)
{
    struct timespec ts = {0, 0};

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
