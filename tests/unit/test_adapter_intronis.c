/* test_adapter_intronis.c - intronis.cancel_partner against seeds/000:
 * the request byte for byte (JSON and XML), parameter checks, and every
 * classification row of the cancellation and of the partner lookup. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cancelq/adapter.h"
#include "adapter_fixtures.h"

#define SEED_PARAMS "{\"username\":\"barracuda\",\"reason_id\":1,\"reason_note\":\"\"}"

static const cq_adapter *adapter;
static const cq_action *action;

static cq_provider_conf conf(cq_format format)
{
    cq_provider_conf pc;

    memset(&pc, 0, sizeof(pc));
    pc.name = (char *)"intronis";
    pc.adapter = (char *)"intronis";
    pc.base_url = (char *)"https://api.intronis.com";
    pc.format = format;
    return pc;
}

static cq_response transport(cq_transport t)
{
    cq_response r = http(0, NULL);

    r.transport = t;
    r.maybe_sent = t == CQ_TR_TIMEOUT;
    r.transport_msg = "Operation timed out";
    return r;
}

static int setup(void **state)
{
    (void)state;
    adapter = cq_adapter_find("intronis");
    action = cq_adapter_action(adapter, "cancel_partner");
    return adapter != NULL && action != NULL ? 0 : -1;
}

/* Build the request for params (JSON text); asserts success. */
static void build_ok(const char *params_text, cq_format format, cq_request *req)
{
    cq_provider_conf pc = conf(format);
    cJSON *params = cJSON_Parse(params_text);
    cq_err err = {{0}, {0}};

    assert_non_null(params);
    assert_int_equal(action->build(&pc, params, req, &err), 0);
    cJSON_Delete(params);
}

static void assert_no_credentials(const cq_request *req)
{
    for (size_t i = 0; i < req->nheaders; i++)
        assert_null(strstr(req->headers[i], "Authorization"));
}

/* Adapter ----------------------------------------------------------------- */

static void test_adapter_fields(void **state)
{
    (void)state;
    assert_string_equal(adapter->auth_prefix, "Authorization: OAuth ");
    assert_true(adapter->supports_xml);
    assert_int_equal(adapter->oauth_grant, CQ_CRED_CLIENT_CREDENTIALS);
    assert_int_equal(adapter->nactions, 1);
    assert_non_null(action->build_check);
    assert_non_null(action->classify_check);
}

/* Requests ---------------------------------------------------------------- */

static void test_seed_json_request(void **state)
{
    cq_request req;
    cJSON *got, *seed;

    (void)state;
    build_ok(SEED_PARAMS, CQ_FORMAT_JSON, &req);
    assert_string_equal(req.method, "POST");
    assert_string_equal(req.url, "https://api.intronis.com/v1/partners/barracuda/cancellation");
    assert_int_equal(req.nheaders, 2);
    assert_string_equal(req.headers[0], "Accept: application/json");
    assert_string_equal(req.headers[1], "Content-Type: application/json");
    assert_string_equal(req.body, "{\"reason_id\":1,\"reason_note\":\"\"}");
    assert_int_equal(req.body_len, strlen(req.body));
    assert_int_equal(req.nform, 0);
    assert_no_credentials(&req);
    /* The seed's (formatted) example body means the same. */
    got = cJSON_Parse(req.body);
    seed = cJSON_Parse("{  \n  \"reason_id\": 1,  \n  \"reason_note\": \"\"\n}");
    assert_true(cJSON_Compare(got, seed, true));
    cJSON_Delete(got);
    cJSON_Delete(seed);
    cq_request_clear(&req);
}

static void test_seed_xml_request(void **state)
{
    cq_request req;

    (void)state;
    build_ok(SEED_PARAMS, CQ_FORMAT_XML, &req);
    assert_string_equal(req.method, "POST");
    assert_string_equal(req.url, "https://api.intronis.com/v1/partners/barracuda/cancellation");
    assert_int_equal(req.nheaders, 2);
    assert_string_equal(req.headers[0], "Accept: application/xml");
    assert_string_equal(req.headers[1], "Content-Type: application/xml");
    assert_string_equal(req.body, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                                  "<cancellation><reason_id>1</reason_id><reason_note/>"
                                  "</cancellation>");
    assert_int_equal(req.body_len, strlen(req.body));
    assert_no_credentials(&req);
    cq_request_clear(&req);
}

