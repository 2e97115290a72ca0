/*
 * blog-node hot cache + Redis coherence end to end (issue 4 item 6): a real redis-server on
 * a free port with a temp dir, three blog-node processes sharing one LMDB directory, libcurl
 * clients with keep-alive.
 *
 * - a single node without Redis caches and invalidates locally;
 * - X-Cache HIT/MISS, 304 from the cache, /readyz, the admin flush endpoint;
 * - 1,000 writes on n1: once n2/n3 count the invalidation as received, their very next read
 *   shows the new version (never stale); the delays are printed (p50/p99) and bounded;
 * - a 404 cached on n2 does not hide a post created afterwards for longer than
 *   cache.negative_ttl;
 * - Redis SIGKILLed under read/write load: every node reports blog_node_cache_coherent 0
 *   and /readyz 503 within ~1 s, refuses writes (503 coherence_unavailable), keeps serving
 *   reads uncached and never stale; Redis restarted: every node resubscribes, and then no
 *   node serves a version older than the newest acknowledged write.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <bson/bson.h>
#include <openssl/sha.h>

#include "bl_harness.h"

#define REDIS_BIN "/usr/bin/redis-server"
#define TOKEN "it-coherence-token"
#define AUTH "Authorization: Bearer " TOKEN
#define CT_JSON "Content-Type: application/json"
#define NEG_TTL_MS 1000
#define NNODES 3
#define NWRITES 1000
#define STALE_WINDOW_MS 100             /* reads this soon after an ack may still be stale */

struct node_proc {
    char name[16];
    int port;
    char url[64];
    char log[512];
    pid_t pid;
};

static char *g_dir;
static char g_conf[512];
static char g_lmdb[512];
static char g_redis_log[512];
static int g_redis_port;
static pid_t g_redis = -1;
static struct node_proc g_nodes[NNODES];
static bool g_have_redis;

static uint64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t
now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void
sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

/* ---------------------------------------------------------------- client */

struct resp {
    long status;
    char *body;
    size_t len;
    char *hdr;
    size_t hlen;
};

static size_t
grow(char **p, size_t *len, const char *data, size_t n)
{
    char *q = realloc(*p, *len + n + 1);

    if (q == NULL) {
        return 0;
    }
    memcpy(q + *len, data, n);
    *len += n;
    q[*len] = '\0';
    *p = q;
    return n;
}

static size_t
on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct resp *r = arg;

    return grow(&r->body, &r->len, data, size * nmemb);
}

static size_t
on_header(char *data, size_t size, size_t nmemb, void *arg)
{
    struct resp *r = arg;

    if (size * nmemb >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        r->hlen = 0;
    }
    return grow(&r->hdr, &r->hlen, data, size * nmemb);
}

static void
resp_free(struct resp *r)
{
    free(r->body);
    free(r->hdr);
    memset(r, 0, sizeof(*r));
}

/* One request on the keep-alive handle <h>; <hdrs> NULL-terminated, <body> may be NULL. */
static void
req(CURL *h, const char *method, const char *url, const char *const *hdrs, const char *body,
    struct resp *r)
{
    struct curl_slist *hl = NULL;

    memset(r, 0, sizeof(*r));
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }
    hl = curl_slist_append(hl, "Expect:");
    for (size_t i = 0; hdrs != NULL && hdrs[i] != NULL; i++) {
        hl = curl_slist_append(hl, hdrs[i]);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    if (body != NULL) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    if (curl_easy_perform(h) == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    } else {
        r->status = 0;
    }
    curl_slist_free_all(hl);
    if (r->body == NULL) {
        r->body = calloc(1, 1);
    }
    if (r->hdr == NULL) {
        r->hdr = calloc(1, 1);
    }
}

/* Value of header <name> in <r> into <out> ("" when absent). */
static const char *
hdr(const struct resp *r, const char *name, char *out, size_t size)
{
    size_t n = strlen(name);

    out[0] = '\0';
    for (const char *p = r->hdr; p != NULL && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;
            size_t k = 0;

            while (*v == ' ') {
                v++;
            }
            while (v[k] != '\r' && v[k] != '\n' && v[k] != '\0' && k + 1 < size) {
                out[k] = v[k];
                k++;
            }
            out[k] = '\0';
            break;
        }
    }
    return out;
}

