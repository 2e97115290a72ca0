/*
 * openloop: a fixed-rate (open-loop) HTTP/1.1 load generator for tests/bench/run-all.
 *
 *   openloop HOST PORT RATE SECONDS CONNS IDS_FILE [SEED]
 *
 * Request i is due at start + i / RATE, whether or not earlier requests were answered
 * (wrk2's model). Due requests go out on an idle keep-alive connection (CONNS of them, one
 * request in flight each); when none is idle they wait in a queue. Latency is measured from
 * the request's due time, not from when it was written, so time spent queued behind a slow
 * server counts (no coordinated omission). Requests are GET /posts/<id> with ids uniformly
 * at random from IDS_FILE (one a line).
 *
 * After SECONDS no new request is due; answers are awaited 2 s more. Requests still
 * unanswered then count with their latency so far (a lower bound) and as "late".
 * Output, one line (latencies in microseconds):
 *   OPENLOOP rate=R sent=N completed=N late=N errors=N non2xx=N achieved=R p50=.. p90=..
 *   p99=.. p999=.. max=..
 * Responses must carry Content-Length (blog-node's do); anything else is an error.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define OL_BUF 65536

struct ol_conn {
    int fd;
    int busy;
    int64_t due;        /* due time of the request in flight, ns */
    size_t len;
    char buf[OL_BUF];
};

static int64_t
ol_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t ol_rng = 88172645463325252ULL;

static uint64_t
ol_rand(void)
{
    ol_rng ^= ol_rng << 13;
    ol_rng ^= ol_rng >> 7;
    ol_rng ^= ol_rng << 17;
    return ol_rng;
}

static int
ol_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a;
    int64_t y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

