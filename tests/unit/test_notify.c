/*
 * test_notify.c - sd_notify messages as systemd receives them: each test
 * binds an AF_UNIX datagram socket in a private temp dir, points
 * $NOTIFY_SOCKET at it and reads what the functions sent.  The watchdog
 * test runs a real loop with $WATCHDOG_USEC set.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <uv.h>

#include "cancelq/notify.h"

#define MSG_MAX 4096

typedef struct fixture {
    char dir[64];
    char path[100]; /* fits sockaddr_un.sun_path */
    int fd;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    struct sockaddr_un sa = {.sun_family = AF_UNIX};

    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/cq-notify.XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->path, sizeof(f->path), "%s/notify.sock", f->dir);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->path);
    f->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (f->fd < 0 || bind(f->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        return -1;
    setenv("NOTIFY_SOCKET", f->path, 1);
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;

    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    close(f->fd);
    unlink(f->path);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* The next datagram, NUL-terminated, or "" when none is waiting. */
static const char *next_msg(fixture *f, char *buf)
{
    ssize_t n = recv(f->fd, buf, MSG_MAX - 1, MSG_DONTWAIT);

    buf[n < 0 ? 0 : n] = '\0';
    return buf;
}

static void test_ready_status_stopping(void **state)
{
    fixture *f = *state;
    char buf[MSG_MAX];

    assert_true(cq_notify_enabled());
    assert_int_equal(cq_notify_ready(), 0);
    assert_string_equal(next_msg(f, buf), "READY=1");
    assert_int_equal(cq_notify_status("in flight %d, %.1f jobs/s", 3, 12.5), 0);
    assert_string_equal(next_msg(f, buf), "STATUS=in flight 3, 12.5 jobs/s");
    assert_int_equal(cq_notify_stopping(), 0);
    assert_string_equal(next_msg(f, buf), "STOPPING=1");
    assert_string_equal(next_msg(f, buf), "");
}

static void test_reloading_then_ready(void **state)
{
    fixture *f = *state;
    char buf[MSG_MAX];

    assert_int_equal(cq_notify_reloading(), 0);
    next_msg(f, buf);
    assert_memory_equal(buf, "RELOADING=1\nMONOTONIC_USEC=", 27);
    assert_true(strtoull(buf + 27, NULL, 10) > 0);
    assert_int_equal(cq_notify_ready(), 0);
    assert_string_equal(next_msg(f, buf), "READY=1");
}

static void test_status_is_one_line_and_bounded(void **state)
{
    fixture *f = *state;
    char buf[MSG_MAX], big[1000];

    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(cq_notify_status("a\nREADY=1\tb"), 0);
    assert_string_equal(next_msg(f, buf), "STATUS=a READY=1 b");
    assert_int_equal(cq_notify_status("%s", big), 0);
    assert_int_equal(strlen(next_msg(f, buf)), strlen("STATUS=") + CQ_NOTIFY_STATUS_MAX);
}

static void test_noop_without_socket(void **state)
{
    uv_loop_t loop;
    uv_timer_t t;

    (void)state;
    unsetenv("NOTIFY_SOCKET");
    setenv("WATCHDOG_USEC", "200000", 1);
    assert_false(cq_notify_enabled());
    assert_int_equal(cq_notify_ready(), 0);
    assert_int_equal(cq_notify_status("x"), 0);
    assert_int_equal(cq_notify_stopping(), 0);
    assert_int_equal(cq_notify_reloading(), 0);
    assert_int_equal(cq_notify_watchdog_usec(), 0);
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(cq_notify_watchdog_start(&loop, &t), 0);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_unreachable_socket_is_an_error(void **state)
{
    (void)state;
    setenv("NOTIFY_SOCKET", "/nonexistent-dir/notify.sock", 1);
    assert_true(cq_notify_ready() < 0);
}

static void stop_cb(uv_timer_t *t)
{
    uv_close((uv_handle_t *)t, NULL);
    uv_close((uv_handle_t *)t->data, NULL); /* the watchdog timer */
}

static int count_watchdogs(fixture *f)
{
    char buf[MSG_MAX];
    int n = 0;

    while (*next_msg(f, buf) != '\0') {
        assert_string_equal(buf, "WATCHDOG=1");
        n++;
    }
    return n;
}

static void test_watchdog_pings_from_the_loop(void **state)
{
    fixture *f = *state;
    uv_loop_t loop;
    uv_timer_t wd, stop;
    char pid[24];

    snprintf(pid, sizeof(pid), "%ld", (long)getpid());
    setenv("WATCHDOG_USEC", "200000", 1);
    setenv("WATCHDOG_PID", pid, 1);
    assert_int_equal(cq_notify_watchdog_usec(), 200000);
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(cq_notify_watchdog_start(&loop, &wd), 1);
    assert_int_equal(count_watchdogs(f), 1); /* one at once */
    uv_timer_init(&loop, &stop);
    stop.data = &wd;
    uv_timer_start(&stop, stop_cb, 330, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    /* every 100 ms over 330 ms: 3 (2 on a very loaded machine) */
    assert_in_range(count_watchdogs(f), 2, 4);
}

static void test_watchdog_off(void **state)
{
    fixture *f = *state;
    uv_loop_t loop;
    uv_timer_t wd;

    /* another process's watchdog (WATCHDOG_PID not ours), then none at all */
    setenv("WATCHDOG_USEC", "200000", 1);
    setenv("WATCHDOG_PID", "1", 1);
    assert_int_equal(cq_notify_watchdog_usec(), 0);
    unsetenv("WATCHDOG_PID");
    unsetenv("WATCHDOG_USEC");
    assert_int_equal(cq_notify_watchdog_usec(), 0);
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(cq_notify_watchdog_start(&loop, &wd), 0);
    /* the idle timer is unref'd: the loop ends at once */
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    uv_close((uv_handle_t *)&wd, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(count_watchdogs(f), 0);
}

static void test_watchdog_does_not_hold_the_loop(void **state)
{
    uv_loop_t loop;
    uv_timer_t wd;
    char pid[24];

    (void)state;
    snprintf(pid, sizeof(pid), "%ld", (long)getpid());
    setenv("WATCHDOG_USEC", "200000", 1);
    setenv("WATCHDOG_PID", pid, 1);
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(cq_notify_watchdog_start(&loop, &wd), 1);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    uv_close((uv_handle_t *)&wd, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ready_status_stopping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reloading_then_ready, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_is_one_line_and_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_noop_without_socket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreachable_socket_is_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watchdog_pings_from_the_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watchdog_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watchdog_does_not_hold_the_loop, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
