#include "bl/bl_metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bl/bl_log.h"

/*
 * Layout: the registry holds an append-only list of families, each family an append-only
 * list of children. Writers (registration, child creation) hold reg->lock; the render walks
 * the lists through atomic next pointers published with release stores, so it needs no
 * lock. Nothing is freed before bl_metrics_destroy(), which is why children are stable.
 *
 * A child's update fields come first and the child is cache-line aligned, so two hot
 * children updated by different threads never share a line.
 */

#define CACHE_LINE 64
#define HTAB_MIN 16

struct bl_metric {
    _Atomic uint64_t ival;              /* counter: integral part of the value */
    _Atomic uint64_t dbits;             /* counter: the rest; gauge: value; histogram: sum
                                         * (all as the bit pattern of a double) */
    struct bl_metric_family *fam;
    enum bl_metric_type type;           /* copy of fam->type, for the update path */
    _Atomic(struct bl_metric *) next;   /* creation order, read without lock */
    struct bl_metric *hnext;            /* hash chain, under reg->lock */
    uint64_t hash;                      /* of the label values */
    char **values;                      /* label values as given (copies) */
    char *labels;                       /* rendered `a="x",b="y"`, "" when none */
    _Atomic uint64_t bucket[];          /* histogram: nbounds + 1, not cumulative */
};

struct bl_metric_family {
    struct bl_metrics *reg;
    _Atomic(struct bl_metric_family *) next;    /* registration order */
    enum bl_metric_type type;
    char *name;
    char *help;                         /* escaped for # HELP, "" when none */
    char **label_names;                 /* nlabels copies */
    size_t nlabels;
    double bounds[BL_METRICS_MAX_BUCKETS];
    char (*le)[40];                     /* bounds formatted for le="..." */
    size_t nbounds;
    double (*fn)(void *);               /* computed at render time, or NULL */
    void *fn_arg;
    _Atomic(struct bl_metric *) first;  /* children, creation order */
    struct bl_metric *last;             /* under reg->lock */
    struct bl_metric **htab;            /* children by label values, under reg->lock */
    size_t hcap;                        /* power of two */
    size_t nchildren;
};

struct bl_metrics {
    pthread_mutex_t lock;               /* registration and child creation */
    _Atomic(struct bl_metric_family *) first;
    struct bl_metric_family *last;      /* under lock */
};

const double BL_METRICS_DEFAULT_BUCKETS[] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};
const size_t BL_METRICS_DEFAULT_NBUCKETS =
    sizeof(BL_METRICS_DEFAULT_BUCKETS) / sizeof(BL_METRICS_DEFAULT_BUCKETS[0]);

/* ---- doubles as bit patterns ----------------------------------------------------- */

static inline uint64_t
d2u(double d)
{
    uint64_t u;

    memcpy(&u, &d, sizeof(u));
    return u;
}

static inline double
u2d(uint64_t u)
{
    double d;

    memcpy(&d, &u, sizeof(d));
    return d;
}

static inline void
atomic_add_double(_Atomic uint64_t *p, double v)
{
    uint64_t old = atomic_load_explicit(p, memory_order_relaxed);

    while (!atomic_compare_exchange_weak_explicit(p, &old, d2u(u2d(old) + v),
                                                  memory_order_relaxed,
                                                  memory_order_relaxed)) {
        /* old was reloaded by the failed exchange */
    }
}

size_t
bl_metrics_format_double(double v, char out[40])
{
    if (isnan(v)) {
        strcpy(out, "NaN");
    } else if (isinf(v)) {
        strcpy(out, v > 0 ? "+Inf" : "-Inf");
    } else if (v == 0) {
        strcpy(out, "0");               /* also for -0 */
    } else if (v > -1e15 && v < 1e15 && v == (double)(long long)v) {
        snprintf(out, 40, "%lld", (long long)v);
    } else {
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(out, 40, "%.*g", prec, v);
            if (strtod(out, NULL) == v) {
                break;
            }
        }
    }
    return strlen(out);
}

