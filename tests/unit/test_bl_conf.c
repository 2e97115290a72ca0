/*
 * Cluster-file loader: both examples load, every default, every unit, and each class of
 * error names the exact file:line:column and dotted key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "bl/bl_conf.h"
#include "bl/bl_util.h"

static char source_dir[1024];

/* The repo root: $BLOG_SOURCE_DIR (ctest), else derived from this file's path. */
static void
find_source_dir(void)
{
    const char *env = getenv("BLOG_SOURCE_DIR");
    const char *suffix = "/tests/unit/test_bl_conf.c";
    size_t flen = strlen(__FILE__);
    size_t slen = strlen(suffix);

    if (env != NULL && env[0] != '\0') {
        snprintf(source_dir, sizeof(source_dir), "%s", env);
    } else if (flen > slen && strcmp(&__FILE__[flen - slen], suffix) == 0) {
        snprintf(source_dir, sizeof(source_dir), "%.*s", (int)(flen - slen), __FILE__);
    } else {
        snprintf(source_dir, sizeof(source_dir), ".");
    }
}

static void
src_path(char *out, size_t size, const char *rel)
{
    snprintf(out, size, "%s/%s", source_dir, rel);
}

static struct bl_conf *
load_str(const char *yaml, char **err)
{
    return bl_conf_load_buffer(yaml, strlen(yaml), "t.yaml", err);
}

static struct bl_conf *
load_ok(const char *yaml)
{
    char *err = NULL;
    struct bl_conf *conf = load_str(yaml, &err);

    if (conf == NULL) {
        print_error("unexpected error: %s\nfor:\n%s\n", err, yaml);
        free(err);
        fail();
    }
    assert_null(err);
    return conf;
}

/* Asserts that <yaml> fails with a message starting with <prefix> (and containing <also>). */
static void
expect_err(const char *yaml, const char *prefix, const char *also)
{
    char *err = NULL;
    struct bl_conf *conf = load_str(yaml, &err);

    if (conf != NULL) {
        bl_conf_destroy(conf);
        print_error("loaded, expected error \"%s\" for:\n%s\n", prefix, yaml);
        fail();
    }
    assert_non_null(err);
    if (strncmp(err, prefix, strlen(prefix)) != 0 || (also && strstr(err, also) == NULL)) {
        print_error("got:      %s\nexpected: %s ... %s\nfor:\n%s\n", err, prefix,
                    also ? also : "", yaml);
        free(err);
        fail();
    }
    free(err);
}

/* ------------------------------------------------------------------ examples */

static void
test_example_local(void **state)
{
    char path[1200];
    char *err = NULL;
    struct bl_conf *c;
    static const uint8_t demo_token[BL_SHA256_LEN] = {
        0xc9, 0x69, 0xed, 0x26, 0x92, 0x54, 0x49, 0x92, 0xe6, 0xf9, 0x73, 0x29, 0xec, 0xa3,
        0x87, 0x5c, 0xf1, 0xba, 0x7a, 0x4e, 0x99, 0xdd, 0x12, 0x3d, 0xa6, 0x76, 0x9a, 0xca,
        0xf1, 0xe6, 0x35, 0xd9,
    };

    src_path(path, sizeof(path), "examples/local.yaml");
    c = bl_conf_load(path, &err);
    if (c == NULL) {
        print_error("%s\n", err);
        free(err);
        fail();
    }
    assert_string_equal(c->file, path);
    assert_string_equal(c->cluster.name, "demo");
    assert_string_equal(c->cluster.redis, "redis://127.0.0.1:6390/0");
    assert_true(c->cluster.redis_managed);
    assert_int_equal(c->cluster.nwrite_tokens, 1);
    assert_memory_equal(c->cluster.write_tokens[0], demo_token, BL_SHA256_LEN);
    assert_false(c->cluster.allow_anonymous_writes);
    assert_int_equal(c->lb.nlisteners, 1);
    assert_string_equal(c->lb.listeners[0].bind, "127.0.0.1:8080");
    assert_int_equal(c->lb.listeners[0].mode, BL_MODE_HTTP);
    assert_false(c->lb.listeners[0].tls.enabled);
    assert_string_equal(c->lb.admin.bind, "127.0.0.1:8404");
    assert_true(c->lb.admin.has_token);
    assert_int_equal(c->lb.admin.token_sha256[0], 0x93);
    assert_int_equal(c->lb.admin.token_sha256[31], 0xe2);
    assert_int_equal(c->lb.workers, 1);
    assert_int_equal(c->node.threads, 2);
    assert_int_equal(c->node.store.driver, BL_STORE_LMDB);
    assert_string_equal(c->node.store.path, "/var/tmp/blogscale-demo/data");
    assert_int_equal(c->node.store.map_size, 1ull << 30);
    assert_true(c->node.cache.enabled);
    assert_int_equal(c->node.cache.size, 64ull << 20);
    assert_int_equal(c->nnodes, 3);
    for (size_t i = 0; i < 3; i++) {
        char name[8];
        char addr[32];

        snprintf(name, sizeof(name), "n%zu", i + 1);
        snprintf(addr, sizeof(addr), "127.0.0.1:%zu", 9101 + i);
        assert_string_equal(c->nodes[i].name, name);
        assert_string_equal(c->nodes[i].addr, addr);
        assert_int_equal(c->nodes[i].weight, 1);
    }
    assert_true(c->autoscale.enabled);
    assert_int_equal(c->autoscale.min, 3);
    assert_int_equal(c->autoscale.max, 6);
    assert_null(c->autoscale.scale_up);
    assert_null(c->autoscale.scale_down);
    assert_int_equal(c->log_level, BL_LOG_INFO);
    assert_int_equal(c->nwarnings, 0);
    bl_conf_destroy(c);
}

