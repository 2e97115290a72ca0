#include "node_posts.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bl/bl_buf.h"
#include "bl/bl_err.h"
#include "bl/bl_log.h"
#include "bl/bl_time.h"

#include "node_cache.h"
#include "node_inval.h"

#define NODE_LIST_DEFAULT 20
#define NODE_LIST_MAX 1000
#define NODE_IF_MATCH_MAX 16            /* versions of one id we look at in an If-Match list */

/*
 * Posts may be stored by any client and change on every write: caches may keep them but
 * must revalidate each time (cheap with the ETag), so no client serves a stale version.
 */
#define NODE_POST_CACHE_CONTROL "no-cache"

bool
node_posts_id(const char *s, size_t len, char out[NODE_ID_LEN + 1])
{
    if (!node_store_valid_id(s, len)) {
        return false;
    }
    for (size_t i = 0; i < NODE_ID_LEN; i++) {
        char c = s[i];

        out[i] = (c >= 'A' && c <= 'F') ? (char)(c + 32) : c;
    }
    out[NODE_ID_LEN] = '\0';
    return true;
}

void
node_rendered_deinit(struct node_rendered *r)
{
    free(r->body);
    r->body = NULL;
    r->len = 0;
}

static int
render_post(const struct node_post *p, struct node_rendered *out)
{
    struct bl_buf b;

    bl_buf_init(&b);
    if (bl_buf_reserve(&b, 512 + strlen(p->body)) != 0 || node_json_render_post(&b, p) != 0) {
        bl_buf_deinit(&b);
        return -ENOMEM;
    }
    out->body = bl_buf_steal(&b, &out->len);
    node_json_post_etag(p->id, p->version, out->etag);
    out->version = p->version;
    return 0;
}

int
node_posts_render(struct node_server *srv, const char *id, struct node_rendered *out)
{
    struct node_store *s = srv->store;
    struct node_post p;
    uint64_t t0;
    int rc;

    memset(&p, 0, sizeof(p));
    t0 = bl_time_mono_ns();
    rc = node_store_done(srv, NODE_OP_GET, t0, s->ops->get(s, id, &p));
    if (rc != 0) {
        return rc;
    }
    rc = render_post(&p, out);
    node_post_deinit(&p);
    return rc;
}

/* A 200/201 response carrying <r> (its body is taken). */
static struct MHD_Response *
post_response(struct node_rendered *r)
{
    struct MHD_Response *resp;

    resp = MHD_create_response_from_buffer(r->len, r->body, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        node_rendered_deinit(r);
        return NULL;
    }
    r->body = NULL;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json; charset=utf-8");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, r->etag);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, NODE_POST_CACHE_CONTROL);
    return resp;
}

/* ---- hot cache (issue 4): lookups before the store read, fills after ---- */

static void
entry_release(void *cls)
{
    node_cache_entry_put(cls);
}

void
node_posts_response_release(void *resp)
{
    MHD_destroy_response(resp);
}

struct shared_hit {
    struct node_ctx *ctx;
    unsigned status;
    enum MHD_Result ret;
};

/*
 * Under the entry's shard lock (node_cache_entry_with_aux): queues the entry's ready
 * response, building it on the first hit. The response holds one reference on the entry
 * (dropped by its free callback) and the cache holds the response until the entry leaves
 * (node_posts_response_release), so a hit allocates nothing and the bytes outlive every
 * connection still sending them.
 */
static int
queue_shared(struct node_cache_entry *e, void **aux, void *arg)
{
    struct shared_hit *h = arg;
    struct MHD_Response *resp = *aux;

    if (resp == NULL) {
        node_cache_entry_get(e);
        resp = MHD_create_response_from_buffer_with_free_callback_cls(e->len, e->body,
                                                                      entry_release, e);
        if (resp == NULL) {
            node_cache_entry_put(e);
            return -ENOMEM;
        }
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                "application/json; charset=utf-8");
        if (e->status == MHD_HTTP_OK) {
            if (e->etag[0] != '\0') {
                MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, e->etag);
            }
            MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, NODE_POST_CACHE_CONTROL);
        }
        MHD_add_response_header(resp, "X-Cache", "HIT");
        MHD_add_response_header(resp, "X-Blog-Node", h->ctx->srv->name);
        *aux = resp;
    }
    h->ret = MHD_queue_response(h->ctx->conn, h->status, resp);
    return 0;
}