/* ---- validation and escaping ------------------------------------------------------ */

static bool
valid_name(const char *s, bool colon)
{
    if (s == NULL || *s == '\0') {
        return false;
    }
    for (size_t i = 0; s[i] != '\0'; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                  (colon && c == ':') || (i > 0 && c >= '0' && c <= '9');

        if (!ok) {
            return false;
        }
    }
    return true;
}

/* Appends <s> with invalid UTF-8 replaced and \\, \n (and \" when <quote>) escaped. */
static int
append_escaped(struct bl_buf *b, const char *s, bool quote)
{
    struct bl_buf tmp;
    size_t start = 0;
    int rc = -ENOMEM;

    bl_buf_init(&tmp);
    if (bl_log_append_utf8(&tmp, s, strlen(s)) < 0) {
        goto out;
    }
    for (size_t i = 0; i < tmp.len; i++) {
        const char *esc;

        switch (tmp.data[i]) {
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '"': esc = quote ? "\\\"" : NULL; break;
        default: esc = NULL; break;
        }
        if (esc == NULL) {
            continue;
        }
        if (bl_buf_append(b, tmp.data + start, i - start) < 0 || bl_buf_append_str(b, esc) < 0) {
            goto out;
        }
        start = i + 1;
    }
    if (bl_buf_append(b, tmp.data + start, tmp.len - start) < 0) {
        goto out;
    }
    rc = 0;
out:
    bl_buf_deinit(&tmp);
    return rc;
}

static char *
escaped_dup(const char *s, bool quote)
{
    struct bl_buf b;

    bl_buf_init(&b);
    if (append_escaped(&b, s, quote) < 0 || bl_buf_reserve(&b, 0) < 0) {
        bl_buf_deinit(&b);
        return NULL;
    }
    return bl_buf_steal(&b, NULL);
}

static void
free_strv(char **v, size_t n)
{
    if (v == NULL) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        free(v[i]);
    }
    free(v);
}

/* Copies the first <n> strings of <v>; NULL on OOM. */
static char **
dup_strv(const char *const *v, size_t n)
{
    char **out = calloc(n ? n : 1, sizeof(*out));

    if (out == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        out[i] = strdup(v[i]);
        if (out[i] == NULL) {
            free_strv(out, n);
            return NULL;
        }
    }
    return out;
}

/* ---- registry --------------------------------------------------------------------- */

struct bl_metrics *
bl_metrics_create(void)
{
    struct bl_metrics *reg = calloc(1, sizeof(*reg));

    if (reg == NULL) {
        return NULL;
    }
    if (pthread_mutex_init(&reg->lock, NULL) != 0) {
        free(reg);
        return NULL;
    }
    atomic_init(&reg->first, NULL);
    return reg;
}

static void
child_free(struct bl_metric *m)
{
    free_strv(m->values, m->fam->nlabels);
    free(m->labels);
    free(m);
}

static void
family_free(struct bl_metric_family *fam)
{
    struct bl_metric *m, *next;

    if (fam == NULL) {
        return;
    }
    for (m = atomic_load_explicit(&fam->first, memory_order_relaxed); m != NULL; m = next) {
        next = atomic_load_explicit(&m->next, memory_order_relaxed);
        child_free(m);
    }
    free(fam->htab);
    free(fam->le);
    free_strv(fam->label_names, fam->nlabels);
    free(fam->help);
    free(fam->name);
    free(fam);
}

void
bl_metrics_destroy(struct bl_metrics *reg)
{
    struct bl_metric_family *fam, *next;

    if (reg == NULL) {
        return;
    }
    for (fam = atomic_load_explicit(&reg->first, memory_order_relaxed); fam != NULL;
         fam = next) {
        next = atomic_load_explicit(&fam->next, memory_order_relaxed);
        family_free(fam);
    }
    pthread_mutex_destroy(&reg->lock);
    free(reg);
}

