#ifndef NODE_SERVER_H
#define NODE_SERVER_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bl/bl_auth.h"
#include "bl/bl_conf.h"

#include "node_metrics.h"
#include "node_store.h"

struct node_cache;
struct node_inval;

/*
 * Everything one blog-node process serves with, passed to every handler (there are no
 * globals besides main's signal descriptor). Created by node_main.c; the fields below the
 * auth lock are fixed after startup, the write tokens are swapped by SIGHUP.
 */
struct node_writers;

struct node_server {
    struct bl_conf *conf;               /* the config loaded at startup (limits, types, store) */
    struct node_store *store;           /* the store of record */
    struct node_metrics *metrics;
    struct node_cache *cache;           /* hot cache (node_cache.h), NULL when cache.enabled is false */
    struct node_inval *inval;           /* Redis coherence (node_inval.h), NULL without cluster.redis */
    char name[72];                      /* X-Blog-Node value: the nodes[] name or --name */
    char listen[128];                   /* "HOST:PORT" we listen on */
    char tmpdir[PATH_MAX];              /* where uploads stream before asset_put */
    uint64_t post_json_limit;           /* bytes of a POST/PUT /posts body we buffer at most */

    pthread_rwlock_t auth_lock;         /* guards the three fields below (SIGHUP swaps them) */
    uint8_t (*tokens)[BL_SHA256_LEN];   /* write token digests, owned */
    size_t ntokens;
    bool allow_anonymous_writes;        /* cluster.allow_anonymous_writes */

    struct MHD_Daemon *mhd;             /* the HTTP daemon */
    struct node_writers *writers;       /* threads that run store writes off the MHD threads */
    atomic_long inflight;               /* requests between their first and last callback */
    atomic_bool stopping;               /* SIGTERM seen: answers carry Connection: close */
    atomic_ulong tmp_seq;               /* makes upload temp names unique */
};

/*
 * True when the request's Authorization header value <authorization> (may be NULL) carries
 * a valid write token, or anonymous writes are allowed. Takes the auth lock shared.
 */
bool node_server_write_allowed(struct node_server *srv, const char *authorization);

/*
 * Installs the write tokens of <conf> (copied) and its allow_anonymous_writes flag. Takes
 * the auth lock exclusively. Returns 0 or -ENOMEM (old tokens kept).
 */
int node_server_set_tokens(struct node_server *srv, const struct bl_conf *conf);

#endif /* NODE_SERVER_H */
