/*
 * The client side of the proxy: one explicit state machine per connection (enum
 * lb_conn_state in lb_types.h, driven by drive() below).
 *
 * Per keep-alive request the fast path is: one read of the client (the whole request),
 * parse, pick, one writev to a pooled node connection (request head rewritten through an
 * iovec list pointing into the read buffer, no copy), one read of the node (the whole
 * response), one writev to the client (head rewritten the same way, body bytes straight
 * from the read buffer). No epoll_ctl: both sockets stay registered for EV_READ all the
 * time, and EV_WRITE is only added when a write could not take everything (the rest is
 * stashed in a small per-direction buffer, and the source side stops being read until
 * it is flushed: that is the backpressure that keeps a 10 MiB upload from being buffered).
 *
 * Timeouts use one lazy ev_timer per connection: state changes only store a deadline; the
 * timer is re-armed only when the new deadline is earlier than the one it is armed for,
 * and when it fires early it re-arms itself to the stored deadline.
 */
#include "lb_conn.h"

#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "bl/bl_conf.h"
#include "bl/bl_log.h"
#include "bl/bl_net.h"
#include "bl/bl_util.h"
#include "lb_algo.h"
#include "lb_backend.h"
#include "lb_metrics.h"
#include "lb_ratelimit.h"
#include "lb_route.h"
#include "lb_tls.h"
#include "lb_worker.h"

#define LB_CS_CLOSED ((enum lb_conn_state)100)

enum lb_cev {
    LB_EV_CREAD,        /* client socket readable */
    LB_EV_CDRAINED,     /* stashed client output fully written */
    LB_EV_BREAD,        /* node socket readable */
    LB_EV_BWRITE,       /* node socket writable (connect done or stash flushable) */
    LB_EV_TIMEOUT,      /* the state's deadline passed */
};

enum lb_fail {
    LB_FAIL_CONNECT,    /* connect refused / timed out: nothing was sent */
    LB_FAIL_SEND,       /* writing the request failed */
    LB_FAIL_RESET,      /* reset or EOF before the response was complete */
    LB_FAIL_TIMEOUT,    /* response timeout */
    LB_FAIL_PROTO,      /* malformed response */
};

#define R_CLOSE 0x1
#define R_RETRY_AFTER 0x2

static __thread struct lb_conn *graveyard;

static void drive(struct lb_conn *c, enum lb_cev ev);
static void process_input(struct lb_conn *c);
static void dispatch(struct lb_conn *c, int fail_status);
static void send_request(struct lb_conn *c);
static void reply(struct lb_conn *c, int status, const char *code, const char *msg, int flags);
static void client_io_cb(struct ev_loop *loop, ev_io *io, int revents);
static void client_pause(struct lb_conn *c);

/* ---- small helpers --------------------------------------------------------------- */

static inline int
pending(const struct lb_pend *p)
{
    return p->len > p->off;
}

static inline void
ctr_add(_Atomic uint64_t *x, uint64_t v)
{
    atomic_store_explicit(x, atomic_load_explicit(x, memory_order_relaxed) + v,
                          memory_order_relaxed);
}

static void
cio_set(struct lb_conn *c, int mask)
{
    if (c->mask == mask) {
        return;
    }
    ev_io_stop(c->w->loop, &c->io);
    if (c->ssl != NULL && (mask & EV_READ) && !(c->mask & EV_READ) && SSL_pending(c->ssl) > 0) {
        ev_feed_event(c->w->loop, &c->io, EV_READ);   /* decrypted bytes already wait */
    }
    c->mask = (uint8_t)mask;
    if (mask != 0) {
        ev_io_set(&c->io, c->fd, mask);
        ev_io_start(c->w->loop, &c->io);
    }
}

/* read(2) of the client, through TLS on TLS listeners (the only TLS branch of the read
 * path). */
static inline ssize_t
cread(struct lb_conn *c, void *buf, size_t n)
{
    ssize_t r;

    if (c->ssl != NULL) {
        r = lb_tls_read(c, buf, n);
        if (c->tls_wantw && !(c->mask & EV_WRITE)) {
            cio_set(c, c->mask | EV_WRITE);
        }
        return r;
    }
    return read(c->fd, buf, n);
}

static void
set_deadline(struct lb_conn *c, double t)
{
    ev_tstamp d = ev_now(c->w->loop) + t;

    c->deadline = d;
    if (d < c->tmr_at) {
        ev_timer_stop(c->w->loop, &c->tmr);
        ev_timer_set(&c->tmr, t, 0.);
        ev_timer_start(c->w->loop, &c->tmr);
        c->tmr_at = d;
    }
}

static void
tmr_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct lb_conn *c = bl_container_of(t, struct lb_conn, tmr);
    ev_tstamp now = ev_now(loop);

    (void)revents;
    if (c->deadline > now + 0.0005) {
        ev_timer_set(t, c->deadline - now, 0.);
        ev_timer_start(loop, t);
        c->tmr_at = c->deadline;
        return;
    }
    c->tmr_at = HUGE_VAL;
    drive(c, LB_EV_TIMEOUT);
}

/* Appends iov[0..n) minus its first <skip> bytes to <p>. 0 or -ENOMEM. */
static int
pend_add(struct lb_pend *p, const struct iovec *iov, int n, size_t skip)
{
    size_t need = 0;

    for (int i = 0; i < n; i++) {
        need += iov[i].iov_len;
    }
    need -= skip;
    if (p->off > 0 && p->off == p->len) {
        p->off = p->len = 0;
    }
    if ((size_t)p->len + need > p->cap) {
        size_t cap = p->cap ? p->cap : 4096;
        char *nb;
        while (cap < (size_t)p->len + need) {
            cap *= 2;
        }
        if (cap > UINT32_MAX) {
            return -ENOMEM;
        }
        nb = realloc(p->buf, cap);
        if (nb == NULL) {
            return -ENOMEM;
        }
        p->buf = nb;
        p->cap = (uint32_t)cap;
    }
    for (int i = 0; i < n; i++) {
        size_t l = iov[i].iov_len;
        const char *s = iov[i].iov_base;
        if (skip >= l) {
            skip -= l;
            continue;
        }
        memcpy(p->buf + p->len, s + skip, l - skip);
        p->len += (uint32_t)(l - skip);
        skip = 0;
    }
    return 0;
}

/* Writes out pending bytes. 1 when empty, 0 when some remain, -1 on error. */
static int
pend_flush(struct lb_pend *p, int fd)
{
    while (p->off < p->len) {
        ssize_t r = write(fd, p->buf + p->off, p->len - p->off);
        if (r < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                return 0;
            }
            return -1;
        }
        p->off += (uint32_t)r;
    }
    p->off = p->len = 0;
    return 1;
}

static void
pend_free(struct lb_pend *p)
{
    BL_FREE(p->buf);
    p->len = p->off = p->cap = 0;
}

/* Writes iov to <fd> straight away; stashes what it did not take in <p>.
 * Returns 1 when all was written, 0 when some was stashed, -1 on a socket error. */