static void
test_example_full(void **state)
{
    char path[1200];
    char *err = NULL;
    struct bl_conf *c;

    src_path(path, sizeof(path), "examples/full.yaml");
    c = bl_conf_load(path, &err);
    if (c == NULL) {
        print_error("%s\n", err);
        free(err);
        fail();
    }
    assert_int_equal(c->nwarnings, 0);
    assert_int_equal(c->lb.nlisteners, 3);
    assert_true(c->lb.listeners[1].tls.enabled);
    assert_string_equal(c->lb.listeners[1].tls.cert, "/etc/blogscale/tls/site.crt");
    assert_string_equal(c->lb.listeners[1].tls.key, "/etc/blogscale/tls/site.key");
    assert_int_equal(c->lb.listeners[1].tls.nsni, 1);
    assert_string_equal(c->lb.listeners[1].tls.sni[0].key, "/etc/blogscale/tls/other.key");
    assert_null(c->lb.listeners[1].tls.ciphers);
    assert_int_equal(c->lb.listeners[2].mode, BL_MODE_TCP);
    assert_int_equal(c->lb.listeners[2].balance, BL_BALANCE_MAGLEV);
    assert_false(c->lb.admin.has_token);
    assert_int_equal(c->nnodes, 2);
    assert_true(c->autoscale.enabled);
    assert_null(c->autoscale.bind);

    /* full.yaml states the defaults: each value must equal what an empty section gives. */
    assert_int_equal(c->lb.workers, 0);
    assert_string_equal(c->lb.health.path, BL_CONF_DEFAULT_HEALTH_PATH);
    assert_int_equal(c->lb.health.interval_ms, BL_CONF_DEFAULT_HEALTH_INTERVAL_MS);
    assert_int_equal(c->lb.health.timeout_ms, BL_CONF_DEFAULT_HEALTH_TIMEOUT_MS);
    assert_int_equal(c->lb.limits.queue_size, BL_CONF_DEFAULT_QUEUE_SIZE);
    assert_int_equal(c->lb.limits.max_header_bytes, BL_CONF_DEFAULT_MAX_HEADER_BYTES);
    assert_int_equal(c->lb.limits.max_body, BL_CONF_DEFAULT_MAX_BODY);
    assert_int_equal(c->node.store.map_size, BL_CONF_DEFAULT_MAP_SIZE);
    assert_int_equal(c->node.cache.size, BL_CONF_DEFAULT_CACHE_SIZE);
    assert_int_equal(c->node.cache.ttl_ms, BL_CONF_DEFAULT_CACHE_TTL_MS);
    assert_int_equal(c->node.limits.asset, BL_CONF_DEFAULT_ASSET);
    assert_int_equal(c->autoscale.interval_ms, BL_CONF_DEFAULT_AUTOSCALE_INTERVAL_MS);
    assert_int_equal(c->autoscale.down_window_ms, BL_CONF_DEFAULT_DOWN_WINDOW_MS);
    assert_int_equal(c->autoscale.hook_timeout_ms, BL_CONF_DEFAULT_HOOK_TIMEOUT_MS);
    assert_int_equal(c->node.nasset_types, 5);
    assert_string_equal(c->node.asset_types[4], "application/pdf");
    bl_conf_destroy(c);
}

/* ------------------------------------------------------------------ defaults */

