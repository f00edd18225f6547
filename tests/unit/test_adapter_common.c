/* test_adapter_common.c - registry, request helpers, URL building, the
 * classification rows every adapter shares, verdicts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "cancelq/adapter.h"

static cq_response http(long status)
{
    cq_response r;

    memset(&r, 0, sizeof(r));
    r.status = status;
    r.transport = CQ_TR_OK;
    r.body = "";
    r.now_ms = 1700000000000;
    return r;
}

static cq_response transport(cq_transport t)
{
    cq_response r = http(0);

    r.transport = t;
    r.transport_msg = "Connection refused";
    return r;
}

/* Registry ---------------------------------------------------------------- */

static void test_registry(void **state)
{
    const cq_adapter *const *all;
    size_t n = 0;

    (void)state;
    all = cq_adapters(&n);
    assert_int_equal(n, 3);
    assert_string_equal(all[0]->name, "intronis");
    assert_string_equal(all[1]->name, "activeplatform");
    assert_string_equal(all[2]->name, "keliweb");
    for (size_t i = 0; i < n; i++)
        assert_ptr_equal(cq_adapter_find(all[i]->name), all[i]);
    assert_null(cq_adapter_find("Intronis"));
    assert_null(cq_adapter_find("nope"));
    assert_null(cq_adapter_find(NULL));
}

static void test_actions(void **state)
{
    const cq_adapter *ap = cq_adapter_find("activeplatform");
    const cq_adapter *in = cq_adapter_find("intronis");
    const cq_adapter *kw = cq_adapter_find("keliweb");

    (void)state;
    assert_non_null(cq_adapter_action(ap, "delete_subscription"));
    assert_non_null(cq_adapter_action(ap, "stop_subscription"));
    assert_non_null(cq_adapter_action(in, "cancel_partner"));
    assert_non_null(cq_adapter_action(kw, "cancel_service"));
    assert_null(cq_adapter_action(in, "delete_subscription"));
    assert_null(cq_adapter_action(NULL, "cancel_partner"));
    assert_null(cq_adapter_action(in, NULL));
    /* Every action can classify and validate; lookups come in pairs. */
    for (const cq_adapter *a = in; a != NULL; a = (a == in ? ap : a == ap ? kw : NULL))
        for (size_t i = 0; i < a->nactions; i++) {
            const cq_action *act = &a->actions[i];

            assert_non_null(act->validate);
            assert_non_null(act->build);
            assert_non_null(act->classify);
            assert_true((act->build_check == NULL) == (act->classify_check == NULL));
        }
}

/* Requests ---------------------------------------------------------------- */

static void test_request_helpers(void **state)
{
    cq_request req;

    (void)state;
    memset(&req, 0, sizeof(req));
    assert_int_equal(cq_request_add_header(&req, "Accept: application/json"), 0);
    assert_string_equal(req.headers[0], "Accept: application/json");
    assert_int_equal(cq_request_add_header(&req, "X: a\r\nEvil: b"), -EINVAL);
    assert_int_equal(cq_request_add_header(&req, "no colon"), -EINVAL);
    assert_int_equal(cq_request_add_header(&req, ""), -EINVAL);
    assert_int_equal(req.nheaders, 1);
    for (int i = 1; i < CQ_REQ_MAX_HEADERS; i++)
        assert_int_equal(cq_request_add_header(&req, "X-N: 1"), 0);
    assert_int_equal(cq_request_add_header(&req, "X-N: 1"), -E2BIG);

    assert_int_equal(cq_request_add_form(&req, "serviceid", "1"), 0);
    assert_string_equal(req.form[0].name, "serviceid");
    assert_string_equal(req.form[0].value, "1");
    for (int i = 1; i < CQ_REQ_MAX_FORM; i++)
        assert_int_equal(cq_request_add_form(&req, "f", "v"), 0);
    assert_int_equal(cq_request_add_form(&req, "f", "v"), -E2BIG);
    assert_int_equal(cq_request_add_form(&req, "f", NULL), -EINVAL);

    req.body = malloc(4);
    assert_non_null(req.body);
    cq_request_clear(&req);
    assert_int_equal(req.nheaders, 0);
    assert_int_equal(req.nform, 0);
    assert_null(req.body);
    cq_request_clear(&req); /* twice is harmless */
    cq_request_clear(NULL);
}