static size_t
count_strv(const char *const *v)
{
    size_t n = 0;

    while (v != NULL && v[n] != NULL) {
        n++;
    }
    return n;
}

static bool
valid_labels(enum bl_metric_type type, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!valid_name(names[i], false) || strncmp(names[i], "__", 2) == 0 ||
            (type == BL_METRIC_HISTOGRAM && strcmp(names[i], "le") == 0)) {
            return false;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(names[i], names[j]) == 0) {
                return false;
            }
        }
    }
    return true;
}

/* Copies valid bounds into <fam>; false when they are not finite and increasing. */
static bool
set_bounds(struct bl_metric_family *fam, const double *buckets, size_t n)
{
    if (buckets == NULL) {
        buckets = BL_METRICS_DEFAULT_BUCKETS;
        n = BL_METRICS_DEFAULT_NBUCKETS;
    }
    if (n > 0 && isinf(buckets[n - 1]) && buckets[n - 1] > 0) {
        n--;                            /* +Inf is implicit */
    }
    if (n > BL_METRICS_MAX_BUCKETS) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(buckets[i]) || (i > 0 && !(buckets[i] > buckets[i - 1]))) {
            return false;
        }
        fam->bounds[i] = buckets[i];
    }
    fam->nbounds = n;
    fam->le = calloc(n ? n : 1, sizeof(*fam->le));
    if (fam->le == NULL) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        bl_metrics_format_double(fam->bounds[i], fam->le[i]);
    }
    return true;
}

static bool
same_labels(const struct bl_metric_family *fam, const char *const *names, size_t n)
{
    if (fam->nlabels != n) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(fam->label_names[i], names[i]) != 0) {
            return false;
        }
    }
    return true;
}

static struct bl_metric_family *
find_family_locked(struct bl_metrics *reg, const char *name)
{
    struct bl_metric_family *fam;

    for (fam = atomic_load_explicit(&reg->first, memory_order_relaxed); fam != NULL;
         fam = atomic_load_explicit(&fam->next, memory_order_relaxed)) {
        if (strcmp(fam->name, name) == 0) {
            return fam;
        }
    }
    return NULL;
}

/* True when <a> is <b> followed by one of a histogram's series suffixes. */
static bool
is_series_of(const char *a, const char *b)
{
    size_t n = strlen(b);

    return strncmp(a, b, n) == 0 &&
           (strcmp(a + n, "_bucket") == 0 || strcmp(a + n, "_sum") == 0 ||
            strcmp(a + n, "_count") == 0);
}

/* True when a family named <name> of <type> would render series another family renders
 * too (a gauge "x_count" next to a histogram "x"). */
static bool
clashes_locked(struct bl_metrics *reg, enum bl_metric_type type, const char *name)
{
    struct bl_metric_family *fam;

    for (fam = atomic_load_explicit(&reg->first, memory_order_relaxed); fam != NULL;
         fam = atomic_load_explicit(&fam->next, memory_order_relaxed)) {
        if ((fam->type == BL_METRIC_HISTOGRAM && is_series_of(name, fam->name)) ||
            (type == BL_METRIC_HISTOGRAM && is_series_of(fam->name, name))) {
            return true;
        }
    }
    return false;
}

/*
 * Registers a family (see bl_metrics_family). With <fn> set, a name already registered is
 * an error (the caller expects its function to be used).
 */
