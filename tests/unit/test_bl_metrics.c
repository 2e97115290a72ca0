/*
 * Unit tests of the metrics registry: values, the exact text of a small registry, escaping,
 * validation, exact sums from 8 threads, and promtool's verdict on a registry holding every
 * metric type (promtool is a test dependency: its absence fails the test).
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "bl/bl_buf.h"
#include "bl/bl_metrics.h"

extern char **environ;

/* Renders <reg> into a NUL-terminated string the caller frees. */
static char *
render(struct bl_metrics *reg)
{
    struct bl_buf b;

    bl_buf_init(&b);
    assert_int_equal(bl_metrics_render(reg, &b), 0);
    assert_int_equal(bl_buf_reserve(&b, 0), 0);
    return bl_buf_steal(&b, NULL);
}

static void
test_format_double(void **state)
{
    static const struct {
        double v;
        const char *s;
    } cases[] = {
        { 0.0, "0" }, { -0.0, "0" }, { 1, "1" }, { -3, "-3" }, { 0.1, "0.1" },
        { 0.0001, "0.0001" }, { 2.5e-05, "2.5e-05" }, { 123456789012345.0, "123456789012345" },
        { 1e15, "1e+15" }, { 1.0 / 3, "0.3333333333333333" }, { 0.1 + 0.2, "0.30000000000000004" },
        { 1e300, "1e+300" }, { -2.5, "-2.5" }, { NAN, "NaN" }, { INFINITY, "+Inf" },
        { -INFINITY, "-Inf" },
    };
    char out[40];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = bl_metrics_format_double(cases[i].v, out);

        assert_string_equal(out, cases[i].s);
        assert_int_equal(n, strlen(cases[i].s));
        if (isfinite(cases[i].v)) {
            assert_true(strtod(out, NULL) == cases[i].v);     /* round-trips */
        }
    }
}

static void
test_counter(void **state)
{
    struct bl_metrics *reg = bl_metrics_create();
    struct bl_metric *c = bl_metrics_simple(reg, BL_METRIC_COUNTER, "c_total", "C.");
    char *text;

    (void)state;
    assert_non_null(c);
    assert_true(bl_metric_value(c) == 0);
    bl_metric_inc(c);
    bl_metric_inc(c);
    bl_metric_add(c, 3);
    assert_true(bl_metric_value(c) == 5);
    bl_metric_add(c, -1);               /* ignored: counters never go down */
    bl_metric_add(c, NAN);
    bl_metric_add(c, INFINITY);
    bl_metric_set(c, 100);              /* counters cannot be set */
    bl_metric_observe(c, 1);
    assert_true(bl_metric_value(c) == 5);
    bl_metric_add(c, 0.25);
    assert_true(bl_metric_value(c) == 5.25);

    /* integral counts are exact beyond 2^53 */
    {
        struct bl_metric *big = bl_metrics_simple(reg, BL_METRIC_COUNTER, "big_total", "B.");

        bl_metric_add(big, 9007199254740991.0);     /* 2^53 - 1 */
        bl_metric_add(big, 9007199254740991.0);
        bl_metric_inc(big);
        text = render(reg);
        assert_non_null(strstr(text, "\nbig_total 18014398509481983\n"));
        assert_non_null(strstr(text, "\nc_total 5.25\n"));
        free(text);
    }

    /* NULL (a failed registration) is a no-op everywhere */
    bl_metric_inc(NULL);
    bl_metric_add(NULL, 1);
    bl_metric_set(NULL, 1);
    bl_metric_observe(NULL, 1);
    assert_true(bl_metric_value(NULL) == 0);
    bl_metrics_destroy(reg);
    bl_metrics_destroy(NULL);
}

static void
test_gauge(void **state)
{
    struct bl_metrics *reg = bl_metrics_create();
    struct bl_metric *g = bl_metrics_simple(reg, BL_METRIC_GAUGE, "g", "G.");

    (void)state;
    bl_metric_set(g, 10);
    bl_metric_inc(g);
    bl_metric_add(g, -2.5);
    assert_true(bl_metric_value(g) == 8.5);
    bl_metric_set(g, -1e-9);
    assert_true(bl_metric_value(g) == -1e-9);
    bl_metric_observe(g, 5);            /* not a histogram: ignored */
    assert_true(bl_metric_value(g) == -1e-9);
    bl_metrics_destroy(reg);
}