/* URLs -------------------------------------------------------------------- */

static void test_url_encodes_segments(void **state)
{
    const char *segs[] = {"/v1/partners/", "a b/c", "/cancellation"};
    const bool lit[] = {true, false, true};
    char *url = NULL;

    (void)state;
    assert_int_equal(cq_url_build("https://api.intronis.com", segs, lit, 3, &url), 0);
    assert_string_equal(url, "https://api.intronis.com/v1/partners/a%20b%2Fc/cancellation");
    free(url);

    segs[1] = "é?#%&=+x";
    assert_int_equal(cq_url_build("https://h", segs, lit, 3, &url), 0);
    assert_string_equal(url, "https://h/v1/partners/%C3%A9%3F%23%25%26%3D%2Bx/cancellation");
    free(url);

    segs[1] = "Ok.-_~9";
    assert_int_equal(cq_url_build("https://h/", segs, lit, 2, &url), 0);
    assert_string_equal(url, "https://h/v1/partners/Ok.-_~9");
    free(url);
}

static void test_url_refuses_unsafe_segments(void **state)
{
    const char *segs[] = {"/v1/partners/", "..", "/cancellation"};
    const bool lit[] = {true, false, true};
    char *url = (char *)"sentinel";
    char big[5000];

    (void)state;
    assert_int_equal(cq_url_build("https://h", segs, lit, 3, &url), -EINVAL);
    assert_null(url);
    segs[1] = ".";
    assert_int_equal(cq_url_build("https://h", segs, lit, 3, &url), -EINVAL);
    segs[1] = "";
    assert_int_equal(cq_url_build("https://h", segs, lit, 3, &url), -EINVAL);
    segs[1] = NULL;
    assert_int_equal(cq_url_build("https://h", segs, lit, 3, &url), -EINVAL);
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    segs[1] = big;
    assert_int_equal(cq_url_build("https://h", segs, lit, 3, &url), -EINVAL);
    assert_int_equal(cq_url_build(NULL, segs, lit, 3, &url), -EINVAL);
}

/* cq_url_build encodes segments itself; the text must be what
 * curl_easy_escape (which it replaced) writes, for every byte. */
static void assert_encodes_like_curl(const char *seg)
{
    const char *segs[] = {"/p/", seg, "/x"};
    const bool lit[] = {true, false, true};
    char want[4 * 1024], *url = NULL, *enc = curl_easy_escape(NULL, seg, (int)strlen(seg));

    assert_non_null(enc);
    snprintf(want, sizeof(want), "https://h/p/%s/x", enc);
    curl_free(enc);
    assert_int_equal(cq_url_build("https://h", segs, lit, 3, &url), 0);
    assert_string_equal(url, want);
    free(url);
}

static void test_url_encoding_matches_curl(void **state)
{
    char seg[64];
    uint64_t r = 88172645463325252u;

    (void)state;
    for (int c = 1; c < 256; c++) {
        seg[0] = 'a';
        seg[1] = (char)c;
        seg[2] = '\0';
        assert_encodes_like_curl(seg);
        if (c != '.') /* "." alone is a dot segment: refused */
            assert_encodes_like_curl(seg + 1);
    }
    for (int i = 0; i < 2000; i++) {
        size_t n = 3 + i % 60;

        for (size_t k = 0; k < n; k++) {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            seg[k] = (char)(1 + r % 255);
        }
        seg[n] = '\0';
        assert_encodes_like_curl(seg);
    }
}

