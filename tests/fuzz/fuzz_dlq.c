/*
 * fuzz_dlq.c - libFuzzer target for cancelqctl's dead-letter entry parser
 * (make fuzz): dlq_entry_parse() on the input as one entry of {P}:dead (a
 * heap copy of exactly its size, as hiredis hands it over), then what
 * cancelqctl does with an entry: its --json form (which must print as JSON
 * that parses back), its one-line label and the filters.
 *
 * Linked with cancelqctl's objects except main.c.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "dlq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size > 0 ? size : 1), *printed, what[256];
    dlq_filter f;
    dlq_entry e;
    cJSON *j, *back;

    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    dlq_entry_parse(&e, text, size, 3);
    if (strlen(e.id) != 16 || strspn(e.id, "0123456789abcdef") != 16)
        abort(); /* every entry, even garbage, has an id */
    if (e.valid && (e.job == NULL || e.status == NULL))
        abort();
    j = dlq_entry_json(&e, 1795341660500);
    if (j != NULL) {
        printed = cJSON_PrintUnformatted(j);
        if (printed != NULL) {
            back = cJSON_Parse(printed);
            if (back == NULL)
                abort();
            cJSON_Delete(back);
            free(printed);
        }
        cJSON_Delete(j);
    }
    dlq_entry_what(&e, what, sizeof(what));
    memset(&f, 0, sizeof(f));
    f.provider = "*";
    f.status = "fail*";
    f.error = "tls_*";
    f.has_since = true;
    f.since_ms = 86400000;
    (void)dlq_match(&f, &e, 1795341660500);
    f.malformed = true;
    if (dlq_match(&f, &e, 1795341660500) && e.valid)
        abort(); /* --malformed selects only what is not a dead letter */
    dlq_entry_clear(&e);
    free(text);
    return 0;
}
