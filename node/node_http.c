#include "node_http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "bl/bl_err.h"
#include "bl/bl_log.h"
#include "bl/bl_metrics.h"
#include "bl/bl_time.h"
#include "bl/bl_util.h"

#include "node_assets.h"
#include "node_cache.h"
#include "node_inval.h"
#include "node_json.h"
#include "node_posts.h"

#define NODE_CONN_LIMIT 16384           /* open connections per process */
#define NODE_CONN_TIMEOUT_S 75          /* idle keep-alive: longer than the LB's 60 s */
/*
 * Per-connection memory pool (request head + read buffer + response head). MHD 0.9.75
 * memsets the whole pool once per request and half of it once more (callgrind: two memset
 * calls per request, 24 KiB + 12 KiB with a 24 KiB pool, 54 % of the instructions of an
 * uncached GET), so its size is a per-request cost. 18 KiB serves request heads of up to
 * 17,664 bytes (measured, two keep-alive requests on one connection): the 16 KiB heads the
 * LB lets through by default plus 1,280 bytes of headers it adds. docs/BENCHMARKS.md.
 */
#define NODE_CONN_MEMORY (18 * 1024)
#define NODE_DRAIN_MAX (64ull << 20)    /* bytes of a rejected chunked body we read past its limit */

/*
 * *con_cls of a request without a body: any unique non-NULL address. Its first callback
 * returns MHD_YES without queueing (queueing then makes MHD answer Connection: close).
 */
static char no_body_marker;

static enum node_route
route_parse(const char *url, const char **rest)
{
    *rest = NULL;
    if (strncmp(url, "/posts", 6) == 0) {
        if (url[6] == '\0') {
            return NODE_ROUTE_POSTS;
        }
        if (url[6] == '/') {
            *rest = url + 7;
            return NODE_ROUTE_POST;
        }
    } else if (strncmp(url, "/assets", 7) == 0) {
        if (url[7] == '\0') {
            return NODE_ROUTE_ASSETS;
        }
        if (url[7] == '/') {
            *rest = url + 8;
            return NODE_ROUTE_ASSET;
        }
    } else if (strcmp(url, "/healthz") == 0) {
        return NODE_ROUTE_HEALTHZ;
    } else if (strcmp(url, "/readyz") == 0) {
        return NODE_ROUTE_READYZ;
    } else if (strcmp(url, "/metrics") == 0) {
        return NODE_ROUTE_METRICS;
    } else if (strcmp(url, "/_cache/flush") == 0) {
        return NODE_ROUTE_CACHE_FLUSH;
    }
    return NODE_ROUTE_OTHER;
}

static enum node_method
method_parse(const char *m)
{
    switch (m[0]) {
    case 'G':
        return strcmp(m, "GET") == 0 ? NODE_M_GET : NODE_M_OTHER;
    case 'H':
        return strcmp(m, "HEAD") == 0 ? NODE_M_HEAD : NODE_M_OTHER;
    case 'P':
        if (strcmp(m, "POST") == 0) {
            return NODE_M_POST;
        }
        return strcmp(m, "PUT") == 0 ? NODE_M_PUT : NODE_M_OTHER;
    case 'D':
        return strcmp(m, "DELETE") == 0 ? NODE_M_DELETE : NODE_M_OTHER;
    default:
        return NODE_M_OTHER;
    }
}

const char *
node_http_allow(enum node_route route)
{
    switch (route) {
    case NODE_ROUTE_POSTS:
        return "GET, HEAD, POST";
    case NODE_ROUTE_POST:
        return "GET, HEAD, PUT, DELETE";
    case NODE_ROUTE_ASSETS:
    case NODE_ROUTE_CACHE_FLUSH:
        return "POST";
    default:
        return "GET, HEAD";
    }
}

static bool
method_allowed(enum node_route route, enum node_method m)
{
    switch (route) {
    case NODE_ROUTE_POSTS:
        return m == NODE_M_GET || m == NODE_M_HEAD || m == NODE_M_POST;
    case NODE_ROUTE_POST:
        return m == NODE_M_GET || m == NODE_M_HEAD || m == NODE_M_PUT || m == NODE_M_DELETE;
    case NODE_ROUTE_ASSETS:
        return m == NODE_M_POST;
    case NODE_ROUTE_OTHER:
        return true;                    /* answered 404 whatever the method */
    case NODE_ROUTE_CACHE_FLUSH:
        return m == NODE_M_POST;
    default:
        return m == NODE_M_GET || m == NODE_M_HEAD;
    }
}

