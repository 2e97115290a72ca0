/*
 * blog-node end to end: real processes on 127.0.0.1, a real LMDB store in a temp dir, libcurl
 * clients. Covers every endpoint and error code of DESIGN §4, pagination, concurrent
 * conditional writes, two nodes on one store, kill -9 durability, bad inputs, keep-alive,
 * SIGHUP and SIGTERM.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <bson/bson.h>
#include <openssl/sha.h>

#include "bl_harness.h"

#define TOKEN "it-node-token"
#define TOKEN2 "it-node-token-2"
#define AUTH "Authorization: Bearer " TOKEN
#define CT_JSON "Content-Type: application/json"
#define POST_BODY_LIMIT (64 * 1024)
#define ASSET_LIMIT (1024 * 1024)
#define NSEED 2500

/* ---------------------------------------------------------------- client */

struct resp {
    long status;
    char *body;
    size_t len;
    char *hdr;
    size_t hlen;
    long connects;                      /* CURLINFO_NUM_CONNECTS: new connections made */
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

    /* keep only the final response's block */
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

/*
 * One request on the easy handle <h> (reused: keep-alive). <hdrs> NULL-terminated; <body>
 * may be NULL. "Expect:" is disabled unless a header list names it.
 */
static void
req(CURL *h, const char *method, const char *url, const char *const *hdrs, const void *body,
    size_t len, struct resp *r)
{
    struct curl_slist *hl = NULL;
    bool expect = false;
    CURLcode rc;

    memset(r, 0, sizeof(*r));
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 15000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }
    if (body != NULL) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    for (size_t i = 0; hdrs != NULL && hdrs[i] != NULL; i++) {
        if (strncasecmp(hdrs[i], "Expect", 6) == 0) {
            expect = true;
        }
        hl = curl_slist_append(hl, hdrs[i]);
    }
    if (!expect) {
        hl = curl_slist_append(hl, "Expect:");
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    rc = curl_easy_perform(h);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
        curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &r->connects);
    } else {
        r->status = 0;
    }
    curl_slist_free_all(hl);
    if (r->body == NULL) {
        r->body = strdup("");
    }
    if (r->hdr == NULL) {
        r->hdr = strdup("");
    }
}

/* The value of header <name> in <r>, into <out> ("" when absent). */
static const char *
hdr(const struct resp *r, const char *name, char *out, size_t outlen)
{
    size_t nlen = strlen(name);
    const char *p = r->hdr;

    out[0] = '\0';
    while (p != NULL && *p != '\0') {
        const char *eol = strstr(p, "\r\n");
        size_t linelen = eol ? (size_t)(eol - p) : strlen(p);

        if (linelen > nlen && strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
            const char *v = p + nlen + 1;
            size_t vlen;

            while (*v == ' ') {
                v++;
            }
            vlen = linelen - (size_t)(v - p);
            if (vlen >= outlen) {
                vlen = outlen - 1;
            }
            memcpy(out, v, vlen);
            out[vlen] = '\0';
            return out;
        }
        p = eol ? eol + 2 : NULL;
    }
    return out;
}

static bool
has_hdr(const struct resp *r, const char *name)
{
    char v[512];
    size_t nlen = strlen(name);

    hdr(r, name, v, sizeof(v));
    if (v[0] != '\0') {
        return true;
    }
    /* present but empty? */
    for (const char *p = r->hdr; (p = strcasestr(p, name)) != NULL; p += nlen) {
        if ((p == r->hdr || p[-1] == '\n') && p[nlen] == ':') {
            return true;
        }
    }
    return false;
}

/* ---------------------------------------------------------------- JSON (libbson) */

static bson_t *
jparse(const char *text)
{
    bson_error_t e;
    bson_t *b = bson_new_from_json((const uint8_t *)text, -1, &e);

    if (b == NULL) {
        fail_msg("not JSON (%s): %.200s", e.message, text);
    }
    return b;
}

/* String at dotted <path>, copied into <out>; "" when absent or null. */
static const char *
jstr(const char *text, const char *path, char *out, size_t outlen)
{
    bson_t *b = jparse(text);
    bson_iter_t it, d;

    out[0] = '\0';
    if (bson_iter_init(&it, b) && bson_iter_find_descendant(&it, path, &d) &&
        BSON_ITER_HOLDS_UTF8(&d)) {
        snprintf(out, outlen, "%s", bson_iter_utf8(&d, NULL));
    }
    bson_destroy(b);
    return out;
}

static int64_t
jint(const char *text, const char *path)
{
    bson_t *b = jparse(text);
    bson_iter_t it, d;
    int64_t v = -1;

    if (bson_iter_init(&it, b) && bson_iter_find_descendant(&it, path, &d) &&
        BSON_ITER_HOLDS_NUMBER(&d)) {
        v = bson_iter_as_int64(&d);
    }
    bson_destroy(b);
    return v;
}

static bool
jnull(const char *text, const char *path)
{
    bson_t *b = jparse(text);
    bson_iter_t it, d;
    bool n = false;

    if (bson_iter_init(&it, b) && bson_iter_find_descendant(&it, path, &d)) {
        n = BSON_ITER_HOLDS_NULL(&d);
    }
    bson_destroy(b);
    return n;
}

/* ---------------------------------------------------------------- fixture */

struct node_proc {
    char name[32];
    int port;
    char url[64];
    char conf[512];
    char log[512];
    pid_t pid;
};

static char *g_dir;
static char g_store[512];               /* shared by n1 and n2 */
static struct node_proc g_n1, g_n2;
static CURL *g_h;

static void
sha_hex(const char *s, char out[65])
{
    unsigned char md[SHA256_DIGEST_LENGTH];

    SHA256((const unsigned char *)s, strlen(s), md);
    for (int i = 0; i < 32; i++) {
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    }
}

/* Writes a config for <n> (plus an entry for <other>, may be NULL) with <store>. */
static const char *g_map_size = "256MiB";

static void
write_conf(struct node_proc *n, const struct node_proc *other, const char *store,
           const char *tokens_yaml)
{
    char text[4096], second[128] = "";

    if (other != NULL) {
        snprintf(second, sizeof(second), "  - {name: %s, addr: \"127.0.0.1:%d\"}\n",
                 other->name, other->port);
    }
    snprintf(text, sizeof(text),
             "cluster:\n"
             "  name: it\n"
             "  write_tokens_sha256: %s\n"
             "node:\n"
             "  threads: 2\n"
             "  shutdown_timeout: 5s\n"
             "  store: {driver: lmdb, path: \"%s\", map_size: %s}\n"
             "  cache: {enabled: false}\n"
             "  limits: {post_body: 64KiB, asset: 1MiB}\n"
             "  assets: {types: [image/png, image/jpeg, application/pdf]}\n"
             "nodes:\n"
             "  - {name: %s, addr: \"127.0.0.1:%d\"}\n"
             "%s"
             "log: {level: info}\n",
             tokens_yaml, store, g_map_size, n->name, n->port, second);
    bl_h_write_file(n->conf, text);
}

static void
node_init(struct node_proc *n, const char *name)
{
    snprintf(n->name, sizeof(n->name), "%s", name);
    n->port = bl_h_free_port();
    snprintf(n->url, sizeof(n->url), "http://127.0.0.1:%d", n->port);
    snprintf(n->conf, sizeof(n->conf), "%s/%s.yaml", g_dir, name);
    snprintf(n->log, sizeof(n->log), "%s/%s.log", g_dir, name);
    n->pid = -1;
}

static void
node_start(struct node_proc *n)
{
    char *argv[] = {(char *)bl_h_bin("BLOG_NODE_BIN"), "--config", n->conf, "--name", n->name,
                    NULL};
    char url[128];

    n->pid = bl_h_spawn(argv, n->log);
    snprintf(url, sizeof(url), "%s/readyz", n->url);
    if (!bl_h_wait_http(url, 200, 10000)) {
        char *log = bl_h_read_file(n->log, NULL);

        fail_msg("node %s did not become ready; log:\n%s", n->name, log ? log : "");
    }
}

