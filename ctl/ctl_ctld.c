/*
 * blog-ctld: every autoscale.interval it reads the LBs' request counters, feeds the cluster
 * request rate to the scaling decision (ctl_scale.h) and, when it leads, carries out the
 * decision through the hooks and the LBs' admin API. The steps block the libev loop (ctld
 * serves nothing on it but its timer and signals); /metrics and /status are served by
 * libmicrohttpd on its own thread. Semantics: docs/SCALING-CTLD.md.
 */
#include "ctl_ctld.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <microhttpd.h>

#include "bl/bl_err.h"
#include "bl/bl_log.h"
#include "bl/bl_metrics.h"
#include "bl/bl_net.h"
#include "bl/bl_sdnotify.h"
#include "bl/bl_time.h"
#include "bl/bl_util.h"
#include "ctl_cmd.h"
#include "ctl_hook.h"
#include "ctl_http.h"
#include "ctl_lbadmin.h"
#include "ctl_scale.h"

#define CTLD_HTTP_TIMEOUT_MS 3000
#define CTLD_ATTEMPTS 3                 /* tries of a hook or an LB call */
#define CTLD_BACKOFF_MS 500             /* first retry delay, doubled each time */
#define CTLD_POLL_MS 200                /* readiness / in-flight polling */
#define CTLD_LOG_EVERY_MS 30000         /* an unchanged decision is logged this often */
#define CTLD_MAX_EVENTS 20              /* kept for /status */
#define CTLD_LEASE_MIN_MS 10000             /* > 2/3 of it + the longest blocking call */

struct ctld {
    struct bl_conf *conf;
    char conf_abs[PATH_MAX];
    char **lbs;
    size_t nlbs;
    const char *token;
    char state_path[4200];
    char hook_dir[4200];
    bool report_only;
    const char *report_why;
    struct ctl_scale scale;
    struct ctld_state st;

    bool have_prev;
    double prev_total;
    uint64_t prev_ms;

    /* leadership */
    bool use_lease;
    redisContext *redis;
    bool leader;
    bool leader_known;                  /* set_leader() ran once */
    uint64_t ttl_ms;
    uint64_t lease_ok_ms;               /* last successful acquire/renew */
    uint64_t last_try_ms;
    char lease_key[300];
    char lease_val[300];
    bool reconciled;

    /* metrics and status */
    struct bl_metrics *reg;
    struct bl_metric *m_desired, *m_actual, *m_leader, *m_hookfail, *m_rate;
    struct bl_metric *m_min, *m_max;     /* autoscale.min/max, for "at max" alerts */
    struct bl_metric *m_ev[2][2];       /* [up/down][ok/failed] */
    struct MHD_Daemon *mhd;
    pthread_mutex_t mu;
    json_t *status;                     /* last decision etc., under mu */
    json_t *events;                     /* last CTLD_MAX_EVENTS, under mu */

    int sfd;
    bool stop;
    bool reload;

    uint32_t last_cur, last_des;
    const char *last_reason;
    enum ctl_scale_dir last_action;
    uint64_t last_log_ms;
    uint64_t last_unremovable_ms;
};

/* ---- signals and waiting ---- */

/* systemd Type=notify (packaging/systemd/blog-ctld.service); a no-op outside systemd. */
static void
notify(const char *state)
{
    int rc = bl_sdnotify(state);

    if (rc < 0) {
        bl_log(BL_LOG_WARN, "sd_notify %s: %s", state, strerror(-rc));
    }
}

static void
poll_signals(struct ctld *d)
{
    struct signalfd_siginfo si;

    while (read(d->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGHUP) {
            d->reload = true;
        } else {
            if (!d->stop) {
                notify("STOPPING=1");
            }
            d->stop = true;
        }
    }
}

static bool lease_keepalive(struct ctld *d);
static bool still_leader(struct ctld *d);

/*
 * Sleeps <ms> while watching the signals and keeping the lease. False when ctld must stop
 * (SIGTERM) or lost the lead: the caller abandons its step (the state file says where it
 * was; the next leader reconciles).
 */
static bool
ctld_sleep(struct ctld *d, uint64_t ms)
{
    uint64_t until = bl_time_mono_ms() + ms;

    for (;;) {
        uint64_t now = bl_time_mono_ms();
        struct pollfd p = { .fd = d->sfd, .events = POLLIN };

        poll_signals(d);
        if (d->stop || !still_leader(d)) {
            return false;
        }
        if (now >= until) {
            return true;
        }
        poll(&p, 1, (int)BL_MIN(until - now, (uint64_t)100));
    }
}

/* ---- status, events, logging ---- */

static void
record_event(struct ctld *d, const char *direction, bool ok, const char *node,
             const char *detail)
{
    char ts[BL_RFC3339_LEN];

    bl_metric_inc(d->m_ev[strcmp(direction, "up") == 0 ? 0 : 1][ok ? 0 : 1]);
    bl_time_rfc3339(bl_time_real_ms(), ts);
    pthread_mutex_lock(&d->mu);
    json_array_append_new(d->events, json_pack("{s:s,s:s,s:s,s:s?,s:s}", "at", ts, "direction",
                                               direction, "result", ok ? "ok" : "failed",
                                               "node", node, "detail", detail));
    while (json_array_size(d->events) > CTLD_MAX_EVENTS) {
        json_array_remove(d->events, 0);
    }
    pthread_mutex_unlock(&d->mu);
    bl_logf(ok ? BL_LOG_INFO : BL_LOG_WARN,
            ((struct bl_log_field[]){ BL_LOG_STR("direction", direction),
                                      BL_LOG_STR("result", ok ? "ok" : "failed"),
                                      BL_LOG_STR("node", node), BL_LOG_STR("detail", detail) }),
            4, "scale event");
}

static void
set_status(struct ctld *d, const char *key, json_t *v)
{
    pthread_mutex_lock(&d->mu);
    json_object_set_new(d->status, key, v);
    pthread_mutex_unlock(&d->mu);
}

static void
publish_nodes(struct ctld *d)
{
    json_t *arr = json_array();

    for (size_t i = 0; i < d->st.n; i++) {
        json_array_append_new(arr, json_pack("{s:s,s:s,s:s}", "name", d->st.v[i].name, "addr",
                                             d->st.v[i].addr, "phase", d->st.v[i].phase));
    }
    set_status(d, "managed_nodes", arr);
}

static int
save_state(struct ctld *d)
{
    char err[600];
    int rc;

    if (!still_leader(d)) {
        return BL_EUNAVAIL;             /* the new leader owns the file now */
    }
    rc = ctld_state_save(d->state_path, &d->st, d->conf->cluster.name, err, sizeof(err));

    if (rc != 0) {
        bl_logf(BL_LOG_ERROR, ((struct bl_log_field[]){ BL_LOG_STR("error", err) }), 1,
                "cannot write the state file");
    }
    publish_nodes(d);
    return rc;
}

/* ---- leadership (Redis lease) ---- */

static void
redis_drop(struct ctld *d)
{
    if (d->redis != NULL) {
        redisFree(d->redis);
        d->redis = NULL;
    }
}

