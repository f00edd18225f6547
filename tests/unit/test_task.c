/* test_task.c - a task's whole life driven through its seams: a fake store
 * (claims, finishes, releases recorded and answered by the test), a fake
 * HTTP engine (requests recorded, answers given by the test) and a fixed
 * clock; the provider instances are real (token files, a real loop for
 * their timers).  Every legal state move is seen, every job ends exactly
 * once, shutdown is tried in every state, and the loop closes clean (the
 * shape of libuv's test/task.h MAKE_VALGRIND_HAPPY). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "cancelq/envelope.h"
#include "cancelq/log.h"
#include "cancelq/task.h"

#define NOW_MS 1800000000000LL /* 2027-01-15 */
#define MAX_REC 16

/* --- the fakes ----------------------------------------------------------- */

typedef struct rec_finish {
    cq_task *t;
    cq_status status;
    cq_idem_op op;
    int attempts;
    long http;
    char handle[CQ_HANDLE_MAX];
    char error[32];
    char message[256];
    char original_id[64];
    bool dead;
} rec_finish;

typedef struct rec_release {
    cq_task *t;
    char handle[CQ_HANDLE_MAX];
    uint64_t delay;
    bool has_claim;
    bool unknown;
    uint64_t hold;
    cq_envelope env; /* the item given back, parsed */
    char *item;
} rec_release;

typedef struct rec_send {
    cq_task *t;
    char method[8];
    char url[256];
} rec_send;

typedef struct fake {
    uv_loop_t loop;
    char dir[64];
    cq_config *cfg;
    cq_keys keys;
    cq_providers *providers;
    cq_policy policy;
    cq_tasks *ts;
    int claims;
    cq_task *claimed[MAX_REC];
    char lease_key[MAX_REC][96];
    bool claim_unknown[MAX_REC];
    uint64_t mono; /* the fake monotonic clock */
    int finishes;
    rec_finish fin[MAX_REC];
    int releases;
    rec_release rel[MAX_REC];
    int sends;
    rec_send snd[MAX_REC];
    int send_rc; /* what the next send returns */
} fake;

static fake *the_fake; /* the current test's, for the fake claim script */

/* Moves seen over the whole run: [from][to]. */
static unsigned seen_moves[CQ_TS_COUNT][CQ_TS_COUNT];

static int io_claim(void *data, cq_task *t, const cq_claim *c)
{
    fake *f = data;

    assert_true(f->claims < MAX_REC);
    snprintf(f->lease_key[f->claims], sizeof(f->lease_key[0]), "%s", c->idem_key);
    assert_string_equal(c->handle, cq_tasks_holds(f->ts, c->handle) ? c->handle : "?");
    f->claim_unknown[f->claims] = c->unknown;
    f->claimed[f->claims++] = t;
    return 0;
}

static int io_finish(void *data, cq_task *t, const cq_outcome *o)
{
    fake *f = data;
    rec_finish *r;

    assert_true(f->finishes < MAX_REC);
    r = &f->fin[f->finishes++];
    r->t = t;
    r->status = o->status;
    r->op = o->idem_op;
    r->attempts = o->attempts;
    r->http = o->http_status;
    r->dead = o->dead != NULL;
    snprintf(r->handle, sizeof(r->handle), "%s", o->handle);
    snprintf(r->error, sizeof(r->error), "%s", o->error);
    snprintf(r->message, sizeof(r->message), "%s", o->message);
    snprintf(r->original_id, sizeof(r->original_id), "%s",
             o->original[0] != NULL ? o->original[0] : "");
    assert_int_equal(o->finished_at_ms, NOW_MS);
    return 0;
}

static int io_release(void *data, cq_task *t, const cq_release *rl)
{
    fake *f = data;
    rec_release *r;

    assert_true(f->releases < MAX_REC);
    r = &f->rel[f->releases++];
    r->t = t;
    r->delay = rl->delay_ms;
    r->has_claim = rl->idem_key != NULL;
    r->unknown = rl->unknown;
    r->hold = rl->hold_ms;
    snprintf(r->handle, sizeof(r->handle), "%s", rl->handle);
    assert_non_null(rl->item);
    r->item = strdup(rl->item);
    assert_int_equal(cq_envelope_parse(r->item, strlen(r->item), &r->env), 0);
    return 0;
}

static int io_send(void *data, cq_task *t, const cq_request *req, const cq_http_opts *o)
{
    fake *f = data;
    rec_send *r;

    assert_string_equal(o->token, "tok-ap"); /* the instance's token, never in the request */
    if (f->send_rc != 0) {
        int rc = f->send_rc;

        f->send_rc = 0;
        return rc;
    }
    assert_true(f->sends < MAX_REC);
    r = &f->snd[f->sends++];
    r->t = t;
    snprintf(r->method, sizeof(r->method), "%s", req->method);
    snprintf(r->url, sizeof(r->url), "%s", req->url);
    return 0;
}

