/*
 * config_load.c - read and load the cancelq config file (config.h).
 *
 * inih does the INI syntax.  Debian's libinih is built without
 * INI_HANDLER_LINENO, and it copies section names into a 50-byte buffer
 * (a 64-character provider name would arrive truncated) and never tells the
 * handler about a section without keys.  So the text is fed to
 * ini_parse_stream() by conf_reader(), which hands out exactly one line per
 * call (inih reads one line per call), counts them, and itself opens and
 * closes sections: the handler only sees key = value pairs and applies them
 * to the section the reader opened.  The reader also strips leading blanks,
 * so that inih never treats an indented key as a continuation of the
 * previous value, and refuses lines too long for inih's fixed buffer rather
 * than letting inih split them silently.
 *
 * Errors: the first one wins and stops the parse; its message is
 * "FILE:LINE: [section] key: reason".  Keys missing from a section name the
 * line of the section header.
 */
#include "cancelq/config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>

#include "cancelq/textdist.h"
#include "config_load.h"

/* A config file is a few kilobytes; this is a sanity bound, not a tuning knob. */
#define CQ_CONF_FILE_MAX CQ_MIB
/* Longest "[...]" text examined (lines are shorter than this anyway). */
#define CQ_SECTION_TEXT_MAX 256

/* Key = value --------------------------------------------------------------- */

int cq_conf_seen_line(const load_ctx *c, const char *key)
{
    const cq_conf_opt *o = cq_conf_opt_find(c->sec, key);

    return o == NULL ? 0 : c->seen[o - cq_conf_opts];
}

int cq_conf_fail(load_ctx *c, int line, const char *sec, const char *key, const char *fmt, ...)
{
    char where[CQ_ERR_MSG_MAX], reason[CQ_ERR_MSG_MAX];
    size_t n;
    va_list ap;

    if (c->failed)
        return -EINVAL;
    c->failed = true;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    n = (size_t)snprintf(where, sizeof(where), "%s:", c->name);
    if (line > 0 && n < sizeof(where))
        n += (size_t)snprintf(where + n, sizeof(where) - n, "%d:", line);
    if (sec != NULL && n < sizeof(where))
        n += (size_t)snprintf(where + n, sizeof(where) - n, " [%s]", sec);
    if (key != NULL && n < sizeof(where))
        snprintf(where + n, sizeof(where) - n, " %s", key);
    return cq_err_set(c->err, -EINVAL, "bad_config", "%s%s %s", where,
                      (sec != NULL || key != NULL) ? ":" : "", reason);
}

/* Set every option of section sec that has a default. */
static int apply_defaults(load_ctx *c, cq_conf_sec sec, void *base)
{
    char why[CQ_ERR_MSG_MAX];

    for (size_t i = 0; i < cq_conf_nopts; i++) {
        if (cq_conf_opts[i].sec != sec || cq_conf_opts[i].def == NULL)
            continue;
        if (cq_conf_set_value(&cq_conf_opts[i], base, cq_conf_opts[i].def, c->dir, false, why,
                              sizeof(why)) != 0)
            return cq_conf_fail(c, 0, NULL, cq_conf_opts[i].key, "default: %s", why);
    }
    return 0;
}

static void *section_base(const load_ctx *c)
{
    switch (c->sec) {
    case CQ_SEC_REDIS:
        return &c->cfg->redis;
    case CQ_SEC_WORKER:
        return &c->cfg->worker;
    case CQ_SEC_PROVIDER:
        return c->prov;
    default:
        return NULL;
    }
}

static int unknown_key(load_ctx *c, const char *key)
{
    const cq_conf_opt *best = NULL;
    size_t best_d = 3; /* suggest only close matches */

    for (size_t i = 0; i < cq_conf_nopts; i++) {
        size_t d =
            cq_conf_opts[i].sec == c->sec ? cq_edit_distance(key, cq_conf_opts[i].key) : SIZE_MAX;

        if (d < best_d) {
            best_d = d;
            best = &cq_conf_opts[i];
        }
    }
    if (best != NULL)
        return cq_conf_fail(c, c->line, c->label, key, "unknown key (did you mean %s?)", best->key);
    if (c->sec == CQ_SEC_PROVIDER &&
        (strstr(key, "token") != NULL || strstr(key, "secret") != NULL ||
         strstr(key, "password") != NULL))
        return cq_conf_fail(c, c->line, c->label, key,
                            "unknown key (secrets are never written in the config: put them in a "
                            "file and name it with token_file, client_secret_file or "
                            "password_file)");
    return cq_conf_fail(c, c->line, c->label, key, "unknown key");
}