enum MHD_Result
node_http_send(struct node_ctx *ctx, unsigned status, struct MHD_Response *resp)
{
    enum MHD_Result ret;

    ctx->responded = true;
    if (resp == NULL) {
        bl_log(BL_LOG_ERROR, "out of memory building a %u response", status);
        if (ctx->deferred) {
            ctx->pending = NULL;
            ctx->pending_status = status;
            return MHD_YES;
        }
        return MHD_NO;
    }
    if (ctx->deferred) {
        ctx->pending = resp;
        ctx->pending_status = status;
        return MHD_YES;
    }
    MHD_add_response_header(resp, "X-Blog-Node", ctx->srv->name);
    if (BL_UNLIKELY(atomic_load_explicit(&ctx->srv->stopping, memory_order_relaxed))) {
        /* draining: move keep-alive clients (an LB's pool) off this process */
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    }
    ret = MHD_queue_response(ctx->conn, status, resp);
    MHD_destroy_response(resp);
    node_metrics_request(ctx->srv->metrics, ctx->route, ctx->method, status,
                         bl_time_mono_ns() - ctx->t0_ns);
    return ret;
}

struct MHD_Response *
node_http_json_response(struct bl_buf *b)
{
    size_t len;
    char *data = bl_buf_steal(b, &len);
    struct MHD_Response *resp;

    resp = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(data);
        return NULL;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json; charset=utf-8");
    return resp;
}

enum MHD_Result
node_http_error(struct node_ctx *ctx, unsigned status, const char *code, const char *message)
{
    struct bl_buf b;
    struct MHD_Response *resp;

    bl_buf_init(&b);
    if (node_json_render_error(&b, code, message) != 0) {
        bl_buf_deinit(&b);
        return node_http_send(ctx, status, NULL);
    }
    resp = node_http_json_response(&b);
    if (resp != NULL) {
        if (status == MHD_HTTP_UNAUTHORIZED) {
            MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
        } else if (status == MHD_HTTP_METHOD_NOT_ALLOWED) {
            MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, node_http_allow(ctx->route));
        } else if (status == MHD_HTTP_SERVICE_UNAVAILABLE) {
            MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
        }
    }
    return node_http_send(ctx, status, resp);
}

enum MHD_Result
node_http_store_error(struct node_ctx *ctx, int rc, const char *what, const char *id)
{
    unsigned status;
    const char *code;
    const char *msg;

    switch (rc) {
    case BL_ENOTFOUND:
        return node_http_error(ctx, MHD_HTTP_NOT_FOUND, "not_found", "no such resource");
    case BL_ECONFLICT:
        return node_http_error(ctx, MHD_HTTP_PRECONDITION_FAILED, "precondition_failed",
                               "the resource's current version does not match If-Match");
    case BL_EFULL:
    case -ENOSPC:
    case -EDQUOT:
        status = MHD_HTTP_INSUFFICIENT_STORAGE;
        code = "insufficient_storage";
        msg = "the store is full";
        break;
    case BL_EUNAVAIL:
    case -ENOMEM:
    case -EROFS:
    case -EACCES:
    case -EIO:
        status = MHD_HTTP_SERVICE_UNAVAILABLE;
        code = "store_unavailable";
        msg = "the store is unavailable, retry later";
        break;
    default:
        status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        code = "internal";
        msg = "internal error";
        break;
    }
    bl_logf(BL_LOG_ERROR,
            ((struct bl_log_field[]){BL_LOG_STR("op", what), BL_LOG_STR("id", id),
                                     BL_LOG_STR("reason", bl_strerror(rc)),
                                     BL_LOG_STR("detail", node_store_last_error()),
                                     BL_LOG_UINT("status", status)}),
            5, "store %s failed: %s", what, bl_strerror(rc));
    return node_http_error(ctx, status, code, msg);
}