static void io_moved(void *data, cq_task_state from, cq_task_state to)
{
    (void)data;
    seen_moves[from][to]++;
}

static int64_t io_now(void *data)
{
    (void)data;
    return NOW_MS;
}

static uint64_t io_mono(void *data)
{
    fake *f = data;

    return f->mono;
}

static uint64_t rnd_zero(void *ctx)
{
    (void)ctx;
    return 0;
}

static const char conf_fmt[] = "[redis]\nprefix = t\n"
                               "[worker]\nid = w1\nmax_attempts = 3\nbackoff_base = 1s\n"
                               "[provider activeplatform]\nbase_url = http://127.0.0.1:9\n"
                               "allow_insecure_http = yes\ntoken_file = %s/ap.token\n"
                               "concurrency = 1\nbreaker_failures = 2\nbreaker_cooldown = 1s\n"
                               "[provider keliweb]\nbase_url = http://127.0.0.1:9\n"
                               "allow_insecure_http = yes\ntoken_file = %s/ap.token\n"
                               "[provider intronis]\nbase_url = http://127.0.0.1:9\n"
                               "allow_insecure_http = yes\ntoken_file = %s/ap.token\n";

static int setup(void **state)
{
    fake *f = calloc(1, sizeof(*f));
    char conf[1024], path[128];
    cq_tasks_conf tc;
    cq_err err;
    FILE *fp;

    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/cq-task-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(path, sizeof(path), "%s/ap.token", f->dir);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("tok-ap\n", fp);
    fclose(fp);
    snprintf(conf, sizeof(conf), conf_fmt, f->dir, f->dir, f->dir);
    cq_err_clear(&err);
    f->cfg = cq_config_load_string(conf, "test.conf", &err);
    if (f->cfg == NULL)
        fail_msg("config: %s", err.msg);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(cq_keys_init(&f->keys, "t", "w1"), 0);
    f->providers = cq_providers_new(&f->loop, f->cfg, NULL, &err);
    assert_non_null(f->providers);
    cq_policy_init(&f->policy, &f->cfg->worker);
    f->policy.rnd = rnd_zero;
    memset(&tc, 0, sizeof(tc));
    tc.cfg = f->cfg;
    tc.worker = "w1";
    tc.keys = &f->keys;
    tc.providers = f->providers;
    tc.policy = &f->policy;
    tc.io = (cq_task_io){f, io_claim, io_finish, io_release, io_send, io_moved, io_now, io_mono};
    f->mono = 1000000;
    f->ts = cq_tasks_new(&tc);
    assert_non_null(f->ts);
    the_fake = f;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fake *f = *state;
    char path[128];
    int i;

    cq_tasks_free(f->ts);
    cq_providers_free(f->providers);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0); /* every handle closed */
    for (i = 0; i < f->releases; i++) {
        cq_envelope_clear(&f->rel[i].env);
        free(f->rel[i].item);
    }
    cq_config_free(f->cfg);
    snprintf(path, sizeof(path), "%s/ap.token", f->dir);
    unlink(path);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* --- helpers -------------------------------------------------------------- */

#define AP_JOB(id)                                                                                 \
    "{\"id\":\"" id "\",\"provider\":\"activeplatform\",\"action\":\"delete_subscription\","       \
    "\"params\":{\"reseller_id\":1,\"subscription_id\":2}}"
#define IN_JOB(id)                                                                                 \
    "{\"id\":\"" id "\",\"provider\":\"intronis\",\"action\":\"cancel_partner\","                  \
    "\"params\":{\"username\":\"acme\",\"reason_id\":1,\"reason_note\":\"\"}}"
#define KW_JOB(id)                                                                                 \
    "{\"id\":\"" id "\",\"provider\":\"keliweb\",\"action\":\"cancel_service\","                   \
    "\"params\":{\"serviceid\":7}}"

static cq_task *start(fake *f, const char *handle, const char *item)
{
    int before = f->claims;

    /* "r" handles come from the daemon's own lists: envelopes are trusted */
    cq_task_start(f->ts, handle, item, strlen(item), handle[0] == 'r');
    return f->claims > before ? f->claimed[f->claims - 1] : NULL;
}

/* The fake claim script: a takeover of a vanished holder, or a job that
 * says its outcome is unknown, must look the status up first. */
static bool claim_unknown(const cq_task *t)
{
    int i;

    for (i = the_fake->claims - 1; i >= 0; i--) {
        if (the_fake->claimed[i] == t)
            return the_fake->claim_unknown[i];
    }
    return false;
}