/* inih callback: one key = value of the section conf_reader() opened. */
static int conf_handler(void *user, const char *section, const char *key, const char *value)
{
    load_ctx *c = user;
    char why[CQ_ERR_MSG_MAX];
    const cq_conf_opt *o;

    (void)section; /* inih's copy may be truncated; the reader tracks sections */
    if (c->failed)
        return 0;
    if (key[0] == '\0' || value == NULL) {
        cq_conf_fail(c, c->line, NULL, NULL, "syntax error: expected 'key = value'");
        return 0;
    }
    if (c->sec == CQ_SEC_NONE) {
        cq_conf_fail(c, c->line, NULL, key,
                     "key outside any section (add [redis], [worker] or "
                     "[provider NAME] above it)");
        return 0;
    }
    o = cq_conf_opt_find(c->sec, key);
    if (o == NULL) {
        unknown_key(c, key);
        return 0;
    }
    if (c->seen[o - cq_conf_opts] != 0) {
        cq_conf_fail(c, c->line, c->label, key, "set twice (first on line %d)",
                     c->seen[o - cq_conf_opts]);
        return 0;
    }
    c->seen[o - cq_conf_opts] = c->line;
    if (cq_conf_set_value(o, section_base(c), value, c->dir,
                          (c->flags & CQ_CONFIG_SKIP_SECRETS) != 0, why, sizeof(why)) != 0) {
        cq_conf_fail(c, c->line, c->label, key, "%s", why);
        return 0;
    }
    return 1;
}

/* Sections -------------------------------------------------------------- */

static bool valid_provider_name(const char *s)
{
    size_t n = strlen(s);

    return n >= 1 && n <= CQ_CONF_NAME_MAX &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == n;
}

static int open_provider(load_ctx *c, const char *name)
{
    cq_config *cfg = c->cfg;
    cq_provider_conf *pc;

    if (!valid_provider_name(name))
        return cq_conf_fail(c, c->line, c->label, NULL,
                            "bad provider name '%s' (1..%d characters of A-Z a-z 0-9 _ -)", name,
                            CQ_CONF_NAME_MAX);
    for (size_t i = 0; i < cfg->nproviders; i++)
        if (strcmp(cfg->providers[i].name, name) == 0)
            return cq_conf_fail(c, c->line, c->label, NULL,
                                "duplicate provider (first defined on line %d)",
                                cfg->providers[i].line);
    if (cfg->nproviders == CQ_CONF_MAX_PROVIDERS)
        return cq_conf_fail(c, c->line, c->label, NULL, "too many providers (at most %d)",
                            CQ_CONF_MAX_PROVIDERS);
    pc = &cfg->providers[cfg->nproviders++];
    pc->line = c->line;
    pc->name = strdup(name);
    if (pc->name == NULL)
        return cq_conf_fail(c, c->line, c->label, NULL, "out of memory");
    c->sec = CQ_SEC_PROVIDER;
    c->prov = pc;
    return apply_defaults(c, CQ_SEC_PROVIDER, pc);
}

/* Open the section named in header text s ("redis", "provider x"). */
static int open_section(load_ctx *c, const char *s)
{
    int *line = NULL;

    snprintf(c->label, sizeof(c->label), "%.*s", (int)sizeof(c->label) - 1, s);
    if (strcmp(s, "redis") == 0)
        line = &c->redis_line;
    else if (strcmp(s, "worker") == 0)
        line = &c->worker_line;
    if (line != NULL && *line != 0)
        return cq_conf_fail(c, c->line, c->label, NULL, "duplicate section (first on line %d)",
                            *line);
    if (line != NULL) {
        *line = c->line;
        c->sec = line == &c->redis_line ? CQ_SEC_REDIS : CQ_SEC_WORKER;
        return 0;
    }
    if (strncmp(s, "provider", 8) == 0 && (s[8] == ' ' || s[8] == '\t' || s[8] == '\0')) {
        const char *name = s + 8 + strspn(s + 8, " \t");

        snprintf(c->label, sizeof(c->label), "provider%s%.*s", *name ? " " : "", CQ_CONF_NAME_MAX,
                 name);
        return open_provider(c, name);
    }
    return cq_conf_fail(c, c->line, c->label, NULL,
                        "unknown section (expected [redis], [worker] or [provider NAME])");
}

