#ifndef CTL_LBADMIN_H
#define CTL_LBADMIN_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "bl/bl_buf.h"

/*
 * Client of blog-lb's admin API (docs/LB.md "Admin API"), shared by blogctl and blog-ctld:
 * bearer token, JSON bodies parsed with jansson. One call = one short-lived connection.
 */

struct ctl_admin_resp {
    int status;                 /* HTTP status, 0 when no answer */
    json_t *json;               /* parsed body (NULL when empty or not JSON) */
    struct bl_buf body;         /* raw body, NUL-terminated */
};

void ctl_admin_resp_init(struct ctl_admin_resp *r);
void ctl_admin_resp_deinit(struct ctl_admin_resp *r);

/*
 * Sends <method> <path> to the admin listener <addr> ("HOST:PORT"; a wildcard bind such as
 * 0.0.0.0 is mapped to loopback) with "Authorization: Bearer <token>" (NULL: none) and the
 * JSON <body> (borrowed; NULL: no body), waiting at most <timeout_ms>. Returns 0 when an
 * answer arrived (whatever its status) with <r> filled, or a negative error with <err> set
 * ("HOST:PORT: connection refused").
 */
int ctl_admin_call(const char *addr, const char *token, const char *method, const char *path,
                   json_t *body, int timeout_ms, struct ctl_admin_resp *r, char *err,
                   size_t errlen);

/*
 * Describes a non-2xx answer in <out>: "409 node_exists: message" from the
 * {"error":{"code","message"}} body, or "401 (set BLOGSCALE_ADMIN_TOKEN ...)", or the
 * status and the start of the body.
 */
void ctl_admin_describe(const struct ctl_admin_resp *r, char *out, size_t outlen);

/* The error code of a {"error":{"code":...}} body, or "" . */
const char *ctl_admin_code(const struct ctl_admin_resp *r);

/* The node object named <name> in a GET /nodes answer {"nodes":[...]}, or NULL (borrowed). */
json_t *ctl_admin_find_node(json_t *nodes_doc, const char *name);

#endif /* CTL_LBADMIN_H */
