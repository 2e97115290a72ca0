#ifndef LB_ALGO_H
#define LB_ALGO_H

#include <stddef.h>
#include <stdint.h>

#include "lb_types.h"

/*
 * Balancing algorithms behind one ops table (STYLE rule 18), one file per algorithm:
 * lb_algo_maglev.c (consistent hashing on the id, bounded load), lb_algo_p2c.c (power of
 * two choices on in-flight), lb_algo_roundrobin.c. The per-node-set work (building the
 * Maglev table) is rebuild(); pick() is pure: it reads the snapshot and the node
 * counters and never writes shared memory, so workers call it without locks.
 */

#define LB_PICK_MAX_EXCLUDE 4

/* What pick() knows about one request. */
struct lb_pick {
    uint64_t hash;              /* id hash (by-id routes) */
    int64_t total_inflight;     /* sum of in-flight over all nodes (bounded load) */
    const int16_t *exclude;     /* lb_node.id of the nodes already tried */
    int nexclude;
    uint64_t *rng;              /* caller's xorshift64 state (p2c) */
    uint32_t *rr;               /* caller's round-robin cursor */
};

struct lb_algo_ops {
    const char *name;
    /* Builds per-node-set data into <st> (may reuse <prev>'s when the node set is the
     * same). Called by the control thread only. 0 or a negative error. */
    int (*rebuild)(struct lb_state *st, const struct lb_state *prev);
    /* Index in st->nodes of the node for this request, or -1 when none is healthy. */
    int (*pick)(const struct lb_state *st, struct lb_pick *pk);
    /* Health transitions (control thread, while building the next snapshot). */
    void (*server_up)(struct lb_state *st, uint32_t idx);
    void (*server_down)(struct lb_state *st, uint32_t idx);
};

extern const struct lb_algo_ops lb_algo_maglev;
extern const struct lb_algo_ops lb_algo_p2c;
extern const struct lb_algo_ops lb_algo_roundrobin;

/* The ops for a balance setting (enum bl_conf_balance), or NULL when unsupported. */
const struct lb_algo_ops *lb_algo_find(int balance);

/* xorshift64* step: a fast, non-cryptographic PRNG for p2c. <s> must not be 0. */
static inline uint64_t
lb_algo_rand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* True when the node at state index <idx> was already tried (pk->exclude). */
static inline int
lb_algo_excluded(const struct lb_state *st, const struct lb_pick *pk, int idx)
{
    int id = (int)st->nodes[idx]->id;

    for (int i = 0; i < pk->nexclude; i++) {
        if (pk->exclude[i] == id) {
            return 1;
        }
    }
    return 0;
}

/* In-flight count of state index <idx> (relaxed; approximate by design). */
static inline int64_t
lb_algo_load(const struct lb_state *st, uint32_t idx)
{
    return atomic_load_explicit(&st->nodes[idx]->inflight, memory_order_relaxed);
}

#endif /* LB_ALGO_H */