/* A "[...]" line: close the open section, open the new one. */
static int section_line(load_ctx *c, const char *line)
{
    const char *close = strchr(line, ']');
    const char *rest;
    char name[CQ_SECTION_TEXT_MAX];
    size_t a = 1, b;

    if (cq_conf_finish_section(c) != 0)
        return -EINVAL;
    memset(c->seen, 0, sizeof(c->seen));
    c->sec_line = c->line;
    if (close == NULL)
        return cq_conf_fail(c, c->line, NULL, NULL, "syntax error: section header without ']'");
    rest = close + 1 + strspn(close + 1, " \t\r\n");
    if (*rest != '\0' && *rest != ';' && *rest != '#')
        return cq_conf_fail(c, c->line, NULL, NULL, "syntax error: text after ']'");
    b = (size_t)(close - line);
    while (a < b && (line[a] == ' ' || line[a] == '\t'))
        a++;
    while (b > a && (line[b - 1] == ' ' || line[b - 1] == '\t'))
        b--;
    if (b - a >= sizeof(name))
        return cq_conf_fail(c, c->line, NULL, NULL, "section name too long");
    memcpy(name, line + a, b - a);
    name[b - a] = '\0';
    return open_section(c, name);
}

/* Lines inih would reject: not blank, not a comment, not a section, and no
 * '=' or ':' before an inline comment.  Caught here to report them in
 * order with the rest. */
static bool is_bad_line(const char *s)
{
    const char *p;

    if (*s == '\0' || *s == '\r' || *s == '\n' || *s == ';' || *s == '#' || *s == '[')
        return false;
    for (p = s; *p != '\0' && *p != '=' && *p != ':'; p++)
        if (*p == ';' && (p[-1] == ' ' || p[-1] == '\t'))
            return true;
    return *p == '\0';
}

/* The inih reader: hand out the next line, left-trimmed, and track sections.
 * Returns NULL at the end or after an error (which stops inih). */