static void
test_defaults(void **state)
{
    struct bl_conf *c = load_ok("nodes:\n  - {name: solo, addr: \"127.0.0.1:9101\"}\n");

    assert_string_equal(c->file, "t.yaml");
    assert_string_equal(c->cluster.name, BL_CONF_DEFAULT_CLUSTER_NAME);
    assert_null(c->cluster.redis);
    assert_false(c->cluster.redis_managed);
    assert_int_equal(c->cluster.nwrite_tokens, 0);
    assert_false(c->cluster.allow_anonymous_writes);

    assert_int_equal(c->lb.nlisteners, 0);
    assert_string_equal(c->lb.admin.bind, BL_CONF_DEFAULT_ADMIN_BIND);
    assert_false(c->lb.admin.has_token);
    assert_false(c->lb.admin.metrics_public);
    assert_int_equal(c->lb.workers, BL_CONF_DEFAULT_WORKERS);
    assert_string_equal(c->lb.health.path, BL_CONF_DEFAULT_HEALTH_PATH);
    assert_int_equal(c->lb.health.interval_ms, BL_CONF_DEFAULT_HEALTH_INTERVAL_MS);
    assert_int_equal(c->lb.health.timeout_ms, BL_CONF_DEFAULT_HEALTH_TIMEOUT_MS);
    assert_int_equal(c->lb.health.rise, BL_CONF_DEFAULT_HEALTH_RISE);
    assert_int_equal(c->lb.health.fall, BL_CONF_DEFAULT_HEALTH_FALL);
    assert_int_equal(c->lb.balance.by_id, BL_BALANCE_MAGLEV);
    assert_int_equal(c->lb.balance.other, BL_BALANCE_P2C);
    assert_true(c->lb.balance.bounded_load == BL_CONF_DEFAULT_BOUNDED_LOAD);
    assert_int_equal(c->lb.balance.retries, BL_CONF_DEFAULT_RETRIES);
    assert_true(c->lb.balance.retry_budget == BL_CONF_DEFAULT_RETRY_BUDGET);
    assert_int_equal(c->lb.limits.max_client_conns, BL_CONF_DEFAULT_MAX_CLIENT_CONNS);
    assert_int_equal(c->lb.limits.node_max_conns, BL_CONF_DEFAULT_NODE_MAX_CONNS);
    assert_int_equal(c->lb.limits.queue_size, BL_CONF_DEFAULT_QUEUE_SIZE);
    assert_int_equal(c->lb.limits.queue_timeout_ms, BL_CONF_DEFAULT_QUEUE_TIMEOUT_MS);
    assert_int_equal(c->lb.limits.header_timeout_ms, BL_CONF_DEFAULT_HEADER_TIMEOUT_MS);
    assert_int_equal(c->lb.limits.body_timeout_ms, BL_CONF_DEFAULT_BODY_TIMEOUT_MS);
    assert_int_equal(c->lb.limits.connect_timeout_ms, BL_CONF_DEFAULT_CONNECT_TIMEOUT_MS);
    assert_int_equal(c->lb.limits.response_timeout_ms, BL_CONF_DEFAULT_RESPONSE_TIMEOUT_MS);
    assert_int_equal(c->lb.limits.idle_timeout_ms, BL_CONF_DEFAULT_IDLE_TIMEOUT_MS);
    assert_int_equal(c->lb.limits.rate_per_ip, 0);
    assert_int_equal(c->lb.limits.max_header_bytes, BL_CONF_DEFAULT_MAX_HEADER_BYTES);
    assert_int_equal(c->lb.limits.max_headers, BL_CONF_DEFAULT_MAX_HEADERS);
    assert_int_equal(c->lb.limits.max_body, BL_CONF_DEFAULT_MAX_BODY);
    assert_true(c->lb.access_log);
    assert_int_equal(c->lb.shutdown_timeout_ms, BL_CONF_DEFAULT_SHUTDOWN_TIMEOUT_MS);

    assert_int_equal(c->node.threads, BL_CONF_DEFAULT_THREADS);
    assert_int_equal(c->node.store.driver, BL_STORE_LMDB);
    assert_string_equal(c->node.store.path, BL_CONF_DEFAULT_STORE_PATH);
    assert_int_equal(c->node.store.map_size, BL_CONF_DEFAULT_MAP_SIZE);
    assert_null(c->node.store.uri);
    assert_string_equal(c->node.store.database, BL_CONF_DEFAULT_MONGO_DATABASE);
    assert_string_equal(c->node.store.write_concern, BL_CONF_DEFAULT_WRITE_CONCERN);
    assert_string_equal(c->node.store.read_preference, BL_CONF_DEFAULT_READ_PREFERENCE);
    assert_int_equal(c->node.store.server_selection_timeout_ms,
                     BL_CONF_DEFAULT_SERVER_SELECTION_TIMEOUT_MS);
    assert_int_equal(c->node.store.socket_timeout_ms, BL_CONF_DEFAULT_SOCKET_TIMEOUT_MS);
    assert_true(c->node.cache.enabled);
    assert_int_equal(c->node.cache.size, BL_CONF_DEFAULT_CACHE_SIZE);
    assert_int_equal(c->node.cache.ttl_ms, BL_CONF_DEFAULT_CACHE_TTL_MS);
    assert_int_equal(c->node.cache.negative_ttl_ms, BL_CONF_DEFAULT_NEGATIVE_TTL_MS);
    assert_int_equal(c->node.limits.post_body, BL_CONF_DEFAULT_POST_BODY);
    assert_int_equal(c->node.limits.asset, BL_CONF_DEFAULT_ASSET);
    assert_int_equal(c->node.nasset_types, 5);
    assert_string_equal(c->node.asset_types[0], "image/png");
    assert_int_equal(c->node.shutdown_timeout_ms, BL_CONF_DEFAULT_SHUTDOWN_TIMEOUT_MS);

    assert_int_equal(c->nnodes, 1);
    assert_int_equal(c->nodes[0].weight, BL_CONF_DEFAULT_NODE_WEIGHT);

    assert_false(c->autoscale.enabled);
    assert_int_equal(c->autoscale.interval_ms, BL_CONF_DEFAULT_AUTOSCALE_INTERVAL_MS);
    assert_int_equal(c->autoscale.min, BL_CONF_DEFAULT_AUTOSCALE_MIN);
    assert_int_equal(c->autoscale.max, BL_CONF_DEFAULT_AUTOSCALE_MAX);
    assert_true(c->autoscale.target_rps_per_node == BL_CONF_DEFAULT_TARGET_RPS_PER_NODE);
    assert_true(c->autoscale.tolerance == BL_CONF_DEFAULT_TOLERANCE);
    assert_int_equal(c->autoscale.up_window_ms, BL_CONF_DEFAULT_UP_WINDOW_MS);
    assert_int_equal(c->autoscale.down_window_ms, BL_CONF_DEFAULT_DOWN_WINDOW_MS);
    assert_int_equal(c->autoscale.cooldown_ms, BL_CONF_DEFAULT_COOLDOWN_MS);
    assert_int_equal(c->autoscale.hook_timeout_ms, BL_CONF_DEFAULT_HOOK_TIMEOUT_MS);
    assert_null(c->autoscale.scale_up);
    assert_null(c->autoscale.bind);
    assert_int_equal(c->log_level, BL_LOG_INFO);

    /* No write token and no anonymous writes: loads, but is recorded. */
    assert_int_equal(c->nwarnings, 1);
    assert_non_null(strstr(c->warnings[0], "cluster.write_tokens_sha256"));
    assert_non_null(strstr(c->warnings[0], "refuse to start"));
    bl_conf_destroy(c);

    /* An empty section is all defaults too; autoscale: alone turns autoscaling on. */
    c = load_ok("lb:\nnode: {}\nautoscale:\n"
                "cluster: {allow_anonymous_writes: true, redis: \"redis://127.0.0.1\"}\n");
    assert_int_equal(c->lb.health.rise, BL_CONF_DEFAULT_HEALTH_RISE);
    assert_true(c->autoscale.enabled);
    assert_int_equal(c->autoscale.max, BL_CONF_DEFAULT_AUTOSCALE_MAX);
    assert_int_equal(c->nwarnings, 0);
    bl_conf_destroy(c);
}

