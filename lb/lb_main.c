/*
 * blog-lb: the L7 load balancer of blogscale.
 *
 *   blog-lb --config FILE [--check-config] [--version] [--help]
 *
 * Threads: this one (the control thread: signals, admin listener, health checks, routing
 * state publication) and lb.workers workers (lb_worker.c). Readiness: one JSON log line
 * "listening" per listener once every worker holds its socket.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "bl/bl_conf.h"
#include "bl/bl_err.h"
#include "bl/bl_log.h"
#include "bl/bl_sdnotify.h"
#include "bl/bl_util.h"
#include "lb_admin.h"
#include "lb_algo.h"
#include "lb_backend.h"
#include "lb_health.h"
#include "lb_ratelimit.h"
#include "lb_reload.h"
#include "lb_state.h"
#include "lb_tls.h"
#include "lb_types.h"
#include "lb_worker.h"

static void
usage(FILE *f)
{
    fprintf(f,
            "usage: blog-lb --config FILE [--check-config] [--version] [--help]\n"
            "  -c, --config FILE   cluster file (default $BLOGSCALE_CONFIG or %s)\n"
            "      --check-config  validate the file and exit 0 (valid) or 1\n"
            "      --version       print the version\n"
            "  SIGTERM/SIGINT: stop accepting, finish in-flight requests (lb.shutdown_timeout)\n",
            BL_CONF_DEFAULT_PATH);
}

/* SIGHUP: the same reload as POST /reload (lb_reload.c). */
static void
reload(struct lb_proc *p)
{
    struct lb_reload_result res;

    (void)lb_reload(p, &res);
    lb_reload_result_clear(&res);
}

/* systemd Type=notify (packaging/systemd/blog-lb.service); a no-op outside systemd. */
static void
notify(const char *state)
{
    int rc = bl_sdnotify(state);

    if (rc < 0) {
        bl_log(BL_LOG_WARN, "sd_notify %s: %s", state, strerror(-rc));
    }
}

static void
on_signal(struct ev_loop *loop, ev_signal *s, int revents)
{
    struct lb_proc *p = ev_userdata(loop);

    (void)revents;
    if (s->signum == SIGHUP) {
        if (atomic_load(&p->stopping) == 0) {
            notify("RELOADING=1");
            reload(p);
            notify("READY=1");
        }
        return;
    }
    if (atomic_load(&p->stopping) == 0) {
        bl_logf(BL_LOG_INFO,
                ((struct bl_log_field[]){
                    BL_LOG_UINT("timeout_ms", p->conf->lb.shutdown_timeout_ms),
                    BL_LOG_INT("clients", atomic_load(&p->nclients)) }),
                2, "shutting down: draining in-flight requests");
        notify("STOPPING=1");
        atomic_store(&p->stopping, 1);
        for (uint32_t i = 0; i < p->nworkers; i++) {
            lb_worker_stop(&p->workers[i], 0);
        }
        ev_feed_event(loop, &p->wake, EV_ASYNC);
    } else {
        bl_log(BL_LOG_WARN, "second signal: closing every connection now");
        atomic_store(&p->stopping, 2);
        for (uint32_t i = 0; i < p->nworkers; i++) {
            lb_worker_stop(&p->workers[i], 1);
        }
    }
}

static ev_timer shutdown_timer;

static void
on_shutdown_timeout(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct lb_proc *p = ev_userdata(loop);

    (void)t;
    (void)revents;
    bl_log(BL_LOG_WARN, "shutdown timeout: closing the remaining connections");
    atomic_store(&p->stopping, 2);
    for (uint32_t i = 0; i < p->nworkers; i++) {
        lb_worker_stop(&p->workers[i], 1);
    }
}

static void
on_wake(struct ev_loop *loop, ev_async *a, int revents)
{
    struct lb_proc *p = ev_userdata(loop);

    (void)a;
    (void)revents;
    lb_health_passive(p->health);
    if (atomic_load(&p->stopping) && !ev_is_active(&shutdown_timer) &&
        atomic_load(&p->stopping) == 1) {
        ev_timer_init(&shutdown_timer, on_shutdown_timeout,
                      (double)atomic_load(&p->conf)->lb.shutdown_timeout_ms / 1000.0, 0.);
        ev_timer_start(loop, &shutdown_timer);
    }
    if (atomic_load(&p->workers_running) == 0) {
        ev_break(loop, EVBREAK_ALL);
    }
}

static void
on_reclaim(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)t;
    (void)revents;
    lb_state_reclaim(ev_userdata(loop), 0);
}

static void
on_ticket_rotate(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)t;
    (void)revents;
    lb_tls_rotate_keys();
}

static double
ms_to_s(uint64_t ms)
{
    return (double)ms / 1000.0;
}