static int
out_write(struct lb_pend *p, int fd, struct iovec *iov, int n)
{
    size_t total = 0;
    ssize_t r;

    if (pending(p)) {
        return pend_add(p, iov, n, 0) < 0 ? -1 : 0;
    }
    for (int i = 0; i < n; i++) {
        total += iov[i].iov_len;
    }
    if (total == 0) {
        return 1;
    }
    do {
        r = writev(fd, iov, n);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
        if (errno != EAGAIN) {
            return -1;
        }
        r = 0;
    }
    if ((size_t)r == total) {
        return 1;
    }
    return pend_add(p, iov, n, (size_t)r) < 0 ? -1 : 0;
}

/* To the client. -1: the connection was closed. */
static int
out_client(struct lb_conn *c, struct iovec *iov, int n)
{
    int r;

    if (c->ssl != NULL) {
        /* TLS: gather into the stash (SSL_write encrypts from one buffer), then flush */
        r = pend_add(&c->to_c, iov, n, 0) < 0 ? -1 : lb_tls_flush(c);
    } else {
        r = out_write(&c->to_c, c->fd, iov, n);
    }

    if (r < 0) {
        lb_conn_close(c);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        c->bytes_out += iov[i].iov_len;
    }
    if (r == 0) {
        cio_set(c, c->mask | EV_WRITE);
    }
    return 0;
}

/* ---- bookkeeping ----------------------------------------------------------------- */

static void
inflight_inc(struct lb_conn *c, struct lb_wnode *wn)
{
    c->wn = wn;
    wn->inflight++;
    atomic_fetch_add_explicit(&wn->node->inflight, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&wn->node->requests, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->w->p->inflight_total, 1, memory_order_relaxed);
}

static void
inflight_dec(struct lb_conn *c)
{
    struct lb_wnode *wn = c->wn;

    if (wn == NULL) {
        return;
    }
    c->wn = NULL;
    wn->inflight--;
    atomic_fetch_sub_explicit(&wn->node->inflight, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&c->w->p->inflight_total, 1, memory_order_relaxed);
}

/* Lets go of the node: queue place, connection (closed unless <reuse>), in-flight. */
static void
detach(struct lb_conn *c, int reuse)
{
    struct lb_bconn *b = c->b;

    if (c->state == LB_CS_QUEUED && c->wn != NULL) {
        lb_backend_dequeue(c->wn, c);
    }
    c->to_b.off = c->to_b.len = 0;
    if (b != NULL) {
        c->b = NULL;
        b->c = NULL;
        if (!reuse) {
            lb_backend_set_mask(b, 0);
        } else if (b->mask != EV_READ) {
            lb_backend_set_mask(b, EV_READ);
        }
        inflight_dec(c);
        lb_backend_release(b, reuse);
        return;
    }
    inflight_dec(c);
}

static void
rid_generate(struct lb_conn *c)
{
    char *r = c->w->rid_next;

    /* increment the hex counter in place (an odometer: usually one digit changes) */
    for (int i = 23; i >= 10; i--) {
        if (r[i] == 'f') {
            r[i] = '0';
            continue;
        }
        r[i] = r[i] == '9' ? 'a' : (char)(r[i] + 1);
        break;
    }
    memcpy(c->rid, r, 25);
    c->rid_len = 24;
    c->rid_ours = 1;
}

/* Retry budget: per-second buckets over LB_BUDGET_SECS seconds, per worker. */
static void
budget_roll(struct lb_budget *bg, uint64_t sec)
{
    if (sec == bg->sec) {
        return;
    }
    if (sec - bg->sec >= LB_BUDGET_SECS) {
        memset(bg->req, 0, sizeof(bg->req));
        memset(bg->ret, 0, sizeof(bg->ret));
        bg->req_sum = bg->ret_sum = 0;
    } else {
        for (uint64_t s = bg->sec + 1; s <= sec; s++) {
            uint32_t i = (uint32_t)(s % LB_BUDGET_SECS);
            bg->req_sum -= bg->req[i];
            bg->ret_sum -= bg->ret[i];
            bg->req[i] = bg->ret[i] = 0;
        }
    }
    bg->sec = sec;
}

static void
budget_request(struct lb_worker *w)
{
    uint64_t sec = (uint64_t)ev_now(w->loop);

    budget_roll(&w->budget, sec);
    w->budget.req[sec % LB_BUDGET_SECS]++;
    w->budget.req_sum++;
}

/* Takes one retry from the budget: retries <= max(3, retry_budget * requests) per window. */
static int
budget_take(struct lb_worker *w)
{
    uint64_t sec = (uint64_t)ev_now(w->loop);
    double allowed;

    budget_roll(&w->budget, sec);
    allowed = w->p->conf->lb.balance.retry_budget * (double)w->budget.req_sum;
    if (allowed < 3.0) {
        allowed = 3.0;
    }
    if ((double)(w->budget.ret_sum + 1) > allowed) {
        ctr_add(&w->m->retry_denied, 1);
        return 0;
    }
    w->budget.ret[sec % LB_BUDGET_SECS]++;
    w->budget.ret_sum++;
    return 1;
}

static void
log_access(struct lb_conn *c)
{
    char path[sizeof(c->logline)];
    const char *method = "-", *sp;
    double total, up = -1.0;
    const char *node = NULL;

    snprintf(path, sizeof(path), "%s", c->hlen > 0 ? c->logline : "-");
    sp = strchr(path, ' ');
    if (sp != NULL) {
        method = path;
        path[sp - path] = '\0';
        sp++;
    } else {
        sp = path;
    }
    total = (ev_now(c->w->loop) - c->t_start) * 1000.0;
    if (c->t_up > 0) {
        up = (ev_now(c->w->loop) - c->t_up) * 1000.0;
    }
    if (c->node != NULL) {
        node = c->node->name;
    }
    bl_logf(BL_LOG_INFO,
            ((struct bl_log_field[]){
                BL_LOG_STR("request_id", c->rid),
                BL_LOG_STR("client", c->cip),
                BL_LOG_STR("method", method),
                BL_LOG_STR("path", sp),
                BL_LOG_INT("status", c->status),
                BL_LOG_UINT("bytes", c->bytes_out),
                BL_LOG_STR("node", node),
                BL_LOG_UINT("attempts", c->attempts),
                BL_LOG_DOUBLE("request_ms", total),
                BL_LOG_DOUBLE("upstream_ms", up),
            }),
            10, "access");
}

/* Counts the finished request in the metrics and the access log. */
static void
account(struct lb_conn *c)
{
    struct lb_worker *w = c->w;

    lb_metrics_record(w->m, c->route, c->status, ev_now(w->loop) - c->t_start);
    if (w->p->conf->lb.access_log) {
        log_access(c);
    }
}

/* ---- connection life ------------------------------------------------------------- */

