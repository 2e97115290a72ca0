#include "ctl_up.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "bl/bl_buf.h"
#include "bl/bl_conf.h"
#include "bl/bl_err.h"
#include "bl/bl_net.h"
#include "bl/bl_time.h"
#include "bl/bl_util.h"
#include "ctl_cmd.h"
#include "ctl_http.h"
#include "ctl_proc.h"

#define UP_REDIS_READY_MS 10000
#define UP_NODE_READY_MS 15000
#define UP_LB_READY_MS 20000
#define UP_CTLD_SETTLE_MS 1000
#define UP_STOP_MS 10000
#define UP_PROBE_MS 500

/* ------------------------------------------------------------------ address checks */

static int
listen_inodes(unsigned port, unsigned long *inodes, size_t max)
{
    static const char *const files[] = { "/proc/net/tcp", "/proc/net/tcp6" };
    size_t n = 0;

    for (size_t f = 0; f < BL_ARRAY_SIZE(files); f++) {
        FILE *fp = fopen(files[f], "re");
        char line[512];

        if (fp == NULL) {
            continue;
        }
        if (fgets(line, sizeof(line), fp) == NULL) {    /* header */
            fclose(fp);
            continue;
        }
        while (fgets(line, sizeof(line), fp) != NULL && n < max) {
            char local[128];
            unsigned st, lport;
            unsigned long inode;
            char *colon;

            /* sl local rem st tx:rx tr:tm retr uid timeout inode */
            if (sscanf(line, " %*s %127s %*s %x %*s %*s %*s %*s %*s %lu", local, &st,
                       &inode) != 3) {
                continue;
            }
            colon = strrchr(local, ':');
            if (colon == NULL || sscanf(colon + 1, "%x", &lport) != 1) {
                continue;
            }
            if (st == 0x0A && lport == port && inode != 0) {
                inodes[n++] = inode;
            }
        }
        fclose(fp);
    }
    return (int)n;
}

int
ctl_up_port_owner(unsigned port, char *out, size_t outlen)
{
    unsigned long inodes[16];
    int ninodes = listen_inodes(port, inodes, BL_ARRAY_SIZE(inodes));
    DIR *proc;
    struct dirent *de;
    int rc = BL_ENOTFOUND;

    if (ninodes <= 0) {
        return BL_ENOTFOUND;
    }
    proc = opendir("/proc");
    if (proc == NULL) {
        return BL_ENOTFOUND;
    }
    while (rc != 0 && (de = readdir(proc)) != NULL) {
        char path[PATH_MAX];
        DIR *fds;
        struct dirent *fe;

        if (de->d_name[0] < '0' || de->d_name[0] > '9') {
            continue;
        }
        snprintf(path, sizeof(path), "/proc/%s/fd", de->d_name);
        fds = opendir(path);
        if (fds == NULL) {
            continue;
        }
        while (rc != 0 && (fe = readdir(fds)) != NULL) {
            char link[PATH_MAX], target[128];
            ssize_t len;
            unsigned long ino;

            snprintf(link, sizeof(link), "/proc/%s/fd/%s", de->d_name, fe->d_name);
            len = readlink(link, target, sizeof(target) - 1);
            if (len <= 0) {
                continue;
            }
            target[len] = '\0';
            if (sscanf(target, "socket:[%lu]", &ino) != 1) {
                continue;
            }
            for (int i = 0; i < ninodes; i++) {
                if (inodes[i] == ino) {
                    char comm[64] = "?";
                    FILE *fp;

                    snprintf(path, sizeof(path), "/proc/%s/comm", de->d_name);
                    fp = fopen(path, "re");
                    if (fp != NULL) {
                        if (fgets(comm, sizeof(comm), fp) != NULL) {
                            comm[strcspn(comm, "\n")] = '\0';
                        }
                        fclose(fp);
                    }
                    snprintf(out, outlen, "%s (pid %s)", comm, de->d_name);
                    rc = 0;
                    break;
                }
            }
        }
        closedir(fds);
    }
    closedir(proc);
    return rc;
}

int
ctl_up_check_addr(const char *hostport, char *why, size_t whylen)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    int fd;

    why[0] = '\0';
    if (bl_net_parse_addr(hostport, &ss, &sl) != 0) {
        snprintf(why, whylen, "not a HOST:PORT address");
        return BL_EINVAL;
    }
    fd = bl_net_listen(hostport, 1, false);
    if (fd >= 0) {
        close(fd);
        return 0;
    }
    if (fd == -EADDRINUSE) {
        unsigned port = ss.ss_family == AF_INET6
            ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
            : ntohs(((struct sockaddr_in *)&ss)->sin_port);

        (void)ctl_up_port_owner(port, why, whylen);
        return -EADDRINUSE;
    }
    if (fd == -EADDRNOTAVAIL) {
        snprintf(why, whylen, "not an address of this machine");
    } else if (fd == -EACCES) {
        snprintf(why, whylen, "permission denied (ports below 1024 need root or "
                 "CAP_NET_BIND_SERVICE)");
    } else {
        snprintf(why, whylen, "%s", bl_strerror(fd));
    }
    return fd;
}

