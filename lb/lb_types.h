#ifndef LB_TYPES_H
#define LB_TYPES_H

/*
 * The structs of blog-lb that reference each other (process, worker, client connection,
 * backend connection, node, routing state), types only (STYLE rule 7). Prototypes live
 * in lb_worker.h, lb_conn.h, lb_backend.h, lb_state.h, ...
 *
 * Threads: one control thread (main: signals, admin listener, health checks, state
 * publication) and lb.workers worker threads, each with its own ev_loop. Fields are
 * marked with who writes them: [ctl] control thread only, [w] the owning worker only,
 * [atomic] any thread through C11 atomics.
 */

#include <ev.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "lb_chunked.h"
#include "lb_http.h"

struct bl_conf;
struct bl_maglev;
struct lb_algo_ops;
struct lb_health;
struct lb_admin;
struct lb_ratelimit;
struct ssl_st;
struct ssl_ctx_st;

/* Routes of the public API (lb_route.c). */
enum lb_route {
    LB_ROUTE_NONE = 0,      /* outside the public API: 404 from the LB */
    LB_ROUTE_POST_ID,       /* /posts/{id} */
    LB_ROUTE_POSTS,         /* /posts */
    LB_ROUTE_ASSET_ID,      /* /assets/{id} */
    LB_ROUTE_ASSETS,        /* /assets */
    LB_ROUTE__COUNT
};

/*
 * One backend node (nodes[] entry). Lives as long as the process: a node removed by a
 * reload is only marked removed (pooled connections, queued requests and old snapshots
 * may still point at it).
 */
struct lb_node {
    uint32_t id;                        /* unique, never reused: slot in lb_worker.wnodes */
    char *name;                         /* nodes[].name (the Maglev key) */
    char *addr;                         /* nodes[].addr "HOST:PORT" */
    struct sockaddr_storage sa;         /* parsed addr */
    socklen_t salen;
    uint32_t weight;                    /* nodes[].weight */
    _Atomic int64_t inflight;           /* [atomic] requests assigned (queued or running) */
    _Atomic int64_t queued;             /* [atomic] requests waiting in worker queues */
    _Atomic int64_t conns;              /* [atomic] open backend connections */
    _Atomic uint64_t ejections;         /* [atomic] passive + active transitions to down */
    _Atomic uint64_t retries;           /* [atomic] failed attempts on this node retried elsewhere */
    _Atomic uint64_t failures;          /* [atomic] connect errors, resets, timeouts */
    _Atomic int eject_req;              /* [atomic] a worker saw a failure: control ejects */
    _Atomic int removed;                /* [atomic] dropped by a reload or the admin API */
    _Atomic int draining;               /* [atomic] admin drain: no new requests/connections */
    _Atomic uint64_t requests;          /* [atomic] requests assigned so far (admin rate) */
    /* admin, [ctl] */
    bool from_admin;                    /* added through POST /nodes (survives reloads) */
    uint64_t rps_last;                  /* requests at the last rate sample */
    double rps;                         /* requests per second over the last sample */
    /* health, [ctl] */
    bool up;                            /* current health */
    bool confirmed;                     /* at least one active check completed */
    uint32_t ok_streak;                 /* consecutive successful checks */
    uint32_t fail_streak;               /* consecutive failed checks */
};

/*
 * The routing state: an immutable snapshot published with an atomic pointer swap
 * (lb_state.c explains the grace period). Workers read it without locks.
 */
struct lb_state {
    uint64_t gen;                       /* publication number, 1, 2, ... */
    uint32_t nnodes;
    struct lb_node **nodes;             /* index = position in the Maglev name list */
    uint32_t max_id;                    /* 1 + the largest lb_node.id in nodes */
    uint8_t *up;                        /* per index: 1 healthy */
    uint32_t nup;
    uint32_t *upidx;                    /* the healthy indexes, for p2c / round robin */
    struct lb_ring *ring;               /* Maglev table over ALL nodes (node set only) */
    const struct lb_algo_ops *by_id;    /* balance.by_id */
    const struct lb_algo_ops *other;    /* balance.other */
    double bounded_load;                /* balance.bounded_load, 0 = off */
    struct lb_lsnap *ls;                /* per listener spec id (lb_lspec.id) */
    uint32_t nls;
    /* [ctl] grace period bookkeeping */
    struct lb_state *retired_next;
    uint64_t *retired_qs;               /* worker quiescence counters when retired */
};