static void
test_histogram(void **state)
{
    static const double bounds[] = { 0.1, 0.5, 1 };
    struct bl_metrics *reg = bl_metrics_create();
    struct bl_metric *h = bl_metric_child(
        bl_metrics_family(reg, BL_METRIC_HISTOGRAM, "h_seconds", "H.", NULL, bounds, 3), NULL);
    struct bl_metric *d = bl_metrics_simple(reg, BL_METRIC_HISTOGRAM, "d_seconds", "D.");

    (void)state;
    assert_non_null(h);
    bl_metric_observe(h, 0.05);
    bl_metric_observe(h, 0.1);          /* le is inclusive */
    bl_metric_observe(h, 0.3);
    bl_metric_observe(h, 2);
    bl_metric_observe(h, 1e9);
    bl_metric_inc(h);                   /* ignored on a histogram */
    assert_int_equal(bl_metric_bucket(h, 0), 2);
    assert_int_equal(bl_metric_bucket(h, 1), 3);
    assert_int_equal(bl_metric_bucket(h, 2), 3);
    assert_int_equal(bl_metric_bucket(h, 3), 5);  /* +Inf */
    assert_int_equal(bl_metric_bucket(h, 4), 0);  /* out of range */
    assert_true(bl_metric_value(h) == 5);
    assert_true(bl_metric_sum(h) == 0.05 + 0.1 + 0.3 + 2 + 1e9);

    /* default buckets: 100 us .. 10 s */
    assert_int_equal(BL_METRICS_DEFAULT_NBUCKETS, 16);
    assert_true(BL_METRICS_DEFAULT_BUCKETS[0] == 0.0001);
    assert_true(BL_METRICS_DEFAULT_BUCKETS[BL_METRICS_DEFAULT_NBUCKETS - 1] == 10);
    for (size_t i = 1; i < BL_METRICS_DEFAULT_NBUCKETS; i++) {
        assert_true(BL_METRICS_DEFAULT_BUCKETS[i] > BL_METRICS_DEFAULT_BUCKETS[i - 1]);
    }
    bl_metric_observe(d, 0.00005);
    bl_metric_observe(d, 0.003);
    bl_metric_observe(d, 11);
    assert_int_equal(bl_metric_bucket(d, 0), 1);
    assert_int_equal(bl_metric_bucket(d, 4), 1);  /* 0.0025 */
    assert_int_equal(bl_metric_bucket(d, 5), 2);  /* 0.005 */
    assert_int_equal(bl_metric_bucket(d, 15), 2); /* 10 */
    assert_int_equal(bl_metric_bucket(d, 16), 3); /* +Inf */
    bl_metrics_destroy(reg);
}

static double
fixed_fn(void *arg)
{
    return *(const double *)arg;
}

