/* test_config_net.c - the [provider] transport keys (ca_file,
 * client_cert_file, client_key_file, proxy, no_proxy): their errors, with
 * FILE:LINE: [section] key, and the clear-text warning of
 * allow_insecure_http (cq_config_insecure) in the summary.  Certificate
 * contents are tested in test_tls.c; here files are only missing or junk. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cancelq/config.h"

/* token_file must be a readable secret: one made in a temp file. */
static char tok[] = "/tmp/cq-test-net-XXXXXX";

static int setup(void **state)
{
    int fd = mkstemp(tok);

    (void)state;
    if (fd < 0 || write(fd, "t0k\n", 4) != 4)
        return -1;
    close(fd);
    unsetenv("CREDENTIALS_DIRECTORY");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(tok);
    return 0;
}

/* The config "[provider activeplatform]" + base_url + token_file + extra. */
static cq_config *load(const char *base_url, const char *extra, cq_err *err)
{
    char text[2048];

    snprintf(text, sizeof(text), "[provider activeplatform]\nbase_url = %s\ntoken_file = %s\n%s",
             base_url, tok, extra);
    cq_err_clear(err);
    return cq_config_load_string(text, "t.conf", err);
}

static void expect_error(const char *extra, const char *msg)
{
    cq_err err;
    cq_config *cfg = load("https://ap.example", extra, &err);

    if (cfg != NULL || strstr(err.msg, msg) == NULL)
        fail_msg("expected an error containing '%s', got '%s'", msg,
                 cfg != NULL ? "(loaded)" : err.msg);
    cq_config_free(cfg);
}

static void test_transport_key_errors(void **state)
{
    (void)state;
    expect_error("proxy = http://user:pw@proxy:3128\n",
                 "t.conf:4: [provider activeplatform] proxy: proxy must not contain a user name");
    expect_error("proxy = ftp://proxy:21\n", "proxy: proxy 'ftp://proxy:21': scheme must be http");
    expect_error("proxy = proxy:3128\n", "proxy: bad proxy 'proxy:3128'");
    expect_error("proxy = http://proxy:3128/path\n", "must not have a path");
    expect_error("no_proxy = example.com\n", "t.conf:4: [provider activeplatform] no_proxy: set "
                                             "without proxy");
    expect_error("client_cert_file = /nonexistent/c.pem\n",
                 "client_cert_file: set without client_key_file");
    expect_error("client_key_file = /nonexistent/k.pem\n",
                 "client_key_file: set without client_cert_file");
    expect_error("client_cert_file = /nonexistent/c.pem\nclient_key_file = /nonexistent/k.pem\n",
                 "cannot read '/nonexistent/c.pem'");
    expect_error("ca_file = /nonexistent/ca.pem\n",
                 "t.conf:4: [provider activeplatform] ca_file: cannot read '/nonexistent/ca.pem'");
    expect_error("ca_file = /dev/null\n", "ca_file: '/dev/null' is not a regular file");
}

static void test_transport_keys_load(void **state)
{
    cq_err err;
    cq_config *cfg;
    const cq_provider_conf *pc;

    (void)state;
    cfg = load("https://ap.example", "proxy = socks5h://127.0.0.1:1080\nno_proxy = localhost\n",
               &err);
    assert_non_null(cfg);
    pc = cq_config_provider(cfg, "activeplatform");
    assert_string_equal(pc->proxy, "socks5h://127.0.0.1:1080");
    assert_string_equal(pc->no_proxy, "localhost");
    assert_null(pc->ca_file);
    assert_null(pc->client_cert_file);
    cq_config_free(cfg);
}

static void test_insecure_warning(void **state)
{
    char buf[512];
    cq_err err;
    cq_config *cfg;
    FILE *f;
    char *out = NULL;
    size_t n = 0;

    (void)state;
    cfg = load("http://127.0.0.1:8089", "allow_insecure_http = yes\n", &err);
    assert_non_null(cfg);
    assert_true(cq_config_insecure(&cfg->providers[0], buf, sizeof(buf)));
    assert_non_null(strstr(buf, "base_url is http://: the API token is sent in clear text"));
    f = open_memstream(&out, &n);
    cq_config_print_summary(cfg, f);
    fclose(f);
    assert_non_null(strstr(out, "\n# WARNING: allow_insecure_http = yes and base_url is http://"));
    free(out);
    cq_config_free(cfg);

    /* allowed but unused: every URL https, nothing in clear */
    cfg = load("https://ap.example", "allow_insecure_http = yes\n", &err);
    assert_non_null(cfg);
    assert_false(cq_config_insecure(&cfg->providers[0], buf, sizeof(buf)));
    cq_config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transport_key_errors),
        cmocka_unit_test(test_transport_keys_load),
        cmocka_unit_test(test_insecure_warning),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
