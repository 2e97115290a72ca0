#include "lb_worker.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bl/bl_conf.h"
#include "bl/bl_err.h"
#include "bl/bl_log.h"
#include "bl/bl_net.h"
#include "bl/bl_util.h"
#include "lb_backend.h"
#include "lb_conn.h"
#include "lb_state.h"
#include "lb_tcp.h"

#define ACCEPT_BATCH 64

static void
accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    struct lb_listener *l = bl_container_of(io, struct lb_listener, io);
    struct lb_worker *w = l->w;
    struct lb_proc *p = w->p;
    int64_t max = p->conf->lb.limits.max_client_conns;

    (void)loop;
    (void)revents;
    for (int i = 0; i < ACCEPT_BATCH && !w->stopping; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        int one = 1;
        int fd = accept4(l->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* the pending connection stays readable: pause instead of spinning */
                bl_log(BL_LOG_WARN, "listener %d: accept: %s (pausing accepts for 100 ms)",
                       l->index, strerror(errno));
                ev_io_stop(w->loop, &l->io);
                ev_timer_set(&l->pause, 0.1, 0.);
                ev_timer_start(w->loop, &l->pause);
            }
            return;
        }
        if (atomic_fetch_add_explicit(&p->nclients, 1, memory_order_relaxed) >= max) {
            /* over limits.max_client_conns: refuse this one, keep serving the others */
            atomic_fetch_sub_explicit(&p->nclients, 1, memory_order_relaxed);
            atomic_store_explicit(&w->m->rejected_conns,
                                  atomic_load_explicit(&w->m->rejected_conns,
                                                       memory_order_relaxed) + 1,
                                  memory_order_relaxed);
            close(fd);
            continue;
        }
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (l->mode == BL_MODE_TCP) {
            lb_tcp_accept(w, l, fd, (struct sockaddr *)&ss, len);
        } else {
            lb_conn_accept(w, l, fd, (struct sockaddr *)&ss, len);
        }
    }
}

static void
pause_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct lb_listener *l = bl_container_of(t, struct lb_listener, pause);

    (void)revents;
    if (l->fd >= 0 && !l->w->stopping) {
        ev_io_start(loop, &l->io);
    }
}

static void
prepare_cb(struct ev_loop *loop, ev_prepare *pr, int revents)
{
    struct lb_worker *w = bl_container_of(pr, struct lb_worker, prep);

    (void)loop;
    (void)revents;
    lb_conn_reap(w);
    lb_backend_reap(w);
    lb_state_worker_offline(w);
}

/* Makes sure every node of the snapshot has its per-worker state (nodes added by a
 * reload get theirs on first sight). Runs once per loop iteration: one comparison. */
static void
sync_nodes(struct lb_worker *w)
{
    struct lb_state *st = w->st;

    if (st == NULL || st->max_id <= w->nwnodes) {
        return;
    }
    {
        struct lb_wnode **nw = realloc(w->wnodes, st->max_id * sizeof(*nw));
        if (nw == NULL) {
            return;     /* dispatch() answers 503 for the nodes it has no state for */
        }
        memset(nw + w->nwnodes, 0, (st->max_id - w->nwnodes) * sizeof(*nw));
        w->wnodes = nw;
    }
    for (uint32_t i = 0; i < st->nnodes; i++) {
        struct lb_node *n = st->nodes[i];
        if (w->wnodes[n->id] == NULL) {
            w->wnodes[n->id] = calloc(1, sizeof(struct lb_wnode));
            if (w->wnodes[n->id] == NULL) {
                return;
            }
            w->wnodes[n->id]->node = n;
        }
    }
    w->nwnodes = st->max_id;
}

static void
check_cb(struct ev_loop *loop, ev_check *ck, int revents)
{
    struct lb_worker *w = bl_container_of(ck, struct lb_worker, chk);

    (void)loop;
    (void)revents;
    lb_state_worker_online(w);
    sync_nodes(w);
    if (w->st != NULL && w->st->gen != w->st_gen) {
        /* a new snapshot: requests queued on a node it no longer routes to move on */
        w->st_gen = w->st->gen;
        lb_conn_reroute_queued(w);
    }
}

static void
listener_close(struct lb_listener *l)
{
    ev_timer_stop(l->w->loop, &l->pause);
    if (l->fd >= 0) {
        ev_io_stop(l->w->loop, &l->io);
        close(l->fd);
        l->fd = -1;
    }
}