static void test_xml_escapes_note(void **state)
{
    cq_request req;

    (void)state;
    build_ok("{\"username\":\"acme\",\"reason_id\":7,"
             "\"reason_note\":\"a&b <c> \\\"d\\\" 'e'\\r\\nf\"}",
             CQ_FORMAT_XML, &req);
    assert_string_equal(req.body, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                                  "<cancellation><reason_id>7</reason_id><reason_note>"
                                  "a&amp;b &lt;c&gt; &quot;d&quot; &apos;e&apos;&#13;\nf"
                                  "</reason_note></cancellation>");
    cq_request_clear(&req);
}

static void test_json_note_escaped(void **state)
{
    cq_request req;

    (void)state;
    build_ok("{\"username\":\"acme\",\"reason_id\":2,\"reason_note\":\"say \\\"hi\\\"\\n\"}",
             CQ_FORMAT_JSON, &req);
    assert_string_equal(req.body, "{\"reason_id\":2,\"reason_note\":\"say \\\"hi\\\"\\n\"}");
    cq_request_clear(&req);
}

/* The body cJSON prints when reason_id is a cJSON number (how it was built
 * before reason_id went in as raw digits). */
static char *body_with_number(int64_t reason_id, const char *note)
{
    cJSON *obj = cJSON_CreateObject();
    char *text;

    assert_non_null(obj);
    assert_non_null(cJSON_AddNumberToObject(obj, "reason_id", (double)reason_id));
    assert_non_null(cJSON_AddStringToObject(obj, "reason_note", note));
    text = cJSON_PrintUnformatted(obj);
    cJSON_Delete(obj);
    assert_non_null(text);
    return text;
}

static void test_json_body_as_cjson_prints_it(void **state)
{
    static const int64_t ids[] = {0,         1,         9,          10,         99,
                                  100,       12345,     999999999,  1000000000, 2147483646,
                                  INT32_MAX, 123456789, 1000000001, 65536,      7};
    static const char *const notes[] = {
        "", "x", "say \"hi\"\n", "tab\tcr\r\\", "\xc3\xa9\xe2\x82\xac", "\x7f</>&'"};
    (void)state;
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        for (size_t k = 0; k < sizeof(notes) / sizeof(notes[0]); k++) {
            cJSON *p = cJSON_CreateObject();
            cq_provider_conf pc = conf(CQ_FORMAT_JSON);
            cq_err err = {{0}, {0}};
            char *want = body_with_number(ids[i], notes[k]);
            cq_request req;

            assert_non_null(p);
            cJSON_AddStringToObject(p, "username", "acme");
            cJSON_AddNumberToObject(p, "reason_id", (double)ids[i]);
            cJSON_AddStringToObject(p, "reason_note", notes[k]);
            assert_int_equal(action->build(&pc, p, &req, &err), 0);
            assert_string_equal(req.body, want);
            assert_int_equal(req.body_len, strlen(want));
            cq_request_clear(&req);
            cJSON_free(want);
            cJSON_Delete(p);
        }
    }
}

static void test_username_is_one_segment(void **state)
{
    cq_request req;

    (void)state;
    build_ok("{\"username\":\"a b/c\",\"reason_id\":1,\"reason_note\":\"\"}", CQ_FORMAT_JSON, &req);
    assert_string_equal(req.url, "https://api.intronis.com/v1/partners/a%20b%2Fc/cancellation");
    cq_request_clear(&req);
}

static void test_check_request(void **state)
{
    cq_provider_conf pc = conf(CQ_FORMAT_XML);
    cJSON *params = cJSON_Parse("{\"username\":\"a b/c\",\"reason_id\":1,\"reason_note\":\"\"}");
    cq_request req;
    cq_err err = {{0}, {0}};

    (void)state;
    assert_int_equal(action->build_check(&pc, params, &req, &err), 0);
    assert_string_equal(req.method, "GET");
    assert_string_equal(req.url, "https://api.intronis.com/v1/partners/a%20b%2Fc");
    assert_int_equal(req.nheaders, 1);
    assert_string_equal(req.headers[0], "Accept: application/json");
    assert_null(req.body);
    assert_int_equal(req.body_len, 0);
    cq_request_clear(&req);
    cJSON_Delete(params);
}

