#include "node_store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <bson/bson.h>
#include <lmdb.h>

#include "bl/bl_err.h"
#include "bl/bl_util.h"
#include "node_post_codec.h"

/*
 * LMDB driver (docs/STORE.md). One environment in conf->path, shared by every blog-node
 * process on the machine; LMDB serializes write transactions across processes with a
 * robust mutex in lock.mdb, so a conditional replace/remove (read version, compare, write)
 * inside one write txn is atomic cluster-wide.
 *
 *   posts   key: 12-byte ObjectId (memcmp order = id order)  value: BSON (node_post_codec.h)
 *   assets  key: 32-byte sha256                                value: 8-byte BE size + content type
 *   bytes:  <path>/assets/<first 2 hex>/<sha256 hex>
 *
 * Durable by default: no MDB_NOSYNC/MDB_NOMETASYNC, so a commit fsyncs before returning.
 * MDB_NOTLS because MHD threads and our read-txn pool move read txns between threads.
 */

#define LMDB_MAX_READERS 4094           /* reader slots shared by all processes (64 B each) */
#define LMDB_RTXN_POOL 64               /* reset read txns kept for reuse */
#define LMDB_HEALTH_CACHE_MS 1000
#define LMDB_SHA_BIN 32
#define LMDB_BATCH_MAX 256              /* ops per group-commit write txn */

/*
 * Group commit. Every write (insert, replace, remove, asset metadata put) is an op queued
 * on the store; the first thread to find no batch running becomes the committer: it takes
 * the queued ops, applies them one by one in ONE write txn, commits it (one fsync) and
 * only then wakes their threads with each op's own outcome. Ops that arrive meanwhile wait
 * for the next batch. An op that fails a check (version conflict, not found, id taken)
 * writes nothing and fails alone. An op whose mdb_put/mdb_del fails (MDB_MAP_FULL, ...)
 * leaves the txn unusable: the txn is aborted, that op fails alone and the batch is applied
 * again without it. A commit that fails with MDB_MAP_FULL is retried one op per txn, so
 * a batch never fails an op that would have fit alone. Nobody is acknowledged before the
 * commit that holds its op returned.
 */
enum lmdb_wop_kind {
    LMDB_WOP_INSERT,
    LMDB_WOP_REPLACE,
    LMDB_WOP_REMOVE,
    LMDB_WOP_ASSET,
};

struct lmdb_wop {
    enum lmdb_wop_kind kind;
    uint8_t key[LMDB_SHA_BIN];
    size_t klen;
    const void *val;                    /* insert: encoded post; asset: metadata */
    size_t vlen;
    struct node_post *post;             /* replace: the new fields */
    uint64_t expected;                  /* replace/remove: expected version (0 = any) */
    uint64_t version;                   /* replace: the version stored */
    uint64_t created_ms;                /* replace: the creation time kept */
    int rc;
    bool final;                         /* failed alone: not applied again */
    bool done;                          /* rc is the outcome (set before wake is posted) */
    sem_t wake;                         /* posted when done or when made the committer */
    char err[256];                      /* the reason when rc != 0 */
    struct lmdb_wop *next;
};

struct lmdb_store {
    struct node_store base;
    MDB_env *env;
    MDB_dbi posts;
    MDB_dbi assets;
    char *path;
    char *assets_dir;
    bool readonly;                      /* opened with MDB_RDONLY: the dir is not writable */
    char ro_reason[256];
    atomic_uint tmp_seq;                /* names asset temp files */

    pthread_mutex_t pool_mu;            /* guards pool/npool */
    MDB_txn *pool[LMDB_RTXN_POOL];
    size_t npool;

    pthread_mutex_t gc_mu;              /* group commit: guards gc_* */
    struct lmdb_wop *gc_head;           /* ops waiting for the next batch, FIFO */
    struct lmdb_wop **gc_tail;
    bool gc_busy;                       /* a thread is running a batch */

    pthread_mutex_t health_mu;          /* guards the health_* cache */
    uint64_t health_at_ms;
    int health_rc;
    char health_err[256];
};

static uint64_t
mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Maps an LMDB or errno code to BL_E*, recording the reason for node_store_last_error(). */
static int
map_rc(int rc, const char *what)
{
    node_store_set_error("lmdb %s: %s", what, mdb_strerror(rc));
    switch (rc) {
    case MDB_MAP_FULL:
    case ENOSPC:
    case EDQUOT:
        return BL_EFULL;
    case ENOMEM:
        return -ENOMEM;
    case MDB_NOTFOUND:
        return BL_ENOTFOUND;
    case MDB_KEYEXIST:
        return BL_EEXIST;
    default:
        /* EACCES, EROFS, EPERM, EIO, MDB_PANIC, MDB_READERS_FULL, MDB_MAP_RESIZED, ... */
        return BL_EUNAVAIL;
    }
}

static int
map_errno(int e, const char *what, const char *obj)
{
    node_store_set_error("lmdb %s %s: %s", what, obj, strerror(e));
    switch (e) {
    case ENOSPC:
    case EDQUOT:
        return BL_EFULL;
    case ENOMEM:
        return -ENOMEM;
    default:
        return BL_EUNAVAIL;
    }
}

