#ifndef LB_TCP_H
#define LB_TCP_H

#include <sys/socket.h>

#include "lb_types.h"

/*
 * mode: tcp listeners (L4): every accepted connection is passed byte for byte to one node.
 *
 * Node choice (listener balance:): maglev = the Maglev table over the node names, keyed by
 * bl_hash64 of the client IP address bytes (a client keeps its node while the set and its
 * health stay; a down, drained or over-bounded-load owner is skipped along the
 * preference list), or leastconn = the healthy node with the fewest connections/requests
 * in flight. limits.node_max_conns caps the connections per node (per worker share), a
 * full node is skipped; a failed connect (refused or limits.connect_timeout) ejects the
 * node (passive health) and tries another once per balance.retries. The connection counts
 * as one in flight on its node for the whole time.
 *
 * Data: read/write through a 16 KiB buffer per direction; a direction whose reads fill
 * the buffer (bulk) moves to splice(2) through a pipe (no copy to user space) unless the
 * environment has BLOG_LB_TCP_SPLICE=0 (or a pipe cannot be made). Half-close: EOF from one side is
 * passed on as shutdown(SHUT_WR) once everything before it was written; the connection
 * ends when both directions ended (or on an error: both sockets are closed). No byte
 * flows for limits.idle_timeout: both are closed.
 */

struct lb_tconn;

/* Worker: a connection accepted on a mode: tcp listener. Takes <fd>. */
void lb_tcp_accept(struct lb_worker *w, struct lb_listener *l, int fd, const struct sockaddr *sa,
                   socklen_t salen);

/* Worker: stopping. <force>: close every tcp connection now; else they finish. */
void lb_tcp_drain(struct lb_worker *w, int force);

#endif /* LB_TCP_H */
