/* test_log.c - logfmt formatting, quoting, journald prefixes, redaction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cancelq/log.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_plain),
        cmocka_unit_test(test_quoting_blocks_forged_lines),
        cmocka_unit_test(test_redaction),
        cmocka_unit_test(test_journal_prefix_and_level_filter),
        cmocka_unit_test(test_long_line_is_cut),
    };
    return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
