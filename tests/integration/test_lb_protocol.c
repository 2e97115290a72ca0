/*
 * blog-lb HTTP behaviour end to end, against the python echo backend
 * (tests/integration/lb_test_backend.py), which reports the request it received:
 * hop-by-hop stripping, X-Forwarded-For/-Proto, X-Request-Id, pipelining, 100-continue,
 * chunked and large streamed bodies, HTTP/1.0 keep-alive, Connection: close, parser
 * rejections, slowloris cut at header_timeout, queue overflow and timeout (503 +
 * Retry-After), client limits, retries (GET re-sent, POST never), admin token, graceful
 * SIGTERM.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "lb_it.h"

/* printf %s it-admin | sha256sum */
#define ADMIN_TOKEN "it-admin"

static char *g_dir;
static int g_be_port[2];
static pid_t g_be[2];
static int g_port, g_admin;
static pid_t g_lb;
static char g_admin_sha[65];

static void
write_conf(const char *path, int port, int admin, const char *extra_lb, const int *be,
           int nbe)
{
    char text[4096], nodes[512] = "";
    size_t off = 0;

    for (int i = 0; i < nbe; i++) {
        off += (size_t)snprintf(nodes + off, sizeof(nodes) - off,
                                "  - {name: b%d, addr: \"127.0.0.1:%d\"}\n", i + 1, be[i]);
    }
    snprintf(text, sizeof(text),
             "cluster: {name: it}\n"
             "node: {cache: {enabled: false}}\n"
             "lb:\n"
             "  listeners: [{bind: \"127.0.0.1:%d\", mode: http}]\n"
             "  admin: {bind: \"127.0.0.1:%d\", token_sha256: \"%s\"}\n"
             "  health: {interval: 200ms, timeout: 2s, rise: 1, fall: 3}\n"
             "  shutdown_timeout: 5s\n"
             "%s"
             "nodes:\n%s"
             "log: {level: info}\n",
             port, admin, g_admin_sha, extra_lb, nodes);
    bl_h_write_file(path, text);
}

static int
setup(void **state)
{
    char conf[1024], log[1024];

    (void)state;
    /* the digest of ADMIN_TOKEN, computed independently with the shell */
    {
        FILE *f = popen("printf %s " ADMIN_TOKEN " | sha256sum", "r");
        assert_non_null(f);
        assert_non_null(fgets(g_admin_sha, sizeof(g_admin_sha), f));
        pclose(f);
    }
    g_dir = bl_h_tempdir("it_lb_protocol");
    for (int i = 0; i < 2; i++) {
        char name[8];
        snprintf(name, sizeof(name), "b%d", i + 1);
        g_be_port[i] = bl_h_free_port();
        g_be[i] = it_backend(g_dir, name, g_be_port[i], NULL, NULL);
    }
    g_port = bl_h_free_port();
    g_admin = bl_h_free_port();
    snprintf(conf, sizeof(conf), "%s/lb.yaml", g_dir);
    snprintf(log, sizeof(log), "%s/lb.log", g_dir);
    write_conf(conf, g_port, g_admin,
               "  workers: 2\n"
               "  limits: {header_timeout: 1s, max_header_bytes: 4KiB, max_body: 12MiB}\n",
               g_be_port, 2);
    g_lb = it_lb_start(conf, log, g_admin);
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    bl_h_cleanup();
    return 0;
}

static int until_error(const char *b, size_t n);

static int
until_head(const char *b, size_t n)
{
    (void)n;
    return strstr(b, "\r\n\r\n") != NULL;
}

/* One raw request on a new connection; returns the response text (static). */
static char *
raw(const char *req, size_t reqlen, int timeout_ms, int *closed)
{
    static char buf[65536];
    int fd = it_connect(g_port);
    size_t n;

    assert_true(fd >= 0);
    assert_int_equal(it_send(fd, req, reqlen), 0);
    n = it_recv(fd, buf, sizeof(buf), timeout_ms, until_error, closed);
    if (until_error(buf, n) && !*closed) {
        /* a complete LB error answer: did the LB also close? (short wait) */
        static char more[256];
        int c2;
        it_recv(fd, more, sizeof(more), 300, NULL, &c2);
        *closed = c2;
    }
    close(fd);
    return buf;
}