static enum MHD_Result
answer_health(struct node_ctx *ctx)
{
    struct bl_buf b;
    struct node_server *srv = ctx->srv;
    int rc = 0;
    unsigned status = MHD_HTTP_OK;

    bl_buf_init(&b);
    if (ctx->route == NODE_ROUTE_READYZ) {
        uint64_t t0 = bl_time_mono_ns();

        rc = node_store_done(srv, NODE_OP_HEALTH, t0, srv->store->ops->health(srv->store));
        if (rc == 0 && srv->inval != NULL && !node_inval_subscribed(srv->inval)) {
            /* DESIGN §4: with Redis configured, ready only while subscribed */
            status = MHD_HTTP_SERVICE_UNAVAILABLE;
            if (bl_buf_append_str(&b, "{\"status\":\"unavailable\",\"reason\":"
                                      "\"not subscribed to the cache invalidation channel\"}") != 0) {
                goto oom;
            }
        } else if (rc != 0) {
            status = MHD_HTTP_SERVICE_UNAVAILABLE;
            if (bl_buf_printf(&b, "{\"status\":\"unavailable\",\"reason\":") != 0 ||
                bl_buf_append_json_str(&b, bl_strerror(rc), strlen(bl_strerror(rc))) != 0 ||
                bl_buf_append_str(&b, "}") != 0) {
                goto oom;
            }
        } else if (bl_buf_append_str(&b, "{\"status\":\"ready\"}") != 0) {
            goto oom;
        }
    } else if (bl_buf_append_str(&b, "{\"status\":\"ok\"}") != 0) {
        goto oom;
    }
    {
        struct MHD_Response *resp = node_http_json_response(&b);

        if (resp != NULL) {
            MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        }
        return node_http_send(ctx, status, resp);
    }
oom:
    bl_buf_deinit(&b);
    return node_http_send(ctx, MHD_HTTP_SERVICE_UNAVAILABLE, NULL);
}

static enum MHD_Result
answer_metrics(struct node_ctx *ctx)
{
    struct bl_buf b;
    struct MHD_Response *resp;
    size_t len;
    char *data;

    bl_buf_init(&b);
    if (node_metrics_render(ctx->srv->metrics, &b) != 0) {
        bl_buf_deinit(&b);
        return node_http_send(ctx, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL);
    }
    data = bl_buf_steal(&b, &len);
    resp = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(data);
    } else {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, BL_METRICS_CONTENT_TYPE);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    }
    return node_http_send(ctx, MHD_HTTP_OK, resp);
}

/*
 * POST /_cache/flush[?id=ID] (node-internal admin path, write token required): drops post
 * ID, or every entry, on this node and publishes the flush to every node. 200
 * {"flushed":ID|"all","published":true|false}; 503 coherence_unavailable when Redis could
 * not take the message now (the local flush happened; the message is replayed later).
 */
static enum MHD_Result
answer_cache_flush(struct node_ctx *ctx)
{
    struct node_server *srv = ctx->srv;
    char id[NODE_ID_LEN + 1];
    const char *v;
    struct bl_buf b;
    int rc;

    if (!node_server_write_allowed(srv, MHD_lookup_connection_value(
                                            ctx->conn, MHD_HEADER_KIND,
                                            MHD_HTTP_HEADER_AUTHORIZATION))) {
        node_metrics_reject(srv->metrics, NODE_REJECT_UNAUTHORIZED);
        return node_http_error(ctx, MHD_HTTP_UNAUTHORIZED, "unauthorized",
                               "a valid bearer token is required to flush the cache");
    }
    v = MHD_lookup_connection_value(ctx->conn, MHD_GET_ARGUMENT_KIND, "id");
    if (v != NULL && !node_posts_id(v, strlen(v), id)) {
        return node_http_error(ctx, MHD_HTTP_BAD_REQUEST, "invalid_id",
                               "id must be a post id (24 hex digits)");
    }
    rc = node_inval_flush(srv->inval, srv->cache, v != NULL ? id : NULL);
    if (rc != 0) {
        return node_http_error(ctx, MHD_HTTP_SERVICE_UNAVAILABLE, "coherence_unavailable",
                               "flushed here, but Redis is unreachable: other nodes get the "
                               "flush when it is back (or flush on resubscribe)");
    }
    bl_buf_init(&b);
    if (bl_buf_printf(&b, "{\"flushed\":\"%s\",\"published\":%s}", v != NULL ? id : "all",
                      srv->inval != NULL ? "true" : "false") != 0) {
        bl_buf_deinit(&b);
        return node_http_send(ctx, MHD_HTTP_SERVICE_UNAVAILABLE, NULL);
    }
    return node_http_send(ctx, MHD_HTTP_OK, node_http_json_response(&b));
}

