/*
 * hash.c - SHA-256 through libcrypto's EVP interface (see hash.h).
 */
#include "cancelq/hash.h"

#include <errno.h>
#include <sys/random.h>

#include <openssl/evp.h>

int cq_sha256(const void *p, size_t n, unsigned char out[CQ_SHA256_LEN])
{
    unsigned int len = 0;

    if (EVP_Digest(p, n, out, &len, EVP_sha256(), NULL) != 1 || len != CQ_SHA256_LEN)
        return -ENOMEM;
    return 0;
}

int cq_sha256_hex(const void *p, size_t n, char *out, size_t nhex)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[CQ_SHA256_LEN];
    size_t i;

    if (nhex > 2 * CQ_SHA256_LEN)
        nhex = 2 * CQ_SHA256_LEN;
    if (cq_sha256(p, n, md) != 0)
        return -ENOMEM;
    for (i = 0; i < nhex; i++)
        out[i] = hex[(md[i / 2] >> (i % 2 ? 0 : 4)) & 0x0f];
    out[nhex] = '\0';
    return 0;
}

int cq_random_hex(char *out, size_t nhex)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char r[CQ_SHA256_LEN];
    size_t i, need;
    ssize_t got;

    if (nhex > 2 * sizeof(r))
        nhex = 2 * sizeof(r);
    need = (nhex + 1) / 2;
    got = getrandom(r, need, 0);
    if (got < 0 || (size_t)got != need)
        return got < 0 ? -errno : -EIO;
    for (i = 0; i < nhex; i++)
        out[i] = hex[(r[i / 2] >> (i % 2 ? 0 : 4)) & 0x0f];
    out[nhex] = '\0';
    return 0;
}
