/* test_log.c - logfmt formatting, quoting, journald prefixes, redaction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <errno.h>
#include <time.h>

#include "cancelq/log.h"
#include "cancelq/rfc3339.h"

static void test_format_plain(void **state)
{
    char buf[512];

    (void)state;
    cq_log_format(buf, sizeof(buf), CQ_LOG_INFO, "job_done", "id", "inv-1", "status", "succeeded",
                  NULL);
    assert_non_null(strstr(buf, " level=info event=job_done id=inv-1 status=succeeded"));
    assert_memory_equal(buf, "time=", 5);
}

static void test_quoting_blocks_forged_lines(void **state)
{
    char buf[512];

    (void)state;
    cq_log_format(buf, sizeof(buf), CQ_LOG_WARN, "x", "id", "a b\nlevel=error event=fake", "q",
                  "say \"hi\"", "empty", "", "nul", NULL, NULL);
    assert_null(strchr(buf, '\n'));
    assert_non_null(strstr(buf, "id=\"a b\\nlevel=error event=fake\""));
    assert_non_null(strstr(buf, "q=\"say \\\"hi\\\"\""));
    assert_non_null(strstr(buf, "empty=\"\""));
    assert_non_null(strstr(buf, "nul=\"\""));
}

static void test_redaction(void **state)
{
    char buf[512];

    (void)state;
    assert_int_equal(cq_log_add_secret("s3cr3t-token"), 0);
    assert_int_equal(cq_log_add_secret(""), 0);
    cq_log_format(buf, sizeof(buf), CQ_LOG_ERR, "http_error", "message",
                  "Authorization: Bearer s3cr3t-token rejected", "t", "s3cr3t-token", NULL);
    assert_null(strstr(buf, "s3cr3t"));
    assert_non_null(strstr(buf, "\"Authorization: Bearer [REDACTED] rejected\""));
    assert_non_null(strstr(buf, "t=[REDACTED]"));
    cq_log_remove_secret("s3cr3t-token");
    cq_log_format(buf, sizeof(buf), CQ_LOG_ERR, "e", "t", "s3cr3t-token", NULL);
    assert_non_null(strstr(buf, "t=s3cr3t-token"));
    cq_log_shutdown();
}

static void test_journal_prefix_and_level_filter(void **state)
{
    char *mem = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&mem, &len);

    (void)state;
    assert_non_null(f);
    cq_log_init(f, CQ_LOG_INFO, 1);
    cq_log(CQ_LOG_WARN, "redis_down", "error", "Connection refused", NULL);
    cq_log(CQ_LOG_DEBUG, "noise", NULL);
    fclose(f);
    assert_string_equal(mem, "<4>level=warn event=redis_down error=\"Connection refused\"\n");
    free(mem);
    cq_log_init(NULL, CQ_LOG_INFO, 0);
}

static void test_long_line_is_cut(void **state)
{
    char big[6000];
    char buf[CQ_LOG_LINE_MAX];
    size_t n;

    (void)state;
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    n = cq_log_format(buf, sizeof(buf), CQ_LOG_INFO, "big", "v", big, NULL);
    assert_true(n < sizeof(buf));
    assert_string_equal(buf + n - 3, "...");
}

/* --- byte-identical output: the original formatter as a reference ------- *
 *
 * log.c takes fast paths (one pass per value, no copy when nothing can be a
 * secret, runs of plain bytes, the time field by hand).  These are the
 * original redaction and value formatting (cancelq 0.1.0), over the secrets
 * the test registered; lines must come out the same byte for byte. */

#define REF_MAX_SECRETS 64

static const char *ref_secrets[REF_MAX_SECRETS];
static size_t ref_nsecrets;

static size_t ref_secret_at(const char *s)
{
    size_t best = 0;

    for (size_t i = 0; i < ref_nsecrets; i++) {
        size_t n = strlen(ref_secrets[i]);

        if (n > best && strncmp(s, ref_secrets[i], n) == 0)
            best = n;
    }
    return best;
}

static void ref_redact(const char *s, char *buf, size_t size)
{
    static const char mark[] = "[REDACTED]";
    size_t o = 0;

    while (*s != '\0' && o + 1 < size) {
        size_t n = ref_secret_at(s);

        if (n > 0) {
            if (o + sizeof(mark) - 1 >= size)
                break;
            memcpy(buf + o, mark, sizeof(mark) - 1);
            o += sizeof(mark) - 1;
            s += n;
            continue;
        }
        buf[o++] = *s++;
    }
    buf[o] = '\0';
}