static void
test_golden(void **state)
{
    static const double bounds[] = { 0.1, 1 };
    static const char *const req_labels[] = { "method", "code", NULL };
    static const char *const get200[] = { "GET", "200" };
    static const char *const post201[] = { "POST", "201" };
    static const char *const expected =
        "# HELP blog_test_requests_total Requests by method and code.\n"
        "# TYPE blog_test_requests_total counter\n"
        "blog_test_requests_total{method=\"GET\",code=\"200\"} 3\n"
        "blog_test_requests_total{method=\"POST\",code=\"201\"} 2\n"
        "# HELP blog_test_in_flight Requests in flight.\n"
        "# TYPE blog_test_in_flight gauge\n"
        "blog_test_in_flight 3.5\n"
        "# HELP blog_test_duration_seconds Request duration.\n"
        "# TYPE blog_test_duration_seconds histogram\n"
        "blog_test_duration_seconds_bucket{le=\"0.1\"} 1\n"
        "blog_test_duration_seconds_bucket{le=\"1\"} 3\n"
        "blog_test_duration_seconds_bucket{le=\"+Inf\"} 4\n"
        "blog_test_duration_seconds_sum 4.8125\n"
        "blog_test_duration_seconds_count 4\n"
        "# TYPE blog_test_unused_total counter\n"
        "# HELP blog_test_rss_bytes Resident set size.\n"
        "# TYPE blog_test_rss_bytes gauge\n"
        "blog_test_rss_bytes 123456789\n";
    struct bl_metrics *reg = bl_metrics_create();
    struct bl_metric_family *req;
    struct bl_metric *c1, *c2, *g, *h;
    double rss = 123456789;
    char *text;

    (void)state;
    req = bl_metrics_family(reg, BL_METRIC_COUNTER, "blog_test_requests_total",
                            "Requests by method and code.", req_labels, NULL, 0);
    c1 = bl_metric_child(req, get200);
    c2 = bl_metric_child(req, post201);
    g = bl_metrics_simple(reg, BL_METRIC_GAUGE, "blog_test_in_flight", "Requests in flight.");
    h = bl_metric_child(bl_metrics_family(reg, BL_METRIC_HISTOGRAM, "blog_test_duration_seconds",
                                          "Request duration.", NULL, bounds, 2), NULL);
    assert_non_null(bl_metrics_family(reg, BL_METRIC_COUNTER, "blog_test_unused_total", NULL,
                                      NULL, NULL, 0));
    assert_non_null(bl_metrics_gauge_fn(reg, "blog_test_rss_bytes", "Resident set size.",
                                        fixed_fn, &rss));
    bl_metric_inc(c1);
    bl_metric_add(c2, 2);
    bl_metric_inc(c1);
    bl_metric_inc(c1);
    bl_metric_set(g, 4.5);
    bl_metric_add(g, -1);
    bl_metric_observe(h, 0.0625);
    bl_metric_observe(h, 0.25);
    bl_metric_observe(h, 0.5);
    bl_metric_observe(h, 4);
    assert_ptr_equal(bl_metric_child(req, get200), c1);     /* lookup finds, not creates */

    text = render(reg);
    assert_string_equal(text, expected);
    free(text);

    /* the function is called at each render */
    rss = 0.5;
    text = render(reg);
    assert_non_null(strstr(text, "\nblog_test_rss_bytes 0.5\n"));
    free(text);
    bl_metrics_destroy(reg);
}

static void
test_escaping(void **state)
{
    static const char *const names[] = { "path", "who", NULL };
    static const char *const vals[] = { "a\\b\"c\nd", "bad\xff utf8 \xc3\xa9" };
    struct bl_metrics *reg = bl_metrics_create();
    struct bl_metric_family *fam;
    char *text;

    (void)state;
    fam = bl_metrics_family(reg, BL_METRIC_GAUGE, "esc", "Back\\slash, \"quotes\"\nand newline.",
                            names, NULL, 0);
    bl_metric_set(bl_metric_child(fam, vals), 1);
    text = render(reg);
    assert_string_equal(text,
                        "# HELP esc Back\\\\slash, \"quotes\"\\nand newline.\n"
                        "# TYPE esc gauge\n"
                        "esc{path=\"a\\\\b\\\"c\\nd\",who=\"bad\xef\xbf\xbd utf8 \xc3\xa9\"} 1\n");
    free(text);
    bl_metrics_destroy(reg);
}

