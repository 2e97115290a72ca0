#ifndef LB_CONN_H
#define LB_CONN_H

#include <sys/socket.h>

#include "lb_types.h"

/*
 * Client connections of the HTTP listeners: the proxy state machine (enum lb_conn_state,
 * one switch driver in lb_conn.c). Worker-local, no locks.
 */

/* Takes ownership of the accepted socket <fd> (non-blocking) from listener <l>. */
void lb_conn_accept(struct lb_worker *w, struct lb_listener *l, int fd,
                    const struct sockaddr *sa, socklen_t salen);

/* Stops every watcher, releases the node connection and queue place, closes the socket.
 * The memory is freed at the end of the loop iteration (lb_conn_reap). */
void lb_conn_close(struct lb_conn *c);

/* Frees connections closed during this loop iteration (ev_prepare). */
void lb_conn_reap(struct lb_worker *w);

/* Event on the node connection bound to <c> (from lb_backend.c). */
void lb_conn_backend_event(struct lb_conn *c, int revents);

/* A queued request got a pooled connection <b>, or a free slot when <b> is NULL. */
void lb_conn_slot(struct lb_conn *c, struct lb_bconn *b);

/*
 * Worker, after adopting a routing snapshot of a new generation (w->st): every request
 * waiting in the queue of a node that this snapshot has down, draining or removed is
 * taken out of that queue and dispatched again (ids: the next Maglev preference; other
 * routes: the balance.other choice among the healthy nodes), under the other node's cap
 * and queue; 503 no_node only when no healthy node is left. Nothing was sent to the node
 * for a queued request, so any method is moved (POST too) and the move is not a retry.
 */
void lb_conn_reroute_queued(struct lb_worker *w);

/* Shutdown: closes an idle connection now, else lets the current request finish and then
 * closes (no keep-alive). <force> closes whatever the state. */
void lb_conn_drain(struct lb_conn *c, int force);

#endif /* LB_CONN_H */
