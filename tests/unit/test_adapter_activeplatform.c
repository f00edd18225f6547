/* test_adapter_activeplatform.c - activeplatform.delete_subscription and
 * stop_subscription against seeds/001 and seeds/002: requests byte for
 * byte, parameter checks, every classification row and the Get subscription
 * lookup for both actions. */
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

#define DEL_PARAMS "{\"reseller_id\":1,\"subscription_id\":3007255}"
#define STOP_PARAMS                                                                                \
    "{\"reseller_id\":1,\"subscription_id\":3007255,\"reason\":\"reason\",\"comment\":"            \
    "\"comment\"}"
#define BASE "https://test.activeplatform.com"

static const cq_adapter *adapter;
static const cq_action *del;
static const cq_action *stop;

static cq_provider_conf conf(void)
{
    cq_provider_conf pc;

    memset(&pc, 0, sizeof(pc));
    pc.name = (char *)"activeplatform";
    pc.adapter = (char *)"activeplatform";
    pc.base_url = (char *)BASE;
    return pc;
}

static cq_response transport(cq_transport t)
{
    cq_response r = http(0, NULL);

    r.transport = t;
    r.transport_msg = "Connection refused";
    return r;
}

static int setup(void **state)
{
    (void)state;
    adapter = cq_adapter_find("activeplatform");
    del = cq_adapter_action(adapter, "delete_subscription");
    stop = cq_adapter_action(adapter, "stop_subscription");
    return adapter != NULL && del != NULL && stop != NULL ? 0 : -1;
}

static void build_ok(const cq_action *a, const char *params_text, bool check, cq_request *req)
{
    cq_provider_conf pc = conf();
    cJSON *params = cJSON_Parse(params_text);
    cq_err err = {{0}, {0}};

    assert_non_null(params);
    if (check)
        assert_int_equal(a->build_check(&pc, params, req, &err), 0);
    else
        assert_int_equal(a->build(&pc, params, req, &err), 0);
    cJSON_Delete(params);
}

/* Adapter ----------------------------------------------------------------- */

static void test_adapter_fields(void **state)
{
    (void)state;
    assert_string_equal(adapter->auth_prefix, "X-Api-Token: ");
    assert_false(adapter->supports_xml);
    assert_int_equal(adapter->oauth_grant, CQ_CRED_NONE);
    assert_int_equal(adapter->nactions, 2);
    assert_non_null(del->build_check);
    assert_non_null(stop->build_check);
}

/* Requests ---------------------------------------------------------------- */

static void test_seed_delete_request(void **state)
{
    cq_request req;

    (void)state;
    build_ok(del, DEL_PARAMS, false, &req);
    assert_string_equal(req.method, "POST");
    assert_string_equal(req.url, BASE "/api/v3/resellers/1/subscriptions/3007255/delete_operation");
    assert_int_equal(req.nheaders, 2);
    assert_string_equal(req.headers[0], "Content-Type: application/vnd.api+json");
    assert_string_equal(req.headers[1], "Accept: application/vnd.api+json");
    assert_null(req.body);
    assert_int_equal(req.body_len, 0);
    assert_int_equal(req.nform, 0);
    cq_request_clear(&req);
}

static void test_seed_stop_request(void **state)
{
    static const char seed_body[] = "{\n    \"data\":\n    {\n        \"attributes\":\n"
                                    "        {\n            \"reason\" : \"reason\",\n"
                                    "            \"comment\" : \"comment\"\n        }\n"
                                    "    }\n}";
    cq_request req;
    cJSON *got, *seed;

    (void)state;
    build_ok(stop, STOP_PARAMS, false, &req);
    assert_string_equal(req.method, "POST");
    assert_string_equal(req.url, BASE "/api/v3/resellers/1/subscriptions/3007255/stop_operation");
    assert_int_equal(req.nheaders, 2);
    assert_string_equal(req.headers[0], "Content-Type: application/vnd.api+json");
    assert_string_equal(req.headers[1], "Accept: application/vnd.api+json");
    for (size_t i = 0; i < req.nheaders; i++)
        assert_null(strstr(req.headers[i], "X-Api-Token"));
    assert_string_equal(
        req.body, "{\"data\":{\"attributes\":{\"reason\":\"reason\",\"comment\":\"comment\"}}}");
    assert_int_equal(req.body_len, strlen(req.body));
    got = cJSON_Parse(req.body);
    seed = cJSON_Parse(seed_body);
    assert_non_null(seed);
    assert_true(cJSON_Compare(got, seed, true));
    cJSON_Delete(got);
    cJSON_Delete(seed);
    cq_request_clear(&req);
}