static struct bl_metric_family *
family_register(struct bl_metrics *reg, enum bl_metric_type type, const char *name,
                const char *help, const char *const *label_names, const double *buckets,
                size_t nbuckets, double (*fn)(void *), void *fn_arg)
{
    struct bl_metric_family *fam = NULL, *old;
    size_t nlabels = count_strv(label_names);

    if (reg == NULL || !valid_name(name, true) ||
        (type != BL_METRIC_COUNTER && type != BL_METRIC_GAUGE &&
         type != BL_METRIC_HISTOGRAM) ||
        !valid_labels(type, label_names, nlabels)) {
        return NULL;
    }
    pthread_mutex_lock(&reg->lock);
    old = find_family_locked(reg, name);
    if (old != NULL) {
        if (fn != NULL || old->fn != NULL || old->type != type ||
            !same_labels(old, label_names, nlabels)) {
            old = NULL;
        }
        pthread_mutex_unlock(&reg->lock);
        return old;
    }
    if (clashes_locked(reg, type, name)) {
        pthread_mutex_unlock(&reg->lock);
        return NULL;
    }

    fam = calloc(1, sizeof(*fam));
    if (fam == NULL) {
        goto fail;
    }
    fam->reg = reg;
    fam->type = type;
    fam->fn = fn;
    fam->fn_arg = fn_arg;
    atomic_init(&fam->next, NULL);
    atomic_init(&fam->first, NULL);
    fam->name = strdup(name);
    fam->help = escaped_dup(help != NULL ? help : "", false);
    fam->nlabels = nlabels;
    fam->label_names = dup_strv(label_names, nlabels);
    fam->hcap = HTAB_MIN;
    fam->htab = calloc(fam->hcap, sizeof(*fam->htab));
    if (fam->name == NULL || fam->help == NULL || fam->label_names == NULL ||
        fam->htab == NULL) {
        goto fail;
    }
    if (type == BL_METRIC_HISTOGRAM && !set_bounds(fam, buckets, nbuckets)) {
        goto fail;
    }

    if (reg->last != NULL) {
        atomic_store_explicit(&reg->last->next, fam, memory_order_release);
    } else {
        atomic_store_explicit(&reg->first, fam, memory_order_release);
    }
    reg->last = fam;
    pthread_mutex_unlock(&reg->lock);
    return fam;

fail:
    pthread_mutex_unlock(&reg->lock);
    family_free(fam);
    return NULL;
}

struct bl_metric_family *
bl_metrics_family(struct bl_metrics *reg, enum bl_metric_type type, const char *name,
                  const char *help, const char *const *label_names, const double *buckets,
                  size_t nbuckets)
{
    return family_register(reg, type, name, help, label_names, buckets, nbuckets, NULL, NULL);
}

/* ---- children --------------------------------------------------------------------- */

static uint64_t
hash_values(const char *const *values, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;        /* FNV-1a; NUL separates the values */

    for (size_t i = 0; i < n; i++) {
        for (const unsigned char *p = (const unsigned char *)values[i]; ; p++) {
            h ^= *p;
            h *= 0x100000001b3ull;
            if (*p == '\0') {
                break;
            }
        }
    }
    return h;
}

static bool
same_values(const struct bl_metric *m, const char *const *values, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(m->values[i], values[i]) != 0) {
            return false;
        }
    }
    return true;
}

static int
htab_grow_locked(struct bl_metric_family *fam)
{
    size_t ncap = fam->hcap * 2;
    struct bl_metric **nt = calloc(ncap, sizeof(*nt));

    if (nt == NULL) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < fam->hcap; i++) {
        struct bl_metric *m = fam->htab[i], *next;

        for (; m != NULL; m = next) {
            next = m->hnext;
            m->hnext = nt[m->hash & (ncap - 1)];
            nt[m->hash & (ncap - 1)] = m;
        }
    }
    free(fam->htab);
    fam->htab = nt;
    fam->hcap = ncap;
    return 0;
}

/* Builds `a="x",b="y"` for <m>. */
static char *
render_labels(const struct bl_metric_family *fam, const char *const *values)
{
    struct bl_buf b;

    bl_buf_init(&b);
    if (bl_buf_reserve(&b, 0) < 0) {
        return NULL;
    }
    for (size_t i = 0; i < fam->nlabels; i++) {
        if (bl_buf_printf(&b, "%s%s=\"", i > 0 ? "," : "", fam->label_names[i]) < 0 ||
            append_escaped(&b, values[i], true) < 0 || bl_buf_append(&b, "\"", 1) < 0) {
            bl_buf_deinit(&b);
            return NULL;
        }
    }
    return bl_buf_steal(&b, NULL);
}