/* Requests without a body: every GET and HEAD, DELETE, 404s and 405s. */
static enum MHD_Result
dispatch_no_body(struct node_ctx *ctx, const char *rest)
{
    if (ctx->route == NODE_ROUTE_OTHER) {
        return node_http_error(ctx, MHD_HTTP_NOT_FOUND, "not_found", "no such endpoint");
    }
    if (!method_allowed(ctx->route, ctx->method)) {
        return node_http_error(ctx, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed",
                               "method not allowed on this path");
    }
    switch (ctx->route) {
    case NODE_ROUTE_POSTS:
        return node_posts_list(ctx);
    case NODE_ROUTE_POST:
        if (ctx->method == NODE_M_DELETE) {
            return node_posts_delete(ctx, rest);
        }
        return node_posts_get(ctx, rest);
    case NODE_ROUTE_ASSET:
        return node_assets_get(ctx, rest);
    case NODE_ROUTE_HEALTHZ:
    case NODE_ROUTE_READYZ:
        return answer_health(ctx);
    case NODE_ROUTE_METRICS:
        return answer_metrics(ctx);
    case NODE_ROUTE_CACHE_FLUSH:
        return answer_cache_flush(ctx);
    default:
        return node_http_error(ctx, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "unrouted");
    }
}

static bool
needs_body(enum node_route route, enum node_method m)
{
    return (route == NODE_ROUTE_POSTS && m == NODE_M_POST) ||
           (route == NODE_ROUTE_POST && m == NODE_M_PUT) ||
           (route == NODE_ROUTE_ASSETS && m == NODE_M_POST);
}

static void
upload_free(struct node_upload *up)
{
    if (up->mode == NODE_BODY_FILE) {
        node_assets_abort(up);
    }
    bl_buf_deinit(&up->json);
    free(up);
}

/* Starts dropping the rest of a refused body; see struct node_upload. */
static void
upload_drain(struct node_upload *up, unsigned status, const char *code, const char *msg, int rc)
{
    up->draining = true;
    up->drain_status = status;
    up->drain_code = code;
    snprintf(up->drain_msg, sizeof(up->drain_msg), "%s", msg != NULL ? msg : "");
    up->drain_rc = rc;
    if (up->mode == NODE_BODY_FILE) {
        node_assets_abort(up);
    }
    up->mode = NODE_BODY_NONE;
    bl_buf_deinit(&up->json);
}

/*
 * Refuses a request from its headers: counts <reason>, then answers at once when the
 * client waits for 100-continue or the body is too big to read through (MHD then closes
 * the connection), and otherwise reads the body through and answers at its end, which
 * keeps the connection (and an LB's pool) alive.
 */
static enum MHD_Result
upload_refuse(struct node_upload *up, enum node_reject reason, unsigned status,
              const char *code, const char *message)
{
    struct MHD_Connection *conn = up->ctx.conn;
    const char *expect = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
    unsigned long long n = 0;

    node_metrics_reject(up->ctx.srv->metrics, reason);
    if (cl != NULL) {
        n = strtoull(cl, NULL, 10);
    }
    if (expect == NULL && n <= NODE_DRAIN_MAX) {
        upload_drain(up, status, code, message, 0);
        up->limit = 0;
        return MHD_YES;
    }
    up->failed = true;
    return node_http_error(&up->ctx, status, code, message);
}

/*
 * First callback of POST/PUT: checks what the headers alone decide (auth, id, media type,
 * declared length) so nothing of a refused body is stored.
 */
