/*
 * Unit tests of node_inval.c: the redis:// URL parser and the message codec, then two
 * coherence clients (two "nodes" in one process, each with its own cache) against a real
 * redis-server started on a free port: delivery, own messages ignored, sequence gaps flush,
 * malformed messages ignored, admin flush, SIGKILL of Redis detected within a second
 * (cache bypassed, writes refused), a write whose publish failed is replayed after the
 * restart, and AUTH with a password. Skipped when /usr/bin/redis-server is missing.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "bl/bl_buf.h"
#include "bl/bl_conf.h"
#include "bl/bl_err.h"
#include "bl/bl_metrics.h"
#include "bl/bl_time.h"

#include "node_cache.h"
#include "node_inval.h"

#define REDIS_BIN "/usr/bin/redis-server"
#define ID1 "00000000000000000000000a"
#define ID2 "00000000000000000000000b"

/* ---------------------------------------------------------------- URL + codec */

static void
test_parse_url(void **state)
{
    struct node_redis_url u;
    const char *msg;

    (void)state;
    assert_int_equal(node_inval_parse_url("redis://127.0.0.1:6390/0", &u, &msg), 0);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 6390);
    assert_string_equal(u.password, "");
    assert_int_equal(node_inval_parse_url("redis://localhost", &u, &msg), 0);
    assert_int_equal(u.port, 6379);
    assert_int_equal(node_inval_parse_url("redis://:s%40cret@h:1/3", &u, &msg), 0);
    assert_string_equal(u.password, "s@cret");
    assert_string_equal(u.user, "");
    assert_int_equal(u.db, 3);
    assert_int_equal(node_inval_parse_url("redis://bob:pw@[::1]:7000", &u, &msg), 0);
    assert_string_equal(u.user, "bob");
    assert_string_equal(u.password, "pw");
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 7000);

    assert_int_equal(node_inval_parse_url("rediss://h:1", &u, &msg), BL_EINVAL);
    assert_non_null(strstr(msg, "TLS"));
    assert_int_equal(node_inval_parse_url("http://h:1", &u, &msg), BL_EINVAL);
    assert_int_equal(node_inval_parse_url("redis://h:0", &u, &msg), BL_EINVAL);
    assert_int_equal(node_inval_parse_url("redis://h:70000", &u, &msg), BL_EINVAL);
    assert_int_equal(node_inval_parse_url("redis://h:12x", &u, &msg), BL_EINVAL);
    assert_int_equal(node_inval_parse_url("redis://:1", &u, &msg), BL_EINVAL);
    assert_int_equal(node_inval_parse_url("redis://pw@h", &u, &msg), BL_EINVAL);
    assert_int_equal(node_inval_parse_url("redis://:%zz@h", &u, &msg), BL_EINVAL);
    assert_int_equal(node_inval_parse_url("redis://h/db", &u, &msg), BL_EINVAL);
    assert_int_equal(node_inval_parse_url(NULL, &u, &msg), BL_EINVAL);
}