static void
test_headers(void **state)
{
    char url[128], *v;
    const char *hdrs[] = {
        "Connection: keep-alive, X-Secret",
        "X-Secret: s3",
        "Keep-Alive: timeout=5",
        "Proxy-Connection: keep-alive",
        "TE: trailers",
        "X-Custom: kept",
        "X-Forwarded-For: 203.0.113.7",
        "X-Forwarded-Proto: https",
        NULL,
    };
    struct bl_h_resp *r;

    (void)state;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/posts/abc", g_port);
    r = bl_h_http("GET", url, hdrs, NULL, 0);
    assert_int_equal(r->status, 200);
    /* what the backend saw */
    assert_null(strstr(r->body, "\"Connection\""));
    assert_null(strstr(r->body, "\"Keep-Alive\""));
    assert_null(strstr(r->body, "\"Proxy-Connection\""));
    assert_null(strstr(r->body, "\"TE\""));
    assert_null(strstr(r->body, "X-Secret"));
    assert_non_null(strstr(r->body, "[\"X-Custom\", \"kept\"]"));
    assert_non_null(strstr(r->body, "[\"X-Forwarded-For\", \"203.0.113.7, 127.0.0.1\"]"));
    assert_non_null(strstr(r->body, "[\"X-Forwarded-Proto\", \"http\"]"));
    assert_int_equal(it_count(r->body, "X-Forwarded-Proto"), 1);
    v = strstr(r->body, "[\"X-Request-Id\", \"");
    assert_non_null(v);
    v += strlen("[\"X-Request-Id\", \"");
    for (int i = 0; i < 24; i++) {
        assert_non_null(strchr("0123456789abcdef", v[i]));
    }
    assert_int_equal(v[24], '"');
    /* what the client saw: the backend's Keep-Alive is hop-by-hop, X-Blog-Node is not */
    assert_null(bl_h_header(r, "Keep-Alive"));
    v = bl_h_header(r, "X-Blog-Node");
    assert_non_null(v);
    free(v);
    bl_h_resp_free(r);

    /* a client X-Request-Id is passed on as it is, once */
    {
        const char *h2[] = { "X-Request-Id: client-chosen-42", NULL };
        r = bl_h_http("GET", url, h2, NULL, 0);
        assert_int_equal(r->status, 200);
        assert_non_null(strstr(r->body, "[\"X-Request-Id\", \"client-chosen-42\"]"));
        assert_int_equal(it_count(r->body, "X-Request-Id"), 1);
        bl_h_resp_free(r);
    }
}

/* Number of complete echo bodies in <b> (each ends with "body_sha256": "<64 hex>"}). */
static int
echo_bodies(const char *b, size_t n)
{
    int k = 0;
    const char *key = "\"body_sha256\": \"";

    for (const char *p = strstr(b, key); p != NULL; p = strstr(p + 1, key)) {
        if ((size_t)(p - b) + strlen(key) + 66 <= n) {
            k++;
        }
    }
    return k;
}

static int
until_three(const char *b, size_t n)
{
    return echo_bodies(b, n) >= 3;
}

static int
until_one(const char *b, size_t n)
{
    return echo_bodies(b, n) >= 1;
}

static int
until_error(const char *b, size_t n)
{
    (void)n;
    return strstr(b, "}}\n") != NULL;
}

static void
test_pipelining(void **state)
{
    static char buf[65536];
    const char *req = "GET /posts/p1 HTTP/1.1\r\nHost: a\r\n\r\n"
                      "GET /posts/p2?x=1 HTTP/1.1\r\nHost: a\r\n\r\n"
                      "POST /posts HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nxyz";
    int fd = it_connect(g_port), closed;
    char *a, *b, *c;

    (void)state;
    assert_true(fd >= 0);
    assert_int_equal(it_send(fd, req, strlen(req)), 0);     /* one write */
    it_recv(fd, buf, sizeof(buf), 5000, until_three, &closed);
    assert_int_equal(it_count(buf, "HTTP/1.1 200 OK"), 3);
    a = strstr(buf, "\"path\": \"/posts/p1\"");
    b = strstr(buf, "\"path\": \"/posts/p2?x=1\"");
    c = strstr(buf, "\"path\": \"/posts\"");
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_true(a < b && b < c);                            /* in order */
    assert_non_null(strstr(c, "\"body_len\": 3"));
    /* and the connection is still usable */
    assert_int_equal(it_send(fd, "GET /posts/p4 HTTP/1.1\r\nHost: a\r\n\r\n", 35), 0);
    it_recv(fd, buf, sizeof(buf), 5000, until_one, &closed);
    assert_int_equal(it_status(buf), 200);
    close(fd);
}