static void claim_answer(cq_task *t, cq_claim_verdict v)
{
    cq_claim_result r;

    memset(&r, 0, sizeof(r));
    r.verdict = v;
    r.check_first = v == CQ_CLAIM_TAKEOVER || claim_unknown(t);
    r.other_id = "other-job";
    r.other_status = "succeeded";
    r.other_finished_at = "2027-01-01T00:00:00.000Z";
    r.error = v == CQ_CLAIM_ERROR ? "ERR wrong type" : NULL;
    cq_task_claimed(t, &r);
}

static void answer(cq_task *t, long status, const char *body)
{
    cq_response r;

    memset(&r, 0, sizeof(r));
    r.status = status;
    r.transport = status > 0 ? CQ_TR_OK : CQ_TR_TIMEOUT;
    r.maybe_sent = status == 0;
    r.body = body;
    r.body_len = strlen(body);
    r.content_type = "application/vnd.api+json";
    r.now_ms = NOW_MS;
    cq_task_answered(t, &r);
}

static void aborted(cq_task *t, bool maybe_sent)
{
    cq_response r;

    memset(&r, 0, sizeof(r));
    r.transport = CQ_TR_ABORTED;
    r.maybe_sent = maybe_sent;
    r.body = "";
    r.now_ms = NOW_MS;
    cq_task_answered(t, &r);
}

static size_t count(const fake *f, cq_task_state st)
{
    return cq_tasks_count(f->ts, st);
}

/* Each finish answered once, and the task gone. */
static void written_all(fake *f, int from)
{
    int i;

    for (i = from; i < f->finishes; i++)
        cq_task_written(f->fin[i].t, CQ_WRITE_OK, NULL);
}

/* --- a task's life ----------------------------------------------------------- */

static void test_success(void **state)
{
    fake *f = *state;
    cq_task *t = start(f, "h1", AP_JOB("j1"));

    assert_non_null(t);
    assert_int_equal(count(f, CQ_TS_CLAIMING), 1);
    assert_string_equal(f->lease_key[0], "{t}:idem:activeplatform:delete_subscription:1/2");
    claim_answer(t, CQ_CLAIM_CLAIMED);
    assert_int_equal(count(f, CQ_TS_CALLING), 1);
    assert_int_equal(f->sends, 1);
    assert_string_equal(f->snd[0].method, "POST");
    assert_string_equal(f->snd[0].url,
                        "http://127.0.0.1:9/api/v3/resellers/1/subscriptions/2/delete_operation");
    answer(t, 200, "{}");
    assert_int_equal(count(f, CQ_TS_ENDING), 1);
    assert_int_equal(f->finishes, 1);
    assert_int_equal(f->fin[0].status, CQ_ST_SUCCEEDED);
    assert_int_equal(f->fin[0].op, CQ_IDEM_DONE);
    assert_int_equal(f->fin[0].attempts, 1);
    assert_false(f->fin[0].dead);
    cq_task_written(t, CQ_WRITE_OK, NULL);
    assert_int_equal(cq_tasks_held(f->ts), 0);
    assert_int_equal(cq_tasks_stats(f->ts)->finished, 1);
}

static void test_invalid_and_expired_end_at_once(void **state)
{
    fake *f = *state;
    const char *expired =
        "{\"id\":\"j3\",\"provider\":\"activeplatform\","
        "\"action\":\"delete_subscription\",\"deadline\":\"2020-01-01T00:00:00Z\","
        "\"params\":{\"reseller_id\":1,\"subscription_id\":2}}";

    assert_null(start(f, "h1", "not json"));
    assert_null(start(f, "h2",
                      "{\"id\":\"j2\",\"provider\":\"nosuch\",\"action\":\"x\","
                      "\"params\":{}}"));
    assert_null(start(f, "h3", expired));
    assert_int_equal(f->finishes, 3);
    assert_int_equal(f->fin[0].status, CQ_ST_INVALID);
    assert_string_equal(f->fin[0].error, "bad_json");
    assert_int_equal(f->fin[0].op, CQ_IDEM_NONE);
    assert_true(f->fin[0].dead);
    assert_int_equal(f->fin[1].status, CQ_ST_INVALID);
    assert_string_equal(f->fin[1].error, "unknown_provider");
    assert_int_equal(f->fin[2].status, CQ_ST_EXPIRED);
    assert_int_equal(f->fin[2].op, CQ_IDEM_RELEASE);
    assert_int_equal(count(f, CQ_TS_ENDING), 3);
    assert_int_equal(cq_tasks_stats(f->ts)->invalid_unknown_provider, 2);
    written_all(f, 0);
    assert_int_equal(cq_tasks_held(f->ts), 0);
}

