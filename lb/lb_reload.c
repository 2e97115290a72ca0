#include "lb_reload.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bl/bl_conf.h"
#include "bl/bl_err.h"
#include "bl/bl_log.h"
#include "bl/bl_maglev.h"
#include "bl/bl_util.h"
#include "lb_algo.h"
#include "lb_backend.h"
#include "lb_health.h"
#include "lb_state.h"
#include "lb_tls.h"
#include "lb_worker.h"

static void
conf_problem(char *err, size_t errlen, int *rc, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    bl_log(BL_LOG_ERROR, "%s", msg);
    if (err != NULL && *rc == 0) {
        snprintf(err, errlen, "%s", msg);
    }
    *rc = BL_ECONF;
}

int
lb_conf_check(const struct bl_conf *conf, char *err, size_t errlen)
{
    const struct bl_conf_lb *lb = &conf->lb;
    int rc = 0;

    if (lb->nlisteners == 0) {
        conf_problem(err, errlen, &rc, "%s: lb.listeners: at least one listener is needed",
                     conf->file);
    }
    for (size_t i = 0; i < lb->nlisteners; i++) {
        const struct bl_conf_listener *l = &lb->listeners[i];
        char what[160];
        snprintf(what, sizeof(what), "%s: lb.listeners[%zu] (%s)", conf->file, i, l->bind);
        if (l->mode == BL_MODE_TCP && l->tls.enabled) {
            conf_problem(err, errlen, &rc,
                         "%s: tls: is for mode: http listeners (mode: tcp passes bytes "
                         "through, TLS included)", what);
        }
        if (l->mode == BL_MODE_TCP && l->balance != BL_BALANCE_MAGLEV &&
            l->balance != BL_BALANCE_LEASTCONN) {
            conf_problem(err, errlen, &rc, "%s: balance: use maglev or leastconn", what);
        }
        for (size_t k = 0; k < i; k++) {
            if (strcmp(lb->listeners[k].bind, l->bind) == 0) {
                conf_problem(err, errlen, &rc, "%s: bind: listed twice", what);
            }
        }
        if (l->mode == BL_MODE_HTTP && l->tls.enabled) {
            char msg[768];
            SSL_CTX *ctx = lb_tls_ctx_create(&l->tls, what, msg, sizeof(msg));
            if (ctx == NULL) {
                conf_problem(err, errlen, &rc, "%s", msg);
            }
            SSL_CTX_free(ctx);
        }
    }
    if (lb_algo_find(lb->balance.by_id) == NULL ||
        (lb->balance.by_id != BL_BALANCE_MAGLEV && lb->balance.by_id != BL_BALANCE_P2C &&
         lb->balance.by_id != BL_BALANCE_ROUNDROBIN)) {
        conf_problem(err, errlen, &rc, "%s: lb.balance.by_id: unsupported algorithm",
                     conf->file);
    }
    if (lb_algo_find(lb->balance.other) == NULL || lb->balance.other == BL_BALANCE_MAGLEV) {
        conf_problem(err, errlen, &rc, "%s: lb.balance.other: use p2c or roundrobin",
                     conf->file);
    }
    for (size_t i = 0; i < conf->nnodes; i++) {
        struct lb_node n;
        if (lb_node_init(&n, &conf->nodes[i], 0) < 0) {
            conf_problem(err, errlen, &rc, "%s: nodes[%zu].addr: bad address \"%s\"",
                         conf->file, i, conf->nodes[i].addr);
            continue;
        }
        lb_node_deinit(&n);
    }
    return rc;
}

struct lb_node *
lb_nodes_new(struct lb_proc *p, const char *name, const char *addr, uint32_t weight)
{
    struct bl_conf_node_entry e;
    struct lb_node *n = bl_xcalloc(1, sizeof(*n));

    memset(&e, 0, sizeof(e));
    e.name = (char *)name;
    e.addr = (char *)addr;
    e.weight = weight;
    if (lb_node_init(n, &e, p->nall_nodes) < 0) {
        free(n);
        return NULL;
    }
    n->weight = weight;
    p->all_nodes = bl_xrealloc(p->all_nodes, (p->nall_nodes + 1) * sizeof(*p->all_nodes));
    p->all_nodes[p->nall_nodes++] = n;
    return n;
}

struct lb_node *
lb_nodes_find(struct lb_proc *p, const char *name)
{
    for (uint32_t i = 0; i < p->nnodes; i++) {
        if (strcmp(p->nodes[i]->name, name) == 0) {
            return p->nodes[i];
        }
    }
    return NULL;
}

