/*
 * blog-lb in front of three real blog-node processes (one shared LMDB store):
 *  - the same id always lands on the same node (X-Blog-Node), and that node is the id's
 *    Maglev owner over the node names (checked against shared/bl_maglev independently);
 *  - writes go to the owner and are read back through the LB;
 *  - pipelined GETs answered in order, Expect: 100-continue, slowloris cut at
 *    header_timeout while other clients are served, all with blog-node behind;
 *  - an LB given 2 of the 3 nodes moves only the third node's ids, and so does SIGHUP
 *    with 2 of the 3 nodes in the file (and back);
 *  - kill -9 of one node under a steady GET load: no failed GET (retries), the node is
 *    ejected within one second (blog_lb_node_up), re-admitted after it restarts.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "bl/bl_hash.h"
#include "bl/bl_maglev.h"
#include "lb_it.h"

#define NIDS 300
#define TOKEN "it-token"

struct node {
    char name[8];
    int port;
    pid_t pid;
    char log[1024];
};

static char *g_dir;  /* short: under $TMPDIR */
static char g_conf[1100], g_conf2[1100];
static struct node g_nodes[3];
static int g_port, g_admin, g_port2, g_admin2;
static pid_t g_lb;
static char g_ids[NIDS][25];
static int g_owner[NIDS];           /* index in g_nodes seen through the 3-node LB */
static char g_posts[5][32];         /* ids of posts created through the LB */

static void
node_start(struct node *n)
{
    char url[128];
    char *argv[] = { (char *)bl_h_bin("BLOG_NODE_BIN"), "--config", g_conf, "--name", n->name,
                     NULL };

    n->pid = bl_h_spawn(argv, n->log);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/readyz", n->port);
    if (!bl_h_wait_http(url, 200, 15000)) {
        char *log = bl_h_read_file(n->log, NULL);
        fail_msg("node %s did not become ready; log:\n%s", n->name, log ? log : "");
    }
}

static void
write_conf(const char *path, int port, int admin, int nnodes)
{
    char text[4096], tok[65], nodes[512] = "";
    size_t off = 0;
    FILE *f = popen("printf %s " TOKEN " | sha256sum", "r");

    assert_non_null(f);
    assert_non_null(fgets(tok, sizeof(tok), f));
    pclose(f);
    for (int i = 0; i < nnodes; i++) {
        off += (size_t)snprintf(nodes + off, sizeof(nodes) - off,
                                "  - {name: %s, addr: \"127.0.0.1:%d\"}\n", g_nodes[i].name,
                                g_nodes[i].port);
    }
    snprintf(text, sizeof(text),
             "cluster: {name: it, write_tokens_sha256: [\"%s\"]}\n"
             "node:\n"
             "  threads: 2\n"
             "  store: {driver: lmdb, path: \"%s/data\", map_size: 64MiB}\n"
             "  cache: {enabled: false}\n"
             "lb:\n"
             "  listeners: [{bind: \"127.0.0.1:%d\", mode: http}]\n"
             "  admin: {bind: \"127.0.0.1:%d\", metrics_public: true}\n"
             "  workers: 2\n"
             "  access_log: false\n"
             "  health: {interval: 250ms, timeout: 1s, rise: 2, fall: 2}\n"
             "  balance: {retries: 1, retry_budget: 0.2}\n"
             "  limits: {connect_timeout: 300ms, response_timeout: 5s, header_timeout: 1s}\n"
             "nodes:\n%s"
             "log: {level: info}\n",
             tok, g_dir, port, admin, nodes);
    bl_h_write_file(path, text);
}

