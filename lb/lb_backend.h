#ifndef LB_BACKEND_H
#define LB_BACKEND_H

#include <ev.h>

#include "lb_types.h"

struct bl_conf_node_entry;

/*
 * Backend side of blog-lb: node objects, and per worker and node the keep-alive
 * connection pool, the connection cap (limits.node_max_conns split over the workers:
 * ceil(cap / workers) each) and the bounded FIFO queue of requests waiting for a
 * connection (limits.queue_size, split the same way). All of it is worker-local: no lock.
 *
 * A backend connection's ev_io watches EV_READ for its whole life, also while pooled (a
 * pooled connection that becomes readable was closed or is misbehaving: it is closed), so
 * taking a connection from the pool and giving it back cost no epoll_ctl.
 */

/* Fills <n> from the config entry. 0 or BL_EINVAL (bad address). */
int lb_node_init(struct lb_node *n, const struct bl_conf_node_entry *e, uint32_t id);
void lb_node_deinit(struct lb_node *n);

/* Results of lb_backend_acquire(). */
enum lb_acquire {
    LB_ACQ_READY = 0,       /* *out is a connected connection bound to <c> */
    LB_ACQ_CONNECTING,      /* *out is bound to <c>, connect in progress (EV_WRITE follows) */
    LB_ACQ_QUEUED,          /* <c> waits in the node queue: lb_conn_slot() follows */
    LB_ACQ_FULL,            /* cap reached and queue full */
};

/*
 * Gets a connection to <wn>'s node for <c>: an idle pooled one, or a new non-blocking
 * connect while under the cap, or a place in the queue. Returns an enum lb_acquire, or a
 * negative errno when connect() failed at once (nothing is bound then).
 */
int lb_backend_acquire(struct lb_worker *w, struct lb_wnode *wn, struct lb_conn *c,
                       struct lb_bconn **out);

/*
 * Gives back <b> after a request: pooled when <reuse> (and the worker is not stopping),
 * else closed. A waiting request of the same node is served first (it gets <b>, or the
 * freed slot). <b> must be unbound from its client already (b->c == NULL).
 */
void lb_backend_release(struct lb_bconn *b, int reuse);

/* Closes every idle pooled connection of <wn> (e.g. after one was found stale). */
void lb_backend_flush_idle(struct lb_wnode *wn);

/* Removes <c> from its node queue (timeout or close). */
void lb_backend_dequeue(struct lb_wnode *wn, struct lb_conn *c);

/* Sets the events watched on <b>'s socket (EV_READ, EV_WRITE or both; 0 stops). */
void lb_backend_set_mask(struct lb_bconn *b, int mask);

/* Pool maintenance: closes connections idle for more than <idle> seconds. */
void lb_backend_sweep(struct lb_worker *w, ev_tstamp idle);

/* Frees connections closed during this loop iteration (called from ev_prepare). */
void lb_backend_reap(struct lb_worker *w);

/* Asks the control thread to eject <n> (passive health). Any thread; cheap when repeated. */
void lb_backend_eject(struct lb_proc *p, struct lb_node *n);

#endif /* LB_BACKEND_H */
