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
#include "bl/bl_maglev.h"
#include "lb_algo.h"
#include "lb_http.h"
#include "lb_metrics.h"
#include "lb_reload.h"
#include "lb_route.h"
#include "lb_state.h"

#include <jansson.h>

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
    size_t hlen;                        /* head length once parsed, else 0 */
    struct bl_buf out;
    size_t off;
};

struct lb_admin {
    struct lb_proc *p;
    ev_io io;
    int fd;
    struct lb_aconn *conns;
    struct lb_http_limits lim;
    ev_timer rate;                      /* 1 s: requests_per_s of each node */
    ev_tstamp rate_at;
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
respond_json(struct lb_aconn *ac, int status, json_t *body, const char *extra)
{
    char *txt = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    size_t n;

    json_decref(body);
    if (txt == NULL) {
        static const char oom[] =
            "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}\n";
        respond(ac, 500, "application/json; charset=utf-8", NULL, oom, sizeof(oom) - 1, 0);
        return;
    }
    n = strlen(txt);
    txt = bl_xrealloc(txt, n + 2);
    txt[n++] = '\n';
    txt[n] = '\0';
    respond(ac, status, "application/json; charset=utf-8", extra, txt, n,
            ac->req.method == LB_HTTP_HEAD);
    free(txt);
}

static void
respond_error(struct lb_aconn *ac, int status, const char *code, const char *msg,
              const char *extra)
{
    respond_json(ac, status,
                 json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg), extra);
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

static const char *
node_state(const struct lb_node *n)
{
    if (atomic_load_explicit(&n->draining, memory_order_relaxed)) {
        return "draining";
    }
    return n->up ? "up" : "down";
}

static json_t *
node_json(const struct lb_node *n)
{
    return json_pack("{s:s,s:s,s:s,s:I,s:I,s:f,s:I,s:s,s:I,s:I,s:I,s:b}", "name", n->name,
                     "addr", n->addr, "state", node_state(n), "weight", (json_int_t)n->weight,
                     "inflight",
                     (json_int_t)atomic_load_explicit(&n->inflight, memory_order_relaxed),
                     "requests_per_s", n->rps, "ejections",
                     (json_int_t)atomic_load_explicit(&n->ejections, memory_order_relaxed),
                     "source", n->from_admin ? "admin" : "config", "connections",
                     (json_int_t)atomic_load_explicit(&n->conns, memory_order_relaxed),
                     "queued", (json_int_t)atomic_load_explicit(&n->queued, memory_order_relaxed),
                     "requests",
                     (json_int_t)atomic_load_explicit(&n->requests, memory_order_relaxed),
                     "confirmed", n->confirmed);
}

static json_t *
names_json(char *const *names, size_t n)
{
    json_t *a = json_array();

    for (size_t i = 0; a != NULL && i < n; i++) {
        json_array_append_new(a, json_string(names[i]));
    }
    return a;
}

/* The request body parsed as a JSON object, or NULL after answering 400. */
static json_t *
body_object(struct lb_aconn *ac)
{
    size_t blen = ac->req.h.body == LB_HTTP_BODY_LENGTH ? (size_t)ac->req.h.content_length : 0;
    json_error_t jerr;
    json_t *j;
    char msg[256];

    if (blen == 0) {
        respond_error(ac, 400, "bad_request", "a JSON object body is required", NULL);
        return NULL;
    }
    j = json_loadb(ac->buf + ac->hlen, blen, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL || !json_is_object(j)) {
        snprintf(msg, sizeof(msg), "invalid JSON body: %s",
                 j == NULL ? jerr.text : "not an object");
        json_decref(j);
        respond_error(ac, 400, "invalid_json", msg, NULL);
        return NULL;
    }
    return j;
}

/* "weight" of <j>: 0..BL_MAGLEV_MAX_WEIGHT (<dflt> when absent). -1 after answering 400. */
static int64_t
body_weight(struct lb_aconn *ac, json_t *j, int64_t dflt)
{
    json_t *w = json_object_get(j, "weight");

    if (w == NULL) {
        if (dflt >= 0) {
            return dflt;
        }
        respond_error(ac, 400, "bad_request", "\"weight\" is required", NULL);
        return -1;
    }
    if (!json_is_integer(w) || json_integer_value(w) < 0 ||
        json_integer_value(w) > (json_int_t)BL_MAGLEV_MAX_WEIGHT) {
        respond_error(ac, 400, "bad_request", "\"weight\" must be an integer 0..16777215", NULL);
        return -1;
    }
    return (int64_t)json_integer_value(w);
}

static int
valid_name(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 64) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-')) {
            return 0;
        }
    }
    return 1;
}

