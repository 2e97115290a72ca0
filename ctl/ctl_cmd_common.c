#include "ctl_cmd.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/crypto.h>

#include "bl/bl_buf.h"
#include "bl/bl_err.h"
#include "bl/bl_util.h"
#include "ctl_http.h"

const struct ctl_cmd ctl_cmds[] = {
    { "up", "run the whole cluster of the config file in the foreground",
      "usage: blogctl [-c FILE] up [--no-seed | --seed N]\n"
      "\n"
      "Starts the cluster the file describes, in the foreground: a managed redis-server\n"
      "(when cluster.redis_managed is true), every node of `nodes:`, blog-lb, then blog-ctld\n"
      "(when the file has an autoscale: section). Waits until each is ready, then prints\n"
      "exactly one line on stdout that scripts can wait for:\n"
      "\n"
      "  blogscale up: api=http://HOST:PORT admin=http://HOST:PORT\n"
      "\n"
      "followed by a short summary. Every child's log lines go to stderr prefixed with its\n"
      "name. Ctrl-C (SIGINT) or SIGTERM stops everything in reverse order and exits 0.\n"
      "SIGHUP is passed on to the nodes, the LB and ctld (config reload).\n"
      "When the store is empty and the file accepts the public demo write token, 100\n"
      "sample posts are loaded through the LB before the readiness line, so the demo\n"
      "shows data at once; --no-seed skips that, --seed N loads N (for another file:\n"
      "with the token in $BLOGSCALE_TOKEN). A store that holds posts is never seeded.\n"
      "Fail-fast: if any child dies, blogctl says which and why, stops the rest, exits 1.\n",
      ctl_cmd_up },
    { "status", "health and figures of the nodes and the LB",
      "usage: blogctl [-c FILE] [--json] status [--window DURATION]\n"
      "\n"
      "Asks every node of the config for /readyz and /metrics and the LB's admin address\n"
      "for /metrics, and prints one row per component: state, requests, requests/s, p99,\n"
      "cache hit %, coherence. Rates come from two samples --window apart (default 1s;\n"
      "0 = a single sample, no rates). The admin token is read from $BLOGSCALE_ADMIN_TOKEN.\n"
      "Exit 0 when every node is ready, 1 otherwise.\n",
      ctl_cmd_status },
    { "nodes", "the LBs' nodes: list, add, remove, drain, undrain",
      "usage: blogctl [-c FILE] [--json] nodes list\n"
      "       blogctl [-c FILE] [--json] nodes add NAME HOST:PORT [--weight N]\n"
      "       blogctl [-c FILE] [--json] nodes remove NAME\n"
      "       blogctl [-c FILE] [--json] nodes drain NAME [--wait] [--timeout DURATION]\n"
      "       blogctl [-c FILE] [--json] nodes undrain NAME\n"
      "\n"
      "Works on every LB (the file's lb.admin.bind, or each --lb-admin ADDR) through its\n"
      "admin API. `list` shows each LB's live node set: name, address, state (up, down,\n"
      "draining), weight, in-flight requests, requests/s, ejections and whether the node\n"
      "comes from the config or was added through the admin API.\n"
      "`add` adds a running blog-node (it gets traffic once its /readyz passes the health\n"
      "checks); when one LB refuses, the LBs that took it remove it again. `remove` takes\n"
      "it out (in-flight requests finish). `drain` stops new requests to it; --wait waits\n"
      "until its in-flight count is 0 on every LB (at most --timeout, default 30s; exit 1\n"
      "if it is not). `undrain` puts it back. Changes last until the LB restarts or\n"
      "reloads a file that says otherwise (blog-ctld re-adds the nodes it manages).\n"
      "The admin token is --admin-token, $BLOGSCALE_ADMIN_TOKEN, or the demo admin token\n"
      "when the file's lb.admin.token_sha256 is the demo one.\n",
      ctl_cmd_nodes },
    { "config", "check a cluster file",
      "usage: blogctl [--json] config check [FILE]\n"
      "\n"
      "Loads FILE (default: -c FILE, $BLOGSCALE_CONFIG, /etc/blogscale/cluster.yaml) and\n"
      "prints \"FILE: ok\" with a one-line summary, or the error as file:line:column and\n"
      "exits 1.\n",
      ctl_cmd_config },
    { "cache", "flush the nodes' hot caches (one post or everything)",
      "usage: blogctl [-c FILE] [--json] cache flush [ID] [--token TOKEN]\n"
      "\n"
      "Drops post ID (24 hex digits, or /posts/ID), or everything, from the hot cache of\n"
      "every node of the config (POST /_cache/flush on each; each also tells the others\n"
      "through Redis). Needs the write token: --token or $BLOGSCALE_TOKEN. Prints one line\n"
      "per node; exit 1 when a node did not flush.\n",
      ctl_cmd_cache },
    { "posts", "load sample posts through the API",
      "usage: blogctl [-c FILE] [--json] posts seed N [--api URL] [--token TOKEN]\n"
      "\n"
      "POSTs N sample posts (varied titles, authors and tags, ~1 KiB bodies) to /posts\n"
      "through the LB on one keep-alive connection. The API URL defaults to the config's\n"
      "first http listener; the write token comes from --token or $BLOGSCALE_TOKEN.\n"
      "Shows a progress bar when stderr is a terminal. Exit 1 if any post failed.\n",
      ctl_cmd_posts },
    { "scale", "blog-ctld's view: desired and actual nodes, leader, last events",
      "usage: blogctl [-c FILE] [--json] scale status\n"
      "\n"
      "Asks blog-ctld (GET /status on the file's autoscale.bind) and prints whether it leads\n"
      "or stands by, whether it runs report-only (no hooks), min/max and the target, the\n"
      "last decision (actual and desired nodes, cluster request rate, reason), the nodes it\n"
      "manages and its last scale events. Exit 1 when blog-ctld is not reachable (or the\n"
      "file has no autoscale.bind).\n",
      ctl_cmd_scale },
    { "route", "which node owns a post id, and its next preferences",
      "usage: blogctl [-c FILE] [--json] route /posts/ID\n"
      "\n"
      "Prints the node that owns ID and its next preferences, computed from the config's\n"
      "node set with the LB's own Maglev table and id hash (what every LB with that node\n"
      "set picks while all nodes are healthy). When the LBs answer GET /ring/route, their\n"
      "own answer is shown for each LB (owner, preferences, the node chosen now and whether\n"
      "bounded load spills it); else the LB's live health and in-flight counts from its\n"
      "/metrics, else the config alone.\n",
      ctl_cmd_route },
    { "ring", "Maglev ring: verify LBs agree, plan a node change",
      "usage: blogctl [-c FILE] [--json] ring plan add NAME [--weight W]\n"
      "       blogctl [-c FILE] [--json] ring plan remove NAME\n"
      "       blogctl [-c FILE] [--json] [--lb-admin ADDR]... ring verify\n"
      "\n"
      "`ring verify` asks every LB for its Maglev table digest (GET /ring) and exits 0\n"
      "when they all agree, else lists each LB's digest and exits 1.\n"
      "`ring plan` computes, from the config's nodes, the Maglev tables before and after\n"
      "the change and prints the share of post ids that would change owner (and where\n"
      "they go), before you do it. Nothing is contacted.\n",
      ctl_cmd_ring },
    { NULL, NULL, NULL, NULL },
};

