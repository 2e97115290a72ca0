/*
 * Fault: Redis stops and comes back under a read/write load through the LB (issue 11
 * item 3, second case). Redis + three blog-node processes (hot cache on, every post warmed
 * into every node's cache first) + blog-lb; bl_load drives GET/PUT/POST/DELETE/LIST.
 *
 * Phase 1: Redis is shut down (SIGTERM) for 3 s, then started again on the same port.
 * Phase 2: Redis hangs (SIGSTOP) for 2 s, then continues (SIGCONT).
 *
 * Asserted in each phase:
 *  - every node notices: blog_node_cache_coherent 0 within 2 s (the cache is bypassed);
 *  - the nodes recover without a restart (same pids): coherent 1 and LB node_up 1 on all;
 *  - outside the outage window (stop .. all nodes back in the LB) no request fails;
 *    inside it a request either succeeds with correct data or gets 503 with code
 *    coherence_unavailable (the node refuses writes it cannot invalidate) or no_node
 *    (/readyz needs the subscription, so the LB ejects every node); nothing else;
 *  - no stale answer through the LB during the whole run (also while Redis hangs: a write
 *    whose PUBLISH fails is held NODE_INVAL_HOLD_MS, until every node must have noticed);
 *  - after the phase (load stopped), every node read DIRECTLY (its own cache, no LB) shows
 *    every post at least at its last acknowledged version, deleted posts as 404, and its
 *    list walk holds every acknowledged post: no stale read after resubscribe
 *    (DESIGN §3 Coherence: flush on disconnect and on resubscribe, replay of queued
 *    invalidations).
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

static long
wait_coherent(int value, int timeout_ms)
{
    long t0 = bl_fc_now_ms();

    for (;;) {
        int n = 0;
        for (int i = 0; i < g_fc.nnodes; i++) {
            n += bl_fc_node_metric(&g_fc, i, "blog_node_cache_coherent") == (double)value;
        }
        if (n == g_fc.nnodes) {
            return bl_fc_now_ms() - t0;
        }
        if (bl_fc_now_ms() - t0 > timeout_ms) {
            return -1;
        }
        bl_fc_sleep_ms(20);
    }
}

static long
wait_all_up(int timeout_ms)
{
    long t0 = bl_fc_now_ms();

    for (int i = 0; i < g_fc.nnodes; i++) {
        long left = timeout_ms - (bl_fc_now_ms() - t0);
        if (left < 0 || bl_fc_wait_node_up(&g_fc, i, 1, (int)left) < 0) {
            return -1;
        }
    }
    return bl_fc_now_ms() - t0;
}

/* Every node directly: every post of the model at least at its acknowledged version. */
static void
check_nodes_direct(struct bl_load *l, const char *phase)
{
    for (int i = 0; i < g_fc.nnodes; i++) {
        struct bl_load_check ck;
        int rc = bl_load_verify(l, g_fc.nodes[i].url, &ck);
        fprintf(stderr, "# %s, %s direct: %ld read back, %ld listed%s%s\n", phase,
                g_fc.nodes[i].name, ck.checked, ck.listed, ck.first_problem[0] ? "; " : "",
                ck.first_problem);
        if (rc != 0 || ck.missing || ck.old_version || ck.resurrected || ck.read_errors ||
            ck.acked_unlisted || ck.unknown_listed) {
            fail_msg("%s: node %s serves stale or wrong data after resubscribe: missing %ld, "
                     "old version %ld, resurrected %ld, errors %ld, unlisted %ld (%s)", phase,
                     g_fc.nodes[i].name, ck.missing, ck.old_version, ck.resurrected,
                     ck.read_errors, ck.acked_unlisted, ck.first_problem);
        }
    }
}

/* Redis hangs: a node notices within NODE_INVAL_PING_MS + NODE_INVAL_PING_TIMEOUT_MS
 * (node/node_inval.h: 300 + 600 ms); until then it may still serve a cached version whose
 * invalidation could not be published. The margin covers scheduling on a loaded host. */
#define DETECT_BOUND_US 1500000u

/*
 * Failures outside [from, to) fail the test; inside, only 503 coherence_unavailable/no_node.
 * A stale read fails the test, except (when <hang>) one that started within DETECT_BOUND_US
 * of the hang: the bounded staleness the design allows while the nodes have not yet noticed
 * (counted and printed as a finding, with the write it missed).
 */