/* ---- read transactions: a small pool of reset txns (mdb_txn_renew skips the slot search) */

static int
rtxn_get(struct lmdb_store *s, MDB_txn **txn)
{
    MDB_txn *t = NULL;
    int rc;

    pthread_mutex_lock(&s->pool_mu);
    if (s->npool > 0) {
        t = s->pool[--s->npool];
    }
    pthread_mutex_unlock(&s->pool_mu);
    if (t != NULL) {
        rc = mdb_txn_renew(t);
        if (rc == 0) {
            *txn = t;
            return 0;
        }
        mdb_txn_abort(t);
    }
    rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, txn);
    if (rc == MDB_READERS_FULL) {
        int dead = 0;

        /* Slots of killed processes may be holding the table: clear them and retry once. */
        mdb_reader_check(s->env, &dead);
        rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, txn);
    }
    if (rc != 0) {
        return map_rc(rc, "begin read txn");
    }
    return 0;
}

static void
rtxn_put(struct lmdb_store *s, MDB_txn *txn)
{
    mdb_txn_reset(txn);
    pthread_mutex_lock(&s->pool_mu);
    if (s->npool < LMDB_RTXN_POOL) {
        s->pool[s->npool++] = txn;
        txn = NULL;
    }
    pthread_mutex_unlock(&s->pool_mu);
    if (txn != NULL) {
        mdb_txn_abort(txn);
    }
}

/* ---- open / close ---- */

static int
mkdir_p(const char *path, mode_t mode)
{
    char buf[PATH_MAX];
    size_t len = strlen(path);
    size_t i;

    if (len == 0 || len >= sizeof(buf)) {
        return -ENAMETOOLONG;
    }
    memcpy(buf, path, len + 1);
    for (i = 1; i <= len; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char c = buf[i];

            buf[i] = '\0';
            if (mkdir(buf, mode) != 0 && errno != EEXIST) {
                return -errno;
            }
            buf[i] = c;
        }
    }
    return 0;
}

static int
fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int e = 0;

    if (fd < 0) {
        return -errno;
    }
    if (fsync(fd) != 0) {
        e = -errno;
    }
    close(fd);
    return e;
}

/*
 * Removes asset temp files left by processes that no longer exist (a crash between
 * create and rename). Names are ".tmp-<pid>-<seq>-<sha>", so a live writer's file in
 * another process is never touched.
 */
static void
sweep_tmp(struct lmdb_store *s)
{
    DIR *top = opendir(s->assets_dir);
    struct dirent *d;

    if (top == NULL) {
        return;
    }
    while ((d = readdir(top)) != NULL) {
        char sub[PATH_MAX];
        DIR *dd;
        struct dirent *f;

        if (strlen(d->d_name) != 2 || d->d_name[0] == '.') {
            continue;
        }
        snprintf(sub, sizeof(sub), "%s/%s", s->assets_dir, d->d_name);
        dd = opendir(sub);
        if (dd == NULL) {
            continue;
        }
        while ((f = readdir(dd)) != NULL) {
            long pid;
            char *end;

            if (strncmp(f->d_name, ".tmp-", 5) != 0) {
                continue;
            }
            pid = strtol(f->d_name + 5, &end, 10);
            if (end == f->d_name + 5 || *end != '-' || pid <= 0) {
                continue;
            }
            if (kill((pid_t)pid, 0) != 0 && errno == ESRCH) {
                unlinkat(dirfd(dd), f->d_name, 0);
            }
        }
        closedir(dd);
    }
    closedir(top);
}

static void
lmdb_free(struct lmdb_store *s)
{
    size_t i;

    if (s == NULL) {
        return;
    }
    for (i = 0; i < s->npool; i++) {
        mdb_txn_abort(s->pool[i]);
    }
    s->npool = 0;
    if (s->env != NULL) {
        mdb_env_close(s->env);
    }
    pthread_mutex_destroy(&s->pool_mu);
    pthread_mutex_destroy(&s->gc_mu);
    pthread_mutex_destroy(&s->health_mu);
    free(s->path);
    free(s->assets_dir);
    free(s);
}

static int
env_create(MDB_env **env, uint64_t map_size)
{
    long page = sysconf(_SC_PAGESIZE);
    uint64_t pg = page > 0 ? (uint64_t)page : 4096;
    int rc;

    if (map_size == 0) {
        map_size = BL_CONF_DEFAULT_MAP_SIZE;
    }
    map_size = (map_size + pg - 1) / pg * pg;
    rc = mdb_env_create(env);
    if (rc != 0) {
        return rc;
    }
    if ((rc = mdb_env_set_maxdbs(*env, 4)) != 0
        || (rc = mdb_env_set_maxreaders(*env, LMDB_MAX_READERS)) != 0
        || (rc = mdb_env_set_mapsize(*env, (size_t)map_size)) != 0) {
        mdb_env_close(*env);
        *env = NULL;
    }
    return rc;
}

static char *
fmt_err(const char *fmt, const char *a, const char *b)
{
    char buf[PATH_MAX + 256];

    snprintf(buf, sizeof(buf), fmt, a, b);
    return strdup(buf);
}

