/*
 * Commands that drive the running LBs through their admin API or ask blog-ctld: nodes
 * list|add|remove|drain|undrain (GET/POST/DELETE /nodes on every LB), cache flush (every
 * node of the config directly, write token), scale status (blog-ctld's /status on
 * autoscale.bind). `nodes list` falls back to the LB's /metrics when the LB has no
 * GET /nodes.
 */
#include "ctl_cmd.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bl/bl_buf.h"
#include "bl/bl_err.h"
#include "bl/bl_util.h"
#include "bl/bl_net.h"
#include "bl/bl_time.h"
#include "ctl_hook.h"
#include "ctl_http.h"
#include "ctl_lbadmin.h"

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
nodes_list_metrics(struct ctl_ctx *ctx)
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

#define ADMIN_TIMEOUT_MS 5000
#define MAX_LBS 64

/* Prints a failure (JSON with --json) and returns CTL_EXIT_FAIL. */
static int
fail_msg(struct ctl_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
fail_msg(struct ctl_ctx *ctx, const char *fmt, ...)
{
    char msg[1200];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (ctx->json) {
        ctl_json_print(json_pack("{s:b,s:s}", "ok", 0, "error", msg));
    }
    ctl_err("%s", msg);
    return CTL_EXIT_FAIL;
}

static const char *
str_or(json_t *o, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(o, key));

    return s != NULL ? s : dflt;
}

/*
 * GET /nodes on LB <addr>. 0 with the document in *doc; BL_ENOTFOUND when the LB has no
 * such endpoint (404); another error with <err> set.
 */
static int
get_nodes(const char *addr, const char *token, json_t **doc, char *err, size_t errlen)
{
    struct ctl_admin_resp r;
    int rc;

    *doc = NULL;
    ctl_admin_resp_init(&r);
    rc = ctl_admin_call(addr, token, "GET", "/nodes", NULL, ADMIN_TIMEOUT_MS, &r, err, errlen);
    if (rc != 0) {
        size_t el = strlen(err);

        snprintf(err + el, errlen - el, " (is blog-lb running?)");
    } else if (r.status == 404 && strcmp(ctl_admin_code(&r), "node_not_found") != 0) {
        snprintf(err, errlen, "LB admin API at %s has no GET /nodes", addr);
        rc = BL_ENOTFOUND;
    } else if (r.status != 200 || !json_is_array(json_object_get(r.json, "nodes"))) {
        char what[500];

        ctl_admin_describe(&r, what, sizeof(what));
        snprintf(err, errlen, "LB admin API at %s: GET /nodes: %s", addr, what);
        rc = BL_EUNAVAIL;
    } else {
        *doc = json_incref(r.json);
    }
    ctl_admin_resp_deinit(&r);
    return rc;
}

