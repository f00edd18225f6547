/*
 * main.c - cancelqctl: the ops tool for cancelq's queues, dead letters,
 * outcomes and workers (docs/design.md §10).
 *
 *     cancelqctl [-c FILE] [--json] COMMAND [ARGS]
 *
 * Global options come before the command; each command parses its own
 * (and accepts -c and --json too).  Exit status: 0 ok, 1 error, 2 usage;
 * `workers` 3 when no worker is alive or jobs wait that nothing will take
 * back; `check` 0/1/2/3 as monitoring plugins do.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"

static const struct command {
    const char *name;
    int (*run)(ctl *c, int argc, char **argv);
} commands[] = {
    {"stats", cmd_stats},     {"dlq", cmd_dlq},           {"enqueue", cmd_enqueue},
    {"results", cmd_results}, {"workers", cmd_workers},   {"check", cmd_check},
    {"top", cmd_top},         {"provider", cmd_provider},
};

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    ctl c = {.conf_path = CTL_DEFAULT_CONF, .prog = "cancelqctl"};
    int ch, rc;

    while ((ch = ctl_getopt(&c, argc, argv, "+c:hV", longopts)) != -1) {
        switch (ch) {
        case 'c':
            c.conf_path = optarg;
            break;
        case 'j':
            c.json = true;
            break;
        case 'h':
            return ctl_help(&c, "");
        case 'V':
            printf("cancelqctl %s\n", CQ_VERSION);
            return CTL_OK;
        default:
            return ctl_usage(&c, "");
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "%s: no command given\n", c.prog);
        return ctl_usage(&c, "");
    }
    argc -= optind;
    argv += optind;
    if (strcmp(argv[0], "help") == 0) {
        char name[64];

        snprintf(name, sizeof(name), "%s%s%s", argc > 1 ? argv[1] : "", argc > 2 ? " " : "",
                 argc > 2 ? argv[2] : "");
        return ctl_help(&c, name);
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(argv[0], commands[i].name) == 0) {
            optind = 0; /* glibc: restart getopt for the command's own options */
            rc = commands[i].run(&c, argc, argv);
            ctl_close(&c);
            fflush(stdout);
            return ferror(stdout) && rc == CTL_OK ? CTL_ERR : rc;
        }
    }
    fprintf(stderr, "%s: unknown command '%s'\n", c.prog, argv[0]);
    return ctl_usage(&c, "");
}
