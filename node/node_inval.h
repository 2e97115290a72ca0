#ifndef NODE_INVAL_H
#define NODE_INVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bl/bl_conf.h"

#include "node_cache.h"

/*
 * Cross-node cache coherence through Redis pub/sub (DESIGN §3 "Coherence",
 * docs/CONSISTENCY.md). One thread runs a libev loop with a hiredis async connection
 * SUBSCRIBEd to "blogscale:<cluster.name>:inval"; a second, synchronous connection
 * (guarded by a mutex, 300 ms socket timeouts) PUBLISHes from the request threads.
 *
 * - Every message carries its origin (node name + a random boot id), the origin's sequence
 *   number and the publish time; a receiver drops the id (or flushes) and bumps the list
 *   generation, ignores its own messages, and flushes its whole cache when it sees a gap
 *   in an origin's sequence (pub/sub is at-most-once).
 * - PING every 300 ms on the subscription; no reply within 600 ms, or a closed socket,
 *   means disconnected: the cache is bypassed (blog_node_cache_coherent 0) and flushed,
 *   writes are refused, reconnects back off from 50 ms to 1 s; once subscribed again the
 *   publish link is reopened, queued invalidations are replayed, the cache is flushed once
 *   more and marked coherent.
 * - An invalidation whose PUBLISH fails after its store write is kept (bounded queue,
 *   NODE_INVAL_QUEUE_MAX, oldest dropped first: peers then see a sequence gap and flush)
 *   and replayed on reconnect.
 */

#define NODE_INVAL_QUEUE_MAX 4096
#define NODE_INVAL_PING_MS 300
#define NODE_INVAL_PING_TIMEOUT_MS 600
#define NODE_INVAL_IO_TIMEOUT_MS 300   /* PUBLISH/connect socket timeouts */
/* A write whose PUBLISH failed is answered only after this long (from the PUBLISH), unless
 * the message was replayed sooner: every subscribed peer has then detected a hung Redis
 * (ping period + timeout + two housekeeping ticks + 100 ms of scheduling margin). */
#define NODE_INVAL_HOLD_MS (NODE_INVAL_PING_MS + NODE_INVAL_PING_TIMEOUT_MS + 200)

struct node_inval;
struct bl_metrics;

/* A parsed redis:// URL. */
struct node_redis_url {
    char host[256];
    int port;                           /* default 6379 */
    char user[128];                     /* "" when none (AUTH password only) */
    char password[256];                 /* "" when none */
    int db;                             /* unused by pub/sub (channels span databases) */
};

/*
 * Parses "redis://[[user]:password@]HOST[:PORT][/DB]" (HOST may be [IPv6]; user and
 * password may be %-encoded). rediss:// is refused: the hiredis packaged with Debian 12
 * (0.14) has no TLS. Returns 0, or BL_EINVAL with *msg set to a static explanation.
 */
int node_inval_parse_url(const char *url, struct node_redis_url *out, const char **msg);

/* One decoded invalidation message. */
struct node_inval_msg {
    bool flush;                         /* "flush" (id or all) rather than "post" */
    char id[32];                        /* post id, "" = all (flush only) */
    uint64_t version;
    char origin[72];
    uint64_t boot;                      /* the origin's boot id */
    uint64_t seq;                       /* the origin's sequence number (from 1) */
    uint64_t ts_us;                     /* publish time, CLOCK_REALTIME µs */
};

/* Encodes <m> as JSON into <out>; returns the length or 0 if it does not fit. */
size_t node_inval_encode(const struct node_inval_msg *m, char *out, size_t size);
/* Decodes one message (jansson). 0 or BL_EPARSE. */
int node_inval_decode(const char *s, size_t len, struct node_inval_msg *m);

/*
 * Creates the coherence client for node <origin> on <conf->cluster.redis> (must be set) and
 * channel blogscale:<cluster.name>:inval, acting on <cache> (not NULL; blog-node creates no
 * coherence client when the cache is off) and registering its metrics in <reg> (may be NULL).
 * The cache is marked not coherent until the first subscription. Returns NULL with *err
 * (malloc'ed) on a bad URL (e.g. rediss://) or OOM. Does not connect yet.
 */
struct node_inval *node_inval_create(const struct bl_conf *conf, const char *origin,
                                     struct node_cache *cache, struct bl_metrics *reg,
                                     char **err);

/* Starts the thread (connects in the background). 0 or -errno. */
int node_inval_start(struct node_inval *iv);

/* Stops the thread and frees everything. NULL is a no-op. */
void node_inval_destroy(struct node_inval *iv);

/* True while subscribed (/readyz, blog_node_cache_coherent). */
bool node_inval_subscribed(struct node_inval *iv);

/*
 * Called before a write touches the store: 0 when invalidations can be published, or
 * BL_EUNAVAIL (answer 503 coherence_unavailable). NULL <iv> (no Redis): always 0.
 */
int node_inval_write_begin(struct node_inval *iv);

/*
 * After a successful write of post <id> (new <version>, 0 for a delete): drops the
 * local entry and the list pages of <cache> (may be NULL), then publishes. A failed publish
 * queues the message for replay (and marks the link down so later writes are refused); a
 * PUBLISH that timed out (Redis hangs) also blocks the caller (the write's answer) until the
 * message was replayed or NODE_INVAL_HOLD_MS have passed since the PUBLISH began
 * (docs/CONSISTENCY.md).
 * NULL <iv>: local invalidation only.
 */
void node_inval_post_written(struct node_inval *iv, struct node_cache *cache, const char *id,
                             uint64_t version);

/*
 * Admin flush of post <id> (NULL = everything) on this node and, through Redis, on every
 * node. Returns 0, or BL_EUNAVAIL when the message could not be published now (the local
 * flush happened, the message is queued for replay).
 */
int node_inval_flush(struct node_inval *iv, struct node_cache *cache, const char *id);

#endif /* NODE_INVAL_H */