static enum MHD_Result
upload_begin(struct node_upload *up, const char *rest)
{
    struct node_ctx *ctx = &up->ctx;
    struct node_server *srv = ctx->srv;
    const char *ct, *cl;
    char msg[160];
    int rc;

    up->limit = ctx->route == NODE_ROUTE_ASSETS ? srv->conf->node.limits.asset
                                                : srv->post_json_limit;
    if (!node_server_write_allowed(srv, MHD_lookup_connection_value(
                                            ctx->conn, MHD_HEADER_KIND,
                                            MHD_HTTP_HEADER_AUTHORIZATION))) {
        return upload_refuse(up, NODE_REJECT_UNAUTHORIZED, MHD_HTTP_UNAUTHORIZED, "unauthorized",
                             "a valid bearer token is required for writes");
    }
    if (ctx->route == NODE_ROUTE_POST && !node_posts_id(rest, strlen(rest), up->id)) {
        upload_drain(up, MHD_HTTP_NOT_FOUND, "not_found", "no such post", 0);
        up->limit = 0;
        return MHD_YES;
    }
    ct = MHD_lookup_connection_value(ctx->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (ctx->route == NODE_ROUTE_ASSETS) {
        bool ok = false;

        if (node_json_media_type(ct, up->content_type, sizeof(up->content_type)) == 0) {
            for (size_t i = 0; i < srv->conf->node.nasset_types; i++) {
                if (strcasecmp(up->content_type, srv->conf->node.asset_types[i]) == 0) {
                    ok = true;
                    break;
                }
            }
        }
        if (!ok) {
            return upload_refuse(up, NODE_REJECT_MEDIA_TYPE, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                 "unsupported_media_type",
                                 "Content-Type is not one of the allowed asset types");
        }
    } else if (!node_json_is_json_type(ct)) {
        return upload_refuse(up, NODE_REJECT_MEDIA_TYPE, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
                             "unsupported_media_type", "Content-Type must be application/json");
    }
    cl = MHD_lookup_connection_value(ctx->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl != NULL) {
        char *end;
        unsigned long long n;

        errno = 0;
        n = strtoull(cl, &end, 10);
        if (errno == 0 && end != cl && n > up->limit) {
            snprintf(msg, sizeof(msg), "the body is larger than %llu bytes",
                     (unsigned long long)up->limit);
            return upload_refuse(up, NODE_REJECT_TOO_LARGE, MHD_HTTP_CONTENT_TOO_LARGE,
                                 "body_too_large", msg);
        }
    }
    if (ctx->route == NODE_ROUTE_ASSETS) {
        up->mode = NODE_BODY_FILE;
        rc = node_assets_begin(up);
        if (rc != 0) {
            up->mode = NODE_BODY_NONE;
            upload_drain(up, 0, NULL, NULL, rc);
        }
    } else {
        up->mode = NODE_BODY_JSON;
    }
    return MHD_YES;
}

static enum MHD_Result
upload_data(struct node_upload *up, const char *data, size_t n)
{
    char msg[160];
    int rc;

    up->received += n;
    if (up->draining) {
        if (up->received > NODE_DRAIN_MAX) {
            /* Not worth reading any longer: close without an answer. */
            bl_logf(BL_LOG_WARN,
                    ((struct bl_log_field[]){BL_LOG_UINT("received", up->received)}), 1,
                    "closing a connection whose refused body does not end");
            return MHD_NO;
        }
        return MHD_YES;
    }
    if (up->received > up->limit) {
        snprintf(msg, sizeof(msg), "the body is larger than %llu bytes",
                 (unsigned long long)up->limit);
        node_metrics_reject(up->ctx.srv->metrics, NODE_REJECT_TOO_LARGE);
        upload_drain(up, MHD_HTTP_CONTENT_TOO_LARGE, "body_too_large", msg, 0);
        return MHD_YES;
    }
    if (up->mode == NODE_BODY_FILE) {
        rc = node_assets_write(up, data, n);
        if (rc != 0) {
            upload_drain(up, 0, NULL, NULL, rc);
        }
        return MHD_YES;
    }
    if (bl_buf_append(&up->json, data, n) != 0) {
        upload_drain(up, 0, NULL, NULL, -ENOMEM);
    }
    return MHD_YES;
}

static enum MHD_Result
upload_end(struct node_upload *up)
{
    struct node_ctx *ctx = &up->ctx;

    if (up->draining && up->drain_status != 0) {
        return node_http_error(ctx, up->drain_status, up->drain_code, up->drain_msg);
    }
    if (up->draining) {
        return node_http_store_error(ctx, up->drain_rc, "upload", NULL);
    }
    switch (ctx->route) {
    case NODE_ROUTE_POSTS:
        return node_posts_create(ctx, up->json.data ? up->json.data : "", up->json.len);
    case NODE_ROUTE_POST:
        return node_posts_replace(ctx, up->id, up->json.data ? up->json.data : "",
                                  up->json.len);
    case NODE_ROUTE_ASSETS:
        return node_assets_finish(up);
    default:
        return node_http_error(ctx, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "unrouted");
    }
}

/*
 * Writer threads. A store write may wait for an fsync (LMDB commits are durable), which on
 * an MHD thread would stall every other connection of that thread. So the last callback of
 * a POST/PUT/DELETE suspends the connection and hands the request to a writer thread, which
 * runs the same handler with ctx.deferred set (the answer is kept, not queued), then resumes
 * the connection; MHD calls the access handler again and the answer is queued there.
 */
#define NODE_WRITERS 64              /* mostly asleep: they wait for group commits (node_store_lmdb.c) */

struct node_writers {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct node_upload **queue;         /* ring of waiting jobs */
    size_t cap, head, n;
    bool stop;
    pthread_t threads[NODE_WRITERS];
    int nthreads;
};

static enum MHD_Result upload_end(struct node_upload *up);
static enum MHD_Result dispatch_no_body(struct node_ctx *ctx, const char *rest);

static void
run_job(struct node_upload *up)
{
    up->ctx.deferred = true;
    if (up->is_delete) {
        (void)node_posts_delete(&up->ctx, up->id);
    } else {
        (void)upload_end(up);
    }
    atomic_store(&up->job, NODE_JOB_DONE);
    MHD_resume_connection(up->ctx.conn);
}

static void *
writer_main(void *arg)
{
    struct node_writers *w = arg;

    for (;;) {
        struct node_upload *up;

        pthread_mutex_lock(&w->lock);
        while (w->n == 0 && !w->stop) {
            pthread_cond_wait(&w->cond, &w->lock);
        }
        if (w->n == 0) {
            pthread_mutex_unlock(&w->lock);
            return NULL;
        }
        up = w->queue[w->head];
        w->head = (w->head + 1) % w->cap;
        w->n--;
        pthread_mutex_unlock(&w->lock);
        run_job(up);
    }
}

/* Queues <up> (its connection already suspended). Returns 0 or -ENOMEM. */
static int
writers_submit(struct node_writers *w, struct node_upload *up)
{
    pthread_mutex_lock(&w->lock);
    if (w->n == w->cap) {
        size_t ncap = w->cap * 2;
        struct node_upload **q = malloc(ncap * sizeof(*q));

        if (q == NULL) {
            pthread_mutex_unlock(&w->lock);
            return -ENOMEM;
        }
        for (size_t i = 0; i < w->n; i++) {
            q[i] = w->queue[(w->head + i) % w->cap];
        }
        free(w->queue);
        w->queue = q;
        w->cap = ncap;
        w->head = 0;
    }
    w->queue[(w->head + w->n) % w->cap] = up;
    w->n++;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    return 0;
}

static struct node_writers *
writers_start(void)
{
    struct node_writers *w = calloc(1, sizeof(*w));

    if (w == NULL) {
        return NULL;
    }
    w->cap = 256;
    w->queue = malloc(w->cap * sizeof(*w->queue));
    if (w->queue == NULL) {
        free(w);
        return NULL;
    }
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    for (int i = 0; i < NODE_WRITERS; i++) {
        if (pthread_create(&w->threads[i], NULL, writer_main, w) != 0) {
            break;
        }
        w->nthreads++;
    }
    if (w->nthreads == 0) {
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->cond);
        free(w->queue);
        free(w);
        return NULL;
    }
    return w;
}

