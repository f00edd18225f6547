/* test_adapter_keliweb.c - keliweb.cancel_service against seeds/003: the
 * request (URL, multipart fields, no hand-set Content-Type), parameter
 * checks, and every classification row (WHMCS AddCancelRequest answers). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "cancelq/adapter.h"
#include "adapter_fixtures.h"

#define SEED_PARAMS "{\"serviceid\":1,\"type\":\"Immediate\"}"

static const cq_adapter *adapter;
static const cq_action *action;

static cq_provider_conf conf(void)
{
    cq_provider_conf pc;

    memset(&pc, 0, sizeof(pc));
    pc.name = (char *)"keliweb";
    pc.adapter = (char *)"keliweb";
    pc.base_url = (char *)"https://apiv2.keliweb.it";
    return pc;
}

static cq_response transport(cq_transport t)
{
    cq_response r = http(0, NULL);

    r.transport = t;
    r.transport_msg = "Connection timed out";
    return r;
}

static int setup(void **state)
{
    (void)state;
    adapter = cq_adapter_find("keliweb");
    action = cq_adapter_action(adapter, "cancel_service");
    return adapter != NULL && action != NULL ? 0 : -1;
}

static void build_ok(const char *params_text, cq_request *req)
{
    cq_provider_conf pc = conf();
    cJSON *params = cJSON_Parse(params_text);
    cq_err err = {{0}, {0}};

    assert_non_null(params);
    assert_int_equal(action->build(&pc, params, req, &err), 0);
    cJSON_Delete(params);
}

/* Adapter ----------------------------------------------------------------- */

static void test_adapter_fields(void **state)
{
    (void)state;
    assert_string_equal(adapter->auth_prefix, "Authorization: Bearer ");
    assert_false(adapter->supports_xml);
    assert_int_equal(adapter->oauth_grant, CQ_CRED_PASSWORD);
    assert_int_equal(adapter->nactions, 1);
    /* No documented lookup answer shape: no status check. */
    assert_null(action->build_check);
    assert_null(action->classify_check);
}

/* Requests ---------------------------------------------------------------- */

static void test_seed_request(void **state)
{
    cq_request req;

    (void)state;
    build_ok(SEED_PARAMS, &req);
    assert_string_equal(req.method, "POST");
    assert_string_equal(req.url, "https://apiv2.keliweb.it/api/v2/keliweb/add-cancel-request");
    assert_int_equal(req.nform, 2);
    assert_string_equal(req.form[0].name, "serviceid");
    assert_string_equal(req.form[0].value, "1");
    assert_string_equal(req.form[1].name, "type");
    assert_string_equal(req.form[1].value, "Immediate");
    assert_null(req.body);
    assert_int_equal(req.body_len, 0);
    assert_int_equal(req.nheaders, 2);
    assert_string_equal(req.headers[0], "Accept: application/json");
    assert_string_equal(req.headers[1], "X-Requested-With: XMLHttpRequest");
    for (size_t i = 0; i < req.nheaders; i++) {
        /* curl_mime writes Content-Type with its boundary; the engine adds auth. */
        assert_int_not_equal(strncasecmp(req.headers[i], "Content-Type", 12), 0);
        assert_null(strstr(req.headers[i], "Authorization"));
    }
    cq_request_clear(&req);
}

static void test_all_fields(void **state)
{
    cq_request req;

    (void)state;
    build_ok("{\"serviceid\":9007199254740991,\"type\":\"End of Billing Period\","
             "\"reason\":\"Too expensive\"}",
             &req);
    assert_int_equal(req.nform, 3);
    assert_string_equal(req.form[0].value, "9007199254740991");
    assert_string_equal(req.form[1].value, "End of Billing Period");
    assert_string_equal(req.form[2].name, "reason");
    assert_string_equal(req.form[2].value, "Too expensive");
    cq_request_clear(&req);

    build_ok("{\"serviceid\":42}", &req);
    assert_int_equal(req.nform, 1);
    assert_string_equal(req.form[0].name, "serviceid");
    assert_string_equal(req.form[0].value, "42");
    cq_request_clear(&req);

    build_ok("{\"serviceid\":42,\"reason\":\"\"}", &req);
    assert_int_equal(req.nform, 2);
    assert_string_equal(req.form[1].name, "reason");
    assert_string_equal(req.form[1].value, "");
    cq_request_clear(&req);
}