static char g_tokens_yaml[256];

static int
setup(void **state)
{
    char hex[65];

    curl_global_init(CURL_GLOBAL_ALL);
    g_dir = bl_h_tempdir("it_node_api");
    snprintf(g_store, sizeof(g_store), "%s/store", g_dir);
    sha_hex(TOKEN, hex);
    snprintf(g_tokens_yaml, sizeof(g_tokens_yaml), "[\"%s\"]", hex);
    node_init(&g_n1, "n1");
    node_init(&g_n2, "n2");
    write_conf(&g_n1, &g_n2, g_store, g_tokens_yaml);
    write_conf(&g_n2, &g_n1, g_store, g_tokens_yaml);
    node_start(&g_n1);
    g_h = curl_easy_init();
    return 0;
}

static int
teardown(void **state)
{
    curl_easy_cleanup(g_h);
    bl_h_cleanup();
    return 0;
}

static char *
url_of(const struct node_proc *n, const char *path)
{
    static __thread char buf[512];

    snprintf(buf, sizeof(buf), "%s%s", n->url, path);
    return buf;
}

/* POSTs a post and returns its id (out) and ETag. */
static void
create_post(CURL *h, const struct node_proc *n, const char *title, char id[32], char etag[64])
{
    const char *hs[] = {AUTH, CT_JSON, NULL};
    char body[512];
    struct resp r;

    snprintf(body, sizeof(body), "{\"title\":\"%s\",\"body\":\"text of %s\",\"author\":\"it\","
             "\"tags\":[\"x\"]}", title, title);
    req(h, "POST", url_of(n, "/posts"), hs, body, strlen(body), &r);
    if (r.status != 201) {
        fail_msg("POST /posts: %ld %s", r.status, r.body);
    }
    jstr(r.body, "id", id, 32);
    if (etag != NULL) {
        hdr(&r, "ETag", etag, 64);
    }
    resp_free(&r);
}

static long
rss_kb(pid_t pid)
{
    char path[64], line[256];
    long kb = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    if (f == NULL) {
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = strtol(line + 6, NULL, 10);
        }
    }
    fclose(f);
    return kb;
}

static void
assert_error(const struct resp *r, long status, const char *code)
{
    char got[128], v[256];

    if (r->status != status) {
        fail_msg("expected %ld %s, got %ld: %s", status, code, r->status, r->body);
    }
    jstr(r->body, "error.code", got, sizeof(got));
    if (strcmp(got, code) != 0) {
        fail_msg("expected error code %s, got '%s' (%s)", code, got, r->body);
    }
    jstr(r->body, "error.message", v, sizeof(v));
    assert_true(v[0] != '\0');
    assert_string_equal(hdr(r, "Content-Type", v, sizeof(v)), "application/json; charset=utf-8");
    assert_string_equal(hdr(r, "X-Blog-Node", v, sizeof(v)), "n1");
}

