/*
 * job.c - parse and validate a cancellation job (docs/design.md §2), derive
 * its idempotency key (section 4) and build dead-letter entries (section 6).
 *
 * The text comes from Redis, so it is not NUL-terminated and nothing in it is
 * trusted: it is pre-scanned (NUL bytes, UTF-8, nesting depth) before cJSON
 * sees it (and whatever cJSON would let through that is not strict JSON is
 * refused there), then parsed from a NUL-terminated copy so that no parser
 * can read past the caller's buffer.  Pure: no I/O, no globals.
 */
#include "cancelq/job.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cancelq/hash.h"
#include "cancelq/json.h"
#include "cancelq/rfc3339.h"
#include "json_util.h"

#define CQ_NAME_MAX 64          /* provider and action names */
#define CQ_DEADLINE_TEXT_MAX 64 /* longer is not a timestamp */
#define CQ_KEY_SHOW_MAX 64      /* how much of an unknown key a message shows */
#define CQ_PATH_MAX 128         /* field paths in messages ("params.a[2].b") */
#define CQ_DUP_SCAN_SMALL 8     /* objects up to this size: pairwise compare */

enum field {
    F_ID,
    F_IDEM,
    F_PROVIDER,
    F_ACTION,
    F_PARAMS,
    F_MAX_ATTEMPTS,
    F_DEADLINE,
    F_META,
    F_ENQUEUED_AT,
    F_COUNT
};

static const char *const field_names[F_COUNT] = {
    "id",           "idempotency_key", "provider", "action",      "params",
    "max_attempts", "deadline",        "meta",     "enqueued_at",
};

/* --- parsing the text ---------------------------------------------------- */

static bool is_json_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Pre-scan, then parse buf[0..len) as one JSON value followed by nothing but
 * whitespace.  *out is the tree (any type) on success. */
static int parse_text(const char *buf, size_t len, cJSON **out, cq_err *err)
{
    const char *end = NULL;
    cJSON *root = NULL;
    char *copy;
    int rc;

    *out = NULL;
    if (buf == NULL || len == 0)
        return cq_err_set(err, -EINVAL, "bad_json", "empty job");
    rc = cq_json_prescan(buf, len, CQ_JOB_MAX_DEPTH, err);
    if (rc < 0)
        return rc;
    copy = malloc(len + 1);
    if (copy == NULL)
        return cq_err_set(err, -ENOMEM, "no_memory", "out of memory parsing the job");
    memcpy(copy, buf, len);
    copy[len] = '\0';
    root = cJSON_ParseWithLengthOpts(copy, len, &end, 0);
    if (root == NULL) {
        rc = cq_err_set(err, -EINVAL, "bad_json", "not valid JSON (error near byte %zu)",
                        end != NULL ? (size_t)(end - copy) : (size_t)0);
        goto free_copy;
    }
    for (; end < copy + len; end++) {
        if (!is_json_space(*end)) {
            rc = cq_err_set(err, -EINVAL, "bad_json",
                            "unexpected data after the JSON value at byte %zu",
                            (size_t)(end - copy));
            cJSON_Delete(root);
            goto free_copy;
        }
    }
    *out = root;
    rc = 0;
free_copy:
    free(copy);
    return rc;
}

/* --- structure: keys and depth ------------------------------------------- */

static int field_index(const char *key)
{
    for (int i = 0; i < F_COUNT; i++)
        if (strcmp(key, field_names[i]) == 0)
            return i;
    return -1;
}

/* A key as a message may show it: printable ASCII, shortened. */
static void key_for_message(const char *key, char *out, size_t outsz)
{
    size_t i;

    for (i = 0; key[i] != '\0' && i + 1 < outsz; i++) {
        unsigned char c = (unsigned char)key[i];
        out[i] = (char)(c >= 0x20 && c <= 0x7e ? c : '?');
    }
    out[i] = '\0';
    if (key[i] != '\0' && outsz > 4)
        memcpy(out + outsz - 4, "...", 4);
}