static void
test_expect_continue(void **state)
{
    static char buf[8192];
    const char *head = "PUT /posts/e1 HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
                       "Content-Length: 5\r\n\r\n";
    int fd = it_connect(g_port), closed;

    (void)state;
    assert_true(fd >= 0);
    assert_int_equal(it_send(fd, head, strlen(head)), 0);
    it_recv(fd, buf, sizeof(buf), 5000, until_head, &closed);
    assert_int_equal(it_status(buf), 100);                 /* before any body byte */
    assert_int_equal(it_send(fd, "hello", 5), 0);
    it_recv(fd, buf, sizeof(buf), 5000, until_one, &closed);
    assert_non_null(strstr(buf, "HTTP/1.1 200 OK"));
    assert_non_null(strstr(buf, "\"body_len\": 5"));
    close(fd);
}

static void
test_bodies(void **state)
{
    char url[128], sha[65], cmd[1100], path[1024];
    size_t n = 10u << 20;
    char *big = malloc(n);
    struct bl_h_resp *r;
    const char *chunked[] = { "Transfer-Encoding: chunked", NULL };
    FILE *f;

    (void)state;
    assert_non_null(big);
    for (size_t i = 0; i < n; i++) {
        big[i] = (char)(i * 2654435761u >> 13);
    }
    snprintf(path, sizeof(path), "%s/big.bin", g_dir);
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(big, 1, n, f), n);
    fclose(f);
    snprintf(cmd, sizeof(cmd), "sha256sum %s", path);
    f = popen(cmd, "r");
    assert_non_null(fgets(sha, sizeof(sha), f));
    pclose(f);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/assets", g_port);
    /* 10 MiB with Content-Length, streamed */
    r = bl_h_http("POST", url, NULL, big, n);
    assert_int_equal(r->status, 200);
    assert_non_null(strstr(r->body, "\"body_len\": 10485760"));
    assert_non_null(strstr(r->body, sha));
    bl_h_resp_free(r);
    /* 10 MiB chunked */
    r = bl_h_http("POST", url, chunked, big, n);
    assert_int_equal(r->status, 200);
    assert_non_null(strstr(r->body, "\"body_len\": 10485760"));
    assert_non_null(strstr(r->body, sha));
    assert_non_null(strstr(r->body, "[\"Transfer-Encoding\", \"chunked\"]"));
    bl_h_resp_free(r);
    free(big);
    /* a chunked response passes through */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/posts/chunked", g_port);
    r = bl_h_http("GET", url, NULL, NULL, 0);
    assert_int_equal(r->status, 200);
    assert_non_null(strstr(r->body, "\"path\": \"/posts/chunked\""));
    bl_h_resp_free(r);
}

static void
test_http10_and_close(void **state)
{
    static char buf[16384];
    int fd = it_connect(g_port), closed;
    const char *r10ka = "GET /posts/h1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";

    (void)state;
    /* HTTP/1.0 + keep-alive: kept, and said so */
    assert_int_equal(it_send(fd, r10ka, strlen(r10ka)), 0);
    it_recv(fd, buf, sizeof(buf), 5000, until_one, &closed);
    assert_int_equal(it_status(buf), 200);
    assert_non_null(strstr(buf, "Connection: keep-alive\r\n"));
    assert_false(closed);
    memset(buf, 0, 64);
    assert_int_equal(it_send(fd, r10ka, strlen(r10ka)), 0);
    it_recv(fd, buf, sizeof(buf), 5000, until_one, &closed);
    assert_int_equal(it_status(buf), 200);
    close(fd);
    /* plain HTTP/1.0: closed after the response */
    raw("GET /posts/h2 HTTP/1.0\r\n\r\n", 26, 5000, &closed);
    assert_true(closed);
    /* HTTP/1.1 Connection: close */
    {
        const char *rc = "GET /posts/h3 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
        char *out = raw(rc, strlen(rc), 5000, &closed);
        assert_int_equal(it_status(out), 200);
        assert_non_null(strstr(out, "Connection: close\r\n"));
        assert_true(closed);
    }
}

struct rej {
    const char *req;
    int status;
    int closes;
};

