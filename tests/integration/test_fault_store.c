/*
 * Fault: the store becomes unwritable under load (issue 11 item 3, third case).
 *
 * Redis + three blog-node processes on one LMDB directory (hot cache on, every post warmed
 * into every node's cache) + blog-lb, with a light bl_load through the LB. The directory
 * and data.mdb are made immutable (FS_IOC_SETFLAGS, like `chattr +i`: new files and
 * writes to data.mdb fail with EPERM) for 4 s, then writable again. Asserted:
 *
 *  - at a node directly, during the outage: POST, PUT and DELETE answer
 *    503 {"error":{"code":"store_unavailable"}} with Retry-After: 1; GET of a cached post
 *    answers 200 from the cache (X-Cache: HIT, the acknowledged version); GET /posts 200;
 *  - every node's /readyz turns 503 within 2.5 s and the LB marks every node down;
 *  - through the LB during the outage: writes get 503 (store_unavailable, or no_node once
 *    every node is ejected), reads get 200 with correct data or 503 no_node: nothing else,
 *    never stale;
 *  - full recovery without restarting anything: /readyz 200, every node back in the LB,
 *    writes succeed again, no failure after recovery;
 *  - no write that failed is visible (a 503 store_unavailable never stored anything);
 *    every acknowledged post reads back through the LB and directly from every node.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cmocka.h>

#include "bl_cluster.h"
#include "bl_harness.h"
#include "bl_load.h"

static struct bl_fc g_fc;
static char g_mdb[600];
static bool g_immutable;

static int
set_immutable(const char *path, bool on)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int flags = 0, rc = -1, e = 0;

    if (fd < 0) {
        return -errno;
    }
    if (ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0) {
        flags = on ? (flags | FS_IMMUTABLE_FL) : (flags & ~FS_IMMUTABLE_FL);
        rc = ioctl(fd, FS_IOC_SETFLAGS, &flags);
    }
    e = errno;
    close(fd);
    return rc == 0 ? 0 : -e;
}

/* Runs before the harness removes the temp dir (atexit order), and after a failure. */
static void
release_store(void)
{
    if (g_immutable) {
        set_immutable(g_mdb, false);
        set_immutable(g_fc.data, false);
        g_immutable = false;
    }
}

static long
wait_readyz_all(long status, int timeout_ms)
{
    long t0 = bl_fc_now_ms();

    for (int i = 0; i < g_fc.nnodes; i++) {
        char url[96];
        long left = timeout_ms - (bl_fc_now_ms() - t0);
        snprintf(url, sizeof(url), "%s/readyz", g_fc.nodes[i].url);
        if (left <= 0 || !bl_h_wait_http(url, status, (int)left)) {
            return -1;
        }
    }
    return bl_fc_now_ms() - t0;
}

static void
expect_store_unavailable(const char *method, const char *url, const char *body)
{
    const char *hdrs[] = { "Authorization: Bearer " BL_FC_TOKEN, "Content-Type: application/json",
                           NULL };
    struct bl_h_resp *r = bl_h_http(method, url, hdrs, body, body ? strlen(body) : 0);
    char *ra = bl_h_header(r, "Retry-After");

    if (r->status != 503 || strstr(r->body, "\"code\":\"store_unavailable\"") == NULL ||
        ra == NULL || strcmp(ra, "1") != 0) {
        fail_msg("%s %s during the store outage: %ld %s (Retry-After %s); expected 503 "
                 "store_unavailable, Retry-After 1", method, url, r->status, r->body,
                 ra ? ra : "none");
    }
    free(ra);
    bl_h_resp_free(r);
}

