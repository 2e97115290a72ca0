#ifndef LB_ADMIN_H
#define LB_ADMIN_H

#include "lb_types.h"

/*
 * The admin listener (lb.admin.bind), on the control thread's loop, one request per
 * connection (Connection: close), JSON in and out (docs/LB.md "Admin API"):
 *   GET /nodes, POST /nodes, DELETE /nodes/{name}, POST /nodes/{name}/drain|undrain,
 *   PUT /nodes/{name}/weight, GET /ring, GET /ring/route?id=, POST /reload,
 *   GET /metrics (Prometheus text), GET /healthz (never needs the token).
 * Everything but /healthz needs "Authorization: Bearer <token>" matching
 * lb.admin.token_sha256 (constant time), /metrics not when lb.admin.metrics_public is
 * true; without a configured token the API is open (warned at start). Node set changes
 * go through lb_reload.c; requests_per_s is sampled every second.
 */

/* Opens the admin listener. NULL when lb.admin.bind is unset; aborts the start (returns
 * NULL and sets *<err>) when it cannot listen. */
struct lb_admin *lb_admin_create(struct lb_proc *p, int *err);
void lb_admin_destroy(struct lb_admin *a);             /* NULL is a no-op */

#endif /* LB_ADMIN_H */