int
ctl_up_mkdir_p(const char *path)
{
    char buf[PATH_MAX];
    size_t len = strlen(path);

    if (len == 0 || len >= sizeof(buf)) {
        return -EINVAL;
    }
    memcpy(buf, path, len + 1);
    for (char *p = buf + 1; *p != '\0'; p++) {
        if (*p != '/') {
            continue;
        }
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
            return -errno;
        }
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
        return -errno;
    }
    {
        struct stat st;

        if (stat(buf, &st) != 0) {
            return -errno;
        }
        if (!S_ISDIR(st.st_mode)) {
            return -ENOTDIR;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ the supervisor */

enum up_role {
    UP_REDIS,
    UP_NODE,
    UP_LB,
    UP_CTLD,
};

struct up_child {
    struct ctl_proc proc;
    enum up_role role;
    const char *addr;           /* node address (nodes only) */
    bool started;
    bool reported;              /* its end was already printed (obituary or stop line) */
    bool ready;                 /* passed its readiness check */
};

struct up {
    struct ctl_ctx *ctx;
    struct bl_conf *conf;
    char conf_abs[PATH_MAX];
    char *node_bin, *lb_bin, *ctld_bin, *redis_bin;
    struct ctl_redis_url redis;
    char *redis_dir;            /* mkdtemp, removed at the end */
    struct up_child *children;  /* redis?, nodes..., lb, ctld? in start order */
    size_t nchildren;
    struct ctl_proc **procs;    /* the same, for ctl_proc_pump() */
    char api_addr[300];         /* connect address of the API listener */
    char api_url[320];
    char admin_url[320];
    const char *ctld_note;      /* why ctld is not started, or NULL */
    bool hurry;                 /* a second stop signal: SIGKILL without waiting */
    long seed_n;                /* --seed N (-1 = default: 100 for the demo token, else 0) */
    const char *seed_token;     /* token for the seeding */
    char seed_note[1500];       /* what the seeding did, for the summary */
};

static int up_sig_pipe[2] = { -1, -1 };

static void
up_on_signal(int sig)
{
    int saved = errno;
    unsigned char b = (unsigned char)sig;

    (void)!write(up_sig_pipe[1], &b, 1);
    errno = saved;
}

static int
up_install_signals(void)
{
    struct sigaction sa;

    if (pipe2(up_sig_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        return -errno;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = up_on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    return 0;
}

static void
up_restore_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    for (int i = 0; i < 2; i++) {
        if (up_sig_pipe[i] >= 0) {
            close(up_sig_pipe[i]);
            up_sig_pipe[i] = -1;
        }
    }
}

/* Reads pending signals: returns the stop signal if one arrived (0 if not); forwards HUP. */
static int
up_take_signals(struct up *u)
{
    unsigned char b;
    int stop = 0;

    while (read(up_sig_pipe[0], &b, 1) == 1) {
        if (b == SIGHUP) {
            fprintf(stderr, "blogctl: SIGHUP: asking the nodes, the LB and ctld to reload\n");
            for (size_t i = 0; i < u->nchildren; i++) {
                if (u->children[i].role != UP_REDIS) {
                    ctl_proc_signal(&u->children[i].proc, SIGHUP);
                }
            }
        } else {
            stop = b;
        }
    }
    return stop;
}

static void
print_tail_line(const char *line, void *arg)
{
    const char *name = arg;

    fprintf(stderr, "blogctl:   %s | %s\n", name, line);
}

/* Says that <c> died, with its exit status and its last lines. */
static void
up_obituary(struct up_child *c, const char *when)
{
    char how[128];

    ctl_proc_describe(c->proc.status, how, sizeof(how));
    c->reported = true;
    fflush(stdout);
    fprintf(stderr, "blogctl: %s (pid %d) %s %s\n", c->proc.name, (int)c->proc.pid, how, when);
    if (c->proc.ntail > 0) {
        fprintf(stderr, "blogctl: last lines of %s:\n", c->proc.name);
        ctl_proc_tail(&c->proc, print_tail_line, c->proc.name);
    } else {
        fprintf(stderr, "blogctl: %s printed nothing\n", c->proc.name);
    }
}

/* The first started child that is no longer running, or NULL. */
static struct up_child *
up_dead_child(struct up *u)
{
    for (size_t i = 0; i < u->nchildren; i++) {
        struct up_child *c = &u->children[i];

        if (c->started && !ctl_proc_alive(&c->proc)) {
            return c;
        }
    }
    return NULL;
}

/* Stops the started children of <role> together: SIGTERM all, wait, SIGKILL stragglers. */
static void
up_stop_role(struct up *u, enum up_role role)
{
    uint64_t deadline = bl_time_mono_ms() + UP_STOP_MS;
    bool any = false;

    for (size_t i = 0; i < u->nchildren; i++) {
        struct up_child *c = &u->children[i];

        if (c->role == role && c->started && ctl_proc_alive(&c->proc)) {
            ctl_proc_signal(&c->proc, SIGTERM);
            any = true;
        }
    }
    while (any && bl_time_mono_ms() < deadline) {
        if (ctl_proc_pump(u->procs, u->nchildren, up_sig_pipe[0], 50) == 1
            && up_take_signals(u) != 0) {
            /* a second Ctrl-C: do not wait any longer */
            fprintf(stderr, "blogctl: second signal: killing what is left\n");
            u->hurry = true;
        }
        if (u->hurry) {
            break;
        }
        any = false;
        for (size_t i = 0; i < u->nchildren; i++) {
            struct up_child *c = &u->children[i];

            if (c->role == role && c->started && ctl_proc_alive(&c->proc)) {
                any = true;
            }
        }
    }
    for (size_t i = 0; i < u->nchildren; i++) {
        struct up_child *c = &u->children[i];

        if (c->role != role || !c->started) {
            continue;
        }
        if (ctl_proc_alive(&c->proc)) {
            if (!u->hurry) {
                fprintf(stderr, "blogctl: %s (pid %d) did not stop within %d s: SIGKILL\n",
                        c->proc.name, (int)c->proc.pid, UP_STOP_MS / 1000);
            }
            (void)ctl_proc_stop(&c->proc, NULL, 0, 0);
        }
        if (!c->reported) {
            char how[128];

            ctl_proc_describe(c->proc.status, how, sizeof(how));
            fprintf(stderr, "blogctl: %s (pid %d) stopped: %s\n", c->proc.name,
                    (int)c->proc.pid, how);
            c->reported = true;
        }
    }
}

static void
up_stop_all(struct up *u)
{
    static const enum up_role order[] = { UP_CTLD, UP_LB, UP_NODE, UP_REDIS };

    (void)up_take_signals(u);           /* the signal that started the stop, if any */
    for (size_t i = 0; i < BL_ARRAY_SIZE(order); i++) {
        up_stop_role(u, order[i]);
    }
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    (void)remove(path);
    return 0;
}

static void
up_free(struct up *u)
{
    if (u->redis_dir != NULL) {
        (void)nftw(u->redis_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        BL_FREE(u->redis_dir);
    }
    for (size_t i = 0; i < u->nchildren; i++) {
        ctl_proc_deinit(&u->children[i].proc);
    }
    BL_FREE(u->children);
    BL_FREE(u->procs);
    BL_FREE(u->node_bin);
    BL_FREE(u->lb_bin);
    BL_FREE(u->ctld_bin);
    BL_FREE(u->redis_bin);
    bl_conf_destroy(u->conf);
    u->conf = NULL;
}

/*
 * Waits until <ready> says yes, pumping output. Returns 0 when ready, a stop signal
 * number (> 0) when one arrived, -1 when a child died (after its obituary), -2 on timeout.
 */
static int
up_wait(struct up *u, int timeout_ms, bool (*ready)(struct up *, void *),
        void *arg)
{
    uint64_t deadline = bl_time_mono_ms() + (uint64_t)timeout_ms;

    for (;;) {
        struct up_child *dead;
        int sig;

        ctl_proc_pump(u->procs, u->nchildren, up_sig_pipe[0], 100);
        sig = up_take_signals(u);
        if (sig != 0) {
            return sig;
        }
        dead = up_dead_child(u);
        if (dead != NULL) {
            up_obituary(dead, dead->ready ? "during startup" : "before it was ready");
            return -1;
        }
        if (ready(u, arg)) {
            return 0;
        }
        if (bl_time_mono_ms() >= deadline) {
            return -2;
        }
    }
}

static bool
redis_ready(struct up *u, void *arg)
{
    struct timeval tv = { .tv_sec = 0, .tv_usec = UP_PROBE_MS * 1000 };
    redisContext *rc;
    redisReply *r;
    bool ok = false;

    (void)arg;
    rc = redisConnectWithTimeout(u->redis.host, (int)u->redis.port, tv);
    if (rc == NULL || rc->err) {
        goto out;
    }
    (void)redisSetTimeout(rc, tv);
    if (u->redis.password[0] != '\0') {
        r = redisCommand(rc, "AUTH %s", u->redis.password);
        if (r == NULL) {
            goto out;
        }
        freeReplyObject(r);
    }
    r = redisCommand(rc, "PING");
    if (r != NULL) {
        ok = r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;
        freeReplyObject(r);
    }
out:
    if (rc != NULL) {
        redisFree(rc);
    }
    return ok;
}

struct http_probe {
    char url[400];
    bool any_non5xx;            /* ready on any status < 500 (the LB), else on 200 only */
    bool tcp_only;              /* TLS or tcp listener: ready when it accepts */
    char addr[300];             /* for tcp_only */
    int last_status;            /* 0 = no answer */
    char last_err[600];
};

static bool
http_ready(struct up *u, void *arg)
{
    struct http_probe *p = arg;
    int status = 0;
    int rc;

    (void)u;
    if (p->tcp_only) {
        struct sockaddr_storage ss;
        socklen_t sl;
        int fd;
        bool ok = false;

        if (bl_net_parse_addr(p->addr, &ss, &sl) != 0) {
            snprintf(p->last_err, sizeof(p->last_err), "%s: bad address", p->addr);
            return false;
        }
        fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0) {
            ok = connect(fd, (struct sockaddr *)&ss, sl) == 0;
            if (!ok) {
                snprintf(p->last_err, sizeof(p->last_err), "connect to %s: %s", p->addr,
                         strerror(errno));
            }
            close(fd);
        }
        return ok;
    }
    rc = ctl_http_get(p->url, UP_PROBE_MS, &status, NULL, p->last_err, sizeof(p->last_err));
    if (rc != 0) {
        p->last_status = 0;
        return false;
    }
    p->last_status = status;
    return p->any_non5xx ? status < 500 : status == 200;
}

static bool
always_ready(struct up *u, void *arg)
{
    uint64_t *until = arg;

    (void)u;
    return bl_time_mono_ms() >= *until;
}

static int
up_start(struct up *u, struct up_child *c, char *const argv[])
{
    int rc = ctl_proc_start(&c->proc, argv);

    if (rc != 0) {
        ctl_err("cannot run %s: %s", argv[0], strerror(-rc));
        return rc;
    }
    c->started = true;
    fprintf(stderr, "blogctl: started %s (pid %d):", c->proc.name, (int)c->proc.pid);
    for (size_t i = 0; argv[i] != NULL; i++) {
        fprintf(stderr, " %s", argv[i][0] != '\0' ? argv[i] : "\"\"");
    }
    fputc('\n', stderr);
    return 0;
}

/* Checks every address blogctl up would bind. Returns 0 or prints what is wrong. */
static int
up_check_addrs(struct up *u)
{
    struct {
        const char *addr;
        char what[96];
    } list[256];
    size_t n = 0;
    char redis_addr[300];
    int bad = 0;

    if (u->conf->cluster.redis_managed) {
        if (strchr(u->redis.host, ':') != NULL) {
            snprintf(redis_addr, sizeof(redis_addr), "[%s]:%u", u->redis.host, u->redis.port);
        } else {
            snprintf(redis_addr, sizeof(redis_addr), "%s:%u", u->redis.host, u->redis.port);
        }
        list[n].addr = redis_addr;
        snprintf(list[n].what, sizeof(list[n].what), "managed redis (cluster.redis)");
        n++;
    }
    for (size_t i = 0; i < u->conf->nnodes && n < BL_ARRAY_SIZE(list) - 8; i++) {
        list[n].addr = u->conf->nodes[i].addr;
        snprintf(list[n].what, sizeof(list[n].what), "node %s", u->conf->nodes[i].name);
        n++;
    }
    for (size_t i = 0; i < u->conf->lb.nlisteners && n < BL_ARRAY_SIZE(list) - 4; i++) {
        list[n].addr = u->conf->lb.listeners[i].bind;
        snprintf(list[n].what, sizeof(list[n].what), "lb.listeners[%zu]", i);
        n++;
    }
    if (u->conf->lb.admin.bind != NULL) {
        list[n].addr = u->conf->lb.admin.bind;
        snprintf(list[n].what, sizeof(list[n].what), "lb.admin");
        n++;
    }
    if (u->ctld_note == NULL && u->conf->autoscale.bind != NULL) {
        list[n].addr = u->conf->autoscale.bind;
        snprintf(list[n].what, sizeof(list[n].what), "autoscale.bind");
        n++;
    }
    for (size_t i = 0; i < n; i++) {
        char why[256];
        int rc;

        for (size_t j = 0; j < i; j++) {
            if (strcmp(list[i].addr, list[j].addr) == 0) {
                ctl_err("%s: %s and %s both use %s", u->conf->file, list[j].what,
                        list[i].what, list[i].addr);
                bad = 1;
            }
        }
        rc = ctl_up_check_addr(list[i].addr, why, sizeof(why));
        if (rc == -EADDRINUSE) {
            ctl_err("%s (%s) is in use%s%s; is another blogctl up running? Stop it, or "
                    "change the port in %s", list[i].addr, list[i].what,
                    why[0] != '\0' ? " by " : "", why, u->conf->file);
            bad = 1;
        } else if (rc != 0) {
            ctl_err("%s (%s): cannot listen there: %s", list[i].addr, list[i].what, why);
            bad = 1;
        }
    }
    return bad ? -1 : 0;
}

static int
up_prepare(struct up *u)
{
    struct bl_conf *conf = u->conf;
    size_t n = 0;

    if (realpath(conf->file, u->conf_abs) == NULL) {
        snprintf(u->conf_abs, sizeof(u->conf_abs), "%s", conf->file);
    }
    if (conf->nnodes == 0) {
        ctl_err("%s: `nodes:` is empty; blogctl up needs at least one node to start",
                conf->file);
        return -1;
    }
    if (conf->lb.nlisteners == 0) {
        ctl_err("%s: lb.listeners is empty; nothing would accept requests", conf->file);
        return -1;
    }
    u->node_bin = ctl_find_binary("blog-node", "node");
    u->lb_bin = ctl_find_binary("blog-lb", "lb");
    if (u->node_bin == NULL || u->lb_bin == NULL) {
        ctl_err("cannot find %s next to blogctl or on PATH; build them first "
                "(cmake --build build) or install the blogscale package",
                u->node_bin == NULL ? "blog-node" : "blog-lb");
        return -1;
    }
    if (conf->cluster.redis_managed) {
        if (conf->cluster.redis == NULL) {
            ctl_err("%s: cluster.redis_managed is true but cluster.redis (the URL) is not set",
                    conf->file);
            return -1;
        }
        if (ctl_redis_url_parse(conf->cluster.redis, &u->redis) != 0) {
            ctl_err("%s: cluster.redis: cannot parse %s (expected redis://HOST:PORT[/DB])",
                    conf->file, conf->cluster.redis);
            return -1;
        }
        u->redis_bin = ctl_find_binary("redis-server", NULL);
        if (u->redis_bin == NULL) {
            ctl_err("%s asks for a managed Redis but redis-server is not on PATH; install it "
                    "(apt-get install redis-server) or set cluster.redis_managed: false",
                    conf->file);
            return -1;
        }
    }
    if (!conf->autoscale.enabled) {
        u->ctld_note = "the config has no autoscale: section";
    } else {
        u->ctld_bin = ctl_find_binary("blog-ctld", "ctl");
        if (u->ctld_bin == NULL) {
            u->ctld_note = "blog-ctld is not built or installed";
        }
    }
    if (up_check_addrs(u) != 0) {
        return -1;
    }
    if (conf->node.store.driver == BL_STORE_LMDB && conf->node.store.path != NULL) {
        int rc = ctl_up_mkdir_p(conf->node.store.path);

        if (rc != 0) {
            ctl_err("cannot create the LMDB directory %s (node.store.path): %s",
                    conf->node.store.path, strerror(-rc));
            return -1;
        }
    }
    {
        const struct bl_conf_listener *l = ctl_api_listener(conf);

        ctl_connect_addr(l != NULL ? l->bind : conf->lb.listeners[0].bind, u->api_addr,
                         sizeof(u->api_addr));
        snprintf(u->api_url, sizeof(u->api_url), "%s://%s",
                 l != NULL && l->tls.enabled ? "https" : "http", u->api_addr);
        if (conf->lb.admin.bind != NULL) {
            char a[300];

            ctl_connect_addr(conf->lb.admin.bind, a, sizeof(a));
            snprintf(u->admin_url, sizeof(u->admin_url), "http://%s", a);
        } else {
            snprintf(u->admin_url, sizeof(u->admin_url), "none");
        }
    }
    /* the children, in start order */
    u->children = bl_xcalloc(conf->nnodes + 3, sizeof(*u->children));
    u->procs = bl_xcalloc(conf->nnodes + 3, sizeof(*u->procs));
    if (conf->cluster.redis_managed) {
        ctl_proc_init(&u->children[n].proc, "redis", stderr);
        u->children[n++].role = UP_REDIS;
    }
    for (size_t i = 0; i < conf->nnodes; i++) {
        ctl_proc_init(&u->children[n].proc, conf->nodes[i].name, stderr);
        u->children[n].role = UP_NODE;
        u->children[n++].addr = conf->nodes[i].addr;
    }
    ctl_proc_init(&u->children[n].proc, "lb", stderr);
    u->children[n++].role = UP_LB;
    if (u->ctld_note == NULL) {
        ctl_proc_init(&u->children[n].proc, "ctld", stderr);
        u->children[n++].role = UP_CTLD;
    }
    u->nchildren = n;
    {
        int pad = 0;

        for (size_t i = 0; i < n; i++) {
            pad = BL_MAX(pad, (int)strlen(u->children[i].proc.name));
        }
        pad = BL_MAX(pad, 5);
        for (size_t i = 0; i < n; i++) {
            u->children[i].proc.pad = pad;
            u->procs[i] = &u->children[i].proc;
        }
    }
    return 0;
}

static struct up_child *
up_find(struct up *u, enum up_role role)
{
    for (size_t i = 0; i < u->nchildren; i++) {
        if (u->children[i].role == role) {
            return &u->children[i];
        }
    }
    return NULL;
}

/* Reports a failed wait; returns the exit code of up. */
static int
up_wait_failed(int w, const char *what, int timeout_ms, const char *detail)
{
    if (w > 0) {
        fprintf(stderr, "blogctl: %s during startup: stopping\n", strsignal(w));
        return CTL_EXIT_OK;
    }
    if (w == -2) {
        ctl_err("%s was not ready within %d s%s%s; stopping", what, timeout_ms / 1000,
                detail != NULL && detail[0] != '\0' ? ": " : "", detail != NULL ? detail : "");
    } else {
        ctl_err("startup failed: stopping");
    }
    return CTL_EXIT_FAIL;
}

/*
 * Seeds sample posts through the LB when the store is empty: by default only for a file
 * that accepts the public demo token (so the demo shows data at once), or N with --seed N.
 * A failure is reported but does not stop the cluster.
 */
static void
up_seed(struct up *u)
{
    const struct bl_conf_listener *l = ctl_api_listener(u->conf);
    const char *env = getenv("BLOGSCALE_TOKEN");
    bool demo = ctl_conf_accepts_token(u->conf, CTL_DEMO_TOKEN);
    long n = u->seed_n >= 0 ? u->seed_n : (demo ? 100 : 0);
    struct bl_buf body;
    char url[400], err[600];
    int status = 0;
    json_t *doc, *posts;
    struct ctl_seed_result res;

    if (n == 0 || l == NULL || l->tls.enabled) {
        return;
    }
    u->seed_token = env != NULL && env[0] != '\0' ? env : demo ? CTL_DEMO_TOKEN : NULL;
    if (u->seed_token == NULL && !u->conf->cluster.allow_anonymous_writes) {
        snprintf(u->seed_note, sizeof(u->seed_note), "not seeded: --seed needs the write "
                 "token in BLOGSCALE_TOKEN");
        return;
    }
    bl_buf_init(&body);
    snprintf(url, sizeof(url), "http://%s/posts?limit=1", u->api_addr);
    if (ctl_http_get(url, 5000, &status, &body, err, sizeof(err)) != 0 || status != 200) {
        snprintf(u->seed_note, sizeof(u->seed_note), "not seeded: GET %s: %s", url,
                 status != 0 ? "unexpected status" : err);
        bl_buf_deinit(&body);
        return;
    }
    doc = json_loadb(body.data != NULL ? body.data : "", body.len, 0, NULL);
    bl_buf_deinit(&body);
    posts = doc != NULL ? json_object_get(doc, "posts") : NULL;
    if (!json_is_array(posts)) {
        snprintf(u->seed_note, sizeof(u->seed_note), "not seeded: GET %s did not answer a "
                 "post list", url);
    } else if (json_array_size(posts) > 0) {
        snprintf(u->seed_note, sizeof(u->seed_note), "the store already holds posts: not "
                 "seeded");
    } else {
        char api[320];

        snprintf(api, sizeof(api), "http://%s", u->api_addr);
        if (ctl_seed(api, u->seed_token, (unsigned long)n, false, &res) == 0) {
            snprintf(u->seed_note, sizeof(u->seed_note), "the store was empty: seeded %lu "
                     "sample posts (--no-seed skips this)", res.created);
        } else {
            snprintf(u->seed_note, sizeof(u->seed_note), "seeding failed after %lu posts: %s",
                     res.created, res.error);
            ctl_err("%s", u->seed_note);
        }
        fprintf(stderr, "blogctl: %s\n", u->seed_note);
    }
    json_decref(doc);
}

static void
up_summary(struct up *u)
{
    struct bl_conf *conf = u->conf;
    bool demo = ctl_conf_accepts_token(conf, CTL_DEMO_TOKEN);
    char self[PATH_MAX] = "blogctl";
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

    if (n > 0) {
        self[n] = '\0';
    } else {
        snprintf(self, sizeof(self), "blogctl");
    }

    printf("blogscale up: api=%s admin=%s\n", u->api_url, u->admin_url);
    fflush(stdout);
    printf("  cluster  %s (config %s)\n", conf->cluster.name != NULL ? conf->cluster.name : "-",
           u->conf_abs);
    printf("  nodes   ");
    for (size_t i = 0; i < u->nchildren; i++) {
        struct up_child *c = &u->children[i];

        if (c->role == UP_NODE) {
            printf(" %s=%s", c->proc.name, c->addr);
        }
    }
    printf("\n");
    if (conf->cluster.redis_managed) {
        printf("  redis    %s (managed by blogctl, dir %s)\n", conf->cluster.redis,
               u->redis_dir);
    } else if (conf->cluster.redis != NULL) {
        printf("  redis    %s (external, not managed)\n", conf->cluster.redis);
    } else {
        printf("  redis    none: node caches are not kept coherent across nodes\n");
    }
    if (conf->node.store.driver == BL_STORE_LMDB) {
        printf("  data     LMDB in %s\n", conf->node.store.path);
    } else {
        printf("  data     MongoDB %s\n", conf->node.store.uri != NULL ? conf->node.store.uri : "");
    }
    if (u->seed_note[0] != '\0') {
        printf("           %s\n", u->seed_note);
    }
    if (u->ctld_note != NULL) {
        printf("  ctld     not started: %s\n", u->ctld_note);
    } else {
        printf("  ctld     running (autoscale min %u max %u)\n", conf->autoscale.min,
               conf->autoscale.max);
    }
    printf("  try      curl -s %s/posts\n", u->api_url);
    if (demo) {
        printf("           curl -s -X POST %s/posts -H 'Authorization: Bearer %s' \\\n"
               "                -H 'Content-Type: application/json' \\\n"
               "                -d '{\"title\":\"Hello\",\"body\":\"First post\","
               "\"author\":\"me\",\"tags\":[\"demo\"]}'\n"
               "           BLOGSCALE_TOKEN=%s %s -c %s posts seed 100\n"
               "           (%s is the demo-only write token of this file)\n",
               u->api_url, CTL_DEMO_TOKEN, CTL_DEMO_TOKEN, self, u->conf_abs, CTL_DEMO_TOKEN);
    } else if (conf->cluster.allow_anonymous_writes) {
        printf("           writes need no token (cluster.allow_anonymous_writes)\n");
    } else {
        printf("           writes need 'Authorization: Bearer TOKEN' with a TOKEN whose "
               "SHA-256 is in cluster.write_tokens_sha256\n");
    }
    printf("  Ctrl-C to stop\n");
    fflush(stdout);
}

static int
up_run(struct up *u)
{
    struct up_child *c;
    int w;
    char detail[1400];

    /* 1. redis */
    c = up_find(u, UP_REDIS);
    if (c != NULL) {
        char port[16], tmpl[] = "/tmp/blogctl-redis-XXXXXX";
        char *argv[24];
        size_t a = 0;

        if (mkdtemp(tmpl) == NULL) {
            ctl_err("mkdtemp %s: %s", tmpl, strerror(errno));
            return CTL_EXIT_FAIL;
        }
        u->redis_dir = bl_xstrdup(tmpl);
        snprintf(port, sizeof(port), "%u", u->redis.port);
        argv[a++] = u->redis_bin;
        argv[a++] = "--port";
        argv[a++] = port;
        argv[a++] = "--bind";
        /* redis-server binds numeric addresses */
        argv[a++] = strcmp(u->redis.host, "localhost") == 0 ? "127.0.0.1" : u->redis.host;
        argv[a++] = "--dir";
        argv[a++] = u->redis_dir;
        argv[a++] = "--save";
        argv[a++] = "";
        argv[a++] = "--appendonly";
        argv[a++] = "no";
        argv[a++] = "--daemonize";
        argv[a++] = "no";
        if (u->redis.password[0] != '\0') {
            argv[a++] = "--requirepass";
            argv[a++] = u->redis.password;
        }
        argv[a] = NULL;
        if (up_start(u, c, argv) != 0) {
            return CTL_EXIT_FAIL;
        }
        w = up_wait(u, UP_REDIS_READY_MS, redis_ready, NULL);
        if (w != 0) {
            return up_wait_failed(w, "redis-server", UP_REDIS_READY_MS, "no PONG");
        }
        c->ready = true;
        fprintf(stderr, "blogctl: redis ready on %s:%u\n", u->redis.host, u->redis.port);
    }
    /* 2. nodes: start all, then wait for each /readyz */
    for (size_t i = 0; i < u->nchildren; i++) {
        char *argv[8];

        c = &u->children[i];
        if (c->role != UP_NODE) {
            continue;
        }
        argv[0] = u->node_bin;
        argv[1] = "--config";
        argv[2] = u->conf_abs;
        argv[3] = "--name";
        argv[4] = c->proc.name;
        argv[5] = NULL;
        if (up_start(u, c, argv) != 0) {
            return CTL_EXIT_FAIL;
        }
    }
    for (size_t i = 0; i < u->nchildren; i++) {
        struct http_probe probe;
        char a[300];

        c = &u->children[i];
        if (c->role != UP_NODE) {
            continue;
        }
        memset(&probe, 0, sizeof(probe));
        ctl_connect_addr(c->addr, a, sizeof(a));
        snprintf(probe.url, sizeof(probe.url), "http://%s/readyz", a);
        w = up_wait(u, UP_NODE_READY_MS, http_ready, &probe);
        if (w != 0) {
            if (probe.last_status != 0) {
                snprintf(detail, sizeof(detail), "GET %s answers %d", probe.url,
                         probe.last_status);
            } else {
                snprintf(detail, sizeof(detail), "GET %s: %s", probe.url, probe.last_err);
            }
            {
                char what[64];

                snprintf(what, sizeof(what), "node %s", c->proc.name);
                return up_wait_failed(w, what, UP_NODE_READY_MS, detail);
            }
        }
        c->ready = true;
        fprintf(stderr, "blogctl: %s ready on %s\n", c->proc.name, c->addr);
    }
    /* 3. the LB */
    c = up_find(u, UP_LB);
    {
        char *argv[4] = { u->lb_bin, "--config", u->conf_abs, NULL };
        struct http_probe probe;

        if (up_start(u, c, argv) != 0) {
            return CTL_EXIT_FAIL;
        }
        memset(&probe, 0, sizeof(probe));
        probe.any_non5xx = true;
        snprintf(probe.url, sizeof(probe.url), "http://%s/posts?limit=1", u->api_addr);
        {
            const struct bl_conf_listener *l = ctl_api_listener(u->conf);

            /* a TLS-only or L4-only LB: blogctl speaks no TLS, so accepting is enough */
            probe.tcp_only = l == NULL || l->tls.enabled;
            snprintf(probe.addr, sizeof(probe.addr), "%s", u->api_addr);
        }
        w = up_wait(u, UP_LB_READY_MS, http_ready, &probe);
        if (w != 0) {
            if (probe.last_status != 0) {
                snprintf(detail, sizeof(detail), "GET %s answers %d (are the nodes "
                         "healthy for the LB?)", probe.url, probe.last_status);
            } else {
                snprintf(detail, sizeof(detail), "GET %s: %s", probe.url, probe.last_err);
            }
            return up_wait_failed(w, "blog-lb", UP_LB_READY_MS, detail);
        }
        c->ready = true;
        fprintf(stderr, "blogctl: lb ready on %s\n", u->api_addr);
    }
    /* 4. ctld */
    c = up_find(u, UP_CTLD);
    if (c != NULL) {
        char *argv[4] = { u->ctld_bin, "--config", u->conf_abs, NULL };
        uint64_t until;

        if (up_start(u, c, argv) != 0) {
            return CTL_EXIT_FAIL;
        }
        until = bl_time_mono_ms() + UP_CTLD_SETTLE_MS;
        w = up_wait(u, UP_CTLD_SETTLE_MS + 1000, always_ready, &until);
        if (w != 0) {
            return up_wait_failed(w, "blog-ctld", UP_CTLD_SETTLE_MS + 1000, NULL);
        }
    } else {
        fprintf(stderr, "blogctl: blog-ctld not started: %s\n", u->ctld_note);
    }
    up_seed(u);
    up_summary(u);
    /* 5. supervise */
    for (;;) {
        struct up_child *dead;
        int sig;

        ctl_proc_pump(u->procs, u->nchildren, up_sig_pipe[0], 1000);
        sig = up_take_signals(u);
        if (sig != 0) {
            fprintf(stderr, "blogctl: %s: stopping ctld, lb, nodes, redis\n", strsignal(sig));
            return CTL_EXIT_OK;
        }
        dead = up_dead_child(u);
        if (dead != NULL) {
            up_obituary(dead, "unexpectedly");
            ctl_err("fail-fast: stopping everything else");
            return CTL_EXIT_FAIL;
        }
    }
}

int
ctl_cmd_up(struct ctl_ctx *ctx)
{
    struct up u;
    int rc;

    if (ctl_wants_help(ctx)) {
        return ctl_usage("up", true);
    }
    memset(&u, 0, sizeof(u));
    u.seed_n = -1;
    for (int i = 0; i < ctx->argc; i++) {
        const char *a = ctx->argv[i];

        if (strcmp(a, "--no-seed") == 0) {
            u.seed_n = 0;
        } else if (strcmp(a, "--seed") == 0 && i + 1 < ctx->argc) {
            char *end;

            errno = 0;
            u.seed_n = strtol(ctx->argv[++i], &end, 10);
            if (*end != '\0' || errno != 0 || u.seed_n < 0 || u.seed_n > 1000000) {
                ctl_err("up: --seed takes a number of posts from 0 to 1000000");
                return CTL_EXIT_USAGE;
            }
        } else {
            ctl_err("up: unexpected argument '%s'", a);
            return ctl_usage("up", false);
        }
    }
    u.ctx = ctx;
    u.conf = ctl_load_conf(ctx);
    if (u.conf == NULL) {
        return CTL_EXIT_FAIL;
    }
    if (up_prepare(&u) != 0) {
        up_free(&u);
        return CTL_EXIT_FAIL;
    }
    if (up_install_signals() != 0) {
        ctl_err("cannot set up signal handling: %s", strerror(errno));
        up_free(&u);
        return CTL_EXIT_FAIL;
    }
    rc = up_run(&u);
    up_stop_all(&u);
    up_restore_signals();
    up_free(&u);
    fprintf(stderr, "blogctl: %s\n", rc == CTL_EXIT_OK ? "stopped, nothing left running"
                                                        : "stopped after a failure (exit 1)");
    return rc;
}
