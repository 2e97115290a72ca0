#include "lb_tcp.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bl/bl_conf.h"
#include "bl/bl_hash.h"
#include "bl/bl_log.h"
#include "bl/bl_util.h"
#include "lb_algo.h"
#include "lb_backend.h"

#define TCP_BUF 16384
#define PIPE_CAP 65536

struct tdir {
    int pr, pw;                         /* splice pipe (-1 in buffer mode) */
    char *buf;                          /* buffer mode */
    uint32_t len, off;                  /* buffer: bytes held, bytes written */
    size_t inpipe;                      /* splice: bytes in the pipe */
    uint8_t eof;                        /* source ended */
    uint8_t bulk;                       /* a read filled the buffer: splice from now on */
    uint8_t shut;                       /* EOF passed on (shutdown(SHUT_WR) of the sink) */
};

struct lb_tconn {
    struct lb_worker *w;
    struct lb_listener *l;
    struct lb_tconn *next, *prev;
    int cfd, bfd;
    ev_io cio, bio;
    ev_timer tmr;
    struct lb_wnode *wn;
    uint64_t hash;
    int16_t tried[4];
    uint8_t attempts;
    uint8_t connecting;
    uint8_t cmask, bmask;
    ev_tstamp last;                     /* last byte moved */
    struct tdir up;                     /* client -> node */
    struct tdir down;                   /* node -> client */
};

static int use_splice = -1;

static void tconn_close(struct lb_tconn *t);
static void tconn_connect(struct lb_tconn *t);
static void cio_cb(struct ev_loop *loop, ev_io *io, int revents);
static void bio_cb(struct ev_loop *loop, ev_io *io, int revents);

static void
set_mask(struct lb_tconn *t, ev_io *io, uint8_t *cur, int fd, int mask)
{
    if (*cur == mask) {
        return;
    }
    ev_io_stop(t->w->loop, io);
    *cur = (uint8_t)mask;
    if (mask != 0) {
        ev_io_set(io, fd, mask);
        ev_io_start(t->w->loop, io);
    }
}

static int
dir_init(struct tdir *d)
{
    d->pr = d->pw = -1;
    d->buf = malloc(TCP_BUF);
    return d->buf != NULL ? 0 : -ENOMEM;
}

/* Bulk transfer seen and the buffer is empty: move to splice (when allowed). */
static void
dir_maybe_splice(struct tdir *d)
{
    int p[2];

    if (!use_splice || !d->bulk || d->pr >= 0 || d->len != d->off) {
        return;
    }
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) == 0) {
        (void)fcntl(p[1], F_SETPIPE_SZ, PIPE_CAP);
        d->pr = p[0];
        d->pw = p[1];
        d->off = d->len = 0;
    } else {
        d->bulk = 0;    /* no pipe (fd limit): stay with read/write */
    }
}

static void
dir_free(struct tdir *d)
{
    if (d->pr >= 0) {
        close(d->pr);
        close(d->pw);
    }
    d->pr = d->pw = -1;
    BL_FREE(d->buf);
}

static int
dir_has_data(const struct tdir *d)
{
    return d->pr >= 0 ? d->inpipe > 0 : d->len > d->off;
}

static int
dir_has_room(const struct tdir *d)
{
    return d->pr >= 0 ? d->inpipe < PIPE_CAP : d->len < TCP_BUF;
}