static void
check_failures(struct bl_load *l, uint64_t run_from, uint64_t from, uint64_t to, bool hang,
               const char *phase)
{
    const struct bl_load_rec *recs;
    size_t n = bl_load_records(l, &recs);
    long in_window = 0, bad = 0, bounded_stale = 0;

    for (size_t i = 0; i < n; i++) {
        const struct bl_load_rec *r = &recs[i];
        bool inside = r->t1_us >= from && r->t0_us < to;
        bool allowed_stale;
        if (r->t0_us < run_from || r->cls == BL_LOAD_OK) {
            continue;
        }
        if (r->cls == BL_LOAD_FAIL && inside && r->status == 503 &&
            (strcmp(r->code, "coherence_unavailable") == 0 || strcmp(r->code, "no_node") == 0)) {
            in_window++;
            continue;
        }
        allowed_stale = hang && r->cls == BL_LOAD_STALE && r->t0_us >= from &&
                        r->t0_us < from + DETECT_BOUND_US;
        bounded_stale += allowed_stale;
        bad += !allowed_stale;
        fprintf(stderr, "#   %s%s: %s post %s: status %u %s node %s version %u, started %+.1f ms "
                "from the outage start, took %.1f ms\n", r->cls == BL_LOAD_STALE ? "STALE" : "FAIL",
                allowed_stale ? " (within the detection bound)" : "",
                r->op == BL_LOAD_GET ? "GET" : r->op == BL_LOAD_PUT ? "PUT" : r->op == BL_LOAD_POST
                ? "POST" : r->op == BL_LOAD_DELETE ? "DELETE" : "LIST", bl_load_post_id(l, r->post),
                r->status, r->code, r->node, r->version, ((double)r->t0_us - (double)from) / 1000.0,
                (double)(r->t1_us - r->t0_us) / 1000.0);
        for (size_t k = i; r->cls == BL_LOAD_STALE && k-- > 0;) {
            const struct bl_load_rec *w = &recs[k];
            if (w->post == r->post && w->cls == BL_LOAD_OK &&
                (w->op == BL_LOAD_PUT || w->op == BL_LOAD_POST)) {
                fprintf(stderr, "#     it missed: %s acknowledged by %s at version %u, "
                        "%+.1f..%+.1f ms from the outage start\n",
                        w->op == BL_LOAD_PUT ? "PUT" : "POST", w->node, w->version,
                        ((double)w->t0_us - (double)from) / 1000.0,
                        ((double)w->t1_us - (double)from) / 1000.0);
                break;
            }
        }
    }
    fprintf(stderr, "# %s: %ld requests refused with 503 during the outage, %ld stale reads "
            "within the detection bound, %ld other failures or stale answers\n", phase,
            in_window, bounded_stale, bad);
    if (bounded_stale > 0) {
        fprintf(stderr, "# FINDING: %ld read(s) through the LB served a version older than an "
                "acknowledged write while Redis hung (before the nodes noticed)\n",
                bounded_stale);
    }
    if (bad != 0) {
        bl_load_print_failures(l, 30);
        bl_fc_dump_logs(&g_fc, 1500);
        fail_msg("%s: %ld failed or stale requests outside what the outage allows", phase, bad);
    }
}

