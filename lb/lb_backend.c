#include "lb_backend.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bl/bl_conf.h"
#include "bl/bl_err.h"
#include "bl/bl_net.h"
#include "bl/bl_util.h"
#include "lb_conn.h"

/* Closed connections wait here until the end of the loop iteration, so that a callback
 * further up the stack never touches freed memory. One list per worker. */
static __thread struct lb_bconn *graveyard;

int
lb_node_init(struct lb_node *n, const struct bl_conf_node_entry *e, uint32_t id)
{
    memset(n, 0, sizeof(*n));
    n->id = id;
    if (bl_net_parse_addr(e->addr, &n->sa, &n->salen) < 0) {
        return BL_EINVAL;
    }
    n->name = bl_xstrdup(e->name);
    n->addr = bl_xstrdup(e->addr);
    n->weight = e->weight ? e->weight : 1;
    n->up = true;
    return 0;
}

void
lb_node_deinit(struct lb_node *n)
{
    BL_FREE(n->name);
    BL_FREE(n->addr);
}

static void bconn_cb(struct ev_loop *loop, ev_io *io, int revents);

void
lb_backend_set_mask(struct lb_bconn *b, int mask)
{
    if (b->mask == mask) {
        return;
    }
    ev_io_stop(b->w->loop, &b->io);
    b->mask = (uint8_t)mask;
    if (mask != 0) {
        ev_io_set(&b->io, b->fd, mask);
        ev_io_start(b->w->loop, &b->io);
    }
}

static void
bconn_close(struct lb_bconn *b)
{
    struct lb_wnode *wn = b->wn;

    ev_io_stop(b->w->loop, &b->io);
    close(b->fd);
    b->fd = -1;
    wn->nconns--;
    atomic_fetch_sub_explicit(&wn->node->conns, 1, memory_order_relaxed);
    b->c = NULL;
    b->next = graveyard;
    graveyard = b;
}

void
lb_backend_reap(struct lb_worker *w)
{
    (void)w;
    while (graveyard != NULL) {
        struct lb_bconn *b = graveyard;
        graveyard = b->next;
        free(b);
    }
}

static struct lb_bconn *
bconn_connect(struct lb_worker *w, struct lb_wnode *wn, int *err)
{
    struct lb_node *n = wn->node;
    struct lb_bconn *b;
    int fd, one = 1;

    fd = socket(n->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *err = -errno;
        return NULL;
    }
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    b = calloc(1, sizeof(*b));
    if (b == NULL) {
        close(fd);
        *err = -ENOMEM;
        return NULL;
    }
    b->fd = fd;
    b->w = w;
    b->wn = wn;
    if (connect(fd, (struct sockaddr *)&n->sa, n->salen) < 0) {
        if (errno != EINPROGRESS) {
            *err = -errno;
            close(fd);
            free(b);
            return NULL;
        }
        b->connecting = 1;
    }
    wn->nconns++;
    atomic_fetch_add_explicit(&n->conns, 1, memory_order_relaxed);
    ev_io_init(&b->io, bconn_cb, fd, b->connecting ? EV_WRITE : EV_READ);
    b->mask = b->connecting ? EV_WRITE : EV_READ;
    ev_io_start(w->loop, &b->io);
    return b;
}

int
lb_backend_acquire(struct lb_worker *w, struct lb_wnode *wn, struct lb_conn *c,
                   struct lb_bconn **out)
{
    struct lb_bconn *b = wn->idle;
    int err = 0;