void
ctl_err(const char *fmt, ...)
{
    va_list ap;

    fflush(stdout);
    fputs("blogctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int
ctl_usage(const char *name, bool to_stdout)
{
    FILE *f = to_stdout ? stdout : stderr;

    for (const struct ctl_cmd *c = ctl_cmds; c->name != NULL; c++) {
        if (strcmp(c->name, name) == 0) {
            fputs(c->usage, f);
            break;
        }
    }
    return to_stdout ? CTL_EXIT_OK : CTL_EXIT_USAGE;
}

bool
ctl_wants_help(const struct ctl_ctx *ctx)
{
    for (int i = 0; i < ctx->argc; i++) {
        if (strcmp(ctx->argv[i], "--") == 0) {
            break;
        }
        if (strcmp(ctx->argv[i], "-h") == 0 || strcmp(ctx->argv[i], "--help") == 0) {
            return true;
        }
    }
    return false;
}

struct bl_conf *
ctl_load_conf(const struct ctl_ctx *ctx)
{
    char *err = NULL;
    struct bl_conf *conf = bl_conf_load(ctx->conf_path, &err);

    if (conf == NULL) {
        if (ctx->json) {
            ctl_json_print(json_pack("{s:b,s:s,s:s}", "ok", 0, "file", ctx->conf_path,
                                     "error", err != NULL ? err : "cannot load"));
        } else {
            fflush(stdout);
            fprintf(stderr, "%s\n", err != NULL ? err : "blogctl: cannot load the config");
            if (!ctx->conf_given && access(ctx->conf_path, F_OK) != 0) {
                fprintf(stderr, "blogctl: give the cluster file with -c FILE or "
                        "$BLOGSCALE_CONFIG (e.g. -c examples/local.yaml)\n");
            }
        }
        free(err);
    }
    return conf;
}

static char *
try_exec(const char *dir, const char *rel, const char *name)
{
    char path[PATH_MAX];
    char real[PATH_MAX];

    if ((size_t)snprintf(path, sizeof(path), "%s/%s%s%s", dir, rel ? rel : "",
                         rel ? "/" : "", name) >= sizeof(path)) {
        return NULL;
    }
    if (access(path, X_OK) != 0) {
        return NULL;
    }
    /* Resolve "..", but not the file itself: redis-server is a symlink to redis-check-rdb,
     * which picks its personality from argv[0]. */
    {
        char *slash = strrchr(path, '/');

        *slash = '\0';
        if (realpath(path, real) != NULL
            && strlen(real) + 1 + strlen(slash + 1) < sizeof(real)) {
            strcat(real, "/");
            strcat(real, slash + 1);
            return bl_xstrdup(real);
        }
        *slash = '/';
    }
    return bl_xstrdup(path);
}

char *
ctl_find_binary(const char *name, const char *subdir)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    char *found = NULL;
    const char *pathenv;

    if (n > 0) {
        char *slash;

        self[n] = '\0';
        slash = strrchr(self, '/');
        if (slash != NULL) {
            *slash = '\0';
            if (subdir != NULL) {
                char rel[PATH_MAX];

                snprintf(rel, sizeof(rel), "../%s", subdir);
                found = try_exec(self, rel, name);
            }
            if (found == NULL) {
                found = try_exec(self, NULL, name);
            }
            if (found != NULL) {
                return found;
            }
        }
    }
    pathenv = getenv("PATH");
    if (pathenv == NULL) {
        pathenv = "/usr/local/bin:/usr/bin:/bin";
    }
    {
        char *copy = bl_xstrdup(pathenv), *save = NULL;

        for (char *d = strtok_r(copy, ":", &save); d != NULL; d = strtok_r(NULL, ":", &save)) {
            if (*d == '\0') {
                continue;
            }
            found = try_exec(d, NULL, name);
            if (found != NULL) {
                break;
            }
        }
        free(copy);
    }
    return found;
}

int
ctl_redis_url_parse(const char *url, struct ctl_redis_url *u)
{
    const char *p, *at, *host, *hend;
    size_t len;

    memset(u, 0, sizeof(*u));
    u->port = 6379;
    if (strncmp(url, "redis://", 8) != 0) {
        return BL_EINVAL;
    }
    p = url + 8;
    at = strchr(p, '@');
    if (at != NULL) {
        const char *colon = memchr(p, ':', (size_t)(at - p));

        if (colon != NULL) {
            len = (size_t)(at - colon - 1);
            if (len >= sizeof(u->password)) {
                return BL_EINVAL;
            }
            memcpy(u->password, colon + 1, len);
            u->password[len] = '\0';
        }
        p = at + 1;
    }
    if (*p == '[') {
        host = p + 1;
        hend = strchr(host, ']');
        if (hend == NULL) {
            return BL_EINVAL;
        }
        p = hend + 1;
    } else {
        host = p;
        hend = p + strcspn(p, ":/");
        p = hend;
    }
    len = (size_t)(hend - host);
    if (len == 0 || len >= sizeof(u->host)) {
        return BL_EINVAL;
    }
    memcpy(u->host, host, len);
    u->host[len] = '\0';
    if (*p == ':') {
        char *end;
        unsigned long port = strtoul(p + 1, &end, 10);

        if (end == p + 1 || port == 0 || port > 65535) {
            return BL_EINVAL;
        }
        u->port = (unsigned)port;
        p = end;
    }
    if (*p == '/') {
        char *end;

        if (p[1] != '\0') {
            unsigned long db = strtoul(p + 1, &end, 10);

            if (end == p + 1 || *end != '\0' || db > 1000000) {
                return BL_EINVAL;
            }
            u->db = (unsigned)db;
        }
    } else if (*p != '\0') {
        return BL_EINVAL;
    }
    return 0;
}

void
ctl_connect_addr(const char *bind, char *out, size_t outlen)
{
    const char *colon = strrchr(bind, ':');

    if (colon != NULL && (size_t)(colon - bind) == 7 && strncmp(bind, "0.0.0.0", 7) == 0) {
        snprintf(out, outlen, "127.0.0.1%s", colon);
    } else if (colon != NULL && strncmp(bind, "[::]:", 5) == 0) {
        snprintf(out, outlen, "[::1]%s", colon);
    } else if (colon != NULL && (size_t)(colon - bind) == 0) {
        snprintf(out, outlen, "127.0.0.1%s", colon);        /* ":8080" */
    } else {
        snprintf(out, outlen, "%s", bind);
    }
}

const struct bl_conf_listener *
ctl_api_listener(const struct bl_conf *conf)
{
    const struct bl_conf_listener *tls = NULL;

    for (size_t i = 0; i < conf->lb.nlisteners; i++) {
        const struct bl_conf_listener *l = &conf->lb.listeners[i];

        if (l->mode != BL_MODE_HTTP) {
            continue;
        }
        if (!l->tls.enabled) {
            return l;
        }
        if (tls == NULL) {
            tls = l;
        }
    }
    return tls;
}

bool
ctl_api_url(const struct bl_conf *conf, char *out, size_t outlen)
{
    const struct bl_conf_listener *l = ctl_api_listener(conf);
    char addr[300];

    if (l == NULL) {
        return false;
    }
    ctl_connect_addr(l->bind, addr, sizeof(addr));
    snprintf(out, outlen, "%s://%s", l->tls.enabled ? "https" : "http", addr);
    return true;
}

static bool
sha256_eq(const char *token, const uint8_t digest[BL_SHA256_LEN])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    if (EVP_Digest(token, strlen(token), md, &mdlen, EVP_sha256(), NULL) != 1
        || mdlen != BL_SHA256_LEN) {
        return false;
    }
    return CRYPTO_memcmp(digest, md, BL_SHA256_LEN) == 0;
}