static int
setup(void **state)
{
    char log[1100], data[1100];

    (void)state;
    g_dir = bl_h_tempdir("it_lb_cluster");
    snprintf(data, sizeof(data), "%s/data", g_dir);
    assert_int_equal(mkdir(data, 0755), 0);
    for (int i = 0; i < 3; i++) {
        snprintf(g_nodes[i].name, sizeof(g_nodes[i].name), "n%d", i + 1);
        g_nodes[i].port = bl_h_free_port();
        snprintf(g_nodes[i].log, sizeof(g_nodes[i].log), "%.900s/n%d.log", g_dir, i + 1);
    }
    g_port = bl_h_free_port();
    g_admin = bl_h_free_port();
    snprintf(g_conf, sizeof(g_conf), "%s/cluster.yaml", g_dir);
    write_conf(g_conf, g_port, g_admin, 3);
    for (int i = 0; i < 3; i++) {
        node_start(&g_nodes[i]);
    }
    snprintf(log, sizeof(log), "%s/lb.log", g_dir);
    g_lb = it_lb_start(g_conf, log, g_admin);
    for (int i = 0; i < NIDS; i++) {
        snprintf(g_ids[i], sizeof(g_ids[i]), "%08x%016llx", 0x65000000u + (unsigned)i,
                 (unsigned long long)i * 0x9E3779B97F4A7C15ull);
    }
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    bl_h_cleanup();
    return 0;
}

static int
node_index(const char *name)
{
    for (int i = 0; i < 3; i++) {
        if (name != NULL && strcmp(name, g_nodes[i].name) == 0) {
            return i;
        }
    }
    return -1;
}

/* GET /posts/<id> through the LB on <port>; returns the answering node index. */
static int
owner_via(int port, const char *id)
{
    char url[160], *name;
    struct bl_h_resp *r;
    int idx;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/posts/%s", port, id);
    r = bl_h_http("GET", url, NULL, NULL, 0);
    if (r->status != 404 && r->status != 200) {
        fail_msg("GET %s: status %ld %s", url, r->status, r->error);
    }
    name = bl_h_header(r, "X-Blog-Node");
    idx = node_index(name);
    free(name);
    bl_h_resp_free(r);
    return idx;
}

/* The Maglev owner of <id> among the first <n> nodes, computed here. */
static int
maglev_owner(const char *id, int n)
{
    const char *names[3] = { g_nodes[0].name, g_nodes[1].name, g_nodes[2].name };
    struct bl_maglev *m = bl_maglev_create(names, NULL, (size_t)n, 0);
    int o;

    assert_non_null(m);
    o = bl_maglev_lookup(m, bl_hash64(id, strlen(id)));
    bl_maglev_destroy(m);
    return o;
}

static void
test_affinity(void **state)
{
    int count[3] = { 0 };

    (void)state;
    for (int i = 0; i < NIDS; i++) {
        int a = owner_via(g_port, g_ids[i]);
        int b = owner_via(g_port, g_ids[i]);
        assert_true(a >= 0);
        if (a != b || a != maglev_owner(g_ids[i], 3)) {
            char path[1100], *log;
            snprintf(path, sizeof(path), "%s/lb.log", g_dir);
            log = bl_h_read_file(path, NULL);
            fail_msg("id %s: nodes %d then %d, Maglev owner %d; LB log:\n%s", g_ids[i], a, b,
                     maglev_owner(g_ids[i], 3), log ? log : "");
        }
        g_owner[i] = a;
        count[a]++;
    }
    for (int k = 0; k < 3; k++) {
        assert_true(count[k] > NIDS / 6);       /* each node owns a fair share */
    }
}

