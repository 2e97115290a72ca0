/*
 * Unit tests of node_cache.c: hits/misses/fills, reference counts across eviction and
 * flush, the byte bound under 200k distinct keys (also checked against malloc's own
 * accounting), TTL and negative TTL, list generations, single-flight (one store read for N
 * concurrent misses, bounded waits), stale-fill protection (a forced race through the
 * test hook, plus a multi-threaded stress that checks no stale version survives an
 * invalidation), and SIEVE's hit ratio against plain LRU on a Zipf(0.99) trace.
 */
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "bl/bl_err.h"
#include "bl/bl_metrics.h"
#include "bl/bl_buf.h"

#include "node_cache.h"

static char *
dupstr(const char *s)
{
    char *p = strdup(s);

    assert_non_null(p);
    return p;
}

static char *
body_of(size_t n, char fill)
{
    char *b = malloc(n ? n : 1);

    assert_non_null(b);
    memset(b, fill, n);
    return b;
}

static void
sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

static struct node_cache *
mk(uint64_t size, uint64_t ttl_ms, uint64_t neg_ms)
{
    struct node_cache_opts o = {.size = size, .ttl_ms = ttl_ms, .negative_ttl_ms = neg_ms};
    struct node_cache *c = node_cache_create(&o);

    assert_non_null(c);
    return c;
}

/* Fills <key> with <body> (a string) at <version>; returns the fill's rc. */
static int
put(struct node_cache *c, const char *key, const char *body, uint64_t version)
{
    struct node_cache_entry *e = NULL;
    struct node_cache_fill f;
    enum node_cache_result r = node_cache_lookup(c, key, strlen(key), false, 0, &e, &f);

    if (r == NODE_CACHE_HIT) {
        node_cache_entry_put(e);
        /* replace: invalidate then fill */
        node_cache_invalidate_post(c, key + 1);
        r = node_cache_lookup(c, key, strlen(key), false, 0, &e, &f);
    }
    assert_int_equal(r, NODE_CACHE_MISS);
    return node_cache_fill(c, &f, 200, version, "\"e\"", dupstr(body), strlen(body), NULL);
}

/* ---------------------------------------------------------------- basics */

static void
test_hit_miss_fill(void **state)
{
    struct node_cache *c = mk(1 << 20, 60000, 2000);
    struct node_cache_entry *e = NULL;
    struct node_cache_fill f;
    struct node_cache_stats st;
    char key[NODE_CACHE_KEY_MAX];
    size_t klen = node_cache_post_key("0123456789abcdef01234567", key);

    (void)state;
    assert_int_equal(klen, 25);
    assert_int_equal(node_cache_lookup(c, key, klen, false, 0, &e, &f), NODE_CACHE_MISS);
    assert_null(e);
    assert_int_equal(node_cache_fill(c, &f, 200, 3, "\"v3\"", dupstr("{\"a\":1}"), 7, &e), 0);
    assert_non_null(e);
    assert_int_equal(e->version, 3);
    node_cache_entry_put(e);
    assert_int_equal(node_cache_lookup(c, key, klen, false, 0, &e, &f), NODE_CACHE_HIT);
    assert_memory_equal(e->body, "{\"a\":1}", 7);
    assert_string_equal(e->etag, "\"v3\"");
    assert_int_equal(e->status, 200);
    node_cache_entry_put(e);

    node_cache_stats(c, &st);
    assert_int_equal(st.hits, 1);
    assert_int_equal(st.misses, 1);
    assert_int_equal(st.entries, 1);
    assert_true(st.bytes >= sizeof(struct node_cache_entry) + klen + 7);

    /* invalidation drops it */
    node_cache_invalidate_post(c, "0123456789abcdef01234567");
    assert_int_equal(node_cache_lookup(c, key, klen, false, 0, &e, &f), NODE_CACHE_MISS);
    node_cache_fill_abort(c, &f);
    node_cache_stats(c, &st);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.bytes, 0);

    /* not coherent: bypass, and fills that started before are not inserted */
    assert_int_equal(node_cache_lookup(c, key, klen, false, 0, &e, &f), NODE_CACHE_MISS);
    node_cache_set_coherent(c, false);
    assert_int_equal(node_cache_lookup(c, key, klen, false, 0, &e, &f), NODE_CACHE_BYPASS);
    assert_int_not_equal(node_cache_fill(c, &f, 200, 1, NULL, dupstr("x"), 1, NULL), 0);
    node_cache_set_coherent(c, true);
    assert_int_equal(node_cache_lookup(c, key, klen, false, 0, &e, &f), NODE_CACHE_MISS);
    node_cache_fill_abort(c, &f);
    node_cache_destroy(c);
}

