/*
 * bl_hash64: XXH3-64 fixed vectors (computed once with libxxhash 0.8.1 and pinned: the
 * values route ids, so they must never change), the published XXH3 of "", seeds, and
 * that the hash does not depend on the buffer's alignment.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "bl/bl_hash.h"

struct vec {
    const char *in;
    uint64_t want;
    uint64_t want_seed42;
};

static const struct vec vecs[] = {
    { "", 0x2d06800538d394c2ull, 0xb029411ff43d84d2ull },
    { "a", 0xe6c632b61e964e1full, 0x4c437dd47f0716f4ull },
    { "abc", 0x78af5f94892f3950ull, 0xd8438def21bbdcc3ull },
    { "post-1", 0x7470855fd695f98eull, 0x2b8b63770e804a13ull },
    { "01HZX3Q9ZJ6M5K2W8T7Y4R1N0P", 0x007304a274362376ull, 0x865325b37d3259cbull },
    { "The quick brown fox jumps over the lazy dog", 0xce7d19a5418fb365ull,
      0xb4a3f3c36b3c7d26ull },
};

static void
test_published_empty(void **state)
{
    (void)state;
    /* The value published with the XXH3 specification for the empty input, seed 0. */
    assert_true(bl_hash64("", 0) == 0x2D06800538D394C2ull);
    assert_true(bl_hash64(NULL, 0) == 0x2D06800538D394C2ull);
    assert_true(bl_hash64_seed("", 0, 0) == 0x2D06800538D394C2ull);
}

static void
test_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(vecs) / sizeof(vecs[0]); i++) {
        size_t len = strlen(vecs[i].in);

        assert_true(bl_hash64(vecs[i].in, len) == vecs[i].want);
        assert_true(bl_hash64_seed(vecs[i].in, len, 0) == vecs[i].want);
        assert_true(bl_hash64_seed(vecs[i].in, len, 42) == vecs[i].want_seed42);
    }
}

/* A long input exercises XXH3's >240-byte path. */
static void
test_long_input(void **state)
{
    unsigned char b[300];

    (void)state;
    for (int i = 0; i < 300; i++) {
        b[i] = (unsigned char)(i * 7 + 3);
    }
    assert_true(bl_hash64(b, sizeof(b)) == 0xfd9aa0f0d62e0227ull);
    /* one flipped bit changes the hash */
    b[150] ^= 1;
    assert_true(bl_hash64(b, sizeof(b)) != 0xfd9aa0f0d62e0227ull);
}

static void
test_alignment_and_seed(void **state)
{
    char buf[64 + 8];
    const char *id = "01HZX3Q9ZJ6M5K2W8T7Y4R1N0P";
    size_t len = strlen(id);

    (void)state;
    for (size_t off = 0; off < 8; off++) {
        memcpy(buf + off, id, len);
        assert_true(bl_hash64(buf + off, len) == 0x007304a274362376ull);
    }
    assert_true(bl_hash64_seed(id, len, 1) != bl_hash64_seed(id, len, 2));
    assert_true(bl_hash64(id, len) != bl_hash64(id, len - 1));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_published_empty),
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_long_input),
        cmocka_unit_test(test_alignment_and_seed),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
