/*
 * blog-node: the blog API server (DESIGN §4, §5). main() loads the config, opens the
 * store, starts libmicrohttpd's worker threads and then only waits for signals on a
 * signalfd: SIGHUP reloads, SIGTERM/SIGINT shut down gracefully.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bl/bl_conf.h"
#include "bl/bl_err.h"
#include "bl/bl_log.h"
#include "bl/bl_metrics.h"
#include "bl/bl_net.h"
#include "bl/bl_sdnotify.h"
#include "bl/bl_time.h"
#include "bl/bl_util.h"

#include "node_assets.h"
#include "node_cache.h"
#include "node_http.h"
#include "node_inval.h"
#include "node_json.h"
#include "node_posts.h"
#include "node_metrics.h"
#include "node_server.h"
#include "node_store.h"

#define NODE_LISTEN_BACKLOG 4096

struct node_opts {
    const char *config;
    const char *name;
    const char *listen;
    bool check_config;
};

static void
usage(FILE *f)
{
    fprintf(f,
            "usage: blog-node [--config FILE] --name NAME [--listen HOST:PORT]\n"
            "                 [--check-config] [--version] [--help]\n"
            "\n"
            "  -c, --config FILE    cluster file (default $" BL_CONF_ENV " or " BL_CONF_DEFAULT_PATH ")\n"
            "  -n, --name NAME      this node's entry in nodes: (its addr is the listen address)\n"
            "  -l, --listen ADDR    listen on HOST:PORT instead; NAME need not be in nodes: then\n"
            "      --check-config   validate the file for this node and exit 0 or 1\n"
            "      --version        print the version and exit\n");
}

static int
parse_args(int argc, char **argv, struct node_opts *o)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"name", required_argument, NULL, 'n'},
        {"listen", required_argument, NULL, 'l'},
        {"check-config", no_argument, NULL, 'C'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    while ((c = getopt_long(argc, argv, "c:n:l:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            o->config = optarg;
            break;
        case 'n':
            o->name = optarg;
            break;
        case 'l':
            o->listen = optarg;
            break;
        case 'C':
            o->check_config = true;
            break;
        case 'V':
            printf("blog-node %s\n", BLOG_VERSION);
            exit(0);
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "blog-node: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return -1;
    }
    if (o->config == NULL) {
        o->config = bl_conf_default_path();
    }
    return 0;
}

static bool
valid_name(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 64) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-')) {
            return false;
        }
    }
    return true;
}

/*
 * What the node needs from the file beyond bl_conf's own checks. Returns the listen
 * address, or NULL after printing why the node cannot run with <conf>.
 */
static const char *
check_node_conf(const struct bl_conf *conf, const struct node_opts *o)
{
    const struct bl_conf_node_entry *e;

    if (o->name == NULL) {
        fprintf(stderr, "blog-node: --name is required\n");
        return NULL;
    }
    if (!valid_name(o->name)) {
        fprintf(stderr, "blog-node: --name '%s': use 1-64 of [A-Za-z0-9_.-]\n", o->name);
        return NULL;
    }
    e = bl_conf_find_node(conf, o->name);
    if (e == NULL && o->listen == NULL) {
        fprintf(stderr, "blog-node: %s: no node named '%s' in nodes: (or give --listen)\n",
                conf->file ? conf->file : o->config, o->name);
        return NULL;
    }
    if (conf->cluster.nwrite_tokens == 0 && !conf->cluster.allow_anonymous_writes) {
        fprintf(stderr,
                "blog-node: %s: no write tokens configured (cluster.write_tokens_sha256) and "
                "cluster.allow_anonymous_writes is false: refusing to start\n",
                conf->file ? conf->file : o->config);
        return NULL;
    }
    if (conf->node.limits.post_body == 0) {
        fprintf(stderr, "blog-node: node.limits.post_body must be > 0\n");
        return NULL;
    }
    if (conf->node.cache.enabled && conf->cluster.redis != NULL) {
        struct node_redis_url u;
        const char *msg;

        if (node_inval_parse_url(conf->cluster.redis, &u, &msg) != 0) {
            fprintf(stderr, "blog-node: %s: cluster.redis: %s\n",
                    conf->file ? conf->file : o->config, msg);
            return NULL;
        }
    }
    return o->listen != NULL ? o->listen : e->addr;
}

/* mkdir -p for the upload temp dir (the store creates its own directory first). */
static int
make_dir(const char *path)
{
    char tmp[PATH_MAX];
    size_t n = strlen(path);

    if (n == 0 || n >= sizeof(tmp)) {
        return -ENAMETOOLONG;
    }
    memcpy(tmp, path, n + 1);
    for (char *p = tmp + 1; *p != '\0'; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST) {
                return -errno;
            }
            *p = '/';
        }
    }
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST) {
        return -errno;
    }
    return 0;
}