static void
nodes_list(struct lb_aconn *ac)
{
    struct lb_proc *p = ac->a->p;
    json_t *arr = json_array();

    for (uint32_t i = 0; arr != NULL && i < p->nnodes; i++) {
        json_array_append_new(arr, node_json(p->nodes[i]));
    }
    respond_json(ac, 200, json_pack("{s:o}", "nodes", arr), NULL);
}

static void
nodes_add(struct lb_aconn *ac)
{
    struct lb_proc *p = ac->a->p;
    json_t *j = body_object(ac);
    const char *name, *addr;
    struct lb_node *n, **nodes;
    int64_t weight;

    if (j == NULL) {
        return;
    }
    name = json_string_value(json_object_get(j, "name"));
    addr = json_string_value(json_object_get(j, "addr"));
    if (name == NULL || !valid_name(name)) {
        respond_error(ac, 400, "bad_request", "\"name\" must match [A-Za-z0-9_.-]{1,64}", NULL);
        goto out;
    }
    if (addr == NULL) {
        respond_error(ac, 400, "bad_request", "\"addr\" (\"HOST:PORT\") is required", NULL);
        goto out;
    }
    weight = body_weight(ac, j, 1);
    if (weight < 0) {
        goto out;
    }
    if (lb_nodes_find(p, name) != NULL) {
        respond_error(ac, 409, "node_exists", "a node with this name exists", NULL);
        goto out;
    }
    n = lb_nodes_new(p, name, addr, (uint32_t)weight);
    if (n == NULL) {
        respond_error(ac, 400, "bad_request", "\"addr\" is not a valid HOST:PORT", NULL);
        goto out;
    }
    /* down until health.rise active checks pass (the first one runs at once) */
    n->up = false;
    n->confirmed = true;
    n->from_admin = true;
    nodes = bl_xcalloc(p->nnodes + 1, sizeof(*nodes));
    memcpy(nodes, p->nodes, p->nnodes * sizeof(*nodes));
    nodes[p->nnodes] = n;
    if (lb_nodes_apply(p, nodes, p->nnodes + 1, NULL) < 0) {
        respond_error(ac, 500, "internal", "out of memory", NULL);
        goto out;
    }
    bl_logf(BL_LOG_INFO,
            ((struct bl_log_field[]){ BL_LOG_STR("node", n->name), BL_LOG_STR("addr", n->addr),
                                      BL_LOG_UINT("weight", n->weight) }),
            3, "admin: node added");
    respond_json(ac, 201, node_json(n), NULL);
out:
    json_decref(j);
}

static void
nodes_remove(struct lb_aconn *ac, struct lb_node *n)
{
    struct lb_proc *p = ac->a->p;
    struct lb_node **nodes = bl_xcalloc(p->nnodes ? p->nnodes : 1, sizeof(*nodes));
    uint32_t k = 0;

    for (uint32_t i = 0; i < p->nnodes; i++) {
        if (p->nodes[i] != n) {
            nodes[k++] = p->nodes[i];
        }
    }
    if (lb_nodes_apply(p, nodes, k, NULL) < 0) {
        respond_error(ac, 500, "internal", "out of memory", NULL);
        return;
    }
    bl_logf(BL_LOG_INFO, ((struct bl_log_field[]){ BL_LOG_STR("node", n->name) }), 1,
            "admin: node removed");
    respond(ac, 204, "application/json; charset=utf-8", NULL, "", 0, 1);
}