static int
nodes_list(struct ctl_ctx *ctx)
{
    struct bl_conf *conf = ctl_load_conf(ctx);
    const char *lbs[MAX_LBS];
    const char *token;
    size_t nlbs;
    json_t *out = NULL, *first = NULL;
    const char *first_lb = NULL;
    char err[700];
    int failed = 0;

    if (conf == NULL) {
        return CTL_EXIT_FAIL;
    }
    token = ctl_admin_token(conf);
    nlbs = ctl_lb_admins(ctx, conf, lbs, MAX_LBS);
    if (ctx->json) {
        out = json_array();
    }
    for (size_t l = 0; l < nlbs; l++) {
        json_t *doc = NULL, *n;
        size_t i;
        int rc = get_nodes(lbs[l], token, &doc, err, sizeof(err));

        if (rc == BL_ENOTFOUND && nlbs == 1 && ctx->nlbs == 0) {
            /* an LB without node management: its /metrics view */
            json_decref(out);
            bl_conf_destroy(conf);
            return nodes_list_metrics(ctx);
        }
        if (rc != 0) {
            failed++;
            if (ctx->json) {
                json_array_append_new(out, json_pack("{s:s,s:b,s:s}", "lb", lbs[l], "ok", 0,
                                                     "error", err));
            } else {
                ctl_err("nodes list: %s", err);
            }
            continue;
        }
        if (ctx->json) {
            json_array_append_new(out, json_pack("{s:s,s:b,s:O}", "lb", lbs[l], "ok", 1, "nodes",
                                                 json_object_get(doc, "nodes")));
            if (first == NULL) {
                first = json_incref(doc);
                first_lb = lbs[l];
            }
            json_decref(doc);
            continue;
        }
        if (nlbs > 1) {
            printf("LB %s\n", lbs[l]);
        }
        printf("%-16s %-22s %-9s %6s %9s %9s %9s %-6s\n", "NAME", "ADDR", "STATE", "WEIGHT",
               "IN-FLIGHT", "REQ/S", "EJECTIONS", "SOURCE");
        json_array_foreach(json_object_get(doc, "nodes"), i, n) {
            printf("%-16s %-22s %-9s %6lld %9lld %9.1f %9lld %-6s\n", str_or(n, "name", "?"),
                   str_or(n, "addr", "-"), str_or(n, "state", "?"),
                   (long long)json_integer_value(json_object_get(n, "weight")),
                   (long long)json_number_value(json_object_get(n, "inflight")),
                   json_number_value(json_object_get(n, "requests_per_s")),
                   (long long)json_number_value(json_object_get(n, "ejections")),
                   str_or(n, "source", "-"));
        }
        json_decref(doc);
    }
    if (ctx->json) {
        /* top level: the first LB's nodes (each with "in_lb": true) and the config's nodes
         * it does not have ("in_lb": false, "state": "absent"); "lbs": every LB */
        json_t *doc = json_pack("{s:b,s:s?,s:[]}", "ok", failed == 0, "lb", first_lb, "nodes");
        json_t *arr = json_object_get(doc, "nodes"), *n;
        size_t i;

        json_array_foreach(json_object_get(first, "nodes"), i, n) {
            json_t *c = json_deep_copy(n);

            json_object_set_new(c, "in_lb", json_true());
            json_array_append_new(arr, c);
        }
        for (size_t k = 0; first != NULL && k < conf->nnodes; k++) {
            if (ctl_admin_find_node(first, conf->nodes[k].name) == NULL) {
                json_array_append_new(arr, json_pack("{s:s,s:s,s:b,s:s}", "name",
                                                     conf->nodes[k].name, "addr",
                                                     conf->nodes[k].addr, "in_lb", 0, "state",
                                                     "absent"));
            }
        }
        json_object_set_new(doc, "lbs", out);
        ctl_json_print(doc);
    }
    json_decref(first);
    bl_conf_destroy(conf);
    return failed == 0 ? CTL_EXIT_OK : CTL_EXIT_FAIL;
}

/*
 * <method> <path> with <body> on every LB. With <undo_path> set, a failure at LB k stops
 * there and the LBs before k get <undo_method> <undo_path> (so a node is never half-added
 * or half-drained); without it every LB is tried. Prints one line per LB. Returns the
 * exit code.
 */
static int
on_every_lb(struct ctl_ctx *ctx, struct bl_conf *conf, const char *what, const char *method,
            const char *path, json_t *body, const char *undo_method, const char *undo_path)
{
    const char *lbs[MAX_LBS];
    const char *token = ctl_admin_token(conf);
    size_t nlbs = ctl_lb_admins(ctx, conf, lbs, MAX_LBS);
    json_t *rows = ctx->json ? json_array() : NULL;
    char err[700];
    size_t l;
    int failed = 0;

    for (l = 0; l < nlbs; l++) {
        struct ctl_admin_resp r;
        int rc;

        ctl_admin_resp_init(&r);
        rc = ctl_admin_call(lbs[l], token, method, path, body, ADMIN_TIMEOUT_MS, &r, err,
                            sizeof(err));
        if (rc == 0 && (r.status < 200 || r.status > 299)) {
            char d[600];

            ctl_admin_describe(&r, d, sizeof(d));
            snprintf(err, sizeof(err), "%s", d);
            if (r.status == 404 && ctl_admin_code(&r)[0] == '\0') {
                snprintf(err, sizeof(err), "404: this blog-lb has no %s %s (admin API without "
                         "node management?)", method, path);
            }
            rc = BL_EUNAVAIL;
        } else if (rc != 0) {
            size_t el = strlen(err);

            snprintf(err + el, sizeof(err) - el, " (is blog-lb running?)");
        }
        if (ctx->json) {
            json_t *row = json_pack("{s:s,s:b}", "lb", lbs[l], "ok", rc == 0);

            if (rc == 0 && r.json != NULL) {
                json_object_set(row, "answer", r.json);
            } else if (rc != 0) {
                json_object_set_new(row, "error", json_string(err));
            }
            json_array_append_new(rows, row);
        } else if (rc == 0) {
            printf("LB %s: %s\n", lbs[l], what);
        } else {
            ctl_err("LB %s: %s %s: %s", lbs[l], method, path, err);
        }
        ctl_admin_resp_deinit(&r);
        if (rc != 0) {
            failed++;
            if (undo_path != NULL) {
                break;                  /* undo what was done, do no more */
            }
        }
    }
    if (failed > 0 && undo_path != NULL) {
        for (size_t k = 0; k < l; k++) {
            struct ctl_admin_resp r;

            ctl_admin_resp_init(&r);
            if (ctl_admin_call(lbs[k], token, undo_method, undo_path, NULL, ADMIN_TIMEOUT_MS, &r,
                               err, sizeof(err)) == 0 && r.status >= 200 && r.status < 300) {
                if (!ctx->json) {
                    printf("LB %s: undone (%s %s)\n", lbs[k], undo_method, undo_path);
                }
            } else {
                ctl_err("LB %s: could not undo with %s %s: fix it by hand", lbs[k], undo_method,
                        undo_path);
            }
            ctl_admin_resp_deinit(&r);
        }
    }
    if (ctx->json) {
        ctl_json_print(json_pack("{s:b,s:o}", "ok", failed == 0, "lbs", rows));
    }
    return failed == 0 ? CTL_EXIT_OK : CTL_EXIT_FAIL;
}

