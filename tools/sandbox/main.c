/*
 * main.c - cancelq-sandbox: parse the command line, wire the modules, run
 * the loop, tear down on SIGINT/SIGTERM.
 *
 * Exit codes: 0 after a signal, 1 when the server cannot start, 2 on a
 * usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "sandbox.h"
#include "server.h"

#ifndef CQ_VERSION
#define CQ_VERSION "unknown"
#endif

#define SB_HOST_MAX 255
#define SB_DEFAULT_TOKEN_TTL_S 3600

typedef struct options {
    char host[SB_HOST_MAX + 1]; /* without brackets */
    int port;
    uint32_t latency_ms, token_ttl_s;
    const char *tokens[SB_PROVIDERS_MAX]; /* --token values, NULL = the default */
    bool quiet;
} options;

static void usage(FILE *f)
{
    char list[SB_PROV_LIST_MAX];

    sb_prov_list(list, ", ");
    fputs("usage: cancelq-sandbox --listen HOST:PORT [--latency MS] [--token-ttl SECONDS]\n"
          "                       [--token PROVIDER=VALUE]... [--quiet]\n"
          "       cancelq-sandbox --help | --version\n"
          "\n"
          "A fake of the cancellation APIs of the providers below for tests, benchmarks\n"
          "and integration work.  Every provider's base URL is http://HOST:PORT.\n"
          "\n"
          "Options:\n"
          "  --listen HOST:PORT     address to listen on (IPv6 as [::1]:PORT; port 0 = any)\n"
          "  --latency MS           delay added to every provider answer (default 0)\n"
          "  --token-ttl SECONDS    lifetime of minted OAuth access tokens (default 3600)\n"
          "  --token PROVIDER=VALUE replace a provider's static token (default\n"
          "                         sandbox-<provider>-token)\n"
          "  --quiet                no per-request log lines on stderr\n"
          "\n"
          "Providers, their endpoints and [kind] (for outages and by_kind counters).\n"
          "Token endpoints take client_id=" SB_CLIENT_ID ", client_secret=" SB_CLIENT_SECRET ".\n",
          f);
    sb_provs_usage(f);
    fprintf(f,
            "Every target exists and is active until cancelled or told otherwise.\n"
            "\n"
            "Control API (JSON, no auth); targets are <provider>:<id> as above\n"
            "(providers: %s);\n"
            "\"*\" and \"<provider>:*\" script all:\n",
            list);
    fputs(
        "  POST /_sandbox/script   {\"target\":T,\"responses\":[{\"status\":500},\n"
        "                           {\"status\":429,\"retry_after\":\"2\"},{\"hang_ms\":3000},\n"
        "                           {\"close\":true},{\"status\":200,\"body\":\"..\"}],\n"
        "                           \"replace\":false}\n"
        "                          one entry per validated cancellation, FIFO; optional keys\n"
        "                          content_type and apply (force the effect on or off)\n"
        "  POST /_sandbox/state    {\"target\":T,\"state\":\"active\"|\"cancelled\"|\"missing\"}\n"
        "                          (some providers take more names, above)\n"
        "  POST /_sandbox/outage   "
        "{\"provider\":P,\"kind\":K,\"status\":503,\"retry_after\":\"1\",\n"
        "                           \"for_ms\":5000}   P a provider or \"*\",\n"
        "                          K \"cancel\", \"status\", \"token\" or \"*\":\n"
        "                          every request of kind K to P is answered status\n"
        "                          (+ Retry-After) with P's error body, before any auth,\n"
        "                          header or body check and with no effect: no target is\n"
        "                          touched, no script consumed; retry_after and for_ms are\n"
        "                          optional (no for_ms: until cleared)\n"
        "  POST /_sandbox/outage   {\"provider\":P,\"kind\":K,\"clear\":true}  end outages\n"
        "  GET  /_sandbox/outage   the live outages\n"
        "  POST /_sandbox/latency  {\"ms\":50}\n"
        "  POST /_sandbox/revoke   {\"provider\":P}   revoke P's minted tokens\n"
        "  POST /_sandbox/token    {\"provider\":P,\"token\":S}  replace a static token\n"
        "  POST /_sandbox/reset    forget scripts, states, outages, stats; restore --latency\n"
        "  GET  /_sandbox/stats    counters, per-target cancel/check counts and times;\n"
        "                          by_kind: per provider and kind, requests and outage\n"
        "                          (how many of them an outage answered)\n"
        "  GET  /_sandbox/target?name=T   one target's entry\n",
        f);
}