static void
test_refcount_survives_eviction_and_flush(void **state)
{
    struct node_cache *c = mk(64 * 1024, 60000, 2000);
    struct node_cache_entry *held = NULL;
    struct node_cache_fill f;
    struct node_cache_stats st;
    char key[32];

    (void)state;
    assert_int_equal(put(c, "pheld", "held-bytes", 1), 0);
    assert_int_equal(node_cache_lookup(c, "pheld", 5, false, 0, &held, &f), NODE_CACHE_HIT);
    /* push it out with many others */
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof(key), "pk%d", i);
        (void)put(c, key, "0123456789012345678901234567890123456789", (uint64_t)i);
    }
    node_cache_stats(c, &st);
    assert_true(st.evictions > 0);
    node_cache_flush(c);
    node_cache_stats(c, &st);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.bytes, 0);
    /* the reference we hold still reads valid bytes (ASan would flag a use after free) */
    assert_memory_equal(held->body, "held-bytes", 10);
    assert_int_equal(atomic_load(&held->refs), 1);
    node_cache_entry_put(held);
    node_cache_destroy(c);
}

/* The byte bound holds after every insert of 200k distinct keys of varied sizes, and the
 * heap grows by no more than the size + the documented constant. */
static void
test_byte_bound_200k(void **state)
{
    const uint64_t size = 1 << 20;
    struct mallinfo2 m0, m1;
    struct node_cache *c;
    struct node_cache_stats st;
    uint64_t max_bytes = 0, rng = 88172645463325252ull;
    char key[32];

    (void)state;
    malloc_trim(0);
    m0 = mallinfo2();
    c = mk(size, 60000, 2000);
    node_cache_stats(c, &st);
    assert_true(st.budget <= size);
    for (int i = 0; i < 200000; i++) {
        struct node_cache_entry *e;
        struct node_cache_fill f;
        size_t klen, blen;

        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        blen = 20 + rng % 3000;
        klen = (size_t)snprintf(key, sizeof(key), "p%024d", i);
        assert_int_equal(node_cache_lookup(c, key, klen, false, 0, &e, &f), NODE_CACHE_MISS);
        (void)node_cache_fill(c, &f, i % 7 == 0 ? 404 : 200, 1, "\"x\"", body_of(blen, 'b'),
                              blen, NULL);
        if (i % 97 == 0) {
            node_cache_stats(c, &st);
            assert_true(st.bytes <= st.budget);
            if (st.bytes > max_bytes) {
                max_bytes = st.bytes;
            }
        }
    }
    node_cache_stats(c, &st);
    m1 = mallinfo2();
    printf("byte bound: size %llu budget %llu held %llu (max seen %llu) entries %llu "
           "evictions %llu heap growth %zu\n",
           (unsigned long long)size, (unsigned long long)st.budget, (unsigned long long)st.bytes,
           (unsigned long long)max_bytes, (unsigned long long)st.entries,
           (unsigned long long)st.evictions, m1.uordblks - m0.uordblks);
    assert_true(st.bytes <= st.budget);
    assert_true(st.evictions > 150000);
    /* what malloc really holds for the cache: within size + the fixed overhead (glibc
     * counts chunks parked in its per-thread tcache as in use, up to ~200 KiB here) */
    assert_true(m1.uordblks - m0.uordblks <= size + NODE_CACHE_FIXED_OVERHEAD);
    node_cache_destroy(c);
}

