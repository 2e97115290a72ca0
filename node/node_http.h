#ifndef NODE_HTTP_H
#define NODE_HTTP_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <microhttpd.h>

#include "bl/bl_buf.h"

#include "node_metrics.h"
#include "node_server.h"

/*
 * libmicrohttpd glue: the daemon, the access handler that routes DESIGN §4's paths,
 * per-request state, and the response helpers every handler answers through (they add
 * X-Blog-Node, count the request in the metrics and queue the response exactly once).
 */

/* One request as the handlers see it. */
struct node_ctx {
    struct node_server *srv;
    struct MHD_Connection *conn;
    enum node_route route;
    enum node_method method;
    uint64_t t0_ns;                     /* when handling started (metrics) */
    bool responded;                     /* a response was queued (or prepared, if deferred) */
    /*
     * Set while a writer thread runs the handler: node_http_send() then keeps the response
     * in <pending> instead of queueing it (MHD queues only on its own thread), and the
     * access handler queues it when MHD calls again after the resume.
     */
    bool deferred;
    struct MHD_Response *pending;
    unsigned pending_status;
};

enum node_body_mode {
    NODE_BODY_NONE,                     /* no body expected (GET, HEAD, DELETE): discarded */
    NODE_BODY_JSON,                     /* buffered in <json> up to the limit */
    NODE_BODY_FILE,                     /* streamed to <tmp_fd> and hashed (POST /assets) */
};

/* A write handed to a writer thread (struct node_upload.job). */
enum node_job {
    NODE_JOB_NONE,
    NODE_JOB_RUNNING,                   /* suspended; a writer thread owns the request */
    NODE_JOB_DONE,                      /* resumed; ctx.pending holds the answer */
};

/* State of a request that carries a body (POST, PUT) or a DELETE; freed when MHD completes it. */
struct node_upload {
    struct node_ctx ctx;
    enum node_body_mode mode;
    char id[NODE_ID_LEN + 1];           /* PUT /posts/{id} */
    uint64_t limit;                     /* bytes accepted at most */
    uint64_t received;                  /* bytes seen so far */
    struct bl_buf json;                 /* NODE_BODY_JSON */
    int tmp_fd;                         /* NODE_BODY_FILE, -1 when closed */
    char tmp_path[PATH_MAX];
    void *sha;                          /* EVP_MD_CTX * */
    char content_type[128];             /* NODE_BODY_FILE: lowercased media type */
    bool failed;                        /* an error response was queued; drop the rest */
    bool is_delete;                     /* DELETE /posts/{id}, run by a writer thread */
    _Atomic int job;                    /* NODE_JOB_*: where a deferred write stands */
    bool ignore_body;                   /* a request that takes no body sent one: drop it */
    /*
     * Set when the request is refused but its body is still coming: MHD 0.9.75 cannot
     * queue a response in the middle of a body, and answering before it closes the
     * connection. The rest is read and dropped (never stored), the answer goes out at the
     * end: drain_status/code/msg, or node_http_store_error(drain_rc) when drain_status is 0.
     */
    bool draining;
    unsigned drain_status;
    const char *drain_code;
    char drain_msg[160];
    int drain_rc;
};

/*
 * Starts the daemon on the listening socket <listen_fd> (taken over) with <threads>
 * worker threads. Returns 0, or a negative error with *err (malloc'ed) set.
 */
int node_http_start(struct node_server *srv, int listen_fd, unsigned threads, char **err);

/* Stops accepting new connections (in-flight requests go on). Idempotent. */
void node_http_quiesce(struct node_server *srv);

/*
 * Stops the writer threads (the writes they hold finish first), then the daemon: every
 * connection is closed. Call after node_http_quiesce() and the in-flight wait. Idempotent.
 */
void node_http_stop(struct node_server *srv);

/*
 * Queues <resp> with <status> for <ctx>, after adding X-Blog-Node; counts the request.
 * Destroys <resp> (our reference). Returns what MHD_queue_response returned; MHD_NO for a
 * NULL <resp> (out of memory: MHD then closes the connection).
 */
enum MHD_Result node_http_send(struct node_ctx *ctx, unsigned status, struct MHD_Response *resp);

/*
 * Builds a JSON response from <b>'s bytes (taken: <b> is left empty), with
 * Content-Type application/json; charset=utf-8. NULL on OOM.
 */
struct MHD_Response *node_http_json_response(struct bl_buf *b);

/* Sends {"error":{"code","message"}} with <status>; 401, 405 and 503 get their headers. */
enum MHD_Result node_http_error(struct node_ctx *ctx, unsigned status, const char *code,
                                const char *message);

/*
 * Answers a failed store call <rc> (BL_E* / -errno) of operation <what> on <id> (may be
 * NULL): 404 not_found, 412 precondition_failed, 507 insufficient_storage, 503
 * store_unavailable (Retry-After: 1) or 500. Logs the server-side failures once.
 */
enum MHD_Result node_http_store_error(struct node_ctx *ctx, int rc, const char *what,
                                      const char *id);

/* The Allow header value for <route>. */
const char *node_http_allow(enum node_route route);

#endif /* NODE_HTTP_H */