static void
test_writes_to_owner(void **state)
{
    char url[160], *loc, *node, id[32], auth[64];
    const char *hdrs[] = { auth, "Content-Type: application/json", NULL };
    const char *body = "{\"title\":\"lb\",\"body\":\"through the LB\",\"author\":\"it\",\"tags\":[]}";
    struct bl_h_resp *r;

    (void)state;
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", TOKEN);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/posts", g_port);
    for (int k = 0; k < 5; k++) {
        r = bl_h_http("POST", url, hdrs, body, strlen(body));
        assert_int_equal(r->status, 201);
        loc = bl_h_header(r, "Location");
        assert_non_null(loc);
        assert_int_equal(strncmp(loc, "/posts/", 7), 0);
        snprintf(id, sizeof(id), "%s", loc + 7);
        snprintf(g_posts[k], sizeof(g_posts[k]), "%s", id);
        free(loc);
        bl_h_resp_free(r);
        /* read back through the LB, from the id's owner */
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/posts/%s", g_port, id);
        r = bl_h_http("GET", url, NULL, NULL, 0);
        assert_int_equal(r->status, 200);
        assert_non_null(strstr(r->body, "through the LB"));
        node = bl_h_header(r, "X-Blog-Node");
        assert_int_equal(node_index(node), maglev_owner(id, 3));
        free(node);
        bl_h_resp_free(r);
        /* PUT goes to the same owner */
        r = bl_h_http("PUT", url, hdrs, body, strlen(body));
        assert_int_equal(r->status, 200);
        node = bl_h_header(r, "X-Blog-Node");
        assert_int_equal(node_index(node), maglev_owner(id, 3));
        free(node);
        bl_h_resp_free(r);
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/posts", g_port);
    }
    /* node-internal endpoints are not reachable through the LB */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/readyz", g_port);
    r = bl_h_http("GET", url, NULL, NULL, 0);
    assert_int_equal(r->status, 404);
    assert_null(bl_h_header(r, "X-Blog-Node"));
    bl_h_resp_free(r);
}

static void
test_remove_node(void **state)
{
    char log[1024];
    pid_t lb2;
    int moved = 0;

    (void)state;
    g_port2 = bl_h_free_port();
    g_admin2 = bl_h_free_port();
    snprintf(g_conf2, sizeof(g_conf2), "%s/two.yaml", g_dir);
    snprintf(log, sizeof(log), "%s/lb2.log", g_dir);
    write_conf(g_conf2, g_port2, g_admin2, 2);
    lb2 = it_lb_start(g_conf2, log, g_admin2);
    for (int i = 0; i < NIDS; i++) {
        int o = owner_via(g_port2, g_ids[i]);
        if (g_owner[i] != 2) {
            assert_int_equal(o, g_owner[i]);    /* n1's and n2's ids stay */
        } else {
            assert_true(o == 0 || o == 1);      /* n3's ids move */
            assert_int_equal(o, maglev_owner(g_ids[i], 2));
            moved++;
        }
    }
    assert_true(moved > 0);
    bl_h_stop(lb2, SIGTERM, 5000);
}

/* SIGHUP with 2 of the 3 nodes, then with 3 again: only n3's ids move, and come back. */
static void
test_reload_node_set(void **state)
{
    long t0;

    (void)state;
    write_conf(g_conf, g_port, g_admin, 2);
    kill(g_lb, SIGHUP);
    t0 = it_now_ms();
    while (it_metric(g_admin, "blog_lb_node_up{node=\"n3\"}", NULL) != -1.0 &&
           it_now_ms() - t0 < 3000) {
        it_sleep_ms(20);
    }
    assert_true(it_metric(g_admin, "blog_lb_node_up{node=\"n3\"}", NULL) == -1.0);
    for (int i = 0; i < NIDS; i++) {
        int o = owner_via(g_port, g_ids[i]);
        if (g_owner[i] != 2) {
            assert_int_equal(o, g_owner[i]);
        } else {
            assert_int_equal(o, maglev_owner(g_ids[i], 2));
        }
    }
    write_conf(g_conf, g_port, g_admin, 3);
    kill(g_lb, SIGHUP);
    t0 = it_now_ms();
    while (it_metric(g_admin, "blog_lb_node_up{node=\"n3\"}", NULL) != 1.0 &&
           it_now_ms() - t0 < 3000) {
        it_sleep_ms(20);
    }
    assert_true(it_metric(g_admin, "blog_lb_node_up{node=\"n3\"}", NULL) == 1.0);
    it_sleep_ms(300);   /* its first check has passed by now (interval 250 ms) */
    for (int i = 0; i < NIDS; i++) {
        assert_int_equal(owner_via(g_port, g_ids[i]), g_owner[i]);
    }
    assert_true(bl_h_alive(g_lb, NULL));
}