/* What a snapshot says about one listener spec: its TLS context (NULL = plain; the
 * snapshot holds a reference) and, for mode: tcp, its balance (enum bl_conf_balance). */
struct lb_lsnap {
    struct ssl_ctx_st *tls;
    int balance;
};

/* A listener of the configuration, process-wide. [ctl] */
struct lb_lspec {
    uint32_t id;                        /* index in p->lspecs, never reused */
    char *bind;
    int mode;                           /* enum bl_conf_mode */
    int balance;                        /* enum bl_conf_balance (tcp) */
    struct ssl_ctx_st *tls;             /* current context, NULL = plain; one reference */
    int active;                         /* in the current file */
    struct lb_listener **wl;            /* per worker: its listener for this spec */
};

/* A Maglev table shared by the snapshots of one node set. [ctl] refcount. */
struct lb_ring {
    struct bl_maglev *maglev;
    uint32_t refs;
};

/* Per worker and node: keep-alive pool, connection cap and FIFO queue. [w] */
struct lb_wnode {
    struct lb_node *node;
    struct lb_bconn *idle;              /* idle pooled connections, most recent first */
    uint32_t nidle;
    uint32_t nconns;                    /* open connections (idle, busy, connecting) */
    struct lb_conn *qhead;              /* requests waiting for a connection */
    struct lb_conn *qtail;
    uint32_t qlen;
    int64_t inflight;                   /* this worker's share of node->inflight */
};

/* A pending-output stash, used only when a write could not take everything. */
struct lb_pend {
    char *buf;
    uint32_t len;                       /* bytes stored */
    uint32_t off;                       /* bytes already written */
    uint32_t cap;
};

/* A connection to a node. */
struct lb_bconn {
    ev_io io;                           /* READ always (EOF detection while pooled) */
    int fd;
    struct lb_worker *w;
    struct lb_wnode *wn;
    struct lb_conn *c;                  /* client being served, NULL when pooled */
    struct lb_bconn *next;              /* idle list */
    ev_tstamp idle_since;
    uint32_t nreq;                      /* requests sent on it (reused when > 0 before one) */
    uint8_t connecting;                 /* connect() in progress */
    uint8_t mask;                       /* events currently watched */
};

/* Client connection state machine (lb_conn.c drive()). */
enum lb_conn_state {
    LB_CS_IDLE = 0,                     /* keep-alive: no byte of the next request yet */
    LB_CS_HEAD,                         /* reading the request head (header_timeout) */
    LB_CS_QUEUED,                       /* waiting for a node connection (queue_timeout) */
    LB_CS_CONNECT,                      /* node connect in progress (connect_timeout) */
    LB_CS_BODY,                         /* forwarding the request body (body_timeout) */
    LB_CS_RESP_HEAD,                    /* waiting for the response head (response_timeout) */
    LB_CS_RESP_BODY,                    /* streaming the response body (response_timeout) */
    LB_CS_CLOSING,                      /* flushing a last response, then close */
};

