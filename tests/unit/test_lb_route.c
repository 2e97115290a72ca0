/*
 * The LB route table: which request targets are proxied, which id is hashed, and what
 * gets a 404 from the LB itself.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "bl/bl_hash.h"
#include "lb_route.h"

struct rcase {
    const char *target;
    enum lb_route route;
    const char *id;         /* decoded id hashed, NULL when not by id */
};

static const struct rcase cases[] = {
    { "/posts", LB_ROUTE_POSTS, NULL },
    { "/posts?limit=20", LB_ROUTE_POSTS, NULL },
    { "/posts?limit=20&cursor=abc", LB_ROUTE_POSTS, NULL },
    { "/posts?", LB_ROUTE_POSTS, NULL },
    { "/posts/", LB_ROUTE_NONE, NULL },                     /* empty id */
    { "/posts/?x=1", LB_ROUTE_NONE, NULL },
    { "/posts/65a1b2c3d4e5f60718293a4b", LB_ROUTE_POST_ID, "65a1b2c3d4e5f60718293a4b" },
    { "/posts/65a1b2c3d4e5f60718293a4b?x=1", LB_ROUTE_POST_ID, "65a1b2c3d4e5f60718293a4b" },
    { "/posts/abc/", LB_ROUTE_NONE, NULL },                 /* trailing slash */
    { "/posts/abc/comments", LB_ROUTE_NONE, NULL },         /* extra segment */
    { "/posts/%61bc", LB_ROUTE_POST_ID, "abc" },            /* decoded before hashing */
    { "/posts/%41", LB_ROUTE_POST_ID, "A" },
    { "/posts/a%2", LB_ROUTE_NONE, NULL },                  /* truncated escape */
    { "/posts/a%zz", LB_ROUTE_NONE, NULL },                 /* bad escape */
    { "/posts/%", LB_ROUTE_NONE, NULL },
    { "/posts/.", LB_ROUTE_NONE, NULL },
    { "/posts/..", LB_ROUTE_NONE, NULL },
    { "/posts/%2e%2e", LB_ROUTE_NONE, NULL },               /* encoded dot-dot */
    { "/posts/...", LB_ROUTE_POST_ID, "..." },
    { "/postsx", LB_ROUTE_NONE, NULL },
    { "/posts2/a", LB_ROUTE_NONE, NULL },
    { "/Posts/a", LB_ROUTE_NONE, NULL },                    /* case-sensitive */
    { "//posts/a", LB_ROUTE_NONE, NULL },
    { "/assets", LB_ROUTE_ASSETS, NULL },
    { "/assets?x", LB_ROUTE_ASSETS, NULL },
    { "/assets/", LB_ROUTE_NONE, NULL },
    { "/assets/9f86d081884c7d659a2feaa0c55ad015", LB_ROUTE_ASSET_ID,
      "9f86d081884c7d659a2feaa0c55ad015" },
    { "/assets/x/y", LB_ROUTE_NONE, NULL },
    { "/assetsx", LB_ROUTE_NONE, NULL },
    { "/", LB_ROUTE_NONE, NULL },
    { "*", LB_ROUTE_NONE, NULL },
    { "/healthz", LB_ROUTE_NONE, NULL },
    { "/readyz", LB_ROUTE_NONE, NULL },
    { "/metrics", LB_ROUTE_NONE, NULL },
    { "/metrics?x=/posts", LB_ROUTE_NONE, NULL },
    { "/?/posts", LB_ROUTE_NONE, NULL },
    { "", LB_ROUTE_NONE, NULL },
};

static void
test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct rcase *rc = &cases[i];
        struct lb_route_match m;
        enum lb_route r = lb_route_match(rc->target, strlen(rc->target), &m);
        if (r != rc->route || m.route != rc->route) {
            fail_msg("%s: route %d, want %d", rc->target, (int)r, (int)rc->route);
        }
        if (rc->id != NULL) {
            assert_int_equal(m.by_id, 1);
            assert_int_equal(m.id_len, strlen(rc->id));
            if (m.hash != bl_hash64(rc->id, strlen(rc->id))) {
                fail_msg("%s: hash is not the hash of \"%s\"", rc->target, rc->id);
            }
        } else {
            assert_int_equal(m.by_id, 0);
        }
    }
}

static void
test_same_id_same_hash(void **state)
{
    struct lb_route_match a, b, c;

    (void)state;
    lb_route_match("/posts/abc", 10, &a);
    lb_route_match("/posts/abc?v=2", 14, &b);
    lb_route_match("/assets/abc", 11, &c);
    assert_int_equal(a.hash, b.hash);
    /* same id bytes under /assets hash the same: the id, not the path, is the key */
    assert_int_equal(a.hash, c.hash);
    lb_route_match("/posts/abd", 10, &b);
    assert_true(a.hash != b.hash);
}

static void
test_long_id(void **state)
{
    char t[LB_ROUTE_MAX_ID + 32];
    struct lb_route_match m;

    (void)state;
    memcpy(t, "/posts/", 7);
    memset(t + 7, 'a', LB_ROUTE_MAX_ID);
    assert_int_equal(lb_route_match(t, 7 + LB_ROUTE_MAX_ID, &m), LB_ROUTE_POST_ID);
    memset(t + 7, 'a', LB_ROUTE_MAX_ID + 1);
    assert_int_equal(lb_route_match(t, 7 + LB_ROUTE_MAX_ID + 1, &m), LB_ROUTE_NONE);
}

static void
test_names(void **state)
{
    (void)state;
    assert_string_equal(lb_route_name(LB_ROUTE_POST_ID), "post");
    assert_string_equal(lb_route_name(LB_ROUTE_POSTS), "posts");
    assert_string_equal(lb_route_name(LB_ROUTE_ASSET_ID), "asset");
    assert_string_equal(lb_route_name(LB_ROUTE_ASSETS), "assets");
    assert_string_equal(lb_route_name(LB_ROUTE_NONE), "none");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_same_id_same_hash),
        cmocka_unit_test(test_long_id),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