static struct bl_metric *
child_create_locked(struct bl_metric_family *fam, const char *const *values, uint64_t hash)
{
    size_t nb = fam->type == BL_METRIC_HISTOGRAM ? fam->nbounds + 1 : 0;
    size_t size = sizeof(struct bl_metric) + nb * sizeof(_Atomic uint64_t);
    struct bl_metric *m;

    size = (size + CACHE_LINE - 1) / CACHE_LINE * CACHE_LINE;
    m = aligned_alloc(CACHE_LINE, size);
    if (m == NULL) {
        return NULL;
    }
    memset(m, 0, size);
    atomic_init(&m->ival, 0);
    atomic_init(&m->dbits, d2u(0.0));
    for (size_t i = 0; i < nb; i++) {
        atomic_init(&m->bucket[i], 0);
    }
    atomic_init(&m->next, NULL);
    m->fam = fam;
    m->type = fam->type;
    m->hash = hash;
    m->values = dup_strv(values, fam->nlabels);
    m->labels = render_labels(fam, values);
    if (m->values == NULL || m->labels == NULL) {
        child_free(m);
        return NULL;
    }
    if (fam->nchildren + 1 > fam->hcap && htab_grow_locked(fam) < 0) {
        child_free(m);
        return NULL;
    }
    m->hnext = fam->htab[hash & (fam->hcap - 1)];
    fam->htab[hash & (fam->hcap - 1)] = m;
    fam->nchildren++;
    if (fam->last != NULL) {
        atomic_store_explicit(&fam->last->next, m, memory_order_release);
    } else {
        atomic_store_explicit(&fam->first, m, memory_order_release);
    }
    fam->last = m;
    return m;
}

struct bl_metric *
bl_metric_child(struct bl_metric_family *fam, const char *const *label_values)
{
    static const char *const none[1] = { NULL };
    struct bl_metric *m;
    uint64_t h;

    if (fam == NULL) {
        return NULL;
    }
    if (fam->nlabels == 0) {
        label_values = none;
    } else {
        if (label_values == NULL) {
            return NULL;
        }
        for (size_t i = 0; i < fam->nlabels; i++) {
            if (label_values[i] == NULL) {
                return NULL;
            }
        }
    }
    h = hash_values(label_values, fam->nlabels);
    pthread_mutex_lock(&fam->reg->lock);
    for (m = fam->htab[h & (fam->hcap - 1)]; m != NULL; m = m->hnext) {
        if (m->hash == h && same_values(m, label_values, fam->nlabels)) {
            break;
        }
    }
    if (m == NULL) {
        m = child_create_locked(fam, label_values, h);
    }
    pthread_mutex_unlock(&fam->reg->lock);
    return m;
}

struct bl_metric *
bl_metrics_simple(struct bl_metrics *reg, enum bl_metric_type type, const char *name,
                  const char *help)
{
    return bl_metric_child(bl_metrics_family(reg, type, name, help, NULL, NULL, 0), NULL);
}

static struct bl_metric *
fn_register(struct bl_metrics *reg, enum bl_metric_type type, const char *name,
            const char *help, double (*fn)(void *), void *arg)
{
    if (fn == NULL) {
        return NULL;
    }
    return bl_metric_child(family_register(reg, type, name, help, NULL, NULL, 0, fn, arg),
                           NULL);
}

struct bl_metric *
bl_metrics_gauge_fn(struct bl_metrics *reg, const char *name, const char *help,
                    double (*fn)(void *), void *arg)
{
    return fn_register(reg, BL_METRIC_GAUGE, name, help, fn, arg);
}

struct bl_metric *
bl_metrics_counter_fn(struct bl_metrics *reg, const char *name, const char *help,
                      double (*fn)(void *), void *arg)
{
    return fn_register(reg, BL_METRIC_COUNTER, name, help, fn, arg);
}