/* The URL limit and the first problem in segment order decide the error. */
static void test_url_limits(void **state)
{
    static char big[CQ_TARGET_MAX * 40];
    const char *segs[] = {"/a/", "x", "/b"};
    const bool lit[] = {true, false, true};
    char *url = (char *)"sentinel";

    (void)state;
    memset(big, 'l', sizeof(big) - 1);
    segs[0] = big; /* a literal past CQ_URL_MAX (4096) */
    assert_int_equal(cq_url_build("https://h", segs, lit, 3, &url), -E2BIG);
    assert_null(url);
    segs[2] = NULL; /* later: the E2BIG comes first */
    assert_int_equal(cq_url_build("https://h", segs, lit, 3, &url), -E2BIG);
    segs[0] = "/a/";
    assert_int_equal(cq_url_build("https://h", segs, lit, 3, &url), -EINVAL);
    segs[2] = "/b";
    big[4096 - strlen("https://h/a/x")] = '\0'; /* exactly 4096 bytes */
    segs[2] = big;
    assert_int_equal(cq_url_build("https://h", segs, lit, 3, &url), 0);
    assert_int_equal(strlen(url), 4096);
    free(url);
    assert_int_equal(cq_url_build(big, segs, lit, 0, &url), 0);
    free(url);
    big[strlen(big)] = 'l'; /* one more: too long */
    assert_int_equal(cq_url_build("https://h", segs, lit, 3, &url), -E2BIG);
    assert_int_equal(cq_url_build("https://h///", segs, lit, 0, &url), 0);
    assert_string_equal(url, "https://h");
    free(url);
}

/* Common classification --------------------------------------------------- */

static void assert_common(cq_response r, cq_verdict_kind kind, const char *error)
{
    cq_verdict v;

    assert_true(cq_classify_common(&r, &v));
    assert_string_equal(cq_verdict_name(v.kind), cq_verdict_name(kind));
    assert_string_equal(v.error, error);
}

static void test_common_transport(void **state)
{
    (void)state;
    assert_common(transport(CQ_TR_CONNECT), CQ_V_RETRY, "connect");
    assert_common(transport(CQ_TR_TIMEOUT), CQ_V_RETRY, "timeout");
    assert_common(transport(CQ_TR_TOO_LARGE), CQ_V_CHECK, "too_large");
    assert_common(transport(CQ_TR_ABORTED), CQ_V_RETRY, "aborted");
    assert_common(transport(CQ_TR_OTHER), CQ_V_RETRY, "transport");
}

static void test_common_status(void **state)
{
    static const long passed[] = {200, 201, 204, 303, 400, 403, 404, 405, 409, 422, 499, 600};
    cq_verdict v;

    (void)state;
    assert_common(http(401), CQ_V_AUTH, "unauthorized");
    assert_common(http(408), CQ_V_RETRY, "http_408");
    assert_common(http(425), CQ_V_RETRY, "http_425");
    assert_common(http(429), CQ_V_RETRY, "http_429");
    assert_common(http(500), CQ_V_RETRY, "http_500");
    assert_common(http(503), CQ_V_RETRY, "http_503");
    assert_common(http(599), CQ_V_RETRY, "http_599");
    for (size_t i = 0; i < sizeof(passed) / sizeof(passed[0]); i++) {
        cq_response r = http(passed[i]);

        assert_false(cq_classify_common(&r, &v));
    }
}

static void test_common_retry_after(void **state)
{
    cq_response r = http(429);
    cq_verdict v;

    (void)state;
    r.retry_after = "2";
    assert_true(cq_classify_common(&r, &v));
    assert_int_equal(v.kind, CQ_V_RETRY);
    assert_true(v.has_retry_after);
    assert_int_equal(v.retry_after_ms, 2000);

    r = http(503);
    r.retry_after = "soon";
    assert_true(cq_classify_common(&r, &v));
    assert_int_equal(v.kind, CQ_V_RETRY);
    assert_false(v.has_retry_after);

    r = http(503);
    assert_true(cq_classify_common(&r, &v));
    assert_false(v.has_retry_after);

    /* HTTP date, relative to when the answer arrived (1700000000000 ms =
     * Tue, 14 Nov 2023 22:13:20 GMT). */
    r = http(503);
    r.retry_after = "Tue, 14 Nov 2023 22:13:30 GMT";
    assert_true(cq_classify_common(&r, &v));
    assert_true(v.has_retry_after);
    assert_int_equal(v.retry_after_ms, 10000);

    /* Not a transient status: Retry-After does not make it one. */
    r = http(404);
    r.retry_after = "2";
    assert_false(cq_classify_common(&r, &v));
}

/* Verdicts ---------------------------------------------------------------- */