static void die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die_usage(const char *fmt, ...)
{
    va_list ap;

    fputs("cancelq-sandbox: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n(see cancelq-sandbox --help)\n", stderr);
    exit(2);
}

static uint32_t parse_u32(const char *opt, const char *s, int64_t max)
{
    int64_t v;

    if (sb_parse_int(s, strlen(s), 0, max, &v) != 0)
        die_usage("%s wants an integer 0..%lld, got \"%s\"", opt, (long long)max, s);
    return (uint32_t)v;
}

/* HOST:PORT or [V6]:PORT. */
static void parse_listen(options *o, const char *s)
{
    const char *colon = strrchr(s, ':'), *h = s;
    size_t hlen;
    int64_t port;

    if (colon == NULL)
        die_usage("--listen wants HOST:PORT, got \"%s\"", s);
    hlen = (size_t)(colon - s);
    if (hlen >= 2 && s[0] == '[' && s[hlen - 1] == ']') {
        h = s + 1;
        hlen -= 2;
    }
    if (hlen == 0 || hlen > SB_HOST_MAX)
        die_usage("--listen: bad host in \"%s\"", s);
    if (sb_parse_int(colon + 1, strlen(colon + 1), 0, 65535, &port) != 0)
        die_usage("--listen: bad port in \"%s\"", s);
    memcpy(o->host, h, hlen);
    o->host[hlen] = '\0';
    o->port = (int)port;
}

static void parse_token(options *o, const char *s)
{
    const char *eq = strchr(s, '=');
    char list[SB_PROV_LIST_MAX];
    sb_prov_id p;

    if (eq == NULL)
        die_usage("--token wants PROVIDER=VALUE");
    if (sb_prov_find(s, (size_t)(eq - s), &p) != 0) {
        sb_prov_list(list, " or ");
        die_usage("--token: provider must be %s", list);
    }
    if (!sb_is_token(eq + 1, SB_STATIC_TOKEN_MAX))
        die_usage("--token: value must be 1..%d printable characters without spaces",
                  SB_STATIC_TOKEN_MAX);
    o->tokens[p] = eq + 1;
}

static void parse_args(options *o, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, 'l'},    {"latency", required_argument, NULL, 'L'},
        {"token-ttl", required_argument, NULL, 't'}, {"token", required_argument, NULL, 'T'},
        {"quiet", no_argument, NULL, 'q'},           {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},         {NULL, 0, NULL, 0}};
    bool have_listen = false;
    int ch;

    memset(o, 0, sizeof(*o));
    o->token_ttl_s = SB_DEFAULT_TOKEN_TTL_S;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'l':
            parse_listen(o, optarg);
            have_listen = true;
            break;
        case 'L':
            o->latency_ms = parse_u32("--latency", optarg, SB_DELAY_MAX_MS);
            break;
        case 't':
            o->token_ttl_s = parse_u32("--token-ttl", optarg, SB_TOKEN_TTL_MAX_S);
            break;
        case 'T':
            parse_token(o, optarg);
            break;
        case 'q':
            o->quiet = true;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        case 'V':
            printf("cancelq-sandbox %s\n", CQ_VERSION);
            exit(0);
        default:
            die_usage("unknown option");
        }
    }
    if (optind < argc)
        die_usage("unexpected argument \"%s\"", argv[optind]);
    if (!have_listen)
        die_usage("--listen HOST:PORT is required");
}

typedef struct app {
    uv_loop_t loop;
    uv_signal_t sigint, sigterm;
    sb_server *server;
} app;

static void on_signal(uv_signal_t *sig, int signum)
{
    app *a = sig->data;

    (void)signum;
    sb_server_stop(a->server);
    a->server = NULL;
    uv_close((uv_handle_t *)&a->sigint, NULL);
    uv_close((uv_handle_t *)&a->sigterm, NULL);
}