static void
test_store_outage(void **state)
{
    struct bl_fc_opts fo = { .nnodes = 3, .redis = true };
    struct bl_load_opts lo = { .token = BL_FC_TOKEN, .conns = 6, .rate = 150,
                               .duration_ms = 12000, .w_get = 60, .w_put = 15, .w_post = 10,
                               .w_delete = 2, .w_list = 13, .seed_posts = 40, .seed = 31,
                               .tag = "store" };
    const char *post = "{\"title\":\"outage\",\"body\":\"x\",\"author\":\"fault\",\"tags\":[]}";
    struct bl_load *l;
    struct bl_load_check ck;
    const struct bl_load_rec *recs;
    const char *err;
    uint64_t t_out, t_back;
    long ms, during_ok = 0, during_503 = 0, reads_503 = 0, bad = 0;
    pid_t pids[3];
    char url[160], pinned[32];
    size_t n;
    int rc;

    (void)state;
    bl_fc_start(&g_fc, &fo);
    snprintf(g_mdb, sizeof(g_mdb), "%s/data.mdb", g_fc.data);
    atexit(release_store);
    lo.url = g_fc.lb_url;
    l = bl_load_create(&lo, &err);
    assert_non_null(l);
    assert_int_equal(bl_load_seed(l), 0);
    for (int i = 0; i < 3; i++) {
        pids[i] = g_fc.nodes[i].pid;
        assert_int_equal(bl_load_verify(l, g_fc.nodes[i].url, &ck), 0);   /* warm caches */
        assert_int_equal(ck.missing + ck.old_version + ck.read_errors, 0);
    }
    {
        /* a post the load never touches, cached on every node: served during the outage */
        const char *hdrs[] = { "Authorization: Bearer " BL_FC_TOKEN,
                               "Content-Type: application/json", NULL };
        struct bl_h_resp *r;
        char *loc;
        snprintf(url, sizeof(url), "%s/posts", g_fc.lb_url);
        r = bl_h_http("POST", url, hdrs, post, strlen(post));
        assert_int_equal(r->status, 201);
        loc = bl_h_header(r, "Location");
        assert_non_null(loc);
        snprintf(pinned, sizeof(pinned), "%s", loc + 7);
        free(loc);
        bl_h_resp_free(r);
        for (int i = 0; i < 3; i++) {
            snprintf(url, sizeof(url), "%s/posts/%s", g_fc.nodes[i].url, pinned);
            r = bl_h_http("GET", url, NULL, NULL, 0);
            assert_int_equal(r->status, 200);
            bl_h_resp_free(r);
        }
    }
    assert_int_equal(bl_load_start(l), 0);
    bl_fc_sleep_ms(2000);

    /* ---- outage ---- */
    t_out = bl_load_mono_us();
    rc = set_immutable(g_fc.data, true);
    if (rc == -EOPNOTSUPP || rc == -ENOTTY || rc == -EPERM) {
        bl_load_stop(l);
        bl_load_wait(l);
        fprintf(stderr, "SKIP: cannot make %s immutable (%s): needs root on ext4/xfs/btrfs/tmpfs\n",
                g_fc.data, strerror(-rc));
        skip();
    }
    assert_int_equal(rc, 0);
    g_immutable = true;
    assert_int_equal(set_immutable(g_mdb, true), 0);

    /* a node directly: writes refused with the clear code, reads from the cache */
    snprintf(url, sizeof(url), "%s/posts", g_fc.nodes[0].url);
    expect_store_unavailable("POST", url, post);
    snprintf(url, sizeof(url), "%s/posts/%s", g_fc.nodes[0].url, pinned);   /* the load never
                                                                                 * touches it */
    expect_store_unavailable("PUT", url, post);
    expect_store_unavailable("DELETE", url, NULL);
    for (int i = 0; i < 3; i++) {
        struct bl_h_resp *r;
        char *xc;
        snprintf(url, sizeof(url), "%s/posts/%s", g_fc.nodes[i].url, pinned);
        r = bl_h_http("GET", url, NULL, NULL, 0);
        xc = bl_h_header(r, "X-Cache");
        if (r->status != 200 || xc == NULL || strcmp(xc, "HIT") != 0 ||
            strstr(r->body, "\"version\":1") == NULL) {
            fail_msg("outage: GET of a cached post at %s: %ld X-Cache %s %s; expected 200 HIT",
                     g_fc.nodes[i].name, r->status, xc ? xc : "-", r->body);
        }
        free(xc);
        bl_h_resp_free(r);
        snprintf(url, sizeof(url), "%s/posts?limit=5", g_fc.nodes[i].url);
        r = bl_h_http("GET", url, NULL, NULL, 0);
        assert_int_equal(r->status, 200);
        bl_h_resp_free(r);
    }
    ms = wait_readyz_all(503, 2500);
    fprintf(stderr, "# outage: every /readyz 503 after %ld ms\n", ms);
    assert_true(ms >= 0);
    for (int i = 0; i < 3; i++) {
        assert_true(bl_fc_wait_node_up(&g_fc, i, 0, 2000) >= 0);
    }
    bl_fc_sleep_ms(1500);

    /* ---- recovery ---- */
    release_store();
    ms = wait_readyz_all(200, 5000);
    fprintf(stderr, "# recovery: every /readyz 200 after %ld ms\n", ms);
    assert_true(ms >= 0);
    for (int i = 0; i < 3; i++) {
        assert_true(bl_fc_wait_node_up(&g_fc, i, 1, 5000) >= 0);
    }
    t_back = bl_load_mono_us();
    fprintf(stderr, "# outage lasted %.0f ms (until every node was back in the LB)\n",
            (double)(t_back - t_out) / 1000.0);
    bl_load_wait(l);
    bl_load_print(l, "store outage");
    for (int i = 0; i < 3; i++) {
        assert_true(bl_h_alive(pids[i], NULL));
    }

    n = bl_load_records(l, &recs);
    for (size_t i = 0; i < n; i++) {
        const struct bl_load_rec *r = &recs[i];
        bool inside = r->t1_us >= t_out && r->t0_us < t_back;
        bool write = r->op == BL_LOAD_PUT || r->op == BL_LOAD_POST || r->op == BL_LOAD_DELETE;
        if (r->cls == BL_LOAD_STALE) {
            bad++;
        } else if (r->cls == BL_LOAD_FAIL) {
            if (inside && r->status == 503 &&
                (strcmp(r->code, "no_node") == 0 ||
                 (write && strcmp(r->code, "store_unavailable") == 0))) {
                during_503++;
                reads_503 += !write;
            } else {
                bad++;
            }
        } else if (inside) {
            during_ok++;
        }
    }
    fprintf(stderr, "# through the LB during the outage: %ld answered correctly, %ld refused "
            "with 503 (%ld of them reads: no_node, every node ejected by /readyz although it "
            "could serve them); %ld other failures or stale answers\n", during_ok, during_503,
            reads_503, bad);
    if (bad != 0) {
        bl_load_print_failures(l, 30);
        bl_fc_dump_logs(&g_fc, 1500);
        fail_msg("%ld failed or stale requests outside what the store outage allows", bad);
    }
    assert_true(during_503 > 0);

    /* writes work again, and nothing that failed was stored */
    {
        const char *hdrs[] = { "Authorization: Bearer " BL_FC_TOKEN,
                               "Content-Type: application/json", NULL };
        struct bl_h_resp *r;
        snprintf(url, sizeof(url), "%s/posts", g_fc.lb_url);
        r = bl_h_http("POST", url, hdrs, post, strlen(post));
        assert_int_equal(r->status, 201);
        bl_h_resp_free(r);
    }
    assert_int_equal(bl_load_verify(l, NULL, &ck), 0);
    fprintf(stderr, "# through the LB: %ld read back, %ld listed, %ld failed POSTs, %ld of them "
            "stored%s%s\n", ck.checked, ck.listed, ck.failed_posts, ck.stored_unacked,
            ck.first_problem[0] ? "; " : "", ck.first_problem);
    assert_int_equal(ck.missing + ck.old_version + ck.resurrected + ck.acked_unlisted +
                     ck.unknown_listed + ck.read_errors, 0);
    assert_int_equal(ck.stored_unacked, 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(bl_load_verify(l, g_fc.nodes[i].url, &ck), 0);
        assert_int_equal(ck.missing + ck.old_version + ck.resurrected + ck.acked_unlisted +
                         ck.read_errors + ck.stored_unacked, 0);
    }
    bl_load_destroy(l);
}

static int
teardown(void **state)
{
    (void)state;
    release_store();
    bl_h_cleanup();
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_store_outage, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
