#ifndef BL_AUTH_H
#define BL_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bearer tokens checked against configured SHA-256 digests, in constant time. */

#define BL_SHA256_LEN 32

/* Parses 64 hex digits (any case) into <out>. Returns 0 or BL_EINVAL. */
int bl_auth_parse_digest(const char *hex, uint8_t out[BL_SHA256_LEN]);

/*
 * True when <authorization> (the raw header value, may be NULL) is "Bearer <token>" (scheme
 * case-insensitive, one or more spaces) and SHA-256(token) equals one of the <n> digests.
 * The token is 1 to 4096 visible ASCII characters (no space, control character or byte
 * >= 0x7f, so RFC 6750 token68 fits); anything else, a missing header or n == 0 is false.
 * Every digest is compared with CRYPTO_memcmp whatever the outcome, so the time taken
 * does not depend on which digest or how many bytes matched.
 */
bool bl_auth_bearer_ok(const char *authorization, const uint8_t (*digests)[BL_SHA256_LEN],
                       size_t n);

#endif /* BL_AUTH_H */