static int unknown_field(const char *key, cq_err *err)
{
    char shown[CQ_KEY_SHOW_MAX + 1];

    key_for_message(key, shown, sizeof(shown));
    for (int i = 0; i < F_COUNT; i++)
        if (strcasecmp(key, field_names[i]) == 0)
            return cq_err_set(err, -EINVAL, "unknown_field",
                              "%s: unknown field (keys are case-sensitive: \"%s\"?)", shown,
                              field_names[i]);
    return cq_err_set(err, -EINVAL, "unknown_field", "%s: unknown field", shown);
}

/* Every top-level key is a known field, given once. */
static int check_top_keys(const cJSON *root, cq_err *err)
{
    unsigned seen = 0;

    for (const cJSON *c = root->child; c != NULL; c = c->next) {
        int i = field_index(c->string);

        if (i < 0)
            return unknown_field(c->string, err);
        if (seen & (1u << i))
            return cq_err_set(err, -EINVAL, "duplicate_field", "%s: duplicate field",
                              field_names[i]);
        seen |= 1u << i;
    }
    return 0;
}

static int dup_key_error(const char *path, const char *key, cq_err *err)
{
    char shown[CQ_KEY_SHOW_MAX + 1];

    key_for_message(key, shown, sizeof(shown));
    return cq_err_set(err, -EINVAL, "duplicate_field", "%s%s%s: duplicate field", path,
                      path[0] != '\0' ? "." : "", shown);
}

static int cmp_key_ptr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A nested object with a key twice is ambiguous (which one does the provider
 * get?), so it is refused like a duplicate top-level field. */
static int check_dup_keys(const cJSON *obj, const char *path, cq_err *err)
{
    const char **keys;
    size_t n = 0, i = 0;
    const cJSON *a, *b;
    int rc = 0;

    for (a = obj->child; a != NULL; a = a->next)
        n++;
    if (n <= CQ_DUP_SCAN_SMALL) {
        for (a = obj->child; a != NULL; a = a->next)
            for (b = a->next; b != NULL; b = b->next)
                if (strcmp(a->string, b->string) == 0)
                    return dup_key_error(path, a->string, err);
        return 0;
    }
    keys = calloc(n, sizeof(*keys));
    if (keys == NULL)
        return cq_err_set(err, -ENOMEM, "no_memory", "out of memory checking %s", path);
    for (a = obj->child; a != NULL; a = a->next)
        keys[i++] = a->string;
    qsort(keys, n, sizeof(*keys), cmp_key_ptr);
    for (i = 1; i < n && rc == 0; i++)
        if (strcmp(keys[i - 1], keys[i]) == 0)
            rc = dup_key_error(path, keys[i], err);
    free(keys);
    return rc;
}

/* Append s to dst[0..*len) within CQ_PATH_MAX, cut as snprintf cuts. */
static void path_put(char *dst, size_t *len, const char *s)
{
    size_t n = strlen(s);

    if (n > CQ_PATH_MAX - 1 - *len)
        n = CQ_PATH_MAX - 1 - *len;
    memcpy(dst + *len, s, n);
    *len += n;
    dst[*len] = '\0';
}

/* Extend path with ".key" or "[index]" (shortened when it does not fit).
 * Every job has nested objects, so keys are appended without snprintf; the
 * text is the same, cut at CQ_PATH_MAX - 1 bytes like snprintf would. */
static void child_path(char *dst, const char *path, const cJSON *parent, const cJSON *child,
                       size_t index)
{
    size_t len = 0;

    if (cJSON_IsArray(parent)) {
        snprintf(dst, CQ_PATH_MAX, "%s[%zu]", path, index);
        return;
    }
    dst[0] = '\0';
    path_put(dst, &len, path);
    if (path[0] != '\0')
        path_put(dst, &len, ".");
    path_put(dst, &len, child->string);
}

/* Depth (the top level is 1) and duplicate keys below the top level: the
 * top-level keys were checked by check_top_keys (each a known field, given
 * once), which runs first, so comparing them again would find nothing.
 * The pre-scan already bounds the depth; this checks the tree itself. */