/* Moves bytes src -> dst as far as the sockets allow. 0, or -1 on a socket error. */
static int
pump(struct lb_tconn *t, struct tdir *d, int src, int dst)
{
    for (;;) {
        int progress = 0, again = 0;
        dir_maybe_splice(d);
        if (!d->eof && dir_has_room(d)) {
            ssize_t r;
            size_t want;
            if (d->pr >= 0) {
                want = PIPE_CAP - d->inpipe;
                r = splice(src, NULL, d->pw, NULL, want, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            } else {
                want = TCP_BUF - d->len;
                r = recv(src, d->buf + d->len, want, 0);
            }
            if (r > 0) {
                if (d->pr >= 0) {
                    d->inpipe += (size_t)r;
                } else {
                    d->len += (uint32_t)r;
                }
                progress = 1;
                /* a short read drained the socket: do not ask again (epoll says when) */
                again = (size_t)r == want;
                if (again && d->pr < 0 && d->len == TCP_BUF) {
                    d->bulk = 1;
                }
            } else if (r == 0) {
                d->eof = 1;
            } else if (errno != EAGAIN && errno != EINTR) {
                return -1;
            }
        }
        if (dir_has_data(d)) {
            ssize_t r;
            if (d->pr >= 0) {
                r = splice(d->pr, NULL, dst, NULL, d->inpipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            } else {
                r = send(dst, d->buf + d->off, d->len - d->off, MSG_NOSIGNAL);
            }
            if (r > 0) {
                if (d->pr >= 0) {
                    d->inpipe -= (size_t)r;
                } else {
                    d->off += (uint32_t)r;
                    if (d->off == d->len) {
                        d->off = d->len = 0;    /* all written: the whole buffer is free */
                    }
                }
                progress = 1;
            } else if (r < 0 && errno != EAGAIN && errno != EINTR) {
                return -1;
            }
        }
        if (d->eof && !dir_has_data(d) && !d->shut) {
            shutdown(dst, SHUT_WR);     /* half-close passed on */
            d->shut = 1;
        }
        if (progress) {
            t->last = ev_now(t->w->loop);
        }
        if (!again || d->eof) {
            return 0;
        }
    }
}

/* Moves what can move in the directions <up>/<down>, then watches what is needed. */
static void
tconn_run(struct lb_tconn *t, int up, int down)
{
    int cm = 0, bm = 0;

    if ((up && pump(t, &t->up, t->cfd, t->bfd) < 0) ||
        (down && pump(t, &t->down, t->bfd, t->cfd) < 0)) {
        tconn_close(t);
        return;
    }
    if (t->up.shut && t->down.shut) {
        tconn_close(t);
        return;
    }
    if (!t->up.eof && dir_has_room(&t->up)) {
        cm |= EV_READ;
    }
    if (dir_has_data(&t->up)) {
        bm |= EV_WRITE;
    }
    if (!t->down.eof && dir_has_room(&t->down)) {
        bm |= EV_READ;
    }
    if (dir_has_data(&t->down)) {
        cm |= EV_WRITE;
    }
    set_mask(t, &t->cio, &t->cmask, t->cfd, cm);
    set_mask(t, &t->bio, &t->bmask, t->bfd, bm);
}

static void
release_node(struct lb_tconn *t)
{
    struct lb_wnode *wn = t->wn;

    if (wn == NULL) {
        return;
    }
    t->wn = NULL;
    wn->nconns--;
    wn->inflight--;
    atomic_fetch_sub_explicit(&wn->node->conns, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&wn->node->inflight, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&t->w->p->inflight_total, 1, memory_order_relaxed);
}

static void
tconn_close(struct lb_tconn *t)
{
    struct lb_worker *w = t->w;

    set_mask(t, &t->cio, &t->cmask, t->cfd, 0);
    set_mask(t, &t->bio, &t->bmask, t->bfd, 0);
    ev_timer_stop(w->loop, &t->tmr);
    close(t->cfd);
    if (t->bfd >= 0) {
        close(t->bfd);
    }
    release_node(t);
    dir_free(&t->up);
    dir_free(&t->down);
    if (t->prev != NULL) {
        t->prev->next = t->next;
    } else {
        w->tconns = t->next;
    }
    if (t->next != NULL) {
        t->next->prev = t->prev;
    }
    w->ntconns--;
    w->nconns--;
    atomic_fetch_sub_explicit(&w->p->nclients, 1, memory_order_relaxed);
    free(t);
    if (w->stopping && w->nconns == 0) {
        ev_break(w->loop, EVBREAK_ONE);
    }
}

/* A node for <t> under its worker cap, or NULL. */
static struct lb_wnode *
pick(struct lb_tconn *t)
{
    struct lb_worker *w = t->w;
    const struct lb_state *st = w->st;
    int balance = st->ls[t->l->spec].balance;
    int16_t skip[8];
    int nskip = 0;

    for (int i = 0; i < t->attempts; i++) {
        skip[nskip++] = t->tried[i];
    }
    for (int round = 0; round < 4; round++) {
        int idx = -1;
        struct lb_wnode *wn;
        if (balance == BL_BALANCE_LEASTCONN) {
            int64_t best = INT64_MAX;
            for (uint32_t k = 0; k < st->nup; k++) {
                uint32_t i = st->upidx[k];
                int dup = 0;
                for (int s = 0; s < nskip; s++) {
                    dup |= skip[s] == (int16_t)st->nodes[i]->id;
                }
                if (!dup && lb_algo_load(st, i) < best) {
                    best = lb_algo_load(st, i);
                    idx = (int)i;
                }
            }
        } else {
            struct lb_pick pk;
            memset(&pk, 0, sizeof(pk));
            pk.hash = t->hash;
            pk.total_inflight = atomic_load_explicit(&w->p->inflight_total, memory_order_relaxed);
            pk.exclude = skip;
            pk.nexclude = nskip;
            pk.rng = &w->rng;
            pk.rr = &w->rr;
            idx = lb_algo_maglev.pick(st, &pk);
        }
        if (idx < 0) {
            return NULL;
        }
        wn = st->nodes[idx]->id < w->nwnodes ? w->wnodes[st->nodes[idx]->id] : NULL;
        if (wn != NULL && wn->nconns < w->node_cap) {
            return wn;
        }
        if (nskip == (int)BL_ARRAY_SIZE(skip)) {
            return NULL;
        }
        skip[nskip++] = (int16_t)st->nodes[idx]->id;     /* at its cap: another one */
    }
    return NULL;
}

static void
tmr_cb(struct ev_loop *loop, ev_timer *tm, int revents)
{
    struct lb_tconn *t = bl_container_of(tm, struct lb_tconn, tmr);
    struct lb_proc *p = t->w->p;
    ev_tstamp now = ev_now(loop);

    (void)revents;
    if (t->connecting) {
        atomic_fetch_add_explicit(&t->wn->node->failures, 1, memory_order_relaxed);
        lb_backend_eject(p, t->wn->node);
        tconn_connect(t);       /* next node, or close */
        return;
    }
    if (now - t->last < p->t_idle) {
        ev_timer_set(tm, t->last + p->t_idle - now, 0.);
        ev_timer_start(loop, tm);
        return;
    }
    tconn_close(t);
}

/* Connects to the next node (after a failure: another one). Closes <t> when none. */
static void
tconn_connect(struct lb_tconn *t)
{
    struct lb_worker *w = t->w;
    struct lb_wnode *wn;
    int fd, one = 1;
    uint32_t retries = atomic_load(&w->p->conf)->lb.balance.retries;

    if (t->bfd >= 0) {
        ev_io_stop(w->loop, &t->bio);
        t->bmask = 0;
        close(t->bfd);
        t->bfd = -1;
    }
    release_node(t);
    if (t->attempts > retries || t->attempts >= BL_ARRAY_SIZE(t->tried) ||
        (wn = pick(t)) == NULL) {
        tconn_close(t);
        return;
    }
    t->tried[t->attempts++] = (int16_t)wn->node->id;
    fd = socket(wn->node->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        tconn_close(t);
        return;
    }
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    t->wn = wn;
    wn->nconns++;
    wn->inflight++;
    atomic_fetch_add_explicit(&wn->node->conns, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&wn->node->inflight, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&wn->node->requests, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&w->p->inflight_total, 1, memory_order_relaxed);
    t->bfd = fd;
    ev_io_init(&t->bio, bio_cb, fd, EV_WRITE);
    if (connect(fd, (struct sockaddr *)&wn->node->sa, wn->node->salen) < 0 &&
        errno != EINPROGRESS) {
        atomic_fetch_add_explicit(&wn->node->failures, 1, memory_order_relaxed);
        lb_backend_eject(w->p, wn->node);
        tconn_connect(t);
        return;
    }
    t->connecting = 1;
    t->bmask = EV_WRITE;
    ev_io_start(w->loop, &t->bio);
    ev_timer_stop(w->loop, &t->tmr);
    ev_timer_set(&t->tmr, w->p->t_connect, 0.);
    ev_timer_start(w->loop, &t->tmr);
}

static void
bio_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    struct lb_tconn *t = bl_container_of(io, struct lb_tconn, bio);

    (void)revents;
    if (t->connecting) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(t->bfd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0) {
            atomic_fetch_add_explicit(&t->wn->node->failures, 1, memory_order_relaxed);
            lb_backend_eject(t->w->p, t->wn->node);
            tconn_connect(t);
            return;
        }
        t->connecting = 0;
        t->last = ev_now(loop);
        ev_timer_stop(loop, &t->tmr);
        ev_timer_set(&t->tmr, t->w->p->t_idle, 0.);
        ev_timer_start(loop, &t->tmr);
        /* the client socket was not watched while connecting: both directions */
        tconn_run(t, 1, 1);
        return;
    }
    /* node readable: node -> client; node writable: client -> node */
    tconn_run(t, (revents & EV_WRITE) != 0, (revents & EV_READ) != 0);
}

