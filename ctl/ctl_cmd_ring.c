/*
 * blogctl ring plan add|remove NAME, ring verify, route /posts/ID.
 * `ring verify` compares every LB's GET /ring digest; `route` asks the LBs' GET /ring/route
 * when they have it. `ring plan` and the fallback of `route` are computed locally from the config's node set with the same
 * Maglev code and id hash the LB uses (bl_maglev, bl_hash64 of the percent-decoded id).
 */
#include "ctl_cmd.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bl/bl_buf.h"
#include "bl/bl_err.h"
#include "bl/bl_hash.h"
#include "bl/bl_maglev.h"
#include "bl/bl_util.h"
#include "ctl_lbadmin.h"

#define RING_SAMPLES 1000000u

static bool
valid_node_name(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 64) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
              || c == '_' || c == '.' || c == '-')) {
            return false;
        }
    }
    return true;
}

struct ring_set {
    const char **names;
    uint32_t *weights;
    size_t n;
};

static void
ring_set_from_conf(const struct bl_conf *conf, struct ring_set *s, size_t extra)
{
    s->names = bl_xcalloc(conf->nnodes + extra + 1, sizeof(*s->names));
    s->weights = bl_xcalloc(conf->nnodes + extra + 1, sizeof(*s->weights));
    s->n = conf->nnodes;
    for (size_t i = 0; i < conf->nnodes; i++) {
        s->names[i] = conf->nodes[i].name;
        s->weights[i] = conf->nodes[i].weight;
    }
}

static void
ring_set_free(struct ring_set *s)
{
    BL_FREE(s->names);
    BL_FREE(s->weights);
}

/*
 * Counts the share of ids whose owner changes between <a> and <b> (tables over the sets
 * <sa>, <sb>), and the moves from each node of <sa> to each node of <sb> into <moves>
 * (sa->n x (sb->n + 1), last column = "no owner"). Exact over the slots when both tables
 * have the same size, else estimated from RING_SAMPLES hashes.
 */
static double
ring_moved(const struct bl_maglev *a, const struct ring_set *sa, const struct bl_maglev *b,
           const struct ring_set *sb, uint64_t *moves, bool *exact)
{
    uint64_t moved = 0, total;
    size_t cols = sb->n + 1;

    if (bl_maglev_size(a) == bl_maglev_size(b)) {
        const int32_t *x = bl_maglev_slots(a), *y = bl_maglev_slots(b);

        total = bl_maglev_size(a);
        for (uint32_t i = 0; i < bl_maglev_size(a); i++) {
            const char *from = x[i] >= 0 ? sa->names[x[i]] : NULL;
            const char *to = y[i] >= 0 ? sb->names[y[i]] : NULL;

            if (from != NULL && (to == NULL || strcmp(from, to) != 0)) {
                moved++;
                moves[(size_t)x[i] * cols + (y[i] >= 0 ? (size_t)y[i] : sb->n)]++;
            }
        }
        *exact = true;
    } else {
        uint64_t h = 0x243f6a8885a308d3ull;

        total = RING_SAMPLES;
        for (uint32_t i = 0; i < RING_SAMPLES; i++) {
            int ia, ib;

            h = bl_hash64(&i, sizeof(i));
            ia = bl_maglev_lookup(a, h);
            ib = bl_maglev_lookup(b, h);
            if (ia >= 0 && (ib < 0 || strcmp(sa->names[ia], sb->names[ib]) != 0)) {
                moved++;
                moves[(size_t)ia * cols + (ib >= 0 ? (size_t)ib : sb->n)]++;
            }
        }
        *exact = false;
    }
    for (size_t i = 0; i < sa->n * cols; i++) {
        moves[i] = moves[i] * 1000000ull / total;       /* parts per million */
    }
    return total ? (double)moved / (double)total : 0.0;
}

