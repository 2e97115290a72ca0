#ifndef BL_LOAD_H
#define BL_LOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A bounded HTTP load generator for the fault tests and the soak (libcurl multi, one
 * thread). It drives a mix of GET /posts/{id}, PUT, POST, DELETE and GET /posts through
 * one base URL (normally the LB), keeps a model of every post it touched, and records the
 * outcome of every request, so a test can assert exact results afterwards:
 *
 *  - ids are exclusive: at most one request per post is in flight, so each answer can be
 *    checked against the model (a GET must show at least the version last acknowledged
 *    before it was sent; a deleted post must be 404; a live one must not be 404);
 *  - the one exception is the cross-node window of docs/CONSISTENCY.md (guarantee 2): a
 *    GET answered by a node OTHER than the one that acknowledged a write, sent less than
 *    lag_ms after that acknowledgement, may show the version before it (the write's
 *    invalidation is still on its way to that node). Such a read is OK but counted as
 *    "lagged" (bl_load_stats .lagged, record .lagged); the same answer from the
 *    acknowledging node, or later than lag_ms, is STALE;
 *  - every POST carries a unique title "<tag>-<seq>", so a post that was stored although
 *    its POST failed (response lost) is found by bl_load_verify();
 *  - it stops by itself after duration_ms (or bl_load_stop()).
 */

enum bl_load_op {
    BL_LOAD_GET = 0,                    /* GET /posts/{id} */
    BL_LOAD_PUT,
    BL_LOAD_POST,
    BL_LOAD_DELETE,
    BL_LOAD_LIST,                       /* GET /posts?limit=20 */
    BL_LOAD_NOPS
};

enum bl_load_class {
    BL_LOAD_OK = 0,                     /* expected status and content */
    BL_LOAD_FAIL,                       /* transport error or an error status */
    BL_LOAD_STALE                       /* 2xx/404 contradicting an acknowledged write */
};

struct bl_load_opts {
    const char *url;                    /* base URL, e.g. "http://127.0.0.1:8080" */
    const char *token;                  /* write bearer token */
    int conns;                          /* requests in flight at once (default 8) */
    int rate;                           /* requests/s over all connections; 0 = no pacing */
    int duration_ms;                    /* run length (default 5000) */
    int w_get, w_put, w_post, w_delete, w_list;     /* mix weights (all 0: 70/15/10/2/3) */
    int seed_posts;                     /* posts created (sequentially) by bl_load_seed() */
    int timeout_ms;                     /* per request (default 10000) */
    uint32_t seed;                      /* PRNG seed */
    const char *tag;                    /* POST title prefix, unique per run (default "load") */
    int body_bytes;                     /* post body size (default 200) */
    bool fresh_conns;                   /* a new TCP connection for every request */
    int lag_ms;                         /* cross-node window (see above); 0 = default
                                           BL_LOAD_LAG_MS, < 0 = none (strict) */
};

#define BL_LOAD_LAG_MS 100              /* generous bound of the invalidation delay */

struct bl_load_rec {
    uint64_t t0_us, t1_us;              /* CLOCK_MONOTONIC, µs (bl_load_mono_us) */
    uint8_t op;                         /* enum bl_load_op */
    uint8_t cls;                        /* enum bl_load_class */
    bool lagged;                        /* OK only through the cross-node window */
    uint16_t status;                    /* HTTP status, 0 = transport error */
    int32_t post;                       /* model index (-1: list, failed POST) */
    uint32_t version;                   /* version in the answer (0 = none) */
    char node[12];                      /* X-Blog-Node */
    char xcache[8];                     /* X-Cache (HIT/MISS; "" when absent) */
    char code[28];                      /* error code of the JSON body, or curl's error */
    /* GET/PUT/DELETE: the model when the request was sent - the version last acknowledged
     * (a lower bound), which node acknowledged it (X-Blog-Node) and when (0: seeding) */
    uint32_t acked;
    uint64_t ack_us;
    char ack_node[12];
};