void
lb_conn_accept(struct lb_worker *w, struct lb_listener *l, int fd, const struct sockaddr *sa,
               socklen_t salen)
{
    struct lb_conn *c = malloc(sizeof(*c));
    char addr[64];

    (void)salen;
    if (c == NULL) {
        close(fd);
        atomic_fetch_sub_explicit(&w->p->nclients, 1, memory_order_relaxed);
        return;
    }
    /* only the small fixed part needs zeroing: req/resp are initialised per message */
    memset(c, 0, offsetof(struct lb_conn, req));
    memset(&c->route, 0, offsetof(struct lb_conn, resp) - offsetof(struct lb_conn, route));
    memset(&c->status, 0, sizeof(*c) - offsetof(struct lb_conn, status));
    c->fd = fd;
    c->w = w;
    c->l = l;
    c->tmr_at = HUGE_VAL;
    if (w->st == NULL || l->spec >= w->st->nls) {
        close(fd);      /* a listener newer than this snapshot (cannot happen: published first) */
        atomic_fetch_sub_explicit(&w->p->nclients, 1, memory_order_relaxed);
        free(c);
        return;
    }
    if (w->st->ls[l->spec].tls != NULL) {
        c->ssl = SSL_new(w->st->ls[l->spec].tls);
        if (c->ssl == NULL || SSL_set_fd(c->ssl, fd) != 1) {
            ERR_clear_error();
            if (c->ssl != NULL) {
                SSL_free(c->ssl);
            }
            close(fd);
            atomic_fetch_sub_explicit(&w->p->nclients, 1, memory_order_relaxed);
            free(c);
            return;
        }
        SSL_set_accept_state(c->ssl);
    }
    c->state = LB_CS_IDLE;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        const uint8_t *ip = (const uint8_t *)&in->sin_addr;
        c->cip_len = (uint8_t)snprintf(c->cip, sizeof(c->cip), "%u.%u.%u.%u", ip[0], ip[1],
                                       ip[2], ip[3]);
    } else {
        bl_net_addr_str(sa, addr, sizeof(addr));
        /* strip the port of "[v6]:port" */
        char *colon = strrchr(addr, ':');
        if (colon != NULL) {
            *colon = '\0';
        }
        if (addr[0] == '[') {
            size_t n = strlen(addr);
            memmove(addr, addr + 1, n);
            if (n >= 2 && addr[n - 2] == ']') {
                addr[n - 2] = '\0';
            }
        }
        snprintf(c->cip, sizeof(c->cip), "%.47s", addr);
        c->cip_len = (uint8_t)strlen(c->cip);
    }
    lb_http_req_init(&c->req);
    c->lnext = w->conns;
    if (w->conns != NULL) {
        w->conns->lprev = c;
    }
    w->conns = c;
    w->nconns++;
    ev_io_init(&c->io, client_io_cb, fd, EV_READ);
    c->mask = EV_READ;
    ev_io_start(w->loop, &c->io);
    ev_init(&c->tmr, tmr_cb);
    set_deadline(c, w->p->t_header);
    /* with TCP_DEFER_ACCEPT the request is usually there already: read it now */
    drive(c, LB_EV_CREAD);
}

void
lb_conn_close(struct lb_conn *c)
{
    struct lb_worker *w = c->w;

    if (c->state == LB_CS_CLOSED) {
        return;
    }
    detach(c, 0);
    ev_io_stop(w->loop, &c->io);
    ev_timer_stop(w->loop, &c->tmr);
    lb_tls_close(c);
    close(c->fd);
    c->fd = -1;
    c->state = LB_CS_CLOSED;
    lb_worker_buf_put(w, &c->ibuf, 0);
    lb_worker_buf_put(w, &c->rbuf, 1);
    pend_free(&c->to_c);
    pend_free(&c->to_b);
    if (c->lprev != NULL) {
        c->lprev->lnext = c->lnext;
    } else {
        w->conns = c->lnext;
    }
    if (c->lnext != NULL) {
        c->lnext->lprev = c->lprev;
    }
    w->nconns--;
    atomic_fetch_sub_explicit(&w->p->nclients, 1, memory_order_relaxed);
    c->lnext = graveyard;
    graveyard = c;
    if (w->stopping && w->nconns == 0) {
        ev_break(w->loop, EVBREAK_ONE);
    }
}

void
lb_conn_reap(struct lb_worker *w)
{
    (void)w;
    while (graveyard != NULL) {
        struct lb_conn *c = graveyard;
        graveyard = c->lnext;
        free(c);
    }
}

void
lb_conn_drain(struct lb_conn *c, int force)
{
    if (force || (c->state == LB_CS_IDLE && !pending(&c->to_c))) {
        lb_conn_close(c);
        return;
    }
    c->keep = 0;
}

/* Closing after a last response: flush, then half-close and read what the client still
 * sends for a moment (so our response is not destroyed by a RST), then close. */
static void
closing_progress(struct lb_conn *c)
{
    char tmp[4096];
    ssize_t r;

    if (pending(&c->to_c)) {
        cio_set(c, EV_WRITE);
        return;
    }
    if (c->ceof) {
        lb_conn_close(c);
        return;
    }
    if (!c->lingering) {
        if (c->ssl != NULL && SSL_is_init_finished(c->ssl)) {
            (void)SSL_shutdown(c->ssl);     /* close_notify before the FIN */
            ERR_clear_error();
        }
        shutdown(c->fd, SHUT_WR);
        c->lingering = 1;
        cio_set(c, EV_READ);
        set_deadline(c, 1.0);
    }
    for (int i = 0; i < 16; i++) {
        r = read(c->fd, tmp, sizeof(tmp));
        if (r > 0) {
            continue;
        }
        if (r < 0 && errno == EAGAIN) {
            return;
        }
        break;
    }
    lb_conn_close(c);
}

static void
enter_closing(struct lb_conn *c)
{
    c->state = LB_CS_CLOSING;
    set_deadline(c, c->w->p->t_idle < 5.0 ? c->w->p->t_idle : 5.0);
    closing_progress(c);
}

/* The current request is over (answered); go on with the next one or close. */
static void
request_done(struct lb_conn *c)
{
    struct lb_worker *w = c->w;

    c->rlen = c->rpos = 0;
    lb_worker_buf_put(w, &c->rbuf, 1);
    c->node = NULL;
    if (!c->keep || c->ceof || !c->req_done || w->stopping) {
        enter_closing(c);
        return;
    }
    c->ipos = c->fwd;
    c->hlen = 0;
    c->t_up = 0;
    c->attempts = 0;
    c->stale_retry = 0;
    c->resp_started = 0;
    lb_http_req_init(&c->req);
    if (c->ipos == c->ilen) {
        c->ipos = c->ilen = c->fwd = 0;
        lb_worker_buf_put(w, &c->ibuf, 0);
        c->state = LB_CS_IDLE;
        set_deadline(c, w->p->t_idle);
    } else {
        c->state = LB_CS_HEAD;
        c->t_start = ev_now(w->loop);
        set_deadline(c, w->p->t_header);
    }
    if (!(c->mask & EV_READ)) {
        cio_set(c, c->mask | EV_READ);
    }
    if (c->state == LB_CS_HEAD && !c->in_input) {
        process_input(c);
    }
}

/* ---- LB-generated responses ------------------------------------------------------ */