struct lb_conn {
    ev_io io;                           /* client socket */
    ev_timer tmr;                       /* lazy deadline timer (lb_conn.c) */
    int fd;
    enum lb_conn_state state;
    struct lb_worker *w;
    struct lb_listener *l;
    struct lb_conn *lnext, *lprev;      /* worker's list of client connections */
    ev_tstamp deadline;                 /* when the current state times out */
    ev_tstamp tmr_at;                   /* when tmr fires */
    uint8_t mask;                       /* events currently watched on fd */
    uint8_t ceof;                       /* client shut its write side */
    uint8_t keep;                       /* keep the client connection after this response */
    uint8_t replayable;                 /* the whole request is still in ibuf */
    uint8_t req_done;                   /* request body fully forwarded */
    uint8_t resp_started;               /* a response byte reached the client */
    uint8_t stale_retry;                /* reconnected once after a stale pooled conn */
    uint8_t lingering;                  /* closing: write side shut, draining input */
    uint8_t in_input;                   /* inside process_input() (no recursion) */
    /* request buffer: [ipos, ilen) unconsumed; the current request starts at ipos */
    char *ibuf;
    uint32_t ilen;
    uint32_t ipos;
    uint32_t fwd;                       /* request bytes in ibuf consumed up to here */
    uint32_t hlen;                      /* head length of the current request */
    uint64_t body_left;                 /* Content-Length bytes not yet consumed */
    struct lb_chunked ck;               /* chunked request body */
    struct lb_http_req req;
    /* routing */
    enum lb_route route;
    uint8_t by_id;
    uint8_t attempts;                   /* nodes tried */
    int16_t tried[4];                   /* lb_node.id of the nodes tried */
    uint64_t hash;                      /* id hash */
    struct lb_node *node;               /* node of the last attempt (for the log) */
    struct lb_wnode *wn;                /* node of the current attempt (holds inflight) */
    struct lb_bconn *b;                 /* its connection */
    struct lb_conn *qnext, *qprev;      /* wnode queue */
    /* response */
    char *rbuf;
    uint32_t rlen;
    uint32_t rpos;
    uint64_t resp_left;
    struct lb_chunked rck;
    struct lb_http_resp resp;
    uint16_t status;
    uint64_t bytes_out;                 /* response bytes written to the client */
    struct lb_pend to_c;                /* bytes for the client not yet written */
    struct lb_pend to_b;                /* bytes for the node not yet written */
    /* logging and metrics */
    ev_tstamp t_start;                  /* first byte of the request */
    ev_tstamp t_up;                     /* request sent to the node */
    ev_tstamp t_resp;                   /* response head received */
    char rid[40];                       /* X-Request-Id (ours or the client's, truncated) */
    uint8_t rid_len;
    uint8_t rid_ours;                   /* generated here: add it to the forwarded head */
    char logline[200];                  /* "METHOD target" kept for the access log */
    char cip[48];                       /* client IP text */
    uint8_t cip_len;
    uint8_t tls_wantw;                  /* the TLS layer waits for the socket to be writable */
    struct ssl_st *ssl;                 /* TLS listener: the session, else NULL */
};

/* A listener of a worker (allocated one by one, kept until the worker exits: client
 * connections point at it). */
struct lb_listener {
    ev_io io;
    ev_timer pause;                     /* out of file descriptors: retry accept later */
    int fd;                             /* -1 once closed (stop or reload) */
    int index;                          /* lb.listeners[index] when opened (logs) */
    uint32_t spec;                      /* lb_lspec.id */
    int mode;                           /* enum bl_conf_mode */
    int started;                        /* accepting (worker thread) */
    struct lb_worker *w;
    struct lb_listener *next_change;    /* reload inbox */
    int change_close;                   /* inbox entry: close this one instead of starting */
};

#define LB_METRIC_NBUCKETS 14

/* Per-worker counters: single writer (the worker), read by the control thread. */
struct lb_wmetrics {
    _Atomic uint64_t req[LB_ROUTE__COUNT][500];        /* by route and status 100..599 */
    _Atomic uint64_t dur[LB_ROUTE__COUNT][LB_METRIC_NBUCKETS + 1]; /* non-cumulative */
    _Atomic uint64_t dur_sum_ns[LB_ROUTE__COUNT];
    _Atomic uint64_t retries;
    _Atomic uint64_t retry_denied;                      /* retry budget exhausted */
    _Atomic uint64_t rejected_conns;                    /* over max_client_conns */
};

/* Retry budget: per-second buckets over a 10 s sliding window. [w] */
#define LB_BUDGET_SECS 10
struct lb_budget {
    uint64_t sec;                       /* second of bucket[sec % LB_BUDGET_SECS] */
    uint32_t req[LB_BUDGET_SECS];
    uint32_t ret[LB_BUDGET_SECS];
    uint64_t req_sum;
    uint64_t ret_sum;
};

