/*
 * backoff.c - retry timing (docs/design.md §8): full-jitter backoff,
 * Retry-After parsing (RFC 9110 section 10.2.3), deadlines.
 *
 * Pure apart from cq_rand_default, whose generator state is the one static
 * of this module (see there).
 */
#include "cancelq/backoff.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Retry-After delta-seconds saturate here (~31 years); RFC 9110 asks
 * recipients to cope with values beyond what they can represent, and the
 * result is capped by retry_after_max anyway. */
#define CQ_RETRY_AFTER_MAX_S UINT64_C(1000000000)

/* A header value longer than this is not one of the forms we accept. */
#define CQ_RETRY_AFTER_TEXT_MAX 64

/* --- random source ------------------------------------------------------- */

/* SplitMix64 step: turns a weak seed (clock, pid) into a well-mixed state. */
static uint64_t splitmix64(uint64_t x)
{
    x += UINT64_C(0x9e3779b97f4a7c15);
    x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
    return x ^ (x >> 31);
}

static uint64_t seed_state(void)
{
    struct timespec ts = {0, 0};
    uint64_t s;

    clock_gettime(CLOCK_REALTIME, &ts);
    s = splitmix64((uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec);
    s = splitmix64(s ^ (uint64_t)getpid());
    return s != 0 ? s : UINT64_C(0x2545f4914f6cdd1d); /* xorshift must not start at 0 */
}

/*
 * xorshift64* (Vigna).  The state is the module's one static, kept per
 * thread so the function is safe to call from any thread; it is seeded on
 * first use from the clock and the pid, which is enough for timing jitter
 * (nothing secret depends on it).  ctx is unused.
 */
uint64_t cq_rand_default(void *ctx)
{
    static _Thread_local uint64_t state;

    (void)ctx;
    if (state == 0)
        state = seed_state();
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return state * UINT64_C(0x2545f4914f6cdd1d);
}

/* --- backoff ------------------------------------------------------------- */

/* min(max_ms, base_ms * 2^attempt) without overflow. */
static uint64_t backoff_cap(uint64_t base_ms, uint64_t max_ms, unsigned attempt)
{
    if (base_ms == 0)
        return 0;
    if (attempt >= 64 || base_ms > (UINT64_MAX >> attempt))
        return max_ms;
    base_ms <<= attempt;
    return base_ms < max_ms ? base_ms : max_ms;
}

uint64_t cq_backoff_delay(uint64_t base_ms, uint64_t max_ms, unsigned attempt, cq_rand_fn rnd,
                          void *ctx)
{
    uint64_t cap = backoff_cap(base_ms, max_ms, attempt);
    uint64_t r;

    if (cap == 0)
        return 0;
    r = rnd != NULL ? rnd(ctx) : cq_rand_default(ctx);
    if (cap == UINT64_MAX)
        return r;
    /* modulo bias is below cap / 2^64: irrelevant for millisecond delays */
    return r % (cap + 1);
}

uint64_t cq_retry_delay(bool has_retry_after, uint64_t retry_after_ms, uint64_t retry_after_max_ms,
                        uint64_t base_ms, uint64_t max_ms, unsigned attempt, cq_rand_fn rnd,
                        void *ctx)
{
    if (has_retry_after)
        return retry_after_ms < retry_after_max_ms ? retry_after_ms : retry_after_max_ms;
    return cq_backoff_delay(base_ms, max_ms, attempt, rnd, ctx);
}

bool cq_deadline_passed(int64_t deadline_ms, int64_t now_ms)
{
    /* "after it the job ends as expired": the deadline instant itself is
     * still in time */
    return deadline_ms > 0 && now_ms > deadline_ms;
}

/* --- Retry-After --------------------------------------------------------- */

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* delta-seconds: 1*DIGIT, saturating at CQ_RETRY_AFTER_MAX_S. */
static int parse_delta_seconds(const char *s, size_t n, uint64_t *delay_ms)
{
    uint64_t v = 0;

    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        if (v < CQ_RETRY_AFTER_MAX_S)
            v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > CQ_RETRY_AFTER_MAX_S)
        v = CQ_RETRY_AFTER_MAX_S;
    *delay_ms = v * 1000;
    return 0;
}

