#ifndef NODE_METRICS_H
#define NODE_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "bl/bl_buf.h"

/*
 * blog-node's Prometheus metrics. Every child a request touches is resolved once (at
 * startup, or the first time a route/method/status triple occurs) and kept in a fixed
 * table, so the request path does no label lookup and takes no lock.
 */

enum node_route {
    NODE_ROUTE_POSTS,                   /* /posts */
    NODE_ROUTE_POST,                    /* /posts/{id} */
    NODE_ROUTE_ASSETS,                  /* /assets */
    NODE_ROUTE_ASSET,                   /* /assets/{id} */
    NODE_ROUTE_HEALTHZ,
    NODE_ROUTE_READYZ,
    NODE_ROUTE_METRICS,
    NODE_ROUTE_CACHE_FLUSH,             /* POST /_cache/flush (admin, node-internal) */
    NODE_ROUTE_OTHER,                   /* anything else (404) */
    NODE_ROUTE_COUNT,
};

enum node_method {
    NODE_M_GET,
    NODE_M_HEAD,
    NODE_M_POST,
    NODE_M_PUT,
    NODE_M_DELETE,
    NODE_M_OTHER,
    NODE_M_COUNT,
};

enum node_store_op {
    NODE_OP_GET,
    NODE_OP_LIST,
    NODE_OP_INSERT,
    NODE_OP_REPLACE,
    NODE_OP_REMOVE,
    NODE_OP_ASSET_PUT,
    NODE_OP_ASSET_GET,
    NODE_OP_HEALTH,
    NODE_OP_COUNT,
};

enum node_reject {
    NODE_REJECT_TOO_LARGE,              /* body over the limit (413) */
    NODE_REJECT_MEDIA_TYPE,             /* wrong Content-Type (415) */
    NODE_REJECT_INVALID_JSON,           /* not JSON, not one object */
    NODE_REJECT_INVALID_FIELD,          /* unknown/forbidden/missing/wrong field */
    NODE_REJECT_TRUNCATED,              /* client went away mid-body */
    NODE_REJECT_UNAUTHORIZED,           /* no valid token (body never read) */
    NODE_REJECT_COUNT,
};

/* The status codes blog-node answers with; anything else counts as "other". */
#define NODE_METRIC_NSTATUS 18

struct bl_metrics;
struct bl_metric;
struct bl_metric_family;

struct node_metrics {
    struct bl_metrics *reg;
    struct bl_metric_family *requests;  /* blog_node_requests_total{route,method,status} */
    _Atomic(struct bl_metric *) req[NODE_ROUTE_COUNT][NODE_M_COUNT][NODE_METRIC_NSTATUS];
    struct bl_metric *duration[NODE_ROUTE_COUNT]; /* blog_node_request_duration_seconds{route} */
    struct bl_metric *store_op[NODE_OP_COUNT];    /* blog_node_store_op_duration_seconds{op} */
    struct bl_metric *store_err[NODE_OP_COUNT];   /* blog_node_store_errors_total{op} */
    struct bl_metric *rejected[NODE_REJECT_COUNT];/* blog_node_bodies_rejected_total{reason} */
    struct bl_metric *inflight;         /* blog_node_requests_in_flight */
    struct bl_metric *reloads;          /* blog_node_config_reloads_total */
};

/* Creates the registry and every fixed child; <name> labels blog_node_info. NULL on OOM. */
struct node_metrics *node_metrics_create(const char *name);
void node_metrics_destroy(struct node_metrics *m);      /* NULL is a no-op */

/* Counts one response and its duration <ns>. Lock-free after the first use of a triple. */
void node_metrics_request(struct node_metrics *m, enum node_route route,
                          enum node_method method, unsigned status, uint64_t ns);

/* Records one store operation of <ns>; <rc> != 0 also counts an error. */
void node_metrics_store(struct node_metrics *m, enum node_store_op op, uint64_t ns, int rc);

void node_metrics_reject(struct node_metrics *m, enum node_reject reason);

/* Appends the text exposition. 0 or -ENOMEM. */
int node_metrics_render(struct node_metrics *m, struct bl_buf *out);

const char *node_route_name(enum node_route r);

#endif /* NODE_METRICS_H */
