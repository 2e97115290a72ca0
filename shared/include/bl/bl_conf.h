#ifndef BL_CONF_H
#define BL_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bl/bl_auth.h"
#include "bl/bl_log.h"

/*
 * The cluster file (YAML, ../shared/DESIGN.md §6) loaded into one struct per section, so
 * each daemon reads its own. Every key has a default (BL_CONF_DEFAULT_*); unknown keys,
 * wrong types and bad values are errors naming "file:line:column: key: message".
 * Durations are stored in ms, sizes in bytes. All strings are owned by the struct.
 */

#define BL_CONF_DEFAULT_PATH "/etc/blogscale/cluster.yaml"
#define BL_CONF_ENV "BLOGSCALE_CONFIG"

#define BL_CONF_DEFAULT_HEALTH_PATH "/readyz"
#define BL_CONF_DEFAULT_HEALTH_INTERVAL_MS 1000
#define BL_CONF_DEFAULT_HEALTH_TIMEOUT_MS 500
#define BL_CONF_DEFAULT_HEALTH_RISE 2
#define BL_CONF_DEFAULT_HEALTH_FALL 2
#define BL_CONF_DEFAULT_BOUNDED_LOAD 1.25
#define BL_CONF_DEFAULT_RETRIES 1
#define BL_CONF_DEFAULT_RETRY_BUDGET 0.2
#define BL_CONF_DEFAULT_MAX_CLIENT_CONNS 100000
#define BL_CONF_DEFAULT_NODE_MAX_CONNS 1024
#define BL_CONF_DEFAULT_QUEUE_SIZE 4096
#define BL_CONF_DEFAULT_QUEUE_TIMEOUT_MS 1000
#define BL_CONF_DEFAULT_HEADER_TIMEOUT_MS 10000
#define BL_CONF_DEFAULT_BODY_TIMEOUT_MS 30000
#define BL_CONF_DEFAULT_CONNECT_TIMEOUT_MS 1000
#define BL_CONF_DEFAULT_RESPONSE_TIMEOUT_MS 30000
#define BL_CONF_DEFAULT_IDLE_TIMEOUT_MS 60000
#define BL_CONF_DEFAULT_SHUTDOWN_TIMEOUT_MS 10000
#define BL_CONF_DEFAULT_MAX_HEADER_BYTES (16 * 1024)
#define BL_CONF_DEFAULT_MAX_HEADERS 100
#define BL_CONF_DEFAULT_MAX_BODY (16ull * 1024 * 1024)
#define BL_CONF_DEFAULT_STORE_PATH "/var/lib/blogscale/data"
#define BL_CONF_DEFAULT_MAP_SIZE (16ull << 30)
#define BL_CONF_DEFAULT_MONGO_DATABASE "blog"
#define BL_CONF_DEFAULT_CACHE_SIZE (512ull << 20)
#define BL_CONF_DEFAULT_CACHE_TTL_MS 300000
#define BL_CONF_DEFAULT_NEGATIVE_TTL_MS 2000
#define BL_CONF_DEFAULT_POST_BODY (1ull << 20)
#define BL_CONF_DEFAULT_ASSET (10ull << 20)
#define BL_CONF_DEFAULT_AUTOSCALE_INTERVAL_MS 5000

/* Added by the loader (not in the first header draft): */
#define BL_CONF_MAX_FILE_SIZE (1024 * 1024)     /* bl_conf_load reads at most 1 MiB */
#define BL_CONF_MAX_NODES 4096                  /* entries in nodes: */
#define BL_CONF_MAX_LISTENERS 64                /* entries in lb.listeners: */
#define BL_CONF_DEFAULT_CLUSTER_NAME "blogscale"
#define BL_CONF_DEFAULT_ADMIN_BIND "127.0.0.1:8404"
#define BL_CONF_DEFAULT_WORKERS 0               /* auto */
#define BL_CONF_DEFAULT_THREADS 0               /* auto */
#define BL_CONF_DEFAULT_WRITE_CONCERN "majority"
#define BL_CONF_DEFAULT_READ_PREFERENCE "primary"
#define BL_CONF_DEFAULT_SERVER_SELECTION_TIMEOUT_MS 5000
#define BL_CONF_DEFAULT_SOCKET_TIMEOUT_MS 10000
#define BL_CONF_DEFAULT_NODE_WEIGHT 1
#define BL_CONF_DEFAULT_AUTOSCALE_MIN 1
#define BL_CONF_DEFAULT_AUTOSCALE_MAX 32
#define BL_CONF_DEFAULT_TARGET_RPS_PER_NODE 20000.0
#define BL_CONF_DEFAULT_TOLERANCE 0.1
#define BL_CONF_DEFAULT_UP_WINDOW_MS 15000
#define BL_CONF_DEFAULT_DOWN_WINDOW_MS 300000
#define BL_CONF_DEFAULT_COOLDOWN_MS 30000
#define BL_CONF_DEFAULT_HOOK_TIMEOUT_MS 60000
#define BL_CONF_DEFAULT_LOG_LEVEL BL_LOG_INFO
/* node.assets.types when the file does not list them */
#define BL_CONF_DEFAULT_ASSET_TYPES \
    { "image/png", "image/jpeg", "image/webp", "image/gif", "application/pdf" }