static void
test_ttl_and_negative_ttl(void **state)
{
    struct node_cache *c = mk(1 << 20, 120, 40);
    struct node_cache_entry *e;
    struct node_cache_fill f;
    struct node_cache_stats st;

    (void)state;
    assert_int_equal(node_cache_lookup(c, "pa", 2, false, 0, &e, &f), NODE_CACHE_MISS);
    assert_int_equal(node_cache_fill(c, &f, 200, 1, NULL, dupstr("A"), 1, NULL), 0);
    assert_int_equal(node_cache_lookup(c, "pn", 2, false, 0, &e, &f), NODE_CACHE_MISS);
    assert_int_equal(node_cache_fill(c, &f, 404, 0, NULL, dupstr("nf"), 2, NULL), 0);
    assert_int_equal(node_cache_lookup(c, "pn", 2, false, 0, &e, &f), NODE_CACHE_HIT);
    assert_int_equal(e->status, 404);
    node_cache_entry_put(e);
    sleep_ms(60);
    /* the negative entry is gone after negative_ttl, the positive one stays */
    assert_int_equal(node_cache_lookup(c, "pn", 2, false, 0, &e, &f), NODE_CACHE_MISS);
    node_cache_fill_abort(c, &f);
    assert_int_equal(node_cache_lookup(c, "pa", 2, false, 0, &e, &f), NODE_CACHE_HIT);
    node_cache_entry_put(e);
    sleep_ms(80);
    assert_int_equal(node_cache_lookup(c, "pa", 2, false, 0, &e, &f), NODE_CACHE_MISS);
    node_cache_fill_abort(c, &f);
    node_cache_stats(c, &st);
    assert_int_equal(st.expired, 2);
    node_cache_destroy(c);

    /* negative_ttl 0: 404s are answered but never kept */
    c = mk(1 << 20, 1000, 0);
    assert_int_equal(node_cache_lookup(c, "pn", 2, false, 0, &e, &f), NODE_CACHE_MISS);
    assert_int_equal(node_cache_fill(c, &f, 404, 0, NULL, dupstr("nf"), 2, &e), BL_ETOOBIG);
    assert_non_null(e);
    node_cache_entry_put(e);
    assert_int_equal(node_cache_lookup(c, "pn", 2, false, 0, &e, &f), NODE_CACHE_MISS);
    node_cache_fill_abort(c, &f);
    node_cache_destroy(c);
}

static void
test_list_generation(void **state)
{
    struct node_cache *c = mk(1 << 20, 60000, 2000);
    struct node_cache_entry *e;
    struct node_cache_fill f, f2;
    char k1[NODE_CACHE_KEY_MAX], k2[NODE_CACHE_KEY_MAX];
    uint64_t g1, g2;
    size_t n1, n2;

    (void)state;
    n1 = node_cache_list_key(c, NULL, 20, k1, &g1);
    assert_int_equal(node_cache_lookup(c, k1, n1, true, g1, &e, &f), NODE_CACHE_MISS);
    assert_int_equal(node_cache_fill(c, &f, 200, 0, NULL, dupstr("[1]"), 3, NULL), 0);
    assert_int_equal(node_cache_lookup(c, k1, n1, true, g1, &e, &f), NODE_CACHE_HIT);
    node_cache_entry_put(e);
    /* a write to any post: every page is unreachable */
    node_cache_invalidate_post(c, "aaaaaaaaaaaaaaaaaaaaaaaa");
    n2 = node_cache_list_key(c, NULL, 20, k2, &g2);
    assert_true(g2 != g1);
    assert_false(n1 == n2 && memcmp(k1, k2, n1) == 0);
    assert_int_equal(node_cache_lookup(c, k2, n2, true, g2, &e, &f), NODE_CACHE_MISS);
    /* a page fill that started before a bump is refused */
    n1 = node_cache_list_key(c, "bbbbbbbbbbbbbbbbbbbbbbbb", 5, k1, &g1);
    assert_int_equal(node_cache_lookup(c, k1, n1, true, g1, &e, &f2), NODE_CACHE_MISS);
    node_cache_invalidate_lists(c);
    assert_int_equal(node_cache_fill(c, &f2, 200, 0, NULL, dupstr("[old]"), 5, NULL),
                     BL_ECONFLICT);
    assert_int_equal(node_cache_fill(c, &f, 200, 0, NULL, dupstr("[old]"), 5, NULL),
                     BL_ECONFLICT);
    node_cache_destroy(c);
}

/* ---------------------------------------------------------------- single-flight */

struct sf {
    struct node_cache *c;
    pthread_barrier_t bar;
    atomic_int store_reads;
    atomic_int hits;
    unsigned read_ms;
    bool fail;                          /* the leader's store read fails */
};