static bool
redis_ok(struct ctld *d)
{
    struct ctl_redis_url u;
    struct timeval tv = { .tv_sec = 1, .tv_usec = 0 };
    redisReply *r;

    if (d->redis != NULL) {
        return true;
    }
    if (ctl_redis_url_parse(d->conf->cluster.redis, &u) != 0) {
        return false;
    }
    d->redis = redisConnectWithTimeout(u.host, (int)u.port, tv);
    if (d->redis == NULL || d->redis->err) {
        redis_drop(d);
        return false;
    }
    redisSetTimeout(d->redis, tv);
    if (u.password[0] != '\0') {
        r = redisCommand(d->redis, "AUTH %s", u.password);
        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            if (r != NULL) {
                freeReplyObject(r);
            }
            redis_drop(d);
            return false;
        }
        freeReplyObject(r);
    }
    r = redisCommand(d->redis, "SELECT %u", u.db);
    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        if (r != NULL) {
            freeReplyObject(r);
        }
        redis_drop(d);
        return false;
    }
    freeReplyObject(r);
    return true;
}

static void
set_leader(struct ctld *d, bool leader, const char *why)
{
    if (leader != d->leader || !d->leader_known) {
        bl_logf(BL_LOG_INFO, ((struct bl_log_field[]){ BL_LOG_BOOL("leader", leader),
                                                       BL_LOG_STR("reason", why),
                                                       BL_LOG_STR("key", d->lease_key) }),
                3, leader ? "leading" : "standing by");
        if (!leader) {
            d->reconciled = false;      /* a new term starts with a reconcile */
        }
    }
    d->leader_known = true;
    d->leader = leader;
    bl_metric_set(d->m_leader, leader ? 1 : 0);
    set_status(d, "leader", json_boolean(leader));
}

/* One acquire-or-renew round. */
static void
lease_tick(struct ctld *d)
{
    static const char renew[] =
        "if redis.call('get', KEYS[1]) == ARGV[1] then "
        "return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";
    uint64_t now = bl_time_mono_ms();
    redisReply *r;

    d->last_try_ms = now;
    if (!d->use_lease) {
        if (!d->leader) {
            set_leader(d, true, "no cluster.redis: the only instance");
        }
        return;
    }
    if (!redis_ok(d)) {
        if (d->leader && now - d->lease_ok_ms >= d->ttl_ms * 2 / 3) {
            set_leader(d, false, "Redis unreachable: lease cannot be renewed");
        } else if (!d->leader) {
            set_leader(d, false, "Redis unreachable");
        }
        return;
    }
    if (d->leader) {
        r = redisCommand(d->redis, "EVAL %s 1 %s %s %llu", renew, d->lease_key, d->lease_val,
                         (unsigned long long)d->ttl_ms);
        if (r == NULL) {
            redis_drop(d);
            if (now - d->lease_ok_ms >= d->ttl_ms * 2 / 3) {
                set_leader(d, false, "Redis unreachable: lease cannot be renewed");
            }
            return;
        }
        if (r->type == REDIS_REPLY_INTEGER && r->integer == 1) {
            d->lease_ok_ms = now;
        } else {
            set_leader(d, false, "lease lost (another instance holds it)");
        }
        freeReplyObject(r);
        return;
    }
    r = redisCommand(d->redis, "SET %s %s NX PX %llu", d->lease_key, d->lease_val,
                     (unsigned long long)d->ttl_ms);
    if (r == NULL) {
        redis_drop(d);
        set_leader(d, false, "Redis unreachable");
        return;
    }
    if (r->type == REDIS_REPLY_STATUS && strcmp(r->str, "OK") == 0) {
        d->lease_ok_ms = now;
        set_leader(d, true, "lease acquired");
    } else if (!d->leader) {
        set_leader(d, false, "another instance holds the lease");
    }
    freeReplyObject(r);
}

/* Renews at ttl/3 while a step runs. True while this instance leads. */
static bool
lease_keepalive(struct ctld *d)
{
    if (d->use_lease && bl_time_mono_ms() - d->last_try_ms >= d->ttl_ms / 3) {
        lease_tick(d);
    }
    return d->leader;
}

/*
 * True while this instance may change anything: it leads and its last successful renewal
 * is younger than 2/3 of the ttl (a deposed leader stops acting before the key can expire
 * and another instance acquire it). Renews first when due.
 */
static bool
still_leader(struct ctld *d)
{
    lease_keepalive(d);
    if (d->leader && d->use_lease && bl_time_mono_ms() - d->lease_ok_ms >= d->ttl_ms * 2 / 3) {
        set_leader(d, false, "lease not renewed in time");
    }
    return d->leader;
}

static void
hook_tick(void *arg)
{
    lease_keepalive(arg);
}

static void
lease_release(struct ctld *d)
{
    static const char del[] =
        "if redis.call('get', KEYS[1]) == ARGV[1] then "
        "return redis.call('del', KEYS[1]) else return 0 end";

    if (d->use_lease && d->leader && d->redis != NULL) {
        redisReply *r = redisCommand(d->redis, "EVAL %s 1 %s %s", del, d->lease_key,
                                     d->lease_val);

        if (r != NULL) {
            freeReplyObject(r);
        }
    }
}

/* ---- the LBs ---- */

static int
lb_call(struct ctld *d, size_t i, const char *method, const char *path, json_t *body,
        struct ctl_admin_resp *r, char *err, size_t errlen)
{
    return ctl_admin_call(d->lbs[i], d->token, method, path, body, CTLD_HTTP_TIMEOUT_MS, r, err,
                          errlen);
}

/* GET /nodes of LB <i>: the document in *out (caller decrefs). 0 or an error. */
static int
lb_nodes(struct ctld *d, size_t i, json_t **out, char *err, size_t errlen)
{
    struct ctl_admin_resp r;
    int rc;

    *out = NULL;
    ctl_admin_resp_init(&r);
    rc = lb_call(d, i, "GET", "/nodes", NULL, &r, err, errlen);
    if (rc == 0 && (r.status != 200 || !json_is_array(json_object_get(r.json, "nodes")))) {
        char what[400];

        ctl_admin_describe(&r, what, sizeof(what));
        snprintf(err, errlen, "LB %s: GET /nodes: %s", d->lbs[i], what);
        rc = r.status == 404 ? BL_ENOTFOUND : BL_EUNAVAIL;
    } else if (rc == 0) {
        *out = json_incref(r.json);
    }
    ctl_admin_resp_deinit(&r);
    return rc;
}

