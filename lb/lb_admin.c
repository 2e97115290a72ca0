#include "lb_admin.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bl/bl_auth.h"
#include "bl/bl_buf.h"
#include "bl/bl_conf.h"
#include "bl/bl_err.h"
#include "bl/bl_log.h"
#include "bl/bl_net.h"
#include "bl/bl_util.h"
#include "lb_http.h"
#include "lb_metrics.h"

#define ADMIN_BUF 8192

struct lb_aconn {
    ev_io io;
    ev_timer tmr;
    int fd;
    struct lb_admin *a;
    struct lb_aconn *next, *prev;
    char buf[ADMIN_BUF];
    size_t len;
    struct lb_http_req req;
    struct bl_buf out;
    size_t off;
};

struct lb_admin {
    struct lb_proc *p;
    ev_io io;
    int fd;
    struct lb_aconn *conns;
    struct lb_http_limits lim;
};

static void
aconn_close(struct lb_aconn *ac)
{
    struct lb_admin *a = ac->a;

    ev_io_stop(a->p->loop, &ac->io);
    ev_timer_stop(a->p->loop, &ac->tmr);
    close(ac->fd);
    if (ac->prev != NULL) {
        ac->prev->next = ac->next;
    } else {
        a->conns = ac->next;
    }
    if (ac->next != NULL) {
        ac->next->prev = ac->prev;
    }
    bl_buf_deinit(&ac->out);
    free(ac);
}

static void
respond(struct lb_aconn *ac, int status, const char *ctype, const char *extra,
        const char *body, size_t blen, int head_only)
{
    struct bl_buf *o = &ac->out;

    bl_buf_reset(o);
    if (bl_buf_printf(o,
                      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
                      "Connection: close\r\n\r\n",
                      status, lb_http_status_text(status), ctype, blen, extra ? extra : "") < 0 ||
        (!head_only && bl_buf_append(o, body, blen) < 0)) {
        aconn_close(ac);
        return;
    }
    ac->off = 0;
    ev_io_stop(ac->a->p->loop, &ac->io);
    ev_io_set(&ac->io, ac->fd, EV_WRITE);
    ev_io_start(ac->a->p->loop, &ac->io);
}

static void
respond_error(struct lb_aconn *ac, int status, const char *code, const char *msg,
              const char *extra)
{
    char body[256];
    int n = snprintf(body, sizeof(body), "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}\n",
                     code, msg);

    respond(ac, status, "application/json; charset=utf-8", extra, body, (size_t)n, 0);
}

static int
authorized(struct lb_aconn *ac, int is_metrics)
{
    const struct bl_conf_admin *cf = &ac->a->p->conf->lb.admin;
    char val[1024];
    int i;

    if (!cf->has_token || (is_metrics && cf->metrics_public)) {
        return 1;
    }
    i = lb_http_find_hdr(ac->buf, &ac->req.h, 0, "Authorization", 13);
    if (i < 0) {
        return 0;
    }
    if (ac->req.h.hdrs[i].value_len >= sizeof(val)) {
        return 0;
    }
    memcpy(val, ac->buf + ac->req.h.hdrs[i].value_off, ac->req.h.hdrs[i].value_len);
    val[ac->req.h.hdrs[i].value_len] = '\0';
    return bl_auth_bearer_ok(val, (const uint8_t(*)[BL_SHA256_LEN])cf->token_sha256, 1);
}

static void
handle(struct lb_aconn *ac)
{
    const char *path = ac->buf + ac->req.target_off;
    size_t plen = ac->req.path_len;
    int m = ac->req.method;
    int is_get = m == LB_HTTP_GET || m == LB_HTTP_HEAD;

    if (plen == 8 && memcmp(path, "/healthz", 8) == 0) {
        if (!is_get) {
            respond_error(ac, 405, "method_not_allowed", "use GET", "Allow: GET, HEAD\r\n");
            return;
        }
        respond(ac, 200, "application/json; charset=utf-8", NULL, "{\"status\":\"ok\"}\n", 16,
                m == LB_HTTP_HEAD);
        return;
    }
    if (plen == 8 && memcmp(path, "/metrics", 8) == 0) {
        struct bl_buf body;
        if (!is_get) {
            respond_error(ac, 405, "method_not_allowed", "use GET", "Allow: GET, HEAD\r\n");
            return;
        }
        if (!authorized(ac, 1)) {
            respond_error(ac, 401, "unauthorized", "a valid admin bearer token is required",
                          "WWW-Authenticate: Bearer\r\n");
            return;
        }
        bl_buf_init(&body);
        if (lb_metrics_render(ac->a->p, &body) < 0) {
            bl_buf_deinit(&body);
            respond_error(ac, 500, "internal", "out of memory", NULL);
            return;
        }
        respond(ac, 200, "text/plain; version=0.0.4; charset=utf-8", NULL,
                body.data ? body.data : "", body.len, m == LB_HTTP_HEAD);
        bl_buf_deinit(&body);
        return;
    }
    respond_error(ac, 404, "not_found", "no such admin resource", NULL);
}