static void *
sf_thread(void *arg)
{
    struct sf *s = arg;
    struct node_cache_entry *e = NULL;
    struct node_cache_fill f;

    pthread_barrier_wait(&s->bar);
    switch (node_cache_lookup(s->c, "pone", 4, false, 0, &e, &f)) {
    case NODE_CACHE_HIT:
        assert_memory_equal(e->body, "ONE", 3);
        atomic_fetch_add(&s->hits, 1);
        node_cache_entry_put(e);
        break;
    case NODE_CACHE_MISS:
        atomic_fetch_add(&s->store_reads, 1);
        sleep_ms(s->read_ms);
        if (s->fail && f.flight != NULL) {
            node_cache_fill_abort(s->c, &f);
        } else {
            assert_true(node_cache_fill(s->c, &f, 200, 1, NULL, dupstr("ONE"), 3, NULL) >= BL_ECONFLICT);
        }
        break;
    case NODE_CACHE_BYPASS:
        fail();
    }
    return NULL;
}

static void
run_sf(struct sf *s, int n)
{
    pthread_t t[32];

    pthread_barrier_init(&s->bar, NULL, (unsigned)n);
    for (int i = 0; i < n; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, sf_thread, s), 0);
    }
    for (int i = 0; i < n; i++) {
        pthread_join(t[i], NULL);
    }
    pthread_barrier_destroy(&s->bar);
}

static void
test_single_flight(void **state)
{
    struct sf s = {.read_ms = 100};
    struct node_cache_stats st;

    (void)state;
    s.c = mk(1 << 20, 60000, 2000);
    run_sf(&s, 16);
    node_cache_stats(s.c, &st);
    printf("single-flight: 16 concurrent misses -> %d store read(s), %d shared\n",
           atomic_load(&s.store_reads), atomic_load(&s.hits));
    assert_int_equal(atomic_load(&s.store_reads), 1);
    assert_int_equal(atomic_load(&s.hits), 15);
    assert_int_equal(st.shared, 15);
    node_cache_destroy(s.c);

    /* the leader fails: every waiter reads the store itself (no one hangs) */
    memset(&s, 0, sizeof(s));
    s.read_ms = 30;
    s.fail = true;
    s.c = mk(1 << 20, 60000, 2000);
    run_sf(&s, 8);
    assert_true(atomic_load(&s.store_reads) >= 2);
    node_cache_destroy(s.c);
}

static void
test_single_flight_timeout(void **state)
{
    struct node_cache_opts o = {.size = 1 << 20, .ttl_ms = 60000, .flight_timeout_ms = 50};
    struct node_cache *c = node_cache_create(&o);
    struct node_cache_entry *e;
    struct node_cache_fill lead, mine;
    struct node_cache_stats st;
    uint64_t t0;

    (void)state;
    assert_int_equal(node_cache_lookup(c, "pslow", 5, false, 0, &e, &lead), NODE_CACHE_MISS);
    assert_non_null(lead.flight);
    t0 = (uint64_t)clock();
    (void)t0;
    /* the leader is stuck: this miss waits 50 ms, then reads the store itself */
    assert_int_equal(node_cache_lookup(c, "pslow", 5, false, 0, &e, &mine), NODE_CACHE_MISS);
    assert_null(mine.flight);
    node_cache_stats(c, &st);
    assert_int_equal(st.flight_timeouts, 1);
    assert_int_equal(node_cache_fill(c, &mine, 200, 2, NULL, dupstr("v2"), 2, NULL), 0);
    assert_int_equal(node_cache_fill(c, &lead, 200, 2, NULL, dupstr("v2"), 2, NULL), 0);
    assert_int_equal(node_cache_lookup(c, "pslow", 5, false, 0, &e, &mine), NODE_CACHE_HIT);
    node_cache_entry_put(e);
    node_cache_destroy(c);
}

/* ---------------------------------------------------------------- stale fills */

/* A tiny "store": one version per key, written under a lock. */
#define SKEYS 64
struct store {
    pthread_mutex_t lock;
    uint64_t version[SKEYS];
};

struct race {
    struct node_cache *c;
    struct store st;
    pthread_mutex_t m;
    pthread_cond_t cv;
    int phase;                          /* 1: reader read the store, 2: writer invalidated */
};

static struct race *g_race;

