/*
 * MongoDB driver tests that need no database (the conformance suite with a real one runs in
 * integration.store_mongo): config errors, bad inputs answered without a round trip, and a
 * database that is not there -> BL_EUNAVAIL from every operation, quickly, never a crash.
 */
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "bl/bl_conf.h"
#include "bl/bl_err.h"
#include "node_store.h"

static uint64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* A 127.0.0.1 port nobody listens on (bound, then closed). */
static int
dead_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int port;

    assert_true(fd >= 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static void
conf_init(struct bl_conf_store *c, const char *uri)
{
    memset(c, 0, sizeof(*c));
    c->driver = BL_STORE_MONGODB;
    c->uri = uri != NULL ? strdup(uri) : NULL;
    c->database = strdup("blog");
    c->write_concern = strdup("majority");
    c->read_preference = strdup("primary");
    c->server_selection_timeout_ms = 300;
    c->socket_timeout_ms = 1000;
}

static void
conf_deinit(struct bl_conf_store *c)
{
    free(c->uri);
    free(c->database);
    free(c->write_concern);
    free(c->read_preference);
}

static void
set_str(char **dst, const char *v)
{
    free(*dst);
    *dst = v != NULL ? strdup(v) : NULL;
}

/* Opening with <c> fails with BL_ECONF and an error message containing <needle>. */
static void
expect_conf_error(struct bl_conf_store *c, const char *needle)
{
    struct node_store *s = NULL;
    char *err = NULL;

    assert_int_equal(node_store_open_rc(c, &s, &err), BL_ECONF);
    assert_null(s);
    assert_non_null(err);
    if (strstr(err, needle) == NULL) {
        fail_msg("error '%s' does not mention '%s'", err, needle);
    }
    free(err);
}

static void
test_config_errors(void **state)
{
    struct bl_conf_store c;

    (void)state;
    conf_init(&c, NULL);
    expect_conf_error(&c, "node.store.uri");
    set_str(&c.uri, "mongodb://");
    expect_conf_error(&c, "bad node.store.uri");
    set_str(&c.uri, "mongodb://127.0.0.1:1/");
    set_str(&c.write_concern, "0");
    expect_conf_error(&c, "write_concern");
    set_str(&c.write_concern, "-3");
    expect_conf_error(&c, "write_concern");
    set_str(&c.write_concern, "majority");
    set_str(&c.read_preference, "fastest");
    expect_conf_error(&c, "read_preference");
    set_str(&c.read_preference, "secondaryPreferred");
    set_str(&c.database, "a.b");
    expect_conf_error(&c, "database");
    set_str(&c.database, "$x");
    expect_conf_error(&c, "database");
    conf_deinit(&c);
}

/* The database is down (nothing listens): open works, every operation is BL_EUNAVAIL. */
static void
test_unreachable(void **state)
{
    struct bl_conf_store c;
    struct node_store *s = NULL;
    struct node_post p, got;
    struct node_post_list l;
    struct node_asset a;
    char uri[128], *err = NULL;
    char path[] = "/tmp/blog-mongo-asset.XXXXXX";
    uint64_t t0;
    int fd;

    (void)state;
    snprintf(uri, sizeof(uri), "mongodb://127.0.0.1:%d/", dead_port());
    conf_init(&c, uri);
    /* Tag sets and numbers are valid write concerns; the read preference is case-blind. */
    set_str(&c.write_concern, "2");
    set_str(&c.read_preference, "PRIMARYPREFERRED");
    t0 = now_ms();
    assert_int_equal(node_store_open_rc(&c, &s, &err), 0);
    assert_null(err);
    assert_non_null(s);
    assert_string_equal(s->ops->name, "mongodb");
    assert_true(now_ms() - t0 < 3000);

    t0 = now_ms();
    assert_int_equal(s->ops->health(s), BL_EUNAVAIL);
    assert_int_equal(s->ops->health(s), BL_EUNAVAIL);  /* cached: no second wait */
    assert_true(now_ms() - t0 < 2500);

    memset(&p, 0, sizeof(p));
    node_store_new_id(p.id);
    p.title = strdup("t");
    p.body = strdup("b");
    p.author = strdup("a");
    p.version = 1;
    t0 = now_ms();
    assert_int_equal(s->ops->insert(s, &p), BL_EUNAVAIL);
    assert_non_null(strstr(node_store_last_error(), "mongodb insert"));
    assert_int_equal(s->ops->get(s, p.id, &got), BL_EUNAVAIL);
    node_post_deinit(&got);
    assert_int_equal(s->ops->list(s, NULL, 20, &l), BL_EUNAVAIL);
    assert_null(l.posts);
    assert_int_equal(l.n, 0);
    assert_int_equal(s->ops->replace(s, &p, 1), BL_EUNAVAIL);
    assert_int_equal(s->ops->replace(s, &p, 0), BL_EUNAVAIL);
    assert_int_equal(s->ops->remove(s, p.id, 1), BL_EUNAVAIL);
    assert_int_equal(s->ops->asset_get(s,
        "0000000000000000000000000000000000000000000000000000000000000000", &a), BL_EUNAVAIL);
    assert_null(a.data);
    node_asset_deinit(&a);
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "abc", 3), 3);
    close(fd);
    assert_int_equal(s->ops->asset_put(s,
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "image/png", path, 3),
        BL_EUNAVAIL);
    unlink(path);
    /* Each call waited at most about server_selection_timeout (300 ms). */
    assert_true(now_ms() - t0 < 8 * 1500);
    node_post_deinit(&p);
    node_store_close(s);
    conf_deinit(&c);
}

/* Malformed ids and cursors are answered without asking the (absent) database. */
static void
test_bad_inputs(void **state)
{
    struct bl_conf_store c;
    struct node_store *s = NULL;
    struct node_post got;
    struct node_post_list l;
    struct node_asset a;
    char uri[128], *err = NULL;

    (void)state;
    snprintf(uri, sizeof(uri), "mongodb://127.0.0.1:%d/", dead_port());
    conf_init(&c, uri);
    assert_int_equal(node_store_open_rc(&c, &s, &err), 0);
    assert_int_equal(s->ops->get(s, "not-an-id", &got), BL_ENOTFOUND);
    node_post_deinit(&got);
    assert_int_equal(s->ops->get(s, "0123456789abcdef0123456g", &got), BL_ENOTFOUND);
    node_post_deinit(&got);
    assert_int_equal(s->ops->remove(s, "xyz", 0), BL_ENOTFOUND);
    assert_int_equal(s->ops->list(s, "zz", 5, &l), BL_EINVAL);
    assert_int_equal(l.n, 0);
    assert_int_equal(s->ops->asset_get(s, "../../etc/passwd", &a), BL_ENOTFOUND);
    assert_int_equal(a.fd, -1);
    node_asset_deinit(&a);
    assert_int_equal(s->ops->asset_get(s,
        "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD", &a), BL_ENOTFOUND);
    node_asset_deinit(&a);
    assert_int_equal(s->ops->asset_put(s, "short", "image/png", "/nonexistent", 1), BL_EINVAL);
    node_store_close(s);
    conf_deinit(&c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_unreachable),
    };

    return cmocka_run_group_tests_name("mongodb driver without a database", tests, NULL, NULL);
}
