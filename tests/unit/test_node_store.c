/*
 * Store conformance suite: one set of tests, written against node_store.h only, run
 * against every driver. LMDB always runs (a fresh temp dir per test); MongoDB runs when
 * BLOGSCALE_TEST_MONGODB_URI is set (a fresh database per test, dropped afterwards).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <mongoc/mongoc.h>
#include <openssl/evp.h>

#include "bl/bl_conf.h"
#include "bl/bl_err.h"
#include "node_store.h"

#define MONGO_ENV "BLOGSCALE_TEST_MONGODB_URI"

static enum bl_conf_store_driver cur_driver;
static const char *mongo_uri;

struct fixture {
    struct node_store *s;
    struct bl_conf_store conf;
    char dir[256];                      /* LMDB temp dir (the store path is dir/data) */
    char dbname[64];                    /* MongoDB database */
};

static void
rm_rf(const char *path)
{
    char cmd[512];

    if (path[0] == '\0') {
        return;
    }
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
    if (system(cmd) != 0) {
        fprintf(stderr, "warning: could not remove %s\n", path);
    }
}

static int
fx_setup(void **state)
{
    static unsigned seq;
    struct fixture *f = calloc(1, sizeof(*f));
    char *err = NULL;
    char path[300];
    int rc;

    if (f == NULL) {
        return -1;
    }
    f->conf.driver = cur_driver;
    if (cur_driver == BL_STORE_LMDB) {
        snprintf(f->dir, sizeof(f->dir), "/tmp/blog-store-test.XXXXXX");
        if (mkdtemp(f->dir) == NULL) {
            free(f);
            return -1;
        }
        snprintf(path, sizeof(path), "%s/data", f->dir);
        f->conf.path = strdup(path);
        f->conf.map_size = 256ull << 20;
    } else {
        snprintf(f->dbname, sizeof(f->dbname), "blogscale_test_%ld_%u_%ld", (long)getpid(),
                 seq++, (long)time(NULL));
        f->conf.uri = strdup(mongo_uri);
        f->conf.database = strdup(f->dbname);
        f->conf.write_concern = strdup("majority");
        f->conf.read_preference = strdup("primary");
        f->conf.server_selection_timeout_ms = 5000;
        f->conf.socket_timeout_ms = 10000;
    }
    rc = node_store_open_rc(&f->conf, &f->s, &err);
    if (rc != 0) {
        fprintf(stderr, "store open failed: %d %s\n", rc, err != NULL ? err : "");
        free(err);
        rm_rf(f->dir);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static void
drop_mongo_db(const char *dbname)
{
    mongoc_client_t *c = mongoc_client_new(mongo_uri);
    mongoc_database_t *db;
    bson_error_t e;

    if (c == NULL) {
        return;
    }
    db = mongoc_client_get_database(c, dbname);
    if (!mongoc_database_drop(db, &e)) {
        fprintf(stderr, "warning: drop %s: %s\n", dbname, e.message);
    }
    mongoc_database_destroy(db);
    mongoc_client_destroy(c);
}

static int
fx_teardown(void **state)
{
    struct fixture *f = *state;

    node_store_close(f->s);
    if (f->conf.driver == BL_STORE_LMDB) {
        rm_rf(f->dir);
    } else {
        drop_mongo_db(f->dbname);
    }
    free(f->conf.path);
    free(f->conf.uri);
    free(f->conf.database);
    free(f->conf.write_concern);
    free(f->conf.read_preference);
    free(f);
    return 0;
}

/* ---- helpers ---- */

static void
make_post(struct node_post *p, const char *title, const char *body, size_t ntags)
{
    size_t i;

    memset(p, 0, sizeof(*p));
    node_store_new_id(p->id);
    p->title = strdup(title);
    p->body = strdup(body);
    p->author = strdup("Ada Lovelace \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    p->ntags = ntags;
    p->tags = ntags > 0 ? calloc(ntags, sizeof(char *)) : NULL;
    for (i = 0; i < ntags; i++) {
        char t[32];

        snprintf(t, sizeof(t), "tag-%zu", i);
        p->tags[i] = strdup(t);
    }
    p->created_ms = 1764288000123ull;
    p->updated_ms = p->created_ms;
    p->version = 1;
}

static void
set_str(char **dst, const char *v)
{
    free(*dst);
    *dst = strdup(v);
}

static void
assert_post_eq(const struct node_post *a, const struct node_post *b)
{
    size_t i;

    assert_string_equal(a->id, b->id);
    assert_string_equal(a->title, b->title);
    assert_string_equal(a->body, b->body);
    assert_string_equal(a->author, b->author);
    assert_int_equal(a->ntags, b->ntags);
    for (i = 0; i < a->ntags; i++) {
        assert_string_equal(a->tags[i], b->tags[i]);
    }
    assert_int_equal(a->created_ms, b->created_ms);
    assert_int_equal(a->updated_ms, b->updated_ms);
    assert_int_equal(a->version, b->version);
}

/* ---- CRUD ---- */

static void
test_crud(void **state)
{
    struct fixture *f = *state;
    struct node_post p, got;
    char upper[NODE_ID_LEN + 1];
    size_t i;

    assert_int_equal(f->s->ops->health(f->s), 0);
    make_post(&p, "Hello \xe4\xb8\x96\xe7\x95\x8c", "first body", 3);
    assert_int_equal(f->s->ops->insert(f->s, &p), 0);
    assert_int_equal(f->s->ops->get(f->s, p.id, &got), 0);
    assert_post_eq(&p, &got);
    node_post_deinit(&got);

    /* Ids are case-insensitive on input, lowercase on output. */
    for (i = 0; i < NODE_ID_LEN; i++) {
        upper[i] = (char)(p.id[i] >= 'a' ? p.id[i] - 32 : p.id[i]);
    }
    upper[NODE_ID_LEN] = '\0';
    assert_int_equal(f->s->ops->get(f->s, upper, &got), 0);
    assert_string_equal(got.id, p.id);
    node_post_deinit(&got);

    /* The same id twice is refused, and the first stays. */
    {
        struct node_post dup;

        make_post(&dup, "dup", "dup", 0);
        memcpy(dup.id, p.id, sizeof(dup.id));
        assert_int_equal(f->s->ops->insert(f->s, &dup), BL_EEXIST);
        node_post_deinit(&dup);
        assert_int_equal(f->s->ops->get(f->s, p.id, &got), 0);
        assert_post_eq(&p, &got);
        node_post_deinit(&got);
    }

    /* Replace: new fields, version + 1, created kept, tags can shrink to none. */
    set_str(&p.title, "Hello again");
    set_str(&p.body, "");
    for (i = 0; i < p.ntags; i++) {
        free(p.tags[i]);
    }
    free(p.tags);
    p.tags = NULL;
    p.ntags = 0;
    p.updated_ms = p.created_ms + 5000;
    p.created_ms = 42;                  /* the driver restores the stored value */
    p.version = 999;                    /* ... and sets the version itself */
    assert_int_equal(f->s->ops->replace(f->s, &p, 1), 0);
    assert_int_equal(p.version, 2);
    assert_int_equal(p.created_ms, 1764288000123ull);
    assert_int_equal(f->s->ops->get(f->s, p.id, &got), 0);
    assert_post_eq(&p, &got);
    node_post_deinit(&got);

    /* Twenty tags and a body with every byte class of UTF-8 round trip. */
    {
        struct node_post q;

        make_post(&q, "t", "line1\nline2\t\"quoted\" \\ \xf4\x8f\xbf\xbf", NODE_MAX_TAGS);
        assert_int_equal(f->s->ops->insert(f->s, &q), 0);
        assert_int_equal(f->s->ops->get(f->s, q.id, &got), 0);
        assert_post_eq(&q, &got);
        node_post_deinit(&got);
        node_post_deinit(&q);
    }

    assert_int_equal(f->s->ops->remove(f->s, p.id, 2), 0);
    assert_int_equal(f->s->ops->get(f->s, p.id, &got), BL_ENOTFOUND);
    node_post_deinit(&got);
    node_post_deinit(&p);
}

static void
test_versions(void **state)
{
    struct fixture *f = *state;
    struct node_post p, got;

    make_post(&p, "v", "v", 1);
    assert_int_equal(f->s->ops->insert(f->s, &p), 0);

    /* Wrong version: conflict, nothing changes. */
    set_str(&p.title, "changed");
    assert_int_equal(f->s->ops->replace(f->s, &p, 2), BL_ECONFLICT);
    assert_int_equal(f->s->ops->get(f->s, p.id, &got), 0);
    assert_string_equal(got.title, "v");
    assert_int_equal(got.version, 1);
    node_post_deinit(&got);

    /* Right version, then 0 = any. */
    assert_int_equal(f->s->ops->replace(f->s, &p, 1), 0);
    assert_int_equal(p.version, 2);
    set_str(&p.title, "any");
    assert_int_equal(f->s->ops->replace(f->s, &p, 0), 0);
    assert_int_equal(p.version, 3);
    assert_int_equal(f->s->ops->replace(f->s, &p, 2), BL_ECONFLICT);
    assert_int_equal(f->s->ops->get(f->s, p.id, &got), 0);
    assert_string_equal(got.title, "any");
    assert_int_equal(got.version, 3);
    node_post_deinit(&got);

    /* Remove with a wrong version: conflict, still there. */
    assert_int_equal(f->s->ops->remove(f->s, p.id, 1), BL_ECONFLICT);
    assert_int_equal(f->s->ops->remove(f->s, p.id, 4), BL_ECONFLICT);
    assert_int_equal(f->s->ops->get(f->s, p.id, &got), 0);
    node_post_deinit(&got);
    assert_int_equal(f->s->ops->remove(f->s, p.id, 0), 0);
    assert_int_equal(f->s->ops->remove(f->s, p.id, 0), BL_ENOTFOUND);
    node_post_deinit(&p);
}

static void
test_not_found(void **state)
{
    struct fixture *f = *state;
    struct node_post p, got;
    struct node_post_list l;
    char id[NODE_ID_LEN + 1];

    node_store_new_id(id);
    assert_int_equal(f->s->ops->get(f->s, id, &got), BL_ENOTFOUND);
    node_post_deinit(&got);
    assert_int_equal(f->s->ops->get(f->s, "000000000000000000000000", &got), BL_ENOTFOUND);
    node_post_deinit(&got);
    assert_int_equal(f->s->ops->remove(f->s, id, 0), BL_ENOTFOUND);
    assert_int_equal(f->s->ops->remove(f->s, id, 1), BL_ENOTFOUND);
    make_post(&p, "x", "x", 0);
    assert_int_equal(f->s->ops->replace(f->s, &p, 0), BL_ENOTFOUND);
    assert_int_equal(f->s->ops->replace(f->s, &p, 1), BL_ENOTFOUND);

    /* An empty store lists nothing, from the top and from any cursor. */
    assert_int_equal(f->s->ops->list(f->s, NULL, 20, &l), 0);
    assert_int_equal(l.n, 0);
    assert_false(l.more);
    node_post_list_deinit(&l);
    assert_int_equal(f->s->ops->list(f->s, id, 20, &l), 0);
    assert_int_equal(l.n, 0);
    assert_false(l.more);
    node_post_list_deinit(&l);

    /* A cursor older than every post lists nothing; a removed post is gone from lists. */
    assert_int_equal(f->s->ops->insert(f->s, &p), 0);
    assert_int_equal(f->s->ops->list(f->s, "000000000000000000000001", 20, &l), 0);
    assert_int_equal(l.n, 0);
    assert_false(l.more);
    node_post_list_deinit(&l);
    assert_int_equal(f->s->ops->remove(f->s, p.id, 1), 0);
    assert_int_equal(f->s->ops->list(f->s, NULL, 20, &l), 0);
    assert_int_equal(l.n, 0);
    node_post_list_deinit(&l);
    node_post_deinit(&p);

    {
        struct node_asset a;

        assert_int_equal(f->s->ops->asset_get(f->s,
            "0000000000000000000000000000000000000000000000000000000000000000", &a),
            BL_ENOTFOUND);
        node_asset_deinit(&a);
    }
}

/* ---- list order and cursors ---- */

#define WALK_N 2500

static int
cmp_desc(const void *a, const void *b)
{
    return -strcmp(a, b);
}

/* Walks the whole store in pages of <limit>; checks order, coverage and `more`. */
static void
walk(struct node_store *s, char (*ids)[NODE_ID_LEN + 1], size_t n, size_t limit)
{
    char cursor[NODE_ID_LEN + 1] = "";
    size_t seen = 0, pages = 0;

    for (;;) {
        struct node_post_list l;
        size_t i;

        assert_int_equal(s->ops->list(s, cursor[0] != '\0' ? cursor : NULL, limit, &l), 0);
        pages++;
        assert_true(l.n <= limit);
        for (i = 0; i < l.n; i++) {
            assert_true(seen < n);
            /* ids[] is sorted descending: every post exactly once, in order. */
            assert_string_equal(l.posts[i].id, ids[seen]);
            if (seen > 0) {
                assert_true(strcmp(l.posts[i].id, ids[seen - 1]) < 0);
            }
            seen++;
        }
        /* more is true exactly when older posts remain. */
        assert_int_equal(l.more, seen < n);
        if (l.n > 0) {
            memcpy(cursor, l.posts[l.n - 1].id, sizeof(cursor));
        }
        if (!l.more) {
            node_post_list_deinit(&l);
            break;
        }
        assert_int_equal(l.n, limit);
        node_post_list_deinit(&l);
        assert_true(pages <= n + 1);
    }
    assert_int_equal(seen, n);
    assert_int_equal(pages, (n + limit - 1) / limit);  /* no empty trailing page */
}

static void
test_list_walk(void **state)
{
    struct fixture *f = *state;
    char (*ids)[NODE_ID_LEN + 1] = calloc(WALK_N, sizeof(*ids));
    static const size_t limits[] = { 1, 7, 20, 100, 1000, 2500, 3000 };
    size_t i;

    assert_non_null(ids);
    for (i = 0; i < WALK_N; i++) {
        struct node_post p;
        char title[32];

        snprintf(title, sizeof(title), "post %zu", i);
        make_post(&p, title, "body", i % 3);
        assert_int_equal(f->s->ops->insert(f->s, &p), 0);
        memcpy(ids[i], p.id, sizeof(ids[i]));
        node_post_deinit(&p);
    }
    qsort(ids, WALK_N, sizeof(*ids), cmp_desc);
    for (i = 1; i < WALK_N; i++) {
        assert_true(strcmp(ids[i - 1], ids[i]) > 0);    /* no duplicate ids */
    }
    for (i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
        /*
         * BLOGSCALE_TEST_STORE_WALK_MIN_LIMIT=N skips the walks with pages smaller than N.
         * test_store_mongo.sh sets 100 (the walks with 100, 1000, 2500 and 3000 posts a page
         * still cross all 2,500 posts): FerretDB's SQLite backend scans the whole collection
         * for every `_id < cursor` page (~0.1 s here), so the 2,983 pages of limits 1, 7
         * and 20 would take minutes.
         */
        const char *min = getenv("BLOGSCALE_TEST_STORE_WALK_MIN_LIMIT");

        if (min != NULL && limits[i] < strtoul(min, NULL, 10)) {
            fprintf(stderr, "# list walk with limit %zu skipped (%s=%s)\n", limits[i],
                    "BLOGSCALE_TEST_STORE_WALK_MIN_LIMIT", min);
            continue;
        }
        walk(f->s, ids, WALK_N, limits[i]);
    }

    /* A cursor that names no stored post (removed, or never existed) still works. */
    {
        struct node_post_list l;

        assert_int_equal(f->s->ops->remove(f->s, ids[100], 0), 0);
        assert_int_equal(f->s->ops->list(f->s, ids[100], 5, &l), 0);
        assert_int_equal(l.n, 5);
        assert_string_equal(l.posts[0].id, ids[101]);
        assert_string_equal(l.posts[4].id, ids[105]);
        assert_true(l.more);
        node_post_list_deinit(&l);
        assert_int_equal(f->s->ops->list(f->s, ids[99], 1, &l), 0);
        assert_int_equal(l.n, 1);
        assert_string_equal(l.posts[0].id, ids[101]);
        node_post_list_deinit(&l);
        /* The last page ends exactly at the oldest post: more is false. */
        assert_int_equal(f->s->ops->list(f->s, ids[WALK_N - 3], 2, &l), 0);
        assert_int_equal(l.n, 2);
        assert_false(l.more);
        node_post_list_deinit(&l);
        assert_int_equal(f->s->ops->list(f->s, ids[WALK_N - 3], 0, &l), 0);
        assert_int_equal(l.n, 0);
        node_post_list_deinit(&l);
        /* The newest page from the top. */
        assert_int_equal(f->s->ops->list(f->s, NULL, 3, &l), 0);
        assert_int_equal(l.n, 3);
        assert_string_equal(l.posts[0].id, ids[0]);
        assert_true(l.more);
        node_post_list_deinit(&l);
    }
    free(ids);
}

/* ---- assets ---- */

static void
sha256_hex(const void *data, size_t len, char out[NODE_SHA256_HEX_LEN + 1])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    size_t i;

    assert_int_equal(EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL), 1);
    for (i = 0; i < 32; i++) {
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    }
}

/* Reads the whole asset (fd or data) into a malloc'ed buffer of a->size bytes. */
static unsigned char *
read_asset(const struct node_asset *a)
{
    unsigned char *buf = malloc(a->size > 0 ? a->size : 1);
    size_t got = 0;

    assert_non_null(buf);
    if (a->fd < 0) {
        assert_non_null(a->data);
        memcpy(buf, a->data, a->size);
        return buf;
    }
    while (got < a->size) {
        ssize_t r = read(a->fd, buf + got, a->size - got);

        assert_true(r > 0);
        got += (size_t)r;
    }
    {
        char extra;

        assert_int_equal(read(a->fd, &extra, 1), 0);    /* exactly size bytes */
    }
    return buf;
}

static void
asset_roundtrip(struct fixture *f, size_t size, const char *ctype)
{
    unsigned char *data = malloc(size);
    char path[] = "/tmp/blog-asset-src.XXXXXX";
    char sha[NODE_SHA256_HEX_LEN + 1];
    struct node_asset a;
    unsigned char *back;
    size_t i;
    int fd;
    uint64_t x = 0x9e3779b97f4a7c15ull ^ size;

    assert_non_null(data);
    for (i = 0; i < size; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data[i] = (unsigned char)x;
    }
    sha256_hex(data, size, sha);
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, size), (ssize_t)size);
    close(fd);

    assert_int_equal(f->s->ops->asset_put(f->s, sha, ctype, path, size), 0);
    assert_int_equal(f->s->ops->asset_get(f->s, sha, &a), 0);
    assert_string_equal(a.sha256, sha);
    assert_string_equal(a.content_type, ctype);
    assert_int_equal(a.size, size);
    back = read_asset(&a);
    assert_memory_equal(back, data, size);
    free(back);
    node_asset_deinit(&a);

    /* Same bytes again: idempotent, still byte-exact. */
    assert_int_equal(f->s->ops->asset_put(f->s, sha, ctype, path, size), 0);
    assert_int_equal(f->s->ops->asset_get(f->s, sha, &a), 0);
    assert_int_equal(a.size, size);
    back = read_asset(&a);
    assert_memory_equal(back, data, size);
    free(back);
    node_asset_deinit(&a);

    unlink(path);
    /* The store keeps its own copy: the source file may go away. */
    assert_int_equal(f->s->ops->asset_get(f->s, sha, &a), 0);
    back = read_asset(&a);
    assert_memory_equal(back, data, size);
    free(back);
    node_asset_deinit(&a);
    free(data);
}