static void
assert_serving(const struct node_proc *n)
{
    struct resp r;
    CURL *h = curl_easy_init();

    assert_true(bl_h_alive(n->pid, NULL));
    req(h, "GET", url_of(n, "/healthz"), NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    curl_easy_cleanup(h);
}

/* ---------------------------------------------------------------- tests */

static void
test_internal_endpoints(void **state)
{
    struct resp r;
    char v[256];

    req(g_h, "GET", url_of(&g_n1, "/healthz"), NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(hdr(&r, "X-Blog-Node", v, sizeof(v)), "n1");
    assert_string_equal(hdr(&r, "Content-Type", v, sizeof(v)), "application/json; charset=utf-8");
    resp_free(&r);
    req(g_h, "GET", url_of(&g_n1, "/readyz"), NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    req(g_h, "HEAD", url_of(&g_n1, "/readyz"), NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, 0);
    resp_free(&r);
    req(g_h, "GET", url_of(&g_n1, "/metrics"), NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(hdr(&r, "Content-Type", v, sizeof(v)),
                        "text/plain; version=0.0.4; charset=utf-8");
    assert_non_null(strstr(r.body, "blog_node_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"} "));
    assert_non_null(strstr(r.body, "blog_node_request_duration_seconds_bucket{route=\"/healthz\""));
    assert_non_null(strstr(r.body, "blog_node_store_op_duration_seconds_count{op=\"health\"}"));
    assert_non_null(strstr(r.body, "blog_node_bodies_rejected_total{reason=\"too_large\"}"));
    assert_non_null(strstr(r.body, "blog_node_up 1"));
    assert_non_null(strstr(r.body, "blog_node_info{name=\"n1\""));
    resp_free(&r);
}

static void
test_post_crud(void **state)
{
    const char *hs[] = {AUTH, CT_JSON, NULL};
    const char *body = "{\"tags\":[\"a\",\"\xc3\xa9\"],\"author\":\"Ann\",\"body\":\"Hello\\nworld\","
                       "\"title\":\"T\xc3\xaftle\"}";
    char id[32], etag[64], etag2[64], v[512], loc[128], path[128], h1[128], h2[128];
    struct resp r;

    req(g_h, "POST", url_of(&g_n1, "/posts"), hs, body, strlen(body), &r);
    assert_int_equal(r.status, 201);
    jstr(r.body, "id", id, sizeof(id));
    assert_int_equal(strlen(id), 24);
    snprintf(loc, sizeof(loc), "/posts/%s", id);
    assert_string_equal(hdr(&r, "Location", v, sizeof(v)), loc);
    hdr(&r, "ETag", etag, sizeof(etag));
    assert_true(etag[0] == '"');
    assert_string_equal(hdr(&r, "Content-Type", v, sizeof(v)), "application/json; charset=utf-8");
    assert_string_equal(hdr(&r, "X-Blog-Node", v, sizeof(v)), "n1");
    /* fixed key order, values as sent, times RFC 3339 UTC with ms */
    {
        const char *p = r.body;
        const char *keys[] = {"\"id\":", "\"title\":", "\"body\":", "\"author\":", "\"tags\":",
                              "\"created_at\":", "\"updated_at\":", "\"version\":"};

        for (size_t i = 0; i < 8; i++) {
            const char *q = strstr(p, keys[i]);

            assert_non_null(q);
            p = q;
        }
    }
    assert_int_equal(jint(r.body, "version"), 1);
    assert_string_equal(jstr(r.body, "title", v, sizeof(v)), "T\xc3\xaftle");
    assert_string_equal(jstr(r.body, "body", v, sizeof(v)), "Hello\nworld");
    jstr(r.body, "created_at", v, sizeof(v));
    assert_int_equal(strlen(v), 24);
    assert_true(v[4] == '-' && v[10] == 'T' && v[19] == '.' && v[23] == 'Z');
    resp_free(&r);

    /* GET: ETag, Cache-Control, X-Cache */
    snprintf(path, sizeof(path), "/posts/%s", id);
    req(g_h, "GET", url_of(&g_n1, path), NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(hdr(&r, "ETag", v, sizeof(v)), etag);
    assert_string_equal(hdr(&r, "Cache-Control", v, sizeof(v)), "no-cache");
    assert_string_equal(hdr(&r, "X-Cache", v, sizeof(v)), "MISS");
    assert_string_equal(jstr(r.body, "author", v, sizeof(v)), "Ann");
    {
        size_t len = r.len;
        char cl[32];

        resp_free(&r);
        /* HEAD: same headers, Content-Length of the GET, no body */
        req(g_h, "HEAD", url_of(&g_n1, path), NULL, NULL, 0, &r);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.len, 0);
        snprintf(cl, sizeof(cl), "%zu", len);
        assert_string_equal(hdr(&r, "Content-Length", v, sizeof(v)), cl);
        assert_string_equal(hdr(&r, "ETag", v, sizeof(v)), etag);
        resp_free(&r);
    }
    /* If-None-Match: exact, weak form, in a list, "*" -> 304; other -> 200 */
    {
        char weak[120], list[200];
        const char *inm[5];

        snprintf(h1, sizeof(h1), "If-None-Match: %s", etag);
        snprintf(weak, sizeof(weak), "If-None-Match: W/%s", etag);
        snprintf(list, sizeof(list), "If-None-Match: \"nope\", %s", etag);
        inm[0] = h1;
        inm[1] = weak;
        inm[2] = list;
        inm[3] = "If-None-Match: *";
        inm[4] = "If-None-Match: \"nope\"";
        for (int i = 0; i < 5; i++) {
            const char *hh[] = {inm[i], NULL};

            req(g_h, "GET", url_of(&g_n1, path), hh, NULL, 0, &r);
            assert_int_equal(r.status, i < 4 ? 304 : 200);
            assert_string_equal(hdr(&r, "ETag", v, sizeof(v)), etag);
            if (i < 4) {
                assert_int_equal(r.len, 0);
                assert_string_equal(hdr(&r, "Cache-Control", v, sizeof(v)), "no-cache");
            }
            resp_free(&r);
        }
    }

    /* PUT without If-Match: full replacement, version + 1, created_at kept */
    {
        const char *put = "{\"title\":\"New\",\"body\":\"\",\"author\":\"Bob\"}";
        char created[64], created2[64];

        req(g_h, "GET", url_of(&g_n1, path), NULL, NULL, 0, &r);
        jstr(r.body, "created_at", created, sizeof(created));
        resp_free(&r);
        req(g_h, "PUT", url_of(&g_n1, path), hs, put, strlen(put), &r);
        assert_int_equal(r.status, 200);
        assert_int_equal(jint(r.body, "version"), 2);
        assert_string_equal(jstr(r.body, "title", v, sizeof(v)), "New");
        assert_string_equal(jstr(r.body, "body", v, sizeof(v)), "");
        assert_non_null(strstr(r.body, "\"tags\":[]"));      /* replaced: tags gone */
        assert_string_equal(jstr(r.body, "created_at", created2, sizeof(created2)), created);
        hdr(&r, "ETag", etag2, sizeof(etag2));
        assert_string_not_equal(etag2, etag);
        resp_free(&r);
    }
    /* PUT with stale / weak / foreign If-Match -> 412; current / "*" -> 200 */
    {
        const char *put = "{\"title\":\"Again\",\"body\":\"b\",\"author\":\"Bob\"}";
        char weak[100];

        snprintf(h1, sizeof(h1), "If-Match: %s", etag);          /* stale */
        snprintf(weak, sizeof(weak), "If-Match: W/%s", etag2);   /* weak never matches */
        const char *stale[] = {AUTH, CT_JSON, h1, NULL};
        const char *weakh[] = {AUTH, CT_JSON, weak, NULL};
        const char *foreign[] = {AUTH, CT_JSON, "If-Match: \"ffffffffffffffffffffffff-2\"", NULL};

        req(g_h, "PUT", url_of(&g_n1, path), stale, put, strlen(put), &r);
        assert_error(&r, 412, "precondition_failed");
        resp_free(&r);
        req(g_h, "PUT", url_of(&g_n1, path), weakh, put, strlen(put), &r);
        assert_error(&r, 412, "precondition_failed");
        resp_free(&r);
        req(g_h, "PUT", url_of(&g_n1, path), foreign, put, strlen(put), &r);
        assert_error(&r, 412, "precondition_failed");
        resp_free(&r);
        snprintf(h2, sizeof(h2), "If-Match: \"x\", %s", etag2);
        const char *cur[] = {AUTH, CT_JSON, h2, NULL};

        req(g_h, "PUT", url_of(&g_n1, path), cur, put, strlen(put), &r);
        assert_int_equal(r.status, 200);
        assert_int_equal(jint(r.body, "version"), 3);
        resp_free(&r);
        const char *star[] = {AUTH, CT_JSON, "If-Match: *", NULL};

        req(g_h, "PUT", url_of(&g_n1, path), star, put, strlen(put), &r);
        assert_int_equal(r.status, 200);
        assert_int_equal(jint(r.body, "version"), 4);
        hdr(&r, "ETag", etag2, sizeof(etag2));
        resp_free(&r);
    }
    /* If-None-Match on a write: the current tag or "*" -> 412, another tag -> 200 */
    {
        const char *put = "{\"title\":\"Inm\",\"body\":\"b\",\"author\":\"Bob\"}";
        char inm[120];

        snprintf(inm, sizeof(inm), "If-None-Match: W/%s", etag2);
        const char *cur[] = {AUTH, CT_JSON, inm, NULL};
        const char *star[] = {AUTH, CT_JSON, "If-None-Match: *", NULL};
        const char *other[] = {AUTH, CT_JSON, "If-None-Match: \"nope\"", NULL};

        req(g_h, "PUT", url_of(&g_n1, path), cur, put, strlen(put), &r);
        assert_error(&r, 412, "precondition_failed");
        resp_free(&r);
        req(g_h, "PUT", url_of(&g_n1, path), star, put, strlen(put), &r);
        assert_error(&r, 412, "precondition_failed");
        resp_free(&r);
        req(g_h, "PUT", url_of(&g_n1, path), other, put, strlen(put), &r);
        assert_int_equal(r.status, 200);
        assert_int_equal(jint(r.body, "version"), 5);
        hdr(&r, "ETag", etag2, sizeof(etag2));
        resp_free(&r);
    }
    /* PUT unknown id: 404; with If-Match: 412 (RFC 9110 13.1.1); malformed id: 404 */
    {
        const char *put = "{\"title\":\"x\",\"body\":\"b\",\"author\":\"c\"}";
        const char *star[] = {AUTH, CT_JSON, "If-Match: *", NULL};

        req(g_h, "PUT", url_of(&g_n1, "/posts/000000000000000000000001"), hs, put, strlen(put), &r);
        assert_error(&r, 404, "not_found");
        resp_free(&r);
        req(g_h, "PUT", url_of(&g_n1, "/posts/000000000000000000000001"), star, put, strlen(put),
            &r);
        assert_error(&r, 412, "precondition_failed");
        resp_free(&r);
        req(g_h, "PUT", url_of(&g_n1, "/posts/nothex"), hs, put, strlen(put), &r);
        assert_error(&r, 404, "not_found");
        resp_free(&r);
    }
    /* DELETE: stale If-Match 412, then 204, then 404 */
    {
        const char *stale[] = {AUTH, h1, NULL};
        const char *auth[] = {AUTH, NULL};

        snprintf(h2, sizeof(h2), "If-Match: %s", etag2);
        const char *cur[] = {AUTH, h2, NULL};

        req(g_h, "DELETE", url_of(&g_n1, path), stale, NULL, 0, &r);
        assert_error(&r, 412, "precondition_failed");
        resp_free(&r);
        req(g_h, "DELETE", url_of(&g_n1, path), cur, NULL, 0, &r);
        assert_int_equal(r.status, 204);
        assert_int_equal(r.len, 0);
        assert_string_equal(hdr(&r, "X-Blog-Node", v, sizeof(v)), "n1");
        resp_free(&r);
        req(g_h, "GET", url_of(&g_n1, path), NULL, NULL, 0, &r);
        assert_error(&r, 404, "not_found");
        resp_free(&r);
        req(g_h, "DELETE", url_of(&g_n1, path), auth, NULL, 0, &r);
        assert_error(&r, 404, "not_found");
        resp_free(&r);
    }
    /* malformed ids are 404 */
    {
        const char *bad[] = {"/posts/xyz", "/posts/0123456789abcdef0123456",
                             "/posts/0123456789abcdef012345678", "/posts/0123456789abcdef0123456g",
                             "/posts/", "/posts/0123456789abcdef01234567/x"};

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            req(g_h, "GET", url_of(&g_n1, bad[i]), NULL, NULL, 0, &r);
            assert_error(&r, 404, "not_found");
            resp_free(&r);
        }
    }
}

static void
test_auth(void **state)
{
    const char *body = "{\"title\":\"t\",\"body\":\"b\",\"author\":\"a\"}";
    const char *noauth[] = {CT_JSON, NULL};
    const char *wrong[] = {CT_JSON, "Authorization: Bearer nope", NULL};
    const char *basic[] = {CT_JSON, "Authorization: Basic aXQtbm9kZS10b2tlbg==", NULL};
    const char *lower[] = {CT_JSON, "Authorization: bearer " TOKEN, NULL};
    const char *const *bad[] = {noauth, wrong, basic};
    char id[32], etag[64], path[64], v[256];
    struct resp r;

    create_post(g_h, &g_n1, "auth", id, etag);
    snprintf(path, sizeof(path), "/posts/%s", id);
    for (int i = 0; i < 3; i++) {
        req(g_h, "POST", url_of(&g_n1, "/posts"), bad[i], body, strlen(body), &r);
        assert_error(&r, 401, "unauthorized");
        assert_string_equal(hdr(&r, "WWW-Authenticate", v, sizeof(v)), "Bearer");
        resp_free(&r);
        req(g_h, "PUT", url_of(&g_n1, path), bad[i], body, strlen(body), &r);
        assert_error(&r, 401, "unauthorized");
        resp_free(&r);
        req(g_h, "DELETE", url_of(&g_n1, path), bad[i] + 1, NULL, 0, &r);
        assert_error(&r, 401, "unauthorized");
        resp_free(&r);
        {
            const char *ah[] = {"Content-Type: image/png", bad[i][1], NULL};

            req(g_h, "POST", url_of(&g_n1, "/assets"), ah, "png", 3, &r);
            assert_error(&r, 401, "unauthorized");
            resp_free(&r);
        }
    }
    /* 401 changed nothing */
    req(g_h, "GET", url_of(&g_n1, path), NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(hdr(&r, "ETag", v, sizeof(v)), etag);
    resp_free(&r);
    /* the scheme compares case-insensitively */
    req(g_h, "PUT", url_of(&g_n1, path), lower, body, strlen(body), &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
}

static void
test_validation_errors(void **state)
{
    const char *hs[] = {AUTH, CT_JSON, NULL};
    struct {
        const char *body;
        size_t len;
        const char *code;
    } cases[] = {
        {"{\"title\":", 0, "invalid_json"},
        {"[1,2]", 0, "invalid_body"},
        {"{\"title\":\"\xff\xfe\",\"body\":\"b\",\"author\":\"a\"}", 0, "invalid_json"},
        {"{\"title\":\"\xc0\xaf\",\"body\":\"b\",\"author\":\"a\"}", 0, "invalid_json"},
        {"{\"title\":\"t\",\"body\":\"b\",\"author\":\"a\",\"tags\":[1e999999]}", 0, "invalid_json"},
        {"{\"title\":\"t\",\"body\":\"b\",\"author\":\"a\",\"tags\":[99999999999999999999999999]}", 0,
         "invalid_json"},
        {"{\"title\":{\"a\":{\"b\":{\"c\":[]}}},\"body\":\"b\",\"author\":\"a\"}", 0, "invalid_field"},
        {"{\"title\":\"t\",\"body\":\"b\",\"author\":\"a\",\"x\":1}", 0, "unknown_field"},
        {"{\"title\":\"t\",\"body\":\"b\",\"author\":\"a\",\"$x\":1}", 0, "forbidden_field"},
        {"{\"title\":\"t\",\"author\":\"a\"}", 0, "missing_field"},
        {"{\"title\":\"t\",\"title\":\"t\",\"body\":\"b\",\"author\":\"a\"}", 0, "invalid_json"},
        {"", 0, "invalid_json"},
    };
    char nested[4200];
    struct resp r;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        req(g_h, "POST", url_of(&g_n1, "/posts"), hs, cases[i].body,
            cases[i].len ? cases[i].len : strlen(cases[i].body), &r);
        assert_error(&r, 400, cases[i].code);
        resp_free(&r);
    }
    /* deeply nested arrays */
    memset(nested, '[', 2100);
    memset(nested + 2100, ']', 2100);
    req(g_h, "POST", url_of(&g_n1, "/posts"), hs, nested, 4200, &r);
    assert_error(&r, 400, "invalid_json");
    resp_free(&r);
    /* wrong content types -> 415 */
    {
        const char *types[] = {"Content-Type: text/plain", "Content-Type: application/json; charset=latin1",
                               "Content-Type: application/x-www-form-urlencoded", "Content-Type:"};
        const char *body = "{\"title\":\"t\",\"body\":\"b\",\"author\":\"a\"}";

        for (size_t i = 0; i < 4; i++) {
            const char *h[] = {AUTH, types[i], NULL};

            req(g_h, "POST", url_of(&g_n1, "/posts"), h, body, strlen(body), &r);
            assert_error(&r, 415, "unsupported_media_type");
            resp_free(&r);
        }
        {
            const char *h[] = {AUTH, "Content-Type: APPLICATION/JSON; Charset=\"UTF-8\"", NULL};

            req(g_h, "POST", url_of(&g_n1, "/posts"), h, body, strlen(body), &r);
            assert_int_equal(r.status, 201);
            resp_free(&r);
        }
    }
    assert_serving(&g_n1);
}

static void
test_routes(void **state)
{
    struct {
        const char *method;
        const char *path;
        const char *allow;
    } m405[] = {
        {"PATCH", "/posts", "GET, HEAD, POST"},
        {"DELETE", "/posts", "GET, HEAD, POST"},
        {"PUT", "/posts", "GET, HEAD, POST"},
        {"POST", "/posts/0123456789abcdef01234567", "GET, HEAD, PUT, DELETE"},
        {"GET", "/assets", "POST"},
        {"PUT", "/assets/abc", "GET, HEAD"},
        {"POST", "/healthz", "GET, HEAD"},
        {"DELETE", "/metrics", "GET, HEAD"},
        {"OPTIONS", "/readyz", "GET, HEAD"},
    };
    const char *n404[] = {"/", "/post", "/postsx", "/assetsx", "/healthz/x", "/v1/posts"};
    char v[128];
    struct resp r;

    for (size_t i = 0; i < sizeof(m405) / sizeof(m405[0]); i++) {
        req(g_h, m405[i].method, url_of(&g_n1, m405[i].path), NULL, NULL, 0, &r);
        assert_error(&r, 405, "method_not_allowed");
        assert_string_equal(hdr(&r, "Allow", v, sizeof(v)), m405[i].allow);
        resp_free(&r);
    }
    for (size_t i = 0; i < sizeof(n404) / sizeof(n404[0]); i++) {
        req(g_h, "GET", url_of(&g_n1, n404[i]), NULL, NULL, 0, &r);
        assert_error(&r, 404, "not_found");
        resp_free(&r);
    }
    /* limit/cursor validation: out of range is a 400, never clamped */
    {
        const char *bad_limit[] = {"limit=0", "limit=1001", "limit=abc", "limit=10x", "limit=",
                                   "limit", "limit=-1", "limit=+5", "limit=1e2", "limit=99999"};
        const char *bad_cursor[] = {"cursor=", "cursor=xyz", "cursor=0123456789abcdef0123456",
                                    "cursor=0123456789abcdef01234567x", "cursor"};
        char path[128];

        for (size_t i = 0; i < sizeof(bad_limit) / sizeof(bad_limit[0]); i++) {
            snprintf(path, sizeof(path), "/posts?%s", bad_limit[i]);
            req(g_h, "GET", url_of(&g_n1, path), NULL, NULL, 0, &r);
            assert_error(&r, 400, "invalid_limit");
            resp_free(&r);
        }
        for (size_t i = 0; i < sizeof(bad_cursor) / sizeof(bad_cursor[0]); i++) {
            snprintf(path, sizeof(path), "/posts?%s", bad_cursor[i]);
            req(g_h, "GET", url_of(&g_n1, path), NULL, NULL, 0, &r);
            assert_error(&r, 400, "invalid_cursor");
            resp_free(&r);
        }
        req(g_h, "GET", url_of(&g_n1, "/posts?limit=1000"), NULL, NULL, 0, &r);
        assert_int_equal(r.status, 200);
        assert_string_equal(hdr(&r, "X-Cache", v, sizeof(v)), "MISS");
        resp_free(&r);
        req(g_h, "HEAD", url_of(&g_n1, "/posts"), NULL, NULL, 0, &r);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.len, 0);
        resp_free(&r);
    }
}

static void
test_assets(void **state)
{
    const char *hs[] = {AUTH, "Content-Type: Image/PNG; name=x", NULL};
    unsigned char data[70000];
    char hex[65], v[256], path[128], etag[80];
    struct resp r;
    unsigned seed = (unsigned)time(NULL);

    for (size_t i = 0; i < sizeof(data); i++) {
        data[i] = (unsigned char)rand_r(&seed);
    }
    {
        unsigned char md[32];

        SHA256(data, sizeof(data), md);
        for (int i = 0; i < 32; i++) {
            snprintf(hex + 2 * i, 3, "%02x", md[i]);
        }
    }
    for (int round = 0; round < 2; round++) {     /* same bytes, same id, 201 again */
        req(g_h, "POST", url_of(&g_n1, "/assets"), hs, data, sizeof(data), &r);
        assert_int_equal(r.status, 201);
        assert_string_equal(jstr(r.body, "id", v, sizeof(v)), hex);
        assert_string_equal(jstr(r.body, "sha256", v, sizeof(v)), hex);
        assert_string_equal(jstr(r.body, "content_type", v, sizeof(v)), "image/png");
        assert_int_equal(jint(r.body, "size"), sizeof(data));
        snprintf(path, sizeof(path), "/assets/%s", hex);
        assert_string_equal(jstr(r.body, "url", v, sizeof(v)), path);
        resp_free(&r);
    }
    /* the same bytes under another allowed type: same id, the stored type reported */
    {
        const char *jpeg[] = {AUTH, "Content-Type: image/jpeg", NULL};

        req(g_h, "POST", url_of(&g_n1, "/assets"), jpeg, data, sizeof(data), &r);
        assert_int_equal(r.status, 201);
        assert_string_equal(jstr(r.body, "id", v, sizeof(v)), hex);
        assert_string_equal(jstr(r.body, "content_type", v, sizeof(v)), "image/png");
        resp_free(&r);
    }
    req(g_h, "GET", url_of(&g_n1, path), NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, sizeof(data));
    assert_memory_equal(r.body, data, sizeof(data));
    assert_string_equal(hdr(&r, "Content-Type", v, sizeof(v)), "image/png");
    snprintf(etag, sizeof(etag), "\"%s\"", hex);
    assert_string_equal(hdr(&r, "ETag", v, sizeof(v)), etag);
    assert_string_equal(hdr(&r, "Cache-Control", v, sizeof(v)), "public, max-age=31536000, immutable");
    assert_string_equal(hdr(&r, "X-Blog-Node", v, sizeof(v)), "n1");
    resp_free(&r);
    req(g_h, "HEAD", url_of(&g_n1, path), NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, 0);
    assert_string_equal(hdr(&r, "Content-Length", v, sizeof(v)), "70000");
    resp_free(&r);
    {
        char inm[120];

        snprintf(inm, sizeof(inm), "If-None-Match: W/%s", etag);
        const char *h[] = {inm, NULL};

        req(g_h, "GET", url_of(&g_n1, path), h, NULL, 0, &r);
        assert_int_equal(r.status, 304);
        assert_int_equal(r.len, 0);
        assert_string_equal(hdr(&r, "ETag", v, sizeof(v)), etag);
        resp_free(&r);
    }
    /* errors */
    {
        const char *txt[] = {AUTH, "Content-Type: text/plain", NULL};
        const char *none[] = {AUTH, NULL};
        const char *png[] = {AUTH, "Content-Type: image/png", NULL};
        char *big = calloc(1, ASSET_LIMIT + 10);

        req(g_h, "POST", url_of(&g_n1, "/assets"), txt, "abc", 3, &r);
        assert_error(&r, 415, "unsupported_media_type");
        resp_free(&r);
        req(g_h, "POST", url_of(&g_n1, "/assets"), none, "abc", 3, &r);
        assert_error(&r, 415, "unsupported_media_type");
        resp_free(&r);
        req(g_h, "POST", url_of(&g_n1, "/assets"), png, "", 0, &r);
        assert_error(&r, 400, "empty_body");
        resp_free(&r);
        req(g_h, "POST", url_of(&g_n1, "/assets"), png, big, ASSET_LIMIT + 10, &r);
        assert_error(&r, 413, "body_too_large");
        resp_free(&r);
        free(big);
        req(g_h, "GET", url_of(&g_n1, "/assets/0000000000000000000000000000000000000000000000000000000000000000"),
            NULL, NULL, 0, &r);
        assert_error(&r, 404, "not_found");
        resp_free(&r);
        req(g_h, "GET", url_of(&g_n1, "/assets/abc"), NULL, NULL, 0, &r);
        assert_error(&r, 404, "not_found");
        resp_free(&r);
    }
}

/* A body whose length is known up front (Content-Length) or not (chunked). */
struct chunk_src {
    size_t left;
};

static size_t
read_zeros(char *buf, size_t size, size_t nitems, void *arg)
{
    struct chunk_src *s = arg;
    size_t n = size * nitems;

    if (n > s->left) {
        n = s->left;
    }
    memset(buf, ' ', n);
    s->left -= n;
    return n;
}

static void
test_too_large(void **state)
{
    size_t big = 10u << 20;
    char *body = malloc(big);
    long before, after;
    struct resp r;

    memset(body, ' ', big);
    body[0] = '{';
    before = rss_kb(g_n1.pid);
    /* 10 MiB with Content-Length, client waits for 100-continue: 413 at once */
    {
        const char *hs[] = {AUTH, CT_JSON, "Expect: 100-continue", NULL};

        req(g_h, "POST", url_of(&g_n1, "/posts"), hs, body, big, &r);
        assert_error(&r, 413, "body_too_large");
        resp_free(&r);
    }
    /* 10 MiB with Content-Length, no Expect: read through, never buffered, 413 */
    {
        const char *hs[] = {AUTH, CT_JSON, NULL};

        req(g_h, "POST", url_of(&g_n1, "/posts"), hs, body, big, &r);
        assert_error(&r, 413, "body_too_large");
        resp_free(&r);
        /* and the connection stays usable */
        req(g_h, "GET", url_of(&g_n1, "/healthz"), NULL, NULL, 0, &r);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.connects, 0);
        resp_free(&r);
    }
    /* 10 MiB chunked (no length): counted while streaming */
    {
        struct curl_slist *hl = NULL;
        struct chunk_src src = {.left = big};
        CURL *h = curl_easy_init();

        memset(&r, 0, sizeof(r));
        hl = curl_slist_append(hl, AUTH);
        hl = curl_slist_append(hl, CT_JSON);
        hl = curl_slist_append(hl, "Transfer-Encoding: chunked");
        hl = curl_slist_append(hl, "Expect:");
        curl_easy_setopt(h, CURLOPT_URL, url_of(&g_n1, "/posts"));
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, read_zeros);
        curl_easy_setopt(h, CURLOPT_READDATA, &src);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &r);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 20000L);
        assert_int_equal(curl_easy_perform(h), CURLE_OK);
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
        assert_int_equal(r.status, 413);
        assert_non_null(strstr(r.body, "body_too_large"));
        curl_slist_free_all(hl);
        curl_easy_cleanup(h);
        free(r.body);
    }
    after = rss_kb(g_n1.pid);
    /* never holds a 10 MiB body: growth stays far below it */
    if (after - before > 4 * 1024) {
        fail_msg("RSS grew from %ld to %ld KiB while rejecting 10 MiB bodies", before, after);
    }
    /* a post body just over limits.post_body is a 400 (field limit), still serving */
    {
        const char *hs[] = {AUTH, CT_JSON, NULL};
        size_t n = POST_BODY_LIMIT + 1;
        char *j = malloc(n + 64);
        int len = sprintf(j, "{\"title\":\"t\",\"author\":\"a\",\"body\":\"");

        memset(j + len, 'x', n);
        strcpy(j + len + n, "\"}");
        req(g_h, "POST", url_of(&g_n1, "/posts"), hs, j, strlen(j), &r);
        assert_error(&r, 400, "invalid_field");
        resp_free(&r);
        free(j);
    }
    free(body);
    assert_serving(&g_n1);
}