static int
lmdb_open(const struct bl_conf_store *conf, struct node_store **out, char **err)
{
    struct lmdb_store *s;
    MDB_txn *txn = NULL;
    unsigned dbflags;
    int rc, dead = 0;
    int ret = BL_EUNAVAIL;

    *out = NULL;
    if (conf->path == NULL || conf->path[0] == '\0') {
        *err = strdup("store lmdb: store.path is empty");
        return BL_ECONF;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return -ENOMEM;
    }
    pthread_mutex_init(&s->pool_mu, NULL);
    pthread_mutex_init(&s->gc_mu, NULL);
    s->gc_tail = &s->gc_head;
    pthread_mutex_init(&s->health_mu, NULL);
    s->base.ops = &node_store_lmdb_ops;
    s->path = strdup(conf->path);
    s->assets_dir = malloc(strlen(conf->path) + sizeof("/assets"));
    if (s->path == NULL || s->assets_dir == NULL) {
        ret = -ENOMEM;
        goto fail;
    }
    sprintf(s->assets_dir, "%s/assets", conf->path);

    rc = mkdir_p(s->path, 0750);
    if (rc != 0) {
        *err = fmt_err("store lmdb: cannot create data directory %s: %s", s->path,
                       strerror(-rc));
        goto fail;
    }
    rc = env_create(&s->env, conf->map_size);
    if (rc != 0) {
        *err = fmt_err("store lmdb %s: %s", s->path, mdb_strerror(rc));
        ret = rc == ENOMEM ? -ENOMEM : BL_EUNAVAIL;
        goto fail;
    }
    rc = mdb_env_open(s->env, s->path, MDB_NOTLS, 0640);
    if (rc == EACCES || rc == EROFS || rc == EPERM) {
        /* Not writable: serve reads read-only; every write answers BL_EUNAVAIL. */
        snprintf(s->ro_reason, sizeof(s->ro_reason), "data directory %s is not writable (%s)",
                 s->path, mdb_strerror(rc));
        mdb_env_close(s->env);
        s->env = NULL;
        rc = env_create(&s->env, conf->map_size);
        if (rc == 0) {
            rc = mdb_env_open(s->env, s->path, MDB_NOTLS | MDB_RDONLY, 0640);
        }
        s->readonly = true;
    }
    if (rc != 0) {
        if (s->readonly) {
            *err = fmt_err("store lmdb: %s, and it holds no store that could be read (%s)",
                           s->ro_reason, mdb_strerror(rc));
        } else {
            *err = fmt_err("store lmdb: cannot open environment in %s: %s", s->path,
                           mdb_strerror(rc));
        }
        goto fail;
    }

    dbflags = s->readonly ? 0 : MDB_CREATE;
    rc = mdb_txn_begin(s->env, NULL, s->readonly ? MDB_RDONLY : 0, &txn);
    if (rc == 0) {
        rc = mdb_dbi_open(txn, "posts", dbflags, &s->posts);
    }
    if (rc == 0) {
        rc = mdb_dbi_open(txn, "assets", dbflags, &s->assets);
    }
    if (rc == 0) {
        rc = mdb_txn_commit(txn);
        txn = NULL;
    }
    if (rc != 0) {
        if (txn != NULL) {
            mdb_txn_abort(txn);
        }
        if (rc == MDB_NOTFOUND && s->readonly) {
            *err = fmt_err("store lmdb: %s holds no blogscale data and is not writable%s",
                           s->path, "");
        } else {
            *err = fmt_err("store lmdb: cannot open databases in %s: %s", s->path,
                           mdb_strerror(rc));
        }
        ret = rc == MDB_MAP_FULL || rc == ENOSPC ? BL_EFULL : BL_EUNAVAIL;
        goto fail;
    }
    /* Reader slots of killed processes would pin old pages forever: clear them now. */
    mdb_reader_check(s->env, &dead);

    if (!s->readonly) {
        if (mkdir(s->assets_dir, 0750) != 0 && errno != EEXIST) {
            *err = fmt_err("store lmdb: cannot create %s: %s", s->assets_dir, strerror(errno));
            goto fail;
        }
        sweep_tmp(s);
    }
    *out = &s->base;
    return 0;

fail:
    lmdb_free(s);
    return ret;
}

static void
lmdb_close(struct node_store *base)
{
    lmdb_free((struct lmdb_store *)base);
}

/* ---- posts ---- */

static int
decode_into(const MDB_val *key, const MDB_val *val, struct node_post *out)
{
    int rc = node_post_codec_decode_raw(val->mv_data, val->mv_size, out);

    if (rc == BL_EPARSE) {
        char id[NODE_ID_LEN + 1];

        node_store_id_from_bin(key->mv_data, id);
        node_store_set_error("lmdb: stored post %s does not decode", id);
        return BL_EUNAVAIL;
    }
    if (rc != 0) {
        node_store_set_error("lmdb: out of memory decoding a post");
        return rc;
    }
    node_store_id_from_bin(key->mv_data, out->id);
    return 0;
}

