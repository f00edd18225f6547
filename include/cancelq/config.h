/*
 * config.h - the cancelq configuration file (docs/design.md §9).
 *
 * INI, parsed with inih.  Sections: [redis], [worker], and one
 * [provider NAME] per provider instance.  Every key has one row in the
 * option table in config.c (type, bounds, default).  Durations take units
 * (ms, s, m, h, d; a bare number is seconds), rates are "N/s" (also /m, /h),
 * booleans yes/no/true/false/on/off/1/0.
 *
 * Errors (unknown section or key, bad value, missing required key, unreadable
 * secret file, http base_url without allow_insecure_http) are reported as
 * "FILE:LINE: [section] key: what is wrong" in err->msg.
 *
 * Secrets are never stored in the config struct: only the paths of the files
 * that hold them.  A secret file value is an absolute path, or a bare name
 * that is looked up in $CREDENTIALS_DIRECTORY when that is set (systemd
 * LoadCredential=), else relative to the config file's directory.
 * cq_secret_read() reads one.
 *
 * Ownership: cq_config_load() returns a heap struct the caller frees with
 * cq_config_free(); every string in it is owned by it.
 */
#ifndef CANCELQ_CONFIG_H
#define CANCELQ_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cancelq/err.h"

/* Named limits for what the config may ask for. */
#define CQ_CONF_MAX_PROVIDERS 64
#define CQ_CONF_NAME_MAX 64 /* provider instance name, prefix */
#define CQ_SECRET_MAX 8192  /* a token or secret file larger than this is refused */

typedef enum cq_format {
    CQ_FORMAT_JSON = 0,
    CQ_FORMAT_XML = 1,
} cq_format;

/* How the outcome stream is trimmed (docs/design.md §5). */
typedef enum cq_trim {
    CQ_TRIM_MAXLEN = 0, /* to about results_maxlen entries, read or not */
    CQ_TRIM_ACKED,      /* never past what a consumer group has not read and acknowledged */
} cq_trim;

typedef enum cq_cred_kind {
    CQ_CRED_NONE = 0,           /* not configured (config error for every adapter we have) */
    CQ_CRED_TOKEN_FILE,         /* static token read from token_file */
    CQ_CRED_CLIENT_CREDENTIALS, /* OAuth2 client credentials (Intronis) */
    CQ_CRED_PASSWORD,           /* OAuth2 password grant + refresh (Keliweb) */
} cq_cred_kind;

typedef struct cq_redis_conf {
    char *host;                  /* default "127.0.0.1" */
    int port;                    /* default 6379 */
    char *unix_socket;           /* NULL unless set; wins over host/port */
    char *password_file;         /* resolved path or NULL */
    int db;                      /* default 0 */
    char *prefix;                /* default "cancelq"; keys are "{prefix}:..." */
    uint64_t connect_timeout_ms; /* default 2000 */
    char *sentinels;             /* "host:port,host:port" or NULL: find the master via Sentinel */
    char *master_name;           /* the Sentinel master name (required with sentinels) */
    char *cluster;               /* "host:port,..." seed nodes of a Redis Cluster, or NULL */
    int wait_replicas;           /* claims and ends count once this many replicas have them */
    uint64_t wait_timeout_ms;    /* how long WAIT waits for them, default 1s */
} cq_redis_conf;

typedef struct cq_worker_conf {
    char *id;                    /* default: hostname[ + "-" + systemd instance] */
    int concurrency;             /* max requests in flight overall, default 256 */
    int max_attempts;            /* default 10 */
    uint64_t backoff_base_ms;    /* default 1s */
    uint64_t backoff_max_ms;     /* default 5m */
    uint64_t retry_after_max_ms; /* default 10m */
    uint64_t idempotency_ttl_ms; /* default 7d */
    uint64_t lease_ms;           /* default 15s */
    uint64_t heartbeat_ms;       /* default lease/3 (not a config key) */
    uint64_t shutdown_grace_ms;  /* default 20s */
    long long results_maxlen;    /* default 1000000 */
    cq_trim results_trim;        /* default maxlen */
    char *metrics_listen;        /* "host:port" or NULL (off) */
} cq_worker_conf;

