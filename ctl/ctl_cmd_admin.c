/*
 * Commands that drive the running LBs through their admin API (issue 7) or blog-ctld
 * (issue 8 part 3): nodes, cache flush, scale status. `nodes list` reads the LB's live
 * view from its admin /metrics (which exists today). The changing ones (nodes add, remove,
 * drain, undrain), cache flush and scale status need admin endpoints that are not built
 * yet: they check their arguments and then say so (exit 1). Registered now so that --help
 * lists them and scripts can rely on the names.
 */
#include "ctl_cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bl/bl_util.h"

static int
needs_admin(struct ctl_ctx *ctx, const char *what)
{
    if (ctx->json) {
        ctl_json_print(json_pack("{s:b,s:s}", "ok", 0, "error",
                                 "needs the LB admin API (not built yet)"));
    }
    ctl_err("%s needs the LB admin API's management endpoints (not built yet); `blogctl "
            "status` and `blogctl nodes list` show the nodes' health meanwhile", what);
    return CTL_EXIT_FAIL;
}

static bool
sub_is(const struct ctl_ctx *ctx, const char *const *subs, size_t nsubs)
{
    if (ctx->argc < 1) {
        return false;
    }
    for (size_t i = 0; i < nsubs; i++) {
        if (strcmp(ctx->argv[0], subs[i]) == 0) {
            return true;
        }
    }
    return false;
}

static int
nodes_list(struct ctl_ctx *ctx)
{
    struct bl_conf *conf = ctl_load_conf(ctx);
    char err[600], **names = NULL;
    char *m;
    size_t n, total;
    const char **all;
    json_t *rows = NULL;

    if (conf == NULL) {
        return CTL_EXIT_FAIL;
    }
    m = ctl_lb_metrics(conf, err, sizeof(err));
    if (m == NULL) {
        if (ctx->json) {
            ctl_json_print(json_pack("{s:b,s:s}", "ok", 0, "error", err));
        }
        ctl_err("nodes list: %s", err);
        bl_conf_destroy(conf);
        return CTL_EXIT_FAIL;
    }
    /* the LB's node set first (its order), then config nodes the LB does not have */
    n = ctl_prom_label_values(m, "blog_lb_node_up", "node", &names);
    all = bl_xcalloc(n + conf->nnodes + 1, sizeof(*all));
    total = 0;
    for (size_t i = 0; i < n; i++) {
        all[total++] = names[i];
    }
    for (size_t i = 0; i < conf->nnodes; i++) {
        bool have = false;

        for (size_t k = 0; k < n; k++) {
            have = have || strcmp(names[k], conf->nodes[i].name) == 0;
        }
        if (!have) {
            all[total++] = conf->nodes[i].name;
        }
    }
    if (ctx->json) {
        rows = json_array();
    } else {
        printf("%-12s %-22s %-8s %9s %6s %6s %9s %8s %8s\n", "NAME", "ADDR", "LB", "IN-FLIGHT",
               "CONNS", "QUEUED", "EJECTIONS", "RETRIES", "FAILURES");
    }
    for (size_t i = 0; i < total; i++) {
        const struct bl_conf_node_entry *e = bl_conf_find_node(conf, all[i]);
        static const char *const metric[] = {
            "blog_lb_node_inflight", "blog_lb_node_connections", "blog_lb_queue_depth",
            "blog_lb_node_ejections_total", "blog_lb_node_retries_total",
            "blog_lb_node_failures_total",
        };
        static const char *const key[] = {
            "in_flight", "connections", "queued", "ejections", "retries", "failures",
        };
        double v[6], upv = 0;
        bool have[6], in_lb = i < n;
        const char *state;
        char cell[6][32];

        in_lb = in_lb && ctl_prom_sum_label(m, "blog_lb_node_up", "node", all[i], &upv);
        state = !in_lb ? "absent" : upv >= 1.0 ? "up" : "down";
        for (size_t k = 0; k < 6; k++) {
            have[k] = in_lb && ctl_prom_sum_label(m, metric[k], "node", all[i], &v[k]);
            if (have[k]) {
                snprintf(cell[k], sizeof(cell[k]), "%.0f", v[k]);
            } else {
                snprintf(cell[k], sizeof(cell[k]), "-");
            }
        }
        if (ctx->json) {
            json_t *row = json_pack("{s:s,s:s?,s:b,s:s}", "name", all[i], "addr",
                                    e != NULL ? e->addr : NULL, "in_lb", in_lb, "state", state);

            for (size_t k = 0; k < 6; k++) {
                json_object_set_new(row, key[k], have[k] ? json_integer((json_int_t)v[k])
                                                         : json_null());
            }
            json_array_append_new(rows, row);
        } else {
            printf("%-12s %-22s %-8s %9s %6s %6s %9s %8s %8s\n", all[i],
                   e != NULL ? e->addr : "-", state, cell[0], cell[1], cell[2], cell[3],
                   cell[4], cell[5]);
        }
    }
    if (ctx->json) {
        ctl_json_print(json_pack("{s:b,s:s,s:o}", "ok", 1, "lb", conf->lb.admin.bind,
                                 "nodes", rows));
    } else {
        printf("(the LB's live view from %s/metrics; \"absent\": in %s but not in the LB)\n",
               conf->lb.admin.bind, conf->file);
    }
    for (size_t i = 0; i < n; i++) {
        free(names[i]);
    }
    free(names);
    free(all);
    free(m);
    bl_conf_destroy(conf);
    return CTL_EXIT_OK;
}