const char *
ctl_admin_token(const struct bl_conf *conf)
{
    const char *env = getenv("BLOGSCALE_ADMIN_TOKEN");

    if (env != NULL && env[0] != '\0') {
        return env;
    }
    if (conf->lb.admin.has_token && sha256_eq(CTL_DEMO_ADMIN_TOKEN, conf->lb.admin.token_sha256)) {
        return CTL_DEMO_ADMIN_TOKEN;
    }
    return NULL;
}

char *
ctl_lb_metrics(const struct bl_conf *conf, char *err, size_t errlen)
{
    char addr[300];
    struct ctl_http_client c;
    struct ctl_http_resp r;
    struct bl_buf auth;
    const char *hdrs[2] = { NULL, NULL };
    const char *token = ctl_admin_token(conf);
    char *text = NULL;

    if (conf->lb.admin.bind == NULL) {
        snprintf(err, errlen, "%s has no lb.admin.bind", conf->file);
        return NULL;
    }
    ctl_connect_addr(conf->lb.admin.bind, addr, sizeof(addr));
    bl_buf_init(&auth);
    if (token != NULL) {
        bl_buf_printf(&auth, "Authorization: Bearer %s", token);
        hdrs[0] = auth.data;
    }
    ctl_http_client_init(&c, addr, 3000);
    ctl_http_resp_init(&r);
    if (ctl_http_request(&c, "GET", "/metrics", hdrs, NULL, 0, &r) != 0) {
        snprintf(err, errlen, "LB admin API: %s (is blog-lb running?)", c.error);
    } else if (r.status == 401 || r.status == 403) {
        snprintf(err, errlen, "LB admin API at %s answered %d: set BLOGSCALE_ADMIN_TOKEN to the "
                 "admin token (its SHA-256 is lb.admin.token_sha256)", addr, r.status);
    } else if (r.status != 200) {
        snprintf(err, errlen, "LB admin API at %s answered %d to GET /metrics", addr, r.status);
    } else {
        text = bl_xstrdup(r.body.data != NULL ? r.body.data : "");
    }
    ctl_http_resp_deinit(&r);
    ctl_http_client_deinit(&c);
    bl_buf_deinit(&auth);
    return text;
}

