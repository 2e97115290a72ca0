/* blogctl status [--window DURATION] */
#include "ctl_cmd.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bl/bl_buf.h"
#include "bl/bl_time.h"
#include "bl/bl_util.h"
#include "ctl_http.h"

#define STATUS_TIMEOUT_MS 2000
#define PROM_MAX_BUCKETS 128

/*
 * Calls <fn> for every sample line of <text> whose sample name is <name>, with the label
 * block ("" when none, else the text between the braces) and the value.
 */
static void
prom_each(const char *text, const char *name,
          void (*fn)(const char *labels, size_t llen, double v, void *arg), void *arg)
{
    size_t nlen = strlen(name);
    const char *p = text;

    while (p != NULL && *p != '\0') {
        const char *eol = strchr(p, '\n');
        size_t len = eol != NULL ? (size_t)(eol - p) : strlen(p);

        if (len > nlen && p[0] != '#' && strncmp(p, name, nlen) == 0
            && (p[nlen] == '{' || p[nlen] == ' ')) {
            const char *labels = "", *q = p + nlen;
            size_t llen = 0;

            if (*q == '{') {
                const char *close = memchr(q, '}', len - nlen);

                if (close == NULL) {
                    goto next;
                }
                labels = q + 1;
                llen = (size_t)(close - q - 1);
                q = close + 1;
            }
            if (*q == ' ') {
                char num[64];
                size_t vlen = 0;
                char *end;
                double v;

                q++;
                while (q + vlen < p + len && q[vlen] != ' ' && vlen < sizeof(num) - 1) {
                    vlen++;
                }
                memcpy(num, q, vlen);
                num[vlen] = '\0';
                v = strtod(num, &end);
                if (end != num && *end == '\0') {
                    fn(labels, llen, v, arg);
                }
            }
        }
next:
        p = eol != NULL ? eol + 1 : NULL;
    }
}

struct prom_acc {
    double sum;
    int n;
};

static void
acc_sum(const char *labels, size_t llen, double v, void *arg)
{
    struct prom_acc *a = arg;

    (void)labels;
    (void)llen;
    a->sum += v;
    a->n++;
}

bool
ctl_prom_sum(const char *text, const char *name, double *out)
{
    struct prom_acc a = { 0, 0 };

    if (text == NULL) {
        return false;
    }
    prom_each(text, name, acc_sum, &a);
    *out = a.sum;
    return a.n > 0;
}

struct prom_filter {
    const char *label;
    const char *value;
    struct prom_acc acc;
};

/* True when the label block <labels>/<llen> has <label>="<value>" (no escapes in value). */
static bool
labels_match(const char *labels, size_t llen, const char *label, const char *value)
{
    size_t ln = strlen(label), vn = strlen(value);
    const char *p = labels, *end = labels + llen;

    while (p < end) {
        if ((p == labels || p[-1] == ',') && (size_t)(end - p) >= ln + vn + 3
            && strncmp(p, label, ln) == 0 && p[ln] == '=' && p[ln + 1] == '"'
            && strncmp(p + ln + 2, value, vn) == 0 && p[ln + 2 + vn] == '"') {
            return true;
        }
        /* skip to the next label: past the closing quote of this value */
        p = memchr(p, '"', (size_t)(end - p));
        if (p == NULL) {
            return false;
        }
        p++;
        while (p < end && *p != '"') {
            p += *p == '\\' ? 2 : 1;
        }
        p++;
        if (p < end && *p == ',') {
            p++;
        }
    }
    return false;
}

static void
acc_filter(const char *labels, size_t llen, double v, void *arg)
{
    struct prom_filter *f = arg;

    if (labels_match(labels, llen, f->label, f->value)) {
        f->acc.sum += v;
        f->acc.n++;
    }
}

bool
ctl_prom_sum_label(const char *text, const char *name, const char *label, const char *value,
                   double *out)
{
    struct prom_filter f = { label, value, { 0, 0 } };

    if (text == NULL) {
        return false;
    }
    prom_each(text, name, acc_filter, &f);
    *out = f.acc.sum;
    return f.acc.n > 0;
}

struct prom_values {
    const char *label;
    char **vals;
    size_t n;
};

