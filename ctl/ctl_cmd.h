#ifndef CTL_CMD_H
#define CTL_CMD_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "bl/bl_conf.h"

/*
 * The commands of blogctl and what they share: the parsed global options, config loading
 * with the file:line:column error, binary lookup and small output helpers. Every command
 * returns an exit code: CTL_EXIT_OK, CTL_EXIT_FAIL (operational failure) or CTL_EXIT_USAGE.
 */

#define CTL_EXIT_OK 0
#define CTL_EXIT_FAIL 1
#define CTL_EXIT_USAGE 2

struct ctl_ctx {
    const char *conf_path;      /* -c/--config, else $BLOGSCALE_CONFIG, else the default */
    bool conf_given;            /* -c/--config was on the command line */
    bool json;                  /* --json */
    const char **lbs;           /* --lb-admin HOST:PORT (repeatable); none = lb.admin.bind */
    size_t nlbs;
    int argc;                   /* arguments after the command word */
    char **argv;
};

/* One command (or the group word of subcommands: "nodes", "ring"). */
struct ctl_cmd {
    const char *name;           /* "up", "posts", ... */
    const char *summary;        /* one line for the command list */
    const char *usage;          /* full help text for "blogctl NAME --help" */
    int (*run)(struct ctl_ctx *ctx);
};

/* The command table, ending with a zeroed entry. */
extern const struct ctl_cmd ctl_cmds[];

int ctl_cmd_up(struct ctl_ctx *ctx);
int ctl_cmd_status(struct ctl_ctx *ctx);
int ctl_cmd_config(struct ctl_ctx *ctx);
int ctl_cmd_posts(struct ctl_ctx *ctx);
int ctl_cmd_ring(struct ctl_ctx *ctx);
int ctl_cmd_nodes(struct ctl_ctx *ctx);
int ctl_cmd_cache(struct ctl_ctx *ctx);
int ctl_cmd_scale(struct ctl_ctx *ctx);
int ctl_cmd_route(struct ctl_ctx *ctx);

/*
 * The LB admin addresses a command talks to: ctx->lbs when --lb-admin was given, else the
 * config's lb.admin.bind (or its default). Fills <out> (at most <max>), returns the count.
 */
size_t ctl_lb_admins(const struct ctl_ctx *ctx, const struct bl_conf *conf, const char **out,
                     size_t max);

/* Prints "blogctl: " + message on stderr. */
void ctl_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Prints the usage of command <name> on stderr (or stdout when <to_stdout>). Returns
 * CTL_EXIT_USAGE (or CTL_EXIT_OK for an explicit --help) so callers can `return` it.
 */
int ctl_usage(const char *name, bool to_stdout);

/* True when argv has -h/--help among the command's arguments. */
bool ctl_wants_help(const struct ctl_ctx *ctx);

/*
 * Loads ctx->conf_path. On failure prints the file:line:column message (or a JSON error
 * object with --json) and returns NULL.
 */
struct bl_conf *ctl_load_conf(const struct ctl_ctx *ctx);

/*
 * Finds the binary <name> (e.g. "blog-node"): next to blogctl's own executable in the
 * build tree (<dir>/../<subdir>/<name>), in blogctl's directory (installed layout), then
 * on PATH. Returns a malloc'ed path or NULL.
 */
char *ctl_find_binary(const char *name, const char *subdir);

struct ctl_redis_url {
    char host[256];
    unsigned port;
    char password[256];         /* "" when none */
    unsigned db;
};

/* Parses redis://[[user]:password@]HOST[:PORT][/DB]. 0 or BL_EINVAL. */
int ctl_redis_url_parse(const char *url, struct ctl_redis_url *u);

/*
 * The client-side address of the listener <bind>: "0.0.0.0:P" -> "127.0.0.1:P",
 * "[::]:P" -> "[::1]:P", anything else unchanged. <out> at least 272 bytes.
 */
void ctl_connect_addr(const char *bind, char *out, size_t outlen);

/* The first http listener of the LB (plain preferred over TLS), or NULL. */
const struct bl_conf_listener *ctl_api_listener(const struct bl_conf *conf);

/* "http://HOST:PORT" of the API (first http listener), into <out>. False when none. */
bool ctl_api_url(const struct bl_conf *conf, char *out, size_t outlen);

/* True when one of the config's write-token digests is SHA-256(<token>). */
bool ctl_conf_accepts_token(const struct bl_conf *conf, const char *token);

/* Prints <j> (stolen) as one line of JSON on stdout. */
void ctl_json_print(json_t *j);

/*
 * Says "<cmd>: unknown subcommand 'word'" with "did you mean 'x'?" when one of the <n>
 * <subs> is close, then prints the command's usage. Returns CTL_EXIT_USAGE.
 */
int ctl_unknown_sub(const char *cmd, const char *word, const char *const *subs, size_t n);

/* Levenshtein distance, capped at 100. */
int ctl_edit_distance(const char *a, const char *b);

/*
 * Prometheus text format helpers for `status`. ctl_prom_sum(): the sum of every sample of
 * <name> (the sample name exactly, any labels) in <text>; false when there is none.
 * ctl_prom_quantile(): quantile <q> of histogram <name> (its <name>_bucket series summed
 * over label sets) over the observations between scrape <before> (NULL = since start) and
 * scrape <after>, interpolated inside the bucket as Prometheus' histogram_quantile() does;
 * false when there were no observations.
 */
bool ctl_prom_sum(const char *text, const char *name, double *out);
/* Like ctl_prom_sum(), over the samples whose label <label> equals <value> exactly. */
bool ctl_prom_sum_label(const char *text, const char *name, const char *label,
                        const char *value, double *out);
bool ctl_prom_quantile(const char *before, const char *after, const char *name, double q,
                       double *out);

/*
 * The distinct values of label <label> among the samples of <name>, in order of first
 * appearance: a malloc'ed array of malloc'ed strings in *out (free each, then the array).
 * Returns the count.
 */
size_t ctl_prom_label_values(const char *text, const char *name, const char *label,
                             char ***out);

/*
 * The admin token to send to the LB: $BLOGSCALE_ADMIN_TOKEN, else the public demo admin
 * token when <conf>'s lb.admin.token_sha256 is SHA-256 of it, else NULL.
 */
const char *ctl_admin_token(const struct bl_conf *conf);

/*
 * GET /metrics from the LB admin address of <conf> with ctl_admin_token(). Returns the
 * malloc'ed text, or NULL with <err> saying why (unreachable, 401 with a hint, no admin).
 */
char *ctl_lb_metrics(const struct bl_conf *conf, char *err, size_t errlen);

struct ctl_seed_result {
    unsigned long created;      /* posts answered 201 */
    double seconds;             /* wall time */
    int status;                 /* the failing response's status, 0 = none or no answer */
    char error[700];            /* the first failure, human-readable */
};

/*
 * POSTs <n> sample posts (varied titles, authors, tags; ~1 KiB bodies) to <api>/posts
 * ("http://HOST:PORT[/prefix]") on one keep-alive connection, with "Authorization: Bearer
 * <token>" (NULL = none), drawing a progress bar on stderr when <show_progress>. Stops at
 * the first failure. Returns 0 when all were created, else a negative error with
 * <res>->error saying what failed.
 */
int ctl_seed(const char *api, const char *token, unsigned long n, bool show_progress,
             struct ctl_seed_result *res);

#define CTL_DEMO_TOKEN "blogscale-demo-token"
#define CTL_DEMO_ADMIN_TOKEN "blogscale-demo-admin"

#endif /* CTL_CMD_H */