static void
race_hook(const char *key, size_t klen)
{
    struct race *r = g_race;

    (void)key;
    (void)klen;
    if (r == NULL) {
        return;
    }
    pthread_mutex_lock(&r->m);
    r->phase = 1;
    pthread_cond_broadcast(&r->cv);
    while (r->phase != 2) {
        pthread_cond_wait(&r->cv, &r->m);
    }
    pthread_mutex_unlock(&r->m);
}

static void *
race_writer(void *arg)
{
    struct race *r = arg;

    pthread_mutex_lock(&r->m);
    while (r->phase != 1) {
        pthread_cond_wait(&r->cv, &r->m);
    }
    pthread_mutex_unlock(&r->m);
    /* the write lands after the reader's store read, before its insert */
    pthread_mutex_lock(&r->st.lock);
    r->st.version[0] = 2;
    pthread_mutex_unlock(&r->st.lock);
    node_cache_invalidate_post(r->c, "k0");
    pthread_mutex_lock(&r->m);
    r->phase = 2;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->m);
    return NULL;
}

static void
test_stale_fill_forced_race(void **state)
{
    struct race r;
    struct node_cache_entry *e = NULL;
    struct node_cache_fill f;
    struct node_cache_stats st;
    pthread_t w;
    uint64_t v;
    char key[NODE_CACHE_KEY_MAX];
    size_t klen;

    (void)state;
    memset(&r, 0, sizeof(r));
    pthread_mutex_init(&r.m, NULL);
    pthread_cond_init(&r.cv, NULL);
    pthread_mutex_init(&r.st.lock, NULL);
    r.st.version[0] = 1;
    r.c = mk(1 << 20, 60000, 2000);
    klen = node_cache_post_key("k0", key);
    g_race = &r;
    node_cache_test_fill_hook = race_hook;
    assert_int_equal(pthread_create(&w, NULL, race_writer, &r), 0);

    assert_int_equal(node_cache_lookup(r.c, key, klen, false, 0, &e, &f), NODE_CACHE_MISS);
    pthread_mutex_lock(&r.st.lock);
    v = r.st.version[0];                /* reads version 1 */
    pthread_mutex_unlock(&r.st.lock);
    assert_int_equal(v, 1);
    assert_int_equal(node_cache_fill(r.c, &f, 200, v, NULL, dupstr("v1"), 2, NULL), BL_ECONFLICT);
    pthread_join(w, NULL);
    node_cache_test_fill_hook = NULL;
    g_race = NULL;

    /* no stale entry survived: the next read misses and sees version 2 */
    assert_int_equal(node_cache_lookup(r.c, key, klen, false, 0, &e, &f), NODE_CACHE_MISS);
    assert_int_equal(node_cache_fill(r.c, &f, 200, 2, NULL, dupstr("v2"), 2, NULL), 0);
    assert_int_equal(node_cache_lookup(r.c, key, klen, false, 0, &e, &f), NODE_CACHE_HIT);
    assert_int_equal(e->version, 2);
    node_cache_entry_put(e);
    node_cache_stats(r.c, &st);
    assert_int_equal(st.stale_rejected, 1);
    node_cache_destroy(r.c);
    pthread_mutex_destroy(&r.m);
    pthread_cond_destroy(&r.cv);
    pthread_mutex_destroy(&r.st.lock);
}

/* Stress: readers fill from the store with random delays between read and insert (the
 * hook), writers bump versions and invalidate. Invariant: once a writer's invalidate for
 * version v returned, no hit ever shows a version below v. */
struct stress {
    struct node_cache *c;
    struct store st;
    _Atomic uint64_t acked[SKEYS];      /* newest version whose invalidation completed */
    atomic_bool stop;
    atomic_long violations;
    atomic_long hits;
};

static _Thread_local uint64_t tl_rng;

static uint64_t
rnd(void)
{
    if (tl_rng == 0) {
        tl_rng = (uint64_t)(uintptr_t)&tl_rng ^ 0x9e3779b97f4a7c15ull;
    }
    tl_rng ^= tl_rng << 13, tl_rng ^= tl_rng >> 7, tl_rng ^= tl_rng << 17;
    return tl_rng;
}

