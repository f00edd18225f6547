/*
 * form.c - see form.h.
 */
#include "form.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

/* Decode one urlencoded component into a malloc'd string (*out, *out_len).
 * Returns 0, -EINVAL (embedded NUL) or -ENOMEM. */
static int decode(const char *s, size_t len, char **out, size_t *out_len)
{
    char *plus = sb_strndup(s, len), *dec;
    int dlen = 0;
    size_t i;

    if (plus == NULL || len > INT_MAX) {
        free(plus);
        return -ENOMEM;
    }
    for (i = 0; i < len; i++) {
        if (plus[i] == '+')
            plus[i] = ' ';
    }
    /* the handle argument is ignored by libcurl >= 7.82 */
    dec = curl_easy_unescape(NULL, plus, (int)len, &dlen);
    free(plus);
    if (dec == NULL)
        return -ENOMEM;
    if (strlen(dec) != (size_t)dlen) {
        curl_free(dec);
        return -EINVAL;
    }
    *out = sb_strndup(dec, (size_t)dlen);
    curl_free(dec);
    if (*out == NULL)
        return -ENOMEM;
    *out_len = (size_t)dlen;
    return 0;
}

int sb_fields_add(sb_fields *fs, const char *name, size_t name_len, const char *value,
                  size_t value_len, sb_why *why)
{
    sb_field *f;

    if (name_len == 0 || name_len > SB_FORM_NAME_MAX)
        return sb_why_set(why, "form field name must be 1..%d bytes", SB_FORM_NAME_MAX);
    if (memchr(value, '\0', value_len) != NULL || memchr(name, '\0', name_len) != NULL)
        return sb_why_set(why, "form field contains a NUL byte");
    if (fs->n >= SB_FORM_FIELDS_MAX)
        return sb_why_set(why, "more than %d form fields", SB_FORM_FIELDS_MAX);
    f = &fs->f[fs->n];
    f->name = sb_strndup(name, name_len);
    f->value = sb_strndup(value, value_len);
    if (f->name == NULL || f->value == NULL) {
        free(f->name);
        free(f->value);
        f->name = f->value = NULL;
        return -ENOMEM;
    }
    if (sb_fields_get(fs, f->name) != NULL) {
        sb_why_set(why, "form field \"%.*s\" given twice", (int)name_len, name);
        free(f->name);
        free(f->value);
        f->name = f->value = NULL;
        return -EINVAL;
    }
    f->value_len = value_len;
    fs->n++;
    return 0;
}

/* Decode and add one "name=value" (or "name") pair. */
static int add_pair(sb_fields *fs, const char *s, size_t len, sb_why *why)
{
    const char *eq = memchr(s, '=', len);
    size_t nlen = eq != NULL ? (size_t)(eq - s) : len;
    char *name = NULL, *value = NULL;
    size_t name_len = 0, value_len = 0;
    int rc;

    rc = decode(s, nlen, &name, &name_len);
    if (rc != 0)
        goto out;
    if (eq != NULL)
        rc = decode(eq + 1, len - nlen - 1, &value, &value_len);
    else
        value = sb_strndup("", 0);
    if (rc != 0)
        goto out;
    if (value == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    rc = sb_fields_add(fs, name, name_len, value, value_len, why);
out:
    if (rc == -EINVAL && why != NULL && why->msg[0] == '\0')
        sb_why_set(why, "form field contains an encoded NUL byte");
    free(name);
    free(value);
    return rc;
}

int sb_form_parse(const char *s, size_t len, sb_fields *out, sb_why *why)
{
    size_t start = 0, i;
    int rc;

    memset(out, 0, sizeof(*out));
    if (why != NULL)
        why->msg[0] = '\0';
    for (i = 0; i <= len; i++) {
        if (i < len && s[i] != '&')
            continue;
        if (i > start) {
            rc = add_pair(out, s + start, i - start, why);
            if (rc != 0) {
                sb_fields_free(out);
                return rc;
            }
        }
        start = i + 1;
    }
    return 0;
}

const char *sb_fields_get(const sb_fields *fs, const char *name)
{
    size_t i;

    for (i = 0; i < fs->n; i++) {
        if (strcmp(fs->f[i].name, name) == 0)
            return fs->f[i].value;
    }
    return NULL;
}

const char *sb_fields_unknown(const sb_fields *fs, const char *const *allowed)
{
    size_t i, j;

    for (i = 0; i < fs->n; i++) {
        for (j = 0; allowed[j] != NULL; j++) {
            if (strcmp(fs->f[i].name, allowed[j]) == 0)
                break;
        }
        if (allowed[j] == NULL)
            return fs->f[i].name;
    }
    return NULL;
}

void sb_fields_free(sb_fields *fs)
{
    size_t i;

    for (i = 0; i < fs->n; i++) {
        free(fs->f[i].name);
        free(fs->f[i].value);
    }
    memset(fs, 0, sizeof(*fs));
}
