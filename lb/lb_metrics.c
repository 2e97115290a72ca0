#include "lb_metrics.h"

#include <errno.h>

#include "lb_route.h"

const double lb_metrics_buckets[LB_METRIC_NBUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
    0.025, 0.05, 0.1, 0.25, 1.0, 2.5, 10.0,
};

static uint64_t
ld(const _Atomic uint64_t *x)
{
    return atomic_load_explicit(x, memory_order_relaxed);
}

int
lb_metrics_render(struct lb_proc *p, struct bl_buf *out)
{
    struct lb_state *st;
    int rc = 0;

    rc |= bl_buf_append_str(out,
        "# HELP blog_lb_requests_total Requests answered, by route and status code.\n"
        "# TYPE blog_lb_requests_total counter\n");
    for (int r = 0; r < LB_ROUTE__COUNT; r++) {
        for (int s = 0; s < 500; s++) {
            uint64_t v = 0;
            for (uint32_t i = 0; i < p->nworkers; i++) {
                v += ld(&p->workers[i].m->req[r][s]);
            }
            if (v > 0) {
                rc |= bl_buf_printf(out, "blog_lb_requests_total{route=\"%s\",code=\"%d\"} %llu\n",
                                    lb_route_name((enum lb_route)r), s + 100,
                                    (unsigned long long)v);
            }
        }
    }
    rc |= bl_buf_append_str(out,
        "# HELP blog_lb_request_duration_seconds Time from the first request byte to the "
        "last response byte.\n"
        "# TYPE blog_lb_request_duration_seconds histogram\n");
    for (int r = 0; r < LB_ROUTE__COUNT; r++) {
        uint64_t cum = 0, sum_ns = 0;
        uint64_t b[LB_METRIC_NBUCKETS + 1] = { 0 };
        for (uint32_t i = 0; i < p->nworkers; i++) {
            for (int k = 0; k <= LB_METRIC_NBUCKETS; k++) {
                b[k] += ld(&p->workers[i].m->dur[r][k]);
            }
            sum_ns += ld(&p->workers[i].m->dur_sum_ns[r]);
        }
        for (int k = 0; k <= LB_METRIC_NBUCKETS; k++) {
            cum += b[k];
        }
        if (cum == 0) {
            continue;
        }
        cum = 0;
        for (int k = 0; k < LB_METRIC_NBUCKETS; k++) {
            cum += b[k];
            rc |= bl_buf_printf(out,
                                "blog_lb_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
                                lb_route_name((enum lb_route)r), lb_metrics_buckets[k],
                                (unsigned long long)cum);
        }
        cum += b[LB_METRIC_NBUCKETS];
        rc |= bl_buf_printf(out,
                            "blog_lb_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n"
                            "blog_lb_request_duration_seconds_sum{route=\"%s\"} %.9f\n"
                            "blog_lb_request_duration_seconds_count{route=\"%s\"} %llu\n",
                            lb_route_name((enum lb_route)r), (unsigned long long)cum,
                            lb_route_name((enum lb_route)r), (double)sum_ns / 1e9,
                            lb_route_name((enum lb_route)r), (unsigned long long)cum);
    }

    st = atomic_load(&p->state);
    rc |= bl_buf_append_str(out, "# HELP blog_lb_node_up 1 when the node is healthy.\n"
                                 "# TYPE blog_lb_node_up gauge\n");
    for (uint32_t i = 0; i < p->nnodes; i++) {
        rc |= bl_buf_printf(out, "blog_lb_node_up{node=\"%s\"} %d\n", p->nodes[i]->name,
                            p->nodes[i]->up ? 1 : 0);
    }
#define NODE_METRIC(mname, mtype, mhelp, field)                                              \
    rc |= bl_buf_append_str(out, "# HELP " mname " " mhelp "\n# TYPE " mname " " mtype "\n"); \
    for (uint32_t i = 0; i < p->nnodes; i++) {                                               \
        rc |= bl_buf_printf(out, mname "{node=\"%s\"} %lld\n", p->nodes[i]->name,            \
                            (long long)atomic_load_explicit(&p->nodes[i]->field,             \
                                                            memory_order_relaxed));          \
    }
    NODE_METRIC("blog_lb_node_inflight", "gauge", "Requests assigned to the node (queued or running).",
                inflight)
    NODE_METRIC("blog_lb_queue_depth", "gauge", "Requests waiting for a node connection.", queued)
    NODE_METRIC("blog_lb_node_connections", "gauge", "Open connections to the node.", conns)
    NODE_METRIC("blog_lb_node_ejections_total", "counter",
                "Transitions of the node to down (passive or active).", ejections)
    NODE_METRIC("blog_lb_node_retries_total", "counter",
                "Failed attempts on the node that were retried on another node.", retries)
    NODE_METRIC("blog_lb_node_failures_total", "counter",
                "Connect errors, resets, timeouts and bad responses of the node.", failures)
#undef NODE_METRIC
    {
        uint64_t retries = 0, denied = 0, rejected = 0;
        for (uint32_t i = 0; i < p->nworkers; i++) {
            retries += ld(&p->workers[i].m->retries);
            denied += ld(&p->workers[i].m->retry_denied);
            rejected += ld(&p->workers[i].m->rejected_conns);
        }
        rc |= bl_buf_printf(out,
            "# HELP blog_lb_retries_total Requests retried on another node.\n"
            "# TYPE blog_lb_retries_total counter\nblog_lb_retries_total %llu\n"
            "# HELP blog_lb_retries_denied_total Retries refused by the retry budget.\n"
            "# TYPE blog_lb_retries_denied_total counter\nblog_lb_retries_denied_total %llu\n"
            "# HELP blog_lb_rejected_connections_total Client connections refused over max_client_conns.\n"
            "# TYPE blog_lb_rejected_connections_total counter\nblog_lb_rejected_connections_total %llu\n"
            "# HELP blog_lb_client_connections Open client connections.\n"
            "# TYPE blog_lb_client_connections gauge\nblog_lb_client_connections %lld\n"
            "# HELP blog_lb_healthy_nodes Healthy nodes in the routing state.\n"
            "# TYPE blog_lb_healthy_nodes gauge\nblog_lb_healthy_nodes %u\n"
            "# HELP blog_lb_state_generation Routing state publications.\n"
            "# TYPE blog_lb_state_generation counter\nblog_lb_state_generation %llu\n",
            (unsigned long long)retries, (unsigned long long)denied,
            (unsigned long long)rejected,
            (long long)atomic_load_explicit(&p->nclients, memory_order_relaxed),
            st != NULL ? st->nup : 0, (unsigned long long)(st != NULL ? st->gen : 0));
    }
    return rc < 0 ? -ENOMEM : 0;
}