static void
test_validation(void **state)
{
    static const char *const ok_labels[] = { "route", "status", NULL };
    static const char *const le_label[] = { "le", NULL };
    static const char *const reserved[] = { "__name", NULL };
    static const char *const dup[] = { "a", "a", NULL };
    static const char *const colon[] = { "a:b", NULL };
    static const char *const digit[] = { "1a", NULL };
    static const char *const other_labels[] = { "route", NULL };
    static const double bad_order[] = { 1, 0.5 };
    static const double equal[] = { 1, 1 };
    static const double with_nan[] = { 0.1, NAN };
    static const double with_inf[] = { 0.1, 1, INFINITY };
    double many[BL_METRICS_MAX_BUCKETS + 1];
    struct bl_metrics *reg = bl_metrics_create();
    struct bl_metric_family *fam, *h;
    static const char *const bad_names[] = { "", "1abc", "a-b", "a b", "a\n", "é" };

    (void)state;
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
        assert_null(bl_metrics_family(reg, BL_METRIC_GAUGE, bad_names[i], "x", NULL, NULL, 0));
    }
    assert_null(bl_metrics_family(reg, BL_METRIC_GAUGE, NULL, "x", NULL, NULL, 0));
    assert_null(bl_metrics_family(NULL, BL_METRIC_GAUGE, "x", "x", NULL, NULL, 0));
    assert_null(bl_metrics_family(reg, (enum bl_metric_type)42, "x", "x", NULL, NULL, 0));
    assert_non_null(bl_metrics_family(reg, BL_METRIC_GAUGE, "ns:sub_name:x", "x", NULL, NULL, 0));
    assert_null(bl_metrics_family(reg, BL_METRIC_HISTOGRAM, "h1", "x", le_label, NULL, 0));
    assert_non_null(bl_metrics_family(reg, BL_METRIC_GAUGE, "g_le", "x", le_label, NULL, 0));
    assert_null(bl_metrics_family(reg, BL_METRIC_GAUGE, "g2", "x", reserved, NULL, 0));
    assert_null(bl_metrics_family(reg, BL_METRIC_GAUGE, "g3", "x", dup, NULL, 0));
    assert_null(bl_metrics_family(reg, BL_METRIC_GAUGE, "g4", "x", colon, NULL, 0));
    assert_null(bl_metrics_family(reg, BL_METRIC_GAUGE, "g5", "x", digit, NULL, 0));
    assert_null(bl_metrics_family(reg, BL_METRIC_HISTOGRAM, "h2", "x", NULL, bad_order, 2));
    assert_null(bl_metrics_family(reg, BL_METRIC_HISTOGRAM, "h3", "x", NULL, equal, 2));
    assert_null(bl_metrics_family(reg, BL_METRIC_HISTOGRAM, "h4", "x", NULL, with_nan, 2));
    for (size_t i = 0; i < BL_METRICS_MAX_BUCKETS + 1; i++) {
        many[i] = (double)(i + 1);
    }
    assert_null(bl_metrics_family(reg, BL_METRIC_HISTOGRAM, "h5", "x", NULL, many,
                                  BL_METRICS_MAX_BUCKETS + 1));
    assert_non_null(bl_metrics_family(reg, BL_METRIC_HISTOGRAM, "h6", "x", NULL, many,
                                      BL_METRICS_MAX_BUCKETS));
    /* a trailing +Inf is the implicit one */
    h = bl_metrics_family(reg, BL_METRIC_HISTOGRAM, "h7", "x", NULL, with_inf, 3);
    assert_non_null(h);
    bl_metric_observe(bl_metric_child(h, NULL), 5);
    {
        char *text = render(reg);

        assert_non_null(strstr(text, "h7_bucket{le=\"1\"} 0\nh7_bucket{le=\"+Inf\"} 1\n"));
        free(text);
    }

    /* registering again: same family when type and labels match */
    fam = bl_metrics_family(reg, BL_METRIC_COUNTER, "req_total", "x", ok_labels, NULL, 0);
    assert_non_null(fam);
    assert_ptr_equal(bl_metrics_family(reg, BL_METRIC_COUNTER, "req_total", "other help",
                                       ok_labels, NULL, 0), fam);
    assert_null(bl_metrics_family(reg, BL_METRIC_GAUGE, "req_total", "x", ok_labels, NULL, 0));
    assert_null(bl_metrics_family(reg, BL_METRIC_COUNTER, "req_total", "x", other_labels, NULL,
                                  0));
    assert_null(bl_metrics_family(reg, BL_METRIC_COUNTER, "req_total", "x", NULL, NULL, 0));

    /* names that would clash with a histogram's series, both ways round */
    assert_null(bl_metrics_family(reg, BL_METRIC_GAUGE, "h7_count", "x", NULL, NULL, 0));
    assert_null(bl_metrics_family(reg, BL_METRIC_COUNTER, "h7_bucket", "x", NULL, NULL, 0));
    assert_null(bl_metrics_family(reg, BL_METRIC_GAUGE, "h7_sum", "x", NULL, NULL, 0));
    assert_non_null(bl_metrics_family(reg, BL_METRIC_GAUGE, "h7_other", "x", NULL, NULL, 0));
    assert_non_null(bl_metrics_family(reg, BL_METRIC_GAUGE, "y_sum", "x", NULL, NULL, 0));
    assert_null(bl_metrics_family(reg, BL_METRIC_HISTOGRAM, "y", "x", NULL, NULL, 0));

    /* children need every label value */
    {
        static const char *const partial[] = { "a", NULL };

        assert_null(bl_metric_child(fam, NULL));
        assert_null(bl_metric_child(fam, partial));
        assert_null(bl_metric_child(NULL, NULL));
    }

    /* function metrics */
    assert_null(bl_metrics_gauge_fn(reg, "req_total", "x", fixed_fn, NULL));  /* taken */
    assert_null(bl_metrics_gauge_fn(reg, "fn_gauge", "x", NULL, NULL));
    assert_null(bl_metrics_gauge_fn(reg, "bad name", "x", fixed_fn, NULL));
    bl_metrics_destroy(reg);
}