typedef struct ref_line {
    char *buf;
    size_t size, len;
} ref_line;

static void ref_put(ref_line *l, const char *s, size_t n)
{
    if (l->len + 1 >= l->size)
        return;
    if (n > l->size - 1 - l->len)
        n = l->size - 1 - l->len;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
    l->buf[l->len] = '\0';
}

static void ref_put_value(ref_line *l, const char *v)
{
    static char red[CQ_LOG_LINE_MAX];
    int quote = 0;

    ref_redact(v != NULL ? v : "", red, sizeof(red));
    quote = red[0] == '\0';
    for (const char *p = red; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;

        if (c <= ' ' || c == '=' || c == '"' || c == '\\' || c == 0x7f)
            quote = 1;
    }
    if (!quote) {
        ref_put(l, red, strlen(red));
        return;
    }
    ref_put(l, "\"", 1);
    for (const char *p = red; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        char esc[8];

        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            ref_put(l, esc, 2);
        } else if (c == '\n') {
            ref_put(l, "\\n", 2);
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof(esc), "\\x%02x", c);
            ref_put(l, esc, strlen(esc));
        } else {
            ref_put(l, p, 1);
        }
    }
    ref_put(l, "\"", 1);
}

#define TIME_FIELD_LEN 30 /* "time=2026-11-22T10:00:00.123Z " */

/* The reference line for "level=warn event=E k0=v0 k1=v1", after a time
 * field of the usual length (the cut at the end depends on it). */
static void ref_format(char *buf, size_t size, const char *event, const char *const *kv, size_t n)
{
    ref_line l = {buf, size, 0};

    buf[0] = '\0';
    ref_put(&l, "time=YYYY-MM-DDTHH:MM:SS.mmmZ ", TIME_FIELD_LEN);
    ref_put(&l, "level=warn event=", strlen("level=warn event="));
    ref_put_value(&l, event);
    for (size_t i = 0; i + 1 < n; i += 2) {
        ref_put(&l, " ", 1);
        ref_put(&l, kv[i], strlen(kv[i]));
        ref_put(&l, "=", 1);
        ref_put_value(&l, kv[i + 1]);
    }
    if (l.len + 1 >= size && size > 4)
        memcpy(buf + size - 4, "...", 4);
}

static uint64_t rng = UINT64_C(0x2545f4914f6cdd1d);

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Random text over an alphabet that makes secrets, their prefixes and
 * overlaps, quoting and escapes likely. */
static void random_value(char *buf, size_t max)
{
    static const char pool[] = "aabbcs-=\" \\\n\t\x01\x7f\xc3\xa9Tt";
    size_t n = rnd() % 4 == 0 ? rnd() % max : rnd() % 24;

    for (size_t i = 0; i < n; i++)
        buf[i] = pool[rnd() % (sizeof(pool) - 1)];
    buf[n] = '\0';
}

static void add_ref_secret(const char *s)
{
    assert_int_equal(cq_log_add_secret(s), 0);
    for (size_t i = 0; i < ref_nsecrets; i++)
        if (strcmp(ref_secrets[i], s) == 0)
            return;
    ref_secrets[ref_nsecrets++] = s;
}

static void same_line(const char *event, const char *const *kv, size_t n)
{
    static char got[CQ_LOG_LINE_MAX], want[CQ_LOG_LINE_MAX];
    size_t len;

    len = cq_log_format(got, sizeof(got), CQ_LOG_WARN, event, kv[0], kv[1], kv[2], kv[3], kv[4],
                        kv[5], NULL);
    assert_true(n == 6);
    ref_format(want, sizeof(want), event, kv, n);
    assert_int_equal(len, strlen(got));
    assert_true(len > TIME_FIELD_LEN);
    assert_string_equal(got + TIME_FIELD_LEN, want + TIME_FIELD_LEN);
}

static void test_lines_match_reference(void **state)
{
    static const char *const secret_sets[][4] = {
        {NULL},
        {"s3cr3t-token", NULL},
        {"ab", "abc", "abcab", NULL}, /* prefixes: the longest wins */
        {"a", "ba", "\xc3\xa9", NULL},
        {"sandbox-intronis-token", "sandbox-activeplatform-token", "sandbox-keliweb-token", NULL},
    };
    static char big[3][CQ_LOG_LINE_MAX + 200];

    (void)state;
    for (size_t set = 0; set < sizeof(secret_sets) / sizeof(secret_sets[0]); set++) {
        ref_nsecrets = 0;
        for (size_t i = 0; secret_sets[set][i] != NULL; i++)
            add_ref_secret(secret_sets[set][i]);
        for (int round = 0; round < 3000; round++) {
            const char *kv[6] = {"id", big[0], "message", big[1], "status", big[2]};
            char event[32];

            random_value(event, sizeof(event));
            for (size_t i = 0; i < 3; i++)
                random_value(big[i], sizeof(big[i]));
            same_line(event, kv, 6);
        }
        cq_log_shutdown();
    }
    ref_nsecrets = 0;
}

