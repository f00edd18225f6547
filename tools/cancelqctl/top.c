/*
 * top.c - `cancelqctl top`: the deployment on one screen, redrawn every
 * second: queue depths, workers with their heartbeat age and jobs in
 * flight, provider pauses (operators'), open breakers and 429 pauses
 * (deployment-wide, {P}:limit:*), outcomes per provider and status (jobs/s over
 * the last ten seconds, count over the last minute) and the latest
 * outcomes.  `q` quits (^C too).
 *
 * Plain ANSI escapes, no curses: the alternate screen, the cursor hidden,
 * each frame written from the top-left with every line cleared to its end
 * (no flicker, no full clears), lines cut to the terminal's width.  The
 * terminal is put back on every way out of the loop.  When stdout is not a
 * terminal, or with --once, one snapshot is printed as plain text.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cancelq/rfc3339.h"
#include "top.h"

#define REFRESH_MS 1000
#define COLS_MAX 400     /* wider terminals get lines this long */
#define ROWS_MAX 400     /* lines composed per frame */
#define PLAIN_COLS 160   /* the width of a snapshot */
#define WORKERS_SHOWN 10 /* at most, on a terminal */
#define GROUPS_SHOWN 16  /* outcome rows, at most, on a terminal */
#define ESC "\x1b"

/* Set by signal handlers (they have nowhere else to write). */
static volatile sig_atomic_t stop_flag, resized;

