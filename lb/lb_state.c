#include "lb_state.h"

#include <errno.h>
#include <stdlib.h>

#include <openssl/ssl.h>

#include "bl/bl_conf.h"
#include "bl/bl_log.h"
#include "bl/bl_maglev.h"
#include "bl/bl_util.h"
#include "lb_algo.h"

struct lb_ring *
lb_ring_create(struct lb_node *const *nodes, uint32_t n)
{
    struct lb_ring *ring;
    const char **names;
    uint32_t *weights;

    ring = calloc(1, sizeof(*ring));
    names = calloc(n ? n : 1, sizeof(*names));
    weights = calloc(n ? n : 1, sizeof(*weights));
    if (ring == NULL || names == NULL || weights == NULL) {
        goto fail;
    }
    for (uint32_t i = 0; i < n; i++) {
        names[i] = nodes[i]->name;
        weights[i] = nodes[i]->weight;
    }
    ring->maglev = bl_maglev_create(names, weights, n, 0);
    if (ring->maglev == NULL) {
        goto fail;
    }
    ring->refs = 1;
    free(names);
    free(weights);
    return ring;
fail:
    free(weights);
    free(names);
    free(ring);
    return NULL;
}

void
lb_ring_put(struct lb_ring *ring)
{
    if (ring == NULL) {
        return;
    }
    if (--ring->refs == 0) {
        bl_maglev_destroy(ring->maglev);
        free(ring);
    }
}

struct lb_state *
lb_state_create(struct lb_node *const *nodes, uint32_t n, const uint8_t *up,
                struct lb_ring *ring, const struct lb_algo_ops *by_id,
                const struct lb_algo_ops *other, double bounded_load)
{
    struct lb_state *st = calloc(1, sizeof(*st));

    if (st == NULL) {
        return NULL;
    }
    st->nnodes = n;
    st->nodes = calloc(n ? n : 1, sizeof(*st->nodes));
    st->up = calloc(n ? n : 1, 1);
    st->upidx = calloc(n ? n : 1, sizeof(*st->upidx));
    if (st->nodes == NULL || st->up == NULL || st->upidx == NULL) {
        goto fail;
    }
    for (uint32_t i = 0; i < n; i++) {
        st->nodes[i] = nodes[i];
        if (nodes[i]->id + 1 > st->max_id) {
            st->max_id = nodes[i]->id + 1;
        }
        st->up[i] = up[i] ? 1 : 0;
        if (st->up[i]) {
            st->upidx[st->nup++] = i;
        }
    }
    st->ring = ring;
    if (ring != NULL) {
        ring->refs++;
    }
    st->by_id = by_id;
    st->other = other;
    st->bounded_load = bounded_load;
    if ((by_id != NULL && by_id->rebuild(st, NULL) < 0) ||
        (other != NULL && other->rebuild(st, NULL) < 0)) {
        goto fail;
    }
    return st;
fail:
    lb_state_destroy(st);
    return NULL;
}

void
lb_state_destroy(struct lb_state *st)
{
    if (st == NULL) {
        return;
    }
    lb_ring_put(st->ring);
    for (uint32_t i = 0; i < st->nls; i++) {
        SSL_CTX_free(st->ls[i].tls);
    }
    free(st->ls);
    free(st->retired_qs);
    free(st->upidx);
    free(st->up);
    free(st->nodes);
    free(st);
}