static int
run(struct bl_conf *conf, const char *path)
{
    struct lb_proc proc, *p = &proc;
    const struct bl_conf_lb *lb = &conf->lb;
    struct lb_node **nodes = NULL;
    ev_signal sig_term, sig_int, sig_hup;
    int rc = 1, err = 0;
    uint32_t started = 0;

    memset(p, 0, sizeof(*p));
    p->conf = conf;
    p->conf_path = path;
    p->loop = ev_default_loop(EVBACKEND_EPOLL | EVFLAG_NOENV);
    if (p->loop == NULL) {
        bl_log(BL_LOG_ERROR, "cannot create the control loop");
        return 1;
    }
    ev_set_userdata(p->loop, p);
    p->nworkers = bl_conf_auto_threads(lb->workers);
    p->t_header = ms_to_s(lb->limits.header_timeout_ms);
    p->t_body = ms_to_s(lb->limits.body_timeout_ms);
    p->t_connect = ms_to_s(lb->limits.connect_timeout_ms);
    p->t_response = ms_to_s(lb->limits.response_timeout_ms);
    p->t_idle = ms_to_s(lb->limits.idle_timeout_ms);
    p->t_queue = ms_to_s(lb->limits.queue_timeout_ms);
    lb_http_limits_default(&p->lim);
    p->lim.max_head = BL_MIN(lb->limits.max_header_bytes, LB_HTTP_MAX_HEAD_CAP);
    if (p->lim.max_head < 1024) {
        p->lim.max_head = 1024;
    }
    p->lim.max_line = BL_MIN(p->lim.max_line, p->lim.max_head);
    p->lim.max_headers = BL_MIN(lb->limits.max_headers, LB_HTTP_MAX_HEADERS);
    p->lim.max_body = lb->limits.max_body;
    lb_http_limits_default(&p->rlim);
    p->rlim.max_head = LB_HTTP_MAX_HEAD_CAP;
    p->rlim.max_line = LB_HTTP_MAX_HEAD_CAP;
    p->rlim.max_headers = LB_HTTP_MAX_HEADERS;
    p->rlim.max_body = 0;
    p->ibuf_size = BL_MAX(p->lim.max_head, 16384u);
    p->rbuf_size = 32768;

    {
        char lerr[1024];
        if (lb_listeners_init(p, lerr, sizeof(lerr)) < 0) {
            bl_log(BL_LOG_ERROR, "%s", lerr);
            fprintf(stderr, "blog-lb: %s\n", lerr);
            goto out;
        }
    }
    p->nnodes = (uint32_t)conf->nnodes;
    p->nodes = bl_xcalloc(p->nnodes ? p->nnodes : 1, sizeof(*p->nodes));
    nodes = p->nodes;
    for (uint32_t i = 0; i < p->nnodes; i++) {
        p->nodes[i] = lb_nodes_new(p, conf->nodes[i].name, conf->nodes[i].addr,
                                   conf->nodes[i].weight ? conf->nodes[i].weight : 1);
        if (p->nodes[i] == NULL) {
            bl_log(BL_LOG_ERROR, "node %s: bad address %s", conf->nodes[i].name,
                   conf->nodes[i].addr);
            goto out;
        }
    }
    p->ring = lb_ring_create(nodes, p->nnodes);
    if (p->ring == NULL) {
        bl_log(BL_LOG_ERROR, "cannot build the Maglev table");
        goto out;
    }
    {
        uint8_t *up = bl_xcalloc(p->nnodes ? p->nnodes : 1, 1);
        struct lb_state *st;
        for (uint32_t i = 0; i < p->nnodes; i++) {
            up[i] = 1;
        }
        st = lb_state_create(nodes, p->nnodes, up, p->ring, lb_algo_find(lb->balance.by_id),
                             lb_algo_find(lb->balance.other), lb->balance.bounded_load);
        free(up);
        if (st != NULL && lb_state_set_listeners(st, p) < 0) {
            lb_state_destroy(st);
            st = NULL;
        }
        if (st == NULL) {
            bl_log(BL_LOG_ERROR, "cannot build the routing state");
            goto out;
        }
        st->gen = ++p->gen;
        atomic_store(&p->state, st);
    }

    p->workers = bl_xcalloc(p->nworkers, sizeof(*p->workers));
    for (uint32_t i = 0; i < p->nworkers; i++) {
        if (lb_worker_init(&p->workers[i], p, i) < 0) {
            goto out;
        }
    }
    p->ratelimit = lb_ratelimit_create(lb->limits.rate_per_ip);
    p->admin = lb_admin_create(p, &err);
    if (err < 0) {
        goto out;
    }
    ev_async_init(&p->wake, on_wake);
    ev_async_start(p->loop, &p->wake);
    ev_timer_init(&p->reclaim, on_reclaim, 0.1, 0.1);
    ev_timer_start(p->loop, &p->reclaim);
    ev_init(&shutdown_timer, on_shutdown_timeout);
    p->health = lb_health_create(p);
    ev_signal_init(&sig_term, on_signal, SIGTERM);
    ev_signal_start(p->loop, &sig_term);
    ev_signal_init(&sig_int, on_signal, SIGINT);
    ev_signal_start(p->loop, &sig_int);
    ev_signal_init(&sig_hup, on_signal, SIGHUP);
    ev_signal_start(p->loop, &sig_hup);

    for (uint32_t i = 0; i < p->nworkers; i++) {
        if (lb_worker_start(&p->workers[i]) < 0) {
            bl_log(BL_LOG_ERROR, "cannot start worker %u", i);
            atomic_store(&p->stopping, 2);
            for (uint32_t j = 0; j < started; j++) {
                lb_worker_stop(&p->workers[j], 1);
            }
            goto join;
        }
        started++;
    }
    ev_timer_init(&p->tkrot, on_ticket_rotate, LB_TLS_TICKET_ROTATE, LB_TLS_TICKET_ROTATE);
    ev_timer_start(p->loop, &p->tkrot);
    for (size_t i = 0; i < lb->nlisteners; i++) {
        bl_logf(BL_LOG_INFO,
                ((struct bl_log_field[]){ BL_LOG_STR("bind", lb->listeners[i].bind),
                                          BL_LOG_STR("mode",
                                                     lb->listeners[i].mode == BL_MODE_TCP
                                                         ? "tcp"
                                                     : lb->listeners[i].tls.enabled ? "https"
                                                                                    : "http"),
                                          BL_LOG_UINT("workers", p->nworkers) }),
                3, "listening");
    }
    if (p->admin != NULL) {
        bl_logf(BL_LOG_INFO,
                ((struct bl_log_field[]){ BL_LOG_STR("bind", lb->admin.bind),
                                          BL_LOG_STR("mode", "admin") }),
                2, "listening");
    }
    notify("READY=1");
    ev_run(p->loop, 0);
    rc = 0;
join:
    for (uint32_t i = 0; i < p->nworkers; i++) {
        if (i >= started) {
            p->workers[i].thread = 0;
        }
        lb_worker_deinit(&p->workers[i]);
    }
    bl_log(BL_LOG_INFO, "stopped");
out:
    lb_health_destroy(p->health);
    lb_admin_destroy(p->admin);
    if (p->workers != NULL) {
        for (uint32_t i = 0; i < p->nworkers; i++) {
            lb_worker_deinit(&p->workers[i]);
        }
    }
    lb_ratelimit_destroy(p->ratelimit);
    lb_state_reclaim(p, 1);
    lb_listeners_free(p);
    lb_ring_put(p->ring);
    for (uint32_t i = 0; i < p->nall_nodes; i++) {
        lb_node_deinit(p->all_nodes[i]);
        free(p->all_nodes[i]);
    }
    free(p->all_nodes);
    for (uint32_t i = 0; i < p->nold_confs; i++) {
        if (p->old_confs[i] != conf) {
            bl_conf_destroy(p->old_confs[i]);
        }
    }
    free(p->old_confs);
    if (atomic_load(&p->conf) != conf) {
        bl_conf_destroy(atomic_load(&p->conf));
    }
    free(p->workers);
    free(p->nodes);
    return rc;
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "check-config", no_argument, NULL, 'C' },
        { "version", no_argument, NULL, 'V' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *path = NULL;
    int check = 0, ch, rc;
    struct bl_conf *conf;
    char *err = NULL;

    bl_log_init("blog-lb");
    while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            path = optarg;
            break;
        case 'C':
            check = 1;
            break;
        case 'V':
            printf("blog-lb %s\n", BLOG_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }
    if (path == NULL) {
        path = bl_conf_default_path();
    }
    conf = bl_conf_load(path, &err);
    if (conf == NULL) {
        bl_log(BL_LOG_ERROR, "%s", err ? err : "cannot load the configuration");
        fprintf(stderr, "blog-lb: %s\n", err ? err : "cannot load the configuration");
        free(err);
        return 1;
    }
    bl_log_set_level(conf->log_level);
    rc = lb_conf_check(conf, NULL, 0);
    if (check) {
        if (rc == 0) {
            printf("%s: configuration OK\n", path);
        }
        bl_conf_destroy(conf);
        return rc == 0 ? 0 : 1;
    }
    if (rc < 0) {
        bl_conf_destroy(conf);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    rc = run(conf, path);
    bl_conf_destroy(conf);
    return rc;
}