static void test_stop_body_escaped(void **state)
{
    cq_request req;

    (void)state;
    build_ok(stop,
             "{\"reseller_id\":9007199254740991,\"subscription_id\":2,"
             "\"reason\":\"r\\\"1\",\"comment\":\"line\\nnext\"}",
             false, &req);
    assert_string_equal(req.url,
                        BASE "/api/v3/resellers/9007199254740991/subscriptions/2/stop_operation");
    assert_string_equal(
        req.body,
        "{\"data\":{\"attributes\":{\"reason\":\"r\\\"1\",\"comment\":\"line\\nnext\"}}}");
    cq_request_clear(&req);
}

static void test_check_requests(void **state)
{
    const cq_action *both[] = {del, stop};

    (void)state;
    for (size_t i = 0; i < 2; i++) {
        cq_request req;

        build_ok(both[i], both[i] == stop ? STOP_PARAMS : DEL_PARAMS, true, &req);
        assert_string_equal(req.method, "GET");
        assert_string_equal(req.url, BASE "/api/v3/resellers/1/subscriptions/3007255");
        assert_int_equal(req.nheaders, 1);
        assert_string_equal(req.headers[0], "Accept: application/vnd.api+json");
        assert_null(req.body);
        cq_request_clear(&req);
    }
}

/* Validation -------------------------------------------------------------- */

static void test_targets(void **state)
{
    cJSON *params = cJSON_Parse(STOP_PARAMS);
    cJSON *dparams = cJSON_Parse(DEL_PARAMS);
    char target[CQ_TARGET_MAX];
    cq_err err = {{0}, {0}};

    (void)state;
    assert_int_equal(stop->validate(params, target, sizeof(target), &err), 0);
    assert_string_equal(target, "1/3007255");
    assert_int_equal(del->validate(dparams, target, sizeof(target), &err), 0);
    assert_string_equal(target, "1/3007255");
    cJSON_Delete(params);
    cJSON_Delete(dparams);
}

static void assert_invalid(const cq_action *a, const char *params_text, const char *field)
{
    cq_provider_conf pc = conf();
    cJSON *params = cJSON_Parse(params_text);
    char target[CQ_TARGET_MAX];
    cq_request req;
    cq_err err = {{0}, {0}};

    assert_non_null(params);
    assert_true(a->validate(params, target, sizeof(target), &err) < 0);
    if (strstr(err.msg, field) == NULL)
        fail_msg("%s: message \"%s\" does not name %s", params_text, err.msg, field);
    memset(&err, 0, sizeof(err));
    assert_true(a->build(&pc, params, &req, &err) < 0);
    assert_non_null(strstr(err.msg, field));
    assert_null(req.url);
    memset(&err, 0, sizeof(err));
    assert_true(a->build_check(&pc, params, &req, &err) < 0);
    assert_null(req.url);
    cJSON_Delete(params);
}

static void test_invalid_params(void **state)
{
    char long_reason[1100];

    (void)state;
    assert_invalid(del, "{\"subscription_id\":3007255}", "params.reseller_id");
    assert_invalid(del, "{\"reseller_id\":1}", "params.subscription_id");
    assert_invalid(del, "{\"reseller_id\":\"1\",\"subscription_id\":3007255}",
                   "params.reseller_id");
    assert_invalid(del, "{\"reseller_id\":1,\"subscription_id\":3007255.5}",
                   "params.subscription_id");
    assert_invalid(del, "{\"reseller_id\":0,\"subscription_id\":3007255}", "params.reseller_id");
    assert_invalid(del, "{\"reseller_id\":-4,\"subscription_id\":3007255}", "params.reseller_id");
    assert_invalid(del, "{\"reseller_id\":1,\"subscription_id\":9007199254740992}",
                   "params.subscription_id");
    assert_invalid(del, "{\"reseller_id\":1,\"subscription_id\":1e300}", "params.subscription_id");
    assert_invalid(del, "{\"reseller_id\":1,\"subscription_id\":true}", "params.subscription_id");
    /* reason/comment belong to stop only */
    assert_invalid(del, STOP_PARAMS, "params.reason");
    assert_invalid(stop, DEL_PARAMS, "params.reason");
    assert_invalid(stop, "{\"reseller_id\":1,\"subscription_id\":2,\"reason\":\"r\"}",
                   "params.comment");
    assert_invalid(stop,
                   "{\"reseller_id\":1,\"subscription_id\":2,\"reason\":\"\",\"comment\":\"c\"}",
                   "params.reason");
    assert_invalid(stop, "{\"reseller_id\":1,\"subscription_id\":2,\"reason\":\"r\",\"comment\":5}",
                   "params.comment");
    assert_invalid(stop,
                   "{\"reseller_id\":1,\"subscription_id\":2,\"reason\":\"r\",\"comment\":\"c\","
                   "\"extra\":1}",
                   "params.extra");
    snprintf(long_reason, sizeof(long_reason),
             "{\"reseller_id\":1,\"subscription_id\":2,\"reason\":\"%01001d\",\"comment\":\"c\"}",
             0);
    assert_invalid(stop, long_reason, "params.reason");
    assert_invalid(stop, "\"x\"", "params");
}