static void
test_codec(void **state)
{
    struct node_inval_msg m = {.version = 7, .boot = 0xfedcba9876543210ull, .seq = 42,
                               .ts_us = 1764290000123456ull};
    struct node_inval_msg d;
    char buf[512];
    size_t n;

    (void)state;
    snprintf(m.id, sizeof(m.id), "%s", ID1);
    snprintf(m.origin, sizeof(m.origin), "n1");
    n = node_inval_encode(&m, buf, sizeof(buf));
    assert_true(n > 0);
    assert_int_equal(node_inval_decode(buf, n, &d), 0);
    assert_false(d.flush);
    assert_string_equal(d.id, ID1);
    assert_int_equal(d.version, 7);
    assert_string_equal(d.origin, "n1");
    assert_true(d.boot == m.boot);
    assert_int_equal(d.seq, 42);
    assert_true(d.ts_us == m.ts_us);
    m.flush = true;
    m.id[0] = '\0';
    n = node_inval_encode(&m, buf, sizeof(buf));
    assert_int_equal(node_inval_decode(buf, n, &d), 0);
    assert_true(d.flush);
    assert_string_equal(d.id, "");
    assert_int_equal(node_inval_encode(&m, buf, 10), 0);

    static const char *bad[] = {
        "", "{", "[]", "{\"v\":1}",
        "{\"v\":2,\"type\":\"post\",\"id\":\"" ID1 "\",\"version\":1,\"origin\":\"a\","
        "\"boot\":\"0000000000000001\",\"seq\":1,\"ts\":1}",
        "{\"v\":1,\"type\":\"post\",\"id\":\"short\",\"version\":1,\"origin\":\"a\","
        "\"boot\":\"0000000000000001\",\"seq\":1,\"ts\":1}",
        "{\"v\":1,\"type\":\"what\",\"id\":\"" ID1 "\",\"version\":1,\"origin\":\"a\","
        "\"boot\":\"0000000000000001\",\"seq\":1,\"ts\":1}",
        "{\"v\":1,\"type\":\"post\",\"id\":\"" ID1 "\",\"version\":1,\"origin\":\"a\","
        "\"boot\":\"zz00000000000001\",\"seq\":1,\"ts\":1}",
        "{\"v\":1,\"type\":\"post\",\"id\":\"" ID1 "\",\"version\":1,\"origin\":\"a\","
        "\"boot\":\"0000000000000001\",\"seq\":0,\"ts\":1}",
        "{\"v\":1,\"type\":\"post\",\"id\":\"" ID1 "\",\"version\":1,\"origin\":\"\","
        "\"boot\":\"0000000000000001\",\"seq\":1,\"ts\":1}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(node_inval_decode(bad[i], strlen(bad[i]), &d), BL_EPARSE);
    }
}

/* ---------------------------------------------------------------- live Redis */

struct env {
    char dir[128];
    int port;
    pid_t redis;
    const char *password;
    struct bl_conf *conf;
    struct node_cache *c1, *c2;
    struct node_inval *i1, *i2;
    struct bl_metrics *r1, *r2;
};

static void
sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

static int
free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;

    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static redisContext *