static void
test_rejections(void **state)
{
    static char longline[9000], bighead[6000];
    const struct rej cases[] = {
        { "GET /posts/1 HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
          "Transfer-Encoding: chunked\r\n\r\n", 400, 1 },
        { "GET /posts/1 HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
          400, 1 },
        { "GET /posts/1 HTTP/1.1\r\n\r\n", 400, 1 },                         /* no Host */
        { "GET /posts/1 HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400, 1 }, /* obs-fold */
        { "GET /posts/1 HTTP/1.1\r\nHost : a\r\n\r\n", 400, 1 },
        { "GET /posts/1 HTTP/1.1\nHost: a\r\n\r\n", 400, 1 },                /* bare LF */
        { "GET /posts/1 HTTP/2.0\r\nHost: a\r\n\r\n", 505, 1 },
        { "POST /posts HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999\r\n\r\n", 413, 1 },
        { "POST /posts HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400,
          1 },
        { longline, 414, 1 },
        { bighead, 431, 1 },
        { "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n", 404, 0 },
        { "GET /readyz HTTP/1.1\r\nHost: a\r\n\r\n", 404, 0 },
        { "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n", 404, 0 },
        { "GET /admin HTTP/1.1\r\nHost: a\r\n\r\n", 404, 0 },
        { "GET /posts/ HTTP/1.1\r\nHost: a\r\n\r\n", 404, 0 },
    };

    (void)state;
    snprintf(longline, sizeof(longline), "GET /posts/%08000d HTTP/1.1\r\nHost: a\r\n\r\n", 1);
    snprintf(bighead, sizeof(bighead), "GET /posts/1 HTTP/1.1\r\nHost: a\r\nX-Big: %05000d\r\n\r\n",
             1);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int closed;
        char *out = raw(cases[i].req, strlen(cases[i].req), 3000, &closed);
        if (!cases[i].closes) {
            assert_false(closed);           /* keep-alive after a 404 */
        }
        if (it_status(out) != cases[i].status) {
            fail_msg("case %zu: status %d, want %d:\n%.200s", i, it_status(out), cases[i].status,
                     out);
        }
        assert_non_null(strstr(out, "X-Request-Id: "));
        assert_non_null(strstr(out, "{\"error\":{\"code\":\""));
        if (cases[i].closes) {
            assert_true(closed);
            assert_non_null(strstr(out, "Connection: close"));
        }
    }
}

static void
test_slowloris(void **state)
{
    int fds[8], closed;
    static char buf[4096];
    long t0 = it_now_ms();
    char url[128];

    (void)state;
    for (int i = 0; i < 8; i++) {
        fds[i] = it_connect(g_port);
        assert_true(fds[i] >= 0);
        assert_int_equal(it_send(fds[i], "GET /posts/slow HTTP/1.1\r\nHo", 28), 0);
    }
    /* normal clients are served meanwhile */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/posts/fast", g_port);
    for (int i = 0; i < 5; i++) {
        struct bl_h_resp *r = bl_h_http("GET", url, NULL, NULL, 0);
        assert_int_equal(r->status, 200);
        bl_h_resp_free(r);
        for (int k = 0; k < 8; k++) {
            (void)it_send(fds[k], "s", 1);          /* a byte now and then: not enough */
        }
        it_sleep_ms(100);
    }
    /* header_timeout is 1 s: every slow connection is answered 408 and closed by ~1.2 s */
    for (int i = 0; i < 8; i++) {
        it_recv(fds[i], buf, sizeof(buf), 3000, NULL, &closed);
        assert_true(closed);
        assert_int_equal(it_status(buf), 408);
        close(fds[i]);
    }
    assert_true(it_now_ms() - t0 < 2500);
    assert_true(it_now_ms() - t0 >= 900);
}

static void
test_admin_token(void **state)
{
    char url[128], auth[128];
    struct bl_h_resp *r;
    const char *h[] = { auth, NULL };

    (void)state;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", g_admin);
    r = bl_h_http("GET", url, NULL, NULL, 0);
    assert_int_equal(r->status, 401);
    bl_h_resp_free(r);
    snprintf(auth, sizeof(auth), "Authorization: Bearer wrong");
    r = bl_h_http("GET", url, h, NULL, 0);
    assert_int_equal(r->status, 401);
    bl_h_resp_free(r);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", ADMIN_TOKEN);
    r = bl_h_http("GET", url, h, NULL, 0);
    assert_int_equal(r->status, 200);
    assert_non_null(strstr(r->body, "blog_lb_requests_total{route=\"post\",code=\"200\"}"));
    assert_non_null(strstr(r->body, "blog_lb_requests_total{route=\"none\",code=\"404\"}"));
    assert_non_null(strstr(r->body, "blog_lb_request_duration_seconds_bucket{route=\"post\""));
    assert_non_null(strstr(r->body, "blog_lb_node_up{node=\"b1\"} 1"));
    assert_non_null(strstr(r->body, "blog_lb_node_inflight{node=\"b2\"}"));
    assert_non_null(strstr(r->body, "blog_lb_queue_depth{node=\"b1\"}"));
    assert_non_null(strstr(r->body, "blog_lb_client_connections "));
    bl_h_resp_free(r);
}