static int
setup_tmpdir(struct node_server *srv)
{
    const struct bl_conf_store *st = &srv->conf->node.store;
    const char *base;
    int n, rc;

    /*
     * Uploads stream into <store.path>/tmp for LMDB: the same filesystem as the asset
     * files, so the store can rename them into place. Other drivers use $TMPDIR.
     */
    if (st->driver == BL_STORE_LMDB && st->path != NULL) {
        n = snprintf(srv->tmpdir, sizeof(srv->tmpdir), "%s/tmp", st->path);
    } else {
        base = getenv("TMPDIR");
        n = snprintf(srv->tmpdir, sizeof(srv->tmpdir), "%s/blog-node-uploads",
                     base != NULL && base[0] != '\0' ? base : "/tmp");
    }
    if (n < 0 || (size_t)n >= sizeof(srv->tmpdir)) {
        return -ENAMETOOLONG;
    }
    rc = make_dir(srv->tmpdir);
    if (rc == 0) {
        node_assets_clean_tmp(srv->tmpdir);
    }
    return rc;
}

/* systemd Type=notify (packaging/systemd/blog-node@.service); a no-op outside systemd. */
static void
notify(const char *state)
{
    int rc = bl_sdnotify(state);

    if (rc < 0) {
        bl_log(BL_LOG_WARN, "sd_notify %s: %s", state, strerror(-rc));
    }
}

/* SIGHUP: re-reads the file; applies log.level and the write tokens. */
static void
reload(struct node_server *srv)
{
    char *err = NULL;
    struct bl_conf *conf = bl_conf_load(srv->conf->file, &err);

    if (conf == NULL) {
        bl_logf(BL_LOG_ERROR, ((struct bl_log_field[]){BL_LOG_STR("error", err)}), 1,
                "reload failed, keeping the running config");
        free(err);
        return;
    }
    if (conf->cluster.nwrite_tokens == 0 && !conf->cluster.allow_anonymous_writes) {
        bl_log(BL_LOG_ERROR, "reload refused: the new file has no write tokens and does not "
                             "allow anonymous writes; keeping the running config");
        bl_conf_destroy(conf);
        return;
    }
    bl_log_set_level(conf->log_level);
    if (node_server_set_tokens(srv, conf) != 0) {
        bl_log(BL_LOG_ERROR, "reload: out of memory, tokens not changed");
    } else {
        bl_metric_inc(srv->metrics->reloads);
        bl_logf(BL_LOG_INFO,
                ((struct bl_log_field[]){BL_LOG_UINT("write_tokens", conf->cluster.nwrite_tokens),
                                         BL_LOG_BOOL("allow_anonymous_writes",
                                                     conf->cluster.allow_anonymous_writes)}),
                2, "config reloaded (log level, write tokens)");
    }
    bl_conf_destroy(conf);
}

/* SIGTERM: stop accepting, let in-flight requests finish (bounded), then stop. */
static void
shutdown_gracefully(struct node_server *srv)
{
    uint64_t deadline = bl_time_mono_ms() + srv->conf->node.shutdown_timeout_ms;
    long left;

    node_http_quiesce(srv);
    while ((left = atomic_load(&srv->inflight)) > 0 && bl_time_mono_ms() < deadline) {
        struct timespec ts = {0, 5 * 1000 * 1000};

        nanosleep(&ts, NULL);
    }
    if (left > 0) {
        bl_logf(BL_LOG_WARN, ((struct bl_log_field[]){BL_LOG_INT("in_flight", left)}), 1,
                "shutdown timeout: closing connections with requests in flight");
    }
    node_http_stop(srv);
}