static void
acc_values(const char *labels, size_t llen, double v, void *arg)
{
    struct prom_values *pv = arg;
    size_t ln = strlen(pv->label);
    const char *p = labels, *end = labels + llen;

    (void)v;
    while (p < end) {
        if ((p == labels || p[-1] == ',') && (size_t)(end - p) > ln + 2
            && strncmp(p, pv->label, ln) == 0 && p[ln] == '=' && p[ln + 1] == '"') {
            const char *vs = p + ln + 2, *ve = vs;
            char *val;

            while (ve < end && *ve != '"') {
                ve += *ve == '\\' ? 2 : 1;
            }
            if (ve > end) {
                return;
            }
            val = bl_xmalloc((size_t)(ve - vs) + 1);
            memcpy(val, vs, (size_t)(ve - vs));
            val[ve - vs] = '\0';
            for (size_t i = 0; i < pv->n; i++) {
                if (strcmp(pv->vals[i], val) == 0) {
                    free(val);
                    return;
                }
            }
            pv->vals = bl_xrealloc(pv->vals, (pv->n + 1) * sizeof(*pv->vals));
            pv->vals[pv->n++] = val;
            return;
        }
        p = memchr(p, '"', (size_t)(end - p));
        if (p == NULL) {
            return;
        }
        p++;
        while (p < end && *p != '"') {
            p += *p == '\\' ? 2 : 1;
        }
        p++;
        if (p < end && *p == ',') {
            p++;
        }
    }
}

size_t
ctl_prom_label_values(const char *text, const char *name, const char *label, char ***out)
{
    struct prom_values pv = { label, NULL, 0 };

    if (text != NULL) {
        prom_each(text, name, acc_values, &pv);
    }
    *out = pv.vals;
    return pv.n;
}

struct prom_buckets {
    double le[PROM_MAX_BUCKETS];
    double count[PROM_MAX_BUCKETS];
    size_t n;
    double sign;                /* +1 for the later scrape, -1 for the earlier */
};

static void
acc_bucket(const char *labels, size_t llen, double v, void *arg)
{
    struct prom_buckets *b = arg;
    const char *p = labels, *end = labels + llen;
    double le;

    /* find le="X" */
    while (p < end) {
        if ((p == labels || p[-1] == ',') && end - p > 4 && strncmp(p, "le=\"", 4) == 0) {
            break;
        }
        p++;
    }
    if (p >= end) {
        return;
    }
    p += 4;
    if (strncmp(p, "+Inf\"", 5) == 0) {
        le = INFINITY;
    } else {
        char *e;

        le = strtod(p, &e);
        if (e == p || *e != '"') {
            return;
        }
    }
    for (size_t i = 0; i < b->n; i++) {
        if (b->le[i] == le) {
            b->count[i] += b->sign * v;
            return;
        }
    }
    if (b->n < PROM_MAX_BUCKETS) {
        b->le[b->n] = le;
        b->count[b->n] = b->sign * v;
        b->n++;
    }
}

bool
ctl_prom_quantile(const char *before, const char *after, const char *name, double q,
                  double *out)
{
    struct prom_buckets b;
    char bname[256];
    double total, rank, prev_le = 0.0, prev_cum = 0.0;

    if (after == NULL || strlen(name) + 8 > sizeof(bname)) {
        return false;
    }
    snprintf(bname, sizeof(bname), "%s_bucket", name);
    memset(&b, 0, sizeof(b));
    b.sign = 1.0;
    prom_each(after, bname, acc_bucket, &b);
    if (before != NULL) {
        b.sign = -1.0;
        prom_each(before, bname, acc_bucket, &b);
    }
    if (b.n == 0) {
        return false;
    }
    /* sort by le (insertion sort: a few dozen buckets) */
    for (size_t i = 1; i < b.n; i++) {
        for (size_t j = i; j > 0 && b.le[j - 1] > b.le[j]; j--) {
            double t = b.le[j];

            b.le[j] = b.le[j - 1];
            b.le[j - 1] = t;
            t = b.count[j];
            b.count[j] = b.count[j - 1];
            b.count[j - 1] = t;
        }
    }
    total = b.count[b.n - 1];
    if (!isinf(b.le[b.n - 1]) || total <= 0) {
        return false;
    }
    rank = q * total;
    for (size_t i = 0; i < b.n; i++) {
        if (b.count[i] >= rank) {
            if (isinf(b.le[i])) {
                *out = prev_le;             /* above the last finite bound */
            } else if (b.count[i] - prev_cum <= 0) {
                *out = b.le[i];
            } else {
                *out = prev_le + (b.le[i] - prev_le) * (rank - prev_cum)
                                     / (b.count[i] - prev_cum);
            }
            return true;
        }
        prev_le = b.le[i];
        prev_cum = b.count[i];
    }
    return false;
}