static void
test_assets(void **state)
{
    struct fixture *f = *state;
    struct node_asset a;
    char sha[NODE_SHA256_HEX_LEN + 1];

    asset_roundtrip(f, 1, "image/png");
    asset_roundtrip(f, 1 << 20, "image/jpeg");
    asset_roundtrip(f, 10 << 20, "application/pdf");

    /* Missing and malformed ids. */
    sha256_hex("never stored", 12, sha);
    assert_int_equal(f->s->ops->asset_get(f->s, sha, &a), BL_ENOTFOUND);
    node_asset_deinit(&a);
    assert_int_equal(f->s->ops->asset_get(f->s, "../../etc/passwd", &a), BL_ENOTFOUND);
    node_asset_deinit(&a);
}

/* ---- concurrent conditional replaces ---- */

#define RACE_THREADS 8
#define RACE_ATTEMPTS 25

struct race {
    struct node_store *s;
    char id[NODE_ID_LEN + 1];
    pthread_mutex_t mu;
    unsigned char *won;                 /* won[v] = number of winners that wrote version v */
    size_t nwon;
    unsigned successes;
    unsigned conflicts;
    unsigned errors;
};

static void *
race_thread(void *arg)
{
    struct race *r = arg;
    int i;

    for (i = 0; i < RACE_ATTEMPTS; i++) {
        struct node_post cur;
        char title[64];
        int rc;

        rc = r->s->ops->get(r->s, r->id, &cur);
        if (rc != 0) {
            pthread_mutex_lock(&r->mu);
            r->errors++;
            pthread_mutex_unlock(&r->mu);
            continue;
        }
        snprintf(title, sizeof(title), "by %lu at %d", (unsigned long)pthread_self(), i);
        set_str(&cur.title, title);
        {
            uint64_t expected = cur.version;

            rc = r->s->ops->replace(r->s, &cur, expected);
            pthread_mutex_lock(&r->mu);
            if (rc == 0) {
                r->successes++;
                if (cur.version != expected + 1 || cur.version >= r->nwon) {
                    r->errors++;
                } else {
                    r->won[cur.version]++;
                }
            } else if (rc == BL_ECONFLICT) {
                r->conflicts++;
            } else {
                r->errors++;
            }
            pthread_mutex_unlock(&r->mu);
        }
        node_post_deinit(&cur);
    }
    return NULL;
}

