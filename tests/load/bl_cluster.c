#include "bl_cluster.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bl_harness.h"

#define REDIS_BIN "/usr/bin/redis-server"

long
bl_fc_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
bl_fc_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static void
die(const struct bl_fc *fc, const char *what)
{
    fprintf(stderr, "bl_cluster: %s\n", what);
    bl_fc_dump_logs(fc, 3000);
    bl_h_cleanup();
    abort();
}

static void
token_digest(char out[65])
{
    FILE *f = popen("printf %s " BL_FC_TOKEN " | sha256sum", "r");

    if (f == NULL || fgets(out, 65, f) == NULL || strlen(out) != 64) {
        fprintf(stderr, "bl_cluster: sha256sum failed\n");
        abort();
    }
    pclose(f);
}

void
bl_fc_write_conf(struct bl_fc *fc, unsigned mask)
{
    const struct bl_fc_opts *o = &fc->opts;
    char text[8192], digest[65], nodes[2048] = "", redis[96] = "";
    size_t off = 0;

    token_digest(digest);
    for (int i = 0; i < fc->nnodes; i++) {
        if (!(mask & (1u << i))) {
            continue;
        }
        off += (size_t)snprintf(nodes + off, sizeof(nodes) - off,
                                "  - {name: %s, addr: \"127.0.0.1:%d\"}\n", fc->nodes[i].name,
                                fc->nodes[i].port);
    }
    if (fc->redis) {
        snprintf(redis, sizeof(redis), ", redis: \"redis://127.0.0.1:%d/0\"", fc->redis_port);
    }
    snprintf(text, sizeof(text),
             "cluster: {name: fault, write_tokens_sha256: [\"%s\"]%s}\n"
             "node:\n"
             "  threads: %d\n"
             "  store: {driver: lmdb, path: \"%s\", map_size: 512MiB}\n"
             "  cache: {enabled: %s, size: 64MiB, ttl: 60s, negative_ttl: 1s}\n"
             "  shutdown_timeout: 2s\n"
             "lb:\n"
             "  listeners: [{bind: \"127.0.0.1:%d\", mode: http}]\n"
             "  admin: {bind: \"127.0.0.1:%d\", metrics_public: true}\n"
             "  workers: %d\n"
             "  access_log: false\n"
             "  health: {%s}\n"
             "  balance: {%s}\n"
             "  limits: {connect_timeout: 300ms, response_timeout: %s%s%s}\n"
             "  shutdown_timeout: 2s\n"
             "nodes:\n%s"
             "log: {level: info}\n",
             digest, redis, o->node_threads > 0 ? o->node_threads : 2, fc->data,
             fc->redis ? "true" : "false", fc->lb_port, fc->lb_admin,
             o->lb_workers > 0 ? o->lb_workers : 2,
             o->health != NULL ? o->health : "interval: 200ms, timeout: 500ms, rise: 2, fall: 2",
             o->balance != NULL ? o->balance : "retries: 1, retry_budget: 0.2",
             o->response_timeout != NULL ? o->response_timeout : "1s", o->limits != NULL ? ", " : "", o->limits != NULL ? o->limits : "", nodes);
    bl_h_write_file(fc->conf, text);
}

void
bl_fc_redis_start(struct bl_fc *fc)
{
    char port[16];
    char *argv[] = { REDIS_BIN, "--port", port, "--bind", "127.0.0.1", "--save", "",
                     "--appendonly", "no", "--dir", fc->dir, NULL };
    long deadline = bl_fc_now_ms() + 5000;

    snprintf(port, sizeof(port), "%d", fc->redis_port);
    fc->redis_pid = bl_h_spawn(argv, fc->redis_log);
    while (bl_fc_now_ms() < deadline) {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "redis-cli -p %d ping 2>/dev/null | grep -q PONG", fc->redis_port);
        if (system(cmd) == 0) {
            return;
        }
        bl_fc_sleep_ms(50);
    }
    die(fc, "redis-server did not start");
}

void
bl_fc_node_start(struct bl_fc *fc, int i)
{
    struct bl_fc_node *n = &fc->nodes[i];
    char url[96], msg[128];
    char *argv[] = { (char *)bl_h_bin("BLOG_NODE_BIN"), "--config", fc->conf, "--name", n->name,
                     NULL };

    n->pid = bl_h_spawn(argv, n->log);
    snprintf(url, sizeof(url), "%s/readyz", n->url);
    if (!bl_h_wait_http(url, 200, 15000)) {
        snprintf(msg, sizeof(msg), "node %s did not become ready", n->name);
        die(fc, msg);
    }
}