/*
 * Answers from cache entry <e> (our reference is handed to libmicrohttpd, which reads the
 * bytes in place and drops the reference when the response is done): the post (200, or
 * 304 on a matching If-None-Match), a list page, or the cached 404.
 */
static enum MHD_Result
answer_entry(struct node_ctx *ctx, struct node_cache_entry *e, bool hit)
{
    struct MHD_Response *resp;
    unsigned status = e->status;
    const char *inm;

    if (hit && !atomic_load_explicit(&ctx->srv->stopping, memory_order_relaxed)) {
        /* The common case: the entry's ready response. It bypasses node_http_send, so its
         * bookkeeping is repeated here (X-Blog-Node is in the response; while draining,
         * when node_http_send adds Connection: close, hits take the path below). */
        struct shared_hit h = {.ctx = ctx, .status = status};

        if (status == MHD_HTTP_OK && e->etag[0] != '\0') {
            inm = MHD_lookup_connection_value(ctx->conn, MHD_HEADER_KIND,
                                              MHD_HTTP_HEADER_IF_NONE_MATCH);
            if (inm != NULL && node_json_none_match(inm, e->etag)) {
                h.status = MHD_HTTP_NOT_MODIFIED;
            }
        }
        if (node_cache_entry_with_aux(ctx->srv->cache, e, queue_shared, &h) == 0) {
            node_cache_entry_put(e);
            ctx->responded = true;
            node_metrics_request(ctx->srv->metrics, ctx->route, ctx->method, h.status,
                                 bl_time_mono_ns() - ctx->t0_ns);
            return h.ret;
        }
        /* no longer cached (or no memory): a response of its own */
    }
    resp = MHD_create_response_from_buffer_with_free_callback_cls(e->len, e->body,
                                                                  entry_release, e);
    if (resp == NULL) {
        node_cache_entry_put(e);
        return node_http_send(ctx, MHD_HTTP_SERVICE_UNAVAILABLE, NULL);
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json; charset=utf-8");
    if (status == MHD_HTTP_OK) {
        if (e->etag[0] != '\0') {
            MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, e->etag);
            inm = MHD_lookup_connection_value(ctx->conn, MHD_HEADER_KIND,
                                              MHD_HTTP_HEADER_IF_NONE_MATCH);
            if (inm != NULL && node_json_none_match(inm, e->etag)) {
                status = MHD_HTTP_NOT_MODIFIED;
            }
        }
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, NODE_POST_CACHE_CONTROL);
    }
    MHD_add_response_header(resp, "X-Cache", hit ? "HIT" : "MISS");
    return node_http_send(ctx, status, resp);
}

/* GET /posts/{id} through the cache; returns false (nothing sent) on BYPASS. */
static bool
get_cached(struct node_ctx *ctx, const char *id, enum MHD_Result *ret)
{
    struct node_server *srv = ctx->srv;
    char key[NODE_CACHE_KEY_MAX];
    size_t klen = node_cache_post_key(id, key);
    struct node_cache_entry *e = NULL;
    struct node_cache_fill fill;
    struct node_rendered r;
    struct bl_buf b;
    char *body;
    size_t len;
    int rc;

    switch (node_cache_lookup(srv->cache, key, klen, false, 0, &e, &fill)) {
    case NODE_CACHE_HIT:
        *ret = answer_entry(ctx, e, true);
        return true;
    case NODE_CACHE_BYPASS:
        return false;
    case NODE_CACHE_MISS:
        break;
    }
    /* the miss noted the key's invalidation sequence: the fill below is refused if an
     * invalidation arrives while we read */
    rc = node_posts_render(srv, id, &r);
    if (rc == 0) {
        rc = node_cache_fill(srv->cache, &fill, MHD_HTTP_OK, r.version, r.etag, r.body, r.len, &e);
    } else if (rc == BL_ENOTFOUND) {
        bl_buf_init(&b);
        if (node_json_render_error(&b, "not_found", "no such post") != 0) {
            bl_buf_deinit(&b);
            node_cache_fill_abort(srv->cache, &fill);
            *ret = node_http_send(ctx, MHD_HTTP_SERVICE_UNAVAILABLE, NULL);
            return true;
        }
        body = bl_buf_steal(&b, &len);
        rc = node_cache_fill(srv->cache, &fill, MHD_HTTP_NOT_FOUND, 0, NULL, body, len, &e);
    } else {
        node_cache_fill_abort(srv->cache, &fill);
        *ret = node_http_store_error(ctx, rc, "get", id);
        return true;
    }
    if (e == NULL) {                    /* -ENOMEM */
        *ret = node_http_error(ctx, MHD_HTTP_SERVICE_UNAVAILABLE, "out_of_memory",
                               "out of memory");
        return true;
    }
    *ret = answer_entry(ctx, e, false);
    return true;
}

