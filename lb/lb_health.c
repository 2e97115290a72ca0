#include "lb_health.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bl/bl_conf.h"
#include "bl/bl_log.h"
#include "bl/bl_util.h"
#include "lb_state.h"

struct lb_hc {
    struct lb_health *h;
    struct lb_node *node;
    ev_timer tick;                      /* every interval */
    ev_timer tmo;                       /* per-check timeout */
    ev_io io;
    int fd;                             /* -1 when no check runs */
    char req[512];
    size_t reqlen;
    size_t sent;
    char buf[256];
    size_t len;
};

struct lb_health {
    struct lb_proc *p;
    struct lb_hc **hcs;                 /* one per node of p->nodes */
    uint32_t n;
};

static void
publish(struct lb_health *h)
{
    if (lb_state_publish(h->p) < 0) {
        bl_log(BL_LOG_ERROR, "health: cannot publish the routing state: out of memory");
    }
}

static void
set_down(struct lb_health *h, struct lb_node *n, const char *why)
{
    n->up = false;
    n->ok_streak = 0;
    atomic_fetch_add_explicit(&n->ejections, 1, memory_order_relaxed);
    bl_logf(BL_LOG_WARN,
            ((struct bl_log_field[]){ BL_LOG_STR("node", n->name), BL_LOG_STR("addr", n->addr),
                                      BL_LOG_STR("reason", why) }),
            3, "node down");
    publish(h);
}

static void
check_done(struct lb_hc *hc, int ok, const char *why)
{
    struct lb_health *h = hc->h;
    struct lb_node *n = hc->node;
    const struct bl_conf_health *cf = &h->p->conf->lb.health;

    if (hc->fd >= 0) {
        ev_io_stop(h->p->loop, &hc->io);
        close(hc->fd);
        hc->fd = -1;
    }
    ev_timer_stop(h->p->loop, &hc->tmo);
    if (ok) {
        n->fail_streak = 0;
        n->ok_streak++;
        n->confirmed = true;
        if (!n->up && n->ok_streak >= cf->rise) {
            n->up = true;
            bl_logf(BL_LOG_INFO,
                    ((struct bl_log_field[]){ BL_LOG_STR("node", n->name),
                                              BL_LOG_STR("addr", n->addr) }),
                    2, "node up");
            publish(h);
        }
        return;
    }
    n->ok_streak = 0;
    n->fail_streak++;
    if (n->up && (!n->confirmed || n->fail_streak >= cf->fall)) {
        n->confirmed = true;
        set_down(h, n, why);
    }
    n->confirmed = true;
}

static void
io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    struct lb_hc *hc = bl_container_of(io, struct lb_hc, io);
    ssize_t r;

    if (revents & EV_WRITE) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (hc->sent == 0 &&
            (getsockopt(hc->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0)) {
            check_done(hc, 0, "connect failed");
            return;
        }
        r = write(hc->fd, hc->req + hc->sent, hc->reqlen - hc->sent);
        if (r < 0) {
            if (errno != EAGAIN) {
                check_done(hc, 0, "send failed");
            }
            return;
        }
        hc->sent += (size_t)r;
        if (hc->sent == hc->reqlen) {
            ev_io_stop(loop, io);
            ev_io_set(io, hc->fd, EV_READ);
            ev_io_start(loop, io);
        }
        return;
    }
    r = read(hc->fd, hc->buf + hc->len, sizeof(hc->buf) - 1 - hc->len);
    if (r < 0) {
        if (errno != EAGAIN) {
            check_done(hc, 0, "connection reset");
        }
        return;
    }
    hc->len += (size_t)r;
    hc->buf[hc->len] = '\0';
    if (strstr(hc->buf, "\r\n") != NULL || hc->len == sizeof(hc->buf) - 1 || r == 0) {
        int status = 0;
        if (sscanf(hc->buf, "HTTP/1.%*1[01] %3d", &status) == 1 && status >= 200 &&
            status < 300) {
            check_done(hc, 1, NULL);
        } else if (status != 0) {
            check_done(hc, 0, "bad status");
        } else {
            check_done(hc, 0, r == 0 ? "connection closed" : "malformed answer");
        }
    }
}

static void
tmo_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct lb_hc *hc = bl_container_of(t, struct lb_hc, tmo);

    (void)loop;
    (void)revents;
    check_done(hc, 0, "timeout");
}

