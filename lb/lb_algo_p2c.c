/*
 * Power of two choices (Mitzenmacher): two distinct random healthy nodes, the one with
 * fewer requests in flight wins (ties: the first drawn). Nodes already tried for this
 * request are skipped.
 */
#include "lb_algo.h"

static int
p2c_rebuild(struct lb_state *st, const struct lb_state *prev)
{
    (void)st;
    (void)prev;
    return 0;
}

static int
p2c_pick(const struct lb_state *st, struct lb_pick *pk)
{
    uint32_t n = st->nup;
    uint64_t r;
    int a, b;

    if (n == 0) {
        return -1;
    }
    if (n == 1) {
        a = (int)st->upidx[0];
        return lb_algo_excluded(st, pk, a) ? -1 : a;
    }
    r = lb_algo_rand(pk->rng);
    a = (int)st->upidx[(uint32_t)r % n];
    b = (int)st->upidx[((uint32_t)r % n + 1 + (uint32_t)(r >> 32) % (n - 1)) % n];
    if (pk->nexclude > 0) {
        int ea = lb_algo_excluded(st, pk, a), eb = lb_algo_excluded(st, pk, b);
        if (ea && eb) {
            /* both tried: take the first healthy node not tried */
            for (uint32_t i = 0; i < n; i++) {
                int idx = (int)st->upidx[i];
                if (!lb_algo_excluded(st, pk, idx)) {
                    return idx;
                }
            }
            return -1;
        }
        if (ea) {
            return b;
        }
        if (eb) {
            return a;
        }
    }
    return lb_algo_load(st, (uint32_t)b) < lb_algo_load(st, (uint32_t)a) ? b : a;
}

static void
p2c_server_updown(struct lb_state *st, uint32_t idx)
{
    (void)st;
    (void)idx;
}

const struct lb_algo_ops lb_algo_p2c = {
    .name = "p2c",
    .rebuild = p2c_rebuild,
    .pick = p2c_pick,
    .server_up = p2c_server_updown,
    .server_down = p2c_server_updown,
};
