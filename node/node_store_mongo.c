#include "node_store_mongo.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <bson/bson.h>
#include <mongoc/mongoc.h>

#include "bl/bl_err.h"
#include "bl/bl_log.h"
#include "bl/bl_time.h"
#include "node_post_codec.h"

/*
 * MongoDB driver (docs/MONGODB.md). Every operation takes a client from one
 * mongoc_client_pool_t (thread-safe; each worker thread holds at most one client at a
 * time, so a pool at least as large as the thread count never makes a thread wait) and
 * gives it back before returning. Collections of conf->database:
 *
 *   posts         { _id: ObjectId, title, body, author, tags, created_at, updated_at,
 *                   version }      (node_post_codec.h; list = _id descending, no index)
 *   asset_chunks  { _id: "<sha256>.<n>", data: binary }   (MONGO_CHUNK bytes each)
 *   assets        { _id: "<sha256>", content_type, size, chunk_size, chunks, created_at }
 *
 * An asset's chunks are written (upserted, so a retry or a concurrent put of the same bytes
 * is harmless) before its metadata document, and readers start from the metadata, so a
 * half-written asset is never visible. Only _id lookups and _id ranges are used: no
 * secondary index is needed, and on a sharded cluster every collection can be sharded on
 * { _id: "hashed" }.
 *
 * Replace and remove are one round trip on success: findAndModify / delete with the
 * filter { _id, version: expected } (version omitted for expected 0). Only when that
 * matches nothing does a second read tell "not found" from "conflict".
 */

#define MONGO_CHUNK (4u * 1024u * 1024u)        /* asset chunk size (bytes) */
#define MONGO_CHUNKS_PER_BATCH 4                /* chunks per bulk write (<= 16 MiB) */
#define MONGO_ASSET_MAX (256ull << 20)          /* largest asset read into memory */
#define MONGO_HEALTH_CACHE_MS 1000
#define MONGO_HEALTH_TIMEOUT_MS 1000
#define MONGO_LOG_INTERVAL_MS 1000              /* "unavailable" warnings: one per second */
#define MONGO_MIN_POOL 100                      /* mongoc's own default maxPoolSize */

#define COLL_POSTS "posts"
#define COLL_ASSETS "assets"
#define COLL_CHUNKS "asset_chunks"
#define COLL_CLAIMS "post_claims"

struct mongo_store {
    struct node_store base;
    mongoc_client_pool_t *pool;
    mongoc_uri_t *uri;
    char *db;
    mongoc_read_prefs_t *primary;       /* for reads that decide a write's outcome */

    pthread_mutex_t health_mu;          /* guards health_* */
    mongoc_client_t *health_client;     /* single-threaded, short timeouts; NULL after a failure */
    mongoc_uri_t *health_uri;
    uint64_t health_at_ms;              /* 0 = never checked */
    int health_rc;

    atomic_uint_fast64_t warned_at_ms;  /* last rate-limited "unavailable" warning */
    atomic_int cas_mode;                /* enum cas_mode, found on the first conditional write */
    uint64_t claim_stale_ms;            /* a version claim older than this is broken */
};

static pthread_once_t mongo_once = PTHREAD_ONCE_INIT;

/* ---- logging and errors ---- */

static void
mongo_log_handler(mongoc_log_level_t level, const char *domain, const char *message,
                  void *data)
{
    enum bl_log_level lv;

    (void)data;
    switch (level) {
    case MONGOC_LOG_LEVEL_ERROR:
    case MONGOC_LOG_LEVEL_CRITICAL:
        lv = BL_LOG_ERROR;
        break;
    case MONGOC_LOG_LEVEL_WARNING:
        /* Sent when a client closes; FerretDB has no endSessions (sessions just expire). */
        lv = strncmp(message, "Couldn't send \"endSessions\"", 27) == 0 ? BL_LOG_INFO
                                                                        : BL_LOG_WARN;
        break;
    case MONGOC_LOG_LEVEL_MESSAGE:
    case MONGOC_LOG_LEVEL_INFO:
        lv = BL_LOG_INFO;
        break;
    default:
        return;                         /* debug/trace: mongoc's own tracing, never wanted */
    }
    bl_logf(lv, ((struct bl_log_field[]){BL_LOG_STR("domain", domain)}), 1, "mongoc: %s",
            message);
}

static void
mongo_global_init(void)
{
    mongoc_init();
    /* mongoc writes its warnings to stderr in its own format: route them to our JSON lines. */
    mongoc_log_set_handler(mongo_log_handler, NULL);
}

static bool
is_dup_key(const bson_error_t *e)
{
    return e->domain != MONGOC_ERROR_STREAM && e->domain != MONGOC_ERROR_SERVER_SELECTION
           && (e->code == 11000 || e->code == 11001 || e->code == 12582);
}

static bool
is_unreachable(const bson_error_t *e)
{
    return e->domain == MONGOC_ERROR_STREAM || e->domain == MONGOC_ERROR_SERVER_SELECTION
           || (e->domain == MONGOC_ERROR_CLIENT && e->code == MONGOC_ERROR_CLIENT_AUTHENTICATE)
           || e->domain == MONGOC_ERROR_PROTOCOL;
}

/*
 * Maps a mongoc error of operation <what> to a BL_E* code and records the reason for
 * node_store_last_error(): duplicate key -> BL_EEXIST; an unreachable or unselectable
 * server -> BL_EUNAVAIL (warned at most once a second: an outage fails every request);
 * anything else -> BL_EUNAVAIL, always logged with mongoc's message.
 */
static int
map_error(struct mongo_store *s, const bson_error_t *e, const char *what)
{
    node_store_set_error("mongodb %s: %s (domain %" PRIu32 ", code %" PRIu32 ")", what,
                         e->message, e->domain, e->code);
    if (is_dup_key(e)) {
        return BL_EEXIST;
    }
    if (is_unreachable(e)) {
        uint64_t now = bl_time_mono_ms();
        uint_fast64_t last = atomic_load_explicit(&s->warned_at_ms, memory_order_relaxed);

        if (now - last >= MONGO_LOG_INTERVAL_MS
            && atomic_compare_exchange_strong(&s->warned_at_ms, &last, now)) {
            bl_logf(BL_LOG_WARN,
                    ((struct bl_log_field[]){BL_LOG_STR("op", what),
                                             BL_LOG_UINT("domain", e->domain),
                                             BL_LOG_UINT("code", e->code)}),
                    3, "mongodb %s: store unreachable: %s", what, e->message);
        }
        return BL_EUNAVAIL;
    }
    bl_logf(BL_LOG_ERROR,
            ((struct bl_log_field[]){BL_LOG_STR("op", what), BL_LOG_UINT("domain", e->domain),
                                     BL_LOG_UINT("code", e->code)}),
            3, "mongodb %s failed: %s", what, e->message);
    return BL_EUNAVAIL;
}

static int
fail_nomem(const char *what)
{
    node_store_set_error("mongodb %s: out of memory", what);
    return -ENOMEM;
}