/* Sum of blog_lb_requests_total over every LB. */
static int
lb_requests_total(struct ctld *d, double *total, char *err, size_t errlen)
{
    *total = 0;
    for (size_t i = 0; i < d->nlbs; i++) {
        struct ctl_admin_resp r;
        double v = 0;
        int rc;

        ctl_admin_resp_init(&r);
        rc = lb_call(d, i, "GET", "/metrics", NULL, &r, err, errlen);
        if (rc == 0 && r.status != 200) {
            char what[400];

            ctl_admin_describe(&r, what, sizeof(what));
            snprintf(err, errlen, "LB %s: GET /metrics: %s", d->lbs[i], what);
            rc = BL_EUNAVAIL;
        }
        if (rc == 0) {
            ctl_prom_sum(r.body.data != NULL ? r.body.data : "", "blog_lb_requests_total", &v);
            *total += v;
        }
        ctl_admin_resp_deinit(&r);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

/* POST /nodes on LB <i>; an existing node of the same address counts as added. */
static int
lb_add(struct ctld *d, size_t i, const char *name, const char *addr, char *err, size_t errlen)
{
    struct ctl_admin_resp r;
    json_t *body;
    int rc;

    if (!still_leader(d)) {
        snprintf(err, errlen, "no longer the leader");
        return BL_EUNAVAIL;
    }
    body = json_pack("{s:s,s:s,s:i}", "name", name, "addr", addr, "weight", 1);
    ctl_admin_resp_init(&r);
    rc = lb_call(d, i, "POST", "/nodes", body, &r, err, errlen);
    json_decref(body);
    if (rc == 0 && r.status != 201 && r.status != 200) {
        char what[400];

        if (r.status == 409) {
            json_t *doc = NULL;

            if (lb_nodes(d, i, &doc, err, errlen) == 0) {
                const char *a = json_string_value(json_object_get(ctl_admin_find_node(doc, name),
                                                                  "addr"));

                if (a != NULL && strcmp(a, addr) == 0) {
                    json_decref(doc);
                    ctl_admin_resp_deinit(&r);
                    return 0;
                }
            }
            json_decref(doc);
        }
        ctl_admin_describe(&r, what, sizeof(what));
        snprintf(err, errlen, "LB %s: POST /nodes %s: %s", d->lbs[i], name, what);
        rc = BL_EUNAVAIL;
    }
    ctl_admin_resp_deinit(&r);
    return rc;
}

/* <method> /nodes/NAME[suffix] on LB <i>; <ok_404> makes "not there" a success. */
static int
lb_node_op(struct ctld *d, size_t i, const char *method, const char *name, const char *suffix,
           bool ok_404, char *err, size_t errlen)
{
    struct ctl_admin_resp r;
    char path[200];
    int rc;

    if (!still_leader(d)) {
        snprintf(err, errlen, "no longer the leader");
        return BL_EUNAVAIL;
    }
    snprintf(path, sizeof(path), "/nodes/%s%s", name, suffix);
    ctl_admin_resp_init(&r);
    rc = lb_call(d, i, method, path, NULL, &r, err, errlen);
    if (rc == 0 && !(r.status >= 200 && r.status < 300) && !(ok_404 && r.status == 404)) {
        char what[400];

        ctl_admin_describe(&r, what, sizeof(what));
        snprintf(err, errlen, "LB %s: %s %s: %s", d->lbs[i], method, path, what);
        rc = BL_EUNAVAIL;
    }
    ctl_admin_resp_deinit(&r);
    return rc;
}

/* Retries <fn> with backoff. */
#define WITH_RETRIES(d, rc, call)                                                       \
    do {                                                                                \
        uint64_t backoff_ = CTLD_BACKOFF_MS;                                            \
        for (int try_ = 0; try_ < CTLD_ATTEMPTS; try_++) {                              \
            (rc) = (call);                                                              \
            if ((rc) == 0 || try_ + 1 == CTLD_ATTEMPTS || !ctld_sleep((d), backoff_)) { \
                break;                                                                  \
            }                                                                           \
            backoff_ *= 2;                                                              \
        }                                                                               \
    } while (0)

/* Removes <name> from every LB (404 = already gone). 0 when it is in none. */
static int
remove_from_all(struct ctld *d, const char *name, char *err, size_t errlen)
{
    int result = 0;

    for (size_t i = 0; i < d->nlbs; i++) {
        int rc;

        WITH_RETRIES(d, rc, lb_node_op(d, i, "DELETE", name, "", true, err, errlen));
        if (rc != 0) {
            result = rc;
        }
    }
    return result;
}

/*
 * Adds <name> to every LB in order. When one refuses (after retries), the LBs done so far
 * get it removed again: no LB keeps a half-added node.
 */
static int
add_to_all(struct ctld *d, const char *name, const char *addr, char *err, size_t errlen)
{
    for (size_t i = 0; i < d->nlbs; i++) {
        int rc;

        WITH_RETRIES(d, rc, lb_add(d, i, name, addr, err, errlen));
        if (rc != 0) {
            char e2[600];

            for (size_t k = 0; k <= i; k++) {
                int rc2;

                WITH_RETRIES(d, rc2, lb_node_op(d, k, "DELETE", name, "", true, e2, sizeof(e2)));
                if (rc2 != 0) {
                    bl_logf(BL_LOG_ERROR, ((struct bl_log_field[]){ BL_LOG_STR("node", name),
                                                                    BL_LOG_STR("error", e2) }),
                            2, "rollback: cannot remove a half-added node from an LB");
                }
            }
            return rc;
        }
    }
    return 0;
}

static bool
node_ready(const char *addr)
{
    char url[400], err[300];
    struct bl_buf body;
    int status = 0;
    int rc;

    snprintf(url, sizeof(url), "http://%s/readyz", addr);
    bl_buf_init(&body);
    rc = ctl_http_get(url, 1000, &status, &body, err, sizeof(err));
    bl_buf_deinit(&body);
    return rc == 0 && status == 200;
}

/* ---- hooks ---- */

static int
run_hook(struct ctld *d, const char *what, const char *cmd, const char *name, const char *addr,
         struct ctl_hook_result *res)
{
    char e_conf[PATH_MAX + 32], e_cluster[200], e_name[120], e_addr[340], e_dir[4300];
    const char *env[6];
    const char *args[3] = { name, addr, NULL };
    size_t ne = 0;
    int rc;

    snprintf(e_conf, sizeof(e_conf), "BLOGSCALE_CONFIG=%s", d->conf_abs);
    snprintf(e_cluster, sizeof(e_cluster), "BLOGSCALE_CLUSTER=%s", d->conf->cluster.name);
    env[ne++] = e_conf;
    env[ne++] = e_cluster;
    if (getenv("BLOGSCALE_HOOK_DIR") == NULL) {
        snprintf(e_dir, sizeof(e_dir), "BLOGSCALE_HOOK_DIR=%s", d->hook_dir);
        env[ne++] = e_dir;
    }
    if (name != NULL) {
        snprintf(e_name, sizeof(e_name), "BLOGSCALE_NODE_NAME=%s", name);
        snprintf(e_addr, sizeof(e_addr), "BLOGSCALE_NODE_ADDR=%s", addr);
        env[ne++] = e_name;
        env[ne++] = e_addr;
    }
    env[ne] = NULL;
    if (!still_leader(d)) {
        return BL_EUNAVAIL;
    }
    rc = ctl_hook_run_tick(cmd, name != NULL ? args : NULL, env,
                           (int)d->conf->autoscale.hook_timeout_ms, hook_tick, d, res);
    if (rc != 0) {
        const char *errtxt = res->err.data != NULL ? res->err.data : "";
        size_t el = strlen(errtxt);

        bl_metric_inc(d->m_hookfail);
        /* the last line of its stderr says most */
        while (el > 0 && errtxt[el - 1] == '\n') {
            el--;
        }
        {
            size_t start = el;
            char last[400];

            while (start > 0 && errtxt[start - 1] != '\n') {
                start--;
            }
            snprintf(last, sizeof(last), "%.*s", (int)BL_MIN(el - start, sizeof(last) - 1),
                     errtxt + start);
            bl_logf(BL_LOG_WARN, ((struct bl_log_field[]){
                                     BL_LOG_STR("hook", what), BL_LOG_STR("command", cmd),
                                     BL_LOG_STR("node", name), BL_LOG_INT("exit_code", res->code),
                                     BL_LOG_BOOL("timed_out", res->timed_out),
                                     BL_LOG_DOUBLE("seconds", res->seconds),
                                     BL_LOG_STR("stderr", last) }),
                    7, "hook failed");
        }
    }
    return rc;
}

/* scale_down hook for <name>, with retries. */
static int
stop_node(struct ctld *d, const char *name, const char *addr)
{
    struct ctl_hook_result res;
    int rc;

    ctl_hook_result_init(&res);
    WITH_RETRIES(d, rc, run_hook(d, "scale_down", d->conf->autoscale.scale_down, name, addr, &res));
    ctl_hook_result_deinit(&res);
    return rc;
}

/* ---- steps ---- */

static bool
name_taken(struct ctld *d, json_t *doc, const char *name)
{
    return ctld_state_find(&d->st, name) != NULL || ctl_admin_find_node(doc, name) != NULL
           || bl_conf_find_node(d->conf, name) != NULL;
}

/* One node up: hook, /readyz, every LB. */
static int
scale_up_one(struct ctld *d)
{
    struct ctl_hook_result res;
    char name[CTLD_NAME_MAX], addr[CTLD_ADDR_MAX], err[700];
    json_t *doc = NULL;
    uint64_t until;
    int rc;

    ctl_hook_result_init(&res);
    {
        uint64_t backoff = CTLD_BACKOFF_MS;

        for (int t = 0;; t++) {
            rc = run_hook(d, "scale_up", d->conf->autoscale.scale_up, NULL, NULL, &res);
            if (rc == 0 && ctl_hook_parse_spawn(res.out.data != NULL ? res.out.data : "", name,
                                                sizeof(name), addr, sizeof(addr)) != 0) {
                bl_metric_inc(d->m_hookfail);
                bl_logf(BL_LOG_WARN, ((struct bl_log_field[]){
                                         BL_LOG_STR("stdout", res.out.data) }),
                        1, "scale_up hook did not print \"NAME HOST:PORT\" as its last line");
                rc = BL_EINVAL;
            }
            if (rc == 0 || t + 1 == CTLD_ATTEMPTS || !ctld_sleep(d, backoff)) {
                break;
            }
            backoff *= 2;
        }
    }
    ctl_hook_result_deinit(&res);
    if (rc != 0) {
        record_event(d, "up", false, NULL, "scale_up hook failed");
        return rc;
    }
    if (lb_nodes(d, 0, &doc, err, sizeof(err)) == 0 && name_taken(d, doc, name)) {
        json_decref(doc);
        snprintf(err, sizeof(err), "scale_up hook answered '%s', a name already in use; "
                 "stopping what it started", name);
        stop_node(d, name, addr);
        record_event(d, "up", false, name, err);
        return BL_EEXIST;
    }
    json_decref(doc);
    ctld_state_put(&d->st, name, addr, "starting", bl_time_real_ms());
    if (save_state(d) != 0) {
        ctld_state_del(&d->st, name);
        stop_node(d, name, addr);
        record_event(d, "up", false, name, "cannot write the state file");
        return BL_EUNAVAIL;
    }

    until = bl_time_mono_ms() + d->conf->autoscale.hook_timeout_ms;
    while (!node_ready(addr)) {
        if (bl_time_mono_ms() >= until || !ctld_sleep(d, CTLD_POLL_MS)) {
            if (d->stop || !d->leader) {
                return BL_EUNAVAIL;     /* the state file says "starting": reconciled later */
            }
            snprintf(err, sizeof(err), "%s at %s not ready within %llu ms; scale_down hook run",
                     name, addr, (unsigned long long)d->conf->autoscale.hook_timeout_ms);
            if (stop_node(d, name, addr) == 0) {
                ctld_state_del(&d->st, name);
            } else {
                ctld_state_put(&d->st, name, addr, "removing", bl_time_real_ms());
            }
            save_state(d);
            record_event(d, "up", false, name, err);
            return BL_EUNAVAIL;
        }
    }
    ctld_state_put(&d->st, name, addr, "adding", bl_time_real_ms());
    save_state(d);
    rc = add_to_all(d, name, addr, err, sizeof(err));
    if (rc != 0) {
        if (d->stop || !d->leader) {
            return rc;
        }
        if (stop_node(d, name, addr) == 0) {
            ctld_state_del(&d->st, name);
        } else {
            ctld_state_put(&d->st, name, addr, "removing", bl_time_real_ms());
        }
        save_state(d);
        record_event(d, "up", false, name, err);
        return rc;
    }
    ctld_state_put(&d->st, name, addr, "active", bl_time_real_ms());
    save_state(d);
    snprintf(err, sizeof(err), "%s at %s added to %zu LB%s", name, addr, d->nlbs,
             d->nlbs == 1 ? "" : "s");
    record_event(d, "up", true, name, err);
    return 0;
}

/* Drain, wait for in-flight 0 on every LB (bounded), remove, scale_down hook. */
static int
finish_removal(struct ctld *d, const char *name, const char *addr, char *err, size_t errlen)
{
    uint64_t until = bl_time_mono_ms() + BL_MAX(d->conf->lb.shutdown_timeout_ms, 1000);
    int rc;

    for (size_t i = 0; i < d->nlbs; i++) {
        WITH_RETRIES(d, rc, lb_node_op(d, i, "POST", name, "/drain", true, err, errlen));
        if (rc != 0) {
            return rc;
        }
    }
    for (;;) {
        double inflight = 0;
        bool known = true;

        for (size_t i = 0; i < d->nlbs; i++) {
            json_t *doc = NULL;

            if (lb_nodes(d, i, &doc, err, errlen) != 0) {
                known = false;
                continue;
            }
            inflight += json_number_value(json_object_get(ctl_admin_find_node(doc, name),
                                                          "inflight"));
            json_decref(doc);
        }
        if (known && inflight <= 0) {
            break;
        }
        if (bl_time_mono_ms() >= until) {
            bl_logf(BL_LOG_WARN, ((struct bl_log_field[]){ BL_LOG_STR("node", name),
                                                           BL_LOG_DOUBLE("inflight", inflight) }),
                    2, "drain wait timed out (lb.shutdown_timeout); removing anyway");
            break;
        }
        if (!ctld_sleep(d, CTLD_POLL_MS)) {
            snprintf(err, errlen, "interrupted");
            return BL_EUNAVAIL;
        }
    }
    ctld_state_put(&d->st, name, addr, "removing", bl_time_real_ms());
    save_state(d);
    rc = remove_from_all(d, name, err, errlen);
    if (rc != 0) {
        return rc;
    }
    rc = stop_node(d, name, addr);
    if (rc != 0) {
        snprintf(err, errlen, "removed from the LBs, but the scale_down hook failed (retried "
                 "at the next interval)");
        return rc;
    }
    ctld_state_del(&d->st, name);
    save_state(d);
    return 0;
}

static int
scale_down_one(struct ctld *d)
{
    struct ctld_node *pick = NULL;
    char name[CTLD_NAME_MAX], addr[CTLD_ADDR_MAX], err[700];
    int rc;

    /* the newest active node ctld manages; config nodes are never removed */
    for (size_t i = 0; i < d->st.n; i++) {
        if (strcmp(d->st.v[i].phase, "active") == 0
            && (pick == NULL || d->st.v[i].since_ms >= pick->since_ms)) {
            pick = &d->st.v[i];
        }
    }
    if (pick == NULL) {
        uint64_t now = bl_time_mono_ms();

        if (d->last_unremovable_ms == 0 || now - d->last_unremovable_ms >= CTLD_LOG_EVERY_MS) {
            d->last_unremovable_ms = now;
            bl_log(BL_LOG_INFO, "scale down wanted, but no node is removable (only nodes added "
                   "by ctld or through the admin API are; config nodes stay)");
        }
        return BL_ENOTFOUND;
    }
    snprintf(name, sizeof(name), "%s", pick->name);
    snprintf(addr, sizeof(addr), "%s", pick->addr);
    ctld_state_put(&d->st, name, addr, "draining", bl_time_real_ms());
    if (save_state(d) != 0) {
        ctld_state_put(&d->st, name, addr, "active", bl_time_real_ms());
        record_event(d, "down", false, name, "cannot write the state file");
        return BL_EUNAVAIL;
    }
    rc = finish_removal(d, name, addr, err, sizeof(err));
    if (rc != 0) {
        if (d->stop || !d->leader) {
            return rc;
        }
        if (strcmp(ctld_state_find(&d->st, name)->phase, "draining") == 0) {
            /* could not drain everywhere: back in service */
            for (size_t i = 0; i < d->nlbs; i++) {
                char e2[600];

                lb_node_op(d, i, "POST", name, "/undrain", true, e2, sizeof(e2));
            }
            ctld_state_put(&d->st, name, addr, "active", bl_time_real_ms());
            save_state(d);
        }
        record_event(d, "down", false, name, err);
        return rc;
    }
    snprintf(err, sizeof(err), "%s at %s drained, removed from %zu LB%s, stopped", name, addr,
             d->nlbs, d->nlbs == 1 ? "" : "s");
    record_event(d, "down", true, name, err);
    return 0;
}

/*
 * Brings the state file and the LBs' node sets together (at start and at each new term):
 * interrupted steps are finished or undone, admin-added nodes unknown to the state are
 * adopted. Returns 0 when everything is consistent.
 */
static int
reconcile(struct ctld *d)
{
    json_t **docs = bl_xcalloc(d->nlbs, sizeof(*docs));
    char err[700];
    int result = 0;

    for (size_t i = 0; i < d->nlbs; i++) {
        if (lb_nodes(d, i, &docs[i], err, sizeof(err)) != 0) {
            bl_logf(BL_LOG_WARN, ((struct bl_log_field[]){ BL_LOG_STR("error", err) }), 1,
                    "reconcile: cannot read an LB's nodes; retrying next interval");
            result = BL_EUNAVAIL;
            goto out;
        }
    }
    /* state entries */
    for (size_t k = 0; k < d->st.n;) {
        struct ctld_node e = d->st.v[k];
        size_t in = 0;
        const char *action;

        for (size_t i = 0; i < d->nlbs; i++) {
            in += ctl_admin_find_node(docs[i], e.name) != NULL;
        }
        if (strcmp(e.phase, "draining") == 0 || strcmp(e.phase, "removing") == 0) {
            action = "finish the removal";
            if (finish_removal(d, e.name, e.addr, err, sizeof(err)) != 0) {
                result = BL_EUNAVAIL;
                k++;
                continue;
            }
        } else if (in == d->nlbs && d->nlbs > 0) {
            action = "in every LB: active";
            ctld_state_put(&d->st, e.name, e.addr, "active", e.since_ms);
            k++;
        } else if (node_ready(e.addr)) {
            action = "ready: add to the LBs that miss it";
            ctld_state_put(&d->st, e.name, e.addr, "adding", e.since_ms);
            save_state(d);
            if (add_to_all(d, e.name, e.addr, err, sizeof(err)) == 0) {
                ctld_state_put(&d->st, e.name, e.addr, "active", e.since_ms);
                k++;
            } else if (stop_node(d, e.name, e.addr) == 0) {
                ctld_state_del(&d->st, e.name);
            } else {
                ctld_state_put(&d->st, e.name, e.addr, "removing", e.since_ms);
                result = BL_EUNAVAIL;
                k++;
            }
        } else {
            action = "not ready: remove from the LBs, scale_down hook";
            if (remove_from_all(d, e.name, err, sizeof(err)) == 0
                && stop_node(d, e.name, e.addr) == 0) {
                ctld_state_del(&d->st, e.name);
            } else {
                ctld_state_put(&d->st, e.name, e.addr, "removing", e.since_ms);
                result = BL_EUNAVAIL;
                k++;
            }
        }
        bl_logf(BL_LOG_INFO, ((struct bl_log_field[]){ BL_LOG_STR("node", e.name),
                                                       BL_LOG_STR("phase", e.phase),
                                                       BL_LOG_UINT("in_lbs", in),
                                                       BL_LOG_STR("action", action) }),
                4, "reconcile");
        save_state(d);
        if (d->stop || !d->leader) {
            result = BL_EUNAVAIL;
            goto out;
        }
    }
    /* admin-added nodes of the first LB that the state does not know: adopt */
    {
        json_t *arr = json_object_get(docs[0], "nodes"), *n;
        size_t i;

        json_array_foreach(arr, i, n) {
            const char *name = json_string_value(json_object_get(n, "name"));
            const char *addr = json_string_value(json_object_get(n, "addr"));
            const char *src = json_string_value(json_object_get(n, "source"));
            const char *state = json_string_value(json_object_get(n, "state"));

            if (name == NULL || addr == NULL || src == NULL || strcmp(src, "admin") != 0
                || ctld_state_find(&d->st, name) != NULL) {
                continue;
            }
            ctld_state_put(&d->st, name, addr,
                           state != NULL && strcmp(state, "draining") == 0 ? "draining" : "active",
                           bl_time_real_ms());
            bl_logf(BL_LOG_INFO, ((struct bl_log_field[]){ BL_LOG_STR("node", name),
                                                           BL_LOG_STR("addr", addr) }),
                    2, "reconcile: adopted a node added through the admin API");
            save_state(d);
        }
    }
out:
    for (size_t i = 0; i < d->nlbs; i++) {
        json_decref(docs[i]);
    }
    free(docs);
    return result;
}

/* ---- one interval ---- */

/* Nodes in service on the first LB (not draining). */
static int
count_current(struct ctld *d, uint32_t *current, char *err, size_t errlen)
{
    json_t *doc = NULL, *n;
    size_t i;
    int rc = lb_nodes(d, 0, &doc, err, errlen);

    if (rc != 0) {
        return rc;
    }
    *current = 0;
    json_array_foreach(json_object_get(doc, "nodes"), i, n) {
        const char *state = json_string_value(json_object_get(n, "state"));
        const char *name = json_string_value(json_object_get(n, "name"));
        const char *addr = json_string_value(json_object_get(n, "addr"));
        const char *src = json_string_value(json_object_get(n, "source"));

        if (state == NULL || strcmp(state, "draining") != 0) {
            (*current)++;
        }
        /* a node added through the admin API meanwhile (blogctl nodes add): adopted */
        if (!d->report_only && name != NULL && addr != NULL && src != NULL
            && strcmp(src, "admin") == 0 && ctld_state_find(&d->st, name) == NULL
            && strlen(name) < CTLD_NAME_MAX && strlen(addr) < CTLD_ADDR_MAX) {
            ctld_state_put(&d->st, name, addr,
                           state != NULL && strcmp(state, "draining") == 0 ? "draining" : "active",
                           bl_time_real_ms());
            bl_logf(BL_LOG_INFO, ((struct bl_log_field[]){ BL_LOG_STR("node", name),
                                                           BL_LOG_STR("addr", addr) }),
                    2, "adopted a node added through the admin API");
            save_state(d);
        }
    }
    json_decref(doc);
    return 0;
}

static void
log_decision(struct ctld *d, const struct ctl_scale_decision *dec, bool force)
{
    uint64_t now = bl_time_mono_ms();
    const char *action = dec->action == CTL_SCALE_UP ? "up" : dec->action == CTL_SCALE_DOWN
                                                                  ? "down" : "none";
    char ts[BL_RFC3339_LEN];

    bl_time_rfc3339(bl_time_real_ms(), ts);
    set_status(d, "decision",
               json_pack("{s:s,s:i,s:i,s:i,s:f,s:f,s:s,s:s,s:b}", "at", ts, "current",
                         (json_int_t)dec->current, "desired", (json_int_t)dec->desired, "raw",
                         (json_int_t)dec->raw, "rate", dec->rate, "ratio", dec->ratio, "reason",
                         dec->reason, "action", action, "report_only", d->report_only));
    if (!force && dec->current == d->last_cur && dec->desired == d->last_des
        && dec->reason == d->last_reason && dec->action == d->last_action
        && now - d->last_log_ms < CTLD_LOG_EVERY_MS) {
        return;
    }
    d->last_cur = dec->current;
    d->last_des = dec->desired;
    d->last_reason = dec->reason;
    d->last_action = dec->action;
    d->last_log_ms = now;
    bl_logf(BL_LOG_INFO, ((struct bl_log_field[]){
                             BL_LOG_UINT("current", dec->current),
                             BL_LOG_UINT("desired", dec->desired), BL_LOG_UINT("raw", dec->raw),
                             BL_LOG_DOUBLE("rate", dec->rate), BL_LOG_DOUBLE("ratio", dec->ratio),
                             BL_LOG_STR("reason", dec->reason), BL_LOG_STR("action", action),
                             BL_LOG_BOOL("report_only", d->report_only) }),
            8, d->report_only && dec->action != CTL_SCALE_NONE
                   ? "decision (report-only: no hooks configured, nothing is changed)"
                   : "decision");
}

static void
tick(struct ctld *d)
{
    struct ctl_scale_decision dec;
    char err[700];
    double total, rate;
    uint64_t now;
    uint32_t current;
    int rc;

    lease_tick(d);
    if (!d->leader) {
        return;
    }
    if (!d->reconciled && !d->report_only) {
        char err2[600];

        /* a new term: the previous leader may have changed the file */
        if (ctld_state_load(d->state_path, &d->st, err2, sizeof(err2)) != 0) {
            bl_logf(BL_LOG_ERROR, ((struct bl_log_field[]){ BL_LOG_STR("error", err2) }), 1,
                    "cannot read the state file; fix or remove it");
            return;
        }
        publish_nodes(d);
        if (reconcile(d) != 0) {
            return;
        }
        d->reconciled = true;
        d->have_prev = false;
    }
    rc = lb_requests_total(d, &total, err, sizeof(err));
    now = bl_time_mono_ms();
    if (rc != 0) {
        bl_logf(BL_LOG_WARN, ((struct bl_log_field[]){ BL_LOG_STR("error", err) }), 1,
                "cannot read the LBs' metrics; no decision this interval");
        d->have_prev = false;
        return;
    }
    if (d->have_prev && total >= d->prev_total
        && now - d->prev_ms < d->conf->autoscale.interval_ms / 2) {
        return;                     /* a tick right after a long step: too short to measure */
    }
    if (!d->have_prev || total < d->prev_total || now <= d->prev_ms) {
        d->have_prev = true;        /* first sample, or a counter reset (LB restart) */
        d->prev_total = total;
        d->prev_ms = now;
        return;
    }
    rate = (total - d->prev_total) * 1000.0 / (double)(now - d->prev_ms);
    d->prev_total = total;
    d->prev_ms = now;
    rc = count_current(d, &current, err, sizeof(err));
    if (rc == BL_ENOTFOUND) {
        /* an LB without GET /nodes: count the nodes of its metrics, never act */
        struct ctl_admin_resp r;
        char **names = NULL;
        size_t n = 0;

        ctl_admin_resp_init(&r);
        if (lb_call(d, 0, "GET", "/metrics", NULL, &r, err, sizeof(err)) == 0 && r.status == 200) {
            n = ctl_prom_label_values(r.body.data != NULL ? r.body.data : "", "blog_lb_node_up",
                                      "node", &names);
        }
        for (size_t i = 0; i < n; i++) {
            free(names[i]);
        }
        free(names);
        ctl_admin_resp_deinit(&r);
        current = (uint32_t)n;
        if (!d->report_only) {
            d->report_only = true;
            d->report_why = "the LB has no GET /nodes (admin API without node management)";
            bl_log(BL_LOG_WARN, "report-only: %s", d->report_why);
        }
    } else if (rc != 0) {
        bl_logf(BL_LOG_WARN, ((struct bl_log_field[]){ BL_LOG_STR("error", err) }), 1,
                "cannot read the LB's nodes; no decision this interval");
        return;
    }
    bl_metric_set(d->m_actual, current);
    bl_metric_set(d->m_rate, rate);
    ctl_scale_observe(&d->scale, now, rate, current, &dec);
    bl_metric_set(d->m_desired, dec.desired);
    log_decision(d, &dec, false);
    if (dec.action == CTL_SCALE_NONE || d->report_only) {
        return;
    }
    if (dec.action == CTL_SCALE_UP) {
        for (uint32_t k = current; k < dec.desired && !d->stop && d->leader; k++) {
            if (scale_up_one(d) != 0) {
                break;
            }
            bl_metric_set(d->m_actual, k + 1);
        }
    } else {
        for (uint32_t k = current; k > dec.desired && !d->stop && d->leader; k--) {
            if (scale_down_one(d) != 0) {
                break;
            }
            bl_metric_set(d->m_actual, k - 1);
        }
    }
    /* the cooldown starts when the step ends; the rate restarts from a fresh sample */
    ctl_scale_event(&d->scale, bl_time_mono_ms());
    d->have_prev = false;
}

/* ---- the metrics listener ---- */

static enum MHD_Result
http_handler(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
             const char *version, const char *upload_data, size_t *upload_data_size,
             void **con_cls)
{
    struct ctld *d = cls;
    struct MHD_Response *resp;
    struct bl_buf b;
    const char *type = "application/json";
    unsigned code = 200;
    enum MHD_Result ret;

    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)con_cls;
    bl_buf_init(&b);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        code = 405;
        bl_buf_append_str(&b, "{\"error\":{\"code\":\"method_not_allowed\",\"message\":\"GET only\"}}");
    } else if (strcmp(url, "/metrics") == 0) {
        type = BL_METRICS_CONTENT_TYPE;
        bl_metrics_render(d->reg, &b);
    } else if (strcmp(url, "/status") == 0) {
        char *s;

        pthread_mutex_lock(&d->mu);
        json_object_set(d->status, "events", d->events);
        s = json_dumps(d->status, JSON_COMPACT | JSON_PRESERVE_ORDER);
        pthread_mutex_unlock(&d->mu);
        if (s != NULL) {
            bl_buf_append_str(&b, s);
            free(s);
        }
    } else if (strcmp(url, "/healthz") == 0) {
        bl_buf_append_str(&b, "{\"ok\":true}");
    } else {
        code = 404;
        bl_buf_append_str(&b, "{\"error\":{\"code\":\"not_found\",\"message\":\"blog-ctld "
                              "serves /metrics, /status and /healthz\"}}");
    }
    resp = MHD_create_response_from_buffer(b.len, b.data != NULL ? b.data : (void *)"",
                                           MHD_RESPMEM_MUST_COPY);
    bl_buf_deinit(&b);
    if (resp == NULL) {
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", type);
    ret = MHD_queue_response(conn, code, resp);
    MHD_destroy_response(resp);
    return ret;
}

static int
start_listener(struct ctld *d)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    char addr[300];

    if (d->conf->autoscale.bind == NULL) {
        return 0;
    }
    ctl_connect_addr(d->conf->autoscale.bind, addr, sizeof(addr));
    if (bl_net_parse_addr(d->conf->autoscale.bind, &ss, &sl) != 0) {
        bl_log(BL_LOG_ERROR, "autoscale.bind %s: not HOST:PORT", d->conf->autoscale.bind);
        return BL_EINVAL;
    }
    d->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG
                                  | (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
                              0, NULL, NULL, http_handler, d, MHD_OPTION_SOCK_ADDR,
                              (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_TIMEOUT,
                              (unsigned int)10, MHD_OPTION_END);
    if (d->mhd == NULL) {
        bl_log(BL_LOG_ERROR, "cannot listen on autoscale.bind %s", d->conf->autoscale.bind);
        return BL_EUNAVAIL;
    }
    bl_logf(BL_LOG_INFO, ((struct bl_log_field[]){ BL_LOG_STR("addr", d->conf->autoscale.bind) }),
            1, "serving /metrics and /status");
    return 0;
}

/* ---- setup ---- */

static void
setup_metrics(struct ctld *d)
{
    static const char *const ev_labels[] = { "direction", "result", NULL };
    struct bl_metric_family *f;

    d->reg = bl_metrics_create();
    d->m_desired = bl_metrics_simple(d->reg, BL_METRIC_GAUGE, "blog_ctld_desired_nodes",
                                     "Node count the autoscaler wants (after stabilization).");
    d->m_actual = bl_metrics_simple(d->reg, BL_METRIC_GAUGE, "blog_ctld_actual_nodes",
                                    "Nodes in service on the LBs (not draining).");
    d->m_min = bl_metrics_simple(d->reg, BL_METRIC_GAUGE, "blog_ctld_min_nodes",
                                 "autoscale.min of the loaded configuration.");
    d->m_max = bl_metrics_simple(d->reg, BL_METRIC_GAUGE, "blog_ctld_max_nodes",
                                 "autoscale.max of the loaded configuration.");
    d->m_rate = bl_metrics_simple(d->reg, BL_METRIC_GAUGE, "blog_ctld_request_rate",
                                  "Cluster request rate of the last interval, requests/s.");
    d->m_leader = bl_metrics_simple(d->reg, BL_METRIC_GAUGE, "blog_ctld_leader",
                                    "1 when this instance leads (holds the Redis lease).");
    d->m_hookfail = bl_metrics_simple(d->reg, BL_METRIC_COUNTER, "blog_ctld_hook_failures_total",
                                      "Hook runs that failed, timed out or answered garbage.");
    f = bl_metrics_family(d->reg, BL_METRIC_COUNTER, "blog_ctld_scale_events_total",
                          "Scale steps by direction (up, down) and result (ok, failed).",
                          ev_labels, NULL, 0);
    d->m_ev[0][0] = bl_metric_child(f, (const char *const[]){ "up", "ok" });
    d->m_ev[0][1] = bl_metric_child(f, (const char *const[]){ "up", "failed" });
    d->m_ev[1][0] = bl_metric_child(f, (const char *const[]){ "down", "ok" });
    d->m_ev[1][1] = bl_metric_child(f, (const char *const[]){ "down", "failed" });
}

static void
scale_params(const struct bl_conf *conf, struct ctl_scale_params *p)
{
    p->min = conf->autoscale.min;
    p->max = conf->autoscale.max;
    p->target_rps_per_node = conf->autoscale.target_rps_per_node;
    p->tolerance = conf->autoscale.tolerance;
    p->up_window_ms = conf->autoscale.up_window_ms;
    p->down_window_ms = conf->autoscale.down_window_ms;
    p->cooldown_ms = conf->autoscale.cooldown_ms;
}

static void
apply_conf(struct ctld *d)
{
    struct ctl_scale_params p;
    char dir[4200];

    scale_params(d->conf, &p);
    ctl_scale_init(&d->scale, &p);
    d->report_only = d->conf->autoscale.scale_up == NULL || d->conf->autoscale.scale_down == NULL;
    d->report_why = d->report_only ? "autoscale.scale_up and autoscale.scale_down are not both "
                                     "set" : NULL;
    ctld_state_default_path(d->conf, d->state_path, sizeof(d->state_path));
    snprintf(dir, sizeof(dir), "%s", d->state_path);
    snprintf(d->hook_dir, sizeof(d->hook_dir), "%s/hooks", dirname(dir));
    set_status(d, "report_only", json_boolean(d->report_only));
    set_status(d, "min", json_integer(d->conf->autoscale.min));
    set_status(d, "max", json_integer(d->conf->autoscale.max));
    bl_metric_set(d->m_min, d->conf->autoscale.min);
    bl_metric_set(d->m_max, d->conf->autoscale.max);
    set_status(d, "target_rps_per_node", json_real(d->conf->autoscale.target_rps_per_node));
    set_status(d, "state_file", json_string(d->state_path));
}

static void
on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct ctld *d = w->data;

    (void)revents;
    poll_signals(d);
    if (d->stop) {
        ev_break(loop, EVBREAK_ALL);
        return;
    }
    tick(d);
    if (d->stop) {
        ev_break(loop, EVBREAK_ALL);
    }
}