/* ---- queue overflow: one worker, one connection per node, a queue of one ---------- */

struct qreq {
    int port;
    const char *path;
    const char *method;         /* NULL = GET; POST sends "{}" */
    long status;
    char retry_after[16];
    char node[32];              /* X-Blog-Node of the answer */
    long ms;
};

static void *
qreq_run(void *arg)
{
    struct qreq *q = arg;
    char url[160];
    long t0 = it_now_ms();
    struct bl_h_resp *r;
    char *ra;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", q->port, q->path);
    if (q->method != NULL && strcmp(q->method, "POST") == 0) {
        r = bl_h_http("POST", url, NULL, "{}", 2);
    } else {
        r = bl_h_http(q->method != NULL ? q->method : "GET", url, NULL, NULL, 0);
    }
    q->status = r->status;
    ra = bl_h_header(r, "Retry-After");
    snprintf(q->retry_after, sizeof(q->retry_after), "%s", ra ? ra : "");
    free(ra);
    ra = bl_h_header(r, "X-Blog-Node");
    snprintf(q->node, sizeof(q->node), "%s", ra ? ra : "");
    free(ra);
    q->ms = it_now_ms() - t0;
    bl_h_resp_free(r);
    return NULL;
}

static void
test_queue_overflow(void **state)
{
    char conf[1024], log[1024];
    int port = bl_h_free_port(), admin = bl_h_free_port();
    int be = g_be_port[0];
    pid_t lb;
    struct qreq q[4];
    pthread_t th[4];
    int n503 = 0, n200 = 0, timed_out = 0;

    (void)state;
    snprintf(conf, sizeof(conf), "%s/lbq.yaml", g_dir);
    snprintf(log, sizeof(log), "%s/lbq.log", g_dir);
    write_conf(conf, port, admin,
               "  workers: 1\n"
               "  limits: {node_max_conns: 1, queue_size: 1, queue_timeout: 1s}\n",
               &be, 1);
    lb = it_lb_start(conf, log, admin);
    memset(q, 0, sizeof(q));
    for (int i = 0; i < 4; i++) {
        q[i].port = port;
        q[i].path = "/posts/slow?ms=3000";
        pthread_create(&th[i], NULL, qreq_run, &q[i]);
        it_sleep_ms(100);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
    }
    for (int i = 0; i < 4; i++) {
        if (q[i].status == 200) {
            n200++;
            assert_true(q[i].ms >= 2800);
        } else {
            assert_int_equal(q[i].status, 503);
            assert_string_equal(q[i].retry_after, "1");
            n503++;
            if (q[i].ms >= 850) {
                timed_out++;        /* the queued one: 503 after queue_timeout */
                assert_true(q[i].ms < 2500);
            } else {
                assert_true(q[i].ms < 800);  /* queue full: at once */
            }
        }
    }
    assert_int_equal(n200, 1);
    assert_int_equal(n503, 3);
    assert_int_equal(timed_out, 1);
    assert_int_equal(bl_h_stop(lb, SIGTERM, 8000) >= 0, 1);
}

/* ---- queued requests move when their node is ejected --------------------------------
 * One worker, node_max_conns 1, a queue, bounded_load 0 (every request for one id goes to
 * its Maglev owner). A slow GET holds the owner's only connection, three GETs and a POST
 * for the same id wait in its queue; the owner is SIGSTOPped and the active health checks
 * eject it: the queued requests are answered by the other node well before queue_timeout
 * (nothing had been sent to the owner for them, so the POST moves too). */