static void
nodes_weight(struct lb_aconn *ac, struct lb_node *n)
{
    struct lb_proc *p = ac->a->p;
    json_t *j = body_object(ac);
    struct lb_node **nodes;
    int64_t weight;

    if (j == NULL) {
        return;
    }
    weight = body_weight(ac, j, -1);
    json_decref(j);
    if (weight < 0) {
        return;
    }
    n->weight = (uint32_t)weight;
    nodes = bl_xcalloc(p->nnodes ? p->nnodes : 1, sizeof(*nodes));
    memcpy(nodes, p->nodes, p->nnodes * sizeof(*nodes));
    if (lb_nodes_apply(p, nodes, p->nnodes, NULL) < 0) {
        respond_error(ac, 500, "internal", "out of memory", NULL);
        return;
    }
    respond_json(ac, 200, node_json(n), NULL);
}

static void
nodes_drain(struct lb_aconn *ac, struct lb_node *n, int drain)
{
    atomic_store(&n->draining, drain);
    if (lb_state_publish(ac->a->p) < 0) {
        respond_error(ac, 500, "internal", "out of memory", NULL);
        return;
    }
    bl_logf(BL_LOG_INFO, ((struct bl_log_field[]){ BL_LOG_STR("node", n->name) }), 1,
            drain ? "admin: node draining" : "admin: node undrained");
    respond_json(ac, 200, node_json(n), NULL);
}

static void
ring_show(struct lb_aconn *ac)
{
    struct lb_proc *p = ac->a->p;
    char digest[65];
    json_t *names = json_array();

    bl_maglev_digest(p->ring->maglev, digest);
    for (uint32_t i = 0; names != NULL && i < p->nnodes; i++) {
        json_array_append_new(names, json_string(p->nodes[i]->name));
    }
    respond_json(ac, 200,
                 json_pack("{s:s,s:I,s:o}", "digest", digest, "size",
                           (json_int_t)bl_maglev_size(p->ring->maglev), "nodes", names),
                 NULL);
}

static void
ring_route(struct lb_aconn *ac)
{
    struct lb_proc *p = ac->a->p;
    const struct lb_state *st = atomic_load(&p->state);
    const char *q = ac->buf + ac->req.query_off;
    size_t qlen = ac->req.query_len;
    char target[LB_ROUTE_MAX_ID * 3 + 16];
    const char *id = NULL;
    size_t idlen = 0;
    struct lb_route_match rm;
    struct lb_pick pk;
    int prefs[64], owner, chosen, first = -1;
    size_t np;
    uint64_t rng = 0x9E3779B97F4A7C15ull;
    uint32_t rr = 0;
    json_t *pl;

    for (size_t i = 0; ac->req.query_off != 0 && i < qlen;) {
        size_t e = i;
        while (e < qlen && q[e] != '&') {
            e++;
        }
        if (e - i >= 3 && memcmp(q + i, "id=", 3) == 0) {
            id = q + i + 3;
            idlen = e - i - 3;
        }
        i = e + 1;
    }
    if (id == NULL || idlen == 0 || idlen > LB_ROUTE_MAX_ID * 3) {
        respond_error(ac, 400, "bad_request", "query parameter id is required", NULL);
        return;
    }
    /* hashed exactly as the proxy hashes /posts/{id} */
    memcpy(target, "/posts/", 7);
    memcpy(target + 7, id, idlen);
    if (lb_route_match(target, idlen + 7, &rm) != LB_ROUTE_POST_ID || !rm.by_id) {
        respond_error(ac, 400, "bad_request", "id is not a valid id segment", NULL);
        return;
    }
    owner = bl_maglev_lookup(st->ring->maglev, rm.hash);
    np = bl_maglev_fallbacks(st->ring->maglev, rm.hash, prefs,
                             BL_MIN((size_t)st->nnodes, BL_ARRAY_SIZE(prefs)));
    pl = json_array();
    for (size_t i = 0; pl != NULL && i < np; i++) {
        json_array_append_new(pl, json_string(st->nodes[prefs[i]]->name));
        if (first < 0 && st->up[prefs[i]]) {
            first = prefs[i];
        }
    }
    memset(&pk, 0, sizeof(pk));
    pk.hash = rm.hash;
    pk.total_inflight = atomic_load_explicit(&p->inflight_total, memory_order_relaxed);
    pk.rng = &rng;
    pk.rr = &rr;
    chosen = st->by_id->pick(st, &pk);
    respond_json(ac, 200,
                 json_pack("{s:s#,s:o,s:o,s:o,s:b}", "id", id, (int)idlen, "owner",
                           owner >= 0 ? json_string(st->nodes[owner]->name) : json_null(),
                           "preferences", pl, "chosen",
                           chosen >= 0 ? json_string(st->nodes[chosen]->name) : json_null(),
                           "spill", chosen >= 0 && first >= 0 && chosen != first),
                 NULL);
}