typedef struct cq_provider_conf {
    char *name;               /* instance name (the job's "provider") */
    char *adapter;            /* adapter name; default: the instance name */
    char *base_url;           /* required; no trailing slash (stripped) */
    bool allow_insecure_http; /* default no: base_url must be https */
    cq_format format;         /* default json; xml only for intronis */

    cq_cred_kind cred;
    char *token_file; /* resolved path (CQ_CRED_TOKEN_FILE) */
    char *token_url;  /* OAuth2 token endpoint */
    char *client_id;
    char *client_secret_file; /* resolved path */
    char *scope;              /* client credentials; may be NULL */
    char *username;           /* password grant */
    char *password_file;      /* resolved path */

    char *ca_file;          /* resolved path of a PEM CA bundle, or NULL: the system's CAs */
    char *client_cert_file; /* resolved path: mutual TLS certificate (PEM), or NULL */
    char *client_key_file;  /* resolved path: its private key (PEM, a secret), or NULL */
    char *proxy;            /* proxy URL, or NULL: direct (the environment is ignored) */
    char *no_proxy;         /* hosts reached without the proxy (curl NOPROXY list), or NULL */

    uint64_t timeout_ms;         /* total per request, default 30s */
    uint64_t connect_timeout_ms; /* default 5s */
    int concurrency;             /* requests in flight, all workers of the deployment, default 64 */
    int local_concurrency;       /* of them in this worker at most (<= [worker] concurrency) */
    double rate;                 /* requests per second, 0 = unlimited */
    int burst;                   /* default 10 when rate is set */
    size_t max_response;         /* response body cap, default 1 MiB */
    int breaker_failures;        /* default 5 */
    uint64_t breaker_cooldown_ms; /* default 30s */
    int line;                     /* line of the [provider NAME] header */
} cq_provider_conf;

typedef struct cq_config {
    char *path; /* the file it was read from */
    cq_redis_conf redis;
    cq_worker_conf worker;
    cq_provider_conf *providers; /* nproviders entries */
    size_t nproviders;
} cq_config;

/* Parse and validate FILE.  Returns a new config or NULL with err filled
 * ("FILE:LINE: [section] key: reason").  Validation includes: adapter names
 * exist (cq_adapter_find), format=xml only where the adapter supports it,
 * exactly one credential kind per provider with its files readable. */
cq_config *cq_config_load(const char *path, cq_err *err);

/* Flags for cq_config_load_ex(). */
#define CQ_CONFIG_SKIP_SECRETS                                                                     \
    1u /* do not require secret files to be readable                                               \
          (cancelqctl needs only [redis]) */

/* cq_config_load() with flags. */
cq_config *cq_config_load_ex(const char *path, unsigned flags, cq_err *err);

/* Same, from a string; `name` is used as the file name in messages and
 * relative secret paths resolve against the current directory. */
cq_config *cq_config_load_string(const char *text, const char *name, cq_err *err);

/* SIGHUP: take what may change at run time from src (the same file read
 * again) into the running dst: limits and timeouts of the providers
 * (concurrency, local_concurrency, rate, burst, timeouts, max_response,
 * breaker_*), the worker's retry settings (max_attempts, backoff_*,
 * retry_after_max, shutdown_grace) and [redis] wait_*.  A change of
 * anything else (the Redis address, the worker id, lease, the provider
 * instances, their endpoints or credential sources) needs a restart: then
 * nothing changes and err names the key.  0 or -EINVAL. */
int cq_config_reload(cq_config *dst, const cq_config *src, cq_err *err);

/* Free a config; NULL is a no-op. */
void cq_config_free(cq_config *cfg);

/* Find a provider instance by name, or NULL. */
const cq_provider_conf *cq_config_provider(const cq_config *cfg, const char *name);

/* Read a secret file into *out (heap, NUL-terminated, trailing \r\n
 * stripped, at most CQ_SECRET_MAX bytes).  Returns 0 or -errno; on error err
 * names the path, never the content.  Free with cq_secret_free(). */
int cq_secret_read(const char *path, char **out, cq_err *err);

/* Read a whole file of at most max bytes that may hold a secret of several
 * lines (a PEM private key) into *out (heap, NUL-terminated, *len bytes;
 * no NUL inside, not empty).  0 or -errno; err names the path, never the
 * content.  Free with cq_secret_free(). */
int cq_secret_read_all(const char *path, size_t max, char **out, size_t *len, cq_err *err);

/* Wipe and free a secret; NULL is a no-op. */
void cq_secret_free(char *secret);

/* Parsers for value syntaxes, shared with cancelqctl flags.  Each returns 0
 * or -EINVAL. */
int cq_parse_duration_ms(const char *s, uint64_t *out); /* "250ms" "15s" "7d" "10" (=s) */
int cq_parse_rate(const char *s, double *per_sec);      /* "20/s" "600/m" "20" */
int cq_parse_bool(const char *s, bool *out);

/* Split "host:port" / "[v6]:port" into host (brackets removed, at most
 * host_size - 1 bytes) and port (0..65535).  The one host:port parser:
 * [redis] sentinels and cluster, Cluster MOVED replies, and the metrics
 * listener.  0 or -EINVAL. */
int cq_parse_hostport(const char *s, char *host, size_t host_size, int *port);

/* When pc sends its credentials in clear text (allow_insecure_http with an
 * http:// base_url or token_url): true, with a warning naming them in buf
 * (n bytes).  cancelqd logs it at start (event insecure_http) and
 * --check-config prints it. */
bool cq_config_insecure(const cq_provider_conf *pc, char *buf, size_t n);

/* Print a human summary (no secrets: file paths only) to f. */
void cq_config_print_summary(const cq_config *cfg, void *file /* FILE* */);

#endif