/* GET /posts through the cache; returns false (nothing sent) on BYPASS. */
static bool
list_cached(struct node_ctx *ctx, const char *cursor, size_t limit, enum MHD_Result *ret)
{
    struct node_server *srv = ctx->srv;
    char key[NODE_CACHE_KEY_MAX];
    uint64_t gen;
    size_t klen = node_cache_list_key(srv->cache, cursor, limit, key, &gen);
    struct node_cache_entry *e = NULL;
    struct node_cache_fill fill;
    struct node_post_list l;
    struct bl_buf b;
    char *body;
    size_t len;
    uint64_t t0;
    int rc;

    switch (node_cache_lookup(srv->cache, key, klen, true, gen, &e, &fill)) {
    case NODE_CACHE_HIT:
        *ret = answer_entry(ctx, e, true);
        return true;
    case NODE_CACHE_BYPASS:
        return false;
    case NODE_CACHE_MISS:
        break;
    }
    memset(&l, 0, sizeof(l));
    t0 = bl_time_mono_ns();
    rc = node_store_done(srv, NODE_OP_LIST, t0, srv->store->ops->list(srv->store, cursor, limit, &l));
    if (rc != 0) {
        node_cache_fill_abort(srv->cache, &fill);
        *ret = node_http_store_error(ctx, rc, "list", NULL);
        return true;
    }
    bl_buf_init(&b);
    rc = node_json_render_list(&b, &l);
    node_post_list_deinit(&l);
    if (rc != 0) {
        bl_buf_deinit(&b);
        node_cache_fill_abort(srv->cache, &fill);
        *ret = node_http_error(ctx, MHD_HTTP_SERVICE_UNAVAILABLE, "out_of_memory",
                               "out of memory");
        return true;
    }
    body = bl_buf_steal(&b, &len);
    (void)node_cache_fill(srv->cache, &fill, MHD_HTTP_OK, 0, NULL, body, len, &e);
    if (e == NULL) {
        *ret = node_http_error(ctx, MHD_HTTP_SERVICE_UNAVAILABLE, "out_of_memory",
                               "out of memory");
        return true;
    }
    *ret = answer_entry(ctx, e, false);
    return true;
}

/* Refuses a write before it touches the store when its invalidation could not be sent. */
static bool
coherence_refused(struct node_ctx *ctx, enum MHD_Result *ret)
{
    if (node_inval_write_begin(ctx->srv->inval) == 0) {
        return false;
    }
    *ret = node_http_error(ctx, MHD_HTTP_SERVICE_UNAVAILABLE, "coherence_unavailable",
                           "the cache invalidation channel (Redis) is unreachable; writes "
                           "are refused until it is back");
    return true;
}

/* ---- end of the hot cache glue ---- */