/* A store-side problem that is not a mongoc error (corrupt document, short file...). */
static int
fail_data(const char *what, const char *fmt, const char *detail)
{
    node_store_set_error("mongodb %s: %s %s", what, fmt, detail != NULL ? detail : "");
    bl_logf(BL_LOG_ERROR, ((struct bl_log_field[]){BL_LOG_STR("op", what)}), 1,
            "mongodb %s: %s %s", what, fmt, detail != NULL ? detail : "");
    return BL_EUNAVAIL;
}

/* ---- clients ---- */

static mongoc_client_t *
client_get(struct mongo_store *s)
{
    return mongoc_client_pool_pop(s->pool);     /* waits while the pool is exhausted */
}

/* mongoc_client_pool_pop() waits for a free client; NULL only if it could not make one. */
static int
no_client(const char *what)
{
    return fail_data(what, "no client from the mongoc pool", NULL);
}

static void
client_put(struct mongo_store *s, mongoc_client_t *c)
{
    mongoc_client_pool_push(s->pool, c);
}

/* ---- posts ---- */

static int
parse_oid(const char *id, bson_oid_t *oid)
{
    uint8_t bin[NODE_ID_BIN_LEN];

    if (id == NULL || node_store_id_to_bin(id, strlen(id), bin) != 0) {
        return BL_ENOTFOUND;            /* a malformed id names no post */
    }
    bson_oid_init_from_data(oid, bin);
    return 0;
}

/* Decodes a stored post document (with its _id) into <out>. 0, BL_EPARSE or -ENOMEM. */
static int
decode_post(const bson_t *doc, struct node_post *out)
{
    bson_iter_t it;
    int rc;

    memset(out, 0, sizeof(*out));
    if (!bson_iter_init_find(&it, doc, "_id") || !BSON_ITER_HOLDS_OID(&it)) {
        return BL_EPARSE;
    }
    rc = node_post_codec_decode(doc, out);
    if (rc != 0) {
        return rc;
    }
    node_store_id_from_bin(bson_iter_oid(&it)->bytes, out->id);
    return 0;
}

static int
mongo_get(struct node_store *base, const char *id, struct node_post *out)
{
    struct mongo_store *s = (struct mongo_store *)base;
    mongoc_client_t *c;
    mongoc_collection_t *coll;
    mongoc_cursor_t *cur;
    const bson_t *doc;
    bson_error_t e;
    bson_oid_t oid;
    bson_t filter, opts;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = parse_oid(id, &oid);
    if (rc != 0) {
        return rc;
    }
    bson_init(&filter);
    bson_init(&opts);
    if (!BSON_APPEND_OID(&filter, "_id", &oid) || !BSON_APPEND_INT64(&opts, "limit", 1)
        || !BSON_APPEND_BOOL(&opts, "singleBatch", true)) {
        bson_destroy(&filter);
        bson_destroy(&opts);
        return fail_nomem("get");
    }
    c = client_get(s);
    if (c == NULL) {
        bson_destroy(&filter);
        bson_destroy(&opts);
        return no_client("get");
    }
    coll = mongoc_client_get_collection(c, s->db, COLL_POSTS);
    cur = mongoc_collection_find_with_opts(coll, &filter, &opts, NULL);
    if (mongoc_cursor_next(cur, &doc)) {
        rc = decode_post(doc, out);
        if (rc == BL_EPARSE) {
            rc = fail_data("get", "undecodable post document", id);
        }
    } else if (mongoc_cursor_error(cur, &e)) {
        rc = map_error(s, &e, "get");
    } else {
        rc = BL_ENOTFOUND;
    }
    mongoc_cursor_destroy(cur);
    mongoc_collection_destroy(coll);
    client_put(s, c);
    bson_destroy(&filter);
    bson_destroy(&opts);
    return rc;
}

static int
mongo_list(struct node_store *base, const char *before_id, size_t limit,
           struct node_post_list *out)
{
    struct mongo_store *s = (struct mongo_store *)base;
    mongoc_client_t *c = NULL;
    mongoc_collection_t *coll = NULL;
    mongoc_cursor_t *cur = NULL;
    const bson_t *doc;
    bson_error_t e;
    bson_oid_t oid;
    bson_t filter, opts, sub, sort;
    size_t cap = 0;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    bson_init(&filter);
    bson_init(&opts);
    if (before_id != NULL) {
        uint8_t bin[NODE_ID_BIN_LEN];

        if (node_store_id_to_bin(before_id, strlen(before_id), bin) != 0) {
            rc = BL_EINVAL;
            node_store_set_error("mongodb list: malformed cursor");
            goto out;
        }
        bson_oid_init_from_data(&oid, bin);
        if (!BSON_APPEND_DOCUMENT_BEGIN(&filter, "_id", &sub)
            || !BSON_APPEND_OID(&sub, "$lt", &oid)
            || !bson_append_document_end(&filter, &sub)) {
            rc = fail_nomem("list");
            goto out;
        }
    }
    /* One more than asked for tells whether older posts remain. */
    if (!BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort) || !BSON_APPEND_INT32(&sort, "_id", -1)
        || !bson_append_document_end(&opts, &sort)
        || !BSON_APPEND_INT64(&opts, "limit", (int64_t)limit + 1)) {
        rc = fail_nomem("list");
        goto out;
    }
    if (limit + 1 <= 1000 && !BSON_APPEND_INT32(&opts, "batchSize", (int32_t)limit + 1)) {
        rc = fail_nomem("list");
        goto out;
    }
    c = client_get(s);
    if (c == NULL) {
        rc = no_client("list");
        goto out;
    }
    coll = mongoc_client_get_collection(c, s->db, COLL_POSTS);
    cur = mongoc_collection_find_with_opts(coll, &filter, &opts, NULL);
    while (mongoc_cursor_next(cur, &doc)) {
        if (out->n == limit) {
            out->more = true;
            break;
        }
        if (out->n == cap) {
            size_t ncap = cap == 0 ? (limit < 16 ? limit : 16) : cap * 2;
            struct node_post *np;

            if (ncap > limit) {
                ncap = limit;
            }
            np = realloc(out->posts, ncap * sizeof(*np));
            if (np == NULL) {
                rc = fail_nomem("list");
                goto out;
            }
            out->posts = np;
            cap = ncap;
        }
        rc = decode_post(doc, &out->posts[out->n]);
        if (rc != 0) {
            if (rc == BL_EPARSE) {
                rc = fail_data("list", "undecodable post document", NULL);
            }
            goto out;
        }
        out->n++;
    }
    if (!out->more && mongoc_cursor_error(cur, &e)) {
        rc = map_error(s, &e, "list");
    }
out:
    mongoc_cursor_destroy(cur);
    mongoc_collection_destroy(coll);
    if (c != NULL) {
        client_put(s, c);
    }
    bson_destroy(&filter);
    bson_destroy(&opts);
    if (rc != 0) {
        node_post_list_deinit(out);
    }
    return rc;
}