static void test_claim_verdicts(void **state)
{
    fake *f = *state;
    cq_task *dup = start(f, "h1", AP_JOB("d1"));
    cq_task *con = start(f, "h2", AP_JOB("c1"));
    cq_task *busy = start(f, "h3", AP_JOB("b1"));
    cq_task *err = start(f, "h4", AP_JOB("e1"));
    cq_task *lost = start(f, "h5", AP_JOB("l1"));

    claim_answer(dup, CQ_CLAIM_DUPLICATE);
    claim_answer(con, CQ_CLAIM_CONFLICT);
    claim_answer(busy, CQ_CLAIM_BUSY);
    claim_answer(err, CQ_CLAIM_ERROR);
    claim_answer(lost, CQ_CLAIM_LOST); /* hard shutdown: stays inflight in Redis */
    assert_int_equal(f->finishes, 2);
    assert_int_equal(f->fin[0].status, CQ_ST_DUPLICATE);
    assert_string_equal(f->fin[0].original_id, "other-job");
    assert_int_equal(f->fin[0].op, CQ_IDEM_NONE);
    assert_false(f->fin[0].dead);
    assert_int_equal(f->fin[1].status, CQ_ST_CONFLICT);
    assert_true(f->fin[1].dead);
    assert_int_equal(f->releases, 2);
    assert_int_equal(f->rel[0].delay, 1000); /* busy: base + jitter (0 here) */
    assert_int_equal(f->rel[0].env.attempts, 0);
    assert_int_equal(f->rel[1].delay, 1000); /* a script error: base */
    assert_int_equal(f->sends, 0);
    written_all(f, 0);
    cq_task_written(f->rel[0].t, CQ_WRITE_OK, NULL);
    cq_task_written(f->rel[1].t, CQ_WRITE_NOT_OURS, NULL);
    assert_int_equal(cq_tasks_stats(f->ts)->lost_ownership, 1);
    assert_int_equal(cq_tasks_held(f->ts), 0);
}

/* A claim whose write may have been lost in a failover (the WAIT for
 * replicas came short): the same claim again, then on as usual. */
static void test_unsure_claim_is_sent_again(void **state)
{
    fake *f = *state;
    cq_task *t = start(f, "h1", AP_JOB("u1"));

    claim_answer(t, CQ_CLAIM_UNSURE);
    assert_int_equal(f->claims, 2); /* claiming -> claiming */
    assert_ptr_equal(f->claimed[1], t);
    assert_string_equal(f->lease_key[1], f->lease_key[0]);
    assert_int_equal(count(f, CQ_TS_CLAIMING), 1);
    assert_int_equal(f->sends, 0); /* no call before the claim is sure */
    claim_answer(t, CQ_CLAIM_CLAIMED);
    assert_int_equal(f->sends, 1);
    answer(t, 200, "{}");
    assert_int_equal(f->finishes, 1);
    assert_int_equal(f->fin[0].status, CQ_ST_SUCCEEDED);
    written_all(f, 0);
    assert_int_equal(cq_tasks_held(f->ts), 0);
}

static void test_takeover_looks_status_up_first(void **state)
{
    fake *f = *state;
    cq_task *t = start(f, "h1", AP_JOB("t1"));

    claim_answer(t, CQ_CLAIM_TAKEOVER);
    assert_int_equal(count(f, CQ_TS_CHECKING), 1);
    assert_string_equal(f->snd[0].method, "GET");
    answer(t, 200, "{\"data\":{\"attributes\":{\"status\":\"active\"}}}"); /* not done */
    assert_int_equal(count(f, CQ_TS_CALLING), 1);
    assert_string_equal(f->snd[1].method, "POST");
    answer(t, 200, "{}");
    assert_int_equal(f->fin[0].status, CQ_ST_SUCCEEDED);
    assert_int_equal(f->fin[0].attempts, 1); /* the lookup is no attempt */
    written_all(f, 0);
    /* a takeover whose lookup finds it done: no call at all */
    t = start(f, "h2", AP_JOB("t2"));
    claim_answer(t, CQ_CLAIM_TAKEOVER);
    answer(t, 200, "{\"data\":{\"attributes\":{\"status\":\"deleted\"}}}");
    assert_int_equal(f->sends, 3);
    assert_int_equal(f->fin[1].status, CQ_ST_ALREADY_DONE);
    assert_int_equal(f->fin[1].attempts, 0);
    written_all(f, 1);
}

static void test_ambiguous_answer_then_lookup(void **state)
{
    fake *f = *state;
    const char *forbidden = "{\"errors\":[{\"detail\":\"This action is forbidden\"}]}";
    cq_task *t = start(f, "h1", AP_JOB("a1"));

    claim_answer(t, CQ_CLAIM_CLAIMED);
    answer(t, 403, forbidden);
    assert_int_equal(count(f, CQ_TS_CHECKING), 1);
    answer(t, 200, "{\"data\":{\"attributes\":{\"status\":\"active\"}}}");
    assert_int_equal(f->fin[0].status, CQ_ST_FAILED);
    assert_string_equal(f->fin[0].error, "forbidden");
    assert_true(f->fin[0].dead);
    written_all(f, 0);
}