/* Resolve o's address into ss.  Returns 0 or a libuv error. */
static int address(const options *o, struct sockaddr_storage *ss)
{
    if (strchr(o->host, ':') != NULL)
        return uv_ip6_addr(o->host, o->port, (struct sockaddr_in6 *)ss);
    if (strcmp(o->host, "localhost") == 0)
        return uv_ip4_addr("127.0.0.1", o->port, (struct sockaddr_in *)ss);
    return uv_ip4_addr(o->host, o->port, (struct sockaddr_in *)ss);
}

/* http://HOST:PORT for Location headers; a wildcard address is replaced by
 * loopback, which is where a client on this machine reaches us. */
static void base_url(sb_ctx *ctx, const options *o, int port)
{
    const char *h = o->host;
    bool v6 = strchr(h, ':') != NULL;

    if (strcmp(h, "0.0.0.0") == 0)
        h = "127.0.0.1";
    else if (strcmp(h, "::") == 0)
        h = "::1";
    snprintf(ctx->base_url, sizeof(ctx->base_url), "http://%s%s%s:%d", v6 ? "[" : "", h,
             v6 ? "]" : "", port);
}

int main(int argc, char **argv)
{
    options o;
    sb_ctx ctx = {0};
    app a = {0};
    struct sockaddr_storage ss;
    sb_server_hooks hooks = {sb_route, sb_route_refused, &ctx};
    size_t i;
    sb_why why;
    int rc, exit_code = 1;

    if (sb_provs_check(&why) != 0) {
        fprintf(stderr, "cancelq-sandbox: bad provider table: %s\n", why.msg);
        return 1;
    }
    parse_args(&o, argc, argv);
    signal(SIGPIPE, SIG_IGN);
    if (uv_loop_init(&a.loop) != 0) {
        fprintf(stderr, "cancelq-sandbox: cannot create the event loop\n");
        return 1;
    }
    ctx.loop = &a.loop;
    ctx.store = sb_store_new();
    ctx.tokens = sb_tokens_new();
    ctx.latency_ms = ctx.latency_initial_ms = o.latency_ms;
    ctx.token_ttl_s = o.token_ttl_s;
    ctx.quiet = o.quiet;
    for (i = 0; i < sb_prov_count(); i++) {
        if (o.tokens[i] != NULL)
            snprintf(ctx.static_token[i], sizeof(ctx.static_token[i]), "%s", o.tokens[i]);
        else
            snprintf(ctx.static_token[i], sizeof(ctx.static_token[i]), "sandbox-%s-token",
                     sb_prov_name((sb_prov_id)i));
    }
    if (ctx.store == NULL || ctx.tokens == NULL) {
        fprintf(stderr, "cancelq-sandbox: out of memory\n");
        goto out;
    }
    rc = address(&o, &ss);
    if (rc == 0)
        rc = sb_server_start(&a.loop, (struct sockaddr *)&ss, &hooks, &a.server);
    if (rc != 0) {
        fprintf(stderr, "cancelq-sandbox: cannot listen on %s:%d: %s\n", o.host, o.port,
                uv_strerror(rc));
        goto out;
    }
    base_url(&ctx, &o, sb_server_port(a.server));
    uv_signal_init(&a.loop, &a.sigint);
    uv_signal_init(&a.loop, &a.sigterm);
    a.sigint.data = a.sigterm.data = &a;
    uv_signal_start(&a.sigint, on_signal, SIGINT);
    uv_signal_start(&a.sigterm, on_signal, SIGTERM);
    printf("cancelq-sandbox listening on %s%s%s:%d\n", strchr(o.host, ':') ? "[" : "", o.host,
           strchr(o.host, ':') ? "]" : "", sb_server_port(a.server));
    fflush(stdout);
    uv_run(&a.loop, UV_RUN_DEFAULT);
    exit_code = 0;
out:
    uv_run(&a.loop, UV_RUN_DEFAULT); /* let close callbacks run */
    if (uv_loop_close(&a.loop) != 0)
        fprintf(stderr, "cancelq-sandbox: handles left open at exit\n");
    sb_tokens_free(ctx.tokens);
    sb_store_free(ctx.store);
    return exit_code;
}
