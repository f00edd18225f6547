/*
 * response.c - building answers; see request.h for the ownership rules.
 */
#include "request.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *sb_req_header(const sb_request *req, const char *name)
{
    size_t i;

    for (i = 0; i < req->nheaders; i++) {
        if (strcasecmp(req->headers[i].name, name) == 0)
            return req->headers[i].value;
    }
    return NULL;
}

void sb_resp_init(sb_response *r)
{
    r->status = 200;
    r->content_type[0] = '\0';
    r->body = NULL;
    r->body_len = 0;
    r->location[0] = '\0';
    r->retry_after[0] = '\0';
    r->allow[0] = '\0';
    r->delay_ms = 0;
    r->close = false;
    r->drop = false;
    r->rejected = false;
    r->why.msg[0] = '\0';
}

void sb_resp_release(sb_response *r)
{
    free(r->body);
    r->body = NULL;
    r->body_len = 0;
}

static void oom(sb_response *r)
{
    sb_resp_release(r);
    r->status = 500;
    r->content_type[0] = '\0';
    r->close = true;
}

void sb_resp_json(sb_response *r, int status, cJSON *obj)
{
    char *text;

    sb_resp_release(r);
    if (obj == NULL) {
        oom(r);
        return;
    }
    text = cJSON_PrintUnformatted(obj);
    cJSON_Delete(obj);
    if (text == NULL) {
        oom(r);
        return;
    }
    r->status = status;
    memcpy(r->content_type, "application/json", sizeof("application/json"));
    r->body = text;
    r->body_len = strlen(text);
}

void sb_resp_raw(sb_response *r, int status, const char *content_type, const char *body, size_t len)
{
    sb_resp_release(r);
    r->body = sb_strndup(body, len);
    if (r->body == NULL) {
        oom(r);
        return;
    }
    r->status = status;
    snprintf(r->content_type, sizeof(r->content_type), "%s", content_type);
    r->body_len = len;
}

void sb_resp_empty(sb_response *r, int status)
{
    sb_resp_release(r);
    r->status = status;
    r->content_type[0] = '\0';
}

void sb_resp_reject(sb_response *r, int status, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(r->why.msg, sizeof(r->why.msg), fmt, ap);
    va_end(ap);
    r->rejected = true;
    sb_resp_json(r, status, sb_json_obj1("error", r->why.msg));
}

cJSON *sb_json_obj1(const char *k, const char *v)
{
    cJSON *o = cJSON_CreateObject();

    if (o != NULL && cJSON_AddStringToObject(o, k, v) == NULL) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}