static void test_retry_then_exhausted(void **state)
{
    fake *f = *state;
    cq_task *t = start(f, "h1", IN_JOB("r1")); /* intronis: the breaker stays closed */
    int i;

    claim_answer(t, CQ_CLAIM_CLAIMED);
    answer(t, 503, "");
    assert_int_equal(f->releases, 1);
    assert_int_equal(f->rel[0].delay, 1); /* full jitter at 0, never 0: to delayed */
    assert_int_equal(f->rel[0].env.attempts, 1);
    assert_int_equal((int)f->rel[0].env.nhistory, 1);
    assert_int_equal(f->rel[0].env.history[0].http_status, 503);
    cq_task_written(t, CQ_WRITE_OK, NULL);
    /* the job comes back in its envelope: attempts carry over */
    for (i = 1; i < 3; i++) {
        t = start(f, "r1", f->rel[i - 1].item);
        claim_answer(t, CQ_CLAIM_RECLAIMED);
        answer(t, 503, "");
        if (i < 2)
            cq_task_written(t, CQ_WRITE_OK, NULL);
    }
    assert_int_equal(f->finishes, 1);
    assert_int_equal(f->fin[0].status, CQ_ST_EXHAUSTED);
    assert_int_equal(f->fin[0].attempts, 3);
    assert_int_equal(f->fin[0].http, 503);
    assert_int_equal(cq_tasks_stats(f->ts)->retried, 2);
    written_all(f, 0);
}

static void test_timeout_marks_unknown_and_next_taker_checks(void **state)
{
    fake *f = *state;
    cq_task *t = start(f, "h1", AP_JOB("u1"));

    claim_answer(t, CQ_CLAIM_CLAIMED);
    answer(t, 0, ""); /* timed out after sending */
    assert_true(f->rel[0].env.unknown);
    cq_task_written(t, CQ_WRITE_OK, NULL);
    t = start(f, "r2", f->rel[0].item);
    claim_answer(t, CQ_CLAIM_RECLAIMED);
    assert_int_equal(count(f, CQ_TS_CHECKING), 1);
    answer(t, 200, "{\"data\":{\"attributes\":{\"status\":\"deleted\"}}}");
    assert_int_equal(f->fin[0].status, CQ_ST_ALREADY_DONE);
    assert_int_equal(f->sends, 2); /* one call, one lookup: never a second call */
    written_all(f, 0);
}

static void test_unauthorized_renews_once(void **state)
{
    fake *f = *state;
    cq_task *t = start(f, "h1", AP_JOB("a1"));

    claim_answer(t, CQ_CLAIM_CLAIMED);
    answer(t, 401, "");
    assert_int_equal(count(f, CQ_TS_CALLING), 1); /* the token file is re-read, sent again */
    assert_int_equal(f->sends, 2);
    answer(t, 401, "");
    assert_int_equal(f->fin[0].status, CQ_ST_FAILED);
    assert_string_equal(f->fin[0].error, "unauthorized");
    assert_int_equal(f->fin[0].attempts, 1); /* the repeat is the same attempt */
    written_all(f, 0);
}

static void test_send_failure_retries(void **state)
{
    fake *f = *state;
    cq_task *t = start(f, "h1", AP_JOB("s1"));

    f->send_rc = -5;
    claim_answer(t, CQ_CLAIM_CLAIMED);
    assert_int_equal(f->releases, 1);
    assert_int_equal(f->rel[0].env.attempts, 1);
    assert_int_equal(count(f, CQ_TS_ENDING), 1);
    cq_task_written(t, CQ_WRITE_OK, NULL);
}

static void test_keliweb_without_lookup(void **state)
{
    fake *f = *state;
    cq_task *t = start(f, "h1", KW_JOB("k1"));

    /* keliweb has no status lookup: a takeover calls; the provider's
     * "Existing Cancellation Request Exists" answer plays that role */
    claim_answer(t, CQ_CLAIM_TAKEOVER);
    assert_int_equal(count(f, CQ_TS_CALLING), 1);
    answer(t, 200, "{\"result\":\"error\",\"message\":\"Existing Cancellation Request Exists\"}");
    assert_int_equal(f->fin[0].status, CQ_ST_ALREADY_DONE);
    written_all(f, 0);
}

