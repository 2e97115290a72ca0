#ifndef NODE_POSTS_H
#define NODE_POSTS_H

#include <stddef.h>
#include <stdint.h>

#include <microhttpd.h>

#include "bl/bl_err.h"
#include "bl/bl_time.h"

#include "node_http.h"
#include "node_json.h"
#include "node_server.h"

/*
 * The /posts endpoints. The GET path goes through node_posts_render(), the one place a
 * post becomes response bytes + ETag: the hot cache (issue 4) slots in in front of it.
 */

/* A post's representation as served: JSON bytes and their strong ETag. */
struct node_rendered {
    char *body;                         /* malloc'ed JSON, not NUL-terminated necessarily */
    size_t len;
    char etag[NODE_ETAG_MAX];           /* quoted */
    uint64_t version;                   /* the post's version (the hot cache keeps it) */
};

/*
 * Reads post <id> (24 lowercase hex digits) from the store and renders it into <out>.
 * Returns 0 or the store's error (BL_ENOTFOUND, ...), -ENOMEM.
 */
int node_posts_render(struct node_server *srv, const char *id, struct node_rendered *out);
void node_rendered_deinit(struct node_rendered *r);

/*
 * Releases a libmicrohttpd response kept by the hot cache next to an entry
 * (node_cache_opts.aux_destroy).
 */
void node_posts_response_release(void *resp);

/* GET|HEAD /posts?limit=&cursor= */
enum MHD_Result node_posts_list(struct node_ctx *ctx);
/* GET|HEAD /posts/{id}; <id> as found in the path (validated here: malformed -> 404). */
enum MHD_Result node_posts_get(struct node_ctx *ctx, const char *id);
/* POST /posts with the validated-size JSON body <body>/<len>. */
enum MHD_Result node_posts_create(struct node_ctx *ctx, const char *body, size_t len);
/* PUT /posts/{id} (<id> already validated and lowercased). */
enum MHD_Result node_posts_replace(struct node_ctx *ctx, const char *id, const char *body,
                                   size_t len);
/* DELETE /posts/{id}; <id> as found in the path. */
enum MHD_Result node_posts_delete(struct node_ctx *ctx, const char *id);

/*
 * Copies <s>/<len> lowercased into <out> if it is a valid post id. Returns true on success.
 */
bool node_posts_id(const char *s, size_t len, char out[NODE_ID_LEN + 1]);

/*
 * Records the duration of a store call started at <t0_ns> under <op> and passes its result
 * <rc> through: rc = node_store_done(srv, NODE_OP_GET, t0, s->ops->get(...)).
 * Not-found and conflicts are answers, not store errors.
 */
static inline int
node_store_done(struct node_server *srv, enum node_store_op op, uint64_t t0_ns, int rc)
{
    node_metrics_store(srv->metrics, op, bl_time_mono_ns() - t0_ns,
                       rc != 0 && rc != BL_ENOTFOUND && rc != BL_ECONFLICT);
    return rc;
}

#endif /* NODE_POSTS_H */