/* Runs the queued jobs to the end, then joins the threads. */
static void
writers_stop(struct node_writers *w)
{
    if (w == NULL) {
        return;
    }
    pthread_mutex_lock(&w->lock);
    w->stop = true;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
    for (int i = 0; i < w->nthreads; i++) {
        pthread_join(w->threads[i], NULL);
    }
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->cond);
    free(w->queue);
    free(w);
}

/*
 * The last callback of a write: hands it to a writer thread. Returns false when it must
 * run here instead (no writer threads, or no memory to queue it).
 */
static bool
defer_write(struct node_upload *up)
{
    struct node_writers *w = up->ctx.srv->writers;

    if (w == NULL) {
        return false;
    }
    atomic_store(&up->job, NODE_JOB_RUNNING);
    MHD_suspend_connection(up->ctx.conn);
    if (writers_submit(w, up) != 0) {
        MHD_resume_connection(up->ctx.conn);
        atomic_store(&up->job, NODE_JOB_NONE);
        return false;
    }
    return true;
}

/* MHD calls again after the resume: queue what the writer thread prepared. */
static enum MHD_Result
finish_job(struct node_upload *up)
{
    struct node_ctx *ctx = &up->ctx;
    struct MHD_Response *resp = ctx->pending;

    atomic_store(&up->job, NODE_JOB_NONE);
    ctx->deferred = false;
    ctx->pending = NULL;
    return node_http_send(ctx, ctx->pending_status, resp);
}