/* ------------------------------------------------------------------ units and values */

static void
test_units(void **state)
{
    struct bl_conf *c = load_ok(
        "cluster: {allow_anonymous_writes: true}\n"
        "lb:\n"
        "  workers: auto\n"
        "  health: {interval: 250ms, timeout: 2s, rise: 3, fall: 5}\n"
        "  limits: {queue_timeout: 0, header_timeout: 5m, idle_timeout: 2h,\n"
        "           body_timeout: 1500ms, max_header_bytes: 8KiB, max_body: 0,\n"
        "           max_headers: 64, rate_per_ip: 50}\n"
        "  balance: {by_id: p2c, other: roundrobin, bounded_load: 0, retries: 0,\n"
        "            retry_budget: 0.05}\n"
        "node:\n"
        "  threads: 8\n"
        "  store: {map_size: 2TiB}\n"
        "  cache: {size: 100MB, ttl: 1h, negative_ttl: 0, enabled: false}\n"
        "  limits: {post_body: 512B, asset: 3GB}\n"
        "  assets: {types: [image/png, text/plain]}\n"
        "log: {level: debug}\n");

    assert_int_equal(c->lb.workers, 0);
    assert_int_equal(c->lb.health.interval_ms, 250);
    assert_int_equal(c->lb.health.timeout_ms, 2000);
    assert_int_equal(c->lb.health.rise, 3);
    assert_int_equal(c->lb.health.fall, 5);
    assert_int_equal(c->lb.limits.queue_timeout_ms, 0);
    assert_int_equal(c->lb.limits.header_timeout_ms, 300000);
    assert_int_equal(c->lb.limits.idle_timeout_ms, 7200000);
    assert_int_equal(c->lb.limits.body_timeout_ms, 1500);
    assert_int_equal(c->lb.limits.max_header_bytes, 8192);
    assert_int_equal(c->lb.limits.max_body, 0);
    assert_int_equal(c->lb.limits.max_headers, 64);
    assert_int_equal(c->lb.limits.rate_per_ip, 50);
    assert_int_equal(c->lb.balance.by_id, BL_BALANCE_P2C);
    assert_int_equal(c->lb.balance.other, BL_BALANCE_ROUNDROBIN);
    assert_true(c->lb.balance.bounded_load == 0.0);
    assert_int_equal(c->lb.balance.retries, 0);
    assert_true(c->lb.balance.retry_budget == 0.05);
    assert_int_equal(c->node.threads, 8);
    assert_int_equal(c->node.store.map_size, 2ull << 40);
    assert_int_equal(c->node.cache.size, 100000000ull);
    assert_int_equal(c->node.cache.ttl_ms, 3600000);
    assert_int_equal(c->node.cache.negative_ttl_ms, 0);
    assert_false(c->node.cache.enabled);
    assert_int_equal(c->node.limits.post_body, 512);
    assert_int_equal(c->node.limits.asset, 3000000000ull);
    assert_int_equal(c->node.nasset_types, 2);
    assert_string_equal(c->node.asset_types[1], "text/plain");
    assert_int_equal(c->log_level, BL_LOG_DEBUG);
    bl_conf_destroy(c);

    /* Quoted durations are fine; null unsets optional strings; TRUE is a bool. */
    c = load_ok("cluster: {redis: ~, allow_anonymous_writes: TRUE}\n"
                "lb: {health: {interval: \"3s\"}, access_log: false}\n"
                "node:\n"
                "  cache: {enabled: false}\n"
                "  store: {driver: mongodb, uri: \"mongodb://db1:27017/?replicaSet=rs0\","
                " database: blog2}\n"
                "nodes: [{name: a.b_c-1, addr: \"[::1]:9101\", weight: 7},"
                " {name: n2, addr: \"localhost:9102\"}]\n");
    assert_null(c->cluster.redis);
    assert_true(c->cluster.allow_anonymous_writes);
    assert_int_equal(c->lb.health.interval_ms, 3000);
    assert_false(c->lb.access_log);
    assert_int_equal(c->node.store.driver, BL_STORE_MONGODB);
    assert_string_equal(c->node.store.uri, "mongodb://db1:27017/?replicaSet=rs0");
    assert_string_equal(c->node.store.database, "blog2");
    assert_string_equal(c->nodes[0].name, "a.b_c-1");
    assert_string_equal(c->nodes[0].addr, "[::1]:9101");
    assert_int_equal(c->nodes[0].weight, 7);
    assert_string_equal(c->nodes[1].addr, "localhost:9102");
    bl_conf_destroy(c);

    /* Several nodes with the cache on are fine once Redis is there (rediss:// too). */
    c = load_ok("cluster: {redis: \"rediss://:secret@10.0.0.5:6380/2\"}\n"
                "nodes: [{name: n1, addr: \"10.0.0.1:9101\"}, {name: n2, addr: \"10.0.0.2:9101\"}]\n");
    assert_string_equal(c->cluster.redis, "rediss://:secret@10.0.0.5:6380/2");
    bl_conf_destroy(c);
}

/* ------------------------------------------------------------------ errors */

struct err_case {
    const char *yaml;
    const char *prefix;     /* exact "file:line:column: key: message-start" */
    const char *also;       /* another part of the message, or NULL */
};

#define TWO_NODES "nodes: [{name: n1, addr: \"127.0.0.1:9101\"}, {name: n2, addr: \"127.0.0.1:9102\"}]\n"
#define DIGEST "c969ed2692544992e6f97329eca3875cf1ba7a4e99dd123da6769acaf1e635d9"

