/*
 * fuzz_config.c - libFuzzer target for the config parser (make fuzz):
 * cq_config_load_string() on the input as the text of a config file.
 *
 * A config that loads is printed (the --check-config summary) and every
 * provider's clear-text warning asked for; one that does not must say why
 * in the "FILE:LINE: [section] key: reason" form (it starts with the file
 * name).  The input is cut at its first NUL, as a C string would be.
 * Secret and PEM file names in the input are resolved and read like any
 * (relative ones against the current directory): run it where that is
 * harmless.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cancelq/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    char warn[512];
    cq_config *cfg;
    cq_err err;
    FILE *out;

    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    cq_err_clear(&err);
    cfg = cq_config_load_string(text, "fuzz.conf", &err);
    if (cfg == NULL) {
        if (strncmp(err.msg, "fuzz.conf", 9) != 0 || err.code[0] == '\0')
            abort(); /* every refusal names the file and has a code */
    } else {
        out = fopen("/dev/null", "w");
        if (out != NULL) {
            cq_config_print_summary(cfg, out);
            fclose(out);
        }
        for (size_t i = 0; i < cfg->nproviders; i++) {
            if (cfg->providers[i].base_url == NULL || cfg->providers[i].cred == CQ_CRED_NONE)
                abort(); /* a loaded provider can be called */
            (void)cq_config_insecure(&cfg->providers[i], warn, sizeof(warn));
        }
        cq_config_free(cfg);
    }
    free(text);
    return 0;
}
