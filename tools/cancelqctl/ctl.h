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

#define CTL_DEFAULT_CONF "/etc/cancelq/cancelq.conf"
#define CTL_REPLY_TIMEOUT_MS 15000 /* any single reply; XREAD blocks far less */
#define CTL_SCRIPTS 1              /* Lua scripts cancelqctl loads */

typedef struct ctl {
    const char *conf_path;
    const char *prog;
    cq_config *cfg;
    redisContext *rc;
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

/* usage.c --------------------------------------------------------------- */

/* Print the synopsis of `cmd` ("dlq list", "" for the program) to stderr
 * and return CTL_USAGE. */
int ctl_usage(const ctl *c, const char *cmd);

/* Print the full help of `cmd` to stdout and return CTL_OK. */
int ctl_help(const ctl *c, const char *cmd);

/* Options of a command that takes no arguments: --json, -c FILE, --help.
 * Returns -1 to go on (with *json set), else the exit status to return. */
int ctl_parse_plain(ctl *c, int argc, char **argv, const char *cmd, bool *json);

/* Strict decimal integer in [min, max]; 0 or -EINVAL. */
int ctl_parse_ll(const char *s, long long min, long long max, long long *out);

/* conn.c ---------------------------------------------------------------- */

/* Load the config (secrets of providers are not needed), connect, AUTH,
 * SELECT, derive the key names.  0, or -1 after reporting why. */
int ctl_open(ctl *c);

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

/* An integer reply's value, or -1 after reporting. Frees the reply. */
long long ctl_int(redisReply *r, const char *what);

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

#endif