static void
jitter_hook(const char *key, size_t klen)
{
    (void)key;
    (void)klen;
    if (rnd() % 4 == 0) {
        struct timespec ts = {0, (long)(rnd() % 200000)};

        nanosleep(&ts, NULL);
    }
}

static void *
stress_reader(void *arg)
{
    struct stress *s = arg;
    char id[8], key[NODE_CACHE_KEY_MAX];

    while (!atomic_load(&s->stop)) {
        unsigned k = (unsigned)(rnd() % SKEYS);
        struct node_cache_entry *e;
        struct node_cache_fill f;
        uint64_t floor, v;
        size_t klen;

        snprintf(id, sizeof(id), "k%u", k);
        klen = node_cache_post_key(id, key);
        floor = atomic_load(&s->acked[k]);
        switch (node_cache_lookup(s->c, key, klen, false, 0, &e, &f)) {
        case NODE_CACHE_HIT:
            if (e->version < floor) {
                atomic_fetch_add(&s->violations, 1);
            }
            atomic_fetch_add(&s->hits, 1);
            node_cache_entry_put(e);
            break;
        case NODE_CACHE_MISS:
            pthread_mutex_lock(&s->st.lock);
            v = s->st.version[k];
            pthread_mutex_unlock(&s->st.lock);
            (void)node_cache_fill(s->c, &f, 200, v, NULL, dupstr("x"), 1, NULL);
            break;
        case NODE_CACHE_BYPASS:
            break;
        }
    }
    return NULL;
}

static void *
stress_writer(void *arg)
{
    struct stress *s = arg;
    char id[8];

    while (!atomic_load(&s->stop)) {
        unsigned k = (unsigned)(rnd() % SKEYS);
        uint64_t v;

        pthread_mutex_lock(&s->st.lock);
        v = ++s->st.version[k];
        pthread_mutex_unlock(&s->st.lock);
        snprintf(id, sizeof(id), "k%u", k);
        node_cache_invalidate_post(s->c, id);
        /* acknowledged: from now on nobody may see an older version */
        uint64_t cur = atomic_load(&s->acked[k]);
        while (cur < v && !atomic_compare_exchange_weak(&s->acked[k], &cur, v)) {
        }
        if (rnd() % 64 == 0) {
            node_cache_flush(s->c);
        }
        sleep_ms(0);
        struct timespec ts = {0, 50000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void
test_stale_fill_stress(void **state)
{
    struct stress *s = calloc(1, sizeof(*s));
    pthread_t t[6];
    struct node_cache_stats st;

    (void)state;
    assert_non_null(s);
    pthread_mutex_init(&s->st.lock, NULL);
    s->c = mk(1 << 20, 60000, 2000);
    node_cache_test_fill_hook = jitter_hook;
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, stress_reader, s), 0);
    }
    for (int i = 4; i < 6; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, stress_writer, s), 0);
    }
    sleep_ms(1500);
    atomic_store(&s->stop, true);
    for (int i = 0; i < 6; i++) {
        pthread_join(t[i], NULL);
    }
    node_cache_test_fill_hook = NULL;
    node_cache_stats(s->c, &st);
    printf("stale stress: %ld hits, %llu stale fills rejected, %ld violations\n",
           atomic_load(&s->hits), (unsigned long long)st.stale_rejected,
           atomic_load(&s->violations));
    assert_int_equal(atomic_load(&s->violations), 0);
    assert_true(atomic_load(&s->hits) > 1000);
    assert_true(st.stale_rejected > 0);
    node_cache_destroy(s->c);
    pthread_mutex_destroy(&s->st.lock);
    free(s);
}

/* Many threads over a tiny cache: constant eviction, invalidation and flushes while hits
 * hold references. Every hit's bytes must still be the ones its key was filled with (a
 * use after free shows up here, and under ASan/TSan). */
struct hammer {
    struct node_cache *c;
    atomic_bool stop;
    atomic_long hits, bad;
};