static int
until_n_bodies(const char *b, size_t n, int want)
{
    /* complete responses: every post body ends with "version":N} */
    (void)n;
    return it_count(b, "\"version\":") >= want && b[strlen(b) - 1] == '}';
}

static int
until_three_posts(const char *b, size_t n)
{
    return until_n_bodies(b, n, 3);
}

static int
until_head_end(const char *b, size_t n)
{
    (void)n;
    return strstr(b, "\r\n\r\n") != NULL;
}

static int
until_json_end(const char *b, size_t n)
{
    (void)n;
    return strstr(b, "\r\n\r\n") != NULL && b[strlen(b) - 1] == '}';
}

/* Pipelining, 100-continue and slowloris end to end with blog-node behind the LB. */
static void
test_protocol_end_to_end(void **state)
{
    static char buf[65536], req[2048];
    const char *p0, *p1, *p2;
    char auth[64];
    const char *body = "{\"title\":\"continue\",\"body\":\"100\",\"author\":\"it\",\"tags\":[]}";
    int fd, closed, slow[4];
    size_t off = 0;
    long t0;

    (void)state;
    /* three GETs in one write: three answers, in order */
    for (int i = 0; i < 3; i++) {
        off += (size_t)snprintf(req + off, sizeof(req) - off,
                                "GET /posts/%s HTTP/1.1\r\nHost: it\r\n\r\n", g_posts[i]);
    }
    fd = it_connect(g_port);
    assert_true(fd >= 0);
    assert_int_equal(it_send(fd, req, off), 0);
    it_recv(fd, buf, sizeof(buf), 5000, until_three_posts, &closed);
    assert_int_equal(it_count(buf, "HTTP/1.1 200 OK"), 3);
    p0 = strstr(buf, g_posts[0]);
    p1 = strstr(buf, g_posts[1]);
    p2 = strstr(buf, g_posts[2]);
    assert_non_null(p0);
    assert_non_null(p1);
    assert_non_null(p2);
    assert_true(p0 < p1 && p1 < p2);

    /* Expect: 100-continue on the same connection: 100 first, then 201 */
    snprintf(auth, sizeof(auth), "Bearer %s", TOKEN);
    off = (size_t)snprintf(req, sizeof(req),
                           "POST /posts HTTP/1.1\r\nHost: it\r\nAuthorization: %s\r\n"
                           "Content-Type: application/json\r\nExpect: 100-continue\r\n"
                           "Content-Length: %zu\r\n\r\n", auth, strlen(body));
    assert_int_equal(it_send(fd, req, off), 0);
    it_recv(fd, buf, sizeof(buf), 5000, until_head_end, &closed);
    assert_int_equal(it_status(buf), 100);
    assert_int_equal(it_send(fd, body, strlen(body)), 0);
    it_recv(fd, buf, sizeof(buf), 5000, until_json_end, &closed);
    assert_int_equal(it_status(buf), 201);
    assert_non_null(strstr(buf, "\"title\":\"continue\""));
    close(fd);

    /* slowloris: cut at header_timeout (1 s here) while normal requests are served */
    t0 = it_now_ms();
    for (int i = 0; i < 4; i++) {
        slow[i] = it_connect(g_port);
        assert_true(slow[i] >= 0);
        assert_int_equal(it_send(slow[i], "GET /posts HTTP/1.1\r\nHost: it\r\nX-A: ", 36), 0);
    }
    for (int i = 0; i < 10; i++) {
        assert_true(owner_via(g_port, g_ids[i]) >= 0);
        it_sleep_ms(50);
    }
    for (int i = 0; i < 4; i++) {
        it_recv(slow[i], buf, sizeof(buf), 3000, NULL, &closed);
        assert_true(closed);
        assert_int_equal(it_status(buf), 408);
        close(slow[i]);
    }
    assert_true(it_now_ms() - t0 < 2500);
}

