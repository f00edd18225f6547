/*
 * config_load.h - private to config_load.c and config_check.c: the state of
 * one load and how an error is reported.
 *
 * config_load.c reads the file and applies each key = value through the
 * option table; config_check.c closes a section (rules that span several
 * keys) and the whole config (rules across sections).  Both report through
 * cq_conf_fail(), which keeps the first error only.
 */
#ifndef CANCELQ_CONFIG_LOAD_H
#define CANCELQ_CONFIG_LOAD_H

#include <stdbool.h>
#include <stddef.h>

#include "cancelq/config.h"
#include "config_value.h"

/* Section label "provider NAME" (and room for an unknown section's text). */
#define CQ_LABEL_MAX (CQ_CONF_NAME_MAX + 16)

typedef struct load_ctx {
    cq_config *cfg;
    cq_err *err;
    const char *name; /* file name for messages */
    const char *dir;  /* base for relative secret paths; NULL: as given */
    unsigned flags;   /* CQ_CONFIG_* */
    const char *text;
    size_t len, pos;
    int line; /* lines handed to inih so far */
    bool failed;
    cq_conf_sec sec; /* the open section */
    int sec_line;    /* its header line */
    char label[CQ_LABEL_MAX];
    cq_provider_conf *prov;      /* the open provider, CQ_SEC_PROVIDER */
    int seen[CQ_CONF_OPTS_MAX];  /* line each row of cq_conf_opts was set on in the open section */
    int redis_line, worker_line; /* header lines, 0 when absent */
    int conc_line[CQ_CONF_MAX_PROVIDERS]; /* line of an explicit provider concurrency */
} load_ctx;

/* Line on which the open section set key, 0 when it did not. */
int cq_conf_seen_line(const load_ctx *c, const char *key);

/* Record the first error as "NAME:LINE: [sec] key: reason" and stop the
 * load.  line 0 leaves out the line, sec/key NULL leave out those parts.
 * Returns -EINVAL. */
int cq_conf_fail(load_ctx *c, int line, const char *sec, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Close the open section, checking what needs the whole section
 * (config_check.c).  0 or -EINVAL (reported). */
int cq_conf_finish_section(load_ctx *c);

/* Defaults computed from the environment or other keys, and checks across
 * sections, once the whole file is read (config_check.c).  0 or -EINVAL
 * (reported). */
int cq_conf_finish_config(load_ctx *c);

#endif
