/*
 * Commands that drive the running LBs through their admin API (issue 7) or blog-ctld
 * (issue 8 part 3): nodes, cache flush, scale status. The admin API is not built yet, so
 * they check their arguments and then say so (exit 1). Registered now so that --help
 * lists them and scripts can rely on the names.
 */
#include "ctl_cmd.h"

#include <string.h>

static int
needs_admin(struct ctl_ctx *ctx, const char *what)
{
    if (ctx->json) {
        ctl_json_print(json_pack("{s:b,s:s}", "ok", 0, "error",
                                 "needs the LB admin API (not built yet)"));
    }
    ctl_err("%s needs the LB admin API (not built yet); `blogctl status` shows the nodes' "
            "health from the config meanwhile", what);
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
            ctl_err("nodes: unknown subcommand '%s'", ctx->argv[0]);
        }
        return ctl_usage("nodes", false);
    }
    want = strcmp(ctx->argv[0], "list") == 0 ? 1 : strcmp(ctx->argv[0], "add") == 0 ? 3 : 2;
    if (ctx->argc != want) {
        ctl_err("nodes %s: wrong number of arguments", ctx->argv[0]);
        return ctl_usage("nodes", false);
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
            ctl_err("cache: unknown subcommand '%s'", ctx->argv[0]);
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
            ctl_err("scale: unknown subcommand '%s'", ctx->argv[0]);
        }
        return ctl_usage("scale", false);
    }
    return needs_admin(ctx, "scale status");
}
