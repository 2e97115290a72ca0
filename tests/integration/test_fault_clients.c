/*
 * Fault: misbehaving clients against blog-lb (issue 11 item 3, sixth case).
 *
 * Three blog-node processes + blog-lb (max_client_conns 10000, header_timeout 3s,
 * body_timeout 2s). Two well-behaved bl_load clients run the whole time: one on 8
 * keep-alive connections (200 requests/s), one opening a new connection for every request
 * (40 requests/s). 4 s without misbehaviour, 8 s with, 4 s without again (the "normal"
 * read p99 of each client is the larger of the two quiet windows), the attack being, all
 * at once:
 *   - 5,000 idle connections: 2,500 that never send a byte (re-opened when the LB closes
 *     them at header_timeout) and 2,500 that sent one request, read the answer and stay
 *     idle on keep-alive;
 *   - 200 slowloris connections sending one header byte every 200 ms (re-opened when
 *     closed);
 *   - 100 connections sending a POST head with Content-Length 10000 and only part of the
 *     body, then nothing (re-opened when closed);
 *   - 50 connections that pipeline 20 GET /posts?limit=1000 (about 100 KB each) with a
 *     4 KiB receive buffer and never read.
 * Asserted: the well-behaved clients see zero failed requests and zero stale answers; the
 * read (GET) p99 of each during the attack is within 2x its normal p99, and at least
 * normal + 100 ms (the scheduling noise of a shared 2-core machine; the failures looked for
 * cost a 1 s response timeout); the LB ejects no node (none misbehaves); the 5,000 idle connections
 * were really open (counted by the test) and slowloris connections were closed by the LB
 * (header_timeout); the LB's RSS grows by less than 128 MiB (not asserted in an ASan
 * build); it still runs afterwards.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "bl_cluster.h"
#include "bl_harness.h"
#include "bl_load.h"

#define N_SILENT 2500
#define N_KEEPALIVE 2500
#define N_SLOW 200
#define N_HALF 100
#define N_NOREAD 50
#define ATTACK_MS 8000
#define BASE_MS 4000                    /* before, and again after the attack */

enum kind { K_SILENT, K_KEEPALIVE, K_SLOW, K_HALF, K_NOREAD };

struct bad {
    int fd;
    enum kind kind;
    int sent;                           /* slowloris bytes sent */
};

static struct bl_fc g_fc;
static atomic_int g_stop, g_ready;
static atomic_long g_open_max, g_reopened_slow, g_reopened_silent, g_reopened_half;

static int
connect_nb(int port, int rcvbuf)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        return -1;
    }
    if (rcvbuf > 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    }
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

static void
send_all_nb(int fd, const char *p, size_t n)
{
    /* best effort: these clients are allowed to be cut off */
    while (n > 0) {
        ssize_t r = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (r <= 0) {
            return;
        }
        p += r;
        n -= (size_t)r;
    }
}

/* BL_FAULT_ATTACK=silent,keepalive,slow,half,noread limits the attack to those kinds
 * (diagnosis: which misbehaviour costs what); default all. */
static bool
kind_on(const char *name)
{
    const char *v = getenv("BL_FAULT_ATTACK");

    return v == NULL || strstr(v, name) != NULL;
}

/* Starts the misbehaviour of <b> on a fresh connection. */
static void
open_bad(struct bad *b)
{
    static const char half[] =
        "POST /posts HTTP/1.1\r\nHost: lb\r\nAuthorization: Bearer " BL_FC_TOKEN "\r\n"
        "Content-Type: application/json\r\nContent-Length: 10000\r\n\r\n"
        "{\"title\":\"half\",\"author\":\"x\",\"body\":\"";
    char req[4096];
    size_t off = 0;

    b->sent = 0;
    b->fd = -1;
    if (!kind_on(b->kind == K_SILENT ? "silent" : b->kind == K_SLOW ? "slow"
                 : b->kind == K_HALF ? "half" : "noread")) {
        return;
    }
    b->fd = connect_nb(g_fc.lb_port, b->kind == K_NOREAD ? 4096 : 0);
    if (b->fd < 0) {
        return;
    }
    if (b->kind == K_HALF || b->kind == K_NOREAD) {
        struct pollfd pfd = { .fd = b->fd, .events = POLLOUT };
        (void)poll(&pfd, 1, 1000);      /* connected */
    }
    if (b->kind == K_HALF) {
        send_all_nb(b->fd, half, sizeof(half) - 1);
    } else if (b->kind == K_NOREAD) {
        for (int i = 0; i < 20; i++) {
            off += (size_t)snprintf(req + off, sizeof(req) - off,
                                    "GET /posts?limit=1000 HTTP/1.1\r\nHost: lb\r\n\r\n");
        }
        send_all_nb(b->fd, req, off);
    }
}