static void
test_concurrent_replace(void **state)
{
    struct fixture *f = *state;
    struct race r;
    struct node_post p, got;
    pthread_t th[RACE_THREADS];
    size_t i;

    memset(&r, 0, sizeof(r));
    r.s = f->s;
    pthread_mutex_init(&r.mu, NULL);
    r.nwon = RACE_THREADS * RACE_ATTEMPTS + 2;
    r.won = calloc(r.nwon, 1);
    make_post(&p, "race", "race", 0);
    assert_int_equal(f->s->ops->insert(f->s, &p), 0);
    memcpy(r.id, p.id, sizeof(r.id));
    for (i = 0; i < RACE_THREADS; i++) {
        assert_int_equal(pthread_create(&th[i], NULL, race_thread, &r), 0);
    }
    for (i = 0; i < RACE_THREADS; i++) {
        pthread_join(th[i], NULL);
    }
    assert_int_equal(r.errors, 0);
    assert_int_equal(r.successes + r.conflicts, RACE_THREADS * RACE_ATTEMPTS);
    assert_true(r.successes >= RACE_ATTEMPTS);  /* at least one winner per round */
    /* Exactly one winner for each version 2 .. successes + 1, none beyond. */
    for (i = 2; i < r.successes + 2; i++) {
        assert_int_equal(r.won[i], 1);
    }
    for (; i < r.nwon; i++) {
        assert_int_equal(r.won[i], 0);
    }
    assert_int_equal(f->s->ops->get(f->s, p.id, &got), 0);
    assert_int_equal(got.version, r.successes + 1);
    node_post_deinit(&got);
    node_post_deinit(&p);
    free(r.won);
    pthread_mutex_destroy(&r.mu);
    fprintf(stderr, "# concurrent replace: %u winners, %u conflicts\n", r.successes,
            r.conflicts);
}

