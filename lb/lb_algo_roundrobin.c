/* Round robin over the healthy nodes, one cursor per worker (no shared write). */
#include "lb_algo.h"

#include "bl/bl_conf.h"

static int
rr_rebuild(struct lb_state *st, const struct lb_state *prev)
{
    (void)st;
    (void)prev;
    return 0;
}

static int
rr_pick(const struct lb_state *st, struct lb_pick *pk)
{
    uint32_t n = st->nup;

    for (uint32_t i = 0; i < n; i++) {
        int idx = (int)st->upidx[(*pk->rr)++ % n];
        if (!lb_algo_excluded(st, pk, idx)) {
            return idx;
        }
    }
    return -1;
}

static void
rr_server_updown(struct lb_state *st, uint32_t idx)
{
    (void)st;
    (void)idx;
}

const struct lb_algo_ops lb_algo_roundrobin = {
    .name = "roundrobin",
    .rebuild = rr_rebuild,
    .pick = rr_pick,
    .server_up = rr_server_updown,
    .server_down = rr_server_updown,
};

const struct lb_algo_ops *
lb_algo_find(int balance)
{
    switch (balance) {
    case BL_BALANCE_MAGLEV:
        return &lb_algo_maglev;
    case BL_BALANCE_P2C:
        return &lb_algo_p2c;
    case BL_BALANCE_ROUNDROBIN:
        return &lb_algo_roundrobin;
    default:
        return NULL;
    }
}