redis_cli(struct env *e)
{
    struct timeval tv = {1, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", e->port, tv);

    if (c != NULL && c->err == 0 && e->password != NULL) {
        redisReply *r = redisCommand(c, "AUTH %s", e->password);

        freeReplyObject(r);
    }
    return c;
}

static void
redis_start(struct env *e)
{
    char port[16];
    uint64_t deadline;

    snprintf(port, sizeof(port), "%d", e->port);
    e->redis = fork();
    assert_true(e->redis >= 0);
    if (e->redis == 0) {
        int null = open("/dev/null", 1);

        dup2(null, 1);
        dup2(null, 2);
        if (e->password != NULL) {
            execl(REDIS_BIN, REDIS_BIN, "--port", port, "--bind", "127.0.0.1", "--save", "",
                  "--appendonly", "no", "--dir", e->dir, "--requirepass", e->password,
                  (char *)NULL);
        } else {
            execl(REDIS_BIN, REDIS_BIN, "--port", port, "--bind", "127.0.0.1", "--save", "",
                  "--appendonly", "no", "--dir", e->dir, (char *)NULL);
        }
        _exit(127);
    }
    deadline = bl_time_mono_ms() + 5000;
    while (bl_time_mono_ms() < deadline) {
        redisContext *c = redis_cli(e);
        redisReply *r = c != NULL && c->err == 0 ? redisCommand(c, "PING") : NULL;
        bool ok = r != NULL && r->type == REDIS_REPLY_STATUS;

        freeReplyObject(r);
        redisFree(c);
        if (ok) {
            return;
        }
        sleep_ms(20);
    }
    fail_msg("redis-server did not start on port %d", e->port);
}

static void
redis_kill(struct env *e)
{
    if (e->redis > 0) {
        kill(e->redis, SIGKILL);
        waitpid(e->redis, NULL, 0);
        e->redis = 0;
    }
}

/* Waits until <pred> holds, at most <ms>; returns the time it took, or -1. */
#define WAIT_UNTIL(pred, ms)                                                               \
    ({                                                                                     \
        uint64_t t0_ = bl_time_mono_ms();                                                  \
        long r_ = -1;                                                                      \
        while (bl_time_mono_ms() - t0_ < (ms)) {                                           \
            if (pred) {                                                                    \
                r_ = (long)(bl_time_mono_ms() - t0_);                                      \
                break;                                                                     \
            }                                                                              \
            sleep_ms(2);                                                                   \
        }                                                                                  \
        r_;                                                                                \
    })

static struct node_cache *
mk_cache(void)
{
    struct node_cache_opts o = {.size = 1 << 20, .ttl_ms = 60000, .negative_ttl_ms = 1000};
    struct node_cache *c = node_cache_create(&o);

    assert_non_null(c);
    return c;
}

static struct env *g_live;              /* the environment a test set up, for the teardown */

static void
env_up(struct env *e, const char *password)
{
    char yaml[512], *err = NULL;

    memset(e, 0, sizeof(*e));
    g_live = e;
    snprintf(e->dir, sizeof(e->dir), "/tmp/test_node_inval.XXXXXX");
    assert_non_null(mkdtemp(e->dir));
    e->port = free_port();
    e->password = password;
    redis_start(e);
    snprintf(yaml, sizeof(yaml),
             "cluster: {name: t, redis: \"redis://%s%s%s127.0.0.1:%d\"}\n"
             "nodes: [{name: n1, addr: \"127.0.0.1:1\"}, {name: n2, addr: \"127.0.0.1:2\"}]\n",
             password ? ":" : "", password ? password : "", password ? "@" : "", e->port);
    e->conf = bl_conf_load_buffer(yaml, strlen(yaml), "test", &err);
    if (e->conf == NULL) {
        fail_msg("config: %s", err);
    }
    e->c1 = mk_cache();
    e->c2 = mk_cache();
    e->r1 = bl_metrics_create();
    e->r2 = bl_metrics_create();
    e->i1 = node_inval_create(e->conf, "n1", e->c1, e->r1, &err);
    assert_non_null(e->i1);
    e->i2 = node_inval_create(e->conf, "n2", e->c2, e->r2, &err);
    assert_non_null(e->i2);
    /* not coherent before the first subscription */
    assert_false(node_cache_coherent(e->c1));
    assert_int_equal(node_inval_write_begin(e->i1), BL_EUNAVAIL);
    assert_int_equal(node_inval_start(e->i1), 0);
    assert_int_equal(node_inval_start(e->i2), 0);
    assert_true(WAIT_UNTIL(node_inval_subscribed(e->i1) && node_inval_subscribed(e->i2) &&
                               node_inval_write_begin(e->i1) == 0 &&
                               node_inval_write_begin(e->i2) == 0,
                           3000) >= 0);
    assert_true(node_cache_coherent(e->c1));
}

static void
env_down(struct env *e)
{
    g_live = NULL;
    node_inval_destroy(e->i1);
    node_inval_destroy(e->i2);
    node_cache_destroy(e->c1);
    node_cache_destroy(e->c2);
    bl_metrics_destroy(e->r1);
    bl_metrics_destroy(e->r2);
    bl_conf_destroy(e->conf);
    redis_kill(e);
    rmdir(e->dir);
}

/* Caches <id> at <version> in <c>. */
static void
fill(struct node_cache *c, const char *id, uint64_t version)
{
    char key[NODE_CACHE_KEY_MAX];
    size_t klen = node_cache_post_key(id, key);
    struct node_cache_entry *e;
    struct node_cache_fill f;

    if (node_cache_lookup(c, key, klen, false, 0, &e, &f) == NODE_CACHE_HIT) {
        node_cache_entry_put(e);
        return;
    }
    assert_int_equal(node_cache_fill(c, &f, 200, version, NULL, strdup("x"), 1, NULL), 0);
}

static bool
cached(struct node_cache *c, const char *id)
{
    char key[NODE_CACHE_KEY_MAX];
    size_t klen = node_cache_post_key(id, key);
    struct node_cache_entry *e;
    struct node_cache_fill f;
    enum node_cache_result r = node_cache_lookup(c, key, klen, false, 0, &e, &f);

    if (r == NODE_CACHE_HIT) {
        node_cache_entry_put(e);
        return true;
    }
    if (r == NODE_CACHE_MISS) {
        node_cache_fill_abort(c, &f);
    }
    return false;
}

static double
metric(struct bl_metrics *reg, const char *name)
{
    struct bl_buf b;
    const char *p;
    double v = -1;
    size_t n = strlen(name);

    bl_buf_init(&b);
    assert_int_equal(bl_metrics_render(reg, &b), 0);
    bl_buf_append(&b, "", 1);
    for (p = b.data; p != NULL && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, name, n) == 0 && p[n] == ' ') {
            v = strtod(p + n + 1, NULL);
            break;
        }
    }
    bl_buf_deinit(&b);
    return v;
}

