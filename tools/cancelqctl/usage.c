/*
 * usage.c - synopses and help texts of every command, in one table, and the
 * strict number parser the option parsers share.
 */
#include <getopt.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

#define FILTERS                                                                                    \
    "Filters (all given must match; P, A, S, E and J are shell patterns, e.g. 'http_5*'):\n"       \
    "  --provider P   the job's provider instance\n"                                               \
    "  --action A     the job's action\n"                                                          \
    "  --status S     the dead letter's status (failed, exhausted, expired, invalid, conflict)\n"  \
    "  --error E      the dead letter's error code\n"                                              \
    "  --job J        the job's id\n"                                                              \
    "  --since DUR    failed within the last DUR (30s, 15m, 2h, 7d)\n"                             \
    "  --malformed    only entries that are not dead letters (damaged, hand-written)\n"            \
    "  --limit N      at most N entries (oldest first)\n"

#define COMMON                                                                                     \
    "  -c FILE        config file (default " CTL_DEFAULT_CONF ")\n"                                \
    "  -h, --help     this help\n"

static const struct help {
    const char *cmd;
    const char *synopsis;
    const char *text;
} helps[] = {
    {"", "[-c FILE] [--json] COMMAND [ARGS]  (COMMAND --help for details)",
     "Commands:\n"
     "  stats                        queue depths, inflight, delayed, dead, results rate, workers\n"
     "  dlq list|show|requeue|drop|purge   dead letters: inspect, put back, remove\n"
     "  enqueue                      build a job from flags, validate it, push it\n"
     "  results tail [-f] | get      the outcome stream; one job's outcome\n"
     "  workers                      heartbeats, inflight jobs, dead workers\n"
     "  check                        one line for monitoring (exit 0 OK, 1 WARNING, 2 CRITICAL)\n"
     "  top                          a live view, refreshed every second\n"
     "  provider pause|resume|list   stop or restart calls to a provider instance\n"
     "Options:\n" COMMON
     "  --json         JSON output, for the commands that have it (also after the command)\n"
     "  -V, --version  print the version\n"
     "Exit status: 0 ok, 1 error, 2 usage; workers: 3 when no worker is alive or jobs\n"
     "are held that nothing takes back; check: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.\n"},
    {"stats", "stats [--json]",
     "Depth of the job queue, inflight jobs per worker (and orphaned inflight lists),\n"
     "delayed retries and the next one due, dead letters by provider and status,\n"
     "the results stream's length and entries in the last minute, workers.\n"
     "  --json         one JSON object\n" COMMON},
    {"dlq", "dlq list|show|requeue|drop|purge ...",
     "Dead letters ({P}:dead).  Each entry has a stable ID: a hash of its text, shown\n"
     "by dlq list (12 hex digits).  Positions (POS, 0 = newest) shift as entries come\n"
     "and go; IDs do not.  Commands:\n"
     "  dlq list [filters] [--json]\n"
     "  dlq show ID [--json]\n"
     "  dlq requeue (ID... | --all) [filters] [--dry-run] [--rate N/s] [--redo] [--json]\n"
     "  dlq drop (ID... | --all) [filters] [--dry-run] [--json]\n"
     "  dlq purge --yes\n"
     "See cancelqctl dlq COMMAND --help.\n"},
    {"dlq list", "dlq list [filters] [--json]",
     "One line per dead letter, oldest first: position, ID, age, provider, action,\n"
     "status, error, attempts, job id.  Entries that are not dead letters (damaged or\n"
     "hand-written) are shown with status '?' and their text cut.\n" FILTERS
     "  --json         a JSON array of {id, pos, provider, action, job_id, status, error,\n"
     "                 message, attempts, failed_at, age_ms, valid, entry}\n" COMMON},
    {"dlq show", "dlq show ID [--json]",
     "The whole entry: status, error, message, attempts, the attempt history, the\n"
     "worker, and the job, pretty-printed.  ID as shown by dlq list, or a unique prefix\n"
     "of it (4 hex digits at least; when several entries match, they are listed).\n"
     "  --json         the entry as JSON\n" COMMON},
    {"dlq requeue",
     "dlq requeue (ID... | --all) [filters] [--dry-run] [--rate N/s] [--redo] [--json]",
     "Put jobs back on the queue, attempts reset: each entry leaves the dead-letter list\n"
     "in the same atomic step that pushes its job, and the job's idempotency record is\n"
     "released so the retry calls the provider.  A record another job holds right now,\n"
     "or one marked done (the key was carried out since; the daemon will answer\n"
     "'duplicate' without a call), is kept unless --redo.  Jobs that cannot pass the\n"
     "daemon's validation (not JSON, unknown provider, bad params, deadline passed) are\n"
     "skipped with the reason.  Prints one line per entry and a summary.\n"
     "  ID...          entries by ID (filters, when given, must match too)\n"
     "  --all          every entry the filters select\n" FILTERS
     "  --dry-run      say what would happen, change nothing\n"
     "  --rate N/s     at most N requeues per second (also N/m, N/h), with progress\n"
     "  --redo         also forget a 'done' idempotency record: call the provider again\n"
     "  --json         one JSON object per entry, then a summary object\n" COMMON},
    {"dlq drop", "dlq drop (ID... | --all) [filters] [--dry-run] [--json]",
     "Remove dead letters for good (one atomic LREM each).\n"
     "  ID...          entries by ID (filters, when given, must match too)\n"
     "  --all          every entry the filters select\n" FILTERS
     "  --dry-run      say what would happen, change nothing\n"
     "  --json         one JSON object per entry, then a summary object\n" COMMON},
    {"dlq purge", "dlq purge --yes",
     "Delete the whole dead-letter list.  Refused without --yes.\n"
     "  --yes          really delete\n" COMMON},
    {"enqueue",
     "enqueue (--provider P --action A [--param K=V]... [--id ID] [--key K] | --file FILE) "
     "[--dry-run] [--json]",
     "Build a job, check it with the daemon's rules (job fields, the provider instance\n"
     "in the config, the action's params) and push it onto {P}:jobs.  Prints the job id.\n"
     "  --provider P   provider instance (a [provider P] of the config)\n"
     "  --action A     action of that provider's adapter\n"
     "  --param K=V    a parameter; V is an integer when it is one (strictly: -?[1-9][0-9]*\n"
     "                 or 0), else a string\n"
     "  --param K:=J   a parameter given as JSON (\"0042\" as a string: K:='\"0042\"')\n"
     "  --id ID        the job id (default: ctl-<time>-<random>)\n"
     "  --key K        the idempotency key (default: derived by the daemon)\n"
     "  --file FILE    push this job file (JSON) as it is; '-' reads stdin\n"
     "  --dry-run      check and print the job, push nothing\n"
     "  --json         print {id, idempotency_key, job} instead of the id\n" COMMON},
    {"results", "results tail|get ...",
     "  results tail [-f] [--count N] [--json]\n"
     "  results get (--id ID | --key KEY) [--all] [--json]\n"
     "See cancelqctl results COMMAND --help.\n"},
    {"results get", "results get (--id ID | --key KEY) [--all] [--json]",
     "The outcome of job ID (its newest, when the id was enqueued more than once), or\n"
     "of the newest job with idempotency key KEY, read from {P}:results newest first.\n"
     "When it is not on the stream (not ended yet, or trimmed at results_maxlen):\n"
     "for --key the idempotency record (done: job, status, time; or claimed: job,\n"
     "worker, claim end), for --id where the job is now (held by a worker, retry,\n"
     "delayed with its due time, queued, or dead with its dead-letter ID); exit 3.\n"
     "Exit status 0 an outcome printed, 1 nothing known, 3 known but no outcome on\n"
     "the stream.\n"
     "  --id ID        the job's id\n"
     "  --key KEY      the job's idempotency key\n"
     "  --all          every match, oldest first (duplicates, re-enqueued ids)\n"
     "  --json         one JSON object per line, as results tail --json\n" COMMON},
    {"results tail", "results tail [-f] [--count N] [--json]",
     "The last N outcomes of {P}:results, oldest first; -f keeps following new ones\n"
     "until interrupted.\n"
     "  -f, --follow   wait for new outcomes and print them as they come\n"
     "  -n, --count N  how many of the last outcomes (default 10, 0 = none)\n"
     "  --json         one JSON object per line: stream_id and every field\n" COMMON},
    {"workers", "workers [--json]",
     "Workers by heartbeat: id, heartbeat age (Redis time), live or dead (silent past\n"
     "the lease), inflight jobs.  Warns when no worker is alive, about dead workers\n"
     "whose jobs wait for reclaim, and about orphaned inflight hashes (no heartbeat\n"
     "entry): taken back by the daemon after a lease when {P}:holders knows them,\n"
     "else with the redis-cli command that hands them over.  Worker ids default to\n"
     "the host name (plus the systemd instance).\n"
     "Exit status 3 when no worker is alive or jobs are held that nothing takes back.\n"
     "  --json         one JSON object\n" COMMON},
    {"check", "check [--since DUR] [--dead-warn N] [--lag-warn N] [--json]",
     "One line for a monitoring system, with performance data after '|'.  Exit status\n"
     "0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (bad command line or config).\n"
     "CRITICAL: Redis does not answer (as Redis); no worker is alive.\n"
     "WARNING: orphaned inflight hashes; more than --dead-warn dead letters in the last\n"
     "--since; a consumer group of {P}:results within --lag-warn entries of losing\n"
     "entries to the stream's trimming (results_maxlen), or that lost some; a paused\n"
     "provider ({P}:pause:NAME); an open or half-open circuit breaker\n"
     "({P}:limit:NAME, shared by the workers).\n"
     "  --since DUR    the dead-letter window (default 5m)\n"
     "  --dead-warn N  warn above N new dead letters (default 0: any)\n"
     "  --lag-warn N   warn when a group's backlog (undelivered + pending) is within N\n"
     "                 of results_maxlen (default: a tenth of results_maxlen)\n"
     "  --json         one JSON object: status, exit, summary, problems, metrics, notes\n" COMMON},
    {"top", "top [--once]",
     "A live view redrawn every second: queue depths, workers and their heartbeat\n"
     "age, jobs in flight per worker, provider pauses, outcomes per provider and\n"
     "status (jobs/s over 10 s, count over the last minute), the latest outcomes.\n"
     "q quits.  When standard output is not a terminal, one plain snapshot.\n"
     "  --once         print one snapshot and exit\n" COMMON},
    {"provider", "provider pause|resume|list ...",
     "  provider pause NAME [--for DUR] [--reason TEXT]\n"
     "  provider resume NAME\n"
     "  provider list [--json]\n"
     "See cancelqctl provider COMMAND --help.\n"},
    {"provider pause", "provider pause NAME [--for DUR] [--reason TEXT]",
     "Stop calls to provider instance NAME in every worker of the deployment, from\n"
     "their next claim or heartbeat: planned maintenance or an emergency stop.\n"
     "Calls in flight finish; the instance's jobs wait in delayed without spending\n"
     "attempts and come back when the pause ends.  Pausing again replaces the pause.\n"
     "  --for DUR      end the pause by itself after DUR (90s, 30m, 2h); without it\n"
     "                 the pause lasts until `provider resume`\n"
     "  --reason TEXT  shown by provider list, check and top (at most 200 bytes)\n" COMMON},
    {"provider resume", "provider resume NAME",
     "End an operator's pause of NAME: workers call it again from their next claim\n"
     "or heartbeat.  (A breaker or a provider's 429 pause is not an operator's\n"
     "pause: those end by themselves.)\n" COMMON},
    {"provider list", "provider list [--json]",
     "Every provider instance of the config: adapter, state (running, paused,\n"
     "breaker-open, 429-pause), an operator's pause (until, reason, by), the\n"
     "breaker's end and who opened it, and the workers with work for it with the\n"
     "concurrency slots they hold of the instance's limit.\n"
     "  --json         a JSON array, one object per instance\n" COMMON},
};

