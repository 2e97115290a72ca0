#ifndef BL_METRICS_H
#define BL_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "bl/bl_buf.h"

/*
 * A registry of counters, gauges and histograms with labels, rendered in the Prometheus
 * text exposition format 0.0.4.
 *
 * Registration and child lookup take a mutex (slow path: do them at startup, or once per
 * distinct label set, and keep the pointer). Updates on a child are lock-free relaxed
 * atomics, safe from any number of threads. Children live as long as the registry.
 */

struct bl_metrics;              /* the registry */
struct bl_metric_family;        /* one metric name with its help, type and label names */
struct bl_metric;               /* one labelled series of a family */

enum bl_metric_type {
    BL_METRIC_COUNTER,
    BL_METRIC_GAUGE,
    BL_METRIC_HISTOGRAM,
};

struct bl_metrics *bl_metrics_create(void);
void bl_metrics_destroy(struct bl_metrics *reg);       /* NULL is a no-op */

/*
 * Registers a family. <name> must match [a-zA-Z_:][a-zA-Z0-9_:]*; counters should end in
 * _total. <label_names> is NULL-terminated (NULL for none). <buckets> (histograms only)
 * are the upper bounds, strictly increasing, +Inf added implicitly; NULL gives
 * BL_METRICS_DEFAULT_BUCKETS. Registering a name twice returns the existing family if the
 * type matches and NULL otherwise. Strings are copied.
 */
struct bl_metric_family *bl_metrics_family(struct bl_metrics *reg, enum bl_metric_type type,
                                           const char *name, const char *help,
                                           const char *const *label_names,
                                           const double *buckets, size_t nbuckets);

/* Gets or creates the child with these label values (same count as the family's label
 * names; NULL when it has none). Values are escaped on render. Returns NULL on OOM. */
struct bl_metric *bl_metric_child(struct bl_metric_family *fam, const char *const *label_values);

/* Shorthand: register an unlabelled family and return its only child. */
struct bl_metric *bl_metrics_simple(struct bl_metrics *reg, enum bl_metric_type type,
                                    const char *name, const char *help);

void bl_metric_inc(struct bl_metric *m);                /* counter or gauge, +1 */
void bl_metric_add(struct bl_metric *m, double v);      /* counter (v >= 0) or gauge */
void bl_metric_set(struct bl_metric *m, double v);      /* gauge */
void bl_metric_observe(struct bl_metric *m, double v);  /* histogram, v in seconds */
double bl_metric_value(const struct bl_metric *m);      /* counter/gauge value; histogram count */

/* Appends the whole registry in text format 0.0.4. Returns 0 or -ENOMEM. */
int bl_metrics_render(struct bl_metrics *reg, struct bl_buf *out);

#define BL_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* 100 µs .. 10 s, for request and store latencies. */
extern const double BL_METRICS_DEFAULT_BUCKETS[];
extern const size_t BL_METRICS_DEFAULT_NBUCKETS;

#endif /* BL_METRICS_H */