/* ---- updates (hot path: no lock, no allocation) ------------------------------------ */

void
bl_metric_inc(struct bl_metric *m)
{
    if (m == NULL) {
        return;
    }
    if (m->type == BL_METRIC_COUNTER) {
        atomic_fetch_add_explicit(&m->ival, 1, memory_order_relaxed);
    } else if (m->type == BL_METRIC_GAUGE) {
        atomic_add_double(&m->dbits, 1.0);
    }
}

void
bl_metric_add(struct bl_metric *m, double v)
{
    if (m == NULL) {
        return;
    }
    if (m->type == BL_METRIC_COUNTER) {
        if (!(v >= 0) || isinf(v)) {
            return;                     /* negative, NaN, +Inf: a counter never does that */
        }
        if (v < 9007199254740992.0 && v == (double)(uint64_t)v) {
            atomic_fetch_add_explicit(&m->ival, (uint64_t)v, memory_order_relaxed);
        } else {
            atomic_add_double(&m->dbits, v);
        }
    } else if (m->type == BL_METRIC_GAUGE) {
        atomic_add_double(&m->dbits, v);
    }
}

void
bl_metric_set(struct bl_metric *m, double v)
{
    if (m == NULL || m->type != BL_METRIC_GAUGE) {
        return;
    }
    atomic_store_explicit(&m->dbits, d2u(v), memory_order_relaxed);
}

void
bl_metric_observe(struct bl_metric *m, double v)
{
    const struct bl_metric_family *fam;
    size_t i = 0;

    if (m == NULL || m->type != BL_METRIC_HISTOGRAM) {
        return;
    }
    fam = m->fam;
    while (i < fam->nbounds && !(v <= fam->bounds[i])) {
        i++;                            /* NaN falls through to +Inf, as in client_golang */
    }
    atomic_fetch_add_explicit(&m->bucket[i], 1, memory_order_relaxed);
    atomic_add_double(&m->dbits, v);
}

static uint64_t
hist_count(const struct bl_metric *m)
{
    uint64_t n = 0;

    for (size_t i = 0; i <= m->fam->nbounds; i++) {
        n += atomic_load_explicit(&m->bucket[i], memory_order_relaxed);
    }
    return n;
}

double
bl_metric_value(const struct bl_metric *m)
{
    if (m == NULL) {
        return 0;
    }
    if (m->fam->fn != NULL) {
        return m->fam->fn(m->fam->fn_arg);
    }
    switch (m->type) {
    case BL_METRIC_COUNTER:
        return (double)atomic_load_explicit(&m->ival, memory_order_relaxed) +
               u2d(atomic_load_explicit(&m->dbits, memory_order_relaxed));
    case BL_METRIC_GAUGE:
        return u2d(atomic_load_explicit(&m->dbits, memory_order_relaxed));
    case BL_METRIC_HISTOGRAM:
        return (double)hist_count(m);
    }
    return 0;
}

double
bl_metric_sum(const struct bl_metric *m)
{
    if (m == NULL || m->type != BL_METRIC_HISTOGRAM) {
        return 0;
    }
    return u2d(atomic_load_explicit(&m->dbits, memory_order_relaxed));
}

uint64_t
bl_metric_bucket(const struct bl_metric *m, size_t i)
{
    uint64_t n = 0;

    if (m == NULL || m->type != BL_METRIC_HISTOGRAM || i > m->fam->nbounds) {
        return 0;
    }
    for (size_t j = 0; j <= i; j++) {
        n += atomic_load_explicit(&m->bucket[j], memory_order_relaxed);
    }
    return n;
}

/* ---- rendering -------------------------------------------------------------------- */

static const char *
type_name(enum bl_metric_type t)
{
    switch (t) {
    case BL_METRIC_COUNTER: return "counter";
    case BL_METRIC_GAUGE: return "gauge";
    case BL_METRIC_HISTOGRAM: return "histogram";
    }
    return "untyped";
}

