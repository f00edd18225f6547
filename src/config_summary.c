/*
 * config_summary.c - the summary --check-config prints (config.h): every
 * key of the option table with its effective value, defaults included, and
 * what was derived (target, key names, heartbeat, credential kind).  Secret
 * files are named, never read.
 */
#include "cancelq/config.h"

#include <stdio.h>

#include "config_value.h"

static void print_section(FILE *f, cq_conf_sec sec, const void *base)
{
    char buf[512];

    for (size_t i = 0; i < cq_conf_nopts; i++)
        if (cq_conf_opts[i].sec == sec &&
            cq_conf_format_value(&cq_conf_opts[i], base, buf, sizeof(buf)))
            fprintf(f, "%s = %s\n", cq_conf_opts[i].key, buf);
}

static const char *cred_name(cq_cred_kind k)
{
    switch (k) {
    case CQ_CRED_TOKEN_FILE:
        return "static token from token_file";
    case CQ_CRED_CLIENT_CREDENTIALS:
        return "OAuth2 client credentials (client_secret_file)";
    case CQ_CRED_PASSWORD:
        return "OAuth2 password grant (client_secret_file, password_file)";
    default:
        return "none";
    }
}

void cq_config_print_summary(const cq_config *cfg, void *file)
{
    FILE *f = file;
    char hb[32];

    if (cfg == NULL || f == NULL)
        return;
    fprintf(f, "# effective configuration from %s (secret files are named, never shown)\n",
            cfg->path);
    fprintf(f, "[redis]\n");
    if (cfg->redis.unix_socket != NULL)
        fprintf(f, "# target: unix:%s db %d\n", cfg->redis.unix_socket, cfg->redis.db);
    else
        fprintf(f, "# target: %s:%d db %d\n", cfg->redis.host, cfg->redis.port, cfg->redis.db);
    fprintf(f, "# keys: {%s}:jobs, {%s}:results, ...\n", cfg->redis.prefix, cfg->redis.prefix);
    print_section(f, CQ_SEC_REDIS, &cfg->redis);
    cq_conf_fmt_duration(hb, sizeof(hb), cfg->worker.heartbeat_ms);
    fprintf(f, "\n[worker]\n# heartbeat every %s (lease / 3)\n", hb);
    print_section(f, CQ_SEC_WORKER, &cfg->worker);
    for (size_t i = 0; i < cfg->nproviders; i++) {
        const cq_provider_conf *pc = &cfg->providers[i];

        char warn[512];

        fprintf(f, "\n[provider %s]\n# credentials: %s\n", pc->name, cred_name(pc->cred));
        if (pc->client_cert_file != NULL)
            fprintf(f, "# mutual TLS: client certificate and key checked (they match)\n");
        if (cq_config_insecure(pc, warn, sizeof(warn)))
            fprintf(f, "# WARNING: %s\n", warn);
        print_section(f, CQ_SEC_PROVIDER, pc);
    }
}
