#include "node_cache.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bl/bl_err.h"
#include "bl/bl_hash.h"
#include "bl/bl_metrics.h"
#include "bl/bl_time.h"

void (*node_cache_test_fill_hook)(const char *key, size_t klen);

/* A fill in progress that other misses of the same key wait for (shard lock). */
struct node_cache_flight {
    struct node_cache_flight *next;
    uint64_t hash;
    size_t klen;
    char key[NODE_CACHE_KEY_MAX];
    pthread_cond_t cond;
    bool done;
    struct node_cache_entry *result;    /* referenced; NULL: failed or stale */
    unsigned refs;                      /* the leader + each waiter */
};

struct shard {
    pthread_mutex_t lock;
    struct node_cache_entry **table;    /* mask + 1 chains */
    size_t mask;
    struct node_cache_entry *head;      /* newest */
    struct node_cache_entry *tail;      /* oldest */
    struct node_cache_entry *hand;      /* SIEVE hand; NULL = start at the tail */
    struct node_cache_flight *flights;
    uint64_t budget;
    uint64_t max_charge;                /* larger entries are not cached */
    void (*aux_destroy)(void *aux);
    uint64_t seq[NODE_CACHE_SEQ_BUCKETS];
    /* written under the lock, read without it by node_cache_stats */
    _Atomic uint64_t bytes, entries, hits, misses, shared, stale, evictions, expired, timeouts;
} __attribute__((aligned(64)));

struct node_cache {
    struct shard *shards;
    unsigned nshards;
    uint64_t ttl_ns;
    uint64_t neg_ttl_ns;
    uint64_t flight_timeout_ns;
    uint64_t budget;
    _Atomic uint64_t epoch;
    _Atomic uint64_t list_gen;
    atomic_bool coherent;
};

#define RELAXED memory_order_relaxed

static inline void
stat_add(_Atomic uint64_t *v, int64_t d)
{
    atomic_fetch_add_explicit(v, (uint64_t)d, RELAXED);
}

static inline struct shard *
shard_of(struct node_cache *c, uint64_t hash)
{
    return &c->shards[hash & (c->nshards - 1)];
}

static inline size_t
seq_idx(uint64_t hash)
{
    return (size_t)(hash >> 40) & (NODE_CACHE_SEQ_BUCKETS - 1);
}

static inline size_t
bucket_idx(const struct shard *sh, uint64_t hash)
{
    return (size_t)(hash >> 8) & sh->mask;
}

static uint64_t
pow2_at_least(uint64_t v)
{
    uint64_t p = 1;

    while (p < v) {
        p <<= 1;
    }
    return p;
}

struct node_cache *
node_cache_create(const struct node_cache_opts *opts)
{
    struct node_cache *c;
    unsigned n = opts->shards;

    if (opts->size < 4096) {
        return NULL;
    }
    if (n == 0) {
        n = NODE_CACHE_MAX_SHARDS;
        while (n > 1 && opts->size / n < NODE_CACHE_MIN_SHARD_BYTES) {
            n /= 2;
        }
    }
    if (n > NODE_CACHE_MAX_SHARDS || (n & (n - 1)) != 0) {
        return NULL;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return NULL;
    }
    c->shards = aligned_alloc(64, sizeof(struct shard) * n);
    if (c->shards == NULL) {
        free(c);
        return NULL;
    }
    memset(c->shards, 0, sizeof(struct shard) * n);
    c->nshards = n;
    c->ttl_ns = opts->ttl_ms * 1000000ull;
    c->neg_ttl_ns = opts->negative_ttl_ms * 1000000ull;
    c->flight_timeout_ns = (opts->flight_timeout_ms ? opts->flight_timeout_ms : 1000) * 1000000ull;
    atomic_init(&c->epoch, 1);
    atomic_init(&c->list_gen, 1);
    atomic_init(&c->coherent, true);
    for (unsigned i = 0; i < n; i++) {
        struct shard *sh = &c->shards[i];
        uint64_t per = opts->size / n;
        uint64_t nb = pow2_at_least(per / NODE_CACHE_BYTES_PER_BUCKET);
        uint64_t tbytes;

        if (nb < 16) {
            nb = 16;
        }
        tbytes = nb * sizeof(*sh->table);
        /* the table is charged against the size: the cache's memory stays within it */
        if (tbytes >= per / 2) {
            nb = 16;
            tbytes = nb * sizeof(*sh->table);
        }
        sh->table = calloc(nb, sizeof(*sh->table));
        if (sh->table == NULL) {
            for (unsigned j = 0; j < i; j++) {
                pthread_mutex_destroy(&c->shards[j].lock);
                free(c->shards[j].table);
            }
            free(c->shards);
            free(c);
            return NULL;
        }
        sh->mask = nb - 1;
        sh->budget = per > tbytes ? per - tbytes : 0;
        sh->max_charge = sh->budget / 4;
        sh->aux_destroy = opts->aux_destroy;
        c->budget += sh->budget;
        pthread_mutex_init(&sh->lock, NULL);
    }
    return c;
}

