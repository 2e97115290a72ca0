#ifndef NODE_CACHE_H
#define NODE_CACHE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * blog-node's hot cache (DESIGN §3 "Caching", docs/CONSISTENCY.md): rendered response
 * bodies (JSON bytes + ETag + version) keyed by post id, list pages keyed by (list
 * generation, cursor, limit), negative entries for 404s.
 *
 * - Sharded: the key's bl_hash64 picks one of up to NODE_CACHE_MAX_SHARDS shards, each with
 *   its own mutex, hash table, SIEVE queue and byte budget (size / shards).
 * - Byte-bounded: every entry is charged sizeof(struct node_cache_entry) + key + body +
 *   NODE_CACHE_ENTRY_OVERHEAD; the hash tables are allocated once at creation and charged
 *   against the size too, so the cache's own memory stays <= size (plus at most
 *   NODE_CACHE_FIXED_OVERHEAD, plus entries already evicted but still referenced by
 *   responses in flight).
 * - Eviction: SIEVE (one "visited" bit set on a hit, a hand sweeping from old to new).
 * - Entries are reference-counted: a hit hands out a reference (node_cache_entry_put()
 *   drops it), so eviction never frees bytes a response in flight reads.
 * - Single-flight: concurrent misses of one key wait (bounded) for the first one's fill.
 * - Stale-fill protection: a miss records its key's invalidation sequence (per hash
 *   bucket, per shard) and the cache epoch; the fill is inserted only if neither moved.
 * All functions are thread-safe.
 */

#define NODE_CACHE_MAX_SHARDS 64
#define NODE_CACHE_MIN_SHARD_BYTES (256u * 1024) /* fewer shards below 64 x this */
#define NODE_CACHE_KEY_MAX 64
#define NODE_CACHE_ETAG_MAX 48
/* Per-entry bytes charged beyond the struct, key and body: two malloc headers and the
 * rounding of two allocations (glibc: 8-byte header, 16-byte granularity). */
#define NODE_CACHE_ENTRY_OVERHEAD 48
/* Bytes the cache uses outside its budget: the shard array and the struct (a constant). */
#define NODE_CACHE_FIXED_OVERHEAD (NODE_CACHE_MAX_SHARDS * 4096 + 4096)
#define NODE_CACHE_SEQ_BUCKETS 256      /* invalidation sequence counters per shard */
/* Hash-table sizing: one bucket pointer per this many bytes of budget. */
#define NODE_CACHE_BYTES_PER_BUCKET 256

struct node_cache;
struct node_cache_flight;
struct bl_metrics;

/* One cached response. Read-only once published; freed when its last reference goes. */
struct node_cache_entry {
    struct node_cache_entry *hnext;     /* hash chain (shard lock) */
    struct node_cache_entry *newer;     /* SIEVE queue towards the head (shard lock) */
    struct node_cache_entry *older;     /* towards the tail */
    uint64_t hash;                      /* bl_hash64 of the key */
    atomic_uint refs;                   /* the cache's reference + one per reader */
    bool visited;                       /* SIEVE bit (shard lock) */
    bool linked;                        /* in the table (shard lock) */
    unsigned status;                    /* 200 or 404 */
    uint64_t version;                   /* the post's version (0 for lists and 404s) */
    uint64_t expires_ns;                /* monotonic deadline (TTL) */
    size_t charge;                      /* bytes counted against the budget */
    char etag[NODE_CACHE_ETAG_MAX];     /* quoted strong ETag, "" when none */
    void *aux;                          /* the caller's object bound to the cached entry
                                           (node_cache_entry_with_aux; shard lock) */
    char *body;                         /* the response bytes (owned) */
    size_t len;
    size_t klen;
    char key[];                         /* klen bytes */
};

struct node_cache_opts {
    uint64_t size;                      /* byte budget (cache.size) */
    uint64_t ttl_ms;                    /* cache.ttl */
    uint64_t negative_ttl_ms;           /* cache.negative_ttl (0: 404s are not cached) */
    unsigned shards;                    /* power of two <= 64; 0 = automatic */
    uint64_t flight_timeout_ms;         /* how long a miss waits for another's fill; 0 = 1000 */
    /* releases an entry's aux object when the entry leaves the cache (under the shard
     * lock; must not call back into the cache); NULL when aux is not used */
    void (*aux_destroy)(void *aux);
};

/* A miss the caller must complete with node_cache_fill() or node_cache_fill_abort(). */
struct node_cache_fill {
    uint64_t hash;
    uint64_t seq;                       /* the key's bucket sequence at the miss */
    uint64_t epoch;                     /* the cache epoch at the miss */
    uint64_t list_gen;                  /* list keys: the generation in the key */
    bool is_list;
    struct node_cache_flight *flight;   /* set when this miss leads a single-flight */
    size_t klen;
    char key[NODE_CACHE_KEY_MAX];
};

enum node_cache_result {
    NODE_CACHE_HIT,                     /* *out holds a referenced entry */
    NODE_CACHE_MISS,                    /* read the store, then complete the fill */
    NODE_CACHE_BYPASS,                  /* cache off or not coherent: read the store only */
};

/* Counters (totals since creation) and current sizes. */
struct node_cache_stats {
    uint64_t hits;
    uint64_t misses;
    uint64_t shared;                    /* misses answered by another request's fill */
    uint64_t stale_rejected;            /* fills refused: an invalidation came in between */
    uint64_t evictions;                 /* entries removed to make room */
    uint64_t expired;                   /* entries removed because their TTL passed */
    uint64_t flight_timeouts;           /* single-flight waits that gave up */
    uint64_t bytes;                     /* charged bytes held now (entries only) */
    uint64_t entries;
    uint64_t budget;                    /* bytes available to entries (size minus tables) */
};

