#include "node_store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "bl/bl_err.h"
#include "bl/bl_util.h"

/*
 * The driver table, ObjectId generation and the helpers shared by every driver.
 *
 * Drivers: LMDB is always built (node_store_lmdb.c). The MongoDB driver joins the table
 * when node/node_store_mongo.h exists and declares
 *     extern const struct node_store_ops node_store_mongo_ops;
 * (so this file builds before and after that driver lands).
 */

#if defined(__has_include)
#if __has_include("node_store_mongo.h")
#include "node_store_mongo.h"
#define NODE_STORE_HAVE_MONGO 1
#endif
#endif

static const struct {
    enum bl_conf_store_driver driver;
    const struct node_store_ops *ops;
} drivers[] = {
    { BL_STORE_LMDB, &node_store_lmdb_ops },
#ifdef NODE_STORE_HAVE_MONGO
    { BL_STORE_MONGODB, &node_store_mongo_ops },
#endif
};

static _Thread_local char last_error[512];

const char *
node_store_last_error(void)
{
    return last_error;
}

void
node_store_set_error(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(last_error, sizeof(last_error), fmt, ap);
    va_end(ap);
}

static char *
err_dup(const char *msg)
{
    char *s = strdup(msg);

    return s;
}

/*
 * Opens the driver named by <conf>->driver. On failure returns a negative BL_E* code and
 * sets *err (malloc'ed; NULL only when even that allocation failed).
 */
int
node_store_open_rc(const struct bl_conf_store *conf, struct node_store **out, char **err)
{
    size_t i;
    int rc;

    *out = NULL;
    if (err != NULL) {
        *err = NULL;
    }
    if (conf == NULL) {
        if (err != NULL) {
            *err = err_dup("store: no configuration");
        }
        return BL_EINVAL;
    }
    for (i = 0; i < BL_ARRAY_SIZE(drivers); i++) {
        if (drivers[i].driver != conf->driver) {
            continue;
        }
        rc = drivers[i].ops->open(conf, out, err);
        if (rc == 0 && *out == NULL) {
            rc = BL_EUNAVAIL;
        }
        if (rc != 0 && err != NULL && *err == NULL) {
            char buf[256];

            snprintf(buf, sizeof(buf), "store %s: open failed (%d)", drivers[i].ops->name, rc);
            *err = err_dup(buf);
        }
        return rc;
    }
    if (err != NULL) {
        *err = err_dup(conf->driver == BL_STORE_MONGODB
                       ? "store: driver 'mongodb' is not built into this blog-node"
                       : "store: unknown driver");
    }
    return BL_ECONF;
}

/* Opens the driver named in <conf>->driver. NULL with *err (malloc'ed) on failure. */
struct node_store *
node_store_open(const struct bl_conf_store *conf, char **err)
{
    struct node_store *s = NULL;

    if (node_store_open_rc(conf, &s, err) != 0) {
        return NULL;
    }
    return s;
}

/* Closes <s> (NULL is a no-op): waits for nothing, the caller has stopped using it. */
void
node_store_close(struct node_store *s)
{
    if (s == NULL) {
        return;
    }
    s->ops->close(s);
}

/* Frees what <p> owns and zeroes it; safe on a zeroed or already-deinited post. */
void
node_post_deinit(struct node_post *p)
{
    size_t i;

    if (p == NULL) {
        return;
    }
    free(p->title);
    free(p->body);
    free(p->author);
    if (p->tags != NULL) {
        for (i = 0; i < p->ntags; i++) {
            free(p->tags[i]);
        }
        free(p->tags);
    }
    memset(p, 0, sizeof(*p));
}

/* Frees every post of <l> and the array; safe on a zeroed list. */
void
node_post_list_deinit(struct node_post_list *l)
{
    size_t i;

    if (l == NULL) {
        return;
    }
    if (l->posts != NULL) {
        for (i = 0; i < l->n; i++) {
            node_post_deinit(&l->posts[i]);
        }
        free(l->posts);
    }
    memset(l, 0, sizeof(*l));
}

/* Closes the asset's fd or frees its bytes; safe on a zeroed asset (fd 0 is never ours). */
void
node_asset_deinit(struct node_asset *a)
{
    if (a == NULL) {
        return;
    }
    if (a->fd > 0) {
        close(a->fd);
    }
    free(a->data);
    memset(a, 0, sizeof(*a));
    a->fd = -1;
}

/* ---- ids ---- */

static int
hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

bool
node_store_valid_id(const char *s, size_t len)
{
    size_t i;

    if (s == NULL || len != NODE_ID_LEN) {
        return false;
    }
    for (i = 0; i < len; i++) {
        if (hexval((unsigned char)s[i]) < 0) {
            return false;
        }
    }
    return true;
}

