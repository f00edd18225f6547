/*
 * secret.c - reading secret files (config.h): tokens, client secrets and
 * passwords live in files of their own, never in the config.  A secret is
 * one line of at most CQ_SECRET_MAX bytes from a regular file; a PEM file
 * (a TLS private key, certificates) is read whole with its own limit.  What
 * is read is wiped before it is freed.
 */
#include "cancelq/config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Read at most cap bytes of fd into buf; *n gets the count.  0 or -errno. */
static int read_capped(int fd, char *buf, size_t cap, size_t *n)
{
    *n = 0;
    while (*n < cap) {
        ssize_t r = read(fd, buf + *n, cap - *n);

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            break;
        *n += (size_t)r;
    }
    return 0;
}

/* Open path for reading a secret and check it is a regular file of at most
 * max bytes.  O_NONBLOCK so that a FIFO cannot hang the loader before
 * fstat() sees it. */
static int secret_open(const char *path, size_t max, int *fd_out, cq_err *err)
{
    struct stat st;
    int fd, e;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        e = errno;
        return cq_err_set(err, -e, "secret_unreadable", "cannot read '%s': %s", path, strerror(e));
    }
    if (fstat(fd, &st) != 0) {
        e = errno;
        close(fd);
        return cq_err_set(err, -e, "secret_unreadable", "cannot read '%s': %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return cq_err_set(err, -EINVAL, "secret_unreadable", "'%s' is not a regular file", path);
    }
    if ((unsigned long long)st.st_size > max) {
        close(fd);
        return cq_err_set(err, -EFBIG, "secret_too_large", "'%s' is larger than %zu bytes", path,
                          max);
    }
    *fd_out = fd;
    return 0;
}

/* Check a secret of n bytes (trailing line break already stripped). */
static int secret_check(const char *path, const char *buf, size_t n, cq_err *err)
{
    if (n == 0)
        return cq_err_set(err, -EINVAL, "secret_empty", "'%s' is empty", path);
    /* A line break or NUL inside would end up inside an HTTP header. */
    if (memchr(buf, '\n', n) != NULL || memchr(buf, '\r', n) != NULL ||
        memchr(buf, '\0', n) != NULL)
        return cq_err_set(err, -EINVAL, "secret_bad",
                          "'%s' holds more than one line (or a NUL byte)", path);
    return 0;
}

int cq_secret_read(const char *path, char **out, cq_err *err)
{
    char *buf = NULL;
    size_t n = 0;
    int rc = cq_secret_read_all(path, CQ_SECRET_MAX, &buf, &n, err);

    *out = NULL;
    if (rc != 0)
        return rc;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    rc = secret_check(path, buf, n, err); /* "\n" alone is empty; one line only */
    if (rc != 0) {
        cq_secret_free(buf);
        return rc;
    }
    *out = buf;
    return 0;
}

int cq_secret_read_all(const char *path, size_t max, char **out, size_t *len, cq_err *err)
{
    /* one byte more than max tells a file that grew after fstat() */
    const size_t cap = max + 1;
    char *buf = NULL;
    size_t n = 0;
    int fd = -1, rc;

    *out = NULL;
    *len = 0;
    rc = secret_open(path, max, &fd, err);
    if (rc != 0)
        return rc;
    buf = malloc(cap + 1);
    if (buf == NULL) {
        rc = cq_err_set(err, -ENOMEM, "no_memory", "out of memory reading '%s'", path);
        goto out_close;
    }
    rc = read_capped(fd, buf, cap, &n);
    if (rc != 0) {
        cq_err_set(err, rc, "secret_unreadable", "cannot read '%s': %s", path, strerror(-rc));
        goto out_wipe;
    }
    if (n > max) {
        rc =
            cq_err_set(err, -EFBIG, "secret_too_large", "'%s' is larger than %zu bytes", path, max);
        goto out_wipe;
    }
    if (n == 0 || memchr(buf, '\0', n) != NULL) {
        rc = cq_err_set(err, -EINVAL, n == 0 ? "secret_empty" : "secret_bad",
                        n == 0 ? "'%s' is empty" : "'%s' holds a NUL byte", path);
        goto out_wipe;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    buf = NULL;
out_wipe:
    if (buf != NULL) {
        explicit_bzero(buf, cap + 1);
        free(buf);
    }
out_close:
    close(fd);
    return rc;
}

void cq_secret_free(char *secret)
{
    if (secret == NULL)
        return;
    /* The stripped line break was zeroed by cq_secret_read(), so the
     * string's length covers every secret byte. */
    explicit_bzero(secret, strlen(secret));
    free(secret);
}