/* Classification ---------------------------------------------------------- */

static cq_verdict run(const cq_action *a, bool check, cq_response r)
{
    cq_provider_conf pc = conf();
    cJSON *params = cJSON_Parse(a == stop ? STOP_PARAMS : DEL_PARAMS);
    cq_verdict v;

    memset(&v, 0xa5, sizeof(v));
    if (check)
        a->classify_check(&pc, params, &r, &v);
    else
        a->classify(&pc, params, &r, &v);
    cJSON_Delete(params);
    return v;
}

static void test_classify_rows(void **state)
{
    const cq_action *both[] = {del, stop};
    cq_response r;
    cq_verdict v;

    (void)state;
    for (size_t i = 0; i < 2; i++) {
        const cq_action *a = both[i];

        assert_verdict(run(a, false, http(200, NULL)), CQ_V_SUCCEEDED, "");
        assert_verdict(run(a, false, http(201, NULL)), CQ_V_CHECK, "http_201");
        assert_verdict(run(a, false, http(204, NULL)), CQ_V_CHECK, "http_204");
        v = run(a, false, http(403, NULL));
        assert_verdict(v, CQ_V_CHECK, "forbidden");
        assert_string_equal(v.message, "HTTP 403: This action is forbidden");
        v = run(a, false,
                http(403, "{\"errors\":[{\"status\":\"403\",\"title\":\"Forbidden\","
                          "\"detail\":\"Operation is not available\"}]}"));
        assert_verdict(v, CQ_V_CHECK, "forbidden");
        assert_string_equal(v.message, "HTTP 403: Forbidden: Operation is not available");
        v = run(a, false, http(403, "{\"errors\":[{\"title\":\"This action is forbidden\"}]}"));
        assert_string_equal(v.message, "HTTP 403: This action is forbidden");
        v = run(a, false, http(404, "{\"errors\":[{\"detail\":\"Subscription not found\"}]}"));
        assert_verdict(v, CQ_V_FAILED, "not_found");
        assert_string_equal(v.message, "HTTP 404: Subscription not found");
        v = run(a, false,
                http(422, "{\"errors\":[{\"title\":\"Invalid\",\"detail\":\"reason "
                          "is blank\"}]}"));
        assert_verdict(v, CQ_V_FAILED, "http_422");
        assert_string_equal(v.message, "HTTP 422: Invalid: reason is blank");
        assert_verdict(run(a, false, http(400, "not json")), CQ_V_FAILED, "http_400");
        assert_verdict(run(a, false, http(409, NULL)), CQ_V_FAILED, "http_409");
        assert_verdict(run(a, false, http(301, NULL)), CQ_V_FAILED, "http_301");
        assert_verdict(run(a, false, http(401, NULL)), CQ_V_AUTH, "unauthorized");
        assert_verdict(run(a, false, http(500, NULL)), CQ_V_RETRY, "http_500");
        assert_verdict(run(a, false, http(502, NULL)), CQ_V_RETRY, "http_502");
        r = http(429, NULL);
        r.retry_after = "2";
        v = run(a, false, r);
        assert_verdict(v, CQ_V_RETRY, "http_429");
        assert_true(v.has_retry_after);
        assert_int_equal(v.retry_after_ms, 2000);
        assert_verdict(run(a, false, transport(CQ_TR_TIMEOUT)), CQ_V_RETRY, "timeout");
        assert_verdict(run(a, false, transport(CQ_TR_CONNECT)), CQ_V_RETRY, "connect");
        assert_verdict(run(a, false, transport(CQ_TR_TOO_LARGE)), CQ_V_CHECK, "too_large");
    }
}

