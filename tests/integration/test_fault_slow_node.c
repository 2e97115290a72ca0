/*
 * Fault: a node that stops answering (SIGSTOP: its sockets still accept, nothing answers)
 * under a mixed load through the LB (issue 11 item 3, fifth case).
 *
 * Redis + three blog-node processes + blog-lb with response_timeout 1s, node_max_conns 8,
 * queue_size 64, queue_timeout 3s and bounded_load 0 (so every request for n2's ids goes to
 * n2 and piles up there). bl_load drives 24 connections at 400 requests/s; 2 s in, n2 gets
 * SIGSTOP; 2.5 s after its ejection, SIGCONT. Asserted:
 *  - the LB ejects n2 within 2 s of the stop (first response timeout);
 *  - zero failed idempotent requests (a GET/PUT/DELETE/LIST that timed out on n2 is
 *    retried on the id's next preference), zero stale answers;
 *  - a POST can fail only with 504 gateway_timeout and only if it started before the
 *    ejection (it reached n2; the LB never re-sends a POST that reached a node);
 *  - no pile-up: while n2 is stopped, the LB's connections to it (blog_lb_node_connections,
 *    and the established sockets to its port counted by the kernel, + 1 for the active
 *    health check) never exceed node_max_conns, and the LB's client connections never
 *    exceed the load's 24 (+ the test's own metric request);
 *  - after SIGCONT n2 is re-admitted within 3 s and answers requests again;
 *  - read back: every acknowledged write is there. A POST that timed out may still be
 *    stored once n2 resumes (it sat in the stopped process's socket): counted and printed
 *    as "stored but unacknowledged" (a finding: see docs/TESTING-FAULTS.md).
 *
 * Why queue_timeout 3s: requests waiting in n2's queue are moved to the next preference
 * when n2 is ejected (lb_conn_reroute_queued), but the ejection itself only comes with the
 * first response timeout (1 s) after the stop: with queue_timeout <= response_timeout a
 * request queued at the moment of the stop would race the ejection.
 *
 * If n2 happens to be stopped inside an LMDB write transaction it holds the writer mutex
 * of the shared environment and every node's writes wait for it (a finding, printed with
 * the stacks of n1): that attempt is not asserted and the stop is repeated (4 tries).
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "bl_cluster.h"
#include "bl_harness.h"
#include "bl_load.h"

#define NODE_CAP 8

static struct bl_fc g_fc;

static size_t
discard(char *p, size_t sz, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return sz * n;
}
static pid_t g_stopped = -1;

/* Established TCP connections to 127.0.0.1:<port> (kernel view, both directions summed
 * only on the connecting side). */
static int
established_to(int port)
{
    char cmd[160], line[64];
    FILE *f;
    int n = -1;

    snprintf(cmd, sizeof(cmd), "ss -Htn state established '( dport = :%d )' 2>/dev/null | wc -l",
             port);
    f = popen(cmd, "r");
    if (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        n = atoi(line);
    }
    if (f != NULL) {
        pclose(f);
    }
    return n;
}

/* A direct PUT of <id> at node <i> with a 1.5 s limit: true when it is answered 200. */
static bool
write_probe(int i, const char *id)
{
    const char *body = "{\"title\":\"probe\",\"body\":\"p\",\"author\":\"fault\",\"tags\":[]}";
    struct curl_slist *h = NULL;
    char url[160];
    long status = 0;
    CURL *e = curl_easy_init();
    CURLcode cc;

    snprintf(url, sizeof(url), "%s/posts/%s", g_fc.nodes[i].url, id);
    h = curl_slist_append(h, "Authorization: Bearer " BL_FC_TOKEN);
    h = curl_slist_append(h, "Content-Type: application/json");
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "PUT");
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 1500L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    cc = curl_easy_perform(e);
    if (cc == CURLE_OK) {
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    }
    curl_easy_cleanup(e);
    curl_slist_free_all(h);
    return status == 200;
}