static void *
hammer_thread(void *arg)
{
    struct hammer *h = arg;
    char key[NODE_CACHE_KEY_MAX];

    while (!atomic_load(&h->stop)) {
        unsigned k = (unsigned)(rnd() % 2000);
        struct node_cache_entry *e;
        struct node_cache_fill f;
        size_t klen = (size_t)snprintf(key, sizeof(key), "p%u", k);
        size_t blen = 64 + k % 700;

        switch (node_cache_lookup(h->c, key, klen, false, 0, &e, &f)) {
        case NODE_CACHE_HIT:
            for (size_t i = 0; i < e->len; i++) {
                if (e->body[i] != (char)('a' + k % 26)) {
                    atomic_fetch_add(&h->bad, 1);
                    break;
                }
            }
            if (e->len != blen) {
                atomic_fetch_add(&h->bad, 1);
            }
            if (rnd() % 8 == 0) {
                sched_yield();          /* hold the reference a little longer */
            }
            atomic_fetch_add(&h->hits, 1);
            node_cache_entry_put(e);
            break;
        case NODE_CACHE_MISS:
            (void)node_cache_fill(h->c, &f, 200, 1, NULL, body_of(blen, (char)('a' + k % 26)),
                                  blen, NULL);
            break;
        case NODE_CACHE_BYPASS:
            break;
        }
        if (rnd() % 512 == 0) {
            snprintf(key, sizeof(key), "%u", (unsigned)(rnd() % 2000));
            node_cache_invalidate_post(h->c, key);
        }
        if (rnd() % 8192 == 0) {
            node_cache_flush(h->c);
        }
    }
    return NULL;
}

static void
test_concurrent_eviction(void **state)
{
    struct hammer h = {0};
    struct node_cache_stats st;
    pthread_t t[6];

    (void)state;
    h.c = mk(256 * 1024, 60000, 2000);      /* ~300 of the 2,000 keys fit */
    for (int i = 0; i < 6; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, hammer_thread, &h), 0);
    }
    sleep_ms(1000);
    atomic_store(&h.stop, true);
    for (int i = 0; i < 6; i++) {
        pthread_join(t[i], NULL);
    }
    node_cache_stats(h.c, &st);
    printf("hammer: %ld hits, %llu evictions, %llu bytes held of a %llu budget\n",
           atomic_load(&h.hits), (unsigned long long)st.evictions, (unsigned long long)st.bytes,
           (unsigned long long)st.budget);
    assert_int_equal(atomic_load(&h.bad), 0);
    assert_true(atomic_load(&h.hits) > 1000);
    assert_true(st.evictions > 1000);
    assert_true(st.bytes <= st.budget);
    node_cache_destroy(h.c);
}

/* ---------------------------------------------------------------- hit ratio vs LRU */

#define ZN 100000                        /* distinct keys */
#define ZREQ 1000000                     /* requests in the trace */

struct lru {
    int *prev, *next;
    bool *in;
    int head, tail, n, cap;
};

static void
lru_unlink(struct lru *l, int k)
{
    if (l->prev[k] >= 0) {
        l->next[l->prev[k]] = l->next[k];
    } else {
        l->head = l->next[k];
    }
    if (l->next[k] >= 0) {
        l->prev[l->next[k]] = l->prev[k];
    } else {
        l->tail = l->prev[k];
    }
}

static void
lru_push(struct lru *l, int k)
{
    l->prev[k] = -1;
    l->next[k] = l->head;
    if (l->head >= 0) {
        l->prev[l->head] = k;
    } else {
        l->tail = k;
    }
    l->head = k;
}

/* Returns true on a hit. */
static bool
lru_access(struct lru *l, int k)
{
    if (l->in[k]) {
        lru_unlink(l, k);
        lru_push(l, k);
        return true;
    }
    if (l->n == l->cap) {
        int v = l->tail;

        lru_unlink(l, v);
        l->in[v] = false;
        l->n--;
    }
    lru_push(l, k);
    l->in[k] = true;
    l->n++;
    return false;
}

