/* blogctl config check [FILE] */
#include "ctl_cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bl/bl_buf.h"

static void
summary_text(const struct bl_conf *c, struct bl_buf *b)
{
    bl_buf_printf(b, "cluster %s: %zu node%s, listeners", c->cluster.name ? c->cluster.name : "-",
                  c->nnodes, c->nnodes == 1 ? "" : "s");
    for (size_t i = 0; i < c->lb.nlisteners; i++) {
        const struct bl_conf_listener *l = &c->lb.listeners[i];

        bl_buf_printf(b, "%s %s%s %s", i == 0 ? "" : ",",
                      l->mode == BL_MODE_HTTP ? "http" : "tcp", l->tls.enabled ? "+tls" : "",
                      l->bind);
    }
    if (c->lb.nlisteners == 0) {
        bl_buf_printf(b, " none");
    }
    bl_buf_printf(b, ", admin %s, store %s %s, redis %s%s, autoscale %s",
                  c->lb.admin.bind ? c->lb.admin.bind : "none",
                  c->node.store.driver == BL_STORE_LMDB ? "lmdb" : "mongodb",
                  c->node.store.driver == BL_STORE_LMDB
                      ? (c->node.store.path ? c->node.store.path : "-")
                      : (c->node.store.uri ? c->node.store.uri : "-"),
                  c->cluster.redis ? c->cluster.redis : "none",
                  c->cluster.redis_managed ? " (managed)" : "",
                  c->autoscale.enabled ? "on" : "off");
    if (c->autoscale.enabled) {
        bl_buf_printf(b, " (%u..%u nodes)", c->autoscale.min, c->autoscale.max);
    }
}

int
ctl_cmd_config(struct ctl_ctx *ctx)
{
    struct ctl_ctx sub = *ctx;
    struct bl_conf *conf;
    struct bl_buf b;

    if (ctl_wants_help(ctx)) {
        return ctl_usage("config", true);
    }
    if (ctx->argc < 1 || strcmp(ctx->argv[0], "check") != 0 || ctx->argc > 2) {
        static const char *const subs[] = { "check" };

        if (ctx->argc >= 1 && strcmp(ctx->argv[0], "check") != 0) {
            return ctl_unknown_sub("config", ctx->argv[0], subs, 1);
        } else if (ctx->argc > 2) {
            ctl_err("config check: takes one FILE");
        }
        return ctl_usage("config", false);
    }
    if (ctx->argc == 2) {
        sub.conf_path = ctx->argv[1];
        sub.conf_given = true;
    }
    conf = ctl_load_conf(&sub);
    if (conf == NULL) {
        return CTL_EXIT_FAIL;
    }
    bl_buf_init(&b);
    summary_text(conf, &b);
    if (ctx->json) {
        json_t *nodes = json_array();

        for (size_t i = 0; i < conf->nnodes; i++) {
            json_array_append_new(nodes, json_pack("{s:s,s:s,s:i}", "name", conf->nodes[i].name,
                                                   "addr", conf->nodes[i].addr, "weight",
                                                   (json_int_t)conf->nodes[i].weight));
        }
        ctl_json_print(json_pack("{s:b,s:s,s:s,s:o,s:b}", "ok", 1, "file", sub.conf_path,
                                 "summary", b.data ? b.data : "", "nodes", nodes,
                                 "autoscale", conf->autoscale.enabled));
    } else {
        printf("%s: ok\n%s\n", sub.conf_path, b.data ? b.data : "");
    }
    bl_buf_deinit(&b);
    bl_conf_destroy(conf);
    return CTL_EXIT_OK;
}