static int
lmdb_get(struct node_store *base, const char *id, struct node_post *out)
{
    struct lmdb_store *s = (struct lmdb_store *)base;
    uint8_t bin[NODE_ID_BIN_LEN];
    MDB_txn *txn;
    MDB_val key = { NODE_ID_BIN_LEN, bin }, val;
    int rc;

    memset(out, 0, sizeof(*out));
    if (id == NULL || node_store_id_to_bin(id, strlen(id), bin) != 0) {
        node_store_set_error("lmdb get: malformed id");
        return BL_ENOTFOUND;
    }
    rc = rtxn_get(s, &txn);
    if (rc != 0) {
        return rc;
    }
    rc = mdb_get(txn, s->posts, &key, &val);
    if (rc == 0) {
        rc = decode_into(&key, &val, out);
    } else {
        rc = map_rc(rc, "get");
    }
    rtxn_put(s, txn);
    return rc;
}

static int
lmdb_list(struct node_store *base, const char *before_id, size_t limit,
          struct node_post_list *out)
{
    struct lmdb_store *s = (struct lmdb_store *)base;
    uint8_t bin[NODE_ID_BIN_LEN];
    MDB_txn *txn;
    MDB_cursor *cur = NULL;
    MDB_val key, val;
    size_t cap = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    if (before_id != NULL && node_store_id_to_bin(before_id, strlen(before_id), bin) != 0) {
        node_store_set_error("lmdb list: malformed cursor id");
        return BL_EINVAL;
    }
    rc = rtxn_get(s, &txn);
    if (rc != 0) {
        return rc;
    }
    rc = mdb_cursor_open(txn, s->posts, &cur);
    if (rc != 0) {
        rc = map_rc(rc, "cursor open");
        goto done;
    }
    if (before_id == NULL) {
        rc = mdb_cursor_get(cur, &key, &val, MDB_LAST);
    } else {
        /* First key >= before_id, then step back to the first key < before_id. */
        key.mv_size = NODE_ID_BIN_LEN;
        key.mv_data = bin;
        rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
        if (rc == 0) {
            rc = mdb_cursor_get(cur, &key, &val, MDB_PREV);
        } else if (rc == MDB_NOTFOUND) {
            rc = mdb_cursor_get(cur, &key, &val, MDB_LAST);
        }
    }
    while (rc == 0 && out->n < limit) {
        if (key.mv_size != NODE_ID_BIN_LEN) {
            rc = mdb_cursor_get(cur, &key, &val, MDB_PREV);
            continue;
        }
        if (out->n == cap) {
            size_t ncap = cap == 0 ? BL_MIN(limit, (size_t)32) : BL_MIN(limit, cap * 2);
            struct node_post *np = realloc(out->posts, ncap * sizeof(*np));

            if (np == NULL) {
                node_store_set_error("lmdb list: out of memory");
                rc = -ENOMEM;
                goto done;
            }
            out->posts = np;
            cap = ncap;
        }
        rc = decode_into(&key, &val, &out->posts[out->n]);
        if (rc != 0) {
            goto done;
        }
        out->n++;
        rc = mdb_cursor_get(cur, &key, &val, MDB_PREV);
    }
    if (rc == 0) {
        out->more = true;               /* the cursor stands on one more (older) post */
    } else if (rc == MDB_NOTFOUND) {
        out->more = false;
        rc = 0;
    } else {
        rc = map_rc(rc, "list");
    }

done:
    if (cur != NULL) {
        mdb_cursor_close(cur);
    }
    rtxn_put(s, txn);
    if (rc != 0) {
        node_post_list_deinit(out);
    }
    return rc;
}

static int
encode(const struct node_post *p, bson_t *doc)
{
    bson_init(doc);
    if (node_post_codec_append(p, doc) != 0) {
        bson_destroy(doc);
        node_store_set_error("lmdb: out of memory encoding a post");
        return -ENOMEM;
    }
    return 0;
}

static int
check_version(uint64_t stored, uint64_t expected)
{
    if (expected != 0 && stored != expected) {
        node_store_set_error("version %llu does not match the expected %llu",
                             (unsigned long long)stored, (unsigned long long)expected);
        return BL_ECONFLICT;
    }
    return 0;
}

/* Records the calling thread's last error reason in <op>. */
static void
wop_fail(struct lmdb_wop *op, int rc)
{
    op->rc = rc;
    snprintf(op->err, sizeof(op->err), "%s", node_store_last_error());
}

/*
 * Applies <op> inside the write txn <txn>. Returns 0 or the op's BL_E* code; sets *broken
 * when a write failed (LMDB then requires the txn to be aborted).
 */