bool
node_store_valid_sha256(const char *s, size_t len)
{
    size_t i;

    if (s == NULL || len != NODE_SHA256_HEX_LEN) {
        return false;
    }
    for (i = 0; i < len; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return false;
        }
    }
    return true;
}

int
node_store_id_to_bin(const char *hex, size_t len, uint8_t out[NODE_ID_BIN_LEN])
{
    size_t i;

    if (!node_store_valid_id(hex, len)) {
        return BL_EINVAL;
    }
    for (i = 0; i < NODE_ID_BIN_LEN; i++) {
        out[i] = (uint8_t)(hexval((unsigned char)hex[2 * i]) << 4
                           | hexval((unsigned char)hex[2 * i + 1]));
    }
    return 0;
}

void
node_store_id_from_bin(const uint8_t bin[NODE_ID_BIN_LEN], char out[NODE_ID_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < NODE_ID_BIN_LEN; i++) {
        out[2 * i] = digits[bin[i] >> 4];
        out[2 * i + 1] = digits[bin[i] & 0xf];
    }
    out[NODE_ID_LEN] = '\0';
}

uint32_t
node_store_id_seconds(const uint8_t bin[NODE_ID_BIN_LEN])
{
    return (uint32_t)bin[0] << 24 | (uint32_t)bin[1] << 16 | (uint32_t)bin[2] << 8 | bin[3];
}

/*
 * ObjectId state of this process. Under id_mu: the 5 random bytes (regenerated when the
 * pid changes, i.e. in a forked child), the last seconds value and the 24-bit counter.
 * Keeping (seconds, counter) together under one lock makes ids strictly increasing within
 * a process: a counter wrap inside one second, or a clock stepping backwards, moves the
 * seconds field forward instead of going back.
 */
static pthread_mutex_t id_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t id_once = PTHREAD_ONCE_INIT;
static pid_t id_pid;
static uint8_t id_rand[5];
static uint32_t id_counter;
static uint32_t id_last_sec;

static void
fill_random(void *buf, size_t n)
{
    uint8_t *p = buf;
    size_t got = 0;

    while (got < n) {
        ssize_t r = getrandom(p + got, n - got, 0);

        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }
        got += (size_t)r;
    }
    if (got < n) {
        /* No getrandom (very old kernel): mix clock and pid; uniqueness, not secrecy. */
        struct timespec ts;
        uint64_t x;
        size_t i;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        x = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)ts.tv_sec
            ^ ((uint64_t)getpid() << 32);
        for (i = got; i < n; i++) {
            x ^= x >> 33;
            x *= 0xff51afd7ed558ccdull;
            p[i] = (uint8_t)(x >> 56);
        }
    }
}

static void
id_prepare(void)
{
    pthread_mutex_lock(&id_mu);
}

static void
id_parent(void)
{
    pthread_mutex_unlock(&id_mu);
}

static void
id_child(void)
{
    /* Force a fresh random part and counter in the child. */
    id_pid = 0;
    pthread_mutex_unlock(&id_mu);
}

static void
id_init_once(void)
{
    pthread_atfork(id_prepare, id_parent, id_child);
}

/*
 * Writes a new ObjectId as 24 lowercase hex digits. Thread-safe and fork-safe. Ids of one
 * process are strictly increasing; ids of different processes made within the same
 * second may interleave (they differ in the random part).
 */
void
node_store_new_id(char out[NODE_ID_LEN + 1])
{
    uint8_t bin[NODE_ID_BIN_LEN];
    pid_t pid = getpid();
    uint32_t now = (uint32_t)time(NULL);
    uint32_t sec, ctr;

    pthread_once(&id_once, id_init_once);
    pthread_mutex_lock(&id_mu);
    if (id_pid != pid) {
        uint8_t r[8];

        fill_random(r, sizeof(r));
        memcpy(id_rand, r, sizeof(id_rand));
        id_counter = ((uint32_t)r[5] << 16 | (uint32_t)r[6] << 8 | r[7]) & 0xffffff;
        id_last_sec = 0;
        id_pid = pid;
    }
    id_counter = (id_counter + 1) & 0xffffff;
    if (now > id_last_sec) {
        id_last_sec = now;
    } else if (id_counter == 0) {
        /* Counter wrapped within one second: borrow the next second to stay increasing. */
        id_last_sec++;
    }
    sec = id_last_sec;
    ctr = id_counter;
    memcpy(bin + 4, id_rand, 5);
    pthread_mutex_unlock(&id_mu);

    bin[0] = (uint8_t)(sec >> 24);
    bin[1] = (uint8_t)(sec >> 16);
    bin[2] = (uint8_t)(sec >> 8);
    bin[3] = (uint8_t)sec;
    bin[9] = (uint8_t)(ctr >> 16);
    bin[10] = (uint8_t)(ctr >> 8);
    bin[11] = (uint8_t)ctr;
    node_store_id_from_bin(bin, out);
}