enum bl_conf_mode {
    BL_MODE_HTTP,
    BL_MODE_TCP,
};

enum bl_conf_balance {
    BL_BALANCE_MAGLEV,
    BL_BALANCE_P2C,
    BL_BALANCE_ROUNDROBIN,
    BL_BALANCE_LEASTCONN,
};

enum bl_conf_store_driver {
    BL_STORE_LMDB,
    BL_STORE_MONGODB,
};

struct bl_conf_cert {
    char *cert;                         /* cert: PEM file path */
    char *key;                          /* key: PEM file path */
};

struct bl_conf_tls {
    bool enabled;                       /* true when the listener has a tls: section */
    char *cert;                         /* tls.cert: default certificate */
    char *key;                          /* tls.key */
    struct bl_conf_cert *sni;           /* tls.sni: [{cert, key}] extra pairs chosen by SNI */
    size_t nsni;
    char *ciphers;                      /* tls.ciphers: TLS 1.2 list, NULL = built-in modern */
    char *ciphersuites;                 /* tls.ciphersuites: TLS 1.3, NULL = OpenSSL default */
};

struct bl_conf_listener {
    char *bind;                         /* bind: "HOST:PORT" */
    enum bl_conf_mode mode;             /* mode: http | tcp */
    enum bl_conf_balance balance;       /* balance: (tcp only) maglev (client address) | leastconn */
    struct bl_conf_tls tls;             /* tls: */
};

struct bl_conf_admin {
    char *bind;                         /* admin.bind: default 127.0.0.1:8404 */
    bool has_token;                     /* admin.token_sha256 given */
    uint8_t token_sha256[BL_SHA256_LEN];/* admin.token_sha256: hex digest */
    bool metrics_public;                /* admin.metrics_public: /metrics without a token */
};

struct bl_conf_health {
    char *path;                         /* health.path */
    uint64_t interval_ms;               /* health.interval: duration */
    uint64_t timeout_ms;                /* health.timeout: duration */
    uint32_t rise;                      /* health.rise */
    uint32_t fall;                      /* health.fall */
};

struct bl_conf_balance_opts {
    enum bl_conf_balance by_id;         /* balance.by_id: maglev | p2c */
    enum bl_conf_balance other;         /* balance.other: p2c | roundrobin */
    double bounded_load;                /* balance.bounded_load: > 1.0, 0 = off */
    uint32_t retries;                   /* balance.retries */
    double retry_budget;                /* balance.retry_budget: share of requests, 0..1 */
};

struct bl_conf_lb_limits {
    uint32_t max_client_conns;          /* limits.max_client_conns */
    uint32_t node_max_conns;            /* limits.node_max_conns: per node per LB */
    uint32_t queue_size;                /* limits.queue_size: waiting requests per node */
    uint64_t queue_timeout_ms;          /* limits.queue_timeout: duration */
    uint64_t header_timeout_ms;         /* limits.header_timeout: duration */
    uint64_t body_timeout_ms;           /* limits.body_timeout: duration, between body reads */
    uint64_t connect_timeout_ms;        /* limits.connect_timeout: duration */
    uint64_t response_timeout_ms;       /* limits.response_timeout: duration */
    uint64_t idle_timeout_ms;           /* limits.idle_timeout: duration */
    uint32_t rate_per_ip;               /* limits.rate_per_ip: requests/s per client IP, 0 = off */
    uint32_t max_header_bytes;          /* limits.max_header_bytes: size */
    uint32_t max_headers;               /* limits.max_headers */
    uint64_t max_body;                  /* limits.max_body: size */
};

struct bl_conf_lb {
    struct bl_conf_listener *listeners; /* lb.listeners */
    size_t nlisteners;
    struct bl_conf_admin admin;         /* lb.admin */
    uint32_t workers;                   /* lb.workers: N | auto (0 = number of cores) */
    struct bl_conf_health health;       /* lb.health */
    struct bl_conf_balance_opts balance;/* lb.balance */
    struct bl_conf_lb_limits limits;    /* lb.limits */
    bool access_log;                    /* lb.access_log: default true */
    uint64_t shutdown_timeout_ms;       /* lb.shutdown_timeout: duration */
};

struct bl_conf_store {
    enum bl_conf_store_driver driver;   /* store.driver: lmdb | mongodb */
    char *path;                         /* store.path: LMDB directory */
    uint64_t map_size;                  /* store.map_size: size */
    char *uri;                          /* store.uri: mongodb:// URI */
    char *database;                     /* store.database */
    char *write_concern;                /* store.write_concern: majority | 1 | ... */
    char *read_preference;              /* store.read_preference: primary | ... */
    uint64_t server_selection_timeout_ms; /* store.server_selection_timeout: duration */
    uint64_t socket_timeout_ms;         /* store.socket_timeout: duration */
};