struct lb_listener *
lb_listener_open(struct lb_worker *w, const struct lb_lspec *s, int index, int *err)
{
    struct lb_listener *l;
    int fd, one = 1, defer = 1;

    fd = bl_net_listen(s->bind, 4096, true);
    if (fd < 0) {
        *err = fd;
        return NULL;
    }
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (s->mode == BL_MODE_HTTP) {
        /* an HTTP client speaks first; a tcp one may not (server-first protocols) */
        (void)setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer, sizeof(defer));
    }
    l = bl_xcalloc(1, sizeof(*l));
    l->fd = fd;
    l->index = index;
    l->spec = s->id;
    l->mode = s->mode;
    l->w = w;
    ev_io_init(&l->io, accept_cb, fd, EV_READ);
    ev_init(&l->pause, pause_cb);
    *err = 0;
    return l;
}

/* Worker: adopts <l> (starts accepting on it). */
static void
listener_adopt(struct lb_worker *w, struct lb_listener *l)
{
    w->ls = bl_xrealloc(w->ls, (w->nls + 1) * sizeof(*w->ls));
    w->ls[w->nls++] = l;
    if (!w->stopping) {
        ev_io_start(w->loop, &l->io);
        l->started = 1;
    } else {
        listener_close(l);
    }
}

void
lb_worker_listener_change(struct lb_worker *w, struct lb_listener *l, int close_it)
{
    l->change_close = close_it;
    pthread_mutex_lock(&w->lmu);
    l->next_change = w->linbox;
    w->linbox = l;
    pthread_mutex_unlock(&w->lmu);
    ev_async_send(w->loop, &w->wake);
}

/* Worker: applies the listener changes of a reload, in the order they were sent. */
static void
apply_listener_changes(struct lb_worker *w)
{
    struct lb_listener *list, *rev = NULL;

    pthread_mutex_lock(&w->lmu);
    list = w->linbox;
    w->linbox = NULL;
    while (list != NULL) {
        struct lb_listener *next = list->next_change;
        list->next_change = rev;
        rev = list;
        list = next;
    }
    for (struct lb_listener *l = rev, *next; l != NULL; l = next) {
        next = l->next_change;
        l->next_change = NULL;
        if (l->change_close) {
            listener_close(l);      /* established connections stay */
        } else {
            listener_adopt(w, l);
        }
    }
    pthread_mutex_unlock(&w->lmu);
}

static void
stop_listeners(struct lb_worker *w)
{
    for (uint32_t i = 0; i < w->nls; i++) {
        listener_close(w->ls[i]);
    }
}

static void
wake_cb(struct ev_loop *loop, ev_async *a, int revents)
{
    struct lb_worker *w = bl_container_of(a, struct lb_worker, wake);
    int stop = atomic_load(&w->p->stopping);

    (void)revents;
    apply_listener_changes(w);
    if (stop == 0 || w->stopping >= stop) {
        return;
    }
    w->stopping = stop;
    stop_listeners(w);
    for (struct lb_conn *c = w->conns, *next; c != NULL; c = next) {
        next = c->lnext;
        lb_conn_drain(c, stop >= 2);
    }
    lb_tcp_drain(w, stop >= 2);
    lb_backend_sweep(w, 0);
    if (w->nconns == 0) {
        ev_break(loop, EVBREAK_ONE);
    }
}

static void
sweep_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct lb_worker *w = bl_container_of(t, struct lb_worker, sweep);

    (void)revents;
    lb_backend_sweep(w, w->p->t_idle);
    {
        /* limits from the current file (a reload may have changed them) */
        const struct bl_conf_lb *lc = &atomic_load(&w->p->conf)->lb;
        uint32_t nw = w->p->nworkers;
        w->node_cap = (lc->limits.node_max_conns + nw - 1) / nw;
        if (w->node_cap == 0) {
            w->node_cap = 1;
        }
        w->queue_cap = (lc->limits.queue_size + nw - 1) / nw;
    }
    if (w->stopping && w->nconns == 0) {
        ev_break(loop, EVBREAK_ONE);
    }
}

