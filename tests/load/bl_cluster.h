#ifndef BL_CLUSTER_H
#define BL_CLUSTER_H

#include <stdbool.h>
#include <sys/types.h>

/*
 * A whole local cluster for the fault tests: an optional redis-server, N blog-node
 * processes on one LMDB directory and one blog-lb, on free 127.0.0.1 ports in a temp dir,
 * started through the harness (so bl_h_cleanup() kills everything). Every start waits for
 * readiness and aborts the test with the process's log when it does not come.
 */

#define BL_FC_MAX_NODES 8
#define BL_FC_TOKEN "fault-token"

struct bl_fc_node {
    char name[16];
    int port;
    char url[64];                       /* http://127.0.0.1:PORT */
    char log[512];
    pid_t pid;                          /* -1 when not running */
};

struct bl_fc_opts {
    int nnodes;                         /* 1..BL_FC_MAX_NODES */
    bool redis;                         /* start Redis and turn the node cache on */
    int node_threads;                   /* default 2 */
    int lb_workers;                     /* default 2 */
    const char *health;                 /* flow-mapping body for lb.health (NULL: fast checks) */
    const char *limits;                 /* extra "key: value" items for lb.limits, or NULL */
    const char *balance;                /* flow-mapping body for lb.balance, or NULL */
    const char *response_timeout;       /* lb.limits.response_timeout (NULL: "1s") */
};

struct bl_fc {
    char *dir;
    char conf[512];
    char data[512];
    int nnodes;
    struct bl_fc_node nodes[BL_FC_MAX_NODES];
    bool redis;
    int redis_port;
    pid_t redis_pid;
    char redis_log[512];
    int lb_port, lb_admin;
    pid_t lb_pid;
    char lb_url[64];
    char lb_log[512];
    struct bl_fc_opts opts;             /* as given to bl_fc_start (strings not copied) */
};

/* Writes the config and starts Redis (if asked), every node and the LB. Aborts on failure. */
void bl_fc_start(struct bl_fc *fc, const struct bl_fc_opts *o);

/* Rewrites the config file listing only the nodes whose bit is set in <mask> (bit i =
 * node i) in nodes: (then SIGHUP the LB to apply it). */
void bl_fc_write_conf(struct bl_fc *fc, unsigned mask);

/* (Re)starts node <i> and waits for its /readyz (15 s). Aborts on failure. */
void bl_fc_node_start(struct bl_fc *fc, int i);

/* Starts redis-server on fc->redis_port (same port on a restart). Aborts on failure. */
void bl_fc_redis_start(struct bl_fc *fc);

/* Value of the exact series <series> on the LB admin /metrics, or -1. */
double bl_fc_lb_metric(const struct bl_fc *fc, const char *series);

/* Value of the exact series <series> on node <i>'s /metrics, or -1. */
double bl_fc_node_metric(const struct bl_fc *fc, int i, const char *series);

/* Sum of every series of metric family <name> on the LB (label sets summed), or -1. */
double bl_fc_lb_metric_sum(const struct bl_fc *fc, const char *name);

/* blog_lb_node_up{node=NAME} of node <i>. */
double bl_fc_node_up(const struct bl_fc *fc, int i);

/* Polls until blog_lb_node_up of node <i> equals <up>; milliseconds taken, or -1. */
long bl_fc_wait_node_up(const struct bl_fc *fc, int i, int up, int timeout_ms);

/* Prints the last <bytes> of every log of the cluster to stderr. */
void bl_fc_dump_logs(const struct bl_fc *fc, long bytes);

/* Index of the node named <name>, or -1. */
int bl_fc_node_index(const struct bl_fc *fc, const char *name);

/* Milliseconds of CLOCK_MONOTONIC. */
long bl_fc_now_ms(void);
void bl_fc_sleep_ms(int ms);

#endif /* BL_CLUSTER_H */