static void
on_signal(struct ev_loop *loop, ev_io *w, int revents)
{
    struct ctld *d = w->data;

    (void)revents;
    poll_signals(d);
    if (d->stop) {
        ev_break(loop, EVBREAK_ALL);
        return;
    }
    if (d->reload) {
        char *err = NULL;
        struct bl_conf *c;

        notify("RELOADING=1");
        c = bl_conf_load(d->conf_abs, &err);
        d->reload = false;
        if (c == NULL) {
            bl_logf(BL_LOG_ERROR, ((struct bl_log_field[]){ BL_LOG_STR("error", err) }), 1,
                    "SIGHUP: config not reloaded");
            free(err);
            notify("READY=1");
            return;
        }
        bl_conf_destroy(d->conf);
        d->conf = c;
        bl_log_set_level(c->log_level);
        apply_conf(d);
        bl_log(BL_LOG_INFO, "SIGHUP: config reloaded (autoscale parameters; windows restart)");
        notify("READY=1");
    }
}

int
ctld_run(const struct ctld_opts *o)
{
    struct ctld *d = bl_xcalloc(1, sizeof(*d));
    char *err = NULL, errbuf[600];
    struct ev_loop *loop = NULL;
    ev_timer timer;
    ev_io sio;
    sigset_t mask;
    int code = 1;

    pthread_mutex_init(&d->mu, NULL);
    d->status = json_object();
    d->events = json_array();
    d->sfd = -1;
    bl_log_init("blog-ctld");
    if (realpath(o->conf_path, d->conf_abs) == NULL) {
        snprintf(d->conf_abs, sizeof(d->conf_abs), "%s", o->conf_path);
    }
    d->conf = bl_conf_load(d->conf_abs, &err);
    if (d->conf == NULL) {
        fprintf(stderr, "%s\n", err != NULL ? err : "blog-ctld: cannot load the config");
        free(err);
        goto out;
    }
    bl_log_set_level(d->conf->log_level);
    if (!d->conf->autoscale.enabled) {
        /* exit 0: not a failure a service manager should retry */
        bl_log(BL_LOG_WARN, "%s has no autoscale: section; nothing to do, exiting",
               d->conf_abs);
        code = 0;
        goto out;
    }
    if (o->nlbs > 0) {
        d->nlbs = o->nlbs;
        d->lbs = bl_xcalloc(o->nlbs, sizeof(*d->lbs));
        for (size_t i = 0; i < o->nlbs; i++) {
            d->lbs[i] = bl_xstrdup(o->lbs[i]);
        }
    } else {
        d->nlbs = 1;
        d->lbs = bl_xcalloc(1, sizeof(*d->lbs));
        d->lbs[0] = bl_xstrdup(d->conf->lb.admin.bind != NULL ? d->conf->lb.admin.bind
                                                               : BL_CONF_DEFAULT_ADMIN_BIND);
    }
    d->token = o->admin_token != NULL ? o->admin_token : ctl_admin_token(d->conf);
    setup_metrics(d);
    apply_conf(d);
    if (!d->report_only) {
        char buf[4200];
        const char *dir;

        snprintf(buf, sizeof(buf), "%s", d->state_path);
        dir = dirname(buf);
        mkdir(dir, 0755);
        /* checked here so a bad file stops ctld at once; re-read at each term's start */
        if (ctld_state_load(d->state_path, &d->st, errbuf, sizeof(errbuf)) != 0) {
            bl_logf(BL_LOG_ERROR, ((struct bl_log_field[]){ BL_LOG_STR("error", errbuf) }), 1,
                    "cannot read the state file; fix or remove it");
            goto out;
        }
        if (access(dir, W_OK) != 0) {
            bl_logf(BL_LOG_ERROR, ((struct bl_log_field[]){ BL_LOG_STR("dir", dir),
                                                            BL_LOG_STR("error", strerror(errno)) }),
                    2, "the state file's directory is not writable");
            goto out;
        }
    }
    d->use_lease = d->conf->cluster.redis != NULL;
    d->ttl_ms = BL_MAX(3 * d->conf->autoscale.interval_ms, (uint64_t)CTLD_LEASE_MIN_MS);
    snprintf(d->lease_key, sizeof(d->lease_key), "blogscale:%s:ctld:leader",
             d->conf->cluster.name);
    {
        char host[200] = "";

        gethostname(host, sizeof(host) - 1);
        snprintf(d->lease_val, sizeof(d->lease_val), "%s:%ld:%llx", host, (long)getpid(),
                 (unsigned long long)bl_time_mono_ns());
    }
    bl_metric_set(d->m_leader, 0);
    set_status(d, "leader", json_false());

    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    if (pthread_sigmask(SIG_BLOCK, &mask, NULL) != 0
        || (d->sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
        bl_log(BL_LOG_ERROR, "signalfd: %s", strerror(errno));
        goto out;
    }
    signal(SIGPIPE, SIG_IGN);
    if (start_listener(d) != 0) {
        goto out;
    }
    bl_logf(BL_LOG_INFO, ((struct bl_log_field[]){
                             BL_LOG_STR("config", d->conf_abs), BL_LOG_STR("lb", d->lbs[0]),
                             BL_LOG_UINT("lbs", d->nlbs), BL_LOG_UINT("min", d->conf->autoscale.min),
                             BL_LOG_UINT("max", d->conf->autoscale.max),
                             BL_LOG_DOUBLE("target_rps_per_node",
                                           d->conf->autoscale.target_rps_per_node),
                             BL_LOG_UINT("interval_ms", d->conf->autoscale.interval_ms),
                             BL_LOG_BOOL("report_only", d->report_only),
                             BL_LOG_STR("state_file", d->report_only ? NULL : d->state_path),
                             BL_LOG_BOOL("lease", d->use_lease) }),
            10, d->report_only ? "started in report-only mode (no scale_up/scale_down hooks): "
                                 "decisions are logged, nothing is changed"
                               : "started");
    loop = ev_loop_new(EVFLAG_AUTO);
    if (loop == NULL) {
        bl_log(BL_LOG_ERROR, "cannot create the event loop");
        goto out;
    }
    ev_timer_init(&timer, on_timer, 0.0, (double)d->conf->autoscale.interval_ms / 1000.0);
    timer.data = d;
    ev_timer_start(loop, &timer);
    ev_io_init(&sio, on_signal, d->sfd, EV_READ);
    sio.data = d;
    ev_io_start(loop, &sio);
    notify("READY=1");
    ev_run(loop, 0);
    bl_log(BL_LOG_INFO, "stopping");
    lease_release(d);
    code = 0;

out:
    if (loop != NULL) {
        ev_loop_destroy(loop);
    }
    if (d->mhd != NULL) {
        MHD_stop_daemon(d->mhd);
    }
    redis_drop(d);
    if (d->sfd >= 0) {
        close(d->sfd);
    }
    for (size_t i = 0; i < d->nlbs; i++) {
        free(d->lbs[i]);
    }
    free(d->lbs);
    ctld_state_deinit(&d->st);
    bl_metrics_destroy(d->reg);
    json_decref(d->status);
    json_decref(d->events);
    bl_conf_destroy(d->conf);
    pthread_mutex_destroy(&d->mu);
    free(d);
    return code;
}