static void
entry_free(struct node_cache_entry *e)
{
    free(e->body);
    free(e);
}

void
node_cache_entry_get(struct node_cache_entry *e)
{
    atomic_fetch_add_explicit(&e->refs, 1, RELAXED);
}

void
node_cache_entry_put(struct node_cache_entry *e)
{
    if (e != NULL && atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) == 1) {
        entry_free(e);
    }
}

/* Removes <e> from the table and the queue and drops the cache's reference. */
static void
unlink_locked(struct shard *sh, struct node_cache_entry *e)
{
    struct node_cache_entry **pp = &sh->table[bucket_idx(sh, e->hash)];

    while (*pp != e) {
        pp = &(*pp)->hnext;
    }
    *pp = e->hnext;
    if (sh->hand == e) {
        sh->hand = e->newer;
    }
    if (e->newer != NULL) {
        e->newer->older = e->older;
    } else {
        sh->head = e->older;
    }
    if (e->older != NULL) {
        e->older->newer = e->newer;
    } else {
        sh->tail = e->newer;
    }
    e->hnext = e->newer = e->older = NULL;
    e->linked = false;
    if (e->aux != NULL) {
        void *aux = e->aux;

        e->aux = NULL;
        if (sh->aux_destroy != NULL) {
            sh->aux_destroy(aux);
        }
    }
    stat_add(&sh->bytes, -(int64_t)e->charge);
    stat_add(&sh->entries, -1);
    node_cache_entry_put(e);
}

static struct node_cache_entry *
find_locked(struct shard *sh, uint64_t hash, const char *key, size_t klen)
{
    for (struct node_cache_entry *e = sh->table[bucket_idx(sh, hash)]; e != NULL; e = e->hnext) {
        if (e->hash == hash && e->klen == klen && memcmp(e->key, key, klen) == 0) {
            return e;
        }
    }
    return NULL;
}

/* SIEVE: the hand walks from the oldest towards the newest, clearing visited bits, and
 * evicts the first unvisited entry; it stays where it stopped for the next eviction. */
static void
evict_one_locked(struct shard *sh)
{
    struct node_cache_entry *p = sh->hand != NULL ? sh->hand : sh->tail;

    while (p->visited) {
        p->visited = false;
        p = p->newer != NULL ? p->newer : sh->tail;
    }
    sh->hand = p->newer;
    stat_add(&sh->evictions, 1);
    unlink_locked(sh, p);
}

static void
insert_locked(struct shard *sh, struct node_cache_entry *e)
{
    struct node_cache_entry *old = find_locked(sh, e->hash, e->key, e->klen);
    size_t bi;

    if (old != NULL) {
        unlink_locked(sh, old);
    }
    while (sh->tail != NULL && atomic_load_explicit(&sh->bytes, RELAXED) + e->charge > sh->budget) {
        evict_one_locked(sh);
    }
    bi = bucket_idx(sh, e->hash);
    e->hnext = sh->table[bi];
    sh->table[bi] = e;
    e->older = sh->head;
    e->newer = NULL;
    if (sh->head != NULL) {
        sh->head->newer = e;
    } else {
        sh->tail = e;
    }
    sh->head = e;
    e->visited = false;
    e->linked = true;
    atomic_fetch_add_explicit(&e->refs, 1, RELAXED); /* the cache's reference */
    stat_add(&sh->bytes, (int64_t)e->charge);
    stat_add(&sh->entries, 1);
}