static bool
peer_closed(int fd)
{
    char buf[4096];
    ssize_t r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

    return r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

/* Opens the keep-alive idle connections: one request each, answer read. Returns how many. */
static int
open_keepalive(struct bad *v, int n)
{
    static const char req[] = "GET /posts?limit=1 HTTP/1.1\r\nHost: lb\r\n\r\n";
    int ok = 0;

    for (int i = 0; i < n; i++) {
        v[i].kind = K_KEEPALIVE;
        v[i].fd = connect_nb(g_fc.lb_port, 0);
    }
    for (int i = 0; i < n; i++) {
        struct pollfd pfd = { .fd = v[i].fd, .events = POLLOUT };
        if (v[i].fd >= 0 && poll(&pfd, 1, 2000) == 1) {
            send_all_nb(v[i].fd, req, sizeof(req) - 1);
        }
    }
    for (int i = 0; i < n; i++) {
        char buf[8192];
        struct pollfd pfd = { .fd = v[i].fd, .events = POLLIN };
        if (v[i].fd >= 0 && poll(&pfd, 1, 3000) == 1 &&
            recv(v[i].fd, buf, sizeof(buf), MSG_DONTWAIT) > 12 &&
            strncmp(buf, "HTTP/1.1 200", 12) == 0) {
            ok++;
        }
    }
    return ok;
}

static void *
attack(void *arg)
{
    struct bad *v = arg;
    int nsock = N_SILENT + N_SLOW + N_HALF + N_NOREAD;
    struct pollfd *pf = calloc((size_t)nsock, sizeof(*pf));
    long next_tick = bl_fc_now_ms();

    for (int i = 0; i < nsock; i++) {
        v[i].kind = i < N_SILENT ? K_SILENT
                    : i < N_SILENT + N_SLOW ? K_SLOW
                    : i < N_SILENT + N_SLOW + N_HALF ? K_HALF : K_NOREAD;
        open_bad(&v[i]);
        if (i % 25 == 24) {
            bl_fc_sleep_ms(10);         /* spread over ~1 s: real idle clients do not
                                         * arrive (nor time out) all in the same instant */
        }
    }
    atomic_store(&g_ready, 1);
    while (pf != NULL && !atomic_load(&g_stop)) {
        long open = 0, wait = next_tick - bl_fc_now_ms();
        bool tick;
        /* sleep in poll until a socket closes or the next slowloris tick: cheap, so the
         * attacker does not steal the CPU the well-behaved clients are measured on */
        for (int i = 0; i < nsock; i++) {
            pf[i].fd = v[i].kind == K_NOREAD ? -1 : v[i].fd;
            pf[i].events = POLLIN;
            pf[i].revents = 0;
        }
        (void)poll(pf, (nfds_t)nsock, wait > 0 ? (int)wait : 0);
        tick = bl_fc_now_ms() >= next_tick;
        if (tick) {
            next_tick += 200;
        }
        for (int i = 0; i < nsock; i++) {
            struct bad *b = &v[i];
            if (b->fd < 0) {
                if (tick && getenv("BL_FAULT_ATTACK") == NULL) {
                    open_bad(b);
                }
                continue;
            }
            if (pf[i].revents != 0 && peer_closed(b->fd)) {
                close(b->fd);
                atomic_fetch_add(b->kind == K_SLOW ? &g_reopened_slow
                                 : b->kind == K_HALF ? &g_reopened_half : &g_reopened_silent, 1);
                open_bad(b);
                continue;
            }
            if (b->kind == K_SLOW && tick) {
                const char *head = "GET /posts HTTP/1.1\r\nHost: lb\r\nX-Slow: ";
                char c = b->sent < (int)strlen(head) ? head[b->sent] : 'a';
                send_all_nb(b->fd, &c, 1);
                b->sent++;
            }
            open++;
        }
        if (open > atomic_load(&g_open_max)) {
            atomic_store(&g_open_max, open);
        }
    }
    for (int i = 0; i < nsock; i++) {
        if (v[i].fd >= 0) {
            close(v[i].fd);
        }
    }
    free(pf);
    return NULL;
}

static long
rss_kib(pid_t pid)
{
    char path[64], line[256];
    long kib = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kib = strtol(line + 6, NULL, 10);
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    return kib;
}

#define READS ((1u << BL_LOAD_GET) | (1u << BL_LOAD_LIST))

/* True when <pid> has libasan mapped (a sanitizer build: its RSS is not comparable). */
static bool
under_asan(pid_t pid)
{
    char path[64], line[512];
    bool yes = false;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
    f = fopen(path, "r");
    while (f != NULL && !yes && fgets(line, sizeof(line), f) != NULL) {
        yes = strstr(line, "libasan") != NULL;
    }
    if (f != NULL) {
        fclose(f);
    }
    return yes;
}

static void
check_client(struct bl_load *l, const char *name, uint64_t t_base, uint64_t t_setup,
             uint64_t t_attack, uint64_t t_attack_end, uint64_t t_after, uint64_t t_end)
{
    struct bl_load_stats st;
    long nb, na, nc, ns;
    uint64_t p99_before = bl_load_pctl(l, READS, t_base, t_setup, 99, &nb);
    uint64_t p99_setup = bl_load_pctl(l, READS, t_setup, t_attack, 99, &ns);
    uint64_t p99_att = bl_load_pctl(l, READS, t_attack, t_attack_end, 99, &na);
    uint64_t p99_after = bl_load_pctl(l, READS, t_after, t_end, 99, &nc);
    uint64_t normal = p99_before > p99_after ? p99_before : p99_after;
    /* 2 x normal, but at least normal + 100 ms: on a shared 2-core machine the scheduler
     * alone moves a read p99 by tens of ms between two quiet windows; the failures this
     * test exists for (an LB stall, a node ejected by a client's fault) cost a response
     * timeout (1 s here) or a failed request, far above the bound */
    uint64_t bound = 2 * normal > normal + 100000 ? 2 * normal : normal + 100000;

    bl_load_stats(l, 0, 0, &st);
    fprintf(stderr, "# %s: read p99 %.2f ms before (%ld), %.2f ms while the attack is set up "
            "(%ld, not asserted), %.2f ms under attack (%ld), %.2f ms after (%ld); bound "
            "2 x normal = %.2f ms; %ld failed, %ld stale\n", name, (double)p99_before / 1000.0, nb,
            (double)p99_setup / 1000.0, ns, (double)p99_att / 1000.0, na,
            (double)p99_after / 1000.0, nc, (double)bound / 1000.0, st.fail, st.stale);
    bl_load_print_slow(l, 100000, t_attack, 12);
    if (st.fail != 0 || st.stale != 0) {
        bl_load_print_failures(l, 20);
        fail_msg("%s: %ld failed, %ld stale requests", name, st.fail, st.stale);
    }
    assert_true(nb > 50 && na > 100 && nc > 50);
    if (p99_att > bound) {
        fail_msg("%s: read p99 under attack %.2f ms > bound %.2f ms (normal %.2f ms)", name,
                 (double)p99_att / 1000.0, (double)bound / 1000.0, (double)normal / 1000.0);
    }
}

static void
test_misbehaving_clients(void **state)
{
    struct bl_fc_opts fo = {
        .nnodes = 3, .redis = false,
        .limits = "max_client_conns: 10000, header_timeout: 3s, body_timeout: 2s",
    };
    struct bl_load_opts ka = { .token = BL_FC_TOKEN, .conns = 8, .rate = 200,
                               .duration_ms = 2 * BASE_MS + ATTACK_MS + 3000, .w_get = 70, .w_put = 10,
                               .w_post = 5, .w_delete = 0, .w_list = 15, .seed_posts = 300,
                               .seed = 61, .tag = "good" };
    struct bl_load_opts fresh = { .token = BL_FC_TOKEN, .conns = 2, .rate = 40,
                                  .duration_ms = 2 * BASE_MS + ATTACK_MS + 3000, .w_get = 80, .w_list = 20,
                                  .seed_posts = 10, .seed = 62, .tag = "fresh",
                                  .fresh_conns = true };
    struct rlimit rl;
    struct bad *ka_conns, *bad;
    struct bl_load *l1, *l2;
    const char *err;
    pthread_t th;
    uint64_t t_base, t_setup, t_attack, t_after, t_end;
    long rss0, rss1, ka_ok;
    double clients_max = 0, ejections;

    (void)state;
    /* 5,400 sockets here and as many in the LB, which inherits the limit */
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_max < 12000) {
        fprintf(stderr, "SKIP: RLIMIT_NOFILE hard limit %lu < 12000\n", (unsigned long)rl.rlim_max);
        skip();
    }
    rl.rlim_cur = rl.rlim_max;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
    bl_fc_start(&g_fc, &fo);
    ka.url = fresh.url = g_fc.lb_url;
    l1 = bl_load_create(&ka, &err);
    l2 = bl_load_create(&fresh, &err);
    assert_non_null(l1);
    assert_non_null(l2);
    assert_int_equal(bl_load_seed(l1), 0);
    assert_int_equal(bl_load_seed(l2), 0);
    rss0 = rss_kib(g_fc.lb_pid);
    t_base = bl_load_mono_us();
    assert_int_equal(bl_load_start(l1), 0);
    assert_int_equal(bl_load_start(l2), 0);
    bl_fc_sleep_ms(BASE_MS);

    /* set up the attack (not measured: opening 5,400 connections, 2,500 of them with a
     * request, is a burst of ordinary work), then measure while it goes on */
    ka_conns = calloc(N_KEEPALIVE, sizeof(*ka_conns));
    bad = calloc(N_SILENT + N_SLOW + N_HALF + N_NOREAD, sizeof(*bad));
    assert_non_null(ka_conns);
    assert_non_null(bad);
    atomic_store(&g_stop, 0);
    atomic_store(&g_ready, 0);
    t_setup = bl_load_mono_us();
    ka_ok = kind_on("keepalive") ? open_keepalive(ka_conns, N_KEEPALIVE) : N_KEEPALIVE;
    assert_int_equal(pthread_create(&th, NULL, attack, bad), 0);
    while (!atomic_load(&g_ready)) {
        bl_fc_sleep_ms(20);
    }
    bl_fc_sleep_ms(500);
    t_attack = bl_load_mono_us();
    fprintf(stderr, "# attack set up in %.1f s\n", (double)(t_attack - t_setup) / 1e6);
    for (long t0 = bl_fc_now_ms(); bl_fc_now_ms() - t0 < ATTACK_MS - 500;) {
        double c = bl_fc_lb_metric(&g_fc, "blog_lb_client_connections");
        clients_max = c > clients_max ? c : clients_max;
        bl_fc_sleep_ms(250);
    }
    while (bl_load_mono_us() < t_attack + ATTACK_MS * 1000ull) {
        bl_fc_sleep_ms(20);
    }
    rss1 = rss_kib(g_fc.lb_pid);
    ejections = bl_fc_lb_metric_sum(&g_fc, "blog_lb_node_ejections_total");
    atomic_store(&g_stop, 1);
    pthread_join(th, NULL);
    for (int i = 0; i < N_KEEPALIVE; i++) {
        if (ka_conns[i].fd >= 0) {
            close(ka_conns[i].fd);
        }
    }
    t_after = bl_load_mono_us() + 500000;      /* the LB sees the closes */
    bl_load_wait(l1);
    bl_load_wait(l2);
    t_end = bl_load_mono_us();
    free(ka_conns);
    free(bad);

    fprintf(stderr, "# attack: %ld keep-alive idle connections answered; attacker sockets open "
            "at most %ld; LB client connections at most %.0f; re-opened after the LB closed "
            "them: silent %ld, slowloris %ld, half bodies %ld; LB RSS %ld -> %ld KiB\n", ka_ok,
            atomic_load(&g_open_max), clients_max, atomic_load(&g_reopened_silent),
            atomic_load(&g_reopened_slow), atomic_load(&g_reopened_half), rss0, rss1);
    fprintf(stderr, "# node ejections by the LB during the attack: %.0f (no node misbehaved)\n",
            ejections);
    bl_load_print_slow(l1, 500000, t_attack, 10);
    bl_load_print(l1, "keep-alive client");
    bl_load_print(l2, "new-connection client");
    assert_true(bl_h_alive(g_fc.lb_pid, NULL));
    check_client(l1, "keep-alive client", t_base, t_setup, t_attack, t_attack + ATTACK_MS * 1000ull,
                 t_after, t_end);
    check_client(l2, "new-connection client", t_base, t_setup, t_attack,
                 t_attack + ATTACK_MS * 1000ull, t_after, t_end);
    assert_true(ka_ok >= N_KEEPALIVE * 99 / 100);
    assert_true(atomic_load(&g_open_max) >= (N_SILENT + N_SLOW + N_HALF + N_NOREAD) * 95 / 100);
    assert_true(atomic_load(&g_reopened_slow) > 0);        /* header_timeout closed them */
    if (under_asan(g_fc.lb_pid)) {
        fprintf(stderr, "# RSS bound not asserted: blog-lb runs under AddressSanitizer\n");
    } else {
        assert_true(rss1 - rss0 < 128 * 1024);
    }
    bl_load_destroy(l1);
    bl_load_destroy(l2);
}

static int
teardown(void **state)
{
    (void)state;
    atomic_store(&g_stop, 1);
    bl_h_cleanup();
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_misbehaving_clients, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