static void
publish_raw(struct env *e, const char *msg, size_t len)
{
    redisContext *c = redis_cli(e);
    redisReply *r;

    assert_non_null(c);
    r = redisCommand(c, "PUBLISH blogscale:t:inval %b", msg, len);
    assert_non_null(r);
    freeReplyObject(r);
    redisFree(c);
}

static void
test_live_delivery(void **state)
{
    static struct env e;                /* static: the teardown reaches it after a failure */
    long ms;
    size_t n;
    char msg[512];
    struct node_inval_msg m = {.version = 1, .boot = 77, .ts_us = 1};

    (void)state;
    if (access(REDIS_BIN, X_OK) != 0) {
        skip();
    }
    env_up(&e, NULL);
    fill(e.c1, ID1, 1);
    fill(e.c2, ID1, 1);
    fill(e.c2, ID2, 1);
    /* n1 writes ID1: its own entry goes at once, n2's when the message arrives */
    assert_int_equal(node_inval_write_begin(e.i1), 0);
    node_inval_post_written(e.i1, e.c1, ID1, 2);
    assert_false(cached(e.c1, ID1));
    ms = WAIT_UNTIL(!cached(e.c2, ID1), 2000);
    assert_true(ms >= 0);
    printf("invalidation delivered in %ld ms\n", ms);
    assert_true(cached(e.c2, ID2));     /* other ids stay */
    assert_true(metric(e.r1, "blog_node_cache_invalidations_sent_total") == 1);
    assert_true(metric(e.r2, "blog_node_cache_invalidations_received_total") == 1);
    /* n1 hears its own echo and ignores it */
    assert_true(WAIT_UNTIL(metric(e.r1, "blog_node_cache_invalidations_own_total") == 1, 2000) >= 0);
    assert_true(metric(e.r1, "blog_node_cache_invalidations_received_total") == 0);
    assert_true(metric(e.r2, "blog_node_cache_invalidation_delay_seconds_count") == 1);

    /* admin flush of one id, then of everything */
    fill(e.c2, ID1, 2);
    assert_int_equal(node_inval_flush(e.i1, e.c1, ID1), 0);
    assert_true(WAIT_UNTIL(!cached(e.c2, ID1), 2000) >= 0);
    assert_true(cached(e.c2, ID2));
    assert_int_equal(node_inval_flush(e.i1, e.c1, NULL), 0);
    assert_true(WAIT_UNTIL(!cached(e.c2, ID2), 2000) >= 0);

    /* a foreign origin: seq 1 sets the baseline, seq 2 is fine, seq 5 is a gap -> flush */
    snprintf(m.origin, sizeof(m.origin), "x");
    snprintf(m.id, sizeof(m.id), "%s", ID1);
    fill(e.c2, ID2, 1);
    for (uint64_t s = 1; s <= 2; s++) {
        m.seq = s;
        n = node_inval_encode(&m, msg, sizeof(msg));
        assert_true(n > 0);
        publish_raw(&e, msg, n);
    }
    sleep_ms(100);
    assert_true(cached(e.c2, ID2));
    assert_true(metric(e.r2, "blog_node_cache_seq_gaps_total") == 0);
    m.seq = 5;
    n = node_inval_encode(&m, msg, sizeof(msg));
    assert_true(n > 0);
    publish_raw(&e, msg, n);
    assert_true(WAIT_UNTIL(!cached(e.c2, ID2), 2000) >= 0);
    assert_true(metric(e.r2, "blog_node_cache_seq_gaps_total") == 1);
    /* garbage on the channel is ignored, the link stays up */
    fill(e.c2, ID2, 1);
    publish_raw(&e, "not json", 8);
    sleep_ms(100);
    assert_true(cached(e.c2, ID2));
    assert_true(node_inval_subscribed(e.i2));
    env_down(&e);
}