static cq_verdict check_status(const cq_action *a, const char *status)
{
    char body[256];

    snprintf(body, sizeof(body),
             "{\"data\":{\"id\":\"3007255\",\"type\":\"subscriptions\","
             "\"attributes\":{\"name\":\"x\",\"status\":\"%s\"}}}",
             status);
    return run(a, true, http(200, body));
}

static void test_check_stop(void **state)
{
    cq_verdict v;

    (void)state;
    assert_verdict(check_status(stop, "Stopped"), CQ_V_ALREADY_DONE, "");
    assert_verdict(check_status(stop, "stopping"), CQ_V_ALREADY_DONE, "");
    assert_verdict(check_status(stop, "STOPPED"), CQ_V_ALREADY_DONE, "");
    assert_verdict(check_status(stop, "Deleted"), CQ_V_ALREADY_DONE, "");
    assert_verdict(check_status(stop, "Deleting"), CQ_V_ALREADY_DONE, "");
    v = check_status(stop, "Active");
    assert_verdict(v, CQ_V_NOT_DONE, "not_stopped");
    assert_string_equal(v.message, "subscription status is Active");
    assert_verdict(check_status(stop, "Waiting for manual approve"), CQ_V_NOT_DONE, "not_stopped");
}

static void test_check_delete(void **state)
{
    (void)state;
    assert_verdict(check_status(del, "Deleted"), CQ_V_ALREADY_DONE, "");
    assert_verdict(check_status(del, "deleting"), CQ_V_ALREADY_DONE, "");
    assert_verdict(check_status(del, "Stopped"), CQ_V_NOT_DONE, "not_deleted");
    assert_verdict(check_status(del, "stopping"), CQ_V_NOT_DONE, "not_deleted");
    assert_verdict(check_status(del, "Active"), CQ_V_NOT_DONE, "not_deleted");
}

static void test_check_shapes_and_rows(void **state)
{
    const cq_action *both[] = {del, stop};

    (void)state;
    /* Tolerated places for the status, since the body is not documented. */
    assert_verdict(run(stop, true, http(200, "{\"data\":{\"status\":\"Stopped\"}}")),
                   CQ_V_ALREADY_DONE, "");
    assert_verdict(run(del, true, http(200, "{\"status\":\" deleted \"}")), CQ_V_ALREADY_DONE, "");
    for (size_t i = 0; i < 2; i++) {
        const cq_action *a = both[i];

        assert_verdict(run(a, true, http(200, "{\"data\":{}}")), CQ_V_NOT_DONE, "bad_answer");
        assert_verdict(run(a, true, http(200, "")), CQ_V_NOT_DONE, "bad_answer");
        assert_verdict(run(a, true, http(404, NULL)), CQ_V_NOT_DONE, "not_found");
        assert_verdict(run(a, true, http(403, NULL)), CQ_V_NOT_DONE, "http_403");
        assert_verdict(run(a, true, http(401, NULL)), CQ_V_AUTH, "unauthorized");
        assert_verdict(run(a, true, http(500, NULL)), CQ_V_RETRY, "http_500");
        assert_verdict(run(a, true, transport(CQ_TR_TIMEOUT)), CQ_V_RETRY, "timeout");
        assert_verdict(run(a, true, transport(CQ_TR_TOO_LARGE)), CQ_V_NOT_DONE, "too_large");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adapter_fields),
        cmocka_unit_test(test_seed_delete_request),
        cmocka_unit_test(test_seed_stop_request),
        cmocka_unit_test(test_stop_body_escaped),
        cmocka_unit_test(test_check_requests),
        cmocka_unit_test(test_targets),
        cmocka_unit_test(test_invalid_params),
        cmocka_unit_test(test_classify_rows),
        cmocka_unit_test(test_check_stop),
        cmocka_unit_test(test_check_delete),
        cmocka_unit_test(test_check_shapes_and_rows),
    };

    return cmocka_run_group_tests(tests, setup, NULL);
}