/* RFC 850 has two-digit years: RFC 9110 says a year that looks more than 50
 * years ahead is the most recent past year with those digits. */
static void fix_two_digit_year(struct tm *tm, int64_t now_ms)
{
    time_t now = (time_t)(now_ms / 1000);
    struct tm now_tm;
    int year, now_year;

    if (gmtime_r(&now, &now_tm) == NULL)
        return;
    now_year = now_tm.tm_year + 1900;
    year = now_year - now_year % 100 + (tm->tm_year + 1900) % 100;
    if (year > now_year + 50)
        year -= 100;
    tm->tm_year = year - 1900;
}

/* Does struct tm hold the calendar date it says (strptime accepts Feb 31)? */
static bool tm_is_real(const struct tm *tm, time_t t)
{
    struct tm back;

    return gmtime_r(&t, &back) != NULL && back.tm_year == tm->tm_year &&
           back.tm_mon == tm->tm_mon && back.tm_mday == tm->tm_mday &&
           back.tm_hour == tm->tm_hour && back.tm_min == tm->tm_min && back.tm_sec == tm->tm_sec;
}

/* IMF-fixdate, RFC 850 or asctime (RFC 9110 section 5.6.7) into unix s. */
static int parse_http_date(const char *text, int64_t now_ms, int64_t *unix_s)
{
    static const struct {
        const char *fmt;
        bool two_digit_year;
    } forms[] = {
        {"%a, %d %b %Y %H:%M:%S GMT", false},
        {"%A, %d-%b-%y %H:%M:%S GMT", true},
        {"%a %b %e %H:%M:%S %Y", false},
    };
    struct tm tm, parsed;
    const char *end;
    time_t t;

    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        memset(&tm, 0, sizeof(tm));
        end = strptime(text, forms[i].fmt, &tm);
        if (end == NULL || *end != '\0')
            continue;
        if (forms[i].two_digit_year)
            fix_two_digit_year(&tm, now_ms);
        parsed = tm; /* timegm normalises its argument */
        t = timegm(&tm);
        if (!tm_is_real(&parsed, t))
            return -EINVAL;
        *unix_s = (int64_t)t;
        return 0;
    }
    return -EINVAL;
}

int cq_retry_after_parse(const char *value, int64_t now_ms, uint64_t *delay_ms)
{
    char text[CQ_RETRY_AFTER_TEXT_MAX + 1];
    size_t start = 0, end;
    int64_t when_s, diff_ms;
    const int64_t cap_ms = (int64_t)CQ_RETRY_AFTER_MAX_S * 1000;

    if (value == NULL || delay_ms == NULL)
        return -EINVAL;
    end = strnlen(value, CQ_RETRY_AFTER_TEXT_MAX + 1);
    if (end > CQ_RETRY_AFTER_TEXT_MAX)
        return -EINVAL;
    while (start < end && is_ows(value[start]))
        start++;
    while (end > start && is_ows(value[end - 1]))
        end--;
    if (start == end)
        return -EINVAL;
    if (value[start] >= '0' && value[start] <= '9')
        return parse_delta_seconds(value + start, end - start, delay_ms);
    memcpy(text, value + start, end - start);
    text[end - start] = '\0';
    if (parse_http_date(text, now_ms, &when_s) < 0)
        return -EINVAL;
    /* strptime bounds the year to 0..9999; the order of the tests keeps the
     * subtraction from overflowing whatever now_ms is */
    if (when_s > cap_ms / 1000 + now_ms / 1000)
        diff_ms = cap_ms; /* far future: saturate */
    else if (when_s * 1000 <= now_ms)
        diff_ms = 0; /* in the past: retry now */
    else
        diff_ms = when_s * 1000 - now_ms;
    *delay_ms = (uint64_t)(diff_ms < cap_ms ? diff_ms : cap_ms);
    return 0;
}