/*
 * Creates a cache. Returns NULL on OOM or when <opts->size> is too small for even one
 * shard's tables (below 4 KiB).
 */
struct node_cache *node_cache_create(const struct node_cache_opts *opts);
/* Frees the cache; entries still referenced elsewhere stay valid until put. NULL: no-op. */
void node_cache_destroy(struct node_cache *c);

/*
 * Makes the cache usable (true) or bypassed (false: lookups return NODE_CACHE_BYPASS).
 * Used by the invalidation thread: a node that is not subscribed serves uncached.
 */
void node_cache_set_coherent(struct node_cache *c, bool coherent);
bool node_cache_coherent(const struct node_cache *c);

/* Key of post <id> (24 hex digits) into <key>; returns its length. */
size_t node_cache_post_key(const char *id, char key[NODE_CACHE_KEY_MAX]);
/*
 * Key of the list page (<cursor> or NULL, <limit>) under the current list generation, which
 * is stored in *gen (pass it to node_cache_lookup_list). Returns the key's length.
 */
size_t node_cache_list_key(struct node_cache *c, const char *cursor, size_t limit,
                           char key[NODE_CACHE_KEY_MAX], uint64_t *gen);

/*
 * Looks <key>/<klen> up. HIT: *out is a referenced entry (release with
 * node_cache_entry_put). MISS: <fill> is set; the caller reads the store and must call
 * node_cache_fill() or node_cache_fill_abort() exactly once. When another request is
 * already filling the same key, this call waits (at most the flight timeout) for its
 * result and returns HIT with it; if that fill failed or was rejected as stale, or the
 * wait timed out, it returns MISS with a fresh snapshot. BYPASS: no cache this time.
 * List pages pass <list_gen> (from node_cache_list_key) and <is_list> true.
 */
enum node_cache_result node_cache_lookup(struct node_cache *c, const char *key, size_t klen,
                                         bool is_list, uint64_t list_gen,
                                         struct node_cache_entry **out,
                                         struct node_cache_fill *fill);

/*
 * Completes a MISS with the response the store gave: <status> 200 (TTL cache.ttl) or 404
 * (cache.negative_ttl), <version>, <etag> (may be NULL), and <body>/<len> (malloc'ed, taken
 * over in every case). The entry is inserted only if no invalidation of the key (its hash
 * bucket), no flush and, for lists, no list-generation bump happened since the miss.
 * Returns 0 (inserted), BL_ECONFLICT (stale: not inserted), BL_ETOOBIG (too large to cache)
 * or -ENOMEM. Unless -ENOMEM, *out (if <out> is not NULL) receives a referenced entry holding
 * the response, inserted or not, to answer from. Wakes single-flight waiters.
 */
int node_cache_fill(struct node_cache *c, struct node_cache_fill *fill, unsigned status,
                    uint64_t version, const char *etag, char *body, size_t len,
                    struct node_cache_entry **out);

/* Completes a MISS that could not be filled (store error): waiters read the store. */
void node_cache_fill_abort(struct node_cache *c, struct node_cache_fill *fill);

/*
 * Runs <fn>(<e>, &<e>->aux, <arg>) under <e>'s shard lock while <e> is still in the cache
 * and returns what <fn> returned; returns BL_ENOTFOUND without calling <fn> once <e> was
 * evicted, invalidated or never inserted. <fn> may create the aux object (it then belongs
 * to the cache, which passes it to opts->aux_destroy when the entry leaves) and use it
 * while the lock guarantees it stays alive. blog-node keeps a ready libmicrohttpd response
 * per entry there, so a hit allocates nothing. <fn> must not call back into the cache.
 */
int node_cache_entry_with_aux(struct node_cache *c, struct node_cache_entry *e,
                              int (*fn)(struct node_cache_entry *e, void **aux, void *arg),
                              void *arg);

/* Takes another reference on <e>. */
void node_cache_entry_get(struct node_cache_entry *e);
/* Drops one reference; frees the entry with the last one. NULL is a no-op. Any thread. */
void node_cache_entry_put(struct node_cache_entry *e);

/*
 * Invalidates post <id>: drops its entry, bumps its bucket's sequence (so fills that
 * started before are refused) and the list generation (every list page goes).
 */
void node_cache_invalidate_post(struct node_cache *c, const char *id);
/* Bumps the list generation only. */
void node_cache_invalidate_lists(struct node_cache *c);
/* Drops every entry and refuses every fill that started before (epoch bump). */
void node_cache_flush(struct node_cache *c);

void node_cache_stats(struct node_cache *c, struct node_cache_stats *out);

/*
 * Registers blog_node_cache_{hits,misses,stale_fills_rejected,evictions,expired}_total,
 * blog_node_cache_singleflight_{shared,timeouts}_total, blog_node_cache_bytes, _entries,
 * _budget_bytes and blog_node_cache_coherent (all read at render time) in <reg>.
 * 0 or -ENOMEM.
 */
int node_cache_register_metrics(struct node_cache *c, struct bl_metrics *reg);

/*
 * Test-only hook: when set, node_cache_fill() calls it with the fill's key before it takes
 * the shard lock, so a test can let an invalidation slip in between the store read and
 * the insert. NULL in production.
 */
extern void (*node_cache_test_fill_hook)(const char *key, size_t klen);

#endif /* NODE_CACHE_H */
