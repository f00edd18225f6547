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
#include <inttypes.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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

/* A secret of CQ_LOG_SECRET_MIN bytes or more starting at s, or the rest
 * of the value (rem bytes) when it is such a secret's first
 * CQ_LOG_SECRET_MIN or more bytes; the longest. */
static size_t ref_secret_at(const char *s, size_t rem)
{
    size_t best = 0;

    for (size_t i = 0; i < ref_nsecrets; i++) {
        size_t n = strlen(ref_secrets[i]);

        if (n < CQ_LOG_SECRET_MIN)
            continue;
        if (n <= rem && n > best && strncmp(s, ref_secrets[i], n) == 0)
            best = n;
        if (n > rem && rem >= CQ_LOG_SECRET_MIN && rem > best &&
            strncmp(s, ref_secrets[i], rem) == 0)
            best = rem;
    }
    return best;
}

static void ref_redact(const char *s, char *buf, size_t size)
{
    static const char mark[] = "[REDACTED]";
    size_t o = 0;

    for (size_t i = 0; i < ref_nsecrets; i++)
        if (strlen(ref_secrets[i]) < CQ_LOG_SECRET_MIN && strcmp(s, ref_secrets[i]) == 0)
            s = mark; /* a short secret: the whole value only */
    while (*s != '\0' && o + 1 < size) {
        size_t n = s == mark ? 0 : ref_secret_at(s, strlen(s));

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
    if (l.len + 1 >= size && size > 4) {
        /* a cut through a secret drops what is left of its start */
        for (size_t p = 0; p + CQ_LOG_SECRET_MIN <= l.len; p++) {
            if (ref_secret_at(buf + p, l.len - p) == l.len - p) {
                memcpy(buf + p, "...", 4);
                return;
            }
        }
        memcpy(buf + size - 4, "...", 4);
    }
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
    static const char *const secret_sets[][6] = {
        {NULL},
        {"s3cr3t-token", NULL},
        {"ab", "abc", "abcab", NULL}, /* prefixes: the longest wins */
        {"a", "ba", "\xc3\xa9", NULL},
        {"sandbox-intronis-token", "sandbox-activeplatform-token", "sandbox-keliweb-token", NULL},
        /* long secrets over the values' alphabet: prefixes at the end and
         * overlaps happen; "ab" and "Tt" are short (whole values only) */
        {"aabbaabbcs", "aabbaabbab", "abba-abba", "ab", "Tt", NULL},
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

/* A one-character token must not mangle every line: short secrets are
 * redacted only as a whole value, and registering one says so. */
static void test_short_secret_whole_value_only(void **state)
{
    char buf[512];

    (void)state;
    assert_int_equal(cq_log_add_secret_checked("t"), CQ_LOG_SECRET_SHORT);
    assert_int_equal(cq_log_add_secret_checked("t"), CQ_LOG_SECRET_SHORT); /* again: same */
    assert_int_equal(cq_log_add_secret("tok"), 0); /* the old call: 0 for short ones too */
    assert_int_equal(cq_log_add_secret_checked("long-enough"), 0);
    cq_log_format(buf, sizeof(buf), CQ_LOG_WARN, "breaker_state", "provider", "intronis", "state",
                  "open", "v", "t", "w", "tok", "x", "a t b", NULL);
    assert_non_null(strstr(buf, " event=breaker_state provider=intronis state=open v=[REDACTED] "
                                "w=[REDACTED] x=\"a t b\""));
    cq_log_redact("t", buf, sizeof(buf));
    assert_string_equal(buf, "[REDACTED]");
    cq_log_redact("tt", buf, sizeof(buf));
    assert_string_equal(buf, "tt");
    cq_log_redact("is long-enough.", buf, sizeof(buf));
    assert_string_equal(buf, "is [REDACTED].");
    cq_log_shutdown();
}

/* A provider echoing a token in an error body that was cut at a length
 * limit: the value ends with the token's first bytes. */
static void test_secret_prefix_at_the_end(void **state)
{
    char buf[512];

    (void)state;
    assert_int_equal(cq_log_add_secret("sandbox-keliweb-token"), 0);
    cq_log_redact("HTTP 401: bad token sandbox-kel", buf, sizeof(buf));
    assert_string_equal(buf, "HTTP 401: bad token [REDACTED]");
    cq_log_redact("HTTP 401: bad token sandbox-", buf, sizeof(buf)); /* exactly 8 */
    assert_string_equal(buf, "HTTP 401: bad token [REDACTED]");
    cq_log_redact("see the sandbox", buf, sizeof(buf)); /* 7: too short to tell */
    assert_string_equal(buf, "see the sandbox");
    cq_log_redact("sandbox-kel and more", buf, sizeof(buf)); /* not at the end */
    assert_string_equal(buf, "sandbox-kel and more");
    cq_log_redact("x sandbox-keliweb-token sandbox-keliweb-to", buf, sizeof(buf));
    assert_string_equal(buf, "x [REDACTED] [REDACTED]");
    cq_log_format(buf, sizeof(buf), CQ_LOG_WARN, "job_done", "message",
                  "HTTP 401: {\"error\":\"invalid token sandbox-keliweb-t", "id", "k-1", NULL);
    assert_null(strstr(buf, "sandbox-"));
    assert_non_null(strstr(buf, "invalid token [REDACTED]\" id=k-1"));
    cq_log_shutdown();
}

/* A line cut in the middle of a secret does not keep the secret's start. */
static void test_cut_through_a_secret(void **state)
{
    static char big[CQ_LOG_LINE_MAX + 100];
    char buf[CQ_LOG_LINE_MAX];
    size_t n, at;

    (void)state;
    assert_int_equal(cq_log_add_secret("0123456789abcdefghij"), 0);
    for (at = CQ_LOG_LINE_MAX - 60; at < CQ_LOG_LINE_MAX - 30; at++) {
        memset(big, 'x', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        memcpy(big + at, "0123456789abcdefghij", 20);
        n = cq_log_format(buf, sizeof(buf), CQ_LOG_INFO, "e", "v", big, NULL);
        assert_int_equal(n, strlen(buf));
        assert_string_equal(buf + n - 3, "...");
        assert_null(strstr(buf, "01234567"));
    }
    cq_log_shutdown();
}

/* The journal's native form: a field per key, redacted, MESSAGE_ID for
 * the events an operator acts on. */
static void test_journal_fields(void **state)
{
    char buf[2048];
    size_t n;

    (void)state;
    assert_int_equal(cq_log_add_secret("s3cr3t-token"), 0);
    n = cq_log_journal_format(buf, sizeof(buf), CQ_LOG_WARN, "job_done", "id", "inv-1", "provider",
                              "keliweb", "status", "failed", "http_status", "401", "message",
                              "bad token s3cr3t-token", "odd-key.x", "a\nb", NULL);
    assert_int_equal(n, 11);
    assert_non_null(strstr(buf, "MESSAGE=level=warn event=job_done id=inv-1 provider=keliweb "
                                "status=failed http_status=401 message=\"bad token [REDACTED]\" "
                                "odd-key.x=\"a\\nb\"\n"));
    assert_non_null(strstr(buf, "\nPRIORITY=4\n"));
    assert_non_null(strstr(buf, "\nSYSLOG_IDENTIFIER="));
    assert_non_null(strstr(buf, "\nCQ_EVENT=job_done\n"));
    assert_non_null(strstr(buf, "\nCQ_ID=inv-1\n"));
    assert_non_null(strstr(buf, "\nCQ_PROVIDER=keliweb\n"));
    assert_non_null(strstr(buf, "\nCQ_STATUS=failed\n"));
    assert_non_null(strstr(buf, "\nCQ_HTTP_STATUS=401\n"));
    assert_non_null(strstr(buf, "\nCQ_MESSAGE=bad token [REDACTED]\n"));
    assert_non_null(strstr(buf, "\nCQ_ODD_KEY_X=a\nb\n")); /* the value as it is */
    assert_non_null(strstr(buf, "\nMESSAGE_ID=288ce480b7f5406e847448f1e0b13cd8\n"));
    assert_null(strstr(buf, "s3cr3t"));
    /* a job that succeeded is no operator's business */
    cq_log_journal_format(buf, sizeof(buf), CQ_LOG_INFO, "job_done", "id", "inv-2", "status",
                          "succeeded", NULL);
    assert_null(strstr(buf, "MESSAGE_ID="));
    assert_string_equal(cq_log_message_id("breaker_state", NULL),
                        "4a0cf560b7bc47efb1cb1ebc71730737");
    assert_non_null(cq_log_message_id("job_done", "exhausted"));
    assert_null(cq_log_message_id("job_done", "duplicate"));
    assert_null(cq_log_message_id("job_done", NULL));
    assert_null(cq_log_message_id("task_state", NULL));
    cq_log_shutdown();
}

/* Native form only when $JOURNAL_STREAM names the very file of stderr. */
static void test_journal_stream_detection(void **state)
{
    char path[] = "/tmp/cq-test-log-XXXXXX", env[64];
    struct stat st;
    int fd = mkstemp(path);
    FILE *f;

    (void)state;
    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    assert_non_null(f);
    assert_int_equal(fstat(fd, &st), 0);
    snprintf(env, sizeof(env), "%ju:%ju", (uintmax_t)st.st_dev, (uintmax_t)st.st_ino);
    setenv("JOURNAL_STREAM", env, 1);
    assert_true(cq_log_journal_stream_is(fd));
    cq_log_init(f, CQ_LOG_INFO, CQ_LOG_AUTO);
    /* native when journald's socket is there, else prefixed lines */
    assert_int_equal(cq_log_mode(), access("/run/systemd/journal/socket", W_OK) == 0
                                        ? CQ_LOG_JOURNAL
                                        : CQ_LOG_PREFIX);
    snprintf(env, sizeof(env), "%ju:%ju", (uintmax_t)st.st_dev, (uintmax_t)st.st_ino + 1);
    setenv("JOURNAL_STREAM", env, 1);
    assert_false(cq_log_journal_stream_is(fd));
    cq_log_init(f, CQ_LOG_INFO, CQ_LOG_AUTO);
    assert_int_equal(cq_log_mode(), CQ_LOG_PLAIN); /* stderr was redirected elsewhere */
    setenv("JOURNAL_STREAM", "garbage", 1);
    assert_false(cq_log_journal_stream_is(fd));
    unsetenv("JOURNAL_STREAM");
    assert_false(cq_log_journal_stream_is(fd));
    cq_log_init(NULL, CQ_LOG_INFO, CQ_LOG_PLAIN);
    fclose(f);
    unlink(path);
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
        cmocka_unit_test(test_short_secret_whole_value_only),
        cmocka_unit_test(test_secret_prefix_at_the_end),
        cmocka_unit_test(test_cut_through_a_secret),
        cmocka_unit_test(test_journal_fields),
        cmocka_unit_test(test_journal_stream_detection),
    };
    return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
