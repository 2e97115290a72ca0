#ifndef LB_ADMIN_H
#define LB_ADMIN_H

#include "lb_types.h"

/*
 * The admin listener (lb.admin.bind), on the control thread's loop. Today it serves
 *   GET /metrics   Prometheus text (blog_lb_*); needs "Authorization: Bearer <token>"
 *                  matching lb.admin.token_sha256 unless lb.admin.metrics_public is true
 *                  or no token is configured
 *   GET /healthz   200 while the process runs
 * One request per connection (Connection: close). The node management API (issue 7)
 * plugs in here.
 */

/* Opens the admin listener. NULL when lb.admin.bind is unset; aborts the start (returns
 * NULL and sets *<err>) when it cannot listen. */
struct lb_admin *lb_admin_create(struct lb_proc *p, int *err);
void lb_admin_destroy(struct lb_admin *a);             /* NULL is a no-op */

#endif /* LB_ADMIN_H */