static int
ring_plan(struct ctl_ctx *ctx, struct bl_conf *conf, bool add, const char *name,
          uint32_t weight)
{
    struct ring_set before, after;
    struct bl_maglev *a = NULL, *b = NULL;
    uint64_t *moves = NULL;
    uint64_t wsum_before = 0, wsum_after = 0, wname = 0;
    double share, ideal;
    bool exact;
    int rc = CTL_EXIT_FAIL;

    ring_set_from_conf(conf, &before, 0);
    ring_set_from_conf(conf, &after, 1);
    if (add) {
        if (bl_conf_find_node(conf, name) != NULL) {
            ctl_err("ring plan add: %s is already in nodes: of %s", name, conf->file);
            goto out;
        }
        after.names[after.n] = name;
        after.weights[after.n] = weight;
        after.n++;
        wname = weight;
    } else {
        size_t j = 0;
        bool found = false;

        for (size_t i = 0; i < before.n; i++) {
            if (strcmp(before.names[i], name) == 0) {
                found = true;
                wname = before.weights[i];
                continue;
            }
            after.names[j] = before.names[i];
            after.weights[j] = before.weights[i];
            j++;
        }
        after.n = j;
        if (!found) {
            ctl_err("ring plan remove: no node named %s in %s", name, conf->file);
            goto out;
        }
        if (after.n == 0) {
            ctl_err("ring plan remove: %s is the only node; every id would lose its owner",
                    name);
            goto out;
        }
    }
    for (size_t i = 0; i < before.n; i++) {
        wsum_before += before.weights[i];
    }
    for (size_t i = 0; i < after.n; i++) {
        wsum_after += after.weights[i];
    }
    a = bl_maglev_create(before.names, before.weights, before.n, 0);
    b = bl_maglev_create(after.names, after.weights, after.n, 0);
    if (a == NULL || b == NULL) {
        ctl_err("ring plan: cannot build the Maglev tables (node names must be distinct)");
        goto out;
    }
    moves = bl_xcalloc(before.n * (after.n + 1), sizeof(*moves));
    share = ring_moved(a, &before, b, &after, moves, &exact);
    ideal = add ? (wsum_after ? (double)wname / (double)wsum_after : 0.0)
                : (wsum_before ? (double)wname / (double)wsum_before : 0.0);
    if (ctx->json) {
        json_t *flows = json_array();

        for (size_t i = 0; i < before.n; i++) {
            for (size_t k = 0; k <= after.n; k++) {
                uint64_t ppm = moves[i * (after.n + 1) + k];

                if (ppm == 0) {
                    continue;
                }
                json_array_append_new(flows, json_pack("{s:s,s:s?,s:f}", "from", before.names[i],
                                                       "to", k < after.n ? after.names[k] : NULL,
                                                       "share", (double)ppm / 1e6));
            }
        }
        ctl_json_print(json_pack("{s:b,s:s,s:s,s:i,s:i,s:f,s:f,s:b,s:o}", "ok", 1,
                                 "change", add ? "add" : "remove", "node", name,
                                 "nodes_before", (json_int_t)before.n,
                                 "nodes_after", (json_int_t)after.n, "moved_share", share,
                                 "ideal_share", ideal, "exact", exact, "flows", flows));
    } else {
        printf("%s %s: %.2f%% of post ids change owner (ideal %.2f%%), %zu -> %zu "
               "nodes%s\n", add ? "adding" : "removing", name, share * 100.0, ideal * 100.0,
               before.n, after.n, exact ? "" : " (estimated from 1M sample ids)");
        for (size_t i = 0; i < before.n; i++) {
            for (size_t k = 0; k <= after.n; k++) {
                uint64_t ppm = moves[i * (after.n + 1) + k];

                if (ppm == 0) {
                    continue;
                }
                printf("  %-16s -> %-16s %6.2f%%\n", before.names[i],
                       k < after.n ? after.names[k] : "-", (double)ppm / 1e4);
            }
        }
        printf("(computed from %s; each LB builds the same table from the same node set)\n",
               conf->file);
    }
    rc = CTL_EXIT_OK;
out:
    BL_FREE(moves);
    bl_maglev_destroy(a);
    bl_maglev_destroy(b);
    ring_set_free(&before);
    ring_set_free(&after);
    return rc;
}

