#ifndef LB_WORKER_H
#define LB_WORKER_H

#include <stdlib.h>

#include "lb_types.h"

/*
 * A worker thread: its own ev_loop (epoll), its own SO_REUSEPORT socket per listener,
 * its own client connections, node pools and counters. The control thread talks to it
 * only through atomics and ev_async.
 */

/* Sets up <w> (loop, listeners, per-node state, buffers). 0 or a negative error (logged). */
int lb_worker_init(struct lb_worker *w, struct lb_proc *p, uint32_t id);

/* Starts the thread. 0 or -errno. */
int lb_worker_start(struct lb_worker *w);

/* Control thread: asks <w> to stop accepting and drain (<force>: close everything now). */
void lb_worker_stop(struct lb_worker *w, int force);

/* Joins the thread (after it stopped) and frees everything. */
void lb_worker_deinit(struct lb_worker *w);

/*
 * Opens a listening socket for <s> for worker <w> (SO_REUSEPORT; TCP_DEFER_ACCEPT for
 * mode: http). Any thread; the listener is not started. NULL with *<err> set on failure.
 */
struct lb_listener *lb_listener_open(struct lb_worker *w, const struct lb_lspec *s, int index,
                                     int *err);

/* Control thread: hands <l> to worker <w>, which starts accepting on it (<close_it> 0, <l>
 * from lb_listener_open) or closes it (<close_it> 1, one of its listeners; connections
 * accepted on it stay). Applied by the worker at its next wake-up. */
void lb_worker_listener_change(struct lb_worker *w, struct lb_listener *l, int close_it);

/* Request (<which> 0) or response (1) buffer from the worker's free list, or NULL. */
static inline char *
lb_worker_buf_get(struct lb_worker *w, int which)
{
    if (which == 0) {
        return w->nibufs > 0 ? w->ibufs[--w->nibufs] : malloc(w->p->ibuf_size);
    }
    return w->nrbufs > 0 ? w->rbufs[--w->nrbufs] : malloc(w->p->rbuf_size);
}

#define LB_WORKER_FREE_BUFS 256

/* Gives *<pp> back (NULL is a no-op) and sets it to NULL. */
static inline void
lb_worker_buf_put(struct lb_worker *w, char **pp, int which)
{
    char *p = *pp;

    if (p == NULL) {
        return;
    }
    *pp = NULL;
    if (which == 0 && w->nibufs < LB_WORKER_FREE_BUFS) {
        w->ibufs[w->nibufs++] = p;
    } else if (which == 1 && w->nrbufs < LB_WORKER_FREE_BUFS) {
        w->rbufs[w->nrbufs++] = p;
    } else {
        free(p);
    }
}

#endif /* LB_WORKER_H */
