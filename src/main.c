/*
 * main.c - cancelqd: parse arguments, load the config, wire the worker to a
 * libuv loop, run it, tear down.  Everything else lives in the modules.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include <curl/curl.h>
#include <uv.h>

#include "cancelq/config.h"
#include "cancelq/log.h"
#include "cancelq/worker.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: cancelqd -c FILE [--check-config] [--verbose]\n"
               "       cancelqd --version | --help\n"
               "\n"
               "Carries out subscription cancellations queued in Redis (see cancelqd(8)).\n"
               "  -c, --config FILE   configuration file (INI, see conf/cancelq.conf)\n"
               "      --check-config  validate the configuration, print a summary, exit\n"
               "  -v, --verbose       also log debug events\n"
               "  -V, --version       print the version\n"
               "  -h, --help          this text\n"
               "Signals: SIGTERM/SIGINT stop gracefully, SIGHUP re-reads tokens.\n");
}

/* Say it at start when a provider's credentials go out in clear text. */
static void warn_insecure(const cq_config *cfg)
{
    char why[512];

    for (size_t i = 0; i < cfg->nproviders; i++)
        if (cq_config_insecure(&cfg->providers[i], why, sizeof(why)))
            cq_log(CQ_LOG_WARN, "insecure_http", "provider", cfg->providers[i].name, "detail", why,
                   NULL);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"check-config", no_argument, NULL, 'k'},
        {"verbose", no_argument, NULL, 'v'},      {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    const char *path = NULL;
    int check = 0, verbose = 0, c, rc = 1;
    cq_config *cfg = NULL;
    cq_worker *w = NULL;
    uv_loop_t loop;
    cq_err err;

    /* First, before any secret is read: no core dump (nor ptrace by
     * another process of our user) may expose tokens, client secrets or
     * the TLS client key.  Also keeps /proc/PID/mem and environ root's. */
    if (prctl(PR_SET_DUMPABLE, 0L, 0L, 0L, 0L) != 0) {
        perror("cancelqd: prctl(PR_SET_DUMPABLE)");
        return 1;
    }
    while ((c = getopt_long(argc, argv, "c:vVh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 'k':
            check = 1;
            break;
        case 'v':
            verbose = 1;
            break;
        case 'V':
            printf("cancelqd %s\n", CQ_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (path == NULL || optind != argc) {
        usage(stderr);
        return 2;
    }
    cq_log_init(stderr, verbose ? CQ_LOG_DEBUG : CQ_LOG_INFO, -1);
    cq_err_clear(&err);
    cfg = cq_config_load(path, &err);
    if (cfg == NULL) {
        fprintf(stderr, "cancelqd: %s\n", err.msg);
        return 1;
    }
    if (check) {
        cq_config_print_summary(cfg, stdout);
        printf("configuration OK\n");
        cq_config_free(cfg);
        return 0;
    }
    /* CURLOPT_NOSIGNAL is set on every transfer: a dead peer must not kill us */
    signal(SIGPIPE, SIG_IGN);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || uv_loop_init(&loop) != 0) {
        fprintf(stderr, "cancelqd: cannot initialise libcurl or libuv\n");
        goto out;
    }
    w = cq_worker_new(&loop, cfg, &err);
    if (w == NULL) {
        cq_log(CQ_LOG_ERR, "start_failed", "error", err.msg, NULL);
        fprintf(stderr, "cancelqd: %s\n", err.msg);
        goto out_loop;
    }
    cq_log(CQ_LOG_NOTICE, "cancelqd_start", "version", CQ_VERSION, "worker", cfg->worker.id, NULL);
    warn_insecure(cfg);
    uv_run(&loop, UV_RUN_DEFAULT);
    rc = cq_worker_exit_code(w);
    cq_worker_free(w);
out_loop:
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0)
        cq_log(CQ_LOG_WARN, "loop_not_empty", NULL);
    curl_global_cleanup();
out:
    cq_config_free(cfg);
    cq_log_shutdown();
    return rc;
}