#define RING_ADMIN_TIMEOUT_MS 5000
#define RING_MAX_LBS 64

/* ring verify: every LB's GET /ring digest must agree. */
static int
ring_verify(struct ctl_ctx *ctx)
{
    struct bl_conf *conf = ctl_load_conf(ctx);
    const char *lbs[RING_MAX_LBS];
    const char *token;
    size_t nlbs;
    json_t *rows;
    char *first = NULL;
    bool agree = true;
    int failed = 0;

    if (conf == NULL) {
        return CTL_EXIT_FAIL;
    }
    token = ctl_admin_token(conf);
    nlbs = ctl_lb_admins(ctx, conf, lbs, RING_MAX_LBS);
    rows = json_array();
    for (size_t l = 0; l < nlbs; l++) {
        struct ctl_admin_resp r;
        char err[700];
        const char *digest;
        int rc;

        ctl_admin_resp_init(&r);
        rc = ctl_admin_call(lbs[l], token, "GET", "/ring", NULL, RING_ADMIN_TIMEOUT_MS, &r, err,
                            sizeof(err));
        digest = json_string_value(json_object_get(r.json, "digest"));
        if (rc == 0 && (r.status != 200 || digest == NULL)) {
            ctl_admin_describe(&r, err, sizeof(err));
            rc = BL_EUNAVAIL;
        }
        if (rc != 0) {
            failed++;
            json_array_append_new(rows, json_pack("{s:s,s:b,s:s}", "lb", lbs[l], "ok", 0,
                                                  "error", err));
        } else {
            json_t *nodes = json_object_get(r.json, "nodes");

            if (first == NULL) {
                first = bl_xstrdup(digest);
            } else if (strcmp(first, digest) != 0) {
                agree = false;
            }
            json_array_append_new(rows, json_pack("{s:s,s:b,s:s,s:I,s:O?}", "lb", lbs[l], "ok", 1,
                                                  "digest", digest, "size",
                                                  json_integer_value(json_object_get(r.json,
                                                                                     "size")),
                                                  "nodes", nodes));
        }
        ctl_admin_resp_deinit(&r);
    }
    agree = agree && failed == 0 && first != NULL;
    if (ctx->json) {
        ctl_json_print(json_pack("{s:b,s:b,s:o}", "ok", agree, "agree", agree, "lbs", rows));
    } else {
        json_t *row;
        size_t i;

        json_array_foreach(rows, i, row) {
            const char *d = json_string_value(json_object_get(row, "digest"));

            if (d == NULL) {
                printf("LB %-22s unreachable or refused: %s\n",
                       json_string_value(json_object_get(row, "lb")),
                       json_string_value(json_object_get(row, "error")));
            } else {
                printf("LB %-22s digest %s  size %lld  %zu nodes%s\n",
                       json_string_value(json_object_get(row, "lb")), d,
                       (long long)json_integer_value(json_object_get(row, "size")),
                       json_array_size(json_object_get(row, "nodes")),
                       first != NULL && strcmp(d, first) != 0 ? "  DIFFERS" : "");
            }
        }
        if (agree) {
            printf("ring verify: %zu LB%s agree\n", nlbs, nlbs == 1 ? "" : "s");
        } else if (failed > 0) {
            ctl_err("ring verify: %d LB%s did not answer GET /ring", failed,
                    failed == 1 ? "" : "s");
        } else {
            ctl_err("ring verify: the LBs' Maglev tables differ (different node sets or "
                    "weights): compare `blogctl nodes list` on each");
        }
        json_decref(rows);
    }
    free(first);
    bl_conf_destroy(conf);
    return agree ? CTL_EXIT_OK : CTL_EXIT_FAIL;
}

/*
 * route through the LBs' own GET /ring/route. Returns -1 when the first LB has no such
 * endpoint (or does not answer), so the caller computes it locally instead.
 */