/* Per-op outcome counts. */
struct bl_load_stats {
    long n[BL_LOAD_NOPS][3];            /* [op][class] */
    long total, ok, fail, stale;
    long delete_404;                    /* DELETE answered 404 (already gone: a retried DELETE) */
    long lagged;                        /* GETs OK only through the cross-node window */
};

/* Result of bl_load_verify(). */
struct bl_load_check {
    long checked;                       /* posts of the model read back */
    long missing;                       /* acknowledged and live, but 404 */
    long old_version;                   /* live, but version below the acknowledged one */
    long resurrected;                   /* acknowledged delete, but 200 */
    long read_errors;                   /* read-back requests that failed */
    long listed;                        /* posts of this run found by the list walk */
    long acked_unlisted;                /* acknowledged POST (not deleted) absent from the list */
    long stored_unacked;                /* failed POST found stored (response lost) */
    long unknown_listed;                /* listed post with our tag that we never sent */
    long failed_posts;                  /* POSTs that failed */
    char first_problem[256];
};

struct bl_load;

/* CLOCK_MONOTONIC in µs (the clock of every record). */
uint64_t bl_load_mono_us(void);

/*
 * Creates a generator (copies <o>'s strings). Returns NULL with *err (static text) on bad
 * options. Does no I/O.
 */
struct bl_load *bl_load_create(const struct bl_load_opts *o, const char **err);

/* Creates opts.seed_posts posts one by one; 0, or -1 when one failed (message on stderr). */
int bl_load_seed(struct bl_load *l);

/* Runs the load in the calling thread until duration_ms passes or bl_load_stop(). 0. */
int bl_load_run(struct bl_load *l);

/* Runs bl_load_run() in a new thread. 0 or -errno. */
int bl_load_start(struct bl_load *l);

/* Asks a running load to stop (thread-safe); its in-flight requests still complete. */
void bl_load_stop(struct bl_load *l);

/* Sets the length of the next run (bl_load_run / bl_load_start) to <ms>. */
void bl_load_set_duration(struct bl_load *l, int ms);

/* Joins the thread of bl_load_start(). */
void bl_load_wait(struct bl_load *l);

/* Counts of every record (or of the records that started in [from_us, to_us) when to_us
 * is not 0). */
void bl_load_stats(const struct bl_load *l, uint64_t from_us, uint64_t to_us,
                   struct bl_load_stats *out);

/*
 * Latency percentile <pct> (0..100) in µs of the OK records of ops in <op_mask>
 * (1 << op) that started in [from_us, to_us) (to_us 0 = no bound); 0 when there are none.
 * <count> (may be NULL) gets how many records were measured.
 */
uint64_t bl_load_pctl(const struct bl_load *l, unsigned op_mask, uint64_t from_us,
                      uint64_t to_us, double pct, long *count);

/* The records so far (valid until the next run or bl_load_destroy). Not thread-safe
 * while a run is going on. */
size_t bl_load_records(const struct bl_load *l, const struct bl_load_rec **out);

/* The post id of model index <i> ("" when none). */
const char *bl_load_post_id(const struct bl_load *l, int32_t i);

/*
 * After the load: reads back every post of the model through <url> (NULL = opts.url) and
 * walks GET /posts with cursors to find every post of this run's tag. Fills <out>.
 * 0, or -1 when the list walk itself failed.
 */
int bl_load_verify(struct bl_load *l, const char *url, struct bl_load_check *out);

/* Prints one line of counts to stderr, prefixed by <label>. */
void bl_load_print(const struct bl_load *l, const char *label);

/* Prints up to <max> FAIL/STALE records to stderr. */
void bl_load_print_failures(const struct bl_load *l, int max);

/* Prints up to <max> records slower than <min_us> to stderr (times from <t0_us>). */
void bl_load_print_slow(const struct bl_load *l, uint64_t min_us, uint64_t t0_us, int max);

void bl_load_destroy(struct bl_load *l);

#endif /* BL_LOAD_H */
