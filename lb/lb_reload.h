#ifndef LB_RELOAD_H
#define LB_RELOAD_H

#include <stddef.h>
#include <stdint.h>

#include "lb_types.h"

struct bl_conf;

/*
 * Node set changes and configuration reload, on the control thread.
 *
 * The node set (p->nodes) changes through the admin API (add, remove, weight) and through
 * a reload (SIGHUP or POST /reload). Every change goes through lb_nodes_apply(), which
 * rebuilds the Maglev table from the new (name, weight) set, marks the nodes that left
 * as removed (their in-flight requests finish, their pooled connections close), keeps the
 * objects (health, ejections, pools, counters) of the nodes that stay, starts checkers for
 * the new ones and publishes the next routing snapshot atomically.
 */

/* LB-specific checks on top of bl_conf's. 0 or BL_ECONF; the first problem is written to
 * <err> (<errlen> bytes) when <err> is not NULL, and every problem is logged. */
int lb_conf_check(const struct bl_conf *conf, char *err, size_t errlen);

/* A new node object with a fresh id (ids are never reused), kept in p->all_nodes until
 * exit. NULL on a bad address. <weight> 0 is kept as 0 (no Maglev slot). */
struct lb_node *lb_nodes_new(struct lb_proc *p, const char *name, const char *addr,
                             uint32_t weight);

/* The node of the current set named <name>, or NULL. */
struct lb_node *lb_nodes_find(struct lb_proc *p, const char *name);

/*
 * Makes <nodes> (<n> entries; the array is taken over) the current node set. On success
 * *<moved> (when not NULL) is the share of Maglev slots whose owner name changed.
 * Returns 0, or -ENOMEM (nothing changed; <nodes> is freed).
 */
int lb_nodes_apply(struct lb_proc *p, struct lb_node **nodes, uint32_t n, double *moved);

/* Builds p->lspecs from the current file (TLS contexts included), before the workers are
 * set up. 0, or BL_ECONF with the reason in <err>. */
int lb_listeners_init(struct lb_proc *p, char *err, size_t errlen);
void lb_listeners_free(struct lb_proc *p);

/* What a reload did (lb_reload()). */
struct lb_reload_result {
    char **added;               /* node names that came */
    size_t nadded;
    char **removed;             /* node names that went */
    size_t nremoved;
    double moved_share;         /* share of Maglev slots whose owner changed */
    char err[512];              /* when lb_reload() failed: "file:line:column: message" */
};

/*
 * Re-reads p->conf_path and applies it without dropping anything (docs/LB.md, "Reload").
 * Returns 0, or a negative error with res->err set, the running configuration unchanged.
 * Logs one line either way. Free <res> with lb_reload_result_clear().
 */
int lb_reload(struct lb_proc *p, struct lb_reload_result *res);
void lb_reload_result_clear(struct lb_reload_result *res);

#endif /* LB_RELOAD_H */