struct loadgen {
    atomic_int stop;
    atomic_long ok;
    atomic_long failed;
    char last_error[256];
    int seed;
};

static void *
load_run(void *arg)
{
    struct loadgen *lg = arg;
    unsigned x = (unsigned)lg->seed * 2654435761u + 1;

    while (!atomic_load(&lg->stop)) {
        char url[160];
        struct bl_h_resp *r;
        x = x * 1103515245u + 12345u;
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/posts/%s", g_port, g_ids[(x >> 8) % NIDS]);
        r = bl_h_http("GET", url, NULL, NULL, 0);
        if (r->status == 200 || r->status == 404) {
            atomic_fetch_add(&lg->ok, 1);
        } else {
            atomic_fetch_add(&lg->failed, 1);
            snprintf(lg->last_error, sizeof(lg->last_error), "%ld %.100s %.100s", r->status,
                     r->error, r->body ? r->body : "");
        }
        bl_h_resp_free(r);
    }
    return NULL;
}

static void
test_kill_under_load(void **state)
{
    struct loadgen lg[3];
    pthread_t th[3];
    long t_kill, t_down = -1, t0;
    char up_series[64];
    long before;

    (void)state;
    memset(lg, 0, sizeof(lg));
    snprintf(up_series, sizeof(up_series), "blog_lb_node_up{node=\"%s\"}", g_nodes[1].name);
    assert_true(it_metric(g_admin, up_series, NULL) == 1.0);
    for (int i = 0; i < 3; i++) {
        lg[i].seed = i + 1;
        pthread_create(&th[i], NULL, load_run, &lg[i]);
    }
    it_sleep_ms(1000);
    before = atomic_load(&lg[0].ok) + atomic_load(&lg[1].ok) + atomic_load(&lg[2].ok);
    assert_true(before > 20);
    t_kill = it_now_ms();
    kill(g_nodes[1].pid, SIGKILL);
    while (it_now_ms() - t_kill < 3000) {
        if (it_metric(g_admin, up_series, NULL) == 0.0) {
            t_down = it_now_ms();
            break;
        }
        it_sleep_ms(20);
    }
    assert_true(t_down > 0);
    assert_true(t_down - t_kill <= 1000);          /* ejected within one second */
    it_sleep_ms(1500);                             /* keep loading with the node gone */
    /* restart it: re-admitted after `rise` good checks */
    (void)bl_h_alive(g_nodes[1].pid, NULL);
    node_start(&g_nodes[1]);
    t0 = it_now_ms();
    while (it_now_ms() - t0 < 5000 && it_metric(g_admin, up_series, NULL) != 1.0) {
        it_sleep_ms(50);
    }
    assert_true(it_metric(g_admin, up_series, NULL) == 1.0);
    it_sleep_ms(500);
    for (int i = 0; i < 3; i++) {
        atomic_store(&lg[i].stop, 1);
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        if (atomic_load(&lg[i].failed) != 0) {
            fail_msg("load thread %d: %ld failed GETs (last: %s)", i,
                     atomic_load(&lg[i].failed), lg[i].last_error);
        }
    }
    assert_true(atomic_load(&lg[0].ok) + atomic_load(&lg[1].ok) + atomic_load(&lg[2].ok) >
                before + 50);
    assert_true(it_metric(g_admin, "blog_lb_node_ejections_total{node=\"n2\"}", NULL) >= 1.0);
    /* n2 owns its ids again */
    for (int i = 0; i < NIDS; i++) {
        if (g_owner[i] == 1) {
            assert_int_equal(owner_via(g_port, g_ids[i]), 1);
        }
    }
    /* and the LB stops cleanly (exit 0: no sanitizer report either) */
    {
        int st = bl_h_stop(g_lb, SIGTERM, 8000);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_affinity),
        cmocka_unit_test(test_writes_to_owner),
        cmocka_unit_test(test_protocol_end_to_end),
        cmocka_unit_test(test_remove_node),
        cmocka_unit_test(test_reload_node_set),
        cmocka_unit_test(test_kill_under_load),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