static void on_stop(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void on_winch(int sig)
{
    (void)sig;
    resized = 1;
}

/* --- composing a frame --------------------------------------------------- */

typedef struct screen {
    char lines[ROWS_MAX][COLS_MAX + 1];
    size_t n, rows, cols;
} screen;

static void line(screen *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void line(screen *s, const char *fmt, ...)
{
    va_list ap;

    if (s->n >= s->rows || s->n >= ROWS_MAX)
        return;
    va_start(ap, fmt);
    vsnprintf(s->lines[s->n], s->cols + 1, fmt, ap);
    va_end(ap);
    s->n++;
}

static size_t room(const screen *s, size_t reserve)
{
    return s->rows > s->n + reserve ? s->rows - s->n - reserve : 0;
}

static void compose_head(const ctl *c, const top_data *d, screen *s, bool live)
{
    char when[32], due[48] = "";

    cq_format_rfc3339(d->now_ms, when);
    line(s, "cancelq top - {%s} on redis %s - %s%s", c->cfg->redis.prefix, c->where, when,
         live ? "   (q quits)" : "");
    if (!d->ok) {
        line(s, "REDIS   %s%s", d->error, live ? " (trying again every second)" : "");
        return;
    }
    if (d->next_due_ms > 0) {
        char age[24];
        int64_t in = d->next_due_ms - d->now_ms;

        out_age(in < 0 ? -in : in, age, sizeof(age));
        snprintf(due, sizeof(due), " (next %s %s)", in < 0 ? "overdue by" : "due in", age);
    }
    line(s,
         "QUEUE   jobs %lld   retry %lld   delayed %lld%s   dead %lld   inflight %lld   results "
         "%lld",
         d->jobs, d->retry, d->delayed, due, d->dead, d->w.inflight, d->results);
}

static void compose_workers(const top_data *d, screen *s, size_t max)
{
    size_t shown = 0;

    line(s, "WORKERS %zu live, %zu dead, %zu orphaned inflight hashes", d->w.live, d->w.dead,
         d->w.orphans);
    if (d->w.n == 0)
        return;
    line(s, "  %-32s %-12s %-6s %8s", "WORKER", "HEARTBEAT", "STATE", "INFLIGHT");
    /* d->w.v: heartbeats oldest first, then orphans; show the newest
     * heartbeats first, the orphans after them */
    for (size_t i = 0; i < d->w.n && shown < max; i++, shown++) {
        size_t beats = d->w.n - d->w.orphans;
        const ctl_worker *x = &d->w.v[i < beats ? beats - 1 - i : i];
        char id[COLS_MAX], age[32] = "none", t[24];

        out_escape(id, sizeof(id), x->id, strlen(x->id), 32);
        if (!x->orphan) {
            out_age(d->now_ms - x->heartbeat_ms, t, sizeof(t));
            snprintf(age, sizeof(age), "%s ago", t);
        }
        line(s, "  %-32s %-12s %-6s %8lld", id, age,
             x->orphan  ? "ORPHAN"
             : x->alive ? "live"
                        : "DEAD",
             x->inflight);
    }
    if (shown < d->w.n)
        line(s, "  ... %zu more", d->w.n - shown);
}

static void compose_pauses(const top_data *d, screen *s)
{
    if (d->npauses == 0) {
        line(s, "PAUSES  none");
    } else {
        line(s, "PAUSES  %zu", d->npauses + d->pauses_more);
        for (size_t i = 0; i < d->npauses; i++)
            line(s, "  %s", d->pauses[i]);
        if (d->pauses_more > 0)
            line(s, "  ... %zu more", d->pauses_more);
    }
    line(s, "LIMITS  %s", d->nlimits == 0 ? "no breaker open, no 429 pause" : "");
    for (size_t i = 0; i < d->nlimits; i++)
        line(s, "  %s", d->limits[i]);
}

/* Rows by provider, then status; the total last. */
static int group_cmp(const void *a, const void *b)
{
    const top_group *x = a, *y = b;
    int k = strcmp(x->provider, y->provider);

    return k != 0 ? k : strcmp(x->status, y->status);
}

static void compose_outcomes(const top_data *d, screen *s, size_t max)
{
    top_group sorted[TOP_GROUPS_MAX] = {0};
    size_t n = 0, shown = 0;

    for (size_t i = 0; i < d->ngroups; i++)
        if (d->groups[i].window > 0)
            sorted[n++] = d->groups[i];
    qsort(sorted, n, sizeof(sorted[0]), group_cmp);
    line(s, "OUTCOMES %-16s %-14s %12s %10s", "PROVIDER", "STATUS", "JOBS/S(10s)", "LAST 60s");
    for (size_t i = 0; i < n && shown < max; i++, shown++)
        line(s, "         %-16s %-14s %12.1f %10lld", sorted[i].provider, sorted[i].status,
             (double)sorted[i].recent / (TOP_RATE_MS / 1000.0), sorted[i].window);
    if (shown < n)
        line(s, "         ... %zu more", n - shown);
    line(s, "         %-16s %-14s %12.1f %10lld", "all", "",
         (double)d->recent_total / (TOP_RATE_MS / 1000.0), d->window_total);
}

static void compose_last(const top_data *d, screen *s, size_t max)
{
    size_t n = d->nlast < max ? d->nlast : max;

    line(s, "LAST OUTCOMES (Redis time)");
    if (d->nlast == 0)
        line(s, "  none in the last minute");
    /* newest first */
    for (size_t i = 0; i < n; i++)
        line(s, "  %s", d->last[(d->last_pos + TOP_LAST_MAX - 1 - i) % TOP_LAST_MAX]);
}

static void compose(const ctl *c, const top_data *d, screen *s, bool live)
{
    size_t workers, groups;

    s->n = 0;
    compose_head(c, d, s, live);
    if (!d->ok)
        return;
    line(s, "%s", "");
    /* share what is left: workers, pauses, outcomes, then the last ones */
    workers = live ? WORKERS_SHOWN : d->w.n;
    if (live && room(s, 12) < workers)
        workers = room(s, 12) > 2 ? room(s, 12) - 2 : 1;
    compose_workers(d, s, workers);
    compose_pauses(d, s);
    line(s, "%s", "");
    groups = live ? GROUPS_SHOWN : TOP_GROUPS_MAX;
    if (live && room(s, 5) < groups)
        groups = room(s, 5) > 1 ? room(s, 5) - 1 : 1;
    compose_outcomes(d, s, groups);
    line(s, "%s", "");
    compose_last(d, s,
                 live ? (room(s, 1) < TOP_LAST_MAX ? room(s, 1) : TOP_LAST_MAX) : TOP_LAST_MAX);
}

/* --- the terminal -------------------------------------------------------- */

static void draw(const screen *s)
{
    fputs(ESC "[H", stdout);
    for (size_t i = 0; i < s->n; i++)
        printf("%s" ESC "[K%s", s->lines[i], i + 1 < s->n ? "\r\n" : "");
    fputs(ESC "[J", stdout);
    fflush(stdout);
}

static void size_of(screen *s)
{
    struct winsize ws;

    s->rows = 24;
    s->cols = 80;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0) {
        s->rows = ws.ws_row;
        s->cols = ws.ws_col < COLS_MAX ? ws.ws_col : COLS_MAX;
    }
}

static int64_t mono_ms(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Wait up to ms for a key; true when q (or Q) was pressed.  A resize
 * redraws at once (*redraw). */
static bool wait_key(int *in, int64_t ms, bool *redraw)
{
    int64_t end = mono_ms() + ms;

    while (!stop_flag) {
        struct pollfd p = {.fd = *in, .events = POLLIN};
        int64_t left = end - mono_ms();
        char buf[32];
        ssize_t n;
        int rc;

        if (left <= 0)
            return false;
        rc = poll(&p, *in >= 0 ? 1 : 0, (int)left);
        if (rc < 0 && errno == EINTR) {
            if (resized) {
                resized = 0;
                *redraw = true;
                return false;
            }
            continue;
        }
        if (rc <= 0)
            continue;
        n = read(*in, buf, sizeof(buf));
        if (n <= 0) {
            *in = -1; /* stdin closed: only the clock and signals now */
            continue;
        }
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] == 'q' || buf[i] == 'Q')
                return true;
    }
    return false;
}