static void
flight_release_locked(struct shard *sh, struct node_cache_flight *f)
{
    (void)sh;
    if (--f->refs == 0) {
        node_cache_entry_put(f->result);
        pthread_cond_destroy(&f->cond);
        free(f);
    }
}

static struct node_cache_flight *
flight_find_locked(struct shard *sh, uint64_t hash, const char *key, size_t klen)
{
    for (struct node_cache_flight *f = sh->flights; f != NULL; f = f->next) {
        if (f->hash == hash && f->klen == klen && memcmp(f->key, key, klen) == 0) {
            return f;
        }
    }
    return NULL;
}

static void
flight_unlink_locked(struct shard *sh, struct node_cache_flight *f)
{
    struct node_cache_flight **pp = &sh->flights;

    while (*pp != NULL && *pp != f) {
        pp = &(*pp)->next;
    }
    if (*pp == f) {
        *pp = f->next;
    }
}

static void
snapshot_locked(struct node_cache *c, struct shard *sh, uint64_t hash, const char *key,
                size_t klen, bool is_list, uint64_t list_gen, struct node_cache_fill *fill)
{
    fill->hash = hash;
    fill->seq = sh->seq[seq_idx(hash)];
    fill->epoch = atomic_load(&c->epoch);
    fill->is_list = is_list;
    fill->list_gen = list_gen;
    fill->flight = NULL;
    fill->klen = klen;
    memcpy(fill->key, key, klen);
}

static void
abs_deadline(uint64_t ns_from_now, struct timespec *ts)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += (time_t)(ns_from_now / 1000000000ull);
    ts->tv_nsec += (long)(ns_from_now % 1000000000ull);
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

enum node_cache_result
node_cache_lookup(struct node_cache *c, const char *key, size_t klen, bool is_list,
                  uint64_t list_gen, struct node_cache_entry **out, struct node_cache_fill *fill)
{
    struct node_cache_entry *e;
    struct node_cache_flight *f;
    struct shard *sh;
    uint64_t hash, now;

    *out = NULL;
    if (c == NULL || klen > NODE_CACHE_KEY_MAX || !atomic_load_explicit(&c->coherent, memory_order_acquire)) {
        return NODE_CACHE_BYPASS;
    }
    hash = bl_hash64(key, klen);
    sh = shard_of(c, hash);
    now = bl_time_mono_ns();
    pthread_mutex_lock(&sh->lock);
    e = find_locked(sh, hash, key, klen);
    if (e != NULL && e->expires_ns <= now) {
        stat_add(&sh->expired, 1);
        unlink_locked(sh, e);
        e = NULL;
    }
    if (e != NULL) {
        e->visited = true;
        atomic_fetch_add_explicit(&e->refs, 1, RELAXED);
        stat_add(&sh->hits, 1);
        pthread_mutex_unlock(&sh->lock);
        *out = e;
        return NODE_CACHE_HIT;
    }
    f = flight_find_locked(sh, hash, key, klen);
    if (f != NULL) {
        struct timespec ts;

        f->refs++;
        abs_deadline(c->flight_timeout_ns, &ts);
        while (!f->done) {
            if (pthread_cond_timedwait(&f->cond, &sh->lock, &ts) == ETIMEDOUT) {
                break;
            }
        }
        if (f->done && f->result != NULL) {
            node_cache_entry_get(f->result);
            *out = f->result;
            stat_add(&sh->hits, 1);
            stat_add(&sh->shared, 1);
        } else if (!f->done) {
            stat_add(&sh->timeouts, 1);
        }
        flight_release_locked(sh, f);
        if (*out != NULL) {
            pthread_mutex_unlock(&sh->lock);
            return NODE_CACHE_HIT;
        }
        /* The fill failed, was stale or is too slow: read the store ourselves, with a
         * snapshot taken now (an invalidation that arrived while we waited is behind it). */
        snapshot_locked(c, sh, hash, key, klen, is_list, list_gen, fill);
        stat_add(&sh->misses, 1);
        pthread_mutex_unlock(&sh->lock);
        return NODE_CACHE_MISS;
    }
    snapshot_locked(c, sh, hash, key, klen, is_list, list_gen, fill);
    f = calloc(1, sizeof(*f));
    if (f != NULL) {
        pthread_condattr_t ca;

        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&f->cond, &ca);
        pthread_condattr_destroy(&ca);
        f->hash = hash;
        f->klen = klen;
        memcpy(f->key, key, klen);
        f->refs = 1;
        f->next = sh->flights;
        sh->flights = f;
        fill->flight = f;
    }
    stat_add(&sh->misses, 1);
    pthread_mutex_unlock(&sh->lock);
    return NODE_CACHE_MISS;
}