/* Where the threads of <pid> wait (gdb, bounded): evidence for the report. */
static void
print_stacks(pid_t pid)
{
    char cmd[256];

    snprintf(cmd, sizeof(cmd), "timeout 20 gdb -p %d -batch -ex 'thread apply all bt 6' 2>/dev/null "
             "| grep -E '^(Thread|#[0-9])' | grep -E 'Thread|mdb_|pthread_mutex|node_' | head -30 >&2",
             (int)pid);
    if (access("/usr/bin/gdb", X_OK) == 0) {
        fprintf(stderr, "# stacks of n1 (pid %d) while n2 is stopped:\n", (int)pid);
        fflush(stderr);
        if (system(cmd) != 0) {
            fprintf(stderr, "# (gdb could not print the stacks)\n");
        }
    }
}

static void
test_sigstop_node(void **state)
{
    struct bl_fc_opts fo = {
        .nnodes = 3, .redis = true,
        .limits = "node_max_conns: 8, queue_size: 64, queue_timeout: 3s",
        /* no bounded-load spill: every request for n2's ids goes to n2 and piles up */
        .balance = "retries: 1, retry_budget: 0.2, bounded_load: 0",
    };
    struct bl_load_opts lo = { .token = BL_FC_TOKEN, .conns = 24, .rate = 400,
                               .duration_ms = 8000, .w_get = 60, .w_put = 15, .w_post = 12,
                               .w_delete = 3, .w_list = 10, .seed_posts = 100, .seed = 41,
                               .tag = "slow" };
    const char *post = "{\"title\":\"probe\",\"body\":\"p\",\"author\":\"fault\",\"tags\":[]}";
    const char *hdrs[] = { "Authorization: Bearer " BL_FC_TOKEN, "Content-Type: application/json",
                           NULL };
    struct bl_load *l;
    struct bl_load_stats st;
    struct bl_load_check ck;
    const struct bl_load_rec *recs;
    struct bl_h_resp *r;
    const char *err;
    char url[160], probe_id[32], *loc;
    uint64_t run_from = 0, t_stop = 0, t_down = 0, t_up = 0;
    long down_ms = -1, up_ms = -1, on_n2 = 0, bad_posts = 0, timed_out_posts = 0;
    double max_lb_conns = 0, max_clients = 0;
    int max_sock = 0, lock_hits = 0, attempt;
    size_t n;

    (void)state;
    bl_fc_start(&g_fc, &fo);
    snprintf(url, sizeof(url), "%s/posts", g_fc.lb_url);
    r = bl_h_http("POST", url, hdrs, post, strlen(post));
    assert_int_equal(r->status, 201);
    loc = bl_h_header(r, "Location");
    assert_non_null(loc);
    snprintf(probe_id, sizeof(probe_id), "%s", loc + 7);
    free(loc);
    bl_h_resp_free(r);
    lo.url = g_fc.lb_url;
    l = bl_load_create(&lo, &err);
    assert_non_null(l);
    assert_int_equal(bl_load_seed(l), 0);

    for (attempt = 0; attempt < 4; attempt++) {
        run_from = bl_load_mono_us();
        bl_load_set_duration(l, 8000);
        assert_int_equal(bl_load_start(l), 0);
        bl_fc_sleep_ms(2000);
        t_stop = bl_load_mono_us();
        g_stopped = g_fc.nodes[1].pid;
        assert_int_equal(kill(g_stopped, SIGSTOP), 0);
        if (!write_probe(0, probe_id)) {
            /* n2 was stopped inside an LMDB write transaction: it holds the writer mutex
             * of the shared environment, so every other node's writes wait for it */
            lock_hits++;
            fprintf(stderr, "# FINDING (attempt %d): n2 stopped while holding the shared LMDB "
                    "write lock: a write at n1 does not complete within 1.5 s\n", attempt + 1);
            if (lock_hits == 1) {
                print_stacks(g_fc.nodes[0].pid);
            }
            assert_int_equal(kill(g_stopped, SIGCONT), 0);
            g_stopped = -1;
            bl_load_wait(l);
            bl_load_stats(l, run_from, UINT64_MAX, &st);
            fprintf(stderr, "#   that run: %ld requests, %ld failed (not asserted); retrying\n",
                    st.total, st.fail);
            for (int i = 0; i < 3; i++) {
                assert_true(bl_fc_wait_node_up(&g_fc, i, 1, 5000) >= 0);
            }
            continue;
        }
        down_ms = bl_fc_wait_node_up(&g_fc, 1, 0, 2000);
        t_down = bl_load_mono_us();
        fprintf(stderr, "# n2 stopped; ejected after %.0f ms\n", (double)(t_down - t_stop) / 1000.0);
        /* while it stays stopped: sample the connection counts */
        for (long t0 = bl_fc_now_ms(); bl_fc_now_ms() - t0 < 2500;) {
            double c = bl_fc_lb_metric(&g_fc, "blog_lb_node_connections{node=\"n2\"}");
            double cl = bl_fc_lb_metric(&g_fc, "blog_lb_client_connections");
            int s = established_to(g_fc.nodes[1].port);
            max_lb_conns = c > max_lb_conns ? c : max_lb_conns;
            max_clients = cl > max_clients ? cl : max_clients;
            max_sock = s > max_sock ? s : max_sock;
            bl_fc_sleep_ms(100);
        }
        assert_int_equal(kill(g_stopped, SIGCONT), 0);
        g_stopped = -1;
        up_ms = bl_fc_wait_node_up(&g_fc, 1, 1, 3000);
        t_up = bl_load_mono_us();
        fprintf(stderr, "# n2 continued; re-admitted after %ld ms\n", up_ms);
        bl_load_wait(l);
        break;
    }
    if (attempt == 4) {
        fail_msg("n2 held the shared LMDB write lock at each of 4 stops");
    }
    fprintf(stderr, "# while stopped: LB connections to n2 at most %.0f (gauge), %d (kernel); "
            "LB client connections at most %.0f; cap %d\n", max_lb_conns, max_sock, max_clients,
            NODE_CAP);
    bl_load_stats(l, run_from, UINT64_MAX, &st);
    fprintf(stderr, "# asserted run: %ld requests, %ld ok, %ld failed, %ld stale\n", st.total,
            st.ok, st.fail, st.stale);

    if (down_ms < 0 || up_ms < 0) {
        bl_fc_dump_logs(&g_fc, 2000);
        fail_msg("ejection %ld ms (limit 2000), re-admission %ld ms (limit 3000)", down_ms, up_ms);
    }
    assert_true(max_lb_conns <= NODE_CAP);
    assert_true(max_sock <= NODE_CAP + 1);      /* + the active health check's connection */
    assert_true(max_clients <= 24 + 2);
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
        const struct bl_load_rec *rc = &recs[i];
        if (rc->t0_us < run_from) {
            continue;
        }
        if (rc->op == BL_LOAD_POST && rc->cls == BL_LOAD_FAIL) {
            bool ok = rc->status == 504 && rc->t0_us <= t_down && rc->t1_us >= t_stop;
            timed_out_posts += ok;
            if (!ok) {
                fprintf(stderr, "# unexpected POST failure: %u %s at %+.1f ms from the stop\n",
                        rc->status, rc->code, ((double)rc->t0_us - (double)t_stop) / 1000.0);
            }
            bad_posts += !ok;
        }
        on_n2 += rc->t0_us > t_up && strcmp(rc->node, "n2") == 0;
    }
    fprintf(stderr, "# POSTs timed out on the stopped node: %ld; requests on n2 after "
            "re-admission: %ld\n", timed_out_posts, on_n2);
    assert_int_equal(bad_posts, 0);
    assert_true(on_n2 > 20);

    assert_int_equal(bl_load_verify(l, NULL, &ck), 0);
    fprintf(stderr, "# verify (all runs): %ld read back, %ld listed, %ld failed POSTs, %ld stored "
            "but unacknowledged%s%s\n", ck.checked, ck.listed, ck.failed_posts, ck.stored_unacked,
            ck.first_problem[0] ? "; " : "", ck.first_problem);
    if (ck.stored_unacked > 0) {
        fprintf(stderr, "# FINDING: %ld POST(s) that failed at the client (504 from the LB) "
                "were stored once the stopped node resumed\n", ck.stored_unacked);
    }
    assert_int_equal(ck.missing + ck.old_version + ck.resurrected + ck.acked_unlisted +
                     ck.unknown_listed + ck.read_errors, 0);
    assert_true(ck.stored_unacked <= ck.failed_posts);
    bl_load_destroy(l);
}

static int
teardown(void **state)
{
    (void)state;
    if (g_stopped > 0) {
        kill(g_stopped, SIGCONT);
    }
    bl_h_cleanup();
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_sigstop_node, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