enum MHD_Result
node_posts_get(struct node_ctx *ctx, const char *id_raw)
{
    char id[NODE_ID_LEN + 1];
    struct node_rendered r;
    struct MHD_Response *resp;
    const char *inm;
    unsigned status;
    enum MHD_Result ret;
    int rc;

    if (!node_posts_id(id_raw, strlen(id_raw), id)) {
        return node_http_error(ctx, MHD_HTTP_NOT_FOUND, "not_found", "no such post");
    }
    if (get_cached(ctx, id, &ret)) {
        return ret;
    }
    rc = node_posts_render(ctx->srv, id, &r);
    if (rc != 0) {
        return node_http_store_error(ctx, rc, "get", id);
    }
    /* A 304 is the 200 without its body: MHD sends no body for 304 and its Content-Length
     * is the representation's, as RFC 9110 8.6 wants. */
    inm = MHD_lookup_connection_value(ctx->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
    status = inm != NULL && node_json_none_match(inm, r.etag) ? MHD_HTTP_NOT_MODIFIED : MHD_HTTP_OK;
    resp = post_response(&r);
    if (resp != NULL) {
        MHD_add_response_header(resp, "X-Cache", "MISS");
    }
    return node_http_send(ctx, status, resp);
}

/* Parses ?limit: absent -> default; present, it must be 1..1000 in plain digits. */
static bool
parse_limit(struct MHD_Connection *conn, size_t *out)
{
    const char *v = NULL;
    size_t vlen = 0;
    size_t n = 0;

    if (MHD_lookup_connection_value_n(conn, MHD_GET_ARGUMENT_KIND, "limit", 5, &v, &vlen) !=
        MHD_YES) {
        *out = NODE_LIST_DEFAULT;
        return true;
    }
    if (v == NULL || vlen == 0 || vlen > 4) {
        return false;
    }
    for (size_t i = 0; i < vlen; i++) {
        if (v[i] < '0' || v[i] > '9') {
            return false;
        }
        n = n * 10 + (size_t)(v[i] - '0');
    }
    if (n < 1 || n > NODE_LIST_MAX) {
        return false;
    }
    *out = n;
    return true;
}

enum MHD_Result
node_posts_list(struct node_ctx *ctx)
{
    struct node_server *srv = ctx->srv;
    struct node_post_list l;
    struct bl_buf b;
    char cursor[NODE_ID_LEN + 1];
    const char *cv = NULL;
    size_t cvlen = 0;
    bool has_cursor;
    size_t limit;
    uint64_t t0;
    int rc;
    struct MHD_Response *resp;
    enum MHD_Result ret;

    if (!parse_limit(ctx->conn, &limit)) {
        return node_http_error(ctx, MHD_HTTP_BAD_REQUEST, "invalid_limit",
                               "limit must be an integer from 1 to 1000");
    }
    has_cursor = MHD_lookup_connection_value_n(ctx->conn, MHD_GET_ARGUMENT_KIND, "cursor", 6,
                                               &cv, &cvlen) == MHD_YES;
    if (has_cursor && (cv == NULL || !node_posts_id(cv, cvlen, cursor))) {
        return node_http_error(ctx, MHD_HTTP_BAD_REQUEST, "invalid_cursor",
                               "cursor must be a next_cursor value from a previous page");
    }
    if (list_cached(ctx, has_cursor ? cursor : NULL, limit, &ret)) {
        return ret;
    }
    memset(&l, 0, sizeof(l));
    t0 = bl_time_mono_ns();
    rc = node_store_done(srv, NODE_OP_LIST, t0,
                         srv->store->ops->list(srv->store, has_cursor ? cursor : NULL, limit, &l));
    if (rc != 0) {
        return node_http_store_error(ctx, rc, "list", NULL);
    }
    bl_buf_init(&b);
    rc = node_json_render_list(&b, &l);
    node_post_list_deinit(&l);
    if (rc != 0) {
        bl_buf_deinit(&b);
        return node_http_error(ctx, MHD_HTTP_SERVICE_UNAVAILABLE, "out_of_memory",
                               "out of memory");
    }
    resp = node_http_json_response(&b);
    if (resp != NULL) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, NODE_POST_CACHE_CONTROL);
        MHD_add_response_header(resp, "X-Cache", "MISS");
    }
    return node_http_send(ctx, MHD_HTTP_OK, resp);
}

/* Answers a validation failure of a POST/PUT body. */
static enum MHD_Result
invalid_body(struct node_ctx *ctx, int rc, const struct node_json_error *err)
{
    if (rc == -ENOMEM) {
        return node_http_error(ctx, MHD_HTTP_SERVICE_UNAVAILABLE, "out_of_memory",
                               "out of memory");
    }
    node_metrics_reject(ctx->srv->metrics, strcmp(err->code, "invalid_json") == 0 ||
                                                   strcmp(err->code, "invalid_body") == 0
                                               ? NODE_REJECT_INVALID_JSON
                                               : NODE_REJECT_INVALID_FIELD);
    return node_http_error(ctx, MHD_HTTP_BAD_REQUEST, err->code, err->message);
}

/* Answers 200/201 with <p> as stored. */
static enum MHD_Result
answer_post(struct node_ctx *ctx, unsigned status, const struct node_post *p)
{
    struct node_rendered r;
    struct MHD_Response *resp;

    if (render_post(p, &r) != 0) {
        return node_http_error(ctx, MHD_HTTP_SERVICE_UNAVAILABLE, "out_of_memory",
                               "out of memory");
    }
    resp = post_response(&r);
    if (resp != NULL && status == MHD_HTTP_CREATED) {
        char loc[8 + NODE_ID_LEN];

        snprintf(loc, sizeof(loc), "/posts/%s", p->id);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, loc);
    }
    return node_http_send(ctx, status, resp);
}