/* Validation -------------------------------------------------------------- */

static void test_target(void **state)
{
    cJSON *params = cJSON_Parse(SEED_PARAMS);
    char target[CQ_TARGET_MAX];
    cq_err err = {{0}, {0}};

    (void)state;
    assert_int_equal(action->validate(params, target, sizeof(target), &err), 0);
    assert_string_equal(target, "barracuda");
    cJSON_Delete(params);
}

/* validate() and build() refuse params, naming field in the message. */
static void assert_invalid(const char *params_text, const char *field)
{
    cq_provider_conf pc = conf(CQ_FORMAT_JSON);
    cJSON *params = cJSON_Parse(params_text);
    char target[CQ_TARGET_MAX];
    cq_request req;
    cq_err err = {{0}, {0}};

    assert_non_null(params);
    assert_true(action->validate(params, target, sizeof(target), &err) < 0);
    if (strstr(err.msg, field) == NULL)
        fail_msg("%s: message \"%s\" does not name %s", params_text, err.msg, field);
    assert_true(err.code[0] != '\0');
    memset(&err, 0, sizeof(err));
    assert_true(action->build(&pc, params, &req, &err) < 0);
    assert_non_null(strstr(err.msg, field));
    assert_null(req.url);
    cJSON_Delete(params);
}

static void test_invalid_params(void **state)
{
    char long_name[200];

    (void)state;
    assert_invalid("{\"reason_id\":1,\"reason_note\":\"\"}", "params.username");
    assert_invalid("{\"username\":7,\"reason_id\":1,\"reason_note\":\"\"}", "params.username");
    assert_invalid("{\"username\":\"\",\"reason_id\":1,\"reason_note\":\"\"}", "params.username");
    assert_invalid("{\"username\":\"..\",\"reason_id\":1,\"reason_note\":\"\"}", "params.username");
    assert_invalid("{\"username\":\"a\\nb\",\"reason_id\":1,\"reason_note\":\"\"}",
                   "params.username");
    snprintf(long_name, sizeof(long_name),
             "{\"username\":\"%0129d\",\"reason_id\":1,\"reason_note\":\"\"}", 0);
    assert_invalid(long_name, "params.username");
    assert_invalid("{\"username\":\"x\",\"reason_note\":\"\"}", "params.reason_id");
    assert_invalid("{\"username\":\"x\",\"reason_id\":\"1\",\"reason_note\":\"\"}",
                   "params.reason_id");
    assert_invalid("{\"username\":\"x\",\"reason_id\":1.5,\"reason_note\":\"\"}",
                   "params.reason_id");
    assert_invalid("{\"username\":\"x\",\"reason_id\":-1,\"reason_note\":\"\"}",
                   "params.reason_id");
    assert_invalid("{\"username\":\"x\",\"reason_id\":2147483648,\"reason_note\":\"\"}",
                   "params.reason_id");
    assert_invalid("{\"username\":\"x\",\"reason_id\":1}", "params.reason_note");
    assert_invalid("{\"username\":\"x\",\"reason_id\":1,\"reason_note\":null}",
                   "params.reason_note");
    assert_invalid("{\"username\":\"x\",\"reason_id\":1,\"reason_note\":\"\",\"reason\":\"y\"}",
                   "params.reason");
    /* XML cannot carry it, so it is refused whatever the format. */
    assert_invalid("{\"username\":\"x\",\"reason_id\":1,\"reason_note\":\"bell\\u0007\"}",
                   "params.reason_note");
    assert_invalid("[1]", "params");
}