static int
mongo_insert(struct node_store *base, const struct node_post *p)
{
    struct mongo_store *s = (struct mongo_store *)base;
    mongoc_client_t *c;
    mongoc_collection_t *coll;
    bson_error_t e;
    bson_oid_t oid;
    bson_t doc;
    int rc;

    if (parse_oid(p->id, &oid) != 0) {
        node_store_set_error("mongodb insert: malformed id");
        return BL_EINVAL;
    }
    bson_init(&doc);
    if (!BSON_APPEND_OID(&doc, "_id", &oid) || node_post_codec_append(p, &doc) != 0) {
        bson_destroy(&doc);
        return fail_nomem("insert");
    }
    c = client_get(s);
    if (c == NULL) {
        bson_destroy(&doc);
        return no_client("insert");
    }
    coll = mongoc_client_get_collection(c, s->db, COLL_POSTS);
    rc = 0;
    if (!mongoc_collection_insert_one(coll, &doc, NULL, NULL, &e)) {
        rc = map_error(s, &e, "insert");
    }
    mongoc_collection_destroy(coll);
    client_put(s, c);
    bson_destroy(&doc);
    return rc;
}

static int
get_u64(const bson_t *doc, const char *key, uint64_t *v)
{
    bson_iter_t it;

    if (!bson_iter_init_find(&it, doc, key)) {
        return BL_EPARSE;
    }
    if (BSON_ITER_HOLDS_DATE_TIME(&it)) {
        *v = (uint64_t)bson_iter_date_time(&it);
    } else if (BSON_ITER_HOLDS_INT64(&it) || BSON_ITER_HOLDS_INT32(&it)
               || BSON_ITER_HOLDS_DOUBLE(&it)) {
        *v = (uint64_t)bson_iter_as_int64(&it);
    } else {
        return BL_EPARSE;
    }
    return 0;
}

/*
 * Conditional writes. MongoDB applies findAndModify/delete with the filter
 * { _id, version } atomically (single-document atomicity): one round trip, the native mode.
 * FerretDB v1.24 does not: it reads the matching documents, filters them in Go and then
 * writes by _id, so two concurrent findAndModify calls with the same expected version can
 * both succeed. Against FerretDB (detected once through buildInfo.ferretdbVersion) every
 * version transition v -> v+1 of a post is therefore first claimed by inserting the
 * document { _id: "<post id>.<v+1>" } into post_claims: the unique _id (an atomic insert
 * on both databases) admits one claimant per transition, which then does the same
 * conditional write and releases the claim. A claim left behind by a crashed node is
 * broken once it is older than claim_stale_ms.
 */
enum cas_mode {
    CAS_UNKNOWN = 0,
    CAS_NATIVE = 1,
    CAS_CLAIMS = 2,
};

#define MONGO_ANY_RETRIES 50            /* expected_version 0 under claims: retries on contention */

static int
cas_mode_get(struct mongo_store *s, mongoc_client_t *c, int *mode)
{
    bson_error_t e;
    bson_t cmd, reply;
    bool ok;

    *mode = atomic_load(&s->cas_mode);
    if (*mode != CAS_UNKNOWN) {
        return 0;
    }
    bson_init(&cmd);
    BSON_APPEND_INT32(&cmd, "buildInfo", 1);
    ok = mongoc_client_command_simple(c, "admin", &cmd, s->primary, &reply, &e);
    bson_destroy(&cmd);
    if (!ok) {
        bson_destroy(&reply);
        return map_error(s, &e, "buildInfo");
    }
    *mode = bson_has_field(&reply, "ferretdbVersion") ? CAS_CLAIMS : CAS_NATIVE;
    bson_destroy(&reply);
    {
        int unknown = CAS_UNKNOWN;

        if (!atomic_compare_exchange_strong(&s->cas_mode, &unknown, *mode)) {
            return 0;                   /* another thread found it first (and logged) */
        }
    }
    bl_log(BL_LOG_INFO, "mongodb: conditional writes use %s",
           *mode == CAS_CLAIMS ? "version claims (FerretDB: findAndModify is not atomic)"
                               : "atomic findAndModify/delete (one round trip)");
    return 0;
}

