/*
 * Maglev by id with bounded load.
 *
 * The table is built over ALL nodes of the set, from their names only (shared/bl_maglev),
 * and is never rebuilt on health changes: an unhealthy owner is skipped by walking the
 * id's fallback list (bl_maglev_fallbacks: the owner, then the node that would own the id
 * if the owner were removed, and so on). So the table depends only on the node set,
 * several LBs with the same set agree on every id, and a node that goes down moves only
 * its own ids, each to the node that will own it if the node is then removed for good:
 * an id moves once, and the cache warmed while the node was down stays useful.
 *
 * Bounded load (after Mirrokni et al., "Consistent Hashing with Bounded Loads"): when a
 * node already holds more than c * mean + 1 in-flight requests (c = bounded_load, mean =
 * in-flight over all nodes / healthy nodes), the request goes to the next preference. When every candidate is above the
 * bound, the first healthy preference takes it anyway (the bound is a spill rule, not a
 * limit: limits.node_max_conns and the queue are the limits).
 */
#include "lb_algo.h"

#include <math.h>

#include "bl/bl_err.h"
#include "bl/bl_maglev.h"
#include "bl/bl_util.h"

static int
maglev_rebuild(struct lb_state *st, const struct lb_state *prev)
{
    (void)prev;
    /* The table lives in st->ring, built by lb_state_create() from the node names and
     * shared between snapshots of the same node set. Nothing else to do. */
    return st->ring != NULL && st->ring->maglev != NULL ? 0 : BL_EINVAL;
}

/* Spill threshold: a node may take the request while its in-flight count is at most
 * bounded_load * mean + 1 (the +1 keeps an idle or lightly loaded cluster from spilling
 * on a count that has not yet come down). */
static double
bound(const struct lb_state *st, const struct lb_pick *pk)
{
    if (st->bounded_load <= 0.0 || st->nup == 0) {
        return HUGE_VAL;
    }
    return st->bounded_load * (double)pk->total_inflight / (double)st->nup + 1.0;
}

static int
maglev_pick(const struct lb_state *st, struct lb_pick *pk)
{
    const struct bl_maglev *m;
    int prefs[64];
    size_t n, i;
    int owner, first = -1;
    double cap;

    if (st->nup == 0 || st->ring == NULL) {
        return -1;
    }
    m = st->ring->maglev;
    cap = bound(st, pk);
    owner = bl_maglev_lookup(m, pk->hash);
    if (owner < 0) {
        return -1;
    }
    if (st->up[owner] && !lb_algo_excluded(st, pk, owner) &&
        (double)lb_algo_load(st, (uint32_t)owner) <= cap) {
        return owner;
    }
    n = bl_maglev_fallbacks(m, pk->hash, prefs, BL_MIN((size_t)st->nnodes, BL_ARRAY_SIZE(prefs)));
    for (i = 0; i < n; i++) {
        int idx = prefs[i];
        if (idx < 0 || !st->up[idx] || lb_algo_excluded(st, pk, idx)) {
            continue;
        }
        if (first < 0) {
            first = idx;
        }
        if ((double)lb_algo_load(st, (uint32_t)idx) <= cap) {
            return idx;
        }
    }
    return first;
}

static void
maglev_server_updown(struct lb_state *st, uint32_t idx)
{
    /* Nothing: unhealthy nodes are skipped along the preference list at pick time. */
    (void)st;
    (void)idx;
}

const struct lb_algo_ops lb_algo_maglev = {
    .name = "maglev",
    .rebuild = maglev_rebuild,
    .pick = maglev_pick,
    .server_up = maglev_server_updown,
    .server_down = maglev_server_updown,
};
