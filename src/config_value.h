/*
 * config_value.h - private to the config module's files in src/.
 *
 * The row type of the option table, the table itself (config.c), and how
 * one value is parsed into, and printed from, the field a row describes
 * (config_value.c).  config_load.c owns the file structure and
 * config_check.c the rules that span several keys; config_value.c knows
 * nothing about files, sections or line numbers.
 */
#ifndef CANCELQ_CONFIG_VALUE_H
#define CANCELQ_CONFIG_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CQ_MS_SEC 1000LL
#define CQ_MS_MIN (60 * CQ_MS_SEC)
#define CQ_MS_HOUR (60 * CQ_MS_MIN)
#define CQ_MS_DAY (24 * CQ_MS_HOUR)
#define CQ_KIB 1024LL
#define CQ_MIB (1024 * CQ_KIB)
#define CQ_GIB (1024 * CQ_MIB)

typedef enum cq_conf_sec {
    CQ_SEC_NONE = 0,
    CQ_SEC_REDIS,    /* fields of cq_redis_conf */
    CQ_SEC_WORKER,   /* fields of cq_worker_conf */
    CQ_SEC_PROVIDER, /* fields of cq_provider_conf */
} cq_conf_sec;

/* The char * types come first (cq_conf_is_string()). */
typedef enum cq_conf_type {
    CQ_OT_STRING,   /* char *: free text, at most max chars, no control characters */
    CQ_OT_SOCKET,   /* char *: absolute path of a unix socket, at most max chars */
    CQ_OT_SECRET,   /* char *: resolved path of a readable secret file */
    CQ_OT_FILE,     /* char *: path resolved like a secret's, read by a section rule */
    CQ_OT_URL,      /* char *: http(s) URL, trailing '/' stripped (https is a section rule) */
    CQ_OT_PROXY,    /* char *: proxy URL: http, https, socks4(a), socks5(h); no credentials */
    CQ_OT_PREFIX,   /* char *: Redis key prefix, goes inside a {hash tag} */
    CQ_OT_ID,       /* char *: worker id: printable, no blanks */
    CQ_OT_HOSTPORT, /* char *: "host:port" or "[v6]:port" */
    CQ_OT_INT,      /* int within [min, max]; below min means unset */
    CQ_OT_LLONG,    /* long long within [min, max] */
    CQ_OT_DURATION, /* uint64_t milliseconds within [min, max] */
    CQ_OT_RATE,     /* double per second, > 0 and <= max; 0 means unset */
    CQ_OT_BOOL,     /* bool */
    CQ_OT_SIZE,     /* size_t bytes within [min, max] */
    CQ_OT_FORMAT,   /* cq_format: json | xml */
    CQ_OT_TRIM,     /* cq_trim: maxlen | acked */
} cq_conf_type;

typedef struct cq_conf_opt {
    const char *key;
    cq_conf_sec sec;
    size_t off; /* of the field in the section's struct */
    cq_conf_type type;
    long long min; /* bounds: ms, bytes, per second; for strings, max is the length */
    long long max;
    const char *def; /* default, parsed like a value from the file; NULL: unset */
    bool required;
} cq_conf_opt;

/* Worker ids go into Redis key names and log lines. */
#define CQ_WORKER_ID_MAX 128

/* Rows the option table may have: the loader keeps a line number per row
 * (config.c checks the table fits). */
#define CQ_CONF_OPTS_MAX 64

/* The option table (config.c), cq_conf_nopts rows. */
extern const cq_conf_opt cq_conf_opts[];
extern const size_t cq_conf_nopts;

/* The row for key in section sec, or NULL. */
const cq_conf_opt *cq_conf_opt_find(cq_conf_sec sec, const char *key);

/* Parse val into the field o describes in base.  Secret paths that are
 * not absolute resolve against dir (NULL: left relative), or against
 * $CREDENTIALS_DIRECTORY for bare names, and unless skip_secrets are read
 * once to check them.  A replaced string is freed.  Returns 0, or
 * -EINVAL/-ENOMEM with the reason (no file or line: the caller adds them)
 * in why[n]. */
int cq_conf_set_value(const cq_conf_opt *o, void *base, const char *val, const char *dir,
                      bool skip_secrets, char *why, size_t n);

/* Format the field o describes as it would be written in the file.
 * Returns false when the option is unset.  Secrets print as their path. */
bool cq_conf_format_value(const cq_conf_opt *o, const void *base, char *buf, size_t n);

/* True for the types stored as an owned char *. */
bool cq_conf_is_string(cq_conf_type t);

/* "90s", "5m", "250ms": the largest unit that divides ms exactly. */
void cq_conf_fmt_duration(char *buf, size_t n, uint64_t ms);

/* True when s is printable ASCII without blanks and none of `deny`. */
bool cq_conf_is_token(const char *s, const char *deny);

#endif