/* Ends the fill's flight with <result> (referenced for the waiters, may be NULL). */
static void
flight_finish_locked(struct shard *sh, struct node_cache_fill *fill,
                     struct node_cache_entry *result)
{
    struct node_cache_flight *f = fill->flight;

    if (f == NULL) {
        return;
    }
    fill->flight = NULL;
    flight_unlink_locked(sh, f);
    f->done = true;
    if (result != NULL) {
        node_cache_entry_get(result);
        f->result = result;
    }
    pthread_cond_broadcast(&f->cond);
    flight_release_locked(sh, f);
}

int
node_cache_fill(struct node_cache *c, struct node_cache_fill *fill, unsigned status,
                uint64_t version, const char *etag, char *body, size_t len,
                struct node_cache_entry **out)
{
    struct node_cache_entry *e;
    struct shard *sh = shard_of(c, fill->hash);
    uint64_t ttl = status == 404 ? c->neg_ttl_ns : c->ttl_ns;
    bool stale;
    int rc;

    if (out != NULL) {
        *out = NULL;
    }
    if (node_cache_test_fill_hook != NULL) {
        node_cache_test_fill_hook(fill->key, fill->klen);
    }
    e = malloc(sizeof(*e) + fill->klen);
    if (e == NULL) {
        free(body);
        node_cache_fill_abort(c, fill);
        return -ENOMEM;
    }
    memset(e, 0, sizeof(*e));
    atomic_init(&e->refs, 1);           /* ours until the end of this function */
    e->hash = fill->hash;
    e->status = status;
    e->version = version;
    e->body = body;
    e->len = len;
    e->klen = fill->klen;
    memcpy(e->key, fill->key, fill->klen);
    if (etag != NULL) {
        snprintf(e->etag, sizeof(e->etag), "%s", etag);
    }
    e->charge = sizeof(*e) + e->klen + len + NODE_CACHE_ENTRY_OVERHEAD;
    e->expires_ns = bl_time_mono_ns() + ttl;

    pthread_mutex_lock(&sh->lock);
    stale = fill->seq != sh->seq[seq_idx(fill->hash)] || fill->epoch != atomic_load(&c->epoch) ||
            (fill->is_list && fill->list_gen != atomic_load(&c->list_gen));
    if (stale) {
        stat_add(&sh->stale, 1);
        rc = BL_ECONFLICT;
        flight_finish_locked(sh, fill, NULL);
    } else {
        if (ttl == 0 || e->charge > sh->max_charge || !atomic_load(&c->coherent)) {
            rc = BL_ETOOBIG;
        } else {
            insert_locked(sh, e);
            rc = 0;
        }
        flight_finish_locked(sh, fill, e);
    }
    pthread_mutex_unlock(&sh->lock);
    if (out != NULL) {
        *out = e;
    } else {
        node_cache_entry_put(e);
    }
    return rc;
}