static int check_tree(const cJSON *item, int depth, const char *path, cq_err *err)
{
    char sub[CQ_PATH_MAX];
    size_t index = 0;
    int rc;

    if (depth > CQ_JOB_MAX_DEPTH)
        return cq_err_set(err, -EINVAL, "too_deep", "%s: nesting deeper than %d levels", path,
                          CQ_JOB_MAX_DEPTH);
    if (depth > 1 && cJSON_IsObject(item)) {
        rc = check_dup_keys(item, path, err);
        if (rc < 0)
            return rc;
    }
    for (const cJSON *c = item->child; c != NULL; c = c->next, index++) {
        if (!cJSON_IsObject(c) && !cJSON_IsArray(c))
            continue;
        child_path(sub, path, item, c, index);
        rc = check_tree(c, depth + 1, sub, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* --- fields -------------------------------------------------------------- */

/* A required string: a missing one is a validation error like any other. */
static int required_string(const cJSON *root, const char *key, size_t maxlen, const char **out,
                           cq_err *err)
{
    int rc = cq_json_get_string(root, key, 1, maxlen, out, NULL, err);

    return rc == -ENOENT ? -EINVAL : rc;
}

static int check_id(const cJSON *root, const char **out, cq_err *err)
{
    const char *s;
    int rc = required_string(root, "id", CQ_JOB_ID_MAX, &s, err);

    if (rc < 0)
        return rc;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p > 0x7e)
            return cq_err_set(err, -EINVAL, "bad_value",
                              "id: must be printable ASCII (0x20..0x7e)");
    *out = s;
    return 0;
}

static bool is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
}

/* provider and action: 1..64 of [A-Za-z0-9_.-]. */
static int check_name(const cJSON *root, const char *key, const char **out, cq_err *err)
{
    const char *s;
    int rc = required_string(root, key, CQ_NAME_MAX, &s, err);

    if (rc < 0)
        return rc;
    for (const char *p = s; *p; p++)
        if (!is_name_char(*p))
            return cq_err_set(err, -EINVAL, "bad_value", "%s: must match [A-Za-z0-9_.-]+", key);
    *out = s;
    return 0;
}

/* Optional fields are looked up first: when absent, the strict read would
 * format a "missing" message only for it to be thrown away. */
static bool has_member(const cJSON *root, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(root, key) != NULL;
}

static int check_idem_key(const cJSON *root, cq_job *job, cq_err *err)
{
    const char *s;
    int rc;

    if (!has_member(root, "idempotency_key"))
        return 0;
    rc = cq_json_get_string(root, "idempotency_key", 1, CQ_IDEM_KEY_MAX, &s, NULL, err);
    if (rc < 0)
        return rc;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return cq_err_set(err, -EINVAL, "bad_value",
                              "idempotency_key: must not contain control characters");
    job->idem_key = strdup(s);
    if (job->idem_key == NULL)
        return cq_err_set(err, -ENOMEM, "no_memory", "out of memory copying idempotency_key");
    job->idem_key_given = true;
    return 0;
}

/* An object member: required, or optional (absent leaves *out NULL). */
static int check_object(const cJSON *root, const char *key, bool required, const cJSON **out,
                        cq_err *err)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, key);

    if (item == NULL && !required)
        return 0;
    if (item == NULL)
        return cq_err_set(err, -EINVAL, "missing_field", "%s: missing", key);
    if (!cJSON_IsObject(item))
        return cq_err_set(err, -EINVAL, "bad_type", "%s: must be an object, got %s", key,
                          cq_json_type_name(item));
    *out = item;
    return 0;
}

static int check_max_attempts(const cJSON *root, cq_job *job, cq_err *err)
{
    int64_t v;
    int rc;

    if (!has_member(root, "max_attempts"))
        return 0;
    rc = cq_json_get_int(root, "max_attempts", 1, CQ_MAX_ATTEMPTS_LIMIT, &v, NULL, err);
    if (rc < 0)
        return rc;
    job->max_attempts = (int)v;
    return 0;
}