/* The current version of <oid> (read from the primary). 0, BL_ENOTFOUND or an error. */
static int
read_version(struct mongo_store *s, mongoc_collection_t *coll, const bson_oid_t *oid,
             uint64_t *version, const char *what)
{
    mongoc_cursor_t *cur;
    const bson_t *doc;
    bson_error_t e;
    bson_t filter, opts;
    int rc;

    bson_init(&filter);
    bson_init(&opts);
    if (!BSON_APPEND_OID(&filter, "_id", oid) || !BSON_APPEND_INT64(&opts, "limit", 1)) {
        bson_destroy(&filter);
        bson_destroy(&opts);
        return fail_nomem(what);
    }
    cur = mongoc_collection_find_with_opts(coll, &filter, &opts, s->primary);
    if (mongoc_cursor_next(cur, &doc)) {
        rc = get_u64(doc, "version", version) == 0 ? 0
             : fail_data(what, "post without a version", NULL);
    } else if (mongoc_cursor_error(cur, &e)) {
        rc = map_error(s, &e, what);
    } else {
        rc = BL_ENOTFOUND;
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(&filter);
    bson_destroy(&opts);
    return rc;
}

/*
 * After a conditional write matched nothing: BL_ENOTFOUND when <oid> is absent, else
 * BL_ECONFLICT (its version differs). Read from the primary, where the write was tried.
 */
static int
absent_or_conflict(struct mongo_store *s, mongoc_collection_t *coll, const bson_oid_t *oid,
                   const char *what)
{
    uint64_t v;
    int rc = read_version(s, coll, oid, &v, what);

    return rc == 0 ? BL_ECONFLICT : rc;
}

static void
claim_id(char out[NODE_ID_LEN + 24], const bson_oid_t *oid, uint64_t version)
{
    char hex[NODE_ID_LEN + 1];

    node_store_id_from_bin(oid->bytes, hex);
    snprintf(out, NODE_ID_LEN + 24, "%s.%" PRIu64, hex, version);
}

/*
 * Claims the transition of <oid> to <version>: 0 when ours, BL_ECONFLICT when another
 * writer holds it (a stale claim, older than claim_stale_ms, is broken once), or an error.
 */
static int
claim_take(struct mongo_store *s, mongoc_client_t *c, const bson_oid_t *oid, uint64_t version)
{
    mongoc_collection_t *claims = mongoc_client_get_collection(c, s->db, COLL_CLAIMS);
    char cid[NODE_ID_LEN + 24];
    bson_error_t e;
    int rc = 0, attempt;

    claim_id(cid, oid, version);
    for (attempt = 0; attempt < 2; attempt++) {
        bson_t doc, filter, reply;
        mongoc_cursor_t *cur;
        const bson_t *found;
        bson_iter_t it;
        int64_t at = -1;

        bson_init(&doc);
        if (!BSON_APPEND_UTF8(&doc, "_id", cid)
            || !BSON_APPEND_DATE_TIME(&doc, "at", (int64_t)bl_time_real_ms())) {
            bson_destroy(&doc);
            rc = fail_nomem("claim");
            break;
        }
        rc = 0;
        if (!mongoc_collection_insert_one(claims, &doc, NULL, NULL, &e)) {
            rc = map_error(s, &e, "claim");
        }
        bson_destroy(&doc);
        if (rc != BL_EEXIST || attempt > 0) {
            rc = rc == BL_EEXIST ? BL_ECONFLICT : rc;
            break;
        }
        /* Held: by a live writer (conflict), or left by a crashed one (break it). */
        bson_init(&filter);
        BSON_APPEND_UTF8(&filter, "_id", cid);
        cur = mongoc_collection_find_with_opts(claims, &filter, NULL, s->primary);
        if (mongoc_cursor_next(cur, &found) && bson_iter_init_find(&it, found, "at")
            && BSON_ITER_HOLDS_DATE_TIME(&it)) {
            at = bson_iter_date_time(&it);
        }
        mongoc_cursor_destroy(cur);
        if (at < 0 || (uint64_t)at + s->claim_stale_ms > bl_time_real_ms()) {
            bson_destroy(&filter);
            rc = BL_ECONFLICT;          /* live (or just released: the caller retries) */
            break;
        }
        /* Only the deleter that removes this exact stale claim may retry. */
        BSON_APPEND_DATE_TIME(&filter, "at", at);
        if (!mongoc_collection_delete_one(claims, &filter, NULL, &reply, &e)) {
            bson_destroy(&reply);
            bson_destroy(&filter);
            rc = map_error(s, &e, "claim");
            break;
        }
        bl_log(BL_LOG_WARN, "mongodb: broke a stale version claim %s (a writer died mid-write)",
               cid);
        bson_destroy(&reply);
        bson_destroy(&filter);
    }
    mongoc_collection_destroy(claims);
    return rc;
}

static void
claim_release(struct mongo_store *s, mongoc_client_t *c, const bson_oid_t *oid,
              uint64_t version)
{
    mongoc_collection_t *claims = mongoc_client_get_collection(c, s->db, COLL_CLAIMS);
    char cid[NODE_ID_LEN + 24];
    bson_error_t e;
    bson_t filter;

    claim_id(cid, oid, version);
    bson_init(&filter);
    BSON_APPEND_UTF8(&filter, "_id", cid);
    /* A failure leaves a claim that turns stale; the write's own result stands. */
    if (!mongoc_collection_delete_one(claims, &filter, NULL, NULL, &e)) {
        (void)map_error(s, &e, "claim release");
    }
    bson_destroy(&filter);
    mongoc_collection_destroy(claims);
}

static bool
append_cond_filter(bson_t *filter, const bson_oid_t *oid, uint64_t expected_version)
{
    if (!BSON_APPEND_OID(filter, "_id", oid)) {
        return false;
    }
    return expected_version == 0 || BSON_APPEND_INT64(filter, "version", (int64_t)expected_version);
}

/* { $set: {title, body, author, tags, updated_at}, $inc: {version: 1} } */
static bool
build_replace_update(const struct node_post *p, bson_t *upd)
{
    bson_t set, tags, inc;
    size_t i;

    if (!BSON_APPEND_DOCUMENT_BEGIN(upd, "$set", &set)
        || !BSON_APPEND_UTF8(&set, "title", p->title != NULL ? p->title : "")
        || !BSON_APPEND_UTF8(&set, "body", p->body != NULL ? p->body : "")
        || !BSON_APPEND_UTF8(&set, "author", p->author != NULL ? p->author : "")
        || !BSON_APPEND_ARRAY_BEGIN(&set, "tags", &tags)) {
        return false;
    }
    for (i = 0; i < p->ntags; i++) {
        char keybuf[16];
        const char *key;
        size_t klen = bson_uint32_to_string((uint32_t)i, &key, keybuf, sizeof(keybuf));

        if (!bson_append_utf8(&tags, key, (int)klen, p->tags[i], -1)) {
            return false;
        }
    }
    return bson_append_array_end(&set, &tags)
           && BSON_APPEND_DATE_TIME(&set, "updated_at", (int64_t)p->updated_ms)
           && bson_append_document_end(upd, &set)
           && BSON_APPEND_DOCUMENT_BEGIN(upd, "$inc", &inc)
           && BSON_APPEND_INT64(&inc, "version", 1)
           && bson_append_document_end(upd, &inc);
}

/*
 * One findAndModify { _id, version: expected } (version left out for 0) with $set/$inc,
 * returning the new document. No "fields" projection: FerretDB v1.24 does not implement it
 * in findAndModify, so the whole document comes back (portable to both).
 */
static int
replace_once(struct mongo_store *s, mongoc_collection_t *coll, const bson_oid_t *oid,
             struct node_post *p, uint64_t expected_version)
{
    mongoc_find_and_modify_opts_t *fam = mongoc_find_and_modify_opts_new();
    bson_error_t e;
    bson_iter_t it;
    bson_t filter, upd, reply, value;
    int rc;

    bson_init(&filter);
    bson_init(&upd);
    bson_init(&reply);
    if (fam == NULL || !append_cond_filter(&filter, oid, expected_version)
        || !build_replace_update(p, &upd) || !mongoc_find_and_modify_opts_set_update(fam, &upd)
        || !mongoc_find_and_modify_opts_set_flags(fam, MONGOC_FIND_AND_MODIFY_RETURN_NEW)) {
        rc = fail_nomem("replace");
        goto out;
    }
    bson_destroy(&reply);
    if (!mongoc_collection_find_and_modify_with_opts(coll, &filter, fam, &reply, &e)) {
        rc = map_error(s, &e, "replace");
        goto out;
    }
    if (!bson_iter_init_find(&it, &reply, "value") || !BSON_ITER_HOLDS_DOCUMENT(&it)) {
        /* Matched nothing: absent, or a different version (If-Match failed). */
        rc = expected_version == 0 ? BL_ENOTFOUND : absent_or_conflict(s, coll, oid, "replace");
        goto out;
    }
    {
        const uint8_t *data;
        uint32_t len;
        uint64_t created, version;

        bson_iter_document(&it, &len, &data);
        if (!bson_init_static(&value, data, len) || get_u64(&value, "created_at", &created) != 0
            || get_u64(&value, "version", &version) != 0) {
            rc = fail_data("replace", "undecodable findAndModify value for", p->id);
            goto out;
        }
        p->created_ms = created;
        p->version = version;
    }
    rc = 0;
out:
    mongoc_find_and_modify_opts_destroy(fam);
    bson_destroy(&filter);
    bson_destroy(&upd);
    bson_destroy(&reply);
    return rc;
}

/* One delete { _id, version: expected }. */
static int
remove_once(struct mongo_store *s, mongoc_collection_t *coll, const bson_oid_t *oid,
            uint64_t expected_version)
{
    bson_error_t e;
    bson_iter_t it;
    bson_t filter, reply;
    int rc;

    bson_init(&filter);
    if (!append_cond_filter(&filter, oid, expected_version)) {
        bson_destroy(&filter);
        return fail_nomem("remove");
    }
    if (!mongoc_collection_delete_one(coll, &filter, NULL, &reply, &e)) {
        rc = map_error(s, &e, "remove");
    } else if (bson_iter_init_find(&it, &reply, "deletedCount") && bson_iter_as_int64(&it) == 1) {
        rc = 0;
    } else {
        rc = expected_version == 0 ? BL_ENOTFOUND : absent_or_conflict(s, coll, oid, "remove");
    }
    bson_destroy(&reply);
    bson_destroy(&filter);
    return rc;
}

/*
 * The write <p> (replace) or removal (p == NULL) of <oid> if its version is
 * <expected_version> (0 = any), in the store's CAS mode.
 */
static int
conditional_write(struct mongo_store *s, const bson_oid_t *oid, struct node_post *p,
                  uint64_t expected_version)
{
    mongoc_client_t *c = client_get(s);
    mongoc_collection_t *coll;
    const char *what = p != NULL ? "replace" : "remove";
    int mode, rc, attempt;

    if (c == NULL) {
        return no_client(what);
    }
    coll = mongoc_client_get_collection(c, s->db, COLL_POSTS);

    rc = cas_mode_get(s, c, &mode);
    if (rc != 0) {
        goto out;
    }
    if (mode == CAS_NATIVE) {
        rc = p != NULL ? replace_once(s, coll, oid, p, expected_version)
                       : remove_once(s, coll, oid, expected_version);
        goto out;
    }
    for (attempt = 0; attempt < MONGO_ANY_RETRIES; attempt++) {
        uint64_t v = expected_version;

        if (v == 0) {
            rc = read_version(s, coll, oid, &v, what);
            if (rc != 0) {
                break;
            }
        }
        rc = claim_take(s, c, oid, v + 1);
        if (rc == 0) {
            rc = p != NULL ? replace_once(s, coll, oid, p, v) : remove_once(s, coll, oid, v);
            claim_release(s, c, oid, v + 1);
        } else if (rc == BL_ECONFLICT) {
            rc = absent_or_conflict(s, coll, oid, what);
        }
        if (rc != BL_ECONFLICT || expected_version != 0) {
            break;
        }
        usleep(1000u * (unsigned)(1 + attempt % 8));  /* "any": someone else moved it; again */
    }
    if (rc == BL_ECONFLICT && expected_version == 0) {
        node_store_set_error("mongodb %s: gave up after %d contended attempts", what,
                             MONGO_ANY_RETRIES);
        rc = BL_EUNAVAIL;
    }
out:
    mongoc_collection_destroy(coll);
    client_put(s, c);
    return rc;
}

static int
mongo_replace(struct node_store *base, struct node_post *p, uint64_t expected_version)
{
    struct mongo_store *s = (struct mongo_store *)base;
    bson_oid_t oid;
    int rc;

    rc = parse_oid(p->id, &oid);
    if (rc != 0) {
        return rc;
    }
    return conditional_write(s, &oid, p, expected_version);
}

static int
mongo_remove(struct node_store *base, const char *id, uint64_t expected_version)
{
    struct mongo_store *s = (struct mongo_store *)base;
    bson_oid_t oid;
    int rc;

    rc = parse_oid(id, &oid);
    if (rc != 0) {
        return rc;
    }
    return conditional_write(s, &oid, NULL, expected_version);
}

/* ---- assets ---- */

static void
chunk_id(char out[NODE_SHA256_HEX_LEN + 16], const char *sha256, uint32_t n)
{
    snprintf(out, NODE_SHA256_HEX_LEN + 16, "%s.%06" PRIu32, sha256, n);
}

/* 1 when the metadata of <sha256> exists, 0 when not, or a negative BL_E* code. */
static int
asset_exists(struct mongo_store *s, mongoc_collection_t *meta, const char *sha256)
{
    mongoc_cursor_t *cur;
    const bson_t *doc;
    bson_error_t e;
    bson_t filter, opts, proj;
    int rc;

    bson_init(&filter);
    bson_init(&opts);
    if (!BSON_APPEND_UTF8(&filter, "_id", sha256) || !BSON_APPEND_INT64(&opts, "limit", 1)
        || !BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj)
        || !BSON_APPEND_INT32(&proj, "_id", 1) || !bson_append_document_end(&opts, &proj)) {
        bson_destroy(&filter);
        bson_destroy(&opts);
        return fail_nomem("asset_put");
    }
    cur = mongoc_collection_find_with_opts(meta, &filter, &opts, s->primary);
    if (mongoc_cursor_next(cur, &doc)) {
        rc = 1;
    } else if (mongoc_cursor_error(cur, &e)) {
        rc = map_error(s, &e, "asset_put");
    } else {
        rc = 0;
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(&filter);
    bson_destroy(&opts);
    return rc;
}

static ssize_t
read_full(int fd, uint8_t *buf, size_t n)
{
    size_t got = 0;

    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);

        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        if (r == 0) {
            break;
        }
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/*
 * Upserts chunks [first, first + count) of the file <fd> in one bulk write. Upserts make a
 * retry, or two nodes storing the same new asset at once, harmless: the bytes are equal.
 */
static int
write_chunks(struct mongo_store *s, mongoc_collection_t *chunks, int fd, const char *sha256,
             uint32_t first, uint32_t count, uint64_t size, uint8_t *buf)
{
    mongoc_bulk_operation_t *bulk;
    bson_error_t e;
    bson_t bopts, ropts, reply;
    uint32_t i;
    int rc = 0, attempt;

    bson_init(&bopts);
    bson_init(&ropts);
    if (!BSON_APPEND_BOOL(&bopts, "ordered", false) || !BSON_APPEND_BOOL(&ropts, "upsert", true)) {
        bson_destroy(&bopts);
        bson_destroy(&ropts);
        return fail_nomem("asset_put");
    }
    for (attempt = 0; attempt < 2; attempt++) {
        rc = 0;
        bulk = mongoc_collection_create_bulk_operation_with_opts(chunks, &bopts);
        if (lseek(fd, (off_t)first * MONGO_CHUNK, SEEK_SET) < 0) {
            rc = fail_data("asset_put", "cannot seek the upload file:", strerror(errno));
            mongoc_bulk_operation_destroy(bulk);
            break;
        }
        for (i = 0; i < count; i++) {
            uint64_t off = (uint64_t)(first + i) * MONGO_CHUNK;
            size_t len = size - off < MONGO_CHUNK ? (size_t)(size - off) : MONGO_CHUNK;
            char cid[NODE_SHA256_HEX_LEN + 16];
            ssize_t got = read_full(fd, buf, len);
            bson_t sel, doc;

            if (got != (ssize_t)len) {
                rc = fail_data("asset_put", "short read of the upload file:",
                               got < 0 ? strerror(errno) : "file shorter than its size");
                break;
            }
            chunk_id(cid, sha256, first + i);
            bson_init(&sel);
            bson_init(&doc);
            if (!BSON_APPEND_UTF8(&sel, "_id", cid) || !BSON_APPEND_UTF8(&doc, "_id", cid)
                || !BSON_APPEND_BINARY(&doc, "data", BSON_SUBTYPE_BINARY, buf, (uint32_t)len)
                || !mongoc_bulk_operation_replace_one_with_opts(bulk, &sel, &doc, &ropts, &e)) {
                bson_destroy(&sel);
                bson_destroy(&doc);
                rc = fail_nomem("asset_put");
                break;
            }
            bson_destroy(&sel);
            bson_destroy(&doc);
        }
        if (rc != 0) {
            mongoc_bulk_operation_destroy(bulk);
            break;
        }
        if (mongoc_bulk_operation_execute(bulk, &reply, &e) != 0) {
            bson_destroy(&reply);
            mongoc_bulk_operation_destroy(bulk);
            rc = 0;
            break;
        }
        bson_destroy(&reply);
        mongoc_bulk_operation_destroy(bulk);
        rc = map_error(s, &e, "asset_put chunks");
        /* Two concurrent upserts of one new _id: one loses with a duplicate key; again. */
        if (rc != BL_EEXIST) {
            break;
        }
        rc = BL_EUNAVAIL;
    }
    bson_destroy(&bopts);
    bson_destroy(&ropts);
    return rc;
}

static int
mongo_asset_put(struct node_store *base, const char *sha256, const char *content_type,
                const char *path, uint64_t size)
{
    struct mongo_store *s = (struct mongo_store *)base;
    mongoc_client_t *c = NULL;
    mongoc_collection_t *meta = NULL, *chunks = NULL;
    uint8_t *buf = NULL;
    uint64_t nchunks;
    uint32_t i;
    bson_error_t e;
    bson_t doc;
    int fd = -1, rc;

    if (sha256 == NULL || !node_store_valid_sha256(sha256, strlen(sha256))) {
        node_store_set_error("mongodb asset_put: malformed sha256");
        return BL_EINVAL;
    }
    if (size > MONGO_ASSET_MAX) {
        node_store_set_error("mongodb asset_put: %" PRIu64 " bytes exceed the driver limit", size);
        return BL_ETOOBIG;
    }
    bson_init(&doc);
    c = client_get(s);
    if (c == NULL) {
        bson_destroy(&doc);
        return no_client("asset_put");
    }
    meta = mongoc_client_get_collection(c, s->db, COLL_ASSETS);
    rc = asset_exists(s, meta, sha256);
    if (rc != 0) {
        rc = rc > 0 ? 0 : rc;           /* same bytes, same id: already stored */
        goto out;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = fail_data("asset_put", "cannot open the upload file:", strerror(errno));
        goto out;
    }
    buf = malloc(MONGO_CHUNK);
    if (buf == NULL) {
        rc = fail_nomem("asset_put");
        goto out;
    }
    chunks = mongoc_client_get_collection(c, s->db, COLL_CHUNKS);
    nchunks = (size + MONGO_CHUNK - 1) / MONGO_CHUNK;
    for (i = 0; i < nchunks; i += MONGO_CHUNKS_PER_BATCH) {
        uint32_t count = nchunks - i < MONGO_CHUNKS_PER_BATCH ? (uint32_t)(nchunks - i)
                                                              : MONGO_CHUNKS_PER_BATCH;

        rc = write_chunks(s, chunks, fd, sha256, i, count, size, buf);
        if (rc != 0) {
            goto out;
        }
    }
    /* The metadata last: readers start from it, so they never see a partial asset. */
    if (!BSON_APPEND_UTF8(&doc, "_id", sha256)
        || !BSON_APPEND_UTF8(&doc, "content_type", content_type != NULL ? content_type : "")
        || !BSON_APPEND_INT64(&doc, "size", (int64_t)size)
        || !BSON_APPEND_INT32(&doc, "chunk_size", (int32_t)MONGO_CHUNK)
        || !BSON_APPEND_INT32(&doc, "chunks", (int32_t)nchunks)
        || !BSON_APPEND_DATE_TIME(&doc, "created_at", (int64_t)bl_time_real_ms())) {
        rc = fail_nomem("asset_put");
        goto out;
    }
    rc = 0;
    if (!mongoc_collection_insert_one(meta, &doc, NULL, NULL, &e)) {
        rc = map_error(s, &e, "asset_put");
        if (rc == BL_EEXIST) {
            rc = 0;                     /* stored meanwhile by another node: same bytes */
        }
    }
out:
    free(buf);
    if (fd >= 0) {
        close(fd);
    }
    mongoc_collection_destroy(chunks);
    mongoc_collection_destroy(meta);
    client_put(s, c);
    bson_destroy(&doc);
    return rc;
}

/*
 * Reads the <nchunks> chunks of <sha256> into <data> (size bytes), one exact _id lookup per
 * chunk. Not one { _id: { $in: [...] } } query: FerretDB's SQLite backend pushes down only
 * a plain { _id: value } filter and would scan and decode every stored chunk for $in.
 */
static int
read_chunks(struct mongo_store *s, mongoc_client_t *c, const char *sha256, uint64_t size,
            uint32_t chunk_size, uint32_t nchunks, uint8_t *data)
{
    mongoc_collection_t *chunks = mongoc_client_get_collection(c, s->db, COLL_CHUNKS);
    bson_t opts;
    uint32_t n;
    int rc = 0;

    bson_init(&opts);
    if (!BSON_APPEND_INT64(&opts, "limit", 1) || !BSON_APPEND_BOOL(&opts, "singleBatch", true)) {
        rc = fail_nomem("asset_get");
    }
    for (n = 0; rc == 0 && n < nchunks; n++) {
        char cid[NODE_SHA256_HEX_LEN + 16];
        uint64_t off = (uint64_t)n * chunk_size;
        uint64_t want = size - off < chunk_size ? size - off : chunk_size;
        mongoc_cursor_t *cur;
        const bson_t *doc;
        bson_error_t e;
        bson_t filter;

        chunk_id(cid, sha256, n);
        bson_init(&filter);
        if (!BSON_APPEND_UTF8(&filter, "_id", cid)) {
            bson_destroy(&filter);
            rc = fail_nomem("asset_get");
            break;
        }
        cur = mongoc_collection_find_with_opts(chunks, &filter, &opts, NULL);
        if (mongoc_cursor_next(cur, &doc)) {
            bson_iter_t it;
            const uint8_t *bin;
            uint32_t blen;
            bson_subtype_t st;

            if (!bson_iter_init_find(&it, doc, "data") || !BSON_ITER_HOLDS_BINARY(&it)) {
                rc = fail_data("asset_get", "chunk without data:", cid);
            } else {
                bson_iter_binary(&it, &st, &blen, &bin);
                if (blen != want) {
                    rc = fail_data("asset_get", "chunk of the wrong size:", cid);
                } else {
                    memcpy(data + off, bin, blen);
                }
            }
        } else if (mongoc_cursor_error(cur, &e)) {
            rc = map_error(s, &e, "asset_get");
        } else {
            rc = fail_data("asset_get", "chunk missing:", cid);
        }
        mongoc_cursor_destroy(cur);
        bson_destroy(&filter);
    }
    bson_destroy(&opts);
    mongoc_collection_destroy(chunks);
    return rc;
}

static int
mongo_asset_get(struct node_store *base, const char *sha256, struct node_asset *out)
{
    struct mongo_store *s = (struct mongo_store *)base;
    mongoc_client_t *c;
    mongoc_collection_t *meta;
    mongoc_cursor_t *cur;
    const bson_t *doc;
    bson_error_t e;
    bson_t filter, opts;
    uint64_t size = 0, chunk_size = 0, nchunks = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    out->fd = -1;
    if (sha256 == NULL || !node_store_valid_sha256(sha256, strlen(sha256))) {
        return BL_ENOTFOUND;
    }
    bson_init(&filter);
    bson_init(&opts);
    if (!BSON_APPEND_UTF8(&filter, "_id", sha256) || !BSON_APPEND_INT64(&opts, "limit", 1)) {
        bson_destroy(&filter);
        bson_destroy(&opts);
        return fail_nomem("asset_get");
    }
    c = client_get(s);
    if (c == NULL) {
        bson_destroy(&filter);
        bson_destroy(&opts);
        return no_client("asset_get");
    }
    meta = mongoc_client_get_collection(c, s->db, COLL_ASSETS);
    cur = mongoc_collection_find_with_opts(meta, &filter, &opts, NULL);
    if (mongoc_cursor_next(cur, &doc)) {
        bson_iter_t it;

        rc = 0;
        if (get_u64(doc, "size", &size) != 0 || get_u64(doc, "chunk_size", &chunk_size) != 0
            || get_u64(doc, "chunks", &nchunks) != 0 || !bson_iter_init_find(&it, doc, "content_type")
            || !BSON_ITER_HOLDS_UTF8(&it)) {
            rc = fail_data("asset_get", "undecodable asset metadata", sha256);
        } else if (size > MONGO_ASSET_MAX || chunk_size == 0 || chunk_size > (16u << 20)
                   || nchunks != (size + chunk_size - 1) / chunk_size) {
            rc = fail_data("asset_get", "asset metadata out of range", sha256);
        } else {
            snprintf(out->content_type, sizeof(out->content_type), "%s",
                     bson_iter_utf8(&it, NULL));
        }
    } else if (mongoc_cursor_error(cur, &e)) {
        rc = map_error(s, &e, "asset_get");
    } else {
        rc = BL_ENOTFOUND;
    }
    mongoc_cursor_destroy(cur);
    if (rc == 0) {
        out->data = malloc(size > 0 ? size : 1);
        if (out->data == NULL) {
            rc = fail_nomem("asset_get");
        } else {
            rc = read_chunks(s, c, sha256, size, (uint32_t)chunk_size, (uint32_t)nchunks,
                             out->data);
        }
    }
    mongoc_collection_destroy(meta);
    client_put(s, c);
    bson_destroy(&filter);
    bson_destroy(&opts);
    if (rc != 0) {
        node_asset_deinit(out);
        return rc;
    }
    memcpy(out->sha256, sha256, NODE_SHA256_HEX_LEN + 1);
    out->size = size;
    return 0;
}

/* ---- health ---- */

static int
health_ping_locked(struct mongo_store *s)
{
    bson_error_t e;
    bson_t cmd, reply;
    bool ok;

    if (s->health_client == NULL) {
        s->health_client = mongoc_client_new_from_uri_with_error(s->health_uri, &e);
        if (s->health_client == NULL) {
            return map_error(s, &e, "health");
        }
        mongoc_client_set_error_api(s->health_client, MONGOC_ERROR_API_VERSION_2);
    }
    bson_init(&cmd);
    BSON_APPEND_INT32(&cmd, "ping", 1);
    /* NULL read prefs = the primary: a node is ready only where writes can go. */
    ok = mongoc_client_command_simple(s->health_client, "admin", &cmd, NULL, &reply, &e);
    bson_destroy(&cmd);
    bson_destroy(&reply);
    if (!ok) {
        /*
         * A single-threaded client waits out a 5 s cooldown before it reconnects to a server
         * it failed to reach; a fresh client next time notices a recovery at once.
         */
        mongoc_client_destroy(s->health_client);
        s->health_client = NULL;
        return map_error(s, &e, "health");
    }
    return 0;
}

/* 0 when a ping of the primary answered within ~1 s; cached for one second. */
static int
mongo_health(struct node_store *base)
{
    struct mongo_store *s = (struct mongo_store *)base;
    uint64_t now;
    int rc;

    pthread_mutex_lock(&s->health_mu);
    now = bl_time_mono_ms();
    if (s->health_at_ms != 0 && now - s->health_at_ms < MONGO_HEALTH_CACHE_MS) {
        rc = s->health_rc;
    } else {
        rc = health_ping_locked(s);
        s->health_rc = rc;
        s->health_at_ms = bl_time_mono_ms();
    }
    pthread_mutex_unlock(&s->health_mu);
    return rc;
}

/* ---- open / close ---- */

static char *
errf(const char *fmt, const char *a, const char *b)
{
    char buf[1200];

    snprintf(buf, sizeof(buf), fmt, a, b != NULL ? b : "");
    return strdup(buf);
}

/* Applies node.store.write_concern ("majority", a number >= 1, or a tag set name). */
static int
apply_write_concern(mongoc_uri_t *uri, const char *w, int32_t wtimeout_ms, char **err)
{
    mongoc_write_concern_t *wc = mongoc_write_concern_new();
    char *end;
    long n;

    if (w == NULL || w[0] == '\0') {
        w = "majority";
    }
    n = strtol(w, &end, 10);
    if (end != w && *end == '\0') {
        if (n < 1 || n > 50) {
            mongoc_write_concern_destroy(wc);
            *err = errf("store: write_concern '%s': use majority, a number >= 1 or a tag set "
                        "(w:0 would acknowledge nothing)%s", w, NULL);
            return BL_ECONF;
        }
        mongoc_write_concern_set_w(wc, (int32_t)n);
    } else if (strcmp(w, "majority") == 0) {
        mongoc_write_concern_set_wmajority(wc, wtimeout_ms);
    } else {
        mongoc_write_concern_set_wtag(wc, w);
    }
    mongoc_write_concern_set_wtimeout_int64(wc, wtimeout_ms);
    mongoc_uri_set_write_concern(uri, wc);
    mongoc_write_concern_destroy(wc);
    return 0;
}

static int
parse_read_mode(const char *s, mongoc_read_mode_t *mode)
{
    static const struct {
        const char *name;
        mongoc_read_mode_t mode;
    } modes[] = {
        { "primary", MONGOC_READ_PRIMARY },
        { "primaryPreferred", MONGOC_READ_PRIMARY_PREFERRED },
        { "secondary", MONGOC_READ_SECONDARY },
        { "secondaryPreferred", MONGOC_READ_SECONDARY_PREFERRED },
        { "nearest", MONGOC_READ_NEAREST },
    };
    size_t i;

    if (s == NULL || s[0] == '\0') {
        *mode = MONGOC_READ_PRIMARY;
        return 0;
    }
    for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        if (strcasecmp(s, modes[i].name) == 0
            || (strcasecmp(s, "primary_preferred") == 0 && modes[i].mode == MONGOC_READ_PRIMARY_PREFERRED)
            || (strcasecmp(s, "secondary_preferred") == 0
                && modes[i].mode == MONGOC_READ_SECONDARY_PREFERRED)) {
            *mode = modes[i].mode;
            return 0;
        }
    }
    return BL_ECONF;
}