static void
reply(struct lb_conn *c, int status, const char *code, const char *msg, int flags)
{
    char *s = c->w->scratch;
    char body[256];
    int blen, hlen;
    struct iovec iov[2];
    int head_only = c->hlen > 0 && c->req.method == LB_HTTP_HEAD;

    detach(c, 0);
    if (c->resp_started) {
        lb_conn_close(c);
        return;
    }
    if (!c->req_done || c->w->stopping) {
        flags |= R_CLOSE;
    }
    if (flags & R_CLOSE) {
        c->keep = 0;
    }
    if (c->rid_len == 0) {
        rid_generate(c);
    }
    blen = snprintf(body, sizeof(body), "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}\n",
                    code, msg);
    hlen = snprintf(s, 1024,
                    "HTTP/1.1 %d %s\r\n"
                    "Content-Type: application/json; charset=utf-8\r\n"
                    "Content-Length: %d\r\n"
                    "X-Request-Id: %.*s\r\n"
                    "%s%s\r\n",
                    status, lb_http_status_text(status), blen, (int)c->rid_len, c->rid,
                    (flags & R_RETRY_AFTER) ? "Retry-After: 1\r\n" : "",
                    c->keep ? (c->req.h.version == LB_HTTP_10 ? "Connection: keep-alive\r\n" : "")
                            : "Connection: close\r\n");
    iov[0].iov_base = s;
    iov[0].iov_len = (size_t)hlen;
    iov[1].iov_base = body;
    iov[1].iov_len = head_only ? 0 : (size_t)blen;
    c->status = (uint16_t)status;
    c->bytes_out = 0;
    c->resp_started = 1;
    if (c->t_start == 0) {
        c->t_start = ev_now(c->w->loop);
    }
    if (out_client(c, iov, 2) < 0) {
        return;
    }
    account(c);
    request_done(c);
}

static void
reply_parse_error(struct lb_conn *c, int err)
{
    int status = lb_http_error_status(err);
    const char *code;

    switch (status) {
    case 413:
        code = "payload_too_large";
        break;
    case 414:
        code = "uri_too_long";
        break;
    case 417:
        code = "expectation_failed";
        break;
    case 431:
        code = "header_fields_too_large";
        break;
    case 501:
        code = "not_implemented";
        break;
    case 505:
        code = "http_version_not_supported";
        break;
    default:
        code = "bad_request";
        break;
    }
    c->req_done = 0;
    c->hlen = 0;
    c->route = LB_ROUTE_NONE;
    reply(c, status, code, lb_http_strerror(err), R_CLOSE);
}

/* ---- request side ---------------------------------------------------------------- */

/* Consumes request body bytes [fwd, ilen) into iov (at most one entry). Returns the
 * number of iov entries used (0 or 1), or a negative LB_HTTP_E* on bad chunk framing. */
static int
take_body(struct lb_conn *c, struct iovec *iov)
{
    size_t avail = c->ilen - c->fwd, take = 0;

    if (c->req_done) {
        return 0;
    }
    if (c->req.h.body == LB_HTTP_BODY_LENGTH) {
        take = avail < c->body_left ? avail : (size_t)c->body_left;
        c->body_left -= take;
        if (c->body_left == 0) {
            c->req_done = 1;
        }
    } else if (c->req.h.body == LB_HTTP_BODY_CHUNKED) {
        int r = lb_chunked_scan(&c->ck, c->ibuf + c->fwd, avail, &take);
        if (r < 0) {
            return r;
        }
        if (r == 1) {
            c->req_done = 1;
        }
    } else {
        c->req_done = 1;
    }
    if (take == 0) {
        return 0;
    }
    iov->iov_base = c->ibuf + c->fwd;
    iov->iov_len = take;
    c->fwd += (uint32_t)take;
    return 1;
}

static void
begin_request(struct lb_conn *c, int hlen)
{
    struct lb_worker *w = c->w;
    const char *base = c->ibuf + c->ipos;
    struct lb_route_match m;
    int xi;

    c->hlen = (uint32_t)hlen;
    c->fwd = c->ipos + (uint32_t)hlen;
    c->keep = (c->req.h.flags & LB_HTTP_F_KEEP_ALIVE) != 0 && !w->stopping;
    c->req_done = 0;
    c->resp_started = 0;
    c->attempts = 0;
    c->stale_retry = 0;
    c->t_up = 0;
    c->bytes_out = 0;
    c->status = 0;
    c->replayable = 1;
    xi = c->req.h.idx[LB_HTTP_H_X_REQUEST_ID];
    if (xi >= 0 && c->req.h.hdrs[xi].value_len > 0) {
        const struct lb_http_hdr *h = &c->req.h.hdrs[xi];
        size_t n = BL_MIN((size_t)h->value_len, sizeof(c->rid) - 1);
        memcpy(c->rid, base + h->value_off, n);
        c->rid[n] = '\0';
        c->rid_len = (uint8_t)n;
        c->rid_ours = 0;
    } else {
        rid_generate(c);
    }
    switch (c->req.h.body) {
    case LB_HTTP_BODY_LENGTH:
        c->body_left = c->req.h.content_length;
        if (c->body_left == 0) {
            c->req_done = 1;
        } else if ((uint64_t)c->ipos + hlen + c->body_left > w->p->ibuf_size && c->ipos > 0) {
            /* make room so that the whole request may stay in the buffer (retries) */
            memmove(c->ibuf, base, c->ilen - c->ipos);
            c->ilen -= c->ipos;
            c->fwd -= c->ipos;
            c->ipos = 0;
        }
        break;
    case LB_HTTP_BODY_CHUNKED:
        lb_chunked_init(&c->ck, w->p->lim.max_body);
        break;
    default:
        c->req_done = 1;
        break;
    }
    if (w->p->conf->lb.access_log) {
        /* the head may be gone from the buffer when the log line is written */
        snprintf(c->logline, sizeof(c->logline), "%.*s %.*s", (int)c->req.method_len,
                 c->ibuf + c->ipos + c->req.method_off, (int)c->req.target_len,
                 c->ibuf + c->ipos + c->req.target_off);
    }
    lb_route_match(c->ibuf + c->ipos + c->req.target_off, c->req.target_len, &m);
    c->route = m.route;
    if (m.route == LB_ROUTE_NONE) {
        reply(c, 404, "not_found", "no such resource", 0);
        return;
    }
    if (w->p->ratelimit != NULL &&
        !lb_ratelimit_take(w->p->ratelimit, c->cip, c->cip_len,
                           (uint64_t)(ev_now(w->loop) * 1000.0))) {
        reply(c, 429, "too_many_requests", "request rate over limits.rate_per_ip",
              R_RETRY_AFTER);
        return;
    }
    c->hash = m.hash;
    c->by_id = (uint8_t)m.by_id;
    budget_request(w);
    dispatch(c, 503);
}