static bool
is_hit(const struct resp *r)
{
    char v[16];

    return strcmp(hdr(r, "X-Cache", v, sizeof(v)), "HIT") == 0;
}

static int64_t
json_int(const char *text, const char *key)
{
    bson_error_t e;
    bson_t *b = bson_new_from_json((const uint8_t *)text, -1, &e);
    bson_iter_t it;
    int64_t v = -1;

    if (b != NULL && bson_iter_init_find(&it, b, key) && BSON_ITER_HOLDS_NUMBER(&it)) {
        v = bson_iter_as_int64(&it);
    }
    bson_destroy(b);
    return v;
}

static bool
json_str(const char *text, const char *key, char *out, size_t size)
{
    bson_error_t e;
    bson_t *b = bson_new_from_json((const uint8_t *)text, -1, &e);
    bson_iter_t it;
    bool ok = false;

    if (b != NULL && bson_iter_init_find(&it, b, key) && BSON_ITER_HOLDS_UTF8(&it)) {
        snprintf(out, size, "%s", bson_iter_utf8(&it, NULL));
        ok = true;
    }
    bson_destroy(b);
    return ok;
}

/* The value of the unlabelled metric <name> on node <n>, or -1. */
static double
metric(CURL *h, const struct node_proc *n, const char *name)
{
    char url[128];
    struct resp r;
    double v = -1;
    size_t len = strlen(name);

    snprintf(url, sizeof(url), "%s/metrics", n->url);
    req(h, "GET", url, NULL, NULL, &r);
    for (const char *p = r.body; r.status == 200 && p != NULL && *p;
         p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, name, len) == 0 && p[len] == ' ') {
            v = strtod(p + len + 1, NULL);
            break;
        }
    }
    resp_free(&r);
    return v;
}

/* Received-invalidation counters of every node into <out>. */
static void
received(CURL *h, double out[NNODES])
{
    for (int i = 0; i < NNODES; i++) {
        out[i] = metric(h, &g_nodes[i], "blog_node_cache_invalidations_received_total");
    }
}

/*
 * Waits until every node but <origin> has applied <n> more invalidations than <before>
 * counted (e.g. the one a create published), so a test starts from a quiet cache.
 */
static void
settle(CURL *h, const double before[NNODES], int origin, int n)
{
    uint64_t t0 = now_ms();

    for (int i = 0; i < NNODES; i++) {
        while (i != origin && metric(h, &g_nodes[i], "blog_node_cache_invalidations_received_total") <
                                  before[i] + n) {
            assert_true(now_ms() - t0 < 2000);
        }
    }
}

/* ---------------------------------------------------------------- processes */

static void
token_sha(char out[65])
{
    unsigned char md[32];

    SHA256((const unsigned char *)TOKEN, strlen(TOKEN), md);
    for (int i = 0; i < 32; i++) {
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    }
}

static void
redis_start(void)
{
    char port[16];
    char *argv[] = {REDIS_BIN, "--port", port, "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no", "--dir", g_dir, NULL};
    uint64_t deadline = now_ms() + 5000;

    snprintf(port, sizeof(port), "%d", g_redis_port);
    g_redis = bl_h_spawn(argv, g_redis_log);
    /* ready when it accepts a connection */
    while (now_ms() < deadline) {
        char url[64];
        CURL *h = curl_easy_init();
        CURLcode rc;

        snprintf(url, sizeof(url), "telnet://127.0.0.1:%d", g_redis_port);
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_CONNECT_ONLY, 1L);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 200L);
        rc = curl_easy_perform(h);
        curl_easy_cleanup(h);
        if (rc == CURLE_OK) {
            return;
        }
        sleep_ms(20);
    }
    fail_msg("redis-server did not start on port %d", g_redis_port);
}

