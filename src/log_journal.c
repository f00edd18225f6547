/*
 * log_journal.c - events as native journal entries (log.h): one field per
 * key, redacted like the line, and a MESSAGE_ID for the events an operator
 * acts on (explained in systemd/cancelq.catalog: keep the two in step).
 *
 *   journalctl -u cancelq CQ_EVENT=job_done CQ_STATUS=exhausted
 *   journalctl -u cancelq MESSAGE_ID=288ce480b7f5406e847448f1e0b13cd8 -x
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>

#include <systemd/sd-journal.h>

#include "cancelq/status.h"
#include "log_int.h"

#define JF_MAX 48                      /* fields of one entry: 5 fixed, the rest keys */
#define JF_ARENA (3 * CQ_LOG_LINE_MAX) /* the texts of one entry's fields */
#define JF_NAME_MAX 64                 /* journald's limit on a field name */
#define JF_VALUE_MAX CQ_LOG_LINE_MAX   /* one value, redacted, at most (cut beyond) */

static const struct {
    const char *event;
    const char *id;
} message_ids[] = {
    /* job_done: only for the statuses that write a dead letter */
    {"job_done", "288ce480b7f5406e847448f1e0b13cd8"},
    {"breaker_state", "4a0cf560b7bc47efb1cb1ebc71730737"},
    {"fenced", "894c61c3b65c4d7a9e4550b9711c0826"},
    {"unfenced", "d741a600ae484882b2285e71769a3565"},
    {"finish_failed", "6ba880021d6c465ea608a8e04c2e962a"},
    {"worker_id_taken", "a32a3111b9654395874d1ae1d581439c"},
    {"shutdown_forced", "498f7136864a4cbb95a55f91e7d1152f"},
    {"redis_unavailable", "332db2ac332b45eaa53525be60f8277b"},
    {"token_mint_failed", "6278f16c61b24bd9912c76250cdcc385"},
    {"token_refused", "e3b16f96c7ee4106bfe2779d6e5096ff"},
    {"token_refresh_refused", "d50c44d004ce4ea5ad1665dead0f829c"},
    {"token_read_failed", "00267be4032f49c0a4b2a6d90a1e23fa"},
    {"secret_reload_failed", "dd104bc56fda4e8ea576cd4c65951565"},
    {"job_stuck", "1c5b73758acf4e9596ac9eca97731b81"},
    {"redis_durability", "b39b496c64de49a8bba998d5952921e9"},
    {"provider_paused", "9ef63a6ef14d4ec6b35da9c62a8a8603"},
    {"job_dropped", "6f3a269dc7a34068a20248191798d8e1"},
};

const char *cq_log_message_id(const char *event, const char *status)
{
    if (event == NULL)
        return NULL;
    if (strcmp(event, "job_done") == 0) {
        cq_status st = status != NULL ? cq_status_from_name(status) : CQ_ST_COUNT;

        if (st == CQ_ST_COUNT || cq_status_ok(st))
            return NULL;
    }
    for (size_t i = 0; i < sizeof(message_ids) / sizeof(message_ids[0]); i++)
        if (strcmp(message_ids[i].event, event) == 0)
            return message_ids[i].id;
    return NULL;
}

/* One entry's fields: iovecs into the arena. */
typedef struct jfields {
    struct iovec iov[JF_MAX];
    size_t n;
    size_t used;
    char arena[JF_ARENA];
} jfields;

/* Start a field "NAME=" in the arena; NULL when there is no room. */
static char *field_start(jfields *f, const char *name, size_t name_len, size_t need)
{
    char *p;

    if (f->n == JF_MAX || f->used + name_len + 1 + need + 1 > sizeof(f->arena))
        return NULL;
    p = f->arena + f->used;
    memcpy(p, name, name_len);
    p[name_len] = '=';
    return p;
}

static void field_end(jfields *f, char *start, size_t len)
{
    f->iov[f->n++] = (struct iovec){.iov_base = start, .iov_len = len};
    f->used += len + 1; /* keep a NUL after it (for the test format) */
    start[len] = '\0';
}

/* NAME=value, the value as given (already redacted, or not secret). */
static void add_raw(jfields *f, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value);
    char *p = field_start(f, name, nl, vl);

    if (p == NULL)
        return;
    memcpy(p + nl + 1, value, vl + 1); /* with its NUL */
    field_end(f, p, nl + 1 + vl);
}

/* NAME=value with the value redacted (cut at JF_VALUE_MAX). */
static void add_redacted(jfields *f, const char *name, size_t nl, const char *value)
{
    size_t room;
    char *p;

    if (f->n == JF_MAX || f->used + nl + 2 >= sizeof(f->arena))
        return;
    room = sizeof(f->arena) - f->used - nl - 1;
    if (room > JF_VALUE_MAX)
        room = JF_VALUE_MAX;
    p = field_start(f, name, nl, 0);
    if (p == NULL)
        return;
    cq_log_redact(value != NULL ? value : "", p + nl + 1, room);
    field_end(f, p, nl + 1 + strlen(p + nl + 1));
}

/* "CQ_" + key uppercased, every byte other than A-Z 0-9 turned to '_'. */
static size_t field_name(const char *key, char *out)
{
    size_t n = 3;

    memcpy(out, "CQ_", 3);
    for (const char *k = key; *k != '\0' && n < JF_NAME_MAX; k++) {
        char c = *k;

        if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        else if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
            c = '_';
        out[n++] = c;
    }
    out[n] = '\0';
    return n;
}

/* Every field of the event, MESSAGE first. */
static void build(jfields *f, cq_log_level level, const char *event, va_list ap)
{
    char line[CQ_LOG_LINE_MAX], prio[16], name[JF_NAME_MAX + 1];
    const char *status = NULL, *id, *k;
    va_list again;

    f->n = 0;
    f->used = 0;
    va_copy(again, ap);
    cq_log_line(line, sizeof(line), CQ_LOG_JOURNAL, level, event, again);
    va_end(again);
    add_raw(f, "MESSAGE", line);
    snprintf(prio, sizeof(prio), "%d", (int)level);
    add_raw(f, "PRIORITY", prio);
    add_raw(f, "SYSLOG_IDENTIFIER", program_invocation_short_name);
    add_redacted(f, "CQ_EVENT", strlen("CQ_EVENT"), event);
    while ((k = va_arg(ap, const char *)) != NULL) {
        const char *v = va_arg(ap, const char *);

        if (strcmp(k, "status") == 0)
            status = v;
        add_redacted(f, name, field_name(k, name), v);
    }
    id = cq_log_message_id(event, status);
    if (id != NULL)
        add_raw(f, "MESSAGE_ID", id);
}

int cq_log_journal_send(cq_log_level level, const char *event, va_list ap)
{
    jfields f;
    int rc;

    build(&f, level, event, ap);
    rc = sd_journal_sendv(f.iov, (int)f.n);
    return rc < 0 ? rc : 0;
}

size_t cq_log_journal_format(char *buf, size_t size, cq_log_level level, const char *event, ...)
{
    jfields f;
    va_list ap;
    size_t o = 0;

    va_start(ap, event);
    build(&f, level, event, ap);
    va_end(ap);
    if (size == 0)
        return f.n;
    buf[0] = '\0';
    for (size_t i = 0; i < f.n; i++) {
        int w = snprintf(buf + o, size - o, "%s\n", (const char *)f.iov[i].iov_base);

        if (w < 0 || (size_t)w >= size - o)
            break;
        o += (size_t)w;
    }
    return f.n;
}