enum MHD_Result
node_posts_create(struct node_ctx *ctx, const char *body, size_t len)
{
    struct node_server *srv = ctx->srv;
    struct node_json_error err;
    struct node_post p;
    enum MHD_Result ret;
    uint64_t t0;
    int rc;

    memset(&p, 0, sizeof(p));
    rc = node_json_parse_post(body, len, srv->conf->node.limits.post_body, &p, &err);
    if (rc != 0) {
        return invalid_body(ctx, rc, &err);
    }
    if (coherence_refused(ctx, &ret)) {
        node_post_deinit(&p);
        return ret;
    }
    p.created_ms = p.updated_ms = bl_time_real_ms();
    p.version = 1;
    for (int attempt = 0; attempt < 3; attempt++) {
        node_store_new_id(p.id);
        t0 = bl_time_mono_ns();
        rc = node_store_done(srv, NODE_OP_INSERT, t0, srv->store->ops->insert(srv->store, &p));
        if (rc != BL_EEXIST) {
            break;
        }
    }
    if (rc != 0) {
        ret = node_http_store_error(ctx, rc, "insert", p.id);
    } else {
        /* drops a cached 404 of the new id and every list page, here and on every node */
        node_inval_post_written(srv->inval, srv->cache, p.id, p.version);
        ret = answer_post(ctx, MHD_HTTP_CREATED, &p);
    }
    node_post_deinit(&p);
    return ret;
}

/*
 * If-None-Match on a write (RFC 9110 13.1.2): fails when the current representation's ETag
 * matches (weakly) or the header is "*" and the post exists. When it passes on an existing
 * post, *expected pins the version it was evaluated against, so the write stays atomic
 * with the check.
 */
static bool
if_none_match_write(struct node_ctx *ctx, const char *id, uint64_t *expected)
{
    struct node_server *srv = ctx->srv;
    const char *h = MHD_lookup_connection_value(ctx->conn, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_IF_NONE_MATCH);
    struct node_post cur;
    char etag[NODE_ETAG_MAX];
    uint64_t t0;
    bool ok;

    if (h == NULL) {
        return true;
    }
    memset(&cur, 0, sizeof(cur));
    t0 = bl_time_mono_ns();
    if (node_store_done(srv, NODE_OP_GET, t0, srv->store->ops->get(srv->store, id, &cur)) != 0) {
        return true;                    /* nothing current: the condition holds */
    }
    node_json_post_etag(cur.id, cur.version, etag);
    ok = !node_json_none_match(h, etag);
    if (ok) {
        *expected = cur.version;
    }
    node_post_deinit(&cur);
    return ok;
}

/*
 * Evaluates If-Match for a write to <id>: sets *expected to the version the store must
 * still hold (0 = any), or returns false when the precondition already failed.
 * *has_cond tells whether the header was present.
 */
static bool
if_match(struct node_ctx *ctx, const char *id, uint64_t *expected, bool *has_cond)
{
    struct node_server *srv = ctx->srv;
    const char *h;
    uint64_t versions[NODE_IF_MATCH_MAX];
    size_t n;
    bool any;
    struct node_post cur;
    uint64_t t0;
    int rc;

    *expected = 0;
    *has_cond = false;
    if (!if_none_match_write(ctx, id, expected)) {
        return false;
    }
    h = MHD_lookup_connection_value(ctx->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_MATCH);
    if (h == NULL) {
        return true;
    }
    *has_cond = true;
    if (node_json_if_match(h, id, versions, NODE_IF_MATCH_MAX, &n, &any) != 0) {
        return false;
    }
    if (any) {
        return true;                    /* the store still answers not-found -> 412 */
    }
    if (*expected != 0) {
        /* If-None-Match pinned the current version: it must also be in the list */
        for (size_t i = 0; i < n; i++) {
            if (versions[i] == *expected) {
                return true;
            }
        }
        return false;
    }
    if (n == 0) {
        return false;
    }
    if (n == 1) {
        *expected = versions[0];
        return true;
    }
    /* Several versions listed: the current one must be among them; the write then
     * requires exactly that version, so a concurrent change still fails it. */
    memset(&cur, 0, sizeof(cur));
    t0 = bl_time_mono_ns();
    rc = node_store_done(srv, NODE_OP_GET, t0, srv->store->ops->get(srv->store, id, &cur));
    if (rc != 0) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (versions[i] == cur.version) {
            *expected = cur.version;
            break;
        }
    }
    node_post_deinit(&cur);
    return *expected != 0;
}