static void
write_conf(const char *path, bool with_redis, int nnodes, const char *lmdb)
{
    char text[4096], sha[65], nodes[512] = "";
    size_t off = 0;

    token_sha(sha);
    for (int i = 0; i < nnodes; i++) {
        off += (size_t)snprintf(nodes + off, sizeof(nodes) - off,
                                "  - {name: %s, addr: \"127.0.0.1:%d\"}\n", g_nodes[i].name,
                                g_nodes[i].port);
    }
    snprintf(text, sizeof(text),
             "cluster:\n"
             "  name: itc\n"
             "%s"
             "  write_tokens_sha256: [\"%s\"]\n"
             "node:\n"
             "  threads: 4\n"
             "  shutdown_timeout: 2s\n"
             "  store: {driver: lmdb, path: \"%s\", map_size: 256MiB}\n"
             "  cache: {size: 64MiB, ttl: 60s, negative_ttl: %dms}\n"
             "  limits: {post_body: 64KiB, asset: 1MiB}\n"
             "nodes:\n"
             "%s"
             "log: {level: info}\n",
             with_redis ? "" : "", sha, lmdb, NEG_TTL_MS, nodes);
    if (with_redis) {
        char with[4200];

        /* insert the redis URL after the cluster name */
        char *p = strstr(text, "  name: itc\n") + strlen("  name: itc\n");

        snprintf(with, sizeof(with), "%.*s  redis: \"redis://127.0.0.1:%d/0\"\n%s",
                 (int)(p - text), text, g_redis_port, p);
        bl_h_write_file(path, with);
    } else {
        bl_h_write_file(path, text);
    }
}

static void
node_start(struct node_proc *n, const char *conf)
{
    char url[128];
    char *argv[] = {(char *)bl_h_bin("BLOG_NODE_BIN"), "--config", (char *)conf, "--name",
                    n->name, NULL};

    n->pid = bl_h_spawn(argv, n->log);
    snprintf(url, sizeof(url), "%s/readyz", n->url);
    if (!bl_h_wait_http(url, 200, 10000)) {
        char *log = bl_h_read_file(n->log, NULL);

        fail_msg("%s did not get ready; log:\n%s", n->name, log ? log : "");
    }
}

static void
node_init(struct node_proc *n, const char *name)
{
    snprintf(n->name, sizeof(n->name), "%s", name);
    n->port = bl_h_free_port();
    snprintf(n->url, sizeof(n->url), "http://127.0.0.1:%d", n->port);
    snprintf(n->log, sizeof(n->log), "%s/%s.log", g_dir, name);
    n->pid = -1;
}

/* Creates a post through <n>; its id into <id>. Returns the status. */
static long
create_post(CURL *h, const struct node_proc *n, const char *title, char id[32])
{
    char url[128], body[256];
    const char *hdrs[] = {AUTH, CT_JSON, NULL};
    struct resp r;
    long st;

    snprintf(url, sizeof(url), "%s/posts", n->url);
    snprintf(body, sizeof(body), "{\"title\":\"%s\",\"body\":\"b\",\"author\":\"it\"}", title);
    req(h, "POST", url, hdrs, body, &r);
    st = r.status;
    if (st == 201) {
        assert_true(json_str(r.body, "id", id, 32));
    }
    resp_free(&r);
    return st;
}

/* PUT post <id> through <n>; returns the new version, or -status on failure. */
static int64_t
put_post(CURL *h, const struct node_proc *n, const char *id, int i, char *code, size_t csize)
{
    char url[128], body[256];
    const char *hdrs[] = {AUTH, CT_JSON, NULL};
    struct resp r;
    int64_t v;

    snprintf(url, sizeof(url), "%s/posts/%s", n->url, id);
    snprintf(body, sizeof(body), "{\"title\":\"t%d\",\"body\":\"b\",\"author\":\"it\"}", i);
    req(h, "PUT", url, hdrs, body, &r);
    if (r.status == 200) {
        v = json_int(r.body, "version");
    } else {
        v = -r.status;
        if (code != NULL) {
            bson_error_t e;
            bson_t *b = bson_new_from_json((const uint8_t *)r.body, -1, &e);
            bson_iter_t it, d;

            code[0] = '\0';
            if (b != NULL && bson_iter_init(&it, b) &&
                bson_iter_find_descendant(&it, "error.code", &d) && BSON_ITER_HOLDS_UTF8(&d)) {
                snprintf(code, csize, "%s", bson_iter_utf8(&d, NULL));
            }
            bson_destroy(b);
        }
    }
    resp_free(&r);
    return v;
}