static int
route_by_api(struct ctl_ctx *ctx, struct bl_conf *conf, const char *arg, const char *dec,
             size_t dlen)
{
    const char *lbs[RING_MAX_LBS];
    const char *token = ctl_admin_token(conf);
    size_t nlbs = ctl_lb_admins(ctx, conf, lbs, RING_MAX_LBS);
    struct bl_buf path;
    json_t *rows = json_array();
    int failed = 0;
    static const char hex[] = "0123456789ABCDEF";

    bl_buf_init(&path);
    bl_buf_append_str(&path, "/ring/route?id=");
    for (size_t i = 0; i < dlen; i++) {
        unsigned char c = (unsigned char)dec[i];

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
            || c == '-' || c == '_' || c == '.' || c == '~') {
            bl_buf_append(&path, &dec[i], 1);
        } else {
            char e[3] = { '%', hex[c >> 4], hex[c & 15] };

            bl_buf_append(&path, e, 3);
        }
    }
    for (size_t l = 0; l < nlbs; l++) {
        struct ctl_admin_resp r;
        char err[700];
        int rc;

        ctl_admin_resp_init(&r);
        rc = ctl_admin_call(lbs[l], token, "GET", path.data, NULL, RING_ADMIN_TIMEOUT_MS, &r, err,
                            sizeof(err));
        if (rc == 0 && (r.status != 200 || !json_is_object(r.json)
                        || json_object_get(r.json, "owner") == NULL)) {
            ctl_admin_describe(&r, err, sizeof(err));
            rc = BL_EUNAVAIL;
        }
        if (rc != 0 && l == 0) {
            ctl_admin_resp_deinit(&r);
            json_decref(rows);
            bl_buf_deinit(&path);
            return -1;
        }
        if (rc != 0) {
            failed++;
            json_array_append_new(rows, json_pack("{s:s,s:b,s:s}", "lb", lbs[l], "ok", 0, "error",
                                                  err));
        } else {
            json_t *row = json_deep_copy(r.json);

            json_object_set_new(row, "lb", json_string(lbs[l]));
            json_object_set_new(row, "ok", json_true());
            json_array_append_new(rows, row);
        }
        ctl_admin_resp_deinit(&r);
    }
    bl_buf_deinit(&path);
    if (ctx->json) {
        /* top level: the first LB's answer (owner, preferences, pick = its "chosen",
         * bounded_load_spill); "lbs": every LB's */
        json_t *f = json_array_get(rows, 0);

        ctl_json_print(json_pack("{s:b,s:s,s:s,s:O?,s:O?,s:O?,s:O?,s:o}", "ok", failed == 0,
                                 "id", arg, "source", "lb", "owner", json_object_get(f, "owner"),
                                 "preferences", json_object_get(f, "preferences"), "pick",
                                 json_object_get(f, "chosen"), "bounded_load_spill",
                                 json_object_get(f, "spill"), "lbs", rows));
    } else {
        json_t *row;
        size_t i;

        json_array_foreach(rows, i, row) {
            const char *lb = json_string_value(json_object_get(row, "lb"));
            json_t *prefs = json_object_get(row, "preferences"), *p;
            const char *owner = json_string_value(json_object_get(row, "owner"));
            const char *chosen = json_string_value(json_object_get(row, "chosen"));
            size_t k;

            if (!json_is_true(json_object_get(row, "ok"))) {
                printf("LB %s: %s\n", lb, json_string_value(json_object_get(row, "error")));
                continue;
            }
            printf("LB %s: %s -> owner %s", lb, arg, owner != NULL ? owner : "none");
            if (json_array_size(prefs) > 1) {
                printf(", then");
                json_array_foreach(prefs, k, p) {
                    const char *pn = json_is_string(p) ? json_string_value(p)
                                                       : json_string_value(json_object_get(p,
                                                                                           "name"));

                    if (k > 0 && pn != NULL) {
                        printf(" %s", pn);
                    }
                }
            }
            printf("\n  now goes to %s%s\n", chosen != NULL ? chosen : "no node (503)",
                   json_is_true(json_object_get(row, "spill"))
                       ? " (bounded load: spilled off the owner)" : "");
        }
        json_decref(rows);
    }
    return failed == 0 ? CTL_EXIT_OK : CTL_EXIT_FAIL;
}