int
main(int argc, char **argv)
{
    struct node_opts o = {0};
    struct node_server srv;
    struct bl_conf *conf;
    const char *addr;
    char *err = NULL;
    sigset_t mask;
    int sfd = -1, lfd, rc;
    unsigned threads;
    int status = 1;

    bl_log_init("blog-node");
    if (parse_args(argc, argv, &o) != 0) {
        return 1;
    }
    conf = bl_conf_load(o.config, &err);
    if (conf == NULL) {
        fprintf(stderr, "blog-node: %s\n", err ? err : "cannot load the config");
        free(err);
        return 1;
    }
    addr = check_node_conf(conf, &o);
    if (addr == NULL) {
        bl_conf_destroy(conf);
        return 1;
    }
    if (o.check_config) {
        printf("%s: OK for node %s (listen %s)\n", conf->file ? conf->file : o.config, o.name,
               addr);
        bl_conf_destroy(conf);
        return 0;
    }
    bl_log_set_level(conf->log_level);

    memset(&srv, 0, sizeof(srv));
    srv.conf = conf;
    snprintf(srv.name, sizeof(srv.name), "%s", o.name);
    snprintf(srv.listen, sizeof(srv.listen), "%s", addr);
    srv.post_json_limit = node_json_request_limit(conf->node.limits.post_body);
    pthread_rwlock_init(&srv.auth_lock, NULL);
    atomic_init(&srv.inflight, 0);
    atomic_init(&srv.stopping, false);
    atomic_init(&srv.tmp_seq, 0);
    if (node_server_set_tokens(&srv, conf) != 0) {
        bl_log(BL_LOG_ERROR, "out of memory");
        goto out_conf;
    }

    /* Block the signals before any thread starts, so every thread inherits the mask and
     * only the signalfd below sees them. */
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) != 0 ||
        (sfd = signalfd(-1, &mask, SFD_CLOEXEC)) < 0) {
        bl_log(BL_LOG_ERROR, "signalfd: %s", strerror(errno));
        goto out_conf;
    }
    signal(SIGPIPE, SIG_IGN);

    srv.metrics = node_metrics_create(srv.name);
    if (srv.metrics == NULL) {
        bl_log(BL_LOG_ERROR, "out of memory creating metrics");
        goto out_sfd;
    }
    srv.store = node_store_open(&conf->node.store, &err);
    if (srv.store == NULL) {
        bl_logf(BL_LOG_ERROR, ((struct bl_log_field[]){BL_LOG_STR("error", err)}), 1,
                "cannot open the store");
        fprintf(stderr, "blog-node: cannot open the store: %s\n", err ? err : "unknown error");
        free(err);
        goto out_metrics;
    }
    /* hot cache + Redis coherence (node_cache.h, node_inval.h; docs/CONSISTENCY.md) */
    if (conf->node.cache.enabled) {
        struct node_cache_opts co = {.size = conf->node.cache.size,
                                     .ttl_ms = conf->node.cache.ttl_ms,
                                     .negative_ttl_ms = conf->node.cache.negative_ttl_ms,
                                     .aux_destroy = node_posts_response_release};

        srv.cache = node_cache_create(&co);
        if (srv.cache == NULL || node_cache_register_metrics(srv.cache, srv.metrics->reg) != 0) {
            bl_log(BL_LOG_ERROR, "cannot create the cache (node.cache.size %llu)",
                   (unsigned long long)co.size);
            goto out_store;
        }
        if (conf->cluster.redis != NULL) {
            srv.inval = node_inval_create(conf, srv.name, srv.cache, srv.metrics->reg, &err);
            if (srv.inval == NULL || node_inval_start(srv.inval) != 0) {
                bl_log(BL_LOG_ERROR, "cache coherence: %s", err ? err : "cannot start");
                fprintf(stderr, "blog-node: cache coherence: %s\n", err ? err : "cannot start");
                free(err);
                goto out_store;
            }
        }
    }
    rc = setup_tmpdir(&srv);
    if (rc != 0) {
        bl_log(BL_LOG_ERROR, "cannot create the upload directory %s: %s", srv.tmpdir,
               bl_strerror(rc));
        goto out_store;
    }
    lfd = bl_net_listen(addr, NODE_LISTEN_BACKLOG, false);
    if (lfd < 0) {
        bl_logf(BL_LOG_ERROR, ((struct bl_log_field[]){BL_LOG_STR("addr", addr)}), 1,
                "cannot listen on %s: %s", addr, bl_strerror(lfd));
        fprintf(stderr, "blog-node: cannot listen on %s: %s\n", addr, bl_strerror(lfd));
        goto out_store;
    }
    {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);

        if (getsockname(lfd, (struct sockaddr *)&ss, &sl) == 0) {
            bl_net_addr_str((struct sockaddr *)&ss, srv.listen, sizeof(srv.listen));
        }
    }
    threads = bl_conf_auto_threads(conf->node.threads);
    rc = node_http_start(&srv, lfd, threads, &err);
    if (rc != 0) {
        bl_log(BL_LOG_ERROR, "%s", err);
        free(err);
        goto out_store;
    }
    bl_logf(BL_LOG_INFO,
            ((struct bl_log_field[]){BL_LOG_STR("addr", srv.listen), BL_LOG_STR("name", srv.name),
                                     BL_LOG_UINT("threads", threads),
                                     BL_LOG_STR("store", srv.store->ops->name)}),
            4, "listening");
    notify("READY=1");

    for (;;) {
        struct signalfd_siginfo si;
        ssize_t n = read(sfd, &si, sizeof(si));

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n != (ssize_t)sizeof(si)) {
            bl_log(BL_LOG_ERROR, "signalfd read: %s", strerror(errno));
            break;
        }
        if (si.ssi_signo == SIGHUP) {
            notify("RELOADING=1");
            reload(&srv);
            notify("READY=1");
            continue;
        }
        bl_logf(BL_LOG_INFO, ((struct bl_log_field[]){BL_LOG_STR("signal",
                                                                  strsignal((int)si.ssi_signo))}),
                1, "shutting down");
        break;
    }
    notify("STOPPING=1");
    shutdown_gracefully(&srv);
    status = 0;
    bl_log(BL_LOG_INFO, "stopped");

out_store:
    node_inval_destroy(srv.inval);
    node_cache_destroy(srv.cache);
    node_store_close(srv.store);
out_metrics:
    node_metrics_destroy(srv.metrics);
out_sfd:
    close(sfd);
out_conf:
    free(srv.tokens);
    pthread_rwlock_destroy(&srv.auth_lock);
    bl_conf_destroy(conf);
    return status;
}
