/*
 * Fault: blog-lb reloads (SIGHUP) under a mixed load (issue 11 item 3, fourth case).
 *
 * SIGHUP re-reads the file and applies its nodes: list (docs/LB.md "Signals"; other lb
 * settings need a restart). Redis + three blog-node processes + blog-lb; bl_load drives
 * 8 keep-alive connections at 300 requests/s for 9 s while the test
 *   1. sends SIGHUP twice with the file unchanged;
 *   2. rewrites the file without n3 and sends SIGHUP (n3 is removed: no new requests, its
 *      in-flight ones finish, its ids move to their next preference);
 *   3. puts n3 back and sends SIGHUP (its ids return);
 *   4. drains n2 through the admin API (POST /nodes/n2/drain), 2 s later undrains it;
 *   5. reloads through the admin API (POST /reload).
 * Asserted: zero failed requests of any kind and zero stale answers across all of it;
 * the same LB process keeps running; each reload is logged ("reloaded the node set");
 * between 300 ms after the removal and the re-add no request is answered by n3, and from
 * 300 ms after the drain until the undrain none by n2 (GET /nodes shows it "draining");
 * after the re-add / undrain they answer again; read back of every acknowledged write is
 * exact.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bl_cluster.h"
#include "bl_harness.h"
#include "bl_load.h"

static struct bl_fc g_fc;

static int
log_count(const char *needle)
{
    char *log = bl_h_read_file(g_fc.lb_log, NULL);
    int n = 0;

    for (const char *p = log ? strstr(log, needle) : NULL; p != NULL; p = strstr(p + 1, needle)) {
        n++;
    }
    free(log);
    return n;
}

/* Sends SIGHUP and waits until the reload is logged (<before> lines seen so far). */
static void
hup(int before)
{
    long t0 = bl_fc_now_ms();

    assert_int_equal(kill(g_fc.lb_pid, SIGHUP), 0);
    while (log_count("reloaded the node set") <= before) {
        if (bl_fc_now_ms() - t0 > 3000) {
            bl_fc_dump_logs(&g_fc, 2000);
            fail_msg("SIGHUP: no 'reloaded the node set' line within 3 s");
        }
        bl_fc_sleep_ms(20);
    }
}

/* POST <path> on the admin listener; returns the status, body in <out> (may be NULL). */
static long
admin_post(const char *path, char **out)
{
    char url[160];
    struct bl_h_resp *r;
    long st;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", g_fc.lb_admin, path);
    r = bl_h_http("POST", url, NULL, "", 0);
    st = r->status;
    if (out != NULL) {
        *out = strdup(r->body != NULL ? r->body : "");
    }
    bl_h_resp_free(r);
    return st;
}

static void
test_reload_under_load(void **state)
{
    struct bl_fc_opts fo = { .nnodes = 3, .redis = true };
    struct bl_load_opts lo = { .token = BL_FC_TOKEN, .conns = 8, .rate = 300,
                               .duration_ms = 13000, .seed_posts = 60, .seed = 51,
                               .tag = "hup" };
    struct bl_load *l;
    struct bl_load_stats st;
    struct bl_load_check ck;
    const struct bl_load_rec *recs;
    const char *err;
    uint64_t t_removed, t_readded, t_drained, t_undrained;
    long on_n3_removed = 0, on_n3_after = 0, on_n2_drained = 0, on_n2_after = 0;
    char *body, url[160];
    struct bl_h_resp *r;
    size_t n;

    (void)state;
    bl_fc_start(&g_fc, &fo);
    lo.url = g_fc.lb_url;
    l = bl_load_create(&lo, &err);
    assert_non_null(l);
    assert_int_equal(bl_load_seed(l), 0);
    assert_int_equal(bl_load_start(l), 0);
    bl_fc_sleep_ms(1000);
    hup(0);                                         /* unchanged file */
    bl_fc_sleep_ms(500);
    hup(1);
    bl_fc_sleep_ms(1000);
    bl_fc_write_conf(&g_fc, 0x3);                   /* n1, n2 */
    hup(2);
    t_removed = bl_load_mono_us();
    bl_fc_sleep_ms(2500);
    bl_fc_write_conf(&g_fc, 0x7);                   /* n3 back */
    t_readded = bl_load_mono_us();
    hup(3);
    assert_true(bl_fc_wait_node_up(&g_fc, 2, 1, 3000) >= 0);
    bl_fc_sleep_ms(1000);
    /* admin drain of n2 under load, then undrain */
    assert_int_equal(admin_post("/nodes/n2/drain", &body), 200);
    t_drained = bl_load_mono_us();
    assert_non_null(strstr(body, "\"state\":\"draining\""));
    free(body);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/nodes", g_fc.lb_admin);
    r = bl_h_http("GET", url, NULL, NULL, 0);
    assert_int_equal(r->status, 200);
    assert_non_null(strstr(r->body, "\"state\":\"draining\""));
    bl_h_resp_free(r);
    bl_fc_sleep_ms(2000);
    assert_int_equal(admin_post("/nodes/n2/undrain", NULL), 200);
    t_undrained = bl_load_mono_us();
    bl_fc_sleep_ms(500);
    /* reload through the admin API (file unchanged) */
    assert_int_equal(admin_post("/reload", &body), 200);
    assert_non_null(strstr(body, "\"reloaded\":true"));
    free(body);
    bl_load_wait(l);
    bl_load_print(l, "SIGHUP reloads");
    assert_true(bl_h_alive(g_fc.lb_pid, NULL));
    bl_load_stats(l, 0, 0, &st);
    if (st.fail != 0 || st.stale != 0) {
        bl_load_print_failures(l, 30);
        bl_fc_dump_logs(&g_fc, 2000);
        fail_msg("%ld failed and %ld stale requests across the reloads", st.fail, st.stale);
    }
    assert_true(st.total > 2000);
    n = bl_load_records(l, &recs);
    for (size_t i = 0; i < n; i++) {
        uint64_t t0 = recs[i].t0_us;
        if (strcmp(recs[i].node, "n3") == 0) {
            on_n3_removed += t0 > t_removed + 300000 && t0 < t_readded;
            on_n3_after += t0 > t_readded + 500000 && t0 < t_drained;
        } else if (strcmp(recs[i].node, "n2") == 0) {
            on_n2_drained += t0 > t_drained + 300000 && t0 < t_undrained;
            on_n2_after += t0 > t_undrained + 200000;
        }
    }
    fprintf(stderr, "# requests answered by n3 while removed: %ld; after the re-add: %ld\n",
            on_n3_removed, on_n3_after);
    fprintf(stderr, "# requests answered by n2 while drained: %ld; after the undrain: %ld\n",
            on_n2_drained, on_n2_after);
    assert_int_equal(on_n3_removed, 0);
    assert_true(on_n3_after > 20);
    assert_int_equal(on_n2_drained, 0);
    assert_true(on_n2_after > 20);
    assert_int_equal(bl_load_verify(l, NULL, &ck), 0);
    assert_int_equal(ck.missing + ck.old_version + ck.resurrected + ck.acked_unlisted +
                     ck.unknown_listed + ck.read_errors + ck.stored_unacked, 0);
    bl_load_destroy(l);
}

static int
teardown(void **state)
{
    (void)state;
    bl_h_cleanup();
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_reload_under_load, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