int
ctl_cmd_ring(struct ctl_ctx *ctx)
{
    struct bl_conf *conf;
    const char *name = NULL, *op = NULL;
    unsigned long weight = 1;
    int rc;

    if (ctl_wants_help(ctx)) {
        return ctl_usage("ring", true);
    }
    if (ctx->argc >= 1 && strcmp(ctx->argv[0], "verify") == 0) {
        if (ctx->argc != 1) {
            ctl_err("ring verify: takes no arguments (--lb-admin ADDR to name the LBs)");
            return ctl_usage("ring", false);
        }
        return ring_verify(ctx);
    }
    if (ctx->argc < 1 || strcmp(ctx->argv[0], "plan") != 0) {
        static const char *const subs[] = { "plan", "verify" };

        if (ctx->argc >= 1) {
            return ctl_unknown_sub("ring", ctx->argv[0], subs, 2);
        }
        return ctl_usage("ring", false);
    }
    for (int i = 1; i < ctx->argc; i++) {
        const char *a = ctx->argv[i];

        if (strcmp(a, "--weight") == 0 && i + 1 < ctx->argc) {
            char *end;

            weight = strtoul(ctx->argv[++i], &end, 10);
            if (*end != '\0' || weight == 0 || weight > 1000) {
                ctl_err("ring plan: --weight must be 1..1000");
                return CTL_EXIT_USAGE;
            }
        } else if (a[0] == '-') {
            ctl_err("ring plan: unknown option '%s'", a);
            return ctl_usage("ring", false);
        } else if (op == NULL) {
            op = a;
        } else if (name == NULL) {
            name = a;
        } else {
            ctl_err("ring plan: unexpected argument '%s'", a);
            return ctl_usage("ring", false);
        }
    }
    if (op == NULL || name == NULL || (strcmp(op, "add") != 0 && strcmp(op, "remove") != 0)) {
        ctl_err("ring plan: expected `add NAME` or `remove NAME`");
        return ctl_usage("ring", false);
    }
    if (!valid_node_name(name)) {
        ctl_err("ring plan: '%s' is not a node name ([A-Za-z0-9_.-], 1 to 64 characters)", name);
        return CTL_EXIT_USAGE;
    }
    conf = ctl_load_conf(ctx);
    if (conf == NULL) {
        return CTL_EXIT_FAIL;
    }
    rc = ring_plan(ctx, conf, strcmp(op, "add") == 0, name, (uint32_t)weight);
    bl_conf_destroy(conf);
    return rc;
}

static int
hexval(int ch)
{
    if (ch >= '0' && ch <= '9') {
        return ch - '0';
    }
    if (ch >= 'a' && ch <= 'f') {
        return ch - 'a' + 10;
    }
    if (ch >= 'A' && ch <= 'F') {
        return ch - 'A' + 10;
    }
    return -1;
}