/* GET post <id> from <n>: returns its version (0 for 404, -status otherwise). */
static int64_t
get_version(CURL *h, const struct node_proc *n, const char *id, bool *hit)
{
    char url[128];
    struct resp r;
    int64_t v;

    snprintf(url, sizeof(url), "%s/posts/%s", n->url, id);
    req(h, "GET", url, NULL, NULL, &r);
    v = r.status == 200 ? json_int(r.body, "version") : r.status == 404 ? 0 : -r.status;
    if (hit != NULL) {
        *hit = is_hit(&r);
    }
    resp_free(&r);
    return v;
}

static int
setup(void **state)
{
    (void)state;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    g_have_redis = access(REDIS_BIN, X_OK) == 0;
    g_dir = bl_h_tempdir("it_coherence");
    snprintf(g_conf, sizeof(g_conf), "%s/cluster.yaml", g_dir);
    snprintf(g_lmdb, sizeof(g_lmdb), "%s/data", g_dir);
    snprintf(g_redis_log, sizeof(g_redis_log), "%s/redis.log", g_dir);
    for (int i = 0; i < NNODES; i++) {
        char name[8];

        snprintf(name, sizeof(name), "n%d", i + 1);
        node_init(&g_nodes[i], name);
    }
    if (!g_have_redis) {
        return 0;
    }
    g_redis_port = bl_h_free_port();
    redis_start();
    write_conf(g_conf, true, NNODES, g_lmdb);
    for (int i = 0; i < NNODES; i++) {
        node_start(&g_nodes[i], g_conf);
    }
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    for (int i = 0; i < NNODES; i++) {
        if (g_nodes[i].pid > 0) {
            bl_h_stop(g_nodes[i].pid, SIGTERM, 5000);
        }
    }
    if (g_redis > 0) {
        bl_h_stop(g_redis, SIGKILL, 2000);
    }
    bl_h_cleanup();
    curl_global_cleanup();
    return 0;
}

/* ---------------------------------------------------------------- tests */