static void test_note_length(void **state)
{
    static const char head[] = "{\"username\":\"x\",\"reason_id\":0,\"reason_note\":\"";
    size_t h = strlen(head), n = 2000;
    char *text = malloc(h + n + 8);
    cJSON *params;
    char target[CQ_TARGET_MAX];
    cq_err err = {{0}, {0}};

    (void)state;
    assert_non_null(text);
    memcpy(text, head, h);
    memset(text + h, 'n', n);
    memcpy(text + h + n, "\"}", 3);
    params = cJSON_Parse(text);
    assert_int_equal(action->validate(params, target, sizeof(target), &err), 0);
    cJSON_Delete(params);
    memset(text + h, 'n', n + 1);
    memcpy(text + h + n + 1, "\"}", 3);
    params = cJSON_Parse(text);
    assert_true(action->validate(params, target, sizeof(target), &err) < 0);
    assert_non_null(strstr(err.msg, "params.reason_note"));
    cJSON_Delete(params);
    free(text);
}

/* Classification ---------------------------------------------------------- */

static cq_verdict classify(cq_response r)
{
    cq_provider_conf pc = conf(CQ_FORMAT_JSON);
    cJSON *params = cJSON_Parse(SEED_PARAMS);
    cq_verdict v;

    memset(&v, 0xa5, sizeof(v));
    action->classify(&pc, params, &r, &v);
    cJSON_Delete(params);
    return v;
}

static cq_verdict classify_check(cq_response r)
{
    cq_provider_conf pc = conf(CQ_FORMAT_JSON);
    cJSON *params = cJSON_Parse(SEED_PARAMS);
    cq_verdict v;

    memset(&v, 0xa5, sizeof(v));
    action->classify_check(&pc, params, &r, &v);
    cJSON_Delete(params);
    return v;
}

static void test_classify_303_succeeds(void **state)
{
    cq_response r = http(303, NULL);

    (void)state;
    r.location = "https://api.intronis.com/v1/partners/barracuda";
    assert_verdict(classify(r), CQ_V_SUCCEEDED, "");
    r.location = NULL; /* never followed, so irrelevant */
    assert_verdict(classify(r), CQ_V_SUCCEEDED, "");
}

static void test_classify_ambiguous_gets_checked(void **state)
{
    cq_verdict v;

    (void)state;
    v = classify(http(400, "{\"error\":{\"code\":400,\"message\":\"Invalid reason_id\"}}"));
    assert_verdict(v, CQ_V_CHECK, "http_400");
    assert_string_equal(v.message, "HTTP 400: Invalid reason_id");
    v = classify(http(400, "{\"error\":\"bad request\"}"));
    assert_verdict(v, CQ_V_CHECK, "http_400");
    assert_string_equal(v.message, "HTTP 400: bad request");
    v = classify(http(403, "{\"error\":{\"message\":\"missing scope\\npartners_write\"}}"));
    assert_verdict(v, CQ_V_CHECK, "http_403");
    assert_string_equal(v.message, "HTTP 403: missing scope partners_write");
    v = classify(http(404, "<html>not found</html>"));
    assert_verdict(v, CQ_V_CHECK, "http_404");
    assert_non_null(strstr(v.message, "HTTP 404"));
    assert_verdict(classify(http(405, NULL)), CQ_V_CHECK, "http_405");
    assert_verdict(classify(http(409, NULL)), CQ_V_CHECK, "http_409");
    assert_verdict(classify(http(422, NULL)), CQ_V_CHECK, "http_422");
    assert_verdict(classify(http(200, "{}")), CQ_V_CHECK, "http_200");
    assert_verdict(classify(http(204, NULL)), CQ_V_CHECK, "http_204");
    assert_verdict(classify(http(302, NULL)), CQ_V_CHECK, "http_302");
}

