#ifndef LB_IT_H
#define LB_IT_H

/*
 * Helpers shared by the blog-lb integration tests (test_lb_*.c), header-only so the test
 * glob builds each test from one file: raw sockets, the python test backend, writing an
 * LB config, starting the LB and reading its metrics.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bl_harness.h"

static inline long
it_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void
it_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

/* A blocking TCP connection to 127.0.0.1:<port>, or -1. */
static inline int
it_connect(int port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    return fd;
}

static inline int
it_send(int fd, const void *p, size_t n)
{
    const char *s = p;

    while (n > 0) {
        ssize_t r = send(fd, s, n, MSG_NOSIGNAL);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        s += r;
        n -= (size_t)r;
    }
    return 0;
}

/*
 * Reads into <buf> (NUL-terminated) until the peer closes, <cap>-1 bytes, <timeout_ms>
 * passes, or <until> (if not NULL) returns true for the data so far. Returns the length;
 * *<closed> tells whether the peer closed (EOF or reset).
 */
static inline size_t
it_recv(int fd, char *buf, size_t cap, int timeout_ms, int (*until)(const char *, size_t),
        int *closed)
{
    size_t len = 0;
    long end = it_now_ms() + timeout_ms;

    if (closed != NULL) {
        *closed = 0;
    }
    buf[0] = '\0';
    while (len + 1 < cap) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        long left = end - it_now_ms();
        ssize_t r;
        if (until != NULL && until(buf, len)) {
            break;
        }
        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0) {
            break;
        }
        r = recv(fd, buf + len, cap - 1 - len, 0);
        if (r <= 0) {
            if (closed != NULL) {
                *closed = 1;
            }
            break;
        }
        len += (size_t)r;
        buf[len] = '\0';
    }
    return len;
}

/* Counts the occurrences of <needle> in <hay>. */
static inline int
it_count(const char *hay, const char *needle)
{
    int n = 0;

    for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle)) {
        n++;
    }
    return n;
}

/* Status code of the first response in <buf>, or 0. */
static inline int
it_status(const char *buf)
{
    int st = 0;

    if (sscanf(buf, "HTTP/1.%*1[01] %d", &st) != 1) {
        return 0;
    }
    return st;
}

/* Starts the python test backend named <name> on <port> (extra args may be NULL). */
static inline pid_t
it_backend(const char *dir, const char *name, int port, const char *extra1, const char *extra2)
{
    char script[1024], portstr[16], log[1024], url[128];
    const char *src = getenv("BLOG_SOURCE_DIR");
    pid_t pid;

    snprintf(script, sizeof(script), "%s/tests/integration/lb_test_backend.py",
             src != NULL ? src : ".");
    snprintf(portstr, sizeof(portstr), "%d", port);
    snprintf(log, sizeof(log), "%s/backend-%s.log", dir, name);
    {
        char *argv[] = { "/usr/bin/env", "python3", script, "--name", (char *)name, "--port", portstr,
                         (char *)extra1, (char *)extra2, NULL };
        pid = bl_h_spawn(argv, log);
    }
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/readyz", port);
    if (!bl_h_wait_http(url, 200, 10000)) {
        fprintf(stderr, "backend %s did not start\n", name);
        bl_h_cleanup();
        abort();
    }
    return pid;
}

/* Starts blog-lb with <conf> and waits for its admin /healthz. Aborts on failure. */
static inline pid_t
it_lb_start(const char *conf, const char *log, int admin_port)
{
    char url[128];
    char *argv[] = { (char *)bl_h_bin("BLOG_LB_BIN"), "--config", (char *)conf, NULL };
    pid_t pid = bl_h_spawn(argv, log);

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/healthz", admin_port);
    if (!bl_h_wait_http(url, 200, 10000)) {
        char *text = bl_h_read_file(log, NULL);
        fprintf(stderr, "blog-lb did not start; log:\n%s\n", text ? text : "");
        bl_h_cleanup();
        abort();
    }
    return pid;
}

/* Value of metric line <series> (exact "name{labels}") from the LB admin /metrics, or -1. */
static inline double
it_metric(int admin_port, const char *series, const char *token)
{
    char url[128], auth[256], *p;
    const char *hdrs[2] = { NULL, NULL };
    struct bl_h_resp *r;
    double v = -1;
    size_t n = strlen(series);

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", admin_port);
    if (token != NULL) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        hdrs[0] = auth;
    }
    r = bl_h_http("GET", url, hdrs, NULL, 0);
    if (r->status == 200) {
        for (p = r->body; p != NULL && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
            if (strncmp(p, series, n) == 0 && p[n] == ' ') {
                v = strtod(p + n + 1, NULL);
                break;
            }
        }
    }
    bl_h_resp_free(r);
    return v;
}

#endif /* LB_IT_H */