static void
test_children_stable_and_ordered(void **state)
{
    static const char *const names[] = { "id", NULL };
    struct bl_metrics *reg = bl_metrics_create();
    struct bl_metric_family *fam = bl_metrics_family(reg, BL_METRIC_COUNTER, "kids_total", "K.",
                                                     names, NULL, 0);
    struct bl_metric *kids[1000];
    char *text, *p;

    (void)state;
    for (int i = 0; i < 1000; i++) {
        char v[16];
        const char *vals[] = { v };

        snprintf(v, sizeof(v), "k%d", (i * 7919) % 1000);  /* a scrambled order */
        kids[i] = bl_metric_child(fam, vals);
        assert_non_null(kids[i]);
        bl_metric_add(kids[i], (i * 7919) % 1000);
    }
    for (int i = 0; i < 1000; i++) {
        char v[16];
        const char *vals[] = { v };

        snprintf(v, sizeof(v), "k%d", (i * 7919) % 1000);
        assert_ptr_equal(bl_metric_child(fam, vals), kids[i]);
    }
    /* creation order in the output */
    text = render(reg);
    p = text;
    for (int i = 0; i < 1000; i++) {
        char line[64];
        int k = (i * 7919) % 1000;

        snprintf(line, sizeof(line), "kids_total{id=\"k%d\"} %d\n", k, k);
        p = strstr(p, line);
        assert_non_null(p);
    }
    free(text);
    bl_metrics_destroy(reg);
}

/* ---- threads ----------------------------------------------------------------------- */

#define NTHREADS 8
#define NINC 1000000
#define NOBS 100000

struct hot {
    struct bl_metric *counter;
    struct bl_metric *gauge;
    struct bl_metric *hist;
    struct bl_metric *frac;
};

static void *
hammer(void *arg)
{
    struct hot *h = arg;

    for (int i = 0; i < NINC; i++) {
        bl_metric_inc(h->counter);
    }
    for (int i = 0; i < NOBS; i++) {
        bl_metric_add(h->gauge, 1);
        bl_metric_observe(h->hist, (i & 1) ? 0.5 : 0.002);
        bl_metric_add(h->frac, 0.5);
        bl_metric_add(h->gauge, -1);
    }
    return NULL;
}

static void
test_threads_exact(void **state)
{
    struct bl_metrics *reg = bl_metrics_create();
    struct hot h = {
        .counter = bl_metrics_simple(reg, BL_METRIC_COUNTER, "hot_total", "Hot."),
        .gauge = bl_metrics_simple(reg, BL_METRIC_GAUGE, "hot_gauge", "Hot."),
        .hist = bl_metrics_simple(reg, BL_METRIC_HISTOGRAM, "hot_seconds", "Hot."),
        .frac = bl_metrics_simple(reg, BL_METRIC_COUNTER, "hot_frac_total", "Hot."),
    };
    pthread_t t[NTHREADS];
    char *text;

    (void)state;
    for (int i = 0; i < NTHREADS; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, hammer, &h), 0);
    }
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(t[i], NULL);
    }
    assert_true(bl_metric_value(h.counter) == (double)NTHREADS * NINC);
    assert_true(bl_metric_value(h.gauge) == 0);
    assert_true(bl_metric_value(h.hist) == (double)NTHREADS * NOBS);
    assert_int_equal(bl_metric_bucket(h.hist, 5), NTHREADS * NOBS / 2);      /* 0.005 */
    /* the fractional counter takes the CAS path; halves add up exactly */
    assert_true(bl_metric_value(h.frac) == 0.5 * NTHREADS * NOBS);
    assert_true(fabs(bl_metric_sum(h.hist) - (0.5 + 0.002) * NTHREADS * NOBS / 2) < 1e-3);
    text = render(reg);
    assert_non_null(strstr(text, "\nhot_total 8000000\n"));
    assert_non_null(strstr(text, "\nhot_seconds_count 800000\n"));
    free(text);
    bl_metrics_destroy(reg);
}

struct race {
    struct bl_metric_family *fam;
    struct bl_metrics *reg;
    struct bl_metric *seen[NTHREADS][100];
};

struct race_arg {
    struct race *r;
    int id;
};