/* Waits until <name> has 0 in flight on every LB, at most <timeout_ms>. */
static int
wait_drained(struct ctl_ctx *ctx, struct bl_conf *conf, const char *name, uint64_t timeout_ms)
{
    const char *lbs[MAX_LBS];
    const char *token = ctl_admin_token(conf);
    size_t nlbs = ctl_lb_admins(ctx, conf, lbs, MAX_LBS);
    uint64_t until = bl_time_mono_ms() + timeout_ms;
    char err[700];

    for (;;) {
        double total = 0;
        bool known = true;

        for (size_t l = 0; l < nlbs; l++) {
            json_t *doc = NULL, *n;

            if (get_nodes(lbs[l], token, &doc, err, sizeof(err)) != 0) {
                known = false;
                continue;
            }
            n = ctl_admin_find_node(doc, name);
            total += json_number_value(json_object_get(n, "inflight"));
            json_decref(doc);
        }
        if (known && total <= 0) {
            if (!ctx->json) {
                printf("%s drained: 0 requests in flight on %zu LB%s\n", name, nlbs,
                       nlbs == 1 ? "" : "s");
            }
            return CTL_EXIT_OK;
        }
        if (bl_time_mono_ms() >= until) {
            ctl_err("nodes drain: %s still has %.0f request%s in flight after %llu ms%s%s", name,
                    total, total == 1 ? "" : "s", (unsigned long long)timeout_ms,
                    known ? "" : "; an LB did not answer: ", known ? "" : err);
            return CTL_EXIT_FAIL;
        }
        usleep(100 * 1000);
    }
}

