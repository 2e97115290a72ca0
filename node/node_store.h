#ifndef NODE_STORE_H
#define NODE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bl/bl_conf.h"

/*
 * The store of record behind blog-node: posts and content-addressed assets. One driver
 * per file (node_store_lmdb.c, node_store_mongo.c), each exporting a struct
 * node_store_ops listed in node_store.c's table. Every operation is thread-safe: the
 * libmicrohttpd worker threads call them concurrently. All functions return 0 or a
 * negative BL_E* code:
 *   BL_ENOTFOUND  no such post/asset
 *   BL_ECONFLICT  expected_version did not match (If-Match failed)
 *   BL_EFULL      the store is full (LMDB map full, disk full)          -> 507
 *   BL_EUNAVAIL   the store cannot be reached or written (read-only dir, database down) -> 503
 *   -ENOMEM       out of memory                                         -> 503
 * A write that returned 0 is durable (it survives kill -9 of the process).
 */

#define NODE_ID_LEN 24                  /* ObjectId as lowercase hex */
#define NODE_SHA256_HEX_LEN 64
#define NODE_MAX_TAGS 20

struct node_post {
    char id[NODE_ID_LEN + 1];           /* 24 lowercase hex digits + NUL */
    char *title;                        /* valid UTF-8, owned */
    char *body;
    char *author;
    char **tags;                        /* ntags strings, owned */
    size_t ntags;
    uint64_t created_ms;                /* ms since the epoch, UTC */
    uint64_t updated_ms;
    uint64_t version;                   /* 1 on insert, + 1 on every replace */
};

struct node_post_list {
    struct node_post *posts;            /* newest first (id descending) */
    size_t n;
    bool more;                          /* true when older posts exist after the last one */
};

struct node_asset {
    char sha256[NODE_SHA256_HEX_LEN + 1]; /* the asset's id */
    char content_type[128];
    uint64_t size;
    int fd;                             /* readable fd positioned at 0, or -1 when data is set */
    void *data;                         /* malloc'ed bytes when fd == -1 */
};

struct node_store;                      /* a driver's opaque state */

struct node_store_ops {
    const char *name;                   /* "lmdb", "mongodb" */
    int (*open)(const struct bl_conf_store *conf, struct node_store **out, char **err);
    void (*close)(struct node_store *s);
    /* Fills <out> (the caller releases it with node_post_deinit()). */
    int (*get)(struct node_store *s, const char *id, struct node_post *out);
    /* Up to <limit> posts with id < <before_id> (NULL = from the newest), id descending. */
    int (*list)(struct node_store *s, const char *before_id, size_t limit,
                struct node_post_list *out);
    /* Inserts <p> (id, times and version = 1 already set by the caller). BL_EEXIST if the id is taken. */
    int (*insert)(struct node_store *s, const struct node_post *p);
    /*
     * Replaces title/body/author/tags/updated_ms of post <p->id>, atomically, if its stored
     * version equals <expected_version> (0 = any). The driver sets the new version to the
     * stored one + 1; on success p->version and p->created_ms hold what was stored.
     */
    int (*replace)(struct node_store *s, struct node_post *p, uint64_t expected_version);
    /* Deletes <id> if its version equals <expected_version> (0 = any), atomically. */
    int (*remove)(struct node_store *s, const char *id, uint64_t expected_version);
    /*
     * Stores the asset whose bytes are in the file <path> (size bytes, already hashed by the
     * caller to <sha256>). Same bytes, same id: storing an existing asset returns 0.
     * The bytes become visible atomically (never partially).
     */
    int (*asset_put)(struct node_store *s, const char *sha256, const char *content_type,
                     const char *path, uint64_t size);
    /* Opens the asset <sha256>; release with node_asset_deinit(). */
    int (*asset_get)(struct node_store *s, const char *sha256, struct node_asset *out);
    /* 0 when the store is reachable and writable enough to serve; cheap (called by /readyz). */
    int (*health)(struct node_store *s);
};

struct node_store {
    const struct node_store_ops *ops;   /* first member of every driver's state */
};

/* The drivers (node_store.c lists them by conf->driver). */
extern const struct node_store_ops node_store_lmdb_ops;

/* Opens the driver named in conf->driver. Returns NULL with *err (malloc'ed) on failure. */
struct node_store *node_store_open(const struct bl_conf_store *conf, char **err);
void node_store_close(struct node_store *s);            /* NULL is a no-op */

void node_post_deinit(struct node_post *p);
void node_post_list_deinit(struct node_post_list *l);
void node_asset_deinit(struct node_asset *a);

/* Generates a new ObjectId (4-byte seconds, 5-byte process random, 3-byte counter) as hex. */
void node_store_new_id(char out[NODE_ID_LEN + 1]);
/* True when <s> is exactly 24 lowercase or uppercase hex digits. */
bool node_store_valid_id(const char *s, size_t len);

/* ---- additions (additive only; see docs/STORE.md) ---- */

#define NODE_ID_BIN_LEN 12              /* ObjectId as bytes */

/*
 * Like node_store_open() but returns the driver's code: 0 with *out set, or a negative
 * BL_E* code (BL_EUNAVAIL for an unreachable/unusable store, BL_EINVAL/BL_ECONF for a bad
 * config) with *err (malloc'ed, caller frees) describing why.
 */
int node_store_open_rc(const struct bl_conf_store *conf, struct node_store **out, char **err);

/*
 * The reason for the calling thread's last failed store operation (e.g. "mdb_put: MDB_MAP_FULL:
 * Environment mapsize limit reached"), for logging next to the BL_E* code. Thread-local:
 * valid until this thread's next store call; "" when no reason was recorded. Never NULL.
 */
const char *node_store_last_error(void);
/* For drivers: records the calling thread's last error reason (printf format). */
void node_store_set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Decodes the 24 hex digits <hex> (either case) into bytes. 0 or BL_EINVAL. */
int node_store_id_to_bin(const char *hex, size_t len, uint8_t out[NODE_ID_BIN_LEN]);
/* Formats the id bytes <bin> as 24 lowercase hex digits + NUL. */
void node_store_id_from_bin(const uint8_t bin[NODE_ID_BIN_LEN], char out[NODE_ID_LEN + 1]);
/* True when <s> is exactly 64 lowercase hex digits (an asset id). */
bool node_store_valid_sha256(const char *s, size_t len);
/* Seconds field (creation time, s since the epoch) of the id bytes <bin>. */
uint32_t node_store_id_seconds(const uint8_t bin[NODE_ID_BIN_LEN]);

#endif /* NODE_STORE_H */