int
lb_worker_init(struct lb_worker *w, struct lb_proc *p, uint32_t id)
{
    const struct bl_conf_lb *lc = &p->conf->lb;
    uint64_t seed = 0;

    memset(w, 0, sizeof(*w));
    w->p = p;
    w->id = id;
    w->loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV);
    if (w->loop == NULL) {
        bl_log(BL_LOG_ERROR, "worker %u: cannot create an epoll loop", id);
        return BL_EINVAL;
    }
    ev_set_userdata(w->loop, w);
    w->m = bl_xcalloc(1, sizeof(*w->m));
    w->nwnodes = 0;
    for (uint32_t i = 0; i < p->nnodes; i++) {
        if (p->nodes[i]->id + 1 > w->nwnodes) {
            w->nwnodes = p->nodes[i]->id + 1;
        }
    }
    w->wnodes = bl_xcalloc(w->nwnodes ? w->nwnodes : 1, sizeof(*w->wnodes));
    for (uint32_t i = 0; i < p->nnodes; i++) {
        w->wnodes[p->nodes[i]->id] = bl_xcalloc(1, sizeof(struct lb_wnode));
        w->wnodes[p->nodes[i]->id]->node = p->nodes[i];
    }
    w->node_cap = (lc->limits.node_max_conns + p->nworkers - 1) / p->nworkers;
    if (w->node_cap == 0) {
        w->node_cap = 1;
    }
    w->queue_cap = (lc->limits.queue_size + p->nworkers - 1) / p->nworkers;
    w->ibufs = bl_xcalloc(LB_WORKER_FREE_BUFS, sizeof(char *));
    w->rbufs = bl_xcalloc(LB_WORKER_FREE_BUFS, sizeof(char *));
    w->scratch = bl_xmalloc(p->ibuf_size + 2048);
    if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed)) {
        seed = (uint64_t)getpid() * 0x9E3779B97F4A7C15ull ^ (uint64_t)ev_time();
    }
    w->rng = seed | 1;
    snprintf(w->rid_next, sizeof(w->rid_next), "%08x%02x%014x", (unsigned)(seed >> 32),
             id & 0xff, 0u);
    pthread_mutex_init(&w->lmu, NULL);
    for (uint32_t i = 0; i < p->nlspecs; i++) {
        struct lb_listener *l;
        int err;
        if (!p->lspecs[i].active) {
            continue;
        }
        l = lb_listener_open(w, &p->lspecs[i], (int)i, &err);
        if (l == NULL) {
            bl_log(BL_LOG_ERROR, "listener %s: %s", p->lspecs[i].bind, bl_strerror(err));
            return err;
        }
        p->lspecs[i].wl[id] = l;
        listener_adopt(w, l);
    }
    ev_async_init(&w->wake, wake_cb);
    ev_async_start(w->loop, &w->wake);
    ev_prepare_init(&w->prep, prepare_cb);
    ev_prepare_start(w->loop, &w->prep);
    ev_check_init(&w->chk, check_cb);
    ev_set_priority(&w->chk, EV_MAXPRI);
    ev_check_start(w->loop, &w->chk);
    ev_timer_init(&w->sweep, sweep_cb, 1.0, 1.0);
    ev_timer_start(w->loop, &w->sweep);
    /* the async and timer watchers must not keep a drained loop alive forever: the loop
     * is left with ev_break when the last connection is gone */
    return 0;
}

static void *
worker_main(void *arg)
{
    struct lb_worker *w = arg;

    lb_state_worker_online(w);
    ev_run(w->loop, 0);
    lb_state_worker_offline(w);
    /* force-close whatever is left */
    for (struct lb_conn *c = w->conns, *next; c != NULL; c = next) {
        next = c->lnext;
        lb_conn_close(c);
    }
    lb_tcp_drain(w, 1);
    stop_listeners(w);
    lb_backend_sweep(w, -1.0);
    lb_conn_reap(w);
    lb_backend_reap(w);
    atomic_fetch_sub(&w->p->workers_running, 1);
    ev_async_send(w->p->loop, &w->p->wake);
    return NULL;
}

int
lb_worker_start(struct lb_worker *w)
{
    int rc;

    atomic_fetch_add(&w->p->workers_running, 1);
    rc = pthread_create(&w->thread, NULL, worker_main, w);
    if (rc != 0) {
        atomic_fetch_sub(&w->p->workers_running, 1);
        return -rc;
    }
    return 0;
}

void
lb_worker_stop(struct lb_worker *w, int force)
{
    (void)force;
    ev_async_send(w->loop, &w->wake);
}

void
lb_worker_deinit(struct lb_worker *w)
{
    if (w->loop == NULL) {
        return;
    }
    if (w->thread) {
        pthread_join(w->thread, NULL);
        w->thread = 0;
    }
    stop_listeners(w);
    for (uint32_t i = 0; i < w->nibufs; i++) {
        free(w->ibufs[i]);
    }
    for (uint32_t i = 0; i < w->nrbufs; i++) {
        free(w->rbufs[i]);
    }
    free(w->ibufs);
    free(w->rbufs);
    free(w->scratch);
    for (uint32_t i = 0; i < w->nls; i++) {
        free(w->ls[i]);
    }
    free(w->ls);
    for (struct lb_listener *l = w->linbox, *next; l != NULL; l = next) {
        next = l->next_change;
        if (l->fd >= 0) {
            close(l->fd);
        }
        free(l);
    }
    w->linbox = NULL;
    pthread_mutex_destroy(&w->lmu);
    for (uint32_t i = 0; i < w->nwnodes; i++) {
        free(w->wnodes[i]);
    }
    free(w->wnodes);
    free(w->m);
    ev_loop_destroy(w->loop);
    w->loop = NULL;
}