/* Decodes %XX in <s>/<n> into <out> (at most <max> bytes), as the LB does. Length or -1. */
static long
pct_decode(const char *s, size_t n, char *out, size_t max)
{
    size_t j = 0;

    for (size_t i = 0; i < n; i++) {
        int ch = (unsigned char)s[i];

        if (ch == '%') {
            int hi, lo;

            if (i + 2 >= n) {
                return -1;
            }
            hi = hexval((unsigned char)s[i + 1]);
            lo = hexval((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0) {
                return -1;
            }
            ch = hi * 16 + lo;
            i += 2;
        }
        if (j == max) {
            return -1;
        }
        out[j++] = (char)ch;
    }
    return (long)j;
}

/*
 * The live pick of one LB for hash <h>, as lb_algo_maglev does it: the owner if it is up
 * and under the bounded-load cap ceil(c * (total_inflight + 1) / healthy), else the first
 * preference that is; when none is under the cap, the first healthy preference. Returns
 * the index or -1 (no healthy node); *spilled says the cap moved it off a healthy owner.
 */
static int
live_pick(const struct bl_maglev *m, size_t n, uint64_t h, const bool *up,
          const double *inflight, double bounded_load, double *cap_out, bool *spilled)
{
    int prefs[64];
    size_t np, nup = 0;
    double total = 0, cap = 1e300;
    int first = -1;

    *spilled = false;
    for (size_t i = 0; i < n; i++) {
        nup += up[i];
        total += inflight[i];
    }
    if (bounded_load > 0 && nup > 0) {
        cap = ceil(bounded_load * (total + 1) / (double)nup);
    }
    *cap_out = cap;
    np = bl_maglev_fallbacks(m, h, prefs, BL_MIN(n, BL_ARRAY_SIZE(prefs)));
    for (size_t i = 0; i < np; i++) {
        int idx = prefs[i];

        if (!up[idx]) {
            continue;
        }
        if (first < 0) {
            first = idx;
        }
        if (inflight[idx] < cap) {
            *spilled = idx != first;
            return idx;
        }
    }
    return first;
}

int
ctl_cmd_route(struct ctl_ctx *ctx)
{
    struct bl_conf *conf;
    struct ring_set set;
    struct bl_maglev *m;
    const char *arg, *id;
    char dec[512], err[600] = "";
    long dlen;
    int prefs[64];
    size_t np;
    uint64_t h;
    char *lbm, **lbnames = NULL;
    size_t nlb = 0;
    bool *up = NULL;
    double *inflight = NULL;

    if (ctl_wants_help(ctx)) {
        return ctl_usage("route", true);
    }
    if (ctx->argc != 1) {
        return ctl_usage("route", false);
    }
    arg = ctx->argv[0];
    if (strncmp(arg, "/posts/", 7) == 0) {
        id = arg + 7;
    } else if (strncmp(arg, "/assets/", 8) == 0) {
        id = arg + 8;
    } else if (arg[0] != '/') {
        id = arg;
    } else {
        ctl_err("route: only /posts/ID and /assets/ID route by id (everything else goes to the "
                "less loaded of two random nodes)");
        return CTL_EXIT_USAGE;
    }
    dlen = pct_decode(id, strcspn(id, "?"), dec, sizeof(dec));
    if (dlen <= 0) {
        ctl_err("route: bad id '%s'", id);
        return CTL_EXIT_USAGE;
    }
    conf = ctl_load_conf(ctx);
    if (conf == NULL) {
        return CTL_EXIT_FAIL;
    }
    /* the LBs' own answer (GET /ring/route) when they have it */
    {
        int rc = route_by_api(ctx, conf, arg, dec, (size_t)dlen);

        if (rc >= 0) {
            bl_conf_destroy(conf);
            return rc;
        }
    }
    /* else the LB's live node set from its /metrics when its admin API answers, else the
     * config's */
    lbm = ctl_lb_metrics(conf, err, sizeof(err));
    if (lbm != NULL) {
        nlb = ctl_prom_label_values(lbm, "blog_lb_node_up", "node", &lbnames);
        if (nlb == 0) {
            snprintf(err, sizeof(err), "the LB reports no nodes");
        }
    }
    if (nlb > 0) {
        set.names = bl_xcalloc(nlb, sizeof(*set.names));
        set.weights = bl_xcalloc(nlb, sizeof(*set.weights));
        set.n = nlb;
        up = bl_xcalloc(nlb, sizeof(*up));
        inflight = bl_xcalloc(nlb, sizeof(*inflight));
        for (size_t i = 0; i < nlb; i++) {
            const struct bl_conf_node_entry *e = bl_conf_find_node(conf, lbnames[i]);
            double v = 0;

            set.names[i] = lbnames[i];
            set.weights[i] = e != NULL ? e->weight : 1;
            up[i] = ctl_prom_sum_label(lbm, "blog_lb_node_up", "node", lbnames[i], &v) && v >= 1;
            v = 0;
            (void)ctl_prom_sum_label(lbm, "blog_lb_node_inflight", "node", lbnames[i], &v);
            inflight[i] = v;
        }
    } else {
        ring_set_from_conf(conf, &set, 0);
    }
    m = bl_maglev_create(set.names, set.weights, set.n, 0);
    if (m == NULL) {
        ctl_err("route: cannot build the Maglev table");
        goto fail;
    }
    h = bl_hash64(dec, (size_t)dlen);
    np = bl_maglev_fallbacks(m, h, prefs, BL_MIN(set.n, BL_ARRAY_SIZE(prefs)));
    {
        int pick = -1;
        bool spilled = false;
        double cap = 0;

        if (nlb > 0) {
            pick = live_pick(m, set.n, h, up, inflight, conf->lb.balance.bounded_load, &cap,
                             &spilled);
        }
        if (ctx->json) {
            json_t *p = json_array();
            json_t *doc;

            for (size_t i = 0; i < np; i++) {
                json_t *e = json_pack("{s:s}", "node", set.names[prefs[i]]);

                if (nlb > 0) {
                    json_object_set_new(e, "up", json_boolean(up[prefs[i]]));
                    json_object_set_new(e, "in_flight", json_integer((json_int_t)inflight[prefs[i]]));
                }
                json_array_append_new(p, e);
            }
            doc = json_pack("{s:b,s:s,s:s?,s:o,s:s}", "ok", 1, "id", id,
                            "owner", np > 0 ? set.names[prefs[0]] : NULL, "preferences", p,
                            "source", nlb > 0 ? "lb" : "config");
            if (nlb > 0) {
                json_object_set_new(doc, "pick", pick >= 0 ? json_string(set.names[pick])
                                                           : json_null());
                json_object_set_new(doc, "bounded_load_spill", json_boolean(spilled));
                json_object_set_new(doc, "bounded_load_cap",
                                    conf->lb.balance.bounded_load > 0 ? json_real(cap)
                                                                      : json_null());
            }
            ctl_json_print(doc);
        } else {
            printf("%s -> owner %s", arg, np > 0 ? set.names[prefs[0]] : "none");
            if (np > 1) {
                printf(", then");
                for (size_t i = 1; i < np; i++) {
                    printf(" %s", set.names[prefs[i]]);
                }
            }
            printf("\n");
            if (nlb > 0) {
                printf("LB %s: ", conf->lb.admin.bind);
                if (pick < 0) {
                    printf("no healthy node: the request would get 503\n");
                } else if (pick == prefs[0]) {
                    printf("goes to %s (the owner: up, %.0f in flight)\n", set.names[pick],
                           inflight[pick]);
                } else if (!up[prefs[0]]) {
                    printf("goes to %s (the owner %s is down)\n", set.names[pick],
                           set.names[prefs[0]]);
                } else {
                    printf("goes to %s (bounded load: %s has %.0f in flight, cap %.0f)\n",
                           set.names[pick], set.names[prefs[0]], inflight[prefs[0]], cap);
                }
                for (size_t i = 0; i < np; i++) {
                    printf("  %-16s %-5s %6.0f in flight\n", set.names[prefs[i]],
                           up[prefs[i]] ? "up" : "down", inflight[prefs[i]]);
                }
            } else {
                printf("(from the node set of %s, as every LB with that set computes it; the "
                       "LB's live view is not available: %s)\n", conf->file, err);
            }
        }
    }
    bl_maglev_destroy(m);
    for (size_t i = 0; i < nlb; i++) {
        free(lbnames[i]);
    }
    free(lbnames);
    free(up);
    free(inflight);
    free(lbm);
    ring_set_free(&set);
    bl_conf_destroy(conf);
    return CTL_EXIT_OK;
fail:
    for (size_t i = 0; i < nlb; i++) {
        free(lbnames[i]);
    }
    free(lbnames);
    free(up);
    free(inflight);
    free(lbm);
    ring_set_free(&set);
    bl_conf_destroy(conf);
    return CTL_EXIT_FAIL;
}