static void
test_queue_reroute(void **state)
{
    char conf[1024], log[1024], url[256];
    int port = bl_h_free_port(), admin = bl_h_free_port(), be[2], owner;
    pid_t bp[2], lb;
    const char *names[2] = { "q1", "q2" };
    struct qreq slow, q[4];
    pthread_t th_slow, th[4];
    struct bl_h_resp *r;
    char *node;
    long t_stop;

    (void)state;
    for (int i = 0; i < 2; i++) {
        be[i] = bl_h_free_port();
        bp[i] = it_backend(g_dir, names[i], be[i], NULL, NULL);
    }
    snprintf(conf, sizeof(conf), "%s/lbqr.yaml", g_dir);
    snprintf(log, sizeof(log), "%s/lbqr.log", g_dir);
    {
        char text[2048];
        snprintf(text, sizeof(text),
                 "cluster: {name: it}\nnode: {cache: {enabled: false}}\n"
                 "lb:\n  listeners: [{bind: \"127.0.0.1:%d\", mode: http}]\n"
                 "  admin: {bind: \"127.0.0.1:%d\", metrics_public: true}\n  workers: 1\n"
                 "  health: {interval: 100ms, timeout: 300ms, rise: 1, fall: 2}\n"
                 "  balance: {bounded_load: 0}\n"
                 "  limits: {node_max_conns: 1, queue_size: 8, queue_timeout: 6s,"
                 " response_timeout: 20s}\n"
                 "nodes:\n  - {name: q1, addr: \"127.0.0.1:%d\"}\n"
                 "  - {name: q2, addr: \"127.0.0.1:%d\"}\n",
                 port, admin, be[0], be[1]);
        bl_h_write_file(conf, text);
    }
    lb = it_lb_start(conf, log, admin);
    /* the owner of id "slow" */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/posts/slow?ms=0", port);
    r = bl_h_http("GET", url, NULL, NULL, 0);
    assert_int_equal(r->status, 200);
    node = bl_h_header(r, "X-Blog-Node");
    assert_non_null(node);
    owner = strcmp(node, names[0]) == 0 ? 0 : 1;
    assert_string_equal(node, names[owner]);
    free(node);
    bl_h_resp_free(r);
    /* the slow one takes the owner's only connection */
    memset(&slow, 0, sizeof(slow));
    slow.port = port;
    slow.path = "/posts/slow?ms=2500";
    pthread_create(&th_slow, NULL, qreq_run, &slow);
    it_sleep_ms(200);
    memset(q, 0, sizeof(q));
    for (int i = 0; i < 4; i++) {
        q[i].port = port;
        q[i].path = "/posts/slow?ms=0";
        q[i].method = i == 3 ? "POST" : "GET";
        pthread_create(&th[i], NULL, qreq_run, &q[i]);
    }
    it_sleep_ms(300);
    /* they wait in the owner's queue */
    {
        char series[64];
        snprintf(series, sizeof(series), "blog_lb_queue_depth{node=\"%s\"}", names[owner]);
        assert_true(it_metric(admin, series, NULL) == 4.0);
    }
    t_stop = it_now_ms();
    kill(bp[owner], SIGSTOP);
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
    }
    for (int i = 0; i < 4; i++) {
        fprintf(stderr, "queued %s: status %ld node %s after %ld ms\n", q[i].method, q[i].status,
                q[i].node, q[i].ms);
        assert_int_equal(q[i].status, 200);
        assert_string_equal(q[i].node, names[1 - owner]);
        assert_true(q[i].ms < 3000);        /* queue_timeout is 6 s */
    }
    assert_true(it_now_ms() - t_stop < 3000);
    {
        char series[64];
        snprintf(series, sizeof(series), "blog_lb_node_up{node=\"%s\"}", names[owner]);
        assert_true(it_metric(admin, series, NULL) == 0.0);
    }
    kill(bp[owner], SIGCONT);
    pthread_join(th_slow, NULL);
    bl_h_stop(lb, SIGTERM, 5000);
    for (int i = 0; i < 2; i++) {
        bl_h_stop(bp[i], SIGTERM, 2000);
    }
}

/* ---- max_client_conns and rate_per_ip ------------------------------------------- */

static int
until_any(const char *b, size_t n)
{
    return until_one(b, n) || until_error(b, n);
}