static const struct help *find(const char *cmd)
{
    for (size_t i = 0; i < sizeof(helps) / sizeof(helps[0]); i++)
        if (strcmp(helps[i].cmd, cmd) == 0)
            return &helps[i];
    return NULL;
}

int ctl_usage(const ctl *c, const char *cmd)
{
    const struct help *h = find(cmd);

    fprintf(stderr, "usage: %s %s\n", c->prog, h != NULL ? h->synopsis : helps[0].synopsis);
    return CTL_USAGE;
}

int ctl_help(const ctl *c, const char *cmd)
{
    const struct help *h = find(cmd);

    if (h == NULL) {
        fprintf(stderr, "%s: no help for '%s'\n", c->prog, cmd);
        return ctl_usage(c, "");
    }
    printf("usage: %s %s\n\n%s", c->prog, h->synopsis, h->text);
    return CTL_OK;
}

int ctl_parse_ll(const char *s, long long min, long long max, long long *out)
{
    char *end = NULL;
    long long v;

    if (s == NULL || *s == '\0' || (*s != '-' && (*s < '0' || *s > '9')))
        return -EINVAL;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

/* Is "--name" (up to '=' in arg) one of longopts? */
static const struct option *long_named(const struct option *longopts, const char *arg)
{
    size_t n;

    if (longopts == NULL || strncmp(arg, "--", 2) != 0)
        return NULL;
    arg += 2;
    n = strcspn(arg, "=");
    for (const struct option *o = longopts; o->name != NULL; o++)
        if (strlen(o->name) == n && strncmp(o->name, arg, n) == 0)
            return o;
    return NULL;
}

int ctl_getopt(const ctl *c, int argc, char **argv, const char *shortopts,
               const struct option *longopts)
{
    char opts[64];
    const char *arg;
    int ch;

    /* a leading ':' (after a '+') makes a missing value ':' instead of '?' */
    if (shortopts[0] == '+')
        snprintf(opts, sizeof(opts), "+:%s", shortopts + 1);
    else
        snprintf(opts, sizeof(opts), ":%s", shortopts);
    opterr = 0;
    ch = getopt_long(argc, argv, opts, longopts, NULL);
    if (ch != '?' && ch != ':')
        return ch;
    arg = optind > 0 && optind <= argc ? argv[optind - 1] : "";
    if (ch == ':')
        fprintf(stderr, "%s: option '%s' needs a value\n", c->prog, arg);
    else if (long_named(longopts, arg) != NULL)
        fprintf(stderr, "%s: option '%.*s' takes no value\n", c->prog, (int)strcspn(arg, "="), arg);
    else if (strncmp(arg, "--", 2) != 0 && optopt > 0 && optopt < 128)
        fprintf(stderr, "%s: unknown option '-%c'\n", c->prog, optopt);
    else
        fprintf(stderr, "%s: unknown option '%s'\n", c->prog, arg);
    return '?';
}

int ctl_parse_plain(ctl *c, int argc, char **argv, const char *cmd, bool *json)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'},
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch;

    *json = c->json;
    while ((ch = ctl_getopt(c, argc, argv, "c:h", longopts)) != -1) {
        if (ch == 'j')
            *json = true;
        else if (ch == 'c')
            c->conf_path = optarg;
        else if (ch == 'h')
            return ctl_help(c, cmd);
        else
            return ctl_usage(c, cmd);
    }
    if (optind < argc) {
        fprintf(stderr, "%s: %s takes no arguments\n", c->prog, cmd);
        return ctl_usage(c, cmd);
    }
    return -1;
}