/* Share of slots whose owner name differs between two tables (over old and new node
 * lists). 1.0 when one of them is empty and the other is not. */
static double
moved_share(const struct lb_ring *a, struct lb_node *const *an, const struct lb_ring *b,
            struct lb_node *const *bn)
{
    const int32_t *sa, *sb;
    uint32_t size, moved = 0;

    if (a == NULL || b == NULL || bl_maglev_size(a->maglev) != bl_maglev_size(b->maglev)) {
        return 1.0;
    }
    size = bl_maglev_size(a->maglev);
    sa = bl_maglev_slots(a->maglev);
    sb = bl_maglev_slots(b->maglev);
    if (size == 0 || sa == NULL || sb == NULL) {
        return 0.0;
    }
    for (uint32_t i = 0; i < size; i++) {
        if (sa[i] < 0 || sb[i] < 0) {
            moved += sa[i] != sb[i];
        } else if (an[sa[i]] != bn[sb[i]] && strcmp(an[sa[i]]->name, bn[sb[i]]->name) != 0) {
            moved++;
        }
    }
    return (double)moved / (double)size;
}

int
lb_nodes_apply(struct lb_proc *p, struct lb_node **nodes, uint32_t n, double *moved)
{
    struct lb_ring *ring = lb_ring_create(nodes, n);

    if (ring == NULL) {
        free(nodes);
        return -ENOMEM;
    }
    if (moved != NULL) {
        *moved = moved_share(p->ring, p->nodes, ring, nodes);
    }
    for (uint32_t k = 0; k < p->nnodes; k++) {
        int stays = 0;
        for (uint32_t i = 0; i < n && !stays; i++) {
            stays = nodes[i] == p->nodes[k];
        }
        if (!stays) {
            atomic_store(&p->nodes[k]->removed, 1);
        }
    }
    free(p->nodes);
    p->nodes = nodes;
    p->nnodes = n;
    lb_ring_put(p->ring);
    p->ring = ring;
    lb_health_reload(p->health);
    if (lb_state_publish(p) < 0) {
        bl_log(BL_LOG_ERROR, "cannot publish the routing state: out of memory");
    }
    return 0;
}

int
lb_listeners_init(struct lb_proc *p, char *err, size_t errlen)
{
    const struct bl_conf_lb *lb = &atomic_load(&p->conf)->lb;

    p->nlspecs = (uint32_t)lb->nlisteners;
    p->lspecs = bl_xcalloc(p->nlspecs ? p->nlspecs : 1, sizeof(*p->lspecs));
    for (uint32_t i = 0; i < p->nlspecs; i++) {
        const struct bl_conf_listener *l = &lb->listeners[i];
        struct lb_lspec *s = &p->lspecs[i];
        s->id = i;
        s->bind = bl_xstrdup(l->bind);
        s->mode = l->mode;
        s->balance = l->balance;
        s->active = 1;
        s->wl = bl_xcalloc(p->nworkers ? p->nworkers : 1, sizeof(*s->wl));
        if (l->mode == BL_MODE_HTTP && l->tls.enabled) {
            char what[160];
            snprintf(what, sizeof(what), "lb.listeners[%u] (%s)", i, l->bind);
            s->tls = lb_tls_ctx_create(&l->tls, what, err, errlen);
            if (s->tls == NULL) {
                return BL_ECONF;
            }
        }
    }
    return 0;
}

void
lb_listeners_free(struct lb_proc *p)
{
    for (uint32_t i = 0; i < p->nlspecs; i++) {
        SSL_CTX_free(p->lspecs[i].tls);
        free(p->lspecs[i].bind);
        free(p->lspecs[i].wl);
    }
    free(p->lspecs);
    p->lspecs = NULL;
    p->nlspecs = 0;
}

/*
 * Listener part of a reload. Everything that can fail (TLS contexts, sockets of new
 * listeners) is prepared first; on failure nothing changed. A listener that stays (same
 * bind and mode) keeps its sockets (no refused connection) and gets its new TLS context
 * (certificates re-read) and balance; a new one is opened on every worker; a removed one
 * stops accepting, its established connections finish. The worker side is applied after
 * the next snapshot is published (lb_listeners_commit).
 */
struct lplan {
    uint32_t nnew;
    int *match;                 /* per new listener: kept spec id, or -1 */
    SSL_CTX **tls;              /* per new listener */
    struct lb_listener ***opened; /* per new listener without a match: per worker */
};