int
ctl_cmd_nodes(struct ctl_ctx *ctx)
{
    static const char *const subs[] = { "list", "add", "remove", "drain", "undrain" };
    int want;

    if (ctl_wants_help(ctx)) {
        return ctl_usage("nodes", true);
    }
    if (!sub_is(ctx, subs, 5)) {
        if (ctx->argc >= 1) {
            return ctl_unknown_sub("nodes", ctx->argv[0], subs, 5);
        }
        return ctl_usage("nodes", false);
    }
    want = strcmp(ctx->argv[0], "list") == 0 ? 1 : strcmp(ctx->argv[0], "add") == 0 ? 3 : 2;
    if (ctx->argc != want) {
        ctl_err("nodes %s: wrong number of arguments", ctx->argv[0]);
        return ctl_usage("nodes", false);
    }
    if (strcmp(ctx->argv[0], "list") == 0) {
        return nodes_list(ctx);
    }
    {
        char what[32];

        snprintf(what, sizeof(what), "nodes %s", ctx->argv[0]);
        return needs_admin(ctx, what);
    }
}

int
ctl_cmd_cache(struct ctl_ctx *ctx)
{
    static const char *const subs[] = { "flush" };

    if (ctl_wants_help(ctx)) {
        return ctl_usage("cache", true);
    }
    if (!sub_is(ctx, subs, 1) || ctx->argc > 2) {
        if (ctx->argc >= 1 && !sub_is(ctx, subs, 1)) {
            return ctl_unknown_sub("cache", ctx->argv[0], subs, 1);
        }
        return ctl_usage("cache", false);
    }
    return needs_admin(ctx, "cache flush");
}

int
ctl_cmd_scale(struct ctl_ctx *ctx)
{
    static const char *const subs[] = { "status" };

    if (ctl_wants_help(ctx)) {
        return ctl_usage("scale", true);
    }
    if (!sub_is(ctx, subs, 1) || ctx->argc != 1) {
        if (ctx->argc >= 1 && !sub_is(ctx, subs, 1)) {
            return ctl_unknown_sub("scale", ctx->argv[0], subs, 1);
        }
        return ctl_usage("scale", false);
    }
    return needs_admin(ctx, "scale status");
}