/* Validation -------------------------------------------------------------- */

static void test_target(void **state)
{
    cJSON *params = cJSON_Parse(SEED_PARAMS);
    char target[CQ_TARGET_MAX];
    cq_err err = {{0}, {0}};

    (void)state;
    assert_int_equal(action->validate(params, target, sizeof(target), &err), 0);
    assert_string_equal(target, "1");
    cJSON_Delete(params);
}

static void assert_invalid(const char *params_text, const char *field, const char *code)
{
    cq_provider_conf pc = conf();
    cJSON *params = cJSON_Parse(params_text);
    char target[CQ_TARGET_MAX];
    cq_request req;
    cq_err err = {{0}, {0}};

    assert_non_null(params);
    assert_true(action->validate(params, target, sizeof(target), &err) < 0);
    if (strstr(err.msg, field) == NULL)
        fail_msg("%s: message \"%s\" does not name %s", params_text, err.msg, field);
    if (code != NULL)
        assert_string_equal(err.code, code);
    memset(&err, 0, sizeof(err));
    assert_true(action->build(&pc, params, &req, &err) < 0);
    assert_non_null(strstr(err.msg, field));
    assert_null(req.url);
    assert_int_equal(req.nform, 0);
    cJSON_Delete(params);
}

static void test_invalid_params(void **state)
{
    char long_reason[2100];

    (void)state;
    assert_invalid("{}", "params.serviceid", NULL);
    assert_invalid("{\"type\":\"Immediate\"}", "params.serviceid", NULL);
    assert_invalid("{\"serviceid\":\"1\"}", "params.serviceid", NULL);
    assert_invalid("{\"serviceid\":3007255.5}", "params.serviceid", NULL);
    assert_invalid("{\"serviceid\":0}", "params.serviceid", NULL);
    assert_invalid("{\"serviceid\":-1}", "params.serviceid", NULL);
    assert_invalid("{\"serviceid\":9007199254740992}", "params.serviceid", NULL);
    assert_invalid("{\"serviceid\":1,\"type\":\"immediate\"}", "params.type", "bad_value");
    assert_invalid("{\"serviceid\":1,\"type\":\"End of billing period\"}", "params.type",
                   "bad_value");
    assert_invalid("{\"serviceid\":1,\"type\":\"\"}", "params.type", "bad_value");
    assert_invalid("{\"serviceid\":1,\"type\":1}", "params.type", NULL);
    assert_invalid("{\"serviceid\":1,\"type\":null}", "params.type", NULL);
    assert_invalid("{\"serviceid\":1,\"reason\":[]}", "params.reason", NULL);
    assert_invalid("{\"serviceid\":1,\"Type\":\"Immediate\"}", "params.Type", "unknown_field");
    snprintf(long_reason, sizeof(long_reason), "{\"serviceid\":1,\"reason\":\"%02001d\"}", 0);
    assert_invalid(long_reason, "params.reason", NULL);
    assert_invalid("null", "params", NULL);
}

/* Classification ---------------------------------------------------------- */

static cq_verdict classify(cq_response r)
{
    cq_provider_conf pc = conf();
    cJSON *params = cJSON_Parse(SEED_PARAMS);
    cq_verdict v;

    memset(&v, 0xa5, sizeof(v));
    action->classify(&pc, params, &r, &v);
    cJSON_Delete(params);
    return v;
}

