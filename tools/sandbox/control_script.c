/*
 * control_script.c - parse the "responses" of POST /_sandbox/script into
 * script entries; see control.h for the accepted shape.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "server.h"

/* A header value we will echo: printable ASCII and spaces, no CR/LF. */
static bool header_safe(const char *s, size_t max)
{
    size_t i;

    for (i = 0; s[i] != '\0'; i++) {
        if (i >= max || s[i] < 0x20 || s[i] > 0x7e)
            return false;
    }
    return i > 0;
}

int sb_retry_after_parse(const cJSON *it, char out[SB_RETRY_AFTER_MAX], sb_why *why)
{
    int64_t secs;

    if (cJSON_IsString(it) && header_safe(it->valuestring, SB_RETRY_AFTER_MAX - 1)) {
        memcpy(out, it->valuestring, strlen(it->valuestring) + 1);
        return 0;
    }
    if (sb_json_int(it, 0, INT32_MAX, &secs)) {
        snprintf(out, SB_RETRY_AFTER_MAX, "%" PRId64, secs);
        return 0;
    }
    return sb_why_set(why, "retry_after must be seconds or an HTTP date (string, < %d chars)",
                      SB_RETRY_AFTER_MAX);
}

/* Parse one member of an entry into sc. */
static int parse_member(const cJSON *it, sb_script *sc, sb_why *why)
{
    const char *k = it->string;
    int64_t v;

    if (strcmp(k, "status") == 0) {
        if (!sb_json_int(it, 200, 599, &v))
            return sb_why_set(why, "status must be an integer 200..599");
        sc->status = (int)v;
    } else if (strcmp(k, "hang_ms") == 0) {
        if (!sb_json_int(it, 0, SB_DELAY_MAX_MS, &v))
            return sb_why_set(why, "hang_ms must be an integer 0..%d", SB_DELAY_MAX_MS);
        sc->hang_ms = (uint32_t)v;
    } else if (strcmp(k, "close") == 0 || strcmp(k, "apply") == 0) {
        if (!cJSON_IsBool(it))
            return sb_why_set(why, "%s must be true or false", k);
        if (k[0] == 'c')
            sc->close = cJSON_IsTrue(it);
        else
            sc->apply = cJSON_IsTrue(it) ? 1 : 0;
    } else if (strcmp(k, "retry_after") == 0) {
        return sb_retry_after_parse(it, sc->retry_after, why);
    } else if (strcmp(k, "body") == 0) {
        if (!cJSON_IsString(it) || strlen(it->valuestring) > SB_BODY_MAX)
            return sb_why_set(why, "body must be a string of at most %zu bytes", SB_BODY_MAX);
        free(sc->body);
        sc->body = sb_strndup(it->valuestring, strlen(it->valuestring));
        if (sc->body == NULL)
            return -ENOMEM;
    } else if (strcmp(k, "content_type") == 0) {
        if (!cJSON_IsString(it) || !header_safe(it->valuestring, SB_CONTENT_TYPE_MAX - 1))
            return sb_why_set(why, "content_type must be a header-safe string");
        memcpy(sc->content_type, it->valuestring, strlen(it->valuestring) + 1);
    } else {
        return sb_why_set(why,
                          "unknown key \"%s\" (status, retry_after, hang_ms, close, body,"
                          " content_type, apply)",
                          k);
    }
    return 0;
}

/* Parse one entry; *out is a new script or NULL on error. */
static int parse_entry(const cJSON *e, sb_script **out, sb_why *why)
{
    sb_script *sc;
    const cJSON *it;
    bool have_any = false;
    int rc = 0;

    *out = NULL;
    if (!cJSON_IsObject(e))
        return sb_why_set(why, "must be an object");
    sc = calloc(1, sizeof(*sc));
    if (sc == NULL)
        return -ENOMEM;
    sc->apply = -1;
    cJSON_ArrayForEach (it, e) {
        rc = parse_member(it, sc, why);
        if (rc != 0)
            goto fail;
        if (strcmp(it->string, "status") == 0 || strcmp(it->string, "hang_ms") == 0 ||
            strcmp(it->string, "close") == 0)
            have_any = true;
    }
    if (!have_any)
        rc = sb_why_set(why, "needs status, hang_ms or close");
    else if (sc->close && sc->status != 0)
        rc = sb_why_set(why, "close and status exclude each other");
    else if (sc->status == 0 &&
             (sc->body != NULL || sc->retry_after[0] != '\0' || sc->content_type[0] != '\0'))
        rc = sb_why_set(why, "body, retry_after and content_type need a status");
    if (rc != 0)
        goto fail;
    *out = sc;
    return 0;
fail:
    sb_script_free(sc);
    return rc;
}

int sb_script_list_parse(const cJSON *arr, sb_script_list *out, sb_why *why)
{
    const cJSON *e;
    sb_script *sc;
    sb_why inner;
    int rc;

    memset(out, 0, sizeof(*out));
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) == 0)
        return sb_why_set(why, "\"responses\" must be a non-empty array");
    cJSON_ArrayForEach (e, arr) {
        if (out->n >= SB_SCRIPT_QUEUE_MAX) {
            rc = sb_why_set(why, "at most %d responses", SB_SCRIPT_QUEUE_MAX);
            goto fail;
        }
        inner.msg[0] = '\0';
        rc = parse_entry(e, &sc, &inner);
        if (rc != 0) {
            if (rc == -EINVAL)
                sb_why_set(why, "responses[%u]: %s", out->n, inner.msg);
            goto fail;
        }
        if (out->tail != NULL)
            out->tail->next = sc;
        else
            out->head = sc;
        out->tail = sc;
        out->n++;
    }
    return 0;
fail:
    sb_script_list_free(out);
    return rc;
}

void sb_script_list_move(sb_script_list *l, sb_store *s, sb_target *t, sb_prov_id p)
{
    sb_script *sc, *next;

    for (sc = l->head; sc != NULL; sc = next) {
        next = sc->next;
        if (sb_store_script_push(s, t, p, sc) != 0)
            sb_script_free(sc); /* cannot happen: the caller checked room */
    }
    memset(l, 0, sizeof(*l));
}

void sb_script_list_free(sb_script_list *l)
{
    sb_script *sc, *next;

    for (sc = l->head; sc != NULL; sc = next) {
        next = sc->next;
        sb_script_free(sc);
    }
    memset(l, 0, sizeof(*l));
}