int
node_cache_entry_with_aux(struct node_cache *c, struct node_cache_entry *e,
                          int (*fn)(struct node_cache_entry *e, void **aux, void *arg), void *arg)
{
    struct shard *sh = shard_of(c, e->hash);
    int rc = BL_ENOTFOUND;

    pthread_mutex_lock(&sh->lock);
    if (e->linked) {
        rc = fn(e, &e->aux, arg);
    }
    pthread_mutex_unlock(&sh->lock);
    return rc;
}

void
node_cache_fill_abort(struct node_cache *c, struct node_cache_fill *fill)
{
    struct shard *sh;

    if (fill->flight == NULL) {
        return;
    }
    sh = shard_of(c, fill->hash);
    pthread_mutex_lock(&sh->lock);
    flight_finish_locked(sh, fill, NULL);
    pthread_mutex_unlock(&sh->lock);
}

size_t
node_cache_post_key(const char *id, char key[NODE_CACHE_KEY_MAX])
{
    size_t n = strnlen(id, NODE_CACHE_KEY_MAX - 2);

    key[0] = 'p';
    memcpy(key + 1, id, n);
    return n + 1;
}

size_t
node_cache_list_key(struct node_cache *c, const char *cursor, size_t limit,
                    char key[NODE_CACHE_KEY_MAX], uint64_t *gen)
{
    int n;

    *gen = c != NULL ? atomic_load(&c->list_gen) : 0;
    n = snprintf(key, NODE_CACHE_KEY_MAX, "l%llx:%.24s:%zu", (unsigned long long)*gen,
                 cursor != NULL ? cursor : "-", limit);
    return n < 0 ? 0 : (size_t)n >= NODE_CACHE_KEY_MAX ? NODE_CACHE_KEY_MAX - 1 : (size_t)n;
}

void
node_cache_invalidate_post(struct node_cache *c, const char *id)
{
    char key[NODE_CACHE_KEY_MAX];
    size_t klen;
    uint64_t hash;
    struct shard *sh;
    struct node_cache_entry *e;

    if (c == NULL) {
        return;
    }
    klen = node_cache_post_key(id, key);
    hash = bl_hash64(key, klen);
    sh = shard_of(c, hash);
    pthread_mutex_lock(&sh->lock);
    e = find_locked(sh, hash, key, klen);
    if (e != NULL) {
        unlink_locked(sh, e);
    }
    sh->seq[seq_idx(hash)]++;
    pthread_mutex_unlock(&sh->lock);
    atomic_fetch_add(&c->list_gen, 1);
}

void
node_cache_invalidate_lists(struct node_cache *c)
{
    if (c != NULL) {
        atomic_fetch_add(&c->list_gen, 1);
    }
}

void
node_cache_flush(struct node_cache *c)
{
    if (c == NULL) {
        return;
    }
    /* The epoch moves first: a fill that checks after this is refused; one that checked
     * before inserted under the shard lock and is removed below. */
    atomic_fetch_add(&c->epoch, 1);
    atomic_fetch_add(&c->list_gen, 1);
    for (unsigned i = 0; i < c->nshards; i++) {
        struct shard *sh = &c->shards[i];

        pthread_mutex_lock(&sh->lock);
        while (sh->tail != NULL) {
            unlink_locked(sh, sh->tail);
        }
        sh->hand = NULL;
        pthread_mutex_unlock(&sh->lock);
    }
}

void
node_cache_set_coherent(struct node_cache *c, bool coherent)
{
    if (c != NULL) {
        atomic_store_explicit(&c->coherent, coherent, memory_order_release);
    }
}

bool
node_cache_coherent(const struct node_cache *c)
{
    return c != NULL && atomic_load_explicit(&c->coherent, memory_order_acquire);
}

