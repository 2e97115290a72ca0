#ifndef LB_HEALTH_H
#define LB_HEALTH_H

#include "lb_types.h"

/*
 * Node health, on the control thread's loop (one checker for the whole process).
 *
 * Active: every health.interval, GET health.path (HTTP/1.1, Connection: close) with
 * health.timeout for connect + answer; a 2xx status line is a success. A node goes down
 * after health.fall consecutive failures and comes back after health.rise consecutive
 * successes. Nodes start up but unconfirmed: the first check runs at once and its
 * failure takes the node down immediately.
 *
 * Passive: a worker that sees a connect failure, a reset or a timeout on a proxied request
 * sets the node's eject_req flag and wakes the control loop (lb_backend_eject), which
 * calls lb_health_passive(): the node goes down at once (next snapshot) and needs `rise`
 * active successes to come back.
 *
 * Every transition publishes a new routing snapshot (lb_state_publish).
 */

struct lb_health *lb_health_create(struct lb_proc *p);
void lb_health_destroy(struct lb_health *h);           /* NULL is a no-op */

/* Control thread: applies the ejections requested by workers. */
void lb_health_passive(struct lb_health *h);

/* Control thread, after p->nodes changed (reload): nodes that stay keep their checker
 * and health; new nodes start up-but-unconfirmed with a check at once. */
void lb_health_reload(struct lb_health *h);

#endif /* LB_HEALTH_H */
