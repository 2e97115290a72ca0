#ifndef LB_ROUTE_H
#define LB_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#include "lb_types.h"

/*
 * The route table of the public API (DESIGN §4): which request paths blog-lb proxies and
 * how it extracts the id it hashes.
 *
 *   /posts                -> LB_ROUTE_POSTS     (p2c / round robin)
 *   /posts/{id}           -> LB_ROUTE_POST_ID   (Maglev on the id)
 *   /assets               -> LB_ROUTE_ASSETS    (p2c / round robin)
 *   /assets/{id}          -> LB_ROUTE_ASSET_ID  (Maglev on the id)
 *   anything else         -> LB_ROUTE_NONE      (404 from the LB)
 *
 * The path is matched byte for byte (no case folding, no dot-segment removal); the query
 * string is ignored. An id is one non-empty segment (no '/', not "." or ".."), at most
 * LB_ROUTE_MAX_ID bytes after percent-decoding; it is percent-decoded before hashing so
 * that "/posts/%61b" and "/posts/ab" land on the same node. A malformed escape, a
 * trailing slash ("/posts/", "/posts/x/") or an extra segment is LB_ROUTE_NONE.
 * Methods do not change the route: a wrong method still reaches a node, which answers
 * 405 with Allow.
 */

#define LB_ROUTE_MAX_ID 256

struct lb_route_match {
    enum lb_route route;
    int by_id;                  /* 1 when hash is the id's hash */
    uint64_t hash;              /* bl_hash64 of the decoded id */
    size_t id_len;              /* decoded id length */
};

/*
 * Classifies the request <target> (<len> bytes, origin-form, query allowed) into <out>.
 * Returns out->route. Pure; thread-safe.
 */
enum lb_route lb_route_match(const char *target, size_t len, struct lb_route_match *out);

/* Label of a route for metrics and logs: "post", "posts", "asset", "assets", "none". */
const char *lb_route_name(enum lb_route r);

#endif /* LB_ROUTE_H */