struct target {
    const char *name;
    char addr[300];             /* connect address */
    bool is_lb;
    int ready_status;           /* /readyz answer, 0 = unreachable */
    char ready_err[600];
    int metrics_status;         /* /metrics answer, 0 = unreachable */
    char *m1, *m2;              /* the two scrapes */
};

static char *
scrape(struct target *t, const char *path, int *status, const char *token, char *err,
       size_t errlen)
{
    struct ctl_http_client c;
    struct ctl_http_resp r;
    struct bl_buf auth;
    const char *hdrs[2] = { NULL, NULL };
    char *body = NULL;

    bl_buf_init(&auth);
    if (token != NULL) {
        bl_buf_printf(&auth, "Authorization: Bearer %s", token);
        hdrs[0] = auth.data;
    }
    ctl_http_client_init(&c, t->addr, STATUS_TIMEOUT_MS);
    ctl_http_resp_init(&r);
    *status = 0;
    if (ctl_http_request(&c, "GET", path, hdrs, NULL, 0, &r) == 0) {
        *status = r.status;
        body = bl_xstrdup(r.body.data != NULL ? r.body.data : "");
    } else if (err != NULL) {
        snprintf(err, errlen, "%s", c.error);
    }
    ctl_http_resp_deinit(&r);
    ctl_http_client_deinit(&c);
    bl_buf_deinit(&auth);
    return body;
}

static void
fmt_num(char *out, size_t n, bool have, const char *fmt, double v)
{
    if (have) {
        snprintf(out, n, fmt, v);
    } else {
        snprintf(out, n, "-");
    }
}