/* The request head for the node, as an iovec list over the client buffer plus extras. */
static int
build_head(struct lb_conn *c, struct iovec *iov, int max)
{
    const char *base = c->ibuf + c->ipos;
    const struct lb_http_head *h = &c->req.h;
    char *x = c->w->scratch;
    size_t xl = 0, xcap = c->w->p->ibuf_size + 512;
    uint32_t seg = h->start_off;
    int n = 0, nxff = 0;

    for (uint32_t i = 0; i < h->nhdrs; i++) {
        const struct lb_http_hdr *hd = &h->hdrs[i];
        /* Transfer-Encoding is hop-by-hop, but the chunked body is passed through as it
         * is, so its framing header goes with it */
        if ((!(hd->flags & LB_HTTP_HF_HOP) || hd->id == LB_HTTP_H_TRANSFER_ENCODING) &&
            hd->id != LB_HTTP_H_X_FORWARDED_FOR && hd->id != LB_HTTP_H_X_FORWARDED_PROTO) {
            continue;
        }
        if (hd->name_off > seg) {
            iov[n].iov_base = (char *)base + seg;
            iov[n].iov_len = hd->name_off - seg;
            n++;
        }
        seg = (uint32_t)hd->name_off + hd->line_len;
        if (hd->id == LB_HTTP_H_X_FORWARDED_FOR && hd->value_len > 0) {
            if (xl + hd->value_len + 32 < xcap) {
                memcpy(x + xl, nxff == 0 ? "X-Forwarded-For: " : ", ", nxff == 0 ? 17 : 2);
                xl += nxff == 0 ? 17 : 2;
                memcpy(x + xl, base + hd->value_off, hd->value_len);
                xl += hd->value_len;
                nxff++;
            }
        }
        if (n >= max - 3) {
            return -1;
        }
    }
    if ((uint32_t)h->head_len - 2 > seg) {
        iov[n].iov_base = (char *)base + seg;
        iov[n].iov_len = h->head_len - 2 - seg;
        n++;
    }
    if (nxff == 0) {
        memcpy(x, "X-Forwarded-For: ", 17);
        xl = 17;
    } else {
        x[xl++] = ',';
        x[xl++] = ' ';
    }
    memcpy(x + xl, c->cip, c->cip_len);
    xl += c->cip_len;
    if (c->ssl != NULL) {
        memcpy(x + xl, "\r\nX-Forwarded-Proto: https\r\n", 28);
        xl++;
    } else {
        memcpy(x + xl, "\r\nX-Forwarded-Proto: http\r\n", 27);
    }
    xl += 27;
    if (c->rid_ours) {
        memcpy(x + xl, "X-Request-Id: ", 14);
        xl += 14;
        memcpy(x + xl, c->rid, c->rid_len);
        xl += c->rid_len;
        x[xl++] = '\r';
        x[xl++] = '\n';
    }
    if (h->version == LB_HTTP_10) {
        memcpy(x + xl, "Connection: keep-alive\r\n", 24);
        xl += 24;
    }
    x[xl++] = '\r';
    x[xl++] = '\n';
    iov[n].iov_base = x;
    iov[n].iov_len = xl;
    n++;
    return n;
}

static void
backend_fail(struct lb_conn *c, enum lb_fail why);

/* Writes the request (head and the body bytes at hand) to the bound node connection. */
static void
send_request(struct lb_conn *c)
{
    struct lb_bconn *b = c->b;
    struct iovec iov[LB_HTTP_MAX_HEADERS + 8];
    int n, r;

    /* (re)start the body from the beginning of the request */
    c->fwd = c->ipos + c->hlen;
    c->req_done = 0;
    if (c->req.h.body == LB_HTTP_BODY_LENGTH) {
        c->body_left = c->req.h.content_length;
    } else if (c->req.h.body == LB_HTTP_BODY_CHUNKED) {
        lb_chunked_init(&c->ck, c->w->p->lim.max_body);
    }
    n = build_head(c, iov, (int)BL_ARRAY_SIZE(iov) - 1);
    if (n < 0) {
        reply(c, 431, "header_fields_too_large", "too many header fields", R_CLOSE);
        return;
    }
    r = take_body(c, &iov[n]);
    if (r < 0) {
        reply_parse_error(c, r);
        return;
    }
    n += r;
    c->t_up = ev_now(c->w->loop);
    b->nreq++;
    r = out_write(&c->to_b, b->fd, iov, n);
    if (r < 0) {
        backend_fail(c, LB_FAIL_SEND);
        return;
    }
    if (r == 0) {
        lb_backend_set_mask(b, EV_READ | EV_WRITE);
    }
    lb_http_resp_init(&c->resp);
    if (c->req_done) {
        c->state = LB_CS_RESP_HEAD;
        set_deadline(c, c->w->p->t_response);
    } else {
        c->state = LB_CS_BODY;
        set_deadline(c, c->w->p->t_body);
        if (!(c->mask & EV_READ) && !pending(&c->to_b)) {
            cio_set(c, c->mask | EV_READ);
        }
    }
}

/* Picks a node and gets a connection to it. <fail_status>: what to answer when no node
 * is left (503 for a first attempt, the failure's status for a retry). */
static void
dispatch(struct lb_conn *c, int fail_status)
{
    struct lb_worker *w = c->w;
    struct lb_state *st = w->st;
    struct lb_pick pk;
    struct lb_wnode *wn;
    struct lb_bconn *b = NULL;
    int idx, r;

    pk.hash = c->hash;
    pk.total_inflight = atomic_load_explicit(&w->p->inflight_total, memory_order_relaxed);
    pk.exclude = c->tried;
    pk.nexclude = c->attempts;
    pk.rng = &w->rng;
    pk.rr = &w->rr;
    idx = st == NULL ? -1 : (c->by_id ? st->by_id : st->other)->pick(st, &pk);
    if (idx < 0 || c->attempts >= BL_ARRAY_SIZE(c->tried)) {
        if (fail_status == 503) {
            reply(c, 503, "no_node", "no healthy node can take the request", R_RETRY_AFTER);
        } else if (fail_status == 504) {
            reply(c, 504, "gateway_timeout", "the node did not answer in time", 0);
        } else {
            reply(c, 502, "bad_gateway", "the node failed", 0);
        }
        return;
    }
    c->node = st->nodes[idx];
    c->tried[c->attempts++] = (int16_t)c->node->id;
    wn = c->node->id < w->nwnodes ? w->wnodes[c->node->id] : NULL;
    if (wn == NULL) {
        /* the worker could not allocate its state for a node added by a reload */
        reply(c, 503, "no_node", "out of memory", R_RETRY_AFTER);
        return;
    }
    inflight_inc(c, wn);
    r = lb_backend_acquire(w, wn, c, &b);
    switch (r) {
    case LB_ACQ_READY:
        c->b = b;
        send_request(c);
        return;
    case LB_ACQ_CONNECTING:
        c->b = b;
        c->state = LB_CS_CONNECT;
        set_deadline(c, w->p->t_connect);
        return;
    case LB_ACQ_QUEUED:
        c->state = LB_CS_QUEUED;
        set_deadline(c, w->p->t_queue);
        return;
    case LB_ACQ_FULL:
        inflight_dec(c);
        reply(c, 503, "queue_full", "the node's queue is full", R_RETRY_AFTER);
        return;
    default:
        backend_fail(c, LB_FAIL_CONNECT);
        return;
    }
}

void
lb_conn_slot(struct lb_conn *c, struct lb_bconn *b)
{
    struct lb_bconn *nb = NULL;
    int r;

    c->state = LB_CS_CONNECT;   /* no longer in the queue (lb_backend_release took it out) */
    if (b != NULL) {
        c->b = b;
        send_request(c);
        return;
    }
    r = lb_backend_acquire(c->w, c->wn, c, &nb);
    if (r == LB_ACQ_READY) {
        c->b = nb;
        send_request(c);
    } else if (r == LB_ACQ_CONNECTING) {
        c->b = nb;
        c->state = LB_CS_CONNECT;
        set_deadline(c, c->w->p->t_connect);
    } else if (r == LB_ACQ_QUEUED) {
        c->state = LB_CS_QUEUED;
    } else if (r == LB_ACQ_FULL) {
        inflight_dec(c);
        reply(c, 503, "queue_full", "the node's queue is full", R_RETRY_AFTER);
    } else {
        backend_fail(c, LB_FAIL_CONNECT);
    }
}

/* Whether snapshot <st> still routes new requests to <n>: present, up (health and drain
 * are folded into st->up by lb_state_publish) and not removed. */
