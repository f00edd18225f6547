/* test_config.c - config file: value parsers, defaults, every error a user
 * can make (with the exact FILE:LINE: [section] key in the message), secret
 * path resolution and reading, the summary, and the shipped sample. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cancelq/config.h"

/* Every test runs inside a fresh temp dir (the cwd), so config files are
 * "t.conf" and messages read "t.conf:LINE: ...". */
typedef struct fixture {
    char dir[PATH_MAX];
    char orig_cwd[PATH_MAX];
} fixture;

static void write_file(const char *path, const char *content, size_t len)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    assert_int_equal(fwrite(content, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void write_text(const char *path, const char *text)
{
    write_file(path, text, strlen(text));
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof(*fx));

    if (fx == NULL || getcwd(fx->orig_cwd, sizeof(fx->orig_cwd)) == NULL)
        return -1;
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/cq-test-config-XXXXXX");
    if (mkdtemp(fx->dir) == NULL || chdir(fx->dir) != 0)
        return -1;
    unsetenv("CREDENTIALS_DIRECTORY");
    unsetenv("CQ_INSTANCE");
    write_text("x.token", "tok-123\n");
    write_text("secret.txt", "s3cr3t-value\n");
    write_text("password.txt", "pa55word\n");
    *state = fx;
    return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int teardown(void **state)
{
    fixture *fx = *state;
    int rc;

    unsetenv("CREDENTIALS_DIRECTORY");
    unsetenv("CQ_INSTANCE");
    rc = chdir(fx->orig_cwd);
    if (rc == 0)
        rc = nftw(fx->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return rc;
}

/* Load text from t.conf. */
static cq_config *load(const char *text, cq_err *err)
{
    write_text("t.conf", text);
    return cq_config_load("t.conf", err);
}

static cq_config *load_ok(const char *text)
{
    cq_err err = {{0}, {0}};
    cq_config *cfg = load(text, &err);

    if (cfg == NULL)
        fail_msg("load failed: %s", err.msg);
    return cfg;
}

/* The load must fail with a message starting with want. */
static void expect_error(const char *text, const char *want)
{
    cq_err err = {{0}, {0}};
    cq_config *cfg = load(text, &err);

    if (cfg != NULL) {
        cq_config_free(cfg);
        fail_msg("loaded, but wanted: %s", want);
    }
    if (strncmp(err.msg, want, strlen(want)) != 0)
        fail_msg("\n got: %s\nwant: %s", err.msg, want);
    assert_string_equal(err.code, "bad_config");
}

/* The load must fail with exactly this message. */
static void expect_error_exact(const char *text, const char *want)
{
    cq_err err = {{0}, {0}};
    cq_config *cfg = load(text, &err);

    if (cfg != NULL) {
        cq_config_free(cfg);
        fail_msg("loaded, but wanted: %s", want);
    }
    if (strcmp(err.msg, want) != 0)
        fail_msg("\n got: %s\nwant: %s", err.msg, want);
}

#define PROVIDER_OK                                                                                \
    "[provider intronis]\n"                                                                        \
    "base_url = https://api.example.com\n"                                                         \
    "token_file = x.token\n"

/* Value parsers ------------------------------------------------------------ */

static void test_parse_duration(void **state)
{
    static const struct {
        const char *s;
        uint64_t ms;
    } good[] = {
        {"250ms", 250},   {"15s", 15000},    {"10", 10000}, {"0", 0},         {"2m", 120000},
        {"3h", 10800000}, {"7d", 604800000}, {"0ms", 0},    {"1000ms", 1000}, {"007s", 7000},
    };
    static const char *const bad[] = {
        "",
        "-1",
        "-5s",
        "15x",
        "1.5s",
        " 5s",
        "5 s",
        "5s ",
        "+5",
        "s",
        "ms",
        "0x10",
        "5S",
        "5sec",
        "99999999999999999999",
        "18446744073709551615d",
        "213503982334602d",
        "1e3",
    };
    uint64_t v;

    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        v = 12345;
        if (cq_parse_duration_ms(good[i].s, &v) != 0)
            fail_msg("'%s' refused", good[i].s);
        assert_int_equal(v, good[i].ms);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (cq_parse_duration_ms(bad[i], &v) != -EINVAL)
            fail_msg("'%s' accepted", bad[i]);
    assert_int_equal(cq_parse_duration_ms(NULL, &v), -EINVAL);
}

static void test_parse_rate(void **state)
{
    static const struct {
        const char *s;
        double per_sec;
    } good[] = {
        {"20/s", 20},   {"600/m", 10}, {"3600/h", 1}, {"20", 20},
        {"0.5/s", 0.5}, {"1.5", 1.5},  {"30/m", 0.5},
    };
    static const char *const bad[] = {
        "",      "0",     "0/s",  "0.0", "-1/s", "20/x",   "/s",   "inf", "nan",    "1e3",
        "20/ s", "20 /s", "1./s", ".5",  "20/",  "20/sec", "0x10", "+3",  "20/s/s",
    };
    double v;

    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (cq_parse_rate(good[i].s, &v) != 0)
            fail_msg("'%s' refused", good[i].s);
        assert_true(v > good[i].per_sec - 1e-9 && v < good[i].per_sec + 1e-9);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (cq_parse_rate(bad[i], &v) != -EINVAL)
            fail_msg("'%s' accepted", bad[i]);
}

static void test_parse_bool(void **state)
{
    static const char *const yes[] = {"yes", "true", "on", "1", "YES", "True"};
    static const char *const no[] = {"no", "false", "off", "0", "NO", "Off"};
    static const char *const bad[] = {"", "maybe", "2", "y", "n", "yess", " yes"};
    bool v;

    (void)state;
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        v = false;
        assert_int_equal(cq_parse_bool(yes[i], &v), 0);
        assert_true(v);
    }
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        v = true;
        assert_int_equal(cq_parse_bool(no[i], &v), 0);
        assert_false(v);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (cq_parse_bool(bad[i], &v) != -EINVAL)
            fail_msg("'%s' accepted", bad[i]);
}

static void test_parse_hostport(void **state)
{
    char host[64];
    int port = -1;

    (void)state;
    assert_int_equal(cq_parse_hostport("127.0.0.1:9464", host, sizeof(host), &port), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 9464);
    assert_int_equal(cq_parse_hostport("[::1]:0", host, sizeof(host), &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 0);
    assert_int_equal(cq_parse_hostport("localhost:80", host, sizeof(host), &port), 0);
    assert_string_equal(host, "localhost");
    assert_int_equal(cq_parse_hostport("::1:9464", host, sizeof(host), &port), -EINVAL);
    assert_int_equal(cq_parse_hostport("[::1]9464", host, sizeof(host), &port), -EINVAL);
    assert_int_equal(cq_parse_hostport("[::1]:", host, sizeof(host), &port), -EINVAL);
    assert_int_equal(cq_parse_hostport(":9464", host, sizeof(host), &port), -EINVAL);
    assert_int_equal(cq_parse_hostport("h:65536", host, sizeof(host), &port), -EINVAL);
    assert_int_equal(cq_parse_hostport("h:-1", host, sizeof(host), &port), -EINVAL);
    assert_int_equal(cq_parse_hostport("h:12x", host, sizeof(host), &port), -EINVAL);
    assert_int_equal(cq_parse_hostport("9464", host, sizeof(host), &port), -EINVAL);
    assert_int_equal(cq_parse_hostport(NULL, host, sizeof(host), &port), -EINVAL);
    assert_int_equal(cq_parse_hostport("averyveryverylonghostname:1", host, 8, &port), -EINVAL);
}

static void test_sizes(void **state)
{
    cq_config *cfg;

    (void)state;
    cfg = load_ok(PROVIDER_OK "max_response = 512KiB\n");
    assert_int_equal(cfg->providers[0].max_response, 512 * 1024);
    cq_config_free(cfg);
    cfg = load_ok(PROVIDER_OK "max_response = 2MiB\n");
    assert_int_equal(cfg->providers[0].max_response, 2 * 1024 * 1024);
    cq_config_free(cfg);
    cfg = load_ok(PROVIDER_OK "max_response = 4096\n");
    assert_int_equal(cfg->providers[0].max_response, 4096);
    cq_config_free(cfg);
    cfg = load_ok(PROVIDER_OK "max_response = 1GiB\n");
    assert_int_equal(cfg->providers[0].max_response, 1024 * 1024 * 1024);
    cq_config_free(cfg);
    expect_error_exact(PROVIDER_OK "max_response = 1MB\n",
                       "t.conf:4: [provider intronis] max_response: bad size '1MB' (use bytes, "
                       "or a number with KiB, MiB or GiB)");
    expect_error_exact(PROVIDER_OK "max_response = 100\n",
                       "t.conf:4: [provider intronis] max_response: 100 is out of range "
                       "(1KiB..1GiB)");
    expect_error(PROVIDER_OK "max_response = -1KiB\n",
                 "t.conf:4: [provider intronis] max_response: bad size");
    expect_error(PROVIDER_OK "max_response = 99999999999999999999GiB\n",
                 "t.conf:4: [provider intronis] max_response: bad size");
}

static void test_ints_and_bools_in_file(void **state)
{
    (void)state;
    expect_error_exact("[worker]\nconcurrency = 0\n",
                       "t.conf:2: [worker] concurrency: 0 is out of range (1..10000)");
    expect_error_exact("[worker]\nconcurrency = 10001\n",
                       "t.conf:2: [worker] concurrency: 10001 is out of range (1..10000)");
    expect_error_exact("[worker]\nmax_attempts = ten\n",
                       "t.conf:2: [worker] max_attempts: bad integer 'ten'");
    expect_error_exact("[worker]\nmax_attempts = 10.0\n",
                       "t.conf:2: [worker] max_attempts: bad integer '10.0'");
    expect_error_exact("[worker]\nmax_attempts = 101\n",
                       "t.conf:2: [worker] max_attempts: 101 is out of range (1..100)");
    expect_error_exact("[worker]\nresults_maxlen = 999\n",
                       "t.conf:2: [worker] results_maxlen: 999 is out of range (1000..1000000000)");
    expect_error_exact("[redis]\nport = 99999999999999999999\n",
                       "t.conf:2: [redis] port: bad integer '99999999999999999999'");
    expect_error_exact("[redis]\nport = 0\n",
                       "t.conf:2: [redis] port: 0 is out of range (1..65535)");
    expect_error_exact(PROVIDER_OK "allow_insecure_http = maybe\n",
                       "t.conf:4: [provider intronis] allow_insecure_http: bad boolean 'maybe' "
                       "(use yes or no)");
    expect_error_exact(PROVIDER_OK "rate = fast\n",
                       "t.conf:4: [provider intronis] rate: bad rate 'fast' (use N/s, N/m or N/h)");
    expect_error_exact(PROVIDER_OK "format = yaml\n",
                       "t.conf:4: [provider intronis] format: bad format 'yaml' (use json or xml)");
    expect_error_exact("[redis]\nhost =\n",
                       "t.conf:2: [redis] host: empty value (comment the line out to get the "
                       "default)");
}

/* Defaults ----------------------------------------------------------------- */

static void expected_host_id(char *buf, size_t n, const char *instance)
{
    char host[256];

    assert_int_equal(gethostname(host, sizeof(host)), 0);
    host[sizeof(host) - 1] = '\0';
    snprintf(buf, n, "%s%s%s", host, instance ? "-" : "", instance ? instance : "");
}

static void test_defaults(void **state)
{
    fixture *fx = *state;
    cq_config *cfg = load_ok(PROVIDER_OK);
    const cq_provider_conf *p;
    char want[2 * PATH_MAX];

    assert_string_equal(cfg->path, "t.conf");
    assert_string_equal(cfg->redis.host, "127.0.0.1");
    assert_int_equal(cfg->redis.port, 6379);
    assert_null(cfg->redis.unix_socket);
    assert_null(cfg->redis.password_file);
    assert_int_equal(cfg->redis.db, 0);
    assert_string_equal(cfg->redis.prefix, "cancelq");
    assert_int_equal(cfg->redis.connect_timeout_ms, 2000);

    expected_host_id(want, sizeof(want), NULL);
    assert_string_equal(cfg->worker.id, want);
    assert_int_equal(cfg->worker.concurrency, 256);
    assert_int_equal(cfg->worker.max_attempts, 10);
    assert_int_equal(cfg->worker.backoff_base_ms, 1000);
    assert_int_equal(cfg->worker.backoff_max_ms, 5 * 60 * 1000);
    assert_int_equal(cfg->worker.retry_after_max_ms, 10 * 60 * 1000);
    assert_int_equal(cfg->worker.idempotency_ttl_ms, 7ULL * 24 * 3600 * 1000);
    assert_int_equal(cfg->worker.lease_ms, 15000);
    assert_int_equal(cfg->worker.heartbeat_ms, 5000);
    assert_int_equal(cfg->worker.shutdown_grace_ms, 20000);
    assert_int_equal(cfg->worker.results_maxlen, 1000000);
    assert_null(cfg->worker.metrics_listen);

    assert_int_equal(cfg->nproviders, 1);
    p = &cfg->providers[0];
    assert_string_equal(p->name, "intronis");
    assert_string_equal(p->adapter, "intronis");
    assert_string_equal(p->base_url, "https://api.example.com");
    assert_false(p->allow_insecure_http);
    assert_int_equal(p->format, CQ_FORMAT_JSON);
    assert_int_equal(p->cred, CQ_CRED_TOKEN_FILE);
    /* A bare name resolves next to the config file, as an absolute path. */
    snprintf(want, sizeof(want), "%s/x.token", fx->dir);
    assert_string_equal(p->token_file, want);
    assert_null(p->token_url);
    assert_null(p->client_id);
    assert_null(p->client_secret_file);
    assert_null(p->scope);
    assert_null(p->username);
    assert_null(p->password_file);
    assert_int_equal(p->timeout_ms, 30000);
    assert_int_equal(p->connect_timeout_ms, 5000);
    assert_int_equal(p->concurrency, 64);
    assert_true(p->rate == 0);
    assert_int_equal(p->burst, 0);
    assert_int_equal(p->max_response, 1024 * 1024);
    assert_int_equal(p->breaker_failures, 5);
    assert_int_equal(p->breaker_cooldown_ms, 30000);
    assert_int_equal(p->line, 1);
    assert_ptr_equal(cq_config_provider(cfg, "intronis"), p);
    assert_null(cq_config_provider(cfg, "nope"));
    assert_null(cq_config_provider(NULL, "intronis"));
    cq_config_free(cfg);
    cq_config_free(NULL);
}

static void test_empty_file_gives_defaults(void **state)
{
    cq_config *cfg = load_ok("");

    (void)state;
    assert_int_equal(cfg->nproviders, 0);
    assert_string_equal(cfg->redis.prefix, "cancelq");
    assert_int_equal(cfg->worker.lease_ms, 15000);
    cq_config_free(cfg);
}

static void test_worker_id_instance(void **state)
{
    cq_config *cfg;
    char want[300];

    (void)state;
    setenv("CQ_INSTANCE", "blue", 1);
    cfg = load_ok("");
    expected_host_id(want, sizeof(want), "blue");
    assert_string_equal(cfg->worker.id, want);
    cq_config_free(cfg);
    /* An explicit id wins. */
    cfg = load_ok("[worker]\nid = w-7\n");
    assert_string_equal(cfg->worker.id, "w-7");
    cq_config_free(cfg);
    setenv("CQ_INSTANCE", "has space", 1);
    expect_error("", "t.conf: [worker] id: default '");
    unsetenv("CQ_INSTANCE");
    expect_error_exact("[worker]\nid = a b\n",
                       "t.conf:2: [worker] id: bad id 'a b' (printable characters, no blanks)");
}

/* Every key set to a non-default value. */
static void test_all_keys(void **state)
{
    fixture *fx = *state;
    cq_config *cfg;
    const cq_provider_conf *p;
    char want[2 * PATH_MAX];

    (void)state;
    cfg = load_ok("[redis]\n"
                  "host = redis.internal\n"
                  "port = 6380\n"
                  "unix_socket = /run/redis/redis.sock\n"
                  "password_file = secret.txt\n"
                  "db = 3\n"
                  "prefix = billing-eu\n"
                  "connect_timeout = 750ms\n"
                  "[worker]\n"
                  "id = worker-a\n"
                  "concurrency = 100\n"
                  "max_attempts = 7\n"
                  "backoff_base = 2s\n"
                  "backoff_max = 1h\n"
                  "retry_after_max = 30m\n"
                  "idempotency_ttl = 30d\n"
                  "lease = 30s\n"
                  "shutdown_grace = 0\n"
                  "results_maxlen = 5000\n"
                  "metrics_listen = [::1]:9100\n"
                  "[provider ap-eu]\n"
                  "adapter = activeplatform\n"
                  "base_url = https://ap.example.com/api/\n"
                  "token_file = x.token\n"
                  "timeout = 1m\n"
                  "connect_timeout = 3s\n"
                  "concurrency = 100\n"
                  "rate = 600/m\n"
                  "max_response = 256KiB\n"
                  "breaker_failures = 3\n"
                  "breaker_cooldown = 2m\n"
                  "[provider intronis]\n"
                  "base_url = http://localhost:8089\n"
                  "allow_insecure_http = yes\n"
                  "format = xml\n"
                  "token_url = http://localhost:8089/oauth2/token/\n"
                  "client_id = cid\n"
                  "client_secret_file = secret.txt\n"
                  "scope = partner.write\n"
                  "rate = 5\n"
                  "burst = 1\n"
                  "[provider keliweb]\n"
                  "base_url = https://api.keliweb.example\n"
                  "token_url = https://api.keliweb.example/oauth/token\n"
                  "client_id = kw\n"
                  "client_secret_file = secret.txt\n"
                  "username = billing@example.com\n"
                  "password_file = password.txt\n");
    assert_string_equal(cfg->redis.host, "redis.internal");
    assert_int_equal(cfg->redis.port, 6380);
    assert_string_equal(cfg->redis.unix_socket, "/run/redis/redis.sock");
    snprintf(want, sizeof(want), "%s/secret.txt", fx->dir);
    assert_string_equal(cfg->redis.password_file, want);
    assert_int_equal(cfg->redis.db, 3);
    assert_string_equal(cfg->redis.prefix, "billing-eu");
    assert_int_equal(cfg->redis.connect_timeout_ms, 750);
    assert_string_equal(cfg->worker.id, "worker-a");
    assert_int_equal(cfg->worker.concurrency, 100);
    assert_int_equal(cfg->worker.max_attempts, 7);
    assert_int_equal(cfg->worker.backoff_base_ms, 2000);
    assert_int_equal(cfg->worker.backoff_max_ms, 3600000);
    assert_int_equal(cfg->worker.retry_after_max_ms, 1800000);
    assert_int_equal(cfg->worker.idempotency_ttl_ms, 30ULL * 86400000);
    assert_int_equal(cfg->worker.lease_ms, 30000);
    assert_int_equal(cfg->worker.heartbeat_ms, 10000);
    assert_int_equal(cfg->worker.shutdown_grace_ms, 0);
    assert_int_equal(cfg->worker.results_maxlen, 5000);
    assert_string_equal(cfg->worker.metrics_listen, "[::1]:9100");

    assert_int_equal(cfg->nproviders, 3);
    p = cq_config_provider(cfg, "ap-eu");
    assert_non_null(p);
    assert_string_equal(p->adapter, "activeplatform");
    assert_string_equal(p->base_url, "https://ap.example.com/api");
    assert_int_equal(p->timeout_ms, 60000);
    assert_int_equal(p->connect_timeout_ms, 3000);
    assert_int_equal(p->concurrency, 100);
    assert_true(p->rate > 9.999 && p->rate < 10.001);
    assert_int_equal(p->burst, 10); /* default once a rate is set */
    assert_int_equal(p->max_response, 256 * 1024);
    assert_int_equal(p->breaker_failures, 3);
    assert_int_equal(p->breaker_cooldown_ms, 120000);
    assert_int_equal(p->line, 21);

    p = cq_config_provider(cfg, "intronis");
    assert_int_equal(p->format, CQ_FORMAT_XML);
    assert_true(p->allow_insecure_http);
    assert_int_equal(p->cred, CQ_CRED_CLIENT_CREDENTIALS);
    assert_string_equal(p->token_url, "http://localhost:8089/oauth2/token");
    assert_string_equal(p->client_id, "cid");
    assert_string_equal(p->client_secret_file, want);
    assert_string_equal(p->scope, "partner.write");
    assert_null(p->token_file);
    assert_true(p->rate == 5);
    assert_int_equal(p->burst, 1);
    assert_int_equal(p->concurrency, 64);

    p = cq_config_provider(cfg, "keliweb");
    assert_int_equal(p->cred, CQ_CRED_PASSWORD);
    assert_string_equal(p->username, "billing@example.com");
    snprintf(want, sizeof(want), "%s/password.txt", fx->dir);
    assert_string_equal(p->password_file, want);
    assert_null(p->scope);
    cq_config_free(cfg);
}

/* Syntax the reader handles itself -------------------------------------- */

static void test_layout(void **state)
{
    char name64[65], text[400];
    cq_config *cfg;

    (void)state;
    /* Indented keys are keys, not continuation lines; comments, CRLF,
     * "key: value", a BOM and blank lines are fine. */
    cfg = load_ok("\xEF\xBB\xBF# comment\r\n"
                  "; another\n"
                  "\n"
                  "[ redis ]  ; trailing comment\r\n"
                  "    host = h1\r\n"
                  "    port: 7000\r\n"
                  "\t prefix = p ; inline comment\n"
                  "[provider   intronis]\n"
                  "  base_url = https://a.example\n"
                  "  token_file = x.token\n");
    assert_string_equal(cfg->redis.host, "h1");
    assert_int_equal(cfg->redis.port, 7000);
    assert_string_equal(cfg->redis.prefix, "p");
    assert_int_equal(cfg->providers[0].line, 8);
    cq_config_free(cfg);

    /* A 64-character provider name survives (inih alone would cut it). */
    memset(name64, 'n', 64);
    name64[64] = '\0';
    snprintf(text, sizeof(text),
             "[provider %s]\nadapter = keliweb\nbase_url = https://k.example\ntoken_file = "
             "x.token\n",
             name64);
    cfg = load_ok(text);
    assert_string_equal(cfg->providers[0].name, name64);
    assert_non_null(cq_config_provider(cfg, name64));
    cq_config_free(cfg);
    snprintf(text, sizeof(text), "[provider %sn]\nadapter = keliweb\n", name64);
    expect_error(text, "t.conf:1: [provider nnnn");
}

static void test_syntax_errors(void **state)
{
    char text[400];

    (void)state;
    expect_error_exact("[redis]\nhost\n",
                       "t.conf:2: syntax error: expected 'key = value' or [section]");
    expect_error_exact("[redis]\nport = 1\n[worker\n",
                       "t.conf:3: syntax error: section header without ']'");
    expect_error_exact("[redis] x\n", "t.conf:1: syntax error: text after ']'");
    expect_error_exact("[redis]\n= 5\n", "t.conf:2: syntax error: expected 'key = value'");
    expect_error_exact("host = x\n",
                       "t.conf:1: host: key outside any section (add [redis], [worker] or "
                       "[provider NAME] above it)");
    snprintf(text, sizeof(text), "[redis]\nhost = %0250d\n", 0);
    expect_error(text, "t.conf:2: line too long (at most ");
    write_file("t.conf", "[redis]\nho\0st = x\n", 18);
    {
        cq_err err;

        assert_null(cq_config_load("t.conf", &err));
        assert_string_equal(err.msg, "t.conf:2: line contains a NUL byte");
    }
}

/* Errors users make ------------------------------------------------------- */

static void test_unknown_key(void **state)
{
    (void)state;
    expect_error_exact("[redis]\nport = 6379\n\n"
                       "[provider intronis]\n"
                       "base_url = https://api.example.com\n"
                       "token_file = x.token\n"
                       "timeot = 10s\n",
                       "t.conf:7: [provider intronis] timeot: unknown key (did you mean timeout?)");
    expect_error_exact("[worker]\nfrobnicate = 1\n", "t.conf:2: [worker] frobnicate: unknown key");
    /* A key of another section is unknown here. */
    expect_error("[redis]\nlease = 15s\n", "t.conf:2: [redis] lease: unknown key");
    expect_error(PROVIDER_OK "token = abc\n",
                 "t.conf:4: [provider intronis] token: unknown key (secrets are never written");
    expect_error_exact("[redis]\nport = 1\nport = 2\n",
                       "t.conf:3: [redis] port: set twice (first on line 2)");
}

static void test_bad_duration(void **state)
{
    (void)state;
    expect_error_exact("[worker]\nlease = 15x\n",
                       "t.conf:2: [worker] lease: bad duration '15x' (use a number with ms, s, m, "
                       "h or d)");
    expect_error_exact("[worker]\nlease = 500ms\n",
                       "t.conf:2: [worker] lease: 500ms is out of range (1s..1h)");
    expect_error_exact("[worker]\nlease = -15s\n",
                       "t.conf:2: [worker] lease: bad duration '-15s' (use a number with ms, s, "
                       "m, h or d)");
    expect_error_exact("[worker]\nbackoff_base = 10m\n",
                       "t.conf:2: [worker] backoff_base: backoff_max 5m is below backoff_base 10m");
    expect_error_exact("[worker]\nbackoff_base = 10s\nbackoff_max = 5s\n",
                       "t.conf:3: [worker] backoff_max: backoff_max 5s is below backoff_base 10s");
}

static void test_insecure_urls(void **state)
{
    cq_config *cfg;

    (void)state;
    expect_error_exact("[redis]\n\n[provider keliweb]\n"
                       "base_url = http://127.0.0.1:8089\n"
                       "token_file = x.token\n",
                       "t.conf:4: [provider keliweb] base_url: 'http://127.0.0.1:8089' is not "
                       "https (set allow_insecure_http = yes for local sandboxes)");
    /* allow_insecure_http may come after base_url. */
    cfg = load_ok("[provider keliweb]\nbase_url = http://127.0.0.1:8089/\ntoken_file = x.token\n"
                  "allow_insecure_http = yes\n");
    assert_string_equal(cfg->providers[0].base_url, "http://127.0.0.1:8089");
    cq_config_free(cfg);
    expect_error("[provider intronis]\nbase_url = https://a.example\n"
                 "token_url = http://a.example/token\nclient_id = c\n"
                 "client_secret_file = secret.txt\n",
                 "t.conf:3: [provider intronis] token_url: 'http://a.example/token' is not https");
    expect_error("[provider intronis]\nbase_url = ftp://a.example\ntoken_file = x.token\n",
                 "t.conf:2: [provider intronis] base_url: 'ftp://a.example' is not https");
    expect_error("[provider intronis]\nbase_url = https://user:pw@a.example\n",
                 "t.conf:2: [provider intronis] base_url: must not contain a user name");
    expect_error("[provider intronis]\nbase_url = https://a.example/?x=1\n",
                 "t.conf:2: [provider intronis] base_url: bad URL");
    expect_error("[provider intronis]\nbase_url = https://\n",
                 "t.conf:2: [provider intronis] base_url: bad URL 'https://'");
}

static void test_missing_token_file(void **state)
{
    (void)state;
    expect_error_exact("[provider intronis]\nbase_url = https://a.example\n"
                       "token_file = /x/y\n",
                       "t.conf:3: [provider intronis] token_file: cannot read '/x/y': No such "
                       "file or directory");
    write_text("empty.token", "\n");
    expect_error("[provider intronis]\nbase_url = https://a.example\ntoken_file = empty.token\n",
                 "t.conf:3: [provider intronis] token_file: '");
    expect_error("[redis]\npassword_file = /nonexistent\n",
                 "t.conf:2: [redis] password_file: cannot read '/nonexistent': No such file");
}

static void test_sections(void **state)
{
    (void)state;
    expect_error_exact("[redis]\n[workers]\nlease = 1s\n",
                       "t.conf:2: [workers]: unknown section (expected [redis], [worker] or "
                       "[provider NAME])");
    /* Also when it has no keys at all. */
    expect_error("[redis]\n[providers]\n", "t.conf:2: [providers]: unknown section");
    expect_error_exact("[redis]\n[redis]\n",
                       "t.conf:2: [redis]: duplicate section (first on line 1)");
    expect_error_exact("[provider]\n", "t.conf:1: [provider]: bad provider name '' (1..64 "
                                       "characters of A-Z a-z 0-9 _ -)");
    expect_error("[provider a.b]\n", "t.conf:1: [provider a.b]: bad provider name 'a.b'");
    expect_error_exact(PROVIDER_OK "\n[provider intronis]\nbase_url = https://b.example\n",
                       "t.conf:5: [provider intronis]: duplicate provider (first defined on line "
                       "1)");
}

static void test_missing_base_url(void **state)
{
    (void)state;
    expect_error_exact("[redis]\n\n[provider intronis]\ntoken_file = x.token\n\n[worker]\n",
                       "t.conf:3: [provider intronis] base_url: missing (required)");
    /* An empty last section is checked too. */
    expect_error_exact("[redis]\n[provider keliweb]\n",
                       "t.conf:2: [provider keliweb] base_url: missing (required)");
}

static void test_adapters(void **state)
{
    cq_config *cfg;

    (void)state;
    expect_error("[provider acme]\nbase_url = https://a.example\ntoken_file = x.token\n",
                 "t.conf:1: [provider acme] adapter: no adapter named 'acme' (the default is the "
                 "instance name; set adapter =)");
    expect_error("[provider acme]\nadapter = acme\nbase_url = https://a.example\n",
                 "t.conf:2: [provider acme] adapter: no adapter named 'acme' (known: intronis");
    expect_error_exact("[provider activeplatform]\nbase_url = https://a.example\n"
                       "token_file = x.token\nformat = xml\n",
                       "t.conf:4: [provider activeplatform] format: xml is not supported by "
                       "adapter 'activeplatform' (use json)");
    cfg = load_ok(PROVIDER_OK "format = xml\n");
    assert_int_equal(cfg->providers[0].format, CQ_FORMAT_XML);
    cq_config_free(cfg);
}

static void test_credentials(void **state)
{
    (void)state;
    expect_error_exact("[provider intronis]\nbase_url = https://a.example\ntoken_file = x.token\n"
                       "token_url = https://a.example/token\n",
                       "t.conf:4: [provider intronis] token_url: conflicts with token_file (line "
                       "3): use a static token_file or the OAuth2 keys, not both");
    expect_error_exact("[provider intronis]\nbase_url = https://a.example\n",
                       "t.conf:1: [provider intronis]: no credentials (set token_file, or "
                       "token_url, client_id and client_secret_file)");
    expect_error_exact("[provider activeplatform]\nbase_url = https://a.example\n",
                       "t.conf:1: [provider activeplatform]: no credentials (set token_file)");
    expect_error_exact("[provider activeplatform]\nbase_url = https://a.example\n"
                       "client_id = x\n",
                       "t.conf:3: [provider activeplatform] client_id: adapter 'activeplatform' "
                       "has no OAuth2 grant (use token_file)");
    expect_error_exact("[provider intronis]\nbase_url = https://a.example\n"
                       "token_url = https://a.example/t\nclient_id = c\n",
                       "t.conf:1: [provider intronis] client_secret_file: missing (the OAuth2 "
                       "client credentials grant needs token_url, client_id, client_secret_file)");
    expect_error_exact("[provider intronis]\nbase_url = https://a.example\n"
                       "token_url = https://a.example/t\nclient_id = c\n"
                       "client_secret_file = secret.txt\nusername = u\n",
                       "t.conf:6: [provider intronis] username: not used by the OAuth2 client "
                       "credentials grant of adapter 'intronis'");
    expect_error_exact("[provider keliweb]\nbase_url = https://a.example\n"
                       "token_url = https://a.example/t\nclient_id = c\n"
                       "client_secret_file = secret.txt\nusername = u\n",
                       "t.conf:1: [provider keliweb] password_file: missing (the OAuth2 password "
                       "grant needs token_url, client_id, client_secret_file, username and "
                       "password_file)");
    expect_error("[provider keliweb]\nbase_url = https://a.example\n"
                 "token_url = https://a.example/t\nclient_id = c\nscope = s\n"
                 "client_secret_file = secret.txt\nusername = u\npassword_file = password.txt\n",
                 "t.conf:5: [provider keliweb] scope: not used by the OAuth2 password grant");
}

static void test_prefix(void **state)
{
    char text[200];

    (void)state;
    expect_error_exact("[redis]\nprefix = can{q}\n",
                       "t.conf:2: [redis] prefix: bad prefix 'can{q}' (no '{', '}', ':' or "
                       "blanks)");
    expect_error("[redis]\nprefix = a:b\n", "t.conf:2: [redis] prefix: bad prefix 'a:b'");
    expect_error("[redis]\nprefix = a b\n", "t.conf:2: [redis] prefix: bad prefix 'a b'");
    snprintf(text, sizeof(text), "[redis]\nprefix = %065d\n", 0);
    expect_error_exact(text, "t.conf:2: [redis] prefix: longer than 64 characters");
    expect_error_exact("[redis]\nunix_socket = redis.sock\n",
                       "t.conf:2: [redis] unix_socket: 'redis.sock' is not an absolute path");
}

static void test_limits(void **state)
{
    cq_config *cfg;

    (void)state;
    /* concurrency is the deployment's: above one worker's is fine; this
     * worker's part (local_concurrency) is capped by the worker */
    cfg = load_ok("[worker]\nconcurrency = 10\n" PROVIDER_OK "concurrency = 20\n");
    assert_int_equal(cfg->providers[0].concurrency, 20);
    assert_int_equal(cfg->providers[0].local_concurrency, 10);
    cq_config_free(cfg);
    expect_error_exact("[worker]\nconcurrency = 10\n" PROVIDER_OK "local_concurrency = 20\n",
                       "t.conf:6: [provider intronis] local_concurrency: 20 exceeds [worker] "
                       "concurrency 10");
    /* [worker] may come after the providers. */
    expect_error_exact(PROVIDER_OK "local_concurrency = 20\n[worker]\nconcurrency = 10\n",
                       "t.conf:4: [provider intronis] local_concurrency: 20 exceeds [worker] "
                       "concurrency 10");
    /* The default follows a lower worker concurrency. */
    cfg = load_ok("[worker]\nconcurrency = 10\n" PROVIDER_OK);
    assert_int_equal(cfg->providers[0].concurrency, 64);
    assert_int_equal(cfg->providers[0].local_concurrency, 10);
    cq_config_free(cfg);
    expect_error_exact(PROVIDER_OK "burst = 5\n",
                       "t.conf:4: [provider intronis] burst: set without rate (burst only applies "
                       "to a rate limit)");
    expect_error_exact(PROVIDER_OK "rate = 20/s\nburst = 0\n",
                       "t.conf:5: [provider intronis] burst: 0 is out of range (1..1000000)");
    expect_error(PROVIDER_OK "rate = 0/s\n", "t.conf:4: [provider intronis] rate: bad rate '0/s'");
    expect_error_exact("[worker]\nmetrics_listen = 9100\n",
                       "t.conf:2: [worker] metrics_listen: bad address '9100': must be host:port");
    expect_error_exact("[worker]\nmetrics_listen = ::1:9100\n",
                       "t.conf:2: [worker] metrics_listen: bad address '::1:9100': write an IPv6 "
                       "address in brackets: [::1]:9100");
    expect_error_exact("[worker]\nmetrics_listen = 127.0.0.1:70000\n",
                       "t.conf:2: [worker] metrics_listen: bad address '127.0.0.1:70000': port "
                       "must be 1..65535");
}

/* Secrets ------------------------------------------------------------------ */

static void test_credentials_directory(void **state)
{
    fixture *fx = *state;
    cq_config *cfg;
    char creds[PATH_MAX + 16], want[2 * PATH_MAX];

    snprintf(creds, sizeof(creds), "%s/creds", fx->dir);
    assert_int_equal(mkdir(creds, 0700), 0);
    assert_int_equal(mkdir("sub", 0700), 0);
    write_text("creds/cred.token", "from-credentials-dir\n");
    write_text("sub/rel.token", "relative\n");
    setenv("CREDENTIALS_DIRECTORY", creds, 1);

    /* A bare name is looked up in $CREDENTIALS_DIRECTORY... */
    cfg = load_ok("[provider intronis]\nbase_url = https://a.example\ntoken_file = cred.token\n");
    snprintf(want, sizeof(want), "%s/cred.token", creds);
    assert_string_equal(cfg->providers[0].token_file, want);
    cq_config_free(cfg);
    /* ...and only there. */
    snprintf(want, sizeof(want),
             "t.conf:3: [provider intronis] token_file: cannot read '%s/x.token': No such file "
             "or directory",
             creds);
    expect_error_exact(PROVIDER_OK, want);
    /* A relative path with a '/' is relative to the config file. */
    cfg =
        load_ok("[provider intronis]\nbase_url = https://a.example\ntoken_file = sub/rel.token\n");
    snprintf(want, sizeof(want), "%s/sub/rel.token", fx->dir);
    assert_string_equal(cfg->providers[0].token_file, want);
    cq_config_free(cfg);
    /* Absolute paths are used as they are. */
    snprintf(want, sizeof(want),
             "[provider intronis]\nbase_url = https://a.example\ntoken_file = %s/x.token\n",
             fx->dir);
    cfg = load_ok(want);
    snprintf(want, sizeof(want), "%s/x.token", fx->dir);
    assert_string_equal(cfg->providers[0].token_file, want);
    cq_config_free(cfg);
    unsetenv("CREDENTIALS_DIRECTORY");

    /* Without $CREDENTIALS_DIRECTORY, a bare name sits next to the config,
     * even when that is loaded from another directory. */
    write_text("sub/other.conf", "[provider intronis]\nbase_url = https://a.example\n"
                                 "token_file = rel.token\n");
    {
        cq_err err;

        cfg = cq_config_load("sub/other.conf", &err);
        assert_non_null(cfg);
        snprintf(want, sizeof(want), "%s/sub/rel.token", fx->dir);
        assert_string_equal(cfg->providers[0].token_file, want);
        cq_config_free(cfg);
    }
}

/* cancelqctl loads without the secrets: paths resolve, files are not read. */
static void test_skip_secrets(void **state)
{
    fixture *fx = *state;
    const char *text = "[redis]\npassword_file = redis.pw\n"
                       "[provider intronis]\nbase_url = https://a.example\n"
                       "token_file = gone.token\n";
    char want[2 * PATH_MAX];
    cq_config *cfg;
    cq_err err;

    expect_error(text, "t.conf:2: [redis] password_file: cannot read '");
    cfg = cq_config_load_ex("t.conf", CQ_CONFIG_SKIP_SECRETS, &err);
    if (cfg == NULL) {
        fail_msg("load failed: %s", err.msg);
        return; /* not reached */
    }
    snprintf(want, sizeof(want), "%s/redis.pw", fx->dir);
    assert_string_equal(cfg->redis.password_file, want);
    snprintf(want, sizeof(want), "%s/gone.token", fx->dir);
    assert_string_equal(cfg->providers[0].token_file, want);
    assert_int_equal(cfg->providers[0].cred, CQ_CRED_TOKEN_FILE);
    cq_config_free(cfg);
    /* Everything else is still checked. */
    write_text("t.conf", "[redis]\nprefix = a:b\n");
    assert_null(cq_config_load_ex("t.conf", CQ_CONFIG_SKIP_SECRETS, &err));
    assert_string_equal(err.msg, "t.conf:2: [redis] prefix: bad prefix 'a:b' (no '{', '}', ':' "
                                 "or blanks)");
    write_text("t.conf", "[provider intronis]\nbase_url = https://a.example\n");
    assert_null(cq_config_load_ex("t.conf", CQ_CONFIG_SKIP_SECRETS, &err));
    assert_string_equal(err.msg, "t.conf:1: [provider intronis]: no credentials (set token_file, "
                                 "or token_url, client_id and client_secret_file)");
}

static void test_secret_read(void **state)
{
    char *s = NULL, big[CQ_SECRET_MAX + 2];
    cq_err err;

    (void)state;
    write_text("a", "tok\r\n");
    assert_int_equal(cq_secret_read("a", &s, &err), 0);
    assert_string_equal(s, "tok");
    cq_secret_free(s);
    write_text("a", "tok");
    assert_int_equal(cq_secret_read("a", &s, &err), 0);
    assert_string_equal(s, "tok");
    cq_secret_free(s);
    write_text("a", "t o k\n\n\n");
    assert_int_equal(cq_secret_read("a", &s, &err), 0);
    assert_string_equal(s, "t o k");
    cq_secret_free(s);

    /* Exactly the limit is fine, even with a newline after it; one more is not. */
    memset(big, 'k', sizeof(big));
    write_file("a", big, CQ_SECRET_MAX);
    assert_int_equal(cq_secret_read("a", &s, &err), 0);
    assert_int_equal(strlen(s), CQ_SECRET_MAX);
    cq_secret_free(s);
    write_file("a", big, CQ_SECRET_MAX + 1);
    assert_int_equal(cq_secret_read("a", &s, &err), -EFBIG);
    assert_null(s);
    assert_string_equal(err.msg, "'a' is larger than 8192 bytes");
    assert_null(strstr(err.msg, "kkkk"));

    write_text("a", "");
    assert_int_equal(cq_secret_read("a", &s, &err), -EINVAL);
    assert_string_equal(err.msg, "'a' is empty");
    write_text("a", "\r\n");
    assert_int_equal(cq_secret_read("a", &s, &err), -EINVAL);
    assert_string_equal(err.msg, "'a' is empty");
    write_text("a", "line1\nline2\n");
    assert_int_equal(cq_secret_read("a", &s, &err), -EINVAL);
    assert_null(strstr(err.msg, "line1"));
    write_file("a", "ab\0cd", 5);
    assert_int_equal(cq_secret_read("a", &s, &err), -EINVAL);

    assert_int_equal(cq_secret_read("missing", &s, &err), -ENOENT);
    assert_null(s);
    assert_string_equal(err.msg, "cannot read 'missing': No such file or directory");
    assert_int_equal(cq_secret_read(".", &s, &err), -EINVAL);
    assert_string_equal(err.msg, "'.' is not a regular file");
    /* NULL err is allowed. */
    assert_int_equal(cq_secret_read("missing", &s, NULL), -ENOENT);
    cq_secret_free(NULL);
}

/* Summary, sample, load_string ------------------------------------------- */

static char *summary_of(const cq_config *cfg)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    assert_non_null(f);
    cq_config_print_summary(cfg, f);
    assert_int_equal(fclose(f), 0);
    return buf;
}

static void test_sentinels(void **state)
{
    cq_err err = {{0}, {0}};
    cq_config *cfg;

    (void)state;
    expect_error_exact("[redis]\nsentinels = 127.0.0.1:26379\n",
                       "t.conf:2: [redis] sentinels: needs master_name");
    expect_error_exact("[redis]\nmaster_name = m\n",
                       "t.conf:2: [redis] master_name: set without sentinels");
    expect_error_exact(
        "[redis]\nsentinels = a:1,nope\nmaster_name = m\n",
        "t.conf:2: [redis] sentinels: 'nope' is not host:port (e.g. 10.0.0.5:26379)");
    expect_error_exact("[redis]\nunix_socket = /run/r.sock\nsentinels = a:1\nmaster_name = m\n",
                       "t.conf:3: [redis] sentinels: cannot be used with unix_socket");
    expect_error_exact("[redis]\ncluster = a:1\ndb = 2\n",
                       "t.conf:2: [redis] cluster: a Redis Cluster has only db 0");
    expect_error_exact("[redis]\ncluster = a:1\nsentinels = b:2\nmaster_name = m\n",
                       "t.conf:3: [redis] sentinels: sentinels and cluster exclude each other");
    cfg = load("[redis]\nsentinels = 10.0.0.5:26379,[::1]:26380\nmaster_name = cq\n", &err);
    assert_non_null(cfg);
    assert_string_equal(cfg->redis.sentinels, "10.0.0.5:26379,[::1]:26380");
    assert_string_equal(cfg->redis.master_name, "cq");
    cq_config_free(cfg);
}

static void test_summary(void **state)
{
    cq_config *cfg, *again;
    char *text, *text2;

    (void)state;
    cfg = load_ok("[redis]\npassword_file = secret.txt\n[worker]\nid = w1\n"
                  "[provider intronis]\nbase_url = https://a.example\n"
                  "token_url = https://a.example/t\nclient_id = c\n"
                  "client_secret_file = secret.txt\nrate = 30/m\n"
                  "[provider keliweb]\nbase_url = https://k.example\ntoken_file = x.token\n");
    text = summary_of(cfg);
    assert_null(strstr(text, "s3cr3t"));
    assert_null(strstr(text, "tok-123"));
    assert_non_null(strstr(text, "# target: 127.0.0.1:6379 db 0\n"));
    assert_non_null(strstr(text, "# keys: {cancelq}:jobs"));
    assert_non_null(strstr(text, "\nid = w1\n"));
    assert_non_null(strstr(text, "\nlease = 15s\n"));
    assert_non_null(strstr(text, "# heartbeat every 5s"));
    assert_non_null(strstr(text, "[provider intronis]\n# credentials: OAuth2 client credentials"));
    assert_non_null(strstr(text, "\nclient_secret_file = /"));
    assert_non_null(strstr(text, "\nrate = 30/m\nburst = 10\n"));
    assert_non_null(strstr(text, "\nmax_response = 1MiB\n"));
    assert_non_null(
        strstr(text, "[provider keliweb]\n# credentials: static token from token_file"));

    /* The summary is itself a valid config that loads to the same values. */
    write_text("summary.conf", text);
    {
        cq_err err;

        again = cq_config_load("summary.conf", &err);
        if (again == NULL)
            fail_msg("summary does not load: %s", err.msg);
    }
    text2 = summary_of(again);
    assert_string_equal(strchr(text, '\n'), strchr(text2, '\n'));
    free(text2);
    cq_config_free(again);
    free(text);
    cq_config_free(cfg);
    cq_config_print_summary(NULL, stdout);
}

static void test_sample_conf(void **state)
{
    fixture *fx = *state;
    char path[PATH_MAX + 32], want[2 * PATH_MAX], confdir[PATH_MAX], *slash;
    const cq_provider_conf *p;
    cq_config *cfg;
    cq_err err;
    char *text;

    snprintf(path, sizeof(path), "%s/conf/cancelq.conf", fx->orig_cwd);
    cfg = cq_config_load(path, &err);
    if (cfg == NULL) {
        fail_msg("conf/cancelq.conf: %s (run from the repository root)", err.msg);
        return; /* not reached: fail_msg() jumps out, but the analyzer cannot tell */
    }
    assert_non_null(realpath(path, confdir));
    slash = strrchr(confdir, '/');
    assert_non_null(slash);
    if (slash != NULL)
        *slash = '\0';
    assert_string_equal(cfg->redis.host, "127.0.0.1");
    assert_int_equal(cfg->redis.port, 6379);
    assert_int_equal(cfg->nproviders, 3);
    for (size_t i = 0; i < cfg->nproviders; i++) {
        p = &cfg->providers[i];
        assert_string_equal(p->adapter, p->name);
        assert_string_equal(p->base_url, "http://127.0.0.1:8089");
        assert_true(p->allow_insecure_http);
        assert_int_equal(p->cred, CQ_CRED_TOKEN_FILE);
        snprintf(want, sizeof(want), "%s/%s.token", confdir, p->name);
        assert_string_equal(p->token_file, want);
    }
    assert_non_null(cq_config_provider(cfg, "intronis"));
    assert_non_null(cq_config_provider(cfg, "activeplatform"));
    assert_non_null(cq_config_provider(cfg, "keliweb"));
    text = summary_of(cfg);
    assert_null(strstr(text, "sandbox-"));
    free(text);
    cq_config_free(cfg);
}

static void test_load_string_and_files(void **state)
{
    cq_config *cfg;
    cq_err err;

    (void)state;
    /* Relative secret paths resolve against the current directory. */
    cfg = cq_config_load_string(PROVIDER_OK, "inline", &err);
    assert_non_null(cfg);
    assert_string_equal(cfg->path, "inline");
    assert_string_equal(cfg->providers[0].token_file, "x.token");
    cq_config_free(cfg);
    assert_null(cq_config_load_string("[worker]\nlease = 1x\n", "inline", &err));
    assert_string_equal(err.msg, "inline:2: [worker] lease: bad duration '1x' (use a number with "
                                 "ms, s, m, h or d)");
    assert_null(cq_config_load_string(NULL, "inline", &err));

    assert_null(cq_config_load("no-such.conf", &err));
    assert_string_equal(err.msg, "no-such.conf: cannot read: No such file or directory");
    assert_null(cq_config_load(".", &err));
    assert_null(cq_config_load(NULL, &err));
    /* err may be NULL. */
    assert_null(cq_config_load("no-such.conf", NULL));
    assert_null(cq_config_load_string("[x]\n", "inline", NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_parse_duration, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_rate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_bool, setup, teardown),
        cmocka_unit_test(test_parse_hostport),
        cmocka_unit_test_setup_teardown(test_sizes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ints_and_bools_in_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_file_gives_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_worker_id_instance, setup, teardown),
        cmocka_unit_test_setup_teardown(test_all_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_layout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_syntax_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_duration, setup, teardown),
        cmocka_unit_test_setup_teardown(test_insecure_urls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_token_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_base_url, setup, teardown),
        cmocka_unit_test_setup_teardown(test_adapters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_credentials, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prefix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_credentials_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_skip_secrets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sentinels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_summary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sample_conf, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_string_and_files, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