int
lb_state_publish(struct lb_proc *p)
{
    struct lb_node **nodes;
    uint8_t *up;
    struct lb_state *st, *old;
    int rc = -ENOMEM;

    nodes = calloc(p->nnodes ? p->nnodes : 1, sizeof(*nodes));
    up = calloc(p->nnodes ? p->nnodes : 1, 1);
    if (nodes == NULL || up == NULL) {
        goto out;
    }
    for (uint32_t i = 0; i < p->nnodes; i++) {
        nodes[i] = p->nodes[i];
        /* a draining node gets no new requests: routed like a down one (its ids go to
         * their next preference), while its in-flight requests finish */
        up[i] = p->nodes[i]->up &&
                !atomic_load_explicit(&p->nodes[i]->draining, memory_order_relaxed);
    }
    old = atomic_load(&p->state);
    /* balance options from the current file (a reload may change them) */
    st = lb_state_create(nodes, p->nnodes, up, p->ring,
                         lb_algo_find(atomic_load(&p->conf)->lb.balance.by_id),
                         lb_algo_find(atomic_load(&p->conf)->lb.balance.other),
                         atomic_load(&p->conf)->lb.balance.bounded_load);
    if (st == NULL || lb_state_set_listeners(st, p) < 0) {
        lb_state_destroy(st);
        goto out;
    }
    if (old != NULL) {
        /* health transitions for the algorithms (same node set only) */
        for (uint32_t i = 0; i < st->nnodes && i < old->nnodes; i++) {
            if (st->by_id == old->by_id && st->other == old->other &&
                st->nodes[i] == old->nodes[i] && st->up[i] != old->up[i]) {
                if (st->up[i]) {
                    st->by_id->server_up(st, i);
                    st->other->server_up(st, i);
                } else {
                    st->by_id->server_down(st, i);
                    st->other->server_down(st, i);
                }
            }
        }
        old->retired_qs = calloc(p->nworkers ? p->nworkers : 1, sizeof(uint64_t));
        if (old->retired_qs == NULL) {
            lb_state_destroy(st);
            goto out;
        }
    }
    st->gen = ++p->gen;
    old = atomic_exchange_explicit(&p->state, st, memory_order_seq_cst);
    if (old != NULL) {
        for (uint32_t i = 0; i < p->nworkers; i++) {
            old->retired_qs[i] = atomic_load_explicit(&p->workers[i].qs, memory_order_seq_cst);
        }
        old->retired_next = p->retired;
        p->retired = old;
        /* wake the workers: one blocked in epoll would otherwise adopt the snapshot only
         * at its next event, and requests queued on a node that just went down would
         * wait for it (lb_conn_reroute_queued) */
        for (uint32_t i = 0; i < p->nworkers; i++) {
            if (p->workers[i].loop != NULL) {
                ev_async_send(p->workers[i].loop, &p->workers[i].wake);
            }
        }
    }
    rc = 0;
out:
    free(up);
    free(nodes);
    return rc;
}

int
lb_state_set_listeners(struct lb_state *st, const struct lb_proc *p)
{
    st->ls = calloc(p->nlspecs ? p->nlspecs : 1, sizeof(*st->ls));
    if (st->ls == NULL) {
        return -ENOMEM;
    }
    st->nls = p->nlspecs;
    for (uint32_t i = 0; i < p->nlspecs; i++) {
        st->ls[i].balance = p->lspecs[i].balance;
        if (p->lspecs[i].tls != NULL) {
            if (SSL_CTX_up_ref(p->lspecs[i].tls) != 1) {
                return -ENOMEM;     /* never serve a TLS listener in clear */
            }
            st->ls[i].tls = p->lspecs[i].tls;
        }
    }
    return 0;
}

static int
grace_over(struct lb_proc *p, const struct lb_state *st)
{
    for (uint32_t i = 0; i < p->nworkers; i++) {
        uint64_t then = st->retired_qs[i];
        if ((then & 1) == 0) {
            continue;   /* it was idle at the swap: loads the new snapshot next */
        }
        if (atomic_load_explicit(&p->workers[i].qs, memory_order_seq_cst) == then) {
            return 0;   /* still in the iteration that may use the old snapshot */
        }
    }
    return 1;
}

void
lb_state_reclaim(struct lb_proc *p, int all)
{
    struct lb_state **pp = &p->retired;

    while (*pp != NULL) {
        struct lb_state *st = *pp;
        if (all || grace_over(p, st)) {
            *pp = st->retired_next;
            lb_state_destroy(st);
        } else {
            pp = &st->retired_next;
        }
    }
    if (all) {
        lb_state_destroy(atomic_exchange(&p->state, NULL));
    }
}