static void test_queue_and_breaker(void **state)
{
    fake *f = *state;
    cq_task *a = start(f, "h1", AP_JOB("q1")), *b = start(f, "h2", AP_JOB("q2"));

    claim_answer(a, CQ_CLAIM_CLAIMED);
    claim_answer(b, CQ_CLAIM_CLAIMED);
    /* concurrency 1: the second waits for the first */
    assert_int_equal(count(f, CQ_TS_CALLING), 1);
    assert_int_equal(count(f, CQ_TS_QUEUED), 1);
    answer(a, 503, ""); /* failure 1 of 2: b goes */
    assert_int_equal(count(f, CQ_TS_CALLING), 1);
    answer(b, 503, ""); /* failure 2: the breaker opens */
    assert_int_equal(f->releases, 2);
    cq_task_written(a, CQ_WRITE_OK, NULL);
    cq_task_written(b, CQ_WRITE_OK, NULL);
    /* a job now is put back without spending an attempt */
    a = start(f, "h3", AP_JOB("q3"));
    claim_answer(a, CQ_CLAIM_CLAIMED);
    assert_int_equal(f->releases, 3);
    assert_int_equal(f->rel[2].env.attempts, 0);
    assert_in_range(f->rel[2].delay, 1, 1000); /* until the cooldown ends */
    assert_int_equal(cq_tasks_stats(f->ts)->deferred[CQ_DEFER_BREAKER], 1);
    cq_task_written(a, CQ_WRITE_OK, NULL);
    assert_int_equal(cq_tasks_held(f->ts), 0);
}

/* --- claims that lapse, fences, failed writes (docs/design.md §7) ------------------ */

static void test_claim_not_ours_drops_without_a_word(void **state)
{
    fake *f = *state;
    cq_task *t = start(f, "h1", AP_JOB("n1"));

    claim_answer(t, CQ_CLAIM_NOT_OURS);
    assert_int_equal(cq_tasks_held(f->ts), 0);
    assert_int_equal(f->finishes + f->releases + f->sends, 0);
    assert_int_equal(cq_tasks_stats(f->ts)->dropped, 1);
}

static void test_stale_claim_is_extended_before_the_call(void **state)
{
    fake *f = *state;
    cq_task *a = start(f, "h1", AP_JOB("e1")), *b = start(f, "h2", AP_JOB("e2"));

    claim_answer(a, CQ_CLAIM_CLAIMED);
    claim_answer(b, CQ_CLAIM_CLAIMED); /* waits behind a (concurrency 1) */
    /* b waits longer than its claim allows for a whole request */
    f->mono += cq_claim_lease(f->cfg, &f->cfg->providers[0]) - 30000 + 1;
    answer(a, 200, "{}");
    assert_int_equal(f->sends, 1); /* no request for b yet */
    assert_int_equal(count(f, CQ_TS_CLAIMING), 1);
    assert_int_equal(f->claims, 3);
    assert_ptr_equal(f->claimed[2], b);
    claim_answer(b, CQ_CLAIM_HELD);
    assert_int_equal(count(f, CQ_TS_CALLING), 1);
    assert_int_equal(f->sends, 2);
    answer(b, 200, "{}");
    /* an extension that finds the key taken over: back to delayed, no call */
    written_all(f, 0);
    a = start(f, "h3", AP_JOB("e3"));
    b = start(f, "h4", AP_JOB("e4"));
    claim_answer(a, CQ_CLAIM_CLAIMED);
    claim_answer(b, CQ_CLAIM_CLAIMED);
    f->mono += 10000000;
    answer(a, 200, "{}");
    claim_answer(b, CQ_CLAIM_BUSY);
    assert_int_equal(f->sends, 3);
    assert_int_equal(f->releases, 1);
    assert_ptr_equal(f->rel[0].t, b);
    written_all(f, 2);
    cq_task_written(b, CQ_WRITE_OK, NULL);
}

static void test_sweep_returns_jobs_before_their_claim_lapses(void **state)
{
    fake *f = *state;
    cq_task *a = start(f, "h1", AP_JOB("w1")), *b = start(f, "h2", AP_JOB("w2"));

    claim_answer(a, CQ_CLAIM_CLAIMED);
    claim_answer(b, CQ_CLAIM_CLAIMED);
    cq_tasks_sweep(f->ts);
    assert_int_equal(f->releases, 0); /* fresh claims: nothing to do */
    f->mono += 10001; /* lease 15 s: less than a heartbeat + timeout + margin left */
    cq_tasks_sweep(f->ts);
    assert_int_equal(f->releases, 1);
    assert_ptr_equal(f->rel[0].t, b); /* the waiting one; a is in its request */
    assert_true(f->rel[0].has_claim);
    assert_false(f->rel[0].unknown);
    assert_int_equal(f->rel[0].env.attempts, 0);
    assert_int_equal(cq_tasks_stats(f->ts)->deferred[CQ_DEFER_LAPSE], 1);
    cq_task_written(b, CQ_WRITE_OK, NULL);
    answer(a, 200, "{}");
    written_all(f, 0);
}