int
ctl_cmd_status(struct ctl_ctx *ctx)
{
    struct bl_conf *conf;
    struct target *t;
    size_t nt = 0;
    uint64_t window_ms = 1000, t1 = 0, t2 = 0;
    const char *admin_token;
    json_t *jrows = NULL;
    const char *lbm = NULL;     /* the LB's latest scrape */
    int unready = 0;

    if (ctl_wants_help(ctx)) {
        return ctl_usage("status", true);
    }
    for (int i = 0; i < ctx->argc; i++) {
        if (strcmp(ctx->argv[i], "--window") == 0 && i + 1 < ctx->argc) {
            if (bl_time_parse_duration_ms(ctx->argv[++i], &window_ms) != 0
                && strcmp(ctx->argv[i], "0") != 0) {
                ctl_err("status: --window takes a duration like 1s or 500ms");
                return CTL_EXIT_USAGE;
            }
            if (strcmp(ctx->argv[i], "0") == 0) {
                window_ms = 0;
            }
            if (window_ms > 60000) {
                ctl_err("status: --window is at most 60s");
                return CTL_EXIT_USAGE;
            }
        } else {
            ctl_err("status: unexpected argument '%s'", ctx->argv[i]);
            return ctl_usage("status", false);
        }
    }
    conf = ctl_load_conf(ctx);
    if (conf == NULL) {
        return CTL_EXIT_FAIL;
    }
    admin_token = ctl_admin_token(conf);
    t = bl_xcalloc(conf->nnodes + 1, sizeof(*t));
    for (size_t i = 0; i < conf->nnodes; i++) {
        t[nt].name = conf->nodes[i].name;
        ctl_connect_addr(conf->nodes[i].addr, t[nt].addr, sizeof(t[nt].addr));
        nt++;
    }
    if (conf->lb.admin.bind != NULL) {
        t[nt].name = "lb";
        t[nt].is_lb = true;
        ctl_connect_addr(conf->lb.admin.bind, t[nt].addr, sizeof(t[nt].addr));
        nt++;
    }
    /* first pass: readiness and the first scrape */
    for (size_t i = 0; i < nt; i++) {
        char *b;

        if (!t[i].is_lb) {
            b = scrape(&t[i], "/readyz", &t[i].ready_status, NULL, t[i].ready_err,
                       sizeof(t[i].ready_err));
            free(b);
        }
        t[i].m1 = scrape(&t[i], "/metrics", &t[i].metrics_status,
                         t[i].is_lb ? admin_token : NULL,
                         t[i].is_lb ? t[i].ready_err : NULL, sizeof(t[i].ready_err));
    }
    t1 = bl_time_mono_ms();
    if (window_ms > 0) {
        usleep((useconds_t)window_ms * 1000);
        for (size_t i = 0; i < nt; i++) {
            int st;

            if (t[i].m1 != NULL && t[i].metrics_status == 200) {
                t[i].m2 = scrape(&t[i], "/metrics", &st, t[i].is_lb ? admin_token : NULL,
                                 NULL, 0);
                if (st != 200) {
                    BL_FREE(t[i].m2);
                }
            }
        }
        t2 = bl_time_mono_ms();
    }
    for (size_t i = 0; i < nt; i++) {
        if (t[i].is_lb && t[i].metrics_status == 200) {
            lbm = t[i].m2 != NULL ? t[i].m2 : t[i].m1;
        }
    }
    if (ctx->json) {
        jrows = json_array();
    } else {
        printf("%-10s %-22s %-12s %-5s %9s %10s %9s %9s %7s %8s\n", "NAME", "ADDR", "STATE",
               "LB", "IN-FLIGHT", "REQUESTS", "REQ/S", "P99", "HIT%", "COHERENT");
    }
    for (size_t i = 0; i < nt; i++) {
        struct target *x = &t[i];
        const char *m = x->metrics_status == 200 ? (x->m2 != NULL ? x->m2 : x->m1) : NULL;
        const char *pre = x->is_lb ? "blog_lb_" : "blog_node_";
        char nm[128], state[64], c1[32], c2[32], c3[32], c4[32], c5[32], c6[32];
        double req = 0, req0 = 0, inflight = 0, hits = 0, misses = 0, coh = 0, p99 = 0;
        bool have_req, have_rate = false, have_inf, have_hit, have_coh, have_p99;
        double rate = 0;
        const char *lb_view;

        snprintf(nm, sizeof(nm), "%srequests_total", pre);
        have_req = ctl_prom_sum(m, nm, &req);
        if (have_req && x->m2 != NULL && ctl_prom_sum(x->m1, nm, &req0) && t2 > t1) {
            rate = (req - req0) * 1000.0 / (double)(t2 - t1);
            have_rate = true;
        }
        snprintf(nm, sizeof(nm), "%srequests_in_flight", pre);
        have_inf = ctl_prom_sum(m, nm, &inflight);
        if (!have_inf && x->is_lb) {
            have_inf = ctl_prom_sum(m, "blog_lb_node_inflight", &inflight);
        }
        /* the LB's view of this node: blog_lb_node_up{node="NAME"} */
        lb_view = "-";
        if (!x->is_lb && lbm != NULL) {
            double upv;

            if (ctl_prom_sum_label(lbm, "blog_lb_node_up", "node", x->name, &upv)) {
                lb_view = upv >= 1.0 ? "up" : "down";
            } else {
                lb_view = "absent";
            }
        }
        have_hit = ctl_prom_sum(m, "blog_node_cache_hits_total", &hits)
                   && ctl_prom_sum(m, "blog_node_cache_misses_total", &misses)
                   && hits + misses > 0;
        have_coh = ctl_prom_sum(m, "blog_node_cache_coherent", &coh);
        snprintf(nm, sizeof(nm), "%srequest_duration_seconds", pre);
        have_p99 = ctl_prom_quantile(x->m2 != NULL ? x->m1 : NULL, m, nm, 0.99, &p99);
        if (have_p99 == false && x->m2 != NULL) {
            have_p99 = ctl_prom_quantile(NULL, m, nm, 0.99, &p99);    /* lifetime */
        }
        if (x->is_lb) {
            double healthy;

            if (x->metrics_status == 200 && ctl_prom_sum(m, "blog_lb_healthy_nodes", &healthy)) {
                snprintf(state, sizeof(state), "up %.0f/%zu", healthy, conf->nnodes);
            } else if (x->metrics_status == 200) {
                snprintf(state, sizeof(state), "up");
            } else if (x->metrics_status == 401 || x->metrics_status == 403) {
                snprintf(state, sizeof(state), "up (%d)", x->metrics_status);
            } else if (x->metrics_status != 0) {
                snprintf(state, sizeof(state), "http %d", x->metrics_status);
            } else {
                snprintf(state, sizeof(state), "unreachable");
            }
        } else {
            if (x->ready_status == 200) {
                snprintf(state, sizeof(state), "ready");
            } else if (x->ready_status != 0) {
                snprintf(state, sizeof(state), "not ready");
                unready++;
            } else {
                snprintf(state, sizeof(state), "down");
                unready++;
            }
        }
        if (ctx->json) {
            json_t *row = json_pack("{s:s,s:s,s:s,s:s,s:b}", "name", x->name, "addr", x->addr,
                                    "kind", x->is_lb ? "lb" : "node", "state", state,
                                    "metrics", m != NULL);

            if (!x->is_lb) {
                json_object_set_new(row, "lb_view", strcmp(lb_view, "-") == 0 ? json_null()
                                                                           : json_string(lb_view));
            }

            json_object_set_new(row, "in_flight", have_inf ? json_real(inflight) : json_null());
            json_object_set_new(row, "requests", have_req ? json_real(req) : json_null());
            json_object_set_new(row, "requests_per_second",
                                have_rate ? json_real(rate) : json_null());
            json_object_set_new(row, "p99_seconds", have_p99 ? json_real(p99) : json_null());
            json_object_set_new(row, "cache_hit_ratio",
                                have_hit ? json_real(hits / (hits + misses)) : json_null());
            json_object_set_new(row, "coherent", have_coh ? json_boolean(coh >= 1.0)
                                                          : json_null());
            json_array_append_new(jrows, row);
        } else {
            fmt_num(c1, sizeof(c1), have_inf, "%.0f", inflight);
            fmt_num(c2, sizeof(c2), have_req, "%.0f", req);
            fmt_num(c3, sizeof(c3), have_rate, "%.1f", rate);
            fmt_num(c4, sizeof(c4), have_p99, "%.2fms", p99 * 1000.0);
            fmt_num(c5, sizeof(c5), have_hit, "%.1f", have_hit ? 100.0 * hits / (hits + misses)
                                                               : 0.0);
            snprintf(c6, sizeof(c6), "%s", have_coh ? (coh >= 1.0 ? "yes" : "NO") : "-");
            printf("%-10s %-22s %-12s %-5s %9s %10s %9s %9s %7s %8s\n", x->name, x->addr, state,
                   x->is_lb ? "" : lb_view, c1, c2, c3, c4, c5, c6);
        }
    }
    if (ctx->json) {
        ctl_json_print(json_pack("{s:b,s:i,s:o}", "ok", unready == 0, "window_ms",
                                 (json_int_t)window_ms, "components", jrows));
    } else {
        for (size_t i = 0; i < nt; i++) {
            if (t[i].is_lb && t[i].metrics_status == 0) {
                printf("lb: admin %s unreachable (%s)\n", t[i].addr, t[i].ready_err);
            } else if (t[i].is_lb && (t[i].metrics_status == 401 || t[i].metrics_status == 403)) {
                printf("lb: admin /metrics needs the admin token: set BLOGSCALE_ADMIN_TOKEN\n");
            } else if (!t[i].is_lb && t[i].ready_status == 0) {
                printf("%s: %s\n", t[i].name, t[i].ready_err);
            }
        }
        if (unready > 0) {
            printf("%d of %zu node%s not ready\n", unready, conf->nnodes,
                   conf->nnodes == 1 ? "" : "s");
        }
    }
    for (size_t i = 0; i < nt; i++) {
        free(t[i].m1);
        free(t[i].m2);
    }
    free(t);
    bl_conf_destroy(conf);
    return unready == 0 ? CTL_EXIT_OK : CTL_EXIT_FAIL;
}
