#ifndef CTL_CTLD_H
#define CTL_CTLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bl/bl_conf.h"

/*
 * blog-ctld: the autoscaling daemon (docs/SCALING-CTLD.md). ctl_ctld_main.c parses the
 * command line and runs ctld_run(); the state file helpers are exposed for tests.
 *
 * State file: JSON {"version":1,"cluster":NAME,"nodes":[{"name","addr","phase","since"}]}
 * listing the nodes ctld manages (started through the scale_up hook, or adopted: in the
 * LBs with source "admin"), written atomically (temp file + fsync + rename) by the leader only before and
 * after every step. Phases: "starting" (hook answered, waiting for /readyz), "adding"
 * (being added to the LBs), "active" (in every LB), "draining", "removing" (removed from
 * the LBs, scale_down hook pending).
 */

#define CTLD_NAME_MAX 65
#define CTLD_ADDR_MAX 300
#define CTLD_PHASE_MAX 16

struct ctld_node {
    char name[CTLD_NAME_MAX];
    char addr[CTLD_ADDR_MAX];
    char phase[CTLD_PHASE_MAX];
    uint64_t since_ms;          /* wall clock when it entered the state (ms since epoch) */
};

struct ctld_state {
    struct ctld_node *v;
    size_t n, cap;
};

void ctld_state_init(struct ctld_state *st);
void ctld_state_deinit(struct ctld_state *st);

/* The entry named <name>, or NULL. */
struct ctld_node *ctld_state_find(struct ctld_state *st, const char *name);

/* Adds (or replaces) the entry <name>. Returns the entry. */
struct ctld_node *ctld_state_put(struct ctld_state *st, const char *name, const char *addr,
                                 const char *phase, uint64_t since_ms);

/* Removes the entry <name> (no-op when absent). */
void ctld_state_del(struct ctld_state *st, const char *name);

/*
 * Reads <path> into <st> (emptied first). A missing file is an empty state (0). Returns 0,
 * or BL_EPARSE / a negative errno with <err> saying why.
 */
int ctld_state_load(const char *path, struct ctld_state *st, char *err, size_t errlen);

/* Writes <st> to <path> atomically (<path>.tmp.PID, fsync, rename). 0 or a negative errno. */
int ctld_state_save(const char *path, const struct ctld_state *st, const char *cluster,
                    char *err, size_t errlen);

/*
 * The state file path for <conf>: autoscale.state_file, else "ctld.json" beside the LMDB
 * directory (in its parent) for the lmdb driver, else /var/lib/blogscale/ctld.json.
 */
void ctld_state_default_path(const struct bl_conf *conf, char *out, size_t outlen);

struct ctld_opts {
    const char *conf_path;      /* --config */
    const char *const *lbs;     /* --lb-admin HOST:PORT (repeatable); NULL = lb.admin.bind */
    size_t nlbs;
    const char *admin_token;    /* --admin-token; NULL = $BLOGSCALE_ADMIN_TOKEN / demo */
};

/* Runs the daemon until SIGTERM/SIGINT. Returns the process exit code. */
int ctld_run(const struct ctld_opts *o);

#endif /* CTL_CTLD_H */