void
bl_fc_start(struct bl_fc *fc, const struct bl_fc_opts *o)
{
    char url[96];
    char *argv[4];

    memset(fc, 0, sizeof(*fc));
    fc->redis_pid = -1;
    fc->lb_pid = -1;
    fc->dir = bl_h_tempdir("blfault");
    fc->nnodes = o->nnodes;
    fc->redis = o->redis;
    if (fc->redis && access(REDIS_BIN, X_OK) != 0) {
        die(fc, REDIS_BIN " is missing (scripts/install-deps.sh installs redis-server)");
    }
    snprintf(fc->conf, sizeof(fc->conf), "%s/cluster.yaml", fc->dir);
    snprintf(fc->data, sizeof(fc->data), "%s/data", fc->dir);
    snprintf(fc->redis_log, sizeof(fc->redis_log), "%s/redis.log", fc->dir);
    snprintf(fc->lb_log, sizeof(fc->lb_log), "%s/lb.log", fc->dir);
    if (mkdir(fc->data, 0755) != 0) {
        die(fc, "mkdir data");
    }
    for (int i = 0; i < fc->nnodes; i++) {
        struct bl_fc_node *n = &fc->nodes[i];
        snprintf(n->name, sizeof(n->name), "n%d", i + 1);
        n->port = bl_h_free_port();
        n->pid = -1;
        snprintf(n->url, sizeof(n->url), "http://127.0.0.1:%d", n->port);
        snprintf(n->log, sizeof(n->log), "%s/n%d.log", fc->dir, i + 1);
    }
    fc->redis_port = bl_h_free_port();
    fc->lb_port = bl_h_free_port();
    fc->lb_admin = bl_h_free_port();
    snprintf(fc->lb_url, sizeof(fc->lb_url), "http://127.0.0.1:%d", fc->lb_port);
    fc->opts = *o;
    bl_fc_write_conf(fc, ~0u);
    if (fc->redis) {
        bl_fc_redis_start(fc);
    }
    for (int i = 0; i < fc->nnodes; i++) {
        bl_fc_node_start(fc, i);
    }
    argv[0] = (char *)bl_h_bin("BLOG_LB_BIN");
    argv[1] = "--config";
    argv[2] = fc->conf;
    argv[3] = NULL;
    fc->lb_pid = bl_h_spawn(argv, fc->lb_log);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/healthz", fc->lb_admin);
    if (!bl_h_wait_http(url, 200, 10000)) {
        die(fc, "blog-lb did not start");
    }
    for (int i = 0; i < fc->nnodes; i++) {
        if (bl_fc_wait_node_up(fc, i, 1, 5000) < 0) {
            die(fc, "the LB did not see every node up");
        }
    }
}

static double
metric_from(const char *url, const char *series, bool sum)
{
    struct bl_h_resp *r = bl_h_http("GET", url, NULL, NULL, 0);
    size_t n = strlen(series);
    double v = -1;

    if (r->status == 200) {
        for (char *p = r->body; p != NULL && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
            if (strncmp(p, series, n) != 0) {
                continue;
            }
            if (!sum && p[n] == ' ') {
                v = strtod(p + n + 1, NULL);
                break;
            }
            if (sum && (p[n] == ' ' || p[n] == '{')) {
                char *sp = strchr(p, ' ');
                char *nl = strchr(p, '\n');
                if (sp != NULL && (nl == NULL || sp < nl)) {
                    v = (v < 0 ? 0 : v) + strtod(sp + 1, NULL);
                }
            }
        }
    }
    bl_h_resp_free(r);
    return v;
}

double
bl_fc_lb_metric(const struct bl_fc *fc, const char *series)
{
    char url[96];

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", fc->lb_admin);
    return metric_from(url, series, false);
}

double
bl_fc_lb_metric_sum(const struct bl_fc *fc, const char *name)
{
    char url[96];

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", fc->lb_admin);
    return metric_from(url, name, true);
}

double
bl_fc_node_metric(const struct bl_fc *fc, int i, const char *series)
{
    char url[96];

    snprintf(url, sizeof(url), "%s/metrics", fc->nodes[i].url);
    return metric_from(url, series, false);
}

double
bl_fc_node_up(const struct bl_fc *fc, int i)
{
    char series[64];

    snprintf(series, sizeof(series), "blog_lb_node_up{node=\"%s\"}", fc->nodes[i].name);
    return bl_fc_lb_metric(fc, series);
}

long
bl_fc_wait_node_up(const struct bl_fc *fc, int i, int up, int timeout_ms)
{
    long t0 = bl_fc_now_ms();

    for (;;) {
        if (bl_fc_node_up(fc, i) == (double)up) {
            return bl_fc_now_ms() - t0;
        }
        if (bl_fc_now_ms() - t0 > timeout_ms) {
            return -1;
        }
        bl_fc_sleep_ms(20);
    }
}

static void
dump_one(const char *label, const char *path, long bytes)
{
    size_t len = 0;
    char *text = bl_h_read_file(path, &len);

    if (text == NULL) {
        return;
    }
    fprintf(stderr, "----- %s (%s, last %ld bytes) -----\n%s\n", label, path, bytes,
            (long)len > bytes ? text + len - (size_t)bytes : text);
    free(text);
}

void
bl_fc_dump_logs(const struct bl_fc *fc, long bytes)
{
    for (int i = 0; i < fc->nnodes; i++) {
        dump_one(fc->nodes[i].name, fc->nodes[i].log, bytes);
    }
    dump_one("lb", fc->lb_log, bytes);
    if (fc->redis) {
        dump_one("redis", fc->redis_log, bytes);
    }
}

int
bl_fc_node_index(const struct bl_fc *fc, const char *name)
{
    for (int i = 0; i < fc->nnodes; i++) {
        if (strcmp(fc->nodes[i].name, name) == 0) {
            return i;
        }
    }
    return -1;
}
