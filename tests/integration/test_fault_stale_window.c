/*
 * Focused reproduction of cross-node stale reads (issue 4 guarantee 2, issue 11 fault tests).
 *
 * Redis + three blog-node processes (hot cache on) + blog-lb with `by_id: p2c`, so a GET of
 * an id lands on any node, usually not the one that acknowledged the id's last write.
 * bl_load drives PUT/GET on only 6 posts with 12 connections, so most GETs of a post are
 * sent within a millisecond or two of the acknowledgement of its last PUT, on another node:
 * the cross-node window of docs/CONSISTENCY.md is hit thousands of times per run.
 * Asserted, with bl_load's model of docs/CONSISTENCY.md: zero failed requests and zero stale
 * reads - a GET never shows less than the version acknowledged before it was sent, except
 * on a node other than the acknowledging one within BL_LOAD_LAG_MS of the acknowledgement
 * (guarantee 2: the invalidation is still on its way). Such "lagged" reads are counted and
 * printed: this is the window that made integration.fault_node_kill fail once in CI when
 * the generator still counted them as stale; with lag_ms = -1 (strict) this test fails
 * within seconds on this machine. The node that acknowledged a write never lags
 * (guarantee 1), and no read lags by more than the window.
 */
#include <setjmp.h>
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
test_cross_node_reads_after_writes(void **state)
{
    struct bl_fc_opts fo = { .nnodes = 3, .redis = true,
                             .balance = "by_id: p2c, retries: 1, retry_budget: 0.2" };
    struct bl_load_opts lo = { .token = BL_FC_TOKEN, .conns = 6, .rate = 0,
                               .duration_ms = 6000, .w_get = 60, .w_put = 40,
                               .seed_posts = 6, .seed = 7, .tag = "window" };
    struct bl_load *l;
    struct bl_load_stats st;
    const struct bl_load_rec *recs;
    const char *err;
    long cross = 0;
    size_t n;

    (void)state;
    bl_fc_start(&g_fc, &fo);
    lo.url = g_fc.lb_url;
    l = bl_load_create(&lo, &err);
    assert_non_null(l);
    assert_int_equal(bl_load_seed(l), 0);
    assert_int_equal(bl_load_run(l), 0);
    bl_load_print(l, "cross-node reads");
    bl_load_stats(l, 0, 0, &st);
    n = bl_load_records(l, &recs);
    for (size_t i = 0; i < n; i++) {
        const struct bl_load_rec *r = &recs[i];

        cross += r->op == BL_LOAD_GET && r->ack_us != 0 && r->t0_us - r->ack_us < 2000 &&
                 strcmp(r->node, r->ack_node) != 0;
    }
    fprintf(stderr, "# GETs sent < 2 ms after the ack of a write on another node: %ld, of "
            "which lagged (previous version): %ld\n", cross, st.lagged);
    if (st.stale != 0 || st.fail != 0) {
        bl_load_print_failures(l, 30);
        bl_fc_dump_logs(&g_fc, 2000);
        fail_msg("stale %ld, failed %ld", st.stale, st.fail);
    }
    assert_true(cross > 100);
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
        cmocka_unit_test_teardown(test_cross_node_reads_after_writes, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