static void
lplan_free(struct lb_proc *p, const struct bl_conf *nc, struct lplan *pl, int failed)
{
    for (uint32_t i = 0; i < pl->nnew; i++) {
        if (failed) {
            SSL_CTX_free(pl->tls[i]);
        }
        if (pl->opened[i] != NULL) {
            for (uint32_t w = 0; failed && w < p->nworkers; w++) {
                if (pl->opened[i][w] != NULL) {
                    close(pl->opened[i][w]->fd);
                    free(pl->opened[i][w]);
                }
            }
            free(pl->opened[i]);
        }
    }
    (void)nc;
    free(pl->match);
    free(pl->tls);
    free(pl->opened);
}

static int
listeners_prepare(struct lb_proc *p, const struct bl_conf *nc, struct lplan *pl, char *err,
                  size_t errlen)
{
    const struct bl_conf_lb *lb = &nc->lb;

    pl->nnew = (uint32_t)lb->nlisteners;
    pl->match = bl_xcalloc(pl->nnew + 1, sizeof(*pl->match));
    pl->tls = bl_xcalloc(pl->nnew + 1, sizeof(*pl->tls));
    pl->opened = bl_xcalloc(pl->nnew + 1, sizeof(*pl->opened));
    for (uint32_t i = 0; i < pl->nnew; i++) {
        const struct bl_conf_listener *l = &lb->listeners[i];
        pl->match[i] = -1;
        for (uint32_t k = 0; k < p->nlspecs; k++) {
            if (p->lspecs[k].active && p->lspecs[k].mode == (int)l->mode &&
                strcmp(p->lspecs[k].bind, l->bind) == 0) {
                pl->match[i] = (int)k;
            }
        }
        if (l->mode == BL_MODE_HTTP && l->tls.enabled) {
            char what[160];
            snprintf(what, sizeof(what), "%s: lb.listeners[%u] (%s)", nc->file, i, l->bind);
            pl->tls[i] = lb_tls_ctx_create(&l->tls, what, err, errlen);
            if (pl->tls[i] == NULL) {
                return BL_ECONF;
            }
        }
        if (pl->match[i] < 0) {
            struct lb_lspec tmp = { .bind = l->bind, .mode = (int)l->mode };
            pl->opened[i] = bl_xcalloc(p->nworkers, sizeof(**pl->opened));
            for (uint32_t w = 0; w < p->nworkers; w++) {
                int e;
                pl->opened[i][w] = lb_listener_open(&p->workers[w], &tmp, (int)i, &e);
                if (pl->opened[i][w] == NULL) {
                    snprintf(err, errlen, "%s: lb.listeners[%u] (%s): cannot listen: %s",
                             nc->file, i, l->bind, bl_strerror(e));
                    return e;
                }
            }
        }
    }
    return 0;
}

/* Applies a prepared plan to p->lspecs (control side; workers get their part from
 * listeners_handoff after the snapshot is published). */
static void
listeners_commit(struct lb_proc *p, const struct bl_conf *nc, struct lplan *pl)
{
    uint32_t old_n = p->nlspecs;
    uint8_t *keep = bl_xcalloc(old_n + 1, 1);

    for (uint32_t i = 0; i < pl->nnew; i++) {
        const struct bl_conf_listener *l = &nc->lb.listeners[i];
        struct lb_lspec *s;
        if (pl->match[i] >= 0) {
            s = &p->lspecs[pl->match[i]];
            keep[pl->match[i]] = 1;
        } else {
            p->lspecs = bl_xrealloc(p->lspecs, (p->nlspecs + 1) * sizeof(*p->lspecs));
            s = &p->lspecs[p->nlspecs];
            memset(s, 0, sizeof(*s));
            s->id = p->nlspecs++;
            s->bind = bl_xstrdup(l->bind);
            s->mode = l->mode;
            s->active = 1;
            s->wl = pl->opened[i];
            pl->opened[i] = NULL;
            for (uint32_t w = 0; w < p->nworkers; w++) {
                s->wl[w]->spec = s->id;
            }
        }
        s->balance = l->balance;
        SSL_CTX_free(s->tls);
        s->tls = pl->tls[i];
        pl->tls[i] = NULL;
    }
    for (uint32_t k = 0; k < old_n; k++) {
        if (p->lspecs[k].active && !keep[k]) {
            p->lspecs[k].active = -1;   /* to close in listeners_handoff */
            SSL_CTX_free(p->lspecs[k].tls);
            p->lspecs[k].tls = NULL;
        }
    }
    free(keep);
}