static void test_classify_200(void **state)
{
    cq_verdict v;

    (void)state;
    /* The seed's example response. */
    assert_verdict(classify(http(200, "{\n\"result\" : \"success\",\n\"serviceid\": \"1\",\n"
                                      "\"userid\" : \"1\"\n}")),
                   CQ_V_SUCCEEDED, "");
    v = classify(http(200, "{\"result\":\"error\",\"message\":\"Existing Cancellation Request "
                           "Exists\"}"));
    assert_verdict(v, CQ_V_ALREADY_DONE, "");
    assert_string_equal(v.message, "Existing Cancellation Request Exists");
    assert_verdict(classify(http(200, "{\"result\":\"error\",\"message\":\"  existing "
                                      "cancellation request exists\\n\"}")),
                   CQ_V_ALREADY_DONE, "");
    v = classify(http(200, "{\"result\":\"error\",\"message\":\"Service ID Not Found\"}"));
    assert_verdict(v, CQ_V_FAILED, "service_not_found");
    assert_string_equal(v.message, "Service ID Not Found");
    v = classify(http(200, "{\"result\":\"error\",\"message\":\"Invalid type\"}"));
    assert_verdict(v, CQ_V_FAILED, "provider_error");
    assert_string_equal(v.message, "Invalid type");
    assert_verdict(classify(http(200, "{\"result\":\"error\"}")), CQ_V_FAILED, "provider_error");
    /* Unreadable 200s may have filed the request: failed, never retried. */
    v = classify(http(200, "<html>OK</html>"));
    assert_verdict(v, CQ_V_FAILED, "bad_answer");
    assert_non_null(strstr(v.message, "may have been filed"));
    assert_verdict(classify(http(200, "")), CQ_V_FAILED, "bad_answer");
    assert_verdict(classify(http(200, "{\"serviceid\":\"1\"}")), CQ_V_FAILED, "bad_answer");
    assert_verdict(classify(http(200, "{\"result\":\"pending\"}")), CQ_V_FAILED, "bad_answer");
    assert_verdict(classify(http(200, "[\"success\"]")), CQ_V_FAILED, "bad_answer");
    assert_verdict(classify(http(201, "{\"result\":\"success\"}")), CQ_V_FAILED, "http_201");
}

static void test_classify_errors(void **state)
{
    cq_response r;
    cq_verdict v;

    (void)state;
    v = classify(http(401, "{\"message\":\"Unauthenticated.\"}"));
    assert_verdict(v, CQ_V_AUTH, "unauthorized");
    assert_string_equal(v.message, "HTTP 401: Unauthenticated.");
    v = classify(http(403, "{\"message\":\"This action is unauthorized.\"}"));
    assert_verdict(v, CQ_V_FAILED, "http_403");
    assert_string_equal(v.message, "HTTP 403: This action is unauthorized.");
    v = classify(http(422, "{\"message\":\"The serviceid field is required.\","
                           "\"errors\":{\"serviceid\":[\"required\"]}}"));
    assert_verdict(v, CQ_V_FAILED, "http_422");
    assert_string_equal(v.message, "HTTP 422: The serviceid field is required.");
    assert_verdict(classify(http(404, NULL)), CQ_V_FAILED, "http_404");
    assert_verdict(classify(http(400, "{\"error\":\"bad\"}")), CQ_V_FAILED, "http_400");
    assert_verdict(classify(http(302, NULL)), CQ_V_FAILED, "http_302");
    /* The WHMCS answers keep their meaning on a non-200 status too. */
    assert_verdict(classify(http(400, "{\"result\":\"error\",\"message\":\"Existing "
                                      "Cancellation Request Exists\"}")),
                   CQ_V_ALREADY_DONE, "");
    assert_verdict(classify(http(404, "{\"result\":\"error\",\"message\":\"Service ID Not "
                                      "Found\"}")),
                   CQ_V_FAILED, "service_not_found");
    assert_verdict(classify(http(500, NULL)), CQ_V_RETRY, "http_500");
    assert_verdict(classify(http(503, NULL)), CQ_V_RETRY, "http_503");
    assert_verdict(classify(http(408, NULL)), CQ_V_RETRY, "http_408");
    r = http(429, "{\"message\":\"Too Many Attempts.\"}");
    r.retry_after = "2";
    v = classify(r);
    assert_verdict(v, CQ_V_RETRY, "http_429");
    assert_true(v.has_retry_after);
    assert_int_equal(v.retry_after_ms, 2000);
    assert_string_equal(v.message, "HTTP 429: Too Many Attempts.");
    assert_verdict(classify(transport(CQ_TR_TIMEOUT)), CQ_V_RETRY, "timeout");
    assert_verdict(classify(transport(CQ_TR_CONNECT)), CQ_V_RETRY, "connect");
    /* No lookup: an ambiguous too-large answer fails instead of CHECK. */
    assert_verdict(classify(transport(CQ_TR_TOO_LARGE)), CQ_V_FAILED, "too_large");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adapter_fields),  cmocka_unit_test(test_seed_request),
        cmocka_unit_test(test_all_fields),      cmocka_unit_test(test_target),
        cmocka_unit_test(test_invalid_params),  cmocka_unit_test(test_classify_200),
        cmocka_unit_test(test_classify_errors),
    };

    return cmocka_run_group_tests(tests, setup, NULL);
}