static void
do_reload(struct lb_aconn *ac)
{
    struct lb_reload_result res;

    if (lb_reload(ac->a->p, &res) < 0) {
        respond_error(ac, 400, "invalid_config", res.err, NULL);
        return;
    }
    respond_json(ac, 200,
                 json_pack("{s:b,s:o,s:o,s:f}", "reloaded", 1, "added",
                           names_json(res.added, res.nadded), "removed",
                           names_json(res.removed, res.nremoved), "moved_share",
                           res.moved_share),
                 NULL);
    lb_reload_result_clear(&res);
}

static int
method_is(struct lb_aconn *ac, int m, const char *allow)
{
    char extra[64];

    if (ac->req.method == m || (m == LB_HTTP_GET && ac->req.method == LB_HTTP_HEAD)) {
        return 1;
    }
    snprintf(extra, sizeof(extra), "Allow: %s\r\n", allow);
    respond_error(ac, 405, "method_not_allowed", "method not allowed on this resource", extra);
    return 0;
}

/* /nodes/{name}[/suffix]: the node, or NULL after answering 404. */
static struct lb_node *
path_node(struct lb_aconn *ac, const char *rest, size_t len)
{
    char name[80];

    if (len == 0 || len >= sizeof(name)) {
        respond_error(ac, 404, "node_not_found", "no node with this name", NULL);
        return NULL;
    }
    memcpy(name, rest, len);
    name[len] = '\0';
    if (lb_nodes_find(ac->a->p, name) == NULL) {
        respond_error(ac, 404, "node_not_found", "no node with this name", NULL);
        return NULL;
    }
    return lb_nodes_find(ac->a->p, name);
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
    if (!authorized(ac, plen == 8 && memcmp(path, "/metrics", 8) == 0)) {
        respond_error(ac, 401, "unauthorized", "a valid admin bearer token is required",
                      "WWW-Authenticate: Bearer\r\n");
        return;
    }
    if (plen == 8 && memcmp(path, "/metrics", 8) == 0) {
        struct bl_buf body;
        if (!is_get) {
            respond_error(ac, 405, "method_not_allowed", "use GET", "Allow: GET, HEAD\r\n");
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
    if (plen == 6 && memcmp(path, "/nodes", 6) == 0) {
        if (m == LB_HTTP_POST) {
            nodes_add(ac);
        } else if (method_is(ac, LB_HTTP_GET, "GET, HEAD, POST")) {
            nodes_list(ac);
        }
        return;
    }
    if (plen > 7 && memcmp(path, "/nodes/", 7) == 0) {
        const char *rest = path + 7, *slash = memchr(rest, '/', plen - 7);
        size_t nlen = slash != NULL ? (size_t)(slash - rest) : plen - 7;
        const char *sub = slash != NULL ? slash : "";
        size_t slen = slash != NULL ? plen - 7 - nlen : 0;
        struct lb_node *n;
        if (slen == 0) {
            if ((n = path_node(ac, rest, nlen)) != NULL && method_is(ac, LB_HTTP_DELETE, "DELETE")) {
                nodes_remove(ac, n);
            }
        } else if (slen == 6 && memcmp(sub, "/drain", 6) == 0) {
            if ((n = path_node(ac, rest, nlen)) != NULL && method_is(ac, LB_HTTP_POST, "POST")) {
                nodes_drain(ac, n, 1);
            }
        } else if (slen == 8 && memcmp(sub, "/undrain", 8) == 0) {
            if ((n = path_node(ac, rest, nlen)) != NULL && method_is(ac, LB_HTTP_POST, "POST")) {
                nodes_drain(ac, n, 0);
            }
        } else if (slen == 7 && memcmp(sub, "/weight", 7) == 0) {
            if ((n = path_node(ac, rest, nlen)) != NULL && method_is(ac, LB_HTTP_PUT, "PUT")) {
                nodes_weight(ac, n);
            }
        } else {
            respond_error(ac, 404, "not_found", "no such admin resource", NULL);
        }
        return;
    }
    if (plen == 5 && memcmp(path, "/ring", 5) == 0) {
        if (method_is(ac, LB_HTTP_GET, "GET, HEAD")) {
            ring_show(ac);
        }
        return;
    }
    if (plen == 11 && memcmp(path, "/ring/route", 11) == 0) {
        if (method_is(ac, LB_HTTP_GET, "GET, HEAD")) {
            ring_route(ac);
        }
        return;
    }
    if (plen == 7 && memcmp(path, "/reload", 7) == 0) {
        if (method_is(ac, LB_HTTP_POST, "POST")) {
            do_reload(ac);
        }
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
    if (ac->hlen == 0) {
        r = lb_http_parse_request(ac->buf, ac->len, &ac->a->lim, &ac->req);
        if (r == 0) {
            if (ac->len == sizeof(ac->buf)) {
                respond_error(ac, 431, "header_fields_too_large", "request head too large",
                              NULL);
            }
            return;
        }
        if (r < 0) {
            respond_error(ac, lb_http_error_status((int)r), "bad_request",
                          lb_http_strerror((int)r), NULL);
            return;
        }
        ac->hlen = (size_t)r;
        if (ac->req.h.body == LB_HTTP_BODY_CHUNKED) {
            respond_error(ac, 411, "length_required", "send the body with Content-Length",
                          NULL);
            return;
        }
        if (ac->req.h.body == LB_HTTP_BODY_LENGTH &&
            ac->req.h.content_length > sizeof(ac->buf) - ac->hlen) {
            respond_error(ac, 413, "payload_too_large", "admin request body too large", NULL);
            return;
        }
    }
    if (ac->req.h.body == LB_HTTP_BODY_LENGTH &&
        ac->len < ac->hlen + (size_t)ac->req.h.content_length) {
        return;     /* the rest of the body follows */
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

static void
rate_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct lb_admin *a = bl_container_of(t, struct lb_admin, rate);
    struct lb_proc *p = a->p;
    ev_tstamp now = ev_now(loop), dt = now - a->rate_at;

    (void)revents;
    a->rate_at = now;
    for (uint32_t i = 0; i < p->nnodes; i++) {
        struct lb_node *n = p->nodes[i];
        uint64_t r = atomic_load_explicit(&n->requests, memory_order_relaxed);
        n->rps = dt > 0 && r >= n->rps_last ? (double)(r - n->rps_last) / dt : 0.0;
        n->rps_last = r;
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
    a->rate_at = ev_now(p->loop);
    ev_timer_init(&a->rate, rate_cb, 1.0, 1.0);
    ev_timer_start(p->loop, &a->rate);
    if (!cf->has_token) {
        bl_log(BL_LOG_WARN, "admin listener %s: no admin.token_sha256 configured: the admin API "
                            "and /metrics are open to anyone who can connect", cf->bind);
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
    ev_timer_stop(a->p->loop, &a->rate);
    close(a->fd);
    free(a);
}