/* The same job_done line as the daemon writes, with the tokens it holds. */
static void test_job_done_line(void **state)
{
    char buf[CQ_LOG_LINE_MAX];
    const char *kv[6] = {"id",     "b-1",      "message", "partner cancelled (303 See Other)",
                         "status", "succeeded"};

    (void)state;
    add_ref_secret("sandbox-intronis-token");
    same_line("job_done", kv, 6);
    cq_log_format(buf, sizeof(buf), CQ_LOG_INFO, "job_done", "id", "b-1", "provider", "intronis",
                  "status", "succeeded", "error", "", "message",
                  "partner cancelled (303 See Other)", NULL);
    assert_string_equal(buf + TIME_FIELD_LEN,
                        "level=info event=job_done id=b-1 provider=intronis status=succeeded "
                        "error=\"\" message=\"partner cancelled (303 See Other)\"");
    cq_log_shutdown();
    ref_nsecrets = 0;
}

/* The time field is "time=YYYY-MM-DDTHH:MM:SS.mmmZ " and the clock's time. */
static void test_time_field(void **state)
{
    char buf[256], stamp[32];
    struct timespec a, b;
    int64_t ms, lo, hi;

    (void)state;
    clock_gettime(CLOCK_REALTIME, &a);
    cq_log_format(buf, sizeof(buf), CQ_LOG_INFO, "e", NULL);
    clock_gettime(CLOCK_REALTIME, &b);
    assert_memory_equal(buf, "time=", 5);
    assert_memory_equal(buf + TIME_FIELD_LEN - 1, " level=info event=e", 19);
    memcpy(stamp, buf + 5, TIME_FIELD_LEN - 6);
    stamp[TIME_FIELD_LEN - 6] = '\0';
    assert_int_equal(strspn(stamp, "0123456789-T:.Z"), strlen(stamp));
    assert_int_equal(cq_parse_rfc3339(stamp, &ms), 0);
    lo = (int64_t)a.tv_sec * 1000 + a.tv_nsec / 1000000;
    hi = (int64_t)b.tv_sec * 1000 + b.tv_nsec / 1000000;
    assert_true(ms >= lo && ms <= hi);
}

/* Every one of the 64 slots redacts (the first-byte table has a bit each);
 * a removed secret stops being redacted, the others stay. */
static void test_all_secret_slots(void **state)
{
    static char secrets[64][24];
    char out[64];

    (void)state;
    for (int i = 0; i < 64; i++) {
        snprintf(secrets[i], sizeof(secrets[i]), "%c-secret-%02u", 'A' + i % 3, (unsigned)i);
        assert_int_equal(cq_log_add_secret(secrets[i]), 0);
    }
    assert_int_equal(cq_log_add_secret("one too many"), -ENOSPC);
    for (int i = 0; i < 64; i++) {
        char in[40];
        size_t n = strlen(secrets[i]);

        in[0] = '<';
        memcpy(in + 1, secrets[i], n);
        memcpy(in + 1 + n, ">", 2);
        cq_log_redact(in, out, sizeof(out));
        assert_string_equal(out, "<[REDACTED]>");
    }
    cq_log_remove_secret(secrets[63]);
    cq_log_redact(secrets[63], out, sizeof(out));
    assert_string_equal(out, secrets[63]);
    cq_log_redact(secrets[60], out, sizeof(out));
    assert_string_equal(out, "[REDACTED]");
    cq_log_shutdown();
    cq_log_redact(secrets[60], out, sizeof(out));
    assert_string_equal(out, secrets[60]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_plain),
        cmocka_unit_test(test_quoting_blocks_forged_lines),
        cmocka_unit_test(test_redaction),
        cmocka_unit_test(test_journal_prefix_and_level_filter),
        cmocka_unit_test(test_long_line_is_cut),
        cmocka_unit_test(test_lines_match_reference),
        cmocka_unit_test(test_job_done_line),
        cmocka_unit_test(test_time_field),
        cmocka_unit_test(test_all_secret_slots),
    };
    return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