static void
test_client_limits(void **state)
{
    char conf[1024], log[1024], buf[4096];
    int port = bl_h_free_port(), admin = bl_h_free_port();
    int be = g_be_port[0], a, b, c, closed, ok = 0, limited = 0;
    pid_t lb;
    const char *req = "GET /posts/r HTTP/1.1\r\nHost: a\r\n\r\n";

    (void)state;
    snprintf(conf, sizeof(conf), "%s/lbl.yaml", g_dir);
    snprintf(log, sizeof(log), "%s/lbl.log", g_dir);
    write_conf(conf, port, admin,
               "  workers: 1\n"
               "  limits: {max_client_conns: 2, rate_per_ip: 5}\n",
               &be, 1);
    lb = it_lb_start(conf, log, admin);
    a = it_connect(port);
    b = it_connect(port);
    assert_true(a >= 0 && b >= 0);
    /* (with TCP_DEFER_ACCEPT a connection is accepted once it sent something) */
    assert_int_equal(it_send(b, req, strlen(req)), 0);
    it_recv(b, buf, sizeof(buf), 3000, until_one, &closed);
    assert_int_equal(it_status(buf), 200);
    assert_int_equal(it_send(a, "G", 1), 0);
    it_sleep_ms(200);
    /* a third client connection is refused (accepted and closed) */
    c = it_connect(port);
    if (c >= 0) {
        (void)it_send(c, req, strlen(req));
        it_recv(c, buf, sizeof(buf), 2000, NULL, &closed);
        assert_true(closed);
        assert_int_equal(it_status(buf), 0);
        close(c);
    }
    assert_true(it_metric(admin, "blog_lb_rejected_connections_total", ADMIN_TOKEN) >= 1.0);
    /* the two admitted ones work; 5/s with a burst of 5: the 6th+ quick request is a 429 */
    for (int i = 0; i < 12; i++) {
        assert_int_equal(it_send(a, req + (i == 0), strlen(req) - (i == 0)), 0);
        it_recv(a, buf, sizeof(buf), 3000, until_any, &closed);
        if (it_status(buf) == 200) {
            ok++;
        } else {
            assert_int_equal(it_status(buf), 429);
            assert_non_null(strstr(buf, "Retry-After: 1\r\n"));
            limited++;
        }
    }
    assert_true(ok >= 4 && ok <= 6);   /* b used one token */
    assert_true(limited >= 5);
    close(a);
    it_sleep_ms(200);
    /* a slot is free again */
    c = it_connect(port);
    assert_true(c >= 0);
    it_sleep_ms(1100);                  /* refill */
    assert_int_equal(it_send(c, req, strlen(req)), 0);
    it_recv(c, buf, sizeof(buf), 3000, until_one, &closed);
    assert_int_equal(it_status(buf), 200);
    close(c);
    close(b);
    bl_h_stop(lb, SIGTERM, 5000);
}

/* ---- retries: GET goes to the next node, POST never does ---------------------------- */