static const struct err_case err_cases[] = {
    /* bad duration (the value's position) */
    { "lb:\n  health:\n    interval: fast\n",
      "t.yaml:3:15: lb.health.interval: expected a duration like 500ms or 2s", "\"fast\"" },
    /* fractions are rejected with a hint */
    { "lb:\n  health:\n    timeout: 1.5s\n",
      "t.yaml:3:14: lb.health.timeout: expected a duration like 500ms or 2s", "1500ms" },
    /* a bare number is not a duration */
    { "node: {cache: {ttl: 300}}\n",
      "t.yaml:1:21: node.cache.ttl: expected a duration like 500ms or 2s", NULL },
    /* duration out of range */
    { "lb: {health: {interval: 2h}}\n",
      "t.yaml:1:25: lb.health.interval: must be from 10ms to 1h", NULL },
    /* duration overflow */
    { "lb: {health: {interval: 99999999999999999999h}}\n",
      "t.yaml:1:25: lb.health.interval: duration \"99999999999999999999h\" is too large", NULL },
    /* unknown key with a suggestion (the key's position) */
    { "lb:\n  helth: {}\n", "t.yaml:2:3: lb.helth: unknown key (did you mean lb.health?)",
      NULL },
    { "node:\n  store:\n    map_sise: 1GiB\n",
      "t.yaml:3:5: node.store.map_sise: unknown key (did you mean node.store.map_size?)", NULL },
    /* unknown key, nothing close: list what is known */
    { "bogus: 1\n", "t.yaml:1:1: bogus: unknown key (known keys here: cluster, lb, node, "
      "nodes, autoscale, log)", NULL },
    { "lb.workers: 4\n", "t.yaml:1:1: lb.workers: unknown key (dotted keys are not expanded: "
      "nest it under lb:)", NULL },
    /* wrong types */
    { "lb: 5\n", "t.yaml:1:5: lb: expected a mapping, got a scalar", NULL },
    { "nodes: {n1: x}\n", "t.yaml:1:8: nodes: expected a list, got a mapping", NULL },
    { "nodes: [n1]\n", "t.yaml:1:9: nodes[0]: expected a mapping, got a scalar", NULL },
    { "cluster: {name: [a]}\n", "t.yaml:1:17: cluster.name: expected a string, got a list",
      NULL },
    { "lb:\n  access_log: yes\n", "t.yaml:2:15: lb.access_log: expected true or false", NULL },
    { "lb: {health: {rise: \"2\"}}\n", "t.yaml:1:21: lb.health.rise: expected an integer from "
      "1 to 100", NULL },
    { "lb: {health: {rise: 0}}\n", "t.yaml:1:21: lb.health.rise: expected an integer from "
      "1 to 100, got \"0\"", NULL },
    { "lb: {workers: many}\n", "t.yaml:1:15: lb.workers: expected auto or an integer from 1 "
      "to 1024", NULL },
    { "lb: {balance: {retry_budget: 1.5}}\n",
      "t.yaml:1:30: lb.balance.retry_budget: expected a number from 0 to 1", NULL },
    { "lb: {listeners: [{bind: \"127.0.0.1:80\", mode: udp}]}\n",
      "t.yaml:1:47: lb.listeners[0].mode: expected one of http, tcp, got \"udp\"", NULL },
    { "log: {level: verbose}\n", "t.yaml:1:14: log.level: expected one of debug, info, warn, "
      "error", NULL },
    /* sizes */
    { "node:\n  cache:\n    size: 1024\n",
      "t.yaml:3:11: node.cache.size: a size needs a unit", "1024KiB" },
    { "node:\n  cache:\n    size: 64mb\n",
      "t.yaml:3:11: node.cache.size: expected a size like 64MiB or 1GiB", NULL },
    { "node: {store: {map_size: 4KiB}}\n",
      "t.yaml:1:26: node.store.map_size: must be from 1MiB to 64TiB", NULL },
    { "node: {limits: {asset: 99999999999999999999GiB}}\n",
      "t.yaml:1:24: node.limits.asset: size \"99999999999999999999GiB\" is too large", NULL },
    /* duplicate keys */
    { "cluster:\n  name: a\n  name: b\n",
      "t.yaml:3:3: cluster.name: duplicate key (first given at 2:3)", NULL },
    { "lb: {}\nnode: {}\nlb: {}\n", "t.yaml:3:1: lb: duplicate key (first given at 1:1)", NULL },
    /* missing required keys (the mapping's position) */
    { "nodes:\n  - addr: \"127.0.0.1:9101\"\n",
      "t.yaml:2:5: nodes[0].name: missing required key", NULL },
    { "nodes:\n  - name: n1\n", "t.yaml:2:5: nodes[0].addr: missing required key", NULL },
    { "lb:\n  listeners:\n    - mode: tcp\n",
      "t.yaml:3:7: lb.listeners[0].bind: missing required key", NULL },
    { "lb:\n  listeners:\n    - bind: 127.0.0.1:80\n      tls: {cert: a.pem}\n",
      "t.yaml:4:12: lb.listeners[0].tls.key: missing required key", NULL },
    /* addresses */
    { "nodes: [{name: n1, addr: \"127.0.0.1:70000\"}]\n",
      "t.yaml:1:26: nodes[0].addr: the port must be a number from 1 to 65535", NULL },
    { "nodes: [{name: n1, addr: \"127.0.0.1:0\"}]\n",
      "t.yaml:1:26: nodes[0].addr: the port must be a number from 1 to 65535", NULL },
    { "nodes: [{name: n1, addr: \"node1.example.com:9101\"}]\n",
      "t.yaml:1:26: nodes[0].addr: host \"node1.example.com\" is not a numeric IPv4 address",
      NULL },
    { "nodes: [{name: n1, addr: \"127.0.0.1\"}]\n",
      "t.yaml:1:26: nodes[0].addr: expected HOST:PORT", "port is missing" },
    { "lb: {admin: {bind: \"::1:8404\"}}\n",
      "t.yaml:1:20: lb.admin.bind: expected HOST:PORT, with an IPv6 host written as [::1]:PORT",
      NULL },
    { "nodes: [{name: n1, addr: \"[fe80::zz]:80\"}]\n",
      "t.yaml:1:26: nodes[0].addr: \"fe80::zz\" is not a numeric IPv6 address", NULL },
    /* duplicate node names and addresses */
    { "nodes:\n  - {name: n1, addr: \"127.0.0.1:9101\"}\n  - {name: n1, addr: \"127.0.0.1:9102\"}\n",
      "t.yaml:3:12: nodes[1].name: duplicate node name n1 (also nodes[0], line 2)", NULL },
    { "nodes:\n  - {name: n1, addr: \"127.0.0.1:9101\"}\n  - {name: n2, addr: \"127.0.0.1:9101\"}\n",
      "t.yaml:3:22: nodes[1].addr: duplicate node address 127.0.0.1:9101", NULL },
    { "nodes: [{name: \"bad name\", addr: \"127.0.0.1:9101\"}]\n",
      "t.yaml:1:16: nodes[0].name: must be 1 to 64 characters of A-Z a-z 0-9 _ . -", NULL },
    { "lb: {listeners: [{bind: \"127.0.0.1:80\"}, {bind: \"127.0.0.1:80\"}]}\n",
      "t.yaml:1:49: lb.listeners[1].bind: 127.0.0.1:80 is already the bind of lb.listeners[0]",
      NULL },
    { "lb: {listeners: [{bind: \"127.0.0.1:8404\"}]}\n",
      "t.yaml:1:5: lb.admin.bind: 127.0.0.1:8404 is also the bind of lb.listeners[0]", NULL },
    { "lb: {listeners: [{bind: \"127.0.0.1:8080\"}]}\n"
      "nodes: [{name: n1, addr: \"127.0.0.1:8080\"}]\n",
      "t.yaml:2:26: nodes[0].addr: 127.0.0.1:8080 is also a bind of lb.listeners", NULL },
    { "nodes: [{name: n1, addr: \"127.0.0.1:8404\"}]\n",
      "t.yaml:1:26: nodes[0].addr: 127.0.0.1:8404 is also lb.admin.bind", NULL },
    /* digests */
    { "cluster:\n  write_tokens_sha256: [abc]\n",
      "t.yaml:2:25: cluster.write_tokens_sha256[0]: expected a SHA-256 digest of 64 hex digits",
      "got 3 characters" },
    { "cluster:\n  write_tokens_sha256:\n    - " DIGEST "\n    - "
      "X969ed2692544992e6f97329eca3875cf1ba7a4e99dd123da6769acaf1e635d9\n",
      "t.yaml:4:7: cluster.write_tokens_sha256[1]: expected a SHA-256 digest of 64 hex digits, "
      "found a non-hex character", NULL },
    { "lb: {admin: {token_sha256: blogscale-demo-admin}}\n",
      "t.yaml:1:28: lb.admin.token_sha256: expected a SHA-256 digest", NULL },
    /* URLs */
    { "cluster: {redis: \"http://127.0.0.1:6379\"}\n",
      "t.yaml:1:18: cluster.redis: expected a redis://", NULL },
    { "cluster: {redis: \"redis://127.0.0.1:99999/0\"}\n",
      "t.yaml:1:18: cluster.redis: the Redis port must be a number from 1 to 65535", NULL },
    { "node: {store: {driver: mongodb, uri: \"127.0.0.1:27017\"}}\n",
      "t.yaml:1:38: node.store.uri: expected a mongodb:// or mongodb+srv:// URI", NULL },
    /* cross-section rules */
    { "node: {cache: {size: 64MiB}}\n" TWO_NODES,
      "t.yaml:1:15: node.cache.enabled: a cluster of 2 nodes with the node cache on needs "
      "cluster.redis", "coherence" },
    { TWO_NODES, "t.yaml:1:8: node.cache.enabled: a cluster of 2 nodes", "Redis pub/sub" },
    { "autoscale: {max: 4}\n",
      "t.yaml:1:12: node.cache.enabled: a cluster of autoscale up to 4 nodes", NULL },
    { "node: {store: {driver: mongodb}}\n",
      "t.yaml:1:24: node.store.driver: driver mongodb needs node.store.uri", NULL },
    { "autoscale: {min: 5, max: 2}\n",
      "t.yaml:1:26: autoscale.max: autoscale.min (5) must not exceed autoscale.max (2)", NULL },
    { "cluster: {redis_managed: true}\n",
      "t.yaml:1:26: cluster.redis_managed: needs cluster.redis", NULL },
    { "lb: {listeners: [{bind: \"127.0.0.1:9000\", mode: http, balance: leastconn}]}\n",
      "t.yaml:1:64: lb.listeners[0].balance: applies to mode tcp only", NULL },
    { "lb: {balance: {bounded_load: 1.0}}\n",
      "t.yaml:1:30: lb.balance.bounded_load: must be 0 (off) or greater than 1.0", NULL },
    /* YAML itself */
    { "lb:\n  workers: [1, 2\n",
      "t.yaml:3:1: lb.workers: YAML syntax error: did not find expected ',' or ']'", NULL },
    { "cluster:\n  name: demo\n   redis: x\n",
      "t.yaml:3:9: cluster: YAML syntax error: mapping values are not allowed", NULL },
    { "cluster: {name: \"demo}\n", "t.yaml:2:1: cluster.name: YAML syntax error: found "
      "unexpected end of stream", NULL },
    { "cluster:\n\tname: demo\n", "t.yaml:2:1: cluster: YAML syntax error: found character "
      "that cannot start any token", NULL },
    { "cluster: {name: \xc3\x28}\n", "t.yaml:1:18: (file): invalid text: invalid "
      "trailing UTF-8 octet", NULL },
    { "cluster: &c {name: a}\n", "t.yaml:1:10: cluster: anchors (&c) are not supported", NULL },
    { "cluster: {name: a}\nnode: *c\n", "t.yaml:2:7: node: aliases (*c) are not supported",
      NULL },
    { "cluster: !!map {name: a}\n", "t.yaml:1:10: cluster: YAML tags", NULL },
    { "cluster: {name: \"a\\0b\"}\n", "t.yaml:1:17: cluster.name: strings must not contain NUL",
      NULL },
    { "cluster: {name: a}\n---\nlb: {}\n",
      "t.yaml:2:1: (top level): a second YAML document", NULL },
    { "", "t.yaml:1:1: (top level): the file is empty", NULL },
    { "# only a comment\n", "t.yaml:1:1: (top level): the file is empty", NULL },
    { "- a\n- b\n", "t.yaml:1:1: (top level): expected a mapping with cluster, lb, node", NULL },
    { "? [a]\n: b\n", "t.yaml:1:3: (top level): keys must be plain strings, got a list", NULL },
};