    if (b != NULL) {
        wn->idle = b->next;
        wn->nidle--;
        b->next = NULL;
        b->c = c;
        *out = b;
        return LB_ACQ_READY;
    }
    if (wn->nconns < w->node_cap) {
        b = bconn_connect(w, wn, &err);
        if (b == NULL) {
            return err;
        }
        b->c = c;
        *out = b;
        return b->connecting ? LB_ACQ_CONNECTING : LB_ACQ_READY;
    }
    if (wn->qlen >= w->queue_cap) {
        return LB_ACQ_FULL;
    }
    c->qnext = NULL;
    c->qprev = wn->qtail;
    if (wn->qtail != NULL) {
        wn->qtail->qnext = c;
    } else {
        wn->qhead = c;
    }
    wn->qtail = c;
    wn->qlen++;
    atomic_fetch_add_explicit(&wn->node->queued, 1, memory_order_relaxed);
    return LB_ACQ_QUEUED;
}

void
lb_backend_dequeue(struct lb_wnode *wn, struct lb_conn *c)
{
    if (c->qprev != NULL) {
        c->qprev->qnext = c->qnext;
    } else {
        wn->qhead = c->qnext;
    }
    if (c->qnext != NULL) {
        c->qnext->qprev = c->qprev;
    } else {
        wn->qtail = c->qprev;
    }
    c->qnext = c->qprev = NULL;
    wn->qlen--;
    atomic_fetch_sub_explicit(&wn->node->queued, 1, memory_order_relaxed);
}

void
lb_backend_release(struct lb_bconn *b, int reuse)
{
    struct lb_wnode *wn = b->wn;
    struct lb_worker *w = b->w;
    struct lb_conn *next;

    b->c = NULL;
    if (!reuse || w->stopping || b->mask != EV_READ ||
        atomic_load_explicit(&wn->node->draining, memory_order_relaxed) ||
        atomic_load_explicit(&wn->node->removed, memory_order_relaxed)) {
        bconn_close(b);
        b = NULL;
    }
    next = wn->qhead;
    if (next != NULL) {
        lb_backend_dequeue(wn, next);
        if (b != NULL) {
            b->c = next;
        }
        lb_conn_slot(next, b);
        return;
    }
    if (b != NULL) {
        b->idle_since = ev_now(w->loop);
        b->next = wn->idle;
        wn->idle = b;
        wn->nidle++;
    }
}

void
lb_backend_flush_idle(struct lb_wnode *wn)
{
    while (wn->idle != NULL) {
        struct lb_bconn *b = wn->idle;
        wn->idle = b->next;
        wn->nidle--;
        bconn_close(b);
    }
}

void
lb_backend_sweep(struct lb_worker *w, ev_tstamp idle)
{
    ev_tstamp now = ev_now(w->loop);

    for (uint32_t i = 0; i < w->nwnodes; i++) {
        struct lb_wnode *wn = w->wnodes[i];
        struct lb_bconn **pp;
        int removed;
        if (wn == NULL) {
            continue;
        }
        removed = atomic_load_explicit(&wn->node->removed, memory_order_relaxed) ||
                  atomic_load_explicit(&wn->node->draining, memory_order_relaxed);
        pp = &wn->idle;
        while (*pp != NULL) {
            struct lb_bconn *b = *pp;
            if (w->stopping || removed || now - b->idle_since > idle) {
                *pp = b->next;
                wn->nidle--;
                bconn_close(b);
            } else {
                pp = &b->next;
            }
        }
    }
}

void
lb_backend_eject(struct lb_proc *p, struct lb_node *n)
{
    if (atomic_exchange_explicit(&n->eject_req, 1, memory_order_acq_rel) == 0) {
        ev_async_send(p->loop, &p->wake);
    }
}

static void
bconn_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    struct lb_bconn *b = bl_container_of(io, struct lb_bconn, io);
    char tmp[64];

    (void)loop;
    if (b->c != NULL) {
        lb_conn_backend_event(b->c, revents);
        return;
    }
    /* pooled and readable: the node closed it (or sent garbage) */
    if (read(b->fd, tmp, sizeof(tmp)) < 0 && (errno == EAGAIN || errno == EINTR)) {
        return;
    }
    for (struct lb_bconn **pp = &b->wn->idle; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == b) {
            *pp = b->next;
            b->wn->nidle--;
            break;
        }
    }
    bconn_close(b);
}