/* Client sends part of the body and closes: the node counts it and keeps serving. */
static void
test_truncated(void **state)
{
    for (int i = 0; i < 3; i++) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_n1.port)};
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        const char *head = "POST /posts HTTP/1.1\r\nHost: x\r\n" AUTH "\r\n" CT_JSON "\r\n"
                           "Content-Length: 5000\r\n\r\n{\"title\":\"trunc";

        inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
        assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        assert_true(write(fd, head, strlen(head)) == (ssize_t)strlen(head));
        usleep(50 * 1000);
        close(fd);
    }
    usleep(200 * 1000);
    assert_serving(&g_n1);
    {
        struct resp r;

        req(g_h, "GET", url_of(&g_n1, "/metrics"), NULL, NULL, 0, &r);
        assert_int_equal(r.status, 200);
        const char *p = strstr(r.body, "blog_node_bodies_rejected_total{reason=\"truncated\"} ");

        assert_non_null(p);
        assert_true(atof(p + strlen("blog_node_bodies_rejected_total{reason=\"truncated\"} ")) >= 3);
        resp_free(&r);
    }
}

static void
test_keepalive(void **state)
{
    CURL *h = curl_easy_init();
    const char *hs[] = {AUTH, CT_JSON, NULL};
    const char *body = "{\"title\":\"ka\",\"body\":\"b\",\"author\":\"a\"}";
    char id[32], path[64];
    struct resp r;

    create_post(h, &g_n1, "keepalive", id, NULL);
    snprintf(path, sizeof(path), "/posts/%s", id);
    req(h, "GET", url_of(&g_n1, path), NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.connects, 0);        /* reused the POST's connection */
    resp_free(&r);
    req(h, "GET", url_of(&g_n1, path), NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.connects, 0);
    assert_false(has_hdr(&r, "Connection"));   /* no "Connection: close" */
    resp_free(&r);
    req(h, "GET", url_of(&g_n1, "/nope"), NULL, NULL, 0, &r);
    assert_int_equal(r.status, 404);
    assert_int_equal(r.connects, 0);
    resp_free(&r);
    req(h, "GET", url_of(&g_n1, "/posts?limit=5"), NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.connects, 0);
    resp_free(&r);
    req(h, "POST", url_of(&g_n1, "/posts"), hs, body, strlen(body), &r);
    assert_int_equal(r.status, 201);
    assert_int_equal(r.connects, 0);
    resp_free(&r);
    curl_easy_cleanup(h);
}