static int
node_routable(const struct lb_state *st, const struct lb_node *n)
{
    if (atomic_load_explicit(&n->removed, memory_order_relaxed) ||
        atomic_load_explicit(&n->draining, memory_order_relaxed)) {
        return 0;
    }
    for (uint32_t i = 0; i < st->nnodes; i++) {
        if (st->nodes[i] == n) {
            return st->up[i] != 0;
        }
    }
    return 0;
}

void
lb_conn_reroute_queued(struct lb_worker *w)
{
    struct lb_state *st = w->st;

    if (st == NULL) {
        return;
    }
    for (uint32_t i = 0; i < w->nwnodes; i++) {
        struct lb_wnode *wn = w->wnodes[i];
        uint32_t moved = 0;
        if (wn == NULL || wn->qhead == NULL || node_routable(st, wn->node)) {
            continue;
        }
        /* The node is not picked by this snapshot, so nothing dispatched below can join
         * its queue again: the loop ends. */
        while (wn->qhead != NULL) {
            struct lb_conn *c = wn->qhead;
            lb_backend_dequeue(wn, c);
            inflight_dec(c);
            c->state = LB_CS_CONNECT;
            /* nothing was sent there: forget the attempt (the down node is not picked
             * anyway), so the move costs neither a retry nor the retry budget */
            if (c->attempts > 0 && c->tried[c->attempts - 1] == (int16_t)wn->node->id) {
                c->attempts--;
            }
            moved++;
            dispatch(c, 503);
        }
        bl_log(BL_LOG_INFO, "node %s is out of the routing: %u queued request(s) moved",
               wn->node->name, moved);
    }
}

static int
idempotent(int method)
{
    return method == LB_HTTP_GET || method == LB_HTTP_HEAD || method == LB_HTTP_PUT ||
           method == LB_HTTP_DELETE || method == LB_HTTP_OPTIONS;
}

static void
backend_fail(struct lb_conn *c, enum lb_fail why)
{
    struct lb_worker *w = c->w;
    struct lb_bconn *b = c->b;
    struct lb_wnode *wn = c->wn;
    struct lb_node *node = wn != NULL ? wn->node : NULL;
    int status;

    /* A pooled connection the node had already closed: not the node's fault. Reconnect
     * once to the same node. When the write itself failed the request never reached the
     * node; when it was written and then the connection died without a byte of answer,
     * the node may have acted on it, so only an idempotent request is sent again. */
    if ((why == LB_FAIL_SEND || (why == LB_FAIL_RESET && idempotent(c->req.method))) &&
        b != NULL && b->nreq > 1 &&
        c->rlen == 0 && !c->resp_started && !c->stale_retry && c->replayable == 1 &&
        c->state != LB_CS_RESP_BODY) {
        struct lb_bconn *nb = NULL;
        int r;
        c->stale_retry = 1;
        c->b = NULL;
        b->c = NULL;
        lb_backend_set_mask(b, 0);
        lb_backend_flush_idle(wn);
        /* the in-flight count stays with this node */
        lb_backend_release(b, 0);
        c->to_b.off = c->to_b.len = 0;
        r = lb_backend_acquire(w, wn, c, &nb);
        if (r == LB_ACQ_READY) {
            c->b = nb;
            send_request(c);
            return;
        }
        if (r == LB_ACQ_CONNECTING) {
            c->b = nb;
            c->state = LB_CS_CONNECT;
            set_deadline(c, w->p->t_connect);
            return;
        }
        if (r == LB_ACQ_QUEUED) {
            c->state = LB_CS_QUEUED;
            set_deadline(c, w->p->t_queue);
            return;
        }
        b = NULL;
        why = LB_FAIL_CONNECT;
    }
    if (node != NULL) {
        atomic_fetch_add_explicit(&node->failures, 1, memory_order_relaxed);
        if (why != LB_FAIL_PROTO) {
            lb_backend_eject(w->p, node);
        }
        bl_log(BL_LOG_WARN, "node %s: %s (request %s)", node->name,
               why == LB_FAIL_CONNECT   ? "connect failed"
               : why == LB_FAIL_SEND    ? "send failed"
               : why == LB_FAIL_RESET   ? "connection reset before the response ended"
               : why == LB_FAIL_TIMEOUT ? "response timeout"
                                        : "malformed response",
               c->rid);
    }
    detach(c, 0);
    status = why == LB_FAIL_TIMEOUT ? 504 : why == LB_FAIL_CONNECT ? 503 : 502;
    if (!c->resp_started && c->replayable == 1 &&
        (idempotent(c->req.method) || why == LB_FAIL_CONNECT) &&
        c->attempts <= w->p->conf->lb.balance.retries && budget_take(w)) {
        if (node != NULL) {
            atomic_fetch_add_explicit(&node->retries, 1, memory_order_relaxed);
        }
        ctr_add(&w->m->retries, 1);
        c->stale_retry = 0;
        c->rlen = c->rpos = 0;
        dispatch(c, status);
        return;
    }
    if (c->resp_started) {
        lb_conn_close(c);
        return;
    }
    if (status == 504) {
        reply(c, 504, "gateway_timeout", "the node did not answer in time", 0);
    } else if (status == 503) {
        reply(c, 503, "no_node", "no node could take the request", R_RETRY_AFTER);
    } else {
        reply(c, 502, "bad_gateway", "the node failed before answering", 0);
    }
}

/* Reads the request head (IDLE/HEAD). */
static void
client_read_head(struct lb_conn *c)
{
    struct lb_worker *w = c->w;
    ssize_t n;

    if (pending(&c->to_c)) {
        client_pause(c);
        return;
    }
    if (c->ibuf == NULL) {
        c->ibuf = lb_worker_buf_get(w, 0);
        if (c->ibuf == NULL) {
            lb_conn_close(c);
            return;
        }
    }
    if (c->ilen == w->p->ibuf_size) {
        if (c->ipos == 0) {
            reply_parse_error(c, LB_HTTP_EHEAD_TOO_LARGE);
            return;
        }
        memmove(c->ibuf, c->ibuf + c->ipos, c->ilen - c->ipos);
        c->ilen -= c->ipos;
        c->fwd = 0;
        c->ipos = 0;
    }
    n = cread(c, c->ibuf + c->ilen, w->p->ibuf_size - c->ilen);
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (c->ilen == 0) {
                lb_worker_buf_put(w, &c->ibuf, 0);
            }
            return;
        }
        lb_conn_close(c);
        return;
    }
    c->ilen += (uint32_t)n;
    if (c->state == LB_CS_IDLE) {
        c->state = LB_CS_HEAD;
        c->t_start = ev_now(w->loop);
        set_deadline(c, w->p->t_header);
    }
    process_input(c);
}

/* Parses and starts requests from the buffer while the connection is in HEAD. */
static void
process_input(struct lb_conn *c)
{
    c->in_input = 1;
    while (c->state == LB_CS_HEAD && !pending(&c->to_c)) {
        int r = lb_http_parse_request(c->ibuf + c->ipos, c->ilen - c->ipos, &c->w->p->lim,
                                      &c->req);
        if (r == 0) {
            break;
        }
        if (r < 0) {
            reply_parse_error(c, r);
            break;
        }
        begin_request(c, r);
    }
    c->in_input = 0;
}