int
ctl_cmd_nodes(struct ctl_ctx *ctx)
{
    static const char *const subs[] = { "list", "add", "remove", "drain", "undrain" };
    const char *pos[3] = { NULL, NULL, NULL };
    unsigned long weight = 1;
    bool wait = false;
    uint64_t timeout_ms = 30000;
    size_t npos = 0;
    struct bl_conf *conf;
    char path[200], what[300];
    const char *sub;
    int rc;

    if (ctl_wants_help(ctx)) {
        return ctl_usage("nodes", true);
    }
    if (!sub_is(ctx, subs, 5)) {
        if (ctx->argc >= 1) {
            return ctl_unknown_sub("nodes", ctx->argv[0], subs, 5);
        }
        return ctl_usage("nodes", false);
    }
    sub = ctx->argv[0];
    for (int i = 1; i < ctx->argc; i++) {
        const char *a = ctx->argv[i];

        if (strcmp(sub, "add") == 0 && strcmp(a, "--weight") == 0 && i + 1 < ctx->argc) {
            char *end;

            weight = strtoul(ctx->argv[++i], &end, 10);
            if (*end != '\0' || weight == 0 || weight > 1000) {
                ctl_err("nodes add: --weight must be 1..1000");
                return CTL_EXIT_USAGE;
            }
        } else if (strcmp(sub, "drain") == 0 && strcmp(a, "--wait") == 0) {
            wait = true;
        } else if (strcmp(sub, "drain") == 0 && strcmp(a, "--timeout") == 0 && i + 1 < ctx->argc) {
            if (bl_time_parse_duration_ms(ctx->argv[++i], &timeout_ms) != 0 || timeout_ms == 0) {
                ctl_err("nodes drain: --timeout takes a duration such as 30s");
                return CTL_EXIT_USAGE;
            }
            wait = true;
        } else if (a[0] == '-' && a[1] != '\0') {
            ctl_err("nodes %s: unknown option '%s'", sub, a);
            return ctl_usage("nodes", false);
        } else if (npos < 3) {
            pos[npos++] = a;
        } else {
            npos++;
        }
    }
    if (npos != (strcmp(sub, "list") == 0 ? 0u : strcmp(sub, "add") == 0 ? 2u : 1u)) {
        ctl_err("nodes %s: wrong number of arguments", sub);
        return ctl_usage("nodes", false);
    }
    if (strcmp(sub, "list") == 0) {
        return nodes_list(ctx);
    }
    if (!ctl_valid_node_name(pos[0])) {
        ctl_err("nodes %s: '%s' is not a node name (1 to 64 of [A-Za-z0-9_.-])", sub, pos[0]);
        return CTL_EXIT_USAGE;
    }
    if (strcmp(sub, "add") == 0) {
        struct sockaddr_storage ss;
        socklen_t sl;

        if (bl_net_parse_addr(pos[1], &ss, &sl) != 0) {
            ctl_err("nodes add: '%s' is not HOST:PORT (numeric host, e.g. 127.0.0.1:9104)",
                    pos[1]);
            return CTL_EXIT_USAGE;
        }
    }
    conf = ctl_load_conf(ctx);
    if (conf == NULL) {
        return CTL_EXIT_FAIL;
    }
    if (strcmp(sub, "add") == 0) {
        json_t *body = json_pack("{s:s,s:s,s:i}", "name", pos[0], "addr", pos[1], "weight",
                                 (json_int_t)weight);

        snprintf(what, sizeof(what), "added %s (%s, weight %lu)", pos[0], pos[1], weight);
        snprintf(path, sizeof(path), "/nodes/%s", pos[0]);
        rc = on_every_lb(ctx, conf, what, "POST", "/nodes", body, "DELETE", path);
        json_decref(body);
    } else if (strcmp(sub, "remove") == 0) {
        snprintf(path, sizeof(path), "/nodes/%s", pos[0]);
        snprintf(what, sizeof(what), "removed %s", pos[0]);
        rc = on_every_lb(ctx, conf, what, "DELETE", path, NULL, NULL, NULL);
    } else if (strcmp(sub, "drain") == 0) {
        char undo[200];

        snprintf(path, sizeof(path), "/nodes/%s/drain", pos[0]);
        snprintf(undo, sizeof(undo), "/nodes/%s/undrain", pos[0]);
        snprintf(what, sizeof(what), "draining %s (no new requests; in-flight ones finish)",
                 pos[0]);
        rc = on_every_lb(ctx, conf, what, "POST", path, NULL, "POST", undo);
        if (rc == CTL_EXIT_OK && wait) {
            rc = wait_drained(ctx, conf, pos[0], timeout_ms);
        }
    } else {
        snprintf(path, sizeof(path), "/nodes/%s/undrain", pos[0]);
        snprintf(what, sizeof(what), "%s back in service", pos[0]);
        rc = on_every_lb(ctx, conf, what, "POST", path, NULL, NULL, NULL);
    }
    bl_conf_destroy(conf);
    return rc;
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
    struct bl_conf *conf;
    char url[400], err[600], addr[300];
    struct bl_buf body;
    json_t *doc, *dec, *ev, *n;
    size_t i;
    int status = 0, rc;

    if (ctl_wants_help(ctx)) {
        return ctl_usage("scale", true);
    }
    if (!sub_is(ctx, subs, 1) || ctx->argc != 1) {
        if (ctx->argc >= 1 && !sub_is(ctx, subs, 1)) {
            return ctl_unknown_sub("scale", ctx->argv[0], subs, 1);
        }
        return ctl_usage("scale", false);
    }
    conf = ctl_load_conf(ctx);
    if (conf == NULL) {
        return CTL_EXIT_FAIL;
    }
    if (!conf->autoscale.enabled) {
        rc = fail_msg(ctx, "scale status: %s has no autoscale: section (blog-ctld has nothing "
                      "to do)", conf->file);
        bl_conf_destroy(conf);
        return rc;
    }
    if (conf->autoscale.bind == NULL) {
        rc = fail_msg(ctx, "scale status: %s has no autoscale.bind, so blog-ctld serves no "
                      "status; set autoscale.bind (e.g. \"127.0.0.1:8405\") and restart it",
                      conf->file);
        bl_conf_destroy(conf);
        return rc;
    }
    ctl_connect_addr(conf->autoscale.bind, addr, sizeof(addr));
    snprintf(url, sizeof(url), "http://%s/status", addr);
    bl_buf_init(&body);
    if (ctl_http_get(url, 3000, &status, &body, err, sizeof(err)) != 0 || status != 200) {
        if (status != 0) {
            snprintf(err, sizeof(err), "answered %d", status);
        }
        rc = fail_msg(ctx, "scale status: blog-ctld is not reachable at %s (%s); is it "
                      "running?", addr, err);
        bl_buf_deinit(&body);
        bl_conf_destroy(conf);
        return rc;
    }
    doc = json_loadb(body.data != NULL ? body.data : "", body.len, 0, NULL);
    bl_buf_deinit(&body);
    if (!json_is_object(doc)) {
        json_decref(doc);
        rc = fail_msg(ctx, "scale status: %s answered something that is not blog-ctld's status",
                      url);
        bl_conf_destroy(conf);
        return rc;
    }
    if (ctx->json) {
        json_object_set_new(doc, "ok", json_true());
        json_object_set_new(doc, "ctld", json_string(addr));
        ctl_json_print(doc);
        bl_conf_destroy(conf);
        return CTL_EXIT_OK;
    }
    dec = json_object_get(doc, "decision");
    printf("blog-ctld at %s: %s%s\n", addr,
           json_is_true(json_object_get(doc, "leader")) ? "leader" : "standby",
           json_is_true(json_object_get(doc, "report_only"))
               ? ", report-only (no scale_up/scale_down hooks: nothing is changed)" : "");
    printf("  range      min %lld, max %lld, target %.0f requests/s per node\n",
           (long long)json_integer_value(json_object_get(doc, "min")),
           (long long)json_integer_value(json_object_get(doc, "max")),
           json_number_value(json_object_get(doc, "target_rps_per_node")));
    if (dec != NULL) {
        printf("  nodes      actual %lld, desired %lld (raw %lld)\n",
               (long long)json_integer_value(json_object_get(dec, "current")),
               (long long)json_integer_value(json_object_get(dec, "desired")),
               (long long)json_integer_value(json_object_get(dec, "raw")));
        printf("  rate       %.1f requests/s (%.0f%% of target)\n",
               json_number_value(json_object_get(dec, "rate")),
               100 * json_number_value(json_object_get(dec, "ratio")));
        printf("  decision   %s, action %s (at %s)\n", str_or(dec, "reason", "?"),
               str_or(dec, "action", "?"), str_or(dec, "at", "?"));
    } else {
        printf("  decision   none yet (the first needs two samples of the LBs' counters)\n");
    }
    n = json_object_get(doc, "managed_nodes");
    if (json_array_size(n) > 0) {
        json_t *e;

        printf("  managed    ");
        json_array_foreach(n, i, e) {
            printf("%s%s (%s, %s)", i > 0 ? ", " : "", str_or(e, "name", "?"),
                   str_or(e, "addr", "?"), str_or(e, "phase", "?"));
        }
        printf("\n");
    }
    ev = json_object_get(doc, "events");
    if (json_array_size(ev) == 0) {
        printf("  events     none\n");
    } else {
        json_t *e;

        printf("  events     (latest last)\n");
        json_array_foreach(ev, i, e) {
            printf("    %s  %-4s %-6s %s\n", str_or(e, "at", "?"), str_or(e, "direction", "?"),
                   str_or(e, "result", "?"), str_or(e, "detail", ""));
        }
    }
    json_decref(doc);
    bl_conf_destroy(conf);
    return CTL_EXIT_OK;
}