/* One node, no Redis: the cache works and the node's own writes invalidate it. */
static void
test_single_node_without_redis(void **state)
{
    struct node_proc solo;
    char conf[600], lmdb[600], id[32], url[128];
    CURL *h = curl_easy_init();
    struct node_proc saved = g_nodes[0];
    struct resp r;
    bool hit;

    (void)state;
    node_init(&solo, "solo");
    g_nodes[0] = solo;
    snprintf(conf, sizeof(conf), "%s/solo.yaml", g_dir);
    snprintf(lmdb, sizeof(lmdb), "%s/solo-data", g_dir);
    write_conf(conf, false, 1, lmdb);
    node_start(&g_nodes[0], conf);
    solo = g_nodes[0];
    g_nodes[0] = saved;

    assert_int_equal(create_post(h, &solo, "one", id), 201);
    assert_int_equal(get_version(h, &solo, id, &hit), 1);
    assert_false(hit);
    assert_int_equal(get_version(h, &solo, id, &hit), 1);
    assert_true(hit);
    assert_int_equal(put_post(h, &solo, id, 2, NULL, 0), 2);
    assert_int_equal(get_version(h, &solo, id, &hit), 2);
    assert_false(hit);
    assert_int_equal(get_version(h, &solo, id, &hit), 2);
    assert_true(hit);
    /* list pages: cached, and gone after a write */
    snprintf(url, sizeof(url), "%s/posts?limit=5", solo.url);
    req(h, "GET", url, NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_false(is_hit(&r));
    resp_free(&r);
    req(h, "GET", url, NULL, NULL, &r);
    assert_true(is_hit(&r));
    assert_non_null(strstr(r.body, id));
    resp_free(&r);
    assert_int_equal(create_post(h, &solo, "two", id), 201);
    req(h, "GET", url, NULL, NULL, &r);
    assert_false(is_hit(&r));
    assert_non_null(strstr(r.body, id));
    resp_free(&r);
    assert_true(metric(h, &solo, "blog_node_cache_coherent") == 1);
    /* exactly one lookup per request: 2 post + 2 page misses, 1 + 1 + 1 hits */
    assert_true(metric(h, &solo, "blog_node_cache_hits_total") == 3);
    assert_true(metric(h, &solo, "blog_node_cache_misses_total") == 4);
    bl_h_stop(solo.pid, SIGTERM, 5000);
    curl_easy_cleanup(h);
}

static void
test_cluster_basics(void **state)
{
    CURL *h = curl_easy_init();
    struct node_proc *n1 = &g_nodes[0], *n2 = &g_nodes[1];
    char id[32], url[160], etag[64], inm[96];
    const char *auth[] = {AUTH, NULL};
    double before[NNODES];
    struct resp r;
    bool hit;

    (void)state;
    if (!g_have_redis) {
        skip();
    }
    for (int i = 0; i < NNODES; i++) {
        assert_true(metric(h, &g_nodes[i], "blog_node_cache_coherent") == 1);
    }
    received(h, before);
    assert_int_equal(create_post(h, n1, "basics", id), 201);
    settle(h, before, 0, 1);            /* the create's invalidation reached n2 and n3 */
    assert_int_equal(get_version(h, n2, id, &hit), 1);
    assert_false(hit);
    snprintf(url, sizeof(url), "%s/posts/%s", n2->url, id);
    req(h, "GET", url, NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_true(is_hit(&r));
    hdr(&r, "ETag", etag, sizeof(etag));
    assert_true(etag[0] == '"');
    resp_free(&r);
    /* 304 straight from the cache */
    snprintf(inm, sizeof(inm), "If-None-Match: %s", etag);
    {
        const char *hh[] = {inm, NULL};

        req(h, "GET", url, hh, NULL, &r);
        assert_int_equal(r.status, 304);
        assert_true(is_hit(&r));
        resp_free(&r);
    }
    /* admin flush: token required, bad id refused, one id, then all */
    snprintf(url, sizeof(url), "%s/_cache/flush?id=%s", n1->url, id);
    req(h, "POST", url, NULL, NULL, &r);
    assert_int_equal(r.status, 401);
    resp_free(&r);
    snprintf(url, sizeof(url), "%s/_cache/flush?id=nothex", n1->url);
    req(h, "POST", url, auth, NULL, &r);
    assert_int_equal(r.status, 400);
    resp_free(&r);
    received(h, before);
    snprintf(url, sizeof(url), "%s/_cache/flush?id=%s", n1->url, id);
    req(h, "POST", url, auth, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, id));
    resp_free(&r);
    settle(h, before, 0, 1);
    assert_int_equal(get_version(h, n2, id, &hit), 1);
    assert_false(hit);
    assert_int_equal(get_version(h, n2, id, &hit), 1);
    assert_true(hit);
    received(h, before);
    snprintf(url, sizeof(url), "%s/_cache/flush", n1->url);
    req(h, "POST", url, auth, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"all\""));
    resp_free(&r);
    settle(h, before, 0, 1);
    assert_int_equal(get_version(h, n2, id, &hit), 1);
    assert_false(hit);
    snprintf(url, sizeof(url), "%s/_cache/flush", n1->url);
    req(h, "GET", url, NULL, NULL, &r);
    assert_int_equal(r.status, 405);
    resp_free(&r);
    curl_easy_cleanup(h);
}

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* Histogram quantile estimate (upper bound of the bucket holding it) from /metrics. */
static double
hist_quantile(CURL *h, const struct node_proc *n, const char *name, double q)
{
    char url[128], want[160];
    struct resp r;
    double total = -1, bound = -1;

    snprintf(url, sizeof(url), "%s/metrics", n->url);
    req(h, "GET", url, NULL, NULL, &r);
    snprintf(want, sizeof(want), "%s_count ", name);
    for (const char *p = r.body; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, want, strlen(want)) == 0) {
            total = strtod(p + strlen(want), NULL);
        }
    }
    snprintf(want, sizeof(want), "%s_bucket{le=\"", name);
    for (const char *p = r.body; total > 0 && p && *p;
         p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, want, strlen(want)) == 0) {
            double le = strtod(p + strlen(want), NULL);
            const char *sp = strchr(p, ' ');
            double c = sp ? strtod(sp + 1, NULL) : 0;

            if (strncmp(p + strlen(want), "+Inf", 4) == 0) {
                le = 1e9;
            }
            if (c >= q * total) {
                bound = le;
                break;
            }
        }
    }
    resp_free(&r);
    return bound;
}

