/*
 * ctl.h - what the cancelqctl commands share (private to tools/cancelqctl).
 *
 * cancelqctl is a synchronous client: one hiredis connection, one command at
 * a time, no event loop.  Every command is a function
 *
 *     int cmd_NAME(ctl *c, int argc, char **argv);
 *
 * that parses its own options (argv[0] is the command name), calls
 * ctl_open() to load the config and connect, does its work and returns the
 * exit status: CTL_OK, CTL_ERR (something failed; a message naming what went
 * to stderr) or CTL_USAGE (bad command line).
 *
 * Ownership: replies returned by ctl_cmd*() and ctl_script() belong to the
 * caller (freeReplyObject); a NULL return means the failure was already
 * reported.  Strings printed to a terminal that come from Redis are
 * untrusted and always go through out.c's escaping.
 */
#ifndef CANCELQCTL_CTL_H
#define CANCELQCTL_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <getopt.h>

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>

#include "cancelq/clock.h"
#include "cancelq/config.h"
#include "cancelq/job.h"
#include "cancelq/job_check.h"
#include "cancelq/keys.h"

#define CTL_OK 0
#define CTL_ERR 1
#define CTL_USAGE 2
#define CTL_NOT_ON_STREAM 3 /* results get: the job is known, its outcome is not on the stream */

#define CTL_DEFAULT_CONF "/etc/cancelq/cancelq.conf"
#define CTL_REPLY_TIMEOUT_MS 15000 /* any single reply; XREAD blocks far less */
#define CTL_SCRIPTS 1              /* Lua scripts cancelqctl loads */

typedef struct ctl {
    const char *conf_path;
    const char *prog;
    bool json; /* --json given before the command: the command's default */
    cq_config *cfg;
    redisContext *rc;
    bool broken;               /* the connection failed and that was reported */
    bool quiet;                /* connection errors only to `error`, not stderr (check) */
    char error[512];           /* the last connection or Redis error, for messages */
    int64_t clock_offset_ms;   /* Redis TIME minus this host's clock, at ctl_open */
    char where[CQ_KEY_MAX];    /* "host:port" or the socket path, for messages */
    cq_keys k;                 /* the key schema (keys.h), shared with cancelqd */
    char sha[CTL_SCRIPTS][41]; /* SCRIPT LOAD results, "" until loaded */
} ctl;

/* Commands (one file each) ---------------------------------------------- */
int cmd_stats(ctl *c, int argc, char **argv);
int cmd_dlq(ctl *c, int argc, char **argv);
int cmd_enqueue(ctl *c, int argc, char **argv);
int cmd_results(ctl *c, int argc, char **argv);
int cmd_workers(ctl *c, int argc, char **argv);
int cmd_check(ctl *c, int argc, char **argv);
int cmd_top(ctl *c, int argc, char **argv);
int cmd_provider(ctl *c, int argc, char **argv);

/* usage.c --------------------------------------------------------------- */

/* Print the synopsis of `cmd` ("dlq list", "" for the program) to stderr
 * and return CTL_USAGE. */
int ctl_usage(const ctl *c, const char *cmd);

/* Print the full help of `cmd` to stdout and return CTL_OK. */
int ctl_help(const ctl *c, const char *cmd);

/* getopt_long() with cancelqctl's own messages ("cancelqctl: unknown option
 * '--x'", "cancelqctl: option '--since' needs a value"), so every option
 * error has the same prefix.  Returns what getopt_long returns; '?' after
 * reporting an error. */
int ctl_getopt(const ctl *c, int argc, char **argv, const char *shortopts,
               const struct option *longopts);

/* Options of a command that takes no arguments: --json, -c FILE, --help.
 * Returns -1 to go on (with *json set), else the exit status to return. */
int ctl_parse_plain(ctl *c, int argc, char **argv, const char *cmd, bool *json);

/* Strict decimal integer in [min, max]; 0 or -EINVAL. */
int ctl_parse_ll(const char *s, long long min, long long max, long long *out);

/* conn.c ---------------------------------------------------------------- */

/* Load the config (secrets of providers are not needed), connect, AUTH,
 * SELECT, derive the key names.  0, or -1 after reporting why. */
int ctl_open(ctl *c);

/* Load the config only (no connection).  0, or -1 after reporting. */
int ctl_load_config(ctl *c);

/* Connect with the loaded config (again, after a failure: `top`).  0, or
 * -1 after reporting; the config stays loaded either way. */
int ctl_connect(ctl *c);

/* Now in Redis server time (TIME at ctl_open, kept with this host's
 * clock): heartbeats, due times and lease ends are Redis time. */
int64_t ctl_now_ms(const ctl *c);

/* Disconnect and free the config; safe to call twice. */
void ctl_close(ctl *c);