static int
wop_apply(struct lmdb_store *s, MDB_txn *txn, struct lmdb_wop *op, bool *broken)
{
    MDB_val key = { op->klen, op->key }, val;
    struct node_post old, next;
    uint64_t version;
    bson_t doc;
    int rc;

    *broken = false;
    switch (op->kind) {
    case LMDB_WOP_INSERT:
        val.mv_size = op->vlen;
        val.mv_data = (void *)op->val;
        rc = mdb_put(txn, s->posts, &key, &val, MDB_NOOVERWRITE);
        if (rc == MDB_KEYEXIST) {
            return map_rc(rc, "insert");
        }
        if (rc != 0) {
            *broken = true;
            return map_rc(rc, "insert");
        }
        return 0;

    case LMDB_WOP_ASSET:
        val.mv_size = op->vlen;
        val.mv_data = (void *)op->val;
        rc = mdb_put(txn, s->assets, &key, &val, MDB_NOOVERWRITE);
        if (rc == MDB_KEYEXIST) {
            return 0;                   /* another writer stored the same bytes first */
        }
        if (rc != 0) {
            *broken = true;
            return map_rc(rc, "asset put");
        }
        return 0;

    case LMDB_WOP_REPLACE:
        rc = mdb_get(txn, s->posts, &key, &val);
        if (rc != 0) {
            return map_rc(rc, "replace");
        }
        rc = decode_into(&key, &val, &old);
        if (rc != 0) {
            return rc;
        }
        rc = check_version(old.version, op->expected);
        if (rc != 0) {
            node_post_deinit(&old);
            return rc;
        }
        next = *op->post;
        next.version = old.version + 1;
        next.created_ms = old.created_ms;
        node_post_deinit(&old);
        rc = encode(&next, &doc);
        if (rc != 0) {
            return rc;
        }
        val.mv_size = doc.len;
        val.mv_data = (void *)bson_get_data(&doc);
        rc = mdb_put(txn, s->posts, &key, &val, 0);
        bson_destroy(&doc);
        if (rc != 0) {
            *broken = true;
            return map_rc(rc, "replace");
        }
        op->version = next.version;
        op->created_ms = next.created_ms;
        return 0;

    case LMDB_WOP_REMOVE:
        rc = mdb_get(txn, s->posts, &key, &val);
        if (rc != 0) {
            return map_rc(rc, "remove");
        }
        if (node_post_codec_version(val.mv_data, val.mv_size, &version) != 0) {
            char id[NODE_ID_LEN + 1];

            node_store_id_from_bin(op->key, id);
            node_store_set_error("lmdb remove: stored post %s does not decode", id);
            return BL_EUNAVAIL;
        }
        rc = check_version(version, op->expected);
        if (rc != 0) {
            return rc;
        }
        rc = mdb_del(txn, s->posts, &key, NULL);
        if (rc != 0) {
            *broken = true;
            return map_rc(rc, "remove");
        }
        return 0;
    }
    node_store_set_error("lmdb: unknown write op");
    return BL_EINVAL;
}

/* Applies the ops <ops> (n of them) in one write txn and commits it; sets every op's rc. */
static void
batch_run(struct lmdb_store *s, struct lmdb_wop **ops, size_t n)
{
    MDB_txn *txn;
    size_t i, nok;
    bool broken;
    int rc;

again:
    rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc != 0) {
        rc = map_rc(rc, "begin write txn");
        for (i = 0; i < n; i++) {
            if (!ops[i]->final) {
                wop_fail(ops[i], rc);
            }
        }
        return;
    }
    nok = 0;
    for (i = 0; i < n; i++) {
        if (ops[i]->final) {
            continue;
        }
        rc = wop_apply(s, txn, ops[i], &broken);
        if (rc != 0) {
            wop_fail(ops[i], rc);
            if (broken) {
                /* Only this op fails: drop the txn and apply the batch again without it. */
                ops[i]->final = true;
                mdb_txn_abort(txn);
                goto again;
            }
        } else {
            ops[i]->rc = 0;
            nok++;
        }
    }
    if (nok == 0) {
        mdb_txn_abort(txn);             /* nothing written */
        return;
    }
    rc = mdb_txn_commit(txn);           /* frees txn on success and on failure */
    if (rc == 0) {
        return;
    }
    if (rc == MDB_MAP_FULL && nok > 1) {
        /* The batch as a whole did not fit: give each op its own txn. */
        for (i = 0; i < n; i++) {
            if (!ops[i]->final && ops[i]->rc == 0) {
                batch_run(s, &ops[i], 1);
                ops[i]->final = true;
            }
        }
        return;
    }
    rc = map_rc(rc, "commit");
    for (i = 0; i < n; i++) {
        if (!ops[i]->final && ops[i]->rc == 0) {
            wop_fail(ops[i], rc);
        }
    }
}

/*
 * Queues <op> for the next group commit and returns its outcome once the commit that holds
 * it returned (0: durable). The first thread to queue an op while no batch runs becomes the
 * committer; when its batch is done it hands the role to the thread of the oldest waiting
 * op (if any), then wakes each op of its batch by its own semaphore: no broadcast, so a
 * batch of n ops costs n wake-ups and no contention on gc_mu.
 */
