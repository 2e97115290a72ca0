#ifndef LB_METRICS_H
#define LB_METRICS_H

#include <stdatomic.h>

#include "bl/bl_buf.h"
#include "lb_types.h"

/*
 * blog-lb metrics. Per-request counters are per worker (struct lb_wmetrics): the worker
 * is the only writer and uses relaxed loads and stores (no lock, no atomic RMW); the
 * control thread sums the workers when /metrics is rendered. Node gauges come from the
 * node atomics, health from the current snapshot.
 */

extern const double lb_metrics_buckets[LB_METRIC_NBUCKETS];

/* Counts one finished request of <route> answered with <status> after <secs>. */
static inline void
lb_metrics_record(struct lb_wmetrics *m, enum lb_route route, int status, double secs)
{
    int b = 0;
    _Atomic uint64_t *x;

    if (status < 100 || status > 599) {
        status = 599;
    }
    x = &m->req[route][status - 100];
    atomic_store_explicit(x, atomic_load_explicit(x, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    while (b < LB_METRIC_NBUCKETS && secs > lb_metrics_buckets[b]) {
        b++;
    }
    x = &m->dur[route][b];
    atomic_store_explicit(x, atomic_load_explicit(x, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    x = &m->dur_sum_ns[route];
    atomic_store_explicit(x, atomic_load_explicit(x, memory_order_relaxed) +
                                 (uint64_t)(secs > 0 ? secs * 1e9 : 0),
                          memory_order_relaxed);
}

/* Appends the Prometheus text of every blog_lb_* metric. Control thread. 0 or -ENOMEM. */
int lb_metrics_render(struct lb_proc *p, struct bl_buf *out);

#endif /* LB_METRICS_H */