static void
test_errors(void **state)
{
    assert_true(BL_ARRAY_SIZE(err_cases) >= 25);
    for (size_t i = 0; i < BL_ARRAY_SIZE(err_cases); i++) {
        expect_err(err_cases[i].yaml, err_cases[i].prefix, err_cases[i].also);
    }
}

/* Fixture files: the message names the path as given. */
static void
test_error_fixtures(void **state)
{
    static const struct {
        const char *file;
        const char *rest;   /* after "<path>:" */
    } cases[] = {
        { "tests/unit/conf/bad_interval.yaml",
          "10:15: lb.health.interval: expected a duration like 500ms or 2s" },
        { "tests/unit/conf/typo.yaml",
          "5:3: cluster.redis_manged: unknown key (did you mean cluster.redis_managed?)" },
        { "tests/unit/conf/no_redis.yaml",
          "6:5: node.cache.enabled: a cluster of 2 nodes with the node cache on needs "
          "cluster.redis" },
        { "tests/unit/conf/syntax.yaml",
          "6:3: nodes[0]: YAML syntax error: did not find expected ',' or '}'" },
    };

    for (size_t i = 0; i < BL_ARRAY_SIZE(cases); i++) {
        char path[1200];
        char want[1600];
        char *err = NULL;
        struct bl_conf *c;

        src_path(path, sizeof(path), cases[i].file);
        snprintf(want, sizeof(want), "%s:%s", path, cases[i].rest);
        c = bl_conf_load(path, &err);
        assert_null(c);
        assert_non_null(err);
        if (strncmp(err, want, strlen(want)) != 0) {
            print_error("got:      %s\nexpected: %s\n", err, want);
            free(err);
            fail();
        }
        free(err);
    }
}

