#include "bl/bl_auth.h"

#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "bl/bl_err.h"

#define BEARER "bearer"
#define BEARER_LEN 6
#define MAX_TOKEN_LEN 4096

static int
hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

int
bl_auth_parse_digest(const char *hex, uint8_t out[BL_SHA256_LEN])
{
    uint8_t tmp[BL_SHA256_LEN];

    if (hex == NULL || out == NULL) {
        return BL_EINVAL;
    }
    for (size_t i = 0; i < BL_SHA256_LEN; i++) {
        int hi = hexval(hex[2 * i]);
        int lo = hi < 0 ? -1 : hexval(hex[2 * i + 1]);

        if (hi < 0 || lo < 0) {
            return BL_EINVAL;                  /* also stops at an early NUL */
        }
        tmp[i] = (uint8_t)(hi << 4 | lo);
    }
    if (hex[2 * BL_SHA256_LEN] != '\0') {
        return BL_EINVAL;
    }
    memcpy(out, tmp, sizeof(tmp));
    return 0;
}

/*
 * Returns the token of "Bearer <token>" and its length in <len>, or NULL when the value
 * is not of that form. The token is one or more visible ASCII characters (no space, no
 * control character, no byte >= 0x7f), which covers RFC 6750's token68.
 */
static const char *
bearer_token(const char *value, size_t *len)
{
    const char *p;
    size_t n = 0;

    if (value == NULL || strncasecmp(value, BEARER, BEARER_LEN) != 0 ||
        value[BEARER_LEN] != ' ') {
        return NULL;
    }
    p = value + BEARER_LEN;
    while (*p == ' ') {
        p++;
    }
    while (p[n] != '\0') {
        unsigned char c = (unsigned char)p[n];

        if (c <= 0x20 || c >= 0x7f || n >= MAX_TOKEN_LEN) {
            return NULL;
        }
        n++;
    }
    if (n == 0) {
        return NULL;
    }
    *len = n;
    return p;
}

bool
bl_auth_bearer_ok(const char *authorization, const uint8_t (*digests)[BL_SHA256_LEN],
                  size_t n)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    const char *token;
    size_t len = 0;
    int match = 0;

    if (digests == NULL || n == 0) {
        return false;
    }
    token = bearer_token(authorization, &len);
    if (token == NULL) {
        return false;
    }
    if (EVP_Digest(token, len, md, &mdlen, EVP_sha256(), NULL) != 1 ||
        mdlen != BL_SHA256_LEN) {
        return false;
    }
    /* No early exit: every digest is compared whatever matched before. */
    for (size_t i = 0; i < n; i++) {
        match |= CRYPTO_memcmp(md, digests[i], BL_SHA256_LEN) == 0;
    }
    OPENSSL_cleanse(md, sizeof(md));
    return match != 0;
}