static void
aconn_io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    struct lb_aconn *ac = bl_container_of(io, struct lb_aconn, io);
    ssize_t r;

    (void)loop;
    if (revents & EV_WRITE) {
        r = write(ac->fd, ac->out.data + ac->off, ac->out.len - ac->off);
        if (r < 0 && errno == EAGAIN) {
            return;
        }
        if (r <= 0) {
            aconn_close(ac);
            return;
        }
        ac->off += (size_t)r;
        if (ac->off == ac->out.len) {
            shutdown(ac->fd, SHUT_WR);
            aconn_close(ac);
        }
        return;
    }
    r = read(ac->fd, ac->buf + ac->len, sizeof(ac->buf) - ac->len);
    if (r < 0 && errno == EAGAIN) {
        return;
    }
    if (r <= 0) {
        aconn_close(ac);
        return;
    }
    ac->len += (size_t)r;
    r = lb_http_parse_request(ac->buf, ac->len, &ac->a->lim, &ac->req);
    if (r == 0) {
        if (ac->len == sizeof(ac->buf)) {
            respond_error(ac, 431, "header_fields_too_large", "request head too large", NULL);
        }
        return;
    }
    if (r < 0) {
        respond_error(ac, lb_http_error_status((int)r), "bad_request", lb_http_strerror((int)r),
                      NULL);
        return;
    }
    handle(ac);
}

static void
aconn_tmr_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    aconn_close(bl_container_of(t, struct lb_aconn, tmr));
}

static void
accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    struct lb_admin *a = bl_container_of(io, struct lb_admin, io);

    (void)revents;
    for (int i = 0; i < 16; i++) {
        int fd = accept4(a->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        struct lb_aconn *ac;
        if (fd < 0) {
            return;
        }
        ac = calloc(1, sizeof(*ac));
        if (ac == NULL) {
            close(fd);
            continue;
        }
        ac->fd = fd;
        ac->a = a;
        bl_buf_init(&ac->out);
        lb_http_req_init(&ac->req);
        ac->next = a->conns;
        if (a->conns != NULL) {
            a->conns->prev = ac;
        }
        a->conns = ac;
        ev_io_init(&ac->io, aconn_io_cb, fd, EV_READ);
        ev_io_start(loop, &ac->io);
        ev_timer_init(&ac->tmr, aconn_tmr_cb, 10.0, 0.);
        ev_timer_start(loop, &ac->tmr);
    }
}

struct lb_admin *
lb_admin_create(struct lb_proc *p, int *err)
{
    const struct bl_conf_admin *cf = &p->conf->lb.admin;
    struct lb_admin *a;
    int fd;

    *err = 0;
    if (cf->bind == NULL || cf->bind[0] == '\0') {
        return NULL;
    }
    fd = bl_net_listen(cf->bind, 128, false);
    if (fd < 0) {
        bl_log(BL_LOG_ERROR, "admin listener %s: %s", cf->bind, bl_strerror(fd));
        *err = fd;
        return NULL;
    }
    a = bl_xcalloc(1, sizeof(*a));
    a->p = p;
    a->fd = fd;
    lb_http_limits_default(&a->lim);
    a->lim.max_head = ADMIN_BUF;
    a->lim.max_line = ADMIN_BUF;
    ev_io_init(&a->io, accept_cb, fd, EV_READ);
    ev_io_start(p->loop, &a->io);
    if (!cf->has_token) {
        bl_log(BL_LOG_WARN, "admin listener %s: no admin.token_sha256 configured: /metrics is "
                            "open to anyone who can connect", cf->bind);
    }
    return a;
}

void
lb_admin_destroy(struct lb_admin *a)
{
    if (a == NULL) {
        return;
    }
    while (a->conns != NULL) {
        aconn_close(a->conns);
    }
    ev_io_stop(a->p->loop, &a->io);
    close(a->fd);
    free(a);
}
