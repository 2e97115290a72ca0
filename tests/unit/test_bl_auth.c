/*
 * Bearer-token checks against SHA-256 digests. The digests below were computed with
 * `printf %s TOKEN | sha256sum`, independently of the code under test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "bl/bl_auth.h"
#include "bl/bl_err.h"

#define SECRET_HEX "930bbdc51b6aed5c2a5678fd6e28dee7a05e8a4b643cfc0b4427c3efb86c0d94"
#define OTHER_HEX "d9298a10d1b0735837dc4bd85dac641b0f3cef27a47e5d53a54f2f3f5b2fcffa"
/* sha256("") */
#define EMPTY_HEX "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static void
test_parse_digest(void **state)
{
    uint8_t d[BL_SHA256_LEN];
    uint8_t keep[BL_SHA256_LEN];

    (void)state;
    assert_int_equal(bl_auth_parse_digest(SECRET_HEX, d), 0);
    assert_int_equal(d[0], 0x93);
    assert_int_equal(d[1], 0x0b);
    assert_int_equal(d[31], 0x94);
    assert_int_equal(bl_auth_parse_digest(
        "930BBDC51B6AED5C2A5678FD6E28DEE7A05E8A4B643CFC0B4427C3EFB86C0D94", keep), 0);
    assert_memory_equal(d, keep, BL_SHA256_LEN);            /* any case */

    memcpy(keep, d, sizeof(d));
    assert_int_equal(bl_auth_parse_digest("", d), BL_EINVAL);
    assert_int_equal(bl_auth_parse_digest(NULL, d), BL_EINVAL);
    assert_int_equal(bl_auth_parse_digest(SECRET_HEX "0", d), BL_EINVAL);     /* 65 */
    assert_int_equal(bl_auth_parse_digest(
        "930bbdc51b6aed5c2a5678fd6e28dee7a05e8a4b643cfc0b4427c3efb86c0d9", d),  /* 63 */
        BL_EINVAL);
    assert_int_equal(bl_auth_parse_digest(
        "930bbdc51b6aed5c2a5678fd6e28dee7a05e8a4b643cfc0b4427c3efb86c0d9g", d),
        BL_EINVAL);
    assert_int_equal(bl_auth_parse_digest(
        " 930bbdc51b6aed5c2a5678fd6e28dee7a05e8a4b643cfc0b4427c3efb86c0d9", d),
        BL_EINVAL);
    assert_memory_equal(d, keep, BL_SHA256_LEN);            /* untouched on error */
}

static void
test_bearer(void **state)
{
    uint8_t digests[3][BL_SHA256_LEN];

    (void)state;
    assert_int_equal(bl_auth_parse_digest(SECRET_HEX, digests[0]), 0);
    assert_int_equal(bl_auth_parse_digest(OTHER_HEX, digests[1]), 0);
    assert_int_equal(bl_auth_parse_digest(EMPTY_HEX, digests[2]), 0);

    /* right token, against one digest and as any of several */
    assert_true(bl_auth_bearer_ok("Bearer secret-token", digests, 1));
    assert_true(bl_auth_bearer_ok("Bearer secret-token", digests, 2));
    assert_true(bl_auth_bearer_ok("Bearer other", digests, 2));
    assert_false(bl_auth_bearer_ok("Bearer other", digests, 1));   /* not configured */
    assert_true(bl_auth_bearer_ok("Bearer other", digests + 1, 1));
    /* scheme is case-insensitive; one or more spaces */
    assert_true(bl_auth_bearer_ok("bearer secret-token", digests, 1));
    assert_true(bl_auth_bearer_ok("BEARER secret-token", digests, 1));
    assert_true(bl_auth_bearer_ok("Bearer    secret-token", digests, 1));

    /* wrong token, near misses */
    assert_false(bl_auth_bearer_ok("Bearer secret-tokem", digests, 2));
    assert_false(bl_auth_bearer_ok("Bearer secret-token2", digests, 2));
    assert_false(bl_auth_bearer_ok("Bearer secret-toke", digests, 2));
    assert_false(bl_auth_bearer_ok("Bearer Secret-token", digests, 2));
    /* wrong scheme or shape */
    assert_false(bl_auth_bearer_ok("Basic secret-token", digests, 2));
    assert_false(bl_auth_bearer_ok("Bearersecret-token", digests, 2));
    assert_false(bl_auth_bearer_ok("Bearer\tsecret-token", digests, 2));
    assert_false(bl_auth_bearer_ok("secret-token", digests, 2));
    assert_false(bl_auth_bearer_ok(" Bearer secret-token", digests, 2));
    assert_false(bl_auth_bearer_ok("Bearer secret-token ", digests, 2));
    assert_false(bl_auth_bearer_ok("Bearer secret token", digests, 2));
    /* missing header, empty token: never ok, even with sha256("") configured */
    assert_false(bl_auth_bearer_ok(NULL, digests, 3));
    assert_false(bl_auth_bearer_ok("", digests, 3));
    assert_false(bl_auth_bearer_ok("Bearer", digests, 3));
    assert_false(bl_auth_bearer_ok("Bearer ", digests, 3));
    assert_false(bl_auth_bearer_ok("Bearer    ", digests, 3));
    /* control characters */
    assert_false(bl_auth_bearer_ok("Bearer secret-token\r\n", digests, 2));
    assert_false(bl_auth_bearer_ok("Bearer secret\x01token", digests, 2));
    assert_false(bl_auth_bearer_ok("Bearer secret-token\x7f", digests, 2));
    /* no digests configured */
    assert_false(bl_auth_bearer_ok("Bearer secret-token", digests, 0));
    assert_false(bl_auth_bearer_ok("Bearer secret-token", NULL, 3));
}

static void
test_long_token(void **state)
{
    static char hdr[8192];
    uint8_t d[1][BL_SHA256_LEN];

    (void)state;
    assert_int_equal(bl_auth_parse_digest(SECRET_HEX, d[0]), 0);
    memcpy(hdr, "Bearer ", 7);
    memset(hdr + 7, 'x', sizeof(hdr) - 8);
    hdr[sizeof(hdr) - 1] = '\0';
    assert_false(bl_auth_bearer_ok(hdr, d, 1));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_digest),
        cmocka_unit_test(test_bearer),
        cmocka_unit_test(test_long_token),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
