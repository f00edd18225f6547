/*
 * form.h - HTML form fields, from application/x-www-form-urlencoded text
 * (request bodies and URL query strings) or from multipart/form-data
 * (multipart.h).  Decoding is curl_easy_unescape after '+' -> ' '.
 *
 * Ownership: sb_fields owns its names and values; release with
 * sb_fields_free (safe on a zeroed or already freed struct).
 */
#ifndef SB_FORM_H
#define SB_FORM_H

#include <stddef.h>

#include "util.h"

/* Fields per form at most; more is refused (the sandbox's forms have <= 6). */
#define SB_FORM_FIELDS_MAX 16
/* Longest field name. */
#define SB_FORM_NAME_MAX 64

typedef struct sb_field {
    char *name;
    char *value; /* NUL-terminated; a value containing NUL is refused */
    size_t value_len;
} sb_field;

typedef struct sb_fields {
    sb_field f[SB_FORM_FIELDS_MAX];
    size_t n;
} sb_fields;

/* Parse s[0..len) as name=value pairs joined by '&'.  A name given twice,
 * an empty name, more than SB_FORM_FIELDS_MAX fields or a value that decodes
 * to a NUL are refused.  Returns 0, or -EINVAL with a reason, or -ENOMEM. */
int sb_form_parse(const char *s, size_t len, sb_fields *out, sb_why *why);

/* Append one field (copies).  Refuses duplicates and overflow like
 * sb_form_parse.  Returns 0, -EINVAL with a reason, or -ENOMEM. */
int sb_fields_add(sb_fields *fs, const char *name, size_t name_len, const char *value,
                  size_t value_len, sb_why *why);

/* The value of field name, or NULL. */
const char *sb_fields_get(const sb_fields *fs, const char *name);

/* The first field whose name is not in the NULL-terminated list allowed,
 * or NULL when all are allowed. */
const char *sb_fields_unknown(const sb_fields *fs, const char *const *allowed);

/* Free every field and reset to empty. */
void sb_fields_free(sb_fields *fs);

#endif