struct lb_worker {
    struct ev_loop *loop;
    struct lb_proc *p;
    uint32_t id;
    pthread_t thread;
    ev_async wake;                      /* control -> worker: stop, drain */
    ev_prepare prep;                    /* quiescent point (lb_state.c) */
    ev_check chk;                       /* reloads the state snapshot */
    ev_timer sweep;                     /* 1 s: pool idle timeout, drain progress */
    _Atomic uint64_t qs;                /* [atomic] odd = running callbacks, even = idle */
    struct lb_state *st;                /* snapshot for this loop iteration */
    struct lb_listener **ls;            /* every listener ever opened (closed ones too) */
    uint32_t nls;
    pthread_mutex_t lmu;                /* guards linbox */
    struct lb_listener *linbox;         /* control -> worker: listeners to start or close */
    struct lb_tconn *tconns;            /* mode: tcp connections (lb_tcp.c) */
    uint32_t ntconns;
    struct lb_wnode **wnodes;           /* by lb_node.id, allocated on first sight */
    uint32_t nwnodes;
    struct lb_conn *conns;              /* client connections */
    uint32_t nconns;
    uint32_t node_cap;                  /* ceil(node_max_conns / workers) */
    uint32_t queue_cap;                 /* ceil(queue_size / workers) */
    char **ibufs;                       /* free request buffers */
    uint32_t nibufs;
    char **rbufs;                       /* free response buffers */
    uint32_t nrbufs;
    char *scratch;                      /* head rewriting extras */
    uint64_t rng;                       /* xorshift state */
    uint32_t rr;                        /* round-robin cursor */
    uint64_t st_gen;                    /* generation of the last snapshot adopted */
    char rid_next[25];                  /* next X-Request-Id: 8 random hex + 2 hex worker
                                         * id + a 14-hex-digit counter, incremented in place */
    struct lb_budget budget;
    struct lb_wmetrics *m;
    int stopping;                       /* 1 drain, 2 force close */
    ev_tstamp stop_deadline;
};

/* The process. */
struct lb_proc {
    _Atomic(struct bl_conf *) conf;     /* [atomic] current file; replaced by a reload */
    struct bl_conf **old_confs;         /* [ctl] replaced files, freed at exit */
    uint32_t nold_confs;
    struct ev_loop *loop;               /* control loop (default loop) */
    struct lb_worker *workers;
    uint32_t nworkers;
    struct lb_node **nodes;             /* [ctl] current node set, conf->nodes order */
    uint32_t nnodes;
    struct lb_node **all_nodes;         /* [ctl] every node ever created (freed at exit) */
    uint32_t nall_nodes;
    const char *conf_path;              /* reloaded on SIGHUP */
    struct lb_lspec *lspecs;            /* [ctl] every listener spec ever configured */
    uint32_t nlspecs;
    ev_timer tkrot;                     /* TLS session ticket key rotation */
    _Atomic(struct lb_state *) state;   /* current snapshot */
    struct lb_state *retired;           /* [ctl] snapshots waiting for their grace period */
    uint64_t gen;                       /* [ctl] last published generation */
    struct lb_ring *ring;               /* [ctl] current Maglev table */
    _Atomic int64_t inflight_total;     /* [atomic] sum of node inflight */
    _Atomic int64_t nclients;           /* [atomic] open client connections */
    _Atomic int stopping;               /* [atomic] SIGTERM received */
    ev_async wake;                      /* workers -> control: ejections, worker exit */
    ev_timer reclaim;                   /* frees retired snapshots */
    struct lb_health *health;
    struct lb_admin *admin;
    struct lb_ratelimit *ratelimit;     /* limits.rate_per_ip, NULL = off */
    struct lb_http_limits lim;          /* request parser limits */
    struct lb_http_limits rlim;         /* response parser limits */
    /* timeouts in seconds, [atomic]: a reload changes them for new deadlines */
    _Atomic double t_header, t_body, t_connect, t_response, t_idle, t_queue;
    uint32_t ibuf_size;
    uint32_t rbuf_size;
    _Atomic uint32_t workers_running;
};

#endif /* LB_TYPES_H */