/* True when the request announces a body (a non-zero Content-Length or chunked). */
static bool
declares_body(struct MHD_Connection *conn)
{
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);

    if (cl != NULL) {
        return strspn(cl, "0") != strlen(cl);
    }
    return MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                       MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL;
}

static enum MHD_Result
access_handler(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
               const char *version, const char *upload_data_p, size_t *upload_data_size,
               void **con_cls)
{
    struct node_server *srv = cls;
    const char *rest;

    if (*con_cls == NULL) {
        enum node_route route = route_parse(url, &rest);
        enum node_method m = method_parse(method);
        struct node_upload *up;

        bool takes_body = needs_body(route, m) && method_allowed(route, m);
        bool is_delete = route == NODE_ROUTE_POST && m == NODE_M_DELETE;

        atomic_fetch_add_explicit(&srv->inflight, 1, memory_order_relaxed);
        if (!takes_body && !is_delete && !declares_body(conn)) {
            *con_cls = &no_body_marker;
            return MHD_YES;
        }
        up = calloc(1, sizeof(*up));
        if (up == NULL) {
            return MHD_NO;
        }
        up->ctx.srv = srv;
        up->ctx.conn = conn;
        up->ctx.route = route;
        up->ctx.method = m;
        up->ctx.t0_ns = bl_time_mono_ns();
        up->tmp_fd = -1;
        bl_buf_init(&up->json);
        *con_cls = up;
        if (is_delete) {
            /* its id is copied now: run by a writer thread, it outlives this callback */
            up->is_delete = true;
            snprintf(up->id, sizeof(up->id), "%.*s", (int)BL_MIN(strlen(rest), NODE_ID_LEN), rest);
            if (strlen(rest) > NODE_ID_LEN) {
                up->id[0] = '\0';      /* malformed: node_posts_delete answers 404 */
            }
            up->draining = declares_body(conn);
            up->limit = 0;
            return MHD_YES;
        }
        if (!takes_body) {
            /* A GET/DELETE/404/405 with a body: read it through (bounded), then answer. */
            up->ignore_body = true;
            up->draining = true;
            return MHD_YES;
        }
        return upload_begin(up, rest);
    }
    if (*con_cls == &no_body_marker) {
        struct node_ctx ctx = {0};      /* deferred/pending must be false/NULL here */

        if (*upload_data_size != 0) {
            *upload_data_size = 0;      /* a body nobody asked for: drop it */
            return MHD_YES;
        }
        ctx.srv = srv;
        ctx.conn = conn;
        ctx.route = route_parse(url, &rest);
        ctx.method = method_parse(method);
        ctx.t0_ns = bl_time_mono_ns();
        ctx.responded = false;
        return dispatch_no_body(&ctx, rest);
    }

    struct node_upload *up = *con_cls;
    int job = atomic_load(&up->job);

    if (job == NODE_JOB_DONE) {
        return finish_job(up);
    }
    if (job == NODE_JOB_RUNNING) {
        return MHD_YES;                 /* not ours until the writer resumes it */
    }
    if (up->failed || up->ctx.responded) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        size_t n = *upload_data_size;

        *upload_data_size = 0;
        return upload_data(up, upload_data_p, n);
    }
    if (up->ignore_body) {
        up->ctx.route = route_parse(url, &rest);
        return dispatch_no_body(&up->ctx, rest);
    }
    if ((up->is_delete || !up->draining) && defer_write(up)) {
        return MHD_YES;
    }
    if (up->is_delete) {
        return node_posts_delete(&up->ctx, up->id);
    }
    return upload_end(up);
}