/* After the snapshot with the new specs is published: workers start the new listeners
 * and close the removed ones. */
static void
listeners_handoff(struct lb_proc *p, uint32_t first_new, uint32_t *opened, uint32_t *closed)
{
    for (uint32_t k = 0; k < p->nlspecs; k++) {
        struct lb_lspec *s = &p->lspecs[k];
        if (k >= first_new || s->active == -1) {
            for (uint32_t w = 0; w < p->nworkers; w++) {
                if (s->wl[w] != NULL) {
                    lb_worker_listener_change(&p->workers[w], s->wl[w], s->active == -1);
                }
            }
            if (s->active == -1) {
                s->active = 0;
                (*closed)++;
                bl_logf(BL_LOG_INFO, ((struct bl_log_field[]){ BL_LOG_STR("bind", s->bind) }),
                        1, "listener closed (established connections finish)");
            } else {
                (*opened)++;
                bl_logf(BL_LOG_INFO,
                        ((struct bl_log_field[]){
                            BL_LOG_STR("bind", s->bind),
                            BL_LOG_STR("mode", s->mode == BL_MODE_TCP ? "tcp"
                                               : s->tls != NULL      ? "https"
                                                                     : "http"),
                            BL_LOG_UINT("workers", p->nworkers) }),
                        3, "listening");
            }
        }
    }
}

void
lb_reload_result_clear(struct lb_reload_result *res)
{
    for (size_t i = 0; i < res->nadded; i++) {
        free(res->added[i]);
    }
    for (size_t i = 0; i < res->nremoved; i++) {
        free(res->removed[i]);
    }
    free(res->added);
    free(res->removed);
    res->added = res->removed = NULL;
    res->nadded = res->nremoved = 0;
}

static void
push_name(char ***list, size_t *n, const char *name)
{
    *list = bl_xrealloc(*list, (*n + 1) * sizeof(**list));
    (*list)[(*n)++] = bl_xstrdup(name);
}

/* Settings that take effect only at the next start: warn when they changed. */
static void
warn_restart(const struct bl_conf *o, const struct bl_conf *nc)
{
    const struct bl_conf_lb *a = &o->lb, *b = &nc->lb;
    if (a->workers != b->workers) {
        bl_log(BL_LOG_WARN, "reload: lb.workers changed: applies at the next restart");
    }
    if ((a->admin.bind == NULL) != (b->admin.bind == NULL) ||
        (a->admin.bind != NULL && strcmp(a->admin.bind, b->admin.bind) != 0)) {
        bl_log(BL_LOG_WARN, "reload: lb.admin.bind changed: applies at the next restart");
    }
    if (a->limits.max_header_bytes != b->limits.max_header_bytes ||
        a->limits.max_headers != b->limits.max_headers ||
        a->limits.max_body != b->limits.max_body ||
        a->limits.rate_per_ip != b->limits.rate_per_ip) {
        bl_log(BL_LOG_WARN, "reload: lb.limits max_header_bytes/max_headers/max_body/"
                            "rate_per_ip changed: apply at the next restart");
    }
}