static void test_drop_after_a_fence(void **state)
{
    fake *f = *state;
    cq_task *a = start(f, "h1", AP_JOB("d1")), *b = start(f, "h2", AP_JOB("d2"));
    const char **w;
    size_t n = 0;

    claim_answer(a, CQ_CLAIM_CLAIMED);
    claim_answer(b, CQ_CLAIM_CLAIMED);
    start(f, "h3", AP_JOB("d3"));
    w = cq_tasks_waiting(f->ts, &n);
    assert_int_equal(n, 2); /* the queued and the claiming one */
    free(w);
    cq_tasks_drop(f->ts, "h2"); /* taken back while we were fenced */
    cq_tasks_drop(f->ts, "h1"); /* in its request: finishes it */
    assert_int_equal(cq_tasks_held(f->ts), 2);
    assert_int_equal(cq_tasks_stats(f->ts)->dropped, 1);
    answer(a, 200, "{}");
    cq_task_written(a, CQ_WRITE_NOT_OURS, NULL);
    assert_int_equal(f->sends, 1);
}

static void test_failed_finish_puts_the_job_back(void **state)
{
    fake *f = *state;
    cq_task *t = start(f, "h1", AP_JOB("ff1"));

    claim_answer(t, CQ_CLAIM_CLAIMED);
    answer(t, 200, "{}");
    cq_task_written(t, CQ_WRITE_FAILED, "ERR {t}:results is a string, not a stream");
    assert_int_equal(count(f, CQ_TS_ENDING), 1);
    assert_int_equal(f->releases, 1);
    assert_true(f->rel[0].unknown); /* its call was made: the next taker looks first */
    assert_int_equal(f->rel[0].env.attempts, 1);
    assert_int_equal(f->rel[0].delay, 1000);
    assert_int_equal(cq_tasks_stats(f->ts)->finish_failed, 1);
    cq_task_written(t, CQ_WRITE_OK, NULL);
    assert_int_equal(cq_tasks_held(f->ts), 0);
}

static void test_abort_after_sending_keeps_the_claim(void **state)
{
    fake *f = *state;
    cq_task *t = start(f, "h1", AP_JOB("ab1"));

    claim_answer(t, CQ_CLAIM_CLAIMED);
    cq_tasks_stop(f->ts);
    aborted(t, true);
    assert_true(f->rel[0].unknown);
    assert_int_equal(f->rel[0].hold, 30000); /* the request may still run at the provider */
    cq_task_written(t, CQ_WRITE_OK, NULL);
}

static void test_forged_envelope_is_a_plain_job(void **state)
{
    fake *f = *state;
    /* a producer pushes an envelope: a guessed owner token, "unknown": 0 to
     * skip the lookup, absurd attempts */
    const char *forged = "{\"_cq\":{\"tok\":\"w1/h1\",\"unknown\":0,\"attempts\":9007199254740991,"
                         "\"first_ms\":1},\"job\":"
                         "\"{\\\"id\\\":\\\"fx\\\",\\\"provider\\\":\\\"activeplatform\\\","
                         "\\\"action\\\":\\\"delete_subscription\\\",\\\"params\\\":{"
                         "\\\"reseller_id\\\":1,\\\"subscription_id\\\":2}}\"}";
    cq_task *t = start(f, "h1", forged);

    assert_non_null(t);               /* the inner job runs */
    assert_true(f->claim_unknown[0]); /* as unknown: looked up first */
    claim_answer(t, CQ_CLAIM_CLAIMED);
    assert_int_equal(count(f, CQ_TS_CHECKING), 1);
    answer(t, 200, "{\"data\":{\"attributes\":{\"status\":\"active\"}}}");
    answer(t, 200, "{}");
    assert_int_equal(f->fin[0].status, CQ_ST_SUCCEEDED);
    assert_int_equal(f->fin[0].attempts, 1); /* its own count, not the forged one */
    written_all(f, 0);
    /* the same bytes from the daemon's own list are an envelope: bounded */
    t = start(f, "r2", forged);
    assert_non_null(t);
    claim_answer(t, CQ_CLAIM_CLAIMED);
    assert_int_equal(count(f, CQ_TS_CALLING), 1);
    answer(t, 503, "");
    assert_int_equal(f->fin[1].status, CQ_ST_EXHAUSTED); /* attempts capped at 100, not 2^53 */
    assert_int_equal(f->fin[1].attempts, 101);
    written_all(f, 1);
}

/* --- shutdown in every state ---------------------------------------------------- */