static void test_verdict_names(void **state)
{
    (void)state;
    assert_string_equal(cq_verdict_name(CQ_V_SUCCEEDED), "succeeded");
    assert_string_equal(cq_verdict_name(CQ_V_ALREADY_DONE), "already_done");
    assert_string_equal(cq_verdict_name(CQ_V_RETRY), "retry");
    assert_string_equal(cq_verdict_name(CQ_V_FAILED), "failed");
    assert_string_equal(cq_verdict_name(CQ_V_CHECK), "check");
    assert_string_equal(cq_verdict_name(CQ_V_AUTH), "auth");
    assert_string_equal(cq_verdict_name(CQ_V_NOT_DONE), "not_done");
    assert_string_equal(cq_verdict_name((cq_verdict_kind)99), "unknown");
}

static void test_verdict_set_sanitizes(void **state)
{
    cq_verdict v;
    char long_msg[400];

    (void)state;
    v.has_retry_after = true;
    cq_verdict_set(&v, CQ_V_FAILED, "provider_error", "line1\nlevel=error\x1b[31m %s", "x\ty");
    assert_int_equal(v.kind, CQ_V_FAILED);
    assert_false(v.has_retry_after);
    assert_string_equal(v.message, "line1 level=error [31m x y");
    assert_string_equal(v.error, "provider_error");

    /* Bounded, and never ends in half a UTF-8 sequence. */
    memset(long_msg, 'a', 254);
    memcpy(long_msg + 254, "\xc3\xa9\xc3\xa9", 5);
    cq_verdict_set(&v, CQ_V_FAILED, "x", "%s", long_msg);
    assert_int_equal(strlen(v.message), 254);

    memset(long_msg, 'a', 253);
    memcpy(long_msg + 253, "\xc3\xa9\xc3\xa9", 5);
    cq_verdict_set(&v, CQ_V_FAILED, "x", "%s", long_msg);
    assert_int_equal(strlen(v.message), 255);
    assert_memory_equal(v.message + 253, "\xc3\xa9", 2);

    cq_verdict_set(&v, CQ_V_SUCCEEDED, NULL, NULL);
    assert_string_equal(v.error, "");
    assert_string_equal(v.message, "");
}

#define ALPHABET "abcdefghijklmnopqrstuvwxyz"
#define LONG_PLAIN                                                                                 \
    ALPHABET ALPHABET ALPHABET ALPHABET ALPHABET ALPHABET ALPHABET ALPHABET ALPHABET ALPHABET      \
        ALPHABET

/* A message without '%' is copied, not formatted: cut like snprintf. */
static void test_verdict_set_plain_text(void **state)
{
    cq_verdict v;

    (void)state;
    cq_verdict_set(&v, CQ_V_SUCCEEDED, LONG_PLAIN, LONG_PLAIN);
    assert_int_equal(strlen(v.error), sizeof(v.error) - 1);
    assert_memory_equal(v.error, LONG_PLAIN, sizeof(v.error) - 1);
    assert_int_equal(strlen(v.message), sizeof(v.message) - 1);
    assert_memory_equal(v.message, LONG_PLAIN, sizeof(v.message) - 1);
    cq_verdict_set(&v, CQ_V_SUCCEEDED, "", "partner cancelled (303 See Other)");
    assert_string_equal(v.message, "partner cancelled (303 See Other)");
    cq_verdict_set(&v, CQ_V_FAILED, "e\x01", "tab\there");
    assert_string_equal(v.error, "e ");
    assert_string_equal(v.message, "tab here");
    cq_verdict_set(&v, CQ_V_FAILED, "x", "100%% done");
    assert_string_equal(v.message, "100% done");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry),
        cmocka_unit_test(test_actions),
        cmocka_unit_test(test_request_helpers),
        cmocka_unit_test(test_url_encodes_segments),
        cmocka_unit_test(test_url_refuses_unsafe_segments),
        cmocka_unit_test(test_url_encoding_matches_curl),
        cmocka_unit_test(test_url_limits),
        cmocka_unit_test(test_common_transport),
        cmocka_unit_test(test_common_status),
        cmocka_unit_test(test_common_retry_after),
        cmocka_unit_test(test_verdict_names),
        cmocka_unit_test(test_verdict_set_sanitizes),
        cmocka_unit_test(test_verdict_set_plain_text),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
