/*
 * Fault: kill -9 of a node under a mixed load through the LB (issue 11 item 3, first case).
 *
 * Redis + three blog-node processes (hot cache on) + blog-lb. bl_load drives GET/PUT/POST/
 * DELETE/LIST through the LB (12 connections, 400 requests/s); 3 s in, n2 gets SIGKILL;
 * 3 s later it is restarted. Asserted:
 *  - the LB ejects n2 within 1 s and re-admits it within 5 s of its restart;
 *  - zero failed idempotent requests (GET, PUT, DELETE, LIST: the LB retries them);
 *  - zero stale answers (a read never shows less than the last acknowledged write, except
 *    the documented cross-node window: on a node other than the acknowledging one, within
 *    BL_LOAD_LAG_MS of the ack - docs/CONSISTENCY.md guarantee 2; see bl_load.h and
 *    test_fault_stale_window.c, which hits that window on purpose);
 *  - every failed POST was in flight when n2 died (started before the ejection, ended after
 *    the kill) - nothing else may fail;
 *  - read back after the load: every acknowledged post exists at its acknowledged version,
 *    every acknowledged delete is gone, the list walk shows every acknowledged post and no
 *    post that was never sent;
 *  - a failed POST may still have been stored (the node died after its commit, before its
 *    answer: the LB never re-sends a POST that reached a node): such posts are counted and
 *    printed as "stored but unacknowledged"; the test asserts they are among the POSTs in
 *    flight at the kill;
 *  - after re-admission, requests land on n2 again.
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

static void
test_kill_under_load(void **state)
{
    struct bl_fc_opts fo = { .nnodes = 3, .redis = true };
    struct bl_load_opts lo = { .token = BL_FC_TOKEN, .conns = 12, .rate = 400,
                               .duration_ms = 13000, .w_get = 60, .w_put = 15, .w_post = 15,
                               .w_delete = 3, .w_list = 7, .seed_posts = 100, .seed = 11,
                               .tag = "kill" };
    struct bl_load *l;
    struct bl_load_stats st;
    struct bl_load_check ck;
    const struct bl_load_rec *recs;
    const char *err;
    uint64_t t_kill, t_down, t_up;
    long down_ms, up_ms, on_n2 = 0, bad_posts = 0;
    size_t n;

    (void)state;
    bl_fc_start(&g_fc, &fo);
    lo.url = g_fc.lb_url;
    l = bl_load_create(&lo, &err);
    assert_non_null(l);
    assert_int_equal(bl_load_seed(l), 0);
    assert_int_equal(bl_load_start(l), 0);

    bl_fc_sleep_ms(3000);
    t_kill = bl_load_mono_us();
    assert_int_equal(kill(g_fc.nodes[1].pid, SIGKILL), 0);
    down_ms = bl_fc_wait_node_up(&g_fc, 1, 0, 3000);
    t_down = bl_load_mono_us();
    (void)bl_h_alive(g_fc.nodes[1].pid, NULL);
    fprintf(stderr, "# n2 killed; ejected after %ld ms\n", down_ms);
    bl_fc_sleep_ms(3000);
    bl_fc_node_start(&g_fc, 1);
    up_ms = bl_fc_wait_node_up(&g_fc, 1, 1, 5000);
    t_up = bl_load_mono_us();
    fprintf(stderr, "# n2 restarted; re-admitted after %ld ms\n", up_ms);
    bl_load_wait(l);
    bl_load_print(l, "kill -9 n2");

    if (down_ms < 0 || down_ms > 1000 || up_ms < 0) {
        bl_fc_dump_logs(&g_fc, 2000);
        fail_msg("ejection took %ld ms (limit 1000), re-admission %ld ms (limit 5000)", down_ms,
                 up_ms);
    }
    bl_load_stats(l, 0, 0, &st);
    if (st.n[BL_LOAD_GET][BL_LOAD_FAIL] + st.n[BL_LOAD_PUT][BL_LOAD_FAIL] +
            st.n[BL_LOAD_DELETE][BL_LOAD_FAIL] + st.n[BL_LOAD_LIST][BL_LOAD_FAIL] != 0 ||
        st.stale != 0) {
        bl_load_print_failures(l, 30);
        bl_fc_dump_logs(&g_fc, 2000);
        fail_msg("failed idempotent requests: GET %ld PUT %ld DELETE %ld LIST %ld; stale %ld",
                 st.n[BL_LOAD_GET][BL_LOAD_FAIL], st.n[BL_LOAD_PUT][BL_LOAD_FAIL],
                 st.n[BL_LOAD_DELETE][BL_LOAD_FAIL], st.n[BL_LOAD_LIST][BL_LOAD_FAIL], st.stale);
    }
    n = bl_load_records(l, &recs);
    for (size_t i = 0; i < n; i++) {
        const struct bl_load_rec *r = &recs[i];
        if (r->op == BL_LOAD_POST && r->cls == BL_LOAD_FAIL) {
            bool in_flight = r->t0_us <= t_down && r->t1_us >= t_kill;
            fprintf(stderr, "# failed POST: status %u %s, started %+.1f ms, ended %+.1f ms "
                    "from the kill%s\n", r->status, r->code,
                    ((double)r->t0_us - (double)t_kill) / 1000.0,
                    ((double)r->t1_us - (double)t_kill) / 1000.0,
                    in_flight ? "" : " - NOT in flight at the kill");
            bad_posts += !in_flight;
        }
        on_n2 += r->t0_us > t_up && strcmp(r->node, "n2") == 0;
    }
    assert_int_equal(bad_posts, 0);
    fprintf(stderr, "# requests answered by n2 after its re-admission: %ld\n", on_n2);
    assert_true(on_n2 > 20);
    assert_true(bl_fc_lb_metric(&g_fc, "blog_lb_node_ejections_total{node=\"n2\"}") >= 1.0);

    assert_int_equal(bl_load_verify(l, NULL, &ck), 0);
    fprintf(stderr, "# verify: %ld posts read back, %ld listed, %ld failed POSTs of which %ld "
            "stored but unacknowledged%s%s\n", ck.checked, ck.listed, ck.failed_posts,
            ck.stored_unacked, ck.first_problem[0] ? "; first: " : "", ck.first_problem);
    if (ck.missing || ck.old_version || ck.resurrected || ck.read_errors || ck.acked_unlisted ||
        ck.unknown_listed) {
        fail_msg("read back: missing %ld, old version %ld, resurrected %ld, read errors %ld, "
                 "acknowledged but unlisted %ld, unknown %ld (%s)", ck.missing, ck.old_version,
                 ck.resurrected, ck.read_errors, ck.acked_unlisted, ck.unknown_listed,
                 ck.first_problem);
    }
    if (ck.stored_unacked > 0) {
        fprintf(stderr, "# FINDING: %ld POST(s) failed at the client but were stored (node "
                "killed between its commit and its answer)\n", ck.stored_unacked);
    }
    assert_true(ck.stored_unacked <= ck.failed_posts);
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
        cmocka_unit_test_teardown(test_kill_under_load, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