static void
test_new_id(void **state)
{
    char prev[NODE_ID_LEN + 1], id[NODE_ID_LEN + 1];
    int i;

    (void)state;
    node_store_new_id(prev);
    assert_true(node_store_valid_id(prev, strlen(prev)));
    for (i = 0; i < 100000; i++) {
        node_store_new_id(id);
        assert_true(strcmp(id, prev) > 0);      /* strictly increasing in one process */
        memcpy(prev, id, sizeof(prev));
    }
    assert_false(node_store_valid_id("0123456789abcdef0123456", 23));
    assert_false(node_store_valid_id("0123456789abcdef0123456g", 24));
    assert_true(node_store_valid_id("0123456789ABCDEF01234567", 24));
    assert_false(node_store_valid_id(NULL, 0));
}

#define STORE_TESTS(prefix)                                                     \
    cmocka_unit_test_setup_teardown(test_crud, fx_setup, fx_teardown),          \
    cmocka_unit_test_setup_teardown(test_versions, fx_setup, fx_teardown),      \
    cmocka_unit_test_setup_teardown(test_not_found, fx_setup, fx_teardown),     \
    cmocka_unit_test_setup_teardown(test_list_walk, fx_setup, fx_teardown),     \
    cmocka_unit_test_setup_teardown(test_assets, fx_setup, fx_teardown),        \
    cmocka_unit_test_setup_teardown(test_concurrent_replace, fx_setup, fx_teardown)

int
main(void)
{
    const struct CMUnitTest lmdb_tests[] = {
        cmocka_unit_test(test_new_id),
        STORE_TESTS(lmdb),
    };
    const struct CMUnitTest mongo_tests[] = {
        STORE_TESTS(mongo),
    };
    int failed;

    cur_driver = BL_STORE_LMDB;
    failed = cmocka_run_group_tests_name("store conformance: lmdb", lmdb_tests, NULL, NULL);

    mongo_uri = getenv(MONGO_ENV);
    if (mongo_uri == NULL || mongo_uri[0] == '\0') {
        printf("store conformance: mongodb NOT RUN (%s is not set)\n", MONGO_ENV);
    } else {
        mongoc_init();
        cur_driver = BL_STORE_MONGODB;
        failed += cmocka_run_group_tests_name("store conformance: mongodb", mongo_tests, NULL,
                                              NULL);
        mongoc_cleanup();
    }
    return failed != 0;
}