/* Reads more request body (BODY). */
static void
client_read_body(struct lb_conn *c)
{
    struct lb_worker *w = c->w;
    struct iovec iov;
    ssize_t n;
    int r;

    if (pending(&c->to_b) || c->b == NULL) {
        cio_set(c, c->mask & ~EV_READ);
        return;
    }
    if (c->ilen == w->p->ibuf_size) {
        /* everything up to ilen was forwarded: drop it (no retry from here on) */
        c->replayable = 0;
        c->ipos = c->ilen = c->fwd = 0;
    }
    n = cread(c, c->ibuf + c->ilen, w->p->ibuf_size - c->ilen);
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            return;
        }
        lb_conn_close(c);
        return;
    }
    c->ilen += (uint32_t)n;
    r = take_body(c, &iov);
    if (r < 0) {
        reply_parse_error(c, r);
        return;
    }
    if (r > 0) {
        r = out_write(&c->to_b, c->b->fd, &iov, 1);
        if (r < 0) {
            backend_fail(c, LB_FAIL_SEND);
            return;
        }
        if (r == 0) {
            lb_backend_set_mask(c->b, EV_READ | EV_WRITE);
            cio_set(c, c->mask & ~EV_READ);
        }
    }
    if (c->req_done) {
        if (c->state == LB_CS_BODY) {
            c->state = LB_CS_RESP_HEAD;
            set_deadline(c, w->p->t_response);
        }
    } else {
        set_deadline(c, w->p->t_body);
    }
}

/* ---- response side --------------------------------------------------------------- */

/* Forwards the final response head plus the body bytes at hand. */
static void
forward_head(struct lb_conn *c, int hlen)
{
    struct lb_worker *w = c->w;
    const char *base = c->rbuf + c->rpos;
    const struct lb_http_head *h = &c->resp.h;
    struct iovec iov[LB_HTTP_MAX_HEADERS + 8];
    uint32_t seg = h->start_off;
    size_t avail, take = 0;
    int n = 0;
    const char *conn_hdr = NULL;

    if (h->body == LB_HTTP_BODY_CLOSE || !c->req_done) {
        c->keep = 0;
    }
    for (uint32_t i = 0; i < h->nhdrs; i++) {
        const struct lb_http_hdr *hd = &h->hdrs[i];
        if (!(hd->flags & LB_HTTP_HF_HOP) || hd->id == LB_HTTP_H_TRANSFER_ENCODING) {
            continue;
        }
        if (hd->name_off > seg) {
            iov[n].iov_base = (char *)base + seg;
            iov[n].iov_len = hd->name_off - seg;
            n++;
        }
        seg = (uint32_t)hd->name_off + hd->line_len;
    }
    if (!c->keep) {
        conn_hdr = "Connection: close\r\n\r\n";
    } else if (c->req.h.version == LB_HTTP_10) {
        conn_hdr = "Connection: keep-alive\r\n\r\n";
    }
    if (conn_hdr != NULL) {
        if ((uint32_t)h->head_len - 2 > seg) {
            iov[n].iov_base = (char *)base + seg;
            iov[n].iov_len = h->head_len - 2 - seg;
            n++;
        }
        iov[n].iov_base = (char *)conn_hdr;
        iov[n].iov_len = strlen(conn_hdr);
        n++;
    } else {
        iov[n].iov_base = (char *)base + seg;
        iov[n].iov_len = h->head_len - seg;
        n++;
    }
    c->rpos += (uint32_t)hlen;
    avail = c->rlen - c->rpos;
    c->status = c->resp.status;
    c->t_resp = ev_now(w->loop);
    c->state = LB_CS_RESP_BODY;
    c->resp_started = 1;
    switch (h->body) {
    case LB_HTTP_BODY_LENGTH:
        c->resp_left = h->content_length;
        take = avail < c->resp_left ? avail : (size_t)c->resp_left;
        c->resp_left -= take;
        break;
    case LB_HTTP_BODY_CHUNKED: {
        int r;
        lb_chunked_init(&c->rck, 0);
        r = lb_chunked_scan(&c->rck, c->rbuf + c->rpos, avail, &take);
        if (r < 0) {
            backend_fail(c, LB_FAIL_PROTO);
            return;
        }
        c->resp_left = r == 1 ? 0 : 1;
        break;
    }
    case LB_HTTP_BODY_CLOSE:
        take = avail;
        c->resp_left = 1;
        break;
    default:
        c->resp_left = 0;
        break;
    }
    if (take > 0) {
        iov[n].iov_base = c->rbuf + c->rpos;
        iov[n].iov_len = take;
        n++;
        c->rpos += (uint32_t)take;
    }
    if (out_client(c, iov, n) < 0) {
        return;
    }
    set_deadline(c, w->p->t_response);
}

static void
response_done(struct lb_conn *c)
{
    int reuse = (c->resp.h.flags & LB_HTTP_F_KEEP_ALIVE) && c->req_done && c->rpos == c->rlen &&
                !pending(&c->to_b);

    detach(c, reuse);
    account(c);
    request_done(c);
}

/* Handles the bytes in rbuf: response head(s), then body. */
static void
process_response(struct lb_conn *c)
{
    for (;;) {
        if (c->state != LB_CS_RESP_BODY) {
            int r = lb_http_parse_response(c->rbuf + c->rpos, c->rlen - c->rpos,
                                           &c->w->p->rlim, c->req.method, &c->resp);
            if (r == 0) {
                if (c->rlen == c->w->p->rbuf_size) {
                    if (c->rpos == 0) {
                        backend_fail(c, LB_FAIL_PROTO);
                        return;
                    }
                    memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
                    c->rlen -= c->rpos;
                    c->rpos = 0;
                }
                return;
            }
            if (r < 0) {
                backend_fail(c, LB_FAIL_PROTO);
                return;
            }
            if (c->resp.status < 200) {
                struct iovec iov;
                if (c->resp.status == 101) {
                    backend_fail(c, LB_FAIL_PROTO);
                    return;
                }
                /* 100 Continue and other interim responses go through as they are */
                if (c->req.h.version == LB_HTTP_11) {
                    iov.iov_base = c->rbuf + c->rpos;
                    iov.iov_len = (size_t)r;
                    c->resp_started = 1;
                    if (out_client(c, &iov, 1) < 0) {
                        return;
                    }
                }
                c->rpos += (uint32_t)r;
                lb_http_resp_init(&c->resp);
                continue;
            }
            forward_head(c, r);
            if (c->state != LB_CS_RESP_BODY) {
                return;
            }
        } else if (c->rpos < c->rlen && c->resp_left > 0) {
            size_t avail = c->rlen - c->rpos, take = 0;
            struct iovec iov;
            if (c->resp.h.body == LB_HTTP_BODY_LENGTH) {
                take = avail < c->resp_left ? avail : (size_t)c->resp_left;
                c->resp_left -= take;
            } else if (c->resp.h.body == LB_HTTP_BODY_CHUNKED) {
                int r = lb_chunked_scan(&c->rck, c->rbuf + c->rpos, avail, &take);
                if (r < 0) {
                    lb_conn_close(c);
                    return;
                }
                if (r == 1) {
                    c->resp_left = 0;
                }
            } else {
                take = avail;
            }
            iov.iov_base = c->rbuf + c->rpos;
            iov.iov_len = take;
            c->rpos += (uint32_t)take;
            if (out_client(c, &iov, 1) < 0) {
                return;
            }
            set_deadline(c, c->w->p->t_response);
        }
        if (c->rpos == c->rlen) {
            c->rpos = c->rlen = 0;
        }
        if (c->resp_left == 0) {
            response_done(c);
        }
        return;
    }
}