static void
test_minimal_fixture(void **state)
{
    char path[1200];
    char *err = NULL;
    struct bl_conf *c;

    src_path(path, sizeof(path), "tests/unit/conf/minimal.yaml");
    c = bl_conf_load(path, &err);
    assert_non_null(c);
    assert_int_equal(c->nnodes, 1);
    assert_int_equal(c->nwarnings, 1);
    bl_conf_destroy(c);
}

static void
test_file_missing_and_too_large(void **state)
{
    char tmpl[] = "/tmp/test_bl_conf_XXXXXX";
    char *err = NULL;
    char *big;
    struct bl_conf *c;
    int fd;
    FILE *f;

    c = bl_conf_load("/nonexistent/blogscale.yaml", &err);
    assert_null(c);
    assert_string_equal(err, "/nonexistent/blogscale.yaml: cannot open: No such file or "
                        "directory");
    free(err);

    /* A directory is not a file. */
    c = bl_conf_load("/", &err);
    assert_null(c);
    assert_non_null(strstr(err, "/: cannot read:"));
    free(err);

    /* One byte over 1 MiB, of otherwise valid YAML (a comment). */
    fd = mkstemp(tmpl);
    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    assert_non_null(f);
    big = malloc(BL_CONF_MAX_FILE_SIZE + 1);
    assert_non_null(big);
    memset(big, ' ', BL_CONF_MAX_FILE_SIZE + 1);
    {
        static const char head[] = "nodes: [{name: n1, addr: \"127.0.0.1:9101\"}] #";

        memcpy(big, head, strlen(head));
    }
    assert_int_equal(fwrite(big, 1, BL_CONF_MAX_FILE_SIZE + 1, f), BL_CONF_MAX_FILE_SIZE + 1);
    fclose(f);
    c = bl_conf_load(tmpl, &err);
    assert_null(c);
    assert_non_null(err);
    assert_int_equal(strncmp(err, tmpl, strlen(tmpl)), 0);
    assert_non_null(strstr(err, ": file too large"));
    assert_non_null(strstr(err, "1 MiB"));
    free(err);

    /* Exactly 1 MiB loads. */
    assert_int_equal(truncate(tmpl, BL_CONF_MAX_FILE_SIZE), 0);
    c = bl_conf_load(tmpl, &err);
    assert_non_null(c);
    assert_int_equal(c->nnodes, 1);
    bl_conf_destroy(c);

    /* The buffer API has the same limit. */
    c = bl_conf_load_buffer(big, BL_CONF_MAX_FILE_SIZE + 1, "buf", &err);
    assert_null(c);
    assert_non_null(strstr(err, "buf: file too large"));
    free(err);
    free(big);
    unlink(tmpl);
}