static void
cio_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop;
    /* client readable: client -> node; client writable: node -> client */
    tconn_run(bl_container_of(io, struct lb_tconn, cio), (revents & EV_READ) != 0,
              (revents & EV_WRITE) != 0);
}

void
lb_tcp_accept(struct lb_worker *w, struct lb_listener *l, int fd, const struct sockaddr *sa,
              socklen_t salen)
{
    struct lb_tconn *t;

    (void)salen;
    if (use_splice < 0) {
        const char *e = getenv("BLOG_LB_TCP_SPLICE");
        use_splice = !(e != NULL && strcmp(e, "0") == 0);
    }
    t = calloc(1, sizeof(*t));
    if (t == NULL || w->st == NULL || l->spec >= w->st->nls) {
        free(t);
        close(fd);
        atomic_fetch_sub_explicit(&w->p->nclients, 1, memory_order_relaxed);
        return;
    }
    t->w = w;
    t->l = l;
    t->cfd = fd;
    t->bfd = -1;
    if (dir_init(&t->up) < 0 || dir_init(&t->down) < 0) {
        dir_free(&t->up);
        dir_free(&t->down);
        free(t);
        close(fd);
        atomic_fetch_sub_explicit(&w->p->nclients, 1, memory_order_relaxed);
        return;
    }
    if (sa->sa_family == AF_INET) {
        t->hash = bl_hash64(&((const struct sockaddr_in *)sa)->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        t->hash = bl_hash64(&((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
    }
    t->next = w->tconns;
    if (w->tconns != NULL) {
        w->tconns->prev = t;
    }
    w->tconns = t;
    w->ntconns++;
    w->nconns++;
    ev_io_init(&t->cio, cio_cb, fd, EV_READ);
    ev_init(&t->tmr, tmr_cb);
    tconn_connect(t);
}

void
lb_tcp_drain(struct lb_worker *w, int force)
{
    if (!force) {
        return;     /* established tcp connections run until they end or shutdown_timeout */
    }
    while (w->tconns != NULL) {
        tconn_close(w->tconns);
    }
}
