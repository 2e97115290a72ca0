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
 * atomics, safe from any number of threads, and never allocate. Children live as long as
 * the registry. Every update function accepts NULL (a failed registration) as a no-op.
 *
 * Representation (what each update costs):
 * - counter: an integer count plus a double. bl_metric_inc() and bl_metric_add() of an
 *   integral value in [0, 2^53) are one atomic fetch_add on the integer; other values go to
 *   the double by compare-and-swap on its bit pattern. Negative and NaN adds are ignored
 *   (a counter never decreases). Value = integer + double, printed exactly.
 * - gauge: one double, updated by atomic store (set) or CAS on its bit pattern (inc/add;
 *   one CAS when uncontended).
 * - histogram: one integer per bucket (not cumulative) and the sum as a double. An observe
 *   is a linear search over the bounds (<= BL_METRICS_MAX_BUCKETS, 16 for the default),
 *   one fetch_add on the bucket and one CAS on the sum. _count is the total of the buckets
 *   read at render time, so _count always equals the +Inf bucket.
 *
 * Rendering (bl_metrics_render) takes no lock: families and children are append-only lists
 * published with release stores. Families come out in registration order, children in
 * creation order. Values are printed as integers when integral and below 1e15, otherwise
 * as the shortest of %.15g/%.16g/%.17g that reads back as the same double; NaN, +Inf, -Inf
 * as Prometheus spells them. Label values and help texts with invalid UTF-8 have the bad
 * bytes replaced by U+FFFD (see bl_log_append_utf8).
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

#define BL_METRICS_MAX_BUCKETS 32      /* finite bounds of one histogram */

/*
 * Registers a family. <name> must match [a-zA-Z_:][a-zA-Z0-9_:]*; counters should end in
 * _total. <label_names> is NULL-terminated (NULL for none); each must match
 * [a-zA-Z_][a-zA-Z0-9_]*, not start with "__", not repeat, and not be "le" for a
 * histogram. <buckets> (histograms only) are the upper bounds, finite and strictly
 * increasing, at most BL_METRICS_MAX_BUCKETS, +Inf added implicitly (a trailing +Inf in
 * the list is accepted and ignored); NULL gives BL_METRICS_DEFAULT_BUCKETS. <help> may be
 * NULL (empty). Registering a name twice returns the existing family if the type and the
 * label names match and NULL otherwise; so does a name that would clash with the series of
 * a histogram (a histogram "x" and a gauge "x_count" cannot coexist). Strings are copied. Returns NULL on any invalid
 * argument or on OOM.
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

/*
 * Registers an unlabelled gauge whose value is fn(arg), called at render time (and by
 * bl_metric_value) from the rendering thread, without any registry lock held: <fn> must be
 * thread-safe with respect to whatever it reads, and may even use the registry. Updates on
 * the returned child are ignored. Returns the child, or NULL (invalid name, a name already
 * registered, NULL fn, OOM).
 */
struct bl_metric *bl_metrics_gauge_fn(struct bl_metrics *reg, const char *name,
                                      const char *help, double (*fn)(void *), void *arg);
/* Same for a counter computed at render time (e.g. CPU seconds read from /proc). */
struct bl_metric *bl_metrics_counter_fn(struct bl_metrics *reg, const char *name,
                                        const char *help, double (*fn)(void *), void *arg);

void bl_metric_inc(struct bl_metric *m);                /* counter or gauge, +1 */
void bl_metric_add(struct bl_metric *m, double v);      /* counter (v >= 0) or gauge */
void bl_metric_set(struct bl_metric *m, double v);      /* gauge */
void bl_metric_observe(struct bl_metric *m, double v);  /* histogram, v in seconds */
double bl_metric_value(const struct bl_metric *m);      /* counter/gauge value; histogram count */
double bl_metric_sum(const struct bl_metric *m);        /* histogram sum; 0 for others */
/* Histogram: observations <= bound <i> (cumulative, as rendered); i == number of bounds
 * gives the +Inf bucket. 0 when out of range or not a histogram. */
uint64_t bl_metric_bucket(const struct bl_metric *m, size_t i);

/*
 * Appends the whole registry in text format 0.0.4 to <out>. Returns 0 or -ENOMEM (then
 * <out> holds a partial rendering: discard it). Lock-free, may run concurrently with
 * updates, registrations and other renders.
 */
int bl_metrics_render(struct bl_metrics *reg, struct bl_buf *out);

/*
 * Formats <v> as the renderer does ("3", "0.25", "1e+300", "NaN", "+Inf", "-Inf") into
 * <out> (NUL-terminated). Returns the length.
 */
size_t bl_metrics_format_double(double v, char out[40]);

#define BL_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* 100 µs .. 10 s in a 1-2.5-5 series (16 bounds), for request and store latencies. */
extern const double BL_METRICS_DEFAULT_BUCKETS[];
extern const size_t BL_METRICS_DEFAULT_NBUCKETS;

#endif /* BL_METRICS_H */