int
lb_reload(struct lb_proc *p, struct lb_reload_result *res)
{
    struct bl_conf *nc, *old = atomic_load(&p->conf);
    struct lb_node **nodes;
    char *err = NULL;
    uint32_t n, nfile, kept = 0, first_new, lopened = 0, lclosed = 0;
    struct lplan pl;
    int rc;

    memset(res, 0, sizeof(*res));
    nc = bl_conf_load(p->conf_path, &err);
    if (nc == NULL) {
        snprintf(res->err, sizeof(res->err), "%s", err ? err : "cannot load the configuration");
        free(err);
        bl_log(BL_LOG_ERROR, "reload: %s; the running configuration stays", res->err);
        return BL_ECONF;
    }
    if (lb_conf_check(nc, res->err, sizeof(res->err)) < 0) {
        bl_log(BL_LOG_ERROR, "reload: %s; the running configuration stays", res->err);
        bl_conf_destroy(nc);
        return BL_ECONF;
    }
    memset(&pl, 0, sizeof(pl));
    rc = listeners_prepare(p, nc, &pl, res->err, sizeof(res->err));
    if (rc < 0) {
        bl_log(BL_LOG_ERROR, "reload: %s; the running configuration stays", res->err);
        lplan_free(p, nc, &pl, 1);
        bl_conf_destroy(nc);
        return rc;
    }
    /* the file's nodes, then the admin-added nodes it does not name (the file wins) */
    nfile = (uint32_t)nc->nnodes;
    nodes = bl_xcalloc(nfile + p->nnodes + 1, sizeof(*nodes));
    n = 0;
    for (uint32_t i = 0; i < nfile; i++) {
        const struct bl_conf_node_entry *e = &nc->nodes[i];
        struct lb_node *cur = lb_nodes_find(p, e->name);
        if (cur != NULL && strcmp(cur->addr, e->addr) == 0) {
            cur->weight = e->weight ? e->weight : 1;
            cur->from_admin = false;
            nodes[n++] = cur;
            kept++;
            continue;
        }
        nodes[n] = lb_nodes_new(p, e->name, e->addr, e->weight ? e->weight : 1);
        if (nodes[n] == NULL) {
            snprintf(res->err, sizeof(res->err), "%s: node %s: bad address %s", nc->file,
                     e->name, e->addr);
            bl_log(BL_LOG_ERROR, "reload: %s; the running configuration stays", res->err);
            free(nodes);
            lplan_free(p, nc, &pl, 1);
            bl_conf_destroy(nc);
            return BL_ECONF;
        }
        push_name(&res->added, &res->nadded, e->name);
        n++;
    }
    for (uint32_t k = 0; k < p->nnodes; k++) {
        struct lb_node *cur = p->nodes[k];
        int named = bl_conf_find_node(nc, cur->name) != NULL;
        if (!named && cur->from_admin) {
            nodes[n++] = cur;
            kept++;
        } else if (!named || strcmp(bl_conf_find_node(nc, cur->name)->addr, cur->addr) != 0) {
            push_name(&res->removed, &res->nremoved, cur->name);
        }
    }
    rc = lb_nodes_apply(p, nodes, n, &res->moved_share);
    if (rc < 0) {
        snprintf(res->err, sizeof(res->err), "out of memory building the Maglev table");
        bl_log(BL_LOG_ERROR, "reload: %s; the running configuration stays", res->err);
        lb_reload_result_clear(res);
        lplan_free(p, nc, &pl, 1);
        bl_conf_destroy(nc);
        return rc;
    }
    warn_restart(old, nc);
    first_new = p->nlspecs;
    listeners_commit(p, nc, &pl);
    lplan_free(p, nc, &pl, 0);
    /* the new settings: workers read p->conf (limits, balance, access log) at each use;
     * the old file stays allocated until exit, a worker may still be reading it */
    p->old_confs = bl_xrealloc(p->old_confs, (p->nold_confs + 1) * sizeof(*p->old_confs));
    p->old_confs[p->nold_confs++] = old;
    p->t_header = (double)nc->lb.limits.header_timeout_ms / 1000.0;
    p->t_body = (double)nc->lb.limits.body_timeout_ms / 1000.0;
    p->t_connect = (double)nc->lb.limits.connect_timeout_ms / 1000.0;
    p->t_response = (double)nc->lb.limits.response_timeout_ms / 1000.0;
    p->t_idle = (double)nc->lb.limits.idle_timeout_ms / 1000.0;
    p->t_queue = (double)nc->lb.limits.queue_timeout_ms / 1000.0;
    atomic_store(&p->conf, nc);
    bl_log_set_level(nc->log_level);
    lb_health_reload(p->health);
    if (lb_state_publish(p) < 0) {
        bl_log(BL_LOG_ERROR, "reload: cannot publish the routing state: out of memory");
    }
    listeners_handoff(p, first_new, &lopened, &lclosed);
    {
        char added[512] = "", removed[512] = "";
        size_t off = 0;
        for (size_t i = 0; i < res->nadded && off < sizeof(added); i++) {
            off += (size_t)snprintf(added + off, sizeof(added) - off, "%s%s", i ? "," : "",
                                    res->added[i]);
        }
        off = 0;
        for (size_t i = 0; i < res->nremoved && off < sizeof(removed); i++) {
            off += (size_t)snprintf(removed + off, sizeof(removed) - off, "%s%s",
                                    i ? "," : "", res->removed[i]);
        }
        bl_logf(BL_LOG_INFO,
                ((struct bl_log_field[]){ BL_LOG_UINT("nodes", n), BL_LOG_UINT("kept", kept),
                                          BL_LOG_STR("added", added),
                                          BL_LOG_STR("removed", removed),
                                          BL_LOG_DOUBLE("moved_share", res->moved_share),
                                          BL_LOG_UINT("listeners_opened", lopened),
                                          BL_LOG_UINT("listeners_closed", lclosed) }),
                7, "reloaded the node set and settings");
    }
    return 0;
}