static void
test_invalidation_1000_writes(void **state)
{
    CURL *h = curl_easy_init();
    struct node_proc *n1 = &g_nodes[0];
    uint64_t *delay = calloc(NWRITES * 2, sizeof(uint64_t));
    double base[NNODES];
    char id[32];
    int nd = 0;
    long hits = 0;

    (void)state;
    if (!g_have_redis) {
        skip();
    }
    assert_non_null(delay);
    received(h, base);
    assert_int_equal(create_post(h, n1, "hot", id), 201);
    settle(h, base, 0, 1);
    received(h, base);
    for (int k = 1; k < NNODES; k++) {
        assert_int_equal(get_version(h, &g_nodes[k], id, NULL), 1);
        assert_true(base[k] >= 0);
    }
    for (int i = 0; i < NWRITES; i++) {
        int64_t v = put_post(h, n1, id, i, NULL, 0);
        uint64_t t_ack = now_us();

        assert_int_equal(v, i + 2);
        /* n1 itself never serves the old version after its ack */
        assert_int_equal(get_version(h, n1, id, NULL), v);
        for (int k = 1; k < NNODES; k++) {
            struct node_proc *n = &g_nodes[k];
            bool hit;

            /* wait for the invalidation to be applied on n ... */
            while (metric(h, n, "blog_node_cache_invalidations_received_total") < base[k] + i + 1) {
                if (now_us() - t_ack > 2000000) {
                    fail_msg("%s: invalidation %d not received within 2 s", n->name, i);
                }
            }
            delay[nd++] = now_us() - t_ack;
            /* ... then its very next read is fresh, and is cached again */
            assert_int_equal(get_version(h, n, id, &hit), v);
            assert_int_equal(get_version(h, n, id, &hit), v);
            hits += hit;
        }
    }
    qsort(delay, (size_t)nd, sizeof(delay[0]), cmp_u64);
    printf("%d writes on n1, invalidation observed on n2/n3 (ack -> counted, incl. one "
           "/metrics round trip): p50 %.3f ms, p99 %.3f ms, max %.3f ms; node-side "
           "(receive - publish) histogram p50 <= %g s, p99 <= %g s; %ld/%d re-reads were HITs\n",
           NWRITES, delay[nd / 2] / 1000.0, delay[nd * 99 / 100] / 1000.0,
           delay[nd - 1] / 1000.0,
           hist_quantile(h, &g_nodes[1], "blog_node_cache_invalidation_delay_seconds", 0.5),
           hist_quantile(h, &g_nodes[1], "blog_node_cache_invalidation_delay_seconds", 0.99),
           hits, nd);
    assert_true(delay[nd * 99 / 100] < 200000);  /* generous: 200 ms */
    assert_true(hits >= nd * 9 / 10);
    free(delay);
    curl_easy_cleanup(h);
}

/* ObjectId successor: the same second and process, counter + 1. */
static bool
next_id(const char *id, char out[32])
{
    unsigned long c = strtoul(id + 18, NULL, 16);

    if (c >= 0xffffff) {
        return false;
    }
    snprintf(out, 32, "%.18s%06lx", id, c + 1);
    return true;
}

static void
test_negative_cache_bounded(void **state)
{
    CURL *h = curl_easy_init();
    struct node_proc *n1 = &g_nodes[0], *n2 = &g_nodes[1];
    char a[32], b[32], c[32];
    bool hit, done = false;

    (void)state;
    if (!g_have_redis) {
        skip();
    }
    for (int attempt = 0; attempt < 10 && !done; attempt++) {
        uint64_t t0;
        int64_t v;

        double before[NNODES];

        received(h, before);
        assert_int_equal(create_post(h, n1, "neg-a", a), 201);
        settle(h, before, 0, 1);
        if (!next_id(a, b)) {
            continue;
        }
        /* n2 caches the 404 of the id n1 will hand out next */
        assert_int_equal(get_version(h, n2, b, &hit), 0);
        assert_int_equal(get_version(h, n2, b, &hit), 0);
        assert_true(hit);
        assert_int_equal(create_post(h, n1, "neg-b", c), 201);
        if (strcmp(b, c) != 0) {
            continue;                   /* the second changed in between: try again */
        }
        t0 = now_ms();
        while ((v = get_version(h, n2, b, NULL)) == 0 && now_ms() - t0 < 3 * NEG_TTL_MS) {
            sleep_ms(5);
        }
        printf("a post created after its 404 was cached on n2 became visible there after "
               "%llu ms (negative_ttl %d ms)\n", (unsigned long long)(now_ms() - t0), NEG_TTL_MS);
        assert_int_equal(v, 1);
        assert_true(now_ms() - t0 <= NEG_TTL_MS);
        done = true;
    }
    assert_true(done);
    curl_easy_cleanup(h);
}