/* Arbitrary bytes never crash and always give either a config or one error line. */
static void
test_garbage_never_crashes(void **state)
{
    char path[1200];
    FILE *f;
    char *text;
    long n;
    uint32_t seed = 12345;

    src_path(path, sizeof(path), "examples/full.yaml");
    f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    text = malloc((size_t)n);
    assert_non_null(text);
    assert_int_equal(fread(text, 1, (size_t)n, f), (size_t)n);
    fclose(f);

    /* Every prefix of full.yaml (in steps, to stay fast). */
    for (long len = 0; len <= n; len += 7) {
        char *err = NULL;
        struct bl_conf *c = bl_conf_load_buffer(text, (size_t)len, "p.yaml", &err);

        if (c == NULL) {
            assert_non_null(err);
            assert_int_equal(strncmp(err, "p.yaml:", 7), 0);
            assert_null(strchr(err, '\n'));
            free(err);
        } else {
            bl_conf_destroy(c);
        }
    }
    /* Random byte flips. */
    for (int round = 0; round < 400; round++) {
        char *copy = malloc((size_t)n);
        char *err = NULL;
        struct bl_conf *c;

        assert_non_null(copy);
        memcpy(copy, text, (size_t)n);
        for (int k = 0; k < 4; k++) {
            seed = seed * 1103515245u + 12345u;
            copy[(seed >> 8) % (uint32_t)n] = (char)(seed >> 3);
        }
        c = bl_conf_load_buffer(copy, (size_t)n, "r.yaml", &err);
        if (c == NULL) {
            assert_non_null(err);
            assert_int_equal(strncmp(err, "r.yaml:", 7), 0);
            free(err);
        } else {
            bl_conf_destroy(c);
        }
        free(copy);
    }
    /* Deep nesting is refused, not recursed into. */
    {
        char deep[4001];
        char *err = NULL;

        memset(deep, '[', 4000);
        deep[4000] = '\0';
        assert_null(bl_conf_load_buffer(deep, 4000, "d.yaml", &err));
        assert_non_null(strstr(err, "nesting deeper than"));
        free(err);
    }
    /* A NULL err is allowed. */
    assert_null(bl_conf_load_buffer("lb: 5", 5, NULL, NULL));
    free(text);
}

/* ------------------------------------------------------------------ lookups */

static void
test_find_node(void **state)
{
    struct bl_conf *c = load_ok("cluster: {redis: \"redis://127.0.0.1:6379\"}\n"
                                "nodes:\n"
                                "  - {name: n1, addr: \"127.0.0.1:9101\"}\n"
                                "  - {name: n2, addr: \"127.0.0.1:9102\", weight: 3}\n");
    const struct bl_conf_node_entry *e;

    e = bl_conf_find_node(c, "n2");
    assert_non_null(e);
    assert_ptr_equal(e, &c->nodes[1]);
    assert_string_equal(e->addr, "127.0.0.1:9102");
    assert_int_equal(e->weight, 3);
    assert_ptr_equal(bl_conf_find_node(c, "n1"), &c->nodes[0]);
    assert_null(bl_conf_find_node(c, "n3"));
    assert_null(bl_conf_find_node(c, "N1"));
    assert_null(bl_conf_find_node(c, NULL));
    assert_null(bl_conf_find_node(NULL, "n1"));
    bl_conf_destroy(c);
}

static void
test_default_path_env(void **state)
{
    char *saved = getenv(BL_CONF_ENV) ? strdup(getenv(BL_CONF_ENV)) : NULL;

    unsetenv(BL_CONF_ENV);
    assert_string_equal(bl_conf_default_path(), "/etc/blogscale/cluster.yaml");
    setenv(BL_CONF_ENV, "/tmp/other.yaml", 1);
    assert_string_equal(bl_conf_default_path(), "/tmp/other.yaml");
    setenv(BL_CONF_ENV, "", 1);
    assert_string_equal(bl_conf_default_path(), BL_CONF_DEFAULT_PATH);
    if (saved != NULL) {
        setenv(BL_CONF_ENV, saved, 1);
        free(saved);
    } else {
        unsetenv(BL_CONF_ENV);
    }
}

static void
test_auto_threads(void **state)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);

    assert_int_equal(bl_conf_auto_threads(5), 5);
    assert_true(bl_conf_auto_threads(0) >= 1);
    if (cpus >= 1 && cpus <= 1024) {
        assert_int_equal(bl_conf_auto_threads(0), (uint32_t)cpus);
    }
}

/* autoscale.state_file: blog-ctld's state file path, unset = NULL (ctld's default). */
static void
test_autoscale_state_file(void **state)
{
    struct bl_conf *c;
    char *err = NULL;

    (void)state;
    c = load_ok("autoscale: {min: 1, max: 1, state_file: /var/lib/x/ctld.json}\n");
    assert_string_equal(c->autoscale.state_file, "/var/lib/x/ctld.json");
    bl_conf_destroy(c);
    c = load_ok("autoscale: {min: 1, max: 1}\n");
    assert_null(c->autoscale.state_file);
    bl_conf_destroy(c);
    c = load_str("autoscale: {state_file: [a]}\n", &err);
    assert_null(c);
    assert_non_null(err);
    assert_non_null(strstr(err, "state_file"));
    free(err);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_local),
        cmocka_unit_test(test_example_full),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_units),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_error_fixtures),
        cmocka_unit_test(test_minimal_fixture),
        cmocka_unit_test(test_file_missing_and_too_large),
        cmocka_unit_test(test_garbage_never_crashes),
        cmocka_unit_test(test_find_node),
        cmocka_unit_test(test_default_path_env),
        cmocka_unit_test(test_auto_threads),
        cmocka_unit_test(test_autoscale_state_file),
    };

    find_source_dir();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