static void
test_zipf_hit_ratio_vs_lru(void **state)
{
    double *cdf = malloc(sizeof(double) * ZN);
    int *trace = malloc(sizeof(int) * ZREQ);
    struct lru l;
    struct node_cache *c;
    struct node_cache_stats st;
    uint64_t rng = 0x2545f4914f6cdd1dull, cap_entries;
    double sum = 0, sieve_ratio, lru_ratio;
    long sieve_hits = 0, lru_hits = 0;
    const int warm = ZREQ / 5;
    char key[32];

    (void)state;
    assert_non_null(cdf);
    assert_non_null(trace);
    for (int i = 0; i < ZN; i++) {
        sum += 1.0 / pow((double)(i + 1), 0.99);
        cdf[i] = sum;
    }
    for (int i = 0; i < ZREQ; i++) {
        double u;
        int lo = 0, hi = ZN - 1;

        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        u = (double)(rng >> 11) / 9007199254740992.0 * sum;
        while (lo < hi) {
            int mid = (lo + hi) / 2;

            if (cdf[mid] < u) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        /* scatter ranks over the key space so popularity is not ordered by key */
        trace[i] = (int)(((uint64_t)lo * 2654435761u) % ZN);
    }

    /* about 5% of the keys fit */
    c = mk(2u << 20, 3600000, 2000);
    for (int i = 0; i < ZREQ; i++) {
        struct node_cache_entry *e;
        struct node_cache_fill f;
        size_t klen = (size_t)snprintf(key, sizeof(key), "p%08d", trace[i]);

        if (node_cache_lookup(c, key, klen, false, 0, &e, &f) == NODE_CACHE_HIT) {
            node_cache_entry_put(e);
            sieve_hits += i >= warm;
        } else {
            (void)node_cache_fill(c, &f, 200, 1, NULL, body_of(200, 'z'), 200, NULL);
        }
    }
    node_cache_stats(c, &st);
    cap_entries = st.entries;
    node_cache_destroy(c);

    l.prev = malloc(sizeof(int) * ZN);
    l.next = malloc(sizeof(int) * ZN);
    l.in = calloc(ZN, sizeof(bool));
    assert_non_null(l.prev);
    assert_non_null(l.next);
    assert_non_null(l.in);
    l.head = l.tail = -1;
    l.n = 0;
    l.cap = (int)cap_entries;
    for (int i = 0; i < ZREQ; i++) {
        if (lru_access(&l, trace[i])) {
            lru_hits += i >= warm;
        }
    }
    sieve_ratio = (double)sieve_hits / (ZREQ - warm);
    lru_ratio = (double)lru_hits / (ZREQ - warm);
    printf("Zipf(0.99), %d keys, %d requests, capacity %llu entries: SIEVE hit ratio %.4f, "
           "LRU %.4f\n", ZN, ZREQ, (unsigned long long)cap_entries, sieve_ratio, lru_ratio);
    assert_true(cap_entries > 2000);
    assert_true(sieve_ratio >= lru_ratio - 0.005);
    free(l.prev);
    free(l.next);
    free(l.in);
    free(cdf);
    free(trace);
}

/* ---------------------------------------------------------------- metrics */

static void
test_metrics(void **state)
{
    struct bl_metrics *reg = bl_metrics_create();
    struct node_cache *c = mk(1 << 20, 60000, 2000);
    struct bl_buf b;
    struct node_cache_entry *e;
    struct node_cache_fill f;

    (void)state;
    assert_int_equal(node_cache_register_metrics(c, reg), 0);
    assert_int_equal(put(c, "pm", "x", 1), 0);
    assert_int_equal(node_cache_lookup(c, "pm", 2, false, 0, &e, &f), NODE_CACHE_HIT);
    node_cache_entry_put(e);
    bl_buf_init(&b);
    assert_int_equal(bl_metrics_render(reg, &b), 0);
    assert_int_equal(bl_buf_append(&b, "", 1), 0);
    assert_non_null(strstr((char *)b.data, "blog_node_cache_hits_total 1\n"));
    assert_non_null(strstr((char *)b.data, "blog_node_cache_misses_total 1\n"));
    assert_non_null(strstr((char *)b.data, "blog_node_cache_entries 1\n"));
    bl_buf_deinit(&b);
    bl_metrics_destroy(reg);
    node_cache_destroy(c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_miss_fill),
        cmocka_unit_test(test_refcount_survives_eviction_and_flush),
        cmocka_unit_test(test_byte_bound_200k),
        cmocka_unit_test(test_ttl_and_negative_ttl),
        cmocka_unit_test(test_list_generation),
        cmocka_unit_test(test_single_flight),
        cmocka_unit_test(test_single_flight_timeout),
        cmocka_unit_test(test_stale_fill_forced_race),
        cmocka_unit_test(test_stale_fill_stress),
        cmocka_unit_test(test_concurrent_eviction),
        cmocka_unit_test(test_zipf_hit_ratio_vs_lru),
        cmocka_unit_test(test_metrics),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