static void *
racer(void *arg)
{
    struct race_arg *a = arg;

    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < 100; i++) {
            int k = (i * 37 + a->id * 11 + round) % 100;
            char v[8];
            const char *vals[] = { v };
            struct bl_metric *m;

            snprintf(v, sizeof(v), "v%d", k);
            m = bl_metric_child(a->r->fam, vals);
            if (a->r->seen[a->id][k] != NULL && a->r->seen[a->id][k] != m) {
                return (void *)1;       /* the same labels gave another child */
            }
            a->r->seen[a->id][k] = m;
            bl_metric_inc(m);
        }
        if (a->id == 0) {
            struct bl_buf b;

            bl_buf_init(&b);
            bl_metrics_render(a->r->reg, &b);           /* concurrent with creation */
            bl_buf_deinit(&b);
        }
    }
    return NULL;
}

static void
test_threads_children(void **state)
{
    static const char *const names[] = { "v", NULL };
    static struct race r;
    struct race_arg args[NTHREADS];
    pthread_t t[NTHREADS];
    double total = 0;

    (void)state;
    memset(&r, 0, sizeof(r));
    r.reg = bl_metrics_create();
    r.fam = bl_metrics_family(r.reg, BL_METRIC_COUNTER, "race_total", "R.", names, NULL, 0);
    for (int i = 0; i < NTHREADS; i++) {
        args[i].r = &r;
        args[i].id = i;
        assert_int_equal(pthread_create(&t[i], NULL, racer, &args[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++) {
        void *rc;

        pthread_join(t[i], &rc);
        assert_null(rc);
    }
    for (int k = 0; k < 100; k++) {
        for (int i = 1; i < NTHREADS; i++) {
            assert_ptr_equal(r.seen[i][k], r.seen[0][k]);
        }
        assert_true(bl_metric_value(r.seen[0][k]) == NTHREADS * 20);
        total += bl_metric_value(r.seen[0][k]);
    }
    assert_true(total == NTHREADS * 20 * 100);
    bl_metrics_destroy(r.reg);
}

/* ---- promtool ---------------------------------------------------------------------- */

/* Path of promtool ($PROMTOOL, then $PATH, then /usr/bin), or NULL. */
static char *
find_promtool(void)
{
    const char *env = getenv("PROMTOOL");
    const char *path = getenv("PATH");
    char buf[4096];

    if (env != NULL && access(env, X_OK) == 0) {
        return strdup(env);
    }
    while (path != NULL && *path != '\0') {
        const char *end = strchr(path, ':');
        size_t n = end != NULL ? (size_t)(end - path) : strlen(path);

        if (n > 0 && n < sizeof(buf) - 16) {
            snprintf(buf, sizeof(buf), "%.*s/promtool", (int)n, path);
            if (access(buf, X_OK) == 0) {
                return strdup(buf);
            }
        }
        path = end != NULL ? end + 1 : NULL;
    }
    return access("/usr/bin/promtool", X_OK) == 0 ? strdup("/usr/bin/promtool") : NULL;
}

/*
 * Runs `promtool check metrics` on <text>. Returns its exit status (-1 if it could not run)
 * and puts what it printed in <report> (caller frees).
 */
static int
promtool_check(const char *promtool, const char *text, char **report)
{
    char in_path[] = "/tmp/test_bl_metrics_in.XXXXXX";
    char out_path[] = "/tmp/test_bl_metrics_out.XXXXXX";
    int in_fd = mkstemp(in_path), out_fd = mkstemp(out_path), status = -1;
    size_t len = strlen(text);
    posix_spawn_file_actions_t fa;
    char *argv[] = { (char *)promtool, "check", "metrics", NULL };
    pid_t pid;
    off_t size;

    assert_true(in_fd >= 0 && out_fd >= 0);
    assert_int_equal(write(in_fd, text, len), (ssize_t)len);
    assert_int_equal(lseek(in_fd, 0, SEEK_SET), 0);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
    posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
    posix_spawn_file_actions_adddup2(&fa, out_fd, 2);
    if (posix_spawn(&pid, promtool, &fa, NULL, argv, environ) == 0) {
        int ws;

        while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
        }
        status = WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
    }
    posix_spawn_file_actions_destroy(&fa);
    size = lseek(out_fd, 0, SEEK_END);
    *report = calloc(1, (size_t)size + 1);
    assert_non_null(*report);
    assert_int_equal(pread(out_fd, *report, (size_t)size, 0), size);
    close(in_fd);
    close(out_fd);
    unlink(in_path);
    unlink(out_path);
    return status;
}

static double
cpu_seconds(void *arg)
{
    (void)arg;
    return 12.75;
}

static void
test_promtool_accepts_every_type(void **state)
{
    static const char *const route_status[] = { "route", "status", NULL };
    static const char *const node_label[] = { "node", NULL };
    static const double size_buckets[] = { 1024, 65536, 1048576 };
    static const char *const tricky[] = { "/posts/{id}", "quote\" back\\ nl\n end" };
    static const char *const plain[] = { "/posts", "200" };
    static const char *const bad_utf8[] = { "n\xff\xfe" };
    static const char *const nodes[] = { "n1" };
    struct bl_metrics *reg = bl_metrics_create();
    struct bl_metric_family *req, *dur, *up, *size;
    char *promtool = find_promtool();
    char *text, *report;
    double rss = 5.0e9;
    int rc;

    (void)state;
    if (promtool == NULL) {
        fail_msg("promtool not found (PATH, /usr/bin): install Debian's prometheus package "
                 "(scripts/install-deps.sh does)");
    }
    req = bl_metrics_family(reg, BL_METRIC_COUNTER, "blog_test_requests_total",
                            "Requests by route and status; help with \\ and\nnewline.",
                            route_status, NULL, 0);
    dur = bl_metrics_family(reg, BL_METRIC_HISTOGRAM, "blog_test_request_duration_seconds",
                            "Request duration.", route_status, NULL, 0);
    up = bl_metrics_family(reg, BL_METRIC_GAUGE, "blog_test_node_up", "Node is up (1) or not.",
                           node_label, NULL, 0);
    size = bl_metrics_family(reg, BL_METRIC_HISTOGRAM, "blog_test_body_bytes",
                             "Body sizes.", NULL, size_buckets, 3);
    bl_metric_add(bl_metric_child(req, tricky), 7);
    bl_metric_add(bl_metric_child(req, plain), 123456789012.0);
    bl_metric_add(bl_metric_child(req, plain), 0.5);
    bl_metric_observe(bl_metric_child(dur, tricky), 0.0003);
    bl_metric_observe(bl_metric_child(dur, plain), 12);
    bl_metric_observe(bl_metric_child(dur, plain), NAN);
    bl_metric_set(bl_metric_child(up, nodes), 1);
    bl_metric_set(bl_metric_child(up, bad_utf8), 0);
    bl_metric_observe(bl_metric_child(size, NULL), 70000);
    bl_metric_set(bl_metrics_simple(reg, BL_METRIC_GAUGE, "blog_test_temperature_celsius",
                                    "Extreme values."), -1e300);
    bl_metric_set(bl_metrics_simple(reg, BL_METRIC_GAUGE, "blog_test_ratio", "Tiny ratio."),
                  1.5e-10);
    bl_metric_set(bl_metrics_simple(reg, BL_METRIC_GAUGE, "blog_test_infinite", "Inf."),
                  INFINITY);
    assert_non_null(bl_metrics_gauge_fn(reg, "blog_test_resident_memory_bytes", "RSS.",
                                        fixed_fn, &rss));
    assert_non_null(bl_metrics_counter_fn(reg, "blog_test_cpu_seconds_total", "CPU time.",
                                          cpu_seconds, NULL));
    text = render(reg);
    rc = promtool_check(promtool, text, &report);
    if (rc != 0 || report[0] != '\0') {
        fail_msg("promtool check metrics: exit %d: %s\n--- input ---\n%s", rc, report, text);
    }
    free(report);
    free(text);

    /* the check can fail: promtool rejects a broken exposition */
    rc = promtool_check(promtool,
                        "# HELP x_total X.\n# TYPE x_total counter\nx_total{a=\"b\"c\"} 1\n",
                        &report);
    assert_int_not_equal(rc, 0);
    free(report);
    free(promtool);
    bl_metrics_destroy(reg);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_double),
        cmocka_unit_test(test_counter),
        cmocka_unit_test(test_gauge),
        cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_golden),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_validation),
        cmocka_unit_test(test_children_stable_and_ordered),
        cmocka_unit_test(test_threads_exact),
        cmocka_unit_test(test_threads_children),
        cmocka_unit_test(test_promtool_accepts_every_type),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