static int
wop_submit(struct lmdb_store *s, struct lmdb_wop *op)
{
    struct lmdb_wop *batch[LMDB_BATCH_MAX];
    struct lmdb_wop *next;
    size_t n, i;
    bool lead, mine;

    if (s->readonly) {
        node_store_set_error("lmdb: %s", s->ro_reason);
        return BL_EUNAVAIL;
    }
    op->rc = 0;
    op->final = false;
    op->done = false;
    op->err[0] = '\0';
    op->next = NULL;
    if (sem_init(&op->wake, 0, 0) != 0) {
        node_store_set_error("lmdb: sem_init: %s", strerror(errno));
        return BL_EUNAVAIL;
    }
    pthread_mutex_lock(&s->gc_mu);
    *s->gc_tail = op;
    s->gc_tail = &op->next;
    lead = !s->gc_busy;
    s->gc_busy = true;
    pthread_mutex_unlock(&s->gc_mu);
    for (;;) {
        if (!lead) {
            while (sem_wait(&op->wake) != 0) {
                /* EINTR: wait again */
            }
            if (op->done) {
                break;
            }
            /* not done: the previous committer handed us the role */
        }
        pthread_mutex_lock(&s->gc_mu);
        for (n = 0; n < LMDB_BATCH_MAX && s->gc_head != NULL; n++) {
            batch[n] = s->gc_head;
            s->gc_head = s->gc_head->next;
        }
        if (s->gc_head == NULL) {
            s->gc_tail = &s->gc_head;
        }
        pthread_mutex_unlock(&s->gc_mu);

        batch_run(s, batch, n);

        pthread_mutex_lock(&s->gc_mu);
        next = s->gc_head;              /* stays queued; its thread runs the next batch */
        if (next == NULL) {
            s->gc_busy = false;
        }
        pthread_mutex_unlock(&s->gc_mu);
        if (next != NULL && next != op) {
            sem_post(&next->wake);
        }
        mine = false;
        for (i = 0; i < n; i++) {
            if (batch[i] == op) {
                mine = true;
                continue;
            }
            batch[i]->done = true;      /* its thread may return (and free it) from here */
            sem_post(&batch[i]->wake);
        }
        if (mine) {
            break;
        }
        lead = next == op;              /* our op did not fit in this batch */
    }
    sem_destroy(&op->wake);
    if (op->rc != 0) {
        node_store_set_error("%s", op->err);
    }
    return op->rc;
}

static int
lmdb_insert(struct node_store *base, const struct node_post *p)
{
    struct lmdb_store *s = (struct lmdb_store *)base;
    struct lmdb_wop op = { .kind = LMDB_WOP_INSERT, .klen = NODE_ID_BIN_LEN };
    bson_t doc;
    int rc;

    if (node_store_id_to_bin(p->id, strlen(p->id), op.key) != 0) {
        node_store_set_error("lmdb insert: malformed id");
        return BL_EINVAL;
    }
    rc = encode(p, &doc);
    if (rc != 0) {
        return rc;
    }
    op.val = bson_get_data(&doc);
    op.vlen = doc.len;
    rc = wop_submit(s, &op);
    bson_destroy(&doc);
    return rc;
}

static int
lmdb_replace(struct node_store *base, struct node_post *p, uint64_t expected_version)
{
    struct lmdb_store *s = (struct lmdb_store *)base;
    struct lmdb_wop op = { .kind = LMDB_WOP_REPLACE, .klen = NODE_ID_BIN_LEN };
    int rc;

    if (node_store_id_to_bin(p->id, strlen(p->id), op.key) != 0) {
        node_store_set_error("lmdb replace: malformed id");
        return BL_ENOTFOUND;
    }
    op.post = p;
    op.expected = expected_version;
    rc = wop_submit(s, &op);
    if (rc == 0) {
        p->version = op.version;
        p->created_ms = op.created_ms;
    }
    return rc;
}

static int
lmdb_remove(struct node_store *base, const char *id, uint64_t expected_version)
{
    struct lmdb_store *s = (struct lmdb_store *)base;
    struct lmdb_wop op = { .kind = LMDB_WOP_REMOVE, .klen = NODE_ID_BIN_LEN };

    if (id == NULL || node_store_id_to_bin(id, strlen(id), op.key) != 0) {
        node_store_set_error("lmdb remove: malformed id");
        return BL_ENOTFOUND;
    }
    op.expected = expected_version;
    return wop_submit(s, &op);
}

/* ---- assets ---- */

static void
sha_to_bin(const char *hex, uint8_t out[LMDB_SHA_BIN])
{
    size_t i;

    for (i = 0; i < LMDB_SHA_BIN; i++) {
        unsigned hi = (unsigned)(hex[2 * i] <= '9' ? hex[2 * i] - '0' : hex[2 * i] - 'a' + 10);
        unsigned lo = (unsigned)(hex[2 * i + 1] <= '9' ? hex[2 * i + 1] - '0'
                                                       : hex[2 * i + 1] - 'a' + 10);

        out[i] = (uint8_t)(hi << 4 | lo);
    }
}