/* ---- Redis killed under load ---- */

struct load {
    char id[32];
    atomic_bool stop;
    atomic_bool outage;                 /* between the kill and the restart */
    _Atomic int64_t acked;              /* newest acknowledged version */
    _Atomic uint64_t acked_ms;          /* when it was acknowledged */
    atomic_long writes_ok, writes_refused, writes_other;
    _Atomic uint64_t detected_ms[NNODES]; /* when the test saw the node's coherent 0 */
    atomic_long reads, reads_outage, hits_outage, stale_violations, read_errors;
    char violation[256];
};

static void *
writer_main(void *arg)
{
    struct load *L = arg;
    CURL *h = curl_easy_init();
    char code[64];
    int i = 0;

    while (!atomic_load(&L->stop)) {
        int64_t v = put_post(h, &g_nodes[0], L->id, i++, code, sizeof(code));

        if (v > 0) {
            atomic_store(&L->acked_ms, now_ms());
            atomic_store(&L->acked, v);
            atomic_fetch_add(&L->writes_ok, 1);
        } else if (v == -503 && strcmp(code, "coherence_unavailable") == 0) {
            atomic_fetch_add(&L->writes_refused, 1);
        } else {
            atomic_fetch_add(&L->writes_other, 1);
        }
        sleep_ms(2);
    }
    curl_easy_cleanup(h);
    return NULL;
}

static void *
reader_main(void *arg)
{
    struct load *L = arg;
    CURL *h = curl_easy_init();
    unsigned k = 0;

    while (!atomic_load(&L->stop)) {
        unsigned idx = k++ % NNODES;
        struct node_proc *n = &g_nodes[idx];
        uint64_t det = atomic_load(&L->detected_ms[idx]);
        int64_t floor = atomic_load(&L->acked);
        uint64_t floor_ms = atomic_load(&L->acked_ms);
        uint64_t t0 = now_ms();
        bool outage = atomic_load(&L->outage), hit = false;
        int64_t v = get_version(h, n, L->id, &hit);

        atomic_fetch_add(&L->reads, 1);
        if (v <= 0) {
            atomic_fetch_add(&L->read_errors, 1);
            continue;
        }
        if (outage && det != 0 && t0 > det) {
            /* began after the node reported itself not coherent: must be uncached */
            atomic_fetch_add(&L->reads_outage, 1);
            atomic_fetch_add(&L->hits_outage, hit);
        }
        if (v < floor && t0 - floor_ms > STALE_WINDOW_MS) {
            if (atomic_fetch_add(&L->stale_violations, 1) == 0) {
                snprintf(L->violation, sizeof(L->violation),
                         "%s served version %lld %llu ms after version %lld was acknowledged "
                         "(%s)", n->name, (long long)v, (unsigned long long)(t0 - floor_ms),
                         (long long)floor, hit ? "HIT" : "MISS");
            }
        }
    }
    curl_easy_cleanup(h);
    return NULL;
}

