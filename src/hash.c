/*
 * hash.c - SHA-256 through libcrypto's EVP interface (see hash.h).
 */
#include "cancelq/hash.h"

#include <errno.h>
#include <sys/random.h>

#include <openssl/evp.h>

/* The digest and a context, fetched once and kept for the life of the
 * process: EVP_Digest() with EVP_sha256() looks the algorithm up in
 * OpenSSL 3's provider tables on every call, which cost more than hashing
 * a job (7,200 instructions a job in the bench's profile; about 4,000 now).  The
 * processes are single-threaded. */
static EVP_MD *sha256_md;
static EVP_MD_CTX *sha256_ctx;

int cq_sha256(const void *p, size_t n, unsigned char out[CQ_SHA256_LEN])
{
    unsigned int len = 0;

    if (sha256_md == NULL && (sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL)
        return -ENOMEM;
    if (sha256_ctx == NULL && (sha256_ctx = EVP_MD_CTX_new()) == NULL)
        return -ENOMEM;
    if (EVP_DigestInit_ex2(sha256_ctx, sha256_md, NULL) != 1 ||
        EVP_DigestUpdate(sha256_ctx, p, n) != 1 || EVP_DigestFinal_ex(sha256_ctx, out, &len) != 1 ||
        len != CQ_SHA256_LEN)
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