/* Reads the asset metadata of <key>. 0, BL_ENOTFOUND or another BL_E* code. */
static int
asset_meta(struct lmdb_store *s, MDB_val *key, char *ctype, size_t ctype_cap, uint64_t *size)
{
    MDB_txn *txn;
    MDB_val val;
    int rc;

    rc = rtxn_get(s, &txn);
    if (rc != 0) {
        return rc;
    }
    rc = mdb_get(txn, s->assets, key, &val);
    if (rc == 0) {
        const uint8_t *b = val.mv_data;
        size_t tlen;
        uint64_t v = 0;
        int i;

        if (val.mv_size < 8 || val.mv_size - 8 >= ctype_cap) {
            node_store_set_error("lmdb: asset metadata is malformed");
            rc = BL_EUNAVAIL;
        } else {
            for (i = 0; i < 8; i++) {
                v = v << 8 | b[i];
            }
            tlen = val.mv_size - 8;
            memcpy(ctype, b + 8, tlen);
            ctype[tlen] = '\0';
            *size = v;
        }
    } else {
        rc = map_rc(rc, "asset get");
    }
    rtxn_put(s, txn);
    return rc;
}

/* Copies exactly <size> bytes of <src> into <dst>. 0, BL_EINVAL (short source) or -errno. */
static int
copy_fd(int src, int dst, uint64_t size)
{
    uint64_t done = 0;
    bool use_cfr = true;
    char buf[65536];

    while (done < size) {
        size_t want = (size_t)BL_MIN(size - done, (uint64_t)(1u << 30));
        ssize_t n;

        if (use_cfr) {
            n = copy_file_range(src, NULL, dst, NULL, want, 0);
            if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL
                          || errno == EOPNOTSUPP)) {
                use_cfr = false;
                continue;
            }
        } else {
            n = read(src, buf, BL_MIN(want, sizeof(buf)));
            if (n > 0) {
                ssize_t off = 0;

                while (off < n) {
                    ssize_t w = write(dst, buf + off, (size_t)(n - off));

                    if (w < 0) {
                        if (errno == EINTR) {
                            continue;
                        }
                        return -errno;
                    }
                    off += w;
                }
            }
        }
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        if (n == 0) {
            return BL_EINVAL;           /* source shorter than announced */
        }
        done += (uint64_t)n;
    }
    return 0;
}

static int
lmdb_asset_put(struct node_store *base, const char *sha256, const char *content_type,
               const char *path, uint64_t size)
{
    struct lmdb_store *s = (struct lmdb_store *)base;
    uint8_t kbin[LMDB_SHA_BIN];
    MDB_val key = { LMDB_SHA_BIN, kbin };
    char dir[PATH_MAX], final[PATH_MAX], tmp[PATH_MAX];
    char ctype[128];
    uint8_t meta[8 + 128];
    uint64_t stored_size;
    size_t tlen;
    struct stat st;
    struct lmdb_wop op = { .kind = LMDB_WOP_ASSET };
    int src = -1, dst = -1;
    bool tmp_made = false;
    int rc, i;

    if (sha256 == NULL || !node_store_valid_sha256(sha256, strlen(sha256))) {
        node_store_set_error("lmdb asset put: malformed sha256");
        return BL_EINVAL;
    }
    tlen = content_type != NULL ? strlen(content_type) : 0;
    if (tlen == 0 || tlen >= sizeof(ctype)) {
        node_store_set_error("lmdb asset put: content type empty or longer than 127 bytes");
        return BL_EINVAL;
    }
    if (s->readonly) {
        node_store_set_error("lmdb: %s", s->ro_reason);
        return BL_EUNAVAIL;
    }
    sha_to_bin(sha256, kbin);
    if ((size_t)snprintf(dir, sizeof(dir), "%s/%.2s", s->assets_dir, sha256) >= sizeof(dir)
        || (size_t)snprintf(final, sizeof(final), "%s/%s", dir, sha256) >= sizeof(final)) {
        node_store_set_error("lmdb asset put: path too long");
        return BL_EINVAL;
    }

    /* Same bytes, same id: a stored asset with its file in place is a success. */
    rc = asset_meta(s, &key, ctype, sizeof(ctype), &stored_size);
    if (rc == 0 && stat(final, &st) == 0 && (uint64_t)st.st_size == stored_size) {
        return 0;
    }
    if (rc != 0 && rc != BL_ENOTFOUND) {
        return rc;
    }

    if (mkdir(dir, 0750) == 0) {
        if ((rc = fsync_dir(s->assets_dir)) != 0) {
            return map_errno(-rc, "fsync", s->assets_dir);
        }
    } else if (errno != EEXIST) {
        return map_errno(errno, "mkdir", dir);
    }
    src = open(path, O_RDONLY | O_CLOEXEC);
    if (src < 0) {
        node_store_set_error("lmdb asset put: cannot open source %s: %s", path, strerror(errno));
        return errno == ENOENT ? BL_EINVAL : BL_EUNAVAIL;
    }
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s/.tmp-%ld-%u-%s", dir, (long)getpid(),
                         atomic_fetch_add(&s->tmp_seq, 1), sha256) >= sizeof(tmp)) {
        node_store_set_error("lmdb asset put: path too long");
        rc = BL_EINVAL;
        goto fail;
    }
    dst = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (dst < 0) {
        rc = map_errno(errno, "create", tmp);
        goto fail;
    }
    tmp_made = true;
    rc = copy_fd(src, dst, size);
    if (rc == BL_EINVAL) {
        node_store_set_error("lmdb asset put: %s is shorter than %llu bytes", path,
                             (unsigned long long)size);
        goto fail;
    } else if (rc != 0) {
        rc = map_errno(-rc, "write", tmp);
        goto fail;
    }
    if (fsync(dst) != 0) {
        rc = map_errno(errno, "fsync", tmp);
        goto fail;
    }
    if (close(dst) != 0) {
        dst = -1;
        rc = map_errno(errno, "close", tmp);
        goto fail;
    }
    dst = -1;
    close(src);
    src = -1;
    if (rename(tmp, final) != 0) {
        rc = map_errno(errno, "rename", tmp);
        goto fail;
    }
    tmp_made = false;
    if ((rc = fsync_dir(dir)) != 0) {
        return map_errno(-rc, "fsync", dir);
    }

    /* The file is durable; now make it visible. */
    for (i = 0; i < 8; i++) {
        meta[i] = (uint8_t)(size >> (56 - 8 * i));
    }
    memcpy(meta + 8, content_type, tlen);
    memcpy(op.key, kbin, LMDB_SHA_BIN);
    op.klen = LMDB_SHA_BIN;
    op.val = meta;
    op.vlen = 8 + tlen;
    return wop_submit(s, &op);      /* same bytes stored first by another writer: 0 */