static int
ol_connect(const struct sockaddr_in *sa)
{
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        return -1;
    }
    if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) != 0) {
        close(fd);
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

/* 1 = a whole response is in c->buf (consumed, *status set), 0 = need more, -1 = bad. */
static int
ol_parse(struct ol_conn *c, int *status)
{
    char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
    size_t hlen;
    long clen = -1;
    char *p;

    if (end == NULL) {
        return c->len >= OL_BUF ? -1 : 0;
    }
    hlen = (size_t)(end - c->buf) + 4;
    if (c->len < 12 || strncmp(c->buf, "HTTP/1.", 7) != 0) {
        return -1;
    }
    *status = atoi(c->buf + 9);
    for (p = c->buf; p < end; p++) {
        if (p[0] == '\n' && strncasecmp(p + 1, "content-length:", 15) == 0) {
            clen = strtol(p + 16, NULL, 10);
        }
    }
    if (clen < 0 || hlen + (size_t)clen > OL_BUF) {
        return -1;
    }
    if (c->len < hlen + (size_t)clen) {
        return 0;
    }
    memmove(c->buf, c->buf + hlen + clen, c->len - hlen - (size_t)clen);
    c->len -= hlen + (size_t)clen;
    return 1;
}

int
main(int argc, char **argv)
{
    struct sockaddr_in sa;
    struct ol_conn *conns = NULL;
    char **ids = NULL;
    size_t nids = 0, cap = 0;
    int64_t *due = NULL, *lat = NULL;
    int *idle = NULL;
    int nidle = 0;
    char line[256];
    FILE *f;
    int ep = -1, rc = 1;
    double rate;
    double secs;
    int nconn;
    long total, sched = 0, head = 0, nlat = 0, errors = 0, non2xx = 0, late = 0;
    int64_t start, end_sched, deadline, last_done = 0;

    if (argc < 7) {
        fprintf(stderr, "usage: openloop HOST PORT RATE SECONDS CONNS IDS_FILE [SEED]\n");
        return 2;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)atoi(argv[2]));
    rate = atof(argv[3]);
    secs = atof(argv[4]);
    nconn = atoi(argv[5]);
    if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1 || rate <= 0 || secs <= 0 ||
        nconn <= 0 || nconn > 4096) {
        fprintf(stderr, "openloop: bad arguments\n");
        return 2;
    }
    if (argc > 7) {
        ol_rng ^= strtoull(argv[7], NULL, 10) * 0x9E3779B97F4A7C15ULL;
    }
    f = fopen(argv[6], "r");
    if (f == NULL) {
        perror(argv[6]);
        return 2;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '\0') {
            continue;
        }
        if (nids == cap) {
            char **n;

            cap = cap ? cap * 2 : 1024;
            n = realloc(ids, cap * sizeof(*ids));
            if (n == NULL) {
                fclose(f);
                goto fail;
            }
            ids = n;
        }
        ids[nids] = strdup(line);
        if (ids[nids] == NULL) {
            fclose(f);
            goto fail;
        }
        nids++;
    }
    fclose(f);
    if (nids == 0) {
        fprintf(stderr, "openloop: no ids in %s\n", argv[6]);
        goto fail;
    }
    total = (long)(rate * secs);
    due = calloc((size_t)total + 1, sizeof(*due));
    lat = calloc((size_t)total + 1, sizeof(*lat));
    conns = calloc((size_t)nconn, sizeof(*conns));
    idle = calloc((size_t)nconn, sizeof(*idle));
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (due == NULL || lat == NULL || conns == NULL || idle == NULL || ep < 0) {
        goto fail;
    }
    for (int i = 0; i < nconn; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};

        conns[i].fd = ol_connect(&sa);
        if (conns[i].fd < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev) != 0) {
            perror("openloop: connect");
            goto fail;
        }
        idle[nidle++] = i;
    }

    start = ol_now();
    end_sched = start + (int64_t)(secs * 1e9);
    deadline = end_sched + 2000000000LL;
    for (;;) {
        struct epoll_event evs[256];
        struct timespec to;
        int64_t now = ol_now(), next, wait;
        int n;

        /* every request due by now joins the queue */
        while (sched < total && start + (int64_t)((double)sched * 1e9 / rate) <= now) {
            due[sched] = start + (int64_t)((double)sched * 1e9 / rate);
            sched++;
        }
        /* queued requests go out on idle connections */
        while (head < sched && nidle > 0) {
            struct ol_conn *c = &conns[idle[--nidle]];
            char req[256];
            int len = snprintf(req, sizeof(req), "GET /posts/%s HTTP/1.1\r\nHost: bench\r\n\r\n",
                               ids[ol_rand() % nids]);

            if (write(c->fd, req, (size_t)len) != len) {
                perror("openloop: write");
                goto fail;
            }
            c->busy = 1;
            c->due = due[head++];
        }
        if (sched == total && head == sched && nidle == nconn) {
            break;
        }
        if (now >= deadline) {
            break;
        }
        next = sched < total ? start + (int64_t)((double)sched * 1e9 / rate) : deadline;
        wait = next - now;
        if (wait < 0) {
            wait = 0;
        }
        to.tv_sec = wait / 1000000000;
        to.tv_nsec = wait % 1000000000;
        n = epoll_pwait2(ep, evs, 256, &to, NULL);
        if (n < 0 && errno != EINTR) {
            perror("openloop: epoll");
            goto fail;
        }
        now = ol_now();
        for (int k = 0; k < n; k++) {
            int i = (int)evs[k].data.u32;
            struct ol_conn *c = &conns[i];
            ssize_t r = read(c->fd, c->buf + c->len, OL_BUF - c->len);
            int st = 0, p;

            if (r <= 0) {
                if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
                    continue;
                }
                fprintf(stderr, "openloop: connection %d closed by the server\n", i);
                goto fail;
            }
            c->len += (size_t)r;
            while ((p = ol_parse(c, &st)) == 1) {
                if (!c->busy) {
                    fprintf(stderr, "openloop: unexpected response\n");
                    goto fail;
                }
                lat[nlat++] = (now - c->due) / 1000;
                last_done = now;
                if (st < 200 || st > 299) {
                    non2xx++;
                }
                c->busy = 0;
                idle[nidle++] = i;
            }
            if (p < 0) {
                fprintf(stderr, "openloop: unparsable response (no Content-Length?)\n");
                errors++;
                goto fail;
            }
        }
    }
    {
        int64_t now = ol_now();

        for (int i = 0; i < nconn; i++) {
            if (conns[i].busy) {
                lat[nlat++] = (now - conns[i].due) / 1000;
                late++;
            }
        }
        for (; head < sched; head++) {
            lat[nlat++] = (now - due[head]) / 1000;
            late++;
        }
    }
    qsort(lat, (size_t)nlat, sizeof(*lat), ol_cmp);
#define OL_PCT(q) (nlat ? lat[(long)((double)(nlat - 1) * (q))] : 0)
    printf("OPENLOOP rate=%.0f sent=%ld completed=%ld late=%ld errors=%ld non2xx=%ld achieved=%.0f "
           "p50=%lld p90=%lld p99=%lld p999=%lld max=%lld\n",
           rate, sched, nlat - late, late, errors, non2xx,
           last_done > start ? (double)(nlat - late) / ((double)(last_done - start) / 1e9) : 0.0,
           (long long)OL_PCT(0.5), (long long)OL_PCT(0.9), (long long)OL_PCT(0.99),
           (long long)OL_PCT(0.999), (long long)(nlat ? lat[nlat - 1] : 0));
    rc = 0;
fail:
    for (int i = 0; conns != NULL && i < nconn; i++) {
        if (conns[i].fd > 0) {
            close(conns[i].fd);
        }
    }
    if (ep >= 0) {
        close(ep);
    }
    for (size_t i = 0; i < nids; i++) {
        free(ids[i]);
    }
    free(ids);
    free(due);
    free(lat);
    free(conns);
    free(idle);
    return rc;
}