/* `name{labels} ` or `name ` (with an optional suffix and extra label). */
static int
put_series(struct bl_buf *out, const char *name, const char *suffix, const char *labels,
           const char *le)
{
    if (le != NULL) {
        return bl_buf_printf(out, "%s%s{%s%sle=\"%s\"} ", name, suffix, labels,
                             *labels != '\0' ? "," : "", le);
    }
    if (*labels != '\0') {
        return bl_buf_printf(out, "%s%s{%s} ", name, suffix, labels);
    }
    return bl_buf_printf(out, "%s%s ", name, suffix);
}

static int
put_double(struct bl_buf *out, double v)
{
    char num[40];
    size_t n = bl_metrics_format_double(v, num);

    num[n++] = '\n';
    return bl_buf_append(out, num, n);
}

static int
render_child(struct bl_buf *out, const struct bl_metric_family *fam,
             const struct bl_metric *m)
{
    if (fam->fn != NULL) {
        return put_series(out, fam->name, "", m->labels, NULL) < 0 ||
               put_double(out, fam->fn(fam->fn_arg)) < 0 ? -ENOMEM : 0;
    }
    switch (fam->type) {
    case BL_METRIC_COUNTER: {
        uint64_t iv = atomic_load_explicit(&m->ival, memory_order_relaxed);
        double dv = u2d(atomic_load_explicit(&m->dbits, memory_order_relaxed));

        if (put_series(out, fam->name, "", m->labels, NULL) < 0) {
            return -ENOMEM;
        }
        if (dv == 0) {
            return bl_buf_printf(out, "%" PRIu64 "\n", iv);     /* exact above 2^53 too */
        }
        return put_double(out, (double)iv + dv);
    }
    case BL_METRIC_GAUGE:
        return put_series(out, fam->name, "", m->labels, NULL) < 0 ||
               put_double(out, u2d(atomic_load_explicit(&m->dbits, memory_order_relaxed))) < 0
               ? -ENOMEM : 0;
    case BL_METRIC_HISTOGRAM: {
        uint64_t cum = 0;

        for (size_t i = 0; i <= fam->nbounds; i++) {
            cum += atomic_load_explicit(&m->bucket[i], memory_order_relaxed);
            if (put_series(out, fam->name, "_bucket", m->labels,
                           i < fam->nbounds ? fam->le[i] : "+Inf") < 0 ||
                bl_buf_printf(out, "%" PRIu64 "\n", cum) < 0) {
                return -ENOMEM;
            }
        }
        if (put_series(out, fam->name, "_sum", m->labels, NULL) < 0 ||
            put_double(out, u2d(atomic_load_explicit(&m->dbits, memory_order_relaxed))) < 0 ||
            put_series(out, fam->name, "_count", m->labels, NULL) < 0 ||
            bl_buf_printf(out, "%" PRIu64 "\n", cum) < 0) {
            return -ENOMEM;
        }
        return 0;
    }
    }
    return 0;
}

int
bl_metrics_render(struct bl_metrics *reg, struct bl_buf *out)
{
    struct bl_metric_family *fam;

    if (reg == NULL) {
        return 0;
    }
    for (fam = atomic_load_explicit(&reg->first, memory_order_acquire); fam != NULL;
         fam = atomic_load_explicit(&fam->next, memory_order_acquire)) {
        struct bl_metric *m;

        if (*fam->help != '\0' &&
            bl_buf_printf(out, "# HELP %s %s\n", fam->name, fam->help) < 0) {
            return -ENOMEM;
        }
        if (bl_buf_printf(out, "# TYPE %s %s\n", fam->name, type_name(fam->type)) < 0) {
            return -ENOMEM;
        }
        for (m = atomic_load_explicit(&fam->first, memory_order_acquire); m != NULL;
             m = atomic_load_explicit(&m->next, memory_order_acquire)) {
            if (render_child(out, fam, m) < 0) {
                return -ENOMEM;
            }
        }
    }
    return 0;
}