bool
ctl_conf_accepts_token(const struct bl_conf *conf, const char *token)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    bool ok = false;

    if (EVP_Digest(token, strlen(token), md, &mdlen, EVP_sha256(), NULL) != 1
        || mdlen != BL_SHA256_LEN) {
        return false;
    }
    for (size_t i = 0; i < conf->cluster.nwrite_tokens; i++) {
        if (CRYPTO_memcmp(conf->cluster.write_tokens[i], md, BL_SHA256_LEN) == 0) {
            ok = true;
        }
    }
    return ok;
}

void
ctl_json_print(json_t *j)
{
    char *s;

    if (j == NULL) {
        fputs("{\"ok\":false,\"error\":\"out of memory\"}\n", stdout);
        return;
    }
    s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (s != NULL) {
        puts(s);
        free(s);
    }
    json_decref(j);
    fflush(stdout);
}

int
ctl_unknown_sub(const char *cmd, const char *word, const char *const *subs, size_t n)
{
    const char *best = NULL;
    int best_d = 100;

    for (size_t i = 0; i < n; i++) {
        int d = ctl_edit_distance(word, subs[i]);

        if (d < best_d) {
            best_d = d;
            best = subs[i];
        }
    }
    if (best != NULL && best_d <= 2) {
        ctl_err("%s: unknown subcommand '%s'; did you mean '%s'?", cmd, word, best);
    } else {
        ctl_err("%s: unknown subcommand '%s'", cmd, word);
    }
    return ctl_usage(cmd, false);
}

int
ctl_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    int prev[64], cur[64];

    if (la > 60 || lb > 60) {
        return 100;
    }
    for (size_t j = 0; j <= lb; j++) {
        prev[j] = (int)j;
    }
    for (size_t i = 1; i <= la; i++) {
        cur[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            int del = prev[j] + 1;
            int ins = cur[j - 1] + 1;

            cur[j] = BL_MIN(sub, BL_MIN(del, ins));
        }
        memcpy(prev, cur, sizeof(int) * (lb + 1));
    }
    return prev[lb];
}

size_t
ctl_lb_admins(const struct ctl_ctx *ctx, const struct bl_conf *conf, const char **out, size_t max)
{
    size_t n = 0;

    if (ctx->nlbs > 0) {
        for (size_t i = 0; i < ctx->nlbs && n < max; i++) {
            out[n++] = ctx->lbs[i];
        }
        return n;
    }
    if (max > 0) {
        out[n++] = conf->lb.admin.bind != NULL ? conf->lb.admin.bind : BL_CONF_DEFAULT_ADMIN_BIND;
    }
    return n;
}