static void test_classify_common_rows(void **state)
{
    cq_response r = http(429, NULL);
    cq_verdict v;

    (void)state;
    v = classify(http(401, "{\"error\":{\"message\":\"token expired\"}}"));
    assert_verdict(v, CQ_V_AUTH, "unauthorized");
    assert_string_equal(v.message, "HTTP 401: token expired");
    r.retry_after = "2";
    v = classify(r);
    assert_verdict(v, CQ_V_RETRY, "http_429");
    assert_true(v.has_retry_after);
    assert_int_equal(v.retry_after_ms, 2000);
    v = classify(http(500, NULL));
    assert_verdict(v, CQ_V_RETRY, "http_500");
    assert_false(v.has_retry_after);
    assert_verdict(classify(http(502, NULL)), CQ_V_RETRY, "http_502");
    assert_verdict(classify(http(503, NULL)), CQ_V_RETRY, "http_503");
    assert_verdict(classify(http(408, NULL)), CQ_V_RETRY, "http_408");
    assert_verdict(classify(http(425, NULL)), CQ_V_RETRY, "http_425");
    assert_verdict(classify(transport(CQ_TR_TIMEOUT)), CQ_V_RETRY, "timeout");
    assert_verdict(classify(transport(CQ_TR_CONNECT)), CQ_V_RETRY, "connect");
    assert_verdict(classify(transport(CQ_TR_OTHER)), CQ_V_RETRY, "transport");
    assert_verdict(classify(transport(CQ_TR_ABORTED)), CQ_V_RETRY, "aborted");
    assert_verdict(classify(transport(CQ_TR_TOO_LARGE)), CQ_V_CHECK, "too_large");
}

static void test_check_rows(void **state)
{
    cq_verdict v;

    (void)state;
    v = classify_check(http(200, "{\"username\":\"barracuda\",\"status\":\"CANCELED\"}"));
    assert_verdict(v, CQ_V_ALREADY_DONE, "");
    assert_verdict(classify_check(http(200, "{\"status\":\"canceled\"}")), CQ_V_ALREADY_DONE, "");
    v = classify_check(http(200, "{\"status\":\"ACTIVE\"}"));
    assert_verdict(v, CQ_V_NOT_DONE, "not_cancelled");
    assert_string_equal(v.message, "partner status is ACTIVE");
    assert_verdict(classify_check(http(200, "{\"status\":\"FROZEN\"}")), CQ_V_NOT_DONE,
                   "not_cancelled");
    assert_verdict(classify_check(http(200, "{\"status\":\"TEST\"}")), CQ_V_NOT_DONE,
                   "not_cancelled");
    assert_verdict(classify_check(http(200, "{\"name\":\"x\"}")), CQ_V_NOT_DONE, "bad_answer");
    assert_verdict(classify_check(http(200, "<partner/>")), CQ_V_NOT_DONE, "bad_answer");
    assert_verdict(classify_check(http(200, "{\"status\":1}")), CQ_V_NOT_DONE, "bad_answer");
    assert_verdict(classify_check(http(404, NULL)), CQ_V_NOT_DONE, "not_found");
    assert_verdict(classify_check(http(403, NULL)), CQ_V_NOT_DONE, "http_403");
    assert_verdict(classify_check(http(303, NULL)), CQ_V_NOT_DONE, "http_303");
    assert_verdict(classify_check(http(401, NULL)), CQ_V_AUTH, "unauthorized");
    assert_verdict(classify_check(http(503, NULL)), CQ_V_RETRY, "http_503");
    assert_verdict(classify_check(http(429, NULL)), CQ_V_RETRY, "http_429");
    assert_verdict(classify_check(transport(CQ_TR_TIMEOUT)), CQ_V_RETRY, "timeout");
    assert_verdict(classify_check(transport(CQ_TR_CONNECT)), CQ_V_RETRY, "connect");
    assert_verdict(classify_check(transport(CQ_TR_TOO_LARGE)), CQ_V_NOT_DONE, "too_large");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adapter_fields),
        cmocka_unit_test(test_seed_json_request),
        cmocka_unit_test(test_seed_xml_request),
        cmocka_unit_test(test_xml_escapes_note),
        cmocka_unit_test(test_json_note_escaped),
        cmocka_unit_test(test_json_body_as_cjson_prints_it),
        cmocka_unit_test(test_username_is_one_segment),
        cmocka_unit_test(test_check_request),
        cmocka_unit_test(test_target),
        cmocka_unit_test(test_invalid_params),
        cmocka_unit_test(test_note_length),
        cmocka_unit_test(test_classify_303_succeeds),
        cmocka_unit_test(test_classify_ambiguous_gets_checked),
        cmocka_unit_test(test_classify_common_rows),
        cmocka_unit_test(test_check_rows),
    };

    return cmocka_run_group_tests(tests, setup, NULL);
}