static void
test_redis_killed_under_load(void **state)
{
    CURL *h = curl_easy_init();
    struct load *L = calloc(1, sizeof(*L));
    pthread_t w, rd[2];
    uint64_t t_kill, t_restart, detect[NNODES], resub;
    long ok_before, refused_before;

    (void)state;
    if (!g_have_redis) {
        skip();
    }
    assert_non_null(L);
    assert_int_equal(create_post(h, &g_nodes[0], "load", L->id), 201);
    atomic_store(&L->acked, 1);
    atomic_store(&L->acked_ms, now_ms());
    assert_int_equal(pthread_create(&w, NULL, writer_main, L), 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pthread_create(&rd[i], NULL, reader_main, L), 0);
    }
    sleep_ms(1000);
    ok_before = atomic_load(&L->writes_ok);
    assert_true(ok_before > 50);

    /* SIGKILL: every node notices within a second */
    atomic_store(&L->outage, true);
    t_kill = now_ms();
    bl_h_stop(g_redis, SIGKILL, 2000);
    g_redis = -1;
    for (int i = 0; i < NNODES; i++) {
        char url[128];

        while (metric(h, &g_nodes[i], "blog_node_cache_coherent") != 0) {
            assert_true(now_ms() - t_kill < 3000);
            sleep_ms(5);
        }
        detect[i] = now_ms() - t_kill;
        atomic_store(&L->detected_ms[i], now_ms());
        snprintf(url, sizeof(url), "%s/readyz", g_nodes[i].url);
        assert_true(bl_h_wait_http(url, 503, 1000));
    }
    refused_before = atomic_load(&L->writes_refused);
    sleep_ms(1500);                     /* the outage, under load */
    assert_true(atomic_load(&L->writes_refused) > refused_before);

    /* restart on the same port: every node resubscribes (flushing its cache) */
    atomic_store(&L->outage, false);    /* from here on a node may be coherent again */
    t_restart = now_ms();
    redis_start();
    for (int i = 0; i < NNODES; i++) {
        char url[128];

        snprintf(url, sizeof(url), "%s/readyz", g_nodes[i].url);
        assert_true(bl_h_wait_http(url, 200, 10000));
    }
    resub = now_ms() - t_restart;
    sleep_ms(1000);                     /* load again with the cache back */
    atomic_store(&L->stop, true);
    pthread_join(w, NULL);
    for (int i = 0; i < 2; i++) {
        pthread_join(rd[i], NULL);
    }

    printf("Redis SIGKILL: coherent 0 after %llu/%llu/%llu ms on n1/n2/n3; outage %llu ms; "
           "resubscribed %llu ms after the restart; writes ok %ld, refused %ld "
           "(coherence_unavailable), other %ld; reads %ld (%ld after a node reported coherent 0 and "
           "before the restart, %ld of them HIT), stale %ld, read errors %ld\n",
           (unsigned long long)detect[0], (unsigned long long)detect[1],
           (unsigned long long)detect[2], (unsigned long long)(t_restart - t_kill),
           (unsigned long long)resub, atomic_load(&L->writes_ok),
           atomic_load(&L->writes_refused), atomic_load(&L->writes_other),
           atomic_load(&L->reads), atomic_load(&L->reads_outage),
           atomic_load(&L->hits_outage), atomic_load(&L->stale_violations),
           atomic_load(&L->read_errors));
    if (atomic_load(&L->stale_violations) != 0) {
        fail_msg("stale read: %s", L->violation);
    }
    for (int i = 0; i < NNODES; i++) {
        assert_true(detect[i] <= 1200);
    }
    assert_true(atomic_load(&L->reads_outage) > 20);
    /* once a node reports coherent 0, nothing it serves comes from its cache */
    assert_int_equal(atomic_load(&L->hits_outage), 0);
    assert_int_equal(atomic_load(&L->writes_other), 0);
    assert_int_equal(atomic_load(&L->read_errors), 0);
    assert_true(atomic_load(&L->writes_ok) > ok_before);
    /* after resubscribing, no node serves anything older than the newest acknowledged write */
    for (int i = 0; i < NNODES; i++) {
        assert_int_equal(get_version(h, &g_nodes[i], L->id, NULL), atomic_load(&L->acked));
        assert_true(metric(h, &g_nodes[i], "blog_node_cache_coherent") == 1);
    }
    free(L);
    curl_easy_cleanup(h);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_node_without_redis),
        cmocka_unit_test(test_cluster_basics),
        cmocka_unit_test(test_invalidation_1000_writes),
        cmocka_unit_test(test_negative_cache_bounded),
        cmocka_unit_test(test_redis_killed_under_load),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, setup, teardown);
}