struct bl_conf_cache {
    bool enabled;                       /* cache.enabled: default true */
    uint64_t size;                      /* cache.size: size */
    uint64_t ttl_ms;                    /* cache.ttl: duration */
    uint64_t negative_ttl_ms;           /* cache.negative_ttl: duration */
};

struct bl_conf_node_limits {
    uint64_t post_body;                 /* limits.post_body: size */
    uint64_t asset;                     /* limits.asset: size */
};

struct bl_conf_node {
    uint32_t threads;                   /* node.threads: N | auto (0 = number of cores) */
    struct bl_conf_store store;         /* node.store */
    struct bl_conf_cache cache;         /* node.cache */
    struct bl_conf_node_limits limits;  /* node.limits */
    char **asset_types;                 /* node.assets.types: media types allowed */
    size_t nasset_types;
    uint64_t shutdown_timeout_ms;       /* node.shutdown_timeout: duration */
};

struct bl_conf_node_entry {
    char *name;                         /* nodes[].name: [A-Za-z0-9_.-]{1,64} */
    char *addr;                         /* nodes[].addr: "HOST:PORT" */
    uint32_t weight;                    /* nodes[].weight: default 1 */
};

struct bl_conf_autoscale {
    bool enabled;                       /* true when the file has autoscale: */
    uint64_t interval_ms;               /* autoscale.interval: duration */
    uint32_t min;                       /* autoscale.min */
    uint32_t max;                       /* autoscale.max */
    double target_rps_per_node;         /* autoscale.target_rps_per_node */
    double tolerance;                   /* autoscale.tolerance: 0..1 */
    uint64_t up_window_ms;              /* autoscale.up_window: duration */
    uint64_t down_window_ms;            /* autoscale.down_window: duration */
    uint64_t cooldown_ms;               /* autoscale.cooldown: duration */
    char *scale_up;                     /* autoscale.scale_up: command */
    char *scale_down;                   /* autoscale.scale_down: command */
    uint64_t hook_timeout_ms;           /* autoscale.hook_timeout: duration */
    char *bind;                         /* autoscale.bind: ctld metrics listener, NULL = none */
    char *state_file;                   /* autoscale.state_file: blog-ctld's state (JSON),
                                           NULL = blog-ctld's default (docs/CTL.md) */
};

struct bl_conf_cluster {
    char *name;                         /* cluster.name */
    char *redis;                        /* cluster.redis: redis://[:password@]HOST:PORT[/DB], NULL = none */
    bool redis_managed;                 /* cluster.redis_managed: blogctl up starts it */
    uint8_t (*write_tokens)[BL_SHA256_LEN]; /* cluster.write_tokens_sha256: hex digests */
    size_t nwrite_tokens;
    bool allow_anonymous_writes;        /* cluster.allow_anonymous_writes: default false */
};

struct bl_conf {
    char *file;                         /* path it was loaded from */
    struct bl_conf_cluster cluster;     /* cluster: */
    struct bl_conf_lb lb;               /* lb: */
    struct bl_conf_node node;           /* node: */
    struct bl_conf_node_entry *nodes;   /* nodes: */
    size_t nnodes;
    struct bl_conf_autoscale autoscale; /* autoscale: */
    enum bl_log_level log_level;        /* log.level: debug | info | warn | error */
    char **warnings;                    /* "file:line:column: key: message" lines that are not
                                           load errors, e.g. no write token configured */
    size_t nwarnings;
};

/*
 * Loads and validates <path> (NULL: bl_conf_default_path()), at most BL_CONF_MAX_FILE_SIZE
 * bytes. Returns a new config (free with bl_conf_destroy), or NULL with *err set to a
 * malloc'ed one-line "file:line:column: key.path: message" (the caller frees it; <err>
 * may be NULL). Files that cannot be read or are too large give "file: message".
 * Non-fatal findings (e.g. no write token) are in conf->warnings. Reference of every key:
 * docs/CONFIG.md. Thread-safe (no global state).
 */
struct bl_conf *bl_conf_load(const char *path, char **err);

/*
 * Same, from <len> bytes at <yaml> (any bytes, need not be NUL-terminated; safe for
 * arbitrary input); <name> stands for the file in messages (NULL: "<config>").
 */
struct bl_conf *bl_conf_load_buffer(const char *yaml, size_t len, const char *name, char **err);

void bl_conf_destroy(struct bl_conf *conf);             /* NULL is a no-op */

/* The path to use when none is given on the command line: $BLOGSCALE_CONFIG or the default. */
const char *bl_conf_default_path(void);

/* The node entry named <name>, or NULL. */
const struct bl_conf_node_entry *bl_conf_find_node(const struct bl_conf *conf, const char *name);

/* Number of worker threads for "auto" (0): the number of online CPUs, at least 1. */
uint32_t bl_conf_auto_threads(uint32_t configured);

#endif /* BL_CONF_H */