static void
backend_read(struct lb_conn *c)
{
    struct lb_worker *w = c->w;
    struct lb_bconn *b = c->b;
    ssize_t n;

    if (pending(&c->to_c)) {
        lb_backend_set_mask(b, b->mask & ~EV_READ);
        return;
    }
    if (c->rbuf == NULL) {
        c->rbuf = lb_worker_buf_get(w, 1);
        if (c->rbuf == NULL) {
            lb_conn_close(c);
            return;
        }
    }
    n = read(b->fd, c->rbuf + c->rlen, w->p->rbuf_size - c->rlen);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return;
    }
    if (n <= 0) {
        if (n == 0 && c->state == LB_CS_RESP_BODY && c->resp.h.body == LB_HTTP_BODY_CLOSE) {
            c->resp_left = 0;
            c->resp.h.flags &= (uint16_t)~LB_HTTP_F_KEEP_ALIVE;
            response_done(c);
            return;
        }
        backend_fail(c, LB_FAIL_RESET);
        return;
    }
    c->rlen += (uint32_t)n;
    process_response(c);
}

/* ---- the driver ------------------------------------------------------------------ */

/* Client data while the connection does not want any: stop watching until later. */
static void
client_pause(struct lb_conn *c)
{
    cio_set(c, c->mask & ~EV_READ);
}

static void
backend_flush(struct lb_conn *c)
{
    struct lb_bconn *b = c->b;
    int r;

    if (b == NULL) {
        return;
    }
    r = pend_flush(&c->to_b, b->fd);
    if (r < 0) {
        backend_fail(c, LB_FAIL_SEND);
        return;
    }
    if (r == 1) {
        lb_backend_set_mask(b, EV_READ);
        if (c->state == LB_CS_BODY && !c->req_done && !(c->mask & EV_READ)) {
            cio_set(c, c->mask | EV_READ);
        }
    }
}

static void
connected(struct lb_conn *c)
{
    struct lb_bconn *b = c->b;
    int err = 0;
    socklen_t len = sizeof(err);

    if (getsockopt(b->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) {
        err = errno;
    }
    if (err != 0) {
        backend_fail(c, LB_FAIL_CONNECT);
        return;
    }
    b->connecting = 0;
    lb_backend_set_mask(b, EV_READ);
    send_request(c);
}

static void
drive(struct lb_conn *c, enum lb_cev ev)
{
    struct lb_worker *w = c->w;

    switch (c->state) {
    case LB_CS_IDLE:
    case LB_CS_HEAD:
        if (ev == LB_EV_CREAD) {
            client_read_head(c);
        } else if (ev == LB_EV_CDRAINED) {
            if (!(c->mask & EV_READ)) {
                cio_set(c, c->mask | EV_READ);     /* paused while output was pending */
            }
            process_input(c);
        } else if (ev == LB_EV_TIMEOUT) {
            if (c->state == LB_CS_IDLE || w->stopping) {
                lb_conn_close(c);
            } else {
                c->req_done = 0;
                c->hlen = 0;
                c->route = LB_ROUTE_NONE;
                reply(c, 408, "request_timeout", "request header not received in time",
                      R_CLOSE);
            }
        }
        break;
    case LB_CS_QUEUED:
        if (ev == LB_EV_CREAD) {
            client_pause(c);
        } else if (ev == LB_EV_TIMEOUT) {
            reply(c, 503, "queue_timeout", "waited too long for a node connection",
                  R_RETRY_AFTER);
        }
        break;
    case LB_CS_CONNECT:
        if (ev == LB_EV_BWRITE) {
            connected(c);
        } else if (ev == LB_EV_BREAD) {
            connected(c);
        } else if (ev == LB_EV_CREAD) {
            client_pause(c);
        } else if (ev == LB_EV_TIMEOUT) {
            backend_fail(c, LB_FAIL_CONNECT);
        }
        break;
    case LB_CS_BODY:
    case LB_CS_RESP_HEAD:
    case LB_CS_RESP_BODY:
        switch (ev) {
        case LB_EV_CREAD:
            if (c->state == LB_CS_BODY && !c->req_done) {
                client_read_body(c);
            } else {
                client_pause(c);
            }
            break;
        case LB_EV_BREAD:
            backend_read(c);
            break;
        case LB_EV_BWRITE:
            backend_flush(c);
            break;
        case LB_EV_CDRAINED:
            if (c->b != NULL && !(c->b->mask & EV_READ)) {
                lb_backend_set_mask(c->b, c->b->mask | EV_READ);
            }
            break;
        case LB_EV_TIMEOUT:
            if (c->state == LB_CS_BODY) {
                reply(c, 408, "request_timeout", "request body not received in time", R_CLOSE);
            } else if (pending(&c->to_c)) {
                /* The client does not take what we already have for it (a response, or the
                 * previous one of a pipeline): our backpressure stopped reading the node,
                 * the node did nothing wrong. Close the client; no failure, no ejection. */
                lb_conn_close(c);
            } else if (c->state == LB_CS_RESP_HEAD) {
                backend_fail(c, LB_FAIL_TIMEOUT);
            } else {
                if (c->wn != NULL) {
                    atomic_fetch_add_explicit(&c->wn->node->failures, 1, memory_order_relaxed);
                }
                lb_conn_close(c);
            }
            break;
        }
        break;
    case LB_CS_CLOSING:
        if (ev == LB_EV_TIMEOUT) {
            lb_conn_close(c);
        } else {
            closing_progress(c);
        }
        break;
    default:
        break;
    }
}

/* ev_io callback of client sockets (installed by lb_conn_accept). */
static void
client_io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    struct lb_conn *c = bl_container_of(io, struct lb_conn, io);

    (void)loop;
    if ((revents & EV_WRITE) && c->tls_wantw) {
        /* the handshake (inside SSL_read) waited for the socket: go on reading */
        c->tls_wantw = 0;
        if (!pending(&c->to_c)) {
            cio_set(c, c->mask & ~EV_WRITE);
        }
        drive(c, LB_EV_CREAD);
        return;
    }
    if (revents & EV_WRITE) {
        int r = c->ssl != NULL ? lb_tls_flush(c) : pend_flush(&c->to_c, c->fd);
        if (r < 0) {
            lb_conn_close(c);
            return;
        }
        if (r == 1) {
            cio_set(c, c->mask & ~EV_WRITE);
            if (c->state == LB_CS_CLOSING) {
                closing_progress(c);
                return;
            }
            drive(c, LB_EV_CDRAINED);
        }
    }
    if ((revents & EV_READ) && c->state != LB_CS_CLOSED) {
        drive(c, LB_EV_CREAD);
    }
}

void
lb_conn_backend_event(struct lb_conn *c, int revents)
{
    if (revents & EV_WRITE) {
        drive(c, LB_EV_BWRITE);
    }
    if ((revents & EV_READ) && c->state != LB_CS_CLOSED && c->b != NULL &&
        c->state != LB_CS_CONNECT) {
        drive(c, LB_EV_BREAD);
    }
}