static enum MHD_Result
precondition_failed(struct node_ctx *ctx)
{
    return node_http_error(ctx, MHD_HTTP_PRECONDITION_FAILED, "precondition_failed",
                           "If-Match does not match the post's current ETag");
}

enum MHD_Result
node_posts_replace(struct node_ctx *ctx, const char *id, const char *body, size_t len)
{
    struct node_server *srv = ctx->srv;
    struct node_json_error err;
    struct node_post p;
    enum MHD_Result ret;
    uint64_t expected, t0;
    bool has_cond;
    int rc;

    memset(&p, 0, sizeof(p));
    rc = node_json_parse_post(body, len, srv->conf->node.limits.post_body, &p, &err);
    if (rc != 0) {
        return invalid_body(ctx, rc, &err);
    }
    if (coherence_refused(ctx, &ret)) {
        node_post_deinit(&p);
        return ret;
    }
    if (!if_match(ctx, id, &expected, &has_cond)) {
        node_post_deinit(&p);
        return precondition_failed(ctx);
    }
    memcpy(p.id, id, NODE_ID_LEN + 1);
    p.updated_ms = bl_time_real_ms();
    t0 = bl_time_mono_ns();
    rc = node_store_done(srv, NODE_OP_REPLACE, t0,
                         srv->store->ops->replace(srv->store, &p, expected));
    if (rc == 0) {
        node_inval_post_written(srv->inval, srv->cache, p.id, p.version);
        ret = answer_post(ctx, MHD_HTTP_OK, &p);
    } else if (rc == BL_ENOTFOUND && has_cond) {
        ret = precondition_failed(ctx); /* RFC 9110 13.1.1: no current representation */
    } else if (rc == BL_ENOTFOUND) {
        ret = node_http_error(ctx, MHD_HTTP_NOT_FOUND, "not_found", "no such post");
    } else if (rc == BL_ECONFLICT) {
        ret = precondition_failed(ctx);
    } else {
        ret = node_http_store_error(ctx, rc, "replace", id);
    }
    node_post_deinit(&p);
    return ret;
}

enum MHD_Result
node_posts_delete(struct node_ctx *ctx, const char *id_raw)
{
    struct node_server *srv = ctx->srv;
    char id[NODE_ID_LEN + 1];
    uint64_t expected, t0;
    bool has_cond;
    enum MHD_Result ret;
    int rc;

    if (!node_server_write_allowed(srv, MHD_lookup_connection_value(
                                            ctx->conn, MHD_HEADER_KIND,
                                            MHD_HTTP_HEADER_AUTHORIZATION))) {
        node_metrics_reject(srv->metrics, NODE_REJECT_UNAUTHORIZED);
        return node_http_error(ctx, MHD_HTTP_UNAUTHORIZED, "unauthorized",
                               "a valid bearer token is required for writes");
    }
    if (!node_posts_id(id_raw, strlen(id_raw), id)) {
        return node_http_error(ctx, MHD_HTTP_NOT_FOUND, "not_found", "no such post");
    }
    if (coherence_refused(ctx, &ret)) {
        return ret;
    }
    if (!if_match(ctx, id, &expected, &has_cond)) {
        return precondition_failed(ctx);
    }
    t0 = bl_time_mono_ns();
    rc = node_store_done(srv, NODE_OP_REMOVE, t0, srv->store->ops->remove(srv->store, id, expected));
    if (rc == 0) {
        node_inval_post_written(srv->inval, srv->cache, id, 0);
        return node_http_send(ctx, MHD_HTTP_NO_CONTENT,
                              MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT));
    }
    if (rc == BL_ENOTFOUND && has_cond) {
        return precondition_failed(ctx);
    }
    if (rc == BL_ENOTFOUND) {
        return node_http_error(ctx, MHD_HTTP_NOT_FOUND, "not_found", "no such post");
    }
    if (rc == BL_ECONFLICT) {
        return precondition_failed(ctx);
    }
    return node_http_store_error(ctx, rc, "remove", id);
}
