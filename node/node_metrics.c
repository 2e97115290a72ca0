#include "node_metrics.h"

#include <stdio.h>
#include <stdlib.h>

#include "bl/bl_metrics.h"

static const char *const route_names[NODE_ROUTE_COUNT] = {
    [NODE_ROUTE_POSTS] = "/posts",
    [NODE_ROUTE_POST] = "/posts/{id}",
    [NODE_ROUTE_ASSETS] = "/assets",
    [NODE_ROUTE_ASSET] = "/assets/{id}",
    [NODE_ROUTE_HEALTHZ] = "/healthz",
    [NODE_ROUTE_READYZ] = "/readyz",
    [NODE_ROUTE_METRICS] = "/metrics",
    [NODE_ROUTE_CACHE_FLUSH] = "/_cache/flush",
    [NODE_ROUTE_OTHER] = "other",
};

static const char *const method_names[NODE_M_COUNT] = {
    "GET", "HEAD", "POST", "PUT", "DELETE", "other",
};

static const char *const op_names[NODE_OP_COUNT] = {
    "get", "list", "insert", "replace", "remove", "asset_put", "asset_get", "health",
};

static const char *const reject_names[NODE_REJECT_COUNT] = {
    "too_large", "unsupported_media_type", "invalid_json", "invalid_field", "truncated",
    "unauthorized",
};

/* Index NODE_METRIC_NSTATUS - 1 is "other". */
static const unsigned statuses[NODE_METRIC_NSTATUS - 1] = {
    200, 201, 204, 304, 400, 401, 404, 405, 412, 413, 415, 500, 503, 507, 408, 411, 431,
};

const char *
node_route_name(enum node_route r)
{
    return route_names[r];
}

static unsigned
status_index(unsigned status)
{
    for (unsigned i = 0; i < NODE_METRIC_NSTATUS - 1; i++) {
        if (statuses[i] == status) {
            return i;
        }
    }
    return NODE_METRIC_NSTATUS - 1;
}

struct node_metrics *
node_metrics_create(const char *name)
{
    static const char *const req_labels[] = {"route", "method", "status", NULL};
    static const char *const route_label[] = {"route", NULL};
    static const char *const op_label[] = {"op", NULL};
    static const char *const reason_label[] = {"reason", NULL};
    static const char *const info_labels[] = {"name", "version", NULL};
    struct node_metrics *m = calloc(1, sizeof(*m));
    struct bl_metric_family *dur, *op, *operr, *rej, *info;
    struct bl_metric *up, *inf;

    if (m == NULL) {
        return NULL;
    }
    m->reg = bl_metrics_create();
    if (m->reg == NULL) {
        goto fail;
    }
    m->requests = bl_metrics_family(m->reg, BL_METRIC_COUNTER, "blog_node_requests_total",
                                    "HTTP requests answered, by route, method and status",
                                    req_labels, NULL, 0);
    dur = bl_metrics_family(m->reg, BL_METRIC_HISTOGRAM, "blog_node_request_duration_seconds",
                            "Time from the request's headers to its response being queued",
                            route_label, NULL, 0);
    op = bl_metrics_family(m->reg, BL_METRIC_HISTOGRAM, "blog_node_store_op_duration_seconds",
                           "Store operation latency by operation", op_label, NULL, 0);
    operr = bl_metrics_family(m->reg, BL_METRIC_COUNTER, "blog_node_store_errors_total",
                              "Store operations that failed (not found and conflicts excluded)",
                              op_label, NULL, 0);
    rej = bl_metrics_family(m->reg, BL_METRIC_COUNTER, "blog_node_bodies_rejected_total",
                            "Write requests rejected before reaching the store, by reason",
                            reason_label, NULL, 0);
    info = bl_metrics_family(m->reg, BL_METRIC_GAUGE, "blog_node_info",
                             "Constant 1, labelled with the node name and version",
                             info_labels, NULL, 0);
    if (m->requests == NULL || dur == NULL || op == NULL || operr == NULL || rej == NULL ||
        info == NULL) {
        goto fail;
    }
    for (int r = 0; r < NODE_ROUTE_COUNT; r++) {
        const char *lv[] = {route_names[r]};

        m->duration[r] = bl_metric_child(dur, lv);
        if (m->duration[r] == NULL) {
            goto fail;
        }
    }
    for (int i = 0; i < NODE_OP_COUNT; i++) {
        const char *lv[] = {op_names[i]};

        m->store_op[i] = bl_metric_child(op, lv);
        m->store_err[i] = bl_metric_child(operr, lv);
        if (m->store_op[i] == NULL || m->store_err[i] == NULL) {
            goto fail;
        }
    }
    for (int i = 0; i < NODE_REJECT_COUNT; i++) {
        const char *lv[] = {reject_names[i]};

        m->rejected[i] = bl_metric_child(rej, lv);
        if (m->rejected[i] == NULL) {
            goto fail;
        }
    }
    {
        const char *lv[] = {name, BLOG_VERSION};

        inf = bl_metric_child(info, lv);
    }
    up = bl_metrics_simple(m->reg, BL_METRIC_GAUGE, "blog_node_up",
                           "1 while the node is serving");
    m->inflight = bl_metrics_simple(m->reg, BL_METRIC_GAUGE, "blog_node_requests_in_flight",
                                    "Requests received and not yet completed");
    m->reloads = bl_metrics_simple(m->reg, BL_METRIC_COUNTER, "blog_node_config_reloads_total",
                                   "Successful SIGHUP reloads");
    if (inf == NULL || up == NULL || m->inflight == NULL || m->reloads == NULL) {
        goto fail;
    }
    bl_metric_set(inf, 1);
    bl_metric_set(up, 1);
    return m;

fail:
    node_metrics_destroy(m);
    return NULL;
}

void
node_metrics_destroy(struct node_metrics *m)
{
    if (m == NULL) {
        return;
    }
    bl_metrics_destroy(m->reg);
    free(m);
}

void
node_metrics_request(struct node_metrics *m, enum node_route route, enum node_method method,
                     unsigned status, uint64_t ns)
{
    unsigned si = status_index(status);
    struct bl_metric *c = atomic_load_explicit(&m->req[route][method][si], memory_order_acquire);

    if (c == NULL) {
        char st[16];
        const char *lv[3];

        if (si == NODE_METRIC_NSTATUS - 1) {
            snprintf(st, sizeof(st), "other");
        } else {
            snprintf(st, sizeof(st), "%u", statuses[si]);
        }
        lv[0] = route_names[route];
        lv[1] = method_names[method];
        lv[2] = st;
        /* bl_metric_child returns the same child to racing threads; storing it twice is fine. */
        c = bl_metric_child(m->requests, lv);
        if (c == NULL) {
            return;
        }
        atomic_store_explicit(&m->req[route][method][si], c, memory_order_release);
    }
    bl_metric_inc(c);
    bl_metric_observe(m->duration[route], (double)ns / 1e9);
}

void
node_metrics_store(struct node_metrics *m, enum node_store_op op, uint64_t ns, int rc)
{
    bl_metric_observe(m->store_op[op], (double)ns / 1e9);
    if (rc != 0) {
        bl_metric_inc(m->store_err[op]);
    }
}

void
node_metrics_reject(struct node_metrics *m, enum node_reject reason)
{
    bl_metric_inc(m->rejected[reason]);
}

int
node_metrics_render(struct node_metrics *m, struct bl_buf *out)
{
    return bl_metrics_render(m->reg, out);
}