static void
start_check(struct lb_hc *hc)
{
    struct lb_proc *p = hc->h->p;
    struct lb_node *n = hc->node;
    int fd;

    if (hc->fd >= 0) {
        return;     /* the previous check is still running (its timeout ends it) */
    }
    hc->sent = 0;
    hc->len = 0;
    fd = socket(n->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        check_done(hc, 0, "socket failed");
        return;
    }
    if (connect(fd, (struct sockaddr *)&n->sa, n->salen) < 0 && errno != EINPROGRESS) {
        close(fd);
        check_done(hc, 0, "connect failed");
        return;
    }
    hc->fd = fd;
    ev_io_init(&hc->io, io_cb, fd, EV_WRITE);
    ev_io_start(p->loop, &hc->io);
    ev_timer_set(&hc->tmo, (double)p->conf->lb.health.timeout_ms / 1000.0, 0.);
    ev_timer_start(p->loop, &hc->tmo);
}

static void
tick_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    start_check(bl_container_of(t, struct lb_hc, tick));
}

static struct lb_hc *
hc_create(struct lb_health *h, struct lb_node *n)
{
    const struct bl_conf_health *cf = &h->p->conf->lb.health;
    double iv = (double)cf->interval_ms / 1000.0;
    struct lb_hc *hc = bl_xcalloc(1, sizeof(*hc));

    hc->h = h;
    hc->node = n;
    hc->fd = -1;
    hc->reqlen = (size_t)snprintf(hc->req, sizeof(hc->req),
                                  "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: blog-lb-health\r\n"
                                  "Connection: close\r\n\r\n",
                                  cf->path, n->addr);
    ev_init(&hc->tmo, tmo_cb);
    /* first check at once, then every interval */
    ev_timer_init(&hc->tick, tick_cb, 0.0, iv > 0 ? iv : 1.0);
    ev_timer_start(h->p->loop, &hc->tick);
    return hc;
}

static void
hc_destroy(struct lb_hc *hc)
{
    struct ev_loop *loop = hc->h->p->loop;

    ev_timer_stop(loop, &hc->tick);
    ev_timer_stop(loop, &hc->tmo);
    if (hc->fd >= 0) {
        ev_io_stop(loop, &hc->io);
        close(hc->fd);
    }
    free(hc);
}

struct lb_health *
lb_health_create(struct lb_proc *p)
{
    struct lb_health *h = bl_xcalloc(1, sizeof(*h));

    h->p = p;
    h->n = p->nnodes;
    h->hcs = bl_xcalloc(h->n ? h->n : 1, sizeof(*h->hcs));
    for (uint32_t i = 0; i < h->n; i++) {
        h->hcs[i] = hc_create(h, p->nodes[i]);
    }
    return h;
}

void
lb_health_reload(struct lb_health *h)
{
    struct lb_proc *p = h->p;
    struct lb_hc **hcs = bl_xcalloc(p->nnodes ? p->nnodes : 1, sizeof(*hcs));

    for (uint32_t i = 0; i < p->nnodes; i++) {
        for (uint32_t k = 0; k < h->n; k++) {
            if (h->hcs[k] != NULL && h->hcs[k]->node == p->nodes[i]) {
                hcs[i] = h->hcs[k];     /* a node that stays keeps its checker */
                h->hcs[k] = NULL;
                break;
            }
        }
        if (hcs[i] == NULL) {
            hcs[i] = hc_create(h, p->nodes[i]);
        } else {
            /* a reload may change the interval and the path: from the next check */
            const struct bl_conf_health *cf = &atomic_load(&p->conf)->lb.health;
            double iv = (double)cf->interval_ms / 1000.0;
            hcs[i]->tick.repeat = iv > 0 ? iv : 1.0;
            if (hcs[i]->fd >= 0) {
                continue;   /* a check is being sent: the new path from the next one */
            }
            hcs[i]->reqlen = (size_t)snprintf(hcs[i]->req, sizeof(hcs[i]->req),
                                              "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: "
                                              "blog-lb-health\r\nConnection: close\r\n\r\n",
                                              cf->path, p->nodes[i]->addr);
        }
    }
    for (uint32_t k = 0; k < h->n; k++) {
        if (h->hcs[k] != NULL) {
            hc_destroy(h->hcs[k]);
        }
    }
    free(h->hcs);
    h->hcs = hcs;
    h->n = p->nnodes;
}

void
lb_health_destroy(struct lb_health *h)
{
    if (h == NULL) {
        return;
    }
    for (uint32_t i = 0; i < h->n; i++) {
        hc_destroy(h->hcs[i]);
    }
    free(h->hcs);
    free(h);
}

void
lb_health_passive(struct lb_health *h)
{
    struct lb_proc *p = h->p;

    for (uint32_t i = 0; i < p->nnodes; i++) {
        struct lb_node *n = p->nodes[i];
        if (atomic_exchange_explicit(&n->eject_req, 0, memory_order_acq_rel) == 0) {
            continue;
        }
        if (n->up) {
            n->confirmed = true;
            n->fail_streak = p->conf->lb.health.fall;
            set_down(h, n, "passive: request failed");
        }
    }
}