static int run_live(ctl *c, top_data *d, screen *s)
{
    struct termios saved, raw;
    bool have_tty = tcgetattr(STDIN_FILENO, &saved) == 0, redraw = false;
    struct sigaction sa;
    int in = STDIN_FILENO, rc = CTL_OK;

    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop; /* no SA_RESTART: poll() wakes up */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sa.sa_handler = on_winch;
    sigaction(SIGWINCH, &sa, NULL);
    if (have_tty) {
        raw = saved;
        raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
        raw.c_cc[VMIN] = 0;
        raw.c_cc[VTIME] = 0;
        tcsetattr(STDIN_FILENO, TCSANOW, &raw);
    }
    fputs(ESC "[?1049h" ESC "[?25l", stdout); /* alternate screen, no cursor */
    while (!stop_flag) {
        if (!redraw && top_gather(c, d) != 0) {
            rc = CTL_ERR;
            break;
        }
        redraw = false;
        size_of(s);
        compose(c, d, s, true);
        draw(s);
        if (wait_key(&in, REFRESH_MS, &redraw))
            break;
    }
    fputs(ESC "[?25h" ESC "[?1049l", stdout);
    fflush(stdout);
    if (have_tty)
        tcsetattr(STDIN_FILENO, TCSANOW, &saved);
    if (rc != CTL_OK)
        fprintf(stderr, "%s: out of memory\n", c->prog);
    return rc;
}

static int run_once(ctl *c, top_data *d, screen *s)
{
    if (top_gather(c, d) != 0) {
        fprintf(stderr, "%s: out of memory\n", c->prog);
        return CTL_ERR;
    }
    s->rows = ROWS_MAX;
    s->cols = PLAIN_COLS;
    compose(c, d, s, false);
    for (size_t i = 0; i < s->n; i++)
        puts(s->lines[i]);
    return d->ok ? CTL_OK : CTL_ERR;
}

int cmd_top(ctl *c, int argc, char **argv)
{
    enum { O_ONCE = 1000 };
    static const struct option longopts[] = {
        {"once", no_argument, NULL, O_ONCE},
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool once = false;
    top_data *d;
    screen *s;
    int ch, rc = CTL_ERR;

    while ((ch = ctl_getopt(c, argc, argv, "c:h", longopts)) != -1) {
        if (ch == O_ONCE)
            once = true;
        else if (ch == 'c')
            c->conf_path = optarg;
        else if (ch == 'h')
            return ctl_help(c, "top");
        else
            return ctl_usage(c, "top");
    }
    if (optind < argc) {
        fprintf(stderr, "%s: top takes no arguments\n", c->prog);
        return ctl_usage(c, "top");
    }
    if (ctl_load_config(c) != 0)
        return CTL_ERR;
    once = once || !isatty(STDOUT_FILENO);
    d = calloc(1, sizeof(*d));
    s = calloc(1, sizeof(*s));
    if (d == NULL || s == NULL) {
        fprintf(stderr, "%s: out of memory\n", c->prog);
        goto out;
    }
    /* errors go on the screen (or the snapshot), not over it */
    c->quiet = !once;
    if (once && ctl_connect(c) != 0)
        goto out;
    rc = once ? run_once(c, d, s) : run_live(c, d, s);
out:
    if (d != NULL)
        top_data_free(d);
    free(d);
    free(s);
    return rc;
}