/* ------------------------------------------------ pagination over 2,500 posts */

struct seeder {
    const struct node_proc *n;
    int from, count;
    char (*ids)[32];
};

static void *
seed_thread(void *arg)
{
    struct seeder *s = arg;
    CURL *h = curl_easy_init();
    char title[32];

    for (int i = 0; i < s->count; i++) {
        snprintf(title, sizeof(title), "seed %d", s->from + i);
        create_post(h, s->n, title, s->ids[s->from + i], NULL);
    }
    curl_easy_cleanup(h);
    return NULL;
}

static int
cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void
test_pagination(void **state)
{
    char (*ids)[32] = calloc(NSEED, 32);
    size_t cap = 8192, nseen = 0;
    char (*seen)[32] = calloc(cap, 32);
    pthread_t th[4];
    struct seeder sd[4];
    char cursor[64] = "";
    char path[128];
    int pages = 0;

    for (int i = 0; i < 4; i++) {
        sd[i] = (struct seeder){.n = &g_n1, .from = i * (NSEED / 4), .count = NSEED / 4, .ids = ids};
        pthread_create(&th[i], NULL, seed_thread, &sd[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
    }
    /* walk with an odd page size */
    for (;;) {
        struct resp r;
        bson_t *b;
        bson_iter_t it, arr;

        if (cursor[0] != '\0') {
            snprintf(path, sizeof(path), "/posts?limit=97&cursor=%s", cursor);
        } else {
            snprintf(path, sizeof(path), "/posts?limit=97");
        }
        req(g_h, "GET", url_of(&g_n1, path), NULL, NULL, 0, &r);
        assert_int_equal(r.status, 200);
        b = jparse(r.body);
        assert_true(bson_iter_init_find(&it, b, "posts") && BSON_ITER_HOLDS_ARRAY(&it));
        assert_true(bson_iter_recurse(&it, &arr));
        size_t inpage = 0;

        while (bson_iter_next(&arr)) {
            bson_iter_t f;

            assert_true(bson_iter_recurse(&arr, &f) && bson_iter_find(&f, "id"));
            assert_true(nseen < cap);
            snprintf(seen[nseen], 32, "%s", bson_iter_utf8(&f, NULL));
            /* strictly id-descending across pages */
            if (nseen > 0) {
                assert_true(strcmp(seen[nseen - 1], seen[nseen]) > 0);
            }
            nseen++;
            inpage++;
        }
        bson_destroy(b);
        pages++;
        if (jnull(r.body, "next_cursor")) {
            assert_true(inpage <= 97);
            resp_free(&r);
            break;
        }
        assert_int_equal(inpage, 97);
        jstr(r.body, "next_cursor", cursor, sizeof(cursor));
        assert_string_equal(cursor, seen[nseen - 1]);
        resp_free(&r);
    }
    /* every seeded post exactly once (strictly descending = no duplicates) */
    qsort(seen, nseen, 32, cmp_id);
    for (int i = 0; i < NSEED; i++) {
        assert_non_null(bsearch(ids[i], seen, nseen, 32, cmp_id));
    }
    assert_true(nseen >= NSEED);
    free(ids);
    free(seen);
}

/* ------------------------------------------------ concurrent If-Match on one id */

struct racer {
    const char *path;
    int attempts;
    int wins;
    uint64_t won[64];
    int other;
};

static void *
race_thread(void *arg)
{
    struct racer *rc = arg;
    CURL *h = curl_easy_init();
    const char *body = "{\"title\":\"race\",\"body\":\"b\",\"author\":\"a\"}";

    for (int i = 0; i < rc->attempts; i++) {
        struct resp r;
        char etag[80], im[120];

        req(h, "GET", url_of(&g_n1, rc->path), NULL, NULL, 0, &r);
        hdr(&r, "ETag", etag, sizeof(etag));
        resp_free(&r);
        snprintf(im, sizeof(im), "If-Match: %s", etag);
        const char *hs[] = {AUTH, CT_JSON, im, NULL};

        req(h, "PUT", url_of(&g_n1, rc->path), hs, body, strlen(body), &r);
        if (r.status == 200 && rc->wins < 64) {
            rc->won[rc->wins++] = (uint64_t)jint(r.body, "version");
        } else if (r.status != 412) {
            rc->other++;
        }
        resp_free(&r);
    }
    curl_easy_cleanup(h);
    return NULL;
}

static void
test_concurrent_if_match(void **state)
{
    enum { NT = 8, ATTEMPTS = 25 };
    struct racer rc[NT];
    pthread_t th[NT];
    char id[32], path[64];
    int total = 0;
    bool used[NT * ATTEMPTS + 2] = {false};
    struct resp r;

    create_post(g_h, &g_n1, "race", id, NULL);
    snprintf(path, sizeof(path), "/posts/%s", id);
    for (int i = 0; i < NT; i++) {
        rc[i] = (struct racer){.path = path, .attempts = ATTEMPTS};
        pthread_create(&th[i], NULL, race_thread, &rc[i]);
    }
    for (int i = 0; i < NT; i++) {
        pthread_join(th[i], NULL);
    }
    for (int i = 0; i < NT; i++) {
        assert_int_equal(rc[i].other, 0);
        for (int j = 0; j < rc[i].wins; j++) {
            uint64_t v = rc[i].won[j];

            assert_true(v >= 2 && v < NT * ATTEMPTS + 2);
            assert_false(used[v]);          /* exactly one winner per version */
            used[v] = true;
            total++;
        }
    }
    req(g_h, "GET", url_of(&g_n1, path), NULL, NULL, 0, &r);
    assert_int_equal(jint(r.body, "version"), 1 + total);   /* no update lost */
    resp_free(&r);
    assert_true(total >= ATTEMPTS);
    print_message("%d winners out of %d conditional PUTs\n", total, NT * ATTEMPTS);
}

/* ------------------------------------------------ two nodes on one LMDB */

struct writer {
    const struct node_proc *mine, *other;
    int n;
    char ids[40][32];
    int failures;
};

static void *
writer_thread(void *arg)
{
    struct writer *w = arg;
    CURL *h = curl_easy_init();
    char title[64];

    for (int i = 0; i < w->n; i++) {
        snprintf(title, sizeof(title), "w%p-%d", (void *)w, i);
        create_post(h, w->mine, title, w->ids[i], NULL);
    }
    /* update each through the other node, conditionally on version 1 */
    for (int i = 0; i < w->n; i++) {
        char path[64], im[80], body[128];
        struct resp r;

        snprintf(path, sizeof(path), "/posts/%s", w->ids[i]);
        snprintf(im, sizeof(im), "If-Match: \"%s-1\"", w->ids[i]);
        snprintf(body, sizeof(body), "{\"title\":\"upd %s\",\"body\":\"b\",\"author\":\"a\"}",
                 w->ids[i]);
        const char *hs[] = {AUTH, CT_JSON, im, NULL};

        req(h, "PUT", url_of(w->other, path), hs, body, strlen(body), &r);
        if (r.status != 200 || jint(r.body, "version") != 2) {
            w->failures++;
        }
        resp_free(&r);
    }
    curl_easy_cleanup(h);
    return NULL;
}

static void
test_two_nodes_one_store(void **state)
{
    enum { NW = 8, PER = 25 };
    struct writer *w = calloc(NW, sizeof(*w));
    pthread_t th[NW];

    node_start(&g_n2);
    for (int i = 0; i < NW; i++) {
        w[i].mine = i % 2 ? &g_n2 : &g_n1;
        w[i].other = i % 2 ? &g_n1 : &g_n2;
        w[i].n = PER;
        pthread_create(&th[i], NULL, writer_thread, &w[i]);
    }
    for (int i = 0; i < NW; i++) {
        pthread_join(th[i], NULL);
    }
    for (int i = 0; i < NW; i++) {
        assert_int_equal(w[i].failures, 0);
        for (int j = 0; j < PER; j++) {
            const struct node_proc *nodes[] = {&g_n1, &g_n2};

            for (int k = 0; k < 2; k++) {
                char path[64], title[80], v[128];
                struct resp r;

                snprintf(path, sizeof(path), "/posts/%s", w[i].ids[j]);
                req(g_h, "GET", url_of(nodes[k], path), NULL, NULL, 0, &r);
                assert_int_equal(r.status, 200);
                assert_int_equal(jint(r.body, "version"), 2);
                snprintf(title, sizeof(title), "upd %s", w[i].ids[j]);
                assert_string_equal(jstr(r.body, "title", v, sizeof(v)), title);
                hdr(&r, "X-Blog-Node", v, sizeof(v));
                assert_string_equal(v, nodes[k]->name);
                resp_free(&r);
            }
        }
    }
    free(w);
    /* SIGTERM: graceful, exit 0 */
    {
        int st = bl_h_stop(g_n2.pid, SIGTERM, 8000);

        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
}

/* ------------------------------------------------ kill -9 during acknowledged writes */

struct acker {
    const struct node_proc *n;
    volatile bool stop;
    int nacked;
    char ids[4000][32];
};

static void *
ack_thread(void *arg)
{
    struct acker *a = arg;
    CURL *h = curl_easy_init();
    const char *hs[] = {AUTH, CT_JSON, NULL};
    const char *body = "{\"title\":\"durable\",\"body\":\"must survive kill -9\",\"author\":\"a\"}";

    while (!a->stop && a->nacked < 4000) {
        struct resp r;

        req(h, "POST", url_of(a->n, "/posts"), hs, body, strlen(body), &r);
        if (r.status == 201) {
            jstr(r.body, "id", a->ids[a->nacked], 32);
            a->nacked++;
        } else if (r.status == 0) {
            resp_free(&r);
            break;                          /* the node is gone */
        }
        resp_free(&r);
    }
    curl_easy_cleanup(h);
    return NULL;
}

static void
test_kill9_durability(void **state)
{
    struct node_proc k;
    char store[600];
    struct acker *a = calloc(1, sizeof(*a));
    pthread_t th[2];
    struct acker *b = calloc(1, sizeof(*b));

    node_init(&k, "k1");
    snprintf(store, sizeof(store), "%s/store-k", g_dir);
    write_conf(&k, NULL, store, g_tokens_yaml);
    node_start(&k);
    a->n = &k;
    b->n = &k;
    pthread_create(&th[0], NULL, ack_thread, a);
    pthread_create(&th[1], NULL, ack_thread, b);
    usleep(700 * 1000);
    kill(k.pid, SIGKILL);
    pthread_join(th[0], NULL);
    pthread_join(th[1], NULL);
    bl_h_stop(k.pid, SIGKILL, 2000);
    assert_true(a->nacked + b->nacked > 10);
    print_message("kill -9 after %d acknowledged writes\n", a->nacked + b->nacked);
    node_start(&k);                         /* the store opens cleanly */
    for (int t = 0; t < 2; t++) {
        struct acker *x = t ? b : a;

        for (int i = 0; i < x->nacked; i++) {
            char path[64];
            struct resp r;

            snprintf(path, sizeof(path), "/posts/%s", x->ids[i]);
            req(g_h, "GET", url_of(&k, path), NULL, NULL, 0, &r);
            if (r.status != 200) {
                fail_msg("acknowledged post %s lost after kill -9 (%ld)", x->ids[i], r.status);
            }
            resp_free(&r);
        }
    }
    bl_h_stop(k.pid, SIGTERM, 5000);
    free(a);
    free(b);
}

/*
 * Group commit (node_store_lmdb.c): 32 concurrent writers share each commit. kill -9 the
 * node under that load: every POST that was answered 201 must be there after the restart.
 */
#define KILL_WRITERS 32

static void
test_kill9_concurrent_posts(void **state)
{
    struct node_proc k;
    char store[600];
    struct acker *a[KILL_WRITERS];
    pthread_t th[KILL_WRITERS];
    int total = 0, lost = 0;

    node_init(&k, "k2");
    snprintf(store, sizeof(store), "%s/store-k2", g_dir);
    write_conf(&k, NULL, store, g_tokens_yaml);
    node_start(&k);
    for (int i = 0; i < KILL_WRITERS; i++) {
        a[i] = calloc(1, sizeof(*a[i]));
        assert_non_null(a[i]);
        a[i]->n = &k;
        assert_int_equal(pthread_create(&th[i], NULL, ack_thread, a[i]), 0);
    }
    usleep(1200 * 1000);
    kill(k.pid, SIGKILL);
    for (int i = 0; i < KILL_WRITERS; i++) {
        pthread_join(th[i], NULL);
        total += a[i]->nacked;
    }
    bl_h_stop(k.pid, SIGKILL, 2000);
    assert_true(total > KILL_WRITERS);
    print_message("kill -9 after %d acknowledged writes from %d concurrent clients\n", total,
                  KILL_WRITERS);
    node_start(&k);                         /* the store opens cleanly */
    for (int t = 0; t < KILL_WRITERS; t++) {
        for (int i = 0; i < a[t]->nacked; i++) {
            char path[64];
            struct resp r;

            snprintf(path, sizeof(path), "/posts/%s", a[t]->ids[i]);
            req(g_h, "GET", url_of(&k, path), NULL, NULL, 0, &r);
            if (r.status != 200) {
                print_message("acknowledged post %s lost after kill -9 (%ld)\n", a[t]->ids[i],
                              r.status);
                lost++;
            }
            resp_free(&r);
        }
        free(a[t]);
    }
    bl_h_stop(k.pid, SIGTERM, 5000);
    assert_int_equal(lost, 0);
}

/* ------------------------------------------------ config: tokens, SIGHUP, refusal */

static void
test_reload_and_refusal(void **state)
{
    struct node_proc k;
    char store[600], hex[65], yaml[256];
    const char *body = "{\"title\":\"t\",\"body\":\"b\",\"author\":\"a\"}";
    const char *old[] = {AUTH, CT_JSON, NULL};
    const char *new_[] = {"Authorization: Bearer " TOKEN2, CT_JSON, NULL};
    struct resp r;
    int st;

    node_init(&k, "r1");
    snprintf(store, sizeof(store), "%s/store-r", g_dir);
    /* no tokens and no allow_anonymous_writes: refuses to start */
    write_conf(&k, NULL, store, "[]");
    {
        char *argv[] = {(char *)bl_h_bin("BLOG_NODE_BIN"), "--config", k.conf, "--name", "r1", NULL};
        char *check[] = {(char *)bl_h_bin("BLOG_NODE_BIN"), "--config", k.conf, "--name", "r1",
                         "--check-config", NULL};
        char *unknown[] = {(char *)bl_h_bin("BLOG_NODE_BIN"), "--config", k.conf, "--name", "zz",
                           NULL};
        pid_t p = bl_h_spawn(argv, k.log);

        st = -1;
        while (bl_h_alive(p, &st)) {
            usleep(20000);
        }
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 1);
        char *log = bl_h_read_file(k.log, NULL);

        assert_non_null(strstr(log, "no write tokens"));
        free(log);
        p = bl_h_spawn(check, NULL);
        while (bl_h_alive(p, &st)) {
            usleep(20000);
        }
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 1);
        write_conf(&k, NULL, store, g_tokens_yaml);
        p = bl_h_spawn(check, NULL);
        while (bl_h_alive(p, &st)) {
            usleep(20000);
        }
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        p = bl_h_spawn(unknown, NULL);
        while (bl_h_alive(p, &st)) {
            usleep(20000);
        }
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 1);
    }
    node_start(&k);
    req(g_h, "POST", url_of(&k, "/posts"), old, body, strlen(body), &r);
    assert_int_equal(r.status, 201);
    resp_free(&r);
    req(g_h, "POST", url_of(&k, "/posts"), new_, body, strlen(body), &r);
    assert_int_equal(r.status, 401);
    resp_free(&r);
    /* SIGHUP with a new token list: applies without a restart */
    sha_hex(TOKEN2, hex);
    snprintf(yaml, sizeof(yaml), "[\"%s\"]", hex);
    write_conf(&k, NULL, store, yaml);
    kill(k.pid, SIGHUP);
    for (int i = 0; i < 100; i++) {
        req(g_h, "POST", url_of(&k, "/posts"), new_, body, strlen(body), &r);
        if (r.status == 201) {
            break;
        }
        resp_free(&r);
        usleep(20000);
    }
    assert_int_equal(r.status, 201);
    resp_free(&r);
    req(g_h, "POST", url_of(&k, "/posts"), old, body, strlen(body), &r);
    assert_int_equal(r.status, 401);
    resp_free(&r);
    /* a reload that would leave no tokens is refused: the running tokens stay */
    write_conf(&k, NULL, store, "[]");
    kill(k.pid, SIGHUP);
    usleep(200 * 1000);
    req(g_h, "POST", url_of(&k, "/posts"), new_, body, strlen(body), &r);
    assert_int_equal(r.status, 201);
    resp_free(&r);
    st = bl_h_stop(k.pid, SIGTERM, 8000);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/*
 * SIGTERM with a request in flight: the listener closes at once, the request in flight
 * still completes, then the node exits 0.
 */
static void
test_graceful_shutdown(void **state)
{
    struct node_proc k;
    char store[600], buf[4096];
    const char *json = "{\"title\":\"in flight\",\"body\":\"b\",\"author\":\"a\"}";
    struct sockaddr_in sa = {.sin_family = AF_INET};
    int fd, fd2, st;
    ssize_t n, got = 0;
    char head[512];

    node_init(&k, "g1");
    snprintf(store, sizeof(store), "%s/store-g", g_dir);
    write_conf(&k, NULL, store, g_tokens_yaml);
    node_start(&k);
    sa.sin_port = htons((uint16_t)k.port);
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    snprintf(head, sizeof(head), "POST /posts HTTP/1.1\r\nHost: x\r\n" AUTH "\r\n" CT_JSON
             "\r\nContent-Length: %zu\r\n\r\n", strlen(json));
    assert_true(write(fd, head, strlen(head)) == (ssize_t)strlen(head));
    assert_true(write(fd, json, 10) == 10);            /* half a body: in flight */
    usleep(200 * 1000);
    kill(k.pid, SIGTERM);
    usleep(300 * 1000);
    assert_true(bl_h_alive(k.pid, NULL));               /* waiting for us */
    fd2 = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_not_equal(connect(fd2, (struct sockaddr *)&sa, sizeof(sa)), 0);  /* not accepting */
    close(fd2);
    assert_true(write(fd, json + 10, strlen(json) - 10) == (ssize_t)(strlen(json) - 10));
    while (got < (ssize_t)sizeof(buf) - 1 && (n = read(fd, buf + got, sizeof(buf) - 1 - (size_t)got)) > 0) {
        got += n;
        buf[got] = '\0';
        if (strstr(buf, "\"version\":1}") != NULL) {
            break;
        }
    }
    buf[got > 0 ? got : 0] = '\0';
    assert_int_equal(strncmp(buf, "HTTP/1.1 201", 12), 0);
    /* draining: the answer tells keep-alive clients to go elsewhere */
    assert_non_null(strcasestr(buf, "\r\nConnection: close\r\n"));
    close(fd);
    st = bl_h_stop(k.pid, SIGTERM, 8000);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* A full LMDB map: 507 insufficient_storage with a logged reason, reads still served. */
static void
test_store_full(void **state)
{
    struct node_proc k;
    char store[600], *body = malloc(60100), *log;
    const char *hs[] = {AUTH, CT_JSON, NULL};
    int created = 0, full = 0;
    struct resp r;

    node_init(&k, "f1");
    snprintf(store, sizeof(store), "%s/store-f", g_dir);
    g_map_size = "1MiB";
    write_conf(&k, NULL, store, g_tokens_yaml);
    g_map_size = "256MiB";
    node_start(&k);
    snprintf(body, 60100, "{\"title\":\"t\",\"author\":\"a\",\"body\":\"%060000d\"}", 0);
    for (int i = 0; i < 40 && full == 0; i++) {
        req(g_h, "POST", url_of(&k, "/posts"), hs, body, strlen(body), &r);
        if (r.status == 201) {
            created++;
        } else {
            char v[128];

            if (r.status != 507 || strcmp(jstr(r.body, "error.code", v, sizeof(v)),
                                          "insufficient_storage") != 0) {
                fail_msg("expected 201 or 507, got %ld %s", r.status, r.body);
            }
            full++;
        }
        resp_free(&r);
    }
    assert_true(created > 0);
    assert_int_equal(full, 1);
    req(g_h, "GET", url_of(&k, "/posts?limit=1"), NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    log = bl_h_read_file(k.log, NULL);
    assert_non_null(strstr(log, "\"status\":507"));
    free(log);
    free(body);
    bl_h_stop(k.pid, SIGTERM, 5000);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_internal_endpoints),
        cmocka_unit_test(test_post_crud),
        cmocka_unit_test(test_auth),
        cmocka_unit_test(test_validation_errors),
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_assets),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_keepalive),
        cmocka_unit_test(test_concurrent_if_match),
        cmocka_unit_test(test_pagination),
        cmocka_unit_test(test_two_nodes_one_store),
        cmocka_unit_test(test_kill9_durability),
        cmocka_unit_test(test_kill9_concurrent_posts),
        cmocka_unit_test(test_reload_and_refusal),
        cmocka_unit_test(test_store_full),
        cmocka_unit_test(test_graceful_shutdown),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
