/*
 * Commands that drive the running LBs through their admin API (issue 7) or blog-ctld
 * (issue 8 part 3): nodes, cache flush, scale status. `nodes list` reads the LB's live
 * view from its admin /metrics (which exists today); `cache flush` asks every node of the
 * config directly (POST /_cache/flush, write token). The changing ones (nodes add, remove,
 * drain, undrain) and scale status need admin endpoints that are not built yet: they check
 * their arguments and then say so (exit 1). Registered now so that --help lists them and
 * scripts can rely on the names.
 */
#include "ctl_cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bl/bl_buf.h"
#include "bl/bl_util.h"
#include "ctl_http.h"

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

static bool
is_post_id(const char *s)
{
    size_t n = strlen(s);

    if (n != 24) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];

        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
            return false;
        }
    }
    return true;
}

int
ctl_cmd_cache(struct ctl_ctx *ctx)
{
    static const char *const subs[] = { "flush" };
    const char *id = NULL, *token = NULL;
    struct bl_conf *conf;
    struct bl_buf path, auth;
    json_t *rows = NULL;
    int failed = 0;

    if (ctl_wants_help(ctx)) {
        return ctl_usage("cache", true);
    }
    if (!sub_is(ctx, subs, 1)) {
        if (ctx->argc >= 1) {
            return ctl_unknown_sub("cache", ctx->argv[0], subs, 1);
        }
        return ctl_usage("cache", false);
    }
    for (int i = 1; i < ctx->argc; i++) {
        const char *a = ctx->argv[i];

        if (strcmp(a, "--token") == 0 && i + 1 < ctx->argc) {
            token = ctx->argv[++i];
        } else if (strncmp(a, "--token=", 8) == 0) {
            token = a + 8;
        } else if (a[0] == '-' && a[1] != '\0') {
            ctl_err("cache flush: unknown option '%s'", a);
            return ctl_usage("cache", false);
        } else if (id == NULL) {
            id = strncmp(a, "/posts/", 7) == 0 ? a + 7 : a;
        } else {
            ctl_err("cache flush: unexpected argument '%s'", a);
            return ctl_usage("cache", false);
        }
    }
    if (id != NULL && !is_post_id(id)) {
        ctl_err("cache flush: '%s' is not a post id (24 hex digits)", id);
        return CTL_EXIT_USAGE;
    }
    if (token == NULL) {
        token = getenv("BLOGSCALE_TOKEN");
    }
    conf = ctl_load_conf(ctx);
    if (conf == NULL) {
        return CTL_EXIT_FAIL;
    }
    if (token == NULL && !conf->cluster.allow_anonymous_writes) {
        ctl_err("cache flush: needs the write token: pass --token TOKEN or set BLOGSCALE_TOKEN%s",
                ctl_conf_accepts_token(conf, CTL_DEMO_TOKEN)
                    ? " (this file accepts the demo token: --token " CTL_DEMO_TOKEN ")" : "");
        bl_conf_destroy(conf);
        return CTL_EXIT_USAGE;
    }
    bl_buf_init(&path);
    bl_buf_init(&auth);
    bl_buf_printf(&path, "/_cache/flush%s%s", id != NULL ? "?id=" : "", id != NULL ? id : "");
    if (token != NULL) {
        bl_buf_printf(&auth, "Authorization: Bearer %s", token);
    }
    if (ctx->json) {
        rows = json_array();
    }
    /* every node of the config directly: one that missed the pub/sub message flushes too */
    for (size_t i = 0; i < conf->nnodes; i++) {
        const char *hdrs[2] = { auth.data, NULL };
        struct ctl_http_client c;
        struct ctl_http_resp r;
        char addr[300], what[700];
        bool ok = false, published = false;

        ctl_connect_addr(conf->nodes[i].addr, addr, sizeof(addr));
        ctl_http_client_init(&c, addr, 5000);
        ctl_http_resp_init(&r);
        if (ctl_http_request(&c, "POST", path.data, hdrs, NULL, 0, &r) != 0) {
            snprintf(what, sizeof(what), "%s", c.error);
        } else if (r.status == 200 || r.status == 503) {
            json_t *doc = json_loadb(r.body.data != NULL ? r.body.data : "", r.body.len, 0, NULL);

            published = r.status == 200 && json_is_true(json_object_get(doc, "published"));
            ok = true;
            snprintf(what, sizeof(what), "flushed %s%s", id != NULL ? id : "all",
                     r.status == 503 ? " (Redis unavailable: the other nodes hear of it later)"
                                     : published ? " and told the other nodes" : "");
            json_decref(doc);
        } else {
            snprintf(what, sizeof(what), "answered %d: %.*s", r.status,
                     (int)BL_MIN(r.body.len, (size_t)300), r.body.data != NULL ? r.body.data : "");
        }
        failed += !ok;
        if (ctx->json) {
            json_array_append_new(rows, json_pack("{s:s,s:s,s:b,s:b,s:s}", "node",
                                                  conf->nodes[i].name, "addr", addr, "ok", ok,
                                                  "published", published, "detail", what));
        } else {
            printf("%-12s %-22s %s\n", conf->nodes[i].name, addr, what);
        }
        ctl_http_resp_deinit(&r);
        ctl_http_client_deinit(&c);
    }
    if (ctx->json) {
        ctl_json_print(json_pack("{s:b,s:s?,s:o}", "ok", failed == 0, "id", id, "nodes", rows));
    } else if (failed > 0) {
        ctl_err("cache flush: %d of %zu node%s did not flush", failed, conf->nnodes,
                conf->nnodes == 1 ? "" : "s");
    }
    bl_buf_deinit(&path);
    bl_buf_deinit(&auth);
    bl_conf_destroy(conf);
    return failed == 0 ? CTL_EXIT_OK : CTL_EXIT_FAIL;
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