void
node_cache_stats(struct node_cache *c, struct node_cache_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (c == NULL) {
        return;
    }
    out->budget = c->budget;
    for (unsigned i = 0; i < c->nshards; i++) {
        struct shard *sh = &c->shards[i];

        out->hits += atomic_load_explicit(&sh->hits, RELAXED);
        out->misses += atomic_load_explicit(&sh->misses, RELAXED);
        out->shared += atomic_load_explicit(&sh->shared, RELAXED);
        out->stale_rejected += atomic_load_explicit(&sh->stale, RELAXED);
        out->evictions += atomic_load_explicit(&sh->evictions, RELAXED);
        out->expired += atomic_load_explicit(&sh->expired, RELAXED);
        out->flight_timeouts += atomic_load_explicit(&sh->timeouts, RELAXED);
        out->bytes += atomic_load_explicit(&sh->bytes, RELAXED);
        out->entries += atomic_load_explicit(&sh->entries, RELAXED);
    }
}

void
node_cache_destroy(struct node_cache *c)
{
    if (c == NULL) {
        return;
    }
    for (unsigned i = 0; i < c->nshards; i++) {
        struct shard *sh = &c->shards[i];

        while (sh->tail != NULL) {
            unlink_locked(sh, sh->tail);
        }
        pthread_mutex_destroy(&sh->lock);
        free(sh->table);
    }
    free(c->shards);
    free(c);
}

/* ---- metrics (read at render time) ---- */

#define STAT_FN(field)                                                                     \
    static double stat_##field(void *arg)                                                  \
    {                                                                                      \
        struct node_cache_stats st;                                                        \
        node_cache_stats(arg, &st);                                                        \
        return (double)st.field;                                                           \
    }
STAT_FN(hits)
STAT_FN(misses)
STAT_FN(stale_rejected)
STAT_FN(evictions)
STAT_FN(expired)
STAT_FN(shared)
STAT_FN(flight_timeouts)
STAT_FN(bytes)
STAT_FN(entries)
STAT_FN(budget)

static double
coherent_fn(void *arg)
{
    return node_cache_coherent(arg) ? 1.0 : 0.0;
}

int
node_cache_register_metrics(struct node_cache *c, struct bl_metrics *reg)
{
    bool ok = true;

    ok &= bl_metrics_counter_fn(reg, "blog_node_cache_hits_total",
                                "Cacheable GETs answered from the cache", stat_hits, c) != NULL;
    ok &= bl_metrics_counter_fn(reg, "blog_node_cache_misses_total",
                                "Cacheable GETs that read the store", stat_misses, c) != NULL;
    ok &= bl_metrics_counter_fn(reg, "blog_node_cache_stale_fills_rejected_total",
                                "Fills refused because an invalidation arrived during the "
                                "store read", stat_stale_rejected, c) != NULL;
    ok &= bl_metrics_counter_fn(reg, "blog_node_cache_evictions_total",
                                "Entries evicted to stay within cache.size", stat_evictions,
                                c) != NULL;
    ok &= bl_metrics_counter_fn(reg, "blog_node_cache_expired_total",
                                "Entries dropped because their TTL passed", stat_expired,
                                c) != NULL;
    ok &= bl_metrics_counter_fn(reg, "blog_node_cache_singleflight_shared_total",
                                "Misses answered by a concurrent request's store read",
                                stat_shared, c) != NULL;
    ok &= bl_metrics_counter_fn(reg, "blog_node_cache_singleflight_timeouts_total",
                                "Single-flight waits that gave up and read the store",
                                stat_flight_timeouts, c) != NULL;
    ok &= bl_metrics_gauge_fn(reg, "blog_node_cache_bytes",
                              "Bytes charged to cached entries (key, body, overhead)",
                              stat_bytes, c) != NULL;
    ok &= bl_metrics_gauge_fn(reg, "blog_node_cache_coherent",
                              "1 while the cache is in use: no Redis configured, or subscribed "
                              "to the invalidation channel", coherent_fn, c) != NULL;
    ok &= bl_metrics_gauge_fn(reg, "blog_node_cache_entries", "Entries in the cache",
                              stat_entries, c) != NULL;
    ok &= bl_metrics_gauge_fn(reg, "blog_node_cache_budget_bytes",
                              "Bytes available to entries (cache.size minus hash tables)",
                              stat_budget, c) != NULL;
    return ok ? 0 : -ENOMEM;
}