/* An optional RFC 3339 time (deadline, enqueued_at) into *ms (0: absent). */
static int check_time(const cJSON *root, const char *key, int64_t *out, cq_err *err)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, key);
    int64_t ms;

    if (item == NULL)
        return 0;
    if (!cJSON_IsString(item) || item->valuestring == NULL)
        return cq_err_set(err, -EINVAL, "bad_type", "%s: must be a string, got %s", key,
                          cq_json_type_name(item));
    if (strlen(item->valuestring) > CQ_DEADLINE_TEXT_MAX ||
        cq_parse_rfc3339(item->valuestring, &ms) < 0)
        return cq_err_set(err, -EINVAL, "bad_value",
                          "%s: must be an RFC 3339 timestamp like 2026-11-30T00:00:00Z", key);
    if (ms <= 0) /* 0 means "none" in cq_job */
        return cq_err_set(err, -EINVAL, "bad_value", "%s: must be after 1970-01-01T00:00:00Z", key);
    *out = ms;
    return 0;
}

static int check_fields(cq_job *job, cq_err *err)
{
    const cJSON *root = job->root;
    const char *id = NULL;
    int rc;

    if ((rc = check_id(root, &id, err)) < 0 ||
        (rc = check_name(root, "provider", &job->provider, err)) < 0 ||
        (rc = check_name(root, "action", &job->action, err)) < 0 ||
        (rc = check_object(root, "params", true, &job->params, err)) < 0 ||
        (rc = check_idem_key(root, job, err)) < 0 ||
        (rc = check_max_attempts(root, job, err)) < 0 ||
        (rc = check_time(root, "deadline", &job->deadline_ms, err)) < 0 ||
        (rc = check_time(root, "enqueued_at", &job->enqueued_ms, err)) < 0 ||
        (rc = check_object(root, "meta", false, &job->meta, err)) < 0)
        return rc;
    return 0;
}

int cq_job_parse(const char *buf, size_t len, cq_job *job, cq_err *err)
{
    int rc;

    memset(job, 0, sizeof(*job));
    cq_err_clear(err);
    if (len > CQ_JOB_MAX_BYTES)
        return cq_err_set(err, -EMSGSIZE, "too_large", "job is %zu bytes, the limit is %zu", len,
                          CQ_JOB_MAX_BYTES);
    rc = parse_text(buf, len, &job->root, err);
    if (rc < 0)
        return rc;
    if (!cJSON_IsObject(job->root))
        return cq_err_set(err, -EINVAL, "bad_json", "a job must be a JSON object, got %s",
                          cq_json_type_name(job->root));
    /* the id, provider and action first, so that even an invalid outcome
     * names them for billing to match */
    if (check_id(job->root, &job->id, NULL) < 0)
        job->id = NULL;
    if (check_name(job->root, "provider", &job->provider, NULL) < 0)
        job->provider = NULL;
    if (check_name(job->root, "action", &job->action, NULL) < 0)
        job->action = NULL;
    rc = check_top_keys(job->root, err);
    if (rc == 0)
        rc = check_tree(job->root, 1, "", err);
    if (rc == 0)
        rc = check_fields(job, err);
    return rc;
}

void cq_job_clear(cq_job *job)
{
    if (job == NULL)
        return;
    cJSON_Delete(job->root);
    free(job->idem_key);
    memset(job, 0, sizeof(*job));
}

/* "a:b:c" on the heap, or NULL (memcpy: this runs for every job). */
static char *join3(const char *a, const char *b, const char *c)
{
    size_t na = strlen(a), nb = strlen(b), nc = strlen(c);
    char *out = malloc(na + nb + nc + 3);

    if (out == NULL)
        return NULL;
    memcpy(out, a, na);
    out[na] = ':';
    memcpy(out + na + 1, b, nb);
    out[na + 1 + nb] = ':';
    memcpy(out + na + nb + 2, c, nc);
    out[na + nb + 2 + nc] = '\0';
    return out;
}

int cq_job_derive_key(cq_job *job, const char *target)
{
    char *key;

    if (job == NULL)
        return -EINVAL;
    if (job->idem_key_given)
        return 0;
    /* an empty target would give every such job the same key */
    if (job->provider == NULL || job->action == NULL || target == NULL || target[0] == '\0')
        return -EINVAL;
    key = join3(job->provider, job->action, target);
    if (key == NULL)
        return -ENOMEM;
    free(job->idem_key);
    job->idem_key = key;
    return 0;
}

/* --- dead-letter entries ------------------------------------------------- */