static void
test_redis_outage(void **state)
{
    /* a write whose PUBLISH times out is held NODE_INVAL_HOLD_MS (1.1 s): the LB must wait
     * longer than that for its answer (the product default is 30 s) */
    struct bl_fc_opts fo = { .nnodes = 3, .redis = true, .response_timeout = "2s" };
    struct bl_load_opts lo = { .token = BL_FC_TOKEN, .conns = 8, .rate = 300,
                               .duration_ms = 10000, .w_get = 60, .w_put = 20, .w_post = 8,
                               .w_delete = 2, .w_list = 10, .seed_posts = 60, .seed = 21,
                               .tag = "redis" };
    pid_t pids[3];
    struct bl_load *l;
    const char *err;
    uint64_t run1, t_stop, t_back, run2;
    long ms;

    (void)state;
    bl_fc_start(&g_fc, &fo);
    lo.url = g_fc.lb_url;
    l = bl_load_create(&lo, &err);
    assert_non_null(l);
    assert_int_equal(bl_load_seed(l), 0);
    for (int i = 0; i < 3; i++) {
        struct bl_load_check ck;
        pids[i] = g_fc.nodes[i].pid;
        /* warm every post into every node's cache (and check them) */
        assert_int_equal(bl_load_verify(l, g_fc.nodes[i].url, &ck), 0);
        assert_int_equal(ck.missing + ck.old_version + ck.read_errors, 0);
    }

    /* ---- phase 1: Redis shut down, restarted 3 s later ---- */
    run1 = bl_load_mono_us();
    assert_int_equal(bl_load_start(l), 0);
    bl_fc_sleep_ms(2000);
    t_stop = bl_load_mono_us();
    assert_true(bl_h_stop(g_fc.redis_pid, SIGTERM, 5000) >= 0);
    ms = wait_coherent(0, 2000);
    fprintf(stderr, "# phase 1: Redis stopped; every node not coherent after %ld ms\n", ms);
    assert_true(ms >= 0);
    bl_fc_sleep_ms(3000);
    bl_fc_redis_start(&g_fc);
    ms = wait_coherent(1, 5000);
    fprintf(stderr, "# phase 1: Redis back; every node coherent after %ld ms\n", ms);
    assert_true(ms >= 0);
    ms = wait_all_up(5000);
    t_back = bl_load_mono_us();
    fprintf(stderr, "# phase 1: every node back in the LB after %ld more ms\n", ms);
    assert_true(ms >= 0);
    bl_load_wait(l);
    bl_load_print(l, "phase 1");
    for (int i = 0; i < 3; i++) {
        assert_true(bl_h_alive(pids[i], NULL));         /* recovered without a restart */
        assert_int_equal(g_fc.nodes[i].pid, pids[i]);
    }
    check_failures(l, run1, t_stop, t_back, false, "phase 1");
    check_nodes_direct(l, "phase 1");

    /* ---- phase 2: Redis hangs (SIGSTOP) for 2 s ---- */
    bl_load_set_duration(l, 8000);
    run2 = bl_load_mono_us();
    assert_int_equal(bl_load_start(l), 0);
    bl_fc_sleep_ms(2000);
    t_stop = bl_load_mono_us();
    assert_int_equal(kill(g_fc.redis_pid, SIGSTOP), 0);
    ms = wait_coherent(0, 2000);
    fprintf(stderr, "# phase 2: Redis stopped (SIGSTOP); every node not coherent after %ld ms\n",
            ms);
    if (ms < 0) {
        kill(g_fc.redis_pid, SIGCONT);
        fail_msg("a node still claims coherence 2 s after Redis hung");
    }
    bl_fc_sleep_ms(2000);
    assert_int_equal(kill(g_fc.redis_pid, SIGCONT), 0);
    ms = wait_coherent(1, 5000);
    fprintf(stderr, "# phase 2: Redis continued; every node coherent after %ld ms\n", ms);
    assert_true(ms >= 0);
    ms = wait_all_up(5000);
    t_back = bl_load_mono_us();
    assert_true(ms >= 0);
    bl_load_wait(l);
    bl_load_print(l, "phases 1+2");
    for (int i = 0; i < 3; i++) {
        assert_true(bl_h_alive(pids[i], NULL));
    }
    /* strict: a write whose PUBLISH failed is answered only after NODE_INVAL_HOLD_MS, when
     * every node has noticed the hang, so no read after its ack may be stale (finding 5) */
    check_failures(l, run2, t_stop, t_back, false, "phase 2");
    check_nodes_direct(l, "phase 2");
    {
        struct bl_load_check ck;
        assert_int_equal(bl_load_verify(l, NULL, &ck), 0);
        fprintf(stderr, "# through the LB: %ld read back, %ld listed, %ld failed POSTs, %ld of "
                "them stored\n", ck.checked, ck.listed, ck.failed_posts, ck.stored_unacked);
        assert_int_equal(ck.missing + ck.old_version + ck.resurrected + ck.acked_unlisted +
                         ck.unknown_listed + ck.read_errors, 0);
    }
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
        cmocka_unit_test_teardown(test_redis_outage, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