static void
test_live_kill_and_replay(void **state)
{
    static struct env e;                /* static: the teardown reaches it after a failure */
    long ms;
    uint64_t t0;

    (void)state;
    if (access(REDIS_BIN, X_OK) != 0) {
        skip();
    }
    env_up(&e, NULL);
    fill(e.c1, ID1, 1);
    fill(e.c2, ID1, 1);
    redis_kill(&e);
    t0 = bl_time_mono_ms();
    ms = WAIT_UNTIL(!node_inval_subscribed(e.i1) && !node_inval_subscribed(e.i2), 1500);
    printf("Redis SIGKILL detected in %ld ms\n", ms);
    assert_true(ms >= 0 && ms <= 1000);
    /* uncached while disconnected, writes refused */
    assert_false(node_cache_coherent(e.c2));
    assert_false(cached(e.c2, ID1));
    assert_false(node_cache_coherent(e.c2));
    assert_int_equal(node_inval_write_begin(e.i1), BL_EUNAVAIL);
    /* a write that had passed write_begin before the link died: its publish fails and is
     * queued */
    node_inval_post_written(e.i1, e.c1, ID1, 2);
    assert_true(metric(e.r1, "blog_node_cache_publish_failures_total") == 1);
    assert_true(metric(e.r1, "blog_node_cache_invalidation_queue") == 1);

    /* restart on the same port: both resubscribe, the queue is replayed */
    redis_start(&e);
    ms = WAIT_UNTIL(node_inval_subscribed(e.i1) && node_inval_subscribed(e.i2) &&
                        node_inval_write_begin(e.i1) == 0,
                    5000);
    printf("resubscribed %ld ms after the restart (%llu ms after the kill)\n", ms,
           (unsigned long long)(bl_time_mono_ms() - t0));
    assert_true(ms >= 0);
    assert_true(node_cache_coherent(e.c2));
    assert_true(WAIT_UNTIL(metric(e.r1, "blog_node_cache_invalidation_queue") == 0, 1000) >= 0);
    assert_true(metric(e.r1, "blog_node_cache_invalidations_sent_total") >= 1);
    assert_true(metric(e.r1, "blog_node_cache_subscriptions_total") >= 2);
    /* the link works again end to end */
    fill(e.c2, ID2, 1);
    node_inval_post_written(e.i1, e.c1, ID2, 2);
    assert_true(WAIT_UNTIL(!cached(e.c2, ID2), 2000) >= 0);
    env_down(&e);
}