static void
mongo_close(struct node_store *base)
{
    struct mongo_store *s = (struct mongo_store *)base;

    if (s == NULL) {
        return;
    }
    if (s->health_client != NULL) {
        mongoc_client_destroy(s->health_client);
    }
    if (s->pool != NULL) {
        mongoc_client_pool_destroy(s->pool);
    }
    mongoc_uri_destroy(s->uri);
    mongoc_uri_destroy(s->health_uri);
    mongoc_read_prefs_destroy(s->primary);
    pthread_mutex_destroy(&s->health_mu);
    free(s->db);
    free(s);
}

/*
 * Opens the pool for conf->uri. The URI gives hosts, replicaSet, TLS and credentials; the
 * node.store keys give database, write concern, read preference and the two timeouts
 * (they override the same options in the URI). No server round trip is required: a node
 * starts while the database is down and /readyz tells when it is reachable.
 */
static int
mongo_open(const struct bl_conf_store *conf, struct node_store **out, char **err)
{
    struct mongo_store *s;
    mongoc_read_prefs_t *rp = NULL;
    mongoc_read_mode_t mode;
    bson_error_t e;
    uint64_t sel_ms, sock_ms;
    int32_t wtimeout, max_pool;
    long ncpu;
    int rc;

    *out = NULL;
    pthread_once(&mongo_once, mongo_global_init);
    if (conf->uri == NULL || conf->uri[0] == '\0') {
        *err = strdup("store: driver mongodb needs node.store.uri (a mongodb:// URI)");
        return BL_ECONF;
    }
    if (parse_read_mode(conf->read_preference, &mode) != 0) {
        *err = errf("store: read_preference '%s': expected primary, primaryPreferred, "
                    "secondary, secondaryPreferred or nearest%s", conf->read_preference, NULL);
        return BL_ECONF;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        *err = strdup("store: out of memory");
        return -ENOMEM;
    }
    s->base.ops = &node_store_mongo_ops;
    pthread_mutex_init(&s->health_mu, NULL);
    s->uri = mongoc_uri_new_with_error(conf->uri, &e);
    if (s->uri == NULL) {
        *err = errf("store: bad node.store.uri: %s%s", e.message, NULL);
        rc = BL_ECONF;
        goto fail;
    }
    s->db = strdup(conf->database != NULL && conf->database[0] != '\0' ? conf->database
                   : mongoc_uri_get_database(s->uri) != NULL ? mongoc_uri_get_database(s->uri)
                   : BL_CONF_DEFAULT_MONGO_DATABASE);
    if (s->db == NULL) {
        *err = strdup("store: out of memory");
        rc = -ENOMEM;
        goto fail;
    }
    if (strpbrk(s->db, "/\\. \"$") != NULL || strlen(s->db) > 63) {
        *err = errf("store: bad node.store.database '%s'%s", s->db, NULL);
        rc = BL_ECONF;
        goto fail;
    }

    sel_ms = conf->server_selection_timeout_ms != 0 ? conf->server_selection_timeout_ms
                                                    : BL_CONF_DEFAULT_SERVER_SELECTION_TIMEOUT_MS;
    sock_ms = conf->socket_timeout_ms != 0 ? conf->socket_timeout_ms
                                           : BL_CONF_DEFAULT_SOCKET_TIMEOUT_MS;
    if (sel_ms > INT32_MAX) {
        sel_ms = INT32_MAX;
    }
    if (sock_ms > INT32_MAX) {
        sock_ms = INT32_MAX;
    }
    mongoc_uri_set_option_as_int32(s->uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, (int32_t)sel_ms);
    mongoc_uri_set_option_as_int32(s->uri, MONGOC_URI_SOCKETTIMEOUTMS, (int32_t)sock_ms);
    if (!mongoc_uri_has_option(s->uri, MONGOC_URI_CONNECTTIMEOUTMS)) {
        mongoc_uri_set_option_as_int32(s->uri, MONGOC_URI_CONNECTTIMEOUTMS,
                                       (int32_t)(sel_ms < 10000 ? sel_ms : 10000));
    }
    /* Longer than any write of a live node can take (a claim's holder is dead then). */
    s->claim_stale_ms = 2 * sock_ms + sel_ms > 30000 ? 2 * sock_ms + sel_ms : 30000;
    /* The server answers a slow majority write before our socket gives up on it. */
    wtimeout = (int32_t)(sock_ms > 2000 ? sock_ms - 1000 : sock_ms / 2);
    rc = apply_write_concern(s->uri, conf->write_concern, wtimeout, err);
    if (rc != 0) {
        goto fail;
    }
    rp = mongoc_read_prefs_new(mode);
    s->primary = mongoc_read_prefs_new(MONGOC_READ_PRIMARY);
    if (rp == NULL || s->primary == NULL) {
        *err = strdup("store: out of memory");
        rc = -ENOMEM;
        goto fail;
    }
    mongoc_uri_set_read_prefs_t(s->uri, rp);
    if (!mongoc_uri_has_option(s->uri, MONGOC_URI_APPNAME)) {
        mongoc_uri_set_appname(s->uri, "blog-node");
    }
    /* At least one client per worker thread (node.threads: auto = one per core). */
    if (!mongoc_uri_has_option(s->uri, MONGOC_URI_MAXPOOLSIZE)) {
        ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        max_pool = ncpu > MONGO_MIN_POOL / 2 ? (int32_t)(ncpu * 2) : MONGO_MIN_POOL;
        mongoc_uri_set_option_as_int32(s->uri, MONGOC_URI_MAXPOOLSIZE, max_pool);
    }

    /* /readyz must answer fast: the health client gives up after about a second. */
    s->health_uri = mongoc_uri_copy(s->uri);
    if (s->health_uri == NULL) {
        *err = strdup("store: out of memory");
        rc = -ENOMEM;
        goto fail;
    }
    mongoc_uri_set_option_as_int32(s->health_uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS,
                                   MONGO_HEALTH_TIMEOUT_MS);
    mongoc_uri_set_option_as_int32(s->health_uri, MONGOC_URI_CONNECTTIMEOUTMS,
                                   MONGO_HEALTH_TIMEOUT_MS);
    mongoc_uri_set_option_as_int32(s->health_uri, MONGOC_URI_SOCKETTIMEOUTMS,
                                   MONGO_HEALTH_TIMEOUT_MS);

    s->pool = mongoc_client_pool_new_with_error(s->uri, &e);
    if (s->pool == NULL) {
        *err = errf("store: mongodb client pool: %s%s", e.message, NULL);
        rc = BL_ECONF;
        goto fail;
    }
    mongoc_client_pool_set_error_api(s->pool, MONGOC_ERROR_API_VERSION_2);
    mongoc_read_prefs_destroy(rp);

    /* Not fatal: say early in the log when the database cannot be reached yet. */
    if (mongo_health(&s->base) != 0) {
        bl_logf(BL_LOG_WARN, ((struct bl_log_field[]){BL_LOG_STR("db", s->db)}), 1,
                "mongodb: not reachable at startup (%s); /readyz stays 503 until it is",
                node_store_last_error());
    }
    *out = &s->base;
    return 0;

fail:
    mongoc_read_prefs_destroy(rp);
    mongo_close(&s->base);
    if (*err == NULL) {
        *err = strdup("store: mongodb open failed");
    }
    return rc;
}

const struct node_store_ops node_store_mongo_ops = {
    .name = "mongodb",
    .open = mongo_open,
    .close = mongo_close,
    .get = mongo_get,
    .list = mongo_list,
    .insert = mongo_insert,
    .replace = mongo_replace,
    .remove = mongo_remove,
    .asset_put = mongo_asset_put,
    .asset_get = mongo_asset_get,
    .health = mongo_health,
};