fail:
    if (dst >= 0) {
        close(dst);
    }
    if (src >= 0) {
        close(src);
    }
    if (tmp_made) {
        unlink(tmp);
    }
    return rc;
}

static int
lmdb_asset_get(struct node_store *base, const char *sha256, struct node_asset *out)
{
    struct lmdb_store *s = (struct lmdb_store *)base;
    uint8_t kbin[LMDB_SHA_BIN];
    MDB_val key = { LMDB_SHA_BIN, kbin };
    char final[PATH_MAX];
    struct stat st;
    int rc, fd;

    memset(out, 0, sizeof(*out));
    out->fd = -1;
    if (sha256 == NULL || !node_store_valid_sha256(sha256, strlen(sha256))) {
        node_store_set_error("lmdb asset get: malformed sha256");
        return BL_ENOTFOUND;
    }
    sha_to_bin(sha256, kbin);
    rc = asset_meta(s, &key, out->content_type, sizeof(out->content_type), &out->size);
    if (rc != 0) {
        return rc;
    }
    snprintf(final, sizeof(final), "%s/%.2s/%s", s->assets_dir, sha256, sha256);
    fd = open(final, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = errno == ENOENT ? BL_ENOTFOUND : map_errno(errno, "open", final);
        if (rc == BL_ENOTFOUND) {
            node_store_set_error("lmdb asset get: %s has metadata but no file", sha256);
        }
        return rc;
    }
    if (fstat(fd, &st) != 0 || (uint64_t)st.st_size != out->size) {
        node_store_set_error("lmdb asset get: %s has %lld bytes, metadata says %llu", final,
                             (long long)st.st_size, (unsigned long long)out->size);
        close(fd);
        return BL_EUNAVAIL;
    }
    memcpy(out->sha256, sha256, NODE_SHA256_HEX_LEN + 1);
    out->fd = fd;
    return 0;
}

/* ---- health ---- */

static int
health_check(struct lmdb_store *s, char *err, size_t errcap)
{
    MDB_txn *txn;
    char probe[PATH_MAX];
    int dead = 0, rc, fd;

    rc = rtxn_get(s, &txn);
    if (rc != 0) {
        snprintf(err, errcap, "%s", node_store_last_error());
        return rc;
    }
    rtxn_put(s, txn);
    mdb_reader_check(s->env, &dead);
    if (s->readonly) {
        snprintf(err, errcap, "%s", s->ro_reason);
        return BL_EUNAVAIL;
    }
    snprintf(probe, sizeof(probe), "%s/.health-%ld", s->path, (long)getpid());
    fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) {
        snprintf(err, errcap, "lmdb: data directory %s is not writable: %s", s->path,
                 strerror(errno));
        return errno == ENOSPC || errno == EDQUOT ? BL_EFULL : BL_EUNAVAIL;
    }
    close(fd);
    unlink(probe);
    return 0;
}

static int
lmdb_health(struct node_store *base)
{
    struct lmdb_store *s = (struct lmdb_store *)base;
    uint64_t now = mono_ms();
    int rc;

    pthread_mutex_lock(&s->health_mu);
    if (s->health_at_ms == 0 || now - s->health_at_ms >= LMDB_HEALTH_CACHE_MS) {
        s->health_err[0] = '\0';
        s->health_rc = health_check(s, s->health_err, sizeof(s->health_err));
        s->health_at_ms = now;
    }
    rc = s->health_rc;
    if (rc != 0) {
        node_store_set_error("%s", s->health_err);
    }
    pthread_mutex_unlock(&s->health_mu);
    return rc;
}

const struct node_store_ops node_store_lmdb_ops = {
    .name = "lmdb",
    .open = lmdb_open,
    .close = lmdb_close,
    .get = lmdb_get,
    .list = lmdb_list,
    .insert = lmdb_insert,
    .replace = lmdb_replace,
    .remove = lmdb_remove,
    .asset_put = lmdb_asset_put,
    .asset_get = lmdb_asset_get,
    .health = lmdb_health,
};