/* A Redis that stops answering (SIGSTOP: the socket stays open) is caught by the PING. */
static void
test_live_silent_redis(void **state)
{
    static struct env e;                /* static: the teardown reaches it after a failure */
    long ms;

    (void)state;
    if (access(REDIS_BIN, X_OK) != 0) {
        skip();
    }
    env_up(&e, NULL);
    /* a healthy link stays up across many PING rounds (the pongs do arrive) */
    sleep_ms(1500);
    assert_true(node_inval_subscribed(e.i1) && node_inval_subscribed(e.i2));
    assert_true(metric(e.r1, "blog_node_cache_subscriptions_total") == 1);
    assert_true(metric(e.r2, "blog_node_cache_subscriptions_total") == 1);
    kill(e.redis, SIGSTOP);
    ms = WAIT_UNTIL(!node_inval_subscribed(e.i1) && !node_inval_subscribed(e.i2), 2000);
    printf("silent Redis detected in %ld ms\n", ms);
    kill(e.redis, SIGCONT);
    /* within a second (PING every 300 ms, 600 ms timeout); valgrind slows the loop down */
    assert_true(ms >= 0 && ms <= (getenv("BLOG_VALGRIND") != NULL ? 3000 : 1100));
    assert_int_equal(node_inval_write_begin(e.i1), BL_EUNAVAIL);
    assert_true(WAIT_UNTIL(node_inval_subscribed(e.i1) && node_inval_subscribed(e.i2), 5000) >= 0);
    env_down(&e);
}

static void
test_live_auth(void **state)
{
    static struct env e;                /* static: the teardown reaches it after a failure */
    char yaml[512], *err = NULL;
    struct bl_conf *bad;
    struct node_cache *c;
    struct node_inval *iv;

    (void)state;
    if (access(REDIS_BIN, X_OK) != 0) {
        skip();
    }
    env_up(&e, "pw-123");
    fill(e.c2, ID1, 1);
    node_inval_post_written(e.i1, e.c1, ID1, 2);
    assert_true(WAIT_UNTIL(!cached(e.c2, ID1), 2000) >= 0);

    /* a wrong password never subscribes (and never marks the cache coherent) */
    snprintf(yaml, sizeof(yaml),
             "cluster: {name: t, redis: \"redis://:wrong@127.0.0.1:%d\"}\n"
             "nodes: [{name: n1, addr: \"127.0.0.1:1\"}]\n", e.port);
    bad = bl_conf_load_buffer(yaml, strlen(yaml), "test", &err);
    assert_non_null(bad);
    c = mk_cache();
    iv = node_inval_create(bad, "n3", c, NULL, &err);
    assert_non_null(iv);
    assert_int_equal(node_inval_start(iv), 0);
    sleep_ms(500);
    assert_false(node_inval_subscribed(iv));
    assert_false(node_cache_coherent(c));
    assert_int_equal(node_inval_write_begin(iv), BL_EUNAVAIL);
    node_inval_destroy(iv);
    node_cache_destroy(c);
    bl_conf_destroy(bad);
    env_down(&e);
}

static void
test_rediss_refused(void **state)
{
    const char *yaml = "cluster: {name: t, redis: \"rediss://127.0.0.1:6390\"}\n"
                       "nodes: [{name: n1, addr: \"127.0.0.1:1\"}]\n";
    char *err = NULL;
    struct bl_conf *conf = bl_conf_load_buffer(yaml, strlen(yaml), "test", &err);
    struct node_cache *c = mk_cache();

    (void)state;
    assert_non_null(conf);
    assert_null(node_inval_create(conf, "n1", c, NULL, &err));
    assert_non_null(err);
    assert_non_null(strstr(err, "TLS"));
    free(err);
    node_cache_destroy(c);
    bl_conf_destroy(conf);
}

/* After a failed assertion the test never reached env_down: stop its Redis and threads. */
static int
teardown_live(void **state)
{
    (void)state;
    if (g_live != NULL) {
        if (g_live->redis > 0) {
            kill(g_live->redis, SIGCONT);   /* a SIGSTOPped one must be able to die */
        }
        env_down(g_live);
    }
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_url),
        cmocka_unit_test(test_codec),
        cmocka_unit_test(test_rediss_refused),
        cmocka_unit_test_teardown(test_live_delivery, teardown_live),
        cmocka_unit_test_teardown(test_live_kill_and_replay, teardown_live),
        cmocka_unit_test_teardown(test_live_silent_redis, teardown_live),
        cmocka_unit_test_teardown(test_live_auth, teardown_live),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
