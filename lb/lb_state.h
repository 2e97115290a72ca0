#ifndef LB_STATE_H
#define LB_STATE_H

#include <stdint.h>

#include "lb_types.h"

/*
 * The routing state snapshot (struct lb_state): node list, Maglev table, health flags,
 * algorithms. Immutable once published; published by the control thread only, with an
 * atomic pointer swap; read by workers without locks.
 *
 * Grace period (quiescent-state based reclamation, QSBR): each worker has a counter
 * <qs> that it increments when it goes idle (ev_prepare, before blocking in epoll: even
 * value, holds no snapshot) and again when it wakes (ev_check at top priority, before any
 * other callback: odd value, then loads the current snapshot into w->st and uses only
 * that one for the whole iteration). After swapping in a new snapshot, the control thread
 * records every worker's counter next to the old snapshot; the old one is freed once
 * every worker either was idle at that moment (even) or has moved on (counter changed),
 * since then it cannot still be using the old pointer. The swap and the reads of the
 * counters are sequentially consistent, as are the worker's "online" increment and its
 * load of the pointer. Reclaim runs every 100 ms on the control loop; a blocked worker
 * costs nothing (it is idle, so it never delays a free).
 */

/* A Maglev table over <n> nodes (names only). Control thread. NULL on failure. */
struct lb_ring *lb_ring_create(struct lb_node *const *nodes, uint32_t n);
void lb_ring_put(struct lb_ring *ring);                /* drops one reference; NULL no-op */

/*
 * Builds a snapshot over <nodes> with health flags <up> (n entries, 1 = healthy),
 * taking a reference on <ring> (which must be built over the same nodes in the same
 * order). Returns NULL on allocation failure. The caller owns the result.
 */
struct lb_state *lb_state_create(struct lb_node *const *nodes, uint32_t n, const uint8_t *up,
                                 struct lb_ring *ring, const struct lb_algo_ops *by_id,
                                 const struct lb_algo_ops *other, double bounded_load);
void lb_state_destroy(struct lb_state *st);            /* NULL is a no-op */

/* Fills st->ls from p->lspecs (TLS contexts with a reference each, tcp balance).
 * 0 or -ENOMEM. */
int lb_state_set_listeners(struct lb_state *st, const struct lb_proc *p);

/*
 * Control thread: builds a snapshot from p->nodes' current health (lb_node.up) and
 * publishes it; the previous one is retired. Returns 0 or -ENOMEM (the old snapshot
 * then stays current).
 */
int lb_state_publish(struct lb_proc *p);

/* Control thread: frees retired snapshots whose grace period is over. <all>: at exit,
 * after the workers stopped, frees everything including the current snapshot. */
void lb_state_reclaim(struct lb_proc *p, int all);

/* Worker: marks the start of a loop iteration (ev_check) and loads the snapshot. */
static inline void
lb_state_worker_online(struct lb_worker *w)
{
    atomic_fetch_add_explicit(&w->qs, 1, memory_order_seq_cst);
    w->st = atomic_load_explicit(&w->p->state, memory_order_seq_cst);
}

/* Worker: marks the end of a loop iteration (ev_prepare): no snapshot held. */
static inline void
lb_state_worker_offline(struct lb_worker *w)
{
    w->st = NULL;
    atomic_fetch_add_explicit(&w->qs, 1, memory_order_release);
}

#endif /* LB_STATE_H */