static void
test_retries(void **state)
{
    char conf[1024], log[1024], url[1200], marker[1100], *node;
    int port = bl_h_free_port(), admin = bl_h_free_port(), be[2];
    pid_t bp[2], lb;
    struct bl_h_resp *r;
    const char *names[2] = { "d1", "d2" };
    int dead;

    (void)state;
    for (int i = 0; i < 2; i++) {
        be[i] = bl_h_free_port();
        bp[i] = it_backend(g_dir, names[i], be[i], NULL, NULL);
    }
    snprintf(conf, sizeof(conf), "%s/lbr.yaml", g_dir);
    snprintf(log, sizeof(log), "%s/lbr.log", g_dir);
    {
        char text[2048];
        snprintf(text, sizeof(text),
                 "cluster: {name: it}\nnode: {cache: {enabled: false}}\n"
                 "lb:\n  listeners: [{bind: \"127.0.0.1:%d\", mode: http}]\n"
                 "  admin: {bind: \"127.0.0.1:%d\", metrics_public: true}\n  workers: 1\n"
                 "  health: {interval: 200ms, timeout: 2s, rise: 1, fall: 3}\n"
                 "  balance: {retries: 1}\n"
                 "nodes:\n  - {name: d1, addr: \"127.0.0.1:%d\"}\n"
                 "  - {name: d2, addr: \"127.0.0.1:%d\"}\n",
                 port, admin, be[0], be[1]);
        bl_h_write_file(conf, text);
    }
    lb = it_lb_start(conf, log, admin);
    /* warm the pools a little */
    for (int i = 0; i < 4; i++) {
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/posts/w%d", port, i);
        r = bl_h_http("GET", url, NULL, NULL, 0);
        assert_int_equal(r->status, 200);
        bl_h_resp_free(r);
    }
    /* the node crashes in the middle of a GET: the client still gets a 200 */
    snprintf(marker, sizeof(marker), "%s/die-get", g_dir);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/posts/g1?die=%s", port, marker);
    r = bl_h_http("GET", url, NULL, NULL, 0);
    assert_int_equal(r->status, 200);
    node = bl_h_header(r, "X-Blog-Node");
    assert_non_null(node);
    bl_h_resp_free(r);
    {
        long t0 = it_now_ms();
        while (bl_h_alive(bp[0], NULL) && bl_h_alive(bp[1], NULL) && it_now_ms() - t0 < 3000) {
            it_sleep_ms(20);
        }
    }
    dead = bl_h_alive(bp[0], NULL) ? 1 : 0;
    assert_false(bl_h_alive(bp[dead], NULL));
    assert_true(bl_h_alive(bp[1 - dead], NULL));
    assert_string_equal(node, names[1 - dead]);            /* answered by the survivor */
    free(node);
    assert_true(it_metric(admin, "blog_lb_retries_total", NULL) >= 1.0);
    /* bring it back */
    bp[dead] = it_backend(g_dir, names[dead], be[dead], NULL, NULL);
    {
        char series[64];
        long t0 = it_now_ms();
        snprintf(series, sizeof(series), "blog_lb_node_up{node=\"%s\"}", names[dead]);
        while (it_metric(admin, series, NULL) != 1.0 && it_now_ms() - t0 < 5000) {
            it_sleep_ms(50);
        }
        assert_true(it_metric(admin, series, NULL) == 1.0);
    }
    /* the node crashes in the middle of a POST: 502, never sent to the other node */
    snprintf(marker, sizeof(marker), "%s/die-post", g_dir);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/posts?die=%s", port, marker);
    r = bl_h_http("POST", url, NULL, "{}", 2);
    assert_int_equal(r->status, 502);
    assert_non_null(strstr(r->body, "bad_gateway"));
    bl_h_resp_free(r);
    {
        long t0 = it_now_ms();      /* the crashed process may take a moment to be reaped */
        while (bl_h_alive(bp[0], NULL) && bl_h_alive(bp[1], NULL) && it_now_ms() - t0 < 3000) {
            it_sleep_ms(20);
        }
    }
    if (bl_h_alive(bp[0], NULL) && bl_h_alive(bp[1], NULL)) {
        char *text = bl_h_read_file(log, NULL);
        fprintf(stderr, "502 but no node died; LB log:\n%s\n", text ? text : "");
        fail();
    }
    bl_h_stop(lb, SIGTERM, 5000);
    for (int i = 0; i < 2; i++) {
        bl_h_stop(bp[i], SIGTERM, 2000);
    }
}

/* ---- graceful shutdown ---------------------------------------------------------- */

static void
test_graceful_sigterm(void **state)
{
    struct qreq q = { .port = g_port, .path = "/posts/slow?ms=1200" };
    pthread_t th;
    int st, fd;
    long t0;

    (void)state;
    pthread_create(&th, NULL, qreq_run, &q);
    it_sleep_ms(300);
    t0 = it_now_ms();
    kill(g_lb, SIGTERM);
    it_sleep_ms(200);
    /* no longer accepting */
    fd = it_connect(g_port);
    if (fd >= 0) {
        static char buf[256];
        int closed;
        (void)it_send(fd, "GET /posts/x HTTP/1.1\r\nHost: a\r\n\r\n", 34);
        it_recv(fd, buf, sizeof(buf), 2000, NULL, &closed);
        assert_int_equal(it_status(buf), 0);
        close(fd);
    }
    pthread_join(th, NULL);
    assert_int_equal(q.status, 200);                /* the in-flight request finished */
    while (bl_h_alive(g_lb, &st) && it_now_ms() - t0 < 6000) {
        it_sleep_ms(20);
    }
    assert_false(bl_h_alive(g_lb, &st));
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_true(it_now_ms() - t0 < 3000);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_headers),
        cmocka_unit_test(test_pipelining),
        cmocka_unit_test(test_expect_continue),
        cmocka_unit_test(test_bodies),
        cmocka_unit_test(test_http10_and_close),
        cmocka_unit_test(test_rejections),
        cmocka_unit_test(test_slowloris),
        cmocka_unit_test(test_admin_token),
        cmocka_unit_test(test_queue_overflow),
        cmocka_unit_test(test_queue_reroute),
        cmocka_unit_test(test_client_limits),
        cmocka_unit_test(test_retries),
        cmocka_unit_test(test_graceful_sigterm),   /* last: stops the shared LB */
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