/* The job as received.  Well-formed JSON (within the job limits) is embedded
 * verbatim as a raw value: re-printing it through cJSON would change numbers
 * (9007199254740991 prints as 9.00719925474099e+15), and requeueing must put
 * back the same job.  Anything else is embedded as a string, with invalid
 * UTF-8 and NUL bytes replaced by U+FFFD so the entry stays valid JSON. */
static cJSON *raw_job_value(const char *raw, size_t raw_len)
{
    static const char bom[] = "\xef\xbb\xbf"; /* cJSON skips it; JSON has none */
    cJSON *value = NULL;
    char *text;

    if (raw == NULL)
        return cJSON_CreateNull();
    if (raw_len <= CQ_JOB_MAX_BYTES && parse_text(raw, raw_len, &value, NULL) == 0) {
        cJSON_Delete(value);
        if (raw_len >= 3 && memcmp(raw, bom, 3) == 0) {
            raw += 3;
            raw_len -= 3;
        }
        text = strndup(raw, raw_len); /* the text holds no NUL: pre-scanned */
        if (text == NULL)
            return NULL;
        value = cJSON_CreateRaw(text);
        free(text);
        return value;
    }
    text = cq_utf8_sanitize(raw, raw_len);
    if (text == NULL)
        return NULL;
    value = cJSON_CreateString(text);
    free(text);
    return value;
}

static bool add_string(cJSON *obj, const char *key, const char *s)
{
    char *clean;
    bool ok;

    s = s != NULL ? s : "";
    clean = cq_utf8_sanitize(s, strlen(s));
    if (clean == NULL)
        return false;
    ok = cJSON_AddStringToObject(obj, key, clean) != NULL;
    free(clean);
    return ok;
}

static bool add_time(cJSON *obj, const char *key, int64_t ms)
{
    char text[32];

    cq_format_rfc3339(ms, text);
    return cJSON_AddStringToObject(obj, key, text) != NULL;
}

static bool add_attempt(cJSON *arr, const cq_attempt *a)
{
    char code[sizeof(a->error) + 1];
    cJSON *o = cJSON_CreateObject();
    size_t n = strnlen(a->error, sizeof(a->error));

    if (o == NULL)
        return false;
    if (!cJSON_AddItemToArray(arr, o)) {
        cJSON_Delete(o);
        return false;
    }
    memcpy(code, a->error, n);
    code[n] = '\0';
    return add_time(o, "at", a->at_ms) &&
           cJSON_AddNumberToObject(o, "http_status", (double)a->http_status) != NULL &&
           add_string(o, "error", code);
}

char *cq_dead_entry(const char *raw, size_t raw_len, const char *status, const char *error,
                    const char *message, int attempts, const cq_attempt *history, size_t nhistory,
                    int64_t failed_at_ms, const char *worker)
{
    cJSON *entry = cJSON_CreateObject(), *job, *hist;
    char *out = NULL;

    if (entry == NULL)
        return NULL;
    job = raw_job_value(raw, raw_len);
    if (job == NULL || !cJSON_AddItemToObject(entry, "job", job)) {
        cJSON_Delete(job);
        goto free_entry;
    }
    /* a job that was not JSON: billing matches it by the digest of its bytes */
    if (cJSON_IsString(job)) {
        char digest[2 * CQ_SHA256_LEN + 1];

        if (cq_sha256_hex(raw, raw_len, digest, sizeof(digest) - 1) != 0 ||
            !add_string(entry, "raw_sha256", digest))
            goto free_entry;
    }
    if (!add_string(entry, "status", status) || !add_string(entry, "error", error) ||
        !add_string(entry, "message", message) ||
        cJSON_AddNumberToObject(entry, "attempts", attempts) == NULL)
        goto free_entry;
    hist = cJSON_AddArrayToObject(entry, "history");
    if (hist == NULL)
        goto free_entry;
    for (size_t i = 0; history != NULL && i < nhistory; i++)
        if (!add_attempt(hist, &history[i]))
            goto free_entry;
    if (!add_time(entry, "failed_at", failed_at_ms) || !add_string(entry, "worker", worker))
        goto free_entry;
    out = cJSON_PrintUnformatted(entry);
free_entry:
    cJSON_Delete(entry);
    return out;
}