static void test_stop_in_every_state(void **state)
{
    fake *f = *state;
    cq_task *claiming = start(f, "h1", AP_JOB("x1"));
    cq_task *calling = start(f, "h2", AP_JOB("x2"));
    cq_task *queued = start(f, "h3", AP_JOB("x3"));
    cq_task *checking = start(f, "h4", IN_JOB("x4"));
    cq_task *ending = start(f, "h5", "not json");

    claim_answer(calling, CQ_CLAIM_CLAIMED);
    claim_answer(queued, CQ_CLAIM_CLAIMED);    /* waits: concurrency 1 */
    claim_answer(checking, CQ_CLAIM_TAKEOVER); /* looks the status up first */
    assert_int_equal(count(f, CQ_TS_CLAIMING), 1);
    assert_int_equal(count(f, CQ_TS_CALLING), 1);
    assert_int_equal(count(f, CQ_TS_CHECKING), 1);
    assert_int_equal(count(f, CQ_TS_QUEUED), 1);
    assert_int_equal(count(f, CQ_TS_ENDING), 1);
    cq_tasks_stop(f->ts);
    /* the waiting job goes back to the queue at once, unchanged in attempts */
    assert_int_equal(f->releases, 1);
    assert_ptr_equal(f->rel[0].t, queued);
    assert_int_equal(f->rel[0].delay, 0);
    /* a claim answered now: back to the queue, no call */
    claim_answer(claiming, CQ_CLAIM_CLAIMED);
    assert_int_equal(f->releases, 2);
    assert_int_equal(f->rel[1].delay, 0);
    assert_int_equal(f->sends, 2);
    /* requests in flight are aborted by the engine: back, marked unknown when sent */
    aborted(calling, true);
    aborted(checking, false);
    assert_int_equal(f->releases, 4);
    assert_true(f->rel[2].env.unknown);
    assert_int_equal(f->rel[2].env.attempts, 0); /* the aborted call is not an attempt */
    assert_true(f->rel[3].env.unknown);          /* the lookup stays pending */
    assert_int_equal(count(f, CQ_TS_ENDING), 5);
    /* every write answered: nothing left */
    written_all(f, 0);
    cq_task_written(f->rel[0].t, CQ_WRITE_OK, NULL);
    cq_task_written(f->rel[1].t, CQ_WRITE_OK, NULL);
    cq_task_written(f->rel[2].t, CQ_WRITE_OK, NULL);
    cq_task_written(f->rel[3].t, CQ_WRITE_LOST, NULL);
    assert_int_equal(cq_tasks_held(f->ts), 0);
    (void)ending;
}

static void test_status_lookup_aborted_keeps_it_pending(void **state)
{
    fake *f = *state;
    cq_task *t = start(f, "h1", AP_JOB("p1"));

    claim_answer(t, CQ_CLAIM_TAKEOVER);
    assert_int_equal(count(f, CQ_TS_CHECKING), 1);
    cq_tasks_stop(f->ts);
    aborted(t, true);
    assert_true(f->rel[0].env.unknown); /* the next taker looks it up again */
    cq_task_written(t, CQ_WRITE_OK, NULL);
}

static void test_free_with_tasks_left(void **state)
{
    fake *f = *state;
    cq_task *a = start(f, "h1", AP_JOB("f1")), *b = start(f, "h2", AP_JOB("f2"));

    claim_answer(a, CQ_CLAIM_CLAIMED);
    claim_answer(b, CQ_CLAIM_CLAIMED); /* queued behind a */
    start(f, "h3", AP_JOB("f3"));      /* claiming */
    assert_true(cq_tasks_holds(f->ts, "h2"));
    assert_false(cq_tasks_holds(f->ts, "h9"));
    assert_int_equal(cq_tasks_held(f->ts), 3);
    /* teardown frees them: their jobs stay inflight in Redis */
}

/* Runs last: every move of the legal table (task.c) was made by the
 * tests above, and no other. */
static void test_every_move_seen(void **state)
{
    int from, to, missing = 0, n = 0;

    (void)state;
    for (from = 0; from < CQ_TS_COUNT; from++) {
        for (to = 0; to < CQ_TS_COUNT; to++) {
            bool legal = cq_task_move_legal((cq_task_state)from, (cq_task_state)to);

            if (legal)
                n++;
            if (legal && seen_moves[from][to] == 0) {
                print_message("move %s -> %s never made\n", cq_task_state_name((cq_task_state)from),
                              cq_task_state_name((cq_task_state)to));
                missing++;
            }
            if (!legal && seen_moves[from][to] != 0)
                fail_msg("illegal move %s -> %s seen", cq_task_state_name((cq_task_state)from),
                         cq_task_state_name((cq_task_state)to));
        }
    }
    print_message("%d legal moves, %d never made\n", n, missing);
    assert_int_equal(missing, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_success, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_and_expired_end_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claim_verdicts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsure_claim_is_sent_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_takeover_looks_status_up_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ambiguous_answer_then_lookup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_then_exhausted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_marks_unknown_and_next_taker_checks, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unauthorized_renews_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_send_failure_retries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keliweb_without_lookup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_and_breaker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_in_every_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_lookup_aborted_keeps_it_pending, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_free_with_tasks_left, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claim_not_ours_drops_without_a_word, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_claim_is_extended_before_the_call, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sweep_returns_jobs_before_their_claim_lapses, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_drop_after_a_fence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_finish_puts_the_job_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_after_sending_keeps_the_claim, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forged_envelope_is_a_plain_job, setup, teardown),
        cmocka_unit_test(test_every_move_seen),
    };

    cq_log_init(fopen("/dev/null", "w"), CQ_LOG_DEBUG, 0);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