static void
request_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                  enum MHD_RequestTerminationCode toe)
{
    struct node_server *srv = cls;

    if (*con_cls == NULL) {
        return;
    }
    atomic_fetch_sub_explicit(&srv->inflight, 1, memory_order_relaxed);
    if (*con_cls != &no_body_marker) {
        struct node_upload *up = *con_cls;

        if (up->ctx.pending != NULL) {
            MHD_destroy_response(up->ctx.pending);
            up->ctx.pending = NULL;
        }
        if (!up->ctx.responded && !up->ignore_body &&
            toe != MHD_REQUEST_TERMINATED_COMPLETED_OK) {
            node_metrics_reject(srv->metrics, NODE_REJECT_TRUNCATED);
        }
        upload_free(up);
    }
    *con_cls = NULL;
}

static void
mhd_logger(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    size_t n;

    if (!bl_log_enabled(BL_LOG_WARN)) {
        return;
    }
    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) {
        msg[--n] = '\0';
    }
    bl_log_write(BL_LOG_WARN, ((struct bl_log_field[]){BL_LOG_STR("source", "libmicrohttpd")}), 1,
                 "%s", msg);
}

int
node_http_start(struct node_server *srv, int listen_fd, unsigned threads, char **err)
{
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC |
                     MHD_USE_TURBO | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
    struct MHD_OptionItem opts[] = {
        {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_logger, srv},
        {MHD_OPTION_LISTEN_SOCKET, listen_fd, NULL},
        {MHD_OPTION_CONNECTION_LIMIT, NODE_CONN_LIMIT, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, NODE_CONN_TIMEOUT_S, NULL},
        {MHD_OPTION_CONNECTION_MEMORY_LIMIT, NODE_CONN_MEMORY, NULL},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)request_completed, srv},
        {MHD_OPTION_THREAD_POOL_SIZE, threads, NULL},
        {MHD_OPTION_END, 0, NULL},
    };

    if (threads <= 1) {
        opts[6].option = MHD_OPTION_END;       /* one thread: no pool */
    }
    srv->writers = writers_start();
    if (srv->writers == NULL) {
        bl_log(BL_LOG_WARN, "no writer threads: store writes run on the HTTP threads");
    }
    srv->mhd = MHD_start_daemon(flags, 0, NULL, NULL, access_handler, srv,
                                MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    if (srv->mhd == NULL) {
        const char *m = "libmicrohttpd could not start the daemon";

        *err = bl_xstrdup(m);
        close(listen_fd);
        writers_stop(srv->writers);
        srv->writers = NULL;
        return BL_EUNAVAIL;
    }
    return 0;
}

void
node_http_quiesce(struct node_server *srv)
{
    MHD_socket fd;

    if (srv->mhd == NULL) {
        return;
    }
    atomic_store(&srv->stopping, true);
    fd = MHD_quiesce_daemon(srv->mhd);
    if (fd != MHD_INVALID_SOCKET) {
        close(fd);
    }
}

void
node_http_stop(struct node_server *srv)
{
    /* writers first: a job resumes its connection, which needs the daemon */
    writers_stop(srv->writers);
    srv->writers = NULL;
    if (srv->mhd == NULL) {
        return;
    }
    MHD_stop_daemon(srv->mhd);
    srv->mhd = NULL;
}

bool
node_server_write_allowed(struct node_server *srv, const char *authorization)
{
    bool ok;

    pthread_rwlock_rdlock(&srv->auth_lock);
    ok = srv->allow_anonymous_writes ||
         bl_auth_bearer_ok(authorization, (const uint8_t (*)[BL_SHA256_LEN])srv->tokens,
                           srv->ntokens);
    pthread_rwlock_unlock(&srv->auth_lock);
    return ok;
}

int
node_server_set_tokens(struct node_server *srv, const struct bl_conf *conf)
{
    uint8_t (*tokens)[BL_SHA256_LEN] = NULL;
    uint8_t (*old)[BL_SHA256_LEN];

    if (conf->cluster.nwrite_tokens > 0) {
        tokens = malloc(conf->cluster.nwrite_tokens * BL_SHA256_LEN);
        if (tokens == NULL) {
            return -ENOMEM;
        }
        memcpy(tokens, conf->cluster.write_tokens, conf->cluster.nwrite_tokens * BL_SHA256_LEN);
    }
    pthread_rwlock_wrlock(&srv->auth_lock);
    old = srv->tokens;
    srv->tokens = tokens;
    srv->ntokens = conf->cluster.nwrite_tokens;
    srv->allow_anonymous_writes = conf->cluster.allow_anonymous_writes;
    pthread_rwlock_unlock(&srv->auth_lock);
    free(old);
    return 0;
}