/* Run a command given as argc NUL-terminated strings (argv) or binary
 * strings (argv + lens).  Error replies and I/O errors are reported
 * ("redis: ...") and give NULL. */
redisReply *ctl_cmdv(ctl *c, int argc, const char **argv, const size_t *lens);
redisReply *ctl_cmd(ctl *c, int argc, ...);

/* Run an embedded script (cq_redis_script_source(name)) with EVALSHA,
 * loading it first.  argv holds nkeys keys then the arguments. */
redisReply *ctl_script(ctl *c, const char *name, int nkeys, int argc, const char **argv,
                       const size_t *lens);

/* True when reply has the type; else reports "unexpected reply to WHAT". */
bool ctl_reply_is(const redisReply *r, int type, const char *what);

/* A SCAN MATCH pattern: the key prefix "{P}:" with its glob characters
 * escaped, then suffix (a pattern: "inflight:*"). */
void ctl_key_pattern(const ctl *c, const char *suffix, char *out, size_t size);

/* SCAN the keys "{P}:" + suffix (a pattern ending in "*": "pause:*"),
 * calling fn(c, key, rest, rest_len, data) for each, rest being what the
 * "*" matched.  fn returns 0 to go on, 1 to stop, -1 after reporting an
 * error.  Returns 0 (all seen), 1 (fn stopped) or -1. */
typedef int (*ctl_key_fn)(ctl *c, const redisReply *key, const char *rest, size_t rest_len,
                          void *data);
int ctl_scan_keys(ctl *c, const char *suffix, ctl_key_fn fn, void *data);

/* An integer reply's value, or -1 after reporting. Frees the reply. */
long long ctl_int(redisReply *r, const char *what);

/* check_probe.c: the consumer groups of {P}:results -------------------- */

#define CTL_RGROUPS_MAX 64

typedef struct ctl_rgroup {
    char name[136];    /* escaped for a terminal */
    long long lag;     /* entries not yet delivered to it */
    long long pending; /* delivered, not acknowledged */
    bool lost;         /* it lost entries to trimming */
} ctl_rgroup;

/* Up to max groups of {P}:results into v (*n of them); *stream false when
 * the key is not a stream (then *n is 0).  0, or -1 after reporting. */
int ctl_results_groups(ctl *c, ctl_rgroup *v, size_t max, size_t *n, bool *stream);

/* results_where.c: results get, when the outcome is not on the stream:
 * field "id" says where the job is now, "key" prints the idempotency
 * record.  0 when something was printed, 1 when nothing is known, -1 on an
 * error (reported). */
int results_where(ctl *c, const char *field, const char *value, bool json);

/* out.c ----------------------------------------------------------------- */

/* Write s[0..len) to buf[size] with every control character, DEL, C1
 * control and invalid UTF-8 byte escaped (\n, \t, \xNN, \u0085), cut at
 * max_cols characters (0 = no limit) with "..." marking the cut.  Returns
 * the number of characters written (for column padding). */
size_t out_escape(char *buf, size_t size, const char *s, size_t len, size_t max_cols);

/* Print s escaped, cut to width characters and padded to width (width 0:
 * no cut, no padding).  NULL prints "-". */
void out_cell(FILE *f, const char *s, size_t width);

/* Print s[0..len) escaped, cut at max_cols characters (0 = no limit). */
void out_text(FILE *f, const char *s, size_t len, size_t max_cols);

/* Print a JSON tree (pretty or one line) followed by a newline, with DEL,
 * C1 controls and invalid UTF-8 escaped so that the output is safe on a
 * terminal and still valid JSON.  Returns 0 or -ENOMEM. */
int out_json(FILE *f, const cJSON *json, bool pretty);

/* "0.4s", "12s", "3m07s", "5h02m", "4d03h" into buf. */
void out_age(int64_t ms, char *buf, size_t size);

/* A dead-letter entry's id: the first 16 hex digits of SHA-256(s[0..len)). */
void ctl_hash_hex(const char *s, size_t len, char out[17]);

/* suggest.c ------------------------------------------------------------- */

/* The candidate closest to value (edit distance at most a third of its
 * length, at least 1, at most 3), else one that starts with value (three
 * characters or more), or NULL. */
const char *ctl_suggest(const char *value, const char *const *cands, size_t n);

/* Check a filter value (a shell pattern) against the values the deployment
 * knows: 0 when the pattern matches one of cands, else report "OPTION
 * 'value' is not a WHAT (did you mean X?); WHATs: a, b, c" and return -1. */
int ctl_check_pattern(const ctl *c, const char *option, const char *value, const char *what,
                      const char *const *cands, size_t n);

/* "a, b, c" of cands into buf (cut with "..." when it does not fit). */
void ctl_join(char *buf, size_t size, const char *const *cands, size_t n);

#endif