static char *conf_reader(char *buf, int size, void *stream)
{
    load_ctx *c = stream;
    const char *p, *end, *nl;
    size_t len;

    if (c->failed || c->pos >= c->len)
        return NULL;
    p = c->text + c->pos;
    nl = memchr(p, '\n', c->len - c->pos);
    end = nl != NULL ? nl : c->text + c->len;
    c->pos = (size_t)(end - c->text) + (nl != NULL);
    c->line++;
    if (c->line == 1 && end - p >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3; /* UTF-8 byte order mark */
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    len = (size_t)(end - p);
    if (memchr(p, '\0', len) != NULL) {
        cq_conf_fail(c, c->line, NULL, NULL, "line contains a NUL byte");
        return NULL;
    }
    /* inih needs room for the '\n' and the NUL we hand it. */
    if (size < 3 || len > (size_t)size - 2) {
        cq_conf_fail(c, c->line, NULL, NULL, "line too long (at most %d characters)", size - 2);
        return NULL;
    }
    memcpy(buf, p, len);
    buf[len] = '\n';
    buf[len + 1] = '\0';
    if (buf[0] == '[' && section_line(c, buf) != 0)
        return NULL;
    if (is_bad_line(buf)) {
        cq_conf_fail(c, c->line, NULL, NULL, "syntax error: expected 'key = value' or [section]");
        return NULL;
    }
    return buf;
}

/* Loading ----------------------------------------------------------------- */

static cq_config *config_new(const char *name)
{
    cq_config *cfg = calloc(1, sizeof(*cfg));

    if (cfg == NULL)
        return NULL;
    cfg->path = strdup(name);
    cfg->providers = calloc(CQ_CONF_MAX_PROVIDERS, sizeof(*cfg->providers));
    if (cfg->path == NULL || cfg->providers == NULL) {
        cq_config_free(cfg);
        return NULL;
    }
    return cfg;
}

/* Parse text (len bytes) named name; dir is the base for relative secret
 * paths (NULL: as given); flags are CQ_CONFIG_*. */
static cq_config *load_text(const char *text, size_t len, const char *name, const char *dir,
                            unsigned flags, cq_err *err)
{
    load_ctx c = {.err = err, .name = name, .dir = dir, .flags = flags, .text = text, .len = len};
    int r;

    cq_err_clear(err);
    c.cfg = config_new(name);
    if (c.cfg == NULL) {
        cq_err_set(err, -ENOMEM, "no_memory", "%s: out of memory", name);
        return NULL;
    }
    if (apply_defaults(&c, CQ_SEC_REDIS, &c.cfg->redis) != 0 ||
        apply_defaults(&c, CQ_SEC_WORKER, &c.cfg->worker) != 0)
        goto fail;
    r = ini_parse_stream(conf_reader, &c, conf_handler, &c);
    if (c.failed)
        goto fail;
    if (r == -2) {
        cq_err_set(err, -ENOMEM, "no_memory", "%s: out of memory", name);
        goto fail;
    }
    if (r != 0) {
        cq_conf_fail(&c, r, NULL, NULL, "syntax error");
        goto fail;
    }
    if (cq_conf_finish_section(&c) != 0 || cq_conf_finish_config(&c) != 0)
        goto fail;
    return c.cfg;
fail:
    cq_config_free(c.cfg);
    return NULL;
}

cq_config *cq_config_load_string(const char *text, const char *name, cq_err *err)
{
    if (text == NULL || name == NULL) {
        cq_err_set(err, -EINVAL, "bad_config", "no config text");
        return NULL;
    }
    return load_text(text, strlen(text), name, NULL, 0, err);
}

/* Read a whole config file (at most CQ_CONF_FILE_MAX bytes) into *out. */
static int read_file(const char *path, char **out, size_t *len, cq_err *err)
{
    struct stat st;
    char *buf = NULL;
    size_t n = 0;
    ssize_t r;
    int fd, rc = 0;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK); /* a FIFO must not hang us */
    if (fd < 0 || fstat(fd, &st) != 0) {
        rc = -errno;
        cq_err_set(err, rc, "config_unreadable", "%s: cannot read: %s", path, strerror(-rc));
        goto out;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > CQ_CONF_FILE_MAX) {
        rc = cq_err_set(err, -EINVAL, "config_unreadable",
                        "%s: not a regular file of at most %lld bytes", path, CQ_CONF_FILE_MAX);
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        rc = cq_err_set(err, -ENOMEM, "no_memory", "%s: out of memory", path);
        goto out;
    }
    while (n < (size_t)st.st_size) {
        r = read(fd, buf + n, (size_t)st.st_size - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = -errno;
            cq_err_set(err, rc, "config_unreadable", "%s: cannot read: %s", path, strerror(-rc));
            goto out;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    buf = NULL;
out:
    free(buf);
    if (fd >= 0)
        close(fd);
    return rc;
}

/* Absolute directory of path, so that secret paths stay valid whatever
 * the daemon's working directory later is.  Heap, or NULL with errno. */
static char *config_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir, *abs;

    if (slash == NULL)
        return realpath(".", NULL);
    dir = slash == path ? strdup("/") : strndup(path, (size_t)(slash - path));
    if (dir == NULL)
        return NULL;
    abs = realpath(dir, NULL);
    free(dir);
    return abs;
}

cq_config *cq_config_load(const char *path, cq_err *err)
{
    return cq_config_load_ex(path, 0, err);
}

cq_config *cq_config_load_ex(const char *path, unsigned flags, cq_err *err)
{
    cq_config *cfg = NULL;
    char *text = NULL, *dir = NULL;
    size_t len = 0;

    if (path == NULL) {
        cq_err_set(err, -EINVAL, "bad_config", "no config file given");
        return NULL;
    }
    if (read_file(path, &text, &len, err) != 0)
        return NULL;
    dir = config_dir(path);
    if (dir == NULL) {
        int e = errno;

        cq_err_set(err, -e, "config_unreadable", "%s: cannot resolve its directory: %s", path,
                   strerror(e));
        goto out;
    }
    cfg = load_text(text, len, path, dir, flags, err);
out:
    free(dir);
    free(text);
    return cfg;
}
